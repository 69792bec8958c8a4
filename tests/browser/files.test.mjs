// Files in messages: attached with the button, by a drop on the room and by a
// paste; uploads show their progress and can be cancelled, and a message sent
// meanwhile waits for them; the other person sees pictures as previews (with
// their box reserved) and other files as download chips, live; the lightbox
// works by keyboard; HTML and SVG uploads never run script on hearth's origin;
// a file over the server's limit is refused in words. At 390 px it all fits.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import zlib from 'node:zlib';
import { TestServer, eventually, launchBrowser, logInInUi, openPerson } from './harness.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** A PNG of one colour, made here so the test needs no files. */
function png(width, height, [r, g, b]) {
  const chunk = (type, data) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(width * 3).map((_, i) => [r, g, b][i % 3])]);
  const pixels = zlib.deflateSync(Buffer.concat(Array.from({ length: height }, () => row)));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', pixels),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/**
 * Bytes that do not compress, so a throttled upload takes its full time;
 * another `seed` gives other bytes (the server stores equal files once).
 */
function noise(size, seed = 1) {
  const bytes = Buffer.alloc(size);
  let x = (2463534242 + seed * 7919) >>> 0;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

/** alice (owner) and bob (member) in one room, each logged in in their own browser profile. */
async function twoInARoom(server, t, { bobViewport } = {}) {
  const alice = await server.createUser('alice');
  const bob = await server.createUser('bob');
  const { room } = await server.must(201, 'POST', '/rooms', { token: alice.token, body: { name: 'photos' } });
  await server.must(200, 'POST', `/rooms/${room.id}/join`, { token: bob.token });
  const a = await openPerson(browser);
  const b = await openPerson(browser, bobViewport ? { viewport: bobViewport } : {});
  t.after(() => Promise.all([a.context.close(), b.context.close()]));
  for (const [person, name] of [[a, 'alice'], [b, 'bob']]) {
    await logInInUi(person.page, server, name);
    await person.page.goto(`${server.url}/#/room/${room.id}`);
    await person.page.locator('#room-title', { hasText: 'photos' }).waitFor();
  }
  return { room, alice, bob, a, b };
}

/** Chooses files with the composer's "Attach files" button, as a person does. */
async function attachByButton(page, files) {
  const chooser = page.waitForEvent('filechooser');
  await page.getByRole('button', { name: 'Attach files' }).click();
  await (await chooser).setFiles(files);
}

/** A DataTransfer in the page holding one file, for a drop or a paste. */
function dataTransfer(page, { name, mimeType, buffer }) {
  return page.evaluateHandle(
    ({ name: fileName, type, base64 }) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([bytes], fileName, { type }));
      return transfer;
    },
    { name, type: mimeType, base64: buffer.toString('base64') },
  );
}

/** The composer's chips: name and whether it still uploads. */
function chips(page) {
  return page.locator('#attachment-list li').evaluateAll((items) =>
    items.map((li) => `${li.querySelector('.attachment-name').textContent}${li.querySelector('progress') ? ' (uploading)' : ''}`),
  );
}

async function uploadedChips(page, count) {
  return eventually(
    async () => {
      const shown = await chips(page);
      return shown.length === count && shown.every((c) => !c.endsWith('(uploading)')) && shown;
    },
    { message: `${count} uploaded chips` },
  );
}

test('files attached by button, drop and paste reach the other person live as previews and chips; the lightbox works by keyboard', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { a, b } = await twoInARoom(server, t);
  const alice = a.page;
  const bob = b.page;

  // The button (through the file chooser).
  await attachByButton(alice, [
    { name: 'red.png', mimeType: 'image/png', buffer: png(800, 600, [220, 30, 30]) },
    { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('shopping list\n'.repeat(100)) },
  ]);
  await uploadedChips(alice, 2);

  // A real drop on the room: the drop zone shows while the files hover.
  const dropped = await dataTransfer(alice, { name: 'green.png', mimeType: 'image/png', buffer: png(300, 500, [30, 200, 30]) });
  await alice.dispatchEvent('#timeline', 'dragenter', { dataTransfer: dropped });
  await alice.dispatchEvent('#timeline', 'dragover', { dataTransfer: dropped });
  assert.ok(await alice.locator('#drop-zone').isVisible(), 'the drop zone shows while files are dragged over the room');
  assert.match(await alice.locator('#drop-zone').innerText(), /Drop files/);
  await alice.dispatchEvent('#timeline', 'drop', { dataTransfer: dropped });
  assert.ok(await alice.locator('#drop-zone').isHidden(), 'the drop zone goes once the files are dropped');
  await uploadedChips(alice, 3);

  // A paste into the message box.
  const pasted = await dataTransfer(alice, { name: 'image.png', mimeType: 'image/png', buffer: png(120, 120, [30, 30, 220]) });
  await alice.locator('#composer-input').evaluate((box, clipboardData) => {
    box.dispatchEvent(new ClipboardEvent('paste', { clipboardData, bubbles: true, cancelable: true }));
  }, pasted);
  assert.deepEqual(await uploadedChips(alice, 4), ['red.png', 'notes.txt', 'green.png', 'image.png']);

  // A chip can be taken off again, by its named button.
  await attachByButton(alice, [{ name: 'oops.txt', mimeType: 'text/plain', buffer: Buffer.from('not this one') }]);
  await uploadedChips(alice, 5);
  await alice.getByRole('button', { name: 'Remove oops.txt' }).click();
  await uploadedChips(alice, 4);

  await alice.getByLabel('Message', { exact: true }).fill('from the trip');
  await alice.getByLabel('Message', { exact: true }).press('Enter');
  assert.ok(await alice.locator('#attachment-list').isHidden(), 'sending takes the chips off the box');

  // bob sees it live: three previews, their boxes reserved from the known
  // size before they load, and the text file as a chip with a download link.
  const message = bob.locator('#messages li[data-seq]', { hasText: 'from the trip' });
  await message.waitFor();
  const previews = message.locator('button.file-preview');
  await eventually(async () => (await previews.count()) === 3, { message: 'three previews' });
  const boxes = await previews.locator('img').evaluateAll((imgs) =>
    imgs.map((img) => ({ width: Number(img.getAttribute('width')), height: Number(img.getAttribute('height')), src: new URL(img.src).pathname })),
  );
  // 800×600 fits 320×240; 300×500 is scaled to 240 high; 120×120 stays.
  assert.deepEqual(
    boxes.map(({ width, height }) => [width, height]),
    [
      [320, 240],
      [144, 240],
      [120, 120],
    ],
  );
  assert.match(boxes[0].src, /^\/api\/v1\/files\/[^/]+\/thumb$/, 'a large picture shows the thumbnail');
  await eventually(() => previews.locator('img').evaluateAll((imgs) => imgs.every((img) => img.complete && img.naturalWidth > 0)), {
    message: 'the previews load',
  });
  const chip = message.locator('a.file-chip');
  assert.equal(await chip.count(), 1);
  assert.ok(await message.getByRole('link', { name: /^Download notes\.txt ?, 1\.4 KiB$/ }).isVisible(), 'the chip is named by its file and size');
  assert.equal(await chip.getAttribute('download'), 'notes.txt');
  const href = await chip.getAttribute('href');
  const fetched = await fetch(`${server.url}${href}`, { headers: { Cookie: await cookieHeader(b.context) } });
  assert.equal(fetched.status, 200);
  assert.equal(await fetched.text(), 'shopping list\n'.repeat(100));

  // A message of only files.
  await attachByButton(alice, [{ name: 'only.txt', mimeType: 'text/plain', buffer: Buffer.from('just a file') }]);
  await uploadedChips(alice, 1);
  await alice.getByLabel('Message', { exact: true }).press('Enter');
  await bob.locator('#messages li[data-seq] a.file-chip', { hasText: 'only.txt' }).waitFor();

  // The lightbox, by keyboard only: to the message, Tab to its first
  // preview, Enter; arrows move, Escape closes and focus comes back.
  await message.focus();
  await bob.keyboard.press('Tab');
  assert.equal(await bob.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Open picture red.png');
  await bob.keyboard.press('Enter');
  const dialog = bob.getByRole('dialog', { name: 'red.png' });
  await dialog.waitFor();
  assert.match(await dialog.innerText(), /Picture 1 of 3/);
  await eventually(() => dialog.locator('img').evaluate((img) => img.complete && img.naturalWidth === 800), {
    message: 'the original in the lightbox',
  });
  await bob.keyboard.press('ArrowRight');
  await bob.getByRole('dialog', { name: 'green.png' }).waitFor();
  await bob.keyboard.press('ArrowLeft');
  await bob.keyboard.press('ArrowLeft');
  await bob.getByRole('dialog', { name: 'image.png' }).waitFor();
  assert.match(await bob.locator('dialog.lightbox').innerText(), /Picture 3 of 3/);
  await bob.keyboard.press('Escape');
  await eventually(async () => !(await bob.locator('dialog.lightbox').evaluate((d) => d.open)), { message: 'the lightbox closes' });
  assert.equal(await bob.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Open picture red.png');

  // At phone width the previews, the chip and the lightbox fit.
  await bob.setViewportSize({ width: 390, height: 800 });
  await message.scrollIntoViewIfNeeded();
  const overflow = await bob.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.equal(overflow, 0, 'nothing scrolls sideways at 390 px');
  const right = await message.evaluate((li) =>
    Math.max(...[...li.querySelectorAll('.file-preview, .file-chip')].map((el) => el.getBoundingClientRect().right)),
  );
  assert.ok(right <= 390, `the files stay inside the screen (right edge ${right})`);
  await previews.nth(1).click();
  const image = bob.locator('dialog.lightbox img');
  await eventually(() => image.evaluate((img) => img.complete && img.naturalWidth > 0), { message: 'the lightbox picture at 390 px' });
  const box = await image.boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 390, `the picture fits the phone screen: ${JSON.stringify(box)}`);
  await bob.locator('dialog.lightbox').getByRole('button', { name: 'Close', exact: true }).click();
  await eventually(async () => !(await bob.locator('dialog.lightbox').evaluate((d) => d.open)), { message: 'the lightbox closes at 390 px' });

  assert.deepEqual(await a.trouble.problems(), []);
  assert.deepEqual(await b.trouble.problems(), []);
});

test('an upload shows its progress and can be cancelled; a message sent meanwhile waits for its upload, and gets its text back if the upload breaks off', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { a, b } = await twoInARoom(server, t);
  const alice = a.page;
  // About 200 KiB/s up: a 1.5 MiB file takes some seconds.
  const cdp = await a.context.newCDPSession(alice);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 20,
    downloadThroughput: -1,
    uploadThroughput: 200 * 1024,
  });

  await attachByButton(alice, [{ name: 'big.bin', mimeType: 'application/octet-stream', buffer: noise(1536 * 1024) }]);
  const bar = alice.getByRole('progressbar', { name: 'Uploading big.bin' });
  await bar.waitFor();
  const progress = await eventually(
    async () => {
      const value = Number(await bar.getAttribute('value'));
      const max = Number(await bar.getAttribute('max'));
      return value > 0 && value < max && { value, max };
    },
    { message: 'the bar partly filled' },
  );
  assert.equal(progress.max, 1536 * 1024);
  await alice.getByRole('button', { name: 'Cancel upload of big.bin' }).click();
  assert.deepEqual(await chips(alice), [], 'the cancelled file is gone');
  assert.ok(await alice.locator('#composer-error').isHidden(), 'a cancel is no error');

  // Sent while it uploads: the box empties at once, the message goes when the upload finishes.
  await attachByButton(alice, [{ name: 'slides.pdf', mimeType: 'application/pdf', buffer: noise(600 * 1024) }]);
  await alice.getByRole('progressbar', { name: 'Uploading slides.pdf' }).waitFor();
  await alice.getByLabel('Message', { exact: true }).fill('the slides');
  await alice.getByLabel('Message', { exact: true }).press('Enter');
  assert.equal(await alice.getByLabel('Message', { exact: true }).inputValue(), '');
  assert.match(await alice.locator('#attachment-status').innerText(), /will be sent when its upload finishes/);
  await b.page.locator('#messages li[data-seq]', { hasText: 'the slides' }).locator('a.file-chip', { hasText: 'slides.pdf' }).waitFor({ timeout: 30_000 });
  assert.ok(await alice.locator('#attachment-status').isHidden());
  assert.deepEqual(await chips(alice), []);

  // An upload that breaks off while its message waits: the text comes back to the box, and why is said.
  await attachByButton(alice, [{ name: 'lost.bin', mimeType: 'application/octet-stream', buffer: noise(1536 * 1024, 2) }]);
  await alice.getByRole('progressbar', { name: 'Uploading lost.bin' }).waitFor();
  await alice.getByLabel('Message', { exact: true }).fill('this one will not make it');
  await alice.getByLabel('Message', { exact: true }).press('Enter');
  await alice.locator('#attachment-status').waitFor();
  await server.kill(); // the connection breaks off mid-upload
  await eventually(async () => (await alice.getByLabel('Message', { exact: true }).inputValue()) === 'this one will not make it', {
    message: 'the text back in the box',
  });
  assert.match(await alice.locator('#composer-error').innerText(), /“lost\.bin” could not be uploaded: the connection to the server broke off/);
  assert.deepEqual(await chips(alice), []);
  assert.ok(await alice.locator('#attachment-status').isHidden());
  assert.equal(await alice.locator('#messages li', { hasText: 'will not make it' }).count(), 0, 'nothing was sent');
  assert.deepEqual(await a.trouble.problems(), []);
});

test('an HTML file and an SVG with a script never run it on hearth\'s origin', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { room, alice, b } = await twoInARoom(server, t);
  const bob = b.page;
  const hostile = "localStorage.setItem('pwned','yes'); document.cookie='pwned=yes; path=/'; alert(document.domain);";
  const page = `<!doctype html><html><body><h1>hi</h1><script>${hostile}</script></body></html>`;
  const uploads = {};
  for (const [name, type, body] of [
    ['evil.html', 'text/html', page],
    ['evil.svg', 'image/svg+xml', `<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>${hostile}</script><rect width="10" height="10"/></svg>`],
    // HTML that claims to be a picture.
    ['disguised.png', 'image/png', page],
    // A real picture, which is shown inline: the sandbox is what guards it.
    ['real.png', 'image/png', png(20, 20, [0, 0, 0])],
    // Markup in a name is only ever text.
    ['<img src=x onerror=alert(1)>.txt', 'text/plain', 'hi'],
  ]) {
    const reply = await fetch(`${server.url}/api/v1/rooms/${room.id}/uploads?${new URLSearchParams({ name })}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${alice.token}`, 'Content-Type': type },
      body,
    });
    const text = await reply.text();
    assert.equal(reply.status, 201, `${name}: ${text}`);
    uploads[name] = JSON.parse(text).file;
  }
  const sent = await server.api('POST', `/rooms/${room.id}/messages`, {
    token: alice.token,
    body: { body: 'look', files: Object.values(uploads).map((file) => file.id) },
  });
  assert.equal(sent.status, 201, JSON.stringify(sent.body));

  // In the timeline the three hostile files are download chips, never rendered; only the real picture is a preview.
  const message = bob.locator('#messages li[data-seq]', { hasText: 'look' });
  await message.waitFor();
  assert.deepEqual(await message.locator('a.file-chip .file-chip-name').allInnerTexts(), ['evil.html', 'evil.svg', 'disguised.png', '<img src=x onerror=alert(1)>.txt']);
  assert.equal(await message.locator('button.file-preview').count(), 1);
  assert.equal(await message.locator('iframe, object, embed, .file-chip img').count(), 0);

  // Served so a browser cannot run them as hearth: sandboxed and not sniffed; all but the real picture as downloads.
  for (const file of Object.values(uploads)) {
    const reply = await fetch(`${server.url}/api/v1/files/${file.id}`, { headers: { Authorization: `Bearer ${alice.token}` } });
    assert.equal(reply.status, 200);
    assert.match(reply.headers.get('content-security-policy') ?? '', /sandbox/, file.name);
    assert.equal(reply.headers.get('x-content-type-options'), 'nosniff', file.name);
    assert.match(reply.headers.get('content-disposition') ?? '', file.name === 'real.png' ? /^inline/ : /^attachment/, file.name);
  }
  delete uploads['<img src=x onerror=alert(1)>.txt'];

  // bob opens each file's address in his browser, signed in, with something of hearth's in storage.
  await bob.evaluate(() => localStorage.setItem('hearth-test', 'kept'));
  for (const file of Object.values(uploads)) {
    const tab = await b.context.newPage();
    const dialogs = [];
    tab.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      dialog.dismiss().catch(() => {});
    });
    const download = tab.waitForEvent('download', { timeout: 5000 }).catch(() => null);
    await tab.goto(`${server.url}/api/v1/files/${file.id}`).catch(() => {}); // a download aborts the navigation
    const downloaded = await download;
    await tab.waitForTimeout(300);
    assert.deepEqual(dialogs, [], `${file.name}: no dialog`);
    assert.equal(downloaded == null, file.name === 'real.png', `${file.name}: ${downloaded ? 'downloaded' : 'shown'}`);
    if (!downloaded) {
      // Shown inline: the sandbox gives it an opaque origin, so hearth's storage and cookies are out of reach.
      const reach = await tab.evaluate(() => {
        const tries = {};
        for (const [what, get] of [
          ['cookie', () => document.cookie],
          ['localStorage', () => localStorage.getItem('hearth-test')],
        ]) {
          try {
            tries[what] = get();
          } catch (error) {
            tries[what] = `blocked: ${error.name}`;
          }
        }
        return { origin: self.origin, ...tries };
      });
      assert.deepEqual(reach, { origin: 'null', cookie: 'blocked: SecurityError', localStorage: 'blocked: SecurityError' });
    }
    await tab.close();
  }
  // Nothing ran as hearth: its storage and cookies are as they were.
  assert.equal(await bob.evaluate(() => localStorage.getItem('pwned')), null);
  assert.equal(await bob.evaluate(() => localStorage.getItem('hearth-test')), 'kept');
  assert.ok(!(await b.context.cookies(server.url)).some((c) => c.name === 'pwned'), 'no cookie was set');

  // Pressing the chip in hearth downloads; the page stays.
  const download = bob.waitForEvent('download');
  await message.locator('a.file-chip', { hasText: 'evil.html' }).click();
  assert.equal((await download).suggestedFilename(), 'evil.html');
  assert.equal(new URL(bob.url()).pathname, '/');
  assert.deepEqual(await b.trouble.problems(), []);
});

test('a file over the server\'s limit is refused in words, and nothing is sent', async (t) => {
  const server = await TestServer.start({ HEARTH_MAX_UPLOAD_BYTES: String(100 * 1024) });
  t.after(() => server.stop());
  const { a, b } = await twoInARoom(server, t, { bobViewport: { width: 390, height: 800 } });
  const alice = a.page;
  await attachByButton(alice, [{ name: 'huge.bin', mimeType: 'application/octet-stream', buffer: noise(300 * 1024) }]);
  const error = alice.locator('#composer-error');
  await error.waitFor();
  const text = await error.innerText();
  assert.match(text, /“huge\.bin” \(300 KiB\) is too large/);
  assert.match(text, /100 KiB|102[ ,.]?400/, `the limit is named: ${text}`);
  assert.equal(await alice.locator('#composer-error').getAttribute('role'), 'alert');
  assert.deepEqual(await chips(alice), []);
  // Under the limit is fine, at phone width too.
  await attachByButton(b.page, [{ name: 'small.png', mimeType: 'image/png', buffer: png(64, 48, [10, 10, 10]) }]);
  await uploadedChips(b.page, 1);
  const overflow = await b.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.equal(overflow, 0);
  await b.page.getByRole('button', { name: 'Send message' }).click();
  await alice.locator('#messages li[data-seq] button.file-preview').waitFor();
  assert.deepEqual(await a.trouble.problems(), []);
});

test('several files upload a few at a time; the quota and the upload rate are refused in words', async (t) => {
  const server = await TestServer.start({ HEARTH_UPLOAD_QUOTA_MB: '1', HEARTH_UPLOADS_PER_MINUTE: '7' });
  t.after(() => server.stop());
  const { a } = await twoInARoom(server, t);
  const alice = a.page;
  const error = alice.locator('#composer-error');
  // Five at once: the page never has more in flight than the server takes from one person (3).
  await attachByButton(
    alice,
    [1, 2, 3, 4, 5].map((seed) => ({ name: `part${seed}.bin`, mimeType: 'application/octet-stream', buffer: noise(200 * 1024, seed) })),
  );
  await uploadedChips(alice, 5);
  assert.ok(await error.isHidden(), 'no upload was refused');
  // 1000 KiB used of 1 MiB: 100 KiB more is over the quota.
  await attachByButton(alice, [{ name: 'part6.bin', mimeType: 'application/octet-stream', buffer: noise(100 * 1024, 6) }]);
  await eventually(async () => /“part6\.bin” was not attached: .*quota of 1 MiB/.test(await error.innerText().catch(() => '')), {
    message: 'the quota in words',
  });
  // The eighth upload this minute is over the rate (seven a minute).
  await attachByButton(alice, [{ name: 'tiny.txt', mimeType: 'text/plain', buffer: Buffer.from('hi') }]);
  await uploadedChips(alice, 6);
  await alice.getByRole('button', { name: 'Remove tiny.txt' }).click();
  await attachByButton(alice, [{ name: 'tiny.txt', mimeType: 'text/plain', buffer: Buffer.from('hi') }]);
  await eventually(async () => /“tiny\.txt” was not attached: too many uploads in a short time\. Try again in \d+ seconds\./.test(await error.innerText().catch(() => '')), {
    message: 'the rate limit in words',
  });
  assert.deepEqual(await chips(alice), ['part1.bin', 'part2.bin', 'part3.bin', 'part4.bin', 'part5.bin'], 'the refused files are not on the message');
  assert.deepEqual(await a.trouble.problems(), []);
});

test('attaching and showing files pass axe in light and dark', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const alice = await server.createUser('alice');
  const { room } = await server.must(201, 'POST', '/rooms', { token: alice.token, body: { name: 'photos' } });
  // axe is injected as a script, which the page's own CSP rightly forbids; this profile skips the CSP.
  const { context, page } = await openPerson(browser, { bypassCSP: true });
  t.after(() => context.close());
  await logInInUi(page, server, 'alice');
  await page.goto(`${server.url}/#/room/${room.id}`);
  await page.locator('#room-title', { hasText: 'photos' }).waitFor();
  const audit = async (label) => {
    await page.addScriptTag({ path: createRequire(import.meta.url).resolve('axe-core/axe.min.js') });
    const violations = await page.evaluate(async () => {
      const result = await window.axe.run(document, { resultTypes: ['violations'] });
      return result.violations.map((v) => `${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    });
    return violations.map((line) => `${label}: ${line}`);
  };
  const found = [];
  await attachByButton(page, [
    { name: 'one.png', mimeType: 'image/png', buffer: png(400, 300, [200, 100, 0]) },
    { name: 'two.png', mimeType: 'image/png', buffer: png(300, 400, [0, 100, 200]) },
    { name: 'minutes.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.4 not really') },
  ]);
  await uploadedChips(page, 3);
  await page.getByLabel('Message', { exact: true }).fill('the pictures');
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    found.push(...(await audit(`${scheme} chips`)));
  }
  await page.getByLabel('Message', { exact: true }).press('Enter');
  await page.locator('#messages li[data-seq] a.file-chip').waitFor();
  const dropped = await dataTransfer(page, { name: 'x.txt', mimeType: 'text/plain', buffer: Buffer.from('x') });
  await page.dispatchEvent('#timeline', 'dragenter', { dataTransfer: dropped });
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    found.push(...(await audit(`${scheme} previews, chip and drop zone`)));
  }
  await page.dispatchEvent('#timeline', 'dragleave', { dataTransfer: dropped });
  await page.locator('button.file-preview').first().click();
  await page.getByRole('dialog', { name: 'one.png' }).waitFor();
  found.push(...(await audit('lightbox')));
  assert.deepEqual(found, []);
});

test('a message with files sent while offline waits in the outbox, survives a reload and goes once, files and all', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { room, alice, a, b } = await twoInARoom(server, t);
  const page = a.page;
  // A tunnel for messages: the socket is refused and every message post is lost; uploads still get through.
  let inTunnel = true;
  await page.routeWebSocket(/\/api\/v1\/ws/, (ws) => (inTunnel ? ws.close() : ws.connectToServer()));
  await page.route('**/api/v1/rooms/*/messages', (route) =>
    route.request().method() === 'POST' ? route.abort('internetdisconnected') : route.fallback(),
  );
  await page.reload();
  await page.locator('#conn-banner').waitFor({ state: 'visible' });
  await attachByButton(page, [
    { name: 'map.png', mimeType: 'image/png', buffer: png(200, 100, [0, 120, 0]) },
    { name: 'route.txt', mimeType: 'text/plain', buffer: Buffer.from('left, then right') },
  ]);
  await uploadedChips(page, 2);
  await page.getByLabel('Message', { exact: true }).fill('the way');
  await page.getByLabel('Message', { exact: true }).press('Enter');
  const queued = page.locator('#messages li.outgoing');
  await queued.waitFor();
  await page.waitForTimeout(500);
  assert.equal(await queued.getAttribute('data-status'), 'pending', 'offline, it waits rather than fails');
  assert.equal(await queued.locator('button.file-preview').count(), 1, 'the waiting message shows its picture');
  assert.equal(await queued.locator('a.file-chip', { hasText: 'route.txt' }).count(), 1, 'and its file');
  const clientId = await queued.getAttribute('data-client-id');

  await page.reload();
  await page.locator('#room-title', { hasText: 'photos' }).waitFor();
  await queued.waitFor();
  assert.equal(await queued.getAttribute('data-client-id'), clientId);
  assert.equal(await queued.locator('button.file-preview, a.file-chip').count(), 2, 'its files are still on it after a reload');

  inTunnel = false;
  await page.unrouteAll({ behavior: 'ignoreErrors' });
  const retry = page.getByRole('button', { name: 'Reconnect now' });
  if (await retry.isVisible()) await retry.click();
  const arrived = b.page.locator('#messages li[data-seq]', { hasText: 'the way' });
  await arrived.waitFor({ timeout: 20_000 });
  assert.equal(await arrived.locator('button.file-preview').count(), 1);
  assert.equal(await arrived.locator('a.file-chip', { hasText: 'route.txt' }).count(), 1);
  await eventually(async () => (await queued.count()) === 0, { message: 'the outgoing copy replaced' });
  const { messages } = await server.must(200, 'GET', `/rooms/${room.id}/messages`, { token: alice.token });
  assert.deepEqual(
    messages.map((m) => [m.body, m.client_id, m.files.map((f) => f.name)]),
    [['the way', clientId, ['map.png', 'route.txt']]],
    'stored once, with its files',
  );
});

/** The browser profile's cookies as a Cookie header, to fetch as that person. */
async function cookieHeader(context) {
  return (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
}
