// Identity and tenancy in a real browser: sign-up, TOTP, sign-in with a
// second factor, organizations, operator verification, projects, invitations,
// what a viewer may not do, and passkeys through a virtual authenticator.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPortal } from '../support/portal.mjs';
import { hydrated, launchBrowser, newPage, recordingFailures, screenshotPath } from '../support/browser.mjs';
import { PASSWORD, createOperator, signInWithPassword, signOut, signUp } from '../support/flows.mjs';
import { freshCode, totpCode, totpStep } from '../support/totp.mjs';

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

async function operatorPage() {
  return createOperator(await newPage(browser), portal);
}

test('sign up, TOTP, organization, verification, project, invitation and a viewer who cannot create workspaces', () => recordingFailures(browser, async () => {
  const operator = await operatorPage();

  // Alice signs up and turns on an authenticator app.
  const alice = await newPage(browser);
  await signUp(alice, portal.url, { email: 'alice@example.com', name: 'Alice' });
  await alice.goto(`${portal.url}/account/security`);
  await hydrated(alice);
  await alice.getByRole('button', { name: 'Set up authenticator app' }).click();
  const secret = (await alice.getByTestId('totp-secret').textContent()).trim();
  const enrolStep = totpStep();
  await alice.getByLabel('Code from the app').fill(totpCode(secret, enrolStep));
  await alice.getByRole('button', { name: 'Turn on' }).click();
  await alice.getByTestId('recovery-codes').waitFor();
  assert.equal(await alice.getByTestId('recovery-codes').locator('li').count(), 10);
  await alice.getByText('Codes from your authenticator app are required').waitFor();

  // Signing in again needs the password and a fresh code.
  await signOut(alice);
  await signInWithPassword(alice, portal.url, 'alice@example.com');
  await alice.getByRole('heading', { name: "Confirm it's you" }).waitFor();
  await alice.getByLabel('Code from your authenticator app').fill('000000');
  await alice.getByRole('button', { name: 'Continue' }).click();
  await alice.getByText('that code is not right').waitFor();
  const { code } = await freshCode(secret, enrolStep);
  await alice.getByLabel('Code from your authenticator app').fill(code);
  await alice.getByRole('button', { name: 'Continue' }).click();
  await alice.getByRole('heading', { name: 'Welcome, Alice' }).waitFor();

  // Alice creates an organization; it waits for an operator.
  await alice.goto(`${portal.url}/organizations`);
  await hydrated(alice);
  await alice.getByLabel('Name').fill('Acme Rockets');
  await alice.getByRole('button', { name: 'Create organization' }).click();
  await alice.getByRole('heading', { name: 'Acme Rockets' }).waitFor();
  await alice.getByText('An operator has not verified this organization yet').waitFor();
  const orgUrl = alice.url();

  // The operator verifies it.
  await operator.goto(`${portal.url}/admin/organizations`);
  await hydrated(operator);
  await operator.getByRole('button', { name: 'Verify Acme Rockets' }).click();
  await operator.getByRole('row', { name: /Acme Rockets/ }).getByText('verified', { exact: true }).waitFor();

  // Alice creates a project and invites Bob as a viewer.
  await alice.goto(orgUrl);
  await hydrated(alice);
  assert.equal(await alice.getByText('An operator has not verified this organization yet').count(), 0);
  await alice.getByLabel('Project name').fill('Web shop');
  await alice.getByRole('button', { name: 'Create project' }).click();
  await alice.getByRole('link', { name: 'Web shop' }).waitFor();
  await alice.goto(`${orgUrl}/members`);
  await hydrated(alice);
  await alice.getByLabel('Email').fill('bob@example.com');
  await alice.getByLabel('Role', { exact: true }).selectOption('viewer');
  await alice.getByRole('button', { name: 'Send invitation' }).click();
  await alice.getByText('Invitation sent to bob@example.com.').waitFor();

  // The invitation went out by mail; operators can read the local outbox.
  await operator.goto(`${portal.url}/admin/mail`);
  const mail = operator.getByTestId('mail').filter({ hasText: 'bob@example.com' });
  await mail.getByText('invited you to join the organization "Acme Rockets"').waitFor();

  // Bob signs up and accepts.
  const bob = await newPage(browser);
  await signUp(bob, portal.url, { email: 'bob@example.com', name: 'Bob' });
  await bob.getByText('You have 1 pending invitation').waitFor();
  await bob.goto(`${portal.url}/organizations`);
  await hydrated(bob);
  await bob.getByRole('button', { name: 'Accept Acme Rockets' }).click();
  await bob.getByRole('link', { name: 'Acme Rockets' }).waitFor();

  // Bob sees the project but may not create a workspace in it.
  await bob.goto(`${portal.url}/projects`);
  await bob.getByRole('link', { name: 'Web shop' }).click();
  await bob.getByRole('heading', { name: 'Web shop' }).waitFor();
  await hydrated(bob);
  await bob.getByText('Your role here does not include creating workspaces').waitFor();
  await bob.getByLabel('Name').fill('bobs cluster');
  await bob.getByRole('button', { name: 'Create workspace' }).click();
  await bob.getByText('your role does not include the workspace.create permission here').waitFor();
  await bob.getByText('No workspaces yet.').waitFor();

  // Alice may.
  await alice.goto(`${portal.url}/projects`);
  await alice.getByRole('link', { name: 'Web shop' }).click();
  await hydrated(alice);
  await alice.getByLabel('Name').fill('Prod EU');
  await alice.getByText('Will be created as prod-eu').waitFor();
  await alice.getByLabel('Type').selectOption('baremetal');
  await alice.getByRole('button', { name: 'Create workspace' }).click();
  await alice.getByRole('cell', { name: 'prod-eu' }).waitFor();

  // Alice's audit log shows what happened.
  await alice.goto(`${orgUrl}/audit`);
  await alice.getByText('member.invite_accept').waitFor();
  await alice.getByText('organization.verification').waitFor();
  await alice.screenshot({ path: screenshotPath('audit.png'), fullPage: true });

  for (const page of [operator, alice, bob]) assert.deepEqual(page.problems, []);
}));

test('a passkey registers and then signs in as the second factor', () => recordingFailures(browser, async () => {
  const page = await newPage(browser);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  });

  await signUp(page, portal.url, { email: 'carol@example.com', name: 'Carol' });
  await page.goto(`${portal.url}/account/security`);
  await hydrated(page);
  await page.getByLabel('Name for a new passkey').fill('Test laptop');
  await page.getByRole('button', { name: 'Add passkey' }).click();
  await page.getByText('Test laptop', { exact: true }).waitFor();

  await signOut(page);
  await signInWithPassword(page, portal.url, 'carol@example.com');
  await page.getByRole('heading', { name: "Confirm it's you" }).waitFor();
  await hydrated(page);
  await page.getByRole('button', { name: 'Use a passkey' }).click();
  await page.getByRole('heading', { name: 'Welcome, Carol' }).waitFor();

  await page.goto(`${portal.url}/account/security`);
  await page.getByText(/last used/).waitFor();
  assert.deepEqual(page.problems, []);
}));

test('a forgotten password is reset through the mailed one-time link', () => recordingFailures(browser, async () => {
  const dave = await newPage(browser);
  await signUp(dave, portal.url, { email: 'dave@example.com', name: 'Dave' });
  await signOut(dave);
  await dave.getByRole('link', { name: 'Forgot your password?' }).click();
  await dave.getByLabel('Email').fill('dave@example.com');
  await dave.getByRole('button', { name: 'Send reset link' }).click();
  await dave.getByText('a link to choose a new password is on its way').waitFor();

  // Without SMTP the mail waits in the outbox, where the operator (made by
  // the first test) reads it.
  const operator = await newPage(browser);
  await signInWithPassword(operator, portal.url, 'operator@example.com');
  await operator.getByRole('heading', { name: 'Welcome, Olivia Operator' }).waitFor();
  await operator.goto(`${portal.url}/admin/mail`);
  const body = await operator.getByTestId('mail').filter({ hasText: 'dave@example.com' }).getByTestId('mail-body').textContent();
  const link = body.split(/\s+/).find((word) => word.includes('/reset-password?token='));
  assert.ok(link, body);

  await dave.goto(link);
  await dave.getByLabel('New password').fill('a completely new passphrase');
  await dave.getByRole('button', { name: 'Set password' }).click();
  await dave.getByText('Your password was changed').waitFor();

  // The link works once; the old password no longer does.
  await dave.goto(link);
  await dave.getByLabel('New password').fill('yet another passphrase here');
  await dave.getByRole('button', { name: 'Set password' }).click();
  await dave.getByText('this reset link was already used').waitFor();
  await signInWithPassword(dave, portal.url, 'dave@example.com');
  await dave.getByText('the email address or password is not right').waitFor();
  await dave.getByLabel('Password').fill('a completely new passphrase');
  await dave.getByRole('button', { name: 'Sign in' }).click();
  await dave.getByRole('heading', { name: 'Welcome, Dave' }).waitFor();
  for (const page of [dave, operator]) assert.deepEqual(page.problems, []);
}));
