// The admin panel: an administrator opens it from the account dialog and
// does each of its actions (accounts, invites and the sign-up mode, rooms,
// bots and webhooks), seeing each result on the page and checking it over
// the API; the health charts draw points while the panel is open; an
// ordinary account sees no entry and is refused if it calls the admin API
// itself; the panel works by keyboard and at 390 px.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import { PASSWORD, TestServer, eventually, launchBrowser, logInInUi, openPerson, screenshot } from './harness.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

const AXE_SOURCE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, hasTouch: true, isMobile: true };

/** A server whose first account (`root`, an administrator) is logged in in a browser. */
async function adminSession(t, contextOptions) {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const root = await server.createUser('root');
  const person = await openPerson(browser, contextOptions);
  t.after(() => person.context.close());
  await logInInUi(person.page, server, 'root');
  return { server, root, ...person };
}

/** Opens the admin panel from the account dialog; returns the panel. */
async function openPanel(page) {
  await page.getByRole('button', { name: 'Account settings' }).click();
  await page.getByRole('dialog', { name: 'Account' }).getByRole('button', { name: 'Open admin panel' }).click();
  const panel = page.getByRole('dialog', { name: 'Administration' });
  await panel.waitFor();
  return panel;
}

/** One account's row in the Users tab. */
const userRow = (panel, name) => panel.locator('#admin-section-users li.admin-item').filter({ has: panel.page().locator('strong', { hasText: new RegExp(`^${name}$`) }) });

test('an administrator manages accounts from the panel', async (t) => {
  const { server, page, trouble } = await adminSession(t);
  const bob = await server.createUser('bob');
  await server.createUser('carol');
  await server.createUser('dave');
  const panel = await openPanel(page);
  const users = panel.locator('#admin-section-users');
  await users.getByText('Accounts 1–4 of 4.').waitFor();

  // Search by email.
  await panel.getByLabel('Search accounts by name or email').fill('bob@example');
  await panel.getByRole('button', { name: 'Search', exact: true }).click();
  await users.getByText('Accounts 1–1 of 1.').waitFor();
  await panel.getByLabel('Search accounts by name or email').fill('');
  await panel.getByLabel('Search accounts by name or email').press('Enter');
  await users.getByText('Accounts 1–4 of 4.').waitFor();
  // One's own row offers no way to lock oneself out.
  assert.equal(await userRow(panel, 'root').getByRole('button', { name: /^Disable|^Delete|^Remove administrator/ }).count(), 0);

  // Disable, then enable.
  await userRow(panel, 'bob').getByRole('button', { name: 'Disable bob' }).click();
  await users.getByText('bob is disabled and signed out.').waitFor();
  await userRow(panel, 'bob').getByText(/disabled/).waitFor();
  await server.mustUnlessBusy(403, 'POST', '/login', { body: { login: 'bob', password: PASSWORD } });
  await userRow(panel, 'bob').getByRole('button', { name: 'Enable bob' }).click();
  await users.getByText('bob is enabled.').waitFor();
  const bobAgain = await server.must(200, 'POST', '/login', { body: { login: 'bob', password: PASSWORD } });

  // Make administrator, then take it back.
  await userRow(panel, 'carol').getByRole('button', { name: 'Make administrator carol' }).click();
  await users.getByText('carol is an administrator.').waitFor();
  await userRow(panel, 'carol').getByText(/administrator/).first().waitFor();
  const carolLogin = await server.must(200, 'POST', '/login', { body: { login: 'carol', password: PASSWORD } });
  assert.equal((await server.api('GET', '/me', { token: carolLogin.token })).body.user.admin, true);
  await userRow(panel, 'carol').getByRole('button', { name: 'Remove administrator carol' }).click();
  await users.getByText('carol is no longer an administrator.').waitFor();
  assert.equal((await server.api('GET', '/me', { token: carolLogin.token })).body.user.admin, undefined);

  // Sign out everywhere.
  await userRow(panel, 'bob').getByRole('button', { name: 'Sign out everywhere bob' }).click();
  await users.getByText('Ended 1 session(s) of bob.').waitFor();
  assert.equal((await server.api('GET', '/me', { token: bobAgain.token })).status, 401);
  void bob;

  // A reset link: shown with a Copy button, it opens a form that sets the password.
  await userRow(panel, 'dave').getByRole('button', { name: 'Reset link dave' }).click();
  const link = panel.getByLabel('Password reset link for dave');
  await link.waitFor();
  const url = await link.inputValue();
  assert.match(url, new RegExp(`^${server.url}/#reset=[A-Za-z0-9_-]+$`));
  assert.equal(await page.evaluate(() => document.activeElement.id), await link.getAttribute('id'), 'focus on the link');
  const dave = await openPerson(browser);
  t.after(() => dave.context.close());
  await dave.page.goto(url);
  const reset = dave.page.getByRole('dialog', { name: 'Choose a new password' });
  await reset.waitFor();
  assert.equal(new URL(dave.page.url()).hash, '', 'the code is taken out of the address');
  await reset.getByLabel('New password').fill('short');
  await reset.getByLabel('The same password again').fill('different');
  await reset.getByRole('button', { name: 'Set password' }).click();
  await reset.getByText('The two passwords differ; type the same one twice.').waitFor();
  await reset.getByLabel('The same password again').fill('short');
  await reset.getByRole('button', { name: 'Set password' }).click();
  await reset.getByText('The password must be 8 to 1024 characters long.').waitFor();
  await reset.getByLabel('New password').fill('a fresh password');
  await reset.getByLabel('The same password again').fill('a fresh password');
  await reset.getByRole('button', { name: 'Set password' }).click();
  await reset.getByText('Your password is set. Log in with it.').waitFor();
  await server.must(200, 'POST', '/login', { body: { login: 'dave', password: 'a fresh password' } });
  // Used once: opening it again says so in words.
  await dave.page.goto('about:blank');
  await dave.page.goto(url);
  await reset.getByLabel('New password').fill('yet another one');
  await reset.getByLabel('The same password again').fill('yet another one');
  await reset.getByRole('button', { name: 'Set password' }).click();
  await reset.getByText(/unknown, already used or expired/).waitFor();
  assert.deepEqual(await dave.trouble.problems(), []);

  // Delete asks first; Cancel keeps the account.
  await userRow(panel, 'carol').getByRole('button', { name: 'Delete… carol' }).click();
  const confirm = page.getByRole('alertdialog', { name: 'Delete carol?' });
  await confirm.waitFor();
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await server.mustUnlessBusy(200, 'POST', '/login', { body: { login: 'carol', password: PASSWORD } });
  await userRow(panel, 'carol').getByRole('button', { name: 'Delete… carol' }).click();
  await confirm.getByRole('button', { name: 'Delete account' }).click();
  await users.getByText('carol is deleted.').waitFor();
  await eventually(async () => (await userRow(panel, 'carol').count()) === 0, { message: 'carol gone from the list' });
  await server.mustUnlessBusy(401, 'POST', '/login', { body: { login: 'carol', password: PASSWORD } });

  // An error from the server is shown in words: the account was deleted meanwhile.
  await server.must(204, 'DELETE', `/admin/users/${bobAgain.user.id}`, { token: (await server.must(200, 'POST', '/login', { body: { login: 'root', password: PASSWORD } })).token });
  await userRow(panel, 'bob').getByRole('button', { name: 'Disable bob' }).click();
  await users.getByRole('alert').getByText('No such user.').waitFor();
  await screenshot(page, 'admin-users');
  assert.deepEqual(await trouble.problems(), []);
});

test('an administrator makes and revokes invites and changes who may sign up', async (t) => {
  const { server, page, trouble, root } = await adminSession(t);
  const panel = await openPanel(page);
  await panel.getByRole('tab', { name: 'Invites and sign-up' }).click();
  const section = panel.locator('#admin-section-invites');
  await section.getByText(/Now: Open: anyone may sign up \(from the server's config file; the config file says open\)/).waitFor();

  await section.getByRole('radio', { name: 'Invite only: with a code' }).check();
  await section.getByRole('button', { name: 'Save sign-up mode' }).click();
  await section.getByText('Sign-up is now invite.').waitFor();
  await section.getByText(/Now: Invite only: with a code \(chosen by an administrator/).waitFor();
  const setting = await server.must(200, 'GET', '/admin/registration', { token: root.token });
  assert.deepEqual(setting, { mode: 'invite', source: 'admin', config: 'open' });
  assert.equal((await server.api('POST', '/signup', { body: { username: 'xavier', email: 'x1@example.test', password: PASSWORD } })).body.error.code, 'invalid_invite');

  // An invalid number of uses is caught in words before anything is sent.
  await section.getByLabel('Number of uses').fill('0');
  await section.getByRole('button', { name: 'Create invite' }).click();
  await section.getByRole('alert').getByText('Number of uses: give a whole number, at least 1.').waitFor();

  await section.getByLabel('Number of uses').fill('2');
  await section.getByLabel('Expires after').selectOption({ label: '1 day' });
  await section.getByLabel('Note (who it is for)').fill('the climbing club');
  await section.getByRole('button', { name: 'Create invite' }).click();
  const link = section.getByLabel('Invite link');
  await link.waitFor();
  const url = await link.inputValue();
  assert.match(url, new RegExp(`^${server.url}/\\?invite=[A-Za-z0-9_-]+$`));
  await section.getByRole('button', { name: 'Copy' }).click();
  await section.getByText(/^Copied\.$|Could not copy/).waitFor();
  const item = section.locator('li.admin-item', { hasText: 'the climbing club' });
  await item.getByText(/2 use\(s\) left/).waitFor();

  // The link works for a sign-up.
  const code = new URL(url).searchParams.get('invite');
  await server.must(201, 'POST', '/signup', { body: { username: 'climber', email: 'c@example.test', password: PASSWORD, invite: code } });

  await item.getByRole('button', { name: 'Revoke the climbing club' }).click();
  await section.getByText('the climbing club is revoked.').waitFor();
  await eventually(async () => (await item.count()) === 0, { message: 'the invite gone from the list' });
  assert.equal((await server.must(200, 'GET', '/admin/invites', { token: root.token })).invites.length, 0);

  // Back to the config's setting.
  await section.getByRole('radio', { name: "The config file's setting (open)" }).check();
  await section.getByRole('button', { name: 'Save sign-up mode' }).click();
  await section.getByText('Sign-up is now open.').waitFor();
  assert.equal((await server.must(200, 'GET', '/admin/registration', { token: root.token })).source, 'config');
  assert.deepEqual(await trouble.problems(), []);
});

test('an administrator lists and deletes rooms, makes bots and sees webhooks', async (t) => {
  const { server, page, trouble, root } = await adminSession(t);
  const bob = await server.createUser('bob');
  const { room: quiet } = await server.must(201, 'POST', '/rooms', { token: bob.token, body: { name: 'quiet corner' } });
  const { room: busy } = await server.must(201, 'POST', '/rooms', { token: root.token, body: { name: 'busy hall' } });
  await server.post(root.token, busy.id, 'hello');
  await server.must(201, 'POST', `/rooms/${busy.id}/hooks`, { token: root.token, body: { name: 'ci alerts' } });
  const hostile = '<img src=x onerror="window.__pwned=true">';
  await server.must(201, 'POST', '/rooms', { token: bob.token, body: { name: hostile, topic: hostile } });
  const panel = await openPanel(page);

  await panel.getByRole('tab', { name: 'Rooms' }).click();
  const rooms = panel.locator('#admin-section-rooms');
  const busyRow = rooms.locator('li.admin-item', { hasText: 'busy hall' });
  await busyRow.getByText(/public · \d+ member\(s\) · \d+ event\(s\) · last active (?!never)/).waitFor();
  await rooms.locator('li.admin-item', { hasText: 'quiet corner' }).getByText(/last active never/).waitFor();
  // A hostile room name is shown as text.
  await rooms.locator('li.admin-item strong', { hasText: hostile }).waitFor();
  assert.equal(await page.evaluate(() => window.__pwned), false);
  assert.equal(await rooms.locator('img').count(), 0);
  await rooms.locator('li.admin-item', { hasText: 'quiet corner' }).getByRole('button', { name: 'Delete… quiet corner' }).click();
  const confirm = page.getByRole('alertdialog', { name: 'Delete quiet corner?' });
  await confirm.getByRole('button', { name: 'Delete room' }).click();
  await rooms.getByText('quiet corner is deleted.').waitFor();
  assert.equal((await server.api('GET', `/rooms/${quiet.id}`, { token: bob.token })).status, 404);

  await panel.getByRole('tab', { name: 'Bots' }).click();
  const bots = panel.locator('#admin-section-bots');
  // The hook's own bot is listed, with no callback.
  await bots.locator('li.admin-item', { hasText: 'ci alerts' }).getByText('No callback.').waitFor();
  await bots.getByRole('button', { name: 'Create bot' }).click();
  await bots.getByRole('alert').getByText('Give the bot a username.').waitFor();
  await bots.getByLabel('Bot username').fill('x');
  await bots.getByRole('button', { name: 'Create bot' }).click();
  await bots.getByRole('alert').getByText(/The username must be 3 to 32 characters/).waitFor();
  await bots.getByLabel('Bot username').fill('deploybot');
  await bots.getByRole('button', { name: 'Create bot' }).click();
  const token = bots.getByLabel('Token of deploybot');
  await token.waitFor();
  const first = await token.inputValue();
  assert.equal((await server.api('GET', '/me', { token: first })).body.user.username, 'deploybot');
  const row = bots.locator('li.admin-item', { hasText: 'deploybot' });
  await row.getByText('No callback.').waitFor();
  await row.getByRole('button', { name: 'New token… deploybot' }).click();
  await page.getByRole('alertdialog', { name: 'New token for deploybot?' }).getByRole('button', { name: 'Make a new token' }).click();
  await eventually(async () => (await token.inputValue()) !== first, { message: 'a new token shown' });
  assert.equal((await server.api('GET', '/me', { token: first })).status, 401, 'the old token stopped working');
  assert.equal((await server.api('GET', '/me', { token: await token.inputValue() })).status, 200);

  await bots.getByLabel('Room', { exact: true }).selectOption({ label: 'busy hall' });
  await bots.getByRole('button', { name: 'Show webhooks' }).click();
  await bots.getByLabel('Webhooks of the chosen room').getByText('ci alerts').waitFor();
  assert.deepEqual(await trouble.problems(), []);
});

test('the health charts fill while the panel is open', async (t) => {
  const { server, page, trouble, root } = await adminSession(t);
  const { room } = await server.must(201, 'POST', '/rooms', { token: root.token, body: { name: 'general' } });
  const panel = await openPanel(page);
  await panel.getByRole('tab', { name: 'Health' }).click();
  const health = panel.locator('#admin-section-health');
  await health.getByText(/^Up for .* storage takes writes/).waitFor();
  let n = 0;
  const sending = setInterval(() => {
    n += 1;
    server.post(root.token, room.id, `tick ${n}`).catch(() => {});
  }, 250);
  t.after(() => clearInterval(sending));
  // By CSS, not role: a closed dialog's images are hidden from roles, and
  // the last check counts them after closing.
  const points = (label) => health.locator(`svg[aria-label^="${label}:"] circle`).count();
  await eventually(async () => (await points('Connections')) >= 3, { timeout: 20_000, message: 'three readings of connections' });
  await eventually(async () => (await points('p99 ack latency')) >= 2 && (await points('Messages per second')) >= 2, { timeout: 20_000, message: 'ack latency and message rate points' });
  clearInterval(sending);
  const line = await health.getByRole('img', { name: /^Connections:/ }).locator('polyline').getAttribute('points');
  assert.ok(line.split(' ').length >= 3, `a line through the points: ${line}`);
  const rate = await health.getByRole('img', { name: /^Messages per second:/ }).getAttribute('aria-label');
  assert.match(rate, /^Messages per second: now [\d.]+; over the last \d+ readings from [\d.]+ to [\d.]+$/);
  assert.match(await health.locator('figure', { hasText: 'p99 ack latency' }).locator('.admin-figure-value').innerText(), /^[\d.]+ ms$/);
  assert.match(await health.locator('figure', { hasText: 'Connections' }).locator('.admin-figure-value').innerText(), /^[1-9]\d*$/);
  // Closing stops the readings.
  await page.keyboard.press('Escape');
  await panel.waitFor({ state: 'hidden' });
  const before = await points('Connections');
  await new Promise((resolve) => setTimeout(resolve, 2500));
  assert.equal(await points('Connections'), before);
  assert.deepEqual(await trouble.problems(), []);
});

test('an ordinary account sees no way in, and the admin API refuses it', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  await server.createUser('root');
  await server.createUser('bob');
  const { page, context, trouble } = await openPerson(browser);
  t.after(() => context.close());
  await logInInUi(page, server, 'bob');
  await page.getByRole('button', { name: 'Account settings' }).click();
  const account = page.getByRole('dialog', { name: 'Account' });
  await account.getByRole('heading', { name: 'Change password' }).waitFor();
  assert.equal(await account.getByRole('button', { name: 'Open admin panel' }).count(), 0);
  assert.equal(await page.locator('#admin-entry').isHidden(), true);
  const answers = await page.evaluate(async () => {
    const out = [];
    for (const [method, path] of [['GET', '/api/v1/admin/stats'], ['GET', '/api/v1/admin/users'], ['PUT', '/api/v1/admin/registration']]) {
      const r = await fetch(path, { method, credentials: 'same-origin', headers: { 'Content-Type': 'application/json' }, body: method === 'PUT' ? '{"mode":"open"}' : undefined });
      out.push([r.status, (await r.json()).error.code]);
    }
    return out;
  });
  assert.deepEqual(answers, [[403, 'not_an_admin'], [403, 'not_an_admin'], [403, 'not_an_admin']]);
  assert.deepEqual(await trouble.problems(), []);
});

test('at 390 px the panel fits, and its tabs work by keyboard', async (t) => {
  const { server, page, trouble } = await adminSession(t, PHONE);
  await server.createUser('a_rather_long_name_for_a_phone');
  const panel = await openPanel(page);
  await panel.locator('#admin-section-users li.admin-item').nth(1).waitFor();
  const fits = async () => {
    const box = await panel.boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= 390, `the panel spans ${box.x}..${box.x + box.width}`);
    assert.equal(await panel.evaluate((el) => el.scrollWidth - el.clientWidth), 0, 'the panel scrolls sideways');
    assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 390);
  };
  await fits();
  await screenshot(page, 'mobile-admin-users');
  // Arrow keys move along the tabs; the chosen one shows its section.
  await panel.getByRole('tab', { name: 'Users' }).focus();
  await page.keyboard.press('ArrowRight');
  const invites = panel.getByRole('tab', { name: 'Invites and sign-up' });
  assert.equal(await invites.getAttribute('aria-selected'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Invites and sign-up');
  await panel.getByRole('tabpanel', { name: 'Invites and sign-up' }).getByRole('button', { name: 'Create invite' }).waitFor();
  await fits();
  await page.keyboard.press('End');
  assert.equal(await panel.getByRole('tab', { name: 'Health' }).getAttribute('aria-selected'), 'true');
  await panel.getByRole('img', { name: /^Connections:/ }).locator('circle').first().waitFor();
  await fits();
  await screenshot(page, 'mobile-admin-health');
  await page.keyboard.press('Home');
  assert.equal(await panel.getByRole('tab', { name: 'Users' }).getAttribute('aria-selected'), 'true');
  assert.deepEqual(await trouble.problems(), []);
});

test('every tab of the panel and the reset form pass axe in light and dark', async (t) => {
  // axe is injected as a script, which the page's CSP forbids: this profile skips the CSP.
  const { server, page, root } = await adminSession(t, { bypassCSP: true });
  const bob = await server.createUser('bob');
  const { room } = await server.must(201, 'POST', '/rooms', { token: root.token, body: { name: 'general' } });
  await server.must(201, 'POST', `/rooms/${room.id}/hooks`, { token: root.token, body: { name: 'alerts' } });
  await server.must(201, 'POST', '/admin/invites', { token: root.token, body: { uses: 1, note: 'for bob' } });
  const audit = async (label) => {
    await page.addScriptTag({ path: AXE_SOURCE });
    const violations = await page.evaluate(async () => {
      const result = await window.axe.run(document, { resultTypes: ['violations'] });
      return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    });
    return violations.map((line) => `${label}: ${line}`);
  };
  const found = [];
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.reload();
    await page.locator('#app-view').waitFor();
    const panel = await openPanel(page);
    await panel.locator('#admin-section-users li.admin-item').nth(1).waitFor();
    await userRow(panel, 'bob').getByRole('button', { name: 'Reset link bob' }).click();
    await panel.getByLabel('Password reset link for bob').waitFor();
    found.push(...(await audit(`${scheme} users with a reset link`)));
    await panel.getByRole('tab', { name: 'Invites and sign-up' }).click();
    await panel.locator('#admin-section-invites li.admin-item', { hasText: 'for bob' }).waitFor();
    await panel.getByRole('button', { name: 'Create invite' }).click();
    await panel.getByLabel('Invite link').waitFor();
    found.push(...(await audit(`${scheme} invites`)));
    await panel.getByRole('tab', { name: 'Rooms' }).click();
    await panel.locator('#admin-section-rooms li.admin-item').first().waitFor();
    found.push(...(await audit(`${scheme} rooms`)));
    await panel.getByRole('tab', { name: 'Bots' }).click();
    await panel.locator('#admin-section-bots').getByText('No callback.').waitFor();
    found.push(...(await audit(`${scheme} bots`)));
    await panel.getByRole('tab', { name: 'Health' }).click();
    await panel.locator('svg[aria-label^="Rooms:"] circle').first().waitFor();
    found.push(...(await audit(`${scheme} health`)));
    await panel.locator('#admin-section-users').evaluate(() => {});
    await panel.getByRole('tab', { name: 'Users' }).click();
    await userRow(panel, 'bob').getByRole('button', { name: 'Delete… bob' }).click();
    await page.getByRole('alertdialog', { name: 'Delete bob?' }).waitFor();
    found.push(...(await audit(`${scheme} delete confirmation`)));
    await page.keyboard.press('Escape');
    const { path } = await server.must(201, 'POST', `/admin/users/${bob.user.id}/reset-link`, { token: root.token });
    await page.goto(`${server.url}${path}`);
    await page.getByRole('dialog', { name: 'Choose a new password' }).getByRole('button', { name: 'Set password' }).click();
    await page.locator('#reset-password-error').waitFor();
    found.push(...(await audit(`${scheme} reset form with an error`)));
  }
  assert.deepEqual(found, []);
});
