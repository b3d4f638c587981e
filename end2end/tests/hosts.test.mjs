// Hosts in a real browser with the `local` provider: order one, watch it
// come online (a real loopback-agent process), open its shell, run a
// command, resize the window, close the session; the audit log shows it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPortal } from '../support/portal.mjs';
import { hydrated, launchBrowser, newPage, recordingFailures, screenshotPath } from '../support/browser.mjs';
import { createOperator, signUp } from '../support/flows.mjs';

let portal;
let browser;

before(async () => {
  const agent = process.env.LOOPBACK_AGENT_BIN;
  if (!agent) throw new Error('set LOOPBACK_AGENT_BIN to the loopback-agent binary (scripts/test does)');
  portal = await startPortal({
    args: ['--local-hosts', '--agent-bin', agent, '--agent-heartbeat-secs', '2'],
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await portal?.stop();
});

// The terminal's visible text (xterm renders to a canvas; the test hook
// exposes its buffer).
async function screen(page) {
  return page.evaluate(() => {
    const term = window.__loopbackTerminal;
    if (!term) return '';
    const buffer = term.buffer.active;
    const lines = [];
    for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i)?.translateToString(true) ?? '');
    return lines.join('\n');
  });
}

async function until(what, check, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a local host is ordered, comes online, and its shell runs commands', () => recordingFailures(browser, async () => {
  const operator = await createOperator(await newPage(browser), portal);

  const alice = await newPage(browser);
  await signUp(alice, portal.url, { email: 'alice@example.com', name: 'Alice' });
  await alice.goto(`${portal.url}/organizations`);
  await hydrated(alice);
  await alice.getByLabel('Name').fill('Acme Metal');
  await alice.getByRole('button', { name: 'Create organization' }).click();
  await alice.getByRole('heading', { name: 'Acme Metal' }).waitFor();
  const orgUrl = alice.url();
  await operator.goto(`${portal.url}/admin/organizations`);
  await hydrated(operator);
  await operator.getByRole('button', { name: 'Verify Acme Metal' }).click();
  await operator.getByRole('row', { name: /Acme Metal/ }).getByText('verified', { exact: true }).waitFor();

  await alice.goto(orgUrl);
  await hydrated(alice);
  await alice.getByLabel('Project name').fill('Edge');
  await alice.getByRole('button', { name: 'Create project' }).click();
  await alice.getByRole('link', { name: 'Edge' }).click();
  await alice.getByRole('heading', { name: 'Edge' }).waitFor();
  await hydrated(alice);
  await alice.getByLabel('Name').fill('metal');
  await alice.getByLabel('Type').selectOption('baremetal');
  await alice.getByRole('button', { name: 'Create workspace' }).click();
  await alice.getByRole('link', { name: 'Follow the provisioning' }).click();
  await alice.getByRole('heading', { name: 'metal', exact: true }).waitFor();
  await hydrated(alice);
  await alice.getByTestId('workspace-state').getByText('active').waitFor({ timeout: 30_000 });

  // Order a host from the local provider.
  const section = alice.getByTestId('hosts-section');
  await section.getByText('No hosts yet').waitFor();
  await alice.reload();
  await hydrated(alice);
  await alice.getByLabel('Host name').fill('Bad_Name');
  const profile = alice.locator('#host-profile');
  const option = await profile.locator('option', { hasText: 'local-small' }).getAttribute('value');
  await profile.selectOption(option);
  await alice.getByRole('button', { name: 'Order host' }).click();
  await section.getByText(/lowercase letters, digits and dashes/).first().waitFor();
  await alice.getByLabel('Host name').fill('edge-1');
  await alice.getByRole('button', { name: 'Order host' }).click();
  await alice.getByTestId('host-ordered').waitFor();

  // It comes online without a reload.
  const row = alice.getByTestId('host-row').filter({ hasText: 'edge-1' });
  await row.getByTestId('host-online').getByText('online', { exact: true }).waitFor({ timeout: 60_000 });
  await row.getByRole('link', { name: 'edge-1' }).click();
  await alice.getByRole('heading', { name: 'edge-1' }).waitFor();
  await hydrated(alice);
  await alice.getByTestId('host-facts').waitFor({ timeout: 20_000 });
  await alice.screenshot({ path: screenshotPath('host-online.png'), fullPage: true });

  // The shell.
  await alice.getByTestId('open-shell').click();
  await alice.getByTestId('shell-status').getByText('Connected').waitFor({ timeout: 20_000 });
  await alice.getByTestId('terminal').click();
  await alice.keyboard.type('echo hello-$((1+1))');
  await alice.keyboard.press('Enter');
  await until('hello-2 on the screen', async () => /^hello-2\s*$/m.test(await screen(alice)));

  // Resizing the window resizes the terminal and the PTY behind it.
  const before = await alice.evaluate(() => [window.__loopbackTerminal.cols, window.__loopbackTerminal.rows]);
  await alice.setViewportSize({ width: 900, height: 600 });
  const after = await until('the terminal to resize', async () => {
    const size = await alice.evaluate(() => [window.__loopbackTerminal.cols, window.__loopbackTerminal.rows]);
    return size[0] !== before[0] ? size : null;
  });
  await alice.keyboard.type('stty size');
  await alice.keyboard.press('Enter');
  await until('the PTY to report the new size', async () => (await screen(alice)).includes(`${after[1]} ${after[0]}`));
  await alice.screenshot({ path: screenshotPath('host-shell.png') });

  // Close the session.
  await alice.getByRole('button', { name: 'Close session' }).click();
  await alice.getByTestId('shell-status').getByText(/Session ended/).waitFor({ timeout: 20_000 });

  // The audit log shows the session, with its end.
  await alice.goto(`${orgUrl}/audit`);
  await hydrated(alice);
  await alice.getByText('host.shell.start').first().waitFor();
  await until('the session end in the audit log', async () => {
    await alice.reload();
    return (await alice.getByText('host.shell.end').count()) > 0;
  });
  await alice.getByText('host.create').first().waitFor();

  for (const page of [operator, alice]) assert.deepEqual(page.problems, []);
}));
