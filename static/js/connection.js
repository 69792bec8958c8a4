// The live half of hearth's API: one WebSocket that is kept open for as long
// as the person is logged in. It reconnects by itself (exponential backoff
// with jitter, so a restarted server is not hit by every client at once) and
// greets the server with the last sequence number seen in each room, so the
// server replays exactly what was missed.

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15_000;
const PING_EVERY_MS = 25_000;
// Without any frame for this long (pings included) the socket is presumed dead:
// a laptop waking from sleep may keep a socket that no longer leads anywhere.
const SILENCE_LIMIT_MS = 60_000;
const READY_TIMEOUT_MS = 10_000;

/** Close code the server uses when the session was revoked or logged out. */
const SESSION_REVOKED = 4001;

/**
 * Events (all CustomEvent):
 * - `frame` (detail: a parsed server frame other than `ready` and `pong`)
 * - `ready` (detail: the `ready` frame) — also after every reconnect
 * - `status` (detail: {state: 'connecting'|'ready'|'waiting', retryAt?: number})
 * - `lost` — the connection dropped; unacknowledged sends will never be acked
 * - `session-ended` — the server says the session is gone
 */
export class Connection extends EventTarget {
  /**
   * @param {object} options
   * @param {() => Record<string, number>} options.resumePoints last seq seen per room
   * @param {() => Promise<'ok'|'gone'|'unreachable'>} options.checkSession asked
   *   before each reconnect, because a WebSocket refused with 401 is
   *   indistinguishable from a network failure in the browser.
   */
  constructor({ resumePoints, checkSession }) {
    super();
    this.resumePoints = resumePoints;
    this.checkSession = checkSession;
    this.socket = null;
    this.state = 'idle';
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.readyTimer = null;
    this.lastFrameAt = 0;
    this.stopped = true;
    this.onOnline = () => this.reconnectNow();
  }

  start() {
    this.stopped = false;
    this.attempt = 0;
    window.addEventListener('online', this.onOnline);
    this.open();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    clearTimeout(this.retryTimer);
    this.teardown(1000);
    this.state = 'idle';
  }

  /** True when frames sent now will be processed (the server has said `ready`). */
  get isReady() {
    return this.state === 'ready';
  }

  /** Sends a frame; returns false when there is no ready connection to send on. */
  send(frame) {
    if (!this.isReady || this.socket?.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  /** Skips the rest of the backoff wait, e.g. when the person clicks "Reconnect now". */
  reconnectNow() {
    if (this.stopped || this.state === 'ready' || this.state === 'connecting') return;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    this.open();
  }

  open() {
    this.setStatus({ state: 'connecting' });
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(`${scheme}//${location.host}/api/v1/ws`);
    this.socket = socket;
    socket.addEventListener('open', () => {
      const resume = this.resumePoints();
      const hello = Object.keys(resume).length ? { type: 'hello', resume } : { type: 'hello' };
      socket.send(JSON.stringify(hello));
      this.readyTimer = setTimeout(() => this.drop(socket), READY_TIMEOUT_MS);
    });
    socket.addEventListener('message', (event) => this.receive(socket, event.data));
    socket.addEventListener('close', (event) => this.closed(socket, event.code));
    // An `error` event is always followed by `close`, which does the work.
  }

  receive(socket, data) {
    if (socket !== this.socket) return;
    this.lastFrameAt = Date.now();
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return; // Not a frame of ours; nothing sensible to do with it.
    }
    if (frame.type === 'pong') return;
    if (frame.type === 'ready') {
      clearTimeout(this.readyTimer);
      this.attempt = 0;
      this.state = 'ready';
      this.startPinging(socket);
      this.setStatus({ state: 'ready' });
      this.dispatchEvent(new CustomEvent('ready', { detail: frame }));
      return;
    }
    this.dispatchEvent(new CustomEvent('frame', { detail: frame }));
  }

  closed(socket, code) {
    if (socket !== this.socket) return;
    this.teardown();
    if (this.stopped) return;
    this.dispatchEvent(new Event('lost'));
    if (code === SESSION_REVOKED) {
      this.dispatchEvent(new Event('session-ended'));
      return;
    }
    this.scheduleReconnect();
  }

  /** Gives up on a socket that went quiet, as if it had closed. */
  drop(socket) {
    if (socket !== this.socket) return;
    socket.close();
    this.closed(socket, 1006);
  }

  teardown(code) {
    clearInterval(this.pingTimer);
    clearTimeout(this.readyTimer);
    const socket = this.socket;
    this.socket = null;
    this.state = 'idle';
    if (socket && code && socket.readyState <= WebSocket.OPEN) socket.close(code);
  }

  scheduleReconnect() {
    const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
    // "Equal jitter": at least half the ceiling, so retries still back off,
    // but spread out so clients do not return in lockstep.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt += 1;
    this.state = 'waiting';
    this.setStatus({ state: 'waiting', retryAt: Date.now() + delay });
    this.retryTimer = setTimeout(() => this.retry(), delay);
  }

  async retry() {
    if (this.stopped) return;
    this.setStatus({ state: 'connecting' });
    const session = await this.checkSession();
    if (this.stopped) return;
    if (session === 'gone') {
      this.dispatchEvent(new Event('session-ended'));
    } else if (session === 'ok') {
      this.open();
    } else {
      this.scheduleReconnect();
    }
  }

  startPinging(socket) {
    clearInterval(this.pingTimer);
    this.lastFrameAt = Date.now();
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastFrameAt > SILENCE_LIMIT_MS) {
        this.drop(socket);
        return;
      }
      if (socket.readyState === WebSocket.OPEN) socket.send('{"type":"ping"}');
    }, PING_EVERY_MS);
  }

  setStatus(detail) {
    if (detail.state !== 'waiting') this.state = detail.state === 'ready' ? 'ready' : 'connecting';
    this.dispatchEvent(new CustomEvent('status', { detail }));
  }
}
