// The earlier versions of an edited message, in a small box under its
// "(edited)": opened by hovering it (closed when the pointer leaves) or by a
// click, tap or Enter (closed by another, Escape, or a click elsewhere).

import { byId, h } from './dom.js';
import { timeElement } from './text.js';

export class EditHistory {
  constructor() {
    this.root = byId('edit-history');
    this.list = byId('edit-history-list');
    this.status = byId('edit-history-status');
    /** @type {HTMLElement|null} the "(edited)" it belongs to */
    this.trigger = null;
    this.byHover = false;
    document.addEventListener('pointerdown', (event) => {
      if (!this.root.hidden && !this.root.contains(event.target) && event.target !== this.trigger) this.close(false);
    });
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && !this.root.hidden) {
        event.preventDefault();
        this.close(true);
      }
    });
    document.addEventListener('pointerout', (event) => {
      if (!this.byHover || this.root.hidden) return;
      const to = event.relatedTarget;
      if (to && (to === this.trigger || this.root.contains(to) || this.trigger?.contains(to))) return;
      if (event.target === this.trigger || this.root.contains(event.target)) this.close(false);
    });
  }

  /**
   * @param {HTMLElement} trigger the "(edited)" button
   * @param {() => Promise<Array<{body: string, at: string}>>} load the versions, oldest first
   * @param {boolean} byHover opened by the pointer resting on it
   */
  async toggle(trigger, load, byHover) {
    if (!this.root.hidden && this.trigger === trigger) {
      // A click on a box the hover opened keeps it open, now until closed.
      if (this.byHover && !byHover) this.byHover = false;
      else if (!byHover) this.close(true);
      return;
    }
    this.close(false);
    this.trigger = trigger;
    this.byHover = byHover;
    trigger.setAttribute('aria-expanded', 'true');
    trigger.setAttribute('aria-controls', this.root.id);
    this.list.replaceChildren();
    this.status.textContent = 'Loading…';
    this.root.hidden = false;
    this.place();
    let edits;
    try {
      edits = await load();
    } catch (error) {
      if (this.trigger === trigger) this.status.textContent = error.message;
      return;
    }
    if (this.trigger !== trigger) return;
    this.status.textContent = '';
    this.list.replaceChildren(
      ...edits.map((edit, index) =>
        h(
          'li',
          {},
          h(
            'p',
            { class: 'edit-when' },
            h('span', { text: index === 0 ? 'Original' : 'Edited' }),
            ' · ',
            timeElement(edit.at),
          ),
          h('p', { class: 'edit-body', dir: 'auto', text: edit.body }),
        ),
      ),
    );
    this.place();
  }

  /** Under the trigger, kept inside the window (CSSOM positions, which the CSP allows). */
  place() {
    const box = this.trigger.getBoundingClientRect();
    const own = this.root.getBoundingClientRect();
    const left = Math.max(8, Math.min(box.left, window.innerWidth - own.width - 8));
    let top = box.bottom + 4;
    if (top + own.height > window.innerHeight - 8) top = Math.max(8, box.top - own.height - 4);
    this.root.style.left = `${left}px`;
    this.root.style.top = `${top}px`;
  }

  close(restoreFocus) {
    if (this.root.hidden) return;
    this.root.hidden = true;
    const trigger = this.trigger;
    this.trigger = null;
    trigger?.setAttribute('aria-expanded', 'false');
    if (restoreFocus && trigger?.isConnected) trigger.focus();
  }
}
