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
    // The person's read state here, kept by the server for all their devices
    // (see takeReadState). `readSeq` is the read cursor: messages by others
    // after it are unread, `mentions` of those name this person or @room.
    this.readSeq = room.read_seq ?? room.last_seq ?? 0;
    this.unread = room.unread_count ?? 0;
    this.mentions = room.mention_count ?? 0;
    // Every seq up to this one is reflected in the counts (by the server's
    // count or by counting here), so a replayed message is not counted twice.
    this.countedThrough = room.last_seq ?? 0;
    // Through this seq the counts are the server's; past it, every unread
    // message was counted here one by one and is in `unreadKnown`.
    this.baselineThrough = this.countedThrough;
    /** @type {Map<number, boolean>} seq → mentions this person, for unread messages counted here */
    this.unreadKnown = new Map();
    /** When this page last moved the cursor itself (ms), so an older answer does not undo it. */
    this.readChangedAt = 0;
    /** Set by "Mark as unread": this visit to the room no longer reads it. */
    this.holdRead = false;
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

/**
 * A moment in which the server's answers may not yet reflect a cursor this
 * page moved (its read frame or request still on the way).
 */
const READ_SETTLE_MS = 5000;

/** Forgets a room's read state: not a member (any more), or a member afresh from `seq`. */
function forgetReadState(entry, seq) {
  entry.readSeq = seq;
  entry.unread = 0;
  entry.mentions = 0;
  entry.countedThrough = seq;
  entry.baselineThrough = seq;
  entry.unreadKnown.clear();
  entry.readChangedAt = 0;
}

/**
 * True when the message names this person, or everyone (`@room` from
 * someone allowed to, which the server flags), and it is not their own.
 * @param {string|undefined} meId
 */
export function mentionsMe(message, meId) {
  if (!meId || message.deleted || message.author?.id === meId) return false;
  return message.mentions_room === true || (Array.isArray(message.mentions) && message.mentions.includes(meId));
}

/** Up to 100 characters of a message's current body, as the server quotes replies. */
export function excerptOf(message) {
  if (message.deleted) return '';
  // A message of only files is known by their names.
  const text = message.body || (message.files ?? []).map((file) => file.name).join(', ');
  return [...text].slice(0, 100).join('');
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
    /** @type {Set<string>} rooms where the server's cursor is behind this page's: their read is sent again */
    this.behind = new Set();
  }

  get openRoom() {
    return this.openRoomId ? this.rooms.get(this.openRoomId) ?? null : null;
  }

  /**
   * Merges the server's room list. A room seen for the first time takes its
   * read state and counts from the server; a room already tracked keeps its
   * own lastSeq, which is what resume needs, and takes the server's counts
   * unless it has counted further itself.
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
      // Joining starts a fresh view of the room: history is loaded on open,
      // and the server starts the cursor afresh.
      entry.lastSeq = room.last_seq ?? entry.lastSeq;
      entry.timeline = null;
      forgetReadState(entry, room.last_seq ?? entry.lastSeq);
    }
    this.takeReadState(entry, room);
    return entry;
  }

  markLeft(roomId) {
    const entry = this.rooms.get(roomId);
    if (!entry) return null;
    entry.room = { ...entry.room, joined: false };
    entry.timeline = null;
    forgetReadState(entry, entry.lastSeq);
    return entry;
  }

  /**
   * Takes the server's read state from a room object or a `ready` entry
   * (`read_seq`, `unread_count`, `mention_count` as of `last_seq`), unless
   * this page knows better: it has counted past that `last_seq` already, or
   * it moved the cursor itself a moment ago and the answer may predate that.
   * In that moment, a page that had read further than the server says is
   * noted in `behind`, so its read is sent again (one sent on a socket that
   * dropped is lost).
   * @returns {boolean} whether the counts changed
   */
  takeReadState(entry, state) {
    if (!entry.joined || typeof state?.read_seq !== 'number' || typeof state.unread_count !== 'number') return false;
    const head = state.last_seq ?? 0;
    if (head < entry.countedThrough) return false;
    if (state.read_seq !== entry.readSeq && Date.now() - entry.readChangedAt < READ_SETTLE_MS) {
      if (state.read_seq < entry.readSeq) this.behind.add(entry.id);
      return false;
    }
    // Otherwise the server's cursor wins, even a lower one: another device
    // may have marked the room unread. (A read of this page's that was lost
    // is made again when the person next sees the room's newest message.)
    const before = [entry.readSeq, entry.unread, entry.mentions].join();
    entry.readSeq = state.read_seq;
    entry.unread = state.unread_count;
    entry.mentions = state.mention_count ?? 0;
    entry.countedThrough = head;
    entry.baselineThrough = head;
    for (const seq of entry.unreadKnown.keys()) if (seq <= entry.readSeq) entry.unreadKnown.delete(seq);
    return before !== [entry.readSeq, entry.unread, entry.mentions].join();
  }

  /** The `ready` frame's rooms: each joined room's head and read state at that moment. */
  takeReady(rooms) {
    for (const state of Array.isArray(rooms) ? rooms : []) {
      const entry = this.rooms.get(state?.id);
      if (entry) this.takeReadState(entry, state);
    }
  }

  /**
   * The cursor moved on another device of this person (a `read` frame): its
   * counts are the server's as of now, which covers everything seen here.
   * @returns {RoomEntry|null}
   */
  readElsewhere(frame) {
    const entry = this.rooms.get(frame?.room);
    if (!entry?.joined || typeof frame.seq !== 'number') return null;
    entry.readSeq = frame.seq;
    entry.unread = Math.max(0, Number(frame.unread_count) || 0);
    entry.mentions = Math.max(0, Number(frame.mention_count) || 0);
    entry.countedThrough = Math.max(entry.countedThrough, entry.lastSeq);
    entry.baselineThrough = entry.countedThrough;
    for (const seq of entry.unreadKnown.keys()) if (seq <= entry.readSeq) entry.unreadKnown.delete(seq);
    this.behind.delete(entry.id);
    return entry;
  }

  /**
   * This person has read the room up to `seq` (here, or by sending a
   * message): the cursor moves forward, and what stays unread is what lies
   * past it.
   * @returns {'unchanged'|'exact'|'unsure'} `unsure` when the server's
   *   count covered messages past `seq` that this page cannot name, so the
   *   counts should be asked for again
   */
  readTo(entry, seq) {
    if (seq <= entry.readSeq) return 'unchanged';
    entry.readSeq = seq;
    entry.readChangedAt = Date.now();
    let unread = 0;
    let mentions = 0;
    for (const [known, mention] of entry.unreadKnown) {
      if (known <= seq) {
        entry.unreadKnown.delete(known);
      } else {
        unread += 1;
        if (mention) mentions += 1;
      }
    }
    const exact = seq >= entry.baselineThrough;
    entry.unread = unread;
    entry.mentions = mentions;
    entry.countedThrough = Math.max(entry.countedThrough, seq);
    return exact ? 'exact' : 'unsure';
  }

  /**
   * "Mark as unread": the cursor goes back to `seq`, and the counts are
   * those of the loaded messages after it (the loaded run is gap-free up to
   * the newest, so this is exact as far as this page has seen).
   */
  unreadFrom(entry, seq) {
    entry.readSeq = seq;
    entry.readChangedAt = Date.now();
    entry.unreadKnown.clear();
    let unread = 0;
    let mentions = 0;
    for (const message of entry.timeline?.bySeq.values() ?? []) {
      if (message.seq <= seq || message.deleted || message.author?.id === this.me?.id) continue;
      const mention = mentionsMe(message, this.me?.id);
      entry.unreadKnown.set(message.seq, mention);
      unread += 1;
      if (mention) mentions += 1;
    }
    entry.unread = unread;
    entry.mentions = mentions;
    entry.countedThrough = Math.max(entry.countedThrough, entry.timeline?.newest ?? 0);
    entry.baselineThrough = seq;
    this.behind.delete(entry.id);
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
    for (const entry of this.rooms.values()) if (entry.joined) total += entry.unread;
    return total;
  }

  totalMentions() {
    let total = 0;
    for (const entry of this.rooms.values()) if (entry.joined) total += entry.mentions;
    return total;
  }

  /**
   * Records one message from the server, and counts it: a message by
   * someone else past the cursor is unread (a mention too if it names this
   * person or @room); one's own message moves the cursor to it, as the
   * server does. A message the counts already reflect is not counted again.
   * @returns {{entry: RoomEntry|null, fresh: boolean, added: object[], counted: boolean, sure: boolean}}
   *   `fresh`: first time this client sees this seq; `added`: messages that
   *   joined the loaded timeline (what the chat pane should insert);
   *   `counted`: the read state changed; `sure`: false when the counts
   *   should be asked for again
   */
  receive(message) {
    const entry = this.rooms.get(message.room);
    if (!entry) return { entry: null, fresh: false, added: [], counted: false, sure: true };
    const fresh = message.seq > entry.lastSeq;
    if (fresh) entry.lastSeq = message.seq;
    let counted = false;
    let sure = true;
    if (entry.joined && message.seq > entry.countedThrough) {
      entry.countedThrough = message.seq;
      if (message.author?.id === this.me?.id) {
        const moved = this.readTo(entry, message.seq);
        counted = moved !== 'unchanged';
        sure = moved !== 'unsure';
      } else if (message.seq > entry.readSeq && !message.deleted) {
        const mention = mentionsMe(message, this.me?.id);
        entry.unreadKnown.set(message.seq, mention);
        entry.unread += 1;
        if (mention) entry.mentions += 1;
        counted = true;
      }
    }
    const added = entry.timeline ? entry.timeline.addNewer([message]) : [];
    return { entry, fresh, added, counted, sure };
  }

  /**
   * Records one edit, deletion or reaction from the server.
   * @returns {{entry: RoomEntry|null, changed: object[]}} `changed`: loaded
   *   messages that look different now
   */
  applyEvent(event) {
    const entry = this.rooms.get(event.room);
    if (!entry) return { entry: null, changed: [], counted: false, sure: true };
    if (event.seq > entry.lastSeq) entry.lastSeq = event.seq;
    let counted = false;
    let sure = true;
    if (entry.joined && event.seq > entry.countedThrough) {
      entry.countedThrough = event.seq;
      if (event.kind === 'delete') ({ counted, sure } = this.uncount(entry, event.target));
    }
    const changed = entry.timeline ? entry.timeline.applyEvent(event, this.me?.id) : [];
    return { entry, changed, counted, sure };
  }

  /**
   * A message was deleted: if it was unread, it is not any more. Whether it
   * was is known for messages counted here or loaded (checked before the
   * deletion is applied); otherwise the counts are unsure.
   */
  uncount(entry, target) {
    if (target <= entry.readSeq) return { counted: false, sure: true };
    let mention;
    if (entry.unreadKnown.has(target)) {
      mention = entry.unreadKnown.get(target);
      entry.unreadKnown.delete(target);
    } else {
      const message = entry.timeline?.bySeq.get(target);
      if (!message) return { counted: false, sure: target > entry.baselineThrough };
      if (message.deleted || message.author?.id === this.me?.id) return { counted: false, sure: true };
      mention = mentionsMe(message, this.me?.id);
    }
    entry.unread = Math.max(0, entry.unread - 1);
    if (mention) entry.mentions = Math.max(0, entry.mentions - 1);
    return { counted: true, sure: true };
  }
}
