//! `hearth bench`: the on-box benchmark, a crate of its own that the
//! `hearth` binary links (its `bench` subcommand is [`BenchArgs`] and
//! [`run`]).
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
//! It knows the server only through its sockets and its command line (the
//! child is this same executable, run as `hearth serve`): it imports
//! nothing from the `hearth` library, so the server's code can change
//! without the bench and the server never carries the bench's crates.
//!
//! Files: [`target`] (the server process and `/proc`), [`setup`] (users and
//! the room over HTTP), [`wsclient`] (a minimal client side of RFC 6455),
//! [`load`] (the generator threads and delivery verification), [`fanout`]
//! (the scenario, and the run/measure machinery the WebSocket scenarios
//! share), [`rooms`], [`idle`] and [`login`] (scenarios built on it),
//! [`ceiling`], [`report`] (what a run found, as JSON, a table and
//! Markdown), [`http`] (the HTTP throughput scenarios), [`search`] (index
//! lag and search latency under posts), [`crash`] (kill -9 under load, then
//! check every acknowledged message), [`unread`] (a room list over many
//! unread messages, and restarts on them), and [`common`] (the options
//! every scenario shares). Imports point one way, from the scenarios down
//! to the leaves: [`rooms`], [`idle`], [`login`], [`http`], [`search`] →
//! [`fanout`] → [`load`] → [`wsclient`]; [`crash`] and [`unread`] →
//! [`setup`], [`target`], [`wsclient`]; [`report`], [`common`], [`target`],
//! [`setup`] and [`wsclient`] import nothing of the bench.

pub mod ceiling;
pub mod common;
pub mod crash;
pub mod fanout;
pub mod http;
pub mod httpceiling;
pub mod idle;
pub mod load;
pub mod login;
pub mod report;
pub mod rooms;
pub mod search;
pub mod setup;
pub mod target;
pub mod unread;
pub mod wsclient;

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
    /// Message search under a steady stream of posts (117/s): how long a
    /// new message takes to be found (index lag), and search latency.
    Search(search::SearchArgs),
    /// Kill -9 the server at random moments under WebSocket and REST
    /// posters, restart it on the same data directory, resend what was not
    /// acknowledged, and check nothing acknowledged was lost, duplicated or
    /// reordered (exit 1 if it was).
    Crash(crash::CrashArgs),
    /// One reader in many rooms full of unread messages: time the room
    /// list (exact unread and mention counts in every room, exit 1 if
    /// not), and the server's restart on that data against one without.
    Unread(unread::UnreadArgs),
    /// The raw ceiling writer (started by `bench fanout`; not for people).
    #[command(hide = true)]
    Ceiling(ceiling::CeilingArgs),
    /// The raw HTTP ceiling (started by `bench post` and `bench history`).
    #[command(hide = true)]
    HttpCeiling(httpceiling::HttpCeilingArgs),
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
        Scenario::Search(a) => search::run(a),
        Scenario::Crash(a) => crash::run(a),
        Scenario::Unread(a) => unread::run(a),
        Scenario::Ceiling(a) => ceiling::run(a),
        Scenario::HttpCeiling(a) => httpceiling::run(a),
    }
}
