//! Full-text search over messages: a tantivy index in `DATA/index`,
//! derived from the room log.
//!
//! How a message becomes searchable: the committer, once an event is
//! durable and published, hands `(room, seq, message)` to the [`Feed`], a
//! bounded queue it never waits on (when the queue is full it only marks
//! the index as behind). The indexer thread ([`indexer`]) rewrites that
//! message's document from the log and commits at most half a second
//! later. The index keeps, in each commit, how far it has read each room's
//! log, so after a crash, a full queue or a restore it reads the rest of
//! the log itself. It stores no message text, only the words' postings: a
//! document is removed with its message (or replaced by an edit), and a
//! room's documents with the room.
//!
//! A search ([`Search::find`]) runs the parsed [`Query`] ([`query`]) inside
//! the rooms the caller is in now, ranks hits ([`rank`]) and returns their
//! rooms and seqs; the caller reads the messages from the log and marks
//! the matches ([`highlight`]).

mod error;
pub mod highlight;
mod indexer;
pub mod query;
mod rank;
mod schema;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

use tantivy::query::{BooleanQuery, Occur, PhraseQuery, TermQuery, TermSetQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{IndexReader, ReloadPolicy, Searcher, Term};
use tokio::sync::oneshot;

pub use query::{BadCursor, Cursor, Order, Part, Query, QueryError};

pub use self::error::SearchError;
pub use self::indexer::Counts;

use self::indexer::{Flags, Indexer, Op};
use self::rank::Ranked;
use self::schema::{join_halves, Fields};
use crate::ids::{RoomId, Seq, UserId};
use crate::storage::Store;

/// Changes the committer may hand over before the indexer takes them; past
/// that, the index is marked behind and reads the log instead.
const FEED_CAPACITY: usize = 8192;

/// The index, shared: searches, and the queue into its indexer thread;
/// or nothing, when indexing is turned off (`storage.search_index`).
#[derive(Clone)]
pub struct Search {
    on: Option<Open>,
    /// Searches running at once: one per CPU. A search is CPU-bound (tens
    /// of milliseconds over a million messages), so more at once would
    /// only share the same cores and starve the committer and the fan-out
    /// of them; the rest wait their turn.
    running: Arc<tokio::sync::Semaphore>,
}

/// How many searches run at once: the CPUs this process may use.
fn search_slots() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[derive(Clone)]
struct Open {
    reader: IndexReader,
    fields: Fields,
    tx: SyncSender<Op>,
    flags: Arc<Flags>,
}

/// The committer's end of the queue: never blocks (and does nothing when
/// indexing is off).
#[derive(Clone)]
pub struct Feed {
    to: Option<(SyncSender<Op>, Arc<Flags>)>,
}

impl Feed {
    /// Event `seq` of `room`, now durable, changed message `message` (a
    /// new message is its own). Never waits: if the queue is full the
    /// index is marked behind and catches up from the log.
    pub fn touched(&self, room: RoomId, seq: Seq, message: Seq) {
        self.send(Op::Touched { room, seq, message });
    }

    /// `room` and its log were deleted: its documents go too.
    pub fn room_deleted(&self, room: RoomId) {
        self.send(Op::RoomDeleted(room));
    }

    fn send(&self, op: Op) {
        let Some((tx, flags)) = &self.to else {
            return;
        };
        match tx.try_send(op) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => flags.behind.store(true, SeqCst),
        }
    }
}

/// Where to look: the rooms to search (the caller's, narrowed by any
/// filter) and, for `from:`, the author.
pub struct Scope {
    pub rooms: Vec<RoomId>,
    pub author: Option<UserId>,
}

/// One page of hits, in order, and where the next one starts.
pub struct Found {
    pub hits: Vec<(RoomId, Seq)>,
    pub next: Option<Cursor>,
}

impl Search {
    /// Opens (or makes) the index in `dir` and starts its indexer thread,
    /// which first catches up with `store`'s log.
    pub fn open(
        dir: &Path,
        store: Store,
    ) -> Result<(Search, std::thread::JoinHandle<()>), SearchError> {
        let (index, fields) = indexer::open(dir)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let flags = Arc::new(Flags::default());
        let (tx, rx) = sync_channel(FEED_CAPACITY);
        let (made_tx, made_rx) = std::sync::mpsc::channel();
        let (thread_reader, thread_flags) = (reader.clone(), flags.clone());
        let handle = std::thread::Builder::new()
            .name("hearth-index".into())
            .spawn(move || {
                // Indexing is never waited on: it runs at the lowest
                // niceness, and so do the writer threads tantivy starts
                // from here, so on a saturated core delivery goes first.
                // It needs little: at 117 posts/s it used 0.5 % of a core.
                crate::priority::lowest();
                match Indexer::new(store, index, thread_reader, fields, thread_flags) {
                    Ok(indexer) => {
                        let _ = made_tx.send(Ok(()));
                        indexer.run(rx);
                    }
                    Err(e) => {
                        let _ = made_tx.send(Err(e));
                    }
                }
            })?;
        made_rx.recv().map_err(|_| SearchError::Stopped)??;
        let on = Open {
            reader,
            fields,
            tx,
            flags,
        };
        let running = Arc::new(tokio::sync::Semaphore::new(search_slots()));
        Ok((
            Search {
                on: Some(on),
                running,
            },
            handle,
        ))
    }

    /// No index: nothing is indexed, and searches and operator requests
    /// answer [`SearchError::Off`].
    pub fn off() -> Search {
        Search {
            on: None,
            running: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    /// A turn to run a search (see `running`).
    pub async fn turn(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.running.clone().acquire_owned().await.ok()
    }

    pub fn is_on(&self) -> bool {
        self.on.is_some()
    }

    fn open_index(&self) -> Result<&Open, SearchError> {
        self.on.as_ref().ok_or(SearchError::Off)
    }

    pub fn feed(&self) -> Feed {
        Feed {
            to: self.on.as_ref().map(|o| (o.tx.clone(), o.flags.clone())),
        }
    }

    /// `room` and its log were deleted: its documents go too.
    pub fn room_deleted(&self, room: RoomId) {
        self.feed().room_deleted(room);
    }

    /// Empties the index and indexes the whole log again; returns the
    /// counts after.
    pub async fn rebuild(&self) -> Result<Counts, SearchError> {
        self.ask(Op::Rebuild).await
    }

    /// Brings the index up to the log and counts documents against live
    /// messages (for `hearth verify`).
    pub async fn check(&self) -> Result<Counts, SearchError> {
        self.ask(Op::Check).await
    }

    async fn ask(
        &self,
        op: fn(oneshot::Sender<Result<Counts, SearchError>>) -> Op,
    ) -> Result<Counts, SearchError> {
        let (reply, answer) = oneshot::channel();
        self.send_waiting(op(reply)).await?;
        answer.await.map_err(|_| SearchError::Stopped)?
    }

    /// Asks the indexer to commit and stop; join its thread to wait.
    pub async fn stop(&self) {
        if let Some(on) = &self.on {
            on.flags.stopping.store(true, SeqCst);
            let _ = self.send_waiting(Op::Stop).await;
        }
    }

    /// Queues an operator's request, waiting for room (off the runtime's
    /// threads: the queue is a blocking one).
    async fn send_waiting(&self, op: Op) -> Result<(), SearchError> {
        let tx = self.open_index()?.tx.clone();
        tokio::task::spawn_blocking(move || tx.send(op))
            .await
            .map_err(|_| SearchError::Stopped)?
            .map_err(|_| SearchError::Stopped)
    }

    /// One page of the messages in `scope` that match `query`, in `order`,
    /// after `after`. Runs on the calling thread (CPU-bound: call it off
    /// the async runtime).
    pub fn find(
        &self,
        query: &Query,
        scope: &Scope,
        order: Order,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Found, SearchError> {
        let none = Found {
            hits: Vec::new(),
            next: None,
        };
        let on = self.open_index()?;
        if scope.rooms.is_empty() {
            return Ok(none);
        }
        let searcher = on.reader.searcher();
        let Some(q) = on.compile(&searcher, query, scope)? else {
            return Ok(none);
        };
        let ranked = Ranked {
            order,
            limit: limit + 1,
            after,
        };
        let mut keys = searcher.search(&q, &ranked)?;
        let next = if keys.len() > limit {
            keys.truncate(limit);
            keys.last().map(|k| k.cursor(order))
        } else {
            None
        };
        let hits = keys
            .iter()
            .filter_map(|k| Some((join_halves(k.room_hi, k.room_lo)?, Seq(k.seq))))
            .collect();
        Ok(Found { hits, next })
    }
}

impl Open {
    /// The tantivy query for `query` in `scope`; `None` when nothing can
    /// match (a prefix no indexed word starts with).
    fn compile(
        &self,
        searcher: &Searcher,
        query: &Query,
        scope: &Scope,
    ) -> Result<Option<Box<dyn tantivy::query::Query>>, SearchError> {
        let f = &self.fields;
        let rooms = TermSetQuery::new(scope.rooms.iter().map(|r| f.room(*r)));
        let mut clauses: Vec<(Occur, Box<dyn tantivy::query::Query>)> =
            vec![(Occur::Must, Box::new(rooms))];
        if let Some(author) = scope.author {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(f.author(author), IndexRecordOption::Basic)),
            ));
        }
        let body = |word: &str| Term::from_field_text(f.body, word);
        for part in &query.parts {
            let clause: Box<dyn tantivy::query::Query> = match part {
                Part::Word(w) => Box::new(TermQuery::new(body(w), IndexRecordOption::WithFreqs)),
                Part::Phrase(words) => {
                    Box::new(PhraseQuery::new(words.iter().map(|w| body(w)).collect()))
                }
                Part::Prefix(p) => {
                    let words = self.expand(searcher, p)?;
                    if words.is_empty() {
                        return Ok(None);
                    }
                    Box::new(BooleanQuery::new_multiterms_query(
                        words.iter().map(|w| body(w)).collect(),
                    ))
                }
            };
            clauses.push((Occur::Must, clause));
        }
        Ok(Some(Box::new(BooleanQuery::new(clauses))))
    }

    /// The first [`query::MAX_PREFIX_WORDS`] indexed words (in byte order)
    /// that start with `prefix`: what bounds a prefix's cost.
    fn expand(&self, searcher: &Searcher, prefix: &str) -> Result<BTreeSet<String>, SearchError> {
        let mut words = BTreeSet::new();
        for segment in searcher.segment_readers() {
            let inverted = segment.inverted_index(self.fields.body)?;
            let mut stream = inverted
                .terms()
                .range()
                .ge(prefix.as_bytes())
                .into_stream()?;
            let mut taken = 0;
            while taken < query::MAX_PREFIX_WORDS && stream.advance() {
                let Ok(word) = std::str::from_utf8(stream.key()) else {
                    continue;
                };
                if !word.starts_with(prefix) {
                    break;
                }
                words.insert(word.to_string());
                taken += 1;
            }
        }
        Ok(words.into_iter().take(query::MAX_PREFIX_WORDS).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::config::Durability;
    use crate::ids::{EventId, Millis};
    use crate::storage::log::AppendBatch;
    use crate::storage::records::{EventKind, EventRecord};

    fn message(author: UserId, body: &str) -> EventRecord {
        EventRecord {
            id: EventId::generate(),
            at: Millis::now(),
            kind: EventKind::Message {
                author,
                body: body.into(),
                client_id: None,
                reply_to: None,
                mentions: Vec::new(),
                mentions_room: false,
                files: Vec::new(),
            },
        }
    }

    fn wait_for_hits(search: &Search, scope: &Scope, word: &str, want: usize) {
        let query = Query::parse(word).expect("query");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = search
                .find(&query, scope, Order::Recent, None, 50)
                .expect("search");
            if found.hits.len() == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} hits, want {want}",
                found.hits.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the committer could not hand over (a full queue) is found in
    /// the log: the indexer reads it once it sees the index is behind.
    #[test]
    fn events_not_handed_over_are_read_from_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 16 << 20, Durability::Flush).expect("store");
        let (search, thread) =
            Search::open(&dir.path().join("index"), store.clone()).expect("index");
        let (room, ann) = (RoomId::generate(), UserId::generate());
        let scope = Scope {
            rooms: vec![room],
            author: None,
        };
        let log = store.log().expect("log");
        let mut batch = AppendBatch::default();
        for seq in 1..=3 {
            batch.push(room, Seq(seq), &message(ann, "lost in the queue"));
        }
        log.apply(batch).expect("append");
        // Three events dropped (a full queue), then one handed over.
        let on = search.on.as_ref().expect("indexing is on");
        on.flags.behind.store(true, SeqCst);
        let mut batch = AppendBatch::default();
        batch.push(room, Seq(4), &message(ann, "handed over"));
        log.apply(batch).expect("append");
        search.feed().touched(room, Seq(4), Seq(4));
        wait_for_hits(&search, &scope, "lost", 3);
        wait_for_hits(&search, &scope, "handed", 1);

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let counts = runtime.block_on(search.check()).expect("check");
        assert_eq!(
            counts,
            Counts {
                documents: 4,
                live_messages: 4
            }
        );
        search.room_deleted(room);
        let counts = runtime.block_on(search.check()).expect("check");
        assert_eq!(counts.documents, 0);
        runtime.block_on(search.stop());
        thread.join().expect("indexer");
    }
}
