//! Export and import: a server's users, rooms and room logs to and from the
//! JSON Lines format of [`crate::archive`] (documented in docs/export.md).
//!
//! **Export** reads the store in one streaming pass per room (events in
//! chunks, never a whole log in memory) and writes `FILE.partial`, synced
//! and renamed, so a half-written export never has the final name. On a
//! live server each room is exported up to the head it had when the export
//! reached it.
//!
//! **Import** reads the file twice. The first pass checks every line and
//! every clash with what the server holds, and writes nothing: a damaged
//! or cut line, an unknown author, a username taken by another account, a
//! room whose log differs from the file's, each is an error naming its
//! line, and the server is unchanged. The second pass creates missing
//! accounts (with no password: they cannot log in until a reset link or
//! `hearth user passwd` sets one) and rooms, then appends each event the
//! room's log does not hold yet through the group committer, with its
//! original id, time and `client_id`. Events a room already holds (same
//! seq, same id) are skipped, which makes a repeated import change
//! nothing and lets an interrupted one (a crash, a full disk mid-way) be
//! finished by running it again.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::Actor;
use crate::archive::{self, ArchiveError, Reader, Record, Writer};
use crate::commit::{Append, Change, Committed, Reply};
use crate::error::ApiError;
use crate::ids::{Millis, RoomId, Seq, UserId};
use crate::protocol::ServerFrame;
use crate::state::AppState;
use crate::storage::records::{EventKind, EventRecord, RoomRecord, UserRecord, Visibility};
use crate::storage::{StorageError, Store, Taken};
use crate::validate;

/// Events read from a room log at once while exporting.
const CHUNK: usize = 1024;
/// Appends an import keeps queued at the committer before waiting for the
/// oldest: enough to fill group commits, bounded in memory.
const IN_FLIGHT: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} already exists; choose a new file name")]
    Exists(PathBuf),
    #[error("the path must be absolute: {0}")]
    RelativePath(PathBuf),
    #[error("no room {0}")]
    NoSuchRoom(String),
    #[error("line {line}: {message}")]
    Conflict { line: u64, message: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl ExchangeError {
    fn conflict(line: u64, message: impl Into<String>) -> Self {
        ExchangeError::Conflict {
            line,
            message: message.into(),
        }
    }
}

type Result<T> = std::result::Result<T, ExchangeError>;

/// What an export wrote.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportSummary {
    pub users: u64,
    pub rooms: u64,
    pub messages: u64,
    /// Edits, deletions and reactions.
    pub changes: u64,
    /// Blobs written under `--with-files`.
    pub files: u64,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImportSummary {
    pub users_added: u64,
    pub rooms_added: u64,
    pub members_added: u64,
    pub events_added: u64,
    /// Events the server held already (a repeated import).
    pub events_present: u64,
    /// Files stored and attached from `--files DIR`.
    #[serde(default)]
    pub files_added: u64,
    /// Files named by messages that this server could not attach.
    pub files_skipped: u64,
}

/// What to export: every room, or only these (by id).
pub struct ExportRequest {
    pub path: PathBuf,
    pub rooms: Option<Vec<RoomId>>,
    pub with_files: Option<PathBuf>,
}

/// Writes the export file (see the module comment).
pub async fn export(
    state: &Arc<AppState>,
    actor: Actor,
    request: ExportRequest,
) -> Result<ExportSummary> {
    actor.require_admin(state)?;
    for p in std::iter::once(&request.path).chain(request.with_files.as_ref()) {
        if !p.is_absolute() {
            return Err(ExchangeError::RelativePath(p.clone()));
        }
    }
    if request.path.exists() {
        return Err(ExchangeError::Exists(request.path));
    }
    let state = state.clone();
    let summary = tokio::task::spawn_blocking(move || export_blocking(&state, &request))
        .await
        .map_err(|_| ApiError::Internal)??;
    Ok(summary)
}

fn export_blocking(state: &AppState, request: &ExportRequest) -> Result<ExportSummary> {
    let store = &state.store;
    let mut rooms: Vec<RoomRecord> = Vec::new();
    for r in store.rooms() {
        let r = r?;
        if request
            .rooms
            .as_ref()
            .is_none_or(|only| only.contains(&r.id))
        {
            rooms.push(r);
        }
    }
    if let Some(only) = &request.rooms {
        if let Some(missing) = only.iter().find(|id| !rooms.iter().any(|r| r.id == **id)) {
            return Err(ExchangeError::NoSuchRoom(missing.to_string()));
        }
    }
    rooms.sort_by_key(|r| r.id);
    let heads: Vec<Seq> = rooms
        .iter()
        .map(|r| store.log().and_then(|log| log.head(r.id)))
        .collect::<std::result::Result<_, _>>()?;
    let members = |id: RoomId| {
        let mut m = state.rooms.get(id).map(|r| r.members()).unwrap_or_default();
        m.sort();
        m
    };
    // Only the people a partial export names: a room's export carries no
    // one else's account.
    let wanted: Option<HashSet<UserId>> = match &request.rooms {
        None => None,
        Some(_) => {
            let mut people = HashSet::new();
            for (r, head) in rooms.iter().zip(&heads) {
                people.extend(members(r.id));
                people.insert(r.created_by);
                people.extend(r.moderators.iter().chain(&r.banned).chain(&r.direct));
                for_each_event(store, r.id, *head, |_, e| {
                    people.insert(e.kind.actor());
                    if let EventKind::Message { mentions, .. } = &e.kind {
                        people.extend(mentions);
                    }
                    Ok(())
                })?;
            }
            Some(people)
        }
    };
    if let Some(dir) = &request.with_files {
        std::fs::create_dir_all(dir).map_err(|source| ExchangeError::File {
            path: dir.clone(),
            source,
        })?;
    }

    let partial = partial_path(&request.path);
    let io = |source| ExchangeError::File {
        path: partial.clone(),
        source,
    };
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(&partial)
        .map_err(io)?;
    let header = archive::Header {
        format: archive::FORMAT.into(),
        version: archive::VERSION,
        server_version: env!("CARGO_PKG_VERSION").into(),
        exported_at: Millis::now().to_rfc3339(),
        rooms: request.rooms.clone(),
    };
    let written = (|| -> Result<ExportSummary> {
        let mut out = Writer::new(BufWriter::with_capacity(1 << 16, file), header).map_err(io)?;
        let mut summary = ExportSummary::default();
        let mut users: Vec<UserRecord> = Vec::new();
        for u in store.users() {
            let u = u?;
            if wanted.as_ref().is_none_or(|w| w.contains(&u.id)) {
                users.push(u);
            }
        }
        users.sort_by_key(|u| u.id);
        for u in users {
            out.write(&Record::User(user_entry(u))).map_err(io)?;
            summary.users += 1;
        }
        for r in &rooms {
            out.write(&Record::Room(room_entry(r.clone(), members(r.id))))
                .map_err(io)?;
            summary.rooms += 1;
        }
        let log = store.log()?;
        // Blobs already written under `--with-files`, each once.
        let mut copied: std::collections::HashSet<String> = std::collections::HashSet::new();
        for (r, head) in rooms.iter().zip(&heads) {
            for_each_event(store, r.id, *head, |seq, e| {
                let record = event_entry(&log, r.id, seq, e)?;
                match &record {
                    Record::Message(m) => {
                        summary.messages += 1;
                        if let Some(dir) = &request.with_files {
                            for f in &m.files {
                                let Some(hash) = &f.sha256 else { continue };
                                if !copied.insert(hash.clone()) {
                                    continue;
                                }
                                copy_blob(store, hash, &dir.join(hash))?;
                                out.write(&Record::File(archive::File {
                                    sha256: hash.clone(),
                                    size: f.size,
                                    content_type: f.content_type.clone(),
                                }))
                                .map_err(io)?;
                                summary.files += 1;
                            }
                        }
                    }
                    _ => summary.changes += 1,
                }
                out.write(&record).map_err(io)
            })?;
        }
        let (buffered, _) = out.finish().map_err(io)?;
        let file = buffered.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        Ok(summary)
    })();
    let summary = match written {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, &request.path).map_err(|source| ExchangeError::File {
        path: request.path.clone(),
        source,
    })?;
    tracing::info!(
        path = %request.path.display(),
        rooms = summary.rooms,
        messages = summary.messages,
        "Export written."
    );
    Ok(summary)
}

/// Calls `f` on each event of `room` up to `head`, in seq order, reading
/// [`CHUNK`] events at a time.
fn for_each_event(
    store: &Store,
    room: RoomId,
    head: Seq,
    mut f: impl FnMut(Seq, EventRecord) -> Result<()>,
) -> Result<()> {
    let log = store.log()?;
    let mut from = Seq(1);
    while from <= head {
        let chunk = log.range(room, from, head, CHUNK)?;
        let Some((last, _)) = chunk.last() else {
            break;
        };
        from = last.next();
        for (seq, e) in chunk {
            f(seq, e)?;
        }
    }
    Ok(())
}

fn user_entry(u: UserRecord) -> archive::User {
    archive::User {
        id: u.id,
        username: u.username,
        email: u.email,
        created_at: u.created_at,
        admin: u.admin,
        disabled: u.disabled,
        deleted: u.deleted,
        bot: u.bot,
        display_name: u.display_name,
        about: u.about,
    }
}

fn room_entry(r: RoomRecord, members: Vec<UserId>) -> archive::Room {
    archive::Room {
        id: r.id,
        name: r.name,
        topic: r.topic,
        created_by: r.created_by,
        created_at: r.created_at,
        visibility: r.visibility,
        direct: r.direct,
        moderators: r.moderators,
        banned: r.banned,
        members,
        archived: false,
    }
}

fn event_entry(
    log: &crate::storage::log::RoomLog,
    room: RoomId,
    seq: Seq,
    e: EventRecord,
) -> Result<Record> {
    let (id, at) = (e.id, e.at);
    Ok(match e.kind {
        EventKind::Message {
            author,
            body,
            client_id,
            reply_to,
            mentions,
            mentions_room,
            files,
        } => {
            let now = log.state(room, seq)?;
            // A deleted message's files are freed with it.
            let files = if now.deleted { Vec::new() } else { files };
            let (body, sent_body) = match now.body {
                Some(current) => (current, Some(body)),
                None if now.deleted => (String::new(), None),
                None => (body, None),
            };
            Record::Message(archive::Message {
                room,
                seq,
                id,
                at,
                author,
                client_id,
                body,
                sent_body,
                reply_to,
                mentions,
                mentions_room,
                edited_at: now.edited_at,
                deleted: now.deleted,
                reactions: now
                    .reactions
                    .into_iter()
                    .map(|(emoji, users)| archive::ReactionNow { emoji, users })
                    .collect(),
                files: files
                    .into_iter()
                    .map(|f| archive::FileRef {
                        sha256: Some(f.hash.to_string()),
                        name: f.name,
                        size: f.size,
                        content_type: f.mime,
                        source_url: None,
                    })
                    .collect(),
            })
        }
        EventKind::Edit {
            target,
            by,
            body,
            client_id,
        } => Record::Edit(archive::Edit {
            room,
            seq,
            id,
            at,
            target,
            by,
            body,
            client_id,
        }),
        EventKind::Delete {
            target,
            by,
            client_id,
        } => Record::Delete(archive::Delete {
            room,
            seq,
            id,
            at,
            target,
            by,
            client_id,
        }),
        EventKind::Reaction {
            target,
            by,
            emoji,
            on,
            client_id,
        } => Record::Reaction(archive::Reaction {
            room,
            seq,
            id,
            at,
            target,
            by,
            emoji,
            on,
            client_id,
        }),
    })
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// Restores an export into this server (see the module comment).
pub async fn import(
    state: &Arc<AppState>,
    actor: Actor,
    path: PathBuf,
    files: Option<PathBuf>,
) -> Result<ImportSummary> {
    actor.require_admin(state)?;
    for p in std::iter::once(&path).chain(files.as_ref()) {
        if !p.is_absolute() {
            return Err(ExchangeError::RelativePath(p.clone()));
        }
    }
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        check(&state, &path, files.as_deref())?;
        apply(&state, &path, files.as_deref())
    })
    .await
    .map_err(|_| ApiError::Internal)?
}

fn open(path: &Path) -> Result<Reader<BufReader<File>>> {
    let file = File::open(path).map_err(|source| ExchangeError::File {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Reader::new(BufReader::with_capacity(1 << 16, file))?)
}

/// A room as the first pass follows it.
struct RoomCheck {
    /// The seq the file's next event of this room must have.
    next: Seq,
    /// How far this server's log of the room goes (0: a new room).
    head: Seq,
    /// For each seq of the file so far: 0 for an edit, deletion or
    /// reaction, else 1 + the index of the message's author in
    /// [`Checker::authors`], with the top bit set once it is deleted.
    /// Four bytes an event: what the committer will judge each change by.
    events: Vec<u32>,
}

const DELETED: u32 = 1 << 31;

/// The first pass's memory: who and what the file has named so far.
struct Checker<'a> {
    state: &'a AppState,
    log: crate::storage::log::RoomLog,
    users: HashSet<UserId>,
    names: HashMap<String, UserId>,
    rooms: HashMap<RoomId, RoomCheck>,
    /// Which room holds each public name and each set of direct people.
    held: HashMap<Vec<u8>, RoomId>,
    /// Authors of messages, by the index [`RoomCheck::events`] keeps.
    authors: Vec<UserId>,
    author_index: HashMap<UserId, u32>,
}

/// The first pass: every line read and checked against the format and the
/// server; nothing is written.
fn check(state: &AppState, path: &Path, files: Option<&Path>) -> Result<()> {
    let mut c = Checker {
        state,
        log: state.store.log()?,
        users: HashSet::new(),
        names: HashMap::new(),
        rooms: HashMap::new(),
        held: state
            .rooms
            .all()
            .iter()
            .filter_map(|r| r.record.index_key().map(|k| (k, r.record.id)))
            .collect(),
        authors: Vec::new(),
        author_index: HashMap::new(),
    };
    for item in open(path)? {
        let (line, record) = item?;
        match &record {
            Record::User(u) => c.user(line, u)?,
            Record::Room(r) => c.room(line, r)?,
            Record::File(f) => {
                if let Some(dir) = files {
                    blob_in(dir, f).map_err(|why| ExchangeError::conflict(line, why))?;
                }
            }
            Record::Header(_) | Record::End(_) => {}
            event => c.event(line, event)?,
        }
    }
    Ok(())
}

impl Checker<'_> {
    fn known(&self, id: &UserId) -> Result<bool> {
        Ok(self.users.contains(id) || self.state.store.user(*id)?.is_some())
    }

    /// A new account must not take a name or email another account holds.
    fn user(&mut self, line: u64, u: &archive::User) -> Result<()> {
        let store = &self.state.store;
        if !self.users.insert(u.id) {
            return Err(ExchangeError::conflict(
                line,
                format!("user {} twice", u.id),
            ));
        }
        if u.username.trim().is_empty() {
            return Err(ExchangeError::conflict(line, "a user without a username"));
        }
        if u.deleted || store.user(u.id)?.is_some() {
            return Ok(());
        }
        if validate::username(&u.username).is_err() {
            return Err(ExchangeError::conflict(
                line,
                format!(
                    "user {}: {:?} is not a valid username (3 to 32 letters, digits, _ . -)",
                    u.id, u.username
                ),
            ));
        }
        if let Some(other) = self.names.insert(u.username.to_lowercase(), u.id) {
            return Err(ExchangeError::conflict(
                line,
                format!(
                    "username {:?} twice (users {other} and {})",
                    u.username, u.id
                ),
            ));
        }
        for login in [&u.username, &u.email] {
            if login.is_empty() {
                continue;
            }
            if let Some(holder) = store.user_by_login(login)?.filter(|h| h.id != u.id) {
                return Err(ExchangeError::conflict(
                    line,
                    format!(
                        "{login:?} of user {} belongs to another account here ({}, id {}); \
                         rename or delete one of them, then import again",
                        u.id, holder.username, holder.id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A room names known people; a new one takes no name or set of
    /// direct people another room holds.
    fn room(&mut self, line: u64, r: &archive::Room) -> Result<()> {
        if self.rooms.contains_key(&r.id) {
            return Err(ExchangeError::conflict(
                line,
                format!("room {} twice", r.id),
            ));
        }
        let people = r.members.iter().chain(&r.moderators).chain(&r.banned);
        for u in people.chain(&r.direct).chain([&r.created_by]) {
            if !self.known(u)? {
                return Err(ExchangeError::conflict(
                    line,
                    format!(
                        "room {} names user {u}, who is neither in the file nor on this server",
                        r.id
                    ),
                ));
            }
        }
        let head = if self.state.store.room(r.id)?.is_some() {
            self.log.head(r.id)?
        } else {
            if r.visibility != Visibility::Direct && validate::room_name(&r.name).is_err() {
                return Err(ExchangeError::conflict(
                    line,
                    format!("room {}: {:?} is not a valid room name", r.id, r.name),
                ));
            }
            let key = room_record(r).index_key();
            if let Some(holder) = key.and_then(|k| self.held.get(&k)).filter(|h| **h != r.id) {
                return Err(ExchangeError::conflict(
                    line,
                    match r.visibility {
                        Visibility::Direct => format!(
                            "room {}: a direct room between the same people exists here ({holder})",
                            r.id
                        ),
                        _ => format!(
                            "room {} is called {:?}, like room {holder} here; rename one, then import again",
                            r.id, r.name
                        ),
                    },
                ));
            }
            Seq::ZERO
        };
        let check = RoomCheck {
            next: Seq(1),
            head,
            events: Vec::new(),
        };
        self.rooms.insert(r.id, check);
        Ok(())
    }

    /// An event comes in its room's order, by someone known, and is a
    /// change the committer will accept: aimed at an earlier message,
    /// an edit by its author, nothing done to a deleted one. An event the
    /// server already holds must be that very event.
    fn event(&mut self, line: u64, event: &Record) -> Result<()> {
        let Some((room, seq, id)) = event.event_at() else {
            return Ok(());
        };
        let (actor, target, client_id) = actor_and_target(event);
        let bad = |message: String| Err(ExchangeError::conflict(line, message));
        if let Some(c) = client_id {
            if validate::client_id(c.to_string()).is_err() {
                return bad(format!(
                    "client_id {c:?} is not a valid one (1 to 64 characters, no control characters)"
                ));
            }
        }
        if !self.known(&actor)? {
            return bad(format!(
                "user {actor} is neither in the file nor on this server"
            ));
        }
        let author = match event {
            Record::Message(_) => {
                let next = self.authors.len() as u32 + 1;
                let i = *self.author_index.entry(actor).or_insert(next);
                if i == next {
                    self.authors.push(actor);
                }
                i
            }
            _ => 0,
        };
        let Some(rc) = self.rooms.get_mut(&room) else {
            return bad(format!(
                "an event of room {room}, which no earlier line describes"
            ));
        };
        if seq != rc.next {
            return bad(format!("room {room}: seq {seq} where {} was due", rc.next));
        }
        rc.next = seq.next();
        if let Some(t) = target {
            let slot =
                t.0.checked_sub(1)
                    .and_then(|i| rc.events.get_mut(i as usize))
                    .filter(|s| **s != 0);
            let Some(slot) = slot else {
                return bad(format!(
                    "room {room} seq {seq} aims at {t}, which is not an earlier message"
                ));
            };
            let deleted = *slot & DELETED != 0;
            let by_author = self.authors.get(((*slot & !DELETED) - 1) as usize) == Some(&actor);
            match event {
                Record::Edit(_) if !by_author => {
                    return bad(format!(
                        "room {room} seq {seq}: an edit by someone other than the author"
                    ))
                }
                Record::Edit(_) | Record::Reaction(_) | Record::Delete(_) if deleted => {
                    return bad(format!(
                        "room {room} seq {seq}: a change to message {t}, deleted before"
                    ))
                }
                Record::Delete(_) => *slot |= DELETED,
                _ => {}
            }
        }
        rc.events.push(author);
        if seq <= rc.head {
            match self.log.event(room, seq)? {
                Some(held) if held.id == id => {}
                _ => {
                    return bad(format!(
                        "room {room} holds another event at seq {seq} here: the room \
                         has changed on this server since it was exported, and the \
                         file cannot be merged into it"
                    ))
                }
            }
        }
        Ok(())
    }
}

fn actor_and_target(record: &Record) -> (UserId, Option<Seq>, Option<&str>) {
    match record {
        Record::Message(m) => (m.author, m.reply_to, m.client_id.as_deref()),
        Record::Edit(e) => (e.by, Some(e.target), e.client_id.as_deref()),
        Record::Delete(d) => (d.by, Some(d.target), d.client_id.as_deref()),
        Record::Reaction(r) => (r.by, Some(r.target), r.client_id.as_deref()),
        _ => (UserId::NIL, None, None),
    }
}

fn room_record(r: &archive::Room) -> RoomRecord {
    RoomRecord {
        id: r.id,
        name: r.name.clone(),
        topic: r.topic.clone(),
        created_by: r.created_by,
        created_at: r.created_at,
        visibility: r.visibility,
        direct: r.direct.clone(),
        moderators: r.moderators.clone(),
        banned: r.banned.clone(),
    }
}

/// An append waiting for the committer, and the seq it must get.
struct Pending {
    line: u64,
    room: RoomId,
    seq: Seq,
    rx: oneshot::Receiver<std::result::Result<Option<Committed>, ApiError>>,
}

/// The second pass: what the first found missing is written.
fn apply(state: &AppState, path: &Path, files: Option<&Path>) -> Result<ImportSummary> {
    let store = &state.store;
    let log = store.log()?;
    let runtime = tokio::runtime::Handle::current();
    let mut summary = ImportSummary::default();
    let mut heads: HashMap<RoomId, Seq> = HashMap::new();
    let mut pending: VecDeque<Pending> = VecDeque::new();
    // Rooms this import made, with their members: they have read their
    // history (it is not news), as they had where it came from.
    let mut created: Vec<(RoomId, Vec<UserId>)> = Vec::new();
    // Members added to rooms that were here.
    let mut joined: Vec<(RoomId, UserId)> = Vec::new();
    // Blobs beside the file (`--files DIR`), checked by the first pass.
    let mut blobs: HashMap<String, PathBuf> = HashMap::new();
    for item in open(path)? {
        let (line, record) = item?;
        match record {
            Record::User(u) => {
                if store.user(u.id)?.is_some() {
                    continue;
                }
                let user = UserRecord {
                    id: u.id,
                    username: u.username,
                    // A deleted account has released its email.
                    email: if u.deleted { String::new() } else { u.email },
                    password_hash: String::new(),
                    created_at: u.created_at,
                    admin: u.admin,
                    disabled: u.disabled,
                    deleted: u.deleted,
                    display_name: u.display_name,
                    about: u.about,
                    avatar: None,
                    bot: u.bot,
                };
                if user.deleted {
                    store.put_user(&user)?;
                } else if let Err(taken) = store.create_user(&user)? {
                    let what = match taken {
                        Taken::Username => "username",
                        Taken::Email => "email",
                    };
                    return Err(ExchangeError::conflict(
                        line,
                        format!("the {what} of user {} was taken meanwhile", user.id),
                    ));
                }
                state.directory.put(&user);
                summary.users_added += 1;
            }
            Record::Room(r) => {
                let record = room_record(&r);
                if store.room(r.id)?.is_none() {
                    if store.create_room(&record, &r.members)?.is_err() {
                        return Err(ExchangeError::conflict(
                            line,
                            format!("the name of room {} was taken meanwhile", r.id),
                        ));
                    }
                    state.rooms.insert(record, &r.members);
                    created.push((r.id, r.members.clone()));
                    summary.rooms_added += 1;
                    summary.members_added += r.members.len() as u64;
                } else {
                    for m in &r.members {
                        let here = state.rooms.get(r.id).is_some_and(|room| room.is_member(*m));
                        if !here {
                            store.add_member(r.id, *m)?;
                            state.rooms.add_member_in_memory(r.id, *m);
                            joined.push((r.id, *m));
                            summary.members_added += 1;
                        }
                    }
                }
                heads.insert(r.id, log.head(r.id)?);
            }
            Record::File(f) => {
                if let Some(dir) = files {
                    blobs.insert(f.sha256.clone(), dir.join(&f.sha256));
                }
            }
            Record::Header(_) | Record::End(_) => {}
            event => {
                let Some((room, seq, id)) = event.event_at() else {
                    continue;
                };
                if seq <= heads.get(&room).copied().unwrap_or(Seq::ZERO) {
                    summary.events_present += 1;
                    continue;
                }
                // A message's files beside the file are stored as its
                // author's uploads to the room, then attached.
                let mut attached = Vec::new();
                if let Record::Message(m) = &event {
                    for f in &m.files {
                        let blob = f.sha256.as_ref().and_then(|h| blobs.get(h));
                        match blob {
                            Some(blob) => {
                                let stored =
                                    runtime.block_on(store_blob(state, m.author, room, f, blob));
                                attached.push(stored.map_err(|e| {
                                    ExchangeError::conflict(line, format!("file {}: {e}", f.name))
                                })?);
                                summary.files_added += 1;
                            }
                            None => summary.files_skipped += 1,
                        }
                    }
                }
                // The committer judges a change against the stored message
                // it aims at: that message must be durable first.
                let (_, target, _) = actor_and_target(&event);
                let aims_at_pending = !matches!(event, Record::Message(_))
                    && pending
                        .iter()
                        .any(|p| p.room == room && target.is_some_and(|t| t >= p.seq));
                if aims_at_pending {
                    while let Some(p) = pending.pop_front() {
                        settle(Some(p), &mut summary)?;
                    }
                }
                let (tx, rx) = oneshot::channel();
                let Some(append) = append(event, id, attached, Reply::Request(tx)) else {
                    continue;
                };
                runtime.block_on(state.committer.submit(append))?;
                pending.push_back(Pending {
                    line,
                    room,
                    seq,
                    rx,
                });
                if pending.len() >= IN_FLIGHT {
                    settle(pending.pop_front(), &mut summary)?;
                }
            }
        }
    }
    while let Some(p) = pending.pop_front() {
        settle(Some(p), &mut summary)?;
    }
    // Last, as any action settles: people connected now see the rooms.
    for (id, members) in created {
        let Some(room) = state.rooms.get(id) else {
            continue;
        };
        for m in members {
            state.rooms.mark_read(&room, m, room.head(), false);
            super::rooms::announce_join(state, m, &room);
        }
        if room.record.visibility == Visibility::Public {
            state.hub.send_all(
                &ServerFrame::RoomAdded {
                    room: room.view(UserId::NIL, &state.directory),
                },
                None,
            );
        }
    }
    for (id, member) in joined {
        if let Some(room) = state.rooms.get(id) {
            super::rooms::announce_join(state, member, &room);
        }
    }
    store.flush()?;
    tracing::info!(
        users = summary.users_added,
        rooms = summary.rooms_added,
        events = summary.events_added,
        "Import done."
    );
    Ok(summary)
}

/// Waits for one append and checks it landed where the file says.
fn settle(p: Option<Pending>, summary: &mut ImportSummary) -> Result<()> {
    let Some(p) = p else { return Ok(()) };
    let outcome = p.rx.blocking_recv().map_err(|_| ApiError::ShuttingDown)?;
    match outcome? {
        Some(c) if !c.duplicate && c.seq == p.seq => {
            summary.events_added += 1;
            Ok(())
        }
        Some(c) => Err(ExchangeError::conflict(
            p.line,
            format!(
                "room {}: the event landed at seq {} instead of {}; the room changed while importing",
                p.room, c.seq, p.seq
            ),
        )),
        None => Err(ExchangeError::conflict(
            p.line,
            format!("room {}: the event at seq {} changed nothing here", p.room, p.seq),
        )),
    }
}

/// The committer's append for one event of the file (`None` for the
/// other records). Client ids were checked by the first pass.
fn append(
    record: Record,
    id: crate::ids::EventId,
    files: Vec<crate::storage::records::FileRef>,
    reply: Reply,
) -> Option<Append> {
    let client = |c: Option<String>| c.and_then(|c| validate::client_id(c).ok());
    let (room, author, client_id, change, at) = match record {
        Record::Message(m) => (
            m.room,
            m.author,
            client(m.client_id),
            Change::Message {
                // A deleted message's text is gone from its own event too.
                // Files are not imported (counted as skipped): a message
                // that was only files names them instead.
                body: if m.deleted {
                    String::new()
                } else {
                    let body = m.sent_body.unwrap_or(m.body);
                    if body.trim().is_empty() && files.is_empty() && !m.files.is_empty() {
                        let names: Vec<&str> = m.files.iter().map(|f| f.name.as_str()).collect();
                        format!("📎 {}", names.join(", "))
                    } else {
                        body
                    }
                },
                reply_to: m.reply_to,
                mentions: m.mentions,
                mentions_room: m.mentions_room,
                files,
            },
            m.at,
        ),
        Record::Edit(e) => (
            e.room,
            e.by,
            client(e.client_id),
            Change::Edit {
                target: e.target,
                body: e.body,
            },
            e.at,
        ),
        Record::Delete(d) => (
            d.room,
            d.by,
            client(d.client_id),
            Change::Delete {
                target: d.target,
                moderator: true,
            },
            d.at,
        ),
        Record::Reaction(r) => (
            r.room,
            r.by,
            client(r.client_id),
            Change::React {
                target: r.target,
                emoji: r.emoji,
                on: r.on,
            },
            r.at,
        ),
        Record::Header(_)
        | Record::User(_)
        | Record::Room(_)
        | Record::File(_)
        | Record::End(_) => return None,
    };
    Some(Append {
        room,
        author,
        client_id,
        change,
        reply,
        origin: Some((id, at)),
        received: std::time::Instant::now(),
    })
}

/// Whether `DIR/<sha256>` is there with the size and content the `file`
/// line gives; the reason when it is not.
fn blob_in(dir: &Path, f: &archive::File) -> std::result::Result<(), String> {
    let valid = f.sha256.len() == 64 && f.sha256.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(format!("{:?} is not a SHA-256", f.sha256));
    }
    let path = dir.join(&f.sha256);
    let (hash, size) = hash_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if size != f.size || hash.to_string() != f.sha256.to_ascii_lowercase() {
        return Err(format!(
            "{} is not the file the export names (size {size}, not {})",
            path.display(),
            f.size
        ));
    }
    Ok(())
}

/// The SHA-256 and length of a file, read as a stream.
fn hash_file(path: &Path) -> std::io::Result<(crate::ids::ContentHash, u64)> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((crate::ids::ContentHash(hasher.finalize().into()), size))
}

/// Stores the blob at `blob` as `author`'s upload to `room` (named and
/// typed as the export says; a picture gets its thumbnail) and returns
/// what a message attaching it carries.
async fn store_blob(
    state: &AppState,
    author: UserId,
    room: RoomId,
    f: &archive::FileRef,
    blob: &Path,
) -> std::result::Result<crate::storage::records::FileRef, ApiError> {
    use crate::storage::records::{FileRecord, FileRef};
    let files_err = |e: std::io::Error| ApiError::Storage(StorageError::Files(e));
    let (temp, _) = state.store.upload_temp()?;
    let copied = std::fs::copy(blob, &temp)
        .and_then(|_| File::open(&temp)?.sync_all())
        .map_err(files_err);
    let hashed = copied.and_then(|()| hash_file(&temp).map_err(files_err));
    let (hash, size) = match hashed {
        Ok(h) => h,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    // Only a picture is read whole (for its thumbnail); its first bytes say.
    let mut head = [0u8; 64];
    let read = {
        use std::io::Read;
        File::open(&temp)
            .and_then(|mut f| f.read(&mut head))
            .map_err(files_err)?
    };
    let picture = crate::images::picture_type(&head[..read]);
    let preview = match picture {
        Some(_) => {
            let bytes = bytes::Bytes::from(std::fs::read(&temp).map_err(files_err)?);
            state.images.preview(bytes).await
        }
        None => crate::images::Preview::default(),
    };
    let record = FileRecord {
        file: FileRef {
            id: crate::ids::FileId::generate(),
            name: f.name.clone(),
            mime: picture.map_or_else(|| f.content_type.clone(), str::to_string),
            size,
            hash,
            width: preview.width,
            height: preview.height,
            thumb: preview.png.is_some(),
        },
        uploader: author,
        room,
        created_at: Millis::now(),
    };
    state
        .store
        .add_file(&temp, preview.png.as_deref(), &record)?;
    Ok(record.file)
}

/// Copies the stored blob with this hex hash to `to` (kept if a copy is
/// there already: blobs are named by their content).
fn copy_blob(store: &Store, hex: &str, to: &Path) -> Result<()> {
    if to.exists() {
        return Ok(());
    }
    let hash = (0..32)
        .map(|i| u8::from_str_radix(hex.get(i * 2..i * 2 + 2).unwrap_or("zz"), 16).ok())
        .collect::<Option<Vec<u8>>>()
        .and_then(|b| crate::ids::ContentHash::from_slice(&b));
    let Some(hash) = hash else {
        return Ok(());
    };
    let partial = partial_path(to);
    std::fs::copy(store.blob_path(&hash), &partial)
        .and_then(|_| std::fs::rename(&partial, to))
        .map_err(|source| ExchangeError::File {
            path: to.to_path_buf(),
            source,
        })
}

/// Imports a Slack workspace export: converted into this format beside
/// it, then imported like any export (see [`crate::archive::slack`]).
pub async fn import_slack(
    state: &Arc<AppState>,
    actor: Actor,
    zip: PathBuf,
) -> Result<ImportSummary> {
    actor.require_admin(state)?;
    if !zip.is_absolute() {
        return Err(ExchangeError::RelativePath(zip));
    }
    // Beside the database: a directory the server may surely write to.
    let converted = state.config.data.join(format!(
        "slack-import-{}-{}.jsonl.partial",
        std::process::id(),
        Millis::now().0
    ));
    let (src, dst) = (zip.clone(), converted.clone());
    tokio::task::spawn_blocking(move || archive::slack::convert(&src, &dst))
        .await
        .map_err(|_| ApiError::Internal)??;
    let result = import(state, actor, converted.clone(), None).await;
    let _ = std::fs::remove_file(&converted);
    result
}
