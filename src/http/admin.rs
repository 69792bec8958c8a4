//! The admin API under `/api/v1/admin/` (and the public redemption of a
//! password-reset link): what the web UI's admin panel calls. Each handler
//! parses, calls one action as the signed-in user, and renders; the
//! actions refuse anyone who is not an administrator (`not_an_admin`).

use std::time::Duration;

use hyper::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::api::{form_decode, limit_param, Handled};
use super::request::{empty_response, json_response, Ctx};
use crate::actions::operator::{self, InviteInfo};
use crate::actions::rooms::{self, RoomSummary};
use crate::actions::{accounts, reset_links, Actor};
use crate::config::Registration;
use crate::error::ApiError;
use crate::ids::{Millis, UserId};
use crate::state::AppState;
use crate::storage::{UserRecord, Visibility};

/// An account as the admin panel shows it.
fn user_view(state: &AppState, u: &UserRecord) -> Result<serde_json::Value, ApiError> {
    Ok(json!({
        "id": u.id,
        "username": u.username,
        "email": u.email,
        "display_name": u.display_name,
        "created_at": u.created_at.to_rfc3339(),
        "admin": u.admin,
        "disabled": u.disabled,
        "bot": u.bot,
        "sessions": state.store.sessions_of(u.id)?.len(),
    }))
}

fn user_param(id: &str) -> UserId {
    // An id that does not parse is no account; the action still checks the
    // caller is an administrator first.
    id.parse().unwrap_or(UserId::NIL)
}

/// `GET /api/v1/admin/users?q=…&offset=N&limit=N`: accounts whose username
/// or email contains `q`, by username, a page at a time.
pub async fn users(ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let limit = limit_param(&ctx, 50, accounts::LIST_LIMIT_MAX)?;
    let offset = match ctx.query("offset") {
        None => 0,
        Some(s) => s.parse::<usize>().map_err(|_| {
            ApiError::InvalidRequest("offset must be a whole number (0 or more).".into())
        })?,
    };
    let q = match ctx.query("q") {
        None => String::new(),
        Some(q) => form_decode(&q).ok_or_else(|| {
            ApiError::InvalidRequest("q is not valid percent-encoded UTF-8.".into())
        })?,
    };
    let page = accounts::list(&ctx.state, Actor::User(me.user), &q, offset, limit)?;
    let users = page
        .users
        .iter()
        .map(|u| user_view(&ctx.state, u))
        .collect::<Result<Vec<_>, _>>()?;
    let next = offset + users.len();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "users": users,
            "total": page.total,
            "next_offset": (next < page.total).then_some(next),
        }),
    ))
}

/// `DELETE /api/v1/admin/users/{id}`: deletes an account (its messages stay).
pub async fn delete_user(ctx: Ctx, id: &str) -> Handled {
    let me = ctx.identity()?;
    accounts::delete(&ctx.state, Actor::User(me.user), user_param(id)).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

#[derive(Deserialize)]
struct AdminBody {
    admin: bool,
}

/// `PUT /api/v1/admin/users/{id}/admin` `{"admin": bool}`.
pub async fn set_admin(mut ctx: Ctx, id: &str) -> Handled {
    let me = ctx.identity()?;
    let body: AdminBody = ctx.json().await?;
    let u =
        accounts::set_admin(&ctx.state, Actor::User(me.user), user_param(id), body.admin).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"user": user_view(&ctx.state, &u)?}),
    ))
}

/// `DELETE /api/v1/admin/users/{id}/sessions`: ends every session.
pub async fn revoke_sessions(ctx: Ctx, id: &str) -> Handled {
    let me = ctx.identity()?;
    let n = accounts::revoke_sessions(&ctx.state, Actor::User(me.user), user_param(id)).await?;
    Ok(json_response(StatusCode::OK, &json!({"revoked": n})))
}

#[derive(Deserialize, Default)]
struct ResetLinkBody {
    #[serde(default)]
    valid_for_secs: Option<u64>,
}

/// `POST /api/v1/admin/users/{id}/reset-link`: a one-time link to set a
/// new password; the code is shown this once.
pub async fn reset_link(mut ctx: Ctx, id: &str) -> Handled {
    let me = ctx.identity()?;
    let body: ResetLinkBody = ctx.json_or_default().await?;
    let link = reset_links::create(
        &ctx.state,
        Actor::User(me.user),
        user_param(id),
        body.valid_for_secs.map(Duration::from_secs),
    )
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "user": link.user.id,
            "code": link.code,
            "path": link.path(),
            "expires_at": link.expires_at.to_rfc3339(),
        }),
    ))
}

#[derive(Deserialize)]
struct RedeemBody {
    code: String,
    password: String,
}

/// `POST /api/v1/password-reset` `{"code", "password"}`: no session needed;
/// the code is the proof.
pub async fn redeem_reset_link(mut ctx: Ctx) -> Handled {
    ctx.check_origin()?;
    let body: RedeemBody = ctx.json().await?;
    reset_links::redeem(&ctx.state, &body.code, body.password).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// `GET /api/v1/admin/invites`.
pub async fn invites(ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let invites: Vec<InviteInfo> = operator::invite_list(&ctx.state, Actor::User(me.user))?;
    Ok(json_response(StatusCode::OK, &json!({"invites": invites})))
}

#[derive(Deserialize)]
struct InviteBody {
    uses: u32,
    #[serde(default)]
    valid_for_secs: Option<u64>,
    #[serde(default)]
    note: String,
}

/// `POST /api/v1/admin/invites` `{"uses", "valid_for_secs"?, "note"?}`: the
/// code is shown this once.
pub async fn create_invite(mut ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let body: InviteBody = ctx.json().await?;
    let (code, invite) = operator::invite_create(
        &ctx.state,
        Actor::User(me.user),
        body.uses,
        body.valid_for_secs.map(Duration::from_secs),
        body.note,
    )
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "code": code,
            "path": format!("/?invite={code}"),
            "uses_left": invite.uses_left,
            "expires_at": invite.expires_at.map(Millis::to_rfc3339),
        }),
    ))
}

/// `DELETE /api/v1/admin/invites/{id}`: `id` as the list shows it (or its
/// first 6 or more characters).
pub async fn revoke_invite(ctx: Ctx, id: &str) -> Handled {
    let me = ctx.identity()?;
    operator::invite_revoke(&ctx.state, Actor::User(me.user), id).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// `GET /api/v1/admin/registration`.
pub async fn registration(ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let setting = operator::registration_for(&ctx.state, Actor::User(me.user))?;
    Ok(json_response(StatusCode::OK, &setting))
}

#[derive(Deserialize)]
struct RegistrationBody {
    /// `null` goes back to the config's value; missing is an error (so a
    /// mistyped key cannot reset the mode).
    #[serde(default, deserialize_with = "present")]
    mode: Option<Option<String>>,
}

/// A field that is present, even as `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `PUT /api/v1/admin/registration` `{"mode": "open"|"invite"|"closed"|null}`.
pub async fn set_registration(mut ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let body: RegistrationBody = ctx.json().await?;
    let mode = body
        .mode
        .ok_or_else(|| {
            ApiError::InvalidRequest("Give mode: \"open\", \"invite\", \"closed\" or null.".into())
        })?
        .map(|m| {
            Registration::parse(&m).ok_or_else(|| {
                ApiError::InvalidRequest(format!(
                    "mode {m:?} is not \"open\", \"invite\", \"closed\" or null."
                ))
            })
        })
        .transpose()?;
    let setting = operator::set_registration(&ctx.state, Actor::User(me.user), mode).await?;
    Ok(json_response(StatusCode::OK, &setting))
}

/// `GET /api/v1/admin/rooms`: rooms with member counts and last activity.
pub async fn rooms(ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let list = rooms::list_all(&ctx.state, Actor::User(me.user))?;
    let rooms: Vec<_> = list
        .iter()
        .map(
            |RoomSummary {
                 room,
                 last_activity,
             }| {
                let r = &room.record;
                json!({
                    "id": r.id,
                    "name": r.name,
                    "topic": r.topic,
                    "visibility": match r.visibility {
                        Visibility::Public => "public",
                        Visibility::Private => "private",
                        Visibility::Direct => "direct",
                    },
                    "created_at": r.created_at.to_rfc3339(),
                    "members": room.member_count(),
                    "messages": room.head().0,
                    "last_activity": last_activity.map(Millis::to_rfc3339),
                })
            },
        )
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"rooms": rooms})))
}

/// `GET /api/v1/admin/stats`: the server's live figures.
pub async fn stats(ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let live = operator::live(&ctx.state, Actor::User(me.user))?;
    Ok(json_response(StatusCode::OK, &live))
}
