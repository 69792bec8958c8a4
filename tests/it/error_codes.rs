//! Every error code that `docs/protocol.md` lists is one the server really
//! answers: this walks the documented tables and reaches each code through
//! the real server, over HTTP or the WebSocket as the table says. A code
//! that cannot be provoked from outside on demand names the test that
//! reaches it (or why nothing should). The codes in `src/error.rs` and in
//! the docs must be the same set.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{TestServer, User};

/// Codes reached elsewhere, or never on purpose, with where or why.
const ELSEWHERE: &[(&str, &str)] = &[
    (
        "storage_failed",
        "crash::a_full_disk_fails_sends_clearly_and_a_restart_recovers",
    ),
    (
        "shutting_down",
        "only while the committer drains at shutdown; answered by the same code path as storage_failed",
    ),
    ("internal", "a server bug: no request may reach it"),
];

/// The codes the docs list: the HTTP error table and the WebSocket
/// `error` frame table.
fn documented() -> BTreeSet<String> {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/protocol.md"))
            .expect("docs/protocol.md");
    let mut codes = BTreeSet::new();
    for line in docs.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // `| 404 | `room_not_found` | …` or `| `hello_first` | …`
        let cell = if cells.get(1).is_some_and(|c| c.parse::<u16>().is_ok()) {
            cells.get(2)
        } else {
            cells.get(1)
        };
        for code in cell.into_iter().flat_map(|c| c.split(',')) {
            let code = code.trim();
            if let Some(code) = code.strip_prefix('`').and_then(|c| c.strip_suffix('`')) {
                if !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                    codes.insert(code.to_string());
                }
            }
        }
    }
    codes
}

/// The codes `ApiError::code` can return, read from its source.
fn in_source() -> BTreeSet<String> {
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/error.rs"))
        .expect("src/error.rs");
    let start = src.find("pub fn code(&self)").expect("code()");
    let body = &src[start..];
    let end = body.find("\n    }\n").expect("end of code()");
    body[..end]
        .lines()
        .filter_map(|l| l.split("=> \"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_docs_list_exactly_the_codes_the_server_has() {
    let docs = documented();
    let source = in_source();
    assert!(
        source.len() > 20,
        "read the codes from src/error.rs: {source:?}"
    );
    let undocumented: Vec<_> = source.difference(&docs).collect();
    let stale: Vec<_> = docs.difference(&source).collect();
    assert!(
        undocumented.is_empty(),
        "codes missing from docs/protocol.md: {undocumented:?}"
    );
    assert!(
        stale.is_empty(),
        "docs/protocol.md lists codes the server has not: {stale:?}"
    );
}

#[tokio::test]
async fn every_documented_error_code_is_reached_through_the_real_server() {
    let mut reached: BTreeMap<String, String> = BTreeMap::new();
    let mut note = |code: &str, how: &str| {
        reached
            .entry(code.to_string())
            .or_insert_with(|| how.to_string());
    };

    let s = TestServer::spawn_with(&[
        ("HEARTH_BODY_READ_TIMEOUT_SECS", "1"),
        ("HEARTH_UPLOAD_QUOTA_MB", "1"),
    ])
    .await;
    let admin = s.user("admin").await; // the first account administers
    let bob = s.user("bob").await;
    let room = s.room(&admin, "general").await;
    let bobs = s.room(&bob, "bobs").await;

    // Accounts.
    for (body, how) in [
        (
            json!({"username": "x", "email": "x@example.com", "password": "long enough"}),
            "signup",
        ),
        (
            json!({"username": "xavier", "email": "nope", "password": "long enough"}),
            "signup",
        ),
        (
            json!({"username": "xavier", "email": "x@example.com", "password": "short"}),
            "signup",
        ),
        (
            json!({"username": "BOB", "email": "b2@example.com", "password": "long enough"}),
            "signup",
        ),
        (
            json!({"username": "bobby", "email": "BOB@example.com", "password": "long enough"}),
            "signup",
        ),
        (json!({"username": 3}), "signup with a wrong type"),
    ] {
        let (_, r) = s.post("/api/v1/signup", None, body).await;
        note(code(&r), how);
    }
    let (_, r) = s
        .post(
            "/api/v1/login",
            None,
            json!({"login": "bob", "password": "wrong password"}),
        )
        .await;
    note(code(&r), "login");
    let (_, r) = s.get("/api/v1/me", None).await;
    note(code(&r), "GET /me without a token");
    let (_, r) = s
        .post(
            "/api/v1/password-reset",
            None,
            json!({"code": "not-a-code", "password": "long enough"}),
        )
        .await;
    note(code(&r), "a password reset with an unknown code");
    let r = s
        .call("POST", "/api/v1/rooms")
        .header("Cookie", &format!("hearth_session={}", bob.token))
        .header("Origin", "http://evil.example")
        .json(json!({"name": "x"}))
        .send()
        .await;
    note(code(&r.body), "cookie POST from a foreign origin");
    let r = s
        .call("POST", "/api/v1/login")
        .raw("{not json")
        .send()
        .await;
    note(code(&r.body), "a body that is not JSON");
    let r = s
        .call("POST", "/api/v1/login")
        .raw(vec![b' '; 70 * 1024])
        .send()
        .await;
    note(code(&r.body), "a body over 64 KiB");

    // Rooms.
    let (_, r) = s
        .post("/api/v1/rooms", Some(&bob.token), json!({"name": "  "}))
        .await;
    note(code(&r), "create a room");
    let (_, r) = s
        .post(
            "/api/v1/rooms",
            Some(&bob.token),
            json!({"name": "ok", "topic": "t".repeat(300)}),
        )
        .await;
    note(code(&r), "create a room");
    let (_, r) = s
        .post(
            "/api/v1/rooms",
            Some(&bob.token),
            json!({"name": "GENERAL"}),
        )
        .await;
    note(code(&r), "create a room");
    let (_, r) = s.get("/api/v1/rooms/not-a-room", Some(&bob.token)).await;
    note(code(&r), "GET an unknown room");
    let (_, r) = s
        .get(&format!("/api/v1/rooms/{room}/messages"), Some(&bob.token))
        .await;
    note(code(&r), "history of a room one is not in");
    let (_, r) = s
        .get(
            &format!("/api/v1/rooms/{bobs}/messages?limit=0"),
            Some(&bob.token),
        )
        .await;
    note(code(&r), "a bad limit");
    let (_, r) = s.get("/api/v1/search?q=%22open", Some(&bob.token)).await;
    note(code(&r), "a search with an unclosed phrase");
    let (_, r) = s
        .get("/api/v1/search?q=x&cursor=nonsense", Some(&bob.token))
        .await;
    note(code(&r), "a search with a cursor it did not return");
    let (_, r) = s.get("/api/v1/nothing-here", None).await;
    note(code(&r), "an unknown API path");
    let r = s.call("PUT", "/api/v1/rooms").send().await;
    note(code(&r.body), "a method the path does not take");

    // Administrators only.
    let (_, r) = s
        .delete(
            &format!("/api/v1/rooms/{room}"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    note(code(&r), "a non-administrator deletes a room");
    let (_, r) = s
        .delete(
            &format!("/api/v1/rooms/{room}/messages/99"),
            Some(&admin.token),
            json!({}),
        )
        .await;
    note(
        code(&r),
        "an administrator removes a message that does not exist",
    );
    let (_, r) = s
        .post(
            "/api/v1/users/6f1c2f0e-8a3b-4c1d-9e2f-0a1b2c3d4e5f/disable",
            Some(&admin.token),
            json!({}),
        )
        .await;
    note(code(&r), "an administrator disables an unknown user");
    let carol = s.user("carol").await;
    let (status, _) = s
        .post(
            &format!("/api/v1/users/{}/disable", carol.id),
            Some(&admin.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 204);
    let (_, r) = s
        .post(
            "/api/v1/login",
            None,
            json!({"login": "carol", "password": "password-carol"}),
        )
        .await;
    note(code(&r), "a disabled account logs in");

    // Sends, over the WebSocket (the codes REST shares are checked in parity).
    let mut ws = s.ws(&bob).await;
    ws.send_json(json!({"type": "send", "room": bobs, "client_id": "h", "body": "hi"}))
        .await;
    note(code(&ws.expect("error").await), "a send before hello");
    ws.hello(None).await;
    ws.send_json(json!({"type": "hello"})).await;
    note(code(&ws.expect("error").await), "a second hello");
    ws.send_json(json!({"type": "shout"})).await;
    note(code(&ws.expect("error").await), "an unknown frame type");
    ws.send_json(json!({"type": "send", "room": bobs})).await;
    note(code(&ws.expect("error").await), "a send without its fields");
    for (cid, body, how) in [
        ("", "hi", "a send with an empty client_id"),
        ("e1", "", "a send with an empty body"),
    ] {
        ws.send(&bobs, cid, body).await;
        note(code(&ws.expect("error").await), how);
    }

    // Edits, deletions, reactions and replies.
    let mine = s.say(&bob, &bobs, "mine", None).await["seq"]
        .as_u64()
        .expect("seq");
    let (_, r) = s
        .post(
            &format!("/api/v1/rooms/{bobs}/messages"),
            Some(&bob.token),
            json!({"body": "re", "reply_to": 999}),
        )
        .await;
    note(code(&r), "a reply to nothing");
    let r = s
        .call(
            "PUT",
            &format!("/api/v1/rooms/{bobs}/messages/{mine}/reactions/x"),
        )
        .header("Authorization", &format!("Bearer {}", bob.token))
        .send()
        .await;
    note(code(&r.body), "a reaction that is not an emoji");
    let dave = s.user("dave").await;
    s.join(&dave, &bobs).await;
    let r = s
        .request(
            "PATCH",
            &format!("/api/v1/rooms/{bobs}/messages/{mine}"),
            &dave.token,
            json!({"body": "not yours"}),
        )
        .await;
    note(code(&r.body), "an edit of someone else's message");
    let (_, r) = s
        .delete(
            &format!("/api/v1/rooms/{bobs}/messages/{mine}"),
            Some(&dave.token),
            json!({}),
        )
        .await;
    note(code(&r), "a member deletes someone else's message");
    for (i, emoji) in [
        "😀", "😁", "😂", "🤣", "😃", "😄", "😅", "😆", "😉", "😊", "😋", "😎", "😍", "😘", "🥰",
        "😗", "😙", "🥲", "🙂", "🙃", "😇",
    ]
    .iter()
    .enumerate()
    {
        let encoded: String = emoji.bytes().map(|b| format!("%{b:02X}")).collect();
        let r = s
            .call(
                "PUT",
                &format!("/api/v1/rooms/{bobs}/messages/{mine}/reactions/{encoded}"),
            )
            .header("Authorization", &format!("Bearer {}", dave.token))
            .send()
            .await;
        if r.status != 204 {
            assert_eq!(i, 20, "only the 21st emoji is refused");
            note(code(&r.body), "a 21st emoji on one message");
        }
    }
    let (_, _) = s
        .delete(
            &format!("/api/v1/rooms/{bobs}/messages/{mine}"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    let r = s
        .request(
            "PATCH",
            &format!("/api/v1/rooms/{bobs}/messages/{mine}"),
            &bob.token,
            json!({"body": "undelete"}),
        )
        .await;
    note(code(&r.body), "an edit of a deleted message");

    let (_, r) = s
        .delete(
            "/api/v1/me/sessions/0123456789abcdef",
            Some(&bob.token),
            json!({}),
        )
        .await;
    note(code(&r), "ending a session that is not yours");

    let (_, r) = s
        .post("/api/v1/dms", Some(&bob.token), json!({"users": [bob.id]}))
        .await;
    note(code(&r), "a direct room with only yourself");
    let (_, r) = s
        .post("/api/v1/dms", Some(&bob.token), json!({"users": [dave.id]}))
        .await;
    let direct_room = r["room"]["id"].as_str().expect("a direct room").to_string();
    let (_, r) = s
        .post(
            &format!("/api/v1/rooms/{direct_room}/leave"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    note(code(&r), "leaving a direct room");

    let (_, _) = s
        .post(
            &format!("/api/v1/rooms/{bobs}/bans"),
            Some(&bob.token),
            json!({"user": dave.id}),
        )
        .await;
    let (_, r) = s
        .post(
            &format!("/api/v1/rooms/{bobs}/join"),
            Some(&dave.token),
            json!({}),
        )
        .await;
    note(code(&r), "joining a room that banned you");

    let r = s
        .request(
            "PATCH",
            "/api/v1/me",
            &bob.token,
            json!({"display_name": ""}),
        )
        .await;
    assert_eq!(r.status, 200, "an empty display name clears it");
    let r = s
        .request(
            "PATCH",
            "/api/v1/me",
            &bob.token,
            json!({"about": "z".repeat(300)}),
        )
        .await;
    note(code(&r.body), "an about line that is too long");
    let r = s
        .call("PUT", "/api/v1/me/avatar")
        .header("Authorization", &format!("Bearer {}", bob.token))
        .body("image/png", b"not a picture".to_vec())
        .send()
        .await;
    note(code(&r.body), "an avatar that is not a picture");
    let (_, r) = s
        .get(
            &format!("/api/v1/users/{}/avatar", dave.id),
            Some(&bob.token),
        )
        .await;
    note(code(&r), "the avatar of someone who has none");

    // Files: attachments that are not one's uploads, too many, a quota
    // used up, a file one cannot see, a range past its end.
    let messages = format!("/api/v1/rooms/{bobs}/messages");
    let post = |files: Value| {
        s.request(
            "POST",
            &messages,
            &bob.token,
            json!({"body": "", "files": files}),
        )
    };
    let unknown = "0190b5c2-0000-7000-8000-000000000000";
    note(
        code(&post(json!([unknown])).await.body),
        "attaching an unknown file",
    );
    note(
        code(&post(json!(vec![unknown; 11])).await.body),
        "attaching 11 files",
    );
    let upload = |name: &str, bytes: Vec<u8>| {
        s.call("POST", &format!("/api/v1/rooms/{bobs}/uploads?name={name}"))
            .header("Authorization", &format!("Bearer {}", bob.token))
            .body("application/octet-stream", bytes)
            .send()
    };
    let first = upload("a.bin", vec![0; 1024 * 1024 - 1000]).await;
    assert_eq!(first.status, 201, "{}", first.body);
    note(
        code(&upload("b.bin", vec![1; 2000]).await.body),
        "an upload past the quota",
    );
    let (_, r) = s
        .get(&format!("/api/v1/files/{unknown}"), Some(&bob.token))
        .await;
    note(code(&r), "downloading an unknown file");
    let r = s
        .call(
            "GET",
            &format!(
                "/api/v1/files/{}",
                first.body["file"]["id"].as_str().unwrap_or_default()
            ),
        )
        .header("Authorization", &format!("Bearer {}", bob.token))
        .header("Range", "bytes=2000000-")
        .send()
        .await;
    note(code(&r.body), "a range past the end of a file");

    // Webhooks: an unknown secret, and one hook too many.
    let (_, r) = s
        .post("/api/v1/hooks/not-a-secret", None, json!({"body": "x"}))
        .await;
    note(code(&r), "posting to an unknown webhook");
    let hooked = s.room(&bob, "hooked").await;
    let mut last = Value::Null;
    for i in 0..21 {
        let (_, r) = s
            .post(
                &format!("/api/v1/rooms/{hooked}/hooks"),
                Some(&bob.token),
                json!({"name": format!("hook {i}")}),
            )
            .await;
        last = r;
    }
    note(code(&last), "a 21st webhook in one room");
    let (_, bot) = s
        .post(
            "/api/v1/bots",
            Some(&admin.token),
            json!({"username": "relay"}),
        )
        .await;
    let r = s
        .request(
            "PUT",
            &format!(
                "/api/v1/bots/{}/callback",
                bot["user"]["id"].as_str().unwrap_or_default()
            ),
            &admin.token,
            json!({"url": "https://example.com/hook"}),
        )
        .await;
    note(code(&r.body), "a callback URL outside webhook_allow");

    // The body that never arrives.
    note(
        &request_timeout(&s).await,
        "a body that does not arrive in time",
    );

    // Registration modes.
    let closed = TestServer::spawn_with(&[("HEARTH_REGISTRATION", "closed")]).await;
    let (_, r) = closed
        .post(
            "/api/v1/signup",
            None,
            json!({"username": "dan", "email": "d@example.com", "password": "long enough"}),
        )
        .await;
    note(code(&r), "sign-up while registration is closed");
    let invite = TestServer::spawn_with(&[("HEARTH_REGISTRATION", "invite")]).await;
    let (_, r) = invite
        .post("/api/v1/signup", None, json!({"username": "dan", "email": "d@example.com", "password": "long enough", "invite": "made-up"}))
        .await;
    note(code(&r), "sign-up with an unknown invite");

    // Search on a server that does not index.
    let unindexed = TestServer::spawn_with(&[("HEARTH_SEARCH_INDEX", "false")]).await;
    let fay = unindexed.user("fay").await;
    let (_, r) = unindexed.get("/api/v1/search?q=x", Some(&fay.token)).await;
    note(code(&r), "a search with indexing turned off");

    // Limits: a send flood, and a login flood at one hashing thread.
    // Web Push subscriptions, by an account in no room (nothing is ever
    // pushed to the made-up endpoints).
    let pushy = s.user("pushy").await;
    let p256dh = {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let secret = p256::SecretKey::from_slice(&[7u8; 32]).expect("a scalar");
        secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    };
    let b64 = |bytes: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    let sub = |endpoint: String, auth: &[u8]| json!({"endpoint": endpoint, "keys": {"p256dh": b64(&p256dh), "auth": b64(auth)}});
    for (body, how) in [
        (
            sub("http://127.0.0.1:9/push".into(), &[1; 16]),
            "a plain-http push endpoint",
        ),
        (
            sub("https://push.example.net/x".into(), &[1; 15]),
            "a 15-byte push auth secret",
        ),
        (
            sub(
                format!("https://push.example.net/{}", "x".repeat(1100)),
                &[1; 16],
            ),
            "a push endpoint over 1024 bytes",
        ),
    ] {
        let r = s
            .request("POST", "/api/v1/push/subscriptions", &pushy.token, body)
            .await;
        note(code(&r.body), how);
    }
    for i in 0..11 {
        let body = sub(format!("https://push.example.net/{i}"), &[1; 16]);
        let r = s
            .request("POST", "/api/v1/push/subscriptions", &pushy.token, body)
            .await;
        if r.status != 201 {
            note(code(&r.body), "an 11th push subscription");
        }
    }

    let tight = TestServer::spawn_with(&[
        ("HEARTH_SEND_PER_SEC", "1"),
        ("HEARTH_SEND_BURST", "1"),
        ("HEARTH_HASH_CONCURRENCY", "1"),
    ])
    .await;
    let eve = tight.user("eve").await;
    let eves = tight.room(&eve, "eves").await;
    for i in 0..3 {
        let (_, r) = tight
            .post(
                &format!("/api/v1/rooms/{eves}/messages"),
                Some(&eve.token),
                json!({"body": "flood", "client_id": format!("f{i}")}),
            )
            .await;
        if r.get("error").is_some() {
            note(code(&r), "sends over the rate");
        }
    }
    note(
        &login_flood(&tight, &eve).await,
        "60 logins at one hashing thread",
    );

    // Everything documented is reached here or accounted for.
    let elsewhere: BTreeMap<&str, &str> = ELSEWHERE.iter().copied().collect();
    let tests = all_test_sources();
    for (code, why) in &elsewhere {
        if let Some((module, name)) = why.split_once("::") {
            if !why.contains(' ') {
                assert!(
                    tests
                        .get(module)
                        .is_some_and(|src| src.contains(&format!("fn {name}("))),
                    "{code} is said to be reached by {why}, which does not exist"
                );
            }
        }
    }
    let missing: Vec<_> = documented()
        .into_iter()
        .filter(|c| !reached.contains_key(c) && !elsewhere.contains_key(c.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "documented codes no test reached: {missing:?}\nreached: {reached:?}"
    );
    let unlisted: Vec<_> = reached
        .keys()
        .filter(|c| !documented().contains(*c))
        .collect();
    assert!(
        unlisted.is_empty(),
        "codes answered but not documented: {unlisted:?}"
    );
}

fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .or_else(|| body["code"].as_str())
        .unwrap_or_else(|| panic!("not an error: {body}"))
}

/// Sends a request head promising a body that never comes.
async fn request_timeout(s: &TestServer) -> String {
    let mut tcp = tokio::net::TcpStream::connect(&s.addr)
        .await
        .expect("connect");
    tcp.write_all(
        b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    )
    .await
    .expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    let value: Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("an error body: {text}"));
    code(&value).to_string()
}

/// Logs in 60 times at once; returns the first refusal's code.
async fn login_flood(s: &TestServer, user: &User) -> String {
    // 60 at once: more than the hashing queue holds (32 per thread).
    let logins = (0..60).map(|_| {
        s.post(
            "/api/v1/login",
            None,
            json!({"login": user.name, "password": format!("password-{}", user.name)}),
        )
    });
    let results = futures_util::future::join_all(logins).await;
    results
        .iter()
        .find(|(status, _)| *status == 503)
        .map(|(_, body)| code(body).to_string())
        .unwrap_or_else(|| "no refusal".into())
}

fn all_test_sources() -> BTreeMap<String, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    std::fs::read_dir(dir)
        .expect("tests/it")
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            let name = path.file_stem()?.to_string_lossy().to_string();
            Some((name, std::fs::read_to_string(&path).ok()?))
        })
        .collect()
}
