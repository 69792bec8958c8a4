// Read state kept by the server, the same on every device: unread and mention
// badges from the server (after a reload, on a second device), kept live,
// cleared everywhere when one device reads the room, the "New messages"
// divider where the unread part began, and "Mark as unread" seen on both
// devices. One's own messages never count.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TestServer, eventually, launchBrowser, logInInUi, openPerson, sendInUi } from './harness.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** alice owns `general` and `random` (made in that order); bob is in both. */
async function twoRooms(t) {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const alice = await server.createUser('alice');
  const bob = await server.createUser('bob');
  const rooms = {};
  for (const name of ['general', 'random']) {
    ({ room: rooms[name] } = await server.must(201, 'POST', '/rooms', { token: alice.token, body: { name } }));
    await server.must(200, 'POST', `/rooms/${rooms[name].id}/join`, { token: bob.token });
  }
  return { server, alice, bob, rooms };
}

/** bob logged in on a device of his own (a browser profile), in `room`. */
async function bobOn(server, room) {
  const device = await openPerson(browser);
  await logInInUi(device.page, server, 'bob');
  await openRoom(device.page, room);
  return device;
}

async function openRoom(page, name) {
  await page.locator('#my-rooms a', { hasText: name }).click();
  await page.locator('#room-title', { hasText: name }).waitFor();
}

/**
 * What the room list shows for a room: the visible count, whether the
 * mention mark is there, and what a screen reader hears after the name.
 */
function badgeOf(page, name) {
  return page.locator('#my-rooms a', { hasText: name }).evaluate((link) => ({
    count: link.querySelector('.badge:not(.mention-badge)')?.textContent ?? '',
    mention: link.querySelector('.mention-badge') != null,
    spoken: link.querySelector('.visually-hidden')?.textContent ?? '',
  }));
}

/** Waits until the room's badge is `expected` ({count, mention, spoken}). */
async function badgeBecomes(page, name, expected, message) {
  let last;
  await eventually(
    async () => {
      last = await badgeOf(page, name);
      return JSON.stringify(last) === JSON.stringify(expected);
    },
    { message: `${message}: ${JSON.stringify(expected)}` },
  ).catch((error) => {
    throw new Error(`${error.message}; shown: ${JSON.stringify(last)}`);
  });
}

const none = { count: '', mention: false, spoken: '' };
const unread = (n, mentions = 0) => ({
  count: String(n),
  mention: mentions > 0,
  spoken: `, ${n} unread${mentions ? `, ${mentions} mention${mentions === 1 ? '' : 's'}` : ''}`,
});

/** The server's read state for bob in a room. */
async function serverState(server, token, roomId) {
  const { room } = await server.must(200, 'GET', `/rooms/${roomId}`, { token });
  return { read_seq: room.read_seq, unread_count: room.unread_count, mention_count: room.mention_count };
}

/** Pretends the tab went to the background (or came back), as switching tabs does. */
async function setHidden(page, hidden) {
  await page.evaluate((value) => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => value });
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (value ? 'hidden' : 'visible') });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

test('badges are the server\'s: live, after a reload, on a fresh device, with mentions; own messages never count', async (t) => {
  const { server, alice, bob, rooms } = await twoRooms(t);
  const phone = await bobOn(server, 'general');
  const { page } = phone;

  // Two messages by alice while bob looks at general.
  await server.post(alice.token, rooms.random.id, 'one');
  await server.post(alice.token, rooms.random.id, 'two');
  await badgeBecomes(page, 'random', unread(2), 'two unread in random');
  await eventually(async () => (await page.title()) === '(2) hearth', { message: 'the title "(2) hearth"' });

  // Bob writes in random from elsewhere (the API, as another device would):
  // sending reads the room, and his message is not unread.
  await server.post(bob.token, rooms.random.id, 'mine');
  await badgeBecomes(page, 'random', none, 'his own message read the room');
  assert.deepEqual(await serverState(server, bob.token, rooms.random.id), {
    read_seq: 3,
    unread_count: 0,
    mention_count: 0,
  });

  // A mention, and an @room from the room's creator.
  await server.post(alice.token, rooms.random.id, 'and @bob, look at this');
  await server.post(alice.token, rooms.random.id, 'plain');
  await server.post(alice.token, rooms.random.id, '@room lunch is here');
  await badgeBecomes(page, 'random', unread(3, 2), 'three unread, two mentions');

  // After a reload, the counts come back from the server, not from this browser.
  await page.evaluate(() => localStorage.clear());
  await page.reload();
  await page.locator('#room-title', { hasText: 'general' }).waitFor();
  await badgeBecomes(page, 'random', unread(3, 2), 'the same after a reload');
  assert.equal(await page.title(), '(3) hearth');

  // A device that never saw any of it shows the same.
  const laptop = await bobOn(server, 'general');
  await badgeBecomes(laptop.page, 'random', unread(3, 2), 'the same on a fresh device');
  assert.equal(
    await laptop.page.getByRole('link', { name: /^random\s*, 3 unread, 2 mentions$/ }).count(),
    1,
    'the link is named with its counts',
  );

  // The phone's messages in general never count for the phone or the laptop.
  await sendInUi(page, 'hello from the phone');
  await page.locator('#messages li[data-seq]', { hasText: 'hello from the phone' }).waitFor();
  await laptop.page.locator('#messages li[data-seq]', { hasText: 'hello from the phone' }).waitFor();
  await laptop.page.waitForTimeout(300);
  assert.deepEqual(await badgeOf(laptop.page, 'general'), none);
  assert.deepEqual(await badgeOf(page, 'general'), none);
  assert.equal((await serverState(server, bob.token, rooms.general.id)).unread_count, 0);

  assert.deepEqual(await phone.trouble.problems(), []);
  assert.deepEqual(await laptop.trouble.problems(), []);
});

test('reading a room on one device clears its badge on the other; a hidden tab does not read', async (t) => {
  const { server, alice, bob, rooms } = await twoRooms(t);
  const phone = await bobOn(server, 'general');
  const laptop = await bobOn(server, 'general');
  // The read frames the phone sends, with when.
  const reads = [];
  phone.page.on('websocket', (socket) =>
    socket.on('framesent', ({ payload }) => {
      const frame = typeof payload === 'string' ? JSON.parse(payload) : null;
      if (frame?.type === 'read') reads.push({ ...frame, at: Date.now() });
    }),
  );
  await phone.page.reload();
  await phone.page.locator('#room-title', { hasText: 'general' }).waitFor();

  const first = await server.post(alice.token, rooms.random.id, 'are you there?');
  await server.post(alice.token, rooms.random.id, 'hello?');
  await badgeBecomes(phone.page, 'random', unread(2), 'the phone shows two unread');
  await badgeBecomes(laptop.page, 'random', unread(2), 'the laptop shows two unread');

  // The phone opens random: read there, and so on the laptop too.
  await openRoom(phone.page, 'random');
  await phone.page.locator('#messages li[data-seq]', { hasText: 'hello?' }).waitFor();
  await badgeBecomes(phone.page, 'random', none, 'read on the phone');
  await badgeBecomes(laptop.page, 'random', none, 'the laptop hears it was read');
  assert.equal(await laptop.page.title(), 'hearth');
  assert.deepEqual(await serverState(server, bob.token, rooms.random.id), { read_seq: 2, unread_count: 0, mention_count: 0 });
  // Where the unread part began when the phone opened the room.
  const divider = phone.page.locator('#messages .unread-divider');
  assert.equal(await divider.count(), 1);
  assert.equal(await divider.evaluate((el) => Number(el.closest('li[data-seq]').dataset.seq)), first.seq);

  // While the phone's tab is in the background, what arrives stays unread,
  // on both devices, even though random is open on the phone.
  await setHidden(phone.page, true);
  await server.post(alice.token, rooms.random.id, 'ping while away');
  await phone.page.locator('#messages li[data-seq]', { hasText: 'ping while away' }).waitFor();
  await badgeBecomes(phone.page, 'random', unread(1), 'unread on the hidden phone');
  await badgeBecomes(laptop.page, 'random', unread(1), 'unread on the laptop');
  await phone.page.waitForTimeout(1500);
  assert.equal((await serverState(server, bob.token, rooms.random.id)).unread_count, 1, 'a hidden tab sent no read');

  // Back in front, with the newest message on screen: read everywhere.
  await setHidden(phone.page, false);
  await badgeBecomes(phone.page, 'random', none, 'read when the phone is back');
  await badgeBecomes(laptop.page, 'random', none, 'and on the laptop');
  assert.equal((await serverState(server, bob.token, rooms.random.id)).read_seq, 3);

  // A burst read as it comes is sent at most once a second, always forward.
  reads.length = 0;
  for (let n = 1; n <= 8; n += 1) await server.post(alice.token, rooms.random.id, `burst ${n}`);
  await phone.page.locator('#messages li[data-seq]', { hasText: 'burst 8' }).waitFor();
  await eventually(async () => (await serverState(server, bob.token, rooms.random.id)).read_seq === 11, {
    message: 'the phone\'s cursor at the end of the burst',
  });
  // The browser reports a sent frame a little after it is sent: the server
  // may have the cursor before this test hears of the frame.
  await eventually(async () => reads.length >= 1, { message: 'the phone\'s read frames, as the browser reports them' });
  assert.ok(reads.length >= 1 && reads.every((frame) => frame.room === rooms.random.id && !frame.force));
  for (let i = 1; i < reads.length; i += 1) {
    assert.ok(reads[i].seq > reads[i - 1].seq, `read frames go forward: ${JSON.stringify(reads)}`);
    assert.ok(reads[i].at - reads[i - 1].at >= 900, `read frames a second apart: ${JSON.stringify(reads)}`);
  }
  assert.deepEqual(await badgeOf(laptop.page, 'random'), none);

  assert.deepEqual(await phone.trouble.problems(), []);
  assert.deepEqual(await laptop.trouble.problems(), []);
});

test('the New divider sits at the first unread message, scrolled to, and reading waits for the newest', async (t) => {
  const { server, alice, bob, rooms } = await twoRooms(t);
  for (let n = 1; n <= 5; n += 1) await server.post(alice.token, rooms.random.id, `old ${n}`);
  // Bob read those on some device; then a long backlog arrives.
  await server.must(204, 'POST', `/rooms/${rooms.random.id}/read`, { token: bob.token, body: { seq: 5 } });
  for (let n = 1; n <= 70; n += 1) await server.post(alice.token, rooms.random.id, `backlog ${n}`);

  const { page, trouble } = await bobOn(server, 'general');
  await badgeBecomes(page, 'random', unread(70), 'seventy unread');
  await openRoom(page, 'random');

  // The first unread is more than a page back: it is loaded, marked and in view.
  const divider = page.locator('#messages .unread-divider');
  await divider.waitFor();
  assert.match(await divider.innerText(), /New messages/);
  const marked = divider.locator('xpath=ancestor::li[1]');
  await eventually(async () => (await marked.locator('.message-body').textContent()) === 'backlog 1', {
    message: 'the divider on "backlog 1"',
  });
  const pane = await page.locator('#timeline').boundingBox();
  await eventually(
    async () => {
      const box = await divider.boundingBox();
      return box && box.y >= pane.y - 1 && box.y + box.height <= pane.y + pane.height;
    },
    { message: 'the divider scrolled into view' },
  );

  // The newest message is not on screen yet: nothing is read.
  await page.waitForTimeout(1500);
  assert.deepEqual(await badgeOf(page, 'random'), unread(70));
  assert.equal((await serverState(server, bob.token, rooms.random.id)).read_seq, 5);

  // Scrolled to the end, it is; the divider stays while bob is in the room.
  await page.locator('#timeline').evaluate((el) => {
    el.scrollTop = el.scrollHeight;
  });
  await badgeBecomes(page, 'random', none, 'read at the bottom');
  await eventually(async () => (await serverState(server, bob.token, rooms.random.id)).read_seq === 75, {
    message: 'the server\'s cursor at the newest',
  });
  assert.equal(await divider.count(), 1, 'the divider stays until bob leaves the room');

  // Back later, nothing is new: no divider.
  await openRoom(page, 'general');
  await openRoom(page, 'random');
  await page.locator('#messages li[data-seq]', { hasText: 'backlog 70' }).waitFor();
  assert.equal(await divider.count(), 0);
  assert.deepEqual(await trouble.problems(), []);
});

test('"Mark as unread" brings the badge back on both devices and moves the divider', async (t) => {
  const { server, alice, bob, rooms } = await twoRooms(t);
  const phone = await bobOn(server, 'general');
  const laptop = await bobOn(server, 'general');
  const { page } = phone;
  for (const body of ['first', 'second @bob', 'third', 'fourth']) await server.post(alice.token, rooms.random.id, body);
  await badgeBecomes(laptop.page, 'random', unread(4, 1), 'four unread on the laptop');
  await openRoom(page, 'random');
  await badgeBecomes(laptop.page, 'random', none, 'read on the phone');

  // From the message menu, by keyboard: the second message and all after it are unread again.
  const second = page.locator('#messages li[data-seq]', { hasText: 'second' });
  await second.focus();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Message actions');
  await page.keyboard.press('Enter');
  const menu = page.getByRole('menu');
  await menu.waitFor();
  await menu.getByRole('menuitem', { name: 'Mark as unread' }).focus();
  await page.keyboard.press('Enter');
  await menu.waitFor({ state: 'hidden' });
  await page.getByText('Marked as unread (3 unread, 1 mention).').waitFor();

  await badgeBecomes(page, 'random', unread(3, 1), 'the phone shows three unread again');
  await badgeBecomes(laptop.page, 'random', unread(3, 1), 'and so does the laptop');
  assert.deepEqual(await serverState(server, bob.token, rooms.random.id), { read_seq: 1, unread_count: 3, mention_count: 1 });
  const divider = page.locator('#messages .unread-divider');
  assert.equal(await divider.count(), 1);
  assert.equal(await divider.locator('xpath=ancestor::li[1]').locator('.message-body').textContent(), 'second @bob');

  // Staying in the room does not read it again; what comes meanwhile adds up.
  await server.post(alice.token, rooms.random.id, 'fifth');
  await page.locator('#messages li[data-seq]', { hasText: 'fifth' }).waitFor();
  await badgeBecomes(page, 'random', unread(4, 1), 'four unread on the phone');
  await badgeBecomes(laptop.page, 'random', unread(4, 1), 'four unread on the laptop');
  await page.waitForTimeout(1200);
  assert.equal((await serverState(server, bob.token, rooms.random.id)).unread_count, 4);

  // Coming back to the room reads it.
  await openRoom(page, 'general');
  await openRoom(page, 'random');
  await badgeBecomes(page, 'random', none, 'read on coming back');
  await badgeBecomes(laptop.page, 'random', none, 'and on the laptop');
  assert.equal(await divider.locator('xpath=ancestor::li[1]').locator('.message-body').textContent(), 'second @bob');

  // Mark as unread is not offered on one's own message (it can never be unread).
  await sendInUi(page, 'my own words');
  const mine = page.locator('#messages li[data-seq]', { hasText: 'my own words' });
  await mine.waitFor();
  await mine.hover();
  await mine.getByRole('button', { name: 'Message actions' }).click();
  await menu.waitFor();
  assert.equal(await menu.getByRole('menuitem', { name: 'Mark as unread' }).count(), 0);
  await page.keyboard.press('Escape');

  assert.deepEqual(await phone.trouble.problems(), []);
  assert.deepEqual(await laptop.trouble.problems(), []);
});

test('a deleted unread message leaves the count, and the mention with it', async (t) => {
  const { server, alice, bob, rooms } = await twoRooms(t);
  const { page, trouble } = await bobOn(server, 'general');
  const mention = await server.post(alice.token, rooms.random.id, 'hey @bob, a question');
  const rest = await server.post(alice.token, rooms.random.id, 'never mind the rest');
  await badgeBecomes(page, 'random', unread(2, 1), 'two unread, one mention');

  await server.must(204, 'DELETE', `/rooms/${rooms.random.id}/messages/${mention.seq}`, { token: alice.token });
  await badgeBecomes(page, 'random', unread(1), 'the deleted mention is gone from the count');
  assert.deepEqual(await serverState(server, bob.token, rooms.random.id), { read_seq: 0, unread_count: 1, mention_count: 0 });

  // Deleted after a reload, when the page never saw the message: the counts are asked for again.
  await page.reload();
  await page.locator('#room-title', { hasText: 'general' }).waitFor();
  await server.post(alice.token, rooms.random.id, 'one more');
  await badgeBecomes(page, 'random', unread(2), 'two unread');
  await server.must(204, 'DELETE', `/rooms/${rooms.random.id}/messages/${rest.seq}`, { token: alice.token });
  await badgeBecomes(page, 'random', unread(1), 'one unread once the server is asked');
  assert.equal((await serverState(server, bob.token, rooms.random.id)).unread_count, 1);
  assert.deepEqual(await trouble.problems(), []);
});

test('on a phone the drawer says how many wait, and a room opened from it shows where they start', async (t) => {
  const { server, alice, rooms } = await twoRooms(t);
  const { page, trouble } = await openPerson(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await logInInUi(page, server, 'bob');
  const sidebar = page.locator('#sidebar');
  const drawerButton = page.locator('#sidebar-open');
  // Both rooms once, so both have their history loaded.
  for (const name of ['random', 'general']) {
    // Once the room list is in, a phone with no room open opens the drawer
    // by itself: open it here only while it is still shut, and look again.
    const link = sidebar.locator('#my-rooms a', { hasText: name });
    await eventually(async () => {
      if (await link.isVisible()) return true;
      if ((await drawerButton.getAttribute('aria-expanded')) !== 'true') {
        await drawerButton.click({ timeout: 1000 }).catch(() => {});
      }
      return link.isVisible();
    }, { message: `the drawer showing ${name}` });
    await link.click();
    await page.locator('#room-title', { hasText: name }).waitFor();
    await sidebar.waitFor({ state: 'hidden' });
  }

  await server.post(alice.token, rooms.random.id, 'first while away, @bob');
  await server.post(alice.token, rooms.random.id, 'second while away');
  await eventually(async () => (await drawerButton.getAttribute('aria-label')) === 'Open room list, 2 unread, 1 mention', {
    message: 'the drawer button names the counts',
  });
  assert.equal(await page.locator('#menu-unread').innerText(), '2');

  // The open drawer covers the messages: nothing in general is read meanwhile.
  await drawerButton.click();
  await sidebar.waitFor({ state: 'visible' });
  await server.post(alice.token, rooms.general.id, 'said under the drawer');
  await eventually(async () => (await drawerButton.getAttribute('aria-label')) === 'Open room list, 3 unread, 1 mention', {
    message: 'general counts while the drawer covers it',
  });
  await badgeBecomes(page, 'general', unread(1), 'general unread under the drawer');

  await sidebar.locator('#my-rooms a', { hasText: 'random' }).click();
  await page.locator('#room-title', { hasText: 'random' }).waitFor();
  const divider = page.locator('#messages .unread-divider');
  await divider.waitFor();
  assert.equal(
    await divider.locator('xpath=ancestor::li[1]').locator('.message-body').textContent(),
    'first while away, @bob',
  );
  await eventually(async () => (await drawerButton.getAttribute('aria-label')) === 'Open room list, 1 unread', {
    message: 'random read, general still unread',
  });

  // What comes in random while the drawer covers it waits; closing the
  // drawer (Escape) brings its newest message back on screen, and reads it.
  await drawerButton.click();
  await sidebar.waitFor({ state: 'visible' });
  await server.post(alice.token, rooms.random.id, 'third while the drawer is open');
  await badgeBecomes(page, 'random', unread(1), 'random unread under the drawer');
  await page.keyboard.press('Escape');
  await sidebar.waitFor({ state: 'hidden' });
  await eventually(async () => (await drawerButton.getAttribute('aria-label')) === 'Open room list, 1 unread', {
    message: 'random read once the drawer is closed',
  });
  assert.equal(await page.locator('#menu-unread').innerText(), '1');
  assert.deepEqual(await trouble.problems(), []);
});

test('after a reconnect the counts are the server\'s, and what is replayed is not counted again', async (t) => {
  const { server, alice, rooms } = await twoRooms(t);
  const phone = await openPerson(browser);
  const { page } = phone;
  // The phone's socket runs through a tunnel that can be cut.
  let cut = false;
  let live = null;
  await page.routeWebSocket(/\/api\/v1\/ws/, (socket) => {
    if (cut) {
      socket.close();
      return;
    }
    socket.connectToServer();
    live = socket;
  });
  await logInInUi(page, server, 'bob');
  await openRoom(page, 'general');
  const banner = page.locator('#conn-banner');
  const cutOff = async () => {
    cut = true;
    await live.close();
    await banner.waitFor({ state: 'visible' });
  };
  const reconnect = async () => {
    cut = false;
    // The page's own timed retry may get through first and hide the banner
    // (and its button) just as the click comes: then there is nothing to
    // click, and the banner going away is what counts.
    await page.getByRole('button', { name: 'Reconnect now' }).click({ timeout: 5000 })
      .catch(async (e) => { if (await banner.isVisible()) throw e; });
    await banner.waitFor({ state: 'hidden' });
  };

  await server.post(alice.token, rooms.random.id, 'one');
  await badgeBecomes(page, 'random', unread(1), 'one unread');
  // Every count random's badge shows from now on, however briefly.
  await page.evaluate(() => {
    window.shownCounts = [];
    const list = document.getElementById('my-rooms');
    new MutationObserver(() => {
      for (const link of list.querySelectorAll('a')) {
        if (link.querySelector('.room-name')?.textContent !== 'random') continue;
        const count = link.querySelector('.badge:not(.mention-badge)')?.textContent;
        if (count) window.shownCounts.push(Number(count));
      }
    }).observe(list, { childList: true, subtree: true, characterData: true });
  });

  // Offline, three more come (one a mention); back online, the page resumes
  // from 'one', the server replays the rest and its counts already hold them.
  await cutOff();
  for (const body of ['two', 'three', 'four for @bob']) await server.post(alice.token, rooms.random.id, body);
  await reconnect();
  await badgeBecomes(page, 'random', unread(4, 1), 'four unread after the reconnect');
  await page.waitForTimeout(1000);
  assert.deepEqual(await badgeOf(page, 'random'), unread(4, 1));
  const shown = await page.evaluate(() => window.shownCounts);
  assert.ok(Math.max(...shown) === 4, `the replay was counted again: the badge showed ${shown.join(', ')}`);

  // Read on another device while the phone is offline: no read frame reaches
  // the phone, and its next `ready` clears the badge.
  await cutOff();
  const laptop = await bobOn(server, 'random');
  await laptop.page.locator('#messages li[data-seq]', { hasText: 'four for @bob' }).waitFor();
  await badgeBecomes(laptop.page, 'random', none, 'read on the laptop');
  await reconnect();
  await badgeBecomes(page, 'random', none, 'read, as the phone hears once back');
  assert.deepEqual(await phone.trouble.problems(), []);
  assert.deepEqual(await laptop.trouble.problems(), []);
});
