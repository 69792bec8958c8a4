//! `hearth bench` is part of the product: short runs of each WebSocket
//! scenario with verification on keep it from rotting. They run the built
//! binary as a user would and read the `--json` report.

use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;

/// Each run starts a server and a few hundred sockets on a small machine:
/// one at a time, so they do not slow each other past their timing.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs the WebSocket scenario `hearth bench ARGS` on one generator thread
/// without the RSS settling pause, with `env`: see [`run`].
fn bench(args: &[&str], env: &[(&str, &str)]) -> Value {
    let args = [args, &["--threads", "1", "--rss-settle", "0"]].concat();
    run(&args, env)
}

/// Runs `hearth bench ARGS --json --quiet` with `env`, expects success and
/// returns the report.
fn run(args: &[&str], env: &[(&str, &str)]) -> Value {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("bench")
        .args(args)
        .args(["--json", "--quiet"])
        .envs(env.iter().copied())
        .output()
        .expect("run hearth bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "bench failed: {stderr}\n{stdout}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("the --json report parses");
    assert_eq!(report["passed"], true, "{report:#}");
    report
}

/// Nothing lost, duplicated, reordered or refused, nobody cut off, and
/// exactly `deliveries` deliveries of `messages` messages.
fn assert_clean(report: &Value, run: &str, clients: u64, messages: u64, deliveries: u64) {
    let r = &report[run];
    assert_eq!(r["clients"], clients, "{run}: {r:#}");
    for bad in ["lost", "duplicated", "reordered", "errors", "closed_early"] {
        assert_eq!(r[bad], 0, "{run}: {bad}: {r:#}");
    }
    assert_eq!(r["messages"], messages, "{run}: {r:#}");
    assert_eq!(r["deliveries"], deliveries, "{run}: {r:#}");
    assert_eq!(r["deliveries_expected"], deliveries, "{run}: {r:#}");
}

#[test]
fn a_short_fanout_bench_delivers_every_message_once_in_order() {
    let report = bench(
        &[
            "fanout",
            "--clients",
            "200",
            "--posters",
            "4",
            "--rate",
            "50",
            "--duration",
            "3",
            "--users",
            "8",
        ],
        &[],
    );
    for run in ["hearth", "ceiling"] {
        assert_clean(&report, run, 200, 150, 150 * 200);
    }
    assert!(report["hearth"]["server_cpu_secs"].as_f64().is_some());
    assert!(report["ratio"]["throughput"].as_f64().unwrap_or(0.0) > 0.0);
}

#[test]
fn in_many_rooms_each_client_gets_exactly_its_rooms_messages() {
    // 200 clients in 10 rooms of 20; each room's poster sends 60 messages.
    let report = bench(
        &[
            "rooms",
            "--clients",
            "200",
            "--room-size",
            "20",
            "--rate",
            "200",
            "--duration",
            "3",
        ],
        &[],
    );
    assert_eq!(report["settings"]["rooms"], 10, "{report:#}");
    assert_clean(&report, "hearth", 200, 600, 60 * 200);
    // The ceiling writes one room's worth to every socket: the same per socket.
    assert_clean(&report, "ceiling", 200, 60, 60 * 200);
    assert!(
        report["hearth"]["latency_ms"]["p99"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0
    );
}

#[test]
fn idle_connections_are_held_and_all_still_receive_at_the_end() {
    let report = bench(
        &["idle", "--clients", "200", "--hold", "2", "--users", "8"],
        &[],
    );
    assert_clean(&report, "hearth", 200, 1, 200);
    let idle = &report["idle"];
    assert_eq!(idle["alive_at_end"], 200, "{idle:#}");
    assert_eq!(idle["hold_secs"], 2.0, "{idle:#}");
    assert!(
        idle["rss_after_hold_bytes"].as_u64().unwrap_or(0) > 0,
        "{idle:#}"
    );
    assert!(report["hearth"]["connect_all_secs"].as_f64().unwrap_or(0.0) > 0.0);
}

#[test]
fn a_login_storm_run_is_compared_with_a_baseline_and_every_login_answered() {
    let report = bench(
        &[
            "login",
            "--clients",
            "100",
            "--rate",
            "50",
            "--duration",
            "2",
            "--users",
            "4",
            "--login-rate",
            "50",
        ],
        &[],
    );
    for run in ["baseline", "hearth"] {
        assert_clean(&report, run, 100, 100, 100 * 100);
    }
    let logins = &report["logins"];
    assert_eq!(logins["attempted"], 100, "{logins:#}");
    let answered = ["ok", "refused", "other"]
        .iter()
        .map(|k| logins[k].as_u64().unwrap_or(0))
        .sum::<u64>();
    assert_eq!(answered, 100, "{logins:#}");
    assert!(logins["ok"].as_u64().unwrap_or(0) > 0, "{logins:#}");
    assert!(report["comparison"]["p99_latency"].as_f64().unwrap_or(0.0) > 0.0);
}

#[test]
fn stalled_readers_are_cut_off_and_resume_without_a_gap_or_a_duplicate() {
    // 5 of 100 clients stop reading as posting starts. Big bodies fill the
    // buffers between them and the server within a second, and a 1 s write
    // timeout cuts them well inside their 3 s stall; they then reconnect
    // with resume and must end with every message exactly once.
    let report = bench(
        &[
            "fanout",
            "--clients",
            "100",
            "--rate",
            "100",
            "--duration",
            "4",
            "--body-pad",
            "3000",
            "--users",
            "4",
            "--stall-percent",
            "5",
            "--stall-after",
            "0",
            "--stall-for",
            "3",
        ],
        &[("HEARTH_WRITE_TIMEOUT_SECS", "1")],
    );
    for run in ["baseline", "hearth"] {
        assert_clean(&report, run, 100, 400, 400 * 100);
    }
    let stall = &report["stall"];
    assert_eq!(stall["clients"], 5, "{stall:#}");
    assert_eq!(stall["cut"], 5, "{stall:#}");
    assert_eq!(stall["resumed"], 5, "{stall:#}");
    assert_eq!(stall["server_too_slow_disconnects"], 5, "{stall:#}");
    assert!(report["ceiling"].is_null());
}

#[test]
fn every_client_marks_the_room_read_against_a_baseline_and_no_read_is_refused() {
    // 200 clients on 8 accounts, each marking the room read every second
    // while 100 messages arrive over 2 s: every client's first read is due
    // within the first second, so each sends at least one.
    let report = bench(
        &[
            "fanout",
            "--clients",
            "200",
            "--rate",
            "50",
            "--duration",
            "2",
            "--users",
            "8",
            "--read-every",
            "1",
            "--no-ceiling",
        ],
        &[],
    );
    // The error counts checked here include error frames answering a read.
    for run in ["baseline", "hearth"] {
        assert_clean(&report, run, 200, 100, 100 * 200);
    }
    let reads = &report["reads"];
    let sent = reads["sent"].as_u64().unwrap_or(0);
    assert!((200..=600).contains(&sent), "{reads:#}");
    assert!(reads["per_sec"].as_f64().unwrap_or(0.0) > 0.0, "{reads:#}");
    assert_eq!(reads["offered_per_sec"], 200.0, "{reads:#}");
    // 25 sockets share each account: its other sockets hear of its reads.
    assert!(reads["heard"].as_u64().unwrap_or(0) > 0, "{reads:#}");
    // Every account's cursor, read back, is where its sockets put it.
    assert_eq!(reads["accounts_checked"], 8, "{reads:#}");
    assert_eq!(reads["cursors_behind"], 0, "{reads:#}");
    let comparison = &report["comparison"];
    assert_eq!(comparison["of"], "reads", "{comparison:#}");
    assert!(
        comparison["deliveries_per_sec"].as_f64().unwrap_or(0.0) > 0.0,
        "{comparison:#}"
    );
    assert!(
        comparison["server_cpu_per_delivery"].as_f64().is_some(),
        "{comparison:#}"
    );
    assert!(report["ceiling"].is_null());
}

#[test]
fn a_room_list_over_thousands_of_unread_messages_counts_exactly_before_and_after_a_restart() {
    let report = run(
        &[
            "unread",
            "--rooms",
            "5",
            "--messages",
            "2000",
            "--requests",
            "50",
        ],
        &[],
    );
    let fill = &report["fill"];
    assert_eq!(fill["messages"], 2000, "{fill:#}");
    // 400 messages a room, every tenth naming the reader.
    assert_eq!(fill["mentions"], 200, "{fill:#}");
    assert!(fill["messages_per_sec"].as_f64().unwrap_or(0.0) > 0.0);
    for list in ["room_list", "room_list_after_restart"] {
        let l = &report[list];
        assert_eq!(l["requests"], 50, "{list}: {l:#}");
        assert_eq!(l["wrong"], 0, "{list}: {l:#}");
        assert_eq!(l["rooms_listed"], 5, "{list}: {l:#}");
        assert!(
            l["latency_ms"]["p50"].as_f64().unwrap_or(0.0) > 0.0,
            "{l:#}"
        );
        assert!(l["server_cpu_us_per_request"].as_f64().is_some(), "{l:#}");
    }
    for start in ["restart_before_fill", "restart_after_fill"] {
        let s = &report[start];
        assert!(s["shutdown_ms"].as_f64().is_some(), "{start}: {s:#}");
        assert!(
            s["ready_ms"].as_f64().unwrap_or(0.0) > 0.0,
            "{start}: {s:#}"
        );
    }
    assert!(report["start_empty"]["shutdown_ms"].is_null());
}

#[test]
fn a_short_search_bench_finds_every_probe_and_reports_the_index() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["bench", "search", "--rate", "40", "--searchers", "1"])
        // The indexer runs at nice 19: on a loaded machine a probe can take
        // seconds to be found. Its lag is the benchmark's to judge; here the
        // limit is the bench's own give-up time for a probe.
        .args(["--duration", "2", "--prefill", "50", "--max-lag", "10"])
        .args(["--threads", "1", "--json", "--quiet"])
        .output()
        .expect("run hearth bench search");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("the --json report parses");
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report["failed"], 0, "{report:#}");
    for counted in ["posted", "searches", "probes", "db_bytes", "index_bytes"] {
        assert!(
            report[counted].as_u64().is_some_and(|n| n > 0),
            "{counted}: {report:#}"
        );
    }
}

#[test]
fn http_benches_measure_hearth_against_the_raw_http_ceiling() {
    for scenario in ["history", "post"] {
        let r = run(
            &[
                scenario,
                "--clients",
                "4",
                "--duration",
                "1",
                "--prefill",
                "120",
                "--threads",
                "1",
            ],
            &[],
        );
        for side in ["hearth", "ceiling"] {
            let s = &r[side];
            assert_eq!(s["failed"], 0, "{scenario} {side}: {r:#}");
            assert!(
                s["requests"].as_u64().unwrap_or(0) > 0,
                "{scenario} {side}: {r:#}"
            );
            assert!(
                s["server_cpu_us_per_request"]
                    .as_f64()
                    .is_some_and(|c| c > 0.0),
                "{scenario} {side}: {r:#}"
            );
        }
        for ratio in ["throughput_ratio", "cpu_per_request_ratio"] {
            assert!(
                r[ratio].as_f64().is_some_and(|x| x > 0.0),
                "{scenario} {ratio}: {r:#}"
            );
        }
    }
}
