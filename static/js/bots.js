// Which accounts are bots (a webhook's, or a program's), learnt from user
// objects and member lists, which carry `"bot": true`. A message names its
// author with a small "BOT" tag once the author is known to be one.

import { h } from './dom.js';

class Bots extends EventTarget {
  constructor() {
    super();
    /** @type {Set<string>} */
    this.ids = new Set();
  }

  has(id) {
    return this.ids.has(id);
  }

  /** Learns from user objects; fires `changed` with the ids newly known to be bots. */
  learn(users) {
    const added = [];
    for (const user of users ?? []) {
      if (user?.id && user.bot === true && !this.ids.has(user.id)) {
        this.ids.add(user.id);
        added.push(user.id);
      }
    }
    if (added.length) this.dispatchEvent(new CustomEvent('changed', { detail: added }));
    return added;
  }

  clear() {
    this.ids.clear();
  }
}

export const bots = new Bots();

/** The tag after a bot's name: "BOT" to the eye, "bot" to a screen reader. */
export function botTag() {
  return h('span', { class: 'bot-tag', title: 'Bot account' }, h('span', { 'aria-hidden': 'true', text: 'BOT' }), h('span', { class: 'visually-hidden', text: '(bot)' }));
}
