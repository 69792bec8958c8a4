// Accessibility: axe-core audits every main screen (light and dark, desktop
// and phone, a conversation with edits, deletions, reactions and a reply,
// formatted messages and the formatting help, the
// account dialog with its picture, the "is typing" line, direct messages, the new-message
// dialog, a private room and message search), and the keyboard path a screen-reader user takes: skip link to
// the message box, typing, and hearing new messages in a polite live region.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import {
  PASSWORD,
  TestServer,
  createRoomInUi,
  launchBrowser,
  logInInUi,
  openPerson,
  sendInUi,
  signUpInUi,
} from './harness.mjs';

const AXE_SOURCE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** Runs axe on the page; returns its violations as readable lines. */
async function audit(page, label) {
  await page.addScriptTag({ path: AXE_SOURCE });
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map(
      (v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`,
    );
  });
  return violations.map((line) => `${label}: ${line}`);
}

test('every main screen passes axe in light and dark', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  // axe is injected as a script, which the page's own CSP rightly forbids;
  // this one profile skips the CSP so the auditor can run.
  const { page } = await openPerson(browser, { bypassCSP: true });
  const found = [];
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.goto(server.url);
    await page.getByRole('heading', { name: 'Log in' }).waitFor();
    found.push(...(await audit(page, `${scheme} login`)));
    await page.getByRole('button', { name: 'Create an account' }).click();
    await page.locator('#signup-form').getByRole('button', { name: 'Sign up' }).click();
    await page.locator('#signup-username-error').waitFor();
    found.push(...(await audit(page, `${scheme} signup with error`)));
  }

  await page.emulateMedia({ colorScheme: 'light' });
  await signUpInUi(page, server, 'auditor');
  const other = await server.createUser('other');
  await server.must(201, 'POST', '/rooms', { token: other.token, body: { name: 'elsewhere', topic: 'Join me' } });
  await createRoomInUi(page, 'audited', 'A room under review');
  const auditorId = (await page.evaluate(() => fetch('/api/v1/me').then((r) => r.json()))).user.id;
  await sendInUi(page, 'Hello https://example.com');
  // Every kind of formatting, for its contrast in both schemes.
  await sendInUi(page, '**bold** _italic_ ~~struck~~ `code` [a link](https://example.com)\n> a quote\n- one\n  - nested\n1. first\n```js\nconst x = 1;\n```');
  await page.locator('#messages li[data-seq] pre').waitFor();
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    found.push(...(await audit(page, `${scheme} chat`)));
  }
  await page.getByRole('button', { name: 'Formatting help' }).click();
  await page.getByRole('dialog', { name: 'Formatting' }).waitFor();
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    found.push(...(await audit(page, `${scheme} formatting help`)));
  }
  await page.keyboard.press('Escape');
  await page.emulateMedia({ colorScheme: 'light' });
  await page.getByRole('button', { name: /^Members/ }).click();
  await page.locator('#members-list li').first().waitFor();
  found.push(...(await audit(page, 'members dialog')));
  await page.keyboard.press('Escape');
  await page.keyboard.press('Control+k');
  await page.getByRole('dialog', { name: 'Switch room' }).waitFor();
  found.push(...(await audit(page, 'quick switcher')));
  await page.keyboard.press('Escape');
  // Message search, with a marked hit (the index may lag a second) and with an error.
  await page.keyboard.press('Control+Shift+F');
  const search = page.getByRole('dialog', { name: 'Search messages' });
  await search.waitFor();
  await search.getByLabel('Search for').fill('example');
  for (let i = 0; i < 40 && !(await search.locator('mark').count()); i += 1) {
    await search.getByLabel('Search for').press('Enter');
    await page.waitForTimeout(250);
  }
  await search.locator('mark').first().waitFor();
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    found.push(...(await audit(page, `${scheme} search results`)));
  }
  await page.emulateMedia({ colorScheme: 'light' });
  await search.getByLabel('Search for').fill('"open');
  await search.getByLabel('Search for').press('Enter');
  await search.locator('#search-error').waitFor();
  found.push(...(await audit(page, 'search error')));
  await page.keyboard.press('Escape');
  const message = page.locator('#messages li[data-seq]').first();
  await message.hover();
  await message.getByRole('button', { name: 'Message actions' }).click();
  await page.getByRole('menu').waitFor();
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    found.push(...(await audit(page, `${scheme} message menu`)));
  }
  await page.keyboard.press('Escape');

  // A conversation: an edited message, a deleted one, one with reactions
  // (a chip of mine, pressed, and one of someone else's), and the message
  // box while replying, with `@` suggestions open.
  const roomId = decodeURIComponent(new URL(page.url()).hash.replace('#/room/', ''));
  await server.must(200, 'POST', `/rooms/${roomId}/join`, { token: other.token });
  const edited = await server.post(other.token, roomId, 'first try');
  await server.must(200, 'PATCH', `/rooms/${roomId}/messages/${edited.seq}`, { token: other.token, body: { body: 'second try' } });
  const gone = await server.post(other.token, roomId, 'regrettable');
  await server.must(204, 'DELETE', `/rooms/${roomId}/messages/${gone.seq}`, { token: other.token });
  const liked = await server.post(other.token, roomId, 'react to me, @auditor');
  for (const emoji of ['👍', '🎉']) {
    await server.must(204, 'PUT', `/rooms/${roomId}/messages/${liked.seq}/reactions/${encodeURIComponent(emoji)}`, {
      token: other.token,
    });
  }
  const likedOnPage = page.locator(`#messages li[data-seq="${liked.seq}"]`);
  await likedOnPage.locator('.reaction-chip[data-emoji="🎉"]').waitFor();
  await likedOnPage.locator('.reaction-chip[data-emoji="👍"]').click();
  await likedOnPage.locator('.reaction-chip[aria-pressed="true"]').waitFor();
  await page.locator(`#messages li[data-seq="${gone.seq}"]`, { hasText: 'message deleted' }).waitFor();
  await likedOnPage.hover();
  await likedOnPage.getByRole('button', { name: 'Message actions' }).click();
  await page.getByRole('menuitem', { name: 'Reply' }).click();
  await page.locator('#reply-bar').waitFor();
  await page.getByLabel('Message', { exact: true }).pressSequentially('@ot');
  await page.getByRole('listbox', { name: 'People in this room' }).waitFor();
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    found.push(...(await audit(page, `${scheme} conversation`)));
  }
  await page.getByLabel('Message', { exact: true }).fill('');
  await page.locator(`#messages li[data-seq="${edited.seq}"]`).getByRole('button', { name: /^Edited/ }).click();
  await page.getByRole('dialog', { name: 'Edit history' }).locator('li').first().waitFor();
  found.push(...(await audit(page, 'edit history')));
  await page.keyboard.press('Escape');
  await likedOnPage.getByRole('button', { name: 'Add reaction' }).click();
  await page.getByRole('dialog', { name: 'Add a reaction' }).waitFor();
  found.push(...(await audit(page, 'reaction picker')));
  await page.keyboard.press('Escape');
  const mine = page.locator('#messages li[data-seq]').first();
  await mine.hover();
  await mine.getByRole('button', { name: 'Message actions' }).click();
  await page.getByRole('menuitem', { name: 'Delete' }).click();
  await page.getByRole('dialog', { name: 'Delete this message?' }).waitFor();
  found.push(...(await audit(page, 'delete dialog')));
  await page.keyboard.press('Escape');
  await page.emulateMedia({ colorScheme: 'light' });

  // Direct messages: one started by someone else (unread), the new-message
  // dialog with a chosen person and matches showing, and a private room.
  const { room: direct } = await server.must(200, 'POST', '/dms', { token: other.token, body: { users: [auditorId] } });
  await server.post(other.token, direct.id, 'a word in private, @auditor');
  await page
    .getByRole('navigation', { name: 'Direct messages' })
    .getByRole('link', { name: /other.*1 unread, 1 mention$/ })
    .waitFor();
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    found.push(...(await audit(page, `${scheme} unread and mention badges`)));
  }
  await page.emulateMedia({ colorScheme: 'light' });
  await page.getByRole('button', { name: 'New message' }).click();
  const people = page.getByRole('dialog', { name: 'New message' });
  await people.getByRole('combobox').fill('ot');
  await people.getByRole('option', { name: /^other/ }).click();
  await people.getByRole('combobox').fill('ot');
  await people.getByRole('option').first().waitFor();
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    found.push(...(await audit(page, `${scheme} new message dialog`)));
  }
  await page.keyboard.press('Escape');
  await page.emulateMedia({ colorScheme: 'light' });
  await page.locator('#create-room summary').click();
  await page.getByRole('checkbox', { name: 'Private' }).check();
  await createRoomInUi(page, 'hush');
  await page.locator('#room-title').getByRole('img', { name: 'Private room' }).waitFor();
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    found.push(...(await audit(page, `${scheme} private room and direct messages`)));
  }
  await page.emulateMedia({ colorScheme: 'light' });

  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole('button', { name: 'Open room list' }).click();
  await page.locator('#sidebar').waitFor({ state: 'visible' });
  found.push(...(await audit(page, 'phone drawer')));
  await page.keyboard.press('Escape');
  await page.locator('#sidebar').waitFor({ state: 'hidden' });
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    found.push(...(await audit(page, `${scheme} phone chat`)));
  }

  assert.deepEqual(found, []);
});

test('the invite field, the account dialog and the typing line pass axe in light and dark', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { page } = await openPerson(browser, { bypassCSP: true });
  const found = [];

  await page.goto(`${server.url}/?invite=some-code`);
  await page.getByRole('heading', { name: 'Create an account' }).waitFor();
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    found.push(...(await audit(page, `${scheme} signup with an invite`)));
  }

  await page.emulateMedia({ colorScheme: 'light' });
  await server.createUser('owner');
  const typist = await server.createUser('typist');
  const { page: typistPage } = await openPerson(browser);
  t.after(() => typistPage.context().close());
  await logInInUi(page, server, 'owner');
  await createRoomInUi(page, 'chatter');
  const roomId = decodeURIComponent(new URL(page.url()).hash.replace('#/room/', ''));
  await server.must(200, 'POST', `/rooms/${roomId}/join`, { token: typist.token });
  await logInInUi(typistPage, server, 'typist');
  await typistPage.locator('#room-title', { hasText: 'chatter' }).waitFor();
  await typistPage.waitForFunction(() => document.querySelector('#conn-banner')?.hidden === true);

  // The typist keeps typing while both schemes are audited.
  let typing = true;
  const keepTyping = (async () => {
    const box = typistPage.getByLabel('Message', { exact: true });
    await box.focus();
    while (typing) await box.pressSequentially('a', { delay: 200 });
  })();
  await page.locator('#typing', { hasText: 'typist is typing…' }).waitFor();
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    found.push(...(await audit(page, `${scheme} typing line`)));
  }
  typing = false;
  await keepTyping;

  await page.getByRole('button', { name: 'Account settings' }).click();
  const dialog = page.getByRole('dialog', { name: 'Account' });
  await dialog.waitFor();
  await dialog.locator('#sessions-list li').nth(1).waitFor();
  await dialog.getByRole('button', { name: 'Change password' }).click();
  await page.locator('#current-password-error').waitFor();
  // A file that is not a picture: the picture's error line too.
  const chooser = page.waitForEvent('filechooser');
  await dialog.getByRole('button', { name: 'Upload picture' }).click();
  await (await chooser).setFiles({ name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not a picture') });
  await page.locator('#avatar-error').waitFor();
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    found.push(...(await audit(page, `${scheme} account dialog with errors`)));
  }
  await dialog.getByRole('button', { name: 'Delete account…' }).click();
  const confirm = page.getByRole('dialog', { name: 'Delete your account?' });
  await confirm.waitFor();
  await confirm.getByLabel('Your password').fill('wrong password');
  await confirm.getByRole('button', { name: 'Delete account', exact: true }).click();
  await page.locator('#delete-password-error').waitFor();
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    found.push(...(await audit(page, `${scheme} delete account dialog`)));
  }
  await page.keyboard.press('Escape');
  await page.keyboard.press('Escape');

  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole('button', { name: 'Open room list' }).click();
  await page.getByRole('button', { name: 'Account settings' }).click();
  await dialog.locator('#sessions-list li').nth(1).waitFor();
  found.push(...(await audit(page, 'phone account dialog')));

  assert.deepEqual(found, []);
});

test('a keyboard user skips to the message box and hears new messages', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { page, trouble } = await openPerson(browser);
  await signUpInUi(page, server, 'listener');
  await createRoomInUi(page, 'quiet');
  const roomId = decodeURIComponent(new URL(page.url()).hash.replace('#/room/', ''));
  const speaker = await server.createUser('speaker');
  await server.must(200, 'POST', `/rooms/${roomId}/join`, { token: speaker.token });

  // The first Tab reaches the skip link; following it lands in the message box
  // and keeps the room in the address bar.
  await page.reload();
  await page.locator('#composer').waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to message box');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'composer-input');
  assert.ok(page.url().includes('#/room/'), 'the skip link kept the room in the URL');
  await page.keyboard.type('typed without a mouse');
  await page.keyboard.press('Enter');
  await page.locator('#messages li[data-seq]', { hasText: 'typed without a mouse' }).waitFor();

  await server.post(speaker.token, roomId, 'can you hear me?');
  const live = page.locator('[aria-live="polite"]#announcer');
  await live.filter({ hasText: 'speaker: can you hear me?' }).waitFor();
  assert.deepEqual(await trouble.problems(), []);
});

test('a room\'s details while managing it pass axe in light and dark', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { page } = await openPerson(browser, { bypassCSP: true });
  await signUpInUi(page, server, 'keeper');
  const guest = await server.createUser('guest');
  const taken = await server.createUser('taken');
  await server.must(201, 'POST', '/rooms', { token: taken.token, body: { name: 'taken' } });
  await createRoomInUi(page, 'kept', 'Looked after');
  const roomId = await page.evaluate(() => decodeURIComponent(location.hash.split('/')[2]));
  await server.must(200, 'POST', `/rooms/${roomId}/join`, { token: guest.token });
  await server.must(200, 'POST', `/rooms/${roomId}/join`, { token: taken.token });
  await server.must(204, 'POST', `/rooms/${roomId}/bans`, { token: (await server.must(200, 'POST', '/login', { body: { login: 'keeper', password: PASSWORD } })).token, body: { user: taken.user.id } });

  await page.locator('#room-info').click();
  const dialog = page.getByRole('dialog', { name: 'kept' });
  await dialog.getByRole('button', { name: 'Manage guest' }).click();
  await dialog.getByRole('button', { name: 'Lift ban on taken' }).waitFor();
  await dialog.getByRole('button', { name: 'Edit name and topic' }).click();
  await dialog.getByRole('textbox', { name: 'Name' }).fill('taken');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.getByText('Another public room already has that name.').waitFor();
  const found = [];
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    found.push(...(await audit(page, `${scheme} room details, managing`)));
  }
  await dialog.getByRole('group', { name: 'Actions for guest' }).getByRole('button', { name: 'Ban' }).click();
  await page.getByRole('dialog', { name: 'Ban guest from kept?' }).waitFor();
  found.push(...(await audit(page, 'ban confirmation')));
  await page.getByRole('dialog', { name: 'Ban guest from kept?' }).getByRole('button', { name: 'Cancel' }).click();
  // A webhook just made: its address shown once, its bot tagged in the list and on its message.
  await dialog.getByLabel('New webhook', { exact: true }).fill('Alerts');
  await dialog.getByRole('button', { name: 'Create webhook' }).click();
  await dialog.locator('#hook-created').waitFor();
  const url = await dialog.getByLabel('Webhook address').inputValue();
  await dialog.locator('#members-list .bot-tag').waitFor();
  await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"text":"disk at 91%"}' });
  await page.locator('#messages li[data-seq] .bot-tag').waitFor();
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    found.push(...(await audit(page, `${scheme} room details, a webhook just made`)));
  }
  assert.deepEqual(found, []);
});
