//! The one writer of a connection: it drains the whole outbox at each
//! wake-up and writes it with vectored writes, so a burst of fan-out costs
//! about one syscall per connection rather than one per frame.

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::hub::Outbox;
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
        let mut batch: Vec<(u64, Bytes)> = Vec::new();
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
                    batch.push((u64::MAX, wire::close(code, why)));
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
                tokio::select! {
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
/// from a frame index and an offset into that frame: the writer's future,
/// which every idle connection keeps whole, then holds two counters rather
/// than an array of [`IOV_BATCH`] slices (1 KiB).
async fn write_all<W: AsyncWrite + Unpin>(
    io: &mut W,
    frames: &[(u64, Bytes)],
) -> std::io::Result<()> {
    // The first frame not yet fully written, and how much of it is.
    let (mut next, mut offset) = (0, 0);
    while next < frames.len() {
        let n = std::future::poll_fn(|cx| {
            let mut slices = [IoSlice::new(&[]); IOV_BATCH];
            let mut count = 0;
            for (slot, (_, frame)) in slices.iter_mut().zip(&frames[next..]) {
                *slot = IoSlice::new(if count == 0 { &frame[offset..] } else { frame });
                count += 1;
            }
            Pin::new(&mut *io).poll_write_vectored(cx, &slices[..count])
        })
        .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        (next, offset) = advance(frames, next, offset, n);
    }
    io.flush().await
}

/// Where writing resumes after `written` more bytes from frame `next` at
/// `offset`.
fn advance(
    frames: &[(u64, Bytes)],
    mut next: usize,
    mut offset: usize,
    mut written: usize,
) -> (usize, usize) {
    while let Some((_, frame)) = frames.get(next) {
        let left = frame.len() - offset;
        if written < left {
            return (next, offset + written);
        }
        written -= left;
        next += 1;
        offset = 0;
    }
    (next, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn short_vectored_writes_resume_mid_frame_and_keep_the_order() {
        // More frames than one vectored write takes, through a pipe that
        // accepts 7 bytes at a time.
        let frames: Vec<(u64, Bytes)> = (0..200u32)
            .map(|i| {
                let frame = Bytes::from(format!("frame {i};").repeat(1 + i as usize % 3));
                (u64::from(i), frame)
            })
            .collect();
        let want: Vec<u8> = frames.iter().flat_map(|(_, f)| f.to_vec()).collect();
        let (mut tx, mut rx) = tokio::io::duplex(7);
        let reading = tokio::spawn(async move {
            let mut got = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut rx, &mut got)
                .await
                .map(|_| got)
        });
        write_all(&mut tx, &frames).await.expect("written");
        drop(tx);
        assert_eq!(reading.await.expect("joined").expect("read"), want);
    }

    #[test]
    fn advancing_skips_whole_frames_and_stops_inside_one() {
        let frames = [
            (1, Bytes::from_static(b"abc")),
            (2, Bytes::from_static(b"de")),
            (3, Bytes::from_static(b"f")),
        ];
        assert_eq!(advance(&frames, 0, 0, 2), (0, 2));
        assert_eq!(advance(&frames, 0, 2, 1), (1, 0));
        assert_eq!(advance(&frames, 0, 1, 3), (1, 1));
        assert_eq!(advance(&frames, 1, 1, 2), (3, 0));
    }
}
