//! The in-memory registry of rooms over the store: each room with its
//! members and durable head.
//!
//! Membership is checked on every send and every history read, so it is
//! answered from memory; the store stays the source of truth and every
//! change is written there first.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use crate::dedup;
use crate::directory::{author_view, Directory};
use crate::ids::{RoomId, Seq, UserId};
use crate::locks::{lock, read, write};
use crate::protocol::{MemberPreview, NotifyLevel, Role, RoomView};
use crate::recent::{ReadCounts, Recent};
use crate::storage::log::RoomLog;
use crate::storage::records::{EventKind, EventRecord};
use crate::storage::{self, RoomRecord, Store, Visibility};
use crate::unread::{ReadState, Tally};

/// Members named in a room's preview.
const PREVIEW: usize = 8;

pub struct Room {
    pub record: RoomRecord,
    /// What changes while the room lives. Shared by every version of the
    /// room's entry, so a record replaced by a rename loses no join,
    /// message or cursor made meanwhile.
    live: Arc<Live>,
}

struct Live {
    members: RwLock<HashSet<UserId>>,
    /// The durable head, and the newest events for history and resume.
    recent: Recent,
    /// Read cursors and what unread counts are made of.
    tally: Mutex<Tally>,
    /// Members' chosen notification levels (the default is not stored),
    /// with the levels each replaced lately.
    notify: Mutex<HashMap<UserId, Levels>>,
    /// The `client_id`s of the newest events, built from the log when a
    /// send first asks; `None` until then and after ten idle minutes.
    dedup: Mutex<Option<dedup::Window>>,
    dedup_window: usize,
}

/// A member's notification level (`None`: the room's default), and the
/// last few it replaced, each with the head at the change: a message is
/// notified by the level in effect when it was stored, however late the
/// push task reads it.
#[derive(Default)]
struct Levels {
    now: Option<NotifyLevel>,
    /// (head when it changed, the level before), oldest first.
    earlier: Vec<(Seq, Option<NotifyLevel>)>,
}

/// Changes of level kept per member: more within the push task's lag (a
/// few milliseconds) only blur which of them a message heard.
const LEVELS_KEPT: usize = 4;

impl Levels {
    /// The level in effect for the message at `seq`: set by the last
    /// change made while the head was still below it.
    fn at(&self, seq: Seq) -> Option<NotifyLevel> {
        self.earlier
            .iter()
            .find(|(head, _)| *head >= seq)
            .map_or(self.now, |(_, before)| *before)
    }

    /// Sets the level while the head is at `head`.
    fn set(&mut self, head: Seq, level: Option<NotifyLevel>) {
        if self.earlier.len() == LEVELS_KEPT {
            self.earlier.remove(0);
        }
        self.earlier.push((head, self.now));
        self.now = level;
    }
}

impl Room {
    /// The last seq that is durable and published. Readers (history,
    /// resume) never look past it, so nothing unacknowledged is ever shown.
    pub fn head(&self) -> Seq {
        self.live.recent.head()
    }

    /// The room's events as readers get them: the recent window, or
    /// storage.
    pub fn recent(&self) -> &Recent {
        &self.live.recent
    }

    pub fn is_member(&self, user: UserId) -> bool {
        read(&self.live.members).contains(&user)
    }

    pub fn member_count(&self) -> usize {
        read(&self.live.members).len()
    }

    pub fn members(&self) -> Vec<UserId> {
        read(&self.live.members).iter().copied().collect()
    }

    /// What `user` wants to be notified of here, if a member.
    pub fn notifications(&self, user: UserId) -> Option<NotifyLevel> {
        self.notifications_at(user, Seq(u64::MAX))
    }

    /// What `user` wanted to be notified of when the message at `seq` was
    /// stored, if a member: a level changed after the sender's ack does
    /// not apply to that message.
    pub fn notifications_at(&self, user: UserId, seq: Seq) -> Option<NotifyLevel> {
        if !self.is_member(user) {
            return None;
        }
        let chosen = lock(&self.live.notify).get(&user).and_then(|l| l.at(seq));
        Some(chosen.unwrap_or(NotifyLevel::default_for(self.record.visibility)))
    }

    /// Sets a member's level (`None`: the room's default), in memory, from
    /// the head on: messages stored before keep the level they had.
    pub fn set_notifications(&self, user: UserId, level: Option<NotifyLevel>) {
        let mut levels = lock(&self.live.notify);
        levels.entry(user).or_default().set(self.head(), level);
    }

    /// Forgets a member's levels (they left).
    fn forget_notifications(&self, user: UserId) {
        lock(&self.live.notify).remove(&user);
    }

    /// `user`'s cursor and unread counts here, if a member.
    pub fn read_state(&self, user: UserId) -> Option<ReadState> {
        lock(&self.live.tally).state(user)
    }

    /// The stored event an earlier change by `author` with this
    /// `client_id` became, if it is durable and among the room's newest
    /// `storage.dedup_window` events. Asked before a send spends the
    /// sender's rate budget, and by the committer for whatever is newer.
    pub fn durable_duplicate(
        &self,
        log: &RoomLog,
        author: UserId,
        client_id: &str,
    ) -> storage::Result<Option<(Seq, EventRecord)>> {
        let room = self.record.id;
        let seq = {
            let mut w = lock(&self.live.dedup);
            let w = match &mut *w {
                Some(w) => w,
                slot => slot.insert(dedup::Window::build(
                    log,
                    room,
                    self.head(),
                    self.live.dedup_window,
                )?),
            };
            w.get(author, client_id)
        };
        // The window keeps hashes: the event itself says whether it is ours.
        Ok(seq
            .map(|seq| log.event(room, seq).map(|e| e.map(|e| (seq, e))))
            .transpose()?
            .flatten()
            .filter(|(_, e)| dedup::is_from(e, author, client_id)))
    }

    pub fn view(&self, viewer: UserId, directory: &Directory) -> RoomView<'_> {
        let members = read(&self.live.members);
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
        drop(members);
        let read = self.read_state(viewer);
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
            member_count: self.member_count(),
            last_seq: self.head(),
            joined: self.is_member(viewer),
            visibility: self.record.visibility,
            members_preview,
            read_seq: read.map(|r| r.read_seq),
            unread_count: read.map(|r| r.unread_count),
            mention_count: read.map(|r| r.mention_count),
            notifications: self.notifications(viewer),
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
    /// Events each room's recent window holds (0: no windows).
    window: usize,
    /// Events whose `client_id`s each room remembers for deduplication.
    dedup_window: usize,
    /// History reads answered by the windows and by storage.
    pub reads: Arc<ReadCounts>,
    by_user: RwLock<HashMap<UserId, HashSet<RoomId>>>,
    /// Read cursors moved in memory and not yet written to the store.
    unsaved_reads: Mutex<HashSet<(UserId, RoomId)>>,
    /// Rooms removed whose tally snapshot may still be on disk.
    removed: Mutex<HashSet<RoomId>>,
}

/// A read cursor to write (`Some`) or remove (`None`).
pub type CursorWrite = ((UserId, RoomId), Option<Seq>);

impl Rooms {
    /// Loads every room, membership, head and read cursor from the store,
    /// and derives each room's unread tally from its log.
    /// Each room being read keeps its newest `window` events in memory;
    /// each room sent to, the `client_id`s of its newest `dedup_window`.
    pub fn load(store: &Store, window: usize, dedup_window: usize) -> storage::Result<Rooms> {
        let rooms = Rooms {
            window,
            dedup_window,
            ..Rooms::default()
        };
        let log = store.log()?;
        let heads: HashMap<RoomId, Seq> = log.heads().collect::<Result<_, _>>()?;
        {
            let mut by_id = write(&rooms.by_id);
            for record in store.rooms() {
                let record = record?;
                let head = heads.get(&record.id).copied().unwrap_or(Seq::ZERO);
                by_id.insert(
                    record.id,
                    Arc::new(Room::new(
                        record,
                        head,
                        (window, dedup_window),
                        rooms.reads.clone(),
                    )),
                );
            }
        }
        for r in read(&rooms.by_id).values() {
            *lock(&r.live.tally) = Self::load_tally(store, &log, r.record.id, r.head())?;
        }
        for m in store.memberships() {
            match m {
                Ok((room, user)) => {
                    rooms.add_member(room, user, false);
                }
                // One damaged index entry must not keep everyone out: it
                // is skipped here and named by `hearth verify`.
                Err(e @ storage::StorageError::Corrupt { .. }) => {
                    tracing::warn!(error = %e, "Skipping a damaged membership; run `hearth verify`.");
                }
                Err(e) => return Err(e),
            }
        }
        // A member with no stored cursor (their store predates read state,
        // or a crash came within a second of their join) starts with
        // everything read; a cursor of someone who left goes.
        let mut stored: HashSet<(UserId, RoomId)> = HashSet::new();
        for c in store.read_cursors() {
            let ((user, room), seq) = c?;
            match rooms.get(room) {
                Some(r) if r.is_member(user) => {
                    lock(&r.live.tally).mark(user, seq.min(r.head()), true);
                    stored.insert((user, room));
                }
                _ => {
                    lock(&rooms.unsaved_reads).insert((user, room));
                }
            }
        }
        for level in store.notify_levels() {
            let ((user, room), byte) = level?;
            if let (Some(r), Some(l)) = (rooms.get(room), NotifyLevel::from_byte(byte)) {
                if r.is_member(user) {
                    r.set_notifications(user, Some(l));
                }
            }
        }
        let mut unsaved = lock(&rooms.unsaved_reads);
        for (user, set) in read(&rooms.by_user).iter() {
            for room in set {
                if !stored.contains(&(*user, *room)) {
                    unsaved.insert((*user, *room));
                }
            }
        }
        drop(unsaved);
        Ok(rooms)
    }

    /// A room's tally: its saved snapshot, then the events after it. A
    /// missing or damaged snapshot, or one past the head (the store was
    /// restored to an older state), means replaying the whole log.
    fn load_tally(store: &Store, log: &RoomLog, room: RoomId, head: Seq) -> storage::Result<Tally> {
        let snapshot = store
            .tally(room)?
            .and_then(|bytes| Tally::decode(&bytes))
            .filter(|t| t.upto() <= head);
        let mut tally = snapshot.unwrap_or_default();
        tally.replay(log, room, head)?;
        Ok(tally)
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
            .or_insert_with(|| {
                Arc::new(Room::new(
                    record,
                    Seq::ZERO,
                    (self.window, self.dedup_window),
                    self.reads.clone(),
                ))
            })
            .clone();
        for m in members {
            self.add_member_in_memory(room.record.id, *m);
        }
        room
    }

    /// Records a durable membership; false if it was known. A new member
    /// has read everything before they came in.
    pub fn add_member_in_memory(&self, room: RoomId, user: UserId) -> bool {
        self.add_member(room, user, true)
    }

    fn add_member(&self, room: RoomId, user: UserId, save_cursor: bool) -> bool {
        let Some(r) = self.get(room) else {
            return false;
        };
        let added = write(&r.live.members).insert(user);
        write(&self.by_user).entry(user).or_default().insert(room);
        if lock(&r.live.tally).enter(user, r.head()) && save_cursor {
            lock(&self.unsaved_reads).insert((user, room));
        }
        added
    }

    pub fn remove_member_in_memory(&self, room: RoomId, user: UserId) {
        if let Some(r) = self.get(room) {
            write(&r.live.members).remove(&user);
            lock(&r.live.tally).forget(user);
            r.forget_notifications(user);
        }
        lock(&self.unsaved_reads).insert((user, room));
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

    /// Replaces a room's record (a rename, a new moderator), keeping what
    /// lives in memory: members, head and read state.
    pub fn replace_record(&self, record: RoomRecord) {
        let mut by_id = write(&self.by_id);
        let Some(old) = by_id.get(&record.id) else {
            return;
        };
        let room = Arc::new(Room {
            record,
            live: old.live.clone(),
        });
        by_id.insert(room.record.id, room);
    }

    /// Forgets a room, its memberships and cursors; returns its members.
    pub fn remove(&self, id: RoomId) -> Vec<UserId> {
        let Some(room) = write(&self.by_id).remove(&id) else {
            return Vec::new();
        };
        let members = room.members();
        lock(&self.removed).insert(id);
        let mut by_user = write(&self.by_user);
        let mut unsaved = lock(&self.unsaved_reads);
        for user in &members {
            unsaved.insert((*user, id));
            if let Some(set) = by_user.get_mut(user) {
                set.remove(&id);
                if set.is_empty() {
                    by_user.remove(user);
                }
            }
        }
        members
    }

    /// Makes a durable event visible: history and resume may read up to
    /// it, and it counts toward unread. A message moves its author's
    /// cursor to it. The committer calls this before it publishes.
    pub(crate) fn advance(&self, room: RoomId, seq: Seq, event: &EventRecord) {
        let Some(r) = self.get(room) else { return };
        r.live.recent.advance(seq, event);
        if let Some(w) = lock(&r.live.dedup).as_mut() {
            w.record(seq, event);
        }
        let mut tally = lock(&r.live.tally);
        tally.apply(seq, &event.kind);
        if let EventKind::Message { author, .. } = &event.kind {
            if tally.mark(*author, seq, false).is_some() {
                drop(tally);
                lock(&self.unsaved_reads).insert((*author, room));
            }
        }
    }

    /// Drops every room's recent window: the store was reopened after a
    /// failure, and a window may hold what never became durable.
    pub(crate) fn reset_windows(&self) {
        for r in self.all() {
            r.live.recent.reset();
            *lock(&r.live.dedup) = None;
        }
    }

    /// Rooms holding a recent window now.
    pub fn window_count(&self) -> usize {
        read(&self.by_id)
            .values()
            .filter(|r| r.live.recent.has_window())
            .count()
    }

    /// Events the dedup windows span, over every room holding one.
    pub fn dedup_window_events(&self) -> usize {
        read(&self.by_id)
            .values()
            .filter_map(|r| lock(&r.live.dedup).as_ref().map(dedup::Window::len))
            .sum()
    }

    /// Drops the recent windows no reader used for a while, so memory goes
    /// to the rooms people read.
    pub fn drop_idle_windows(&self) {
        let now = std::time::Instant::now();
        for r in read(&self.by_id).values() {
            r.live.recent.drop_if_idle(now);
            let mut dedup = lock(&r.live.dedup);
            if dedup
                .as_ref()
                .is_some_and(|w| now.saturating_duration_since(w.used) >= crate::recent::IDLE)
            {
                *dedup = None;
            }
        }
    }

    /// Moves `user`'s cursor in `room` to `seq` (at most the head):
    /// forward only unless `force`. The new state if the cursor moved.
    pub fn mark_read(&self, room: &Room, user: UserId, seq: Seq, force: bool) -> Option<ReadState> {
        let mut tally = lock(&room.live.tally);
        tally.mark(user, seq.min(room.head()), force)?;
        let state = tally.state(user);
        drop(tally);
        lock(&self.unsaved_reads).insert((user, room.record.id));
        state
    }

    /// The cursors moved since the last call, each as it is now (`None`:
    /// no longer a member), for the store.
    pub fn take_unsaved_reads(&self) -> Vec<CursorWrite> {
        let keys = std::mem::take(&mut *lock(&self.unsaved_reads));
        keys.into_iter()
            .map(|(user, room)| {
                let seq = self
                    .get(room)
                    .and_then(|r| r.read_state(user))
                    .map(|s| s.read_seq);
                ((user, room), seq)
            })
            .collect()
    }

    /// Tally snapshots that are due (`all`: every changed one, at
    /// shutdown), and removals of deleted rooms' snapshots.
    pub fn take_due_tallies(&self, all: bool) -> Vec<(RoomId, Option<Vec<u8>>)> {
        let mut out: Vec<(RoomId, Option<Vec<u8>>)> = std::mem::take(&mut *lock(&self.removed))
            .into_iter()
            .map(|r| (r, None))
            .collect();
        for r in self.all() {
            if let Some(bytes) = lock(&r.live.tally).snapshot_if_due(all) {
                out.push((r.record.id, Some(bytes)));
            }
        }
        out
    }

    /// The snapshots of a write that failed are due again.
    pub fn keep_due_tallies(&self, failed: &[(RoomId, Option<Vec<u8>>)]) {
        for (room, bytes) in failed {
            match (bytes, self.get(*room)) {
                (Some(_), Some(r)) => lock(&r.live.tally).unsaved(),
                (None, _) => {
                    lock(&self.removed).insert(*room);
                }
                (Some(_), None) => {}
            }
        }
    }

    /// Puts back the cursors of a write that failed; the next write takes
    /// them as they are then.
    pub fn keep_unsaved_reads(&self, writes: &[CursorWrite]) {
        let mut unsaved = lock(&self.unsaved_reads);
        unsaved.extend(writes.iter().map(|(key, _)| *key));
    }
}

impl Room {
    /// `windows`: events of the recent window, and of the dedup window.
    fn new(
        record: RoomRecord,
        head: Seq,
        (window, dedup_window): (usize, usize),
        reads: Arc<ReadCounts>,
    ) -> Room {
        Room {
            record,
            live: Arc::new(Live {
                members: RwLock::new(HashSet::new()),
                recent: Recent::new(head, window, reads),
                tally: Mutex::new(Tally::default()),
                notify: Mutex::new(HashMap::new()),
                dedup: Mutex::new(None),
                dedup_window,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Changes made at heads 4 and 6 (to `None`, then back to `Mentions`):
    /// messages up to 4 heard the level before both, 5 and 6 the one set
    /// at 4, and later ones the newest, even when read after every change.
    #[test]
    fn a_message_hears_the_level_in_effect_when_it_was_stored() {
        let mut l = Levels::default();
        l.set(Seq(4), Some(NotifyLevel::None));
        l.set(Seq(6), Some(NotifyLevel::Mentions));
        assert_eq!(l.at(Seq(3)), None);
        assert_eq!(l.at(Seq(4)), None);
        assert_eq!(l.at(Seq(5)), Some(NotifyLevel::None));
        assert_eq!(l.at(Seq(6)), Some(NotifyLevel::None));
        assert_eq!(l.at(Seq(7)), Some(NotifyLevel::Mentions));
        // Only the last few changes are kept; the oldest go first.
        for head in 7..7 + LEVELS_KEPT as u64 {
            l.set(Seq(head), Some(NotifyLevel::All));
        }
        assert_eq!(l.earlier.len(), LEVELS_KEPT);
        assert_eq!(l.at(Seq(100)), Some(NotifyLevel::All));
    }
}
