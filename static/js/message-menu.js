// The menu of one message, opened by its "Message actions" button, a long
// press on touch screens, or the keyboard (the button is in the tab order).
// Items are a list of {label, run}, each shown only for the messages its
// `when` accepts; items sharing a `group` sit in one row (the quick
// reactions). Adding one never touches how the menu opens, moves or closes.

import { byId, h } from './dom.js';

export class MessageMenu {
  /**
   * @typedef {object} MenuItem
   * @property {string} label the visible text
   * @property {string} [name] the accessible name, when the text is not enough (an emoji)
   * @property {string} [group] the accessible name of the row it shares with its neighbours
   * @property {(li: HTMLElement) => boolean} [when] shown only for these messages
   * @property {(li: HTMLElement) => void} run
   * @param {MenuItem[]} items
   */
  constructor(items) {
    this.root = byId('message-menu');
    this.items = items;
    this.trigger = null;
    this.target = null;

    this.root.addEventListener('keydown', (event) => this.onKey(event));
    this.root.addEventListener('click', (event) => {
      const button = event.target.closest('[role="menuitem"]');
      if (!button) return;
      const item = this.items[Number(button.dataset.index)];
      const target = this.target;
      this.close(true);
      item.run(target);
    });
    document.addEventListener('pointerdown', (event) => {
      if (!this.root.hidden && !this.root.contains(event.target) && event.target !== this.trigger) this.close(false);
    });
    this.root.addEventListener('focusout', (event) => {
      if (!this.root.hidden && !this.root.contains(event.relatedTarget) && event.relatedTarget) this.close(false);
    });
  }

  /** Opens the menu for message `li`, next to `trigger` (its button). */
  open(li, trigger) {
    if (!this.root.hidden && this.target === li) {
      this.close(true);
      return;
    }
    this.close(false);
    this.target = li;
    this.trigger = trigger;
    this.root.replaceChildren(...this.render(li));
    this.root.hidden = false;
    trigger?.setAttribute('aria-expanded', 'true');
    li.classList.add('menu-open');
    this.place(trigger ?? li);
    this.root.querySelector('[role="menuitem"]')?.focus();
  }

  /** The items that apply to message `li`, consecutive items of one group in one row. */
  render(li) {
    const nodes = [];
    let row = null;
    this.items.forEach((item, index) => {
      if (item.when && !item.when(li)) return;
      const button = h('button', {
        type: 'button',
        role: 'menuitem',
        tabindex: '-1',
        class: item.group ? 'menu-chip' : null,
        'aria-label': item.name ?? null,
        title: item.name ?? null,
        'data-index': index,
        text: item.label,
      });
      if (!item.group) {
        row = null;
        nodes.push(button);
        return;
      }
      if (row?.getAttribute('aria-label') !== item.group) {
        row = h('div', { role: 'group', class: 'menu-row', 'aria-label': item.group });
        nodes.push(row);
      }
      row.append(button);
    });
    return nodes;
  }

  /** Puts the menu under its button, kept inside the window. Positions are CSSOM, which the CSP allows. */
  place(anchor) {
    const box = anchor.getBoundingClientRect();
    const menu = this.root.getBoundingClientRect();
    const left = Math.max(8, Math.min(box.right - menu.width, window.innerWidth - menu.width - 8));
    let top = box.bottom + 4;
    if (top + menu.height > window.innerHeight - 8) top = Math.max(8, box.top - menu.height - 4);
    this.root.style.left = `${left}px`;
    this.root.style.top = `${top}px`;
  }

  /** @param {boolean} restoreFocus back to the button that opened it */
  close(restoreFocus) {
    if (this.root.hidden) return;
    this.root.hidden = true;
    this.trigger?.setAttribute('aria-expanded', 'false');
    this.target?.classList.remove('menu-open');
    if (restoreFocus) (this.trigger?.isConnected ? this.trigger : this.target)?.focus();
    this.trigger = null;
    this.target = null;
  }

  onKey(event) {
    const entries = [...this.root.querySelectorAll('[role="menuitem"]')];
    const at = entries.indexOf(document.activeElement);
    const move = { ArrowDown: 1, ArrowUp: -1, ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (move) {
      event.preventDefault();
      entries[(at + move + entries.length) % entries.length]?.focus();
    } else if (event.key === 'Home' || event.key === 'End') {
      event.preventDefault();
      (event.key === 'Home' ? entries[0] : entries.at(-1))?.focus();
    } else if (event.key === 'Escape') {
      event.preventDefault();
      this.close(true);
    } else if (event.key === 'Tab') {
      this.close(true);
    }
  }
}
