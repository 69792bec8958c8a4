// What the client knows about rooms and their messages. Plain data and the
// rules that keep it consistent; no DOM. The invariants that matter:
// - a room's loaded messages are one contiguous run of seqs [oldest, newest]
//   (anything past a gap is held until the gap is filled), so scroll-back and
//   catch-up never leave a hole;
// - a message is stored once per (room, seq), however often it arrives
//   (live frame, resume replay, HTTP page).

/** One room as the sidebar and the chat pane see it. */
export class RoomEntry {
  constructor(room) {
    this.room = room;
    // The highest seq this client has seen, from any source. Sent as the
    // resume point on reconnect, so it must never run ahead of what was seen.
    this.lastSeq = room.last_seq ?? 0;
    this.unread = 0;
    /** @type {Timeline|null} created when the room is first opened */
    this.timeline = null;
    /** @type {Promise<void>|null} the running gap fill, so only one runs */
    this.catchingUp = null;
  }

  get id() {
    return this.room.id;
  }

  get joined() {
    return this.room.joined === true;
  }
}

/**
 * The loaded part of one room's history, built from the newest page when the
 * room is first opened and then grown in both directions.
 */
export class Timeline {
  /**
   * @param {object[]} newestPage the newest messages, as the API returns them
   * @param {boolean} pageWasFull whether the page held as many as asked for
   */
  constructor(newestPage, pageWasFull) {
    const page = [...newestPage].sort((a, b) => a.seq - b.seq);
    /** @type {Map<number, object>} seq → message */
    this.bySeq = new Map(page.map((message) => [message.seq, message]));
    // An empty room is the empty run [1, 0], so its first message (seq 1)
    // extends it like any other.
    this.oldest = page.length ? page[0].seq : 1;
    this.newest = page.length ? page.at(-1).seq : 0;
    this.hasOlder = pageWasFull && this.oldest > 1;
  }

  /** The highest seq held, contiguous or not. */
  get highestHeld() {
    let highest = this.newest;
    for (const seq of this.bySeq.keys()) if (seq > highest) highest = seq;
    return highest;
  }

  /**
   * Adds messages past the start of the run (live frames, catch-up pages).
   * Returns the ones that were new here, ascending.
   */
  addNewer(messages) {
    const added = [];
    for (const message of messages) {
      if (message.seq < this.oldest || this.bySeq.has(message.seq)) continue;
      this.bySeq.set(message.seq, message);
      added.push(message);
    }
    while (this.bySeq.has(this.newest + 1)) this.newest += 1;
    return added.sort((a, b) => a.seq - b.seq);
  }

  /** Adds a page fetched with `before=oldest`. Returns the new ones, ascending. */
  addOlder(messages, pageWasFull) {
    const added = messages.filter((m) => !this.bySeq.has(m.seq)).sort((a, b) => a.seq - b.seq);
    for (const message of added) this.bySeq.set(message.seq, message);
    if (added.length) this.oldest = Math.min(this.oldest, added[0].seq);
    this.hasOlder = pageWasFull && this.oldest > 1;
    return added;
  }

  /** Messages in display order. */
  ordered() {
    return [...this.bySeq.values()].sort((a, b) => a.seq - b.seq);
  }
}

export class Store {
  constructor() {
    this.reset(null);
  }

  reset(me) {
    this.me = me;
    /** @type {Map<string, RoomEntry>} */
    this.rooms = new Map();
    this.openRoomId = null;
  }

  get openRoom() {
    return this.openRoomId ? this.rooms.get(this.openRoomId) ?? null : null;
  }

  /**
   * Merges the server's room list. A room seen for the first time starts its
   * unread count at zero from the room's current last_seq; a room already
   * tracked keeps its own lastSeq, which is what resume needs.
   */
  setRooms(rooms) {
    const seen = new Set();
    for (const room of rooms) {
      seen.add(room.id);
      this.upsertRoom(room);
    }
    for (const id of [...this.rooms.keys()]) {
      if (!seen.has(id)) this.rooms.delete(id);
    }
  }

  upsertRoom(room) {
    const entry = this.rooms.get(room.id);
    if (!entry) {
      const created = new RoomEntry(room);
      this.rooms.set(room.id, created);
      return created;
    }
    const wasJoined = entry.joined;
    entry.room = { ...entry.room, ...room };
    if (!wasJoined && entry.joined) {
      // Joining starts a fresh view of the room: history is loaded on open.
      entry.lastSeq = room.last_seq ?? entry.lastSeq;
      entry.timeline = null;
      entry.unread = 0;
    }
    return entry;
  }

  markLeft(roomId) {
    const entry = this.rooms.get(roomId);
    if (!entry) return null;
    entry.room = { ...entry.room, joined: false };
    entry.timeline = null;
    entry.unread = 0;
    return entry;
  }

  joinedRooms() {
    return this.sortedRooms().filter((entry) => entry.joined);
  }

  otherRooms() {
    return this.sortedRooms().filter((entry) => !entry.joined);
  }

  sortedRooms() {
    return [...this.rooms.values()].sort((a, b) =>
      a.room.name.localeCompare(b.room.name, undefined, { sensitivity: 'base' }),
    );
  }

  /** Where to resume each joined room from, for the WebSocket `hello`. */
  resumePoints() {
    const points = {};
    for (const entry of this.rooms.values()) {
      if (entry.joined) points[entry.id] = entry.lastSeq;
    }
    return points;
  }

  totalUnread() {
    let total = 0;
    for (const entry of this.rooms.values()) total += entry.unread;
    return total;
  }

  /**
   * Records one message from the server.
   * @param {object} message
   * @param {{countsAsUnread: boolean}} options whether a message never seen
   *   before should raise the room's unread count (not when the person is
   *   looking at the room).
   * @returns {{entry: RoomEntry|null, fresh: boolean, added: object[]}}
   *   `fresh`: first time this client sees this seq; `added`: messages that
   *   joined the loaded timeline (what the chat pane should insert).
   */
  receive(message, { countsAsUnread }) {
    const entry = this.rooms.get(message.room);
    if (!entry) return { entry: null, fresh: false, added: [] };
    const fresh = message.seq > entry.lastSeq;
    if (fresh) {
      entry.lastSeq = message.seq;
      const mine = message.author?.id === this.me?.id;
      if (countsAsUnread && !mine) entry.unread += 1;
    }
    const added = entry.timeline ? entry.timeline.addNewer([message]) : [];
    return { entry, fresh, added };
  }
}
