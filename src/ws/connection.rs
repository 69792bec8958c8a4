//! One WebSocket connection's life: hello, replay, then reading client
//! frames until it closes. Outgoing frames all go through its [`Outbox`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use super::message::{Assembler, Message};
use super::reader::FrameReader;
use super::socket::Socket;
use super::writer;
use crate::actions::messages::{self, Edit, EditKind, Sent, Via};
use crate::actions::{presence, reads};
use crate::auth::Identity;
use crate::error::ApiError;
use crate::hub::Outbox;
use crate::ids::{Millis, RoomId, Seq};
use crate::protocol::{
    ClientFrame, EventView, Format, NotifyLevel, RoomHead, ServerFrame, UserView,
};
use crate::state::AppState;
use crate::views::{self, Authors};
use crate::wire::{self, CloseReason};

/// Replay reads history in pages of this many events.
const REPLAY_PAGE: usize = 256;

/// How long a closed connection keeps reading for the client's own close.
const LINGER: Duration = Duration::from_secs(1);

/// What a closed connection reads at most while it lingers.
const LINGER_BYTES: usize = 1 << 20;

/// How often a connection's frames count as a use of its session.
const SESSION_TOUCH_EVERY: Duration = Duration::from_secs(1);

/// Rate-limited sends in a row that get a connection closed (1008).
const MAX_STRIKES: u32 = 50;

/// Sets up a connection (its outbox, its writer, its place in the hub) and
/// returns the future that serves it until it closes, keeping `hold` (the
/// connection's admission) until then.
///
/// The setup is not part of that future: every idle connection keeps its
/// future whole, and an `async fn` would also keep its arguments (the
/// socket, the identity) beside the copies the connection holds.
pub fn run<R, W, H>(
    socket: Socket<R, W>,
    identity: Identity,
    format: Format,
    state: Arc<AppState>,
    hold: H,
) -> impl std::future::Future<Output = ()> + Send + 'static
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
    H: Send + 'static,
{
    let Socket {
        read: rd,
        write: wr,
        early,
    } = socket;
    let ws = &state.config.websocket;
    // No single frame may exceed the message limit; the total across
    // fragments is checked as they are joined.
    let reader = FrameReader::with_early(rd, ws.max_message_bytes, &early);
    let frames = frame_limiter(ws.max_frames_per_sec);

    let (outbox, writer) = writer::start(
        wr,
        &state,
        identity.user,
        identity.session,
        format,
        ws.coalesce,
    );
    // Known to the hub as its user's from the start, not only after hello,
    // so ending the session (logout, disable, delete) also closes a socket
    // that has not said hello yet. An end that raced the upgrade is seen here.
    state.hub.connect(&outbox, &[]);
    if !matches!(state.store.session(&identity.session), Ok(Some(_))) {
        outbox.close(CloseReason::Revoked);
    }
    // Shutdown closes the sockets the hub knows of; one registered after
    // that closes itself.
    if state.shutdown.is_cancelled() {
        outbox.close(CloseReason::ShuttingDown);
    }
    let conn = Connection {
        state,
        outbox,
        identity,
        greeted: false,
        counted_online: false,
        strikes: 0,
        frames,
    };
    conn.serve(reader, writer, hold)
}

fn frame_limiter(per_sec: u32) -> governor::DefaultDirectRateLimiter {
    let nz = |n: u32| std::num::NonZeroU32::new(n).unwrap_or(std::num::NonZeroU32::MIN);
    let quota = governor::Quota::per_second(nz(per_sec)).allow_burst(nz(per_sec.saturating_mul(4)));
    governor::RateLimiter::direct_with_clock(quota, crate::auth::limits::clock())
}

struct Connection {
    state: Arc<AppState>,
    outbox: Arc<Outbox>,
    identity: Identity,
    greeted: bool,
    /// Whether this socket counts its user as online (from its `ready`).
    counted_online: bool,
    /// Sends refused by the rate limit since the last accepted one.
    strikes: u32,
    /// Every message this connection sends, whatever its kind: a rate a
    /// second, bursts of four times that.
    frames: governor::DefaultDirectRateLimiter,
}

impl Connection {
    /// Reads client frames until the connection closes, then leaves the
    /// hub, lets the writer finish and lingers for the client's close.
    ///
    /// Not an `async fn`, for the same reason as [`run`].
    #[allow(clippy::manual_async_fn)]
    fn serve<S: AsyncRead + Unpin, H>(
        mut self,
        mut reader: FrameReader<S>,
        writer: tokio::task::JoinHandle<()>,
        hold: H,
    ) -> impl std::future::Future<Output = ()> {
        async move {
            let reason = self.read_loop(&mut reader).await;
            let (state, outbox, user) = (&self.state, &self.outbox, self.identity.user);
            outbox.close(reason);
            if self.counted_online {
                state.presence.gone(user);
            }
            state.hub.disconnect(outbox);
            let _ = tokio::time::timeout(Duration::from_secs(3), writer).await;
            let closed = outbox.close_reason();
            if closed == Some(CloseReason::TooSlow) {
                state.metrics.queue_full_disconnects.inc();
            }
            // The close frame is out. Read what the client still sends until it
            // closes too, briefly: dropping a socket with unread input resets it,
            // and a reset can destroy the close frame before the client reads it.
            // A peer cut off as too slow, or gone, got no close frame.
            if !matches!(closed, Some(CloseReason::TooSlow | CloseReason::Gone)) {
                let _ = tokio::time::timeout(LINGER, reader.discard_until_eof(LINGER_BYTES)).await;
            }
            tracing::debug!(conn = outbox.id.0, ?reason, "WebSocket closed.");
            drop(hold);
        }
    }

    async fn read_loop<S: AsyncRead + Unpin>(
        &mut self,
        reader: &mut FrameReader<S>,
    ) -> CloseReason {
        let ws = &self.state.config.websocket;
        let start = tokio::time::Instant::now();
        let expires =
            start + Duration::from_millis(self.identity.expires.0.saturating_sub(Millis::now().0));
        // The hello deadline, then (once greeted) the idle one, from the
        // last frame acted on.
        let mut deadline = start + ws.hello_timeout;
        // One timer for the connection, reset to the nearest of the
        // session's end, the hello or idle deadline and the next heartbeat
        // ping: every idle connection keeps it, so it is not three (the
        // writer keeps none).
        let timer = tokio::time::sleep_until(deadline.min(expires));
        tokio::pin!(timer);
        let mut touched = start;
        let mut next_ping = start + ws.ping_interval;
        let mut messages = Assembler::new(ws.max_message_bytes);
        loop {
            timer.as_mut().reset(deadline.min(expires).min(next_ping));
            let read = tokio::select! {
                _ = self.outbox.closing() => {
                    return self.outbox.close_reason().unwrap_or(CloseReason::ShuttingDown);
                }
                _ = &mut timer => {
                    let now = tokio::time::Instant::now();
                    if now < deadline.min(expires) {
                        // The heartbeat's turn; the next one is due a full
                        // interval after this.
                        self.outbox.ping();
                        next_ping = now + self.state.config.websocket.ping_interval;
                        continue;
                    }
                    return if now >= expires {
                        CloseReason::Expired
                    } else if !self.greeted {
                        CloseReason::Policy("no hello in time")
                    } else {
                        CloseReason::Idle
                    };
                }
                r = reader.next() => r,
            };
            let frame = match read {
                Err(e) => return e.into(),
                Ok(f) => f,
            };
            // Any frame, pongs to our heartbeat included, is a use of the
            // session: an open connection keeps it from idling out.
            if touched.elapsed() >= SESSION_TOUCH_EVERY {
                touched = tokio::time::Instant::now();
                if let Ok(false) = self.state.sessions.touch(&self.identity.session) {
                    return CloseReason::Revoked;
                }
            }
            match messages.push(frame, &self.outbox) {
                Err(reason) => return reason,
                Ok(None) => {}
                Ok(Some(msg)) => {
                    // Boxed: acting on a message (a send, a hello with its
                    // replay) takes a future several times the size of an
                    // idle read, and every idle connection would hold that
                    // much inline.
                    if let Some(reason) = Box::pin(self.on_message(msg)).await {
                        return reason;
                    }
                }
            }
            if self.greeted {
                deadline = tokio::time::Instant::now() + self.state.config.websocket.idle_timeout;
            }
        }
    }

    /// Acts on one client message; `Some` closes the connection.
    async fn on_message(&mut self, msg: Message) -> Option<CloseReason> {
        if self.frames.check().is_err() {
            return Some(CloseReason::Policy("too many messages"));
        }
        let format = if msg.binary {
            Format::Msgpack
        } else {
            Format::Json
        };
        let frame = match ClientFrame::decode(format, &msg.payload) {
            Ok(f) => f,
            Err(e) => {
                self.send_error(&e.error, e.client_id.as_deref());
                return None;
            }
        };
        if !matches!(frame, ClientFrame::Ping) {
            self.outbox.used();
        }
        match frame {
            ClientFrame::Ping => {
                self.push(&ServerFrame::Pong);
                None
            }
            ClientFrame::Focus { active } => {
                self.outbox.set_focus(active);
                None
            }
            ClientFrame::Hello { resume } => {
                if self.greeted {
                    self.send_error(&ApiError::AlreadyGreeted, None);
                    return None;
                }
                self.hello(resume.unwrap_or_default()).await
            }
            ClientFrame::Send {
                room,
                client_id,
                body,
                reply_to,
                files,
            } => {
                if !self.greeted {
                    self.send_error(&ApiError::HelloFirst, Some(&client_id));
                    return None;
                }
                let msg = messages::Send {
                    room: &room,
                    body,
                    client_id: Some(client_id.clone()),
                    reply_to,
                    files,
                };
                let via = Via::Socket(self.outbox.clone());
                let outcome = messages::send(&self.state, self.identity.user, msg, via).await;
                self.answer(&room, &client_id, outcome)
            }
            ClientFrame::Typing { room } => {
                if !self.greeted {
                    self.send_error(&ApiError::HelloFirst, None);
                } else if let Err(e) = messages::typing(&self.state, self.identity.user, &room) {
                    self.send_error(&e, None);
                }
                None
            }
            ClientFrame::Read { room, seq, force } => {
                let (user, from) = (self.identity.user, Some(self.outbox.id));
                if !self.greeted {
                    self.send_error(&ApiError::HelloFirst, None);
                } else if let Err(e) = reads::mark(&self.state, user, &room, Seq(seq), force, from)
                {
                    self.send_error(&e, None);
                }
                None
            }
            ClientFrame::Edit {
                room,
                target,
                body,
                client_id,
            } => {
                self.change(room, target, client_id, EditKind::Body(body))
                    .await
            }
            ClientFrame::Delete {
                room,
                target,
                client_id,
            } => self.change(room, target, client_id, EditKind::Delete).await,
            ClientFrame::React {
                room,
                target,
                emoji,
                on,
                client_id,
            } => {
                self.change(room, target, client_id, EditKind::React { emoji, on })
                    .await
            }
        }
    }

    /// Subscribes to the user's rooms, answers `ready`, replays what each
    /// resumed room missed, then turns on the live stream without a gap or
    /// a duplicate (see [`Outbox::release`]).
    async fn hello(&mut self, resume: HashMap<String, u64>) -> Option<CloseReason> {
        let state = self.state.clone();
        let user = self.identity.user;
        let rooms = state
            .hub
            .connect_rooms(&self.outbox, state.rooms.of_user(user), || {
                state.rooms.of_user(user)
            });
        self.greeted = true;
        // A logout that raced the upgrade must still close this socket.
        if !matches!(state.store.session(&self.identity.session), Ok(Some(_))) {
            return Some(CloseReason::Revoked);
        }
        let Ok(Some(record)) = state.store.user(user) else {
            return Some(CloseReason::Revoked);
        };
        // Heads read after subscribing: anything newer arrives live.
        let mut heads: HashMap<RoomId, Seq> = HashMap::with_capacity(rooms.len());
        let mut room_heads = Vec::with_capacity(rooms.len());
        for id in &rooms {
            if let Some(r) = state.rooms.get(*id) {
                let head = r.head();
                heads.insert(*id, head);
                let read = r.read_state(user);
                room_heads.push(RoomHead {
                    id: *id,
                    last_seq: head,
                    read_seq: read.map_or(head, |r| r.read_seq),
                    unread_count: read.map_or(0, |r| r.unread_count),
                    mention_count: read.map_or(0, |r| r.mention_count),
                    notifications: r
                        .notifications(user)
                        .unwrap_or(NotifyLevel::default_for(r.record.visibility)),
                });
            }
        }
        // What the client missed, in the rooms it resumes that moved on.
        let missed: Vec<(RoomId, Seq, Seq)> = resume
            .into_iter()
            .filter_map(|(room, after)| {
                let room = room.parse::<RoomId>().ok()?;
                let head = *heads.get(&room)?;
                (Seq(after) < head).then_some((room, Seq(after), head))
            })
            .collect();
        state.presence.greeted(user);
        self.counted_online = true;
        {
            // The snapshot and the first change this socket hears of, with
            // no change lost or sent before `ready` in between.
            let _quiet = state.presence.hold();
            let ready = ServerFrame::Ready {
                user: UserView::of(&record),
                rooms: room_heads,
                online: presence::online_around(&state, user),
            };
            if missed.is_empty() {
                // Nothing to replay: live from the moment `ready` can be read.
                self.outbox.send_and_release(&ready, &heads);
            } else {
                self.outbox.send_ready(&ready);
            }
        }
        for (room, after, head) in missed {
            if !self.replay(room, after, head).await {
                return None;
            }
        }
        self.outbox.release(&heads);
        None
    }

    /// Queues the events of `room` with `after < seq <= head`, a page at a
    /// time. Each page is read and encoded holding one of the server's
    /// replay permits (one per runtime thread) and yielding to other tasks
    /// as it goes, then queued with the permit let go: the replays of a
    /// reconnect storm take turns instead of filling every runtime thread
    /// while live deliveries wait, and a client slow to read its replay
    /// holds up nobody else's.
    async fn replay(&self, room: RoomId, after: Seq, head: Seq) -> bool {
        // A room deleted meanwhile has nothing left to replay.
        let Some(r) = self.state.rooms.get(room) else {
            return true;
        };
        let mut from = after.next();
        let mut frames = Vec::new();
        while from <= head {
            let read = {
                let _turn = self
                    .state
                    .replays
                    .acquire()
                    .await
                    .expect("the replay semaphore is never closed");
                self.replay_page(&r, from, head, &mut frames).await
            };
            let last = match read {
                Ok(Some(last)) => last,
                // The room was deleted meanwhile: nothing left to replay.
                _ if self.state.rooms.get(room).is_none() => return true,
                // `range` answers every seq up to the head or an error, so
                // an empty page is a fault too: never end the replay short
                // (the client would go live past what it missed).
                failed => {
                    let error = failed.err().map(|e| e.to_string());
                    tracing::error!(?error, %room, from = from.0, head = head.0, "Replay failed to read history.");
                    self.outbox
                        .close(CloseReason::Policy("history unavailable; retry"));
                    return false;
                }
            };
            for bytes in frames.drain(..) {
                if !self.outbox.push_replay(bytes).await {
                    return false;
                }
            }
            from = last.next();
        }
        true
    }

    /// Encodes the events of one replay page from `from` into `frames`,
    /// returning the last seq read (`None`: nothing left).
    async fn replay_page(
        &self,
        r: &crate::rooms::Room,
        from: Seq,
        head: Seq,
        frames: &mut Vec<bytes::Bytes>,
    ) -> crate::storage::Result<Option<Seq>> {
        let room = r.record.id;
        let page = r
            .recent()
            .range(&self.state.store, room, from, head, REPLAY_PAGE)?;
        let Some(&(last, _)) = page.last() else {
            return Ok(None);
        };
        let log = self.state.store.log()?;
        let directory = &self.state.directory;
        let authors = Authors::of(directory, page.iter().map(|(_, e)| e.kind.actor()));
        for (seq, event) in &page {
            // The log as it happened, as the live stream delivered it.
            let frame = match views::logged_event(&log, directory, &authors, room, *seq, event) {
                Some(EventView::Message(message)) => ServerFrame::Message { message },
                Some(event) => ServerFrame::Event { event },
                None => continue,
            };
            frames.push(wire::encode(&frame, self.outbox.format));
            tokio::task::coop::consume_budget().await;
        }
        Ok(Some(last))
    }

    /// Answers the outcome of a send, edit, deletion or reaction: an ack
    /// now if it was already stored or changed nothing (otherwise the
    /// committer acks once durable), or an error. A run of rate-limited
    /// frames closes the connection.
    fn answer(
        &mut self,
        room: &str,
        client_id: &str,
        outcome: Result<Sent, ApiError>,
    ) -> Option<CloseReason> {
        let room_id = room.parse().unwrap_or(crate::ids::RoomId::NIL);
        match outcome {
            Ok(Sent::Queued) => self.strikes = 0,
            Ok(Sent::Stored(c)) => self.push(&ServerFrame::Ack {
                client_id,
                room: c.room,
                seq: Some(c.seq),
                id: Some(c.event.id),
            }),
            Ok(Sent::Unchanged) => self.push(&ServerFrame::Ack {
                client_id,
                room: room_id,
                seq: None,
                id: None,
            }),
            Err(e @ ApiError::RateLimited { .. }) => {
                self.strikes += 1;
                if self.strikes >= MAX_STRIKES {
                    return Some(CloseReason::Policy("sending too fast"));
                }
                self.send_error(&e, Some(client_id));
            }
            Err(e) => self.send_error(&e, Some(client_id)),
        }
        None
    }

    /// An edit, deletion or reaction.
    async fn change(
        &mut self,
        room: String,
        target: u64,
        client_id: String,
        what: EditKind,
    ) -> Option<CloseReason> {
        if !self.greeted {
            self.send_error(&ApiError::HelloFirst, Some(&client_id));
            return None;
        }
        let edit = Edit {
            room: &room,
            target,
            client_id: Some(client_id.clone()),
            what,
        };
        let via = Via::Socket(self.outbox.clone());
        let outcome = messages::change(&self.state, self.identity.user, edit, via).await;
        self.answer(&room, &client_id, outcome)
    }

    fn push(&self, value: &ServerFrame<'_>) {
        self.outbox.send(value);
    }

    /// The one place an [`ApiError`] becomes an `error` frame.
    fn send_error(&self, e: &ApiError, client_id: Option<&str>) {
        e.log_if_ours();
        self.push(&ServerFrame::Error {
            code: e.code(),
            message: &e.to_string(),
            client_id,
        });
    }
}
