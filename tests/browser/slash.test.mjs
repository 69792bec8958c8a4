// Slash commands in the message box: `/` offers them (by keyboard, read out
// as a list box), `/me` is sent as typed and shown as an emote to everyone,
// `/topic`, `/invite`, `/dm` and `/leave` do what they say through the API
// (or say in words why not), `/help` and an unknown command are answered
// here, and nothing of it is ever sent as a message, except `//text` as
// "/text".

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import { TestServer, eventually, launchBrowser, logInInUi, openPerson } from './harness.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

test('slash commands: suggestions by keyboard, emotes, topic, invite, dm, leave, help, unknown and //', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  await server.createUser('root');
  const alice = await server.createUser('alice');
  const bob = await server.createUser('bob');
  const carol = await server.createUser('carol');
  const { room: lobby } = await server.must(201, 'POST', '/rooms', { token: alice.token, body: { name: 'lobby' } });
  await server.must(200, 'POST', `/rooms/${lobby.id}/join`, { token: bob.token });
  const bodies = async () =>
    (await server.must(200, 'GET', `/rooms/${lobby.id}/messages?limit=50`, { token: alice.token })).messages.map((m) => m.body);

  const a = await openPerson(browser);
  const b = await openPerson(browser);
  await logInInUi(a.page, server, 'alice');
  await logInInUi(b.page, server, 'bob');
  for (const { page } of [a, b]) {
    await page.goto(`${server.url}/#/room/${lobby.id}`);
    await page.locator('#room-title', { hasText: 'lobby' }).waitFor();
  }
  const page = a.page;
  const box = page.getByLabel('Message', { exact: true });
  const list = page.getByRole('listbox', { name: 'Commands' });
  const error = page.locator('#composer-error');
  const toast = page.locator('#toast-text');

  // `/` offers every command; typing narrows; arrows move the active one, which the box points at.
  await box.focus();
  await box.pressSequentially('/');
  await list.waitFor();
  const options = list.getByRole('option');
  assert.deepEqual(
    (await options.allInnerTexts()).map((text) => text.split('\n')[0]),
    ['/me action', '/topic text', '/invite @name', '/leave', '/dm @name', '/help'],
  );
  assert.equal(await box.getAttribute('aria-activedescendant'), 'slash-option-0');
  await box.press('ArrowDown');
  assert.equal(await box.getAttribute('aria-activedescendant'), 'slash-option-1');
  assert.equal(await options.nth(1).getAttribute('aria-selected'), 'true');
  await box.press('ArrowUp');
  await box.press('ArrowUp');
  assert.equal(await box.getAttribute('aria-activedescendant'), 'slash-option-5', 'wraps around');
  await box.press('Escape');
  await list.waitFor({ state: 'hidden' });
  assert.equal(await box.inputValue(), '/');
  assert.equal(await box.getAttribute('aria-activedescendant'), null);
  await box.pressSequentially('t');
  await list.waitFor();
  assert.deepEqual((await options.allInnerTexts()).map((text) => text.split('\n')[0]), ['/topic text']);
  await box.press('Tab');
  await list.waitFor({ state: 'hidden' });
  assert.equal(await box.inputValue(), '/topic ');

  // /topic sets the topic through the room's settings; everyone's header shows it.
  await box.pressSequentially('Weekly plans');
  await box.press('Enter');
  await toast.filter({ hasText: 'Topic of lobby set to “Weekly plans”.' }).waitFor();
  assert.equal(await box.inputValue(), '');
  await b.page.locator('#room-topic', { hasText: 'Weekly plans' }).waitFor();
  assert.equal((await server.must(200, 'GET', `/rooms/${lobby.id}`, { token: alice.token })).room.topic, 'Weekly plans');
  // Alone, /topic tells it (and never clears it).
  await box.fill('/topic ');
  await box.press('Enter');
  await toast.filter({ hasText: 'The topic of lobby is “Weekly plans”.' }).waitFor();
  assert.equal((await server.must(200, 'GET', `/rooms/${lobby.id}`, { token: alice.token })).room.topic, 'Weekly plans');

  // /me: sent as typed, shown as an emote on both pages.
  await box.fill('/me waves at everyone');
  await box.press('Enter');
  for (const { page: p } of [a, b]) {
    const emote = p.locator('#messages li[data-seq] .message-body.emote').last();
    await emote.waitFor();
    assert.equal(await emote.innerText(), '* alice waves at everyone');
  }

  // //text sends a line that starts with a slash.
  await box.fill('//etc/hosts is the file');
  await box.press('Enter');
  await page.locator('#messages li[data-seq] .message-body', { hasText: '/etc/hosts is the file' }).waitFor();

  // /help and an unknown command are answered here; the unknown one stays in the box.
  await box.fill('/help');
  await box.press('Enter');
  await toast.filter({ hasText: 'Commands: /me action' }).waitFor();
  assert.equal(await box.inputValue(), '');
  await box.fill('/frobnicate now');
  await box.press('Enter');
  await error.filter({ hasText: 'There is no command /frobnicate.' }).waitFor();
  assert.equal(await box.inputValue(), '/frobnicate now');
  assert.equal(await error.getAttribute('role'), 'alert');
  // Enter on a suggestion that takes words completes it; an empty /me is then refused.
  await box.fill('/me');
  await box.press('Enter');
  assert.equal(await box.inputValue(), '/me ');
  await box.press('Enter');
  await error.filter({ hasText: 'Say what you are doing after /me' }).waitFor();

  // /invite adds by exact name; a name that is nobody's is said so.
  await box.fill('/invite @nobody');
  await box.press('Enter');
  await error.filter({ hasText: 'There is no one called nobody.' }).waitFor();
  await box.fill('/invite @carol');
  await box.press('Enter');
  await toast.filter({ hasText: 'Added carol to lobby.' }).waitFor();
  const { members } = await server.must(200, 'GET', `/rooms/${lobby.id}/members`, { token: alice.token });
  assert.ok(members.some((m) => m.id === carol.user.id), 'carol is a member');

  // Bob may not set the topic: said in words, kept in his box, nothing sent.
  const bobBox = b.page.getByLabel('Message', { exact: true });
  await bobBox.fill('/topic mine now');
  await bobBox.press('Enter');
  await b.page.locator('#composer-error', { hasText: 'Only the room’s owner or a moderator can change its topic.' }).waitFor();
  assert.equal(await bobBox.inputValue(), '/topic mine now');

  // /dm opens (making it the first time) the direct conversation.
  // The `@` suggestions work in commands too: Enter picks bob, the next Enter runs it.
  await box.fill('');
  await box.pressSequentially('/dm @bo');
  await page.getByRole('listbox', { name: 'People in this room' }).getByRole('option', { name: 'bob' }).waitFor();
  await box.press('Enter');
  assert.equal(await box.inputValue(), '/dm @bob ');
  await box.press('Enter');
  await page.locator('#room-title', { hasText: 'bob' }).waitFor();
  const dmId = decodeURIComponent(/^#\/room\/([^/]+)/.exec(new URL(page.url()).hash)[1]);
  const dm = (await server.must(200, 'GET', `/rooms/${dmId}`, { token: alice.token })).room;
  assert.equal(dm.visibility, 'direct');
  await box.fill('/leave');
  await box.press('Enter');
  await error.filter({ hasText: 'A direct conversation cannot be left.' }).waitFor();

  // /leave, picked from the list by keyboard: Bob is out of the room.
  await bobBox.fill('');
  await bobBox.pressSequentially('/le');
  await b.page.getByRole('listbox', { name: 'Commands' }).waitFor();
  await bobBox.press('Enter');
  assert.equal(await bobBox.inputValue(), '/leave');
  await bobBox.press('Enter');
  await b.page.locator('#toast-text', { hasText: 'You left lobby.' }).waitFor();
  await eventually(async () => {
    const reply = await server.must(200, 'GET', `/rooms/${lobby.id}/members`, { token: alice.token });
    return !reply.members.some((m) => m.id === bob.user.id);
  }, { message: 'bob out of lobby' });

  // Only the emote and the // line were ever sent, as typed.
  assert.deepEqual(await bodies(), ['/me waves at everyone', '/etc/hosts is the file']);
  assert.deepEqual(await a.trouble.problems(), []);
  assert.deepEqual(await b.trouble.problems(), []);
});

test('the command suggestions, an emote and a command error pass axe in light and dark', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  await server.createUser('root');
  const alice = await server.createUser('alice');
  const { room } = await server.must(201, 'POST', '/rooms', { token: alice.token, body: { name: 'lobby' } });
  await server.post(alice.token, room.id, '/me lights the fire');
  // axe is injected as a script, which the page's CSP forbids: this profile skips the CSP.
  const { page } = await openPerson(browser, { bypassCSP: true });
  await logInInUi(page, server, 'alice');
  await page.goto(`${server.url}/#/room/${room.id}`);
  await page.locator('.message-body.emote', { hasText: 'lights the fire' }).waitFor();
  const box = page.getByLabel('Message', { exact: true });
  const found = [];
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await box.fill('/nope');
    await box.press('Enter');
    await page.locator('#composer-error', { hasText: 'There is no command /nope.' }).waitFor();
    await box.fill('');
    await box.pressSequentially('/');
    await page.getByRole('listbox', { name: 'Commands' }).waitFor();
    await page.addScriptTag({ path: createRequire(import.meta.url).resolve('axe-core/axe.min.js') });
    const violations = await page.evaluate(async () => {
      const result = await window.axe.run(document, { resultTypes: ['violations'] });
      return result.violations.map((v) => `${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    });
    found.push(...violations.map((line) => `${scheme}: ${line}`));
    await box.press('Escape');
  }
  assert.deepEqual(found, []);
});
