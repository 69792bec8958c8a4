//! hearth: a self-hosted chat server in one binary.
//!
//! # How a message flows
//!
//! 1. A client's `send` frame arrives on its WebSocket ([`ws`]), or a REST
//!    post on [`http`]; either way the transport parses it and calls one
//!    function, [`actions::messages::send`], which checks membership, the
//!    body and the sender's rate limit, and queues a [`commit::Append`].
//! 2. The group committer ([`commit`]), a single thread, takes every queued
//!    append, gives each the room's next seq (a retried `client_id` found in
//!    the room's [`dedup`] window gets the original instead), writes event
//!    and room head in one atomic batch ([`storage::log`]), and flushes once for
//!    the whole group.
//! 3. Only then does it acknowledge each sender and publish each event to
//!    the [`hub`], which pushes one shared copy of the frame bytes, framed
//!    once per format by [`wire`], onto the outbox of every connection in
//!    the room. The committer then hands the event to the [`search`] index's queue
//!    without waiting; an indexer thread makes it searchable within half a
//!    second. A new message also goes, without waiting, to the [`push`]
//!    task, which sends Web Push notifications to members who are away.
//! 4. Each connection's single writer ([`ws`]'s writer) drains its whole
//!    outbox into one vectored write. A connection whose outbox fills is cut
//!    off and resumes later from its last seq, so nobody waits for it.
//!
//! # Layers
//!
//! Imports point one way: transports ([`http`], [`ws`], the [`admin`]
//! socket, [`cli`]) call [`actions`], where every state-changing operation
//! lives once; actions use the engine ([`commit`], [`hub`], [`search`], [`push`],
//! [`rooms`] with each room's [`recent`] window, [`directory`], [`auth`], [`images`], [`state`]), which uses the data layer
//! ([`storage`], [`protocol`], [`wire`], [`codec`], [`error`], [`ids`],
//! [`config`], and [`archive`], the export file format). `docs/architecture.md` walks the files and says where a
//! new operation goes.
//!
//! [`open`] builds the shared state over a data directory; [`start`] adds
//! the listeners: HTTP (with [`tls`] when configured), the [`admin`] socket
//! and optionally a second HTTP listener for the operator endpoints.
//! `main.rs` only parses the command line; [`cli`] runs its subcommands.
//! One of them, `hearth bench`, is the load generator in the `hearth-bench`
//! crate (`benches/hearth-bench/`): it drives a server through its sockets
//! and imports nothing from this library.

pub mod actions;
pub mod admin;
pub mod archive;
pub mod auth;
pub mod cli;
pub mod codec;
pub mod commit;
pub mod config;
pub mod dedup;
pub mod directory;
pub mod error;
mod frame_json;
pub mod http;
pub mod hub;
pub mod ids;
pub mod images;
mod locks;
pub mod metrics;
pub mod outbound;
pub mod presence;
mod priority;
pub mod protocol;
pub mod push;
pub mod recent;
pub mod rooms;
pub mod search;
pub mod state;
pub mod storage;
pub mod tls;
pub mod unread;
pub mod validate;
pub mod views;
pub mod wire;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::limits::Limits;
use crate::auth::password::Hasher;
use crate::auth::Sessions;
use crate::commit::Committer;
use crate::config::Config;
use crate::directory::Directory;
use crate::hub::Hub;
use crate::images::Thumbnailer;
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::push::Push;
use crate::rooms::Rooms;
use crate::search::Search;
use crate::state::AppState;
use crate::storage::Store;
use crate::wire::CloseReason;

/// A server that is listening: its address, and a handle to wait for it.
pub struct Running {
    pub addr: SocketAddr,
    /// Where `/metrics` is served when `metrics_listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub state: Arc<AppState>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Waits until the server has shut down and its data is flushed.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.done.await.context("the server task panicked")?
    }
}

/// An opened data directory: the shared state and the committer thread,
/// with no listener. The server adds listeners ([`start`]); the admin CLI
/// uses it as is when no server runs.
pub struct App {
    pub state: Arc<AppState>,
    threads: Threads,
}

/// The threads that write: the committer and the search indexer.
struct Threads {
    commit: std::thread::JoinHandle<()>,
    /// The search indexer, when indexing is on.
    index: Option<std::thread::JoinHandle<()>>,
}

impl App {
    /// Stops the committer and the indexer and flushes the store.
    pub async fn close(self) -> anyhow::Result<()> {
        shutdown_gracefully(self.state, self.threads).await
    }
}

/// Opens the store and loads the in-memory registries. Fails if another
/// process holds the data directory.
pub fn open(config: Config, shutdown: CancellationToken) -> anyhow::Result<App> {
    let store = Store::open(
        &config.data,
        config.storage.cache_bytes,
        config.storage.durability,
    )
    .with_context(|| format!("cannot open the data directory {}", config.data.display()))?;
    // No upload is in progress: what one left half-received is of no use.
    store
        .clear_upload_temps()
        .context("cannot clear unfinished uploads")?;
    let rooms = Arc::new(
        Rooms::load(
            &store,
            config.storage.history_window,
            config.storage.dedup_window,
        )
        .context("cannot load rooms")?,
    );
    let directory = Arc::new(Directory::load(&store).context("cannot load users")?);
    let hub = Arc::new(Hub::new());
    let push = Push::open(&store).context("cannot load the Web Push key")?;
    // Derived from the log, beside the database (backups leave it out).
    let (search, index_thread) = if config.storage.search_index {
        let (search, thread) = Search::open(&config.data.join("index"), store.clone())
            .context("cannot open the search index")?;
        (search, Some(thread))
    } else {
        (Search::off(), None)
    };
    let (committer, commit_thread) = Committer::start(
        store.clone(),
        rooms.clone(),
        directory.clone(),
        hub.clone(),
        search.feed(),
        push.feed(),
        config.storage.group_commit_max,
    );
    let state = Arc::new(AppState {
        sessions: Sessions::new(store.clone(), config.sessions.clone()),
        hasher: Hasher::new(
            config.limits.hash_concurrency,
            config.limits.hash_on_idle_cpu,
        ),
        images: Thumbnailer::default(),
        limits: Limits::new(&config.limits, &config.files),
        presence: Presence::default(),
        callbacks_changed: tokio::sync::Notify::new(),
        replays: tokio::sync::Semaphore::new(
            tokio::runtime::Handle::try_current().map_or(1, |h| h.metrics().num_workers()),
        ),
        metrics: Metrics::new(&committer.stats.histograms),
        tls: config.tls.is_some(),
        config,
        store,
        rooms,
        directory,
        hub,
        committer,
        search,
        push,
        shutdown,
        tracker: TaskTracker::new(),
        started: std::time::Instant::now(),
    });
    Ok(App {
        state,
        threads: Threads {
            commit: commit_thread,
            index: index_thread,
        },
    })
}

/// Opens the store, binds the listeners and starts serving. Returns once the
/// server is accepting connections; cancelling `shutdown` stops it.
pub async fn start(config: Config, shutdown: CancellationToken) -> anyhow::Result<Running> {
    // Certificates first: a bad one should stop us before anything opens.
    let acceptor = match &config.tls {
        Some(files) => Some(Arc::new(
            tls::Acceptor::new(files.clone(), config.tls_handshake_timeout)
                .context("cannot load the TLS certificate")?,
        )),
        None => None,
    };
    let App { state, threads } = open(config, shutdown)?;
    let config = &state.config;
    let listener =
        bind(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let metrics_listener = match config.metrics_listen {
        Some(at) => Some(
            TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen on metrics_listen {at}"))?,
        ),
        None => None,
    };
    let metrics_addr = metrics_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let mut tasks = vec![
        tokio::spawn(sweep_idle(state.clone())),
        tokio::spawn(announce_presence(state.clone())),
        tokio::spawn(save_reads(state.clone())),
        tokio::spawn(actions::bots::supervise(state.clone())),
        tokio::spawn(actions::files::sweep(state.clone())),
        tokio::spawn(push::deliver::run(state.clone())),
    ];
    // The store's lock is held, so no other server owns this socket.
    match admin::socket::bind(&config.data) {
        Ok(l) => tasks.push(tokio::spawn(admin::socket::serve(l, state.clone()))),
        Err(e) => tracing::warn!(
            error = %e,
            path = %admin::socket::path(&config.data).display(),
            "Cannot open the admin socket; admin commands will not reach this server."
        ),
    }
    if let Some(l) = metrics_listener {
        tasks.push(tokio::spawn(http::serve(
            l,
            state.clone(),
            None,
            http::Surface::Operator,
        )));
    }
    if let Some(a) = &acceptor {
        tasks.push(tokio::spawn(tls::reload_on_sighup(
            a.clone(),
            state.shutdown.clone(),
        )));
    }
    let serving = state.clone();
    let done = tokio::spawn(async move {
        http::serve(listener, serving.clone(), acceptor, http::Surface::Public).await;
        let data = serving.config.data.clone();
        let stopped = shutdown_gracefully(serving, threads).await;
        for t in tasks {
            t.abort();
        }
        admin::socket::remove(&data);
        stopped
    });
    Ok(Running {
        addr,
        metrics_addr,
        state,
        done,
    })
}

/// Connections the kernel may queue before we accept them. The default of
/// 128 overflowed when thousands of clients reconnected at once (each
/// dropped SYN costs the client a 1 s retransmit); the kernel caps this at
/// `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std's bind does: a restarted server can take its port back at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Runs until `shutdown` is cancelled, then stops cleanly.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let running = start(config, shutdown).await?;
    tracing::info!(addr = %running.addr, "Listening.");
    running.wait().await
}

/// Closes every WebSocket with 1001, waits for connections to finish,
/// drains the committer, commits the search index and flushes the store.
async fn shutdown_gracefully(state: Arc<AppState>, threads: Threads) -> anyhow::Result<()> {
    tracing::info!("Shutting down.");
    state.hub.close_all(CloseReason::ShuttingDown);
    state.tracker.close();
    if tokio::time::timeout(Duration::from_secs(6), state.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("Some connections did not close in time; stopping anyway.");
    }
    state.committer.stop().await;
    let _ = tokio::task::spawn_blocking(move || threads.commit.join()).await;
    // After the committer, so what it handed over last is committed.
    state.search.stop().await;
    if let Some(index) = threads.index {
        let _ = tokio::task::spawn_blocking(move || index.join()).await;
    }
    // After the committer, so cursors moved by its last messages are in.
    if let Err(e) = actions::reads::save(&state, true).await {
        tracing::warn!(error = %e, "Could not save read state at shutdown.");
    }
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || store.flush())
        .await
        .context("the final flush panicked")?
        .context("the final flush failed")?;
    tracing::info!("Stopped.");
    Ok(())
}

/// Tells people who came online or went offline, every presence tick.
async fn announce_presence(state: Arc<AppState>) {
    let mut every = tokio::time::interval(presence::TICK);
    loop {
        every.tick().await;
        actions::presence::announce(&state);
    }
}

/// Writes moved read cursors, and unread tally snapshots that are due, to
/// the store every second.
async fn save_reads(state: Arc<AppState>) {
    let mut every = tokio::time::interval(actions::reads::SAVE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = actions::reads::save(&state, false).await {
            tracing::warn!(error = %e, "Could not save read state; will try again.");
        }
    }
}

/// Forgets idle rate-limit buckets and the recent windows of rooms nobody
/// read lately, now and then, bounding their memory.
async fn sweep_idle(state: Arc<AppState>) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        every.tick().await;
        state.limits.sweep();
        state.rooms.drop_idle_windows();
    }
}
