// Desktop notifications from the open tab: a message someone would want to
// know of (by the room's notification level: every message, mentions, or
// nothing), while they look at another room or another window. Nothing is
// shown without the browser's permission, which is asked for only when the
// person chooses a level that notifies. Once it is given, this browser also
// subscribes to Web Push (push.js), for while no hearth window is open. A
// chime plays too, if the person turned it on (sound.js).

import { plainText } from './markdown.js';
import { mentionsMe } from './store.js';
import { roomHash } from './sidebar-view.js';
import { sound } from './sound.js';

/** The most of a message's text a notification shows. */
const EXCERPT = 140;

/** The level a room notifies at: the person's choice, or the default. */
export function levelOf(entry) {
  return entry.room.notifications ?? (entry.direct ? 'all' : 'mentions');
}

export class DesktopNotifier {
  /**
   * @param {import('./store.js').Store} store
   * @param {{onAllowed?: () => Promise<string|null>}} [options] run once notifications
   *   are allowed; answers a sentence when push could not be set up
   */
  constructor(store, { onAllowed = async () => null } = {}) {
    this.store = store;
    this.onAllowed = onAllowed;
  }

  /** Whether this browser can show them at all. */
  get supported() {
    return typeof Notification === 'function';
  }

  /**
   * Asks for permission, if not yet asked (call from a click); once given,
   * sets up push. Answers a sentence when something stood in the way.
   * @returns {Promise<string|null>}
   */
  async ask() {
    if (!this.supported) return 'This browser cannot show notifications.';
    if (Notification.permission === 'default') {
      await Notification.requestPermission().catch(() => {});
    }
    if (Notification.permission === 'denied') return 'Notifications are blocked for this site in the browser’s settings.';
    if (Notification.permission !== 'granted') return null;
    return this.onAllowed();
  }

  /**
   * Shows `message` if its room's level asks for it and the person is not
   * already looking at that room.
   */
  maybeShow(entry, message) {
    if (message.author?.id === this.store.me?.id) return;
    const watching = entry.id === this.store.openRoomId && document.visibilityState === 'visible' && document.hasFocus();
    if (watching) return;
    const level = levelOf(entry);
    if (level === 'none') return;
    if (level === 'mentions' && !mentionsMe(message, this.store.me?.id)) return;
    sound.play();
    if (!this.supported || Notification.permission !== 'granted') return;
    const who = message.author?.username ?? 'Someone';
    const title = entry.direct ? who : `${who} in ${entry.name}`;
    // Plain text: the formatting's words without its marks; a message of
    // only files is told by their names.
    const text = plainText(message.body ?? '') || (message.files ?? []).map((file) => file.name).join(', ');
    const body = Array.from(text).slice(0, EXCERPT).join('');
    const note = new Notification(title, { body, tag: `room-${entry.id}`, icon: '/favicon.svg' });
    note.onclick = () => {
      window.focus();
      location.hash = roomHash(entry.id);
      note.close();
    };
  }
}
