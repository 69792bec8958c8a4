// Accounts in the browser: signing up, the server's errors shown as the
// server words them, logging in by username or by email using only the
// keyboard, a session that survives a reload, and logging out.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  PASSWORD,
  TestServer,
  createRoomInUi,
  eventually,
  launchBrowser,
  logInInUi,
  openPerson,
  screenshot,
  signUpInUi,
} from './harness.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** What the API itself answers to a signup, to compare with what the page shows. */
async function apiSignupError(server, body) {
  let reply = await server.api('POST', '/signup', { body });
  // `busy` says nothing about the signup: ask again, as the page does.
  for (let tries = 1; reply.body?.error?.code === 'busy' && tries < 20; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    reply = await server.api('POST', '/signup', { body });
  }
  assert.ok(reply.status >= 400, `expected an error, got ${reply.status}`);
  return reply.body.error.message;
}

test('signup shows each API error inline, then the session survives a reload', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  await server.createUser('taken_name');
  const { page, trouble } = await openPerson(browser);

  await page.goto(server.url);
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  await screenshot(page, 'login');
  await page.getByRole('button', { name: 'Create an account' }).click();
  const form = page.locator('#signup-form');

  // Each error is shown under the field it is about, and tied to it.
  const attempts = [
    [{ username: 'newcomer', email: 'newcomer@example.test', password: 'short' }, 'password'],
    [{ username: 'taken_name', email: 'other@example.test', password: PASSWORD }, 'username'],
    [{ username: 'newcomer', email: 'taken_name@example.test', password: PASSWORD }, 'email'],
    [{ username: 'x', email: 'x@example.test', password: PASSWORD }, 'username'],
    [{ username: 'newcomer', email: 'not-an-email', password: PASSWORD }, 'email'],
  ];
  for (const [attempt, field] of attempts) {
    await form.getByLabel('Username', { exact: true }).fill(attempt.username);
    await form.getByLabel('Email').fill(attempt.email);
    await form.getByLabel('Password').fill(attempt.password);
    await form.getByRole('button', { name: 'Sign up' }).click();
    const expected = await apiSignupError(server, attempt);
    const error = page.locator(`#signup-${field}-error`);
    await eventually(async () => (await error.textContent().catch(() => null)) === expected, {
      message: `the signup error "${expected}" by the ${field} field`,
    });
    assert.equal(await error.isVisible(), true);
    const input = page.locator(`#signup-${field}`);
    assert.equal(await input.getAttribute('aria-invalid'), 'true');
    assert.ok((await input.getAttribute('aria-describedby')).split(' ').includes(`signup-${field}-error`));
  }

  await form.getByLabel('Username', { exact: true }).fill('newcomer');
  await form.getByLabel('Email').fill('newcomer@example.test');
  await form.getByLabel('Password').fill(PASSWORD);
  await form.getByRole('button', { name: 'Sign up' }).click();
  await page.locator('#app-view').waitFor();
  assert.equal(await page.locator('#me-name').textContent(), 'newcomer');

  await page.reload();
  await page.locator('#app-view').waitFor();
  assert.equal(await page.locator('#me-name').textContent(), 'newcomer');
  assert.equal(await page.locator('#auth-view').isVisible(), false);

  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  await page.reload();
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  assert.equal(await page.locator('#app-view').isVisible(), false);

  assert.deepEqual(await trouble.problems(), []);
});

test('empty forms are checked in the page: every field says what it lacks, nothing is sent', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { page, trouble } = await openPerson(browser);
  const posted = [];
  page.on('request', (request) => {
    if (request.method() === 'POST') posted.push(new URL(request.url()).pathname);
  });
  await page.goto(server.url);
  await page.getByRole('heading', { name: 'Log in' }).waitFor();

  await page.locator('#login-form').getByRole('button', { name: 'Log in' }).click();
  for (const field of ['login-name', 'login-password']) {
    const error = page.locator(`#${field}-error`);
    await error.waitFor();
    assert.notEqual((await error.textContent()).trim(), '');
    assert.equal(await page.locator(`#${field}`).getAttribute('aria-invalid'), 'true');
    assert.ok((await page.locator(`#${field}`).getAttribute('aria-describedby')).includes(`${field}-error`));
  }
  assert.equal(await page.evaluate(() => document.activeElement.id), 'login-name');
  // Typing a password leaves only the login's error.
  await page.locator('#login-password').fill('something');
  await page.locator('#login-form').getByRole('button', { name: 'Log in' }).click();
  await page.locator('#login-password-error').waitFor({ state: 'hidden' });
  assert.equal(await page.locator('#login-name-error').isVisible(), true);

  await page.getByRole('button', { name: 'Create an account' }).click();
  await page.locator('#signup-form').getByRole('button', { name: 'Sign up' }).click();
  for (const field of ['username', 'email', 'password']) {
    await page.locator(`#signup-${field}-error`).waitFor();
    assert.equal(await page.locator(`#signup-${field}`).getAttribute('aria-invalid'), 'true');
  }
  assert.deepEqual(posted, [], 'an empty form reached the server');
  assert.deepEqual(await trouble.problems(), []);
});

test('logging out clears the room from the address bar', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { page, trouble } = await openPerson(browser);
  await signUpInUi(page, server, 'leaver');
  await createRoomInUi(page, 'exit');
  assert.match(page.url(), /#\/room\//);
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  assert.equal(new URL(page.url()).hash, '');
  assert.deepEqual(await trouble.problems(), []);
});

test('login takes a username or an email, by keyboard alone, and says why it failed', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  await server.createUser('keyboardist');
  const { page, trouble } = await openPerson(browser);

  await page.goto(server.url);
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  // The login field has focus on arrival; Tab order is login → password → button.
  await page.keyboard.type('keyboardist');
  await page.keyboard.press('Tab');
  await page.keyboard.type('wrong password!');
  await page.keyboard.press('Enter');
  const wrong = await server.mustUnlessBusy(401, 'POST', '/login', {
    body: { login: 'keyboardist', password: 'wrong password!' },
  });
  const error = page.locator('#login-error');
  await eventually(async () => (await error.textContent()) === wrong.error.message, {
    message: 'the invalid_credentials message',
  });

  // Focus stayed in the password field; one step back is the login field.
  await page.keyboard.press('Shift+Tab');
  await page.keyboard.press('Control+A');
  await page.keyboard.type('keyboardist@example.test');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Control+A');
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Enter');
  await page.locator('#app-view').waitFor();
  assert.equal(await page.locator('#me-name').textContent(), 'keyboardist');

  assert.deepEqual(await trouble.problems(), []);
});

test('a rate-limited login shows the server message', async (t) => {
  const server = await TestServer.start({ HEARTH_LOGIN_PER_MINUTE: '3' });
  t.after(() => server.stop());
  const { page, trouble } = await openPerson(browser);
  await page.goto(server.url);
  const form = page.locator('#login-form');
  const error = page.locator('#login-error');

  let limited = null;
  for (let attempt = 0; attempt < 10 && !limited; attempt += 1) {
    await form.getByLabel('Username or email').fill('nobody');
    await form.getByLabel('Password').fill('not the password');
    const reply = page.waitForResponse((response) => response.url().endsWith('/api/v1/login'));
    await form.getByRole('button', { name: 'Log in' }).click();
    const response = await reply;
    if (response.status() === 429) limited = await response.json();
  }
  assert.ok(limited, 'the server never rate-limited logins');
  assert.equal(limited.error.code, 'rate_limited');
  await eventually(async () => (await error.textContent()) === limited.error.message, {
    message: 'the rate_limited message',
  });
  assert.deepEqual(await trouble.problems(), []);
});

test('a session revoked elsewhere sends the page back to the login screen', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { page, context, trouble } = await openPerson(browser);
  await server.createUser('revoked');
  await logInInUi(page, server, 'revoked');
  // Give the socket time to say hello, so the revocation arrives over it.
  await page.waitForFunction(() => document.querySelector('#conn-banner')?.hidden === true);
  await page.waitForTimeout(300);

  // Log the same session out from "another tab": same cookie, same origin.
  const [cookie] = (await context.cookies()).filter((c) => c.name === 'hearth_session');
  assert.ok(cookie, 'login set the hearth_session cookie');
  assert.equal(cookie.httpOnly, true);
  const reply = await server.api('POST', '/logout', {
    headers: { Cookie: `hearth_session=${cookie.value}`, Origin: server.url },
  });
  assert.equal(reply.status, 204);

  await page.getByRole('heading', { name: 'Log in' }).waitFor({ timeout: 10_000 });
  assert.match(await page.locator('#auth-notice').textContent(), /session has ended/);
  assert.deepEqual(await trouble.problems(), []);
});
