//! Sign-up, log-in, sessions and account deletion.

use serde_json::json;

use crate::harness::TestServer;

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
