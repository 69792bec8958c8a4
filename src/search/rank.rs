//! Ordering hits and cutting pages: a collector that keeps, per segment,
//! the best `limit` documents that rank after the cursor.
//!
//! The order is total, so a page boundary is exact: score (relevance only,
//! higher first), then `at` (newer first), then the room id's low half and
//! the seq (both higher first) to separate messages sent in the same
//! millisecond.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use super::query::{Cursor, Order};

/// A hit's place in the order.
#[derive(Debug, Clone, Copy)]
pub(super) struct Key {
    pub score: f32,
    pub at: u64,
    pub room_hi: u64,
    pub room_lo: u64,
    pub seq: u64,
}

impl Key {
    /// `Less` when `self` comes first.
    fn rank(&self, other: &Key) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(other.at.cmp(&self.at))
            .then(other.room_lo.cmp(&self.room_lo))
            .then(other.seq.cmp(&self.seq))
    }

    fn of_cursor(c: &Cursor) -> Key {
        Key {
            score: c.score,
            at: c.at,
            room_hi: 0,
            room_lo: c.room_lo,
            seq: c.seq,
        }
    }

    pub fn cursor(&self, order: Order) -> Cursor {
        Cursor {
            order,
            score: self.score,
            at: self.at,
            room_lo: self.room_lo,
            seq: self.seq,
        }
    }
}

/// Heap entry whose greatest is the worst kept hit.
struct Worst(Key);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.rank(&other.0)
    }
}

/// Collects the best `limit` hits after `after`, in order.
pub(super) struct Ranked {
    pub order: Order,
    pub limit: usize,
    pub after: Option<Cursor>,
}

pub(super) struct SegmentRanked {
    scored: bool,
    limit: usize,
    after: Option<Key>,
    at: Column<u64>,
    seq: Column<u64>,
    room_hi: Column<u64>,
    room_lo: Column<u64>,
    kept: BinaryHeap<Worst>,
}

impl Collector for Ranked {
    type Fruit = Vec<Key>;
    type Child = SegmentRanked;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentRanked> {
        let fast = reader.fast_fields();
        Ok(SegmentRanked {
            scored: self.order == Order::Relevance,
            limit: self.limit,
            after: self.after.as_ref().map(Key::of_cursor),
            at: fast.u64("at")?,
            seq: fast.u64("seq")?,
            room_hi: fast.u64("room_hi")?,
            room_lo: fast.u64("room_lo")?,
            kept: BinaryHeap::with_capacity(self.limit + 1),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.order == Order::Relevance
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Key>>) -> tantivy::Result<Vec<Key>> {
        let mut all: Vec<Key> = fruits.into_iter().flatten().collect();
        all.sort_by(Key::rank);
        all.truncate(self.limit);
        Ok(all)
    }
}

impl SegmentCollector for SegmentRanked {
    type Fruit = Vec<Key>;

    fn collect(&mut self, doc: DocId, score: Score) {
        let key = Key {
            score: if self.scored { score } else { 0.0 },
            at: self.at.first(doc).unwrap_or_default(),
            room_hi: self.room_hi.first(doc).unwrap_or_default(),
            room_lo: self.room_lo.first(doc).unwrap_or_default(),
            seq: self.seq.first(doc).unwrap_or_default(),
        };
        if self
            .after
            .is_some_and(|after| key.rank(&after) != Ordering::Greater)
        {
            return;
        }
        if self.kept.len() == self.limit {
            match self.kept.peek() {
                Some(worst) if key.rank(&worst.0) == Ordering::Less => {
                    self.kept.pop();
                }
                _ => return,
            }
        }
        self.kept.push(Worst(key));
    }

    fn harvest(self) -> Vec<Key> {
        let mut out: Vec<Key> = self.kept.into_iter().map(|w| w.0).collect();
        out.sort_by(Key::rank);
        out
    }
}
