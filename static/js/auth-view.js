// The signed-out screen: log in (by username or email) or sign up. Empty
// fields are caught here, so an empty form never reaches the server (nor
// spends its login rate limit). The server's own sentences are shown by the
// field they are about, tied to it with aria-describedby; anything not about
// one field is shown under the form. An invite link (`/?invite=CODE`) opens
// the signup form with its code filled in; on an invite-only server the code
// field also appears once the server asks for one.

import { api } from './api.js';
import { byId, setMessage } from './dom.js';
import { checkFilled, clearErrors, setFieldError, whileBusy } from './forms.js';

/** Which signup field each of the API's error codes is about. */
const SIGNUP_FIELD_OF = {
  invalid_username: 'signup-username',
  username_taken: 'signup-username',
  invalid_email: 'signup-email',
  email_taken: 'signup-email',
  invalid_password: 'signup-password',
  invalid_invite: 'signup-invite',
};

const REQUIRED = {
  'login-name': 'Enter your username or email.',
  'login-password': 'Enter your password.',
  'signup-username': 'Choose a username.',
  'signup-email': 'Enter your email address.',
  'signup-password': 'Choose a password.',
};

export class AuthView {
  /** @param {{onLoggedIn: (user: object) => void}} handlers */
  constructor({ onLoggedIn }) {
    this.root = byId('auth-view');
    this.notice = byId('auth-notice');
    this.loginForm = byId('login-form');
    this.signupForm = byId('signup-form');
    this.loginError = byId('login-error');
    this.signupError = byId('signup-error');
    this.onLoggedIn = onLoggedIn;

    for (const button of this.root.querySelectorAll('[data-auth-mode]')) {
      button.addEventListener('click', () => this.setMode(button.dataset.authMode, true));
    }
    this.loginForm.addEventListener('submit', (event) => {
      event.preventDefault();
      this.logIn();
    });
    this.signupForm.addEventListener('submit', (event) => {
      event.preventDefault();
      this.signUp();
    });
    // A field's error goes once the person starts fixing it.
    this.root.addEventListener('input', (event) => {
      if (event.target.id in REQUIRED || event.target.id === 'signup-invite') setFieldError(event.target, '');
    });
  }

  /** @param {string} [notice] why the person is here, e.g. their session ended */
  show(notice) {
    setMessage(this.notice, notice);
    this.loginForm.reset();
    this.signupForm.reset();
    clearErrors(this.loginForm, this.loginError);
    clearErrors(this.signupForm, this.signupError);
    const invite = new URLSearchParams(location.search).get('invite')?.trim();
    this.showInviteField(Boolean(invite));
    if (invite) byId('signup-invite').value = invite;
    this.setMode(invite ? 'signup' : 'login', false);
    this.root.hidden = false;
    byId(invite ? 'signup-username' : 'login-name').focus();
  }

  showInviteField(shown) {
    byId('signup-invite-field').hidden = !shown;
  }

  hide() {
    this.root.hidden = true;
  }

  setMode(mode, moveFocus) {
    const signup = mode === 'signup';
    this.signupForm.hidden = !signup;
    this.loginForm.hidden = signup;
    if (moveFocus) byId(signup ? 'signup-username' : 'login-name').focus();
  }

  async logIn() {
    if (!checkFilled(this.loginForm, this.loginError, REQUIRED)) return;
    const data = new FormData(this.loginForm);
    await this.submitting(this.loginForm, this.loginError, async () => {
      const { user } = await api.login(String(data.get('login')).trim(), String(data.get('password')));
      return user;
    });
  }

  async signUp() {
    if (!checkFilled(this.signupForm, this.signupError, REQUIRED)) return;
    const data = new FormData(this.signupForm);
    const username = String(data.get('username')).trim();
    const password = String(data.get('password'));
    const invite = String(data.get('invite') ?? '').trim();
    await this.submitting(this.signupForm, this.signupError, async () => {
      await api.signup(username, String(data.get('email')).trim(), password, invite || undefined);
      // The code is used up: a reload or the next logout must not offer it again.
      if (new URLSearchParams(location.search).has('invite')) history.replaceState(null, '', location.pathname + location.hash);
      // Signing up does not start a session; logging in with what was just typed does.
      const { user } = await api.login(username, password);
      return user;
    });
  }

  /** Runs one submission with errors shown inline; logged in, the app takes over. */
  async submitting(form, errorLine, action) {
    await whileBusy(form, async () => {
      try {
        const user = await action();
        this.hide();
        this.onLoggedIn(user);
      } catch (error) {
        const field = form === this.signupForm ? SIGNUP_FIELD_OF[error.code] : null;
        if (field === 'signup-invite' && byId('signup-invite-field').hidden) {
          // The server wants a code nobody was asked for yet: ask now.
          this.showInviteField(true);
          byId('signup-invite').focus();
        }
        if (field) setFieldError(byId(field), error.message);
        else setMessage(errorLine, error.message ?? String(error));
      }
    });
  }
}
