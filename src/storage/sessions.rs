//! Sessions: `tokenhash_session` by the SHA-256 of the token, and
//! `userid_tokenhash` to find and end every session of a user.

use super::error::Result;
use super::records::{self, SessionRecord};
use super::store::{hex, Store};
use crate::ids::{TokenHash, UserId};

impl Store {
    pub fn put_session(&self, hash: &TokenHash, session: &SessionRecord) -> Result<()> {
        let i = &self.inner()?;
        let mut index_key = session.user.to_bytes().to_vec();
        index_key.extend_from_slice(hash.as_bytes());
        i.tokenhash_session
            .insert(hash.as_bytes(), records::encode(session))?;
        i.userid_tokenhash.insert(index_key, &[])?;
        Ok(())
    }

    /// Moves a session's last use forward, only if the session still
    /// exists: a use racing a logout must not bring the session back.
    pub fn touch_session(&self, hash: &TokenHash, session: &SessionRecord) -> Result<()> {
        let bytes = records::encode(session);
        self.inner()?
            .tokenhash_session
            .fetch_and_update(hash.as_bytes(), |old| old.map(|_| bytes.clone()))?;
        Ok(())
    }

    pub fn session(&self, hash: &TokenHash) -> Result<Option<SessionRecord>> {
        self.inner()?
            .tokenhash_session
            .get(hash.as_bytes())?
            .map(|v| records::decode("tokenhash_session", &hex(hash.as_bytes()), &v))
            .transpose()
    }

    pub fn remove_session(&self, hash: &TokenHash) -> Result<Option<SessionRecord>> {
        let i = &self.inner()?;
        let Some(old) = i.tokenhash_session.remove(hash.as_bytes())? else {
            return Ok(None);
        };
        let rec: SessionRecord = records::decode("tokenhash_session", &hex(hash.as_bytes()), &old)?;
        let mut index_key = rec.user.to_bytes().to_vec();
        index_key.extend_from_slice(hash.as_bytes());
        i.userid_tokenhash.remove(index_key)?;
        // A subscription lives as long as the session that made it.
        self.remove_push_subs_of_session(rec.user, hash)?;
        Ok(Some(rec))
    }

    /// Every session hash of one user.
    /// Sessions stored, expired ones not yet swept included (a walk over
    /// the tree: for the admin panel, not for hot paths).
    pub fn session_count(&self) -> Result<usize> {
        Ok(self.inner()?.tokenhash_session.len())
    }

    pub fn sessions_of(&self, user: UserId) -> Result<Vec<TokenHash>> {
        let mut out = Vec::new();
        for kv in self.inner()?.userid_tokenhash.scan_prefix(user.to_bytes()) {
            let (k, _) = kv?;
            if let Ok(hash) = <[u8; 32]>::try_from(&k[16..]) {
                out.push(TokenHash(hash));
            }
        }
        Ok(out)
    }
}
