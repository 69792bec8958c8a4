//! What a scenario needs before it starts, made over the real HTTP API:
//! users with session tokens, and the rooms they joined.
//!
//! Signup and login each cost an argon2 hash (~20 ms of a core in a
//! release build), so a bench does not sign up one user per socket: it
//! signs up `users` accounts a few at a time and opens several sockets per
//! session token, as a person with several devices would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// One keep-alive HTTP/1.1 connection to the server.
pub struct Http {
    addr: SocketAddr,
    send: SendRequest<Full<Bytes>>,
}

impl Http {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Http> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Http { addr, send })
    }

    /// Sends a request and returns the status and the JSON body (Null when empty).
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let (status, bytes) = self.raw(method, path, token, body).await?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok((status, value))
    }

    /// [`Http::call`] for setup: a `429` or `503` (the server busy hashing
    /// passwords, say, on a host whose cores other programs keep busy) is
    /// tried again after the `Retry-After` it gives, for up to
    /// [`SETUP_PATIENCE`] in all, as a well-behaved client would.
    pub async fn call_patiently(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let started = std::time::Instant::now();
        loop {
            let (status, bytes, retry_after) =
                self.exchange(method.clone(), path, token, body).await?;
            let busy = status == 429 || status == 503;
            if !busy || started.elapsed() >= SETUP_PATIENCE {
                let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                return Ok((status, value));
            }
            let wait = Duration::from_secs(retry_after.unwrap_or(1).clamp(1, 30));
            tokio::time::sleep(wait.min(SETUP_PATIENCE.saturating_sub(started.elapsed()))).await;
        }
    }

    /// [`Http::call`], with the body as it came: for timing a request
    /// without the cost of parsing its answer.
    pub async fn raw(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Bytes)> {
        let (status, bytes, _) = self.exchange(method, path, token, body).await?;
        Ok((status, bytes))
    }

    /// One request: the status, the body and any `Retry-After` (seconds).
    async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Bytes, Option<u64>)> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let payload = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Bytes::from(serde_json::to_vec(b)?)
            }
            None => Bytes::new(),
        };
        self.send.ready().await?;
        let resp = self
            .send
            .send_request(req.body(Full::new(payload))?)
            .await?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes, retry_after))
    }

    /// The server's `/metrics` counter `name` (Prometheus text), if it is there.
    pub async fn metric(&mut self, name: &str) -> anyhow::Result<Option<f64>> {
        let req = Request::builder()
            .method(Method::GET)
            .uri("/metrics")
            .header("host", self.addr.to_string())
            .body(Full::new(Bytes::new()))?;
        self.send.ready().await?;
        let resp = self.send.send_request(req).await?;
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok(String::from_utf8_lossy(&bytes).lines().find_map(|l| {
            let (key, value) = l.split_once(' ')?;
            (key == name).then(|| value.trim().parse().ok())?
        }))
    }

    /// Like [`Http::call_patiently`], but any status other than `want` is
    /// an error.
    pub async fn expect(
        &mut self,
        want: u16,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let (status, value) = self.call_patiently(method, path, token, body).await?;
        if status != want {
            bail!("{path}: expected HTTP {want}, got {status}: {value}");
        }
        Ok(value)
    }
}

/// How long setup keeps retrying a request the server answers with `429`
/// or `503`.
pub const SETUP_PATIENCE: Duration = Duration::from_secs(120);

/// Accounts and the rooms a scenario runs in.
pub struct Fixture {
    /// User `u` is a member of room `u % room_ids.len()` and of no other.
    pub room_ids: Vec<String>,
    /// One session token per user.
    pub tokens: Vec<String>,
    /// Each user's password, for a login storm.
    pub logins: Vec<(String, String)>,
}

/// Signs up `users` accounts (at most `parallel` at once; rounded up to a
/// multiple of `rooms`), logs each in, creates `rooms` rooms and puts user
/// `u` in room `u % rooms`, so each user's sockets hear exactly one room.
pub async fn fixture(
    addr: SocketAddr,
    users: usize,
    rooms: usize,
    parallel: usize,
) -> anyhow::Result<Fixture> {
    let rooms = rooms.max(1);
    let users = users.max(1).next_multiple_of(rooms);
    let run = format!("b{:06x}", rand::random::<u32>() & 0xff_ffff);
    let gate = Arc::new(Semaphore::new(parallel.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..users {
        let gate = gate.clone();
        let name = format!("{run}u{i}");
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let password = format!("pw-{name}-bench");
            let mut http = Http::connect(addr).await?;
            http.expect(
                201,
                Method::POST,
                "/api/v1/signup",
                None,
                Some(&json!({"username": name, "email": format!("{name}@bench.invalid"), "password": password})),
            )
            .await?;
            let login = http
                .expect(
                    200,
                    Method::POST,
                    "/api/v1/login",
                    None,
                    Some(&json!({"login": name, "password": password})),
                )
                .await?;
            let token = login["token"]
                .as_str()
                .context("login answered without a token")?
                .to_string();
            anyhow::Ok((i, token, name, password))
        });
    }
    let mut signed = Vec::with_capacity(users);
    while let Some(r) = tasks.join_next().await {
        signed.push(r.context("a signup task panicked")??);
    }
    signed.sort_by_key(|s| s.0);
    // User r creates room r; every later user of that room joins it.
    let mut creates = tokio::task::JoinSet::new();
    for (r, (_, token, _, _)) in signed.iter().take(rooms).enumerate() {
        let gate = gate.clone();
        let token = token.clone();
        let name = format!("{run}-room{r}");
        creates.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let mut http = Http::connect(addr).await?;
            let room = http
                .expect(
                    201,
                    Method::POST,
                    "/api/v1/rooms",
                    Some(&token),
                    Some(&json!({ "name": name })),
                )
                .await?;
            let id = room["room"]["id"]
                .as_str()
                .context("room created without an id")?
                .to_string();
            anyhow::Ok((r, id))
        });
    }
    let mut room_ids = vec![String::new(); rooms];
    while let Some(r) = creates.join_next().await {
        let (r, id) = r.context("a room task panicked")??;
        room_ids[r] = id;
    }
    // Joins are cheap (no hash) but each is flushed: a few at a time.
    let mut joins = tokio::task::JoinSet::new();
    for (u, (_, token, _, _)) in signed.iter().enumerate().skip(rooms) {
        let gate = gate.clone();
        let token = token.clone();
        let path = format!("/api/v1/rooms/{}/join", room_ids[u % rooms]);
        joins.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let mut http = Http::connect(addr).await?;
            http.expect(200, Method::POST, &path, Some(&token), Some(&json!({})))
                .await
                .map(|_| ())
        });
    }
    while let Some(r) = joins.join_next().await {
        r.context("a join task panicked")??;
    }
    Ok(Fixture {
        room_ids,
        tokens: signed.iter().map(|s| s.1.clone()).collect(),
        logins: signed.into_iter().map(|s| (s.2, s.3)).collect(),
    })
}

/// Stores `n` messages in `room` over `connections` keep-alive connections,
/// message `k` reading `body(k)`; any refusal fails the setup.
pub async fn prefill(
    addr: SocketAddr,
    token: &str,
    room: &str,
    n: u64,
    connections: u64,
    body: fn(u64) -> String,
) -> anyhow::Result<()> {
    let connections = connections.max(1);
    let per = n.div_ceil(connections);
    let mut set = tokio::task::JoinSet::new();
    for c in 0..connections {
        let token = token.to_string();
        let path = format!("/api/v1/rooms/{room}/messages");
        set.spawn(async move {
            let mut http = Http::connect(addr).await?;
            for k in (c * per)..((c + 1) * per).min(n) {
                let body = json!({ "body": body(k) });
                let (status, v) = http
                    .call_patiently(Method::POST, &path, Some(&token), Some(&body))
                    .await?;
                if status != 201 {
                    bail!("prefill post failed: {status} {v}");
                }
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers `503` with `Retry-After: 1` to the first
    /// request and `201` to the next, counting requests.
    async fn busy_once() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = seen.clone();
        tokio::spawn(async move {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok(n) = sock.read(&mut buf).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let answer = if n == 0 {
                    "HTTP/1.1 503 Busy\r\nRetry-After: 1\r\nContent-Length: 2\r\n\r\n{}"
                } else {
                    "HTTP/1.1 201 Created\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"
                };
                if sock.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        (addr, seen)
    }

    #[tokio::test]
    async fn setup_waits_out_retry_after_and_tries_again() {
        let (addr, seen) = busy_once().await;
        let mut http = Http::connect(addr).await.expect("connect");
        let started = std::time::Instant::now();
        let value = http
            .expect(201, Method::POST, "/api/v1/signup", None, Some(&json!({})))
            .await
            .expect("the second try succeeds");
        assert_eq!(value["ok"], true);
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "waited for Retry-After"
        );
    }

    #[tokio::test]
    async fn a_measured_call_is_not_retried() {
        let (addr, seen) = busy_once().await;
        let mut http = Http::connect(addr).await.expect("connect");
        let (status, _) = http
            .call(Method::POST, "/api/v1/login", None, Some(&json!({})))
            .await
            .expect("answered");
        assert_eq!(status, 503);
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
