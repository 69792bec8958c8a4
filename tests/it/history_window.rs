//! The recent window: history, event pages, single messages and resume
//! answered from a room's newest events in memory are byte for byte what
//! storage answers, across edits, reactions, replies and deletions (which
//! rewrite stored events), pages that straddle the window's start, and a
//! restart (window empty, loaded again from storage).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::harness::{Auth, TestServer, User};

/// A small window, so a few hundred events push pages across its start.
const WINDOW: &str = "24";

/// Every read the window may answer, as (what was asked, status and body).
async fn reads(s: &TestServer, user: &User, room: &str) -> BTreeMap<String, String> {
    reads_asked(s, user, room, 1).await
}

/// [`reads`], each asked `times` in a row (the same answer each time).
async fn reads_asked(
    s: &TestServer,
    user: &User,
    room: &str,
    times: usize,
) -> BTreeMap<String, String> {
    let (_, head) = s
        .get(&format!("/api/v1/rooms/{room}"), Some(&user.token))
        .await;
    let head = head["room"]["last_seq"].as_u64().expect("last_seq");
    let mut paths = Vec::new();
    for limit in [1, 5, 50, 200] {
        paths.push(format!("messages?limit={limit}"));
    }
    for at in (0..=head + 2).step_by(3) {
        for limit in [1, 4, 30] {
            paths.push(format!("messages?limit={limit}&before={at}"));
            paths.push(format!("messages?limit={limit}&after={at}"));
        }
        paths.push(format!("events?after={at}&limit=7"));
    }
    paths.push("events".to_string());
    for seq in 0..=head + 1 {
        paths.push(format!("messages/{seq}"));
        paths.push(format!("messages/{seq}/edits"));
    }
    let mut out = BTreeMap::new();
    for p in paths {
        for _ in 0..times {
            let (status, body) = fetch(s, user, room, &p).await;
            let body = format!("{status} {body}");
            if let Some(was) = out.insert(p.clone(), body) {
                assert_eq!(Some(&was), out.get(&p), "{p} asked again");
            }
        }
    }
    out
}

/// Every frame a resume from each point replays, raw, up to the head.
async fn replays(s: &TestServer, user: &User, room: &str, head: u64) -> Vec<String> {
    let mut out = Vec::new();
    for after in [0, head / 2, head.saturating_sub(30), head.saturating_sub(3)] {
        let mut ws = s.ws(user).await;
        ws.hello(Some(json!({ room: after }))).await;
        let mut seen = after;
        while seen < head {
            let f = ws.next().await.expect("replayed frames up to the head");
            let seq = match f["type"].as_str() {
                Some("message") => f["message"]["seq"].as_u64(),
                Some("event") => f["event"]["seq"].as_u64(),
                _ => None,
            };
            if let Some(seq) = seq {
                seen = seq;
                out.push(f.to_string());
            }
        }
    }
    out
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

async fn metrics(s: &TestServer) -> String {
    s.http
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body")
}

async fn call(s: &TestServer, user: &User, method: &str, path: &str, body: Value) {
    let r = s.request(method, path, &user.token, body).await;
    assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.body);
}

#[tokio::test]
async fn pages_from_the_window_are_what_storage_answers() {
    let mut s = TestServer::spawn_with(&[("HEARTH_HISTORY_WINDOW", WINDOW)]).await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let room = s.room(&ann, "window").await;
    s.join(&bob, &room).await;
    let msg = |seq: u64| format!("/api/v1/rooms/{room}/messages/{seq}");
    let react = |seq: u64, emoji: &str| reaction(&room, seq, emoji);

    s.post_many(&ann, &room, 20).await;
    // The first page loads the window; from here the committer keeps it.
    let (_, first) = s
        .get(&format!("/api/v1/rooms/{room}/messages"), Some(&bob.token))
        .await;
    assert_eq!(first["messages"].as_array().map(Vec::len), Some(20));

    // Edits, reactions put on and taken back, replies.
    call(&s, &ann, "PATCH", &msg(2), json!({"body": "two, edited"})).await;
    call(
        &s,
        &ann,
        "PATCH",
        &msg(2),
        json!({"body": "two, edited again"}),
    )
    .await;
    call(&s, &bob, "PUT", &react(3, "👍"), json!({})).await;
    call(&s, &ann, "PUT", &react(3, "👍"), json!({})).await;
    call(&s, &bob, "DELETE", &react(3, "👍"), json!({})).await;
    call(&s, &bob, "PUT", &react(3, "🎉"), json!({})).await;
    let (st, _) = s
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&bob.token),
            json!({"body": "answering two", "reply_to": 2}),
        )
        .await;
    assert_eq!(st, 201);
    // A message deleted with its edits while all are in the window.
    call(
        &s,
        &ann,
        "PATCH",
        &msg(18),
        json!({"body": "eighteen, edited"}),
    )
    .await;
    call(&s, &ann, "DELETE", &msg(18), json!({})).await;

    // Enough to push all that out of the window.
    s.post_many(&bob, &room, 30).await;
    // A message older than the window, edited now (the edit is in the
    // window), then deleted: the edit in the window is blanked too.
    call(
        &s,
        &ann,
        "PATCH",
        &msg(5),
        json!({"body": "five, edited late"}),
    )
    .await;
    call(&s, &ann, "PUT", &react(5, "👀"), json!({})).await;
    call(&s, &ann, "DELETE", &msg(5), json!({})).await;
    // A message in the window, replied to, then deleted: the reply's quote
    // follows.
    let (_, m) = s
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&ann.token),
            json!({"body": "soon gone"}),
        )
        .await;
    let gone = m["message"]["seq"].as_u64().expect("seq");
    call(
        &s,
        &ann,
        "PATCH",
        &msg(gone),
        json!({"body": "soon gone, edited"}),
    )
    .await;
    let (st, _) = s
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&bob.token),
            json!({"body": "what?", "reply_to": gone}),
        )
        .await;
    assert_eq!(st, 201);
    call(&s, &bob, "PUT", &react(gone, "😮"), json!({})).await;
    call(&s, &ann, "DELETE", &msg(gone), json!({})).await;
    for i in 0..5 {
        s.say(&ann, &room, &format!("after the deletion {i}"), None)
            .await;
    }

    let (_, r) = s
        .get(&format!("/api/v1/rooms/{room}"), Some(&bob.token))
        .await;
    let head = r["room"]["last_seq"].as_u64().expect("last_seq");
    assert!(head > 60, "{head}");

    let before_reads = metric(
        &metrics(&s).await,
        "hearth_history_reads_total{source=\"window\"}",
    );
    let windowed = reads(&s, &bob, &room).await;
    let windowed_replay = replays(&s, &bob, &room, head).await;
    let m = metrics(&s).await;
    assert!(
        metric(&m, "hearth_history_reads_total{source=\"window\"}") > before_reads + 50,
        "the window answered the recent reads: {m}"
    );
    assert!(
        metric(&m, "hearth_history_reads_total{source=\"storage\"}") > 0,
        "older pages came from storage: {m}"
    );
    assert_eq!(metric(&m, "hearth_history_windows"), 1, "{m}");

    // Storage alone answers the same, byte for byte.
    s.terminate();
    s.set_env("HEARTH_HISTORY_WINDOW", "0");
    s.restart();
    let stored = reads(&s, &bob, &room).await;
    let stored_replay = replays(&s, &bob, &room, head).await;
    let m = metrics(&s).await;
    assert_eq!(
        metric(&m, "hearth_history_reads_total{source=\"window\"}"),
        0,
        "{m}"
    );
    assert_eq!(metric(&m, "hearth_history_windows"), 0, "{m}");
    assert_same(&windowed, &stored);
    assert_eq!(windowed_replay, stored_replay);

    // And so does a window loaded from storage after a restart.
    s.terminate();
    s.set_env("HEARTH_HISTORY_WINDOW", WINDOW);
    s.restart();
    let reloaded = reads(&s, &bob, &room).await;
    assert_same(&reloaded, &stored);
    assert_eq!(replays(&s, &bob, &room, head).await, stored_replay);
}

#[tokio::test]
async fn the_window_follows_changes_made_after_a_restart() {
    let mut s = TestServer::spawn_with(&[("HEARTH_HISTORY_WINDOW", WINDOW)]).await;
    let ann = s.user("ann").await;
    let room = s.room(&ann, "after restart").await;
    let msg = |seq: u64| format!("/api/v1/rooms/{room}/messages/{seq}");
    s.post_many(&ann, &room, 40).await;
    call(
        &s,
        &ann,
        "PATCH",
        &msg(38),
        json!({"body": "edited before"}),
    )
    .await;
    s.terminate();
    s.restart();
    // Loaded from storage by this read, then kept by the committer.
    let (_, page) = s
        .get(
            &format!("/api/v1/rooms/{room}/messages?limit=3"),
            Some(&ann.token),
        )
        .await;
    assert_eq!(page["messages"][0]["body"], "edited before", "{page}");
    call(&s, &ann, "DELETE", &msg(38), json!({})).await;
    call(&s, &ann, "PUT", &reaction(&room, 39, "👍"), json!({})).await;
    s.say(&ann, &room, "after the restart", None).await;
    let windowed = reads(&s, &ann, &room).await;
    let (_, page) = s
        .get(
            &format!("/api/v1/rooms/{room}/messages?limit=6"),
            Some(&ann.token),
        )
        .await;
    let deleted = page["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["seq"] == 38))
        .expect("message 38 on the page");
    assert_eq!(deleted["deleted"], true, "{page}");
    assert_eq!(deleted["body"], "", "{page}");
    s.terminate();
    s.set_env("HEARTH_HISTORY_WINDOW", "0");
    s.restart();
    assert_same(&windowed, &reads(&s, &ann, &room).await);
}

#[tokio::test]
async fn a_window_grown_down_for_older_pages_follows_what_changes_there() {
    let mut s = TestServer::spawn_with(&[("HEARTH_HISTORY_WINDOW", WINDOW)]).await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let room = s.room(&ann, "grown").await;
    s.join(&bob, &room).await;
    let msg = |seq: u64| format!("/api/v1/rooms/{room}/messages/{seq}");
    let react = |seq: u64, emoji: &str| reaction(&room, seq, emoji);
    let (thumb, party) = ("👍", "🎉");
    let page = |query: String| {
        let (s, room, bob) = (&s, &room, &bob);
        async move { seqs(s, bob, room, &query).await }
    };
    // Message 6 gets an edit and a reaction that the window will hold once
    // it reaches down, before any window exists.
    s.post_many(&ann, &room, 100).await;
    call(&s, &ann, "PATCH", &msg(6), json!({"body": "six, edited"})).await;
    call(&s, &bob, "PUT", &react(6, thumb), json!({})).await;
    s.post_many(&bob, &room, 10).await;

    let grown = |m: &str| metric(m, "hearth_history_window_grown_events");
    assert_eq!(grown(&metrics(&s).await), 0);
    // The newest page loads the window; far below it, storage answers.
    assert_eq!(page("limit=5".into()).await.len(), 5);
    let count = |m: &str, source: &str| {
        metric(
            m,
            &format!("hearth_history_reads_total{{source=\"{source}\"}}"),
        )
    };
    let m = metrics(&s).await;
    let (window, stored) = (count(&m, "window"), count(&m, "storage"));
    assert_eq!(
        page("limit=5&before=11".into()).await,
        (6..=10).collect::<Vec<_>>()
    );
    let m = metrics(&s).await;
    assert_eq!((grown(&m), count(&m, "storage")), (0, stored + 1), "{m}");
    // Scrolling back a page at a time grows the window down to there, each
    // page from the window.
    let mut first = page("limit=10".into()).await[0];
    let mut pages = 0;
    while first > 11 {
        first = page(format!("limit=10&before={first}")).await[0];
        pages += 1;
    }
    assert_eq!(
        page("limit=5&before=11".into()).await,
        (6..=10).collect::<Vec<_>>()
    );
    let m = metrics(&s).await;
    assert!(grown(&m) > 0, "the window grew: {m}");
    // The page below, asked a second time, was kept from the first.
    assert_eq!(
        (count(&m, "window"), count(&m, "storage"), count(&m, "page")),
        (window + pages + 1, stored + 1, 1),
        "the old pages came from the grown window: {m}"
    );

    // Now change messages in the grown part, and one below it.
    call(&s, &ann, "PATCH", &msg(7), json!({"body": "seven, edited"})).await;
    call(
        &s,
        &ann,
        "PATCH",
        &msg(6),
        json!({"body": "six, edited again"}),
    )
    .await;
    call(&s, &ann, "PUT", &react(6, thumb), json!({})).await;
    call(&s, &bob, "DELETE", &react(6, thumb), json!({})).await;
    call(&s, &ann, "DELETE", &msg(8), json!({})).await;
    call(&s, &ann, "PATCH", &msg(2), json!({"body": "two, below"})).await;
    let (st, _) = s
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&bob.token),
            json!({"body": "about seven", "reply_to": 7}),
        )
        .await;
    assert_eq!(st, 201);
    // Grown down to the room's first message, then changes at the bottom.
    assert_eq!(page("limit=3&before=4".into()).await, [1, 2, 3]);
    call(&s, &bob, "PUT", &react(1, party), json!({})).await;
    call(&s, &ann, "DELETE", &msg(2), json!({})).await;

    let windowed = reads(&s, &bob, &room).await;
    s.terminate();
    s.set_env("HEARTH_HISTORY_WINDOW", "0");
    s.restart();
    assert_same(&windowed, &reads(&s, &bob, &room).await);
}

#[tokio::test]
async fn a_window_grows_at_most_sixteen_times_its_size() {
    let s = TestServer::spawn_with(&[("HEARTH_HISTORY_WINDOW", WINDOW)]).await;
    let ann = s.user("ann").await;
    let room = s.room(&ann, "deep").await;
    s.post_many(&ann, &room, 500).await;
    let read = |before: u64| {
        let (s, room, ann) = (&s, &room, &ann);
        async move {
            let page = seqs(s, ann, room, &format!("limit=10&before={before}")).await;
            let m = metrics(s).await;
            (
                page.first().copied(),
                metric(&m, "hearth_history_reads_total{source=\"storage\"}"),
                metric(&m, "hearth_history_window_grown_events"),
            )
        }
    };
    // The newest page loads the window (24 events); 384 is the most it holds.
    let (newest, stored, grown) = read(501).await;
    assert_eq!((newest, grown), (Some(491), 0));
    // 400 events below the window's start: storage answers.
    assert_eq!(read(91).await, (Some(81), stored + 1, 0));
    // Scrolling back a page at a time grows the window, until it would hold
    // more than 384 events; then storage answers.
    let (mut before, mut held_beyond) = (491, 0);
    loop {
        let (first, now_stored, grown) = read(before).await;
        if now_stored > stored + 1 {
            break;
        }
        assert!(grown >= held_beyond, "{grown} < {held_beyond}");
        held_beyond = grown;
        before = first.expect("a page");
        assert!(before > 100, "the window grew past 384 events: {before}");
    }
    assert!(
        (300..=16 * 24 - 24).contains(&held_beyond),
        "{held_beyond} events beyond the window's 24"
    );

    // A deleted room gives back what its window grew by.
    call(
        &s,
        &ann,
        "DELETE",
        &format!("/api/v1/rooms/{room}"),
        json!({}),
    )
    .await;
    let m = metrics(&s).await;
    assert_eq!(metric(&m, "hearth_history_window_grown_events"), 0, "{m}");
}

/// The path of `emoji`'s reaction on message `seq` of `room`.
fn reaction(room: &str, seq: u64, emoji: &str) -> String {
    let encoded: String = emoji.bytes().map(|b| format!("%{b:02X}")).collect();
    format!("/api/v1/rooms/{room}/messages/{seq}/reactions/{encoded}")
}

/// The seqs of the history page `query` asks for.
async fn seqs(s: &TestServer, user: &User, room: &str, query: &str) -> Vec<u64> {
    let (status, page) = s
        .get(
            &format!("/api/v1/rooms/{room}/messages?{query}"),
            Some(&user.token),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["seq"].as_u64().expect("seq"))
        .collect()
}

/// Names the first read that differs, rather than two huge maps.
fn assert_same(got: &BTreeMap<String, String>, want: &BTreeMap<String, String>) {
    assert_eq!(got.len(), want.len());
    for (path, body) in want {
        assert_eq!(got.get(path), Some(body), "{path}");
    }
}

/// `GET /api/v1/rooms/{room}/{path}` as `user`: the status and the body
/// as sent.
async fn fetch(s: &TestServer, user: &User, room: &str, path: &str) -> (u16, String) {
    let r = s
        .call("GET", &format!("/api/v1/rooms/{room}/{path}"))
        .auth(Auth::Bearer(&user.token))
        .fetch()
        .await;
    (r.status, String::from_utf8(r.bytes).expect("UTF-8"))
}

/// The body of the history page `query` asks for, as sent.
async fn raw(s: &TestServer, user: &User, room: &str, query: &str) -> String {
    let (status, body) = fetch(s, user, room, &format!("messages?{query}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Message `seq` on a page's body.
fn on_page(body: &str, seq: u64) -> Value {
    let page: Value = serde_json::from_str(body).expect("JSON");
    page["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["seq"] == seq))
        .cloned()
        .unwrap_or_else(|| panic!("message {seq} on {body}"))
}

#[tokio::test]
async fn a_kept_page_is_answered_again_only_while_nothing_on_it_changed() {
    let mut s = TestServer::spawn_with(&[("HEARTH_HISTORY_WINDOW", WINDOW)]).await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let room = s.room(&ann, "kept").await;
    s.join(&bob, &room).await;
    let msg = |seq: u64| format!("/api/v1/rooms/{room}/messages/{seq}");
    s.post_many(&ann, &room, 10).await;
    s.say(&bob, &room, "bob was here", None).await;
    let newest = "limit=5";
    let older = "limit=3&before=4";
    let kept = |m: &str| metric(m, "hearth_history_reads_total{source=\"page\"}");
    let read = |user: &'static str, query: &'static str| {
        let (s, room) = (&s, &room);
        let user = if user == "ann" { &ann } else { &bob };
        async move { raw(s, user, room, query).await }
    };

    // Asked again, by anyone: the same bytes, kept from the first reader.
    let first = read("ann", newest).await;
    let was = kept(&metrics(&s).await);
    assert_eq!(read("ann", newest).await, first);
    assert_eq!(read("bob", newest).await, first);
    let m = metrics(&s).await;
    assert_eq!(kept(&m), was + 2, "{m}");
    assert!(
        metric(&m, "hearth_history_page_bytes") >= first.len() as u64,
        "{m}"
    );

    // A reaction: each reader's page has their own `me`, kept for them.
    call(&s, &bob, "PUT", &reaction(&room, 11, "👍"), json!({})).await;
    let (for_bob, for_ann) = (read("bob", newest).await, read("ann", newest).await);
    assert_eq!(
        on_page(&for_bob, 11)["reactions"][0]["me"],
        true,
        "{for_bob}"
    );
    assert_eq!(
        on_page(&for_ann, 11)["reactions"][0]["me"],
        false,
        "{for_ann}"
    );
    assert_eq!(read("ann", newest).await, for_ann);
    assert_eq!(read("bob", newest).await, for_bob);
    assert_eq!(kept(&metrics(&s).await), was + 4);

    // A new message: the page kept before it is answered again, the same.
    let kept_before = read("ann", older).await;
    s.say(&ann, &room, "one more", None).await;
    let was_kept = kept(&metrics(&s).await);
    assert_eq!(read("ann", older).await, kept_before);
    assert_eq!(kept(&metrics(&s).await), was_kept + 1);

    // An older message edited: its page, kept before, shows the edit.
    call(&s, &ann, "PATCH", &msg(2), json!({"body": "two, edited"})).await;
    assert_eq!(on_page(&read("ann", older).await, 2)["body"], "two, edited");
    // A reply on the newest page quotes message 3; an edit of message 3,
    // far from that page, shows in its quote.
    let (st, reply) = s
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&bob.token),
            json!({"body": "about three", "reply_to": 3}),
        )
        .await;
    assert_eq!(st, 201, "{reply}");
    let reply = reply["message"]["seq"].as_u64().expect("seq");
    let quoted = on_page(&read("ann", newest).await, reply);
    assert_eq!(quoted["reply_to"]["excerpt"], "message 2", "{quoted}");
    call(&s, &ann, "PATCH", &msg(3), json!({"body": "three, edited"})).await;
    let quoted = on_page(&read("ann", newest).await, reply);
    assert_eq!(quoted["reply_to"]["excerpt"], "three, edited", "{quoted}");

    // An author's account deleted: no room event, and still every kept
    // page shows them as deleted.
    let _ = read("ann", newest).await;
    let (st, body) = s
        .delete(
            "/api/v1/me",
            Some(&bob.token),
            json!({"password": "password-bob"}),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let page = read("ann", newest).await;
    assert_eq!(on_page(&page, 11)["author"]["deleted"], true, "{page}");
    assert_eq!(read("ann", newest).await, page);

    // Every read asked twice in a row (the second answered from kept
    // pages) is what storage alone answers.
    let was = kept(&metrics(&s).await);
    let twice = reads_asked(&s, &ann, &room, 2).await;
    assert!(kept(&metrics(&s).await) >= was + 40);
    s.terminate();
    s.set_env("HEARTH_HISTORY_WINDOW", "0");
    s.restart();
    assert_same(&twice, &reads(&s, &ann, &room).await);
}

#[tokio::test]
async fn a_room_keeps_the_thirty_two_pages_read_last() {
    let s = TestServer::spawn_with(&[("HEARTH_HISTORY_WINDOW", WINDOW)]).await;
    let ann = s.user("ann").await;
    let room = s.room(&ann, "many pages").await;
    s.post_many(&ann, &room, 40).await;
    let query = |before: u64| format!("limit=1&before={before}");
    let mut bodies = BTreeMap::new();
    let read = |before: u64| {
        let (s, ann, room) = (&s, &ann, &room);
        let q = query(before);
        async move {
            let m = metrics(s).await;
            let was = metric(&m, "hearth_history_reads_total{source=\"page\"}");
            let body = raw(s, ann, room, &q).await;
            let m = metrics(s).await;
            let kept = metric(&m, "hearth_history_reads_total{source=\"page\"}") > was;
            (body, kept, metric(&m, "hearth_history_page_bytes"))
        }
    };
    // Pages 2..=33: 32 pages, each encoded once and kept.
    for before in 2..=33 {
        let (body, kept, _) = read(before).await;
        assert!(!kept, "page {before} was new");
        bodies.insert(before, body);
    }
    let held = |bodies: &BTreeMap<u64, String>, pages: &[u64]| {
        pages.iter().map(|p| bodies[p].len() as u64).sum::<u64>()
    };
    let (_, kept, bytes) = read(2).await;
    assert!(kept, "page 2 is among the 32");
    assert_eq!(bytes, held(&bodies, &(2..=33).collect::<Vec<_>>()));
    // A 33rd page takes the place of the least recently read (3, since 2
    // was read again).
    let (body, kept, _) = read(34).await;
    assert!(!kept);
    bodies.insert(34, body);
    let (_, kept, _) = read(2).await;
    assert!(kept, "page 2 was read last but one");
    let (_, kept, bytes) = read(3).await;
    assert!(!kept, "page 3 had to go");
    // Page 3 came back in place of page 4.
    let mut now: Vec<u64> = (5..=34).collect();
    now.extend([2, 3]);
    assert_eq!(bytes, held(&bodies, &now));
}
