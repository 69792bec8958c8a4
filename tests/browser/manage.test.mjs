// Presence and running a room: who is online (dots in the member list, the
// Direct messages list and a conversation's header, read out as "online" or
// "offline"), and what a room's owner and moderators do from its details —
// add people, remove them, ban and unban, name moderators, rename the room
// and change its topic — with everyone else's open page following live, and
// plain members offered none of it.

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
  screenshot,
} from './harness.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

// Presence frames are gathered for 2 s and only sent if the change still holds.
const PRESENCE_WAIT = { timeout: 15_000 };

/**
 * A server with an administrator nobody uses (the first account), so the
 * people in a test hold only the rights their rooms give them.
 */
async function serverWith(...names) {
  const server = await TestServer.start();
  await server.createUser('root');
  const people = {};
  for (const name of names) people[name] = await server.createUser(name);
  return { server, people };
}

/** A public room made over HTTP by `owner`, which the others join. */
async function seedRoom(server, name, owner, members = [], body = {}) {
  const { room } = await server.must(201, 'POST', '/rooms', { token: owner.token, body: { name, ...body } });
  for (const member of members) await server.must(200, 'POST', `/rooms/${room.id}/join`, { token: member.token });
  return room;
}

/** Logs `name` in, in a fresh profile, with `room` open. */
async function personIn(server, name, room, contextOptions) {
  const person = await openPerson(browser, contextOptions);
  await logInInUi(person.page, server, name);
  if (room) {
    await person.page.goto(`${server.url}/#/room/${room.id}`);
    await person.page.locator('#room-title', { hasText: room.name }).waitFor();
  }
  return person;
}

/** Opens the room's details (from the title) and waits for its member list. */
async function openDetails(page, roomName) {
  await page.locator('#room-info').click();
  const dialog = page.getByRole('dialog', { name: roomName });
  await dialog.waitFor();
  await dialog.locator('#members-list li').first().waitFor();
  return dialog;
}

/** One person's row in the member list. */
const memberRow = (dialog, name) =>
  dialog.locator('#members-list li').filter({ has: dialog.page().locator('.member-name', { hasText: new RegExp(`^${name}$`) }) });

/** Unfolds "Manage NAME" and presses one of its actions. */
async function manage(dialog, name, action) {
  const toggle = dialog.getByRole('button', { name: `Manage ${name}` });
  if ((await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click();
  await dialog.getByRole('group', { name: `Actions for ${name}` }).getByRole('button', { name: action }).click();
}

const sidebarRooms = (page) => page.locator('#my-rooms');

test('a dot turns green when someone comes online and grey when they go, and says so to screen readers', async (t) => {
  const { server, people } = await serverWith('alice', 'bob');
  t.after(() => server.stop());
  const room = await seedRoom(server, 'porch', people.alice, [people.bob]);
  await server.must(200, 'POST', '/dms', { token: people.alice.token, body: { users: [people.bob.user.id] } });

  const alice = await personIn(server, 'alice', room);
  const { page } = alice;
  const dmLink = page.getByRole('navigation', { name: 'Direct messages' }).getByRole('link');
  const dialog = await openDetails(page, 'porch');
  const bobRow = memberRow(dialog, 'bob');
  const bobDot = bobRow.locator('.presence');
  // Alice herself is online; bob has no page open.
  assert.equal(await memberRow(dialog, 'alice').locator('.presence').getAttribute('class'), 'presence online');
  assert.equal(await bobDot.getAttribute('class'), 'presence');
  assert.match(await bobRow.innerText(), /offline/);
  assert.match(await dialog.getByRole('status').first().innerText(), /2 members, 1 online/);
  assert.match(await dmLink.getAttribute('title'), /bob/);
  assert.match(await dmLink.innerText(), /offline/);

  // Bob opens hearth: alice's open dialog, her Direct messages list and the
  // conversation's header follow within a presence batch.
  const bob = await personIn(server, 'bob', room);
  await eventually(async () => (await bobDot.getAttribute('class')) === 'presence online', {
    ...PRESENCE_WAIT,
    message: 'bob\'s dot online',
  });
  assert.match(await bobRow.innerText(), /online/);
  assert.match(await dialog.getByRole('status').first().innerText(), /2 members, 2 online/);
  await eventually(async () => /, online/.test(await dmLink.innerText()), { message: 'the DM list says online' });
  assert.equal(await dmLink.locator('.presence.online').count(), 1);
  // His message in the timeline carries a dot on his avatar (silent there).
  await page.keyboard.press('Escape');
  await server.post(people.bob.token, room.id, 'evening all');
  const avatarDot = page.locator('#messages li[data-seq]', { hasText: 'evening all' }).locator('.avatar .presence');
  await eventually(async () => (await avatarDot.getAttribute('class')) === 'presence online', { message: 'avatar dot' });
  await dmLink.click();
  await page.locator('#room-topic').getByText('Online').waitFor();
  await screenshot(page, 'presence');

  // Bob closes his browser: everything turns grey again.
  await bob.context.close();
  await page.locator('#room-topic').getByText('Offline').waitFor(PRESENCE_WAIT);
  await eventually(async () => /, offline/.test(await dmLink.innerText()), { message: 'the DM list says offline' });
  await sidebarRooms(page).getByRole('link', { name: 'porch' }).click();
  await eventually(async () => (await avatarDot.getAttribute('class')) === 'presence', { message: 'avatar dot grey' });
  const dialog2 = await openDetails(page, 'porch');
  assert.match(await memberRow(dialog2, 'bob').innerText(), /offline/);

  assert.deepEqual(await alice.trouble.problems(), []);
});

test('the owner adds someone to a private room from its details, and their open page shows it at once', async (t) => {
  const { server } = await serverWith('alice', 'bob');
  t.after(() => server.stop());
  const alice = await personIn(server, 'alice');
  const bob = await personIn(server, 'bob');
  await alice.page.locator('#create-room summary').click();
  await alice.page.getByRole('checkbox', { name: 'Private' }).check();
  await createRoomInUi(alice.page, 'hideout');

  const dialog = await openDetails(alice.page, 'hideout');
  await dialog.getByText('Private room · hidden from everyone else').waitFor();
  await dialog.getByRole('button', { name: 'Add people' }).click();
  const adding = alice.page.getByRole('dialog', { name: 'Add people to hideout' });
  await adding.getByRole('combobox', { name: 'Find people by name' }).fill('bo');
  await adding.getByRole('option', { name: /^bob/ }).click();
  await adding.getByRole('button', { name: 'Add', exact: true }).click();
  await adding.waitFor({ state: 'hidden' });

  const link = sidebarRooms(bob.page).getByRole('link', { name: /hideout/ });
  await link.waitFor();
  await link.click();
  const bobsView = await openDetails(bob.page, 'hideout');
  await bobsView.getByText('Private room · hidden from everyone else').waitFor();
  await memberRow(bobsView, 'alice').getByText('Owner').waitFor();

  // Removed from a private room, bob loses it altogether: it is not his to join.
  // Add people closed the details; they reopen with bob in the list.
  await manage(await openDetails(alice.page, 'hideout'), 'bob', 'Remove from room');
  await alice.page.getByRole('dialog', { name: 'Remove bob from hideout?' }).getByText('only if someone adds them').waitFor();
  await alice.page.getByRole('button', { name: 'Remove', exact: true }).click();
  await bob.page.getByText('You were removed from hideout.').waitFor();
  await bobsView.waitFor({ state: 'hidden' });
  assert.equal(await bob.page.locator('#sidebar').getByText('hideout').count(), 0, 'not among his rooms nor the others');
  for (const person of [alice, bob]) assert.deepEqual(await person.trouble.problems(), []);
});

test('removing someone asks first; their open page drops the room and says so', async (t) => {
  const { server, people } = await serverWith('alice', 'bob');
  t.after(() => server.stop());
  const room = await seedRoom(server, 'den', people.alice, [people.bob]);
  const alice = await personIn(server, 'alice', room);
  const bob = await personIn(server, 'bob', room);

  const dialog = await openDetails(alice.page, 'den');
  // Cancel (which has focus) keeps him.
  await manage(dialog, 'bob', 'Remove from room');
  const confirm = alice.page.getByRole('dialog', { name: 'Remove bob from den?' });
  await confirm.waitFor();
  assert.equal(await alice.page.evaluate(() => document.activeElement.textContent), 'Cancel');
  await alice.page.keyboard.press('Enter');
  await confirm.waitFor({ state: 'hidden' });
  assert.equal(await memberRow(dialog, 'bob').count(), 1);
  assert.equal(openRoomId(bob.page), room.id);

  await manage(dialog, 'bob', 'Remove from room');
  await confirm.getByRole('button', { name: 'Remove' }).click();
  await dialog.getByText('bob was removed.').waitFor();
  assert.equal(await memberRow(dialog, 'bob').count(), 0);
  await alice.page.getByRole('button', { name: 'Members, 1' }).waitFor();

  await bob.page.getByText('You were removed from den.').waitFor();
  await bob.page.locator('#room-title', { hasText: 'hearth' }).waitFor();
  assert.equal(await sidebarRooms(bob.page).getByRole('link', { name: /den/ }).count(), 0);
  assert.equal(openRoomId(bob.page), null);
  // A public room: he may come back.
  await bob.page.getByRole('button', { name: 'Join den' }).click();
  await bob.page.locator('#room-title', { hasText: 'den' }).waitFor();
  for (const person of [alice, bob]) assert.deepEqual(await person.trouble.problems(), []);
});

test('a banned person is dropped and cannot join again until the ban is lifted', async (t) => {
  const { server, people } = await serverWith('alice', 'bob');
  t.after(() => server.stop());
  const room = await seedRoom(server, 'forge', people.alice, [people.bob]);
  const alice = await personIn(server, 'alice', room);
  const bob = await personIn(server, 'bob', room);

  const dialog = await openDetails(alice.page, 'forge');
  await dialog.getByText('Nobody is banned.').waitFor();
  await manage(dialog, 'bob', 'Ban');
  const confirm = alice.page.getByRole('dialog', { name: 'Ban bob from forge?' });
  await confirm.getByRole('button', { name: 'Ban' }).click();
  await dialog.getByText('bob was banned.').waitFor();
  assert.equal(await memberRow(dialog, 'bob').count(), 0);
  const lift = dialog.getByRole('button', { name: 'Lift ban on bob' });
  await lift.waitFor();

  await bob.page.getByText('You were banned from forge.').waitFor();
  await bob.page.getByRole('button', { name: 'Join forge' }).click();
  await bob.page.getByRole('alert').filter({ hasText: 'You are banned from forge.' }).waitFor();
  assert.equal(await sidebarRooms(bob.page).getByRole('link', { name: /forge/ }).count(), 0);

  // Adding him is refused too, in words.
  await dialog.getByRole('button', { name: 'Add people' }).click();
  const adding = alice.page.getByRole('dialog', { name: 'Add people to forge' });
  await adding.getByRole('combobox').fill('bo');
  await adding.getByRole('option', { name: /^bob/ }).click();
  await adding.getByRole('button', { name: 'Add', exact: true }).click();
  await adding.getByRole('alert').filter({ hasText: 'banned from this room' }).waitFor();
  await alice.page.keyboard.press('Escape');

  const again = await openDetails(alice.page, 'forge');
  await again.getByRole('button', { name: 'Lift ban on bob' }).click();
  await again.getByText('bob is no longer banned and may join again.').waitFor();
  await again.getByText('Nobody is banned.').waitFor();
  await bob.page.getByRole('button', { name: 'Join forge' }).click();
  await bob.page.locator('#room-title', { hasText: 'forge' }).waitFor();
  for (const person of [alice, bob]) assert.deepEqual(await person.trouble.problems(), []);
});

test('the owner names a moderator, who may then rename the room but not touch the owner', async (t) => {
  const { server, people } = await serverWith('alice', 'bob', 'carol');
  t.after(() => server.stop());
  const room = await seedRoom(server, 'workshop', people.alice, [people.bob, people.carol]);
  const alice = await personIn(server, 'alice', room);
  const bob = await personIn(server, 'bob', room);

  const dialog = await openDetails(alice.page, 'workshop');
  await manage(dialog, 'bob', 'Make moderator');
  await dialog.getByText('bob is now a moderator.').waitFor();
  await memberRow(dialog, 'bob').getByText('Moderator').waitFor();
  // Focus stays on the button, which now offers the way back.
  await dialog.getByRole('group', { name: 'Actions for bob' }).getByRole('button', { name: 'Make member' }).waitFor();
  assert.equal(await alice.page.evaluate(() => document.activeElement.textContent), 'Make member');

  // Bob's page learns his role from the member list, and offers him the tools.
  const bobs = await openDetails(bob.page, 'workshop');
  await memberRow(bobs, 'bob').getByText('Moderator').waitFor();
  assert.equal(await bobs.getByRole('button', { name: 'Manage alice' }).count(), 0, 'nobody manages the owner');
  await bobs.getByRole('button', { name: 'Manage carol' }).click();
  const carolActions = bobs.getByRole('group', { name: 'Actions for carol' });
  assert.deepEqual(await carolActions.getByRole('button').allInnerTexts(), ['Remove from room', 'Ban'], 'only the owner names moderators');

  await bobs.getByRole('button', { name: 'Edit name and topic' }).click();
  const name = bobs.getByRole('textbox', { name: 'Name' });
  assert.equal(await bob.page.evaluate(() => document.activeElement.id), 'settings-name');
  await name.fill('workshop-2');
  await bobs.getByRole('button', { name: 'Save' }).click();
  await bob.page.getByRole('dialog', { name: 'workshop-2' }).getByText('Saved.').waitFor();
  await alice.page.locator('#room-info', { hasText: 'workshop-2' }).waitFor();
  for (const person of [alice, bob]) assert.deepEqual(await person.trouble.problems(), []);
});

test('a plain member is offered no management, and a right lost meanwhile is refused in words', async (t) => {
  const { server, people } = await serverWith('alice', 'bob', 'carol');
  t.after(() => server.stop());
  const room = await seedRoom(server, 'library', people.alice, [people.bob, people.carol]);
  await seedRoom(server, 'archive', people.carol);
  const carol = await personIn(server, 'carol', room);

  const dialog = await openDetails(carol.page, 'library');
  await memberRow(dialog, 'bob').waitFor();
  await dialog.getByText('Public room · anyone on this server can find and join it').waitFor();
  for (const label of ['Edit name and topic', 'Add people', /^Manage/, /^Lift ban/]) {
    // Roles only find what is shown: hidden controls do not count.
    assert.equal(await dialog.getByRole('button', { name: label }).count(), 0, `${label} offered to a member`);
  }
  assert.equal(await dialog.getByRole('heading', { name: 'Banned' }).isVisible(), false);
  assert.equal(await dialog.getByRole('form', { name: 'Room settings' }).isVisible(), false);
  assert.equal(await carol.page.getByRole('button', { name: 'Add people' }).isVisible(), false);
  await memberRow(dialog, 'alice').getByText('Owner').waitFor();
  await carol.page.keyboard.press('Escape');

  // Made a moderator, carol starts renaming; the name is taken, then her
  // right is taken away before she saves: both refusals are sentences.
  await server.must(204, 'PUT', `/rooms/${room.id}/members/${people.carol.user.id}/role`, {
    token: people.alice.token,
    body: { role: 'moderator' },
  });
  const again = await openDetails(carol.page, 'library');
  await again.getByRole('button', { name: 'Edit name and topic' }).click();
  const name = again.getByRole('textbox', { name: 'Name' });
  await name.fill('Archive');
  await again.getByRole('button', { name: 'Save' }).click();
  await again.getByText('Another public room already has that name.').waitFor();
  assert.equal(await name.getAttribute('aria-invalid'), 'true');
  await server.must(204, 'PUT', `/rooms/${room.id}/members/${people.carol.user.id}/role`, {
    token: people.alice.token,
    body: { role: 'member' },
  });
  await name.fill('reading room');
  await again.getByRole('button', { name: 'Save' }).click();
  await again.getByRole('alert').filter({ hasText: 'Only the room’s owner or its moderators can change its name and topic.' }).waitFor();
  // The page reads her role again: the tools she lost go.
  await carol.page.locator('#settings-toggle').waitFor({ state: 'hidden' });
  assert.equal(await carol.page.locator('#room-settings-form').isVisible(), false);
  await again.getByRole('alert').filter({ hasText: 'Only the room’s owner' }).waitFor();
  assert.deepEqual(await carol.trouble.problems(), []);
});

test('a new name and topic reach every member\'s open page live', async (t) => {
  const { server, people } = await serverWith('alice', 'bob');
  t.after(() => server.stop());
  const room = await seedRoom(server, 'garden', people.alice, [people.bob], { topic: 'Seeds' });
  const alice = await personIn(server, 'alice', room);
  const bob = await personIn(server, 'bob', room);
  // Bob watches with the details open.
  const bobs = await openDetails(bob.page, 'garden');
  await bobs.getByText('Seeds').waitFor();

  const dialog = await openDetails(alice.page, 'garden');
  await dialog.getByRole('button', { name: 'Edit name and topic' }).click();
  // An empty name is caught here, never sent.
  await dialog.getByRole('textbox', { name: 'Name' }).fill('  ');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.getByText('A room needs a name.').waitFor();
  // Escape folds the form away, leaving the dialog open.
  await dialog.getByRole('textbox', { name: 'Name' }).press('Escape');
  await dialog.getByRole('textbox', { name: 'Name' }).waitFor({ state: 'hidden' });
  assert.ok(await dialog.isVisible());
  await dialog.getByRole('button', { name: 'Edit name and topic' }).click();
  await dialog.getByRole('textbox', { name: 'Name' }).fill('allotment');
  await dialog.getByRole('textbox', { name: 'Topic' }).fill('Seeds, swaps and the rota');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await alice.page.getByRole('dialog', { name: 'allotment' }).getByText('Saved.').waitFor();
  assert.equal(await alice.page.evaluate(() => document.activeElement.id), 'settings-toggle', 'focus back on its button');

  await bob.page.getByRole('dialog', { name: 'allotment' }).getByText('Seeds, swaps and the rota').waitFor();
  await bob.page.keyboard.press('Escape');
  await bob.page.locator('#room-info', { hasText: 'allotment' }).waitFor();
  await bob.page.locator('#room-topic', { hasText: 'Seeds, swaps and the rota' }).waitFor();
  await sidebarRooms(bob.page).getByRole('link', { name: 'allotment' }).waitFor();
  assert.equal(await bob.page.getByLabel('Message', { exact: true }).getAttribute('placeholder'), 'Message allotment');
  for (const person of [alice, bob]) assert.deepEqual(await person.trouble.problems(), []);
});

test('at phone width the details and their actions fit without sideways scrolling', async (t) => {
  const { server, people } = await serverWith('alice', 'a_long_username_for_phones_ok');
  t.after(() => server.stop());
  const room = await seedRoom(server, 'allotment', people.alice, [people.a_long_username_for_phones_ok]);
  const phone = { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true };
  const alice = await personIn(server, 'alice', room, phone);
  const { page } = alice;
  await page.locator('#room-title').tap();
  const dialog = page.getByRole('dialog', { name: 'allotment' });
  await dialog.locator('#members-list li').nth(1).waitFor();
  await dialog.getByRole('button', { name: 'Manage a_long_username_for_phones_ok' }).tap();
  await dialog.getByRole('button', { name: 'Edit name and topic' }).tap();
  const box = await dialog.boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 390, `the dialog fits across: ${JSON.stringify(box)}`);
  assert.ok(await dialog.evaluate((el) => el.scrollWidth <= el.clientWidth), 'the dialog does not scroll sideways');
  for (const button of await dialog.getByRole('group').getByRole('button').all()) {
    const b = await button.boundingBox();
    assert.ok(b.x >= box.x && b.x + b.width <= box.x + box.width, 'an action sticks out');
  }
  await screenshot(page, 'mobile-room-details');
  assert.deepEqual(await alice.trouble.problems(), []);
});
