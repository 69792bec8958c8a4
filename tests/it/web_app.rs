//! The web UI as an installable app: the service worker is served from the
//! root with the list of the UI's files and a version made from them filled
//! in, every file it lists is there, it revalidates by ETag, and the page's
//! policy lets the worker and the manifest load.

use serde_json::Value;

use crate::harness::TestServer;

/// The `{version, files}` the server wrote into `sw.js`.
fn shell_of(source: &str) -> Value {
    let marker = "const SHELL = ";
    let start = source.find(marker).expect("the SHELL line") + marker.len();
    let end = start
        + source[start..]
            .find(";\n")
            .expect("the end of the SHELL line");
    serde_json::from_str(&source[start..end]).expect("the shell is JSON")
}

#[tokio::test]
async fn the_service_worker_lists_the_shell_with_a_version_and_revalidates() {
    let mut s = TestServer::spawn().await;
    let sw = s.call("GET", "/sw.js").fetch().await;
    assert_eq!(sw.status, 200);
    assert!(sw
        .header("content-type")
        .is_some_and(|t| t.contains("javascript")));
    assert_eq!(sw.header("cache-control"), Some("no-cache"));
    let csp = sw.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("worker-src 'self'"), "{csp}");
    assert!(csp.contains("manifest-src 'self'"), "{csp}");
    let source = String::from_utf8(sw.bytes.clone()).expect("UTF-8");
    assert!(
        !source.contains("__HEARTH_SHELL__"),
        "the placeholder is filled in"
    );
    let shell = shell_of(&source);
    let version = shell["version"].as_str().expect("a version");
    assert_eq!(version.len(), 16);
    assert!(version.chars().all(|c| c.is_ascii_hexdigit()));
    let files: Vec<&str> = shell["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f.as_str().expect("a path"))
        .collect();
    for wanted in [
        "/",
        "/app.css",
        "/js/main.js",
        "/js/app.js",
        "/manifest.webmanifest",
        "/favicon.svg",
        "/icon-192.png",
        "/icon-512.png",
    ] {
        assert!(files.contains(&wanted), "{wanted} in {files:?}");
    }
    assert!(
        !files.contains(&"/sw.js"),
        "the worker does not keep itself"
    );
    assert!(!files.contains(&"/index.html"), "the page is kept as /");
    assert!(files.iter().all(|f| !f.starts_with("/api/")));
    // Every listed file is served: one missing one would fail the worker's install.
    for file in &files {
        let got = s.call("GET", file).fetch().await;
        assert_eq!(got.status, 200, "{file}");
    }

    // Unchanged, it is a cheap 304.
    let etag = sw.header("etag").expect("an ETag").to_string();
    let again = s
        .call("GET", "/sw.js")
        .header("if-none-match", &etag)
        .fetch()
        .await;
    assert_eq!(again.status, 304);
    assert!(again.bytes.is_empty());

    // The same binary serves the same worker after a restart: browsers keep their copy.
    s.terminate();
    s.restart();
    let after = s.call("GET", "/sw.js").fetch().await;
    assert_eq!(after.header("etag"), Some(etag.as_str()));
    assert_eq!(after.bytes, sw.bytes);
}
