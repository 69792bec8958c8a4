// The room lists: rooms this person is in (links, with the server's unread
// and mention counts), their direct rooms (named by the other people) and the
// rooms they could join, all narrowed by the filter box. Re-rendered whole
// on every change; the lists are short, and keyboard focus is carried over to
// the re-rendered element.

import { byId, h } from './dom.js';
import { lockIcon } from './icons.js';


/** The address of a room, or of one message in it. */
export function roomHash(roomId, seq = null) {
  const room = `#/room/${encodeURIComponent(roomId)}`;
  return seq == null ? room : `${room}/${Number(seq)}`;
}

/** The room id and optional message seq in the address bar's hash, or null. */
export function placeFromHash(hash = location.hash) {
  const match = /^#\/room\/([^/]+)(?:\/(\d+))?$/.exec(hash);
  if (!match) return null;
  try {
    return { roomId: decodeURIComponent(match[1]), seq: match[2] ? Number(match[2]) : null };
  } catch {
    return null;
  }
}

/** "3 unread, 1 mention": a room's counts in words ('' when there are none). */
export function unreadPhrase(unread, mentions) {
  const parts = [];
  if (unread) parts.push(`${unread} unread`);
  if (mentions) parts.push(mentions === 1 ? '1 mention' : `${mentions} mentions`);
  return parts.join(', ');
}

/** True when `name` matches what was typed in a room filter. */
export function matchesFilter(name, query) {
  const wanted = query.trim().toLocaleLowerCase();
  return !wanted || name.toLocaleLowerCase().includes(wanted);
}

export class SidebarView {
  /**
   * @param {{onJoin: (roomId: string, button: HTMLButtonElement) => void, presence: import('./presence.js').Presence}} options
   */
  constructor({ onJoin, presence }) {
    this.presence = presence;
    this.mine = byId('my-rooms');
    this.mineEmpty = byId('my-rooms-empty');
    this.others = byId('other-rooms');
    this.othersEmpty = byId('other-rooms-empty');
    this.direct = byId('dm-list');
    this.directEmpty = byId('dm-empty');
    this.menuUnread = byId('menu-unread');
    this.filter = byId('room-filter');
    this.onJoin = onJoin;
    this.store = null;
    this.filter.addEventListener('input', () => {
      if (this.store) this.render(this.store);
    });
  }

  render(store) {
    this.store = store;
    const focusKey = document.activeElement?.dataset?.focusKey;
    const query = this.filter.value;
    const shown = (entry) => matchesFilter(entry.name, query);

    const joined = store.joinedRooms();
    this.mine.replaceChildren(...joined.filter(shown).map((entry) => this.joinedItem(entry, store.openRoomId)));
    this.mineEmpty.hidden = joined.length > 0;

    const direct = store.directRooms();
    this.direct.replaceChildren(...direct.filter(shown).map((entry) => this.joinedItem(entry, store.openRoomId)));
    this.directEmpty.hidden = direct.length > 0;

    const others = store.otherRooms();
    this.others.replaceChildren(...others.filter(shown).map((entry) => this.otherItem(entry)));
    this.othersEmpty.hidden = others.length > 0;

    const matching = this.mine.childElementCount + this.direct.childElementCount + this.others.childElementCount;
    byId('room-filter-empty').textContent = query.trim() && !matching ? `No room matches “${query.trim()}”.` : '';

    const unread = store.totalUnread();
    this.menuUnread.textContent = unread ? String(unread) : '';
    this.menuUnread.hidden = unread === 0;
    // The badge's number is visible text inside the button, so its name must hold it.
    const counts = unreadPhrase(unread, store.totalMentions());
    byId('sidebar-open').setAttribute('aria-label', counts ? `Open room list, ${counts}` : 'Open room list');

    if (focusKey) document.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`)?.focus();
  }

  joinedItem(entry, openRoomId) {
    const { unread, mentions } = entry;
    // A one-to-one conversation shows whether the other person is online,
    // where "@" would be (the dot comes after the name for screen readers).
    const partner = entry.partner();
    const marker = entry.private
      ? lockIcon()
      : partner
        ? null
        : h('span', { class: 'room-hash', 'aria-hidden': 'true', text: entry.direct ? '@' : '#' });
    const link = h(
      'a',
      {
        class: 'room-link',
        href: roomHash(entry.id),
        title: entry.longName,
        'aria-current': entry.id === openRoomId ? 'page' : null,
        'data-focus-key': `open:${entry.id}`,
        'data-room-id': entry.id,
      },
      marker,
      h('span', { class: 'room-name', dir: 'auto', text: entry.name }),
      partner ? this.presence.dot(partner.id) : null,
      // The marks are for the eyes; the words after the name say the same.
      mentions ? h('span', { class: 'badge mention-badge', 'aria-hidden': 'true', title: unreadPhrase(0, mentions), text: '@' }) : null,
      unread ? h('span', { class: 'badge', 'aria-hidden': 'true', text: unread > 99 ? '99+' : String(unread) }) : null,
      unread || mentions ? h('span', { class: 'visually-hidden', text: `, ${unreadPhrase(unread, mentions)}` }) : null,
    );
    return h('li', { class: [unread ? 'has-unread' : '', mentions ? 'has-mention' : ''].join(' ').trim() || null }, link);
  }

  otherItem(entry) {
    const { room } = entry;
    const members = room.member_count === 1 ? '1 member' : `${room.member_count ?? 0} members`;
    return h(
      'li',
      { class: 'other-room' },
      h(
        'div',
        { class: 'other-room-text' },
        h('span', { class: 'room-name', dir: 'auto', title: room.name, text: room.name }),
        h('span', { class: 'room-meta', dir: 'auto', text: room.topic ? `${room.topic} · ${members}` : members }),
      ),
      h('button', {
        type: 'button',
        class: 'button small',
        text: 'Join',
        'aria-label': `Join ${room.name}`,
        'data-focus-key': `join:${entry.id}`,
        onclick: (event) => this.onJoin(entry.id, event.currentTarget),
      }),
    );
  }
}
