//! Rooms: create, join, leave, and the administrator's rename and delete.
//! Membership and room changes are not in the room log; every open socket
//! concerned hears of them as frames (see docs/protocol.md).

use std::sync::Arc;
use std::time::Duration;

use super::Actor;
use crate::error::ApiError;
use crate::ids::{Millis, RoomId, UserId};
use crate::protocol::{MemberView, ServerFrame};
use crate::rooms::Room;
use crate::state::AppState;
use crate::storage::{RoomRecord, UserRecord};
use crate::validate;

/// Creates a public room with its creator as first member. The creator's
/// sockets are subscribed to it (`joined`); every other open socket hears
/// of the new room (`room_added`).
pub async fn create(
    state: &AppState,
    creator: UserId,
    name: &str,
    topic: Option<&str>,
) -> Result<Arc<Room>, ApiError> {
    let name = validate::room_name(name)?;
    let topic = validate::topic(topic.unwrap_or(""))?;
    let record = RoomRecord {
        id: RoomId::generate(),
        name,
        topic,
        created_by: creator,
        created_at: Millis::now(),
    };
    if state.store.create_room(&record, creator)?.is_err() {
        return Err(ApiError::RoomNameTaken);
    }
    state.store.flush_async().await?;

    let room = state.rooms.insert(record, creator);
    announce_join(state, creator, &room);
    // Rendered for someone who has not joined (`joined` is per viewer); the
    // creator's sockets had `joined` instead.
    state.hub.send_all(
        &ServerFrame::RoomAdded {
            room: room.view(UserId::NIL),
        },
        Some(creator),
    );
    tracing::info!(room = %room.record.id, user = %creator, "Room created.");
    Ok(room)
}

/// Joins a room (nothing happens if already a member).
pub async fn join(state: &AppState, user: UserId, room_id: &str) -> Result<Arc<Room>, ApiError> {
    let room = state.rooms.find(room_id).ok_or(ApiError::RoomNotFound)?;
    if room.is_member(user) {
        return Ok(room);
    }
    state.store.add_member(room.record.id, user)?;
    state.store.flush_async().await?;

    if state.rooms.add_member_in_memory(room.record.id, user) {
        announce_join(state, user, &room);
        if let Some(who) = state.directory.get(user) {
            state.hub.send_room(
                room.record.id,
                &ServerFrame::MemberJoined {
                    room: room.record.id,
                    user: MemberView {
                        id: user,
                        username: &who.username,
                    },
                    member_count: room.member_count(),
                },
            );
        }
    }
    Ok(room)
}

/// Leaves a room (nothing happens if not a member).
pub async fn leave(state: &AppState, user: UserId, room_id: &str) -> Result<(), ApiError> {
    let room = state.rooms.find(room_id).ok_or(ApiError::RoomNotFound)?;
    if !room.is_member(user) {
        return Ok(());
    }
    state.store.remove_member(room.record.id, user)?;
    state.store.flush_async().await?;

    let record = state.store.user(user)?;
    match record {
        Some(u) => settle_leave(state, room.record.id, &u),
        None => {
            state.rooms.remove_member_in_memory(room.record.id, user);
        }
    }
    Ok(())
}

/// After a leave is durable: the registry forgets the membership, the
/// user's sockets stop receiving the room (`left`), and the members who
/// stay are told (`member_left`).
pub(super) fn settle_leave(state: &AppState, room: RoomId, user: &UserRecord) {
    state.rooms.remove_member_in_memory(room, user.id);
    for conn in state.hub.unsubscribe_user(user.id, room) {
        conn.send(&ServerFrame::Left { room });
    }
    if let Some(r) = state.rooms.get(room) {
        state.hub.send_room(
            room,
            &ServerFrame::MemberLeft {
                room,
                user: MemberView {
                    id: user.id,
                    username: &user.username,
                },
                member_count: r.member_count(),
            },
        );
    }
}

/// Renames a room; names stay unique ignoring case.
pub async fn rename(
    state: &AppState,
    actor: Actor,
    room_id: RoomId,
    name: &str,
) -> Result<Arc<Room>, ApiError> {
    actor.require_admin(state)?;
    let room = state.rooms.get(room_id).ok_or(ApiError::RoomNotFound)?;
    let name = validate::room_name(name)?;
    if state.store.rename_room(&room.record, &name)?.is_err() {
        return Err(ApiError::RoomNameTaken);
    }
    state.store.flush_async().await?;
    let mut record = room.record.clone();
    record.name = name;
    state.rooms.replace_record(record);
    state.rooms.get(room_id).ok_or(ApiError::RoomNotFound)
}

/// Removes a room for everyone. The registry forgets it first, so no new
/// send is accepted; members' sockets get `left`, every socket
/// `room_removed`.
pub async fn delete(
    state: &AppState,
    actor: Actor,
    room_id: RoomId,
) -> Result<Arc<Room>, ApiError> {
    actor.require_admin(state)?;
    let room = state.rooms.get(room_id).ok_or(ApiError::RoomNotFound)?;
    let members = state.rooms.remove(room_id);
    for user in members {
        for conn in state.hub.unsubscribe_user(user, room_id) {
            conn.send(&ServerFrame::Left { room: room_id });
        }
    }
    state.store.delete_room(&room.record)?;
    state.store.flush_async().await?;
    state
        .hub
        .send_all(&ServerFrame::RoomRemoved { room: room_id }, None);
    // A send accepted just before the registry forgot the room may still
    // be in the committer's queue; sweep its log once more after it ran.
    if !state.shutdown.is_cancelled() {
        let store = state.store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = store.log().and_then(|log| log.delete_room(room_id));
        });
    }
    tracing::info!(room = %room_id, ?actor, "Room deleted.");
    Ok(room)
}

/// Subscribes the user's live connections to a room they just joined and
/// tells them, from every device. Subscribing before reading the head means
/// every message after `last_seq` in the `joined` frame arrives live.
fn announce_join(state: &AppState, user: UserId, room: &Room) {
    for conn in state.hub.subscribe_user(user, room.record.id) {
        conn.send(&ServerFrame::Joined {
            room: room.view(user),
        });
    }
}
