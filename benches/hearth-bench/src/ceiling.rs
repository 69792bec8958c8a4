//! The raw ceiling: the least a server must do to deliver the same load.
//!
//! It accepts the same number of WebSocket connections (a bare-bones
//! upgrade and a canned `ready`), then generates the same message frames
//! — copies of a frame hearth sent in the same run, with their own seq and
//! send time — at the same rate, and writes them to every socket from
//! one thread with non-blocking vectored writes: every frame due since a
//! socket's last write goes out in one `writev`. No storage, no hub, no
//! tasks per connection, no locks. `hearth / ceiling` then says how much
//! of the machine's deliverable throughput hearth turns into deliveries.

use std::cell::RefCell;
use std::io::{IoSlice, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::{Buf, Bytes, BytesMut};
use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::wsclient::{self, OP_TEXT};

#[derive(Debug, Args)]
pub struct CeilingArgs {
    /// Connections to wait for before writing.
    #[arg(long)]
    pub clients: usize,
    /// Messages per second.
    #[arg(long)]
    pub rate: f64,
    /// Messages in all.
    #[arg(long)]
    pub messages: u64,
    /// A message payload hearth sent in the same run: every frame is a
    /// copy of it with its own seq and send time.
    #[arg(long)]
    pub template: PathBuf,
    /// Give up if not every client connected within this many seconds.
    #[arg(long, default_value_t = 120)]
    pub connect_timeout: u64,
}

/// Frames per `writev` (under IOV_MAX), as hearth's writer uses.
const IOV_BATCH: usize = 128;

/// How long the writer lives after its last frame, at most, before it
/// exits on its own (the bench normally stops it sooner).
const LINGER: Duration = Duration::from_secs(120);

pub fn run(args: CeilingArgs) -> anyhow::Result<()> {
    super::target::raise_fd_limit()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let set = tokio::task::LocalSet::new();
    set.block_on(&runtime, serve(args))
}

struct Conn {
    stream: TcpStream,
    /// The next frame to write, and how much of it is already written.
    next: usize,
    offset: usize,
}

async fn serve(args: CeilingArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let conns: Rc<RefCell<Vec<Conn>>> = Rc::new(RefCell::new(Vec::with_capacity(args.clients)));
    let ready = Bytes::from(ready_frame());
    {
        let conns = conns.clone();
        tokio::task::spawn_local(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let conns = conns.clone();
                let ready = ready.clone();
                tokio::task::spawn_local(async move {
                    if let Ok(stream) = handshake(stream, &ready).await {
                        conns.borrow_mut().push(Conn {
                            stream,
                            next: 0,
                            offset: 0,
                        });
                    }
                });
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(args.connect_timeout);
    while conns.borrow().len() < args.clients {
        if Instant::now() > deadline {
            bail!(
                "only {} of {} clients connected",
                conns.borrow().len(),
                args.clients
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Start when the bench says so (a line on stdin), as its posters would.
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(
        &mut tokio::io::BufReader::new(tokio::io::stdin()),
        &mut line,
    )
    .await
    .context("no start signal on stdin")?;
    let template = Template::read(&args.template)?;
    let start = Instant::now();
    let due = |j: u64| start + Duration::from_secs_f64(j as f64 / args.rate);
    let mut frames: Vec<Bytes> = Vec::with_capacity(args.messages as usize);
    // Every client is in: the writer owns the connections from here on.
    let mut conns = std::mem::take(&mut *conns.borrow_mut());
    loop {
        let now = Instant::now();
        while (frames.len() as u64) < args.messages && due(frames.len() as u64) <= now {
            let seq = frames.len() as u64 + 1;
            frames.push(template.frame(seq, super::load::unix_micros()));
        }
        let mut blocked = false;
        for c in conns.iter_mut() {
            blocked |= !write_due(c, &frames)?;
        }
        if frames.len() as u64 == args.messages && !blocked {
            break;
        }
        if blocked {
            tokio::time::sleep(Duration::from_millis(1)).await;
        } else {
            tokio::time::sleep_until(due(frames.len() as u64).into()).await;
        }
    }
    drop(conns);
    tokio::time::sleep(LINGER).await;
    Ok(())
}

/// Writes every frame the connection has not had yet; false if the socket
/// would block before all of them went out.
fn write_due(c: &mut Conn, frames: &[Bytes]) -> anyhow::Result<bool> {
    while c.next < frames.len() {
        let mut slices = [IoSlice::new(&[]); IOV_BATCH];
        let mut n = 0;
        for (k, f) in frames[c.next..].iter().take(IOV_BATCH).enumerate() {
            slices[k] = IoSlice::new(if k == 0 { &f[c.offset..] } else { f });
            n += 1;
        }
        match c.stream.try_write_vectored(&slices[..n]) {
            Ok(mut written) => {
                while written > 0 {
                    let left = frames[c.next].len() - c.offset;
                    if written >= left {
                        written -= left;
                        c.next += 1;
                        c.offset = 0;
                    } else {
                        c.offset += written;
                        written = 0;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
            // A client that went away gets nothing more.
            Err(_) => {
                c.next = usize::MAX;
                return Ok(true);
            }
        }
    }
    Ok(true)
}

/// Reads the upgrade request, answers 101, reads the hello, answers ready.
async fn handshake(mut stream: TcpStream, ready: &[u8]) -> anyhow::Result<TcpStream> {
    stream.set_nodelay(true)?;
    let mut buf = BytesMut::with_capacity(1024);
    let head = loop {
        if let Some(i) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 16 * 1024 || stream.read_buf(&mut buf).await? == 0 {
            bail!("no upgrade request");
        }
    };
    buf.advance(head);
    stream
        .write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: ceiling\r\n\r\n",
        )
        .await?;
    // The hello: a small masked frame (2 header bytes, 4 mask bytes).
    loop {
        if buf.len() >= 2 {
            let len = (buf[1] & 0x7f) as usize;
            if len < 126 && buf.len() >= 6 + len {
                break;
            }
        }
        if stream.read_buf(&mut buf).await? == 0 {
            bail!("no hello");
        }
    }
    stream.write_all(ready).await.context("cannot send ready")?;
    Ok(stream)
}

fn ready_frame() -> Vec<u8> {
    let payload = br#"{"type":"ready","user":{"id":"00000000-0000-0000-0000-000000000000","username":"ceiling","created_at":"1970-01-01T00:00:00.000Z"},"rooms":[{"id":"00000000-0000-0000-0000-000000000001","last_seq":0}]}"#;
    let mut out = Vec::new();
    wsclient::server_frame(&mut out, OP_TEXT, payload);
    out
}

/// A message payload cut around its seq and its send time.
pub struct Template {
    before_seq: Vec<u8>,
    before_time: Vec<u8>,
    rest: Vec<u8>,
}

impl Template {
    pub fn read(path: &std::path::Path) -> anyhow::Result<Template> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the template {}", path.display()))?;
        Template::parse(&bytes)
    }

    pub fn parse(payload: &[u8]) -> anyhow::Result<Template> {
        let digits = |key: &[u8]| -> anyhow::Result<(usize, usize)> {
            let at = memchr::memmem::find(payload, key)
                .with_context(|| format!("the template has no {}", String::from_utf8_lossy(key)))?
                + key.len();
            let n = payload[at..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            Ok((at, at + n))
        };
        let (s0, s1) = digits(b"\"seq\":")?;
        let (t0, t1) = digits(b"\"body\":\"b ")?;
        if t0 < s1 {
            bail!("the template has its body before its seq");
        }
        Ok(Template {
            before_seq: payload[..s0].to_vec(),
            before_time: payload[s1..t0].to_vec(),
            rest: payload[t1..].to_vec(),
        })
    }

    /// The framed message with this seq and send time.
    pub fn frame(&self, seq: u64, sent_micros: u64) -> Bytes {
        let mut payload = Vec::with_capacity(
            self.before_seq.len() + self.before_time.len() + self.rest.len() + 40,
        );
        payload.extend_from_slice(&self.before_seq);
        payload.extend_from_slice(seq.to_string().as_bytes());
        payload.extend_from_slice(&self.before_time);
        payload.extend_from_slice(sent_micros.to_string().as_bytes());
        payload.extend_from_slice(&self.rest);
        let mut out = Vec::with_capacity(payload.len() + 10);
        wsclient::server_frame(&mut out, OP_TEXT, &payload);
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_frames_carry_their_own_seq_and_time() {
        let sample = br#"{"type":"message","message":{"seq":7,"author":{"username":"x"},"body":"b 123 pad","client_id":"m6"}}"#;
        let t = Template::parse(sample).unwrap();
        let f = t.frame(42, 999);
        let at = wsclient::parse(&f).unwrap().unwrap();
        assert_eq!(
            &f[at.payload..],
            br#"{"type":"message","message":{"seq":42,"author":{"username":"x"},"body":"b 999 pad","client_id":"m6"}}"#
        );
    }
}
