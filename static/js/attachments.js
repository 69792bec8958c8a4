// Files on their way into a message. They come from the attach button, from
// a drop anywhere on the room, or pasted into the message box; each uploads
// straight away (two at a time, the rest queued), as a chip above the box with
// a progress bar and a button that cancels it (or, once uploaded, takes it
// off the message). Sending while
// some still upload clears the box and sends when they finish; a failed
// upload is told in words and the text comes back to the box.
//
// Pending files belong to the room they were added in, so switching rooms
// and back keeps them.

import { uploadFile } from './api.js';
import { byId, h, setMessage } from './dom.js';
import { fileIcon, humanSize } from './file-view.js';

/** The most files one message may carry (the server's limit too). */
export const MAX_FILES = 10;
// Uploads run side by side, at most this many: the server refuses more at once
// from one person (`uploads_at_once`, 3 by default), and one at a time would
// leave a fast line idle.
const UPLOADS_AT_ONCE = 2;

/**
 * @typedef {object} Pending
 * @property {number} key
 * @property {string} name
 * @property {number} size
 * @property {string} type
 * @property {'queued'|'uploading'|'done'} state
 * @property {number} loaded bytes sent so far
 * @property {object|null} file the server's FILE once uploaded
 * @property {(() => void)|null} abort stops the upload (or takes it out of the queue)
 * @property {() => void} begin starts the upload when its turn comes
 * @property {boolean} cancelled the person cancelled or removed it
 * @property {boolean} sending a sent message waits for it
 * @property {Promise<object|null>} done the FILE, or null if it failed or was cancelled
 */

export class Attachments {
  /**
   * @param {object} options
   * @param {() => string|null} options.roomId the room whose box is shown
   * @param {(text: string) => void} options.onError shows a sentence by the box
   */
  constructor({ roomId, onError }) {
    this.roomId = roomId;
    this.onError = onError;
    this.list = byId('attachment-list');
    this.picker = byId('attach-input');
    this.dropZone = byId('drop-zone');
    this.chat = byId('chat');
    this.status = byId('attachment-status');
    /** @type {Map<string, Pending[]>} room id → its pending files, in the order added */
    this.byRoom = new Map();
    this.nextKey = 1;
    /** @type {Pending[]} uploads waiting for their turn, oldest first */
    this.queue = [];
    /** Uploads in progress. */
    this.running = 0;

    byId('attach-button').addEventListener('click', () => this.picker.click());
    this.picker.addEventListener('change', () => {
      this.add([...this.picker.files]);
      // The same file chosen again must fire `change` again.
      this.picker.value = '';
    });
    byId('composer-input').addEventListener('paste', (event) => {
      const files = [...(event.clipboardData?.files ?? [])];
      if (!files.length) return;
      // Text copied from an office program comes with a picture of itself: the text is what was meant.
      if (event.clipboardData.getData('text/plain').trim() && files.every((file) => file.type.startsWith('image/'))) return;
      event.preventDefault();
      this.add(files);
    });
    this.list.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-key]');
      if (button) this.remove(Number(button.dataset.key));
    });
    this.listenForDrops();
  }

  /** Stops every upload and forgets every pending file (logging out). */
  clear() {
    for (const pending of this.byRoom.values()) for (const item of [...pending]) item.abort?.();
    this.byRoom.clear();
    this.render();
  }

  /** The open room's pending files, uploaded or not. */
  pending(roomId = this.roomId()) {
    return this.byRoom.get(roomId) ?? [];
  }

  /** Starts uploading files into the open room, at most MAX_FILES in all. */
  add(files) {
    const roomId = this.roomId();
    if (!roomId || !files.length) return;
    const pending = this.pending(roomId);
    const room = MAX_FILES - pending.length;
    if (files.length > room) {
      this.onError(`A message can carry at most ${MAX_FILES} files; ${files.length > 1 && room > 0 ? `only the first ${room} of these were added.` : 'send this one first.'}`);
    }
    for (const file of files.slice(0, Math.max(0, room))) pending.push(this.start(roomId, file));
    this.byRoom.set(roomId, pending);
    this.render();
    this.pump();
  }

  /**
   * Sends the open room's files with `send` once all have uploaded, and then
   * takes them off the box. Returns at once; while some still upload their
   * chips stay (with Cancel) and the status line says the message waits.
   * If one fails meanwhile, `failed` runs instead of `send`, and the files
   * that did upload stay on the box for the next try.
   * @param {(files: object[]) => void} send
   * @param {() => void} failed
   */
  sendWhenReady(send, failed) {
    const roomId = this.roomId();
    const items = this.pending(roomId).filter((item) => !item.sending);
    const take = (kept) => {
      const pending = this.byRoom.get(roomId) ?? [];
      this.byRoom.set(roomId, pending.filter((item) => !kept.includes(item)));
      this.render();
      send(kept.map((item) => item.file));
    };
    // All uploaded (or none at all): sent now, as a message without files always was.
    if (items.every((item) => item.state === 'done')) {
      take(items);
      return;
    }
    for (const item of items) item.sending = true;
    this.render();
    Promise.all(items.map((item) => item.done)).then((results) => {
      for (const item of items) item.sending = false;
      const failures = items.filter((item, index) => results[index] == null && !item.cancelled);
      if (failures.length) {
        this.render();
        failed();
        return;
      }
      take(items.filter((item) => !item.cancelled));
    });
  }

  /**
   * Queues one file for upload; it starts when fewer than UPLOADS_AT_ONCE
   * are running, and updates its chip as it goes.
   */
  start(roomId, file) {
    const name = file.name || `pasted.${(file.type.split('/')[1] ?? 'bin').replace(/[^a-z0-9]/gi, '')}`;
    /** @type {Pending} */
    const item = {
      key: this.nextKey++,
      name,
      size: file.size,
      type: file.type,
      state: 'queued',
      loaded: 0,
      file: null,
      abort: null,
      cancelled: false,
      sending: false,
    };
    let settle;
    item.done = new Promise((resolve) => {
      settle = resolve;
    });
    const failed = (error) => {
      item.abort = null;
      this.drop(roomId, item);
      if (error.code !== 'aborted') this.onError(uploadError(name, file.size, error));
      settle(null);
    };
    // Until it starts, cancelling only takes it out of the queue.
    item.abort = () => {
      this.queue = this.queue.filter((queued) => queued !== item);
      failed({ code: 'aborted' });
    };
    item.begin = () => {
      item.state = 'uploading';
      this.running += 1;
      const upload = uploadFile(roomId, file, name, (loaded) => {
        item.loaded = loaded;
        this.renderProgress(item);
      });
      item.abort = upload.abort;
      upload.done
        .then((uploaded) => {
          item.state = 'done';
          item.file = uploaded;
          item.abort = null;
          this.render();
          settle(uploaded);
        }, failed)
        .finally(() => {
          this.running -= 1;
          this.pump();
        });
      this.render();
    };
    this.queue.push(item);
    return item;
  }

  /** Starts queued uploads while fewer than UPLOADS_AT_ONCE run. */
  pump() {
    while (this.running < UPLOADS_AT_ONCE && this.queue.length) this.queue.shift().begin();
  }

  /** The chip's button: cancels an upload, or takes an uploaded file off the message. */
  remove(key) {
    const roomId = this.roomId();
    const item = this.pending(roomId).find((i) => i.key === key);
    if (!item) return;
    const hadFocus = this.list.contains(document.activeElement);
    item.cancelled = true;
    item.abort?.();
    this.drop(roomId, item);
    if (hadFocus) (this.list.querySelector('button') ?? byId('composer-input')).focus();
  }

  drop(roomId, item) {
    const pending = this.byRoom.get(roomId);
    if (!pending) return;
    const at = pending.indexOf(item);
    if (at < 0) return;
    pending.splice(at, 1);
    this.render();
  }

  // ---- Rendering -----------------------------------------------------------------

  /** Shows the open room's pending files (none when no room is open). */
  render() {
    const pending = this.pending();
    this.list.replaceChildren(...pending.map((item) => this.chip(item)));
    this.list.hidden = pending.length === 0;
    this.renderStatus();
  }

  chip(item) {
    const uploading = item.state !== 'done';
    const label = uploading ? `Cancel upload of ${item.name}` : `Remove ${item.name}`;
    return h(
      'li',
      { class: `attachment-chip${uploading ? ' uploading' : ''}${item.sending ? ' sending' : ''}`, 'data-key': item.key },
      fileIcon(item.type, item.name),
      h(
        'span',
        { class: 'attachment-text' },
        h('span', { class: 'attachment-name', dir: 'auto', text: item.name }),
        h('span', { class: 'attachment-size', text: humanSize(item.size) }),
      ),
      uploading
        ? h('progress', {
            class: 'attachment-progress',
            max: String(Math.max(1, item.size)),
            value: String(item.loaded),
            'aria-label': item.state === 'queued' ? `Waiting to upload ${item.name}` : `Uploading ${item.name}`,
          })
        : h('span', { class: 'visually-hidden', text: 'Uploaded' }),
      h(
        'button',
        { type: 'button', class: 'icon-button small-icon attachment-remove', 'data-key': item.key, 'aria-label': label, title: label },
        crossIcon(),
      ),
    );
  }

  renderProgress(item) {
    const bar = this.list.querySelector(`li[data-key="${item.key}"] progress`);
    if (bar) bar.value = item.loaded;
  }

  /** "Your message will be sent when its 2 uploads finish." while a sent message waits. */
  renderStatus() {
    const left = this.pending().filter((item) => item.sending && item.state !== 'done').length;
    const text = !left
      ? ''
      : left === 1
        ? 'Your message will be sent when its upload finishes.'
        : `Your message will be sent when its ${left} uploads finish.`;
    setMessage(this.status, text);
  }

  // ---- Drag and drop ---------------------------------------------------------------

  /** Files dragged over the room show a drop zone over it; dropping attaches them. */
  listenForDrops() {
    let depth = 0;
    const carriesFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes('Files');
    const hide = () => {
      depth = 0;
      this.dropZone.hidden = true;
    };
    this.chat.addEventListener('dragenter', (event) => {
      if (!carriesFiles(event) || !this.roomId()) return;
      event.preventDefault();
      depth += 1;
      this.dropZone.hidden = false;
    });
    this.chat.addEventListener('dragover', (event) => {
      if (!carriesFiles(event) || !this.roomId()) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = 'copy';
      this.dropZone.hidden = false;
    });
    this.chat.addEventListener('dragleave', () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) this.dropZone.hidden = true;
    });
    this.chat.addEventListener('drop', (event) => {
      const files = [...(event.dataTransfer?.files ?? [])];
      hide();
      if (!files.length || !this.roomId()) return;
      event.preventDefault();
      this.add(files);
      byId('composer-input').focus();
    });
    // A file dropped beside the room must not replace the page with itself.
    window.addEventListener('dragover', (event) => {
      if (carriesFiles(event)) event.preventDefault();
    });
    window.addEventListener('drop', (event) => {
      if (carriesFiles(event)) event.preventDefault();
      hide();
    });
  }
}

/** Why an upload failed, in words, naming the file. */
export function uploadError(name, size, error) {
  const file = `“${name}”`;
  switch (error.code) {
    case 'payload_too_large': {
      // The server names its limit in bytes; said in the units the sizes are shown in.
      const limit = /(\d+) bytes/.exec(error.message)?.[1];
      return `${file} (${humanSize(size)}) is too large to attach. ${limit ? `Files can be at most ${humanSize(Number(limit))}.` : error.message}`;
    }
    case 'quota_exceeded':
      return `${file} was not attached: ${error.message}`;
    case 'rate_limited':
      return `${file} was not attached: too many uploads in a short time. Try again${error.retryAfter ? ` in ${error.retryAfter} seconds` : ' in a moment'}.`;
    case 'invalid_file':
      return `${file} could not be attached: ${error.message}`;
    case 'network_error':
      return `${file} could not be uploaded: the connection to the server broke off. Try again.`;
    default:
      return `${file} could not be attached: ${error.message}`;
  }
}

function crossIcon() {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', 'icon');
  const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('d', 'M6 6l12 12M18 6L6 18');
  svg.append(path);
  return svg;
}
