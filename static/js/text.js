// Times and dates as DOM, written the way the browser's locale writes them
// (12 or 24 hours, the order of day and month), never in a fixed format.
// Message bodies are formatted by markdown.js.

import { h } from './dom.js';

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
