//! One connection's outgoing queue: bounded, drained whole by its writer.
//!
//! Producers (the committer's fan-out, the connection's own reader) push
//! shared frame bytes under a short lock; the writer swaps the whole queue
//! out and writes it with one vectored write. A queue that reaches its bound
//! marks the connection too slow: it is cut off and the client resumes from
//! its last seq, so one stalled reader never holds memory or its room back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::ids::{Millis, RoomId, Seq, TokenHash, UserId};
use crate::protocol::{Format, ServerFrame};
use crate::wire::{self, CloseReason, Encoded};

/// Identifies a connection within the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

pub struct Outbox {
    pub id: ConnId,
    pub user: UserId,
    /// The session the connection authenticated with, so revoking that one
    /// session closes exactly its sockets.
    pub session: TokenHash,
    pub format: Format,
    state: Mutex<State>,
    /// Wakes the writer; a permit is stored if it is busy, so no wake is
    /// lost. A reply (see `State::replied`) wakes it in its coalescing
    /// window too.
    notify: Notify,
    /// Wakes a replay waiting for the writer to make room.
    drained: Notify,
    /// Wakes everything waiting on [`Outbox::closing`] (the reader, the
    /// writer, a replay) once the connection is closing. Two words here
    /// rather than a cancellation token's own allocation: every idle
    /// connection has one.
    closed: Notify,
    /// Set, with `State::close`, once the connection is closing.
    is_closing: AtomicBool,
    /// Set once the client has its `ready`: only then does it hear of
    /// presence changes (its `ready` holds the state before).
    greeted: AtomicBool,
    /// Whether the client's last `focus` frame said its user looks at it
    /// (true until it says otherwise). With `last_used`, decides whether
    /// the user is away and gets push notifications.
    focused: AtomicBool,
    /// When the client last sent anything but a ping, in ms since the epoch.
    last_used: AtomicU64,
    capacity: usize,
}

struct State {
    frames: Vec<Bytes>,
    /// While the connection replays history, live room events wait here
    /// (see [`Outbox::release`]); `None` once it is live.
    held: Option<Vec<(RoomId, Seq, Bytes)>>,
    /// After the replay, per room, the last seq the client already has,
    /// sorted by room. A head can be read (and replayed) a moment before
    /// the committer publishes that event, so the first live events of a
    /// room may repeat the replay's tail; they are dropped here. A room's
    /// entry goes once a newer event passes, so the steady path pays one
    /// emptiness check. A sorted list, not a map: it stays with every idle
    /// connection whose rooms are quiet, and for one room it is 24 bytes.
    floors: Vec<(RoomId, Seq)>,
    close: Option<CloseReason>,
    /// The writer found the queue empty and waits for a wake-up. Only then
    /// does a room event need to wake it: a writer in its coalescing
    /// window, or busy writing, drains the queue on its own, so most of a
    /// fan-out touches no wake-up state at all.
    parked: bool,
    /// A reply to this client (an ack, an error, a pong) is queued: it ends
    /// the writer's coalescing window, so a client with one request in
    /// flight is not held to one answer per window.
    replied: bool,
}

impl State {
    /// Whether a live event is one the client already has.
    fn already_sent(&mut self, room: RoomId, seq: Seq) -> bool {
        if self.floors.is_empty() {
            return false;
        }
        match self.floors.binary_search_by_key(&room, |&(r, _)| r) {
            Ok(i) if seq <= self.floors[i].1 => true,
            Ok(i) => {
                self.floors.remove(i);
                if self.floors.is_empty() {
                    self.floors = Vec::new();
                }
                false
            }
            Err(_) => false,
        }
    }
}

/// What the writer takes from the queue in one go.
pub struct Drained {
    pub close: Option<CloseReason>,
}

impl Outbox {
    pub fn new(
        id: ConnId,
        user: UserId,
        session: TokenHash,
        format: Format,
        capacity: usize,
    ) -> Arc<Outbox> {
        Arc::new(Outbox {
            id,
            user,
            session,
            format,
            state: Mutex::new(State {
                frames: Vec::new(),
                held: Some(Vec::new()),
                floors: Vec::new(),
                close: None,
                parked: false,
                replied: false,
            }),
            notify: Notify::new(),
            drained: Notify::new(),
            closed: Notify::new(),
            is_closing: AtomicBool::new(false),
            greeted: AtomicBool::new(false),
            focused: AtomicBool::new(true),
            last_used: AtomicU64::new(Millis::now().0),
            capacity,
        })
    }

    pub fn mark_greeted(&self) {
        self.greeted.store(true, Ordering::Release);
    }

    pub fn is_greeted(&self) -> bool {
        self.greeted.load(Ordering::Acquire)
    }

    /// The client sent something its user did (any frame but a ping).
    pub fn used(&self) {
        self.last_used.store(Millis::now().0, Ordering::Relaxed);
    }

    /// The client said whether its user looks at it (`focus` frame).
    pub fn set_focus(&self, active: bool) {
        self.focused.store(active, Ordering::Relaxed);
    }

    /// Whether the user looks at this client: it is in focus and was used
    /// within `window`.
    pub fn is_active(&self, window: std::time::Duration) -> bool {
        let used = self.last_used.load(Ordering::Relaxed);
        self.focused.load(Ordering::Relaxed)
            && Millis::now().0.saturating_sub(used) < window.as_millis() as u64
    }

    /// Queues a reply to this client (ack, error, pong, ready, a join on
    /// another device), encoded in the connection's format.
    pub fn send(&self, frame: &ServerFrame<'_>) {
        self.push(wire::encode(frame, self.format));
    }

    /// Queues a framed reply that is not part of a room's sequence: it cuts
    /// short the writer's coalescing window.
    pub fn push(&self, frame: Bytes) {
        let mut s = self.lock();
        if s.close.is_some() {
            return;
        }
        if s.frames.len() >= self.capacity {
            drop(s);
            self.close(CloseReason::TooSlow);
            return;
        }
        s.frames.push(frame);
        s.replied = true;
        drop(s);
        self.notify.notify_one();
    }

    /// Queues a frame nobody must wait for (a typing notice): dropped when
    /// the queue is half full or the connection is still replaying, never
    /// a reason to cut the connection.
    pub fn push_droppable(&self, frame: Bytes) {
        let mut s = self.lock();
        if s.close.is_some() || s.held.is_some() || s.frames.len() >= self.capacity / 2 {
            return;
        }
        s.frames.push(frame);
        let wake = std::mem::take(&mut s.parked);
        drop(s);
        if wake {
            self.notify.notify_one();
        }
    }

    /// Queues the frame of a room event, in that room's seq order.
    pub fn push_event(&self, room: RoomId, seq: Seq, encoded: &Encoded) {
        let frame = encoded.for_format(self.format);
        let mut s = self.lock();
        if s.close.is_some() {
            return;
        }
        let over = if let Some(held) = &mut s.held {
            // Held events wait for the replay to end: no wake-up.
            held.push((room, seq, frame));
            held.len() > self.capacity
        } else if s.already_sent(room, seq) {
            return;
        } else if s.frames.len() >= self.capacity {
            true
        } else {
            s.frames.push(frame);
            false
        };
        let wake = std::mem::take(&mut s.parked);
        drop(s);
        if over {
            self.close(CloseReason::TooSlow);
        } else if wake {
            self.notify.notify_one();
        }
    }

    /// Ends the replay: queues the held live events that come after what
    /// was replayed (`replayed` gives, per room, the last seq already sent
    /// or known to the client), and sends live from then on.
    pub fn release(&self, replayed: &HashMap<RoomId, Seq>) {
        let mut s = self.lock();
        let Some(held) = s.held.take() else { return };
        let mut floors = Vec::with_capacity(replayed.len());
        floors.extend(replayed.iter().map(|(r, s)| (*r, *s)));
        floors.sort_unstable_by_key(|&(r, _)| r);
        s.floors = floors;
        for (room, seq, frame) in held {
            if !s.already_sent(room, seq) {
                s.frames.push(frame);
            }
        }
        let over = s.frames.len() > self.capacity;
        drop(s);
        if over {
            self.close(CloseReason::TooSlow);
        } else {
            self.notify.notify_one();
        }
    }

    /// Asks the writer to close the connection. The first reason wins.
    pub fn close(&self, reason: CloseReason) {
        let mut s = self.lock();
        if s.close.is_none() {
            s.close = Some(reason);
        }
        drop(s);
        self.is_closing.store(true, Ordering::Release);
        self.closed.notify_waiters();
        self.notify.notify_one();
    }

    /// Resolves once the connection is closing (at once if it is).
    pub async fn closing(&self) {
        loop {
            let woken = self.closed.notified();
            tokio::pin!(woken);
            // Registered before the flag is read: a close in between still
            // wakes it.
            woken.as_mut().enable();
            if self.is_closing.load(Ordering::Acquire) {
                return;
            }
            woken.await;
        }
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        self.lock().close
    }

    /// Queues a replayed (historical) frame, waiting while the queue is half
    /// full so a long replay streams at the client's pace instead of
    /// overflowing it. Returns false once the connection is closing.
    pub async fn push_replay(&self, frame: Bytes) -> bool {
        loop {
            let room = self.drained.notified();
            {
                let mut s = self.lock();
                if s.close.is_some() {
                    return false;
                }
                if s.frames.len() < self.capacity / 2 {
                    s.frames.push(frame);
                    drop(s);
                    self.notify.notify_one();
                    return true;
                }
            }
            tokio::select! {
                _ = room => {}
                _ = self.closing() => return false,
            }
        }
    }

    /// Called by the writer after each write, to wake a waiting replay.
    pub fn drained(&self) {
        self.drained.notify_waiters();
    }

    /// Moves every queued frame into `into` (which the writer reuses, so
    /// draining allocates nothing) and reports a pending close. Finding
    /// nothing, the writer is about to wait: the next event wakes it.
    pub fn drain(&self, into: &mut Vec<Bytes>) -> Drained {
        let mut s = self.lock();
        std::mem::swap(&mut s.frames, into);
        s.parked = into.is_empty();
        s.replied = false;
        Drained { close: s.close }
    }

    pub async fn wait(&self) {
        self.notify.notified().await;
    }

    /// Whether a reply (not a room event) is queued; see `State::replied`.
    pub fn has_reply(&self) -> bool {
        self.lock().replied
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        crate::locks::lock(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_publish_of_a_replayed_event_is_not_sent_twice() {
        let room = RoomId::generate();
        let outbox = Outbox::new(
            ConnId(1),
            UserId::generate(),
            TokenHash([0; 32]),
            Format::Json,
            16,
        );
        let pong = ServerFrame::Pong;
        let event = Encoded::new(&pong);
        // The head read for the replay already included seq 5, whose
        // publish reaches the outbox only after the replay ended.
        outbox.release(&HashMap::from([(room, Seq(5))]));
        outbox.push_event(room, Seq(5), &event);
        outbox.push_event(room, Seq(6), &event);
        outbox.push_event(room, Seq(7), &event);
        let mut frames = Vec::new();
        outbox.drain(&mut frames);
        assert_eq!(frames.len(), 2, "seq 5 was replayed; only 6 and 7 go live");
    }
}
