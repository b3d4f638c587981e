// Kubernetes workspaces in a real browser, against the portal's local
// kubesim: create one, watch its provisioning steps complete live, download
// the admin kubeconfig and use it with the real kubectl.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startPortal } from '../support/portal.mjs';
import { hydrated, launchBrowser, newPage, recordingFailures, screenshotPath } from '../support/browser.mjs';
import { createOperator, signUp } from '../support/flows.mjs';

let portal;
let browser;

before(async () => {
  const kubesimPort = await freePort();
  portal = await startPortal({
    args: [
      '--local-kubesim-port', String(kubesimPort), '--local-kubesim-delay-ms', '800',
      '--managed-network-pool', '10.64.0.0/12',
    ],
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await portal?.stop();
});

test('a Kubernetes workspace is provisioned live and its admin kubeconfig works with kubectl', () => recordingFailures(browser, async () => {
  const operator = await createOperator(await newPage(browser), portal);

  // The local demo's catalog: kubesim registered, a version active.
  await operator.goto(`${portal.url}/admin/kubernetes`);
  await hydrated(operator);
  await operator.getByRole('row', { name: /local/ }).getByText('Kamaji').waitFor();
  await operator.getByRole('row', { name: /1\.33\.2/ }).getByText('active', { exact: true }).waitFor();

  const alice = await newPage(browser);
  await signUp(alice, portal.url, { email: 'alice@example.com', name: 'Alice' });
  await alice.goto(`${portal.url}/organizations`);
  await hydrated(alice);
  await alice.getByLabel('Name').fill('Acme Rockets');
  await alice.getByRole('button', { name: 'Create organization' }).click();
  await alice.getByRole('heading', { name: 'Acme Rockets' }).waitFor();
  const orgUrl = alice.url();
  await operator.goto(`${portal.url}/admin/organizations`);
  await hydrated(operator);
  await operator.getByRole('button', { name: 'Verify Acme Rockets' }).click();
  await operator.getByRole('row', { name: /Acme Rockets/ }).getByText('verified', { exact: true }).waitFor();

  await alice.goto(orgUrl);
  await hydrated(alice);
  await alice.getByLabel('Project name').fill('Web shop');
  await alice.getByRole('button', { name: 'Create project' }).click();
  await alice.getByRole('link', { name: 'Web shop' }).click();
  await alice.getByRole('heading', { name: 'Web shop' }).waitFor();
  await hydrated(alice);

  // The form sanitises the name before it is sent.
  await alice.getByLabel('Name').fill('Shop Prod #1');
  await alice.getByText('Will be created as shop-prod-1').waitFor();
  await alice.getByLabel('Kubernetes version').selectOption('1.33.2');
  await alice.getByLabel('Compute provider').selectOption('local');
  await alice.getByLabel('Control plane').selectOption('single_node');
  await alice.getByRole('button', { name: 'Create workspace' }).click();
  const key = (await alice.getByTestId('workspace-api-key').textContent()).trim();
  assert.match(key, /^lbw_/);
  await alice.getByRole('link', { name: 'Follow the provisioning' }).click();
  await alice.getByRole('heading', { name: 'shop-prod-1' }).waitFor();
  await hydrated(alice);

  // The steps complete live, and the workspace turns active without a reload.
  const steps = alice.getByTestId('step');
  await steps.filter({ hasText: 'management-pool' }).waitFor();
  await alice.getByTestId('workspace-state').getByText('active').waitFor({ timeout: 60_000 });
  assert.equal(await steps.count(), 12);
  assert.equal(await steps.filter({ hasText: 'succeeded' }).count(), 12);
  const endpoint = (await alice.getByTestId('workspace-endpoint').textContent()).trim();
  assert.match(endpoint, /^https:\/\/[0-9a-f-]+\.k8s\.loopback\.localhost:\d+$/);
  await alice.getByText('10.64.0.0/20').waitFor();
  await alice.screenshot({ path: screenshotPath('workspace-active.png') });

  // The admin kubeconfig: break-glass, downloaded, and it works.
  await alice.getByText('Break-glass').waitFor();
  const [download] = await Promise.all([
    alice.waitForEvent('download'),
    alice.getByRole('link', { name: 'Download admin kubeconfig' }).click(),
  ]);
  const file = join(mkdtempSync(join(tmpdir(), 'kubeconfig-')), 'admin.kubeconfig');
  await download.saveAs(file);
  assert.match(readFileSync(file, 'utf8'), /current-context: shop-prod-1-admin/);
  const namespaces = execFileSync('kubectl', ['--kubeconfig', file, 'get', 'ns'], { encoding: 'utf8', timeout: 30_000 });
  assert.match(namespaces, /loopback-system/);
  assert.match(namespaces, /kube-system/);
  const view = execFileSync('kubectl', ['--kubeconfig', file, 'config', 'view'], { encoding: 'utf8' });
  assert.match(view, /shop-prod-1/);

  // The OIDC kubeconfig parses too, and runs kubelogin.
  const [oidc] = await Promise.all([
    alice.waitForEvent('download'),
    alice.getByRole('link', { name: 'Download OIDC kubeconfig' }).click(),
  ]);
  const oidcFile = join(mkdtempSync(join(tmpdir(), 'kubeconfig-')), 'oidc.kubeconfig');
  await oidc.saveAs(oidcFile);
  const oidcView = execFileSync('kubectl', ['--kubeconfig', oidcFile, 'config', 'view'], { encoding: 'utf8' });
  assert.match(oidcView, /oidc-login/);
  assert.match(oidcView, /client\.authentication\.k8s\.io\/v1/);
}));
