//! The hub: who is connected, which rooms each connection listens to, and
//! the fan-out of committed events to them.
//!
//! The committer calls [`Hub::publish`] once per event, after the event is
//! durable: the frame, encoded once per format, is appended to the room's
//! [`Feed`], and each listening connection's writer copies it from there
//! (a clone of the same framed bytes) when its coalescing window ends. A
//! publish costs the committer the same for two listeners or fifteen
//! thousand: the writers that wait for something to send are woken by the
//! [`Relay`], a task on the runtime, with one wake-up of it per publish.

pub mod feed;
pub mod outbox;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub use feed::{Feed, Parked, Piece};
pub use outbox::{ConnId, Outbox};

use crate::ids::{RoomId, Seq, TokenHash, UserId};
use crate::locks::{lock, read, write};
use crate::protocol::ServerFrame;
use crate::wire::{CloseReason, Encoded};

/// A room with listeners: its feed, and who listens.
struct Listened {
    feed: Arc<Feed>,
    conns: HashMap<ConnId, Arc<Outbox>>,
}

impl Listened {
    fn new(capacity: usize) -> Listened {
        Listened {
            feed: Arc::new(Feed::new(capacity)),
            conns: HashMap::new(),
        }
    }

    fn add(&mut self, room: RoomId, outbox: &Arc<Outbox>) {
        outbox.subscribe(room, &self.feed);
        self.conns.insert(outbox.id, outbox.clone());
    }
}

pub struct Hub {
    /// Room → its feed and the connections listening to it.
    rooms: RwLock<HashMap<RoomId, Listened>>,
    /// User → that user's connections, for joins, leaves and revocation.
    users: RwLock<HashMap<UserId, HashMap<ConnId, Arc<Outbox>>>>,
    next_id: AtomicU64,
    /// Deliveries queued, for metrics and the benchmark.
    pub deliveries: AtomicU64,
    /// Wakes parked writers on the runtime; none outside one (a publish
    /// then wakes them itself).
    relay: Option<Arc<Relay>>,
}

/// Wakes, from a task on the runtime, the writers that publishes found
/// parked. The committer is a thread of its own: a wake-up from there is
/// a locked push onto the runtime's shared queue, and may rouse a sleeping
/// runtime thread, for each parked writer (fifteen thousand per message at
/// the seed load). It hands each publish's list here instead, with one
/// wake-up of this task, which then wakes the writers from a runtime
/// thread: a push onto that thread's own queue each, where other threads
/// take a share when they have none.
struct Relay {
    lists: Mutex<Vec<Parked>>,
    signal: outbox::Signal,
    stopped: AtomicBool,
}

impl Relay {
    fn hand(&self, parked: Parked) {
        lock(&self.lists).push(parked);
        self.signal.raise();
    }

    async fn run(self: Arc<Self>) {
        let mut lists = Vec::new();
        while !self.stopped.load(Ordering::Acquire) {
            self.signal.lowered().await;
            std::mem::swap(&mut lists, &mut *lock(&self.lists));
            for parked in lists.drain(..) {
                parked.wake();
            }
        }
    }
}

impl Default for Hub {
    fn default() -> Hub {
        Hub::new()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(relay) = &self.relay {
            relay.stopped.store(true, Ordering::Release);
            relay.signal.raise();
        }
    }
}

impl Hub {
    /// A hub; made on a tokio runtime, its relay task runs there.
    pub fn new() -> Hub {
        let relay = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            let relay = Arc::new(Relay {
                lists: Mutex::new(Vec::new()),
                signal: outbox::Signal::default(),
                stopped: AtomicBool::new(false),
            });
            runtime.spawn(relay.clone().run());
            relay
        });
        Hub {
            rooms: RwLock::default(),
            users: RwLock::default(),
            next_id: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
            relay,
        }
    }

    pub fn next_conn_id(&self) -> ConnId {
        ConnId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Registers a connection and subscribes it to `rooms`. It reads their
    /// feeds only after [`Outbox::release`], so the caller can replay
    /// history first without a gap or a duplicate.
    pub fn connect(&self, outbox: &Arc<Outbox>, rooms: &[RoomId]) {
        {
            let mut map = write(&self.rooms);
            for room in rooms {
                map.entry(*room)
                    .or_insert_with(|| Listened::new(outbox.capacity))
                    .add(*room, outbox);
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
                if let Some(l) = map.get_mut(&room) {
                    l.conns.remove(&outbox.id);
                    if l.conns.is_empty() {
                        map.remove(&room);
                    }
                }
            }
        }
        outbox.unsubscribe_all();
        let mut users = write(&self.users);
        if let Some(conns) = users.get_mut(&outbox.user) {
            conns.remove(&outbox.id);
            if conns.is_empty() {
                users.remove(&outbox.user);
            }
        }
    }

    /// Delivers a committed event to every connection listening to `room`:
    /// one append to the room's feed.
    pub fn publish(&self, room: RoomId, seq: Seq, encoded: &Encoded) {
        let map = read(&self.rooms);
        let Some(l) = map.get(&room) else { return };
        let published = l.feed.publish(seq, encoded);
        self.deliveries
            .fetch_add(l.conns.len() as u64, Ordering::Relaxed);
        drop(map);
        let parked = published.parked;
        match &self.relay {
            Some(relay) if !parked.is_empty() => relay.hand(parked),
            _ => parked.wake(),
        }
        feed::cut(published.lost);
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
        if let Some(l) = read(&self.rooms).get(&room) {
            for c in l.conns.values() {
                c.push(encoded.for_format(c.format));
            }
        }
    }

    /// Sends a frame nobody must wait for (see [`Outbox::push_droppable`])
    /// to the connections listening to `room`, but not to `except`'s.
    pub fn send_room_droppable(&self, room: RoomId, frame: &ServerFrame<'_>, except: UserId) {
        let encoded = Encoded::new(frame);
        if let Some(l) = read(&self.rooms).get(&room) {
            for c in l.conns.values().filter(|c| c.user != except) {
                c.push_droppable(encoded.for_format(c.format));
            }
        }
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
        if conns.is_empty() {
            return conns;
        }
        let mut map = write(&self.rooms);
        let l = map
            .entry(room)
            .or_insert_with(|| Listened::new(conns[0].capacity));
        for c in &conns {
            l.add(room, c);
        }
        conns
    }

    /// Stops delivering `room` to every connection of `user`.
    pub fn unsubscribe_user(&self, user: UserId, room: RoomId) -> Vec<Arc<Outbox>> {
        let conns = self.connections_of(user);
        let mut map = write(&self.rooms);
        if let Some(l) = map.get_mut(&room) {
            for c in &conns {
                l.conns.remove(&c.id);
                c.unsubscribe(room);
            }
            if l.conns.is_empty() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Format;
    use std::time::Duration;

    /// `n` connections listening to `room`, live, each writer having taken
    /// its first wake-up and parked on the room's feed.
    fn parked_listeners(hub: &Hub, room: RoomId, n: u64) -> Vec<Arc<Outbox>> {
        (0..n)
            .map(|i| {
                let outbox = Outbox::new(
                    ConnId(i),
                    UserId::generate(),
                    TokenHash([0; 32]),
                    Format::Json,
                    64,
                );
                hub.connect(&outbox, &[room]);
                outbox.release(&HashMap::new());
                let mut pieces = Vec::new();
                outbox.drain(&mut pieces, true);
                assert!(pieces.is_empty());
                outbox
            })
            .collect()
    }

    fn frames(outbox: &Outbox) -> usize {
        let mut pieces = Vec::new();
        outbox.drain(&mut pieces, true);
        pieces.iter().map(Piece::frames).sum()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_parked_on_a_feed_are_woken_by_the_relay_for_a_publish_from_another_thread() {
        let hub = Arc::new(Hub::new());
        assert!(hub.relay.is_some(), "made on a runtime, the hub has a relay");
        let room = RoomId::generate();
        let outboxes = parked_listeners(&hub, room, 200);
        for o in &outboxes {
            // The release's wake-up, taken: the next one is the publish's.
            o.wait().await;
        }
        let frame = Encoded::new(&ServerFrame::Pong);
        let publisher = {
            let hub = hub.clone();
            std::thread::spawn(move || {
                for seq in 1..=3 {
                    hub.publish(room, Seq(seq), &frame);
                }
            })
        };
        publisher.join().expect("published");
        for o in &outboxes {
            tokio::time::timeout(Duration::from_secs(5), o.wait())
                .await
                .expect("every parked writer is woken");
        }
        // Woken, each reads all three (later appends found it still
        // marked parked and did not list it again); finding nothing more,
        // it parks anew.
        for o in &outboxes {
            assert_eq!(frames(o), 3);
            assert_eq!(frames(o), 0);
        }
        hub.publish(room, Seq(4), &Encoded::new(&ServerFrame::Pong));
        for o in &outboxes {
            tokio::time::timeout(Duration::from_secs(5), o.wait())
                .await
                .expect("parked again, woken again");
            assert_eq!(frames(o), 1);
        }
    }

    #[test]
    fn without_a_runtime_a_publish_wakes_parked_writers_itself() {
        let hub = Hub::new();
        assert!(hub.relay.is_none());
        let room = RoomId::generate();
        let outboxes = parked_listeners(&hub, room, 3);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        for o in &outboxes {
            runtime.block_on(o.wait());
        }
        hub.publish(room, Seq(1), &Encoded::new(&ServerFrame::Pong));
        for o in &outboxes {
            runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(1), o.wait())
                    .await
                    .expect("woken by the publish");
            });
            assert_eq!(frames(o), 1);
        }
    }
}
