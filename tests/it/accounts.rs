//! Sign-up, log-in, sessions and account deletion.

use std::time::Duration;

use serde_json::json;

use crate::harness::{RawWs, TestServer, FRAME_WAIT};

#[tokio::test]
async fn signup_login_me_logout() {
    let s = TestServer::spawn().await;
    let (status, body) = s
        .post(
            "/api/v1/signup",
            None,
            json!({"username": "Alice", "email": "alice@example.com", "password": "correct horse"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"]["username"], "Alice");
    assert!(body["user"]["id"].is_string() && body["user"]["created_at"].is_string());

    let alice = s.login("alice@EXAMPLE.com", "correct horse").await;
    let (status, me) = s.get("/api/v1/me", Some(&alice.token)).await;
    assert_eq!(status, 200);
    assert_eq!(me["user"]["id"], json!(alice.id));

    let (status, _) = s
        .post("/api/v1/logout", Some(&alice.token), json!({}))
        .await;
    assert_eq!(status, 204);
    let (status, err) = s.get("/api/v1/me", Some(&alice.token)).await;
    assert_eq!(status, 401);
    assert_eq!(err["error"]["code"], "unauthenticated");
}

#[tokio::test]
async fn signup_rejects_bad_and_taken_names() {
    let s = TestServer::spawn().await;
    s.user("bob").await;
    let cases = [
        (
            json!({"username": "BOB", "email": "x@example.com", "password": "password1"}),
            409,
            "username_taken",
        ),
        (
            json!({"username": "bob2", "email": "BOB@example.com", "password": "password1"}),
            409,
            "email_taken",
        ),
        (
            json!({"username": "b", "email": "y@example.com", "password": "password1"}),
            400,
            "invalid_username",
        ),
        (
            json!({"username": "has space", "email": "y@example.com", "password": "password1"}),
            400,
            "invalid_username",
        ),
        (
            json!({"username": "carol", "email": "not-an-email", "password": "password1"}),
            400,
            "invalid_email",
        ),
        (
            json!({"username": "carol", "email": "c@example.com", "password": "short"}),
            400,
            "invalid_password",
        ),
        (
            json!({"username": "carol", "email": "c@example.com", "password": "x".repeat(1025)}),
            400,
            "invalid_password",
        ),
        (json!({"username": "carol"}), 400, "invalid_request"),
    ];
    for (body, status, code) in cases {
        let (got, resp) = s.post("/api/v1/signup", None, body.clone()).await;
        assert_eq!(
            (got, resp["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        assert!(resp["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let s = TestServer::spawn().await;
    s.user("dave").await;
    let (a, wrong) = s
        .post(
            "/api/v1/login",
            None,
            json!({"login": "dave", "password": "nope-nope"}),
        )
        .await;
    let (b, unknown) = s
        .post(
            "/api/v1/login",
            None,
            json!({"login": "nobody", "password": "nope-nope"}),
        )
        .await;
    assert_eq!((a, b), (401, 401));
    assert_eq!(wrong, unknown);
    assert_eq!(wrong["error"]["code"], "invalid_credentials");
}

#[tokio::test]
async fn sessions_survive_a_restart() {
    let mut s = TestServer::spawn().await;
    let erin = s.user("erin").await;
    s.terminate();
    s.restart();
    let (status, me) = s.get("/api/v1/me", Some(&erin.token)).await;
    assert_eq!(status, 200, "{me}");
}

#[tokio::test]
async fn deleting_an_account_keeps_its_messages() {
    let s = TestServer::spawn().await;
    let frank = s.user("frank").await;
    let gina = s.user("gina").await;
    let room = s.room(&frank, "lobby").await;
    s.join(&gina, &room).await;
    s.say(&frank, &room, "bye all", None).await;
    let (status, _) = s
        .delete(
            "/api/v1/me",
            Some(&frank.token),
            json!({"password": "wrong password"}),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = s
        .delete(
            "/api/v1/me",
            Some(&frank.token),
            json!({"password": "password-frank"}),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = s.get("/api/v1/me", Some(&frank.token)).await;
    assert_eq!(status, 401, "sessions are revoked");
    let history = s.history(&gina, &room).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["body"], "bye all");
    assert_eq!(history[0]["author"]["deleted"], true);
    assert_eq!(history[0]["author"]["id"], json!(frank.id));
    // The name is free again.
    s.user("frank").await;
}

/// A session unused for `idle_secs` ends; every use (an HTTP request, a
/// frame on its WebSocket) moves that forward, and the last use survives a
/// restart.
#[tokio::test]
async fn a_session_idles_out_but_use_keeps_it_alive() {
    let mut s = TestServer::spawn_with(&[("HEARTH_IDLE_SECS", "3")]).await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;

    // Six seconds of use, one request or frame a second: twice the idle
    // lifetime, and both sessions stay alive.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (status, body) = s.get("/api/v1/me", Some(&alice.token)).await;
        assert_eq!(status, 200, "alice's session in use: {body}");
        bob_ws.send_json(json!({"type": "ping"})).await;
        assert_eq!(bob_ws.expect("pong").await["type"], "pong");
    }
    let (status, body) = s.get("/api/v1/me", Some(&bob.token)).await;
    assert_eq!(status, 200, "bob's open socket kept his session: {body}");
    drop(bob_ws);

    // The last use was written down: a restart does not end the session.
    s.terminate();
    s.restart();
    let (status, body) = s.get("/api/v1/me", Some(&alice.token)).await;
    assert_eq!(status, 200, "alice's session after a restart: {body}");

    // Then nothing for longer than the idle lifetime.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    for user in [&alice, &bob] {
        let (status, body) = s.get("/api/v1/me", Some(&user.token)).await;
        assert_eq!(status, 401, "{}'s idle session: {body}", user.name);
        assert_eq!(body["error"]["code"], "unauthenticated");
        assert_eq!(s.ws_with(user, &[]).await.err(), Some(401));
    }
    // Logging in again starts a fresh session.
    let again = s.login("alice", "password-alice").await;
    assert_eq!(s.get("/api/v1/me", Some(&again.token)).await.0, 200);
}

/// A session ends `absolute_secs` after login however much it is used, and
/// its open WebSocket is closed then (4001).
#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_and_its_socket_closes() {
    let s = TestServer::spawn_with(&[("HEARTH_ABSOLUTE_SECS", "4")]).await;
    let alice = s.user("alice").await;
    let logged_in = std::time::Instant::now();
    let mut ws = RawWs::connect(&s, &alice.token).await;
    ws.send_text(json!({"type": "hello"})).await;
    let ready = ws.next_json(FRAME_WAIT).await.expect("ready");
    assert_eq!(ready["type"], "ready", "{ready}");
    let bob = s.user("bob").await;
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;

    // In use all along: a frame every half second until the server closes.
    let close = 'used: loop {
        assert!(
            logged_in.elapsed() < Duration::from_secs(10),
            "the socket outlived its session"
        );
        ws.send_text(json!({"type": "ping"})).await;
        while let Some(f) = ws.next_frame(Duration::from_millis(500)).await {
            match f.opcode {
                0x8 => break 'used f,
                0x1 => {
                    let v: serde_json::Value = serde_json::from_slice(&f.payload).expect("json");
                    assert_eq!(v["type"], "pong", "{v}");
                }
                _ => {}
            }
        }
    };
    let lived = logged_in.elapsed();
    assert_eq!(close.close_code(), Some(4001));
    assert_eq!(&close.payload[2..], b"session expired");
    assert!(
        lived >= Duration::from_millis(3500) && lived < Duration::from_secs(7),
        "closed {lived:?} after login, lifetime 4 s"
    );
    let (status, body) = s.get("/api/v1/me", Some(&alice.token)).await;
    assert_eq!(status, 401, "{body}");

    // Bob logged in later: his socket is still open and usable.
    bob_ws.send_json(json!({"type": "ping"})).await;
    assert_eq!(bob_ws.expect("pong").await["type"], "pong");
}

#[tokio::test]
async fn logging_out_everywhere_ends_every_session_and_closes_every_socket() {
    let s = TestServer::spawn().await;
    let phone = s.user("zoe").await;
    let laptop = s.login("zoe", "password-zoe").await;
    let mut phone_ws = s.ws(&phone).await;
    phone_ws.hello(None).await;
    let (status, _) = s
        .post("/api/v1/logout", Some(&laptop.token), json!({"all": true}))
        .await;
    assert_eq!(status, 204);
    assert_eq!(phone_ws.close_code().await, Some(4001));
    for token in [&phone.token, &laptop.token] {
        let (status, _) = s.get("/api/v1/me", Some(token)).await;
        assert_eq!(status, 401);
    }
}

#[tokio::test]
async fn an_account_lists_its_sessions_and_ends_any_one_of_them() {
    let s = TestServer::spawn().await;
    let phone = s.user("yan").await;
    let r = s
        .call("POST", "/api/v1/login")
        .header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0")
        .json(json!({"login": "yan", "password": "password-yan"}))
        .send()
        .await;
    assert_eq!(r.status, 200);
    let laptop_token = r.body["token"].as_str().expect("token").to_string();

    let (status, list) = s.get("/api/v1/me/sessions", Some(&laptop_token)).await;
    assert_eq!(status, 200, "{list}");
    let sessions = list["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 2);
    let current: Vec<_> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert!(current[0]["user_agent"]
        .as_str()
        .is_some_and(|ua| ua.contains("Chrome/156")));
    assert_eq!(current[0]["ip"], "127.0.0.1");
    assert!(current[0]["last_used_at"].is_string());
    let other = sessions
        .iter()
        .find(|s| s["current"] == false)
        .expect("the phone's session");
    let other_id = other["id"].as_str().expect("id");
    assert!(
        !phone.token.contains(other_id),
        "an id reveals nothing of the token"
    );

    // Another account cannot end it, nor learn it exists.
    let eve = s.user("eve").await;
    let (status, body) = s
        .delete(
            &format!("/api/v1/me/sessions/{other_id}"),
            Some(&eve.token),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("session_not_found"))
    );

    let mut phone_ws = s.ws(&phone).await;
    phone_ws.hello(None).await;
    let (status, _) = s
        .delete(
            &format!("/api/v1/me/sessions/{other_id}"),
            Some(&laptop_token),
            json!({}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(phone_ws.close_code().await, Some(4001));
    let (status, _) = s.get("/api/v1/me", Some(&phone.token)).await;
    assert_eq!(status, 401);
    let (status, _) = s.get("/api/v1/me", Some(&laptop_token)).await;
    assert_eq!(status, 200, "the session that asked stays");
}

#[tokio::test]
async fn a_profile_has_a_display_name_and_an_about_line_and_others_see_changes_live() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;

    let r = s
        .request(
            "PATCH",
            "/api/v1/me",
            &ann.token,
            json!({"display_name": "  Ann Lee  ", "about": "Infra, Berlin"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (
            &r.body["user"]["display_name"],
            &r.body["user"]["about"],
            &r.body["user"]["avatar"]
        ),
        (&json!("Ann Lee"), &json!("Infra, Berlin"), &json!(null))
    );
    let seen = bob_ws.expect("user_updated").await;
    assert_eq!(
        (&seen["user"]["id"], &seen["user"]["display_name"]),
        (&json!(ann.id), &json!("Ann Lee"))
    );
    let (_, me) = s.get("/api/v1/me", Some(&ann.token)).await;
    assert_eq!(me["user"]["display_name"], "Ann Lee");

    for bad in [
        json!({"display_name": "x".repeat(65)}),
        json!({"about": "y".repeat(257)}),
        json!({"display_name": "a\u{7}b"}),
    ] {
        let r = s
            .request("PATCH", "/api/v1/me", &ann.token, bad.clone())
            .await;
        assert_eq!(
            (r.status, &r.body["error"]["code"]),
            (400, &json!("invalid_profile")),
            "{bad}"
        );
    }

    // The email changes with the password, and stays unique.
    let (status, r) = s
        .post(
            "/api/v1/me/email",
            Some(&ann.token),
            json!({"password": "wrong password", "email": "ann@new.example"}),
        )
        .await;
    assert_eq!(
        (status, &r["error"]["code"]),
        (401, &json!("invalid_credentials"))
    );
    let (status, r) = s
        .post(
            "/api/v1/me/email",
            Some(&ann.token),
            json!({"password": "password-ann", "email": "BOB@example.com"}),
        )
        .await;
    assert_eq!((status, &r["error"]["code"]), (409, &json!("email_taken")));
    let (status, _) = s
        .post(
            "/api/v1/me/email",
            Some(&ann.token),
            json!({"password": "password-ann", "email": "ann@new.example"}),
        )
        .await;
    assert_eq!(status, 200);
    s.login("ann@new.example", "password-ann").await;
    let (status, _) = s
        .post(
            "/api/v1/login",
            None,
            json!({"login": "ann@example.com", "password": "password-ann"}),
        )
        .await;
    assert_eq!(status, 401, "the old email no longer logs in");
}
