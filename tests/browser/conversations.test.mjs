// Conversations beyond sending: editing and deleting a message, replying to
// one, reacting to one and mentioning someone. Two (or three) people in
// their own browser profiles; whatever one does, the others see live, and a
// reload (history) or a reconnect (resume) shows the same.

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

/**
 * A server with an administrator (the first account, who is not in the
 * conversation unless asked), a room made by the first of `names`, and
 * everyone named in it. Returns {server, room, users: {name: {user, token}}}.
 */
async function conversation(t, names) {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const users = { root: await server.createUser('root') };
  for (const name of names) users[name] = await server.createUser(name);
  const { room } = await server.must(201, 'POST', '/rooms', { token: users[names[0]].token, body: { name: 'porch' } });
  for (const name of names.slice(1)) {
    await server.must(200, 'POST', `/rooms/${room.id}/join`, { token: users[name].token });
  }
  return { server, room, users };
}

/** Logs `username` in, in a profile of their own, with the room open. */
async function personInRoom(server, room, username, contextOptions) {
  const person = await openPerson(browser, contextOptions);
  await logInInUi(person.page, server, username);
  await person.page.goto(`${server.url}/#/room/${room.id}`);
  await person.page.locator('#composer').waitFor();
  return person;
}

/** The message whose own body (not a quote of it) contains `text`. */
const messageWith = (page, text) =>
  page.locator('#messages li[data-seq]').filter({ has: page.locator('.message-main > .message-body', { hasText: text }) });

/** Opens a message's menu with the mouse; returns the menu. */
async function openMenu(page, message) {
  await message.hover();
  await message.getByRole('button', { name: 'Message actions' }).click();
  const menu = page.getByRole('menu');
  await menu.waitFor();
  return menu;
}

async function menuItems(page, message) {
  const menu = await openMenu(page, message);
  const names = await menu.getByRole('menuitem').evaluateAll((items) =>
    items.map((item) => item.getAttribute('aria-label') ?? item.textContent),
  );
  await page.keyboard.press('Escape');
  await menu.waitFor({ state: 'hidden' });
  return names;
}

test('an author edits inline (Enter saves, Escape cancels, Up edits the last), and others see it live with its history', async (t) => {
  const { server, room } = await conversation(t, ['alice', 'bob']);
  const alice = await personInRoom(server, room, 'alice');
  const bob = await personInRoom(server, room, 'bob');

  await sendInUi(alice.page, 'helo wrld');
  const mine = messageWith(alice.page, 'helo wrld');
  await mine.waitFor();
  await messageWith(bob.page, 'helo wrld').waitFor();

  // Escape leaves the message as it was.
  let menu = await openMenu(alice.page, mine);
  await menu.getByRole('menuitem', { name: 'Edit' }).click();
  const editor = alice.page.getByRole('textbox', { name: 'Edit message' });
  await editor.waitFor();
  assert.equal(await editor.evaluate((box) => box === document.activeElement), true, 'the editor has focus');
  assert.equal(await editor.inputValue(), 'helo wrld');
  await editor.fill('discarded');
  await editor.press('Escape');
  await editor.waitFor({ state: 'detached' });
  assert.equal(await mine.locator('.message-body').innerText(), 'helo wrld');
  assert.equal(await mine.getByRole('button', { name: /^Edited/ }).count(), 0);

  // Enter saves; both screens show the new text and "(edited)".
  menu = await openMenu(alice.page, mine);
  await menu.getByRole('menuitem', { name: 'Edit' }).click();
  await editor.fill('hello world');
  await editor.press('Enter');
  await editor.waitFor({ state: 'detached' });
  await messageWith(alice.page, 'hello world').getByText('(edited)').waitFor();
  const theirs = messageWith(bob.page, 'hello world');
  await theirs.getByText('(edited)').waitFor();
  assert.equal(await messageWith(bob.page, 'helo wrld').count(), 0);

  // Hovering "(edited)" shows the versions, the original first.
  await theirs.getByText('(edited)').hover();
  const history = bob.page.getByRole('dialog', { name: 'Edit history' });
  await history.locator('li').nth(1).waitFor();
  assert.deepEqual(await history.locator('.edit-body').allInnerTexts(), ['helo wrld', 'hello world']);
  await bob.page.mouse.move(5, 5);
  await history.waitFor({ state: 'hidden' });

  // Someone else's message has no Edit or Delete in its menu.
  const offered = await menuItems(bob.page, theirs);
  assert.ok(offered.includes('Reply') && offered.includes('Copy link'), `bob is offered ${offered}`);
  assert.ok(!offered.includes('Edit') && !offered.includes('Delete'), `bob is offered ${offered}`);

  // The Up arrow in the empty box edits the last message; focus returns to the box.
  await sendInUi(alice.page, 'second thought');
  await messageWith(alice.page, 'second thought').waitFor();
  const box = alice.page.getByLabel('Message', { exact: true });
  await box.focus();
  await box.press('ArrowUp');
  await editor.waitFor();
  assert.equal(await editor.inputValue(), 'second thought');
  await editor.fill('third thought');
  await editor.press('Enter');
  await messageWith(bob.page, 'third thought').getByText('(edited)').waitFor();
  // Bob's socket can bring the edit before alice's own save has answered and moved her focus.
  await eventually(async () => (await alice.page.evaluate(() => document.activeElement.id)) === 'composer-input', {
    message: 'focus back in alice\'s message box',
  });

  // By keyboard on the other screen: the message, Tab to "(edited)", Enter shows the history.
  await bob.page.locator('#timeline').focus();
  await bob.page.keyboard.press('End');
  await bob.page.keyboard.press('Tab');
  assert.equal(await bob.page.evaluate(() => document.activeElement.textContent), '(edited)');
  await bob.page.keyboard.press('Enter');
  await history.locator('li').nth(1).waitFor();
  assert.deepEqual(await history.locator('.edit-body').allInnerTexts(), ['second thought', 'third thought']);
  await bob.page.keyboard.press('Escape');
  await history.waitFor({ state: 'hidden' });

  // History (a reload) shows the same.
  await bob.page.reload();
  await messageWith(bob.page, 'hello world').getByText('(edited)').waitFor();
  assert.deepEqual(await alice.trouble.problems(), []);
  assert.deepEqual(await bob.trouble.problems(), []);
});

test('deleting asks first and shows "message deleted" on every screen; only authors and administrators may', async (t) => {
  const { server, room, users } = await conversation(t, ['alice', 'bob']);
  await server.must(200, 'POST', `/rooms/${room.id}/join`, { token: users.root.token });
  const alice = await personInRoom(server, room, 'alice');
  const bob = await personInRoom(server, room, 'bob');

  await sendInUi(alice.page, 'oops, wrong room');
  const mine = messageWith(alice.page, 'oops, wrong room');
  await mine.waitFor();
  await messageWith(bob.page, 'oops, wrong room').waitFor();

  // The dialog: Cancel has focus, Escape keeps the message.
  let menu = await openMenu(alice.page, mine);
  await menu.getByRole('menuitem', { name: 'Delete' }).click();
  const dialog = alice.page.getByRole('dialog', { name: 'Delete this message?' });
  await dialog.waitFor();
  assert.equal(await alice.page.evaluate(() => document.activeElement.textContent), 'Cancel');
  assert.match(await dialog.innerText(), /oops, wrong room/);
  await alice.page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });
  assert.equal(await mine.locator('.message-body').innerText(), 'oops, wrong room');

  // Its seq is read first: once deleted, `mine` (found by its text) matches nothing.
  const seq = await mine.getAttribute('data-seq');
  menu = await openMenu(alice.page, mine);
  await menu.getByRole('menuitem', { name: 'Delete' }).click();
  await dialog.getByRole('button', { name: 'Delete' }).click();
  for (const page of [alice.page, bob.page]) {
    const deleted = page.locator(`#messages li[data-seq="${seq}"] .message-body`);
    await deleted.filter({ hasText: 'message deleted' }).waitFor();
    assert.equal(await deleted.evaluate((el) => getComputedStyle(el).fontStyle), 'italic');
  }
  // A deleted message offers nothing to do but link to it.
  assert.deepEqual(await menuItems(bob.page, bob.page.locator(`#messages li[data-seq="${seq}"]`)), ['Copy link']);

  // Someone else's message: no Delete for alice; an administrator may.
  await server.post(users.bob.token, room.id, 'buy cheap watches');
  const spam = messageWith(alice.page, 'buy cheap watches');
  await spam.waitFor();
  assert.ok(!(await menuItems(alice.page, spam)).includes('Delete'));
  const root = await personInRoom(server, room, 'root');
  menu = await openMenu(root.page, messageWith(root.page, 'buy cheap watches'));
  await menu.getByRole('menuitem', { name: 'Delete' }).click();
  await root.page.getByRole('dialog', { name: 'Delete this message?' }).getByRole('button', { name: 'Delete' }).click();
  await eventually(async () => (await spam.count()) === 0, { message: 'the spam gone from alice\'s screen' });
  await eventually(async () => (await messageWith(bob.page, 'buy cheap watches').count()) === 0, {
    message: 'the spam gone from bob\'s screen',
  });

  // After a reload, from history.
  await alice.page.reload();
  await alice.page.locator('#messages li[data-seq]').first().waitFor();
  assert.deepEqual(await alice.page.locator('#messages li[data-seq] .message-body').allInnerTexts(), [
    'message deleted',
    'message deleted',
  ]);
  for (const person of [alice, bob, root]) assert.deepEqual(await person.trouble.problems(), []);
});

test('a reply quotes its message; the quote leads back to it, through older pages', async (t) => {
  const { server, room, users } = await conversation(t, ['alice', 'bob']);
  await server.post(users.alice.token, room.id, 'what time is the meetup?');
  const alice = await personInRoom(server, room, 'alice');
  const bob = await personInRoom(server, room, 'bob');
  const question = messageWith(bob.page, 'what time is the meetup?');
  await question.waitFor();

  // The composer says what is being answered; the reply can be called off.
  let menu = await openMenu(bob.page, question);
  await menu.getByRole('menuitem', { name: 'Reply' }).click();
  const bar = bob.page.locator('#reply-bar');
  await bar.waitFor();
  assert.equal(await bar.locator('#reply-text').innerText(), 'Replying to alice: what time is the meetup?');
  assert.equal(await bob.page.evaluate(() => document.activeElement.id), 'composer-input');
  await bob.page.getByRole('button', { name: 'Cancel reply' }).click();
  await bar.waitFor({ state: 'hidden' });
  menu = await openMenu(bob.page, question);
  await menu.getByRole('menuitem', { name: 'Reply' }).click();
  await sendInUi(bob.page, 'seven, at the porch');
  await bar.waitFor({ state: 'hidden' });

  for (const page of [bob.page, alice.page]) {
    const reply = messageWith(page, 'seven, at the porch');
    const quote = reply.getByRole('button', { name: /^Reply to alice: what time is the meetup\?/ });
    await quote.waitFor();
    assert.match(await quote.innerText(), /alice\s*what time is the meetup\?/);
  }

  // The quote follows an edit of the original.
  const original = messageWith(alice.page, 'what time is the meetup?');
  const questionSeq = Number(await original.getAttribute('data-seq'));
  menu = await openMenu(alice.page, original);
  await menu.getByRole('menuitem', { name: 'Edit' }).click();
  const editor = alice.page.getByRole('textbox', { name: 'Edit message' });
  await editor.fill('what time is the meetup on Friday?');
  await editor.press('Enter');
  await messageWith(bob.page, 'seven, at the porch').getByRole('button', { name: /meetup on Friday\?/ }).waitFor();

  // Sixty messages later a second reply quotes it; the quote loads older pages to reach it.
  for (let n = 1; n <= 60; n += 1) await server.post(users.alice.token, room.id, `chatter ${n}`);
  await server.must(201, 'POST', `/rooms/${room.id}/messages`, {
    token: users.bob.token,
    body: { body: 'still on?', reply_to: questionSeq },
  });
  await alice.page.reload();
  const late = messageWith(alice.page, 'still on?');
  await late.waitFor();
  assert.equal(await alice.page.locator(`#messages li[data-seq="${questionSeq}"]`).count(), 0, 'the original is not loaded yet');
  await late.getByRole('button', { name: /^Reply to alice/ }).click();
  const target = alice.page.locator(`#messages li[data-seq="${questionSeq}"]`);
  await target.waitFor({ timeout: 15_000 });
  await eventually(async () => target.evaluate((li) => li.classList.contains('highlighted')), {
    message: 'the original highlighted',
  });

  // A reply to a message that is not in the room is refused.
  const refused = await server.api('POST', `/rooms/${room.id}/messages`, {
    token: users.bob.token,
    body: { body: 'to nothing', reply_to: 9999 },
  });
  assert.equal(refused.status, 400);
  assert.equal(refused.body.error.code, 'invalid_reply');
  assert.deepEqual(await alice.trouble.problems(), []);
  assert.deepEqual(await bob.trouble.problems(), []);
});

test('reactions: a quick few in the menu, a picker searched by name, chips that count, toggle and name who reacted', async (t) => {
  const { server, room, users } = await conversation(t, ['alice', 'bob']);
  await server.post(users.alice.token, room.id, 'ship it?');
  const alice = await personInRoom(server, room, 'alice');
  const bob = await personInRoom(server, room, 'bob');
  const onBob = messageWith(bob.page, 'ship it?');
  const onAlice = messageWith(alice.page, 'ship it?');
  await onBob.waitFor();
  await onAlice.waitFor();

  // Bob reacts from the menu's quick row.
  const menu = await openMenu(bob.page, onBob);
  const quick = menu.getByRole('group', { name: 'Quick reactions' }).getByRole('menuitem');
  assert.equal(await quick.count(), 6);
  await menu.getByRole('menuitem', { name: 'React with thumbs up' }).click();
  const chip = (page, name) => messageWith(page, 'ship it?').locator(`.reaction-chip[data-emoji="${name}"]`);
  await eventually(async () => (await chip(bob.page, '👍').getAttribute('aria-label').catch(() => '')) === 'thumbs up, 1: you', {
    message: 'bob\'s own chip',
  });
  assert.equal(await chip(bob.page, '👍').getAttribute('aria-pressed'), 'true');
  await eventually(async () => (await chip(alice.page, '👍').getAttribute('aria-label').catch(() => '')) === 'thumbs up, 1: bob', {
    message: 'the chip on alice\'s screen naming bob',
  });
  assert.equal(await chip(alice.page, '👍').getAttribute('aria-pressed'), 'false');

  // Alice presses the chip: two, on both screens; again: back to one.
  await chip(alice.page, '👍').click();
  await eventually(async () => (await chip(alice.page, '👍').getAttribute('aria-label')) === 'thumbs up, 2: you and bob', {
    message: 'alice counted',
  });
  await eventually(async () => (await chip(bob.page, '👍').getAttribute('aria-label')) === 'thumbs up, 2: you and alice', {
    message: 'alice counted on bob\'s screen',
  });
  assert.equal(await chip(alice.page, '👍').textContent(), '👍2');
  await chip(alice.page, '👍').click();
  await eventually(async () => (await chip(bob.page, '👍').getAttribute('aria-label')) === 'thumbs up, 1: you', {
    message: 'alice\'s reaction taken back on bob\'s screen',
  });

  // The picker, by keyboard: type a name, Enter picks the first match.
  const add = onBob.getByRole('button', { name: 'Add reaction' });
  await add.click();
  const picker = bob.page.getByRole('dialog', { name: 'Add a reaction' });
  await picker.waitFor();
  await bob.page.keyboard.type('party');
  assert.deepEqual(await picker.getByRole('button', { name: /party/ }).evaluateAll((b) => b.map((x) => x.textContent)), ['🎉', '🥳']);
  await bob.page.keyboard.press('Enter');
  await picker.waitFor({ state: 'hidden' });
  assert.equal(await bob.page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Add reaction');
  await chip(alice.page, '🎉').waitFor();
  // Nothing matches: it says so.
  await add.click();
  await bob.page.keyboard.type('zzzz');
  await picker.getByText('No emoji named “zzzz”.').waitFor();
  await bob.page.keyboard.press('Escape');
  await picker.waitFor({ state: 'hidden' });

  // Chips are reached by keyboard too: the message, then Tab.
  await alice.page.locator('#timeline').focus();
  await alice.page.keyboard.press('End');
  await alice.page.keyboard.press('Tab');
  assert.equal(await alice.page.evaluate(() => document.activeElement.dataset.emoji), '👍');
  await alice.page.keyboard.press('Enter');
  await eventually(async () => (await chip(bob.page, '👍').getAttribute('aria-label')) === 'thumbs up, 2: you and alice', {
    message: 'a reaction by keyboard',
  });

  // History: counts and "you" from the page; names seen live are not known after a reload.
  await alice.page.reload();
  await chip(alice.page, '🎉').waitFor();
  assert.equal(await chip(alice.page, '👍').getAttribute('aria-label'), 'thumbs up, 2: you and 1 other');
  assert.equal(await chip(alice.page, '🎉').getAttribute('aria-label'), 'party popper, 1: 1 other');
  assert.deepEqual(
    await messageWith(alice.page, 'ship it?').locator('.reaction-chip').evaluateAll((c) => c.map((x) => x.dataset.emoji)),
    ['👍', '🎉'],
    'chips in the order each emoji first came',
  );

  // What the server refuses is said, not swallowed.
  const bad = await server.api('PUT', `/rooms/${room.id}/messages/1/reactions/${encodeURIComponent('ab')}`, {
    token: users.bob.token,
  });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 'invalid_emoji');
  assert.deepEqual(await alice.trouble.problems(), []);
  assert.deepEqual(await bob.trouble.problems(), []);
});

test('@ suggests the room\'s members (arrows, Enter or Tab), and a message naming someone stands out on their screen', async (t) => {
  const { server, room } = await conversation(t, ['alice', 'bob', 'bobby', 'carol']);
  const alice = await personInRoom(server, room, 'alice');
  const bob = await personInRoom(server, room, 'bob');

  const box = alice.page.getByLabel('Message', { exact: true });
  await box.pressSequentially('hey @BO');
  const list = alice.page.getByRole('listbox', { name: 'People in this room' });
  await list.waitFor();
  const names = (options) => options.evaluateAll((found) => found.map((option) => option.textContent.slice(1)));
  assert.deepEqual(await names(list.getByRole('option')), ['bob', 'bobby'], 'name and initial');
  assert.deepEqual(await names(list.getByRole('option', { selected: true })), ['bob']);
  await box.press('ArrowDown');
  assert.deepEqual(await names(list.getByRole('option', { selected: true })), ['bobby']);
  await box.press('ArrowUp');
  await box.press('Enter');
  await list.waitFor({ state: 'hidden' });
  assert.equal(await box.inputValue(), 'hey @bob ');
  await box.pressSequentially('and @car');
  await list.getByRole('option', { name: 'carol' }).waitFor();
  await box.press('Tab');
  assert.equal(await box.inputValue(), 'hey @bob and @carol ');
  assert.equal(await alice.page.evaluate(() => document.activeElement.id), 'composer-input', 'Tab stayed in the box');
  // Escape closes the list and leaves the text alone.
  await box.pressSequentially('@c');
  await list.getByRole('option', { name: 'carol' }).waitFor();
  await box.press('Escape');
  await list.waitFor({ state: 'hidden' });
  assert.equal(await box.inputValue(), 'hey @bob and @carol @c');
  await box.fill('hey @bob and @carol, lunch?');
  await box.press('Enter');

  const onBob = messageWith(bob.page, 'lunch?');
  await onBob.waitFor();
  assert.equal(await onBob.evaluate((li) => li.classList.contains('mentions-me')), true, 'highlighted for bob');
  assert.match(await onBob.innerText(), /lunch\?/);
  const onAlice = messageWith(alice.page, 'lunch?');
  await onAlice.waitFor();
  assert.equal(await onAlice.evaluate((li) => li.classList.contains('mentions-me')), false, 'not for its author');
  // `@room` from the room's creator names everyone.
  await sendInUi(alice.page, 'dinner is ready, @room');
  const everyone = messageWith(bob.page, 'dinner is ready');
  await everyone.waitFor();
  assert.equal(await everyone.evaluate((li) => li.classList.contains('mentions-me')), true, '@room highlighted for bob');
  // Still highlighted from history.
  await bob.page.reload();
  await eventually(async () => messageWith(bob.page, 'lunch?').evaluate((li) => li.classList.contains('mentions-me')).catch(() => false), {
    message: 'the mention highlighted after a reload',
  });
  assert.deepEqual(await alice.trouble.problems(), []);
  assert.deepEqual(await bob.trouble.problems(), []);
});

test('edits, deletions and reactions made while a page is offline arrive once on reconnect', async (t) => {
  const { server, room, users } = await conversation(t, ['alice', 'bob']);
  const first = await server.post(users.bob.token, room.id, 'first draft');
  const second = await server.post(users.bob.token, room.id, 'short-lived');
  await server.must(204, 'PUT', `/rooms/${room.id}/messages/${first.seq}/reactions/${encodeURIComponent('🔥')}`, {
    token: users.bob.token,
  });
  const alice = await personInRoom(server, room, 'alice');
  const hellos = [];
  alice.page.on('websocket', (socket) =>
    socket.on('framesent', ({ payload }) => {
      const frame = JSON.parse(String(payload));
      if (frame.type === 'hello') hellos.push(frame);
    }),
  );
  await messageWith(alice.page, 'short-lived').waitFor();
  const draft = alice.page.locator(`#messages li[data-seq="${first.seq}"]`);
  const fire = draft.locator('.reaction-chip[data-emoji="🔥"]');
  await fire.waitFor();

  await server.kill('SIGKILL');
  await alice.page.locator('#conn-banner').waitFor({ state: 'visible' });
  await server.spawn();
  await server.must(200, 'PATCH', `/rooms/${room.id}/messages/${first.seq}`, {
    token: users.bob.token,
    body: { body: 'final draft' },
  });
  await server.must(204, 'DELETE', `/rooms/${room.id}/messages/${second.seq}`, { token: users.bob.token });
  await server.must(204, 'PUT', `/rooms/${room.id}/messages/${first.seq}/reactions/${encodeURIComponent('👀')}`, {
    token: users.bob.token,
  });
  await server.post(users.bob.token, room.id, 'back online?');

  await alice.page.locator('#conn-banner').waitFor({ state: 'hidden', timeout: 20_000 });
  await messageWith(alice.page, 'back online?').waitFor();
  await draft.filter({ hasText: 'final draft' }).getByText('(edited)').waitFor();
  await alice.page.locator(`#messages li[data-seq="${second.seq}"]`, { hasText: 'message deleted' }).waitFor();
  const eyes = draft.locator('.reaction-chip[data-emoji="👀"]');
  await eyes.waitFor();
  // Once each, however they came (resume, catch-up).
  await alice.page.waitForTimeout(500);
  assert.equal(await eyes.getAttribute('aria-label'), 'eyes, 1: bob');
  assert.equal(await fire.getAttribute('aria-label'), 'fire, 1: 1 other');
  // The resume point counts events too: the last hello named the newest seq seen before the crash.
  const { events } = await server.must(200, 'GET', `/rooms/${room.id}/events?after=0&limit=500`, { token: users.bob.token });
  const reactionSeq = events.find((event) => event.kind === 'reaction').seq;
  assert.ok(hellos.length >= 1, 'the page said hello again');
  assert.equal(hellos.at(-1).resume[room.id], reactionSeq, 'resumed from the reaction, the newest event before the crash');
  assert.deepEqual(await alice.trouble.problems(), []);
});

test('an edit and a reaction lost in transit are fetched once the next event shows the gap', async (t) => {
  const { server, room, users } = await conversation(t, ['alice', 'bob']);
  const target = await server.post(users.bob.token, room.id, 'before');
  const person = await openPerson(browser);
  // Swallow the live frames of one edit and one reaction before the page sees them.
  await person.context.addInitScript(() => {
    const add = WebSocket.prototype.addEventListener;
    WebSocket.prototype.addEventListener = function addEventListener(type, listener, options) {
      if (type !== 'message') return add.call(this, type, listener, options);
      const filtered = (event) => {
        if (!/lost edit|🐛/.test(String(event.data))) listener.call(this, event);
      };
      return add.call(this, type, filtered, options);
    };
  });
  const { page } = person;
  await logInInUi(page, server, 'alice');
  await page.goto(`${server.url}/#/room/${room.id}`);
  const shown = page.locator(`#messages li[data-seq="${target.seq}"]`);
  await shown.waitFor();

  const path = `/rooms/${room.id}/messages/${target.seq}`;
  const reactAs = (token, emoji) => server.must(204, 'PUT', `${path}/reactions/${encodeURIComponent(emoji)}`, { token });
  await server.must(200, 'PATCH', path, { token: users.bob.token, body: { body: 'lost edit' } });
  await reactAs(users.bob.token, '🐛');
  await reactAs(users.bob.token, '👀');
  await shown.locator('.reaction-chip[data-emoji="👀"]').waitFor();
  await shown.filter({ hasText: 'lost edit' }).getByText('(edited)').waitFor();
  await shown.locator('.reaction-chip[data-emoji="🐛"]').waitFor();
  await page.waitForTimeout(300);
  assert.deepEqual(
    await shown.locator('.reaction-chip').evaluateAll((chips) => chips.map((chip) => chip.getAttribute('aria-label'))),
    ['bug, 1: bob', 'eyes, 1: bob'],
    'each once, in the order they came',
  );
  assert.deepEqual(await person.trouble.problems(), []);
});

test('at phone width a long press offers reply and reactions, and replies, chips and the editor fit', async (t) => {
  const { server, room, users } = await conversation(t, ['alice', 'bob']);
  await server.post(users.alice.token, room.id, `a long one: ${'word '.repeat(60)}`);
  const phone = await personInRoom(server, room, 'bob', {
    viewport: { width: 390, height: 844 },
    hasTouch: true,
    isMobile: true,
  });
  const { page } = phone;
  const message = messageWith(page, 'a long one');
  await message.waitFor();
  const body = message.locator('.message-body');
  await body.dispatchEvent('pointerdown', { pointerType: 'touch', isPrimary: true });
  await page.waitForTimeout(700);
  await body.dispatchEvent('pointerup', { pointerType: 'touch', isPrimary: true });
  const menu = page.getByRole('menu');
  await menu.waitFor({ timeout: 2000 });
  const menuBox = await menu.boundingBox();
  assert.ok(menuBox.x >= 0 && menuBox.x + menuBox.width <= 390, 'the menu fits the screen');
  await menu.getByRole('menuitem', { name: 'React with party popper' }).click();
  await message.locator('.reaction-chip').waitFor();

  await body.dispatchEvent('pointerdown', { pointerType: 'touch', isPrimary: true });
  await page.waitForTimeout(700);
  await body.dispatchEvent('pointerup', { pointerType: 'touch', isPrimary: true });
  await menu.getByRole('menuitem', { name: 'Reply' }).click();
  await page.locator('#reply-bar').waitFor();
  await page.getByLabel('Message', { exact: true }).fill('sure');
  await page.getByRole('button', { name: 'Send message' }).click();
  const reply = messageWith(page, 'sure');
  await reply.locator('.reply-quote').waitFor();

  await page.getByLabel('Message', { exact: true }).focus();
  await page.getByLabel('Message', { exact: true }).press('ArrowUp');
  await page.getByRole('textbox', { name: 'Edit message' }).waitFor();
  const sideways = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.equal(sideways, 0, 'nothing scrolls sideways');
  for (const selector of ['.reply-quote', '.reaction-chip', '.message-editor']) {
    const box = await page.locator(`#messages ${selector}`).first().boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= 390, `${selector} fits the screen`);
  }
  assert.deepEqual(await phone.trouble.problems(), []);
});
