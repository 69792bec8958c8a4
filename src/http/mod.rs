//! The HTTP server: accepting connections within limits, serving each with
//! hyper, and routing requests to the API, the WebSocket gateway or the
//! embedded web UI.

mod api;
mod assets;
mod request;
mod router;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use request::{Body, Ctx};

use crate::state::AppState;

/// Accepts connections until shutdown, then waits for open requests to end.
pub async fn serve(listener: TcpListener, state: Arc<AppState>) {
    let permits = Arc::new(Semaphore::new(state.config.http.max_connections));
    let router = Arc::new(router::Router::new());
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
            tracing::warn!(%peer, "Connection refused: at max_connections.");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let router = router.clone();
        state.tracker.clone().spawn(async move {
            serve_connection(stream, peer, state, router).await;
            drop(permit);
        });
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    state: Arc<AppState>,
    router: Arc<router::Router>,
) {
    let io = TokioIo::new(stream);
    let svc_state = state.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let state = svc_state.clone();
        let router = router.clone();
        async move { Ok::<_, Infallible>(handle(req, peer, state, router).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(state.config.http.header_read_timeout)
        .keep_alive(true)
        .max_buf_size(64 * 1024)
        .serve_connection(io, service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
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
    tracing::info!(
        method = %method,
        route = route_name,
        status,
        micros = started.elapsed().as_micros() as u64,
        "HTTP request."
    );
    response
}
