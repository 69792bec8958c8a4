//! The JSON API handlers: accounts, rooms, memberships and messages.

use std::sync::Arc;

use hyper::header;
use hyper::{Response, StatusCode};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::oneshot;

use super::request::{empty_response, json_response, session_cookie, Body, Ctx};
use crate::auth::invites;
use crate::commit::{Append, Reply};
use crate::error::ApiError;
use crate::ids::{Millis, RoomId, Seq, UserId};
use crate::protocol::{MessageView, ServerFrame, UserView};
use crate::rooms::{author_view, Room};
use crate::state::AppState;
use crate::storage::records::EventRecord;
use crate::storage::{RoomRecord, Taken, UserRecord};
use crate::validate;
use crate::wire::CloseReason;

type Handled = Result<Response<Body>, ApiError>;

#[derive(Deserialize)]
struct SignupBody {
    username: String,
    email: String,
    password: String,
    /// Needed when `registration = "invite"`.
    #[serde(default)]
    invite: Option<String>,
}

pub async fn signup(mut ctx: Ctx) -> Handled {
    ctx.state.limits.signup.check(&ctx.ip())?;
    let body: SignupBody = ctx.json().await?;
    validate::username(&body.username)?;
    validate::email(&body.email)?;
    validate::password(&body.password)?;
    let state = &ctx.state;
    let admission = invites::admit(
        &state.store,
        state.config.registration,
        body.invite.as_deref(),
    )?;
    let password_hash = match state.hasher.hash(body.password).await {
        Ok(h) => h,
        Err(e) => {
            invites::undo(&state.store, admission);
            return Err(e);
        }
    };
    let user = UserRecord {
        id: UserId::generate(),
        username: body.username,
        email: body.email,
        password_hash,
        created_at: Millis::now(),
        // The first account administers the server.
        admin: state.directory.count() == 0,
        disabled: false,
        deleted: false,
    };
    let failed = match state.store.create_user(&user) {
        Ok(Ok(())) => None,
        Ok(Err(Taken::Username)) => Some(ApiError::UsernameTaken),
        Ok(Err(Taken::Email)) => Some(ApiError::EmailTaken),
        Err(e) => Some(e.into()),
    };
    if let Some(e) = failed {
        invites::undo(&state.store, admission);
        return Err(e);
    }
    state.store.flush_async().await?;
    state.directory.put(&user);
    tracing::info!(user = %user.id, "Account created.");
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"user": UserView::of(&user)}),
    ))
}

#[derive(Deserialize)]
struct LoginBody {
    login: String,
    password: String,
}

pub async fn login(mut ctx: Ctx) -> Handled {
    ctx.state.limits.login_ip.check(&ctx.ip())?;
    let body: LoginBody = ctx.json().await?;
    let state = ctx.state.clone();
    if body.login.len() > 320 || body.password.chars().count() > validate::PASSWORD_MAX {
        return Err(ApiError::InvalidCredentials);
    }
    let account_key = body.login.to_lowercase();
    let ip = ctx.ip();
    state.limits.logins.check(&account_key, ip)?;
    let user = state
        .store
        .user_by_login(&body.login)?
        .filter(|u| !u.deleted);
    let ok = state
        .hasher
        .verify(
            user.as_ref().map(|u| u.password_hash.clone()),
            body.password,
        )
        .await?;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => {
            state.limits.logins.failed(&account_key, ip);
            return Err(ApiError::InvalidCredentials);
        }
    };
    state.limits.logins.succeeded(&account_key, ip);
    if user.disabled {
        return Err(ApiError::AccountDisabled);
    }
    let token = state.sessions.create(user.id).await?;
    let mut resp = json_response(
        StatusCode::OK,
        &json!({"token": token.0, "user": UserView::of(&user)}),
    );
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(
            Some(&token.0),
            state.tls,
            state.config.sessions.absolute.as_secs(),
        ),
    );
    tracing::info!(user = %user.id, "Logged in.");
    Ok(resp)
}

pub async fn logout(ctx: Ctx) -> Handled {
    let id = ctx.identity()?;
    ctx.state.sessions.revoke(&id.session)?;
    ctx.state.store.flush_async().await?;
    ctx.state
        .hub
        .close_user(id.user, Some(&id.session), CloseReason::Revoked);
    let mut resp = empty_response(StatusCode::NO_CONTENT);
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(None, ctx.state.tls, 0));
    Ok(resp)
}

pub async fn me(ctx: Ctx) -> Handled {
    let id = ctx.identity()?;
    let user = ctx
        .state
        .store
        .user(id.user)?
        .ok_or(ApiError::Unauthenticated)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"user": UserView::of(&user)}),
    ))
}

#[derive(Deserialize)]
struct ChangePasswordBody {
    current_password: String,
    new_password: String,
}

/// Changes the caller's password; every other session ends at once (this
/// one stays, so the person who changed it is not logged out).
pub async fn change_password(mut ctx: Ctx) -> Handled {
    let id = ctx.identity()?;
    let body: ChangePasswordBody = ctx.json().await?;
    validate::password(&body.new_password)?;
    let state = ctx.state.clone();
    let mut user = state
        .store
        .user(id.user)?
        .ok_or(ApiError::Unauthenticated)?;
    if !state
        .hasher
        .verify(Some(user.password_hash.clone()), body.current_password)
        .await?
    {
        return Err(ApiError::InvalidCredentials);
    }
    user.password_hash = state.hasher.hash(body.new_password).await?;
    state.store.put_user(&user)?;
    state.sessions.revoke_all(user.id, Some(&id.session))?;
    state.store.flush_async().await?;
    for conn in state.hub.connections_of(user.id) {
        if conn.session != id.session {
            conn.close(CloseReason::Revoked);
        }
    }
    tracing::info!(user = %user.id, "Password changed; other sessions revoked.");
    Ok(empty_response(StatusCode::NO_CONTENT))
}

#[derive(Deserialize)]
struct DeleteMeBody {
    password: String,
}

/// Removes the caller's account: sessions revoked, sockets closed, rooms
/// left; messages stay, shown as from a deleted user.
pub async fn delete_me(mut ctx: Ctx) -> Handled {
    let id = ctx.identity()?;
    let body: DeleteMeBody = ctx.json().await?;
    let state = ctx.state.clone();
    let user = state
        .store
        .user(id.user)?
        .ok_or(ApiError::Unauthenticated)?;
    if !state
        .hasher
        .verify(Some(user.password_hash.clone()), body.password)
        .await?
    {
        return Err(ApiError::InvalidCredentials);
    }
    state.store.delete_user(&user)?;
    for room in state.rooms.of_user(user.id) {
        state.store.remove_member(room, user.id)?;
        state.rooms.remove_member_in_memory(room, user.id);
    }
    state.sessions.revoke_all(user.id, None)?;
    state.store.flush_async().await?;
    if let Some(tomb) = state.store.user(user.id)? {
        state.directory.put(&tomb);
    }
    state.hub.close_user(user.id, None, CloseReason::Revoked);
    tracing::info!(user = %user.id, "Account deleted.");
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn list_rooms(ctx: Ctx) -> Handled {
    let id = ctx.identity()?;
    let rooms = ctx.state.rooms.all();
    let views: Vec<_> = rooms.iter().map(|r| r.view(id.user)).collect();
    Ok(json_response(StatusCode::OK, &json!({"rooms": views})))
}

#[derive(Deserialize)]
struct CreateRoomBody {
    name: String,
    #[serde(default)]
    topic: Option<String>,
}

pub async fn create_room(mut ctx: Ctx) -> Handled {
    let id = ctx.identity()?;
    let body: CreateRoomBody = ctx.json().await?;
    let name = validate::room_name(&body.name)?;
    let topic = validate::topic(body.topic.as_deref().unwrap_or(""))?;
    let state = ctx.state.clone();
    let record = RoomRecord {
        id: RoomId::generate(),
        name,
        topic,
        created_by: id.user,
        created_at: Millis::now(),
    };
    if state.store.create_room(&record, id.user)?.is_err() {
        return Err(ApiError::RoomNameTaken);
    }
    state.store.flush_async().await?;
    let room = state.rooms.insert(record, id.user);
    announce_join(&state, id.user, &room);
    tracing::info!(room = %room.record.id, user = %id.user, "Room created.");
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"room": room.view(id.user)}),
    ))
}

pub async fn get_room(ctx: Ctx, room_id: &str) -> Handled {
    let id = ctx.identity()?;
    let room = ctx
        .state
        .rooms
        .find(room_id)
        .ok_or(ApiError::RoomNotFound)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"room": room.view(id.user)}),
    ))
}

pub async fn join_room(ctx: Ctx, room_id: &str) -> Handled {
    let id = ctx.identity()?;
    let state = ctx.state.clone();
    let room = state.rooms.find(room_id).ok_or(ApiError::RoomNotFound)?;
    if !room.is_member(id.user) {
        state.store.add_member(room.record.id, id.user)?;
        state.store.flush_async().await?;
        if state.rooms.add_member_in_memory(room.record.id, id.user) {
            announce_join(&state, id.user, &room);
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"room": room.view(id.user)}),
    ))
}

pub async fn leave_room(ctx: Ctx, room_id: &str) -> Handled {
    let id = ctx.identity()?;
    let state = ctx.state.clone();
    let room = state.rooms.find(room_id).ok_or(ApiError::RoomNotFound)?;
    if room.is_member(id.user) {
        state.store.remove_member(room.record.id, id.user)?;
        state.store.flush_async().await?;
        state.rooms.remove_member_in_memory(room.record.id, id.user);
        for conn in state.hub.unsubscribe_user(id.user, room.record.id) {
            conn.send(&ServerFrame::Left {
                room: room.record.id,
            });
        }
    }
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// Subscribes the user's live connections to a room they just joined and
/// tells them, from every device. Subscribing before reading the head means
/// every message after `last_seq` in the `joined` frame arrives live.
fn announce_join(state: &AppState, user: UserId, room: &Room) {
    let conns = state.hub.subscribe_user(user, room.record.id);
    for conn in conns {
        conn.send(&ServerFrame::Joined {
            room: room.view(user),
        });
    }
}

pub async fn members(ctx: Ctx, room_id: &str) -> Handled {
    let id = ctx.identity()?;
    let room = member_room(&ctx.state, room_id, id.user)?;
    let mut members: Vec<_> = room
        .members()
        .into_iter()
        .filter_map(|u| {
            let s = ctx.state.directory.get(u)?;
            (!s.deleted).then(|| json!({"id": u, "username": s.username}))
        })
        .collect();
    members.sort_by(|a, b| a["username"].as_str().cmp(&b["username"].as_str()));
    Ok(json_response(StatusCode::OK, &json!({"members": members})))
}

/// Default and largest page of history.
const PAGE_DEFAULT: usize = 50;
const PAGE_MAX: usize = 200;

pub async fn list_messages(ctx: Ctx, room_id: &str) -> Handled {
    let id = ctx.identity()?;
    let state = &ctx.state;
    let room = member_room(state, room_id, id.user)?;
    let limit = match ctx.query("limit") {
        None => PAGE_DEFAULT,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=PAGE_MAX).contains(&n) => n,
            _ => {
                return Err(ApiError::InvalidRequest(format!(
                    "limit must be a whole number from 1 to {PAGE_MAX}."
                )))
            }
        },
    };
    let seq_param = |key: &str| -> Result<Option<u64>, ApiError> {
        ctx.query(key)
            .map(|s| {
                s.parse::<u64>().map_err(|_| {
                    ApiError::InvalidRequest(format!(
                        "{key} must be a message seq (a whole number)."
                    ))
                })
            })
            .transpose()
    };
    let (before, after) = (seq_param("before")?, seq_param("after")?);
    let head = room.head();
    let log = state.store.log()?;
    let rid = room.record.id;
    let events = match (before, after) {
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidRequest(
                "Give before or after, not both.".into(),
            ))
        }
        (Some(b), None) => {
            log.range_newest(rid, Seq(1), Seq(b.saturating_sub(1).min(head.0)), limit)?
        }
        (None, Some(a)) => log.range(rid, Seq(a.saturating_add(1)), head, limit)?,
        (None, None) => log.range_newest(rid, Seq(1), head, limit)?,
    };
    // Serialized straight from views of the stored events: going through
    // serde_json::Value cost more than reading the page from storage.
    let authors: Vec<_> = events
        .iter()
        .map(|(_, e)| {
            let crate::storage::records::EventKind::Message { author, .. } = &e.kind;
            (*author, state.directory.get(*author))
        })
        .collect();
    let messages: Vec<MessageView<'_>> = events
        .iter()
        .zip(&authors)
        .map(|((seq, e), (id, summary))| {
            MessageView::of(rid, *seq, e, author_view(*id, summary.as_deref()))
        })
        .collect();
    #[derive(serde::Serialize)]
    struct Page<'a> {
        messages: Vec<MessageView<'a>>,
    }
    Ok(json_response(StatusCode::OK, &Page { messages }))
}

#[derive(Deserialize)]
struct PostMessageBody {
    body: String,
    #[serde(default)]
    client_id: Option<String>,
}

pub async fn post_message(mut ctx: Ctx, room_id: &str) -> Handled {
    let id = ctx.identity()?;
    let state = ctx.state.clone();
    let room = member_room(&state, room_id, id.user)?;
    let body: PostMessageBody = ctx.json().await?;
    validate::body(&body.body)?;
    if let Some(c) = &body.client_id {
        validate::client_id(c)?;
        if let Some((seq, event)) = room.durable_duplicate(&state.store, id.user, c)? {
            let message = message_json(&state, room.record.id, seq, &event);
            return Ok(json_response(StatusCode::OK, &json!({"message": message})));
        }
    }
    state.limits.send.check(&id.user)?;
    let (tx, rx) = oneshot::channel();
    state
        .committer
        .submit(Append {
            room: room.record.id,
            author: id.user,
            body: body.body,
            client_id: body.client_id,
            reply: Reply::Request(tx),
        })
        .await?;
    let committed = rx.await.map_err(|_| ApiError::ShuttingDown)??;
    let status = if committed.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let message = message_json(&state, committed.room, committed.seq, &committed.event);
    Ok(json_response(status, &json!({"message": message})))
}

/// The room, if it exists and the user is in it.
fn member_room(state: &AppState, room_id: &str, user: UserId) -> Result<Arc<Room>, ApiError> {
    let room = state.rooms.find(room_id).ok_or(ApiError::RoomNotFound)?;
    if !room.is_member(user) {
        return Err(ApiError::NotAMember);
    }
    Ok(room)
}

fn message_json(
    state: &AppState,
    room: RoomId,
    seq: Seq,
    event: &EventRecord,
) -> serde_json::Value {
    let crate::storage::records::EventKind::Message { author, .. } = &event.kind;
    let summary = state.directory.get(*author);
    let view = MessageView::of(room, seq, event, author_view(*author, summary.as_deref()));
    serde_json::to_value(view).expect("message views always serialize")
}
