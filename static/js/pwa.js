// hearth as an installed app: the service worker (sw.js) that keeps the
// app's shell for offline starts and shows Web Push notifications, and what
// the page remembers so that, opened without a network, it shows the app
// reconnecting rather than an error.

import { roomHash } from './sidebar-view.js';

/** Where the page remembers who was last logged in here (not a secret: id and name). */
const LAST_USER = 'hearth:v1:last-user';

/**
 * Registers the service worker, where the browser has them (they need a
 * secure context: https, or http on localhost). A window the worker brings
 * forward for a notification is told which room to open.
 */
export function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  // `updateViaCache: 'none'`: a new server's worker is fetched, never an older copy.
  navigator.serviceWorker.register('/sw.js', { scope: '/', updateViaCache: 'none' }).catch(() => {
    // Without it hearth works as before, only not offline and not in the background.
  });
  navigator.serviceWorker.addEventListener('message', ({ data }) => {
    if (data?.type !== 'open-room' || typeof data.room !== 'string') return;
    const seq = Number.isSafeInteger(data.seq) ? data.seq : null;
    const hash = roomHash(data.room, seq);
    if (location.hash !== hash) location.hash = hash; // hashchange opens it
  });
}

/** The person last logged in on this browser, to show the app to while offline. */
export function lastUser() {
  try {
    const user = JSON.parse(localStorage.getItem(LAST_USER) ?? 'null');
    return typeof user?.id === 'string' && typeof user.username === 'string' ? user : null;
  } catch {
    return null;
  }
}

/** @param {{id: string, username: string}|null} user null on logging out */
export function rememberUser(user) {
  try {
    if (user) localStorage.setItem(LAST_USER, JSON.stringify({ id: user.id, username: user.username }));
    else localStorage.removeItem(LAST_USER);
  } catch {
    // Storage off: an offline start shows "Reconnecting…" on the loading line instead.
  }
}
