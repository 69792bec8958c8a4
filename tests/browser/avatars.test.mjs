// Pictures: uploaded from the account dialog (and its errors, in words),
// shown instead of the initial wherever the person appears — at once on
// everyone's screen, in the timeline, the member list and the sidebar — and
// removed again.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import zlib from 'node:zlib';
import { TestServer, eventually, launchBrowser, logInInUi, openPerson, sendInUi } from './harness.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** A small square PNG of one colour, made here so the test needs no files. */
function png(size, [r, g, b]) {
  const chunk = (type, data) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(size * 3).map((_, i) => [r, g, b][i % 3])]);
  const pixels = zlib.deflateSync(Buffer.concat(Array.from({ length: size }, () => row)));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', pixels),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Chooses `file` through the account dialog's "Upload picture" button, as a person does. */
async function upload(page, file) {
  const chooser = page.waitForEvent('filechooser');
  await page.getByRole('button', { name: 'Upload picture' }).click();
  await (await chooser).setFiles(file);
}

/** What an avatar element shows: a loaded picture's URL, or its initial. */
function shown(locator) {
  return locator.evaluate((span) => {
    const img = span.querySelector('img');
    if (img) return img.complete && img.naturalWidth > 0 ? `picture ${new URL(img.src).pathname}` : 'loading';
    return `initial ${span.textContent}`;
  });
}

test('a picture uploaded from the account dialog replaces the initial on everyone\'s screen, and can be removed', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const alice = await server.createUser('alice');
  const bob = await server.createUser('bob');
  const { room } = await server.must(201, 'POST', '/rooms', { token: alice.token, body: { name: 'general' } });
  await server.must(200, 'POST', `/rooms/${room.id}/join`, { token: bob.token });
  await server.post(alice.token, room.id, 'hello from alice');

  const a = await openPerson(browser);
  const b = await openPerson(browser);
  await logInInUi(a.page, server, 'alice');
  await logInInUi(b.page, server, 'bob');
  const alicesMessageOnBob = b.page.locator('#messages li[data-seq]', { hasText: 'hello from alice' }).locator('.avatar');
  await alicesMessageOnBob.waitFor();
  assert.equal(await shown(alicesMessageOnBob), 'initial A');

  // Alice opens her account and picks files: first two that are no good.
  await a.page.getByRole('button', { name: 'Account settings' }).click();
  const dialog = a.page.getByRole('dialog', { name: 'Account' });
  await dialog.waitFor();
  assert.equal(await dialog.getByRole('button', { name: 'Remove' }).isVisible(), false, 'nothing to remove yet');
  const errorLine = a.page.locator('#avatar-error');
  await upload(a.page, { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not a picture at all') });
  await eventually(async () => /not a PNG, JPEG or WebP/.test(await errorLine.innerText().catch(() => '')), {
    message: 'the invalid_image sentence',
  });
  assert.equal(await errorLine.getAttribute('role'), 'alert');
  await upload(a.page, { name: 'huge.png', mimeType: 'image/png', buffer: Buffer.alloc(2 * 1024 * 1024 + 1, 1) });
  await eventually(async () => /over 2 MiB/.test(await errorLine.innerText().catch(() => '')), {
    message: 'the too-large sentence',
  });

  // Then a real one: it shows in her dialog, on her messages, and on bob's screen.
  await upload(a.page, { name: 'me.png', mimeType: 'image/png', buffer: png(16, [200, 40, 40]) });
  await a.page.getByText('Picture updated.').waitFor();
  assert.equal(await errorLine.isVisible(), false);
  const { user } = await server.must(200, 'GET', '/me', { token: alice.token }).then((body) => ({ user: body.user ?? body }));
  assert.match(user.avatar, /^\/api\/v1\/users\/.+\/avatar\?v=/);
  const picture = `picture ${user.avatar.split('?')[0]}`;
  await eventually(async () => (await shown(a.page.locator('#account-avatar'))) === picture, { message: 'the preview' });
  await eventually(async () => (await shown(a.page.locator('#me-avatar'))) === picture, { message: 'her own corner' });
  await eventually(async () => (await shown(alicesMessageOnBob)) === picture, {
    message: 'alice\'s picture on her message, on bob\'s screen',
  });
  assert.equal(await dialog.getByRole('button', { name: 'Remove' }).isVisible(), true);
  await a.page.keyboard.press('Escape');

  // New messages carry it too, and so does bob's member list.
  await sendInUi(a.page, 'with a face now');
  const newOnBob = b.page.locator('#messages li[data-seq]', { hasText: 'with a face now' });
  await newOnBob.waitFor();
  // A follow-up hides its avatar; the first of a run shows it.
  assert.equal(await shown(newOnBob.locator('.avatar')), picture);
  await b.page.getByRole('button', { name: /^Members/ }).click();
  const alicesRow = b.page.locator('#members-list li', { hasText: 'alice' }).locator('.avatar');
  await eventually(async () => (await shown(alicesRow)) === picture, { message: 'the member list' });
  await b.page.keyboard.press('Escape');

  // Removed: the initial comes back everywhere.
  await a.page.getByRole('button', { name: 'Account settings' }).click();
  await dialog.getByRole('button', { name: 'Remove' }).click();
  await a.page.getByText('Picture removed.').waitFor();
  assert.equal(await a.page.evaluate(() => document.activeElement?.id), 'avatar-upload', 'focus stays in the dialog');
  await eventually(async () => (await shown(alicesMessageOnBob)) === 'initial A', { message: 'the initial back on bob\'s screen' });
  assert.equal(await shown(a.page.locator('#me-avatar')), 'initial A');

  assert.deepEqual(await a.trouble.problems(), []);
  assert.deepEqual(await b.trouble.problems(), []);
});
