//! Which `client_id`s a room has seen lately, so a retried send is stored
//! once.
//!
//! A room remembers the `(author, client_id)` of its newest `cap` events
//! (`storage.dedup_window`, 16,384 by default). The window is derived from
//! the room's log alone: built from the log's tail the first time a send
//! asks, then moved on by each durable event as the committer settles it.
//! So it is the same after a restart as before, and nothing beside the
//! events is written for it: a message costs the group commit no key in a
//! leaf of its own, which is where a per-message dedup key used to go.
//!
//! Only hashes are kept (foldhash, seeded at random); a hit is confirmed
//! against the stored event by the caller, so a collision can only cost a
//! lookup, never merge two messages.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::time::Instant;

use foldhash::quality::RandomState;

use crate::ids::{RoomId, Seq, UserId};
use crate::storage::{self, log::RoomLog, records::EventRecord};

pub struct Window {
    /// One entry per event from `first` on: the hash of its author and
    /// `client_id`, or 0 for an event without one.
    ring: VecDeque<u64>,
    /// The seq of `ring[0]`.
    first: Seq,
    by_hash: HashMap<u64, Seq, BuildHasherDefault<Spread>>,
    cap: usize,
    hasher: RandomState,
    /// Last asked: a window nobody sent to for a while is dropped.
    pub(crate) used: Instant,
}

impl Window {
    /// The window of `room` as its log stands at `head`: its newest `cap`
    /// events.
    pub fn build(log: &RoomLog, room: RoomId, head: Seq, cap: usize) -> storage::Result<Window> {
        let cap = cap.max(1);
        let from = Seq(head.0.saturating_sub(cap as u64 - 1).max(1));
        let mut w = Window {
            ring: VecDeque::with_capacity(cap.min(1024)),
            first: from,
            by_hash: HashMap::default(),
            cap,
            hasher: RandomState::default(),
            used: Instant::now(),
        };
        for (seq, event) in log.range(room, from, head, cap)? {
            w.record(seq, &event);
        }
        // Seqs the log skipped (none in a sound log) still count, so the
        // next event lands at its own place.
        while w.next() <= head {
            w.push(w.next(), 0);
        }
        Ok(w)
    }

    /// The seq the next event takes.
    fn next(&self) -> Seq {
        Seq(self.first.0 + self.ring.len() as u64)
    }

    /// Moves the window on by the durable event at `seq`. An event already
    /// in it (read by [`Window::build`] while the committer settled it) is
    /// skipped.
    pub fn record(&mut self, seq: Seq, event: &EventRecord) {
        if seq < self.next() {
            return;
        }
        while self.next() < seq {
            self.push(self.next(), 0);
        }
        let hash = event
            .kind
            .client_id()
            .map_or(0, |c| self.hash(event.kind.actor(), c));
        self.push(seq, hash);
    }

    fn push(&mut self, seq: Seq, hash: u64) {
        self.ring.push_back(hash);
        if hash != 0 {
            self.by_hash.insert(hash, seq);
        }
        if self.ring.len() > self.cap {
            let old = self.ring.pop_front().unwrap_or(0);
            if old != 0 {
                if let Entry::Occupied(e) = self.by_hash.entry(old) {
                    // A later event with the same hash keeps its entry.
                    if *e.get() == self.first {
                        e.remove();
                    }
                }
            }
            self.first = self.first.next();
        }
    }

    /// The seq of the newest event in the window by `author` with
    /// `client_id`, if any. Unconfirmed: the caller checks the event.
    pub fn get(&mut self, author: UserId, client_id: &str) -> Option<Seq> {
        self.used = Instant::now();
        self.by_hash.get(&self.hash(author, client_id)).copied()
    }

    fn hash(&self, author: UserId, client_id: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        author.hash(&mut h);
        client_id.hash(&mut h);
        // 0 marks "no client_id".
        h.finish().max(1)
    }

    /// Events the window spans now.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

/// The map's keys are already keyed hashes, evenly spread: they index the
/// table as they are, rather than being hashed again on every insert,
/// lookup and eviction.
#[derive(Default)]
struct Spread(u64);

impl Hasher for Spread {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Whether `event` is the one a send by `author` with `client_id` made.
pub fn is_from(event: &EventRecord, author: UserId, client_id: &str) -> bool {
    event.kind.actor() == author && event.kind.client_id() == Some(client_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{EventId, Millis};
    use crate::storage::records::EventKind;

    fn message(author: UserId, client_id: Option<&str>) -> EventRecord {
        EventRecord {
            id: EventId::generate(),
            at: Millis::now(),
            kind: EventKind::Message {
                author,
                body: "hi".into(),
                client_id: client_id.map(str::to_string),
                reply_to: None,
                mentions: Vec::new(),
                mentions_room: false,
                files: Vec::new(),
            },
        }
    }

    fn empty(cap: usize) -> Window {
        Window {
            ring: VecDeque::new(),
            first: Seq(1),
            by_hash: HashMap::default(),
            cap,
            hasher: RandomState::default(),
            used: Instant::now(),
        }
    }

    /// The newest `cap` events are found, older ones are forgotten, an
    /// event recorded twice counts once, and a `client_id` of another
    /// author is another key.
    #[test]
    fn a_window_holds_the_newest_events_only() {
        let (ann, bo) = (UserId::generate(), UserId::generate());
        let mut w = empty(3);
        for (seq, cid) in [(1, "a"), (2, "b"), (3, "c"), (4, "d")] {
            w.record(Seq(seq), &message(ann, Some(cid)));
        }
        w.record(Seq(4), &message(ann, Some("x")));
        assert_eq!(w.len(), 3);
        assert_eq!(w.get(ann, "a"), None);
        assert_eq!(w.get(ann, "b"), Some(Seq(2)));
        assert_eq!(w.get(ann, "d"), Some(Seq(4)));
        assert_eq!(w.get(ann, "x"), None);
        assert_eq!(w.get(bo, "d"), None);
        // An event without a client_id still takes its place.
        w.record(Seq(5), &message(bo, None));
        w.record(Seq(6), &message(bo, Some("b")));
        assert_eq!(w.get(ann, "b"), None);
        assert_eq!(w.get(ann, "c"), None);
        assert_eq!(w.get(ann, "d"), Some(Seq(4)));
        assert_eq!(w.get(bo, "b"), Some(Seq(6)));
    }
}
