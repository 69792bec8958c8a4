//! The room log: every room's events in sequence, and each message's state.
//! A room's head (how far its log goes) is its last event's seq.
//!
//! Key layout in the `roomlog` tree (all integers big-endian, so keys sort
//! in sequence order and history and resume are range scans):
//!
//! | tag  | key after the tag                              | value              |
//! |------|------------------------------------------------|--------------------|
//! | 0x00 | room id (16) ‖ seq (8)                         | [`EventRecord`]    |
//! | 0x01 | room id (16) ‖ author id (16) ‖ client_id      | seq (8)            |
//! | 0x02 | room id (16)                                   | head seq (8)       |
//! | 0x03 | room id (16) ‖ seq of a message (8)            | [`MessageState`]   |
//! | 0x04 | file id (16) ‖ room id (16) ‖ seq (8)          | empty              |
//!
//! 0x02 keys (a room's head) were written with every append until schema
//! 2, which derives a head from the last event key instead: one key fewer
//! per group and room, in the leaf every room's head shared. The migration
//! to schema 2 removes them; `hearth verify` reports one left behind.
//!
//! 0x01 keys are no longer written: a retried `client_id` is found in the
//! room's newest events ([`crate::dedup`]). Stores written before keep
//! theirs; nothing reads them but `hearth verify`, and a room's deletion
//! removes them.
//!
//! A 0x04 key says that message `seq` of the room holds the file: written
//! with the message, removed with its redaction (in the same batch), so
//! which files are in use is a pure function of the events, and a file
//! with no such key may be freed.
//!
//! An append writes the event and (for an edit, deletion or reaction) the
//! target's new state in one batch; the committer flushes
//! before it acknowledges anything, so a reader never has to reconcile
//! them. A message with no state entry was never changed.

use std::collections::{BTreeMap, HashMap};

use super::error::Result;
use super::records::{self, EventKind, EventRecord, FileRef, MessageState};
use crate::ids::{FileId, RoomId, Seq};

pub(super) const EVENT: u8 = 0x00;
pub(super) const DEDUP: u8 = 0x01;
pub(super) const HEAD: u8 = 0x02;
pub(super) const STATE: u8 = 0x03;
pub(super) const FILE_REF: u8 = 0x04;

pub struct RoomLog {
    tree: sled::Tree,
}

/// Events to append in one atomic batch.
#[derive(Default)]
pub struct AppendBatch {
    batch: sled::Batch,
    pub len: usize,
}

impl AppendBatch {
    /// Adds an event at `seq`, which becomes the room's head.
    pub fn push(&mut self, room: RoomId, seq: Seq, event: &EventRecord) {
        self.batch
            .insert(&event_key(room, seq)[..], records::encode(event));
        if let EventKind::Message { files, .. } = &event.kind {
            for f in files {
                self.batch.insert(&file_ref_key(f.id, room, seq)[..], &[]);
            }
        }
        self.len += 1;
    }

    /// Message `seq` of `room` no longer holds `files` (it was redacted).
    pub fn release_files(&mut self, room: RoomId, seq: Seq, files: &[FileRef]) {
        for f in files {
            self.batch.remove(&file_ref_key(f.id, room, seq)[..]);
        }
    }

    /// Sets what message `seq` of `room` now looks like.
    pub fn put_state(&mut self, room: RoomId, seq: Seq, state: &MessageState) {
        self.batch
            .insert(&state_key(room, seq)[..], records::encode(state));
    }

    /// Overwrites an event already in the log: a redaction blanking what a
    /// deletion must not leave behind. Its seq, id and author stay.
    pub fn redact(&mut self, room: RoomId, seq: Seq, event: &EventRecord) {
        self.batch
            .insert(&event_key(room, seq)[..], records::encode(event));
    }
}

impl RoomLog {
    pub(super) fn new(tree: sled::Tree) -> Self {
        Self { tree }
    }

    pub fn apply(&self, batch: AppendBatch) -> Result<()> {
        self.tree.apply_batch(batch.batch)?;
        Ok(())
    }

    /// The last seq of `room`, 0 for an empty room. A damaged key among its
    /// events (not 25 bytes long) is passed over, as `hearth verify`
    /// reports it, so it cannot move the head.
    pub fn head(&self, room: RoomId) -> Result<Seq> {
        let range = event_key(room, Seq(1))..=event_key(room, Seq(u64::MAX));
        for k in self.tree.range(range).keys().rev() {
            let k = k?;
            if k.len() == 25 {
                return Ok(seq_value(&k[17..]));
            }
        }
        Ok(Seq::ZERO)
    }

    /// Every room with events, and its head: two seeks per room (its first
    /// event key, then its last), whatever the log's length. A damaged
    /// event key too short to name a room is stepped over.
    pub fn heads(&self) -> impl Iterator<Item = Result<(RoomId, Seq)>> + '_ {
        let mut from = vec![EVENT];
        std::iter::from_fn(move || loop {
            let first = match self.tree.range(from.as_slice()..).keys().next()? {
                Ok(k) => k,
                Err(e) => return Some(Err(e.into())),
            };
            if first[0] != EVENT {
                return None;
            }
            let Some(room) = first.get(1..17).and_then(RoomId::from_slice) else {
                from = first.to_vec();
                from.push(0);
                continue;
            };
            // The next room's events sort after every key this room's
            // prefix starts, a damaged longer one too.
            from = match successor(&first[..17]) {
                Some(next) => next,
                None => vec![EVENT + 1],
            };
            match self.head(room) {
                Ok(Seq::ZERO) => continue,
                Ok(head) => return Some(Ok((room, head))),
                Err(e) => return Some(Err(e)),
            }
        })
    }

    /// Removes every event, dedup key and state of `room`.
    pub fn delete_room(&self, room: RoomId) -> Result<()> {
        let mut batch = sled::Batch::default();
        for tag in [EVENT, DEDUP, STATE] {
            let mut prefix = vec![tag];
            prefix.extend_from_slice(&room.to_bytes());
            for k in self.tree.scan_prefix(prefix).keys() {
                batch.remove(k?);
            }
        }
        // Its files are held by nothing now; the sweep frees them.
        for k in self.tree.scan_prefix([FILE_REF]).keys() {
            let k = k?;
            if k.get(17..33) == Some(&room.to_bytes()[..]) {
                batch.remove(k);
            }
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// The messages that hold file `id`, as (room, seq).
    pub fn file_holders(&self, id: FileId) -> Result<Vec<(RoomId, Seq)>> {
        let mut prefix = vec![FILE_REF];
        prefix.extend_from_slice(&id.to_bytes());
        let mut out = Vec::new();
        for k in self.tree.scan_prefix(prefix).keys() {
            let k = k?;
            if let (Some(room), Some(seq)) = (
                k.get(17..33).and_then(RoomId::from_slice),
                k.get(33..41).map(seq_value),
            ) {
                out.push((room, seq));
            }
        }
        Ok(out)
    }

    /// Every file hold as stored: (file, room, seq).
    pub fn stored_file_refs(&self) -> Result<std::collections::BTreeSet<(FileId, RoomId, Seq)>> {
        let mut out = std::collections::BTreeSet::new();
        for k in self.tree.scan_prefix([FILE_REF]).keys() {
            let k = k?;
            if let (Some(file), Some(room), Some(seq)) = (
                k.get(1..17).and_then(FileId::from_slice),
                k.get(17..33).and_then(RoomId::from_slice),
                k.get(33..41).map(seq_value),
            ) {
                out.insert((file, room, seq));
            }
        }
        Ok(out)
    }

    /// Every file hold the events make: each message's files (a redacted
    /// message holds none).
    pub fn derived_file_refs(&self) -> Result<std::collections::BTreeSet<(FileId, RoomId, Seq)>> {
        let mut out = std::collections::BTreeSet::new();
        for e in self.all_events() {
            let (room, seq, event) = e?;
            if let EventKind::Message { files, .. } = &event.kind {
                for f in files {
                    out.insert((f.id, room, seq));
                }
            }
        }
        Ok(out)
    }

    /// What later events made of message `seq` (the default if none).
    pub fn state(&self, room: RoomId, seq: Seq) -> Result<MessageState> {
        Ok(self
            .tree
            .get(state_key(room, seq))?
            .map(|v| records::decode("roomlog", &format!("{room}/state/{seq}"), &v))
            .transpose()?
            .unwrap_or_default())
    }

    /// The states of the messages in `from..=to` that later events
    /// changed (edited, deleted, reacted to), in one scan: a page of
    /// history reads them at once rather than one lookup per message.
    pub fn states(&self, room: RoomId, from: Seq, to: Seq) -> Result<HashMap<Seq, MessageState>> {
        let mut out = HashMap::new();
        if from > to {
            return Ok(out);
        }
        for kv in self.tree.range(state_key(room, from)..=state_key(room, to)) {
            let (k, v) = kv?;
            let seq = seq_value(&k[17..]);
            let state = records::decode("roomlog", &format!("{room}/state/{seq}"), &v)?;
            out.insert(seq, state);
        }
        Ok(out)
    }

    /// Every message state of every room, recomputed from the events alone
    /// (a pure function of the log), as a restore writes them and verify
    /// checks them.
    pub fn derived_states(&self) -> Result<BTreeMap<(RoomId, Seq), MessageState>> {
        let mut states: BTreeMap<(RoomId, Seq), MessageState> = BTreeMap::new();
        for e in self.all_events() {
            let (room, seq, event) = e?;
            if let Some(target) = event.kind.target() {
                states.entry((room, target)).or_default().apply(seq, &event);
            }
        }
        Ok(states)
    }

    /// Every event of every room, room by room, each in seq order.
    pub fn all_events(&self) -> impl Iterator<Item = Result<(RoomId, Seq, EventRecord)>> + '_ {
        self.tree.scan_prefix([EVENT]).filter_map(|kv| {
            let (k, v) = match kv {
                Ok(kv) => kv,
                Err(e) => return Some(Err(e.into())),
            };
            let (room, seq) = (
                k.get(1..17).and_then(RoomId::from_slice)?,
                k.get(17..25).map(seq_value)?,
            );
            Some(
                records::decode_lazy("roomlog", || format!("{room}/{seq}"), &v)
                    .map(|event| (room, seq, event)),
            )
        })
    }

    /// Every stored message state, as written.
    pub fn stored_states(&self) -> Result<BTreeMap<(RoomId, Seq), MessageState>> {
        let mut out = BTreeMap::new();
        for kv in self.tree.scan_prefix([STATE]) {
            let (k, v) = kv?;
            if let (Some(room), Some(seq)) = (
                k.get(1..17).and_then(RoomId::from_slice),
                k.get(17..25).map(seq_value),
            ) {
                let state = records::decode("roomlog", &format!("{room}/state/{seq}"), &v)?;
                out.insert((room, seq), state);
            }
        }
        Ok(out)
    }

    /// Writes the message states and file holds derived from the log
    /// (after a restore, which carries events only).
    pub fn rebuild_states(&self) -> Result<()> {
        let mut batch = sled::Batch::default();
        for ((room, seq), state) in self.derived_states()? {
            batch.insert(&state_key(room, seq)[..], records::encode(&state));
        }
        for (file, room, seq) in self.derived_file_refs()? {
            batch.insert(&file_ref_key(file, room, seq)[..], &[]);
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    pub fn event(&self, room: RoomId, seq: Seq) -> Result<Option<EventRecord>> {
        self.tree
            .get(event_key(room, seq))?
            .map(|v| records::decode_lazy("roomlog", || format!("{room}/{seq}"), &v))
            .transpose()
    }

    /// Events with `from <= seq <= to`, ascending, at most `limit` of the
    /// oldest.
    pub fn range(
        &self,
        room: RoomId,
        from: Seq,
        to: Seq,
        limit: usize,
    ) -> Result<Vec<(Seq, EventRecord)>> {
        self.scan(room, from, to, limit, false, |_| true)
    }

    /// The newest events with `from <= seq <= to`, at most `limit`, ascending.
    pub fn range_newest(
        &self,
        room: RoomId,
        from: Seq,
        to: Seq,
        limit: usize,
    ) -> Result<Vec<(Seq, EventRecord)>> {
        let mut out = self.scan(room, from, to, limit, true, |_| true)?;
        out.reverse();
        Ok(out)
    }

    /// Messages only (no edits, deletions or reactions) with
    /// `from <= seq <= to`, ascending, at most `limit` of the oldest.
    pub fn messages(
        &self,
        room: RoomId,
        from: Seq,
        to: Seq,
        limit: usize,
    ) -> Result<Vec<(Seq, EventRecord)>> {
        self.scan(room, from, to, limit, false, is_message)
    }

    /// The newest messages only with `from <= seq <= to`, at most `limit`,
    /// ascending.
    pub fn messages_newest(
        &self,
        room: RoomId,
        from: Seq,
        to: Seq,
        limit: usize,
    ) -> Result<Vec<(Seq, EventRecord)>> {
        let mut out = self.scan(room, from, to, limit, true, is_message)?;
        out.reverse();
        Ok(out)
    }

    /// Up to `limit` events of `from..=to` that `keep` accepts, walking
    /// down from `to` when `newest_first`.
    fn scan(
        &self,
        room: RoomId,
        from: Seq,
        to: Seq,
        limit: usize,
        newest_first: bool,
        keep: fn(&EventRecord) -> bool,
    ) -> Result<Vec<(Seq, EventRecord)>> {
        if from > to {
            return Ok(Vec::new());
        }
        let range = self.tree.range(event_key(room, from)..=event_key(room, to));
        let entries: Box<dyn Iterator<Item = _>> = if newest_first {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        let mut out = Vec::with_capacity(limit.min(256));
        for kv in entries {
            if out.len() == limit {
                break;
            }
            let (k, v) = kv?;
            let seq = seq_value(&k[17..]);
            let event: EventRecord =
                records::decode_lazy("roomlog", || format!("{room}/{seq}"), &v)?;
            if keep(&event) {
                out.push((seq, event));
            }
        }
        Ok(out)
    }
}

fn is_message(event: &EventRecord) -> bool {
    matches!(event.kind, EventKind::Message { .. })
}

pub(super) fn event_key(room: RoomId, seq: Seq) -> [u8; 25] {
    let mut k = [0u8; 25];
    k[0] = EVENT;
    k[1..17].copy_from_slice(&room.to_bytes());
    k[17..].copy_from_slice(&seq.0.to_be_bytes());
    k
}

pub(super) fn state_key(room: RoomId, seq: Seq) -> [u8; 25] {
    let mut k = event_key(room, seq);
    k[0] = STATE;
    k
}

pub(super) fn file_ref_key(file: FileId, room: RoomId, seq: Seq) -> [u8; 41] {
    let mut k = [0u8; 41];
    k[0] = FILE_REF;
    k[1..17].copy_from_slice(&file.to_bytes());
    k[17..33].copy_from_slice(&room.to_bytes());
    k[33..].copy_from_slice(&seq.0.to_be_bytes());
    k
}

/// The first key after every key that starts with `prefix`, or `None`
/// when there is none (the prefix is all 0xff).
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last < 0xff {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

pub(super) fn seq_value(bytes: &[u8]) -> Seq {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[8 - n..].copy_from_slice(&bytes[..n]);
    Seq(u64::from_be_bytes(b))
}
