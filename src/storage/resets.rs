//! Password-reset links: `resetcode_reset`, each by the SHA-256 of the
//! link's code, like invites. A code is taken out when used, so it works
//! once.

use super::error::Result;
use super::records::{self, ResetRecord};
use super::store::{hex, Store};
use crate::ids::{Millis, TokenHash};

impl Store {
    pub fn put_reset(&self, code_hash: &TokenHash, reset: &ResetRecord) -> Result<()> {
        self.inner()?
            .resetcode_reset
            .insert(code_hash.as_bytes(), records::encode(reset))?;
        Ok(())
    }

    /// The reset a code names, if it is known and not expired; nothing is
    /// used up (see [`Store::take_reset`]).
    pub fn reset(&self, code_hash: &TokenHash, now: Millis) -> Result<Option<ResetRecord>> {
        let Some(v) = self.inner()?.resetcode_reset.get(code_hash.as_bytes())? else {
            return Ok(None);
        };
        let reset: ResetRecord =
            records::decode("resetcode_reset", &hex(code_hash.as_bytes()), &v)?;
        Ok((reset.expires_at > now).then_some(reset))
    }

    /// Removes a reset code, atomically: `true` for the one caller that
    /// removed it, so two racing uses cannot both set a password.
    pub fn take_reset(&self, code_hash: &TokenHash) -> Result<bool> {
        Ok(self
            .inner()?
            .resetcode_reset
            .remove(code_hash.as_bytes())?
            .is_some())
    }

    /// Removes expired codes; returns how many.
    pub fn sweep_resets(&self, now: Millis) -> Result<usize> {
        let mut gone = 0;
        for kv in self.scan(|i| &i.resetcode_reset) {
            let (k, v) = kv?;
            let reset: ResetRecord = records::decode("resetcode_reset", &hex(&k), &v)?;
            if reset.expires_at <= now {
                self.inner()?.resetcode_reset.remove(k)?;
                gone += 1;
            }
        }
        Ok(gone)
    }
}
