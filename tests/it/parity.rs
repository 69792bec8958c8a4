//! The same operation gives the same result whichever transport reaches
//! it: a send over REST and over the WebSocket is checked by the same rules
//! in the same order (the same error codes), stores the same message,
//! dedups across transports, and reaches other members' sockets as the
//! same frame. Room and membership changes made over REST reach every
//! open socket.

use serde_json::{json, Value};

use crate::harness::{TestServer, Ws};

/// What a send over the WebSocket answered: its error code, if refused.
async fn ws_send(ws: &mut Ws, room: &str, client_id: &str, body: &str) -> Result<Value, String> {
    ws.send(room, client_id, body).await;
    loop {
        let f = ws.next().await.expect("an answer to the send");
        match f["type"].as_str() {
            Some("ack") if f["client_id"] == client_id => return Ok(f),
            Some("error") if f["client_id"] == client_id => {
                return Err(f["code"].as_str().expect("code").to_string())
            }
            _ => continue,
        }
    }
}

/// What a send over REST answered: the message, or its error code.
async fn http_send(
    s: &TestServer,
    token: &str,
    room: &str,
    client_id: &str,
    body: &str,
) -> Result<Value, String> {
    let (status, reply) = s
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(token),
            json!({"body": body, "client_id": client_id}),
        )
        .await;
    if status < 300 {
        Ok(reply["message"].clone())
    } else {
        Err(reply["error"]["code"].as_str().expect("code").to_string())
    }
}

#[tokio::test]
async fn a_send_is_refused_with_the_same_code_over_rest_and_websocket() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = s.room(&alice, "general").await;
    let other = s.room(&bob, "elsewhere").await;
    let mut ws = s.ws(&alice).await;
    ws.hello(None).await;

    let long = "x".repeat(4001);
    let cid_too_long = "c".repeat(65);
    let cases: Vec<(&str, &str, &str, &str)> = vec![
        ("empty body", room.as_str(), "p1", ""),
        ("blank body", room.as_str(), "p2", "   \n "),
        ("body too long", room.as_str(), "p3", long.as_str()),
        (
            "client_id too long",
            room.as_str(),
            cid_too_long.as_str(),
            "hi",
        ),
        ("client_id empty", room.as_str(), "", "hi"),
        (
            "unknown room",
            "6f1c2f0e-8a3b-4c1d-9e2f-0a1b2c3d4e5f",
            "p4",
            "hi",
        ),
        ("garbage room", "not-a-room", "p5", "hi"),
        ("not a member", other.as_str(), "p6", "hi"),
        ("not a member and empty", other.as_str(), "p7", ""),
    ];
    for (what, room_id, cid, body) in cases {
        let over_ws = ws_send(&mut ws, room_id, cid, body).await;
        let over_http = http_send(&s, &alice.token, room_id, cid, body).await;
        assert!(over_ws.is_err(), "{what}: the socket accepted it");
        assert_eq!(
            over_ws.err(),
            over_http.err(),
            "{what}: the two transports disagree"
        );
    }
}

#[tokio::test]
async fn a_send_over_either_transport_reaches_others_as_the_same_frame_and_dedups_across_them() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = s.room(&alice, "general").await;
    s.join(&bob, &room).await;
    let mut alice_ws = s.ws(&alice).await;
    alice_ws.hello(None).await;
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;

    let by_socket = ws_send(&mut alice_ws, &room, "same-1", "over the socket")
        .await
        .expect("ack");
    let by_rest = http_send(&s, &alice.token, &room, "same-2", "over rest")
        .await
        .expect("stored");

    let first = bob_ws.expect("message").await;
    let second = bob_ws.expect("message").await;
    // The same shape whichever way it came in: only seq, id, body,
    // client_id and time differ.
    let shape = |f: &Value| {
        let mut keys: Vec<String> = f["message"]
            .as_object()
            .expect("message object")
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(shape(&first), shape(&second));
    assert_eq!(first["message"]["author"], second["message"]["author"]);
    assert_eq!(first["message"]["seq"], by_socket["seq"]);
    assert_eq!(first["message"]["id"], by_socket["id"]);
    assert_eq!(second["message"], by_rest);

    // A client_id first used on one transport is the same message on the
    // other: the original comes back, nothing new is stored or delivered.
    let again_rest = http_send(&s, &alice.token, &room, "same-1", "over the socket")
        .await
        .expect("dedup over rest");
    assert_eq!(again_rest["seq"], by_socket["seq"]);
    assert_eq!(again_rest["id"], by_socket["id"]);
    let again_ws = ws_send(&mut alice_ws, &room, "same-2", "over rest")
        .await
        .expect("dedup over the socket");
    assert_eq!(again_ws["seq"], by_rest["seq"]);
    assert_eq!(again_ws["id"], by_rest["id"]);
    assert_eq!(s.history(&alice, &room).await.len(), 2);
    assert!(
        bob_ws
            .next_within(std::time::Duration::from_millis(300))
            .await
            .is_none_or(|f| f["type"] != "message"),
        "a deduplicated send delivered something"
    );
}

#[tokio::test]
async fn room_and_membership_changes_reach_every_open_socket() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;

    let room = s.room(&alice, "general").await;
    let added = bob_ws.expect("room_added").await;
    assert_eq!(added["room"]["id"], room);
    assert_eq!(added["room"]["name"], "general");
    assert_eq!(added["room"]["joined"], false);
    assert_eq!(added["room"]["member_count"], 1);

    let mut alice_ws = s.ws(&alice).await;
    alice_ws.hello(None).await;
    s.join(&bob, &room).await;
    let joined = alice_ws.expect("member_joined").await;
    assert_eq!(joined["room"], room);
    assert_eq!(joined["user"]["username"], "bob");
    assert_eq!(joined["member_count"], 2);
    assert_eq!(bob_ws.expect("joined").await["room"]["id"], room);

    let (status, _) = s
        .post(
            &format!("/api/v1/rooms/{room}/leave"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 204);
    let left = alice_ws.expect("member_left").await;
    assert_eq!(left["user"]["username"], "bob");
    assert_eq!(left["member_count"], 1);
    assert_eq!(bob_ws.expect("left").await["room"], room);

    // The first account is the administrator: deleting the room tells
    // every socket.
    let (status, _) = s
        .delete(
            &format!("/api/v1/rooms/{room}"),
            Some(&alice.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(bob_ws.expect("room_removed").await["room"], room);
    assert_eq!(alice_ws.expect("left").await["room"], room);
}

#[tokio::test]
async fn an_account_deleted_over_rest_or_from_the_cli_leaves_its_rooms_the_same_way() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let carol = s.user("carol").await;
    let room = s.room(&alice, "general").await;
    s.join(&bob, &room).await;
    s.join(&carol, &room).await;
    let mut alice_ws = s.ws(&alice).await;
    alice_ws.hello(None).await;

    // Bob deletes himself over REST.
    let (status, _) = s
        .delete(
            "/api/v1/me",
            Some(&bob.token),
            json!({"password": "password-bob"}),
        )
        .await;
    assert_eq!(status, 204, "delete me");
    let left = alice_ws.expect("member_left").await;
    assert_eq!(left["user"]["id"], bob.id);
    assert_eq!(left["member_count"], 2);

    // Carol is deleted by the operator, through the admin socket.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["user", "delete", "carol", "--data"])
        .arg(s.data_dir())
        .output()
        .expect("run the CLI");
    assert!(out.status.success(), "{out:?}");
    let left = alice_ws.expect("member_left").await;
    assert_eq!(left["user"]["id"], carol.id);
    assert_eq!(left["member_count"], 1);

    // Both ended the same way: out of the room, sessions gone.
    let (_, members) = s
        .get(&format!("/api/v1/rooms/{room}/members"), Some(&alice.token))
        .await;
    assert_eq!(members["members"].as_array().map(Vec::len), Some(1));
    for gone in [&bob, &carol] {
        let (status, _) = s.get("/api/v1/me", Some(&gone.token)).await;
        assert_eq!(status, 401);
    }
}
