// Turning message text and times into DOM. Message bodies become text nodes,
// with http(s) URLs as links; nothing is ever parsed as HTML.

import { h } from './dom.js';

// A run of non-space characters starting with a scheme. Deliberately loose:
// the URL constructor below decides what is really a link.
const URL_CANDIDATE = /\bhttps?:\/\/[^\s<>"]+/gi;
// Punctuation that usually ends the sentence around a URL rather than the URL.
const TRAILING_PUNCTUATION = /[.,;:!?'"»”’)\]}>]+$/;

/** Appends `body` to `parent` as text, with http and https URLs made clickable. */
export function appendLinkified(parent, body) {
  let last = 0;
  for (const match of body.matchAll(URL_CANDIDATE)) {
    const url = trimUrl(match[0]);
    const start = match.index;
    const href = safeHref(url);
    if (!href) continue;
    if (start > last) parent.append(body.slice(last, start));
    parent.append(h('a', { href, target: '_blank', rel: 'noopener noreferrer', text: url }));
    last = start + url.length;
  }
  if (last < body.length) parent.append(body.slice(last));
}

/** Drops trailing sentence punctuation, keeping a closing bracket the URL opened. */
function trimUrl(candidate) {
  let url = candidate.replace(TRAILING_PUNCTUATION, '');
  const closing = candidate.slice(url.length);
  // "https://en.wikipedia.org/wiki/Fire_(element)" keeps its ")".
  if (closing.startsWith(')') && count(url, '(') > count(url, ')')) url += ')';
  return url;
}

function count(text, ch) {
  return text.split(ch).length - 1;
}

/** The normalised href when `text` is an http(s) URL, else null. */
function safeHref(text) {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

const timeOnly = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateAndTime = new Intl.DateTimeFormat(undefined, {
  day: 'numeric',
  month: 'short',
  hour: '2-digit',
  minute: '2-digit',
});
const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

/** A `<time>`: just the clock for today, with the date otherwise. */
export function timeElement(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h('time', { text: '' });
  const today = new Date().toDateString() === date.toDateString();
  return h('time', {
    datetime: date.toISOString(),
    title: full.format(date),
    text: (today ? timeOnly : dateAndTime).format(date),
  });
}
