//! Web Push: the server pushes to browsers' push services, here a push
//! service the test runs on loopback. Each "browser" holds its own P-256
//! key and auth secret and decrypts what arrives with RustCrypto (not the
//! server's code), and checks the VAPID token's signature and claims.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes_gcm::aead::Aead;
use aes_gcm::{Aes128Gcm, KeyInit, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use p256::ecdsa::signature::Verifier;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::harness::{TestServer, User};

const CONTACT: &str = "mailto:ops@example.com";

/// Settings every push test runs with: loopback push services allowed.
fn env<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("HEARTH_PUSH_ALLOW_INSECURE_LOOPBACK", "true"),
        ("HEARTH_PUSH_CONTACT", CONTACT),
    ];
    env.extend_from_slice(extra);
    env
}

/// What the push service does with the next request to a path.
#[derive(Clone, Copy)]
enum Act {
    Answer(u16),
    /// Answer 201 only after this long.
    Hang(Duration),
}

/// One request the push service got.
struct Got {
    path: String,
    headers: hyper::HeaderMap,
    body: Bytes,
    at: Instant,
}

/// A push service on loopback: records every request, answers 201 unless
/// told otherwise per path.
struct PushService {
    addr: SocketAddr,
    script: Arc<Mutex<HashMap<String, VecDeque<Act>>>>,
    rx: mpsc::UnboundedReceiver<Got>,
    /// Requests read but not yet asked for (another path's).
    stash: Vec<Got>,
}

impl PushService {
    async fn start() -> PushService {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = mpsc::unbounded_channel();
        let script: Arc<Mutex<HashMap<String, VecDeque<Act>>>> = Arc::default();
        let plan = script.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (tx, plan) = (tx.clone(), plan.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (tx, plan) = (tx.clone(), plan.clone());
                        async move {
                            let path = req.uri().path().to_string();
                            let headers = req.headers().clone();
                            let body = req.into_body().collect().await?.to_bytes();
                            let act = plan
                                .lock()
                                .expect("the script lock")
                                .get_mut(&path)
                                .and_then(VecDeque::pop_front)
                                .unwrap_or(Act::Answer(201));
                            let _ = tx.send(Got {
                                path,
                                headers,
                                body,
                                at: Instant::now(),
                            });
                            let status = match act {
                                Act::Answer(s) => s,
                                Act::Hang(d) => {
                                    tokio::time::sleep(d).await;
                                    201
                                }
                            };
                            Ok::<_, hyper::Error>(
                                Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::new()))
                                    .expect("well-formed"),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        PushService {
            addr,
            script,
            rx,
            stash: Vec::new(),
        }
    }

    fn plan(&self, browser: &Browser, acts: &[Act]) {
        self.script
            .lock()
            .expect("the script lock")
            .entry(browser.path.clone())
            .or_default()
            .extend(acts.iter().copied());
    }

    /// The next request to `browser`'s endpoint within `wait`.
    async fn next(&mut self, browser: &Browser, wait: Duration) -> Option<Got> {
        if let Some(i) = self.stash.iter().position(|g| g.path == browser.path) {
            return Some(self.stash.remove(i));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let got = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .ok()??;
            if got.path == browser.path {
                return Some(got);
            }
            self.stash.push(got);
        }
    }

    /// The next push to `browser`, decrypted; fails the test if none comes.
    async fn expect(&mut self, browser: &Browser) -> Value {
        let got = self
            .next(browser, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no push reached {}", browser.path));
        browser.open(&got.body)
    }

    /// Asserts that nothing reaches `browser` within `wait`.
    async fn expect_none(&mut self, browser: &Browser, wait: Duration) {
        if let Some(got) = self.next(browser, wait).await {
            panic!(
                "unexpected push to {}: {}",
                browser.path,
                browser.open(&got.body)
            );
        }
    }
}

/// A browser's push subscription: its endpoint at the push service and
/// the keys the server encrypts to.
struct Browser {
    path: String,
    endpoint: String,
    secret: p256::SecretKey,
    auth: [u8; 16],
}

impl Browser {
    fn new(service: &PushService, name: &str) -> Browser {
        let secret = loop {
            let bytes: [u8; 32] = rand::random();
            if let Ok(k) = p256::SecretKey::from_slice(&bytes) {
                break k;
            }
        };
        let path = format!("/push/{name}");
        Browser {
            endpoint: format!("http://{}{path}", service.addr),
            path,
            secret,
            auth: rand::random(),
        }
    }

    fn public_key(&self) -> Vec<u8> {
        self.secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    /// What `PushSubscription.toJSON()` gives.
    fn subscription(&self) -> Value {
        json!({
            "endpoint": self.endpoint,
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(self.public_key()),
                "auth": URL_SAFE_NO_PAD.encode(self.auth),
            }
        })
    }

    /// Decrypts an `aes128gcm` body (RFC 8188 with RFC 8291's keys).
    fn open(&self, body: &[u8]) -> Value {
        let (salt, rest) = body.split_at(16);
        let record_size = u32::from_be_bytes(rest[..4].try_into().expect("well-formed")) as usize;
        let id_len = rest[4] as usize;
        let sender_key = &rest[5..5 + id_len];
        let ciphertext = &rest[5 + id_len..];
        assert!(ciphertext.len() <= record_size, "one record");
        let sender = p256::PublicKey::from_sec1_bytes(sender_key).expect("sender key");
        let shared =
            p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), sender.as_affine());
        let mut info = b"WebPush: info\0".to_vec();
        info.extend_from_slice(&self.public_key());
        info.extend_from_slice(sender_key);
        let mut ikm = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(Some(&self.auth), shared.raw_secret_bytes())
            .expand(&info, &mut ikm)
            .expect("well-formed");
        let prk = hkdf::Hkdf::<Sha256>::new(Some(salt), &ikm);
        let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
        prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
            .expect("well-formed");
        prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
            .expect("well-formed");
        let mut plain = Aes128Gcm::new_from_slice(&cek)
            .expect("well-formed")
            .decrypt(Nonce::from_slice(&nonce), ciphertext)
            .expect("the push decrypts with the browser's keys");
        while plain.last() == Some(&0) {
            plain.pop();
        }
        assert_eq!(plain.pop(), Some(2), "the last record's delimiter");
        serde_json::from_slice(&plain).expect("the payload is JSON")
    }
}

async fn subscribe(s: &TestServer, user: &User, browser: &Browser) {
    let r = s
        .request(
            "POST",
            "/api/v1/push/subscriptions",
            &user.token,
            browser.subscription(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

async fn dm(s: &TestServer, from: &User, to: &User) -> String {
    let (status, body) = s
        .post("/api/v1/dms", Some(&from.token), json!({"users": [to.id]}))
        .await;
    assert_eq!(status, 200, "{body}");
    body["room"]["id"].as_str().expect("room id").to_string()
}

async fn set_level(s: &TestServer, user: &User, room: &str, level: &str) {
    let r = s
        .request(
            "PUT",
            &format!("/api/v1/rooms/{room}/notifications"),
            &user.token,
            json!({ "level": level }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn say(s: &TestServer, user: &User, room: &str, body: &str) -> u64 {
    s.say(user, room, body, None).await["seq"]
        .as_u64()
        .expect("seq")
}

async fn server_key(s: &TestServer) -> String {
    let (status, body) = s.get("/api/v1/push/key", None).await;
    assert_eq!(status, 200, "{body}");
    body["key"].as_str().expect("key").to_string()
}

/// The headers of a push: encoding, TTL, urgency, and a VAPID token signed
/// by the server's key for the push service's origin.
fn check_headers(got: &Got, service: &PushService, key: &str, urgency: &str) {
    let h = |name: &str| {
        got.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .expect("well-formed")
            .to_string()
    };
    assert_eq!(h("content-encoding"), "aes128gcm");
    assert_eq!(h("content-type"), "application/octet-stream");
    assert!(h("ttl").parse::<u32>().expect("TTL is a number") > 0);
    assert_eq!(h("urgency"), urgency);
    let auth = h("authorization");
    let rest = auth.strip_prefix("vapid t=").expect("vapid scheme");
    let (token, k) = rest.split_once(", k=").expect("t and k");
    assert_eq!(k, key, "k is the key the API gives");
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT");
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("well-formed"))
            .expect("well-formed");
    assert_eq!(header["alg"], "ES256");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("well-formed"))
            .expect("well-formed");
    assert_eq!(claims["aud"], format!("http://{}", service.addr));
    assert_eq!(claims["sub"], CONTACT);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("well-formed")
        .as_secs();
    let exp = claims["exp"].as_u64().expect("exp");
    assert!(
        exp > now && exp <= now + 24 * 3600,
        "exp within a day: {exp}"
    );
    let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(
        &URL_SAFE_NO_PAD.decode(k).expect("well-formed"),
    )
    .expect("well-formed");
    let signature =
        p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).expect("well-formed"))
            .expect("well-formed");
    verifying
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .expect("the VAPID token is signed by the server's key");
}

#[tokio::test]
async fn away_members_get_dms_mentions_and_rooms_set_to_all_and_the_sender_nothing() {
    let mut push = PushService::start().await;
    let s = TestServer::spawn_with(&env(&[])).await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let (anns, bobs) = (Browser::new(&push, "ann"), Browser::new(&push, "bob"));
    subscribe(&s, &ann, &anns).await;
    subscribe(&s, &bob, &bobs).await;
    let key = server_key(&s).await;

    // A direct message: everything, reason "dm".
    let direct = dm(&s, &ann, &bob).await;
    let seq = say(&s, &ann, &direct, "psst, a secret").await;
    let got = push
        .next(&bobs, Duration::from_secs(10))
        .await
        .expect("a push");
    check_headers(&got, &push, &key, "high");
    let (_, room) = s
        .get(&format!("/api/v1/rooms/{direct}"), Some(&bob.token))
        .await;
    assert_eq!(
        bobs.open(&got.body),
        json!({
            "type": "message",
            "room": {"id": direct, "name": room["room"]["name"]},
            "seq": seq,
            "sender": {"id": ann.id, "username": "ann", "display_name": null},
            "excerpt": "psst, a secret",
            "reason": "dm",
        })
    );

    // A room at its default level, mentions: a plain message is not
    // pushed (the next push is the mention), a long one is cut to 140.
    let general = s.room(&ann, "general").await;
    s.join(&bob, &general).await;
    say(&s, &ann, &general, "hello everyone").await;
    let long = format!("@bob {}", "é".repeat(300));
    let seq = say(&s, &ann, &general, &long).await;
    let got = push
        .next(&bobs, Duration::from_secs(10))
        .await
        .expect("a push");
    check_headers(&got, &push, &key, "high");
    let v = bobs.open(&got.body);
    assert_eq!(
        (v["seq"].as_u64(), &v["reason"]),
        (Some(seq), &json!("mention"))
    );
    assert_eq!(
        v["excerpt"].as_str().expect("well-formed"),
        long.chars().take(140).collect::<String>()
    );
    assert_eq!(v["room"]["name"], "general");

    // "all": every message, urgency normal.
    set_level(&s, &bob, &general, "all").await;
    let seq = say(&s, &ann, &general, "lunch?").await;
    let got = push
        .next(&bobs, Duration::from_secs(10))
        .await
        .expect("a push");
    check_headers(&got, &push, &key, "normal");
    let v = bobs.open(&got.body);
    assert_eq!(
        (v["seq"].as_u64(), &v["reason"]),
        (Some(seq), &json!("all"))
    );

    // "none": not even a mention; back to "mentions", the next one is.
    set_level(&s, &bob, &general, "none").await;
    say(&s, &ann, &general, "@bob are you there").await;
    say(&s, &ann, &general, "@room anyone").await;
    set_level(&s, &bob, &general, "mentions").await;
    let seq = say(&s, &ann, &general, "@room anyone at all").await;
    let v = push.expect(&bobs).await;
    assert_eq!(
        (v["seq"].as_u64(), &v["reason"]),
        (Some(seq), &json!("mention"))
    );

    // Ann's own messages never reached her.
    push.expect_none(&anns, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn nothing_is_pushed_while_the_user_has_an_active_socket() {
    let mut push = PushService::start().await;
    let s = TestServer::spawn_with(&env(&[("HEARTH_PUSH_AWAY_SECS", "5")])).await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let bobs = Browser::new(&push, "bob");
    subscribe(&s, &bob, &bobs).await;
    let direct = dm(&s, &ann, &bob).await;
    let mut ws = s.ws(&bob).await;
    ws.hello(None).await;
    // The socket said it is in focus (a pong proves the frame was read).
    let focus = |active: bool| json!({"type": "focus", "active": active});
    ws.send_json(focus(true)).await;
    ws.send_json(json!({"type": "ping"})).await;
    ws.expect("pong").await;
    say(&s, &ann, &direct, "one").await;
    // Idle past the window (5 s here, so a loaded machine's delays stay
    // well inside it): away although the socket is open and focused.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    let two = say(&s, &ann, &direct, "two").await;
    assert_eq!(push.expect(&bobs).await["seq"].as_u64(), Some(two));
    // Back in front of it: nothing; then the window loses focus: pushed.
    ws.send_json(focus(true)).await;
    ws.send_json(json!({"type": "ping"})).await;
    ws.expect("pong").await;
    say(&s, &ann, &direct, "three").await;
    ws.send_json(focus(false)).await;
    ws.send_json(json!({"type": "ping"})).await;
    ws.expect("pong").await;
    let four = say(&s, &ann, &direct, "four").await;
    assert_eq!(push.expect(&bobs).await["seq"].as_u64(), Some(four));
    push.expect_none(&bobs, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_gone_subscription_is_dropped_and_a_failing_one_retried() {
    let mut push = PushService::start().await;
    let s = TestServer::spawn_with(&env(&[])).await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let (gone, flaky) = (Browser::new(&push, "gone"), Browser::new(&push, "flaky"));
    subscribe(&s, &bob, &gone).await;
    subscribe(&s, &bob, &flaky).await;
    push.plan(&gone, &[Act::Answer(410)]);
    push.plan(&flaky, &[Act::Answer(500)]);
    let direct = dm(&s, &ann, &bob).await;

    let seq = say(&s, &ann, &direct, "hello").await;
    assert_eq!(push.expect(&gone).await["seq"].as_u64(), Some(seq));
    let first = push
        .next(&flaky, Duration::from_secs(10))
        .await
        .expect("tried");
    let again = push
        .next(&flaky, Duration::from_secs(10))
        .await
        .expect("retried");
    assert!(again.at.duration_since(first.at) >= Duration::from_millis(900));
    assert_eq!(flaky.open(&first.body), flaky.open(&again.body));

    let seq = say(&s, &ann, &direct, "still there?").await;
    assert_eq!(push.expect(&flaky).await["seq"].as_u64(), Some(seq));
    push.expect_none(&gone, Duration::from_millis(500)).await;
    let (_, metrics) = metrics_text(&s).await;
    for line in [
        "hearth_push_subscriptions_expired_total 1",
        "hearth_push_notifications_total{outcome=\"sent\"} 2",
        "hearth_push_notifications_total{outcome=\"failed\"} 0",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

async fn metrics_text(s: &TestServer) -> (u16, String) {
    let r = s.http.get(s.url("/metrics")).send().await.expect("metrics");
    (r.status().as_u16(), r.text().await.expect("text"))
}

#[tokio::test]
async fn a_hanging_push_service_delays_nobody_else_and_a_full_queue_collapses_per_room() {
    let mut push = PushService::start().await;
    let s = TestServer::spawn_with(&env(&[
        ("HEARTH_PUSH_TIMEOUT_SECS", "5"),
        ("HEARTH_PUSH_QUEUE", "4"),
    ]))
    .await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let carol = s.user("carol").await;
    let (bobs, carols) = (Browser::new(&push, "bob"), Browser::new(&push, "carol"));
    subscribe(&s, &bob, &bobs).await;
    subscribe(&s, &carol, &carols).await;
    let busy = s.room(&ann, "busy").await;
    let other = s.room(&ann, "other").await;
    for (user, room) in [(&bob, &busy), (&carol, &busy), (&bob, &other)] {
        s.join(user, room).await;
        set_level(&s, user, room, "all").await;
    }
    push.plan(&carols, &[Act::Hang(Duration::from_secs(30))]);
    push.plan(
        &bobs,
        &[Act::Answer(201), Act::Hang(Duration::from_secs(3))],
    );

    // Carol's push service hangs; Bob's push comes at once all the same.
    let sent = Instant::now();
    let first = say(&s, &ann, &busy, "first").await;
    let got = push
        .next(&bobs, Duration::from_secs(10))
        .await
        .expect("a push");
    assert!(
        got.at.duration_since(sent) < Duration::from_secs(3),
        "bob waited {:?}",
        got.at.duration_since(sent)
    );
    assert_eq!(bobs.open(&got.body)["seq"].as_u64(), Some(first));
    push.next(&carols, Duration::from_secs(5))
        .await
        .expect("carol's push tried");

    // Bob's service now takes 3 s for one push: twelve more messages wait
    // in a queue of four, which keeps the newest of each room.
    let second = say(&s, &ann, &busy, "second").await;
    let slow = push
        .next(&bobs, Duration::from_secs(10))
        .await
        .expect("a push");
    assert_eq!(bobs.open(&slow.body)["seq"].as_u64(), Some(second));
    let mut last = 0;
    for i in 0..10 {
        last = say(&s, &ann, &busy, &format!("burst {i}")).await;
    }
    let aside = say(&s, &ann, &other, "elsewhere").await;
    let mut heard = Vec::new();
    while let Some(got) = push.next(&bobs, Duration::from_secs(6)).await {
        let v = bobs.open(&got.body);
        heard.push((
            v["room"]["id"].as_str().expect("well-formed").to_string(),
            v["seq"].as_u64().expect("well-formed"),
        ));
    }
    assert!(heard.len() < 11, "collapsed: {heard:?}");
    assert_eq!(
        heard.iter().rev().find(|(r, _)| *r == busy).map(|x| x.1),
        Some(last),
        "{heard:?}"
    );
    assert!(heard.contains(&(other.clone(), aside)), "{heard:?}");
    let (_, metrics) = metrics_text(&s).await;
    let dropped = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hearth_push_notifications_total{outcome=\"dropped\"} "))
        .and_then(|n| n.parse::<u64>().ok())
        .expect("dropped count");
    // Carol's queue (her service hung) collapsed too.
    assert!(dropped as usize >= 11 - heard.len(), "{dropped} {heard:?}");
}

#[tokio::test]
async fn reading_on_another_device_clears_the_notification() {
    let mut push = PushService::start().await;
    let s = TestServer::spawn_with(&env(&[("HEARTH_PUSH_EXCERPT", "false")])).await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let bobs = Browser::new(&push, "bob");
    subscribe(&s, &bob, &bobs).await;
    let direct = dm(&s, &ann, &bob).await;
    let path = format!("/api/v1/rooms/{direct}/read");
    let read = |seq: u64| s.request("POST", &path, &bob.token, json!({ "seq": seq }));

    let one = say(&s, &ann, &direct, "are you up?").await;
    let v = push.expect(&bobs).await;
    assert_eq!(
        v["excerpt"],
        Value::Null,
        "no excerpt when push_excerpt is off"
    );
    assert_eq!(read(one).await.status, 204);
    let got = push
        .next(&bobs, Duration::from_secs(10))
        .await
        .expect("a clear");
    check_headers(&got, &push, &server_key(&s).await, "normal");
    assert_eq!(
        bobs.open(&got.body),
        json!({"type": "clear", "room": direct, "seq": one})
    );
    // A second clear for the room waits out the first by a few seconds.
    let two = say(&s, &ann, &direct, "hello?").await;
    assert_eq!(push.expect(&bobs).await["seq"].as_u64(), Some(two));
    assert_eq!(read(two).await.status, 204);
    let later = push
        .next(&bobs, Duration::from_secs(10))
        .await
        .expect("a clear");
    assert_eq!(
        bobs.open(&later.body),
        json!({"type": "clear", "room": direct, "seq": two})
    );
    assert!(later.at.duration_since(got.at) >= Duration::from_millis(2500));
    // Reading what was never pushed clears nothing.
    assert_eq!(read(two).await.status, 204);
    push.expect_none(&bobs, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn subscriptions_are_checked_and_end_with_their_session() {
    let mut push = PushService::start().await;
    let s = TestServer::spawn_with(&env(&[("HEARTH_PUSH_MAX_SUBSCRIPTIONS", "2")])).await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let laptop = s.login("bob", "password-bob").await;
    let (phone, desk) = (Browser::new(&push, "phone"), Browser::new(&push, "desk"));
    // Idempotent per endpoint.
    subscribe(&s, &bob, &phone).await;
    subscribe(&s, &bob, &phone).await;
    subscribe(&s, &laptop, &desk).await;
    let post = |body: Value| s.request("POST", "/api/v1/push/subscriptions", &bob.token, body);
    post(Browser::new(&push, "third").subscription())
        .await
        .assert_error(409, "too_many_push_subscriptions");
    let mut wrong = phone.subscription();
    wrong["endpoint"] = json!("http://push.example.net/x");
    post(wrong).await.assert_error(400, "invalid_push_endpoint");
    let mut huge = phone.subscription();
    huge["endpoint"] = json!(format!("https://push.example.net/{}", "a".repeat(2000)));
    post(huge)
        .await
        .assert_error(413, "push_subscription_too_large");
    let mut short = phone.subscription();
    short["keys"]["auth"] = json!(URL_SAFE_NO_PAD.encode([7u8; 10]));
    post(short).await.assert_error(400, "invalid_push_keys");
    let mut off_curve = phone.subscription();
    let mut point = vec![4u8];
    point.extend([0u8; 64]);
    off_curve["keys"]["p256dh"] = json!(URL_SAFE_NO_PAD.encode(point));
    post(off_curve).await.assert_error(400, "invalid_push_keys");
    let (status, _) = s
        .post("/api/v1/push/subscriptions", None, phone.subscription())
        .await;
    assert_eq!(status, 401);

    let direct = dm(&s, &ann, &bob).await;
    let seq = say(&s, &ann, &direct, "one").await;
    assert_eq!(push.expect(&phone).await["seq"].as_u64(), Some(seq));
    assert_eq!(push.expect(&desk).await["seq"].as_u64(), Some(seq));

    // The laptop logs out: its subscription ends with its session.
    let (status, _) = s
        .post("/api/v1/logout", Some(&laptop.token), json!({}))
        .await;
    assert_eq!(status, 204);
    let seq = say(&s, &ann, &direct, "two").await;
    assert_eq!(push.expect(&phone).await["seq"].as_u64(), Some(seq));
    push.expect_none(&desk, Duration::from_millis(500)).await;

    // Unsubscribed: nothing more.
    let (status, _) = s
        .delete(
            "/api/v1/push/subscriptions",
            Some(&bob.token),
            json!({"endpoint": phone.endpoint}),
        )
        .await;
    assert_eq!(status, 204);
    say(&s, &ann, &direct, "three").await;
    push.expect_none(&phone, Duration::from_millis(800)).await;
}

#[tokio::test]
async fn a_subscription_ends_when_its_session_expires_unused() {
    let mut push = PushService::start().await;
    let s = TestServer::spawn_with(&env(&[("HEARTH_IDLE_SECS", "2")])).await;
    let bob = s.user("bob").await;
    let bobs = Browser::new(&push, "bob");
    subscribe(&s, &bob, &bobs).await;
    // Bob's session idles out; pushes are no use of it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let ann = s.user("ann").await;
    let direct = dm(&s, &ann, &bob).await;
    say(&s, &ann, &direct, "still there?").await;
    push.expect_none(&bobs, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn the_key_and_subscriptions_survive_a_restart_and_a_backup_and_restore() {
    let mut push = PushService::start().await;
    let mut s = TestServer::spawn_with(&env(&[])).await;
    let key = server_key(&s).await;
    let raw = URL_SAFE_NO_PAD.decode(&key).expect("base64url");
    assert_eq!((raw.len(), raw[0]), (65, 4), "an uncompressed P-256 point");
    p256::PublicKey::from_sec1_bytes(&raw).expect("on the curve");
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let bobs = Browser::new(&push, "bob");
    subscribe(&s, &bob, &bobs).await;
    let direct = dm(&s, &ann, &bob).await;
    s.terminate();
    s.restart();
    assert_eq!(server_key(&s).await, key);
    let seq = say(&s, &ann, &direct, "after a restart").await;
    assert_eq!(push.expect(&bobs).await["seq"].as_u64(), Some(seq));

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("backup");
    // `verify` checks subscriptions too; restore runs it on what it wrote.
    hearth(&s.data_dir(), &["verify"]);
    hearth(&s.data_dir(), &["backup", file.to_str().expect("path")]);
    s.terminate();
    std::fs::remove_dir_all(s.data_dir()).expect("wipe the data directory");
    hearth(&s.data_dir(), &["restore", file.to_str().expect("path")]);
    s.restart();
    assert_eq!(
        server_key(&s).await,
        key,
        "the restored server signs as before"
    );
    let seq = say(&s, &ann, &direct, "after the restore").await;
    let got = push
        .next(&bobs, Duration::from_secs(10))
        .await
        .expect("a push");
    check_headers(&got, &push, &key, "high");
    assert_eq!(bobs.open(&got.body)["seq"].as_u64(), Some(seq));
}

fn hearth(data: &Path, args: &[&str]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("HEARTH_CONFIG")
        .output()
        .expect("run hearth");
    assert!(out.status.success(), "hearth {args:?}: {out:?}");
}
