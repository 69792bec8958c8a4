//! The HTTP server: accepting connections within limits, serving each with
//! hyper, and routing requests to the API, the WebSocket gateway or the
//! embedded web UI.

mod admin;
mod admission;
mod api;
mod assets;
mod bots;
mod files;
mod ops;
mod push;
mod request;
mod router;
mod upgrade;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use admission::{Admission, PerIp};
use request::Body;

use crate::state::AppState;
use crate::tls::Acceptor;

pub use router::Surface;

/// Accepts connections until shutdown, then waits for open requests to end.
/// With `tls`, every connection is HTTPS: HTTP/2 when the client's ALPN
/// picks it, HTTP/1.1 (and WebSockets) otherwise. `surface` says what the
/// listener serves: everything, or only the operator endpoints.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Option<Arc<Acceptor>>,
    surface: Surface,
) {
    let permits = Arc::new(Semaphore::new(state.config.http.max_connections));
    let router = Arc::new(router::Router::new(surface));
    let per_ip = PerIp::new(state.config.http.max_connections_per_ip);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = state.shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, or the peer reset before accept:
                // back off briefly instead of spinning.
                tracing::warn!(error = %e, "Accept failed.");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            state.metrics.refused_connections.inc();
            // Counted, and logged only at debug: a flood of refusals must
            // not become a flood of log lines.
            tracing::debug!(%peer, "Connection refused: at max_connections.");
            drop(stream);
            continue;
        };
        let Some(per_ip) = per_ip.admit(peer.ip()) else {
            state.metrics.refused_connections.inc();
            tracing::debug!(%peer, "Connection refused: at max_connections_per_ip.");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let send_buffer = state.config.websocket.send_buffer_bytes;
        if send_buffer > 0 {
            let _ = socket2::SockRef::from(&stream).set_send_buffer_size(send_buffer);
        }
        let state = state.clone();
        let router = router.clone();
        let tls = tls.clone();
        let admission = Arc::new(Admission {
            _permit: permit,
            _ip: per_ip,
        });
        state.tracker.clone().spawn(async move {
            state.metrics.open_connections.inc();
            match tls {
                None => {
                    serve_connection(TokioIo::new(stream), false, peer, &state, router, admission)
                        .await
                }
                Some(acceptor) => match acceptor.accept(stream).await {
                    Some((stream, h2)) => {
                        serve_connection(TokioIo::new(stream), h2, peer, &state, router, admission)
                            .await
                    }
                    None => {
                        state.metrics.tls_handshake_failures.inc();
                    }
                },
            }
            state.metrics.open_connections.dec();
        });
    }
}

async fn serve_connection<I>(
    io: I,
    h2: bool,
    peer: SocketAddr,
    state: &Arc<AppState>,
    router: Arc<router::Router>,
    admission: Arc<Admission>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc_state = state.clone();
    let service = service_fn(move |mut req: Request<Incoming>| {
        let state = svc_state.clone();
        let router = router.clone();
        // A WebSocket takes this along, so the connection still counts
        // against the caps after hyper hands the socket over.
        req.extensions_mut().insert(admission.clone());
        async move { Ok::<_, Infallible>(handle(req, peer, state, router).await) }
    });
    // Both kinds of connection are driven the same way: to the end, or
    // until shutdown asks them to finish what is in flight.
    macro_rules! drive {
        ($conn:expr) => {{
            let mut conn = std::pin::pin!($conn);
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(%peer, error = %e, "HTTP connection ended with an error.");
                    }
                }
                _ = state.shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), conn).await;
                }
            }
        }};
    }
    if h2 {
        drive!(
            hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .max_concurrent_streams(100)
                .keep_alive_interval(state.config.websocket.ping_interval)
                .serve_connection(io, service)
        )
    } else {
        drive!(hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(state.config.http.header_read_timeout)
            .keep_alive(true)
            .max_buf_size(64 * 1024)
            .serve_connection(io, service)
            .with_upgrades())
    }
}

async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    state: Arc<AppState>,
    router: Arc<router::Router>,
) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let (route_name, response) = router.dispatch(req, peer, &state).await;
    let status = response.status().as_u16();
    let took = started.elapsed();
    state.metrics.http_request(route_name, status, took);
    // The path is not logged: it could carry a query with anything in it.
    tracing::info!(
        method = %method,
        route = route_name,
        status,
        micros = took.as_micros() as u64,
        "HTTP request."
    );
    response
}
