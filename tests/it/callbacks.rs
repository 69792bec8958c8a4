//! Outgoing webhooks: a bot's callback gets the messages meant for it as
//! signed POSTs, in order, again after failures, never past the allowlist,
//! and its answers become the bot's replies. The receivers are plain HTTP
//! servers this test runs on loopback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::harness::{TestServer, User};

/// What a receiver does with the next requests.
#[derive(Clone)]
enum Behaviour {
    /// Answer 200 with this body (JSON) or an empty one.
    Ok(Option<Value>),
    /// Answer with this status, `n` times, then behave as the next one.
    Fail(u16, usize),
    /// Answer 302 to this location, always.
    Redirect(String),
}

/// A request as received.
#[derive(Debug, Clone)]
struct Got {
    headers: Vec<(String, String)>,
    raw: Vec<u8>,
    body: Value,
    /// Whether it was answered with a 2xx.
    accepted: bool,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }
}

struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Got>>>,
    plan: Arc<Mutex<Vec<Behaviour>>>,
}

impl Receiver {
    /// Starts a receiver that follows `plan` (its last step repeats).
    async fn start(plan: Vec<Behaviour>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let got = Arc::new(Mutex::new(Vec::new()));
        let plan = Arc::new(Mutex::new(plan));
        let (g, p) = (got.clone(), plan.clone());
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let (g, p) = (g.clone(), p.clone());
                tokio::spawn(async move {
                    let Some((headers, raw)) = read_request(&mut sock).await else {
                        return;
                    };
                    let step = {
                        let mut plan = p.lock().expect("receiver state");
                        let step = plan[0].clone();
                        let more = plan.len() > 1;
                        match &mut plan[0] {
                            Behaviour::Fail(_, n) if *n > 1 => *n -= 1,
                            Behaviour::Fail(..) if more => {
                                plan.remove(0);
                            }
                            _ => {}
                        }
                        step
                    };
                    let (status, extra, body) = match step {
                        Behaviour::Ok(reply) => (
                            200,
                            String::new(),
                            reply.map(|v| v.to_string()).unwrap_or_default(),
                        ),
                        Behaviour::Fail(status, _) => (status, String::new(), String::new()),
                        Behaviour::Redirect(to) => {
                            (302, format!("Location: {to}\r\n"), String::new())
                        }
                    };
                    g.lock().expect("receiver state").push(Got {
                        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
                        headers,
                        raw,
                        accepted: (200..300).contains(&status),
                    });
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(answer.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Receiver { url, got, plan }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().expect("receiver state").clone()
    }

    fn then(&self, b: Behaviour) {
        *self.plan.lock().expect("receiver state") = vec![b];
    }

    /// Waits (up to 20 s) until `done` holds for what was received.
    async fn until(&self, what: &str, done: impl Fn(&[Got]) -> bool) -> Vec<Got> {
        for _ in 0..200 {
            let got = self.got();
            if done(&got) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("receiver never saw {what}: {:?}", self.got());
    }
}

async fn read_request(
    sock: &mut tokio::net::TcpStream,
) -> Option<(Vec<(String, String)>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((headers, body))
}

/// A bot in `room` (added by its owner), with its callback at `url`.
async fn bot_with_callback(
    s: &TestServer,
    admin: &User,
    room: &str,
    name: &str,
    url: &str,
    all: bool,
) -> (User, String) {
    let (status, made) = s
        .post(
            "/api/v1/bots",
            Some(&admin.token),
            json!({"username": name}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let bot = User {
        id: made["user"]["id"].as_str().expect("bot id").to_string(),
        name: name.to_string(),
        token: made["token"].as_str().expect("bot token").to_string(),
    };
    let r = s
        .request(
            "POST",
            &format!("/api/v1/rooms/{room}/members"),
            &admin.token,
            json!({"user": bot.id}),
        )
        .await;
    assert!(r.status < 300, "{}", r.body);
    let r = s
        .request(
            "PUT",
            &format!("/api/v1/bots/{}/callback", bot.id),
            &admin.token,
            json!({"url": url, "all": all}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let secret = r.body["callback"]["secret"]
        .as_str()
        .expect("signing secret")
        .to_string();
    (bot, secret)
}

const ENV: &[(&str, &str)] = &[
    ("HEARTH_WEBHOOK_ALLOW", "http://127.0.0.1:"),
    ("HEARTH_WEBHOOK_RETRY_MAX_SECS", "1"),
];

#[tokio::test]
async fn a_mention_reaches_the_callback_signed_and_its_answer_is_the_bots_reply() {
    let s = TestServer::spawn_with(ENV).await;
    let admin = s.user("admin").await;
    let room = s.room(&admin, "ops").await;
    let rx = Receiver::start(vec![Behaviour::Ok(Some(json!({"body": "pong"})))]).await;
    let (bot, secret) = bot_with_callback(&s, &admin, &room, "echobot", &rx.url, false).await;

    s.say(&admin, &room, "nothing for the bot", None).await;
    let ping = s.say(&admin, &room, "@echobot ping", None).await;
    let got = rx.until("the mention", |g| !g.is_empty()).await;
    let g = &got[0];
    assert_eq!(g.body["type"], "message");
    assert_eq!(g.body["message"]["body"], "@echobot ping");
    assert_eq!(g.body["bot"]["username"], "echobot");
    assert_eq!(g.body["room"]["name"], "ops");
    assert_eq!(
        g.header("x-hearth-delivery"),
        format!("{room}:{}", ping["seq"])
    );
    // The signature is HMAC-SHA256 over "TIMESTAMP." and the body.
    let ts = g.header("x-hearth-timestamp");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(&g.raw);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(g.header("x-hearth-signature"), format!("v1={want}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(ts.parse::<u64>().unwrap()) < 60, "{ts}");

    // The answer came back as the bot's reply to the mention.
    let mut reply = None;
    for _ in 0..50 {
        reply = s
            .history(&admin, &room)
            .await
            .into_iter()
            .find(|m| m["author"]["id"] == bot.id.as_str());
        if reply.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reply = reply.expect("the bot replied");
    assert_eq!(reply["body"], "pong");
    assert_eq!(reply["reply_to"]["seq"], ping["seq"]);
    // Its own reply is not sent back to it; only the one mention was.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rx.got().len(), 1, "{:?}", rx.got());
}

#[tokio::test]
async fn a_failing_receiver_gets_every_message_in_order_once_it_recovers_and_after_a_restart() {
    let mut s = TestServer::spawn_with(ENV).await;
    let admin = s.user("admin").await;
    let room = s.room(&admin, "firehose").await;
    let rx = Receiver::start(vec![Behaviour::Fail(500, 4), Behaviour::Ok(None)]).await;
    bot_with_callback(&s, &admin, &room, "logger", &rx.url, true).await;
    for i in 1..=5 {
        s.say(&admin, &room, &format!("line {i}"), None).await;
    }
    let got = rx
        .until("five accepted deliveries", |g| {
            g.iter().filter(|x| x.accepted).count() >= 5
        })
        .await;
    let accepted: Vec<_> = got
        .iter()
        .filter(|g| g.accepted)
        .map(|g| g.body["message"]["body"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(accepted, ["line 1", "line 2", "line 3", "line 4", "line 5"]);
    // The failures were all tries of the first message, not skips.
    assert!(got[..4]
        .iter()
        .all(|g| !g.accepted && g.body["message"]["body"] == "line 1"));

    // Deliveries resume after a restart, where they stopped.
    s.terminate();
    s.restart();
    s.say(&admin, &room, "line 6", None).await;
    let got = rx
        .until("the sixth", |g| {
            g.iter().filter(|x| x.accepted).count() >= 6
        })
        .await;
    let last = got.iter().rfind(|g| g.accepted).unwrap();
    assert_eq!(last.body["message"]["body"], "line 6");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rx.got().iter().filter(|g| g.accepted).count(), 6);
}

#[tokio::test]
async fn callbacks_stay_inside_the_allowlist_and_redirects_are_not_followed() {
    let s = TestServer::spawn_with(ENV).await;
    let admin = s.user("admin").await;
    let ann = s.user("ann").await;
    let room = s.room(&admin, "alerts").await;
    let (status, made) = s
        .post(
            "/api/v1/bots",
            Some(&admin.token),
            json!({"username": "pager"}),
        )
        .await;
    assert_eq!(status, 201);
    let bot = made["user"]["id"].as_str().unwrap().to_string();
    for url in [
        "http://example.com/hook",
        "https://127.0.0.1:9/x",
        "http://127.0.0.10:80/x",
        "ftp://127.0.0.1:21/",
        "http://user@127.0.0.1:9/",
    ] {
        let r = s
            .request(
                "PUT",
                &format!("/api/v1/bots/{bot}/callback"),
                &admin.token,
                json!({"url": url}),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some("invalid_callback")),
            "{url}"
        );
    }
    // Only administrators set callbacks.
    let r = s
        .request(
            "PUT",
            &format!("/api/v1/bots/{bot}/callback"),
            &ann.token,
            json!({"url": "http://127.0.0.1:9/x"}),
        )
        .await;
    assert_eq!(r.status, 403);

    // A receiver that redirects elsewhere: the redirect is a failure, the
    // place it points at never hears anything, and after ten failures in
    // a row the deliveries are parked.
    let elsewhere = Receiver::start(vec![Behaviour::Ok(None)]).await;
    let rx = Receiver::start(vec![Behaviour::Redirect(elsewhere.url.clone())]).await;
    let r = s
        .request(
            "POST",
            &format!("/api/v1/rooms/{room}/members"),
            &admin.token,
            json!({"user": bot}),
        )
        .await;
    assert!(r.status < 300);
    let r = s
        .request(
            "PUT",
            &format!("/api/v1/bots/{bot}/callback"),
            &admin.token,
            json!({"url": rx.url, "all": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    s.say(&admin, &room, "disk full", None).await;
    let mut parked = Value::Null;
    for _ in 0..300 {
        let r = s
            .request(
                "GET",
                &format!("/api/v1/bots/{bot}/callback"),
                &admin.token,
                json!({}),
            )
            .await;
        parked = r.body["callback"]["parked"].clone();
        if parked.is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        parked.as_str().is_some_and(|w| w.contains("302")),
        "{parked}"
    );
    assert_eq!(rx.got().len(), 10);
    assert!(elsewhere.got().is_empty());

    // Setting the callback again resumes, from the same message.
    rx.then(Behaviour::Ok(None));
    let r = s
        .request(
            "PUT",
            &format!("/api/v1/bots/{bot}/callback"),
            &admin.token,
            json!({"url": rx.url, "all": true}),
        )
        .await;
    assert_eq!(r.status, 200);
    let got = rx
        .until("the resumed delivery", |g| g.iter().any(|x| x.accepted))
        .await;
    assert_eq!(got.last().unwrap().body["message"]["body"], "disk full");
}

/// `hearth backup` then `hearth restore` into the server's own data
/// directory, emptied (the server stopped), then a start on it.
fn backup_and_restore_in_place(s: &mut TestServer) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("backup.hearth");
    let data = s.data_dir();
    let hearth = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(args)
            .arg("--data")
            .arg(&data)
            .env_remove("HEARTH_CONFIG")
            .output()
            .expect("run hearth");
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    hearth(&["backup", file.to_str().expect("utf-8 path")]);
    s.terminate();
    std::fs::remove_dir_all(&data).expect("empty the data directory");
    hearth(&["restore", file.to_str().expect("utf-8 path")]);
    hearth(&["verify"]);
    s.restart();
}

#[tokio::test]
async fn a_restored_backup_keeps_read_cursors_notification_levels_hooks_and_callbacks() {
    let mut s = TestServer::spawn_with(ENV).await;
    let admin = s.user("admin").await;
    let bob = s.user("bob").await;
    let room = s.room(&admin, "ops").await;
    s.join(&bob, &room).await;
    let rx = Receiver::start(vec![Behaviour::Ok(None)]).await;
    let (bot, _) = bot_with_callback(&s, &admin, &room, "echobot", &rx.url, true).await;
    for i in 0..3 {
        s.say(&admin, &room, &format!("m{i}"), None).await;
    }
    let r = s
        .request(
            "POST",
            &format!("/api/v1/rooms/{room}/read"),
            &bob.token,
            json!({"seq": 2}),
        )
        .await;
    assert!(r.status < 300, "{}", r.body);
    let r = s
        .request(
            "PUT",
            &format!("/api/v1/rooms/{room}/notifications"),
            &bob.token,
            json!({"level": "none"}),
        )
        .await;
    assert!(r.status < 300, "{}", r.body);
    let (status, made) = s
        .post(
            &format!("/api/v1/rooms/{room}/hooks"),
            Some(&admin.token),
            json!({"name": "Grafana"}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let hook = made["url"].as_str().expect("url").to_string();
    // Cursors are saved within a second; the backup reads the store.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    backup_and_restore_in_place(&mut s);

    let bob = s.login("bob", "password-bob").await;
    let (status, rooms) = s.get("/api/v1/rooms", Some(&bob.token)).await;
    assert_eq!(status, 200, "{rooms}");
    let listed = rooms["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .find(|r| r["id"] == room.as_str())
        .expect("bob's room")
        .clone();
    assert_eq!(listed["read_seq"], 2, "{listed}");
    assert_eq!(listed["notifications"], "none", "{listed}");
    let (status, posted) = s.post(&hook, None, json!({"body": "from the hook"})).await;
    assert_eq!(status, 201, "the hook survived the restore: {posted}");
    let admin = s.login("admin", "password-admin").await;
    let r = s
        .request(
            "GET",
            &format!("/api/v1/bots/{}/callback", bot.id),
            &admin.token,
            json!(null),
        )
        .await;
    assert_eq!(r.body["callback"]["url"], rx.url.as_str(), "{}", r.body);
}
