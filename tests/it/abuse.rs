//! Accounts under attack: guessing, floods of logins, signups and sends,
//! stolen or revoked sessions, and users reaching into rooms they are not in.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::harness::{Auth, RawWs, TestServer, User};

/// Signs up without logging in, so per-IP login budgets stay untouched.
async fn signup_only(s: &TestServer, name: &str) {
    let (status, body) = s
        .post_until_not_busy(
            "/api/v1/signup",
            json!({"username": name, "email": format!("{name}@example.com"), "password": format!("password-{name}")}),
        )
        .await;
    assert_eq!(status, 201, "signup {name}: {body}");
}

/// One login from `http`: status, Retry-After, body, and how long it took.
async fn login_with(
    s: &TestServer,
    http: &reqwest::Client,
    login: &str,
    password: &str,
) -> (u16, Option<String>, Value, Duration) {
    let started = Instant::now();
    let resp = http
        .post(s.url("/api/v1/login"))
        .json(&json!({"login": login, "password": password}))
        .send()
        .await
        .expect("login request");
    let took = started.elapsed();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, retry, body, took)
}

#[tokio::test]
async fn unknown_user_and_wrong_password_answer_alike_and_take_as_long() {
    let s = TestServer::spawn().await;
    // One wrong guess per real account, so per-account delays never start.
    for i in 0..16 {
        signup_only(&s, &format!("dave{i}")).await;
    }
    let http = s.http.clone();
    // Warm up both paths (first hash, connection set-up).
    login_with(&s, &http, "dave15", "warm-up-1").await;
    login_with(&s, &http, "nobody", "warm-up-2").await;

    let (mut wrong, mut unknown) = (Vec::new(), Vec::new());
    let mut answers = std::collections::HashSet::new();
    // Interleaved, so a slow moment of the shared machine hits both alike.
    for i in 0..15 {
        let (st, _, body, took) = login_with(&s, &http, &format!("dave{i}"), "guess").await;
        answers.insert(format!("{st} {body}"));
        wrong.push(took);
        let (st, _, body, took) = login_with(&s, &http, &format!("nobody{i}"), "guess").await;
        answers.insert(format!("{st} {body}"));
        unknown.push(took);
    }
    // By email too: a known address and an unknown one.
    let (st, _, body, _) = login_with(&s, &http, "dave1@example.com", "guess").await;
    answers.insert(format!("{st} {body}"));
    let (st, _, body, _) = login_with(&s, &http, "nobody@example.com", "guess").await;
    answers.insert(format!("{st} {body}"));
    assert_eq!(
        answers.len(),
        1,
        "unknown user and wrong password must get one identical answer: {answers:?}"
    );
    let only = answers.into_iter().next().expect("one answer");
    assert!(only.starts_with("401 "), "{only}");
    assert!(only.contains("invalid_credentials"), "{only}");

    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (w, u) = (median(&mut wrong), median(&mut unknown));
    let ratio = u.as_secs_f64() / w.as_secs_f64();
    println!(
        "login timing: wrong password median {w:?}, unknown user median {u:?}, ratio {ratio:.2}"
    );
    assert!(
        (0.5..=2.0).contains(&ratio),
        "timing tells unknown users apart: wrong password {w:?}, unknown user {u:?}"
    );
}

#[tokio::test]
async fn login_attempts_per_ip_are_limited_with_retry_after() {
    // The default: 10 attempts a minute per IP.
    let s = TestServer::spawn_with(&[("HEARTH_LOGIN_PER_MINUTE", "10")]).await;
    signup_only(&s, "erin").await;
    let here = s.http_from("127.0.0.1");
    // Ten attempts at ten different names: only the per-IP limit counts them.
    // One more comes back every 6 s; on a loaded machine the ten hashes can
    // take that long, so attempts go on until the first refusal, and there
    // may be one more allowed per 6 s they took.
    let started = Instant::now();
    let mut allowed = 0;
    loop {
        let (status, _, body, _) = login_with(&s, &here, &format!("guess{allowed}"), "wrong").await;
        if status == 429 {
            break;
        }
        // An attempt the hashing queue had no room for spent its budget too.
        let busy = status == 503 && body["error"]["code"] == "busy";
        assert!(status == 401 || busy, "attempt {allowed}: {status} {body}");
        allowed += 1;
        let refilled = started.elapsed().as_secs() / 6;
        assert!(
            allowed <= 10 + refilled + 1,
            "{allowed} attempts in {:?} and none refused",
            started.elapsed()
        );
    }
    assert!(allowed >= 10, "refused after only {allowed} attempts");
    // Once refused, every attempt is, before the password is even checked,
    // right or wrong.
    for password in ["wrong-again", "password-erin"] {
        let (status, retry, body, _) = login_with(&s, &here, "erin", password).await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
        let secs: u64 = retry
            .as_deref()
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("a 429 says when to retry: {retry:?}"));
        assert!((1..=60).contains(&secs), "Retry-After {secs}");
    }
    // The limit is per address: Erin logs in from another one.
    let elsewhere = s.http_from("127.0.0.2");
    let (status, _, body, _) = login_with(&s, &elsewhere, "erin", "password-erin").await;
    assert_eq!(status, 200, "another address is not throttled: {body}");
}

#[tokio::test]
async fn signups_from_one_ip_are_limited_after_a_burst() {
    // The default burst of 20, then one per 60 s (the default refill is
    // 10 s: on a loaded machine 20 password hashes can take longer than
    // that, and a refilled token would let the 21st through).
    let s = TestServer::spawn_with(&[
        ("HEARTH_SIGNUP_BURST", "20"),
        ("HEARTH_SIGNUP_REFILL_SECS", "60"),
    ])
    .await;
    let here = s.http_from("127.0.0.1");
    let signup = |http: reqwest::Client, name: String| {
        let url = s.url("/api/v1/signup");
        async move {
            let resp = http
                .post(url)
                .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": "long enough"}))
                .send()
                .await
                .expect("signup");
            let status = resp.status().as_u16();
            let retry = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            (status, retry)
        }
    };
    for i in 0..20 {
        let (status, _) = signup(here.clone(), format!("burst{i}")).await;
        assert_eq!(status, 201, "signup {i} of the burst");
    }
    let (status, retry) = signup(here.clone(), "one-too-many".into()).await;
    assert_eq!(status, 429, "the 21st signup from one address");
    assert!(
        retry.is_some_and(|r| (1..=60).contains(&r)),
        "Retry-After within the 60 s refill: {retry:?}"
    );
    let (status, _) = signup(s.http_from("127.0.0.2"), "from-elsewhere".into()).await;
    assert_eq!(status, 201, "another address may still sign up");
}

#[tokio::test]
async fn session_tokens_are_256_bit_fresh_per_login_and_die_with_logout() {
    let s = TestServer::spawn().await;
    signup_only(&s, "fay").await;
    let mut tokens = std::collections::HashSet::new();
    for _ in 0..5 {
        let u = s.login("fay", "password-fay").await;
        assert_eq!(
            u.token.len(),
            43,
            "256 bits in unpadded base64url: {}",
            u.token
        );
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&u.token)
            .expect("base64url");
        assert_eq!(bytes.len(), 32);
        assert!(tokens.insert(u.token), "every login gets a new token");
    }

    let phone = s.login("fay", "password-fay").await;
    let laptop = s.login("fay", "password-fay").await;
    let room = s.room(&phone, "notes").await;
    let mut phone_a = s.ws(&phone).await;
    let mut phone_b = s.ws(&phone).await;
    let mut laptop_ws = s.ws(&laptop).await;
    for ws in [&mut phone_a, &mut phone_b, &mut laptop_ws] {
        ws.hello(None).await;
    }

    let logged_out = Instant::now();
    let (status, _) = s
        .post("/api/v1/logout", Some(&phone.token), json!({}))
        .await;
    assert_eq!(status, 204);
    for (name, ws) in [("first", &mut phone_a), ("second", &mut phone_b)] {
        let code = ws.close_code().await;
        assert_eq!(code, Some(4001), "the {name} socket of the revoked session");
    }
    let took = logged_out.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "sockets closed {took:?} after logout"
    );

    let (status, _) = s.get("/api/v1/me", Some(&phone.token)).await;
    assert_eq!(status, 401, "the revoked token is dead");
    let refused = s
        .ws_raw_headers(&[("authorization", &format!("Bearer {}", phone.token))])
        .await
        .err()
        .map(|(status, _)| status);
    assert_eq!(refused, Some(401), "no new socket on a revoked token");
    // The other session, and its socket, live on.
    let (status, _) = s.get("/api/v1/me", Some(&laptop.token)).await;
    assert_eq!(status, 200);
    laptop_ws.assert_usable(&room, "after-logout").await;
}

#[tokio::test]
async fn repeated_failures_on_one_account_get_growing_delays_per_address() {
    let s = TestServer::spawn().await;
    signup_only(&s, "gus").await;
    let attacker = s.http_from("127.0.0.2");
    // Three failures in a row are free.
    for i in 0..3 {
        let (status, _, body, _) = login_with(&s, &attacker, "gus", &format!("w{i}")).await;
        assert_eq!(status, 401, "failure {i}: {body}");
    }
    // Then each further attempt must wait, longer each time (1 s, then 2 s):
    // measure how long each refusal lasts by trying every 100 ms.
    let mut waits = Vec::new();
    for round in 0..2 {
        let refused_at = Instant::now();
        let (status, retry, body, _) = login_with(&s, &attacker, "gus", "right-or-wrong").await;
        assert_eq!(status, 429, "round {round}: {body}");
        assert!(retry.is_some(), "a 429 says when to retry");
        let deadline = refused_at + Duration::from_secs(10);
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let (status, _, body, _) = login_with(&s, &attacker, "gus", "still wrong").await;
            if status == 401 {
                break;
            }
            assert_eq!(status, 429, "{body}");
            assert!(Instant::now() < deadline, "still refused after 10 s");
        }
        waits.push(refused_at.elapsed());
    }
    assert!(
        waits[0] >= Duration::from_millis(700) && waits[1] > waits[0],
        "delays must grow: {waits:?}"
    );
    // The owner, on another address, is not slowed down at all.
    let owner = s.http_from("127.0.0.1");
    let (status, _, body, _) = login_with(&s, &owner, "gus", "password-gus").await;
    assert_eq!(status, 200, "the owner is not locked out: {body}");
}

#[tokio::test]
async fn retry_after_is_never_shorter_than_the_wait() {
    let s = TestServer::spawn().await;
    signup_only(&s, "kim").await;
    let attacker = s.http_from("127.0.0.2");
    for i in 0..3 {
        let (status, _, body, _) = login_with(&s, &attacker, "kim", &format!("w{i}")).await;
        assert_eq!(status, 401, "attempt {i}: {body}");
    }
    // The third failure started a 1 s delay; after it, a fourth starts 2 s.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _, body, _) = login_with(&s, &attacker, "kim", "w3").await;
    assert_eq!(status, 401, "{body}");
    let (status, retry, body, _) = login_with(&s, &attacker, "kim", "again").await;
    assert_eq!(status, 429, "{body}");
    let secs: u64 = retry.and_then(|r| r.parse().ok()).expect("Retry-After");
    tokio::time::sleep(Duration::from_secs(secs) + Duration::from_millis(50)).await;
    let (status, _, body, _) = login_with(&s, &attacker, "kim", "after waiting").await;
    assert_eq!(
        status, 401,
        "waited the {secs} s Retry-After said, still refused: {body}"
    );
}

#[tokio::test]
async fn the_hourly_failure_budget_spares_addresses_that_logged_in_before() {
    // A small budget keeps the test short; the default is 100.
    let s = TestServer::spawn_with(&[("HEARTH_LOGIN_FAILURES_PER_HOUR", "12")]).await;
    signup_only(&s, "hana").await;
    let home = s.http_from("127.0.0.1");
    let (status, _, _, _) = login_with(&s, &home, "hana", "password-hana").await;
    assert_eq!(status, 200, "Hana logs in from home once");

    // Guessers on four addresses, three failures each (under the delays).
    for a in 0..4 {
        let ip = format!("127.0.1.{}", a + 1);
        let guesser = s.http_from(&ip);
        for i in 0..3 {
            let (status, _, body, _) = login_with(&s, &guesser, "hana", &format!("g{a}{i}")).await;
            assert_eq!(status, 401, "{ip} guess {i}: {body}");
        }
    }
    // The budget is spent: a new address is refused even with the right password...
    let stranger = s.http_from("127.0.1.99");
    let (status, retry, body, _) = login_with(&s, &stranger, "hana", "password-hana").await;
    assert_eq!(status, 429, "{body}");
    assert!(
        retry
            .and_then(|r| r.parse::<u64>().ok())
            .is_some_and(|r| r <= 3600),
        "Retry-After within the hour"
    );
    // ...but Hana, from where she logged in before, still gets in.
    let (status, _, body, _) = login_with(&s, &home, "hana", "password-hana").await;
    assert_eq!(status, 200, "the owner is not locked out: {body}");
}

#[tokio::test]
async fn a_password_change_ends_every_other_session_and_its_sockets() {
    let s = TestServer::spawn().await;
    signup_only(&s, "ivy").await;
    let here = s.login("ivy", "password-ivy").await;
    let there = s.login("ivy", "password-ivy").await;
    let room = s.room(&here, "diary").await;
    let mut here_ws = s.ws(&here).await;
    let mut there_ws = s.ws(&there).await;
    here_ws.hello(None).await;
    there_ws.hello(None).await;

    let (status, body) = s
        .post(
            "/api/v1/me/password",
            Some(&here.token),
            json!({"current_password": "password-ivy", "new_password": "a brand new one"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    // From the answer: hashing the new password (idle CPU only) may take
    // a while on a loaded machine; the sockets must end once it is done.
    let changed = Instant::now();
    assert_eq!(
        there_ws.close_code().await,
        Some(4001),
        "the other session's socket"
    );
    let took = changed.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "closed {took:?} after the change"
    );
    let (status, _) = s.get("/api/v1/me", Some(&there.token)).await;
    assert_eq!(status, 401, "the other session is revoked");
    let (status, _) = s.get("/api/v1/me", Some(&here.token)).await;
    assert_eq!(status, 200, "the session that changed it lives on");
    here_ws.assert_usable(&room, "after-change").await;
    let (status, _, _, _) = login_with(&s, &s.http, "ivy", "password-ivy").await;
    assert_eq!(status, 401, "the old password is dead");
    s.login("ivy", "a brand new one").await;
}

#[tokio::test]
async fn deleting_an_account_closes_its_sockets_at_once() {
    let s = TestServer::spawn().await;
    signup_only(&s, "jay").await;
    let jay = s.login("jay", "password-jay").await;
    let mut ws = s.ws(&jay).await;
    ws.hello(None).await;
    let (status, body) = s
        .delete(
            "/api/v1/me",
            Some(&jay.token),
            json!({"password": "password-jay"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    // From the answer, not the request: checking the password first takes
    // what idle-class hashing gets of a busy machine.
    let started = Instant::now();
    assert_eq!(ws.close_code().await, Some(4001));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "closed {:?} after",
        started.elapsed()
    );
}

/// Runs `hearth ARGS` against the running server (over its admin socket in
/// the data directory); returns what it printed.
async fn admin_cli(s: &TestServer, args: &[&str]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .arg("--data")
        .arg(s.data_dir())
        .env_remove("HEARTH_CONFIG")
        .output()
        .await
        .expect("run hearth");
    assert!(
        out.status.success(),
        "hearth {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Bob, on two devices with four sockets (one not yet past its upgrade's
/// `hello`), is revoked by an administrator running `hearth user ACTION
/// bob`. Every one of his sockets closes with 4001 within a second, his
/// tokens stop working, and Alice, in the same room, is untouched. Returns
/// the room and Alice.
async fn revoke_bob_from_the_cli(s: &TestServer, action: &str) -> (String, User) {
    let alice = s.user("alice").await;
    signup_only(s, "bob").await;
    let phone = s.login("bob", "password-bob").await;
    let laptop = s.login("bob", "password-bob").await;
    let room = s.room(&alice, "team").await;
    s.join(&phone, &room).await;
    let mut alice_ws = s.ws(&alice).await;
    alice_ws.hello(None).await;
    let mut sockets = Vec::new();
    for (name, user, greet) in [
        ("phone 1", &phone, true),
        ("phone 2", &phone, true),
        ("laptop", &laptop, true),
        ("laptop, before hello", &laptop, false),
    ] {
        let mut ws = s.ws(user).await;
        if greet {
            ws.hello(None).await;
        }
        sockets.push((name, ws));
    }
    // Each socket waits for its close on its own, so the time is the
    // server's, not the order the test reads them in.
    let mut closes = tokio::task::JoinSet::new();
    for (name, mut ws) in sockets {
        closes.spawn(async move {
            let code = ws.close_code().await;
            (name, code, Instant::now())
        });
    }

    let started = Instant::now();
    let said = admin_cli(s, &["user", action, "bob"]).await;
    println!(
        "hearth user {action} bob: {said:?} in {:?}",
        started.elapsed()
    );
    while let Some(joined) = closes.join_next().await {
        let (name, code, at) = joined.expect("socket task");
        let took = at.duration_since(started);
        assert_eq!(
            code,
            Some(4001),
            "Bob's {name} socket after `user {action}`"
        );
        assert!(
            took < Duration::from_secs(1),
            "Bob's {name} socket closed {took:?} after `user {action}` started"
        );
    }

    for (device, token) in [("phone", &phone.token), ("laptop", &laptop.token)] {
        let (status, _) = s.get("/api/v1/me", Some(token)).await;
        assert_eq!(status, 401, "Bob's {device} token after `user {action}`");
        let (status, _) = s
            .post(
                &format!("/api/v1/rooms/{room}/messages"),
                Some(token),
                json!({"body": "still here?"}),
            )
            .await;
        assert_eq!(status, 401, "Bob's {device} token may not post");
        let refused = s
            .ws_raw_headers(&[("authorization", &format!("Bearer {token}"))])
            .await
            .err()
            .map(|(status, _)| status);
        assert_eq!(refused, Some(401), "no new socket on Bob's {device} token");
    }
    alice_ws
        .assert_usable(&room, &format!("after-{action}"))
        .await;
    (room, alice)
}

#[tokio::test]
async fn disabling_an_account_from_the_cli_ends_its_sockets_and_tokens_at_once() {
    let s = TestServer::spawn().await;
    revoke_bob_from_the_cli(&s, "disable").await;
    let (status, body) = s
        .post(
            "/api/v1/login",
            None,
            json!({"login": "bob", "password": "password-bob"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("account_disabled")),
        "a disabled account cannot log in again: {body}"
    );
}

#[tokio::test]
async fn deleting_an_account_from_the_cli_ends_its_sockets_and_tokens_at_once() {
    let s = TestServer::spawn().await;
    let (room, alice) = revoke_bob_from_the_cli(&s, "delete").await;
    let (status, body) = s
        .get(&format!("/api/v1/rooms/{room}/members"), Some(&alice.token))
        .await;
    assert_eq!(status, 200, "{body}");
    // Whether alice still counts as online depends on how soon the server
    // notices her dropped socket, which is not what this test is about.
    let mut members = body["members"].clone();
    for m in members.as_array_mut().expect("members") {
        m.as_object_mut().expect("member").remove("online");
    }
    assert_eq!(
        members,
        json!([{"id": alice.id, "username": "alice", "display_name": null, "avatar": null, "role": "owner"}]),
        "a deleted account leaves its rooms"
    );
}

/// Every route that needs a session, with a body that would otherwise do.
fn protected_routes(room: &str) -> Vec<(&'static str, String, Value)> {
    vec![
        ("GET", "/api/v1/me".into(), Value::Null),
        (
            "DELETE",
            "/api/v1/me".into(),
            json!({"password": "password-alice"}),
        ),
        ("POST", "/api/v1/logout".into(), json!({})),
        ("GET", "/api/v1/rooms".into(), Value::Null),
        ("POST", "/api/v1/rooms".into(), json!({"name": "intruders"})),
        ("GET", format!("/api/v1/rooms/{room}"), Value::Null),
        ("POST", format!("/api/v1/rooms/{room}/join"), json!({})),
        ("POST", format!("/api/v1/rooms/{room}/leave"), json!({})),
        ("GET", format!("/api/v1/rooms/{room}/members"), Value::Null),
        ("GET", format!("/api/v1/rooms/{room}/messages"), Value::Null),
        (
            "POST",
            format!("/api/v1/rooms/{room}/messages"),
            json!({"body": "let me in"}),
        ),
    ]
}

#[tokio::test]
async fn every_route_refuses_a_missing_garbage_or_revoked_session() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "private").await;
    let revoked = s.login("alice", "password-alice").await;
    let (status, _) = s
        .post("/api/v1/logout", Some(&revoked.token), json!({}))
        .await;
    assert_eq!(status, 204);
    let garbage = "A".repeat(43);

    for (method, path, body) in protected_routes(&room) {
        for (who, auth) in [
            ("no credentials", Auth::Anonymous),
            ("a made-up token", Auth::Bearer(&garbage)),
            ("a revoked token", Auth::Bearer(&revoked.token)),
            ("a revoked cookie", Auth::Cookie(&revoked.token)),
            ("a malformed header", Auth::Bearer("")),
        ] {
            let mut call = s.call(method, &path).auth(auth);
            if !body.is_null() {
                call = call.json(body.clone());
            }
            let reply = call.send().await;
            assert_eq!(
                (reply.status, reply.body["error"]["code"].as_str()),
                (401, Some("unauthenticated")),
                "{method} {path} with {who}: {:?}",
                reply.body
            );
        }
        // A valid cookie from a foreign page may not change anything.
        if method != "GET" {
            let reply = s
                .call(method, &path)
                .auth(Auth::Cookie(&alice.token))
                .header("origin", "https://evil.example")
                .json(body.clone())
                .send()
                .await;
            reply.assert_error(403, "bad_origin");
        }
    }
    for token in [garbage.as_str(), revoked.token.as_str()] {
        let refused = s
            .ws_raw_headers(&[("authorization", &format!("Bearer {token}"))])
            .await
            .err()
            .map(|(status, _)| status);
        assert_eq!(refused, Some(401), "WebSocket upgrade with a bad token");
    }
    assert_eq!(
        s.ws_raw_headers(&[]).await.err().map(|(st, _)| st),
        Some(401),
        "WebSocket upgrade with no token"
    );
    // Alice's account and room are untouched by all of it.
    let (status, _) = s.get("/api/v1/me", Some(&alice.token)).await;
    assert_eq!(status, 200);
    assert!(s.history(&alice, &room).await.is_empty());
}

#[tokio::test]
async fn a_non_member_can_neither_read_post_list_nor_receive() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let mallory = s.user("mallory").await;
    let room = s.room(&alice, "private").await;
    s.say(&alice, &room, "secret", Some("s1")).await;

    for (method, path, body) in [
        ("GET", format!("/api/v1/rooms/{room}/messages"), Value::Null),
        (
            "GET",
            format!("/api/v1/rooms/{room}/messages?after=0"),
            Value::Null,
        ),
        (
            "GET",
            format!("/api/v1/rooms/{room}/messages?before=99"),
            Value::Null,
        ),
        ("GET", format!("/api/v1/rooms/{room}/members"), Value::Null),
        (
            "POST",
            format!("/api/v1/rooms/{room}/messages"),
            json!({"body": "sneaky", "client_id": "m1"}),
        ),
    ] {
        let mut call = s.call(method, &path).auth(Auth::Bearer(&mallory.token));
        if !body.is_null() {
            call = call.json(body);
        }
        call.send().await.assert_error(403, "not_a_member");
    }

    // Over the WebSocket: no replay on resume, no send, no live delivery.
    let mut m = s.ws(&mallory).await;
    let ready = m.hello(Some(json!({ room.clone(): 0 }))).await;
    assert_eq!(ready["rooms"], json!([]), "{ready}");
    m.send(&room, "m2", "sneaky").await;
    let err = m.expect("error").await;
    assert_eq!(
        (err["code"].as_str(), err["client_id"].as_str()),
        (Some("not_a_member"), Some("m2"))
    );
    s.say(&alice, &room, "more secrets", Some("s2")).await;
    leaks_nothing(&mut m, &room).await;
    let bodies: Vec<_> = s
        .history(&alice, &room)
        .await
        .iter()
        .map(|m| m["body"].clone())
        .collect();
    assert_eq!(
        bodies,
        [json!("secret"), json!("more secrets")],
        "nothing of Mallory's got in"
    );

    // A member who leaves stops receiving at once and loses read access.
    let bob = s.user("bob").await;
    s.join(&bob, &room).await;
    let mut b = s.ws(&bob).await;
    b.hello(None).await;
    let (status, _) = s
        .post(
            &format!("/api/v1/rooms/{room}/leave"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(b.expect("left").await["room"], json!(room));
    s.say(&alice, &room, "after bob left", Some("s3")).await;
    leaks_nothing(&mut b, &room).await;
    s.call("GET", &format!("/api/v1/rooms/{room}/messages"))
        .auth(Auth::Bearer(&bob.token))
        .send()
        .await
        .assert_error(403, "not_a_member");
}

/// Reads for a second and fails on any frame that carries `room`'s messages.
async fn leaks_nothing(ws: &mut crate::harness::Ws, room: &str) {
    while let Some(f) = ws.next_within(Duration::from_secs(1)).await {
        assert!(
            f["type"] != "message" && f["message"]["room"] != json!(room),
            "a non-member received a message of the room: {f}"
        );
    }
}

/// A raw WebSocket of `user` that has said hello and got `ready`.
async fn greeted_raw(s: &TestServer, user: &User) -> RawWs {
    let mut raw = RawWs::connect(s, &user.token).await;
    raw.send_text(json!({"type": "hello"})).await;
    let ready = raw.next_json(Duration::from_secs(10)).await;
    assert_eq!(
        ready.as_ref().map(|r| r["type"].clone()),
        Some(json!("ready")),
        "{ready:?}"
    );
    raw
}

/// `value` as one masked text frame; sent with `send_bytes` so a write
/// after the server closed is an error to stop at, not a panic.
fn masked_text(value: &Value) -> Vec<u8> {
    let payload = value.to_string().into_bytes();
    let mask = [0x5au8, 0x13, 0xc4, 0x7e];
    let mut out = vec![0x81];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n => {
            out.push(0x80 | 126);
            out.extend_from_slice(&u16::try_from(n).expect("a small frame").to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// What one flooding socket saw: acks, `rate_limited` errors, close code.
#[derive(Debug, Default)]
struct FloodOutcome {
    acks: usize,
    limited: usize,
    code: Option<u16>,
}

async fn flood_outcome(raw: &mut RawWs) -> FloodOutcome {
    let mut out = FloodOutcome::default();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(f) = raw.next_frame(left).await else {
            return out;
        };
        if let Some(code) = f.close_code() {
            out.code = Some(code);
            return out;
        }
        if f.opcode != 0x1 {
            continue;
        }
        let v: Value = serde_json::from_slice(&f.payload).expect("json");
        match v["type"].as_str() {
            Some("ack") => out.acks += 1,
            Some("error") => {
                assert_eq!(v["code"], "rate_limited", "{v}");
                assert!(v["client_id"].is_string(), "the error names the send: {v}");
                out.limited += 1;
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn one_user_flooding_over_three_sockets_shares_one_send_budget() {
    const PER_SEC: f64 = 2.0;
    const BURST: usize = 10;
    let s =
        TestServer::spawn_with(&[("HEARTH_SEND_PER_SEC", "2"), ("HEARTH_SEND_BURST", "10")]).await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = s.room(&alice, "flooded").await;
    s.join(&bob, &room).await;
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;
    let mut floods = Vec::new();
    for _ in 0..3 {
        floods.push(greeted_raw(&s, &alice).await);
    }

    // 100 sends on each of Alice's sockets, interleaved; Bob sends one
    // message every 20 rounds, in the middle of it.
    let started = Instant::now();
    let mut open = [true; 3];
    let mut bob_sent = Vec::new();
    for i in 0..100 {
        for (n, raw) in floods.iter_mut().enumerate() {
            let f = json!({"type": "send", "room": room, "client_id": format!("a{n}-{i}"), "body": "spam"});
            open[n] = open[n] && raw.send_bytes(&masked_text(&f)).await.is_ok();
        }
        if i % 20 == 10 {
            let id = format!("bob-{i}");
            bob_ws.send(&room, &id, "business as usual").await;
            bob_sent.push(id);
        }
    }
    let flooded_for = started.elapsed();

    let mut outcomes = Vec::new();
    for raw in &mut floods {
        outcomes.push(flood_outcome(raw).await);
    }
    println!("flood over 3 sockets for {flooded_for:?}: {outcomes:?}");
    for (n, o) in outcomes.iter().enumerate() {
        assert!(
            o.limited >= 1,
            "socket {n} is told it is rate limited: {o:?}"
        );
        assert_eq!(
            o.code,
            Some(1008),
            "socket {n} is closed for sustained flooding: {o:?}"
        );
    }

    // Every socket has now been refused 50 times in a row, so the budget
    // is spent; REST draws on the same one. At most a token or two refills
    // while these four posts are made (one every 500 ms).
    let mut rest = Vec::new();
    for i in 0..4 {
        let reply = s
            .call("POST", &format!("/api/v1/rooms/{room}/messages"))
            .auth(Auth::Bearer(&alice.token))
            .json(json!({"body": "and over REST", "client_id": format!("rest-{i}")}))
            .send()
            .await;
        if reply.status == 429 {
            reply.assert_error(429, "rate_limited");
            assert!(
                reply.header("retry-after").is_some(),
                "429 with Retry-After"
            );
        }
        rest.push(reply.status);
    }
    assert!(
        rest.contains(&429),
        "REST sends share the budget the sockets spent: {rest:?}"
    );

    // Bob's sends, made during the flood, are all acked.
    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while acked.len() < bob_sent.len() && Instant::now() < deadline {
        let Some(f) = bob_ws.next().await else { break };
        assert_ne!(
            f["type"], "error",
            "Bob is not limited by Alice's flood: {f}"
        );
        if f["type"] == "ack" {
            acked.push(f["client_id"].as_str().expect("client_id").to_string());
        }
    }
    assert_eq!(acked, bob_sent, "every send of Bob's is acked");

    // The budget is Alice's, not each socket's: three sockets together
    // store one burst and what refills meanwhile, not three bursts.
    let mut stored = 0;
    for _ in 0..20 {
        stored = s
            .history(&alice, &room)
            .await
            .iter()
            .filter(|m| m["author"]["id"] == json!(alice.id))
            .count();
        if stored >= BURST {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refilled = (PER_SEC * started.elapsed().as_secs_f64()).ceil() as usize;
    let acks: usize = outcomes.iter().map(|o| o.acks).sum();
    println!("{acks} acks, {stored} of Alice's messages stored, {refilled} refilled");
    assert!(acks <= stored, "{acks} acks, {stored} stored");
    assert!(
        (BURST..=BURST + refilled + 1).contains(&stored),
        "one burst of {BURST} and {refilled} refilled, over all sockets: {stored} stored"
    );
}

/// A flood of logins is answered, never queued without bound: with one
/// hashing thread, 200 logins at once each get `200` or `503 busy` with a
/// Retry-After, all within the hashing queue's wait bound, and the server
/// keeps delivering messages meanwhile.
#[tokio::test]
async fn a_login_flood_is_answered_or_refused_promptly_never_queued() {
    let s = TestServer::spawn_with(&[("HEARTH_HASH_CONCURRENCY", "1")]).await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    let mut ws = s.ws(&alice).await;
    ws.hello(None).await;

    let started = Instant::now();
    let logins: Vec<_> = (0..200)
        .map(|_| {
            let (s, http) = (&s, s.http.clone());
            async move { login_with(s, &http, "alice", "password-alice").await }
        })
        .collect();
    let flood = futures_util::future::join_all(logins);
    tokio::pin!(flood);
    // Messages keep flowing while the logins queue.
    let mut acked = 0;
    let results = loop {
        tokio::select! {
            results = &mut flood => break results,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                let cid = format!("during-{acked}");
                ws.send(&room, &cid, "still here").await;
                ws.expect("ack").await;
                acked += 1;
            }
        }
    };
    let took = started.elapsed();
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let mut busy = 0;
    for (status, retry_after, body, _) in &results {
        match status {
            200 => {}
            503 => {
                assert_eq!(body["error"]["code"], "busy", "{body}");
                assert!(retry_after.is_some(), "503 says when to retry: {body}");
                busy += 1;
            }
            other => panic!("a login got {other}: {body}"),
        }
    }
    let slowest = results.iter().map(|r| r.3).max().expect("200 results");
    println!(
        "200 logins at once: {ok} ok, {busy} busy, slowest {slowest:?}, all in {took:?}; \
         {acked} messages acked meanwhile"
    );
    assert!(ok > 0, "no login got through");
    assert!(
        busy > 0,
        "200 logins at once fit a queue of 32: none was refused"
    );
    // The queue's bound: 2 s waiting plus 2 s hashing, and slack for a
    // debug build on a busy machine.
    assert!(
        slowest < Duration::from_secs(8),
        "a login waited {slowest:?}: queued without bound"
    );
}

/// The scheduling policy and niceness of the server's hashing threads, read
/// from `/proc`: (policy, nice) for each `hearth-hash-*` thread.
fn hash_thread_scheduling(s: &TestServer) -> Vec<(i64, i64)> {
    thread_scheduling(s, "hearth-hash-")
}

/// The (scheduling policy, niceness) of each of the server's threads whose
/// name starts with `name`.
fn thread_scheduling(s: &TestServer, name: &str) -> Vec<(i64, i64)> {
    let pid = s.pid().expect("server running");
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks") {
        let path = task.expect("task").path();
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        let Some((head, _)) = stat.rsplit_once(')') else {
            continue;
        };
        if head.contains(&format!("({name}")) {
            found.push(scheduling(&stat));
        }
    }
    found
}

/// (scheduling policy, niceness) from a `/proc/…/stat` line: after the
/// name, fields start at 3; nice is field 19, policy 41.
fn scheduling(stat: &str) -> (i64, i64) {
    let rest = stat.rsplit_once(')').expect("stat has a name").1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields[n - 3].parse::<i64>().expect("number");
    (field(41), field(19))
}

/// Password hashing runs in the idle scheduling class by default, and at
/// the lowest niceness of the normal class with `hash_on_idle_cpu = false`.
#[tokio::test]
async fn hashing_threads_run_on_idle_cpu_unless_configured_otherwise() {
    const SCHED_OTHER: i64 = 0;
    const SCHED_IDLE: i64 = 5;
    let idle = TestServer::spawn_with(&[("HEARTH_HASH_CONCURRENCY", "2")]).await;
    idle.user("alice").await;
    // On a host other programs keep busy, the hash may have raised them
    // for a moment (see the next test): they go back once it is done.
    let deadline = Instant::now() + Duration::from_secs(5);
    while hash_thread_scheduling(&idle) != vec![(SCHED_IDLE, 0); 2] && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        hash_thread_scheduling(&idle),
        vec![(SCHED_IDLE, 0); 2],
        "both hashing threads in the idle class"
    );
    let normal = TestServer::spawn_with(&[
        ("HEARTH_HASH_CONCURRENCY", "2"),
        ("HEARTH_HASH_ON_IDLE_CPU", "false"),
    ])
    .await;
    normal.user("bob").await;
    assert_eq!(
        hash_thread_scheduling(&normal),
        vec![(SCHED_OTHER, 19); 2],
        "both hashing threads at niceness 19"
    );
}

/// The group committer runs in the batch scheduling class (its wake-ups,
/// one per send on a quiet queue, do not preempt the threads reading and
/// writing sockets), at the niceness the server started with; the
/// runtime's workers stay in the normal class. A message still goes
/// through at once.
#[tokio::test]
async fn the_committer_runs_in_the_batch_class_and_the_workers_do_not() {
    const SCHED_OTHER: i64 = 0;
    const SCHED_BATCH: i64 = 3;
    // The server inherits this process's niceness (0 unless the suite
    // runs under `nice`).
    let (_, nice) = scheduling(&std::fs::read_to_string("/proc/self/stat").expect("own stat"));
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    assert_eq!(
        thread_scheduling(&s, "hearth-commit"),
        vec![(SCHED_BATCH, nice)]
    );
    let workers = thread_scheduling(&s, "hearth-worker");
    assert!(
        !workers.is_empty(),
        "the runtime's threads are named hearth-worker"
    );
    assert!(
        workers.iter().all(|w| *w == (SCHED_OTHER, nice)),
        "{workers:?}"
    );
    let room = s.room(&alice, "batch").await;
    let started = Instant::now();
    let sent = s.say(&alice, &room, "through the batch class", None).await;
    assert_eq!(sent["seq"], 1, "{sent}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "an idle server commits at once"
    );
}

/// Whether this process may raise a thread out of the idle class.
fn has_cap_sys_nice() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 23) != 0)
}

/// Other programs keeping every CPU busy starve idle-class hashing even
/// while the server itself is quiet: the starving hashes raise the hashing
/// threads to the normal class, logins are answered, and once nothing
/// waits the threads go back to the idle class.
#[tokio::test]
async fn logins_are_answered_while_other_programs_keep_every_cpu_busy() {
    const SCHED_IDLE: i64 = 5;
    if !has_cap_sys_nice() {
        eprintln!("SKIPPED: leaving the idle class needs CAP_SYS_NICE, which this test lacks");
        return;
    }
    let s = TestServer::spawn_logged(&[
        ("HEARTH_HASH_CONCURRENCY", "2"),
        ("HEARTH_LOG_LEVEL", "info"),
    ])
    .await;
    s.user("alice").await;
    // The server on one CPU, and a busy loop of another program on it for
    // at most 30 s: that CPU is busy, the server quiet. (One CPU only, so
    // the tests running beside this one keep the others.)
    let cpu = "0";
    let pid = s.pid().expect("server running").to_string();
    let pinned = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpu, &pid])
        .output()
        .expect("taskset runs");
    assert!(pinned.status.success(), "{pinned:?}");
    let mut spinner = std::process::Command::new("taskset")
        .args([
            "-c",
            cpu,
            "timeout",
            "30",
            "sh",
            "-c",
            "while :; do :; done",
        ])
        .spawn()
        .expect("a busy loop starts");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut answers = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let (status, r) = s
            .post(
                "/api/v1/login",
                None,
                json!({"login": "alice", "password": "password-alice"}),
            )
            .await;
        answers.push((status, started.elapsed(), r));
    }
    // TERM, which `timeout` passes on to the loop (a KILL would orphan it).
    crate::harness::unsafe_free_kill(spinner.id(), "TERM");
    let _ = spinner.wait();
    for (status, took, r) in &answers {
        assert_eq!(*status, 200, "a login on a busy host took {took:?}: {r}");
    }
    let log = s
        .log_holding("Password hashes starve while this server is quiet")
        .await;
    assert!(
        log.contains("Password hashes starve while this server is quiet"),
        "{log}"
    );
    // Nothing waits any more: both threads are idle-class again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let policies = hash_thread_scheduling(&s);
        if policies == [(SCHED_IDLE, 0); 2] {
            break;
        }
        assert!(Instant::now() < deadline, "still raised: {policies:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
