// Choosing people, in a dialog: for a new direct conversation, or to add to a
// room. Typing searches accounts by name (debounced: the server allows a few
// searches a second); matches are an ARIA listbox driven from the box, and the
// chosen are removable chips. The caller says what "Start" does.

import { api } from './api.js';
import { avatarFor, avatars } from './avatars.js';
import { byId, closeOnOutsideClick, h, setMessage } from './dom.js';

const SEARCH_DELAY_MS = 250;
const RESULTS = 8;
export const MAX_PEOPLE = 8;

/** A sentence a person can act on, for the errors these dialogs can meet. */
export function peopleError(error) {
  switch (error?.code) {
    case 'direct_room':
      return 'A direct conversation cannot be joined, left or added to. Start a new one with everyone instead.';
    case 'forbidden':
      return 'Only the room’s owner, its moderators or an administrator can add people to it.';
    case 'banned':
      return 'That person is banned from this room. Lift the ban first.';
    case 'user_not_found':
      return 'That account no longer exists. Remove it and try again.';
    case 'rate_limited':
      return 'Too many searches at once. Wait a moment, then type again.';
    case 'invalid_direct':
      return 'Pick 1 to 8 people, other than yourself, whose accounts are active.';
    default:
      return error?.message ?? 'Something went wrong.';
  }
}

export class PeoplePicker {
  /** @param {{me: () => object|null}} options who is choosing (never offered) */
  constructor({ me }) {
    this.me = me;
    this.dialog = byId('people-dialog');
    this.form = byId('people-form');
    this.title = byId('people-title');
    this.input = byId('people-search');
    this.results = byId('people-results');
    this.chosenList = byId('people-chosen');
    this.status = byId('people-status');
    this.error = byId('people-error');
    this.submit = byId('people-submit');
    /** @type {{id: string, username: string}[]} */
    this.chosen = [];
    /** @type {{id: string, username: string, online?: boolean}[]} */
    this.matches = [];
    this.active = -1;
    this.timer = null;
    /** Bumped per search, so a slow answer to an older query is dropped. */
    this.searchId = 0;
    this.options = null;
    this.returnTo = null;

    this.input.addEventListener('input', () => this.scheduleSearch());
    this.input.addEventListener('keydown', (event) => this.onKey(event));
    this.results.addEventListener('click', (event) => {
      const option = event.target.closest('[role="option"]');
      if (option) this.pick(this.matches[Number(option.dataset.index)]);
    });
    this.chosenList.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-user]');
      if (button) this.unpick(button.dataset.user);
    });
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.finish();
    });
    byId('people-close').addEventListener('click', () => this.dialog.close());
    byId('people-cancel').addEventListener('click', () => this.dialog.close());
    this.dialog.addEventListener('close', () => {
      clearTimeout(this.timer);
      this.searchId += 1;
      const back = this.returnTo;
      this.returnTo = null;
      if (back?.isConnected) back.focus();
    });
    closeOnOutsideClick(this.dialog);
  }

  /**
   * @param {object} options
   * @param {string} options.title the dialog's heading
   * @param {string} options.action the submit button's label
   * @param {Set<string>} [options.exclude] ids not to offer (already in the room)
   * @param {(people: {id: string, username: string}[]) => Promise<boolean>} options.run
   *   does the work and says whether it moved focus itself (into a room it
   *   opened); a rejection is shown in the dialog, which stays open
   * @param {HTMLElement} [returnTo] where focus goes when the dialog closes
   */
  open(options, returnTo = document.activeElement) {
    this.options = options;
    this.returnTo = returnTo;
    this.title.textContent = options.title;
    this.submit.textContent = options.action;
    this.chosen = [];
    this.input.value = '';
    this.showMatches([]);
    this.renderChosen();
    this.status.textContent = '';
    setMessage(this.error, '');
    if (!this.dialog.open) this.dialog.showModal();
    this.input.focus();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  scheduleSearch() {
    clearTimeout(this.timer);
    const query = this.input.value.trim();
    if (!query) {
      this.searchId += 1;
      this.showMatches([]);
      this.status.textContent = '';
      return;
    }
    this.timer = setTimeout(() => this.search(query), SEARCH_DELAY_MS);
  }

  async search(query) {
    const id = ++this.searchId;
    try {
      // One more than shown, since this person may be among the matches.
      const { users } = await api.users(query, RESULTS + 1);
      avatars.learn(users);
      if (id !== this.searchId) return;
      setMessage(this.error, '');
      const hidden = new Set([this.me()?.id, ...(this.options?.exclude ?? [])]);
      const found = users.filter((user) => !hidden.has(user.id)).slice(0, RESULTS);
      this.showMatches(found);
      this.status.textContent = found.length
        ? `${found.length === 1 ? '1 person matches' : `${found.length} people match`}.`
        : `Nobody found whose name starts with “${query}”.`;
    } catch (error) {
      if (id !== this.searchId) return;
      this.showMatches([]);
      setMessage(this.error, peopleError(error));
    }
  }

  showMatches(matches) {
    this.matches = matches;
    this.active = matches.length ? 0 : -1;
    this.renderMatches();
  }

  renderMatches() {
    const chosen = new Set(this.chosen.map((person) => person.id));
    this.results.replaceChildren(
      ...this.matches.map((user, index) =>
        h(
          'li',
          {
            id: `people-option-${index}`,
            role: 'option',
            class: 'people-option',
            'aria-selected': String(index === this.active),
            'data-index': index,
          },
          avatarFor(user),
          h('span', { class: 'people-name', dir: 'auto', text: user.username }),
          user.online ? h('span', { class: 'muted small', text: 'online' }) : null,
          chosen.has(user.id) ? h('span', { class: 'muted small', text: 'chosen' }) : null,
        ),
      ),
    );
    this.input.setAttribute('aria-expanded', String(this.matches.length > 0));
    if (this.active >= 0) {
      this.input.setAttribute('aria-activedescendant', `people-option-${this.active}`);
      byId(`people-option-${this.active}`).scrollIntoView({ block: 'nearest' });
    } else {
      this.input.removeAttribute('aria-activedescendant');
    }
  }

  onKey(event) {
    const move = { ArrowDown: 1, ArrowUp: -1 }[event.key];
    if (move && this.matches.length) {
      event.preventDefault();
      this.active = (this.active + move + this.matches.length) % this.matches.length;
      this.renderMatches();
    } else if (event.key === 'Enter' && this.active >= 0) {
      // Enter picks the highlighted match; with none, it submits the form.
      event.preventDefault();
      this.pick(this.matches[this.active]);
    } else if (event.key === 'Backspace' && !this.input.value && this.chosen.length) {
      this.unpick(this.chosen.at(-1).id);
    }
  }

  pick(user) {
    if (!user) return;
    setMessage(this.error, '');
    if (!this.chosen.some((person) => person.id === user.id)) {
      if (this.chosen.length >= MAX_PEOPLE) {
        setMessage(this.error, `At most ${MAX_PEOPLE} people at a time.`);
        return;
      }
      this.chosen.push({ id: user.id, username: user.username });
    }
    this.input.value = '';
    this.searchId += 1;
    this.showMatches([]);
    this.renderChosen();
    this.status.textContent = `${user.username} chosen.`;
    this.input.focus();
  }

  unpick(id) {
    const person = this.chosen.find((p) => p.id === id);
    this.chosen = this.chosen.filter((p) => p.id !== id);
    this.renderChosen();
    if (person) this.status.textContent = `${person.username} removed.`;
    this.input.focus();
  }

  renderChosen() {
    this.chosenList.replaceChildren(
      ...this.chosen.map((person) =>
        h(
          'li',
          { class: 'chip' },
          h('span', { dir: 'auto', text: person.username }),
          h(
            'button',
            {
              type: 'button',
              class: 'chip-remove',
              'data-user': person.id,
              'aria-label': `Remove ${person.username}`,
              title: `Remove ${person.username}`,
            },
            h('span', { 'aria-hidden': 'true', text: '×' }),
          ),
        ),
      ),
    );
    this.chosenList.hidden = this.chosen.length === 0;
  }

  async finish() {
    if (!this.chosen.length) {
      setMessage(this.error, 'Choose at least one person first.');
      this.input.focus();
      return;
    }
    if (this.submit.getAttribute('aria-busy') === 'true') return;
    setMessage(this.error, '');
    this.submit.setAttribute('aria-busy', 'true');
    try {
      if (await this.options.run([...this.chosen])) this.returnTo = null;
      this.close();
    } catch (error) {
      setMessage(this.error, peopleError(error));
    } finally {
      this.submit.removeAttribute('aria-busy');
    }
  }
}
