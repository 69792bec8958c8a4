// Emotes: a message whose body is `/me waves` is shown as "* alice waves".
// The body is stored as typed, so search, edits and older clients see it as is.

import { h } from './dom.js';

/** The prefix of an emote: a body of `/me ` and an action. */
const EMOTE = /^\/me\s+(\S[\s\S]*)$/;

/** The action of an emote body (`/me waves` → `waves`), or null for any other body. */
export function emoteAction(body) {
  return EMOTE.exec(body ?? '')?.[1] ?? null;
}

/**
 * Turns a rendered body into an emote, if its text is one: the leading
 * `/me ` gives way to "* NAME ". It works on what the body renderer made
 * (text nodes only), so it does not care how the rest was rendered.
 */
export function markEmote(element, author, body) {
  if (emoteAction(body) === null) return;
  const first = document.createTreeWalker(element, NodeFilter.SHOW_TEXT).nextNode();
  if (!first || !/^\/me\s/.test(first.data)) return;
  first.data = first.data.replace(/^\/me\s+/, '');
  first.before('* ', h('span', { class: 'emote-name', text: author?.username ?? 'someone' }), ' ');
  element.classList.add('emote');
}
