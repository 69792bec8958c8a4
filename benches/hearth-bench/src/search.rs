//! `hearth bench search`: how far message search trails the log, and what
//! a search costs, under a steady stream of posts (by default the seed
//! load, 117 messages/s).
//!
//! It stores `--prefill` messages made of a small vocabulary, then for
//! `--duration` seconds one client posts at `--rate`, `--searchers`
//! clients search those words in a closed loop, and a probe posts a word
//! no other message has every 250 ms and polls the search until it is
//! found: the time from the post's acknowledgement to that answer is the
//! index's lag. A run fails if any request fails or the largest lag is over
//! `--max-lag`. With a server of its own it also reports the size of the
//! data directory's `db` and `index`.

use std::path::Path;
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
pub struct SearchArgs {
    /// Messages posted per second while searches run.
    #[arg(long, default_value_t = 117.0)]
    pub rate: f64,
    /// Clients searching in a closed loop.
    #[arg(long, default_value_t = 2)]
    pub searchers: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Messages stored before the run, so searches have something to rank.
    #[arg(long, default_value_t = 2000)]
    pub prefill: u64,
    /// Fail the run if a probe took longer than this many seconds to be found.
    #[arg(long, default_value_t = 1.0)]
    pub max_lag: f64,
    /// After storing `--prefill` messages, time `hearth index rebuild` (the
    /// whole log indexed again, on the server's CPUs): the indexing
    /// throughput. Needs a server of the bench's own.
    #[arg(long)]
    pub time_rebuild: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Serialize)]
struct SearchReport {
    scenario: &'static str,
    command: String,
    machine: Machine,
    rate: f64,
    duration_secs: f64,
    posted: u64,
    searches: u64,
    searches_per_sec: f64,
    search_latency_ms: Percentiles,
    probes: u64,
    /// Acknowledged post → found by a search.
    lag_ms: Percentiles,
    failed: u64,
    /// `--time-rebuild`: the whole log indexed again.
    rebuild: Option<Rebuild>,
    server_cpu_secs: Option<f64>,
    server_cores: Option<f64>,
    db_bytes: Option<u64>,
    index_bytes: Option<u64>,
    passed: bool,
}

#[derive(Debug, Serialize)]
struct Rebuild {
    documents: u64,
    secs: f64,
    documents_per_sec: f64,
}

/// Runs `hearth index rebuild` on the bench's own server and times it.
fn time_rebuild(data: &Path) -> anyhow::Result<Rebuild> {
    let exe = std::env::current_exe().context("cannot find the hearth binary")?;
    let began = Instant::now();
    let out = std::process::Command::new(exe)
        .args(["index", "rebuild", "--json", "--data"])
        .arg(data)
        .output()
        .context("cannot run hearth index rebuild")?;
    let secs = began.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "hearth index rebuild failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let counts: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let documents = counts["documents"]
        .as_u64()
        .context("the rebuild's answer has no document count")?;
    Ok(Rebuild {
        documents,
        secs,
        documents_per_sec: documents as f64 / secs,
    })
}

const WORDS: [&str; 16] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa",
];

/// A message of eight vocabulary words, different for each `n`.
fn sentence(n: u64) -> String {
    (0..8u64)
        .map(|k| WORDS[((n * 7 + k * k * 3) % 16) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Searches the closed-loop clients cycle through: words, a phrase, a
/// prefix and a filter.
fn query(n: u64) -> String {
    match n % 4 {
        0 => WORDS[(n / 4 % 16) as usize].to_string(),
        1 => format!(
            "%22{}%20{}%22",
            WORDS[(n % 16) as usize],
            WORDS[((n + 3) % 16) as usize]
        ),
        2 => format!("{}*", &WORDS[(n % 16) as usize][..2]),
        _ => format!(
            "{}%20{}",
            WORDS[(n % 16) as usize],
            WORDS[((n + 5) % 16) as usize]
        ),
    }
}

pub fn run(args: SearchArgs) -> anyhow::Result<()> {
    if args.searchers == 0 || args.duration <= 0.0 || args.rate <= 0.0 {
        bail!("--searchers, --duration and --rate must be greater than 0");
    }
    let machine = Machine::now();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.common.threads.unwrap_or(2).max(1))
        .enable_all()
        .build()?;
    let unlimited = [
        ("HEARTH_SEARCH_PER_SEC".to_string(), "1000000".to_string()),
        ("HEARTH_SEARCH_BURST".to_string(), "1000000".to_string()),
    ];
    let mut server = None;
    let addr = match &args.common.url {
        Some(url) => super::fanout::loopback_url(url)?,
        None => {
            let p = args.common.serve(&unlimited)?;
            let a = p.addr;
            server = Some(p);
            a
        }
    };
    let pid = server.as_ref().map(Process::pid);
    let fixture = rt
        .block_on(setup::fixture(addr, 1, 1, 1))
        .context("setup failed")?;
    let (token, room) = (fixture.tokens[0].clone(), fixture.room_ids[0].clone());
    if !args.common.quiet {
        eprintln!("storing {} messages to search", args.prefill);
    }
    rt.block_on(setup::prefill(
        addr,
        &token,
        &room,
        args.prefill,
        4,
        sentence,
    ))?;

    let rebuild = if args.time_rebuild {
        let data = server
            .as_ref()
            .and_then(Process::data_dir)
            .context("--time-rebuild needs a server of the bench's own (no --url)")?;
        if !args.common.quiet {
            eprintln!("rebuilding the index over {} messages", args.prefill);
        }
        Some(time_rebuild(&data)?)
    } else {
        None
    };

    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let cpu0 = pid.map(target::sample).transpose()?;
    let began = Instant::now();
    let poster = rt.spawn(post_at_rate(
        addr,
        token.clone(),
        room.clone(),
        args.rate,
        args.prefill,
        stop.clone(),
        failed.clone(),
    ));
    let searchers: Vec<_> = (0..args.searchers as u64)
        .map(|i| {
            rt.spawn(search_loop(
                addr,
                token.clone(),
                i,
                stop.clone(),
                failed.clone(),
            ))
        })
        .collect();
    let probe = rt.spawn(probe_lag(
        addr,
        token.clone(),
        room.clone(),
        stop.clone(),
        failed.clone(),
    ));
    std::thread::sleep(Duration::from_secs_f64(args.duration));
    stop.store(true, Relaxed);
    let posted = rt.block_on(poster).context("the poster panicked")??;
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for s in searchers {
        latency.add(rt.block_on(s).context("a searcher panicked")??)?;
    }
    let lag = rt.block_on(probe).context("the probe panicked")??;
    let wall = began.elapsed().as_secs_f64();
    let cpu1 = pid.map(target::sample).transpose()?;
    let cpu = cpu0.zip(cpu1).map(|(a, b)| b.cpu_secs - a.cpu_secs);
    let data = server.as_ref().and_then(Process::data_dir);
    let failed = failed.load(Relaxed);
    let lag_ms = Percentiles::of(&lag);
    let report = SearchReport {
        scenario: "search",
        command,
        machine,
        rate: args.rate,
        duration_secs: wall,
        posted,
        searches: latency.len(),
        searches_per_sec: latency.len() as f64 / wall,
        search_latency_ms: Percentiles::of(&latency),
        probes: lag.len(),
        lag_ms,
        failed,
        rebuild,
        server_cpu_secs: cpu,
        server_cores: cpu.map(|c| c / wall),
        db_bytes: data.as_deref().map(|d| dir_bytes(&d.join("db"))),
        index_bytes: data.as_deref().map(|d| dir_bytes(&d.join("index"))),
        passed: failed == 0 && !lag.is_empty() && lag_ms.max <= args.max_lag * 1000.0,
    };
    drop(server);
    args.common.emit(
        &report,
        |r| format!("{}\n", summary(r)),
        |r| {
            format!(
                "## `{}`\n\nMachine: {} × {}; load average before: {}.\n\n{}\n",
                r.command,
                r.machine.nproc,
                r.machine.cpu_model,
                r.machine.loadavg_before,
                summary(r)
            )
        },
    )?;
    if !report.passed {
        bail!(
            "{failed} requests failed; largest lag {:.0} ms (limit {:.0} ms)",
            report.lag_ms.max,
            args.max_lag * 1000.0
        );
    }
    Ok(())
}

fn summary(r: &SearchReport) -> String {
    format!(
        "search: {} posted at {:.0}/s; {} searches ({:.0}/s), latency p50 {:.2} / p99 {:.2} / max {:.2} ms; \
         index lag over {} probes p50 {:.0} / p99 {:.0} / max {:.0} ms;{} server {}; db {} B, index {} B; {} failed",
        r.posted,
        r.rate,
        r.searches,
        r.searches_per_sec,
        r.search_latency_ms.p50,
        r.search_latency_ms.p99,
        r.search_latency_ms.max,
        r.probes,
        r.lag_ms.p50,
        r.lag_ms.p99,
        r.lag_ms.max,
        r.rebuild.as_ref().map_or(String::new(), |b| format!(
            " rebuild of {} documents in {:.1} s ({:.0}/s);",
            b.documents, b.secs, b.documents_per_sec
        )),
        r.server_cores.map_or("-".into(), |c| format!("{c:.2} cores")),
        r.db_bytes.map_or("-".into(), |b| b.to_string()),
        r.index_bytes.map_or("-".into(), |b| b.to_string()),
        r.failed
    )
}

/// Posts vocabulary messages at `rate` until `stop`; returns how many.
async fn post_at_rate(
    addr: std::net::SocketAddr,
    token: String,
    room: String,
    rate: f64,
    first: u64,
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicU64>,
) -> anyhow::Result<u64> {
    let mut http = Http::connect(addr).await?;
    let mut every = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let path = format!("/api/v1/rooms/{room}/messages");
    let mut n = 0;
    while !stop.load(Relaxed) {
        every.tick().await;
        let body = json!({"body": sentence(first + n)});
        let (status, _) = http
            .call(Method::POST, &path, Some(&token), Some(&body))
            .await?;
        if status != 201 {
            failed.fetch_add(1, Relaxed);
        }
        n += 1;
    }
    Ok(n)
}

/// Searches in a closed loop until `stop`; returns the latencies (µs).
async fn search_loop(
    addr: std::net::SocketAddr,
    token: String,
    client: u64,
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicU64>,
) -> anyhow::Result<Histogram<u64>> {
    let mut http = Http::connect(addr).await?;
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut n = client * 7;
    while !stop.load(Relaxed) {
        n += 1;
        let path = format!("/api/v1/search?q={}&limit=20", query(n));
        let t = Instant::now();
        let (status, _) = http.call(Method::GET, &path, Some(&token), None).await?;
        let _ = latency.record((t.elapsed().as_micros() as u64).max(1));
        if status != 200 {
            failed.fetch_add(1, Relaxed);
        }
    }
    Ok(latency)
}

/// Every 250 ms, posts a word found nowhere else and polls the search
/// until it answers with it; returns the lags (µs).
async fn probe_lag(
    addr: std::net::SocketAddr,
    token: String,
    room: String,
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicU64>,
) -> anyhow::Result<Histogram<u64>> {
    let mut http = Http::connect(addr).await?;
    let mut lag = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let path = format!("/api/v1/rooms/{room}/messages");
    let mut n = 0u64;
    while !stop.load(Relaxed) {
        n += 1;
        let word = format!("probe{n}x{}", rand::random::<u32>());
        let (status, _) = http
            .call(
                Method::POST,
                &path,
                Some(&token),
                Some(&json!({ "body": word })),
            )
            .await?;
        if status != 201 {
            failed.fetch_add(1, Relaxed);
            continue;
        }
        let acked = Instant::now();
        let search = format!("/api/v1/search?q={word}");
        loop {
            let (status, found) = http.call(Method::GET, &search, Some(&token), None).await?;
            if status == 200 && found["results"].as_array().is_some_and(|r| !r.is_empty()) {
                let _ = lag.record((acked.elapsed().as_micros() as u64).max(1));
                break;
            }
            if status != 200 || acked.elapsed() > Duration::from_secs(10) {
                failed.fetch_add(1, Relaxed);
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(lag)
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => dir_bytes(&e.path()),
                    _ => e.metadata().map_or(0, |m| m.len()),
                })
                .sum()
        })
        .unwrap_or(0)
}
