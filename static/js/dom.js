// Small DOM helpers. Everything the UI builds goes through `h`, which only ever
// creates elements, attributes and text nodes: there is no path from user
// content to HTML parsing, so a message can never become markup.

/**
 * Creates an element. `props` keys: `class`, `text` (textContent), `on<event>`
 * (listener), anything else becomes an attribute (`true` = present, `false`
 * or null = absent). Children may be nodes or strings (added as text).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child != null && child !== false) el.append(child);
  }
  return el;
}

/** Looks up an element that index.html is known to contain. */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html lacks #${id}`);
  return el;
}

/** Shows `text` in an element that is hidden while empty (error lines, notices). */
export function setMessage(el, text) {
  el.textContent = text ?? '';
  el.hidden = !text;
}

/**
 * A colour class for a user, derived from their id so everyone sees the same
 * colour for the same person. Classes, not inline styles: the CSP forbids those.
 */
export function hueClass(id) {
  let hash = 0;
  for (const ch of String(id)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `hue-${hash % 8}`;
}

/** The first letter of a name, for avatars. */
export function initial(name) {
  const first = [...String(name ?? '?').trim()][0];
  return (first ?? '?').toUpperCase();
}

/** Closes a modal dialog when a click lands on its backdrop, outside its box. */
export function closeOnOutsideClick(dialog) {
  dialog.addEventListener('click', (event) => {
    if (event.target !== dialog) return;
    const box = dialog.getBoundingClientRect();
    const inside =
      event.clientX >= box.left && event.clientX <= box.right && event.clientY >= box.top && event.clientY <= box.bottom;
    if (!inside) dialog.close();
  });
}
