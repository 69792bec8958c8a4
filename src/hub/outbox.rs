//! One connection's outgoing queue: bounded, drained whole by whoever
//! writes it.
//!
//! Producers (the committer's fan-out, the connection's own reader) push
//! shared frame bytes under a short lock. Room events wake nobody: the
//! first one queued since the last drain puts the outbox on its flusher's
//! list (see [`super::Flusher`]), which walks its dirty outboxes once per
//! coalescing window and writes each one's whole queue with a non-blocking
//! vectored write, on the flusher's own task. Replies to the client (acks,
//! errors, pongs), replays and closes wake the connection's writer task,
//! which also finishes any write the socket did not take at once.
//!
//! Both write through the one [`Sink`], behind an async mutex, and drain
//! the queue only while holding it, so frames leave in queue order. A
//! queue that reaches its bound marks the connection too slow: it is cut
//! off and the client resumes from its last seq, so one stalled reader
//! never holds memory or its room back.

use std::collections::HashMap;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

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
    /// Wakes the writer task; a permit is stored if it is busy, so no wake
    /// is lost. Room events never use it (the flusher writes them).
    notify: Notify,
    /// Wakes a replay waiting for the writer to make room.
    drained: Notify,
    /// The socket's write half, shared by the writer task and the flusher.
    pub(crate) sink: tokio::sync::Mutex<Sink>,
    /// Cancelled once the connection is closing, to stop its reader.
    pub closing: CancellationToken,
    /// Set once the client has its `ready`: only then does it hear of
    /// presence changes (its `ready` holds the state before).
    greeted: std::sync::atomic::AtomicBool,
    /// Whether the client's last `focus` frame said its user looks at it
    /// (true until it says otherwise). With `last_used`, decides whether
    /// the user is away and gets push notifications.
    focused: std::sync::atomic::AtomicBool,
    /// When the client last sent anything but a ping, in ms since the epoch.
    last_used: std::sync::atomic::AtomicU64,
    capacity: usize,
}

struct State {
    frames: Vec<Bytes>,
    /// While the connection replays history, live room events wait here
    /// (see [`Outbox::release`]); `None` once it is live.
    held: Option<Vec<(RoomId, Seq, Bytes)>>,
    /// After the replay, per room, the last seq the client already has. A
    /// head can be read (and replayed) a moment before the committer
    /// publishes that event, so the first live events of a room may repeat
    /// the replay's tail; they are dropped here. A room's entry goes once
    /// a newer event passes, so the steady path pays one emptiness check.
    floors: HashMap<RoomId, Seq>,
    close: Option<CloseReason>,
    /// Frames were queued since the last drain and the outbox is on its
    /// flusher's list: further room events only push.
    dirty: bool,
}

/// Where the frames go: the socket's write half (none in benchmarks that
/// drain by hand), and what a non-blocking write left over.
#[derive(Default)]
pub struct Sink {
    pub io: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    /// The rest of a write the socket did not take at once: the writer
    /// task writes it, waiting for the socket, before anything newer.
    pub carry: Vec<Bytes>,
    /// A flush that could not finish without waiting (TLS).
    pub unflushed: bool,
}

/// What the flusher did with an outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Written, or handed to the writer task (which writes it soon).
    Done,
    /// The writer task holds the socket: try again next window.
    Busy,
}

impl State {
    /// Whether a live event is one the client already has.
    fn already_sent(&mut self, room: RoomId, seq: Seq) -> bool {
        if self.floors.is_empty() {
            return false;
        }
        match self.floors.get(&room) {
            Some(&floor) if seq <= floor => true,
            Some(_) => {
                self.floors.remove(&room);
                false
            }
            None => false,
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
        closing: CancellationToken,
    ) -> Arc<Outbox> {
        Arc::new(Outbox {
            id,
            user,
            session,
            format,
            state: Mutex::new(State {
                frames: Vec::new(),
                held: Some(Vec::new()),
                floors: HashMap::new(),
                close: None,
                dirty: false,
            }),
            notify: Notify::new(),
            drained: Notify::new(),
            sink: tokio::sync::Mutex::new(Sink::default()),
            closing,
            greeted: std::sync::atomic::AtomicBool::new(false),
            focused: std::sync::atomic::AtomicBool::new(true),
            last_used: std::sync::atomic::AtomicU64::new(Millis::now().0),
            capacity,
        })
    }

    pub fn mark_greeted(&self) {
        self.greeted
            .store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn is_greeted(&self) -> bool {
        self.greeted.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The client sent something its user did (any frame but a ping).
    pub fn used(&self) {
        self.last_used
            .store(Millis::now().0, std::sync::atomic::Ordering::Relaxed);
    }

    /// The client said whether its user looks at it (`focus` frame).
    pub fn set_focus(&self, active: bool) {
        self.focused
            .store(active, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the user looks at this client: it is in focus and was used
    /// within `window`.
    pub fn is_active(&self, window: std::time::Duration) -> bool {
        let used = self.last_used.load(std::sync::atomic::Ordering::Relaxed);
        self.focused.load(std::sync::atomic::Ordering::Relaxed)
            && Millis::now().0.saturating_sub(used) < window.as_millis() as u64
    }

    /// Queues a reply to this client (ack, error, pong, ready, a join on
    /// another device), encoded in the connection's format.
    pub fn send(&self, frame: &ServerFrame<'_>) {
        self.push(wire::encode(frame, self.format));
    }

    /// Gives the outbox its socket (before any frame is written).
    pub fn attach(&self, io: Pin<Box<dyn AsyncWrite + Send>>) {
        if let Ok(mut sink) = self.sink.try_lock() {
            sink.io = Some(io);
        }
    }

    /// Queues a framed reply that is not part of a room's sequence: the
    /// writer task sends it at once, so a client with one request in
    /// flight is not held to one answer per coalescing window.
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
        drop(s);
        self.notify.notify_one();
    }

    /// Queues a frame nobody must wait for (a typing notice): dropped when
    /// the queue is half full or the connection is still replaying, never
    /// a reason to cut the connection. Returns true when the outbox just
    /// became dirty: the caller puts it on its flusher's list.
    #[must_use]
    pub fn push_droppable(&self, frame: Bytes) -> bool {
        let mut s = self.lock();
        if s.close.is_some() || s.held.is_some() || s.frames.len() >= self.capacity / 2 {
            return false;
        }
        s.frames.push(frame);
        !std::mem::replace(&mut s.dirty, true)
    }

    /// Queues the frame of a room event, in that room's seq order. Returns
    /// true when the outbox just became dirty: the caller puts it on its
    /// flusher's list (no one is woken here).
    #[must_use]
    pub fn push_event(&self, room: RoomId, seq: Seq, encoded: &Encoded) -> bool {
        let frame = encoded.for_format(self.format);
        let mut s = self.lock();
        if s.close.is_some() {
            return false;
        }
        if let Some(held) = &mut s.held {
            // Held events wait for the replay to end, which sends them.
            held.push((room, seq, frame));
            if held.len() > self.capacity {
                drop(s);
                self.close(CloseReason::TooSlow);
            }
            return false;
        }
        if s.already_sent(room, seq) {
            return false;
        }
        if s.frames.len() >= self.capacity {
            drop(s);
            self.close(CloseReason::TooSlow);
            return false;
        }
        s.frames.push(frame);
        !std::mem::replace(&mut s.dirty, true)
    }

    /// Ends the replay: queues the held live events that come after what
    /// was replayed (`replayed` gives, per room, the last seq already sent
    /// or known to the client), and sends live from then on.
    pub fn release(&self, replayed: &HashMap<RoomId, Seq>) {
        let mut s = self.lock();
        let Some(held) = s.held.take() else { return };
        s.floors = replayed.clone();
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
        self.closing.cancel();
        self.notify.notify_one();
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
                _ = self.closing.cancelled() => return false,
            }
        }
    }

    /// Called by the writer after each write, to wake a waiting replay.
    pub fn drained(&self) {
        self.drained.notify_waiters();
    }

    /// Moves every queued frame into `into` (which the writer reuses, so
    /// draining allocates nothing) and reports a pending close. The next
    /// room event puts the outbox on its flusher's list again. Callers
    /// other than benchmarks hold the [`Sink`] while they drain and write.
    pub fn drain(&self, into: &mut Vec<Bytes>) -> Drained {
        let mut s = self.lock();
        std::mem::swap(&mut s.frames, into);
        s.dirty = false;
        Drained { close: s.close }
    }

    /// Resolves when the writer task has something to do (a reply, a
    /// replay, a close, or the rest of a flusher's write).
    pub async fn wait(&self) {
        self.notify.notified().await;
    }

    /// The flusher's turn: unless the writer task holds the socket, drains
    /// the queue and writes it without waiting. What the socket does not
    /// take at once is left in the sink for the writer task, woken for
    /// it; so is a pending close.
    pub fn flush(&self, batch: &mut Vec<Bytes>) -> Flushed {
        let Ok(mut sink) = self.sink.try_lock() else {
            return Flushed::Busy;
        };
        if !sink.carry.is_empty() || sink.unflushed {
            // The writer task was woken for it and drains after it.
            return Flushed::Done;
        }
        let Some(io) = sink.io.as_mut() else {
            return Flushed::Done;
        };
        if self.lock().close.is_some() {
            // Closing is the writer task's (it was woken for it).
            return Flushed::Done;
        }
        self.drain(batch);
        if batch.is_empty() {
            return Flushed::Done;
        }
        match write_now(io.as_mut(), batch) {
            Ok(Written::All) => self.drained(),
            Ok(Written::Unflushed) => {
                sink.unflushed = true;
                self.notify.notify_one();
            }
            Ok(Written::Part { frame, offset }) => {
                let mut carry: Vec<Bytes> = batch.drain(frame..).collect();
                carry[0] = carry[0].slice(offset..);
                sink.carry = carry;
                self.notify.notify_one();
            }
            Err(_) => {
                drop(sink);
                self.close(CloseReason::Gone);
            }
        }
        batch.clear();
        Flushed::Done
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        crate::locks::lock(&self.state)
    }
}

/// How far a non-blocking write got.
enum Written {
    All,
    /// Everything was taken but a flush is still under way.
    Unflushed,
    /// The socket took everything before byte `offset` of frame `frame`.
    Part {
        frame: usize,
        offset: usize,
    },
}

/// Frames per vectored write (well under the kernel's IOV_MAX of 1024).
const IOV_BATCH: usize = 64;

/// Writes `frames` as far as the socket takes them without waiting: the
/// writer is polled with a waker that does nothing, and a `Pending` ends
/// the attempt (whoever finishes the write polls it again with a real one).
fn write_now(
    mut io: Pin<&mut (dyn AsyncWrite + Send)>,
    frames: &[Bytes],
) -> std::io::Result<Written> {
    let mut cx = Context::from_waker(Waker::noop());
    let (mut frame, mut offset) = (0, 0);
    while frame < frames.len() {
        let mut slices: [IoSlice<'_>; IOV_BATCH] = [IoSlice::new(&[]); IOV_BATCH];
        let mut n = 0;
        for (i, f) in frames[frame..].iter().take(IOV_BATCH).enumerate() {
            slices[i] = IoSlice::new(if i == 0 { &f[offset..] } else { f });
            n += 1;
        }
        match io.as_mut().poll_write_vectored(&mut cx, &slices[..n]) {
            Poll::Ready(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(mut wrote)) => {
                while wrote > 0 {
                    let left = frames[frame].len() - offset;
                    if wrote >= left {
                        wrote -= left;
                        frame += 1;
                        offset = 0;
                    } else {
                        offset += wrote;
                        wrote = 0;
                    }
                }
            }
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => return Ok(Written::Part { frame, offset }),
        }
    }
    match io.as_mut().poll_flush(&mut cx) {
        Poll::Ready(Ok(())) => Ok(Written::All),
        Poll::Ready(Err(e)) => Err(e),
        Poll::Pending => Ok(Written::Unflushed),
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
            CancellationToken::new(),
        );
        let pong = ServerFrame::Pong;
        let event = Encoded::new(&pong);
        // The head read for the replay already included seq 5, whose
        // publish reaches the outbox only after the replay ended.
        outbox.release(&HashMap::from([(room, Seq(5))]));
        assert!(!outbox.push_event(room, Seq(5), &event));
        assert!(
            outbox.push_event(room, Seq(6), &event),
            "first frame: dirty"
        );
        assert!(!outbox.push_event(room, Seq(7), &event), "already dirty");
        let mut frames = Vec::new();
        outbox.drain(&mut frames);
        assert_eq!(frames.len(), 2, "seq 5 was replayed; only 6 and 7 go live");
    }
}
