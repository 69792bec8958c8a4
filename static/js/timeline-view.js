// The open room's message list: renders messages in seq order, keeps the
// reader's place when older pages are put above them, and shows this
// person's unconfirmed messages (pending or failed, with retry) at the end.
// Each message carries its day separator when it starts a day, the "New
// messages" divider when it is the first unread one, the quote of the
// message it replies to, "(edited)", its body formatted by markdown.js (the
// reader's own `@name` marked), its reactions, a fold when it is long,
// and a button that opens the message menu. Edits, deletions and reactions
// re-render a message in place; it keeps its place, focus and menu.
//
// For the keyboard the pane is one tab stop: arrow keys move between
// messages, and only the focused message's controls (its menu button, reply
// quote, "(edited)" and reaction chips) are in the tab order (a roving
// tabindex), so fifty messages are not fifty Tab presses.

import { markEmote } from './emote.js';
import { bots, botTag } from './bots.js';
import { avatarFor } from './avatars.js';
import { byId, h } from './dom.js';
import { emojiName } from './emoji.js';
import { installFormatKeys } from './format-keys.js';
import { renderBody } from './markdown.js';
import { filesElement, Lightbox } from './file-view.js';
import { mentionsMe as mentions } from './store.js';
import { dayKey, dayLabel, timeElement } from './text.js';

// Messages from one author this close together share one header.
const GROUP_WINDOW_MS = 5 * 60 * 1000;
// Within this distance of an edge counts as "at" that edge.
const NEAR_BOTTOM_PX = 80;
const NEAR_TOP_PX = 300;
// Bodies that might run past the fold (about 20 lines) are measured once shown.
const MAYBE_LONG_LINES = 20;
const MAYBE_LONG_CHARS = 600;
const HIGHLIGHT_MS = 8000;
// Controls inside a message that join the tab order while it has focus.
const ROVING = '.message-menu-button, .message-control';
const PEOPLE = new Intl.ListFormat('en', { type: 'conjunction' });

export class TimelineView {
  /**
   * @param {object} handlers
   * @param {() => void} handlers.onNeedOlder the reader is near the top
   * @param {(clientId: string) => void} handlers.onRetry
   * @param {(clientId: string) => void} handlers.onDiscard
   * @param {(li: HTMLElement, trigger: HTMLElement) => void} handlers.onMenu
   *   the person asked for a message's menu (button, long press)
   * @param {(seq: number) => void} handlers.onJumpTo a reply's quote was pressed
   * @param {(seq: number, emoji: string) => void} handlers.onToggleReaction a reaction chip was pressed
   * @param {(li: HTMLElement, trigger: HTMLElement) => void} handlers.onAddReaction
   * @param {(seq: number, trigger: HTMLElement, byHover: boolean) => void} handlers.onEditHistory
   *   "(edited)" was pressed or hovered
   * @param {() => void} [handlers.onAtBottom] the reader scrolled to the newest message
   */
  constructor({ onNeedOlder, onRetry, onDiscard, onMenu, onJumpTo, onToggleReaction, onAddReaction, onEditHistory, onAtBottom, presence }) {
    /** @type {import('./presence.js').Presence|null} dots on authors' avatars */
    this.presence = presence ?? null;
    this.scroller = byId('timeline');
    this.list = byId('messages');
    this.status = byId('history-status');
    this.jumpButton = byId('jump-latest');
    this.handlers = { onNeedOlder, onRetry, onDiscard, onMenu, onJumpTo, onToggleReaction, onAddReaction, onEditHistory, onAtBottom };
    /** @type {{seq: number, form: HTMLFormElement, done: () => void, message: object}|null} the message being edited */
    this.editing = null;
    this.me = null;
    this.roomName = '';
    /** Messages that arrived below while the reader was scrolled up. */
    this.newBelow = 0;
    /** Seqs above this one are unread; null: no divider. */
    this.unreadAfter = null;
    /** @type {import('./store.js').Timeline|null} the shown room's loaded history */
    this.history = null;

    this.scroller.addEventListener('scroll', () => this.onScroll(), { passive: true });
    this.jumpButton.addEventListener('click', () => {
      this.scrollToBottom();
      this.list.lastElementChild?.focus?.();
    });
    const seqOf = (el) => Number(el.closest('li[data-seq]')?.dataset.seq);
    this.list.addEventListener('click', (event) => {
      const fold = event.target.closest('button.fold-toggle');
      if (fold) this.toggleFold(fold);
      const menu = event.target.closest('button.message-menu-button');
      if (menu) this.handlers.onMenu(menu.closest('li'), menu);
      const quote = event.target.closest('button.reply-quote');
      if (quote) this.handlers.onJumpTo(Number(quote.dataset.replySeq));
      const chip = event.target.closest('button.reaction-chip');
      if (chip && seqOf(chip)) this.handlers.onToggleReaction(seqOf(chip), chip.dataset.emoji);
      const add = event.target.closest('button.add-reaction');
      if (add) this.handlers.onAddReaction(add.closest('li'), add);
      const edited = event.target.closest('button.edited-marker');
      if (edited && seqOf(edited)) this.handlers.onEditHistory(seqOf(edited), edited, false);
    });
    // Hovering "(edited)" shows the history too; a tap is a click.
    this.list.addEventListener('pointerover', (event) => {
      const edited = event.target.closest?.('button.edited-marker');
      if (edited && event.pointerType === 'mouse') this.handlers.onEditHistory(seqOf(edited), edited, true);
    });
    this.listenForLongPress();
    this.listenForArrows();
    this.lightbox = new Lightbox(this.list);
  }

  /**
   * Renders a room from scratch: its loaded messages, then its outgoing ones.
   * @param {number|null} unreadAfter the person's read cursor when they opened
   *   the room: the "New messages" divider goes on the first message after it
   *   by someone else
   */
  show(entry, outgoing, me, unreadAfter = null) {
    this.me = me;
    this.roomName = entry.direct ? `your conversation with ${entry.longName}` : entry.name;
    this.unreadAfter = unreadAfter;
    this.history = entry.timeline;
    this.editing = null;
    this.list.replaceChildren();
    this.scroller.hidden = false;
    this.newBelow = 0;
    this.updateJump();
    this.insertNewer(entry.timeline ? entry.timeline.ordered() : []);
    for (const item of outgoing) this.upsertOutgoing(item);
    this.setHistoryState(entry.timeline);
    this.markFirstUnread();
    this.scrollToBottom();
    // With more unread than fit, start at the first unread message.
    const divider = this.list.querySelector('.unread-divider');
    if (divider && divider.getBoundingClientRect().top < this.scroller.getBoundingClientRect().top) {
      divider.scrollIntoView({ block: 'start' });
    }
  }

  hide() {
    this.editing = null;
    this.unreadAfter = null;
    this.history = null;
    this.list.replaceChildren();
    this.scroller.hidden = true;
    this.newBelow = 0;
    this.updateJump();
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
    let added = 0;
    for (const message of messages) {
      const existing = this.list.querySelector(`li[data-seq="${Number(message.seq)}"]`);
      if (existing) continue;
      const li = this.messageElement(message);
      this.list.insertBefore(li, this.placeFor(message.seq));
      this.regroupAround(li);
      this.fold(li);
      added += 1;
    }
    if (!added) return;
    if (wasAtBottom) this.scrollToBottom();
    else {
      this.newBelow += added;
      this.updateJump();
    }
  }

  /** Puts an older page above what is shown without moving what the reader sees. */
  insertOlder(messages) {
    if (!messages.length) return;
    const firstShown = this.list.firstElementChild;
    const anchor = this.firstVisibleMessage();
    const anchorTop = anchor?.getBoundingClientRect().top;
    const fragment = document.createDocumentFragment();
    const added = messages.map((message) => this.messageElement(message));
    fragment.append(...added);
    this.list.insertBefore(fragment, firstShown);
    for (const li of this.list.children) {
      this.regroup(li);
      if (li === firstShown) break;
    }
    for (const li of added) this.fold(li);
    // The page may hold the first unread message.
    if (!this.list.querySelector('.unread-divider')) this.markFirstUnread();
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

  /** Tags the shown messages of accounts just learnt to be bots. */
  markBots(ids) {
    for (const id of ids) {
      for (const li of this.list.querySelectorAll(`li[data-author="${CSS.escape(id)}"]`)) {
        const name = li.querySelector('.message-meta > .author');
        if (!name) continue;
        const botName = bots.nameOf(id);
        if (botName && name.textContent !== botName) {
          name.title = name.textContent;
          name.textContent = botName;
        }
        if (!name.parentElement.querySelector('.bot-tag')) name.after(' ', botTag());
      }
    }
  }

  /** The shown message with `seq`, if any. */
  messageBySeq(seq) {
    return this.list.querySelector(`li[data-seq="${Number(seq)}"]`);
  }

  /** Scrolls a message into the middle of the pane and marks it for a while. */
  highlight(seq) {
    const li = this.messageBySeq(seq);
    if (!li) return false;
    for (const old of this.list.querySelectorAll('li.highlighted')) old.classList.remove('highlighted');
    li.classList.add('highlighted');
    li.scrollIntoView({ block: 'center' });
    li.focus({ preventScroll: true });
    clearTimeout(this.highlightTimer);
    this.highlightTimer = setTimeout(() => li.classList.remove('highlighted'), HIGHLIGHT_MS);
    return true;
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
    this.markState(li, message);
    const [avatar, main] = this.messageParts(author, message.created_at, message.body, message);
    const menuButton = h(
      'button',
      {
        type: 'button',
        class: 'message-menu-button',
        tabindex: '-1',
        'aria-label': 'Message actions',
        'aria-haspopup': 'menu',
        'aria-expanded': 'false',
      },
      dotsIcon(),
    );
    li.append(avatar, main, menuButton);
    return li;
  }

  /** The classes that follow a message's state: deleted, and whether it mentions this person. */
  markState(li, message) {
    li.classList.toggle('deleted', message.deleted === true);
    li.classList.toggle('mentions-me', mentionsMe(message, this.me));
  }

  /**
   * Re-renders a shown message after an edit, deletion or reaction, in
   * place: its separators, grouping, menu and focus stay. A message being
   * edited keeps its editor; it is brought up to date when the editor closes.
   */
  updateMessage(message) {
    const li = this.messageBySeq(message.seq);
    if (!li) return;
    if (this.editing?.seq === message.seq) {
      if (!message.deleted) return;
      this.closeEditor();
    }
    const old = li.querySelector(':scope > .message-main');
    const active = document.activeElement;
    const focusKey = old?.contains(active) ? active.dataset.focusKey : null;
    const roving = li.querySelector('.message-menu-button')?.tabIndex === 0;
    const [, main] = this.messageParts(message.author ?? { id: '', username: 'unknown' }, message.created_at, message.body, message);
    old.replaceWith(main);
    this.markState(li, message);
    this.fold(li);
    if (roving) for (const control of main.querySelectorAll(ROVING)) control.tabIndex = 0;
    if (focusKey) (main.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`) ?? li).focus();
    else if (old.contains(active)) li.focus({ preventScroll: true });
  }

  /** Messages whose state changed; those not shown are skipped. */
  updateMessages(messages) {
    for (const message of messages) this.updateMessage(message);
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
    const [avatar, main] = this.messageParts(me, item.createdAt, item.body, { reply_to: item.replyTo ?? null, files: item.files });
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

  /**
   * The avatar and the main column of a message: name and time (and
   * "(edited)"), the quote it replies to, the body ("message deleted" once
   * deleted) and its reactions.
   * @param {object} [message] the message's state, where there is one
   */
  messageParts(author, createdAt, body, message = {}) {
    const avatar = avatarFor(author);
    // The dot repeats what the member list says out loud, so it is silent here.
    if (this.presence && author.id && !author.deleted) avatar.append(this.presence.dot(author.id, { spoken: false }));
    const name = h('span', {
      class: `author${author.deleted ? ' deleted' : ''}${author.id === this.me?.id ? ' me' : ''}`,
      dir: 'auto',
      text: author.username ?? 'unknown',
    });
    const meta = h('p', { class: 'message-meta' }, name, ' ');
    if (author.id && (author.bot === true || bots.has(author.id))) {
      // A bot goes by its display name (a webhook's is the hook's name); its username on hover.
      const botName = bots.nameOf(author.id);
      if (botName) {
        name.textContent = botName;
        name.title = author.username ?? '';
      }
      meta.append(botTag(), ' ');
    }
    meta.append(timeElement(createdAt));
    if (message.edited_at && !message.deleted) {
      meta.append(
        ' ',
        h('button', {
          type: 'button',
          class: 'edited-marker message-control',
          tabindex: '-1',
          'aria-label': 'Edited: show earlier versions',
          'aria-haspopup': 'dialog',
          'aria-expanded': 'false',
          'data-focus-key': 'edited',
          text: '(edited)',
        }),
      );
    }
    if (mentionsMe(message, this.me)) meta.append(h('span', { class: 'visually-hidden', text: 'Mentions you.' }));
    let text;
    if (message.deleted) {
      text = h('p', { class: 'message-body deleted-body', text: 'message deleted' });
    } else {
      text = h('div', { class: 'message-body', dir: 'auto' });
      renderBody(text, body ?? '', { mentions: mentionedNames(message, this.me) });
    }
    markEmote(text, author, body);
    const main = h(
      'div',
      { class: 'message-main' },
      meta,
      message.reply_to ? quoteElement(message.reply_to) : null,
      text,
      message.deleted ? null : filesElement(message.files),
      message.reactions?.length && !message.deleted ? this.reactionsElement(message) : null,
    );
    return [avatar, main];
  }

  /** The chips under a message, each naming who reacted, and a button to add one. */
  reactionsElement(message) {
    const chips = message.reactions.map((reaction) => {
      const label = `${emojiName(reaction.emoji)}, ${reaction.count}: ${reactedBy(reaction, message.reactors?.get(reaction.emoji), this.me?.id)}`;
      return h(
        'button',
        {
          type: 'button',
          class: 'reaction-chip message-control',
          tabindex: '-1',
          'aria-pressed': String(reaction.me === true),
          'aria-label': label,
          title: label,
          'data-emoji': reaction.emoji,
          'data-focus-key': `reaction:${reaction.emoji}`,
        },
        h('span', { class: 'reaction-emoji', 'aria-hidden': 'true', text: reaction.emoji }),
        h('span', { class: 'reaction-count', 'aria-hidden': 'true', text: String(reaction.count) }),
      );
    });
    const add = h(
      'button',
      {
        type: 'button',
        class: 'add-reaction message-control',
        tabindex: '-1',
        'aria-label': 'Add reaction',
        title: 'Add reaction',
        'aria-haspopup': 'dialog',
        'data-focus-key': 'add-reaction',
      },
      h('span', { 'aria-hidden': 'true', text: '+' }),
    );
    return h('div', { class: 'reactions', role: 'group', 'aria-label': 'Reactions' }, ...chips, add);
  }

  // ---- Editing in place --------------------------------------------------------

  /**
   * Swaps a message's body for a box with Save and Cancel. Enter saves,
   * Shift+Enter starts a new line, Escape cancels.
   * @param {object} message
   * @param {object} handlers
   * @param {(body: string) => Promise<void>} handlers.save throws an Error to show
   * @param {() => void} handlers.done the editor closed (saved or not)
   * @returns {boolean} false when the message is not shown
   */
  editMessage(message, { save, done }) {
    const li = this.messageBySeq(message.seq);
    if (!li || message.deleted) return false;
    if (this.editing) this.closeEditor();
    const body = li.querySelector('.message-main > .message-body');
    const id = `edit-${message.seq}`;
    const input = h('textarea', {
      id,
      class: 'editor-input',
      rows: String(Math.min(8, Math.max(1, message.body.split('\n').length))),
      'aria-label': 'Edit message',
      'aria-describedby': `${id}-hint`,
    });
    input.value = message.body;
    installFormatKeys(input);
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const form = h(
      'form',
      { class: 'message-editor', novalidate: true, 'aria-label': 'Edit message' },
      input,
      h(
        'div',
        { class: 'editor-actions' },
        h('button', { type: 'submit', class: 'button small primary', text: 'Save' }),
        h('button', { type: 'button', class: 'button small subtle editor-cancel', text: 'Cancel' }),
        h('span', { id: `${id}-hint`, class: 'muted small', text: 'Enter saves, Escape cancels' }),
      ),
      error,
    );
    const submit = async () => {
      const text = input.value.trim();
      if (!text) {
        error.textContent = 'A message cannot be empty; delete it instead.';
        error.hidden = false;
        return;
      }
      if (text === message.body) {
        this.closeEditor();
        return;
      }
      form.setAttribute('aria-busy', 'true');
      try {
        await save(text);
      } catch (failure) {
        form.removeAttribute('aria-busy');
        error.textContent = failure.message;
        error.hidden = false;
        return;
      }
      if (this.editing?.form === form) this.closeEditor();
    };
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      submit();
    });
    form.querySelector('.editor-cancel').addEventListener('click', () => this.closeEditor());
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submit();
      } else if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        this.closeEditor();
      }
    });
    body.hidden = true;
    body.after(form);
    li.classList.add('editing');
    this.editing = { seq: message.seq, form, done, message };
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
    form.scrollIntoView({ block: 'nearest' });
    return true;
  }

  /**
   * Closes the editor, showing the message as it now is.
   * @param {boolean} [notify] tell whoever opened it (which moves focus back);
   *   not when the room is being left
   */
  closeEditor(notify = true) {
    const editing = this.editing;
    if (!editing) return;
    this.editing = null;
    const li = editing.form.closest('li');
    editing.form.remove();
    if (li) {
      li.classList.remove('editing');
      this.updateMessage(editing.message);
    }
    if (notify) editing.done();
  }

  regroupAround(li) {
    this.regroup(li);
    if (li.nextElementSibling) this.regroup(li.nextElementSibling);
  }

  /**
   * Marks a message that continues the previous one's run (same author, soon
   * after, same day), and gives the first message of each day its separator.
   */
  regroup(li) {
    const previous = li.previousElementSibling;
    const day = dayKey(li.dataset.time);
    const newDay = previous == null || dayKey(previous.dataset.time) !== day;
    // After the "New messages" divider a message names its author again.
    const continues =
      !newDay &&
      !li.classList.contains('first-unread') &&
      previous.dataset.author === li.dataset.author &&
      previous.dataset.status !== 'failed' &&
      Date.parse(li.dataset.time) - Date.parse(previous.dataset.time) < GROUP_WINDOW_MS;
    li.classList.toggle('continued', continues);
    const separator = li.querySelector(':scope > .day-separator');
    if (newDay && !separator) {
      li.prepend(h('p', { class: 'day-separator', text: dayLabel(li.dataset.time) }));
    } else if (!newDay && separator) {
      separator.remove();
    }
  }

  /**
   * Puts the "New messages" divider on the first message after `unreadAfter`
   * by someone else, once the loaded history reaches back that far (the
   * first loaded one is not the first unread when older ones are missing).
   */
  markFirstUnread() {
    if (this.unreadAfter == null) return;
    const history = this.history;
    if (history && history.hasOlder && history.oldest > this.unreadAfter + 1) return;
    for (const li of this.list.querySelectorAll('li[data-seq]')) {
      if (Number(li.dataset.seq) <= this.unreadAfter) continue;
      if (li.dataset.author === this.me?.id) continue;
      const divider = h('p', { class: 'unread-divider' }, h('span', { text: 'New messages' }));
      const separator = li.querySelector(':scope > .day-separator');
      if (separator) separator.after(divider);
      else li.prepend(divider);
      li.classList.add('first-unread');
      this.regroup(li);
      return;
    }
  }

  /** Moves the "New messages" divider after `seq` ("Mark as unread"), or puts it there if there is none. */
  moveUnreadDivider(seq) {
    for (const divider of this.list.querySelectorAll('.unread-divider')) {
      const li = divider.closest('li');
      divider.remove();
      if (li) {
        li.classList.remove('first-unread');
        this.regroup(li);
      }
    }
    this.unreadAfter = seq;
    this.markFirstUnread();
  }

  /** True when a divider is shown. */
  get hasUnreadDivider() {
    return this.list.querySelector('.unread-divider') != null;
  }

  /** True when the newest message is on screen: the pane is shown and scrolled to its end. */
  newestInView() {
    return !this.scroller.hidden && this.scroller.isConnected && this.isNearBottom();
  }

  /** Folds a long body to about 20 lines, with a button to unfold it. */
  fold(li) {
    const body = li.querySelector('.message-body');
    if (!body) return;
    const text = body.textContent;
    if (text.length < MAYBE_LONG_CHARS && text.split('\n').length <= MAYBE_LONG_LINES) return;
    body.classList.add('folded');
    if (body.scrollHeight <= body.clientHeight + 4) {
      body.classList.remove('folded');
      return;
    }
    body.id ||= `body-${li.dataset.seq ?? li.dataset.clientId}`;
    body.after(
      h('button', {
        type: 'button',
        class: 'link fold-toggle',
        'aria-expanded': 'false',
        'aria-controls': body.id,
        text: 'Show more',
      }),
    );
  }

  toggleFold(button) {
    const body = button.previousElementSibling;
    const unfold = body.classList.contains('folded');
    body.classList.toggle('folded', !unfold);
    button.textContent = unfold ? 'Show less' : 'Show more';
    button.setAttribute('aria-expanded', String(unfold));
  }

  /** A long press (touch) on a message opens its menu, as the button does. */
  listenForLongPress() {
    let timer = null;
    let start = null;
    let pressed = false;
    const cancel = () => {
      clearTimeout(timer);
      timer = null;
    };
    this.list.addEventListener('pointerdown', (event) => {
      if (event.pointerType !== 'touch') return;
      const li = event.target.closest('li[data-seq]');
      if (!li || event.target.closest('a, button')) return;
      start = { x: event.clientX, y: event.clientY };
      pressed = false;
      cancel();
      timer = setTimeout(() => {
        timer = null;
        pressed = true;
        this.handlers.onMenu(li, li.querySelector('.message-menu-button'));
      }, 500);
    });
    // The browser's own long-press menu would open over ours.
    this.list.addEventListener('contextmenu', (event) => {
      if (pressed) event.preventDefault();
      pressed = false;
    });
    this.list.addEventListener('pointermove', (event) => {
      if (timer && start && Math.hypot(event.clientX - start.x, event.clientY - start.y) > 10) cancel();
    });
    for (const type of ['pointerup', 'pointercancel']) this.list.addEventListener(type, cancel);
  }

  /** Arrow keys, Home and End move focus between messages. */
  listenForArrows() {
    this.scroller.addEventListener('keydown', (event) => {
      if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
      if (event.target !== this.scroller && !event.target.matches('li.message')) return;
      const items = [...this.list.querySelectorAll('li.message')];
      if (!items.length) return;
      const at = items.indexOf(event.target);
      const next = {
        ArrowUp: at < 0 ? items.length - 1 : Math.max(0, at - 1),
        ArrowDown: at < 0 ? items.length - 1 : Math.min(items.length - 1, at + 1),
        Home: 0,
        End: items.length - 1,
      }[event.key];
      if (next == null) return;
      event.preventDefault();
      items[next].focus();
    });
    // The focused message's controls are the ones Tab reaches.
    this.list.addEventListener('focusin', (event) => {
      const li = event.target.closest('li.message');
      if (!li) return;
      for (const control of this.list.querySelectorAll(`:is(${ROVING})[tabindex="0"]`)) {
        if (!li.contains(control)) control.tabIndex = -1;
      }
      for (const control of li.querySelectorAll(ROVING)) control.tabIndex = 0;
    });
  }

  isNearBottom() {
    const { scrollHeight, scrollTop, clientHeight } = this.scroller;
    return scrollHeight - scrollTop - clientHeight < NEAR_BOTTOM_PX;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.newBelow = 0;
    this.updateJump();
  }

  /** The button below the pane (never over a message), with how many wait below. */
  updateJump() {
    this.jumpButton.hidden = this.newBelow === 0;
    const label = this.newBelow === 1 ? '1 new message' : `${this.newBelow} new messages`;
    this.jumpButton.textContent = `Jump to latest · ${label}`;
  }

  /** True when the loaded messages do not fill the pane, so no scroll can ask for more. */
  needsMoreToFill() {
    return this.scroller.scrollHeight <= this.scroller.clientHeight + NEAR_TOP_PX;
  }

  onScroll() {
    const atBottom = this.isNearBottom();
    if (this.newBelow && atBottom) {
      this.newBelow = 0;
      this.updateJump();
    }
    if (atBottom) this.handlers.onAtBottom?.();
    if (this.scroller.scrollTop < NEAR_TOP_PX) this.handlers.onNeedOlder();
  }
}

/** True when the message names this person or @room, and it is not their own. */
function mentionsMe(message, me) {
  return mentions(message, me?.id);
}

/** The names whose `@name` in a message means the reader: none unless the server said so. */
function mentionedNames(message, me) {
  if (!mentionsMe(message, me)) return null;
  return message.mentions_room ? [me.username, 'room'] : [me.username];
}

/** The quote above a reply; pressing it goes to the message it answers. */
function quoteElement(reply) {
  const name = reply.author?.username ?? 'unknown';
  const excerpt = reply.excerpt || 'message deleted';
  return h(
    'button',
    {
      type: 'button',
      class: `reply-quote message-control${reply.excerpt ? '' : ' gone'}`,
      tabindex: '-1',
      'data-reply-seq': reply.seq,
      'data-focus-key': 'quote',
      'aria-label': `Reply to ${name}: ${excerpt}. Go to that message`,
    },
    h('span', { class: 'reply-author', dir: 'auto', text: name }),
    ' ',
    excerptElement(excerpt),
  );
}

/** The quoted excerpt, its formatting shown inline (no links: the quote is a button). */
function excerptElement(excerpt) {
  const span = h('span', { class: 'reply-excerpt', dir: 'auto' });
  renderBody(span, excerpt, { inline: true });
  return span;
}

/** "you, ana and 2 others": who reacted, as far as this page knows. */
function reactedBy(reaction, names, meId) {
  const people = reaction.me ? ['you'] : [];
  for (const [id, name] of names ?? []) if (id !== meId) people.push(name);
  const others = reaction.count - people.length;
  if (others > 0) people.push(others === 1 ? '1 other' : `${others} others`);
  return PEOPLE.format(people);
}

function dotsIcon() {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', 'icon');
  for (const cx of [5, 12, 19]) {
    const dot = document.createElementNS('http://www.w3.org/2000/svg', 'circle');
    dot.setAttribute('cx', String(cx));
    dot.setAttribute('cy', '12');
    dot.setAttribute('r', '1.6');
    svg.append(dot);
  }
  return svg;
}
