//! Rooms and memberships: `roomid_room`, `roomname_roomid` (public names
//! unique case-insensitively, and one direct room per set of people: see
//! [`RoomRecord::index_key`]), and membership both ways, `roomid_userid`
//! and `userid_roomid`.

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::error::{Result, StorageError};
use super::records::{self, RoomRecord};
use super::store::{hex, tx_error, Store};
use crate::ids::{RoomId, UserId};

impl Store {
    /// Creates a room with its first members. `Err(holder)` when its index
    /// key is taken: a public room's name, or a direct room between the
    /// same people (then `holder` is that room).
    pub fn create_room(&self, room: &RoomRecord, members: &[UserId]) -> Result<Result<(), RoomId>> {
        let i = &self.inner()?;
        let id = room.id.to_bytes();
        let value = records::encode(room);
        let index = room.index_key();
        let keys: Vec<_> = members
            .iter()
            .map(|m| membership_keys(room.id, *m))
            .collect();
        let joined = room.created_at.0.to_be_bytes();
        let res = (
            &i.roomid_room,
            &i.roomname_roomid,
            &i.roomid_userid,
            &i.userid_roomid,
        )
            .transaction(|(rooms, by_name, room_users, user_rooms)| {
                if let Some(key) = &index {
                    if let Some(holder) = by_name.get(key)? {
                        let holder = RoomId::from_slice(&holder).unwrap_or(RoomId::NIL);
                        return Err(ConflictableTransactionError::Abort(holder));
                    }
                    by_name.insert(key.as_slice(), &id)?;
                }
                rooms.insert(&id, value.as_slice())?;
                for (rm, um) in &keys {
                    room_users.insert(rm, &joined)?;
                    user_rooms.insert(um, &[])?;
                }
                Ok(())
            });
        match res {
            Ok(()) => Ok(Ok(())),
            Err(TransactionError::Abort(holder)) => Ok(Err(holder)),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    pub fn rooms(&self) -> impl Iterator<Item = Result<RoomRecord>> + '_ {
        self.scan(|i| &i.roomid_room).map(|kv| {
            let (k, v) = kv?;
            records::decode("roomid_room", &hex(&k), &v)
        })
    }

    /// Every (room, user) membership.
    pub fn memberships(&self) -> impl Iterator<Item = Result<(RoomId, UserId)>> + '_ {
        self.scan(|i| &i.roomid_userid).map(|kv| {
            let (k, _) = kv?;
            // Checked before slicing: a short key must be an error, not a panic.
            match (
                k.get(..16).and_then(RoomId::from_slice),
                k.get(16..).and_then(UserId::from_slice),
            ) {
                (Some(r), Some(u)) if k.len() == 32 => Ok((r, u)),
                _ => Err(StorageError::Corrupt {
                    tree: "roomid_userid",
                    key: hex(&k),
                    message: "key is not room id ‖ user id".into(),
                }),
            }
        })
    }

    pub fn add_member(&self, room: RoomId, user: UserId) -> Result<()> {
        let i = &self.inner()?;
        let (rm, um) = membership_keys(room, user);
        let now = crate::ids::Millis::now().0.to_be_bytes();
        (&i.roomid_userid, &i.userid_roomid)
            .transaction(|(room_users, user_rooms)| {
                room_users.insert(&rm, &now)?;
                user_rooms.insert(&um, &[])?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(tx_error)
    }

    /// Ends a membership, and with it the member's notification level.
    pub fn remove_member(&self, room: RoomId, user: UserId) -> Result<()> {
        let i = &self.inner()?;
        let (rm, um) = membership_keys(room, user);
        (&i.roomid_userid, &i.userid_roomid, &i.userid_roomid_notify)
            .transaction(|(room_users, user_rooms, levels)| {
                room_users.remove(&rm)?;
                user_rooms.remove(&um)?;
                levels.remove(&um)?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(tx_error)
    }

    /// Renames a room, keeping its name index unique. `Err(())` when the
    /// new name is taken by another public room.
    pub fn rename_room(&self, room: &RoomRecord, new_name: &str) -> Result<Result<(), ()>> {
        let i = &self.inner()?;
        let id = room.id.to_bytes();
        let old = room.index_key();
        let mut renamed = room.clone();
        renamed.name = new_name.to_string();
        let new = renamed.index_key();
        let value = records::encode(&renamed);
        let res = (&i.roomid_room, &i.roomname_roomid).transaction(|(rooms, by_name)| {
            if let Some(new) = &new {
                if let Some(holder) = by_name.get(new)? {
                    if holder.as_ref() != id {
                        return Err(ConflictableTransactionError::Abort(()));
                    }
                }
            }
            if let Some(old) = &old {
                by_name.remove(old.as_slice())?;
            }
            if let Some(new) = &new {
                by_name.insert(new.as_slice(), &id)?;
            }
            rooms.insert(&id, value.as_slice())?;
            Ok(())
        });
        match res {
            Ok(()) => Ok(Ok(())),
            Err(TransactionError::Abort(())) => Ok(Err(())),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Removes a room for good: its record, name, memberships and whole log.
    /// The caller stops new appends first (the room leaves the registry).
    pub fn delete_room(&self, room: &RoomRecord) -> Result<()> {
        let i = &self.inner()?;
        let id = room.id.to_bytes();
        let members: Vec<UserId> = i
            .roomid_userid
            .scan_prefix(id)
            .keys()
            .filter_map(|k| k.ok().and_then(|k| UserId::from_slice(&k[16..])))
            .collect();
        for user in members {
            self.remove_member(room.id, user)?;
        }
        let index = room.index_key();
        (&i.roomid_room, &i.roomname_roomid)
            .transaction(|(rooms, by_name)| {
                if let Some(key) = &index {
                    by_name.remove(key.as_slice())?;
                }
                rooms.remove(&id)?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(tx_error)?;
        i.roomid_tally.remove(id)?;
        self.log()?.delete_room(room.id)
    }

    /// Rewrites a room's record whose name is unchanged (its moderators,
    /// bans or topic).
    pub fn put_room(&self, room: &RoomRecord) -> Result<()> {
        self.inner()?
            .roomid_room
            .insert(room.id.to_bytes(), records::encode(room))?;
        Ok(())
    }

    pub fn room(&self, id: RoomId) -> Result<Option<RoomRecord>> {
        self.inner()?
            .roomid_room
            .get(id.to_bytes())?
            .map(|v| records::decode("roomid_room", &id.to_string(), &v))
            .transpose()
    }
}

fn membership_keys(room: RoomId, user: UserId) -> ([u8; 32], [u8; 32]) {
    let mut rm = [0u8; 32];
    rm[..16].copy_from_slice(&room.to_bytes());
    rm[16..].copy_from_slice(&user.to_bytes());
    let mut um = [0u8; 32];
    um[..16].copy_from_slice(&user.to_bytes());
    um[16..].copy_from_slice(&room.to_bytes());
    (rm, um)
}
