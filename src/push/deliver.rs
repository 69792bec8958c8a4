//! The push task: who hears of a message, each user's queue, and the
//! requests to push services with their retries.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::{crypto, Op, Posted};
use crate::directory::author_view;
use crate::ids::{Millis, RoomId, Seq, TokenHash, UserId};
use crate::locks::lock;
use crate::outbound;
use crate::protocol::NotifyLevel;
use crate::state::AppState;
use crate::storage::{PushSubRecord, Visibility};

/// Fewest time between two `clear` pushes for one room to one user; reads
/// in between are sent together at its end.
pub const CLEAR_EVERY: Duration = Duration::from_secs(3);

/// Tries of one push before it is given up; the waits between double from 1 s.
const TRIES: u32 = 4;

/// Requests to push services in flight at once, over every user.
const CONCURRENCY: usize = 64;

/// Users' queues kept before the idle ones are let go.
const IDLE_QUEUES_KEPT: usize = 4096;

/// How long a push service keeps a notification for a browser that is off.
const TTL_MESSAGE_SECS: u32 = 24 * 3600;
const TTL_CLEAR_SECS: u32 = 3600;

/// One push to all of a user's subscriptions.
struct Notice {
    room: RoomId,
    clear: bool,
    /// The plaintext JSON the service worker gets.
    payload: Arc<Vec<u8>>,
    urgency: &'static str,
    ttl: u32,
}

/// A user's notifications waiting to go, drained by one task at a time.
#[derive(Default)]
struct UserQueue {
    state: Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<Notice>,
    /// Whether a task is draining the queue.
    running: bool,
}

struct Dispatcher {
    state: Arc<AppState>,
    queues: HashMap<UserId, Arc<UserQueue>>,
    /// The oldest and newest message pushed per user and room and not yet
    /// cleared: a read past the oldest clears.
    pushed: HashMap<(UserId, RoomId), (Seq, Seq)>,
    /// When the last `clear` went, per user and room.
    cleared: HashMap<(UserId, RoomId), Instant>,
    /// Clears held back by [`CLEAR_EVERY`]: the seq read to, and when due.
    pending: HashMap<(UserId, RoomId), (Seq, Instant)>,
    limit: Arc<Semaphore>,
}

/// Runs until the queue's senders are gone: decides and queues every
/// notification the committer and the read cursors ask for.
pub async fn run(state: Arc<AppState>) {
    let Some(mut rx) = state.push.take_queue() else {
        return;
    };
    let mut d = Dispatcher {
        state,
        queues: HashMap::new(),
        pushed: HashMap::new(),
        cleared: HashMap::new(),
        pending: HashMap::new(),
        limit: Arc::new(Semaphore::new(CONCURRENCY)),
    };
    loop {
        let due = d.pending.values().map(|(_, at)| *at).min();
        tokio::select! {
            op = rx.recv() => match op {
                Some(op) => d.on(op),
                None => return,
            },
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                d.send_due_clears();
            }
        }
    }
}

impl Dispatcher {
    fn on(&mut self, op: Op) {
        match op {
            Op::Message(posted) => self.on_message(&posted),
            Op::Read { user, room, seq } => self.on_read(user, room, seq),
        }
    }

    /// Queues a notification for each member who wants one and is away.
    fn on_message(&mut self, p: &Posted) {
        let state = self.state.clone();
        let Some(room) = state.rooms.get(p.room) else {
            return;
        };
        let direct = room.record.visibility == Visibility::Direct;
        let config = &state.config.push;
        let sender = state.directory.get(p.author);
        let sender_name = author_view(p.author, sender.as_deref())
            .username
            .to_string();
        let display_name = sender.as_ref().and_then(|s| s.display_name.clone());
        // Whichever is fewer: the room's members, or the users who subscribed.
        let subscribers = &state.push.subscribers;
        let candidates: Vec<UserId> = if subscribers.len() < room.member_count() {
            let mut c = subscribers.snapshot();
            c.retain(|u| room.is_member(*u));
            c
        } else {
            let mut c = room.members();
            c.retain(|u| subscribers.contains(*u));
            c
        };
        for member in candidates {
            if member == p.author {
                continue;
            }
            let Some(level) = room.notifications_at(member, p.seq) else {
                continue;
            };
            let Some(reason) = reason(direct, level, p, member) else {
                continue;
            };
            if state.hub.is_active(member, config.away_after) {
                continue;
            }
            match state.store.push_subs_of(member) {
                Ok(subs) if subs.is_empty() => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot read push subscriptions.");
                    continue;
                }
            }
            let payload = json!({
                "type": "message",
                "room": {"id": room.record.id, "name": room.record.name},
                "seq": p.seq,
                "sender": {"id": p.author, "username": sender_name, "display_name": display_name},
                "excerpt": config.excerpt.then_some(&p.excerpt),
                "reason": reason,
            });
            self.pushed
                .entry((member, p.room))
                .and_modify(|(_, newest)| *newest = p.seq)
                .or_insert((p.seq, p.seq));
            self.enqueue(
                member,
                Notice {
                    room: p.room,
                    clear: false,
                    payload: Arc::new(payload.to_string().into_bytes()),
                    urgency: if reason == "all" { "normal" } else { "high" },
                    ttl: TTL_MESSAGE_SECS,
                },
            );
        }
    }

    /// A read past a pushed message clears it on the user's browsers, at
    /// most once per [`CLEAR_EVERY`] per room.
    fn on_read(&mut self, user: UserId, room: RoomId, seq: Seq) {
        let key = (user, room);
        let passed = match self.pushed.get(&key) {
            Some(&(oldest, newest)) if oldest <= seq => {
                // Messages pushed after the read wait for a later one.
                if newest > seq {
                    self.pushed.insert(key, (newest, newest));
                } else {
                    self.pushed.remove(&key);
                }
                true
            }
            _ => false,
        };
        if let Some((pending, _)) = self.pending.get_mut(&key) {
            *pending = (*pending).max(seq);
            return;
        }
        if !passed {
            return;
        }
        let now = Instant::now();
        match self.cleared.get(&key) {
            Some(last) if now.duration_since(*last) < CLEAR_EVERY => {
                self.pending.insert(key, (seq, *last + CLEAR_EVERY));
            }
            _ => self.clear(user, room, seq, now),
        }
    }

    fn send_due_clears(&mut self) {
        let now = Instant::now();
        let due: Vec<_> = self
            .pending
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(k, (seq, _))| (*k, *seq))
            .collect();
        for ((user, room), seq) in due {
            self.pending.remove(&(user, room));
            self.clear(user, room, seq, now);
        }
        self.cleared
            .retain(|_, at| now.duration_since(*at) < CLEAR_EVERY);
    }

    fn clear(&mut self, user: UserId, room: RoomId, seq: Seq, now: Instant) {
        self.cleared.insert((user, room), now);
        let payload = json!({"type": "clear", "room": room, "seq": seq});
        self.enqueue(
            user,
            Notice {
                room,
                clear: true,
                payload: Arc::new(payload.to_string().into_bytes()),
                urgency: "normal",
                ttl: TTL_CLEAR_SECS,
            },
        );
    }

    /// Adds to the user's queue (a full one first keeps one notification
    /// per room) and starts its drain if none runs.
    fn enqueue(&mut self, user: UserId, notice: Notice) {
        if self.queues.len() >= IDLE_QUEUES_KEPT {
            self.queues.retain(|_, q| {
                let q = lock(&q.state);
                q.running || !q.items.is_empty()
            });
        }
        let queue = self.queues.entry(user).or_default().clone();
        let cap = self.state.config.push.queue;
        let start = {
            let mut q = lock(&queue.state);
            if q.items.len() >= cap {
                let before = q.items.len();
                collapse(&mut q.items);
                if q.items.len() >= cap {
                    q.items.pop_front();
                }
                let dropped = before - q.items.len();
                self.state
                    .push
                    .stats
                    .dropped
                    .fetch_add(dropped as u64, Relaxed);
            }
            q.items.push_back(notice);
            !std::mem::replace(&mut q.running, true)
        };
        if start {
            tokio::spawn(drain(self.state.clone(), user, queue, self.limit.clone()));
        }
    }
}

/// Why `member` hears of a message, or `None` if they do not.
fn reason(direct: bool, level: NotifyLevel, p: &Posted, member: UserId) -> Option<&'static str> {
    let mentioned = p.mentions_room || p.mentions.contains(&member);
    match level {
        NotifyLevel::None => None,
        NotifyLevel::Mentions if !mentioned => None,
        _ if direct => Some("dm"),
        _ if mentioned => Some("mention"),
        _ => Some("all"),
    }
}

/// Keeps the newest message notification and the newest clear of each
/// room, in their order.
fn collapse(items: &mut VecDeque<Notice>) {
    let mut seen = HashSet::new();
    let mut kept: Vec<Notice> = items
        .drain(..)
        .rev()
        .filter(|n| seen.insert((n.room, n.clear)))
        .collect();
    kept.reverse();
    items.extend(kept);
}

/// Sends the user's notifications in order until the queue is empty.
async fn drain(state: Arc<AppState>, user: UserId, queue: Arc<UserQueue>, limit: Arc<Semaphore>) {
    loop {
        let notice = {
            let mut q = lock(&queue.state);
            match q.items.pop_front() {
                Some(n) => n,
                None => {
                    q.running = false;
                    return;
                }
            }
        };
        let subs = match state.store.push_subs_of(user) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot read push subscriptions.");
                state.push.stats.failed.fetch_add(1, Relaxed);
                continue;
            }
        };
        // Every subscription at once: one slow push service holds up no other.
        let mut sends = tokio::task::JoinSet::new();
        for sub in subs {
            sends.spawn(send(
                state.clone(),
                user,
                sub,
                notice.payload.clone(),
                notice.urgency,
                notice.ttl,
                limit.clone(),
            ));
        }
        while sends.join_next().await.is_some() {}
    }
}

/// Pushes one payload to one subscription, retrying 5xx answers and
/// failures to connect or answer in time; a subscription the push service
/// says is gone (404, 410), or whose session ended, is removed.
async fn send(
    state: Arc<AppState>,
    user: UserId,
    sub: PushSubRecord,
    payload: Arc<Vec<u8>>,
    urgency: &'static str,
    ttl: u32,
    limit: Arc<Semaphore>,
) {
    let stats = &state.push.stats;
    // An ended session took its subscriptions with it; one that expired
    // unused ends here, and takes them too.
    if state
        .sessions
        .ended(&TokenHash(sub.session))
        .unwrap_or(true)
    {
        let _ = state.store.remove_push_sub(user, &sub.endpoint);
        return;
    }
    let Ok(uri) = sub.endpoint.parse::<hyper::Uri>() else {
        stats.failed.fetch_add(1, Relaxed);
        return;
    };
    let config = &state.config.push;
    for attempt in 0..TRIES {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1 << (attempt - 1))).await;
        }
        let Ok(_permit) = limit.acquire().await else {
            return;
        };
        let sealed = crypto::encrypt(&payload, &sub.p256dh, &sub.auth).and_then(|body| {
            let now = Millis::now().0 / 1000;
            let auth = state
                .push
                .vapid()
                .authorization(&uri, &config.contact, now)?;
            Ok((body, auth))
        });
        let (body, authorization) = match sealed {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot encrypt a push notification.");
                stats.failed.fetch_add(1, Relaxed);
                return;
            }
        };
        let headers = [
            ("authorization", authorization),
            ("content-encoding", "aes128gcm".to_string()),
            ("ttl", ttl.to_string()),
            ("urgency", urgency.to_string()),
        ];
        let answer = outbound::post_as(
            &sub.endpoint,
            "application/octet-stream",
            &headers,
            body,
            config.timeout,
        )
        .await;
        match answer {
            Ok(a) if (200..300).contains(&a.status) => {
                stats.sent.fetch_add(1, Relaxed);
                return;
            }
            Ok(a) if a.status == 404 || a.status == 410 => {
                let _ = state.store.remove_push_sub(user, &sub.endpoint);
                stats.expired.fetch_add(1, Relaxed);
                return;
            }
            Ok(a) if a.status >= 500 || a.status == 429 => {
                tracing::debug!(
                    status = a.status,
                    attempt,
                    "A push service failed; will retry."
                );
            }
            Ok(a) => {
                tracing::warn!(
                    status = a.status,
                    host = uri.host().unwrap_or_default(),
                    "A push service refused a notification."
                );
                stats.failed.fetch_add(1, Relaxed);
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, attempt, "A push failed; will retry.");
            }
        }
    }
    tracing::info!(
        host = uri.host().unwrap_or_default(),
        "A push notification was given up after {TRIES} tries."
    );
    stats.failed.fetch_add(1, Relaxed);
}
