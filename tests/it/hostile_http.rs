//! Hostile HTTP clients: slowloris crowds, bodies too large or never
//! finished, and more connections than allowed. Each limit must cut the
//! attacker off in time while a normal client on another address is served
//! with low latency.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{tcp_from, TestServer};

/// What a raw request got back.
#[derive(Debug, PartialEq)]
enum Answer {
    /// A status line, and the body as far as it was read.
    Status(u16, String),
    /// The server closed (or reset) the connection without answering.
    Closed,
    /// Nothing within the wait.
    Silent,
}

/// Reads one HTTP response head (and whatever body came with it) from
/// `stream`, waiting at most `wait`.
async fn read_answer(stream: &mut TcpStream, wait: Duration) -> Answer {
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => break,
            Ok(Ok(0)) | Ok(Err(_)) => {
                if buf.is_empty() {
                    return Answer::Closed;
                }
                break;
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                break;
            }
        }
    }
    if buf.is_empty() {
        return Answer::Silent;
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Answer::Status(status, body)
}

/// `GET /healthz` over a fresh connection from `ip`.
async fn healthz_from(s: &TestServer, ip: &str) -> Answer {
    let Ok(mut stream) = tcp_from(ip, &s.addr, None).await else {
        return Answer::Closed;
    };
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr);
    if stream.write_all(req.as_bytes()).await.is_err() {
        return Answer::Closed;
    }
    read_answer(&mut stream, Duration::from_secs(3)).await
}

/// Waits until the server closes `stream`; how long that took, or `None`
/// if it was still open after `wait`. Writes one header byte every 250 ms
/// meanwhile when `dribble` is set.
async fn time_until_closed(
    mut stream: TcpStream,
    dribble: bool,
    wait: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + wait;
    if dribble {
        let _ = stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut chunk = [0u8; 1024];
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return None,
            r = stream.read(&mut chunk) => match r {
                Ok(0) | Err(_) => return Some(started.elapsed()),
                // A 408 or similar before the close is fine; keep reading.
                Ok(_) => {}
            },
            _ = tick.tick(), if dribble => {
                if stream.write_all(b"a").await.is_err() {
                    return Some(started.elapsed());
                }
            }
        }
    }
}

#[tokio::test]
async fn slowloris_from_one_address_is_cut_while_another_is_served() {
    const CROWD: usize = 2000;
    let s = TestServer::spawn_with(&[("HEARTH_HEADER_READ_TIMEOUT_SECS", "2")]).await;

    // 2,000 connections from 127.0.0.2: half send nothing, half dribble a
    // header byte every 250 ms. Opened in batches so the accept queue keeps up.
    let mut crowd = Vec::with_capacity(CROWD);
    for i in 0..CROWD {
        let stream = tcp_from("127.0.0.2", &s.addr, None)
            .await
            .expect("open a slowloris connection");
        crowd.push(tokio::spawn(time_until_closed(
            stream,
            i % 2 == 1,
            Duration::from_secs(12),
        )));
        if i % 200 == 199 {
            tokio::task::yield_now().await;
        }
    }

    // Meanwhile a real person on 127.0.0.1 signs up, logs in and chats.
    let started = Instant::now();
    let dora = s.user("dora").await;
    let room = s.room(&dora, "calm").await;
    let mut ws = s.ws(&dora).await;
    ws.hello(None).await;
    let mut latencies = Vec::new();
    for i in 0..10 {
        let sent = Instant::now();
        ws.send(&room, &format!("c{i}"), "still reachable").await;
        ws.expect("ack").await;
        latencies.push(sent.elapsed());
    }
    let setup = started.elapsed();
    latencies.sort();
    let (median, worst) = (latencies[5], latencies[9]);
    println!(
        "under slowloris: signup+login+room+ws in {setup:?}; ack median {median:?}, worst {worst:?}"
    );
    assert!(
        setup < Duration::from_secs(5),
        "signing up and connecting took {setup:?} under attack"
    );
    assert!(
        median < Duration::from_millis(300) && worst < Duration::from_secs(1),
        "acks are slow under attack: median {median:?}, worst {worst:?}"
    );

    let mut closed = Vec::with_capacity(CROWD);
    let mut open = 0;
    for c in crowd {
        match c.await.expect("slowloris task") {
            Some(t) => closed.push(t),
            None => open += 1,
        }
    }
    closed.sort();
    println!(
        "slowloris: {} of {CROWD} cut, the last after {:?}",
        closed.len(),
        closed.last()
    );
    assert_eq!(
        open, 0,
        "{open} of {CROWD} slow connections were still open after 12 s"
    );
    // Opening the crowd takes a moment, so allow for it beyond the 2 s.
    let last = *closed.last().expect("closed");
    assert!(
        last < Duration::from_secs(6),
        "a slow connection lasted {last:?} with a 2 s header timeout"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_cut_by_the_header_timeout() {
    let s = TestServer::spawn_with(&[("HEARTH_HEADER_READ_TIMEOUT_SECS", "2")]).await;
    let mut stream = tcp_from("127.0.0.2", &s.addr, None).await.expect("connect");
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr);
    stream.write_all(req.as_bytes()).await.expect("write");
    let answer = read_answer(&mut stream, Duration::from_secs(3)).await;
    assert!(matches!(answer, Answer::Status(200, _)), "{answer:?}");
    // The connection stays open for the next request, but not forever.
    let took = time_until_closed(stream, false, Duration::from_secs(8)).await;
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(4)),
        "an idle keep-alive connection was held {took:?} with a 2 s header timeout"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let s = TestServer::spawn_with(&[("HEARTH_MAX_BODY_BYTES", "1024")]).await;
    let big = json!({"username": "x".repeat(3000), "email": "e@example.com", "password": "p"})
        .to_string();

    // Declared too large: refused from the header alone, nothing is sent.
    let mut stream = tcp_from("127.0.0.1", &s.addr, None).await.expect("connect");
    let head = format!(
        "POST /api/v1/signup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        big.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let answer = read_answer(&mut stream, Duration::from_secs(3)).await;
    assert_413(&answer, "declared with Content-Length");

    // Sent chunked with no length: refused once it passes the limit.
    let mut stream = tcp_from("127.0.0.1", &s.addr, None).await.expect("connect");
    let mut req = b"POST /api/v1/signup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                    Transfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    for piece in big.as_bytes().chunks(500) {
        req.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        req.extend_from_slice(piece);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let _ = stream.write_all(&req).await;
    let answer = read_answer(&mut stream, Duration::from_secs(3)).await;
    assert_413(&answer, "chunked");

    // A megabyte of headers: refused, and nothing breaks. (hyper's buffer is
    // capped at 64 KiB but lets a head of about 100 KB through; the cap is
    // approximate, not unbounded.)
    let mut stream = tcp_from("127.0.0.1", &s.addr, None).await.expect("connect");
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\n\r\n",
        "h".repeat(1_000_000)
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let answer = read_answer(&mut stream, Duration::from_secs(3)).await;
    assert!(
        matches!(answer, Answer::Status(431, _) | Answer::Closed),
        "1 MB of headers: {answer:?}"
    );
    assert!(matches!(
        healthz_from(&s, "127.0.0.1").await,
        Answer::Status(200, _)
    ));
}

fn assert_413(answer: &Answer, how: &str) {
    let Answer::Status(status, body) = answer else {
        panic!("{how}: no answer: {answer:?}");
    };
    assert_eq!(*status, 413, "{how}: {body}");
    let v: serde_json::Value = serde_json::from_str(body).expect("a JSON error body");
    assert_eq!(v["error"]["code"], "payload_too_large", "{how}: {v}");
}

#[tokio::test]
async fn a_body_that_never_finishes_gets_408_in_time() {
    let s = TestServer::spawn_with(&[("HEARTH_BODY_READ_TIMEOUT_SECS", "2")]).await;
    for (how, head, first_bytes) in [
        (
            "Content-Length 100, 10 bytes sent",
            "POST /api/v1/signup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 100\r\n\r\n",
            &b"{\"username"[..],
        ),
        (
            "chunked, no last chunk",
            "POST /api/v1/signup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\n\r\n",
            &b"a\r\n{\"username\r\n"[..],
        ),
    ] {
        let mut stream = tcp_from("127.0.0.1", &s.addr, None).await.expect("connect");
        stream.write_all(head.as_bytes()).await.expect("head");
        stream.write_all(first_bytes).await.expect("body start");
        let started = Instant::now();
        let answer = read_answer(&mut stream, Duration::from_secs(6)).await;
        let took = started.elapsed();
        let Answer::Status(status, body) = &answer else {
            panic!("{how}: no 408 within 6 s: {answer:?}");
        };
        assert_eq!(*status, 408, "{how}: {body}");
        assert!(body.contains("request_timeout"), "{how}: {body}");
        assert!(
            took >= Duration::from_millis(1800) && took < Duration::from_millis(3500),
            "{how}: answered after {took:?}, the body timeout is 2 s"
        );
    }
}

#[tokio::test]
async fn connection_caps_are_enforced_and_recover() {
    let s = TestServer::spawn_with(&[
        ("HEARTH_MAX_CONNECTIONS", "40"),
        ("HEARTH_MAX_CONNECTIONS_PER_IP", "20"),
        // Held connections must outlive the test, not the header timeout.
        ("HEARTH_HEADER_READ_TIMEOUT_SECS", "30"),
    ])
    .await;
    /// Opens `n` silent connections from `ip` that the server has admitted.
    /// A slot of a connection that just ended may be freed a moment late,
    /// so one refused here is opened again.
    async fn hold(s: &TestServer, ip: &str, n: usize) -> Vec<TcpStream> {
        let mut held = Vec::new();
        for _ in 0..50 {
            while held.len() < n {
                held.push(tcp_from(ip, &s.addr, None).await.expect("connect"));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut admitted = Vec::new();
            for mut c in held {
                let mut b = [0u8; 1];
                // Nothing to read means still open; an end means refused.
                let read = tokio::time::timeout(Duration::from_millis(5), c.read(&mut b)).await;
                if read.is_err() {
                    admitted.push(c);
                }
            }
            held = admitted;
            if held.len() == n {
                return held;
            }
        }
        panic!("could not hold {n} connections from {ip}");
    }

    // Per IP: 20 held from 127.0.0.3; the 21st from there is closed unanswered,
    // while another address is still served.
    let from_3 = hold(&s, "127.0.0.3", 20).await;
    let extra = healthz_from(&s, "127.0.0.3").await;
    assert_eq!(extra, Answer::Closed, "the 21st connection from one IP");
    let other = healthz_from(&s, "127.0.0.4").await;
    assert!(
        matches!(other, Answer::Status(200, _)),
        "another IP: {other:?}"
    );

    // In total: 20 more from 127.0.0.4 makes 40; a 41st from anywhere is closed.
    let from_4 = hold(&s, "127.0.0.4", 20).await;
    let extra = healthz_from(&s, "127.0.0.5").await;
    assert_eq!(extra, Answer::Closed, "the 41st connection");

    // Hanging up frees the slots at once.
    drop(from_3);
    let mut recovered = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if matches!(healthz_from(&s, "127.0.0.5").await, Answer::Status(200, _)) {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "slots are not given back after clients hang up");
    assert!(matches!(
        healthz_from(&s, "127.0.0.3").await,
        Answer::Status(200, _)
    ));
    drop(from_4);
}

#[tokio::test]
async fn websockets_keep_counting_against_the_connection_cap() {
    let mut s = TestServer::spawn_with(&[("HEARTH_MAX_CONNECTIONS", "3")]).await;
    let alice = s.user("alice").await;
    // Let go of the pooled HTTP connection that signed Alice up.
    s.http = reqwest::Client::new();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Three upgraded sockets hold every slot; hyper has long since handed
    // them over, but they must still count.
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let mut ws = s.ws(&alice).await;
        ws.hello(None).await;
        sockets.push(ws);
    }
    let refused = healthz_from(&s, "127.0.0.1").await;
    assert_eq!(refused, Answer::Closed, "a fourth connection past the cap");
    // Closing one frees its slot.
    drop(sockets.pop());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if healthz_from(&s, "127.0.0.1").await != Answer::Closed {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slot was never freed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
