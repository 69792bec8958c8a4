//! What operators and orchestrators ask: `/healthz`, `/readyz` and
//! `/metrics`, answered here for the public listener and for
//! `metrics_listen` alike.

use std::sync::Arc;

use bytes::Bytes;

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::json;

use super::request::{full, json_response, Body};
use crate::state::AppState;

/// `GET /healthz`: the process answers.
pub fn healthz() -> Response<Body> {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// `GET /readyz`: ready to take traffic (not shutting down, storage
/// taking writes).
pub fn readyz(state: &Arc<AppState>) -> Response<Body> {
    if state.shutdown.is_cancelled() {
        let mut r = json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "shutting_down"}),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    if state
        .committer
        .stats
        .failing
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        // Messages cannot be stored; restarting the process clears it once
        // the disk is writable again.
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "storage_failing"}),
        );
    }
    json_response(StatusCode::OK, &json!({"status": "ready"}))
}

/// `GET /metrics` in the Prometheus (OpenMetrics) text format.
pub fn metrics(state: &Arc<AppState>) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::from(state.metrics_text())));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    resp
}
