//! Sessions: `tokenhash_session` by the SHA-256 of the token, and
//! `userid_tokenhash` to find and end every session of a user.

use super::error::Result;
use super::records::{self, SessionRecord};
use super::store::{hex, Store};
use crate::ids::UserId;

impl Store {
    pub fn put_session(&self, hash: &[u8; 32], session: &SessionRecord) -> Result<()> {
        let i = &self.inner()?;
        let mut index_key = session.user.to_bytes().to_vec();
        index_key.extend_from_slice(hash);
        i.tokenhash_session.insert(hash, records::encode(session))?;
        i.userid_tokenhash.insert(index_key, &[])?;
        Ok(())
    }

    /// Moves a session's last use forward, only if the session still
    /// exists: a use racing a logout must not bring the session back.
    pub fn touch_session(&self, hash: &[u8; 32], session: &SessionRecord) -> Result<()> {
        let bytes = records::encode(session);
        self.inner()?
            .tokenhash_session
            .fetch_and_update(hash, |old| old.map(|_| bytes.clone()))?;
        Ok(())
    }

    pub fn session(&self, hash: &[u8; 32]) -> Result<Option<SessionRecord>> {
        self.inner()?
            .tokenhash_session
            .get(hash)?
            .map(|v| records::decode("tokenhash_session", &hex(hash), &v))
            .transpose()
    }

    pub fn remove_session(&self, hash: &[u8; 32]) -> Result<Option<SessionRecord>> {
        let i = &self.inner()?;
        let Some(old) = i.tokenhash_session.remove(hash)? else {
            return Ok(None);
        };
        let rec: SessionRecord = records::decode("tokenhash_session", &hex(hash), &old)?;
        let mut index_key = rec.user.to_bytes().to_vec();
        index_key.extend_from_slice(hash);
        i.userid_tokenhash.remove(index_key)?;
        Ok(Some(rec))
    }

    /// Every session hash of one user.
    pub fn sessions_of(&self, user: UserId) -> Result<Vec<[u8; 32]>> {
        let mut out = Vec::new();
        for kv in self.inner()?.userid_tokenhash.scan_prefix(user.to_bytes()) {
            let (k, _) = kv?;
            if let Ok(hash) = <[u8; 32]>::try_from(&k[16..]) {
                out.push(hash);
            }
        }
        Ok(out)
    }
}
