//! The admin socket's protocol: one JSON [`Request`] in, one [`Reply`]
//! out, each request one action of [`crate::actions`] called as the
//! operator, so it acts on a live server (sessions revoked and sockets
//! closed at once, in-memory registries updated) and on a data directory
//! opened by the CLI alike. Users and rooms may be named here by username,
//! email or room name, as a person at a terminal would.
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

pub use crate::actions::operator::{InviteInfo, RegistrationSetting, Stats};

use crate::actions::accounts::{self, NewAccount};
use crate::actions::exchange::{self, ExchangeError, ExportRequest, ExportSummary, ImportSummary};
use crate::actions::operator::{self, BackupFailed};
use crate::actions::{avatars, bots, messages, reset_links, rooms, Actor};
use crate::error::ApiError;
use crate::ids::{Millis, RoomId, Seq, UserId};
use crate::rooms::Room;
use crate::search::Counts;
use crate::state::AppState;
use crate::storage::backup::{BackupError, Summary};
use crate::storage::verify::Report;
use crate::storage::{StorageError, UserRecord};

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
    UserRemoveAvatar {
        user: String,
    },
    /// Make an account an administrator (`admin: true`), or no longer one.
    UserAdmin {
        user: String,
        admin: bool,
    },
    /// A one-time password-reset code for the account, valid this long.
    UserResetLink {
        user: String,
        valid_for_secs: u64,
    },
    BotCreate {
        username: String,
    },
    BotList,
    BotToken {
        bot: String,
    },
    BotShow {
        bot: String,
    },
    /// `url: None` removes the callback.
    BotCallback {
        bot: String,
        url: Option<String>,
        all: bool,
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
    /// Shows the registration mode in force and where it comes from.
    Registration,
    /// Sets the registration mode; `mode: None` goes back to the config's.
    RegistrationSet {
        mode: Option<String>,
    },
    Stats,
    Verify,
    /// Empty the search index and index every message again.
    IndexRebuild,
    /// `path` is absolute: the server may run in another directory.
    Backup {
        path: PathBuf,
    },
    /// Write an export (absolute paths); `rooms` empty: every room.
    Export {
        path: PathBuf,
        #[serde(default)]
        rooms: Vec<String>,
        #[serde(default)]
        with_files: Option<PathBuf>,
    },
    /// Restore an export (or, with `slack`, a Slack workspace export).
    Import {
        path: PathBuf,
        #[serde(default)]
        slack: bool,
        /// Where the export's files are (`--with-files DIR` of the export).
        #[serde(default)]
        files: Option<PathBuf>,
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
    /// A password-reset code, shown this once.
    ResetCode {
        user: UserInfo,
        code: String,
        expires_at: String,
    },
    /// A bot's new token, shown this once.
    BotToken {
        user: UserInfo,
        token: String,
    },
    /// A bot and its callback (with the signing secret when just set).
    Bot {
        user: Box<UserInfo>,
        callback: Option<Box<crate::storage::CallbackRecord>>,
    },
    Invites {
        invites: Vec<InviteInfo>,
    },
    Stats {
        stats: Stats,
    },
    Registration {
        setting: RegistrationSetting,
    },
    Verify {
        report: Report,
    },
    IndexRebuilt {
        counts: Counts,
    },
    Backup {
        path: PathBuf,
        summary: Summary,
    },
    Exported {
        path: PathBuf,
        summary: ExportSummary,
    },
    Imported {
        summary: ImportSummary,
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
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bot: bool,
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
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    #[error("the server stopped before the action finished")]
    Interrupted,
}

impl From<ApiError> for AdminError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Storage(e) => AdminError::Storage(e),
            e => AdminError::Invalid(e.to_string()),
        }
    }
}

type Result<T> = std::result::Result<T, AdminError>;

/// Runs one request against the instance: each is one action of
/// [`crate::actions`], called as the operator.
pub async fn execute(state: &Arc<AppState>, request: Request) -> Result<Reply> {
    use Request::*;
    match request {
        UserAdd {
            username,
            email,
            password,
            admin,
        } => user_add(state, username, email, password, admin).await,
        UserList => Ok(Reply::Users {
            users: accounts::list(state, Actor::Operator, "", 0, usize::MAX)?
                .users
                .iter()
                .map(user_info)
                .collect(),
        }),
        UserShow { user } => user_show(state, &user),
        UserPasswd { user, password } => user_passwd(state, &user, password).await,
        UserDisable { user } => user_set_disabled(state, &user, true).await,
        UserEnable { user } => user_set_disabled(state, &user, false).await,
        UserDelete { user } => user_delete(state, &user).await,
        UserRevokeSessions { user } => user_revoke_sessions(state, &user).await,
        UserAdmin { user, admin } => {
            let u = find_user(state, &user)?;
            let u = accounts::set_admin(state, Actor::Operator, u.id, admin).await?;
            if admin {
                done(format!("{} is an administrator.", u.username))
            } else {
                done(format!("{} is no longer an administrator.", u.username))
            }
        }
        UserRemoveAvatar { user } => {
            let u = find_user(state, &user)?;
            avatars::remove(state, Actor::Operator, u.id).await?;
            done(format!("{} has no avatar now.", u.username))
        }
        UserResetLink {
            user,
            valid_for_secs,
        } => {
            let u = find_user(state, &user)?;
            let valid_for = Duration::from_secs(valid_for_secs.max(1));
            let link = reset_links::create(state, Actor::Operator, u.id, Some(valid_for)).await?;
            Ok(Reply::ResetCode {
                user: user_info(&link.user),
                code: link.code,
                expires_at: link.expires_at.to_rfc3339(),
            })
        }
        BotCreate { username } => {
            let (bot, token) = bots::create(state, Actor::Operator, &username).await?;
            Ok(Reply::BotToken {
                user: user_info(&bot),
                token: token.0,
            })
        }
        BotList => Ok(Reply::Users {
            users: bots::list(state, Actor::Operator)?
                .iter()
                .map(user_info)
                .collect(),
        }),
        BotToken { bot } => {
            let bot = find_user(state, &bot)?;
            let token = bots::new_token(state, Actor::Operator, bot.id).await?;
            Ok(Reply::BotToken {
                user: user_info(&bot),
                token: token.0,
            })
        }
        BotShow { bot } => {
            let bot = find_user(state, &bot)?;
            let callback = bots::callback(state, Actor::Operator, bot.id)?.map(|mut c| {
                c.secret = String::new();
                Box::new(c)
            });
            let mut user = user_info(&bot);
            user.sessions = Some(state.store.sessions_of(bot.id)?.len());
            Ok(Reply::Bot {
                user: Box::new(user),
                callback,
            })
        }
        BotCallback { bot, url, all } => {
            let bot = find_user(state, &bot)?;
            let callback = match url {
                Some(url) => {
                    Some(bots::set_callback(state, Actor::Operator, bot.id, &url, all).await?)
                }
                None => {
                    bots::clear_callback(state, Actor::Operator, bot.id).await?;
                    None
                }
            };
            Ok(Reply::Bot {
                user: Box::new(user_info(&bot)),
                callback: callback.map(Box::new),
            })
        }
        RoomList => Ok(Reply::Rooms {
            rooms: rooms::list_all(state, Actor::Operator)?
                .iter()
                .map(|s| room_info(&s.room))
                .collect(),
        }),
        RoomShow { room } => room_show(state, &room),
        RoomRename { room, name } => room_rename(state, &room, &name).await,
        RoomDelete { room } => room_delete(state, &room).await,
        MessageDelete { room, seq } => message_delete(state, &room, seq).await,
        InviteCreate {
            uses,
            valid_for_secs,
            note,
        } => {
            let valid_for = valid_for_secs.map(Duration::from_secs);
            let (code, invite) =
                operator::invite_create(state, Actor::Operator, uses, valid_for, note).await?;
            Ok(Reply::Invite {
                code,
                uses: invite.uses_left,
                expires_at: invite.expires_at.map(Millis::to_rfc3339),
            })
        }
        InviteList => Ok(Reply::Invites {
            invites: operator::invite_list(state, Actor::Operator)?,
        }),
        InviteRevoke { id } => {
            let id = operator::invite_revoke(state, Actor::Operator, &id).await?;
            done(format!("Invite {} is revoked.", &id[..id.len().min(12)]))
        }
        Registration => Ok(Reply::Registration {
            setting: operator::registration_for(state, Actor::Operator)?,
        }),
        RegistrationSet { mode } => {
            let mode = mode
                .map(|m| {
                    crate::config::Registration::parse(&m).ok_or_else(|| {
                        AdminError::Invalid(format!(
                            "{m:?} is not \"open\", \"invite\", \"closed\" or \"default\""
                        ))
                    })
                })
                .transpose()?;
            Ok(Reply::Registration {
                setting: operator::set_registration(state, Actor::Operator, mode).await?,
            })
        }
        Stats => Ok(Reply::Stats {
            stats: operator::stats(state, Actor::Operator)?,
        }),
        Verify => Ok(Reply::Verify {
            report: operator::verify(state, Actor::Operator).await?,
        }),
        IndexRebuild => Ok(Reply::IndexRebuilt {
            counts: operator::index_rebuild(state, Actor::Operator).await?,
        }),
        Backup { path } => {
            let summary = operator::backup(state, Actor::Operator, &path)
                .await
                .map_err(|e| match e {
                    BackupFailed::Backup(e) => AdminError::Backup(e),
                    BackupFailed::Refused(e) => e.into(),
                    e @ BackupFailed::RelativePath(_) => AdminError::Invalid(e.to_string()),
                })?;
            Ok(Reply::Backup { path, summary })
        }
        Export {
            path,
            rooms,
            with_files,
        } => {
            let rooms = if rooms.is_empty() {
                None
            } else {
                Some(
                    rooms
                        .iter()
                        .map(|r| find_room(state, r).map(|r| r.record.id))
                        .collect::<Result<Vec<_>>>()?,
                )
            };
            let request = ExportRequest {
                path: path.clone(),
                rooms,
                with_files,
            };
            let summary = exchange::export(state, Actor::Operator, request).await?;
            Ok(Reply::Exported { path, summary })
        }
        Import { path, slack, files } => {
            let summary = if slack {
                exchange::import_slack(state, Actor::Operator, path).await?
            } else {
                exchange::import(state, Actor::Operator, path, files).await?
            };
            Ok(Reply::Imported { summary })
        }
    }
}

async fn user_add(
    state: &AppState,
    username: String,
    email: String,
    password: String,
    admin: bool,
) -> Result<Reply> {
    let account = NewAccount {
        username,
        email,
        password,
        admin,
    };
    let user = accounts::add(state, Actor::Operator, account).await?;
    Ok(Reply::User {
        user: user_info(&user),
    })
}

fn user_show(state: &AppState, key: &str) -> Result<Reply> {
    let u = find_user(state, key)?;
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

async fn user_passwd(state: &AppState, key: &str, password: String) -> Result<Reply> {
    let u = find_user(state, key)?;
    let u = accounts::set_password(state, Actor::Operator, u.id, password).await?;
    done(format!(
        "Password of {} changed; their sessions were ended.",
        u.username
    ))
}

async fn user_set_disabled(state: &AppState, key: &str, disabled: bool) -> Result<Reply> {
    let u = find_user(state, key)?;
    let u = accounts::set_disabled(state, Actor::Operator, u.id, disabled).await?;
    if disabled {
        done(format!(
            "{} is disabled; their sessions and connections were ended.",
            u.username
        ))
    } else {
        done(format!("{} is enabled.", u.username))
    }
}

async fn user_delete(state: &AppState, key: &str) -> Result<Reply> {
    let u = find_user(state, key)?;
    let u = accounts::delete(state, Actor::Operator, u.id).await?;
    done(format!(
        "{} is deleted; their messages stay, shown as from a deleted user.",
        u.username
    ))
}

async fn user_revoke_sessions(state: &AppState, key: &str) -> Result<Reply> {
    let u = find_user(state, key)?;
    let n = accounts::revoke_sessions(state, Actor::Operator, u.id).await?;
    done(format!("Ended {n} session(s) of {}.", u.username))
}

fn room_show(state: &AppState, key: &str) -> Result<Reply> {
    let r = find_room(state, key)?;
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

async fn room_rename(state: &AppState, key: &str, name: &str) -> Result<Reply> {
    let r = find_room(state, key)?;
    match rooms::rename(state, Actor::Operator, r.record.id, name).await {
        Ok(renamed) => done(format!(
            "Room {:?} is now {:?}.",
            r.record.name, renamed.record.name
        )),
        Err(ApiError::RoomNameTaken) => Err(AdminError::Invalid(format!(
            "another room is already called {:?}",
            name.trim()
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Removes a room for everyone (see [`rooms::delete`]).
async fn room_delete(state: &AppState, key: &str) -> Result<Reply> {
    let r = find_room(state, key)?;
    let r = rooms::delete(state, Actor::Operator, r.record.id).await?;
    done(format!(
        "Room {:?} and its {} message(s) are deleted.",
        r.record.name,
        r.head()
    ))
}

/// Deletes a message as the operator: an event in the room's log, so every
/// open socket sees it go (see [`messages::delete_as_operator`]).
async fn message_delete(state: &AppState, key: &str, seq: u64) -> Result<Reply> {
    let r = find_room(state, key)?;
    match messages::delete_as_operator(state, r.record.id, Seq(seq)).await {
        Ok(()) => done(format!("Message {seq} of {:?} is deleted.", r.record.name)),
        Err(ApiError::MessageNotFound) => Err(AdminError::NoSuchMessage {
            room: r.record.name.clone(),
            seq,
        }),
        Err(e) => Err(e.into()),
    }
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
        bot: u.bot,
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
