//! The records stored on disk, as MessagePack maps (field names kept, so a
//! field can be added later with `#[serde(default)]` without a migration).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::{Result, StorageError};
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
    crate::codec::msgpack_from_slice(bytes).map_err(|e| StorageError::Corrupt {
        tree,
        key: key.to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod proptests {
    //! Stored records are read back at every start; a damaged one must be
    //! a `Corrupt` error naming its tree and key, never a panic.

    use proptest::prelude::*;

    use super::*;

    fn samples() -> Vec<Vec<u8>> {
        let user = UserRecord {
            id: UserId::generate(),
            username: "alice".into(),
            email: "alice@example.com".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            created_at: Millis(1_700_000_000_000),
            admin: true,
            disabled: false,
            deleted: false,
        };
        let session = SessionRecord {
            user: user.id,
            created_at: Millis(1),
            last_seen: Millis(2),
        };
        let room = RoomRecord {
            id: RoomId::generate(),
            name: "general".into(),
            topic: "talk".into(),
            created_by: user.id,
            created_at: Millis(3),
        };
        let event = EventRecord {
            id: EventId::generate(),
            at: Millis(4),
            kind: EventKind::Message {
                author: user.id,
                body: "hello ☕".into(),
                client_id: Some("c-1".into()),
            },
        };
        vec![
            encode(&user),
            encode(&session),
            encode(&room),
            encode(&event),
        ]
    }

    /// Decodes `bytes` as every record type; only errors may come back.
    fn decode_all(bytes: &[u8]) {
        let _ = decode::<UserRecord>("userid_user", "k", bytes);
        let _ = decode::<SessionRecord>("tokenhash_session", "k", bytes);
        let _ = decode::<RoomRecord>("roomid_room", "k", bytes);
        let _ = decode::<EventRecord>("roomlog", "k", bytes);
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            decode_all(&bytes);
        }

        #[test]
        fn damaged_records_decode_without_panic(
            which in 0usize..4,
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = samples().swap_remove(which);
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            decode_all(&bytes);
        }
    }

    #[test]
    fn every_sample_round_trips_and_a_bad_one_names_its_tree() {
        for bytes in samples() {
            decode_all(&bytes);
        }
        let err = decode::<RoomRecord>("roomid_room", "00ff", b"\xc1").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("roomid_room") && text.contains("00ff"),
            "{text}"
        );
    }
}
