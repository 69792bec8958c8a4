//! The open database: opening, the schema version and its migrations,
//! reopening after a storage failure, flushing. The records each domain
//! keeps are read and written in that domain's file ([`super::users`],
//! [`super::sessions`], [`super::rooms`], [`super::invites`], [`super::log`],
//! [`super::reads`], [`super::avatars`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use sled::transaction::TransactionError;

use super::error::{Result, StorageError};
use super::log;

use crate::config::Durability;
use crate::locks::{read, write};

/// The layout version this binary writes. Bump it with a migration in
/// [`Store::migrate`] whenever a key layout or record changes incompatibly.
///
/// - 1: the first recorded layout.
/// - 2: rooms' head keys are gone; a head is its log's last event.
pub const SCHEMA_VERSION: u32 = 2;

/// The open database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

struct Shared {
    dir: PathBuf,
    cache_bytes: u64,
    durability: Durability,
    /// The open database; `None` only while [`Store::reopen`] swaps it.
    current: RwLock<Option<Arc<Inner>>>,
    /// How many times the database was reopened.
    reopened: AtomicU64,
    /// Held while a file's blob is placed and its records written, or its
    /// records removed and its blob perhaps deleted: an upload of the same
    /// bytes never finds its blob deleted under it.
    pub(super) blobs: std::sync::Mutex<()>,
}

pub(super) struct Inner {
    pub(super) db: sled::Db,
    dir: PathBuf,
    /// The log file, kept open for `fdatasync` under strict durability.
    sync_file: Option<File>,
    pub(super) meta: sled::Tree,
    pub(super) userid_user: sled::Tree,
    pub(super) username_userid: sled::Tree,
    pub(super) email_userid: sled::Tree,
    pub(super) tokenhash_session: sled::Tree,
    pub(super) userid_tokenhash: sled::Tree,
    pub(super) roomid_room: sled::Tree,
    pub(super) roomname_roomid: sled::Tree,
    pub(super) roomid_userid: sled::Tree,
    pub(super) userid_roomid: sled::Tree,
    pub(super) roomlog: sled::Tree,
    pub(super) invitecode_invite: sled::Tree,
    pub(super) resetcode_reset: sled::Tree,
    pub(super) userid_roomid_readseq: sled::Tree,
    pub(super) roomid_tally: sled::Tree,
    pub(super) userid_avatar: sled::Tree,
    pub(super) hooksecret_hook: sled::Tree,
    pub(super) userid_callback: sled::Tree,
    pub(super) userid_roomid_notify: sled::Tree,
    pub(super) fileid_file: sled::Tree,
    pub(super) hash_fileid: sled::Tree,
    pub(super) userid_fileid: sled::Tree,
    pub(super) userid_endpointhash_pushsub: sled::Tree,
}

impl Inner {
    /// Opens (or creates) the store in `dir/db`, refusing a newer schema or a
    /// damaged database with an error rather than a panic.
    fn open(dir: &Path, cache_bytes: u64, durability: Durability) -> Result<Inner> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::Open {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
        let db_dir = dir.join("db");
        // A store that already holds data must say which schema it is; sled
        // opens a log it cannot read as an empty database, which would look
        // like a fresh install with everything gone.
        let had_data = std::fs::metadata(db_dir.join("db")).is_ok_and(|m| m.len() > 0);
        // sled panics on some kinds of damage instead of returning an error;
        // catch that so a bad directory is a clear message, never a crash.
        // `flush` promises only what survives a crash of the process: a write
        // in the OS page cache does. sled would otherwise wait for the device
        // after every write (sync_file_range), once per group commit. `strict`
        // keeps that wait, so the log reaches the device in order, and syncs
        // the file before each ack as well.
        let sync_writes = durability == Durability::Strict;
        let opened = std::panic::catch_unwind(|| {
            sled::Config::new()
                .path(&db_dir)
                .cache_capacity(cache_bytes)
                .flush_every_ms(Some(500))
                .sync_writes(sync_writes)
                .open()
        });
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => {
                return Err(StorageError::Open {
                    path: db_dir,
                    message: describe_open_error(&e),
                })
            }
            Err(_) => {
                return Err(StorageError::Open {
                    path: db_dir,
                    message: "the database is damaged and cannot be read; restore a backup".into(),
                })
            }
        };
        let sync_file = match durability {
            Durability::Strict => Some(File::open(db_dir.join("db")).map_err(StorageError::Sync)?),
            Durability::Flush => None,
        };
        let tree = |name: &str| db.open_tree(name);
        let inner = Inner {
            meta: tree("meta")?,
            userid_user: tree("userid_user")?,
            username_userid: tree("username_userid")?,
            email_userid: tree("email_userid")?,
            tokenhash_session: tree("tokenhash_session")?,
            userid_tokenhash: tree("userid_tokenhash")?,
            roomid_room: tree("roomid_room")?,
            roomname_roomid: tree("roomname_roomid")?,
            roomid_userid: tree("roomid_userid")?,
            userid_roomid: tree("userid_roomid")?,
            roomlog: tree("roomlog")?,
            invitecode_invite: tree("invitecode_invite")?,
            resetcode_reset: tree("resetcode_reset")?,
            userid_roomid_readseq: tree("userid_roomid_readseq")?,
            roomid_tally: tree("roomid_tally")?,
            userid_avatar: tree("userid_avatar")?,
            hooksecret_hook: tree("hooksecret_hook")?,
            userid_callback: tree("userid_callback")?,
            userid_roomid_notify: tree("userid_roomid_notify")?,
            fileid_file: tree("fileid_file")?,
            hash_fileid: tree("hash_fileid")?,
            userid_fileid: tree("userid_fileid")?,
            userid_endpointhash_pushsub: tree("userid_endpointhash_pushsub")?,
            db,
            dir: dir.to_path_buf(),
            sync_file,
        };
        inner.migrate(had_data)?;
        Ok(inner)
    }

    /// Brings an older layout up to [`SCHEMA_VERSION`], or refuses a newer one.
    pub(super) fn migrate(&self, had_data: bool) -> Result<()> {
        let found = match self.meta.get(b"schema_version")? {
            Some(v) => {
                u32::from_be_bytes(v.as_ref().try_into().map_err(|_| StorageError::Corrupt {
                    tree: "meta",
                    key: "schema_version".into(),
                    message: format!("{} bytes, expected 4", v.len()),
                })?)
            }
            None if had_data => {
                return Err(StorageError::Open {
                    path: self.dir.join("db"),
                    message: "the database is damaged (it has data but no schema version \
                              can be read); restore a backup"
                        .into(),
                })
            }
            None => 0,
        };
        if found > SCHEMA_VERSION {
            return Err(StorageError::NewerSchema {
                path: self.dir.clone(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        // Migrations from `found` to SCHEMA_VERSION go here, one step each,
        // before the new version is recorded: one interrupted runs again.
        if found < 2 {
            self.drop_head_keys()?;
        }
        if found < SCHEMA_VERSION {
            self.meta
                .insert(b"schema_version", &SCHEMA_VERSION.to_be_bytes())?;
            self.flush()?;
        }
        Ok(())
    }

    /// Schema 2: heads are read from the log, so the head keys every
    /// append used to rewrite go (and would only go stale).
    fn drop_head_keys(&self) -> Result<()> {
        let mut batch = sled::Batch::default();
        let mut dropped = 0usize;
        for k in self.roomlog.scan_prefix([log::HEAD]).keys() {
            batch.remove(k?);
            dropped += 1;
        }
        if dropped > 0 {
            self.roomlog.apply_batch(batch)?;
            tracing::info!(
                dropped,
                "Store migrated to schema 2: rooms' head keys removed."
            );
        }
        Ok(())
    }

    pub(super) fn flush(&self) -> Result<()> {
        self.db.flush()?;
        if let Some(f) = &self.sync_file {
            f.sync_data().map_err(StorageError::Sync)?;
        }
        Ok(())
    }
}

impl Store {
    /// Opens (or creates) the store in `dir/db`, refusing a newer schema or a
    /// damaged database with an error rather than a panic.
    pub fn open(dir: &Path, cache_bytes: u64, durability: Durability) -> Result<Store> {
        let inner = Inner::open(dir, cache_bytes, durability)?;
        Ok(Store {
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                cache_bytes,
                durability,
                current: RwLock::new(Some(Arc::new(inner))),
                reopened: AtomicU64::new(0),
                blobs: std::sync::Mutex::new(()),
            }),
        })
    }

    /// Every entry of one tree, in key order.
    pub(super) fn scan(
        &self,
        pick: fn(&Inner) -> &sled::Tree,
    ) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec)>> {
        let (entries, unavailable) = match self.inner() {
            Ok(i) => (Some(pick(&i).iter()), None),
            Err(e) => (None, Some(Err(e))),
        };
        entries
            .into_iter()
            .flatten()
            .map(|kv| kv.map_err(StorageError::from))
            .chain(unavailable)
    }

    /// The open database, or `Unavailable` while it is being reopened.
    pub(super) fn inner(&self) -> Result<Arc<Inner>> {
        read(&self.shared.current)
            .clone()
            .ok_or(StorageError::Unavailable)
    }

    /// Closes the database and opens it again from its files.
    ///
    /// sled 0.34 keeps the first I/O error of a write (a full disk, say) and
    /// returns it from every later write and flush of that open database,
    /// even once the cause is gone; only a fresh open clears it. What it
    /// reads back is what reached the files: a group whose flush failed is
    /// there whole or not at all. Callers compare with what they hold in
    /// memory (the committer does). Fails, leaving the old database in
    /// place, if it is still in use after a grace period; while it is
    /// closed, every call gets [`StorageError::Unavailable`].
    pub fn reopen(&self) -> Result<()> {
        let old = {
            let mut current = write(&self.shared.current);
            // Calls in flight hold the database briefly; no new one can
            // start while the lock is held. (None: an earlier reopen could
            // not open it again; this one tries once more.)
            if let Some(old) = current.as_ref() {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
                while Arc::strong_count(old) > 1 {
                    if std::time::Instant::now() > deadline {
                        return Err(StorageError::Unavailable);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            current.take()
        };
        // sled locks its file: the old database must be gone before the new
        // one opens. Its last references can linger a moment in sled's
        // deferred reclamation, so the open is retried briefly.
        drop(old);
        let mut tries = 0;
        let inner = loop {
            match Inner::open(
                &self.shared.dir,
                self.shared.cache_bytes,
                self.shared.durability,
            ) {
                Ok(inner) => break inner,
                Err(e) if tries == 40 => {
                    tracing::error!(error = %e, "Cannot reopen the database.");
                    return Err(e);
                }
                Err(_) => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            }
        };
        *write(&self.shared.current) = Some(Arc::new(inner));
        self.shared.reopened.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Whether the database is open and takes writes: a cheap flush.
    pub fn healthy(&self) -> bool {
        self.flush().is_ok()
    }

    /// How many times the database was reopened since start.
    pub fn reopened(&self) -> u64 {
        self.shared.reopened.load(Ordering::Relaxed)
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The lock of placing and removing file blobs (see [`super::files`]).
    pub(super) fn blob_lock(&self) -> &std::sync::Mutex<()> {
        &self.shared.blobs
    }

    /// Makes everything written so far durable to the configured level.
    pub fn flush(&self) -> Result<()> {
        self.inner()?.flush()
    }

    pub async fn flush_async(&self) -> Result<()> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.flush())
            .await
            .map_err(|e| StorageError::Open {
                path: PathBuf::new(),
                message: format!("flush task failed: {e}"),
            })?
    }

    pub fn durability(&self) -> Durability {
        self.shared.durability
    }

    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.inner()?.db.size_on_disk()?)
    }

    pub fn log(&self) -> Result<log::RoomLog> {
        Ok(log::RoomLog::new(self.inner()?.roomlog.clone()))
    }
}

pub(super) fn tx_error(e: TransactionError<()>) -> StorageError {
    match e {
        TransactionError::Storage(e) => StorageError::Sled(e),
        TransactionError::Abort(()) => {
            StorageError::Sled(sled::Error::ReportableBug("transaction aborted".into()))
        }
    }
}

/// Makes the next open of the database in `dir/db` quick: call it once
/// every handle on the database is gone (after a clean shutdown).
///
/// sled 0.34 writes its snapshot (where each page lives) only when it
/// opens a database; every open then reads the whole log written since the
/// last snapshot. After a long run that is everything written since the
/// server started (over 200 ms for a million messages). Opening and
/// closing the database here moves that reading from the next start to
/// this shutdown, so a restart answers at once. A database another handle
/// still holds (or that cannot be opened) is left alone: the next start
/// reads the log, as it does after a crash. Returns whether it was done.
pub fn snapshot_for_next_open(dir: &Path) -> bool {
    let db_dir = dir.join("db");
    if !db_dir.join("db").exists() {
        return false;
    }
    let opened = std::panic::catch_unwind(|| {
        sled::Config::new()
            .path(&db_dir)
            .cache_capacity(8 << 20)
            .flush_every_ms(None)
            .open()
    });
    match opened {
        Ok(Ok(db)) => {
            drop(db);
            true
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %describe_open_error(&e), "Could not prepare the database for the next start.");
            false
        }
        Err(_) => false,
    }
}

fn describe_open_error(e: &sled::Error) -> String {
    match e {
        sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock => {
            "another hearth process is using it (sled holds an exclusive lock)".into()
        }
        sled::Error::Io(io) => format!("{io}"),
        sled::Error::Corruption { .. } => {
            "the database is damaged and cannot be read; restore a backup".into()
        }
        other => other.to_string(),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use sled::{Batch, IVec};

    use super::{log, Store, SCHEMA_VERSION};
    use crate::config::Durability;
    use crate::ids::{EventId, Millis, RoomId, Seq, UserId};
    use crate::storage::records::{EventKind, EventRecord};

    /// Opens the store, waiting for a dropped one's threads to let go of
    /// sled's lock.
    fn reopen(dir: &std::path::Path) -> Store {
        for _ in 0..50 {
            match Store::open(dir, 8 << 20, Durability::Flush) {
                Ok(s) => return s,
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
            }
        }
        Store::open(dir, 8 << 20, Durability::Flush).expect("reopen the store")
    }

    /// sled alone, as the store opens it but without its timed flushes, and
    /// a tree in it; the database is returned to be kept open.
    fn bare_log(dir: &std::path::Path) -> (sled::Db, sled::Tree) {
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(None)
            .open()
            .unwrap();
        let tree = db.open_tree("log").unwrap();
        (db, tree)
    }

    /// A room's head is its log's last event: for rooms whose ids differ in
    /// their last byte only, over many leaves, for a room with no events,
    /// and after a reopen. A store of schema 1, whose appends also wrote a
    /// head key (stale ones too), migrates at open: the keys go, heads
    /// still read from the log, and the version recorded is the new one.
    #[test]
    fn heads_are_last_events_and_schema_1_head_keys_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let room = |last: u8| {
            let mut b = [7u8; 16];
            b[15] = last;
            RoomId::from_slice(&b).unwrap()
        };
        let (a, b, empty) = (room(1), room(2), room(9));
        let author = UserId::generate();
        let store = reopen(dir.path());
        {
            let log = store.log().unwrap();
            for (r, n) in [(a, 300u64), (b, 5)] {
                for seq in 1..=n {
                    let mut batch = log::AppendBatch::default();
                    let kind = EventKind::Message {
                        author,
                        body: format!("{seq}"),
                        client_id: None,
                        reply_to: None,
                        mentions: vec![],
                        mentions_room: false,
                        files: vec![],
                    };
                    let event = EventRecord {
                        id: EventId::generate(),
                        at: Millis::now(),
                        kind,
                    };
                    batch.push(r, Seq(seq), &event);
                    log.apply(batch).unwrap();
                }
            }
        }
        let heads = |store: &Store| -> HashMap<RoomId, Seq> {
            let log = store.log().unwrap();
            assert_eq!(log.head(a).unwrap(), Seq(300));
            assert_eq!(log.head(b).unwrap(), Seq(5));
            assert_eq!(log.head(empty).unwrap(), Seq::ZERO);
            log.heads().collect::<Result<_, _>>().unwrap()
        };
        let expected = HashMap::from([(a, Seq(300)), (b, Seq(5))]);
        assert_eq!(heads(&store), expected);
        {
            // Damaged event keys (as `hearth verify` reports them) move no
            // head and hide no room: one too short to name a room, one
            // among a's events and one past them (both of the wrong
            // length), one naming a room with no events.
            let i = store.inner().unwrap();
            let damaged = |r: RoomId, tail: &[u8]| {
                let mut k = vec![log::EVENT];
                k.extend_from_slice(&r.to_bytes());
                k.extend_from_slice(tail);
                k
            };
            for k in [
                vec![log::EVENT, 7, 7],
                damaged(a, &[0xff; 7]),
                damaged(a, &[0xff; 9]),
                damaged(empty, &[1]),
            ] {
                i.roomlog.insert(k, &b"damaged"[..]).unwrap();
            }
        }
        assert_eq!(heads(&store), expected);
        {
            // Back to schema 1: head keys as its appends wrote them, one
            // stale and one for a room with no events.
            let i = store.inner().unwrap();
            for (r, seq) in [(a, 300u64), (b, 4), (empty, 9)] {
                let mut k = vec![log::HEAD];
                k.extend_from_slice(&r.to_bytes());
                i.roomlog.insert(k, &seq.to_be_bytes()).unwrap();
            }
            i.meta
                .insert(b"schema_version", &1u32.to_be_bytes())
                .unwrap();
        }
        store.flush().unwrap();
        drop(store);
        let store = reopen(dir.path());
        let i = store.inner().unwrap();
        assert_eq!(i.roomlog.scan_prefix([log::HEAD]).count(), 0);
        assert_eq!(
            i.meta.get(b"schema_version").unwrap().as_deref(),
            Some(&SCHEMA_VERSION.to_be_bytes()[..])
        );
        assert_eq!(heads(&store), expected);
    }

    /// The vendored sled writes a batch's sorted keys leaf by leaf, one
    /// copy and swap per run (`vendor/sled/PATCHED.md`). Batches shaped
    /// like the committer's (appends to a few rooms' logs, random keys as
    /// the dedup keys are, overwrites and deletions) must read back as a
    /// model map says, and again after the database is closed and opened
    /// again, when sled recovers them from its log. The tree grows index
    /// nodes over several levels (this copy splits them above 32
    /// children), then most keys are deleted so nodes merge, and the rest
    /// must read back the same way.
    #[test]
    fn batches_written_leaf_by_leaf_read_back_and_recover() {
        let dir = tempfile::tempdir().unwrap();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut rand = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let read = |tree: &sled::Tree| -> Vec<(IVec, IVec)> {
            tree.iter().map(|kv| kv.unwrap()).collect()
        };
        let expect = |model: &BTreeMap<Vec<u8>, Vec<u8>>| -> Vec<(IVec, IVec)> {
            model
                .iter()
                .map(|(k, v)| (k.as_slice().into(), v.as_slice().into()))
                .collect()
        };
        {
            let (db, tree) = bare_log(dir.path());
            let mut seq = [0u64; 8];
            for round in 0..400u64 {
                let mut batch = Batch::default();
                for _ in 0..60 {
                    let key = match rand() % 4 {
                        0 | 1 => {
                            let room = (rand() % 8) as usize;
                            seq[room] += 1;
                            [b"e".as_ref(), &[room as u8], &seq[room].to_be_bytes()].concat()
                        }
                        2 => [b"d".as_ref(), &rand().to_be_bytes()].concat(),
                        _ => match model.keys().nth(rand() as usize % model.len().max(1)) {
                            Some(existing) => existing.clone(),
                            None => continue,
                        },
                    };
                    if rand() % 10 == 0 {
                        batch.remove(key.clone());
                        model.remove(&key);
                    } else {
                        // Values on both sides of sled's inline size (22 bytes).
                        let value = vec![(round % 251) as u8; (rand() % 64) as usize];
                        batch.insert(key.clone(), value.clone());
                        model.insert(key, value);
                    }
                }
                tree.apply_batch(batch).unwrap();
                // Now and then a plain write between batches, as the
                // server's other writers make.
                if round % 7 == 0 {
                    let key = [b"s".as_ref(), &round.to_be_bytes()].concat();
                    tree.insert(&key, b"x".as_ref()).unwrap();
                    model.insert(key, b"x".to_vec());
                }
            }
            assert!(model.len() > 10_000, "{} keys", model.len());
            assert_eq!(read(&tree), expect(&model));
            db.flush().unwrap();
        }
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let tree = db.open_tree("log").unwrap();
        assert_eq!(read(&tree), expect(&model));
        // Then most keys go, in batches: leaves and index nodes empty out
        // and merge (index nodes split above 32 children and merge below
        // 8 in this copy of sled), and what is left reads back, again after
        // recovery.
        let keys: Vec<Vec<u8>> = model.keys().cloned().collect();
        for chunk in keys.chunks(97) {
            let mut batch = Batch::default();
            for key in chunk {
                if rand() % 10 != 0 {
                    batch.remove(key.clone());
                    model.remove(key);
                }
            }
            tree.apply_batch(batch).unwrap();
        }
        assert!(
            model.len() < keys.len() / 5,
            "{} of {} keys left",
            model.len(),
            keys.len()
        );
        assert_eq!(read(&tree), expect(&model));
        db.flush().unwrap();
        drop((tree, db));
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let tree = db.open_tree("log").unwrap();
        assert_eq!(read(&tree), expect(&model));
    }

    /// Readers scanning a room's log forward and backward while the
    /// committer appends to it (as resume, history and `head` do while
    /// messages arrive) get, from any start, every seq up to the head they
    /// knew of, and pages of exactly the keys asked for: no gap and no
    /// page cut short, while leaves split and parents grow under them.
    #[test]
    fn logs_scanned_while_appended_have_no_gaps() {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let (_db, tree) = bare_log(dir.path());
        const ROOMS: u8 = 3;
        const PER_ROOM: u64 = 3_000;
        const PAGE: usize = 50;
        // The log's own keys: long shared prefixes, as sled encodes them.
        let ids: Vec<RoomId> = (0..ROOMS).map(|_| RoomId::generate()).collect();
        let key = |room: u8, seq: u64| log::event_key(ids[room as usize], Seq(seq)).to_vec();
        let seq_of = |k: &[u8]| u64::from_be_bytes(k[17..25].try_into().unwrap());
        // Each room's seqs known written (stored after the batch is).
        let heads: Vec<AtomicU64> = (0..ROOMS).map(|_| AtomicU64::new(0)).collect();
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            for reader in 0..3u64 {
                let (tree, done, heads, key) = (&tree, &done, &heads, &key);
                s.spawn(move || {
                    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ reader;
                    let mut scans = 0;
                    while !done.load(Ordering::Relaxed) || scans < 50 {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        let room = (state % u64::from(ROOMS)) as u8;
                        let head = heads[room as usize].load(Ordering::Acquire);
                        if head == 0 {
                            continue;
                        }
                        let from = 1 + (state >> 8) % head;
                        let keys = |to: u64| tree.range(key(room, from)..=key(room, to)).keys();
                        let (got, want): (Vec<u64>, Vec<u64>) = match state % 4 {
                            // A page from `from` (resume, history forward).
                            0 => (
                                keys(head).take(PAGE).map(|k| seq_of(&k.unwrap())).collect(),
                                (from..=head).take(PAGE).collect(),
                            ),
                            // The newest page (history backward).
                            1 => (
                                keys(head)
                                    .rev()
                                    .take(PAGE)
                                    .map(|k| seq_of(&k.unwrap()))
                                    .collect(),
                                (from..=head).rev().take(PAGE).collect(),
                            ),
                            // To the end, whatever was added since (`head()`
                            // reads the last key this way).
                            2 => {
                                let got: Vec<u64> =
                                    keys(u64::MAX).map(|k| seq_of(&k.unwrap())).collect();
                                let n = got.len().max((head - from + 1) as usize);
                                (got, (from..).take(n).collect())
                            }
                            _ => {
                                let mut got: Vec<u64> =
                                    keys(u64::MAX).rev().map(|k| seq_of(&k.unwrap())).collect();
                                got.reverse();
                                let n = got.len().max((head - from + 1) as usize);
                                (got, (from..).take(n).collect())
                            }
                        };
                        assert_eq!(got, want, "room {room}, from {from}, head {head}");
                        scans += 1;
                    }
                });
            }
            // The committer: groups of appends to the rooms in turn, now
            // and then one room's run longer than a leaf.
            let mut next = [1u64; ROOMS as usize];
            let mut group = 0u64;
            while next.iter().any(|n| *n <= PER_ROOM) {
                let mut batch = Batch::default();
                for room in 0..ROOMS {
                    let n = if group % 17 == 0 {
                        40
                    } else {
                        1 + (group + u64::from(room)) % 5
                    };
                    for _ in 0..n {
                        let seq = next[room as usize];
                        if seq <= PER_ROOM {
                            batch.insert(key(room, seq), vec![room; 40]);
                            next[room as usize] += 1;
                        }
                    }
                }
                tree.apply_batch(batch).unwrap();
                for (head, next) in heads.iter().zip(next) {
                    head.store(next - 1, Ordering::Release);
                }
                group += 1;
            }
            done.store(true, Ordering::Relaxed);
        });
        for room in 0..ROOMS {
            let seqs: Vec<u64> = tree
                .range(key(room, 1)..=key(room, u64::MAX))
                .keys()
                .map(|k| seq_of(&k.unwrap()))
                .collect();
            assert_eq!(seqs, (1..=PER_ROOM).collect::<Vec<_>>());
        }
    }
}
