//! Accounts: `userid_user`, with `username_userid` and `email_userid`
//! keeping usernames and emails unique case-insensitively.

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::error::{Result, StorageError};
use super::records::{self, UserRecord};
use super::store::{hex, Store};
use crate::ids::UserId;

/// Why a new account could not be created.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    Username,
    Email,
}

impl Store {
    /// Creates an account, its username and email unique case-insensitively.
    pub fn create_user(&self, user: &UserRecord) -> Result<Result<(), Taken>> {
        let i = &self.inner()?;
        let id = user.id.to_bytes();
        let value = records::encode(user);
        let uname = user.username.to_lowercase();
        let email = user.email.to_lowercase();
        let res = (&i.userid_user, &i.username_userid, &i.email_userid).transaction(
            |(users, by_name, by_email)| {
                if by_name.get(uname.as_bytes())?.is_some() {
                    return Err(ConflictableTransactionError::Abort(Taken::Username));
                }
                // A bot has no email, and nothing to index.
                if !email.is_empty() && by_email.get(email.as_bytes())?.is_some() {
                    return Err(ConflictableTransactionError::Abort(Taken::Email));
                }
                by_name.insert(uname.as_bytes(), &id)?;
                if !email.is_empty() {
                    by_email.insert(email.as_bytes(), &id)?;
                }
                users.insert(&id, value.as_slice())?;
                Ok(())
            },
        );
        match res {
            Ok(()) => Ok(Ok(())),
            Err(TransactionError::Abort(taken)) => Ok(Err(taken)),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Changes an account's email, keeping emails unique ignoring case.
    /// `Err(Taken::Email)` when another account has it.
    pub fn change_email(&self, user: &UserRecord, email: &str) -> Result<Result<(), Taken>> {
        let i = &self.inner()?;
        let id = user.id.to_bytes();
        let old = user.email.to_lowercase();
        let new = email.to_lowercase();
        let mut changed = user.clone();
        changed.email = email.to_string();
        let value = records::encode(&changed);
        let res = (&i.userid_user, &i.email_userid).transaction(|(users, by_email)| {
            if let Some(holder) = by_email.get(new.as_bytes())? {
                if holder.as_ref() != id {
                    return Err(ConflictableTransactionError::Abort(Taken::Email));
                }
            }
            by_email.remove(old.as_bytes())?;
            by_email.insert(new.as_bytes(), &id)?;
            users.insert(&id, value.as_slice())?;
            Ok(())
        });
        match res {
            Ok(()) => Ok(Ok(())),
            Err(TransactionError::Abort(taken)) => Ok(Err(taken)),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    pub fn user(&self, id: UserId) -> Result<Option<UserRecord>> {
        self.inner()?
            .userid_user
            .get(id.to_bytes())?
            .map(|v| records::decode("userid_user", &id.to_string(), &v))
            .transpose()
    }

    /// Finds a live account by username or email, case-insensitively.
    pub fn user_by_login(&self, login: &str) -> Result<Option<UserRecord>> {
        let key = login.to_lowercase();
        let i = self.inner()?;
        let index = if key.contains('@') {
            &i.email_userid
        } else {
            &i.username_userid
        };
        let Some(id) = index.get(key.as_bytes())? else {
            return Ok(None);
        };
        let Some(id) = UserId::from_slice(&id) else {
            return Ok(None);
        };
        self.user(id)
    }

    /// Changes a live account's record in one transaction, so a change
    /// made meanwhile by another (an avatar set at the same moment) is
    /// kept, not overwritten. `None` when there is no such live account.
    pub fn update_user(
        &self,
        id: UserId,
        change: impl Fn(&mut UserRecord),
    ) -> Result<Option<UserRecord>> {
        let key = id.to_bytes();
        let res = self.inner()?.userid_user.transaction(|users| {
            let Some(bytes) = users.get(key)? else {
                return Ok(None);
            };
            let mut user: UserRecord = records::decode("userid_user", &id.to_string(), &bytes)
                .map_err(ConflictableTransactionError::Abort)?;
            if user.deleted {
                return Ok(None);
            }
            change(&mut user);
            users.insert(&key, records::encode(&user))?;
            Ok(Some(user))
        });
        match res {
            Ok(user) => Ok(user),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    pub fn put_user(&self, user: &UserRecord) -> Result<()> {
        self.inner()?
            .userid_user
            .insert(user.id.to_bytes(), records::encode(user))?;
        Ok(())
    }

    /// Marks an account deleted: its record stays (old messages still name an
    /// author) but its name, email, password and avatar are released.
    pub fn delete_user(&self, user: &UserRecord) -> Result<()> {
        let i = &self.inner()?;
        let mut tomb = user.clone();
        tomb.deleted = true;
        tomb.email.clear();
        tomb.password_hash.clear();
        tomb.avatar = None;
        let value = records::encode(&tomb);
        let id = user.id.to_bytes();
        let uname = user.username.to_lowercase();
        let email = user.email.to_lowercase();
        (
            &i.userid_user,
            &i.username_userid,
            &i.email_userid,
            &i.userid_avatar,
        )
            .transaction(|(users, by_name, by_email, avatars)| {
                by_name.remove(uname.as_bytes())?;
                if !email.is_empty() {
                    by_email.remove(email.as_bytes())?;
                }
                avatars.remove(&id)?;
                users.insert(&id, value.as_slice())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => StorageError::Sled(e),
                TransactionError::Abort(()) => {
                    StorageError::Sled(sled::Error::ReportableBug("delete_user aborted".into()))
                }
            })?;
        Ok(())
    }

    pub fn users(&self) -> impl Iterator<Item = Result<UserRecord>> + '_ {
        self.scan(|i| &i.userid_user).map(|kv| {
            let (k, v) = kv?;
            records::decode("userid_user", &hex(&k), &v)
        })
    }
}
