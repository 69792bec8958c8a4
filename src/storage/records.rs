//! The records stored on disk, as MessagePack maps (field names kept, so a
//! field can be added later with `#[serde(default)]` without a migration).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Result, StorageError};
use crate::ids::{EventId, Millis, RoomId, UserId};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: UserId,
    /// As the user typed it; uniqueness is checked lower-cased.
    pub username: String,
    pub email: String,
    /// The argon2id PHC string; empty once the account is deleted.
    pub password_hash: String,
    pub created_at: Millis,
    #[serde(default)]
    pub admin: bool,
    #[serde(default)]
    pub disabled: bool,
    /// Deleted accounts keep their record so old messages have an author.
    #[serde(default)]
    pub deleted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user: UserId,
    pub created_at: Millis,
    /// Updated at most once a minute, so use does not mean a write per request.
    pub last_seen: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomRecord {
    pub id: RoomId,
    pub name: String,
    pub topic: String,
    pub created_by: UserId,
    pub created_at: Millis,
}

/// A signup invitation. Only the code's hash is stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteRecord {
    pub created_at: Millis,
    /// `None`: never expires.
    pub expires_at: Option<Millis>,
    /// Signups still allowed with this code.
    pub uses_left: u32,
    /// Shown by `hearth invite list` to tell invites apart, never the code.
    pub note: String,
}

/// One entry of a room's log. Messages are the first kind; edits, deletions,
/// reactions and membership changes will be further kinds in the same
/// sequence, carried by the same resume.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: EventId,
    pub at: Millis,
    pub kind: EventKind,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum EventKind {
    Message {
        author: UserId,
        body: String,
        client_id: Option<String>,
    },
}

pub(crate) fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(record)
        .expect("records serialize infallibly: plain structs of strings and numbers")
}

pub(crate) fn decode<T: DeserializeOwned>(
    tree: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<T> {
    rmp_serde::from_slice(bytes).map_err(|e| StorageError::Corrupt {
        tree,
        key: key.to_string(),
        message: e.to_string(),
    })
}
