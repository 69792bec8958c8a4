//! A WebSocket echo endpoint for conformance runs (the Autobahn cases), at
//! `/api/v1/test/echo`. It exists only in debug builds and only when
//! `HEARTH_TEST_ECHO=1` is set, so a release binary cannot serve it. It reads
//! with the same reader, limits and message assembly as the chat gateway and
//! writes through the same outbox and writer; only the chat protocol on top
//! is left out, and with it the heartbeat (the chat connection's reader
//! queues the pings).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use super::message::Assembler;
use super::reader::FrameReader;
use super::socket::Socket;
use super::writer;
use crate::ids::UserId;
use crate::protocol::Format;
use crate::state::AppState;
use crate::wire::{self, CloseReason};

/// Whether this process serves the echo endpoint.
pub fn enabled() -> bool {
    std::env::var_os("HEARTH_TEST_ECHO").is_some_and(|v| v == "1")
}

/// Echoes every message with its opcode until the peer closes, keeping
/// `hold` (the connection's admission) until then.
pub async fn run<R, W, H>(socket: Socket<R, W>, state: Arc<AppState>, hold: H)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let Socket {
        read: rd,
        write: wr,
        early,
    } = socket;
    let ws = &state.config.websocket;
    let mut reader = FrameReader::with_early(rd, ws.max_message_bytes, &early);
    // Every frame is written at once: conformance cases time out on
    // coalescing delays, and throughput is not what is measured here.
    let (outbox, writer) = writer::start(
        wr,
        &state,
        UserId(uuid::Uuid::nil()),
        crate::ids::TokenHash([0; 32]),
        Format::Json,
        std::time::Duration::ZERO,
    );
    outbox.release(&HashMap::new());
    let mut messages = Assembler::new(ws.max_message_bytes);
    let reason = loop {
        let frame = tokio::select! {
            _ = outbox.closing() => break CloseReason::ShuttingDown,
            f = reader.next() => f,
        };
        let frame = match frame {
            Ok(f) => f,
            Err(e) => break e.into(),
        };
        match messages.push(frame, &outbox) {
            Err(reason) => break reason,
            Ok(None) => {}
            Ok(Some(m)) => {
                let opcode = if m.binary {
                    wire::OP_BINARY
                } else {
                    wire::OP_TEXT
                };
                outbox.push(wire::frame(opcode, &m.payload));
            }
        }
    };
    outbox.close(reason);
    let _ = writer.await;
    drop(hold);
}
