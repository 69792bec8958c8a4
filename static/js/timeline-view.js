// The open room's message list: renders messages in seq order, keeps the
// reader's place when older pages are put above them, and shows this
// person's unconfirmed messages (pending or failed, with retry) at the end.

import { byId, h, hueClass, initial } from './dom.js';
import { appendLinkified, timeElement } from './text.js';

// Messages from one author this close together share one header.
const GROUP_WINDOW_MS = 5 * 60 * 1000;
// Within this distance of an edge counts as "at" that edge.
const NEAR_BOTTOM_PX = 80;
const NEAR_TOP_PX = 300;

export class TimelineView {
  /**
   * @param {object} handlers
   * @param {() => void} handlers.onNeedOlder the reader is near the top
   * @param {(clientId: string) => void} handlers.onRetry
   * @param {(clientId: string) => void} handlers.onDiscard
   */
  constructor({ onNeedOlder, onRetry, onDiscard }) {
    this.scroller = byId('timeline');
    this.list = byId('messages');
    this.status = byId('history-status');
    this.jumpButton = byId('jump-latest');
    this.handlers = { onNeedOlder, onRetry, onDiscard };
    this.me = null;
    this.roomName = '';

    this.scroller.addEventListener('scroll', () => this.onScroll(), { passive: true });
    this.jumpButton.addEventListener('click', () => {
      this.scrollToBottom();
      this.list.lastElementChild?.focus?.();
    });
  }

  /** Renders a room from scratch: its loaded messages, then its outgoing ones. */
  show(entry, outgoing, me) {
    this.me = me;
    this.roomName = entry.room.name;
    this.list.replaceChildren();
    this.scroller.hidden = false;
    this.jumpButton.hidden = true;
    this.insertNewer(entry.timeline ? entry.timeline.ordered() : []);
    for (const item of outgoing) this.upsertOutgoing(item);
    this.setHistoryState(entry.timeline);
    this.scrollToBottom();
  }

  hide() {
    this.list.replaceChildren();
    this.scroller.hidden = true;
    this.jumpButton.hidden = true;
  }

  /** Tells the reader whether more history is loading or this is the start. */
  setHistoryState(timeline, loading = false) {
    if (loading) this.status.textContent = timeline ? 'Loading older messages…' : 'Loading messages…';
    else if (timeline && !timeline.hasOlder) this.status.textContent = `This is the start of ${this.roomName}.`;
    else this.status.textContent = '';
  }

  /** Places messages by seq, following them down if the reader was at the bottom. */
  insertNewer(messages) {
    const wasAtBottom = this.isNearBottom();
    for (const message of messages) {
      const existing = this.list.querySelector(`li[data-seq="${Number(message.seq)}"]`);
      if (existing) continue;
      const li = this.messageElement(message);
      this.list.insertBefore(li, this.placeFor(message.seq));
      this.regroupAround(li);
    }
    if (messages.length) {
      if (wasAtBottom) this.scrollToBottom();
      else this.jumpButton.hidden = false;
    }
  }

  /** Puts an older page above what is shown without moving what the reader sees. */
  insertOlder(messages) {
    if (!messages.length) return;
    const firstShown = this.list.firstElementChild;
    const anchor = this.firstVisibleMessage();
    const anchorTop = anchor?.getBoundingClientRect().top;
    const fragment = document.createDocumentFragment();
    for (const message of messages) fragment.append(this.messageElement(message));
    this.list.insertBefore(fragment, firstShown);
    for (const li of this.list.children) {
      this.regroup(li);
      if (li === firstShown) break;
    }
    // Scroll by exactly how far the anchor moved: the new page's height, plus
    // any change in the anchor's neighbours (a header folding into a group).
    if (anchor) this.scroller.scrollTop += anchor.getBoundingClientRect().top - anchorTop;
  }

  /** The topmost message at least partly in view. */
  firstVisibleMessage() {
    const paneTop = this.scroller.getBoundingClientRect().top;
    for (const li of this.list.children) {
      if (li.getBoundingClientRect().bottom > paneTop) return li;
    }
    return null;
  }

  /** Shows or updates one of this person's unconfirmed messages. */
  upsertOutgoing(item) {
    const existing = this.outgoingElement(item.clientId);
    const li = this.outgoingMessageElement(item);
    if (existing) {
      existing.replaceWith(li);
      // Keep keyboard focus in this row across re-renders (Retry replaces the buttons).
      if (existing.contains(document.activeElement)) (li.querySelector('button') ?? li).focus();
    } else {
      this.list.append(li);
      this.scrollToBottom();
    }
    this.regroupAround(li);
  }

  removeOutgoing(clientId) {
    const li = this.outgoingElement(clientId);
    if (!li) return;
    const next = li.nextElementSibling;
    li.remove();
    if (next) this.regroup(next);
  }

  outgoingElement(clientId) {
    for (const li of this.list.querySelectorAll('li[data-client-id]')) {
      if (li.dataset.clientId === clientId && !li.dataset.seq) return li;
    }
    return null;
  }

  /** The element a message with `seq` goes before: the first later one, or the outgoing tail. */
  placeFor(seq) {
    let place = null;
    for (let li = this.list.lastElementChild; li; li = li.previousElementSibling) {
      if (!li.dataset.seq) {
        place = li; // Outgoing messages stay below everything confirmed.
        continue;
      }
      if (Number(li.dataset.seq) > seq) place = li;
      else break;
    }
    return place;
  }

  messageElement(message) {
    const author = message.author ?? { id: '', username: 'unknown' };
    const li = h('li', {
      class: 'message',
      'data-seq': message.seq,
      'data-author': author.id,
      'data-time': message.created_at,
      'data-client-id': message.client_id ?? null,
      'data-status': 'sent',
      tabindex: '-1',
    });
    li.append(...this.messageParts(author, message.created_at, message.body));
    return li;
  }

  outgoingMessageElement(item) {
    const me = this.me ?? { id: '', username: 'me' };
    const li = h('li', {
      class: `message outgoing ${item.status}`,
      'data-author': me.id,
      'data-time': item.createdAt,
      'data-client-id': item.clientId,
      'data-status': item.status,
      tabindex: '-1',
    });
    const [avatar, main] = this.messageParts(me, item.createdAt, item.body);
    const meta = main.querySelector('.message-meta');
    if (item.status === 'pending') meta.append(h('span', { class: 'message-state', text: 'Sending…' }));
    if (item.status === 'sent') meta.append(h('span', { class: 'message-state', text: 'Sent' }));
    if (item.status === 'failed') {
      main.append(
        h(
          'p',
          { class: 'message-failed' },
          h('span', { text: `Not sent. ${item.error ?? ''}`.trim() }),
          h('button', {
            type: 'button',
            class: 'button small',
            text: 'Retry',
            onclick: () => this.handlers.onRetry(item.clientId),
          }),
          h('button', {
            type: 'button',
            class: 'button small subtle',
            text: 'Discard',
            onclick: () => this.handlers.onDiscard(item.clientId),
          }),
        ),
      );
    }
    li.append(avatar, main);
    return li;
  }

  messageParts(author, createdAt, body) {
    const hue = hueClass(author.id);
    const avatar = h('span', { class: `avatar ${hue}`, 'aria-hidden': 'true', text: initial(author.username) });
    const name = h('span', {
      class: `author${author.deleted ? ' deleted' : ''}${author.id === this.me?.id ? ' me' : ''}`,
      text: author.username ?? 'unknown',
    });
    const text = h('div', { class: 'message-body' });
    appendLinkified(text, body ?? '');
    const main = h('div', { class: 'message-main' }, h('p', { class: 'message-meta' }, name, ' ', timeElement(createdAt)), text);
    return [avatar, main];
  }

  regroupAround(li) {
    this.regroup(li);
    if (li.nextElementSibling) this.regroup(li.nextElementSibling);
  }

  /** Marks a message that continues the previous one's run (same author, soon after). */
  regroup(li) {
    const previous = li.previousElementSibling;
    const continues =
      previous != null &&
      previous.dataset.author === li.dataset.author &&
      previous.dataset.status !== 'failed' &&
      Date.parse(li.dataset.time) - Date.parse(previous.dataset.time) < GROUP_WINDOW_MS;
    li.classList.toggle('continued', continues);
  }

  isNearBottom() {
    const { scrollHeight, scrollTop, clientHeight } = this.scroller;
    return scrollHeight - scrollTop - clientHeight < NEAR_BOTTOM_PX;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.jumpButton.hidden = true;
  }

  /** True when the loaded messages do not fill the pane, so no scroll can ask for more. */
  needsMoreToFill() {
    return this.scroller.scrollHeight <= this.scroller.clientHeight + NEAR_TOP_PX;
  }

  onScroll() {
    if (this.isNearBottom()) this.jumpButton.hidden = true;
    if (this.scroller.scrollTop < NEAR_TOP_PX) this.handlers.onNeedOlder();
  }
}
