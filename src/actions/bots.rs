//! Bots and incoming webhooks: accounts that programs use.
//!
//! A bot is an account an administrator makes: no password, no email, a
//! token that does not expire until a new one replaces it. Room owners and
//! moderators add bots to rooms like anyone else, and the bot then speaks
//! the same API and WebSocket protocol as people do.
//!
//! An incoming webhook is a secret URL that posts into one room: made by
//! the room's owner or a moderator, it gets a bot account of its own (named
//! after the hook) that is a member of the room. Posting to the URL is a
//! send by that bot, with everything a send has: the body rules, the rate
//! budget, and `client_id` deduplication, so a sender that retries never
//! posts twice.

use super::messages::{self, Sent, Via};
use super::{accounts, rooms, Actor};
use crate::auth::Token;
use crate::error::ApiError;
use crate::ids::{HookId, Millis, RoomId, UserId};
use crate::state::AppState;
use crate::storage::{HookRecord, Taken, UserRecord, Visibility};
use crate::validate;

/// Makes a bot account and its first token: administrators only.
pub async fn create(
    state: &AppState,
    actor: Actor,
    username: &str,
) -> Result<(UserRecord, Token), ApiError> {
    actor.require_admin(state)?;
    validate::username(username)?;
    let bot = make_account(state, username.to_string(), None).await?;
    let token = state.sessions.create_lasting(bot.id).await?;
    tracing::info!(user = %bot.id, ?actor, "Bot created.");
    Ok((bot, token))
}

/// Every bot that is not deleted, oldest first.
pub fn list(state: &AppState, actor: Actor) -> Result<Vec<UserRecord>, ApiError> {
    actor.require_admin(state)?;
    let mut bots = Vec::new();
    for u in state.store.users() {
        let u = u?;
        if u.bot && !u.deleted {
            bots.push(u);
        }
    }
    bots.sort_by_key(|u| u.id);
    Ok(bots)
}

/// Replaces a bot's token: the old one stops working at once and the
/// sockets opened with it close (`4001`). Administrators only.
pub async fn new_token(state: &AppState, actor: Actor, bot: UserId) -> Result<Token, ApiError> {
    actor.require_admin(state)?;
    let user = accounts::live_user(state, bot)?;
    if !user.bot {
        return Err(ApiError::UserNotFound);
    }
    state.sessions.revoke_all(bot, None)?;
    state
        .hub
        .close_user(bot, None, crate::wire::CloseReason::Revoked);
    let token = state.sessions.create_lasting(bot).await?;
    tracing::info!(user = %bot, ?actor, "Bot token replaced.");
    Ok(token)
}

/// A hook as it was made: the secret is shown this once.
pub struct NewHook {
    pub hook: HookRecord,
    pub secret: String,
}

/// Most hooks in one room.
pub const MAX_HOOKS_PER_ROOM: usize = 20;

/// Makes an incoming webhook for a room: its owner or a moderator (or an
/// administrator who can see it). Not in direct rooms.
pub async fn create_hook(
    state: &AppState,
    by: UserId,
    room_id: &str,
    name: &str,
) -> Result<NewHook, ApiError> {
    let room = hook_room(state, by, room_id)?;
    let name = validate::display_name(name)?;
    if state.store.hooks_of(room)?.len() >= MAX_HOOKS_PER_ROOM {
        return Err(ApiError::TooManyHooks);
    }
    // The bot's username only has to be unique; people see the name.
    let mut bot = None;
    for _ in 0..4 {
        let username = format!("hook-{}", &Token::generate().0[..10]).to_lowercase();
        match make_account(state, username, Some(name.clone())).await {
            Err(ApiError::UsernameTaken) => continue,
            made => {
                bot = Some(made?);
                break;
            }
        }
    }
    let bot = bot.ok_or(ApiError::Internal)?;
    rooms::add_member(state, by, room_id, bot.id).await?;
    let secret = Token::generate();
    let hook = HookRecord {
        id: HookId::generate(),
        room,
        bot: bot.id,
        name,
        created_by: by,
        created_at: Millis::now(),
    };
    state.store.put_hook(&Token::hash(&secret.0), &hook)?;
    state.store.flush_async().await?;
    tracing::info!(room = %room, hook = %hook.id, user = %by, "Webhook created.");
    Ok(NewHook {
        hook,
        secret: secret.0,
    })
}

/// A room's hooks (never their secrets): its owner and moderators.
pub fn hooks(state: &AppState, by: UserId, room_id: &str) -> Result<Vec<HookRecord>, ApiError> {
    let room = hook_room(state, by, room_id)?;
    Ok(state
        .store
        .hooks_of(room)?
        .into_iter()
        .map(|(_, h)| h)
        .collect())
}

/// Revokes a hook: its URL stops working at once, and its bot leaves the
/// room and is disabled (its messages stay, under the hook's name).
pub async fn revoke_hook(
    state: &AppState,
    by: UserId,
    room_id: &str,
    hook: &str,
) -> Result<(), ApiError> {
    let room = hook_room(state, by, room_id)?;
    let id: HookId = hook.parse().map_err(|_| ApiError::HookNotFound)?;
    let Some((_, record)) = state
        .store
        .hooks_of(room)?
        .into_iter()
        .find(|(_, h)| h.id == id)
    else {
        return Err(ApiError::HookNotFound);
    };
    state.store.remove_hook(room, id)?;
    state.store.flush_async().await?;
    rooms::remove_member(state, by, room_id, record.bot).await?;
    accounts::set_disabled(state, Actor::Operator, record.bot, true).await?;
    tracing::info!(room = %room, hook = %id, user = %by, "Webhook revoked.");
    Ok(())
}

/// Posts through a hook's secret: a send by the hook's bot. An unknown
/// (or revoked) secret is `hook_not_found`.
pub async fn post(
    state: &AppState,
    secret: &str,
    body: String,
    client_id: Option<String>,
) -> Result<(HookRecord, Sent), ApiError> {
    if secret.len() > 64 {
        return Err(ApiError::HookNotFound);
    }
    let hook = state
        .store
        .hook(&Token::hash(secret))?
        .ok_or(ApiError::HookNotFound)?;
    let room = hook.room.to_string();
    let send = messages::Send {
        room: &room,
        body,
        client_id,
        reply_to: None,
    };
    let sent = messages::send(state, hook.bot, send, Via::Wait)
        .await
        .map_err(|e| match e {
            // The room went, or the bot was taken out of it: the hook is
            // of no use any more.
            ApiError::RoomNotFound | ApiError::NotAMember => ApiError::HookNotFound,
            e => e,
        })?;
    Ok((hook, sent))
}

/// A room whose hooks `by` may manage: visible to them, not direct, and
/// moderated by them.
fn hook_room(state: &AppState, by: UserId, room_id: &str) -> Result<RoomId, ApiError> {
    let room = rooms::visible_room(state, room_id, by)?;
    if room.record.visibility == Visibility::Direct {
        return Err(ApiError::DirectRoom);
    }
    if !rooms::moderates(state, &room, by) {
        return Err(ApiError::Forbidden);
    }
    Ok(room.record.id)
}

/// Stores a bot account (durable before it is used).
async fn make_account(
    state: &AppState,
    username: String,
    display_name: Option<String>,
) -> Result<UserRecord, ApiError> {
    let bot = UserRecord {
        id: UserId::generate(),
        username,
        email: String::new(),
        // No password can match an empty hash: a bot cannot log in.
        password_hash: String::new(),
        created_at: Millis::now(),
        admin: false,
        disabled: false,
        deleted: false,
        display_name,
        about: String::new(),
        avatar: None,
        bot: true,
    };
    match state.store.create_user(&bot)? {
        Err(Taken::Username) => return Err(ApiError::UsernameTaken),
        Err(Taken::Email) => return Err(ApiError::Internal),
        Ok(()) => {}
    }
    state.store.flush_async().await?;
    state.directory.put(&bot);
    Ok(bot)
}
