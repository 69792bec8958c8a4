//! `hearth bench unread`: one reader in many rooms holding many messages,
//! all unread. How fast does the reader's room list answer, with exact
//! unread and mention counts in every room, and how long does the server
//! take to start on that data (it derives the counts from the log)?
//!
//! One data directory, kept across restarts. Posters sign up and create
//! the rooms; the reader signs up and joins them all before any message,
//! so everything after is unread. The server is restarted once there (a
//! start with accounts and rooms but no messages, for comparison). The
//! posters then fill the rooms over WebSocket as fast as the server acks,
//! each with a window of sends in flight; every Nth message of a room
//! names the reader. The reader lists their rooms `--requests` times, one
//! after another on one keep-alive connection: client latency, and server
//! CPU per request from `/proc`. Every answer must show each room's exact
//! unread and mention counts. Then SIGTERM, a start on the filled data
//! directory (same port), and the room list again.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::{Buf, BytesMut};
use clap::Args;
use hdrhistogram::Histogram;
use hyper::Method;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

use super::common::CommonArgs;
use super::report::{format_number, Machine, Percentiles};
use super::setup::Http;
use super::target::{self, Process, SERVER_ENV};
use super::wsclient::{self, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};

#[derive(Debug, Args, Clone)]
pub struct UnreadArgs {
    /// Rooms the reader is in.
    #[arg(long, default_value_t = 100)]
    pub rooms: usize,
    /// Messages over all rooms (spread evenly), none of them read.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Room-list requests to time, one after another.
    #[arg(long, default_value_t = 1000)]
    pub requests: u64,
    /// Every Nth message of a room names the reader (`@name`); 0: none.
    #[arg(long, default_value_t = 10)]
    pub mentions_every: u64,
    /// Posting accounts, each on one WebSocket. Poster p creates rooms
    /// p, p + posters, …, so each message goes back to one socket: its
    /// author's.
    #[arg(long, default_value_t = 4)]
    pub posters: usize,
    /// Sends each poster keeps in flight, unacknowledged.
    #[arg(long, default_value_t = 256)]
    pub window: usize,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// How long a start may take to answer `/readyz` (deriving the counts of
/// a big log included), and a stop to exit after SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(300);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a poster waits for the server to answer anything.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// Below this much server CPU over the timed requests (10 ms ticks), CPU
/// per request is too coarse to read much into.
const CPU_TICKS_WORTH_READING: f64 = 0.5;

pub fn run(args: UnreadArgs) -> anyhow::Result<()> {
    check_args(&args)?;
    let machine = Machine::now();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let quiet = args.common.quiet;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::Builder::new()
        .prefix("hearth-bench-unread-")
        .tempdir()
        .context("cannot create a temporary data directory")?;
    let data = dir.path().join("data");
    let cpus = args.common.server_cpus.as_deref();

    say(quiet, "starting a server on an empty data directory");
    let (server, start_empty) = start(&rt, cpus, &data, "127.0.0.1:0", None)?;
    let addr = server.addr;
    say(
        quiet,
        &format!(
            "{} posters create {} rooms; the reader joins them all",
            args.posters, args.rooms
        ),
    );
    let world = rt.block_on(setup(addr, &args)).context("setup failed")?;
    say(
        quiet,
        "restarting with accounts and rooms, before any message",
    );
    let (server, restart_before_fill) = restart(&rt, server, cpus, &data, addr)?;
    let rss_before_fill = target::sample(server.pid())?.rss_bytes;
    say(
        quiet,
        &format!(
            "filling: {} messages, {} posters with {} sends in flight each",
            format_number(args.messages as f64),
            args.posters,
            args.window
        ),
    );
    let fill = rt.block_on(fill(addr, &world, &args))?;
    let rss_after_fill = target::sample_settled(server.pid(), Duration::from_secs(5))?.rss_bytes;
    say(quiet, &format!("timing {} room lists", args.requests));
    let room_list = rt.block_on(time_room_list(addr, server.pid(), &world, args.requests))?;
    say(quiet, "restarting on the filled data directory");
    let (server, restart_after_fill) = restart(&rt, server, cpus, &data, addr)?;
    let rss_after_restart = target::sample_settled(server.pid(), Duration::from_secs(5))?.rss_bytes;
    say(quiet, &format!("timing {} room lists again", args.requests));
    let room_list_after_restart =
        rt.block_on(time_room_list(addr, server.pid(), &world, args.requests))?;
    drop(server);

    let mut notes = Vec::new();
    if room_list
        .server_cpu_secs
        .min(room_list_after_restart.server_cpu_secs)
        < CPU_TICKS_WORTH_READING
    {
        notes.push(format!(
            "the server used under {CPU_TICKS_WORTH_READING} s of CPU over a timed loop \
             (Linux counts it in 10 ms ticks): CPU per request is coarse; use more --requests"
        ));
    }
    let passed = room_list.wrong == 0 && room_list_after_restart.wrong == 0;
    let report = UnreadReport {
        scenario: "unread",
        command,
        machine,
        settings: json!({
            "rooms": args.rooms,
            "messages": args.messages,
            "requests": args.requests,
            "mentions_every": args.mentions_every,
            "posters": args.posters,
            "window": args.window,
            "server_cpus": args.common.server_cpus,
            "server_env": SERVER_ENV,
        }),
        notes,
        fill,
        room_list,
        room_list_after_restart,
        start_empty,
        restart_before_fill,
        restart_after_fill,
        rss_before_fill_bytes: rss_before_fill,
        rss_after_fill_bytes: rss_after_fill,
        rss_after_restart_bytes: rss_after_restart,
        passed,
    };
    emit(&report, &args.common)?;
    if !report.passed {
        let first = [&report.room_list, &report.room_list_after_restart]
            .into_iter()
            .find_map(|l| l.first_problem.clone())
            .unwrap_or_default();
        bail!(
            "the room list showed wrong counts in {} answers before the restart and {} after \
             (first: {first})",
            report.room_list.wrong,
            report.room_list_after_restart.wrong
        );
    }
    Ok(())
}

/// Refuses options that cannot apply.
fn check_args(args: &UnreadArgs) -> anyhow::Result<()> {
    if args.common.url.is_some() {
        bail!(
            "--url cannot be used with `bench unread`: it restarts the server on the same data \
             directory, so it only runs a server it starts itself"
        );
    }
    if args.common.threads.is_some() || args.common.sources.is_some() {
        bail!("--threads and --sources do not apply to `bench unread` (a few connections)");
    }
    if args.rooms == 0 || args.requests == 0 || args.window == 0 {
        bail!("--rooms, --requests and --window must be at least 1");
    }
    if args.posters == 0 || args.posters > args.rooms {
        bail!("--posters must be from 1 to --rooms (each poster owns its rooms)");
    }
    if args.messages < args.rooms as u64 {
        bail!("--messages must be at least --rooms");
    }
    Ok(())
}

/// What the report says.
#[derive(Debug, Serialize)]
pub struct UnreadReport {
    pub scenario: &'static str,
    /// The exact command line.
    pub command: String,
    pub machine: Machine,
    pub settings: Value,
    /// Things a reader must know to read the figures.
    pub notes: Vec<String>,
    pub fill: Fill,
    /// The reader's room list on the server that stored the messages…
    pub room_list: RoomList,
    /// …and on the same data after a restart (counts derived from the log).
    pub room_list_after_restart: RoomList,
    /// The first start, on an empty data directory.
    pub start_empty: Start,
    /// A restart with the accounts and rooms but no messages: the baseline
    /// for the next one.
    pub restart_before_fill: Start,
    /// A restart on all the messages.
    pub restart_after_fill: Start,
    /// Server RSS before the fill, after it, and after the restart on it.
    pub rss_before_fill_bytes: u64,
    pub rss_after_fill_bytes: u64,
    pub rss_after_restart_bytes: u64,
    /// Every answer showed every room's exact counts.
    pub passed: bool,
}

/// Filling the rooms.
#[derive(Debug, Serialize)]
pub struct Fill {
    pub rooms: usize,
    /// Messages acknowledged (all that were sent: a refused one fails the run).
    pub messages: u64,
    /// Of them, those naming the reader.
    pub mentions: u64,
    pub posters: usize,
    pub window: usize,
    /// From the first send to the last ack.
    pub secs: f64,
    pub messages_per_sec: f64,
}

/// `GET /api/v1/rooms` by the reader, timed.
#[derive(Debug, Serialize)]
pub struct RoomList {
    pub requests: u64,
    /// Rooms in an answer, and its size.
    pub rooms_listed: usize,
    pub answer_bytes: usize,
    /// Request sent → whole answer received, on one keep-alive connection.
    pub latency_ms: Percentiles,
    pub wall_secs: f64,
    /// Server user+system CPU over the timed loop, and per request.
    pub server_cpu_secs: f64,
    pub server_cpu_us_per_request: f64,
    /// Answers that were not 200 or did not show every room's exact
    /// unread and mention counts.
    pub wrong: u64,
    pub first_problem: Option<String>,
}

/// One start of the server on the kept data directory.
#[derive(Debug, Serialize)]
pub struct Start {
    /// SIGTERM → exit of the server before it (none for the first start).
    pub shutdown_ms: Option<f64>,
    /// Spawn → its `listening on` line (the store opened and its counts
    /// derived).
    pub listening_ms: f64,
    /// Spawn → the first `200` from `GET /readyz`.
    pub ready_ms: f64,
}

/// The accounts and rooms, and what each room must end up holding.
struct World {
    /// One session token per poster.
    posters: Vec<String>,
    reader: String,
    reader_token: String,
    rooms: Vec<RoomPlan>,
}

struct RoomPlan {
    id: String,
    /// The poster who created it and fills it.
    poster: usize,
    /// Messages it gets, and how many of them name the reader: every
    /// `mentions_every`-th.
    messages: u64,
    mentions: u64,
    mentions_every: u64,
}

/// Starts a server on `data` listening on `listen`, and waits for `/readyz`.
fn start(
    rt: &tokio::runtime::Runtime,
    cpus: Option<&str>,
    data: &Path,
    listen: &str,
    shutdown: Option<Duration>,
) -> anyhow::Result<(Process, Start)> {
    let spawned = Instant::now();
    let server = Process::serve_on(cpus, data, listen, &[])?;
    let listening = spawned.elapsed();
    rt.block_on(ready(server.addr))?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok((
        server,
        Start {
            shutdown_ms: shutdown.map(ms),
            listening_ms: ms(listening),
            ready_ms: ms(spawned.elapsed()),
        },
    ))
}

/// Stops the server with SIGTERM and starts it again on the same data
/// directory and address.
fn restart(
    rt: &tokio::runtime::Runtime,
    server: Process,
    cpus: Option<&str>,
    data: &Path,
    addr: SocketAddr,
) -> anyhow::Result<(Process, Start)> {
    let stopped = server.terminate(STOP_TIMEOUT)?;
    start(rt, cpus, data, &addr.to_string(), Some(stopped))
}

/// Waits until `GET /readyz` answers 200.
async fn ready(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(mut http) = Http::connect(addr).await {
            if let Ok((200, _)) = http.raw(Method::GET, "/readyz", None, None).await {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the server did not answer /readyz within {} s",
                START_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Signs up the posters and the reader; poster `r % posters` creates room
/// `r`, and the reader joins every room before any message is sent.
async fn setup(addr: SocketAddr, args: &UnreadArgs) -> anyhow::Result<World> {
    let mut http = Http::connect(addr).await?;
    let mut posters = Vec::new();
    for p in 0..args.posters {
        posters.push(account(&mut http, &format!("poster{p}")).await?);
    }
    let reader = "reader".to_string();
    let reader_token = account(&mut http, &reader).await?;
    let per_room = args.messages / args.rooms as u64;
    let extra = (args.messages % args.rooms as u64) as usize;
    let mut rooms = Vec::with_capacity(args.rooms);
    for r in 0..args.rooms {
        let poster = r % args.posters;
        let name = json!({"name": format!("unread-{r}")});
        let created = http
            .expect(
                201,
                Method::POST,
                "/api/v1/rooms",
                Some(&posters[poster]),
                Some(&name),
            )
            .await?;
        let id = created["room"]["id"]
            .as_str()
            .context("a room without an id")?
            .to_string();
        let path = format!("/api/v1/rooms/{id}/join");
        http.expect(200, Method::POST, &path, Some(&reader_token), None)
            .await?;
        let messages = per_room + u64::from(r < extra);
        rooms.push(RoomPlan {
            id,
            poster,
            messages,
            mentions: messages.checked_div(args.mentions_every).unwrap_or(0),
            mentions_every: args.mentions_every,
        });
    }
    Ok(World {
        posters,
        reader,
        reader_token,
        rooms,
    })
}

/// Signs up `name` and logs in: its session token.
async fn account(http: &mut Http, name: &str) -> anyhow::Result<String> {
    let password = format!("{name}-unread-bench");
    let user =
        json!({"username": name, "email": format!("{name}@bench.invalid"), "password": password});
    http.expect(201, Method::POST, "/api/v1/signup", None, Some(&user))
        .await?;
    let login = json!({"login": name, "password": password});
    let session = http
        .expect(200, Method::POST, "/api/v1/login", None, Some(&login))
        .await?;
    Ok(session["token"]
        .as_str()
        .context("login answered without a token")?
        .to_string())
}

/// Every poster fills its rooms at once, each on its own WebSocket.
async fn fill(addr: SocketAddr, world: &World, args: &UnreadArgs) -> anyhow::Result<Fill> {
    let acked = Arc::new(AtomicU64::new(0));
    let began = Instant::now();
    let mut posters = tokio::task::JoinSet::new();
    for (p, token) in world.posters.iter().enumerate() {
        let rooms: Vec<(String, u64, u64)> = world
            .rooms
            .iter()
            .filter(|r| r.poster == p)
            .map(|r| (r.id.clone(), r.messages, r.mentions_every))
            .collect();
        posters.spawn(post_all(
            addr,
            token.clone(),
            rooms,
            world.reader.clone(),
            args.window,
            acked.clone(),
            p,
        ));
    }
    let quiet = args.common.quiet;
    let progress = tokio::spawn({
        let acked = acked.clone();
        let total = args.messages;
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let done = acked.load(Relaxed);
                say(
                    quiet,
                    &format!(
                        "  {:>5.1}s  {} of {} acknowledged ({}/s)",
                        began.elapsed().as_secs_f64(),
                        format_number(done as f64),
                        format_number(total as f64),
                        format_number(done as f64 / began.elapsed().as_secs_f64())
                    ),
                );
            }
        }
    });
    let mut failure = None;
    while let Some(done) = posters.join_next().await {
        if let Err(e) = done.context("a poster panicked").and_then(|r| r) {
            failure.get_or_insert(e);
        }
    }
    progress.abort();
    if let Some(e) = failure {
        return Err(e.context("filling the rooms failed"));
    }
    let secs = began.elapsed().as_secs_f64();
    let messages = acked.load(Relaxed);
    Ok(Fill {
        rooms: world.rooms.len(),
        messages,
        mentions: world.rooms.iter().map(|r| r.mentions).sum(),
        posters: world.posters.len(),
        window: args.window,
        secs,
        messages_per_sec: messages as f64 / secs,
    })
}

/// Posts every message of one poster's rooms (id, messages, mentions
/// every) over one WebSocket, taking the rooms in turn, with up to
/// `window` sends unanswered. A refused send fails the fill: the counts
/// could not be checked.
async fn post_all(
    addr: SocketAddr,
    token: String,
    rooms: Vec<(String, u64, u64)>,
    reader: String,
    window: usize,
    acked: Arc<AtomicU64>,
    poster: usize,
) -> anyhow::Result<()> {
    let (mut stream, mut buf) = wsclient::connect(addr, None, Some(&token)).await?;
    let mut out = Vec::with_capacity(64 * 1024);
    wsclient::client_frame(&mut out, OP_TEXT, br#"{"type":"hello"}"#);
    let total: u64 = rooms.iter().map(|r| r.1).sum();
    let mut next = vec![0u64; rooms.len()];
    let (mut sent, mut answered, mut turn) = (0u64, 0u64, 0usize);
    while answered < total {
        while sent < total && sent - answered < window as u64 {
            // Some room has messages left while sent < total.
            let r = loop {
                let r = turn % rooms.len();
                turn += 1;
                if next[r] < rooms[r].1 {
                    break r;
                }
            };
            let (id, _, every) = &rooms[r];
            let i = next[r];
            next[r] += 1;
            let body = if *every > 0 && (i + 1) % every == 0 {
                format!("fill {i} for @{reader}")
            } else {
                format!("fill {i}")
            };
            let frame = format!(
                r#"{{"type":"send","room":"{id}","client_id":"f{poster}-{sent}","body":"{body}"}}"#
            );
            wsclient::client_frame(&mut out, OP_TEXT, frame.as_bytes());
            sent += 1;
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
        let read = timeout(ANSWER_TIMEOUT, stream.read_buf(&mut buf))
            .await
            .with_context(|| format!("poster {poster}: no answer in {ANSWER_TIMEOUT:?}"))??;
        if read == 0 {
            bail!("the server closed poster {poster}'s connection after {answered} of {total} answers");
        }
        let acks = answers(&mut buf, &mut out, poster)?;
        answered += acks;
        acked.fetch_add(acks, Relaxed);
    }
    Ok(())
}

/// Handles the complete frames in `buf` (pongs go to `out`) and returns the
/// acks among them. Everything else — the messages coming back to their
/// author, `ready` — is read and dropped.
fn answers(buf: &mut BytesMut, out: &mut Vec<u8>, poster: usize) -> anyhow::Result<u64> {
    let mut acks = 0;
    while let Some(f) = wsclient::parse(buf)? {
        let payload = &buf[f.payload..f.end()];
        match f.opcode {
            OP_TEXT if payload.starts_with(br#"{"type":"ack""#) => acks += 1,
            OP_TEXT if payload.starts_with(br#"{"type":"error""#) => bail!(
                "poster {poster}: a send was refused: {}",
                String::from_utf8_lossy(payload)
            ),
            OP_PING => wsclient::client_frame(out, OP_PONG, payload),
            OP_CLOSE => bail!("poster {poster}: the server closed the connection"),
            _ => {}
        }
        let end = f.end();
        buf.advance(end);
    }
    Ok(acks)
}

/// Times `requests` room lists by the reader on one keep-alive connection,
/// and checks every answer.
async fn time_room_list(
    addr: SocketAddr,
    pid: u32,
    world: &World,
    requests: u64,
) -> anyhow::Result<RoomList> {
    let mut http = Http::connect(addr).await?;
    let token = Some(world.reader_token.as_str());
    // One untimed request: the connection's first answer is not the point.
    let (status, first) = http.raw(Method::GET, "/api/v1/rooms", token, None).await?;
    if status != 200 {
        bail!("GET /api/v1/rooms: HTTP {status}");
    }
    let rooms_listed = serde_json::from_slice::<Value>(&first)?["rooms"]
        .as_array()
        .map_or(0, Vec::len);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let (mut wrong, mut first_problem) = (0, None);
    let cpu_before = target::sample(pid)?;
    let began = Instant::now();
    for _ in 0..requests {
        let sent = Instant::now();
        let (status, body) = http.raw(Method::GET, "/api/v1/rooms", token, None).await?;
        let _ = latency.record((sent.elapsed().as_micros() as u64).max(1));
        let problem = if status == 200 {
            check_counts(&body, world).err()
        } else {
            Some(format!("HTTP {status}"))
        };
        if let Some(p) = problem {
            wrong += 1;
            first_problem.get_or_insert(p);
        }
    }
    let wall_secs = began.elapsed().as_secs_f64();
    let cpu = target::sample(pid)?.cpu_secs - cpu_before.cpu_secs;
    Ok(RoomList {
        requests,
        rooms_listed,
        answer_bytes: first.len(),
        latency_ms: Percentiles::of(&latency),
        wall_secs,
        server_cpu_secs: cpu,
        server_cpu_us_per_request: cpu * 1e6 / requests as f64,
        wrong,
        first_problem,
    })
}

/// Every room of the plan is in the answer, joined, with exactly its
/// messages unread and its mentions counted.
fn check_counts(body: &[u8], world: &World) -> Result<(), String> {
    let answer: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let listed: HashMap<&str, &Value> = answer["rooms"]
        .as_array()
        .ok_or("no rooms in the answer")?
        .iter()
        .filter_map(|r| Some((r["id"].as_str()?, r)))
        .collect();
    for room in &world.rooms {
        let Some(r) = listed.get(room.id.as_str()) else {
            return Err(format!("room {} is not listed", room.id));
        };
        let unread = r["unread_count"].as_u64();
        let mentions = r["mention_count"].as_u64();
        if r["joined"] != true || unread != Some(room.messages) || mentions != Some(room.mentions) {
            return Err(format!(
                "room {}: joined {}, unread_count {unread:?} (want {}), mention_count {mentions:?} \
                 (want {})",
                room.id, r["joined"], room.messages, room.mentions
            ));
        }
    }
    Ok(())
}

/// Prints the report (table or JSON) and writes the files asked for.
fn emit(report: &UnreadReport, common: &CommonArgs) -> anyhow::Result<()> {
    common.emit(report, table, markdown)
}

/// (metric, value) rows shared by the table and the Markdown report.
fn rows(r: &UnreadReport) -> Vec<(&'static str, String)> {
    let n = |v: f64| format_number(v);
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / 1048576.0);
    let lat = |l: &RoomList| {
        let p = &l.latency_ms;
        format!("{:.2} / {:.2} / {:.2} / {:.2}", p.p50, p.p90, p.p99, p.max)
    };
    let start = |s: &Start| {
        let stop = s
            .shutdown_ms
            .map_or_else(|| "-".into(), |v| format!("{v:.0}"));
        format!("{stop} / {:.0} / {:.0}", s.listening_ms, s.ready_ms)
    };
    let f = &r.fill;
    vec![
        (
            "rooms / messages (mentions), all unread",
            format!(
                "{} / {} ({})",
                f.rooms,
                n(f.messages as f64),
                n(f.mentions as f64)
            ),
        ),
        (
            "fill: messages/s (s; posters × window)",
            format!(
                "{} ({:.1} s; {} × {})",
                n(f.messages_per_sec),
                f.secs,
                f.posters,
                f.window
            ),
        ),
        (
            "room list: rooms, bytes per answer",
            format!(
                "{}, {}",
                r.room_list.rooms_listed,
                n(r.room_list.answer_bytes as f64)
            ),
        ),
        ("room list p50 / p90 / p99 / max (ms)", lat(&r.room_list)),
        (
            "room list after restart p50 / p90 / p99 / max (ms)",
            lat(&r.room_list_after_restart),
        ),
        (
            "server CPU per room list (µs)",
            format!(
                "{:.0} ({} requests)",
                r.room_list.server_cpu_us_per_request, r.room_list.requests
            ),
        ),
        (
            "server CPU per room list after restart (µs)",
            format!(
                "{:.0} ({} requests)",
                r.room_list_after_restart.server_cpu_us_per_request,
                r.room_list_after_restart.requests
            ),
        ),
        (
            "start, empty: stop / listening / ready (ms)",
            start(&r.start_empty),
        ),
        (
            "restart, no messages: stop / listening / ready (ms)",
            start(&r.restart_before_fill),
        ),
        (
            "restart, filled: stop / listening / ready (ms)",
            start(&r.restart_after_fill),
        ),
        (
            "server RSS before fill / after / after restart",
            format!(
                "{} / {} / {}",
                mib(r.rss_before_fill_bytes),
                mib(r.rss_after_fill_bytes),
                mib(r.rss_after_restart_bytes)
            ),
        ),
        (
            "answers with wrong counts, before / after restart",
            format!(
                "{} / {}",
                r.room_list.wrong, r.room_list_after_restart.wrong
            ),
        ),
    ]
}

fn table(r: &UnreadReport) -> String {
    let rows = rows(r);
    let w = rows.iter().map(|x| x.0.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (name, value) in &rows {
        let _ = writeln!(out, "{name:w$}  {value}");
    }
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    verdict(&mut out, r);
    out
}

fn markdown(r: &UnreadReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## `{}`\n", r.command);
    let _ = writeln!(
        out,
        "Machine: {} × {}; load average before: {}.\n",
        r.machine.nproc, r.machine.cpu_model, r.machine.loadavg_before
    );
    let _ = writeln!(out, "| metric | value |\n|---|---:|");
    for (name, value) in rows(r) {
        let _ = writeln!(out, "| {name} | {value} |");
    }
    out.push('\n');
    for n in &r.notes {
        let _ = writeln!(out, "Note: {n}\n");
    }
    verdict(&mut out, r);
    out
}

fn verdict(out: &mut String, r: &UnreadReport) {
    let _ = writeln!(
        out,
        "{}",
        if r.passed {
            "verification: PASSED (every answer showed every room's exact unread and mention counts)"
        } else {
            "verification: FAILED (wrong counts)"
        }
    );
}

fn say(quiet: bool, msg: &str) {
    if !quiet {
        eprintln!("{msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        let room = |id: &str, messages, mentions| RoomPlan {
            id: id.into(),
            poster: 0,
            messages,
            mentions,
            mentions_every: 10,
        };
        World {
            posters: vec!["t".into()],
            reader: "reader".into(),
            reader_token: "r".into(),
            rooms: vec![room("a", 400, 40), room("b", 399, 39)],
        }
    }

    fn answer(rooms: Value) -> Vec<u8> {
        json!({ "rooms": rooms }).to_string().into_bytes()
    }

    #[test]
    fn exact_counts_in_every_room_pass() {
        let body = answer(json!([
            {"id": "a", "joined": true, "unread_count": 400, "mention_count": 40},
            {"id": "other", "joined": false},
            {"id": "b", "joined": true, "unread_count": 399, "mention_count": 39},
        ]));
        assert_eq!(check_counts(&body, &world()), Ok(()));
    }

    #[test]
    fn a_wrong_count_or_a_missing_room_fails() {
        let off_by_one = answer(json!([
            {"id": "a", "joined": true, "unread_count": 400, "mention_count": 40},
            {"id": "b", "joined": true, "unread_count": 398, "mention_count": 39},
        ]));
        let err = check_counts(&off_by_one, &world()).unwrap_err();
        assert!(err.contains("room b") && err.contains("398"), "{err}");
        let no_mentions = answer(json!([
            {"id": "a", "joined": true, "unread_count": 400, "mention_count": 0},
            {"id": "b", "joined": true, "unread_count": 399, "mention_count": 39},
        ]));
        assert!(check_counts(&no_mentions, &world()).is_err());
        let missing = answer(json!([
            {"id": "a", "joined": true, "unread_count": 400, "mention_count": 40},
        ]));
        assert!(check_counts(&missing, &world())
            .unwrap_err()
            .contains("not listed"));
        assert!(check_counts(b"{}", &world()).is_err());
    }
}
