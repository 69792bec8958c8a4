// The unread count on the tab's icon (and on an installed app's icon, where
// the browser has app badges): the favicon with a round badge drawn on it,
// as an SVG made here from numbers only, never from anyone's text.

const ICON = '/favicon.svg';
let base = null;
let shown = '';

/** The favicon's own markup, fetched once (the service worker keeps it offline). */
function baseIcon() {
  base ??= fetch(ICON)
    .then((response) => (response.ok ? response.text() : null))
    .catch(() => null);
  return base;
}

/** What the badge says: up to 9, then "9+" (a favicon has room for two characters). */
export function badgeText(unread) {
  return unread > 9 ? '9+' : String(unread);
}

/**
 * Shows `unread` on the favicon; a mention among them makes the badge the
 * warning colour. Zero brings the plain icon back.
 */
export async function showUnreadOnIcon(unread, mentions = 0) {
  const key = unread ? `${badgeText(unread)}:${mentions ? 1 : 0}` : '';
  if (key === shown) return;
  shown = key;
  setAppBadge(unread);
  const link = document.querySelector('link[rel="icon"]');
  if (!link) return;
  if (!unread) {
    link.href = ICON;
    return;
  }
  const svg = await baseIcon();
  if (!svg || shown !== key) return;
  const fill = mentions ? '#dc2626' : '#1d4ed8';
  const text = badgeText(unread);
  const size = text.length > 1 ? 10 : 12;
  const badge =
    `<circle cx="23" cy="9" r="9" fill="${fill}" stroke="#fff" stroke-width="1.5"/>` +
    `<text x="23" y="9" dy=".35em" text-anchor="middle" font-family="system-ui,sans-serif" font-weight="700" font-size="${size}" fill="#fff">${text}</text>`;
  link.href = `data:image/svg+xml,${encodeURIComponent(svg.replace('</svg>', `${badge}</svg>`))}`;
}

/** The installed app's own badge, where the browser offers one. */
function setAppBadge(unread) {
  if (!('setAppBadge' in navigator)) return;
  const done = unread ? navigator.setAppBadge(unread) : navigator.clearAppBadge();
  done?.catch?.(() => {});
}
