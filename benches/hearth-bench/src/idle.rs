//! `hearth bench idle`: hold N authenticated connections (after hello) for
//! D seconds, measure the server's memory, then post one message and check
//! every connection receives it: each is still alive and subscribed.

use anyhow::bail;
use clap::Args;
use serde_json::json;

use super::fanout::{Bench, Load, WsArgs};

#[derive(Debug, Args, Clone)]
pub struct IdleArgs {
    /// WebSocket connections to hold, all in one room.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Seconds to hold them after the last one said hello.
    #[arg(long, default_value_t = 10.0)]
    pub hold: f64,
    /// Accounts to sign up; sockets share their session tokens round-robin.
    /// Default: min(clients, 100).
    #[arg(long)]
    pub users: Option<usize>,
    #[command(flatten)]
    pub ws: WsArgs,
}

pub fn run(args: IdleArgs) -> anyhow::Result<()> {
    if args.clients == 0 || args.hold <= 0.0 {
        bail!("--clients and --hold must be greater than 0");
    }
    let mut bench = Bench::new(&args.ws, args.clients)?;
    let clients = bench.clients;
    let load = Load {
        clients,
        users: args.users.unwrap_or(clients.min(100)).clamp(1, clients),
        rooms: 1,
        posters: 1,
        rate: 1.0,
        duration: 1.0,
        messages: 1,
        body_pad: 0,
        hold: args.hold,
        login_rate: 0.0,
        stall: None,
        read_every: None,
    };
    let hearth = bench.hearth(&load, "hearth")?;
    bench
        .notes
        .push("idle has no ceiling run: nothing is written while connections are held".into());
    let settings = json!({
        "clients": clients,
        "hold_secs": args.hold,
        "messages": 1,
    });
    bench.finish("idle", settings, &load, None, hearth, None)
}
