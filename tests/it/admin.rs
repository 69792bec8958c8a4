//! The operator's CLI against a real server and a real data directory:
//! accounts, rooms, invites, stats, verify, backup and restore, config.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::harness::{hearth_in, TestServer};

fn hearth(data: &Path, args: &[&str]) -> Output {
    hearth_in(data, args, "")
}

/// Runs a command that must succeed; returns its stdout.
fn ok(data: &Path, args: &[&str]) -> String {
    let out = hearth(data, args);
    assert!(
        out.status.success(),
        "hearth {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn json_of(data: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ok(data, &all)).expect("JSON output")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn user_lifecycle_from_the_cli_while_the_server_runs() {
    let mut s = TestServer::spawn().await;
    let data = s.data_dir();
    let out = hearth_in(
        &data,
        &[
            "user",
            "add",
            "alice",
            "--email",
            "alice@example.com",
            "--password-stdin",
        ],
        "password-alice\n",
    );
    assert!(out.status.success(), "{out:?}");
    let alice_info = json_of(&data, &["user", "show", "alice"]);
    assert_eq!(alice_info["admin"], true, "the first account is an admin");
    let alice = s.login("alice", "password-alice").await;

    let bob = s.user("bob").await;
    assert_eq!(json_of(&data, &["user", "show", "bob"])["admin"], false);
    let room = s.room(&alice, "general").await;
    s.join(&bob, &room).await;
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;

    // Disabling acts on the live server at once: the socket closes with
    // "session revoked", the token stops working, login is refused.
    let said = ok(&data, &["user", "disable", "bob"]);
    assert!(said.contains("bob is disabled"), "{said}");
    assert_eq!(bob_ws.close_code().await, Some(4001));
    assert_eq!(s.get("/api/v1/me", Some(&bob.token)).await.0, 401);
    let (status, body) = s
        .post(
            "/api/v1/login",
            None,
            json!({"login": "bob", "password": "password-bob"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("account_disabled"))
    );
    assert_eq!(json_of(&data, &["user", "show", "bob"])["disabled"], true);

    ok(&data, &["user", "enable", "bob"]);
    let bob = s.login("bob", "password-bob").await;

    // A new password ends every session.
    let out = hearth_in(
        &data,
        &["user", "passwd", "bob", "--password-stdin"],
        "new-password-bob\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(s.get("/api/v1/me", Some(&bob.token)).await.0, 401);
    let bob = s.login("bob", "new-password-bob").await;

    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;
    let said = ok(&data, &["user", "revoke-sessions", "bob"]);
    assert!(said.contains("Ended 1 session(s) of bob"), "{said}");
    assert_eq!(bob_ws.close_code().await, Some(4001));
    assert_eq!(s.get("/api/v1/me", Some(&bob.token)).await.0, 401);

    let users = json_of(&data, &["user", "list"]);
    let names: Vec<&str> = users
        .as_array()
        .expect("a list")
        .iter()
        .map(|u| u["username"].as_str().expect("username"))
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    let text_live = ok(&data, &["user", "list"]);

    // With the server stopped the CLI opens the directory itself, and
    // prints exactly the same.
    let (status, _) = s.terminate();
    assert!(status.success());
    assert!(
        !data.join("admin.sock").exists(),
        "the socket is removed on shutdown"
    );
    assert_eq!(json_of(&data, &["user", "list"]), users);
    assert_eq!(ok(&data, &["user", "list"]), text_live);
    let said = ok(&data, &["user", "delete", "bob"]);
    assert!(said.contains("bob is deleted"), "{said}");
    assert!(!hearth(&data, &["user", "show", "bob"]).status.success());

    s.restart();
    let (status, _) = s
        .post(
            "/api/v1/login",
            None,
            json!({"login": "bob", "password": "new-password-bob"}),
        )
        .await;
    assert_eq!(status, 401, "a deleted account cannot log in");
    let history = s.history(&alice, &room).await;
    assert!(history.is_empty());
    let members = json_of(&data, &["room", "show", "general"]);
    assert_eq!(members["member_names"], json!(["alice"]));
    ok(&data, &["verify"]);
}

#[tokio::test]
async fn the_admin_socket_is_private_and_a_typo_in_data_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let s = TestServer::spawn().await;
    let mode = std::fs::metadata(s.data_dir().join("admin.sock"))
        .expect("the admin socket exists while the server runs")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let missing = s.data_dir().join("nope");
    let out = hearth(&missing, &["user", "list"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("holds no hearth data"),
        "{out:?}"
    );
    assert!(
        !missing.exists(),
        "nothing is created by a read-only command"
    );
}

#[tokio::test]
async fn rooms_from_the_cli() {
    let s = TestServer::spawn().await;
    let data = s.data_dir();
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = s.room(&alice, "general").await;
    s.join(&bob, &room).await;
    for i in 1..=3 {
        s.say(&alice, &room, &format!("message {i}"), None).await;
    }
    let rooms = json_of(&data, &["room", "list"]);
    assert_eq!(rooms[0]["name"], "general");
    assert_eq!(rooms[0]["members"], 2);
    assert_eq!(rooms[0]["last_seq"], 3);

    ok(&data, &["room", "rename", "general", "lobby"]);
    let (_, body) = s
        .get(&format!("/api/v1/rooms/{room}"), Some(&bob.token))
        .await;
    assert_eq!(
        body["room"]["name"], "lobby",
        "the live server sees the new name"
    );
    assert_eq!(body["room"]["last_seq"], 3);
    s.say(&bob, &room, "after the rename", None).await;

    ok(&data, &["room", "delete-message", "lobby", "2"]);
    let history = s.history(&bob, &room).await;
    assert_eq!(history.len(), 4, "a deleted message keeps its seq");
    assert_eq!(history[1]["deleted"], true);
    assert_eq!(history[1]["body"], "");
    assert_eq!(history[2]["body"], "message 3");
    let out = hearth(&data, &["room", "delete-message", "lobby", "9"]);
    assert!(!out.status.success());

    // Deleting the room tells live members they left.
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;
    ok(&data, &["room", "delete", &room]);
    let left = bob_ws.expect("left").await;
    assert_eq!(left["room"], json!(room));
    let (status, _) = s
        .get(&format!("/api/v1/rooms/{room}"), Some(&bob.token))
        .await;
    assert_eq!(status, 404);
    assert_eq!(json_of(&data, &["room", "list"]), json!([]));
    let report = json_of(&data, &["verify"]);
    assert_eq!(report["problems"], json!([]), "{report}");
}

#[tokio::test]
async fn admins_moderate_over_the_api() {
    let s = TestServer::spawn().await;
    let admin = s.user("admin").await;
    let carol = s.user("carol").await;
    let dave = s.user("dave").await;
    let room = s.room(&carol, "carols").await;
    s.join(&dave, &room).await;
    s.say(&carol, &room, "spam", None).await;
    let path = format!("/api/v1/rooms/{room}/messages/1");
    // Someone else's message: only its author or an administrator.
    let (status, body) = s.delete(&path, Some(&dave.token), json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, _) = s.delete(&path, Some(&admin.token), json!({})).await;
    assert_eq!(status, 204);
    assert_eq!(s.history(&carol, &room).await[0]["deleted"], true);

    let mut carol_ws = s.ws(&carol).await;
    carol_ws.hello(None).await;
    let (status, _) = s
        .post(
            &format!("/api/v1/users/{}/disable", carol.id),
            Some(&admin.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(carol_ws.close_code().await, Some(4001));

    let (status, _) = s
        .delete(
            &format!("/api/v1/rooms/{room}"),
            Some(&admin.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        s.get(&format!("/api/v1/rooms/{room}"), Some(&admin.token))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn registration_by_invite_and_closed() {
    let s = TestServer::spawn_with(&[("HEARTH_REGISTRATION", "invite")]).await;
    let data = s.data_dir();
    let signup = |name: &str, invite: Option<&str>| {
        let mut body = json!({"username": name, "email": format!("{name}@example.com"), "password": format!("password-{name}")});
        if let Some(code) = invite {
            body["invite"] = json!(code);
        }
        body
    };
    let (status, body) = s.post("/api/v1/signup", None, signup("dan", None)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("invalid_invite"))
    );

    // Before any account exists, the CLI can still make invites.
    let code = ok(
        &data,
        &["invite", "create", "--uses", "1", "--expires", "1h"],
    );
    let code = code.trim();
    assert!(code.len() >= 20, "{code:?}");
    let (status, body) = s
        .post("/api/v1/signup", None, signup("dan", Some(code)))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"]["admin"], true, "the first account is an admin");
    let (status, body) = s
        .post("/api/v1/signup", None, signup("eve", Some(code)))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("invalid_invite")),
        "used up"
    );

    // A failed signup gives its use back.
    let code = ok(&data, &["invite", "create"]);
    let code = code.trim();
    let (status, _) = s
        .post("/api/v1/signup", None, signup("dan", Some(code)))
        .await;
    assert_eq!(status, 409, "username taken");
    let (status, body) = s
        .post("/api/v1/signup", None, signup("eve", Some(code)))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_ne!(body["user"]["admin"], true);

    // Listing shows no codes; revoking by id makes a code useless.
    let code = ok(&data, &["invite", "create", "--note", "for gil"]);
    let invites = json_of(&data, &["invite", "list"]);
    let invites = invites.as_array().expect("a list");
    assert_eq!(invites.len(), 3);
    assert_eq!(invites[0]["spent"], true);
    assert!(!invites.iter().any(|i| i.to_string().contains(code.trim())));
    let gil = invites
        .iter()
        .find(|i| i["note"] == "for gil")
        .expect("gil's");
    let id = &gil["id"].as_str().expect("id")[..8];
    ok(&data, &["invite", "revoke", id]);
    let (status, _) = s
        .post("/api/v1/signup", None, signup("gil", Some(code.trim())))
        .await;
    assert_eq!(status, 403, "a revoked code is refused");

    let closed = TestServer::spawn_with(&[("HEARTH_REGISTRATION", "closed")]).await;
    let (status, body) = closed
        .post("/api/v1/signup", None, signup("fay", None))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("registration_closed"))
    );
    let out = hearth_in(
        &closed.data_dir(),
        &[
            "user",
            "add",
            "fay",
            "--email",
            "fay@example.com",
            "--admin",
            "--password-stdin",
        ],
        "password-fay\n",
    );
    assert!(out.status.success(), "{out:?}");
    closed.login("fay", "password-fay").await;
}

#[tokio::test]
async fn stats_count_what_is_there() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    for i in 0..5 {
        s.say(&alice, &room, &format!("m{i}"), None).await;
    }
    let mut ws = s.ws(&alice).await;
    ws.hello(None).await;
    let stats = json_of(&s.data_dir(), &["stats"]);
    assert_eq!(stats["users"], 1);
    assert_eq!(stats["admins"], 1);
    assert_eq!(stats["rooms"], 1);
    assert_eq!(stats["messages"], 5);
    assert_eq!(stats["connections"], 1);
    assert!(stats["disk_bytes"].as_u64().expect("bytes") > 0);
}

#[tokio::test]
async fn a_backup_under_load_restores_every_acknowledged_message() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let rooms = [s.room(&alice, "one").await, s.room(&alice, "two").await];
    for r in &rooms {
        s.join(&bob, r).await;
    }
    // Two writers post as fast as acks come back, recording every ack.
    let acked: Arc<Mutex<Vec<(String, u64, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::new(s);
    let mut writers = Vec::new();
    for (w, user) in [alice, bob].into_iter().enumerate() {
        let (s, acked, stop, rooms) = (s.clone(), acked.clone(), stop.clone(), rooms.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let room = &rooms[i % 2];
                let body = format!("w{w} #{i}");
                let m = s.say(&user, room, &body, None).await;
                let seq = m["seq"].as_u64().expect("seq");
                acked.lock().unwrap().push((room.clone(), seq, body));
                i += 1;
            }
        }));
    }
    while acked.lock().unwrap().len() < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let before: Vec<_> = acked.lock().unwrap().clone();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("hearth.backup");
    let data = s.data_dir();
    let target = file.clone();
    let out = tokio::task::spawn_blocking(move || {
        hearth(&data, &["backup", target.to_str().expect("utf-8 path")])
    })
    .await
    .expect("backup ran");
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains("Backed up 2 users, 2 rooms"),
        "{out:?}"
    );
    // Verify, too, runs against the live store without false alarms.
    let data = s.data_dir();
    let out = tokio::task::spawn_blocking(move || hearth(&data, &["verify"]))
        .await
        .expect("verify ran");
    assert!(out.status.success(), "verify under load: {}", stdout(&out));
    // Writes went on during the backup.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.expect("writer");
    }
    assert!(
        acked.lock().unwrap().len() > before.len(),
        "the backup ran under load"
    );

    let again = hearth(&s.data_dir(), &["backup", file.to_str().expect("path")]);
    assert!(!again.status.success(), "a backup never overwrites a file");

    let restored = dir.path().join("restored");
    let out = hearth(&restored, &["restore", file.to_str().expect("path")]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains("OK: every invariant holds"),
        "{out:?}"
    );
    let out = hearth(&restored, &["restore", file.to_str().expect("path")]);
    assert!(
        !out.status.success(),
        "restore refuses a directory that is not empty"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not empty"),
        "{out:?}"
    );
    ok(&restored, &["verify"]);

    // Every message acknowledged before the backup began is in it.
    let config = hearth::config::Config::defaults();
    let store = hearth::storage::Store::open(
        &restored,
        config.storage.cache_bytes,
        config.storage.durability,
    )
    .expect("open the restored store");
    for (room, seq, body) in &before {
        let event = store
            .log()
            .expect("the room log")
            .event(room.parse().expect("room id"), hearth::ids::Seq(*seq))
            .expect("read")
            .unwrap_or_else(|| panic!("acked message {room}/{seq} is missing from the backup"));
        let hearth::storage::records::EventKind::Message { body: got, .. } = event.kind else {
            panic!("{room}/{seq} is not a message");
        };
        assert_eq!(&got, body);
    }
    let users: Vec<_> = store.users().map(|u| u.expect("user").username).collect();
    assert_eq!(users.len(), 2);
}

#[tokio::test]
async fn verify_names_each_kind_of_damage() {
    let mut s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    for i in 1..=5 {
        s.say(&alice, &room, &format!("m{i}"), Some(&format!("c{i}")))
            .await;
    }
    let data = s.data_dir();
    assert!(ok(&data, &["verify"]).contains("OK: every invariant holds"));
    s.terminate();

    // Damage the store the way a bug or a bad disk would, behind hearth's back.
    let room_id: uuid::Uuid = room.parse().expect("room id");
    {
        let db = sled::open(data.join("db")).expect("open with sled");
        let log = db.open_tree("roomlog").expect("roomlog");
        let mut event3 = vec![0u8];
        event3.extend_from_slice(room_id.as_bytes());
        event3.extend_from_slice(&3u64.to_be_bytes());
        log.remove(event3).expect("remove event 3");
        // A dedup key as stores written before the dedup window kept one
        // per message (0x01 ‖ room ‖ author ‖ client_id → seq), pointing
        // at the event just removed.
        let mut dedup = vec![1u8];
        dedup.extend_from_slice(room_id.as_bytes());
        dedup.extend_from_slice(alice.id.parse::<uuid::Uuid>().expect("uuid").as_bytes());
        dedup.extend_from_slice(b"old-c3");
        log.insert(dedup, &3u64.to_be_bytes())
            .expect("insert dedup key");
        let members = db.open_tree("roomid_userid").expect("memberships");
        let mut orphan = uuid::Uuid::now_v7().as_bytes().to_vec();
        orphan.extend_from_slice(alice.id.parse::<uuid::Uuid>().expect("uuid").as_bytes());
        members.insert(orphan, &0u64.to_be_bytes()).expect("insert");
        db.open_tree("username_userid")
            .expect("names")
            .remove("alice")
            .expect("remove name");
        db.flush().expect("flush");
    }

    let out = hearth(&data, &["verify"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let report = stdout(&out);
    assert!(
        report.contains(&format!("roomlog/{room}: seq 3 is missing (head 5)")),
        "{report}"
    );
    assert!(
        report.contains("points at seq 3, which does not exist"),
        "{report}"
    );
    assert!(report.contains("does not exist"), "{report}");
    assert!(report.contains("userid_roomid/"), "{report}");
    assert!(
        report.contains("username_userid/alice: missing"),
        "{report}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the store is damaged"),
        "{out:?}"
    );
}

#[test]
fn config_default_is_the_committed_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["config", "default"])
        .output()
        .expect("run hearth");
    assert!(out.status.success());
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml"))
        .expect("config.toml");
    assert_eq!(String::from_utf8(out.stdout).expect("utf-8"), committed);
}

#[test]
fn config_check_names_a_bad_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("hearth.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9000\"\n[websocket]\nping_interval_sec = 5\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["config", "check"])
        .arg(&file)
        .output()
        .expect("run hearth");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("websocket.ping_interval_sec"), "{err}");

    std::fs::write(&file, "registration = \"sometimes\"\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["config", "check"])
        .arg(&file)
        .output()
        .expect("run hearth");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("registration") && err.contains("invite"),
        "{err}"
    );

    std::fs::write(&file, "[tls]\ncert = \"/etc/hearth/cert.pem\"\n").expect("write");
    let ok = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["config", "check"])
        .arg(&file)
        .output()
        .expect("run hearth");
    assert!(
        String::from_utf8_lossy(&ok.stderr).contains("tls.key"),
        "{ok:?}"
    );

    // The certificate files themselves are checked too.
    std::fs::write(
        &file,
        "[tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["config", "check"])
        .arg(&file)
        .output()
        .expect("run hearth");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read /nonexistent/cert.pem"), "{err}");
}

#[tokio::test]
async fn a_truncated_backup_is_refused_and_leaves_nothing_behind() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    for i in 0..50 {
        s.say(
            &alice,
            &room,
            &format!("message number {i} with some text"),
            None,
        )
        .await;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("full.hb");
    ok(&s.data_dir(), &["backup", file.to_str().expect("path")]);
    assert!(!dir.path().join("full.hb.partial").exists());
    let bytes = std::fs::read(&file).expect("read backup");
    let cut = dir.path().join("cut.hb");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");

    let target = dir.path().join("restored");
    std::fs::create_dir(&target).expect("mkdir");
    let out = hearth(&target, &["restore", cut.to_str().expect("path")]);
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not a hearth backup") || err.contains("cut.hb"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&target).expect("read dir").count(),
        0,
        "a failed restore leaves the directory empty"
    );
    let out = hearth(&target, &["restore", file.to_str().expect("path")]);
    assert!(out.status.success(), "{out:?}");
}

/// The operator's manual lists every config key with its environment
/// variable, so the table cannot fall behind `config.toml`.
#[test]
fn the_operations_manual_documents_every_key() {
    let root = env!("CARGO_MANIFEST_DIR");
    let manual = std::fs::read_to_string(format!("{root}/docs/operations.md")).expect("manual");
    let defaults: toml::Table = std::fs::read_to_string(format!("{root}/config.toml"))
        .expect("config.toml")
        .parse()
        .expect("valid TOML");
    let mut missing = Vec::new();
    for (section, value) in &defaults {
        let keys: Vec<String> = match value {
            toml::Value::Table(t) => t.keys().map(|k| format!("{section}.{k}")).collect(),
            _ => vec![section.clone()],
        };
        for key in keys {
            let short = key.rsplit('.').next().expect("a key");
            let row = format!("| `{key}` | `HEARTH_{}` |", short.to_uppercase());
            if !manual.contains(&row) {
                missing.push(row);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/operations.md lacks rows: {missing:#?}"
    );
}

#[tokio::test]
async fn the_registration_mode_and_the_admin_role_from_the_cli() {
    let s = TestServer::spawn().await;
    let data = s.data_dir();
    let root = s.user("root").await;
    let bob = s.user("bob").await;
    let shown = json_of(&data, &["registration"]);
    assert_eq!(
        shown,
        json!({"mode": "open", "source": "config", "config": "open"})
    );
    // Set on the running server: the next signup is refused at once, and the
    // admin API sees the same setting.
    let set = json_of(&data, &["registration", "closed"]);
    assert_eq!(set["mode"], "closed");
    assert_eq!(set["source"], "admin");
    let (status, r) = s
        .post(
            "/api/v1/signup",
            None,
            json!({"username": "eve", "email": "eve@example.com", "password": "long enough"}),
        )
        .await;
    assert_eq!(
        (status, r["error"]["code"].as_str()),
        (403, Some("registration_closed"))
    );
    let (_, api) = s.get("/api/v1/admin/registration", Some(&root.token)).await;
    assert_eq!(api["mode"], "closed");
    let out = hearth(&data, &["registration", "sometimes"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sometimes"));
    let back = json_of(&data, &["registration", "default"]);
    assert_eq!(back["source"], "config");
    assert!(ok(&data, &["registration"]).contains("registration: open (from the config)"));

    assert!(ok(&data, &["user", "admin", "bob"]).contains("bob is an administrator."));
    let (_, me) = s.get("/api/v1/me", Some(&bob.token)).await;
    assert_eq!(me["user"]["admin"], true);
    assert!(ok(&data, &["user", "admin", "bob", "--off"]).contains("no longer"));
    let (status, _) = s.get("/api/v1/admin/stats", Some(&bob.token)).await;
    assert_eq!(status, 403);
}
