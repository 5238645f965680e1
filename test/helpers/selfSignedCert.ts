/** A self-signed P-256 certificate for 127.0.0.1 and localhost, valid for a day, made with openssl in `dir`. */
import { join } from "node:path";

export function selfSignedCertificate(dir: string, name: string, commonName = "touchline-test"): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const run = Bun.spawnSync([
    "openssl",
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "1",
    "-subj",
    `/CN=${commonName}`,
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
  ]);
  if (run.exitCode !== 0) throw new Error(`openssl failed: ${run.stderr.toString()}`);
  return { cert, key };
}
