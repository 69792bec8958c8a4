// The room's details dialog, opened from the title or Members: the whole
// name, whether the room is public, private or direct, the topic, and the
// members with who is online and their roles. A room's owner and moderators
// (and administrators, who act as owners) also rename it, change its topic,
// add people, remove them, ban and unban; its owner names moderators. What
// this person may do is learnt from the member list (rooms do not say); the
// server checks everything again, and its refusals are shown as sentences.

import { api } from './api.js';
import { avatarFor, avatars } from './avatars.js';
import { bots, botTag } from './bots.js';
import { byId, closeOnOutsideClick, h, setMessage } from './dom.js';
import { levelOf } from './notify.js';
import { clearErrors, setFieldError } from './forms.js';

const ROLE_NAMES = { owner: 'Owner', moderator: 'Moderator' };

/** A sentence a person can act on, for what managing a room can meet. */
export function manageError(error, doing = '') {
  switch (error?.code) {
    case 'forbidden':
      return doing === 'role'
        ? 'Only the room’s owner or an administrator can change roles.'
        : doing === 'settings'
          ? 'Only the room’s owner or its moderators can change its name and topic.'
          : 'Only the room’s owner or its moderators can do that (and only the owner can remove a moderator).';
    case 'banned':
      return 'That person is banned from this room. Lift the ban first.';
    case 'direct_room':
      return 'A direct conversation has no owner: nobody can be added to it, removed or banned.';
    case 'user_not_found':
      return 'That account no longer exists, or is not in the room any more.';
    case 'room_not_found':
    case 'not_a_member':
      return 'You are not in this room any more.';
    case 'room_name_taken':
      return 'Another public room already has that name. Choose another.';
    case 'invalid_room_name':
      return 'A name is 1 to 64 characters, without control characters.';
    case 'invalid_topic':
      return 'A topic is at most 256 characters, without control characters.';
    case 'rate_limited':
      return 'Too many changes at once. Wait a moment, then try again.';
    default:
      return error?.message ?? 'Something went wrong.';
  }
}

/** A sentence for what managing webhooks can meet. */
export function hookError(error) {
  switch (error?.code) {
    case 'too_many_hooks':
      return 'This room already has 20 webhooks, the most it can have. Revoke one first.';
    case 'invalid_profile':
      return 'A webhook’s name is 1 to 64 characters, without control characters.';
    case 'hook_not_found':
      return 'That webhook was already revoked.';
    case 'forbidden':
      return 'Only the room’s owner or its moderators can manage its webhooks.';
    default:
      return manageError(error);
  }
}

/** What the dialog says of a room's visibility. */
export function visibilityText(entry) {
  if (entry.direct) return 'Direct conversation · only the people in it see it';
  if (entry.private) return 'Private room · hidden from everyone else; people join only when added';
  return 'Public room · anyone on this server can find and join it';
}

export class RoomDetails {
  /**
   * @param {object} options
   * @param {import('./store.js').Store} options.store
   * @param {import('./presence.js').Presence} options.presence
   * @param {(entry: object, members: object[]) => void} options.onMembers a fresh member list (roles, count)
   * @param {(room: object) => void} options.onRoomChanged the room as the server now has it
   * @param {(confirm: {title: string, text: string, action: string}) => Promise<boolean>} options.confirm
   */
  constructor({ store, presence, notifier, onMembers, onRoomChanged, confirm }) {
    this.store = store;
    this.notifier = notifier;
    this.notifyLevel = byId('notify-level');
    this.notifyLevel.addEventListener('change', () => this.saveNotifyLevel());
    this.presence = presence;
    this.onMembers = onMembers;
    this.onRoomChanged = onRoomChanged;
    this.confirm = confirm;
    this.dialog = byId('members-dialog');
    this.list = byId('members-list');
    this.status = byId('members-status');
    this.error = byId('members-error');
    this.settingsToggle = byId('settings-toggle');
    this.settingsForm = byId('room-settings-form');
    this.nameInput = byId('settings-name');
    this.topicInput = byId('settings-topic');
    this.settingsError = byId('settings-error');
    this.bansSection = byId('bans-section');
    this.hooksSection = byId('hooks-section');
    this.hookForm = byId('hook-form');
    this.hookName = byId('hook-name');
    this.hookCreated = byId('hook-created');
    /** @type {object[]} the members as last fetched */
    this.members = [];
    /** Whose actions are unfolded (user id), kept across re-renders. */
    this.expanded = null;
    /** Bumped per fetch, so an older answer never overwrites a newer one. */
    this.loadId = 0;
    /** A line saying what was just done, kept while the list reloads. */
    this.done = '';

    byId('members-close').addEventListener('click', () => this.dialog.close());
    closeOnOutsideClick(this.dialog);
    this.dialog.addEventListener('close', () => {
      this.expanded = null;
      this.showSettings(false, false);
      // A webhook's address is shown once: gone with the dialog.
      this.forgetCreatedHook();
    });
    this.hookForm.addEventListener('submit', (event) => {
      event.preventDefault();
      this.createHook();
    });
    byId('hook-copy').addEventListener('click', () => this.copyHookUrl());
    this.settingsToggle.addEventListener('click', () => this.showSettings(this.settingsForm.hidden, true));
    byId('settings-cancel').addEventListener('click', () => this.showSettings(false, true));
    this.settingsForm.addEventListener('submit', (event) => {
      event.preventDefault();
      this.saveSettings();
    });
    this.settingsForm.addEventListener('keydown', (event) => {
      // Escape leaves the form, not the whole dialog.
      if (event.key === 'Escape') {
        event.preventDefault();
        this.showSettings(false, true);
      }
    });
  }

  get entry() {
    return this.store.openRoom;
  }

  get me() {
    return this.store.me;
  }

  /** The room's owner, its moderators and administrators manage a room with a name. */
  canModerate(entry = this.entry) {
    if (!entry || entry.direct || !this.me) return false;
    return this.me.admin === true || entry.room.created_by === this.me.id || ['owner', 'moderator'].includes(entry.myRole);
  }

  /** Only the owner (or an administrator) names moderators. */
  canOwn(entry = this.entry) {
    if (!entry || entry.direct || !this.me) return false;
    return this.me.admin === true || entry.room.created_by === this.me.id || entry.myRole === 'owner';
  }

  /** Opens the dialog (or refreshes it when open) for the open room. */
  async open() {
    const entry = this.entry;
    if (!entry) return;
    if (!this.dialog.open) {
      this.members = [];
      this.expanded = null;
      this.done = '';
      setMessage(this.error, '');
      this.list.replaceChildren();
      setMessage(byId('hooks-error'), '');
      this.hooksDone = '';
      setFieldError(this.hookName, '');
      this.hookName.value = '';
      this.renderHead(entry);
      this.dialog.showModal();
    } else {
      this.renderHead(entry);
    }
    await this.load(entry);
  }

  /** Saves what this person wants to be notified of in the open room. */
  async saveNotifyLevel() {
    const entry = this.entry;
    if (!entry) return;
    const level = this.notifyLevel.value;
    const status = byId('notify-status');
    const before = levelOf(entry);
    // Asked from this change (a click): the browser shows its own question.
    const asked = level !== 'none' ? this.notifier?.ask() : null;
    try {
      await api.setNotifications(entry.id, level);
      entry.room.notifications = level;
      status.textContent = 'Saved.';
      // Notifications blocked, or only while hearth is open: said after "Saved.".
      const trouble = await asked?.catch(() => null);
      if (trouble && this.entry === entry) status.textContent = `Saved. ${trouble}`;
    } catch (error) {
      this.notifyLevel.value = before;
      status.textContent = error.message;
    }
  }

  /** Whole name, visibility, topic and what this person may change. */
  renderHead(entry) {
    byId('members-title').textContent = entry.longName;
    this.notifyLevel.value = levelOf(entry);
    if (!this.dialog.open) byId('notify-status').textContent = '';
    byId('room-visibility').textContent = visibilityText(entry);
    const topic = byId('members-topic');
    topic.textContent = entry.room.topic ?? '';
    topic.hidden = !entry.room.topic;
    const manage = this.canModerate(entry);
    this.settingsToggle.hidden = !manage;
    if (!manage) this.showSettings(false, false);
    byId('members-add').hidden = !manage;
    this.bansSection.hidden = !manage;
    this.hooksSection.hidden = !manage || entry.direct;
    if (!manage) this.forgetCreatedHook();
    if (this.status.textContent === '' || !this.members.length) {
      const count = entry.room.member_count;
      this.status.textContent = count == null ? 'Loading…' : countText(count);
    }
  }

  /** The room changed under the open dialog (renamed, members came or went). */
  refresh() {
    const entry = this.entry;
    if (!this.dialog.open || !entry) return;
    this.renderHead(entry);
    // A form being filled in keeps what was typed.
    if (!this.settingsForm.hidden && !this.settingsForm.contains(document.activeElement)) this.fillSettings(entry);
    this.load(entry);
  }

  /** The dots repaint themselves; the "N online" count is redone here. */
  presenceChanged() {
    const entry = this.entry;
    if (this.dialog.open && entry && this.members.length) this.renderMembers(entry);
  }

  async load(entry) {
    const id = ++this.loadId;
    try {
      const { members } = await api.members(entry.id);
      avatars.learn(members);
      bots.learn(members);
      if (id !== this.loadId || this.entry !== entry) return;
      this.presence.apply(members.map((member) => ({ id: member.id, online: member.online === true })));
      this.members = members;
      this.onMembers(entry, members);
      this.renderHead(entry);
      this.renderMembers(entry);
    } catch (error) {
      if (id !== this.loadId) return;
      this.status.textContent = manageError(error);
      return;
    }
    if (this.canModerate(entry)) {
      this.loadBans(entry);
      this.loadHooks(entry);
    }
  }

  renderMembers(entry) {
    const focusKey = this.dialog.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
    const online = this.members.filter((member) => this.presence.isOnline(member.id)).length;
    this.status.textContent = `${countText(this.members.length)}, ${online} online.${this.done ? ` ${this.done}` : ''}`;
    this.list.replaceChildren(...this.members.map((member) => this.memberItem(entry, member)));
    if (focusKey) this.dialog.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`)?.focus();
  }

  /** What this person may do to `member`, as the server would allow it. */
  actionsFor(entry, member) {
    if (member.id === this.me?.id || member.role === 'owner') return [];
    const actions = [];
    if (this.canOwn(entry)) {
      actions.push(
        member.role === 'moderator'
          ? { key: 'demote', label: 'Make member', run: () => this.setRole(member, 'member') }
          : { key: 'promote', label: 'Make moderator', run: () => this.setRole(member, 'moderator') },
      );
    }
    const mayRemove = member.role === 'moderator' ? this.canOwn(entry) : this.canModerate(entry);
    if (mayRemove) actions.push({ key: 'remove', label: 'Remove from room', danger: true, run: () => this.remove(member) });
    if (this.canModerate(entry)) actions.push({ key: 'ban', label: 'Ban', danger: true, run: () => this.ban(member) });
    return actions;
  }

  memberItem(entry, member) {
    const isMe = member.id === this.me?.id;
    const actions = this.actionsFor(entry, member);
    const open = actions.length > 0 && this.expanded === member.id;
    const actionsId = `member-actions-${member.id}`;
    const li = h(
      'li',
      { class: 'member-row', 'data-user': member.id },
      avatarFor(member),
      h(
        'span',
        { class: 'member-name-line' },
        h('span', { class: 'member-name', dir: 'auto', text: member.username }),
        isMe ? h('span', { class: 'muted small', text: ' (you)' }) : null,
        member.bot === true ? [' ', botTag()] : null,
      ),
      this.presence.dot(member.id),
      ROLE_NAMES[member.role] ? h('span', { class: `role-badge ${member.role}`, text: ROLE_NAMES[member.role] }) : null,
    );
    if (actions.length) {
      li.append(
        h('button', {
          type: 'button',
          class: 'button subtle small',
          'aria-expanded': String(open),
          'aria-controls': actionsId,
          'aria-label': `Manage ${member.username}`,
          'data-focus-key': `manage:${member.id}`,
          text: 'Manage',
          onclick: () => {
            this.expanded = this.expanded === member.id ? null : member.id;
            this.renderMembers(entry);
          },
        }),
        h(
          'div',
          { id: actionsId, class: 'member-actions', role: 'group', 'aria-label': `Actions for ${member.username}`, hidden: !open },
          ...actions.map((action) =>
            h('button', {
              type: 'button',
              class: `button small${action.danger ? ' danger-outline' : ''}`,
              'data-focus-key': `${action.key}:${member.id}`,
              text: action.label,
              onclick: (event) => this.act(event.currentTarget, action.run),
            }),
          ),
        ),
      );
    }
    return li;
  }

  /** Shows why an action failed; a refusal for lack of rights also updates the tools. */
  failed(entry, error, doing = '') {
    const text = manageError(error, doing);
    if (error?.code === 'forbidden') this.refused(entry, text);
    else setMessage(this.error, text);
  }

  /**
   * The server refused for lack of rights (a role taken away since the list
   * was read): says so, and reads the list again so the tools match.
   */
  async refused(entry, text) {
    setMessage(this.error, text);
    await this.load(entry);
    if (this.dialog.open && !this.canModerate(entry)) this.status.focus();
  }

  /** Runs one action with its button busy; a refusal is shown in the dialog. */
  async act(button, run) {
    if (button.getAttribute('aria-busy') === 'true') return;
    setMessage(this.error, '');
    button.setAttribute('aria-busy', 'true');
    try {
      await run();
    } finally {
      button.removeAttribute('aria-busy');
    }
  }

  async setRole(member, role) {
    const entry = this.entry;
    try {
      await api.setRole(entry.id, member.id, role);
    } catch (error) {
      this.failed(entry, error, 'role');
      return;
    }
    this.done = role === 'moderator' ? `${member.username} is now a moderator.` : `${member.username} is no longer a moderator.`;
    await this.load(entry);
    // The button pressed became its opposite: focus stays on it.
    const next = role === 'moderator' ? 'demote' : 'promote';
    this.dialog.querySelector(`[data-focus-key="${CSS.escape(`${next}:${member.id}`)}"]`)?.focus();
  }

  async remove(member) {
    const entry = this.entry;
    const again = entry.private ? 'They can come back only if someone adds them.' : 'They can join again, unless you ban them.';
    const sure = await this.confirm({
      title: `Remove ${member.username} from ${entry.name}?`,
      text: `They stop seeing its messages at once. ${again}`,
      action: 'Remove',
    });
    if (!sure) return;
    try {
      await api.removeMember(entry.id, member.id);
    } catch (error) {
      this.failed(entry, error);
      return;
    }
    this.afterRemoval(entry, `${member.username} was removed.`);
  }

  async ban(member) {
    const entry = this.entry;
    const sure = await this.confirm({
      title: `Ban ${member.username} from ${entry.name}?`,
      text: 'They are removed at once, and cannot join or be added again until the ban is lifted.',
      action: 'Ban',
    });
    if (!sure) return;
    try {
      await api.ban(entry.id, member.id);
    } catch (error) {
      this.failed(entry, error);
      return;
    }
    this.afterRemoval(entry, `${member.username} was banned.`);
  }

  /** Focus goes to the line that says what happened, as the row it was in is gone. */
  async afterRemoval(entry, done) {
    this.done = done;
    this.expanded = null;
    await this.load(entry);
    if (this.dialog.open) this.status.focus();
  }

  async loadBans(entry) {
    const list = byId('bans-list');
    const status = byId('bans-status');
    try {
      const { bans } = await api.bans(entry.id);
      if (this.entry !== entry) return;
      status.textContent = bans.length ? '' : 'Nobody is banned.';
      list.replaceChildren(
        ...bans.map((user) =>
          h(
            'li',
            {},
            h('span', { dir: 'auto', text: user.username }),
            h('button', {
              type: 'button',
              class: 'button small',
              'aria-label': `Lift ban on ${user.username}`,
              'data-focus-key': `unban:${user.id}`,
              text: 'Lift ban',
              onclick: (event) => this.act(event.currentTarget, () => this.unban(user)),
            }),
          ),
        ),
      );
    } catch (error) {
      status.textContent = manageError(error);
    }
  }

  async unban(user) {
    const entry = this.entry;
    try {
      await api.unban(entry.id, user.id);
    } catch (error) {
      this.failed(entry, error);
      return;
    }
    this.done = entry.private
      ? `${user.username} is no longer banned; they can be added again.`
      : `${user.username} is no longer banned and may join again.`;
    await this.load(entry);
    if (this.dialog.open) this.status.focus();
  }

  // ---- Incoming webhooks -------------------------------------------------------

  async loadHooks(entry) {
    const list = byId('hooks-list');
    const status = byId('hooks-status');
    try {
      const { hooks } = await api.hooks(entry.id);
      if (this.entry !== entry) return;
      const count = hooks.length ? `${hooks.length} ${hooks.length === 1 ? 'webhook' : 'webhooks'}.` : 'No webhooks yet.';
      // What was just done stays said while the list is read again (the bot leaving reloads it).
      status.textContent = this.hooksDone ? `${this.hooksDone} ${count}` : count;
      const focusKey = this.dialog.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
      list.replaceChildren(
        ...hooks.map((hook) =>
          h(
            'li',
            { 'data-hook': hook.id },
            h('span', { class: 'hook-name', dir: 'auto', text: hook.name }),
            h('button', {
              type: 'button',
              class: 'button small danger-outline',
              'aria-label': `Revoke webhook ${hook.name}`,
              'data-focus-key': `revoke:${hook.id}`,
              text: 'Revoke',
              onclick: (event) => this.act(event.currentTarget, () => this.revokeHook(hook)),
            }),
          ),
        ),
      );
      if (focusKey) this.dialog.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`)?.focus();
    } catch (error) {
      if (this.entry === entry) status.textContent = hookError(error);
    }
  }

  async createHook() {
    const entry = this.entry;
    if (!entry || this.hookForm.getAttribute('aria-busy') === 'true') return;
    const name = this.hookName.value.trim();
    setMessage(byId('hooks-error'), '');
    setFieldError(this.hookName, '');
    if (!name) {
      setFieldError(this.hookName, 'Give the webhook a name.');
      this.hookName.focus();
      return;
    }
    this.hookForm.setAttribute('aria-busy', 'true');
    this.hooksDone = '';
    let reply;
    try {
      reply = await api.createHook(entry.id, name);
    } catch (error) {
      if (error.code === 'invalid_profile') {
        setFieldError(this.hookName, hookError(error));
        this.hookName.focus();
      } else if (error.code === 'forbidden') {
        this.refused(entry, hookError(error));
      } else {
        setMessage(byId('hooks-error'), hookError(error));
      }
      return;
    } finally {
      this.hookForm.removeAttribute('aria-busy');
    }
    if (this.entry !== entry || !this.dialog.open) return;
    this.hookName.value = '';
    this.showCreatedHook(reply.hook, `${location.origin}${reply.url}`);
    // The hook's bot joined: the member list (and who is a bot) is read again.
    await this.load(entry);
  }

  /** The new hook's address, this once, with a warning; focus goes to the warning. */
  showCreatedHook(hook, url) {
    const title = byId('hook-created-title');
    title.replaceChildren(
      h('strong', { text: `Webhook “${hook?.name ?? ''}” created. ` }),
      'Copy its address now: it is shown only this once. Anyone with it can post in this room.',
    );
    byId('hook-url').value = url;
    byId('hook-copied').textContent = '';
    this.hookCreated.hidden = false;
    title.focus();
  }

  forgetCreatedHook() {
    this.hookCreated.hidden = true;
    byId('hook-url').value = '';
    byId('hook-copied').textContent = '';
  }

  async copyHookUrl() {
    const input = byId('hook-url');
    const said = byId('hook-copied');
    try {
      await navigator.clipboard.writeText(input.value);
      said.textContent = 'Address copied.';
    } catch {
      // No clipboard permission: the address is selected for Ctrl+C instead.
      input.focus();
      input.select();
      said.textContent = 'Could not copy by itself: the address is selected, press Ctrl+C.';
    }
  }

  async revokeHook(hook) {
    const entry = this.entry;
    const ok = await this.confirm({
      title: `Revoke webhook ${hook.name}?`,
      text: 'Its address stops working at once and its bot leaves the room. What it posted stays.',
      action: 'Revoke',
    });
    if (!ok || this.entry !== entry) {
      this.dialog.querySelector(`[data-focus-key="revoke:${CSS.escape(hook.id)}"]`)?.focus();
      return;
    }
    try {
      await api.deleteHook(entry.id, hook.id);
    } catch (error) {
      if (error.code === 'forbidden') this.refused(entry, hookError(error));
      else setMessage(byId('hooks-error'), hookError(error));
      if (error.code !== 'hook_not_found') return;
    }
    this.forgetCreatedHook();
    this.hooksDone = `Webhook ${hook.name} revoked.`;
    await this.loadHooks(entry);
    if (this.dialog.open) byId('hooks-status').focus();
  }

  // ---- Name and topic ----------------------------------------------------------

  fillSettings(entry) {
    this.nameInput.value = entry.room.name ?? '';
    this.topicInput.value = entry.room.topic ?? '';
  }

  /** Unfolds (or folds) the settings form; focus goes into it, or back to its button. */
  showSettings(show, moveFocus) {
    const entry = this.entry;
    if (show && entry) {
      this.fillSettings(entry);
      clearErrors(this.settingsForm, this.settingsError);
    }
    this.settingsForm.hidden = !show;
    this.settingsToggle.setAttribute('aria-expanded', String(show));
    if (!moveFocus) return;
    if (show) this.nameInput.focus();
    else if (!this.settingsToggle.hidden) this.settingsToggle.focus();
  }

  async saveSettings() {
    const entry = this.entry;
    const form = this.settingsForm;
    if (!entry || form.getAttribute('aria-busy') === 'true') return;
    clearErrors(form, this.settingsError);
    const name = this.nameInput.value.trim();
    const topic = this.topicInput.value.trim();
    if (!name) {
      setFieldError(this.nameInput, 'A room needs a name.');
      this.nameInput.focus();
      return;
    }
    const changes = {};
    if (name !== entry.room.name) changes.name = name;
    if (topic !== (entry.room.topic ?? '')) changes.topic = topic;
    if (!Object.keys(changes).length) {
      this.showSettings(false, true);
      return;
    }
    form.setAttribute('aria-busy', 'true');
    try {
      const { room } = await api.updateRoom(entry.id, changes);
      this.onRoomChanged({ ...room, joined: true });
    } catch (error) {
      const text = manageError(error, 'settings');
      if (error.code === 'invalid_room_name' || error.code === 'room_name_taken') {
        setFieldError(this.nameInput, text);
        this.nameInput.focus();
      } else if (error.code === 'invalid_topic') {
        setFieldError(this.topicInput, text);
        this.topicInput.focus();
      } else if (error.code === 'forbidden') {
        // A right lost meanwhile: said above the list, and the tools go.
        this.refused(entry, text);
      } else {
        setMessage(this.settingsError, text);
      }
      return;
    } finally {
      form.removeAttribute('aria-busy');
    }
    this.done = 'Saved.';
    this.showSettings(false, true);
    this.renderHead(entry);
    if (this.members.length) this.renderMembers(entry);
  }
}

function countText(n) {
  return n === 1 ? '1 member' : `${n} members`;
}

/**
 * Asks before something that cannot be taken back, in a dialog where Cancel
 * has focus. Resolves true only for the confirming button.
 */
export function confirmAction({ title, text, action }) {
  const dialog = byId('confirm-dialog');
  byId('confirm-title').textContent = title;
  byId('confirm-text').textContent = text;
  byId('confirm-ok').textContent = action;
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true });
    dialog.showModal();
  });
}
