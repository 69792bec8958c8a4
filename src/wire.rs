//! The WebSocket wire: frame bytes, opcodes and close codes, in one place.
//! Nobody else builds frame bytes.
//!
//! A server frame is never masked, so its bytes are the same for every
//! recipient: an event is framed once per format a recipient speaks, and
//! the [`Bytes`] shared by all connections in its room (a reference-count
//! increment per delivery).

use std::cell::OnceCell;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::protocol::{Format, ServerFrame};

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// The longest frame header: opcode, length marker, 64-bit length.
const MAX_HEADER: usize = 10;

/// The header of a complete, final, unmasked frame of `len` payload bytes,
/// and how many of the returned bytes it takes.
fn header(opcode: u8, len: usize) -> ([u8; MAX_HEADER], usize) {
    let mut h = [0u8; MAX_HEADER];
    h[0] = 0x80 | opcode;
    let n = match len {
        n if n < 126 => {
            h[1] = n as u8;
            2
        }
        n if n <= u16::MAX as usize => {
            h[1] = 126;
            h[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            4
        }
        n => {
            h[1] = 127;
            h[2..10].copy_from_slice(&(n as u64).to_be_bytes());
            10
        }
    };
    (h, n)
}

/// A complete, final, unmasked frame around `payload`.
pub fn frame(opcode: u8, payload: &[u8]) -> Bytes {
    let (h, n) = header(opcode, payload.len());
    let mut out = BytesMut::with_capacity(payload.len() + n);
    out.put_slice(&h[..n]);
    out.put_slice(payload);
    out.freeze()
}

/// A server frame encoded for one wire format and framed. The payload is
/// written once, after room for the longest header, and the header goes
/// just before it: one allocation, no copy.
pub fn encode(frame_value: &ServerFrame<'_>, format: Format) -> Bytes {
    let opcode = match format {
        Format::Json => OP_TEXT,
        Format::Msgpack => OP_BINARY,
    };
    let mut out = Vec::with_capacity(MAX_HEADER + frame_value.size_hint());
    out.extend_from_slice(&[0; MAX_HEADER]);
    // The frames of every message have JSON written by hand, the bytes
    // serde_json would write (see `frame_json`).
    if format != Format::Json || !crate::frame_json::write(frame_value, &mut out) {
        frame_value.encode_into(format, &mut out);
    }
    let (h, n) = header(opcode, out.len() - MAX_HEADER);
    let start = MAX_HEADER - n;
    out[start..MAX_HEADER].copy_from_slice(&h[..n]);
    let mut framed = Bytes::from(out);
    framed.advance(start);
    framed
}

/// A close frame with a code and a short reason (truncated to fit the
/// 125-byte control-frame limit).
pub fn close(code: u16, reason: &str) -> Bytes {
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    frame(OP_CLOSE, &payload)
}

/// One event to fan out, framed lazily: each format is encoded the first
/// time a recipient needs it, then shared by every recipient speaking it.
pub struct Encoded<'a> {
    frame: &'a ServerFrame<'a>,
    json: OnceCell<Bytes>,
    msgpack: OnceCell<Bytes>,
}

impl<'a> Encoded<'a> {
    pub fn new(frame: &'a ServerFrame<'a>) -> Encoded<'a> {
        Encoded {
            frame,
            json: OnceCell::new(),
            msgpack: OnceCell::new(),
        }
    }

    pub fn for_format(&self, format: Format) -> Bytes {
        let cell = match format {
            Format::Json => &self.json,
            Format::Msgpack => &self.msgpack,
        };
        cell.get_or_init(|| encode(self.frame, format)).clone()
    }
}

/// Why a connection is being closed, with its WebSocket close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed, or the socket failed: no close frame to send.
    Gone,
    /// The client closed with this code; it is echoed.
    Normal(u16),
    /// The server is shutting down (1001); reconnect later.
    ShuttingDown,
    /// The session was revoked: logged out, disabled, deleted (4001).
    Revoked,
    /// The session reached its absolute lifetime (4001).
    Expired,
    /// The outbound queue overflowed (1013); reconnect and resume.
    TooSlow,
    /// Policy: no hello in time, sustained rate-limit abuse (1008).
    Policy(&'static str),
    /// A protocol violation by the client (1002).
    Protocol(&'static str),
    /// Invalid UTF-8 in a text message (1007).
    InvalidData,
    /// A message over the size limit (1009).
    TooBig,
    /// No frame from the client within the idle timeout.
    Idle,
}

impl CloseReason {
    /// The close code and reason to send, if a close frame is sent at all.
    pub fn frame(self) -> Option<(u16, &'static str)> {
        Some(match self {
            CloseReason::Gone => return None,
            CloseReason::Normal(code) => (code, ""),
            CloseReason::ShuttingDown => (1001, "server shutting down"),
            CloseReason::Revoked => (4001, "session revoked"),
            CloseReason::Expired => (4001, "session expired"),
            CloseReason::TooSlow => (1013, "too slow; reconnect and resume"),
            CloseReason::Policy(why) => (1008, why),
            CloseReason::Protocol(why) => (1002, why),
            CloseReason::InvalidData => (1007, "invalid UTF-8"),
            CloseReason::TooBig => (1009, "message too big"),
            CloseReason::Idle => (1001, "idle timeout"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_the_right_header_size() {
        assert_eq!(&frame(OP_TEXT, b"hi")[..], &[0x81, 2, b'h', b'i']);
        let f = frame(OP_TEXT, &[b'x'; 300]);
        assert_eq!(&f[..4], &[0x81, 126, 1, 44]);
        let f = frame(OP_BINARY, &vec![0u8; 70_000]);
        assert_eq!(f[1], 127);
        assert_eq!(f.len(), 70_000 + 10);
    }

    /// A frame encoded in place has the bytes of the payload encoded alone
    /// (by serde) and framed, in both formats, at each header size and on
    /// either side of the size hint.
    #[test]
    fn frames_encoded_in_place_match_their_payload_framed() {
        for len in [0, 1, 60, 125, 126, 200, 1_000, 65_535, 65_536, 70_000] {
            let message = "m".repeat(len);
            let value = ServerFrame::Error {
                code: "invalid_frame",
                message: &message,
                client_id: Some("c-1"),
            };
            let json = serde_json::to_vec(&value).unwrap();
            assert_eq!(encode(&value, Format::Json), frame(OP_TEXT, &json), "{len}");
            // An ack's JSON is written by `frame_json`: the same bytes.
            let ack = ServerFrame::Ack {
                client_id: &message,
                room: crate::ids::RoomId::generate(),
                seq: Some(crate::ids::Seq(7)),
                id: None,
            };
            let json = serde_json::to_vec(&ack).unwrap();
            assert_eq!(encode(&ack, Format::Json), frame(OP_TEXT, &json), "{len}");
            let mut msgpack = Vec::new();
            value.encode_into(Format::Msgpack, &mut msgpack);
            assert!(crate::codec::msgpack_from_slice::<serde_json::Value>(&msgpack).is_ok());
            assert_eq!(
                encode(&value, Format::Msgpack),
                frame(OP_BINARY, &msgpack),
                "{len}"
            );
        }
    }

    /// A message or an ack at the longest username and `client_id` fits
    /// its size hint (no regrowth while it is written), and the hint does
    /// not reserve more than twice what it needs.
    #[test]
    fn size_hints_cover_acks_and_messages_without_waste() {
        use crate::ids::{EventId, Millis, RoomId, Seq, SerdeRfc3339, UserId};
        use crate::protocol::{AuthorView, MessageView};
        let client_id = "c".repeat(crate::validate::CLIENT_ID_MAX);
        let username = "u".repeat(32);
        let ack = ServerFrame::Ack {
            client_id: &client_id,
            room: RoomId::generate(),
            seq: Some(Seq(u64::MAX)),
            id: Some(EventId::generate()),
        };
        for body in ["", "a line of text to the room", &"x".repeat(4000)] {
            let message = ServerFrame::Message {
                message: MessageView {
                    id: EventId::generate(),
                    room: RoomId::generate(),
                    seq: Seq(u64::MAX),
                    author: AuthorView {
                        id: UserId::generate(),
                        username: &username,
                        deleted: false,
                    },
                    body,
                    client_id: Some(&client_id),
                    created_at: SerdeRfc3339(Millis::now()),
                    edited_at: None,
                    deleted: false,
                    reactions: vec![],
                    reply_to: None,
                    mentions: &[],
                    mentions_room: false,
                    files: vec![],
                },
            };
            for frame in [&ack, &message] {
                for format in [Format::Json, Format::Msgpack] {
                    let mut payload = Vec::new();
                    frame.encode_into(format, &mut payload);
                    let hint = frame.size_hint();
                    assert!(payload.len() <= hint, "{} > {hint}", payload.len());
                    assert!(
                        hint <= 2 * payload.len() + 64,
                        "{hint} for {}",
                        payload.len()
                    );
                }
            }
        }
    }

    #[test]
    fn close_reason_is_cut_to_fit_a_control_frame() {
        let f = close(1008, &"é".repeat(100));
        assert!(f.len() - 2 <= 125);
        assert!(std::str::from_utf8(&f[4..]).is_ok());
    }
}
