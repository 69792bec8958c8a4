//! The JSON API: each handler parses its request, calls its action in
//! [`crate::actions`], and renders the result. No handler decides anything
//! an action does.

use hyper::header;
use hyper::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::request::{empty_response, json_response, session_cookie, Body, Ctx};
use crate::actions::accounts::{self, NewAccount};
use crate::actions::messages::{self, Page, Sent, Via, PAGE_DEFAULT, PAGE_MAX};
use crate::actions::{member_room, rooms, Actor};
use crate::directory::author_view;
use crate::error::ApiError;
use crate::ids::{RoomId, Seq, UserId};
use crate::protocol::{MessageView, UserView};
use crate::state::AppState;
use crate::storage::records::{EventKind, EventRecord};

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
    let body: SignupBody = ctx.json().await?;
    let account = NewAccount {
        username: body.username,
        email: body.email,
        password: body.password,
        admin: false,
    };
    let user = accounts::sign_up(&ctx.state, ctx.ip(), account, body.invite.as_deref()).await?;
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
    let body: LoginBody = ctx.json().await?;
    let state = &ctx.state;
    let (token, user) = accounts::log_in(state, ctx.ip(), &body.login, body.password).await?;
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
    Ok(resp)
}

pub async fn logout(ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    accounts::log_out(&ctx.state, &me).await?;
    let mut resp = empty_response(StatusCode::NO_CONTENT);
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(None, ctx.state.tls, 0));
    Ok(resp)
}

pub async fn me(ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let user = ctx
        .state
        .store
        .user(me.user)?
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

pub async fn change_password(mut ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let body: ChangePasswordBody = ctx.json().await?;
    accounts::change_password(&ctx.state, &me, body.current_password, body.new_password).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

#[derive(Deserialize)]
struct DeleteMeBody {
    password: String,
}

pub async fn delete_me(mut ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let body: DeleteMeBody = ctx.json().await?;
    accounts::delete_own(&ctx.state, &me, body.password).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn list_rooms(ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let rooms = ctx.state.rooms.all();
    let views: Vec<_> = rooms.iter().map(|r| r.view(me.user)).collect();
    Ok(json_response(StatusCode::OK, &json!({"rooms": views})))
}

#[derive(Deserialize)]
struct CreateRoomBody {
    name: String,
    #[serde(default)]
    topic: Option<String>,
}

pub async fn create_room(mut ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let body: CreateRoomBody = ctx.json().await?;
    let room = rooms::create(&ctx.state, me.user, &body.name, body.topic.as_deref()).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"room": room.view(me.user)}),
    ))
}

pub async fn get_room(ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    let room = ctx
        .state
        .rooms
        .find(room_id)
        .ok_or(ApiError::RoomNotFound)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"room": room.view(me.user)}),
    ))
}

pub async fn join_room(ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    let room = rooms::join(&ctx.state, me.user, room_id).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"room": room.view(me.user)}),
    ))
}

pub async fn leave_room(ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    rooms::leave(&ctx.state, me.user, room_id).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn members(ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    let room = member_room(&ctx.state, room_id, me.user)?;
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

pub async fn list_messages(ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    let state = &ctx.state;
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
    let seq_param = |key: &str| -> Result<Option<Seq>, ApiError> {
        ctx.query(key)
            .map(|s| {
                s.parse::<u64>().map(Seq).map_err(|_| {
                    ApiError::InvalidRequest(format!(
                        "{key} must be a message seq (a whole number)."
                    ))
                })
            })
            .transpose()
    };
    let page = match (seq_param("before")?, seq_param("after")?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidRequest(
                "Give before or after, not both.".into(),
            ))
        }
        (Some(b), None) => Page::Before(b, limit),
        (None, Some(a)) => Page::After(a, limit),
        (None, None) => Page::Newest(limit),
    };
    let (rid, events) = messages::history(state, me.user, room_id, page)?;
    // Serialized straight from views of the stored events: going through
    // serde_json::Value cost more than reading the page from storage.
    let authors: Vec<_> = events
        .iter()
        .map(|(_, e)| {
            let author = author_of(e);
            (author, state.directory.get(author))
        })
        .collect();
    let messages: Vec<MessageView<'_>> = events
        .iter()
        .zip(&authors)
        .map(|((seq, e), (id, summary))| {
            MessageView::of(rid, *seq, e, author_view(*id, summary.as_deref()))
        })
        .collect();
    #[derive(Serialize)]
    struct MessagesPage<'a> {
        messages: Vec<MessageView<'a>>,
    }
    Ok(json_response(StatusCode::OK, &MessagesPage { messages }))
}

#[derive(Deserialize)]
struct PostMessageBody {
    body: String,
    #[serde(default)]
    client_id: Option<String>,
}

pub async fn post_message(mut ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    // Membership first: someone outside the room learns nothing more,
    // whatever they post.
    member_room(&ctx.state, room_id, me.user)?;
    let body: PostMessageBody = ctx.json().await?;
    let send = messages::Send {
        room: room_id,
        body: body.body,
        client_id: body.client_id,
    };
    let Sent::Stored(c) = messages::send(&ctx.state, me.user, send, Via::Wait).await? else {
        return Err(ApiError::Internal);
    };
    let status = if c.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let message = message_json(&ctx.state, c.room, c.seq, &c.event);
    Ok(json_response(status, &json!({"message": message})))
}

/// `DELETE /api/v1/rooms/{id}`: an administrator removes a room.
pub async fn delete_room(ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    // An id that does not parse is no room; the action still checks the
    // caller is an administrator first.
    let room = room_id.parse().unwrap_or(RoomId::NIL);
    rooms::delete(&ctx.state, Actor::User(me.user), room).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// `DELETE /api/v1/rooms/{id}/messages/{seq}`: an administrator removes a
/// message; it stays in the log as a tombstone.
pub async fn delete_message(ctx: Ctx, room_id: &str, seq: &str) -> Handled {
    let me = ctx.identity()?;
    let room = room_id.parse().unwrap_or(RoomId::NIL);
    let seq = seq.parse::<u64>().unwrap_or(0);
    messages::remove(&ctx.state, Actor::User(me.user), room, Seq(seq)).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// `POST /api/v1/users/{id}/disable` (or `/enable`): an administrator
/// disables an account; its sessions and sockets end at once.
pub async fn set_disabled(ctx: Ctx, user_id: &str, disabled: bool) -> Handled {
    let me = ctx.identity()?;
    let user = user_id.parse().unwrap_or(UserId::NIL);
    accounts::set_disabled(&ctx.state, Actor::User(me.user), user, disabled).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

fn author_of(event: &EventRecord) -> UserId {
    let EventKind::Message { author, .. } = &event.kind;
    *author
}

fn message_json(
    state: &AppState,
    room: RoomId,
    seq: Seq,
    event: &EventRecord,
) -> serde_json::Value {
    let author = author_of(event);
    let summary = state.directory.get(author);
    let view = MessageView::of(room, seq, event, author_view(author, summary.as_deref()));
    serde_json::to_value(view).expect("message views always serialize")
}
