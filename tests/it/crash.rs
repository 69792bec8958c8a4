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

use std::collections::HashMap;
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
    // Per room, the seq up to which the log has been read and checked.
    let mut checked: HashMap<String, u64> = HashMap::new();
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
        // A resend of something acknowledged gets the same seq back: the
        // oldest one well inside the room's dedup window (the newest
        // 16,384 events by default; half of it, for margin).
        let mut heads: HashMap<&str, u64> = HashMap::new();
        for (room, seq) in ledger.values() {
            let h = heads.entry(room.as_str()).or_default();
            *h = (*h).max(*seq);
        }
        let within = |room: &str, seq: u64| seq + 8_192 > heads[room];
        if let Some((cid, (room, seq))) = ledger
            .iter()
            .filter(|(c, (room, seq))| c.starts_with('c') && within(room, *seq))
            .min_by_key(|(_, (_, seq))| *seq)
        {
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
        let full = cycle % 10 == 9 || cycle + 1 == cycles;
        let context = format!("cycle {cycle} (seed {seed})");
        verify(
            &s,
            &alice,
            &rooms,
            &ledger,
            &mut checked,
            full,
            &mut rng,
            &context,
        )
        .await;
        if cycle % 10 == 9 {
            println!(
                "  {} cycles, {} messages acknowledged, {:.0} s",
                cycle + 1,
                ledger.len(),
                started.elapsed().as_secs_f64()
            );
        }
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

/// Checks each room against the ledger: the log is exactly seqs 1..=n with
/// n the number of client_ids acknowledged in it, and every acknowledged
/// client_id sits at its seq. Reading the whole log every cycle would grow
/// with the square of the run, so most cycles read what is new since
/// `checked` plus one random older page; every tenth cycle, and the last,
/// read it all.
#[allow(clippy::too_many_arguments)]
async fn verify(
    s: &TestServer,
    reader: &User,
    rooms: &[String],
    ledger: &HashMap<String, (String, u64)>,
    checked: &mut HashMap<String, u64>,
    full: bool,
    rng: &mut StdRng,
    context: &str,
) {
    let mut at: HashMap<(&str, u64), &str> = HashMap::with_capacity(ledger.len());
    let mut count: HashMap<&str, u64> = HashMap::new();
    for (cid, (room, seq)) in ledger {
        let clash = at.insert((room.as_str(), *seq), cid.as_str());
        assert!(
            clash.is_none(),
            "{context}: two acks for seq {seq} of {room}"
        );
        *count.entry(room.as_str()).or_default() += 1;
    }
    for room in rooms {
        let done = checked.get(room).copied().unwrap_or(0);
        let from = if full { 0 } else { done };
        let mut expect_next = from + 1;
        let check_page = |page: &[Value], first: u64| {
            for (want, m) in (first..).zip(page) {
                let seq = m["seq"].as_u64().expect("seq");
                assert_eq!(seq, want, "{context}: a gap or reordering in room {room}");
                let cid = m["client_id"].as_str().expect("client_id");
                assert_eq!(
                    at.get(&(room.as_str(), seq)).copied(),
                    Some(cid),
                    "{context}: seq {seq} of {room} is not what was acknowledged for it"
                );
            }
        };
        let tail = history_after(s, reader, room, from, usize::MAX).await;
        check_page(&tail, expect_next);
        expect_next += tail.len() as u64;
        let head = expect_next - 1;
        assert_eq!(
            head,
            count.get(room.as_str()).copied().unwrap_or(0),
            "{context}: room {room} holds {head} messages, {} were acknowledged \
             (lost or duplicated messages)",
            count.get(room.as_str()).copied().unwrap_or(0)
        );
        if !full && done > 0 {
            let after = rng.gen_range(0..done);
            let page = history_after(s, reader, room, after, 1).await;
            check_page(&page, after + 1);
        }
        checked.insert(room.clone(), head);
    }
}

/// Messages of `room` after seq `after`, at most `pages` pages of 200.
async fn history_after(
    s: &TestServer,
    reader: &User,
    room: &str,
    mut after: u64,
    pages: usize,
) -> Vec<Value> {
    let mut all = Vec::new();
    for _ in 0..pages {
        let (status, body) = s
            .get(
                &format!("/api/v1/rooms/{room}/messages?limit=200&after={after}"),
                Some(&reader.token),
            )
            .await;
        assert_eq!(status, 200, "history: {body}");
        let page = body["messages"].as_array().expect("messages").clone();
        let Some(last) = page.last() else { break };
        after = last["seq"].as_u64().expect("seq");
        all.extend(page);
    }
    all
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

// ---- Storage trouble: a newer, damaged or full data directory ----

/// What became of a `hearth serve` that was expected to refuse to start.
struct Refusal {
    /// The exit status, or `None` if it was still running (and was killed).
    status: Option<std::process::ExitStatus>,
    /// The address it listened on, if it started serving after all.
    started: Option<String>,
    /// If it started: could Alice (password `password-alice`) still log in?
    alice_logs_in: Option<bool>,
    stderr: String,
}

/// Runs `hearth serve` on `data` until it exits, starts serving (then it
/// is probed for Alice's account and killed) or `wait` passes.
async fn serve_once(data: &std::path::Path, wait: Duration) -> Refusal {
    use std::io::{BufRead, Read};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("HEARTH_LOG_LEVEL", "warn")
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hearth");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(addr) = line.strip_prefix("listening on http://") {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let until = Instant::now() + wait;
    let mut started = None;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if let Ok(addr) = rx.try_recv() {
            started = Some(addr);
        }
        if started.is_some() || Instant::now() > until {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let alice_logs_in = match &started {
        None => None,
        Some(addr) => {
            let resp = reqwest::Client::new()
                .post(format!("http://{addr}/api/v1/login"))
                .json(&json!({"login": "alice", "password": "password-alice"}))
                .send()
                .await;
            Some(resp.is_ok_and(|r| r.status().as_u16() == 200))
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err);
    Refusal {
        status,
        started,
        alice_logs_in,
        stderr: err,
    }
}

impl Refusal {
    /// Exited on its own, non-zero, without a panic, saying `words`.
    #[track_caller]
    fn assert_refused(&self, case: &str, words: &[&str]) {
        assert!(
            self.started.is_none(),
            "{case}: it started serving on that directory instead of refusing it \
             (Alice's account still there: {:?})",
            self.alice_logs_in
        );
        let status = self
            .status
            .unwrap_or_else(|| panic!("{case}: still running after the wait: {}", self.stderr));
        assert!(
            !status.success(),
            "{case}: exited 0; stderr: {}",
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "{case}: a panic instead of a clear refusal:\n{}",
            self.stderr
        );
        for w in words {
            assert!(
                self.stderr.to_lowercase().contains(w),
                "{case}: the message should say {w:?}:\n{}",
                self.stderr
            );
        }
    }
}

#[tokio::test]
async fn a_data_directory_from_a_newer_schema_is_refused() {
    use hearth::config::Durability;
    use hearth::storage::Store;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    drop(Store::open(&data, 8 << 20, Durability::Flush).expect("a fresh store"));
    {
        // The store's background threads let go of sled's lock shortly
        // after it is dropped.
        let mut opened = sled::open(data.join("db"));
        for _ in 0..50 {
            if opened.is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            opened = sled::open(data.join("db"));
        }
        let db = opened.expect("open with sled");
        db.open_tree("meta")
            .expect("meta")
            .insert("schema_version", &99u32.to_be_bytes())
            .expect("insert");
        db.flush().expect("flush");
    }
    let r = serve_once(&data, Duration::from_secs(10)).await;
    r.assert_refused("schema 99", &["newer", "99"]);
    println!("newer schema refused with: {}", r.stderr.trim());
}

/// A data directory with Alice, a room and 300 messages, cleanly stopped.
async fn pristine_data() -> (TestServer, std::path::PathBuf) {
    let mut s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    s.post_many(&alice, &room, 300).await;
    let (status, _) = s.terminate();
    assert!(status.success());
    let data = s.data_dir();
    (s, data)
}

type Damage = Box<dyn Fn(&std::path::Path, &mut StdRng)>;

/// Starts the binary on a damaged copy of `pristine` for each case.
async fn try_damage(
    pristine: &std::path::Path,
    cases: Vec<(&'static str, Damage)>,
) -> Vec<(&'static str, Refusal)> {
    let seed = clock_seed();
    println!("damage seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut outcomes = Vec::new();
    for (case, damage) in cases {
        let copy = tempfile::tempdir().expect("temp dir");
        let data = copy.path().join("data");
        copy_dir(pristine, &data);
        damage(&data.join("db"), &mut rng);
        let r = serve_once(&data, Duration::from_secs(10)).await;
        println!(
            "{case}: exit {:?}, serving {}, Alice's account there {:?}, stderr: {}",
            r.status.and_then(|s| s.code()),
            r.started.is_some(),
            r.alice_logs_in,
            r.stderr.trim()
        );
        outcomes.push((case, r));
    }
    outcomes
}

fn overwrite_log_with_random_bytes() -> Damage {
    Box::new(|db, rng| {
        let len = std::fs::metadata(db.join("db")).expect("db").len() as usize;
        let junk: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        std::fs::write(db.join("db"), junk).expect("write");
    })
}

fn zero_first_page() -> Damage {
    Box::new(|db, _| {
        let mut bytes = std::fs::read(db.join("db")).expect("read");
        let n = bytes.len().min(4096);
        bytes[..n].fill(0);
        std::fs::write(db.join("db"), bytes).expect("write");
    })
}

#[tokio::test]
async fn a_damaged_data_directory_never_panics_or_hangs() {
    let (_s, pristine) = pristine_data().await;
    let outcomes = try_damage(
        &pristine,
        vec![
            (
                "the config file replaced with garbage",
                Box::new(|db: &std::path::Path, _: &mut StdRng| {
                    std::fs::write(db.join("conf"), b"\x00garbage\xff").expect("write")
                }) as Damage,
            ),
            (
                "the whole log overwritten with random bytes",
                overwrite_log_with_random_bytes(),
            ),
            ("the log's first page zeroed", zero_first_page()),
            (
                "random bytes flipped through the log",
                Box::new(|db: &std::path::Path, rng: &mut StdRng| {
                    let mut bytes = std::fs::read(db.join("db")).expect("read");
                    for _ in 0..64 {
                        let i = rng.gen_range(0..bytes.len());
                        bytes[i] ^= 0xff;
                    }
                    std::fs::write(db.join("db"), bytes).expect("write");
                }),
            ),
            (
                "the log cut in half",
                Box::new(|db: &std::path::Path, _: &mut StdRng| {
                    let bytes = std::fs::read(db.join("db")).expect("read");
                    std::fs::write(db.join("db"), &bytes[..bytes.len() / 2]).expect("write");
                }),
            ),
        ],
    )
    .await;
    for (case, r) in &outcomes {
        assert!(
            !r.stderr.contains("panicked"),
            "{case}: a panic:\n{}",
            r.stderr
        );
        assert!(
            r.status.is_some() || r.started.is_some(),
            "{case}: neither refused nor started within 10 s (hung)"
        );
    }
    // A damaged config file is named and refused.
    outcomes[0]
        .1
        .assert_refused(outcomes[0].0, &["data directory", "damaged"]);
}

#[tokio::test]
async fn a_garbage_database_is_refused_not_opened_empty() {
    let (_s, pristine) = pristine_data().await;
    let outcomes = try_damage(
        &pristine,
        vec![
            (
                "the whole log overwritten with random bytes",
                overwrite_log_with_random_bytes(),
            ),
            ("the log's first page zeroed", zero_first_page()),
        ],
    )
    .await;
    for (case, r) in &outcomes {
        r.assert_refused(case, &["data directory", "damaged"]);
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A size-limited tmpfs mounted over a directory, unmounted on drop.
struct SmallDisk {
    at: std::path::PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `mib` MiB at `at`, keeping what `at` held; `Err`
    /// says why it could not (no privilege, no tmpfs), for a skip message.
    fn mount_over(at: &std::path::Path, mib: u32) -> Result<SmallDisk, String> {
        let keep = tempfile::tempdir().map_err(|e| e.to_string())?;
        copy_dir(at, keep.path());
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        copy_dir(keep.path(), at);
        Ok(SmallDisk {
            at: at.to_path_buf(),
        })
    }

    /// Fills the disk to the last byte with a filler file.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.at.join("filler")).expect("filler");
        let block = vec![0xaau8; 64 * 1024];
        for _ in 0..100_000 {
            if f.write_all(&block).is_err() {
                break;
            }
        }
        let small = [0u8; 512];
        for _ in 0..1000 {
            if f.write_all(&small).is_err() {
                break;
            }
        }
    }

    fn free(&self) {
        let _ = std::fs::remove_file(self.at.join("filler"));
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.at)
            .status();
    }
}

/// A server whose data directory sits on a 16 MiB tmpfs that is then
/// filled, after checking sends fail cleanly: every send gets an answer,
/// failures are `storage_failed` naming the send (no ack), REST says 503,
/// and the server stays up. `None` (with the reason printed) where this
/// machine cannot mount a tmpfs.
struct FullDisk {
    s: TestServer,
    disk: SmallDisk,
    alice: User,
    room: String,
    /// client_ids whose sends failed on the full disk.
    failed: Vec<String>,
}

async fn fill_the_disk_under_a_server(test: &str) -> Option<FullDisk> {
    // Every failed write is logged as an error; keep the test output readable.
    let mut s = TestServer::spawn_with(&[("HEARTH_LOG_LEVEL", "off")]).await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    s.say(&alice, &room, "before", Some("before")).await;
    s.terminate();
    let disk = match SmallDisk::mount_over(&s.data_dir(), 16) {
        Ok(d) => d,
        Err(why) => {
            println!("SKIPPED {test}: cannot mount a tmpfs here ({why})");
            return None;
        }
    };
    s.restart();
    s.say(&alice, &room, "on the small disk", Some("small"))
        .await;
    let mut ws = s.ws(&alice).await;
    ws.hello(None).await;

    disk.fill();
    // What the database had already written to disk may take a few dozen
    // messages more; then sends fail.
    let mut failed = Vec::new();
    let mut acked_on_full = 0;
    for i in 0..2000 {
        let cid = format!("full-{i}");
        ws.send(&room, &cid, &"x".repeat(3000)).await;
        let f = loop {
            let f = ws.next().await.expect("an answer to every send");
            if f["type"] == "ack" || f["type"] == "error" {
                break f;
            }
        };
        if f["type"] == "error" {
            assert_eq!(f["code"], "storage_failed", "{f}");
            assert_eq!(f["client_id"], cid, "{f}");
            failed.push(cid);
            if failed.len() == 5 {
                break;
            }
        } else {
            assert_eq!(f["type"], "ack", "{f}");
            acked_on_full += 1;
        }
    }
    println!("full disk: {acked_on_full} sends acked before the first failure");
    assert!(
        !failed.is_empty(),
        "2000 sends of 3 KB onto a full 16 MiB disk all succeeded"
    );
    let reply = s
        .call("POST", &format!("/api/v1/rooms/{room}/messages"))
        .auth(crate::harness::Auth::Bearer(&alice.token))
        .json(json!({"body": "rest on a full disk", "client_id": "full-rest"}))
        .send()
        .await;
    reply.assert_error(503, "storage_failed");
    assert!(
        reply.header("retry-after").is_some(),
        "503 says when to retry"
    );
    let (status, _) = s.get("/healthz", None).await;
    assert_eq!(status, 200, "the server stays up on a full disk");
    failed.push("full-rest".into());
    Some(FullDisk {
        s,
        disk,
        alice,
        room,
        failed,
    })
}

impl FullDisk {
    /// Resends every failed client_id, then checks the room: 1..=n, each
    /// client_id once, and the same after a SIGKILL and restart.
    async fn resend_and_check(&mut self) {
        let Self {
            s,
            alice,
            room,
            failed,
            ..
        } = self;
        for cid in failed.iter() {
            s.say(alice, room, &"x".repeat(3000), Some(cid)).await;
        }
        let history = s.history(alice, room).await;
        crate::harness::assert_contiguous(&history, history.len() as u64);
        let mut cids: Vec<_> = history.iter().map(|m| m["client_id"].to_string()).collect();
        cids.sort();
        cids.dedup();
        assert_eq!(cids.len(), history.len(), "a client_id stored twice");
        // The newest page comes from the room's window, which the failure
        // and recovery must have left as storage has it.
        let newest = newest_page(s, alice, room).await;
        s.kill9();
        s.restart();
        let after = s.history(alice, room).await;
        assert_eq!(
            after.len(),
            history.len(),
            "acknowledged messages lost after the full disk"
        );
        assert_eq!(
            newest_page(s, alice, room).await,
            newest,
            "the newest page differs after a restart"
        );
    }
}

/// The newest 200 messages as the server sends them.
async fn newest_page(s: &TestServer, user: &User, room: &str) -> String {
    s.http
        .get(s.url(&format!("/api/v1/rooms/{room}/messages?limit=200")))
        .bearer_auth(&user.token)
        .send()
        .await
        .expect("history")
        .text()
        .await
        .expect("history body")
}

#[tokio::test]
async fn a_full_disk_fails_sends_clearly_and_a_restart_recovers() {
    let Some(mut full) = fill_the_disk_under_a_server("a_full_disk_fails_sends_clearly").await
    else {
        return;
    };
    full.disk.free();
    full.s.kill9();
    full.s.restart();
    full.resend_and_check().await;
}

#[tokio::test]
async fn a_full_disk_recovers_without_a_restart_when_space_returns() {
    let Some(mut full) = fill_the_disk_under_a_server("a_full_disk_recovers").await else {
        return;
    };
    full.disk.free();
    // The committer looks once a second; reopening the database (a debug
    // build's sled, on a machine the other tests keep busy) can take
    // seconds more.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut recovered = false;
    while tokio::time::Instant::now() < deadline {
        let (status, _) = full
            .s
            .post(
                &format!("/api/v1/rooms/{}/messages", full.room),
                Some(&full.alice.token),
                json!({"body": "space again", "client_id": "after-full"}),
            )
            .await;
        if status == 201 || status == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        recovered,
        "sends still fail 30 s after the disk has space again"
    );
    let (status, body) = full.s.get("/readyz", None).await;
    assert_eq!(
        status, 200,
        "ready again once the disk takes writes: {body}"
    );
    let metrics = reqwest::get(full.s.url("/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics.contains("hearth_storage_reopens_total 1\n"),
        "one reopen of the database:\n{metrics}"
    );
    // Live delivery works again, in order after what is stored.
    let mut ws = full.s.ws(&full.alice).await;
    ws.hello(None).await;
    let sent = full
        .s
        .say(&full.alice, &full.room, "live again", Some("live-again"))
        .await;
    let live = ws.expect("message").await;
    assert_eq!(live["message"]["seq"], sent["seq"], "{live}");
    full.resend_and_check().await;
}
