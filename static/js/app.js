// The signed-in app: wires the store, the live connection, the outbox and the
// views together. Data flows one way: server → store → views; the views only
// report what the person did.

import { AccountDialog } from './account.js';
import { AdminPanel } from './admin-panel.js';
import { bots } from './bots.js';
import { api } from './api.js';
import { avatars } from './avatars.js';
import { Composer } from './composer.js';
import { Connection } from './connection.js';
import { byId, h, hueClass, setMessage } from './dom.js';
import { EditHistory } from './edit-history.js';
import { showUnreadOnIcon } from './favicon-badge.js';
import { FocusReporter } from './focus.js';
import { lockIcon } from './icons.js';
import { emojiName, QUICK_EMOJI } from './emoji.js';
import { plainText } from './markdown.js';
import { MessageMenu } from './message-menu.js';
import { DesktopNotifier } from './notify.js';
import { Outbox } from './outbox.js';
import { PeoplePicker, peopleError } from './people-picker.js';
import { Presence } from './presence.js';
import { PushSubscriber } from './push.js';
import { rememberUser } from './pwa.js';
import { ReactionPicker } from './reaction-picker.js';
import { confirmAction, RoomDetails } from './room-details.js';
import { Saved, SavedMap } from './saved.js';
import { Search } from './search.js';
import { SlashCommands } from './slash.js';
import { placeFromHash, roomHash, SidebarView, unreadPhrase } from './sidebar-view.js';
import { excerptOf, Store, Timeline } from './store.js';
import { Switcher } from './switcher.js';
import { TimelineView } from './timeline-view.js';
import { TypingLine, TypingNotice } from './typing.js';

const PAGE_SIZE = 50;
// The most messages the server gives in one page, and how many older than a
// message jumped to (a search hit, a link) are loaded with it, for context.
const MAX_PAGE_SIZE = 200;
const REVEAL_CONTEXT = 10;
const CATCH_UP_PAGE_SIZE = 200;
// New rooms and membership changes arrive over the socket (`room_added`,
// `member_joined`, `member_left`, `room_removed`); this slow refresh only
// mends anything a lost frame left stale.
const ROOM_LIST_REFRESH_MS = 5 * 60_000;
const TOAST_MS = 10_000;
// How long the member list behind `@` suggestions is trusted; joins and
// leaves seen live drop it sooner.
const MEMBERS_FRESH_MS = 60_000;
const NARROW = window.matchMedia('(max-width: 767px)');
// Read cursors go to the server at most this often per room.
const READ_EVERY_MS = 1000;
// Unread counts that this page cannot work out (a message it never saw was
// deleted) are asked for again after this long, once for a burst.
const RECOUNT_AFTER_MS = 1000;
// Opening a room loads older pages until its first unread message, up to this many.
const UNREAD_PAGES = 10;

export class App {
  /** @param {{onSessionEnded: (notice: string|null) => void}} handlers */
  constructor({ onSessionEnded }) {
    this.onSessionEnded = onSessionEnded;
    this.root = byId('app-view');
    this.store = new Store();
    this.active = false;
    /** @type {Promise<object|null>|null} the running fetch of an older page, so only one runs */
    this.olderLoad = null;
    /** Set by create, join and login: the next room opened takes focus in its message box. */
    this.focusComposerOnOpen = false;
    /** @type {Map<string, {seq: number, at: number, timer: number|null}>} room id → the read cursor to send, and when one was last sent */
    this.reads = new Map();
    /** @type {Map<string, number>} room id → the timer that asks for its counts again */
    this.recounts = new Map();
    /**
     * Set while this page ends its own session (log out everywhere, delete
     * the account): the socket's 4001 close that follows is expected, not
     * "your session has ended".
     */
    this.endingOnPurpose = false;

    this.connection = new Connection({
      resumePoints: () => this.store.resumePoints(),
      checkSession: () => checkSession(),
    });
    this.outbox = new Outbox({
      sendFrame: (frame) => this.connection.send(frame),
      post: (room, body, clientId, replyTo, files) =>
        api.postMessage(room, body, clientId, replyTo, files).then((reply) => reply.message),
    });
    this.presence = new Presence();
    /** Rooms this page is leaving itself: their `left` frame needs no explaining. */
    this.leaving = new Set();
    this.sidebar = new SidebarView({ onJoin: (id, button) => this.joinRoom(id, button), presence: this.presence });
    /** @type {Map<string, {at: number, members: Promise<object[]>}>} room id → its members, for `@` */
    this.memberCache = new Map();
    const seqOf = (li) => Number(li.dataset.seq);
    const standing = (li) => !li.classList.contains('deleted');
    const mine = (li) => li.dataset.author === this.store.me?.id;
    this.menu = new MessageMenu([
      ...QUICK_EMOJI.map((emoji) => ({
        label: emoji,
        name: `React with ${emojiName(emoji)}`,
        group: 'Quick reactions',
        when: standing,
        run: (li) => this.toggleReaction(seqOf(li), emoji),
      })),
      { label: 'Add reaction…', when: standing, run: (li) => this.pickReaction(seqOf(li), li) },
      { label: 'Reply', when: standing, run: (li) => this.startReply(seqOf(li)) },
      // One's own messages are never unread, so only others' can start the unread part.
      { label: 'Mark as unread', when: (li) => standing(li) && !mine(li), run: (li) => this.markUnread(seqOf(li)) },
      { label: 'Edit', when: (li) => standing(li) && mine(li), run: (li) => this.startEdit(seqOf(li), false) },
      { label: 'Copy link', run: (li) => this.copyLink(li) },
      // A long press opens the menu instead of selecting text, so copying the text is offered here.
      {
        label: 'Copy text',
        when: standing,
        // The source text, with its formatting marks, as it was typed.
        run: (li) => this.copy(this.loaded(seqOf(li))?.message.body ?? li.querySelector('.message-body')?.textContent ?? '', 'Text copied.'),
      },
      // Administrators may delete anyone's message (the server checks too).
      {
        label: 'Delete',
        when: (li) => standing(li) && (mine(li) || this.store.me?.admin === true),
        run: (li) => this.confirmDelete(seqOf(li)),
      },
    ]);
    this.timeline = new TimelineView({
      onNeedOlder: () => this.loadOlder(),
      onRetry: (clientId) => this.outbox.retry(clientId),
      onDiscard: (clientId) => this.outbox.discard(clientId),
      onMenu: (li, trigger) => this.menu.open(li, trigger),
      onJumpTo: (seq) => {
        const entry = this.store.openRoom;
        if (entry) this.reveal(entry, seq);
      },
      onToggleReaction: (seq, emoji) => this.toggleReaction(seq, emoji),
      onAddReaction: (li, trigger) => this.pickReaction(seqOf(li), trigger),
      onEditHistory: (seq, trigger, byHover) => this.showEdits(seq, trigger, byHover),
      onAtBottom: () => this.readIfSeen(this.store.openRoom),
      presence: this.presence,
    });
    this.composer = new Composer({
      onSend: (body, replyTo, files, roomId) => this.send(body, replyTo, files, roomId),
      onEditLast: () => this.editLast(),
      members: (roomId) => this.mentionable(roomId),
      onTyping: (roomId) => this.typingNotice.typed(roomId),
      onCommand: (body) => this.slash.route(body),
    });
    this.slash = new SlashCommands({
      composer: this.composer,
      openRoom: () => this.store.openRoom,
      say: (text) => this.toast.show(text),
      leave: () => this.leaveOpenRoom(),
      roomChanged: (room) => this.roomUpdated(room),
      openDirect: (room) => {
        this.store.upsertRoom({ ...room, joined: true });
        this.renderRoomState();
        this.goToRoom(room.id, true);
      },
      me: () => this.store.me,
      send: (body, replyTo) => this.send(body, replyTo),
    });
    this.typingNotice = new TypingNotice((frame) => this.connection.send(frame));
    this.push = new PushSubscriber();
    this.focusReporter = new FocusReporter((frame) => this.connection.send(frame));
    this.typingLine = new TypingLine();
    this.account = new AccountDialog({
      me: () => this.store.me,
      push: this.push,
      onLogOutEverywhere: () => this.logOutEverywhere(),
      onDelete: (password) => this.deleteAccount(password),
      onUser: (user) => this.userUpdated(user),
    });
    this.adminPanel = new AdminPanel({ me: () => this.store.me });
    // A picture learned or changed shows on every avatar of that person at once.
    avatars.addEventListener('changed', ({ detail }) => avatars.refresh(document, detail));
    // An author learnt to be a bot gets the tag on the messages already shown.
    bots.addEventListener('changed', ({ detail }) => this.timeline.markBots(detail));
    this.picker = new ReactionPicker();
    this.people = new PeoplePicker({ me: () => this.store.me });
    this.notifier = new DesktopNotifier(this.store, { onAllowed: () => this.subscribePush() });
    this.details = new RoomDetails({
      store: this.store,
      presence: this.presence,
      notifier: this.notifier,
      onMembers: (entry, members) => this.learnedMembers(entry, members),
      onRoomChanged: (room) => this.roomUpdated(room),
      confirm: confirmAction,
    });
    this.editHistory = new EditHistory();
    this.switcher = new Switcher({
      rooms: () => this.store.openableRooms(),
      onChoose: (id) => this.goToRoom(id, true),
    });
    this.search = new Search({
      openRoom: () => this.store.openRoom,
      roomOf: (id) => this.store.rooms.get(id) ?? null,
      onGo: (hash) => this.goToMessage(hash),
    });
    this.banner = new ConnectionBanner(() => this.connection.reconnectNow());
    this.announcer = new Announcer();
    this.toast = new Toast();

    this.listenToConnection();
    this.listenToOutbox();
    this.listenToControls();
  }

  // ---- Entering and leaving --------------------------------------------

  /**
   * @param {object} user
   * @param {{justLoggedIn?: boolean, offline?: boolean}} [options] `justLoggedIn`: after
   *   the login form (not a reload), focus goes where the person will type
   *   next. `offline`: the server could not be reached; `user` is the one last
   *   logged in here, and the app shows itself reconnecting.
   */
  async enter(user, { justLoggedIn = false, offline = false } = {}) {
    this.active = true;
    /** Opened without the server: the room in the address opens once it answers. */
    this.startedOffline = offline;
    if (offline) this.banner.offline();
    else rememberUser(user);
    this.endingOnPurpose = false;
    this.typingNotice.reset();
    this.store.reset(user);
    const saved = new Saved(user.id);
    this.composer.useDrafts(new SavedMap(saved, 'drafts'));
    this.outbox.restore(saved);
    avatars.clear();
    avatars.learn([user]);
    this.showMe(user);
    this.root.hidden = false;
    this.showNoRoom();
    await this.refreshRooms();
    if (!this.active) return;
    this.connection.start();
    this.focusComposerOnOpen = justLoggedIn;
    this.openFromHash();
    if (justLoggedIn && !this.store.openRoomId) {
      this.focusComposerOnOpen = false;
      const sidebar = byId('sidebar');
      (sidebar.querySelector('a.room-link, #other-rooms button') ?? sidebar.querySelector('#create-room summary')).focus();
    }
    // Messages saved from an earlier visit go out over HTTP if they can; the
    // socket's `ready` sends whatever is still waiting.
    this.outbox.flush();
    this.refreshTimer = setInterval(() => {
      if (!document.hidden && this.connection.isReady) this.refreshRooms();
    }, ROOM_LIST_REFRESH_MS);
    if (!offline) this.subscribePush();
  }

  /**
   * Renews this browser's push subscription with the server where
   * notifications are allowed, and tells the server, through `focus`
   * frames, when this page is in front (only a server that sends push
   * knows them).
   */
  async subscribePush() {
    if ((await this.push.learnServer()) && this.active) this.focusReporter.enable();
    return this.push.subscribe();
  }

  /** Tears the signed-in state down; the caller shows the login screen. */
  leave() {
    if (!this.active) return;
    this.active = false;
    clearInterval(this.refreshTimer);
    rememberUser(null);
    this.focusReporter.disable();
    this.push.reset();
    this.connection.stop();
    this.outbox.clear();
    this.store.reset(null);
    this.timeline.hide();
    this.composer.clear();
    this.composer.useDrafts(null);
    for (const read of this.reads.values()) clearTimeout(read.timer);
    this.reads.clear();
    for (const timer of this.recounts.values()) clearTimeout(timer);
    this.recounts.clear();
    this.banner.reset();
    this.toast.hide();
    this.menu.close(false);
    this.editHistory.close(false);
    this.memberCache.clear();
    this.presence.clear();
    avatars.clear();
    bots.clear();
    this.leaving.clear();
    this.typingLine.clear();
    this.account.close();
    this.adminPanel.close();
    this.search.reset();
    this.closeDrawer(false);
    for (const id of ['confirm-dialog', 'members-dialog', 'switcher', 'delete-dialog', 'reaction-picker', 'people-dialog']) byId(id).close();
    this.root.hidden = true;
    this.updateTitle();
    // The next person to log in here must not land in this one's room.
    if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  }

  sessionEnded() {
    if (!this.active || this.endingOnPurpose) return;
    this.leave();
    this.onSessionEnded('Your session has ended. Please log in again.');
  }

  async logOut() {
    this.leave();
    // Before the session goes: the server must hear which subscription to drop.
    await this.push.unsubscribe();
    try {
      await api.logout();
    } catch {
      // The cookie may already be gone; the person is logged out here either way.
    }
    this.onSessionEnded(null);
  }

  /** Ends every session of the account, this one too; the API's error is thrown to the dialog. */
  async logOutEverywhere() {
    this.endingOnPurpose = true;
    await this.push.unsubscribe();
    try {
      await api.logoutEverywhere();
    } catch (error) {
      this.endingOnPurpose = false;
      if (error.code === 'unauthenticated') this.sessionEnded();
      throw error;
    }
    this.leave();
    this.onSessionEnded('You were logged out on every device.');
  }

  /** Deletes the account once the password is confirmed; the API's error is thrown to the dialog. */
  async deleteAccount(password) {
    this.endingOnPurpose = true;
    try {
      await api.deleteAccount(password);
    } catch (error) {
      this.endingOnPurpose = false;
      if (error.code === 'unauthenticated') this.sessionEnded();
      throw error;
    }
    this.leave();
    // The server forgot this browser with the account; the browser forgets it too.
    this.push.unsubscribe();
    this.onSessionEnded('Your account was deleted.');
  }

  // ---- Rooms -------------------------------------------------------------

  async refreshRooms() {
    try {
      const { rooms } = await api.rooms();
      if (!this.active) return;
      this.store.setRooms(rooms);
      this.sendBehind();
      setMessage(byId('rooms-error'), '');
    } catch (error) {
      if (error.status !== 401) setMessage(byId('rooms-error'), error.message);
      return;
    }
    const open = this.store.openRoom;
    if (this.store.openRoomId && !open?.joined) this.showNoRoom();
    else if (open) this.showRoomHeader(open);
    this.renderRoomState();
  }

  /**
   * Opens the room named in the address bar (scrolled to the message named
   * there, if any), or the first joined room.
   */
  openFromHash() {
    if (!this.active) return;
    const place = placeFromHash();
    const entry = place ? this.store.rooms.get(place.roomId) : null;
    if (entry?.joined) {
      if (entry.id !== this.store.openRoomId) this.openRoom(entry, place.seq);
      else if (place.seq != null) this.reveal(entry, place.seq);
      return;
    }
    const first = this.store.openableRooms()[0];
    if (first && !NARROW.matches) {
      history.replaceState(null, '', roomHash(first.id));
      this.openRoom(first);
    } else {
      this.showNoRoom();
      if (NARROW.matches) this.openDrawer(false);
    }
  }

  /** @param {number|null} [seq] a message to scroll to and highlight */
  async openRoom(entry, seq = null) {
    // The cursor as the room is opened, before this visit reads anything:
    // where the "New messages" divider goes, until the person leaves the room.
    const readBefore = entry.readSeq;
    this.store.openRoomId = entry.id;
    // Reading resumes on every visit, after a "Mark as unread" too.
    entry.holdRead = false;
    this.menu.close(false);
    this.editHistory.close(false);
    this.timeline.closeEditor(false);
    this.renderRoomState();
    this.showRoomHeader(entry);
    this.learnRole(entry);
    // The member list says what its people look like.
    this.membersOf(entry.id).catch(() => {});
    byId('empty-state').hidden = true;
    this.composer.show(entry.id, entry.name);
    this.typingLine.show(entry.id);
    this.closeDrawer(false);
    if (this.focusComposerOnOpen) {
      this.focusComposerOnOpen = false;
      this.composer.focus();
    }

    this.timeline.show(entry, this.outbox.forRoom(entry.id), this.store.me, readBefore);
    const shownFrom = entry.timeline?.oldest ?? null;
    if (!entry.timeline) {
      this.timeline.setHistoryState(null, true);
      try {
        await this.loadNewest(entry);
      } catch (error) {
        if (this.store.openRoomId === entry.id) this.timeline.status.textContent = error.message;
        return;
      }
      if (this.store.openRoomId !== entry.id) return;
    }
    if (seq == null && (await this.loadBackTo(entry, readBefore))) return;
    if (shownFrom == null || entry.timeline.oldest < shownFrom) {
      this.timeline.show(entry, this.outbox.forRoom(entry.id), this.store.me, readBefore);
    }
    if (seq != null) await this.reveal(entry, seq);
    else this.fillViewport(entry);
    this.readIfSeen(entry);
  }

  /**
   * Loads older pages until the first unread message (just after `readSeq`)
   * is there, so the divider can mark it; a bounded number, since a room
   * unread for long may have thousands.
   * @returns {Promise<boolean>} true when the person went elsewhere meanwhile
   */
  async loadBackTo(entry, readSeq) {
    for (let page = 0; page < UNREAD_PAGES; page += 1) {
      const timeline = entry.timeline;
      if (this.store.openRoomId !== entry.id || !timeline) return true;
      if (!timeline.hasOlder || timeline.oldest <= readSeq + 1) break;
      const oldest = timeline.oldest;
      await this.loadOlder();
      if (entry.timeline !== timeline || timeline.oldest === oldest) break; // No progress: give up.
    }
    return this.store.openRoomId !== entry.id;
  }

  /**
   * Scrolls to message `seq` of the open room, loading older pages until it
   * is there: as many as it takes in one request (up to 200), with a few
   * older ones for context, so a search hit far back is one round trip.
   */
  async reveal(entry, seq) {
    while (this.store.openRoomId === entry.id && entry.timeline && !entry.timeline.bySeq.has(seq)) {
      const timeline = entry.timeline;
      if (!timeline.hasOlder || timeline.oldest <= seq) break;
      const oldest = timeline.oldest;
      // Up to the server's 200 at once, reaching a few messages before the target when it can.
      await this.loadOlder(Math.min(MAX_PAGE_SIZE, Math.max(PAGE_SIZE, oldest - seq + REVEAL_CONTEXT)));
      if (entry.timeline === timeline && timeline.oldest === oldest && !this.olderLoad) break; // No progress: give up.
    }
    if (this.store.openRoomId === entry.id && !this.timeline.highlight(seq)) {
      this.toast.show(`Message ${seq} is not in ${entry.name} any more.`);
    }
  }

  /** This person's name and picture at the foot of the sidebar. */
  showMe(user) {
    byId('me-name').textContent = user.username;
    const avatar = byId('me-avatar');
    avatar.className = `avatar ${hueClass(user.id)}`;
    avatar.dataset.username = user.username ?? '';
    avatars.fill(avatar, user);
  }

  /**
   * Someone's profile changed (`user_updated`, or this person's own upload):
   * their picture everywhere, and this person's own record.
   */
  userUpdated(user) {
    if (!user?.id) return;
    const me = this.store.me;
    if (me && user.id === me.id) {
      this.store.me = { ...me, ...user };
      this.showMe(this.store.me);
    }
    avatars.learn([user]);
  }

  // ---- Read state ----------------------------------------------------------

  /**
   * The person has read the open room when they can see its newest message:
   * the tab is visible, the history is loaded and scrolled to its end. The
   * cursor moves here at once (the badge goes) and to the server shortly.
   */
  readIfSeen(entry) {
    if (!entry || entry.id !== this.store.openRoomId || entry.holdRead || !entry.timeline) return;
    // Not before the pane shows this room's history (it is still loading, or being opened).
    if (this.timeline.history !== entry.timeline) return;
    // On a phone the open room list covers the messages.
    if (document.hidden || byId('chat').inert || !this.timeline.newestInView()) return;
    const moved = this.store.readTo(entry, entry.timeline.newest);
    if (moved === 'unchanged') return;
    this.sendRead(entry);
    if (moved === 'unsure') this.recount(entry);
    this.renderRoomState();
  }

  /**
   * Sends the room's cursor to the server, at most once a second per room
   * and only when it moved forward. Over the socket when it is up (the
   * server tells this person's other devices), else over HTTP.
   */
  sendRead(entry) {
    const read = this.reads.get(entry.id) ?? { seq: 0, at: 0, timer: null };
    this.reads.set(entry.id, read);
    if (read.timer != null) return;
    read.timer = setTimeout(() => {
      read.timer = null;
      const current = this.store.rooms.get(entry.id);
      if (!this.active || !current?.joined || current.readSeq <= read.seq) return;
      read.seq = current.readSeq;
      read.at = Date.now();
      this.postRead(current.id, current.readSeq, false);
    }, Math.max(0, read.at + READ_EVERY_MS - Date.now()));
  }

  postRead(roomId, seq, force) {
    const frame = force ? { type: 'read', room: roomId, seq, force: true } : { type: 'read', room: roomId, seq };
    if (this.connection.send(frame)) return;
    api.markRead(roomId, seq, force).catch((error) => {
      // A read lost offline is made again when the person next sees the room;
      // a "Mark as unread" that did not reach the server must say so.
      if (force) this.toast.show(`Could not mark as unread: ${error.message}`);
    });
  }

  /** Sends again the cursors the server turned out not to have (a read lost with a socket). */
  sendBehind() {
    for (const id of this.store.behind) {
      const entry = this.store.rooms.get(id);
      const read = this.reads.get(id);
      if (read) read.seq = Math.min(read.seq, (entry?.readSeq ?? 1) - 1);
      if (entry?.joined) this.sendRead(entry);
    }
    this.store.behind.clear();
  }

  /** Asks the server for one room's counts again, once for a burst of doubts. */
  recount(entry) {
    if (this.recounts.has(entry.id)) return;
    this.recounts.set(
      entry.id,
      setTimeout(async () => {
        try {
          const { room } = await api.room(entry.id);
          if (this.active && this.store.rooms.get(entry.id) === entry && entry.joined && room?.joined) {
            if (this.store.takeReadState(entry, room)) this.renderRoomState();
          }
        } catch {
          // Offline: the next room list brings the counts.
        } finally {
          this.recounts.delete(entry.id);
        }
      }, RECOUNT_AFTER_MS),
    );
  }

  /** The cursor moved on another device of this person: the counts are the server's. */
  readElsewhere(frame) {
    const entry = this.store.readElsewhere(frame);
    if (!entry) return;
    const read = this.reads.get(entry.id);
    if (read) read.seq = Math.max(read.seq, frame.seq);
    this.renderRoomState();
  }

  /**
   * "Mark as unread" on a message: the cursor goes back to just before it
   * (forced, so the server moves it back too), the badge counts from there,
   * the divider moves onto it, and this visit stops reading the room until
   * the person opens it again.
   */
  markUnread(seq) {
    const found = this.loaded(seq);
    if (!found) return;
    const { entry } = found;
    const read = this.reads.get(entry.id);
    if (read) {
      clearTimeout(read.timer);
      read.timer = null;
      read.seq = seq - 1;
      read.at = Date.now();
    }
    entry.holdRead = true;
    this.store.unreadFrom(entry, seq - 1);
    this.postRead(entry.id, seq - 1, true);
    this.timeline.moveUnreadDivider(seq - 1);
    this.renderRoomState();
    const counts = unreadPhrase(entry.unread, entry.mentions);
    this.toast.show(counts ? `Marked as unread (${counts}).` : 'Marked as unread.');
  }

  showRoomHeader(entry) {
    const { topic, member_count: count } = entry.room;
    // A direct room has no name: its header names the people in it.
    byId('room-title').replaceChildren(
      entry.private ? lockIcon() : '',
      h('button', { type: 'button', id: 'room-info', class: 'title-button', 'aria-haspopup': 'dialog', text: entry.longName }),
    );
    const topicLine = byId('room-topic');
    // A one-to-one conversation has no topic: the line says whether the other person is online.
    const partner = entry.partner();
    if (partner) topicLine.replaceChildren(this.presence.dot(partner.id, { shown: true }));
    else topicLine.textContent = topic ?? '';
    topicLine.hidden = !topic && !partner;
    const members = byId('members-button');
    members.hidden = false;
    // No parentheses: axe (rightly) wants the visible count inside the name.
    const label = count == null ? 'Members' : `Members, ${count}`;
    members.setAttribute('aria-label', label);
    members.title = label;
    byId('members-count').textContent = count == null ? '' : String(count);
    byId('add-people-button').hidden = !this.canAddPeople(entry);
    // A direct room cannot be left.
    byId('leave-button').hidden = entry.direct;
  }

  /** The room's owner, its moderators and administrators may add people to a room with a name. */
  canAddPeople(entry) {
    return this.details.canModerate(entry);
  }

  showNoRoom() {
    this.store.openRoomId = null;
    byId('room-title').textContent = 'hearth';
    byId('room-topic').hidden = true;
    byId('members-button').hidden = true;
    byId('leave-button').hidden = true;
    byId('add-people-button').hidden = true;
    byId('empty-state').hidden = false;
    this.timeline.hide();
    this.composer.hide();
    this.typingLine.show(null);
    this.renderRoomState();
  }

  /** @param {HTMLButtonElement} [button] the Join button pressed, marked busy meanwhile */
  async joinRoom(id, button) {
    button?.setAttribute('aria-busy', 'true');
    try {
      const { room } = await api.joinRoom(id);
      this.store.upsertRoom({ ...room, joined: true });
      this.renderRoomState();
      this.goToRoom(id, true);
    } catch (error) {
      const name = this.store.rooms.get(id)?.name ?? 'this room';
      setMessage(
        byId('rooms-error'),
        error.code === 'banned' ? `You are banned from ${name}. Its owner or a moderator can lift the ban.` : error.message,
      );
      button?.removeAttribute('aria-busy');
    }
  }

  /** Opens a joined room through the address bar, so Back works. */
  goToRoom(id, focusComposer) {
    this.focusComposerOnOpen = focusComposer;
    if (location.hash !== roomHash(id)) {
      location.hash = roomHash(id); // hashchange opens it
    } else if (this.store.openRoomId !== id) {
      this.openFromHash();
    } else {
      this.focusComposerOnOpen = false;
      if (focusComposer) this.composer.focus();
    }
  }

  /**
   * Opens a message's link (a search hit): the room, scrolled to the message
   * and highlighted, loading older pages until it is there.
   */
  goToMessage(hash) {
    const place = placeFromHash(hash);
    if (!place) return;
    if (!this.store.rooms.get(place.roomId)?.joined) {
      this.toast.show('You are no longer in that room.');
      return;
    }
    if (location.hash !== hash) location.hash = hash; // hashchange opens it there
    else this.openFromHash();
  }

  /** Leaves at once, with an Undo (which joins again) rather than a confirmation. */
  async leaveOpenRoom() {
    const entry = this.store.openRoom;
    if (!entry) return;
    // The socket's `left` may come before the answer: it needs no notice.
    this.leaving.add(entry.id);
    try {
      await api.leaveRoom(entry.id);
    } catch (error) {
      this.composer.showError(peopleError(error));
      return;
    } finally {
      this.leaving.delete(entry.id);
    }
    this.roomLeft(entry.id);
    this.toast.show(`You left ${entry.name}.`, { label: 'Undo', run: () => this.joinRoom(entry.id) });
  }

  /** Alt+↑/↓: the previous or next joined room, in the sidebar's order. */
  stepRoom(step) {
    const rooms = this.store.openableRooms();
    if (!rooms.length) return;
    const at = rooms.findIndex((entry) => entry.id === this.store.openRoomId);
    const next = at < 0 ? 0 : Math.min(rooms.length - 1, Math.max(0, at + step));
    if (rooms[next].id !== this.store.openRoomId) this.goToRoom(rooms[next].id, false);
  }

  /** A room disappeared (an administrator deleted it). */
  roomRemoved(id) {
    const entry = this.store.rooms.get(id);
    if (!entry) return;
    this.store.rooms.delete(id);
    if (this.store.openRoomId === id) {
      for (const dialogId of ['confirm-dialog', 'members-dialog', 'people-dialog']) byId(dialogId).close();
      history.replaceState(null, '', location.pathname);
      this.showNoRoom();
      this.toast.show(`${entry.name} was deleted.`);
    }
    this.renderRoomState();
  }

  /** Someone joined or left a room: its count, and the member list if it is open. */
  membersChanged(id, count, user = null, joined = false) {
    const entry = this.store.rooms.get(id);
    if (!entry) return;
    this.memberCache.delete(id);
    if (typeof count === 'number') entry.room.member_count = count;
    // The preview is what "Add people" leaves out before the list comes: keep it true.
    if (user?.id && Array.isArray(entry.room.members_preview)) {
      const rest = entry.room.members_preview.filter((member) => member.id !== user.id);
      entry.room.members_preview = joined ? [...rest, { id: user.id, username: user.username }] : rest;
    }
    if (this.store.openRoomId === id) {
      this.showRoomHeader(entry);
      this.details.refresh();
    }
    this.renderRoomState();
  }

  /**
   * This person is out of a room.
   * @param {{told?: boolean, reason?: string}} [options] `told`: the server
   *   said so (`left`), which, unless this page is leaving it, means someone
   *   removed or banned them (or they left on another device): the page
   *   says so, in the words the frame's `reason` allows.
   */
  roomLeft(id, { told = false, reason = '' } = {}) {
    const entry = this.store.rooms.get(id);
    const wasIn = entry?.joined === true;
    this.store.markLeft(id);
    const wasOpen = this.store.openRoomId === id;
    if (wasOpen) {
      for (const dialogId of ['confirm-dialog', 'members-dialog', 'people-dialog']) byId(dialogId).close();
      history.replaceState(null, '', location.pathname);
      this.showNoRoom();
      byId('room-title').focus();
    }
    this.renderRoomState();
    if (told && wasIn && !this.leaving.has(id)) this.toast.show(leftNotice(entry.name, reason));
  }

  async createRoom(form) {
    const data = new FormData(form);
    const errorLine = byId('create-room-error');
    setMessage(errorLine, '');
    try {
      const topic = String(data.get('topic')).trim();
      const visibility = data.get('private') ? 'private' : 'public';
      const { room } = await api.createRoom(String(data.get('name')).trim(), topic || undefined, visibility);
      this.store.upsertRoom({ ...room, joined: true });
      form.reset();
      byId('create-room').open = false;
      this.renderRoomState();
      this.goToRoom(room.id, true);
    } catch (error) {
      setMessage(errorLine, error.message);
    }
  }

  /** The room's details: whole name, visibility, topic, members, and managing them. Opened from the title or Members. */
  showMembers() {
    return this.details.open();
  }

  /** A member list was fetched: this person's role and the count it shows. */
  learnedMembers(entry, members) {
    entry.myRole = members.find((member) => member.id === this.store.me?.id)?.role ?? null;
    entry.room.member_count = members.length;
    this.memberCache.set(entry.id, { at: Date.now(), members: Promise.resolve(members) });
    if (this.store.openRoomId === entry.id) this.showRoomHeader(entry);
  }

  /** A room's name or topic changed (here, or by someone else: `room_updated`). */
  roomUpdated(room) {
    if (!room?.id) return;
    const known = this.store.rooms.get(room.id);
    if (!known) return;
    // Only members are told, so `joined` stays as it was; the count is the server's.
    const entry = this.store.upsertRoom({ ...room, joined: known.joined });
    if (this.store.openRoomId === entry.id) {
      this.showRoomHeader(entry);
      this.composer.setRoomName(entry.name);
      this.details.refresh();
    }
    this.renderRoomState();
  }

  /** "New message": choose people, then open the direct room with them. */
  startDirect(returnTo) {
    this.people.open(
      {
        title: 'New message',
        action: 'Start',
        run: async (people) => {
          const { room } = await api.directRoom(people.map((person) => person.id));
          this.store.upsertRoom({ ...room, joined: true });
          this.renderRoomState();
          this.goToRoom(room.id, true);
          return true;
        },
      },
      returnTo,
    );
  }

  /** "Add people" to the open room; the people added see it appear live. */
  addPeople(returnTo) {
    const entry = this.store.openRoom;
    if (!entry || !this.canAddPeople(entry)) return;
    // Members are not offered; the preview covers small rooms until the list comes.
    const exclude = new Set((entry.room.members_preview ?? []).map((member) => member.id));
    this.mentionable(entry.id).then(
      (members) => members.forEach((member) => exclude.add(member.id)),
      () => {},
    );
    byId('members-dialog').close();
    this.people.open(
      {
        title: `Add people to ${entry.name}`,
        action: 'Add',
        exclude,
        run: async (people) => {
          for (const person of people) await api.addMember(entry.id, person.id);
          this.memberCache.delete(entry.id);
          const names = people.map((person) => person.username);
          const list = names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
          this.toast.show(`Added ${list} to ${entry.name}.`);
          return false;
        },
      },
      returnTo,
    );
  }

  // ---- Messages ----------------------------------------------------------

  async loadNewest(entry) {
    // Everything seen before asking happened before the page was read, so
    // the page already shows it.
    const reflected = entry.lastSeq;
    const { messages } = await api.messages(entry.id, { limit: PAGE_SIZE });
    if (!entry.joined || entry.timeline) return;
    entry.timeline = new Timeline(messages, messages.length >= PAGE_SIZE, reflected);
    for (const message of messages) this.settle(message);
    entry.lastSeq = Math.max(entry.lastSeq, entry.timeline.newest);
    await this.catchUp(entry);
  }

  /**
   * Fetches whatever events lie between the loaded run and the newest seq
   * known, so a gap (a frame that raced the first page, a reconnect) never
   * stays. One fetch loop per room at a time; it re-checks the target as it goes.
   */
  catchUp(entry) {
    // Cleared in `finally`, which always runs after this assignment: a loop
    // with nothing to fetch must not leave a settled promise behind.
    entry.catchingUp ??= this.fetchMissing(entry).finally(() => {
      entry.catchingUp = null;
    });
    return entry.catchingUp;
  }

  async fetchMissing(entry) {
    const timeline = entry.timeline;
    try {
      while (timeline && entry.timeline === timeline) {
        const target = Math.max(entry.lastSeq, timeline.highestHeld);
        const from = timeline.newest;
        if (target <= from) break;
        const { events } = await api.events(entry.id, from, CATCH_UP_PAGE_SIZE);
        if (!events.length) break;
        for (const event of events) {
          if (event.kind === 'message') {
            // Counted like a live one (unless the counts already cover it).
            const { added, counted } = this.store.receive({ ...event, room: entry.id });
            this.showAdded(entry, added);
            if (counted) this.renderRoomState();
          } else {
            this.applyEvent({ ...event, room: entry.id });
          }
        }
        if (timeline.newest === from) break; // No progress: leave it to the next try.
      }
    } catch {
      // Offline or the server restarting: the next reconnect or message tries again.
    }
  }

  /** Loads the page before the oldest loaded message; one at a time, shared by all who ask. */
  /** @param {number} [limit] how many to ask for (a jump far back asks for more at once) */
  loadOlder(limit = PAGE_SIZE) {
    if (!this.olderLoad) {
      const running = this.fetchOlder(limit).finally(() => {
        this.olderLoad = null;
      });
      this.olderLoad = running;
      running.then((entry) => entry && this.fillViewport(entry));
    }
    return this.olderLoad;
  }

  /** @returns {Promise<object|null>} the room a page was added to */
  async fetchOlder(limit = PAGE_SIZE) {
    const entry = this.store.openRoom;
    const timeline = entry?.timeline;
    if (!timeline?.hasOlder) return null;
    this.timeline.setHistoryState(timeline, true);
    try {
      const { messages } = await api.messages(entry.id, { before: timeline.oldest, limit });
      const added = timeline.addOlder(messages, messages.length >= limit);
      if (this.store.openRoomId === entry.id && entry.timeline === timeline) this.timeline.insertOlder(added);
    } catch (error) {
      this.timeline.status.textContent = error.message;
      return null;
    }
    this.timeline.setHistoryState(timeline);
    return entry;
  }

  /** Loads older pages until the pane can scroll, since only scrolling asks for more. */
  fillViewport(entry) {
    if (this.store.openRoomId === entry.id && entry.timeline?.hasOlder && this.timeline.needsMoreToFill()) {
      this.loadOlder();
    }
  }

  /** One message from the server (live, replayed, or the reply to an HTTP post). */
  receive(message) {
    const mine = message.author?.id === this.store.me?.id;
    const isOpen = message.room === this.store.openRoomId;
    const { entry, fresh, added, counted, sure } = this.store.receive(message);
    if (!entry) {
      // A room this client does not know yet (joined elsewhere a moment ago).
      this.refreshRooms();
      return;
    }
    if (mine) entry.holdRead = false; // Writing in the room is reading it.
    this.settle(message);
    this.showAdded(entry, added);
    // Their message is what they were typing.
    if (message.author?.id) this.typingLine.stopped(entry.id, message.author.id);
    if (isOpen && fresh && !mine) this.announcer.say(`${message.author.username}: ${plainText(message.body)}`, entry.name);
    if (fresh && !mine) this.notifier.maybeShow(entry, message);
    // Arrived unseen in the open room (tab hidden, scrolled up): the divider
    // marks where the unread part starts, if nothing marked it yet.
    if (isOpen && counted && !mine && message.seq > entry.readSeq && !this.timeline.hasUnreadDivider) {
      this.timeline.moveUnreadDivider(entry.readSeq);
    }
    if (entry.timeline && entry.timeline.highestHeld > entry.timeline.newest) this.catchUp(entry);
    if (!sure) this.recount(entry);
    if (counted) this.renderRoomState();
  }

  /** An edit, deletion or reaction from the server, in the room's seq order. */
  applyEvent(event) {
    if (typeof event?.seq !== 'number' || !event.room) return;
    const { entry, changed, counted, sure } = this.store.applyEvent(event);
    if (!entry) return; // A room this client does not show.
    if (entry.id === this.store.openRoomId) this.timeline.updateMessages(changed);
    if (entry.timeline && entry.timeline.highestHeld > entry.timeline.newest) this.catchUp(entry);
    if (!sure) this.recount(entry);
    if (counted) this.renderRoomState();
  }

  /** Shows messages that joined the open room's timeline. */
  showAdded(entry, added) {
    for (const message of added) this.settle(message);
    if (entry.id === this.store.openRoomId && added.length) {
      this.timeline.insertNewer(added);
      this.readIfSeen(entry);
    }
  }

  /** A message of ours came back from the server: its outgoing copy can go. */
  settle(message) {
    if (message.client_id && this.outbox.delivered(message.client_id)) {
      this.timeline.removeOutgoing(message.client_id);
    }
  }

  /**
   * @param {{seq: number, author: object, excerpt: string}|null} replyTo
   * @param {object[]} [files] uploaded files the message carries
   * @param {string|null} [roomId] the room it was written in, when that is no
   *   longer the open one (it waited for its uploads)
   */
  send(body, replyTo = null, files = [], roomId = null) {
    const entry = roomId ? this.store.rooms.get(roomId) : this.store.openRoom;
    if (!entry) return;
    this.outbox.send(entry.id, body, replyTo, files);
    this.timeline.scrollToBottom();
  }

  // ---- Replies, edits, deletions and reactions ------------------------------

  /** A loaded message of the open room, with its room. */
  loaded(seq) {
    const entry = this.store.openRoom;
    const message = entry?.timeline?.bySeq.get(seq);
    return message ? { entry, message } : null;
  }

  startReply(seq) {
    const found = this.loaded(seq);
    if (!found || found.message.deleted) return;
    const { message } = found;
    this.composer.replyTo({ seq, author: message.author, excerpt: excerptOf(message) });
  }

  /**
   * Opens the editor on one of this person's messages.
   * @param {boolean} fromComposer focus goes back to the message box after
   * @returns {boolean} whether the editor opened
   */
  startEdit(seq, fromComposer) {
    const found = this.loaded(seq);
    if (!found) return false;
    const { entry, message } = found;
    return this.timeline.editMessage(message, {
      save: async (body) => {
        const { message: saved } = await api.editMessage(entry.id, seq, body);
        // As its event will: only the body and time, so a reaction that
        // overtook this answer is not undone.
        const edit = { kind: 'edit', target: seq, body: saved.body, at: saved.edited_at };
        this.showChanged(entry, entry.timeline?.change(edit, this.store.me?.id));
      },
      done: () => {
        if (fromComposer) this.composer.focus();
        else this.timeline.messageBySeq(seq)?.focus();
      },
    });
  }

  /** The Up arrow in an empty message box: edit this person's newest message. */
  editLast() {
    const timeline = this.store.openRoom?.timeline;
    if (!timeline) return false;
    const last = timeline
      .ordered()
      .reverse()
      .find((message) => message.author?.id === this.store.me?.id && !message.deleted);
    return last ? this.startEdit(last.seq, true) : false;
  }

  /** Asks first, in a dialog where Cancel has focus; deleted, it shows as such at once. */
  confirmDelete(seq) {
    const found = this.loaded(seq);
    if (!found) return;
    const { entry } = found;
    const dialog = byId('delete-dialog');
    byId('delete-excerpt').textContent = excerptOf(found.message);
    dialog.returnValue = '';
    dialog.addEventListener(
      'close',
      async () => {
        if (dialog.returnValue !== 'delete') return;
        try {
          await api.deleteMessage(entry.id, seq);
        } catch (error) {
          this.toast.show(error.message);
          return;
        }
        this.showChanged(entry, entry.timeline?.change({ kind: 'delete', target: seq }, this.store.me?.id));
      },
      { once: true },
    );
    dialog.showModal();
  }

  /** Adds this person's reaction, or takes it back if it is there. */
  async toggleReaction(seq, emoji) {
    const found = this.loaded(seq);
    if (!found) return;
    const { entry, message } = found;
    const on = !message.reactions.some((r) => r.emoji === emoji && r.me);
    try {
      await api.react(entry.id, seq, emoji, on);
    } catch (error) {
      this.toast.show(error.message);
      return;
    }
    const me = this.store.me;
    this.showChanged(entry, entry.timeline?.change({ kind: 'reaction', target: seq, emoji, by: me, on }, me?.id));
  }

  /** The picker, for an emoji beyond the quick few; focus returns to `returnTo`. */
  pickReaction(seq, returnTo) {
    const found = this.loaded(seq);
    if (!found) return;
    const back = returnTo?.isConnected ? returnTo : this.timeline.messageBySeq(seq);
    this.picker.open((emoji) => {
      const message = this.loaded(seq)?.message;
      // Picking one already there keeps it (the chips take it back).
      if (message && !message.reactions.some((r) => r.emoji === emoji && r.me)) this.toggleReaction(seq, emoji);
    }, back);
  }

  showChanged(entry, changed) {
    if (changed?.length && entry.id === this.store.openRoomId) this.timeline.updateMessages(changed);
  }

  showEdits(seq, trigger, byHover) {
    const entry = this.store.openRoom;
    if (!entry) return;
    this.editHistory.toggle(trigger, () => api.edits(entry.id, seq).then((reply) => reply.edits ?? []), byHover);
  }

  /** Who `@` can name in a room: its members but this person. */
  mentionable(roomId) {
    return this.membersOf(roomId).then((list) => list.filter((m) => m.id !== this.store.me?.id));
  }

  /** A room's members with their roles, fetched once a minute at most. */
  membersOf(roomId) {
    const cached = this.memberCache.get(roomId);
    if (cached && Date.now() - cached.at < MEMBERS_FRESH_MS) return cached.members;
    const members = api.members(roomId).then(({ members: list }) => {
      avatars.learn(list); // Authors' pictures: messages carry none.
      bots.learn(list);
      return list;
    });
    members.catch(() => this.memberCache.delete(roomId));
    this.memberCache.set(roomId, { at: Date.now(), members });
    return members;
  }

  /**
   * Learns this person's role in a room (room objects do not carry it), so
   * a moderator gets "Add people" too.
   */
  learnRole(entry) {
    // The creator and administrators need no list; a moderator may have been
    // made a member again since (no frame says so), so theirs is re-read.
    const me = this.store.me;
    if (entry.direct || entry.room.created_by === me?.id || me?.admin === true) return;
    this.membersOf(entry.id).then(
      (members) => {
        entry.myRole = members.find((member) => member.id === this.store.me?.id)?.role ?? null;
        if (this.store.openRoomId === entry.id) this.showRoomHeader(entry);
      },
      () => {},
    );
  }

  copyLink(li) {
    const url = `${location.origin}${location.pathname}${roomHash(this.store.openRoomId, li.dataset.seq)}`;
    this.copy(url, 'Link copied.');
  }

  /** Puts text on the clipboard; where that is not allowed, shows it to copy by hand. */
  async copy(text, done) {
    try {
      await navigator.clipboard.writeText(text);
      this.toast.show(done);
    } catch {
      this.toast.show(text);
    }
  }

  // ---- Wiring --------------------------------------------------------------

  listenToConnection() {
    const connection = this.connection;
    connection.addEventListener('ready', ({ detail: frame }) => {
      this.presence.reset(frame?.online, this.store.me?.id);
      if (frame?.user?.id === this.store.me?.id) this.userUpdated(frame.user);
      // The counts as of this moment; the replay that follows is not counted again.
      this.store.takeReady(frame?.rooms);
      this.sendBehind();
      this.renderRoomState();
      // A read lost with the last socket is made again if the person is looking.
      this.readIfSeen(this.store.openRoom);
      this.outbox.connected();
      this.focusReporter.connected();
      // Membership may have changed while away; the replay that follows
      // `ready` fills each room's gap, and catch-up covers opened rooms.
      this.refreshRooms().then(() => {
        const open = this.store.openRoom;
        if (open?.timeline) this.catchUp(open);
        if (this.startedOffline && this.active) {
          this.startedOffline = false;
          if (!open) this.openFromHash();
        }
      });
    });
    connection.addEventListener('frame', ({ detail: frame }) => this.handleFrame(frame));
    connection.addEventListener('status', ({ detail }) => this.banner.update(detail));
    connection.addEventListener('lost', () => this.outbox.connectionLost());
    connection.addEventListener('session-ended', () => this.sessionEnded());
  }

  handleFrame(frame) {
    switch (frame.type) {
      case 'message':
        if (frame.message) this.receive(frame.message);
        break;
      case 'event':
        if (frame.event) this.applyEvent(frame.event);
        break;
      case 'ack':
        this.outbox.confirmed(frame.client_id);
        break;
      case 'error':
        // Of the frames this page sends, only `typing` may be unknown to the
        // server (an older hearth): it says so once and is not sent again.
        if (frame.code === 'unknown_type' && !frame.client_id) this.typingNotice.unsupported = true;
        else if (frame.client_id) this.outbox.refused(frame.client_id, frame.code, frame.message);
        else this.composer.showError(frame.message);
        break;
      case 'joined':
        if (frame.room) {
          this.store.upsertRoom({ ...frame.room, joined: true });
          this.renderRoomState();
        }
        break;
      case 'left':
        this.roomLeft(frame.room, { told: true, reason: frame.reason });
        break;
      case 'role_changed':
        // Roles are read with the member list: the next look reads it again.
        // (An open details dialog keeps its focus; a right lost meanwhile
        // is refused in words and re-read then.)
        this.memberCache.delete(frame.room);
        break;
      case 'notifications': {
        const entry = this.store.rooms.get(frame.room);
        if (entry && frame.level) entry.room.notifications = frame.level;
        break;
      }
      case 'room_updated':
        this.roomUpdated(frame.room);
        break;
      case 'read':
        this.readElsewhere(frame);
        break;
      case 'user_updated':
        this.userUpdated(frame.user);
        break;
      case 'presence':
        if (this.presence.apply(frame.changes)) this.details.presenceChanged();
        break;
      // These can come before `ready`; the room list is loaded before the
      // socket opens, so there is always a store to apply them to.
      case 'room_added':
        if (frame.room?.id) {
          // The creator's `joined` frame may have come first: keep its `joined`.
          const known = this.store.rooms.get(frame.room.id);
          this.store.upsertRoom(known ? { ...frame.room, joined: known.joined } : { ...frame.room, joined: false });
          this.renderRoomState();
        }
        break;
      case 'room_removed':
        this.roomRemoved(frame.room);
        break;
      case 'typing':
        if (frame.user?.id !== this.store.me?.id) this.typingLine.typing(frame.room, frame.user);
        break;
      case 'member_joined':
      case 'member_left':
        this.membersChanged(frame.room, frame.member_count, frame.user, frame.type === 'member_joined');
        break;
      default:
        break; // Frames from a newer server that this page does not know.
    }
  }

  listenToOutbox() {
    const outbox = this.outbox;
    const showIfOpen = (item) => {
      if (item.room === this.store.openRoomId) this.timeline.upsertOutgoing(item);
    };
    outbox.addEventListener('changed', ({ detail }) => showIfOpen(detail));
    outbox.addEventListener('removed', ({ detail }) => this.timeline.removeOutgoing(detail.clientId));
    outbox.addEventListener('posted', ({ detail }) => {
      outbox.confirmed(detail.item.clientId);
      this.receive(detail.message);
    });
  }

  listenToControls() {
    window.addEventListener('hashchange', () => this.openFromHash());
    // The skip link must not follow its href: the hash holds the open room.
    this.root.querySelector('.skip-link').addEventListener('click', (event) => {
      event.preventDefault();
      if (this.store.openRoom) this.composer.focus();
      else (byId('sidebar').querySelector('a, button:not([hidden])') ?? byId('chat')).focus();
    });
    byId('logout').addEventListener('click', () => this.logOut());
    byId('account-button').addEventListener('click', () => {
      this.adminPanel.update(this.store.me);
      this.account.open();
    });
    this.adminPanel.attach(byId('admin-entry'), byId('admin-open'));
    byId('search-open').addEventListener('click', () => this.search.open());
    byId('rooms-refresh').addEventListener('click', () => this.refreshRooms());
    byId('leave-button').addEventListener('click', () => this.leaveOpenRoom());
    byId('members-button').addEventListener('click', () => this.showMembers());
    // A tap anywhere on the title (name or topic) shows the room's details.
    byId('chat-title').addEventListener('click', () => this.showMembers());
    byId('dm-new').addEventListener('click', (event) => this.startDirect(event.currentTarget));
    byId('add-people-button').addEventListener('click', (event) => this.addPeople(event.currentTarget));
    byId('members-add').addEventListener('click', () => {
      // On a phone the header's button is not shown; focus goes back to the title.
      const headerButton = byId('add-people-button');
      this.addPeople(headerButton.offsetParent ? headerButton : byId('room-title'));
    });
    document.addEventListener('keydown', (event) => this.onShortcut(event));
    byId('create-room-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.createRoom(event.currentTarget);
    });
    byId('sidebar-open').addEventListener('click', () => this.openDrawer(true));
    // Widening the window turns the drawer back into a plain column.
    NARROW.addEventListener('change', () => this.closeDrawer(false, true));
    byId('sidebar-close').addEventListener('click', () => this.closeDrawer(true));
    byId('scrim').addEventListener('click', () => this.closeDrawer(true));
    byId('sidebar').addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && NARROW.matches) this.closeDrawer(true);
    });
    byId('sidebar').addEventListener('click', (event) => {
      // Choosing the room that is already open still closes the drawer.
      if (event.target.closest('a.room-link')) this.closeDrawer(false);
    });
    byId('empty-state').addEventListener('click', (event) => {
      if (event.target.closest('[data-open-drawer]')) this.openDrawer(true);
    });
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) this.readIfSeen(this.store.openRoom);
    });
  }

  /**
   * Ctrl/Cmd+K: the quick switcher. Alt+↑/↓: previous or next room.
   * Ctrl/Cmd+Shift+F, or / outside a text box: search messages.
   */
  onShortcut(event) {
    if (!this.active || this.root.hidden) return;
    const typing = (el) => el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
    if ((event.ctrlKey || event.metaKey) && event.shiftKey && !event.altKey && event.key.toLowerCase() === 'f') {
      event.preventDefault();
      if (!document.querySelector('dialog[open]:not(#search-dialog)')) this.search.open();
    } else if (
      event.key === '/' && !event.ctrlKey && !event.metaKey && !event.altKey &&
      !typing(document.activeElement) && !document.querySelector('dialog[open]')
    ) {
      event.preventDefault();
      this.search.open();
    } else if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === 'k') {
      event.preventDefault();
      // Not over another dialog (the room's details, the account).
      if (!document.querySelector('dialog[open]:not(#switcher)')) this.switcher.open();
    } else if (event.altKey && !event.ctrlKey && !event.metaKey && (event.key === 'ArrowUp' || event.key === 'ArrowDown')) {
      if (document.querySelector('dialog[open]')) return;
      event.preventDefault();
      this.stepRoom(event.key === 'ArrowUp' ? -1 : 1);
    }
  }

  // ---- Small views -----------------------------------------------------------

  renderRoomState() {
    this.sidebar.render(this.store);
    this.updateTitle();
  }

  updateTitle() {
    const unread = this.active ? this.store.totalUnread() : 0;
    document.title = unread ? `(${unread}) hearth` : 'hearth';
    showUnreadOnIcon(unread, this.active ? this.store.totalMentions() : 0);
  }

  openDrawer(moveFocus) {
    const sidebar = byId('sidebar');
    sidebar.classList.add('open');
    byId('scrim').hidden = false;
    // While the drawer covers the chat, Tab must stay inside the drawer.
    byId('chat').inert = NARROW.matches;
    byId('sidebar-open').setAttribute('aria-expanded', 'true');
    if (moveFocus) {
      const target =
        sidebar.querySelector('a.room-link[aria-current="page"]') ??
        sidebar.querySelector('a.room-link') ??
        byId('sidebar-close');
      target.focus();
    }
  }

  /**
   * @param {boolean} moveFocus back to the button that opens the drawer
   * @param {boolean} [backToRoom] the person returns to the open room's
   *   messages (not when they chose a room in the drawer), which may read it
   */
  closeDrawer(moveFocus, backToRoom = moveFocus) {
    const sidebar = byId('sidebar');
    if (!sidebar.classList.contains('open')) return;
    const hadFocus = sidebar.contains(document.activeElement);
    sidebar.classList.remove('open');
    byId('scrim').hidden = true;
    byId('chat').inert = false;
    byId('sidebar-open').setAttribute('aria-expanded', 'false');
    if (moveFocus || (hadFocus && NARROW.matches)) byId('sidebar-open').focus();
    if (backToRoom) this.readIfSeen(this.store.openRoom);
  }
}

/**
 * One short line at the bottom of the chat (a status region), with an
 * optional action such as Undo. It stays while focus is inside it.
 */
class Toast {
  constructor() {
    this.root = byId('toast');
    this.text = byId('toast-text');
    this.button = byId('toast-action');
    this.timer = null;
    this.action = null;
    this.button.addEventListener('click', () => {
      const action = this.action;
      this.hide();
      action?.();
    });
    this.root.addEventListener('focusout', () => this.schedule());
  }

  /** @param {{label: string, run: () => void}} [action] */
  show(text, action = null) {
    this.text.textContent = text;
    this.action = action?.run ?? null;
    this.button.hidden = !action;
    this.button.textContent = action?.label ?? '';
    this.root.hidden = false;
    this.schedule();
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.root.contains(document.activeElement)) this.schedule();
      else this.hide();
    }, TOAST_MS);
  }

  hide() {
    clearTimeout(this.timer);
    this.root.hidden = true;
    this.action = null;
  }
}

/** Asked before each reconnect: is the session alive, and is the server there? */
async function checkSession() {
  try {
    await api.me();
    return 'ok';
  } catch (error) {
    return error.status === 401 ? 'gone' : 'unreachable';
  }
}

/**
 * The "connection lost" banner above the messages. Only the state change is
 * spoken (the banner is a status region); the per-second countdown is for the
 * eyes and hidden from screen readers.
 */
class ConnectionBanner {
  constructor(onRetry) {
    this.root = byId('conn-banner');
    this.text = byId('conn-text');
    this.countdown = byId('conn-countdown');
    this.everReady = false;
    this.ticker = null;
    byId('conn-retry').addEventListener('click', onRetry);
  }

  update({ state, retryAt }) {
    clearInterval(this.ticker);
    this.countdown.textContent = '';
    if (state === 'ready') {
      this.everReady = true;
      this.hide();
      return;
    }
    if (state === 'waiting' && !navigator.onLine) {
      // The browser's `online` event reconnects at once: no countdown.
      this.show('You are offline.');
      this.countdown.textContent = 'Reconnecting…';
    } else if (state === 'waiting') {
      this.show('Connection lost.');
      const tick = () => {
        const seconds = Math.max(1, Math.ceil((retryAt - Date.now()) / 1000));
        this.countdown.textContent = `Trying again in ${seconds} s…`;
      };
      tick();
      this.ticker = setInterval(tick, 1000);
    } else if (this.everReady || !this.root.hidden) {
      this.show(navigator.onLine ? 'Connection lost.' : 'You are offline.');
      this.countdown.textContent = 'Reconnecting…';
    }
  }

  /** The app opened without reaching the server: it says so from the start. */
  offline() {
    this.everReady = true;
    this.show(navigator.onLine ? 'Cannot reach the server.' : 'You are offline.');
    this.countdown.textContent = 'Reconnecting…';
  }

  show(text) {
    if (this.text.textContent !== text) this.text.textContent = text;
    this.root.hidden = false;
  }

  hide() {
    clearInterval(this.ticker);
    this.root.hidden = true;
  }

  /** Forgets the last session: the next first connect is quiet again. */
  reset() {
    this.everReady = false;
    this.hide();
  }
}

/**
 * Reads new messages in the open room to screen readers. Bursts (a reconnect
 * replaying many messages) become one summary instead of a flood.
 */
class Announcer {
  constructor() {
    this.region = byId('announcer');
    this.queue = [];
    this.timer = null;
  }

  say(text, roomName) {
    this.queue.push(text);
    this.roomName = roomName;
    this.timer ??= setTimeout(() => this.flush(), 500);
  }

  flush() {
    const lines = this.queue.length > 3 ? [`${this.queue.length} new messages in ${this.roomName}`] : this.queue;
    this.queue = [];
    this.timer = null;
    for (const line of lines) this.region.append(h('p', { text: line }));
    while (this.region.childElementCount > 5) this.region.firstElementChild.remove();
  }
}

/** What a person is told when the server takes them out of a room. */
function leftNotice(name, reason) {
  switch (reason) {
    case 'removed':
      return `You were removed from ${name}.`;
    case 'banned':
      return `You were banned from ${name}.`;
    case 'room_deleted':
      return `${name} was deleted.`;
    case 'left':
      return `You left ${name} on another device.`;
    default:
      return `You are no longer a member of ${name}.`;
  }
}
