// A person's own account: signing up with an invite on an invite-only
// server, then, from the name at the foot of the sidebar, changing the
// password, seeing where they are logged in and signing another browser
// out, logging out everywhere and deleting the account. And, while two
// people talk, "alice is typing…" under the timeline.

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
  sendInUi,
} from './harness.mjs';

const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, hasTouch: true, isMobile: true };
const NEW_PASSWORD = 'a much longer new passphrase';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** What the API itself answers, to compare with what the page shows. */
async function apiError(server, method, path, body, token) {
  const reply = await server.api(method, path, { body, token });
  assert.ok(reply.status >= 400, `expected an error, got ${reply.status}`);
  return reply.body.error;
}

async function fillSignup(page, username) {
  const form = page.locator('#signup-form');
  await form.getByLabel('Username', { exact: true }).fill(username);
  await form.getByLabel('Email').fill(`${username}@example.test`);
  await form.getByLabel('Password').fill(PASSWORD);
  await form.getByRole('button', { name: 'Sign up' }).click();
}

/** Waits for `locator` to hold exactly `text`. */
async function shows(locator, text, message) {
  await eventually(async () => (await locator.textContent().catch(() => null)) === text, { message });
}

async function openAccount(page) {
  await page.getByRole('button', { name: 'Account settings' }).click();
  const dialog = page.getByRole('dialog', { name: 'Account' });
  await dialog.waitFor();
  return dialog;
}

/** Waits until the page's socket has said hello, so a revocation arrives over it. */
async function connected(page) {
  await page.waitForFunction(() => document.querySelector('#conn-banner')?.hidden === true);
  await page.waitForTimeout(300);
}

async function showsLogin(page, notice) {
  await page.getByRole('heading', { name: 'Log in' }).waitFor({ timeout: 10_000 });
  assert.match(await page.locator('#auth-notice').textContent(), notice);
  assert.equal(await page.locator('#app-view').isVisible(), false);
}

test('an invite-only server signs people up from an invite link, and says why a code is refused', async (t) => {
  const server = await TestServer.start({ HEARTH_REGISTRATION: 'invite' });
  t.after(() => server.stop());
  const { page, trouble } = await openPerson(browser);

  // Without a code the form asks for one, by the field that was not there before.
  await page.goto(server.url);
  await page.getByRole('button', { name: 'Create an account' }).click();
  assert.equal(await page.getByLabel(/Invite code/).isVisible(), false, 'an open-looking form shows an invite field');
  await fillSignup(page, 'hopeful');
  const missing = await apiError(server, 'POST', '/signup', {
    username: 'hopeful', email: 'hopeful@example.test', password: PASSWORD,
  });
  assert.equal(missing.code, 'invalid_invite');
  const inviteField = page.getByLabel(/Invite code/);
  await shows(page.locator('#signup-invite-error'), missing.message, 'the invalid_invite message by the code field');
  assert.equal(await inviteField.isVisible(), true);
  assert.equal(await inviteField.getAttribute('aria-invalid'), 'true');
  assert.ok((await inviteField.getAttribute('aria-describedby')).split(' ').includes('signup-invite-error'));
  assert.equal(await page.evaluate(() => document.activeElement.id), 'signup-invite');
  // A wrong code is refused the same way; typing a new one clears the error.
  await inviteField.fill('not-a-real-code');
  await page.locator('#signup-invite-error').waitFor({ state: 'hidden' });
  await page.locator('#signup-form').getByRole('button', { name: 'Sign up' }).click();
  await shows(page.locator('#signup-invite-error'), missing.message, 'a wrong code refused by the field');

  // The link an administrator sends opens the signup form with the code in it.
  const code = await server.inviteCode();
  await page.goto(`${server.url}/?invite=${encodeURIComponent(code)}`);
  await page.getByRole('heading', { name: 'Create an account' }).waitFor();
  assert.equal(await page.getByLabel(/Invite code/).inputValue(), code);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'signup-username');
  await screenshot(page, 'signup-invite');
  await fillSignup(page, 'invited');
  await page.locator('#app-view').waitFor();
  assert.equal(await page.locator('#me-name').textContent(), 'invited');
  assert.equal(new URL(page.url()).search, '', 'the used code stayed in the address bar');

  // The code was good for one signup: the same link now fails, by the field.
  const second = await openPerson(browser);
  await second.page.goto(`${server.url}/?invite=${encodeURIComponent(code)}`);
  await second.page.getByRole('heading', { name: 'Create an account' }).waitFor();
  await fillSignup(second.page, 'latecomer');
  await shows(second.page.locator('#signup-invite-error'), missing.message, 'a used-up code refused by the field');
  assert.equal(await second.page.locator('#app-view').isVisible(), false);

  assert.deepEqual(await trouble.problems(), []);
  assert.deepEqual(await second.trouble.problems(), []);
});

test('a closed server says so under the signup form', async (t) => {
  const server = await TestServer.start({ HEARTH_REGISTRATION: 'closed' });
  t.after(() => server.stop());
  const { page, trouble } = await openPerson(browser);
  await page.goto(server.url);
  await page.getByRole('button', { name: 'Create an account' }).click();
  await fillSignup(page, 'toolate');
  const closed = await apiError(server, 'POST', '/signup', {
    username: 'toolate', email: 'toolate@example.test', password: PASSWORD,
  });
  assert.equal(closed.code, 'registration_closed');
  await shows(page.locator('#signup-error'), closed.message, 'the registration_closed message under the form');
  assert.equal(await page.locator('#signup-error').getAttribute('role'), 'alert');
  assert.deepEqual(await trouble.problems(), []);
});

test('changing the password shows each error by its field and signs the other browser out', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { token } = await server.createUser('keeper');
  const here = await openPerson(browser);
  const there = await openPerson(browser);
  await logInInUi(here.page, server, 'keeper');
  await logInInUi(there.page, server, 'keeper');
  await connected(there.page);
  const { page } = here;

  const dialog = await openAccount(page);
  assert.match(await dialog.textContent(), /Logged in as keeper/);
  const current = dialog.getByLabel('Current password');
  const next = dialog.getByLabel('New password');
  const change = dialog.getByRole('button', { name: 'Change password' });

  // Empty: caught in the page.
  await change.click();
  assert.equal(await current.getAttribute('aria-invalid'), 'true');
  assert.equal(await next.getAttribute('aria-invalid'), 'true');

  // A wrong current password is an answer about that field, not a lost session.
  await current.fill('not my password');
  await next.fill(NEW_PASSWORD);
  await change.click();
  await page.locator('#current-password-error').waitFor();
  assert.equal(await current.getAttribute('aria-invalid'), 'true');
  assert.ok((await current.getAttribute('aria-describedby')).split(' ').includes('current-password-error'));
  assert.equal(await page.locator('#app-view').isVisible(), true, 'a wrong password logged the person out');

  // Too short: the server's own words, by the new password.
  const short = await apiError(server, 'POST', '/me/password', { current_password: PASSWORD, new_password: 'short' }, token);
  assert.equal(short.code, 'invalid_password');
  await current.fill(PASSWORD);
  await next.fill('short');
  await change.click();
  await shows(page.locator('#new-password-error'), short.message, 'the invalid_password message by the new password');
  assert.equal(await next.getAttribute('aria-invalid'), 'true');
  // The earlier error went once that field was typed in.
  assert.equal(await current.getAttribute('aria-invalid'), null);

  await next.fill(NEW_PASSWORD);
  await change.click();
  await page.locator('#password-done').waitFor();
  assert.match(await page.locator('#password-done').textContent(), /Password changed/);
  assert.equal(await current.inputValue(), '', 'the old password stayed in the form');

  // The other browser is signed out at once; this one stays.
  await showsLogin(there.page, /session has ended/);
  assert.equal(await page.locator('#app-view').isVisible(), true);
  await server.mustUnlessBusy(401, 'POST', '/login', { body: { login: 'keeper', password: PASSWORD } });
  await server.mustUnlessBusy(200, 'POST', '/login', { body: { login: 'keeper', password: NEW_PASSWORD } });

  // Escape closes the dialog and focus goes back to the button that opened it.
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });
  assert.equal(await page.evaluate(() => document.activeElement.id), 'account-button');

  assert.deepEqual(await here.trouble.problems(), []);
  assert.deepEqual(await there.trouble.problems(), []);
});

test('the sessions list names each browser, marks this one, and signs another out by keyboard', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  await server.createUser('traveller');
  const here = await openPerson(browser);
  // The user agent is whatever a client says: here, markup that must stay text.
  const hostileAgent = '<img src=x onerror="window.__pwned=true"> Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/128.0';
  const there = await openPerson(browser, { userAgent: hostileAgent });
  await logInInUi(there.page, server, 'traveller');
  await connected(there.page);
  await logInInUi(here.page, server, 'traveller');
  const { page } = here;

  // By keyboard: the account button, Enter, then Tab to the other browser's Sign out.
  await page.getByRole('button', { name: 'Account settings' }).focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'Account' });
  await dialog.waitFor();
  const sessions = dialog.locator('#sessions-list li');
  // This browser, the other one, and the test's own HTTP client that signed up (node's fetch).
  await eventually(async () => (await sessions.count()) === 3, { message: 'three sessions listed' });
  const names = await sessions.locator('.session-name').allTextContents();
  assert.deepEqual(names, ['Chrome on Linux', 'Firefox on Windows', 'node']);
  const mine = sessions.nth(0);
  assert.match(await mine.textContent(), /This device/);
  assert.equal(await mine.getByRole('button').count(), 0, 'this device offers Sign out (Log out is for that)');
  const signOut = sessions.nth(1).getByRole('button', { name: 'Sign out' });
  assert.equal(await signOut.getAttribute('aria-describedby'), await sessions.nth(1).locator('.session-name').getAttribute('id'));
  assert.equal(await dialog.locator('img').count(), 0, 'the user agent became markup');
  await screenshot(page, 'account-sessions');

  for (let i = 0; i < 20 && !(await signOut.evaluate((el) => el === document.activeElement)); i += 1) {
    await page.keyboard.press('Tab');
  }
  assert.equal(await signOut.evaluate((el) => el === document.activeElement), true, 'Tab never reached Sign out');
  await page.keyboard.press('Enter');

  // That browser is sent to the login screen, with the usual notice.
  await showsLogin(there.page, /session has ended/);
  await eventually(async () => (await sessions.count()) === 2, { message: 'the signed-out session gone from the list' });
  assert.match(await page.locator('#sessions-status').textContent(), /Signed out Firefox on Windows/);
  // Focus moved on to the next session's button rather than falling out of the dialog.
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Sign out');
  assert.equal(await page.evaluate(() => document.activeElement?.closest('li')?.querySelector('.session-name')?.textContent), 'node');
  assert.equal(await page.locator('#app-view').isVisible(), true);

  assert.equal(await there.page.evaluate(() => window.__pwned), false);
  assert.deepEqual(await here.trouble.problems(), []);
  assert.deepEqual(await there.trouble.problems(), []);
});

test('log out everywhere ends this session and every other one', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  await server.createUser('leaving');
  const here = await openPerson(browser);
  const there = await openPerson(browser);
  await logInInUi(there.page, server, 'leaving');
  await connected(there.page);
  await logInInUi(here.page, server, 'leaving');
  await connected(here.page);

  const dialog = await openAccount(here.page);
  await dialog.getByRole('button', { name: 'Log out everywhere' }).click();
  await showsLogin(here.page, /logged out on every device/);
  await showsLogin(there.page, /session has ended/);
  await here.page.reload();
  await here.page.getByRole('heading', { name: 'Log in' }).waitFor();
  assert.deepEqual(await here.trouble.problems(), []);
  assert.deepEqual(await there.trouble.problems(), []);
});

test('deleting the account asks for the password, then it is gone', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  await server.createUser('goner');
  const { page, trouble } = await openPerson(browser);
  await logInInUi(page, server, 'goner');
  await createRoomInUi(page, 'left behind');
  await sendInUi(page, 'my last words');
  await page.locator('#messages li[data-seq]', { hasText: 'my last words' }).waitFor();

  const dialog = await openAccount(page);
  await dialog.getByRole('button', { name: 'Delete account…' }).click();
  const confirm = page.getByRole('dialog', { name: 'Delete your account?' });
  await confirm.waitFor();
  const password = confirm.getByLabel('Your password');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'delete-password');

  // Cancel keeps everything.
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await confirm.waitFor({ state: 'hidden' });
  assert.equal(await dialog.isVisible(), true);

  await dialog.getByRole('button', { name: 'Delete account…' }).click();
  await password.fill('not my password');
  await password.press('Enter');
  await page.locator('#delete-password-error').waitFor();
  assert.equal(await password.getAttribute('aria-invalid'), 'true');
  assert.ok((await password.getAttribute('aria-describedby')).split(' ').includes('delete-password-error'));
  assert.equal(await page.locator('#app-view').isVisible(), true, 'a wrong password logged the person out');

  await password.fill(PASSWORD);
  await confirm.getByRole('button', { name: 'Delete account', exact: true }).click();
  await showsLogin(page, /account was deleted/);
  await server.mustUnlessBusy(401, 'POST', '/login', { body: { login: 'goner', password: PASSWORD } });
  assert.deepEqual(await trouble.problems(), []);
});

test('at 390 px the account dialog fits and nothing scrolls sideways', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  await server.createUser('a_rather_long_name_for_a_phone');
  const { page, trouble } = await openPerson(browser, PHONE);
  await logInInUi(page, server, 'a_rather_long_name_for_a_phone');
  await page.getByRole('button', { name: 'Account settings' }).click();
  const dialog = page.getByRole('dialog', { name: 'Account' });
  await dialog.waitFor();
  await page.locator('#sessions-list li').first().waitFor();
  const box = await dialog.boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 390, `the dialog spans ${box.x}..${box.x + box.width}`);
  const overflow = await dialog.evaluate((el) => el.scrollWidth - el.clientWidth);
  assert.equal(overflow, 0, 'the dialog scrolls sideways');
  assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 390);
  await screenshot(page, 'mobile-account');
  assert.deepEqual(await trouble.problems(), []);
});

// ---- Typing ---------------------------------------------------------------------------------

/** The `typing` frames a page sends over its socket, as they go. */
function watchTypingFrames(page) {
  const sent = [];
  page.on('websocket', (socket) => {
    socket.on('framesent', ({ payload }) => {
      if (typeof payload === 'string' && payload.includes('"typing"')) sent.push({ at: Date.now(), frame: JSON.parse(payload) });
    });
  });
  return sent;
}

test('others see who is typing, by name, until they send or stop; nobody sees themselves', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const names = ['watcher', 'alice', 'bob', 'carol'];
  const people = {};
  for (const name of names) people[name] = await server.createUser(name);
  const { room } = await server.must(201, 'POST', '/rooms', { token: people.watcher.token, body: { name: 'parlour' } });
  for (const name of names.slice(1)) {
    await server.must(200, 'POST', `/rooms/${room.id}/join`, { token: people[name].token });
  }
  const pages = {};
  const sent = {};
  for (const name of names) {
    const person = await openPerson(browser);
    t.after(() => person.context.close());
    pages[name] = person;
    sent[name] = watchTypingFrames(person.page);
    await logInInUi(person.page, server, name);
    await person.page.locator('#room-title', { hasText: 'parlour' }).waitFor();
    await connected(person.page);
  }
  const watcher = pages.watcher.page;
  const line = watcher.locator('#typing');
  assert.equal(await line.getAttribute('aria-live'), 'polite');
  // Record each time the line's words change: a typist's repeats must not re-announce it.
  await watcher.evaluate(() => {
    window.__typingChanges = [];
    const region = document.getElementById('typing');
    new MutationObserver(() => window.__typingChanges.push(region.textContent)).observe(region, {
      childList: true,
      subtree: true,
      characterData: true,
    });
  });
  const box = (name) => pages[name].page.getByLabel('Message', { exact: true });

  // Alice types for about five seconds: a frame at most every two seconds (2.5 s in fact).
  const started = Date.now();
  await box('alice').focus();
  while (Date.now() - started < 5000) await box('alice').pressSequentially('la', { delay: 60 });
  await shows(line, 'alice is typing…', 'alice shown as typing');
  const frames = sent.alice.map((s) => s.frame);
  assert.ok(frames.length >= 2 && frames.length <= 3, `alice sent ${frames.length} typing frames in 5 s`);
  assert.ok(frames.every((f) => f.type === 'typing' && f.room === room.id && Object.keys(f).length === 2));
  for (let i = 1; i < sent.alice.length; i += 1) {
    assert.ok(sent.alice[i].at - sent.alice[i - 1].at >= 1900, 'two typing frames within 2 s');
  }
  assert.equal(await pages.alice.page.locator('#typing').textContent(), '', 'alice sees herself typing');
  assert.deepEqual(await watcher.evaluate(() => window.__typingChanges), ['alice is typing…'], 'repeats rewrote the line');

  // Bob joins in, then Carol: two names, then "several".
  await box('bob').pressSequentially('hm');
  await shows(line, 'alice and bob are typing…', 'two names');
  await box('carol').pressSequentially('so');
  await shows(line, 'Several people are typing…', 'three typists summed up');
  const carolSeenAt = Date.now();

  // Carol sends: her name goes at once, not four seconds after her frame.
  await box('carol').press('Enter');
  await watcher.locator('#messages li[data-seq]', { hasText: 'so' }).waitFor();
  await shows(line, 'alice and bob are typing…', 'carol gone once her message arrived');
  assert.ok(Date.now() - carolSeenAt < 3500, 'carol\'s name waited for its timer, not her message');
  await screenshot(watcher, 'typing');

  // Nobody types any more: the names go about four seconds after their last frame.
  const quiet = Date.now();
  await shows(line, '', 'the line empty after the typists stopped');
  assert.ok(Date.now() - quiet <= 6000, 'names lingered well past 4 s');

  // Nothing is sent for an empty box, nor for a box without focus.
  await pages.alice.page.waitForTimeout(2100);
  const before = sent.alice.length;
  await box('alice').fill('');
  await box('alice').press('Space');
  await box('alice').press('Backspace');
  await pages.alice.page.locator('#room-title').click();
  await box('alice').evaluate((el) => {
    el.value = 'typed by a script';
    el.dispatchEvent(new Event('input'));
  });
  await pages.alice.page.waitForTimeout(300);
  assert.equal(sent.alice.length, before, 'a typing frame for an empty or unfocused box');

  for (const name of names) assert.deepEqual(await pages[name].trouble.problems(), [], name);
});
