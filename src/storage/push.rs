//! Web Push: `userid_endpointhash_pushsub` holds each user's browser
//! subscriptions, and `meta` the server's VAPID signing key.
//!
//! | tree                          | key                                   | value           |
//! |-------------------------------|---------------------------------------|-----------------|
//! | `userid_endpointhash_pushsub` | user id (16) · SHA-256 of endpoint (32) | `PushSubRecord` |
//! | `meta`                        | `vapid_pkcs8`                         | PKCS#8 P-256 key |

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use super::error::Result;
use super::records::{self, PushSubRecord};
use super::store::{hex, Store};
use crate::ids::{TokenHash, UserId};

const VAPID_KEY: &[u8] = b"vapid_pkcs8";

fn key(user: UserId, endpoint: &str) -> Vec<u8> {
    let mut k = user.to_bytes().to_vec();
    k.extend_from_slice(&Sha256::digest(endpoint.as_bytes()));
    k
}

impl Store {
    /// The VAPID key pair (PKCS#8), if one was made.
    pub fn vapid_key(&self) -> Result<Option<Vec<u8>>> {
        Ok(self.inner()?.meta.get(VAPID_KEY)?.map(|v| v.to_vec()))
    }

    /// Keeps the VAPID key pair; the caller flushes.
    pub fn put_vapid_key(&self, pkcs8: &[u8]) -> Result<()> {
        self.inner()?.meta.insert(VAPID_KEY, pkcs8)?;
        Ok(())
    }

    /// Adds or replaces `user`'s subscription at its endpoint. The caller flushes.
    pub fn put_push_sub(&self, user: UserId, sub: &PushSubRecord) -> Result<()> {
        self.inner()?
            .userid_endpointhash_pushsub
            .insert(key(user, &sub.endpoint), records::encode(sub))?;
        Ok(())
    }

    /// Removes `user`'s subscription at `endpoint`; false if there was none.
    pub fn remove_push_sub(&self, user: UserId, endpoint: &str) -> Result<bool> {
        Ok(self
            .inner()?
            .userid_endpointhash_pushsub
            .remove(key(user, endpoint))?
            .is_some())
    }

    /// Every user with a subscription.
    pub fn push_subscribers(&self) -> Result<HashSet<UserId>> {
        let mut out = HashSet::new();
        for kv in self.scan(|i| &i.userid_endpointhash_pushsub) {
            let (k, _) = kv?;
            if let Some(user) = k.get(..16).and_then(UserId::from_slice) {
                out.insert(user);
            }
        }
        Ok(out)
    }

    /// Every subscription of `user`.
    pub fn push_subs_of(&self, user: UserId) -> Result<Vec<PushSubRecord>> {
        let mut out = Vec::new();
        for kv in self
            .inner()?
            .userid_endpointhash_pushsub
            .scan_prefix(user.to_bytes())
        {
            let (k, v) = kv?;
            out.push(records::decode(
                "userid_endpointhash_pushsub",
                &hex(&k),
                &v,
            )?);
        }
        Ok(out)
    }

    /// Removes the subscriptions `user` made with `session` (it ended).
    pub(super) fn remove_push_subs_of_session(
        &self,
        user: UserId,
        session: &TokenHash,
    ) -> Result<()> {
        for sub in self.push_subs_of(user)? {
            if &sub.session == session.as_bytes() {
                self.remove_push_sub(user, &sub.endpoint)?;
            }
        }
        Ok(())
    }
}
