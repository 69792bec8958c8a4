//! The state every handler and connection shares, passed explicitly (no
//! global singletons).

use std::sync::Arc;

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
use crate::metrics::{Metrics, Snapshot};
use crate::presence::Presence;
use crate::push::Push;
use crate::rooms::Rooms;
use crate::search::Search;
use crate::storage::Store;

pub struct AppState {
    pub config: Config,
    pub store: Store,
    /// Rooms, members and durable heads, answered from memory.
    pub rooms: Arc<Rooms>,
    /// User names and standing, to render authors and check sessions.
    pub directory: Arc<Directory>,
    /// Live connections and fan-out.
    pub hub: Arc<Hub>,
    /// The queue into the group committer, the only writer of room logs.
    pub committer: Committer,
    /// The full-text index of messages, fed by the committer.
    pub search: Search,
    /// Web Push: the server's key and the queue of notifications.
    pub push: Push,
    pub sessions: Sessions,
    pub hasher: Hasher,
    /// Turns uploaded pictures into avatars, a few at a time.
    pub images: Thumbnailer,
    pub limits: Limits,
    /// Who is online, and what is still to be announced.
    pub presence: Presence,
    /// Told when a bot's callback is set or cleared, so its deliveries
    /// start or stop (see [`crate::actions::bots::supervise`]).
    pub callbacks_changed: tokio::sync::Notify,
    /// Turns at reading and encoding resume replays, one per runtime
    /// thread: a reconnect storm's replays wait their turn here instead of
    /// crowding the runtime's queues ahead of live deliveries.
    pub replays: tokio::sync::Semaphore,
    /// Counters and histograms for `/metrics`.
    pub metrics: Metrics,
    /// Whether clients reach us over TLS (cookies get `Secure`, origins `https`).
    pub tls: bool,
    /// Cancelled to start a graceful shutdown.
    pub shutdown: CancellationToken,
    /// Every connection task, so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// When the instance was opened, for the uptime the admin panel shows.
    pub started: std::time::Instant,
}

impl AppState {
    /// `/metrics`: every metric in the OpenMetrics text format.
    pub fn metrics_text(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let l = &self.limits;
        self.metrics.render(Snapshot {
            websockets: self.hub.connection_count() as i64,
            runtime_workers: tokio::runtime::Handle::try_current()
                .map_or(0, |h| h.metrics().num_workers() as i64),
            users: self.directory.count() as i64,
            rooms: self.rooms.count() as i64,
            messages: self.committer.stats.messages.load(Relaxed),
            commit_groups: self.committer.stats.groups.load(Relaxed),
            deliveries: self.hub.deliveries.load(Relaxed),
            storage_reopens: self.store.reopened(),
            push: [
                ("sent", self.push.stats.sent.load(Relaxed)),
                ("failed", self.push.stats.failed.load(Relaxed)),
                ("dropped", self.push.stats.dropped.load(Relaxed)),
            ],
            push_expired: self.push.stats.expired.load(Relaxed),
            rate_limited: [
                ("send", l.send.rejected.load(Relaxed)),
                ("signup", l.signup.rejected.load(Relaxed)),
                ("login_ip", l.login_ip.rejected.load(Relaxed)),
                ("login_failures", l.logins.rejected.load(Relaxed)),
                ("avatar", l.avatar.rejected.load(Relaxed)),
                (
                    "upload",
                    l.upload.rejected.load(Relaxed) + l.uploading.rejected.load(Relaxed),
                ),
            ],
            history_windows: self.rooms.window_count() as i64,
            dedup_window_events: self.rooms.dedup_window_events() as i64,
            history_window_grown_events: self.rooms.reads.beyond.load(Relaxed) as i64,
            history_page_bytes: self.rooms.reads.page_bytes.load(Relaxed) as i64,
            history_reads: [
                ("page", self.rooms.reads.page.load(Relaxed)),
                ("window", self.rooms.reads.window.load(Relaxed)),
                ("storage", self.rooms.reads.storage.load(Relaxed)),
            ],
            history_incomplete_reads: self.rooms.reads.incomplete.load(Relaxed),
        })
    }
}
