/**
 * A real browser for the page tests: Debian's headless Chromium (`chromium-headless-shell`, else `chromium`; .ci/run
 * installs it), driven by puppeteer-core, which downloads no browser of its own.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { repo } from "./cluster.ts";

const CANDIDATES = ["/usr/bin/chromium-headless-shell", "/usr/bin/chromium"];

/** Headless Chromium; `args` are extra command-line switches (e.g. `--host-resolver-rules`). */
export async function openBrowser(args: string[] = []): Promise<Browser> {
  const executablePath = CANDIDATES.find((path) => existsSync(path));
  if (!executablePath) throw new Error(`no headless Chromium: none of ${CANDIDATES.join(", ")} (apt-get install chromium-headless-shell)`);
  // root (the tests run as root here) has no user namespaces for Chromium's sandbox
  const sandbox = process.getuid?.() === 0 ? ["--no-sandbox"] : [];
  return await puppeteer.launch({ executablePath, headless: "shell", args: [...sandbox, ...args] });
}

/** Writes the page as test/artifacts/<name>.png (git-ignored) and returns that path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const dir = join(repo, "test/artifacts");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.png`) as `${string}.png`;
  await page.screenshot({ path });
  return path;
}
