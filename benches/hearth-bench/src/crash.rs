//! `hearth bench crash`: the crash loop of the test suite
//! (`acked_messages_survive_random_kill_9`) as a long run anyone can do on
//! their own machine.
//!
//! One data directory, kept across cycles. Each cycle: posters send over
//! WebSocket (up to 16 sends in flight each) and REST (one request at a
//! time each), every send with its own `client_id`; the server is killed
//! with SIGKILL at a random moment; it is started again on the same
//! directory; every send whose outcome the poster never learned is sent
//! again with the same `client_id`; then each room is read back and
//! checked against what was acknowledged. Any acknowledged message lost,
//! duplicated or out of place, a gap in the seqs, or a start that fails
//! makes the run fail (exit 1).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Buf;
use clap::Args;
use hyper::Method;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

use super::common::CommonArgs;
use super::report::{format_number, Machine};
use super::setup::Http;
use super::target::SERVER_ENV;
use super::wsclient::{self, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};

#[derive(Debug, Args, Clone)]
pub struct CrashArgs {
    /// Kill-and-restart cycles.
    #[arg(long, default_value_t = 100)]
    pub cycles: usize,
    /// Seed of the kill moments and of the pages read back (default: from
    /// the clock). Printed by every run, to replay it.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Rooms the posters alternate between.
    #[arg(long, default_value_t = 2)]
    pub rooms: usize,
    /// Posters over WebSocket, each an account of its own with up to 16
    /// sends in flight.
    #[arg(long, default_value_t = 2)]
    pub ws_posters: usize,
    /// Posters over REST, each an account of its own posting one message
    /// at a time on a keep-alive connection.
    #[arg(long, default_value_t = 2)]
    pub rest_posters: usize,
    /// The kill comes at a random moment at least this many milliseconds
    /// after the posters start…
    #[arg(long, default_value_t = 40)]
    pub kill_min_ms: u64,
    /// …and at most this many.
    #[arg(long, default_value_t = 350)]
    pub kill_max_ms: u64,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Sends a WebSocket poster keeps in flight before waiting for acks.
const WS_WINDOW: usize = 16;
/// Sends per poster per cycle, at most. The server dies within a second,
/// long before; this only bounds the loop.
const MAX_SENDS: usize = 20_000;
/// How long one request, frame or poster may take before it counts as
/// lost to the kill (or, with the server up, as an error).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a start on the kept data directory may take.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Messages per history page: the API's largest.
const PAGE: u64 = 200;
/// Every how many cycles the whole log of each room is read back.
const FULL_CHECK_EVERY: usize = 10;

pub fn run(args: CrashArgs) -> anyhow::Result<()> {
    check_args(&args)?;
    let machine = Machine::now();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let seed = args.seed.unwrap_or_else(clock_seed);
    let quiet = args.common.quiet;
    say(
        quiet,
        &format!(
            "crash loop: {} cycles, seed {seed} (replay with --seed {seed})",
            args.cycles
        ),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::Builder::new()
        .prefix("hearth-bench-crash-")
        .tempdir()
        .context("cannot create a temporary data directory")?;
    let began = Instant::now();
    let cpus = args.common.server_cpus.clone();
    let (server, _) = Server::start(&rt, cpus.as_deref(), dir.path())?;
    let posters = args.ws_posters + args.rest_posters;
    let world = rt
        .block_on(setup(server.addr, posters, args.rooms))
        .context("setup failed")?;
    let mut crash = CrashLoop {
        args: args.clone(),
        dir: dir.path().to_path_buf(),
        rng: StdRng::seed_from_u64(seed),
        server,
        world,
        ledger: Ledger::new(args.rooms),
        checked: vec![0; args.rooms],
        faults: Faults::default(),
        counts: Counts::default(),
        restarts: Vec::new(),
    };
    let mut cycles = 0;
    for cycle in 0..args.cycles {
        if let Err(e) = crash.cycle(&rt, cycle) {
            crash
                .faults
                .flag(Fault::Error, || format!("cycle {cycle}: {e:#}"));
            break;
        }
        cycles = cycle + 1;
        if cycles % FULL_CHECK_EVERY == 0 {
            say(
                quiet,
                &format!(
                    "  {cycles} cycles, {} messages acknowledged, {:.0} s",
                    crash.counts.acked,
                    began.elapsed().as_secs_f64()
                ),
            );
        }
        if crash.faults.any() {
            break;
        }
    }
    let CrashLoop {
        server,
        faults,
        counts,
        mut restarts,
        ledger,
        ..
    } = crash;
    drop(server);
    let total_secs = began.elapsed().as_secs_f64();
    restarts.sort();
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let passed = !faults.any() && cycles == args.cycles;
    // A failed run keeps its data directory, so what went wrong can be read.
    let data_kept = (!passed).then(|| dir.keep().display().to_string());
    let durability =
        std::env::var("HEARTH_DURABILITY").unwrap_or_else(|_| "flush (default)".into());
    let report = CrashReport {
        scenario: "crash",
        command,
        machine,
        settings: json!({
            "cycles": args.cycles,
            "seed": seed,
            "rooms": args.rooms,
            "ws_posters": args.ws_posters,
            "ws_window": WS_WINDOW,
            "rest_posters": args.rest_posters,
            "kill_after_ms": [args.kill_min_ms, args.kill_max_ms],
            "full_check_every": FULL_CHECK_EVERY,
            "server_cpus": args.common.server_cpus,
            "durability": durability,
            "server_env": SERVER_ENV,
        }),
        seed,
        cycles,
        acked: counts.acked,
        acked_websocket: counts.acked_websocket,
        acked_rest: counts.acked_rest,
        unacked_resent: counts.unacked_resent,
        unacked_already_stored: counts.unacked_already_stored,
        stored: ledger.by_cid.len() as u64,
        faults,
        median_restart_ms: ms(restarts.get(restarts.len() / 2)),
        slowest_restart_ms: ms(restarts.last()),
        total_secs,
        data_kept,
        passed,
    };
    emit(&report, &args.common)?;
    if !report.passed {
        let f = &report.faults;
        bail!(
            "the crash loop failed after {} of {} cycles: {} lost, {} duplicated, {} reordered, \
             {} gaps, {} stored without an ack, {} errors, {} failed starts (first: {}); \
             data directory kept in {}",
            report.cycles,
            args.cycles,
            f.lost,
            f.duplicated,
            f.reordered,
            f.gaps,
            f.stored_without_ack,
            f.errors,
            f.failed_restarts,
            f.first.as_deref().unwrap_or("-"),
            report.data_kept.as_deref().unwrap_or("-"),
        );
    }
    Ok(())
}

/// Refuses options that cannot apply: the scenario kills the server, so it
/// must be a child it started itself.
fn check_args(args: &CrashArgs) -> anyhow::Result<()> {
    if args.common.url.is_some() {
        bail!(
            "--url cannot be used with `bench crash`: it kills the server with SIGKILL and \
             starts it again on the same data directory, so it only runs a server it starts \
             itself"
        );
    }
    if args.common.threads.is_some() || args.common.sources.is_some() {
        bail!("--threads and --sources do not apply to `bench crash` (a few posters, one address)");
    }
    if args.cycles == 0 || args.rooms == 0 {
        bail!("--cycles and --rooms must be at least 1");
    }
    if args.ws_posters + args.rest_posters == 0 {
        bail!("at least one of --ws-posters and --rest-posters must be at least 1");
    }
    if args.kill_min_ms > args.kill_max_ms {
        bail!("--kill-min-ms must not be above --kill-max-ms");
    }
    Ok(())
}

/// The report: `--json`, `--json-file`, and the table or `--report` Markdown.
#[derive(Debug, Serialize)]
pub struct CrashReport {
    pub scenario: &'static str,
    /// The exact command line.
    pub command: String,
    pub machine: Machine,
    pub settings: Value,
    pub seed: u64,
    /// Cycles completed: killed, restarted, resent and checked.
    pub cycles: usize,
    /// Sends the server acknowledged while it was up (WebSocket `ack`s and
    /// REST `201`s).
    pub acked: u64,
    pub acked_websocket: u64,
    pub acked_rest: u64,
    /// Sends whose answer was lost in a kill, sent again after the restart
    /// with the same `client_id`…
    pub unacked_resent: u64,
    /// …and how many of those were already on disk (`200` with the
    /// original seq rather than `201`).
    pub unacked_already_stored: u64,
    /// Messages in the rooms at the end: acknowledged plus resent.
    pub stored: u64,
    #[serde(flatten)]
    pub faults: Faults,
    /// Spawn to the first answered request (`GET /healthz`) on the kept
    /// data directory.
    pub median_restart_ms: f64,
    pub slowest_restart_ms: f64,
    pub total_secs: f64,
    /// Where a failed run left its data directory.
    pub data_kept: Option<String>,
    /// Every cycle done, and every fault counter 0.
    pub passed: bool,
}

/// What broke the promise. Every counter must stay 0.
#[derive(Debug, Default, Serialize)]
pub struct Faults {
    /// Acknowledged messages not in their room.
    pub lost: u64,
    /// A `client_id` stored twice, two acknowledgements for one seq, or a
    /// resend of an acknowledged `client_id` stored anew.
    pub duplicated: u64,
    /// Acknowledged messages at another seq than their ack said, and seqs
    /// that go backwards.
    pub reordered: u64,
    /// Seqs skipped in a room's log.
    pub gaps: u64,
    /// Messages stored whose `client_id` was never acknowledged or resent.
    pub stored_without_ack: u64,
    /// Sends refused, and requests that failed while the server was up.
    pub errors: u64,
    /// Starts on the kept data directory that failed or did not answer.
    pub failed_restarts: u64,
    /// The first of all the above, in words.
    #[serde(rename = "first_problem")]
    pub first: Option<String>,
}

#[derive(Clone, Copy)]
enum Fault {
    Lost,
    Duplicated,
    Reordered,
    Gap,
    StoredWithoutAck,
    Error,
    FailedStart,
}

impl Faults {
    fn any(&self) -> bool {
        self.lost
            + self.duplicated
            + self.reordered
            + self.gaps
            + self.stored_without_ack
            + self.errors
            + self.failed_restarts
            > 0
    }

    fn flag(&mut self, kind: Fault, what: impl FnOnce() -> String) {
        *match kind {
            Fault::Lost => &mut self.lost,
            Fault::Duplicated => &mut self.duplicated,
            Fault::Reordered => &mut self.reordered,
            Fault::Gap => &mut self.gaps,
            Fault::StoredWithoutAck => &mut self.stored_without_ack,
            Fault::Error => &mut self.errors,
            Fault::FailedStart => &mut self.failed_restarts,
        } += 1;
        if self.first.is_none() {
            self.first = Some(what());
        }
    }
}

#[derive(Default)]
struct Counts {
    acked: u64,
    acked_websocket: u64,
    acked_rest: u64,
    unacked_resent: u64,
    unacked_already_stored: u64,
}

/// The accounts and rooms every cycle posts in.
struct World {
    /// One session token per poster (sessions survive restarts).
    tokens: Vec<String>,
    rooms: Arc<[String]>,
}

/// Signs up one account per poster, creates the rooms and puts every
/// poster in every room. (The shared fixture of the other scenarios gives
/// each user one room; here every poster writes to all of them.)
async fn setup(addr: SocketAddr, posters: usize, rooms: usize) -> anyhow::Result<World> {
    let mut http = Http::connect(addr).await?;
    let mut call = async |path: &str, token: Option<&str>, body: Value| {
        let (status, answer) = http
            .call_patiently(Method::POST, path, token, Some(&body))
            .await?;
        if !(200..300).contains(&status) {
            bail!("setup: {path}: HTTP {status}: {answer}");
        }
        anyhow::Ok(answer)
    };
    let mut tokens = Vec::new();
    for p in 0..posters {
        let name = format!("poster{p}");
        let password = format!("{name}-crash-bench");
        let email = format!("{name}@bench.invalid");
        let user = json!({"username": name, "email": email, "password": password});
        call("/api/v1/signup", None, user).await?;
        let login = json!({"login": name, "password": password});
        let session = call("/api/v1/login", None, login).await?;
        let token = session["token"].as_str().context("login without a token")?;
        tokens.push(token.to_string());
    }
    let mut ids = Vec::new();
    for r in 0..rooms {
        let name = json!({"name": format!("crash-{r}")});
        let room = call("/api/v1/rooms", Some(&tokens[0]), name).await?;
        let id = room["room"]["id"]
            .as_str()
            .context("a room without an id")?;
        for token in &tokens[1..] {
            let path = format!("/api/v1/rooms/{id}/join");
            call(&path, Some(token), json!({})).await?;
        }
        ids.push(id.to_string());
    }
    Ok(World {
        tokens,
        rooms: ids.into(),
    })
}

/// The state carried from cycle to cycle.
struct CrashLoop {
    args: CrashArgs,
    /// Holds `data/` (the store every start opens) and `server.log`.
    dir: PathBuf,
    rng: StdRng,
    server: Server,
    world: World,
    ledger: Ledger,
    /// Per room, the seq up to which its log has been read and checked.
    checked: Vec<u64>,
    faults: Faults,
    counts: Counts,
    /// Spawn → first answered request, every restart.
    restarts: Vec<Duration>,
}

impl CrashLoop {
    /// Posts, kills, restarts, resends and checks. Faults are counted; an
    /// error (a poster that never stopped, history that cannot be read)
    /// ends the run.
    fn cycle(&mut self, rt: &tokio::runtime::Runtime, cycle: usize) -> anyhow::Result<()> {
        let context = format!("cycle {cycle}");
        let unacked = self.post_until_killed(rt, cycle)?;
        let cpus = self.args.common.server_cpus.as_deref();
        match Server::start(rt, cpus, &self.dir) {
            Ok((server, took)) => {
                self.server = server;
                self.restarts.push(took);
            }
            Err(e) => {
                self.faults
                    .flag(Fault::FailedStart, || format!("{context}: {e:#}"));
                return Ok(());
            }
        }
        let full = (cycle + 1) % FULL_CHECK_EVERY == 0 || cycle + 1 == self.args.cycles;
        rt.block_on(async {
            let mut http = Http::connect(self.server.addr).await?;
            self.resend_unacked(&mut http, unacked, &context).await;
            self.resend_one_acked(&mut http, &context).await;
            for room in 0..self.world.rooms.len() {
                self.check_room(&mut http, room, full, &context).await?;
            }
            anyhow::Ok(())
        })
    }

    /// Starts the posters, kills the server under them at a random moment,
    /// and enters what they learned in the ledger. Returns the sends whose
    /// outcome they never learned: (`client_id`, room, author).
    fn post_until_killed(
        &mut self,
        rt: &tokio::runtime::Runtime,
        cycle: usize,
    ) -> anyhow::Result<Vec<(String, usize, usize)>> {
        let args = &self.args;
        let kill_after =
            Duration::from_millis(self.rng.gen_range(args.kill_min_ms..=args.kill_max_ms));
        let addr = self.server.addr;
        let mut posters = Vec::new();
        for p in 0..args.ws_posters + args.rest_posters {
            let token = self.world.tokens[p].clone();
            let rooms = self.world.rooms.clone();
            posters.push(if p < args.ws_posters {
                let prefix = format!("c{cycle}-w{p}");
                rt.spawn(ws_poster(addr, token, rooms, prefix, p))
            } else {
                let prefix = format!("c{cycle}-r{p}");
                rt.spawn(rest_poster(addr, token, rooms, prefix, p))
            });
        }
        std::thread::sleep(kill_after);
        self.server.kill9();

        let tallies = rt.block_on(async {
            let mut tallies = Vec::new();
            for p in posters {
                let abort = p.abort_handle();
                match timeout(ANSWER_TIMEOUT + Duration::from_secs(5), p).await {
                    Ok(Ok(t)) => tallies.push(t),
                    Ok(Err(e)) => bail!("a poster failed: {e}"),
                    Err(_) => {
                        abort.abort();
                        bail!("a poster did not notice the server's death");
                    }
                }
            }
            anyhow::Ok(tallies)
        })?;
        let mut unacked = Vec::new();
        for tally in tallies {
            for (cid, room, seq) in tally.acked {
                self.counts.acked += 1;
                if tally.over_websocket {
                    self.counts.acked_websocket += 1;
                } else {
                    self.counts.acked_rest += 1;
                }
                self.ledger
                    .record(&mut self.faults, cid, room, seq, tally.author);
            }
            for e in tally.errors {
                self.faults
                    .flag(Fault::Error, || format!("cycle {cycle}: {e}"));
            }
            unacked.extend(tally.unacked.into_iter().map(|(c, r)| (c, r, tally.author)));
        }
        Ok(unacked)
    }

    /// Sends again every send whose answer was lost: it must be stored
    /// exactly once, whether or not the first attempt reached disk.
    async fn resend_unacked(
        &mut self,
        http: &mut Http,
        unacked: Vec<(String, usize, usize)>,
        context: &str,
    ) {
        for (cid, room, author) in unacked {
            let answer = post(http, &self.world, room, author, &cid).await;
            match answer {
                Ok((status @ (200 | 201), seq)) => {
                    self.counts.unacked_resent += 1;
                    if status == 200 {
                        self.counts.unacked_already_stored += 1;
                    }
                    self.ledger.record(&mut self.faults, cid, room, seq, author);
                }
                Ok((status, _)) | Err((status, _)) => {
                    self.faults.flag(Fault::Error, || {
                        format!("{context}: resending {cid} got HTTP {status}")
                    });
                }
            }
        }
    }

    /// A resend of something acknowledged, as far back as the server's
    /// dedup window reaches, gets its seq back.
    async fn resend_one_acked(&mut self, http: &mut Http, context: &str) {
        if let Some((cid, a)) = self.ledger.pick(&mut self.rng, dedup_window()) {
            match post(http, &self.world, a.room, a.author, &cid).await {
                Ok((200, seq)) if seq == a.seq => {}
                Ok((201, seq)) => self.faults.flag(Fault::Duplicated, || {
                    format!("{context}: resending acknowledged {cid} stored it again: {seq}")
                }),
                Ok((status, seq)) => self.faults.flag(Fault::Reordered, || {
                    let first = a.seq;
                    format!("{context}: resending {cid} (seq {first}): {status}, seq {seq}")
                }),
                Err((status, e)) => self.faults.flag(Fault::Error, || {
                    format!("{context}: resending acknowledged {cid}: HTTP {status}: {e}")
                }),
            }
        }
    }

    /// Reads a room back and checks it against the ledger: seqs run
    /// 1, 2, 3… with no gap, each acknowledged `client_id` sits at its
    /// seq, and nothing else is there. Reading the whole log every cycle
    /// would grow with the square of the run, so most cycles read what is
    /// new plus one random older page; every tenth cycle, and the last,
    /// read it all.
    async fn check_room(
        &mut self,
        http: &mut Http,
        room: usize,
        full: bool,
        context: &str,
    ) -> anyhow::Result<()> {
        let done = self.checked[room];
        let from = if full { 0 } else { done };
        let token = &self.world.tokens[0];
        let id = &self.world.rooms[room];
        let acked = &self.ledger.by_seq[room];
        let pages = (acked.len() as u64 / PAGE) as usize + 10;
        let log = read_after(http, token, id, from, pages).await?;
        let faults = &mut self.faults;
        let by_seq: HashMap<u64, &str> = log
            .iter()
            .filter_map(|(seq, cid)| Some((*seq, cid.as_deref()?)))
            .collect();
        let by_cid: HashMap<&str, u64> = by_seq.iter().map(|(s, c)| (*c, *s)).collect();
        let mut expect = from + 1;
        for (seq, cid) in &log {
            let seq = *seq;
            if seq != expect {
                let (kind, what) = if seq > expect {
                    (Fault::Gap, "skips from")
                } else {
                    (Fault::Reordered, "goes back from")
                };
                faults.flag(kind, || {
                    format!("{context}: room {room} {what} seq {} to {seq}", expect - 1)
                });
            }
            expect = seq + 1;
            let Some(cid) = cid.as_deref() else {
                faults.flag(Fault::StoredWithoutAck, || {
                    format!("{context}: seq {seq} of room {room} has no client_id")
                });
                continue;
            };
            match self.ledger.by_cid.get(cid) {
                Some(a) if a.room == room && a.seq == seq => {}
                // Also at its own seq, read now or checked in an earlier cycle.
                Some(a)
                    if a.room == room && (a.seq <= from || by_seq.get(&a.seq) == Some(&cid)) =>
                {
                    faults.flag(Fault::Duplicated, || {
                        let first = a.seq;
                        format!(
                            "{context}: {cid} is at seq {first} and again at {seq} of room {room}"
                        )
                    })
                }
                // Not at its own seq: counted below, as reordered.
                Some(a) if a.room == room => {}
                _ => faults.flag(Fault::StoredWithoutAck, || {
                    format!("{context}: seq {seq} of room {room} holds {cid}, never acknowledged")
                }),
            }
        }
        for (seq, cid) in acked.range(from + 1..) {
            if by_seq.get(seq) == Some(&cid.as_str()) {
                continue;
            }
            match by_cid.get(cid.as_str()) {
                Some(at) => faults.flag(Fault::Reordered, || {
                    format!(
                        "{context}: {cid}, acknowledged as seq {seq} of room {room}, is at {at}"
                    )
                }),
                None => faults.flag(Fault::Lost, || {
                    format!("{context}: {cid}, acknowledged as seq {seq} of room {room}, is gone")
                }),
            }
        }
        let head = log.last().map_or(from, |m| m.0);
        if !full && done > 0 {
            let after = self.rng.gen_range(0..done);
            let page = read_after(http, token, id, after, 1).await?;
            for ((seq, cid), want) in page.iter().zip(after + 1..) {
                if *seq != want || acked.get(seq) != cid.as_ref() {
                    faults.flag(Fault::Lost, || {
                        let expected = acked.get(&want);
                        format!(
                            "{context}: re-reading room {room} after seq {after}: seq {seq} \
                             holds {cid:?}, expected seq {want} with {expected:?}"
                        )
                    });
                }
            }
        }
        self.checked[room] = head;
        Ok(())
    }
}

/// The server's `storage.dedup_window`: `HEARTH_DEDUP_WINDOW` if this
/// process has it, else the server's default; the server is started with
/// it, so a resend is checked against what the server remembers.
fn dedup_window() -> u64 {
    std::env::var("HEARTH_DEDUP_WINDOW")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|w| *w > 0)
        .unwrap_or(16_384)
}

/// Everything acknowledged so far, by `client_id` and by (room, seq).
struct Ledger {
    by_cid: HashMap<String, Acked>,
    /// Per room, seq → `client_id`.
    by_seq: Vec<BTreeMap<u64, String>>,
    /// Every `client_id` in the order acknowledged, to pick one at random.
    order: Vec<String>,
}

#[derive(Clone, Copy)]
struct Acked {
    room: usize,
    seq: u64,
    /// The poster's account: the dedup key is (room, author, `client_id`).
    author: usize,
}

impl Ledger {
    fn new(rooms: usize) -> Ledger {
        Ledger {
            by_cid: HashMap::new(),
            by_seq: vec![BTreeMap::new(); rooms],
            order: Vec::new(),
        }
    }

    fn record(&mut self, faults: &mut Faults, cid: String, room: usize, seq: u64, author: usize) {
        if let Some(other) = self.by_seq[room].get(&seq) {
            faults.flag(Fault::Duplicated, || {
                format!("{other} and {cid} were both acknowledged as seq {seq} of room {room}")
            });
            return;
        }
        if let Some(old) = self.by_cid.get(&cid) {
            faults.flag(Fault::Duplicated, || {
                format!(
                    "{cid} was acknowledged twice: seq {} of room {} and seq {seq} of room {room}",
                    old.seq, old.room
                )
            });
            return;
        }
        self.by_seq[room].insert(seq, cid.clone());
        self.order.push(cid.clone());
        self.by_cid.insert(cid, Acked { room, seq, author });
    }

    /// An acknowledged `client_id` at random among those the server still
    /// remembers: within the newest half of `window` seqs of its room (the
    /// server deduplicates against the room's newest `window` events; half,
    /// for margin).
    fn pick(&self, rng: &mut StdRng, window: u64) -> Option<(String, Acked)> {
        if self.order.is_empty() {
            return None;
        }
        let any = &self.order[rng.gen_range(0..self.order.len())];
        let room = self.by_cid.get(any)?.room;
        let seqs = &self.by_seq[room];
        let head = *seqs.keys().next_back()?;
        let within = seqs.range(head.saturating_sub(window / 2)..);
        let n = within.clone().count();
        let (_, cid) = within.clone().nth(rng.gen_range(0..n.max(1)))?;
        Some((cid.clone(), *self.by_cid.get(cid)?))
    }
}

/// What one poster learned before the server died under it.
struct Tally {
    author: usize,
    over_websocket: bool,
    /// (`client_id`, room, seq) of every acknowledged send.
    acked: Vec<(String, usize, u64)>,
    /// (`client_id`, room) of sends whose outcome was never learned.
    unacked: Vec<(String, usize)>,
    /// Sends refused while the server was up.
    errors: Vec<String>,
}

impl Tally {
    fn new(author: usize, over_websocket: bool) -> Tally {
        Tally {
            author,
            over_websocket,
            acked: Vec::new(),
            unacked: Vec::new(),
            errors: Vec::new(),
        }
    }
}

fn body_of(cid: &str) -> String {
    format!("crash {cid}")
}

/// Posts over one WebSocket with up to [`WS_WINDOW`] sends in flight,
/// alternating rooms, until the connection dies.
async fn ws_poster(
    addr: SocketAddr,
    token: String,
    rooms: Arc<[String]>,
    prefix: String,
    author: usize,
) -> Tally {
    let mut tally = Tally::new(author, true);
    let Ok(Ok((mut stream, mut buf))) =
        timeout(ANSWER_TIMEOUT, wsclient::connect(addr, None, Some(&token))).await
    else {
        return tally;
    };
    let mut out = Vec::new();
    wsclient::client_frame(&mut out, OP_TEXT, br#"{"type":"hello"}"#);
    let mut in_flight: HashMap<String, usize> = HashMap::new();
    let mut n = 0;
    'run: loop {
        while in_flight.len() < WS_WINDOW && n < MAX_SENDS {
            let cid = format!("{prefix}-{n}");
            let room = n % rooms.len();
            let frame = json!({
                "type": "send", "room": rooms[room], "client_id": cid, "body": body_of(&cid),
            });
            wsclient::client_frame(&mut out, OP_TEXT, frame.to_string().as_bytes());
            in_flight.insert(cid, room);
            n += 1;
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                break;
            }
            out.clear();
        }
        if in_flight.is_empty() {
            break;
        }
        match timeout(ANSWER_TIMEOUT, stream.read_buf(&mut buf)).await {
            Ok(Ok(read)) if read > 0 => {}
            _ => break,
        }
        while let Ok(Some(f)) = wsclient::parse(&buf) {
            let payload = &buf[f.payload..f.end()];
            match f.opcode {
                OP_TEXT => {
                    let frame: Value = serde_json::from_slice(payload).unwrap_or_default();
                    on_frame(&frame, &rooms, &mut in_flight, &mut tally);
                }
                OP_PING => wsclient::client_frame(&mut out, OP_PONG, payload),
                OP_CLOSE => break 'run,
                _ => {}
            }
            buf.advance(f.end());
        }
    }
    tally.unacked.extend(in_flight);
    tally
}

/// An `ack` settles its send; an `error` is a fault, and its send counts as
/// unacknowledged (it is resent after the restart).
fn on_frame(
    frame: &Value,
    rooms: &[String],
    in_flight: &mut HashMap<String, usize>,
    tally: &mut Tally,
) {
    let cid = frame["client_id"].as_str().unwrap_or_default();
    match frame["type"].as_str() {
        Some("ack") => {
            let Some(room) = in_flight.remove(cid) else {
                return;
            };
            match frame["seq"].as_u64() {
                Some(seq) if frame["room"] == rooms[room].as_str() => {
                    tally.acked.push((cid.to_string(), room, seq))
                }
                _ => {
                    tally.errors.push(format!("a wrong ack for {cid}: {frame}"));
                    tally.unacked.push((cid.to_string(), room));
                }
            }
        }
        Some("error") => {
            tally.errors.push(format!("a send was refused: {frame}"));
            if let Some(room) = in_flight.remove(cid) {
                tally.unacked.push((cid.to_string(), room));
            }
        }
        _ => {}
    }
}

/// Posts over REST, one request at a time, alternating rooms, until the
/// server stops answering.
async fn rest_poster(
    addr: SocketAddr,
    token: String,
    rooms: Arc<[String]>,
    prefix: String,
    author: usize,
) -> Tally {
    let mut tally = Tally::new(author, false);
    let Ok(Ok(mut http)) = timeout(ANSWER_TIMEOUT, Http::connect(addr)).await else {
        return tally;
    };
    for n in 0..MAX_SENDS {
        let cid = format!("{prefix}-{n}");
        let room = n % rooms.len();
        let path = format!("/api/v1/rooms/{}/messages", rooms[room]);
        let body = json!({"body": body_of(&cid), "client_id": cid});
        let answer = timeout(
            ANSWER_TIMEOUT,
            http.call(Method::POST, &path, Some(&token), Some(&body)),
        )
        .await;
        match answer {
            Ok(Ok((201, b))) if b["message"]["seq"].is_u64() => {
                let seq = b["message"]["seq"].as_u64().unwrap_or_default();
                tally.acked.push((cid, room, seq));
            }
            Ok(Ok((status, b))) => {
                tally
                    .errors
                    .push(format!("a REST send got HTTP {status}: {b}"));
                tally.unacked.push((cid, room));
                break;
            }
            // The connection died: the kill.
            _ => {
                tally.unacked.push((cid, room));
                break;
            }
        }
    }
    tally
}

/// Posts `cid` as its author over REST: the status and seq, or the status
/// (0 when there was no answer) and what went wrong.
async fn post(
    http: &mut Http,
    world: &World,
    room: usize,
    author: usize,
    cid: &str,
) -> Result<(u16, u64), (u16, String)> {
    let path = format!("/api/v1/rooms/{}/messages", world.rooms[room]);
    let body = json!({"body": body_of(cid), "client_id": cid});
    let call = http.call(
        Method::POST,
        &path,
        Some(&world.tokens[author]),
        Some(&body),
    );
    match timeout(ANSWER_TIMEOUT, call).await {
        Ok(Ok((status, b))) => match b["message"]["seq"].as_u64() {
            Some(seq) => Ok((status, seq)),
            None => Err((status, b.to_string())),
        },
        Ok(Err(e)) => Err((0, format!("{e:#}"))),
        Err(_) => Err((0, "no answer".into())),
    }
}

/// (seq, `client_id`) of the messages of `room` after seq `after`, at most
/// `pages` pages.
async fn read_after(
    http: &mut Http,
    token: &str,
    room: &str,
    mut after: u64,
    pages: usize,
) -> anyhow::Result<Vec<(u64, Option<String>)>> {
    let mut all = Vec::new();
    for _ in 0..pages {
        let path = format!("/api/v1/rooms/{room}/messages?limit={PAGE}&after={after}");
        let (status, body) = timeout(
            ANSWER_TIMEOUT,
            http.call(Method::GET, &path, Some(token), None),
        )
        .await
        .context("reading history: no answer")??;
        if status != 200 {
            bail!("reading history: HTTP {status}: {body}");
        }
        let page = body["messages"]
            .as_array()
            .context("a history page without messages")?;
        for m in page {
            let seq = m["seq"].as_u64().context("a message without a seq")?;
            all.push((seq, m["client_id"].as_str().map(str::to_string)));
            after = seq;
        }
        if (page.len() as u64) < PAGE {
            break;
        }
    }
    Ok(all)
}

/// The server under test, on the data directory every cycle shares. Its
/// log goes to `server.log` beside the data.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts `hearth serve` on `dir/data` and waits until it answers
    /// `GET /healthz`. Returns it and the time from spawn to that answer.
    fn start(
        rt: &tokio::runtime::Runtime,
        cpus: Option<&str>,
        dir: &Path,
    ) -> anyhow::Result<(Server, Duration)> {
        let exe = std::env::current_exe().context("cannot find the hearth binary")?;
        let mut cmd = match cpus {
            Some(c) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(c).arg(exe);
                cmd
            }
            None => Command::new(exe),
        };
        let log_path = dir.join("server.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .context("cannot open the server log")?;
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(dir.join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        for (k, v) in SERVER_ENV {
            cmd.env(k, v);
        }
        cmd.env("HEARTH_DEDUP_WINDOW", dedup_window().to_string());
        let spawned = Instant::now();
        let mut child = cmd.spawn().context("cannot start the server process")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        // The first line, with a deadline: a server that hangs on its
        // store must fail the run, not stall it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok());
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let Some(addr) = addr else {
            server.kill9();
            bail!(
                "the server did not start on the kept data directory (first line: {:?}); \
                 its log ends with:\n{}",
                line.trim(),
                log_tail(&log_path)
            );
        };
        server.addr = addr;
        let answered = rt.block_on(async {
            let deadline = tokio::time::Instant::now() + START_TIMEOUT;
            while tokio::time::Instant::now() < deadline {
                if let Ok(mut http) = Http::connect(addr).await {
                    if let Ok((200, _)) = http.call(Method::GET, "/healthz", None, None).await {
                        return true;
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            false
        });
        if !answered {
            bail!(
                "the server did not answer /healthz within {} s; its log ends with:\n{}",
                START_TIMEOUT.as_secs(),
                log_tail(&log_path)
            );
        }
        Ok((server, spawned.elapsed()))
    }

    /// SIGKILL: no shutdown, no final flush.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The last lines of the server's log, for an error message.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Prints the report (table or JSON) and writes the files asked for.
fn emit(report: &CrashReport, common: &CommonArgs) -> anyhow::Result<()> {
    common.emit(report, table, markdown)
}

/// (metric, value) rows shared by the table and the Markdown report.
fn rows(r: &CrashReport) -> Vec<(&'static str, String)> {
    let f = &r.faults;
    let n = |v: u64| format_number(v as f64);
    vec![
        ("cycles (kill -9, restart, check)", r.cycles.to_string()),
        (
            "acknowledged (WebSocket / REST)",
            format!(
                "{} ({} / {})",
                n(r.acked),
                n(r.acked_websocket),
                n(r.acked_rest)
            ),
        ),
        (
            "unacknowledged, resent (already on disk)",
            format!("{} ({})", n(r.unacked_resent), n(r.unacked_already_stored)),
        ),
        ("messages stored at the end", n(r.stored)),
        (
            "lost / duplicated / reordered",
            format!("{} / {} / {}", f.lost, f.duplicated, f.reordered),
        ),
        (
            "gaps / stored without ack / errors / failed starts",
            format!(
                "{} / {} / {} / {}",
                f.gaps, f.stored_without_ack, f.errors, f.failed_restarts
            ),
        ),
        (
            "restart, spawn → first answer: median / slowest (ms)",
            format!("{:.1} / {:.1}", r.median_restart_ms, r.slowest_restart_ms),
        ),
        ("total (s)", format!("{:.1}", r.total_secs)),
    ]
}

fn table(r: &CrashReport) -> String {
    let rows = rows(r);
    let w = rows.iter().map(|x| x.0.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(out, "crash loop, seed {}", r.seed);
    for (name, value) in &rows {
        let _ = writeln!(out, "{name:w$}  {value}");
    }
    verdict(&mut out, r);
    out
}

fn markdown(r: &CrashReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## `{}`\n", r.command);
    let _ = writeln!(
        out,
        "Machine: {} × {}; load average before: {}. Seed {}.\n",
        r.machine.nproc, r.machine.cpu_model, r.machine.loadavg_before, r.seed
    );
    let _ = writeln!(out, "| metric | value |\n|---|---:|");
    for (name, value) in rows(r) {
        let _ = writeln!(out, "| {name} | {value} |");
    }
    out.push('\n');
    verdict(&mut out, r);
    out
}

fn verdict(out: &mut String, r: &CrashReport) {
    if r.passed {
        let _ = writeln!(
            out,
            "verification: PASSED (every acknowledged message at its seq, no gap, no duplicate, \
             every start on the kept store answered)"
        );
    } else {
        let _ = writeln!(
            out,
            "verification: FAILED: {}",
            r.faults.first.as_deref().unwrap_or("-")
        );
    }
}

fn say(quiet: bool, msg: &str) {
    if !quiet {
        eprintln!("{msg}");
    }
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
