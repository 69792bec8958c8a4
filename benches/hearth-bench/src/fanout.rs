//! `hearth bench fanout`: N clients in one room, P posters, R messages/s,
//! against hearth and then against the raw ceiling writer; optionally with
//! a login storm alongside, with some clients that stop reading, or with
//! every client marking the room read at an interval (against a baseline
//! run without reads).
//!
//! This file also holds what every WebSocket scenario shares ([`Bench`]):
//! starting the server, setting up, driving one load against one target
//! and measuring it, and the report. `rooms`, `idle` and `login` describe
//! their load as a [`Load`] and run it here.

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::json;

use super::common::CommonArgs;
use super::load::{self, Outcome, Plan, Shared};
use super::report::{
    self, Comparison, IdleFindings, LoginStorm, Machine, Percentiles, Ratio, ReadFindings, Report,
    Run, StallFindings,
};
use super::target::{self, Process, Sample};

#[derive(Debug, Args, Clone)]
pub struct FanoutArgs {
    /// WebSocket clients, all in one room.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// How many of the clients also post.
    #[arg(long, default_value_t = 4)]
    pub posters: usize,
    /// Messages per second, all posters together.
    #[arg(long, default_value_t = 117.0)]
    pub rate: f64,
    /// Seconds of posting.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Accounts to sign up; sockets share their session tokens round-robin
    /// (each signup and login costs an argon2 hash). Default: min(clients, 100).
    #[arg(long)]
    pub users: Option<usize>,
    /// Extra bytes of filler in each message body.
    #[arg(long, default_value_t = 0)]
    pub body_pad: usize,
    /// During the hearth run, also attempt this many logins per second
    /// (argon2 on the server): does message latency hold?
    #[arg(long, default_value_t = 0.0)]
    pub login_rate: f64,
    /// This share of the clients (in per cent) stop reading from their
    /// socket during the run. A run without stalls goes first, as the
    /// baseline for the others' latency; no ceiling run.
    #[arg(long, default_value_t = 0.0)]
    pub stall_percent: f64,
    /// Seconds after posting starts at which they stop reading.
    #[arg(long, default_value_t = 5.0)]
    pub stall_after: f64,
    /// Seconds they read nothing. Then they read again, must find their
    /// connection cut by the server, and reconnect with `resume`; so this
    /// must exceed the time the buffers between them and the server take
    /// to fill (hundreds of kilobytes: the server's kernel grows its send
    /// buffer while messages flow) plus the server's `write_timeout_secs`.
    #[arg(long, default_value_t = 20.0)]
    pub stall_for: f64,
    /// SO_RCVBUF of the stalling clients' sockets, in bytes (the kernel
    /// doubles it): small, so the server's writes block soon after they stop.
    #[arg(long, default_value_t = 4096)]
    pub stall_recv_buffer: u32,
    /// The MSS the stalling clients announce. Loopback's own (64 KiB) makes
    /// the server's kernel give each socket a send buffer of nearly 4 MiB,
    /// minutes of messages; 1460 is an Ethernet path's.
    #[arg(long, default_value_t = 1460)]
    pub stall_mss: u32,
    /// Every client marks the room read every this many seconds: a `read`
    /// frame up to the highest seq it has seen, sent with the first message
    /// it receives once due, the clients spread evenly over the interval
    /// (clients / SECS reads a second in all). A run without reads goes
    /// first, as the baseline; no ceiling run. Each read that moves an
    /// account's cursor also goes to that account's other sockets, so for
    /// one cursor per socket give `--users` equal to `--clients`.
    #[arg(long, value_name = "SECS")]
    pub read_every: Option<f64>,
    /// Skip the raw-ceiling run.
    #[arg(long)]
    pub no_ceiling: bool,
    #[command(flatten)]
    pub ws: WsArgs,
}

/// Options of every WebSocket scenario.
#[derive(Debug, Args, Clone)]
pub struct WsArgs {
    /// Upgrades in flight at once.
    #[arg(long, default_value_t = 256)]
    pub connect_parallel: usize,
    /// Seconds to wait, after the last post, for every delivery.
    #[arg(long, default_value_t = 30.0)]
    pub drain_timeout: f64,
    /// Seconds to wait after setup before reading the server's RSS, so the
    /// memory of setup's password hashes is returned first (tokio keeps an
    /// idle blocking thread, and its allocator pages, for 10 s). 0 skips the
    /// wait; RSS per connection is then overstated or negative.
    #[arg(long, default_value_t = 11.0)]
    pub rss_settle: f64,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Descriptors the generator needs besides its client sockets (HTTP setup
/// connections, the runtime, pipes to the server).
const FD_RESERVE: u64 = 128;

pub fn run(args: FanoutArgs) -> anyhow::Result<()> {
    if args.rate <= 0.0 || args.duration <= 0.0 || args.clients == 0 {
        bail!("--clients, --rate and --duration must be greater than 0");
    }
    if args.posters == 0 || args.posters > args.clients {
        bail!("--posters must be from 1 to --clients");
    }
    if !(0.0..100.0).contains(&args.stall_percent) {
        bail!("--stall-percent must be from 0 to below 100");
    }
    let read_every = match args.read_every {
        Some(s) if !(s > 0.0 && s.is_finite()) => bail!("--read-every must be greater than 0"),
        Some(_) if args.stall_percent > 0.0 || args.login_rate > 0.0 => {
            bail!("--read-every has a baseline run of its own: use it without --stall-percent and --login-rate")
        }
        Some(s) => Some(Duration::from_secs_f64(s)),
        None => None,
    };
    let mut bench = Bench::new(&args.ws, args.clients)?;
    let clients = bench.clients;
    let posters = args.posters.min(clients);
    let stalled = (clients as f64 * args.stall_percent / 100.0).round() as usize;
    if stalled > clients - posters {
        bail!("--stall-percent leaves too few clients to post: posters never stall");
    }
    if args.stall_percent > 0.0 && stalled == 0 {
        bail!(
            "--stall-percent {} of {clients} clients is no client",
            args.stall_percent
        );
    }
    let load = Load {
        clients,
        users: args.users.unwrap_or(clients.min(100)).clamp(1, clients),
        rooms: 1,
        posters,
        rate: args.rate,
        duration: args.duration,
        messages: (args.rate * args.duration).round().max(1.0) as u64,
        body_pad: args.body_pad,
        hold: 0.0,
        login_rate: args.login_rate,
        stall: (stalled > 0).then(|| load::Stall {
            first: clients - stalled,
            after: Duration::from_secs_f64(args.stall_after.max(0.0)),
            pause: Duration::from_secs_f64(args.stall_for.max(0.0)),
            narrow: super::wsclient::Narrow {
                recv_buffer: args.stall_recv_buffer,
                mss: args.stall_mss,
            },
        }),
        read_every,
    };
    let baseline_label = if load.stall.is_some() {
        Some("baseline (no stalls)")
    } else if load.read_every.is_some() {
        Some("baseline (no reads)")
    } else {
        None
    };
    let baseline = match baseline_label {
        Some(label) => Some(bench.hearth(
            &Load {
                stall: None,
                read_every: None,
                ..load.clone()
            },
            label,
        )?),
        None => None,
    };
    let hearth = bench.hearth(&load, "hearth")?;
    if load.read_every.is_some() && load.users < clients {
        bench.notes.push(format!(
            "{clients} sockets share {} accounts: each read that moves an account's cursor is \
             also sent to its other sockets (reads heard); --users {clients} gives each socket \
             a cursor of its own",
            load.users
        ));
    }
    let ceiling = if args.no_ceiling {
        None
    } else if load.stall.is_some() {
        bench
            .notes
            .push("no ceiling run with stalled readers: the ceiling writer cuts nobody".into());
        None
    } else if load.read_every.is_some() {
        bench
            .notes
            .push("no ceiling run with reads: the comparison is with the baseline".into());
        None
    } else {
        Some(bench.ceiling(&hearth)?)
    };
    let settings = json!({
        "clients": clients,
        "posters": posters,
        "rate": args.rate,
        "duration_secs": args.duration,
        "messages": load.messages,
        "login_rate": args.login_rate,
        "stall_percent": args.stall_percent,
        "read_every_secs": args.read_every,
    });
    bench.finish("fanout", settings, &load, baseline, hearth, ceiling)
}

/// One load, as a scenario describes it.
#[derive(Debug, Clone)]
pub(super) struct Load {
    pub clients: usize,
    /// Accounts to sign up (rounded up to a multiple of `rooms`).
    pub users: usize,
    pub rooms: usize,
    pub posters: usize,
    /// Messages per second, all rooms together.
    pub rate: f64,
    /// Seconds of posting.
    pub duration: f64,
    pub messages: u64,
    pub body_pad: usize,
    /// Seconds to hold every connection, idle, between connecting and posting.
    pub hold: f64,
    /// Logins per second attempted while posting (0: none).
    pub login_rate: f64,
    pub stall: Option<load::Stall>,
    /// Every client marks its room read this often (None: never).
    pub read_every: Option<Duration>,
}

/// A scenario in progress: what every run of one invocation shares.
pub(super) struct Bench {
    machine: Machine,
    command: String,
    pub notes: Vec<String>,
    /// Clients this process can hold: as asked, or capped by the open-file limit.
    pub clients: usize,
    fd_limit: u64,
    threads: usize,
    sources: Vec<IpAddr>,
    progress: Progress,
    setup_rt: tokio::runtime::Runtime,
    args: WsArgs,
}

/// What a run against hearth found.
pub(super) struct HearthRun {
    pub run: Run,
    plan: Plan,
    logins: Option<LoginStorm>,
    sample_message: Option<Vec<u8>>,
    stall: Option<StallFindings>,
    idle: Option<IdleFindings>,
    reads: Option<ReadFindings>,
    users: usize,
}

impl Bench {
    /// Raises the open-file limit and caps `clients` to it (saying so in
    /// the notes), and chooses the generator's threads and source addresses.
    pub fn new(args: &WsArgs, clients: usize) -> anyhow::Result<Bench> {
        let machine = Machine::now();
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        let mut notes = Vec::new();
        let fd_limit = super::target::raise_fd_limit()?;
        let fit = fd_limit.saturating_sub(FD_RESERVE) as usize;
        if clients > fit {
            notes.push(format!(
                "the open-file limit ({fd_limit}) caps this process at {fit} clients; {clients} were asked for"
            ));
        }
        let clients = clients.min(fit);
        let threads = args
            .common
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let sources = source_addresses(clients, args.common.sources)?;
        if !sources.is_empty() {
            notes.push(format!(
                "connections spread over {} source addresses (127.0.0.2…)",
                sources.len()
            ));
        }
        let setup_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        Ok(Bench {
            machine,
            command,
            notes,
            clients,
            fd_limit,
            threads,
            sources,
            progress: Progress::new(args.common.quiet),
            setup_rt,
            args: args.clone(),
        })
    }

    /// Starts a server (unless `--url`), sets up its users and rooms, and
    /// drives `load` against it.
    pub fn hearth(&self, load: &Load, label: &str) -> anyhow::Result<HearthRun> {
        let mut server = None;
        let (addr, pid) = match &self.args.common.url {
            Some(url) => (loopback_url(url)?, None),
            None => {
                let p = self.args.common.serve(&[])?;
                let out = (p.addr, Some(p.pid()));
                server = Some(p);
                out
            }
        };
        let rss_idle = pid
            .map(|p| target::sample_settled(p, Duration::from_secs(5)))
            .transpose()?;
        self.progress.say(&format!(
            "{label}: setting up {} users and {} room(s) on {addr}",
            load.users, load.rooms
        ));
        let fixture = self
            .setup_rt
            .block_on(super::setup::fixture(addr, load.users, load.rooms, 4))
            .context("setup failed")?;
        let plan = Plan {
            target: addr,
            clients: load.clients,
            tokens: fixture.tokens.clone(),
            rooms: fixture.room_ids.clone(),
            posters: load.posters,
            rate: load.rate,
            messages: load.messages,
            threads: self.threads,
            sources: self.sources.clone(),
            connect_parallel: self.args.connect_parallel,
            body_pad: load.body_pad,
            stall: load.stall,
            read_every: load.read_every,
        };
        let cuts_before = self.cuts_counted(addr);
        let mut storm = None;
        let driven = self.drive(&plan, pid, label, false, load, rss_idle, &mut || {
            if load.login_rate > 0.0 {
                storm = Some(self.setup_rt.spawn(login_storm(
                    addr,
                    fixture.logins.clone(),
                    load.login_rate,
                    Duration::from_secs_f64(load.duration),
                )));
            }
            Ok(())
        })?;
        let logins = match storm {
            Some(task) => Some(
                self.setup_rt
                    .block_on(task)
                    .context("the login storm panicked")??,
            ),
            None => None,
        };
        let cuts_after = self.cuts_counted(addr);
        let cursors = match load.read_every {
            Some(_) => Some(
                self.setup_rt
                    .block_on(cursors_behind(addr, &plan, &driven.shared))
                    .context("reading the cursors back failed")?,
            ),
            None => None,
        };
        drop(server);
        let shared = &driven.shared;
        let stall = load.stall.map(|s| StallFindings {
            clients: load.clients - s.first,
            after_secs: s.after.as_secs_f64(),
            pause_secs: s.pause.as_secs_f64(),
            recv_buffer_bytes: s.narrow.recv_buffer,
            mss: s.narrow.mss,
            cut: shared.cut(),
            cut_by_close_frame: shared.cut_close_frame.load(Relaxed),
            cut_by_end_of_stream: shared.cut_eof.load(Relaxed),
            cut_by_socket_error: shared.cut_error.load(Relaxed),
            resumed: shared.resumed.load(Relaxed),
            server_too_slow_disconnects: cuts_before
                .zip(cuts_after)
                .map(|(a, b)| (b - a).round() as u64),
        });
        let idle = (load.hold > 0.0).then(|| {
            let held = driven.rss_after_hold.map(|s| s.rss_bytes);
            IdleFindings {
                hold_secs: load.hold,
                rss_after_hold_bytes: held,
                rss_above_idle_bytes: held
                    .zip(driven.run.rss_idle_bytes)
                    .map(|(h, i)| h as i64 - i as i64),
                rss_per_connection_after_hold_bytes: held
                    .zip(driven.run.rss_before_connect_bytes)
                    .map(|(h, b)| (h as f64 - b as f64) / load.clients as f64),
                alive_at_end: driven.run.clients - driven.run.clients_incomplete,
            }
        });
        let reads = load.read_every.zip(cursors).map(|(every, cursors)| {
            let sent = shared.reads_sent.load(Relaxed);
            let window = driven.run.window_secs;
            ReadFindings {
                accounts_checked: cursors.checked,
                cursors_behind: cursors.behind,
                first_behind: cursors.first,
                every_secs: every.as_secs_f64(),
                offered_per_sec: load.clients as f64 / every.as_secs_f64(),
                sent,
                per_sec: if window > 0.0 {
                    sent as f64 / window
                } else {
                    0.0
                },
                heard: shared.reads_heard.load(Relaxed),
            }
        });
        Ok(HearthRun {
            sample_message: shared.sample_message.get().cloned(),
            reads,
            run: driven.run,
            plan,
            logins,
            stall,
            idle,
            users: fixture.tokens.len(),
        })
    }

    /// The server's count of connections it cut off as too slow (1013), if
    /// its metrics are served on the same address.
    fn cuts_counted(&self, addr: SocketAddr) -> Option<f64> {
        self.setup_rt
            .block_on(async {
                let mut http = super::setup::Http::connect(addr).await?;
                http.metric("hearth_queue_full_disconnects_total").await
            })
            .ok()
            .flatten()
    }

    /// Replays a hearth run's load against the raw ceiling writer. Each
    /// socket gets its room's rate: with several rooms, the ceiling writes
    /// one room's worth of messages to every socket, which is what each
    /// socket got from hearth.
    pub fn ceiling(&self, hearth: &HearthRun) -> anyhow::Result<Run> {
        self.progress
            .say("raw ceiling: same clients, same frames, same rate per socket");
        let rooms = hearth.plan.rooms.len().max(1);
        let rate = hearth.plan.rate / rooms as f64;
        let messages = hearth.plan.messages / rooms as u64;
        let template = tempfile::NamedTempFile::new()?;
        std::fs::write(
            template.path(),
            hearth
                .sample_message
                .as_ref()
                .context("hearth delivered no message to copy for the ceiling")?,
        )?;
        let mut writer = Process::ceiling(
            self.args.common.server_cpus.as_deref(),
            &[
                "--clients".into(),
                hearth.plan.clients.to_string(),
                "--rate".into(),
                rate.to_string(),
                "--messages".into(),
                messages.to_string(),
                "--template".into(),
                template.path().display().to_string(),
            ],
        )?;
        let idle = target::sample_settled(writer.pid(), Duration::from_millis(200))?;
        let plan = Plan {
            target: writer.addr,
            tokens: Vec::new(),
            rooms: vec!["ceiling".into()],
            posters: 0,
            rate,
            messages,
            stall: None,
            read_every: None,
            ..hearth.plan.clone()
        };
        let load = Load {
            duration: messages as f64 / rate,
            hold: 0.0,
            ..self.load_of(hearth)
        };
        let pid = Some(writer.pid());
        let driven = self.drive(&plan, pid, "ceiling", true, &load, Some(idle), &mut || {
            writer.go()
        })?;
        writer.stop();
        Ok(driven.run)
    }

    /// The load of a finished hearth run, enough to pace another run like it.
    fn load_of(&self, hearth: &HearthRun) -> Load {
        let p = &hearth.plan;
        Load {
            clients: p.clients,
            users: hearth.users,
            rooms: p.rooms.len(),
            posters: p.posters,
            rate: p.rate,
            duration: p.messages as f64 / p.rate,
            messages: p.messages,
            body_pad: p.body_pad,
            hold: 0.0,
            login_rate: 0.0,
            stall: None,
            read_every: None,
        }
    }

    /// Writes the report, and fails if anything was lost, duplicated,
    /// reordered or left uncut.
    pub fn finish(
        mut self,
        scenario: &'static str,
        mut settings: serde_json::Value,
        load: &Load,
        baseline: Option<HearthRun>,
        hearth: HearthRun,
        ceiling: Option<Run>,
    ) -> anyhow::Result<()> {
        self.progress.finish();
        if let Some(s) = &hearth.stall {
            if s.cut < s.clients as u64 {
                self.notes.push(format!(
                    "{} of {} stalled clients were not cut off: the stall must outlast \
                     filling their buffers plus the server's write_timeout_secs",
                    s.clients as u64 - s.cut,
                    s.clients
                ));
            }
        }
        let extra = json!({
            "users": hearth.users,
            "rooms": load.rooms,
            "sockets_per_user": (load.clients as f64 / hearth.users as f64),
            "generator_threads": self.threads,
            "source_addresses": self.sources.len().max(1),
            "fd_limit": self.fd_limit,
            "server_cpus": self.args.common.server_cpus,
            "target": self.args.common.url.clone().unwrap_or_else(|| "child process".into()),
            "server_env": target::SERVER_ENV,
        });
        if let (Some(s), Some(e)) = (settings.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        let to_ceiling = ceiling.as_ref().map(|c| Ratio {
            throughput: ratio(hearth.run.deliveries_per_sec, c.deliveries_per_sec),
            cpu_efficiency: hearth
                .run
                .deliveries_per_server_cpu_sec
                .zip(c.deliveries_per_server_cpu_sec)
                .map(|(h, c)| ratio(h, c)),
            p99_latency: ratio(hearth.run.latency_ms.p99, c.latency_ms.p99),
        });
        let comparison = baseline.as_ref().map(|b| Comparison {
            of: if hearth.stall.is_some() {
                "stalled readers (latency of the others)"
            } else if hearth.reads.is_some() {
                "reads"
            } else {
                "login storm"
            },
            p50_latency: ratio(hearth.run.latency_ms.p50, b.run.latency_ms.p50),
            p99_latency: ratio(hearth.run.latency_ms.p99, b.run.latency_ms.p99),
            deliveries_per_sec: ratio(hearth.run.deliveries_per_sec, b.run.deliveries_per_sec),
            server_cpu_per_delivery: hearth
                .run
                .server_cpu_us_per_delivery
                .zip(b.run.server_cpu_us_per_delivery)
                .map(|(h, b)| ratio(h, b)),
        });
        let stall_ok = hearth
            .stall
            .as_ref()
            .is_none_or(|s| s.cut == s.clients as u64 && s.resumed == s.clients as u64);
        let reads_ok = hearth.reads.as_ref().is_none_or(|r| r.cursors_behind == 0);
        let passed = hearth.run.verified()
            && stall_ok
            && reads_ok
            && baseline.as_ref().is_none_or(|b| b.run.verified())
            && ceiling.as_ref().is_none_or(Run::verified);
        let report = Report {
            scenario,
            command: self.command,
            machine: self.machine,
            settings,
            notes: self.notes,
            logins: hearth.logins,
            stall: hearth.stall,
            idle: hearth.idle,
            reads: hearth.reads,
            baseline: baseline.map(|b| b.run),
            comparison,
            hearth: hearth.run,
            ceiling,
            ratio: to_ceiling,
            passed,
        };
        emit(&report, &self.args.common)?;
        if !report.passed {
            let runs = [
                report.baseline.as_ref(),
                Some(&report.hearth),
                report.ceiling.as_ref(),
            ];
            for h in runs.into_iter().flatten() {
                if !h.verified() {
                    bail!(
                        "verification failed ({}): {} lost, {} duplicated, {} reordered, {} errors, {} cut off{}{}",
                        h.target,
                        h.lost,
                        h.duplicated,
                        h.reordered,
                        h.errors,
                        h.closed_early,
                        h.first_error
                            .as_deref()
                            .map(|e| format!(" (first: {e})"))
                            .unwrap_or_default(),
                        h.shortfall().map(|s| format!("; {s}")).unwrap_or_default()
                    );
                }
            }
            if let Some(r) = report.reads.as_ref().filter(|r| r.cursors_behind > 0) {
                bail!(
                    "verification failed: {} of {} accounts' cursors were behind what their \
                     sockets marked read (first: {})",
                    r.cursors_behind,
                    r.accounts_checked,
                    r.first_behind.as_deref().unwrap_or("-")
                );
            }
            bail!("verification failed: stalled clients were not all cut off and resumed");
        }
        Ok(())
    }

    /// One load against one target: connect everyone, hold, post (or, for
    /// the ceiling, let it write), wait for every delivery, measure.
    #[allow(clippy::too_many_arguments)]
    fn drive(
        &self,
        plan: &Plan,
        pid: Option<u32>,
        label: &str,
        is_ceiling: bool,
        load: &Load,
        rss_idle: Option<Sample>,
        on_start: &mut dyn FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<Driven> {
        let progress = &self.progress;
        let sample = |settle: u64| -> anyhow::Result<Option<Sample>> {
            pid.map(|p| target::sample_settled(p, Duration::from_millis(settle)))
                .transpose()
        };
        let me = std::process::id();
        // Setup hashed passwords (19 MiB each) on tokio's blocking threads;
        // their memory goes back to the OS only when those threads exit, after
        // 10 s idle. Wait for that, so it is not counted against the sockets.
        if !is_ceiling && pid.is_some() {
            std::thread::sleep(Duration::from_secs_f64(self.args.rss_settle.max(0.0)));
        }
        let before_connect = sample(10_000)?;
        let shared = Arc::new(Shared::new(plan.rooms.len(), plan.tokens.len()));
        if is_ceiling {
            // The ceiling posts by itself; clients know the last seq up front.
            shared.finish_at(plan.messages);
        }
        let plan = Arc::new(plan.clone());
        let began = Instant::now();
        let handles = load::start(plan.clone(), shared.clone());
        let connect_limit =
            Duration::from_secs(30) + Duration::from_millis(plan.clients as u64 * 5);
        loop {
            let done = shared.connected.load(Relaxed) + shared.failed.load(Relaxed);
            progress.tick(&format!(
                "{label}: connecting {}/{} ({} failed)",
                shared.connected.load(Relaxed),
                plan.clients,
                shared.failed.load(Relaxed)
            ));
            if done >= plan.clients {
                break;
            }
            if began.elapsed() > connect_limit {
                shared.stop.store(true, Relaxed);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let connect_all = began.elapsed();
        if shared.connected.load(Relaxed) < plan.clients {
            shared.stop.store(true, Relaxed);
            for h in handles {
                let _ = h.join();
            }
            bail!(
                "{label}: only {} of {} clients connected in {:.1}s (first error: {})",
                shared.connected.load(Relaxed),
                plan.clients,
                connect_all.as_secs_f64(),
                first_error(&shared).unwrap_or_else(|| "timeout".into())
            );
        }
        let after_connect = sample(5_000)?;
        let rss_after_hold = if load.hold > 0.0 {
            let until = Instant::now() + Duration::from_secs_f64(load.hold);
            while Instant::now() < until {
                progress.tick(&format!(
                    "{label}: holding {} connections, {:.0}s left",
                    plan.clients,
                    (until - Instant::now()).as_secs_f64()
                ));
                std::thread::sleep(Duration::from_millis(250).min(until - Instant::now()));
                if shared.closed_early.load(Relaxed) > 0 {
                    break;
                }
            }
            sample(0)?
        } else {
            None
        };
        let cpu_start = sample(0)?;
        let gen_start = target::sample(me)?;
        let _ = shared.post_start_micros.set(load::unix_micros());
        let post_start = Instant::now();
        let _ = shared.post_start.set(post_start);
        on_start()?;
        let post_for = Duration::from_secs_f64(load.duration);
        let drain = Duration::from_secs_f64(self.args.drain_timeout);
        let offered = plan.offered_deliveries_per_sec();
        let mut last = (Instant::now(), 0u64);
        // Posting, then waiting for every ack (hearth) and every delivery.
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let delivered = shared.delivered.load(Relaxed);
            let now = Instant::now();
            let rate = (delivered - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
            last = (now, delivered);
            let sent = if is_ceiling {
                String::new()
            } else {
                format!("sent {}/{}  ", shared.sent.load(Relaxed), plan.messages)
            };
            let reads = match plan.read_every {
                Some(_) => format!("  reads {}", shared.reads_sent.load(Relaxed)),
                None => String::new(),
            };
            progress.tick(&format!(
                "{label}: {:>5.1}s  {sent}delivered {} ({}/s of {} offered){reads}",
                post_start.elapsed().as_secs_f64(),
                delivered,
                report::format_number(rate),
                report::format_number(offered),
            ));
            if !is_ceiling
                && !shared.finished.load(Relaxed)
                && shared.acked.load(Relaxed) + shared.errors.load(Relaxed) >= plan.messages
            {
                shared.finish_from_acks();
            }
            if handles.iter().all(|h| h.is_finished()) {
                break;
            }
            if post_start.elapsed() > post_for + drain {
                shared.stop.store(true, Relaxed);
                if !shared.finished.load(Relaxed) {
                    shared.finish_from_acks();
                }
                break;
            }
        }
        let mut outcome = Outcome::empty();
        for h in handles {
            match h.join() {
                Ok(o) => outcome.merge(o),
                Err(_) => bail!("a load thread panicked"),
            }
        }
        let cpu_end = sample(0)?;
        let gen_end = target::sample(me)?;
        let rss_end = sample(0)?;
        let window = outcome
            .last_delivery
            .map_or(0.0, |t| t.duration_since(post_start).as_secs_f64());
        let deliveries = outcome.received;
        let cpu = cpu_start.zip(cpu_end).map(|(a, b)| b.cpu_secs - a.cpu_secs);
        let rss_per_conn = before_connect
            .zip(after_connect)
            .map(|(b, a)| (a.rss_bytes as f64 - b.rss_bytes as f64) / plan.clients as f64);
        let run = Run {
            target: label.into(),
            clients: plan.clients,
            connect_all_secs: connect_all.as_secs_f64(),
            connect_ms: Percentiles::of(&outcome.connect),
            messages: plan.messages,
            acked: if is_ceiling {
                plan.messages
            } else {
                shared.acked.load(Relaxed)
            },
            deliveries,
            deliveries_expected: outcome.expected,
            clients_incomplete: outcome.incomplete,
            offered_deliveries_per_sec: offered,
            deliveries_per_sec: if window > 0.0 {
                deliveries as f64 / window
            } else {
                0.0
            },
            window_secs: window,
            latency_ms: Percentiles::of(&outcome.latency),
            lost: outcome.lost,
            duplicated: outcome.duplicated,
            reordered: outcome.reordered,
            errors: shared.errors.load(Relaxed),
            closed_early: shared.closed_early.load(Relaxed),
            first_error: first_error(&shared),
            server_cpu_secs: cpu,
            server_cores: cpu.map(|c| if window > 0.0 { c / window } else { 0.0 }),
            deliveries_per_server_cpu_sec: cpu.map(|c| deliveries as f64 / c.max(0.01)),
            server_cpu_us_per_delivery: cpu.map(|c| c * 1e6 / (deliveries.max(1) as f64)),
            rss_idle_bytes: rss_idle.map(|s| s.rss_bytes),
            rss_before_connect_bytes: before_connect.map(|s| s.rss_bytes),
            rss_after_connect_bytes: after_connect.map(|s| s.rss_bytes),
            rss_end_bytes: rss_end.map(|s| s.rss_bytes),
            rss_per_connection_bytes: rss_per_conn,
            generator_cpu_secs: gen_end.cpu_secs - gen_start.cpu_secs,
            server_runqueue_wait_secs: cpu_start
                .zip(cpu_end)
                .map(|(a, b)| b.runqueue_wait_secs - a.runqueue_wait_secs),
            server_runqueue_wait_normal_secs: cpu_start
                .zip(cpu_end)
                .map(|(a, b)| b.runqueue_wait_normal_secs - a.runqueue_wait_normal_secs),
            generator_runqueue_wait_secs: outcome.runqueue_wait_secs,
        };
        Ok(Driven {
            run,
            shared,
            rss_after_hold,
        })
    }
}

/// What [`Bench::drive`] measured, and the counters it ran with.
struct Driven {
    run: Run,
    shared: Arc<Shared>,
    /// Server memory at the end of the hold, before the first post.
    rss_after_hold: Option<Sample>,
}

/// Prints the report (table or JSON) and writes the files asked for.
fn emit(report: &Report, common: &CommonArgs) -> anyhow::Result<()> {
    common.emit(report, report::table, report::markdown)
}

fn first_error(shared: &Shared) -> Option<String> {
    shared
        .first_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// Source addresses to spread `clients` over: none when the kernel's
/// ephemeral port range suffices for one address (with a quarter to spare
/// for sockets in TIME_WAIT), else enough of 127.0.0.2, 127.0.0.3, ….
fn source_addresses(clients: usize, forced: Option<usize>) -> anyhow::Result<Vec<IpAddr>> {
    let count = match forced {
        Some(n) => n,
        None => {
            let ports = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
                .ok()
                .and_then(|s| {
                    let mut it = s.split_whitespace().filter_map(|v| v.parse::<usize>().ok());
                    Some(it.next()?..=it.next()?)
                })
                .map_or(28_000, |r| r.count());
            let per_address = ports * 3 / 4;
            if clients <= per_address {
                0
            } else {
                clients.div_ceil(per_address)
            }
        }
    };
    if count > 250 {
        bail!("--sources must be at most 250");
    }
    Ok((0..count)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8)))
        .collect())
}

/// The address of `--url`, which must be on this machine's loopback.
pub fn loopback_url(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("http://")
        .context("--url must start with http:// (TLS is not benchmarked)")?;
    let host = rest.split('/').next().unwrap_or(rest);
    let addr: SocketAddr = host.parse().with_context(|| {
        format!("--url needs an IP address and port, e.g. http://127.0.0.1:8080, not {host:?}")
    })?;
    if !addr.ip().is_loopback() {
        bail!("--url must be a loopback address (127.0.0.0/8): the bench sends heavy load");
    }
    Ok(addr)
}

/// A progress line on stderr: a live bar on a terminal, a line every few
/// seconds otherwise (CI logs).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    last_line: std::cell::Cell<Option<Instant>>,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress {
            bar,
            quiet,
            last_line: std::cell::Cell::new(None),
        }
    }

    fn say(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            None if !self.quiet => eprintln!("{msg}"),
            None => {}
        }
    }

    fn tick(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.set_message(msg.to_string()),
            None if !self.quiet => {
                let due = self
                    .last_line
                    .get()
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(2));
                if due {
                    eprintln!("{msg}");
                    self.last_line.set(Some(Instant::now()));
                }
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Accounts whose read cursor was read back after a run with reads.
struct Cursors {
    checked: usize,
    behind: u64,
    first: Option<String>,
}

/// Reads every account's cursor back over HTTP: each must be at least at
/// the highest seq its sockets marked read. Reads are not acknowledged, so
/// this is what shows one was dropped without an error frame. The last
/// reads may still be on their way as the run ends: an account behind is
/// asked again until 5 s after the check began.
async fn cursors_behind(addr: SocketAddr, plan: &Plan, shared: &Shared) -> anyhow::Result<Cursors> {
    let mut http = super::setup::Http::connect(addr).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let rooms = plan.rooms.len().max(1);
    let mut found = Cursors {
        checked: 0,
        behind: 0,
        first: None,
    };
    for (user, token) in plan.tokens.iter().enumerate() {
        let want = shared.read_upto.get(user).map_or(0, |u| u.load(Relaxed));
        if want == 0 {
            continue;
        }
        found.checked += 1;
        let path = format!("/api/v1/rooms/{}", plan.rooms[user % rooms]);
        loop {
            let (status, body) = http
                .call(hyper::Method::GET, &path, Some(token), None)
                .await?;
            let got = body["room"]["read_seq"].as_u64();
            if status == 200 && got >= Some(want) {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                found.behind += 1;
                found.first.get_or_insert_with(|| {
                    format!(
                        "account {user}: HTTP {status}, read_seq {got:?}, marked read up to {want}"
                    )
                });
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(found)
}

/// Attempts `rate` logins a second for `duration`, each on its own
/// connection as separate people would, with at most 256 in flight.
async fn login_storm(
    addr: SocketAddr,
    logins: Vec<(String, String)>,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<LoginStorm> {
    use std::sync::atomic::AtomicU64;
    let total = (rate * duration.as_secs_f64()).round() as u64;
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let latency = Arc::new(std::sync::Mutex::new(
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?,
    ));
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..total {
        tokio::time::sleep_until(start + Duration::from_secs_f64(k as f64 / rate)).await;
        let Ok(permit) = gate.clone().try_acquire_owned() else {
            counts[2].fetch_add(1, Relaxed);
            continue;
        };
        let (login, password) = logins[k as usize % logins.len()].clone();
        let counts = counts.clone();
        let latency = latency.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let t = Instant::now();
            let status = match super::setup::Http::connect(addr).await {
                Ok(mut http) => http
                    .call(
                        hyper::Method::POST,
                        "/api/v1/login",
                        None,
                        Some(&json!({"login": login, "password": password})),
                    )
                    .await
                    .map(|(s, _)| s)
                    .unwrap_or(0),
                Err(_) => 0,
            };
            let slot = match status {
                200 => 0,
                429 | 503 => 1,
                _ => 2,
            };
            counts[slot].fetch_add(1, Relaxed);
            let micros = (t.elapsed().as_micros() as u64).max(1);
            let _ = latency
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(micros);
        });
    }
    while tasks.join_next().await.is_some() {}
    let latency = latency.lock().unwrap_or_else(|e| e.into_inner());
    Ok(LoginStorm {
        rate,
        attempted: total,
        ok: counts[0].load(Relaxed),
        refused: counts[1].load(Relaxed),
        other: counts[2].load(Relaxed),
        latency_ms: Percentiles::of(&latency),
    })
}
