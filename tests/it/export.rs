//! `hearth export` and `hearth import` as an operator runs them: the CLI as
//! a process, against a running server (its admin socket) or a stopped
//! one's data directory, and what people then see over the API.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::harness::{hearth_in, TestServer, User};

fn ok(data: &Path, args: &[&str]) -> String {
    let out = hearth_in(data, args, "");
    assert!(
        out.status.success(),
        "hearth {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn fails(data: &Path, args: &[&str]) -> String {
    let out = hearth_in(data, args, "");
    assert!(!out.status.success(), "hearth {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Users, rooms and messages on the server (what an import would change;
/// disk use moves by itself).
fn counts(data: &Path) -> (Value, Value, Value) {
    let v: Value = serde_json::from_str(&ok(data, &["stats", "--json"])).expect("stats JSON");
    (
        v["users"].clone(),
        v["rooms"].clone(),
        v["messages"].clone(),
    )
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn export(data: &Path, file: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["export", path(file), "--json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(data, &args)).expect("JSON output")
}

fn import(data: &Path, file: &Path) -> Value {
    serde_json::from_str(&ok(data, &["import", path(file), "--json"])).expect("JSON output")
}

/// The export's lines without its header (the first line: it holds the
/// time of the export).
fn after_header(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).expect("read export");
    text.lines().skip(1).map(str::to_string).collect()
}

fn records(file: &Path, kind: &str) -> Vec<Value> {
    after_header(file)
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON line"))
        .filter(|r| r["type"] == kind)
        .collect()
}

/// A server with two people, a public and a private room and a direct
/// conversation, and messages with a reply, edits, reactions (one taken
/// back) and a deletion. Returns the server, its people and the public
/// room's id.
async fn lively_server() -> (TestServer, User, User, String) {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let general = s.room(&alice, "general").await;
    s.join(&bob, &general).await;
    let first = s
        .say(&alice, &general, "hello & welcome", Some("a-1"))
        .await;
    let seq = first["seq"].as_u64().expect("seq");
    let (status, body) = s
        .post(
            &format!("/api/v1/rooms/{general}/messages"),
            Some(&bob.token),
            json!({"body": "thanks @alice", "client_id": "b-1", "reply_to": seq}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let reply = body["message"]["seq"].as_u64().expect("seq");
    let edited = s
        .request(
            "PATCH",
            &format!("/api/v1/rooms/{general}/messages/{seq}"),
            &alice.token,
            json!({"body": "hello & welcome, all", "client_id": "a-2"}),
        )
        .await;
    assert_eq!(edited.status, 200, "{:?}", edited.body);
    for (who, emoji, method) in [
        (&bob, "%F0%9F%91%8D", "PUT"),
        (&alice, "%F0%9F%91%8D", "PUT"),
        (&alice, "%F0%9F%8E%89", "PUT"),
        (&alice, "%F0%9F%8E%89", "DELETE"),
    ] {
        let r = s
            .request(
                method,
                &format!("/api/v1/rooms/{general}/messages/{seq}/reactions/{emoji}"),
                &who.token,
                json!({}),
            )
            .await;
        assert_eq!(r.status, 204, "{method} reaction: {:?}", r.body);
    }
    let gone = s.say(&bob, &general, "oops, wrong room", None).await;
    let r = s
        .request(
            "DELETE",
            &format!("/api/v1/rooms/{general}/messages/{}", gone["seq"]),
            &bob.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 204);
    s.say(&alice, &general, &format!("see {reply}"), Some("a-3"))
        .await;

    let (status, body) = s
        .post(
            "/api/v1/rooms",
            Some(&bob.token),
            json!({"name": "secret", "visibility": "private"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let secret = body["room"]["id"].as_str().expect("id").to_string();
    s.say(&bob, &secret, "only me here", Some("b-2")).await;
    let (status, body) = s
        .post(
            "/api/v1/dms",
            Some(&alice.token),
            json!({"users": [bob.id]}),
        )
        .await;
    assert!(status == 201 || status == 200, "{status} {body}");
    let dm = body["room"]["id"].as_str().expect("id").to_string();
    s.say(&alice, &dm, "psst", Some("a-4")).await;
    (s, alice, bob, general)
}

#[tokio::test]
async fn an_export_imported_into_a_fresh_server_exports_the_same() {
    let (a, _alice, _bob, general) = lively_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let first = dir.path().join("first.jsonl");
    // Live: the running server writes the file.
    let summary = export(&a.data_dir(), &first, &[]);
    assert_eq!(summary["summary"]["users"], 2, "{summary}");
    assert_eq!(summary["summary"]["rooms"], 3, "{summary}");
    let header: Value = serde_json::from_str(
        std::fs::read_to_string(&first)
            .expect("read")
            .lines()
            .next()
            .expect("header"),
    )
    .expect("header JSON");
    assert_eq!(header["type"], "header");
    assert_eq!(header["format"], "hearth-export");
    assert_eq!(header["version"], 1);
    let users = records(&first, "user");
    assert!(
        users.iter().all(|u| u.get("password_hash").is_none()),
        "no password hashes in an export: {users:?}"
    );
    assert!(!std::fs::read_to_string(&first)
        .expect("read")
        .contains("argon2"));
    let messages = records(&first, "message");
    let welcome = messages
        .iter()
        .find(|m| m["client_id"] == "a-1")
        .expect("first message");
    assert_eq!(welcome["body"], "hello & welcome, all");
    assert_eq!(welcome["sent_body"], "hello & welcome");
    assert_eq!(
        welcome["reactions"],
        json!([{"emoji": "👍", "users": welcome["reactions"][0]["users"]}])
    );
    assert_eq!(records(&first, "edit").len(), 1);
    assert_eq!(records(&first, "reaction").len(), 4);
    assert_eq!(records(&first, "delete").len(), 1);

    // Offline: a stopped server's directory is written by the CLI itself.
    let mut b = TestServer::spawn().await;
    b.terminate();
    let imported = import(&b.data_dir(), &first);
    assert_eq!(imported["summary"]["users_added"], 2, "{imported}");
    assert_eq!(imported["summary"]["rooms_added"], 3, "{imported}");
    b.restart();

    let second = dir.path().join("second.jsonl");
    export(&b.data_dir(), &second, &[]);
    assert_eq!(
        after_header(&first),
        after_header(&second),
        "the round trip changed the data"
    );

    // Imported accounts have no password until the operator sets one.
    let (status, _) = b
        .post(
            "/api/v1/login",
            None,
            json!({"login": "alice", "password": "password-alice"}),
        )
        .await;
    assert_eq!(status, 401, "an imported account cannot log in");
    // Bob gets a one-time link and sets his password with it.
    let link: Value = serde_json::from_str(&ok(
        &b.data_dir(),
        &["user", "reset-link", "bob", "--expires", "1h", "--json"],
    ))
    .expect("JSON");
    let code = link["code"].as_str().expect("code");
    assert!(
        link["link"]
            .as_str()
            .expect("link")
            .ends_with(&format!("#reset={code}")),
        "{link}"
    );
    let (status, body) = b
        .post(
            "/api/v1/password-reset",
            None,
            json!({"code": code, "password": "a new password for bob"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = b
        .post(
            "/api/v1/password-reset",
            None,
            json!({"code": code, "password": "another password"}),
        )
        .await;
    assert_eq!(status, 403, "a reset code works once: {body}");
    assert_eq!(body["error"]["code"], "invalid_reset_link", "{body}");
    let bob_b = b.login("bob", "a new password for bob").await;
    let (_, rooms) = b.get("/api/v1/rooms", Some(&bob_b.token)).await;
    for r in rooms["rooms"].as_array().expect("rooms") {
        assert_eq!(r["unread_count"], 0, "imported history is not news: {r}");
        assert_eq!(r["read_seq"], r["last_seq"], "{r}");
    }
    let history = b.history(&bob_b, &general).await;
    let original = a
        .history(&a.login("bob", "password-bob").await, &general)
        .await;
    let strip = |ms: &[Value]| -> Vec<Value> {
        ms.iter()
            .map(|m| {
                let mut m = m.clone();
                // Whose view it is differs ("me"): compare what is stored.
                for r in m["reactions"].as_array_mut().into_iter().flatten() {
                    r.as_object_mut().map(|o| o.remove("me"));
                }
                m
            })
            .collect()
    };
    assert_eq!(strip(&history), strip(&original));
    assert!(history.iter().any(|m| m["reply_to"]["seq"].is_u64()));
    assert!(history.iter().any(|m| m["deleted"] == true));

    // Twice: nothing changes.
    let again = import(&b.data_dir(), &first);
    assert_eq!(again["summary"]["events_added"], 0, "{again}");
    assert_eq!(again["summary"]["users_added"], 0, "{again}");
    let third = dir.path().join("third.jsonl");
    export(&b.data_dir(), &third, &[]);
    assert_eq!(
        after_header(&first),
        after_header(&third),
        "a second import changed the data"
    );
    ok(&b.data_dir(), &["verify"]);
}

#[tokio::test]
async fn an_import_into_a_populated_server_keeps_both_and_refuses_a_taken_name() {
    let (a, _alice, _bob, _general) = lively_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("a.jsonl");
    export(&a.data_dir(), &file, &[]);

    let c = TestServer::spawn().await;
    let carol = c.user("carol").await;
    let random = c.room(&carol, "random").await;
    c.say(&carol, &random, "before the import", Some("c-1"))
        .await;
    let mut ws = c.ws(&carol).await;
    ws.hello(None).await;
    let summary = import(&c.data_dir(), &file);
    // Live: people connected now hear of the public rooms at once.
    let added = ws.expect("room_added").await;
    assert_eq!(added["room"]["name"], "general", "{added}");
    assert_eq!(summary["summary"]["users_added"], 2, "{summary}");
    // Carol's world is untouched, and the imported rooms are there.
    let history = c.history(&carol, &random).await;
    assert_eq!(history.len(), 1);
    let (_, rooms) = c.get("/api/v1/rooms?all=true", Some(&carol.token)).await;
    let listed = rooms.to_string();
    assert!(listed.contains("general"), "{listed}");
    ok(&c.data_dir(), &["verify"]);

    // Another server where "alice" is someone else.
    let d = TestServer::spawn().await;
    d.user("alice").await;
    let before = ok(&d.data_dir(), &["user", "list", "--json"]);
    let err = fails(&d.data_dir(), &["import", path(&file)]);
    assert!(
        err.contains("\"alice\"") && err.contains("another account") && err.contains("line "),
        "{err}"
    );
    assert_eq!(ok(&d.data_dir(), &["user", "list", "--json"]), before);
}

#[tokio::test]
async fn a_single_room_exports_with_only_its_people() {
    let (mut a, _alice, _bob, general) = lively_server().await;
    let carol = a.user("carol").await;
    let lonely = a.room(&carol, "lonely").await;
    a.say(&carol, &lonely, "nobody here", None).await;
    // Offline: the CLI reads the stopped server's directory itself.
    a.terminate();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("general.jsonl");
    export(&a.data_dir(), &file, &["--room", "general"]);
    let err = fails(&a.data_dir(), &["export", path(&file)]);
    assert!(err.contains("already exists"), "{err}");
    let rooms = records(&file, "room");
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0]["id"], general.as_str());
    let names: Vec<String> = records(&file, "user")
        .iter()
        .map(|u| u["username"].as_str().unwrap_or_default().to_string())
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert!(
        names.contains(&"alice") && names.contains(&"bob"),
        "{names:?}"
    );
    assert!(!names.contains(&"carol"), "{names:?}");
    assert!(records(&file, "message")
        .iter()
        .all(|m| m["room"] == general.as_str()));

    let b = TestServer::spawn().await;
    import(&b.data_dir(), &file);
    let again = dir.path().join("again.jsonl");
    export(&b.data_dir(), &again, &[]);
    assert_eq!(after_header(&file), after_header(&again));
}

#[tokio::test]
async fn a_room_that_moved_on_here_refuses_a_later_export_of_itself() {
    let (a, alice, _bob, general) = lively_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let early = dir.path().join("early.jsonl");
    export(&a.data_dir(), &early, &[]);
    let b = TestServer::spawn().await;
    import(&b.data_dir(), &early);
    // Both servers go on: each room now has a different next message.
    a.say(&alice, &general, "later, on the first server", Some("a-9"))
        .await;
    let local = b.user("local").await;
    b.join(&local, &general).await;
    b.say(&local, &general, "meanwhile, on the second", None)
        .await;
    let late = dir.path().join("late.jsonl");
    export(&a.data_dir(), &late, &[]);
    let before = counts(&b.data_dir());
    let err = fails(&b.data_dir(), &["import", path(&late)]);
    assert!(
        err.contains("line ") && err.contains("holds another event"),
        "{err}"
    );
    assert_eq!(counts(&b.data_dir()), before);
}

#[tokio::test]
async fn a_damaged_or_cut_file_names_its_line_and_imports_nothing() {
    let (a, _alice, _bob, _general) = lively_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("a.jsonl");
    export(&a.data_dir(), &file, &[]);
    let text = std::fs::read_to_string(&file).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    let b = TestServer::spawn().await;
    let empty = counts(&b.data_dir());

    // A damaged line in the middle, after users and rooms it could have
    // imported.
    let mut damaged: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let at = damaged.len() - 3;
    damaged[at] = damaged[at][..damaged[at].len() / 2].to_string();
    let bad = dir.path().join("damaged.jsonl");
    std::fs::write(&bad, damaged.join("\n") + "\n").expect("write");
    let err = fails(&b.data_dir(), &["import", path(&bad)]);
    assert!(err.contains(&format!("line {}:", at + 1)), "{err}");
    assert_eq!(counts(&b.data_dir()), empty);

    // Cut in the middle of a line, and cut at a line's end.
    for (name, cut) in [
        ("cut-mid.jsonl", text[..text.len() - 40].to_string()),
        ("cut-line.jsonl", lines[..lines.len() - 2].join("\n") + "\n"),
    ] {
        let cut_file = dir.path().join(name);
        std::fs::write(&cut_file, cut).expect("write");
        let err = fails(&b.data_dir(), &["import", path(&cut_file)]);
        assert!(err.contains("truncated") && err.contains("line "), "{err}");
        assert_eq!(counts(&b.data_dir()), empty);
    }
    // An edit by someone other than the author: the committer would
    // refuse it, so the check does, before anything is written.
    let users = records(&file, "user");
    let mut forged: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let at = forged
        .iter()
        .position(|l| l.contains("\"type\":\"edit\""))
        .expect("an edit line");
    let mut edit: Value = serde_json::from_str(&forged[at]).expect("edit JSON");
    let other = users
        .iter()
        .map(|u| u["id"].clone())
        .find(|id| *id != edit["by"])
        .expect("another user");
    edit["by"] = other;
    forged[at] = edit.to_string();
    let bad = dir.path().join("forged.jsonl");
    std::fs::write(&bad, forged.join("\n") + "\n").expect("write");
    let err = fails(&b.data_dir(), &["import", path(&bad)]);
    assert!(
        err.contains(&format!("line {}:", at + 1)) && err.contains("author"),
        "{err}"
    );
    assert_eq!(counts(&b.data_dir()), empty);

    // The whole file still imports.
    import(&b.data_dir(), &file);
    ok(&b.data_dir(), &["verify"]);
}

/// Writes `files` (name, content) into a zip at `to`.
fn zip(to: &Path, files: &[(String, String)]) {
    let out = std::fs::File::create(to).expect("create zip");
    let mut zip = zip::ZipWriter::new(out);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in files {
        zip.start_file(name.as_str(), options).expect("start file");
        zip.write_all(content.as_bytes()).expect("write file");
    }
    zip.finish().expect("finish zip");
}

/// A small Slack workspace export in Slack's documented layout.
fn slack_export(dir: &Path) -> PathBuf {
    let users = json!([
        {"id": "U01", "name": "ann", "real_name": "Ann Archer", "is_admin": true,
         "profile": {"email": "ann@example.com", "display_name": "Ann", "real_name": "Ann Archer"}},
        {"id": "U02", "name": "ben.b", "deleted": false,
         "profile": {"email": "ben@example.com", "real_name": "Ben"}},
        {"id": "U03", "name": "gone", "deleted": true, "profile": {"real_name": "Gone"}},
        {"id": "B01", "name": "deploybot", "is_bot": true, "profile": {"real_name": "Deploy"}}
    ]);
    let channels = json!([
        {"id": "C01", "name": "general", "created": 1_600_000_000, "creator": "U01",
         "is_archived": false, "members": ["U01", "U02"],
         "topic": {"value": "Company-wide"}, "purpose": {"value": "Everything"}},
        {"id": "C02", "name": "old-project", "created": 1_600_000_100, "creator": "U02",
         "is_archived": true, "members": ["U02"],
         "topic": {"value": ""}, "purpose": {"value": "The old project"}}
    ]);
    let groups = json!([
        {"id": "G01", "name": "leads", "created": 1_600_000_200, "creator": "U01",
         "is_archived": false, "members": ["U01", "U02"], "topic": {"value": ""}, "purpose": {"value": ""}}
    ]);
    let dms = json!([{"id": "D01", "created": 1_600_000_300, "members": ["U01", "U02"]}]);
    let day1 = json!([
        {"type": "message", "subtype": "channel_join", "user": "U02", "text": "<@U02> has joined the channel", "ts": "1600000001.000100"},
        {"type": "message", "user": "U01", "text": "Welcome <@U02>! See <https://example.com/wiki|the wiki> &amp; <#C02|old-project>",
         "ts": "1600000002.000200", "thread_ts": "1600000002.000200", "reply_count": 1,
         "reactions": [{"name": "+1", "users": ["U02", "U01"], "count": 2}, {"name": "tada", "users": ["U02"], "count": 1}]},
        {"type": "message", "user": "U02", "text": "thanks &lt;3", "ts": "1600000003.000300",
         "thread_ts": "1600000002.000200", "parent_user_id": "U01",
         "edited": {"user": "U02", "ts": "1600000004.000000"}}
    ]);
    let day2 = json!([
        {"type": "message", "subtype": "bot_message", "bot_id": "B99", "username": "CI", "text": "build passed <!channel>", "ts": "1600086400.000100"},
        {"type": "message", "user": "U03", "text": "bye", "ts": "1600086401.000100",
         "files": [{"id": "F01", "name": "notes.txt", "title": "Notes", "mimetype": "text/plain", "size": 12, "url_private": "https://files.slack.com/F01/notes.txt"}]}
    ]);
    let leads = json!([{"type": "message", "user": "U01", "text": "leads only", "ts": "1600000210.000100"}]);
    let dm =
        json!([{"type": "message", "user": "U02", "text": "hi ann", "ts": "1600000310.000100"}]);
    let old = json!([{"type": "message", "user": "U02", "text": "archived talk", "ts": "1600000110.000100"}]);
    let files = vec![
        ("users.json".to_string(), users.to_string()),
        ("channels.json".to_string(), channels.to_string()),
        ("groups.json".to_string(), groups.to_string()),
        ("dms.json".to_string(), dms.to_string()),
        ("general/2020-09-13.json".to_string(), day1.to_string()),
        ("general/2020-09-14.json".to_string(), day2.to_string()),
        ("old-project/2020-09-13.json".to_string(), old.to_string()),
        ("leads/2020-09-13.json".to_string(), leads.to_string()),
        ("D01/2020-09-13.json".to_string(), dm.to_string()),
    ];
    let file = dir.join("slack.zip");
    zip(&file, &files);
    file
}

#[tokio::test]
async fn a_slack_export_becomes_rooms_people_and_threads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = slack_export(dir.path());
    let s = TestServer::spawn().await;
    let out = ok(&s.data_dir(), &["import", "--slack", path(&file), "--json"]);
    let summary: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(summary["summary"]["rooms_added"], 4, "{summary}");

    let out = hearth_in(
        &s.data_dir(),
        &["user", "passwd", "ann", "--password-stdin"],
        "ann's new password\n",
    );
    assert!(out.status.success(), "{out:?}");
    let ann = s.login("ann", "ann's new password").await;
    let (_, me) = s.get("/api/v1/me", Some(&ann.token)).await;
    assert_eq!(me["user"]["display_name"], "Ann", "{me}");
    let (status, rooms) = s.get("/api/v1/rooms", Some(&ann.token)).await;
    assert_eq!(status, 200);
    let list = rooms["rooms"].as_array().expect("rooms").clone();
    let general = list
        .iter()
        .find(|r| r["name"] == "general")
        .expect("general");
    assert_eq!(general["topic"], "Company-wide");
    let general = general["id"].as_str().expect("id").to_string();
    assert!(list.iter().any(|r| r["name"] == "leads"), "{rooms}");

    let history = s.history(&ann, &general).await;
    let bodies: Vec<&str> = history
        .iter()
        .map(|m| m["body"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        bodies,
        vec![
            "Welcome @ben.b! See the wiki (https://example.com/wiki) & #old-project",
            "thanks <3",
            "build passed @room",
            "bye",
        ],
        "joins are skipped, markup is turned into text"
    );
    // Original times, threads as replies, reactions, the edited marker.
    assert_eq!(history[0]["created_at"], "2020-09-13T12:26:42.000Z");
    assert_eq!(history[1]["reply_to"]["seq"], history[0]["seq"]);
    assert!(history[1]["edited_at"].is_string(), "{}", history[1]);
    let reactions = history[0]["reactions"].to_string();
    assert!(
        reactions.contains("👍") && reactions.contains("🎉"),
        "{reactions}"
    );
    assert_eq!(history[2]["author"]["username"], "CI-slack");
    assert!(history[0]["mentions"]
        .to_string()
        .contains(&ben_id(&s).await));

    // Importing the same export again changes nothing.
    let again: Value = serde_json::from_str(&ok(
        &s.data_dir(),
        &["import", "--slack", path(&file), "--json"],
    ))
    .expect("JSON");
    assert_eq!(again["summary"]["events_added"], 0, "{again}");
    ok(&s.data_dir(), &["verify"]);
}

async fn ben_id(s: &TestServer) -> String {
    let out = ok(&s.data_dir(), &["user", "show", "ben.b", "--json"]);
    let v: Value = serde_json::from_str(&out).expect("JSON");
    v["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn files_go_with_an_export_and_come_back_with_an_import() {
    let a = TestServer::spawn().await;
    let alice = a.user("alice").await;
    let room = a.room(&alice, "general").await;
    let bytes = b"quarterly numbers\n".repeat(50);
    let r = a
        .call(
            "POST",
            &format!("/api/v1/rooms/{room}/uploads?name=report.txt"),
        )
        .auth(crate::harness::Auth::Bearer(&alice.token))
        .body("text/plain", bytes.clone())
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let file = r.body["file"].clone();
    let r = a
        .request(
            "POST",
            &format!("/api/v1/rooms/{room}/messages"),
            &alice.token,
            json!({"body": "", "files": [file["id"]], "client_id": "with-file"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("all.jsonl");
    let blobs = dir.path().join("files");
    let summary = export(&a.data_dir(), &out, &["--with-files", path(&blobs)]);
    assert_eq!(summary["summary"]["files"], 1, "{summary}");
    let listed = records(&out, "file");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let sha = listed[0]["sha256"].as_str().expect("sha256").to_string();
    assert_eq!(std::fs::read(blobs.join(&sha)).expect("the blob"), bytes);
    let message = &records(&out, "message")[0];
    assert_eq!(message["files"][0]["sha256"], sha.as_str(), "{message}");
    assert_eq!(message["files"][0]["name"], "report.txt");

    // Without the directory the file is counted, not attached; with it,
    // the message has its file again, byte for byte.
    let b = TestServer::spawn().await;
    let data = b.data_dir();
    let damaged = dir.path().join("damaged");
    std::fs::create_dir(&damaged).expect("mkdir");
    std::fs::write(damaged.join(&sha), b"not the report").expect("write");
    let said = fails(&data, &["import", path(&out), "--files", path(&damaged)]);
    assert!(said.contains("is not the file the export names"), "{said}");
    let imported: Value = serde_json::from_str(&ok(
        &data,
        &["import", path(&out), "--files", path(&blobs), "--json"],
    ))
    .expect("JSON");
    assert_eq!(imported["summary"]["files_added"], 1, "{imported}");
    assert_eq!(imported["summary"]["files_skipped"], 0, "{imported}");
    let set = hearth_in(
        &data,
        &["user", "passwd", "alice", "--password-stdin"],
        "alice's new password\n",
    );
    assert!(set.status.success(), "{set:?}");
    let alice_b = b.login("alice", "alice's new password").await;
    let history = b.history(&alice_b, &room).await;
    let got = &history[0]["files"][0];
    assert_eq!(got["name"], "report.txt", "{}", history[0]);
    assert_eq!(got["size"], bytes.len());
    let fetched = b
        .call(
            "GET",
            &format!("/api/v1/files/{}", got["id"].as_str().expect("id")),
        )
        .auth(crate::harness::Auth::Bearer(&alice_b.token))
        .fetch()
        .await;
    assert_eq!(fetched.bytes, bytes);
    // The same file again on the way out.
    let again = dir.path().join("again.jsonl");
    export(&data, &again, &[]);
    assert_eq!(
        records(&again, "message")[0]["files"],
        records(&out, "message")[0]["files"]
    );
    ok(&data, &["verify"]);
}
