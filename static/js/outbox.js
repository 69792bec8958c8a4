// Messages this person wrote that the server has not confirmed yet. Each one
// keeps its client_id for life: a retry re-sends the same id, and the server
// answers a repeated id with the original ack, so retrying never duplicates.

const ACK_TIMEOUT_MS = 10_000;

/**
 * @typedef {object} Outgoing
 * @property {string} clientId
 * @property {string} room
 * @property {string} body
 * @property {string} createdAt ISO time the person pressed Enter
 * @property {'pending'|'sent'|'failed'} status `sent`: acked, waiting for
 *   its message frame to take its place in the timeline
 * @property {string} [error] why it failed, shown next to the retry button
 * @property {'socket'|'http'} [via] how the last attempt went out; only a
 *   socket send is lost when the socket drops
 */

export class Outbox extends EventTarget {
  /**
   * @param {object} transport
   * @param {(frame: object) => boolean} transport.sendFrame false if not connected
   * @param {(room: string, body: string, clientId: string) => Promise<object>} transport.post
   *   the HTTP fallback for when the socket is down
   */
  constructor(transport) {
    super();
    this.transport = transport;
    /** @type {Map<string, Outgoing & {timer?: number}>} keyed by client_id */
    this.items = new Map();
  }

  /** Queues a new message and sends it. */
  send(room, body) {
    const item = {
      clientId: crypto.randomUUID(),
      room,
      body,
      createdAt: new Date().toISOString(),
      status: 'pending',
    };
    this.items.set(item.clientId, item);
    this.transmit(item);
    return item;
  }

  retry(clientId) {
    const item = this.items.get(clientId);
    if (item && item.status === 'failed') this.transmit(item);
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
    if (!item) return;
    clearTimeout(item.timer);
    item.status = 'sent';
    this.emit('changed', item);
  }

  /** The message itself arrived: the outgoing copy is no longer needed. */
  delivered(clientId) {
    const item = this.items.get(clientId);
    if (!item) return null;
    this.forget(item);
    return item;
  }

  fail(clientId, reason) {
    const item = this.items.get(clientId);
    if (!item || item.status !== 'pending') return;
    clearTimeout(item.timer);
    item.status = 'failed';
    item.error = reason;
    this.emit('changed', item);
  }

  /** The socket dropped: nothing in flight on it will be acked. */
  connectionLost() {
    for (const item of this.items.values()) {
      if (item.status === 'pending' && item.via === 'socket') this.fail(item.clientId, 'Connection lost.');
    }
  }

  clear() {
    for (const item of this.items.values()) clearTimeout(item.timer);
    this.items.clear();
  }

  transmit(item) {
    item.status = 'pending';
    item.error = undefined;
    this.emit('changed', item);
    const frame = { type: 'send', room: item.room, client_id: item.clientId, body: item.body };
    if (this.transport.sendFrame(frame)) {
      item.via = 'socket';
      item.timer = setTimeout(() => this.fail(item.clientId, 'The server did not answer in time.'), ACK_TIMEOUT_MS);
      return;
    }
    item.via = 'http';
    this.transport.post(item.room, item.body, item.clientId).then(
      (message) => this.dispatchEvent(new CustomEvent('posted', { detail: { item, message } })),
      (error) => this.fail(item.clientId, error.message ?? String(error)),
    );
  }

  forget(item) {
    clearTimeout(item.timer);
    this.items.delete(item.clientId);
  }

  emit(type, item) {
    this.dispatchEvent(new CustomEvent(type, { detail: item }));
  }
}
