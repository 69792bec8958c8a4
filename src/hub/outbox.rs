//! One connection's outgoing queue: its own frames, plus a cursor into the
//! feed of each room it listens to, drained whole by its writer.
//!
//! Room events are not pushed here: they wait in the room's shared
//! [`Feed`], and the writer copies what lies past its cursors when it
//! drains. Producers of the connection's own frames (acks, errors, pongs,
//! presence) push shared frame bytes under a short lock. The writer takes
//! both, in the order they were queued, and writes them with one vectored
//! write. A queue (or a cursor) that falls too far behind marks the
//! connection too slow: it is cut off and the client resumes from its last
//! seq, so one stalled reader never holds memory or its room back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use atomic_waker::AtomicWaker;
use bytes::Bytes;
use tokio::sync::Notify;

use super::feed::{self, Cursor, Feed, Listener, Piece, Read};
use crate::ids::{Millis, RoomId, Seq, TokenHash, UserId};
use crate::protocol::{Format, ServerFrame};
use crate::wire::{self, CloseReason};

/// An empty WebSocket ping, the heartbeat.
static PING: [u8; 2] = [0x80 | wire::OP_PING, 0];

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
    notify: Signal,
    /// Wakes a replay waiting for the writer to make room.
    drained: Notify,
    /// Wakes everything waiting on [`Outbox::closing`] (the reader, the
    /// writer, a replay) once the connection is closing. Two words here
    /// rather than a cancellation token's own allocation: every idle
    /// connection has one.
    closed: Notify,
    /// Set, with `State::close`, once the connection is closing.
    is_closing: AtomicBool,
    /// Set, under the state's lock, once the client's `ready` is queued:
    /// only then does it hear of presence changes (its `ready` holds the
    /// state before), and only then are `joined` frames sent, not deferred.
    greeted: AtomicBool,
    /// Whether the client's last `focus` frame said its user looks at it
    /// (true until it says otherwise). With `last_used`, decides whether
    /// the user is away and gets push notifications.
    focused: AtomicBool,
    /// When the client last sent anything but a ping, in ms since the epoch.
    last_used: AtomicU64,
    pub(super) capacity: usize,
}

struct State {
    /// The connection's own frames ([`Piece::Own`]), each with its place
    /// in the queueing order (see [`feed::next_order`]), ascending.
    frames: Vec<Piece>,
    /// The rooms it listens to.
    subs: Vec<Sub>,
    /// While the connection replays history, its rooms' feeds are not read
    /// (their cursors hold what is published meanwhile); see
    /// [`Outbox::release`].
    replaying: bool,
    close: Option<CloseReason>,
    /// The writer found nothing to send and waits for a wake-up: only then
    /// does a frame nobody waits for (a typing notice) need to wake it.
    parked: bool,
    /// A reply to this client (an ack, an error, a pong) is queued: it ends
    /// the writer's coalescing window, so a client with one request in
    /// flight is not held to one answer per window.
    replied: bool,
    /// `joined` frames announced before the `ready`: they follow it, so a
    /// client that rebuilds its room list from `ready` still hears of them.
    deferred: Vec<(RoomId, Bytes)>,
}

/// A room the connection listens to: its place in the room's feed.
struct Sub {
    room: RoomId,
    feed: Arc<Feed>,
    cursor: Arc<Cursor>,
    /// The last seq of the room the client already has (replayed, or known
    /// to it when it resumed). A head can be read (and replayed) a moment
    /// before the committer publishes that event, so the first live events
    /// may repeat the replay's tail; they are skipped.
    floor: Seq,
    /// Joined while live, and the `joined` frame not queued yet (see
    /// [`Outbox::announce`]): its feed is not read, so no event of the room
    /// reaches the client before it hears that it is in the room.
    held: bool,
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
                subs: Vec::new(),
                replaying: true,
                close: None,
                parked: false,
                replied: false,
                deferred: Vec::new(),
            }),
            notify: Signal::default(),
            drained: Notify::new(),
            closed: Notify::new(),
            is_closing: AtomicBool::new(false),
            greeted: AtomicBool::new(false),
            focused: AtomicBool::new(true),
            last_used: AtomicU64::new(Millis::now().0),
            capacity,
        })
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
        s.frames.push(Piece::Own(feed::next_order(), frame));
        s.replied = true;
        drop(s);
        self.notify.raise();
    }

    /// Queues a frame nobody must wait for (a typing notice): dropped when
    /// the queue is half full or the connection is still replaying, never
    /// a reason to cut the connection.
    pub fn push_droppable(&self, frame: Bytes) {
        let mut s = self.lock();
        if s.close.is_some() || s.replaying || s.frames.len() >= self.capacity / 2 {
            return;
        }
        s.frames.push(Piece::Own(feed::next_order(), frame));
        let wake = std::mem::take(&mut s.parked);
        drop(s);
        if wake {
            self.notify.raise();
        }
    }

    /// Queues a heartbeat ping, unless frames of the connection's own are
    /// already waiting (they keep the line busy) or it is closing. Wakes a
    /// parked writer; a busy one sends it with what it drains next.
    pub fn ping(&self) {
        let mut s = self.lock();
        if s.close.is_some() || !s.frames.is_empty() {
            return;
        }
        s.frames
            .push(Piece::Own(feed::next_order(), Bytes::from_static(&PING)));
        let wake = std::mem::take(&mut s.parked);
        drop(s);
        if wake {
            self.notify.raise();
        }
    }

    /// Starts reading `room`'s feed from the next event published (after
    /// the replay, if one is under way). With `held`, not before
    /// [`Outbox::announce`] queued the frame that tells the client of it.
    pub(super) fn subscribe(self: &Arc<Self>, room: RoomId, feed: &Arc<Feed>, held: bool) {
        let mut s = self.lock();
        if s.subs.iter().any(|sub| sub.room == room) {
            return;
        }
        let listener: std::sync::Weak<dyn Listener> = Arc::downgrade(self) as _;
        let cursor = feed.subscribe(self.id.0, self.format, listener);
        s.subs.push(Sub {
            room,
            feed: feed.clone(),
            cursor,
            floor: Seq::ZERO,
            held,
        });
    }

    /// Queues `frame` (the `joined` of a room subscribed `held`), then
    /// starts sending the room's events: those published since the
    /// subscription follow the frame, in seq order and before the room's
    /// next events (see [`Feed::take_frames`]). Before the connection's
    /// `ready`, both wait for it. Nothing is queued if the room was left
    /// meanwhile: its `left` frame says the rest.
    pub fn announce(&self, room: RoomId, frame: &ServerFrame<'_>) {
        let frame = wire::encode(frame, self.format);
        let mut s = self.lock();
        if s.close.is_some() || !s.subs.iter().any(|sub| sub.room == room) {
            return;
        }
        // `greeted` is set under this lock (see `greet_locked`).
        if !self.is_greeted() {
            s.deferred.push((room, frame));
            return;
        }
        let lost = self.announce_locked(&mut s, room, frame);
        self.wake_or_cut(s, lost);
    }

    /// After frames were queued under `s`: wakes the writer, or cuts the
    /// connection off if a feed lost what it had not read (`lost`) or its
    /// queue is over capacity.
    fn wake_or_cut(&self, s: std::sync::MutexGuard<'_, State>, lost: bool) {
        let over = lost || s.frames.len() > self.capacity;
        drop(s);
        if over {
            self.close(CloseReason::TooSlow);
        } else {
            self.notify.raise();
        }
    }

    /// Queues a room's `joined` and ends its hold; true if the room's feed
    /// lost what the connection had not read.
    fn announce_locked(&self, s: &mut State, room: RoomId, frame: Bytes) -> bool {
        let State {
            subs,
            frames,
            replaying,
            replied,
            ..
        } = s;
        let Some(sub) = subs.iter_mut().find(|sub| sub.room == room) else {
            return false;
        };
        frames.push(Piece::Own(feed::next_order(), frame));
        *replied = true;
        if !std::mem::take(&mut sub.held) || *replaying {
            // A replay under way takes the room's frames when it ends.
            return false;
        }
        let mut since = Vec::new();
        let read = sub
            .feed
            .take_frames(&sub.cursor, self.format, sub.floor, &mut since);
        frames.extend(since.into_iter().map(|(order, f)| Piece::Own(order, f)));
        matches!(read, Read::Lost)
    }

    /// Queues the connection's `ready`, then the `joined` of any room
    /// announced before it; from here on the client hears of presence
    /// changes. With a replay to follow: the live stream starts at
    /// [`Outbox::release`].
    pub fn send_ready(&self, ready: &ServerFrame<'_>) {
        let mut s = self.lock();
        if s.close.is_some() {
            return;
        }
        s.frames.push(Piece::Own(
            feed::next_order(),
            wire::encode(ready, self.format),
        ));
        s.replied = true;
        let lost = self.greet_locked(&mut s);
        self.wake_or_cut(s, lost);
    }

    /// Marks the `ready` as queued and announces what waited for it.
    fn greet_locked(&self, s: &mut State) -> bool {
        self.greeted.store(true, Ordering::Release);
        let mut lost = false;
        for (room, frame) in std::mem::take(&mut s.deferred) {
            lost |= self.announce_locked(s, room, frame);
        }
        lost
    }

    /// Stops reading `room`'s feed. What was published before and not yet
    /// sent still goes out, before anything queued after this call (a
    /// `left` frame comes after the room's last events).
    pub(super) fn unsubscribe(&self, room: RoomId) {
        let mut s = self.lock();
        let Some(i) = s.subs.iter().position(|sub| sub.room == room) else {
            return;
        };
        let sub = s.subs.swap_remove(i);
        let unread = sub.feed.unsubscribe(self.id.0, self.format, sub.floor);
        // A held room was never announced: nothing of it goes out.
        if !s.replaying && !sub.held && s.close.is_none() && !unread.is_empty() {
            s.frames
                .extend(unread.into_iter().map(|(order, f)| Piece::Own(order, f)));
            s.frames.sort_by_key(|p| p.orders().0);
            let wake = std::mem::take(&mut s.parked);
            drop(s);
            if wake {
                self.notify.raise();
            }
        }
    }

    /// Leaves every room's feed (the connection is gone); returns the rooms.
    pub(super) fn unsubscribe_all(&self) -> Vec<RoomId> {
        let subs = std::mem::take(&mut self.lock().subs);
        subs.into_iter()
            .map(|sub| {
                let _ = sub.feed.unsubscribe(self.id.0, self.format, sub.floor);
                sub.room
            })
            .collect()
    }

    /// Ends the replay: the live stream starts after what was replayed
    /// (`replayed` gives, per room, the last seq already sent or known to
    /// the client). What the rooms published during the replay is queued
    /// now, after the replayed frames.
    pub fn release(&self, replayed: &HashMap<RoomId, Seq>) {
        self.release_after(None, replayed);
    }

    /// Queues a `ready` with nothing to replay after it (as
    /// [`Outbox::send_ready`] does) and ends the replay in the same step:
    /// once the client can have read it, the connection is live, so a
    /// typing notice sent on seeing it is not dropped as if the connection
    /// were still catching up.
    pub fn send_and_release(&self, ready: &ServerFrame<'_>, replayed: &HashMap<RoomId, Seq>) {
        self.release_after(Some(wire::encode(ready, self.format)), replayed);
    }

    fn release_after(&self, first: Option<Bytes>, replayed: &HashMap<RoomId, Seq>) {
        let mut s = self.lock();
        let first = first.filter(|_| s.close.is_none());
        let queued = first.is_some();
        if let Some(first) = first {
            s.frames.push(Piece::Own(feed::next_order(), first));
            s.replied = true;
            // Still replaying: the rooms announced go out with the rest.
            let _ = self.greet_locked(&mut s);
        }
        if !s.replaying {
            drop(s);
            if queued {
                self.notify.raise();
            }
            return;
        }
        s.replaying = false;
        let mut meanwhile = Vec::new();
        let mut lost = false;
        let State { subs, frames, .. } = &mut *s;
        for sub in subs.iter_mut() {
            sub.floor = replayed.get(&sub.room).copied().unwrap_or(Seq::ZERO);
            // A room joined meanwhile starts when it is announced.
            if sub.held {
                continue;
            }
            // Each room's, in the order published, after the replayed
            // frames and before the room's next events (see `take_frames`):
            // `meanwhile` is in ascending order as it is filled.
            if let Read::Lost =
                sub.feed
                    .take_frames(&sub.cursor, self.format, sub.floor, &mut meanwhile)
            {
                lost = true;
            }
        }
        frames.extend(meanwhile.into_iter().map(|(order, f)| Piece::Own(order, f)));
        self.wake_or_cut(s, lost);
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
        self.notify.raise();
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

    /// Whether [`Outbox::close`] was called.
    pub fn is_closing(&self) -> bool {
        self.is_closing.load(Ordering::Acquire)
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
                    s.frames.push(Piece::Own(feed::next_order(), frame));
                    drop(s);
                    self.notify.raise();
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

    /// Moves every frame waiting for the connection into `into` (which the
    /// writer reuses, so draining allocates nothing): its own frames and
    /// what its rooms published past its cursors, in the order queued.
    /// Finding nothing with `park`, the writer is about to wait: the
    /// connection is put on its rooms' waiting lists, so the next event
    /// wakes it. Without `park` (a writer in its coalescing window) no
    /// event wakes it.
    pub fn drain(&self, into: &mut Vec<Piece>, park: bool) -> Drained {
        let mut s = self.lock();
        std::mem::swap(&mut s.frames, into);
        if s.close.is_none() && !s.replaying {
            let mut lost = false;
            for look in [false, true] {
                // The second look, with nothing found, parks.
                if look && (!park || !into.is_empty()) {
                    break;
                }
                for sub in s.subs.iter().filter(|sub| !sub.held) {
                    if let Read::Lost =
                        sub.feed
                            .read(&sub.cursor, self.format, sub.floor, into, look)
                    {
                        lost = true;
                    }
                }
            }
            if lost {
                drop(s);
                self.close(CloseReason::TooSlow);
                return Drained {
                    close: Some(CloseReason::TooSlow),
                };
            }
            feed::sort(into);
        }
        s.parked = park && into.is_empty();
        s.replied = false;
        Drained { close: s.close }
    }

    pub async fn wait(&self) {
        self.notify.lowered().await;
    }

    /// Whether a reply (not a room event) is queued (see
    /// `State::replied`), or the connection is closing.
    pub fn has_reply_or_close(&self) -> bool {
        let s = self.lock();
        s.replied || s.close.is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        crate::locks::lock(&self.state)
    }
}

impl Listener for Outbox {
    /// A room the connection listens to has a new event and its writer is
    /// parked (see [`Feed::publish`]).
    fn wake(&self) {
        self.notify.raise();
    }

    fn cut(&self) {
        self.close(CloseReason::TooSlow);
    }
}

/// A wake-up for one waiting task (the writer) that many may raise: a
/// flag and the waiter's waker, no lock and no list of waiters, as the
/// publish path raises it once per parked connection.
#[derive(Default)]
struct Signal {
    raised: AtomicBool,
    waker: AtomicWaker,
}

impl Signal {
    /// Wakes the waiter, or lets its next wait return at once.
    fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Resolves once raised (at once if it was since the last time),
    /// taking the permit. Only one task may wait.
    async fn lowered(&self) {
        std::future::poll_fn(|cx| {
            if self.raised.swap(false, Ordering::Acquire) {
                return std::task::Poll::Ready(());
            }
            self.waker.register(cx.waker());
            // Raised between the look and the registration.
            if self.raised.swap(false, Ordering::Acquire) {
                return std::task::Poll::Ready(());
            }
            std::task::Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Encoded;

    fn outbox(capacity: usize) -> Arc<Outbox> {
        Outbox::new(
            ConnId(1),
            UserId::generate(),
            TokenHash([0; 32]),
            Format::Json,
            capacity,
        )
    }

    /// An outbox of `capacity` listening to a new room's feed, live.
    fn live(capacity: usize) -> (RoomId, Arc<Outbox>, Arc<Feed>) {
        let room = RoomId::generate();
        let (outbox, feed) = (outbox(capacity), Arc::new(Feed::new(capacity)));
        outbox.subscribe(room, &feed, false);
        outbox.release(&HashMap::new());
        (room, outbox, feed)
    }

    fn publish(feed: &Feed, seq: u64) -> Vec<Arc<dyn Listener>> {
        let frame = ServerFrame::Pong;
        feed.publish(Seq(seq), &Encoded::new(&frame))
    }

    fn drained(outbox: &Outbox) -> (Vec<u64>, Option<CloseReason>) {
        let mut pieces = Vec::new();
        let d = outbox.drain(&mut pieces, true);
        let orders = pieces
            .iter()
            .flat_map(|p| (0..p.frames()).map(move |i| p.order(i)))
            .collect();
        (orders, d.close)
    }

    #[tokio::test]
    async fn a_signal_raised_before_the_wait_or_during_it_is_not_lost() {
        let signal = Arc::new(Signal::default());
        signal.raise();
        signal.raise();
        // One permit, however often raised while nobody waited.
        signal.lowered().await;
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), signal.lowered());
        assert!(waiting.await.is_err(), "the permit was taken");
        let raiser = signal.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            raiser.raise();
        });
        tokio::time::timeout(std::time::Duration::from_secs(5), signal.lowered())
            .await
            .expect("woken from another thread");
        thread.join().expect("joined");
    }

    #[test]
    fn a_late_publish_of_a_replayed_event_is_not_sent_twice() {
        let room = RoomId::generate();
        let (outbox, feed) = (outbox(16), Arc::new(Feed::new(16)));
        outbox.subscribe(room, &feed, false);
        // The head read for the replay already included seq 5, whose
        // publish reaches the feed only after the replay ended.
        outbox.release(&HashMap::from([(room, Seq(5))]));
        for seq in 5..=7 {
            publish(&feed, seq);
        }
        let (frames, close) = drained(&outbox);
        assert_eq!(
            (frames.len(), close),
            (2, None),
            "seq 5 was replayed; only 6 and 7 go live"
        );
    }

    #[test]
    fn events_published_during_a_replay_follow_the_replayed_frames() {
        let room = RoomId::generate();
        let (outbox, feed) = (outbox(16), Arc::new(Feed::new(16)));
        outbox.subscribe(room, &feed, false);
        publish(&feed, 1);
        outbox.push(Bytes::from_static(b"replayed"));
        publish(&feed, 2);
        assert!(drained(&outbox).0.len() == 1, "only the replayed frame");
        outbox.release(&HashMap::new());
        let (frames, _) = drained(&outbox);
        assert_eq!(frames.len(), 2);
        assert!(frames.is_sorted());
    }

    #[test]
    fn a_typing_notice_after_a_ready_with_nothing_to_replay_is_kept() {
        let room = RoomId::generate();
        let (outbox, feed) = (outbox(16), Arc::new(Feed::new(16)));
        outbox.subscribe(room, &feed, false);
        // Before the ready, the connection is catching up: a notice is dropped.
        outbox.push_droppable(Bytes::from_static(b"early"));
        publish(&feed, 1);
        outbox.send_and_release(&ServerFrame::Pong, &HashMap::from([(room, Seq(0))]));
        // Anyone who saw the ready may type at once.
        outbox.push_droppable(Bytes::from_static(b"typing"));
        let mut pieces = Vec::new();
        outbox.drain(&mut pieces, true);
        let frames: Vec<&[u8]> = pieces
            .iter()
            .flat_map(|p| (0..p.frames()).map(move |i| p.frame(i)))
            .collect();
        assert_eq!(frames.len(), 3, "ready, seq 1, typing: {frames:?}");
        assert_eq!(frames[0], wire::encode(&ServerFrame::Pong, Format::Json));
        assert_eq!(frames[2], b"typing");
    }

    #[tokio::test]
    async fn a_ping_wakes_a_parked_writer_and_waits_behind_queued_frames() {
        let (_, outbox, _feed) = live(16);
        let quick = std::time::Duration::from_millis(50);
        // The release's wake-up, taken.
        outbox.wait().await;
        // The writer found nothing and parked: nothing wakes it but a ping.
        assert_eq!(drained(&outbox).0.len(), 0);
        assert!(tokio::time::timeout(quick, outbox.wait()).await.is_err());
        outbox.ping();
        tokio::time::timeout(std::time::Duration::from_secs(1), outbox.wait())
            .await
            .expect("a ping wakes a parked writer");
        let mut frames = Vec::new();
        outbox.drain(&mut frames, true);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].frame(0), &PING[..]);
        // With a frame of the connection's own waiting, the line is busy:
        // no ping is added.
        outbox.push(Bytes::from_static(b"reply"));
        outbox.ping();
        let mut frames = Vec::new();
        outbox.drain(&mut frames, true);
        assert_eq!(frames.len(), 1, "only the reply");
        // A closing connection gets none.
        outbox.close(CloseReason::Idle);
        outbox.ping();
        let mut frames = Vec::new();
        outbox.drain(&mut frames, true);
        assert!(frames.is_empty());
    }

    /// A publish racing the end of a replay: the events the replay held
    /// back, then the ones published while it ended, all in seq order.
    #[test]
    fn events_published_as_a_replay_ends_stay_in_seq_order() {
        const EVENTS: u64 = 3000;
        for _ in 0..40 {
            let room = RoomId::generate();
            let (outbox, feed) = (outbox(1 << 16), Arc::new(Feed::new(1 << 16)));
            outbox.subscribe(room, &feed, false);
            let publisher = {
                let feed = feed.clone();
                std::thread::spawn(move || {
                    for seq in 1..=EVENTS {
                        publish_numbered(&feed, seq);
                    }
                })
            };
            // The replay ends while events keep coming.
            while feed.len() < 50 {
                std::thread::yield_now();
            }
            outbox.release(&HashMap::new());
            let mut seqs = Vec::new();
            let mut pieces = Vec::new();
            loop {
                let done = publisher.is_finished();
                outbox.drain(&mut pieces, false);
                for p in &pieces {
                    for i in 0..p.frames() {
                        seqs.push(seq_of(p.frame(i)));
                    }
                }
                pieces.clear();
                // Drained once after the last publish: everything is in.
                if done {
                    break;
                }
            }
            publisher.join().expect("joined");
            let expected: Vec<u64> = (1..=EVENTS).collect();
            assert!(
                seqs == expected,
                "out of order: {:?}",
                first_disorder(&seqs)
            );
        }
    }

    /// Publishes event `seq` as a frame that carries it (see [`seq_of`]).
    fn publish_numbered(feed: &Feed, seq: u64) {
        let message = seq.to_string();
        let frame = ServerFrame::Error {
            code: "x",
            message: &message,
            client_id: None,
        };
        let _ = feed.publish(Seq(seq), &Encoded::new(&frame));
    }

    /// The seq a test frame carries (an error frame whose message is it,
    /// after the WebSocket header).
    fn seq_of(frame: &[u8]) -> u64 {
        let key = b"\"message\":\"";
        let at = frame
            .windows(key.len())
            .position(|w| w == key)
            .expect("a message")
            + key.len();
        frame[at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .fold(0, |n, b| n * 10 + u64::from(b - b'0'))
    }

    /// A room joined while its events keep coming: nothing of it is sent
    /// before its `joined` frame, which comes after the connection's
    /// `ready`, then every event since the subscription, in seq order,
    /// without a gap. The frame is announced after some events were
    /// published (the head it carries is read in between): on a live
    /// connection, during a replay (before or after the replay ends), and
    /// before the `ready`.
    #[test]
    fn a_room_joined_during_traffic_is_announced_before_its_events() {
        #[derive(Clone, Copy, Debug)]
        enum When {
            Live,
            ReplayEndsFirst,
            AnnouncedFirst,
            BeforeReady,
        }
        const EVENTS: u64 = 2000;
        let ready = ServerFrame::Pong;
        let joined = ServerFrame::Error {
            code: "joined",
            message: "joined",
            client_id: None,
        };
        let seq_frames = |frames: &[Bytes]| -> Vec<u64> {
            frames
                .iter()
                .filter(|f| f.windows(5).any(|w| w == b"\"x\",\""))
                .map(|f| seq_of(f))
                .collect()
        };
        for when in [
            When::Live,
            When::ReplayEndsFirst,
            When::AnnouncedFirst,
            When::BeforeReady,
        ] {
            for _ in 0..10 {
                let room = RoomId::generate();
                let (outbox, feed) = (outbox(1 << 16), Arc::new(Feed::new(1 << 16)));
                match when {
                    When::Live => outbox.send_and_release(&ready, &HashMap::new()),
                    When::ReplayEndsFirst | When::AnnouncedFirst => outbox.send_ready(&ready),
                    When::BeforeReady => {}
                }
                // The publisher stops after seq 100 until the room is
                // joined, so seqs 101 on are the room's for the connection.
                let published = Arc::new(AtomicU64::new(0));
                let subscribed = Arc::new(AtomicBool::new(false));
                let publisher = {
                    let (feed, published, subscribed) =
                        (feed.clone(), published.clone(), subscribed.clone());
                    std::thread::spawn(move || {
                        for seq in 1..=EVENTS {
                            while seq == 101 && !subscribed.load(Ordering::Acquire) {
                                std::thread::yield_now();
                            }
                            publish_numbered(&feed, seq);
                            published.store(seq, Ordering::Release);
                        }
                    })
                };
                while published.load(Ordering::Acquire) < 100 {
                    std::thread::yield_now();
                }
                outbox.subscribe(room, &feed, true);
                subscribed.store(true, Ordering::Release);
                let mut frames: Vec<Bytes> = Vec::new();
                let mut pieces = Vec::new();
                let mut take = |frames: &mut Vec<Bytes>| {
                    outbox.drain(&mut pieces, false);
                    for p in &pieces {
                        frames.extend((0..p.frames()).map(|i| Bytes::copy_from_slice(p.frame(i))));
                    }
                    pieces.clear();
                };
                while published.load(Ordering::Acquire) < 120 {
                    take(&mut frames);
                    assert!(
                        seq_frames(&frames).is_empty(),
                        "{when:?}: an event of the room before it was announced"
                    );
                }
                // Announced while events keep coming.
                match when {
                    When::Live => outbox.announce(room, &joined),
                    When::ReplayEndsFirst => {
                        outbox.release(&HashMap::new());
                        outbox.announce(room, &joined);
                    }
                    When::AnnouncedFirst => {
                        outbox.announce(room, &joined);
                        outbox.release(&HashMap::new());
                    }
                    When::BeforeReady => {
                        outbox.announce(room, &joined);
                        take(&mut frames);
                        assert!(frames.is_empty(), "nothing before the ready");
                        outbox.send_and_release(&ready, &HashMap::new());
                    }
                }
                loop {
                    let done = publisher.is_finished();
                    take(&mut frames);
                    if done {
                        break;
                    }
                }
                publisher.join().expect("joined");
                assert_eq!(frames[0], wire::encode(&ready, Format::Json), "{when:?}");
                assert_eq!(frames[1], wire::encode(&joined, Format::Json), "{when:?}");
                let seqs = seq_frames(&frames[2..]);
                assert_eq!(seqs.len(), frames.len() - 2, "{when:?}: only events follow");
                let expected: Vec<u64> = (101..=EVENTS).collect();
                assert!(
                    seqs == expected,
                    "{when:?}: out of order or missing: {:?}",
                    first_disorder(&seqs)
                );
            }
        }
    }

    /// A room left before its `joined` went out: nothing of it is sent.
    #[test]
    fn a_room_left_before_it_was_announced_sends_nothing() {
        let room = RoomId::generate();
        let (outbox, feed) = (outbox(16), Arc::new(Feed::new(16)));
        outbox.release(&HashMap::new());
        outbox.subscribe(room, &feed, true);
        publish(&feed, 1);
        outbox.unsubscribe(room);
        outbox.announce(room, &ServerFrame::Pong);
        assert_eq!(drained(&outbox).0.len(), 0);
    }

    fn first_disorder(seqs: &[u64]) -> Option<(usize, u64, u64)> {
        seqs.windows(2)
            .position(|w| w[1] != w[0] + 1)
            .map(|i| (i, seqs[i], seqs[i + 1]))
    }

    #[test]
    fn a_reader_that_falls_a_feed_behind_is_cut_off() {
        let (_, outbox, feed) = live(4);
        let mut lost = Vec::new();
        for seq in 1..=5 {
            lost.extend(publish(&feed, seq));
        }
        assert_eq!(lost.len(), 1, "the publish that dropped its entry says so");
        assert!(feed.len() <= 4, "the feed stays bounded");
        assert_eq!(drained(&outbox).1, Some(CloseReason::TooSlow));
    }

    #[test]
    fn leaving_a_room_still_sends_what_it_published_before() {
        let (room, outbox, feed) = live(16);
        publish(&feed, 1);
        outbox.unsubscribe(room);
        publish(&feed, 2);
        outbox.push(Bytes::from_static(b"left"));
        let (frames, _) = drained(&outbox);
        assert_eq!(frames.len(), 2, "seq 1, then the left frame; not seq 2");
        assert!(frames.is_sorted());
        assert!(feed.is_empty() || feed.len() <= 2);
    }

    #[test]
    fn every_reader_has_passed_an_entry_once_it_is_trimmed() {
        let (_, outbox, feed) = live(4096);
        for seq in 1..=200 {
            publish(&feed, seq);
            let _ = drained(&outbox);
        }
        assert!(
            feed.len() < 64,
            "entries every reader passed are dropped: {} left",
            feed.len()
        );
    }
}
