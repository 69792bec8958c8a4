//! The HTTP API endpoint by endpoint: every success shape, every error
//! code, who may call what, and which browser origins may use a cookie.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{assert_api_error, Auth, TestServer};

/// Every route that needs a session, with a room id spliced into `{room}`.
const PRIVATE_ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/logout"),
    ("GET", "/api/v1/me"),
    ("DELETE", "/api/v1/me"),
    ("GET", "/api/v1/rooms"),
    ("POST", "/api/v1/rooms"),
    ("GET", "/api/v1/rooms/{room}"),
    ("POST", "/api/v1/rooms/{room}/join"),
    ("POST", "/api/v1/rooms/{room}/leave"),
    ("GET", "/api/v1/rooms/{room}/members"),
    ("GET", "/api/v1/rooms/{room}/messages"),
    ("POST", "/api/v1/rooms/{room}/messages"),
    ("GET", "/api/v1/search?q=hello"),
    ("GET", "/api/v1/ws"),
];

/// A JSON body every route above would accept, so only the credentials
/// decide the answer.
fn plausible_body(method: &str, path: &str) -> Value {
    match (method, path) {
        ("DELETE", _) => json!({"password": "password-anyone"}),
        ("POST", "/api/v1/rooms") => json!({"name": "new room"}),
        ("POST", p) if p.ends_with("/messages") => json!({"body": "hello"}),
        _ => json!({}),
    }
}

fn with_room(path: &str, room: &str) -> String {
    path.replace("{room}", room)
}

fn seqs(messages: &Value) -> Vec<u64> {
    messages["messages"]
        .as_array()
        .expect("a messages array")
        .iter()
        .map(|m| m["seq"].as_u64().expect("seq"))
        .collect()
}

fn keys(value: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

// ---- Accounts -------------------------------------------------------------

#[tokio::test]
async fn signup_returns_the_account_and_nothing_secret() {
    let s = TestServer::spawn().await;
    let r = s
        .call("POST", "/api/v1/signup")
        .json(json!({"username": "Ada.L-1_x", "email": "ada@example.com", "password": "analytical engine"}))
        .send()
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let user = &r.body["user"];
    assert_eq!(user["username"], "Ada.L-1_x", "the name keeps its case");
    assert!(user["id"].as_str().is_some_and(|id| id.len() == 36));
    assert!(user["created_at"].as_str().is_some_and(|t| t.contains('T')));
    for secret in ["email", "password", "password_hash"] {
        assert!(user.get(secret).is_none(), "{secret} leaked: {user}");
    }
}

#[tokio::test]
async fn signup_checks_each_field_at_its_limits() {
    let s = TestServer::spawn().await;
    let ok = |username: &str, password: &str| json!({"username": username, "email": format!("{username}@example.com"), "password": password});
    // Accepted right at each limit.
    for body in [
        ok("abc", "12345678"),
        ok(&"a".repeat(32), "12345678"),
        ok("a_b.c-D9", &"p".repeat(1024)),
        // Passwords count characters, not bytes: 8 two-byte characters.
        ok("accented", &"é".repeat(8)),
        ok("wide", &"é".repeat(1024)),
    ] {
        let r = s
            .call("POST", "/api/v1/signup")
            .json(body.clone())
            .send()
            .await;
        assert_eq!(r.status, 201, "{body} -> {:?}", r.body);
    }
    // Refused just past each limit.
    let cases = [
        (ok("ab", "12345678"), 400, "invalid_username"),
        (ok(&"a".repeat(33), "12345678"), 400, "invalid_username"),
        (ok("", "12345678"), 400, "invalid_username"),
        (ok("élan", "12345678"), 400, "invalid_username"),
        (ok("a/b", "12345678"), 400, "invalid_username"),
        (ok("a+b", "12345678"), 400, "invalid_username"),
        (ok("seven", "1234567"), 400, "invalid_password"),
        (ok("long", &"p".repeat(1025)), 400, "invalid_password"),
        (ok("wider", &"é".repeat(1025)), 400, "invalid_password"),
        (
            json!({"username": "nomail", "email": "", "password": "12345678"}),
            400,
            "invalid_email",
        ),
        (
            json!({"username": "nomail", "email": "@example.com", "password": "12345678"}),
            400,
            "invalid_email",
        ),
        (
            json!({"username": "nomail", "email": "nobody@", "password": "12345678"}),
            400,
            "invalid_email",
        ),
        (
            json!({"username": "ABC", "email": "other@example.com", "password": "12345678"}),
            409,
            "username_taken",
        ),
        (
            json!({"username": "other", "email": "ABC@Example.com", "password": "12345678"}),
            409,
            "email_taken",
        ),
        (
            json!({"username": 5, "email": "n@example.com", "password": "12345678"}),
            400,
            "invalid_request",
        ),
        (json!({}), 400, "invalid_request"),
        (json!([]), 400, "invalid_request"),
    ];
    for (body, status, code) in cases {
        let r = s
            .call("POST", "/api/v1/signup")
            .json(body.clone())
            .send()
            .await;
        assert_api_error(r.status, &r.body, status, code);
    }
    for malformed in ["", "{", "{\"username\": \"x\",}", "nul"] {
        let r = s.call("POST", "/api/v1/signup").raw(malformed).send().await;
        assert_api_error(r.status, &r.body, 400, "invalid_json");
    }
}

#[tokio::test]
async fn login_by_username_or_email_starts_a_cookie_session() {
    let s = TestServer::spawn().await;
    s.user("grace").await;
    for login in ["grace", "grace@example.com"] {
        let r = s
            .call("POST", "/api/v1/login")
            .json(json!({"login": login, "password": "password-grace"}))
            .send()
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(keys(&r.body), ["token", "user"]);
        assert_eq!(r.body["user"]["username"], "grace");
        let token = r.body["token"].as_str().expect("token");
        let cookie = r.header("set-cookie").expect("a session cookie");
        let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
        assert_eq!(attributes[0], format!("hearth_session={token}"), "{cookie}");
        for required in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(
                attributes.contains(&required),
                "{required} missing: {cookie}"
            );
        }
        // The cookie alone is a session, also among a browser's other cookies.
        let me = s
            .call("GET", "/api/v1/me")
            .auth(Auth::Cookie(token))
            .send()
            .await;
        assert_eq!(me.status, 200, "{:?}", me.body);
        assert_eq!(me.body["user"]["username"], "grace");
        let among_others = s
            .call("GET", "/api/v1/me")
            .header(
                "cookie",
                &format!("theme=dark; hearth_session={token}; lang=en"),
            )
            .send()
            .await;
        assert_eq!(among_others.status, 200, "{:?}", among_others.body);
    }
    let cases = [
        (json!({"login": "grace"}), 400, "invalid_request"),
        (
            json!({"login": "grace", "password": 12345678}),
            400,
            "invalid_request",
        ),
        (
            json!({"login": "grace", "password": "password-GRACE"}),
            401,
            "invalid_credentials",
        ),
        (
            json!({"login": "", "password": "password-grace"}),
            401,
            "invalid_credentials",
        ),
    ];
    for (body, status, code) in cases {
        let r = s.call("POST", "/api/v1/login").json(body).send().await;
        assert_api_error(r.status, &r.body, status, code);
    }
    let r = s.call("POST", "/api/v1/login").raw("{login").send().await;
    r.assert_error(400, "invalid_json");
}

#[tokio::test]
async fn logout_ends_only_that_session_and_clears_the_cookie() {
    let s = TestServer::spawn().await;
    let phone = s.user("hedy").await;
    let laptop = s.login("hedy", "password-hedy").await;
    assert_ne!(phone.token, laptop.token, "each login is its own session");

    let r = s
        .call("POST", "/api/v1/logout")
        .auth(Auth::Bearer(&phone.token))
        .send()
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.body, Value::Null, "204 has no body");
    let cleared = r.header("set-cookie").expect("the cookie is cleared");
    assert!(cleared.starts_with("hearth_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    for auth in [Auth::Bearer(&phone.token), Auth::Cookie(&phone.token)] {
        let r = s.call("GET", "/api/v1/me").auth(auth).send().await;
        r.assert_error(401, "unauthenticated");
    }
    let again = s
        .call("POST", "/api/v1/logout")
        .auth(Auth::Bearer(&phone.token))
        .send()
        .await;
    again.assert_error(401, "unauthenticated");
    let (status, _) = s.get("/api/v1/me", Some(&laptop.token)).await;
    assert_eq!(status, 200, "the other session lives on");

    // A cookie session logs out the same way.
    let r = s
        .call("POST", "/api/v1/logout")
        .auth(Auth::Cookie(&laptop.token))
        .send()
        .await;
    assert_eq!(r.status, 204);
    let (status, _) = s.get("/api/v1/me", Some(&laptop.token)).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn deleting_an_account_revokes_every_session_and_anonymises_its_messages() {
    let s = TestServer::spawn().await;
    let ivan = s.user("ivan").await;
    let other_session = s.login("ivan", "password-ivan").await;
    let judy = s.user("judy").await;
    let room = s.room(&judy, "hall").await;
    s.join(&ivan, &room).await;
    let posted = s.say(&ivan, &room, "I was here", None).await;

    let r = s
        .call("DELETE", "/api/v1/me")
        .auth(Auth::Bearer(&ivan.token))
        .json(json!({}))
        .send()
        .await;
    r.assert_error(400, "invalid_request");
    let r = s
        .call("DELETE", "/api/v1/me")
        .auth(Auth::Bearer(&ivan.token))
        .json(json!({"password": "password-IVAN"}))
        .send()
        .await;
    r.assert_error(401, "invalid_credentials");
    let (status, _) = s.get("/api/v1/me", Some(&ivan.token)).await;
    assert_eq!(status, 200, "a wrong password deletes nothing");

    let r = s
        .call("DELETE", "/api/v1/me")
        .auth(Auth::Bearer(&ivan.token))
        .json(json!({"password": "password-ivan"}))
        .send()
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    for token in [&ivan.token, &other_session.token] {
        let (status, body) = s.get("/api/v1/me", Some(token)).await;
        assert_api_error(status, &body, 401, "unauthenticated");
    }
    let (status, body) = s
        .post(
            "/api/v1/login",
            None,
            json!({"login": "ivan", "password": "password-ivan"}),
        )
        .await;
    assert_api_error(status, &body, 401, "invalid_credentials");

    let history = s.history(&judy, &room).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["id"], posted["id"]);
    assert_eq!(
        history[0]["author"],
        json!({"id": ivan.id, "username": "deleted user", "deleted": true})
    );
    let (_, members) = s
        .get(&format!("/api/v1/rooms/{room}/members"), Some(&judy.token))
        .await;
    assert_eq!(
        members["members"],
        json!([{"id": judy.id, "username": "judy", "display_name": null, "avatar": null, "role": "owner", "online": false}])
    );
}

#[tokio::test]
async fn racing_signups_for_one_name_or_email_make_one_account() {
    let s = TestServer::spawn().await;
    // All at once; one answered `busy` (its hash waited too long on a
    // loaded machine) is retried as a client would, still racing the rest.
    let attempts = |bodies: Vec<Value>| {
        let s = &s;
        async move {
            let posts = bodies
                .into_iter()
                .map(|body| s.post_until_not_busy("/api/v1/signup", body));
            let mut outcomes: Vec<_> = futures_util::future::join_all(posts)
                .await
                .into_iter()
                .map(|(status, body)| (status, body["error"]["code"].as_str().map(str::to_string)))
                .collect();
            outcomes.sort();
            outcomes
        }
    };
    let same_name: Vec<Value> = ["racer", "RACER", "Racer", "rAcEr", "racer", "RaCeR"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            json!({"username": name, "email": format!("racer{i}@example.com"), "password": "password1"})
        })
        .collect();
    let taken = Some("username_taken".to_string());
    let mut want = vec![(201, None)];
    want.extend(std::iter::repeat_n((409, taken), 5));
    assert_eq!(attempts(same_name).await, want);

    let same_email: Vec<Value> = (0..6)
        .map(|i| {
            let email = if i % 2 == 0 {
                "Shared@Example.com"
            } else {
                "shared@example.com"
            };
            json!({"username": format!("sharer{i}"), "email": email, "password": "password1"})
        })
        .collect();
    let taken = Some("email_taken".to_string());
    let mut want = vec![(201, None)];
    want.extend(std::iter::repeat_n((409, taken), 5));
    assert_eq!(attempts(same_email).await, want);
}

#[tokio::test]
async fn racing_posts_with_one_client_id_store_one_message() {
    let s = TestServer::spawn().await;
    let ray = s.user("ray").await;
    let room = s.room(&ray, "race").await;
    let url = s.url(&format!("/api/v1/rooms/{room}/messages"));
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let (http, url, token) = (s.http.clone(), url.clone(), ray.token.clone());
            tokio::spawn(async move {
                let r = http
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"body": format!("attempt {i}"), "client_id": "one-key"}))
                    .send()
                    .await
                    .expect("post");
                let status = r.status().as_u16();
                let body: Value = r.json().await.expect("json");
                (status, body["message"].clone())
            })
        })
        .collect();
    let mut created = 0;
    let mut messages = Vec::new();
    for t in tasks {
        let (status, message) = t.await.expect("task");
        assert!(status == 201 || status == 200, "{status} {message}");
        created += usize::from(status == 201);
        messages.push(message);
    }
    assert_eq!(created, 1, "exactly one attempt stored a message");
    assert!(
        messages.iter().all(|m| *m == messages[0]),
        "all got the same message"
    );
    s.say(&ray, &room, "next", None).await;
    assert_eq!(s.history(&ray, &room).await.len(), 2);
}

// ---- Who may call what ----------------------------------------------------

#[tokio::test]
async fn every_private_endpoint_refuses_each_wrong_identity() {
    let s = TestServer::spawn().await;
    let kim = s.user("kim").await;
    let gone = s.user("gone").await;
    let room = s.room(&kim, "den").await;
    s.post("/api/v1/logout", Some(&gone.token), json!({})).await;
    let basic = "Basic a2ltOnBhc3N3b3JkLWtpbQ==";
    let not_bearer = format!("Token {}", kim.token);
    let identities: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no credentials", vec![]),
        (
            "a made-up token",
            vec![("authorization", "Bearer not-a-token".into())],
        ),
        ("an empty bearer", vec![("authorization", "Bearer ".into())]),
        (
            "a logged-out token",
            vec![("authorization", format!("Bearer {}", gone.token))],
        ),
        (
            "a logged-out cookie",
            vec![("cookie", format!("hearth_session={}", gone.token))],
        ),
        (
            "a made-up cookie",
            vec![("cookie", "hearth_session=forged".into())],
        ),
        ("basic auth", vec![("authorization", basic.into())]),
        ("another scheme", vec![("authorization", not_bearer)]),
        (
            "another cookie name",
            vec![("cookie", format!("session={}", kim.token))],
        ),
    ];
    // A real room and one that does not exist: credentials are checked
    // first, so strangers cannot even probe which rooms exist.
    for target in [room.as_str(), "00000000-0000-0000-0000-000000000000"] {
        for (method, path) in PRIVATE_ROUTES {
            for (who, headers) in &identities {
                let mut call = s
                    .call(method, &with_room(path, target))
                    .json(plausible_body(method, path));
                for (k, v) in headers {
                    call = call.header(k, v);
                }
                let r = call.send().await;
                assert!(
                    r.status == 401 && r.body["error"]["code"] == "unauthenticated",
                    "{method} {path} with {who}: {} {:?}",
                    r.status,
                    r.body
                );
            }
        }
    }
    let (status, _) = s.get("/api/v1/me", Some(&kim.token)).await;
    assert_eq!(status, 200, "nothing above touched a real session");
}

#[tokio::test]
async fn room_contents_are_for_members_only() {
    let s = TestServer::spawn().await;
    let owner = s.user("owner").await;
    let stranger = s.user("stranger").await;
    let leaver = s.user("leaver").await;
    let room = s.room(&owner, "private-ish").await;
    s.join(&leaver, &room).await;
    s.say(&owner, &room, "members only", None).await;
    let (status, _) = s
        .post(
            &format!("/api/v1/rooms/{room}/leave"),
            Some(&leaver.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 204);

    for user in [&stranger, &leaver] {
        for (method, path) in [
            ("GET", "/api/v1/rooms/{room}/members"),
            ("GET", "/api/v1/rooms/{room}/messages"),
            ("POST", "/api/v1/rooms/{room}/messages"),
        ] {
            let r = s
                .call(method, &with_room(path, &room))
                .auth(Auth::Bearer(&user.token))
                .json(plausible_body(method, path))
                .send()
                .await;
            assert_api_error(r.status, &r.body, 403, "not_a_member");
        }
        // Anyone signed in may look the room up, and join it.
        let (status, body) = s
            .get(&format!("/api/v1/rooms/{room}"), Some(&user.token))
            .await;
        assert_eq!((status, &body["room"]["joined"]), (200, &json!(false)));
    }
    assert_eq!(
        s.history(&owner, &room).await.len(),
        1,
        "nothing was posted"
    );
}

#[tokio::test]
async fn unknown_rooms_are_404_whatever_the_id_looks_like() {
    let s = TestServer::spawn().await;
    let lee = s.user("lee").await;
    s.room(&lee, "real").await;
    let long = "x".repeat(300);
    let ids = [
        "garbage",
        "6f1c2f0e-8a3b-4c1d-9e2f-0a1b2c3d4e5f",
        "01890a5d-ac96-774b-bcce-b302099a8057",
        "00000000-0000-0000-0000-000000000000",
        "6f1c2f0e8a3b4c1d9e2f0a1b2c3d4e5f",
        "%F0%9F%94%A5",
        "1",
        long.as_str(),
    ];
    let routes = [
        ("GET", "/api/v1/rooms/{room}"),
        ("POST", "/api/v1/rooms/{room}/join"),
        ("POST", "/api/v1/rooms/{room}/leave"),
        ("GET", "/api/v1/rooms/{room}/members"),
        ("GET", "/api/v1/rooms/{room}/messages"),
        ("GET", "/api/v1/rooms/{room}/messages?limit=10&after=3"),
        ("POST", "/api/v1/rooms/{room}/messages"),
    ];
    for id in ids {
        for (method, path) in routes {
            let r = s
                .call(method, &with_room(path, id))
                .auth(Auth::Bearer(&lee.token))
                .json(plausible_body(
                    method,
                    path.split('?').next().unwrap_or(path),
                ))
                .send()
                .await;
            assert!(
                r.status == 404 && r.body["error"]["code"] == "room_not_found",
                "{method} {path} with {id:?}: {} {:?}",
                r.status,
                r.body
            );
        }
    }
}

#[tokio::test]
async fn wrong_methods_are_405_and_unknown_api_paths_404() {
    let s = TestServer::spawn().await;
    let max = s.user("max").await;
    let room = s.room(&max, "routes").await;
    let wrong_methods = [
        ("GET", "/api/v1/signup"),
        ("PUT", "/api/v1/signup"),
        ("GET", "/api/v1/login"),
        ("DELETE", "/api/v1/login"),
        ("GET", "/api/v1/logout"),
        ("POST", "/api/v1/me"),
        ("PUT", "/api/v1/me"),
        ("DELETE", "/api/v1/rooms"),
        ("PUT", "/api/v1/rooms/{room}"),
        ("POST", "/api/v1/rooms/{room}"),
        ("GET", "/api/v1/rooms/{room}/join"),
        ("DELETE", "/api/v1/rooms/{room}/leave"),
        ("PUT", "/api/v1/rooms/{room}/members"),
        ("DELETE", "/api/v1/rooms/{room}/messages"),
        ("PUT", "/api/v1/rooms/{room}/messages"),
        ("POST", "/api/v1/ws"),
    ];
    for (method, path) in wrong_methods {
        for auth in [Auth::Bearer(&max.token), Auth::Anonymous] {
            let r = s
                .call(method, &with_room(path, &room))
                .auth(auth)
                .json(json!({}))
                .send()
                .await;
            assert!(
                r.status == 405 && r.body["error"]["code"] == "method_not_allowed",
                "{method} {path}: {} {:?}",
                r.status,
                r.body
            );
            assert_api_error(r.status, &r.body, 405, "method_not_allowed");
        }
    }
    let unknown = [
        ("GET", "/api/v1/nope"),
        ("POST", "/api/v1/nope"),
        ("GET", "/api/v2/rooms"),
        ("GET", "/api/"),
        ("GET", "/api/v1"),
        ("GET", "/api/v1/rooms/{room}/nope"),
        ("GET", "/api/v1/rooms/{room}/messages/1/x"),
        ("DELETE", "/api/v1/users/1"),
    ];
    for (method, path) in unknown {
        let r = s
            .call(method, &with_room(path, &room))
            .auth(Auth::Bearer(&max.token))
            .send()
            .await;
        assert!(
            r.status == 404 && r.body["error"]["code"] == "not_found",
            "{method} {path}: {} {:?}",
            r.status,
            r.body
        );
        assert_api_error(r.status, &r.body, 404, "not_found");
    }
}

#[tokio::test]
async fn bad_input_is_never_a_500() {
    let s = TestServer::spawn().await;
    let ugo = s.user("ugo").await;
    let room = s.room(&ugo, "robust").await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let payloads: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"null".to_vec(),
        b"true".to_vec(),
        b"[]".to_vec(),
        b"\"text\"".to_vec(),
        b"-1".to_vec(),
        b"1e999".to_vec(),
        b"{\"a\":".to_vec(),
        b"\0".to_vec(),
        vec![0xff, 0xfe, b'{', b'}'],
        b"{\"body\": \"\\ud800\", \"name\": \"\\ud800\"}".to_vec(),
        b"{\"name\": \"a\", \"name\": \"b\"}".to_vec(),
        b"{\"body\": [\"not\", \"text\"], \"password\": {}}".to_vec(),
        b"{\"login\": null, \"password\": null, \"username\": null}".to_vec(),
        deep.into_bytes(),
    ];
    let routes = [
        ("POST", "/api/v1/signup".to_string()),
        ("POST", "/api/v1/login".to_string()),
        ("POST", "/api/v1/rooms".to_string()),
        ("POST", format!("/api/v1/rooms/{room}/join")),
        ("POST", format!("/api/v1/rooms/{room}/messages")),
        ("DELETE", "/api/v1/me".to_string()),
    ];
    for (method, path) in &routes {
        for payload in &payloads {
            let r = s
                .call(method, path)
                .auth(Auth::Bearer(&ugo.token))
                .raw(payload.clone())
                .send()
                .await;
            let shown = String::from_utf8_lossy(&payload[..payload.len().min(40)]).to_string();
            assert!(
                r.status < 500,
                "{method} {path} {shown:?}: {} {:?}",
                r.status,
                r.body
            );
            if r.status >= 400 {
                assert_api_error(
                    r.status,
                    &r.body,
                    r.status,
                    r.body["error"]["code"].as_str().unwrap_or("?"),
                );
            }
        }
    }
    let messages = format!("/api/v1/rooms/{room}/messages");
    for query in [
        "?limit=99999999999999999999999",
        "?before=18446744073709551616",
        "?after=18446744073709551615",
        "?before=18446744073709551615",
        "?limit=%31%30",
        "?limit=1&limit=2",
        "?&&&=&=",
        "?after=%FF",
    ] {
        let (status, body) = s.get(&format!("{messages}{query}"), Some(&ugo.token)).await;
        assert!(status < 500, "{query}: {status} {body}");
    }
    let (status, _) = s.get("/api/v1/me", Some(&ugo.token)).await;
    assert_eq!(status, 200, "the account is intact");
}

// ---- Browser origins ------------------------------------------------------

#[tokio::test]
async fn cookie_writes_are_judged_by_origin_and_bearer_writes_are_not() {
    let s = TestServer::spawn_with(&[(
        "HEARTH_ALLOWED_ORIGINS",
        "https://a.example,https://b.example",
    )])
    .await;
    let nia = s.user("nia").await;
    let own = s.origin();
    let own_other_port = "http://127.0.0.1:1".to_string();
    let cases: Vec<(&str, Auth, Option<&str>, u16)> = vec![
        ("cookie, no Origin", Auth::Cookie(&nia.token), None, 201),
        (
            "cookie, own origin",
            Auth::Cookie(&nia.token),
            Some(&own),
            201,
        ),
        (
            "cookie, allowed a",
            Auth::Cookie(&nia.token),
            Some("https://a.example"),
            201,
        ),
        (
            "cookie, allowed b",
            Auth::Cookie(&nia.token),
            Some("https://b.example"),
            201,
        ),
        (
            "cookie, foreign",
            Auth::Cookie(&nia.token),
            Some("https://evil.example"),
            403,
        ),
        (
            "cookie, allowed host over http",
            Auth::Cookie(&nia.token),
            Some("http://a.example"),
            403,
        ),
        (
            "cookie, allowed host other port",
            Auth::Cookie(&nia.token),
            Some("https://a.example:8443"),
            403,
        ),
        (
            "cookie, allowed as a prefix",
            Auth::Cookie(&nia.token),
            Some("https://a.example.evil.com"),
            403,
        ),
        (
            "cookie, own host other port",
            Auth::Cookie(&nia.token),
            Some(&own_other_port),
            403,
        ),
        (
            "cookie, opaque origin",
            Auth::Cookie(&nia.token),
            Some("null"),
            403,
        ),
        (
            "bearer, foreign",
            Auth::Bearer(&nia.token),
            Some("https://evil.example"),
            201,
        ),
        (
            "bearer, opaque origin",
            Auth::Bearer(&nia.token),
            Some("null"),
            201,
        ),
    ];
    for (i, (case, auth, origin, want)) in cases.into_iter().enumerate() {
        let name = format!("room {i}");
        let mut call = s.call("POST", "/api/v1/rooms").auth(auth);
        if let Some(o) = origin {
            call = call.header("origin", o);
        }
        let r = call.json(json!({"name": name})).send().await;
        if want == 403 {
            assert_api_error(r.status, &r.body, 403, "bad_origin");
            let (_, rooms) = s.get("/api/v1/rooms", Some(&nia.token)).await;
            let created = rooms["rooms"]
                .as_array()
                .expect("rooms")
                .iter()
                .any(|r| r["name"] == name.as_str());
            assert!(!created, "{case}: a refused request changed nothing");
        } else {
            assert_eq!(r.status, want, "{case}: {:?}", r.body);
        }
    }

    // Reads are not origin-checked; DELETE and logout are.
    let read = s
        .call("GET", "/api/v1/me")
        .auth(Auth::Cookie(&nia.token))
        .header("origin", "https://evil.example")
        .send()
        .await;
    assert_eq!(read.status, 200);
    let delete = s
        .call("DELETE", "/api/v1/me")
        .auth(Auth::Cookie(&nia.token))
        .header("origin", "https://evil.example")
        .json(json!({"password": "password-nia"}))
        .send()
        .await;
    delete.assert_error(403, "bad_origin");
    let logout = s
        .call("POST", "/api/v1/logout")
        .auth(Auth::Cookie(&nia.token))
        .header("origin", "https://evil.example")
        .send()
        .await;
    logout.assert_error(403, "bad_origin");
    let (status, _) = s.get("/api/v1/me", Some(&nia.token)).await;
    assert_eq!(status, 200, "the refused delete and logout did nothing");
}

// ---- Rooms ----------------------------------------------------------------

#[tokio::test]
async fn creating_a_room_makes_the_creator_its_first_member() {
    let s = TestServer::spawn().await;
    let olga = s.user("olga").await;
    let r = s
        .call("POST", "/api/v1/rooms")
        .auth(Auth::Bearer(&olga.token))
        .json(json!({"name": "Book Club", "topic": "This month: Middlemarch"}))
        .send()
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let room = &r.body["room"];
    assert_eq!(
        keys(room),
        [
            "created_at",
            "created_by",
            "id",
            "joined",
            "last_seq",
            "member_count",
            "members_preview",
            "mention_count",
            "name",
            "notifications",
            "read_seq",
            "topic",
            "unread_count",
            "visibility"
        ]
    );
    assert_eq!(room["name"], "Book Club");
    assert_eq!(room["topic"], "This month: Middlemarch");
    assert_eq!(room["created_by"], json!(olga.id));
    assert_eq!(
        (&room["member_count"], &room["last_seq"], &room["joined"]),
        (&json!(1), &json!(0), &json!(true))
    );
    let id = room["id"].as_str().expect("room id");
    let (_, members) = s
        .get(&format!("/api/v1/rooms/{id}/members"), Some(&olga.token))
        .await;
    assert_eq!(
        members,
        json!({"members": [{"id": olga.id, "username": "olga", "display_name": null, "avatar": null, "role": "owner", "online": false}]})
    );

    let untitled = s
        .call("POST", "/api/v1/rooms")
        .auth(Auth::Bearer(&olga.token))
        .json(json!({"name": "No Topic"}))
        .send()
        .await;
    assert_eq!(untitled.status, 201);
    assert_eq!(
        untitled.body["room"]["topic"], "",
        "the topic defaults to empty"
    );
}

#[tokio::test]
async fn room_names_are_1_to_64_characters_and_unique_ignoring_case() {
    let s = TestServer::spawn().await;
    let pat = s.user("pat").await;
    for name in [
        "x".to_string(),
        "n".repeat(64),
        "é".repeat(64),
        "Lobby".to_string(),
    ] {
        let r = s
            .call("POST", "/api/v1/rooms")
            .auth(Auth::Bearer(&pat.token))
            .json(json!({"name": name}))
            .send()
            .await;
        assert_eq!(r.status, 201, "{name}: {:?}", r.body);
    }
    let cases = [
        (json!({"name": ""}), 400, "invalid_room_name"),
        (json!({"name": "   "}), 400, "invalid_room_name"),
        (json!({"name": "n".repeat(65)}), 400, "invalid_room_name"),
        (json!({"name": "é".repeat(65)}), 400, "invalid_room_name"),
        (json!({"name": "LOBBY"}), 409, "room_name_taken"),
        (json!({"name": "lobby"}), 409, "room_name_taken"),
        (
            json!({"name": "ok", "topic": "t".repeat(257)}),
            400,
            "invalid_topic",
        ),
        (json!({}), 400, "invalid_request"),
        (json!({"name": 42}), 400, "invalid_request"),
    ];
    for (body, status, code) in cases {
        let r = s
            .call("POST", "/api/v1/rooms")
            .auth(Auth::Bearer(&pat.token))
            .json(body)
            .send()
            .await;
        r.assert_error(status, code);
    }
    let r = s
        .call("POST", "/api/v1/rooms")
        .auth(Auth::Bearer(&pat.token))
        .raw("{\"name\": ")
        .send()
        .await;
    r.assert_error(400, "invalid_json");
}

#[tokio::test]
async fn room_list_and_lookup_say_whether_the_caller_joined() {
    let s = TestServer::spawn().await;
    let quinn = s.user("quinn").await;
    let ray = s.user("ray").await;
    let joined = s.room(&quinn, "joined-by-both").await;
    let not_joined = s.room(&quinn, "quinn-only").await;
    s.join(&ray, &joined).await;
    s.say(&quinn, &joined, "one", None).await;
    s.say(&ray, &joined, "two", None).await;

    let (status, list) = s.get("/api/v1/rooms", Some(&ray.token)).await;
    assert_eq!(status, 200);
    let rooms = list["rooms"].as_array().expect("rooms");
    assert_eq!(rooms.len(), 2);
    let find = |id: &str| {
        rooms
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("room {id} listed"))
    };
    assert_eq!(
        (
            &find(&joined)["joined"],
            &find(&joined)["member_count"],
            &find(&joined)["last_seq"]
        ),
        (&json!(true), &json!(2), &json!(2))
    );
    assert_eq!(
        (
            &find(&not_joined)["joined"],
            &find(&not_joined)["member_count"]
        ),
        (&json!(false), &json!(1))
    );

    let (status, one) = s
        .get(&format!("/api/v1/rooms/{not_joined}"), Some(&ray.token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(keys(&one), ["room"]);
    assert_eq!(one["room"], *find(&not_joined), "lookup and list agree");
}

#[tokio::test]
async fn joining_is_idempotent_and_leaving_ends_membership() {
    let s = TestServer::spawn().await;
    let sam = s.user("sam").await;
    let tess = s.user("tess").await;
    let room = s.room(&sam, "plaza").await;
    let join = format!("/api/v1/rooms/{room}/join");
    let leave = format!("/api/v1/rooms/{room}/leave");
    let members = format!("/api/v1/rooms/{room}/members");

    for _ in 0..2 {
        let (status, body) = s.post(&join, Some(&tess.token), json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (&body["room"]["joined"], &body["room"]["member_count"]),
            (&json!(true), &json!(2))
        );
    }
    let (_, list) = s.get(&members, Some(&sam.token)).await;
    assert_eq!(
        list,
        json!({"members": [{"id": sam.id, "username": "sam", "display_name": null, "avatar": null, "role": "owner", "online": false}, {"id": tess.id, "username": "tess", "display_name": null, "avatar": null, "role": "member", "online": false}]})
    );

    let r = s
        .call("POST", &leave)
        .auth(Auth::Bearer(&tess.token))
        .send()
        .await;
    assert_eq!((r.status, &r.body), (204, &Value::Null));
    let (_, list) = s.get(&members, Some(&sam.token)).await;
    assert_eq!(
        list,
        json!({"members": [{"id": sam.id, "username": "sam", "display_name": null, "avatar": null, "role": "owner", "online": false}]})
    );
    let (status, body) = s
        .get(&format!("/api/v1/rooms/{room}/messages"), Some(&tess.token))
        .await;
    assert_api_error(status, &body, 403, "not_a_member");
    let (status, _) = s.post(&leave, Some(&tess.token), json!({})).await;
    assert_eq!(status, 204, "leaving a room one is not in is harmless");

    // The creator can leave too, and anyone can come back.
    let (status, _) = s.post(&leave, Some(&sam.token), json!({})).await;
    assert_eq!(status, 204);
    let (_, body) = s.post(&join, Some(&tess.token), json!({})).await;
    assert_eq!(body["room"]["member_count"], 1);
}

// ---- Messages -------------------------------------------------------------

#[tokio::test]
async fn a_posted_message_is_returned_whole_and_numbered_without_gaps() {
    let s = TestServer::spawn().await;
    let uma = s.user("uma").await;
    let room = s.room(&uma, "notes").await;
    let mut posted = Vec::new();
    for (i, client_id) in [None, Some("c-2"), None].into_iter().enumerate() {
        let mut body = json!({"body": format!("note {i}")});
        if let Some(c) = client_id {
            body["client_id"] = json!(c);
        }
        let r = s
            .call("POST", &format!("/api/v1/rooms/{room}/messages"))
            .auth(Auth::Bearer(&uma.token))
            .json(body)
            .send()
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        assert_eq!(keys(&r.body), ["message"]);
        let m = r.body["message"].clone();
        assert_eq!(
            keys(&m),
            [
                "author",
                "body",
                "client_id",
                "created_at",
                "deleted",
                "edited_at",
                "files",
                "id",
                "mentions",
                "mentions_room",
                "reactions",
                "reply_to",
                "room",
                "seq"
            ]
        );
        assert_eq!(m["seq"], i + 1);
        assert_eq!(m["room"], json!(room));
        assert_eq!(m["author"], json!({"id": uma.id, "username": "uma"}));
        assert_eq!(m["body"], format!("note {i}"));
        assert_eq!(m["client_id"], json!(client_id));
        assert!(m["created_at"].as_str().is_some_and(|t| t.contains('T')));
        posted.push(m);
    }
    assert_eq!(
        s.history(&uma, &room).await,
        posted,
        "history shows the same objects"
    );
    let (_, one) = s
        .get(&format!("/api/v1/rooms/{room}"), Some(&uma.token))
        .await;
    assert_eq!(one["room"]["last_seq"], 3);
}

/// Read-your-writes: once a post is answered, the message is in history
/// and in the room's `last_seq`, for its author and everyone else.
#[tokio::test]
async fn an_answered_post_is_at_once_in_history() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let room = s.room(&ann, "read-your-writes").await;
    let mut ws = s.ws(&ann).await;
    ws.hello(None).await;
    // The window is short, so try often; long bodies widen it a little.
    let body = "r".repeat(4000);
    for i in 1..=300u64 {
        let over_rest = i % 2 == 0;
        let seq = if over_rest {
            s.say(&ann, &room, &body, None).await["seq"].clone()
        } else {
            ws.send(&room, &format!("w{i}"), &body).await;
            ws.expect("ack").await["seq"].clone()
        };
        assert_eq!(seq, i);
        let (_, one) = s
            .get(&format!("/api/v1/rooms/{room}"), Some(&ann.token))
            .await;
        assert_eq!(
            one["room"]["last_seq"], i,
            "message {i} (over rest: {over_rest}) is the room's head once answered"
        );
        let (_, page) = s
            .get(
                &format!("/api/v1/rooms/{room}/messages?after={}", i - 1),
                Some(&ann.token),
            )
            .await;
        assert_eq!(seqs(&page), [i], "message {i} is readable once answered");
    }
}

#[tokio::test]
async fn a_repeated_client_id_returns_the_original_message() {
    let s = TestServer::spawn().await;
    let vic = s.user("vic").await;
    let wes = s.user("wes").await;
    let room = s.room(&vic, "retry").await;
    let other_room = s.room(&vic, "elsewhere").await;
    s.join(&wes, &room).await;
    let path = format!("/api/v1/rooms/{room}/messages");

    let (first_status, first) = s
        .post(
            &path,
            Some(&vic.token),
            json!({"body": "only once", "client_id": "k1"}),
        )
        .await;
    assert_eq!(first_status, 201);
    // A retry, even one whose body changed, gets the original back.
    for body in ["only once", "edited on retry"] {
        let (status, again) = s
            .post(
                &path,
                Some(&vic.token),
                json!({"body": body, "client_id": "k1"}),
            )
            .await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again, first);
    }
    // The key belongs to one user in one room.
    let (status, theirs) = s
        .post(
            &path,
            Some(&wes.token),
            json!({"body": "mine", "client_id": "k1"}),
        )
        .await;
    assert_eq!((status, &theirs["message"]["seq"]), (201, &json!(2)));
    let (status, elsewhere) = s
        .post(
            &format!("/api/v1/rooms/{other_room}/messages"),
            Some(&vic.token),
            json!({"body": "there", "client_id": "k1"}),
        )
        .await;
    assert_eq!((status, &elsewhere["message"]["seq"]), (201, &json!(1)));

    let next = s.say(&vic, &room, "next", Some("k2")).await;
    assert_eq!(next["seq"], 3, "a duplicate takes no seq");
    let history = s.history(&vic, &room).await;
    let bodies: Vec<&str> = history.iter().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(bodies, ["only once", "mine", "next"]);
}

#[tokio::test]
async fn message_bodies_and_client_ids_are_checked() {
    let s = TestServer::spawn().await;
    let xia = s.user("xia").await;
    let room = s.room(&xia, "limits").await;
    let path = format!("/api/v1/rooms/{room}/messages");
    for body in [
        "x".to_string(),
        "x".repeat(4000),
        "é".repeat(4000),
        "🔥".repeat(4000),
    ] {
        let (status, resp) = s.post(&path, Some(&xia.token), json!({"body": body})).await;
        assert_eq!(status, 201, "{} chars: {resp}", body.chars().count());
        assert_eq!(resp["message"]["body"], body.as_str(), "stored exactly");
    }
    let cases = [
        (json!({"body": ""}), "invalid_body"),
        (json!({"body": "   \n\t"}), "invalid_body"),
        (json!({"body": "x".repeat(4001)}), "invalid_body"),
        (json!({"body": "é".repeat(4001)}), "invalid_body"),
        (json!({"body": "ok", "client_id": ""}), "invalid_client_id"),
        (
            json!({"body": "ok", "client_id": "c".repeat(65)}),
            "invalid_client_id",
        ),
        (json!({}), "invalid_request"),
        (json!({"body": 7}), "invalid_request"),
        (json!({"body": "ok", "client_id": 7}), "invalid_request"),
    ];
    for (body, code) in cases {
        let (status, resp) = s.post(&path, Some(&xia.token), body.clone()).await;
        assert_api_error(status, &resp, 400, code);
    }
    for malformed in ["", "{\"body\": \"unterminated", "{'body': 'single quotes'}"] {
        let r = s
            .call("POST", &path)
            .auth(Auth::Bearer(&xia.token))
            .raw(malformed)
            .send()
            .await;
        r.assert_error(400, "invalid_json");
    }
    assert_eq!(
        s.history(&xia, &room).await.len(),
        4,
        "no refused message was stored"
    );
}

#[tokio::test]
async fn request_bodies_over_64_kib_are_413() {
    let s = TestServer::spawn().await;
    let yan = s.user("yan").await;
    let room = s.room(&yan, "big").await;
    let path = format!("/api/v1/rooms/{room}/messages");
    let sized = |total: usize| format!("{{\"body\":\"{}\"}}", "x".repeat(total - 11));

    // Exactly 64 KiB is read (and then refused for its body length)...
    let at_limit = sized(64 * 1024);
    assert_eq!(at_limit.len(), 65536);
    let r = s
        .call("POST", &path)
        .auth(Auth::Bearer(&yan.token))
        .raw(at_limit)
        .send()
        .await;
    r.assert_error(400, "invalid_body");
    // ...one byte more is not, on this route or any other.
    for target in [path.as_str(), "/api/v1/signup", "/api/v1/rooms"] {
        let r = s
            .call("POST", target)
            .auth(Auth::Bearer(&yan.token))
            .raw(sized(64 * 1024 + 1))
            .send()
            .await;
        r.assert_error(413, "payload_too_large");
    }
    // Without a Content-Length, the limit holds while reading.
    let reply = raw_http(
        &s.addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n",
            s.addr, yan.token
        ),
        &sized(70 * 1024),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("\"payload_too_large\""), "{reply}");
    assert_eq!(s.history(&yan, &room).await.len(), 0);
}

/// Sends `head` then `body` in 16 KiB chunks, and returns the whole answer.
async fn raw_http(addr: &str, head: &str, body: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write head");
    for chunk in body.as_bytes().chunks(16 * 1024) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        // The server may answer and close before taking it all.
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).to_string()
}

// ---- History --------------------------------------------------------------

#[tokio::test]
async fn history_pages_with_before_after_and_limit() {
    let s = TestServer::spawn().await;
    let zoe = s.user("zoe").await;
    let room = s.room(&zoe, "archive").await;
    let page = |query: String| {
        let s = &s;
        let zoe = &zoe;
        let room = &room;
        async move {
            s.get(
                &format!("/api/v1/rooms/{room}/messages{query}"),
                Some(&zoe.token),
            )
            .await
        }
    };
    let (status, empty) = page(String::new()).await;
    assert_eq!((status, empty), (200, json!({"messages": []})));

    s.post_many(&zoe, &room, 12).await;
    let range = |a: u64, b: u64| (a..=b).collect::<Vec<_>>();
    let cases: Vec<(&str, Vec<u64>)> = vec![
        ("", range(1, 12)),
        ("?limit=5", range(8, 12)),
        ("?limit=1", vec![12]),
        ("?limit=200", range(1, 12)),
        ("?before=6", range(1, 5)),
        ("?before=6&limit=2", vec![4, 5]),
        ("?limit=2&before=6", vec![4, 5]),
        ("?before=2", vec![1]),
        ("?before=1", vec![]),
        ("?before=0", vec![]),
        ("?before=999", range(1, 12)),
        ("?after=9", range(10, 12)),
        ("?after=9&limit=2", vec![10, 11]),
        ("?after=0&limit=3", vec![1, 2, 3]),
        ("?after=11", vec![12]),
        ("?after=12", vec![]),
        ("?after=999", vec![]),
    ];
    for (query, want) in cases {
        let (status, body) = page(query.to_string()).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(seqs(&body), want, "{query}");
    }
    for bad in [
        "?limit=0",
        "?limit=201",
        "?limit=-1",
        "?limit=abc",
        "?limit=",
        "?limit=1.5",
        "?before=abc",
        "?before=-1",
        "?after=x",
        "?before=5&after=2",
    ] {
        let (status, body) = page(bad.to_string()).await;
        assert_api_error(status, &body, 400, "invalid_request");
    }
}

#[tokio::test]
async fn history_defaults_to_50_caps_at_200_and_pages_back_to_the_start() {
    let s = TestServer::spawn().await;
    let abe = s.user("abe").await;
    let room = s.room(&abe, "long").await;
    s.post_many(&abe, &room, 205).await;
    let get = |query: String| {
        let (s, abe, room) = (&s, &abe, &room);
        async move {
            let (status, body) = s
                .get(
                    &format!("/api/v1/rooms/{room}/messages{query}"),
                    Some(&abe.token),
                )
                .await;
            assert_eq!(status, 200, "{query}: {body}");
            seqs(&body)
        }
    };
    assert_eq!(get(String::new()).await, (156..=205).collect::<Vec<_>>());
    assert_eq!(
        get("?limit=200".into()).await,
        (6..=205).collect::<Vec<_>>()
    );
    assert_eq!(
        get("?after=0&limit=200".into()).await,
        (1..=200).collect::<Vec<_>>()
    );

    // Scrolling back from the newest with `before` sees each message once.
    let mut seen = Vec::new();
    let mut query = "?limit=60".to_string();
    loop {
        let page = get(query).await;
        let Some(&oldest) = page.first() else { break };
        seen.splice(0..0, page);
        query = format!("?limit=60&before={oldest}");
    }
    assert_eq!(seen, (1..=205).collect::<Vec<_>>());
}

// ---- Rate limits ----------------------------------------------------------

#[tokio::test]
async fn sending_too_fast_over_rest_is_429_with_retry_after() {
    let s =
        TestServer::spawn_with(&[("HEARTH_SEND_BURST", "5"), ("HEARTH_SEND_PER_SEC", "1")]).await;
    let bea = s.user("bea").await;
    let cal = s.user("cal").await;
    let room = s.room(&bea, "flood").await;
    s.join(&cal, &room).await;
    let path = format!("/api/v1/rooms/{room}/messages");
    for i in 0..5 {
        let (status, body) = s
            .post(&path, Some(&bea.token), json!({"body": format!("m{i}")}))
            .await;
        assert_eq!(status, 201, "send {i} is within the burst: {body}");
    }
    let r = s
        .call("POST", &path)
        .auth(Auth::Bearer(&bea.token))
        .json(json!({"body": "one too many"}))
        .send()
        .await;
    r.assert_error(429, "rate_limited");
    let wait: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("Retry-After is whole seconds");
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    // The budget is per user.
    let (status, _) = s
        .post(&path, Some(&cal.token), json!({"body": "me too"}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(s.history(&bea, &room).await.len(), 6);
}

#[tokio::test]
async fn signups_are_limited_per_ip() {
    let s = TestServer::spawn_with(&[("HEARTH_SIGNUP_BURST", "2")]).await;
    let signup = |name: &str| json!({"username": name, "email": format!("{name}@example.com"), "password": "password1"});
    for name in ["first", "second"] {
        let (status, _) = s.post("/api/v1/signup", None, signup(name)).await;
        assert_eq!(status, 201);
    }
    let r = s
        .call("POST", "/api/v1/signup")
        .json(signup("third"))
        .send()
        .await;
    r.assert_error(429, "rate_limited");
    assert!(r
        .header("retry-after")
        .is_some_and(|v| v.parse::<u64>().is_ok_and(|n| n >= 1)));
}

#[tokio::test]
async fn logins_are_limited_per_ip_right_or_wrong() {
    let s = TestServer::spawn_with(&[("HEARTH_LOGIN_PER_MINUTE", "3")]).await;
    let dee = s.user("dee").await; // the first of three attempts
    let (status, _) = s
        .post(
            "/api/v1/login",
            None,
            json!({"login": "dee", "password": "wrong-password"}),
        )
        .await;
    assert_eq!(status, 401);
    s.login("dee", "password-dee").await;
    let r = s
        .call("POST", "/api/v1/login")
        .json(json!({"login": "dee", "password": "password-dee"}))
        .send()
        .await;
    r.assert_error(429, "rate_limited");
    assert!(r
        .header("retry-after")
        .is_some_and(|v| v.parse::<u64>().is_ok_and(|n| n >= 1)));
    let (status, _) = s.get("/api/v1/me", Some(&dee.token)).await;
    assert_eq!(status, 200, "existing sessions are not limited");
}

/// Every path the router serves is in the client protocol document, so a
/// new endpoint cannot ship undocumented.
#[test]
fn every_route_is_documented() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let router = std::fs::read_to_string(root.join("src/http/router.rs")).expect("router.rs");
    let docs = std::fs::read_to_string(root.join("docs/protocol.md")).expect("protocol.md");
    let table = router
        .split("const ROUTES")
        .nth(1)
        .and_then(|rest| rest.split("];").next())
        .expect("the ROUTES table");
    let paths: Vec<&str> = table
        .split('"')
        .filter(|part| part.starts_with('/'))
        .collect();
    assert!(paths.len() > 20, "read the routes: {paths:?}");
    // The path itself, not only a longer one that starts with it.
    let documented = |path: &str| {
        docs.match_indices(path).any(|(at, _)| {
            docs[at + path.len()..]
                .chars()
                .next()
                .is_none_or(|c| !(c == '/' || c.is_alphanumeric() || c == '_'))
        })
    };
    let missing: Vec<_> = paths.iter().filter(|p| !documented(p)).collect();
    assert!(
        missing.is_empty(),
        "routes missing from docs/protocol.md: {missing:?}"
    );
}
