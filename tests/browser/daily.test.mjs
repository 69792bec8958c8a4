// Day-to-day use on a desktop: drafts stay with their room, messages written
// offline wait and go out by themselves, other people's rooms and joins show
// up live, right-to-left text reads right to left, focus lands where the
// person will type next, and the room dialog closes like any other.

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
  openRoomId,
  sendInUi,
  signUpInUi,
} from './harness.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

const messageBox = (page) => page.getByLabel('Message', { exact: true });

async function openRoomInSidebar(page, name) {
  await page.locator('#my-rooms a', { hasText: name }).click();
  await page.locator('#room-title', { hasText: name }).waitFor();
}

test('a draft stays with its room, survives a reload and is cleared on send', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { page, trouble } = await openPerson(browser);
  await signUpInUi(page, server, 'writer');
  await createRoomInUi(page, 'alpha');
  await createRoomInUi(page, 'beta');

  await openRoomInSidebar(page, 'alpha');
  await messageBox(page).fill('half a thought for alpha');
  await openRoomInSidebar(page, 'beta');
  assert.equal(await messageBox(page).inputValue(), '', 'alpha\'s draft followed into beta');
  await messageBox(page).fill('beta has its own');
  await openRoomInSidebar(page, 'alpha');
  assert.equal(await messageBox(page).inputValue(), 'half a thought for alpha');

  await page.reload();
  await page.locator('#room-title', { hasText: 'alpha' }).waitFor();
  await eventually(async () => (await messageBox(page).inputValue()) === 'half a thought for alpha', {
    message: 'alpha\'s draft back after a reload',
  });
  await openRoomInSidebar(page, 'beta');
  assert.equal(await messageBox(page).inputValue(), 'beta has its own');

  await messageBox(page).press('Enter');
  await page.locator('#messages li[data-seq]', { hasText: 'beta has its own' }).waitFor();
  assert.equal(await messageBox(page).inputValue(), '');
  await page.reload();
  await page.locator('#composer').waitFor();
  await openRoomInSidebar(page, 'beta');
  assert.equal(await messageBox(page).inputValue(), '', 'a sent draft came back');
  assert.deepEqual(await trouble.problems(), []);
});

test('messages queued while the socket is down survive a reload and go out once it is back', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { page, trouble } = await openPerson(browser);
  await signUpInUi(page, server, 'commuter');
  await createRoomInUi(page, 'tunnel');
  const roomId = openRoomId(page);

  // A tunnel: the socket is refused and every post is lost on the way.
  let inTunnel = true;
  await page.routeWebSocket(/\/api\/v1\/ws/, (ws) => (inTunnel ? ws.close() : ws.connectToServer()));
  await page.route('**/api/v1/rooms/*/messages', (route) =>
    route.request().method() === 'POST' ? route.abort('internetdisconnected') : route.fallback(),
  );
  await page.reload();
  await page.locator('#conn-banner').waitFor({ state: 'visible' });

  await sendInUi(page, 'first, from the tunnel');
  await sendInUi(page, 'second, from the tunnel');
  const queued = page.locator('#messages li.outgoing');
  await eventually(async () => (await queued.count()) === 2, { message: 'two queued messages' });
  await page.waitForTimeout(500);
  assert.deepEqual(
    await queued.evaluateAll((items) => items.map((li) => li.dataset.status)),
    ['pending', 'pending'],
    'offline messages must wait, not fail',
  );
  const clientIds = await queued.evaluateAll((items) => items.map((li) => li.dataset.clientId));

  await page.reload();
  await page.locator('#room-title', { hasText: 'tunnel' }).waitFor();
  await eventually(async () => (await queued.count()) === 2, { message: 'the queue back after a reload' });
  assert.deepEqual(await queued.evaluateAll((items) => items.map((li) => li.dataset.clientId)), clientIds);
  assert.deepEqual(await queued.evaluateAll((items) => items.map((li) => li.dataset.status)), ['pending', 'pending']);

  // Out of the tunnel.
  inTunnel = false;
  await page.unrouteAll({ behavior: 'ignoreErrors' });
  const retry = page.getByRole('button', { name: 'Reconnect now' });
  if (await retry.isVisible()) await retry.click();
  await page.locator('#messages li[data-seq]', { hasText: 'second, from the tunnel' }).waitFor({ timeout: 20_000 });
  assert.equal(await queued.count(), 0);
  const { token } = await server.must(200, 'POST', '/login', { body: { login: 'commuter', password: PASSWORD } });
  const { messages } = await server.must(200, 'GET', `/rooms/${roomId}/messages`, { token });
  assert.deepEqual(
    messages.map((m) => [m.body, m.client_id]),
    [
      ['first, from the tunnel', clientIds[0]],
      ['second, from the tunnel', clientIds[1]],
    ],
  );
  assert.deepEqual(await trouble.problems(), []);
});

test('new rooms, joins and leaves by others show up live', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const alice = await openPerson(browser);
  const bob = await openPerson(browser);
  await signUpInUi(alice.page, server, 'alice');
  await createRoomInUi(alice.page, 'lounge');
  await server.createUser('bob');
  await logInInUi(bob.page, server, 'bob');
  await bob.page.locator('#conn-banner').waitFor({ state: 'hidden' });
  await bob.page.waitForFunction(() => document.getElementById('other-rooms').childElementCount === 1);

  // Alice creates a room; Bob sees it without refreshing.
  await createRoomInUi(alice.page, 'just-made', 'Fresh out of the oven');
  await bob.page.getByRole('button', { name: 'Join just-made' }).waitFor({ timeout: 5000 });

  const members = alice.page.locator('#members-button');
  assert.match(await members.getAttribute('aria-label'), /1\b/);
  await bob.page.getByRole('button', { name: 'Join just-made' }).click();
  await bob.page.locator('#room-title', { hasText: 'just-made' }).waitFor();
  await eventually(async () => /\b2\b/.test(await members.getAttribute('aria-label')), {
    timeout: 5000,
    message: 'Alice\'s header counting two members',
  });

  await bob.page.getByRole('button', { name: /^Leave/ }).click();
  await eventually(async () => /\b1\b/.test(await members.getAttribute('aria-label')), {
    timeout: 5000,
    message: 'Alice\'s header back to one member',
  });
  assert.deepEqual(await alice.trouble.problems(), []);
  assert.deepEqual(await bob.trouble.problems(), []);
});

test('live frames are applied even before ready, and a deleted room goes away', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { page, trouble } = await openPerson(browser);
  await signUpInUi(page, server, 'watcher');
  await createRoomInUi(page, 'doomed');
  const doomedId = openRoomId(page);
  const other = await server.createUser('other');
  const { room: early } = await server.must(201, 'POST', '/rooms', { token: other.token, body: { name: 'early-bird' } });

  // A fresh socket whose first frames come before `ready`: what the server
  // may send in the moment between accepting the socket and replying.
  await page.routeWebSocket(/\/api\/v1\/ws/, (ws) => {
    const upstream = ws.connectToServer();
    let first = true;
    upstream.onMessage((message) => {
      if (first) {
        first = false;
        ws.send(JSON.stringify({ type: 'room_added', room: { ...early, joined: false } }));
      }
      ws.send(message);
    });
  });
  await page.reload();
  await page.getByRole('button', { name: 'Join early-bird' }).waitFor();
  await page.locator('#room-title', { hasText: 'doomed' }).waitFor();
  await page.locator('#conn-banner').waitFor({ state: 'hidden' });

  // An administrator (watcher, the first account) deletes the open room for
  // real, so the room list the page may re-read agrees with the frame.
  const { token } = await server.must(200, 'POST', '/login', { body: { login: 'watcher', password: PASSWORD } });
  await server.must(204, 'DELETE', `/rooms/${doomedId}`, { token });
  await page.locator('#my-rooms a', { hasText: 'doomed' }).waitFor({ state: 'detached', timeout: 5000 });
  await page.locator('#room-title', { hasText: 'hearth' }).waitFor();
  assert.equal(await page.locator('#composer').isVisible(), false);
  assert.equal(openRoomId(page), null);
  assert.deepEqual(await trouble.problems(), []);
});

test('right-to-left room names, topics and messages run right to left', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { page, trouble } = await openPerson(browser);
  await signUpInUi(page, server, 'noor');
  await createRoomInUi(page, 'مرحبا', 'موضوع الغرفة اليوم');
  await sendInUi(page, 'שלום לכולם, מה שלומכם?');
  await sendInUi(page, 'and a left-to-right one');
  await page.locator('#messages li[data-seq]', { hasText: 'left-to-right' }).waitFor();

  const direction = (locator) => locator.evaluate((el) => (el.matches(':dir(rtl)') ? 'rtl' : 'ltr'));
  assert.equal(await direction(page.locator('#room-title')), 'rtl');
  assert.equal(await direction(page.locator('#room-topic')), 'rtl');
  assert.equal(await direction(page.locator('#my-rooms .room-name').first()), 'rtl');
  const bodies = page.locator('#messages li[data-seq] .message-body');
  assert.equal(await direction(bodies.nth(0)), 'rtl');
  assert.equal(await direction(bodies.nth(1)), 'ltr');
  assert.deepEqual(await trouble.problems(), []);
});

test('focus goes to the message box after signing up, creating a room and joining one', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const host = await server.createUser('host');
  await server.must(201, 'POST', '/rooms', { token: host.token, body: { name: 'porch' } });
  const { page, trouble } = await openPerson(browser);
  const focused = () => page.evaluate(() => document.activeElement?.id || document.activeElement?.tagName);

  await signUpInUi(page, server, 'newbie');
  await eventually(async () => (await focused()) !== 'BODY', { message: 'focus somewhere after signing up' });
  await page.getByRole('button', { name: 'Join porch' }).click();
  await page.locator('#room-title', { hasText: 'porch' }).waitFor();
  await eventually(async () => (await focused()) === 'composer-input', { message: 'focus in the box after joining' });

  await createRoomInUi(page, 'attic');
  await eventually(async () => (await focused()) === 'composer-input', { message: 'focus in the box after creating' });

  // Logging back in opens a room, ready to type.
  await page.getByRole('button', { name: 'Log out' }).click();
  await logInInUi(page, server, 'newbie');
  await eventually(async () => (await focused()) === 'composer-input', { message: 'focus in the box after logging in' });
  assert.deepEqual(await trouble.problems(), []);
});

test('the room dialog closes on a click outside it', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { page, trouble } = await openPerson(browser);
  await signUpInUi(page, server, 'clicker');
  await createRoomInUi(page, 'den');
  await page.getByRole('button', { name: /^Members/ }).click();
  const dialog = page.locator('#members-dialog');
  await dialog.waitFor();
  await page.mouse.click(10, 790);
  await dialog.waitFor({ state: 'hidden', timeout: 2000 });
  // A click inside it leaves it open.
  await page.getByRole('button', { name: /^Members/ }).click();
  await dialog.locator('#members-list li').first().waitFor();
  await dialog.locator('#members-list li').first().click();
  assert.equal(await dialog.isVisible(), true);
  assert.deepEqual(await trouble.problems(), []);
});
