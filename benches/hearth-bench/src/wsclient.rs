//! The client side of RFC 6455, as little of it as a load generator needs:
//! the upgrade request, parsing unmasked server frames in place (no copy,
//! no allocation per frame) and writing masked client frames.
//!
//! A library client would parse every frame into an owned message; at
//! millions of deliveries a second on a shared core, the generator must
//! cost less than the server it measures.

use std::net::{IpAddr, SocketAddr};

use anyhow::{bail, Context};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Largest handshake response accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Connects from `source` (when given: spreading clients over loopback
/// addresses multiplies the ephemeral ports available) and upgrades.
/// Returns the stream and any frame bytes that followed the response head.
pub async fn connect(
    server: SocketAddr,
    source: Option<IpAddr>,
    token: Option<&str>,
) -> anyhow::Result<(TcpStream, BytesMut)> {
    connect_with(server, source, token, None).await
}

/// How a client that will stop reading narrows its connection, so that
/// the server's writes block within kilobytes instead of megabytes.
#[derive(Debug, Clone, Copy)]
pub struct Narrow {
    /// SO_RCVBUF, in bytes (the kernel doubles it).
    pub recv_buffer: u32,
    /// The MSS announced in the SYN. Loopback's 64 KiB MSS makes the
    /// server's kernel size its send buffer at nearly 4 MiB up front; an
    /// Ethernet-sized one (1460) gives it tens of kilobytes, as on a real
    /// network.
    pub mss: u32,
}

/// [`connect`], with the socket narrowed first when asked (before the
/// handshake: the kernel sizes both ends' buffers from it).
pub async fn connect_with(
    server: SocketAddr,
    source: Option<IpAddr>,
    token: Option<&str>,
    narrow: Option<Narrow>,
) -> anyhow::Result<(TcpStream, BytesMut)> {
    let socket = match narrow {
        None => TcpSocket::new_v4()?,
        Some(n) => {
            use socket2::{Domain, Protocol, Socket, Type};
            let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
            s.set_recv_buffer_size(n.recv_buffer as usize)?;
            s.set_tcp_mss(n.mss)?;
            s.set_nonblocking(true)?;
            TcpSocket::from_std_stream(s.into())
        }
    };
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("cannot bind to source address {ip}"))?;
    }
    let mut stream = socket
        .connect(server)
        .await
        .with_context(|| format!("cannot connect to {server}"))?;
    stream.set_nodelay(true)?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET /api/v1/ws HTTP/1.1\r\nHost: {server}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: aGVhcnRoLWJlbmNoLWtleQ==\r\n\
         Sec-WebSocket-Version: 13\r\n{auth}\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buf = BytesMut::with_capacity(4096);
    let head_end = loop {
        if let Some(i) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            bail!("the upgrade response head is too large");
        }
        if stream.read_buf(&mut buf).await? == 0 {
            bail!("the server closed the connection during the upgrade");
        }
    };
    if !buf.starts_with(b"HTTP/1.1 101") {
        let line = buf[..head_end].split(|&b| b == b'\r').next().unwrap_or(&[]);
        bail!(
            "the upgrade was refused: {}",
            String::from_utf8_lossy(line).trim()
        );
    }
    buf.advance(head_end);
    Ok((stream, buf))
}

/// A complete frame at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameAt {
    pub opcode: u8,
    /// Where the payload starts.
    pub payload: usize,
    /// Payload length.
    pub len: usize,
}

impl FrameAt {
    /// Bytes the whole frame takes.
    pub fn end(&self) -> usize {
        self.payload + self.len
    }
}

/// The frame at the start of `buf`, if it is all there. Server frames are
/// unmasked and, from hearth, never fragmented.
pub fn parse(buf: &[u8]) -> anyhow::Result<Option<FrameAt>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    if buf[1] & 0x80 != 0 {
        bail!("the server sent a masked frame");
    }
    if buf[0] & 0x80 == 0 {
        bail!("the server sent a fragmented frame");
    }
    let (len, payload) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b) as usize, 10)
        }
        126 | 127 => return Ok(None),
        n => (n as usize, 2),
    };
    let frame = FrameAt {
        opcode: buf[0] & 0x0f,
        payload,
        len,
    };
    Ok((buf.len() >= frame.end()).then_some(frame))
}

/// Appends a masked client frame. The mask key is zero, which RFC 6455
/// allows: the payload bytes go out unchanged.
pub fn client_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
}

/// Appends an unmasked server frame (for the ceiling writer).
pub fn server_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= u16::MAX as usize => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// The unsigned integer after `key` in a JSON text (e.g. `"seq":`).
pub fn number_after(text: &[u8], key: &[u8]) -> Option<u64> {
    let at = memchr::memmem::find(text, key)? + key.len();
    let digits = text[at..].iter().take_while(|b| b.is_ascii_digit());
    let mut n: u64 = 0;
    let mut any = false;
    for d in digits {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        any = true;
    }
    any.then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_frames_of_each_length_form() {
        let frame = |op, payload: &[u8]| {
            let mut out = Vec::new();
            server_frame(&mut out, op, payload);
            out
        };
        let small = frame(OP_TEXT, b"hi");
        assert_eq!(
            parse(&small).unwrap(),
            Some(FrameAt {
                opcode: OP_TEXT,
                payload: 2,
                len: 2
            })
        );
        assert_eq!(parse(&small[..3]).unwrap(), None);
        let mid = frame(OP_TEXT, &[b'x'; 300]);
        assert_eq!(parse(&mid).unwrap().unwrap().end(), mid.len());
        let big = frame(OP_BINARY, &[0; 70_000]);
        assert_eq!(parse(&big).unwrap().unwrap().end(), big.len());
    }

    #[test]
    fn finds_numbers_in_json() {
        let m = br#"{"type":"message","message":{"seq":42,"body":"b 1700000000123456"}}"#;
        assert_eq!(number_after(m, b"\"seq\":"), Some(42));
        assert_eq!(
            number_after(m, b"\"body\":\"b "),
            Some(1_700_000_000_123_456)
        );
        assert_eq!(number_after(m, b"\"nope\":"), None);
    }

    #[test]
    fn client_frames_are_masked_with_a_zero_key() {
        let mut out = Vec::new();
        client_frame(&mut out, OP_TEXT, b"abc");
        assert_eq!(out, [0x81, 0x83, 0, 0, 0, 0, b'a', b'b', b'c']);
    }
}
