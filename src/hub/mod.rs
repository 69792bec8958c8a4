//! The hub: who is connected, which rooms each connection listens to, and
//! the fan-out of committed events to them.
//!
//! The committer calls [`Hub::publish`] once per event, after the event is
//! durable; each recipient gets a clone of the same framed [`Bytes`] pushed
//! onto its [`Outbox`]. No per-delivery allocation, no broadcast channel
//! with thousands of receivers: one read lock and a loop of queue pushes.
//!
//! Nor a wake-up per delivery: a connection's writer task is not woken by
//! room events. Each runtime worker has a [`Flusher`] task; an outbox that
//! gets its first frame since it was last written goes on its flusher's
//! list (one list push per connection per window, one wake-up per flusher
//! per window), and the flusher writes every listed outbox at most once
//! per coalescing window, whatever it is owed, in one vectored write each.

pub mod outbox;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::Notify;

pub use outbox::{ConnId, Flushed, Outbox};

use crate::ids::{RoomId, Seq, TokenHash, UserId};
use crate::locks::{lock, read, write};
use crate::protocol::ServerFrame;
use crate::wire::{CloseReason, Encoded};

pub struct Hub {
    /// Room → the connections listening to it.
    rooms: RwLock<HashMap<RoomId, HashMap<ConnId, Arc<Outbox>>>>,
    /// User → that user's connections, for joins, leaves and revocation.
    users: RwLock<HashMap<UserId, HashMap<ConnId, Arc<Outbox>>>>,
    next_id: AtomicU64,
    /// Deliveries queued, for metrics and the benchmark.
    pub deliveries: AtomicU64,
    /// One per worker thread; a connection's is `flushers[id % len]`.
    flushers: Vec<Arc<Flusher>>,
}

impl Default for Hub {
    fn default() -> Hub {
        Hub::new()
    }
}

impl Hub {
    /// A hub with one flusher per CPU this process may run on (the
    /// runtime's worker count).
    pub fn new() -> Hub {
        let n = std::thread::available_parallelism().map_or(1, usize::from);
        Hub {
            rooms: RwLock::default(),
            users: RwLock::default(),
            next_id: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
            flushers: (0..n).map(|_| Arc::new(Flusher::default())).collect(),
        }
    }

    /// Starts the flusher tasks, which write room events at most once per
    /// `window` per connection. Call once, inside the runtime.
    pub fn start_flushers(&self, window: Duration) {
        for f in &self.flushers {
            tokio::spawn(f.clone().run(window));
        }
    }

    /// Puts outboxes that just became dirty on their flushers' lists,
    /// taking each list's lock once.
    fn enlist(&self, dirty: Vec<Arc<Outbox>>) {
        if dirty.is_empty() {
            return;
        }
        if let [only] = self.flushers.as_slice() {
            only.enlist(dirty);
            return;
        }
        let n = self.flushers.len() as u64;
        for (i, f) in self.flushers.iter().enumerate() {
            let mine: Vec<Arc<Outbox>> = dirty
                .iter()
                .filter(|o| o.id.0 % n == i as u64)
                .cloned()
                .collect();
            f.enlist(mine);
        }
    }

    pub fn next_conn_id(&self) -> ConnId {
        ConnId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Registers a connection and subscribes it to `rooms`. Its outbox holds
    /// live events until [`Outbox::release`], so the caller can replay
    /// history first without a gap or a duplicate.
    pub fn connect(&self, outbox: &Arc<Outbox>, rooms: &[RoomId]) {
        {
            let mut map = write(&self.rooms);
            for room in rooms {
                map.entry(*room)
                    .or_default()
                    .insert(outbox.id, outbox.clone());
            }
        }
        write(&self.users)
            .entry(outbox.user)
            .or_default()
            .insert(outbox.id, outbox.clone());
    }

    /// Removes a connection from every room and from its user.
    pub fn disconnect(&self, outbox: &Outbox, rooms: impl IntoIterator<Item = RoomId>) {
        {
            let mut map = write(&self.rooms);
            for room in rooms {
                if let Some(subs) = map.get_mut(&room) {
                    subs.remove(&outbox.id);
                    if subs.is_empty() {
                        map.remove(&room);
                    }
                }
            }
        }
        let mut users = write(&self.users);
        if let Some(conns) = users.get_mut(&outbox.user) {
            conns.remove(&outbox.id);
            if conns.is_empty() {
                users.remove(&outbox.user);
            }
        }
    }

    /// Delivers a committed event to every connection listening to `room`.
    pub fn publish(&self, room: RoomId, seq: Seq, encoded: &Encoded) {
        let map = read(&self.rooms);
        let Some(subs) = map.get(&room) else { return };
        let mut dirty = Vec::new();
        for outbox in subs.values() {
            if outbox.push_event(room, seq, encoded) {
                dirty.push(outbox.clone());
            }
        }
        self.deliveries
            .fetch_add(subs.len() as u64, Ordering::Relaxed);
        drop(map);
        self.enlist(dirty);
    }

    /// Sends a frame that is not part of any room's log (a room created or
    /// removed) to every connection but those of `except`, encoded once per
    /// format.
    pub fn send_all(&self, frame: &ServerFrame<'_>, except: Option<UserId>) {
        let encoded = Encoded::new(frame);
        for (user, conns) in read(&self.users).iter() {
            if Some(*user) == except {
                continue;
            }
            for c in conns.values() {
                c.push(encoded.for_format(c.format));
            }
        }
    }

    /// Sends a frame that is not part of the room's log (a member joined
    /// or left) to every connection listening to `room`.
    pub fn send_room(&self, room: RoomId, frame: &ServerFrame<'_>) {
        let encoded = Encoded::new(frame);
        if let Some(subs) = read(&self.rooms).get(&room) {
            for c in subs.values() {
                c.push(encoded.for_format(c.format));
            }
        }
    }

    /// Sends a frame nobody must wait for (see [`Outbox::push_droppable`])
    /// to the connections listening to `room`, but not to `except`'s.
    pub fn send_room_droppable(&self, room: RoomId, frame: &ServerFrame<'_>, except: UserId) {
        let encoded = Encoded::new(frame);
        let mut dirty = Vec::new();
        if let Some(subs) = read(&self.rooms).get(&room) {
            for c in subs.values().filter(|c| c.user != except) {
                if c.push_droppable(encoded.for_format(c.format)) {
                    dirty.push(c.clone());
                }
            }
        }
        self.enlist(dirty);
    }

    /// The user's live connections, e.g. to tell them about a join.
    pub fn connections_of(&self, user: UserId) -> Vec<Arc<Outbox>> {
        read(&self.users)
            .get(&user)
            .map(|c| c.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether any connection of `user` is in front of them (see
    /// [`Outbox::is_active`]); if none is, they are away.
    pub fn is_active(&self, user: UserId, window: std::time::Duration) -> bool {
        read(&self.users)
            .get(&user)
            .is_some_and(|c| c.values().any(|o| o.is_active(window)))
    }

    /// Starts delivering `room` to every connection of `user` (a join made
    /// on any device reaches all of them).
    pub fn subscribe_user(&self, user: UserId, room: RoomId) -> Vec<Arc<Outbox>> {
        let conns = self.connections_of(user);
        let mut map = write(&self.rooms);
        let subs = map.entry(room).or_default();
        for c in &conns {
            subs.insert(c.id, c.clone());
        }
        conns
    }

    /// Stops delivering `room` to every connection of `user`.
    pub fn unsubscribe_user(&self, user: UserId, room: RoomId) -> Vec<Arc<Outbox>> {
        let conns = self.connections_of(user);
        let mut map = write(&self.rooms);
        if let Some(subs) = map.get_mut(&room) {
            for c in &conns {
                subs.remove(&c.id);
            }
            if subs.is_empty() {
                map.remove(&room);
            }
        }
        conns
    }

    /// Closes every connection of `user`, or only those of one session.
    pub fn close_user(&self, user: UserId, session: Option<&TokenHash>, reason: CloseReason) {
        for c in self.connections_of(user) {
            if session.is_none_or(|s| &c.session == s) {
                c.close(reason);
            }
        }
    }

    /// Closes every connection, for shutdown.
    pub fn close_all(&self, reason: CloseReason) {
        for conns in read(&self.users).values() {
            for c in conns.values() {
                c.close(reason);
            }
        }
    }

    pub fn connection_count(&self) -> usize {
        read(&self.users).values().map(HashMap::len).sum()
    }
}

/// Writes room events for its share of the connections: a list of dirty
/// outboxes, walked at most once per coalescing window. The first frame
/// after a quiet spell goes out at once; frames that follow within the
/// window wait and go out together, so under load one syscall carries many
/// frames, and a busy flusher's walk simply takes longer than a window
/// (more frames per write, no backlog of wake-ups).
#[derive(Default)]
pub struct Flusher {
    dirty: Mutex<Vec<Arc<Outbox>>>,
    /// Woken by the first outbox listed after a walk took the list.
    wake: Notify,
}

/// Outboxes written between two yields to the runtime, so a long walk
/// does not hold up the readers on the same worker.
const FLUSH_SLICE: usize = 256;

impl Flusher {
    fn enlist(&self, outboxes: Vec<Arc<Outbox>>) {
        if outboxes.is_empty() {
            return;
        }
        let mut list = lock(&self.dirty);
        let was_empty = list.is_empty();
        if was_empty && list.capacity() == 0 {
            *list = outboxes;
        } else {
            list.extend(outboxes);
        }
        drop(list);
        if was_empty {
            self.wake.notify_one();
        }
    }

    async fn run(self: Arc<Self>, window: Duration) {
        let mut walk: Vec<Arc<Outbox>> = Vec::new();
        let mut busy: Vec<Arc<Outbox>> = Vec::new();
        let mut batch = Vec::new();
        let mut last: Option<tokio::time::Instant> = None;
        loop {
            self.wake.notified().await;
            if let Some(end) = last.map(|t| t + window) {
                if end > tokio::time::Instant::now() {
                    tokio::time::sleep_until(end).await;
                }
            }
            std::mem::swap(&mut *lock(&self.dirty), &mut walk);
            last = Some(tokio::time::Instant::now());
            for (i, outbox) in walk.drain(..).enumerate() {
                if outbox.flush(&mut batch) == Flushed::Busy {
                    busy.push(outbox);
                }
                if i % FLUSH_SLICE == FLUSH_SLICE - 1 {
                    tokio::task::yield_now().await;
                }
            }
            // Their writer tasks hold the socket now; try again next window.
            self.enlist(std::mem::take(&mut busy));
        }
    }
}
