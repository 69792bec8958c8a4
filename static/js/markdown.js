// Message formatting: a body's source text becomes DOM nodes. The stored body
// is always the source; this only decides how it looks.
//
// A small Markdown-like syntax, in two steps: a parser that turns the text
// into a tree of plain objects, and a builder that makes elements from the
// tree with createElement and text nodes, so nothing typed is ever parsed as
// HTML. Every parsing step is linear or close to it in the body's length
// (matching brackets and backtick runs are found in one pass each, emphasis
// uses CommonMark's delimiter stack with its "openers bottom" bounds, regular
// expressions are anchored and cannot backtrack badly), so no body can stall
// the page.
//
// Blocks (full mode only): ``` or ~~~ fenced code with its language,
// `> ` quotes (nested up to MAX_QUOTE_DEPTH), `-`/`*`/`+` and `1.` lists with
// one level of nesting by indentation. Inline: `code`, **strong**, __strong__,
// *em*, _em_, ~~del~~, [text](url) for http, https and mailto only, bare
// http(s) URLs and e-mail addresses, and \-escapes. `*` and `_` inside a word
// are literal (snake_case, 2*3*4).

import { h } from './dom.js';

/** Protocols a `[text](url)` may point at; anything else stays literal text. */
const LINK_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);
/** Protocols of bare URLs. */
const AUTOLINK_PROTOCOLS = new Set(['http:', 'https:']);
const LINK_REL = 'noopener noreferrer nofollow';
const MAX_QUOTE_DEPTH = 4;
/** Deeper emphasis is dropped, its text kept: it shows nothing more and keeps the DOM shallow. */
const MAX_INLINE_DEPTH = 16;
/** A `[text](url)` destination longer than this is not a link. */
const MAX_URL = 2048;

const FENCE = /^ {0,3}(`{3,}|~{3,})(.*)$/;
const LIST_ITEM = /^( *)([-*+]|\d{1,9}[.)])[ \t]+(.*)$/;
const QUOTE = /^ {0,3}> ?/;
const LANGUAGE = /^[\w+#.-]{1,32}$/;
// Bounded, so a body of failing candidates ("http://[" over and over) costs
// at most MAX_URL characters a try.
const URL_AT = /https?:\/\/[^\s<>"`]{1,2048}/iy;
const EMAIL_AT = /[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+/y;
const EMAIL_CHAR = /[\w.%+-]/;
const ALNUM = /[A-Za-z0-9]/;
const WORD = /[\p{L}\p{N}_]/u;
const SPACE = /\s/u;
const PUNCT = /[\p{P}\p{S}]/u;
const MENTION = /@([A-Za-z0-9_.-]+)/g;
const NAME_CHAR = /[A-Za-z0-9_.@-]/;
const ESCAPABLE = /[!-/:-@[-`{-~]/;
// Punctuation that usually ends the sentence around a URL rather than the URL.
const TRAILING_PUNCTUATION = /[.,;:!?'"»”’)\]}>*_~]+$/;

/**
 * Appends `body`, formatted, to `parent`.
 * @param {Element} parent
 * @param {string} body the source text
 * @param {object} [options]
 * @param {boolean} [options.inline] only inline formatting, no blocks, and
 *   links as their text (for a one-line excerpt inside a button or a link)
 * @param {Array<[number, number]>} [options.marks] [start, end) ranges in
 *   UTF-16 units of `body` to wrap in `<mark>` (inline mode only)
 * @param {Iterable<string>} [options.mentions] names (any case, without the
 *   `@`) whose `@name` outside code is shown as a mention of the reader
 */
export function renderBody(parent, body, { inline = false, marks = null, mentions = null } = {}) {
  const text = String(body ?? '');
  const tree = inline ? parseInline(text, prepare(text), 0, text.length, 'text') : parseBlocks(text.split(/\r?\n/), 0);
  const ctx = {
    marks: inline && marks?.length ? mergeRanges(marks) : null,
    names: mentions ? new Set([...mentions].map((name) => name.toLowerCase())) : null,
  };
  for (const node of tree) build(parent, node, text, ctx);
}

/** The text a formatted body shows, without its markers (for speech and previews). */
export function plainText(body) {
  const box = document.createElement('div');
  renderBody(box, body);
  return box.textContent;
}

/** The normalised href when `raw` is an absolute URL with an allowed protocol, else null. */
export function safeHref(raw, protocols = LINK_PROTOCOLS) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  // Checked after parsing, so `JaVa\tScRiPt:`, leading spaces and the like
  // are judged as the browser would follow them.
  return protocols.has(url.protocol) ? url.href : null;
}

// ---- Blocks ---------------------------------------------------------------

/**
 * Lines to block nodes: {type: 'pre', lang, text}, {type: 'quote', children},
 * {type: 'list', ordered, start, items: [{children, sub}]}, {type: 'para', children}.
 */
function parseBlocks(lines, depth) {
  const blocks = [];
  let para = [];
  const endPara = () => {
    if (para.length) blocks.push({ type: 'para', lines: para });
    para = [];
  };
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = FENCE.exec(line);
    if (fence && !(fence[1][0] === '`' && fence[2].includes('`'))) {
      endPara();
      const end = closingFence(lines, i + 1, fence[1]);
      const info = fence[2].trim().split(/\s+/)[0];
      blocks.push({ type: 'pre', lang: LANGUAGE.test(info) ? info : '', text: lines.slice(i + 1, end).join('\n') });
      i = end + 1;
      continue;
    }
    if (depth < MAX_QUOTE_DEPTH && QUOTE.test(line)) {
      endPara();
      const quoted = [];
      while (i < lines.length && QUOTE.test(lines[i])) quoted.push(lines[i++].replace(QUOTE, ''));
      blocks.push({ type: 'quote', children: parseBlocks(quoted, depth + 1) });
      continue;
    }
    const item = LIST_ITEM.exec(line);
    if (item && item[1].length <= 3) {
      endPara();
      i = parseList(lines, i, blocks);
      continue;
    }
    para.push(line);
    i += 1;
  }
  endPara();
  // Blank lines next to a block are the block's margin, not extra lines.
  const out = [];
  for (const [index, block] of blocks.entries()) {
    if (block.type !== 'para') {
      out.push(block);
      continue;
    }
    let { lines: text } = block;
    let from = 0;
    let to = text.length;
    if (index > 0) while (from < to && text[from].trim() === '') from += 1;
    if (index < blocks.length - 1) while (to > from && text[to - 1].trim() === '') to -= 1;
    if (to > from) out.push(inlineBlock('para', text.slice(from, to).join('\n')));
  }
  return out;
}

/** The index of the line closing a fence opened by `marker`, or lines.length. */
function closingFence(lines, from, marker) {
  for (let i = from; i < lines.length; i += 1) {
    const close = FENCE.exec(lines[i]);
    if (close && close[1][0] === marker[0] && close[1].length >= marker.length && close[2].trim() === '') return i;
  }
  return lines.length;
}

/** Parses the list starting at line `start` into `blocks`; returns the next line. */
function parseList(lines, start, blocks) {
  const first = LIST_ITEM.exec(lines[start]);
  const indent = first[1].length;
  const ordered = isOrdered(first[2]);
  const list = { type: 'list', ordered, start: ordered ? Number.parseInt(first[2], 10) : 1, items: [] };
  let i = start;
  for (; i < lines.length; i += 1) {
    const line = lines[i];
    const item = LIST_ITEM.exec(line);
    const last = list.items.at(-1);
    if (item && item[1].length >= indent + 2 && last) {
      last.sub ??= { type: 'list', ordered: isOrdered(item[2]), start: 1, items: [] };
      if (last.sub.items.length === 0 && last.sub.ordered) last.sub.start = Number.parseInt(item[2], 10);
      last.sub.items.push({ lines: [item[3]] });
    } else if (item && item[1].length <= indent + 1 && isOrdered(item[2]) === ordered) {
      list.items.push({ lines: [item[3]], sub: null });
    } else if (!item && last && /^ {2,}\S/.test(line)) {
      // An indented line goes on with the item above it.
      (last.sub?.items.at(-1) ?? last).lines.push(line.trim());
    } else {
      break;
    }
  }
  const finish = (target) => {
    target.items = target.items.map(({ lines: text, sub }) => ({
      ...inlineBlock('item', text.join('\n')),
      sub: sub ? finish(sub) : null,
    }));
    return target;
  };
  blocks.push(finish(list));
  return i;
}

function isOrdered(marker) {
  return marker >= '0' && marker <= '9';
}

/** A block of inline content: the text is kept, since its nodes point into it. */
function inlineBlock(type, text) {
  return { type, text, children: parseInline(text, prepare(text), 0, text.length, 'anchor') };
}

// ---- Inline ---------------------------------------------------------------

/**
 * Precomputes, in one pass each, where every code span ends, which `]`
 * closes every `[` (outside code spans), which `)` closes every `(`, and
 * where the next white space is; escaped characters are skipped. Links are
 * then found in constant time each, however many brackets a body holds.
 */
function prepare(s) {
  const code = new Map();
  // Backtick runs, grouped by length; each opener takes the next run of its length.
  const runs = new Map();
  const order = [];
  for (let i = 0; i < s.length; ) {
    if (s[i] === '\\') {
      i += 2;
      continue;
    }
    if (s[i] !== '`') {
      i += 1;
      continue;
    }
    let j = i;
    while (s[j] === '`') j += 1;
    const length = j - i;
    if (!runs.has(length)) runs.set(length, []);
    runs.get(length).push(i);
    order.push([i, length]);
    i = j;
  }
  const next = new Map([...runs.keys()].map((length) => [length, 0]));
  let reached = 0;
  for (const [at, length] of order) {
    if (at < reached) continue;
    const list = runs.get(length);
    let k = next.get(length);
    while (k < list.length && list[k] <= at) k += 1;
    next.set(length, k + 1);
    if (k < list.length) {
      code.set(at, { from: at + length, to: list[k], end: list[k] + length });
      reached = list[k] + length;
    }
  }
  const close = new Int32Array(s.length).fill(-1);
  const brackets = [];
  for (let i = 0; i < s.length; i += 1) {
    const c = s[i];
    if (c === '\\') i += 1;
    else if (c === '`' && code.has(i)) i = code.get(i).end - 1;
    else if (c === '[') brackets.push(i);
    else if (c === ']' && brackets.length) close[brackets.pop()] = i;
  }
  // A link's destination may hold balanced parentheses, code spans or not;
  // `blank` is where the next white space (or `<`) is, which ends it.
  const paren = new Int32Array(s.length).fill(-1);
  const blank = new Int32Array(s.length + 1).fill(s.length);
  const parens = [];
  for (let i = 0; i < s.length; i += 1) {
    const c = s[i];
    if (c === '\\') i += 1;
    else if (c === '(') parens.push(i);
    else if (c === ')' && parens.length) paren[parens.pop()] = i;
  }
  for (let i = s.length - 1; i >= 0; i -= 1) blank[i] = SPACE.test(s[i]) || s[i] === '<' ? i : blank[i + 1];
  return { code, close, paren, blank };
}

/**
 * Inline nodes of s[from, to): {type: 'text'|'code', at, end} (a slice of s),
 * {type: 'strong'|'em'|'del', children}, {type: 'link', href, children}.
 * `links`: 'anchor' makes links (and bare URLs and addresses), 'text' shows
 * a `[text](url)` as its text alone (href null), 'none' leaves it as typed.
 */
function parseInline(s, prep, from, to, links) {
  // The items form a linked list, so emphasis can wrap a run of them in O(1).
  const head = { next: null, prev: null };
  let tail = head;
  const push = (item) => {
    item.prev = tail;
    item.next = null;
    tail.next = item;
    tail = item;
    return item;
  };
  // The delimiter stack, also linked, with a sentinel at its bottom.
  const bottom = { dnext: null, dprev: null };
  let top = bottom;
  let textAt = -1;
  const flush = (end) => {
    if (textAt >= 0 && end > textAt) push({ type: 'text', at: textAt, end });
    textAt = -1;
  };
  const text = (at) => {
    if (textAt < 0) textAt = at;
  };

  let i = from;
  while (i < to) {
    const c = s[i];
    if (c === '\\' && i + 1 < to && ESCAPABLE.test(s[i + 1])) {
      flush(i);
      textAt = i + 1;
      i += 2;
      continue;
    }
    if (c === '`') {
      const span = prep.code.get(i);
      if (span && span.end <= to) {
        flush(i);
        push({ type: 'code', at: span.from, end: span.to });
        i = span.end;
      } else {
        text(i);
        while (i < to && s[i] === '`') i += 1;
      }
      continue;
    }
    if (c === '[' && links !== 'none') {
      const link = linkAt(s, prep, i, to);
      if (link) {
        flush(i);
        const children = parseInline(s, prep, i + 1, link.textEnd, 'none');
        push({ type: 'link', href: links === 'anchor' ? link.href : null, children });
        i = link.end;
        continue;
      }
    }
    if (c === '*' || c === '_' || c === '~') {
      let j = i;
      while (j < to && s[j] === c) j += 1;
      const delim = c === '~' && j - i !== 2 ? null : delimiter(s, i, j, from, to);
      if (delim && (delim.canOpen || delim.canClose)) {
        flush(i);
        push(delim);
        delim.dprev = top;
        top.dnext = delim;
        top = delim;
      } else {
        text(i);
      }
      i = j;
      continue;
    }
    if (links === 'anchor' && (c === 'h' || c === 'H') && (i === from || !WORD.test(s[i - 1]))) {
      const end = autolinkEnd(s, URL_AT, i, to);
      const href = end && safeHref(s.slice(i, end), AUTOLINK_PROTOCOLS);
      if (href) {
        flush(i);
        push({ type: 'link', href, children: [{ type: 'text', at: i, end }] });
        i = end;
        continue;
      }
    }
    if (links === 'anchor' && ALNUM.test(c) && (i === from || !EMAIL_CHAR.test(s[i - 1]))) {
      EMAIL_AT.lastIndex = i;
      const match = EMAIL_AT.exec(s);
      const end = match && i + match[0].length <= to ? i + match[0].length : 0;
      const href = end && safeHref(`mailto:${s.slice(i, end)}`);
      if (href) {
        flush(i);
        push({ type: 'link', href, children: [{ type: 'text', at: i, end }] });
        i = end;
        continue;
      }
    }
    text(i);
    i += 1;
  }
  flush(to);
  processEmphasis(bottom);
  return toNodes(head.next);
}

/** A `[text](url)` at `i` with an allowed URL: its href and where it ends; else null. */
function linkAt(s, prep, i, to) {
  const textEnd = prep.close[i];
  if (textEnd < 0 || textEnd + 1 >= to || s[textEnd + 1] !== '(') return null;
  // The destination runs to the `)` that balances its parentheses
  // (https://en.wikipedia.org/wiki/Fire_(element)); white space ends it.
  const end = prep.paren[textEnd + 1];
  if (end < 0 || end >= to || prep.blank[textEnd + 2] < end || end - textEnd - 2 > MAX_URL) return null;
  const href = safeHref(s.slice(textEnd + 2, end));
  return href ? { href, textEnd, end: end + 1 } : null;
}

/** Where a bare URL or address matched by `pattern` at `i` ends, sentence punctuation dropped. */
function autolinkEnd(s, pattern, i, to) {
  pattern.lastIndex = i;
  const match = pattern.exec(s);
  if (!match) return 0;
  const candidate = s.slice(i, Math.min(to, i + match[0].length));
  let url = candidate.replace(TRAILING_PUNCTUATION, '');
  // "https://en.wikipedia.org/wiki/Fire_(element)" keeps its ")".
  if (candidate.slice(url.length).startsWith(')') && count(url, '(') > count(url, ')')) url += ')';
  return url.includes('://') && url.length > url.indexOf('://') + 3 ? i + url.length : 0;
}

function count(text, ch) {
  return text.split(ch).length - 1;
}

/** A delimiter run s[i, j) of `*`, `_` or `~~`, with whether it may open and close. */
function delimiter(s, i, j, from, to) {
  const before = i > from ? s[i - 1] : ' ';
  const after = j < to ? s[j] : ' ';
  const spaceBefore = SPACE.test(before);
  const spaceAfter = SPACE.test(after);
  const punctBefore = PUNCT.test(before);
  const punctAfter = PUNCT.test(after);
  const left = !spaceAfter && (!punctAfter || spaceBefore || punctBefore);
  const right = !spaceBefore && (!punctBefore || spaceAfter || punctAfter);
  const ch = s[i];
  // Unlike CommonMark, `*` inside a word is literal too, like `_`: 2*3*4.
  const canOpen = ch === '~' ? left : left && (!right || punctBefore);
  const canClose = ch === '~' ? right : right && (!left || punctAfter);
  return { type: 'delim', ch, at: i, end: j, count: j - i, length: j - i, canOpen, canClose, dprev: null, dnext: null };
}

/** CommonMark's "process emphasis", wrapping matched runs in strong, em or del. */
function processEmphasis(stackBottom) {
  const openersBottom = new Map();
  const unlink = (d) => {
    d.dprev.dnext = d.dnext;
    if (d.dnext) d.dnext.dprev = d.dprev;
  };
  const remove = (item) => {
    item.prev.next = item.next;
    if (item.next) item.next.prev = item.prev;
  };
  let closer = stackBottom.dnext;
  while (closer) {
    if (!closer.canClose) {
      closer = closer.dnext;
      continue;
    }
    const key = `${closer.ch}${closer.canOpen ? 1 : 0}${closer.length % 3}`;
    const stop = openersBottom.get(key) ?? stackBottom;
    let opener = closer.dprev;
    while (opener !== stop && opener !== stackBottom) {
      if (opener.ch === closer.ch && opener.canOpen && opener.count > 0 && !ruleOfThree(opener, closer)) break;
      opener = opener.dprev;
    }
    if (opener === stop || opener === stackBottom) {
      openersBottom.set(key, closer.dprev);
      const next = closer.dnext;
      if (!closer.canOpen) unlink(closer);
      closer = next;
      continue;
    }
    const use = closer.ch === '~' ? 2 : opener.count >= 2 && closer.count >= 2 ? 2 : 1;
    const type = closer.ch === '~' ? 'del' : use === 2 ? 'strong' : 'em';
    // Delimiters between the two can no longer match anything.
    opener.dnext = closer;
    closer.dprev = opener;
    const first = opener.next === closer ? null : opener.next;
    const last = closer.prev;
    const wrap = { type, first, prev: opener, next: closer };
    if (first) {
      first.prev = null;
      last.next = null;
    }
    opener.next = wrap;
    closer.prev = wrap;
    opener.count -= use;
    opener.end -= use;
    closer.count -= use;
    closer.at += use;
    if (opener.count === 0) {
      remove(opener);
      unlink(opener);
    }
    if (closer.count === 0) {
      const next = closer.dnext;
      remove(closer);
      unlink(closer);
      closer = next;
    }
  }
}

function ruleOfThree(opener, closer) {
  if (closer.ch === '~') return false;
  return (
    (opener.canClose || closer.canOpen) &&
    (opener.length + closer.length) % 3 === 0 &&
    !(opener.length % 3 === 0 && closer.length % 3 === 0)
  );
}

/**
 * The linked items from `first` on, as plain nodes (wrapped runs become
 * children). Below MAX_INLINE_DEPTH levels, emphasis is dropped and its
 * contents kept, without recursion, so no body can exhaust the stack.
 */
function toNodes(first, depth = 0) {
  const nodes = [];
  for (let item = first; item; item = item.next) {
    if (!WRAPS.has(item.type)) nodes.push(leaf(item));
    else if (depth < MAX_INLINE_DEPTH) nodes.push({ type: item.type, children: toNodes(item.first, depth + 1) });
    else flatten(item.first, nodes);
  }
  return nodes;
}

const WRAPS = new Set(['strong', 'em', 'del']);

function flatten(first, out) {
  const resume = [];
  let item = first;
  while (item || resume.length) {
    if (!item) item = resume.pop();
    else if (WRAPS.has(item.type)) {
      if (item.next) resume.push(item.next);
      item = item.first;
    } else {
      out.push(leaf(item));
      item = item.next;
    }
  }
}

function leaf(item) {
  if (item.type === 'delim') return { type: 'text', at: item.at, end: item.end };
  if (item.type === 'link') return { type: 'link', href: item.href, children: item.children };
  return { type: item.type, at: item.at, end: item.end };
}

// ---- DOM ------------------------------------------------------------------

/** Appends the DOM for one tree node to `parent`; `source` is the text inline nodes point into. */
function build(parent, node, source, ctx) {
  const into = (el, children, text) => {
    for (const child of children) build(el, child, text, ctx);
    parent.append(el);
  };
  switch (node.type) {
    case 'para':
      for (const child of node.children) build(parent, child, node.text, ctx);
      break;
    case 'pre': {
      const code = h('code', node.lang ? { class: `language-${node.lang}` } : {}, node.text);
      parent.append(h('pre', node.lang ? { 'data-lang': node.lang } : {}, code));
      break;
    }
    case 'quote':
      into(h('blockquote'), node.children, source);
      break;
    case 'list': {
      const list = h(node.ordered ? 'ol' : 'ul', node.ordered && node.start !== 1 ? { start: String(node.start) } : {});
      for (const item of node.items) {
        const li = h('li');
        for (const child of item.children) build(li, child, item.text, ctx);
        if (item.sub) build(li, item.sub, source, ctx);
        list.append(li);
      }
      parent.append(list);
      break;
    }
    case 'text':
      if (ctx.names) appendMentions(parent, source, node.at, node.end, ctx.names);
      else appendMarked(parent, source, node.at, node.end, ctx.marks);
      break;
    case 'code': {
      const code = h('code');
      appendMarked(code, source, node.at, node.end, ctx.marks);
      parent.append(code);
      break;
    }
    case 'link':
      if (node.href) into(h('a', { href: node.href, title: node.href, target: '_blank', rel: LINK_REL }), node.children, source);
      else for (const child of node.children) build(parent, child, source, ctx);
      break;
    default:
      into(h(node.type), node.children, source);
  }
}

/** Appends s[at, end) as text, with the parts inside `marks` in `<mark>`. */
function appendMarked(parent, s, at, end, marks) {
  if (!marks) {
    parent.append(s.slice(at, end));
    return;
  }
  let pos = at;
  // Marks are few (a search's words); a plain walk is enough.
  for (const [start, stop] of marks) {
    if (stop <= pos) continue;
    if (start >= end) break;
    if (start > pos) parent.append(s.slice(pos, start));
    const markEnd = Math.min(stop, end);
    parent.append(h('mark', {}, s.slice(Math.max(start, pos), markEnd)));
    pos = markEnd;
  }
  if (pos < end) parent.append(s.slice(pos, end));
}

/**
 * Appends s[at, end) as text, with each `@name` of `names` in a mention
 * span. A name is found as the server finds it: after a character that
 * cannot be part of one, and without a trailing `.` or `-`.
 */
function appendMentions(parent, s, at, end, names) {
  const text = s.slice(at, end);
  let pos = 0;
  for (const match of text.matchAll(MENTION)) {
    const name = match[1].replace(/[.-]+$/, '');
    const start = match.index;
    if ((at + start > 0 && NAME_CHAR.test(s[at + start - 1])) || !names.has(name.toLowerCase())) continue;
    if (start > pos) parent.append(text.slice(pos, start));
    parent.append(h('span', { class: 'mention' }, `@${name}`));
    pos = start + 1 + name.length;
  }
  if (pos < text.length) parent.append(text.slice(pos));
}

function mergeRanges(ranges) {
  const sorted = ranges.filter(([a, b]) => b > a).sort((a, b) => a[0] - b[0]);
  const out = [];
  for (const [a, b] of sorted) {
    const last = out.at(-1);
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}
