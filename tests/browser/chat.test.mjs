// Two people in two separate browser profiles: one creates a room, the other
// finds and joins it, and they talk live. Also covers unread counts (sidebar
// and title bar), the member list, links, multi-line messages and leaving.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  TestServer,
  createRoomInUi,
  eventually,
  launchBrowser,
  openPerson,
  screenshot,
  sendInUi,
  shownBodies,
  signUpInUi,
} from './harness.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

test('two people create, join and talk in a room live', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const alice = await openPerson(browser);
  const bob = await openPerson(browser);

  await signUpInUi(alice.page, server, 'alice');
  await createRoomInUi(alice.page, 'general', 'Daily chatter and coffee orders');
  await signUpInUi(bob.page, server, 'bob');

  // Bob finds the room among the ones he could join, and joins it.
  await bob.page.getByRole('button', { name: 'Refresh room list' }).click();
  await bob.page.getByRole('button', { name: 'Join general' }).click();
  await bob.page.locator('#room-title', { hasText: 'general' }).waitFor();
  await bob.page.locator('#my-rooms a', { hasText: 'general' }).waitFor();

  // Alice writes; her copy is confirmed by the server and Bob sees it live.
  await sendInUi(alice.page, 'Morning Bob! Did the deploy go out?');
  await alice.page.locator('#messages li[data-seq]', { hasText: 'Did the deploy go out?' }).waitFor();
  await bob.page.locator('#messages li[data-seq]', { hasText: 'Did the deploy go out?' }).waitFor();
  const aliceMessage = bob.page.locator('#messages li[data-seq]').last();
  assert.equal(await aliceMessage.locator('.author').textContent(), 'alice');
  assert.match(await aliceMessage.locator('time').getAttribute('datetime'), /^\d{4}-\d\d-\d\dT/);
  assert.equal(await alice.page.locator('#messages li.outgoing').count(), 0, 'no pending copy left behind');

  // Shift+Enter makes a new line; Enter sends.
  await sendInUi(bob.page, 'It did, at 9:02.\nRelease notes: https://example.com/releases/v2_(final).');
  const multiLine = alice.page.locator('#messages li[data-seq]', { hasText: 'Release notes' });
  await multiLine.waitFor();
  assert.equal(
    await multiLine.locator('.message-body').innerText(),
    'It did, at 9:02.\nRelease notes: https://example.com/releases/v2_(final).',
  );
  const link = multiLine.locator('a');
  assert.equal(await link.getAttribute('href'), 'https://example.com/releases/v2_(final)');
  assert.equal(await link.getAttribute('target'), '_blank');
  assert.equal(await link.getAttribute('rel'), 'noopener noreferrer nofollow');

  await sendInUi(alice.page, 'Great, thanks! Lunch at noon?');
  await sendInUi(alice.page, 'The ramen place on Fifth is open again.');
  await sendInUi(bob.page, 'Sounds good 🍜');
  await sendInUi(bob.page, 'I will bring the new intern along, she starts today.');
  await alice.page.locator('#messages li[data-seq]', { hasText: 'new intern' }).waitFor();
  await bob.page.locator('#messages li[data-seq]', { hasText: 'new intern' }).waitFor();
  // Consecutive messages from one author share a header.
  const ramen = alice.page.locator('#messages li[data-seq]', { hasText: 'ramen place' });
  assert.equal(await ramen.evaluate((li) => li.classList.contains('continued')), true);
  assert.deepEqual(await shownBodies(alice.page), await shownBodies(bob.page));

  // The member list.
  await alice.page.getByRole('button', { name: /^Members/ }).click();
  const members = alice.page.locator('#members-list li');
  await eventually(async () => (await members.count()) === 2, { message: 'two members' });
  assert.deepEqual((await members.locator('.member-name').allInnerTexts()).sort(), ['alice', 'bob']);
  await alice.page.keyboard.press('Escape');
  assert.equal(await alice.page.locator('#members-dialog').isVisible(), false);

  await alice.page.evaluate(() => document.activeElement?.blur());
  await screenshot(alice.page, 'chat');
  await alice.page.emulateMedia({ colorScheme: 'dark' });
  await screenshot(alice.page, 'chat-dark');
  await alice.page.emulateMedia({ colorScheme: 'light' });

  // A room Bob has not joined is offered with its topic.
  const carol = await server.createUser('carol');
  await server.must(201, 'POST', '/rooms', { token: carol.token, body: { name: 'book-club', topic: 'This month: Piranesi' } });

  // Unread counts: Bob is in two rooms and reads only one.
  await createRoomInUi(alice.page, 'random');
  await bob.page.getByRole('button', { name: 'Refresh room list' }).click();
  await bob.page.getByRole('button', { name: 'Join random' }).click();
  await bob.page.locator('#room-title', { hasText: 'random' }).waitFor();
  await bob.page.locator('#my-rooms a', { hasText: 'general' }).click();
  await bob.page.locator('#room-title', { hasText: 'general' }).waitFor();

  await sendInUi(alice.page, 'Anyone seen my umbrella?');
  await sendInUi(alice.page, 'Blue one, with ducks.');
  const randomLink = bob.page.locator('#my-rooms a', { hasText: 'random' });
  await eventually(async () => (await randomLink.innerText()).includes('2'), { message: 'an unread badge of 2' });
  await eventually(async () => (await bob.page.title()) === '(2) hearth', { message: 'the title "(2) hearth"' });
  assert.equal(await randomLink.locator('.visually-hidden').textContent(), ', 2 unread');
  await bob.page.evaluate(() => document.activeElement?.blur());
  await screenshot(bob.page, 'room-list');

  await randomLink.click();
  await bob.page.locator('#messages li[data-seq]', { hasText: 'with ducks' }).waitFor();
  await eventually(async () => (await bob.page.title()) === 'hearth', { message: 'the title back to "hearth"' });
  assert.equal(await randomLink.locator('.badge').count(), 0);

  // Leaving moves the room back to "Other rooms".
  await bob.page.getByRole('button', { name: 'Leave' }).click();
  await bob.page.getByRole('button', { name: 'Join random' }).waitFor();
  assert.equal(await bob.page.locator('#my-rooms a', { hasText: 'random' }).count(), 0);

  assert.deepEqual(await alice.trouble.problems(), []);
  assert.deepEqual(await bob.trouble.problems(), []);
});

test('a message shows as pending at once and as sent on ack', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { page, trouble } = await openPerson(browser);
  await signUpInUi(page, server, 'carol');
  await createRoomInUi(page, 'notes');

  // Hold the socket's frames from the server back for a moment, so the
  // pending state is observable, then let them through.
  await page.evaluate(() => {
    const original = WebSocket.prototype.send;
    WebSocket.prototype.send = function send(data) {
      if (String(data).includes('"type":"send"')) {
        window.__heldSend = () => original.call(this, data);
        return;
      }
      original.call(this, data);
    };
  });
  await sendInUi(page, 'Remember the milk');
  const pending = page.locator('#messages li.outgoing', { hasText: 'Remember the milk' });
  await pending.waitFor();
  assert.equal(await pending.getAttribute('data-status'), 'pending');
  assert.match(await pending.innerText(), /Sending…/);

  await page.evaluate(() => window.__heldSend());
  const sent = page.locator('#messages li[data-seq]', { hasText: 'Remember the milk' });
  await sent.waitFor();
  assert.equal(await sent.getAttribute('data-status'), 'sent');
  assert.equal(await page.locator('#messages li.outgoing').count(), 0);
  assert.deepEqual(await trouble.problems(), []);
});

test('a send the server rejects shows its reason and can be retried', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { page, trouble } = await openPerson(browser);
  await signUpInUi(page, server, 'gina');
  await createRoomInUi(page, 'drafts');

  // Blank out the body of the first send frame only, so the server answers
  // with an error frame for that client_id; the retry goes out intact.
  await page.evaluate(() => {
    const original = WebSocket.prototype.send;
    WebSocket.prototype.send = function send(data) {
      const frame = JSON.parse(data);
      if (frame.type === 'send') {
        WebSocket.prototype.send = original;
        return original.call(this, JSON.stringify({ ...frame, body: '' }));
      }
      return original.call(this, data);
    };
  });
  await sendInUi(page, 'second try is the charm');
  const failed = page.locator('#messages li.outgoing[data-status="failed"]');
  await failed.waitFor();
  assert.match(await failed.innerText(), /Not sent\. \S/, 'the failure says why');
  const clientId = await failed.getAttribute('data-client-id');

  await failed.getByRole('button', { name: 'Retry' }).click();
  const sent = page.locator('#messages li[data-seq]', { hasText: 'second try is the charm' });
  await sent.waitFor();
  assert.equal(await sent.getAttribute('data-client-id'), clientId, 'the retry reused the client_id');
  assert.equal(await page.locator('#messages li.outgoing').count(), 0);
  assert.deepEqual(await trouble.problems(), []);
});
