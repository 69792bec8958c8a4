// Reading a room day to day: times and day separators in the reader's own
// locale, where the unread messages start and how many wait below, long
// messages folded, finding a room by name or keyboard, and a link to one
// message that opens the room right there.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
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

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * A fixed-offset time zone in which it is now between 5 and 6 in the
 * morning, so a 12-hour clock would show a leading zero if it could.
 */
function earlyMorningZone() {
  let offset = (5 - new Date().getUTCHours() + 48) % 24;
  if (offset > 14) offset -= 24;
  if (offset === 0) return 'Etc/GMT';
  // The Etc zones count the other way round: Etc/GMT-3 is UTC+3.
  return offset > 0 ? `Etc/GMT-${offset}` : `Etc/GMT+${-offset}`;
}

/** A room with one person and `count` messages from them, via the API. */
async function seededRoom(server, name, bodies) {
  const owner = await server.createUser(`${name}-owner`);
  const { room } = await server.must(201, 'POST', '/rooms', { token: owner.token, body: { name } });
  for (const body of bodies) await server.post(owner.token, room.id, body);
  return { owner, room };
}

test('times follow the browser locale, on every message, with day separators', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { room } = await seededRoom(server, 'clock', ['first of the day', 'a follow-up', 'and another']);
  const reader = await server.createUser('reader');
  await server.must(200, 'POST', `/rooms/${room.id}/join`, { token: reader.token });
  const timezoneId = earlyMorningZone();

  // en-US: a 12-hour clock without a leading zero.
  const us = await openPerson(browser, { locale: 'en-US', timezoneId });
  await logInInUi(us.page, server, 'reader');
  await us.page.goto(`${server.url}/#/room/${room.id}`);
  const first = us.page.locator('#messages li[data-seq]').first();
  await first.waitFor();
  const usTime = (await first.locator('time').innerText()).trim();
  assert.match(usTime, /^[1-9]:\d\d\s?AM$/, `en-US shows "${usTime}"`);
  assert.equal(await us.page.locator('#messages .day-separator').first().innerText(), 'Today');

  // A follow-up in a group shows its own time on hover and on focus.
  const followUp = us.page.locator('#messages li[data-seq]').nth(1);
  assert.equal(await followUp.evaluate((li) => li.classList.contains('continued')), true);
  await followUp.hover();
  await eventually(async () => followUp.locator('time').isVisible(), { message: 'the follow-up\'s time on hover' });
  await us.page.mouse.move(0, 0);
  await followUp.locator('time').waitFor({ state: 'hidden' });
  await followUp.focus();
  await eventually(async () => followUp.locator('time').isVisible(), { message: 'the follow-up\'s time on focus' });

  // en-GB and de-DE: 24-hour clocks.
  for (const locale of ['en-GB', 'de-DE']) {
    const person = await openPerson(browser, { locale, timezoneId });
    await logInInUi(person.page, server, 'reader');
    await person.page.goto(`${server.url}/#/room/${room.id}`);
    const time = (await person.page.locator('#messages li[data-seq] time').first().innerText()).trim();
    assert.match(time, /^0?[4-6]:\d\d$/, `${locale} shows "${time}"`);
    await person.context.close();
  }

  // Seen from tomorrow, the messages are yesterday's; from next week, a date.
  for (const [ahead, expected] of [
    [1, /^Yesterday$/],
    [6, /\d/],
  ]) {
    const later = await openPerson(browser, { locale: 'en-US', timezoneId });
    await later.page.clock.setFixedTime(new Date(Date.now() + ahead * DAY_MS));
    await logInInUi(later.page, server, 'reader');
    await later.page.goto(`${server.url}/#/room/${room.id}`);
    const separator = later.page.locator('#messages .day-separator').first();
    await separator.waitFor();
    const text = await separator.innerText();
    assert.match(text, expected, `${ahead} day(s) later the separator reads "${text}"`);
    assert.doesNotMatch(text, ahead > 1 ? /Today|Yesterday/ : /Today/);
    await later.context.close();
  }
  assert.deepEqual(await us.trouble.problems(), []);
});

test('jump to latest counts what is below without covering it, and a divider marks the unread', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { owner, room } = await seededRoom(
    server,
    'busy',
    Array.from({ length: 60 }, (_, i) => `backlog ${i + 1}`),
  );
  const { page, trouble } = await openPerson(browser);
  await signUpInUi(page, server, 'lurker');
  await page.getByRole('button', { name: 'Join busy' }).click();
  await page.locator('#messages li[data-seq]', { hasText: 'backlog 60' }).waitFor();
  await createRoomInUi(page, 'elsewhere');

  // Away in another room, three messages arrive in busy.
  for (const n of [1, 2, 3]) await server.post(owner.token, room.id, `while away ${n}`);
  await page.locator('#my-rooms a', { hasText: 'busy' }).locator('.badge').waitFor();
  await page.locator('#my-rooms a', { hasText: 'busy' }).click();
  const divider = page.locator('#messages .unread-divider');
  await divider.waitFor();
  assert.match(await divider.innerText(), /New messages/);
  assert.equal(
    await divider.evaluate((el) => el.closest('li[data-seq]')?.querySelector('.message-body')?.textContent),
    'while away 1',
  );
  assert.equal(
    await divider.evaluate((el) => el.closest('li[data-seq]').classList.contains('continued')),
    false,
    'after the divider the author is named again',
  );

  // Once read, there is no divider, even after a reload.
  await page.reload();
  await page.locator('#messages li[data-seq]', { hasText: 'while away 3' }).waitFor();
  await page.locator('#my-rooms a', { hasText: 'elsewhere' }).click();
  await page.locator('#room-title', { hasText: 'elsewhere' }).waitFor();
  await page.locator('#my-rooms a', { hasText: 'busy' }).click();
  await page.locator('#messages li[data-seq]', { hasText: 'while away 3' }).waitFor();
  assert.equal(await divider.count(), 0, 'everything was read, no divider');

  // Scrolled up, new messages wait below behind a counted button.
  await page.locator('#timeline').evaluate((el) => {
    el.scrollTop = 0;
  });
  await page.waitForTimeout(300);
  for (const n of [1, 2]) await server.post(owner.token, room.id, `below ${n}`);
  const jump = page.locator('#jump-latest');
  await eventually(async () => /\b2\b/.test((await jump.innerText().catch(() => '')) ?? ''), {
    message: 'the jump button counting 2 new messages',
  });
  assert.match(await jump.innerText(), /2 new messages/);
  const jumpBox = await jump.boundingBox();
  const paneBox = await page.locator('#timeline').boundingBox();
  assert.ok(
    jumpBox.y >= paneBox.y + paneBox.height || jumpBox.y + jumpBox.height <= paneBox.y,
    'the jump button covers the messages',
  );
  await jump.click();
  await jump.waitFor({ state: 'hidden' });
  await page.locator('#messages li[data-seq]', { hasText: 'below 2' }).waitFor();
  assert.deepEqual(await trouble.problems(), []);
});

test('a long message is folded with "Show more"', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const long = Array.from({ length: 40 }, (_, i) => `line ${i + 1}`).join('\n');
  await seededRoom(server, 'essays', [long, 'short reply']);
  const { page, trouble } = await openPerson(browser);
  await signUpInUi(page, server, 'skimmer');
  await page.getByRole('button', { name: 'Join essays' }).click();
  const message = page.locator('#messages li[data-seq]').first();
  await message.waitFor();
  const body = message.locator('.message-body');
  assert.ok(await body.evaluate((el) => el.scrollHeight > el.clientHeight + 100), 'the long message is not folded');
  assert.ok(await body.evaluate((el) => el.clientHeight < 24 * 22), 'folded to about 20 lines');
  assert.equal(await page.locator('#messages li[data-seq]').nth(1).getByRole('button', { name: 'Show more' }).count(), 0);
  const more = message.getByRole('button', { name: 'Show more' });
  await more.click();
  assert.ok(await body.evaluate((el) => el.scrollHeight <= el.clientHeight + 1), '"Show more" did not unfold it');
  await message.getByRole('button', { name: 'Show less' }).waitFor();
  assert.deepEqual(await trouble.problems(), []);
});

test('rooms are found by filter, by Ctrl+K and by Alt+arrows', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { page, trouble } = await openPerson(browser);
  await signUpInUi(page, server, 'navigator');
  const longName = 'a-very-long-room-name-that-the-sidebar-cannot-show-whole';
  for (const name of ['apples', 'bananas', 'cherries', longName]) await createRoomInUi(page, name);

  // The sidebar filter.
  await page.getByRole('searchbox', { name: 'Filter rooms' }).fill('nan');
  await eventually(
    async () => (await page.locator('#my-rooms a:visible .room-name').allInnerTexts()).join() === 'bananas',
    { message: 'only bananas left in the list' },
  );
  await page.getByRole('searchbox', { name: 'Filter rooms' }).fill('zzz');
  await page.locator('#room-filter-empty', { hasText: 'No room matches' }).waitFor();
  await page.getByRole('searchbox', { name: 'Filter rooms' }).fill('');
  assert.equal(await page.locator('#my-rooms a:visible').count(), 4);
  assert.equal(await page.locator('#my-rooms a', { hasText: longName }).getAttribute('title'), longName);

  // The quick switcher.
  await page.locator('#timeline').focus();
  await page.keyboard.press('Control+k');
  const switcher = page.getByRole('dialog', { name: 'Switch room' });
  await switcher.waitFor();
  await page.keyboard.type('cher');
  const options = switcher.getByRole('option');
  await eventually(async () => (await options.count()) === 1, { message: 'one matching room' });
  await page.keyboard.press('Enter');
  await page.locator('#room-title', { hasText: 'cherries' }).waitFor();
  await switcher.waitFor({ state: 'hidden' });

  // Alt+arrows walk the list in its order (alphabetical).
  await page.keyboard.press('Alt+ArrowUp');
  await page.locator('#room-title', { hasText: 'bananas' }).waitFor();
  await page.keyboard.press('Alt+ArrowDown');
  await page.locator('#room-title', { hasText: 'cherries' }).waitFor();
  assert.deepEqual(await trouble.problems(), []);
});

test('"Copy link" on a message opens the room at that message, loading history on the way', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { room } = await seededRoom(
    server,
    'archive',
    Array.from({ length: 130 }, (_, i) => `entry ${i + 1}`),
  );
  const { page, context, trouble } = await openPerson(browser);
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  await signUpInUi(page, server, 'librarian');
  await page.getByRole('button', { name: 'Join archive' }).click();
  const last = page.locator('#messages li[data-seq]', { hasText: 'entry 130' });
  await last.waitFor();

  // The menu by mouse: hover shows its button.
  await last.hover();
  const menuButton = last.getByRole('button', { name: /^Message actions/ });
  await menuButton.click();
  const menu = page.getByRole('menu');
  await menu.waitFor();
  await menu.getByRole('menuitem', { name: 'Copy link' }).click();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, `${server.url}/#/room/${room.id}/130`);
  await menu.waitFor({ state: 'hidden' });

  // By keyboard: from the message pane, an arrow reaches the newest message,
  // Tab its menu button, and Enter opens the menu with focus on its first item.
  await page.locator('#timeline').focus();
  await page.keyboard.press('ArrowUp');
  assert.equal(await page.evaluate(() => document.activeElement.querySelector('.message-body')?.textContent), 'entry 130');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Message actions');
  await page.keyboard.press('Enter');
  await menu.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('role')), 'menuitem');
  await page.keyboard.press('Escape');
  await menu.waitFor({ state: 'hidden' });
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')?.startsWith('Message actions')), true);

  // A link to message 7 opens the room there, well before the newest page.
  await page.goto(`${server.url}/#/room/${room.id}/7`);
  const target = page.locator('#messages li[data-seq="7"]');
  await target.waitFor({ timeout: 15_000 });
  await eventually(async () => target.evaluate((li) => li.classList.contains('highlighted')), {
    message: 'message 7 highlighted',
  });
  const box = await target.boundingBox();
  const pane = await page.locator('#timeline').boundingBox();
  assert.ok(box.y >= pane.y - 1 && box.y + box.height <= pane.y + pane.height + 1, 'message 7 is in view');
  assert.equal(openRoomId(page), room.id);

  // The same link opened afresh, as from another tab.
  const fresh = await context.newPage();
  await fresh.goto(`${server.url}/#/room/${room.id}/3`);
  const third = fresh.locator('#messages li[data-seq="3"]');
  await third.waitFor({ timeout: 15_000 });
  await eventually(async () => third.evaluate((li) => li.classList.contains('highlighted')), {
    message: 'message 3 highlighted in a fresh page',
  });
  await fresh.close();
  assert.deepEqual(await trouble.problems(), []);
});

test('a long press on a touch screen opens the message menu', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  await seededRoom(server, 'touchy', ['press and hold me']);
  const { page, trouble } = await openPerson(browser, {
    viewport: { width: 390, height: 844 },
    hasTouch: true,
    isMobile: true,
  });
  await signUpInUi(page, server, 'holder');
  await page.getByRole('button', { name: 'Join touchy' }).click();
  const message = page.locator('#messages li[data-seq]').first();
  await message.waitFor();
  await message.locator('.message-body').dispatchEvent('pointerdown', { pointerType: 'touch', isPrimary: true });
  await page.waitForTimeout(700);
  await message.locator('.message-body').dispatchEvent('pointerup', { pointerType: 'touch', isPrimary: true });
  const menu = page.getByRole('menu');
  await menu.waitFor({ timeout: 2000 });
  // Someone else's message: react, reply, mark as unread, copy; no edit or delete.
  const items = await menu.getByRole('menuitem').evaluateAll((entries) =>
    entries.map((entry) => entry.getAttribute('aria-label') ?? entry.textContent),
  );
  assert.deepEqual(items.slice(6), ['Add reaction…', 'Reply', 'Mark as unread', 'Copy link', 'Copy text']);
  assert.equal(items.filter((name) => name.startsWith('React with ')).length, 6);
  assert.deepEqual(await trouble.problems(), []);
});
