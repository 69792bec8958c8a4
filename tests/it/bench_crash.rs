//! `hearth bench crash` is the long crash loop users run on their own
//! machine. A three-cycle run keeps it honest: the built binary kills and
//! restarts its own server child and must report every acknowledged
//! message kept, in its `--json` report.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn a_short_crash_bench_keeps_every_acknowledged_message() {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["bench", "crash", "--cycles", "3", "--json", "--quiet"])
        .output()
        .expect("run hearth bench crash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench crash failed: {stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the --json report parses");
    assert_eq!(report["scenario"], "crash", "{report:#}");
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report["cycles"], 3, "{report:#}");
    for fault in [
        "lost",
        "duplicated",
        "reordered",
        "gaps",
        "stored_without_ack",
        "errors",
        "failed_restarts",
    ] {
        assert_eq!(report[fault], 0, "{fault}: {report:#}");
    }
    let acked = report["acked"].as_u64().expect("acked");
    assert!(acked > 0, "nothing was acknowledged: {report:#}");
    assert!(
        report["acked_websocket"].as_u64() > Some(0) && report["acked_rest"].as_u64() > Some(0),
        "both WebSocket and REST posters must get acks: {report:#}"
    );
    let stored = report["stored"].as_u64().expect("stored");
    let resent = report["unacked_resent"].as_u64().expect("unacked_resent");
    assert_eq!(stored, acked + resent, "{report:#}");
    assert!(
        report["slowest_restart_ms"].as_f64() > Some(0.0),
        "{report:#}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "three cycles took {:?}",
        started.elapsed()
    );
}

#[test]
fn bench_crash_refuses_a_url() {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["bench", "crash", "--url", "http://127.0.0.1:8080"])
        .output()
        .expect("run hearth bench crash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "--url was accepted: {stderr}");
    assert!(
        stderr.contains("--url cannot be used with `bench crash`"),
        "{stderr}"
    );
}
