// Incoming webhooks in a room's details: its owner makes one, sees its
// address once (with a copy button and a warning), the address posts into
// the room as the hook's bot (tagged BOT), revoking asks first and makes the
// address 404; errors read as sentences; a plain member sees no such section.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TestServer, eventually, launchBrowser, logInInUi, openPerson } from './harness.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

async function openDetails(page) {
  await page.getByRole('button', { name: /^Members/ }).click();
  const dialog = page.locator('#members-dialog');
  await dialog.locator('#members-list li').first().waitFor();
  return dialog;
}

test('the owner makes a webhook, it posts as a bot, and revoking it makes it 404', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const alice = await server.createUser('alice');
  const bob = await server.createUser('bob');
  const { room } = await server.must(201, 'POST', '/rooms', { token: alice.token, body: { name: 'deploys' } });
  await server.must(200, 'POST', `/rooms/${room.id}/join`, { token: bob.token });

  const { page, trouble } = await openPerson(browser);
  await logInInUi(page, server, 'alice');
  await page.locator('#room-title', { hasText: 'deploys' }).waitFor();
  const details = await openDetails(page);
  const section = details.getByRole('region', { name: 'Webhooks' });
  await section.waitFor();
  await section.locator('#hooks-status', { hasText: 'No webhooks yet.' }).waitFor();

  // An empty name is caught here; one the server refuses reads as a sentence by the field.
  const name = section.getByLabel('New webhook', { exact: true });
  await section.getByRole('button', { name: 'Create webhook' }).click();
  await section.locator('#hook-name-error', { hasText: 'Give the webhook a name.' }).waitFor();
  await name.evaluate((input) => (input.value = 'x'.repeat(70)));
  await section.getByRole('button', { name: 'Create webhook' }).click();
  await section.locator('#hook-name-error', { hasText: '1 to 64 characters' }).waitFor();
  assert.equal(await name.getAttribute('aria-invalid'), 'true');

  await name.fill('CI builds');
  await name.press('Enter');
  const created = section.locator('#hook-created');
  await created.waitFor();
  await section.locator('#hook-created-title', { hasText: 'shown only this once' }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'hook-created-title', 'focus on the warning');
  const url = await section.getByLabel('Webhook address').inputValue();
  assert.match(url, new RegExp(`^${server.url.replace(/[.]/g, '\\.')}/api/v1/hooks/\\S+$`));
  await section.locator('#hooks-list li', { hasText: 'CI builds' }).waitFor();
  await section.locator('#hooks-status', { hasText: '1 webhook.' }).waitFor();
  // Copy: the clipboard, or failing that the address selected with a word on what to do.
  await section.getByRole('button', { name: 'Copy' }).click();
  await section.locator('#hook-copied', { hasText: /copied|Ctrl\+C/ }).waitFor();

  // The address works: the message arrives in the room as the hook's bot, tagged.
  const { hooks } = await server.must(200, 'GET', `/rooms/${room.id}/hooks`, { token: alice.token });
  const botName = hooks[0].user.username;
  const posted = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ text: 'build 42 passed' }),
  });
  assert.equal(posted.status, 201);
  await page.keyboard.press('Escape');
  await details.waitFor({ state: 'hidden' });
  const message = page.locator('#messages li[data-seq]', { hasText: 'build 42 passed' });
  await message.waitFor();
  // Under the hook's name (the bot's display name), its username on hover.
  await message.locator('.author', { hasText: 'CI builds' }).waitFor();
  assert.equal(await message.locator('.author').getAttribute('title'), botName);
  await message.locator('.bot-tag').waitFor();
  assert.match(await message.locator('.message-meta').innerText(), /BOT/);

  // Shown once: reopening the details does not show the address again.
  await openDetails(page);
  await section.locator('#hooks-list li', { hasText: 'CI builds' }).waitFor();
  assert.equal(await created.isVisible(), false);
  assert.equal(await page.locator('#hook-url').inputValue(), '');
  // The bot is tagged in the member list too.
  await details.locator('#members-list li', { hasText: botName }).locator('.bot-tag').waitFor();

  // Revoking asks first; Cancel keeps it.
  await section.getByRole('button', { name: 'Revoke webhook CI builds' }).click();
  const confirm = page.getByRole('dialog', { name: 'Revoke webhook CI builds?' });
  await confirm.waitFor();
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  assert.equal((await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"text":"still here"}' })).status, 201);
  await section.getByRole('button', { name: 'Revoke webhook CI builds' }).click();
  await confirm.waitFor();
  await confirm.getByRole('button', { name: 'Revoke' }).click();
  await section.locator('#hooks-status', { hasText: 'Webhook CI builds revoked.' }).waitFor();
  assert.equal(await section.locator('#hooks-list li').count(), 0);
  const gone = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"text":"too late"}' });
  assert.equal(gone.status, 404);
  assert.equal((await gone.json()).error.code, 'hook_not_found');

  // A plain member sees no webhooks at all.
  const other = await openPerson(browser);
  await logInInUi(other.page, server, 'bob');
  await other.page.locator('#room-title', { hasText: 'deploys' }).waitFor();
  const bobDetails = await openDetails(other.page);
  assert.equal(await bobDetails.locator('#hooks-section').isVisible(), false);
  assert.equal(await bobDetails.getByRole('region', { name: 'Webhooks' }).count(), 0);

  assert.deepEqual(await trouble.problems(), []);
  assert.deepEqual(await other.trouble.problems(), []);
});

test('past 20 webhooks the room says so', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const alice = await server.createUser('alice');
  const { room } = await server.must(201, 'POST', '/rooms', { token: alice.token, body: { name: 'busy' } });
  for (let n = 1; n <= 20; n += 1) {
    await server.must(201, 'POST', `/rooms/${room.id}/hooks`, { token: alice.token, body: { name: `hook ${n}` } });
  }
  const { page, trouble } = await openPerson(browser);
  await logInInUi(page, server, 'alice');
  await page.locator('#room-title', { hasText: 'busy' }).waitFor();
  const details = await openDetails(page);
  await details.locator('#hooks-status', { hasText: '20 webhooks.' }).waitFor();
  await details.getByLabel('New webhook', { exact: true }).fill('one too many');
  await details.getByRole('button', { name: 'Create webhook' }).click();
  await details.locator('#hooks-error', { hasText: 'already has 20 webhooks' }).waitFor();
  assert.equal(await details.locator('#hook-created').isVisible(), false);
  await eventually(async () => (await details.locator('#hooks-list li').count()) === 20, { message: '20 hooks listed' });
  assert.deepEqual(await trouble.problems(), []);
});

test('at 390 px the webhooks fit, and a hostile hook name stays text', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const alice = await server.createUser('alice');
  const { room } = await server.must(201, 'POST', '/rooms', { token: alice.token, body: { name: 'ops' } });
  const hostile = '<img src=x onerror="window.__pwned=true">';
  await server.must(201, 'POST', `/rooms/${room.id}/hooks`, { token: alice.token, body: { name: hostile } });

  const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, hasTouch: true, isMobile: true };
  const { page, trouble } = await openPerson(browser, PHONE);
  await logInInUi(page, server, 'alice');
  await page.goto(`${server.url}/#/room/${room.id}`);
  await page.locator('#room-title', { hasText: 'ops' }).waitFor();
  await page.locator('#chat-title').click();
  const dialog = page.locator('#members-dialog');
  await dialog.locator('#hooks-list li').first().waitFor();
  assert.equal(await dialog.locator('#hooks-list .hook-name').textContent(), hostile);
  assert.equal(await dialog.locator('#hooks-list img').count(), 0);
  await dialog.getByLabel('New webhook', { exact: true }).fill('Nightly builds from the long-named pipeline');
  await dialog.getByRole('button', { name: 'Create webhook' }).click();
  await dialog.locator('#hook-created').waitFor();
  const box = await dialog.boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 390, `the dialog spans ${box.x}..${box.x + box.width}`);
  assert.ok(await dialog.evaluate((d) => d.scrollWidth <= d.clientWidth), 'nothing in the dialog scrolls sideways');
  const copy = await dialog.getByRole('button', { name: 'Copy' }).boundingBox();
  assert.ok(copy.x + copy.width <= box.x + box.width, 'Copy is on screen');
  assert.equal(await page.evaluate(() => window.__pwned), false);
  assert.deepEqual(await trouble.problems(), []);
});
