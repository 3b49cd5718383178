import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';
import { findExecutable } from '../../bench/find-executable.js';

/** The Chromium of the machine (Debian's `chromium`; `.ci/run` installs it), or undefined. */
export function chromiumPath(): string | undefined {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    const found = findExecutable(name);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * A headless Chromium on a throw-away profile. As root (CI containers) Chromium refuses to start
 * with its sandbox, so the sandbox is off there: the browser only ever loads the test's pages.
 */
export async function launchBrowser(executablePath: string): Promise<{
  browser: Browser;
  close: () => Promise<void>;
}> {
  const profile = mkdtempSync(join(tmpdir(), 'proxyauth-chromium-'));
  const browser = await puppeteer.launch({
    executablePath,
    headless: true,
    userDataDir: profile,
    args: [
      ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-background-networking',
      '--disable-component-update',
    ],
  });
  return {
    browser,
    close: async () => {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
