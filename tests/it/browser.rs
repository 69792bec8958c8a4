//! Runs the browser suite (`tests/browser/`, Node + playwright-core driving
//! Debian's Chromium) against the binary this build produced, so the one
//! test command covers the web UI too.
//!
//! Chromium must be installed (`.ci/run` installs it). Set
//! `HEARTH_SKIP_BROWSER=1` to skip on a machine without it; the skip is
//! printed, never silent.

use std::path::Path;
use std::process::Command;

#[test]
fn web_ui_in_real_chromium() {
    if std::env::var_os("HEARTH_SKIP_BROWSER").is_some() {
        eprintln!("SKIPPED: browser tests (HEARTH_SKIP_BROWSER is set)");
        return;
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium not found at {chromium}: install it (apt-get install -y chromium), \
         set CHROMIUM, or set HEARTH_SKIP_BROWSER=1 to skip the browser tests"
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    // Install when any pinned package is missing (a copy made before a
    // package was added must not pass silently).
    let installed = ["playwright-core", "axe-core"]
        .iter()
        .all(|p| dir.join("node_modules").join(p).exists());
    if !installed {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm runs (Node 20 is required for the browser tests)");
        assert!(status.success(), "npm ci failed in tests/browser");
    }
    let output = Command::new("node")
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .current_dir(&dir)
        .env("HEARTH_BIN", env!("CARGO_BIN_EXE_hearth"))
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "the browser suite failed (output above)"
    );
}
