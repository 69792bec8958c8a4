//! The admin API under `/api/v1/admin/` over real HTTP: every route as an
//! administrator (and what it changed, seen from outside), the same route
//! refused to an ordinary account (403 `not_an_admin`) and without a
//! session (401), and bad input answered with its documented code.

use serde_json::{json, Value};

use crate::harness::{TestServer, User};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// Each admin route, as (method, path, body) with ids filled in.
fn routes(user: &str, room: &str) -> Vec<(&'static str, String, Value)> {
    vec![
        ("GET", "/api/v1/admin/users".into(), json!(null)),
        ("DELETE", format!("/api/v1/admin/users/{user}"), json!(null)),
        (
            "PUT",
            format!("/api/v1/admin/users/{user}/admin"),
            json!({"admin": true}),
        ),
        (
            "DELETE",
            format!("/api/v1/admin/users/{user}/sessions"),
            json!(null),
        ),
        (
            "POST",
            format!("/api/v1/admin/users/{user}/reset-link"),
            json!({}),
        ),
        ("GET", "/api/v1/admin/invites".into(), json!(null)),
        ("POST", "/api/v1/admin/invites".into(), json!({"uses": 1})),
        (
            "DELETE",
            "/api/v1/admin/invites/abcdef0123".into(),
            json!(null),
        ),
        ("GET", "/api/v1/admin/registration".into(), json!(null)),
        (
            "PUT",
            "/api/v1/admin/registration".into(),
            json!({"mode": "closed"}),
        ),
        ("GET", "/api/v1/admin/rooms".into(), json!(null)),
        ("DELETE", format!("/api/v1/rooms/{room}"), json!(null)),
        ("GET", "/api/v1/admin/stats".into(), json!(null)),
        ("POST", "/api/v1/users/{user}/disable".into(), json!(null)),
        ("POST", "/api/v1/users/{user}/enable".into(), json!(null)),
        ("GET", "/api/v1/bots".into(), json!(null)),
        ("POST", "/api/v1/bots".into(), json!({"username": "robot"})),
    ]
}

async fn send(
    s: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut call = s.call(method, path);
    if let Some(t) = token {
        call = call.header("Authorization", &format!("Bearer {t}"));
    }
    if !body.is_null() {
        call = call.json(body);
    }
    let r = call.send().await;
    (r.status, r.body)
}

#[tokio::test]
async fn every_admin_route_refuses_an_ordinary_account_and_a_stranger() {
    let s = TestServer::spawn().await;
    let _admin = s.user("root").await; // the first account administers
    let bob = s.user("bob").await;
    let carol = s.user("carol").await;
    let room = s.room(&carol, "carols").await;
    for (method, path, body) in routes(&carol.id, &room) {
        let path = path.replace("{user}", &carol.id);
        let (status, reply) = send(&s, method, &path, Some(&bob.token), body.clone()).await;
        assert_eq!(
            (status, code(&reply)),
            (403, "not_an_admin"),
            "{method} {path} as an ordinary account: {reply}"
        );
        let (status, reply) = send(&s, method, &path, None, body).await;
        assert_eq!(
            (status, code(&reply)),
            (401, "unauthenticated"),
            "{method} {path} without a session: {reply}"
        );
    }
    // Nothing was changed by the refused calls.
    let (status, _) = s.get("/api/v1/me", Some(&carol.token)).await;
    assert_eq!(status, 200, "carol is still signed in");
    let (status, _) = s
        .get(&format!("/api/v1/rooms/{room}"), Some(&carol.token))
        .await;
    assert_eq!(status, 200, "carol's room is still there");
}

#[tokio::test]
async fn an_admin_searches_accounts_a_page_at_a_time() {
    let s = TestServer::spawn().await;
    let admin = s.user("root").await;
    for name in ["anna", "annabel", "bert", "anneke"] {
        s.user(name).await;
    }
    let (status, all) = s.get("/api/v1/admin/users", Some(&admin.token)).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["total"], 5);
    assert!(all["next_offset"].is_null());
    let first = &all["users"][0];
    assert_eq!(first["username"], "anna");
    assert_eq!(first["email"], "anna@example.com");
    assert_eq!(first["sessions"], 1);

    // By name or email, ignoring case, two at a time.
    let (_, page) = s
        .get("/api/v1/admin/users?q=ANN&limit=2", Some(&admin.token))
        .await;
    assert_eq!(page["total"], 3);
    let names: Vec<_> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["anna", "annabel"]);
    assert_eq!(page["next_offset"], 2);
    let (_, rest) = s
        .get(
            "/api/v1/admin/users?q=ann&limit=2&offset=2",
            Some(&admin.token),
        )
        .await;
    assert_eq!(rest["users"][0]["username"], "anneke");
    assert!(rest["next_offset"].is_null());
    let (_, by_mail) = s
        .get("/api/v1/admin/users?q=bert%40example", Some(&admin.token))
        .await;
    assert_eq!(by_mail["total"], 1);

    for bad in ["limit=0", "limit=201", "offset=-1", "q=%FF"] {
        let (status, r) = s
            .get(&format!("/api/v1/admin/users?{bad}"), Some(&admin.token))
            .await;
        assert_eq!((status, code(&r)), (400, "invalid_request"), "{bad}: {r}");
    }
}

#[tokio::test]
async fn an_admin_grants_and_takes_the_admin_role_and_deletes_and_signs_out_accounts() {
    let s = TestServer::spawn().await;
    let admin = s.user("root").await;
    let bob = s.user("bob").await;
    let carol = s.user("carol").await;

    let r = s
        .request(
            "PUT",
            &format!("/api/v1/admin/users/{}/admin", bob.id),
            &admin.token,
            json!({"admin": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["user"]["admin"], true);
    // Bob may now do what administrators do, and his `me` says so.
    let (_, me) = s.get("/api/v1/me", Some(&bob.token)).await;
    assert_eq!(me["user"]["admin"], true);
    let (status, _) = s.get("/api/v1/admin/stats", Some(&bob.token)).await;
    assert_eq!(status, 200);
    // Nobody takes their own role away.
    let r = s
        .request(
            "PUT",
            &format!("/api/v1/admin/users/{}/admin", bob.id),
            &bob.token,
            json!({"admin": false}),
        )
        .await;
    assert_eq!((r.status, code(&r.body)), (400, "invalid_request"));
    let r = s
        .request(
            "PUT",
            &format!("/api/v1/admin/users/{}/admin", bob.id),
            &admin.token,
            json!({"admin": false}),
        )
        .await;
    assert_eq!(r.status, 200);
    let (status, r) = s.get("/api/v1/admin/stats", Some(&bob.token)).await;
    assert_eq!((status, code(&r)), (403, "not_an_admin"));
    // Bad bodies and unknown accounts.
    for (body, want) in [
        (json!({"admin": "yes"}), "invalid_request"),
        (json!({}), "invalid_request"),
    ] {
        let r = s
            .request(
                "PUT",
                &format!("/api/v1/admin/users/{}/admin", bob.id),
                &admin.token,
                body,
            )
            .await;
        assert_eq!((r.status, code(&r.body)), (400, want));
    }
    let r = s
        .call("PUT", &format!("/api/v1/admin/users/{}/admin", bob.id))
        .header("Authorization", &format!("Bearer {}", admin.token))
        .raw("{nope")
        .send()
        .await;
    assert_eq!((r.status, code(&r.body)), (400, "invalid_json"));
    let r = s
        .request(
            "PUT",
            "/api/v1/admin/users/not-an-id/admin",
            &admin.token,
            json!({"admin": true}),
        )
        .await;
    assert_eq!((r.status, code(&r.body)), (404, "user_not_found"));

    // Revoking sessions signs carol out everywhere.
    let carol2 = s.login("carol", "password-carol").await;
    let r = s
        .request(
            "DELETE",
            &format!("/api/v1/admin/users/{}/sessions", carol.id),
            &admin.token,
            json!(null),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["revoked"], 2);
    for t in [&carol.token, &carol2.token] {
        let (status, _) = s.get("/api/v1/me", Some(t)).await;
        assert_eq!(status, 401);
    }

    // Deleting bob: he cannot sign in, and the list no longer has him.
    let (status, _) = send(
        &s,
        "DELETE",
        &format!("/api/v1/admin/users/{}", bob.id),
        Some(&admin.token),
        json!(null),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = s
        .post(
            "/api/v1/login",
            None,
            json!({"login": "bob", "password": "password-bob"}),
        )
        .await;
    assert_eq!(status, 401);
    let (_, list) = s.get("/api/v1/admin/users?q=bob", Some(&admin.token)).await;
    assert_eq!(list["total"], 0);
    let (status, r) = send(
        &s,
        "DELETE",
        &format!("/api/v1/admin/users/{}", bob.id),
        Some(&admin.token),
        json!(null),
    )
    .await;
    assert_eq!((status, code(&r)), (404, "user_not_found"));
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_once() {
    let s = TestServer::spawn().await;
    let admin = s.user("root").await;
    let bob = s.user("bob").await;

    let r = s
        .request(
            "POST",
            &format!("/api/v1/admin/users/{}/reset-link", bob.id),
            &admin.token,
            json!({"valid_for_secs": 3600}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let code_ = r.body["code"].as_str().unwrap().to_string();
    assert_eq!(r.body["path"], format!("/#reset={code_}"));
    assert!(r.body["expires_at"].as_str().is_some());

    // A password that breaks the rules does not use the link up.
    let (status, reply) = s
        .post(
            "/api/v1/password-reset",
            None,
            json!({"code": code_, "password": "short"}),
        )
        .await;
    assert_eq!((status, code(&reply)), (400, "invalid_password"));
    let (status, _) = s
        .post(
            "/api/v1/password-reset",
            None,
            json!({"code": code_, "password": "a brand new one"}),
        )
        .await;
    assert_eq!(status, 204);
    // Bob's old session ended; the new password works, the old does not.
    let (status, _) = s.get("/api/v1/me", Some(&bob.token)).await;
    assert_eq!(status, 401);
    s.login("bob", "a brand new one").await;
    let (status, _) = s
        .post(
            "/api/v1/login",
            None,
            json!({"login": "bob", "password": "password-bob"}),
        )
        .await;
    assert_eq!(status, 401);
    // Once only.
    let (status, reply) = s
        .post(
            "/api/v1/password-reset",
            None,
            json!({"code": code_, "password": "another new one"}),
        )
        .await;
    assert_eq!((status, code(&reply)), (403, "invalid_reset_link"));

    for body in [
        json!({"valid_for_secs": 1}),
        json!({"valid_for_secs": 9_999_999}),
    ] {
        let r = s
            .request(
                "POST",
                &format!("/api/v1/admin/users/{}/reset-link", bob.id),
                &admin.token,
                body,
            )
            .await;
        assert_eq!((r.status, code(&r.body)), (400, "invalid_request"));
    }
    let r = s
        .request(
            "POST",
            "/api/v1/admin/users/not-an-id/reset-link",
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!((r.status, code(&r.body)), (404, "user_not_found"));
}

#[tokio::test]
async fn invites_are_made_listed_used_and_revoked() {
    let s = TestServer::spawn().await;
    let admin = s.user("root").await;
    let r = s
        .request(
            "PUT",
            "/api/v1/admin/registration",
            &admin.token,
            json!({"mode": "invite"}),
        )
        .await;
    assert_eq!(r.body["mode"], "invite");

    let r = s
        .request(
            "POST",
            "/api/v1/admin/invites",
            &admin.token,
            json!({"uses": 2, "valid_for_secs": 3600, "note": "for the team"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let invite = r.body["code"].as_str().unwrap().to_string();
    assert_eq!(r.body["path"], format!("/?invite={invite}"));
    assert_eq!(r.body["uses_left"], 2);
    let (_, list) = s.get("/api/v1/admin/invites", Some(&admin.token)).await;
    let listed = &list["invites"][0];
    assert_eq!(listed["note"], "for the team");
    assert_eq!(listed["uses_left"], 2);
    assert_eq!(listed["spent"], false);
    let id = listed["id"].as_str().unwrap().to_string();

    let (status, _) = s
        .post(
            "/api/v1/signup",
            None,
            json!({"username": "newbie", "email": "n@example.com", "password": "long enough", "invite": invite}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, list) = s.get("/api/v1/admin/invites", Some(&admin.token)).await;
    assert_eq!(list["invites"][0]["uses_left"], 1);

    let (status, _) = send(
        &s,
        "DELETE",
        &format!("/api/v1/admin/invites/{id}"),
        Some(&admin.token),
        json!(null),
    )
    .await;
    assert_eq!(status, 204);
    let (_, list) = s.get("/api/v1/admin/invites", Some(&admin.token)).await;
    assert_eq!(list["invites"].as_array().unwrap().len(), 0);
    let (status, r) = s
        .post(
            "/api/v1/signup",
            None,
            json!({"username": "late", "email": "l@example.com", "password": "long enough", "invite": invite}),
        )
        .await;
    assert_eq!((status, code(&r)), (403, "invalid_invite"));

    for body in [json!({"uses": 0}), json!({"uses": -1}), json!({})] {
        let r = s
            .request("POST", "/api/v1/admin/invites", &admin.token, body.clone())
            .await;
        assert_eq!(
            (r.status, code(&r.body)),
            (400, "invalid_request"),
            "{body}"
        );
    }
    let (status, r) = send(
        &s,
        "DELETE",
        "/api/v1/admin/invites/abc",
        Some(&admin.token),
        json!(null),
    )
    .await;
    assert_eq!(
        (status, code(&r)),
        (400, "invalid_request"),
        "a too-short id"
    );
}

#[tokio::test]
async fn the_registration_mode_changes_at_once_and_outlives_a_restart() {
    let mut s = TestServer::spawn().await;
    let admin = s.user("root").await;
    let (_, r) = s
        .get("/api/v1/admin/registration", Some(&admin.token))
        .await;
    assert_eq!(
        r,
        json!({"mode": "open", "source": "config", "config": "open"})
    );

    let r = s
        .request(
            "PUT",
            "/api/v1/admin/registration",
            &admin.token,
            json!({"mode": "closed"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"mode": "closed", "source": "admin", "config": "open"})
    );
    let signup = json!({"username": "eve", "email": "eve@example.com", "password": "long enough"});
    let (status, reply) = s.post("/api/v1/signup", None, signup.clone()).await;
    assert_eq!((status, code(&reply)), (403, "registration_closed"));

    // The choice is in the store: it holds after a restart.
    s.terminate();
    s.restart();
    let admin = s.login("root", "password-root").await;
    let (_, r) = s
        .get("/api/v1/admin/registration", Some(&admin.token))
        .await;
    assert_eq!(r["mode"], "closed");
    let (status, _) = s.post("/api/v1/signup", None, signup.clone()).await;
    assert_eq!(status, 403);

    // null goes back to the config's value.
    let r = s
        .request(
            "PUT",
            "/api/v1/admin/registration",
            &admin.token,
            json!({"mode": null}),
        )
        .await;
    assert_eq!(r.body["source"], "config");
    let (status, _) = s.post("/api/v1/signup", None, signup).await;
    assert_eq!(status, 201);

    for body in [json!({"mode": "sometimes"}), json!({"mode": 3}), json!({})] {
        let r = s
            .request(
                "PUT",
                "/api/v1/admin/registration",
                &admin.token,
                body.clone(),
            )
            .await;
        assert_eq!(
            (r.status, code(&r.body)),
            (400, "invalid_request"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn an_admin_lists_rooms_with_activity_and_deletes_one() {
    let s = TestServer::spawn().await;
    let admin = s.user("root").await;
    let bob = s.user("bob").await;
    let quiet = s.room(&bob, "quiet").await;
    let busy = s.room(&bob, "busy").await;
    s.join(&admin, &busy).await;
    s.say(&bob, &busy, "hello", None).await;

    let (status, r) = s.get("/api/v1/admin/rooms", Some(&admin.token)).await;
    assert_eq!(status, 200, "{r}");
    let rooms = r["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), 2);
    // The most recently active first.
    assert_eq!(rooms[0]["name"], "busy");
    assert_eq!(rooms[0]["members"], 2);
    assert_eq!(rooms[0]["messages"], 1);
    assert_eq!(rooms[0]["visibility"], "public");
    assert!(rooms[0]["last_activity"].as_str().is_some());
    assert_eq!(rooms[1]["name"], "quiet");
    assert!(rooms[1]["last_activity"].is_null());

    let (status, _) = send(
        &s,
        "DELETE",
        &format!("/api/v1/rooms/{quiet}"),
        Some(&admin.token),
        json!(null),
    )
    .await;
    assert_eq!(status, 204);
    let (_, r) = s.get("/api/v1/admin/rooms", Some(&admin.token)).await;
    assert_eq!(r["rooms"].as_array().unwrap().len(), 1);
    let (status, r) = send(
        &s,
        "DELETE",
        &format!("/api/v1/rooms/{quiet}"),
        Some(&admin.token),
        json!(null),
    )
    .await;
    assert_eq!((status, code(&r)), (404, "room_not_found"));
}

#[tokio::test]
async fn stats_show_live_figures_and_the_ack_latency_of_real_sends() {
    let s = TestServer::spawn_with(&[("HEARTH_METRICS_LISTEN", "127.0.0.1:0")]).await;
    let admin = s.user("root").await;
    let room = s.room(&admin, "general").await;
    let (status, before) = s.get("/api/v1/admin/stats", Some(&admin.token)).await;
    assert_eq!(status, 200, "{before}");
    let mut ws = s.ws(&admin).await;
    ws.hello(None).await;
    for i in 0..5 {
        s.say(&admin, &room, &format!("m{i}"), None).await;
    }
    let (_, after) = s.get("/api/v1/admin/stats", Some(&admin.token)).await;
    assert_eq!(after["websockets"], 1);
    assert_eq!(after["rooms"], 1);
    assert_eq!(after["sessions"], 1);
    assert!(after["users"].as_u64() >= Some(1));
    assert!(after["disk_bytes"].as_u64() > Some(0));
    assert_eq!(after["storage_ok"], true);
    let stored = |v: &Value| v["messages_stored"].as_u64().unwrap();
    assert_eq!(stored(&after) - stored(&before), 5);
    assert!(after["at"].as_u64() >= before["at"].as_u64());
    let ack = &after["ack_latency"];
    assert_eq!(
        ack["count"].as_u64().unwrap() - before["ack_latency"]["count"].as_u64().unwrap(),
        5
    );
    let buckets = ack["buckets"].as_array().unwrap();
    assert!(buckets.len() > 10, "{ack}");
    assert!(
        buckets.last().unwrap()[0].is_null(),
        "the last bound is +Inf"
    );
    assert_eq!(buckets.last().unwrap()[1], ack["count"]);
    // Cumulative: never decreasing.
    let counts: Vec<u64> = buckets.iter().map(|b| b[1].as_u64().unwrap()).collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    // With /metrics on its own listener, the main one has no /metrics,
    // while the JSON figures are still there for administrators.
    let (status, _) = s.get("/metrics", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_admins_own_account_cannot_be_disabled_by_itself() {
    let s = TestServer::spawn().await;
    let admin: User = s.user("root").await;
    let (status, r) = send(
        &s,
        "POST",
        &format!("/api/v1/users/{}/disable", admin.id),
        Some(&admin.token),
        json!(null),
    )
    .await;
    assert_eq!((status, code(&r)), (400, "invalid_request"));
}
