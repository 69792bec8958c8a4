//! Invite codes: `invitecode_invite` by the SHA-256 of the code; and
//! password-reset codes, `resetcode_reset`, kept the same way.

use super::error::Result;
use super::records::{self, InviteRecord, ResetRecord};
use super::store::{hex, Store};
use crate::ids::{Millis, TokenHash};

impl Store {
    pub fn put_invite(&self, code_hash: &TokenHash, invite: &InviteRecord) -> Result<()> {
        self.inner()?
            .invitecode_invite
            .insert(code_hash.as_bytes(), records::encode(invite))?;
        Ok(())
    }

    /// Uses up one signup of an invite, atomically; `None` when the code is
    /// unknown, used up or expired.
    pub fn take_invite(&self, code_hash: &TokenHash, now: Millis) -> Result<Option<InviteRecord>> {
        let tree = &self.inner()?.invitecode_invite;
        loop {
            let Some(old) = tree.get(code_hash.as_bytes())? else {
                return Ok(None);
            };
            let mut invite: InviteRecord =
                records::decode("invitecode_invite", &hex(code_hash.as_bytes()), &old)?;
            if invite.uses_left == 0 || invite.expires_at.is_some_and(|t| t <= now) {
                return Ok(None);
            }
            invite.uses_left -= 1;
            let new = records::encode(&invite);
            if tree
                .compare_and_swap(code_hash.as_bytes(), Some(old), Some(new))?
                .is_ok()
            {
                return Ok(Some(invite));
            }
        }
    }

    /// Gives back a use taken by [`Store::take_invite`] whose signup failed.
    pub fn return_invite(&self, code_hash: &TokenHash) -> Result<()> {
        self.inner()?
            .invitecode_invite
            .update_and_fetch(code_hash.as_bytes(), |old| {
                let mut invite: InviteRecord = crate::codec::msgpack_from_slice(old?).ok()?;
                invite.uses_left += 1;
                Some(records::encode(&invite))
            })?;
        Ok(())
    }

    /// Every invite, with the hex of its code's hash (the only handle on
    /// an invite once its code has been shown).
    pub fn invites(&self) -> impl Iterator<Item = Result<(String, InviteRecord)>> + '_ {
        self.scan(|i| &i.invitecode_invite).map(|kv| {
            let (k, v) = kv?;
            let id = hex(&k);
            let invite = records::decode("invitecode_invite", &id, &v)?;
            Ok((id, invite))
        })
    }

    /// Removes the invite with this code hash; `false` if there was none.
    pub fn remove_invite(&self, hash: &[u8]) -> Result<bool> {
        Ok(self.inner()?.invitecode_invite.remove(hash)?.is_some())
    }

    pub fn put_reset(&self, code_hash: &TokenHash, reset: &ResetRecord) -> Result<()> {
        self.inner()?
            .resetcode_reset
            .insert(code_hash.as_bytes(), records::encode(reset))?;
        Ok(())
    }

    /// Uses up a reset code: removed atomically, so it works once. `None`
    /// when the code is unknown or used; an expired one is removed too
    /// and also gives `None`.
    pub fn take_reset(&self, code_hash: &TokenHash, now: Millis) -> Result<Option<ResetRecord>> {
        let Some(old) = self.inner()?.resetcode_reset.remove(code_hash.as_bytes())? else {
            return Ok(None);
        };
        let reset: ResetRecord =
            records::decode("resetcode_reset", &hex(code_hash.as_bytes()), &old)?;
        Ok((reset.expires_at > now).then_some(reset))
    }

    /// Every reset code's record, with the hex of its hash.
    pub fn resets(&self) -> impl Iterator<Item = Result<(String, ResetRecord)>> + '_ {
        self.scan(|i| &i.resetcode_reset).map(|kv| {
            let (k, v) = kv?;
            let id = hex(&k);
            let reset = records::decode("resetcode_reset", &id, &v)?;
            Ok((id, reset))
        })
    }
}
