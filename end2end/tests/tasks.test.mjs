// System tasks in a real browser: an operator starts an exercise, watches its
// steps advance live (server-sent events, no reload), and cancels another.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPortal } from '../support/portal.mjs';
import { hydrated, launchBrowser, newPage, recordingFailures, screenshotPath } from '../support/browser.mjs';
import { createOperator } from '../support/flows.mjs';

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

async function operator() {
  return createOperator(await newPage(browser), portal);
}

async function runExercise(page, { steps, sleepMs }) {
  await page.goto(`${portal.url}/admin/tasks`);
  await hydrated(page);
  await page.getByLabel('Steps').fill(String(steps));
  await page.getByLabel('Wait per step (ms)').fill(String(sleepMs));
  await page.getByRole('button', { name: 'Run exercise' }).click();
  await page.waitForURL(/\/tasks\//);
  await page.getByRole('heading', { name: `Exercise the task engine (${steps} steps)` }).waitFor();
  await hydrated(page);
}

test('a task page follows the steps live and a running task can be cancelled', () => recordingFailures(browser, async () => {
  const page = await operator();

  await runExercise(page, { steps: 3, sleepMs: 1500 });
  await page.evaluate(() => { window.__sameDocument = true; });
  const steps = page.getByTestId('step');
  assert.equal(await steps.count(), 3);
  // Step states change on screen as the task runs, without a reload.
  await steps.nth(0).getByText('running').or(steps.nth(0).getByText('succeeded')).waitFor();
  await steps.nth(1).getByText('running').waitFor({ timeout: 10_000 });
  await page.getByTestId('task-state').getByText('succeeded').waitFor({ timeout: 15_000 });
  for (let i = 0; i < 3; i += 1) await steps.nth(i).getByText('succeeded').waitFor();
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'updated in place');
  await page.screenshot({ path: screenshotPath('task.png'), fullPage: true });

  await runExercise(page, { steps: 2, sleepMs: 60_000 });
  await page.getByTestId('step').first().getByText('running').waitFor();
  await page.getByRole('button', { name: 'Cancel task' }).click();
  await page.getByRole('alertdialog').getByRole('button', { name: 'Cancel task' }).click();
  await page.getByTestId('task-state').getByText('cancelled').waitFor({ timeout: 10_000 });
  await page.getByTestId('step').first().getByText('cancelled').waitFor();

  // The operators' list shows both, and the cancelled one can be retried.
  await page.goto(`${portal.url}/admin/tasks`);
  await hydrated(page);
  await page.getByLabel('State').selectOption('cancelled');
  await page.getByRole('button', { name: /^Retry Exercise/ }).click();
  await page.getByLabel('State').selectOption('');
  await page.getByRole('row', { name: /2 steps/ }).getByText(/queued|running/).waitFor();
  assert.deepEqual(page.problems, []);
}));
