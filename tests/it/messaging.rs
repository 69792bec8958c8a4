//! Real-time messaging: live delivery, acks, dedup and resume.

use serde_json::json;

use crate::harness::{assert_contiguous, TestServer};

#[tokio::test]
async fn two_users_chat_live() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = s.room(&alice, "general").await;
    s.join(&bob, &room).await;
    let mut a = s.ws(&alice).await;
    let mut b = s.ws(&bob).await;
    let ready = a.hello(None).await;
    assert_eq!(ready["user"]["id"], json!(alice.id));
    assert_eq!(ready["rooms"][0]["id"], json!(room));
    b.hello(None).await;

    a.send(&room, "c-1", "hi bob").await;
    let ack = a.expect("ack").await;
    assert_eq!(
        (ack["client_id"].as_str(), ack["seq"].as_u64()),
        (Some("c-1"), Some(1))
    );
    let got = b.expect("message").await;
    assert_eq!(got["message"]["body"], "hi bob");
    assert_eq!(got["message"]["author"]["username"], "alice");
    assert_eq!(got["message"]["seq"], 1);
    let echo = a.expect("message").await;
    assert_eq!(echo["message"]["id"], ack["id"]);

    b.send(&room, "c-2", "hi alice").await;
    assert_eq!(a.expect("message").await["message"]["body"], "hi alice");
}

#[tokio::test]
async fn a_resent_client_id_is_stored_once() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    let mut a = s.ws(&alice).await;
    a.hello(None).await;
    a.send(&room, "same", "once").await;
    let first = a.expect("ack").await;
    a.send(&room, "same", "once").await;
    let second = a.expect("ack").await;
    assert_eq!(first["seq"], second["seq"]);
    assert_eq!(first["id"], second["id"]);
    let rest = s.say(&alice, &room, "once", Some("same")).await;
    assert_eq!(rest["seq"], first["seq"]);
    assert_eq!(s.history(&alice, &room).await.len(), 1);
}

#[tokio::test]
async fn resume_replays_missed_messages_without_gap_or_duplicate() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let carol = s.user("carol").await;
    let room = s.room(&alice, "general").await;
    s.join(&carol, &room).await;
    for i in 0..20 {
        s.say(&carol, &room, &format!("before {i}"), None).await;
    }
    // Carol keeps posting while Alice reconnects and resumes from seq 5.
    let poster = {
        let url = s.url(&format!("/api/v1/rooms/{room}/messages"));
        let token = carol.token.clone();
        let http = s.http.clone();
        tokio::spawn(async move {
            for i in 0..100 {
                let r = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"body": format!("during {i}")}))
                    .send()
                    .await
                    .expect("post");
                assert_eq!(r.status().as_u16(), 201);
            }
        })
    };
    let mut a = s.ws(&alice).await;
    a.hello(Some(json!({ room.clone(): 5 }))).await;
    poster.await.expect("poster");
    let mut seen = Vec::new();
    while let Some(f) = a.next_within(std::time::Duration::from_secs(3)).await {
        if f["type"] == "message" {
            seen.push(f["message"].clone());
        }
        if seen.last().and_then(|m| m["seq"].as_u64()) == Some(120) {
            break;
        }
    }
    let seqs: Vec<u64> = seen.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (6..=120).collect::<Vec<_>>());
}

#[tokio::test]
async fn acked_messages_survive_kill_9() {
    let mut s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    let mut a = s.ws(&alice).await;
    a.hello(None).await;
    for i in 0..200 {
        a.send(&room, &format!("k{i}"), &format!("message {i}"))
            .await;
    }
    let mut acked = 0;
    while acked < 200 {
        let f = a.next().await.expect("frames keep coming");
        if f["type"] == "ack" {
            acked += 1;
        }
    }
    s.kill9();
    s.restart();
    let alice = s.login("alice", "password-alice").await;
    let history = s.history(&alice, &room).await;
    assert_contiguous(&history, 200);
}

#[tokio::test]
async fn a_retry_is_answered_even_when_the_sender_is_over_the_rate_limit() {
    let s =
        TestServer::spawn_with(&[("HEARTH_SEND_BURST", "2"), ("HEARTH_SEND_PER_SEC", "1")]).await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    let first = s.say(&alice, &room, "one", Some("k1")).await;
    s.say(&alice, &room, "two", Some("k2")).await;
    // The budget is spent: a new message is refused...
    let (status, _) = s
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&alice.token),
            json!({"body": "three", "client_id": "k3"}),
        )
        .await;
    assert_eq!(status, 429);
    // ...but a retry of a stored one gets the original, over REST and WS.
    let again = s.say(&alice, &room, "one", Some("k1")).await;
    assert_eq!(
        (again["seq"].clone(), again["id"].clone()),
        (first["seq"].clone(), first["id"].clone())
    );
    let mut ws = s.ws(&alice).await;
    ws.hello(None).await;
    ws.send(&room, "k1", "one").await;
    let ack = ws.expect("ack").await;
    assert_eq!(ack["seq"], first["seq"]);
    assert_eq!(ack["id"], first["id"]);
    assert_eq!(s.history(&alice, &room).await.len(), 2);
}
