// "alice is typing…": both halves. TypingNotice tells the room, at most once
// every few seconds, that this person is typing; TypingLine shows who else
// is, under the timeline of the open room. Typing frames are not stored by
// the server, so nothing here survives a reload, and nothing needs to.

import { byId, h } from './dom.js';

/**
 * At most one `typing` frame per this long, whatever the typing speed. The
 * server relays at most one per 2 s and drops the rest; a little more than
 * that here keeps network jitter from bringing two frames in under 2 s apart,
 * which would lose one and let the name blink out at the other end.
 */
const SEND_EVERY_MS = 2500;
/** A name goes this long after its last frame (the typist repeats every 2.5 s). */
const FORGET_AFTER_MS = 4000;

/** Sends `{"type":"typing","room"}` while the person types, throttled. */
export class TypingNotice {
  /** @param {(frame: object) => boolean} sendFrame false when there is no ready socket */
  constructor(sendFrame) {
    this.sendFrame = sendFrame;
    this.lastSentAt = 0;
    this.lastRoom = null;
    /** Set when the server does not know the frame (an older hearth): stop asking. */
    this.unsupported = false;
  }

  /** Called on every keystroke that leaves text in the focused message box. */
  typed(roomId) {
    const now = Date.now();
    if (this.unsupported || (roomId === this.lastRoom && now - this.lastSentAt < SEND_EVERY_MS)) return;
    if (this.sendFrame({ type: 'typing', room: roomId })) {
      this.lastSentAt = now;
      this.lastRoom = roomId;
    }
  }

  reset() {
    this.lastSentAt = 0;
    this.lastRoom = null;
    this.unsupported = false;
  }
}

/**
 * The line under the timeline. It is a polite live region whose text only
 * changes when the set of names does, so a typist's repeated frames are not
 * read out again and again.
 */
export class TypingLine {
  constructor() {
    this.region = byId('typing');
    /** @type {Map<string, Map<string, {username: string, timer: number}>>} room → user id → typist */
    this.rooms = new Map();
    this.openRoomId = null;
    this.shown = '';
  }

  /** A `typing` frame from someone else. */
  typing(roomId, user) {
    if (typeof roomId !== 'string' || typeof user?.id !== 'string' || typeof user.username !== 'string') return;
    let typists = this.rooms.get(roomId);
    if (!typists) {
      typists = new Map();
      this.rooms.set(roomId, typists);
    }
    clearTimeout(typists.get(user.id)?.timer);
    const timer = setTimeout(() => this.stopped(roomId, user.id), FORGET_AFTER_MS);
    typists.set(user.id, { username: user.username, timer });
    if (roomId === this.openRoomId) this.render();
  }

  /** They sent their message (or their time ran out): their name goes at once. */
  stopped(roomId, userId) {
    const typists = this.rooms.get(roomId);
    const typist = typists?.get(userId);
    if (!typist) return;
    clearTimeout(typist.timer);
    typists.delete(userId);
    if (!typists.size) this.rooms.delete(roomId);
    if (roomId === this.openRoomId) this.render();
  }

  /** @param {string|null} roomId the room now open */
  show(roomId) {
    this.openRoomId = roomId;
    this.render();
  }

  /** Forgets everyone, e.g. on logging out. */
  clear() {
    for (const typists of this.rooms.values()) for (const { timer } of typists.values()) clearTimeout(timer);
    this.rooms.clear();
    this.show(null);
  }

  render() {
    const names = [...(this.rooms.get(this.openRoomId)?.values() ?? [])].map((typist) => typist.username);
    const key = JSON.stringify(names);
    if (key === this.shown) return;
    this.shown = key;
    // <bdi>: a right-to-left name must not reorder the words around it.
    const name = (text) => h('bdi', { class: 'typing-name', text });
    if (names.length === 0) this.region.replaceChildren();
    else if (names.length === 1) this.region.replaceChildren(name(names[0]), ' is typing…');
    else if (names.length === 2) this.region.replaceChildren(name(names[0]), ' and ', name(names[1]), ' are typing…');
    else this.region.replaceChildren('Several people are typing…');
  }
}
