//! The WebSocket protocol: the upgrade's checks, hello and resume, sends and
//! acks, fan-out to every member connection, error frames that leave the
//! connection usable, close codes, and the MessagePack subprotocol.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::harness::{RawWs, TestServer, Ws};

fn keys(value: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

/// The next `message` frame's room and seq, failing on anything else
/// except acks (which a sender's own connection also gets) and the
/// directory news every socket may get (rooms added or removed, members
/// joining or leaving), which are not room events.
async fn next_delivery(ws: &mut Ws) -> (String, u64) {
    loop {
        let f = ws.next().await.expect("a message frame");
        match f["type"].as_str() {
            Some("message") => {
                let m = &f["message"];
                return (
                    m["room"].as_str().expect("room").to_string(),
                    m["seq"].as_u64().expect("seq"),
                );
            }
            Some("ack" | "room_added" | "room_removed" | "member_joined" | "member_left") => {
                continue
            }
            _ => panic!("expected a message frame, got {f}"),
        }
    }
}

// ---- The upgrade ----------------------------------------------------------

#[tokio::test]
async fn upgrades_need_a_live_session_by_bearer_or_cookie() {
    let s = TestServer::spawn().await;
    let amy = s.user("amy").await;
    let old = s.user("old").await;
    s.post("/api/v1/logout", Some(&old.token), json!({})).await;
    let refused: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no credentials", vec![]),
        (
            "a made-up token",
            vec![("authorization", "Bearer forged".into())],
        ),
        (
            "a logged-out token",
            vec![("authorization", format!("Bearer {}", old.token))],
        ),
        (
            "a logged-out cookie",
            vec![("cookie", format!("hearth_session={}", old.token))],
        ),
    ];
    for (who, headers) in refused {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        match s.ws_raw_headers(&headers).await {
            Ok(_) => panic!("{who}: the upgrade was accepted"),
            Err((status, body)) => {
                assert_eq!(
                    (status, body["error"]["code"].as_str()),
                    (401, Some("unauthenticated")),
                    "{who}: {body}"
                );
            }
        }
    }
    let bearer = format!("Bearer {}", amy.token);
    let cookie = format!("hearth_session={}", amy.token);
    for headers in [
        [("authorization", bearer.as_str())],
        [("cookie", cookie.as_str())],
    ] {
        let mut ws = s.ws_raw_headers(&headers).await.expect("upgrade accepted");
        let ready = ws.hello(None).await;
        assert_eq!(ready["user"]["id"], json!(amy.id));
    }
}

#[tokio::test]
async fn cookie_upgrades_are_judged_by_origin_and_bearer_upgrades_are_not() {
    let s = TestServer::spawn_with(&[(
        "HEARTH_ALLOWED_ORIGINS",
        "https://a.example,https://b.example",
    )])
    .await;
    let boz = s.user("boz").await;
    let cookie = format!("hearth_session={}", boz.token);
    let bearer = format!("Bearer {}", boz.token);
    let own = s.origin();
    let (cookie, bearer) = (
        ("cookie", cookie.as_str()),
        ("authorization", bearer.as_str()),
    );
    let cases = [
        ("cookie, no Origin", cookie, None, true),
        ("cookie, own origin", cookie, Some(own.as_str()), true),
        ("cookie, allowed", cookie, Some("https://b.example"), true),
        (
            "cookie, foreign",
            cookie,
            Some("https://evil.example"),
            false,
        ),
        ("cookie, opaque", cookie, Some("null"), false),
        (
            "bearer, foreign",
            bearer,
            Some("https://evil.example"),
            true,
        ),
    ];
    for (case, credential, origin, accepted) in cases {
        let mut headers = vec![credential];
        if let Some(o) = origin {
            headers.push(("origin", o));
        }
        match s.ws_raw_headers(&headers).await {
            Ok(mut ws) => {
                assert!(accepted, "{case}: the upgrade was accepted");
                ws.hello(None).await;
            }
            Err((status, body)) => {
                assert!(!accepted, "{case}: refused with {status} {body}");
                assert_eq!(
                    (status, body["error"]["code"].as_str()),
                    (403, Some("bad_origin")),
                    "{case}: {body}"
                );
            }
        }
    }
}

// ---- Hello, resume, live delivery ----------------------------------------

#[tokio::test]
async fn ready_lists_every_joined_room_with_its_head() {
    let s = TestServer::spawn().await;
    let cyd = s.user("cyd").await;
    let dot = s.user("dot").await;
    let busy = s.room(&cyd, "busy").await;
    let quiet = s.room(&dot, "quiet").await;
    let not_mine = s.room(&dot, "not-mine").await;
    s.join(&cyd, &quiet).await;
    for i in 0..3 {
        s.say(&cyd, &busy, &format!("m{i}"), None).await;
    }
    s.say(&dot, &not_mine, "elsewhere", None).await;

    let mut ws = s.ws(&cyd).await;
    let ready = ws.hello(None).await;
    assert_eq!(keys(&ready), ["online", "rooms", "type", "user"]);
    assert_eq!(ready["user"]["id"], json!(cyd.id));
    assert_eq!(ready["user"]["username"], "cyd");
    let mut rooms = ready["rooms"].as_array().expect("rooms").clone();
    rooms.sort_by_key(|r| r["id"].as_str().map(str::to_string));
    let mut want = vec![
        // Her own messages moved her cursor: nothing is unread.
        json!({"id": busy, "last_seq": 3, "read_seq": 3, "unread_count": 0, "mention_count": 0, "notifications": "mentions"}),
        json!({"id": quiet, "last_seq": 0, "read_seq": 0, "unread_count": 0, "mention_count": 0, "notifications": "mentions"}),
    ];
    want.sort_by_key(|r| r["id"].as_str().map(str::to_string));
    assert_eq!(rooms, want);
    // A plain hello replays nothing: the next frame is the reply to a ping.
    ws.send_json(json!({"type": "ping"})).await;
    assert_eq!(ws.next().await, Some(json!({"type": "pong"})));
}

#[tokio::test]
async fn resume_replays_only_what_each_named_room_missed_then_goes_live() {
    let s = TestServer::spawn().await;
    let eve = s.user("eve").await;
    let fay = s.user("fay").await;
    let resumed = s.room(&eve, "resumed").await;
    let caught_up = s.room(&eve, "caught-up").await;
    let unnamed = s.room(&eve, "unnamed").await;
    let foreign = s.room(&fay, "foreign").await;
    for room in [&resumed, &caught_up, &unnamed, &foreign] {
        for i in 0..4 {
            s.say(
                if *room == foreign { &fay } else { &eve },
                room,
                &format!("m{i}"),
                None,
            )
            .await;
        }
    }
    let mut ws = s.ws(&eve).await;
    ws.hello(Some(json!({
        resumed.clone(): 1,
        caught_up.clone(): 4,
        foreign.clone(): 0,
        "not-a-room": 0,
        "00000000-0000-0000-0000-000000000000": 0,
    })))
    .await;
    // Only the named room's missed messages come back, in order...
    assert_eq!(next_delivery(&mut ws).await, (resumed.clone(), 2));
    assert_eq!(next_delivery(&mut ws).await, (resumed.clone(), 3));
    assert_eq!(next_delivery(&mut ws).await, (resumed.clone(), 4));
    // ...then live messages, from every joined room, named or not.
    s.say(&eve, &unnamed, "live", None).await;
    assert_eq!(next_delivery(&mut ws).await, (unnamed.clone(), 5));
    s.say(&eve, &caught_up, "live", None).await;
    assert_eq!(next_delivery(&mut ws).await, (caught_up.clone(), 5));

    // A resume point past the head replays nothing; live goes on.
    let mut ahead = s.ws(&eve).await;
    ahead.hello(Some(json!({ unnamed.clone(): 999 }))).await;
    s.say(&eve, &unnamed, "after the confused resume", None)
        .await;
    assert_eq!(next_delivery(&mut ahead).await, (unnamed.clone(), 6));

    // Resuming from 0 replays a room's whole history.
    let mut fresh = s.ws(&eve).await;
    fresh.hello(Some(json!({ unnamed.clone(): 0 }))).await;
    for seq in 1..=6 {
        assert_eq!(next_delivery(&mut fresh).await, (unnamed.clone(), seq));
    }
}

#[tokio::test]
async fn a_send_is_acked_then_delivered_to_every_member_connection() {
    let s = TestServer::spawn().await;
    let gus = s.user("gus").await;
    let gus_laptop = s.login("gus", "password-gus").await;
    let hal = s.user("hal").await;
    let outsider = s.user("outsider").await;
    let room = s.room(&gus, "team").await;
    let outsiders_room = s.room(&outsider, "outside").await;
    s.join(&hal, &room).await;
    let mut phone = s.ws(&gus).await;
    let mut laptop = s.ws(&gus_laptop).await;
    let mut same_session = s.ws(&gus).await;
    let mut hal_ws = s.ws(&hal).await;
    let mut out_ws = s.ws(&outsider).await;
    for ws in [
        &mut phone,
        &mut laptop,
        &mut same_session,
        &mut hal_ws,
        &mut out_ws,
    ] {
        ws.hello(None).await;
    }

    phone.send(&room, "c-1", "hello team").await;
    // The sender gets both the ack and the message; only the ack is sure
    // to come first, as it is sent once the message is durable.
    let ack = phone.next().await.expect("an ack");
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(keys(&ack), ["client_id", "id", "room", "seq", "type"]);
    assert_eq!(
        (&ack["client_id"], &ack["room"], &ack["seq"]),
        (&json!("c-1"), &json!(room), &json!(1))
    );
    let delivered = hal_ws.expect("message").await;
    let stored = s.history(&hal, &room).await;
    let want = json!({"type": "message", "message": stored[0]});
    assert_eq!(delivered, want, "the frame carries the stored message");
    assert_eq!(want["message"]["id"], ack["id"], "the ack names it");
    for ws in [&mut phone, &mut laptop, &mut same_session] {
        assert_eq!(ws.expect("message").await, want);
    }
    // The outsider got nothing: their next frame is from their own room.
    s.say(&outsider, &outsiders_room, "mine", None).await;
    assert_eq!(next_delivery(&mut out_ws).await, (outsiders_room, 1));
}

#[tokio::test]
async fn a_repeated_client_id_is_acked_again_and_delivered_once() {
    let s = TestServer::spawn().await;
    let ian = s.user("ian").await;
    let jon = s.user("jon").await;
    let room = s.room(&ian, "dedup").await;
    s.join(&jon, &room).await;
    let mut sender = s.ws(&ian).await;
    let mut reader = s.ws(&jon).await;
    sender.hello(None).await;
    reader.hello(None).await;

    sender.send(&room, "retry-me", "first try").await;
    let first = sender.expect("ack").await;
    assert_eq!(next_delivery(&mut reader).await, (room.clone(), 1));
    sender.send(&room, "retry-me", "second try").await;
    assert_eq!(sender.expect("ack").await, first);
    // Over REST the same key finds the same message.
    let (status, rest) = s
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&ian.token),
            json!({"body": "third try", "client_id": "retry-me"}),
        )
        .await;
    assert_eq!((status, &rest["message"]["id"]), (200, &first["id"]));
    // The reader saw it once: its next delivery is the next message.
    sender.send(&room, "new", "next").await;
    assert_eq!(next_delivery(&mut reader).await, (room.clone(), 2));
    assert_eq!(s.history(&jon, &room).await.len(), 2);
}

#[tokio::test]
async fn joined_later_rooms_arrive_on_open_sockets_and_leaving_stops_them() {
    let s = TestServer::spawn().await;
    let kai = s.user("kai").await;
    let kai_other_device = s.login("kai", "password-kai").await;
    let lou = s.user("lou").await;
    let home = s.room(&kai, "home").await;
    let later = s.room(&lou, "later").await;
    let mut ws = s.ws(&kai).await;
    ws.hello(None).await;

    // A join from another device is announced, then delivered.
    s.join(&kai_other_device, &later).await;
    let joined = ws.next().await.expect("a joined frame");
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["room"]["id"], json!(later));
    assert_eq!(
        (&joined["room"]["joined"], &joined["room"]["member_count"]),
        (&json!(true), &json!(2))
    );
    s.say(&lou, &later, "welcome", None).await;
    assert_eq!(next_delivery(&mut ws).await, (later.clone(), 1));
    // A room created on another device, too.
    let created = s.room(&kai_other_device, "created-later").await;
    let joined = ws.next().await.expect("a joined frame");
    assert_eq!(
        (&joined["type"], &joined["room"]["id"]),
        (&json!("joined"), &json!(created))
    );
    ws.assert_usable(&created, "into-new-room").await;

    // Leaving is announced and ends delivery.
    let (status, _) = s
        .post(
            &format!("/api/v1/rooms/{later}/leave"),
            Some(&kai_other_device.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 204);
    loop {
        let f = ws.next().await.expect("a left frame");
        if f["type"] == "left" {
            assert_eq!(f, json!({"type": "left", "room": later, "reason": "left"}));
            break;
        }
        assert_eq!(f["type"], "message", "{f}");
    }
    s.say(&lou, &later, "are you there?", None).await;
    s.say(&kai, &home, "back home", None).await;
    assert_eq!(
        next_delivery(&mut ws).await,
        (home.clone(), 1),
        "the left room's message was not delivered"
    );
    ws.send(&later, "after-leaving", "let me in").await;
    let refused = ws.expect("error").await;
    assert_eq!(
        (&refused["code"], &refused["client_id"]),
        (&json!("not_a_member"), &json!("after-leaving"))
    );

    // Coming back is announced again, and delivery resumes.
    s.join(&kai, &later).await;
    let joined = ws.next().await.expect("a joined frame");
    assert_eq!(
        (&joined["type"], &joined["room"]["id"]),
        (&json!("joined"), &json!(later))
    );
    s.say(&lou, &later, "welcome back", None).await;
    assert_eq!(next_delivery(&mut ws).await, (later.clone(), 3));
}

/// A room joined while its messages keep coming: the socket hears `joined`
/// before any of them, then every message after the frame's `last_seq`, in
/// seq order, each once. Two joins (another device's, then a rejoin after a
/// leave) land in the middle of the traffic.
#[tokio::test]
async fn a_busy_room_joined_is_announced_before_its_messages() {
    const MESSAGES: u64 = 1000;
    let s = TestServer::spawn_with(&[
        ("HEARTH_SEND_PER_SEC", "5000"),
        ("HEARTH_SEND_BURST", "5000"),
        ("HEARTH_MAX_FRAMES_PER_SEC", "5000"),
    ])
    .await;
    let kai = s.user("kai").await;
    let kai_other_device = s.login("kai", "password-kai").await;
    let lou = s.user("lou").await;
    let busy = s.room(&lou, "busy").await;
    let mut ws = s.ws(&kai).await;
    ws.hello(None).await;

    // lou sends ten messages every 5 ms, then reads the acks.
    let mut poster = s.ws(&lou).await;
    poster.hello(None).await;
    let room = busy.clone();
    let posting = tokio::spawn(async move {
        for i in 0..MESSAGES {
            poster.send(&room, &format!("c{i}"), "busy").await;
            if i % 10 == 9 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let mut acks = 0;
        while acks < MESSAGES {
            let f = poster.next().await.expect("an ack");
            assert_ne!(f["type"], "error", "{f}");
            acks += u64::from(f["type"] == "ack");
        }
    });

    // Joined from another device once some messages are in, then left and
    // joined again on this one while more come.
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.join(&kai_other_device, &busy).await;
    let mut joins = 1;
    let mut seen = Vec::new();
    let mut last_seq = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.last() != Some(&MESSAGES) {
        assert!(Instant::now() < deadline, "the last message never came");
        let f = ws.next().await.expect("a frame");
        match f["type"].as_str() {
            Some("joined") => {
                assert_eq!(f["room"]["id"], json!(busy), "{f}");
                last_seq = Some(f["room"]["last_seq"].as_u64().expect("last_seq"));
                seen.clear();
            }
            Some("message") => {
                let m = &f["message"];
                assert_eq!(m["room"], json!(busy), "{f}");
                let seq = m["seq"].as_u64().expect("seq");
                let head = last_seq.expect("a message of the room before its joined frame");
                if let Some(prev) = seen.last() {
                    assert_eq!(seq, prev + 1, "out of order or a gap after {prev}");
                } else {
                    assert!(
                        seq <= head + 1,
                        "a gap after joined's last_seq {head}: {seq}"
                    );
                }
                seen.push(seq);
            }
            Some("left") => last_seq = None,
            _ => {}
        }
        if joins == 1 && seen.len() >= 50 {
            let (status, _) = s
                .post(
                    &format!("/api/v1/rooms/{busy}/leave"),
                    Some(&kai.token),
                    json!({}),
                )
                .await;
            assert_eq!(status, 204);
            s.join(&kai, &busy).await;
            joins = 2;
        }
    }
    assert_eq!(joins, 2, "the rejoin happened while messages came");
    posting.await.expect("all sent and acknowledged");
}

#[tokio::test]
async fn logout_closes_that_sessions_sockets_with_4001_and_no_others() {
    let s = TestServer::spawn().await;
    let moe = s.user("moe").await;
    let mo_tablet = s.login("moe", "password-moe").await;
    let room = s.room(&moe, "r").await;
    let mut first = s.ws(&moe).await;
    let mut second = s.ws(&moe).await;
    let mut not_greeted = s.ws(&moe).await;
    let mut tablet = s.ws(&mo_tablet).await;
    for ws in [&mut first, &mut second, &mut tablet] {
        ws.hello(None).await;
    }
    let (status, _) = s.post("/api/v1/logout", Some(&moe.token), json!({})).await;
    assert_eq!(status, 204);
    assert_eq!(first.close_code().await, Some(4001));
    assert_eq!(second.close_code().await, Some(4001));
    // A socket of that session that had not said hello yet cannot start.
    not_greeted.send_json(json!({"type": "hello"})).await;
    assert_eq!(not_greeted.close_code().await, Some(4001));
    tablet.assert_usable(&room, "still-in").await;
}

#[tokio::test]
async fn deleting_the_account_closes_all_its_sockets_with_4001() {
    let s = TestServer::spawn().await;
    let ned = s.user("ned").await;
    let ned_again = s.login("ned", "password-ned").await;
    let mut a = s.ws(&ned).await;
    let mut b = s.ws(&ned_again).await;
    a.hello(None).await;
    b.hello(None).await;
    let (status, _) = s
        .delete(
            "/api/v1/me",
            Some(&ned.token),
            json!({"password": "password-ned"}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(a.close_code().await, Some(4001));
    assert_eq!(b.close_code().await, Some(4001));
}

// ---- Errors that keep the connection -------------------------------------

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_connection_stays_usable() {
    let s = TestServer::spawn().await;
    let ola = s.user("ola").await;
    let pia = s.user("pia").await;
    let room = s.room(&ola, "mine").await;
    let theirs = s.room(&pia, "theirs").await;
    let mut ws = s.ws(&ola).await;

    // Before hello, a send is refused with a hint.
    ws.send(&room, "early", "too soon").await;
    let f = ws.next().await.expect("an error frame");
    assert_eq!(keys(&f), ["client_id", "code", "message", "type"]);
    assert_eq!(
        (&f["type"], &f["code"], &f["client_id"]),
        (&json!("error"), &json!("hello_first"), &json!("early"))
    );
    ws.hello(None).await;
    ws.assert_usable(&room, "ok-0").await;

    let cases: Vec<(String, &str, Option<&str>)> = vec![
        ("not json".into(), "invalid_frame", None),
        ("[1, 2]".into(), "invalid_frame", None),
        (json!({"type": "shout", "client_id": "s1"}).to_string(), "unknown_type", Some("s1")),
        (json!({"type": 5}).to_string(), "invalid_frame", None),
        (json!({"type": "send", "room": room, "client_id": "m1"}).to_string(), "invalid_frame", Some("m1")),
        (json!({"type": "send", "room": room, "body": "no id"}).to_string(), "invalid_frame", None),
        (json!({"type": "send", "client_id": "m2", "body": "no room"}).to_string(), "invalid_frame", Some("m2")),
        (json!({"type": "send", "room": room, "client_id": "m3", "body": 5}).to_string(), "invalid_frame", Some("m3")),
        (json!({"type": "send", "room": theirs, "client_id": "n1", "body": "hi"}).to_string(), "not_a_member", Some("n1")),
        (json!({"type": "send", "room": "garbage", "client_id": "u1", "body": "hi"}).to_string(), "room_not_found", Some("u1")),
        (json!({"type": "send", "room": "6f1c2f0e-8a3b-4c1d-9e2f-0a1b2c3d4e5f", "client_id": "u2", "body": "hi"}).to_string(), "room_not_found", Some("u2")),
        (json!({"type": "send", "room": room, "client_id": "b1", "body": ""}).to_string(), "invalid_body", Some("b1")),
        (json!({"type": "send", "room": room, "client_id": "b2", "body": "x".repeat(4001)}).to_string(), "invalid_body", Some("b2")),
        (json!({"type": "send", "room": room, "client_id": "c".repeat(65), "body": "hi"}).to_string(), "invalid_client_id", None),
        (json!({"type": "hello"}).to_string(), "already_greeted", None),
    ];
    for (i, (frame, code, client_id)) in cases.into_iter().enumerate() {
        ws.stream
            .send(WsMessage::Text(frame.clone()))
            .await
            .expect("send");
        let f = ws
            .next()
            .await
            .unwrap_or_else(|| panic!("{frame}: no answer"));
        assert_eq!(
            (&f["type"], f["code"].as_str()),
            (&json!("error"), Some(code)),
            "{frame} -> {f}"
        );
        assert!(f["message"].as_str().is_some_and(|m| m.len() > 5), "{f}");
        if let Some(c) = client_id {
            assert_eq!(f["client_id"], c, "the error names the send: {f}");
        }
        ws.assert_usable(&room, &format!("ok-{}", i + 1)).await;
    }
    let stored = s.history(&ola, &room).await;
    assert!(
        stored.iter().all(|m| m["body"] == "still here"),
        "only the good sends were stored"
    );
}

/// The contract names `invalid_frame` for a frame missing a field; `type`
/// is a field like any other.
#[tokio::test]
async fn a_frame_without_a_type_is_an_invalid_frame() {
    let s = TestServer::spawn().await;
    let rae = s.user("rae").await;
    let room = s.room(&rae, "r").await;
    let mut ws = s.ws(&rae).await;
    ws.hello(None).await;
    ws.send_json(json!({"room": room, "client_id": "t1", "body": "hi"}))
        .await;
    let f = ws.expect("error").await;
    assert_eq!(
        (&f["code"], &f["client_id"]),
        (&json!("invalid_frame"), &json!("t1"))
    );
    ws.assert_usable(&room, "after").await;
}

#[tokio::test]
async fn a_malformed_hello_is_refused_and_a_good_one_still_works() {
    let s = TestServer::spawn().await;
    let gia = s.user("gia").await;
    let room = s.room(&gia, "second-chance").await;
    let mut ws = s.ws(&gia).await;
    for bad in [
        json!({"type": "hello", "resume": {room.clone(): "five"}}),
        json!({"type": "hello", "resume": {room.clone(): -1}}),
        json!({"type": "hello", "resume": [1, 2]}),
    ] {
        ws.send_json(bad.clone()).await;
        let f = ws.next().await.expect("an error frame");
        assert_eq!(
            (&f["type"], &f["code"]),
            (&json!("error"), &json!("invalid_frame")),
            "{bad} -> {f}"
        );
    }
    ws.send(&room, "early", "not yet").await;
    assert_eq!(ws.next().await.expect("an error")["code"], "hello_first");
    ws.hello(None).await;
    ws.assert_usable(&room, "now").await;
}

#[tokio::test]
async fn ping_is_answered_with_pong_before_and_after_hello() {
    let s = TestServer::spawn().await;
    let sid = s.user("sid").await;
    let mut ws = s.ws(&sid).await;
    ws.send_json(json!({"type": "ping"})).await;
    assert_eq!(ws.next().await, Some(json!({"type": "pong"})));
    ws.hello(None).await;
    ws.send_json(json!({"type": "ping"})).await;
    assert_eq!(ws.next().await, Some(json!({"type": "pong"})));
}

// ---- Close codes ----------------------------------------------------------

#[tokio::test]
async fn a_message_over_the_size_limit_closes_with_1009() {
    let s = TestServer::spawn().await;
    let tam = s.user("tam").await;
    let room = s.room(&tam, "big").await;
    let mut ws = s.ws(&tam).await;
    ws.hello(None).await;
    // A frame of exactly 64 KiB is read (its body is then too long)...
    let frame = |size: usize| {
        let head =
            json!({"type": "send", "room": room, "client_id": "big", "body": ""}).to_string();
        let pad = "x".repeat(size - head.len());
        head.replace("\"body\":\"\"", &format!("\"body\":\"{pad}\""))
    };
    let at_limit = frame(64 * 1024);
    assert_eq!(at_limit.len(), 65536);
    ws.stream
        .send(WsMessage::Text(at_limit))
        .await
        .expect("send");
    assert_eq!(ws.expect("error").await["code"], "invalid_body");
    ws.assert_usable(&room, "fine").await;
    // ...one byte more closes the connection.
    ws.stream
        .send(WsMessage::Text(frame(64 * 1024 + 1)))
        .await
        .expect("send");
    assert_eq!(ws.close_code().await, Some(1009));
}

#[tokio::test]
async fn the_size_limit_is_configurable_and_counts_every_fragment() {
    let s = TestServer::spawn_with(&[("HEARTH_MAX_MESSAGE_BYTES", "1000")]).await;
    let una = s.user("una").await;
    let room = s.room(&una, "small").await;

    let mut whole = RawWs::connect(&s, &una.token).await;
    whole.send_text(json!({"type": "hello"})).await;
    whole.send_frame(true, 0x1, &[b' '; 1001]).await;
    assert_eq!(whole.close_code(Duration::from_secs(10)).await, Some(1009));

    // Three fragments of 400 bytes: each is small, the message is not.
    let mut pieces = RawWs::connect(&s, &una.token).await;
    pieces.send_text(json!({"type": "hello"})).await;
    pieces.send_frame(false, 0x1, &[b' '; 400]).await;
    pieces.send_frame(false, 0x0, &[b' '; 400]).await;
    pieces.send_frame(true, 0x0, &[b' '; 400]).await;
    assert_eq!(pieces.close_code(Duration::from_secs(10)).await, Some(1009));

    // Fragments within the limit are joined into one message.
    let mut ok = RawWs::connect(&s, &una.token).await;
    ok.send_text(json!({"type": "hello"})).await;
    assert_eq!(
        ok.next_json(Duration::from_secs(10)).await.expect("ready")["type"],
        "ready"
    );
    let send =
        json!({"type": "send", "room": room, "client_id": "f", "body": "joined up"}).to_string();
    let (a, b) = send.as_bytes().split_at(20);
    ok.send_frame(false, 0x1, a).await;
    ok.send_frame(true, 0x0, b).await;
    let ack = ok.next_json(Duration::from_secs(10)).await.expect("ack");
    assert_eq!(
        (&ack["type"], &ack["client_id"]),
        (&json!("ack"), &json!("f"))
    );
}

#[tokio::test]
async fn invalid_utf8_in_a_text_message_closes_with_1007() {
    let s = TestServer::spawn().await;
    let vic = s.user("vic").await;
    let room = s.room(&vic, "utf8").await;

    let mut bad = RawWs::connect(&s, &vic.token).await;
    bad.send_text(json!({"type": "hello"})).await;
    bad.send_frame(true, 0x1, b"{\"type\":\"ping\"\xff}").await;
    assert_eq!(bad.close_code(Duration::from_secs(10)).await, Some(1007));

    // A character split across two fragments is valid UTF-8 once joined.
    let mut split = RawWs::connect(&s, &vic.token).await;
    split.send_text(json!({"type": "hello"})).await;
    let send = json!({"type": "send", "room": room, "client_id": "é", "body": "café"}).to_string();
    let cut = send.find('é').expect("an é") + 1; // between its two bytes
    split.send_frame(false, 0x1, &send.as_bytes()[..cut]).await;
    split.send_frame(true, 0x0, &send.as_bytes()[cut..]).await;
    loop {
        let f = split
            .next_json(Duration::from_secs(10))
            .await
            .expect("the split character was accepted");
        if f["type"] == "ack" {
            break;
        }
    }
}

#[tokio::test]
async fn protocol_violations_close_with_1002() {
    let s = TestServer::spawn().await;
    let wyn = s.user("wyn").await;
    let violations: [(&str, bool, u8, Vec<u8>); 7] = [
        ("a ping over 125 bytes", true, 0x9, vec![b'p'; 126]),
        ("a fragmented ping", false, 0x9, b"half".to_vec()),
        ("a close frame of one byte", true, 0x8, vec![3]),
        ("a reserved bit set", true, 0x40 | 0x1, b"{}".to_vec()),
        ("an unknown opcode", true, 0x3, vec![]),
        (
            "a continuation with nothing to continue",
            true,
            0x0,
            b"{}".to_vec(),
        ),
        (
            "a close code that may not be sent",
            true,
            0x8,
            999u16.to_be_bytes().to_vec(),
        ),
    ];
    for (what, fin, opcode, payload) in violations {
        let mut ws = RawWs::connect(&s, &wyn.token).await;
        ws.send_text(json!({"type": "hello"})).await;
        ws.send_frame(fin, opcode, &payload).await;
        assert_eq!(
            ws.close_code(Duration::from_secs(10)).await,
            Some(1002),
            "{what}"
        );
    }
}

#[tokio::test]
async fn protocol_pings_get_pongs_with_the_same_payload() {
    let s = TestServer::spawn().await;
    let zia = s.user("zia").await;
    let mut ws = RawWs::connect(&s, &zia.token).await;
    ws.send_text(json!({"type": "hello"})).await;
    ws.send_frame(true, 0x9, b"are you there").await;
    loop {
        let f = ws
            .next_frame(Duration::from_secs(10))
            .await
            .expect("a pong");
        if f.opcode == 0xA {
            assert_eq!(f.payload, b"are you there");
            break;
        }
    }
}

#[tokio::test]
async fn a_clients_close_is_echoed() {
    let s = TestServer::spawn().await;
    let xan = s.user("xan").await;
    let mut ws = s.ws(&xan).await;
    ws.hello(None).await;
    ws.stream
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .await
        .expect("close");
    assert_eq!(ws.close_code().await, Some(1000));
}

#[tokio::test]
async fn no_hello_in_time_closes_with_1008() {
    let s = TestServer::spawn_with(&[("HEARTH_HELLO_TIMEOUT_SECS", "1")]).await;
    let yul = s.user("yul").await;
    let mut ws = s.ws(&yul).await;
    let started = Instant::now();
    // A ping is not a hello.
    ws.send_json(json!({"type": "ping"})).await;
    assert_eq!(ws.close_code().await, Some(1008));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
}

#[tokio::test]
async fn the_server_pings_and_drops_peers_that_go_silent() {
    let s = TestServer::spawn_with(&[
        ("HEARTH_PING_INTERVAL_SECS", "1"),
        ("HEARTH_IDLE_TIMEOUT_SECS", "2"),
    ])
    .await;
    let zed = s.user("zed").await;
    let room = s.room(&zed, "heartbeat").await;

    // A peer that reads but never answers pings is dropped.
    let mut silent = RawWs::connect(&s, &zed.token).await;
    silent.send_text(json!({"type": "hello"})).await;
    let started = Instant::now();
    let mut pings = 0;
    let give_up = Instant::now() + Duration::from_secs(8);
    let ended = loop {
        let left = give_up.saturating_duration_since(Instant::now());
        match silent.next_frame(left).await {
            None => break None,
            Some(f) if f.opcode == 0x9 => pings += 1,
            Some(f) if f.opcode == 0x8 => break f.close_code(),
            Some(_) => {}
        }
    };
    let waited = started.elapsed();
    assert!(pings >= 1, "the server pinged before giving up");
    assert_eq!(ended, Some(1001), "an idle peer is told it is going away");
    assert!(
        waited >= Duration::from_millis(1800) && waited < Duration::from_secs(6),
        "dropped after {waited:?}"
    );

    // A peer that answers pings (tungstenite does) outlives the timeout.
    let mut live = s.ws(&zed).await;
    live.hello(None).await;
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let left = until.saturating_duration_since(Instant::now());
        if let Some(f) = live.next_within(left).await {
            panic!("unexpected frame {f}");
        }
    }
    live.assert_usable(&room, "alive").await;
}

// ---- Rate limits ----------------------------------------------------------

#[tokio::test]
async fn rest_and_websocket_sends_share_one_budget() {
    let s =
        TestServer::spawn_with(&[("HEARTH_SEND_BURST", "5"), ("HEARTH_SEND_PER_SEC", "1")]).await;
    let ada = s.user("ada").await;
    let room = s.room(&ada, "budget").await;
    for i in 0..3 {
        s.say(&ada, &room, &format!("rest {i}"), None).await;
    }
    let mut ws = s.ws(&ada).await;
    ws.hello(None).await;
    ws.assert_usable(&room, "ws-1").await;
    ws.assert_usable(&room, "ws-2").await;
    ws.send(&room, "ws-3", "one too many").await;
    let f = ws.expect("error").await;
    assert_eq!(
        (&f["code"], &f["client_id"]),
        (&json!("rate_limited"), &json!("ws-3"))
    );
    let (status, body) = s
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&ada.token),
            json!({"body": "rest"}),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (429, &json!("rate_limited"))
    );
    assert_eq!(s.history(&ada, &room).await.len(), 5);
}

#[tokio::test]
async fn a_socket_that_keeps_sending_into_the_limit_is_closed_with_1008() {
    let s =
        TestServer::spawn_with(&[("HEARTH_SEND_BURST", "1"), ("HEARTH_SEND_PER_SEC", "1")]).await;
    let bob = s.user("bob").await;
    let room = s.room(&bob, "spam").await;
    let mut ws = s.ws(&bob).await;
    ws.hello(None).await;
    // One accepted, then 50 refused in a row: every frame is read, so the
    // close is not lost to a reset.
    for i in 0..51 {
        ws.send(&room, &format!("s{i}"), "spam").await;
    }
    let mut refused = 0;
    let code = loop {
        match tokio::time::timeout(
            Duration::from_secs(10),
            futures_util::StreamExt::next(&mut ws.stream),
        )
        .await
        .expect("the server answers")
        {
            Some(Ok(WsMessage::Text(t))) => {
                let f: Value = serde_json::from_str(&t).expect("json");
                if f["type"] == "error" {
                    assert_eq!(f["code"], "rate_limited", "{f}");
                    refused += 1;
                }
            }
            Some(Ok(WsMessage::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            other => panic!("the connection ended without a close frame: {other:?}"),
        }
    };
    assert_eq!(code, Some(1008));
    assert!(refused >= 40, "refusals came first: {refused}");
}

// ---- MessagePack ----------------------------------------------------------

#[tokio::test]
async fn msgpack_carries_the_same_objects_in_binary_frames() {
    let s = TestServer::spawn().await;
    let cat = s.user("cat").await;
    let dan = s.user("dan").await;
    let room = s.room(&cat, "binary").await;
    s.join(&dan, &room).await;
    s.say(&dan, &room, "before", None).await;

    let (mut mp, protocol) = s.ws_msgpack(&cat).await;
    assert_eq!(protocol.as_deref(), Some("hearth.msgpack"));
    let mut json_peer = s.ws(&dan).await;
    json_peer.hello(None).await;

    mp.send_msgpack(json!({"type": "hello", "resume": { room.clone(): 0 }}))
        .await;
    let ready = mp.next_msgpack().await.expect("ready");
    assert_eq!(ready["type"], "ready");
    assert_eq!(ready["user"]["id"], json!(cat.id), "ids are strings");
    assert_eq!(
        ready["rooms"],
        json!([{"id": room, "last_seq": 1, "read_seq": 0, "unread_count": 1, "mention_count": 0, "notifications": "mentions"}])
    );
    let replayed = mp.expect_msgpack("message").await;
    assert_eq!(replayed["message"], s.history(&cat, &room).await[0]);

    mp.send_msgpack(json!({"type": "send", "room": room, "client_id": "mp-1", "body": "héllo 🔥"}))
        .await;
    let ack = mp.expect_msgpack("ack").await;
    assert_eq!(
        (&ack["client_id"], &ack["seq"]),
        (&json!("mp-1"), &json!(2))
    );
    assert!(ack["id"].is_string());
    let in_msgpack = mp.expect_msgpack("message").await;
    let in_json = json_peer.expect("message").await;
    assert_eq!(in_msgpack, in_json, "one object, two encodings");
    assert_eq!(in_msgpack["message"]["body"], "héllo 🔥");

    mp.send_msgpack(json!({"type": "ping"})).await;
    assert_eq!(mp.next_msgpack().await, Some(json!({"type": "pong"})));
    mp.send_msgpack(json!({"type": "shout", "client_id": "x"}))
        .await;
    let error = mp.next_msgpack().await.expect("an error frame");
    assert_eq!(
        (&error["type"], &error["code"], &error["client_id"]),
        (&json!("error"), &json!("unknown_type"), &json!("x"))
    );
    mp.stream
        .send(WsMessage::Binary(vec![0xc1]))
        .await
        .expect("send");
    assert_eq!(
        mp.next_msgpack().await.expect("an error frame")["code"],
        "invalid_frame"
    );
    mp.send_msgpack(
        json!({"type": "send", "room": room, "client_id": "mp-2", "body": "still here"}),
    )
    .await;
    assert_eq!(mp.expect_msgpack("ack").await["seq"], 3);
}

/// The writer's coalescing window holds room events back to batch them,
/// never a reply: with a one-second window, five sends made one after the
/// other, each waiting for its ack, take far less than the five seconds a
/// window per ack would cost, while the room's events still all arrive.
#[tokio::test]
async fn acks_are_not_held_by_the_coalescing_window() {
    let s = TestServer::spawn_with(&[("HEARTH_COALESCE_MS", "1000")]).await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    let mut ws = s.ws(&alice).await;
    ws.hello(None).await;
    let started = Instant::now();
    let mut events = 0;
    for i in 0..5 {
        let cid = format!("quick-{i}");
        ws.send(&room, &cid, "one at a time").await;
        loop {
            let f = ws.next().await.expect("an answer");
            match f["type"].as_str() {
                Some("ack") => {
                    assert_eq!(f["client_id"], cid.as_str(), "{f}");
                    break;
                }
                Some("message") => events += 1,
                _ => {}
            }
        }
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "five acks one after the other took {took:?} with a 1 s window"
    );
    // The events of the same sends are delivered too, in order.
    while events < 5 {
        let f = ws.expect("message").await;
        assert_eq!(f["message"]["seq"], events + 1, "{f}");
        events += 1;
    }
}
