// hearth as an installed app: the manifest and its icons, installability as
// Chromium judges it, the service worker keeping the shell (and never the
// API), an offline reload that shows the app reconnecting, the unread count
// on the favicon, the optional chime, and the worker's Web Push handling
// (delivered through the DevTools protocol, since headless Chromium has no
// push service) with its notification click.

import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { TestServer, Trouble, eventually, launchBrowser, logInInUi, openPerson } from './harness.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** Width and height of a PNG, from its IHDR chunk. */
function pngSize(bytes) {
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG signature');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

/** Waits until the page is controlled by an active service worker. */
async function controlled(page) {
  await page.evaluate(() => navigator.serviceWorker.ready);
  await eventually(() => page.evaluate(() => navigator.serviceWorker.controller !== null), {
    message: 'the service worker to control the page',
  });
}

/** The kept caches as {name: [paths]}. */
function cachedPaths(page) {
  return page.evaluate(async () => {
    const out = {};
    for (const name of await caches.keys()) {
      const cache = await caches.open(name);
      out[name] = (await cache.keys()).map((request) => new URL(request.url).pathname + new URL(request.url).search);
    }
    return out;
  });
}

/**
 * A person in a real (persistent, not incognito) Chromium profile, where
 * apps can be installed and the Push API is offered; `close` removes it.
 */
async function profilePerson() {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-profile-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    viewport: { width: 1280, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-sync', '--disable-component-update'],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const trouble = new Trouble(page);
  const close = async () => {
    await context.close();
    await fs.rm(dir, { recursive: true, force: true });
  };
  return { context, page, trouble, close };
}

/** Chromium's installability errors for hearth in a real profile. */
async function installableInProfile(url) {
  const { context, page, close } = await profilePerson();
  try {
    await page.goto(url);
    await page.locator('#login-form').waitFor();
    await controlled(page);
    const cdp = await context.newCDPSession(page);
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    return installabilityErrors;
  } finally {
    await close();
  }
}

async function seed(server) {
  await server.createUser('root');
  const alice = await server.createUser('alice');
  const bob = await server.createUser('bob');
  const mk = async (name) => {
    const { room } = await server.must(201, 'POST', '/rooms', { token: alice.token, body: { name } });
    await server.must(200, 'POST', `/rooms/${room.id}/join`, { token: bob.token });
    return room;
  };
  return { alice, bob, lobby: await mk('lobby'), ops: await mk('ops') };
}

test('the manifest and icons are valid, Chromium finds the app installable, and the worker keeps the shell but never the API', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { lobby } = await seed(server);

  const manifestReply = await fetch(`${server.url}/manifest.webmanifest`);
  assert.equal(manifestReply.status, 200);
  assert.equal(manifestReply.headers.get('content-type'), 'application/manifest+json');
  const manifest = await manifestReply.json();
  assert.equal(manifest.name, 'hearth');
  assert.equal(manifest.short_name, 'hearth');
  assert.equal(manifest.start_url, '/');
  assert.equal(manifest.display, 'standalone');
  assert.match(manifest.theme_color, /^#[0-9a-f]{6}$/);
  assert.match(manifest.background_color, /^#[0-9a-f]{6}$/);
  for (const size of [192, 512]) {
    const icon = manifest.icons.find((i) => i.sizes === `${size}x${size}` && i.type === 'image/png' && i.purpose === 'any');
    assert.ok(icon, `a ${size} px PNG icon`);
    const reply = await fetch(new URL(icon.src, server.url));
    assert.equal(reply.headers.get('content-type'), 'image/png');
    assert.deepEqual(pngSize(Buffer.from(await reply.arrayBuffer())), { width: size, height: size });
  }
  assert.ok(manifest.icons.some((i) => i.purpose === 'maskable'), 'a maskable icon');

  // The worker is served from the root, with the policy allowing it.
  const sw = await fetch(`${server.url}/sw.js`);
  assert.match(sw.headers.get('content-type'), /javascript/);
  assert.match(sw.headers.get('content-security-policy'), /worker-src 'self'/);
  assert.match(sw.headers.get('content-security-policy'), /manifest-src 'self'/);
  const source = await sw.text();
  assert.doesNotMatch(source, /__HEARTH_SHELL__/, 'the shell list is filled in');
  const version = /"version":"([0-9a-f]{16})"/.exec(source)?.[1];
  assert.ok(version, 'a version made from the files');

  const { page, context, trouble } = await openPerson(browser);
  await logInInUi(page, server, 'alice');
  await page.goto(`${server.url}/#/room/${lobby.id}`);
  await page.locator('#room-title', { hasText: 'lobby' }).waitFor();
  await controlled(page);

  const cdp = await context.newCDPSession(page);
  const { url, errors } = await cdp.send('Page.getAppManifest');
  assert.equal(url, `${server.url}/manifest.webmanifest`);
  assert.deepEqual(errors, [], 'Chromium parses the manifest without errors');
  // A test profile is incognito, where nothing can be installed; that is the only objection.
  const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
  assert.deepEqual(installabilityErrors.map((e) => e.errorId), ['in-incognito']);
  assert.deepEqual(await installableInProfile(server.url), [], 'in a real profile, Chromium finds the app installable');

  const caches = await cachedPaths(page);
  assert.deepEqual(Object.keys(caches), [`hearth-shell-${version}`], 'one cache, named by the server version');
  const kept = caches[`hearth-shell-${version}`];
  for (const path of ['/', '/app.css', '/js/main.js', '/js/app.js', '/manifest.webmanifest', '/favicon.svg', '/icon-192.png', '/icon-512.png']) {
    assert.ok(kept.includes(path), `${path} is kept`);
  }
  assert.ok(!kept.includes('/sw.js'), 'the worker itself is not kept');
  // Every script and style the page loaded is kept, so an offline start has them all.
  const loaded = await page.evaluate(() =>
    performance
      .getEntriesByType('resource')
      .map((entry) => new URL(entry.name))
      .filter((url) => url.origin === location.origin)
      .map((url) => url.pathname),
  );
  assert.ok(loaded.some((path) => path.startsWith('/api/')), 'the page did use the API');
  for (const path of loaded.filter((p) => !p.startsWith('/api/') && p !== '/sw.js')) assert.ok(kept.includes(path), `${path} is kept`);
  assert.deepEqual(kept.filter((path) => path.startsWith('/api/')), [], 'no API answer is kept');

  // An older version's shell (left by an earlier server) goes when a worker activates;
  // another site's cache on the same origin is not hearth's to remove.
  await page.evaluate(async () => {
    await (await caches.open('hearth-shell-0123456789abcdef')).put('/', new Response('old shell'));
    await (await caches.open('someone-else')).put('/x', new Response('x'));
    await (await navigator.serviceWorker.ready).unregister();
  });
  await page.reload();
  await page.locator('#room-title', { hasText: 'lobby' }).waitFor();
  await controlled(page);
  await eventually(async () => !Object.keys(await cachedPaths(page)).includes('hearth-shell-0123456789abcdef'), {
    message: 'the old shell dropped',
  });
  assert.deepEqual(Object.keys(await cachedPaths(page)).sort(), [`hearth-shell-${version}`, 'someone-else']);

  assert.deepEqual(await trouble.problems(), []);
});

test('reloaded without a network, or with the server down, the kept shell shows the app reconnecting, and it comes back by itself', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { lobby, bob } = await seed(server);
  const { page, context, trouble } = await openPerson(browser);
  await logInInUi(page, server, 'alice');
  await page.goto(`${server.url}/#/room/${lobby.id}`);
  await page.locator('#room-title', { hasText: 'lobby' }).waitFor();
  await controlled(page);

  // Offline: the reload gets the kept page, which opens the app, saying it reconnects.
  await context.setOffline(true);
  await page.reload();
  const banner = page.locator('#conn-banner');
  await banner.getByText('Reconnecting…').waitFor();
  assert.match(await banner.innerText(), /You are offline\./);
  assert.equal(await page.locator('#app-view').isVisible(), true);
  assert.equal(await page.locator('#me-name').textContent(), 'alice');
  assert.equal(await page.locator('#boot').isVisible(), false);
  // Back online: the socket comes back and the room in the address opens.
  await server.post(bob.token, lobby.id, 'said while alice was offline');
  await context.setOffline(false);
  await page.locator('#room-title', { hasText: 'lobby' }).waitFor();
  await page.locator('#messages li[data-seq]', { hasText: 'said while alice was offline' }).waitFor();
  await banner.waitFor({ state: 'hidden' });

  // The server gone (a real network failure for the worker's own fetch): the same.
  // (Between tries the banner counts down to the next one instead.)
  await server.kill();
  await page.reload();
  await eventually(async () => /^(Cannot reach the server\.|Connection lost\.) (Reconnecting…|Trying again in \d+ s…)/.test(await banner.innerText()), {
    message: 'the banner',
  });
  assert.equal(await page.locator('#app-view').isVisible(), true);
  await server.restart();
  await page.locator('#room-title', { hasText: 'lobby' }).waitFor({ timeout: 20_000 });
  await banner.waitFor({ state: 'hidden', timeout: 20_000 });

  // Logging out forgets who was here: offline, the loading line says it reconnects, no app.
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.locator('#login-form').waitFor();
  await context.setOffline(true);
  await page.reload();
  await page.locator('#boot', { hasText: 'You are offline. Reconnecting…' }).waitFor();
  assert.equal(await page.locator('#app-view').isVisible(), false);
  await context.setOffline(false);
  await page.locator('#login-form').waitFor();

  assert.deepEqual(await trouble.problems(), []);
});

test('the unread count shows on the favicon and in the title, a mention in another colour, and the optional chime plays', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { lobby, ops, alice } = await seed(server);
  const { page, context, trouble } = await openPerson(browser);
  // Counts the chime's notes (WebAudio oscillators started), with the browser's own AudioContext.
  await context.addInitScript(() => {
    window.__notes = 0;
    const start = OscillatorNode.prototype.start;
    OscillatorNode.prototype.start = function (...args) {
      window.__notes += 1;
      return start.apply(this, args);
    };
  });
  await logInInUi(page, server, 'bob');
  await page.goto(`${server.url}/#/room/${lobby.id}`);
  await page.locator('#room-title', { hasText: 'lobby' }).waitFor();
  const icon = () => page.locator('link[rel="icon"]').getAttribute('href');
  assert.equal(await icon(), '/favicon.svg');

  await server.post(alice.token, ops.id, 'deploy started');
  await eventually(async () => (await page.title()) === '(1) hearth', { message: 'the title count' });
  const one = decodeURIComponent(await eventually(async () => ((await icon()).startsWith('data:') ? icon() : null)));
  assert.match(one, /^data:image\/svg\+xml,<svg/);
  assert.match(one, />1<\/text>/);
  assert.match(one, /fill="#1d4ed8"/, 'a plain unread badge');
  // Off by default: no chime for what notifies.
  await server.post(alice.token, ops.id, '@bob have a look');
  await eventually(async () => decodeURIComponent(await icon()).includes('>2</text>'), { message: 'two on the icon' });
  assert.match(decodeURIComponent(await icon()), /fill="#dc2626"/, 'a mention turns it red');
  assert.equal(await page.title(), '(2) hearth');
  assert.equal(await page.evaluate(() => window.__notes), 0, 'no chime while it is off');
  for (let i = 0; i < 9; i += 1) await server.post(alice.token, ops.id, `more ${i}`);
  await eventually(async () => decodeURIComponent(await icon()).includes('>9+</text>'), { message: '9+ on the icon' });

  // Reading the room brings the plain icon back.
  await page.locator('#my-rooms a', { hasText: 'ops' }).click();
  await eventually(async () => (await icon()) === '/favicon.svg', { message: 'the plain icon' });
  assert.equal(await page.title(), 'hearth');

  // The chime, turned on in the account dialog (kept in this browser), plays for a mention elsewhere.
  await page.getByRole('button', { name: 'Account settings' }).click();
  const toggle = page.getByRole('checkbox', { name: 'Play a sound with notifications' });
  assert.equal(await toggle.isChecked(), false);
  await toggle.check();
  assert.equal(await page.evaluate(() => localStorage.getItem('hearth:v1:sound')), 'on');
  await page.getByRole('button', { name: 'Close account settings' }).click();
  await page.locator('#my-rooms a', { hasText: 'lobby' }).click();
  await page.locator('#room-title', { hasText: 'lobby' }).waitFor();
  const sample = await page.evaluate(() => window.__notes);
  await page.waitForTimeout(2100); // the chime plays at most once in 2 s
  await server.post(alice.token, ops.id, 'a plain one: ops notifies of mentions only');
  await eventually(async () => (await page.title()) === '(1) hearth', { message: 'counted' });
  assert.equal(await page.evaluate(() => window.__notes), sample, 'no chime for what does not notify');
  await server.post(alice.token, ops.id, '@bob again');
  await eventually(async () => (await page.evaluate(() => window.__notes)) > sample, { message: 'the chime' });
  await page.reload();
  await page.getByRole('button', { name: 'Account settings' }).click();
  assert.equal(await toggle.isChecked(), true, 'kept across a reload');

  assert.deepEqual(await trouble.problems(), []);
});

/** The service worker registration's id, through the DevTools protocol (which stays enabled on `cdp`). */
async function registrationId(cdp, origin) {
  const registrations = [];
  cdp.on('ServiceWorker.workerRegistrationUpdated', (event) => registrations.push(...event.registrations));
  await cdp.send('ServiceWorker.enable');
  const mine = await eventually(() => registrations.find((r) => r.scopeURL === `${origin}/` && !r.isDeleted), {
    message: 'the registration',
  });
  return mine.registrationId;
}

const shownNotes = (worker) =>
  worker.evaluate(async () =>
    (await self.registration.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data })),
  );

test('the worker shows a pushed message unless hearth is in front, collapses them per room, clears what was read, and a click opens the room', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { lobby, ops } = await seed(server);
  const { page, context, trouble } = await openPerson(browser);
  await context.grantPermissions(['notifications'], { origin: server.url });
  await logInInUi(page, server, 'bob');
  await controlled(page);
  const worker = context.serviceWorkers().find((w) => w.url() === `${server.url}/sw.js`);
  assert.ok(worker, 'the worker runs');

  // Pushes are delivered by the DevTools protocol from a page of another origin,
  // which stays when the hearth window is closed.
  const other = await context.newPage();
  await other.goto('about:blank');
  const cdp = await context.newCDPSession(other);
  const id = await registrationId(cdp, server.url);
  const push = (payload) =>
    cdp.send('ServiceWorker.deliverPushMessage', { origin: server.url, registrationId: id, data: JSON.stringify(payload) });
  const alice = { id: 'u-alice', username: 'alice', display_name: 'Alice A.' };
  const message = (room, seq, extra = {}) => ({
    type: 'message',
    room: { id: room.id, name: room.name },
    seq,
    sender: alice,
    excerpt: `message ${seq}`,
    reason: 'mention',
    ...extra,
  });

  // A hearth window in front (visible and focused) tells of it itself: nothing shown.
  assert.deepEqual(await page.evaluate(() => [document.visibilityState, document.hasFocus()]), ['visible', true]);
  await push(message(ops, 3));
  await other.waitForTimeout(300);
  assert.deepEqual(await shownNotes(worker), []);

  // No hearth window: shown, titled by the room (by the sender for a direct message).
  await page.close();
  await push(message(ops, 4));
  // A machine busy with other work can hold Chromium's push delivery up for
  // seconds: the waits are long, a notice never shown still fails.
  await eventually(async () => (await shownNotes(worker)).length === 1, { message: 'a notification', timeout: 30_000 });
  assert.deepEqual(await shownNotes(worker), [
    { title: 'ops', body: 'Alice A.: message 4', tag: `room-${ops.id}`, data: { room: ops.id, seq: 4 } },
  ]);
  // A newer one in the same room takes its place; another room has its own.
  await push(message(ops, 5, { excerpt: null, reason: 'all' }));
  await push(message(lobby, 7, { reason: 'dm', sender: { id: 'u-carol', username: 'carol', display_name: null } }));
  await eventually(async () => (await shownNotes(worker)).some((n) => n.data.seq === 7), {
    message: 'the second room',
    timeout: 30_000,
  });
  const notes = await shownNotes(worker);
  assert.deepEqual(notes.map((n) => [n.title, n.body, n.data.seq]).sort(), [
    ['carol', 'message 7', 7],
    ['ops', 'Alice A.: New message', 5],
  ]);

  // Read elsewhere up to before it: it stays. Up to it: it goes. Another room's stays.
  await push({ type: 'clear', room: ops.id, seq: 4 });
  await other.waitForTimeout(300);
  assert.equal((await shownNotes(worker)).length, 2);
  await push({ type: 'clear', room: ops.id, seq: 5 });
  await eventually(async () => (await shownNotes(worker)).length === 1, { message: 'the read one closed' });
  assert.equal((await shownNotes(worker))[0].data.room, lobby.id);
  // Not a payload of ours: nothing happens, nothing breaks.
  await cdp.send('ServiceWorker.deliverPushMessage', { origin: server.url, registrationId: id, data: 'not json' });

  // A click, with hearth open: the notification closes and that window opens the room at the message.
  // (Headless Chromium cannot click a notification; the worker's own handler gets the event
  // the browser would send. Bringing a window forward and opening a new one need a real
  // click, so those two steps are not covered here.)
  const reopened = await context.newPage();
  await reopened.goto(`${server.url}/#/room/${ops.id}`);
  await reopened.locator('#room-title', { hasText: 'ops' }).waitFor();
  await worker.evaluate(async () => {
    const [note] = await self.registration.getNotifications();
    self.dispatchEvent(new NotificationEvent('notificationclick', { notification: note }));
  });
  await reopened.locator('#room-title', { hasText: 'lobby' }).waitFor();
  assert.equal(new URL(reopened.url()).hash, `#/room/${lobby.id}/7`);
  await eventually(async () => (await shownNotes(worker)).length === 0, { message: 'the clicked one closed' });

  // Logged in with notifications allowed, the page tried to subscribe: an incognito
  // profile has no Push API, which Chromium notes in the console itself.
  const incognito = /does not support the Push API in incognito mode/;
  assert.deepEqual((await trouble.problems()).filter((problem) => !incognito.test(problem)), []);
});

test('turning notifications on subscribes to push, and without a push service says in words that they show only while hearth is open; the page tells the server it is in front', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { ops } = await seed(server);
  const key = await server.api('GET', '/push/key');
  assert.equal(key.status, 200, 'the server sends push');
  assert.match(key.body.key, /^[A-Za-z0-9_-]{87}$/, 'an uncompressed P-256 key, base64url');

  // A real profile: an incognito one has no Push API at all.
  const { page, context, trouble, close } = await profilePerson();
  t.after(close);
  await context.grantPermissions(['notifications'], { origin: server.url });
  const sent = [];
  page.on('websocket', (socket) => socket.on('framesent', ({ payload }) => sent.push(JSON.parse(payload))));
  const asked = [];
  page.on('request', (request) => {
    if (new URL(request.url()).pathname.startsWith('/api/v1/push/')) asked.push(`${request.method()} ${new URL(request.url()).pathname}`);
  });
  await logInInUi(page, server, 'bob');
  await page.goto(`${server.url}/#/room/${ops.id}`);
  await page.locator('#room-title', { hasText: 'ops' }).waitFor();

  // In front of the page, it says so once the socket is up.
  await eventually(() => sent.some((f) => f.type === 'focus' && f.active === true), { message: 'a focus frame' });
  const focusFrames = () => sent.filter((f) => f.type === 'focus');
  // Using the page within the minute sends nothing new.
  const before = focusFrames().length;
  await page.mouse.move(20, 20);
  await page.keyboard.press('Shift');
  assert.equal(focusFrames().length, before);

  // Another tab in front: the page loses focus and says so; back in front, it says so too.
  // (Playwright emulates focus for every page unless told not to.)
  const cdp = await context.newCDPSession(page);
  await cdp.send('Emulation.setFocusEmulationEnabled', { enabled: false });
  const other = await context.newPage();
  await other.goto('about:blank');
  await other.bringToFront();
  await eventually(() => focusFrames().at(-1)?.active === false, { message: 'active: false' });
  await page.bringToFront();
  await page.mouse.click(5, 400);
  await eventually(() => focusFrames().at(-1)?.active === true, { message: 'active: true again' });
  await other.close();

  // Choosing a level that notifies: permission is there, the key is fetched, and the
  // browser's subscribe fails (headless Chromium has no push service to reach, so it
  // never answers and the page gives up after 20 s): said in words.
  await page.locator('#room-info').click();
  await page.getByRole('combobox', { name: 'Notify me of' }).selectOption('all');
  const status = page.getByRole('dialog', { name: 'ops' }).locator('#notify-status');
  await eventually(async () => /could not sign up for notifications/.test(await status.textContent()), {
    message: 'the push failure in words',
    timeout: 40_000,
  });
  assert.match(await status.textContent(), /^Saved\. This browser could not sign up for notifications while hearth is closed \(.+\)\. Notifications show while hearth is open in a tab\.$/);
  assert.ok(asked.includes('GET /api/v1/push/key'));
  assert.ok(!asked.includes('POST /api/v1/push/subscriptions'), 'nothing to give the server without a subscription');
  await page.keyboard.press('Escape');
  await page.getByRole('button', { name: 'Account settings' }).click();
  assert.match(await page.locator('#push-status').textContent(), /could not sign up for notifications/);
  await page.getByRole('button', { name: 'Close account settings' }).click();

  // Desktop notifications from the open tab still work: the level was saved.
  const { room } = await server.must(200, 'GET', `/rooms/${ops.id}`, { token: (await server.must(200, 'POST', '/login', { body: { login: 'bob', password: 'correct horse battery staple' } })).token });
  assert.equal(room.notifications, 'all');

  // Logged out, the page sends no more focus frames.
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.locator('#login-form').waitFor();
  const atLogout = focusFrames().length;
  await page.mouse.move(40, 40);
  await page.waitForTimeout(200);
  assert.equal(focusFrames().length, atLogout);

  assert.deepEqual(await trouble.problems(), []);
});
