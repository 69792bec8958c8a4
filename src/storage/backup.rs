//! Backups: a consistent, online, logical copy of the store, and its
//! restore into an empty data directory.
//!
//! sled has no snapshots, so consistency comes from the order of reading:
//! users and rooms first (their ids become the snapshot; a user's avatar is
//! read with their record in one transaction), then the records that refer
//! to them, keeping only references to what was taken; each
//! room's log is copied up to the head read for it, so every message
//! acknowledged before the backup began is in it (its event and head were
//! written before the acknowledgement) and no half-written append is. Name
//! indexes and reverse membership/session indexes are derived from the
//! records as they are written, so the copy is consistent with itself even
//! while the server takes writes.
//!
//! File layout (all inside one gzip stream, integers big-endian):
//!
//! ```text
//! "HEARTH-BACKUP\n" ‖ format (u32) ‖ schema (u32) ‖ tree count (u16) ‖ names (u8 len ‖ bytes)…
//! entries: tree index (u8) ‖ key len (u32) ‖ key ‖ value len (u32) ‖ value
//! end:     0xFF ‖ entry count (u64)
//! ```

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use super::error::{Result, StorageError};
use super::log;
use super::records::{self, PushSubRecord, ResetRecord, RoomRecord, SessionRecord, UserRecord};
use super::store::{hex, Store, SCHEMA_VERSION};
use crate::config::Durability;
use crate::ids::{RoomId, UserId};

const MAGIC: &[u8] = b"HEARTH-BACKUP\n";
const FORMAT: u32 = 1;
const END: u8 = 0xFF;

/// The trees a backup holds, in the order written. The index is the byte
/// each entry starts with.
const TREES: [&str; 24] = [
    "meta",
    "userid_user",
    "username_userid",
    "email_userid",
    "roomid_room",
    "roomname_roomid",
    "roomid_userid",
    "userid_roomid",
    "tokenhash_session",
    "userid_tokenhash",
    "invitecode_invite",
    "roomlog",
    "userid_roomid_readseq",
    "userid_avatar",
    "hooksecret_hook",
    "userid_callback",
    "userid_roomid_notify",
    "resetcode_reset",
    "fileid_file",
    "hash_fileid",
    "userid_fileid",
    "userid_endpointhash_pushsub",
    // Not trees: a file's bytes and its thumbnail, keyed by content hash,
    // restored to the data directory's `files/`.
    BLOB,
    THUMB,
];

/// The entries holding a blob's bytes (key: content hash).
const BLOB: &str = "file_blob";
/// The entries holding a thumbnail's PNG (key: content hash).
const THUMB: &str = "file_thumb";

/// What a backup or restore copied.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub users: u64,
    pub rooms: u64,
    pub memberships: u64,
    pub sessions: u64,
    pub invites: u64,
    pub events: u64,
    #[serde(default)]
    pub avatars: u64,
    #[serde(default)]
    pub files: u64,
    /// Every key/value written, all trees together.
    pub entries: u64,
}

impl From<sled::Error> for BackupError {
    fn from(e: sled::Error) -> Self {
        BackupError::Storage(e.into())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{path}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} already exists; choose a new file name (backups never overwrite)")]
    Exists(String),
    #[error("{0} is not empty; restore only into a new or empty directory")]
    NotEmpty(String),
    #[error("{path} is not a hearth backup: {why}")]
    Invalid { path: String, why: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Store {
    /// Writes a consistent copy of the store to `path` (a new file), safe to
    /// run while the server takes writes.
    pub fn backup_to(&self, path: &Path) -> Result<Summary, BackupError> {
        if path.exists() {
            return Err(BackupError::Exists(path.display().to_string()));
        }
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = std::path::PathBuf::from(partial);
        let file = std::fs::File::create(&partial).map_err(io(&partial))?;
        let mut out = Writer {
            out: GzEncoder::new(BufWriter::new(file), flate2::Compression::fast()),
            summary: Summary::default(),
        };
        let written = self
            .write_backup(&mut out)
            .and_then(|()| {
                let buffered = out.out.finish().map_err(io(&partial))?;
                let file = buffered
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .map_err(io(&partial))?;
                file.sync_all().map_err(io(&partial))
            })
            .and_then(|()| std::fs::rename(&partial, path).map_err(io(path)));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
        Ok(out.summary)
    }

    fn write_backup<W: Write>(&self, out: &mut Writer<W>) -> Result<(), BackupError> {
        let i = &self.inner()?;
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&FORMAT.to_be_bytes());
        header.extend_from_slice(&SCHEMA_VERSION.to_be_bytes());
        header.extend_from_slice(&(TREES.len() as u16).to_be_bytes());
        for name in TREES {
            header.push(name.len() as u8);
            header.extend_from_slice(name.as_bytes());
        }
        out.raw(&header)?;
        for kv in i.meta.iter() {
            let (k, v) = kv?;
            out.entry("meta", &k, &v)?;
        }

        let mut users: HashMap<UserId, bool> = HashMap::new();
        for kv in i.userid_user.iter() {
            let (k, mut v) = kv?;
            let mut user: UserRecord = records::decode("userid_user", &hex(&k), &v)?;
            let mut avatar = None;
            if user.avatar.is_some() {
                // The record and its picture as they were at one moment:
                // the record iterated may already name an older picture.
                let Some((record, png)) = self.user_with_avatar(user.id)? else {
                    continue;
                };
                user = records::decode("userid_user", &hex(&k), &record)?;
                v = record;
                avatar = png.filter(|_| user.avatar.is_some());
            }
            users.insert(user.id, user.deleted);
            out.entry("userid_user", &k, &v)?;
            out.summary.users += 1;
            if let Some(png) = avatar {
                out.entry("userid_avatar", &k, &png)?;
                out.summary.avatars += 1;
            }
            if !user.deleted {
                out.entry(
                    "username_userid",
                    user.username.to_lowercase().as_bytes(),
                    &k,
                )?;
                out.entry("email_userid", user.email.to_lowercase().as_bytes(), &k)?;
            }
        }

        let mut rooms: HashSet<RoomId> = HashSet::new();
        for kv in i.roomid_room.iter() {
            let (k, v) = kv?;
            let room: RoomRecord = records::decode("roomid_room", &hex(&k), &v)?;
            rooms.insert(room.id);
            out.entry("roomid_room", &k, &v)?;
            if let Some(key) = room.index_key() {
                out.entry("roomname_roomid", &key, &k)?;
            }
            out.summary.rooms += 1;
        }

        let live_user = |u: Option<UserId>| u.and_then(|u| users.get(&u)) == Some(&false);
        for kv in i.roomid_userid.iter() {
            let (k, v) = kv?;
            let room = RoomId::from_slice(&k[..k.len().min(16)]);
            let user = k.get(16..).and_then(UserId::from_slice);
            if k.len() != 32 || !room.is_some_and(|r| rooms.contains(&r)) || !live_user(user) {
                continue;
            }
            let mut twin = k[16..].to_vec();
            twin.extend_from_slice(&k[..16]);
            out.entry("roomid_userid", &k, &v)?;
            out.entry("userid_roomid", &twin, &[])?;
            out.summary.memberships += 1;
        }

        // Per member and room: read cursors and notification levels, for
        // live members of rooms that exist.
        let member_room = |k: &[u8]| {
            let user = k.get(..16).and_then(UserId::from_slice);
            let room = k.get(16..32).and_then(RoomId::from_slice);
            k.len() == 32 && live_user(user) && room.is_some_and(|r| rooms.contains(&r))
        };
        for (name, tree) in [
            ("userid_roomid_readseq", &i.userid_roomid_readseq),
            ("userid_roomid_notify", &i.userid_roomid_notify),
        ] {
            for kv in tree.iter() {
                let (k, v) = kv?;
                if member_room(&k) {
                    out.entry(name, &k, &v)?;
                }
            }
        }
        // Webhooks of rooms that exist, and live bots' callbacks.
        for kv in i.hooksecret_hook.iter() {
            let (k, v) = kv?;
            let hook: records::HookRecord = records::decode("hooksecret_hook", &hex(&k), &v)?;
            if rooms.contains(&hook.room) && live_user(Some(hook.bot)) {
                out.entry("hooksecret_hook", &k, &v)?;
            }
        }
        for kv in i.userid_callback.iter() {
            let (k, v) = kv?;
            if live_user(UserId::from_slice(&k)) {
                out.entry("userid_callback", &k, &v)?;
            }
        }

        let mut sessions: HashSet<Vec<u8>> = HashSet::new();
        for kv in i.tokenhash_session.iter() {
            let (k, v) = kv?;
            let session: SessionRecord = records::decode("tokenhash_session", &hex(&k), &v)?;
            if !live_user(Some(session.user)) {
                continue;
            }
            sessions.insert(k.to_vec());
            let mut index = session.user.to_bytes().to_vec();
            index.extend_from_slice(&k);
            out.entry("tokenhash_session", &k, &v)?;
            out.entry("userid_tokenhash", &index, &[])?;
            out.summary.sessions += 1;
        }

        // Push subscriptions of the sessions kept (they end together).
        for kv in i.userid_endpointhash_pushsub.iter() {
            let (k, v) = kv?;
            let sub: PushSubRecord = records::decode("userid_endpointhash_pushsub", &hex(&k), &v)?;
            if sessions.contains(sub.session.as_slice()) {
                out.entry("userid_endpointhash_pushsub", &k, &v)?;
            }
        }

        for kv in i.invitecode_invite.iter() {
            let (k, v) = kv?;
            out.entry("invitecode_invite", &k, &v)?;
            out.summary.invites += 1;
        }

        for kv in i.resetcode_reset.iter() {
            let (k, v) = kv?;
            let reset: ResetRecord = records::decode("resetcode_reset", &hex(&k), &v)?;
            if live_user(Some(reset.user)) {
                out.entry("resetcode_reset", &k, &v)?;
            }
        }

        let roomlog = self.log()?;
        let mut sorted: Vec<RoomId> = rooms.into_iter().collect();
        sorted.sort();
        for room in sorted {
            let head = roomlog.head(room)?;
            if head.0 == 0 {
                continue;
            }
            let first = log::event_key(room, crate::ids::Seq(1));
            let last = log::event_key(room, head);
            for kv in i.roomlog.range(first..=last) {
                let (k, v) = kv?;
                out.entry("roomlog", &k, &v)?;
                out.summary.events += 1;
            }
            let mut prefix = vec![log::DEDUP];
            prefix.extend_from_slice(&room.to_bytes());
            for kv in i.roomlog.scan_prefix(prefix) {
                let (k, v) = kv?;
                if log::seq_value(&v) <= head {
                    out.entry("roomlog", &k, &v)?;
                }
            }
        }

        // After the log: a file attached after its message was copied is
        // left out with the message. A file freed meanwhile is missing from
        // the copy (verify after a restore says so).
        let mut blobs_written = HashSet::new();
        for record in self.all_files() {
            let record = record?;
            let f = &record.file;
            let blob = self.blob_path(&f.hash);
            let Ok(meta) = std::fs::metadata(&blob) else {
                tracing::warn!(file = %f.id, "A file's bytes are missing; it is left out of the backup.");
                continue;
            };
            if blobs_written.insert(f.hash) {
                let thumb = self.thumb_path(&f.hash);
                out.entry_from_file(BLOB, &f.hash.0, &blob, meta.len())?;
                if let Ok(png) = std::fs::read(&thumb) {
                    out.entry(THUMB, &f.hash.0, &png)?;
                }
            }
            let id = f.id.to_bytes();
            out.entry("fileid_file", &id, &records::encode(&record))?;
            let mut by_hash = f.hash.0.to_vec();
            by_hash.extend_from_slice(&id);
            out.entry("hash_fileid", &by_hash, &[])?;
            let mut by_user = record.uploader.to_bytes().to_vec();
            by_user.extend_from_slice(&id);
            out.entry("userid_fileid", &by_user, &f.size.to_be_bytes())?;
            out.summary.files += 1;
        }

        let mut end = vec![END];
        end.extend_from_slice(&out.summary.entries.to_be_bytes());
        out.raw(&end)
    }

    /// Restores a backup into `dir`, which must be missing or empty, and
    /// returns what was copied. The result is flushed before returning.
    pub fn restore_from(
        backup: &Path,
        dir: &Path,
        cache_bytes: u64,
    ) -> Result<(Store, Summary), BackupError> {
        if dir.exists() {
            let mut entries = std::fs::read_dir(dir).map_err(io(dir))?;
            if entries.next().is_some() {
                return Err(BackupError::NotEmpty(dir.display().to_string()));
            }
        }
        let file = std::fs::File::open(backup).map_err(io(backup))?;
        let mut input = GzDecoder::new(BufReader::new(file));
        let invalid = |why: String| BackupError::Invalid {
            path: backup.display().to_string(),
            why,
        };
        let mut magic = vec![0u8; MAGIC.len()];
        input
            .read_exact(&mut magic)
            .map_err(|e| invalid(format!("cannot read the header ({e})")))?;
        if magic != MAGIC {
            return Err(invalid("the header is wrong".into()));
        }
        let format = read_u32(&mut input).map_err(io(backup))?;
        let schema = read_u32(&mut input).map_err(io(backup))?;
        if format != FORMAT || schema > SCHEMA_VERSION {
            return Err(invalid(format!(
                "it is format {format}, schema {schema}; this hearth reads format {FORMAT} up to schema {SCHEMA_VERSION}"
            )));
        }
        let mut count = [0u8; 2];
        input.read_exact(&mut count).map_err(io(backup))?;
        let mut names = Vec::new();
        for _ in 0..u16::from_be_bytes(count) {
            let mut len = [0u8; 1];
            input.read_exact(&mut len).map_err(io(backup))?;
            let mut name = vec![0u8; len[0] as usize];
            input.read_exact(&mut name).map_err(io(backup))?;
            let name =
                String::from_utf8(name).map_err(|_| invalid("a tree name is not UTF-8".into()))?;
            if !TREES.contains(&name.as_str()) {
                return Err(invalid(format!("it holds an unknown tree {name:?}")));
            }
            names.push(name);
        }

        let store = Store::open(dir, cache_bytes, Durability::Flush)?;
        // A backup carries the log's events; what they made of each
        // message is derived from them again.
        let imported = import(&store, &names, &mut input, backup).and_then(|summary| {
            let log = store.log()?;
            log.rebuild_states()?;
            store.flush()?;
            Ok(summary)
        });
        match imported {
            Ok(summary) => Ok((store, summary)),
            Err(e) => {
                // Leave the directory as empty as it was found.
                drop(store);
                let _ = std::fs::remove_dir_all(dir.join("db"));
                Err(e)
            }
        }
    }
}

/// Writes every entry of a backup into `store`, checking the end marker.
fn import(
    store: &Store,
    names: &[String],
    input: &mut impl Read,
    backup: &Path,
) -> Result<Summary, BackupError> {
    let invalid = |why: String| BackupError::Invalid {
        path: backup.display().to_string(),
        why,
    };
    let inner = store.inner()?;
    let trees: Vec<Option<sled::Tree>> = names
        .iter()
        .map(|n| match n.as_str() {
            BLOB | THUMB => Ok(None),
            n => inner.db.open_tree(n).map(Some),
        })
        .collect::<Result<_, _>>()
        .map_err(StorageError::from)?;
    let mut batches: Vec<sled::Batch> = names.iter().map(|_| sled::Batch::default()).collect();
    let mut pending = 0usize;
    let mut summary = Summary::default();
    loop {
        let mut tag = [0u8; 1];
        input
            .read_exact(&mut tag)
            .map_err(|_| invalid("it is truncated (no end marker)".into()))?;
        if tag[0] == END {
            let mut n = [0u8; 8];
            input.read_exact(&mut n).map_err(io(backup))?;
            if u64::from_be_bytes(n) != summary.entries {
                return Err(invalid(format!(
                    "it says {} entries but holds {}",
                    u64::from_be_bytes(n),
                    summary.entries
                )));
            }
            break;
        }
        let t = tag[0] as usize;
        if t >= names.len() {
            return Err(invalid(format!("an entry names tree #{t}")));
        }
        let key = read_bytes(input).map_err(io(backup))?;
        if let BLOB | THUMB = names[t].as_str() {
            let hash = crate::ids::ContentHash::from_slice(&key)
                .ok_or_else(|| invalid("a file's key is not a content hash".into()))?;
            let path = if names[t] == BLOB {
                store.blob_path(&hash)
            } else {
                store.thumb_path(&hash)
            };
            let len = read_u32(input).map_err(io(backup))?;
            write_file(store, &path, &mut input.take(u64::from(len)), len)?;
            summary.entries += 1;
            continue;
        }
        let value = read_bytes(input).map_err(io(backup))?;
        match names[t].as_str() {
            "userid_user" => summary.users += 1,
            "roomid_room" => summary.rooms += 1,
            "roomid_userid" => summary.memberships += 1,
            "tokenhash_session" => summary.sessions += 1,
            "invitecode_invite" => summary.invites += 1,
            "userid_avatar" => summary.avatars += 1,
            "fileid_file" => summary.files += 1,
            "roomlog" if key.first() == Some(&log::EVENT) => summary.events += 1,
            _ => {}
        }
        summary.entries += 1;
        batches[t].insert(key, value);
        pending += 1;
        if pending >= 10_000 {
            for (tree, batch) in trees.iter().zip(batches.iter_mut()) {
                if let Some(tree) = tree {
                    tree.apply_batch(std::mem::take(batch))
                        .map_err(StorageError::from)?;
                }
            }
            pending = 0;
        }
    }
    for (tree, batch) in trees.iter().zip(batches) {
        if let Some(tree) = tree {
            tree.apply_batch(batch).map_err(StorageError::from)?;
        }
    }
    // Restored into an empty directory: a backup without a schema version
    // is from before versions were recorded, not damage.
    inner.migrate(false)?;
    inner.flush()?;
    Ok(summary)
}

/// Writes `len` bytes from `input` to `path` as a new file: to `files/tmp/`
/// first, fsynced, then renamed into place.
fn write_file(
    store: &Store,
    path: &Path,
    input: &mut impl Read,
    len: u32,
) -> Result<(), BackupError> {
    let (tmp, mut file) = store.upload_temp()?;
    let copied = std::io::copy(input, &mut file)
        .and_then(|n| {
            if n == u64::from(len) {
                file.sync_all()
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            }
        })
        .and_then(|()| {
            std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
            std::fs::rename(&tmp, path)
        });
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(path)(e));
    }
    Ok(())
}

struct Writer<W: Write> {
    out: W,
    summary: Summary,
}

impl<W: Write> Writer<W> {
    fn raw(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        self.out.write_all(bytes).map_err(|source| BackupError::Io {
            path: "the backup file".into(),
            source,
        })
    }

    /// An entry whose value is a file's `len` bytes, streamed from disk.
    fn entry_from_file(
        &mut self,
        tree: &str,
        key: &[u8],
        path: &Path,
        len: u64,
    ) -> Result<(), BackupError> {
        let len32 = u32::try_from(len).map_err(|_| BackupError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other("a file of 4 GiB or more cannot be backed up"),
        })?;
        let index = TREES
            .iter()
            .position(|t| *t == tree)
            .expect("every tree written is listed in TREES") as u8;
        let mut head = Vec::with_capacity(9);
        head.push(index);
        head.extend_from_slice(&(key.len() as u32).to_be_bytes());
        self.raw(&head)?;
        self.raw(key)?;
        self.raw(&len32.to_be_bytes())?;
        let file = std::fs::File::open(path).map_err(io(path))?;
        let copied = std::io::copy(&mut file.take(len), &mut self.out).map_err(io(path))?;
        if copied != len {
            return Err(io(path)(std::io::ErrorKind::UnexpectedEof.into()));
        }
        self.summary.entries += 1;
        Ok(())
    }

    fn entry(&mut self, tree: &str, key: &[u8], value: &[u8]) -> Result<(), BackupError> {
        let index = TREES
            .iter()
            .position(|t| *t == tree)
            .expect("every tree written is listed in TREES") as u8;
        let mut head = Vec::with_capacity(9);
        head.push(index);
        head.extend_from_slice(&(key.len() as u32).to_be_bytes());
        self.raw(&head)?;
        self.raw(key)?;
        self.raw(&(value.len() as u32).to_be_bytes())?;
        self.raw(value)?;
        self.summary.entries += 1;
        Ok(())
    }
}

fn read_u32(r: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn read_bytes(r: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let len = read_u32(r)? as usize;
    let mut v = Vec::new();
    r.take(len as u64).read_to_end(&mut v)?;
    if v.len() != len {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(v)
}
