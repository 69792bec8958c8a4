// Talking to particular people: direct messages started from the sidebar's
// "New message" dialog and seen live by the people in them, private rooms
// that others never see listed, people added to a room by its owner, and the
// errors all of that can meet, as sentences; at phone width too.

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

/** The sidebar's Direct messages list. */
const directList = (page) => page.getByRole('navigation', { name: 'Direct messages' });

/** Opens "New message" and picks each of `names`, typing the first letters of each. */
async function chooseInNewMessage(page, names) {
  await directList(page).getByRole('button', { name: 'New message' }).click();
  const dialog = page.getByRole('dialog', { name: 'New message' });
  await dialog.waitFor();
  for (const name of names) await pickPerson(page, dialog, name);
  return dialog;
}

/** Types part of `name` in the people picker and picks the match. */
async function pickPerson(page, dialog, name) {
  const box = dialog.getByRole('combobox', { name: 'Find people by name' });
  await box.fill(name.slice(0, 3));
  await dialog.getByRole('option', { name: new RegExp(`^${name}`) }).click();
  await dialog.getByRole('button', { name: `Remove ${name}` }).waitFor();
}

test('a direct message is named by its people, reaches the other person live and cannot be left', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  for (const name of ['bob', 'carol', 'dave', 'erin']) await server.createUser(name);
  const alice = await openPerson(browser);
  const bob = await openPerson(browser);
  await signUpInUi(alice.page, server, 'alice');
  await logInInUi(bob.page, server, 'bob');
  await directList(bob.page).getByText('No direct messages yet.').waitFor();

  // Alice picks bob and carol, changes her mind about carol, and starts.
  const dialog = await chooseInNewMessage(alice.page, ['bob', 'carol']);
  assert.equal(await dialog.getByRole('option').count(), 0, 'picking clears the matches');
  await dialog.getByRole('button', { name: 'Remove carol' }).click();
  assert.deepEqual(await dialog.locator('.chip > span').allInnerTexts(), ['bob']);
  // Keyboard: arrows and Enter pick from the matches too.
  const box = dialog.getByRole('combobox', { name: 'Find people by name' });
  await box.fill('er');
  await dialog.getByRole('option', { name: /^erin/ }).waitFor();
  await box.press('ArrowDown');
  await box.press('Enter');
  await dialog.getByRole('button', { name: 'Remove erin' }).click();
  await dialog.getByRole('button', { name: 'Start' }).click();
  await dialog.waitFor({ state: 'hidden' });

  // The room opens, named for bob; no Leave; the message box has focus.
  await alice.page.locator('#room-title', { hasText: 'bob' }).waitFor();
  const dmId = openRoomId(alice.page);
  assert.equal(await alice.page.getByRole('button', { name: 'Leave room' }).isVisible(), false);
  assert.equal(await alice.page.evaluate(() => document.activeElement.id), 'composer-input');
  assert.equal(await directList(alice.page).locator('.room-name').innerText(), 'bob');
  assert.equal(await alice.page.locator('#my-rooms a').count(), 0, 'a direct room is not among the rooms');
  await sendInUi(alice.page, 'psst, got a minute?');

  // Bob sees it appear at once, named for alice, with an unread badge.
  const bobsLink = directList(bob.page).getByRole('link', { name: /alice/ });
  await bobsLink.waitFor();
  await eventually(async () => (await bobsLink.textContent()).includes('1 unread'), { message: 'bob\'s unread badge' });
  assert.equal(await bob.page.title(), '(1) hearth');
  await bobsLink.click();
  await bob.page.locator('#room-title', { hasText: 'alice' }).waitFor();
  await bob.page.locator('#messages li[data-seq]', { hasText: 'psst, got a minute?' }).waitFor();
  assert.equal(await bob.page.getByRole('button', { name: 'Leave room' }).isVisible(), false);
  assert.equal(await bob.page.getByRole('button', { name: 'Add people' }).isVisible(), false);
  await sendInUi(bob.page, 'sure, what is up?');
  await alice.page.locator('#messages li[data-seq]', { hasText: 'sure, what is up?' }).waitFor();

  // The same people always get the same room.
  await chooseInNewMessage(bob.page, ['alice']);
  await bob.page.getByRole('dialog', { name: 'New message' }).getByRole('button', { name: 'Start' }).click();
  await eventually(() => openRoomId(bob.page) === dmId, { message: 'the same room again' });
  assert.equal(await directList(bob.page).getByRole('link').count(), 1);

  // Someone else starts a group conversation: it shows up, named short in the
  // list and in full in the header and its details.
  const dave = await server.must(200, 'POST', '/login', { body: { login: 'dave', password: PASSWORD } });
  const ids = {};
  for (const name of ['alice', 'bob', 'carol', 'erin']) {
    const { users } = await server.must(200, 'GET', `/users?q=${name}`, { token: dave.token });
    ids[name] = users[0].id;
  }
  const { room: group } = await server.must(200, 'POST', '/dms', { token: dave.token, body: { users: Object.values(ids) } });
  const groupLink = directList(alice.page).getByRole('link', { name: 'bob, carol and 2 others' });
  await groupLink.waitFor();
  await server.post(dave.token, group.id, 'team lunch friday?');
  await eventually(async () => (await groupLink.textContent()).includes('1 unread'), { message: 'the group\'s badge' });
  await groupLink.click();
  await alice.page.locator('#room-title', { hasText: 'bob, carol, dave and erin' }).waitFor();
  await alice.page.locator('#messages li[data-seq]', { hasText: 'team lunch friday?' }).waitFor();
  await alice.page.locator('#room-title').click();
  await alice.page.getByRole('dialog', { name: 'bob, carol, dave and erin' }).locator('#members-list li').nth(4).waitFor();
  await alice.page.keyboard.press('Escape');

  // The room filter and the quick switcher know direct rooms by their people.
  await alice.page.getByLabel('Filter rooms').fill('bo');
  assert.equal(await directList(alice.page).getByRole('link').count(), 2);
  await alice.page.getByLabel('Filter rooms').fill('');
  await alice.page.keyboard.press('Control+k');
  await alice.page.getByRole('combobox', { name: 'Room name' }).fill('bob');
  await alice.page.keyboard.press('Enter');
  await eventually(() => openRoomId(alice.page) === dmId, { message: 'the switcher opened the direct room' });

  for (const person of [alice, bob]) assert.deepEqual(await person.trouble.problems(), []);
});

test('a private room has a lock, stays out of other lists, and its owner or a moderator adds people who see it live', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  await server.createUser('root'); // The first account: an administrator.
  const alice = await openPerson(browser);
  const bob = await openPerson(browser);
  await signUpInUi(alice.page, server, 'alice');
  await signUpInUi(bob.page, server, 'bob');

  // Alice makes a private room; the form says what that means.
  await alice.page.locator('#create-room summary').click();
  const privateBox = alice.page.getByRole('checkbox', { name: 'Private' });
  assert.match(await alice.page.locator(`#${await privateBox.getAttribute('aria-describedby')}`).innerText(), /only you can add people/);
  await privateBox.check();
  await createRoomInUi(alice.page, 'surprise party');
  const roomId = openRoomId(alice.page);
  await alice.page.locator('#my-rooms').getByRole('img', { name: 'Private room' }).waitFor();
  await alice.page.locator('#room-title').getByRole('img', { name: 'Private room' }).waitFor();
  assert.equal(await alice.page.locator('#my-rooms').getByRole('link', { name: 'Private room surprise party' }).count(), 1);
  await sendInUi(alice.page, 'cake or pie?');
  // The next room is public again: the box does not stick.
  await alice.page.locator('#create-room summary').click();
  assert.equal(await privateBox.isChecked(), false);
  await alice.page.locator('#create-room summary').click();

  // Bob never sees it listed, even after a refresh.
  await bob.page.getByRole('button', { name: 'Refresh room list' }).click();
  await bob.page.locator('#other-rooms-empty').waitFor();
  assert.equal(await bob.page.getByText('surprise party').count(), 0);

  // Alice adds bob from the header; he sees it appear live, lock and all.
  await alice.page.getByRole('button', { name: 'Add people' }).click();
  const dialog = alice.page.getByRole('dialog', { name: 'Add people to surprise party' });
  await dialog.waitFor();
  // Members are not offered.
  await dialog.getByRole('combobox').fill('al');
  await dialog.getByText(/Nobody found/).waitFor();
  await pickPerson(alice.page, dialog, 'bob');
  await dialog.getByRole('button', { name: 'Add', exact: true }).click();
  await dialog.waitFor({ state: 'hidden' });
  await alice.page.getByText('Added bob to surprise party.').waitFor();
  assert.equal(await alice.page.evaluate(() => document.activeElement.id), 'add-people-button', 'focus went back');
  await alice.page.getByRole('button', { name: 'Members, 2' }).waitFor();

  const bobsLink = bob.page.locator('#my-rooms').getByRole('link', { name: /surprise party/ });
  await bobsLink.waitFor();
  await bobsLink.getByRole('img', { name: 'Private room' }).waitFor();
  await bobsLink.click();
  await bob.page.locator('#messages li[data-seq]', { hasText: 'cake or pie?' }).waitFor();
  // Bob is not its owner: he cannot add anyone (the header nor the details).
  assert.equal(await bob.page.getByRole('button', { name: 'Add people' }).isVisible(), false);
  await bob.page.getByRole('button', { name: /^Members/ }).click();
  await bob.page.locator('#members-list li').nth(1).waitFor();
  assert.equal(await bob.page.locator('#members-add').isVisible(), false);
  await bob.page.keyboard.press('Escape');

  // Named a moderator, bob may add people too (the room does not say so: the member list does).
  const owner = await server.must(200, 'POST', '/login', { body: { login: 'alice', password: PASSWORD } });
  const bobId = (await server.must(200, 'GET', '/users?q=bob', { token: owner.token })).users[0].id;
  await server.must(204, 'PUT', `/rooms/${roomId}/members/${bobId}/role`, { token: owner.token, body: { role: 'moderator' } });
  await bob.page.reload();
  await bob.page.locator('#room-title', { hasText: 'surprise party' }).waitFor();
  await bob.page.getByRole('button', { name: 'Add people' }).waitFor();

  // The owner can also add from the room's details.
  await alice.page.getByRole('button', { name: /^Members/ }).click();
  await alice.page.getByRole('dialog', { name: 'surprise party' }).getByRole('button', { name: 'Add people' }).click();
  await alice.page.getByRole('dialog', { name: 'Add people to surprise party' }).waitFor();
  await alice.page.keyboard.press('Escape');

  // An administrator may add people to a public room someone else made.
  await createRoomInUi(bob.page, 'lobby');
  const root = await openPerson(browser);
  await logInInUi(root.page, server, 'root');
  await root.page.getByRole('button', { name: 'Join lobby' }).click();
  await root.page.locator('#room-title', { hasText: 'lobby' }).waitFor();
  await root.page.getByRole('button', { name: 'Add people' }).waitFor();

  for (const person of [alice, bob, root]) assert.deepEqual(await person.trouble.problems(), []);
});

test('what can go wrong reads as a sentence', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  await server.createUser('bob');
  const alice = await openPerson(browser);
  await signUpInUi(alice.page, server, 'alice');
  const { page } = alice;

  // Starting with nobody chosen.
  const dialog = await chooseInNewMessage(page, []);
  await dialog.getByRole('button', { name: 'Start' }).click();
  await dialog.getByRole('alert').filter({ hasText: 'Choose at least one person first.' }).waitFor();

  // The server's answers, as the person would meet them.
  const fail = (status, code) => (route) =>
    route.fulfill({ status, contentType: 'application/json', body: JSON.stringify({ error: { code, message: code } }) });
  await page.route(/\/api\/v1\/users\?/, fail(429, 'rate_limited'));
  await dialog.getByRole('combobox').fill('bo');
  await dialog.getByRole('alert').filter({ hasText: 'Too many searches at once.' }).waitFor();
  await page.unroute(/\/api\/v1\/users\?/);
  await pickPerson(page, dialog, 'bob');
  await page.route(/\/api\/v1\/dms$/, fail(404, 'user_not_found'));
  await dialog.getByRole('button', { name: 'Start' }).click();
  await dialog.getByRole('alert').filter({ hasText: 'That account no longer exists.' }).waitFor();
  assert.ok(await dialog.isVisible(), 'the dialog stays open to try again');
  await page.unroute(/\/api\/v1\/dms$/);
  await page.keyboard.press('Escape');

  await createRoomInUi(page, 'workshop');
  await page.route(/\/members$/, (route) =>
    route.request().method() === 'POST' ? fail(403, 'forbidden')(route) : route.continue(),
  );
  await page.getByRole('button', { name: 'Add people' }).click();
  const adding = page.getByRole('dialog', { name: 'Add people to workshop' });
  await pickPerson(page, adding, 'bob');
  await adding.getByRole('button', { name: 'Add', exact: true }).click();
  await adding.getByRole('alert').filter({ hasText: 'Only the room’s owner, its moderators or an administrator can add people' }).waitFor();
  await page.route(/\/members$/, (route) =>
    route.request().method() === 'POST' ? fail(409, 'direct_room')(route) : route.continue(),
  );
  await adding.getByRole('button', { name: 'Add', exact: true }).click();
  await adding.getByRole('alert').filter({ hasText: 'A direct conversation cannot be joined, left or added to.' }).waitFor();
  await page.keyboard.press('Escape');
  await adding.waitFor({ state: 'hidden' });
  // Focus went back to where the dialog was opened from.
  assert.equal(await page.evaluate(() => document.activeElement.id), 'add-people-button');

  assert.deepEqual(await alice.trouble.problems(), []);
});

test('at phone width the people dialog fits and nothing scrolls sideways', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const long = ['a_very_long_username_for_phones', 'another_long_username_here_ok', 'third_long_username_in_a_row'];
  for (const name of long) await server.createUser(name);
  const alice = await openPerson(browser, { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });
  const { page } = alice;
  await signUpInUi(page, server, 'alice');
  await page.locator('#sidebar.open').waitFor();

  const dialog = await chooseInNewMessage(page, long);
  const box = await dialog.boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 390, `the dialog fits across: ${JSON.stringify(box)}`);
  assert.ok(box.y >= 0 && box.y + box.height <= 844, `the dialog fits down: ${JSON.stringify(box)}`);
  assert.ok(await dialog.evaluate((el) => el.scrollWidth <= el.clientWidth), 'the dialog does not scroll sideways');
  await dialog.getByRole('button', { name: 'Start' }).click();
  await page.locator('#room-title', { hasText: long[0] }).waitFor();
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'the page does not scroll sideways');
  const title = await page.locator('#room-title').boundingBox();
  assert.ok(title.x + title.width <= 390);
  await page.getByRole('button', { name: 'Open room list' }).click();
  const link = directList(page).getByRole('link');
  await link.waitFor();
  assert.equal(await link.locator('.room-name').innerText(), `${long[0]}, ${long[1]} and ${long[2]}`);
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'the drawer does not scroll sideways');

  // On a phone, Add people lives in the room's details, leaving the header to the title.
  await createRoomInUi(page, 'allotment');
  assert.equal(await page.locator('#add-people-button').isVisible(), false);
  await page.locator('#room-title').tap();
  await page.getByRole('dialog', { name: 'allotment' }).getByRole('button', { name: 'Add people' }).tap();
  const adding = page.getByRole('dialog', { name: 'Add people to allotment' });
  await pickPerson(page, adding, long[2]);
  const addingBox = await adding.boundingBox();
  assert.ok(addingBox.x >= 0 && addingBox.x + addingBox.width <= 390, `the dialog fits: ${JSON.stringify(addingBox)}`);
  await adding.getByRole('button', { name: 'Add', exact: true }).tap();
  await adding.waitFor({ state: 'hidden' });
  await page.getByRole('button', { name: 'Members, 2' }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'room-title', 'focus back on the title');

  assert.deepEqual(await alice.trouble.problems(), []);
});
