//! Message search over the real server: the query language, ranking and
//! pages, highlights, edits and deletions, who may find what, the index
//! catching up after a crash, and the operator's rebuild and verify.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{TestServer, User};

/// `q` percent-encoded for a query string.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /api/v1/search?q=Q&EXTRA` as `user`.
async fn search(s: &TestServer, user: &User, q: &str, extra: &str) -> (u16, Value) {
    let mut path = format!("/api/v1/search?q={}", encode(q));
    if !extra.is_empty() {
        path.push('&');
        path.push_str(extra);
    }
    s.get(&path, Some(&user.token)).await
}

/// The bodies a search finds, in order.
async fn bodies(s: &TestServer, user: &User, q: &str, extra: &str) -> Vec<String> {
    let (status, r) = search(s, user, q, extra).await;
    assert_eq!(status, 200, "search {q:?}: {r}");
    results(&r)
        .iter()
        .map(|h| h["message"]["body"].as_str().expect("body").to_string())
        .collect()
}

fn results(r: &Value) -> &Vec<Value> {
    r["results"].as_array().expect("results")
}

/// Polls a search until its bodies are `want` (the index may trail the log
/// by up to a second); panics with what it last saw after 5 s.
async fn eventually(s: &TestServer, user: &User, q: &str, extra: &str, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = bodies(s, user, q, extra).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "search {q:?} {extra}: wanted {want:?}, still {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sorted, for searches whose order is not the point.
async fn eventually_set(s: &TestServer, user: &User, q: &str, extra: &str, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut want: Vec<&str> = want.to_vec();
    want.sort_unstable();
    loop {
        let mut got = bodies(s, user, q, extra).await;
        got.sort();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "search {q:?} {extra}: wanted {want:?}, still {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn words_phrases_prefixes_and_filters_each_find_their_messages() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let general = s.room(&ann, "general").await;
    let random = s.room(&ann, "random").await;
    s.join(&bob, &general).await;
    s.join(&bob, &random).await;
    s.say(&ann, &general, "the quick brown fox", None).await;
    s.say(&bob, &general, "a brown dog and a quick cat", None)
        .await;
    s.say(&ann, &random, "quickly now, brown fox!", None).await;
    s.say(&bob, &random, "foxes are not dogs", None).await;

    eventually_set(
        &s,
        &bob,
        "fox*",
        "",
        &[
            "the quick brown fox",
            "quickly now, brown fox!",
            "foxes are not dogs",
        ],
    )
    .await;
    // Words: every one must be there, in any order.
    eventually_set(
        &s,
        &bob,
        "FOX brown",
        "",
        &["the quick brown fox", "quickly now, brown fox!"],
    )
    .await;
    // A phrase: next to each other, in order.
    eventually(&s, &bob, "\"quick brown\"", "", &["the quick brown fox"]).await;
    eventually_set(
        &s,
        &bob,
        "quick*",
        "",
        &[
            "the quick brown fox",
            "a brown dog and a quick cat",
            "quickly now, brown fox!",
        ],
    )
    .await;
    // Filters inside q: from: a username, in: a room name (any case).
    eventually(&s, &bob, "from:bob fox*", "", &["foxes are not dogs"]).await;
    eventually_set(
        &s,
        &bob,
        "fox* in:Random",
        "",
        &["quickly now, brown fox!", "foxes are not dogs"],
    )
    .await;
    eventually_set(
        &s,
        &bob,
        "from:ann in:general",
        "",
        &["the quick brown fox"],
    )
    .await;
    eventually(&s, &bob, "from:nobody fox", "", &[]).await;
    // room= narrows to one room the caller is in.
    eventually(
        &s,
        &bob,
        "fox*",
        &format!("room={general}"),
        &["the quick brown fox"],
    )
    .await;

    // Each result is the message exactly as history shows it.
    let (_, r) = search(&s, &bob, "dog*", "").await;
    let history = s.history(&bob, &general).await;
    for hit in results(&r) {
        let room = hit["room"].as_str().expect("room");
        let seq = &hit["seq"];
        let shown = if room == general {
            history.iter().find(|m| &m["seq"] == seq).cloned()
        } else {
            s.history(&bob, room)
                .await
                .into_iter()
                .find(|m| &m["seq"] == seq)
        };
        assert_eq!(Some(&hit["message"]), shown.as_ref(), "{hit}");
    }
    assert_eq!(results(&r).len(), 2);
}

#[tokio::test]
async fn relevance_ranks_best_first_then_newest_and_recent_is_newest_first() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let room = s.room(&ann, "general").await;
    let long = "we talked about apple pie and many other things that afternoon, at length";
    s.say(&ann, &room, long, None).await;
    s.say(&ann, &room, "apple apple apple", None).await;
    s.say(
        &ann,
        &room,
        "an apple a day, and more words here to make it longer",
        None,
    )
    .await;
    eventually(
        &s,
        &ann,
        "apple",
        "",
        &[
            "apple apple apple",
            "an apple a day, and more words here to make it longer",
            long,
        ],
    )
    .await;
    eventually(
        &s,
        &ann,
        "apple",
        "sort=recent",
        &[
            "an apple a day, and more words here to make it longer",
            "apple apple apple",
            long,
        ],
    )
    .await;
    // The same score: the newer first.
    s.say(&ann, &room, "banana split", None).await;
    s.say(&ann, &room, "banana split", None).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, r) = search(&s, &ann, "banana", "").await;
        let seqs: Vec<u64> = results(&r)
            .iter()
            .map(|h| h["seq"].as_u64().expect("seq"))
            .collect();
        if seqs.len() == 2 {
            assert!(seqs[0] > seqs[1], "newer first on a tie: {seqs:?}");
            break;
        }
        assert!(Instant::now() < deadline, "banana not indexed: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn highlights_are_character_ranges_of_the_matches() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let room = s.room(&ann, "général").await;
    let body = "Ünïcode café: the CAFÉ and ünïcode, 日本 café";
    s.say(&ann, &room, body, None).await;
    eventually(&s, &ann, "cafe unicode", "", &[body]).await;
    let (_, r) = search(&s, &ann, "café ünïcode", "").await;
    let hit = &results(&r)[0];
    let chars: Vec<char> = body.chars().collect();
    let marked: Vec<String> = hit["highlights"]
        .as_array()
        .expect("highlights")
        .iter()
        .map(|h| {
            let (a, b) = (
                h[0].as_u64().unwrap() as usize,
                h[1].as_u64().unwrap() as usize,
            );
            chars[a..b].iter().collect()
        })
        .collect();
    assert_eq!(marked, ["Ünïcode", "café", "CAFÉ", "ünïcode", "café"]);
    assert_eq!(hit["highlights"][0], json!([0, 7]));
    // A phrase is marked from its first word to its last.
    let (_, r) = search(&s, &ann, "\"the café\"", "").await;
    assert_eq!(results(&r)[0]["highlights"], json!([[14, 22]]));
    // A prefix marks the whole word.
    let (_, r) = search(&s, &ann, "ünï*", "").await;
    assert_eq!(results(&r)[0]["highlights"], json!([[0, 7], [27, 34]]));
}

#[tokio::test]
async fn pages_follow_the_cursor_without_repeating_a_message() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let room = s.room(&ann, "general").await;
    for i in 0..25 {
        let body = format!("report number {i} {}", "filler ".repeat(i % 5));
        s.say(&ann, &room, &body, None).await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while bodies(&s, &ann, "report", "limit=50").await.len() < 25 {
        assert!(Instant::now() < deadline, "not all indexed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for sort in ["relevance", "recent"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut extra = format!("limit=10&sort={sort}");
            if let Some(c) = &cursor {
                extra.push_str(&format!("&cursor={}", encode(c)));
            }
            let (status, r) = search(&s, &ann, "report", &extra).await;
            assert_eq!(status, 200, "{r}");
            pages += 1;
            seen.extend(results(&r).iter().map(|h| h["seq"].as_u64().expect("seq")));
            match r["next"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => {
                    assert!(r["next"].is_null());
                    break;
                }
            }
        }
        assert_eq!(pages, 3, "{sort}");
        let mut unique = seen.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 25, "{sort}: every message once: {seen:?}");
        assert_eq!(seen.len(), 25, "{sort}: no repeats: {seen:?}");
        if sort == "recent" {
            assert!(
                seen.windows(2).all(|w| w[0] > w[1]),
                "newest first: {seen:?}"
            );
        }
    }
    // A cursor belongs to its order.
    let (_, r) = search(&s, &ann, "report", "limit=10").await;
    let next = r["next"].as_str().expect("next");
    let (status, r) = search(
        &s,
        &ann,
        "report",
        &format!("sort=recent&cursor={}", encode(next)),
    )
    .await;
    crate::harness::assert_api_error(status, &r, 400, "invalid_cursor");
}

#[tokio::test]
async fn an_edit_is_found_by_its_new_text_only_and_a_deletion_is_gone() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let room = s.room(&ann, "general").await;
    let edited = s.say(&ann, &room, "the original wording", None).await;
    let deleted = s.say(&ann, &room, "a regrettable remark", None).await;
    eventually(&s, &ann, "original", "", &["the original wording"]).await;
    eventually(&s, &ann, "regrettable", "", &["a regrettable remark"]).await;

    let seq = edited["seq"].as_u64().expect("seq");
    let r = s
        .request(
            "PATCH",
            &format!("/api/v1/rooms/{room}/messages/{seq}"),
            &ann.token,
            json!({"body": "the revised text"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seq = deleted["seq"].as_u64().expect("seq");
    let (status, r) = s
        .delete(
            &format!("/api/v1/rooms/{room}/messages/{seq}"),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert!(status == 200 || status == 204, "{status} {r}");

    eventually(&s, &ann, "revised", "", &["the revised text"]).await;
    eventually(&s, &ann, "original", "", &[]).await;
    eventually(&s, &ann, "regrettable", "", &[]).await;
    eventually(&s, &ann, "remark*", "", &[]).await;
    let (_, r) = search(&s, &ann, "revised", "").await;
    assert!(results(&r)[0]["message"]["edited_at"].is_string(), "{r}");
}

#[tokio::test]
async fn only_rooms_the_caller_is_in_now_are_searched() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let (status, r) = s
        .post(
            "/api/v1/rooms",
            Some(&ann.token),
            json!({"name": "hideout", "visibility": "private"}),
        )
        .await;
    assert_eq!(status, 201, "{r}");
    let private = r["room"]["id"].as_str().expect("id").to_string();
    let public = s.room(&ann, "lobby").await;
    s.say(&ann, &private, "secret plans for friday", None).await;
    s.say(&ann, &public, "public plans for lunch", None).await;
    eventually(
        &s,
        &ann,
        "plans",
        "sort=recent",
        &["public plans for lunch", "secret plans for friday"],
    )
    .await;

    // Bob is in neither room: nothing, however he asks.
    for q in [
        "plans",
        "secret",
        "secret*",
        "\"secret plans\"",
        "in:hideout",
        "from:ann",
    ] {
        assert!(bodies(&s, &bob, q, "").await.is_empty(), "{q}");
    }
    let (status, r) = search(&s, &bob, "secret", &format!("room={private}")).await;
    crate::harness::assert_api_error(status, &r, 404, "room_not_found");
    let (status, r) = search(&s, &bob, "plans", &format!("room={public}")).await;
    crate::harness::assert_api_error(status, &r, 403, "not_a_member");

    // A member finds the room's messages; once gone, no longer.
    s.join(&bob, &public).await;
    eventually(&s, &bob, "plans", "", &["public plans for lunch"]).await;
    let (status, r) = s
        .post(
            &format!("/api/v1/rooms/{public}/leave"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert!(status == 200 || status == 204, "{status} {r}");
    assert!(bodies(&s, &bob, "plans", "").await.is_empty());
    assert!(bodies(&s, &bob, "lunch", "").await.is_empty());
}

#[tokio::test]
async fn the_index_catches_up_from_the_log_after_kill_9() {
    let mut s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let room = s.room(&ann, "general").await;
    s.say(&ann, &room, "before the crash", None).await;
    eventually(&s, &ann, "crash", "", &["before the crash"]).await;
    // Acknowledged, so in the log; killed well within the index's commit
    // window, so most are not yet in the index.
    let first = s.say(&ann, &room, "zebra one", None).await;
    for i in 2..=20 {
        s.say(&ann, &room, &format!("zebra {i}"), None).await;
    }
    let seq = first["seq"].as_u64().expect("seq");
    let r = s
        .request(
            "PATCH",
            &format!("/api/v1/rooms/{room}/messages/{seq}"),
            &ann.token,
            json!({"body": "okapi one"}),
        )
        .await;
    assert_eq!(r.status, 200);
    s.kill9();
    s.restart();
    let ann = s.login("ann", "password-ann").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let zebras = bodies(&s, &ann, "zebra", "limit=50").await.len();
        let okapi = bodies(&s, &ann, "okapi", "").await;
        if zebras == 19 && okapi == ["okapi one"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after restart: {zebras} zebras, {okapi:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually(&s, &ann, "crash", "", &["before the crash"]).await;
    // One document per live message: what the catch-up added again was
    // not there twice.
    let verify = ok_json(&s.data_dir(), &["verify"]);
    assert_eq!(verify["problems"], json!([]), "{verify}");
}

/// Runs `hearth ARGS --data DATA`.
fn hearth(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("HEARTH_CONFIG")
        .output()
        .expect("run hearth")
}

fn ok_json(data: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = hearth(data, &all);
    assert!(
        out.status.success(),
        "hearth {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

#[tokio::test]
async fn rebuild_and_verify_from_the_cli_running_or_stopped() {
    let mut s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let room = s.room(&ann, "general").await;
    let doomed = s.room(&ann, "doomed").await;
    for i in 0..5 {
        s.say(&ann, &room, &format!("walrus {i}"), None).await;
        s.say(&ann, &doomed, &format!("walrus doomed {i}"), None)
            .await;
    }
    let gone = s.say(&ann, &room, "walrus to delete", None).await;
    let seq = gone["seq"].as_u64().expect("seq");
    let (status, _) = s
        .delete(
            &format!("/api/v1/rooms/{room}/messages/{seq}"),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert!(status < 300);
    // A room's deletion takes its documents along.
    let r = s
        .request(
            "DELETE",
            &format!("/api/v1/rooms/{doomed}"),
            &ann.token,
            json!({}),
        )
        .await;
    assert!(r.status < 300, "{}", r.body);
    let data = s.data_dir();

    // While the server runs: through its admin socket.
    let verify = ok_json(&data, &["verify"]);
    assert_eq!(verify["problems"], json!([]), "{verify}");
    let rebuilt = ok_json(&data, &["index", "rebuild"]);
    assert_eq!(rebuilt, json!({"documents": 5, "live_messages": 5}));
    eventually(
        &s,
        &ann,
        "walrus",
        "limit=50",
        &["walrus 4", "walrus 3", "walrus 2", "walrus 1", "walrus 0"],
    )
    .await;

    // Stopped: on the directory itself.
    s.terminate();
    let rebuilt = ok_json(&data, &["index", "rebuild"]);
    assert_eq!(rebuilt, json!({"documents": 5, "live_messages": 5}));
    let verify = ok_json(&data, &["verify"]);
    assert_eq!(verify["problems"], json!([]), "{verify}");

    // The index is derived: without it (a restored store), a start makes it again.
    std::fs::remove_dir_all(data.join("index")).expect("remove the index");
    s.restart();
    let ann = s.login("ann", "password-ann").await;
    eventually_set(
        &s,
        &ann,
        "walrus",
        "limit=50",
        &["walrus 0", "walrus 1", "walrus 2", "walrus 3", "walrus 4"],
    )
    .await;
    let verify = ok_json(&data, &["verify"]);
    assert_eq!(verify["problems"], json!([]), "{verify}");
}

#[tokio::test]
async fn indexing_turned_off_refuses_searches_and_catches_up_when_turned_on_again() {
    let mut s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let room = s.room(&ann, "general").await;
    s.say(&ann, &room, "walrus before", None).await;
    eventually(&s, &ann, "walrus", "", &["walrus before"]).await;

    s.terminate();
    s.set_env("HEARTH_SEARCH_INDEX", "false");
    s.restart();
    let ann = s.login("ann", "password-ann").await;
    s.say(&ann, &room, "walrus while off", None).await;
    let (status, r) = search(&s, &ann, "walrus", "").await;
    crate::harness::assert_api_error(status, &r, 503, "search_disabled");
    let data = s.data_dir();
    let out = hearth(&data, &["index", "rebuild"]);
    assert!(!out.status.success(), "a rebuild with indexing off");
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Search is turned off"), "{said}");
    // Nothing to compare, so nothing wrong.
    let verify = ok_json(&data, &["verify"]);
    assert_eq!(verify["problems"], json!([]), "{verify}");

    // On again: the index reads what it missed from the log.
    s.terminate();
    s.set_env("HEARTH_SEARCH_INDEX", "true");
    s.restart();
    let ann = s.login("ann", "password-ann").await;
    eventually_set(
        &s,
        &ann,
        "walrus",
        "",
        &["walrus before", "walrus while off"],
    )
    .await;
    let verify = ok_json(&data, &["verify"]);
    assert_eq!(verify["problems"], json!([]), "{verify}");
}

#[tokio::test]
async fn bad_searches_get_their_error_codes() {
    let s = TestServer::spawn_with(&[
        ("HEARTH_SEARCH_PER_SEC", "1"),
        ("HEARTH_SEARCH_BURST", "12"),
    ])
    .await;
    let ann = s.user("ann").await;
    let (status, r) = s.get("/api/v1/search?q=x", None).await;
    crate::harness::assert_api_error(status, &r, 401, "unauthenticated");
    for (q, extra, code) in [
        ("", "", "invalid_query"),
        (&"a".repeat(257)[..], "", "invalid_query"),
        ("\"no closing quote", "", "invalid_query"),
        ("*", "", "invalid_query"),
        ("from:", "", "invalid_query"),
        ("?!", "", "invalid_query"),
        ("x", "limit=0", "invalid_request"),
        ("x", "limit=51", "invalid_request"),
        ("x", "sort=loudest", "invalid_request"),
        ("x", "cursor=garbage", "invalid_cursor"),
    ] {
        let (status, r) = search(&s, &ann, q, extra).await;
        crate::harness::assert_api_error(status, &r, 400, code);
    }
    let (status, r) = s.get("/api/v1/search", Some(&ann.token)).await;
    crate::harness::assert_api_error(status, &r, 400, "invalid_query");
    // A burst of 12, then one a second: a loop of searches runs out.
    let carol = s.user("carol").await;
    let mut answered = 0;
    let (status, r) = loop {
        let (status, r) = search(&s, &carol, "x", "").await;
        if status != 200 || answered == 30 {
            break (status, r);
        }
        answered += 1;
    };
    crate::harness::assert_api_error(status, &r, 429, "rate_limited");
    assert!(answered >= 12, "{answered}");
    // Longest and widest queries allowed still answer.
    let bob = s.user("bob").await;
    let longest = format!("{}x", "abcdefghijklmnop ".repeat(15));
    assert_eq!(longest.chars().count(), 256);
    let (status, r) = search(&s, &bob, &longest, "").await;
    assert_eq!(status, 200, "{r}");
    let (status, _) = search(&s, &bob, &"a* ".repeat(16), "").await;
    assert_eq!(status, 200);
}
