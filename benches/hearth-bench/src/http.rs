//! `hearth bench post` and `hearth bench history`: HTTP throughput with a
//! fixed number of keep-alive clients, each sending its next request as
//! soon as the last one is answered (closed loop); then the same clients
//! against the raw HTTP ceiling ([`super::httpceiling`]), a bare server
//! answering the same bytes, so hearth is judged by its ratio to what the
//! machine can do at all.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use hdrhistogram::Histogram;
use hyper::Method;
use serde::Serialize;
use serde_json::json;

use super::common::CommonArgs;
use super::report::{Machine, Percentiles};
use super::setup::{self, Http};
use super::target::{self, Process};

#[derive(Debug, Args, Clone)]
pub struct HttpArgs {
    /// Concurrent keep-alive HTTP clients.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Messages stored before a history run, so pages are full.
    #[arg(long, default_value_t = 2000)]
    pub prefill: u64,
    /// Skip the raw HTTP ceiling run.
    #[arg(long)]
    pub no_ceiling: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `POST /api/v1/rooms/{id}/messages` (durable: waits for the group commit).
    Post,
    /// `GET /api/v1/rooms/{id}/messages?limit=50` at varying positions.
    History,
}

/// One side's closed-loop run: hearth's, or the raw ceiling's.
#[derive(Debug, Serialize)]
struct Side {
    requests: u64,
    failed: u64,
    requests_per_sec: f64,
    latency_ms: Percentiles,
    server_cpu_secs: Option<f64>,
    server_cores: Option<f64>,
    server_cpu_us_per_request: Option<f64>,
    generator_cpu_secs: f64,
}

#[derive(Debug, Serialize)]
struct HttpReport {
    scenario: &'static str,
    command: String,
    machine: Machine,
    clients: usize,
    duration_secs: f64,
    hearth: Side,
    /// The same clients against a bare hyper server answering the bytes
    /// hearth answered (none with `--no-ceiling` or `--url`).
    ceiling: Option<Side>,
    /// hearth's requests/s over the ceiling's.
    throughput_ratio: Option<f64>,
    /// hearth's server CPU per request over the ceiling's.
    cpu_per_request_ratio: Option<f64>,
    passed: bool,
}

pub fn run(kind: Kind, args: HttpArgs) -> anyhow::Result<()> {
    if args.clients == 0 || args.duration <= 0.0 {
        bail!("--clients and --duration must be greater than 0");
    }
    let machine = Machine::now();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    super::target::raise_fd_limit()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.common.threads.unwrap_or(2).max(1))
        .enable_all()
        .build()?;
    let mut server = None;
    let addr = match &args.common.url {
        Some(url) => super::fanout::loopback_url(url)?,
        None => {
            let p = args.common.serve(&[])?;
            let a = p.addr;
            server = Some(p);
            a
        }
    };
    let pid = server.as_ref().map(Process::pid);
    let users = args.clients.min(16);
    let fixture = rt
        .block_on(setup::fixture(addr, users, 1, 4))
        .context("setup failed")?;
    let room = fixture.room_ids[0].clone();
    if kind == Kind::History {
        if !args.common.quiet {
            eprintln!("storing {} messages to page through", args.prefill);
        }
        rt.block_on(setup::prefill(
            addr,
            &fixture.tokens[0],
            &room,
            args.prefill,
            8,
            |k| format!("history filler {k} with some ordinary length to it"),
        ))?;
    }
    let load = Load {
        kind,
        clients: args.clients,
        duration: Duration::from_secs_f64(args.duration),
        tokens: fixture.tokens.clone(),
        room: room.clone(),
        prefill: args.prefill.max(1),
        quiet: args.common.quiet,
    };
    let hearth = drive(&rt, addr, pid, &load, "hearth")?;
    // What hearth answers to one request of this kind, for the ceiling.
    let sample = rt.block_on(async {
        let mut http = Http::connect(addr).await?;
        let token = Some(fixture.tokens[0].as_str());
        match kind {
            Kind::Post => {
                let body = json!({"body": "post 0 0 sample", "client_id": "sample"});
                let path = format!("/api/v1/rooms/{room}/messages");
                http.raw(Method::POST, &path, token, Some(&body)).await
            }
            Kind::History => {
                let path = format!("/api/v1/rooms/{room}/messages?limit=50");
                http.raw(Method::GET, &path, token, None).await
            }
        }
    })?;
    drop(server);
    let ceiling = if args.no_ceiling || args.common.url.is_some() {
        None
    } else {
        let dir = tempfile::tempdir()?;
        let body = dir.path().join("body.json");
        std::fs::write(&body, &sample.1)?;
        let p = Process::http_ceiling(args.common.server_cpus.as_deref(), sample.0, &body)?;
        let side = drive(&rt, p.addr, Some(p.pid()), &load, "ceiling")?;
        drop(p);
        Some(side)
    };
    let ratio = |f: fn(&Side) -> Option<f64>| {
        ceiling
            .as_ref()
            .and_then(|c| Some(f(&hearth)? / f(c)?))
            .filter(|r| r.is_finite())
    };
    let report = HttpReport {
        scenario: match kind {
            Kind::Post => "post",
            Kind::History => "history",
        },
        command,
        machine,
        clients: args.clients,
        duration_secs: args.duration,
        throughput_ratio: ratio(|s| Some(s.requests_per_sec)),
        cpu_per_request_ratio: ratio(|s| s.server_cpu_us_per_request),
        passed: hearth.failed == 0 && ceiling.as_ref().is_none_or(|c| c.failed == 0),
        hearth,
        ceiling,
    };
    args.common.emit(&report, table, markdown)?;
    if !report.passed {
        bail!("some requests failed");
    }
    Ok(())
}

/// The closed-loop clients and what to ask.
struct Load {
    kind: Kind,
    clients: usize,
    duration: Duration,
    tokens: Vec<String>,
    room: String,
    prefill: u64,
    quiet: bool,
}

/// Runs the clients against `addr` for the load's duration, measuring the
/// server process `pid`'s CPU.
fn drive(
    rt: &tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    pid: Option<u32>,
    load: &Load,
    label: &str,
) -> anyhow::Result<Side> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    // Connected before the clock starts, so both sides time requests only.
    let conns = rt.block_on(async {
        let mut conns = Vec::with_capacity(load.clients);
        for _ in 0..load.clients {
            conns.push(Http::connect(addr).await?);
        }
        anyhow::Ok(conns)
    })?;
    let cpu0 = pid.map(target::sample).transpose()?;
    let gen0 = target::sample(std::process::id())?;
    let began = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut http)| {
            let token = load.tokens[i % load.tokens.len()].clone();
            let room = load.room.clone();
            let (stop, done, kind, prefill) = (stop.clone(), done.clone(), load.kind, load.prefill);
            rt.spawn(async move {
                let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
                let mut failed = 0u64;
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    n += 1;
                    let t = Instant::now();
                    let (status, _) = match kind {
                        Kind::Post => {
                            let body = json!({"body": format!("post {i} {n}"), "client_id": format!("h{i}-{n}")});
                            http.raw(Method::POST, &format!("/api/v1/rooms/{room}/messages"), Some(&token), Some(&body)).await?
                        }
                        Kind::History => {
                            let before = (n * 7919 + i as u64 * 104_729) % prefill + 1;
                            let path = if n % 2 == 0 {
                                format!("/api/v1/rooms/{room}/messages?limit=50&before={before}")
                            } else {
                                format!("/api/v1/rooms/{room}/messages?limit=50")
                            };
                            http.raw(Method::GET, &path, Some(&token), None).await?
                        }
                    };
                    let _ = latency.record((t.elapsed().as_micros() as u64).max(1));
                    if !(200..300).contains(&status) {
                        failed += 1;
                    }
                    done.fetch_add(1, Relaxed);
                }
                anyhow::Ok((latency, failed))
            })
        })
        .collect();
    while began.elapsed() < load.duration {
        std::thread::sleep(
            Duration::from_millis(500).min(load.duration.saturating_sub(began.elapsed())),
        );
        if !load.quiet {
            eprintln!(
                "{label} {:>5.1}s  {} requests",
                began.elapsed().as_secs_f64(),
                done.load(Relaxed)
            );
        }
    }
    stop.store(true, Relaxed);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut failed = 0;
    for t in tasks {
        let (h, f) = rt.block_on(t).context("a client task panicked")??;
        latency.add(&h)?;
        failed += f;
    }
    let wall = began.elapsed().as_secs_f64();
    let cpu1 = pid.map(target::sample).transpose()?;
    let gen1 = target::sample(std::process::id())?;
    let requests = latency.len();
    let cpu = cpu0.zip(cpu1).map(|(a, b)| b.cpu_secs - a.cpu_secs);
    Ok(Side {
        requests,
        failed,
        requests_per_sec: requests as f64 / wall,
        latency_ms: Percentiles::of(&latency),
        server_cpu_secs: cpu,
        server_cores: cpu.map(|c| c / wall),
        server_cpu_us_per_request: cpu.map(|c| c * 1e6 / requests.max(1) as f64),
        generator_cpu_secs: gen1.cpu_secs - gen0.cpu_secs,
    })
}

fn side_line(name: &str, s: &Side) -> String {
    format!(
        "{name}: {} requests = {:.0} req/s; latency p50 {:.2} / p99 {:.2} / max {:.2} ms; server {}; generator {:.1} CPU s; {} failed\n",
        s.requests,
        s.requests_per_sec,
        s.latency_ms.p50,
        s.latency_ms.p99,
        s.latency_ms.max,
        s.server_cores.map_or("-".into(), |c| format!(
            "{c:.2} cores, {:.1} µs/request",
            s.server_cpu_us_per_request.unwrap_or(0.0)
        )),
        s.generator_cpu_secs,
        s.failed
    )
}

fn table(r: &HttpReport) -> String {
    let mut out = format!(
        "{}: {} clients, {:.0} s each\n",
        r.scenario, r.clients, r.duration_secs
    );
    out += &side_line("  hearth ", &r.hearth);
    if let Some(c) = &r.ceiling {
        out += &side_line("  ceiling", c);
    }
    if let (Some(t), Some(c)) = (r.throughput_ratio, r.cpu_per_request_ratio) {
        out +=
            &format!("  hearth / ceiling: {t:.2}× the requests/s, {c:.2}× the CPU per request\n");
    }
    out
}

fn markdown(r: &HttpReport) -> String {
    let row = |name: &str, s: &Side| {
        format!(
            "| {name} | {} | {:.0} | {:.2} / {:.2} / {:.2} | {} | {} | {:.1} | {} |\n",
            s.requests,
            s.requests_per_sec,
            s.latency_ms.p50,
            s.latency_ms.p99,
            s.latency_ms.max,
            s.server_cores.map_or("-".into(), |c| format!("{c:.2}")),
            s.server_cpu_us_per_request
                .map_or("-".into(), |c| format!("{c:.1}")),
            s.generator_cpu_secs,
            s.failed,
        )
    };
    let mut md = format!(
        "## `{}`\n\nMachine: {} × {}; load average before: {}; {} clients.\n\n\
         | server | requests | req/s | p50 / p99 / max ms | server cores | server CPU µs per request | generator CPU s | failed |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
        r.command, r.machine.nproc, r.machine.cpu_model, r.machine.loadavg_before, r.clients
    );
    md += &row("hearth", &r.hearth);
    if let Some(c) = &r.ceiling {
        md += &row("raw ceiling", c);
    }
    md
}
