//! The one writer of a connection: it drains the whole outbox at each
//! wake-up and writes it with vectored writes, so a burst of fan-out costs
//! about one syscall per connection rather than one per frame.

use std::io::IoSlice;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::hub::Outbox;
use crate::ids::{TokenHash, UserId};
use crate::protocol::Format;
use crate::state::AppState;
use crate::wire::{self, CloseReason};

/// An empty ping, sent on every heartbeat.
static PING: [u8; 2] = [0x80 | wire::OP_PING, 0];

/// How long the final frames and the close frame may take to go out.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Frames per vectored write (well under the kernel's IOV_MAX of 1024). The
/// slice array lives in every idle writer's task, so it is kept small.
const IOV_BATCH: usize = 64;

/// How a connection's writer paces itself.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// Interval between heartbeat pings.
    pub ping_every: Duration,
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
        ws.outbound_queue_frames,
        // Not a child of the shutdown token: at shutdown the hub closes
        // every socket, after the listener is gone (see `lib.rs`).
        tokio_util::sync::CancellationToken::new(),
    );
    let pacing = Pacing {
        ping_every: ws.ping_interval,
        stall: ws.write_timeout,
        coalesce,
    };
    let writer = tokio::spawn(run(io, outbox.clone(), pacing));
    (outbox, writer)
}

/// Writes the connection's frames until it closes.
pub async fn run<W: AsyncWrite + Unpin>(mut io: W, outbox: Arc<Outbox>, pacing: Pacing) {
    let Pacing {
        ping_every,
        stall,
        coalesce,
    } = pacing;
    // Grows with the first burst; an idle connection holds no buffer.
    let mut batch: Vec<(u64, Bytes)> = Vec::new();
    let mut ping = tokio::time::interval(ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    // Set after a write: wait out the coalescing window before looking
    // at the queue again.
    let mut window_end: Option<tokio::time::Instant> = None;
    loop {
        // Sleeping out the window here, before the queue is even looked
        // at, leaves the writer unparked: the fan-out queues what arrives
        // meanwhile without waking it. Under steady load a connection
        // then costs one timer wake-up per write, not a timer and a
        // wake-up from the publisher. Only a writer that finds its queue
        // empty after its window parks, and the first event after a quiet
        // spell goes out at once.
        if let Some(end) = window_end.take() {
            if end > tokio::time::Instant::now() {
                tokio::select! {
                    _ = tokio::time::sleep_until(end) => {}
                    _ = outbox.closing.cancelled() => {}
                    _ = outbox.replied() => {}
                }
            }
        }
        let drained = outbox.drain(&mut batch);
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
            tokio::select! {
                _ = outbox.wait() => {}
                _ = ping.tick() => batch.push((0, Bytes::from_static(&PING))),
            }
            if batch.is_empty() {
                continue;
            }
        }
        let written = {
            let write = write_all(&mut io, &batch);
            tokio::pin!(write);
            tokio::select! {
                r = tokio::time::timeout(stall, &mut write) => match r {
                    Ok(r) => r,
                    Err(_) => {
                        outbox.close(CloseReason::TooSlow);
                        return;
                    }
                },
                // Closed while the write is blocked: a peer being cut off
                // gets nothing more; any other close lets the write finish.
                _ = outbox.closing.cancelled() => match outbox.close_reason() {
                    Some(CloseReason::TooSlow | CloseReason::Gone) | None => return,
                    Some(_) => match tokio::time::timeout(CLOSE_GRACE, &mut write).await {
                        Ok(r) => r,
                        Err(_) => return,
                    },
                },
            }
        };
        batch.clear();
        if !coalesce.is_zero() {
            window_end = Some(tokio::time::Instant::now() + coalesce);
        }
        outbox.drained();
        if written.is_err() {
            outbox.close(CloseReason::Gone);
            return;
        }
    }
}

/// Writes every frame, in order, in as few syscalls as the socket allows.
async fn write_all<W: AsyncWrite + Unpin>(
    io: &mut W,
    frames: &[(u64, Bytes)],
) -> std::io::Result<()> {
    for chunk in frames.chunks(IOV_BATCH) {
        let mut slices: [IoSlice<'_>; IOV_BATCH] = [IoSlice::new(&[]); IOV_BATCH];
        for (s, (_, f)) in slices.iter_mut().zip(chunk) {
            *s = IoSlice::new(f);
        }
        let mut bufs = &mut slices[..chunk.len()];
        while !bufs.is_empty() {
            let n = io.write_vectored(bufs).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut bufs, n);
        }
    }
    io.flush().await
}
