//! WebSocket conformance: the Autobahn test cases, run by `kosoku` (PyPI)
//! against the test-only echo endpoint, which reads and writes through the
//! same reader, limits, assembly, outbox and writer as the chat gateway.
//! Compression (cases 12 and 13) is not offered, so those are excluded.
//!
//! `kosoku` must be installed (`pip install kosoku`; `.ci/run` does it).
//! Set `HEARTH_SKIP_AUTOBAHN=1` to skip on a machine without it; the skip is
//! printed, never silent.

use std::process::Command;

use crate::harness::TestServer;

#[tokio::test]
async fn every_autobahn_case_passes_against_the_echo_endpoint() {
    if std::env::var_os("HEARTH_SKIP_AUTOBAHN").is_some() {
        eprintln!("SKIPPED: Autobahn cases (HEARTH_SKIP_AUTOBAHN is set)");
        return;
    }
    let s = TestServer::spawn_with(&[
        ("HEARTH_TEST_ECHO", "1"),
        // Cases 9.x send messages of up to 16 MiB.
        ("HEARTH_MAX_MESSAGE_BYTES", "16777216"),
    ])
    .await;
    let reports = tempfile::tempdir().expect("temp dir");
    let url = format!("ws://{}/api/v1/test/echo", s.addr);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("kosoku")
            .arg(&url)
            .args(["-x", "12.*", "-x", "13.*", "-p", "4", "-o"])
            .arg(reports.path())
            .output()
    })
    .await
    .expect("join")
    .unwrap_or_else(|e| {
        panic!("cannot run kosoku ({e}): pip install kosoku, or set HEARTH_SKIP_AUTOBAHN=1")
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let failed: Vec<&str> = stdout.lines().filter(|l| l.contains("FAILED")).collect();
    assert!(
        out.status.success() && failed.is_empty(),
        "Autobahn cases failed:\n{}\n{stderr}",
        failed.join("\n")
    );
    let summary = stdout.lines().last().unwrap_or_default();
    let passed: usize = summary
        .strip_suffix(" cases passed")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected kosoku summary: {summary:?}\n{stdout}"));
    assert!(passed >= 300, "only {passed} cases ran: {summary}");
}
