//! The server's life: a graceful stop on SIGTERM, a restart that forgets
//! nothing, and a kill -9 that loses nothing that was acknowledged.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{assert_contiguous, RawWs, TestServer, User};

#[tokio::test]
async fn sigterm_closes_sockets_with_1001_stops_accepting_and_exits_0_quickly() {
    let mut s = TestServer::spawn().await;
    let ana = s.user("ana").await;
    let ben = s.user("ben").await;
    let room = s.room(&ana, "last call").await;
    s.join(&ben, &room).await;
    let mut greeted = s.ws(&ana).await;
    greeted.hello(None).await;
    let (mut msgpack, _) = s.ws_msgpack(&ben).await;
    msgpack.send_msgpack(json!({"type": "hello"})).await;
    msgpack.next_msgpack().await.expect("ready");
    let mut not_greeted = s.ws(&ben).await;
    // A peer that never answers anything must not hold the stop up.
    let mut unresponsive = RawWs::connect(&s, &ana.token).await;
    unresponsive.send_text(json!({"type": "hello"})).await;
    greeted
        .send(&room, "last", "acked just before the stop")
        .await;
    let ack = greeted.expect("ack").await;

    let started = Instant::now();
    s.signal("TERM");
    assert_eq!(greeted.close_code().await, Some(1001));
    assert_eq!(msgpack.close_code().await, Some(1001));
    assert_eq!(not_greeted.close_code().await, Some(1001));
    assert_eq!(
        unresponsive.close_code(Duration::from_secs(10)).await,
        Some(1001)
    );
    // Sockets are closed after the listener: nobody new gets in.
    let refused = tokio::net::TcpStream::connect(&s.addr).await;
    assert!(refused.is_err(), "a connection was accepted while stopping");
    let status = s.wait_exit(Duration::from_secs(10)).await;
    let took = started.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(10), "stopping took {took:?}");

    s.restart();
    let history = s.history(&ben, &room).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["id"], ack["id"], "the acked message was flushed");
}

#[tokio::test]
async fn sigterm_is_not_held_up_by_stalled_clients() {
    let mut s = TestServer::spawn().await;
    let hana = s.user("hana").await;
    let room = s.room(&hana, "stalled").await;
    // A reader that stopped reading, with a tiny receive window, behind a
    // burst of large messages.
    let mut stuck = RawWs::connect_from(&s, &hana.token, "127.0.0.1", Some(4096)).await;
    stuck.send_text(json!({"type": "hello"})).await;
    let mut writer = s.ws(&hana).await;
    writer.hello(None).await;
    let big = "x".repeat(4000);
    for i in 0..100 {
        writer.send(&room, &format!("big-{i}"), &big).await;
    }
    let mut acked = 0;
    while acked < 100 {
        if writer.next().await.expect("acks")["type"] == "ack" {
            acked += 1;
        }
    }
    // Headers that never finish, and a body that never arrives.
    let mut slow_headers = tokio::net::TcpStream::connect(&s.addr)
        .await
        .expect("connect");
    let mut slow_body = tokio::net::TcpStream::connect(&s.addr)
        .await
        .expect("connect");
    {
        use tokio::io::AsyncWriteExt;
        slow_headers
            .write_all(b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        let head = format!(
            "POST /api/v1/rooms/{room}/messages HTTP/1.1\r\nHost: x\r\n\
             Authorization: Bearer {}\r\nContent-Type: application/json\r\n\
             Content-Length: 60000\r\n\r\n{{\"body\": \"",
            hana.token
        );
        slow_body.write_all(head.as_bytes()).await.expect("write");
    }

    let started = Instant::now();
    s.signal("TERM");
    let status = s.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    s.restart();
    assert_eq!(s.history(&hana, &room).await.len(), 100);
}

#[tokio::test]
async fn every_post_answered_before_sigterm_is_kept() {
    let mut s = TestServer::spawn().await;
    let ivy = s.user("ivy").await;
    let room = s.room(&ivy, "until-the-end").await;
    let (http, url, token) = (
        s.http.clone(),
        s.url(&format!("/api/v1/rooms/{room}/messages")),
        ivy.token.clone(),
    );
    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    let poster = tokio::spawn(async move {
        let mut first = Some(first_tx);
        let mut answered = Vec::new();
        for i in 0.. {
            let sent = http
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({"body": format!("m{i}"), "client_id": format!("c{i}")}))
                .send()
                .await;
            let Ok(r) = sent else { break };
            match r.status().as_u16() {
                201 => {
                    let m: Value = r.json().await.expect("json");
                    answered.push(m["message"]["id"].clone());
                    if let Some(tx) = first.take() {
                        let _ = tx.send(());
                    }
                }
                503 => break,
                other => panic!("unexpected {other}"),
            }
        }
        answered
    });
    first_rx.await.expect("posting started");
    s.signal("TERM");
    let status = s.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success());
    let answered = tokio::time::timeout(Duration::from_secs(20), poster)
        .await
        .expect("the poster stops")
        .expect("poster");
    s.restart();
    let history = s.history(&ivy, &room).await;
    let stored: Vec<&Value> = history.iter().map(|m| &m["id"]).collect();
    for id in &answered {
        assert!(stored.contains(&id), "answered message {id} was lost");
    }
    assert_contiguous(&history, history.len() as u64);
}

#[tokio::test]
async fn a_restart_keeps_history_sessions_rooms_and_client_ids() {
    let mut s = TestServer::spawn().await;
    let cleo = s.user("cleo").await;
    let dev = s.user("dev").await;
    let gone = s.login("dev", "password-dev").await;
    let room = s.room(&cleo, "persistent").await;
    let other = s.room(&dev, "dev-only").await;
    s.join(&dev, &room).await;
    for i in 0..5 {
        s.say(&cleo, &room, &format!("rest {i}"), Some(&format!("r{i}")))
            .await;
    }
    s.post_many(&dev, &room, 5).await;
    s.say(&dev, &other, "mine", None).await;
    s.post("/api/v1/logout", Some(&gone.token), json!({})).await;
    let (_, rooms_before) = s.get("/api/v1/rooms", Some(&cleo.token)).await;
    let history_before = s.history(&cleo, &room).await;

    let (status, took) = s.terminate();
    assert!(
        status.success() && took < Duration::from_secs(10),
        "{status:?} {took:?}"
    );
    s.restart();

    // Sessions: the live ones still work, by token and by cookie; the
    // logged-out one stays dead.
    let (status, me) = s.get("/api/v1/me", Some(&cleo.token)).await;
    assert_eq!((status, &me["user"]["id"]), (200, &json!(cleo.id)));
    let by_cookie = s
        .call("GET", "/api/v1/me")
        .auth(crate::harness::Auth::Cookie(&dev.token))
        .send()
        .await;
    assert_eq!(by_cookie.status, 200);
    let (status, _) = s.get("/api/v1/me", Some(&gone.token)).await;
    assert_eq!(status, 401);

    // Rooms, memberships, heads and history are as they were.
    let (_, rooms_after) = s.get("/api/v1/rooms", Some(&cleo.token)).await;
    assert_eq!(rooms_after, rooms_before);
    assert_eq!(s.history(&cleo, &room).await, history_before);
    assert_contiguous(&history_before, 10);
    let (status, _) = s
        .get(
            &format!("/api/v1/rooms/{other}/messages"),
            Some(&cleo.token),
        )
        .await;
    assert_eq!(
        status, 403,
        "membership survived: cleo is still not in dev's room"
    );

    // Numbering goes on, and an old client_id still finds its message.
    let (status, again) = s
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&cleo.token),
            json!({"body": "rest 0", "client_id": "r0"}),
        )
        .await;
    assert_eq!((status, &again["message"]), (200, &history_before[0]));
    assert_eq!(s.say(&dev, &room, "after", None).await["seq"], 11);

    // A socket resumes across the restart without gap or duplicate.
    let mut ws = s.ws(&dev).await;
    ws.hello(Some(json!({ room.clone(): 8 }))).await;
    for seq in 9..=11 {
        let f = ws.expect("message").await;
        assert_eq!(f["message"]["seq"], seq);
    }
}

/// A `client_id` is remembered for the room's newest `storage.dedup_window`
/// events, and the window is rebuilt from the log after a restart (here
/// after kill -9): a retry within it, over HTTP or the socket, gets the
/// original; an older one is a new message.
#[tokio::test]
async fn a_retry_finds_its_message_within_the_dedup_window_across_a_crash() {
    let mut s = TestServer::spawn_with(&[("HEARTH_DEDUP_WINDOW", "3")]).await;
    let ann = s.user("ann").await;
    let bo = s.user("bob").await;
    let room = s.room(&ann, "window").await;
    s.join(&bo, &room).await;
    for i in 1..=4 {
        s.say(&ann, &room, &format!("m{i}"), Some(&format!("c{i}")))
            .await;
    }
    async fn send(s: &TestServer, who: &User, room: &str, cid: &str, body: &str) -> (u16, Value) {
        let url = format!("/api/v1/rooms/{room}/messages");
        s.post(
            &url,
            Some(&who.token),
            json!({"body": body, "client_id": cid}),
        )
        .await
    }
    // The window holds seqs 2-4: c2 and c4 are retries (whatever the body
    // says now); the same client_id from bo is bo's own message.
    let (status, again) = send(&s, &ann, &room, "c2", "other").await;
    assert_eq!(
        (status, &again["message"]["seq"], &again["message"]["body"]),
        (200, &json!(2), &json!("m2"))
    );
    assert_eq!(s.say(&bo, &room, "mine", Some("c4")).await["seq"], 5);
    let (status, again) = send(&s, &ann, &room, "c4", "m4").await;
    assert_eq!((status, &again["message"]["seq"]), (200, &json!(4)));

    s.kill9();
    s.restart();
    // Rebuilt from the log: seqs 3-5. c3 is still found, over the socket
    // too; c2 has left the window and is a new message.
    let (status, again) = send(&s, &ann, &room, "c3", "m3").await;
    assert_eq!((status, &again["message"]["seq"]), (200, &json!(3)));
    let mut ws = s.ws(&ann).await;
    ws.hello(None).await;
    ws.send(&room, "c4", "m4").await;
    let ack = ws.expect("ack").await;
    assert_eq!((&ack["client_id"], &ack["seq"]), (&json!("c4"), &json!(4)));
    let (status, new) = send(&s, &ann, &room, "c2", "m2 again").await;
    assert_eq!((status, &new["message"]["seq"]), (201, &json!(6)));
    let live = ws.expect("message").await;
    assert_eq!(live["message"]["seq"], 6, "{live}");
    // And it is remembered as the newest use of c2.
    let (status, again) = send(&s, &ann, &room, "c2", "m2").await;
    assert_eq!((status, &again["message"]["seq"]), (200, &json!(6)));
    let history = s.history(&ann, &room).await;
    assert_contiguous(&history, 6);
    // One room's window, at its size.
    let m = s.scrape(&s.url("/metrics")).await;
    assert_eq!(m.get("hearth_dedup_window_events"), Some(&3.0), "{m:?}");
}

#[tokio::test]
async fn every_acked_message_survives_kill_9() {
    let mut s = TestServer::spawn().await;
    let names = ["eli", "fox", "gil"];
    let mut users = Vec::new();
    for n in names {
        users.push(s.user(n).await);
    }
    let rooms = [
        s.room(&users[0], "one").await,
        s.room(&users[0], "two").await,
    ];
    for u in &users[1..] {
        for r in &rooms {
            s.join(u, r).await;
        }
    }

    // Every user writes to both rooms at once, over WebSocket and REST.
    let mut writers = Vec::new();
    for (ui, user) in users.iter().enumerate() {
        let mut ws = s.ws(user).await;
        ws.hello(None).await;
        let targets = rooms.clone();
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..60 {
                ws.send(
                    &targets[i % 2],
                    &format!("ws-{ui}-{i}"),
                    &format!("ws {ui} {i}"),
                )
                .await;
            }
            while acked.len() < 60 {
                let f = ws.next().await.expect("acks keep coming");
                if f["type"] == "ack" {
                    acked.push(f);
                }
            }
            acked
        }));
        let http = s.http.clone();
        let base = s.url("/api/v1/rooms");
        let (token, targets) = (user.token.clone(), rooms.clone());
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..20 {
                let client_id = format!("rest-{ui}-{i}");
                let r = http
                    .post(format!("{base}/{}/messages", targets[i % 2]))
                    .bearer_auth(&token)
                    .json(&json!({"body": format!("rest {ui} {i}"), "client_id": client_id}))
                    .send()
                    .await
                    .expect("post");
                assert_eq!(r.status().as_u16(), 201);
                let m: Value = r.json().await.expect("json");
                let m = &m["message"];
                acked.push(json!({"client_id": client_id, "room": m["room"], "seq": m["seq"], "id": m["id"]}));
            }
            acked
        }));
    }
    // A session and a room made just before the crash are durable too.
    let late = s.login("eli", "password-eli").await;
    let late_room = s.room(&late, "made-at-the-last-moment").await;
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.expect("writer"));
    }
    s.kill9();
    s.restart();

    assert_eq!(acked.len(), 3 * 80);
    let mut stored: HashMap<String, Vec<Value>> = HashMap::new();
    for r in &rooms {
        let history = s.history(&late, r).await;
        assert_contiguous(&history, history.len() as u64);
        stored.insert(r.clone(), history);
    }
    for ack in &acked {
        let room = ack["room"].as_str().expect("room");
        let seq = ack["seq"].as_u64().expect("seq") as usize;
        let m = &stored[room][seq - 1];
        assert_eq!(
            (&m["id"], &m["client_id"]),
            (&ack["id"], &ack["client_id"]),
            "acked message {ack} is stored as acknowledged"
        );
    }
    let total: usize = stored.values().map(Vec::len).sum();
    assert_eq!(total, acked.len(), "nothing unacknowledged appeared either");
    let (status, _) = s
        .get(&format!("/api/v1/rooms/{late_room}"), Some(&late.token))
        .await;
    assert_eq!(status, 200);
}

/// The newest sled snapshot in the data directory: its name is the log
/// position it covers, in hex.
fn newest_snapshot(s: &TestServer) -> u64 {
    std::fs::read_dir(s.data_dir().join("db"))
        .expect("the database directory")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            u64::from_str_radix(name.strip_prefix("snap.")?, 16).ok()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_clean_stop_snapshots_the_database_so_the_next_start_replays_nothing() {
    let mut s = TestServer::spawn().await;
    let kai = s.user("kai").await;
    let room = s.room(&kai, "snapshots").await;
    s.post_many(&kai, &room, 200).await;
    // sled wrote its snapshot when the server opened the database; the
    // messages since are only in its log.
    let while_running = newest_snapshot(&s);
    let (status, _) = s.terminate();
    assert!(status.success(), "{status:?}");
    let after_stop = newest_snapshot(&s);
    assert!(
        after_stop > while_running,
        "no newer snapshot after a clean stop: {while_running:#x} then {after_stop:#x}"
    );
    s.restart();
    assert_contiguous(&s.history(&kai, &room).await, 200);
}
