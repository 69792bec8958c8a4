// The message box. On a keyboard, Enter sends and Shift+Enter starts a new
// line; on a touch screen Enter starts a new line and the send button sends,
// since a phone keyboard has no Shift+Enter. It keeps one draft per room
// (saved, so a reload keeps it) and grows with its text up to a limit.

import { byId, setMessage } from './dom.js';

const MAX_CHARS = 4000;
const MAX_ROWS = 8;
// Where the CSS `field-sizing: content` works, the box sizes itself and
// counting rows here is not needed.
const SIZES_ITSELF = globalThis.CSS?.supports?.('field-sizing', 'content') ?? false;
const TOUCH = window.matchMedia('(pointer: coarse)');

export class Composer {
  /** @param {{onSend: (body: string) => void}} handlers */
  constructor({ onSend }) {
    this.form = byId('composer');
    this.input = byId('composer-input');
    this.error = byId('composer-error');
    this.hint = byId('composer-hint');
    this.onSend = onSend;
    /** @type {import('./saved.js').SavedMap|null} room id → unsent text */
    this.drafts = null;
    this.roomId = null;

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
      // isComposing: Enter that confirms an IME candidate must not send.
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && !TOUCH.matches) {
        event.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener('input', () => {
      setMessage(this.error, '');
      this.drafts?.set(this.roomId, this.input.value);
      this.resize();
    });
    const describeKeys = () => {
      this.hint.textContent = TOUCH.matches
        ? 'Enter starts a new line. The send button sends.'
        : 'Enter sends. Shift plus Enter starts a new line.';
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
    this.roomId = roomId;
    this.input.value = this.drafts?.get(roomId) ?? '';
    this.resize();
    // A placeholder longer than the box would wrap and make the box grow.
    this.input.placeholder = roomName.length <= 24 ? `Message ${roomName}` : 'Write a message';
    setMessage(this.error, '');
  }

  hide() {
    this.form.hidden = true;
    this.roomId = null;
  }

  /** Empties the box, e.g. when the person logs out; saved drafts stay theirs. */
  clear() {
    this.input.value = '';
    this.resize();
    this.hide();
  }

  focus() {
    this.input.focus();
  }

  showError(text) {
    setMessage(this.error, text);
  }

  submit() {
    const body = this.input.value.trim();
    if (!body) return;
    // The server counts characters, not UTF-16 units: spread counts code points.
    const length = [...body].length;
    if (length > MAX_CHARS) {
      setMessage(this.error, `Messages can be at most ${MAX_CHARS} characters; this one has ${length}.`);
      return;
    }
    this.onSend(body);
    this.input.value = '';
    this.drafts?.set(this.roomId, '');
    this.resize();
  }

  resize() {
    if (SIZES_ITSELF) return;
    const lines = this.input.value.split('\n').length;
    this.input.rows = Math.min(MAX_ROWS, Math.max(1, lines));
  }
}
