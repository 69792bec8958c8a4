// The account dialog, opened from the name at the foot of the sidebar:
// upload or remove a picture, change the password, see where the account is logged in and sign any
// other session out, log out everywhere, delete the account. Errors are
// shown by the field they are about, as on the signup form. Everything the
// server says about a session (its user agent, its address) is shown as text.

import { api } from './api.js';
import { avatars } from './avatars.js';
import { byId, closeOnOutsideClick, h, hueClass, setMessage } from './dom.js';
import { checkFilled, clearErrors, setFieldError, whileBusy } from './forms.js';
import { sound } from './sound.js';

// The server's limit for a picture; a bigger file is not sent at all.
const MAX_PICTURE_BYTES = 2 * 1024 * 1024;
const TOO_LARGE = 'That picture is over 2 MiB. Choose a smaller one.';

const REQUIRED = {
  'current-password': 'Enter your current password.',
  'new-password': 'Choose a new password.',
  'delete-password': 'Enter your password.',
};

export class AccountDialog {
  /**
   * @param {object} handlers
   * @param {() => object|null} handlers.me the signed-in user
   * @param {() => Promise<void>} handlers.onLogOutEverywhere throws the API's error
   * @param {(password: string) => Promise<void>} handlers.onDelete throws the API's error
   * @param {(user: object) => void} handlers.onUser the server's new version of this person (a picture changed)
   * @param {import('./push.js').PushSubscriber} [handlers.push] whose status the dialog shows
   */
  constructor({ me, onLogOutEverywhere, onDelete, onUser, push = null }) {
    this.dialog = byId('account-dialog');
    this.passwordForm = byId('password-form');
    this.sessionsList = byId('sessions-list');
    this.sessionsStatus = byId('sessions-status');
    this.confirm = byId('delete-account-dialog');
    this.deleteForm = byId('delete-account-form');
    this.me = me;
    this.onLogOutEverywhere = onLogOutEverywhere;
    this.onDelete = onDelete;
    this.onUser = onUser;
    this.pictureInput = byId('avatar-input');
    this.soundToggle = byId('sound-toggle');
    this.soundToggle.addEventListener('change', () => {
      sound.on = this.soundToggle.checked;
      // Turned on: a sample, which also lets the browser play it later.
      sound.play();
    });
    push?.addEventListener('changed', ({ detail }) => {
      byId('push-status').textContent = detail;
    });

    byId('account-close').addEventListener('click', () => this.dialog.close());
    byId('avatar-upload').addEventListener('click', () => {
      this.pictureInput.value = '';
      this.pictureInput.click();
    });
    this.pictureInput.addEventListener('change', () => {
      const file = this.pictureInput.files?.[0];
      if (file) this.uploadPicture(file);
    });
    byId('avatar-remove').addEventListener('click', () => this.removePicture());
    // The preview follows the picture, changed here or on another device.
    avatars.addEventListener('changed', ({ detail }) => {
      if (detail.includes(this.me()?.id)) this.showPicture();
    });
    closeOnOutsideClick(this.dialog);
    this.passwordForm.addEventListener('submit', (event) => {
      event.preventDefault();
      this.changePassword();
    });
    this.sessionsList.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-session]');
      if (button) this.endSession(button);
    });
    byId('logout-everywhere').addEventListener('click', (event) => {
      whileBusy(event.currentTarget, () => this.logOutEverywhere());
    });
    byId('delete-account').addEventListener('click', () => this.askToDelete());
    byId('delete-account-cancel').addEventListener('click', () => this.confirm.close());
    this.deleteForm.addEventListener('submit', (event) => {
      event.preventDefault();
      this.deleteAccount();
    });
    // A field's error goes once the person starts fixing it.
    for (const form of [this.passwordForm, this.deleteForm]) {
      form.addEventListener('input', (event) => {
        if (event.target.matches('input[required]')) setFieldError(event.target, '');
      });
    }
  }

  open() {
    const me = this.me();
    byId('account-name').textContent = me?.username ?? '';
    this.passwordForm.reset();
    byId('password-username').value = me?.username ?? '';
    clearErrors(this.passwordForm, byId('password-error'));
    setMessage(byId('password-done'), '');
    setMessage(byId('avatar-error'), '');
    setMessage(byId('avatar-done'), '');
    this.showPicture();
    this.soundToggle.checked = sound.on;
    this.dialog.showModal();
    this.loadSessions();
  }

  // ---- Picture -------------------------------------------------------------

  /** The preview, and Remove only while there is something to remove. */
  showPicture() {
    const me = this.me();
    if (!me) return;
    const preview = byId('account-avatar');
    preview.className = `avatar picture-preview ${hueClass(me.id)}`;
    preview.dataset.username = me.username ?? '';
    avatars.fill(preview, me);
    const remove = byId('avatar-remove');
    const had = !remove.hidden;
    remove.hidden = avatars.url(me.id) == null;
    // Focus must not fall to <body> with a button that went away.
    if (had && remove.hidden && document.activeElement === document.body && this.dialog.open) byId('avatar-upload').focus();
  }

  async uploadPicture(file) {
    const errorLine = byId('avatar-error');
    const done = byId('avatar-done');
    setMessage(errorLine, '');
    setMessage(done, '');
    if (file.size > MAX_PICTURE_BYTES) {
      setMessage(errorLine, TOO_LARGE);
      return;
    }
    const button = byId('avatar-upload');
    await whileBusy(button, async () => {
      let user;
      try {
        ({ user } = await api.uploadAvatar(file));
      } catch (error) {
        setMessage(errorLine, pictureError(error));
        return;
      }
      this.onUser(user);
      setMessage(done, 'Picture updated.');
    });
    button.focus();
  }

  async removePicture() {
    const errorLine = byId('avatar-error');
    const done = byId('avatar-done');
    setMessage(errorLine, '');
    setMessage(done, '');
    await whileBusy(byId('avatar-remove'), async () => {
      try {
        await api.removeAvatar();
      } catch (error) {
        setMessage(errorLine, pictureError(error));
        return;
      }
      this.onUser({ ...this.me(), avatar: null });
      setMessage(done, 'Picture removed.');
    });
    byId('avatar-upload').focus();
  }

  /** Closes both dialogs without a word, e.g. when the session ends. */
  close() {
    this.confirm.close();
    this.dialog.close();
  }

  // ---- Password ------------------------------------------------------------

  async changePassword() {
    const errorLine = byId('password-error');
    setMessage(byId('password-done'), '');
    if (!checkFilled(this.passwordForm, errorLine, REQUIRED)) return;
    const current = byId('current-password');
    const next = byId('new-password');
    await whileBusy(this.passwordForm, async () => {
      try {
        await api.changePassword(current.value, next.value);
      } catch (error) {
        const field = { invalid_credentials: current, invalid_password: next }[error.code];
        if (field) {
          setFieldError(field, error.code === 'invalid_credentials' ? 'That is not your current password.' : error.message);
          field.focus();
        } else {
          setMessage(errorLine, error.message);
        }
        return;
      }
      this.passwordForm.reset();
      byId('password-username').value = this.me()?.username ?? '';
      setMessage(byId('password-done'), 'Password changed. Your other sessions were signed out.');
      this.loadSessions();
    });
  }

  // ---- Sessions ------------------------------------------------------------

  async loadSessions() {
    this.sessionsStatus.textContent = 'Loading…';
    let sessions;
    try {
      ({ sessions } = await api.sessions());
    } catch (error) {
      this.sessionsStatus.textContent = error.message;
      return;
    }
    if (!this.dialog.open) return;
    // This device first, then the most recently used.
    const when = (session) => Date.parse(session.last_used_at ?? session.created_at) || 0;
    sessions = (Array.isArray(sessions) ? sessions : []).sort((a, b) => b.current - a.current || when(b) - when(a));
    this.sessionsStatus.textContent = sessions.length === 1 ? 'Only on this device.' : `Logged in on ${sessions.length} devices.`;
    this.sessionsList.replaceChildren(...sessions.map((session, index) => sessionItem(session, index)));
  }

  async endSession(button) {
    const item = button.closest('li');
    const name = item.querySelector('.session-name').textContent;
    await whileBusy(button, async () => {
      try {
        await api.endSession(button.dataset.session);
      } catch (error) {
        // Already gone (signed out elsewhere): the list just catches up.
        if (error.status !== 404) {
          this.sessionsStatus.textContent = error.message;
          return;
        }
      }
      // Focus must not fall to <body> with the button: the next session, or the next action.
      const next = item.nextElementSibling?.querySelector('button') ?? item.previousElementSibling?.querySelector('button');
      item.remove();
      (next ?? byId('logout-everywhere')).focus();
      const left = this.sessionsList.childElementCount;
      this.sessionsStatus.textContent = `Signed out ${name}. ${left === 1 ? 'Only this device is left.' : `${left} devices are left.`}`;
    });
  }

  /** Ends every session, this one too; if that fails, says why under the list. */
  async logOutEverywhere() {
    try {
      await this.onLogOutEverywhere();
    } catch (error) {
      this.sessionsStatus.textContent = error.message;
    }
  }

  // ---- Deleting ------------------------------------------------------------

  askToDelete() {
    this.deleteForm.reset();
    clearErrors(this.deleteForm, byId('delete-account-error'));
    this.confirm.showModal();
    byId('delete-password').focus();
  }

  async deleteAccount() {
    const errorLine = byId('delete-account-error');
    if (!checkFilled(this.deleteForm, errorLine, REQUIRED)) return;
    const field = byId('delete-password');
    await whileBusy(this.deleteForm, async () => {
      try {
        await this.onDelete(field.value);
      } catch (error) {
        if (error.code === 'invalid_credentials') {
          setFieldError(field, 'That is not your password.');
          field.focus();
        } else {
          setMessage(errorLine, error.message);
        }
      }
    });
  }
}

/** What went wrong with a picture, as a sentence. */
function pictureError(error) {
  if (error.code === 'payload_too_large') return TOO_LARGE;
  // Otherwise the server's sentence; for `invalid_image` it says why (not a
  // picture, damaged, too many pixels).
  return error.message;
}

/** One session: a name from its user agent, when it was last used, from where. */
function sessionItem(session, index) {
  const nameId = `session-name-${index}`;
  const details = [];
  const lastUsed = formatTime(session.last_used_at);
  if (lastUsed) details.push(`Last active ${lastUsed}`);
  if (typeof session.ip === 'string' && session.ip) details.push(session.ip);
  return h(
    'li',
    { class: 'session' },
    h(
      'div',
      { class: 'session-text' },
      h(
        'p',
        { class: 'session-name', id: nameId, title: typeof session.user_agent === 'string' ? session.user_agent : null },
        describeUserAgent(session.user_agent),
      ),
      h('p', { class: 'session-details muted small', text: details.join(' · ') }),
    ),
    session.current
      ? h('span', { class: 'this-device' }, 'This device')
      : h('button', {
          type: 'button',
          class: 'button small',
          'data-session': String(session.id),
          'aria-describedby': nameId,
          text: 'Sign out',
        }),
  );
}

/** "Chrome on Linux" from a user agent; the server sends it as the browser did. */
function describeUserAgent(userAgent) {
  if (typeof userAgent !== 'string' || !userAgent.trim()) return 'Unknown device';
  const ua = userAgent;
  const browser =
    (/\bEdg(?:e|A|iOS)?\//.test(ua) && 'Edge') ||
    (/\b(?:OPR|Opera)\//.test(ua) && 'Opera') ||
    (/\b(?:Firefox|FxiOS)\//.test(ua) && 'Firefox') ||
    (/\b(?:Chrome|Chromium|HeadlessChrome|CriOS)\//.test(ua) && 'Chrome') ||
    (/\bVersion\/[\d.]+.*Safari\//.test(ua) && 'Safari') ||
    null;
  const os =
    (/\b(?:iPhone|iPad|iPod)\b/.test(ua) && 'iOS') ||
    (/\bAndroid\b/.test(ua) && 'Android') ||
    (/\bWindows\b/.test(ua) && 'Windows') ||
    (/\bCrOS\b/.test(ua) && 'ChromeOS') ||
    (/\bMac OS X\b|\bMacintosh\b/.test(ua) && 'macOS') ||
    (/\bLinux\b/.test(ua) && 'Linux') ||
    null;
  if (browser && os) return `${browser} on ${os}`;
  if (browser || os) return browser ?? os;
  // A program rather than a browser (curl/8.5.0): its first word, cut short.
  const first = ua.trim().split(/\s/)[0];
  return first.length > 40 ? `${first.slice(0, 40)}…` : first;
}

/** A time from the API (RFC 3339 or milliseconds), in the browser's locale. */
function formatTime(value) {
  if (value == null) return '';
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
