//! `hearth bench fanout`: N clients in one room, P posters, R messages/s,
//! against hearth and then against the raw ceiling writer.

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::json;

use super::load::{self, Outcome, Plan, Shared};
use super::report::{self, Machine, Percentiles, Ratio, Report, Run};
use super::target::{self, Process, Sample};
use super::CommonArgs;

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
    /// Upgrades in flight at once.
    #[arg(long, default_value_t = 256)]
    pub connect_parallel: usize,
    /// Seconds to wait, after the last post, for every delivery.
    #[arg(long, default_value_t = 30.0)]
    pub drain_timeout: f64,
    /// During the hearth run, also attempt this many logins per second
    /// (argon2 on the server): does message latency hold?
    #[arg(long, default_value_t = 0.0)]
    pub login_rate: f64,
    /// Seconds to wait after setup before reading the server's RSS, so the
    /// memory of setup's password hashes is returned first (tokio keeps an
    /// idle blocking thread, and its allocator pages, for 10 s). 0 skips the
    /// wait; RSS per connection is then overstated or negative.
    #[arg(long, default_value_t = 11.0)]
    pub rss_settle: f64,
    /// Skip the raw-ceiling run.
    #[arg(long)]
    pub no_ceiling: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Descriptors the generator needs besides its client sockets (HTTP setup
/// connections, the runtime, pipes to the server).
const FD_RESERVE: u64 = 128;

pub fn run(mut args: FanoutArgs) -> anyhow::Result<()> {
    if args.rate <= 0.0 || args.duration <= 0.0 || args.clients == 0 {
        bail!("--clients, --rate and --duration must be greater than 0");
    }
    if args.posters == 0 || args.posters > args.clients {
        bail!("--posters must be from 1 to --clients");
    }
    let machine = Machine::now();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut notes = Vec::new();
    let fd_limit = super::raise_fd_limit()?;
    let fit = fd_limit.saturating_sub(FD_RESERVE) as usize;
    if args.clients > fit {
        notes.push(format!(
            "the open-file limit ({fd_limit}) caps this process at {fit} clients; {} were asked for",
            args.clients
        ));
        args.clients = fit;
        args.posters = args.posters.min(fit);
    }
    let threads = args
        .common
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let sources = source_addresses(args.clients, args.common.sources)?;
    if !sources.is_empty() {
        notes.push(format!(
            "connections spread over {} source addresses (127.0.0.2…)",
            sources.len()
        ));
    }
    let users = args
        .users
        .unwrap_or(args.clients.min(100))
        .clamp(1, args.clients);
    let messages = (args.rate * args.duration).round().max(1.0) as u64;

    let setup_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut server = None;
    let (addr, pid) = match &args.common.url {
        Some(url) => (loopback_url(url)?, None),
        None => {
            let p = Process::serve(args.common.server_cpus.as_deref(), &[])?;
            let out = (p.addr, Some(p.pid()));
            server = Some(p);
            out
        }
    };
    let rss_idle = pid
        .map(|p| target::sample_settled(p, Duration::from_secs(5)))
        .transpose()?;
    let progress = Progress::new(args.common.quiet);
    progress.say(&format!("setting up {users} users and a room on {addr}"));
    let fixture = setup_rt
        .block_on(super::setup::fixture(addr, users, 4))
        .context("setup failed")?;

    let plan = Plan {
        target: addr,
        clients: args.clients,
        tokens: fixture.tokens.clone(),
        room_id: fixture.room_id.clone(),
        posters: args.posters,
        rate: args.rate,
        messages,
        threads,
        sources: sources.clone(),
        connect_parallel: args.connect_parallel,
        body_pad: args.body_pad,
    };
    let mut storm = None;
    let (hearth, sample_message) =
        drive(&plan, pid, false, &args, &progress, rss_idle, &mut || {
            if args.login_rate > 0.0 {
                storm = Some(setup_rt.spawn(login_storm(
                    addr,
                    fixture.logins.clone(),
                    args.login_rate,
                    Duration::from_secs_f64(args.duration),
                )));
            }
            Ok(())
        })?;
    let logins = match storm {
        Some(task) => Some(
            setup_rt
                .block_on(task)
                .context("the login storm panicked")??,
        ),
        None => None,
    };
    drop(server);

    let ceiling = if args.no_ceiling {
        None
    } else {
        progress.say("raw ceiling: same clients, same frames, same rate");
        let template = tempfile::NamedTempFile::new()?;
        std::fs::write(
            template.path(),
            sample_message.context("hearth delivered no message to copy for the ceiling")?,
        )?;
        let mut writer = Process::ceiling(
            args.common.server_cpus.as_deref(),
            &[
                "--clients".into(),
                args.clients.to_string(),
                "--rate".into(),
                args.rate.to_string(),
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
            posters: 0,
            ..plan.clone()
        };
        let pid = Some(writer.pid());
        let (run, _) = drive(&plan, pid, true, &args, &progress, Some(idle), &mut || {
            writer.go()
        })?;
        writer.stop();
        Some(run)
    };
    progress.finish();

    let ratio = ceiling.as_ref().map(|c| Ratio {
        throughput: ratio(hearth.deliveries_per_sec, c.deliveries_per_sec),
        cpu_efficiency: hearth
            .deliveries_per_server_cpu_sec
            .zip(c.deliveries_per_server_cpu_sec)
            .map(|(h, c)| ratio(h, c)),
        p99_latency: ratio(hearth.latency_ms.p99, c.latency_ms.p99),
    });
    let passed = hearth.verified() && ceiling.as_ref().is_none_or(Run::verified);
    let report = Report {
        scenario: "fanout",
        command,
        machine,
        settings: json!({
            "clients": args.clients,
            "posters": args.posters,
            "rate": args.rate,
            "duration_secs": args.duration,
            "messages": messages,
            "users": users,
            "sockets_per_user": (args.clients as f64 / users as f64),
            "generator_threads": threads,
            "source_addresses": sources.len().max(1),
            "fd_limit": fd_limit,
            "server_cpus": args.common.server_cpus,
            "target": args.common.url.clone().unwrap_or_else(|| "child process".into()),
            "server_env": target::SERVER_ENV,
        }),
        notes,
        logins,
        hearth,
        ceiling,
        ratio,
        passed,
    };
    emit(&report, &args.common)?;
    if !report.passed {
        let h = &report.hearth;
        bail!(
            "verification failed: {} lost, {} duplicated, {} reordered, {} errors, {} cut off{}",
            h.lost,
            h.duplicated,
            h.reordered,
            h.errors,
            h.closed_early,
            h.first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// Prints the report (table or JSON) and writes the files asked for.
fn emit(report: &Report, common: &CommonArgs) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    if common.json {
        println!("{json}");
    } else {
        print!("{}", report::table(report));
    }
    if let Some(path) = &common.json_file {
        std::fs::write(path, format!("{json}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &common.report {
        std::fs::write(path, report::markdown(report))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// One load against one target: connect everyone, post (or, for the
/// ceiling, let it write), wait for every delivery, measure.
fn drive(
    plan: &Plan,
    pid: Option<u32>,
    is_ceiling: bool,
    args: &FanoutArgs,
    progress: &Progress,
    rss_idle: Option<Sample>,
    on_start: &mut dyn FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<(Run, Option<Vec<u8>>)> {
    let label = if is_ceiling { "ceiling" } else { "hearth" };
    let sample = |settle: u64| -> anyhow::Result<Option<Sample>> {
        pid.map(|p| target::sample_settled(p, Duration::from_millis(settle)))
            .transpose()
    };
    let me = std::process::id();
    // Setup hashed passwords (19 MiB each) on tokio's blocking threads;
    // their memory goes back to the OS only when those threads exit, after
    // 10 s idle. Wait for that, so it is not counted against the sockets.
    if !is_ceiling && pid.is_some() {
        std::thread::sleep(Duration::from_secs_f64(args.rss_settle.max(0.0)));
    }
    let before_connect = sample(10_000)?;
    let shared = Arc::new(Shared::default());
    if is_ceiling {
        // The ceiling posts by itself; clients know the last seq up front.
        shared.final_seq.store(plan.messages, Relaxed);
    }
    let plan = Arc::new(plan.clone());
    let began = Instant::now();
    let handles = load::start(plan.clone(), shared.clone());
    let connect_limit = Duration::from_secs(30) + Duration::from_millis(plan.clients as u64 * 5);
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
    let cpu_start = sample(0)?;
    let gen_start = target::sample(me)?;
    let post_start = Instant::now();
    let _ = shared.post_start.set(post_start);
    on_start()?;
    let post_for = Duration::from_secs_f64(args.duration);
    let drain = Duration::from_secs_f64(args.drain_timeout);
    let offered = plan.clients as f64 * plan.rate;
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
        progress.tick(&format!(
            "{label}: {:>5.1}s  {sent}delivered {} ({}/s of {} offered)",
            post_start.elapsed().as_secs_f64(),
            delivered,
            report::format_number(rate),
            report::format_number(offered),
        ));
        if !is_ceiling
            && shared.final_seq.load(Relaxed) == 0
            && shared.acked.load(Relaxed) + shared.errors.load(Relaxed) >= plan.messages
        {
            shared
                .final_seq
                .store(shared.max_acked_seq.load(Relaxed).max(1), Relaxed);
        }
        if handles.iter().all(|h| h.is_finished()) {
            break;
        }
        if post_start.elapsed() > post_for + drain {
            shared.stop.store(true, Relaxed);
            if shared.final_seq.load(Relaxed) == 0 {
                shared
                    .final_seq
                    .store(shared.max_acked_seq.load(Relaxed).max(1), Relaxed);
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
    let final_seq = shared.final_seq.load(Relaxed);
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
        deliveries_expected: final_seq * plan.clients as u64,
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
        generator_runqueue_wait_secs: outcome.runqueue_wait_secs,
    };
    Ok((run, shared.sample_message.get().cloned()))
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

/// Logins attempted during a run, and how the server answered.
#[derive(Debug, serde::Serialize)]
pub struct LoginStorm {
    pub rate: f64,
    pub attempted: u64,
    pub ok: u64,
    /// 429 (rate limit) or 503 (hashing queue full): refused, not queued.
    pub refused: u64,
    pub other: u64,
    pub latency_ms: Percentiles,
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
