//! Each room's durable head and its recent window: the newest events,
//! decoded, with the states of the messages among them, so the pages read
//! most (the newest messages, a resume after a short absence) cost no
//! storage read and no decoding. What the window does not cover is read
//! from storage, here and nowhere else.
//!
//! The window is a copy of the log, never a second truth: for every seq in
//! `from..=head` it holds exactly what storage holds, because
//! - it is loaded from storage (the newest events up to the
//!   head) and installed only if the head did not move and nothing dropped
//!   the window while storage was read;
//! - the committer appends each event as it makes it durable, under the
//!   lock that moves the head, so no reader sees a head past the window;
//! - a deletion redacts the message and each of its edits here in that
//!   same step, as the committer's batch did in storage
//!   ([`EventKind::redacted`]);
//! - a message's state is the fold of the events aiming at it
//!   ([`MessageState::apply`], the function that makes the stored states
//!   and that `hearth verify` checks them against). Every such event comes
//!   after the message, so for a message in the window all of them are in
//!   the window too;
//! - when the committer reopens the store after a storage failure, every
//!   window is dropped: events written but never made durable may have
//!   been read into one.
//!
//! Each message a history page read from the window also keeps its JSON
//! ([`MessageJson`]: everything but its author, reactions and quote),
//! encoded under the window's lock from the event and state beside it and
//! forgotten in the same step that changes either, so the next page
//! copies it instead of encoding it again.
//!
//! A page just below the window (within one window's size of its start)
//! grows it down to cover the page (storage read once, under the same
//! checks as a load: nothing became durable and nobody dropped the window
//! meanwhile), so people scrolling back through a room read it from memory
//! after the first of them. A window grows to at most [`GROW`] times its
//! size, and all rooms' windows together hold at most [`BEYOND_MAX`] events
//! beyond their size; past that, and for pages further below, storage
//! answers.
//!
//! Whole pages are kept too, as the JSON the API answers with: the same
//! page asked again (the newest page, opened by everyone who enters the
//! room; the pages people scroll back through from there) is answered
//! with the bytes encoded for the first reader, without reading or
//! encoding anything. A page is a function of the room's log, of the
//! directory (its authors' names) and, where it shows reactions, of its
//! reader (each has a `me` of their own). A page ends at the head it was
//! asked at, and a new message changes no other message, so new messages
//! leave kept pages as they are; an edit, a deletion or a reaction forgets
//! all the room's pages. A kept page is answered while the directory has
//! not changed since it was encoded and, if it shows reactions, only to
//! the reader it was encoded for. A page is kept only if no edit,
//! deletion or reaction became visible while it was read and encoded (nor
//! was the window dropped). A room keeps at
//! most [`PAGES`] pages (the least recently read leave first), and all
//! rooms together at most [`PAGE_BYTES_MAX`] bytes; the pages go with the
//! window.
//!
//! Memory: a room has a window only while it is read (loaded by its first
//! history page or resume, dropped after [`IDLE`] without a read), and
//! holds at most `storage.history_window` events (256 by default: the
//! newest page of 50, or the largest of 200, with the edits and reactions
//! among them), or what it grew to, and the JSON of the messages among
//! those that were read.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::ids::{RoomId, Seq, UserId};
use crate::locks::lock;
use crate::protocol::{AuthorView, MessageJson, MessageView};
use crate::storage::records::{EventKind, EventRecord, MessageState};
use crate::storage::{Result, StorageError, Store};
use crate::views::Current;

/// A window not read for this long is dropped (checked every minute).
pub const IDLE: Duration = Duration::from_secs(600);

/// A window read further back grows to at most this many times its size.
pub const GROW: usize = 16;

/// Events all grown windows together hold beyond their size (a few hundred
/// bytes each, as much again with a message's JSON).
pub const BEYOND_MAX: usize = 65_536;

/// Encoded pages a room keeps at most.
pub const PAGES: usize = 32;

/// Bytes all rooms' kept pages hold at most together.
pub const PAGE_BYTES_MAX: u64 = 64 << 20;

/// Reads answered from kept pages, from windows and from storage, since
/// start, for `/metrics`: whether the window is sized for what people
/// read. Also the events grown windows hold beyond their size and the
/// bytes of the kept pages, shared by every room.
#[derive(Debug, Default)]
pub struct ReadCounts {
    pub page: AtomicU64,
    pub window: AtomicU64,
    pub storage: AtomicU64,
    pub beyond: AtomicU64,
    pub page_bytes: AtomicU64,
    /// Reads of a log that came back without every seq (see
    /// [`Recent::range`]): a storage fault, none in a sound store.
    pub incomplete: AtomicU64,
}

/// Times a read of the log that came back incomplete is tried in all.
const READS: usize = 3;

/// Whether `events` are exactly the `count` seqs from `first` on, in order.
fn whole<E>(events: &[(Seq, E)], first: Seq, count: usize) -> bool {
    events.len() == count
        && events
            .iter()
            .zip(first.0..)
            .all(|((seq, _), want)| seq.0 == want)
}

pub struct Recent {
    /// The last seq that is durable and published. Readers (history,
    /// resume) never look past it, so nothing unacknowledged is ever
    /// shown. Moved only under `inner`'s lock, with the window.
    head: AtomicU64,
    /// Events the window holds at most; 0: no window.
    capacity: usize,
    inner: Mutex<Inner>,
    /// Shared by every room.
    counts: Arc<ReadCounts>,
}

#[derive(Default)]
struct Inner {
    window: Option<Window>,
    /// Counts the windows dropped: a load that read storage before a drop
    /// may hold what the drop was for, and is not installed.
    generation: u64,
    /// When a reader last used the window, for [`Recent::drop_if_idle`].
    read_at: Option<Instant>,
    /// Counts the edits, deletions and reactions made visible: a page read
    /// and encoded while one was may not show it, and is not kept.
    changes: u64,
}

/// Every event of the room with `from <= seq <= end`, as storage holds it.
struct Window {
    from: Seq,
    end: Seq,
    /// Events it holds at most: the room's window size
    /// (`storage.history_window`), or what it grew to.
    limit: usize,
    events: VecDeque<Logged>,
    /// The states of the messages in the window that later events changed.
    states: BySeq<MessageState>,
    /// The JSON of messages a page read, as their event and state are now.
    json: BySeq<Arc<MessageJson>>,
    /// Whole pages as the API answers them, while the room does not change.
    pages: Vec<Kept>,
    /// Counts the pages answered, to find the least recently read.
    tick: u64,
}

/// A page kept for the next reader who asks for the same.
struct Kept {
    span: Span,
    /// The reader it was encoded for, if it shows reactions; `None`: the
    /// same for everyone.
    reader: Option<UserId>,
    /// [`Directory::version`](crate::directory::Directory::version) when
    /// it was encoded.
    directory: u64,
    body: Bytes,
    /// The window's `tick` when it was last answered.
    read: u64,
}

/// A map by seq. A page looks up each of its messages' state and JSON:
/// a multiplication hashes a seq (the keys are the window's own numbers,
/// never chosen by a client) instead of SipHash, which showed in the
/// history bench's profile.
type BySeq<V> = HashMap<Seq, V, std::hash::BuildHasherDefault<SeqHasher>>;

/// Hashes one `u64` (a seq) by a multiplication by 2^64 / φ, which spreads
/// consecutive numbers over the whole word (the table reads both its low
/// and its top bits).
#[derive(Default)]
struct SeqHasher(u64);

impl std::hash::Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// An event at its seq, as the log holds it (shared with the window).
pub type Logged = (Seq, Arc<EventRecord>);

/// Which messages a history page reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: Seq,
    pub to: Seq,
    pub limit: usize,
    /// The newest `limit` of the span, rather than the oldest.
    pub newest: bool,
}

impl Recent {
    pub fn new(head: Seq, capacity: usize, counts: Arc<ReadCounts>) -> Recent {
        Recent {
            head: AtomicU64::new(head.0),
            capacity,
            counts,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn head(&self) -> Seq {
        Seq(self.head.load(Ordering::SeqCst))
    }

    /// Makes the durable event at `seq` visible: it joins the window (a
    /// deletion redacting what it deletes) and the head moves to it.
    pub(crate) fn advance(&self, seq: Seq, event: &EventRecord) {
        let mut inner = lock(&self.inner);
        // A new message changes no page kept: each page ends at the head
        // it was asked at, and a message changes no other's state.
        let changes_pages = event.kind.target().is_some();
        if changes_pages {
            inner.changes += 1;
        }
        match &mut inner.window {
            Some(w) if seq == w.end.next() => {
                if changes_pages {
                    w.forget_pages(&self.counts);
                }
                w.push(seq, event);
            }
            // Not the next event (cannot happen while the committer is the
            // one writer): storage answers until a reader loads it again.
            Some(_) => inner.drop_window(&self.counts, self.capacity),
            None => {}
        }
        self.head.store(seq.0, Ordering::SeqCst);
    }

    /// Forgets the window (the store was reopened after a failure).
    pub(crate) fn reset(&self) {
        lock(&self.inner).drop_window(&self.counts, self.capacity);
    }

    /// Forgets the window if no reader used it for [`IDLE`].
    pub(crate) fn drop_if_idle(&self, now: Instant) {
        let mut inner = lock(&self.inner);
        let idle = inner
            .read_at
            .is_none_or(|at| now.saturating_duration_since(at) >= IDLE);
        if inner.window.is_some() && idle {
            inner.drop_window(&self.counts, self.capacity);
        }
    }

    /// Whether the room has a window now.
    pub fn has_window(&self) -> bool {
        lock(&self.inner).window.is_some()
    }

    /// A page of messages (only messages, each with its state), oldest
    /// first: the window's answer when it covers the span, storage's
    /// otherwise. The first page read loads the window.
    pub fn messages(&self, store: &Store, room: RoomId, span: Span) -> Result<Vec<Current>> {
        if span.from > span.to || span.limit == 0 {
            return Ok(Vec::new());
        }
        let mut page = self.cached(store, room, |w| w.messages(room, span))?;
        if page.is_none() {
            page = self.grown(store, room, span)?;
        }
        self.count(page.is_some());
        if let Some(page) = page {
            return Ok(page);
        }
        let log = store.log()?;
        let events = if span.newest {
            log.messages_newest(room, span.from, span.to, span.limit)?
        } else {
            log.messages(room, span.from, span.to, span.limit)?
        };
        let (first, last) = match (events.first(), events.last()) {
            (Some((f, _)), Some((l, _))) => (*f, *l),
            _ => return Ok(Vec::new()),
        };
        let mut states = log.states(room, first, last)?;
        Ok(events
            .into_iter()
            .map(|(seq, event)| Current {
                seq,
                event: Arc::new(event),
                state: states.remove(&seq).unwrap_or_default(),
                json: None,
            })
            .collect())
    }

    /// The page `span` as `encode` writes it for `reader` from
    /// [`Recent::messages`]: a page kept from an earlier reader if there
    /// is one for them (see the module's doc), else encoded now and kept
    /// if nothing changed meanwhile. `directory` is the directory's
    /// [`version`](crate::directory::Directory::version), read before
    /// anything `encode` looks up there.
    pub fn page(
        &self,
        store: &Store,
        room: RoomId,
        span: Span,
        reader: UserId,
        directory: u64,
        encode: impl FnOnce(&[Current]) -> Result<Vec<u8>>,
    ) -> Result<Bytes> {
        let seen = {
            let mut inner = lock(&self.inner);
            let kept = inner
                .window
                .as_mut()
                .and_then(|w| w.kept(span, reader, directory, &self.counts));
            if let Some(body) = kept {
                inner.read_at = Some(Instant::now());
                self.counts.page.fetch_add(1, Ordering::Relaxed);
                return Ok(body);
            }
            (inner.generation, inner.changes)
        };
        let page = self.messages(store, room, span)?;
        let body = Bytes::from(encode(&page)?);
        let reader = page
            .iter()
            .any(|c| !c.state.reactions.is_empty())
            .then_some(reader);
        drop(page);
        let mut inner = lock(&self.inner);
        if (inner.generation, inner.changes) == seen {
            if let Some(w) = inner.window.as_mut() {
                w.keep(
                    Kept {
                        span,
                        reader,
                        directory,
                        body: body.clone(),
                        read: 0,
                    },
                    &self.counts,
                );
            }
        }
        Ok(body)
    }

    /// Events with `from <= seq <= to`, at most `limit` of the oldest, as
    /// the log holds them. Loads the window like [`Recent::messages`].
    /// Reads nothing past the head (`to` is cut to it), and answers every
    /// seq asked for or an error: the log holds each seq from 1 to the
    /// head, so a read that comes back without one is a storage fault. It
    /// is read again, and if it stays incomplete the caller gets
    /// [`StorageError::Incomplete`], never a page with a hole (a resume
    /// replayed from one would skip messages without a sign).
    pub fn range(
        &self,
        store: &Store,
        room: RoomId,
        from: Seq,
        to: Seq,
        limit: usize,
    ) -> Result<Vec<Logged>> {
        // Never past the head: nothing newer is acknowledged, and up to it
        // the log holds every seq, which is what makes a short read a fault.
        let to = to.min(self.head());
        if from > to || limit == 0 {
            return Ok(Vec::new());
        }
        let count = (to.0 - from.0 + 1).min(limit as u64) as usize;
        let found = self.cached(store, room, |w| w.range(from, to, limit))?;
        self.count(found.is_some());
        if let Some(events) = found {
            if whole(&events, from, count) {
                return Ok(events);
            }
            // Cannot happen while the window mirrors the log; if it did,
            // storage answers and the window is read again.
            self.incomplete(room, "window", from, to, &events);
            lock(&self.inner).drop_window(&self.counts, self.capacity);
        }
        let log = store.log()?;
        for _ in 0..READS {
            let events: Vec<Logged> = log
                .range(room, from, to, limit)?
                .into_iter()
                .map(|(seq, e)| (seq, Arc::new(e)))
                .collect();
            if whole(&events, from, count) {
                return Ok(events);
            }
            self.incomplete(room, "storage", from, to, &events);
        }
        Err(StorageError::Incomplete {
            room: room.to_string(),
            from: from.0,
            to: to.0,
        })
    }

    /// Reports a read of `from..=to` that came back without every seq.
    fn incomplete<E>(&self, room: RoomId, source: &str, from: Seq, to: Seq, got: &[(Seq, E)]) {
        self.counts.incomplete.fetch_add(1, Ordering::Relaxed);
        let seqs = |i: Option<&(Seq, E)>| i.map(|(s, _)| s.0);
        tracing::error!(
            %room,
            source,
            from = from.0,
            to = to.0,
            read = got.len(),
            first = ?seqs(got.first()),
            last = ?seqs(got.last()),
            "A read of a room's log came back with seqs missing; not used."
        );
    }

    /// Message `seq` with its state, if it is a message at most `to`. Uses
    /// the window if there is one but does not load it: one message is
    /// cheaper read from storage than a window.
    pub fn message(
        &self,
        store: &Store,
        room: RoomId,
        seq: Seq,
        to: Seq,
    ) -> Result<Option<Current>> {
        if seq > to {
            return Ok(None);
        }
        if let Some(found) = self.in_window(|w| w.message(seq)) {
            self.counts.window.fetch_add(1, Ordering::Relaxed);
            return Ok(found);
        }
        self.counts.storage.fetch_add(1, Ordering::Relaxed);
        let log = store.log()?;
        match log.event(room, seq)? {
            Some(
                event @ EventRecord {
                    kind: EventKind::Message { .. },
                    ..
                },
            ) => Ok(Some(Current {
                seq,
                event: Arc::new(event),
                state: log.state(room, seq)?,
                json: None,
            })),
            _ => Ok(None),
        }
    }

    /// `read`'s answer from the window (loading it first if there is
    /// none), or `None` where the window does not cover what is asked.
    /// Not counted: see [`Recent::count`].
    fn cached<T>(
        &self,
        store: &Store,
        room: RoomId,
        read: impl Fn(&mut Window) -> Option<T>,
    ) -> Result<Option<T>> {
        let mut found = self.in_window(&read);
        if found.is_none() && self.capacity > 0 && !self.has_window() {
            self.load(store, room)?;
            found = self.in_window(&read);
        }
        Ok(found)
    }

    /// Counts a read answered from the window or from storage.
    fn count(&self, from_window: bool) {
        let source = match from_window {
            true => &self.counts.window,
            false => &self.counts.storage,
        };
        source.fetch_add(1, Ordering::Relaxed);
    }

    fn in_window<T>(&self, read: impl Fn(&mut Window) -> Option<T>) -> Option<T> {
        let mut inner = lock(&self.inner);
        let found = read(inner.window.as_mut()?);
        inner.read_at = Some(Instant::now());
        found
    }

    /// Reads the newest events from storage and makes them the
    /// window, unless an event became durable or the window was dropped
    /// meanwhile (then the next read tries again). The log is opened after
    /// the generation is read: a store reopened after a failure is reopened
    /// before the windows are dropped, so a load that passes the check read
    /// the reopened store.
    fn load(&self, store: &Store, room: RoomId) -> Result<()> {
        let (generation, head) = {
            let inner = lock(&self.inner);
            if inner.window.is_some() {
                return Ok(());
            }
            (inner.generation, self.head())
        };
        let events = store
            .log()?
            .range_newest(room, Seq(1), head, self.capacity)?;
        // The newest `capacity` seqs up to the head, or the whole log if
        // it holds fewer: every one, or no window (a window claiming seqs
        // it lacks would answer a resume without them).
        let from = Seq(head.0 - head.0.min(self.capacity as u64) + 1);
        if !whole(&events, from, (head.0 - from.0 + 1) as usize) {
            self.incomplete(room, "load", from, head, &events);
            return Ok(());
        }
        let window = Window::of(from, head, events, self.capacity);
        let mut inner = lock(&self.inner);
        if inner.window.is_none() && inner.generation == generation && self.head() == head {
            inner.window = Some(window);
            inner.read_at = Some(Instant::now());
        }
        Ok(())
    }

    /// The page read from the window after growing it down to cover
    /// `span` (the span reaches just below it), if it may grow that far.
    /// The events below the window are read from storage as in
    /// [`Recent::load`] and installed only if no event became durable and
    /// the window was not dropped or grown meanwhile.
    fn grown(&self, store: &Store, room: RoomId, span: Span) -> Result<Option<Vec<Current>>> {
        let (generation, head, from, held, limit) = {
            let inner = lock(&self.inner);
            let Some(w) = inner.window.as_ref() else {
                return Ok(None);
            };
            (
                inner.generation,
                self.head(),
                w.from,
                w.events.len(),
                w.limit,
            )
        };
        if from <= span.from.max(Seq(1)) || span.to > head {
            return Ok(None);
        }
        // Events below the window to read: down to the span's start, or,
        // for the newest messages of the span, the gap to it and twice the
        // page (edits and reactions among the messages); a page that still
        // reaches further grows the window again next time.
        let below = from.0 - 1;
        let wanted = if span.newest {
            (below - span.to.0.min(below)) as usize + 2 * span.limit
        } else {
            (from.0 - span.from.0) as usize
        };
        let wanted = wanted.min(below as usize);
        // One step at a time, as people scroll back: a page further below
        // (a jump to the room's start, say) is read from storage rather
        // than making one request read and keep all that lies between.
        let step = self.capacity.max(2 * span.limit);
        let most = self.capacity * GROW;
        if wanted == 0 || wanted > step || held + wanted > most {
            return Ok(None);
        }
        let more = (held + wanted).saturating_sub(limit) as u64;
        let beyond = &self.counts.beyond;
        // Looked at first, so a full budget costs no storage read; taken
        // only once the window is sure to grow.
        if beyond.load(Ordering::Relaxed) + more > BEYOND_MAX as u64 {
            return Ok(None);
        }
        let events = store
            .log()?
            .range_newest(room, Seq(1), Seq(below), wanted)?;
        let first = Seq(below - wanted as u64 + 1);
        if !whole(&events, first, wanted) {
            self.incomplete(room, "grow", first, Seq(below), &events);
            return Ok(None);
        }
        let mut inner = lock(&self.inner);
        if inner.generation != generation || self.head() != head {
            return Ok(None);
        }
        let Some(w) = inner.window.as_mut().filter(|w| w.from == from) else {
            return Ok(None);
        };
        if beyond.fetch_add(more, Ordering::Relaxed) + more > BEYOND_MAX as u64 {
            beyond.fetch_sub(more, Ordering::Relaxed);
            return Ok(None);
        }
        w.prepend(events, limit + more as usize);
        // `None` if the page still reaches below the grown window.
        let page = w.messages(room, span);
        inner.read_at = Some(Instant::now());
        Ok(page)
    }
}

impl Drop for Recent {
    /// A deleted room gives back what its grown window held.
    fn drop(&mut self) {
        let (counts, capacity) = (&self.counts, self.capacity);
        if let Ok(inner) = self.inner.get_mut() {
            inner.drop_window(counts, capacity);
        }
    }
}

impl Inner {
    /// Forgets the window, giving back what it grew by beyond `capacity`.
    fn drop_window(&mut self, counts: &ReadCounts, capacity: usize) {
        if let Some(mut w) = self.window.take() {
            w.forget_pages(counts);
            let grown = w.limit.saturating_sub(capacity) as u64;
            counts.beyond.fetch_sub(grown, Ordering::Relaxed);
        }
        self.generation += 1;
    }
}

impl Window {
    /// A window of events read from storage (already redacted where a
    /// deletion blanked them), its states folded from them.
    fn of(from: Seq, end: Seq, events: Vec<(Seq, EventRecord)>, limit: usize) -> Window {
        let mut w = Window {
            from,
            end,
            limit,
            events: VecDeque::with_capacity(events.len().max(1)),
            states: BySeq::default(),
            json: BySeq::default(),
            pages: Vec::new(),
            tick: 0,
        };
        for (seq, event) in events {
            w.fold(seq, &event);
            w.events.push_back((seq, Arc::new(event)));
        }
        w
    }

    /// Puts the events just below the window (ascending, ending at
    /// `from - 1`, as storage holds them) in front of it, and lets it hold
    /// `limit` events from now on. Their messages' states are folded from
    /// the events, theirs and the window's that aim at them, as a load
    /// folds them: never read from storage, whose states may already hold
    /// an event the committer has not yet made visible here.
    fn prepend(&mut self, events: Vec<(Seq, EventRecord)>, limit: usize) {
        let Some((first, _)) = events.first() else {
            return;
        };
        let (first, old_from) = (*first, self.from);
        let mut states: BySeq<MessageState> = BySeq::default();
        let aimed = |event: &EventRecord| {
            event
                .kind
                .target()
                .filter(|t| (first..old_from).contains(t))
        };
        let older = events.iter().map(|(seq, e)| (*seq, e));
        let newer = self.events.iter().map(|(seq, e)| (*seq, &**e));
        for (seq, event) in older.chain(newer) {
            if let Some(target) = aimed(event) {
                states.entry(target).or_default().apply(seq, event);
            }
        }
        self.states.extend(states);
        for (seq, event) in events.into_iter().rev() {
            self.events.push_front((seq, Arc::new(event)));
        }
        self.from = first;
        self.limit = limit;
    }

    /// The body of the page kept for `span` and `reader`, if it was encoded
    /// with the directory as it is now (one encoded before a change of the
    /// directory is forgotten).
    fn kept(
        &mut self,
        span: Span,
        reader: UserId,
        directory: u64,
        counts: &ReadCounts,
    ) -> Option<Bytes> {
        if self.pages.iter().any(|p| p.directory != directory) {
            self.pages.retain(|p| {
                let stale = p.directory != directory;
                if stale {
                    counts
                        .page_bytes
                        .fetch_sub(p.body.len() as u64, Ordering::Relaxed);
                }
                !stale
            });
        }
        self.tick += 1;
        let tick = self.tick;
        let page = self
            .pages
            .iter_mut()
            .find(|p| p.span == span && p.reader.is_none_or(|r| r == reader))?;
        page.read = tick;
        Some(page.body.clone())
    }

    /// Keeps `page`, in place of the least recently read if the room
    /// keeps [`PAGES`] already; not if all rooms' pages together would
    /// hold more than [`PAGE_BYTES_MAX`].
    fn keep(&mut self, mut page: Kept, counts: &ReadCounts) {
        let same = |p: &Kept| {
            p.span == page.span && p.reader == page.reader && p.directory == page.directory
        };
        if self.pages.iter().any(same) {
            // Another reader kept it meanwhile.
            return;
        }
        let size = page.body.len() as u64;
        if counts.page_bytes.fetch_add(size, Ordering::Relaxed) + size > PAGE_BYTES_MAX {
            counts.page_bytes.fetch_sub(size, Ordering::Relaxed);
            return;
        }
        self.tick += 1;
        page.read = self.tick;
        if self.pages.len() >= PAGES {
            let oldest = (0..self.pages.len()).min_by_key(|&i| self.pages[i].read);
            if let Some(i) = oldest {
                let gone = self.pages.swap_remove(i);
                counts
                    .page_bytes
                    .fetch_sub(gone.body.len() as u64, Ordering::Relaxed);
            }
        }
        self.pages.push(page);
    }

    /// Forgets every kept page (the room changed, or the window goes).
    fn forget_pages(&mut self, counts: &ReadCounts) {
        let bytes: usize = self.pages.drain(..).map(|p| p.body.len()).sum();
        counts.page_bytes.fetch_sub(bytes as u64, Ordering::Relaxed);
    }

    /// Appends the next durable event; the oldest leave past `limit`.
    fn push(&mut self, seq: Seq, event: &EventRecord) {
        if let EventKind::Delete { target, .. } = event.kind {
            self.redact(target);
        }
        self.fold(seq, event);
        self.events.push_back((seq, Arc::new(event.clone())));
        self.end = seq;
        while self.events.len() > self.limit {
            if let Some((gone, _)) = self.events.pop_front() {
                self.states.remove(&gone);
                self.json.remove(&gone);
                self.from = gone.next();
            }
        }
    }

    /// Applies an event to the state of the message it aims at, if that
    /// message is in the window.
    fn fold(&mut self, seq: Seq, event: &EventRecord) {
        if let Some(target) = event.kind.target().filter(|t| *t >= self.from) {
            self.states.entry(target).or_default().apply(seq, event);
            self.json.remove(&target);
        }
    }

    /// Blanks message `target` and each of its edits, as the committer's
    /// redaction did in storage (the message may be older than the window;
    /// its edits in the window are blanked all the same).
    fn redact(&mut self, target: Seq) {
        for (seq, event) in self.events.iter_mut() {
            let aims = match &event.kind {
                EventKind::Message { .. } => *seq == target,
                EventKind::Edit { target: t, .. } => *t == target,
                EventKind::Delete { .. } | EventKind::Reaction { .. } => false,
            };
            if aims {
                let mut blank = EventRecord::clone(event);
                blank.kind = blank.kind.redacted();
                *event = Arc::new(blank);
                self.json.remove(seq);
            }
        }
    }

    fn current(&self, seq: Seq, event: Arc<EventRecord>) -> Current {
        Current {
            seq,
            event,
            state: self.states.get(&seq).cloned().unwrap_or_default(),
            json: None,
        }
    }

    /// As [`Window::current`], with the message's JSON (encoded now if no
    /// page read it since it last changed).
    fn current_json(&mut self, room: RoomId, seq: Seq, event: Arc<EventRecord>) -> Current {
        let mut current = self.current(seq, event);
        current.json = match self.json.get(&seq) {
            Some(json) => Some(json.clone()),
            None => {
                // The author and the reader are among the parts left out:
                // any will do.
                let nobody = AuthorView {
                    id: UserId::NIL,
                    username: "",
                    deleted: false,
                };
                MessageView::of(room, seq, &current.event, nobody).map(|view| {
                    let json = Arc::new(MessageJson::of(
                        &view.with_state(&current.state, UserId::NIL),
                    ));
                    self.json.insert(seq, json.clone());
                    json
                })
            }
        };
        current
    }

    /// The position of the first event at or after `seq`.
    fn index(&self, seq: Seq) -> usize {
        self.events.partition_point(|(s, _)| *s < seq)
    }

    /// Whether the window holds every event of `from..=to`.
    fn covers(&self, from: Seq, to: Seq) -> bool {
        self.from <= from && to <= self.end
    }

    /// As [`RoomLog::messages`](crate::storage::log::RoomLog::messages) and `messages_newest` with the
    /// states, if the window holds every event those would look at.
    /// Each message comes with its JSON.
    fn messages(&mut self, room: RoomId, span: Span) -> Option<Vec<Current>> {
        if span.to > self.end {
            return None;
        }
        let mut found: Vec<Logged> = Vec::with_capacity(span.limit.min(self.events.len()));
        if span.newest {
            // Walking down from `to`: full before the window's start, or
            // the whole span in the window.
            let upto = self.index(span.to.next());
            for (seq, event) in self.events.range(..upto).rev() {
                if found.len() == span.limit || *seq < span.from {
                    break;
                }
                if is_message(event) {
                    found.push((*seq, event.clone()));
                }
            }
            if found.len() < span.limit && !self.covers(span.from, span.to) {
                return None;
            }
            found.reverse();
        } else {
            if !self.covers(span.from, span.to) {
                return None;
            }
            for (seq, event) in self.events.range(self.index(span.from)..) {
                if found.len() == span.limit || *seq > span.to {
                    break;
                }
                if is_message(event) {
                    found.push((*seq, event.clone()));
                }
            }
        }
        Some(
            found
                .into_iter()
                .map(|(seq, event)| self.current_json(room, seq, event))
                .collect(),
        )
    }

    /// As [`RoomLog::range`](crate::storage::log::RoomLog::range), if the window holds `from..=to`.
    fn range(&self, from: Seq, to: Seq, limit: usize) -> Option<Vec<Logged>> {
        if !self.covers(from, to) {
            return None;
        }
        Some(
            self.events
                .range(self.index(from)..)
                .take_while(|(seq, _)| *seq <= to)
                .take(limit)
                .map(|(seq, e)| (*seq, e.clone()))
                .collect(),
        )
    }

    /// Message `seq` with its state (`Some(None)`: not a message), if the
    /// window holds `seq`.
    fn message(&self, seq: Seq) -> Option<Option<Current>> {
        if !self.covers(seq, seq) {
            return None;
        }
        let at = self.index(seq);
        Some(
            self.events
                .get(at)
                .filter(|(s, e)| *s == seq && is_message(e))
                .map(|(s, e)| self.current(*s, e.clone())),
        )
    }
}

fn is_message(event: &EventRecord) -> bool {
    matches!(event.kind, EventKind::Message { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Durability;
    use crate::ids::{EventId, Millis};
    use crate::storage::log::AppendBatch;

    /// Message `seq` of `author`, as a test writes it.
    fn said(author: UserId, seq: u64) -> EventKind {
        EventKind::Message {
            author,
            body: format!("message {seq}"),
            client_id: None,
            reply_to: None,
            mentions: Vec::new(),
            mentions_room: false,
            files: Vec::new(),
        }
    }

    /// Each message of a page as `10 × seq + its emoji`, a stand-in
    /// encoding that shows what a page's reactions do.
    fn encoded(page: &[Current]) -> Result<Vec<u8>> {
        Ok(page
            .iter()
            .map(|c| (c.seq.0 * 10) as u8 + c.state.reactions.len() as u8)
            .collect())
    }

    /// A page encoded while a reaction became visible may miss it: it is
    /// answered to its reader, never kept for the next. A new message
    /// leaves kept pages as they are.
    #[test]
    fn a_page_encoded_while_the_room_changed_is_not_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 16 << 20, Durability::Flush).expect("store");
        let (room, ann) = (RoomId::generate(), UserId::generate());
        let log = store.log().expect("log");
        let append = |seq: u64, kind: EventKind| {
            let event = EventRecord {
                id: EventId::generate(),
                at: Millis::now(),
                kind,
            };
            let mut batch = AppendBatch::default();
            batch.push(room, Seq(seq), &event);
            log.apply(batch).expect("append");
            event
        };
        let message = |seq: u64| append(seq, said(ann, seq));
        for seq in 1..=3 {
            message(seq);
        }
        let counts = Arc::new(ReadCounts::default());
        let kept = || counts.page.load(Ordering::Relaxed);
        let recent = Recent::new(Seq(3), 8, counts.clone());
        let span = |head: u64, limit: usize| Span {
            from: Seq(1),
            to: Seq(head),
            limit,
            newest: true,
        };
        let page = |head: u64, limit: usize| {
            recent
                .page(&store, room, span(head, limit), ann, 0, encoded)
                .expect("page")
        };
        // Loaded, then kept for the next reader.
        assert_eq!(&page(3, 50)[..], [10, 20, 30]);
        assert_eq!(&page(3, 50)[..], [10, 20, 30]);
        assert_eq!(kept(), 1);

        // The committer makes a reaction to 2 visible between reading a
        // page and keeping it: that page is its reader's only.
        let mut moved = false;
        let body = recent
            .page(&store, room, span(3, 2), ann, 0, |page| {
                let reaction = EventKind::Reaction {
                    target: Seq(2),
                    by: ann,
                    emoji: "👍".into(),
                    on: true,
                    client_id: None,
                };
                recent.advance(Seq(4), &append(4, reaction));
                moved = true;
                encoded(page)
            })
            .expect("page");
        assert!(moved);
        assert_eq!(&body[..], [20, 30]);
        assert_eq!(&page(3, 2)[..], [21, 30]);
        // And the reaction forgot the page kept before it.
        assert_eq!(&page(3, 50)[..], [10, 21, 30]);
        assert_eq!(kept(), 1, "nothing kept was answered");
        assert_eq!(&page(3, 2)[..], [21, 30]);
        assert_eq!(kept(), 2);

        // A new message: the pages kept stay, the newest page shows it.
        recent.advance(Seq(5), &message(5));
        assert_eq!(&page(3, 2)[..], [21, 30]);
        assert_eq!(&page(3, 50)[..], [10, 21, 30]);
        assert_eq!(kept(), 4);
        assert_eq!(&page(5, 50)[..], [10, 21, 30, 50]);
        assert_eq!(kept(), 4);

        // A changed directory: pages encoded before are not answered.
        let with = |directory: u64| {
            recent
                .page(&store, room, span(5, 50), ann, directory, encoded)
                .expect("page")
        };
        assert_eq!(&with(1)[..], [10, 21, 30, 50]);
        assert_eq!(kept(), 4);
        with(1);
        assert_eq!(kept(), 5);
        assert!(counts.page_bytes.load(Ordering::Relaxed) > 0);
        drop(recent);
        assert_eq!(counts.page_bytes.load(Ordering::Relaxed), 0, "given back");
    }

    /// A log read back with a seq missing below the head (a storage fault)
    /// gives no window and no page with a hole: a resume replayed from one
    /// would go live past the messages it skipped. Whole spans still read.
    #[test]
    fn a_log_read_back_with_a_hole_is_never_answered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 16 << 20, Durability::Flush).expect("store");
        let (room, ann) = (RoomId::generate(), UserId::generate());
        let log = store.log().expect("log");
        let mut batch = AppendBatch::default();
        for seq in (1..=10).filter(|s| *s != 5) {
            let event = EventRecord {
                id: EventId::generate(),
                at: Millis::now(),
                kind: said(ann, seq),
            };
            batch.push(room, Seq(seq), &event);
        }
        log.apply(batch).expect("append");
        for capacity in [0, 4, 64] {
            let counts = Arc::new(ReadCounts::default());
            let recent = Recent::new(Seq(10), capacity, counts.clone());
            let read = recent.range(&store, room, Seq(3), Seq(10), 50);
            assert!(
                matches!(
                    read,
                    Err(StorageError::Incomplete {
                        from: 3,
                        to: 10,
                        ..
                    })
                ),
                "window of {capacity}: {read:?}"
            );
            // A window of 64 would hold seq 5; it is not installed. One of
            // 4 holds 7..=10, all there, and answers what it covers.
            assert_eq!(recent.has_window(), capacity == 4, "window of {capacity}");
            let seqs = |r: Result<Vec<Logged>>| -> Vec<u64> {
                r.expect("a whole span").iter().map(|(s, _)| s.0).collect()
            };
            assert_eq!(
                seqs(recent.range(&store, room, Seq(6), Seq(10), 3)),
                [6, 7, 8]
            );
            assert_eq!(
                seqs(recent.range(&store, room, Seq(1), Seq(4), 50)),
                [1, 2, 3, 4]
            );
            // Past the head is cut to it.
            assert_eq!(
                seqs(recent.range(&store, room, Seq(9), Seq(99), 50)),
                [9, 10]
            );
            assert!(counts.incomplete.load(Ordering::Relaxed) >= READS as u64);
        }
    }
}
