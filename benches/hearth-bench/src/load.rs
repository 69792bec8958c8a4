//! The load generator: client connections spread over threads, each
//! thread a single-threaded runtime that owns its clients outright (no
//! locks or atomics per delivery), and the verification of every delivery.
//!
//! A client connects, says hello, waits for `ready` (which gives the
//! room's head, the seq it starts after), then reads. Posters also send
//! `send` frames on a fixed schedule, each body carrying the wall-clock
//! time it was sent, so post→delivery latency is measured at the receiver
//! (one clock, one machine). Each client keeps a bitmap of the seqs it saw
//! in its room: a seq seen twice is a duplicate, one that arrives below the
//! highest seen is reordered, and one never seen by the end is lost.
//!
//! Clients may be spread over several rooms (client `i` is in room
//! `i % rooms`), and some may stall: stop reading for a while, then read
//! again, expect to find themselves cut off by the server, and reconnect
//! with `resume` from the last seq they saw. Clients may also mark their
//! room read at a fixed interval, as an open chat window does.

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
    /// Session tokens; user `u` is a member of room `u % rooms.len()` only,
    /// and their number is a multiple of it. Empty for the ceiling writer.
    pub tokens: Vec<String>,
    /// Room ids; client `i` listens in room `i % rooms.len()`.
    pub rooms: Vec<String>,
    /// Clients 0..posters also post, each to its own room.
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
    /// Clients that stop reading for a while, if any.
    pub stall: Option<Stall>,
    /// Every client marks its room read this often, if at all.
    pub read_every: Option<Duration>,
}

impl Plan {
    fn room_of(&self, client: usize) -> usize {
        client % self.rooms.len().max(1)
    }

    /// A token of a user in the client's room, shared round-robin among
    /// that room's clients.
    fn token_of(&self, client: usize) -> Option<&str> {
        self.tokens.get(self.user_of(client)).map(String::as_str)
    }

    /// The index of the user whose token the client uses.
    fn user_of(&self, client: usize) -> usize {
        let rooms = self.rooms.len().max(1);
        let per_room = (self.tokens.len() / rooms).max(1);
        client % rooms + rooms * ((client / rooms) % per_room)
    }

    fn stalls(&self, client: usize) -> bool {
        self.stall.is_some_and(|s| client >= s.first)
    }

    /// Deliveries per second asked for: each message reaches its room's clients.
    pub fn offered_deliveries_per_sec(&self) -> f64 {
        self.clients as f64 * self.rate / self.rooms.len().max(1) as f64
    }
}

/// Clients that stop reading from their socket while messages keep coming.
#[derive(Debug, Clone, Copy)]
pub struct Stall {
    /// Clients from this index on stall (posters, the first ones, never do).
    pub first: usize,
    /// When, after posting starts, they stop reading.
    pub after: Duration,
    /// How long they read nothing.
    pub pause: Duration,
    /// Their sockets' receive buffer and MSS: small, so the server's
    /// writes block soon after they stop.
    pub narrow: wsclient::Narrow,
}

/// Counters the threads share with the main thread, for progress and the
/// decisions of when to start posting and when the run is over.
pub struct Shared {
    pub connected: AtomicUsize,
    pub failed: AtomicUsize,
    pub delivered: AtomicU64,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    /// Per room, the highest seq a poster got an ack for.
    pub max_acked_seq: Vec<AtomicU64>,
    /// `error` frames received, and connections the server closed early.
    pub errors: AtomicU64,
    pub closed_early: AtomicU64,
    pub first_error: Mutex<Option<String>>,
    /// When posting starts: set once every client is ready.
    pub post_start: OnceLock<Instant>,
    /// The same moment on the wall clock (microseconds), which the clients
    /// read anyway for latency: the origin of their read schedule.
    pub post_start_micros: OnceLock<u64>,
    /// `read` frames the clients sent, and `read` frames they received
    /// (a cursor moved by another socket of the same account).
    pub reads_sent: AtomicU64,
    pub reads_heard: AtomicU64,
    /// Per user, the highest seq its sockets marked read: its cursor must
    /// be there at the end.
    pub read_upto: Vec<AtomicU64>,
    /// Per room, the last seq of the run; valid once `finished` is set.
    pub final_seq: Vec<AtomicU64>,
    /// Every post is acknowledged (or refused): `final_seq` is known.
    pub finished: AtomicBool,
    /// Give up waiting for stragglers: they count as lost.
    pub stop: AtomicBool,
    /// The payload of the first message client 0 received: the ceiling
    /// writer sends copies of it.
    pub sample_message: OnceLock<Vec<u8>>,
    /// Stalled clients that found their connection ended once they read
    /// again, by how they found it: a close frame (1013 expected), the end
    /// of the stream, or a socket error (a reset).
    pub cut_close_frame: AtomicU64,
    pub cut_eof: AtomicU64,
    pub cut_error: AtomicU64,
    /// Stalled clients that reconnected with `resume`.
    pub resumed: AtomicU64,
}

impl Shared {
    pub fn new(rooms: usize, users: usize) -> Shared {
        let zeros = || (0..rooms.max(1)).map(|_| AtomicU64::new(0)).collect();
        Shared {
            connected: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            delivered: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            max_acked_seq: zeros(),
            errors: AtomicU64::new(0),
            closed_early: AtomicU64::new(0),
            first_error: Mutex::new(None),
            post_start: OnceLock::new(),
            post_start_micros: OnceLock::new(),
            reads_sent: AtomicU64::new(0),
            reads_heard: AtomicU64::new(0),
            read_upto: (0..users).map(|_| AtomicU64::new(0)).collect(),
            final_seq: zeros(),
            finished: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            sample_message: OnceLock::new(),
            cut_close_frame: AtomicU64::new(0),
            cut_eof: AtomicU64::new(0),
            cut_error: AtomicU64::new(0),
            resumed: AtomicU64::new(0),
        }
    }

    /// Every post is answered: each room ends at its highest acked seq.
    pub fn finish_from_acks(&self) {
        for (last, acked) in self.final_seq.iter().zip(&self.max_acked_seq) {
            last.store(acked.load(Relaxed), Relaxed);
        }
        self.finished.store(true, Relaxed);
    }

    /// Every room ends at `seq` (the ceiling writer knows it up front).
    pub fn finish_at(&self, seq: u64) {
        for last in &self.final_seq {
            last.store(seq, Relaxed);
        }
        self.finished.store(true, Relaxed);
    }

    /// Whether a client has seen every message of its room.
    fn complete(&self, tracker: &Tracker, room: usize) -> bool {
        self.finished.load(Relaxed) && tracker.complete(self.final_seq[room].load(Relaxed))
    }

    pub fn cut(&self) -> u64 {
        self.cut_close_frame.load(Relaxed)
            + self.cut_eof.load(Relaxed)
            + self.cut_error.load(Relaxed)
    }

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
    /// Deliveries the clients should have had: each one's room's messages
    /// after the head it said hello at.
    pub expected: u64,
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
            expected: 0,
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
        self.expected += other.expected;
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
        let room = plan.room_of(i);
        trackers.push((room, tracker.clone()));
        let client = Client {
            index: i,
            room,
            stalls: plan.stalls(i),
            next_read: Cell::new(0),
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
            if shared.finished.load(Relaxed)
                && trackers
                    .iter()
                    .all(|(room, t)| shared.complete(&t.borrow(), *room))
            {
                break;
            }
        }
    });
    let mut out = Outcome::empty();
    for (room, t) in &trackers {
        let t = t.borrow();
        out.duplicated += t.duplicated;
        out.reordered += t.reordered;
        if shared.finished.load(Relaxed) {
            let wanted = shared.final_seq[*room]
                .load(Relaxed)
                .saturating_sub(t.start);
            out.expected += wanted;
            if t.distinct < wanted {
                out.incomplete += 1;
                out.lost += wanted - t.distinct;
            }
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
    /// Index of its room in the plan.
    room: usize,
    /// Whether it stops reading for a while (its latency is not recorded:
    /// it is late by design).
    stalls: bool,
    /// When its next `read` is due, in wall-clock microseconds (0: not
    /// scheduled yet).
    next_read: Cell<u64>,
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

/// How a connection ended, as the client saw it.
enum Ended {
    /// A close frame, with its code.
    CloseFrame(Option<u16>),
    /// The stream ended without one.
    Eof,
    /// Reading or writing failed (a reset).
    Error(std::io::Error),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::CloseFrame(code) => write!(f, "close frame {code:?}"),
            Ended::Eof => write!(f, "end of stream"),
            Ended::Error(e) => write!(f, "{e}"),
        }
    }
}

/// Where a stalling client is in its stall.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pause {
    /// It never stalls.
    Never,
    /// It will stop reading at `post_start + after`.
    Pending,
    /// It stalled and reads again.
    Over,
}

impl Client {
    async fn run(&self) -> anyhow::Result<()> {
        let plan = &self.plan;
        let stall = plan.stall.filter(|_| self.stalls);
        let (mut stream, mut buf) = {
            let _permit = self.local.gate.acquire().await?;
            let began = Instant::now();
            let hello = br#"{"type":"hello"}"#;
            match self.hello(hello, stall.map(|s| s.narrow)).await {
                Ok((stream, buf, head)) => {
                    self.tracker.borrow_mut().start = head;
                    let micros = began.elapsed().as_micros() as u64;
                    let _ = self.local.connect.borrow_mut().record(micros.max(1));
                    self.shared.connected.fetch_add(1, Relaxed);
                    (stream, buf)
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
        let mut pause = if stall.is_some() {
            Pause::Pending
        } else {
            Pause::Never
        };
        let mut resumed = false;
        loop {
            let ended = self
                .session(&mut stream, &mut buf, &mut schedule, &mut pause)
                .await?;
            if self.shared.complete(&self.tracker.borrow(), self.room) {
                return Ok(());
            }
            if pause != Pause::Over || resumed {
                self.shared.closed_early.fetch_add(1, Relaxed);
                anyhow::bail!("the server closed the connection ({ended})");
            }
            // A stalled client was cut off, as it should be: back with resume.
            match ended {
                Ended::CloseFrame(_) => &self.shared.cut_close_frame,
                Ended::Eof => &self.shared.cut_eof,
                Ended::Error(_) => &self.shared.cut_error,
            }
            .fetch_add(1, Relaxed);
            let last = {
                let t = self.tracker.borrow();
                t.highest.max(t.start)
            };
            let hello = format!(
                r#"{{"type":"hello","resume":{{"{}":{last}}}}}"#,
                plan.rooms[self.room]
            );
            let (s, b, _) = {
                let _permit = self.local.gate.acquire().await?;
                self.hello(hello.as_bytes(), None).await?
            };
            (stream, buf) = (s, b);
            resumed = true;
            self.shared.resumed.fetch_add(1, Relaxed);
        }
    }

    /// Reads (and posts, and stalls, as planned) until the connection ends.
    async fn session(
        &self,
        stream: &mut TcpStream,
        buf: &mut BytesMut,
        schedule: &mut Option<Schedule>,
        pause: &mut Pause,
    ) -> anyhow::Result<Ended> {
        let mut out: Vec<u8> = Vec::with_capacity(256);
        loop {
            if let Some(code) = self.consume(buf, &mut out)? {
                return Ok(Ended::CloseFrame(code));
            }
            if !out.is_empty() {
                if let Err(e) = stream.write_all(&out).await {
                    return Ok(Ended::Error(e));
                }
                out.clear();
            }
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(16 * 1024);
            }
            let stall_at = match (self.plan.stall, *pause) {
                (Some(s), Pause::Pending) => self.shared.post_start.get().map(|t| *t + s.after),
                _ => None,
            };
            let due = match (schedule.as_ref(), self.shared.post_start.get()) {
                (Some(s), Some(start)) => s.due(*start),
                (None, Some(_)) => None,
                // Not started yet: look again soon.
                (Some(_), None) => Some(Instant::now() + Duration::from_millis(10)),
                (None, None) if *pause == Pause::Pending => {
                    Some(Instant::now() + Duration::from_millis(10))
                }
                (None, None) => None,
            };
            let due = match (due, stall_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let read = match due {
                None => stream.read_buf(buf).await,
                Some(at) => tokio::select! {
                    r = stream.read_buf(buf) => r,
                    _ = tokio::time::sleep_until(at.into()) => {
                        if let (Some(s), Some(start)) = (schedule.as_mut(), self.shared.post_start.get()) {
                            let mut sent_here = 0;
                            while s.due(*start).is_some_and(|d| d <= Instant::now()) {
                                self.post(&mut out, s.next);
                                s.next += s.step;
                                sent_here += 1;
                            }
                            self.shared.sent.fetch_add(sent_here, Relaxed);
                        }
                        if let (Some(at), Some(s)) = (stall_at, self.plan.stall) {
                            if at <= Instant::now() {
                                // Read nothing at all: the kernel buffers fill
                                // and the server's writes to this socket block.
                                tokio::time::sleep(s.pause).await;
                                *pause = Pause::Over;
                            }
                        }
                        continue;
                    }
                },
            };
            match read {
                Ok(0) => return Ok(Ended::Eof),
                Ok(_) => {}
                Err(e) => return Ok(Ended::Error(e)),
            }
        }
    }

    /// Connects, upgrades, sends `hello` and waits for `ready`. Returns the
    /// stream, bytes already read after `ready`, and the room's head.
    async fn hello(
        &self,
        hello: &[u8],
        narrow: Option<wsclient::Narrow>,
    ) -> anyhow::Result<(TcpStream, BytesMut, u64)> {
        let plan = &self.plan;
        let source =
            (!plan.sources.is_empty()).then(|| plan.sources[self.index % plan.sources.len()]);
        let (mut stream, mut buf) =
            wsclient::connect_with(plan.target, source, plan.token_of(self.index), narrow).await?;
        let mut frame = Vec::new();
        wsclient::client_frame(&mut frame, OP_TEXT, hello);
        stream.write_all(&frame).await?;
        loop {
            if let Some(f) = wsclient::parse(&buf)? {
                let payload = &buf[f.payload..f.end()];
                if f.opcode == OP_TEXT && payload.starts_with(br#"{"type":"ready""#) {
                    let head = wsclient::number_after(payload, b"\"last_seq\":").unwrap_or(0);
                    buf.advance(f.end());
                    return Ok((stream, buf, head));
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

    /// Handles every complete frame in `buf`; replies go to `out`. Returns
    /// the code of a close frame, if one came.
    fn consume(
        &self,
        buf: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> anyhow::Result<Option<Option<u16>>> {
        let mut now_micros = 0u64;
        let mut delivered = 0u64;
        let mut heard = 0u64;
        let mut closed = None;
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
                    if self.stalls {
                        // Late by design; the others' latency is the finding.
                    } else if let Some(sent) = wsclient::number_after(payload, b"\"body\":\"b ") {
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
                        self.shared.max_acked_seq[self.room].fetch_max(seq, Relaxed);
                    }
                }
                OP_TEXT if payload.starts_with(br#"{"type":"read""#) => heard += 1,
                OP_TEXT if payload.starts_with(br#"{"type":"error""#) => {
                    self.shared.errors.fetch_add(1, Relaxed);
                    self.shared
                        .error(format!("error frame: {}", String::from_utf8_lossy(payload)));
                }
                OP_PING => wsclient::client_frame(out, OP_PONG, payload),
                OP_CLOSE => {
                    closed = Some(
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])),
                    );
                }
                _ => {}
            }
            let end = f.end();
            buf.advance(end);
            if closed.is_some() {
                break;
            }
        }
        if delivered > 0 {
            self.local
                .received
                .set(self.local.received.get() + delivered);
            self.local.last_delivery.set(Some(Instant::now()));
            self.shared.delivered.fetch_add(delivered, Relaxed);
            if let Some(every) = self.plan.read_every {
                if now_micros == 0 {
                    now_micros = unix_micros();
                }
                self.read_if_due(out, now_micros, tracker.highest, every);
            }
        }
        if heard > 0 {
            self.shared.reads_heard.fetch_add(heard, Relaxed);
        }
        Ok(closed)
    }

    /// Appends a `read` frame up to the highest seq seen, if this client's
    /// read is due. Reads ride on deliveries instead of a timer per client:
    /// a read is only worth sending when something new arrived, and with
    /// messages flowing one arrives within milliseconds of the due time.
    /// Client `i` first reads `i / clients` of the way into the interval,
    /// so all together send a steady `clients / every` reads a second.
    fn read_if_due(&self, out: &mut Vec<u8>, now: u64, highest: u64, every: Duration) {
        let Some(&start) = self.shared.post_start_micros.get() else {
            return;
        };
        let every = (every.as_micros() as u64).max(1);
        let mut due = self.next_read.get();
        if due == 0 {
            due = start + every * self.index as u64 / self.plan.clients.max(1) as u64;
        }
        if now >= due {
            let payload = format!(
                r#"{{"type":"read","room":"{}","seq":{highest}}}"#,
                self.plan.rooms[self.room]
            );
            wsclient::client_frame(out, OP_TEXT, payload.as_bytes());
            self.shared.reads_sent.fetch_add(1, Relaxed);
            if let Some(upto) = self.shared.read_upto.get(self.plan.user_of(self.index)) {
                upto.fetch_max(highest, Relaxed);
            }
            // The next one on the same phase: a late read does not shift
            // the client's place in the interval.
            due += every * ((now - due) / every + 1);
        }
        self.next_read.set(due);
    }

    /// Appends the `send` frame of message `j` of the run, to its room.
    fn post(&self, out: &mut Vec<u8>, j: u64) {
        let payload = format!(
            r#"{{"type":"send","room":"{}","client_id":"m{j}","body":"{}"}}"#,
            self.plan.rooms[self.room],
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
