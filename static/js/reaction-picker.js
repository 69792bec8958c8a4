// The reaction picker: a dialog with a search box and the built-in emoji,
// narrowed by name as the person types. Enter in the box picks the first
// match; arrow keys move through the grid; Escape closes and focus goes back
// to where it was.

import { byId, closeOnOutsideClick, h } from './dom.js';
import { searchEmoji } from './emoji.js';

// Arrow Up and Down move by this many: the grid's columns (see .reaction-grid).
const COLUMNS = 8;

export class ReactionPicker {
  constructor() {
    this.dialog = byId('reaction-picker');
    this.input = byId('reaction-search');
    this.grid = byId('reaction-grid');
    this.empty = byId('reaction-empty');
    /** @type {((emoji: string) => void)|null} */
    this.onPick = null;
    this.returnFocus = null;

    this.input.addEventListener('input', () => this.render());
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        const first = this.grid.querySelector('button');
        if (first) this.pick(first.dataset.emoji);
      } else if (event.key === 'ArrowDown') {
        event.preventDefault();
        this.grid.querySelector('button')?.focus();
      } else if (event.key === 'Escape') {
        // A search box would take the first Escape to clear itself.
        event.preventDefault();
        this.dialog.close();
      }
    });
    this.grid.addEventListener('keydown', (event) => this.onGridKey(event));
    this.grid.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-emoji]');
      if (button) this.pick(button.dataset.emoji);
    });
    byId('reaction-picker-close').addEventListener('click', () => this.dialog.close());
    this.dialog.addEventListener('close', () => {
      this.onPick = null;
      const back = this.returnFocus;
      this.returnFocus = null;
      if (back?.isConnected) back.focus();
    });
    closeOnOutsideClick(this.dialog);
  }

  /**
   * @param {(emoji: string) => void} onPick
   * @param {HTMLElement|null} returnFocus where focus goes when it closes
   */
  open(onPick, returnFocus) {
    this.onPick = onPick;
    this.returnFocus = returnFocus;
    this.input.value = '';
    this.render();
    if (!this.dialog.open) this.dialog.showModal();
    this.input.focus();
  }

  render() {
    const matches = searchEmoji(this.input.value);
    this.grid.replaceChildren(
      ...matches.map(({ emoji, name }) =>
        h('button', { type: 'button', class: 'emoji-option', 'data-emoji': emoji, 'aria-label': name, title: name, text: emoji }),
      ),
    );
    this.empty.textContent = matches.length ? '' : `No emoji named “${this.input.value.trim()}”.`;
  }

  onGridKey(event) {
    const buttons = [...this.grid.querySelectorAll('button')];
    const at = buttons.indexOf(document.activeElement);
    if (at < 0) return;
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: COLUMNS, ArrowUp: -COLUMNS }[event.key];
    if (!step) return;
    event.preventDefault();
    const next = at + step;
    if (next < 0) this.input.focus();
    else buttons[Math.min(next, buttons.length - 1)].focus();
  }

  pick(emoji) {
    const onPick = this.onPick;
    this.dialog.close();
    onPick?.(emoji);
  }
}
