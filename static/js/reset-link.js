// A password-reset link (`/#reset=CODE`, made by an administrator) opens a
// form to choose a new password. The code is taken out of the address at
// once, so it does not stay in the history or get shared by a copied URL;
// it never reaches the server except in the one request that uses it.

import { request } from './api.js';
import { h, setMessage } from './dom.js';
import { setFieldError, whileBusy } from './forms.js';

/** The code of a reset link in the address, removed from it; null if none. */
export function takeResetCode() {
  const match = /^#reset=([A-Za-z0-9_-]{1,128})$/.exec(location.hash);
  if (!match) return null;
  history.replaceState(null, '', location.pathname + location.search);
  return match[1];
}

/** Shows the form that sets a new password with `code`. */
export function showResetForm(code) {
  const password = h('input', { id: 'reset-password', type: 'password', autocomplete: 'new-password', required: true, 'aria-describedby': 'reset-password-hint' });
  const again = h('input', { id: 'reset-again', type: 'password', autocomplete: 'new-password', required: true });
  const error = h('p', { id: 'reset-error', class: 'form-error', role: 'alert', hidden: true });
  const done = h('p', { id: 'reset-done', class: 'notice', role: 'status', hidden: true });
  const submit = h('button', { type: 'submit', class: 'button primary' }, 'Set password');
  const form = h(
    'form',
    { class: 'stack', novalidate: true },
    h('h2', { id: 'reset-title', class: 'dialog-title', text: 'Choose a new password' }),
    h('p', { class: 'muted small', text: 'This link works once. Every device signed in to the account is signed out.' }),
    h('div', { class: 'field' }, h('label', { for: 'reset-password', text: 'New password' }), password, h('p', { id: 'reset-password-hint', class: 'hint', text: 'At least 8 characters.' }), h('p', { id: 'reset-password-error', class: 'field-error', hidden: true })),
    h('div', { class: 'field' }, h('label', { for: 'reset-again', text: 'The same password again' }), again, h('p', { id: 'reset-again-error', class: 'field-error', hidden: true })),
    error,
    done,
    h('div', { class: 'dialog-actions' }, h('button', { type: 'button', class: 'button subtle', onclick: () => dialog.close() }, 'Close'), submit),
  );
  const dialog = h('dialog', { class: 'dialog', id: 'reset-dialog', 'aria-labelledby': 'reset-title' }, form);
  dialog.addEventListener('close', () => dialog.remove());
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    setMessage(error, '');
    setFieldError(password, '');
    setFieldError(again, '');
    if (!password.value) {
      setFieldError(password, 'Choose a new password.');
      password.focus();
      return;
    }
    if (password.value !== again.value) {
      setFieldError(again, 'The two passwords differ; type the same one twice.');
      again.focus();
      return;
    }
    whileBusy(form, async () => {
      try {
        await request('POST', '/password-reset', { code, password: password.value }, { authenticated: false });
        form.querySelectorAll('.field').forEach((f) => f.remove());
        submit.remove();
        setMessage(done, 'Your password is set. Log in with it.');
      } catch (e) {
        if (e.code === 'invalid_password') {
          setFieldError(password, e.message);
          password.focus();
        } else setMessage(error, e.message);
      }
    });
  });
  document.body.append(dialog);
  dialog.showModal();
  password.focus();
}
