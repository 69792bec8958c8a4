//! Read state: `userid_roomid_readseq`, where each member has read to in
//! each room, and `roomid_tally`, each room's unread tally as last saved
//! (an opaque snapshot of what [`crate::unread`] derives from the log).
//!
//! Cursors are written in batches at least once a second (they move far
//! more often than anything else a person does), so a crash can take back
//! at most that second of read position, never a message. A tally snapshot
//! may lag its room's log by any amount: what it lacks is replayed at start.

use super::error::{Result, StorageError};
use super::log::seq_value;
use super::store::{hex, Store};
use crate::ids::{RoomId, Seq, UserId};

impl Store {
    /// Every stored cursor.
    pub fn read_cursors(&self) -> impl Iterator<Item = Result<((UserId, RoomId), Seq)>> + '_ {
        self.scan(|i| &i.userid_roomid_readseq).map(|kv| {
            let (k, v) = kv?;
            match (
                k.get(..16).and_then(UserId::from_slice),
                k.get(16..).and_then(RoomId::from_slice),
            ) {
                (Some(u), Some(r)) if k.len() == 32 && v.len() == 8 => Ok(((u, r), seq_value(&v))),
                _ => Err(StorageError::Corrupt {
                    tree: "userid_roomid_readseq",
                    key: hex(&k),
                    message: "not user id ‖ room id → seq".into(),
                }),
            }
        })
    }

    /// Writes cursors (`Some`) and removes those of people no longer in the
    /// room (`None`), in one batch. The caller flushes.
    pub fn write_read_cursors(&self, cursors: &[((UserId, RoomId), Option<Seq>)]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for ((user, room), seq) in cursors {
            let mut key = [0u8; 32];
            key[..16].copy_from_slice(&user.to_bytes());
            key[16..].copy_from_slice(&room.to_bytes());
            match seq {
                Some(s) => batch.insert(&key[..], &s.0.to_be_bytes()),
                None => batch.remove(&key[..]),
            }
        }
        self.inner()?.userid_roomid_readseq.apply_batch(batch)?;
        Ok(())
    }

    /// A room's saved tally snapshot.
    pub fn tally(&self, room: RoomId) -> Result<Option<sled::IVec>> {
        Ok(self.inner()?.roomid_tally.get(room.to_bytes())?)
    }

    /// Every saved tally snapshot, for verify.
    pub fn tallies(&self) -> impl Iterator<Item = Result<(RoomId, sled::IVec)>> + '_ {
        self.scan(|i| &i.roomid_tally).map(|kv| {
            let (k, v) = kv?;
            let room = RoomId::from_slice(&k).ok_or_else(|| StorageError::Corrupt {
                tree: "roomid_tally",
                key: hex(&k),
                message: "key is not a room id".into(),
            })?;
            Ok((room, v))
        })
    }

    /// Saves tally snapshots (`None` removes a deleted room's). The caller
    /// flushes.
    pub fn put_tallies(&self, tallies: &[(RoomId, Option<Vec<u8>>)]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (room, bytes) in tallies {
            match bytes {
                Some(b) => batch.insert(&room.to_bytes()[..], &b[..]),
                None => batch.remove(&room.to_bytes()[..]),
            }
        }
        self.inner()?.roomid_tally.apply_batch(batch)?;
        Ok(())
    }

    /// Every member's chosen notification level (a byte each).
    pub fn notify_levels(&self) -> impl Iterator<Item = Result<((UserId, RoomId), u8)>> + '_ {
        self.scan(|i| &i.userid_roomid_notify).map(|kv| {
            let (k, v) = kv?;
            match (
                k.get(..16).and_then(UserId::from_slice),
                k.get(16..).and_then(RoomId::from_slice),
            ) {
                (Some(u), Some(r)) if k.len() == 32 && v.len() == 1 => Ok(((u, r), v[0])),
                _ => Err(StorageError::Corrupt {
                    tree: "userid_roomid_notify",
                    key: hex(&k),
                    message: "not user id ‖ room id → one byte".into(),
                }),
            }
        })
    }

    /// Stores (`Some`) or forgets a member's notification level. The
    /// caller flushes. Leaving a room forgets it too
    /// ([`Store::remove_member`]).
    pub fn put_notify_level(&self, user: UserId, room: RoomId, level: Option<u8>) -> Result<()> {
        let tree = &self.inner()?.userid_roomid_notify;
        let key = user_room_key(user, room);
        match level {
            Some(b) => tree.insert(key, &[b])?,
            None => tree.remove(key)?,
        };
        Ok(())
    }
}

pub(super) fn user_room_key(user: UserId, room: RoomId) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(&user.to_bytes());
    key[16..].copy_from_slice(&room.to_bytes());
    key
}
