//! Pages of history copied from the JSON the recent window keeps for its
//! messages are what storage-backed encoding gives, byte for byte, for
//! every reader (each sees their own reactions as `me`), across edits,
//! reactions, deletions, replies whose quoted message changes, and an
//! author deleting their account; and a change acknowledged over HTTP or a
//! WebSocket shows on the very next read.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::harness::{TestServer, User};

/// Every page the test compares, for one reader: raw status and body.
async fn pages(s: &TestServer, reader: &User, room: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut paths = vec!["messages".to_string(), "messages?limit=200".to_string()];
    for before in [5, 12, 20, 26, 40] {
        paths.push(format!("messages?limit=7&before={before}"));
    }
    for after in [0, 9, 18] {
        paths.push(format!("messages?limit=9&after={after}"));
    }
    for p in paths {
        let r = s
            .http
            .get(s.url(&format!("/api/v1/rooms/{room}/{p}")))
            .bearer_auth(&reader.token)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        out.insert(p, format!("{status} {}", r.text().await.expect("body")));
    }
    out
}

/// The newest page as `reader` sees it now.
async fn newest(s: &TestServer, reader: &User, room: &str) -> Vec<Value> {
    let (st, page) = s
        .get(
            &format!("/api/v1/rooms/{room}/messages?limit=200"),
            Some(&reader.token),
        )
        .await;
    assert_eq!(st, 200, "{page}");
    page["messages"].as_array().expect("messages").clone()
}

/// Every reader's pages now (from the window, with the JSON it kept
/// before the last change) are what storage alone answers: the server
/// restarts without a window to ask, then with one again, whose JSON the
/// readers' pages fill before the next change.
async fn matches_storage(s: &mut TestServer, readers: &[&User], room: &str) {
    let mut kept = Vec::new();
    for r in readers {
        kept.push(pages(s, r, room).await);
    }
    s.terminate();
    s.set_env("HEARTH_HISTORY_WINDOW", "0");
    s.restart();
    for (r, got) in readers.iter().zip(&kept) {
        let stored = pages(s, r, room).await;
        assert_eq!(got.len(), stored.len());
        for (path, body) in &stored {
            assert_eq!(got.get(path), Some(body), "{} reads {path}", r.name);
        }
    }
    s.terminate();
    s.set_env("HEARTH_HISTORY_WINDOW", "256");
    s.restart();
    for r in readers {
        pages(s, r, room).await;
    }
}

fn find(page: &[Value], seq: u64) -> &Value {
    page.iter()
        .find(|m| m["seq"] == seq)
        .unwrap_or_else(|| panic!("message {seq} on the page"))
}

async fn call(s: &TestServer, user: &User, method: &str, path: &str, body: Value) {
    let r = s.request(method, path, &user.token, body).await;
    assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.body);
}

/// Posts a message over HTTP; its seq.
async fn post(s: &TestServer, user: &User, room: &str, body: Value) -> u64 {
    let path = format!("/api/v1/rooms/{room}/messages");
    let (st, m) = s.post(&path, Some(&user.token), body).await;
    assert_eq!(st, 201, "{m}");
    m["message"]["seq"].as_u64().expect("seq")
}

fn react_path(room: &str, seq: u64, emoji: &str) -> String {
    let encoded: String = emoji.bytes().map(|b| format!("%{b:02X}")).collect();
    format!("/api/v1/rooms/{room}/messages/{seq}/reactions/{encoded}")
}

#[tokio::test]
async fn pages_copied_from_kept_json_are_what_storage_encodes() {
    let mut s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let cat = s.user("cat").await;
    let room = s.room(&ann, "kept json").await;
    s.join(&bob, &room).await;
    s.join(&cat, &room).await;
    let readers = [&ann, &bob, &cat];
    let msg = |seq: u64| format!("/api/v1/rooms/{room}/messages/{seq}");

    // Messages 1–20, then replies to 3 and 4 by cat, one with a body that
    // needs escaping.
    s.post_many(&ann, &room, 20).await;
    let body = json!({"body": "to \"three\" \\ <b> \u{1}", "reply_to": 3});
    let reply3 = post(&s, &cat, &room, body).await;
    let reply4 = post(&s, &cat, &room, json!({"body": "to four", "reply_to": 4})).await;
    matches_storage(&mut s, &readers, &room).await;

    // Each change shows on the next read, for every reader.
    call(&s, &ann, "PATCH", &msg(3), json!({"body": "three, edited"})).await;
    for r in readers {
        let page = newest(&s, r, &room).await;
        assert_eq!(find(&page, 3)["body"], "three, edited");
        assert!(find(&page, 3)["edited_at"].is_string());
        assert_eq!(
            find(&page, reply3)["reply_to"]["excerpt"],
            "three, edited",
            "the reply quotes the edited body"
        );
    }
    matches_storage(&mut s, &readers, &room).await;

    call(&s, &bob, "PUT", &react_path(&room, 5, "👍"), json!({})).await;
    call(&s, &cat, "PUT", &react_path(&room, 5, "👍"), json!({})).await;
    call(&s, &cat, "PUT", &react_path(&room, 5, "🎉"), json!({})).await;
    for r in readers {
        let page = newest(&s, r, &room).await;
        let reactions = &find(&page, 5)["reactions"];
        assert_eq!(reactions[0]["count"], 2, "{reactions}");
        assert_eq!(
            reactions[0]["me"],
            r.name != "ann",
            "{} {reactions}",
            r.name
        );
        assert_eq!(
            reactions[1]["me"],
            r.name == "cat",
            "{} {reactions}",
            r.name
        );
    }
    matches_storage(&mut s, &readers, &room).await;

    call(&s, &bob, "DELETE", &react_path(&room, 5, "👍"), json!({})).await;
    let page = newest(&s, &bob, &room).await;
    assert_eq!(find(&page, 5)["reactions"][0]["count"], 1);
    assert_eq!(find(&page, 5)["reactions"][0]["me"], false);
    call(&s, &ann, "DELETE", &msg(4), json!({})).await;
    for r in readers {
        let page = newest(&s, r, &room).await;
        assert_eq!(find(&page, 4)["deleted"], true);
        assert_eq!(find(&page, 4)["body"], "");
        assert_eq!(find(&page, reply4)["reply_to"]["excerpt"], "");
    }
    matches_storage(&mut s, &readers, &room).await;

    // Over a WebSocket: the ack, then the very next read shows the change.
    let frames = [
        json!({"type":"edit","room":room,"target":6,"body":"six over ws","client_id":"e6"}),
        json!({"type":"react","room":room,"target":6,"emoji":"👀","on":true,"client_id":"r6"}),
        json!({"type":"delete","room":room,"target":7,"client_id":"d7"}),
        json!({"type":"send","room":room,"body":"answering six","reply_to":6,"client_id":"s6"}),
    ];
    for frame in frames {
        let mut ws = s.ws(&ann).await;
        ws.hello(None).await;
        let client_id = frame["client_id"].clone();
        ws.send_json(frame).await;
        loop {
            let f = ws.next().await.expect("an ack");
            assert_ne!(f["type"], "error", "{f}");
            if f["type"] == "ack" && f["client_id"] == client_id {
                break;
            }
        }
        let page = newest(&s, &bob, &room).await;
        match client_id.as_str() {
            Some("e6") => assert_eq!(find(&page, 6)["body"], "six over ws"),
            Some("r6") => assert_eq!(find(&page, 6)["reactions"][0]["emoji"], "👀"),
            Some("d7") => assert_eq!(find(&page, 7)["deleted"], true),
            _ => {
                let last = page.last().expect("a message");
                assert_eq!(last["reply_to"]["excerpt"], "six over ws", "{last}");
            }
        }
        drop(ws);
        matches_storage(&mut s, &readers, &room).await;
    }

    // cat leaves for good: their messages are from a deleted user now.
    let r = s
        .call("DELETE", "/api/v1/me")
        .auth(crate::harness::Auth::Bearer(&cat.token))
        .json(json!({"password": "password-cat"}))
        .send()
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let readers = [&ann, &bob];
    for r in readers {
        let page = newest(&s, r, &room).await;
        assert_eq!(find(&page, reply3)["author"]["deleted"], true);
    }
    matches_storage(&mut s, &readers, &room).await;

    // The readers see different `me` flags, so their pages differ.
    assert_ne!(
        pages(&s, &ann, &room).await["messages"],
        pages(&s, &bob, &room).await["messages"]
    );
}
