//! `hearth bench rooms`: N clients in rooms of K, each room with its own
//! poster, R messages/s over all rooms. Every client verifies it receives
//! every message of its own room, and nothing else, once and in order.

use anyhow::bail;
use clap::Args;
use serde_json::json;

use super::fanout::{Bench, Load, WsArgs};

#[derive(Debug, Args, Clone)]
pub struct RoomsArgs {
    /// WebSocket clients, spread over rooms of `--room-size`.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Clients per room: there are clients ÷ room-size rooms (rounded), and
    /// client i is in room i mod rooms, so sizes differ by at most one.
    #[arg(long, default_value_t = 50)]
    pub room_size: usize,
    /// Messages per second over all rooms together; one client of each
    /// room posts its room's share.
    #[arg(long, default_value_t = 2340.0)]
    pub rate: f64,
    /// Seconds of posting.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Accounts per room (each signup and login costs an argon2 hash); a
    /// room's clients share their session tokens round-robin.
    #[arg(long, default_value_t = 1)]
    pub users_per_room: usize,
    /// Extra bytes of filler in each message body.
    #[arg(long, default_value_t = 0)]
    pub body_pad: usize,
    /// Skip the raw-ceiling run.
    #[arg(long)]
    pub no_ceiling: bool,
    #[command(flatten)]
    pub ws: WsArgs,
}

pub fn run(args: RoomsArgs) -> anyhow::Result<()> {
    if args.rate <= 0.0 || args.duration <= 0.0 || args.clients == 0 || args.room_size == 0 {
        bail!("--clients, --room-size, --rate and --duration must be greater than 0");
    }
    let bench = Bench::new(&args.ws, args.clients)?;
    let clients = bench.clients;
    let rooms = ((clients as f64 / args.room_size as f64).round() as usize).clamp(1, clients);
    // Every room gets the same number of messages: its poster sends every
    // rooms-th message of the global schedule.
    let per_room = (args.rate / rooms as f64 * args.duration).round().max(1.0) as u64;
    let load = Load {
        clients,
        users: rooms * args.users_per_room.max(1),
        rooms,
        posters: rooms,
        rate: args.rate,
        duration: args.duration,
        messages: per_room * rooms as u64,
        body_pad: args.body_pad,
        hold: 0.0,
        login_rate: 0.0,
        stall: None,
        read_every: None,
    };
    let hearth = bench.hearth(&load, "hearth")?;
    let ceiling = if args.no_ceiling {
        None
    } else {
        Some(bench.ceiling(&hearth)?)
    };
    let settings = json!({
        "clients": clients,
        "room_size": args.room_size,
        "posters": rooms,
        "rate": args.rate,
        "rate_per_room": args.rate / rooms as f64,
        "duration_secs": args.duration,
        "messages": load.messages,
        "messages_per_room": per_room,
    });
    bench.finish("rooms", settings, &load, None, hearth, ceiling)
}
