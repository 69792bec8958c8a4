// The files a message carries, as the timeline shows them: pictures as
// previews (the server's thumbnail, their box reserved from the known size so
// nothing jumps as they load) that open a lightbox, and any other file as a
// chip with an icon by its type, its name, its size and a download link.
//
// The lightbox is a modal dialog: Escape closes it, the arrow keys move
// between the pictures of the same message, and focus goes back to the
// preview that opened it.

import { h } from './dom.js';

// Pictures the server shows inline and measures; anything else is a download.
const PICTURES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
// The box a preview fits in, in CSS pixels (the column may be narrower: CSS shrinks it).
const PREVIEW_WIDTH = 320;
const PREVIEW_HEIGHT = 240;
const UNITS = ['bytes', 'KiB', 'MiB', 'GiB'];
const SVG = 'http://www.w3.org/2000/svg';

/** @param {string} id a file's id */
export const fileUrl = (id) => `/api/v1/files/${encodeURIComponent(id)}`;

/** "1.4 MiB": a size for people. */
export function humanSize(bytes) {
  let value = Number(bytes) || 0;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return value === 1 ? '1 byte' : `${value} bytes`;
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${UNITS[unit]}`;
}

/** True for a file shown as a picture: one the server knows the size of, in a format it shows inline. */
export function isPicture(file) {
  return PICTURES.has(file.type) && file.width > 0 && file.height > 0;
}

/**
 * The files under a message's body, or null when it carries none.
 * @param {object[]|undefined} files the message's FILE objects
 */
export function filesElement(files) {
  if (!files?.length) return null;
  const pictures = files.filter(isPicture);
  const others = files.filter((file) => !isPicture(file));
  return h(
    'div',
    { class: 'message-files' },
    pictures.length
      ? h('ul', { class: 'file-previews', 'aria-label': pictures.length === 1 ? 'Picture' : `${pictures.length} pictures` }, ...pictures.map(previewElement))
      : null,
    others.length ? h('ul', { class: 'file-chips', 'aria-label': others.length === 1 ? 'File' : `${others.length} files` }, ...others.map(chipElement)) : null,
  );
}

function previewElement(file) {
  const scale = Math.min(1, PREVIEW_WIDTH / file.width, PREVIEW_HEIGHT / file.height);
  const width = Math.max(1, Math.round(file.width * scale));
  const height = Math.max(1, Math.round(file.height * scale));
  return h(
    'li',
    {},
    h(
      'button',
      {
        type: 'button',
        class: 'file-preview message-control',
        tabindex: '-1',
        'aria-haspopup': 'dialog',
        'aria-label': `Open picture ${file.name}`,
        'data-file-id': file.id,
        'data-name': file.name,
        'data-size': file.size,
        'data-width': file.width,
        'data-height': file.height,
        'data-focus-key': `file:${file.id}`,
      },
      h('img', {
        src: file.thumb ? `${fileUrl(file.id)}/thumb` : fileUrl(file.id),
        alt: '',
        width,
        height,
        loading: 'lazy',
        decoding: 'async',
      }),
    ),
  );
}

function chipElement(file) {
  const size = humanSize(file.size);
  return h(
    'li',
    {},
    h(
      'a',
      {
        class: 'file-chip message-control',
        href: fileUrl(file.id),
        download: file.name,
        tabindex: '-1',
        title: `Download ${file.name}`,
        'data-focus-key': `file:${file.id}`,
      },
      // Read out as "Download NAME, SIZE": the visible words, with the hidden ones around them.
      h('span', { class: 'visually-hidden', text: 'Download ' }),
      fileIcon(file.type, file.name),
      h('span', { class: 'file-chip-name', dir: 'auto', text: file.name }),
      h('span', { class: 'visually-hidden', text: ', ' }),
      h('span', { class: 'file-chip-size', text: size }),
      downloadIcon(),
    ),
  );
}

/**
 * A file's kind, for its icon: picture, audio, video, archive, document or
 * anything else.
 */
export function fileKind(type = '', name = '') {
  const ext = /\.([a-z0-9]+)$/i.exec(name)?.[1]?.toLowerCase() ?? '';
  if (type.startsWith('image/')) return 'image';
  if (type.startsWith('audio/')) return 'audio';
  if (type.startsWith('video/')) return 'video';
  if (/zip|tar|gzip|x-7z|rar|compressed/.test(type) || ['zip', 'gz', 'tgz', 'tar', '7z', 'rar', 'xz', 'bz2'].includes(ext)) return 'archive';
  if (type === 'application/pdf' || type.startsWith('text/') || /document|msword|spreadsheet|presentation|json|xml/.test(type)) {
    return 'document';
  }
  return 'file';
}

/** The icon of a file's kind, drawn in script (no markup), silent to assistive technology. */
export function fileIcon(type, name) {
  const kind = fileKind(type, name);
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', `icon file-icon file-icon-${kind}`);
  const paths = ['M6 2.5h8l4.5 4.5v14.5H6z', 'M14 2.5V7h4.5'];
  paths.push(
    {
      image: 'M8.5 18l3-4 2 2.5 1.5-1.5 2 3zM9.5 11.5a1 1 0 1 0 0-.01',
      audio: 'M11 18.5a1.5 1.5 0 1 1 0-.01V11l4-1v6.5',
      video: 'M10 11v6l5-3z',
      archive: 'M11 3v2h1v2h-1v2h1v2h-1v3h2v-3',
      document: 'M9 12h6M9 15h6M9 18h4',
      file: '',
    }[kind],
  );
  for (const d of paths.filter(Boolean)) {
    const path = document.createElementNS(SVG, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}

function downloadIcon() {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', 'icon file-chip-download');
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', 'M12 4v11M7 10l5 5 5-5M5 20h14');
  svg.append(path);
  return svg;
}

/**
 * The picture viewer. One dialog, made on first use; it listens on the
 * message list for presses on previews.
 */
export class Lightbox {
  /** @param {HTMLElement} list the timeline's message list */
  constructor(list) {
    this.list = list;
    this.dialog = null;
    /** @type {{id: string, name: string, size: number, width: number, height: number}[]} the message's pictures */
    this.pictures = [];
    this.index = 0;
    /** The preview that opened it, by message and file, to give focus back even after a re-render. */
    this.opener = null;
    list.addEventListener('click', (event) => {
      const preview = event.target.closest('button.file-preview');
      if (preview) this.open(preview);
    });
  }

  /** Shows the picture of `preview`, with the other pictures of its message a key away. */
  open(preview) {
    const li = preview.closest('li.message');
    const previews = [...(li ?? preview.parentElement).querySelectorAll('button.file-preview')];
    this.pictures = previews.map((b) => ({
      id: b.dataset.fileId,
      name: b.dataset.name,
      size: Number(b.dataset.size),
      width: Number(b.dataset.width),
      height: Number(b.dataset.height),
    }));
    this.index = Math.max(0, previews.indexOf(preview));
    this.opener = { li, fileId: preview.dataset.fileId, element: preview };
    this.build();
    this.render();
    if (!this.dialog.open) this.dialog.showModal();
    this.dialog.querySelector('.lightbox-close').focus();
  }

  move(step) {
    if (this.pictures.length < 2) return;
    this.index = (this.index + step + this.pictures.length) % this.pictures.length;
    this.render();
  }

  render() {
    const picture = this.pictures[this.index];
    const many = this.pictures.length > 1;
    this.title.textContent = picture.name;
    this.counter.textContent = many ? `Picture ${this.index + 1} of ${this.pictures.length}` : '';
    this.counter.hidden = !many;
    this.image.alt = picture.name;
    this.image.width = picture.width;
    this.image.height = picture.height;
    this.image.src = fileUrl(picture.id);
    this.download.href = fileUrl(picture.id);
    this.download.setAttribute('download', picture.name);
    this.download.setAttribute('aria-label', `Download ${picture.name}, ${humanSize(picture.size)}`);
    this.previous.hidden = !many;
    this.next.hidden = !many;
  }

  /** Makes the dialog the first time it is needed. */
  build() {
    if (this.dialog) return;
    this.title = h('h2', { id: 'lightbox-title', class: 'lightbox-title', dir: 'auto' });
    this.counter = h('p', { id: 'lightbox-counter', class: 'lightbox-counter', 'aria-live': 'polite' });
    this.image = h('img', { class: 'lightbox-image', alt: '' });
    this.download = h('a', { class: 'button small subtle', href: '#', text: 'Download' });
    const close = h('button', { type: 'button', class: 'button small lightbox-close', text: 'Close' });
    this.previous = h('button', { type: 'button', class: 'lightbox-step previous', 'aria-label': 'Previous picture', title: 'Previous picture', text: '‹' });
    this.next = h('button', { type: 'button', class: 'lightbox-step next', 'aria-label': 'Next picture', title: 'Next picture', text: '›' });
    this.dialog = h(
      'dialog',
      { class: 'lightbox', 'aria-labelledby': 'lightbox-title', 'aria-describedby': 'lightbox-counter' },
      h('div', { class: 'lightbox-head' }, h('div', { class: 'lightbox-heading' }, this.title, this.counter), this.download, close),
      h('div', { class: 'lightbox-stage' }, this.previous, this.image, this.next),
    );
    close.addEventListener('click', () => this.dialog.close());
    this.previous.addEventListener('click', () => this.move(-1));
    this.next.addEventListener('click', () => this.move(1));
    this.dialog.addEventListener('keydown', (event) => {
      if (event.altKey || event.ctrlKey || event.metaKey) return;
      const step = { ArrowLeft: -1, ArrowRight: 1 }[event.key];
      if (!step) return;
      event.preventDefault();
      this.move(step);
    });
    // A click on the dark backdrop (the dialog itself, not its contents) closes it.
    this.dialog.addEventListener('click', (event) => {
      if (event.target === this.dialog || event.target.classList.contains('lightbox-stage')) this.dialog.close();
    });
    this.dialog.addEventListener('close', () => this.returnFocus());
    document.body.append(this.dialog);
  }

  /** Focus goes back to the preview that opened the lightbox (found again if its message was re-rendered). */
  returnFocus() {
    const { opener } = this;
    this.opener = null;
    this.image.removeAttribute('src');
    if (!opener) return;
    let target = opener.element;
    if (!target.isConnected) {
      const li = opener.li?.isConnected ? opener.li : null;
      target = li?.querySelector(`button.file-preview[data-file-id="${CSS.escape(opener.fileId)}"]`) ?? li;
    }
    target?.focus();
  }
}
