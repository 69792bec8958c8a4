// Desktop notifications from the open tab, by each room's notification
// level: a mention in a room one is not looking at shows one; a room set to
// "Nothing" shows none; "Every message" shows plain messages too. The
// browser's Notification is replaced by a recorder before the page loads,
// so what the page asks the browser to show can be read back.

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

/** A profile whose page records the notifications it shows (permission granted). */
async function recordingPerson(server, name, room) {
  const person = await openPerson(browser);
  await person.context.addInitScript(() => {
    window.__notes = [];
    window.Notification = class {
      static permission = 'granted';
      static requestPermission() {
        return Promise.resolve('granted');
      }
      constructor(title, options = {}) {
        window.__notes.push({ title, body: options.body, tag: options.tag });
      }
      close() {}
    };
  });
  await logInInUi(person.page, server, name);
  await person.page.goto(`${server.url}/#/room/${room.id}`);
  await person.page.locator('#room-title', { hasText: room.name }).waitFor();
  return person;
}

const notes = (page) => page.evaluate(() => window.__notes);

test('a room notifies by its level while one looks elsewhere, and the level is chosen in its details', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  await server.createUser('root');
  const alice = await server.createUser('alice');
  const bob = await server.createUser('bob');
  const mk = async (name) => {
    const { room } = await server.must(201, 'POST', '/rooms', { token: alice.token, body: { name } });
    await server.must(200, 'POST', `/rooms/${room.id}/join`, { token: bob.token });
    return room;
  };
  const lobby = await mk('lobby');
  const ops = await mk('ops');
  const say = (room, body) => server.must(201, 'POST', `/rooms/${room.id}/messages`, { token: alice.token, body: { body } });

  const page = (await recordingPerson(server, 'bob', lobby)).page;
  // Rooms default to mentions: a plain message is not shown, a mention is.
  await say(ops, 'deploy started');
  await say(ops, '**@bob** can you _look_?');
  await eventually(async () => (await notes(page)).length === 1, { message: 'one notification' });
  // Plain text: the formatting's words, without its marks.
  assert.deepEqual(await notes(page), [{ title: 'alice in ops', body: '@bob can you look?', tag: `room-${ops.id}` }]);
  // The open room, being watched, notifies of nothing.
  await say(lobby, '@bob here');

  // Bob sets ops to every message in its details (the server keeps it).
  await page.goto(`${server.url}/#/room/${ops.id}`);
  await page.locator('#room-title', { hasText: 'ops' }).waitFor();
  await page.locator('#room-info').click();
  const level = page.getByRole('combobox', { name: 'Notify me of' });
  assert.equal(await level.inputValue(), 'mentions');
  await level.selectOption('all');
  await page.getByRole('dialog', { name: 'ops' }).getByText('Saved.').waitFor();
  const { room } = await server.must(200, 'GET', `/rooms/${ops.id}`, { token: bob.token });
  assert.equal(room.notifications, 'all');
  await page.keyboard.press('Escape');
  await page.goto(`${server.url}/#/room/${lobby.id}`);
  await page.locator('#room-title', { hasText: 'lobby' }).waitFor();
  const before = (await notes(page)).length;
  await say(ops, 'deploy finished');
  await eventually(async () => (await notes(page)).length === before + 1, { message: 'the plain message' });
  assert.equal((await notes(page)).at(-1).body, 'deploy finished');

  // Nothing: not even a mention.
  await server.must(200, 'PUT', `/rooms/${ops.id}/notifications`, { token: bob.token, body: { level: 'none' } });
  await page.waitForFunction(() => true);
  await say(ops, '@bob still there?');
  await say(lobby, 'a marker in the open room');
  await page.locator('#messages').getByText('a marker in the open room').waitFor();
  assert.equal((await notes(page)).length, before + 1, 'nothing more shown');
});
