//! `hearth bench`: the on-box benchmark.
//!
//! The bench process is the load generator. It starts a server as a child
//! process (or targets `--url`), signs up users and a room over HTTP, opens
//! the clients with the real WebSocket protocol from its own threads, and
//! verifies every delivery: each client must see every message of the room
//! exactly once, in seq order. Server CPU and memory come from `/proc`.
//! The same load is then replayed against a raw ceiling — a minimal
//! writer process ([`ceiling`]) that sends the same frame bytes to the same
//! number of sockets with vectored writes — so `hearth / ceiling` is a
//! ratio taken on the same machine at the same moment.
//!
//! Files: [`target`] (the server process and `/proc`), [`setup`] (users and
//! the room over HTTP), [`wsclient`] (a minimal client side of RFC 6455),
//! [`load`] (the generator threads and delivery verification), [`fanout`]
//! (the scenario, and the run/measure/report machinery the WebSocket
//! scenarios share), [`rooms`], [`idle`] and [`login`] (scenarios built on
//! it), [`ceiling`], [`report`], and [`http`] (the HTTP throughput
//! scenarios).

pub mod ceiling;
pub mod crash;
pub mod fanout;
pub mod http;
pub mod idle;
pub mod load;
pub mod login;
pub mod report;
pub mod rooms;
pub mod setup;
pub mod target;
pub mod wsclient;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// N clients in one room, P of them posting R messages/s in total.
    ///
    /// Every client verifies it receives every message once, in seq order;
    /// any lost, duplicated or reordered delivery fails the run (exit 1).
    /// Then the same load runs against a raw ceiling writer for comparison.
    Fanout(fanout::FanoutArgs),
    /// N clients in rooms of K, one poster per room, R messages/s over all
    /// rooms. Every client verifies it receives every message of its room
    /// once, in seq order (exit 1 if not); then the raw ceiling.
    Rooms(rooms::RoomsArgs),
    /// Hold N authenticated connections for D seconds: connect time and
    /// server memory per connection, then one message must reach them all.
    Idle(idle::IdleArgs),
    /// A login storm (default 200 attempts/s) during a fan-out, against a
    /// baseline run without it: message latency, and how logins were answered.
    Login(login::LoginArgs),
    /// HTTP: 16 keep-alive clients posting messages as fast as they are
    /// acknowledged (each post waits for its group commit).
    Post(http::HttpArgs),
    /// HTTP: 16 keep-alive clients reading pages of 50 messages of history.
    History(http::HttpArgs),
    /// Kill -9 the server at random moments under WebSocket and REST
    /// posters, restart it on the same data directory, resend what was not
    /// acknowledged, and check nothing acknowledged was lost, duplicated or
    /// reordered (exit 1 if it was).
    Crash(crash::CrashArgs),
    /// The raw ceiling writer (started by `bench fanout`; not for people).
    #[command(hide = true)]
    Ceiling(ceiling::CeilingArgs),
}

/// Options every scenario shares.
#[derive(Debug, Args, Clone)]
pub struct CommonArgs {
    /// Target a running server instead of starting one (e.g. http://127.0.0.1:8080).
    /// Only loopback addresses are accepted.
    #[arg(long)]
    pub url: Option<String>,
    /// Print the report as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as Markdown to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub json_file: Option<PathBuf>,
    /// CPUs for the server child (and the ceiling writer), via `taskset -c`, e.g. "0".
    #[arg(long)]
    pub server_cpus: Option<String>,
    /// Load-generator threads (default: the CPUs this process may run on).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Spread client connections over this many source addresses
    /// (127.0.0.2, 127.0.0.3, …); default: only when ports would run out.
    #[arg(long)]
    pub sources: Option<usize>,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs a benchmark scenario; an error (or a failed verification) makes
/// the binary exit non-zero.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.scenario {
        Scenario::Fanout(a) => fanout::run(a),
        Scenario::Rooms(a) => rooms::run(a),
        Scenario::Idle(a) => idle::run(a),
        Scenario::Login(a) => login::run(a),
        Scenario::Post(a) => http::run(http::Kind::Post, a),
        Scenario::History(a) => http::run(http::Kind::History, a),
        Scenario::Crash(a) => crash::run(a),
        Scenario::Ceiling(a) => ceiling::run(a),
    }
}

/// Raises this process's open-file soft limit to its hard limit (children
/// inherit it) and returns the limit now in force.
pub fn raise_fd_limit() -> anyhow::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX).context("cannot raise the open-file limit")
}

/// The 1/5/15-minute load averages from `/proc/loadavg`, recorded before each run because the
/// machine is shared.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
