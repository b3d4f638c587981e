// The app shell in a real browser: hydration, a server function called from
// the client, client-side navigation, the 404 page.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPortal } from '../support/portal.mjs';
import { hydrated, launchBrowser, newPage, screenshotPath } from '../support/browser.mjs';

let portal;
let browser;

before(async () => {
  portal = await startPortal();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await portal?.stop();
});

test('home page hydrates and re-checks status through a server function', async () => {
  const page = await newPage(browser);
  await page.goto(portal.url);
  await hydrated(page);

  const database = page.getByTestId('database-state');
  await assert.doesNotReject(database.waitFor());
  assert.match(await database.textContent(), /reachable, schema up to date/);
  const firstCheck = await page.getByTestId('checked-at').textContent();

  // Let the clock move on a second so the new check is visibly newer.
  await page.waitForTimeout(1100);
  const call = page.waitForResponse((r) => r.url().endsWith('/api/portal_status') && r.request().method() === 'POST');
  await page.getByRole('button', { name: 'Check again' }).click();
  const response = await call;
  assert.equal(response.status(), 200);
  await page.waitForFunction(
    (before) => document.querySelector('[data-testid="checked-at"]')?.textContent !== before,
    firstCheck,
  );

  await page.screenshot({ path: screenshotPath('home.png'), fullPage: true });
  assert.deepEqual(page.problems, []);
});

test('mobile menu opens and navigates without a full page load; signed-out visitors are sent to sign in', async () => {
  const page = await newPage(browser, { viewport: { width: 390, height: 800 } });
  await page.goto(portal.url);
  await hydrated(page);

  const menu = page.getByRole('button', { name: 'Menu' });
  assert.equal(await menu.getAttribute('aria-expanded'), 'false');
  await menu.click();
  assert.equal(await menu.getAttribute('aria-expanded'), 'true');

  // A marker on window survives client-side navigation, not a reload.
  await page.evaluate(() => { window.__sameDocument = true; });
  await page.locator('#mobile-nav').getByRole('link', { name: 'Projects' }).click();
  await page.waitForURL(`${portal.url}/sign-in?next=/projects`);
  await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
  assert.equal(await page.evaluate(() => window.__sameDocument), true);
  assert.equal(await page.locator('#mobile-nav').count(), 0, 'menu closes after navigating');
  assert.equal(await page.title(), 'Sign in · Loopback');
  assert.deepEqual(page.problems, []);
});

test('unknown addresses get the 404 page', async () => {
  const page = await newPage(browser);
  const response = await page.goto(`${portal.url}/no/such/page`);
  assert.equal(response.status(), 404);
  await page.getByRole('heading', { name: 'Page not found' }).waitFor();
  await hydrated(page);
  await page.getByRole('link', { name: 'Back to the start page' }).click();
  await page.getByRole('heading', { name: 'Welcome to Loopback' }).waitFor();
});
