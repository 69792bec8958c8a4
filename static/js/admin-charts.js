// Small line charts for the admin panel's health figures: inline SVG built
// as DOM nodes (no library, no markup strings). Each chart keeps the last
// few dozen readings, draws them as a line with a dot per reading, and is
// one image to a screen reader, named with the figure's latest value and
// its range.

import { h } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 240;
const HEIGHT = 64;
const PAD = 4;

function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  return el;
}

export class Chart {
  /**
   * @param {string} label what the figure is, e.g. "Connections"
   * @param {(value: number) => string} format how a value reads, e.g. "12 ms"
   * @param {number} keep how many readings to keep
   */
  constructor(label, format, keep = 60) {
    this.label = label;
    this.format = format;
    this.keep = keep;
    /** @type {(number|null)[]} null: no value for that reading (nothing to measure) */
    this.values = [];
    this.now = h('span', { class: 'admin-figure-value', text: '–' });
    this.line = svg('polyline', { class: 'admin-chart-line', points: '' });
    this.dots = svg('g', { class: 'admin-chart-dots' });
    this.image = svg('svg', {
      class: 'admin-chart',
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      preserveAspectRatio: 'none',
      role: 'img',
      'aria-label': `${label}: no readings yet`,
    });
    this.image.append(svg('line', { class: 'admin-chart-axis', x1: 0, y1: HEIGHT - PAD, x2: WIDTH, y2: HEIGHT - PAD }), this.line, this.dots);
    this.element = h(
      'figure',
      { class: 'admin-figure' },
      h('figcaption', { class: 'admin-figure-head' }, h('span', { class: 'admin-figure-label', text: label }), this.now),
      this.image,
    );
  }

  /** Adds one reading (`null` when there was nothing to measure) and redraws. */
  push(value) {
    this.values.push(Number.isFinite(value) ? value : null);
    if (this.values.length > this.keep) this.values.shift();
    this.draw();
  }

  clear() {
    this.values = [];
    this.draw();
  }

  draw() {
    const known = this.values.filter((v) => v != null);
    const latest = this.values.at(-1);
    this.now.textContent = latest == null ? '–' : this.format(latest);
    const max = Math.max(1e-9, ...known);
    const step = (WIDTH - 2 * PAD) / Math.max(1, this.keep - 1);
    const offset = this.keep - this.values.length;
    const points = [];
    this.dots.replaceChildren();
    this.values.forEach((v, i) => {
      if (v == null) return;
      const x = PAD + (offset + i) * step;
      const y = HEIGHT - PAD - (v / max) * (HEIGHT - 2 * PAD);
      points.push(`${x.toFixed(1)},${y.toFixed(1)}`);
      // The chart stretches to its box; a dot's size is its stroke, which
      // does not stretch, so it stays round.
      this.dots.append(svg('circle', { class: 'admin-chart-dot', cx: x.toFixed(1), cy: y.toFixed(1), r: 0.5 }));
    });
    this.line.setAttribute('points', points.join(' '));
    const summary = known.length
      ? `${this.label}: now ${latest == null ? 'no reading' : this.format(latest)}; over the last ${this.values.length} readings from ${this.format(Math.min(...known))} to ${this.format(Math.max(...known))}`
      : `${this.label}: no readings yet`;
    this.image.setAttribute('aria-label', summary);
  }
}

/**
 * The p-th percentile (0–1) of what a histogram observed between two
 * readings (`{count, buckets: [[bound|null, cumulative]]}`), as the upper
 * bound of the bucket it falls in, in seconds; null when nothing was observed.
 */
export function percentileBetween(before, after, p) {
  if (!before || !after) return null;
  const total = after.count - before.count;
  if (!(total > 0)) return null;
  const wanted = p * total;
  let lastBound = null;
  for (let i = 0; i < after.buckets.length; i += 1) {
    const [bound, cumulative] = after.buckets[i];
    const earlier = before.buckets[i]?.[1] ?? 0;
    if (bound != null) lastBound = bound;
    if (cumulative - earlier >= wanted) return bound ?? lastBound;
  }
  return lastBound;
}
