//! Durability through crashes and storage trouble.
//!
//! The crash loop is the promise "an acknowledged message is never lost,
//! never duplicated, never reordered" run against the real binary: posters
//! over WebSocket and REST, SIGKILL at a random moment, restart, and a check
//! of every room against what was acknowledged. CI runs 10 cycles;
//! `HEARTH_CRASH_CYCLES=100` is the documented long run and
//! `HEARTH_CRASH_SEED=N` replays one (the seed is printed on every run).
//!
//! The storage tests start the binary on a data directory that is newer,
//! damaged or full, and check it refuses or degrades with a clear message.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::harness::{TestServer, User};

/// Sends a WebSocket poster keeps in flight before waiting for acks.
const WS_WINDOW: usize = 16;

/// A message the test sent: where, and with what body.
#[derive(Clone, Debug)]
struct Sent {
    room: String,
    body: String,
}

/// What one poster learned before the server died under it.
#[derive(Default)]
struct Tally {
    /// client_id → (room, seq) for every acknowledged send.
    acked: Vec<(String, String, u64)>,
    /// Sends whose outcome the poster never learned.
    unacked: Vec<(String, Sent)>,
}

#[tokio::test]
async fn acked_messages_survive_random_kill_9() {
    let cycles: usize = env_number("HEARTH_CRASH_CYCLES", 10);
    let seed: u64 = env_number("HEARTH_CRASH_SEED", clock_seed());
    println!("crash loop: {cycles} cycles, seed {seed} (replay with HEARTH_CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);

    let mut s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let carol = s.user("carol").await;
    let rooms = vec![s.room(&alice, "one").await, s.room(&alice, "two").await];
    for r in &rooms {
        s.join(&bob, r).await;
        s.join(&carol, r).await;
    }

    // Everything ever acknowledged: client_id → (room, seq).
    let mut ledger: HashMap<String, (String, u64)> = HashMap::new();
    let mut unacked_total = 0usize;
    let mut unacked_already_stored = 0usize;
    let mut longest_restart = Duration::ZERO;
    let started = Instant::now();

    for cycle in 0..cycles {
        let kill_after = Duration::from_millis(rng.gen_range(40..=350));
        let posters = vec![
            tokio::spawn(ws_poster(
                s.ws_url(),
                alice.token.clone(),
                rooms.clone(),
                format!("a{cycle}"),
            )),
            tokio::spawn(ws_poster(
                s.ws_url(),
                bob.token.clone(),
                rooms.clone(),
                format!("b{cycle}"),
            )),
            tokio::spawn(rest_poster(
                s.http.clone(),
                s.url(""),
                carol.token.clone(),
                rooms.clone(),
                format!("c{cycle}"),
            )),
        ];
        tokio::time::sleep(kill_after).await;
        s.kill9();
        let mut unacked = Vec::new();
        for p in posters {
            let tally = tokio::time::timeout(Duration::from_secs(15), p)
                .await
                .expect("a poster notices the dead server")
                .expect("poster task");
            for (cid, room, seq) in tally.acked {
                let old = ledger.insert(cid.clone(), (room, seq));
                assert!(old.is_none(), "client_id {cid} acknowledged twice");
            }
            unacked.extend(tally.unacked);
        }

        let restart = Instant::now();
        s.restart();
        longest_restart = longest_restart.max(restart.elapsed());

        // Every send whose ack was lost is sent again: stored exactly once,
        // whether or not the first attempt made it to disk.
        unacked_total += unacked.len();
        for (cid, sent) in unacked {
            let (status, body) = s
                .post(
                    &format!("/api/v1/rooms/{}/messages", sent.room),
                    Some(&carol_or_author(&cid, &alice, &bob, &carol).token),
                    json!({"body": sent.body, "client_id": cid}),
                )
                .await;
            assert!(
                status == 200 || status == 201,
                "resend {cid} after restart: {status} {body}"
            );
            if status == 200 {
                unacked_already_stored += 1;
            }
            let seq = body["message"]["seq"].as_u64().expect("seq");
            ledger.insert(cid, (sent.room.clone(), seq));
        }
        // A resend of something acknowledged gets the same seq back.
        if let Some((cid, (room, seq))) = ledger.iter().find(|(c, _)| c.starts_with('c')) {
            let (status, body) = s
                .post(
                    &format!("/api/v1/rooms/{room}/messages"),
                    Some(&carol.token),
                    json!({"body": format!("crash {cid}"), "client_id": cid}),
                )
                .await;
            assert_eq!(status, 200, "a duplicate is answered 200: {body}");
            assert_eq!(body["message"]["seq"].as_u64(), Some(*seq), "{body}");
        }
        verify(&s, &alice, &rooms, &ledger, cycle, seed).await;
    }

    println!(
        "crash loop done: seed {seed}, {cycles} cycles in {:.1} s, {} messages acknowledged, \
         {unacked_total} unacknowledged sends resent ({unacked_already_stored} of them had been \
         stored), 0 lost, 0 duplicated, 0 reordered, longest restart {} ms",
        started.elapsed().as_secs_f64(),
        ledger.len(),
        longest_restart.as_millis()
    );
}

/// Each room's history is exactly seqs 1..=n, holds every acknowledged
/// client_id at its acknowledged seq, and nothing else.
async fn verify(
    s: &TestServer,
    reader: &User,
    rooms: &[String],
    ledger: &HashMap<String, (String, u64)>,
    cycle: usize,
    seed: u64,
) {
    for room in rooms {
        let history = s.history(reader, room).await;
        let mut by_seq: BTreeMap<u64, String> = BTreeMap::new();
        let mut seen = HashSet::new();
        for (i, m) in history.iter().enumerate() {
            let seq = m["seq"].as_u64().expect("seq");
            assert_eq!(
                seq,
                i as u64 + 1,
                "cycle {cycle} (seed {seed}): a gap or reordering in room {room}"
            );
            let cid = m["client_id"].as_str().expect("client_id").to_string();
            assert!(
                seen.insert(cid.clone()),
                "cycle {cycle} (seed {seed}): {cid} stored twice in room {room}"
            );
            by_seq.insert(seq, cid);
        }
        let mine: Vec<_> = ledger.iter().filter(|(_, (r, _))| r == room).collect();
        for (cid, (_, seq)) in &mine {
            assert_eq!(
                by_seq.get(seq),
                Some(*cid),
                "cycle {cycle} (seed {seed}): acknowledged {cid} is not at seq {seq} of {room}"
            );
        }
        assert_eq!(
            mine.len(),
            history.len(),
            "cycle {cycle} (seed {seed}): room {room} holds messages nobody was told about"
        );
    }
}

fn carol_or_author<'a>(cid: &str, alice: &'a User, bob: &'a User, carol: &'a User) -> &'a User {
    match cid.as_bytes().first() {
        Some(b'a') => alice,
        Some(b'b') => bob,
        _ => carol,
    }
}

/// Posts over one WebSocket with up to [`WS_WINDOW`] sends in flight,
/// alternating rooms, until the connection dies.
async fn ws_poster(url: String, token: String, rooms: Vec<String>, prefix: String) -> Tally {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut tally = Tally::default();
    let mut req = url.into_client_request().expect("ws request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(req).await else {
        return tally;
    };
    if ws
        .send(WsMessage::Text(json!({"type": "hello"}).to_string()))
        .await
        .is_err()
    {
        return tally;
    }
    let mut in_flight: HashMap<String, Sent> = HashMap::new();
    let mut n = 0usize;
    // Bounded: the server is killed within a second; 20 000 is far beyond.
    while n < 20_000 {
        while in_flight.len() < WS_WINDOW {
            let cid = format!("{prefix}-{n}");
            let sent = Sent {
                room: rooms[n % rooms.len()].clone(),
                body: format!("crash {cid}"),
            };
            n += 1;
            let frame =
                json!({"type": "send", "room": sent.room, "client_id": cid, "body": sent.body});
            in_flight.insert(cid, sent);
            if ws.send(WsMessage::Text(frame.to_string())).await.is_err() {
                tally.unacked.extend(in_flight);
                return tally;
            }
        }
        let frame = match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(WsMessage::Text(t)))) => {
                serde_json::from_str::<Value>(&t).unwrap_or_default()
            }
            Ok(Some(Ok(_))) => continue,
            _ => break,
        };
        if frame["type"] == "ack" {
            let cid = frame["client_id"].as_str().unwrap_or_default();
            if let Some(sent) = in_flight.remove(cid) {
                let seq = frame["seq"].as_u64().expect("ack seq");
                assert_eq!(frame["room"], json!(sent.room), "{frame}");
                tally.acked.push((cid.to_string(), sent.room, seq));
            }
        } else if frame["type"] == "error" {
            panic!("a send failed before any crash: {frame}");
        }
    }
    tally.unacked.extend(in_flight);
    tally
}

/// Posts over REST, two requests at a time, until the server stops answering.
async fn rest_poster(
    http: reqwest::Client,
    base: String,
    token: String,
    rooms: Vec<String>,
    prefix: String,
) -> Tally {
    let lanes = (0..2).map(|lane| {
        let (http, base, token, rooms) = (http.clone(), base.clone(), token.clone(), rooms.clone());
        let prefix = format!("{prefix}{lane}");
        tokio::spawn(async move {
            let mut tally = Tally::default();
            for n in 0..5_000 {
                let cid = format!("{prefix}-{n}");
                let sent = Sent {
                    room: rooms[n % rooms.len()].clone(),
                    body: format!("crash {cid}"),
                };
                let resp = http
                    .post(format!("{base}/api/v1/rooms/{}/messages", sent.room))
                    .bearer_auth(&token)
                    .json(&json!({"body": sent.body, "client_id": cid}))
                    .send()
                    .await;
                let body: Option<Value> = match resp {
                    Ok(r) if r.status().as_u16() == 201 => r.json().await.ok(),
                    Ok(r) => panic!("a REST send failed before any crash: {}", r.status()),
                    Err(_) => None,
                };
                match body.and_then(|b| b["message"]["seq"].as_u64()) {
                    Some(seq) => tally.acked.push((cid, sent.room, seq)),
                    None => {
                        tally.unacked.push((cid, sent));
                        break;
                    }
                }
            }
            tally
        })
    });
    let mut all = Tally::default();
    for lane in lanes.collect::<Vec<_>>() {
        let t = lane.await.expect("rest lane");
        all.acked.extend(t.acked);
        all.unacked.extend(t.unacked);
    }
    all
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, got {v:?}")),
        Err(_) => default,
    }
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
