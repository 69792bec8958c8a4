//! The command line: `hearth serve` and the operator's tools. Each
//! subcommand's doc comment is its `--help` text.

mod admin;
mod health;
mod instance;
mod logs;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config, LogFormat, Overrides};
pub use instance::InstanceArgs;

#[derive(Debug, Parser)]
#[command(
    name = "hearth",
    version,
    about = "A self-hosted chat server in one binary."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the chat server until SIGTERM or Ctrl-C.
    ///
    /// With no options it listens on 127.0.0.1:8080 and keeps its data in
    /// ./data. Prints `listening on http://ADDR` (https with TLS) once it
    /// accepts connections.
    Serve(ServeArgs),
    /// Inspect configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage accounts: add, list, disable, delete, reset passwords, end sessions.
    ///
    /// Works on a running server (through its admin socket, acting at once:
    /// a disabled user's connections close immediately) and on a stopped
    /// one (opening the data directory directly).
    User(admin::UserArgs),
    /// Manage bot accounts: make one (with its token), list, new token.
    Bot(admin::BotArgs),
    /// Manage rooms: list, show, rename, delete, delete a message.
    Room(admin::RoomArgs),
    /// Make, list and revoke invite codes for `registration = "invite"`.
    Invite(admin::InviteArgs),
    /// Show or change who may sign up (open, invite, closed) while the
    /// server runs; the choice outlives restarts and wins over the config's
    /// `registration` until set back with `default`.
    Registration(admin::RegistrationArgs),
    /// Print counts: users, rooms, messages, connections, disk use.
    Stats(admin::StatsArgs),
    /// Check every invariant of the store; exits 1 with a report of each
    /// broken one (safe while the server runs).
    Verify(admin::VerifyArgs),
    /// Manage the search index: `rebuild` indexes every message again.
    ///
    /// The index (DATA/index) is derived from the room logs; it also
    /// catches up by itself at every start.
    Index(admin::IndexArgs),
    /// Write a consistent backup to a new FILE, while the server runs and
    /// takes writes (or from a stopped server's data directory).
    Backup(admin::BackupArgs),
    /// Restore a backup FILE into a new, empty data directory, then verify it.
    Restore(admin::RestoreArgs),
    /// Export users, rooms, memberships and messages (with edits,
    /// deletions and reactions) to a JSON Lines FILE, while the server
    /// runs or from a stopped server's data directory.
    Export(admin::ExportArgs),
    /// Import a FILE written by `hearth export` (or a Slack export with
    /// --slack) into this server, empty or not. Importing again changes
    /// nothing.
    Import(admin::ImportArgs),
    /// Make TLS certificates for local use.
    #[command(subcommand)]
    Cert(admin::CertCommand),
    /// Exit 0 if the server answers /healthz, 1 otherwise (for container
    /// health checks; needs no curl).
    Healthcheck(health::HealthcheckArgs),
    /// Benchmark a server on this machine: start one (or target --url),
    /// load it with real clients, verify every delivery, compare with a
    /// raw-socket ceiling, report throughput, latency, CPU and memory.
    Bench(hearth_bench::BenchArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub instance: InstanceArgs,
    /// Address to listen on, e.g. 0.0.0.0:8080 (overrides `listen` and HEARTH_LISTEN).
    #[arg(long)]
    pub listen: Option<String>,
    /// Log format: text or json (overrides `log_format`).
    #[arg(long)]
    pub log_format: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the built-in defaults as a documented config file.
    Default,
    /// Check a config file (and the environment) the way `serve` would;
    /// exits 1 naming every problem.
    Check {
        /// The file to check; without it, only the environment is checked.
        file: Option<PathBuf>,
    },
}

/// Runs the parsed command; the binary maps the result to an exit code.
pub fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Bench(args) => hearth_bench::run(args),
        Command::Config(ConfigCommand::Default) => {
            print!("{}", config::DEFAULT_CONFIG_TOML);
            Ok(())
        }
        Command::User(args) => admin::user(args),
        Command::Room(args) => admin::room(args),
        Command::Invite(args) => admin::invite(args),
        Command::Registration(args) => admin::registration(args),
        Command::Bot(args) => admin::bot(args),
        Command::Stats(args) => admin::stats(args),
        Command::Verify(args) => admin::verify(args),
        Command::Index(args) => admin::index(args),
        Command::Backup(args) => admin::backup(args),
        Command::Restore(args) => admin::restore(args),
        Command::Export(args) => admin::export(args),
        Command::Import(args) => admin::import(args),
        Command::Cert(command) => admin::cert(command),
        Command::Healthcheck(args) => health::check(args),
        Command::Config(ConfigCommand::Check { file }) => {
            let overrides = Overrides {
                config_file: file,
                ..Overrides::default()
            };
            let config = Config::load(&overrides)?;
            if let Some(files) = config.tls {
                crate::tls::Acceptor::new(files, config.tls_handshake_timeout)
                    .context("the TLS certificate cannot be used")?;
            }
            println!("configuration is valid");
            Ok(())
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(&Overrides {
        config_file: args.instance.config,
        listen: args.listen,
        data: args.instance.data,
    })?;
    if let Some(f) = args.log_format {
        config.log_format = match f.as_str() {
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            other => anyhow::bail!("--log-format {other:?}: expected text or json"),
        };
    }
    init_logging(&config);
    // Whatever way `serve` ends, the lines still held go out first.
    let _written = LogsWritten;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.runtime_workers())
        .enable_all()
        .thread_name("hearth-worker")
        .build()
        .context("cannot start the async runtime")?;
    let data = config.data.clone();
    let served = runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        // Signals are caught from before the listening line: a supervisor
        // that stops the server as soon as it is up gets a clean stop.
        let signals = Signals::install();
        let running = crate::start(config, shutdown.clone()).await?;
        println!("listening on {scheme}://{}", running.addr);
        tracing::info!(addr = %running.addr, "Listening.");
        tokio::spawn(signals.stop_on_signal(shutdown));
        running.wait().await
    });
    if served.is_ok() {
        // Every task, and with them every handle on the database, goes
        // with the runtime; then the next start is made quick.
        runtime.shutdown_timeout(std::time::Duration::from_secs(5));
        let started = std::time::Instant::now();
        if crate::storage::snapshot_for_next_open(&data) {
            tracing::info!(
                took_ms = started.elapsed().as_millis() as u64,
                "Database prepared for a quick next start."
            );
        }
    }
    served
}

/// Writes the log's held lines when dropped: as `serve` returns.
struct LogsWritten;

impl Drop for LogsWritten {
    fn drop(&mut self) {
        logs::flush();
    }
}

/// SIGTERM and SIGINT, caught.
struct Signals(Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>);

impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Signals(Some((term, int))),
            _ => {
                tracing::error!("Cannot install signal handlers; stop the server with SIGKILL.");
                Signals(None)
            }
        }
    }

    async fn stop_on_signal(self, shutdown: CancellationToken) {
        let Some((mut term, mut int)) = self.0 else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        shutdown.cancel();
    }
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, never into a log file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(logs::Batched::start());
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
