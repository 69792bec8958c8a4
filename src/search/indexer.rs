//! The indexer thread: the one writer of the index.
//!
//! It takes what the committer hands over (a room, the seq of a durable
//! event and the message it touched), rewrites that message's document from
//! the log (delete by `key`, then add its current text unless deleted), and
//! commits the tantivy writer at most [`COMMIT_EVERY`] after the first
//! uncommitted change, so the index trails the log by well under a second.
//!
//! Every commit carries, as its payload, the last seq indexed per room
//! ([`Progress`]): the documents and the point they reach are one atomic
//! commit. At start, and whenever the committer could not hand something
//! over (the queue was full: `behind`), the indexer catches up by reading
//! each room's log after that point. Rewriting a message from the log is
//! idempotent, so reading an event twice does no harm.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tantivy::directory::MmapDirectory;
use tantivy::indexer::IndexWriterOptions;
use tantivy::{Index, IndexReader, IndexWriter, TantivyDocument};
use tokio::sync::oneshot;

use super::error::SearchError;
use super::schema::{analyzer, Fields, ANALYZER};
use crate::ids::{RoomId, Seq};
use crate::storage::log::RoomLog;
use crate::storage::records::EventKind;
use crate::storage::Store;

/// Longest a change waits before it is committed (searchable).
pub(super) const COMMIT_EVERY: Duration = Duration::from_millis(500);

/// Events read from the log per step of a catch-up.
const CATCH_UP_STEP: usize = 512;

/// What the indexer is asked to do.
pub(super) enum Op {
    /// Event `seq` of `room` is durable and changed message `message`.
    Touched {
        room: RoomId,
        seq: Seq,
        message: Seq,
    },
    /// The room and its log are gone.
    RoomDeleted(RoomId),
    /// Empty the index and index the whole log again.
    Rebuild(oneshot::Sender<Result<Counts, SearchError>>),
    /// Catch up, commit, and count documents and live messages.
    Check(oneshot::Sender<Result<Counts, SearchError>>),
    /// Commit and stop.
    Stop,
}

/// How many documents the index holds against how many messages the log
/// has that are not deleted, up to the point indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub documents: u64,
    pub live_messages: u64,
}

/// State the committer, the server and the indexer share.
#[derive(Default)]
pub(super) struct Flags {
    /// Something was not handed over (the queue was full): the indexer
    /// must read the log.
    pub behind: AtomicBool,
    /// Shutting down: a long catch-up stops early (the next start resumes).
    pub stopping: AtomicBool,
}

/// The payload of every commit: how far each room's log is indexed, and
/// the layout the documents follow.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    version: u32,
    rooms: BTreeMap<RoomId, Seq>,
}

/// Bump when the schema or the analyzer changes: an index of another
/// version is rebuilt at start.
const VERSION: u32 = 1;

pub(super) struct Indexer {
    store: Store,
    index: Index,
    writer: IndexWriter<TantivyDocument>,
    reader: IndexReader,
    fields: Fields,
    flags: Arc<Flags>,
    /// The last seq indexed per room, committed or about to be.
    progress: HashMap<RoomId, Seq>,
    /// Rooms deleted while we run: a late event of theirs is ignored.
    gone: HashSet<RoomId>,
    /// When the oldest uncommitted change was made.
    dirty_since: Option<Instant>,
}

/// Opens the index in `dir`, or makes a new one; an index that cannot be
/// read or is of another version is emptied (it is rebuilt from the log).
pub(super) fn open(dir: &Path) -> Result<(Index, Fields), SearchError> {
    let (schema, fields) = Fields::schema();
    std::fs::create_dir_all(dir)?;
    let index = match MmapDirectory::open(dir)
        .map_err(tantivy::TantivyError::from)
        .and_then(|d| Index::open_or_create(d, schema.clone()))
    {
        Ok(index) => index,
        Err(e) => {
            tracing::warn!(error = %e, path = %dir.display(), "The search index cannot be read; it will be rebuilt from the log.");
            std::fs::remove_dir_all(dir)?;
            std::fs::create_dir_all(dir)?;
            Index::create_in_dir(dir, schema)?
        }
    };
    index.tokenizers().register(ANALYZER, analyzer());
    Ok((index, fields))
}

impl Indexer {
    pub fn new(
        store: Store,
        index: Index,
        reader: IndexReader,
        fields: Fields,
        flags: Arc<Flags>,
    ) -> Result<Indexer, SearchError> {
        let writer = index.writer_with_options(
            IndexWriterOptions::builder()
                .num_worker_threads(1)
                .num_merge_threads(1)
                .memory_budget_per_thread(32 << 20)
                .build(),
        )?;
        let mut indexer = Indexer {
            store,
            index,
            writer,
            reader,
            fields,
            flags,
            progress: HashMap::new(),
            gone: HashSet::new(),
            dirty_since: None,
        };
        let committed = indexer.committed_progress();
        if committed.version == VERSION {
            indexer.progress = committed.rooms.into_iter().collect();
        } else {
            indexer.writer.delete_all_documents()?;
            indexer.touch();
        }
        Ok(indexer)
    }

    fn committed_progress(&self) -> Progress {
        let payload = self.index.load_metas().ok().and_then(|m| m.payload);
        match payload {
            Some(p) => serde_json::from_str(&p).unwrap_or_default(),
            // A new, empty index: nothing indexed yet, in this version.
            None => Progress {
                version: VERSION,
                rooms: BTreeMap::new(),
            },
        }
    }

    pub fn run(mut self, rx: Receiver<Op>) {
        let started = Instant::now();
        match self.catch_up() {
            Ok(n) if n > 0 => tracing::info!(
                messages = n,
                took_ms = started.elapsed().as_millis() as u64,
                "Search index caught up with the log."
            ),
            Ok(_) => {}
            Err(e) => self.failed(&e),
        }
        self.commit_if_due(true);
        loop {
            let wait = match self.dirty_since {
                Some(t) => COMMIT_EVERY.saturating_sub(t.elapsed()),
                None => Duration::from_secs(1),
            };
            let mut ops = Vec::new();
            match rx.recv_timeout(wait) {
                Ok(op) => ops.push(op),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while ops.len() < 4096 {
                match rx.try_recv() {
                    Ok(op) => ops.push(op),
                    Err(_) => break,
                }
            }
            // Something was not handed over since the last look: every
            // touch before it was seen already, so a catch-up from
            // `progress` covers it (and the touches this batch holds).
            let mut behind = self.flags.behind.swap(false, SeqCst);
            let mut stop = false;
            for op in ops {
                match op {
                    Op::Touched { .. } if behind => {}
                    Op::Touched { room, seq, message } => {
                        if let Err(e) = self.touched(room, seq, message) {
                            // Later touches must not move `progress` past
                            // this one: the catch-up below takes them all.
                            tracing::warn!(error = %e, "Search indexing failed; catching up from the log.");
                            behind = true;
                        }
                    }
                    Op::RoomDeleted(room) => self.room_deleted(room),
                    Op::Rebuild(reply) => {
                        let _ = reply.send(self.rebuild());
                    }
                    Op::Check(reply) => {
                        let _ = reply.send(self.check());
                    }
                    Op::Stop => stop = true,
                }
            }
            if behind {
                tracing::debug!("The search index fell behind; catching up from the log.");
                if let Err(e) = self.catch_up() {
                    self.failed(&e);
                }
            }
            self.commit_if_due(stop);
            if stop {
                break;
            }
        }
        tracing::debug!("Search indexer stopped.");
    }

    /// A catch-up failed (storage or index): the next look tries again,
    /// from `progress`.
    fn failed(&mut self, e: &SearchError) {
        tracing::warn!(error = %e, "Search indexing failed; it will catch up from the log.");
        self.flags.behind.store(true, SeqCst);
    }

    fn touch(&mut self) {
        self.dirty_since.get_or_insert_with(Instant::now);
    }

    fn touched(&mut self, room: RoomId, seq: Seq, message: Seq) -> Result<(), SearchError> {
        if self.gone.contains(&room) || self.progress.get(&room).is_some_and(|p| *p >= seq) {
            return Ok(());
        }
        let log = self.store.log()?;
        let fresh = self.progress.get(&room).is_none_or(|p| *p < message);
        self.reindex(&log, room, message, fresh)?;
        self.progress.insert(room, seq);
        Ok(())
    }

    fn room_deleted(&mut self, room: RoomId) {
        self.writer.delete_term(self.fields.room(room));
        self.progress.remove(&room);
        self.gone.insert(room);
        self.touch();
    }

    /// Makes message `seq`'s document what the log says now: gone if it
    /// is deleted (or not there), else its current text. `fresh`: `seq` is
    /// past the room's progress, so it has no document to delete. A
    /// message's document is added only while its event or a later one is
    /// indexed, which moves the progress to at least `seq` in the same
    /// commit (or is rolled back with it); a delete by term costs tantivy a
    /// term lookup in every segment, once per message for nothing.
    fn reindex(
        &mut self,
        log: &RoomLog,
        room: RoomId,
        seq: Seq,
        fresh: bool,
    ) -> Result<(), SearchError> {
        if !fresh {
            self.writer.delete_term(self.fields.key(room, seq));
        }
        self.touch();
        let Some(event) = log.event(room, seq)? else {
            return Ok(());
        };
        let EventKind::Message { author, body, .. } = &event.kind else {
            return Ok(());
        };
        let state = log.state(room, seq)?;
        if state.deleted {
            return Ok(());
        }
        let body = state.body.as_deref().unwrap_or(body);
        let doc = self.fields.document(room, seq, *author, event.at.0, body);
        self.writer.add_document(doc)?;
        Ok(())
    }

    /// Indexes what each room's log holds past `progress`, and drops the
    /// documents of rooms no longer in the log. Returns the events read.
    fn catch_up(&mut self) -> Result<u64, SearchError> {
        let log = self.store.log()?;
        let heads: HashMap<RoomId, Seq> = log.heads().collect::<Result<_, _>>()?;
        let vanished: Vec<RoomId> = self
            .progress
            .keys()
            .filter(|r| !heads.contains_key(r))
            .copied()
            .collect();
        for room in vanished {
            self.writer.delete_term(self.fields.room(room));
            self.progress.remove(&room);
            self.touch();
        }
        let mut read = 0;
        for (room, head) in heads {
            if self.gone.contains(&room) {
                continue;
            }
            loop {
                let from = self
                    .progress
                    .get(&room)
                    .copied()
                    .unwrap_or(Seq::ZERO)
                    .next();
                if from > head || self.flags.stopping.load(SeqCst) {
                    break;
                }
                let events = log.range(room, from, head, CATCH_UP_STEP)?;
                let Some(last) = events.last().map(|(s, _)| *s) else {
                    break;
                };
                let touched: BTreeSet<Seq> = events
                    .iter()
                    .filter_map(|(seq, e)| match &e.kind {
                        EventKind::Message { .. } => Some(*seq),
                        EventKind::Edit { target, .. } | EventKind::Delete { target, .. } => {
                            Some(*target)
                        }
                        EventKind::Reaction { .. } => None,
                    })
                    .collect();
                for seq in touched {
                    self.reindex(&log, room, seq, seq >= from)?;
                }
                read += events.len() as u64;
                self.progress.insert(room, last);
                self.touch();
                // A long catch-up (a first start on a big store) becomes
                // searchable, and resumable, as it goes. A commit that
                // fails (a full disk) ends it; the next look tries again.
                if !self.commit_if_due(false) {
                    return Ok(read);
                }
            }
        }
        Ok(read)
    }

    fn rebuild(&mut self) -> Result<Counts, SearchError> {
        self.writer.delete_all_documents()?;
        self.progress.clear();
        self.gone.clear();
        self.touch();
        self.check()
    }

    /// Catches up and commits, then counts the documents and the messages
    /// the log holds up to the point indexed (so writes meanwhile do not
    /// make a difference).
    fn check(&mut self) -> Result<Counts, SearchError> {
        self.catch_up()?;
        self.commit()?;
        let documents = self.reader.searcher().num_docs();
        let log = self.store.log()?;
        let mut live: i64 = 0;
        for (room, upto) in &self.progress {
            let mut from = Seq(1);
            while from <= *upto {
                let events = log.range(*room, from, *upto, CATCH_UP_STEP)?;
                let Some(last) = events.last().map(|(s, _)| *s) else {
                    break;
                };
                for (_, e) in &events {
                    match e.kind {
                        EventKind::Message { .. } => live += 1,
                        EventKind::Delete { .. } => live -= 1,
                        _ => {}
                    }
                }
                from = last.next();
            }
        }
        Ok(Counts {
            documents,
            live_messages: live.max(0) as u64,
        })
    }

    /// Commits if a change has waited [`COMMIT_EVERY`] (or `now`); false
    /// if that commit failed.
    fn commit_if_due(&mut self, now: bool) -> bool {
        let due = self
            .dirty_since
            .is_some_and(|t| now || t.elapsed() >= COMMIT_EVERY);
        if due {
            if let Err(e) = self.commit() {
                tracing::warn!(error = %e, "Could not commit the search index; will catch up from the last commit.");
                // What is not committed is lost with the rollback: start
                // again from what the last commit says.
                let _ = self.writer.rollback();
                self.progress = self.committed_progress().rooms.into_iter().collect();
                self.dirty_since = None;
                self.flags.behind.store(true, SeqCst);
                return false;
            }
        }
        true
    }

    fn commit(&mut self) -> Result<(), SearchError> {
        let progress = Progress {
            version: VERSION,
            rooms: self.progress.iter().map(|(r, s)| (*r, *s)).collect(),
        };
        let payload = serde_json::to_string(&progress).map_err(|_| SearchError::Payload)?;
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        self.reader.reload()?;
        self.dirty_since = None;
        Ok(())
    }
}
