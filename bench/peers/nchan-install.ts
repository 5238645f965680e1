/**
 * nchan comes from Debian packages (`nginx`, `libnginx-mod-nchan`). The bench installs them itself
 * when they are missing, so it runs on a fresh machine; without apt or root it says why instead.
 */
import { existsSync } from "node:fs";

export const NGINX_BINARY = "/usr/sbin/nginx";
export const NCHAN_MODULE = "/usr/lib/nginx/modules/ngx_nchan_module.so";
const PACKAGES = ["nginx", "libnginx-mod-nchan"];

export function nchanInstalled(): boolean {
  return existsSync(NGINX_BINARY) && existsSync(NCHAN_MODULE);
}

/** Installs the packages if needed; returns null when nchan is usable, else the reason it is not. */
export async function ensureNchanInstalled(log: (line: string) => void): Promise<string | null> {
  if (nchanInstalled()) return null;
  if (Bun.which("apt-get") === null) return "nginx/nchan missing and apt-get not available";
  if (process.getuid?.() !== 0) return `nginx/nchan missing; install as root: apt-get install ${PACKAGES.join(" ")}`;
  log(`installing ${PACKAGES.join(" ")} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const command of [
    ["apt-get", "update"],
    ["apt-get", "install", "-y", ...PACKAGES],
  ]) {
    const result = Bun.spawnSync(command, { env, stdout: "pipe", stderr: "pipe" });
    if (result.exitCode !== 0) return `${command.join(" ")} failed: ${result.stderr.toString().slice(-500)}`;
  }
  return nchanInstalled() ? null : "apt-get finished but nginx or the nchan module is still missing";
}
