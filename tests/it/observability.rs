//! What an operator watches: `/metrics` parsed and moving, a separate
//! metrics listener, one log line per request with no secret in any line,
//! JSON logs, and `hearth healthcheck`.

use std::process::Command;

use serde_json::{json, Value};

use crate::harness::{metric, TestServer};

#[tokio::test]
async fn metrics_count_what_happens() {
    let s = TestServer::spawn_with(&[("HEARTH_SIGNUP_BURST", "3")]).await;
    let url = s.url("/metrics");
    let before = s.scrape(&url).await;
    assert_eq!(metric(&before, "hearth_messages_stored_total"), 0.0);
    assert_eq!(metric(&before, "hearth_websocket_connections"), 0.0);

    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = s.room(&alice, "general").await;
    s.join(&bob, &room).await;
    let mut a = s.ws(&alice).await;
    let mut b = s.ws(&bob).await;
    a.hello(None).await;
    b.hello(None).await;
    for i in 0..5 {
        a.send(&room, &format!("c{i}"), "hello").await;
        a.expect("ack").await;
    }
    for _ in 0..5 {
        b.expect("message").await;
    }
    // Signups are limited to 3 in a burst here: the fourth is refused.
    for name in ["carol", "dave"] {
        s.post(
            "/api/v1/signup",
            None,
            json!({"username": name, "email": format!("{name}@example.com"), "password": "password-123"}),
        )
        .await;
    }

    let after = s.scrape(&url).await;
    assert_eq!(metric(&after, "hearth_messages_stored_total"), 5.0);
    assert_eq!(
        metric(&after, "hearth_deliveries_total"),
        10.0,
        "5 messages to 2 sockets"
    );
    assert_eq!(metric(&after, "hearth_websocket_connections"), 2.0);
    assert!(metric(&after, "hearth_commit_groups_total") >= 1.0);
    assert!(metric(&after, "hearth_commit_batch_size_count") >= 1.0);
    assert_eq!(metric(&after, "hearth_commit_batch_size_sum"), 5.0);
    assert!(metric(&after, "hearth_commit_flush_duration_seconds_count") >= 1.0);
    assert!(
        metric(&after, "hearth_http_connections") >= 1.0,
        "this scrape's own"
    );
    assert_eq!(metric(&after, "hearth_users"), 3.0);
    assert_eq!(metric(&after, "hearth_rooms"), 1.0);
    assert_eq!(
        metric(&after, r#"hearth_rate_limited_total{limit="signup"}"#),
        1.0
    );
    assert_eq!(metric(&after, "hearth_queue_full_disconnects_total"), 0.0);
    let signups =
        r#"hearth_http_request_duration_seconds_count{route="/api/v1/signup",status="2xx"}"#;
    assert_eq!(metric(&after, signups), 3.0);
    let limited =
        r#"hearth_http_request_duration_seconds_count{route="/api/v1/signup",status="4xx"}"#;
    assert_eq!(metric(&after, limited), 1.0);

    // Unknown paths share one label value, so scanners cannot grow the set.
    for i in 0..20 {
        s.get(&format!("/api/v1/nothing-{i}"), None).await;
    }
    let scanned = s.scrape(&url).await;
    let unknown = r#"hearth_http_request_duration_seconds_count{route="unknown",status="4xx"}"#;
    assert_eq!(metric(&scanned, unknown), 20.0);
    assert!(!scanned.keys().any(|k| k.contains("nothing-")));
}

#[tokio::test]
async fn metrics_can_have_their_own_listener() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let at = format!("127.0.0.1:{port}");
    let s = TestServer::spawn_with(&[("HEARTH_METRICS_LISTEN", &at)]).await;
    let (status, _) = s.get("/metrics", None).await;
    assert_eq!(status, 404, "not on the public listener");
    let m = s.scrape(&format!("http://{at}/metrics")).await;
    assert_eq!(metric(&m, "hearth_users"), 0.0);
    let health = s
        .http
        .get(format!("http://{at}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);

    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("healthcheck")
        .env("HEARTH_METRICS_LISTEN", &at)
        .output()
        .expect("run healthcheck");
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test]
async fn one_log_line_per_request_and_never_a_secret() {
    let s = TestServer::spawn_logged(&[("HEARTH_LOG_LEVEL", "debug")]).await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    s.say(&alice, &room, "hi", Some("c-1")).await;
    let mut ws = s.ws(&alice).await;
    ws.hello(None).await;
    ws.send(&room, "c-2", "over the socket").await;
    ws.expect("ack").await;
    // A token in a query string must not reach the log either.
    s.get(&format!("/api/v1/me?token={}", alice.token), None)
        .await;
    let (status, _) = s
        .post("/api/v1/logout", Some(&alice.token), json!({}))
        .await;
    assert_eq!(status, 204);
    drop(ws);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let log = s.log_holding("route=\"/api/v1/logout\"").await;
    let requests: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("HTTP request."))
        .collect();
    for route in [
        "/api/v1/signup",
        "/api/v1/login",
        "/api/v1/logout",
        "/api/v1/ws",
    ] {
        assert!(
            requests
                .iter()
                .any(|l| l.contains(&format!("route=\"{route}\"")) && l.contains("status=")),
            "no request line for {route} in:\n{log}"
        );
    }
    assert!(requests
        .iter()
        .all(|l| l.contains("micros=") && l.contains("method=")));
    for secret in [alice.token.as_str(), "password-alice"] {
        assert!(
            !log.contains(secret),
            "the log contains a secret {secret:?}:\n{log}"
        );
    }
}

/// Lines at `info` wait in a buffer for at most 0.1 s; a stop writes
/// whatever is still held, up to the very last line the server logs.
#[tokio::test]
async fn a_stop_writes_every_line_still_held() {
    let mut s = TestServer::spawn_logged(&[("HEARTH_LOG_LEVEL", "info")]).await;
    let alice = s.user("alice").await;
    for _ in 0..20 {
        s.get("/api/v1/me", Some(&alice.token)).await;
    }
    let (status, _) = s.terminate();
    assert!(status.success(), "{status:?}");
    let log = s.log();
    let me = log
        .lines()
        .filter(|l| l.contains("route=\"/api/v1/me\""))
        .count();
    assert_eq!(me, 20, "{log}");
    // Logged as `serve` returns, after the runtime has stopped.
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.contains("Database prepared for a quick next start."),
        "{log}"
    );
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let s =
        TestServer::spawn_logged(&[("HEARTH_LOG_LEVEL", "info"), ("HEARTH_LOG_FORMAT", "json")])
            .await;
    let alice = s.user("alice").await;
    s.get("/api/v1/me", Some(&alice.token)).await;
    let log = s.log_holding("/api/v1/me").await;
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let me = lines
        .iter()
        .find(|l| l["fields"]["route"] == "/api/v1/me")
        .unwrap_or_else(|| panic!("no request line for /api/v1/me:\n{log}"));
    assert_eq!(me["fields"]["status"], 200);
    assert_eq!(me["fields"]["method"], "GET");
    assert!(me["fields"]["micros"].is_u64());
}

#[tokio::test]
async fn healthcheck_exits_by_whether_the_server_answers() {
    let s = TestServer::spawn().await;
    let check = |addr: &str| {
        Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["healthcheck", "--timeout", "3"])
            .env("HEARTH_LISTEN", addr)
            .output()
            .expect("run healthcheck")
    };
    let up = check(&s.addr);
    assert!(up.status.success(), "{up:?}");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let down = check(&format!("127.0.0.1:{port}"));
    assert_eq!(down.status.code(), Some(1), "{down:?}");
}

#[tokio::test]
async fn a_stalled_reader_is_counted_as_a_queue_full_disconnect() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let s = TestServer::spawn_with(&[
        ("HEARTH_OUTBOUND_QUEUE_FRAMES", "64"),
        ("HEARTH_MAX_FRAMES_PER_SEC", "100000"),
    ])
    .await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = s.room(&alice, "general").await;
    s.join(&bob, &room).await;

    // Bob's socket has a tiny receive buffer and is never read after hello.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let tcp = socket
        .connect(s.addr.parse().expect("addr"))
        .await
        .expect("connect");
    let mut req = s.ws_url().into_client_request().expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", bob.token).parse().expect("header"),
    );
    let (mut stalled, _) = tokio_tungstenite::client_async(req, tcp)
        .await
        .expect("bob connects");
    stalled
        .send(Message::Text(json!({"type": "hello"}).to_string()))
        .await
        .expect("hello");

    // Alice floods the room in bursts of 20 (40 frames back to her, within
    // her own queue of 64), reading her acks so only Bob falls behind.
    let mut a = s.ws(&alice).await;
    a.hello(None).await;
    let body = "x".repeat(3000);
    let url = s.url("/metrics");
    let mut cut = false;
    for batch in 0..150 {
        for i in 0..20 {
            a.send(&room, &format!("f{batch}-{i}"), &body).await;
        }
        for _ in 0..20 {
            a.expect("ack").await;
        }
        let m = s.scrape(&url).await;
        if metric(&m, "hearth_queue_full_disconnects_total") >= 1.0 {
            cut = true;
            break;
        }
    }
    assert!(cut, "a reader that never reads was not cut off");
    drop(stalled);
}

#[tokio::test]
async fn the_runtime_has_as_many_threads_as_workers_says() {
    let s = TestServer::spawn_with(&[("HEARTH_WORKERS", "3")]).await;
    let m = s.scrape(&s.url("/metrics")).await;
    assert_eq!(metric(&m, "hearth_runtime_workers"), 3.0);
    // And it serves on them: a message goes round through a socket.
    let ana = s.user("ana").await;
    let room = s.room(&ana, "threads").await;
    let mut ws = s.ws(&ana).await;
    ws.hello(None).await;
    ws.send(&room, "t1", "on three threads").await;
    ws.expect("ack").await;
    assert_eq!(
        ws.expect("message").await["message"]["body"],
        "on three threads"
    );

    // Unset: one per CPU the server may use.
    let auto = TestServer::spawn().await;
    let m = auto.scrape(&auto.url("/metrics")).await;
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(metric(&m, "hearth_runtime_workers"), cpus as f64);
}
