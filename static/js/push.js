// Web Push, the page's half: once the person allows notifications, this
// browser subscribes with the server's key and gives the subscription to the
// server, which then sends a notification for a message they would be told
// of while no hearth window is in front (sw.js shows it). Logging out takes
// the subscription back. Where any of it cannot work (an old browser, a
// server without push, a browser without a push service) notifications still
// show while hearth is open, and `status` says so in words.

import { api } from './api.js';

/** A base64url string as bytes (the server's key, for `subscribe`). */
export function base64UrlBytes(text) {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(text.length / 4) * 4, '=');
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

// A browser whose push service cannot be reached may never answer.
const SUBSCRIBE_TIMEOUT_MS = 20_000;

/** `promise`, or an Error saying `why` once `ms` have passed. */
function withTimeout(promise, ms, why) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(why)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

const WHILE_OPEN = 'Notifications show while hearth is open in a tab.';

export class PushSubscriber extends EventTarget {
  constructor() {
    super();
    /** @type {string} the last word on push, for the account dialog */
    this.status = '';
    /** @type {boolean|null} whether the server sends push (null: not asked yet) */
    this.serverSends = null;
    this.key = null;
  }

  get browserCan() {
    return 'serviceWorker' in navigator && 'PushManager' in window && window.isSecureContext;
  }

  setStatus(text) {
    this.status = text;
    this.dispatchEvent(new CustomEvent('changed', { detail: text }));
    return text;
  }

  /** Asks the server for its key; false where it sends no push. */
  async learnServer() {
    if (this.serverSends !== null) return this.serverSends;
    try {
      const { key } = await api.pushKey();
      this.key = typeof key === 'string' && key ? key : null;
      this.serverSends = this.key !== null;
    } catch (error) {
      // Offline: asked again next time. A server without push answers 404.
      if (error.status === 0) return false;
      this.serverSends = false;
    }
    return this.serverSends;
  }

  /**
   * Subscribes this browser, or renews its subscription with the server, when
   * notifications are allowed. Resolves to a sentence when something stood in
   * the way (it is the status too), or null when all is well.
   * @returns {Promise<string|null>}
   */
  async subscribe() {
    if (!this.browserCan) return this.setStatus(`This browser cannot show notifications while hearth is closed. ${WHILE_OPEN}`);
    if (typeof Notification !== 'function' || Notification.permission !== 'granted') {
      this.setStatus('');
      return null;
    }
    if (!(await this.learnServer())) {
      return this.setStatus(
        this.serverSends === false ? `This server does not send notifications while hearth is closed. ${WHILE_OPEN}` : '',
      ) || null;
    }
    let subscription;
    try {
      const registration = await navigator.serviceWorker.ready;
      subscription = await registration.pushManager.getSubscription();
      const key = base64UrlBytes(this.key);
      // A subscription made for another key (the server's key changed) is replaced.
      if (subscription && !sameKey(subscription.options?.applicationServerKey, key)) {
        await subscription.unsubscribe().catch(() => {});
        subscription = null;
      }
      subscription ??= await withTimeout(
        registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }),
        SUBSCRIBE_TIMEOUT_MS,
        'the browser’s push service did not answer',
      );
    } catch (error) {
      return this.setStatus(
        `This browser could not sign up for notifications while hearth is closed (${error?.message || 'no push service'}). ${WHILE_OPEN}`,
      );
    }
    const { endpoint, keys } = subscription.toJSON();
    try {
      await api.addPushSubscription({ endpoint, keys: { p256dh: keys?.p256dh, auth: keys?.auth } });
    } catch (error) {
      return this.setStatus(`The server did not take this browser's subscription: ${error.message} ${WHILE_OPEN}`);
    }
    this.setStatus('Notifications reach this browser even while hearth is closed.');
    return null;
  }

  /** Takes this browser's subscription back (logging out): from the server, then the browser. */
  async unsubscribe() {
    this.setStatus('');
    if (!this.browserCan) return;
    try {
      const registration = await navigator.serviceWorker.getRegistration();
      const subscription = await registration?.pushManager.getSubscription();
      if (!subscription) return;
      await api.removePushSubscription(subscription.endpoint).catch(() => {});
      await subscription.unsubscribe();
    } catch {
      // Nothing subscribed, or the browser forgot it already.
    }
  }

  /** Forgets what the server said, e.g. for the next person to log in. */
  reset() {
    this.serverSends = null;
    this.key = null;
    this.setStatus('');
  }
}

function sameKey(buffer, bytes) {
  if (!buffer) return false;
  const have = new Uint8Array(buffer);
  return have.length === bytes.length && have.every((byte, index) => byte === bytes[index]);
}
