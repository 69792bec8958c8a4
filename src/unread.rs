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
//! Cursors are the only state here not derived from the log. They move in
//! memory and are written to the store at least once a second
//! ([`crate::rooms::Rooms::take_dirty_reads`]).

use std::collections::HashMap;

use crate::ids::{Seq, UserId};
use crate::storage::records::EventKind;

/// A sorted set of seqs, appended to in order almost always.
#[derive(Debug, Default, Clone)]
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
#[derive(Debug, Default)]
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
    messages: SeqList,
    deleted: SeqList,
    room_mentions: SeqList,
    people: HashMap<UserId, Person>,
}

impl Tally {
    /// Takes one more event of the room's log into account.
    pub fn apply(&mut self, seq: Seq, kind: &EventKind) {
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

    /// Every member's cursor, for the store.
    pub fn cursors(&self) -> impl Iterator<Item = (UserId, Seq)> + '_ {
        self.people
            .iter()
            .filter_map(|(u, p)| p.read.map(|r| (*u, r)))
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
