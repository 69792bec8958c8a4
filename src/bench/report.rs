//! The report of a run: the JSON shape (`--json`, committed under
//! `docs/bench/`), the table printed for people, and the Markdown file.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    /// The exact command line.
    pub command: String,
    pub machine: Machine,
    pub settings: serde_json::Value,
    /// Things a reader must know: limits that capped the run, and so on.
    pub notes: Vec<String>,
    /// The login storm run alongside, if one was asked for.
    pub logins: Option<super::fanout::LoginStorm>,
    pub hearth: Run,
    pub ceiling: Option<Run>,
    /// hearth / ceiling.
    pub ratio: Option<Ratio>,
    /// No lost, duplicated or reordered delivery, no error, nobody cut off.
    pub passed: bool,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    /// `/proc/loadavg` (1, 5, 15 min) just before the run.
    pub loadavg_before: String,
}

impl Machine {
    pub fn now() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
            .unwrap_or_default();
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            loadavg_before: super::loadavg(),
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Serialize, Default, Clone, Copy)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    /// From a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// One load against one target (hearth, or the ceiling writer).
#[derive(Debug, Serialize, Default)]
pub struct Run {
    pub target: String,
    pub clients: usize,
    /// Wall time from the first connect to the last `ready`.
    pub connect_all_secs: f64,
    /// Per client: TCP connect + upgrade + hello → ready.
    pub connect_ms: Percentiles,
    pub messages: u64,
    pub acked: u64,
    pub deliveries: u64,
    pub deliveries_expected: u64,
    /// clients × rate: what the load asked for.
    pub offered_deliveries_per_sec: f64,
    /// Deliveries over the time from the first post to the last delivery.
    pub deliveries_per_sec: f64,
    pub window_secs: f64,
    pub latency_ms: Percentiles,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub errors: u64,
    pub closed_early: u64,
    pub first_error: Option<String>,
    /// Server user+system CPU over the window.
    pub server_cpu_secs: Option<f64>,
    pub server_cores: Option<f64>,
    pub deliveries_per_server_cpu_sec: Option<f64>,
    pub server_cpu_us_per_delivery: Option<f64>,
    /// Server RSS: idle after start, before the sockets, after them, at the end.
    pub rss_idle_bytes: Option<u64>,
    pub rss_before_connect_bytes: Option<u64>,
    pub rss_after_connect_bytes: Option<u64>,
    pub rss_end_bytes: Option<u64>,
    pub rss_per_connection_bytes: Option<f64>,
    /// Seconds the server's threads waited for a CPU while runnable, over
    /// the window: high means the machine, not the server, set the pace.
    pub server_runqueue_wait_secs: Option<f64>,
    /// The same for the load generator's threads, over their whole run.
    pub generator_runqueue_wait_secs: f64,
    /// This process's CPU over the window: a generator near 100% per
    /// thread is a bottleneck of its own.
    pub generator_cpu_secs: f64,
}

impl Run {
    pub fn verified(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.reordered == 0
            && self.errors == 0
            && self.closed_early == 0
            && self.deliveries == self.deliveries_expected
    }
}

#[derive(Debug, Serialize)]
pub struct Ratio {
    /// hearth deliveries/s ÷ ceiling deliveries/s at the same offered load.
    pub throughput: f64,
    /// hearth deliveries per CPU-second ÷ the ceiling's.
    pub cpu_efficiency: Option<f64>,
    /// hearth p99 ÷ ceiling p99.
    pub p99_latency: f64,
}

/// Rows of (metric, hearth, ceiling) shared by the table and Markdown.
fn rows(r: &Report) -> Vec<(String, String, String)> {
    let c = r.ceiling.as_ref();
    let num = |v: f64| format_number(v);
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map(f).unwrap_or_else(|| "-".into());
    let mib = |b: Option<u64>| opt(b.map(|b| b as f64 / 1048576.0), &|v| format!("{v:.1} MiB"));
    let mut rows = Vec::new();
    let mut row = |name: &str, h: String, cv: Option<String>| {
        rows.push((name.to_string(), h, cv.unwrap_or_else(|| "-".into())));
    };
    let h = &r.hearth;
    row(
        "clients",
        h.clients.to_string(),
        c.map(|c| c.clients.to_string()),
    );
    row(
        "connect + hello, all (s)",
        format!("{:.2}", h.connect_all_secs),
        c.map(|c| format!("{:.2}", c.connect_all_secs)),
    );
    row(
        "connect + hello p50 / p99 (ms)",
        format!("{:.1} / {:.1}", h.connect_ms.p50, h.connect_ms.p99),
        c.map(|c| format!("{:.1} / {:.1}", c.connect_ms.p50, c.connect_ms.p99)),
    );
    row(
        "messages",
        h.messages.to_string(),
        c.map(|c| c.messages.to_string()),
    );
    row(
        "deliveries (expected)",
        format!("{} ({})", h.deliveries, h.deliveries_expected),
        c.map(|c| format!("{} ({})", c.deliveries, c.deliveries_expected)),
    );
    row(
        "deliveries/s (offered)",
        format!(
            "{} ({})",
            num(h.deliveries_per_sec),
            num(h.offered_deliveries_per_sec)
        ),
        c.map(|c| {
            format!(
                "{} ({})",
                num(c.deliveries_per_sec),
                num(c.offered_deliveries_per_sec)
            )
        }),
    );
    let lat = |p: &Percentiles| format!("{:.1} / {:.1} / {:.1}", p.p50, p.p99, p.max);
    row(
        "latency p50 / p99 / max (ms)",
        lat(&h.latency_ms),
        c.map(|c| lat(&c.latency_ms)),
    );
    let bad = |x: &Run| format!("{} / {} / {}", x.lost, x.duplicated, x.reordered);
    row("lost / dup / reordered", bad(h), c.map(bad));
    row(
        "errors / cut off",
        format!("{} / {}", h.errors, h.closed_early),
        c.map(|c| format!("{} / {}", c.errors, c.closed_early)),
    );
    row(
        "server CPU s (cores)",
        h.server_cpu_secs
            .zip(h.server_cores)
            .map(|(s, k)| format!("{s:.2} ({k:.2})"))
            .unwrap_or_else(|| "-".into()),
        c.map(|c| {
            c.server_cpu_secs
                .zip(c.server_cores)
                .map(|(s, k)| format!("{s:.2} ({k:.2})"))
                .unwrap_or_else(|| "-".into())
        }),
    );
    row(
        "deliveries per server CPU-s",
        opt(h.deliveries_per_server_cpu_sec, &num),
        c.map(|c| opt(c.deliveries_per_server_cpu_sec, &num)),
    );
    row(
        "server CPU µs per delivery",
        opt(h.server_cpu_us_per_delivery, &|v| format!("{v:.3}")),
        c.map(|c| opt(c.server_cpu_us_per_delivery, &|v| format!("{v:.3}"))),
    );
    row(
        "server RSS idle",
        mib(h.rss_idle_bytes),
        c.map(|c| mib(c.rss_idle_bytes)),
    );
    row(
        "server RSS before / after connect",
        format!(
            "{} / {}",
            mib(h.rss_before_connect_bytes),
            mib(h.rss_after_connect_bytes)
        ),
        c.map(|c| {
            format!(
                "{} / {}",
                mib(c.rss_before_connect_bytes),
                mib(c.rss_after_connect_bytes)
            )
        }),
    );
    row(
        "server RSS per connection",
        opt(h.rss_per_connection_bytes, &|v| {
            format!("{:.1} KiB", v / 1024.0)
        }),
        c.map(|c| {
            opt(c.rss_per_connection_bytes, &|v| {
                format!("{:.1} KiB", v / 1024.0)
            })
        }),
    );
    row(
        "generator CPU s",
        format!("{:.2}", h.generator_cpu_secs),
        c.map(|c| format!("{:.2}", c.generator_cpu_secs)),
    );
    let waits = |x: &Run| {
        format!(
            "{} / {:.2}",
            x.server_runqueue_wait_secs
                .map(|w| format!("{w:.2}"))
                .unwrap_or_else(|| "-".into()),
            x.generator_runqueue_wait_secs
        )
    };
    row(
        "run-queue wait s, server / generator",
        waits(h),
        c.map(waits),
    );
    rows
}

/// Thousands separated by a thin gap, rounded: 1754321.4 → "1 754 321".
pub fn format_number(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// The summary table for a terminal.
pub fn table(r: &Report) -> String {
    let rows = rows(r);
    let w0 = rows.iter().map(|x| x.0.chars().count()).max().unwrap_or(0);
    let w1 = rows
        .iter()
        .map(|x| x.1.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut out = String::new();
    let _ = writeln!(out, "{:w0$}  {:>w1$}  {:>}", "", "hearth", "ceiling");
    for (name, h, c) in &rows {
        let _ = writeln!(out, "{name:w0$}  {h:>w1$}  {c:>}");
    }
    if let Some(ratio) = &r.ratio {
        let _ = writeln!(out, "{}", ratio_line(ratio));
    }
    if let Some(l) = &r.logins {
        let _ = writeln!(
            out,
            "login storm: {} attempted at {}/s: {} ok, {} refused (429/503), {} other; p50 {:.1} / p99 {:.1} ms",
            l.attempted, l.rate, l.ok, l.refused, l.other, l.latency_ms.p50, l.latency_ms.p99
        );
    }
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    let _ = writeln!(
        out,
        "{}",
        if r.passed {
            "verification: PASSED (every client saw every message once, in order)"
        } else {
            "verification: FAILED"
        }
    );
    out
}

/// The report as a Markdown section.
pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## `{}`\n", r.command);
    let _ = writeln!(
        out,
        "Machine: {} × {}; load average before: {}.\n",
        r.machine.nproc, r.machine.cpu_model, r.machine.loadavg_before
    );
    let _ = writeln!(out, "| metric | hearth | ceiling |\n|---|---:|---:|");
    for (name, h, c) in rows(r) {
        let _ = writeln!(out, "| {name} | {h} | {c} |");
    }
    if let Some(ratio) = &r.ratio {
        let _ = writeln!(out, "\n{}.", ratio_line(ratio));
    }
    for n in &r.notes {
        let _ = writeln!(out, "\nNote: {n}");
    }
    let _ = writeln!(
        out,
        "\nVerification: {}.",
        if r.passed { "passed" } else { "FAILED" }
    );
    out
}

/// The hearth / ceiling comparison, as both the table and the report say it.
fn ratio_line(ratio: &Ratio) -> String {
    let cpu = ratio
        .cpu_efficiency
        .map(|v| format!("{v:.2}"))
        .unwrap_or_else(|| "-".into());
    format!(
        "hearth / ceiling: throughput {:.2}, CPU efficiency {cpu}, p99 latency {:.2}×",
        ratio.throughput, ratio.p99_latency
    )
}
