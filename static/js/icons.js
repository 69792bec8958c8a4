// Icons drawn in script. `h` makes HTML elements, and SVG needs its own
// namespace, so icons that carry meaning are built here, each with a label.

const SVG = 'http://www.w3.org/2000/svg';

/**
 * The padlock of a private room: an image to assistive technology, named by
 * `label`, with the drawing itself hidden.
 */
export function lockIcon(label = 'Private room') {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'icon');
  svg.setAttribute('aria-hidden', 'true');
  const body = document.createElementNS(SVG, 'rect');
  for (const [key, value] of Object.entries({ x: 5, y: 11, width: 14, height: 10, rx: 2 })) {
    body.setAttribute(key, String(value));
  }
  const shackle = document.createElementNS(SVG, 'path');
  shackle.setAttribute('d', 'M8 11V8a4 4 0 0 1 8 0v3');
  svg.append(body, shackle);
  const wrap = document.createElement('span');
  wrap.className = 'lock';
  wrap.setAttribute('role', 'img');
  wrap.setAttribute('aria-label', label);
  wrap.title = label;
  wrap.append(svg);
  return wrap;
}
