//! A room's shared log of encoded frames, read by every connection
//! listening to the room at its own pace.
//!
//! Publishing appends one entry (the frame, encoded once per format in use)
//! and touches none of the room's connections: each keeps a [`Cursor`] into
//! the feed, and its writer copies what lies past the cursor when it next
//! writes. Only writers that found nothing and parked are woken, one
//! wake-up each. Entries every cursor has passed are dropped; a cursor that
//! falls `outbound_queue_frames` entries behind the newest loses what it
//! missed and its connection is cut off as too slow (1013), to resume from
//! its last seq.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};

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

/// Entries dropped from the front at most once per this many appends,
/// after one walk over the cursors.
const TRIM_EVERY: u64 = 64;

pub struct Feed {
    inner: Mutex<Inner>,
    /// Readers per format, so a publish encodes only what is read.
    json_readers: AtomicUsize,
    msgpack_readers: AtomicUsize,
    capacity: usize,
}

struct Inner {
    /// The absolute index of `entries[0]`.
    base: u64,
    entries: VecDeque<Entry>,
    /// Per listener (by its connection's id).
    cursors: HashMap<u64, Arc<Cursor>>,
    /// Parked readers to wake at the next append.
    waiting: Vec<Arc<Cursor>>,
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
    /// Entries were copied (or none were new).
    Fine,
    /// Entries past the cursor were dropped: the reader is too slow.
    Lost,
}

impl Feed {
    pub fn new(capacity: usize) -> Feed {
        Feed {
            inner: Mutex::new(Inner {
                base: 0,
                entries: VecDeque::new(),
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
        let end = inner.base + inner.entries.len() as u64;
        let cursor = Arc::new(Cursor {
            next: AtomicU64::new(end),
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
        inner.entries.push_back(Entry {
            order: next_order(),
            seq,
            json,
            msgpack,
        });
        let end = inner.base + inner.entries.len() as u64;
        let mut lost = Vec::new();
        if inner.entries.len() > self.capacity || end % TRIM_EVERY == 0 {
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
    fn trim(&self, inner: &mut Inner, lost: &mut Vec<Arc<dyn Listener>>) {
        let end = inner.base + inner.entries.len() as u64;
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
        while inner.base < new_base {
            inner.entries.pop_front();
            inner.base += 1;
        }
    }

    /// Copies the frames past `cursor` (those of a seq above `floor`) into
    /// `out` and moves the cursor to the end. With `park`, a reader that
    /// found nothing new is put on the waiting list, in the same look, so
    /// no append can slip between the two.
    pub(super) fn read(
        &self,
        cursor: &Arc<Cursor>,
        format: Format,
        floor: Seq,
        out: &mut Vec<(u64, Bytes)>,
        park: bool,
    ) -> Read {
        let mut inner = self.lock();
        let before = out.len();
        let read = Self::copy(&inner, cursor, format, floor, out);
        if park && out.len() == before && !cursor.parked.swap(true, Relaxed) {
            inner.waiting.push(cursor.clone());
        }
        read
    }

    fn copy(
        inner: &Inner,
        cursor: &Cursor,
        format: Format,
        floor: Seq,
        out: &mut Vec<(u64, Bytes)>,
    ) -> Read {
        let end = inner.base + inner.entries.len() as u64;
        let next = cursor.next.load(Relaxed);
        if next < inner.base {
            return Read::Lost;
        }
        for e in inner.entries.range((next - inner.base) as usize..) {
            if e.seq <= floor {
                continue;
            }
            // Every entry after a reader came has its format (see
            // `publish`); anything else would be a hole in the stream.
            match e.bytes(format) {
                Some(b) => out.push((e.order, b.clone())),
                None => return Read::Lost,
            }
        }
        cursor.next.store(end, Relaxed);
        Read::Fine
    }

    /// How many entries the feed holds (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
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
