//! Stored records are MessagePack maps read back at every start; a damaged
//! one must be an error, never a panic. (`records::decode` is this same
//! `rmp_serde::from_slice` plus naming the tree and key in the error.)
#![no_main]

use hearth::storage::records::EventRecord;
use hearth::storage::{RoomRecord, SessionRecord, UserRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rmp_serde::from_slice::<UserRecord>(data);
    let _ = rmp_serde::from_slice::<SessionRecord>(data);
    let _ = rmp_serde::from_slice::<RoomRecord>(data);
    let _ = rmp_serde::from_slice::<EventRecord>(data);
});
