// Turning message text and times into DOM. Message bodies become text nodes,
// with http(s) URLs as links; nothing is ever parsed as HTML. Times and dates
// are written the way the browser's locale writes them (12 or 24 hours, the
// order of day and month), never in a fixed format.

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

// `hour: 'numeric'` leaves the 12/24-hour choice and any padding to the
// locale: "9:05 AM" in en-US, "09:05" in en-GB and de-DE.
const clock = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });
const dayThisYear = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long' });
const dayOtherYear = new Intl.DateTimeFormat(undefined, { dateStyle: 'full' });
const relativeDay = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** A `<time>` with the clock time; the full date and time on hover. */
export function timeElement(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h('time', { text: '' });
  return h('time', { datetime: date.toISOString(), title: full.format(date), text: clock.format(date) });
}

/** The local calendar day of an ISO time, as a comparable key ("2026-11-30"). */
export function dayKey(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return `${date.getFullYear()}-${date.getMonth() + 1}-${date.getDate()}`;
}

/** "Today", "Yesterday" (in the locale's words), or the date. */
export function dayLabel(iso) {
  const date = new Date(iso);
  const now = new Date();
  const startOf = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const days = Math.round((startOf(date) - startOf(now)) / 86_400_000);
  if (days === 0 || days === -1) return capitalise(relativeDay.format(days, 'day'));
  return (date.getFullYear() === now.getFullYear() ? dayThisYear : dayOtherYear).format(date);
}

function capitalise(text) {
  return text.charAt(0).toLocaleUpperCase() + text.slice(1);
}
