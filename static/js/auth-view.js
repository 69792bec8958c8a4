// The signed-out screen: log in (by username or email) or sign up. Errors are
// the server's own sentences, shown next to the form that caused them.

import { api } from './api.js';
import { byId, setMessage } from './dom.js';

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
  }

  /** @param {string} [notice] why the person is here, e.g. their session ended */
  show(notice) {
    setMessage(this.notice, notice);
    setMessage(this.loginError, '');
    setMessage(this.signupError, '');
    this.loginForm.reset();
    this.signupForm.reset();
    this.setMode('login', false);
    this.root.hidden = false;
    byId('login-name').focus();
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
    const data = new FormData(this.loginForm);
    await this.submitting(this.loginForm, this.loginError, async () => {
      const { user } = await api.login(String(data.get('login')).trim(), String(data.get('password')));
      return user;
    });
  }

  async signUp() {
    const data = new FormData(this.signupForm);
    const username = String(data.get('username')).trim();
    const password = String(data.get('password'));
    await this.submitting(this.signupForm, this.signupError, async () => {
      await api.signup(username, String(data.get('email')).trim(), password);
      // Signing up does not start a session; logging in with what was just typed does.
      const { user } = await api.login(username, password);
      return user;
    });
  }

  /**
   * Runs one submission with errors shown inline. The button is marked busy
   * rather than disabled: disabling it would drop keyboard focus to <body>.
   */
  async submitting(form, errorLine, action) {
    if (form.getAttribute('aria-busy') === 'true') return;
    form.setAttribute('aria-busy', 'true');
    setMessage(errorLine, '');
    try {
      const user = await action();
      this.hide();
      this.onLoggedIn(user);
    } catch (error) {
      setMessage(errorLine, error.message ?? String(error));
    } finally {
      form.removeAttribute('aria-busy');
    }
  }
}
