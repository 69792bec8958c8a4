//! The wire objects: what clients send over the WebSocket, what the server
//! sends back, and the JSON views of users, rooms and messages shared with
//! the HTTP API. Each object has one shape in JSON and in MessagePack.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::codec::msgpack_from_slice;
use crate::error::ApiError;
use crate::ids::{AvatarVersion, EventId, FileId, Millis, RoomId, Seq, SerdeRfc3339, UserId};
use crate::storage::records::{EventKind, EventRecord, FileRef, MessageState, Visibility};

/// A frame from a client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Hello {
        /// Last seq seen per room, to replay what was missed.
        #[serde(default)]
        resume: Option<HashMap<String, u64>>,
    },
    Send {
        room: String,
        client_id: String,
        body: String,
        /// The seq of the message this one answers.
        #[serde(default)]
        reply_to: Option<u64>,
        /// Ids of the sender's uploads to attach.
        #[serde(default)]
        files: Vec<String>,
    },
    Edit {
        room: String,
        target: u64,
        body: String,
        client_id: String,
    },
    Delete {
        room: String,
        target: u64,
        client_id: String,
    },
    React {
        room: String,
        target: u64,
        emoji: String,
        on: bool,
        client_id: String,
    },
    /// The user is typing in `room` (not stored; relayed to the members).
    Typing {
        room: String,
    },
    /// The user has read `room` up to `seq` (forward only unless `force`).
    Read {
        room: String,
        seq: u64,
        #[serde(default)]
        force: bool,
    },
    /// Whether the client is in front of its user (window focused, page
    /// visible); with recent use, it keeps push notifications away.
    Focus {
        active: bool,
    },
    Ping,
}

/// What can be read of a frame that failed to parse: its `type`, to tell
/// an unknown type from a malformed frame, and its `client_id`, so the
/// error can be matched to the send that caused it.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_id: Option<String>,
}

/// The `type`s a client may send.
const CLIENT_TYPES: [&str; 9] = [
    "hello", "send", "edit", "delete", "react", "typing", "read", "focus", "ping",
];

/// Why a client frame was not understood.
#[derive(Debug)]
pub struct FrameError {
    pub error: ApiError,
    pub client_id: Option<String>,
}

/// Wire encodings a connection can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    /// Negotiated with the `hearth.msgpack` subprotocol.
    Msgpack,
}

pub const MSGPACK_SUBPROTOCOL: &str = "hearth.msgpack";

impl ClientFrame {
    pub fn decode(format: Format, bytes: &[u8]) -> Result<ClientFrame, FrameError> {
        let parsed = match format {
            Format::Json => serde_json::from_slice::<ClientFrame>(bytes).map_err(|e| e.to_string()),
            Format::Msgpack => msgpack_from_slice::<ClientFrame>(bytes).map_err(|e| e.to_string()),
        };
        parsed.map_err(|message| {
            let probe = match format {
                Format::Json => serde_json::from_slice::<Probe>(bytes).ok(),
                Format::Msgpack => msgpack_from_slice::<Probe>(bytes).ok(),
            };
            let (kind, client_id) = probe.map_or((None, None), |p| (p.kind, p.client_id));
            let error = match kind {
                Some(k) if !CLIENT_TYPES.contains(&k.as_str()) => ApiError::UnknownType(k),
                _ => ApiError::InvalidFrame(message),
            };
            FrameError { error, client_id }
        })
    }
}

/// A frame to a client.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Ready {
        user: UserView<'a>,
        rooms: Vec<RoomHead>,
        /// Who is online among the people the user shares a room with
        /// (rooms over `presence_max_members` left out).
        online: Vec<UserId>,
    },
    /// People sharing a room with the user came online or went offline.
    Presence {
        changes: Vec<PresenceChange<'a>>,
    },
    Message {
        message: MessageView<'a>,
    },
    /// An edit, deletion or reaction, in the room's seq order.
    Event {
        event: EventView<'a>,
    },
    /// The client's frame is durable as event `seq` (`id`); both are null
    /// when it changed nothing (a repeated deletion or reaction).
    Ack {
        client_id: &'a str,
        room: RoomId,
        seq: Option<Seq>,
        id: Option<EventId>,
    },
    Error {
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a str>,
    },
    Pong,
    Joined {
        room: RoomView<'a>,
    },
    Left {
        room: RoomId,
        reason: LeftReason,
    },
    /// The user chose what to be notified of in a room, on another device.
    Notifications {
        room: RoomId,
        level: NotifyLevel,
    },
    /// A member's role in a room changed (to the room's members).
    RoleChanged {
        room: RoomId,
        user: MemberView<'a>,
        role: Role,
    },
    /// A public room was created (to every socket).
    RoomAdded {
        room: RoomView<'a>,
    },
    /// A room was deleted (to every socket).
    RoomRemoved {
        room: RoomId,
    },
    /// Someone joined a room (to its members' sockets).
    MemberJoined {
        room: RoomId,
        user: MemberView<'a>,
        member_count: usize,
    },
    /// Someone's profile changed (to every socket).
    UserUpdated {
        user: UserView<'a>,
    },
    /// A room's name or topic changed (to its members' sockets).
    RoomUpdated {
        room: RoomView<'a>,
    },
    /// The user's read cursor in a room moved on another of their devices.
    Read {
        room: RoomId,
        seq: Seq,
        unread_count: u64,
        mention_count: u64,
    },
    /// Someone is typing in a room (to the other members' sockets; not
    /// stored, the first frame dropped when an outbox is full).
    Typing {
        room: RoomId,
        user: MemberView<'a>,
    },
    /// Someone left a room, or their account was deleted (to the members
    /// who stay).
    MemberLeft {
        room: RoomId,
        user: MemberView<'a>,
        member_count: usize,
    },
}

/// A room member as others see them.
#[derive(Debug, Serialize)]
pub struct MemberView<'a> {
    pub id: UserId,
    pub username: &'a str,
}

impl ServerFrame<'_> {
    /// Appends the frame's payload in `format` to `out`.
    pub fn encode_into(&self, format: Format, out: &mut Vec<u8>) {
        match format {
            Format::Json => serde_json::to_writer(out, self),
            Format::Msgpack => {
                // Human-readable, so ids and times are strings as in JSON.
                let mut ser = rmp_serde::Serializer::new(out)
                    .with_struct_map()
                    .with_human_readable();
                self.serialize(&mut ser).map_err(serde::ser::Error::custom)
            }
        }
        .expect("server frames are plain data and always serialize")
    }

    /// About how many bytes the payload takes, so it is encoded into one
    /// allocation: a message's own text and files dominate its frame.
    pub fn size_hint(&self) -> usize {
        match self {
            ServerFrame::Message { message: m } => {
                let files: usize = m
                    .files
                    .iter()
                    .map(|f| 160 + f.name.len() + f.mime.len())
                    .sum();
                let reply = m.reply_to.as_ref().map_or(0, |r| 160 + r.excerpt.len());
                let strings =
                    m.body.len() + m.author.username.len() + m.client_id.map_or(0, str::len);
                432 + strings + files + reply + m.mentions.len() * 40
            }
            ServerFrame::Ack { client_id, .. } => 160 + client_id.len(),
            ServerFrame::Pong => 16,
            _ => 256,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RoomHead {
    pub id: RoomId,
    pub last_seq: Seq,
    pub read_seq: Seq,
    pub unread_count: u64,
    pub mention_count: u64,
    pub notifications: NotifyLevel,
}

#[derive(Debug, Serialize, Clone)]
pub struct UserView<'a> {
    pub id: UserId,
    pub username: &'a str,
    pub created_at: SerdeRfc3339,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub admin: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub bot: bool,
    pub display_name: Option<&'a str>,
    pub about: &'a str,
    /// Where the avatar is served, or null for none.
    pub avatar: Option<AvatarUrl>,
}

impl<'a> UserView<'a> {
    pub fn of(user: &'a crate::storage::UserRecord) -> Self {
        UserView {
            id: user.id,
            username: &user.username,
            created_at: user.created_at.into(),
            admin: user.admin,
            bot: user.bot,
            display_name: user.display_name.as_deref(),
            about: &user.about,
            avatar: AvatarUrl::of(user.id, user.avatar),
        }
    }
}

/// The URL of one version of a user's avatar,
/// `/api/v1/users/{id}/avatar?v={version}`: a new picture is a new URL,
/// so clients may cache each one for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvatarUrl {
    pub user: UserId,
    pub version: AvatarVersion,
}

impl AvatarUrl {
    pub fn of(user: UserId, version: Option<AvatarVersion>) -> Option<AvatarUrl> {
        version.map(|version| AvatarUrl { user, version })
    }
}

impl std::fmt::Display for AvatarUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/api/v1/users/{}/avatar?v={}", self.user, self.version)
    }
}

impl Serialize for AvatarUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The author of a message as clients see it.
#[derive(Debug, Serialize)]
pub struct AuthorView<'a> {
    pub id: UserId,
    pub username: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

/// Shown in place of the name of an account that was deleted.
pub const DELETED_USERNAME: &str = "deleted user";

/// A message as clients see it: as stored, with what later events made of
/// it where the view says so ([`MessageView::with_state`]).
#[derive(Debug, Serialize)]
pub struct MessageView<'a> {
    pub id: EventId,
    pub room: RoomId,
    pub seq: Seq,
    pub author: AuthorView<'a>,
    /// The latest text; empty once deleted.
    pub body: &'a str,
    pub client_id: Option<&'a str>,
    pub created_at: SerdeRfc3339,
    /// When it was last edited, or null.
    pub edited_at: Option<SerdeRfc3339>,
    /// Deleted: the body is empty, the seq stays.
    pub deleted: bool,
    /// In the order each emoji first appeared.
    pub reactions: Vec<ReactionView<'a>>,
    pub reply_to: Option<ReplyView>,
    /// Users this message mentions (resolved when it was sent).
    pub mentions: &'a [UserId],
    /// It says `@room`, from someone allowed to: every member is mentioned.
    pub mentions_room: bool,
    /// Attached files (none once deleted).
    pub files: Vec<FileView<'a>>,
}

/// A file attached to a message, as clients see it. Its bytes are at
/// `/api/v1/files/{id}`, its thumbnail (when `thumb`) at `…/thumb`.
#[derive(Debug, Serialize)]
pub struct FileView<'a> {
    pub id: FileId,
    pub name: &'a str,
    #[serde(rename = "type")]
    pub mime: &'a str,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    pub thumb: bool,
}

impl<'a> FileView<'a> {
    pub fn of(f: &'a FileRef) -> FileView<'a> {
        FileView {
            id: f.id,
            name: &f.name,
            mime: &f.mime,
            size: f.size,
            width: f.width,
            height: f.height,
            thumb: f.thumb,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ReactionView<'a> {
    pub emoji: &'a str,
    pub count: usize,
    /// Whether the user reading this reacted so.
    pub me: bool,
}

impl ReactionView<'_> {
    /// A message's reactions as `viewer` sees them.
    pub fn all(state: &MessageState, viewer: UserId) -> Vec<ReactionView<'_>> {
        state
            .reactions
            .iter()
            .map(|(emoji, by)| ReactionView {
                emoji,
                count: by.len(),
                me: by.contains(&viewer),
            })
            .collect()
    }
}

/// The message a reply answers, as it reads now.
#[derive(Debug, Serialize)]
pub struct ReplyView {
    pub seq: Seq,
    pub author: ReplyAuthor,
    /// At most [`EXCERPT_CHARS`] characters of its current body.
    pub excerpt: String,
}

/// The author of a replied-to message (an [`AuthorView`] that owns its name).
#[derive(Debug, Serialize)]
pub struct ReplyAuthor {
    pub id: UserId,
    pub username: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

/// How much of a replied-to message a reply quotes.
pub const EXCERPT_CHARS: usize = 100;

impl<'a> MessageView<'a> {
    /// A stored message as it was sent (the log as it happened: a deletion
    /// has blanked its body). `None` if the event is not a message.
    pub fn of(
        room: RoomId,
        seq: Seq,
        event: &'a EventRecord,
        author: AuthorView<'a>,
    ) -> Option<Self> {
        let EventKind::Message {
            body,
            client_id,
            mentions,
            mentions_room,
            files,
            ..
        } = &event.kind
        else {
            return None;
        };
        Some(MessageView {
            id: event.id,
            room,
            seq,
            author,
            body,
            client_id: client_id.as_deref(),
            created_at: SerdeRfc3339(event.at),
            edited_at: None,
            // A redaction empties both; a message of files alone has no body.
            deleted: body.is_empty() && files.is_empty(),
            reactions: Vec::new(),
            reply_to: None,
            mentions,
            mentions_room: *mentions_room,
            files: files.iter().map(FileView::of).collect(),
        })
    }

    /// The message as it is now, for `viewer`: latest body, edit time,
    /// deletion, reactions.
    pub fn with_state(mut self, state: &'a MessageState, viewer: UserId) -> Self {
        if let Some(body) = &state.body {
            self.body = body;
        }
        self.edited_at = state.edited_at.map(SerdeRfc3339);
        if state.deleted {
            self.deleted = true;
            self.body = "";
            self.mentions = &[];
            self.mentions_room = false;
            self.files.clear();
        }
        self.reactions = ReactionView::all(state, viewer);
        self
    }

    pub fn with_reply(mut self, reply: Option<ReplyView>) -> Self {
        self.reply_to = reply;
        self
    }
}

/// A message's JSON with three holes: its author (a rename changes it),
/// its reactions (each reader has a `me` of their own) and the quote of
/// the message it answers (which changes with that message). The rest
/// depends only on the stored event and its state, so it is encoded once
/// and kept beside them ([`crate::recent`]); [`MessageJson::write`] fills
/// the holes and gives what [`MessageView`] serializes to, byte for byte.
#[derive(Debug)]
pub struct MessageJson {
    /// `"id":…,"room":…,"seq":…` (the fields before `author`).
    head: Box<[u8]>,
    /// `"body":…` up to `"deleted":…` (between `author` and `reactions`).
    middle: Box<[u8]>,
    /// `"mentions":…` to the end (after `reply_to`).
    tail: Box<[u8]>,
}

impl MessageJson {
    /// The fixed parts of `view` (its author, reactions and quote are
    /// left out, whatever they are).
    pub fn of(view: &MessageView<'_>) -> MessageJson {
        // The field lists below are MessageView's, in its order; the unit
        // test `message_json_is_what_the_view_serializes_to` holds them to it.
        #[derive(Serialize)]
        struct Head {
            id: EventId,
            room: RoomId,
            seq: Seq,
        }
        #[derive(Serialize)]
        struct Middle<'a> {
            body: &'a str,
            client_id: Option<&'a str>,
            created_at: &'a SerdeRfc3339,
            edited_at: &'a Option<SerdeRfc3339>,
            deleted: bool,
        }
        #[derive(Serialize)]
        struct Tail<'a> {
            mentions: &'a [UserId],
            mentions_room: bool,
            files: &'a [FileView<'a>],
        }
        MessageJson {
            head: fields(&Head {
                id: view.id,
                room: view.room,
                seq: view.seq,
            }),
            middle: fields(&Middle {
                body: view.body,
                client_id: view.client_id,
                created_at: &view.created_at,
                edited_at: &view.edited_at,
                deleted: view.deleted,
            }),
            tail: fields(&Tail {
                mentions: view.mentions,
                mentions_room: view.mentions_room,
                files: &view.files,
            }),
        }
    }

    /// Appends the whole message with its author (already encoded, as
    /// [`AuthorView`] serializes), `reactions` and `reply`.
    pub fn write(
        &self,
        out: &mut Vec<u8>,
        author: &[u8],
        reactions: &[ReactionView<'_>],
        reply: Option<&ReplyView>,
    ) {
        out.push(b'{');
        out.extend_from_slice(&self.head);
        out.extend_from_slice(b",\"author\":");
        out.extend_from_slice(author);
        out.push(b',');
        out.extend_from_slice(&self.middle);
        out.extend_from_slice(b",\"reactions\":");
        if reactions.is_empty() {
            out.extend_from_slice(b"[]");
        } else {
            write_json(out, &reactions);
        }
        out.extend_from_slice(b",\"reply_to\":");
        match reply {
            None => out.extend_from_slice(b"null"),
            Some(r) => write_json(out, r),
        }
        out.push(b',');
        out.extend_from_slice(&self.tail);
        out.push(b'}');
    }
}

/// Appends `value` as JSON.
pub fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("API views are plain data and always serialize");
}

/// A struct's JSON fields without the braces around them.
fn fields<T: Serialize>(value: &T) -> Box<[u8]> {
    let json = serde_json::to_vec(value).expect("API views are plain data and always serialize");
    // A struct serializes as `{…}`.
    json[1..json.len() - 1].into()
}

/// One event of a room's log as clients see it: `message` (new messages
/// arrive as `message` frames instead), `edit`, `delete` or `reaction`.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventView<'a> {
    Message(MessageView<'a>),
    Edit {
        room: RoomId,
        seq: Seq,
        target: Seq,
        body: &'a str,
        by: AuthorView<'a>,
        at: SerdeRfc3339,
    },
    Delete {
        room: RoomId,
        seq: Seq,
        target: Seq,
        by: AuthorView<'a>,
        at: SerdeRfc3339,
    },
    Reaction {
        room: RoomId,
        seq: Seq,
        target: Seq,
        emoji: &'a str,
        by: AuthorView<'a>,
        on: bool,
        at: SerdeRfc3339,
    },
}

impl<'a> EventView<'a> {
    /// An edit, deletion or reaction as stored; `by` is its actor. For a
    /// message use [`MessageView::of`].
    pub fn of(room: RoomId, seq: Seq, event: &'a EventRecord, by: AuthorView<'a>) -> Option<Self> {
        let at = SerdeRfc3339(event.at);
        Some(match &event.kind {
            EventKind::Message { .. } => return None,
            EventKind::Edit { target, body, .. } => EventView::Edit {
                room,
                seq,
                target: *target,
                body,
                by,
                at,
            },
            EventKind::Delete { target, .. } => EventView::Delete {
                room,
                seq,
                target: *target,
                by,
                at,
            },
            EventKind::Reaction {
                target, emoji, on, ..
            } => EventView::Reaction {
                room,
                seq,
                target: *target,
                emoji,
                by,
                on: *on,
                at,
            },
        })
    }
}

#[derive(Debug, Serialize)]
pub struct RoomView<'a> {
    pub id: RoomId,
    pub name: &'a str,
    pub topic: &'a str,
    pub created_by: UserId,
    pub created_at: SerdeRfc3339,
    pub member_count: usize,
    pub last_seq: Seq,
    pub joined: bool,
    pub visibility: Visibility,
    /// Up to 8 members, so a client can name a direct room.
    pub members_preview: Vec<MemberPreview>,
    /// The viewer's read cursor (members only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_seq: Option<Seq>,
    /// Messages by others, not deleted, after `read_seq` (members only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread_count: Option<u64>,
    /// Of those, the ones mentioning the viewer or the whole room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mention_count: Option<u64>,
    /// What the viewer wants to be notified of here (members only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notifications: Option<NotifyLevel>,
}

/// What a member wants to be notified of in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyLevel {
    /// Every message by someone else.
    All,
    /// Messages that mention them or the whole room.
    Mentions,
    /// Nothing.
    None,
}

impl NotifyLevel {
    /// The level of a member who never chose one: everything in a direct
    /// room, mentions elsewhere.
    pub fn default_for(visibility: crate::storage::Visibility) -> NotifyLevel {
        if visibility == crate::storage::Visibility::Direct {
            NotifyLevel::All
        } else {
            NotifyLevel::Mentions
        }
    }

    /// The byte it is stored as.
    pub fn to_byte(self) -> u8 {
        match self {
            NotifyLevel::All => 0,
            NotifyLevel::Mentions => 1,
            NotifyLevel::None => 2,
        }
    }

    pub fn from_byte(b: u8) -> Option<NotifyLevel> {
        match b {
            0 => Some(NotifyLevel::All),
            1 => Some(NotifyLevel::Mentions),
            2 => Some(NotifyLevel::None),
            _ => None,
        }
    }
}

impl RoomView<'_> {
    /// The view with no reader's state, for a frame sent to many.
    pub fn for_everyone(mut self) -> Self {
        self.read_seq = None;
        self.unread_count = None;
        self.mention_count = None;
        self.notifications = None;
        self
    }
}

/// Why a `left` frame came: so a client can say "you were removed" and
/// not only "you are no longer a member".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftReason {
    /// The user left, from this device or another.
    Left,
    /// An owner or moderator removed them.
    Removed,
    /// An owner or moderator banned them.
    Banned,
    /// The room was deleted.
    RoomDeleted,
    /// Their account was deleted.
    AccountDeleted,
}

/// What a member may do in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The creator: everything a moderator may, and naming moderators.
    Owner,
    /// Adds, removes and bans people, deletes messages, edits the room.
    Moderator,
    Member,
}

/// One person's presence, as a `presence` frame says it.
#[derive(Debug, Serialize)]
pub struct PresenceChange<'a> {
    pub user: MemberView<'a>,
    pub online: bool,
}

/// A member named in a room's preview.
#[derive(Debug, Serialize)]
pub struct MemberPreview {
    pub id: UserId,
    pub username: String,
}

impl std::fmt::Debug for SerdeRfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_rfc3339())
    }
}

impl Clone for SerdeRfc3339 {
    fn clone(&self) -> Self {
        SerdeRfc3339(self.0)
    }
}

impl From<Millis> for SerdeRfc3339 {
    fn from(m: Millis) -> Self {
        SerdeRfc3339(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_decode_in_both_formats() {
        let json = br#"{"type":"send","room":"r","client_id":"c1","body":"hi"}"#;
        assert!(matches!(
            ClientFrame::decode(Format::Json, json),
            Ok(ClientFrame::Send { .. })
        ));
        let value = serde_json::json!({"type":"hello","resume":{"r":3}});
        let mp = rmp_serde::to_vec_named(&value).unwrap();
        assert!(matches!(
            ClientFrame::decode(Format::Msgpack, &mp),
            Ok(ClientFrame::Hello { resume: Some(_) })
        ));
    }

    #[test]
    fn bad_frames_name_the_problem_and_keep_client_id() {
        let e =
            ClientFrame::decode(Format::Json, br#"{"type":"shout","client_id":"x"}"#).unwrap_err();
        assert_eq!(e.error.code(), "unknown_type");
        assert_eq!(e.client_id.as_deref(), Some("x"));
        let e =
            ClientFrame::decode(Format::Json, br#"{"type":"send","client_id":"y"}"#).unwrap_err();
        assert_eq!(e.error.code(), "invalid_frame");
        assert_eq!(e.client_id.as_deref(), Some("y"));
        let e = ClientFrame::decode(Format::Json, b"not json").unwrap_err();
        assert_eq!(e.error.code(), "invalid_frame");
    }
}

#[cfg(test)]
mod proptests {
    //! Client frames come straight off the network: decoding any bytes, in
    //! either format, must return a frame or an error, never panic.

    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;

    /// Any JSON value, nested a few levels.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            ".{0,40}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                prop::collection::btree_map(".{0,12}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Frames that are almost right: real and made-up types, real field
    /// names with values of any type, and stray fields.
    fn near_valid_frame() -> impl Strategy<Value = Value> {
        let kind = prop_oneof![
            Just(json!("hello")),
            Just(json!("send")),
            Just(json!("ping")),
            Just(json!("Send")),
            any_json(),
        ];
        let field = prop_oneof![
            Just("room".to_string()),
            Just("client_id".to_string()),
            Just("body".to_string()),
            Just("resume".to_string()),
            Just("type".to_string()),
            ".{0,10}",
        ];
        (
            kind,
            prop::collection::vec((field, any_json()), 0..6),
            any::<bool>(),
        )
            .prop_map(|(kind, fields, typed)| {
                let mut frame = serde_json::Map::new();
                if typed {
                    frame.insert("type".into(), kind);
                }
                for (k, v) in fields {
                    frame.insert(k, v);
                }
                Value::Object(frame)
            })
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = ClientFrame::decode(Format::Json, &bytes);
            let _ = ClientFrame::decode(Format::Msgpack, &bytes);
        }

        #[test]
        fn near_valid_frames_decode_without_panic(frame in near_valid_frame()) {
            let text = serde_json::to_vec(&frame).expect("json");
            let packed = rmp_serde::to_vec_named(&frame).expect("msgpack");
            for (format, bytes) in [(Format::Json, text), (Format::Msgpack, packed)] {
                match ClientFrame::decode(format, &bytes) {
                    Ok(_) => {}
                    Err(e) => {
                        prop_assert!(!e.error.code().is_empty() && !e.error.to_string().is_empty());
                    }
                }
            }
        }

        #[test]
        fn valid_frames_with_damage_decode_without_panic(
            room in ".{0,20}", body in ".{0,200}", cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(), byte in any::<u8>(),
        ) {
            let frame = json!({"type": "send", "room": room, "client_id": "c", "body": body});
            for mut bytes in [
                serde_json::to_vec(&frame).expect("json"),
                rmp_serde::to_vec_named(&frame).expect("msgpack"),
            ] {
                let i = flip.index(bytes.len());
                bytes[i] = byte;
                bytes.truncate(cut.index(bytes.len() + 1));
                let _ = ClientFrame::decode(Format::Json, &bytes);
                let _ = ClientFrame::decode(Format::Msgpack, &bytes);
            }
        }
    }

    /// Nesting must fail on depth, not blow the stack of the task decoding it.
    #[test]
    fn deeply_nested_json_and_arrays_decode_without_overflow() {
        let json = "[".repeat(100_000);
        assert!(ClientFrame::decode(Format::Json, json.as_bytes()).is_err());
        // MessagePack: fixarray of one element, 65 000 times.
        assert!(ClientFrame::decode(Format::Msgpack, &[0x91u8; 65_000]).is_err());
    }

    /// A 1 KB MessagePack frame of maps nested as keys (`0x81` repeated)
    /// recurses once per byte in rmp-serde; at about 1 000 levels that
    /// overflows a 2 MiB stack and aborts the process.
    #[test]
    fn deeply_nested_msgpack_maps_decode_without_overflow() {
        let mut map = vec![0x81u8];
        map.extend(std::iter::repeat_n(0x81u8, 65_000));
        assert!(ClientFrame::decode(Format::Msgpack, &map).is_err());
    }
}

#[cfg(test)]
mod message_json {
    //! A message copied from its kept JSON must be what its view
    //! serializes to, whatever the message holds and whoever reads it.

    use proptest::prelude::*;

    use super::*;
    use crate::ids::ContentHash;

    fn file(name: String, width: Option<u32>) -> FileRef {
        FileRef {
            id: FileId::generate(),
            name,
            mime: "image/png".into(),
            size: 12_345,
            hash: ContentHash([7; 32]),
            width,
            height: width.map(|w| w / 2),
            thumb: width.is_some(),
        }
    }

    proptest! {
        #[test]
        fn message_json_is_what_the_view_serializes_to(
            body in ".{0,80}", edited in proptest::option::of(".{0,40}"),
            client_id in proptest::option::of("[a-z0-9\"\\\\]{1,12}"),
            deleted in any::<bool>(), mentions in 0usize..3, mentions_room in any::<bool>(),
            files in proptest::collection::vec((".{1,20}", proptest::option::of(1u32..5000)), 0..3),
            reactions in proptest::collection::vec((".{1,4}", 0usize..3), 0..3),
            username in ".{1,20}", author_deleted in any::<bool>(), reply in any::<bool>(),
            at in 0u64..4_000_000_000_000,
        ) {
            let (author, viewer) = (UserId::generate(), UserId::generate());
            let event = EventRecord {
                id: EventId::generate(),
                at: Millis(at),
                kind: EventKind::Message {
                    author,
                    body,
                    client_id,
                    reply_to: None,
                    mentions: (0..mentions).map(|_| UserId::generate()).collect(),
                    mentions_room,
                    files: files.into_iter().map(|(n, w)| file(n, w)).collect(),
                },
            };
            let state = MessageState {
                edited_at: edited.as_ref().map(|_| Millis(at + 1)),
                body: edited,
                edits: Vec::new(),
                deleted,
                reactions: reactions
                    .into_iter()
                    .map(|(emoji, n)| {
                        let mut by: Vec<UserId> = (0..n).map(|_| UserId::generate()).collect();
                        if n == 2 {
                            by.push(viewer);
                        }
                        (emoji, by)
                    })
                    .collect(),
            };
            let (room, seq) = (RoomId::generate(), Seq(42));
            let by = AuthorView { id: author, username: &username, deleted: author_deleted };
            let quote = reply.then(|| ReplyView {
                seq: Seq(7),
                author: ReplyAuthor { id: author, username: username.clone(), deleted: false },
                excerpt: "a \"quoted\" line".into(),
            });
            let view = MessageView::of(room, seq, &event, by)
                .expect("a message")
                .with_state(&state, viewer);
            let nobody = AuthorView { id: UserId::NIL, username: "", deleted: false };
            let kept = MessageJson::of(
                &MessageView::of(room, seq, &event, nobody).expect("a message").with_state(&state, UserId::NIL),
            );
            let author_json = serde_json::to_vec(&view.author).expect("json");
            let mut copied = Vec::new();
            kept.write(&mut copied, &author_json, &view.reactions, quote.as_ref());
            let whole = serde_json::to_vec(&view.with_reply(quote)).expect("json");
            prop_assert_eq!(String::from_utf8(copied).expect("utf-8"), String::from_utf8(whole).expect("utf-8"));
        }
    }
}
