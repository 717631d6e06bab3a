/**
 * A real browser for page tests: Debian's headless Chromium (`chromium-headless-shell`, or `chromium`),
 * driven by puppeteer-core, which downloads no browser. Screenshots go to test/artifacts/ (git-ignored).
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { repo } from "./cluster.ts";

const CANDIDATES = ["/usr/bin/chromium-headless-shell", "/usr/bin/chromium"];

/** Launches the system's headless Chromium; as root it needs `--no-sandbox` (Chromium refuses otherwise). */
export function openBrowser(): Promise<Browser> {
  const executablePath = CANDIDATES.find((path) => existsSync(path));
  if (!executablePath) throw new Error(`no Chromium at ${CANDIDATES.join(" or ")}: apt-get install chromium-headless-shell`);
  return puppeteer.launch({
    executablePath,
    headless: "shell",
    args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
  });
}

/** Saves the page as test/artifacts/<name>.png and returns the path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const dir = join(repo, "test/artifacts");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  await page.screenshot({ path: path as `${string}.png` });
  return path;
}
