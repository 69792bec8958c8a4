// Entry point: asks the server who is logged in (the session cookie is
// HttpOnly, so only the server knows) and shows the app or the login screen.
// Without a network (the service worker gave the kept page) the app opens
// for whoever was last logged in here, reconnecting; the server has the last
// word once it is reachable.

import { api, onSessionLost } from './api.js';
import { App } from './app.js';
import { AuthView } from './auth-view.js';
import { byId } from './dom.js';
import { showResetForm, takeResetCode } from './reset-link.js';
import { lastUser, registerServiceWorker } from './pwa.js';

const BOOT_RETRY_MS = 3000;

// A password-reset link opens its form over whatever the page shows: on
// load, or pasted into an open page (registered before the app's own
// hashchange listener, which would read the fragment as a room).
function openResetLink() {
  const code = takeResetCode();
  if (code) showResetForm(code);
}
window.addEventListener('hashchange', openResetLink);
openResetLink();

const auth = new AuthView({ onLoggedIn: (user) => app.enter(user, { justLoggedIn: true }) });
const app = new App({ onSessionEnded: (notice) => auth.show(notice) });
onSessionLost(() => app.sessionEnded());
registerServiceWorker();

async function boot() {
  const status = byId('boot');
  try {
    const { user } = await api.me();
    status.hidden = true;
    app.enter(user);
  } catch (error) {
    if (error.status === 401) {
      status.hidden = true;
      auth.show();
      return;
    }
    const known = error.status === 0 ? lastUser() : null;
    if (known) {
      status.hidden = true;
      app.enter(known, { offline: true });
      return;
    }
    status.textContent = error.status === 0 ? `${navigator.onLine ? 'Cannot reach the server.' : 'You are offline.'} Reconnecting…` : `${error.message} Retrying…`;
    const retry = () => {
      clearTimeout(timer);
      window.removeEventListener('online', retry);
      boot();
    };
    const timer = setTimeout(retry, BOOT_RETRY_MS);
    window.addEventListener('online', retry);
  }
}

boot();
