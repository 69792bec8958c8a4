//! Accounts: sign-up, login and logout, passwords, and the administrator's
//! list, disable, enable, delete, revoke and administrator role.

use std::net::IpAddr;
use std::sync::Arc;

use super::{rooms, Actor};
use crate::auth::{invites, Identity, Token};
use crate::directory::UserSummary;
use crate::error::ApiError;
use crate::ids::{Millis, TokenHash, UserId};
use crate::protocol::{LeftReason, ServerFrame, UserView};
use crate::state::AppState;
use crate::storage::{Taken, UserRecord};
use crate::validate;
use crate::wire::CloseReason;

/// What a new account is made of.
pub struct NewAccount {
    pub username: String,
    pub email: String,
    pub password: String,
    /// Asked for by the operator; the first account is an administrator
    /// whatever this says.
    pub admin: bool,
}

/// Sign-up from the API: the sign-up rate per address, the registration
/// mode and its invite apply.
pub async fn sign_up(
    state: &AppState,
    ip: IpAddr,
    account: NewAccount,
    invite: Option<&str>,
) -> Result<UserRecord, ApiError> {
    state.limits.signup.check(&ip)?;
    check_new(&account)?;
    let mode = super::operator::registration(state)?;
    let admission = invites::admit(&state.store, mode, invite)?;
    let created = create(state, account).await;
    if created.is_err() {
        invites::undo(&state.store, admission);
    }
    created
}

/// An account made by the operator or an administrator: no registration
/// rules.
pub async fn add(
    state: &AppState,
    actor: Actor,
    account: NewAccount,
) -> Result<UserRecord, ApiError> {
    actor.require_admin(state)?;
    check_new(&account)?;
    create(state, account).await
}

fn check_new(account: &NewAccount) -> Result<(), ApiError> {
    validate::username(&account.username)?;
    validate::email(&account.email)?;
    validate::password(&account.password)
}

async fn create(state: &AppState, account: NewAccount) -> Result<UserRecord, ApiError> {
    let user = UserRecord {
        id: UserId::generate(),
        username: account.username,
        email: account.email,
        password_hash: state.hasher.hash(account.password).await?,
        created_at: Millis::now(),
        // The first account administers the server, however it was made.
        admin: account.admin || state.directory.count() == 0,
        disabled: false,
        deleted: false,
        display_name: None,
        about: String::new(),
        avatar: None,
        bot: false,
    };
    match state.store.create_user(&user)? {
        Err(Taken::Username) => return Err(ApiError::UsernameTaken),
        Err(Taken::Email) => return Err(ApiError::EmailTaken),
        Ok(()) => {}
    }
    state.store.flush_async().await?;
    state.directory.put(&user);
    tracing::info!(user = %user.id, admin = user.admin, "Account created.");
    Ok(user)
}

/// Checks a password and starts a session. An unknown account and a wrong
/// password get the same answer, after the same work.
pub async fn log_in(
    state: &AppState,
    ip: IpAddr,
    user_agent: &str,
    login: &str,
    password: String,
) -> Result<(Token, UserRecord), ApiError> {
    state.limits.login_ip.check(&ip)?;
    if login.len() > 320 || password.chars().count() > validate::PASSWORD_MAX {
        return Err(ApiError::InvalidCredentials);
    }
    let account_key = login.to_lowercase();
    state.limits.logins.check(&account_key, ip)?;
    let user = state.store.user_by_login(login)?.filter(|u| !u.deleted);
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let user = match (state.hasher.verify(hash, password).await?, user) {
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
    let token = state.sessions.create(user.id, user_agent, ip).await?;
    tracing::info!(user = %user.id, "Logged in.");
    Ok((token, user))
}

/// Ends the caller's session (with `everywhere`, every session of the
/// account) and closes the sockets opened with it.
pub async fn log_out(state: &AppState, me: &Identity, everywhere: bool) -> Result<(), ApiError> {
    if everywhere {
        state.sessions.revoke_all(me.user, None)?;
    } else {
        state.sessions.revoke(&me.session)?;
    }
    state.store.flush_async().await?;
    let only = (!everywhere).then_some(&me.session);
    state.hub.close_user(me.user, only, CloseReason::Revoked);
    Ok(())
}

/// Active accounts whose username starts with `prefix` (ignoring case),
/// sorted by name, at most `limit`, with whether each has a socket open.
/// Rate-limited per caller, as it reads the whole directory.
pub fn search(
    state: &AppState,
    me: UserId,
    prefix: &str,
    limit: usize,
) -> Result<Vec<(UserId, Arc<UserSummary>, bool)>, ApiError> {
    state.limits.search.check(&me)?;
    let mut found = state.directory.with_prefix(prefix);
    found.sort_by_key(|(_, user)| user.username.to_lowercase());
    found.truncate(limit);
    Ok(found
        .into_iter()
        .map(|(id, user)| {
            let online = !state.hub.connections_of(id).is_empty();
            (id, user, online)
        })
        .collect())
}

/// One of the caller's sessions, as their account page lists it.
pub struct SessionInfo {
    /// Names the session without revealing anything usable: the first 8
    /// bytes of its token's hash, in hex.
    pub id: String,
    pub created_at: Millis,
    /// To within a minute (uses are written back at most that often).
    pub last_used_at: Millis,
    pub user_agent: String,
    pub ip: String,
    /// The session making this request.
    pub current: bool,
}

/// The caller's live sessions, newest first.
pub fn sessions(state: &AppState, me: &Identity) -> Result<Vec<SessionInfo>, ApiError> {
    let mut out = Vec::new();
    for hash in state.store.sessions_of(me.user)? {
        let Some(s) = state.store.session(&hash)? else {
            continue;
        };
        out.push(SessionInfo {
            id: session_id(&hash),
            created_at: s.created_at,
            last_used_at: s.last_seen,
            user_agent: s.user_agent,
            ip: s.ip,
            current: hash == me.session,
        });
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    Ok(out)
}

/// Ends one of the caller's sessions (by its id from [`sessions`]) and
/// closes its sockets.
pub async fn end_session(state: &AppState, me: &Identity, id: &str) -> Result<(), ApiError> {
    let hash = state
        .store
        .sessions_of(me.user)?
        .into_iter()
        .find(|h| session_id(h) == id)
        .ok_or(ApiError::SessionNotFound)?;
    state.sessions.revoke(&hash)?;
    state.store.flush_async().await?;
    state
        .hub
        .close_user(me.user, Some(&hash), CloseReason::Revoked);
    Ok(())
}

fn session_id(hash: &TokenHash) -> String {
    crate::storage::hex(&hash.as_bytes()[..8])
}

/// Changes the caller's password; every other session ends at once (this
/// one stays, so the person who changed it is not logged out).
pub async fn change_password(
    state: &AppState,
    me: &Identity,
    current: String,
    new: String,
) -> Result<(), ApiError> {
    validate::password(&new)?;
    let mut user = confirm(state, me.user, current).await?;
    user.password_hash = state.hasher.hash(new).await?;
    state.store.put_user(&user)?;
    state.sessions.revoke_all(user.id, Some(&me.session))?;
    state.store.flush_async().await?;
    for conn in state.hub.connections_of(user.id) {
        if conn.session != me.session {
            conn.close(CloseReason::Revoked);
        }
    }
    tracing::info!(user = %user.id, "Password changed; other sessions revoked.");
    Ok(())
}

/// Changes the caller's display name and about line (`Some("")` clears
/// the display name). Every open socket hears of it (`user_updated`).
pub async fn update_profile(
    state: &AppState,
    me: &Identity,
    display_name: Option<String>,
    about: Option<String>,
) -> Result<UserRecord, ApiError> {
    let display_name = display_name
        .map(|name| match name.trim() {
            "" => Ok(None),
            name => validate::display_name(name).map(Some),
        })
        .transpose()?;
    let about = about.map(|about| validate::about(&about)).transpose()?;
    let user = state
        .store
        .update_user(me.user, |user| {
            if let Some(name) = &display_name {
                user.display_name.clone_from(name);
            }
            if let Some(about) = &about {
                user.about.clone_from(about);
            }
        })?
        .ok_or(ApiError::Unauthenticated)?;
    state.store.flush_async().await?;
    profile_changed(state, &user);
    Ok(user)
}

/// Settles a change of how someone looks (display name, about, avatar),
/// already durable: the directory learns it, and every open socket hears
/// of it (`user_updated`).
pub(super) fn profile_changed(state: &AppState, user: &UserRecord) {
    state.directory.put(user);
    state.hub.send_all(
        &ServerFrame::UserUpdated {
            user: UserView::of(user),
        },
        None,
    );
}

/// Changes the caller's email, confirming with their password.
pub async fn change_email(
    state: &AppState,
    me: &Identity,
    password: String,
    email: String,
) -> Result<UserRecord, ApiError> {
    validate::email(&email)?;
    let user = confirm(state, me.user, password).await?;
    if state.store.change_email(&user, &email)?.is_err() {
        return Err(ApiError::EmailTaken);
    }
    state.store.flush_async().await?;
    tracing::info!(user = %user.id, "Email changed.");
    state.store.user(me.user)?.ok_or(ApiError::Unauthenticated)
}

/// An administrator sets someone's password; all their sessions end.
pub async fn set_password(
    state: &AppState,
    actor: Actor,
    user: UserId,
    password: String,
) -> Result<UserRecord, ApiError> {
    actor.require_admin(state)?;
    validate::password(&password)?;
    let mut u = live_user(state, user)?;
    u.password_hash = state.hasher.hash(password).await?;
    state.store.put_user(&u)?;
    end_sessions(state, u.id)?;
    state.store.flush_async().await?;
    tracing::info!(user = %u.id, "Password set by an administrator.");
    Ok(u)
}

/// An administrator disables (or enables) an account; a disabled
/// account's sessions and sockets end at once.
pub async fn set_disabled(
    state: &AppState,
    actor: Actor,
    user: UserId,
    disabled: bool,
) -> Result<UserRecord, ApiError> {
    actor.require_admin(state)?;
    if disabled && actor == Actor::User(user) {
        return Err(ApiError::InvalidRequest(
            "Administrators cannot disable themselves.".into(),
        ));
    }
    let mut u = live_user(state, user)?;
    u.disabled = disabled;
    state.store.put_user(&u)?;
    if disabled {
        // The directory before the flush: from here on no request
        // authenticates, even one racing this change.
        state.directory.put(&u);
        end_sessions(state, u.id)?;
        state.store.flush_async().await?;
        tracing::info!(user = %u.id, "Account disabled.");
    } else {
        state.store.flush_async().await?;
        state.directory.put(&u);
        tracing::info!(user = %u.id, "Account enabled.");
    }
    Ok(u)
}

/// The caller deletes their own account, confirming with their password.
pub async fn delete_own(state: &AppState, me: &Identity, password: String) -> Result<(), ApiError> {
    confirm(state, me.user, password).await?;
    delete(state, Actor::User(me.user), me.user).await.map(drop)
}

/// Removes an account: sessions revoked, sockets closed, rooms left (the
/// other members are told); messages stay, shown as from a deleted user.
/// The account's owner, or an administrator.
pub async fn delete(state: &AppState, actor: Actor, user: UserId) -> Result<UserRecord, ApiError> {
    if actor != Actor::User(user) {
        actor.require_admin(state)?;
    }
    let u = live_user(state, user)?;
    let rooms = state.rooms.of_user(u.id);
    state.store.delete_user(&u)?;
    for room in &rooms {
        state.store.remove_member(*room, u.id)?;
    }
    state.sessions.revoke_all(u.id, None)?;
    state.store.flush_async().await?;

    if let Some(tomb) = state.store.user(u.id)? {
        state.directory.put(&tomb);
    }
    state.hub.close_user(u.id, None, CloseReason::Revoked);
    for room in rooms {
        rooms::settle_leave(state, room, &u, LeftReason::AccountDeleted);
    }
    tracing::info!(user = %u.id, ?actor, "Account deleted.");
    Ok(u)
}

/// Ends every session of a user and closes their sockets; returns how
/// many sessions there were.
pub async fn revoke_sessions(
    state: &AppState,
    actor: Actor,
    user: UserId,
) -> Result<usize, ApiError> {
    actor.require_admin(state)?;
    let u = live_user(state, user)?;
    let n = state.store.sessions_of(u.id)?.len();
    end_sessions(state, u.id)?;
    state.store.flush_async().await?;
    Ok(n)
}

/// One page of accounts, for an administrator.
pub struct AccountPage {
    pub users: Vec<UserRecord>,
    /// How many accounts match, over all pages.
    pub total: usize,
}

/// Most accounts the API shows on one page of [`list`] (the operator's
/// `user list` takes them all).
pub const LIST_LIMIT_MAX: usize = 200;

/// Live accounts (bots included) whose username or email contains `query`
/// ignoring case (every one when it is empty), sorted by username; the
/// page from `offset`, at most `limit` long.
pub fn list(
    state: &AppState,
    actor: Actor,
    query: &str,
    offset: usize,
    limit: usize,
) -> Result<AccountPage, ApiError> {
    actor.require_admin(state)?;
    let query = query.trim().to_lowercase();
    if query.chars().count() > 320 {
        return Err(ApiError::InvalidRequest(
            "The search is at most 320 characters.".into(),
        ));
    }
    let mut users = Vec::new();
    for u in state.store.users() {
        let u = u?;
        if u.deleted {
            continue;
        }
        if query.is_empty()
            || u.username.to_lowercase().contains(&query)
            || u.email.to_lowercase().contains(&query)
        {
            users.push(u);
        }
    }
    users.sort_by_cached_key(|u| u.username.to_lowercase());
    let total = users.len();
    let users = users.into_iter().skip(offset).take(limit).collect();
    Ok(AccountPage { users, total })
}

/// An administrator makes an account an administrator, or no longer one.
/// Nobody takes their own role away, so a server always keeps one.
pub async fn set_admin(
    state: &AppState,
    actor: Actor,
    user: UserId,
    admin: bool,
) -> Result<UserRecord, ApiError> {
    actor.require_admin(state)?;
    if !admin && actor == Actor::User(user) {
        return Err(ApiError::InvalidRequest(
            "Administrators cannot take their own role away; ask another administrator.".into(),
        ));
    }
    let mut u = live_user(state, user)?;
    if admin && u.bot {
        return Err(ApiError::InvalidRequest(
            "A bot cannot be an administrator.".into(),
        ));
    }
    u.admin = admin;
    state.store.put_user(&u)?;
    state.store.flush_async().await?;
    state.directory.put(&u);
    tracing::info!(user = %u.id, admin, ?actor, "Administrator role changed.");
    Ok(u)
}

/// The account, if it exists and is not deleted.
pub fn live_user(state: &AppState, user: UserId) -> Result<UserRecord, ApiError> {
    state
        .store
        .user(user)?
        .filter(|u| !u.deleted)
        .ok_or(ApiError::UserNotFound)
}

/// The caller's account, once `password` is confirmed to be theirs.
async fn confirm(state: &AppState, user: UserId, password: String) -> Result<UserRecord, ApiError> {
    let u = state.store.user(user)?.ok_or(ApiError::Unauthenticated)?;
    if !state
        .hasher
        .verify(Some(u.password_hash.clone()), password)
        .await?
    {
        return Err(ApiError::InvalidCredentials);
    }
    Ok(u)
}

/// Revokes every session of `user` and closes their sockets at once.
pub(super) fn end_sessions(state: &AppState, user: UserId) -> Result<(), ApiError> {
    state.sessions.revoke_all(user, None)?;
    state.hub.close_user(user, None, CloseReason::Revoked);
    Ok(())
}
