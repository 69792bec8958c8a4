// Who is online. `ready` names everyone online among the people this person
// shares a room with, `presence` frames change that (batched by the server
// every 2 s), and member lists say it too. Every dot on the page is one
// element made by `presenceDot`, repainted from here, so a change shows
// everywhere at once without re-rendering the lists it sits in.

import { h } from './dom.js';

export class Presence {
  constructor() {
    /** @type {Set<string>} user ids online now */
    this.online = new Set();
  }

  /** The `ready` frame's list (a snapshot: it replaces what was known). */
  reset(ids, meId) {
    this.online = new Set(Array.isArray(ids) ? ids.map(String) : []);
    if (meId) this.online.add(meId);
    this.paint();
  }

  /** A `presence` frame's changes, or a member list's `online` flags. */
  apply(changes) {
    let changed = false;
    for (const change of changes ?? []) {
      const id = change?.user?.id ?? change?.id;
      if (!id || typeof change.online !== 'boolean') continue;
      if (this.online.has(id) === change.online) continue;
      if (change.online) this.online.add(id);
      else this.online.delete(id);
      changed = true;
    }
    if (changed) this.paint();
    return changed;
  }

  clear() {
    this.online.clear();
    this.paint();
  }

  isOnline(id) {
    return this.online.has(id);
  }

  /** Brings every dot on the page up to date. */
  paint(root = document) {
    for (const dot of root.querySelectorAll('[data-presence]')) paintDot(dot, this.online.has(dot.dataset.presence));
  }

  /**
   * A green (online) or grey (offline) dot for one person.
   * @param {{spoken?: boolean, shown?: boolean}} [options] `spoken: false` for
   *   a dot that only repeats what is said elsewhere (on an avatar in the
   *   timeline): no text; `shown: true` writes "Online"/"Offline" beside it.
   */
  dot(userId, { spoken = true, shown = false } = {}) {
    const dot = h('span', {
      class: `presence${shown ? ' presence-shown' : ''}`,
      'data-presence': userId,
      'data-shown': shown ? 'true' : null,
      'aria-hidden': spoken ? null : 'true',
    });
    if (spoken) dot.append(h('span', { class: shown ? 'presence-word' : 'visually-hidden' }));
    paintDot(dot, this.online.has(userId));
    return dot;
  }
}

function paintDot(dot, online) {
  dot.classList.toggle('online', online);
  const word = online ? 'online' : 'offline';
  const shown = dot.dataset.shown === 'true';
  if (!shown) dot.title = online ? 'Online' : 'Offline';
  const text = dot.firstElementChild;
  const wanted = shown ? (online ? 'Online' : 'Offline') : `, ${word}`;
  if (text && text.textContent !== wanted) text.textContent = wanted;
}
