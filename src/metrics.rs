//! Prometheus metrics: what an operator graphs and alerts on.
//!
//! Two kinds. Events counted where they happen (HTTP latency by route,
//! queue-full disconnects, commit batch sizes and flush latency) live in a
//! registry here. Counts the server already keeps for itself (connections,
//! messages stored, deliveries, rate-limit refusals, users, rooms) are read
//! at scrape time, so the hot paths do no extra work for them. Every label
//! has a fixed, small set of values: route names come from the route table,
//! never from the request path.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::commit::CommitHistograms;

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
    /// The committer's send-to-ack latency, also read for the admin panel.
    ack_seconds: Histogram,
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
        r.register_with_unit(
            ACK_NAME,
            ACK_HELP,
            Unit::Seconds,
            commit.ack_seconds.clone(),
        );
        Metrics {
            registry: r,
            http_requests,
            open_connections,
            refused_connections,
            tls_handshake_failures,
            queue_full_disconnects,
            ack_seconds: commit.ack_seconds.clone(),
        }
    }

    /// The send-to-ack histogram as it is now, read through the same
    /// encoding `/metrics` serves (the crate keeps bucket counts private).
    pub fn ack_latency(&self) -> HistogramReading {
        let mut r = Registry::default();
        r.register_with_unit(ACK_NAME, ACK_HELP, Unit::Seconds, self.ack_seconds.clone());
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut text, &r);
        HistogramReading::parse(&text)
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

    /// Every metric in the OpenMetrics text format: the registry's, and
    /// the server's own counts as read just now.
    pub fn render(&self, counts: Snapshot) -> String {
        let mut live = Registry::with_prefix("hearth");
        live.register_collector(Box::new(counts));
        let mut out = String::with_capacity(8192);
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry)
            .and_then(|()| encode_registry(&mut out, &live))
            .and_then(|()| encode_eof(&mut out));
        out
    }
}

const ACK_NAME: &str = "ack_duration";
const ACK_HELP: &str = "Time from a message reaching the server to its ack (queue, write, flush)";

/// A histogram's cumulative counts at one moment: `buckets` are
/// `[upper bound in seconds, observations at or below it]`, ascending, the
/// last bound infinite (written as `null` in JSON).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct HistogramReading {
    pub count: u64,
    pub sum: f64,
    pub buckets: Vec<(Option<f64>, u64)>,
}

impl HistogramReading {
    /// From the OpenMetrics text of a registry holding one histogram.
    fn parse(text: &str) -> HistogramReading {
        let mut out = HistogramReading::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            if name.ends_with("_count") {
                out.count = value.parse().unwrap_or(0);
            } else if name.ends_with("_sum") {
                out.sum = value.parse().unwrap_or(0.0);
            } else if let Some(le) = name
                .split_once("le=\"")
                .and_then(|(_, rest)| rest.split('"').next())
            {
                let bound = le.parse::<f64>().ok().filter(|b| b.is_finite());
                out.buckets.push((bound, value.parse().unwrap_or(0)));
            }
        }
        out
    }
}

/// The server's own counts, read once per scrape (by
/// `AppState::metrics_text`), so the hot paths do no work for them.
#[derive(Debug)]
pub struct Snapshot {
    pub websockets: i64,
    /// Threads of the async runtime (the `workers` setting).
    pub runtime_workers: i64,
    pub users: i64,
    pub rooms: i64,
    pub messages: u64,
    pub commit_groups: u64,
    pub deliveries: u64,
    pub storage_reopens: u64,
    /// Push notifications by outcome: `sent`, `failed`, `dropped`.
    pub push: [(&'static str, u64); 3],
    /// Push subscriptions removed because their push service said gone.
    pub push_expired: u64,
    /// Refusals by limit name: `send`, `signup`, `login_ip`,
    /// `login_failures`, `avatar`.
    pub rate_limited: [(&'static str, u64); 6],
    /// Rooms holding a recent window.
    pub history_windows: i64,
    /// Events the rooms' dedup windows span.
    pub dedup_window_events: i64,
    /// Events windows hold beyond `storage.history_window`, having grown
    /// down for older pages.
    pub history_window_grown_events: i64,
    /// Bytes of the history pages kept encoded for the next reader.
    pub history_page_bytes: i64,
    /// History reads by source: `page`, `window`, `storage`.
    pub history_reads: [(&'static str, u64); 3],
    /// Reads of a room's log that came back without every seq.
    pub history_incomplete_reads: u64,
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauges = [
            (
                "websocket_connections",
                "Open WebSocket connections",
                self.websockets,
            ),
            (
                "runtime_workers",
                "Threads of the async runtime that run connections and requests",
                self.runtime_workers,
            ),
            ("users", "Accounts, deleted ones included", self.users),
            ("rooms", "Rooms", self.rooms),
            (
                "history_windows",
                "Rooms keeping their newest events in memory for history and resume",
                self.history_windows,
            ),
            (
                "dedup_window_events",
                "Events the dedup windows of rooms sent to lately span (about 40 bytes each)",
                self.dedup_window_events,
            ),
            (
                "history_window_grown_events",
                "Events the recent windows hold beyond their size, grown down for older pages",
                self.history_window_grown_events,
            ),
            (
                "history_page_bytes",
                "Bytes of the history pages kept encoded, answered again to the next reader of the same page",
                self.history_page_bytes,
            ),
        ];
        for (name, help, value) in gauges {
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        let counters = [
            (
                "messages_stored",
                "Room events (messages, edits, deletions, reactions) durably stored since start",
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
                "push_subscriptions_expired",
                "Push subscriptions removed since start because their push service answered 404 or 410",
                self.push_expired,
            ),
            (
                "storage_reopens",
                "Times the database was reopened after a write failure since start",
                self.storage_reopens,
            ),
            (
                "history_incomplete_reads",
                "Reads of a room's log (resume replays, event pages, recent windows) that came back without every seq since start: a storage fault, retried, never answered",
                self.history_incomplete_reads,
            ),
        ];
        for (name, help, value) in counters {
            let c = ConstCounter::new(value);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        counter_family(
            &mut encoder,
            "push_notifications",
            "Web Push notifications since start, by outcome: sent (accepted by the push service), failed (refused, or failing after every retry), dropped (collapsed or dropped from a full queue)",
            "outcome",
            &self.push,
        )?;
        counter_family(
            &mut encoder,
            "rate_limited",
            "Requests refused by a rate limit, by limit",
            "limit",
            &self.rate_limited,
        )?;
        counter_family(
            &mut encoder,
            "history_reads",
            "History, event and resume reads since start, by source: page (a history page kept encoded from an earlier reader), window (a room's newest events in memory) or storage",
            "source",
            &self.history_reads,
        )?;
        Ok(())
    }
}

/// One counter per value of `label`, under one name.
fn counter_family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    values: &[(&'static str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for (value_of_label, value) in values {
        let labels = [(label, *value_of_label)];
        ConstCounter::new(*value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}
