// The quick switcher (Ctrl+K, or Cmd+K on a Mac): a dialog with a box and the
// joined rooms that match what is typed. Arrows move, Enter opens, Escape
// closes. The box is an ARIA combobox whose active option is announced.

import { byId, closeOnOutsideClick, h } from './dom.js';
import { matchesFilter } from './sidebar-view.js';

export class Switcher {
  /**
   * @param {object} options
   * @param {() => Array<{id: string, room: {name: string}, unread: number}>} options.rooms
   * @param {(roomId: string) => void} options.onChoose
   */
  constructor({ rooms, onChoose }) {
    this.dialog = byId('switcher');
    this.input = byId('switcher-input');
    this.list = byId('switcher-list');
    this.empty = byId('switcher-empty');
    this.rooms = rooms;
    this.onChoose = onChoose;
    this.active = 0;
    this.matches = [];

    this.input.addEventListener('input', () => {
      this.active = 0;
      this.render();
    });
    this.input.addEventListener('keydown', (event) => {
      const move = { ArrowDown: 1, ArrowUp: -1 }[event.key];
      if (move && this.matches.length) {
        event.preventDefault();
        this.active = (this.active + move + this.matches.length) % this.matches.length;
        this.render();
      } else if (event.key === 'Enter') {
        event.preventDefault();
        this.choose(this.matches[this.active]);
      }
    });
    this.list.addEventListener('click', (event) => {
      const option = event.target.closest('[role="option"]');
      if (option) this.choose(this.matches[Number(option.dataset.index)]);
    });
    closeOnOutsideClick(this.dialog);
  }

  open() {
    if (this.dialog.open) return;
    this.input.value = '';
    this.active = 0;
    this.render();
    this.dialog.showModal();
    this.input.focus();
  }

  render() {
    this.matches = this.rooms().filter((entry) => matchesFilter(entry.name, this.input.value));
    this.list.replaceChildren(
      ...this.matches.map((entry, index) =>
        h(
          'li',
          {
            id: `switcher-option-${index}`,
            role: 'option',
            class: 'switcher-option',
            'aria-selected': String(index === this.active),
            'data-index': index,
          },
          h('span', { class: 'room-hash', 'aria-hidden': 'true', text: entry.direct ? '@' : '#' }),
          h('span', { class: 'room-name', dir: 'auto', text: entry.name }),
          entry.unread ? h('span', { class: 'badge', text: String(entry.unread) }) : null,
        ),
      ),
    );
    this.empty.hidden = this.matches.length > 0;
    if (this.matches.length) {
      this.input.setAttribute('aria-activedescendant', `switcher-option-${this.active}`);
      byId(`switcher-option-${this.active}`).scrollIntoView({ block: 'nearest' });
    } else {
      this.input.removeAttribute('aria-activedescendant');
    }
  }

  choose(entry) {
    if (!entry) return;
    this.dialog.close();
    this.onChoose(entry.id);
  }
}
