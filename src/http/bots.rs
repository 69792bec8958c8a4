//! The JSON API of bots and incoming webhooks (see
//! [`crate::actions::bots`]): parse, call the action, render.

use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::api::{render_sent, Handled};
use super::request::{empty_response, json_response, Ctx};
use crate::actions::bots;
use crate::actions::messages::Sent;
use crate::actions::Actor;
use crate::directory::author_view;
use crate::error::ApiError;
use crate::ids::{HookId, RoomId, SerdeRfc3339, UserId};
use crate::protocol::{AuthorView, UserView};
use crate::state::AppState;
use crate::storage::{CallbackRecord, HookRecord};

#[derive(Deserialize)]
struct NewBotBody {
    username: String,
}

/// `POST /api/v1/bots`: an administrator makes a bot.
pub async fn create(mut ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let body: NewBotBody = ctx.json().await?;
    let (bot, token) = bots::create(&ctx.state, Actor::User(me.user), &body.username).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"user": UserView::of(&bot), "token": token.0}),
    ))
}

/// `GET /api/v1/bots`.
pub async fn list(ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let bots = bots::list(&ctx.state, Actor::User(me.user))?;
    let views: Vec<_> = bots.iter().map(UserView::of).collect();
    Ok(json_response(StatusCode::OK, &json!({ "bots": views })))
}

/// `POST /api/v1/bots/{id}/token`: a new token replaces the old one.
pub async fn new_token(ctx: Ctx, bot: &str) -> Handled {
    let me = ctx.identity()?;
    let bot = bot.parse().unwrap_or(UserId::NIL);
    let token = bots::new_token(&ctx.state, Actor::User(me.user), bot).await?;
    Ok(json_response(StatusCode::OK, &json!({"token": token.0})))
}

#[derive(Deserialize)]
struct CallbackBody {
    url: String,
    #[serde(default)]
    all: bool,
}

/// A callback as the API shows it; the secret only when just set.
fn callback_view(c: &CallbackRecord, with_secret: bool) -> serde_json::Value {
    let mut v = json!({"url": c.url, "all": c.all, "parked": c.parked});
    if with_secret {
        v["secret"] = json!(c.secret);
    }
    v
}

/// `PUT /api/v1/bots/{id}/callback`: where the bot's messages are POSTed.
pub async fn set_callback(mut ctx: Ctx, bot: &str) -> Handled {
    let me = ctx.identity()?;
    let body: CallbackBody = ctx.json().await?;
    let bot = bot.parse().unwrap_or(UserId::NIL);
    let c = bots::set_callback(&ctx.state, Actor::User(me.user), bot, &body.url, body.all).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"callback": callback_view(&c, true)}),
    ))
}

/// `GET /api/v1/bots/{id}/callback`: `null` when none is set.
pub async fn get_callback(ctx: Ctx, bot: &str) -> Handled {
    let me = ctx.identity()?;
    let bot = bot.parse().unwrap_or(UserId::NIL);
    let c = bots::callback(&ctx.state, Actor::User(me.user), bot)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"callback": c.map(|c| callback_view(&c, false))}),
    ))
}

/// `DELETE /api/v1/bots/{id}/callback`.
pub async fn clear_callback(ctx: Ctx, bot: &str) -> Handled {
    let me = ctx.identity()?;
    let bot = bot.parse().unwrap_or(UserId::NIL);
    bots::clear_callback(&ctx.state, Actor::User(me.user), bot).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

#[derive(Deserialize)]
struct NewHookBody {
    name: String,
}

/// A hook as its room's managers see it (never its secret).
#[derive(Serialize)]
struct HookView<'a> {
    id: HookId,
    name: &'a str,
    room: RoomId,
    /// The bot account it posts as.
    user: AuthorView<'a>,
    created_by: UserId,
    created_at: SerdeRfc3339,
}

fn hook_view<'a>(hook: &'a HookRecord, name: &'a str) -> HookView<'a> {
    HookView {
        id: hook.id,
        name: &hook.name,
        room: hook.room,
        user: AuthorView {
            id: hook.bot,
            username: name,
            deleted: false,
        },
        created_by: hook.created_by,
        created_at: hook.created_at.into(),
    }
}

/// The bot's username, as the directory has it.
fn bot_name(state: &AppState, hook: &HookRecord) -> String {
    let summary = state.directory.get(hook.bot);
    author_view(hook.bot, summary.as_deref())
        .username
        .to_string()
}

/// `POST /api/v1/rooms/{id}/hooks`: the secret URL is in this answer only.
pub async fn create_hook(mut ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    let body: NewHookBody = ctx.json().await?;
    let made = bots::create_hook(&ctx.state, me.user, room_id, &body.name).await?;
    let name = bot_name(&ctx.state, &made.hook);
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "hook": hook_view(&made.hook, &name),
            "url": format!("/api/v1/hooks/{}", made.secret),
        }),
    ))
}

/// `GET /api/v1/rooms/{id}/hooks`.
pub async fn hooks(ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    let hooks = bots::hooks(&ctx.state, me.user, room_id)?;
    let names: Vec<String> = hooks.iter().map(|h| bot_name(&ctx.state, h)).collect();
    let views: Vec<_> = hooks
        .iter()
        .zip(&names)
        .map(|(h, n)| hook_view(h, n))
        .collect();
    Ok(json_response(StatusCode::OK, &json!({ "hooks": views })))
}

/// `DELETE /api/v1/rooms/{id}/hooks/{hook}`.
pub async fn revoke_hook(ctx: Ctx, room_id: &str, hook: &str) -> Handled {
    let me = ctx.identity()?;
    bots::revoke_hook(&ctx.state, me.user, room_id, hook).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// What a webhook sender posts. `text` is taken for `body`, as Slack's
/// incoming webhooks name it, so tools that speak Slack's format work.
#[derive(Deserialize)]
struct HookPostBody {
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
}

/// `POST /api/v1/hooks/{secret}`: no session; the secret is the credential.
pub async fn post(mut ctx: Ctx, secret: &str) -> Handled {
    let body: HookPostBody = ctx.json().await?;
    let text = body.body.or(body.text).ok_or_else(|| {
        ApiError::InvalidRequest("Give the message as \"body\" (or \"text\").".into())
    })?;
    let (hook, sent) = bots::post(&ctx.state, secret, text, body.client_id).await?;
    let Sent::Stored(c) = sent else {
        return Err(ApiError::Internal);
    };
    render_sent(&ctx.state, hook.bot, &hook.room.to_string(), c)
}
