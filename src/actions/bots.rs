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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::messages::{self, Sent, Via};
use super::{accounts, reads, rooms, Actor};
use crate::auth::Token;
use crate::directory::author_view;
use crate::error::ApiError;
use crate::ids::{HookId, Millis, RoomId, Seq, UserId};
use crate::outbound;
use crate::state::AppState;
use crate::storage::records::{EventKind, EventRecord};
use crate::storage::{CallbackRecord, HookRecord, Taken, UserRecord, Visibility};
use crate::validate;
use crate::views::{self, Authors};

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
        files: Vec::new(),
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

// ---- Outgoing webhooks ---------------------------------------------------
//
// A bot with a callback URL gets each message of its rooms that mentions it
// (or every message, with `all`) as a signed POST, one at a time and in seq
// order per room. Where it has got to is its read cursor in each room, so a
// delivery resumes after a restart where it stopped (at least once: the
// cursor is saved each second, so a crash may deliver the last second
// again; `X-Hearth-Delivery` names each one). A failing receiver is tried
// again with doubling waits; after [`PARK_AFTER`] failures in a row the
// bot's deliveries are parked until its callback is set again.

/// Failed tries in a row after which a bot's deliveries stop.
pub const PARK_AFTER: u32 = 10;
/// The deadline of one delivery, connection to answer.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a bot's rooms are looked at for new messages.
const POLL: Duration = Duration::from_millis(200);
/// Events read from a room's log at a time.
const BATCH: usize = 64;

/// Sets a bot's callback (administrators): `url` must be under one of the
/// server's `webhook_allow` prefixes. A new signing secret each time, which
/// the answer shows; parked deliveries start again.
pub async fn set_callback(
    state: &AppState,
    actor: Actor,
    bot: UserId,
    url: &str,
    all: bool,
) -> Result<CallbackRecord, ApiError> {
    actor.require_admin(state)?;
    live_bot(state, bot)?;
    if url.len() > 2048 || !outbound::allowed(url, &state.config.webhook_allow) {
        return Err(ApiError::InvalidCallback);
    }
    let callback = CallbackRecord {
        url: url.to_string(),
        all,
        secret: Token::generate().0,
        parked: None,
    };
    state.store.put_callback(bot, Some(&callback))?;
    state.store.flush_async().await?;
    state.callbacks_changed.notify_one();
    tracing::info!(user = %bot, ?actor, "Bot callback set.");
    Ok(callback)
}

/// Removes a bot's callback: its deliveries stop.
pub async fn clear_callback(state: &AppState, actor: Actor, bot: UserId) -> Result<(), ApiError> {
    actor.require_admin(state)?;
    live_bot(state, bot)?;
    state.store.put_callback(bot, None)?;
    state.store.flush_async().await?;
    state.callbacks_changed.notify_one();
    Ok(())
}

/// A bot's callback, if it has one (administrators).
pub fn callback(
    state: &AppState,
    actor: Actor,
    bot: UserId,
) -> Result<Option<CallbackRecord>, ApiError> {
    actor.require_admin(state)?;
    live_bot(state, bot)?;
    Ok(state.store.callback(bot)?)
}

fn live_bot(state: &AppState, bot: UserId) -> Result<UserRecord, ApiError> {
    let user = accounts::live_user(state, bot)?;
    if !user.bot {
        return Err(ApiError::UserNotFound);
    }
    Ok(user)
}

/// Runs every bot's deliveries for as long as the server runs, restarting
/// a bot's when its callback changes.
pub async fn supervise(state: Arc<AppState>) {
    let mut running: HashMap<UserId, (CallbackRecord, tokio::task::AbortHandle)> = HashMap::new();
    loop {
        let changed = state.callbacks_changed.notified();
        match state.store.callbacks() {
            Ok(all) => {
                let want: HashMap<UserId, CallbackRecord> = all
                    .into_iter()
                    .filter(|(_, c)| c.parked.is_none())
                    .collect();
                running.retain(|bot, (callback, task)| {
                    let keep = want.get(bot) == Some(callback) && !task.is_finished();
                    if !keep {
                        task.abort();
                    }
                    keep
                });
                for (bot, callback) in want {
                    if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(bot) {
                        let task = tokio::spawn(deliver(state.clone(), bot, callback.clone()));
                        slot.insert((callback, task.abort_handle()));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "Cannot read bots' callbacks; will try again."),
        }
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
    }
}

/// One bot's deliveries, until parked (or aborted by [`supervise`]).
async fn deliver(state: Arc<AppState>, bot: UserId, callback: CallbackRecord) {
    let mut failures = 0u32;
    loop {
        let mut moved = false;
        let usable = state
            .directory
            .get(bot)
            .is_some_and(|u| !u.deleted && !u.disabled);
        for room_id in state.rooms.of_user(bot).into_iter().filter(|_| usable) {
            let Some(room) = state.rooms.get(room_id) else {
                continue;
            };
            let Some(read) = room.read_state(bot) else {
                continue;
            };
            let events = match state
                .store
                .log()
                .and_then(|log| log.range(room_id, read.read_seq.next(), room.head(), BATCH))
            {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot read a room for a bot's deliveries.");
                    continue;
                }
            };
            let room_key = room_id.to_string();
            let mut passed = None;
            for (seq, event) in events {
                if wanted(&state, room_id, bot, &callback, seq, &event) {
                    while let Err(why) = attempt(&state, bot, &callback, &room_key, seq).await {
                        failures += 1;
                        if failures >= PARK_AFTER {
                            park(&state, bot, &callback, why).await;
                            return;
                        }
                        let wait = backoff(failures, state.config.webhook_retry_max);
                        tracing::warn!(user = %bot, room = %room_id, seq = seq.0, failures, error = %why, "A bot's delivery failed; trying again in {} s.", wait.as_secs());
                        tokio::time::sleep(wait).await;
                    }
                    failures = 0;
                    // Each delivered message moves the cursor at once.
                    let _ = reads::mark(&state, bot, &room_key, seq, false, None);
                }
                passed = Some(seq);
            }
            // What was passed over moves the cursor once per batch.
            if let Some(seq) = passed {
                let _ = reads::mark(&state, bot, &room_key, seq, false, None);
                moved = true;
            }
        }
        if !moved {
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Whether a bot's callback wants this event: a live message by someone
/// else that mentions the bot or the room (any message, with `all`).
fn wanted(
    state: &AppState,
    room: RoomId,
    bot: UserId,
    callback: &CallbackRecord,
    seq: Seq,
    event: &EventRecord,
) -> bool {
    let EventKind::Message {
        author,
        mentions,
        mentions_room,
        ..
    } = &event.kind
    else {
        return false;
    };
    if *author == bot || !(callback.all || *mentions_room || mentions.contains(&bot)) {
        return false;
    }
    let deleted = state
        .store
        .log()
        .and_then(|log| log.state(room, seq))
        .map(|s| s.deleted)
        .unwrap_or(false);
    !deleted
}

/// The wait before the next try after `failures` failures in a row.
fn backoff(failures: u32, max: Duration) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(20)).min(max)
}

/// POSTs one message to the bot's callback; a 2xx answer that carries text
/// is posted back as the bot's reply to it.
async fn attempt(
    state: &AppState,
    bot: UserId,
    callback: &CallbackRecord,
    room: &str,
    seq: Seq,
) -> Result<(), String> {
    let body = payload(state, bot, room, seq).map_err(|e| e.to_string())?;
    let timestamp = Millis::now().0 / 1000;
    let mut mac = Hmac::<Sha256>::new_from_slice(callback.secret.as_bytes())
        .map_err(|_| "a key of any length is accepted".to_string())?;
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&body);
    let signature = crate::storage::hex(&mac.finalize().into_bytes());
    let headers = [
        ("x-hearth-event", "message".to_string()),
        ("x-hearth-delivery", format!("{room}:{}", seq.0)),
        ("x-hearth-timestamp", timestamp.to_string()),
        ("x-hearth-signature", format!("v1={signature}")),
    ];
    let answer = outbound::post(&callback.url, &headers, body, DELIVERY_TIMEOUT).await?;
    if !(200..300).contains(&answer.status) {
        return Err(format!("the receiver answered {}", answer.status));
    }
    if let Some(text) = reply_text(&answer) {
        let send = messages::Send {
            room,
            body: text,
            // A redelivery's reply is the same reply, stored once.
            client_id: Some(format!("reply-{}", seq.0)),
            reply_to: Some(seq.0),
            files: Vec::new(),
        };
        if let Err(e) = messages::send(state, bot, send, Via::Wait).await {
            tracing::warn!(user = %bot, error = %e, "A bot's reply was refused.");
        }
    }
    Ok(())
}

/// The JSON a callback receives.
fn payload(state: &AppState, bot: UserId, room: &str, seq: Seq) -> Result<Vec<u8>, ApiError> {
    let (rid, current) = messages::current(state, bot, room, seq)?;
    let log = state.store.log()?;
    let page = [current];
    let authors = Authors::of(&state.directory, page.iter().map(|c| c.event.kind.actor()));
    let mut views = views::current_messages(&log, &state.directory, &authors, rid, &page, bot);
    let message = views.pop().ok_or(ApiError::MessageNotFound)?;
    let name = state
        .rooms
        .get(rid)
        .map(|r| r.record.name.clone())
        .unwrap_or_default();
    let me = state.directory.get(bot);
    let body = serde_json::json!({
        "type": "message",
        "bot": author_view(bot, me.as_deref()),
        "room": {"id": rid, "name": name},
        "message": message,
    });
    Ok(body.to_string().into_bytes())
}

/// The reply in a receiver's answer: `{"body"}` (or `{"text"}`) as JSON,
/// or plain text.
fn reply_text(answer: &outbound::Answer) -> Option<String> {
    let text = if answer.content_type.starts_with("application/json") {
        let v: serde_json::Value = serde_json::from_slice(&answer.body).ok()?;
        v.get("body")
            .or_else(|| v.get("text"))?
            .as_str()?
            .to_string()
    } else if answer.content_type.starts_with("text/plain") {
        String::from_utf8(answer.body.to_vec()).ok()?
    } else {
        return None;
    };
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// Stops a bot's deliveries after failing again and again, saying why.
async fn park(state: &AppState, bot: UserId, callback: &CallbackRecord, why: String) {
    tracing::warn!(user = %bot, error = %why, "A bot's deliveries are parked after {PARK_AFTER} failures in a row; set its callback again to resume.");
    let mut parked = callback.clone();
    parked.parked = Some(why);
    let saved = state.store.put_callback(bot, Some(&parked));
    if saved.is_ok() {
        let _ = state.store.flush_async().await;
    }
    state.callbacks_changed.notify_one();
}
