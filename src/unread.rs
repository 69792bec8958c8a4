//! Read state: each member's read cursor in a room, and the counts a room
//! list shows beside it (unread messages, mentions), answered exactly
//! without reading any history.
//!
//! A room's [`Tally`] is derived from its log alone, event by event, the
//! same way when the committer appends and when the server starts and
//! replays the log ([`Tally::apply`]), so it is a pure function of the log.
//! It keeps sorted lists of seqs: every message, the deleted ones, the
//! messages that mention the whole room, and per person their own live
//! messages and the live messages of others that name them. A count after
//! a cursor is then a few binary searches, whatever the room's size:
//!
//! - unread = messages − deleted − own messages, each counted after the cursor;
//! - mentions = named − (nothing: deleted ones leave the list) + room-wide
//!   mentions − own room-wide mentions, each after the cursor.
//!
//! Deriving a tally reads every event of the room, too slow for every
//! start of a big store, so each room's tally is also kept on disk as a
//! snapshot ([`Tally::encode`]: the lists delta-encoded, about a byte per
//! message) saved now and then and at shutdown. A start loads the snapshot
//! and replays only the events after it; a store without one (older, or
//! restored) replays the whole log once. `hearth verify` checks each
//! snapshot against the log.
//!
//! Cursors are the only state here not derived from the log. They move in
//! memory and are written to the store at least once a second
//! ([`crate::rooms::Rooms::take_unsaved_reads`]), never in a snapshot.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::ids::{RoomId, Seq, UserId};
use crate::storage::log::RoomLog;
use crate::storage::records::EventKind;
use crate::storage::{self, Store};

/// A sorted set of seqs, appended to in order almost always.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct SeqList(Vec<u64>);

impl SeqList {
    /// Adds `seq`; false if it was there.
    fn add(&mut self, seq: Seq) -> bool {
        match self.0.last() {
            Some(last) if *last >= seq.0 => match self.0.binary_search(&seq.0) {
                Ok(_) => false,
                Err(at) => {
                    self.0.insert(at, seq.0);
                    true
                }
            },
            _ => {
                self.0.push(seq.0);
                true
            }
        }
    }

    fn remove(&mut self, seq: Seq) {
        if let Ok(at) = self.0.binary_search(&seq.0) {
            self.0.remove(at);
        }
    }

    /// How many seqs are greater than `seq`.
    fn after(&self, seq: Seq) -> u64 {
        (self.0.len() - self.0.partition_point(|s| *s <= seq.0)) as u64
    }
}

/// One person's share of a room's tally.
#[derive(Debug, Default, PartialEq, Eq)]
struct Person {
    /// Where they have read to; `None` while not a member.
    read: Option<Seq>,
    /// Their own messages, not deleted (never unread for them).
    own: SeqList,
    /// Others' live messages naming them (and not the whole room).
    named: SeqList,
    /// Their own live messages that mention the whole room.
    own_room_mentions: SeqList,
}

impl Person {
    /// Whether nothing but a cursor is known of them.
    fn is_blank(&self) -> bool {
        self.own.0.is_empty() && self.named.0.is_empty() && self.own_room_mentions.0.is_empty()
    }
}

/// What a member's room object says about reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadState {
    pub read_seq: Seq,
    /// Messages by others, not deleted, after `read_seq`.
    pub unread_count: u64,
    /// Of those, the ones that mention the member or the whole room.
    pub mention_count: u64,
}

/// A room's read cursors and the message lists counts are made from.
#[derive(Debug, Default)]
pub struct Tally {
    /// The last event taken into account.
    upto: Seq,
    messages: SeqList,
    deleted: SeqList,
    room_mentions: SeqList,
    people: HashMap<UserId, Person>,
    /// What the snapshot on disk covers, and when it was taken.
    saved: Option<(Seq, Instant)>,
}

/// A snapshot is due once this many events are not in it...
const SNAPSHOT_EVENTS: u64 = 10_000;
/// ...or this long after the last one, if any event is not in it.
const SNAPSHOT_AGE: Duration = Duration::from_secs(30);
/// The first byte of a snapshot: its format.
const SNAPSHOT_FORMAT: u8 = 1;

impl Tally {
    /// The last event taken into account.
    pub fn upto(&self) -> Seq {
        self.upto
    }

    /// Takes one more event of the room's log into account.
    pub fn apply(&mut self, seq: Seq, kind: &EventKind) {
        self.upto = self.upto.max(seq);
        match kind {
            EventKind::Message {
                author,
                mentions,
                mentions_room,
                ..
            } => {
                self.messages.add(seq);
                let me = self.people.entry(*author).or_default();
                me.own.add(seq);
                if *mentions_room {
                    me.own_room_mentions.add(seq);
                    self.room_mentions.add(seq);
                } else {
                    for m in mentions.iter().filter(|m| *m != author) {
                        self.people.entry(*m).or_default().named.add(seq);
                    }
                }
            }
            EventKind::Delete { target, .. } => {
                // Deletions are rare; the deleted message's author and the
                // people it named are not kept, so every list forgets it.
                if self.deleted.add(*target) {
                    self.room_mentions.remove(*target);
                    for p in self.people.values_mut() {
                        p.own.remove(*target);
                        p.named.remove(*target);
                        p.own_room_mentions.remove(*target);
                    }
                }
            }
            EventKind::Edit { .. } | EventKind::Reaction { .. } => {}
        }
    }

    /// Takes the room's events after [`Tally::upto`] up to `to` into
    /// account, reading the log a chunk at a time.
    pub fn replay(&mut self, log: &RoomLog, room: RoomId, to: Seq) -> storage::Result<()> {
        /// Events read from the log at once.
        const CHUNK: usize = 4096;
        loop {
            let events = log.range(room, self.upto.next(), to, CHUNK)?;
            for (seq, event) in &events {
                self.apply(*seq, &event.kind);
            }
            if events.len() < CHUNK || self.upto >= to {
                return Ok(());
            }
        }
    }

    /// `user` became a member with everything up to `head` read (a new
    /// member is not handed the room's past as unread). False if they
    /// already had a cursor.
    pub fn enter(&mut self, user: UserId, head: Seq) -> bool {
        let p = self.people.entry(user).or_default();
        if p.read.is_some() {
            return false;
        }
        p.read = Some(head);
        true
    }

    /// `user` is no longer a member: their cursor goes.
    pub fn forget(&mut self, user: UserId) {
        if let Some(p) = self.people.get_mut(&user) {
            p.read = None;
        }
    }

    /// Moves a member's cursor to `seq`: forward only, or exactly with
    /// `force`. The new cursor if it moved; `None` if it did not, or
    /// `user` has no cursor here.
    pub fn mark(&mut self, user: UserId, seq: Seq, force: bool) -> Option<Seq> {
        let p = self.people.get_mut(&user)?;
        let read = p.read.as_mut()?;
        if *read == seq || (!force && *read > seq) {
            return None;
        }
        *read = seq;
        Some(seq)
    }

    /// A member's cursor and counts; `None` for anyone else.
    pub fn state(&self, user: UserId) -> Option<ReadState> {
        let p = self.people.get(&user)?;
        let read = p.read?;
        let unread = self.messages.after(read) - self.deleted.after(read) - p.own.after(read);
        let mentions =
            p.named.after(read) + self.room_mentions.after(read) - p.own_room_mentions.after(read);
        Some(ReadState {
            read_seq: read,
            unread_count: unread,
            mention_count: mentions,
        })
    }

    /// A snapshot to save, if one is due (`all`: at shutdown, any change).
    /// Marks it saved; [`Tally::unsaved`] takes that back if the write fails.
    pub fn snapshot_if_due(&mut self, all: bool) -> Option<Vec<u8>> {
        let (saved, at) = self.saved.unwrap_or((Seq::ZERO, Instant::now()));
        let behind = self.upto.0.saturating_sub(saved.0);
        let due = self.saved.is_none()
            || behind >= SNAPSHOT_EVENTS
            || (all && behind > 0)
            || (behind > 0 && at.elapsed() >= SNAPSHOT_AGE);
        if !due || (self.upto == Seq::ZERO && self.saved.is_some()) {
            return None;
        }
        self.saved = Some((self.upto, Instant::now()));
        Some(self.encode())
    }

    /// The last snapshot was not written: the next save takes one.
    pub fn unsaved(&mut self) {
        self.saved = None;
    }

    /// The derived lists (never the cursors), delta-encoded: a format
    /// byte, `upto`, the room's three lists, then per person their id and
    /// three lists. A list is its length and the gaps between its seqs, each
    /// an unsigned LEB128 varint.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 2 * self.messages.0.len());
        out.push(SNAPSHOT_FORMAT);
        varint(&mut out, self.upto.0);
        for list in [&self.messages, &self.deleted, &self.room_mentions] {
            list.encode(&mut out);
        }
        // Members who never posted nor were named hold only a cursor,
        // which is not saved here.
        let mut people: Vec<_> = self.people.iter().filter(|(_, p)| !p.is_blank()).collect();
        people.sort_by_key(|(u, _)| **u);
        varint(&mut out, people.len() as u64);
        for (user, p) in people {
            out.extend_from_slice(&user.to_bytes());
            for list in [&p.own, &p.named, &p.own_room_mentions] {
                list.encode(&mut out);
            }
        }
        out
    }

    /// A tally from [`Tally::encode`]'s bytes, saved as of now; `None` if
    /// they are not one (a damaged snapshot is rebuilt from the log).
    pub fn decode(bytes: &[u8]) -> Option<Tally> {
        let mut r = Reader(bytes);
        if r.byte()? != SNAPSHOT_FORMAT {
            return None;
        }
        let upto = Seq(r.varint()?);
        let messages = SeqList::decode(&mut r)?;
        let deleted = SeqList::decode(&mut r)?;
        let room_mentions = SeqList::decode(&mut r)?;
        let n = r.varint()?;
        let mut people = HashMap::new();
        for _ in 0..n {
            let user = UserId::from_slice(r.take(16)?)?;
            let person = Person {
                read: None,
                own: SeqList::decode(&mut r)?,
                named: SeqList::decode(&mut r)?,
                own_room_mentions: SeqList::decode(&mut r)?,
            };
            people.insert(user, person);
        }
        if !r.0.is_empty() {
            return None;
        }
        Some(Tally {
            upto,
            messages,
            deleted,
            room_mentions,
            people,
            saved: Some((upto, Instant::now())),
        })
    }

    /// Whether two tallies derive the same counts (cursors aside).
    pub fn same_lists(&self, other: &Tally) -> bool {
        fn people(t: &Tally) -> Vec<(UserId, (&SeqList, &SeqList, &SeqList))> {
            let mut v: Vec<_> = t
                .people
                .iter()
                .filter(|(_, p)| !p.is_blank())
                .map(|(u, p)| (*u, (&p.own, &p.named, &p.own_room_mentions)))
                .collect();
            v.sort_by_key(|(u, _)| *u);
            v
        }
        self.upto == other.upto
            && self.messages == other.messages
            && self.deleted == other.deleted
            && self.room_mentions == other.room_mentions
            && people(self) == people(other)
    }
}

/// `hearth verify`'s check of the saved snapshots: each one decodes and
/// holds exactly what its room's log derives up to the event it covers.
/// (A deleted room's snapshot may outlive it by a second: not judged.)
pub fn check_snapshots(store: &Store) -> storage::Result<Vec<String>> {
    let log = store.log()?;
    let mut problems = Vec::new();
    let snapshots: Vec<_> = store.tallies().collect();
    for entry in snapshots {
        let (room, bytes) = match entry {
            Ok(e) => e,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        if store.room(room)?.is_none() {
            continue;
        }
        let Some(saved) = Tally::decode(&bytes) else {
            problems.push(format!("roomid_tally/{room}: not a tally snapshot"));
            continue;
        };
        let head = log.head(room)?;
        if saved.upto > head {
            problems.push(format!(
                "roomid_tally/{room}: covers seq {} past the room's head {head}",
                saved.upto
            ));
            continue;
        }
        let mut derived = Tally::default();
        derived.replay(&log, room, saved.upto)?;
        if !derived.same_lists(&saved) {
            problems.push(format!(
                "roomid_tally/{room}: differs from what the log derives up to seq {}",
                saved.upto
            ));
        }
    }
    Ok(problems)
}

impl SeqList {
    fn encode(&self, out: &mut Vec<u8>) {
        varint(out, self.0.len() as u64);
        let mut last = 0;
        for s in &self.0 {
            varint(out, s - last);
            last = *s;
        }
    }

    fn decode(r: &mut Reader<'_>) -> Option<SeqList> {
        let n = r.varint()?;
        // Each seq takes at least a byte: a length past the input is damage.
        if n > r.0.len() as u64 {
            return None;
        }
        let mut v = Vec::with_capacity(n as usize);
        let mut last: u64 = 0;
        for _ in 0..n {
            let gap = r.varint()?;
            last = last.checked_add(gap)?;
            if gap == 0 && !v.is_empty() {
                return None;
            }
            v.push(last);
        }
        Some(SeqList(v))
    }
}

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u8) -> UserId {
        UserId::from_slice(&[n; 16]).expect("16 bytes")
    }

    fn message(author: UserId, mentions: Vec<UserId>, room: bool) -> EventKind {
        EventKind::Message {
            author,
            body: "hi".into(),
            client_id: None,
            reply_to: None,
            mentions,
            mentions_room: room,
            files: Vec::new(),
        }
    }

    fn delete(target: u64, by: UserId) -> EventKind {
        EventKind::Delete {
            target: Seq(target),
            by,
            client_id: None,
        }
    }

    #[test]
    fn counts_others_live_messages_after_the_cursor() {
        let (a, b) = (user(1), user(2));
        let mut t = Tally::default();
        t.enter(a, Seq(0));
        t.enter(b, Seq(0));
        t.apply(Seq(1), &message(a, vec![], false));
        t.apply(Seq(2), &message(b, vec![a], false));
        t.apply(Seq(3), &message(b, vec![], true));
        t.apply(Seq(4), &message(a, vec![b], false));
        let sa = t.state(a).unwrap();
        assert_eq!((sa.unread_count, sa.mention_count), (2, 2));
        let sb = t.state(b).unwrap();
        assert_eq!((sb.unread_count, sb.mention_count), (2, 1));
        // Deleting b's mention of a takes it out of a's counts.
        t.apply(Seq(5), &delete(2, b));
        let sa = t.state(a).unwrap();
        assert_eq!((sa.unread_count, sa.mention_count), (1, 1));
        // Deleting an own message changes nothing for its author.
        t.apply(Seq(6), &delete(4, a));
        assert_eq!(t.state(a).unwrap().unread_count, 1);
        assert_eq!(t.state(b).unwrap().unread_count, 1);
        assert_eq!(t.mark(a, Seq(3), false), Some(Seq(3)));
        assert_eq!(t.mark(a, Seq(2), false), None);
        let sa = t.state(a).unwrap();
        assert_eq!(
            (sa.read_seq, sa.unread_count, sa.mention_count),
            (Seq(3), 0, 0)
        );
        assert_eq!(t.mark(a, Seq(0), true), Some(Seq(0)));
        assert_eq!(t.state(a).unwrap().unread_count, 1);
    }

    #[test]
    fn a_replayed_redacted_log_gives_the_same_counts() {
        let (a, b) = (user(1), user(2));
        let live = {
            let mut t = Tally::default();
            t.enter(a, Seq(0));
            t.apply(Seq(1), &message(b, vec![a], false));
            t.apply(Seq(2), &message(b, vec![], true));
            t.apply(Seq(3), &delete(1, b));
            t.apply(Seq(4), &delete(2, b));
            t.state(a)
        };
        // As stored after the deletions: the messages lost their mentions.
        let replayed = {
            let mut t = Tally::default();
            t.enter(a, Seq(0));
            t.apply(Seq(1), &message(b, vec![a], false).redacted());
            t.apply(Seq(2), &message(b, vec![], true).redacted());
            t.apply(Seq(3), &delete(1, b));
            t.apply(Seq(4), &delete(2, b));
            t.state(a)
        };
        assert_eq!(live, replayed);
        assert_eq!(live.unwrap().unread_count, 0);
        assert_eq!(live.unwrap().mention_count, 0);
    }

    #[test]
    fn a_snapshot_decodes_to_the_same_tally() {
        let (a, b) = (user(1), user(2));
        let mut t = Tally::default();
        t.enter(a, Seq(0));
        t.apply(Seq(1), &message(b, vec![a], false));
        t.apply(Seq(2), &message(a, vec![], true));
        t.apply(Seq(300), &message(b, vec![], false));
        t.apply(Seq(100_000), &delete(1, b));
        let bytes = t.encode();
        let mut back = Tally::decode(&bytes).expect("decodes");
        assert!(back.same_lists(&t));
        // Cursors are not in it.
        assert_eq!(back.state(a), None);
        back.enter(a, Seq(0));
        assert_eq!(back.state(a), t.state(a));
        // Damage is refused, not misread.
        for cut in 0..bytes.len() {
            assert!(Tally::decode(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Tally::decode(&longer).is_none());
        assert!(Tally::decode(&[2]).is_none());
    }

    #[test]
    fn snapshots_are_due_after_many_events_or_at_shutdown() {
        let mut t = Tally::default();
        assert!(t.snapshot_if_due(false).is_some(), "never saved");
        t.apply(Seq(1), &message(user(1), vec![], false));
        assert!(t.snapshot_if_due(false).is_none(), "one event, just saved");
        assert!(t.snapshot_if_due(true).is_some(), "shutdown");
        assert!(t.snapshot_if_due(true).is_none(), "nothing new");
        for s in 2..=(SNAPSHOT_EVENTS + 1) {
            t.apply(Seq(s), &message(user(1), vec![], false));
        }
        assert!(t.snapshot_if_due(false).is_some());
        t.unsaved();
        assert!(
            t.snapshot_if_due(false).is_some(),
            "a failed write is retried"
        );
    }

    #[test]
    fn non_members_have_no_state() {
        let mut t = Tally::default();
        t.apply(Seq(1), &message(user(1), vec![user(2)], false));
        assert_eq!(t.state(user(2)), None);
        assert_eq!(t.mark(user(2), Seq(1), false), None);
        t.enter(user(2), Seq(1));
        assert_eq!(t.state(user(2)).unwrap().unread_count, 0);
        t.forget(user(2));
        assert_eq!(t.state(user(2)), None);
    }
}
