// People's pictures. The page learns each person's avatar URL from the user
// objects it is given (itself in /me and `ready`, member lists, user search)
// and keeps it current from `user_updated` frames; message authors carry no
// avatar, so the timeline looks them up here by id. Where no picture is known,
// or it fails to load, an avatar is the person's initial on their colour.

import { h, hueClass, initial } from './dom.js';

// Only this server's own avatar paths are shown: the picture is fetched with
// the session cookie, and the CSP allows no other origin anyway.
const AVATAR_PATH = /^\/api\/v1\/users\/[^/?#]+\/avatar(\?[^#]*)?$/;

class Avatars extends EventTarget {
  constructor() {
    super();
    /** @type {Map<string, string|null>} user id → picture URL (null: known to have none) */
    this.urls = new Map();
  }

  clear() {
    this.urls.clear();
  }

  /**
   * Learns pictures from user objects (those without an `avatar` field
   * teach nothing). Fires `changed` with the ids whose picture changed.
   * @returns {string[]} those ids
   */
  learn(users) {
    const changed = [];
    for (const user of users ?? []) {
      if (!user?.id || !Object.hasOwn(user, 'avatar')) continue;
      const url = typeof user.avatar === 'string' && AVATAR_PATH.test(user.avatar) ? user.avatar : null;
      const before = this.urls.get(user.id);
      this.urls.set(user.id, url);
      // Learning that someone has no picture changes nothing shown.
      if (before !== url && (url !== null || before != null)) changed.push(user.id);
    }
    if (changed.length) this.dispatchEvent(new CustomEvent('changed', { detail: changed }));
    return changed;
  }

  /** The picture URL of a person, or null. */
  url(id) {
    return this.urls.get(id) ?? null;
  }

  /** True when this page has been told whether the person has a picture. */
  knows(id) {
    return this.urls.has(id);
  }

  /**
   * An avatar for `user` ({id, username}), hidden from screen readers (the
   * name is always beside it).
   */
  element(user) {
    const span = h('span', { class: `avatar ${hueClass(user.id)}`, 'aria-hidden': 'true', 'data-username': user.username ?? '' });
    this.fill(span, user);
    return span;
  }

  /** Shows `user`'s picture (or initial) in an avatar element, keeping anything else in it (a presence dot). */
  fill(span, user) {
    for (const node of [...span.childNodes]) {
      if (node.nodeType === Node.TEXT_NODE || node.nodeName === 'IMG') node.remove();
    }
    const url = this.url(user.id);
    span.classList.toggle('has-picture', url != null);
    span.dataset.avatarOf = user.id ?? '';
    if (!url) {
      span.prepend(initial(user.username));
      return;
    }
    const img = h('img', { class: 'avatar-picture', src: url, alt: '', decoding: 'async', draggable: 'false' });
    img.addEventListener(
      'error',
      () => {
        // A picture that cannot be shown (removed meanwhile, offline): the initial.
        if (!img.isConnected) return;
        img.remove();
        span.classList.remove('has-picture');
        span.prepend(initial(user.username));
      },
      { once: true },
    );
    span.prepend(img);
  }

  /** Brings every avatar of these people inside `root` up to date. */
  refresh(root, ids) {
    for (const id of ids) {
      for (const span of root.querySelectorAll(`.avatar[data-avatar-of="${CSS.escape(id)}"]`)) {
        this.fill(span, { id, username: span.dataset.username ?? '' });
      }
    }
  }
}

/** The one directory of pictures for the page. */
export const avatars = new Avatars();

/** An avatar element for `user`: their picture when known, else their initial. */
export function avatarFor(user) {
  return avatars.element(user);
}
