//! Hostile WebSocket peers, played with hand-made frames over raw TCP: each
//! protocol violation gets its RFC 6455 close code, dead and slow peers are
//! dropped without holding their room back, floods are cut, and the server
//! keeps serving normal clients through all of it.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{RawWs, TestServer, User};

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// How long a test waits for the close frame a violation must earn.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// One frame's bytes, any of it wrong on purpose: `rsv` are the three
/// reserved bits (0..=7), `mask` false sends the payload in the clear.
fn frame(fin: bool, rsv: u8, opcode: u8, mask: bool, payload: &[u8]) -> Vec<u8> {
    let key = [0x5au8, 0x13, 0xc4, 0x7e];
    let mut out = vec![(u8::from(fin) << 7) | ((rsv & 7) << 4) | opcode];
    let m = if mask { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(m | n as u8),
        n if n <= 0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if mask {
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, 0, opcode, true, payload)
}

/// A server with `env`, one user in one room.
async fn setup(env: &[(&str, &str)]) -> (TestServer, User, String) {
    let s = TestServer::spawn_with(env).await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    (s, alice, room)
}

/// A raw connection that has said hello and read its `ready`.
async fn greeted(s: &TestServer, user: &User) -> RawWs {
    let mut raw = RawWs::connect(s, &user.token).await;
    raw.send_text(json!({"type": "hello"})).await;
    let ready = raw.next_json(CLOSE_WAIT).await.expect("ready");
    assert_eq!(ready["type"], "ready", "{ready}");
    raw
}

/// The server is up and a well-behaved client is served.
async fn assert_still_serving(s: &TestServer, user: &User, room: &str, probe: &str) {
    let (status, _) = s.get("/healthz", None).await;
    assert_eq!(status, 200, "the server answers after {probe}");
    let mut ws = s.ws(user).await;
    ws.hello(None).await;
    ws.assert_usable(room, &format!("after-{probe}")).await;
}

/// Sends `bytes` on a fresh greeted connection; returns the close code.
async fn close_code_for(s: &TestServer, user: &User, bytes: &[&[u8]]) -> Option<u16> {
    outcome_of(s, user, bytes).await.0
}

/// Sends `bytes` on a fresh greeted connection; returns the close code and
/// every other frame the server sent before it (for failure messages).
async fn outcome_of(s: &TestServer, user: &User, bytes: &[&[u8]]) -> (Option<u16>, Vec<String>) {
    let mut raw = greeted(s, user).await;
    for b in bytes {
        // The server may close before everything is written.
        if raw.send_bytes(b).await.is_err() {
            break;
        }
    }
    let mut others = Vec::new();
    let deadline = Instant::now() + CLOSE_WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(f) = raw.next_frame(left).await else {
            others.push("(no close frame: timeout or end of stream)".into());
            return (None, others);
        };
        if let Some(code) = f.close_code() {
            return (Some(code), others);
        }
        others.push(format!(
            "opcode {:#x}: {}",
            f.opcode,
            String::from_utf8_lossy(&f.payload)
        ));
    }
}

#[tokio::test]
async fn an_unmasked_client_frame_is_refused_with_1002() {
    let (s, alice, room) = setup(&[]).await;
    let ping = json!({"type": "ping"}).to_string();
    let (code, got) =
        outcome_of(&s, &alice, &[&frame(true, 0, TEXT, false, ping.as_bytes())]).await;
    assert_eq!(
        code,
        Some(1002),
        "unmasked text frame; the server sent {got:?}"
    );
    assert_still_serving(&s, &alice, &room, "an unmasked frame").await;
}

#[tokio::test]
async fn control_frames_over_125_bytes_are_refused_with_1002() {
    let (s, alice, room) = setup(&[]).await;
    let mut close_payload = 1000u16.to_be_bytes().to_vec();
    close_payload.extend_from_slice(&[b'x'; 124]);
    for (name, bytes) in [
        ("ping", masked(true, PING, &[b'p'; 126])),
        ("pong", masked(true, PONG, &[b'p'; 126])),
        ("close", masked(true, CLOSE, &close_payload)),
    ] {
        let code = close_code_for(&s, &alice, &[&bytes]).await;
        assert_eq!(code, Some(1002), "{name} frame of 126 bytes");
    }
    // 125 bytes is allowed: a ping of exactly that size is answered.
    let mut raw = greeted(&s, &alice).await;
    raw.send_frame(true, PING, &[b'q'; 125]).await;
    let pong = loop {
        let f = raw.next_frame(CLOSE_WAIT).await.expect("a pong");
        if f.opcode == PONG {
            break f;
        }
    };
    assert_eq!(pong.payload, vec![b'q'; 125], "the pong echoes the ping");
    assert_still_serving(&s, &alice, &room, "oversized control frames").await;
}

#[tokio::test]
async fn other_framing_violations_are_refused_with_1002() {
    let (s, alice, room) = setup(&[]).await;
    let hello_part = br#"{"type":"#;
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "reserved bit 1 (no extension was negotiated)",
            vec![frame(true, 4, TEXT, true, br#"{"type":"ping"}"#)],
        ),
        (
            "reserved bits 2 and 3",
            vec![frame(true, 3, TEXT, true, br#"{"type":"ping"}"#)],
        ),
        (
            "a continuation with no message started",
            vec![masked(true, CONTINUATION, b"orphan")],
        ),
        (
            "a new text frame inside a fragmented message",
            vec![masked(false, TEXT, hello_part), masked(true, TEXT, b"x")],
        ),
        ("a fragmented ping", vec![masked(false, PING, b"p")]),
        ("reserved opcode 0x3", vec![masked(true, 0x3, b"?")]),
        ("reserved control opcode 0xB", vec![masked(true, 0xB, b"?")]),
        ("a close frame of one byte", vec![masked(true, CLOSE, &[3])]),
        (
            "a close frame with code 1005 (never sent on the wire)",
            vec![masked(true, CLOSE, &1005u16.to_be_bytes())],
        ),
    ];
    for (name, frames) in cases {
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let code = close_code_for(&s, &alice, &refs).await;
        assert_eq!(code, Some(1002), "{name}");
    }
    assert_still_serving(&s, &alice, &room, "framing violations").await;
}

#[tokio::test]
async fn a_fragmented_message_over_the_limit_is_refused_with_1009() {
    let (s, alice, room) = setup(&[("HEARTH_MAX_MESSAGE_BYTES", "1024")]).await;

    // Under the limit, fragments are joined into one message and acked.
    let whole = json!({"type": "send", "room": room, "client_id": "frag", "body": "in pieces"})
        .to_string()
        .into_bytes();
    let mut raw = greeted(&s, &alice).await;
    let pieces: Vec<&[u8]> = whole.chunks(7).collect();
    for (i, p) in pieces.iter().enumerate() {
        let op = if i == 0 { TEXT } else { CONTINUATION };
        raw.send_frame(i + 1 == pieces.len(), op, p).await;
    }
    let ack = raw
        .next_json(CLOSE_WAIT)
        .await
        .expect("ack of a fragmented send");
    assert_eq!(
        (ack["type"].as_str(), ack["client_id"].as_str()),
        (Some("ack"), Some("frag"))
    );

    // Each fragment small, the whole over 1024 bytes: 1009 before it ends.
    let mut frames = vec![masked(false, TEXT, &[b' '; 100])];
    frames.extend((0..30).map(|_| masked(false, CONTINUATION, &[b' '; 100])));
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    assert_eq!(
        close_code_for(&s, &alice, &refs).await,
        Some(1009),
        "fragments"
    );

    // One frame over the limit, and a binary message in fragments, likewise.
    let big = masked(true, TEXT, &[b' '; 1025]);
    assert_eq!(
        close_code_for(&s, &alice, &[&big]).await,
        Some(1009),
        "one frame"
    );
    let mut frames = vec![masked(false, BINARY, &[0u8; 600])];
    frames.push(masked(true, CONTINUATION, &[0u8; 600]));
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    assert_eq!(
        close_code_for(&s, &alice, &refs).await,
        Some(1009),
        "binary"
    );
    assert_still_serving(&s, &alice, &room, "oversized messages").await;
}

#[tokio::test]
async fn invalid_utf8_text_is_refused_with_1007() {
    let (s, alice, room) = setup(&[]).await;
    let code = close_code_for(
        &s,
        &alice,
        &[&masked(true, TEXT, b"{\"type\":\"\xff\xfe\"}")],
    )
    .await;
    assert_eq!(code, Some(1007), "one frame");

    // A character split across fragments is fine...
    let whole = json!({"type": "send", "room": room, "client_id": "split", "body": "café ☕"})
        .to_string()
        .into_bytes();
    let cut = whole.iter().position(|&b| b == 0xc3).expect("é") + 1;
    let mut raw = greeted(&s, &alice).await;
    raw.send_frame(false, TEXT, &whole[..cut]).await;
    raw.send_frame(true, CONTINUATION, &whole[cut..]).await;
    let ack = raw.next_json(CLOSE_WAIT).await.expect("ack");
    assert_eq!(
        ack["type"], "ack",
        "a split character is valid UTF-8: {ack}"
    );

    // ...but an invalid sequence across fragments is not.
    let frames = [
        masked(false, TEXT, b"{\"type\":\"ping\",\"x\":\"\xe2\x82"),
        masked(true, CONTINUATION, b"\x28\"}"),
    ];
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    assert_eq!(
        close_code_for(&s, &alice, &refs).await,
        Some(1007),
        "fragments"
    );

    // A close frame whose reason is not UTF-8 likewise.
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"\xc0\xaf");
    let code = close_code_for(&s, &alice, &[&masked(true, CLOSE, &payload)]).await;
    assert_eq!(code, Some(1007), "close reason");
    assert_still_serving(&s, &alice, &room, "invalid UTF-8").await;
}

#[tokio::test]
async fn no_hello_in_time_is_closed_with_1008() {
    let (s, alice, room) = setup(&[("HEARTH_HELLO_TIMEOUT_SECS", "1")]).await;
    let mut raw = RawWs::connect(&s, &alice.token).await;
    let started = Instant::now();
    let code = raw.close_code(Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert_eq!(code, Some(1008), "silent after the upgrade");
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(3),
        "closed after {took:?}, the timeout is 1 s"
    );
    assert_still_serving(&s, &alice, &room, "a silent client").await;
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_dropped() {
    let (s, alice, room) = setup(&[
        ("HEARTH_PING_INTERVAL_SECS", "1"),
        ("HEARTH_IDLE_TIMEOUT_SECS", "2"),
    ])
    .await;

    // Two peers at once: a dead one (reads, never answers) and a live one
    // that answers every ping for the same 5 s.
    let mut dead = greeted(&s, &alice).await;
    let mut live = greeted(&s, &alice).await;
    let dead_side = async {
        let started = Instant::now();
        let (ended, _code) = dead.wait_for_eof(Duration::from_secs(6)).await;
        (ended, started.elapsed())
    };
    let live_side = async {
        let until = Instant::now() + Duration::from_secs(5);
        let mut pings = 0;
        while Instant::now() < until {
            let left = until.saturating_duration_since(Instant::now());
            let Some(f) = live.next_frame(left).await else {
                break;
            };
            assert_ne!(f.opcode, CLOSE, "a peer answering pings was closed: {f:?}");
            if f.opcode == PING {
                pings += 1;
                live.send_frame(true, PONG, &f.payload).await;
            }
        }
        pings
    };
    let ((ended, took), pings) = tokio::join!(dead_side, live_side);
    assert!(
        ended,
        "a peer that never answers pings is still connected after 6 s"
    );
    assert!(
        took >= Duration::from_millis(1800),
        "dropped after {took:?}, before the 2 s idle timeout"
    );
    assert!(
        pings >= 3,
        "the server pings every second; saw {pings} in 5 s"
    );
    // The live one is still served, past twice the idle timeout.
    live.send_text(json!({"type": "send", "room": room, "client_id": "alive", "body": "hi"}))
        .await;
    let ack = loop {
        let f = live.next_json(CLOSE_WAIT).await.expect("ack");
        if f["type"] == "ack" {
            break f;
        }
    };
    assert_eq!(ack["client_id"], "alive");
}

#[tokio::test]
async fn a_reader_that_stops_reading_is_cut_without_slowing_its_room() {
    // Bob's buffers fill within the first moments of the flood; his write
    // then stays blocked, and he is cut a second later, long before the
    // test reads his socket again. Carol reads in bursts, pausing 100 ms
    // between probes, and the default queue absorbs that.
    let (s, alice, room) = setup(&[("HEARTH_WRITE_TIMEOUT_SECS", "1")]).await;
    let bob = s.user("bob").await;
    let carol = s.user("carol").await;
    s.join(&bob, &room).await;
    s.join(&carol, &room).await;

    // Bob connects with a 4 KiB receive buffer, says hello, and never reads.
    let mut stalled = RawWs::connect_from(&s, &bob.token, "127.0.0.1", Some(4096)).await;
    stalled.send_text(json!({"type": "hello"})).await;
    let mut carol_ws = s.ws(&carol).await;
    carol_ws.hello(None).await;

    // Alice floods the room with 3 KB messages for about two seconds...
    let flood = {
        let (url, token, room) = (s.ws_url(), alice.token.clone(), room.clone());
        tokio::spawn(async move { flood_room(url, token, room, 1500).await })
    };
    // ...while Carol sends a probe every 100 ms and times its echo.
    let mut latencies = Vec::new();
    for i in 0..20 {
        let cid = format!("probe-{i}");
        let sent = Instant::now();
        carol_ws.send(&room, &cid, "probe").await;
        loop {
            let f = carol_ws.next().await.expect("carol keeps getting frames");
            if f["type"] == "message" && f["message"]["client_id"] == cid {
                break;
            }
        }
        latencies.push(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let flooded = flood.await.expect("flood task");
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let worst = *latencies.last().expect("probes");
    println!("probe latency during the flood ({flooded} sent): median {median:?}, worst {worst:?}");
    assert!(
        median < Duration::from_millis(300) && worst < Duration::from_millis(1500),
        "a stalled reader slowed its room: median {median:?}, worst {worst:?}"
    );

    // The stalled connection was cut: reading now drains what the kernel
    // buffered, then ends, although the room is quiet from here on.
    let (ended, code) = stalled.wait_for_eof(Duration::from_secs(10)).await;
    assert!(ended, "a reader that never reads is still connected");
    if let Some(code) = code {
        assert_eq!(code, 1013, "a cut slow reader is told to resume later");
    }
    assert_still_serving(&s, &alice, &room, "a stalled reader").await;
}

/// With the default outbound queue (4,096 frames, far more than this test
/// sends), a reader that stops is cut by the write timeout: the bounded
/// kernel send buffer (`send_buffer_kb`) fills, the server's write blocks,
/// and after `write_timeout_secs` the connection gets 1013. Left to the
/// kernel's autotuning the buffer could grow to megabytes and the stalled
/// peer would stay connected far longer.
#[tokio::test]
async fn a_stalled_reader_is_cut_by_the_write_timeout_once_its_send_buffer_fills() {
    let (s, alice, room) = setup(&[("HEARTH_WRITE_TIMEOUT_SECS", "1")]).await;
    let bob = s.user("bob").await;
    s.join(&bob, &room).await;
    let mut stalled = RawWs::connect_from(&s, &bob.token, "127.0.0.1", Some(4096)).await;
    stalled.send_text(json!({"type": "hello"})).await;
    // Let the hello's ready arrive before the flood.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    // 600 messages of 3 KB: 1.8 MB for a socket whose buffers hold about
    // 260 KB.
    let flooded = flood_room(s.ws_url(), alice.token.clone(), room.clone(), 600).await;
    assert_eq!(flooded, 600);
    // Still not reading, for three times the write timeout; reading would
    // unblock the server's write.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (ended, code) = stalled.wait_for_eof(Duration::from_secs(10)).await;
    println!(
        "stalled reader cut {:?} after the flood began",
        started.elapsed()
    );
    assert!(ended, "a reader that never reads is still connected");
    // A close frame cannot pass a full buffer; if one got through, it says
    // why.
    assert!(matches!(code, None | Some(1013)), "close code {code:?}");
    assert_still_serving(&s, &alice, &room, "a stalled reader").await;
}

/// Posts `n` messages of 3 KB as fast as acks come back (32 in flight).
async fn flood_room(url: String, token: String, room: String, n: usize) -> usize {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect");
    ws.send(Message::Text(json!({"type": "hello"}).to_string()))
        .await
        .expect("hello");
    let body = "x".repeat(3000);
    let (mut sent, mut acked) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked < n && Instant::now() < deadline {
        while sent < n && sent - acked < 32 {
            let f = json!({"type": "send", "room": room, "client_id": format!("f{sent}"), "body": body});
            ws.send(Message::Text(f.to_string())).await.expect("send");
            sent += 1;
        }
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let f: serde_json::Value = serde_json::from_str(&t).expect("json");
                assert_ne!(f["type"], "error", "{f}");
                if f["type"] == "ack" {
                    acked += 1;
                }
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("the flooding client lost its connection: {other:?}"),
        }
    }
    acked
}

#[tokio::test]
async fn a_send_flood_gets_rate_limited_then_closed_with_1008() {
    let (s, alice, room) =
        setup(&[("HEARTH_SEND_PER_SEC", "5"), ("HEARTH_SEND_BURST", "10")]).await;
    let mut raw = greeted(&s, &alice).await;
    for i in 0..200 {
        let f = json!({"type": "send", "room": room, "client_id": format!("x{i}"), "body": "spam"});
        if raw
            .send_bytes(&masked(true, TEXT, f.to_string().as_bytes()))
            .await
            .is_err()
        {
            break;
        }
    }
    let (mut acks, mut limited, mut code) = (0, 0, None);
    while let Some(f) = raw.next_frame(CLOSE_WAIT).await {
        if let Some(c) = f.close_code() {
            code = Some(c);
            break;
        }
        if f.opcode != TEXT {
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(&f.payload).expect("json");
        match v["type"].as_str() {
            Some("ack") => acks += 1,
            Some("error") => {
                assert_eq!(v["code"], "rate_limited", "{v}");
                assert!(v["client_id"].is_string(), "the error names the send: {v}");
                limited += 1;
            }
            _ => {}
        }
    }
    assert!(limited >= 1, "a flooder is told it is rate limited first");
    assert_eq!(
        code,
        Some(1008),
        "sustained flooding closes with 1008 (policy)"
    );
    // Acks of the burst may be lost with the closed socket (a client resends
    // by client_id), but the burst, and little more, was stored.
    // The accepted sends may still be in the committer as the socket closes.
    let mut stored = 0;
    for _ in 0..20 {
        stored = s.history(&alice, &room).await.len();
        if stored >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("flood: {acks} acks, {limited} rate_limited, {stored} stored");
    assert!(acks <= stored, "{acks} acks, {stored} stored");
    assert!(
        (10..=12).contains(&stored),
        "the burst of 10 goes through, then almost nothing: {stored} stored"
    );
    // The limit is per user: Alice waits for a token, and a new connection works.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_still_serving(&s, &alice, &room, "a send flood").await;
}

#[tokio::test]
async fn a_deeply_nested_msgpack_frame_does_not_crash_the_server() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let (mut s, alice, room) = setup(&[]).await;
    let (mut ws, protocol) = s.ws_msgpack(&alice).await;
    assert_eq!(protocol.as_deref(), Some("hearth.msgpack"));
    let mut bomb = vec![0x81u8];
    bomb.extend(std::iter::repeat_n(0x81u8, 5_000));
    let _ = ws.stream.send(Message::Binary(bomb)).await;
    let answer = ws.next_msgpack().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        s.is_running(),
        "the server process died on a nested MessagePack frame (answer before: {answer:?})"
    );
    assert_still_serving(&s, &alice, &room, "a nested MessagePack frame").await;
}

#[tokio::test]
async fn a_flood_of_any_frames_closes_the_socket_with_1008() {
    let s = TestServer::spawn_with(&[("HEARTH_MAX_FRAMES_PER_SEC", "5")]).await;
    let alice = s.user("alice").await;
    let mut ws = s.ws(&alice).await;
    ws.hello(None).await;
    // Pings cost nothing to send and are not sends, so only the
    // per-connection message budget (5/s, bursts of 20) stops them.
    for _ in 0..100 {
        ws.send_json(json!({"type": "ping"})).await;
    }
    assert_eq!(ws.close_code().await, Some(1008));
    // Others are unaffected.
    let mut again = s.ws(&alice).await;
    again.hello(None).await;
}

#[tokio::test]
async fn a_hello_sent_with_the_upgrade_request_is_read() {
    // A client that does not wait for the 101: its first frame arrives in
    // the same segment as the request, so hyper has read it already and
    // hands it over with the socket.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (s, alice, _) = setup(&[]).await;
    let mut stream = tokio::net::TcpStream::connect(&s.addr)
        .await
        .expect("connect");
    let mut out = format!(
        "GET /api/v1/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {}\r\n\r\n",
        s.addr, alice.token
    )
    .into_bytes();
    out.extend(masked(
        true,
        TEXT,
        json!({"type": "hello"}).to_string().as_bytes(),
    ));
    stream.write_all(&out).await.expect("write");
    let mut got = Vec::new();
    let deadline = Instant::now() + CLOSE_WAIT;
    let ready: &[u8] = br#"{"type":"ready""#;
    while !got.windows(ready.len()).any(|w| w == ready) {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(left, stream.read(&mut chunk))
            .await
            .expect("the ready frame within the wait")
            .expect("read");
        assert!(
            n > 0,
            "closed before ready: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&got)
    );
}
