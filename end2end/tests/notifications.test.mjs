// Notification channels in a real browser: create a signed webhook channel
// pointing at a receiver in this test, generate its secret in the page, send
// a test notification and watch it turn "Delivered" without a reload; the
// receiver checks the HMAC signature with the generated secret.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { freePort, startPortal } from '../support/portal.mjs';
import { hydrated, launchBrowser, newPage, recordingFailures, screenshotPath } from '../support/browser.mjs';
import { createOperator, signUp } from '../support/flows.mjs';

let portal;
let browser;
let receiver;
const received = [];

before(async () => {
  receiver = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  portal = await startPortal({ args: ['--monitoring-min-interval-seconds', '1'] });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await portal?.stop();
  receiver?.close();
});

let operator;

// A new account with a verified organization; returns the page and the
// organization's address.
async function verifiedOrganization(email, name, orgName) {
  operator ??= await createOperator(await newPage(browser), portal);
  const page = await newPage(browser);
  await signUp(page, portal.url, { email, name });
  await page.goto(`${portal.url}/organizations`);
  await hydrated(page);
  await page.getByLabel('Name').fill(orgName);
  await page.getByRole('button', { name: 'Create organization' }).click();
  await page.getByRole('heading', { name: orgName }).waitFor();
  const orgUrl = page.url();
  await operator.goto(`${portal.url}/admin/organizations`);
  await hydrated(operator);
  await operator.getByRole('button', { name: `Verify ${orgName}` }).click();
  await operator.getByRole('row', { name: new RegExp(orgName) }).getByText('verified', { exact: true }).waitFor();
  return { page, orgUrl };
}

test('a webhook channel gets a signed test notification and the page shows it delivered', () => recordingFailures(browser, async () => {
  const { page: alice, orgUrl } = await verifiedOrganization('alice@example.com', 'Alice', 'Acme Alerts');

  // The organization page links to its channels.
  await alice.goto(orgUrl);
  await hydrated(alice);
  await alice.getByRole('link', { name: 'Notifications' }).click();
  await alice.getByRole('heading', { name: 'Notification channels' }).waitFor();
  await hydrated(alice);
  await alice.getByText('No notification channels yet').waitFor();

  // A webhook channel with a secret generated in the page.
  await alice.getByRole('button', { name: 'New channel' }).click();
  await alice.getByLabel('Name').fill('On-call hook');
  await alice.getByLabel('Kind').selectOption('webhook');
  const { port } = receiver.address();
  await alice.getByLabel('URL').fill(`http://127.0.0.1:${port}/hook`);
  // A missing secret is refused by the browser first; generate one.
  await alice.getByRole('button', { name: 'Generate a random secret' }).click();
  const secret = await alice.getByLabel('Signing secret').inputValue();
  assert.match(secret, /^[A-Za-z0-9]{32}$/);
  await alice.getByRole('button', { name: 'Create channel' }).click();
  const row = alice.getByTestId('channel-row').filter({ hasText: 'On-call hook' });
  await row.waitFor();
  await row.getByText('127.0.0.1').waitFor();

  // The test notification is followed live until delivered.
  await alice.getByRole('button', { name: 'Send test notification to On-call hook' }).click();
  await alice.getByTestId('test-state').getByText('Delivered').waitFor({ timeout: 30_000 });
  await alice.getByTestId('delivery-row').filter({ hasText: 'Test notification from Loopback' })
    .getByTestId('delivery-state').getByText('Delivered').waitFor({ timeout: 10_000 });
  await alice.screenshot({ path: screenshotPath('notification-delivered.png') });

  // The receiver got one signed POST.
  const hook = received.find((r) => r.url === '/hook');
  assert.ok(hook, 'the receiver got the test notification');
  assert.equal(hook.method, 'POST');
  const expected = `sha256=${createHmac('sha256', secret).update(hook.body).digest('hex')}`;
  assert.equal(hook.headers['x-loopback-signature'], expected);
  assert.equal(JSON.parse(hook.body).kind, 'test');

  // Deleting asks first.
  await row.getByRole('button', { name: 'Delete' }).click();
  await alice.getByRole('button', { name: 'Delete channel' }).click();
  await alice.getByText('No notification channels yet').waitFor();
}));

test('the alerts page shows its empty state and silences the project until ended', () => recordingFailures(browser, async () => {
  const { page: bob, orgUrl } = await verifiedOrganization('bob@example.com', 'Bob', 'Quiet Corp');
  await bob.goto(orgUrl);
  await hydrated(bob);
  await bob.getByLabel('Project name').fill('Storefront');
  await bob.getByRole('button', { name: 'Create project' }).click();
  await bob.getByRole('link', { name: 'Storefront' }).click();
  await bob.getByRole('heading', { name: 'Storefront' }).waitFor();
  const projectUrl = bob.url().split('#')[0];

  await bob.goto(`${projectUrl}/alerts`);
  await hydrated(bob);
  await bob.getByText('No alerts — all monitors are passing their conditions').waitFor();
  await bob.getByText('No silences').waitFor();

  // The filters are real controls and keep the empty state honest.
  await bob.getByLabel('State').selectOption('firing');
  await bob.getByText('No alerts — all monitors are passing their conditions').waitFor();

  // A custom length beyond 30 days is refused at the field.
  await bob.getByLabel('For').selectOption('custom');
  await bob.getByLabel('Minutes').fill('99999');
  await bob.getByLabel('Comment').fill('Database upgrade');
  await bob.getByRole('button', { name: 'Create silence' }).click();
  assert.equal(await bob.getByLabel('Minutes').evaluate((el) => el.validity.rangeOverflow), true);
  await bob.getByText('No silences').waitFor();
  await bob.getByLabel('Minutes').fill('90');
  await bob.getByRole('button', { name: 'Create silence' }).click();
  const silence = bob.getByTestId('silence-row').filter({ hasText: 'Database upgrade' });
  await silence.getByText('active').waitFor();
  await silence.getByText('the whole project').waitFor();
  await bob.screenshot({ path: screenshotPath('alerts-silenced.png'), fullPage: true });

  // Ending asks first.
  await silence.getByRole('button', { name: 'End now' }).click();
  await bob.getByRole('button', { name: 'End silence' }).click();
  await silence.getByText('ended').waitFor();
}));

// psql against the test PostgreSQL; `database` unset: the server's list.
function psql(database, sql) {
  const socketDir = process.env.TEST_PG_SOCKET_DIR;
  const beside = process.env.PG_BIN && join(process.env.PG_BIN, 'psql');
  const bin = beside && existsSync(beside) ? beside : 'psql';
  return execFileSync(bin, ['-h', socketDir, '-U', 'loopback', '-d', database ?? 'postgres', '-qAtc', sql], { encoding: 'utf8' }).trim();
}

// The portal's database is the e2e database holding `project`.
function databaseOf(project) {
  const names = psql(undefined, "SELECT datname FROM pg_database WHERE datname LIKE 'lb_e2e_%' ORDER BY oid DESC").split('\n');
  const found = names.find((db) => psql(db, `SELECT count(*) FROM projects WHERE id = '${project}'`) === '1');
  if (!found) throw new Error(`no e2e database holds project ${project}`);
  return found;
}

test('a failing monitor\'s alert fires live, shows its history and is acknowledged with a comment', () => recordingFailures(browser, async () => {
  const { page: carol, orgUrl } = await verifiedOrganization('carol@example.com', 'Carol', 'Loud Corp');
  await carol.goto(orgUrl);
  await hydrated(carol);
  await carol.getByLabel('Project name').fill('Checkout');
  await carol.getByRole('button', { name: 'Create project' }).click();
  await carol.getByRole('link', { name: 'Checkout' }).click();
  await carol.getByRole('heading', { name: 'Checkout' }).waitFor();
  const projectUrl = carol.url().split('#')[0];
  const project = projectUrl.split('/').pop();

  await carol.goto(`${projectUrl}/alerts`);
  await hydrated(carol);
  await carol.getByText('No alerts — all monitors are passing their conditions').waitFor();

  // A TCP monitor of a closed port with the default "status is down"
  // condition, planted in the database (the monitor pages are tested
  // elsewhere); the engine probes it within a second.
  const database = databaseOf(project);
  const org = psql(database, `SELECT organization_id FROM projects WHERE id = '${project}'`);
  const monitor = randomUUID();
  const closed = await freePort();
  psql(database, `INSERT INTO monitors (id, organization_id, project_id, name, kind, probe, interval_seconds, sources,
      failure_threshold, success_threshold, repeat_interval_seconds, next_run_at)
    VALUES ('${monitor}', '${org}', '${project}', 'checkout-db', 'tcp',
      '{"kind": "tcp", "host": "127.0.0.1", "port": ${closed}, "timeout_ms": 1000}', 1, '[{"type": "builtin"}]',
      1, 1, 3600, now());
    INSERT INTO monitor_conditions (id, monitor_id, position, parameter, operator, threshold, for_seconds, severity)
    VALUES ('${randomUUID()}', '${monitor}', 0, 'status', 'eq', 0, 0, 'critical')`);

  // It shows up without a reload, firing.
  const row = carol.getByTestId('alert-row').filter({ hasText: 'checkout-db' });
  await row.getByTestId('alert-state').getByText('firing').waitFor({ timeout: 30_000 });
  await row.getByText('status is down').waitFor();
  await row.getByRole('link', { name: 'checkout-db' }).waitFor();

  // Pre-filtered from the monitor's page.
  await carol.goto(`${projectUrl}/alerts?monitor=${monitor}`);
  await hydrated(carol);
  await carol.getByTestId('monitor-filter').waitFor();
  await row.waitFor();

  // Details with the history; acknowledging needs a comment.
  await row.getByRole('button', { name: /Details of checkout-db/ }).click();
  await carol.getByTestId('alert-events').getByText('firing').first().waitFor();
  await carol.getByLabel('Comment (required)').fill('Carol restarts the database');
  await carol.getByTestId('acknowledge-form').getByRole('button', { name: 'Acknowledge' }).click();
  await row.getByTestId('alert-acknowledged').getByText('carol@example.com').waitFor();
  await row.getByText('Carol restarts the database').waitFor();
  await carol.getByTestId('alert-events').getByText('acknowledged').waitFor();
  await carol.screenshot({ path: screenshotPath('alert-acknowledged.png'), fullPage: true });

  // Filters: acknowledged alerts drop out of "not acknowledged".
  await carol.getByLabel('Acknowledged').selectOption('no');
  await carol.getByText('No alerts — all monitors are passing their conditions').waitFor();
}));
