//! The group committer: the one writer of room logs.
//!
//! Sends, edits, deletions and reactions from every connection and HTTP
//! request queue here. The committer
//! thread takes everything waiting (up to `group_commit_max`), assigns each
//! room's next seqs, writes events and heads in one atomic batch,
//! flushes once for the whole group, and only then acknowledges each sender
//! and publishes each event to the hub. One flush is shared by every message
//! in the group, so durability costs little under load.
//!
//! Because a single thread assigns seqs and publishes in order, each room's
//! events reach every subscriber in seq order with no gap. Because it alone
//! writes, it is also where a change is judged against the message it aims
//! at (is it still there, whose is it, is that reaction already on it):
//! two racing deletions cannot both happen.

use std::collections::HashMap as StdHashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use tokio::sync::{mpsc, oneshot};

use crate::directory::{author_view, Directory};
use crate::error::ApiError;
use crate::hub::{Hub, Outbox};
use crate::ids::{ClientId, EventId, FileId, Millis, RoomId, Seq, UserId};
use crate::protocol::{AuthorView, EventView, MessageView, ServerFrame};
use crate::rooms::Rooms;
use crate::search::Feed;
use crate::storage::log::{AppendBatch, RoomLog};
use crate::storage::records::{EventKind, EventRecord, FileRef, MessageState};
use crate::storage::Store;
use crate::views;
use crate::wire::Encoded;

/// The committer's maps, keyed by ids and client ids: hashed with foldhash
/// (seeded per process), which costs a fraction of SipHash per message.
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;

/// A change to append to a room's log.
pub struct Append {
    pub room: RoomId,
    /// Who makes it: the sender, editor, deleter or reactor.
    pub author: UserId,
    pub client_id: Option<ClientId>,
    pub change: Change,
    pub reply: Reply,
    /// When the action took the request, for the ack latency metric.
    pub received: Instant,
    /// The event's id and time when it is restored from an export
    /// (`hearth import`); `None` for a new event: a fresh id, now.
    pub origin: Option<(EventId, Millis)>,
}

/// What an append does.
pub enum Change {
    /// A new message (its inputs already checked by the action).
    Message {
        body: String,
        reply_to: Option<Seq>,
        mentions: Vec<UserId>,
        mentions_room: bool,
        /// Attached files, checked by the action to be the author's own
        /// uploads to this room (checked again here: one may be freed
        /// meanwhile).
        files: Vec<FileRef>,
    },
    /// A new body for the author's own message.
    Edit { target: Seq, body: String },
    /// A redaction; `moderator` may delete others' messages.
    Delete { target: Seq, moderator: bool },
    /// A reaction put on or taken back.
    React {
        target: Seq,
        emoji: String,
        on: bool,
    },
}

/// Where the outcome of an append goes.
pub enum Reply {
    /// An `ack` (or `error`) frame pushed straight onto the sender's
    /// connection, so a WebSocket reader never waits for the disk.
    Socket(Arc<Outbox>),
    /// The HTTP handler waiting for the stored event (`None`: the change
    /// changed nothing, as a repeated deletion or reaction).
    Request(oneshot::Sender<Result<Option<Committed>, ApiError>>),
}

/// A stored event, as the sender learns of it.
#[derive(Debug, Clone)]
pub struct Committed {
    pub room: RoomId,
    pub seq: Seq,
    pub event: EventRecord,
    /// True when the `client_id` was seen before: nothing new was stored.
    pub duplicate: bool,
}

/// Statistics the committer keeps, for metrics and the benchmark.
#[derive(Default, Debug)]
pub struct CommitStats {
    pub groups: std::sync::atomic::AtomicU64,
    pub messages: std::sync::atomic::AtomicU64,
    pub flush_micros: std::sync::atomic::AtomicU64,
    pub histograms: CommitHistograms,
    /// Whether the last group commit failed: the store cannot take writes
    /// (sled keeps refusing after an I/O error until it is reopened, which
    /// the committer does once the disk takes writes again), so `/readyz`
    /// reports it.
    pub failing: std::sync::atomic::AtomicBool,
}

enum Op {
    Append(Append),
    /// Frees uploads older than the given time that no message holds, and
    /// blobs no file uses; answers how many files were freed.
    SweepFiles(Millis, oneshot::Sender<usize>),
    /// The store refuses writes: reopen it if the disk takes writes again.
    Recover,
    /// Commit what is queued, then stop.
    Stop,
}

/// The sending side of the committer's queue.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Op>,
    pub stats: Arc<CommitStats>,
}

impl Committer {
    /// Starts the committer thread. It stops once every `Committer` is dropped
    /// and the queue is drained.
    pub fn start(
        store: Store,
        rooms: Arc<Rooms>,
        directory: Arc<Directory>,
        hub: Arc<Hub>,
        index: Feed,
        push: crate::push::Feed,
        max_group: usize,
    ) -> (Committer, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(max_group * 4);
        let stats = Arc::new(CommitStats::default());
        let worker = Worker {
            store,
            rooms,
            directory,
            hub,
            index,
            push,
            max_group,
            heads: HashMap::default(),
            unpublished: Vec::new(),
            released: Vec::new(),
            stats: stats.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("hearth-commit".into())
            .spawn(move || worker.run(rx))
            .expect("spawning a thread at start-up only fails when the OS is out of threads");
        let weak = tx.downgrade();
        std::thread::Builder::new()
            .name("hearth-storage-watch".into())
            .spawn(move || watch(weak))
            .expect("spawning a thread at start-up only fails when the OS is out of threads");
        (Committer { tx, stats }, handle)
    }

    /// Queues an append; waits only when the queue is full (back-pressure).
    pub async fn submit(&self, append: Append) -> Result<(), ApiError> {
        self.tx
            .send(Op::Append(append))
            .await
            .map_err(|_| ApiError::ShuttingDown)
    }

    /// Frees files no message holds that were uploaded before `before`
    /// (run on the committer, the only writer of which messages hold which
    /// files, so a file is never freed under a message being stored).
    pub async fn sweep_files(&self, before: Millis) -> Result<usize, ApiError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Op::SweepFiles(before, tx))
            .await
            .map_err(|_| ApiError::ShuttingDown)?;
        rx.await.map_err(|_| ApiError::ShuttingDown)
    }

    /// Asks the committer to commit what is queued and stop; join its
    /// thread to wait for that.
    pub async fn stop(&self) {
        let _ = self.tx.send(Op::Stop).await;
    }
}

struct Worker {
    store: Store,
    rooms: Arc<Rooms>,
    directory: Arc<Directory>,
    hub: Arc<Hub>,
    /// The search index's queue: every durable message, edit and deletion
    /// is handed over after it is published, without waiting.
    index: Feed,
    /// The push task's queue: every durable new message is handed over
    /// after it is published, without waiting.
    push: crate::push::Feed,
    max_group: usize,
    /// Next-seq bookkeeping: the last seq assigned per room (may be ahead
    /// of the durable head while a group is in flight).
    heads: HashMap<RoomId, Seq>,
    /// Events written but not yet known durable (a flush failed); they are
    /// published after the next successful flush so subscribers see no gap.
    unpublished: Vec<(RoomId, Seq, EventRecord, String)>,
    /// Files whose message this group redacts: freed once the group is
    /// durable, if no other message holds them.
    released: Vec<FileId>,
    stats: Arc<CommitStats>,
}

enum Outcome {
    New(Seq, EventRecord),
    Duplicate(Seq, EventRecord),
    /// Nothing to store: the change was already so.
    Unchanged,
    Failed(ApiError),
}

/// Most distinct emoji on one message.
pub const MAX_REACTIONS: usize = 20;

/// A message that changes in this group: as read from the log, then as
/// this group's earlier events left it.
struct Target {
    message: EventRecord,
    state: MessageState,
}

impl Worker {
    fn run(mut self, mut rx: mpsc::Receiver<Op>) {
        if !crate::priority::batch() {
            tracing::debug!("The committer stays in the normal scheduling class.");
        }
        let mut group = Vec::with_capacity(self.max_group);
        let mut stopping = false;
        while !stopping {
            match rx.blocking_recv() {
                Some(Op::Append(a)) => group.push(a),
                Some(Op::Recover) => self.recover(),
                Some(Op::SweepFiles(before, done)) => {
                    let _ = done.send(self.sweep_files(before));
                }
                Some(Op::Stop) | None => stopping = true,
            }
            while group.len() < self.max_group {
                match rx.try_recv() {
                    Ok(Op::Append(a)) => group.push(a),
                    Ok(Op::Recover) => self.recover(),
                    Ok(Op::SweepFiles(before, done)) => {
                        let _ = done.send(self.sweep_files(before));
                    }
                    Ok(Op::Stop) => stopping = true,
                    Err(_) => break,
                }
            }
            if !group.is_empty() {
                self.commit(&mut group);
            }
        }
        // Appends queued behind the stop fail with `shutting_down` as the
        // receiver drops; nothing is acknowledged that was not committed.
        tracing::debug!("Committer stopped.");
    }

    /// Commits one group in three phases: [`Worker::plan`] gives each new
    /// message its seq (and finds repeated `client_id`s), [`Worker::apply`]
    /// writes the batch and flushes it once, [`Worker::settle`] moves
    /// heads, acknowledges and publishes what is durable.
    fn commit(&mut self, group: &mut Vec<Append>) {
        let log = match self.store.log() {
            Ok(log) => log,
            Err(e) => {
                tracing::error!(error = %e, "Group commit failed; sends get storage_failed.");
                self.stats.failing.store(true, Relaxed);
                for a in group.drain(..) {
                    let failed = Outcome::Failed(ApiError::StorageFailed);
                    reply(
                        a.reply,
                        a.room,
                        a.client_id.as_ref().map(ClientId::as_str),
                        failed,
                    );
                }
                return;
            }
        };
        let (batch, mut outcomes) = self.plan(&log, group);
        self.apply(&log, batch, group, &mut outcomes);
        // Before the acks: whoever learns of a deletion finds its files
        // gone too.
        let released = std::mem::take(&mut self.released);
        if !self.stats.failing.load(Relaxed) {
            self.free_files(&log, released);
        }
        self.settle(group, outcomes);
    }

    /// Frees each file no message holds any more: its record, and its blob
    /// once no other file has the same bytes.
    fn free_files(&self, log: &RoomLog, files: Vec<FileId>) -> usize {
        let mut freed = 0;
        for id in files {
            let free = log.file_holders(id).map(|h| h.is_empty());
            match free.and_then(|free| {
                if free {
                    self.store.remove_file(id)
                } else {
                    Ok(None)
                }
            }) {
                Ok(Some(_)) => freed += 1,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(file = %id, error = %e, "Could not free a file; the sweep will.")
                }
            }
        }
        freed
    }

    /// Frees uploads made before `before` that no message holds, and blobs
    /// that no file uses (left by a crash mid-upload).
    fn sweep_files(&self, before: Millis) -> usize {
        let Ok(log) = self.store.log() else {
            return 0;
        };
        let old: Vec<FileId> = self
            .store
            .all_files()
            .filter_map(|f| f.ok())
            .filter(|f| f.created_at < before)
            .map(|f| f.file.id)
            .collect();
        let freed = self.free_files(&log, old);
        for (hash, _) in self.store.blobs_on_disk() {
            if let Err(e) = self.store.remove_unused_blob(&hash) {
                tracing::warn!(error = %e, "Could not remove an unused blob.");
            }
        }
        if freed > 0 {
            tracing::info!(freed, "Unattached uploads freed.");
        }
        freed
    }

    /// Decides what each append becomes: a new event with the room's next
    /// seq (and, for a change to a message, that message's new state and
    /// any redaction), a duplicate of a stored (or same-group) `client_id`,
    /// nothing, or a failure. Writes nothing. A new message's text, mentions
    /// and files move into its event: nothing reads an append's change after.
    fn plan(&mut self, log: &RoomLog, group: &mut [Append]) -> (AppendBatch, Vec<Outcome>) {
        let mut batch = AppendBatch::default();
        let mut outcomes = Vec::with_capacity(group.len());
        // client ids claimed earlier in this same group
        let mut claimed: HashMap<(RoomId, UserId, &str), usize> = HashMap::default();
        // messages changed in this group, and the events this group made
        let mut targets: HashMap<(RoomId, Seq), Target> = HashMap::default();
        let mut made: HashMap<(RoomId, Seq), EventRecord> = HashMap::default();
        let now = Millis::now();
        for (i, a) in group.iter_mut().enumerate() {
            let Append {
                room,
                author,
                client_id,
                change,
                origin,
                ..
            } = a;
            let (room, author) = (*room, *author);
            let client_id: &Option<ClientId> = client_id;
            let seen = client_id.as_ref().and_then(|c| {
                let key = (room, author, c.as_str());
                seen_before(&self.rooms, log, &mut claimed, &outcomes, i, key)
            });
            if let Some(seen) = seen {
                outcomes.push(seen);
                continue;
            }
            let client_id = client_id.as_ref().map(|c| c.as_str().to_string());
            let kind = match change {
                Change::Message {
                    body,
                    reply_to,
                    mentions,
                    mentions_room,
                    files,
                } => self.still_stored(files).map(|()| {
                    Some(EventKind::Message {
                        author,
                        body: std::mem::take(body),
                        client_id,
                        reply_to: *reply_to,
                        mentions: std::mem::take(mentions),
                        mentions_room: *mentions_room,
                        files: std::mem::take(files),
                    })
                }),
                change => Self::target(log, &mut targets, room, change)
                    .and_then(|target| judge(target, author, change, client_id)),
            };
            let kind = match kind {
                Ok(Some(kind)) => kind,
                Ok(None) => {
                    outcomes.push(Outcome::Unchanged);
                    continue;
                }
                Err(e) => {
                    outcomes.push(Outcome::Failed(e));
                    continue;
                }
            };
            let seq = match self.next_seq(room) {
                Ok(s) => s,
                Err(e) => {
                    outcomes.push(Outcome::Failed(e));
                    continue;
                }
            };
            let (id, at) = origin.unwrap_or_else(|| (EventId::generate(), now));
            let event = EventRecord { id, at, kind };
            batch.push(room, seq, &event);
            if let Some(target_seq) = event.kind.target() {
                if let Some(t) = targets.get_mut(&(room, target_seq)) {
                    let was_deleted = t.state.deleted;
                    t.state.apply(seq, &event);
                    batch.put_state(room, target_seq, &t.state);
                    if t.state.deleted && !was_deleted {
                        redact(log, &made, &mut batch, room, target_seq, t);
                        if let EventKind::Message { files, .. } = &t.message.kind {
                            batch.release_files(room, target_seq, files);
                            self.released.extend(files.iter().map(|f| f.id));
                        }
                    }
                }
            }
            // Only an edit can be redacted later in the same group; a
            // message is not copied here (the common case stays one clone).
            if matches!(event.kind, EventKind::Edit { .. }) {
                made.insert((room, seq), event.clone());
            }
            outcomes.push(Outcome::New(seq, event));
        }
        (batch, outcomes)
    }

    /// Every attached file still has its record (none was freed since the
    /// action checked): `invalid_file` otherwise.
    fn still_stored(&self, files: &[FileRef]) -> Result<(), ApiError> {
        for f in files {
            if self.store.file(f.id)?.is_none() {
                return Err(ApiError::InvalidFile);
            }
        }
        Ok(())
    }

    /// The message a change aims at, read once per group.
    fn target<'t>(
        log: &RoomLog,
        targets: &'t mut HashMap<(RoomId, Seq), Target>,
        room: RoomId,
        change: &Change,
    ) -> Result<&'t Target, ApiError> {
        let seq = match change {
            Change::Message { .. } => return Err(ApiError::Internal),
            Change::Edit { target, .. }
            | Change::Delete { target, .. }
            | Change::React { target, .. } => *target,
        };
        if let std::collections::hash_map::Entry::Vacant(slot) = targets.entry((room, seq)) {
            let message = log
                .event(room, seq)?
                .filter(|e| matches!(e.kind, EventKind::Message { .. }))
                .ok_or(ApiError::MessageNotFound)?;
            let state = log.state(room, seq)?;
            slot.insert(Target { message, state });
        }
        targets.get(&(room, seq)).ok_or(ApiError::Internal)
    }

    /// Writes the batch and flushes once. If that fails, nothing new is
    /// acknowledged: outcomes that are not durable become failures, and a
    /// batch that reached the store waits (unpublished) for a later flush.
    fn apply(
        &mut self,
        log: &RoomLog,
        batch: AppendBatch,
        group: &[Append],
        outcomes: &mut [Outcome],
    ) {
        let wrote = batch.len;
        let started = Instant::now();
        // A group of only duplicates still flushes while earlier events wait
        // for a successful flush: a duplicate's ack may name one of them.
        let durable = if wrote == 0 && self.unpublished.is_empty() {
            Ok(())
        } else {
            let applied = if wrote > 0 {
                log.apply(batch).map_err(|e| (e, false))
            } else {
                Ok(())
            };
            applied.and_then(|()| self.store.flush().map_err(|e| (e, true)))
        };
        if wrote > 0 {
            self.stats.groups.fetch_add(1, Relaxed);
            self.stats.messages.fetch_add(wrote as u64, Relaxed);
            self.stats
                .flush_micros
                .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
            self.stats.histograms.observe(wrote, started.elapsed());
        }
        self.stats.failing.store(durable.is_err(), Relaxed);
        let Err((e, applied)) = durable else {
            // Earlier events whose flush had failed are durable now too.
            for (room, seq, event, name) in std::mem::take(&mut self.unpublished) {
                self.rooms.advance(room, seq, &event);
                self.publish(room, seq, &event, &name);
            }
            return;
        };
        tracing::error!(error = %e, messages = wrote, "Group commit failed; sends get storage_failed.");
        if applied {
            // The batch is in the store but not known durable: keep its
            // seqs, publish once a later flush succeeds, and let retries
            // find it through its client_id.
            for (a, o) in group.iter().zip(outcomes.iter()) {
                if let Outcome::New(seq, event) = o {
                    let name = self.author_name(a.author);
                    self.unpublished.push((a.room, *seq, event.clone(), name));
                }
            }
        } else {
            // Nothing was written: forget the seqs handed out.
            for a in group {
                self.heads.remove(&a.room);
            }
        }
        for (a, o) in group.iter().zip(outcomes.iter_mut()) {
            // New events are not durable; nor is a duplicate of one still
            // waiting past its room's durable head.
            let undurable = match o {
                Outcome::New(..) => true,
                Outcome::Duplicate(seq, _) => {
                    self.rooms.get(a.room).is_none_or(|r| *seq > r.head())
                }
                Outcome::Unchanged | Outcome::Failed(_) => false,
            };
            if undurable {
                *o = Outcome::Failed(ApiError::StorageFailed);
            }
        }
    }

    /// Everything left in `outcomes` is on disk. Per message: move the
    /// room's head and tally (so history and unread counts read after the
    /// ack have it; see [`Rooms::advance`]), ack, then publish. The head
    /// always moves before the event is published, so a connection that
    /// reads the head after subscribing either replays the event or gets
    /// it live.
    fn settle(&mut self, group: &mut Vec<Append>, outcomes: Vec<Outcome>) {
        for (a, outcome) in group.drain(..).zip(outcomes) {
            if let Outcome::New(seq, event) = &outcome {
                self.rooms.advance(a.room, *seq, event);
                self.stats
                    .histograms
                    .ack_seconds
                    .observe(a.received.elapsed().as_secs_f64());
            }
            let client_id = a.client_id.as_ref().map(ClientId::as_str);
            // A socket's ack needs no copy of the event; an HTTP answer
            // takes the event, so the copy to publish is made for it alone.
            let published = match a.reply {
                Reply::Socket(outbox) => {
                    ack(&outbox, a.room, client_id, &outcome);
                    match outcome {
                        Outcome::New(seq, event) => Some((seq, event)),
                        _ => None,
                    }
                }
                Reply::Request(tx) => {
                    let published = match &outcome {
                        Outcome::New(seq, event) => Some((*seq, event.clone())),
                        _ => None,
                    };
                    answer(tx, a.room, outcome);
                    published
                }
            };
            if let Some((seq, event)) = published {
                let name = self.author_name(a.author);
                self.publish(a.room, seq, &event, &name);
            }
        }
    }

    /// Reopens a store that refuses writes, once the disk takes a write
    /// again, then settles what was in flight: events whose flush failed
    /// but that reached the files are made visible and published in order;
    /// those that did not are forgotten (they were never acknowledged) and
    /// their seqs handed out again.
    fn recover(&mut self) {
        if self.store.healthy() {
            return;
        }
        if let Err(e) = probe_write(self.store.dir()) {
            tracing::debug!(error = %e, "The disk still refuses writes.");
            return;
        }
        if let Err(e) = self.store.reopen() {
            tracing::warn!(error = %e, "Could not reopen the database; will try again.");
            return;
        }
        self.heads.clear();
        self.rooms.reset_windows();
        // An account change whose flush failed may have reached the files:
        // the directory follows what is stored.
        for user in self.store.users().flatten() {
            self.directory.put(&user);
        }
        let unpublished = std::mem::take(&mut self.unpublished);
        let (mut kept, mut dropped) = (0, 0);
        for (room, seq, event, name) in unpublished {
            let stored = self
                .store
                .log()
                .and_then(|log| log.event(room, seq))
                .ok()
                .flatten();
            if stored.is_some_and(|e| e.id == event.id) {
                self.rooms.advance(room, seq, &event);
                self.publish(room, seq, &event, &name);
                kept += 1;
            } else {
                dropped += 1;
            }
        }
        let healthy = self.store.healthy();
        self.stats.failing.store(!healthy, Relaxed);
        tracing::warn!(
            healthy,
            kept,
            dropped,
            "Database reopened after a storage failure; messages whose flush had failed: \
             {kept} were on disk and are now delivered, {dropped} were not stored."
        );
    }

    fn next_seq(&mut self, room: RoomId) -> Result<Seq, ApiError> {
        let head = match self.heads.get(&room) {
            Some(h) => *h,
            None => self.store.log()?.head(room)?,
        };
        let seq = head.next();
        self.heads.insert(room, seq);
        Ok(seq)
    }

    fn author_name(&self, author: UserId) -> String {
        let summary = self.directory.get(author);
        author_view(author, summary.as_deref()).username.to_string()
    }

    /// Delivers a durable event to the room: a message as a `message`
    /// frame (with the message it replies to, as it reads now), anything
    /// else as an `event` frame.
    fn publish(&self, room: RoomId, seq: Seq, event: &EventRecord, actor_name: &str) {
        let actor = || AuthorView {
            id: event.kind.actor(),
            username: actor_name,
            deleted: false,
        };
        let frame = if let Some(message) = MessageView::of(room, seq, event, actor()) {
            let reply = match &event.kind {
                EventKind::Message {
                    reply_to: Some(to), ..
                } => self
                    .store
                    .log()
                    .and_then(|log| views::reply(&log, &self.directory, room, *to))
                    .ok()
                    .flatten(),
                _ => None,
            };
            ServerFrame::Message {
                message: message.with_reply(reply),
            }
        } else if let Some(event) = EventView::of(room, seq, event, actor()) {
            ServerFrame::Event { event }
        } else {
            return;
        };
        let encoded = Encoded::new(&frame);
        self.hub.publish(room, seq, &encoded);
        match &event.kind {
            EventKind::Message {
                author,
                body,
                mentions,
                mentions_room,
                ..
            } => {
                self.index.touched(room, seq, seq);
                self.push
                    .message(room, seq, *author, body, mentions, *mentions_room);
            }
            EventKind::Edit { target, .. } | EventKind::Delete { target, .. } => {
                self.index.touched(room, seq, *target)
            }
            EventKind::Reaction { .. } => {}
        }
    }
}

/// What an append whose `client_id` was seen before becomes: the same
/// outcome as the first (earlier in this group, or stored within the room's
/// dedup window), so a retry is never stored twice. `None` for a first
/// use, which is claimed here.
fn seen_before<'g>(
    rooms: &Rooms,
    log: &RoomLog,
    claimed: &mut HashMap<(RoomId, UserId, &'g str), usize>,
    outcomes: &[Outcome],
    i: usize,
    key: (RoomId, UserId, &'g str),
) -> Option<Outcome> {
    let (room, author, cid) = key;
    if let Some(&j) = claimed.get(&key) {
        return Some(match &outcomes[j] {
            Outcome::New(s, e) | Outcome::Duplicate(s, e) => Outcome::Duplicate(*s, e.clone()),
            Outcome::Unchanged => Outcome::Unchanged,
            Outcome::Failed(_) => Outcome::Failed(ApiError::StorageFailed),
        });
    }
    claimed.insert(key, i);
    // A room removed meanwhile: the append fails where it targets the room.
    let room = rooms.get(room)?;
    match room.durable_duplicate(log, author, cid) {
        Ok(None) => None,
        Ok(Some((seq, e))) => Some(Outcome::Duplicate(seq, e)),
        Err(e) => Some(Outcome::Failed(e.into())),
    }
}

/// Decides what a change to `target` makes: the event to append, nothing
/// (`None`: already so), or why it may not.
fn judge(
    target: &Target,
    by: UserId,
    change: &Change,
    client_id: Option<String>,
) -> Result<Option<EventKind>, ApiError> {
    let author = target.message.kind.actor();
    let state = &target.state;
    Ok(Some(match change {
        Change::Message { .. } => return Err(ApiError::Internal),
        Change::Edit { target, body } => {
            if author != by {
                return Err(ApiError::NotTheAuthor);
            }
            if state.deleted {
                return Err(ApiError::MessageDeleted);
            }
            EventKind::Edit {
                target: *target,
                by,
                body: body.clone(),
                client_id,
            }
        }
        Change::Delete { target, moderator } => {
            if state.deleted {
                return Ok(None);
            }
            if author != by && !moderator {
                return Err(ApiError::Forbidden);
            }
            EventKind::Delete {
                target: *target,
                by,
                client_id,
            }
        }
        Change::React { target, emoji, on } => {
            if state.deleted {
                return Err(ApiError::MessageDeleted);
            }
            if state.reacted(by, emoji) == *on {
                return Ok(None);
            }
            let new_emoji = !state.reactions.iter().any(|(e, _)| e == emoji);
            if *on && new_emoji && state.reactions.len() >= MAX_REACTIONS {
                return Err(ApiError::TooManyReactions);
            }
            EventKind::Reaction {
                target: *target,
                by,
                emoji: emoji.clone(),
                on: *on,
                client_id,
            }
        }
    }))
}

/// A deletion is a redaction: the message and each of its edits lose their
/// text in the same batch that records the deletion.
fn redact(
    log: &RoomLog,
    made: &HashMap<(RoomId, Seq), EventRecord>,
    batch: &mut AppendBatch,
    room: RoomId,
    seq: Seq,
    target: &Target,
) {
    let mut blank = target.message.clone();
    blank.kind = blank.kind.redacted();
    batch.redact(room, seq, &blank);
    for edit in &target.state.edits {
        let stored = match made.get(&(room, *edit)) {
            Some(e) => Some(e.clone()),
            None => log.event(room, *edit).ok().flatten(),
        };
        if let Some(mut e) = stored {
            e.kind = e.kind.redacted();
            batch.redact(room, *edit, &e);
        }
    }
}

/// Group-commit measurements, observed by the committer once per group.
#[derive(Debug, Clone)]
pub struct CommitHistograms {
    /// Messages written per group commit (one flush each).
    pub batch_size: Histogram,
    /// Time to write and flush one group.
    pub flush_seconds: Histogram,
    /// Time from a send reaching the server to its ack: the queue, the
    /// group's write and flush.
    pub ack_seconds: Histogram,
}

impl Default for CommitHistograms {
    fn default() -> Self {
        CommitHistograms {
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            flush_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            ack_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 18)),
        }
    }
}

impl CommitHistograms {
    pub fn observe(&self, messages: usize, took: std::time::Duration) {
        if messages > 0 {
            self.batch_size.observe(messages as f64);
            self.flush_seconds.observe(took.as_secs_f64());
        }
    }
}

/// How often the watch checks that the store takes writes.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Has the committer check the store every [`WATCH_EVERY`] (a failed write
/// anywhere, not only a group commit, leaves sled refusing writes); ends
/// with the committer. It holds no handle on the store, so it never keeps
/// the database open after shutdown.
fn watch(committer: mpsc::WeakSender<Op>) {
    loop {
        std::thread::sleep(WATCH_EVERY);
        let Some(tx) = committer.upgrade() else {
            return;
        };
        let _ = tx.try_send(Op::Recover);
    }
}

/// Writes and syncs a small file beside the database: whether the disk
/// takes writes again (space freed, a fault gone).
fn probe_write(dir: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    let path = dir.join(".write-probe");
    let result = (|| {
        let mut f = std::fs::File::create(&path)?;
        f.write_all(&[0u8; 1 << 20])?;
        f.sync_data()
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// Answers the sender: the HTTP handler gets the stored event, a socket
/// its `ack` (or `error`).
fn reply(to: Reply, room: RoomId, client_id: Option<&str>, outcome: Outcome) {
    match to {
        Reply::Request(tx) => answer(tx, room, outcome),
        Reply::Socket(outbox) => ack(&outbox, room, client_id, &outcome),
    }
}

fn answer(
    tx: oneshot::Sender<Result<Option<Committed>, ApiError>>,
    room: RoomId,
    outcome: Outcome,
) {
    let _ = tx.send(match outcome {
        Outcome::New(seq, event) => Ok(Some(Committed {
            room,
            seq,
            event,
            duplicate: false,
        })),
        Outcome::Duplicate(seq, event) => Ok(Some(Committed {
            room,
            seq,
            event,
            duplicate: true,
        })),
        Outcome::Unchanged => Ok(None),
        Outcome::Failed(e) => Err(e),
    });
}

/// A socket's answer names the event's seq and id; the event itself
/// reaches the socket as the room's `message` frame.
fn ack(outbox: &Outbox, room: RoomId, client_id: Option<&str>, outcome: &Outcome) {
    let client_id = client_id.unwrap_or_default();
    let (seq, id) = match outcome {
        Outcome::New(seq, event) | Outcome::Duplicate(seq, event) => (Some(*seq), Some(event.id)),
        Outcome::Unchanged => (None, None),
        Outcome::Failed(e) => {
            let message = e.to_string();
            outbox.send(&ServerFrame::Error {
                code: e.code(),
                message: &message,
                client_id: Some(client_id),
            });
            return;
        }
    };
    outbox.send(&ServerFrame::Ack {
        client_id,
        room,
        seq,
        id,
    });
}
