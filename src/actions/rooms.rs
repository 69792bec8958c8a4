//! Rooms: create (public or private), direct rooms, join, add, leave, and
//! the administrator's list, rename and delete.
//! Membership and room changes are not in the room log; every open socket
//! concerned hears of them as frames (see docs/protocol.md).

use std::sync::Arc;
use std::time::Duration;

use super::Actor;
use crate::error::ApiError;
use crate::ids::{Millis, RoomId, UserId};
use crate::protocol::{LeftReason, MemberView, Role, ServerFrame};
use crate::rooms::Room;
use crate::state::AppState;
use crate::storage::{RoomRecord, UserRecord, Visibility};
use crate::validate;

/// Creates a room with its creator as first member (and owner). The
/// creator's sockets are subscribed to it (`joined`); for a public room
/// every other open socket hears of it (`room_added`), for a private one
/// nobody else learns it exists.
pub async fn create(
    state: &AppState,
    creator: UserId,
    name: &str,
    topic: Option<&str>,
    visibility: Visibility,
) -> Result<Arc<Room>, ApiError> {
    let name = validate::room_name(name)?;
    let topic = validate::topic(topic.unwrap_or(""))?;
    if visibility == Visibility::Direct {
        return Err(ApiError::InvalidRequest(
            "Direct rooms are started with POST /api/v1/dms.".into(),
        ));
    }
    let record = RoomRecord {
        id: RoomId::generate(),
        name,
        topic,
        created_by: creator,
        created_at: Millis::now(),
        visibility,
        direct: Vec::new(),
        moderators: Vec::new(),
        banned: Vec::new(),
    };
    if state.store.create_room(&record, &[creator])?.is_err() {
        return Err(ApiError::RoomNameTaken);
    }
    state.store.flush_async().await?;

    let room = state.rooms.insert(record, &[creator]);
    announce_join(state, creator, &room);
    if visibility == Visibility::Public {
        // Rendered for someone who has not joined (`joined` is per viewer);
        // the creator's sockets had `joined` instead.
        state.hub.send_all(
            &ServerFrame::RoomAdded {
                room: room.view(UserId::NIL, &state.directory),
            },
            Some(creator),
        );
    }
    tracing::info!(room = %room.record.id, user = %creator, ?visibility, "Room created.");
    Ok(room)
}

/// Most people in a direct room besides the one who starts it.
pub const DIRECT_MAX_OTHERS: usize = 8;

/// The direct room between the caller and `others` (1 to 8 active
/// accounts): the same set of people always gets the same room, whoever
/// asks, in whatever order, even when two such requests race.
pub async fn direct(
    state: &AppState,
    me: UserId,
    others: &[UserId],
) -> Result<Arc<Room>, ApiError> {
    let mut people: Vec<UserId> = others.iter().copied().filter(|u| *u != me).collect();
    people.sort();
    people.dedup();
    if people.is_empty() || people.len() > DIRECT_MAX_OTHERS {
        return Err(ApiError::InvalidDirect);
    }
    for u in &people {
        match state.directory.get(*u) {
            Some(s) if !s.deleted && !s.disabled => {}
            _ => return Err(ApiError::InvalidDirect),
        }
    }
    people.push(me);
    people.sort();
    let record = RoomRecord {
        id: RoomId::generate(),
        name: String::new(),
        topic: String::new(),
        created_by: me,
        created_at: Millis::now(),
        visibility: Visibility::Direct,
        direct: people.clone(),
        moderators: Vec::new(),
        banned: Vec::new(),
    };
    if let Err(existing) = state.store.create_room(&record, &people)? {
        // Made before, or by a request racing this one: that is the room.
        // Its writer may not have flushed or registered it yet.
        state.store.flush_async().await?;
        if let Some(room) = state.rooms.get(existing) {
            return Ok(room);
        }
        let record = state.store.room(existing)?.ok_or(ApiError::RoomNotFound)?;
        return Ok(state.rooms.insert(record, &people));
    }
    state.store.flush_async().await?;
    let room = state.rooms.insert(record, &people);
    for person in &people {
        announce_join(state, *person, &room);
    }
    tracing::info!(room = %room.record.id, people = people.len(), "Direct room started.");
    Ok(room)
}

/// Joins a public room (nothing happens if already a member). A private
/// room is not found by anyone outside it; a direct room takes nobody new.
pub async fn join(state: &AppState, user: UserId, room_id: &str) -> Result<Arc<Room>, ApiError> {
    let room = visible_room(state, room_id, user)?;
    if room.is_member(user) {
        return Ok(room);
    }
    if room.record.visibility != Visibility::Public {
        return Err(ApiError::DirectRoom);
    }
    if room.record.banned.contains(&user) {
        return Err(ApiError::Banned);
    }
    enter(state, user, &room).await?;
    Ok(room)
}

/// Whether `user` moderates `room`: its owner, a moderator, or an
/// administrator who can see it (every public room, and the private and
/// direct rooms they are in).
pub fn moderates(state: &AppState, room: &Room, user: UserId) -> bool {
    matches!(room.role(user), Some(Role::Owner | Role::Moderator))
        || (room.visible_to(user) && Actor::User(user).require_admin(state).is_ok())
}

/// Whether `user` owns `room`, or is an administrator who can see it.
fn owns(state: &AppState, room: &Room, user: UserId) -> bool {
    room.role(user) == Some(Role::Owner)
        || (room.visible_to(user) && Actor::User(user).require_admin(state).is_ok())
}

/// A room whose people can change (not a direct room) that `by` can see.
fn managed_room(state: &AppState, room_id: &str, by: UserId) -> Result<Arc<Room>, ApiError> {
    let room = visible_room(state, room_id, by)?;
    if room.record.visibility == Visibility::Direct {
        return Err(ApiError::DirectRoom);
    }
    Ok(room)
}

/// Adds someone to a room: its owner or a moderator (or an administrator).
/// The only way into a private room.
pub async fn add_member(
    state: &AppState,
    by: UserId,
    room_id: &str,
    user: UserId,
) -> Result<Arc<Room>, ApiError> {
    let room = managed_room(state, room_id, by)?;
    if !moderates(state, &room, by) {
        return Err(ApiError::Forbidden);
    }
    match state.directory.get(user) {
        Some(s) if !s.deleted && !s.disabled => {}
        _ => return Err(ApiError::UserNotFound),
    }
    if room.record.banned.contains(&user) {
        return Err(ApiError::Banned);
    }
    if !room.is_member(user) {
        enter(state, user, &room).await?;
    }
    Ok(room)
}

/// Removes someone from a room: themselves (a leave), or, for its owner
/// and moderators, anyone but the owner (a moderator removes only members).
pub async fn remove_member(
    state: &AppState,
    by: UserId,
    room_id: &str,
    user: UserId,
) -> Result<(), ApiError> {
    if by == user {
        return leave(state, user, room_id).await;
    }
    let room = managed_room(state, room_id, by)?;
    let allowed = match room.role(user) {
        None => return Ok(()),
        Some(Role::Owner) => false,
        Some(Role::Moderator) => owns(state, &room, by),
        Some(Role::Member) => moderates(state, &room, by),
    };
    if !allowed {
        return Err(ApiError::Forbidden);
    }
    kick(state, &room, user).await
}

/// Makes a member a moderator or a member again: the owner (or an
/// administrator) only. The owner stays the owner.
pub async fn set_role(
    state: &AppState,
    by: UserId,
    room_id: &str,
    user: UserId,
    role: Role,
) -> Result<Arc<Room>, ApiError> {
    let room = managed_room(state, room_id, by)?;
    if !owns(state, &room, by) {
        return Err(ApiError::Forbidden);
    }
    match room.role(user) {
        None => return Err(ApiError::UserNotFound),
        Some(Role::Owner) => {
            return Err(ApiError::InvalidRequest(
                "The owner's role cannot change.".into(),
            ));
        }
        Some(_) => {}
    }
    let mut record = room.record.clone();
    record.moderators.retain(|u| *u != user);
    match role {
        Role::Moderator => record.moderators.push(user),
        Role::Member => {}
        Role::Owner => {
            return Err(ApiError::InvalidRequest(
                "A room has one owner, its creator; make someone a moderator instead.".into(),
            ));
        }
    }
    state.store.put_room(&record)?;
    state.store.flush_async().await?;
    state.rooms.replace_record(record);
    if let Some(who) = state.directory.get(user) {
        state.hub.send_room(
            room.record.id,
            &ServerFrame::RoleChanged {
                room: room.record.id,
                user: MemberView {
                    id: user,
                    username: &who.username,
                },
                role,
            },
        );
    }
    state
        .rooms
        .get(room.record.id)
        .ok_or(ApiError::RoomNotFound)
}

/// Bans someone (removing them if they are in), or lifts a ban: the
/// owner and moderators. The owner cannot be banned.
pub async fn set_banned(
    state: &AppState,
    by: UserId,
    room_id: &str,
    user: UserId,
    banned: bool,
) -> Result<(), ApiError> {
    let room = managed_room(state, room_id, by)?;
    if !moderates(state, &room, by) || (banned && room.record.created_by == user) {
        return Err(ApiError::Forbidden);
    }
    if state.directory.get(user).is_none() {
        return Err(ApiError::UserNotFound);
    }
    if room.record.banned.contains(&user) == banned {
        return Ok(());
    }
    let mut record = room.record.clone();
    if banned {
        record.banned.push(user);
        record.moderators.retain(|u| *u != user);
    } else {
        record.banned.retain(|u| *u != user);
    }
    state.store.put_room(&record)?;
    if banned && room.is_member(user) {
        state.store.remove_member(room.record.id, user)?;
    }
    state.store.flush_async().await?;
    state.rooms.replace_record(record);
    if banned && room.is_member(user) {
        if let Some(u) = state.store.user(user)? {
            settle_leave(state, room.record.id, &u, LeftReason::Banned);
        }
    }
    Ok(())
}

/// Changes a room's name or topic: its owner or a moderator. The members'
/// sockets get `room_updated`.
pub async fn update(
    state: &AppState,
    by: UserId,
    room_id: &str,
    name: Option<&str>,
    topic: Option<&str>,
) -> Result<Arc<Room>, ApiError> {
    let room = managed_room(state, room_id, by)?;
    if !moderates(state, &room, by) {
        return Err(ApiError::Forbidden);
    }
    let name = name.map(validate::room_name).transpose()?;
    let topic = topic.map(validate::topic).transpose()?;
    let mut record = room.record.clone();
    if let Some(topic) = topic {
        record.topic = topic;
    }
    let name = name.unwrap_or_else(|| record.name.clone());
    if state.store.rename_room(&record, &name)?.is_err() {
        return Err(ApiError::RoomNameTaken);
    }
    state.store.flush_async().await?;
    record.name = name;
    state.rooms.replace_record(record);
    let room = state
        .rooms
        .get(room.record.id)
        .ok_or(ApiError::RoomNotFound)?;
    let mut view = room.view(by, &state.directory).for_everyone();
    // Sent to members only, for whom it is joined.
    view.joined = true;
    state
        .hub
        .send_room(room.record.id, &ServerFrame::RoomUpdated { room: view });
    Ok(room)
}

/// Takes `user` out of `room` (durable first, then everyone is told).
async fn kick(state: &AppState, room: &Room, user: UserId) -> Result<(), ApiError> {
    state.store.remove_member(room.record.id, user)?;
    state.store.flush_async().await?;
    match state.store.user(user)? {
        Some(u) => settle_leave(state, room.record.id, &u, LeftReason::Removed),
        None => state.rooms.remove_member_in_memory(room.record.id, user),
    }
    Ok(())
}

/// A room as an administrator's list shows it.
pub struct RoomSummary {
    pub room: Arc<Room>,
    /// When its newest event (message, edit, reaction) was stored; `None`
    /// for a room without one.
    pub last_activity: Option<Millis>,
}

/// Every room the actor may know of (the operator: all; an administrator's
/// account: public ones and those it is in, as for [`delete`]), newest
/// activity first, with when each was last active.
pub fn list_all(state: &AppState, actor: Actor) -> Result<Vec<RoomSummary>, ApiError> {
    actor.require_admin(state)?;
    let log = state.store.log()?;
    let mut out = Vec::new();
    for room in state.rooms.all() {
        if let Actor::User(admin) = actor {
            if !room.visible_to(admin) {
                continue;
            }
        }
        let head = room.head();
        let last_activity = if head.0 == 0 {
            None
        } else {
            log.event(room.record.id, head)?.map(|e| e.at)
        };
        out.push(RoomSummary {
            room,
            last_activity,
        });
    }
    out.sort_by(|a, b| {
        b.last_activity
            .cmp(&a.last_activity)
            .then_with(|| a.room.record.name.cmp(&b.room.record.name))
    });
    Ok(out)
}

/// The room, if `viewer` may know it exists.
pub fn visible_room(
    state: &AppState,
    room_id: &str,
    viewer: UserId,
) -> Result<Arc<Room>, ApiError> {
    state
        .rooms
        .find_visible(room_id, viewer)
        .ok_or(ApiError::RoomNotFound)
}

/// Makes `user` a member: durable first, then their sockets subscribe
/// (`joined`) and the members are told (`member_joined`).
async fn enter(state: &AppState, user: UserId, room: &Arc<Room>) -> Result<(), ApiError> {
    state.store.add_member(room.record.id, user)?;
    state.store.flush_async().await?;
    if state.rooms.add_member_in_memory(room.record.id, user) {
        announce_join(state, user, room);
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
    Ok(())
}

/// Leaves a room (nothing happens if not a member).
pub async fn leave(state: &AppState, user: UserId, room_id: &str) -> Result<(), ApiError> {
    let room = visible_room(state, room_id, user)?;
    if !room.is_member(user) {
        return Ok(());
    }
    if room.record.visibility == Visibility::Direct {
        return Err(ApiError::DirectRoom);
    }
    state.store.remove_member(room.record.id, user)?;
    state.store.flush_async().await?;

    let record = state.store.user(user)?;
    match record {
        Some(u) => settle_leave(state, room.record.id, &u, LeftReason::Left),
        None => {
            state.rooms.remove_member_in_memory(room.record.id, user);
        }
    }
    Ok(())
}

/// After a leave is durable: the registry forgets the membership, the
/// user's sockets stop receiving the room (`left`), and the members who
/// stay are told (`member_left`).
pub(super) fn settle_leave(state: &AppState, room: RoomId, user: &UserRecord, reason: LeftReason) {
    state.rooms.remove_member_in_memory(room, user.id);
    for conn in state.hub.unsubscribe_user(user.id, room) {
        conn.send(&ServerFrame::Left { room, reason });
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
    // An administrator's account cannot see into private rooms it is not
    // in; the operator (the admin CLI) can delete any room.
    if let Actor::User(admin) = actor {
        if !room.visible_to(admin) {
            return Err(ApiError::RoomNotFound);
        }
    }
    let members = state.rooms.remove(room_id);
    for user in members {
        for conn in state.hub.unsubscribe_user(user, room_id) {
            conn.send(&ServerFrame::Left {
                room: room_id,
                reason: LeftReason::RoomDeleted,
            });
        }
    }
    state.store.delete_room(&room.record)?;
    state.store.flush_async().await?;
    state.search.room_deleted(room_id);
    // Only a public room was known to everyone; the members of a private
    // or direct one had `left`, and nobody else may learn it existed.
    if room.record.visibility == Visibility::Public {
        state
            .hub
            .send_all(&ServerFrame::RoomRemoved { room: room_id }, None);
    }
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
pub(super) fn announce_join(state: &AppState, user: UserId, room: &Room) {
    let conns = state.hub.subscribe_user(user, room.record.id);
    if conns.is_empty() {
        return;
    }
    let joined = ServerFrame::Joined {
        room: room.view(user, &state.directory),
    };
    for conn in conns {
        conn.announce(room.record.id, &joined);
    }
}
