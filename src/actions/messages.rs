//! Messages and what happens to them: send (with replies and mentions),
//! edit, delete, react, and reading history and the raw event log.
//!
//! Each change is judged finally by the committer, the log's one writer
//! (is the message still there, is it yours): the checks here are those
//! that need no log order.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::member_room;
use crate::commit::{Append, Change, Committed, Reply};
use crate::error::ApiError;
use crate::hub::Outbox;
use crate::ids::{RoomId, Seq, UserId};
use crate::protocol::{MemberView, ServerFrame};
use crate::recent::{Logged, Span};
use crate::rooms::Room;
use crate::state::AppState;
use crate::storage::records::{EventKind, EventRecord};
use crate::validate;
use crate::views::{self, Authors, Current};

/// A message to send, as a client gave it.
pub struct Send<'a> {
    pub room: &'a str,
    pub body: String,
    pub client_id: Option<String>,
    /// The seq of the message this one answers.
    pub reply_to: Option<u64>,
    /// Ids of the sender's uploads to attach (at most 10); with any, the
    /// body may be empty.
    pub files: Vec<String>,
}

/// Where a change's outcome goes.
pub enum Via {
    /// The sender's socket gets an `ack` (or `error`) frame once the
    /// change is durable; the socket's reader goes on meanwhile.
    Socket(Arc<Outbox>),
    /// The caller waits for the stored event.
    Wait,
}

/// What became of a change.
pub enum Sent {
    /// Stored (or, for a repeated `client_id`, found stored) and durable.
    Stored(Committed),
    /// Nothing to store: it was already so (a repeated deletion or
    /// reaction).
    Unchanged,
    /// Queued to the committer; the ack goes to the socket.
    Queued,
}

/// Sends a message: checks, then the committer stores it, acknowledges it
/// once durable and delivers it to every member's sockets. A retry of a
/// stored `client_id` is answered at once and costs no rate budget.
pub async fn send(
    state: &AppState,
    author: UserId,
    msg: Send<'_>,
    via: Via,
) -> Result<Sent, ApiError> {
    let client_id = msg.client_id.map(validate::client_id).transpose()?;
    let room = member_room(state, msg.room, author)?;
    // Files may go without words.
    if msg.files.is_empty() || !msg.body.trim().is_empty() {
        validate::body(&msg.body)?;
    }
    if let Some(sent) = stored_retry(state, &room, author, client_id.as_ref())? {
        return Ok(sent);
    }
    let files = super::files::attachable(state, &room, author, &msg.files)?;
    let reply_to = match msg.reply_to {
        None => None,
        Some(seq) => Some(replied(state, &room, Seq(seq))?),
    };
    let (mentions, mentions_room) = mentions(state, &room, author, &msg.body);
    let change = Change::Message {
        body: msg.body,
        reply_to,
        mentions,
        mentions_room,
        files,
    };
    submit(state, &room, author, client_id, change, via).await
}

/// A change to one message, as a client gave it.
pub struct Edit<'a> {
    pub room: &'a str,
    pub target: u64,
    pub client_id: Option<String>,
    pub what: EditKind,
}

pub enum EditKind {
    /// A new body (the author only).
    Body(String),
    /// A redaction (the author, or an administrator).
    Delete,
    /// A reaction put on or taken back.
    React { emoji: String, on: bool },
}

/// Edits, deletes or reacts to a message. Edits, deletions and reactions
/// spend the same rate budget as sends.
pub async fn change(
    state: &AppState,
    by: UserId,
    edit: Edit<'_>,
    via: Via,
) -> Result<Sent, ApiError> {
    let client_id = edit.client_id.map(validate::client_id).transpose()?;
    let room = match edit.what {
        // Moderators, and administrators of rooms they can see, delete
        // without being members.
        EditKind::Delete => state
            .rooms
            .find_visible(edit.room, by)
            .ok_or(ApiError::RoomNotFound)?,
        _ => member_room(state, edit.room, by)?,
    };
    let target = Seq(edit.target);
    let change = match edit.what {
        EditKind::Body(body) => {
            validate::body(&body)?;
            Change::Edit { target, body }
        }
        EditKind::Delete => Change::Delete {
            target,
            moderator: super::rooms::moderates(state, &room, by),
        },
        EditKind::React { emoji, on } => {
            validate::emoji(&emoji)?;
            Change::React { target, emoji, on }
        }
    };
    if target == Seq::ZERO || target > room.head() {
        return Err(ApiError::MessageNotFound);
    }
    if let Some(sent) = stored_retry(state, &room, by, client_id.as_ref())? {
        return Ok(sent);
    }
    submit(state, &room, by, client_id, change, via).await
}

/// The operator deletes a message (the admin CLI), as an administrator would.
pub async fn delete_as_operator(
    state: &AppState,
    room: RoomId,
    target: Seq,
) -> Result<(), ApiError> {
    let r = state.rooms.get(room).ok_or(ApiError::RoomNotFound)?;
    if target == Seq::ZERO || target > r.head() {
        return Err(ApiError::MessageNotFound);
    }
    // No account acts: the event names the operator as the nil user.
    let change = Change::Delete {
        target,
        moderator: true,
    };
    submit(state, &r, UserId::NIL, None, change, Via::Wait)
        .await
        .map(drop)
}

/// Tells the room's other members that `user` is typing. Not stored; at
/// most one relay per user and room every 2 s (more are ignored, not
/// refused), and dropped for any socket that is behind.
pub fn typing(state: &AppState, user: UserId, room_id: &str) -> Result<(), ApiError> {
    let room = member_room(state, room_id, user)?;
    if state.limits.typing.check(&(user, room.record.id)).is_err() {
        return Ok(());
    }
    let Some(who) = state.directory.get(user) else {
        return Ok(());
    };
    state.hub.send_room_droppable(
        room.record.id,
        &ServerFrame::Typing {
            room: room.record.id,
            user: MemberView {
                id: user,
                username: &who.username,
            },
        },
        user,
    );
    Ok(())
}

/// A retry of a change already stored and durable, answered without the
/// committer or the rate budget.
fn stored_retry(
    state: &AppState,
    room: &Room,
    by: UserId,
    client_id: Option<&crate::ids::ClientId>,
) -> Result<Option<Sent>, ApiError> {
    let Some(c) = client_id else {
        return Ok(None);
    };
    Ok(room
        .durable_duplicate(&state.store.log()?, by, c.as_str())?
        .map(|(seq, event)| {
            Sent::Stored(Committed {
                room: room.record.id,
                seq,
                event,
                duplicate: true,
            })
        }))
}

async fn submit(
    state: &AppState,
    room: &Room,
    by: UserId,
    client_id: Option<crate::ids::ClientId>,
    change: Change,
    via: Via,
) -> Result<Sent, ApiError> {
    state.limits.send.check(&by)?;
    let (reply, waiting) = match via {
        Via::Socket(outbox) => (Reply::Socket(outbox), None),
        Via::Wait => {
            let (tx, rx) = oneshot::channel();
            (Reply::Request(tx), Some(rx))
        }
    };
    state
        .committer
        .submit(Append {
            room: room.record.id,
            author: by,
            client_id,
            change,
            reply,
            received: std::time::Instant::now(),
            origin: None,
        })
        .await?;
    let Some(rx) = waiting else {
        return Ok(Sent::Queued);
    };
    match rx.await.map_err(|_| ApiError::ShuttingDown)?? {
        Some(c) => Ok(Sent::Stored(c)),
        None => Ok(Sent::Unchanged),
    }
}

/// `reply_to` must name a message (not an edit or reaction) in this room.
fn replied(state: &AppState, room: &Room, seq: Seq) -> Result<Seq, ApiError> {
    if seq == Seq::ZERO || seq > room.head() {
        return Err(ApiError::InvalidReply);
    }
    match state.store.log()?.event(room.record.id, seq)? {
        Some(EventRecord {
            kind: EventKind::Message { .. },
            ..
        }) => Ok(seq),
        _ => Err(ApiError::InvalidReply),
    }
}

/// The members a body names with `@username` (ignoring case, on word
/// boundaries), and whether it says `@room` with the right to (the room's
/// creator or an administrator; from anyone else it is plain text).
fn mentions(state: &AppState, room: &Room, author: UserId, body: &str) -> (Vec<UserId>, bool) {
    let mut found = Vec::new();
    let mut everyone = false;
    // Each name is a lookup: a body of nothing but `@a @b …` is bounded.
    for name in mention_names(body).take(MAX_MENTIONS) {
        if name.eq_ignore_ascii_case("room") {
            everyone |= super::rooms::moderates(state, room, author);
            continue;
        }
        let Ok(Some(user)) = state.store.user_by_login(name) else {
            continue;
        };
        // By username only: `@` followed by an email is not a mention.
        if user.deleted || !user.username.eq_ignore_ascii_case(name) || !room.is_member(user.id) {
            continue;
        }
        if !found.contains(&user.id) {
            found.push(user.id);
        }
    }
    (found, everyone)
}

/// The most `@names` of one message that are looked up.
const MAX_MENTIONS: usize = 50;

/// Every `@name` in a body: after the start or a character that cannot be
/// part of a name, and up to the first that cannot.
fn mention_names(body: &str) -> impl Iterator<Item = &str> {
    let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    body.match_indices('@').filter_map(move |(at, _)| {
        let before = body[..at].chars().next_back();
        if before.is_some_and(|c| name_char(c) || c == '@') {
            return None;
        }
        let rest = &body[at + 1..];
        let end = rest.find(|c: char| !name_char(c)).unwrap_or(rest.len());
        // A name does not end in `.` or `-` ("thanks @bob." names bob).
        let name = rest[..end].trim_end_matches(['.', '-']);
        (!name.is_empty()).then_some(name)
    })
}

/// Default and largest page of history.
pub const PAGE_DEFAULT: usize = 50;
pub const PAGE_MAX: usize = 200;
/// Largest page of the raw event log.
pub const EVENTS_MAX: usize = 500;

/// Which part of a room's history to read.
#[derive(Debug, Clone, Copy)]
pub enum Page {
    /// The newest `limit` messages.
    Newest(usize),
    /// Up to `limit` messages just before `seq`.
    Before(Seq, usize),
    /// Up to `limit` messages just after `seq`.
    After(Seq, usize),
}

/// A page of a room's messages (only messages, each as it is now), oldest
/// first, for a member: the API's JSON (`{"messages":[…]}`), written
/// straight from the events and from the JSON the recent window keeps for
/// the messages it holds (going through `serde_json::Value` cost more
/// than reading the page from storage), or the bytes kept from an earlier
/// reader of the same page ([`crate::recent`]).
pub fn history(
    state: &AppState,
    reader: UserId,
    room_id: &str,
    page: Page,
) -> Result<Bytes, ApiError> {
    let room = member_room(state, room_id, reader)?;
    let head = room.head();
    let (from, to, limit, newest) = match page {
        Page::Before(b, limit) => (Seq(1), Seq(b.0.saturating_sub(1).min(head.0)), limit, true),
        Page::After(a, limit) => (Seq(a.0.saturating_add(1)), head, limit, false),
        Page::Newest(limit) => (Seq(1), head, limit, true),
    };
    let span = Span {
        from,
        to,
        limit,
        newest,
    };
    let rid = room.record.id;
    let directory = &state.directory;
    // Before anything is rendered from the directory.
    let version = directory.version();
    let body = room
        .recent()
        .page(&state.store, rid, span, reader, version, |page| {
            let log = state.store.log()?;
            let authors = Authors::of(directory, page.iter().map(|c| c.event.kind.actor()));
            Ok(views::messages_json(
                &log, directory, &authors, rid, page, reader,
            ))
        })?;
    Ok(body)
}

/// The raw log of a room after `after`: every event as it happened (a
/// deletion has blanked the text of the message and its edits).
pub fn events(
    state: &AppState,
    reader: UserId,
    room_id: &str,
    after: Seq,
    limit: usize,
) -> Result<(RoomId, Vec<Logged>), ApiError> {
    let room = member_room(state, room_id, reader)?;
    let rid = room.record.id;
    let events = room
        .recent()
        .range(&state.store, rid, after.next(), room.head(), limit)?;
    Ok((rid, events))
}

/// One message now, for a member (the answer to an edit over REST).
pub fn current(
    state: &AppState,
    reader: UserId,
    room_id: &str,
    seq: Seq,
) -> Result<(RoomId, Current), ApiError> {
    let room = member_room(state, room_id, reader)?;
    let rid = room.record.id;
    room.recent()
        .message(&state.store, rid, seq, room.head())?
        .map(|c| (rid, c))
        .ok_or(ApiError::MessageNotFound)
}

/// A message's versions, the original first (empty texts once deleted).
pub fn edits(
    state: &AppState,
    reader: UserId,
    room_id: &str,
    seq: Seq,
) -> Result<Vec<(String, crate::ids::Millis)>, ApiError> {
    let (rid, current) = self::current(state, reader, room_id, seq)?;
    let log = state.store.log()?;
    let EventKind::Message { body, .. } = &current.event.kind else {
        return Err(ApiError::MessageNotFound);
    };
    let mut out = vec![(body.clone(), current.event.at)];
    for at in &current.state.edits {
        if let Some(EventRecord {
            at: when,
            kind: EventKind::Edit { body, .. },
            ..
        }) = log.event(rid, *at)?
        {
            out.push((body, when));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::mention_names;

    #[test]
    fn mentions_are_found_on_word_boundaries() {
        let names: Vec<_> =
            mention_names("hi @bob, @Carol. mail x@y.org @@dan @room @eve-").collect();
        assert_eq!(names, ["bob", "Carol", "room", "eve"]);
    }
}
