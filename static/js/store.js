// What the client knows about rooms and their messages. Plain data and the
// rules that keep it consistent; no DOM. A room's seqs number every event in
// it (messages, edits, deletions, reactions) without gaps. The invariants
// that matter:
// - everything up to a loaded room's `newest` seq is reflected in its loaded
//   messages, and anything applied past a gap is remembered until the gap is
//   filled, so scroll-back and catch-up never leave a hole;
// - a message is stored once per (room, seq), and an event applied once per
//   seq, however often it arrives (live frame, resume replay, HTTP page).

/** One room as the sidebar and the chat pane see it. */
export class RoomEntry {
  /** @param {string|undefined} meId who is looking, left out of a direct room's name */
  constructor(room, meId) {
    this.room = room;
    this.meId = meId;
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

  get direct() {
    return this.room.visibility === 'direct';
  }

  get private() {
    return this.room.visibility === 'private';
  }

  /** What to call the room: its name, or for a direct room the other people in it. */
  get name() {
    return this.direct ? peopleName(this.others(), this.othersCount(), 3) : this.room.name;
  }

  /** A direct room's other people, all named (the header has the room for it). */
  get longName() {
    return this.direct ? peopleName(this.others(), this.othersCount(), 8) : this.room.name;
  }

  /** The people in `members_preview` but the one looking, by name (the server orders them by id). */
  others() {
    const preview = Array.isArray(this.room.members_preview) ? this.room.members_preview : [];
    return preview
      .filter((member) => member.id !== this.meId)
      .sort((a, b) => String(a.username).localeCompare(String(b.username), undefined, { sensitivity: 'base' }));
  }

  /** The other person of a one-to-one direct room, or null. */
  partner() {
    if (!this.direct || this.othersCount() !== 1) return null;
    return this.others()[0] ?? null;
  }

  /** How many others are in the room, counting those the preview leaves out. */
  othersCount() {
    return Math.max(this.others().length, (this.room.member_count ?? 0) - 1);
  }
}

/**
 * "alice", "alice and bob", "alice, bob and carol", and past `spell` names
 * "alice, bob and 2 others".
 * @param {{username: string}[]} people
 * @param {number} count how many people there are (the list may be shorter)
 */
export function peopleName(people, count, spell) {
  const names = people.map((person) => person.username);
  if (!names.length) return 'Only you';
  if (count <= spell && names.length >= count) {
    return names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
  }
  const shown = names.slice(0, 2);
  const rest = count - shown.length;
  return `${shown.join(', ')} and ${rest === 1 ? '1 other' : `${rest} others`}`;
}

/**
 * The loaded part of one room's history, built from the newest page when the
 * room is first opened and then grown in both directions. Messages in pages
 * come in their current state (latest body, reactions, deleted); events
 * after that are applied to them here.
 */
export class Timeline {
  /**
   * @param {object[]} newestPage the newest messages, as the API returns them
   * @param {boolean} pageWasFull whether the page held as many as asked for
   * @param {number} [reflected] a seq the page is known to include the
   *   effects of (the newest seen when it was asked for)
   */
  constructor(newestPage, pageWasFull, reflected = 0) {
    const page = [...newestPage].sort((a, b) => a.seq - b.seq);
    for (const message of page) normalise(message);
    /** @type {Map<number, object>} seq → message */
    this.bySeq = new Map(page.map((message) => [message.seq, message]));
    // An empty room is the empty run [1, 0], so its first message (seq 1)
    // extends it like any other.
    this.oldest = page.length ? page[0].seq : 1;
    /** Every seq up to this one is reflected in what is loaded. */
    this.newest = Math.max(page.length ? page.at(-1).seq : 0, reflected);
    /** @type {Set<number>} seqs past `newest` already applied (a gap lies before them) */
    this.ahead = new Set();
    this.hasOlder = pageWasFull && this.oldest > 1;
  }

  /** The highest seq applied, contiguous or not. */
  get highestHeld() {
    let highest = this.newest;
    for (const seq of this.ahead) if (seq > highest) highest = seq;
    return highest;
  }

  /** True when the event with `seq` has already been applied here. */
  has(seq) {
    return seq <= this.newest || this.ahead.has(seq);
  }

  /** Records that `seq` is applied, moving `newest` over any run it completes. */
  mark(seq) {
    if (seq <= this.newest) return;
    this.ahead.add(seq);
    while (this.ahead.delete(this.newest + 1)) this.newest += 1;
  }

  /**
   * Adds messages past the start of the run (live frames, catch-up pages).
   * Returns the ones that were new here, ascending.
   */
  addNewer(messages) {
    const added = [];
    for (const message of messages) {
      if (message.seq < this.oldest || this.bySeq.has(message.seq)) continue;
      this.bySeq.set(message.seq, normalise(message));
      this.mark(message.seq);
      added.push(message);
    }
    return added.sort((a, b) => a.seq - b.seq);
  }

  /** Adds a page fetched with `before=oldest`. Returns the new ones, ascending. */
  addOlder(messages, pageWasFull) {
    const added = messages.filter((m) => !this.bySeq.has(m.seq)).sort((a, b) => a.seq - b.seq);
    for (const message of added) this.bySeq.set(message.seq, normalise(message));
    if (added.length) this.oldest = Math.min(this.oldest, added[0].seq);
    this.hasOlder = pageWasFull && this.oldest > 1;
    return added;
  }

  /**
   * Applies an edit, deletion or reaction once. Returns the loaded messages
   * it changed (its target, and replies quoting the target), or [] when it
   * was applied before or its target is not loaded (an older page, fetched
   * later, comes in its current state).
   * @param {object} event
   * @param {string|undefined} meId
   */
  applyEvent(event, meId) {
    if (this.has(event.seq)) return [];
    this.mark(event.seq);
    return this.change(event, meId);
  }

  /**
   * Changes the loaded messages by one event, without seq bookkeeping: also
   * how this person's own deletions and reactions show at once, before the
   * server's event for them comes back (which then changes nothing).
   */
  change(event, meId) {
    const target = this.bySeq.get(event.target);
    if (!target) return [];
    const changed = applyToMessage(target, event, meId);
    if (!changed) return [];
    const touched = [target];
    if (event.kind === 'edit' || event.kind === 'delete') {
      for (const message of this.bySeq.values()) {
        if (message.reply_to?.seq !== target.seq) continue;
        message.reply_to = { ...message.reply_to, excerpt: excerptOf(target) };
        touched.push(message);
      }
    }
    return touched;
  }

  /** Messages in display order. */
  ordered() {
    return [...this.bySeq.values()].sort((a, b) => a.seq - b.seq);
  }
}

/** Up to 100 characters of a message's current body, as the server quotes replies. */
export function excerptOf(message) {
  return message.deleted ? '' : [...(message.body ?? '')].slice(0, 100).join('');
}

/**
 * Fills in what older servers and live frames leave out, and adds
 * `reactors`: emoji → (user id → username) for the reactions seen as events,
 * since pages only say how many reacted and whether "me" is among them.
 */
function normalise(message) {
  message.reactions = Array.isArray(message.reactions) ? message.reactions.map((r) => ({ ...r })) : [];
  message.mentions = Array.isArray(message.mentions) ? message.mentions : [];
  message.reply_to ??= null;
  message.edited_at ??= null;
  message.deleted = message.deleted === true;
  message.reactors ??= new Map();
  return message;
}

/** Changes one message by one event; false when it changed nothing. */
function applyToMessage(message, event, meId) {
  switch (event.kind) {
    case 'edit':
      if (message.deleted) return false;
      // An edit older than the state the page brought (a replay) is stale.
      if (message.edited_at && Date.parse(event.at) < Date.parse(message.edited_at)) return false;
      message.body = event.body ?? '';
      message.edited_at = event.at;
      return true;
    case 'delete':
      if (message.deleted) return false;
      message.deleted = true;
      message.body = '';
      message.reactions = [];
      message.reactors = new Map();
      return true;
    case 'reaction':
      return react(message, event, meId);
    default:
      return false; // A kind from a newer server.
  }
}

/**
 * Turns one person's reaction on or off. The server sends an event only for
 * a change, so an event is a change unless this page already shows it (our
 * own reaction, shown as soon as the server said yes).
 * @param {{emoji: string, by?: object, on: boolean, seq?: number}} event
 *   without a seq: this person's own, not yet confirmed by its event
 * @returns {boolean} whether anything changed
 */
function react(message, event, meId) {
  const { emoji, by = {}, seq } = event;
  const on = event.on === true;
  if (message.deleted || typeof emoji !== 'string') return false;
  let reaction = message.reactions.find((r) => r.emoji === emoji);
  const mine = by.id != null && by.id === meId;
  const names = message.reactors.get(emoji) ?? new Map();
  // Taking back a reaction the page only counted (no event named its
  // author) changes the count alone, so only a repeat "on" is detectable.
  if (mine ? (reaction?.me ?? false) === on : on && names.has(by.id)) return false;
  if (on) {
    if (!reaction) {
      // Chips go in the order each emoji first came, even when a lost
      // event is fetched after later ones; those from the page came first.
      reaction = { emoji, count: 0, me: false, since: seq ?? Infinity };
      const later = message.reactions.findIndex((r) => (r.since ?? 0) > reaction.since);
      message.reactions.splice(later < 0 ? message.reactions.length : later, 0, reaction);
    }
    reaction.count += 1;
    if (by.id != null) names.set(by.id, by.username ?? '');
  } else {
    if (!reaction) return false;
    reaction.count = Math.max(0, reaction.count - 1);
    names.delete(by.id);
  }
  if (mine) reaction.me = on;
  message.reactors.set(emoji, names);
  if (reaction.count === 0) message.reactions = message.reactions.filter((r) => r !== reaction);
  return true;
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
      const created = new RoomEntry(room, this.me?.id);
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

  /** Joined rooms with a name, in the sidebar's order. */
  joinedRooms() {
    return this.sortedRooms().filter((entry) => entry.joined && !entry.direct);
  }

  /** Direct rooms, in the sidebar's order (after the named rooms). */
  directRooms() {
    return this.sortedRooms().filter((entry) => entry.joined && entry.direct);
  }

  /** Every room that can be opened, in the sidebar's order. */
  openableRooms() {
    return [...this.joinedRooms(), ...this.directRooms()];
  }

  /** Rooms that could be joined: public ones (a private room left is gone, not joinable). */
  otherRooms() {
    return this.sortedRooms().filter((entry) => !entry.joined && !entry.direct && !entry.private);
  }

  sortedRooms() {
    return [...this.rooms.values()].sort((a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: 'base' }));
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

  /**
   * Records one edit, deletion or reaction from the server.
   * @returns {{entry: RoomEntry|null, changed: object[]}} `changed`: loaded
   *   messages that look different now
   */
  applyEvent(event) {
    const entry = this.rooms.get(event.room);
    if (!entry) return { entry: null, changed: [] };
    if (event.seq > entry.lastSeq) entry.lastSeq = event.seq;
    const changed = entry.timeline ? entry.timeline.applyEvent(event, this.me?.id) : [];
    return { entry, changed };
  }
}
