//! Avatars: `userid_avatar`, each user's thumbnail as PNG bytes.
//!
//! | tree            | key          | value                          |
//! |-----------------|--------------|--------------------------------|
//! | `userid_avatar` | user id (16) | the PNG, 128×128, as served    |
//!
//! The user's record names the version of the PNG it goes with
//! ([`UserRecord::avatar`]); both are written in one transaction and read
//! together in one, so a reader never pairs a record with another
//! picture's bytes.

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{IVec, Transactional};

use super::error::Result;
use super::records::{self, UserRecord};
use super::store::{tx_error, Store};
use crate::ids::{AvatarVersion, UserId};

impl Store {
    /// Sets (`Some`) or removes (`None`) a live user's avatar. Returns the
    /// record as written, and whether anything changed; `None` when there
    /// is no such live account.
    pub fn set_avatar(
        &self,
        user: UserId,
        png: Option<&[u8]>,
    ) -> Result<Option<(UserRecord, bool)>> {
        let i = &self.inner()?;
        let id = user.to_bytes();
        let version = png.map(AvatarVersion::of);
        let res = (&i.userid_user, &i.userid_avatar).transaction(|(users, avatars)| {
            let Some(bytes) = users.get(id)? else {
                return Ok(None);
            };
            let mut record: UserRecord = records::decode("userid_user", &user.to_string(), &bytes)
                .map_err(ConflictableTransactionError::Abort)?;
            if record.deleted {
                return Ok(None);
            }
            let stored = avatars.get(id)?.is_some();
            if record.avatar == version && stored == png.is_some() {
                return Ok(Some((record, false)));
            }
            record.avatar = version;
            users.insert(&id, records::encode(&record))?;
            match png {
                Some(png) => avatars.insert(&id, png)?,
                None => avatars.remove(&id)?,
            };
            Ok(Some((record, true)))
        });
        match res {
            Ok(done) => Ok(done),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// A user's avatar: its version and PNG, if the user has one.
    pub fn avatar(&self, user: UserId) -> Result<Option<(AvatarVersion, Vec<u8>)>> {
        let Some((record, png)) = self.user_with_avatar(user)? else {
            return Ok(None);
        };
        let record: UserRecord = records::decode("userid_user", &user.to_string(), &record)?;
        Ok(record.avatar.zip(png.map(|png| png.to_vec())))
    }

    /// A user's stored record and avatar bytes as they are at one moment
    /// (backup and verify compare the two); `None` for no such record.
    pub(super) fn user_with_avatar(&self, user: UserId) -> Result<Option<(IVec, Option<IVec>)>> {
        let i = &self.inner()?;
        let id = user.to_bytes();
        (&i.userid_user, &i.userid_avatar)
            .transaction(|(users, avatars)| {
                let Some(record) = users.get(id)? else {
                    return Ok(None);
                };
                Ok(Some((record, avatars.get(id)?)))
            })
            .map_err(tx_error)
    }
}
