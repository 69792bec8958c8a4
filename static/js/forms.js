// Forms with inline errors, shared by the signed-out screen and the account
// dialog: each field's error sits under it (`#<id>-error`) and is tied to it
// with aria-describedby; empty required fields are caught here, before
// anything is sent; a form being submitted is marked busy rather than
// disabled, since disabling its button would drop keyboard focus to <body>.

import { byId, setMessage } from './dom.js';

/**
 * Shows (or clears) the error under one field: `#<id>-error`, named in the
 * field's aria-describedby and marked with aria-invalid while shown.
 */
export function setFieldError(input, text) {
  const errorId = `${input.id}-error`;
  const line = byId(errorId);
  setMessage(line, text);
  const described = (input.getAttribute('aria-describedby') ?? '').split(' ').filter((id) => id && id !== errorId);
  if (text) {
    described.push(errorId);
    input.setAttribute('aria-invalid', 'true');
  } else {
    input.removeAttribute('aria-invalid');
  }
  if (described.length) input.setAttribute('aria-describedby', described.join(' '));
  else input.removeAttribute('aria-describedby');
}

/**
 * Marks every empty field of `form` named in `required` (id → what to say);
 * true when none is. Focus goes to the first.
 */
export function checkFilled(form, errorLine, required) {
  clearErrors(form, errorLine);
  let first = null;
  for (const input of form.querySelectorAll('input')) {
    if (!(input.id in required) || input.value.trim()) continue;
    setFieldError(input, required[input.id]);
    first ??= input;
  }
  first?.focus();
  return first == null;
}

/** Clears the form's own error line and the error of every field that has one. */
export function clearErrors(form, errorLine) {
  setMessage(errorLine, '');
  for (const input of form.querySelectorAll('input')) {
    if (document.getElementById(`${input.id}-error`)) setFieldError(input, '');
  }
}

/** Runs `action` with `element` (a form or a button) marked busy; a second run meanwhile is ignored. */
export async function whileBusy(element, action) {
  if (element.getAttribute('aria-busy') === 'true') return;
  element.setAttribute('aria-busy', 'true');
  try {
    await action();
  } finally {
    element.removeAttribute('aria-busy');
  }
}
