// The message box. On a keyboard, Enter sends and Shift+Enter starts a new
// line; on a touch screen Enter starts a new line and the send button sends,
// since a phone keyboard has no Shift+Enter. It keeps one draft per room
// (saved, so a reload keeps it) and grows with its text up to a limit.
// Above the box, "Replying to NAME: excerpt" while a reply is being written;
// typing `@` offers the room's members (arrows, then Enter or Tab); the Up
// arrow in an empty box edits this person's last message; Ctrl+B and Ctrl+I
// mark the selection bold or italic (format-keys.js). Files come along
// through the attach button, a drop or a paste (attachments.js).

import { Attachments } from './attachments.js';
import { avatarFor } from './avatars.js';
import { byId, h, setMessage } from './dom.js';
import { installFormatKeys } from './format-keys.js';

const MAX_CHARS = 4000;
const MAX_ROWS = 8;
// Where the CSS `field-sizing: content` works, the box sizes itself and
// counting rows here is not needed.
const SIZES_ITSELF = globalThis.CSS?.supports?.('field-sizing', 'content') ?? false;
const TOUCH = window.matchMedia('(pointer: coarse)');
const MAX_SUGGESTIONS = 8;
// An `@` at the start or after a space or bracket, then what is typed of a name, up to the caret.
const MENTION_BEFORE_CARET = /(?:^|[\s([{])@([\p{L}\p{N}_.-]*)$/u;

export class Composer {
  /**
   * @param {object} handlers
   * @param {(body: string, replyTo: object|null, files: object[], roomId: string) => void} handlers.onSend
   *   `files`: uploaded files it carries (the body may then be empty)
   * @param {() => boolean} handlers.onEditLast Up in an empty box; true if an edit began
   * @param {(roomId: string) => Promise<Array<{id: string, username: string}>>} handlers.members
   *   who can be mentioned in a room
   * @param {(roomId: string) => void} handlers.onTyping a keystroke left text in the focused box
   * @param {(body: string) => string|null} [handlers.onCommand] null when the body was a
   *   command, done without sending it (slash.js)
   */
  constructor({ onSend, onEditLast, members, onTyping, onCommand = (body) => body }) {
    this.form = byId('composer');
    this.input = byId('composer-input');
    this.error = byId('composer-error');
    this.hint = byId('composer-hint');
    this.replyBar = byId('reply-bar');
    this.replyText = byId('reply-text');
    this.mentionList = byId('mention-list');
    this.onSend = onSend;
    this.onEditLast = onEditLast;
    this.members = members;
    this.onTyping = onTyping;
    this.onCommand = onCommand;
    /** @type {{seq: number, author: object, excerpt: string}|null} the message being answered */
    this.reply = null;
    /** @type {{start: number, matches: object[], active: number}|null} the open `@` suggestions */
    this.mention = null;
    /** @type {import('./saved.js').SavedMap|null} room id → unsent text */
    this.drafts = null;
    this.roomId = null;
    /** Files being attached: the button, drops, pastes, and their chips above the box. */
    this.attachments = new Attachments({ roomId: () => this.roomId, onError: (text) => this.showError(text) });

    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.submit();
    });
    // Tapping send must not take focus from the box: on a phone that would
    // fold the keyboard away after every message.
    this.form.querySelector('.send-button').addEventListener('pointerdown', (event) => {
      if (document.activeElement === this.input) event.preventDefault();
    });
    this.input.addEventListener('keydown', (event) => {
      if (this.mention && this.onMentionKey(event)) return;
      // isComposing: Enter that confirms an IME candidate must not send.
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && !TOUCH.matches) {
        event.preventDefault();
        this.submit();
      } else if (event.key === 'ArrowUp' && !this.input.value && !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey) {
        if (this.onEditLast()) event.preventDefault();
      } else if (event.key === 'Escape' && this.reply) {
        event.preventDefault();
        this.cancelReply();
      }
    });
    this.input.addEventListener('input', () => {
      setMessage(this.error, '');
      this.drafts?.set(this.roomId, this.input.value);
      this.resize();
      this.suggestMentions();
      if (this.roomId && this.input.value.trim() && document.activeElement === this.input) this.onTyping(this.roomId);
    });
    this.input.addEventListener('blur', () => this.closeMentions());
    installFormatKeys(this.input);
    this.input.addEventListener('click', () => this.suggestMentions());
    // Choosing with the pointer must not take focus from the box.
    this.mentionList.addEventListener('pointerdown', (event) => event.preventDefault());
    this.mentionList.addEventListener('click', (event) => {
      const option = event.target.closest('[role="option"]');
      if (option && this.mention) this.pickMention(this.mention.matches[Number(option.dataset.index)]);
    });
    byId('reply-cancel').addEventListener('click', () => {
      this.cancelReply();
      this.focus();
    });
    const describeKeys = () => {
      this.hint.textContent = TOUCH.matches
        ? 'Enter starts a new line. The send button sends.'
        : 'Enter sends. Shift plus Enter starts a new line. In an empty box, Up edits your last message. Slash starts a command; /help lists them.';
    };
    TOUCH.addEventListener('change', describeKeys);
    describeKeys();
  }

  /** @param {import('./saved.js').SavedMap|null} drafts the signed-in person's drafts */
  useDrafts(drafts) {
    this.drafts = drafts;
  }

  /** Shows the box for a room, with that room's draft in it. */
  show(roomId, roomName) {
    this.form.hidden = false;
    if (roomId !== this.roomId) this.cancelReply();
    this.closeMentions();
    this.roomId = roomId;
    this.input.value = this.drafts?.get(roomId) ?? '';
    this.resize();
    this.setRoomName(roomName);
    setMessage(this.error, '');
    this.attachments.render();
  }

  /** The placeholder names the room (again, after a rename). */
  setRoomName(roomName) {
    // A placeholder longer than the box would wrap and make the box grow.
    this.input.placeholder = roomName.length <= 24 ? `Message ${roomName}` : 'Write a message';
  }

  hide() {
    this.form.hidden = true;
    this.roomId = null;
    this.cancelReply();
    this.closeMentions();
    this.attachments.render();
  }

  /**
   * Starts a reply: the bar above the box names the message answered.
   * @param {{seq: number, author: {id: string, username: string}, excerpt: string}} reply
   */
  replyTo(reply) {
    this.reply = reply;
    this.replyText.replaceChildren(
      'Replying to ',
      h('strong', { dir: 'auto', text: reply.author.username }),
      ': ',
      h('span', { dir: 'auto', class: 'reply-bar-excerpt', text: reply.excerpt }),
    );
    this.replyBar.hidden = false;
    this.input.setAttribute('aria-describedby', 'reply-text composer-hint');
    this.focus();
  }

  cancelReply() {
    this.reply = null;
    this.replyBar.hidden = true;
    this.replyText.replaceChildren();
    this.input.setAttribute('aria-describedby', 'composer-hint');
  }

  /** Empties the box, e.g. when the person logs out; saved drafts stay theirs. */
  clear() {
    this.attachments.clear();
    this.input.value = '';
    this.resize();
    this.hide();
  }

  focus() {
    this.input.focus();
  }

  /** Puts `text` in the box (and the room's draft). */
  setText(text) {
    this.input.value = text;
    this.drafts?.set(this.roomId, text);
    this.resize();
  }

  showError(text) {
    setMessage(this.error, text);
  }

  submit() {
    const body = this.input.value.trim();
    if (!body && !this.attachments.pending().length) return;
    // The server counts characters, not UTF-16 units: spread counts code points.
    const length = [...body].length;
    // A slash command is done where it belongs; it empties the box itself once done.
    if (this.onCommand(body) === null) return;
    if (length > MAX_CHARS) {
      setMessage(this.error, `Messages can be at most ${MAX_CHARS} characters; this one has ${length}.`);
      return;
    }
    const { roomId, reply } = this;
    // Sent now, or once its files have uploaded; if one fails, the text comes back.
    this.attachments.sendWhenReady(
      (files) => {
        if (body || files.length) this.onSend(body, reply, files, roomId);
      },
      () => this.restore(roomId, body, reply),
    );
    this.cancelReply();
    this.closeMentions();
    this.input.value = '';
    this.drafts?.set(this.roomId, '');
    this.resize();
  }

  /** Puts back a message whose files failed to upload, unless something new was typed. */
  restore(roomId, body, reply) {
    if (roomId !== this.roomId || this.input.value.trim()) return;
    this.input.value = body;
    this.drafts?.set(roomId, body);
    this.resize();
    if (reply) this.replyTo(reply);
  }

  // ---- `@` suggestions ------------------------------------------------------

  /** Offers members whose name starts with what follows an `@` before the caret. */
  async suggestMentions() {
    const caret = this.input.selectionStart;
    const match = this.input.selectionEnd === caret ? MENTION_BEFORE_CARET.exec(this.input.value.slice(0, caret)) : null;
    if (!match || !this.roomId) {
      this.closeMentions();
      return;
    }
    const roomId = this.roomId;
    const typed = match[1].toLocaleLowerCase();
    let people;
    try {
      people = await this.members(roomId);
    } catch {
      people = [];
    }
    // The person may have typed on, or moved, while the list was loading.
    if (roomId !== this.roomId || this.input.selectionStart !== caret || document.activeElement !== this.input) return;
    const matches = people
      .filter((p) => p.username.toLocaleLowerCase().startsWith(typed))
      .sort((a, b) => a.username.localeCompare(b.username))
      .slice(0, MAX_SUGGESTIONS);
    if (!matches.length) {
      this.closeMentions();
      return;
    }
    const same = this.mention?.start === caret - match[1].length - 1;
    this.mention = { start: caret - match[1].length - 1, matches, active: same ? Math.min(this.mention.active, matches.length - 1) : 0 };
    this.renderMentions();
  }

  renderMentions() {
    const { matches, active } = this.mention;
    this.mentionList.replaceChildren(
      ...matches.map((person, index) =>
        h(
          'li',
          {
            id: `mention-option-${index}`,
            role: 'option',
            class: 'mention-option',
            'aria-selected': String(index === active),
            'data-index': index,
          },
          avatarFor(person),
          h('span', { dir: 'auto', text: person.username }),
        ),
      ),
    );
    this.mentionList.hidden = false;
    this.input.setAttribute('aria-activedescendant', `mention-option-${active}`);
    byId(`mention-option-${active}`).scrollIntoView({ block: 'nearest' });
  }

  /** Keys while suggestions are open; true when the key was theirs. */
  onMentionKey(event) {
    const { matches } = this.mention;
    const move = { ArrowDown: 1, ArrowUp: -1 }[event.key];
    if (move) {
      this.mention.active = (this.mention.active + move + matches.length) % matches.length;
      this.renderMentions();
    } else if ((event.key === 'Enter' || event.key === 'Tab') && !event.shiftKey && !event.isComposing) {
      this.pickMention(matches[this.mention.active]);
    } else if (event.key === 'Escape') {
      this.closeMentions();
    } else {
      return false;
    }
    event.preventDefault();
    return true;
  }

  /** Puts `@username ` in place of the `@` and what was typed after it. */
  pickMention(person) {
    if (!person || !this.mention) return;
    const { start } = this.mention;
    const caret = this.input.selectionStart;
    const inserted = `@${person.username} `;
    this.input.setRangeText(inserted, start, caret, 'end');
    this.closeMentions();
    this.input.dispatchEvent(new Event('input'));
  }

  closeMentions() {
    if (!this.mention) return;
    this.mention = null;
    this.mentionList.hidden = true;
    this.mentionList.replaceChildren();
    this.input.removeAttribute('aria-activedescendant');
  }

  resize() {
    if (SIZES_ITSELF) return;
    const lines = this.input.value.split('\n').length;
    this.input.rows = Math.min(MAX_ROWS, Math.max(1, lines));
  }
}
