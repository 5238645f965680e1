/**
 * Real Chromium for browser tests: Debian's /usr/bin/chromium driven by playwright-core, one fresh
 * temporary profile per launch, screenshots written to test/artifacts/.
 */
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const CHROMIUM_PATH = "/usr/bin/chromium";
export const ARTIFACTS_DIR = resolve(import.meta.dir, "../artifacts");

/** Quiet, deterministic Chromium: no sandbox (containers), no GPU, no background traffic or QUIC. */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** The narrowest phone width the page must work at. */
export const PHONE_VIEWPORT = { width: 360, height: 740 };
export const DESKTOP_VIEWPORT = { width: 1100, height: 800 };

export interface BrowserSession {
  context: BrowserContext;
  page: Page;
  /** Closes Chromium and deletes its temporary profile. */
  close(): Promise<void>;
}

export async function launchBrowser(options: { viewport?: { width: number; height: number } } = {}): Promise<BrowserSession> {
  const profile = await mkdtemp(join(tmpdir(), "touchline-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: options.viewport ?? DESKTOP_VIEWPORT,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close().catch(() => {});
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Saves a full-page PNG as test/artifacts/<name>.png and returns its path. */
export async function saveScreenshot(page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * Records every value the scoreboard's connection label takes, from page load on, so a test can assert
 * a short-lived state (a reconnect may last milliseconds). Call before page.goto().
 */
export async function recordConnStates(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { __connStates: string[] }).__connStates = seen;
    const watch = () => {
      const label = document.querySelector('[data-testid="conn-state"]');
      if (!label) return;
      const note = () => {
        const state = label.getAttribute("data-state") ?? "";
        if (seen[seen.length - 1] !== state) seen.push(state);
      };
      note();
      new MutationObserver(note).observe(label, { attributes: true, attributeFilter: ["data-state"] });
    };
    document.addEventListener("DOMContentLoaded", watch);
  });
}

export async function connStates(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { __connStates?: string[] }).__connStates ?? []);
}
