// Emotes: a message whose body is `/me waves` is shown as "* alice waves".
// The body is stored as typed, so search, edits and older clients see it as is.

import { h } from './dom.js';

/** The prefix of an emote: a body of `/me ` and an action. */
const EMOTE = /^\/me\s+(\S[\s\S]*)$/;

/** The action of an emote body (`/me waves` → `waves`), or null for any other body. */
export function emoteAction(body) {
  return EMOTE.exec(body ?? '')?.[1] ?? null;
}

/** "* alice waves": an emote's body element (text only, as every body). */
export function emoteBody(author, action, appendText) {
  const body = h('div', { class: 'message-body emote', dir: 'auto' }, '* ', h('span', { class: 'emote-name', text: author?.username ?? 'someone' }), ' ');
  appendText(body, action);
  return body;
}
