//! `hearth bench post` and `hearth bench history`: HTTP throughput with a
//! fixed number of keep-alive clients, each sending its next request as
//! soon as the last one is answered (closed loop).

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

#[derive(Debug, Serialize)]
struct HttpReport {
    scenario: &'static str,
    command: String,
    machine: Machine,
    clients: usize,
    duration_secs: f64,
    requests: u64,
    failed: u64,
    requests_per_sec: f64,
    latency_ms: Percentiles,
    server_cpu_secs: Option<f64>,
    server_cores: Option<f64>,
    server_cpu_us_per_request: Option<f64>,
    generator_cpu_secs: f64,
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
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let cpu0 = pid.map(target::sample).transpose()?;
    let gen0 = target::sample(std::process::id())?;
    let began = Instant::now();
    let tasks: Vec<_> = (0..args.clients)
        .map(|i| {
            let token = fixture.tokens[i % fixture.tokens.len()].clone();
            let room = room.clone();
            let stop = stop.clone();
            let done = done.clone();
            let prefill = args.prefill.max(1);
            rt.spawn(async move {
                let mut http = Http::connect(addr).await?;
                let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
                let mut failed = 0u64;
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    n += 1;
                    let t = Instant::now();
                    let (status, _) = match kind {
                        Kind::Post => {
                            let body = json!({"body": format!("post {i} {n}"), "client_id": format!("h{i}-{n}")});
                            http.call(Method::POST, &format!("/api/v1/rooms/{room}/messages"), Some(&token), Some(&body)).await?
                        }
                        Kind::History => {
                            let before = (n * 7919 + i as u64 * 104_729) % prefill + 1;
                            let path = if n % 2 == 0 {
                                format!("/api/v1/rooms/{room}/messages?limit=50&before={before}")
                            } else {
                                format!("/api/v1/rooms/{room}/messages?limit=50")
                            };
                            http.call(Method::GET, &path, Some(&token), None).await?
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
    let total = Duration::from_secs_f64(args.duration);
    while began.elapsed() < total {
        std::thread::sleep(Duration::from_millis(500).min(total.saturating_sub(began.elapsed())));
        if !args.common.quiet {
            eprintln!(
                "{:>5.1}s  {} requests",
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
    drop(server);
    let requests = latency.len();
    let cpu = cpu0.zip(cpu1).map(|(a, b)| b.cpu_secs - a.cpu_secs);
    let report = HttpReport {
        scenario: match kind {
            Kind::Post => "post",
            Kind::History => "history",
        },
        command,
        machine,
        clients: args.clients,
        duration_secs: wall,
        requests,
        failed,
        requests_per_sec: requests as f64 / wall,
        latency_ms: Percentiles::of(&latency),
        server_cpu_secs: cpu,
        server_cores: cpu.map(|c| c / wall),
        server_cpu_us_per_request: cpu.map(|c| c * 1e6 / requests.max(1) as f64),
        generator_cpu_secs: gen1.cpu_secs - gen0.cpu_secs,
        passed: failed == 0,
    };
    let json = serde_json::to_string_pretty(&report)?;
    if args.common.json {
        println!("{json}");
    } else {
        println!(
            "{}: {} clients, {} requests in {:.1}s = {:.0} req/s; latency p50 {:.2} / p99 {:.2} / max {:.2} ms; \
             server CPU {} ; {} failed",
            report.scenario,
            report.clients,
            report.requests,
            wall,
            report.requests_per_sec,
            report.latency_ms.p50,
            report.latency_ms.p99,
            report.latency_ms.max,
            report
                .server_cores
                .map(|c| format!("{c:.2} cores, {:.1} µs/request", report.server_cpu_us_per_request.unwrap_or(0.0)))
                .unwrap_or_else(|| "-".into()),
            failed
        );
    }
    if let Some(p) = &args.common.json_file {
        std::fs::write(p, format!("{json}\n"))?;
    }
    if let Some(p) = &args.common.report {
        let md = format!(
            "## `{}`\n\nMachine: {} × {}; load average before: {}.\n\n\
             | clients | requests | req/s | p50 / p99 / max ms | server cores | server CPU µs per request | failed |\n\
             |---:|---:|---:|---:|---:|---:|---:|\n\
             | {} | {} | {:.0} | {:.2} / {:.2} / {:.2} | {} | {} | {} |\n",
            report.command,
            report.machine.nproc,
            report.machine.cpu_model,
            report.machine.loadavg_before,
            report.clients,
            report.requests,
            report.requests_per_sec,
            report.latency_ms.p50,
            report.latency_ms.p99,
            report.latency_ms.max,
            report.server_cores.map_or("-".into(), |c| format!("{c:.2}")),
            report
                .server_cpu_us_per_request
                .map_or("-".into(), |c| format!("{c:.1}")),
            report.failed,
        );
        std::fs::write(p, md).with_context(|| format!("cannot write {}", p.display()))?;
    }
    if failed > 0 {
        bail!("{failed} requests failed");
    }
    Ok(())
}
