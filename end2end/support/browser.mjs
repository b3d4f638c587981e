// Debian's Chromium driven by playwright-core; never a downloaded browser.
// launch() gives every run a new, empty profile directory.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const artifactsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

// A page that records uncaught errors and console errors as problems. A 4xx
// answer is a user error the page shows (wrong code, no permission), which
// Chromium also logs; only server errors (5xx) count.
export async function newPage(browser, options = {}) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (/Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) return;
    page.problems.push(`console: ${m.text()}`);
  });
  return page;
}

// Waits until the wasm bundle has hydrated the page.
export async function hydrated(page) {
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 30_000 });
}

export function screenshotPath(name) {
  mkdirSync(artifactsDir, { recursive: true });
  return join(artifactsDir, name);
}

// Runs `body`; if it throws, saves a screenshot of every page the test
// opened (end2end/artifacts/failure-<name>.png) before failing.
export async function recordingFailures(browser, body) {
  try {
    await body();
  } catch (error) {
    let n = 0;
    for (const context of browser.contexts()) {
      for (const page of context.pages()) {
        n += 1;
        await page.screenshot({ path: screenshotPath(`failure-${n}.png`), fullPage: true }).catch(() => {});
        console.error(`failure-${n}.png: ${page.url()}`);
      }
    }
    throw error;
  }
}
