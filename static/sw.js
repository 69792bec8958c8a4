// hearth's service worker: keeps the app's shell (the page, its styles,
// scripts and icons) so hearth opens without a network, and shows Web Push
// notifications while no hearth window is in front.
//
// The API (/api/…) and the live socket always go to the network: their
// answers are never kept. The shell is fetched from the network first (the
// server revalidates it cheaply with ETags) and the kept copy is the
// fallback when the network fails; a page navigation that fails gets the
// kept page, which then says it is reconnecting.
//
// The server fills SHELL in when it serves this file: the shell's files and
// a version made from their hashes. A new server with a different UI serves
// a different worker; it installs its own cache and, once active, deletes
// the caches of older versions.

const SHELL = "__HEARTH_SHELL__";
const { version: VERSION, files: FILES } = typeof SHELL === 'object' ? SHELL : { version: 'dev', files: ['/'] };
const PREFIX = 'hearth-shell-';
const CACHE = `${PREFIX}${VERSION}`;

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // `no-cache`: revalidated with the server, never an older copy from the HTTP cache.
      await cache.addAll(FILES.map((url) => new Request(url, { cache: 'no-cache' })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

/** Whether a request is for the shell: same origin, GET, not the API. */
function isShell(request, url) {
  return request.method === 'GET' && url.origin === self.location.origin && !url.pathname.startsWith('/api/');
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (!isShell(request, url)) return; // The browser does it as if there were no worker.
  event.respondWith(fromNetworkOrShell(request, url));
});

async function fromNetworkOrShell(request, url) {
  const cache = await caches.open(CACHE);
  const key = request.mode === 'navigate' ? '/' : url.pathname;
  try {
    const response = await fetch(request);
    // A fresh copy of a shell file replaces the kept one (never an error page).
    if (response.ok && FILES.includes(key) && (request.mode === 'navigate' || url.search === '')) {
      await cache.put(key, response.clone());
    }
    return response;
  } catch (error) {
    const kept = await cache.match(key);
    if (kept) return kept;
    throw error;
  }
}

// ---- Web Push --------------------------------------------------------------

/** The notification tag of a room: the open tab's notifications use the same, so they collapse. */
const tagOf = (roomId) => `room-${roomId}`;

/** Whether a hearth window is in front, where the page itself tells of new messages. */
async function someWindowInFront() {
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  return windows.some((client) => client.visibilityState === 'visible' && client.focused);
}

self.addEventListener('push', (event) => {
  let data = null;
  try {
    data = event.data?.json() ?? null;
  } catch {
    return; // Not a payload of ours.
  }
  event.waitUntil(onPush(data));
});

async function onPush(data) {
  if (data?.type === 'message' && data.room?.id) {
    if (await someWindowInFront()) return;
    const sender = data.sender?.display_name || data.sender?.username || 'Someone';
    const title = data.reason === 'dm' ? sender : data.room.name || 'hearth';
    const text = data.excerpt ?? 'New message';
    // In a room, who wrote it leads the text; in a direct message the title says so.
    const body = data.reason === 'dm' ? text : `${sender}: ${text}`;
    await self.registration.showNotification(title, {
      body,
      tag: tagOf(data.room.id),
      renotify: true,
      icon: '/icon-192.png',
      data: { room: data.room.id, seq: data.seq ?? null },
    });
  } else if (data?.type === 'clear' && data.room) {
    // Read elsewhere: what it told of up to `seq` is old news.
    const shown = await self.registration.getNotifications({ tag: tagOf(data.room) });
    for (const note of shown) {
      const seq = note.data?.seq;
      if (typeof seq !== 'number' || seq <= data.seq) note.close();
    }
  }
}

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const promise = openRoom(event.notification.data ?? {});
  // A click the browser did not make (there is no other) cannot be waited for.
  if (event.isTrusted) event.waitUntil(promise);
});

/** The room's address, at the message told of. */
function roomUrl({ room, seq }) {
  const hash = room ? `#/room/${encodeURIComponent(room)}${typeof seq === 'number' ? `/${seq}` : ''}` : '';
  return new URL(`/${hash}`, self.location.origin).href;
}

/** Opens the room in a hearth window: one already open (brought to the front), or a new one. */
async function openRoom(place) {
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const mine = windows.filter((client) => new URL(client.url).origin === self.location.origin);
  const target = mine.find((client) => client.focused) ?? mine.find((client) => client.visibilityState === 'visible') ?? mine[0];
  if (!target) {
    await self.clients.openWindow(roomUrl(place));
    return;
  }
  // The page goes to the room itself (no reload): see push.js.
  if (place.room) target.postMessage({ type: 'open-room', room: place.room, seq: place.seq ?? null });
  try {
    await target.focus();
  } catch {
    // Only a click the person made may bring a window forward.
  }
}
