//! The load generator: client connections spread over threads, each
//! thread a single-threaded runtime that owns its clients outright (no
//! locks or atomics per delivery), and the verification of every delivery.
//!
//! A client connects, says hello, waits for `ready` (which gives the
//! room's head, the seq it starts after), then reads. Posters also send
//! `send` frames on a fixed schedule, each body carrying the wall-clock
//! time it was sent, so post→delivery latency is measured at the receiver
//! (one clock, one machine). Each client keeps a bitmap of the seqs it saw:
//! a seq seen twice is a duplicate, one that arrives below the highest
//! seen is reordered, and one never seen by the end is lost.

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::wsclient::{self, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};

/// What to run.
#[derive(Clone)]
pub struct Plan {
    pub target: SocketAddr,
    pub clients: usize,
    /// Session tokens, shared round-robin; empty for the ceiling writer.
    pub tokens: Vec<String>,
    pub room_id: String,
    /// Clients 0..posters also post.
    pub posters: usize,
    /// Messages per second, all posters together.
    pub rate: f64,
    /// Messages to post in all (rate × duration).
    pub messages: u64,
    pub threads: usize,
    /// Source addresses, round-robin; empty lets the kernel choose.
    pub sources: Vec<IpAddr>,
    /// Upgrades in flight at once, all threads together.
    pub connect_parallel: usize,
    /// Extra body bytes after the timestamp.
    pub body_pad: usize,
}

/// Counters the threads share with the main thread, for progress and the
/// decisions of when to start posting and when the run is over.
#[derive(Default)]
pub struct Shared {
    pub connected: AtomicUsize,
    pub failed: AtomicUsize,
    pub delivered: AtomicU64,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    /// The highest seq any poster got an ack for.
    pub max_acked_seq: AtomicU64,
    /// `error` frames received, and connections the server closed early.
    pub errors: AtomicU64,
    pub closed_early: AtomicU64,
    pub first_error: Mutex<Option<String>>,
    /// When posting starts: set once every client is ready.
    pub post_start: OnceLock<Instant>,
    /// The last seq of the run, once every post is acknowledged (0 = not yet).
    pub final_seq: AtomicU64,
    /// Give up waiting for stragglers: they count as lost.
    pub stop: AtomicBool,
    /// The payload of the first message client 0 received: the ceiling
    /// writer sends copies of it.
    pub sample_message: OnceLock<Vec<u8>>,
}

impl Shared {
    fn error(&self, what: String) {
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(what);
        }
    }
}

/// One thread's findings.
pub struct Outcome {
    /// Post→delivery, microseconds.
    pub latency: Histogram<u64>,
    /// Connect + upgrade + hello → ready, microseconds.
    pub connect: Histogram<u64>,
    pub received: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    /// Clients that did not see every message by the end.
    pub incomplete: usize,
    pub last_delivery: Option<Instant>,
    /// Seconds the load threads waited, runnable, for a CPU.
    pub runqueue_wait_secs: f64,
}

impl Outcome {
    pub fn empty() -> Outcome {
        Outcome {
            latency: histogram(),
            connect: histogram(),
            received: 0,
            lost: 0,
            duplicated: 0,
            reordered: 0,
            incomplete: 0,
            last_delivery: None,
            runqueue_wait_secs: 0.0,
        }
    }

    /// Adds another thread's findings to these.
    pub fn merge(&mut self, other: Outcome) {
        let _ = self.latency.add(&other.latency);
        let _ = self.connect.add(&other.connect);
        self.received += other.received;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
        self.incomplete += other.incomplete;
        self.last_delivery = self.last_delivery.max(other.last_delivery);
        self.runqueue_wait_secs += other.runqueue_wait_secs;
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant, valid bounds")
}

/// Starts the generator threads; they connect at once and post when
/// `shared.post_start` is set. Join the handles for the outcomes.
pub fn start(plan: Arc<Plan>, shared: Arc<Shared>) -> Vec<std::thread::JoinHandle<Outcome>> {
    (0..plan.threads.max(1))
        .map(|t| {
            let plan = plan.clone();
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("bench-load-{t}"))
                .spawn(move || run_thread(t, &plan, &shared))
                .expect("spawning a load thread fails only when the OS is out of threads")
        })
        .collect()
}

/// Seqs one client saw.
struct Tracker {
    /// The room's head when the client said hello: it expects seqs after it.
    start: u64,
    seen: Vec<u64>,
    distinct: u64,
    highest: u64,
    duplicated: u64,
    reordered: u64,
}

impl Tracker {
    fn new() -> Tracker {
        Tracker {
            start: 0,
            seen: Vec::new(),
            distinct: 0,
            highest: 0,
            duplicated: 0,
            reordered: 0,
        }
    }

    fn see(&mut self, seq: u64) {
        let Some(i) = seq.checked_sub(self.start + 1) else {
            self.duplicated += 1;
            return;
        };
        let (word, bit) = ((i / 64) as usize, 1u64 << (i % 64));
        if word >= self.seen.len() {
            self.seen.resize(word + 1 + self.seen.len() / 2, 0);
        }
        if self.seen[word] & bit != 0 {
            self.duplicated += 1;
            return;
        }
        self.seen[word] |= bit;
        self.distinct += 1;
        if seq < self.highest {
            self.reordered += 1;
        }
        self.highest = self.highest.max(seq);
    }

    fn complete(&self, final_seq: u64) -> bool {
        self.distinct >= final_seq.saturating_sub(self.start)
    }
}

/// What every client task of one thread shares.
struct Local {
    latency: RefCell<Histogram<u64>>,
    connect: RefCell<Histogram<u64>>,
    received: Cell<u64>,
    last_delivery: Cell<Option<Instant>>,
    gate: tokio::sync::Semaphore,
}

fn run_thread(index: usize, plan: &Arc<Plan>, shared: &Arc<Shared>) -> Outcome {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            shared.error(format!("cannot start a load thread: {e}"));
            return Outcome::empty();
        }
    };
    let threads = plan.threads.max(1);
    let local = Rc::new(Local {
        latency: RefCell::new(histogram()),
        connect: RefCell::new(histogram()),
        received: Cell::new(0),
        last_delivery: Cell::new(None),
        gate: tokio::sync::Semaphore::new((plan.connect_parallel / threads).max(1)),
    });
    let set = tokio::task::LocalSet::new();
    let mut trackers = Vec::new();
    for i in (index..plan.clients).step_by(threads) {
        let tracker = Rc::new(RefCell::new(Tracker::new()));
        trackers.push(tracker.clone());
        let client = Client {
            index: i,
            plan: plan.clone(),
            shared: shared.clone(),
            local: local.clone(),
            tracker,
        };
        set.spawn_local(async move {
            if let Err(e) = client.run().await {
                client
                    .shared
                    .error(format!("client {}: {e:#}", client.index));
            }
        });
    }
    // Watch from here rather than in every client: a client that has seen
    // everything may be parked in a read that will never return.
    set.block_on(&runtime, async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if shared.stop.load(Relaxed) {
                break;
            }
            let final_seq = shared.final_seq.load(Relaxed);
            if final_seq > 0 && trackers.iter().all(|t| t.borrow().complete(final_seq)) {
                break;
            }
        }
    });
    let final_seq = shared.final_seq.load(Relaxed);
    let mut out = Outcome::empty();
    for t in &trackers {
        let t = t.borrow();
        out.duplicated += t.duplicated;
        out.reordered += t.reordered;
        if final_seq > 0 && !t.complete(final_seq) {
            out.incomplete += 1;
            out.lost += final_seq.saturating_sub(t.start) - t.distinct;
        }
    }
    out.latency = local.latency.replace(histogram());
    out.connect = local.connect.replace(histogram());
    out.received = local.received.get();
    out.last_delivery = local.last_delivery.get();
    out.runqueue_wait_secs = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 / 1e9);
    // Dropping the set closes every socket of this thread.
    drop(set);
    out
}

struct Client {
    index: usize,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    local: Rc<Local>,
    tracker: Rc<RefCell<Tracker>>,
}

/// A poster's place in the global posting schedule: message `j` (over all
/// posters) is due `j / rate` seconds after the start, and poster `p` sends
/// messages `p, p + P, p + 2P, …`.
struct Schedule {
    next: u64,
    step: u64,
    total: u64,
    rate: f64,
}

impl Schedule {
    fn due(&self, start: Instant) -> Option<Instant> {
        (self.next < self.total)
            .then(|| start + Duration::from_secs_f64(self.next as f64 / self.rate))
    }
}

impl Client {
    async fn run(&self) -> anyhow::Result<()> {
        let plan = &self.plan;
        let token =
            (!plan.tokens.is_empty()).then(|| plan.tokens[self.index % plan.tokens.len()].as_str());
        let source =
            (!plan.sources.is_empty()).then(|| plan.sources[self.index % plan.sources.len()]);
        let (mut stream, mut buf) = {
            let _permit = self.local.gate.acquire().await?;
            let began = Instant::now();
            let connected = self.hello(token, source).await;
            match connected {
                Ok(c) => {
                    let micros = began.elapsed().as_micros() as u64;
                    let _ = self.local.connect.borrow_mut().record(micros.max(1));
                    self.shared.connected.fetch_add(1, Relaxed);
                    c
                }
                Err(e) => {
                    self.shared.failed.fetch_add(1, Relaxed);
                    return Err(e);
                }
            }
        };
        let mut schedule = (self.index < plan.posters).then(|| Schedule {
            next: self.index as u64,
            step: plan.posters as u64,
            total: plan.messages,
            rate: plan.rate,
        });
        let mut out: Vec<u8> = Vec::with_capacity(256);
        let mut sent_here = 0u64;
        loop {
            self.consume(&mut buf, &mut out)?;
            if !out.is_empty() {
                stream.write_all(&out).await?;
                out.clear();
            }
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(16 * 1024);
            }
            let due = match (&schedule, self.shared.post_start.get()) {
                (Some(s), Some(start)) => s.due(*start),
                (Some(_), None) => Some(Instant::now() + Duration::from_millis(10)),
                _ => None,
            };
            let read = match due {
                None => stream.read_buf(&mut buf).await?,
                Some(at) => tokio::select! {
                    r = stream.read_buf(&mut buf) => r?,
                    _ = tokio::time::sleep_until(at.into()) => {
                        if let (Some(s), Some(start)) = (schedule.as_mut(), self.shared.post_start.get()) {
                            while s.due(*start).is_some_and(|d| d <= Instant::now()) {
                                self.post(&mut out, s.next);
                                s.next += s.step;
                                sent_here += 1;
                            }
                            self.shared.sent.fetch_add(sent_here, Relaxed);
                            sent_here = 0;
                        }
                        continue;
                    }
                },
            };
            if read == 0 {
                let final_seq = self.shared.final_seq.load(Relaxed);
                if !(final_seq > 0 && self.tracker.borrow().complete(final_seq)) {
                    self.shared.closed_early.fetch_add(1, Relaxed);
                    anyhow::bail!("the server closed the connection");
                }
                return Ok(());
            }
        }
    }

    /// Connects, upgrades, says hello and waits for `ready`.
    async fn hello(
        &self,
        token: Option<&str>,
        source: Option<IpAddr>,
    ) -> anyhow::Result<(TcpStream, BytesMut)> {
        let (mut stream, mut buf) = wsclient::connect(self.plan.target, source, token).await?;
        let mut hello = Vec::new();
        wsclient::client_frame(&mut hello, OP_TEXT, br#"{"type":"hello"}"#);
        stream.write_all(&hello).await?;
        loop {
            if let Some(f) = wsclient::parse(&buf)? {
                let payload = &buf[f.payload..f.end()];
                if f.opcode == OP_TEXT && payload.starts_with(br#"{"type":"ready""#) {
                    let head = wsclient::number_after(payload, b"\"last_seq\":").unwrap_or(0);
                    self.tracker.borrow_mut().start = head;
                    buf.advance(f.end());
                    return Ok((stream, buf));
                }
                anyhow::bail!(
                    "expected ready, got: {}",
                    String::from_utf8_lossy(&payload[..payload.len().min(200)])
                );
            }
            if stream.read_buf(&mut buf).await? == 0 {
                anyhow::bail!("the server closed the connection before ready");
            }
        }
    }

    /// Handles every complete frame in `buf`; replies go to `out`.
    fn consume(&self, buf: &mut BytesMut, out: &mut Vec<u8>) -> anyhow::Result<()> {
        let mut now_micros = 0u64;
        let mut delivered = 0u64;
        let mut tracker = self.tracker.borrow_mut();
        while let Some(f) = wsclient::parse(buf)? {
            let payload = &buf[f.payload..f.end()];
            match f.opcode {
                OP_TEXT if payload.starts_with(br#"{"type":"message""#) => {
                    let seq = wsclient::number_after(payload, b"\"seq\":")
                        .ok_or_else(|| anyhow::anyhow!("a message without a seq"))?;
                    tracker.see(seq);
                    delivered += 1;
                    if self.index == 0 && self.shared.sample_message.get().is_none() {
                        let _ = self.shared.sample_message.set(payload.to_vec());
                    }
                    if let Some(sent) = wsclient::number_after(payload, b"\"body\":\"b ") {
                        if now_micros == 0 {
                            now_micros = unix_micros();
                        }
                        let _ = self
                            .local
                            .latency
                            .borrow_mut()
                            .record(now_micros.saturating_sub(sent).max(1));
                    }
                }
                OP_TEXT if payload.starts_with(br#"{"type":"ack""#) => {
                    self.shared.acked.fetch_add(1, Relaxed);
                    if let Some(seq) = wsclient::number_after(payload, b"\"seq\":") {
                        self.shared.max_acked_seq.fetch_max(seq, Relaxed);
                    }
                }
                OP_TEXT if payload.starts_with(br#"{"type":"error""#) => {
                    self.shared.errors.fetch_add(1, Relaxed);
                    self.shared
                        .error(format!("error frame: {}", String::from_utf8_lossy(payload)));
                }
                OP_PING => wsclient::client_frame(out, OP_PONG, payload),
                OP_CLOSE => {
                    let code =
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    let final_seq = self.shared.final_seq.load(Relaxed);
                    if !(final_seq > 0 && tracker.complete(final_seq)) {
                        self.shared.closed_early.fetch_add(1, Relaxed);
                        anyhow::bail!("the server closed the connection ({code:?})");
                    }
                }
                _ => {}
            }
            let end = f.end();
            buf.advance(end);
        }
        if delivered > 0 {
            self.local
                .received
                .set(self.local.received.get() + delivered);
            self.local.last_delivery.set(Some(Instant::now()));
            self.shared.delivered.fetch_add(delivered, Relaxed);
        }
        Ok(())
    }

    /// Appends the `send` frame of message `j` of the run.
    fn post(&self, out: &mut Vec<u8>, j: u64) {
        let payload = format!(
            r#"{{"type":"send","room":"{}","client_id":"m{j}","body":"{}"}}"#,
            self.plan.room_id,
            body(unix_micros(), self.plan.body_pad)
        );
        wsclient::client_frame(out, OP_TEXT, payload.as_bytes());
    }
}

/// Wall-clock microseconds: the one clock the poster, the receiver and the
/// ceiling writer (another process) all read.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A message body: `b`, the send time, and `pad` filler bytes.
pub fn body(sent_micros: u64, pad: usize) -> String {
    let mut b = format!("b {sent_micros}");
    if pad > 0 {
        b.push(' ');
        b.extend(std::iter::repeat_n('x', pad));
    }
    b
}
