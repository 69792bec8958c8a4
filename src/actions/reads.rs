//! Read state: a member marks where they have read to in a room, every
//! device of theirs hears of it, and the cursors reach the store at least
//! once a second. Also each member's notification level for a room.

use super::member_room;
use crate::error::ApiError;
use crate::hub::ConnId;
use crate::ids::{Seq, UserId};
use crate::protocol::{NotifyLevel, ServerFrame};
use crate::state::AppState;
use crate::unread::ReadState;

/// How often moved cursors are written to the store: a crash takes back
/// at most this much read position.
pub const SAVE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Moves `user`'s cursor in a room to `seq` (a seq past the room's newest
/// event means all of it): forward only, or exactly with `force` (how
/// "mark as unread" works). The user's other sockets, all but `from`, get
/// a `read` frame when it moved. Answers the room's read state now.
pub fn mark(
    state: &AppState,
    user: UserId,
    room_id: &str,
    seq: Seq,
    force: bool,
    from: Option<ConnId>,
) -> Result<ReadState, ApiError> {
    let room = member_room(state, room_id, user)?;
    let Some(now) = state.rooms.mark_read(&room, user, seq, force) else {
        return room.read_state(user).ok_or(ApiError::NotAMember);
    };
    let frame = ServerFrame::Read {
        room: room.record.id,
        seq: now.read_seq,
        unread_count: now.unread_count,
        mention_count: now.mention_count,
    };
    for conn in state.hub.connections_of(user) {
        if Some(conn.id) != from {
            conn.send(&frame);
        }
    }
    state.push.read(user, room.record.id, now.read_seq);
    Ok(now)
}

/// Sets what `user` wants to be notified of in a room (durable before it
/// is answered; the default is stored as no choice at all). The user's
/// other sockets get a `notifications` frame.
pub async fn set_notifications(
    state: &AppState,
    user: UserId,
    room_id: &str,
    level: NotifyLevel,
    from: Option<ConnId>,
) -> Result<NotifyLevel, ApiError> {
    let room = member_room(state, room_id, user)?;
    let chosen = (level != NotifyLevel::default_for(room.record.visibility)).then_some(level);
    state
        .store
        .put_notify_level(user, room.record.id, chosen.map(NotifyLevel::to_byte))?;
    state.store.flush_async().await?;
    room.set_notifications(user, chosen);
    let frame = ServerFrame::Notifications {
        room: room.record.id,
        level,
    };
    for conn in state.hub.connections_of(user) {
        if Some(conn.id) != from {
            conn.send(&frame);
        }
    }
    Ok(level)
}

/// Writes the cursors moved since the last save, and the unread tally
/// snapshots that are due (every changed one when `all`, at shutdown), then
/// flushes. A failed write keeps them for the next save.
pub async fn save(state: &AppState, all: bool) -> Result<(), ApiError> {
    let rooms = state.rooms.clone();
    let store = state.store.clone();
    // Encoding a big room's snapshot takes a while: off the async threads.
    let (writes, tallies, result) = tokio::task::spawn_blocking(move || {
        let writes = rooms.take_unsaved_reads();
        let tallies = rooms.take_due_tallies(all);
        if writes.is_empty() && tallies.is_empty() {
            return (writes, tallies, Ok(()));
        }
        let result = store
            .write_read_cursors(&writes)
            .and_then(|()| store.put_tallies(&tallies))
            .and_then(|()| store.flush());
        (writes, tallies, result)
    })
    .await
    .map_err(|_| ApiError::Internal)?;
    if let Err(e) = result {
        state.rooms.keep_unsaved_reads(&writes);
        state.rooms.keep_due_tallies(&tallies);
        return Err(e.into());
    }
    Ok(())
}
