//! The hub: who is connected, which rooms each connection listens to, and
//! the fan-out of committed events to them.
//!
//! The committer calls [`Hub::publish`] once per event, after the event is
//! durable: the frame, encoded once per format, is appended to the room's
//! [`Feed`], and each listening connection's writer copies it from there
//! (a clone of the same framed bytes) when its coalescing window ends. A
//! publish costs the same for two listeners or fifteen thousand, and wakes
//! only the writers that wait for something to send.

pub mod feed;
pub mod outbox;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

pub use feed::{Feed, Piece};
pub use outbox::{ConnId, Outbox};

use crate::ids::{RoomId, Seq, TokenHash, UserId};
use crate::locks::{read, write};
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

    fn add(&mut self, room: RoomId, outbox: &Arc<Outbox>, held: bool) {
        outbox.subscribe(room, &self.feed, held);
        self.conns.insert(outbox.id, outbox.clone());
    }
}

#[derive(Default)]
pub struct Hub {
    /// Room → its feed and the connections listening to it.
    rooms: RwLock<HashMap<RoomId, Listened>>,
    /// User → that user's connections, for joins, leaves and revocation.
    users: RwLock<HashMap<UserId, HashMap<ConnId, Arc<Outbox>>>>,
    next_id: AtomicU64,
    /// Deliveries queued, for metrics and the benchmark.
    pub deliveries: AtomicU64,
}

impl Hub {
    pub fn new() -> Hub {
        Hub::default()
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
                    .add(*room, outbox, false);
            }
        }
        write(&self.users)
            .entry(outbox.user)
            .or_default()
            .insert(outbox.id, outbox.clone());
    }

    /// Subscribes a greeted connection to its user's `rooms` (as
    /// [`Hub::connect`]), then keeps only those `members_now` (the rooms
    /// read again) still holds, and returns them. A leave, removal or
    /// deletion between the first read and the subscription found the
    /// socket not yet listening; one after it unsubscribes it as usual.
    pub fn connect_rooms(
        &self,
        outbox: &Arc<Outbox>,
        rooms: Vec<RoomId>,
        members_now: impl FnOnce() -> Vec<RoomId>,
    ) -> Vec<RoomId> {
        self.connect(outbox, &rooms);
        let now: std::collections::HashSet<RoomId> = members_now().into_iter().collect();
        let (kept, left): (Vec<RoomId>, Vec<RoomId>) =
            rooms.into_iter().partition(|r| now.contains(r));
        if !left.is_empty() {
            let mut map = write(&self.rooms);
            for room in left {
                if let Some(l) = map.get_mut(&room) {
                    l.conns.remove(&outbox.id);
                    if l.conns.is_empty() {
                        map.remove(&room);
                    }
                }
                outbox.unsubscribe(room);
            }
        }
        kept
    }

    /// Removes a closing connection from every room it listens to and from
    /// its user. The rooms are the outbox's own list, taken under the same
    /// lock [`Hub::subscribe_user`] adds under, and a closing connection is
    /// never added again: a join racing the close leaves nothing behind.
    pub fn disconnect(&self, outbox: &Outbox) {
        {
            let mut map = write(&self.rooms);
            for room in outbox.unsubscribe_all() {
                if let Some(l) = map.get_mut(&room) {
                    l.conns.remove(&outbox.id);
                    if l.conns.is_empty() {
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

    /// Delivers a committed event to every connection listening to `room`:
    /// one append to the room's feed.
    pub fn publish(&self, room: RoomId, seq: Seq, encoded: &Encoded) {
        let map = read(&self.rooms);
        let Some(l) = map.get(&room) else { return };
        let lost = l.feed.publish(seq, encoded);
        self.deliveries
            .fetch_add(l.conns.len() as u64, Ordering::Relaxed);
        drop(map);
        feed::cut(lost);
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
    /// on any device reaches all of them), once each connection is told
    /// with [`Outbox::announce`]: the room's events published before that
    /// wait in its feed, so none arrives ahead of the `joined` frame.
    pub fn subscribe_user(&self, user: UserId, room: RoomId) -> Vec<Arc<Outbox>> {
        let mut conns = self.connections_of(user);
        if conns.is_empty() {
            return conns;
        }
        let mut map = write(&self.rooms);
        // One closing may be leaving already (see `disconnect`); it is
        // looked at under the lock its leaving takes.
        conns.retain(|c| !c.is_closing());
        if let Some(first) = conns.first() {
            let l = map
                .entry(room)
                .or_insert_with(|| Listened::new(first.capacity));
            for c in &conns {
                l.add(room, c, true);
            }
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

    /// A hub and one socket of one user, known to the hub, not greeted.
    fn one_socket() -> (Hub, UserId, Arc<Outbox>) {
        let hub = Hub::new();
        let user = UserId::generate();
        let id = hub.next_conn_id();
        let outbox = Outbox::new(id, user, TokenHash([0; 32]), Format::Json, 16);
        hub.connect(&outbox, &[]);
        (hub, user, outbox)
    }

    /// A connection leaves every room it listened to, those joined after
    /// its hello included, and a join racing its close adds it nowhere.
    #[test]
    fn a_closing_connection_is_left_in_no_room() {
        let (hub, user, outbox) = one_socket();
        let (hello, joined, racing) = (RoomId::generate(), RoomId::generate(), RoomId::generate());
        hub.connect(&outbox, &[hello]);
        assert_eq!(hub.subscribe_user(user, joined).len(), 1);
        outbox.close(CloseReason::Gone);
        // Still the user's until it is disconnected, but closing.
        assert!(hub.subscribe_user(user, racing).is_empty());
        hub.disconnect(&outbox);
        assert!(read(&hub.rooms).is_empty(), "no room keeps it");
        assert!(read(&hub.users).is_empty());
    }

    /// A room left between the hello's read of the user's rooms and its
    /// subscription is not kept: none of its events reach the socket.
    #[test]
    fn a_room_left_while_a_socket_says_hello_is_not_kept() {
        let (hub, _, outbox) = one_socket();
        let (stays, left) = (RoomId::generate(), RoomId::generate());
        let kept = hub.connect_rooms(&outbox, vec![stays, left], || vec![stays]);
        assert_eq!(kept, vec![stays]);
        outbox.release(&HashMap::new());
        let frame = ServerFrame::Pong;
        hub.publish(left, Seq(1), &Encoded::new(&frame));
        hub.publish(stays, Seq(1), &Encoded::new(&frame));
        let mut pieces = Vec::new();
        outbox.drain(&mut pieces, false);
        let frames: usize = pieces.iter().map(Piece::frames).sum();
        assert_eq!(frames, 1, "only the room it is still in");
        assert!(!read(&hub.rooms).contains_key(&left));
    }
}
