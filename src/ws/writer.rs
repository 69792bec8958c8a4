//! The one writer of a connection: it drains the whole outbox at each
//! wake-up and writes it with vectored writes, so a burst of fan-out costs
//! about one syscall per connection rather than one per frame.

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::hub::{Outbox, Piece};
use crate::ids::{TokenHash, UserId};
use crate::protocol::Format;
use crate::state::AppState;
use crate::wire::{self, CloseReason};

/// How long the final frames and the close frame may take to go out.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Frames per vectored write (well under the kernel's IOV_MAX of 1024).
const IOV_BATCH: usize = 64;

/// How a connection's writer paces itself. Heartbeat pings are not the
/// writer's: the connection's reader queues them on the timer it already
/// keeps (see `connection.rs`), so an idle writer holds no timer of its own.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// A write blocked longer than this means the peer stopped reading: it
    /// is cut off (1013) so its queue does not grow, and resumes later.
    pub stall: Duration,
    /// Minimum time between two writes of room events. The first frame
    /// after a quiet spell goes out at once; events that follow within this
    /// window wait and go out together, so under load one syscall carries
    /// many frames and an idle writer is not woken once per delivery. A
    /// reply to the client (ack, error, pong) ends the window early.
    pub coalesce: Duration,
}

/// Creates a connection's outbox and spawns its writer, paced by the
/// configuration (`coalesce` given separately: the echo endpoint uses 0).
pub fn start<W: AsyncWrite + Unpin + Send + 'static>(
    io: W,
    state: &AppState,
    user: UserId,
    session: TokenHash,
    format: Format,
    coalesce: Duration,
) -> (Arc<Outbox>, tokio::task::JoinHandle<()>) {
    let ws = &state.config.websocket;
    let outbox = Outbox::new(
        state.hub.next_conn_id(),
        user,
        session,
        format,
        // Not closed by the shutdown token: at shutdown the hub closes every
        // socket, after the listener is gone (see `lib.rs`).
        ws.outbound_queue_frames,
    );
    let pacing = Pacing {
        stall: ws.write_timeout,
        coalesce,
    };
    let writer = tokio::spawn(run(io, outbox.clone(), pacing));
    (outbox, writer)
}

/// Writes the connection's frames until it closes.
///
/// Not an `async fn`: the returned future captures its arguments and uses
/// them in place, rather than keeping them beside copies of its own (every
/// idle connection keeps this future whole).
pub fn run<W: AsyncWrite + Unpin>(
    io: W,
    outbox: Arc<Outbox>,
    pacing: Pacing,
) -> impl std::future::Future<Output = ()> {
    let mut io = io;
    async move {
        // Empty until the first frames; it keeps its capacity after them.
        let mut batch: Vec<Piece> = Vec::new();
        // When the last write was: events that arrive within the coalescing
        // window after it wait for one write together.
        let mut last_write: Option<tokio::time::Instant> = None;
        loop {
            let drained = outbox.drain(&mut batch, true);
            if let Some(reason) = drained.close {
                if reason == CloseReason::TooSlow || reason == CloseReason::Gone {
                    // A slow or gone peer gets nothing more; the socket is dropped.
                    batch.clear();
                }
                if let Some((code, why)) = reason.frame() {
                    batch.push(Piece::Own(u64::MAX, wire::close(code, why)));
                }
                let _ = tokio::time::timeout(CLOSE_GRACE, async {
                    write_all(&mut io, &batch).await?;
                    io.shutdown().await
                })
                .await;
                return;
            }
            if batch.is_empty() {
                // Parked: the next event of one of its rooms, a reply or a
                // heartbeat ping wakes it.
                outbox.wait().await;
                let window_end = last_write.map(|t| t + pacing.coalesce);
                if let Some(end) = window_end.filter(|e| *e > tokio::time::Instant::now()) {
                    // Woken within the window: the events wait for its end
                    // (they do not wake the writer again, it is not parked);
                    // a reply or a close ends it early.
                    while !outbox.has_reply_or_close() {
                        tokio::select! {
                            biased;
                            _ = tokio::time::sleep_until(end) => break,
                            _ = outbox.wait() => {}
                        }
                    }
                }
                continue;
            }
            let written = {
                let write = write_all(&mut io, &batch);
                tokio::pin!(write);
                // The write first: one that completes at once (the usual
                // case) never registers for the close's wake-up.
                tokio::select! {
                    biased;
                    r = tokio::time::timeout(pacing.stall, &mut write) => match r {
                        Ok(r) => r,
                        Err(_) => {
                            outbox.close(CloseReason::TooSlow);
                            return;
                        }
                    },
                    // Closed while the write is blocked: a peer being cut off
                    // gets nothing more; any other close lets the write finish.
                    _ = outbox.closing() => match outbox.close_reason() {
                        Some(CloseReason::TooSlow | CloseReason::Gone) | None => return,
                        Some(_) => match tokio::time::timeout(CLOSE_GRACE, &mut write).await {
                            Ok(r) => r,
                            Err(_) => return,
                        },
                    },
                }
            };
            batch.clear();
            last_write = Some(tokio::time::Instant::now());
            outbox.drained();
            if written.is_err() {
                outbox.close(CloseReason::Gone);
                return;
            }
        }
    }
}

/// Writes every frame, in order, in as few syscalls as the socket allows.
///
/// The slices of each vectored write are built on the stack at each poll,
/// from a position (piece, frame in it, offset into that frame): the
/// writer's future, which every idle connection keeps whole, then holds
/// three counters rather than an array of [`IOV_BATCH`] slices (1 KiB).
async fn write_all<W: AsyncWrite + Unpin>(io: &mut W, pieces: &[Piece]) -> std::io::Result<()> {
    let mut at = At::default();
    while at.piece < pieces.len() {
        let n = std::future::poll_fn(|cx| {
            let mut slices = [IoSlice::new(&[]); IOV_BATCH];
            let mut count = 0;
            let (mut piece, mut frame, mut offset) = (at.piece, at.frame, at.offset);
            'fill: while let Some(p) = pieces.get(piece) {
                while frame < p.frames() {
                    if count == IOV_BATCH {
                        break 'fill;
                    }
                    slices[count] = IoSlice::new(&p.frame(frame)[offset..]);
                    count += 1;
                    (frame, offset) = (frame + 1, 0);
                }
                (piece, frame) = (piece + 1, 0);
            }
            Pin::new(&mut *io).poll_write_vectored(cx, &slices[..count])
        })
        .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        at = at.advance(pieces, n);
    }
    io.flush().await
}

/// Where writing resumes: the piece, the frame in it, the offset into that
/// frame.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct At {
    piece: usize,
    frame: usize,
    offset: usize,
}

impl At {
    /// The position `written` bytes further on (never the end of a piece:
    /// past its last frame is the start of the next).
    fn advance(mut self, pieces: &[Piece], mut written: usize) -> At {
        while let Some(p) = pieces.get(self.piece) {
            if self.frame == p.frames() {
                (self.piece, self.frame) = (self.piece + 1, 0);
                continue;
            }
            if written == 0 {
                break;
            }
            let left = p.frame(self.frame).len() - self.offset;
            if written < left {
                self.offset += written;
                break;
            }
            written -= left;
            (self.frame, self.offset) = (self.frame + 1, 0);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{ConnId, Hub};
    use crate::ids::{RoomId, Seq, TokenHash, UserId};
    use crate::protocol::{Format, ServerFrame};
    use crate::wire::Encoded;
    use bytes::Bytes;

    fn own(frames: &[&'static [u8]]) -> Vec<Piece> {
        frames
            .iter()
            .enumerate()
            .map(|(i, f)| Piece::Own(i as u64, Bytes::from_static(f)))
            .collect()
    }

    /// Writes `pieces` through a pipe that takes 7 bytes at a time.
    async fn through_a_narrow_pipe(pieces: &[Piece]) -> Vec<u8> {
        let (mut tx, mut rx) = tokio::io::duplex(7);
        let reading = tokio::spawn(async move {
            let mut got = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut rx, &mut got)
                .await
                .map(|_| got)
        });
        write_all(&mut tx, pieces).await.expect("written");
        drop(tx);
        reading.await.expect("joined").expect("read")
    }

    #[tokio::test]
    async fn short_vectored_writes_resume_mid_frame_and_keep_the_order() {
        // More frames than one vectored write takes.
        let pieces: Vec<Piece> = (0..200u32)
            .map(|i| {
                let frame = Bytes::from(format!("frame {i};").repeat(1 + i as usize % 3));
                Piece::Own(u64::from(i), frame)
            })
            .collect();
        let want: Vec<u8> = pieces.iter().flat_map(|p| p.frame(0).to_vec()).collect();
        assert_eq!(through_a_narrow_pipe(&pieces).await, want);
    }

    #[tokio::test]
    async fn runs_of_a_room_feed_are_written_whole_across_segments() {
        // 100 events of one room: several feed segments, each taken as one
        // run, mixed with the connection's own frames.
        let hub = Hub::new();
        let room = RoomId::generate();
        let outbox = Outbox::new(
            ConnId(1),
            UserId::generate(),
            TokenHash([0; 32]),
            Format::Json,
            4096,
        );
        hub.connect(&outbox, &[room]);
        outbox.release(&std::collections::HashMap::new());
        let mut want = Vec::new();
        for seq in 1..=100u64 {
            let error = format!("event {seq}");
            let frame = ServerFrame::Error {
                code: "x",
                message: &error,
                client_id: None,
            };
            let encoded = Encoded::new(&frame);
            want.extend_from_slice(&encoded.for_format(Format::Json));
            hub.publish(room, Seq(seq), &encoded);
            if seq % 40 == 0 {
                let own = Bytes::from(format!("own {seq}"));
                want.extend_from_slice(&own);
                outbox.push(own);
            }
        }
        let mut pieces = Vec::new();
        outbox.drain(&mut pieces, true);
        assert!(
            pieces.len() < 20,
            "runs, not a piece per frame: {}",
            pieces.len()
        );
        assert_eq!(through_a_narrow_pipe(&pieces).await, want);
    }

    #[test]
    fn advancing_skips_whole_frames_and_stops_inside_one() {
        let pieces = own(&[b"abc", b"de", b"f"]);
        let at = |piece, frame, offset| At {
            piece,
            frame,
            offset,
        };
        assert_eq!(at(0, 0, 0).advance(&pieces, 2), at(0, 0, 2));
        assert_eq!(at(0, 0, 2).advance(&pieces, 1), at(1, 0, 0));
        assert_eq!(at(0, 0, 1).advance(&pieces, 3), at(1, 0, 1));
        assert_eq!(at(1, 0, 1).advance(&pieces, 2), at(3, 0, 0));
    }
}
