//! A connection's writer task: replies (acks, errors, pongs), replays,
//! heartbeat pings and the close, and the rest of any write its flusher
//! could not finish without waiting. Room events are written by the
//! connection's flusher (see [`crate::hub::Flusher`]), not here, so this
//! task is not woken per delivery. Whatever it writes, it drains the whole
//! outbox and writes it with vectored writes.

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
}

/// Creates a connection's outbox, gives it the socket's write half and
/// spawns its writer task, paced by the configuration.
pub fn start<W: AsyncWrite + Unpin + Send + 'static>(
    io: W,
    state: &AppState,
    user: UserId,
    session: TokenHash,
    format: Format,
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
    outbox.attach(Box::pin(io));
    let pacing = Pacing {
        ping_every: ws.ping_interval,
        stall: ws.write_timeout,
    };
    let writer = tokio::spawn(run(outbox.clone(), pacing));
    (outbox, writer)
}

/// Writes the connection's frames until it closes.
pub async fn run(outbox: Arc<Outbox>, pacing: Pacing) {
    let Pacing { ping_every, stall } = pacing;
    // Grows with the first burst; an idle connection holds no buffer.
    let mut batch: Vec<Bytes> = Vec::new();
    let mut ping = tokio::time::interval(ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    let mut ping_due = false;
    loop {
        tokio::select! {
            _ = outbox.wait() => {}
            _ = ping.tick() => ping_due = true,
        }
        let mut sink = outbox.sink.lock().await;
        let sink = &mut *sink;
        let Some(io) = sink.io.as_mut() else { return };
        loop {
            let drained = outbox.drain(&mut batch);
            // What the flusher could not write goes first.
            let mut frames = std::mem::take(&mut sink.carry);
            if let Some(reason) = drained.close {
                if reason == CloseReason::TooSlow || reason == CloseReason::Gone {
                    // A slow or gone peer gets nothing more; the socket is dropped.
                    frames.clear();
                    batch.clear();
                }
                frames.append(&mut batch);
                if let Some((code, why)) = reason.frame() {
                    frames.push(wire::close(code, why));
                }
                let _ = tokio::time::timeout(CLOSE_GRACE, async {
                    write_all(io, &frames).await?;
                    io.shutdown().await
                })
                .await;
                return;
            }
            frames.append(&mut batch);
            if std::mem::take(&mut ping_due) {
                frames.push(Bytes::from_static(&PING));
            }
            if frames.is_empty() && !sink.unflushed {
                break;
            }
            sink.unflushed = false;
            let written = {
                let write = write_all(io, &frames);
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
            // Reused: its allocation is kept for the next drain.
            frames.clear();
            batch = frames;
            outbox.drained();
            if written.is_err() {
                outbox.close(CloseReason::Gone);
                return;
            }
        }
    }
}

/// Writes every frame, in order, in as few syscalls as the socket allows.
async fn write_all<W: AsyncWrite + Unpin + ?Sized>(
    io: &mut W,
    frames: &[Bytes],
) -> std::io::Result<()> {
    for chunk in frames.chunks(IOV_BATCH) {
        let mut slices: [IoSlice<'_>; IOV_BATCH] = [IoSlice::new(&[]); IOV_BATCH];
        for (s, f) in slices.iter_mut().zip(chunk) {
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
