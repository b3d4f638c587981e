// Steps that several browser tests share, written as a user performs them.

export const PASSWORD = 'correct horse battery staple';

export async function signUp(page, base, { email, name }) {
  await page.goto(`${base}/sign-up`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Your name').fill(name);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { name: `Welcome, ${name}` }).waitFor();
}

export async function signOut(page) {
  await page.getByRole('button', { name: 'Account menu' }).click();
  await page.getByRole('menuitem', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
}

export async function signInWithPassword(page, base, email) {
  await page.goto(`${base}/sign-in`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

// The first operator, through the one-time setup link the portal printed.
export async function createOperator(page, portal) {
  const link = portal.setupLink();
  if (!link) throw new Error('the portal printed no setup link');
  await page.goto(link);
  await page.getByLabel('Email').fill('operator@example.com');
  await page.getByLabel('Your name').fill('Olivia Operator');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create operator account' }).click();
  await page.getByRole('heading', { name: 'Operator console' }).waitFor();
  return page;
}
