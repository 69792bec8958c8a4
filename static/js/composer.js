// The message box: Enter sends, Shift+Enter starts a new line, and it grows
// with its text up to a limit.

import { byId, setMessage } from './dom.js';

const MAX_CHARS = 4000;
const MAX_ROWS = 8;
// Where the CSS `field-sizing: content` works, the box sizes itself and
// counting rows here is not needed.
const SIZES_ITSELF = globalThis.CSS?.supports?.('field-sizing', 'content') ?? false;

export class Composer {
  /** @param {{onSend: (body: string) => void}} handlers */
  constructor({ onSend }) {
    this.form = byId('composer');
    this.input = byId('composer-input');
    this.error = byId('composer-error');
    this.onSend = onSend;

    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.submit();
    });
    this.input.addEventListener('keydown', (event) => {
      // isComposing: Enter that confirms an IME candidate must not send.
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener('input', () => {
      setMessage(this.error, '');
      this.resize();
    });
  }

  show(roomName) {
    this.form.hidden = false;
    // A placeholder longer than the box would wrap and make the box grow.
    this.input.placeholder = roomName.length <= 24 ? `Message ${roomName}` : 'Write a message';
    setMessage(this.error, '');
  }

  hide() {
    this.form.hidden = true;
  }

  /** Drops any draft, e.g. when the person logs out. */
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
    this.resize();
  }

  resize() {
    if (SIZES_ITSELF) return;
    const lines = this.input.value.split('\n').length;
    this.input.rows = Math.min(MAX_ROWS, Math.max(1, lines));
  }
}
