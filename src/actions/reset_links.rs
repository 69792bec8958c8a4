//! Password-reset links: an administrator makes a one-time link for an
//! account; whoever opens it before it expires sets that account's
//! password, and every session of the account ends. Like invite codes,
//! the code is shown once and only its SHA-256 is kept (`resetcode_reset`).
//!
//! The link is the web UI's address with `#reset=CODE`: a fragment, so the
//! code never reaches a server log or a `Referer`.

use std::time::Duration;

use base64::Engine;
use rand::RngCore;

use super::{accounts, Actor};
use crate::auth::Token;
use crate::error::ApiError;
use crate::ids::{Millis, UserId};
use crate::state::AppState;
use crate::storage::{ResetRecord, UserRecord};
use crate::validate;

/// How long a link works when the administrator does not say.
pub const DEFAULT_VALID_FOR: Duration = Duration::from_secs(24 * 3600);
/// The longest a link may work.
pub const MAX_VALID_FOR: Duration = Duration::from_secs(7 * 24 * 3600);
/// The shortest a link may work.
pub const MIN_VALID_FOR: Duration = Duration::from_secs(60);

/// A reset link just made. The code is not stored and cannot be shown again.
pub struct ResetLink {
    pub user: UserRecord,
    pub code: String,
    pub expires_at: Millis,
}

impl ResetLink {
    /// Where the link points, relative to the server's own address.
    pub fn path(&self) -> String {
        format!("/#reset={}", self.code)
    }
}

/// An administrator makes a reset link for a live account (not a bot: a
/// bot has a token, not a password).
pub async fn create(
    state: &AppState,
    actor: Actor,
    user: UserId,
    valid_for: Option<Duration>,
) -> Result<ResetLink, ApiError> {
    actor.require_admin(state)?;
    let valid_for = valid_for.unwrap_or(DEFAULT_VALID_FOR);
    if !(MIN_VALID_FOR..=MAX_VALID_FOR).contains(&valid_for) {
        return Err(ApiError::InvalidRequest(format!(
            "A reset link works for {} to {} seconds.",
            MIN_VALID_FOR.as_secs(),
            MAX_VALID_FOR.as_secs()
        )));
    }
    let user = accounts::live_user(state, user)?;
    if user.bot {
        return Err(ApiError::InvalidRequest(
            "A bot signs in with its token; make it a new token instead.".into(),
        ));
    }
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let code = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let now = Millis::now();
    let expires_at = Millis(now.0.saturating_add(valid_for.as_millis() as u64));
    let record = ResetRecord {
        user: user.id,
        created_at: now,
        expires_at,
    };
    state.store.sweep_resets(now)?;
    state.store.put_reset(&Token::hash(&code), &record)?;
    state.store.flush_async().await?;
    tracing::info!(user = %user.id, ?actor, "Password reset link made.");
    Ok(ResetLink {
        user,
        code,
        expires_at,
    })
}

/// Sets a new password with a reset link's code; the code is used up and
/// every session of the account ends. A password that breaks the rules is
/// refused before the code is looked at, so the link still works.
pub async fn redeem(state: &AppState, code: &str, password: String) -> Result<(), ApiError> {
    validate::password(&password)?;
    let code = code.trim();
    if code.is_empty() || code.len() > 128 {
        return Err(ApiError::InvalidResetLink);
    }
    let hash = Token::hash(code);
    let reset = state
        .store
        .reset(&hash, Millis::now())?
        .ok_or(ApiError::InvalidResetLink)?;
    let mut user =
        accounts::live_user(state, reset.user).map_err(|_| ApiError::InvalidResetLink)?;
    // Hash first (slow, and may answer busy), then take the code: a busy
    // server leaves the link usable, and of two racing uses only one wins.
    user.password_hash = state.hasher.hash(password).await?;
    if !state.store.take_reset(&hash)? {
        return Err(ApiError::InvalidResetLink);
    }
    state.store.put_user(&user)?;
    accounts::end_sessions(state, user.id)?;
    state.store.flush_async().await?;
    tracing::info!(user = %user.id, "Password set with a reset link.");
    Ok(())
}
