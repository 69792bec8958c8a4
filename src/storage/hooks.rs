//! Webhooks. Incoming: `hooksecret_hook`, each hook by the SHA-256 of its
//! secret (the secret itself is shown once, when the hook is made).
//! Outgoing: `userid_callback`, each bot's callback.

use super::error::Result;
use super::records::{self, CallbackRecord, HookRecord};
use super::store::{hex, Store};
use crate::ids::{HookId, RoomId, TokenHash, UserId};

impl Store {
    pub fn put_hook(&self, secret: &TokenHash, hook: &HookRecord) -> Result<()> {
        self.inner()?
            .hooksecret_hook
            .insert(secret.as_bytes(), records::encode(hook))?;
        Ok(())
    }

    /// The hook whose secret hashes to `secret`.
    pub fn hook(&self, secret: &TokenHash) -> Result<Option<HookRecord>> {
        self.inner()?
            .hooksecret_hook
            .get(secret.as_bytes())?
            .map(|v| records::decode("hooksecret_hook", &hex(secret.as_bytes()), &v))
            .transpose()
    }

    /// Every hook of `room`, oldest first, each with its secret's hash.
    /// Hooks are few, so this scans them all.
    pub fn hooks_of(&self, room: RoomId) -> Result<Vec<(TokenHash, HookRecord)>> {
        let mut out = Vec::new();
        for kv in self.scan(|i| &i.hooksecret_hook) {
            let (k, v) = kv?;
            let hook: HookRecord = records::decode("hooksecret_hook", &hex(&k), &v)?;
            if hook.room == room {
                let mut hash = [0u8; 32];
                if k.len() == 32 {
                    hash.copy_from_slice(&k);
                }
                out.push((TokenHash(hash), hook));
            }
        }
        out.sort_by_key(|(_, h)| h.id);
        Ok(out)
    }

    /// Removes a hook of `room`; false if it has no such hook.
    pub fn remove_hook(&self, room: RoomId, id: HookId) -> Result<bool> {
        let found = self.hooks_of(room)?.into_iter().find(|(_, h)| h.id == id);
        let Some((secret, _)) = found else {
            return Ok(false);
        };
        self.inner()?.hooksecret_hook.remove(secret.as_bytes())?;
        Ok(true)
    }

    /// Sets (`Some`) or removes a bot's callback. The caller flushes.
    pub fn put_callback(&self, bot: UserId, callback: Option<&CallbackRecord>) -> Result<()> {
        let tree = &self.inner()?.userid_callback;
        match callback {
            Some(c) => tree.insert(bot.to_bytes(), records::encode(c))?,
            None => tree.remove(bot.to_bytes())?,
        };
        Ok(())
    }

    pub fn callback(&self, bot: UserId) -> Result<Option<CallbackRecord>> {
        self.inner()?
            .userid_callback
            .get(bot.to_bytes())?
            .map(|v| records::decode("userid_callback", &bot.to_string(), &v))
            .transpose()
    }

    /// Every bot's callback.
    pub fn callbacks(&self) -> Result<Vec<(UserId, CallbackRecord)>> {
        let mut out = Vec::new();
        for kv in self.scan(|i| &i.userid_callback) {
            let (k, v) = kv?;
            if let Some(bot) = UserId::from_slice(&k) {
                out.push((bot, records::decode("userid_callback", &hex(&k), &v)?));
            }
        }
        Ok(out)
    }
}
