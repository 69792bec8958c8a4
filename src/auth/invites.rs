//! Who may sign up: the `registration` mode, and invite codes for the
//! `invite` mode. Codes are shown once, when made; the store keeps only
//! their SHA-256, like session tokens.

use std::time::Duration;

use base64::Engine;
use rand::RngCore;

use crate::config::Registration;
use crate::error::ApiError;
use crate::ids::Millis;
use crate::storage::{self, InviteRecord, Store};

use super::Token;
use crate::ids::TokenHash;

/// Why a signup may go ahead; an invite's use is given back if it fails.
#[must_use = "an invited signup that fails must give its use back with `undo`"]
pub enum Admission {
    Open,
    Invited(TokenHash),
}

/// Checks a signup against the registration mode, using up one use of its
/// invite code when one is needed.
pub fn admit(store: &Store, mode: Registration, code: Option<&str>) -> Result<Admission, ApiError> {
    match mode {
        Registration::Open => Ok(Admission::Open),
        Registration::Closed => Err(ApiError::RegistrationClosed),
        Registration::Invite => {
            let code = code
                .map(str::trim)
                .filter(|c| !c.is_empty() && c.len() <= 128);
            let Some(code) = code else {
                return Err(ApiError::InvalidInvite);
            };
            let hash = Token::hash(code);
            match store.take_invite(&hash, Millis::now())? {
                Some(_) => Ok(Admission::Invited(hash)),
                None => Err(ApiError::InvalidInvite),
            }
        }
    }
}

/// Gives back the invite use of a signup that did not happen.
pub fn undo(store: &Store, admission: Admission) {
    if let Admission::Invited(hash) = admission {
        if let Err(e) = store.return_invite(&hash) {
            tracing::warn!(error = %e, "Could not give an invite use back.");
        }
    }
}

/// Makes a new invite code good for `uses` signups, optionally expiring.
/// Returns the code, which is not stored and cannot be shown again.
pub fn create(
    store: &Store,
    uses: u32,
    valid_for: Option<Duration>,
    note: String,
) -> storage::Result<(String, InviteRecord)> {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let code = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let now = Millis::now();
    let invite = InviteRecord {
        created_at: now,
        expires_at: valid_for.map(|d| Millis(now.0.saturating_add(d.as_millis() as u64))),
        uses_left: uses,
        note,
    };
    store.put_invite(&Token::hash(&code), &invite)?;
    store.flush()?;
    Ok((code, invite))
}
