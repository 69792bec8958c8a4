//! Prometheus metrics: what an operator graphs and alerts on.
//!
//! Two kinds. Events counted where they happen (HTTP latency by route,
//! queue-full disconnects, commit batch sizes and flush latency) live in a
//! registry here. Counts the server already keeps for itself (connections,
//! messages stored, deliveries, rate-limit refusals, users, rooms) are read
//! at scrape time, so the hot paths do no extra work for them. Every label
//! has a fixed, small set of values: route names come from the route table,
//! never from the request path.

use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;

use crate::state::AppState;

/// The content type of the OpenMetrics text format `render` produces.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// HTTP request labels: the route's name from the route table and the
/// status class, so a scanner cannot grow the label set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: &'static str,
    pub status: &'static str,
}

type HistogramFamily = Family<HttpLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    /// Latency of every HTTP request, by route and status class.
    http_requests: HistogramFamily,
    /// HTTP connections being served now. An upgraded WebSocket leaves
    /// this count for `websocket_connections`.
    pub open_connections: Gauge,
    /// Connections turned away at `max_connections` or `max_connections_per_ip`.
    pub refused_connections: Counter,
    /// TLS handshakes that failed or timed out.
    pub tls_handshake_failures: Counter,
    /// WebSockets cut off because their outbound queue filled (close 1013).
    pub queue_full_disconnects: Counter,
}

/// Group-commit measurements, observed by the committer once per group.
#[derive(Debug, Clone)]
pub struct CommitHistograms {
    /// Messages written per group commit (one flush each).
    batch_size: Histogram,
    /// Time to write and flush one group.
    flush_seconds: Histogram,
}

impl Default for CommitHistograms {
    fn default() -> Self {
        CommitHistograms {
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            flush_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
        }
    }
}

impl CommitHistograms {
    pub fn observe(&self, messages: usize, took: std::time::Duration) {
        if messages > 0 {
            self.batch_size.observe(messages as f64);
            self.flush_seconds.observe(took.as_secs_f64());
        }
    }
}

impl Metrics {
    pub fn new(commit: &CommitHistograms) -> Metrics {
        let http_requests: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0001, 2.0, 18)));
        let open_connections = Gauge::default();
        let refused_connections = Counter::default();
        let tls_handshake_failures = Counter::default();
        let queue_full_disconnects = Counter::default();
        let mut r = Registry::with_prefix("hearth");
        r.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request, by route and status class",
            Unit::Seconds,
            http_requests.clone(),
        );
        r.register(
            "http_connections",
            "HTTP connections being served (WebSockets are counted apart once upgraded)",
            open_connections.clone(),
        );
        r.register(
            "refused_connections",
            "Connections refused at max_connections or max_connections_per_ip",
            refused_connections.clone(),
        );
        r.register(
            "tls_handshake_failures",
            "TLS handshakes that failed or timed out",
            tls_handshake_failures.clone(),
        );
        r.register(
            "queue_full_disconnects",
            "WebSockets closed because their outbound queue filled (1013)",
            queue_full_disconnects.clone(),
        );
        r.register(
            "commit_batch_size",
            "Messages written per group commit (one flush each)",
            commit.batch_size.clone(),
        );
        r.register_with_unit(
            "commit_flush_duration",
            "Time to write and flush one group commit",
            Unit::Seconds,
            commit.flush_seconds.clone(),
        );
        Metrics {
            registry: r,
            http_requests,
            open_connections,
            refused_connections,
            tls_handshake_failures,
            queue_full_disconnects,
        }
    }

    /// Records one answered HTTP request.
    pub fn http_request(&self, route: &'static str, status: u16, took: std::time::Duration) {
        let status = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.http_requests
            .get_or_create(&HttpLabels { route, status })
            .observe(took.as_secs_f64());
    }

    /// Every metric in the OpenMetrics text format.
    pub fn render(&self, state: &AppState) -> String {
        let mut live = Registry::with_prefix("hearth");
        live.register_collector(Box::new(Snapshot::of(state)));
        let mut out = String::with_capacity(8192);
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry)
            .and_then(|()| encode_registry(&mut out, &live))
            .and_then(|()| encode_eof(&mut out));
        out
    }
}

/// The server's own counts, read once per scrape.
#[derive(Debug)]
struct Snapshot {
    websockets: i64,
    users: i64,
    rooms: i64,
    messages: u64,
    commit_groups: u64,
    deliveries: u64,
    storage_reopens: u64,
    rate_limited: [(&'static str, u64); 4],
}

impl Snapshot {
    fn of(state: &AppState) -> Snapshot {
        let l = &state.limits;
        Snapshot {
            websockets: state.hub.connection_count() as i64,
            users: state.directory.count() as i64,
            rooms: state.rooms.count() as i64,
            messages: state.committer.stats.messages.load(Relaxed),
            commit_groups: state.committer.stats.groups.load(Relaxed),
            deliveries: state.hub.deliveries.load(Relaxed),
            storage_reopens: state.store.reopened(),
            rate_limited: [
                ("send", l.send.rejected.load(Relaxed)),
                ("signup", l.signup.rejected.load(Relaxed)),
                ("login_ip", l.login_ip.rejected.load(Relaxed)),
                ("login_failures", l.logins.rejected.load(Relaxed)),
            ],
        }
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauges = [
            (
                "websocket_connections",
                "Open WebSocket connections",
                self.websockets,
            ),
            ("users", "Accounts, deleted ones included", self.users),
            ("rooms", "Rooms", self.rooms),
        ];
        for (name, help, value) in gauges {
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        let counters = [
            (
                "messages_stored",
                "Messages durably stored since start",
                self.messages,
            ),
            (
                "commit_groups",
                "Group commits (flushes) since start",
                self.commit_groups,
            ),
            (
                "deliveries",
                "Messages queued to WebSocket connections since start",
                self.deliveries,
            ),
            (
                "storage_reopens",
                "Times the database was reopened after a write failure since start",
                self.storage_reopens,
            ),
        ];
        for (name, help, value) in counters {
            let c = ConstCounter::new(value);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        let mut family = encoder.encode_descriptor(
            "rate_limited",
            "Requests refused by a rate limit, by limit",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (limit, value) in self.rate_limited {
            let labels = [("limit", limit)];
            ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Serves `/metrics` (and `/healthz`) on their own listener, for
/// `metrics_listen`, until shutdown.
pub async fn serve(listener: TcpListener, state: Arc<AppState>) {
    loop {
        let (stream, _) = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "Metrics accept failed.");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(answer(&req, &state)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(req: &Request<Incoming>, state: &AppState) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match req.uri().path() {
        "/metrics" => (StatusCode::OK, CONTENT_TYPE, state.metrics.render(state)),
        "/healthz" => (
            StatusCode::OK,
            "application/json",
            r#"{"status":"ok"}"#.to_string(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "Only /metrics and /healthz are served here.\n".to_string(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
