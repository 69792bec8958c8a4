// Messages this person wrote that the server has not confirmed yet. Each one
// keeps its client_id for life: every attempt re-sends the same id, and the
// server answers a repeated id with the original ack, so sending again never
// duplicates.
//
// A message is `pending` until the server acks it. While the socket is down
// it waits (an HTTP post is tried, in order, in case only the socket is
// blocked); every time the socket says `ready`, everything pending goes out
// again, oldest first. Only a refusal by the server (an `error` naming the
// client_id, or a 4xx to the post) makes it `failed`, with Retry and Discard.
// The queue is saved, so a reload keeps it.

/** Error codes that mean "not now" rather than "never": the message waits. */
const TRANSIENT = new Set(['rate_limited', 'storage_failed', 'shutting_down', 'busy', 'request_timeout']);
const TRANSIENT_RETRY_MS = 3000;

/**
 * @typedef {object} Outgoing
 * @property {string} clientId
 * @property {string} room
 * @property {string} body
 * @property {string} createdAt ISO time the person pressed Enter
 * @property {{seq: number, author: object, excerpt: string}|null} [replyTo]
 *   the message this one answers, as its quote is shown
 * @property {object[]} [files] the uploaded files it carries (FILE objects,
 *   shown while it waits; only their ids are sent)
 * @property {'pending'|'sent'|'failed'} status `sent`: acked, waiting for
 *   its message frame to take its place in the timeline
 * @property {string} [error] why the server refused it, shown next to Retry
 */

export class Outbox extends EventTarget {
  /**
   * @param {object} transport
   * @param {(frame: object) => boolean} transport.sendFrame false if not connected
   * @param {(room: string, body: string, clientId: string, replyTo: number|null, files: string[]) => Promise<object>} transport.post
   *   the HTTP fallback for when the socket is down
   */
  constructor(transport) {
    super();
    this.transport = transport;
    /** @type {Map<string, Outgoing>} keyed by client_id, in the order written */
    this.items = new Map();
    /** @type {Set<string>} client_ids sent on the current socket, so a flush does not repeat them */
    this.onSocket = new Set();
    this.posting = false;
    this.retryTimer = null;
    /** @type {import('./saved.js').Saved|null} */
    this.saved = null;
  }

  /** Takes up the signed-in person's saved queue (null: nobody signed in). */
  restore(saved) {
    this.clear();
    this.saved = saved;
    for (const item of saved?.read('outbox', []) ?? []) {
      // An ack may have come before the reload without its message: send again.
      if (item.status === 'sent') item.status = 'pending';
      this.items.set(item.clientId, item);
    }
  }

  /**
   * Queues a new message and sends it if it can.
   * @param {Outgoing['replyTo']} [replyTo]
   * @param {object[]} [files] uploaded files (FILE objects) it carries
   */
  send(room, body, replyTo = null, files = []) {
    const item = {
      clientId: crypto.randomUUID(),
      room,
      body,
      replyTo,
      files,
      createdAt: new Date().toISOString(),
      status: 'pending',
    };
    this.items.set(item.clientId, item);
    this.changed(item);
    this.flush();
    return item;
  }

  retry(clientId) {
    const item = this.items.get(clientId);
    if (!item || item.status !== 'failed') return;
    item.status = 'pending';
    item.error = undefined;
    this.changed(item);
    this.flush();
  }

  discard(clientId) {
    const item = this.items.get(clientId);
    if (!item) return;
    this.forget(item);
    this.emit('removed', item);
  }

  forRoom(room) {
    return [...this.items.values()].filter((item) => item.room === room);
  }

  /** The server stored it (ack or HTTP 201); the message frame will replace it. */
  confirmed(clientId) {
    const item = this.items.get(clientId);
    if (!item || item.status === 'sent') return;
    item.status = 'sent';
    this.changed(item);
  }

  /** The message itself arrived: the outgoing copy is no longer needed. */
  delivered(clientId) {
    const item = this.items.get(clientId);
    if (!item) return null;
    this.forget(item);
    return item;
  }

  /** The server answered a send with an error frame. */
  refused(clientId, code, reason) {
    const item = this.items.get(clientId);
    if (!item || item.status !== 'pending') return;
    this.onSocket.delete(clientId);
    if (TRANSIENT.has(code)) {
      this.flushSoon();
      return;
    }
    item.status = 'failed';
    item.error = reason;
    this.changed(item);
  }

  /** The socket is ready (again): send everything pending, oldest first. */
  connected() {
    this.onSocket.clear();
    this.flush();
  }

  /** The socket dropped: nothing in flight on it will be acked; it goes again on `ready`. */
  connectionLost() {
    this.onSocket.clear();
  }

  clear() {
    clearTimeout(this.retryTimer);
    this.items.clear();
    this.onSocket.clear();
    this.saved = null;
  }

  /** Sends what is pending: on the socket if it is ready, else one by one over HTTP. */
  flush() {
    const pending = [...this.items.values()].filter((item) => item.status === 'pending');
    for (const item of pending) {
      if (this.onSocket.has(item.clientId)) continue;
      const frame = { type: 'send', room: item.room, client_id: item.clientId, body: item.body };
      if (item.replyTo) frame.reply_to = item.replyTo.seq;
      if (item.files?.length) frame.files = fileIds(item);
      if (!this.transport.sendFrame(frame)) {
        this.postInOrder();
        return;
      }
      this.onSocket.add(item.clientId);
    }
  }

  /**
   * The HTTP fallback: posts pending messages one at a time, in order, and
   * stops at the first that cannot get through (offline, server busy); the
   * next `ready` or retry picks up from there.
   */
  async postInOrder() {
    if (this.posting) return;
    this.posting = true;
    try {
      for (;;) {
        const item = [...this.items.values()].find((i) => i.status === 'pending' && !this.onSocket.has(i.clientId));
        if (!item) return;
        let message;
        try {
          message = await this.transport.post(item.room, item.body, item.clientId, item.replyTo?.seq ?? null, fileIds(item));
        } catch (error) {
          if (error.status >= 400 && error.status < 500 && !TRANSIENT.has(error.code)) {
            if (this.items.get(item.clientId) === item && item.status === 'pending') {
              item.status = 'failed';
              item.error = error.message;
              this.changed(item);
            }
            continue;
          }
          if (TRANSIENT.has(error.code) || error.status >= 500) this.flushSoon();
          return; // Offline: wait for the socket.
        }
        this.dispatchEvent(new CustomEvent('posted', { detail: { item, message } }));
        // Take it off the queue here too, in case the page does not.
        if (this.items.get(item.clientId) === item && item.status === 'pending') this.confirmed(item.clientId);
      }
    } finally {
      this.posting = false;
    }
  }

  flushSoon() {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.onSocket.clear();
      this.flush();
    }, TRANSIENT_RETRY_MS);
  }

  forget(item) {
    this.items.delete(item.clientId);
    this.onSocket.delete(item.clientId);
    this.save();
  }

  changed(item) {
    this.save();
    this.emit('changed', item);
  }

  save() {
    this.saved?.write(
      'outbox',
      [...this.items.values()].map(({ clientId, room, body, replyTo, files, createdAt, status, error }) => ({
        clientId,
        room,
        body,
        replyTo,
        files,
        createdAt,
        status,
        error,
      })),
    );
  }

  emit(type, item) {
    this.dispatchEvent(new CustomEvent(type, { detail: item }));
  }
}

/** The ids of the files an outgoing message carries, as the server wants them. */
function fileIds(item) {
  return (item.files ?? []).map((file) => file.id);
}
