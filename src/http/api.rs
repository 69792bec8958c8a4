//! The JSON API: each handler parses its request, calls its action in
//! [`crate::actions`], and renders the result. No handler decides anything
//! an action does.

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::request::{
    empty_response, full, json_bytes_response, json_response, session_cookie, Body, Ctx,
};
use crate::actions::accounts::{self, NewAccount};
use crate::actions::messages::{
    self, Edit, EditKind, Page, Sent, Via, EVENTS_MAX, PAGE_DEFAULT, PAGE_MAX,
};
use crate::actions::{avatars, member_room, reads, rooms, search, Actor};
use crate::error::ApiError;
use crate::ids::{RoomId, Seq, UserId};
use crate::images;
use crate::protocol::{AvatarUrl, EventView, MessageView, Role, UserView};
use crate::rooms::Room;
use crate::search::Order;
use crate::state::AppState;
use crate::storage::Visibility;
use crate::views::{self, Authors};

pub(super) type Handled = Result<Response<Body>, ApiError>;

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
    let user_agent = ctx
        .parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (token, user) =
        accounts::log_in(state, ctx.ip(), &user_agent, &body.login, body.password).await?;
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

#[derive(Deserialize, Default)]
struct LogoutBody {
    /// End every session of the account, not only this one.
    #[serde(default)]
    all: bool,
}

pub async fn logout(mut ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let body: LogoutBody = ctx.json_or_default().await?;
    accounts::log_out(&ctx.state, &me, body.all).await?;
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

/// `GET /api/v1/me/sessions`.
pub async fn list_sessions(ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let sessions: Vec<_> = accounts::sessions(&ctx.state, &me)?
        .into_iter()
        .map(|s| {
            json!({
                "id": s.id,
                "created_at": s.created_at.to_rfc3339(),
                "last_used_at": s.last_used_at.to_rfc3339(),
                "user_agent": s.user_agent,
                "ip": s.ip,
                "current": s.current,
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"sessions": sessions}),
    ))
}

/// `DELETE /api/v1/me/sessions/{id}`.
pub async fn end_session(ctx: Ctx, id: &str) -> Handled {
    let me = ctx.identity()?;
    accounts::end_session(&ctx.state, &me, id).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

#[derive(Deserialize)]
struct ProfileBody {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    about: Option<String>,
}

/// `PATCH /api/v1/me`: display name and about line.
pub async fn update_me(mut ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let body: ProfileBody = ctx.json().await?;
    let user = accounts::update_profile(&ctx.state, &me, body.display_name, body.about).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"user": UserView::of(&user)}),
    ))
}

/// `PUT /api/v1/me/avatar`: the body is the picture itself (PNG, JPEG or
/// WebP, at most 2 MiB); answers the caller's user object.
pub async fn put_avatar(mut ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let upload = avatars::begin(&ctx.state, &me)?;
    let picture = ctx.body_within(images::MAX_UPLOAD_BYTES).await?;
    let user = avatars::set(&ctx.state, upload, picture).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"user": UserView::of(&user)}),
    ))
}

/// `DELETE /api/v1/me/avatar`, or `/api/v1/users/{id}/avatar` for an
/// administrator removing someone's.
pub async fn delete_avatar(ctx: Ctx, user_id: Option<&str>) -> Handled {
    let me = ctx.identity()?;
    let user = match user_id {
        None => me.user,
        Some(id) => id.parse().unwrap_or(UserId::NIL),
    };
    avatars::remove(&ctx.state, Actor::User(me.user), user).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// `GET /api/v1/users/{id}/avatar?v=VERSION`: the PNG, for anyone signed
/// in (a cookie will do, so it works in `<img>`).
pub async fn get_avatar(ctx: Ctx, user_id: &str) -> Handled {
    ctx.identity()?;
    let user = user_id.parse().unwrap_or(UserId::NIL);
    let (version, png) = avatars::image(&ctx.state, user)?;
    let etag = format!("\"{version}\"");
    let unchanged = ctx
        .parts
        .headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*");
    let mut resp = if unchanged {
        empty_response(StatusCode::NOT_MODIFIED)
    } else {
        let mut resp = Response::new(full(Bytes::from(png)));
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
        resp
    };
    // The URLs the API hands out name the version, and a version is one
    // picture for ever; any other URL must be checked again each time.
    let cache = if ctx.query("v") == Some(version.to_string()) {
        "private, max-age=31536000, immutable"
    } else {
        "private, no-cache"
    };
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).map_err(|_| ApiError::Internal)?,
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}

#[derive(Deserialize)]
struct EmailBody {
    password: String,
    email: String,
}

/// `POST /api/v1/me/email`.
pub async fn change_email(mut ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let body: EmailBody = ctx.json().await?;
    let user = accounts::change_email(&ctx.state, &me, body.password, body.email).await?;
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

/// `GET /api/v1/rooms`: every public room, and the private and direct
/// rooms the caller is in.
pub async fn list_rooms(ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let state = &ctx.state;
    let rooms = state.rooms.all();
    let views: Vec<_> = rooms
        .iter()
        .filter(|r| r.visible_to(me.user))
        .map(|r| r.view(me.user, &state.directory))
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"rooms": views})))
}

#[derive(Deserialize)]
struct CreateRoomBody {
    name: String,
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    visibility: Visibility,
}

pub async fn create_room(mut ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let body: CreateRoomBody = ctx.json().await?;
    let state = &ctx.state;
    let room = rooms::create(
        state,
        me.user,
        &body.name,
        body.topic.as_deref(),
        body.visibility,
    )
    .await?;
    room_response(state, StatusCode::CREATED, &room, me.user)
}

pub async fn get_room(ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    let room = rooms::visible_room(&ctx.state, room_id, me.user)?;
    room_response(&ctx.state, StatusCode::OK, &room, me.user)
}

pub async fn join_room(ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    let room = rooms::join(&ctx.state, me.user, room_id).await?;
    room_response(&ctx.state, StatusCode::OK, &room, me.user)
}

#[derive(Deserialize)]
struct DirectBody {
    users: Vec<UserId>,
}

/// `POST /api/v1/dms`: the direct room with these people.
pub async fn direct(mut ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let body: DirectBody = ctx.json().await?;
    let room = rooms::direct(&ctx.state, me.user, &body.users).await?;
    room_response(&ctx.state, StatusCode::OK, &room, me.user)
}

#[derive(Deserialize)]
struct AddMemberBody {
    user: UserId,
}

/// `POST /api/v1/rooms/{id}/members`: the owner adds someone.
pub async fn add_member(mut ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    let body: AddMemberBody = ctx.json().await?;
    let room = rooms::add_member(&ctx.state, me.user, room_id, body.user).await?;
    room_response(&ctx.state, StatusCode::OK, &room, me.user)
}

#[derive(Deserialize)]
struct UpdateRoomBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    topic: Option<String>,
}

/// `PATCH /api/v1/rooms/{id}`: the owner or a moderator renames the room
/// or changes its topic.
pub async fn update_room(mut ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    let body: UpdateRoomBody = ctx.json().await?;
    let room = rooms::update(
        &ctx.state,
        me.user,
        room_id,
        body.name.as_deref(),
        body.topic.as_deref(),
    )
    .await?;
    room_response(&ctx.state, StatusCode::OK, &room, me.user)
}

#[derive(Deserialize)]
struct RoleBody {
    role: Role,
}

/// `PUT /api/v1/rooms/{id}/members/{user}/role`.
pub async fn set_role(mut ctx: Ctx, room_id: &str, user_id: &str) -> Handled {
    let me = ctx.identity()?;
    let body: RoleBody = ctx.json().await?;
    let user = user_id.parse().unwrap_or(UserId::NIL);
    rooms::set_role(&ctx.state, me.user, room_id, user, body.role).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// `DELETE /api/v1/rooms/{id}/members/{user}`: a kick, or a leave when it
/// is yourself.
pub async fn remove_member(ctx: Ctx, room_id: &str, user_id: &str) -> Handled {
    let me = ctx.identity()?;
    let user = user_id.parse().unwrap_or(UserId::NIL);
    rooms::remove_member(&ctx.state, me.user, room_id, user).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// `POST /api/v1/rooms/{id}/bans {"user"}`.
pub async fn ban(mut ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    let body: AddMemberBody = ctx.json().await?;
    rooms::set_banned(&ctx.state, me.user, room_id, body.user, true).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// `DELETE /api/v1/rooms/{id}/bans/{user}`.
pub async fn unban(ctx: Ctx, room_id: &str, user_id: &str) -> Handled {
    let me = ctx.identity()?;
    let user = user_id.parse().unwrap_or(UserId::NIL);
    rooms::set_banned(&ctx.state, me.user, room_id, user, false).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// `GET /api/v1/rooms/{id}/bans`: for the owner and moderators.
pub async fn list_bans(ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    let room = rooms::visible_room(&ctx.state, room_id, me.user)?;
    if !rooms::moderates(&ctx.state, &room, me.user) {
        return Err(ApiError::Forbidden);
    }
    let bans: Vec<_> = room
        .record
        .banned
        .iter()
        .map(|id| {
            let name = ctx.state.directory.get(*id).map(|s| s.username.clone());
            json!({"id": id, "username": name})
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"bans": bans})))
}

/// `GET /api/v1/users?q=PREFIX&limit=N`: people to start a direct room
/// with or to mention.
pub async fn search_users(ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let limit = limit_param(&ctx, 20, 50)?;
    let prefix = ctx.query("q").unwrap_or_default();
    let found = accounts::search(
        &ctx.state,
        me.user,
        &percent_decode(&prefix).unwrap_or_default(),
        limit,
    )?;
    let users: Vec<_> = found
        .into_iter()
        .map(|(id, user, online)| {
            json!({
                "id": id,
                "username": user.username,
                "display_name": user.display_name,
                "avatar": AvatarUrl::of(id, user.avatar),
                "online": online,
            })
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"users": users})))
}

/// `GET /api/v1/search?q=…&room=ID&sort=relevance|recent&limit=N&cursor=…`:
/// the caller's messages that match, each as `GET …/messages` shows it,
/// with the character ranges that matched.
pub async fn search_messages(ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let state = &ctx.state;
    let limit = limit_param(&ctx, search::PAGE_DEFAULT, search::PAGE_MAX)?;
    let order = match ctx.query("sort").as_deref() {
        None | Some("relevance") => Order::Relevance,
        Some("recent") => Order::Recent,
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "sort must be relevance or recent.".into(),
            ))
        }
    };
    let decoded = |key: &str| ctx.query(key).map(|v| form_decode(&v));
    let q = match decoded("q") {
        Some(Some(q)) => q,
        Some(None) => {
            return Err(ApiError::InvalidQuery(
                "q is not valid percent-encoded UTF-8.".into(),
            ))
        }
        None => String::new(),
    };
    // A value that does not decode is passed on as written: no room or
    // cursor has that name, so it is refused, never ignored.
    let raw = |key: &str| ctx.query(key).map(|v| form_decode(&v).unwrap_or(v));
    let (room, cursor) = (raw("room"), raw("cursor"));
    let ask = search::Ask {
        q: &q,
        room: room.as_deref(),
        order,
        cursor: cursor.as_deref(),
        limit,
    };
    let found = search::messages(state, me.user, ask).await?;
    let log = state.store.log()?;
    let authors = Authors::of(
        &state.directory,
        found.hits.iter().map(|h| h.current.event.kind.actor()),
    );
    let mut results = Vec::with_capacity(found.hits.len());
    for hit in &found.hits {
        let page = std::slice::from_ref(&hit.current);
        let Some(message) =
            views::current_messages(&log, &state.directory, &authors, hit.room, page, me.user)
                .pop()
        else {
            continue;
        };
        results.push(SearchResult {
            room: hit.room,
            seq: hit.current.seq,
            message,
            highlights: &hit.highlights,
        });
    }
    #[derive(Serialize)]
    struct SearchResult<'a> {
        room: RoomId,
        seq: Seq,
        message: MessageView<'a>,
        highlights: &'a [[usize; 2]],
    }
    #[derive(Serialize)]
    struct SearchPage<'a> {
        results: Vec<SearchResult<'a>>,
        next: Option<String>,
    }
    Ok(json_response(
        StatusCode::OK,
        &SearchPage {
            results,
            next: found.next,
        },
    ))
}

/// A query-string value: `+` is a space (HTML forms send it so), then
/// percent-decoding.
pub(super) fn form_decode(text: &str) -> Option<String> {
    percent_decode(&text.replace('+', " "))
}

fn room_response(state: &AppState, status: StatusCode, room: &Room, viewer: UserId) -> Handled {
    Ok(json_response(
        status,
        &json!({"room": room.view(viewer, &state.directory)}),
    ))
}

pub async fn leave_room(ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    rooms::leave(&ctx.state, me.user, room_id).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

#[derive(Deserialize)]
struct ReadBody {
    seq: u64,
    #[serde(default)]
    force: bool,
}

/// `POST /api/v1/rooms/{id}/read`.
pub async fn mark_read(mut ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    let body: ReadBody = ctx.json().await?;
    reads::mark(
        &ctx.state,
        me.user,
        room_id,
        Seq(body.seq),
        body.force,
        None,
    )?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

#[derive(Deserialize)]
struct NotificationsBody {
    level: crate::protocol::NotifyLevel,
}

/// `PUT /api/v1/rooms/{id}/notifications`.
pub async fn set_notifications(mut ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    let body: NotificationsBody = ctx.json().await?;
    let level = reads::set_notifications(&ctx.state, me.user, room_id, body.level, None).await?;
    Ok(json_response(StatusCode::OK, &json!({ "level": level })))
}

pub async fn members(ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    let room = member_room(&ctx.state, room_id, me.user)?;
    let mut members: Vec<_> = room
        .members()
        .into_iter()
        .filter_map(|u| {
            let s = ctx.state.directory.get(u)?;
            let role = room.role(u);
            let online = ctx.state.presence.is_online(u);
            let mut m = json!({
                "id": u,
                "username": s.username,
                "display_name": s.display_name,
                "avatar": AvatarUrl::of(u, s.avatar),
                "role": role,
                "online": online,
            });
            if s.bot {
                m["bot"] = json!(true);
            }
            (!s.deleted).then_some(m)
        })
        .collect();
    members.sort_by(|a, b| a["username"].as_str().cmp(&b["username"].as_str()));
    Ok(json_response(StatusCode::OK, &json!({"members": members})))
}

pub async fn list_messages(ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    let state = &ctx.state;
    let limit = limit_param(&ctx, PAGE_DEFAULT, PAGE_MAX)?;
    let page = match (seq_param(&ctx, "before")?, seq_param(&ctx, "after")?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidRequest(
                "Give before or after, not both.".into(),
            ))
        }
        (Some(b), None) => Page::Before(b, limit),
        (None, Some(a)) => Page::After(a, limit),
        (None, None) => Page::Newest(limit),
    };
    let body = messages::history(state, me.user, room_id, page)?;
    Ok(json_bytes_response(StatusCode::OK, body))
}

/// `GET /api/v1/rooms/{id}/events?after=SEQ&limit=N`: the log as it
/// happened.
pub async fn list_events(ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    let state = &ctx.state;
    let limit = limit_param(&ctx, EVENTS_MAX, EVENTS_MAX)?;
    let after = seq_param(&ctx, "after")?.unwrap_or(Seq::ZERO);
    let (rid, events) = messages::events(state, me.user, room_id, after, limit)?;
    let log = state.store.log()?;
    let authors = Authors::of(&state.directory, events.iter().map(|(_, e)| e.kind.actor()));
    let events: Vec<EventView<'_>> = events
        .iter()
        .filter_map(|(seq, e)| views::logged_event(&log, &state.directory, &authors, rid, *seq, e))
        .collect();
    #[derive(Serialize)]
    struct EventsPage<'a> {
        events: Vec<EventView<'a>>,
    }
    Ok(json_response(StatusCode::OK, &EventsPage { events }))
}

pub(super) fn limit_param(ctx: &Ctx, default: usize, max: usize) -> Result<usize, ApiError> {
    match ctx.query("limit") {
        None => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::InvalidRequest(format!(
                "limit must be a whole number from 1 to {max}."
            ))),
        },
    }
}

fn seq_param(ctx: &Ctx, key: &str) -> Result<Option<Seq>, ApiError> {
    ctx.query(key)
        .map(|s| {
            s.parse::<u64>().map(Seq).map_err(|_| {
                ApiError::InvalidRequest(format!("{key} must be a message seq (a whole number)."))
            })
        })
        .transpose()
}

#[derive(Deserialize)]
struct PostMessageBody {
    /// May be left out when files are attached.
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    files: Vec<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    reply_to: Option<u64>,
}

pub async fn post_message(mut ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    // Membership first: someone outside the room learns nothing more,
    // whatever they post.
    member_room(&ctx.state, room_id, me.user)?;
    let body: PostMessageBody = ctx.json().await?;
    let text =
        match body.body {
            Some(text) => text,
            None if !body.files.is_empty() => String::new(),
            None => return Err(ApiError::InvalidRequest(
                "The request body is missing something or has a wrong type: missing field `body`."
                    .into(),
            )),
        };
    let send = messages::Send {
        room: room_id,
        body: text,
        client_id: body.client_id,
        reply_to: body.reply_to,
        files: body.files,
    };
    let Sent::Stored(c) = messages::send(&ctx.state, me.user, send, Via::Wait).await? else {
        return Err(ApiError::Internal);
    };
    render_sent(&ctx.state, me.user, room_id, c)
}

/// The answer to a send: `201` with the message as it was stored, or for
/// a repeated `client_id` `200` with the original as it reads now.
pub(super) fn render_sent(
    state: &AppState,
    viewer: UserId,
    room_id: &str,
    sent: crate::commit::Committed,
) -> Handled {
    if sent.duplicate {
        return render_message(state, viewer, room_id, sent.seq, StatusCode::OK);
    }
    // Just stored: no edit, deletion or reaction can be on it yet, so it
    // is answered from the committed event, not read back from storage.
    let current = views::Current {
        seq: sent.seq,
        event: std::sync::Arc::new(sent.event),
        state: Default::default(),
        json: None,
    };
    render_current(state, viewer, sent.room, current, StatusCode::CREATED)
}

#[derive(Deserialize)]
struct EditBody {
    body: String,
    #[serde(default)]
    client_id: Option<String>,
}

/// `PATCH /api/v1/rooms/{id}/messages/{seq}`: the author edits.
pub async fn edit_message(mut ctx: Ctx, room_id: &str, seq: &str) -> Handled {
    let me = ctx.identity()?;
    member_room(&ctx.state, room_id, me.user)?;
    let target = message_seq(seq)?;
    let body: EditBody = ctx.json().await?;
    let edit = Edit {
        room: room_id,
        target: target.0,
        client_id: body.client_id,
        what: EditKind::Body(body.body),
    };
    messages::change(&ctx.state, me.user, edit, Via::Wait).await?;
    render_message(&ctx.state, me.user, room_id, target, StatusCode::OK)
}

/// `DELETE /api/v1/rooms/{id}/messages/{seq}`: the author or an
/// administrator deletes; again is a no-op.
pub async fn delete_message(ctx: Ctx, room_id: &str, seq: &str) -> Handled {
    let me = ctx.identity()?;
    let edit = Edit {
        room: room_id,
        target: message_seq(seq)?.0,
        client_id: None,
        what: EditKind::Delete,
    };
    messages::change(&ctx.state, me.user, edit, Via::Wait).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// `PUT` / `DELETE /api/v1/rooms/{id}/messages/{seq}/reactions/{emoji}`.
pub async fn react(ctx: Ctx, room_id: &str, seq: &str, emoji: &str, on: bool) -> Handled {
    let me = ctx.identity()?;
    let emoji = percent_decode(emoji).ok_or(ApiError::InvalidEmoji)?;
    let edit = Edit {
        room: room_id,
        target: message_seq(seq)?.0,
        client_id: None,
        what: EditKind::React { emoji, on },
    };
    messages::change(&ctx.state, me.user, edit, Via::Wait).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// `GET /api/v1/rooms/{id}/messages/{seq}/edits`: every version.
pub async fn list_edits(ctx: Ctx, room_id: &str, seq: &str) -> Handled {
    let me = ctx.identity()?;
    let versions = messages::edits(&ctx.state, me.user, room_id, message_seq(seq)?)?;
    let edits: Vec<_> = versions
        .into_iter()
        .map(|(body, at)| json!({"body": body, "at": at.to_rfc3339()}))
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"edits": edits})))
}

/// A seq in a path: anything else is no message.
fn message_seq(seq: &str) -> Result<Seq, ApiError> {
    seq.parse::<u64>()
        .map(Seq)
        .map_err(|_| ApiError::MessageNotFound)
}

/// `%XX` escapes decoded (an emoji in a path arrives so); `None` if they
/// do not make UTF-8.
pub(super) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `{"message": MESSAGE}` as it is now, for the caller.
pub(super) fn render_message(
    state: &AppState,
    viewer: UserId,
    room_id: &str,
    seq: Seq,
    status: StatusCode,
) -> Handled {
    let (rid, current) = messages::current(state, viewer, room_id, seq)?;
    render_current(state, viewer, rid, current, status)
}

/// `{"message": MESSAGE}` for one message of `room` as `viewer` sees it.
fn render_current(
    state: &AppState,
    viewer: UserId,
    room: RoomId,
    current: views::Current,
    status: StatusCode,
) -> Handled {
    #[derive(Serialize)]
    struct One<'a> {
        message: MessageView<'a>,
    }
    let log = state.store.log()?;
    let page = [current];
    let authors = Authors::of(&state.directory, page.iter().map(|c| c.event.kind.actor()));
    let mut views = views::current_messages(&log, &state.directory, &authors, room, &page, viewer);
    let message = views.pop().ok_or(ApiError::MessageNotFound)?;
    Ok(json_response(status, &One { message }))
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

/// `POST /api/v1/users/{id}/disable` (or `/enable`): an administrator
/// disables an account; its sessions and sockets end at once.
pub async fn set_disabled(ctx: Ctx, user_id: &str, disabled: bool) -> Handled {
    let me = ctx.identity()?;
    let user = user_id.parse().unwrap_or(UserId::NIL);
    accounts::set_disabled(&ctx.state, Actor::User(me.user), user, disabled).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}
