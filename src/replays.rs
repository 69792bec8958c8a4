//! Resume replays: whose turn it is to read and encode, and the frames
//! other replays of the same room already encoded.
//!
//! A reconnect storm (a network blip, a restart) brings many clients back
//! at once, most of them asking for the same recent events of the same
//! rooms. Each replayed frame is encoded once per format and kept here
//! for the next replay, with the counts of changes it was rendered at:
//! the room's (edits, deletions, reactions: [`Recent::changes`]) and the
//! directory's (names, deleted accounts: [`Directory::changes`]). A frame
//! is used only while both counts are still the same, so a replay never
//! sends what a later edit, deletion or rename has changed.
//!
//! [`Recent::changes`]: crate::recent::Recent::changes
//! [`Directory::changes`]: crate::directory::Directory::changes

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::ids::{RoomId, Seq};
use crate::protocol::Format;

/// Bytes of frames kept for replays, all rooms together.
const KEPT_BYTES: u64 = 32 << 20;

/// A kept frame not used for this long is let go.
const KEPT_IDLE: Duration = Duration::from_secs(120);

/// The counts of changes a frame was rendered at: the room's, the
/// directory's.
pub type Made = (u64, u64);

pub struct Replays {
    turns: Semaphore,
    frames: moka::sync::Cache<(RoomId, Seq, Format), Arc<Kept>>,
}

struct Kept {
    made: Made,
    /// `None`: the event has no frame of its own.
    bytes: Option<Bytes>,
}

impl Replays {
    /// `turns` replays may read and encode at once.
    pub fn new(turns: usize) -> Replays {
        Replays {
            turns: Semaphore::new(turns.max(1)),
            frames: moka::sync::Cache::builder()
                .weigher(|_, kept: &Arc<Kept>| {
                    let len = kept.bytes.as_ref().map_or(0, Bytes::len) + 64;
                    u32::try_from(len).unwrap_or(u32::MAX)
                })
                .max_capacity(KEPT_BYTES)
                .time_to_idle(KEPT_IDLE)
                .build(),
        }
    }

    /// Waits for a turn at reading and encoding.
    pub async fn turn(&self) -> SemaphorePermit<'_> {
        self.turns
            .acquire()
            .await
            .expect("the replay semaphore is never closed")
    }

    /// The frame of event `seq` if one was kept at these counts
    /// (`Some(None)`: the event has no frame).
    pub fn kept(
        &self,
        room: RoomId,
        seq: Seq,
        format: Format,
        made: Made,
    ) -> Option<Option<Bytes>> {
        self.frames
            .get(&(room, seq, format))
            .filter(|k| k.made == made)
            .map(|k| k.bytes.clone())
    }

    /// Keeps the frame of event `seq`, rendered after reading `made`.
    pub fn keep(&self, room: RoomId, seq: Seq, format: Format, made: Made, bytes: Option<Bytes>) {
        self.frames
            .insert((room, seq, format), Arc::new(Kept { made, bytes }));
    }
}
