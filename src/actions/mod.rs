//! Every operation that changes state, each written once: its checks, its
//! storage writes, its frames to other sockets, in one order.
//!
//! The transports are thin adapters over this layer: [`crate::http`] parses
//! a request and renders the result as JSON, [`crate::ws`] does the same
//! for client frames, and [`crate::admin`] for the operator's socket and
//! CLI. So an operation behaves the same however it is reached: same
//! checks in the same order, same error codes, same frames to everyone
//! else.
//!
//! Each action follows the same shape:
//! 1. **check**: input rules, existence, membership, permissions, limits;
//! 2. **write**: the storage changes, then one flush, so nothing is
//!    announced that a crash could take back;
//! 3. **settle**: the in-memory registries, then frames to other sockets
//!    (and sockets closed), last.
//!
//! Files by domain: [`accounts`] (sign-up, login, passwords, disable,
//! delete, profile), [`avatars`] (set, remove, serve), [`bots`] (bot
//! accounts and webhooks), [`files`] (uploads, attachments, downloads,
//! the sweep), [`rooms`] (create, join, leave, rename, delete),
//! [`messages`] (send, history, removal), [`search`] (message search),
//! [`reads`] (read cursors), [`push`] (Web Push subscriptions),
//! [`reset_links`] (one-time links to set a new password), [`exchange`]
//! (export and import) and [`operator`] (invites, the registration mode,
//! stats and live figures, verify, backup: the operator's tools).

pub mod accounts;
pub mod avatars;
pub mod bots;
pub mod exchange;
pub mod files;
pub mod messages;
pub mod operator;
pub mod presence;
pub mod push;
pub mod reads;
pub mod reset_links;
pub mod rooms;
pub mod search;

use std::sync::Arc;

use crate::error::ApiError;
use crate::ids::UserId;
use crate::rooms::Room;
use crate::state::AppState;

/// Who asks for an operation: a signed-in user, or the operator at the
/// server's own admin socket (who may do anything an administrator may).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    User(UserId),
    Operator,
}

impl Actor {
    /// Administrator-only operations: the operator, or a user whose
    /// account is an administrator's.
    fn require_admin(self, state: &AppState) -> Result<(), ApiError> {
        match self {
            Actor::Operator => Ok(()),
            Actor::User(id) => match state.directory.get(id) {
                Some(u) if u.admin && !u.deleted && !u.disabled => Ok(()),
                _ => Err(ApiError::NotAnAdmin),
            },
        }
    }
}

/// The room, if it exists and `user` is in it. A room `user` may not know
/// of (private, direct) is not found, exactly like one that does not exist.
pub fn member_room(state: &AppState, room_id: &str, user: UserId) -> Result<Arc<Room>, ApiError> {
    let room = state
        .rooms
        .find_visible(room_id, user)
        .ok_or(ApiError::RoomNotFound)?;
    if !room.is_member(user) {
        return Err(ApiError::NotAMember);
    }
    Ok(room)
}
