// The signed-in app: wires the store, the live connection, the outbox and the
// views together. Data flows one way: server → store → views; the views only
// report what the person did.

import { api } from './api.js';
import { Composer } from './composer.js';
import { Connection } from './connection.js';
import { byId, h, hueClass, initial, setMessage } from './dom.js';
import { Outbox } from './outbox.js';
import { roomHash, roomIdFromHash, SidebarView } from './sidebar-view.js';
import { Store, Timeline } from './store.js';
import { TimelineView } from './timeline-view.js';

const PAGE_SIZE = 50;
const CATCH_UP_PAGE_SIZE = 200;
// Other people's new rooms are not pushed over the socket, so the list is
// refreshed now and then while the page is visible.
const ROOM_LIST_REFRESH_MS = 60_000;
const NARROW = window.matchMedia('(max-width: 767px)');

export class App {
  /** @param {{onSessionEnded: (notice: string|null) => void}} handlers */
  constructor({ onSessionEnded }) {
    this.onSessionEnded = onSessionEnded;
    this.root = byId('app-view');
    this.store = new Store();
    this.active = false;
    this.loadingOlder = false;

    this.connection = new Connection({
      resumePoints: () => this.store.resumePoints(),
      checkSession: () => checkSession(),
    });
    this.outbox = new Outbox({
      sendFrame: (frame) => this.connection.send(frame),
      post: (room, body, clientId) => api.postMessage(room, body, clientId).then((reply) => reply.message),
    });
    this.sidebar = new SidebarView({ onJoin: (id, button) => this.joinRoom(id, button) });
    this.timeline = new TimelineView({
      onNeedOlder: () => this.loadOlder(),
      onRetry: (clientId) => this.outbox.retry(clientId),
      onDiscard: (clientId) => this.outbox.discard(clientId),
    });
    this.composer = new Composer({ onSend: (body) => this.send(body) });
    this.banner = new ConnectionBanner(() => this.connection.reconnectNow());
    this.announcer = new Announcer();

    this.listenToConnection();
    this.listenToOutbox();
    this.listenToControls();
  }

  // ---- Entering and leaving --------------------------------------------

  async enter(user) {
    this.active = true;
    this.store.reset(user);
    byId('me-name').textContent = user.username;
    const avatar = byId('me-avatar');
    avatar.className = `avatar ${hueClass(user.id)}`;
    avatar.textContent = initial(user.username);
    this.root.hidden = false;
    this.showNoRoom();
    await this.refreshRooms();
    if (!this.active) return;
    this.connection.start();
    this.openFromHash();
    this.refreshTimer = setInterval(() => {
      if (!document.hidden && this.connection.isReady) this.refreshRooms();
    }, ROOM_LIST_REFRESH_MS);
  }

  /** Tears the signed-in state down; the caller shows the login screen. */
  leave() {
    if (!this.active) return;
    this.active = false;
    clearInterval(this.refreshTimer);
    this.connection.stop();
    this.outbox.clear();
    this.store.reset(null);
    this.timeline.hide();
    this.composer.clear();
    this.banner.reset();
    this.closeDrawer(false);
    byId('members-dialog').close();
    this.root.hidden = true;
    this.updateTitle();
  }

  sessionEnded() {
    if (!this.active) return;
    this.leave();
    this.onSessionEnded('Your session has ended. Please log in again.');
  }

  async logOut() {
    this.leave();
    try {
      await api.logout();
    } catch {
      // The cookie may already be gone; the person is logged out here either way.
    }
    this.onSessionEnded(null);
  }

  // ---- Rooms -------------------------------------------------------------

  async refreshRooms() {
    try {
      const { rooms } = await api.rooms();
      if (!this.active) return;
      this.store.setRooms(rooms);
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

  /** Opens the room named in the address bar, or the first joined room. */
  openFromHash() {
    if (!this.active) return;
    const id = roomIdFromHash();
    const entry = id ? this.store.rooms.get(id) : null;
    if (entry?.joined) {
      if (id !== this.store.openRoomId) this.openRoom(entry);
      return;
    }
    const first = this.store.joinedRooms()[0];
    if (first && !NARROW.matches) {
      history.replaceState(null, '', roomHash(first.id));
      this.openRoom(first);
    } else {
      this.showNoRoom();
      if (NARROW.matches) this.openDrawer(false);
    }
  }

  async openRoom(entry) {
    this.store.openRoomId = entry.id;
    entry.unread = 0;
    this.renderRoomState();
    this.showRoomHeader(entry);
    byId('empty-state').hidden = true;
    this.composer.show(entry.room.name);
    this.closeDrawer(false);

    this.timeline.show(entry, this.outbox.forRoom(entry.id), this.store.me);
    if (!entry.timeline) {
      this.timeline.setHistoryState(null, true);
      try {
        await this.loadNewest(entry);
      } catch (error) {
        if (this.store.openRoomId === entry.id) this.timeline.status.textContent = error.message;
        return;
      }
      if (this.store.openRoomId !== entry.id) return;
      this.timeline.show(entry, this.outbox.forRoom(entry.id), this.store.me);
    }
    this.fillViewport(entry);
  }

  showRoomHeader(entry) {
    byId('room-title').textContent = entry.room.name;
    const topic = byId('room-topic');
    topic.textContent = entry.room.topic ?? '';
    topic.hidden = !entry.room.topic;
    const members = byId('members-button');
    members.hidden = false;
    members.textContent = `Members (${entry.room.member_count ?? '?'})`;
    byId('leave-button').hidden = false;
  }

  showNoRoom() {
    this.store.openRoomId = null;
    byId('room-title').textContent = 'hearth';
    byId('room-topic').hidden = true;
    byId('members-button').hidden = true;
    byId('leave-button').hidden = true;
    byId('empty-state').hidden = false;
    this.timeline.hide();
    this.composer.hide();
    this.renderRoomState();
  }

  async joinRoom(id, button) {
    button.setAttribute('aria-busy', 'true');
    try {
      const { room } = await api.joinRoom(id);
      this.store.upsertRoom({ ...room, joined: true });
      this.renderRoomState();
      location.hash = roomHash(id);
    } catch (error) {
      setMessage(byId('rooms-error'), error.message);
      button.removeAttribute('aria-busy');
    }
  }

  async leaveOpenRoom() {
    const entry = this.store.openRoom;
    if (!entry) return;
    try {
      await api.leaveRoom(entry.id);
    } catch (error) {
      this.composer.showError(error.message);
      return;
    }
    this.roomLeft(entry.id);
  }

  roomLeft(id) {
    this.store.markLeft(id);
    if (this.store.openRoomId === id) {
      history.replaceState(null, '', location.pathname);
      this.showNoRoom();
      byId('room-title').focus();
    }
    this.renderRoomState();
  }

  async createRoom(form) {
    const data = new FormData(form);
    const errorLine = byId('create-room-error');
    setMessage(errorLine, '');
    try {
      const topic = String(data.get('topic')).trim();
      const { room } = await api.createRoom(String(data.get('name')).trim(), topic || undefined);
      this.store.upsertRoom({ ...room, joined: true });
      form.reset();
      byId('create-room').open = false;
      this.renderRoomState();
      location.hash = roomHash(room.id);
    } catch (error) {
      setMessage(errorLine, error.message);
    }
  }

  async showMembers() {
    const entry = this.store.openRoom;
    if (!entry) return;
    const dialog = byId('members-dialog');
    const list = byId('members-list');
    const status = byId('members-status');
    list.replaceChildren();
    status.textContent = 'Loading…';
    dialog.showModal();
    try {
      const { members } = await api.members(entry.id);
      // The count in the header only refreshes with the room list; this is fresher.
      entry.room.member_count = members.length;
      if (this.store.openRoomId === entry.id) this.showRoomHeader(entry);
      status.textContent = members.length === 1 ? '1 member' : `${members.length} members`;
      list.replaceChildren(
        ...members.map((member) =>
          h(
            'li',
            {},
            h('span', { class: `avatar ${hueClass(member.id)}`, 'aria-hidden': 'true', text: initial(member.username) }),
            h('span', { text: member.username }),
          ),
        ),
      );
    } catch (error) {
      status.textContent = error.message;
    }
  }

  // ---- Messages ----------------------------------------------------------

  async loadNewest(entry) {
    const { messages } = await api.messages(entry.id, { limit: PAGE_SIZE });
    if (!entry.joined || entry.timeline) return;
    entry.timeline = new Timeline(messages, messages.length >= PAGE_SIZE);
    for (const message of messages) this.settle(message);
    entry.lastSeq = Math.max(entry.lastSeq, entry.timeline.newest);
    await this.catchUp(entry);
  }

  /**
   * Fetches whatever lies between the loaded run and the newest seq known,
   * so a gap (a frame that raced the first page, a reconnect) never stays.
   * One fetch loop per room at a time; it re-checks the target as it goes.
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
        if (target <= timeline.newest) break;
        const { messages } = await api.messages(entry.id, { after: timeline.newest, limit: CATCH_UP_PAGE_SIZE });
        if (!messages.length) break;
        entry.lastSeq = Math.max(entry.lastSeq, messages.at(-1).seq);
        this.showAdded(entry, timeline.addNewer(messages));
      }
    } catch {
      // Offline or the server restarting: the next reconnect or message tries again.
    }
  }

  async loadOlder() {
    const entry = this.store.openRoom;
    const timeline = entry?.timeline;
    if (!timeline?.hasOlder || this.loadingOlder) return;
    this.loadingOlder = true;
    this.timeline.setHistoryState(timeline, true);
    try {
      const { messages } = await api.messages(entry.id, { before: timeline.oldest, limit: PAGE_SIZE });
      const added = timeline.addOlder(messages, messages.length >= PAGE_SIZE);
      if (this.store.openRoomId === entry.id && entry.timeline === timeline) this.timeline.insertOlder(added);
    } catch (error) {
      this.timeline.status.textContent = error.message;
      return;
    } finally {
      this.loadingOlder = false;
    }
    this.timeline.setHistoryState(timeline);
    this.fillViewport(entry);
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
    const before = this.store.totalUnread();
    const { entry, fresh, added } = this.store.receive(message, { countsAsUnread: !isOpen || document.hidden });
    if (!entry) {
      // A room this client does not know yet (joined elsewhere a moment ago).
      this.refreshRooms();
      return;
    }
    this.settle(message);
    this.showAdded(entry, added);
    if (isOpen && fresh && !mine) this.announcer.say(`${message.author.username}: ${message.body}`, entry.room.name);
    if (entry.timeline && entry.timeline.highestHeld > entry.timeline.newest) this.catchUp(entry);
    if (this.store.totalUnread() !== before) this.renderRoomState();
  }

  /** Shows messages that joined the open room's timeline. */
  showAdded(entry, added) {
    for (const message of added) this.settle(message);
    if (entry.id === this.store.openRoomId && added.length) this.timeline.insertNewer(added);
  }

  /** A message of ours came back from the server: its outgoing copy can go. */
  settle(message) {
    if (message.client_id && this.outbox.delivered(message.client_id)) {
      this.timeline.removeOutgoing(message.client_id);
    }
  }

  send(body) {
    const entry = this.store.openRoom;
    if (!entry) return;
    const item = this.outbox.send(entry.id, body);
    this.timeline.upsertOutgoing(item);
    this.timeline.scrollToBottom();
  }

  // ---- Wiring --------------------------------------------------------------

  listenToConnection() {
    const connection = this.connection;
    connection.addEventListener('ready', () => {
      // Membership may have changed while away; the replay that follows
      // `ready` fills each room's gap, and catch-up covers opened rooms.
      this.refreshRooms().then(() => {
        const open = this.store.openRoom;
        if (open?.timeline) this.catchUp(open);
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
      case 'ack':
        this.outbox.confirmed(frame.client_id);
        break;
      case 'error':
        if (frame.client_id) this.outbox.fail(frame.client_id, frame.message);
        else this.composer.showError(frame.message);
        break;
      case 'joined':
        if (frame.room) {
          this.store.upsertRoom({ ...frame.room, joined: true });
          this.renderRoomState();
        }
        break;
      case 'left':
        this.roomLeft(frame.room);
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
    byId('rooms-refresh').addEventListener('click', () => this.refreshRooms());
    byId('leave-button').addEventListener('click', () => this.leaveOpenRoom());
    byId('members-button').addEventListener('click', () => this.showMembers());
    byId('members-close').addEventListener('click', () => byId('members-dialog').close());
    byId('create-room-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.createRoom(event.currentTarget);
    });
    byId('sidebar-open').addEventListener('click', () => this.openDrawer(true));
    // Widening the window turns the drawer back into a plain column.
    NARROW.addEventListener('change', () => this.closeDrawer(false));
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
      const open = this.store.openRoom;
      if (!document.hidden && open?.unread) {
        open.unread = 0;
        this.renderRoomState();
      }
    });
  }

  // ---- Small views -----------------------------------------------------------

  renderRoomState() {
    this.sidebar.render(this.store);
    this.updateTitle();
  }

  updateTitle() {
    const unread = this.active ? this.store.totalUnread() : 0;
    document.title = unread ? `(${unread}) hearth` : 'hearth';
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

  closeDrawer(moveFocus) {
    const sidebar = byId('sidebar');
    if (!sidebar.classList.contains('open')) return;
    const hadFocus = sidebar.contains(document.activeElement);
    sidebar.classList.remove('open');
    byId('scrim').hidden = true;
    byId('chat').inert = false;
    byId('sidebar-open').setAttribute('aria-expanded', 'false');
    if (moveFocus || (hadFocus && NARROW.matches)) byId('sidebar-open').focus();
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
    if (state === 'waiting') {
      this.show('Connection lost.');
      const tick = () => {
        const seconds = Math.max(1, Math.ceil((retryAt - Date.now()) / 1000));
        this.countdown.textContent = `Trying again in ${seconds} s…`;
      };
      tick();
      this.ticker = setInterval(tick, 1000);
    } else if (this.everReady || !this.root.hidden) {
      this.show('Connection lost.');
      this.countdown.textContent = 'Reconnecting…';
    }
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
