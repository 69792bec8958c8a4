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
    pub logins: Option<LoginStorm>,
    /// The same load without the disturbance (stalls, a login storm,
    /// reads), on a fresh server in the same invocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Run>,
    /// hearth / baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// What became of the clients that stopped reading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stall: Option<StallFindings>,
    /// Memory and liveness of connections held idle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdleFindings>,
    /// The `read` frames of a run whose clients mark their room read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reads: Option<ReadFindings>,
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
            loadavg_before: loadavg(),
        }
    }
}

/// The 1/5/15-minute load averages from `/proc/loadavg`, recorded before each run because the
/// machine is shared.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
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
    /// Clients that had not seen every message of their room by the end.
    pub clients_incomplete: usize,
    /// clients × rate ÷ rooms: what the load asked for.
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
    /// The part of it of the server's threads at normal priority: the
    /// rest is background work (indexing, hashing) at the lowest priority,
    /// which waits by design while the server is busy.
    pub server_runqueue_wait_normal_secs: Option<f64>,
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

    /// What kept a run with nothing lost, duplicated or reordered from
    /// verifying: sends still unacknowledged when the run's time was up
    /// (a server far behind its load), or deliveries that do not add up
    /// to what the acknowledged sends owe.
    pub fn shortfall(&self) -> Option<String> {
        let mut why = Vec::new();
        if self.acked < self.messages {
            why.push(format!(
                "only {} of {} sends were acknowledged before the run's time was up",
                self.acked, self.messages
            ));
        }
        if self.deliveries != self.deliveries_expected {
            why.push(format!(
                "{} deliveries where the acknowledged sends owe {}",
                self.deliveries, self.deliveries_expected
            ));
        }
        (!why.is_empty()).then(|| why.join("; "))
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

/// A run with a disturbance against its baseline without it: hearth ÷ baseline.
#[derive(Debug, Serialize)]
pub struct Comparison {
    /// The disturbance.
    pub of: &'static str,
    pub p50_latency: f64,
    pub p99_latency: f64,
    pub deliveries_per_sec: f64,
    /// Server CPU per delivery, with the disturbance ÷ without: what the
    /// disturbance costs when the server keeps up (deliveries/s then only
    /// follow the offered load).
    pub server_cpu_per_delivery: Option<f64>,
}

/// Every client marked its room read at an interval: a `read` frame up to
/// the highest seq it had seen.
#[derive(Debug, Serialize)]
pub struct ReadFindings {
    pub every_secs: f64,
    /// clients ÷ every_secs.
    pub offered_per_sec: f64,
    /// `read` frames sent over the run.
    pub sent: u64,
    /// Sent over the run's window (first post to last delivery).
    pub per_sec: f64,
    /// `read` frames the clients received: a cursor moved by another
    /// socket of the same account.
    pub heard: u64,
    /// Accounts whose cursor was read back at the end (those that sent a
    /// read), and how many were behind the highest seq their sockets marked
    /// read: a read dropped without an error frame. Must be 0.
    pub accounts_checked: usize,
    pub cursors_behind: u64,
    pub first_behind: Option<String>,
}

/// Clients that stopped reading from their socket for a while.
#[derive(Debug, Serialize)]
pub struct StallFindings {
    pub clients: usize,
    /// Seconds after posting started that they stopped reading, and for how long.
    pub after_secs: f64,
    pub pause_secs: f64,
    /// The SO_RCVBUF they asked for (the kernel doubles it), and the MSS
    /// they announced.
    pub recv_buffer_bytes: u32,
    pub mss: u32,
    /// Of them, how many found their connection ended once they read
    /// again, and how: a close frame, the end of the stream, a socket error.
    pub cut: u64,
    pub cut_by_close_frame: u64,
    pub cut_by_end_of_stream: u64,
    pub cut_by_socket_error: u64,
    /// How many reconnected with `resume` and then saw every message of the
    /// room once, in order (the run's lost/dup/reordered include them).
    pub resumed: u64,
    /// The server's own count of connections it cut as too slow (its
    /// `hearth_queue_full_disconnects_total` over the run), if readable.
    pub server_too_slow_disconnects: Option<u64>,
}

/// Connections held, idle, after hello.
#[derive(Debug, Serialize)]
pub struct IdleFindings {
    pub hold_secs: f64,
    /// Server RSS at the end of the hold.
    pub rss_after_hold_bytes: Option<u64>,
    /// That, minus the idle server's RSS before any setup.
    pub rss_above_idle_bytes: Option<i64>,
    /// (RSS after the hold − RSS before connecting) ÷ connections.
    pub rss_per_connection_after_hold_bytes: Option<f64>,
    /// Connections that received the message posted after the hold.
    pub alive_at_end: usize,
}

/// Logins attempted during a run, and how the server answered.
#[derive(Debug, Clone, Serialize)]
pub struct LoginStorm {
    pub rate: f64,
    pub attempted: u64,
    pub ok: u64,
    /// 429 (rate limit) or 503 (hashing queue full): refused, not queued.
    pub refused: u64,
    pub other: u64,
    pub latency_ms: Percentiles,
}

/// The runs of a report, in the order their columns are shown.
fn columns(r: &Report) -> Vec<(&str, &Run)> {
    let mut cols = Vec::new();
    if let Some(b) = &r.baseline {
        cols.push(("baseline", b));
    }
    cols.push(("hearth", &r.hearth));
    if let Some(c) = &r.ceiling {
        cols.push(("ceiling", c));
    }
    cols
}

/// How one row's value is read from a run.
type Cell<'a> = Box<dyn Fn(&Run) -> String + 'a>;

/// Rows of (metric, one value per column) shared by the table and Markdown.
fn rows(r: &Report) -> Vec<(String, Vec<String>)> {
    let runs: Vec<&Run> = columns(r).into_iter().map(|(_, run)| run).collect();
    let num = |v: f64| format_number(v);
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map(f).unwrap_or_else(|| "-".into());
    let mib = |b: Option<u64>| opt(b.map(|b| b as f64 / 1048576.0), &|v| format!("{v:.1} MiB"));
    let lat = |p: &Percentiles| format!("{:.1} / {:.1} / {:.1}", p.p50, p.p99, p.max);
    let table: Vec<(&str, Cell)> = vec![
        ("clients", Box::new(|x| x.clients.to_string())),
        (
            "connect + hello, all (s)",
            Box::new(|x| format!("{:.2}", x.connect_all_secs)),
        ),
        (
            "connect + hello p50 / p99 (ms)",
            Box::new(|x| format!("{:.1} / {:.1}", x.connect_ms.p50, x.connect_ms.p99)),
        ),
        ("messages", Box::new(|x| x.messages.to_string())),
        (
            "deliveries (expected)",
            Box::new(|x| format!("{} ({})", x.deliveries, x.deliveries_expected)),
        ),
        (
            "deliveries/s (offered)",
            Box::new(move |x| {
                format!(
                    "{} ({})",
                    num(x.deliveries_per_sec),
                    num(x.offered_deliveries_per_sec)
                )
            }),
        ),
        (
            "latency p50 / p99 / max (ms)",
            Box::new(move |x| lat(&x.latency_ms)),
        ),
        (
            "lost / dup / reordered",
            Box::new(|x| format!("{} / {} / {}", x.lost, x.duplicated, x.reordered)),
        ),
        (
            "errors / cut off",
            Box::new(|x| format!("{} / {}", x.errors, x.closed_early)),
        ),
        (
            "server CPU s (cores)",
            Box::new(|x| {
                x.server_cpu_secs
                    .zip(x.server_cores)
                    .map(|(s, k)| format!("{s:.2} ({k:.2})"))
                    .unwrap_or_else(|| "-".into())
            }),
        ),
        (
            "deliveries per server CPU-s",
            Box::new(move |x| opt(x.deliveries_per_server_cpu_sec, &num)),
        ),
        (
            "server CPU µs per delivery",
            Box::new(move |x| opt(x.server_cpu_us_per_delivery, &|v| format!("{v:.3}"))),
        ),
        ("server RSS idle", Box::new(move |x| mib(x.rss_idle_bytes))),
        (
            "server RSS before / after connect",
            Box::new(move |x| {
                format!(
                    "{} / {}",
                    mib(x.rss_before_connect_bytes),
                    mib(x.rss_after_connect_bytes)
                )
            }),
        ),
        (
            "server RSS per connection",
            Box::new(move |x| {
                opt(x.rss_per_connection_bytes, &|v| {
                    format!("{:.1} KiB", v / 1024.0)
                })
            }),
        ),
        (
            "generator CPU s",
            Box::new(|x| format!("{:.2}", x.generator_cpu_secs)),
        ),
        (
            "run-queue wait s, server (normal priority) / generator",
            Box::new(|x| {
                let secs = |w: Option<f64>| w.map_or_else(|| "-".into(), |w| format!("{w:.2}"));
                format!(
                    "{} ({}) / {:.2}",
                    secs(x.server_runqueue_wait_secs),
                    secs(x.server_runqueue_wait_normal_secs),
                    x.generator_runqueue_wait_secs
                )
            }),
        ),
    ];
    table
        .into_iter()
        .map(|(name, f)| (name.to_string(), runs.iter().map(|x| f(x)).collect()))
        .collect()
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
    let names: Vec<&str> = columns(r).into_iter().map(|(n, _)| n).collect();
    let rows = rows(r);
    let w0 = rows.iter().map(|x| x.0.chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..names.len())
        .map(|i| {
            rows.iter()
                .map(|x| x.1[i].chars().count())
                .chain([names[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |first: &str, cells: &[&str]| {
        let mut l = format!("{first:w0$}");
        for (cell, w) in cells.iter().zip(&widths) {
            let _ = write!(l, "  {cell:>w$}");
        }
        l
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", line("", &names));
    for (name, cells) in &rows {
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        let _ = writeln!(out, "{}", line(name, &cells));
    }
    for l in findings(r) {
        let _ = writeln!(out, "{l}");
    }
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    let _ = writeln!(
        out,
        "{}",
        if r.passed {
            "verification: PASSED (every client saw every message of its room once, in order)"
        } else {
            "verification: FAILED"
        }
    );
    out
}

/// The report as a Markdown section.
pub fn markdown(r: &Report) -> String {
    let names: Vec<&str> = columns(r).into_iter().map(|(n, _)| n).collect();
    let mut out = String::new();
    let _ = writeln!(out, "## `{}`\n", r.command);
    let _ = writeln!(
        out,
        "Machine: {} × {}; load average before: {}.\n",
        r.machine.nproc, r.machine.cpu_model, r.machine.loadavg_before
    );
    let _ = writeln!(
        out,
        "| metric | {} |\n|---|{}",
        names.join(" | "),
        "---:|".repeat(names.len())
    );
    for (name, cells) in rows(r) {
        let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
    }
    for l in findings(r) {
        let _ = writeln!(out, "\n{l}.");
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

/// One sentence per finding beside the table: the ratios, the login
/// storm, the stalled clients, the idle hold.
fn findings(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(ratio) = &r.ratio {
        out.push(ratio_line(ratio));
    }
    if let Some(c) = &r.comparison {
        out.push(format!(
            "with {} / baseline: p50 latency {:.2}×, p99 latency {:.2}×, deliveries/s {:.2}×, \
             server CPU per delivery {}",
            c.of,
            c.p50_latency,
            c.p99_latency,
            c.deliveries_per_sec,
            c.server_cpu_per_delivery
                .map_or_else(|| "-".into(), |v| format!("{v:.2}×"))
        ));
    }
    if let Some(x) = &r.reads {
        out.push(format!(
            "reads: every client every {}s: {} sent, {}/s (of {}/s offered); {} heard by the \
             accounts' other sockets; {} error frames; {} of {} accounts' cursors behind their reads",
            x.every_secs,
            format_number(x.sent as f64),
            format_number(x.per_sec),
            format_number(x.offered_per_sec),
            format_number(x.heard as f64),
            r.hearth.errors,
            x.cursors_behind,
            x.accounts_checked
        ));
    }
    if let Some(l) = &r.logins {
        out.push(format!(
            "login storm: {} attempted at {}/s: {} ok, {} refused (429/503), {} failed; p50 {:.1} / p99 {:.1} ms",
            l.attempted, l.rate, l.ok, l.refused, l.other, l.latency_ms.p50, l.latency_ms.p99
        ));
    }
    if let Some(s) = &r.stall {
        out.push(format!(
            "stalled readers: {} stopped reading {:.1}s in for {:.1}s; {} found themselves cut off \
             ({} close frame, {} end of stream, {} socket error), {} resumed; server counted {} too-slow disconnects",
            s.clients,
            s.after_secs,
            s.pause_secs,
            s.cut,
            s.cut_by_close_frame,
            s.cut_by_end_of_stream,
            s.cut_by_socket_error,
            s.resumed,
            s.server_too_slow_disconnects
                .map_or_else(|| "-".into(), |n| n.to_string())
        ));
    }
    if let Some(i) = &r.idle {
        let mib = |b: i64| format!("{:.1} MiB", b as f64 / 1048576.0);
        out.push(format!(
            "idle hold: {} connections held {:.0}s; server RSS then {} ({} above idle, {} per connection); {} received the message posted after",
            r.hearth.clients,
            i.hold_secs,
            i.rss_after_hold_bytes.map_or_else(|| "-".into(), |b| mib(b as i64)),
            i.rss_above_idle_bytes.map_or_else(|| "-".into(), mib),
            i.rss_per_connection_after_hold_bytes
                .map_or_else(|| "-".into(), |b| format!("{:.1} KiB", b / 1024.0)),
            i.alive_at_end
        ));
    }
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

#[cfg(test)]
mod tests {
    use super::Run;

    /// A run cut short by its deadline says so, rather than only "failed"
    /// beside zero losses; a finished one has nothing to say.
    #[test]
    fn a_run_that_ran_out_of_time_says_how_far_it_got() {
        let cut = Run {
            messages: 351_000,
            acked: 50_531,
            deliveries: 2_526_528,
            deliveries_expected: 2_525_750,
            ..Run::default()
        };
        assert!(!cut.verified());
        assert_eq!(
            cut.shortfall().as_deref(),
            Some(
                "only 50531 of 351000 sends were acknowledged before the run's time was up; \
                 2526528 deliveries where the acknowledged sends owe 2525750"
            )
        );
        let done = Run {
            messages: 10,
            acked: 10,
            deliveries: 500,
            deliveries_expected: 500,
            ..Run::default()
        };
        assert!(done.verified());
        assert_eq!(done.shortfall(), None);
    }
}
