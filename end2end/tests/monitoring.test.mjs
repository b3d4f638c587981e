// Monitoring in a real browser: an HTTP monitor on a target served by this
// test, created through the form with a 1 s interval and the default "status
// is down" condition. The page shows it Up; when the target starts answering
// 500 the page turns Down and an alert fires, all without a reload; when the
// target heals the page shows Up again.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startPortal } from '../support/portal.mjs';
import { hydrated, launchBrowser, newPage, recordingFailures, screenshotPath } from '../support/browser.mjs';
import { createOperator, signUp } from '../support/flows.mjs';

let portal;
let browser;
let target;
// Flipped by the test: the target answers 500 while broken.
let broken = false;
let hits = 0;

before(async () => {
  target = createServer((req, res) => {
    hits += 1;
    if (broken) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('broken on purpose');
    } else {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    }
  });
  await new Promise((resolve) => target.listen(0, '127.0.0.1', resolve));
  portal = await startPortal({ args: ['--monitoring-min-interval-seconds', '1'] });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await portal?.stop();
  target?.close();
});

test('an HTTP monitor goes up, down with a firing alert, and up again, live', () => recordingFailures(browser, async () => {
  const operator = await createOperator(await newPage(browser), portal);
  const alice = await newPage(browser);
  await signUp(alice, portal.url, { email: 'alice@example.com', name: 'Alice' });
  await alice.goto(`${portal.url}/organizations`);
  await hydrated(alice);
  await alice.getByLabel('Name').fill('Acme Watch');
  await alice.getByRole('button', { name: 'Create organization' }).click();
  await alice.getByRole('heading', { name: 'Acme Watch' }).waitFor();
  const orgUrl = alice.url();
  await operator.goto(`${portal.url}/admin/organizations`);
  await hydrated(operator);
  await operator.getByRole('button', { name: 'Verify Acme Watch' }).click();
  await operator.getByRole('row', { name: /Acme Watch/ }).getByText('verified', { exact: true }).waitFor();

  await alice.goto(orgUrl);
  await hydrated(alice);
  await alice.getByLabel('Project name').fill('Shop');
  await alice.getByRole('button', { name: 'Create project' }).click();
  await alice.getByRole('link', { name: 'Shop' }).click();
  await alice.getByRole('heading', { name: 'Shop' }).waitFor();
  await hydrated(alice);

  // The project page links to its monitoring overview, empty at first.
  await alice.getByRole('link', { name: 'Monitoring' }).click();
  await alice.getByRole('heading', { name: 'Monitoring' }).waitFor();
  await hydrated(alice);
  await alice.getByText('No monitors yet').waitFor();
  await alice.getByRole('button', { name: 'Create monitor' }).click();

  // A bad URL is refused with the field named.
  const { port } = target.address();
  const form = alice.getByTestId('new-monitor-form');
  await form.getByLabel('Name', { exact: true }).fill('shop-api');
  await form.getByLabel('URL', { exact: true }).fill('127.0.0.1/health');
  await form.getByRole('button', { name: 'Create monitor' }).click();
  await form.getByText('a URL starting with http:// or https://').waitFor();

  // The real one: every second, the default condition ("status is down").
  await form.getByLabel('URL', { exact: true }).fill(`http://127.0.0.1:${port}/health`);
  await form.getByLabel('Check every (s)').fill('1');
  await form.getByLabel('Timeout (s)').fill('1');
  assert.equal(await form.getByTestId('condition-row').count(), 1);
  // Enter submits, like any form.
  await form.getByLabel('Name', { exact: true }).press('Enter');

  // The monitor's own page: it turns Up without a reload.
  await alice.getByRole('heading', { name: 'shop-api' }).waitFor();
  await hydrated(alice);
  const monitorUrl = alice.url();
  await alice.getByTestId('monitor-state').getByText('Up', { exact: true }).waitFor({ timeout: 30_000 });
  await alice.getByTestId('monitor-target').getByText(`GET http://127.0.0.1:${port}/health`).waitFor();
  await alice.getByTestId('conditions-list').getByText('status is down').waitFor();
  await alice.getByTestId('result-row').first().waitFor({ timeout: 15_000 });
  await alice.getByTestId('latency-chart').waitFor();
  assert.ok(hits >= 1, 'the target was probed');

  // Break the target: Down, and an alert opens, still without a reload.
  broken = true;
  await alice.getByTestId('monitor-state').getByText('Down', { exact: true }).waitFor({ timeout: 30_000 });
  await alice.getByTestId('last-error').waitFor({ timeout: 10_000 });
  await alice.getByRole('link', { name: /Alerts \([1-9]\d* open\)/ }).waitFor({ timeout: 30_000 });
  await alice.screenshot({ path: screenshotPath('monitor-down.png'), fullPage: true });

  // The alerts page (reached by the link, not a reload) shows it firing.
  await alice.getByRole('link', { name: /Alerts \([1-9]\d* open\)/ }).click();
  await alice.getByRole('heading', { name: 'Alerts', level: 1 }).waitFor();
  await alice.getByTestId('alert-row').first().waitFor({ timeout: 20_000 });
  await alice.getByTestId('alert-state').getByText('firing', { exact: true }).first().waitFor({ timeout: 20_000 });

  // Heal the target: the monitor page shows Up again by itself.
  broken = false;
  await alice.goBack();
  await alice.getByRole('heading', { name: 'shop-api' }).waitFor();
  await alice.getByTestId('monitor-state').getByText('Up', { exact: true }).waitFor({ timeout: 30_000 });

  // The overview lists it with its state and a sparkline.
  await alice.getByRole('link', { name: 'Monitoring' }).click();
  const row = alice.getByTestId('monitor-row').filter({ hasText: 'shop-api' });
  await row.waitFor();
  await row.getByTestId('sparkline').waitFor();
  await row.getByTestId('monitor-state').getByText('Up', { exact: true }).waitFor({ timeout: 15_000 });
  const projectUrl = alice.url().replace(/\/monitoring$/, '');

  // A full load of the monitor's page hydrates; Change makes it public.
  await alice.goto(monitorUrl);
  await hydrated(alice);
  await alice.getByRole('button', { name: 'Change' }).click();
  const change = alice.getByTestId('edit-monitor-form');
  await change.getByLabel('Show on the public status page').check();
  await change.getByRole('button', { name: 'Save changes' }).click();
  await change.waitFor({ state: 'detached' });

  // The public status page needs no sign-in.
  const visitor = await newPage(browser);
  await visitor.goto(projectUrl.replace('/projects/', '/status/'));
  await hydrated(visitor);
  await visitor.getByRole('heading', { name: 'Shop status' }).waitFor();
  await visitor.getByTestId('status-monitors').getByText('shop-api').waitFor();
  await visitor.getByText('All systems operational').waitFor();
  await visitor.screenshot({ path: screenshotPath('status-page.png'), fullPage: true });

  assert.deepEqual(alice.problems, []);
  assert.deepEqual(visitor.problems, []);
}));
