//! Conversations on the room log: edits, deletions (redactions),
//! reactions, replies and mentions are events with the room's next seq,
//! delivered live, replayed on resume, and folded into each message's
//! current state in history.

use std::process::Command;

use serde_json::{json, Value};

use crate::harness::{Auth, TestServer, User, Ws};

/// `PATCH`es message `seq`; returns the status and body.
async fn edit(s: &TestServer, user: &User, room: &str, seq: u64, body: &str) -> (u16, Value) {
    let r = s
        .call("PATCH", &format!("/api/v1/rooms/{room}/messages/{seq}"))
        .auth(Auth::Bearer(&user.token))
        .json(json!({"body": body}))
        .send()
        .await;
    (r.status, r.body)
}

async fn react(
    s: &TestServer,
    user: &User,
    room: &str,
    seq: u64,
    emoji: &str,
    on: bool,
) -> (u16, Value) {
    let encoded: String = emoji.bytes().map(|b| format!("%{b:02X}")).collect();
    let r = s
        .call(
            if on { "PUT" } else { "DELETE" },
            &format!("/api/v1/rooms/{room}/messages/{seq}/reactions/{encoded}"),
        )
        .auth(Auth::Bearer(&user.token))
        .send()
        .await;
    (r.status, r.body)
}

async fn head(s: &TestServer, user: &User, room: &str) -> u64 {
    let (_, r) = s
        .get(&format!("/api/v1/rooms/{room}"), Some(&user.token))
        .await;
    r["room"]["last_seq"].as_u64().expect("last_seq")
}

async fn events(s: &TestServer, user: &User, room: &str) -> Vec<Value> {
    let (status, r) = s
        .get(
            &format!("/api/v1/rooms/{room}/events?after=0&limit=500"),
            Some(&user.token),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    r["events"].as_array().expect("events").clone()
}

/// The next `event` frame (skipping acks and directory news).
async fn next_event(ws: &mut Ws) -> Value {
    ws.expect("event").await["event"].clone()
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn an_edit_is_an_event_seen_live_in_history_and_in_the_edit_history() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let room = s.room(&ann, "general").await;
    s.join(&bob, &room).await;
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;
    let m = s.say(&ann, &room, "helo world", Some("m-1")).await;
    let seq = m["seq"].as_u64().expect("seq");
    bob_ws.expect("message").await;

    let (status, r) = edit(&s, &ann, &room, seq, "hello world").await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["message"]["body"], "hello world");
    assert!(r["message"]["edited_at"].is_string());
    let e = next_event(&mut bob_ws).await;
    assert_eq!(
        (
            &e["kind"],
            &e["target"],
            &e["body"],
            &e["by"]["username"],
            &e["seq"]
        ),
        (
            &json!("edit"),
            &json!(seq),
            &json!("hello world"),
            &json!("ann"),
            &json!(seq + 1)
        )
    );

    // Over the WebSocket too, acked with the edit event's seq.
    let mut ann_ws = s.ws(&ann).await;
    ann_ws.hello(None).await;
    ann_ws
        .send_json(json!({"type": "edit", "room": room, "target": seq, "body": "hello, world", "client_id": "e-2"}))
        .await;
    let ack = ann_ws.expect("ack").await;
    assert_eq!(
        (&ack["client_id"], &ack["seq"]),
        (&json!("e-2"), &json!(seq + 2))
    );
    assert_eq!(next_event(&mut bob_ws).await["body"], "hello, world");
    // A retry of the same client_id is the same edit.
    ann_ws
        .send_json(json!({"type": "edit", "room": room, "target": seq, "body": "hello, world", "client_id": "e-2"}))
        .await;
    assert_eq!(ann_ws.expect("ack").await["seq"], json!(seq + 2));
    assert_eq!(head(&s, &ann, &room).await, seq + 2);

    let history = s.history(&bob, &room).await;
    assert_eq!(history.len(), 1, "history pages over messages only");
    assert_eq!(history[0]["body"], "hello, world");
    assert!(history[0]["edited_at"].is_string());
    let (_, versions) = s
        .get(
            &format!("/api/v1/rooms/{room}/messages/{seq}/edits"),
            Some(&bob.token),
        )
        .await;
    let bodies: Vec<_> = versions["edits"]
        .as_array()
        .expect("edits")
        .iter()
        .map(|v| v["body"].clone())
        .collect();
    assert_eq!(
        bodies,
        [
            json!("helo world"),
            json!("hello world"),
            json!("hello, world")
        ]
    );

    // The author only; the body rules of a send.
    let (status, r) = edit(&s, &bob, &room, seq, "mine now").await;
    assert_eq!((status, code(&r)), (403, "not_the_author"));
    let (status, r) = edit(&s, &ann, &room, seq, "   ").await;
    assert_eq!((status, code(&r)), (400, "invalid_body"));
    let (status, r) = edit(&s, &ann, &room, 99, "nothing there").await;
    assert_eq!((status, code(&r)), (404, "message_not_found"));
    let (status, r) = edit(&s, &ann, &room, seq + 1, "an edit is no message").await;
    assert_eq!((status, code(&r)), (404, "message_not_found"));
}

#[tokio::test]
async fn a_deletion_redacts_the_message_and_every_version_of_it() {
    let s = TestServer::spawn().await;
    let admin = s.user("admin").await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let room = s.room(&ann, "general").await;
    s.join(&bob, &room).await;
    let m = s.say(&ann, &room, "my secret plan", None).await;
    let seq = m["seq"].as_u64().expect("seq");
    edit(&s, &ann, &room, seq, "my other secret plan").await;
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;

    let path = format!("/api/v1/rooms/{room}/messages/{seq}");
    let (status, r) = s.delete(&path, Some(&bob.token), json!({})).await;
    assert_eq!(
        (status, code(&r)),
        (403, "forbidden"),
        "not bob's to delete"
    );
    let (status, _) = s.delete(&path, Some(&ann.token), json!({})).await;
    assert_eq!(status, 204);
    let e = next_event(&mut bob_ws).await;
    assert_eq!((&e["kind"], &e["target"]), (&json!("delete"), &json!(seq)));
    let after = head(&s, &ann, &room).await;
    let (status, _) = s.delete(&path, Some(&ann.token), json!({})).await;
    assert_eq!(status, 204, "deleting again is fine");
    assert_eq!(head(&s, &ann, &room).await, after, "and adds no event");

    let history = s.history(&bob, &room).await;
    assert_eq!(
        (&history[0]["deleted"], &history[0]["body"]),
        (&json!(true), &json!(""))
    );
    let (status, r) = edit(&s, &ann, &room, seq, "back again").await;
    assert_eq!((status, code(&r)), (409, "message_deleted"));
    let (status, r) = react(&s, &bob, &room, seq, "👍", true).await;
    assert_eq!((status, code(&r)), (409, "message_deleted"));

    // Nothing of the text is left in the log, nor in a backup of it.
    let log = events(&s, &ann, &room).await;
    let text = serde_json::to_string(&log).expect("json");
    assert!(
        !text.contains("secret"),
        "the log still holds the text: {text}"
    );
    assert_eq!(log[0]["kind"], "message");
    assert_eq!(log[1]["kind"], "edit");
    assert_eq!(log[1]["body"], "");
    let verify = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["verify", "--data"])
        .arg(s.data_dir())
        .env_remove("HEARTH_CONFIG")
        .output()
        .expect("run hearth verify");
    assert!(verify.status.success(), "{verify:?}");

    // An administrator moderates a room without joining it.
    let spam = s.say(&bob, &room, "spam", None).await["seq"]
        .as_u64()
        .expect("seq");
    let (status, _) = s
        .delete(
            &format!("/api/v1/rooms/{room}/messages/{spam}"),
            Some(&admin.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 204);
    let e = next_event(&mut bob_ws).await;
    assert_eq!(
        (&e["kind"], &e["by"]["username"]),
        (&json!("delete"), &json!("admin"))
    );
}

#[tokio::test]
async fn reactions_count_once_per_person_and_emoji_in_first_seen_order() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let room = s.room(&ann, "general").await;
    s.join(&bob, &room).await;
    let seq = s.say(&ann, &room, "lunch?", None).await["seq"]
        .as_u64()
        .expect("seq");
    let mut ann_ws = s.ws(&ann).await;
    ann_ws.hello(None).await;

    assert_eq!(react(&s, &bob, &room, seq, "🍕", true).await.0, 204);
    let e = next_event(&mut ann_ws).await;
    assert_eq!(
        (&e["kind"], &e["emoji"], &e["on"], &e["by"]["username"]),
        (
            &json!("reaction"),
            &json!("🍕"),
            &json!(true),
            &json!("bob")
        )
    );
    let before = head(&s, &ann, &room).await;
    assert_eq!(react(&s, &bob, &room, seq, "🍕", true).await.0, 204);
    assert_eq!(
        head(&s, &ann, &room).await,
        before,
        "a repeated reaction adds no event"
    );
    react(&s, &ann, &room, seq, "👍🏽", true).await;
    react(&s, &ann, &room, seq, "🍕", true).await;

    let history = s.history(&ann, &room).await;
    assert_eq!(
        history[0]["reactions"],
        json!([{"emoji": "🍕", "count": 2, "me": true}, {"emoji": "👍🏽", "count": 1, "me": true}])
    );
    assert_eq!(react(&s, &bob, &room, seq, "🍕", false).await.0, 204);
    let history = s.history(&bob, &room).await;
    assert_eq!(
        history[0]["reactions"],
        json!([{"emoji": "🍕", "count": 1, "me": false}, {"emoji": "👍🏽", "count": 1, "me": false}])
    );

    // Over the WebSocket: a reaction that changes nothing is acked with no seq.
    ann_ws
        .send_json(json!({"type": "react", "room": room, "target": seq, "emoji": "🍕", "on": true, "client_id": "r-1"}))
        .await;
    let ack = ann_ws.expect("ack").await;
    assert_eq!(
        (&ack["client_id"], &ack["seq"]),
        (&json!("r-1"), &Value::Null)
    );

    for bad in ["x", "🍕🍕", "a👍", " "] {
        let (status, r) = react(&s, &bob, &room, seq, bad, true).await;
        assert_eq!((status, code(&r)), (400, "invalid_emoji"), "{bad:?}");
    }
    let emoji: Vec<&str> = vec![
        "😀", "😁", "😂", "🤣", "😃", "😄", "😅", "😆", "😉", "😊", "😋", "😎", "😍", "😘", "🥰",
        "😗", "😙", "🥲",
    ];
    for e in &emoji {
        assert_eq!(react(&s, &bob, &room, seq, e, true).await.0, 204, "{e}");
    }
    let (status, r) = react(&s, &bob, &room, seq, "🙂", true).await;
    assert_eq!(
        (status, code(&r)),
        (409, "too_many_reactions"),
        "a 21st emoji"
    );
    assert_eq!(
        react(&s, &ann, &room, seq, "😀", true).await.0,
        204,
        "an existing one is fine"
    );
}

#[tokio::test]
async fn replies_quote_the_message_they_answer_and_mentions_name_members() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let cat = s.user("cat").await;
    let room = s.room(&ann, "general").await;
    let other = s.room(&cat, "other").await;
    s.join(&bob, &room).await;
    let long = "q".repeat(150);
    let first = s.say(&ann, &room, &long, None).await["seq"]
        .as_u64()
        .expect("seq");
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;

    let (status, r) = s
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&bob.token),
            json!({"body": "agreed @Ann, cc @cat and @nobody", "reply_to": first}),
        )
        .await;
    assert_eq!(status, 201, "{r}");
    let m = &r["message"];
    assert_eq!(m["reply_to"]["seq"], first);
    assert_eq!(m["reply_to"]["author"]["username"], "ann");
    assert_eq!(m["reply_to"]["excerpt"], "q".repeat(100));
    assert_eq!(
        m["mentions"],
        json!([ann.id]),
        "cat is not a member; nobody does not exist"
    );
    assert_eq!(m["mentions_room"], false);
    let live = bob_ws.expect("message").await;
    assert_eq!(live["message"]["reply_to"]["seq"], first);
    // The answer (made from the event just committed) is the message as
    // everyone else gets it, live and from history.
    assert_eq!(live["message"], *m);
    let (status, page) = s
        .get(&format!("/api/v1/rooms/{room}/messages"), Some(&ann.token))
        .await;
    assert_eq!(status, 200, "{page}");
    let stored = page["messages"]
        .as_array()
        .and_then(|all| all.iter().find(|x| x["seq"] == m["seq"]))
        .expect("the reply in history");
    assert_eq!(stored, m);

    for bad in [json!(0), json!(999), json!(first + 1)] {
        let (status, r) = s
            .post(
                &format!("/api/v1/rooms/{room}/messages"),
                Some(&bob.token),
                json!({"body": "hm", "reply_to": bad}),
            )
            .await;
        // first + 1 is bob's reply itself: a message, so allowed; the
        // others name nothing.
        if bad == json!(first + 1) {
            assert_eq!(status, 201, "{r}");
        } else {
            assert_eq!((status, code(&r)), (400, "invalid_reply"), "{bad}");
        }
    }
    // A seq is a room's own: one past this room's head names nothing,
    // whatever other rooms hold.
    for i in 0..5 {
        s.say(&cat, &other, &format!("elsewhere {i}"), None).await;
    }
    let past = head(&s, &bob, &room).await + 1;
    bob_ws
        .send_json(json!({"type": "send", "room": room, "client_id": "x-1", "body": "hm", "reply_to": past}))
        .await;
    let err = bob_ws.expect("error").await;
    assert_eq!(
        (&err["code"], &err["client_id"]),
        (&json!("invalid_reply"), &json!("x-1"))
    );

    // @room: from the room's creator it mentions everyone; from others it
    // is text.
    let r = s.say(&ann, &room, "@room standup now", None).await;
    assert_eq!(r["mentions_room"], true);
    let r = s.say(&bob, &room, "@room me too", None).await;
    assert_eq!(r["mentions_room"], false);
}

#[tokio::test]
async fn resume_replays_messages_and_events_in_one_gap_free_sequence() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let room = s.room(&ann, "general").await;
    let one = s.say(&ann, &room, "one", None).await["seq"]
        .as_u64()
        .expect("seq");
    let mut ws = s.ws(&ann).await;
    let ready = ws.hello(None).await;
    assert_eq!(ready["rooms"][0]["last_seq"], one);
    drop(ws);

    edit(&s, &ann, &room, one, "uno").await;
    react(&s, &ann, &room, one, "🎉", true).await;
    let two = s.say(&ann, &room, "two", None).await["seq"]
        .as_u64()
        .expect("seq");
    s.delete(
        &format!("/api/v1/rooms/{room}/messages/{two}"),
        Some(&ann.token),
        json!({}),
    )
    .await;
    let last = head(&s, &ann, &room).await;
    assert_eq!(last, 5, "message, edit, reaction, message, delete");

    let mut ws = s.ws(&ann).await;
    let ready = ws.hello(Some(json!({ room.clone(): one }))).await;
    assert_eq!(ready["rooms"][0]["last_seq"], last);
    let mut kinds = Vec::new();
    for expected in one + 1..=last {
        let f = ws.next().await.expect("a replayed frame");
        let (kind, seq) = match f["type"].as_str() {
            Some("message") => ("message".to_string(), f["message"]["seq"].clone()),
            Some("event") => (
                f["event"]["kind"].as_str().expect("kind").to_string(),
                f["event"]["seq"].clone(),
            ),
            other => panic!("unexpected frame {other:?}: {f}"),
        };
        assert_eq!(seq, expected, "no gap, no duplicate");
        kinds.push(kind);
    }
    assert_eq!(kinds, ["edit", "reaction", "message", "delete"]);
    // The log as it happened: the deleted message's text is gone from the
    // replay too.
    let log = events(&s, &ann, &room).await;
    assert_eq!(log.len(), 5);
    assert_eq!(
        (&log[3]["kind"], &log[3]["body"]),
        (&json!("message"), &json!(""))
    );
}

#[tokio::test]
async fn a_restored_backup_rebuilds_what_the_events_made_of_each_message() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let room = s.room(&ann, "general").await;
    let seq = s.say(&ann, &room, "draft", None).await["seq"]
        .as_u64()
        .expect("seq");
    edit(&s, &ann, &room, seq, "final").await;
    react(&s, &ann, &room, seq, "✅", true).await;
    let before = s.history(&ann, &room).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("backup.hearth");
    let hearth = |data: &std::path::Path, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(args)
            .arg("--data")
            .arg(data)
            .env_remove("HEARTH_CONFIG")
            .output()
            .expect("run hearth");
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    let path = file.to_str().expect("utf-8 path");
    hearth(&s.data_dir(), &["backup", path]);
    let restored = dir.path().join("restored");
    hearth(&restored, &["restore", path]);
    hearth(&restored, &["verify"]);

    let config = hearth::config::Config::defaults();
    let store = hearth::storage::Store::open(
        &restored,
        config.storage.cache_bytes,
        config.storage.durability,
    )
    .expect("open the restored store");
    let state = store
        .log()
        .expect("room log")
        .state(room.parse().expect("room id"), hearth::ids::Seq(seq))
        .expect("read the state");
    assert_eq!(state.body.as_deref(), Some("final"));
    assert!(state.edited_at.is_some());
    let reacted: Vec<_> = state
        .reactions
        .iter()
        .map(|(e, by)| (e.as_str(), by.len()))
        .collect();
    assert_eq!(reacted, [("✅", 1)]);
    assert_eq!(
        before[0]["reactions"],
        json!([{"emoji": "✅", "count": 1, "me": true}])
    );
}

#[tokio::test]
async fn typing_is_relayed_to_the_other_members_at_most_every_two_seconds() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let cat = s.user("cat").await;
    let room = s.room(&ann, "general").await;
    s.join(&bob, &room).await;
    let mut ann_ws = s.ws(&ann).await;
    ann_ws.hello(None).await;
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;

    for _ in 0..5 {
        ann_ws
            .send_json(json!({"type": "typing", "room": room}))
            .await;
    }
    let t = bob_ws.expect("typing").await;
    assert_eq!(
        (&t["room"], &t["user"]["username"]),
        (&json!(room), &json!("ann"))
    );
    // Not stored: the room's seq is unchanged; and only one of the five.
    assert_eq!(head(&s, &ann, &room).await, 0);
    let more = bob_ws
        .next_within(std::time::Duration::from_millis(500))
        .await;
    assert!(
        more.as_ref().is_none_or(|f| f["type"] != "typing"),
        "{more:?}"
    );
    // Never to oneself.
    let own = ann_ws
        .next_within(std::time::Duration::from_millis(200))
        .await;
    assert!(
        own.as_ref().is_none_or(|f| f["type"] != "typing"),
        "{own:?}"
    );

    // Someone outside the room is told so, and nothing is relayed.
    let mut cat_ws = s.ws(&cat).await;
    cat_ws.hello(None).await;
    cat_ws
        .send_json(json!({"type": "typing", "room": room}))
        .await;
    assert_eq!(cat_ws.expect("error").await["code"], "not_a_member");
}

#[tokio::test]
async fn people_sharing_a_room_see_each_other_come_and_go() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let room = s.room(&ann, "general").await;
    s.join(&bob, &room).await;
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;

    let mut ann_ws = s.ws(&ann).await;
    let ready = ann_ws.hello(None).await;
    assert!(
        ready["online"]
            .as_array()
            .expect("online")
            .contains(&json!(bob.id)),
        "{ready}"
    );
    let came = bob_ws.expect("presence").await;
    assert_eq!(
        came["changes"],
        json!([{"user": {"id": ann.id, "username": "ann"}, "online": true}])
    );
    let (_, members) = s
        .get(&format!("/api/v1/rooms/{room}/members"), Some(&bob.token))
        .await;
    assert!(members["members"]
        .as_array()
        .expect("members")
        .iter()
        .all(|m| m["online"] == true));

    drop(ann_ws);
    let went = bob_ws.expect("presence").await;
    assert_eq!(
        went["changes"],
        json!([{"user": {"id": ann.id, "username": "ann"}, "online": false}])
    );
}

/// Who a socket hears of coming online, from its presence frames, until it
/// has heard of all of `expected` (each change listed once per frame).
fn heard_online(frames: Vec<Value>, expected: &[&str]) -> Vec<String> {
    let mut heard: Vec<String> = Vec::new();
    for f in frames {
        assert_eq!(f["type"], "presence", "{f}");
        let changes = f["changes"].as_array().expect("changes");
        let mut names: Vec<&str> = changes
            .iter()
            .map(|c| c["user"]["username"].as_str().expect("username"))
            .collect();
        let all = names.len();
        names.dedup();
        assert_eq!(names.len(), all, "one change per person a frame: {f}");
        heard.extend(names.into_iter().map(String::from));
    }
    heard.sort();
    heard.dedup();
    assert!(
        expected.iter().all(|e| heard.iter().any(|h| h == e)),
        "{heard:?}"
    );
    heard
}

#[tokio::test]
async fn every_socket_of_a_person_hears_who_came_but_never_of_itself() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let cat = s.user("cat").await;
    let room = s.room(&ann, "general").await;
    s.join(&bob, &room).await;
    s.join(&cat, &room).await;
    let mut bob_json = s.ws(&bob).await;
    bob_json.hello(None).await;
    let (mut bob_msgpack, _) = s.ws_msgpack(&bob).await;
    bob_msgpack.send_msgpack(json!({"type": "hello"})).await;
    assert_eq!(
        bob_msgpack.next_msgpack().await.expect("ready")["type"],
        "ready"
    );
    // Ann and Cat come online together: one announcement can carry both.
    let mut ann_ws = s.ws(&ann).await;
    ann_ws.hello(None).await;
    let mut cat_ws = s.ws(&cat).await;
    cat_ws.hello(None).await;

    let mut json_frames = Vec::new();
    let mut msgpack_frames = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    while std::time::Instant::now() < deadline {
        let heard = |frames: &Vec<Value>, who: &str| {
            frames.iter().any(|f| {
                f["changes"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["user"]["username"] == who))
            })
        };
        if ["ann", "cat"]
            .iter()
            .all(|w| heard(&json_frames, w) && heard(&msgpack_frames, w))
        {
            break;
        }
        if !(heard(&json_frames, "ann") && heard(&json_frames, "cat")) {
            json_frames.push(bob_json.expect("presence").await);
        }
        if !(heard(&msgpack_frames, "ann") && heard(&msgpack_frames, "cat")) {
            let f = bob_msgpack.next_msgpack().await.expect("a presence frame");
            msgpack_frames.push(f);
        }
    }
    // Both of Bob's sockets, each in its own format, hear of both and of
    // nobody else: never of Bob himself.
    assert_eq!(heard_online(json_frames, &["ann", "cat"]), ["ann", "cat"]);
    assert_eq!(
        heard_online(msgpack_frames, &["ann", "cat"]),
        ["ann", "cat"]
    );
    // Ann hears of Cat (and perhaps of Bob, online before her ready), never
    // of herself.
    let ann_heard = heard_online(vec![ann_ws.expect("presence").await], &[]);
    assert!(!ann_heard.iter().any(|h| h == "ann"), "{ann_heard:?}");
}

#[tokio::test]
async fn rooms_over_the_presence_limit_share_no_presence() {
    let s = TestServer::spawn_with(&[("HEARTH_PRESENCE_MAX_MEMBERS", "1")]).await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let room = s.room(&ann, "general").await;
    s.join(&bob, &room).await;
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;
    let mut ann_ws = s.ws(&ann).await;
    let ready = ann_ws.hello(None).await;
    assert_eq!(ready["online"], json!([]));
    let heard = bob_ws
        .next_within(std::time::Duration::from_millis(2600))
        .await;
    assert!(
        heard.as_ref().is_none_or(|f| f["type"] != "presence"),
        "{heard:?}"
    );
}

/// Every message frame a resume from 0 replays, by seq (events skipped).
async fn replayed_messages(s: &TestServer, user: &User, room: &str, n: u64) -> Vec<Value> {
    let mut ws = s.ws(user).await;
    ws.hello(Some(json!({ room: 0 }))).await;
    let mut out = Vec::new();
    let mut seen = 0;
    while seen < n {
        let f = ws.next().await.expect("a replayed frame");
        match f["type"].as_str() {
            Some("message") => {
                seen += 1;
                out.push(f["message"].clone());
            }
            Some("event") => seen += 1,
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn a_replay_shows_events_as_they_read_now_after_other_replays_of_the_room() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let room = s.room(&ann, "replayed").await;
    s.join(&bob, &room).await;
    s.say(&ann, &room, "first", None).await;
    let (status, reply) = s
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&bob.token),
            json!({"body": "an answer", "reply_to": 1}),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    s.say(&ann, &room, "soon gone", None).await;
    // Past one replay page (256 events): the first page is then replayed
    // whole before the events that change it come.
    s.post_many(&ann, &room, 260).await;
    let n = 263;

    // Two replays of the same events (whatever a replay keeps for the
    // next, it must not outlive the changes below).
    for _ in 0..2 {
        let m = replayed_messages(&s, &ann, &room, n).await;
        assert_eq!(m[1]["reply_to"]["excerpt"], "first");
        assert_eq!(m[1]["author"]["username"], "bob");
        assert_eq!(m[2]["body"], "soon gone");
    }

    // An edit changes what the answer quotes; a deletion blanks a message.
    let (status, body) = edit(&s, &ann, &room, 1, "first, edited").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s
        .delete(
            &format!("/api/v1/rooms/{room}/messages/3"),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    let m = replayed_messages(&s, &ann, &room, n + 2).await;
    assert_eq!(m[1]["reply_to"]["excerpt"], "first, edited");
    assert_eq!(
        (m[2]["deleted"].clone(), m[2]["body"].clone()),
        (json!(true), json!(""))
    );

    // A deleted account's messages are shown as a deleted user's.
    let (status, body) = s
        .delete(
            "/api/v1/me",
            Some(&bob.token),
            json!({"password": "password-bob"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let m = replayed_messages(&s, &ann, &room, n + 2).await;
    assert_eq!(m[1]["author"]["deleted"], true, "{}", m[1]);
    assert_eq!(m[1]["body"], "an answer");
}
