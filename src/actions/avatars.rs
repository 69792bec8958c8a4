//! Avatars: a user sets or removes their picture (an administrator or the
//! operator may remove anyone's); anyone signed in may see it. Setting one is two steps, because the picture is large: [`begin`]
//! takes the user's upload rate and room for the body before it is read,
//! [`set`] makes and stores the thumbnail.

use bytes::Bytes;

use super::accounts::profile_changed;
use super::Actor;
use crate::auth::Identity;
use crate::error::ApiError;
use crate::ids::{AvatarVersion, UserId};
use crate::images::UploadSlot;
use crate::state::AppState;
use crate::storage::UserRecord;

/// An upload that may go ahead: its user's rate taken, room held for its
/// body until the thumbnail is made.
pub struct Upload {
    user: UserId,
    slot: UploadSlot,
}

/// Admits one avatar upload by the caller: `busy` when too many bodies
/// are in memory already (which spends none of the caller's rate),
/// `rate_limited` past 10 a minute.
pub fn begin(state: &AppState, me: &Identity) -> Result<Upload, ApiError> {
    let slot = state.images.admit()?;
    state.limits.avatar.check(&me.user)?;
    Ok(Upload {
        user: me.user,
        slot,
    })
}

/// Makes the uploaded picture the caller's avatar (a 128×128 PNG), then
/// every open socket hears of it (`user_updated`). Returns the caller's
/// record as it now is.
pub async fn set(state: &AppState, upload: Upload, picture: Bytes) -> Result<UserRecord, ApiError> {
    let png = state.images.avatar(upload.slot, picture).await?;
    let (user, changed) = state
        .store
        .set_avatar(upload.user, Some(&png))?
        .ok_or(ApiError::Unauthenticated)?;
    if changed {
        state.store.flush_async().await?;
        profile_changed(state, &user);
        tracing::info!(user = %user.id, "Avatar set.");
    }
    Ok(user)
}

/// Removes `user`'s avatar: their own, or anyone's for an administrator
/// (a picture that should not be shown). Removing none is no change (and
/// no frame).
pub async fn remove(state: &AppState, actor: Actor, user: UserId) -> Result<(), ApiError> {
    if actor != Actor::User(user) {
        actor.require_admin(state)?;
    }
    let (user, changed) = state
        .store
        .set_avatar(user, None)?
        .ok_or(ApiError::UserNotFound)?;
    if changed {
        state.store.flush_async().await?;
        profile_changed(state, &user);
        tracing::info!(user = %user.id, ?actor, "Avatar removed.");
    }
    Ok(())
}

/// A user's avatar, its version and PNG bytes, for anyone signed in.
/// `user_not_found` for no such account (or a deleted one),
/// `avatar_not_found` for one without a picture.
pub fn image(state: &AppState, user: UserId) -> Result<(AvatarVersion, Vec<u8>), ApiError> {
    match state.directory.get(user) {
        Some(s) if !s.deleted => {}
        _ => return Err(ApiError::UserNotFound),
    }
    state.store.avatar(user)?.ok_or(ApiError::AvatarNotFound)
}
