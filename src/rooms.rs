//! The in-memory registry of rooms over the store: each room with its
//! members and durable head.
//!
//! Membership is checked on every send and every history read, so it is
//! answered from memory; the store stays the source of truth and every
//! change is written there first.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::directory::{author_view, Directory};
use crate::ids::{RoomId, Seq, UserId};
use crate::locks::{read, write};
use crate::protocol::{MemberPreview, Role, RoomView};
use crate::storage::{self, RoomRecord, Store, Visibility};

/// Members named in a room's preview.
const PREVIEW: usize = 8;

pub struct Room {
    pub record: RoomRecord,
    members: RwLock<HashSet<UserId>>,
    /// The last seq that is durable and published. Readers (history,
    /// resume) never look past it, so nothing unacknowledged is ever shown.
    head: AtomicU64,
}

impl Room {
    pub fn head(&self) -> Seq {
        Seq(self.head.load(Ordering::SeqCst))
    }

    pub(crate) fn set_head(&self, seq: Seq) {
        self.head.store(seq.0, Ordering::SeqCst);
    }

    pub fn is_member(&self, user: UserId) -> bool {
        read(&self.members).contains(&user)
    }

    pub fn member_count(&self) -> usize {
        read(&self.members).len()
    }

    pub fn members(&self) -> Vec<UserId> {
        read(&self.members).iter().copied().collect()
    }

    /// The stored message an earlier send with this `client_id` became, if
    /// it is durable. Lets a retry be answered without spending the
    /// sender's rate budget; anything newer is left to the committer.
    pub fn durable_duplicate(
        &self,
        store: &Store,
        author: UserId,
        client_id: &str,
    ) -> storage::Result<Option<(Seq, crate::storage::records::EventRecord)>> {
        let log = store.log()?;
        match log.dedup(self.record.id, author, client_id)? {
            Some(seq) if seq <= self.head() => {
                Ok(log.event(self.record.id, seq)?.map(|e| (seq, e)))
            }
            _ => Ok(None),
        }
    }

    pub fn view(&self, viewer: UserId, directory: &Directory) -> RoomView<'_> {
        let members = read(&self.members);
        let mut preview: Vec<UserId> = if self.record.visibility == Visibility::Direct {
            self.record.direct.clone()
        } else {
            members.iter().copied().collect()
        };
        if preview.len() > PREVIEW {
            preview.select_nth_unstable(PREVIEW);
            preview.truncate(PREVIEW);
        }
        preview.sort();
        let members_preview = preview
            .into_iter()
            .map(|id| MemberPreview {
                id,
                username: author_view(id, directory.get(id).as_deref())
                    .username
                    .to_string(),
            })
            .collect();
        RoomView {
            id: self.record.id,
            name: &self.record.name,
            topic: &self.record.topic,
            created_by: self.record.created_by,
            created_at: self.record.created_at.into(),
            member_count: members.len(),
            last_seq: self.head(),
            joined: members.contains(&viewer),
            visibility: self.record.visibility,
            members_preview,
        }
    }

    /// `user`'s role here, if a member: the creator owns the room.
    pub fn role(&self, user: UserId) -> Option<Role> {
        if !self.is_member(user) {
            return None;
        }
        Some(if self.record.created_by == user {
            Role::Owner
        } else if self.record.moderators.contains(&user) {
            Role::Moderator
        } else {
            Role::Member
        })
    }

    /// Whether `viewer` may know this room exists: a public room, or one
    /// they are in.
    pub fn visible_to(&self, viewer: UserId) -> bool {
        self.record.visibility == Visibility::Public || self.is_member(viewer)
    }
}

#[derive(Default)]
pub struct Rooms {
    by_id: RwLock<HashMap<RoomId, Arc<Room>>>,
    by_user: RwLock<HashMap<UserId, HashSet<RoomId>>>,
}

impl Rooms {
    /// Loads every room, membership and head from the store.
    pub fn load(store: &Store) -> storage::Result<Rooms> {
        let rooms = Rooms::default();
        let heads: HashMap<RoomId, Seq> = store.log()?.heads().collect::<Result<_, _>>()?;
        {
            let mut by_id = write(&rooms.by_id);
            for record in store.rooms() {
                let record = record?;
                let head = heads.get(&record.id).copied().unwrap_or(Seq::ZERO);
                by_id.insert(record.id, Arc::new(Room::new(record, head)));
            }
        }
        for m in store.memberships() {
            match m {
                Ok((room, user)) => {
                    rooms.add_member_in_memory(room, user);
                }
                // One damaged index entry must not keep everyone out: it
                // is skipped here and named by `hearth verify`.
                Err(e @ storage::StorageError::Corrupt { .. }) => {
                    tracing::warn!(error = %e, "Skipping a damaged membership; run `hearth verify`.");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(rooms)
    }

    pub fn get(&self, id: RoomId) -> Option<Arc<Room>> {
        read(&self.by_id).get(&id).cloned()
    }

    /// Looks a room up by the id as a client wrote it; any malformed id is
    /// simply not found.
    pub fn find(&self, id: &str) -> Option<Arc<Room>> {
        id.parse().ok().and_then(|id| self.get(id))
    }

    /// Looks a room up as `viewer` may know it: a private or direct room
    /// they are not in is not found, like one that does not exist.
    pub fn find_visible(&self, id: &str, viewer: UserId) -> Option<Arc<Room>> {
        self.find(id).filter(|r| r.visible_to(viewer))
    }

    pub fn all(&self) -> Vec<Arc<Room>> {
        let mut v: Vec<_> = read(&self.by_id).values().cloned().collect();
        v.sort_by_key(|r| r.record.id);
        v
    }

    pub fn of_user(&self, user: UserId) -> Vec<RoomId> {
        read(&self.by_user)
            .get(&user)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Adds a new room with its first members, or returns the one already
    /// there under that id (two requests racing to start the same direct
    /// room both end here).
    pub fn insert(&self, record: RoomRecord, members: &[UserId]) -> Arc<Room> {
        let room = write(&self.by_id)
            .entry(record.id)
            .or_insert_with(|| Arc::new(Room::new(record, Seq::ZERO)))
            .clone();
        for m in members {
            self.add_member_in_memory(room.record.id, *m);
        }
        room
    }

    pub fn add_member_in_memory(&self, room: RoomId, user: UserId) -> bool {
        let Some(r) = self.get(room) else {
            return false;
        };
        let added = write(&r.members).insert(user);
        write(&self.by_user).entry(user).or_default().insert(room);
        added
    }

    pub fn remove_member_in_memory(&self, room: RoomId, user: UserId) {
        if let Some(r) = self.get(room) {
            write(&r.members).remove(&user);
        }
        let mut by_user = write(&self.by_user);
        if let Some(set) = by_user.get_mut(&user) {
            set.remove(&room);
            if set.is_empty() {
                by_user.remove(&user);
            }
        }
    }

    pub fn count(&self) -> usize {
        read(&self.by_id).len()
    }

    /// Replaces a room's record (a rename), keeping members and head.
    pub fn replace_record(&self, record: RoomRecord) {
        let mut by_id = write(&self.by_id);
        let Some(old) = by_id.get(&record.id).cloned() else {
            return;
        };
        let room = Arc::new(Room {
            record,
            members: RwLock::new(read(&old.members).clone()),
            head: AtomicU64::new(old.head().0),
        });
        by_id.insert(room.record.id, room.clone());
        drop(by_id);
        // The committer may have published to the old entry after it was
        // copied; heads only grow, so take the larger.
        room.head.fetch_max(old.head().0, Ordering::SeqCst);
    }

    /// Forgets a room and its memberships; returns its members.
    pub fn remove(&self, id: RoomId) -> Vec<UserId> {
        let Some(room) = write(&self.by_id).remove(&id) else {
            return Vec::new();
        };
        let members = room.members();
        let mut by_user = write(&self.by_user);
        for user in &members {
            if let Some(set) = by_user.get_mut(user) {
                set.remove(&id);
                if set.is_empty() {
                    by_user.remove(user);
                }
            }
        }
        members
    }
}

impl Room {
    fn new(record: RoomRecord, head: Seq) -> Room {
        Room {
            record,
            members: RwLock::new(HashSet::new()),
            head: AtomicU64::new(head.0),
        }
    }
}
