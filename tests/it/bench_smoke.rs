//! `hearth bench` is part of the product: a short fan-out run with
//! verification on keeps it from rotting. It runs the built binary as a
//! user would and reads the `--json` report.

use std::process::Command;

#[test]
fn a_short_fanout_bench_delivers_every_message_once_in_order() {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args([
            "bench",
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
            "--threads",
            "1",
            "--rss-settle",
            "0",
            "--json",
            "--quiet",
        ])
        .output()
        .expect("run hearth bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the --json report parses");
    assert_eq!(report["passed"], true, "{report:#}");
    for run in ["hearth", "ceiling"] {
        let r = &report[run];
        assert_eq!(r["clients"], 200, "{run}: {r:#}");
        for bad in ["lost", "duplicated", "reordered", "errors", "closed_early"] {
            assert_eq!(r[bad], 0, "{run}: {bad}: {r:#}");
        }
        let messages = r["messages"].as_u64().expect("messages");
        assert_eq!(messages, 150);
        assert_eq!(
            r["deliveries"].as_u64(),
            Some(messages * 200),
            "{run}: {r:#}"
        );
    }
    assert!(report["hearth"]["server_cpu_secs"].as_f64().is_some());
    assert!(report["ratio"]["throughput"].as_f64().unwrap_or(0.0) > 0.0);
}
