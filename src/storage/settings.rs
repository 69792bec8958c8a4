//! Settings an administrator changes while the server runs, kept in
//! `meta` so they outlive a restart: `b"registration"` holds the
//! registration mode's name ("open", "invite" or "closed"). A missing key
//! means the config file's value applies.

use super::error::{Result, StorageError};
use super::store::Store;

const REGISTRATION: &[u8] = b"registration";

impl Store {
    /// The registration mode an administrator chose, by name, if any.
    pub fn registration_setting(&self) -> Result<Option<String>> {
        let Some(v) = self.inner()?.meta.get(REGISTRATION)? else {
            return Ok(None);
        };
        String::from_utf8(v.to_vec())
            .map(Some)
            .map_err(|_| StorageError::Corrupt {
                tree: "meta",
                key: "registration".into(),
                message: "not UTF-8".into(),
            })
    }

    /// Keeps an administrator's registration mode; `None` forgets it, so
    /// the config file's value applies again. Not flushed here.
    pub fn set_registration_setting(&self, mode: Option<&str>) -> Result<()> {
        let meta = &self.inner()?.meta;
        match mode {
            Some(mode) => meta.insert(REGISTRATION, mode.as_bytes())?,
            None => meta.remove(REGISTRATION)?,
        };
        Ok(())
    }
}
