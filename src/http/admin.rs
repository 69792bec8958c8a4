//! Endpoints for administrators (moderation, the same operations as the
//! admin CLI, from [`crate::admin`]) and for operators (`/metrics`).

use hyper::{Response, StatusCode};

use super::request::{empty_response, Body, Ctx};
use crate::admin::{self, AdminError, Request};
use crate::error::ApiError;

type Handled = Result<Response<Body>, ApiError>;

/// `DELETE /api/v1/rooms/{id}`: an administrator removes a room.
pub async fn delete_room(ctx: Ctx, room: &str) -> Handled {
    require_admin(&ctx)?;
    admin::room_delete(&ctx.state, room)
        .await
        .map_err(api_error)?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// `DELETE /api/v1/rooms/{id}/messages/{seq}`: an administrator removes
/// a message; it stays in the log as a tombstone.
pub async fn delete_message(ctx: Ctx, room: &str, seq: &str) -> Handled {
    require_admin(&ctx)?;
    let seq = seq.parse::<u64>().map_err(|_| ApiError::MessageNotFound)?;
    admin::message_delete(&ctx.state, room, seq)
        .await
        .map_err(api_error)?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// `POST /api/v1/users/{id}/disable` (or `/enable`): an administrator
/// disables an account; its sessions and sockets end at once.
pub async fn disable_user(ctx: Ctx, user: &str, disable: bool) -> Handled {
    let me = require_admin(&ctx)?;
    if user.parse::<crate::ids::UserId>().ok() == Some(me) {
        return Err(ApiError::InvalidRequest(
            "Administrators cannot disable themselves.".into(),
        ));
    }
    let user = user.to_string();
    let request = if disable {
        Request::UserDisable { user }
    } else {
        Request::UserEnable { user }
    };
    admin::execute(&ctx.state, request)
        .await
        .map_err(api_error)?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

fn require_admin(ctx: &Ctx) -> Result<crate::ids::UserId, ApiError> {
    let id = ctx.identity()?;
    match ctx.state.directory.get(id.user) {
        Some(u) if u.admin => Ok(id.user),
        _ => Err(ApiError::NotAnAdmin),
    }
}

fn api_error(e: AdminError) -> ApiError {
    match e {
        AdminError::NoSuchRoom(_) => ApiError::RoomNotFound,
        AdminError::NoSuchMessage { .. } => ApiError::MessageNotFound,
        AdminError::NoSuchUser(_) => ApiError::NotFound,
        AdminError::Storage(e) => e.into(),
        AdminError::Invalid(m) => ApiError::InvalidRequest(m),
        AdminError::Backup(_) | AdminError::Interrupted => ApiError::Internal,
    }
}
