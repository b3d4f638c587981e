// Draining a node in a real browser, against a tenant of the portal's local
// kubesim: the Kubernetes section reads the cluster, the nodes page shows
// both nodes, the drain dialog's check shows the DaemonSet pod left in
// place, and while a PodDisruptionBudget refuses the second eviction (its
// pod's replacement has nowhere to go until node-b is uncordoned) the page
// names the budget; then node-a is drained and the DaemonSet pod is still
// on it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { freePort, startPortal } from '../support/portal.mjs';
import { hydrated, launchBrowser, newPage, recordingFailures, screenshotPath } from '../support/browser.mjs';
import { createOperator, signUp } from '../support/flows.mjs';

let portal;
let browser;

before(async () => {
  const kubesimPort = await freePort();
  portal = await startPortal({
    args: ['--local-kubesim-port', String(kubesimPort), '--local-kubesim-delay-ms', '300'],
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await portal?.stop();
});

async function until(what, check, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// The tenant API as the admin kubeconfig describes it: its server, CA and
// token. Tenant names (`<id>.k8s.loopback.localhost`) resolve to this
// machine, so the lookup answers loopback whatever the resolver thinks.
function tenantClient(kubeconfig) {
  const field = (name) => {
    const match = kubeconfig.match(new RegExp(`^\\s*${name}:\\s*(\\S+)\\s*$`, 'm'));
    if (!match) throw new Error(`the kubeconfig has no ${name}`);
    return match[1].replace(/^"|"$/g, '');
  };
  const server = new URL(field('server'));
  const ca = Buffer.from(field('certificate-authority-data'), 'base64');
  const token = field('token');
  return (method, path, body) => new Promise((resolve, reject) => {
    const req = httpsRequest({
      hostname: server.hostname,
      port: server.port || 443,
      path,
      method,
      ca,
      ...(isIP(server.hostname) ? {} : { servername: server.hostname }),
      lookup: (_host, options, callback) => (options?.all
        ? callback(null, [{ address: '127.0.0.1', family: 4 }])
        : callback(null, '127.0.0.1', 4)),
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      timeout: 10_000,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => {
        const status = res.statusCode;
        if (status >= 400) {
          reject(new Error(`${method} ${path}: ${status} ${text}`));
          return;
        }
        resolve(text ? JSON.parse(text) : null);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer`)));
    req.on('error', reject);
    if (body) req.write(JSON.stringify(body));
    req.end();
  });
}

const NS = 'shop';

function node(name, unschedulable) {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'node-role.kubernetes.io/worker': '' } },
    spec: { unschedulable },
    status: {
      conditions: [{ type: 'Ready', status: 'True' }],
      addresses: [{ type: 'InternalIP', address: name === 'node-a' ? '10.0.0.11' : '10.0.0.12' }],
      capacity: { cpu: '4', memory: '8Gi', pods: '110' },
      allocatable: { cpu: '3800m', memory: '7680Mi', pods: '110' },
      nodeInfo: { kubeletVersion: 'v1.33.2' },
    },
  };
}

// Pods that stop within a second of being evicted.
function template(app) {
  return {
    metadata: { labels: { app } },
    spec: { terminationGracePeriodSeconds: 1, containers: [{ name: app, image: 'nginx' }] },
  };
}

test('a node is drained while a PodDisruptionBudget holds it up, and DaemonSet pods stay', () => recordingFailures(browser, async () => {
  const started = Date.now();
  const operator = await createOperator(await newPage(browser), portal);

  const alice = await newPage(browser);
  await signUp(alice, portal.url, { email: 'alice@example.com', name: 'Alice' });
  await alice.goto(`${portal.url}/organizations`);
  await hydrated(alice);
  await alice.getByLabel('Name').fill('Acme Drains');
  await alice.getByRole('button', { name: 'Create organization' }).click();
  await alice.getByRole('heading', { name: 'Acme Drains' }).waitFor();
  const orgUrl = alice.url();
  await operator.goto(`${portal.url}/admin/organizations`);
  await hydrated(operator);
  await operator.getByRole('button', { name: 'Verify Acme Drains' }).click();
  await operator.getByRole('row', { name: /Acme Drains/ }).getByText('verified', { exact: true }).waitFor();

  await alice.goto(orgUrl);
  await hydrated(alice);
  await alice.getByLabel('Project name').fill('Shop');
  await alice.getByRole('button', { name: 'Create project' }).click();
  await alice.getByRole('link', { name: 'Shop' }).click();
  await alice.getByRole('heading', { name: 'Shop' }).waitFor();
  await hydrated(alice);
  await alice.getByLabel('Name').fill('shop-prod');
  await alice.getByLabel('Kubernetes version').selectOption('1.33.2');
  await alice.getByLabel('Compute provider').selectOption('local');
  await alice.getByLabel('Control plane').selectOption('single_node');
  await alice.getByRole('button', { name: 'Create workspace' }).click();
  await alice.getByRole('link', { name: 'Follow the provisioning' }).click();
  await alice.getByRole('heading', { name: 'shop-prod' }).waitFor();
  await hydrated(alice);
  await alice.getByTestId('workspace-state').getByText('active').waitFor({ timeout: 40_000 });
  const workspaceUrl = alice.url();

  // The tenant, through the admin kubeconfig the portal hands out.
  const download = await alice.context().request.get(`${workspaceUrl.replace('/workspaces/', '/api/workspaces/')}/kubeconfig/admin`);
  assert.equal(download.status(), 200);
  const kube = tenantClient(await download.text());

  // node-b starts cordoned, so the ReplicaSet's pods land on node-a and an
  // evicted pod's replacement has nowhere to go until node-b is uncordoned.
  await kube('POST', '/api/v1/nodes', node('node-a', false));
  await kube('POST', '/api/v1/nodes', node('node-b', true));
  await kube('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  await kube('POST', `/apis/apps/v1/namespaces/${NS}/daemonsets`, {
    apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'log-agent' },
    spec: { selector: { matchLabels: { app: 'log-agent' } }, template: template('log-agent') },
  });
  await kube('POST', `/apis/apps/v1/namespaces/${NS}/replicasets`, {
    apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'web' },
    spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template: template('web') },
  });
  await kube('POST', `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets`, {
    apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'web-pdb' },
    spec: { minAvailable: 1, selector: { matchLabels: { app: 'web' } } },
  });
  const pods = async (app) => (await kube('GET', `/api/v1/namespaces/${NS}/pods?labelSelector=app%3D${app}`)).items;
  const running = (p) => p.status?.phase === 'Running' && !p.metadata.deletionTimestamp
    && (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
  await until('both web pods running on node-a and the budget allowing one disruption', async () => {
    const web = (await pods('web')).filter(running);
    const pdb = await kube('GET', `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets/web-pdb`);
    return web.length === 2 && web.every((p) => p.spec.nodeName === 'node-a') && pdb.status?.disruptionsAllowed === 1;
  });
  const agentOn = async (nodeName) => (await pods('log-agent')).filter((p) => p.spec.nodeName === nodeName && !p.metadata.deletionTimestamp);
  await until('a DaemonSet pod on each node', async () => (await agentOn('node-a')).length === 1 && (await agentOn('node-b')).length === 1);
  const agentPod = (await agentOn('node-a'))[0].metadata.name;

  // The Kubernetes section reads the cluster (briefly cached: look again
  // until the new nodes show).
  const section = alice.getByTestId('kubernetes-section');
  await until('the summary to count both nodes', async () => {
    await alice.reload();
    await section.waitFor();
    return /2 of 2 ready · 1 cordoned/.test(await section.getByTestId('node-count').textContent());
  });
  await section.getByTestId('cluster-health').getByText('healthy').waitFor();
  await section.getByTestId('cluster-version').getByText('v1.33.2').waitFor();
  await section.getByText(NS, { exact: true }).waitFor();
  await section.getByTestId('pod-phases').getByText('4 Running').waitFor();

  // The nodes page, a full page load of its own.
  const nodesPath = await section.getByTestId('nodes-link').getAttribute('href');
  assert.equal(nodesPath, `${new URL(workspaceUrl).pathname}/nodes`);
  await alice.goto(`${portal.url}${nodesPath}`);
  await alice.getByRole('heading', { name: 'Nodes' }).waitFor();
  await hydrated(alice);
  const row = (name) => alice.locator(`tr[data-testid="node-row"][data-node="${name}"]`);
  await row('node-a').getByTestId('node-state').getByText('active').waitFor();
  await row('node-b').getByTestId('node-state').getByText('cordoned').waitFor();
  await row('node-a').getByText('10.0.0.11').waitFor();
  await row('node-a').getByText('3.8 / 4').waitFor();
  await row('node-a').getByText('7.5 GiB / 8 GiB').waitFor();

  // The dialog: Rancher's defaults, and nothing can start before the check.
  await row('node-a').getByRole('button', { name: 'Drain node-a…' }).click();
  const dialog = alice.getByTestId('drain-dialog');
  await dialog.getByRole('heading', { name: 'Drain node-a' }).waitFor();
  assert.equal(await dialog.getByLabel('Ignore DaemonSets').isChecked(), true);
  assert.equal(await dialog.getByLabel('Delete emptyDir data').isChecked(), false);
  assert.equal(await dialog.getByLabel('Force').isChecked(), false);
  assert.equal(await dialog.getByLabel('Grace period (seconds)').inputValue(), '-1');
  assert.equal(await dialog.getByLabel('Timeout (seconds)').inputValue(), '120');
  const confirm = dialog.getByTestId('drain-confirm');
  assert.equal(await confirm.isDisabled(), true);
  await dialog.getByTestId('drain-check').click();
  const plan = dialog.getByTestId('drain-plan');
  await plan.waitFor();
  const planned = plan.getByTestId('planned-pod');
  await until('the plan to list three pods', async () => (await planned.count()) === 3);
  const skipped = planned.filter({ hasText: agentPod });
  assert.equal(await skipped.getAttribute('data-disposition'), 'skip');
  await skipped.getByText(/managed by a DaemonSet/).waitFor();
  assert.equal(await planned.filter({ hasText: `${NS}/web-` }).count(), 2);
  assert.equal(await plan.locator('[data-disposition="evict"]').count(), 2);
  await alice.screenshot({ path: screenshotPath('drain-plan.png') });

  // Drain: the first eviction goes, the second waits for the budget.
  await confirm.click();
  await dialog.waitFor({ state: 'hidden' });
  await row('node-a').getByTestId('node-state').getByText('draining').waitFor({ timeout: 15_000 });
  const blocked = row('node-a').getByTestId('drain-blocked');
  await blocked.waitFor({ timeout: 20_000 });
  assert.match(await blocked.textContent(), /Blocked by PodDisruptionBudget .*web-pdb/);
  await row('node-a').getByTestId('drain-remaining').getByText(/web-/).waitFor();
  await alice.screenshot({ path: screenshotPath('drain-blocked.png'), fullPage: true });

  // Room on node-b: the replacement starts there, the budget allows the
  // second eviction, and the drain finishes without a reload.
  await row('node-b').getByRole('button', { name: 'Uncordon node-b' }).click();
  await row('node-b').getByTestId('node-state').getByText('active').waitFor({ timeout: 15_000 });
  await row('node-a').getByTestId('node-state').getByText('drained').waitFor({ timeout: 30_000 });
  await alice.screenshot({ path: screenshotPath('drain-done.png'), fullPage: true });

  const web = (await pods('web')).filter((p) => !p.metadata.deletionTimestamp);
  assert.equal(web.length, 2);
  assert.ok(web.every((p) => p.spec.nodeName === 'node-b'), 'the web pods moved to node-b');
  const agents = await agentOn('node-a');
  assert.deepEqual(agents.map((p) => p.metadata.name), [agentPod], 'the DaemonSet pod stays on node-a');
  const nodeA = await kube('GET', '/api/v1/nodes/node-a');
  assert.equal(nodeA.spec.unschedulable, true, 'a drained node stays cordoned');

  for (const page of [operator, alice]) assert.deepEqual(page.problems, []);
  console.log(`drain test took ${((Date.now() - started) / 1000).toFixed(1)} s`);
}));
