//! Read state across devices: one cursor per member and room, moved from
//! any device and heard on the others, with exact unread and mention
//! counts on every room object, kept across restarts and crashes.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{TestServer, User, Ws};

/// `user`'s room object as the room list shows it.
async fn listed(s: &TestServer, user: &User, room: &str) -> Value {
    let (status, body) = s.get("/api/v1/rooms", Some(&user.token)).await;
    assert_eq!(status, 200, "{body}");
    body["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .find(|r| r["id"] == room)
        .cloned()
        .unwrap_or_else(|| panic!("room {room} listed: {body}"))
}

/// (read_seq, unread_count, mention_count) of `user` in `room`, checked
/// to agree between the room list and the room itself.
async fn counts(s: &TestServer, user: &User, room: &str) -> (u64, u64, u64) {
    let r = listed(s, user, room).await;
    let (status, one) = s
        .get(&format!("/api/v1/rooms/{room}"), Some(&user.token))
        .await;
    assert_eq!(status, 200, "{one}");
    for key in ["read_seq", "unread_count", "mention_count"] {
        assert_eq!(r[key], one["room"][key], "{key}: list {r} vs get {one}");
    }
    (
        r["read_seq"].as_u64().expect("read_seq"),
        r["unread_count"].as_u64().expect("unread_count"),
        r["mention_count"].as_u64().expect("mention_count"),
    )
}

async fn mark(s: &TestServer, user: &User, room: &str, body: Value) -> (u16, Value) {
    let r = s
        .request(
            "POST",
            &format!("/api/v1/rooms/{room}/read"),
            &user.token,
            body,
        )
        .await;
    (r.status, r.body)
}

/// The next frame of `kind`, skipping presence and other chatter.
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    ws.expect(kind).await
}

#[tokio::test]
async fn counts_are_others_live_messages_after_the_cursor_and_mentions_among_them() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let room = s.room(&ann, "general").await;
    s.say(&ann, &room, "before bob came", None).await;
    s.join(&bob, &room).await;
    // A new member has read what was there before they came.
    assert_eq!(counts(&s, &bob, &room).await, (1, 0, 0));

    s.say(&ann, &room, "hello", None).await; // 2
    let named = s.say(&ann, &room, "@bob look", None).await; // 3
    s.say(&ann, &room, "@room everyone", None).await; // 4
    s.say(&bob, &room, "hi ann @ann", None).await; // 5, moves bob's cursor
    assert_eq!(counts(&s, &bob, &room).await, (5, 0, 0));
    // Ann's own sends moved hers; bob's message and mention are unread.
    assert_eq!(counts(&s, &ann, &room).await, (4, 1, 1));

    // Back to where bob stood before his own message: three by ann, two
    // of them mention him.
    let (status, body) = mark(&s, &bob, &room, json!({"seq": 1, "force": true})).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(counts(&s, &bob, &room).await, (1, 3, 2));

    // An edit changes no count; a deletion takes the message out.
    let seq = named["seq"].as_u64().expect("seq");
    let r = s
        .request(
            "PATCH",
            &format!("/api/v1/rooms/{room}/messages/{seq}"),
            &ann.token,
            json!({"body": "@bob look again"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(counts(&s, &bob, &room).await, (1, 3, 2));
    let r = s
        .request(
            "DELETE",
            &format!("/api/v1/rooms/{room}/messages/{seq}"),
            &ann.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(counts(&s, &bob, &room).await, (1, 2, 1));

    // Forward only without force; past the newest event means all of it.
    mark(&s, &bob, &room, json!({"seq": 3})).await;
    assert_eq!(counts(&s, &bob, &room).await, (3, 1, 1));
    mark(&s, &bob, &room, json!({"seq": 2})).await;
    assert_eq!(counts(&s, &bob, &room).await, (3, 1, 1));
    let (status, _) = mark(&s, &bob, &room, json!({"seq": 1_000_000})).await;
    assert_eq!(status, 204);
    let (read, unread, mentions) = counts(&s, &bob, &room).await;
    assert_eq!((unread, mentions), (0, 0));
    let last = listed(&s, &bob, &room).await["last_seq"].as_u64().unwrap();
    assert_eq!(read, last);
}

#[tokio::test]
async fn a_cursor_moved_on_one_device_reaches_the_others_and_ready() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let room = s.room(&ann, "general").await;
    s.join(&bob, &room).await;
    for i in 0..4 {
        s.say(&ann, &room, &format!("m{i}"), None).await;
    }
    let mut phone = s.ws(&bob).await;
    let ready = phone.hello(None).await;
    let head = ready["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == room)
        .cloned()
        .expect("room in ready");
    assert_eq!(head["unread_count"], 4, "{head}");
    assert_eq!(head["mention_count"], 0, "{head}");
    assert_eq!(head["read_seq"], 0, "{head}");
    let mut laptop = s.ws(&bob).await;
    laptop.hello(None).await;

    // Read on the phone: the laptop hears it, the phone does not echo.
    phone
        .send_json(json!({"type":"read","room": room, "seq": 3}))
        .await;
    let f = next_of(&mut laptop, "read").await;
    assert_eq!(f["room"], room.as_str());
    assert_eq!(f["seq"], 3);
    assert_eq!(f["unread_count"], 1);
    assert_eq!(f["mention_count"], 0);
    // Over HTTP: both hear it.
    mark(&s, &bob, &room, json!({"seq": 4})).await;
    assert_eq!(next_of(&mut laptop, "read").await["seq"], 4);
    assert_eq!(next_of(&mut phone, "read").await["seq"], 4);
    // The phone's own read came back to nobody else: the next thing it
    // hears after the HTTP read is new traffic, not an echo of seq 3.
    s.say(&ann, &room, "more", None).await;
    assert_eq!(
        next_of(&mut phone, "message").await["message"]["body"],
        "more"
    );

    // A reconnecting device learns the cursor in `ready`.
    let mut tablet = s.ws(&bob).await;
    let ready = tablet.hello(None).await;
    let head = ready["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == room)
        .cloned()
        .unwrap();
    assert_eq!(
        (head["read_seq"].as_u64(), head["unread_count"].as_u64()),
        (Some(4), Some(1))
    );

    // Moving it nowhere sends nothing.
    phone
        .send_json(json!({"type":"read","room": room, "seq": 2}))
        .await;
    mark(&s, &bob, &room, json!({"seq": 5})).await;
    let f = next_of(&mut laptop, "read").await;
    assert_eq!(f["seq"], 5, "the backward read was ignored: {f}");
}

#[tokio::test]
async fn cursors_survive_a_restart_and_a_crash_after_a_second() {
    let mut s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let room = s.room(&ann, "general").await;
    s.join(&bob, &room).await;
    for i in 0..5 {
        s.say(&ann, &room, &format!("m{i}"), None).await;
    }
    mark(&s, &bob, &room, json!({"seq": 3})).await;
    // A clean stop writes what is pending at once.
    s.terminate();
    s.restart();
    assert_eq!(counts(&s, &bob, &room).await, (3, 2, 0));

    mark(&s, &bob, &room, json!({"seq": 5})).await;
    // Cursors reach the disk at least once a second: a crash after that
    // loses nothing.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    s.kill9();
    s.restart();
    assert_eq!(counts(&s, &bob, &room).await, (5, 0, 0));
    // A message after the restart counts on top of the kept cursor.
    s.say(&ann, &room, "after", None).await;
    assert_eq!(counts(&s, &bob, &room).await, (5, 1, 0));
}

#[tokio::test]
async fn only_members_have_a_cursor_and_bad_reads_are_refused() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let room = s.room(&ann, "general").await;
    s.say(&ann, &room, "one", None).await;

    // A non-member sees the public room without read state and cannot mark it.
    let r = listed(&s, &bob, &room).await;
    assert!(
        r.get("read_seq").is_none() && r.get("unread_count").is_none(),
        "{r}"
    );
    let (status, body) = mark(&s, &bob, &room, json!({"seq": 1})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("not_a_member"))
    );
    // A private room is not found.
    let (status, body) = s
        .post(
            "/api/v1/rooms",
            Some(&ann.token),
            json!({"name": "plans", "visibility": "private"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let private = body["room"]["id"].as_str().unwrap().to_string();
    let (status, body) = mark(&s, &bob, &private, json!({"seq": 1})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("room_not_found"))
    );
    // Malformed bodies.
    for bad in [
        json!({}),
        json!({"seq": -1}),
        json!({"seq": "3"}),
        json!({"seq": 1.5}),
    ] {
        let (status, body) = mark(&s, &ann, &room, bad.clone()).await;
        assert_eq!(status, 400, "{bad} → {body}");
    }
    // Over the socket, an error frame names the problem.
    let mut ws = s.ws(&bob).await;
    ws.hello(None).await;
    ws.send_json(json!({"type":"read","room": room, "seq": 1}))
        .await;
    let f = ws.expect("error").await;
    assert_eq!(f["code"], "not_a_member", "{f}");

    // Leaving forgets the cursor; coming back starts with everything read.
    s.join(&bob, &room).await;
    mark(&s, &bob, &room, json!({"seq": 0, "force": true})).await;
    assert_eq!(counts(&s, &bob, &room).await, (0, 1, 0));
    let r = s
        .request(
            "POST",
            &format!("/api/v1/rooms/{room}/leave"),
            &bob.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    s.say(&ann, &room, "two", None).await;
    s.join(&bob, &room).await;
    assert_eq!(counts(&s, &bob, &room).await, (2, 0, 0));
}

#[tokio::test]
async fn a_direct_room_starts_unread_for_the_other_person() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let (status, body) = s
        .post("/api/v1/dms", Some(&ann.token), json!({"users": [bob.id]}))
        .await;
    assert_eq!(status, 200, "{body}");
    let room = body["room"]["id"].as_str().unwrap().to_string();
    s.say(&ann, &room, "psst", None).await;
    s.say(&ann, &room, "@bob you there?", None).await;
    assert_eq!(counts(&s, &bob, &room).await, (0, 2, 1));
    assert_eq!(counts(&s, &ann, &room).await, (2, 0, 0));
}

/// `hearth verify` on the data directory: its exit status and output.
fn verify(data: &std::path::Path) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["verify", "--data"])
        .arg(data)
        .env_remove("HEARTH_CONFIG")
        .output()
        .expect("run hearth verify");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn counts_come_back_from_the_saved_tally_and_the_log_after_it() {
    let mut s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let room = s.room(&ann, "general").await;
    s.join(&bob, &room).await;
    for i in 0..5 {
        s.say(&ann, &room, &format!("@bob m{i}"), None).await;
    }
    let deleted = s.say(&ann, &room, "oops", None).await["seq"]
        .as_u64()
        .unwrap();
    let r = s
        .request(
            "DELETE",
            &format!("/api/v1/rooms/{room}/messages/{deleted}"),
            &ann.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 204);
    // A clean stop saves the tally; the start loads it.
    s.terminate();
    s.restart();
    assert_eq!(counts(&s, &bob, &room).await, (0, 5, 5));
    let (clean, report) = verify(&s.data_dir());
    assert!(clean, "{report}");

    // Events after the saved tally are replayed from the log after a crash.
    for i in 0..3 {
        s.say(&ann, &room, &format!("later {i}"), None).await;
    }
    s.kill9();
    s.restart();
    assert_eq!(counts(&s, &bob, &room).await, (0, 8, 5));
    s.terminate();

    // A snapshot that disagrees with the log is named by verify; one that
    // is not a snapshot at all is also rebuilt from the log at start.
    let damage = |bytes: &[u8]| {
        let db = sled::open(s.data_dir().join("db")).expect("open with sled");
        let tallies = db.open_tree("roomid_tally").expect("tree");
        let id: uuid::Uuid = room.parse().expect("room id");
        assert!(
            tallies.get(id.as_bytes()).expect("read").is_some(),
            "saved at shutdown"
        );
        tallies.insert(id.as_bytes(), bytes).expect("damage");
        db.flush().expect("flush");
    };
    // Format 1, up to seq 9, every list empty: well formed, but wrong.
    damage(&[1u8, 9, 0, 0, 0, 0]);
    let (clean, report) = verify(&s.data_dir());
    assert!(
        !clean && report.contains("differs from what the log derives"),
        "{report}"
    );
    // A list of 5 seqs that ends after one.
    damage(&[1u8, 9, 5, 1]);
    let (clean, report) = verify(&s.data_dir());
    assert!(
        !clean && report.contains("not a tally snapshot"),
        "{report}"
    );
    s.restart();
    assert_eq!(counts(&s, &bob, &room).await, (0, 8, 5));
    s.terminate();
    let (clean, report) = verify(&s.data_dir());
    assert!(clean, "rewritten at shutdown: {report}");
}

#[tokio::test]
async fn each_member_chooses_what_to_be_notified_of_per_room() {
    let mut s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let room = s.room(&ann, "general").await;
    s.join(&bob, &room).await;
    let (status, body) = s
        .post("/api/v1/dms", Some(&ann.token), json!({"users": [bob.id]}))
        .await;
    assert_eq!(status, 200, "{body}");
    let dm = body["room"]["id"].as_str().unwrap().to_string();
    // Defaults: a direct room notifies of everything, a room of mentions.
    assert_eq!(listed(&s, &bob, &room).await["notifications"], "mentions");
    assert_eq!(listed(&s, &bob, &dm).await["notifications"], "all");
    let outsider = s.user("cyd").await;
    assert!(listed(&s, &outsider, &room)
        .await
        .get("notifications")
        .is_none());

    let mut phone = s.ws(&bob).await;
    phone.hello(None).await;
    let set = |room: String, level: Value| {
        let s = &s;
        let token = bob.token.clone();
        async move {
            s.request(
                "PUT",
                &format!("/api/v1/rooms/{room}/notifications"),
                &token,
                json!({"level": level}),
            )
            .await
        }
    };
    let r = set(room.clone(), json!("all")).await;
    assert_eq!((r.status, r.body["level"].as_str()), (200, Some("all")));
    let f = phone.expect("notifications").await;
    assert_eq!(
        (f["room"].as_str(), f["level"].as_str()),
        (Some(room.as_str()), Some("all"))
    );
    let r = set(dm.clone(), json!("none")).await;
    assert_eq!(r.status, 200);
    for bad in [json!("loud"), json!(3), Value::Null] {
        let r = set(room.clone(), bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let r = s
        .request(
            "PUT",
            &format!("/api/v1/rooms/{room}/notifications"),
            &outsider.token,
            json!({"level": "all"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("not_a_member"))
    );

    // Kept across a restart, and in `ready`.
    s.terminate();
    s.restart();
    assert_eq!(listed(&s, &bob, &room).await["notifications"], "all");
    assert_eq!(listed(&s, &bob, &dm).await["notifications"], "none");
    let mut ws = s.ws(&bob).await;
    let ready = ws.hello(None).await;
    let head = ready["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == dm)
        .cloned()
        .unwrap();
    assert_eq!(head["notifications"], "none");

    // Leaving forgets the choice; coming back starts from the default.
    let r = s
        .request(
            "POST",
            &format!("/api/v1/rooms/{room}/leave"),
            &bob.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 204);
    s.join(&bob, &room).await;
    assert_eq!(listed(&s, &bob, &room).await["notifications"], "mentions");
    s.terminate();
    s.restart();
    assert_eq!(listed(&s, &bob, &room).await["notifications"], "mentions");
}
