//! Reading client frames.
//!
//! fastwebsockets' reader leaves out checks a server facing the internet
//! needs (unmasked client frames, oversized close and pong frames are
//! accepted), keeps an 8 KiB buffer per connection even when idle, and is
//! not cancel-safe. This reader is small, strict about RFC 6455 §5, holds
//! no buffer between frames (an idle connection waits with nothing
//! allocated), and keeps partial input in its own buffer, so a `select!`
//! that drops a read loses nothing.

use std::pin::Pin;
use std::task::Poll;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use crate::wire::{OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT};

/// What a read adds to a partial frame's buffer at least.
const SMALL_BUFFER: usize = 512;

/// The first read after a quiet spell goes into a stack buffer of this
/// size; only what arrived is copied to the heap.
const FIRST_READ: usize = 2048;

/// One frame, unmasked.
#[derive(Debug)]
pub struct RawFrame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: BytesMut,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The peer closed the TCP connection or it failed.
    Gone,
    /// The peer broke the protocol (close 1002), with the reason.
    Protocol(&'static str),
    /// A frame longer than the message limit (close 1009).
    TooBig,
}

pub struct FrameReader<R> {
    io: R,
    buf: BytesMut,
    max_payload: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(io: R, max_payload: usize) -> Self {
        Self::with_early(io, max_payload, &[])
    }

    /// A reader that first reads `early` (bytes already taken off the
    /// socket), then the socket.
    pub fn with_early(io: R, max_payload: usize, early: &[u8]) -> Self {
        FrameReader {
            io,
            buf: BytesMut::from(early),
            max_payload,
        }
    }

    /// Reads and discards until the peer closes, an error, or `limit`
    /// bytes: after our close frame, so the socket is not reset under it
    /// while the client still has frames in flight.
    pub async fn discard_until_eof(&mut self, limit: usize) {
        // Read into the heap buffer, not an array in the future: the
        // connection's future, this state included, is held whole for as
        // long as the connection is open.
        let mut seen = 0;
        while seen < limit {
            self.buf.clear();
            self.buf.reserve(SMALL_BUFFER);
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen += n,
            }
        }
    }

    /// The next frame. Cancel-safe: bytes read so far stay buffered.
    pub async fn next(&mut self) -> Result<RawFrame, ReadError> {
        loop {
            if let Some(frame) = self.parse()? {
                if self.buf.is_empty() {
                    // Nothing of the next frame yet: let the buffer go (the
                    // frame's payload keeps its own share until dropped).
                    self.buf = BytesMut::new();
                }
                return Ok(frame);
            }
            let read = if self.buf.is_empty() {
                self.read_first().await
            } else {
                if self.buf.capacity() - self.buf.len() < SMALL_BUFFER / 2 {
                    self.buf.reserve(SMALL_BUFFER);
                }
                self.io.read_buf(&mut self.buf).await
            };
            match read {
                Ok(0) | Err(_) => return Err(ReadError::Gone),
                Ok(_) => {}
            }
        }
    }

    /// Reads into a stack buffer and copies what came to the heap, so the
    /// wait for a frame, however long, holds no allocation. The stack
    /// buffer is local to each poll, not kept in the future. Cancel-safe:
    /// what is read is in `self.buf` before the poll returns.
    async fn read_first(&mut self) -> std::io::Result<usize> {
        std::future::poll_fn(|cx| {
            let mut stack = [0u8; FIRST_READ];
            let mut read = ReadBuf::new(&mut stack);
            match Pin::new(&mut self.io).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => {
                    self.buf.extend_from_slice(read.filled());
                    Poll::Ready(Ok(read.filled().len()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// Parses one frame from the buffer, or `None` if more bytes are needed.
    fn parse(&mut self) -> Result<Option<RawFrame>, ReadError> {
        let b = &self.buf[..];
        if b.len() < 2 {
            return Ok(None);
        }
        let fin = b[0] & 0x80 != 0;
        if b[0] & 0x70 != 0 {
            return Err(ReadError::Protocol("reserved bits set"));
        }
        let opcode = b[0] & 0x0F;
        if !matches!(
            opcode,
            OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
        ) {
            return Err(ReadError::Protocol("unknown opcode"));
        }
        if b[1] & 0x80 == 0 {
            return Err(ReadError::Protocol("client frames must be masked"));
        }
        let (len, ext) = match b[1] & 0x7F {
            126 => {
                if b.len() < 4 {
                    return Ok(None);
                }
                (u64::from(u16::from_be_bytes([b[2], b[3]])), 2)
            }
            127 => {
                if b.len() < 10 {
                    return Ok(None);
                }
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                let n = u64::from_be_bytes(n);
                if n >> 63 != 0 {
                    return Err(ReadError::Protocol("frame length out of range"));
                }
                (n, 8)
            }
            n => (u64::from(n), 0),
        };
        if opcode >= OP_CLOSE {
            if !fin {
                return Err(ReadError::Protocol("fragmented control frame"));
            }
            if len > 125 {
                return Err(ReadError::Protocol("control frame over 125 bytes"));
            }
        }
        if len > self.max_payload as u64 {
            return Err(ReadError::TooBig);
        }
        let len = len as usize;
        let header = 2 + ext + 4;
        if b.len() < header + len {
            self.buf.reserve(header + len - b.len());
            return Ok(None);
        }
        let mask = [b[header - 4], b[header - 3], b[header - 2], b[header - 1]];
        let mut payload = self.buf.split_to(header + len);
        payload.advance(header);
        unmask(&mut payload, mask);
        Ok(Some(RawFrame {
            fin,
            opcode,
            payload,
        }))
    }
}

fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut out = vec![first];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    async fn read_all(bytes: Vec<u8>, max: usize) -> Vec<Result<RawFrame, ReadError>> {
        let mut r = FrameReader::new(&bytes[..], max);
        let mut out = Vec::new();
        loop {
            let f = r.next().await;
            let stop = f.is_err();
            out.push(f);
            if stop {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn reads_and_unmasks_frames_of_every_length_form() {
        for len in [0usize, 5, 125, 126, 1000, 70_000] {
            let body: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let frames = read_all(masked(0x82, &body), 100_000).await;
            let f = frames[0].as_ref().expect("a frame");
            assert_eq!(
                (f.fin, f.opcode, &f.payload[..]),
                (true, OP_BINARY, &body[..])
            );
            assert_eq!(frames[1].as_ref().unwrap_err(), &ReadError::Gone);
        }
    }

    #[tokio::test]
    async fn refuses_what_rfc_6455_forbids() {
        let unmasked = vec![0x81, 0x02, b'h', b'i'];
        assert_eq!(
            read_all(unmasked, 100).await[0].as_ref().unwrap_err(),
            &ReadError::Protocol("client frames must be masked")
        );
        let cases: [(Vec<u8>, ReadError); 5] = [
            (
                masked(0x81 | 0x40, b"x"),
                ReadError::Protocol("reserved bits set"),
            ),
            (masked(0x83, b"x"), ReadError::Protocol("unknown opcode")),
            (
                masked(0x09, b""),
                ReadError::Protocol("fragmented control frame"),
            ),
            (
                masked(0x88, &[0u8; 126]),
                ReadError::Protocol("control frame over 125 bytes"),
            ),
            (masked(0x81, &[b'a'; 101]), ReadError::TooBig),
        ];
        for (bytes, want) in cases {
            assert_eq!(read_all(bytes, 100).await[0].as_ref().unwrap_err(), &want);
        }
    }

    #[tokio::test]
    async fn frames_split_across_reads_are_joined() {
        let mut bytes = masked(0x01, b"hel");
        bytes.extend(masked(0x80, b"lo"));
        // A reader that yields one byte at a time.
        let (mut tx, rx) = tokio::io::duplex(1);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for b in bytes {
                tx.write_all(&[b]).await.unwrap();
            }
        });
        let mut r = FrameReader::new(rx, 100);
        let a = r.next().await.unwrap();
        let b = r.next().await.unwrap();
        assert_eq!(
            (a.fin, a.opcode, &a.payload[..]),
            (false, OP_TEXT, &b"hel"[..])
        );
        assert_eq!(
            (b.fin, b.opcode, &b.payload[..]),
            (true, OP_CONTINUATION, &b"lo"[..])
        );
        writer.await.unwrap();
    }
}
