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
