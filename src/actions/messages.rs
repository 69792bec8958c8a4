//! Messages: send, read history, and the administrator's removal.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::{member_room, Actor};
use crate::commit::{Append, Committed, Reply};
use crate::error::ApiError;
use crate::hub::Outbox;
use crate::ids::{RoomId, Seq, UserId};
use crate::state::AppState;
use crate::storage::records::EventRecord;
use crate::validate;

/// A message to send, as a client gave it.
pub struct Send<'a> {
    pub room: &'a str,
    pub body: String,
    pub client_id: Option<String>,
}

/// Where a send's outcome goes.
pub enum Via {
    /// The sender's socket gets an `ack` (or `error`) frame once the
    /// message is durable; the socket's reader goes on meanwhile.
    Socket(Arc<Outbox>),
    /// The caller waits for the stored message.
    Wait,
}

/// What became of a send.
pub enum Sent {
    /// Stored (or, for a repeated `client_id`, found stored) and durable.
    Stored(Committed),
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
    validate::body(&msg.body)?;
    if let Some(c) = &client_id {
        if let Some((seq, event)) = room.durable_duplicate(&state.store, author, c.as_str())? {
            return Ok(Sent::Stored(Committed {
                room: room.record.id,
                seq,
                event,
                duplicate: true,
            }));
        }
    }
    state.limits.send.check(&author)?;
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
            author,
            body: msg.body,
            client_id,
            reply,
        })
        .await?;
    match waiting {
        None => Ok(Sent::Queued),
        Some(rx) => Ok(Sent::Stored(rx.await.map_err(|_| ApiError::ShuttingDown)??)),
    }
}

/// Default and largest page of history.
pub const PAGE_DEFAULT: usize = 50;
pub const PAGE_MAX: usize = 200;

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

/// A page of a room's history, oldest first, for a member.
pub fn history(
    state: &AppState,
    reader: UserId,
    room_id: &str,
    page: Page,
) -> Result<(RoomId, Vec<(Seq, EventRecord)>), ApiError> {
    let room = member_room(state, room_id, reader)?;
    let head = room.head();
    let log = state.store.log()?;
    let rid = room.record.id;
    let events = match page {
        Page::Before(b, limit) => {
            log.range_newest(rid, Seq(1), Seq(b.0.saturating_sub(1).min(head.0)), limit)?
        }
        Page::After(a, limit) => log.range(rid, Seq(a.0.saturating_add(1)), head, limit)?,
        Page::Newest(limit) => log.range_newest(rid, Seq(1), head, limit)?,
    };
    Ok((rid, events))
}

/// Replaces a message with a tombstone: history shows it deleted, its seq
/// stays so nobody's resume skips or repeats.
pub async fn remove(
    state: &AppState,
    actor: Actor,
    room_id: RoomId,
    seq: Seq,
) -> Result<(), ApiError> {
    actor.require_admin(state)?;
    let room = state.rooms.get(room_id).ok_or(ApiError::RoomNotFound)?;
    if seq == Seq::ZERO || seq > room.head() {
        return Err(ApiError::MessageNotFound);
    }
    if !state.store.log()?.tombstone(room_id, seq)? {
        return Err(ApiError::MessageNotFound);
    }
    state.store.flush_async().await?;
    tracing::info!(room = %room_id, seq = seq.0, ?actor, "Message deleted.");
    Ok(())
}
