//! `hearth bench login`: a login storm during a fan-out. The same fan-out
//! runs twice on fresh servers, first alone (the baseline), then with
//! logins attempted at a fixed rate (each an argon2 hash on the server);
//! the report compares message latency and counts how the logins were
//! answered: accepted, refused (429/503), or failed.

use anyhow::bail;
use clap::Args;
use serde_json::json;

use super::fanout::{Bench, Load, WsArgs};

#[derive(Debug, Args, Clone)]
pub struct LoginArgs {
    /// WebSocket clients, all in one room.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// How many of the clients also post.
    #[arg(long, default_value_t = 4)]
    pub posters: usize,
    /// Messages per second, all posters together.
    #[arg(long, default_value_t = 117.0)]
    pub rate: f64,
    /// Seconds of posting, and of the storm.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Accounts to sign up (the storm logs into them round-robin).
    /// Default: min(clients, 100).
    #[arg(long)]
    pub users: Option<usize>,
    /// Logins attempted per second during the second run.
    #[arg(long, default_value_t = 200.0)]
    pub login_rate: f64,
    #[command(flatten)]
    pub ws: WsArgs,
}

pub fn run(args: LoginArgs) -> anyhow::Result<()> {
    if args.rate <= 0.0 || args.duration <= 0.0 || args.clients == 0 || args.login_rate <= 0.0 {
        bail!("--clients, --rate, --duration and --login-rate must be greater than 0");
    }
    if args.posters == 0 || args.posters > args.clients {
        bail!("--posters must be from 1 to --clients");
    }
    let mut bench = Bench::new(&args.ws, args.clients)?;
    let clients = bench.clients;
    let load = Load {
        clients,
        users: args.users.unwrap_or(clients.min(100)).clamp(1, clients),
        rooms: 1,
        posters: args.posters.min(clients),
        rate: args.rate,
        duration: args.duration,
        messages: (args.rate * args.duration).round().max(1.0) as u64,
        body_pad: 0,
        hold: 0.0,
        login_rate: args.login_rate,
        stall: None,
        read_every: None,
    };
    let baseline = bench.hearth(
        &Load {
            login_rate: 0.0,
            ..load.clone()
        },
        "baseline (no logins)",
    )?;
    let hearth = bench.hearth(&load, "hearth")?;
    bench
        .notes
        .push("no ceiling run: the comparison is with the baseline".into());
    let settings = json!({
        "clients": clients,
        "posters": load.posters,
        "rate": args.rate,
        "duration_secs": args.duration,
        "messages": load.messages,
        "login_rate": args.login_rate,
    });
    bench.finish("login", settings, &load, Some(baseline), hearth, None)
}
