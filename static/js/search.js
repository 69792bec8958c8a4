// Message search: a dialog with a query box, "only in this room", best match
// or newest first, and the server's results page by page. Each hit names its
// room, author and time and shows the body with the matched words marked; it
// is a link to the message (`#/room/ID/SEQ`), so choosing it opens the room
// scrolled to that message, the same way a copied message link does.
//
// The server's highlights are [start, end) ranges of Unicode scalar values
// (code points), not UTF-16 units: the body is cut with Array.from, so an
// emoji before a match does not shift the mark. The body is formatted by
// markdown.js, inline only, with the marks laid over its text.

import { api } from './api.js';
import { bots, botTag } from './bots.js';
import { byId, closeOnOutsideClick, h, setMessage } from './dom.js';
import { renderBody } from './markdown.js';
import { roomHash } from './sidebar-view.js';
import { timeElement } from './text.js';

const PAGE_SIZE = 20;

/**
 * The server's [start, end) ranges in code points as ranges of UTF-16 units
 * of `body`, clamped to it; malformed ranges are dropped.
 * @param {string} body
 * @param {Array<[number, number]>} ranges
 * @returns {Array<[number, number]>}
 */
export function utf16Ranges(body, ranges) {
  const chars = Array.from(body);
  const offsets = [0];
  for (const ch of chars) offsets.push(offsets.at(-1) + ch.length);
  const clamp = (n) => offsets[Math.max(0, Math.min(n, chars.length))];
  return (Array.isArray(ranges) ? ranges : [])
    .filter((range) => Array.isArray(range) && range.length === 2)
    .map(([start, end]) => [Number(start), Number(end)])
    .filter(([start, end]) => Number.isInteger(start) && Number.isInteger(end) && end > start)
    .map(([start, end]) => [clamp(start), clamp(end)]);
}

export class Search {
  /**
   * @param {object} options
   * @param {() => {id: string, name: string}|null} options.openRoom the room on screen, for "only in this room"
   * @param {(roomId: string) => {name: string, direct?: boolean}|null} options.roomOf
   * @param {(hash: string) => void} options.onGo opens a message's link
   */
  constructor({ openRoom, roomOf, onGo }) {
    this.dialog = byId('search-dialog');
    this.form = byId('search-form');
    this.input = byId('search-input');
    this.scope = byId('search-scope');
    this.scopeField = byId('search-scope-field');
    this.scopeLabel = byId('search-scope-label');
    this.sort = byId('search-sort');
    this.status = byId('search-status');
    this.error = byId('search-error');
    this.list = byId('search-results');
    this.more = byId('search-more');
    this.openRoom = openRoom;
    this.roomOf = roomOf;
    this.onGo = onGo;
    /** The search on screen: its query, scope and sort, and the cursor of its next page. */
    this.current = null;
    /** Bumped by every new search, so a late answer to an older one is dropped. */
    this.generation = 0;
    this.count = 0;

    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.run();
    });
    // Changing the scope or the order asks again for what is on screen.
    this.scope.addEventListener('change', () => this.current && this.run());
    this.sort.addEventListener('change', () => this.current && this.run());
    // A search box takes the first Escape to clear itself; here Escape closes, as in every dialog.
    this.input.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape') return;
      event.preventDefault();
      this.dialog.close();
    });
    this.more.addEventListener('click', () => this.loadMore());
    byId('search-close').addEventListener('click', () => this.dialog.close());
    this.list.addEventListener('click', (event) => {
      const link = event.target.closest('a.search-hit');
      if (!link) return;
      event.preventDefault();
      this.dialog.close();
      this.onGo(link.getAttribute('href'));
    });
    closeOnOutsideClick(this.dialog);
  }

  open() {
    const room = this.openRoom();
    this.scopeField.hidden = !room;
    if (room) {
      this.scopeLabel.textContent = `Only in ${room.name}`;
      if (this.scopeRoom !== room.id) this.scope.checked = false;
      this.scopeRoom = room.id;
    } else {
      this.scope.checked = false;
      this.scopeRoom = null;
    }
    if (!this.dialog.open) this.dialog.showModal();
    this.input.focus();
    this.input.select();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  /** Forgets everything (logging out). */
  reset() {
    this.close();
    this.generation += 1;
    this.current = null;
    this.input.value = '';
    this.list.replaceChildren();
    this.more.hidden = true;
    setMessage(this.error, '');
    this.status.textContent = '';
  }

  /** Starts a new search from the form. */
  async run() {
    const q = this.input.value.trim();
    const room = this.scope.checked && !this.scopeField.hidden ? this.scopeRoom : null;
    const sort = this.sort.value === 'recent' ? 'recent' : 'relevance';
    this.generation += 1;
    this.current = null;
    this.count = 0;
    this.list.replaceChildren();
    this.more.hidden = true;
    setMessage(this.error, '');
    this.input.removeAttribute('aria-invalid');
    if (!q) {
      this.status.textContent = '';
      this.showError('Type a word to search for.');
      return;
    }
    this.current = { q, room, sort, next: null };
    await this.fetchPage(this.current, null);
  }

  async loadMore() {
    const search = this.current;
    if (!search?.next) return;
    await this.fetchPage(search, search.next);
  }

  async fetchPage(search, cursor) {
    const generation = this.generation;
    this.list.setAttribute('aria-busy', 'true');
    this.more.disabled = true;
    this.status.textContent = cursor ? 'Loading more…' : 'Searching…';
    let reply;
    try {
      reply = await api.search({ q: search.q, room: search.room, sort: search.sort, cursor, limit: PAGE_SIZE });
    } catch (error) {
      if (generation !== this.generation) return;
      this.list.removeAttribute('aria-busy');
      this.more.disabled = false;
      this.status.textContent = '';
      if (error.code === 'invalid_query') this.input.setAttribute('aria-invalid', 'true');
      this.showError(error.message);
      return;
    }
    if (generation !== this.generation) return;
    this.list.removeAttribute('aria-busy');
    this.more.disabled = false;
    const results = Array.isArray(reply?.results) ? reply.results : [];
    const firstNew = this.list.children.length;
    this.list.append(...results.map((result) => this.hitElement(result)));
    this.count += results.length;
    search.next = reply?.next ?? null;
    this.more.hidden = !search.next;
    const where = search.room ? ` in ${this.roomOf(search.room)?.name ?? 'this room'}` : '';
    if (this.count === 0) {
      this.status.textContent = `No messages found${where}.`;
    } else {
      const noun = this.count === 1 ? 'message' : 'messages';
      this.status.textContent = `${this.count} ${noun} found${where}${search.next ? ', more to load' : ''}.`;
    }
    // After "Load more" the first new hit takes focus, so the keyboard carries on from there.
    if (cursor && results.length) this.list.children[firstNew]?.querySelector('a')?.focus();
  }

  showError(text) {
    setMessage(this.error, text);
  }

  hitElement({ room, seq, message, highlights }) {
    const where = this.roomOf(room);
    // Direct conversations are marked @, as in the room list and the switcher.
    const roomLabel = `${where?.direct ? '@' : '#'}${where?.name ?? 'a room'}`;
    const isBot = message?.author?.id && (message.author.bot === true || bots.has(message.author.id));
    const author = (isBot && bots.nameOf(message.author.id)) || (message?.author?.username ?? 'deleted user');
    // Formatting shows inline only: the hit is a link, and holds no other.
    const body = h('span', { class: 'search-hit-body', dir: 'auto' });
    const source = String(message?.body ?? '');
    renderBody(body, source, { inline: true, marks: utf16Ranges(source, highlights) });
    return h(
      'li',
      { class: 'search-result' },
      h(
        'a',
        { class: 'search-hit', href: roomHash(room, seq), 'data-room': room, 'data-seq': seq },
        h(
          'span',
          { class: 'search-hit-meta' },
          h('span', { class: 'search-hit-room', dir: 'auto', text: roomLabel }),
          h('span', { class: 'search-hit-author', dir: 'auto', text: author }),
          isBot ? botTag() : null,
          message?.created_at ? timeElement(message.created_at) : null,
        ),
        body,
      ),
    );
  }
}
