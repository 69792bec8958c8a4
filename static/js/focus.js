// Tells the server whether this person is in front of this page, so it sends
// Web Push notifications only when they are not (`focus` frames): active
// while the page is visible, focused and used; not active once it is hidden,
// loses focus, or sits untouched for two minutes. While active, a fresh
// `active: true` goes at most once a minute, on the person's next input.

const RESEND_MS = 60_000;
const IDLE_MS = 120_000;
const INPUT_EVENTS = ['pointerdown', 'pointermove', 'keydown', 'wheel', 'touchstart'];

export class FocusReporter {
  /** @param {(frame: object) => boolean} send false when there is no socket to send on */
  constructor(send) {
    this.send = send;
    this.enabled = false;
    /** @type {boolean|null} what the server was last told */
    this.active = null;
    this.sentAt = 0;
    this.idleTimer = null;
    this.onChange = () => this.report(this.inFront());
    this.onInput = () => this.used();
  }

  /** Starts reporting (the server sends push notifications); safe to call again. */
  enable() {
    if (this.enabled) return;
    this.enabled = true;
    document.addEventListener('visibilitychange', this.onChange);
    window.addEventListener('focus', this.onChange);
    window.addEventListener('blur', this.onChange);
    for (const type of INPUT_EVENTS) window.addEventListener(type, this.onInput, { passive: true, capture: true });
    this.connected();
  }

  disable() {
    this.enabled = false;
    this.active = null;
    clearTimeout(this.idleTimer);
    document.removeEventListener('visibilitychange', this.onChange);
    window.removeEventListener('focus', this.onChange);
    window.removeEventListener('blur', this.onChange);
    for (const type of INPUT_EVENTS) window.removeEventListener(type, this.onInput, { capture: true });
  }

  /** A new socket knows nothing yet: it is told the state now. */
  connected() {
    if (!this.enabled) return;
    this.active = null;
    this.report(this.inFront());
  }

  inFront() {
    return document.visibilityState === 'visible' && document.hasFocus();
  }

  /** The person did something on the page. */
  used() {
    if (!this.inFront()) return;
    if (this.active !== true || Date.now() - this.sentAt >= RESEND_MS) this.report(true);
    else this.restartIdle();
  }

  report(active) {
    if (!this.enabled) return;
    clearTimeout(this.idleTimer);
    if (active) this.restartIdle();
    // Unchanged and recent: nothing new to say.
    if (active === this.active && (!active || Date.now() - this.sentAt < RESEND_MS)) return;
    if (this.send({ type: 'focus', active })) {
      this.active = active;
      this.sentAt = Date.now();
    }
  }

  restartIdle() {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.report(false), IDLE_MS);
  }
}
