//! The records stored on disk, as MessagePack maps (field names kept, so a
//! field can be added later with `#[serde(default)]` without a migration).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::{Result, StorageError};
use crate::ids::{
    AvatarVersion, ContentHash, EventId, FileId, HookId, Millis, RoomId, Seq, UserId,
};

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
    /// Shown beside the username, if set (1 to 64 characters).
    #[serde(default)]
    pub display_name: Option<String>,
    /// A line about oneself (at most 256 characters).
    #[serde(default)]
    pub about: String,
    /// The avatar's version when one is set; its PNG is in `userid_avatar`,
    /// written in the same transaction as this record.
    #[serde(default)]
    pub avatar: Option<AvatarVersion>,
    /// A bot: made by an administrator, no password or email, signs in
    /// with a token that does not expire.
    #[serde(default)]
    pub bot: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user: UserId,
    pub created_at: Millis,
    /// Updated at most once a minute, so use does not mean a write per request.
    pub last_seen: Millis,
    /// The browser or program that logged in (its `User-Agent`, cut to 256
    /// bytes), shown in the account's list of sessions.
    #[serde(default)]
    pub user_agent: String,
    /// The address it logged in from.
    #[serde(default)]
    pub ip: String,
    /// A bot's token: no idle or absolute expiry, only revocation.
    #[serde(default)]
    pub lasting: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomRecord {
    pub id: RoomId,
    pub name: String,
    pub topic: String,
    pub created_by: UserId,
    pub created_at: Millis,
    #[serde(default)]
    pub visibility: Visibility,
    /// For a direct room, the people it is between (sorted): the same set
    /// always names the same room.
    #[serde(default)]
    pub direct: Vec<UserId>,
    /// Members who moderate (the creator owns the room).
    #[serde(default)]
    pub moderators: Vec<UserId>,
    /// People who may not join or be added.
    #[serde(default)]
    pub banned: Vec<UserId>,
}

/// Who can see a room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Listed for everyone; anyone may join. Names are unique among these.
    #[default]
    Public,
    /// Only its members know it exists; people are added by its owner.
    Private,
    /// A conversation between a fixed set of people (a DM).
    Direct,
}

impl RoomRecord {
    /// Its key in `roomname_roomid`: the lower-cased name of a public room
    /// (names are unique among public rooms only, so a private name leaks
    /// nothing), a marker no name can hold plus the hash of a direct room's
    /// people (one room per set of people), nothing for a private room.
    pub fn index_key(&self) -> Option<Vec<u8>> {
        match self.visibility {
            Visibility::Public => Some(self.name.to_lowercase().into_bytes()),
            Visibility::Private => None,
            Visibility::Direct => {
                use sha2::{Digest, Sha256};
                let mut hash = Sha256::new();
                for user in &self.direct {
                    hash.update(user.to_bytes());
                }
                // Room names hold no control characters: `\0` is never one.
                let mut key = b"\0direct:".to_vec();
                key.extend_from_slice(&hash.finalize());
                Some(key)
            }
        }
    }
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

/// A one-time link to set a new password, made by an administrator. Only
/// the code's hash is stored; using it removes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResetRecord {
    pub user: UserId,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// An incoming webhook: a secret URL that posts into one room as the
/// hook's own bot account. Only the secret's hash is stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookRecord {
    pub id: HookId,
    pub room: RoomId,
    /// The bot account the hook posts as (its display name is the hook's
    /// name).
    pub bot: UserId,
    pub name: String,
    pub created_by: UserId,
    pub created_at: Millis,
}

/// Where a bot's outgoing webhook goes: the messages that mention it (or,
/// with `all`, every message) in its rooms are POSTed there, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRecord {
    pub url: String,
    pub all: bool,
    /// The HMAC-SHA256 key of the signature header (shown when set).
    pub secret: String,
    /// Why deliveries stopped after failing again and again; `None` while
    /// they run.
    #[serde(default)]
    pub parked: Option<String>,
}

/// A browser's Web Push subscription (RFC 8030): where its push service
/// takes messages for it, and the keys to encrypt them with (RFC 8291).
/// It belongs to the session that made it and goes when that session ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSubRecord {
    pub endpoint: String,
    /// The browser's P-256 public key, uncompressed (65 bytes).
    pub p256dh: Vec<u8>,
    /// The 16-byte authentication secret.
    pub auth: Vec<u8>,
    /// The hash of the session that made it.
    pub session: [u8; 32],
    pub created_at: Millis,
}

/// One entry of a room's log. Every change to a room's messages is an
/// event with the room's next seq: messages, edits, deletions and
/// reactions share one gap-free sequence and one resume. What a message
/// looks like now ([`MessageState`]) is derived from these events alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: EventId,
    pub at: Millis,
    pub kind: EventKind,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case", try_from = "AnyKind")]
pub enum EventKind {
    /// A message as first sent. A deletion blanks its body here (and in
    /// its edits): a redaction, not a flag.
    Message {
        author: UserId,
        body: String,
        client_id: Option<String>,
        /// The message this one answers, in the same room.
        #[serde(default)]
        reply_to: Option<Seq>,
        /// Members named with `@username` when sent.
        #[serde(default)]
        mentions: Vec<UserId>,
        /// `@room` from someone allowed to: every member is mentioned.
        #[serde(default)]
        mentions_room: bool,
        /// Attached files, as they were when sent (a file never changes):
        /// the log alone says which messages hold which files.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<FileRef>,
    },
    /// The author replaced the body of message `target`.
    Edit {
        target: Seq,
        by: UserId,
        body: String,
        client_id: Option<String>,
    },
    /// Message `target` was deleted by its author or a moderator.
    Delete {
        target: Seq,
        by: UserId,
        client_id: Option<String>,
    },
    /// `by` added (`on`) or took back a reaction to message `target`.
    Reaction {
        target: Seq,
        by: UserId,
        emoji: String,
        on: bool,
        client_id: Option<String>,
    },
}

/// An [`EventKind`] as stored: its tag and every variant's fields, read
/// in one pass. The derived decoding of an internally tagged enum first
/// copies the whole map into a buffer to find the tag, which made the
/// decoding of history pages read from storage cost twice what it needs.
#[derive(Deserialize)]
struct AnyKind {
    t: KindTag,
    author: Option<UserId>,
    body: Option<String>,
    client_id: Option<String>,
    reply_to: Option<Seq>,
    #[serde(default)]
    mentions: Vec<UserId>,
    #[serde(default)]
    mentions_room: bool,
    #[serde(default)]
    files: Vec<FileRef>,
    target: Option<Seq>,
    by: Option<UserId>,
    emoji: Option<String>,
    on: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum KindTag {
    Message,
    Edit,
    Delete,
    Reaction,
}

impl TryFrom<AnyKind> for EventKind {
    type Error = String;

    fn try_from(k: AnyKind) -> std::result::Result<EventKind, String> {
        let missing = |field: &str| format!("missing field `{field}`");
        Ok(match k.t {
            KindTag::Message => EventKind::Message {
                author: k.author.ok_or_else(|| missing("author"))?,
                body: k.body.ok_or_else(|| missing("body"))?,
                client_id: k.client_id,
                reply_to: k.reply_to,
                mentions: k.mentions,
                mentions_room: k.mentions_room,
                files: k.files,
            },
            KindTag::Edit => EventKind::Edit {
                target: k.target.ok_or_else(|| missing("target"))?,
                by: k.by.ok_or_else(|| missing("by"))?,
                body: k.body.ok_or_else(|| missing("body"))?,
                client_id: k.client_id,
            },
            KindTag::Delete => EventKind::Delete {
                target: k.target.ok_or_else(|| missing("target"))?,
                by: k.by.ok_or_else(|| missing("by"))?,
                client_id: k.client_id,
            },
            KindTag::Reaction => EventKind::Reaction {
                target: k.target.ok_or_else(|| missing("target"))?,
                by: k.by.ok_or_else(|| missing("by"))?,
                emoji: k.emoji.ok_or_else(|| missing("emoji"))?,
                on: k.on.ok_or_else(|| missing("on"))?,
                client_id: k.client_id,
            },
        })
    }
}

impl EventKind {
    /// Who made the event: the author of a message, whoever edited,
    /// deleted or reacted.
    pub fn actor(&self) -> UserId {
        match self {
            EventKind::Message { author, .. } => *author,
            EventKind::Edit { by, .. }
            | EventKind::Delete { by, .. }
            | EventKind::Reaction { by, .. } => *by,
        }
    }

    pub fn client_id(&self) -> Option<&str> {
        match self {
            EventKind::Message { client_id, .. }
            | EventKind::Edit { client_id, .. }
            | EventKind::Delete { client_id, .. }
            | EventKind::Reaction { client_id, .. } => client_id.as_deref(),
        }
    }
}

/// A file as a message carries it: everything a client shows of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub id: FileId,
    pub name: String,
    /// The media type it is served with.
    pub mime: String,
    pub size: u64,
    pub hash: ContentHash,
    /// A picture's size in pixels, when it could be read.
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    /// Whether a thumbnail was made (pictures within the decoding limits).
    #[serde(default)]
    pub thumb: bool,
}

/// An uploaded file (`fileid_file`): a [`FileRef`] with who uploaded it,
/// where, and when. Its bytes are the blob named by `file.hash`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileRecord {
    pub file: FileRef,
    pub uploader: UserId,
    /// The room it was uploaded to: it can be attached there only.
    pub room: RoomId,
    pub created_at: Millis,
}

/// What later events made of a message, kept beside the log so history
/// needs no replay. A pure function of the log: verify recomputes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageState {
    /// The body after the latest edit (`None`: the message's own body).
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub edited_at: Option<Millis>,
    /// The seqs of the edit events, oldest first.
    #[serde(default)]
    pub edits: Vec<Seq>,
    #[serde(default)]
    pub deleted: bool,
    /// Each emoji with who reacted, in the order each first appeared.
    #[serde(default)]
    pub reactions: Vec<(String, Vec<UserId>)>,
}

impl MessageState {
    /// The state after one more event aimed at this message: the only way
    /// a state changes, whether the committer appends the event or a
    /// restore or verify replays the log.
    pub fn apply(&mut self, seq: Seq, event: &EventRecord) {
        match &event.kind {
            EventKind::Message { .. } => {}
            EventKind::Edit { body, .. } => {
                self.body = Some(body.clone());
                self.edited_at = Some(event.at);
                self.edits.push(seq);
            }
            EventKind::Delete { .. } => {
                self.deleted = true;
                self.body = None;
            }
            EventKind::Reaction { by, emoji, on, .. } => {
                let at = self.reactions.iter().position(|(e, _)| e == emoji);
                match (at, *on) {
                    (Some(i), true) => {
                        if !self.reactions[i].1.contains(by) {
                            self.reactions[i].1.push(*by);
                        }
                    }
                    (None, true) => self.reactions.push((emoji.clone(), vec![*by])),
                    (Some(i), false) => {
                        self.reactions[i].1.retain(|u| u != by);
                        if self.reactions[i].1.is_empty() {
                            self.reactions.remove(i);
                        }
                    }
                    (None, false) => {}
                }
            }
        }
    }

    /// Whether `user` has reacted with `emoji`.
    pub fn reacted(&self, user: UserId, emoji: &str) -> bool {
        self.reactions
            .iter()
            .any(|(e, by)| e == emoji && by.contains(&user))
    }
}

impl EventKind {
    /// The message an edit, deletion or reaction is aimed at.
    pub fn target(&self) -> Option<Seq> {
        match self {
            EventKind::Message { .. } => None,
            EventKind::Edit { target, .. }
            | EventKind::Delete { target, .. }
            | EventKind::Reaction { target, .. } => Some(*target),
        }
    }

    /// The same event with its text removed: what a deletion leaves of the
    /// message and of each of its edits.
    pub fn redacted(&self) -> EventKind {
        let mut kind = self.clone();
        match &mut kind {
            EventKind::Message {
                body,
                mentions,
                mentions_room,
                files,
                ..
            } => {
                body.clear();
                mentions.clear();
                *mentions_room = false;
                files.clear();
            }
            EventKind::Edit { body, .. } => body.clear(),
            EventKind::Delete { .. } | EventKind::Reaction { .. } => {}
        }
        kind
    }
}

pub(crate) fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    // Most records (a message with a line of text) fit without regrowing.
    let mut out = Vec::with_capacity(256);
    rmp_serde::encode::write_named(&mut out, record)
        .expect("records serialize infallibly: plain structs of strings and numbers");
    out
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

/// [`decode`] for hot loops: the key is only spelled out for an error.
pub(crate) fn decode_lazy<T: DeserializeOwned>(
    tree: &'static str,
    key: impl FnOnce() -> String,
    bytes: &[u8],
) -> Result<T> {
    crate::codec::msgpack_from_slice(bytes).map_err(|e| StorageError::Corrupt {
        tree,
        key: key(),
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
            display_name: Some("Ann".into()),
            about: String::new(),
            avatar: Some(AvatarVersion::of(b"png")),
            bot: false,
        };
        let session = SessionRecord {
            user: user.id,
            created_at: Millis(1),
            last_seen: Millis(2),
            user_agent: "curl/8".into(),
            ip: "127.0.0.1".into(),
            lasting: false,
        };
        let room = RoomRecord {
            id: RoomId::generate(),
            name: "general".into(),
            topic: "talk".into(),
            created_by: user.id,
            created_at: Millis(3),
            visibility: Visibility::Private,
            direct: vec![],
            moderators: vec![],
            banned: vec![],
        };
        let event = EventRecord {
            id: EventId::generate(),
            at: Millis(4),
            kind: EventKind::Message {
                author: user.id,
                body: "hello ☕".into(),
                client_id: Some("c-1".into()),
                reply_to: None,
                mentions: vec![],
                mentions_room: false,
                files: vec![],
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
        let _ = decode::<MessageState>("roomlog", "k", bytes);
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

#[cfg(test)]
mod event_kinds {
    //! Events are decoded in one pass ([`AnyKind`]); every kind must read
    //! back as written, and records written before a field existed must
    //! read with its default.

    use super::*;

    fn round_trip(kind: EventKind) {
        let event = EventRecord {
            id: EventId::generate(),
            at: Millis(1_700_000_000_000),
            kind,
        };
        let back: EventRecord = decode("roomlog", "k", &encode(&event)).expect("decodes");
        assert_eq!(format!("{back:?}"), format!("{event:?}"));
    }

    #[test]
    fn every_kind_reads_back_as_written() {
        let (a, b) = (UserId::generate(), UserId::generate());
        round_trip(EventKind::Message {
            author: a,
            body: "hi \"there\"".into(),
            client_id: Some("c1".into()),
            reply_to: Some(Seq(3)),
            mentions: vec![b],
            mentions_room: true,
            files: vec![FileRef {
                id: FileId::generate(),
                name: "a.png".into(),
                mime: "image/png".into(),
                size: 10,
                hash: ContentHash([1; 32]),
                width: Some(4),
                height: Some(2),
                thumb: true,
            }],
        });
        round_trip(EventKind::Message {
            author: a,
            body: String::new(),
            client_id: None,
            reply_to: None,
            mentions: Vec::new(),
            mentions_room: false,
            files: Vec::new(),
        });
        round_trip(EventKind::Edit {
            target: Seq(1),
            by: a,
            body: "edited".into(),
            client_id: None,
        });
        round_trip(EventKind::Delete {
            target: Seq(1),
            by: b,
            client_id: Some("d".into()),
        });
        round_trip(EventKind::Reaction {
            target: Seq(2),
            by: b,
            emoji: "👍".into(),
            on: false,
            client_id: None,
        });
    }

    #[test]
    fn older_records_and_any_field_order_read() {
        #[derive(Serialize)]
        struct Old<K> {
            id: EventId,
            at: Millis,
            kind: K,
        }
        /// A message from before replies, mentions and files, its tag last.
        #[derive(Serialize)]
        struct OldMessage {
            author: UserId,
            body: &'static str,
            client_id: Option<String>,
            t: &'static str,
        }
        #[derive(Serialize)]
        struct TornEdit {
            t: &'static str,
            by: UserId,
        }
        let author = UserId::generate();
        let old = encode(&Old {
            id: EventId::generate(),
            at: Millis(5),
            kind: OldMessage {
                author,
                body: "old",
                client_id: None,
                t: "message",
            },
        });
        let event: EventRecord = decode("roomlog", "k", &old).expect("decodes");
        match event.kind {
            EventKind::Message {
                author: a,
                body,
                reply_to: None,
                mentions,
                mentions_room: false,
                files,
                ..
            } => {
                assert_eq!((a, body.as_str()), (author, "old"));
                assert!(mentions.is_empty() && files.is_empty());
            }
            other => panic!("{other:?}"),
        }
        let torn = encode(&Old {
            id: EventId::generate(),
            at: Millis(5),
            kind: TornEdit {
                t: "edit",
                by: author,
            },
        });
        assert!(decode::<EventRecord>("roomlog", "k", &torn).is_err());
    }
}
