//! Storage: everything hearth keeps on disk, behind one small interface so
//! the engine (sled) stays an implementation detail.
//!
//! Trees, named for what they map (values are MessagePack records from
//! [`records`] unless noted):
//!
//! | tree               | key                                   | value                     |
//! |--------------------|---------------------------------------|---------------------------|
//! | `meta`             | `b"schema_version"`                   | u32 big-endian            |
//! | `userid_user`      | user id (16)                          | [`UserRecord`]            |
//! | `username_userid`  | lower-cased username                  | user id (16)              |
//! | `email_userid`     | lower-cased email                     | user id (16)              |
//! | `tokenhash_session`| SHA-256 of the token (32)             | [`SessionRecord`]         |
//! | `userid_tokenhash` | user id (16) ‖ token hash (32)        | empty                     |
//! | `roomid_room`      | room id (16)                          | [`RoomRecord`]            |
//! | `roomname_roomid`  | lower-cased room name                 | room id (16)              |
//! | `roomid_userid`    | room id (16) ‖ user id (16)           | joined-at millis (u64 BE) |
//! | `userid_roomid`    | user id (16) ‖ room id (16)           | empty                     |
//! | `roomlog`          | see [`log`]                           |                           |
//! | `invitecode_invite`| SHA-256 of the invite code (32)       | [`InviteRecord`]          |
//!
//! The room log keeps events, dedup keys and each room's head in one tree so
//! that one atomic batch covers all three (sled batches are per tree).

pub mod backup;
pub mod log;
pub mod records;
pub mod verify;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

pub use records::{InviteRecord, RoomRecord, SessionRecord, UserRecord};

use crate::config::Durability;
use crate::ids::{Millis, RoomId, UserId};
use crate::locks::{read, write};

/// The layout version this binary writes. Bump it with a migration in
/// [`Store::migrate`] whenever a key layout or record changes incompatibly.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    #[error("record {tree}/{key} cannot be decoded: {message}")]
    Corrupt {
        tree: &'static str,
        key: String,
        message: String,
    },
    #[error("the data directory {path} was written by a newer hearth (schema {found}, this binary knows up to {SCHEMA_VERSION}); run the newer version or restore a backup")]
    NewerSchema { path: PathBuf, found: u32 },
    #[error("cannot open the data directory {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("cannot sync the database to disk: {0}")]
    Sync(std::io::Error),
    #[error("the database is being reopened after a storage failure")]
    Unavailable,
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Why a new account could not be created.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    Username,
    Email,
}

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
}

struct Inner {
    db: sled::Db,
    dir: PathBuf,
    /// The log file, kept open for `fdatasync` under strict durability.
    sync_file: Option<File>,
    meta: sled::Tree,
    userid_user: sled::Tree,
    username_userid: sled::Tree,
    email_userid: sled::Tree,
    tokenhash_session: sled::Tree,
    userid_tokenhash: sled::Tree,
    roomid_room: sled::Tree,
    roomname_roomid: sled::Tree,
    roomid_userid: sled::Tree,
    userid_roomid: sled::Tree,
    roomlog: sled::Tree,
    invitecode_invite: sled::Tree,
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
        let opened = std::panic::catch_unwind(|| {
            sled::Config::new()
                .path(&db_dir)
                .cache_capacity(cache_bytes)
                .flush_every_ms(Some(500))
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
            db,
            dir: dir.to_path_buf(),
            sync_file,
        };
        inner.migrate(had_data)?;
        Ok(inner)
    }

    /// Brings an older layout up to [`SCHEMA_VERSION`], or refuses a newer one.
    fn migrate(&self, had_data: bool) -> Result<()> {
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
            });
        }
        // Migrations from `found` to SCHEMA_VERSION go here, one step each.
        if found < SCHEMA_VERSION {
            self.meta
                .insert(b"schema_version", &SCHEMA_VERSION.to_be_bytes())?;
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
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
            }),
        })
    }

    /// Every entry of one tree, in key order.
    fn scan(
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
    fn inner(&self) -> Result<Arc<Inner>> {
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

    // ---- users ----

    /// Creates an account, its username and email unique case-insensitively.
    pub fn create_user(&self, user: &UserRecord) -> Result<Result<(), Taken>> {
        let i = &self.inner()?;
        let id = user.id.to_bytes();
        let value = records::encode(user);
        let uname = user.username.to_lowercase();
        let email = user.email.to_lowercase();
        let res = (&i.userid_user, &i.username_userid, &i.email_userid).transaction(
            |(users, by_name, by_email)| {
                if by_name.get(uname.as_bytes())?.is_some() {
                    return Err(ConflictableTransactionError::Abort(Taken::Username));
                }
                if by_email.get(email.as_bytes())?.is_some() {
                    return Err(ConflictableTransactionError::Abort(Taken::Email));
                }
                by_name.insert(uname.as_bytes(), &id)?;
                by_email.insert(email.as_bytes(), &id)?;
                users.insert(&id, value.as_slice())?;
                Ok(())
            },
        );
        match res {
            Ok(()) => Ok(Ok(())),
            Err(TransactionError::Abort(taken)) => Ok(Err(taken)),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    pub fn user(&self, id: UserId) -> Result<Option<UserRecord>> {
        self.inner()?
            .userid_user
            .get(id.to_bytes())?
            .map(|v| records::decode("userid_user", &id.to_string(), &v))
            .transpose()
    }

    /// Finds a live account by username or email, case-insensitively.
    pub fn user_by_login(&self, login: &str) -> Result<Option<UserRecord>> {
        let key = login.to_lowercase();
        let i = self.inner()?;
        let index = if key.contains('@') {
            &i.email_userid
        } else {
            &i.username_userid
        };
        let Some(id) = index.get(key.as_bytes())? else {
            return Ok(None);
        };
        let Some(id) = UserId::from_slice(&id) else {
            return Ok(None);
        };
        self.user(id)
    }

    pub fn put_user(&self, user: &UserRecord) -> Result<()> {
        self.inner()?
            .userid_user
            .insert(user.id.to_bytes(), records::encode(user))?;
        Ok(())
    }

    /// Marks an account deleted: its record stays (old messages still name an
    /// author) but its name, email and password are released.
    pub fn delete_user(&self, user: &UserRecord) -> Result<()> {
        let i = &self.inner()?;
        let mut tomb = user.clone();
        tomb.deleted = true;
        tomb.email.clear();
        tomb.password_hash.clear();
        let value = records::encode(&tomb);
        let id = user.id.to_bytes();
        let uname = user.username.to_lowercase();
        let email = user.email.to_lowercase();
        (&i.userid_user, &i.username_userid, &i.email_userid)
            .transaction(|(users, by_name, by_email)| {
                by_name.remove(uname.as_bytes())?;
                by_email.remove(email.as_bytes())?;
                users.insert(&id, value.as_slice())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => StorageError::Sled(e),
                TransactionError::Abort(()) => {
                    StorageError::Sled(sled::Error::ReportableBug("delete_user aborted".into()))
                }
            })?;
        Ok(())
    }

    pub fn users(&self) -> impl Iterator<Item = Result<UserRecord>> + '_ {
        self.scan(|i| &i.userid_user).map(|kv| {
            let (k, v) = kv?;
            records::decode("userid_user", &hex(&k), &v)
        })
    }

    // ---- sessions ----

    pub fn put_session(&self, hash: &[u8; 32], session: &SessionRecord) -> Result<()> {
        let i = &self.inner()?;
        let mut index_key = session.user.to_bytes().to_vec();
        index_key.extend_from_slice(hash);
        i.tokenhash_session.insert(hash, records::encode(session))?;
        i.userid_tokenhash.insert(index_key, &[])?;
        Ok(())
    }

    /// Moves a session's last use forward, only if the session still
    /// exists: a use racing a logout must not bring the session back.
    pub fn touch_session(&self, hash: &[u8; 32], session: &SessionRecord) -> Result<()> {
        let bytes = records::encode(session);
        self.inner()?
            .tokenhash_session
            .fetch_and_update(hash, |old| old.map(|_| bytes.clone()))?;
        Ok(())
    }

    pub fn session(&self, hash: &[u8; 32]) -> Result<Option<SessionRecord>> {
        self.inner()?
            .tokenhash_session
            .get(hash)?
            .map(|v| records::decode("tokenhash_session", &hex(hash), &v))
            .transpose()
    }

    pub fn remove_session(&self, hash: &[u8; 32]) -> Result<Option<SessionRecord>> {
        let i = &self.inner()?;
        let Some(old) = i.tokenhash_session.remove(hash)? else {
            return Ok(None);
        };
        let rec: SessionRecord = records::decode("tokenhash_session", &hex(hash), &old)?;
        let mut index_key = rec.user.to_bytes().to_vec();
        index_key.extend_from_slice(hash);
        i.userid_tokenhash.remove(index_key)?;
        Ok(Some(rec))
    }

    /// Every session hash of one user.
    pub fn sessions_of(&self, user: UserId) -> Result<Vec<[u8; 32]>> {
        let mut out = Vec::new();
        for kv in self.inner()?.userid_tokenhash.scan_prefix(user.to_bytes()) {
            let (k, _) = kv?;
            if let Ok(hash) = <[u8; 32]>::try_from(&k[16..]) {
                out.push(hash);
            }
        }
        Ok(out)
    }

    // ---- rooms and memberships ----

    pub fn create_room(&self, room: &RoomRecord, creator: UserId) -> Result<Result<(), ()>> {
        let i = &self.inner()?;
        let id = room.id.to_bytes();
        let value = records::encode(room);
        let name = room.name.to_lowercase();
        let (rm, um) = membership_keys(room.id, creator);
        let joined = room.created_at.0.to_be_bytes();
        let res = (
            &i.roomid_room,
            &i.roomname_roomid,
            &i.roomid_userid,
            &i.userid_roomid,
        )
            .transaction(|(rooms, by_name, room_users, user_rooms)| {
                if by_name.get(name.as_bytes())?.is_some() {
                    return Err(ConflictableTransactionError::Abort(()));
                }
                by_name.insert(name.as_bytes(), &id)?;
                rooms.insert(&id, value.as_slice())?;
                room_users.insert(&rm, &joined)?;
                user_rooms.insert(&um, &[])?;
                Ok(())
            });
        match res {
            Ok(()) => Ok(Ok(())),
            Err(TransactionError::Abort(())) => Ok(Err(())),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    pub fn rooms(&self) -> impl Iterator<Item = Result<RoomRecord>> + '_ {
        self.scan(|i| &i.roomid_room).map(|kv| {
            let (k, v) = kv?;
            records::decode("roomid_room", &hex(&k), &v)
        })
    }

    /// Every (room, user) membership.
    pub fn memberships(&self) -> impl Iterator<Item = Result<(RoomId, UserId)>> + '_ {
        self.scan(|i| &i.roomid_userid).map(|kv| {
            let (k, _) = kv?;
            match (
                RoomId::from_slice(&k[..16]),
                k.get(16..).and_then(UserId::from_slice),
            ) {
                (Some(r), Some(u)) if k.len() == 32 => Ok((r, u)),
                _ => Err(StorageError::Corrupt {
                    tree: "roomid_userid",
                    key: hex(&k),
                    message: "key is not room id ‖ user id".into(),
                }),
            }
        })
    }

    pub fn add_member(&self, room: RoomId, user: UserId) -> Result<()> {
        let i = &self.inner()?;
        let (rm, um) = membership_keys(room, user);
        let now = crate::ids::Millis::now().0.to_be_bytes();
        (&i.roomid_userid, &i.userid_roomid)
            .transaction(|(room_users, user_rooms)| {
                room_users.insert(&rm, &now)?;
                user_rooms.insert(&um, &[])?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(tx_error)
    }

    pub fn remove_member(&self, room: RoomId, user: UserId) -> Result<()> {
        let i = &self.inner()?;
        let (rm, um) = membership_keys(room, user);
        (&i.roomid_userid, &i.userid_roomid)
            .transaction(|(room_users, user_rooms)| {
                room_users.remove(&rm)?;
                user_rooms.remove(&um)?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(tx_error)
    }

    /// Renames a room, keeping its name index unique. `Err(())` when the
    /// new name is taken by another room.
    pub fn rename_room(&self, room: &RoomRecord, new_name: &str) -> Result<Result<(), ()>> {
        let i = &self.inner()?;
        let id = room.id.to_bytes();
        let old = room.name.to_lowercase();
        let new = new_name.to_lowercase();
        let mut renamed = room.clone();
        renamed.name = new_name.to_string();
        let value = records::encode(&renamed);
        let res = (&i.roomid_room, &i.roomname_roomid).transaction(|(rooms, by_name)| {
            if let Some(holder) = by_name.get(new.as_bytes())? {
                if holder.as_ref() != id {
                    return Err(ConflictableTransactionError::Abort(()));
                }
            }
            by_name.remove(old.as_bytes())?;
            by_name.insert(new.as_bytes(), &id)?;
            rooms.insert(&id, value.as_slice())?;
            Ok(())
        });
        match res {
            Ok(()) => Ok(Ok(())),
            Err(TransactionError::Abort(())) => Ok(Err(())),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Removes a room for good: its record, name, memberships and whole log.
    /// The caller stops new appends first (the room leaves the registry).
    pub fn delete_room(&self, room: &RoomRecord) -> Result<()> {
        let i = &self.inner()?;
        let id = room.id.to_bytes();
        let members: Vec<UserId> = i
            .roomid_userid
            .scan_prefix(id)
            .keys()
            .filter_map(|k| k.ok().and_then(|k| UserId::from_slice(&k[16..])))
            .collect();
        for user in members {
            self.remove_member(room.id, user)?;
        }
        (&i.roomid_room, &i.roomname_roomid)
            .transaction(|(rooms, by_name)| {
                by_name.remove(room.name.to_lowercase().as_bytes())?;
                rooms.remove(&id)?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(tx_error)?;
        self.log()?.delete_room(room.id)
    }

    pub fn room(&self, id: RoomId) -> Result<Option<RoomRecord>> {
        self.inner()?
            .roomid_room
            .get(id.to_bytes())?
            .map(|v| records::decode("roomid_room", &id.to_string(), &v))
            .transpose()
    }

    // ---- invites ----

    pub fn put_invite(&self, code_hash: &[u8; 32], invite: &InviteRecord) -> Result<()> {
        self.inner()?
            .invitecode_invite
            .insert(code_hash, records::encode(invite))?;
        Ok(())
    }

    /// Uses up one signup of an invite, atomically; `None` when the code is
    /// unknown, used up or expired.
    pub fn take_invite(&self, code_hash: &[u8; 32], now: Millis) -> Result<Option<InviteRecord>> {
        let tree = &self.inner()?.invitecode_invite;
        loop {
            let Some(old) = tree.get(code_hash)? else {
                return Ok(None);
            };
            let mut invite: InviteRecord =
                records::decode("invitecode_invite", &hex(code_hash), &old)?;
            if invite.uses_left == 0 || invite.expires_at.is_some_and(|t| t <= now) {
                return Ok(None);
            }
            invite.uses_left -= 1;
            let new = records::encode(&invite);
            if tree
                .compare_and_swap(code_hash, Some(old), Some(new))?
                .is_ok()
            {
                return Ok(Some(invite));
            }
        }
    }

    /// Gives back a use taken by [`Store::take_invite`] whose signup failed.
    pub fn return_invite(&self, code_hash: &[u8; 32]) -> Result<()> {
        self.inner()?
            .invitecode_invite
            .update_and_fetch(code_hash, |old| {
                let mut invite: InviteRecord = crate::protocol::msgpack_from_slice(old?).ok()?;
                invite.uses_left += 1;
                Some(records::encode(&invite))
            })?;
        Ok(())
    }

    /// Every invite, with the hex of its code's hash (the only handle on
    /// an invite once its code has been shown).
    pub fn invites(&self) -> impl Iterator<Item = Result<(String, InviteRecord)>> + '_ {
        self.scan(|i| &i.invitecode_invite).map(|kv| {
            let (k, v) = kv?;
            let id = hex(&k);
            let invite = records::decode("invitecode_invite", &id, &v)?;
            Ok((id, invite))
        })
    }

    /// Removes the invite with this code hash; `false` if there was none.
    pub fn remove_invite(&self, hash: &[u8]) -> Result<bool> {
        Ok(self.inner()?.invitecode_invite.remove(hash)?.is_some())
    }

    pub fn log(&self) -> Result<log::RoomLog> {
        Ok(log::RoomLog::new(self.inner()?.roomlog.clone()))
    }
}

fn membership_keys(room: RoomId, user: UserId) -> ([u8; 32], [u8; 32]) {
    let mut rm = [0u8; 32];
    rm[..16].copy_from_slice(&room.to_bytes());
    rm[16..].copy_from_slice(&user.to_bytes());
    let mut um = [0u8; 32];
    um[..16].copy_from_slice(&user.to_bytes());
    um[16..].copy_from_slice(&room.to_bytes());
    (rm, um)
}

fn tx_error(e: TransactionError<()>) -> StorageError {
    match e {
        TransactionError::Storage(e) => StorageError::Sled(e),
        TransactionError::Abort(()) => {
            StorageError::Sled(sled::Error::ReportableBug("transaction aborted".into()))
        }
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

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
