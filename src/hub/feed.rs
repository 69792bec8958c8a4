//! A room's shared log of encoded frames, read by every connection
//! listening to the room at its own pace.
//!
//! Publishing appends one entry (the frame, encoded once per format in use)
//! and touches none of the room's connections: each keeps a [`Cursor`] into
//! the feed, and its writer takes what lies past the cursor when it next
//! writes. Entries live in fixed segments shared with the writers: a writer
//! holds one reference per segment it reads from, not one per frame, so a
//! delivery costs no reference count of its own. Only writers that found
//! nothing and parked are woken, one wake-up each. Segments every cursor
//! has passed are dropped; a cursor that falls `outbound_queue_frames`
//! entries behind the newest loses what it missed and its connection is cut
//! off as too slow (1013), to resume from its last seq.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use bytes::Bytes;

use crate::ids::Seq;
use crate::protocol::Format;
use crate::wire::Encoded;

/// What reads a feed (a connection's outbox), as the feed sees it.
pub trait Listener: Send + Sync {
    /// It is parked and something was appended.
    fn wake(&self);
    /// It fell too far behind: what it missed is gone.
    fn cut(&self);
}

/// The order in which frames were queued, across feeds and connections'
/// own queues, so a writer merging them keeps the order they were
/// produced in (an ack before the message it acknowledges).
static ORDER: AtomicU64 = AtomicU64::new(1);

/// The next number in the queueing order.
pub(super) fn next_order() -> u64 {
    ORDER.fetch_add(1, Relaxed)
}

/// Passed segments are dropped at most once per this many appends, after
/// one walk over the cursors.
const TRIM_EVERY: u64 = 64;

/// Entries per segment. Segment `k` holds the entries of absolute index
/// `k * SEGMENT ..`; an idle room keeps at most its last segment.
const SEGMENT: usize = 32;

pub struct Feed {
    inner: Mutex<Inner>,
    /// Readers per format, so a publish encodes only what is read.
    json_readers: AtomicUsize,
    msgpack_readers: AtomicUsize,
    capacity: usize,
}

struct Inner {
    /// The absolute index of the oldest entry still readable.
    base: u64,
    /// The absolute index the next entry appended gets.
    end: u64,
    /// The segments holding `base..end`, oldest first; `segments[0]` is
    /// segment number `first`.
    segments: VecDeque<Arc<Segment>>,
    first: u64,
    /// Per listener (by its connection's id).
    cursors: HashMap<u64, Arc<Cursor>>,
    /// Parked readers to wake at the next append.
    waiting: Vec<Arc<Cursor>>,
}

/// A fixed run of entries, each set once (under the feed's lock) and read
/// without it by writers holding the segment.
pub struct Segment {
    slots: [OnceLock<Entry>; SEGMENT],
}

struct Entry {
    order: u64,
    seq: Seq,
    json: Option<Bytes>,
    msgpack: Option<Bytes>,
}

impl Entry {
    fn bytes(&self, format: Format) -> Option<&Bytes> {
        match format {
            Format::Json => self.json.as_ref(),
            Format::Msgpack => self.msgpack.as_ref(),
        }
    }
}

impl Segment {
    fn new() -> Arc<Segment> {
        Arc::new(Segment {
            slots: std::array::from_fn(|_| OnceLock::new()),
        })
    }

    /// An entry a reader was handed (set before the feed's lock was let go).
    fn entry(&self, slot: u8) -> &Entry {
        self.slots[usize::from(slot)]
            .get()
            .expect("a run covers only entries appended before it was taken")
    }
}

/// A frame to write: a connection's own, or consecutive entries of one
/// feed segment in one format (one reference for the whole run).
pub enum Piece {
    Own(u64, Bytes),
    Run {
        segment: Arc<Segment>,
        /// Slots `from..to` of the segment.
        from: u8,
        to: u8,
        format: Format,
    },
}

impl Piece {
    /// How many frames it holds.
    pub fn frames(&self) -> usize {
        match self {
            Piece::Own(..) => 1,
            Piece::Run { from, to, .. } => usize::from(to - from),
        }
    }

    /// Its `i`th frame.
    pub fn frame(&self, i: usize) -> &[u8] {
        match self {
            Piece::Own(_, bytes) => bytes,
            Piece::Run {
                segment,
                from,
                format,
                ..
            } => segment
                .entry(from + i as u8)
                .bytes(*format)
                .expect("a run holds only entries in its format"),
        }
    }

    /// The queueing order of its `i`th frame.
    pub fn order(&self, i: usize) -> u64 {
        match self {
            Piece::Own(order, _) => *order,
            Piece::Run { segment, from, .. } => segment.entry(from + i as u8).order,
        }
    }

    /// The queueing order of its first and of its last frame.
    pub fn orders(&self) -> (u64, u64) {
        (self.order(0), self.order(self.frames() - 1))
    }

    /// Splits a run before each frame that some other piece starts ahead
    /// of (`starts`: every piece's first order, ascending).
    fn split(self, starts: &[u64], out: &mut Vec<Piece>) {
        let Piece::Run {
            segment,
            from,
            to,
            format,
        } = self
        else {
            out.push(self);
            return;
        };
        let mut begin = from;
        for slot in from + 1..to {
            let (before, at) = (segment.entry(slot - 1).order, segment.entry(slot).order);
            let i = starts.partition_point(|s| *s <= before);
            if starts.get(i).is_some_and(|s| *s < at) {
                out.push(Feed::run(&segment, begin, slot, format));
                begin = slot;
            }
        }
        out.push(Piece::Run {
            segment,
            from: begin,
            to,
            format,
        });
    }
}

/// Puts pieces gathered from several sources (a connection's own frames,
/// each of its rooms' feeds) in the order their frames were queued. Runs
/// are split only where another source's frame falls inside them.
pub(super) fn sort(pieces: &mut Vec<Piece>) {
    if pieces.windows(2).all(|w| w[0].orders().1 < w[1].orders().0) {
        return;
    }
    let mut starts: Vec<u64> = pieces.iter().map(|p| p.orders().0).collect();
    starts.sort_unstable();
    let mut out = Vec::with_capacity(pieces.len() + starts.len());
    for p in pieces.drain(..) {
        p.split(&starts, &mut out);
    }
    out.sort_by_key(|p| p.orders().0);
    *pieces = out;
}

/// One connection's place in a feed.
pub struct Cursor {
    /// The absolute index of the next entry to read.
    next: AtomicU64,
    /// In the feed's `waiting` list.
    parked: AtomicBool,
    listener: Weak<dyn Listener>,
}

/// What a reader gets from [`Feed::read`].
pub(super) enum Read {
    /// Entries were taken (or none were new).
    Fine,
    /// Entries past the cursor were dropped: the reader is too slow.
    Lost,
}

impl Feed {
    pub fn new(capacity: usize) -> Feed {
        Feed {
            inner: Mutex::new(Inner {
                base: 0,
                end: 0,
                segments: VecDeque::new(),
                first: 0,
                cursors: HashMap::new(),
                waiting: Vec::new(),
            }),
            json_readers: AtomicUsize::new(0),
            msgpack_readers: AtomicUsize::new(0),
            capacity: capacity.max(1),
        }
    }

    fn readers(&self, format: Format) -> &AtomicUsize {
        match format {
            Format::Json => &self.json_readers,
            Format::Msgpack => &self.msgpack_readers,
        }
    }

    /// Adds a reader that starts at the next entry appended.
    pub(super) fn subscribe(
        &self,
        id: u64,
        format: Format,
        listener: Weak<dyn Listener>,
    ) -> Arc<Cursor> {
        let mut inner = self.lock();
        let cursor = Arc::new(Cursor {
            next: AtomicU64::new(inner.end),
            parked: AtomicBool::new(false),
            listener,
        });
        if inner.cursors.insert(id, cursor.clone()).is_none() {
            self.readers(format).fetch_add(1, Relaxed);
        }
        cursor
    }

    /// Removes a reader; what it had not read yet is returned (in order,
    /// with the floor applied), for the connection to send before anything
    /// queued after this.
    pub(super) fn unsubscribe(&self, id: u64, format: Format, floor: Seq) -> Vec<(u64, Bytes)> {
        let mut inner = self.lock();
        let Some(cursor) = inner.cursors.remove(&id) else {
            return Vec::new();
        };
        self.readers(format).fetch_sub(1, Relaxed);
        let mut out = Vec::new();
        let _ = Self::copy(&inner, &cursor, format, floor, &mut out);
        out
    }

    /// Appends a committed event's frame, then wakes the parked readers.
    /// Returns the connections that fell too far behind.
    pub fn publish(&self, seq: Seq, encoded: &Encoded) -> Vec<Arc<dyn Listener>> {
        let wanted = |f: Format| (self.readers(f).load(Relaxed) > 0).then(|| encoded.for_format(f));
        let (mut json, mut msgpack) = (wanted(Format::Json), wanted(Format::Msgpack));
        let mut inner = self.lock();
        // A reader of another format may have come meanwhile.
        if json.is_none() && self.json_readers.load(Relaxed) > 0 {
            json = Some(encoded.for_format(Format::Json));
        }
        if msgpack.is_none() && self.msgpack_readers.load(Relaxed) > 0 {
            msgpack = Some(encoded.for_format(Format::Msgpack));
        }
        let index = inner.end;
        let number = index / SEGMENT as u64;
        if inner.segments.is_empty() {
            inner.first = number;
        }
        if inner.first + inner.segments.len() as u64 == number {
            inner.segments.push_back(Segment::new());
        }
        let entry = Entry {
            order: next_order(),
            seq,
            json,
            msgpack,
        };
        let segment = inner.segments.back().expect("the segment of `end` exists");
        if segment.slots[index as usize % SEGMENT].set(entry).is_err() {
            unreachable!("each index is appended once");
        }
        inner.end += 1;
        let end = inner.end;
        let mut lost = Vec::new();
        if end - inner.base > self.capacity as u64 || end % TRIM_EVERY == 0 {
            self.trim(&mut inner, &mut lost);
        }
        let waiting = std::mem::take(&mut inner.waiting);
        drop(inner);
        for c in waiting {
            c.parked.store(false, Relaxed);
            if let Some(l) = c.listener.upgrade() {
                l.wake();
            }
        }
        lost
    }

    /// Drops the entries every reader has passed, and beyond that the
    /// oldest past `capacity`; readers that had not read those are lost.
    /// Whole segments below the oldest entry kept are let go (writers still
    /// holding one keep it until their write is done).
    fn trim(&self, inner: &mut Inner, lost: &mut Vec<Arc<dyn Listener>>) {
        let end = inner.end;
        let keep_from = end.saturating_sub(self.capacity as u64);
        let slowest = inner
            .cursors
            .values()
            .map(|c| c.next.load(Relaxed))
            .min()
            .unwrap_or(end);
        let new_base = slowest.max(keep_from).min(end);
        if slowest < new_base {
            for c in inner.cursors.values() {
                if c.next.load(Relaxed) < new_base {
                    if let Some(l) = c.listener.upgrade() {
                        lost.push(l);
                    }
                }
            }
        }
        inner.base = inner.base.max(new_base);
        // A segment goes once nothing at or after `base` is in it; the
        // one `end` falls in stays for the next appends.
        while !inner.segments.is_empty() && (inner.first + 1) * SEGMENT as u64 <= inner.base {
            inner.segments.pop_front();
            inner.first += 1;
        }
    }

    /// Takes the frames past `cursor` (those of a seq above `floor`) as
    /// runs into `out` and moves the cursor to the end. With `park`, a
    /// reader that found nothing new is put on the waiting list, in the
    /// same look, so no append can slip between the two.
    pub(super) fn read(
        &self,
        cursor: &Arc<Cursor>,
        format: Format,
        floor: Seq,
        out: &mut Vec<Piece>,
        park: bool,
    ) -> Read {
        let mut inner = self.lock();
        let before = out.len();
        let read = Self::runs(&inner, cursor, format, floor, out);
        if park && out.len() == before && !cursor.parked.swap(true, Relaxed) {
            inner.waiting.push(cursor.clone());
        }
        read
    }

    /// The entries past `cursor` as runs, one per segment (split where an
    /// entry is at or below the floor).
    fn runs(
        inner: &Inner,
        cursor: &Cursor,
        format: Format,
        floor: Seq,
        out: &mut Vec<Piece>,
    ) -> Read {
        let next = cursor.next.load(Relaxed);
        if next < inner.base {
            return Read::Lost;
        }
        let mut index = next;
        while index < inner.end {
            let number = index / SEGMENT as u64;
            let segment = &inner.segments[(number - inner.first) as usize];
            let stop = inner.end.min((number + 1) * SEGMENT as u64);
            let mut run: Option<(u8, u8)> = None;
            while index < stop {
                let slot = (index % SEGMENT as u64) as u8;
                let entry = segment.entry(slot);
                index += 1;
                if entry.seq <= floor {
                    if let Some((from, to)) = run.take() {
                        out.push(Self::run(segment, from, to, format));
                    }
                    continue;
                }
                // Every entry after a reader came has its format (see
                // `publish`); anything else would be a hole in the stream.
                if entry.bytes(format).is_none() {
                    return Read::Lost;
                }
                run = Some(run.map_or((slot, slot + 1), |(from, _)| (from, slot + 1)));
            }
            if let Some((from, to)) = run {
                out.push(Self::run(segment, from, to, format));
            }
        }
        cursor.next.store(inner.end, Relaxed);
        Read::Fine
    }

    fn run(segment: &Arc<Segment>, from: u8, to: u8, format: Format) -> Piece {
        Piece::Run {
            segment: segment.clone(),
            from,
            to,
            format,
        }
    }

    /// The frames past `cursor` (above `floor`) as the connection's own
    /// frames, in the order published, each given a new place in the
    /// queueing order; moves the cursor to the end. The new places are
    /// taken under the feed's lock: after everything queued so far (a
    /// replay's frames), and before whatever this feed publishes next, so
    /// an event published meanwhile cannot sort ahead of them.
    pub(super) fn take_frames(
        &self,
        cursor: &Cursor,
        format: Format,
        floor: Seq,
        out: &mut Vec<(u64, Bytes)>,
    ) -> Read {
        let inner = self.lock();
        let from = out.len();
        let read = Self::copy(&inner, cursor, format, floor, out);
        for (order, _) in &mut out[from..] {
            *order = next_order();
        }
        drop(inner);
        read
    }

    fn copy(
        inner: &Inner,
        cursor: &Cursor,
        format: Format,
        floor: Seq,
        out: &mut Vec<(u64, Bytes)>,
    ) -> Read {
        let mut runs = Vec::new();
        let read = Self::runs(inner, cursor, format, floor, &mut runs);
        for piece in runs {
            if let Piece::Run {
                segment, from, to, ..
            } = &piece
            {
                for slot in *from..*to {
                    let entry = segment.entry(slot);
                    if let Some(bytes) = entry.bytes(format) {
                        out.push((entry.order, bytes.clone()));
                    }
                }
            }
        }
        read
    }

    /// How many entries the feed holds readable (for tests and metrics).
    pub fn len(&self) -> usize {
        let inner = self.lock();
        (inner.end - inner.base) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        crate::locks::lock(&self.inner)
    }
}

/// Cuts the listeners a publish found too slow (outside any feed lock).
pub(super) fn cut(lost: Vec<Arc<dyn Listener>>) {
    for l in lost {
        l.cut();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ServerFrame;

    struct Quiet;

    impl Listener for Quiet {
        fn wake(&self) {}
        fn cut(&self) {}
    }

    #[test]
    fn passed_segments_are_let_go_and_runs_hold_them_alive() {
        let feed = Feed::new(4096);
        let listener: Arc<dyn Listener> = Arc::new(Quiet);
        let cursor = feed.subscribe(1, Format::Json, Arc::downgrade(&listener));
        let encoded = Encoded::new(&ServerFrame::Pong);
        let mut held = Vec::new();
        for seq in 1..=1000 {
            let _ = feed.publish(Seq(seq), &encoded);
            let mut out = Vec::new();
            let _ = feed.read(&cursor, Format::Json, Seq::ZERO, &mut out, false);
            assert_eq!(out.iter().map(Piece::frames).sum::<usize>(), 1);
            if seq == 5 {
                held = out;
            }
        }
        // Trimmed every 64 appends, behind a reader one entry back: what
        // it passed since, and the segment being filled.
        let segments = feed.lock().segments.len();
        let bound = (TRIM_EVERY as usize).div_ceil(SEGMENT) + 2;
        assert!(segments <= bound, "{segments} segments kept for one reader");
        // A writer still holding a run of a dropped segment can write it.
        assert_eq!(held[0].frame(0), &encoded.for_format(Format::Json)[..]);
    }
}
