//! What the index holds per message, and how text becomes words.
//!
//! One document per live message (its current text: an edit replaces the
//! document, a deletion removes it). No text is stored in the index: a hit
//! names its room and seq through fast fields, and the message is read from
//! the log and rendered like history.
//!
//! | field     | kind                         | holds                                         |
//! |-----------|------------------------------|-----------------------------------------------|
//! | `key`     | bytes, indexed               | room id (16) ‖ seq (8, BE): replace or delete one message |
//! | `room`    | bytes, indexed               | room id (16): the caller's rooms, a room's deletion |
//! | `author`  | bytes, indexed               | author's user id (16): `from:`                |
//! | `body`    | text with positions          | the current body, through [`analyzer`]        |
//! | `room_hi`, `room_lo` | u64, fast         | the room id's two halves, to name a hit       |
//! | `seq`     | u64, fast                    | the message's seq                             |
//! | `at`      | u64, fast                    | when it was sent (ms): recency                |

use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};
use tantivy::{TantivyDocument, Term};

use crate::ids::{RoomId, Seq, UserId};

/// The name the analyzer is registered under in the index.
pub(super) const ANALYZER: &str = "hearth";

/// Words longer than this (in bytes) are not indexed: they are noise
/// (pasted hashes, base64), and a cap bounds the term dictionary.
const LONGEST_WORD: usize = 64;

/// How text is cut into words, the same for indexing, queries and
/// highlights: runs of letters and digits, lower-cased, accents folded
/// (`café` matches `cafe`). No stemming: what matches is what was typed.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(LONGEST_WORD))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// The fields of the schema, by name.
#[derive(Clone, Copy)]
pub(super) struct Fields {
    pub key: Field,
    pub room: Field,
    pub author: Field,
    pub body: Field,
    pub room_hi: Field,
    pub room_lo: Field,
    pub seq: Field,
    pub at: Field,
}

impl Fields {
    pub fn schema() -> (Schema, Fields) {
        let mut b = Schema::builder();
        let body = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let fields = Fields {
            key: b.add_bytes_field("key", INDEXED),
            room: b.add_bytes_field("room", INDEXED),
            author: b.add_bytes_field("author", INDEXED),
            body: b.add_text_field("body", body),
            room_hi: b.add_u64_field("room_hi", FAST),
            room_lo: b.add_u64_field("room_lo", FAST),
            seq: b.add_u64_field("seq", FAST),
            at: b.add_u64_field("at", FAST),
        };
        (b.build(), fields)
    }

    pub fn key(&self, room: RoomId, seq: Seq) -> Term {
        Term::from_field_bytes(self.key, &key_bytes(room, seq))
    }

    pub fn room(&self, room: RoomId) -> Term {
        Term::from_field_bytes(self.room, &room.to_bytes())
    }

    pub fn author(&self, user: UserId) -> Term {
        Term::from_field_bytes(self.author, &user.to_bytes())
    }

    /// The document of message `seq` of `room` as it reads now.
    pub fn document(
        &self,
        room: RoomId,
        seq: Seq,
        author: UserId,
        at: u64,
        body: &str,
    ) -> TantivyDocument {
        let (hi, lo) = halves(room);
        let mut doc = TantivyDocument::default();
        doc.add_bytes(self.key, &key_bytes(room, seq));
        doc.add_bytes(self.room, &room.to_bytes());
        doc.add_bytes(self.author, &author.to_bytes());
        doc.add_text(self.body, body);
        doc.add_u64(self.room_hi, hi);
        doc.add_u64(self.room_lo, lo);
        doc.add_u64(self.seq, seq.0);
        doc.add_u64(self.at, at);
        doc
    }
}

fn key_bytes(room: RoomId, seq: Seq) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..16].copy_from_slice(&room.to_bytes());
    k[16..].copy_from_slice(&seq.0.to_be_bytes());
    k
}

/// A room id as two u64 (fast fields hold no 128-bit integers).
pub(super) fn halves(room: RoomId) -> (u64, u64) {
    let b = room.to_bytes();
    let mut hi = [0u8; 8];
    let mut lo = [0u8; 8];
    hi.copy_from_slice(&b[..8]);
    lo.copy_from_slice(&b[8..]);
    (u64::from_be_bytes(hi), u64::from_be_bytes(lo))
}

/// The room id [`halves`] split.
pub(super) fn join_halves(hi: u64, lo: u64) -> Option<RoomId> {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&hi.to_be_bytes());
    b[8..].copy_from_slice(&lo.to_be_bytes());
    RoomId::from_slice(&b)
}
