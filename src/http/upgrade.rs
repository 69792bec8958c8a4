//! `GET /api/v1/ws`: the WebSocket handshake. Authenticated (cookie or
//! Bearer, Origin-checked for cookies) before the upgrade; the socket then
//! goes to the gateway ([`crate::ws`]).

use std::sync::Arc;

use bytes::Bytes;

use hyper::header::{self, HeaderValue};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::admission::Admission;
use super::request::{full, Body, Ctx};
use crate::error::ApiError;
use crate::protocol::{Format, MSGPACK_SUBPROTOCOL};
use crate::state::AppState;

/// `GET /api/v1/ws`: hands the upgraded socket to its connection task.
pub async fn chat(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let identity = ctx.identity()?;
    handshake(ctx, move |io, format, state, admission| {
        crate::ws::run(io, identity, format, state, admission)
    })
    .await
}

/// `GET /api/v1/test/echo` in debug builds with `HEARTH_TEST_ECHO=1`: an
/// unauthenticated echo for WebSocket conformance runs (see
/// [`crate::ws::echo`]).
#[cfg(debug_assertions)]
pub async fn echo(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    if !crate::ws::echo::enabled() {
        return Err(ApiError::NotFound);
    }
    handshake(ctx, |io, _, state, admission| {
        crate::ws::echo::run(io, state, admission)
    })
    .await
}

type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

/// Answers the upgrade and runs `serve` on the socket once hyper hands it
/// over; `serve` holds the connection's admission for the socket's life.
async fn handshake<F, Fut>(ctx: Ctx, serve: F) -> Result<Response<Body>, ApiError>
where
    F: FnOnce(Upgraded, Format, Arc<AppState>, Option<Arc<Admission>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
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
        // The socket gets a task of its own, holding only its connection's
        // future: every idle connection keeps its task whole, and this one
        // also holds the handshake's state (the upgrade, the peer's address,
        // what `serve` was given). The future is spawned as it is, not
        // awaited inside another, which would keep it twice.
        let tracker = state.tracker.clone();
        tracker.spawn(serve(TokioIo::new(io), format, state, admission));
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
