// Which accounts are bots (a webhook's, or a program's), learnt from user
// objects and member lists, which carry `"bot": true`. A message names its
// author with a small "BOT" tag once the author is known to be one.

import { h } from './dom.js';

class Bots extends EventTarget {
  constructor() {
    super();
    /** @type {Set<string>} */
    this.ids = new Set();
    /** @type {Map<string, string>} a bot's display name (a webhook's bot is named after the hook) */
    this.names = new Map();
  }

  /** The name a bot goes by (its display name), or null: messages name their author by username only. */
  nameOf(id) {
    return this.names.get(id) ?? null;
  }

  has(id) {
    return this.ids.has(id);
  }

  /** Learns from user objects; fires `changed` with the ids newly known to be bots. */
  learn(users) {
    const added = [];
    for (const user of users ?? []) {
      if (!user?.id || user.bot !== true) continue;
      const name = typeof user.display_name === 'string' && user.display_name.trim() ? user.display_name : null;
      const renamed = name != null && this.names.get(user.id) !== name;
      if (name != null) this.names.set(user.id, name);
      if (!this.ids.has(user.id) || renamed) added.push(user.id);
      this.ids.add(user.id);
    }
    if (added.length) this.dispatchEvent(new CustomEvent('changed', { detail: added }));
    return added;
  }

  clear() {
    this.ids.clear();
    this.names.clear();
  }
}

export const bots = new Bots();

/** The tag after a bot's name: "BOT" to the eye, "bot" to a screen reader. */
export function botTag() {
  return h('span', { class: 'bot-tag', title: 'Bot account' }, h('span', { 'aria-hidden': 'true', text: 'BOT' }), h('span', { class: 'visually-hidden', text: '(bot)' }));
}
