//! The test harness: a real `hearth` process on an ephemeral port with a
//! temporary data directory, and clients that talk to it over HTTP and
//! WebSocket exactly as users' programs would.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Generous limits so tests can sign up and log in many users quickly;
/// tests of the limits themselves override these.
const TEST_ENV: &[(&str, &str)] = &[
    ("HEARTH_SIGNUP_BURST", "10000"),
    ("HEARTH_LOGIN_PER_MINUTE", "10000"),
    ("HEARTH_SEND_PER_SEC", "100000"),
    ("HEARTH_SEND_BURST", "100000"),
    ("HEARTH_LOG_LEVEL", "warn"),
];

pub struct TestServer {
    pub addr: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
    env: Vec<(String, String)>,
    pub http: reqwest::Client,
}

impl TestServer {
    pub async fn spawn() -> TestServer {
        Self::spawn_with(&[]).await
    }

    /// Starts a server with extra `HEARTH_*` settings.
    pub async fn spawn_with(env: &[(&str, &str)]) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut s = TestServer {
            addr: String::new(),
            dir,
            child: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            http: http_client(),
        };
        s.start("127.0.0.1:0");
        s
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start(&mut self, listen: &str) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
        cmd.arg("serve")
            .arg("--listen")
            .arg(listen)
            .arg("--data")
            .arg(self.data_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in TEST_ENV {
            cmd.env(k, v);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start hearth");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("server did not start: {line:?}"))
            .to_string();
        self.addr = addr;
        self.child = Some(child);
    }

    /// Kills the server with SIGKILL: no shutdown, no final flush.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server with SIGTERM and returns its exit status and how
    /// long it took.
    pub fn terminate(&mut self) -> (std::process::ExitStatus, Duration) {
        let mut c = self.child.take().expect("server running");
        let started = std::time::Instant::now();
        unsafe_free_kill(c.id(), "TERM");
        let status = c.wait().expect("wait for server");
        (status, started.elapsed())
    }

    /// Starts the server again on the same port and data directory.
    pub fn restart(&mut self) {
        let addr = self.addr.clone();
        self.start(&addr);
        // Pooled connections went down with the old process.
        self.http = http_client();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/api/v1/ws", self.addr)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        response(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        response(req.send().await.expect("request")).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.http.delete(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        response(req.send().await.expect("request")).await
    }

    /// Signs up and logs in `name` (password `password-NAME`).
    pub async fn user(&self, name: &str) -> User {
        let password = format!("password-{name}");
        let (status, body) = self
            .post(
                "/api/v1/signup",
                None,
                json!({"username": name, "email": format!("{name}@example.com"), "password": password}),
            )
            .await;
        assert_eq!(status, 201, "signup {name}: {body}");
        self.login(name, &password).await
    }

    pub async fn login(&self, login: &str, password: &str) -> User {
        let (status, body) = self
            .post(
                "/api/v1/login",
                None,
                json!({"login": login, "password": password}),
            )
            .await;
        assert_eq!(status, 200, "login {login}: {body}");
        User {
            id: body["user"]["id"].as_str().expect("user id").to_string(),
            name: body["user"]["username"]
                .as_str()
                .expect("username")
                .to_string(),
            token: body["token"].as_str().expect("token").to_string(),
        }
    }

    /// Creates a room as `owner`; returns its id.
    pub async fn room(&self, owner: &User, name: &str) -> String {
        let (status, body) = self
            .post("/api/v1/rooms", Some(&owner.token), json!({"name": name}))
            .await;
        assert_eq!(status, 201, "create room {name}: {body}");
        body["room"]["id"].as_str().expect("room id").to_string()
    }

    pub async fn join(&self, user: &User, room: &str) {
        let (status, body) = self
            .post(
                &format!("/api/v1/rooms/{room}/join"),
                Some(&user.token),
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "join: {body}");
    }

    /// Posts over REST; returns the stored message.
    pub async fn say(&self, user: &User, room: &str, body: &str, client_id: Option<&str>) -> Value {
        let mut req = json!({"body": body});
        if let Some(c) = client_id {
            req["client_id"] = json!(c);
        }
        let (status, resp) = self
            .post(
                &format!("/api/v1/rooms/{room}/messages"),
                Some(&user.token),
                req,
            )
            .await;
        assert!(status == 201 || status == 200, "post: {status} {resp}");
        resp["message"].clone()
    }

    /// Every message of a room, following `after=` pages.
    pub async fn history(&self, user: &User, room: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let (status, body) = self
                .get(
                    &format!("/api/v1/rooms/{room}/messages?limit=200&after={after}"),
                    Some(&user.token),
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

    /// Opens a WebSocket authenticated with `user`'s token.
    pub async fn ws(&self, user: &User) -> Ws {
        self.ws_with(user, &[]).await.expect("websocket connects")
    }

    /// Opens a WebSocket with extra request headers; the error is the HTTP
    /// status when the upgrade is refused.
    pub async fn ws_with(&self, user: &User, headers: &[(&str, &str)]) -> Result<Ws, u16> {
        let mut req = self.ws_url().into_client_request().expect("ws request");
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {}", user.token).parse().expect("header"),
        );
        for (k, v) in headers {
            req.headers_mut()
                .insert(http_header_name(k), v.parse().expect("header value"));
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((stream, _)) => Ok(Ws { stream }),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("websocket connect failed: {e}"),
        }
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client")
}

fn http_header_name(name: &str) -> tokio_tungstenite::tungstenite::http::HeaderName {
    name.parse().expect("header name")
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Sends a signal by name with the `kill` command (the crate forbids unsafe).
pub fn unsafe_free_kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

async fn response(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

pub struct User {
    pub id: String,
    pub name: String,
    pub token: String,
}

/// A WebSocket client speaking the JSON protocol.
pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How long a test waits for an expected frame.
pub const FRAME_WAIT: Duration = Duration::from_secs(10);

impl Ws {
    pub async fn send_json(&mut self, value: Value) {
        self.stream
            .send(WsMessage::Text(value.to_string().into()))
            .await
            .expect("ws send");
    }

    /// Says hello (optionally resuming) and returns the `ready` frame.
    pub async fn hello(&mut self, resume: Option<Value>) -> Value {
        let mut hello = json!({"type": "hello"});
        if let Some(r) = resume {
            hello["resume"] = r;
        }
        self.send_json(hello).await;
        let ready = self.next().await.expect("ready frame");
        assert_eq!(ready["type"], "ready", "{ready}");
        ready
    }

    pub async fn send(&mut self, room: &str, client_id: &str, body: &str) {
        self.send_json(json!({"type": "send", "room": room, "client_id": client_id, "body": body}))
            .await;
    }

    /// The next JSON frame, or `None` when the connection closed or nothing
    /// came within [`FRAME_WAIT`].
    pub async fn next(&mut self) -> Option<Value> {
        self.next_within(FRAME_WAIT).await
    }

    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let msg = tokio::time::timeout(wait, self.stream.next())
                .await
                .ok()??
                .ok()?;
            match msg {
                WsMessage::Text(t) => return serde_json::from_str(&t).ok(),
                WsMessage::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Skips frames until one of `kind` arrives.
    pub async fn expect(&mut self, kind: &str) -> Value {
        loop {
            let f = self.next().await.unwrap_or_else(|| {
                panic!("expected a {kind} frame, the connection ended or went quiet")
            });
            if f["type"] == kind {
                return f;
            }
        }
    }

    /// Waits for the close frame and returns its code.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            let msg = tokio::time::timeout(FRAME_WAIT, self.stream.next())
                .await
                .ok()??;
            match msg {
                Ok(WsMessage::Close(Some(CloseFrame { code, .. }))) => return Some(code.into()),
                Ok(WsMessage::Close(None)) => return Some(1005),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }
}

/// Checks a list of messages is exactly seqs `1..=n` of one room, in order.
pub fn assert_contiguous(messages: &[Value], n: u64) {
    let seqs: Vec<u64> = messages
        .iter()
        .map(|m| m["seq"].as_u64().expect("seq"))
        .collect();
    let want: Vec<u64> = (1..=n).collect();
    assert_eq!(
        seqs, want,
        "seqs must be 1..={n} with no gap, duplicate or reordering"
    );
}
