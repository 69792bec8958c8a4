//! `GET /api/v1/ws`: the WebSocket handshake. Authenticated (cookie or
//! Bearer, Origin-checked for cookies) before the upgrade; the socket then
//! goes to the gateway ([`crate::ws`]).

use std::sync::Arc;

use bytes::Bytes;

use hyper::header::{self, HeaderValue};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::admission::Admission;
use super::request::{full, Body, Ctx};
use crate::auth::Identity;
use crate::error::ApiError;
use crate::protocol::{Format, MSGPACK_SUBPROTOCOL};
use crate::state::AppState;
use crate::ws::Socket;

/// `GET /api/v1/ws`: hands the upgraded socket to its connection task.
pub async fn chat(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let identity = ctx.identity()?;
    handshake(ctx, Endpoint::Chat(identity)).await
}

/// `GET /api/v1/test/echo` in debug builds with `HEARTH_TEST_ECHO=1`: an
/// unauthenticated echo for WebSocket conformance runs (see
/// [`crate::ws::echo`]).
#[cfg(debug_assertions)]
pub async fn echo(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    if !crate::ws::echo::enabled() {
        return Err(ApiError::NotFound);
    }
    handshake(ctx, Endpoint::Echo).await
}

/// What runs on an upgraded socket.
enum Endpoint {
    /// The chat gateway, for an authenticated user.
    Chat(Identity),
    /// The conformance echo (debug builds only).
    #[cfg(debug_assertions)]
    Echo,
}

impl Endpoint {
    /// Spawns the connection on `socket`, whichever halves it comes as; the
    /// connection holds its admission for the socket's life.
    fn spawn<R, W>(
        self,
        socket: Socket<R, W>,
        format: Format,
        state: Arc<AppState>,
        admission: Option<Arc<Admission>>,
    ) where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let tracker = state.tracker.clone();
        match self {
            Endpoint::Chat(identity) => {
                tracker.spawn(crate::ws::run(socket, identity, format, state, admission));
            }
            #[cfg(debug_assertions)]
            Endpoint::Echo => {
                tracker.spawn(crate::ws::echo::run(socket, state, admission));
            }
        }
    }
}

/// Answers the upgrade and runs `endpoint` on the socket once hyper hands
/// it over.
async fn handshake(ctx: Ctx, endpoint: Endpoint) -> Result<Response<Body>, ApiError> {
    let mut req = Request::from_parts(ctx.parts, ());
    if !fastwebsockets::upgrade::is_upgrade_request(&req) {
        return Err(ApiError::InvalidRequest(
            "This endpoint takes a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)."
                .into(),
        ));
    }
    let format = if offered_protocols(&req).any(|p| p == MSGPACK_SUBPROTOCOL) {
        Format::Msgpack
    } else {
        Format::Json
    };
    let response = accept(&req)?;
    // The socket comes from hyper itself, not from fastwebsockets' upgrade
    // future: that one wraps it in a `WebSocket` whose 8 KiB read buffer we
    // never use, allocated and freed once per connection.
    let upgraded = hyper::upgrade::on(&mut req);
    let state = ctx.state.clone();
    let peer = ctx.peer;
    let admission = req.extensions_mut().remove::<Arc<Admission>>();
    state.tracker.clone().spawn(async move {
        let io = match upgraded.await {
            Ok(io) => io,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "WebSocket upgrade failed.");
                return;
            }
        };
        // The socket gets a task of its own (`Endpoint::spawn`), holding
        // only its connection's future: every idle connection keeps its task
        // whole, and this one also holds the handshake's state (the upgrade,
        // the peer's address). The future is spawned as it is, not awaited
        // inside another, which would keep it twice.
        //
        // A plain TCP socket is split into halves that own it (no lock
        // between reader and writer, no dynamic dispatch per write); any
        // other (TLS) goes through the upgrade's own type.
        match io.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                let (read, write) = parts.io.into_inner().into_split();
                let early = parts.read_buf;
                endpoint.spawn(Socket { read, write, early }, format, state, admission);
            }
            Err(io) => {
                let (read, write) = tokio::io::split(TokioIo::new(io));
                let early = Bytes::new();
                endpoint.spawn(Socket { read, write, early }, format, state, admission);
            }
        }
    });
    let (mut parts, _) = response.into_parts();
    if format == Format::Msgpack {
        parts.headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(MSGPACK_SUBPROTOCOL),
        );
    }
    Ok(Response::from_parts(parts, full(Bytes::new())))
}

/// The `101 Switching Protocols` answer, from fastwebsockets, which checks
/// the key and version. It is shown only those two headers, so the
/// request's own upgrade (its `OnUpgrade`) stays with the request.
fn accept(req: &Request<()>) -> Result<Response<http_body_util::Empty<Bytes>>, ApiError> {
    let mut handshake = Request::new(());
    for name in [header::SEC_WEBSOCKET_KEY, header::SEC_WEBSOCKET_VERSION] {
        if let Some(value) = req.headers().get(&name) {
            handshake.headers_mut().insert(name, value.clone());
        }
    }
    fastwebsockets::upgrade::upgrade(&mut handshake)
        .map(|(response, _)| response)
        .map_err(|e| ApiError::InvalidRequest(format!("The WebSocket handshake is invalid: {e}.")))
}

fn offered_protocols(req: &Request<()>) -> impl Iterator<Item = &str> {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}
