//! Administration: every operator action, implemented once over
//! [`AppState`] so it acts on a live server (sessions revoked and sockets
//! closed at once, in-memory registries updated) and on a data directory
//! opened by the CLI alike.
//!
//! The CLI reaches a running server through [`socket`] (a Unix socket in
//! the data directory, owner only, one JSON [`Request`] and one JSON
//! [`Reply`] per connection); when no server runs it opens the directory
//! itself with [`crate::open`] and calls [`execute`] directly. Either way
//! the same code runs and the same [`Reply`] comes back.

pub mod socket;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::invites;
use crate::error::ApiError;
use crate::ids::{Millis, RoomId, Seq, UserId};
use crate::protocol::ServerFrame;
use crate::rooms::Room;
use crate::state::AppState;
use crate::storage::backup::{BackupError, Summary};
use crate::storage::verify::Report;
use crate::storage::{StorageError, Taken, UserRecord};
use crate::validate;
use crate::wire::CloseReason;

/// One operator action. `user` and `room` accept an id, or a username
/// (or email) and a room name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    UserAdd {
        username: String,
        email: String,
        password: String,
        admin: bool,
    },
    UserList,
    UserShow {
        user: String,
    },
    UserPasswd {
        user: String,
        password: String,
    },
    UserDisable {
        user: String,
    },
    UserEnable {
        user: String,
    },
    UserDelete {
        user: String,
    },
    UserRevokeSessions {
        user: String,
    },
    RoomList,
    RoomShow {
        room: String,
    },
    RoomRename {
        room: String,
        name: String,
    },
    RoomDelete {
        room: String,
    },
    MessageDelete {
        room: String,
        seq: u64,
    },
    InviteCreate {
        uses: u32,
        valid_for_secs: Option<u64>,
        note: String,
    },
    InviteList,
    /// `id` is the start of an id from `invite list` (at least 6 characters).
    InviteRevoke {
        id: String,
    },
    Stats,
    Verify,
    /// `path` is absolute: the server may run in another directory.
    Backup {
        path: PathBuf,
    },
}

/// What an action produced; the CLI prints it as text or `--json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    Users {
        users: Vec<UserInfo>,
    },
    User {
        user: UserInfo,
    },
    Rooms {
        rooms: Vec<RoomInfo>,
    },
    Room {
        room: RoomInfo,
    },
    Done {
        message: String,
    },
    Invite {
        code: String,
        uses: u32,
        expires_at: Option<String>,
    },
    Invites {
        invites: Vec<InviteInfo>,
    },
    Stats {
        stats: Stats,
    },
    Verify {
        report: Report,
    },
    Backup {
        path: PathBuf,
        summary: Summary,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UserInfo {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub created_at: String,
    pub admin: bool,
    pub disabled: bool,
    pub deleted: bool,
    /// Present for `user show`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RoomInfo {
    pub id: RoomId,
    pub name: String,
    pub topic: String,
    pub created_by: UserId,
    pub created_at: String,
    pub members: usize,
    pub last_seq: Seq,
    /// Member usernames, for `room show`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_names: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct InviteInfo {
    /// The hex of the code's hash: names the invite without revealing it.
    pub id: String,
    pub note: String,
    pub uses_left: u32,
    pub created_at: String,
    pub expires_at: Option<String>,
    /// Used up or past its expiry.
    pub spent: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Stats {
    pub users: usize,
    pub admins: usize,
    pub disabled_users: usize,
    pub rooms: usize,
    pub messages: u64,
    /// Open WebSocket connections (0 when the server is not running).
    pub connections: usize,
    pub disk_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no user {0:?} (give a username, an email or a user id)")]
    NoSuchUser(String),
    #[error("no room {0:?} (give a room name or id)")]
    NoSuchRoom(String),
    #[error("room {room} has no message {seq}")]
    NoSuchMessage { room: String, seq: u64 },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error("the server stopped before the action finished")]
    Interrupted,
}

impl From<ApiError> for AdminError {
    fn from(e: ApiError) -> Self {
        AdminError::Invalid(e.to_string())
    }
}

type Result<T> = std::result::Result<T, AdminError>;

/// Runs one action against the instance.
pub async fn execute(state: &Arc<AppState>, request: Request) -> Result<Reply> {
    use Request::*;
    match request {
        UserAdd {
            username,
            email,
            password,
            admin,
        } => user_add(state, username, email, password, admin).await,
        UserList => {
            let mut users = Vec::new();
            for u in state.store.users() {
                let u = u?;
                if !u.deleted {
                    users.push(user_info(&u));
                }
            }
            users.sort_by_key(|u| u.username.to_lowercase());
            Ok(Reply::Users { users })
        }
        UserShow { user } => {
            let u = find_user(state, &user)?;
            let mut info = user_info(&u);
            info.sessions = Some(state.store.sessions_of(u.id)?.len());
            let mut rooms: Vec<String> = state
                .rooms
                .of_user(u.id)
                .into_iter()
                .filter_map(|r| state.rooms.get(r).map(|r| r.record.name.clone()))
                .collect();
            rooms.sort();
            info.rooms = Some(rooms);
            Ok(Reply::User { user: info })
        }
        UserPasswd { user, password } => {
            let mut u = find_user(state, &user)?;
            validate::password(&password)?;
            u.password_hash = state.hasher.hash(password).await?;
            state.store.put_user(&u)?;
            end_sessions(state, u.id)?;
            state.store.flush_async().await?;
            tracing::info!(user = %u.id, "Password set by an administrator.");
            done(format!(
                "Password of {} changed; their sessions were ended.",
                u.username
            ))
        }
        UserDisable { user } => {
            let mut u = find_user(state, &user)?;
            u.disabled = true;
            state.store.put_user(&u)?;
            // The directory first: from here on no request authenticates.
            state.directory.put(&u);
            end_sessions(state, u.id)?;
            state.store.flush_async().await?;
            tracing::info!(user = %u.id, "Account disabled.");
            done(format!(
                "{} is disabled; their sessions and connections were ended.",
                u.username
            ))
        }
        UserEnable { user } => {
            let mut u = find_user(state, &user)?;
            u.disabled = false;
            state.store.put_user(&u)?;
            state.store.flush_async().await?;
            state.directory.put(&u);
            tracing::info!(user = %u.id, "Account enabled.");
            done(format!("{} is enabled.", u.username))
        }
        UserDelete { user } => {
            let u = find_user(state, &user)?;
            state.store.delete_user(&u)?;
            if let Some(tomb) = state.store.user(u.id)? {
                state.directory.put(&tomb);
            }
            for room in state.rooms.of_user(u.id) {
                state.store.remove_member(room, u.id)?;
                state.rooms.remove_member_in_memory(room, u.id);
            }
            end_sessions(state, u.id)?;
            state.store.flush_async().await?;
            tracing::info!(user = %u.id, "Account deleted by an administrator.");
            done(format!(
                "{} is deleted; their messages stay, shown as from a deleted user.",
                u.username
            ))
        }
        UserRevokeSessions { user } => {
            let u = find_user(state, &user)?;
            let n = state.store.sessions_of(u.id)?.len();
            end_sessions(state, u.id)?;
            state.store.flush_async().await?;
            done(format!("Ended {n} session(s) of {}.", u.username))
        }
        RoomList => Ok(Reply::Rooms {
            rooms: state.rooms.all().iter().map(|r| room_info(r)).collect(),
        }),
        RoomShow { room } => {
            let r = find_room(state, &room)?;
            let mut info = room_info(&r);
            let mut names: Vec<String> = r
                .members()
                .into_iter()
                .filter_map(|u| state.directory.get(u).map(|s| s.username.clone()))
                .collect();
            names.sort_by_key(|n| n.to_lowercase());
            info.member_names = Some(names);
            Ok(Reply::Room { room: info })
        }
        RoomRename { room, name } => {
            let r = find_room(state, &room)?;
            let name = validate::room_name(&name)?;
            if state.store.rename_room(&r.record, &name)?.is_err() {
                return Err(AdminError::Invalid(format!(
                    "another room is already called {name:?}"
                )));
            }
            state.store.flush_async().await?;
            let mut record = r.record.clone();
            record.name = name.clone();
            state.rooms.replace_record(record);
            done(format!("Room {:?} is now {name:?}.", r.record.name))
        }
        RoomDelete { room } => room_delete(state, &room).await,
        MessageDelete { room, seq } => message_delete(state, &room, seq).await,
        InviteCreate {
            uses,
            valid_for_secs,
            note,
        } => {
            if uses == 0 {
                return Err(AdminError::Invalid("--uses must be at least 1".into()));
            }
            let store = state.store.clone();
            let (code, invite) = tokio::task::spawn_blocking(move || {
                invites::create(&store, uses, valid_for_secs.map(Duration::from_secs), note)
            })
            .await
            .map_err(|_| AdminError::Interrupted)??;
            Ok(Reply::Invite {
                code,
                uses: invite.uses_left,
                expires_at: invite.expires_at.map(Millis::to_rfc3339),
            })
        }
        InviteList => {
            let now = Millis::now();
            let mut invites = Vec::new();
            for item in state.store.invites() {
                let (id, i) = item?;
                invites.push(InviteInfo {
                    id,
                    spent: i.uses_left == 0 || i.expires_at.is_some_and(|t| t <= now),
                    note: i.note,
                    uses_left: i.uses_left,
                    created_at: i.created_at.to_rfc3339(),
                    expires_at: i.expires_at.map(Millis::to_rfc3339),
                });
            }
            invites.sort_by(|a, b| a.created_at.cmp(&b.created_at));
            Ok(Reply::Invites { invites })
        }
        InviteRevoke { id } => invite_revoke(state, &id).await,
        Stats => stats(state),
        Verify => {
            let store = state.store.clone();
            let report = tokio::task::spawn_blocking(move || store.verify())
                .await
                .map_err(|_| AdminError::Interrupted)??;
            Ok(Reply::Verify { report })
        }
        Backup { path } => {
            if !path.is_absolute() {
                return Err(AdminError::Invalid(format!(
                    "the backup path {} must be absolute",
                    path.display()
                )));
            }
            let store = state.store.clone();
            let target = path.clone();
            let summary = tokio::task::spawn_blocking(move || store.backup_to(&target))
                .await
                .map_err(|_| AdminError::Interrupted)??;
            tracing::info!(path = %path.display(), events = summary.events, "Backup written.");
            Ok(Reply::Backup { path, summary })
        }
    }
}

async fn user_add(
    state: &Arc<AppState>,
    username: String,
    email: String,
    password: String,
    admin: bool,
) -> Result<Reply> {
    validate::username(&username)?;
    validate::email(&email)?;
    validate::password(&password)?;
    let user = UserRecord {
        id: UserId::generate(),
        username,
        email,
        password_hash: state.hasher.hash(password).await?,
        created_at: Millis::now(),
        // The first account administers the server, however it was made.
        admin: admin || state.directory.count() == 0,
        disabled: false,
        deleted: false,
    };
    match state.store.create_user(&user)? {
        Err(Taken::Username) => Err(ApiError::UsernameTaken.into()),
        Err(Taken::Email) => Err(ApiError::EmailTaken.into()),
        Ok(()) => {
            state.store.flush_async().await?;
            state.directory.put(&user);
            tracing::info!(user = %user.id, admin = user.admin, "Account created by an administrator.");
            Ok(Reply::User {
                user: user_info(&user),
            })
        }
    }
}

/// Removes a room for everyone. Its members' connections are told they
/// left; the registry forgets it first, so no new send is accepted.
pub async fn room_delete(state: &Arc<AppState>, room: &str) -> Result<Reply> {
    let r = find_room(state, room)?;
    let id = r.record.id;
    let members = state.rooms.remove(id);
    for user in members {
        for conn in state.hub.unsubscribe_user(user, id) {
            conn.send(&ServerFrame::Left { room: id });
        }
    }
    state.store.delete_room(&r.record)?;
    state.store.flush_async().await?;
    // A send accepted just before the registry forgot the room may still
    // be in the committer's queue; sweep its log once more after it ran.
    if !state.shutdown.is_cancelled() {
        let store = state.store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = store.log().and_then(|log| log.delete_room(id));
        });
    }
    tracing::info!(room = %id, "Room deleted.");
    done(format!(
        "Room {:?} and its {} message(s) are deleted.",
        r.record.name,
        r.head()
    ))
}

/// Replaces a message with a tombstone: history shows it deleted, its seq
/// stays so nobody's resume skips or repeats.
pub async fn message_delete(state: &Arc<AppState>, room: &str, seq: u64) -> Result<Reply> {
    let r = find_room(state, room)?;
    let missing = || AdminError::NoSuchMessage {
        room: r.record.name.clone(),
        seq,
    };
    if seq == 0 || seq > r.head().0 {
        return Err(missing());
    }
    if !state.store.log()?.tombstone(r.record.id, Seq(seq))? {
        return Err(missing());
    }
    state.store.flush_async().await?;
    tracing::info!(room = %r.record.id, seq, "Message deleted.");
    done(format!("Message {seq} of {:?} is deleted.", r.record.name))
}

/// Revokes the one invite whose id starts with `prefix`.
async fn invite_revoke(state: &Arc<AppState>, prefix: &str) -> Result<Reply> {
    let prefix = prefix.to_ascii_lowercase();
    if prefix.len() < 6 {
        return Err(AdminError::Invalid(
            "give at least 6 characters of the invite's id".into(),
        ));
    }
    let mut matches = Vec::new();
    for item in state.store.invites() {
        let (id, _) = item?;
        if id.starts_with(&prefix) {
            matches.push(id);
        }
    }
    let [id] = matches.as_slice() else {
        return Err(AdminError::Invalid(format!(
            "{} invites have an id starting with {prefix:?}; give exactly one",
            matches.len()
        )));
    };
    let hash: Vec<u8> = (0..id.len() / 2)
        .filter_map(|i| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).ok())
        .collect();
    state.store.remove_invite(&hash)?;
    state.store.flush_async().await?;
    done(format!("Invite {} is revoked.", &id[..12]))
}

fn stats(state: &Arc<AppState>) -> Result<Reply> {
    let (mut users, mut admins, mut disabled) = (0, 0, 0);
    for u in state.store.users() {
        let u = u?;
        if u.deleted {
            continue;
        }
        users += 1;
        admins += usize::from(u.admin);
        disabled += usize::from(u.disabled);
    }
    let rooms = state.rooms.all();
    Ok(Reply::Stats {
        stats: Stats {
            users,
            admins,
            disabled_users: disabled,
            rooms: rooms.len(),
            messages: rooms.iter().map(|r| r.head().0).sum(),
            connections: state.hub.connection_count(),
            disk_bytes: state.store.size_on_disk()?,
        },
    })
}

/// Revokes every session of `user` and closes their sockets at once.
fn end_sessions(state: &AppState, user: UserId) -> Result<()> {
    state.sessions.revoke_all(user, None)?;
    state.hub.close_user(user, None, CloseReason::Revoked);
    Ok(())
}

fn find_user(state: &AppState, key: &str) -> Result<UserRecord> {
    let found = match key.parse::<UserId>() {
        Ok(id) => state.store.user(id)?,
        Err(_) => state.store.user_by_login(key)?,
    };
    found
        .filter(|u| !u.deleted)
        .ok_or_else(|| AdminError::NoSuchUser(key.to_string()))
}

fn find_room(state: &AppState, key: &str) -> Result<Arc<Room>> {
    if let Some(r) = state.rooms.find(key) {
        return Ok(r);
    }
    let lower = key.to_lowercase();
    state
        .rooms
        .all()
        .into_iter()
        .find(|r| r.record.name.to_lowercase() == lower)
        .ok_or_else(|| AdminError::NoSuchRoom(key.to_string()))
}

fn user_info(u: &UserRecord) -> UserInfo {
    UserInfo {
        id: u.id,
        username: u.username.clone(),
        email: u.email.clone(),
        created_at: u.created_at.to_rfc3339(),
        admin: u.admin,
        disabled: u.disabled,
        deleted: u.deleted,
        sessions: None,
        rooms: None,
    }
}

fn room_info(r: &Room) -> RoomInfo {
    RoomInfo {
        id: r.record.id,
        name: r.record.name.clone(),
        topic: r.record.topic.clone(),
        created_by: r.record.created_by,
        created_at: r.record.created_at.to_rfc3339(),
        members: r.member_count(),
        last_seq: r.head(),
        member_names: None,
    }
}

fn done(message: String) -> Result<Reply> {
    Ok(Reply::Done { message })
}
