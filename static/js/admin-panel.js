// The admin panel: for administrators only, opened from the account dialog.
// One dialog with tabs: accounts (search, disable, enable, administrator
// role, sign out everywhere, reset link, delete), invites and who may sign
// up, rooms, bots and their webhooks, and the server's health as small
// charts that fill while the panel is open. Every call goes to the admin
// API (docs/protocol.md, "Administration"); the server refuses anyone who
// is not an administrator, so hiding the entry is a courtesy, not the guard.
// Every error is shown in words, in the tab it happened in.

import { request } from './api.js';
import { closeOnOutsideClick, h, setMessage } from './dom.js';
import { whileBusy } from './forms.js';
import { Chart, percentileBetween } from './admin-charts.js';

const enc = encodeURIComponent;
const PAGE = 20;
const POLL_MS = 2000;

export const adminApi = {
  users: (q, offset) => request('GET', `/admin/users?${new URLSearchParams({ q, offset: String(offset), limit: String(PAGE) })}`),
  setDisabled: (id, disabled) => request('POST', `/users/${enc(id)}/${disabled ? 'disable' : 'enable'}`),
  setAdmin: (id, admin) => request('PUT', `/admin/users/${enc(id)}/admin`, { admin }),
  revokeSessions: (id) => request('DELETE', `/admin/users/${enc(id)}/sessions`),
  resetLink: (id) => request('POST', `/admin/users/${enc(id)}/reset-link`, {}),
  deleteUser: (id) => request('DELETE', `/admin/users/${enc(id)}`),
  invites: () => request('GET', '/admin/invites'),
  /** @param {{uses: number, valid_for_secs?: number, note?: string}} invite */
  createInvite: (invite) => request('POST', '/admin/invites', invite),
  revokeInvite: (id) => request('DELETE', `/admin/invites/${enc(id)}`),
  registration: () => request('GET', '/admin/registration'),
  /** @param {'open'|'invite'|'closed'|null} mode null: the config file's */
  setRegistration: (mode) => request('PUT', '/admin/registration', { mode }),
  rooms: () => request('GET', '/admin/rooms'),
  deleteRoom: (id) => request('DELETE', `/rooms/${enc(id)}`),
  stats: () => request('GET', '/admin/stats'),
  bots: () => request('GET', '/bots'),
  createBot: (username) => request('POST', '/bots', { username }),
  botToken: (id) => request('POST', `/bots/${enc(id)}/token`),
  botCallback: (id) => request('GET', `/bots/${enc(id)}/callback`),
  hooks: (roomId) => request('GET', `/rooms/${enc(roomId)}/hooks`),
};

const TABS = [
  ['users', 'Users'],
  ['invites', 'Invites and sign-up'],
  ['rooms', 'Rooms'],
  ['bots', 'Bots'],
  ['health', 'Health'],
];

const EXPIRY_CHOICES = [
  ['', 'Never'],
  [String(3600), '1 hour'],
  [String(24 * 3600), '1 day'],
  [String(7 * 24 * 3600), '7 days'],
  [String(30 * 24 * 3600), '30 days'],
];

const MODE_NAMES = { open: 'Open: anyone may sign up', invite: 'Invite only: with a code', closed: 'Closed: nobody signs up' };

function when(rfc3339) {
  if (!rfc3339) return 'never';
  const date = new Date(rfc3339);
  return Number.isNaN(date.getTime()) ? rfc3339 : date.toLocaleString();
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

function duration(secs) {
  const d = Math.floor(secs / 86400);
  const hours = Math.floor((secs % 86400) / 3600);
  const m = Math.floor((secs % 3600) / 60);
  if (d) return `${d} d ${hours} h`;
  if (hours) return `${hours} h ${m} min`;
  return `${m} min ${Math.floor(secs % 60)} s`;
}

/** A button whose accessible name starts with its visible text, then says what it acts on. */
function actionButton(text, about, onclick, cls = 'button small') {
  return h('button', { type: 'button', class: cls, 'aria-label': about ? `${text} ${about}` : null, onclick }, text);
}

/** A text field holding a link or token to copy, with its Copy button and a status line. */
function copyField(label, value, note) {
  const id = `admin-copy-${Math.random().toString(36).slice(2)}`;
  const input = h('input', { id, class: 'admin-copy-input', readonly: true, value, spellcheck: 'false' });
  const status = h('p', { class: 'muted small', role: 'status' });
  const copy = h('button', {
    type: 'button',
    class: 'button small',
    onclick: async () => {
      input.select();
      try {
        await navigator.clipboard.writeText(value);
        setMessage(status, 'Copied.');
      } catch {
        // Some browsers refuse the clipboard without a secure context.
        const done = document.execCommand?.('copy');
        setMessage(status, done ? 'Copied.' : 'Could not copy: the link is selected, copy it with Ctrl+C (or ⌘C).');
      }
    },
  }, 'Copy');
  return h(
    'div',
    { class: 'admin-copy' },
    h('label', { for: id, text: label }),
    h('div', { class: 'admin-copy-row' }, input, copy),
    note ? h('p', { class: 'hint', text: note }) : null,
    status,
  );
}

export class AdminPanel {
  /** @param {{me: () => object|null}} handlers */
  constructor({ me }) {
    this.me = me;
    this.dialog = null;
    this.tabs = new Map();
    this.loaded = new Set();
    this.pollTimer = null;
    this.lastStats = null;
    this.userQuery = '';
    this.userOffset = 0;
  }

  /** Shows the entry in the account dialog to administrators only. */
  attach(entry, button) {
    this.entry = entry;
    button.addEventListener('click', () => this.open());
  }

  /** Called with the signed-in user whenever it may have changed. */
  update(user) {
    if (this.entry) this.entry.hidden = !user?.admin;
    if (!user?.admin) this.close();
  }

  open() {
    if (!this.me()?.admin) return;
    this.build();
    if (!this.dialog.open) this.dialog.showModal();
    this.startPolling();
    this.select(this.current ?? 'users', true);
  }

  close() {
    this.stopPolling();
    if (this.dialog?.open) this.dialog.close();
  }

  build() {
    if (this.dialog) return;
    const tablist = h('div', { role: 'tablist', class: 'admin-tabs', 'aria-label': 'Administration sections' });
    this.dialog = h(
      'dialog',
      { class: 'dialog admin-dialog', id: 'admin-dialog', 'aria-labelledby': 'admin-title' },
      h(
        'div',
        { class: 'dialog-head' },
        h('h2', { id: 'admin-title', text: 'Administration' }),
        h('button', { type: 'button', class: 'icon-button', 'aria-label': 'Close administration', onclick: () => this.close() }, '✕'),
      ),
      tablist,
    );
    for (const [key, label] of TABS) {
      const tab = h('button', {
        type: 'button',
        role: 'tab',
        id: `admin-tab-${key}`,
        class: 'admin-tab',
        'aria-controls': `admin-section-${key}`,
        'aria-selected': 'false',
        tabindex: '-1',
        onclick: () => this.select(key, true),
      }, label);
      const panel = h('section', { role: 'tabpanel', id: `admin-section-${key}`, class: 'admin-section', 'aria-labelledby': `admin-tab-${key}`, tabindex: '0', hidden: true });
      panel.status = h('p', { class: 'muted small admin-status', role: 'status' });
      panel.error = h('p', { class: 'form-error', role: 'alert', hidden: true });
      tablist.append(tab);
      this.dialog.append(panel);
      this.tabs.set(key, { tab, panel });
    }
    // Arrow keys move between tabs (the tab list is one stop for Tab).
    tablist.addEventListener('keydown', (event) => {
      const keys = [...this.tabs.keys()];
      const at = keys.indexOf(this.current);
      let next = null;
      if (event.key === 'ArrowRight' || event.key === 'ArrowDown') next = keys[(at + 1) % keys.length];
      else if (event.key === 'ArrowLeft' || event.key === 'ArrowUp') next = keys[(at - 1 + keys.length) % keys.length];
      else if (event.key === 'Home') next = keys[0];
      else if (event.key === 'End') next = keys.at(-1);
      if (next == null) return;
      event.preventDefault();
      this.select(next, false);
      this.tabs.get(next).tab.focus();
    });
    this.dialog.addEventListener('close', () => this.stopPolling());
    closeOnOutsideClick(this.dialog);
    this.confirmDialog = this.buildConfirm();
    this.buildUsers(this.tabs.get('users').panel);
    this.buildInvites(this.tabs.get('invites').panel);
    this.buildRooms(this.tabs.get('rooms').panel);
    this.buildBots(this.tabs.get('bots').panel);
    this.buildHealth(this.tabs.get('health').panel);
    document.body.append(this.dialog, this.confirmDialog);
  }

  /** Shows one tab's section; each loads when first shown and again when chosen anew. */
  select(key, reload) {
    this.current = key;
    for (const [k, { tab, panel }] of this.tabs) {
      const on = k === key;
      tab.setAttribute('aria-selected', String(on));
      tab.tabIndex = on ? 0 : -1;
      panel.hidden = !on;
    }
    if (reload || !this.loaded.has(key)) {
      this.loaded.add(key);
      this.load(key);
    }
  }

  load(key) {
    if (key === 'users') return this.loadUsers();
    if (key === 'invites') return this.loadInvites();
    if (key === 'rooms') return this.loadRooms();
    if (key === 'bots') return this.loadBots();
    return null;
  }

  /** Runs an admin call for a tab: its error shown there in words, its outcome announced. */
  async run(key, action, done) {
    const { panel } = this.tabs.get(key);
    setMessage(panel.error, '');
    try {
      const result = await action();
      if (done) setMessage(panel.status, typeof done === 'function' ? done(result) : done);
      return result;
    } catch (error) {
      setMessage(panel.error, error.message || String(error));
      return undefined;
    }
  }

  buildConfirm() {
    const title = h('h2', { id: 'admin-confirm-title', class: 'dialog-title', dir: 'auto' });
    const text = h('p', { id: 'admin-confirm-text', dir: 'auto' });
    const ok = h('button', { type: 'submit', value: 'confirm', class: 'button danger' });
    const dialog = h(
      'dialog',
      { class: 'dialog', id: 'admin-confirm', role: 'alertdialog', 'aria-labelledby': 'admin-confirm-title', 'aria-describedby': 'admin-confirm-text' },
      h('form', { method: 'dialog', class: 'stack' }, title, text, h('div', { class: 'dialog-actions' }, h('button', { type: 'submit', value: 'cancel', class: 'button subtle', autofocus: true }, 'Cancel'), ok)),
    );
    dialog.ask = (heading, sentence, action) =>
      new Promise((resolve) => {
        title.textContent = heading;
        text.textContent = sentence;
        ok.textContent = action;
        dialog.returnValue = '';
        dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true });
        dialog.showModal();
      });
    return dialog;
  }

  // ---- Users ---------------------------------------------------------------

  buildUsers(panel) {
    const input = h('input', { id: 'admin-user-q', type: 'search', autocomplete: 'off', spellcheck: 'false' });
    this.userList = h('ul', { class: 'admin-list', 'aria-label': 'Accounts' });
    this.userPrev = h('button', { type: 'button', class: 'button small', onclick: () => this.pageUsers(-1) }, 'Previous page');
    this.userNext = h('button', { type: 'button', class: 'button small', onclick: () => this.pageUsers(1) }, 'Next page');
    const form = h(
      'form',
      {
        class: 'admin-search',
        role: 'search',
        onsubmit: (event) => {
          event.preventDefault();
          this.userQuery = input.value.trim();
          this.userOffset = 0;
          this.loadUsers();
        },
      },
      h('label', { for: 'admin-user-q', text: 'Search accounts by name or email' }),
      h('div', { class: 'admin-copy-row' }, input, h('button', { type: 'submit', class: 'button' }, 'Search')),
    );
    panel.append(form, panel.error, panel.status, this.userList, h('div', { class: 'admin-pager' }, this.userPrev, this.userNext));
  }

  pageUsers(direction) {
    this.userOffset = Math.max(0, this.userOffset + direction * PAGE);
    this.loadUsers();
  }

  async loadUsers() {
    const page = await this.run('users', () => adminApi.users(this.userQuery, this.userOffset));
    if (!page) return;
    const { panel } = this.tabs.get('users');
    const first = page.users.length ? this.userOffset + 1 : 0;
    const last = this.userOffset + page.users.length;
    setMessage(panel.status, page.total === 0 ? 'No account matches.' : `Accounts ${first}–${last} of ${page.total}.`);
    this.userPrev.hidden = this.userOffset === 0;
    this.userNext.hidden = page.next_offset == null;
    this.userList.replaceChildren(...page.users.map((u) => this.userItem(u)));
  }

  userItem(u) {
    const self = u.id === this.me()?.id;
    const tags = [
      u.admin && 'administrator',
      u.disabled && 'disabled',
      u.bot && 'bot',
      `${u.sessions} session${u.sessions === 1 ? '' : 's'}`,
      self && 'you',
    ].filter(Boolean);
    const result = h('div', { class: 'admin-result' });
    const name = u.username;
    const act = (text, action, done) => actionButton(text, name, () => this.userAction(action, done));
    const actions = [];
    if (!self) {
      actions.push(
        u.disabled
          ? act('Enable', () => adminApi.setDisabled(u.id, false), `${name} is enabled.`)
          : act('Disable', () => adminApi.setDisabled(u.id, true), `${name} is disabled and signed out.`),
      );
      if (!u.bot) {
        actions.push(
          u.admin
            ? act('Remove administrator', () => adminApi.setAdmin(u.id, false), `${name} is no longer an administrator.`)
            : act('Make administrator', () => adminApi.setAdmin(u.id, true), `${name} is an administrator.`),
        );
      }
    }
    actions.push(act('Sign out everywhere', () => adminApi.revokeSessions(u.id), (r) => `Ended ${r.revoked} session(s) of ${name}.`));
    if (!u.bot) {
      actions.push(
        actionButton('Reset link', name, async () => {
          const link = await this.run('users', () => adminApi.resetLink(u.id), `A reset link for ${name} is ready below.`);
          if (!link) return;
          const url = new URL(link.path, location.origin).href;
          result.replaceChildren(copyField(`Password reset link for ${name}`, url, `Works once, until ${when(link.expires_at)}. Shown only now: send it to ${name} yourself.`));
          result.querySelector('input').focus();
        }),
      );
    }
    if (!self) {
      actions.push(
        actionButton('Delete…', name, async () => {
          const yes = await this.confirmDialog.ask(`Delete ${name}?`, `${name} is signed out, leaves every room and cannot log in again; their messages stay, shown as from a deleted user. This cannot be undone.`, 'Delete account');
          if (yes) await this.userAction(() => adminApi.deleteUser(u.id), `${name} is deleted.`);
        }, 'button small danger'),
      );
    }
    return h(
      'li',
      { class: 'admin-item' },
      h('div', { class: 'admin-item-main' }, h('strong', { dir: 'auto', text: name }), h('span', { class: 'muted small', dir: 'auto', text: u.email || '(no email)' }), h('span', { class: 'admin-tags small', text: tags.join(' · ') })),
      h('div', { class: 'admin-actions', role: 'group', 'aria-label': `Actions for ${name}` }, actions),
      result,
    );
  }

  async userAction(action, done) {
    const ok = await this.run('users', action, done);
    if (ok !== undefined) {
      const status = this.tabs.get('users').panel.status.textContent;
      await this.loadUsers();
      // The list's count line must not drown the outcome.
      setMessage(this.tabs.get('users').panel.status, status);
    }
  }

  // ---- Invites and sign-up -------------------------------------------------

  buildInvites(panel) {
    this.modeNow = h('p', { class: 'small', id: 'admin-mode-now' });
    const radios = ['open', 'invite', 'closed', 'default'].map((mode) =>
      h('label', { class: 'admin-radio' }, h('input', { type: 'radio', name: 'admin-mode', value: mode }), h('span', { class: 'admin-mode-label', 'data-mode': mode, text: MODE_NAMES[mode] ?? "The config file's setting" })),
    );
    this.modeForm = h(
      'form',
      {
        class: 'stack',
        onsubmit: (event) => {
          event.preventDefault();
          const chosen = this.modeForm.querySelector('input[name="admin-mode"]:checked')?.value;
          if (!chosen) return;
          whileBusy(this.modeForm, async () => {
            const setting = await this.run('invites', () => adminApi.setRegistration(chosen === 'default' ? null : chosen), (s) => `Sign-up is now ${s.mode}.`);
            if (setting) this.showMode(setting);
          });
        },
      },
      h('fieldset', { class: 'admin-fieldset' }, h('legend', { text: 'Who may sign up' }), this.modeNow, radios),
      h('button', { type: 'submit', class: 'button' }, 'Save sign-up mode'),
    );

    const uses = h('input', { id: 'admin-invite-uses', type: 'number', min: '1', max: '100000', value: '1', required: true, inputmode: 'numeric' });
    const expiry = h('select', { id: 'admin-invite-expiry' }, EXPIRY_CHOICES.map(([v, t]) => h('option', { value: v, text: t })));
    const note = h('input', { id: 'admin-invite-note', maxlength: '200', autocomplete: 'off' });
    this.inviteResult = h('div', { class: 'admin-result' });
    const form = h(
      'form',
      {
        class: 'stack',
        novalidate: true,
        onsubmit: (event) => {
          event.preventDefault();
          const n = Number(uses.value);
          if (!Number.isInteger(n) || n < 1) {
            setMessage(panel.error, 'Number of uses: give a whole number, at least 1.');
            uses.focus();
            return;
          }
          whileBusy(form, async () => {
            const body = { uses: n, note: note.value.trim() };
            if (expiry.value) body.valid_for_secs = Number(expiry.value);
            const made = await this.run('invites', () => adminApi.createInvite(body), 'Invite made; its link is below.');
            if (!made) return;
            const url = new URL(made.path, location.origin).href;
            this.inviteResult.replaceChildren(copyField('Invite link', url, `Good for ${made.uses_left} sign-up(s), ${made.expires_at ? `until ${when(made.expires_at)}` : 'with no expiry'}. Shown only now.`));
            form.reset();
            await this.loadInviteList();
            this.inviteResult.querySelector('input').focus();
          });
        },
      },
      h('h3', { class: 'section-heading', text: 'New invite' }),
      h('div', { class: 'admin-fields' },
        h('div', { class: 'field' }, h('label', { for: 'admin-invite-uses', text: 'Number of uses' }), uses),
        h('div', { class: 'field' }, h('label', { for: 'admin-invite-expiry', text: 'Expires after' }), expiry),
        h('div', { class: 'field' }, h('label', { for: 'admin-invite-note', text: 'Note (who it is for)' }), note)),
      h('button', { type: 'submit', class: 'button primary' }, 'Create invite'),
    );
    this.inviteList = h('ul', { class: 'admin-list', 'aria-label': 'Invites' });
    panel.append(panel.error, panel.status, this.modeForm, form, this.inviteResult, h('h3', { class: 'section-heading', text: 'Invites' }), this.inviteList);
  }

  showMode(setting) {
    const source = setting.source === 'admin' ? 'chosen by an administrator' : "from the server's config file";
    this.modeNow.textContent = `Now: ${MODE_NAMES[setting.mode]} (${source}; the config file says ${setting.config}).`;
    const value = setting.source === 'admin' ? setting.mode : 'default';
    for (const input of this.modeForm.querySelectorAll('input[name="admin-mode"]')) input.checked = input.value === value;
    const label = this.modeForm.querySelector('[data-mode="default"]');
    label.textContent = `The config file's setting (${setting.config})`;
  }

  async loadInvites() {
    const setting = await this.run('invites', () => adminApi.registration());
    if (setting) this.showMode(setting);
    await this.loadInviteList();
  }

  async loadInviteList() {
    const data = await this.run('invites', () => adminApi.invites());
    if (!data) return;
    if (!data.invites.length) {
      this.inviteList.replaceChildren(h('li', { class: 'muted small', text: 'No invites.' }));
      return;
    }
    this.inviteList.replaceChildren(
      ...data.invites.map((invite) => {
        const label = invite.note || `Invite ${invite.id.slice(0, 8)}`;
        const state = invite.spent ? 'used up or expired' : `${invite.uses_left} use(s) left`;
        return h(
          'li',
          { class: 'admin-item' },
          h('div', { class: 'admin-item-main' }, h('strong', { dir: 'auto', text: label }), h('span', { class: 'muted small', text: `${state} · expires ${when(invite.expires_at)} · made ${when(invite.created_at)}` })),
          h('div', { class: 'admin-actions' }, actionButton('Revoke', label, async () => {
            const ok = await this.run('invites', () => adminApi.revokeInvite(invite.id), `${label} is revoked.`);
            if (ok !== undefined) await this.loadInviteList();
          }, 'button small danger')),
        );
      }),
    );
  }

  // ---- Rooms ---------------------------------------------------------------

  buildRooms(panel) {
    this.roomList = h('ul', { class: 'admin-list', 'aria-label': 'Rooms' });
    panel.append(h('p', { class: 'muted small', text: 'Public rooms and the rooms you are in, most recently active first.' }), h('button', { type: 'button', class: 'button small', onclick: () => this.loadRooms() }, 'Refresh'), panel.error, panel.status, this.roomList);
  }

  async loadRooms() {
    const data = await this.run('rooms', () => adminApi.rooms());
    if (!data) return;
    this.roomsSeen = data.rooms;
    this.fillHookRooms();
    if (!data.rooms.length) {
      this.roomList.replaceChildren(h('li', { class: 'muted small', text: 'No rooms.' }));
      return;
    }
    this.roomList.replaceChildren(
      ...data.rooms.map((room) =>
        h(
          'li',
          { class: 'admin-item' },
          h('div', { class: 'admin-item-main' }, h('strong', { dir: 'auto', text: room.name }), h('span', { class: 'muted small', text: `${room.visibility} · ${room.members} member(s) · ${room.messages} event(s) · last active ${room.last_activity ? when(room.last_activity) : 'never'}` })),
          h('div', { class: 'admin-actions' }, actionButton('Delete…', room.name, async () => {
            const yes = await this.confirmDialog.ask(`Delete ${room.name}?`, `The room and all its messages are removed for everyone; its ${room.members} member(s) are told. This cannot be undone.`, 'Delete room');
            if (!yes) return;
            const ok = await this.run('rooms', () => adminApi.deleteRoom(room.id), `${room.name} is deleted.`);
            if (ok !== undefined) await this.loadRooms();
          }, 'button small danger')),
        ),
      ),
    );
  }

  // ---- Bots and webhooks ---------------------------------------------------

  buildBots(panel) {
    const name = h('input', { id: 'admin-bot-name', autocomplete: 'off', spellcheck: 'false', required: true });
    this.botResult = h('div', { class: 'admin-result' });
    const form = h(
      'form',
      {
        class: 'stack',
        novalidate: true,
        onsubmit: (event) => {
          event.preventDefault();
          const username = name.value.trim();
          if (!username) {
            setMessage(panel.error, 'Give the bot a username.');
            name.focus();
            return;
          }
          whileBusy(form, async () => {
            const made = await this.run('bots', () => adminApi.createBot(username), `Bot ${username} is made; its token is below.`);
            if (!made) return;
            this.showToken(made.user.username, made.token);
            form.reset();
            await this.loadBotList();
          });
        },
      },
      h('h3', { class: 'section-heading', text: 'New bot' }),
      h('div', { class: 'field' }, h('label', { for: 'admin-bot-name', text: 'Bot username' }), name),
      h('button', { type: 'submit', class: 'button primary' }, 'Create bot'),
    );
    this.botList = h('ul', { class: 'admin-list', 'aria-label': 'Bots' });
    this.hookRoom = h('select', { id: 'admin-hook-room' });
    this.hookList = h('ul', { class: 'admin-list', 'aria-label': 'Webhooks of the chosen room' });
    const hookForm = h(
      'form',
      {
        class: 'stack',
        onsubmit: (event) => {
          event.preventDefault();
          this.loadHooks();
        },
      },
      h('h3', { class: 'section-heading', text: "A room's incoming webhooks" }),
      h('div', { class: 'field' }, h('label', { for: 'admin-hook-room', text: 'Room' }), h('div', { class: 'admin-copy-row' }, this.hookRoom, h('button', { type: 'submit', class: 'button' }, 'Show webhooks'))),
    );
    panel.append(panel.error, panel.status, form, this.botResult, h('h3', { class: 'section-heading', text: 'Bots' }), this.botList, hookForm, this.hookList);
  }

  showToken(name, token) {
    this.botResult.replaceChildren(copyField(`Token of ${name}`, token, 'Shown only now. The bot sends it as "Authorization: Bearer TOKEN".'));
    this.botResult.querySelector('input').focus();
  }

  async loadBots() {
    await this.loadBotList();
    if (!this.roomsSeen) {
      const data = await this.run('bots', () => adminApi.rooms());
      if (data) this.roomsSeen = data.rooms;
    }
    this.fillHookRooms();
  }

  fillHookRooms() {
    if (!this.hookRoom) return;
    const rooms = (this.roomsSeen ?? []).filter((r) => r.visibility !== 'direct');
    this.hookRoom.replaceChildren(...rooms.map((r) => h('option', { value: r.id, text: r.name })));
  }

  async loadBotList() {
    const data = await this.run('bots', () => adminApi.bots());
    if (!data) return;
    if (!data.bots.length) {
      this.botList.replaceChildren(h('li', { class: 'muted small', text: 'No bots.' }));
      return;
    }
    this.botList.replaceChildren(
      ...data.bots.map((bot) => {
        const callback = h('span', { class: 'muted small', text: 'Callback: checking…' });
        adminApi.botCallback(bot.id).then(
          ({ callback: c }) => {
            callback.textContent = c ? `Callback: ${c.url} (${c.all ? 'every message' : 'mentions'})${c.parked ? ' · parked: deliveries failed, set it again to resume' : ' · delivering'}` : 'No callback.';
          },
          (error) => {
            callback.textContent = `Callback: could not be read (${error.message})`;
          },
        );
        return h(
          'li',
          { class: 'admin-item' },
          h('div', { class: 'admin-item-main' }, h('strong', { dir: 'auto', text: bot.display_name ? `${bot.display_name} (${bot.username})` : bot.username }), callback),
          h('div', { class: 'admin-actions' }, actionButton('New token…', bot.username, async () => {
            const yes = await this.confirmDialog.ask(`New token for ${bot.username}?`, 'The current token stops working at once; the program using it must be given the new one.', 'Make a new token');
            if (!yes) return;
            const made = await this.run('bots', () => adminApi.botToken(bot.id), `${bot.username} has a new token; it is below.`);
            if (made) this.showToken(bot.username, made.token);
          })),
        );
      }),
    );
  }

  async loadHooks() {
    const roomId = this.hookRoom.value;
    if (!roomId) {
      setMessage(this.tabs.get('bots').panel.error, 'There is no room to choose.');
      return;
    }
    const data = await this.run('bots', () => adminApi.hooks(roomId));
    if (!data) return;
    const name = this.hookRoom.selectedOptions[0]?.textContent ?? '';
    if (!data.hooks.length) {
      this.hookList.replaceChildren(h('li', { class: 'muted small', text: `${name} has no webhooks.` }));
      return;
    }
    this.hookList.replaceChildren(
      ...data.hooks.map((hook) => h('li', { class: 'admin-item' }, h('div', { class: 'admin-item-main' }, h('strong', { dir: 'auto', text: hook.name }), h('span', { class: 'muted small', text: `posts as ${hook.user?.username ?? 'its bot'} · made ${when(hook.created_at)}` })))),
    );
  }

  // ---- Health --------------------------------------------------------------

  buildHealth(panel) {
    this.charts = {
      connections: new Chart('Connections', (v) => `${Math.round(v)}`),
      rate: new Chart('Messages per second', (v) => v.toFixed(v < 10 ? 1 : 0)),
      ack: new Chart('p99 ack latency', (v) => `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`),
      sessions: new Chart('Sessions', (v) => `${Math.round(v)}`),
      rooms: new Chart('Rooms', (v) => `${Math.round(v)}`),
      disk: new Chart('Store size', bytes),
    };
    this.healthLine = h('p', { class: 'small', id: 'admin-health-line' });
    panel.append(
      h('p', { class: 'muted small', text: `Read every ${POLL_MS / 1000} s while this panel is open.` }),
      this.healthLine,
      panel.error,
      h('div', { class: 'admin-charts' }, Object.values(this.charts).map((c) => c.element)),
    );
  }

  startPolling() {
    if (this.pollTimer) return;
    this.poll();
    this.pollTimer = setInterval(() => this.poll(), POLL_MS);
  }

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
    this.lastStats = null;
  }

  async poll() {
    const stats = await this.run('health', () => adminApi.stats());
    if (!stats || !this.pollTimer) return;
    const before = this.lastStats;
    this.lastStats = stats;
    this.healthLine.textContent = `Up for ${duration(stats.uptime_secs)} · storage ${stats.storage_ok ? 'takes writes' : 'REFUSES WRITES'} · ${stats.users} account(s) · ${stats.http_connections} HTTP connection(s)`;
    this.charts.connections.push(stats.websockets);
    this.charts.sessions.push(stats.sessions);
    this.charts.rooms.push(stats.rooms);
    this.charts.disk.push(stats.disk_bytes);
    if (before) {
      const secs = (stats.at - before.at) / 1000;
      this.charts.rate.push(secs > 0 ? (stats.messages_stored - before.messages_stored) / secs : null);
      const p99 = percentileBetween(before.ack_latency, stats.ack_latency, 0.99);
      // No message in the interval: nothing to measure, so no point.
      this.charts.ack.push(p99 == null ? null : p99 * 1000);
    }
  }
}
