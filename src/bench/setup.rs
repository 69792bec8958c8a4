//! What a scenario needs before it starts, made over the real HTTP API:
//! users with session tokens and one room they all joined.
//!
//! Signup and login each cost an argon2 hash (~20 ms of a core in a
//! release build), so a bench does not sign up one user per socket: it
//! signs up `users` accounts a few at a time and opens several sockets per
//! session token, as a person with several devices would.

use std::net::SocketAddr;
use std::sync::Arc;

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
        let bytes = resp.into_body().collect().await?.to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok((status, value))
    }

    /// Like [`Http::call`], but any status other than `want` is an error.
    async fn expect(
        &mut self,
        want: u16,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let (status, value) = self.call(method, path, token, body).await?;
        if status != want {
            bail!("{path}: expected HTTP {want}, got {status}: {value}");
        }
        Ok(value)
    }
}

/// Accounts and the room a scenario runs in.
pub struct Fixture {
    pub room_id: String,
    /// One session token per user; clients share them round-robin.
    pub tokens: Vec<String>,
    /// Each user's password, for a login storm.
    pub logins: Vec<(String, String)>,
}

/// Signs up `users` accounts (at most `parallel` at once), logs each in,
/// creates a room and joins everyone to it.
pub async fn fixture(addr: SocketAddr, users: usize, parallel: usize) -> anyhow::Result<Fixture> {
    let run = format!("b{:06x}", rand::random::<u32>() & 0xff_ffff);
    let gate = Arc::new(Semaphore::new(parallel.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..users.max(1) {
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
    let mut http = Http::connect(addr).await?;
    let room = http
        .expect(
            201,
            Method::POST,
            "/api/v1/rooms",
            Some(&signed[0].1),
            Some(&json!({"name": format!("{run}-room")})),
        )
        .await?;
    let room_id = room["room"]["id"]
        .as_str()
        .context("room created without an id")?
        .to_string();
    // Joins are cheap (no hash) but each is flushed: a few at a time.
    let mut joins = tokio::task::JoinSet::new();
    for (_, token, _, _) in signed.iter().skip(1) {
        let gate = gate.clone();
        let token = token.clone();
        let path = format!("/api/v1/rooms/{room_id}/join");
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
        room_id,
        tokens: signed.iter().map(|s| s.1.clone()).collect(),
        logins: signed.into_iter().map(|s| (s.2, s.3)).collect(),
    })
}
