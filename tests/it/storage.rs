//! What is on disk survives damage it can survive: a damaged index entry
//! is reported, not fatal.

use std::process::Command;

use serde_json::json;

use crate::harness::TestServer;

/// A membership key shorter than a room id once aborted start-up (a slice
/// past its end). Now the server starts, everyone keeps working, and
/// `hearth verify` names the bad entry.
#[tokio::test]
async fn a_short_key_in_the_membership_tree_is_reported_not_fatal() {
    let mut s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    s.say(&alice, &room, "before", Some("b-1")).await;
    let (status, _) = s.terminate();
    assert!(status.success());

    {
        let db = sled::open(s.data_dir().join("db")).expect("open the stopped server's database");
        let tree = db.open_tree("roomid_userid").expect("membership tree");
        tree.insert(&b"short"[..], &[][..])
            .expect("write a short key");
        db.flush().expect("flush");
    }

    s.restart();
    let (status, ready) = s.get("/readyz", None).await;
    assert_eq!(status, 200, "{ready}");
    let alice = s.login("alice", "password-alice").await;
    s.say(&alice, &room, "after", Some("a-1")).await;
    let bodies: Vec<_> = s
        .history(&alice, &room)
        .await
        .iter()
        .map(|m| m["body"].clone())
        .collect();
    assert_eq!(bodies, vec![json!("before"), json!("after")]);

    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["verify", "--data"])
        .arg(s.data_dir())
        .env_remove("HEARTH_CONFIG")
        .output()
        .expect("run hearth verify");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "verify must fail on a damaged key: {said}"
    );
    assert!(
        said.contains("roomid_userid"),
        "verify names the tree: {said}"
    );
}

/// A data directory written by the release before events (commit 7f8b361:
/// messages only, an administrator's tombstone, client_ids) opens in this
/// one: everything reads as before, old messages gain the new fields, and
/// new events continue the same sequence.
#[tokio::test]
async fn a_store_from_the_release_before_events_opens_and_carries_on() {
    let mut s = TestServer::spawn().await;
    let (status, _) = s.terminate();
    assert!(status.success());
    std::fs::remove_dir_all(s.data_dir()).expect("clear the data directory");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/store-7f8b361.tar.gz");
    let parent = s.data_dir().parent().expect("parent").to_path_buf();
    let out = Command::new("tar")
        .arg("xzf")
        .arg(&fixture)
        .arg("-C")
        .arg(&parent)
        .output()
        .expect("run tar");
    assert!(out.status.success(), "{out:?}");
    let room = std::fs::read_to_string(s.data_dir().join("ROOM")).expect("the fixture's room id");
    let room = room.trim().to_string();
    s.restart();

    let ann = s.login("ann", "password-ann").await;
    let history = s.history(&ann, &room).await;
    let bodies: Vec<_> = history.iter().map(|m| m["body"].clone()).collect();
    assert_eq!(
        bodies,
        [
            json!("old message 1"),
            json!(""),
            json!("old message 3"),
            json!("hello @ann")
        ]
    );
    assert_eq!(
        history[1]["deleted"], true,
        "the old tombstone still reads as deleted"
    );
    for m in &history {
        assert_eq!(
            (
                &m["edited_at"],
                &m["reactions"],
                &m["reply_to"],
                &m["mentions"]
            ),
            (&json!(null), &json!([]), &json!(null), &json!([]))
        );
    }
    // An old client_id still dedups; new events continue the sequence.
    let (status, r) = s
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&ann.token),
            json!({"body": "old message 1", "client_id": "old-1"}),
        )
        .await;
    assert_eq!((status, &r["message"]["seq"]), (200, &json!(1)));
    let r = s
        .call("PATCH", &format!("/api/v1/rooms/{room}/messages/1"))
        .header("Authorization", &format!("Bearer {}", ann.token))
        .json(json!({"body": "old message 1, edited"}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (_, got) = s
        .get(&format!("/api/v1/rooms/{room}"), Some(&ann.token))
        .await;
    assert_eq!(got["room"]["last_seq"], 5);

    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["verify", "--data"])
        .arg(s.data_dir())
        .env_remove("HEARTH_CONFIG")
        .output()
        .expect("run hearth verify");
    assert!(out.status.success(), "{out:?}");
}
