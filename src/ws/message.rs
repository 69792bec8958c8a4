//! Whole client messages from frames: control frames answered, fragments
//! joined within the size limit, text checked for UTF-8. Shared by the chat
//! gateway and the test-only echo endpoint, so conformance runs exercise the
//! code clients meet.

use fastwebsockets::CloseCode;

use super::reader::{RawFrame, ReadError};
use crate::hub::Outbox;
use crate::wire::{
    self, CloseReason, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT,
};

/// A client message reassembled from its frames.
pub struct Message {
    pub binary: bool,
    pub payload: Vec<u8>,
}

/// Joins a connection's frames into messages.
pub struct Assembler {
    partial: Option<Message>,
    max: usize,
}

impl Assembler {
    /// `max` bounds a message's total size across its fragments.
    pub fn new(max: usize) -> Assembler {
        Assembler { partial: None, max }
    }

    /// Takes one frame: answers a ping on `outbox`, returns a message once
    /// complete, or the reason to close.
    pub fn push(
        &mut self,
        frame: RawFrame,
        outbox: &Outbox,
    ) -> Result<Option<Message>, CloseReason> {
        // The reader has already refused bad opcodes, unmasked frames and
        // oversized or fragmented control frames.
        match frame.opcode {
            OP_CLOSE => Err(check_close(&frame.payload)),
            OP_PING => {
                outbox.push(wire::frame(wire::OP_PONG, &frame.payload));
                Ok(None)
            }
            OP_PONG => Ok(None),
            OP_TEXT | OP_BINARY => {
                if self.partial.is_some() {
                    return Err(CloseReason::Protocol("new message inside a fragmented one"));
                }
                let msg = Message {
                    binary: frame.opcode == OP_BINARY,
                    payload: frame.payload.to_vec(),
                };
                if frame.fin {
                    finish(msg).map(Some)
                } else {
                    self.partial = Some(msg);
                    Ok(None)
                }
            }
            OP_CONTINUATION => {
                let Some(msg) = self.partial.as_mut() else {
                    return Err(CloseReason::Protocol("continuation without a message"));
                };
                if msg.payload.len() + frame.payload.len() > self.max {
                    return Err(CloseReason::TooBig);
                }
                msg.payload.extend_from_slice(&frame.payload);
                if !frame.fin {
                    return Ok(None);
                }
                match self.partial.take() {
                    Some(msg) => finish(msg).map(Some),
                    None => Ok(None),
                }
            }
            _ => Err(CloseReason::Protocol("unknown opcode")),
        }
    }
}

impl From<ReadError> for CloseReason {
    fn from(e: ReadError) -> CloseReason {
        match e {
            ReadError::Gone => CloseReason::Gone,
            ReadError::TooBig => CloseReason::TooBig,
            ReadError::Protocol(why) => CloseReason::Protocol(why),
        }
    }
}

/// Checks a completed message: text must be UTF-8 (1007 otherwise).
fn finish(msg: Message) -> Result<Message, CloseReason> {
    if !msg.binary && std::str::from_utf8(&msg.payload).is_err() {
        return Err(CloseReason::InvalidData);
    }
    Ok(msg)
}

/// The reply to a client's close frame: echo a valid one, refuse a bad one.
fn check_close(payload: &[u8]) -> CloseReason {
    match payload.len() {
        0 => CloseReason::Normal(1000),
        1 => CloseReason::Protocol("close frame of one byte"),
        _ => {
            let code = CloseCode::from(u16::from_be_bytes([payload[0], payload[1]]));
            if !code.is_allowed() {
                CloseReason::Protocol("invalid close code")
            } else if std::str::from_utf8(&payload[2..]).is_err() {
                CloseReason::InvalidData
            } else {
                CloseReason::Normal(u16::from(code))
            }
        }
    }
}
