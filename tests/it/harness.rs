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
    ("HEARTH_MAX_FRAMES_PER_SEC", "100000"),
    ("HEARTH_SEARCH_PER_SEC", "1000"),
    ("HEARTH_SEARCH_BURST", "1000"),
    ("HEARTH_LOG_LEVEL", "warn"),
];

pub struct TestServer {
    pub addr: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
    env: Vec<(String, String)>,
    /// Whether the server's stderr goes to `server.log` (see [`TestServer::log`]).
    logged: bool,
    pub http: reqwest::Client,
}

impl TestServer {
    /// Starts a server whose log is kept, for tests that read it.
    pub async fn spawn_logged(env: &[(&str, &str)]) -> TestServer {
        let mut s = Self::unstarted(env);
        s.logged = true;
        s.start("127.0.0.1:0");
        s
    }

    /// Everything the server has logged so far (with [`TestServer::spawn_logged`]).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The log once it holds `needle`. Lines at `info` and below reach the
    /// file in batches, at most 0.1 s late, so a test looking for one waits
    /// for it; after 5 s it gets what there is.
    pub async fn log_holding(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.log();
            if log.contains(needle) || std::time::Instant::now() > deadline {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn spawn() -> TestServer {
        Self::spawn_with(&[]).await
    }

    /// Starts a server with extra `HEARTH_*` settings.
    pub async fn spawn_with(env: &[(&str, &str)]) -> TestServer {
        let mut s = Self::unstarted(env);
        s.start("127.0.0.1:0");
        s
    }

    fn unstarted(env: &[(&str, &str)]) -> TestServer {
        TestServer {
            addr: String::new(),
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            logged: false,
            http: http_client(),
        }
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
            .stderr(if self.logged {
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.path().join("server.log"))
                    .expect("open the server log");
                Stdio::from(log)
            } else {
                Stdio::inherit()
            });
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
            .or_else(|| line.trim().strip_prefix("listening on https://"))
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

    /// Sets a `HEARTH_*` setting for the next [`TestServer::restart`].
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
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

    /// `method` on `path` with a JSON body, signed in with `token`.
    pub async fn request(&self, method: &str, path: &str, token: &str, body: Value) -> Reply {
        self.call(method, path)
            .auth(Auth::Bearer(token))
            .json(body)
            .send()
            .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.http.delete(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        response(req.send().await.expect("request")).await
    }

    /// A POST that, like any client, waits and tries again while the
    /// server answers `503 busy` (password hashing runs in the idle
    /// scheduling class, so a machine busy with other work can hold it up
    /// past its queue's wait). At most 20 tries, a second apart.
    pub async fn post_until_not_busy(&self, path: &str, body: Value) -> (u16, Value) {
        for _ in 0..19 {
            let (status, reply) = self.post(path, None, body.clone()).await;
            if status != 503 || reply["error"]["code"] != "busy" {
                return (status, reply);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        self.post(path, None, body).await
    }

    /// Signs up and logs in `name` (password `password-NAME`).
    pub async fn user(&self, name: &str) -> User {
        let password = format!("password-{name}");
        let (status, body) = self
            .post_until_not_busy(
                "/api/v1/signup",
                json!({"username": name, "email": format!("{name}@example.com"), "password": password}),
            )
            .await;
        assert_eq!(status, 201, "signup {name}: {body}");
        self.login(name, &password).await
    }

    /// `/metrics` at `url` as a map from `name{labels}` to value, checked
    /// to be OpenMetrics text.
    pub async fn scrape(&self, url: &str) -> std::collections::HashMap<String, f64> {
        let resp = self.http.get(url).send().await.expect("scrape");
        assert_eq!(resp.status(), 200);
        let content_type = resp.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        let text = resp.text().await.expect("text");
        assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (name, value) = l.rsplit_once(' ').expect("name value");
                (name.to_string(), value.parse().expect("a number"))
            })
            .collect()
    }

    pub async fn login(&self, login: &str, password: &str) -> User {
        let (status, body) = self
            .post_until_not_busy(
                "/api/v1/login",
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
/// Runs the CLI, `hearth ARGS --data DATA`, as an operator would, feeding
/// `stdin`.
pub fn hearth_in(data: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("HEARTH_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hearth");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("hearth output")
}

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
            .send(WsMessage::Text(value.to_string()))
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
        // One deadline for the whole wait: server pings must not extend it.
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.stream.next())
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
        let deadline = tokio::time::Instant::now() + FRAME_WAIT;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.stream.next())
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

/// How a request proves who it is.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    Anonymous,
    Bearer(&'a str),
    /// The `hearth_session` cookie, as a browser sends it.
    Cookie(&'a str),
}

/// A request being built: any method, credentials, headers and body.
pub struct Call {
    inner: reqwest::RequestBuilder,
}

/// Everything a response said.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl TestServer {
    /// Starts a request; nothing is sent until [`Call::send`].
    pub fn call(&self, method: &str, path: &str) -> Call {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        Call {
            inner: self.http.request(method, self.url(path)),
        }
    }

    /// This server's own origin, as a browser on its pages would send it.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Posts `n` messages in a row over one WebSocket and waits for every
    /// ack and every message to come back (so all are published, not only
    /// durable): much faster than `n` REST calls when a test needs history.
    pub async fn post_many(&self, user: &User, room: &str, n: usize) {
        let mut ws = self.ws(user).await;
        ws.hello(None).await;
        for i in 0..n {
            ws.send(room, &format!("fill-{i}"), &format!("message {i}"))
                .await;
        }
        let (mut acked, mut delivered) = (0, 0);
        while acked < n || delivered < n {
            let f = ws.next().await.expect("acks and messages keep coming");
            assert_ne!(f["type"], "error", "{f}");
            match f["type"].as_str() {
                Some("ack") => acked += 1,
                Some("message") => delivered += 1,
                _ => {}
            }
        }
    }

    /// Opens a WebSocket with exactly `headers` (no credentials are added);
    /// the error is the status and body of a refused upgrade.
    pub async fn ws_raw_headers(&self, headers: &[(&str, &str)]) -> Result<Ws, (u16, Value)> {
        self.ws_handshake(headers).await.map(|(ws, _)| ws)
    }

    /// Opens a WebSocket speaking the `hearth.msgpack` subprotocol; returns
    /// it with the subprotocol the server chose.
    pub async fn ws_msgpack(&self, user: &User) -> (Ws, Option<String>) {
        let bearer = format!("Bearer {}", user.token);
        self.ws_handshake(&[
            ("authorization", &bearer),
            ("sec-websocket-protocol", "hearth.msgpack"),
        ])
        .await
        .expect("websocket connects")
    }

    async fn ws_handshake(
        &self,
        headers: &[(&str, &str)],
    ) -> Result<(Ws, Option<String>), (u16, Value)> {
        let mut req = self.ws_url().into_client_request().expect("ws request");
        for (k, v) in headers {
            req.headers_mut()
                .insert(http_header_name(k), v.parse().expect("header value"));
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((stream, resp)) => {
                let protocol = resp
                    .headers()
                    .get("sec-websocket-protocol")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                Ok((Ws { stream }, protocol))
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let body = resp
                    .body()
                    .as_deref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                Err((resp.status().as_u16(), body))
            }
            Err(e) => panic!("websocket connect failed: {e}"),
        }
    }
}

impl Call {
    pub fn auth(mut self, auth: Auth<'_>) -> Call {
        self.inner = match auth {
            Auth::Anonymous => self.inner,
            Auth::Bearer(t) => self.inner.bearer_auth(t),
            Auth::Cookie(t) => self.inner.header("cookie", format!("hearth_session={t}")),
        };
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Call {
        self.inner = self.inner.header(name, value);
        self
    }

    pub fn json(mut self, body: Value) -> Call {
        self.inner = self.inner.json(&body);
        self
    }

    /// A body sent as is, labelled as JSON.
    pub fn raw(mut self, body: impl Into<reqwest::Body>) -> Call {
        self.inner = self
            .inner
            .header("content-type", "application/json")
            .body(body);
        self
    }

    /// A body sent as is, labelled `content_type` (a picture, say).
    pub fn body(mut self, content_type: &str, body: impl Into<reqwest::Body>) -> Call {
        self.inner = self.inner.header("content-type", content_type).body(body);
        self
    }

    /// Sends, and keeps the response body as bytes (an image, not JSON).
    pub async fn fetch(self) -> Fetched {
        let resp = self.inner.send().await.expect("request");
        Fetched {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            bytes: resp.bytes().await.expect("response body").to_vec(),
        }
    }

    pub async fn send(self) -> Reply {
        let resp = self.inner.send().await.expect("request");
        let headers = resp.headers().clone();
        let (status, body) = response(resp).await;
        Reply {
            status,
            headers,
            body,
        }
    }
}

/// A response whose body is kept as it came.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: Vec<u8>,
}

impl Fetched {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Reply {
    /// Checks this is the API's error shape, with `status` and `code`, and
    /// a message a person can read.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_api_error(self.status, &self.body, status, code);
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "errors are JSON, not {content_type:?}"
        );
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Checks `{"error":{"code","message"}}` with nothing else, the status and
/// the code: the one error shape of the whole API.
#[track_caller]
pub fn assert_api_error(got_status: u16, body: &Value, status: u16, code: &str) {
    assert_eq!(
        (got_status, body["error"]["code"].as_str()),
        (status, Some(code)),
        "wanted {status} {code}, got {got_status} {body}"
    );
    let error = body["error"].as_object().expect("error object");
    let outer_keys = body.as_object().map(|o| o.len());
    assert_eq!(
        (outer_keys, error.len()),
        (Some(1), 2),
        "the error shape is exactly {{\"error\":{{\"code\",\"message\"}}}}: {body}"
    );
    assert!(
        error["message"].as_str().is_some_and(|m| m.len() > 5),
        "the message is a sentence: {body}"
    );
}

impl Ws {
    /// Sends a client frame as a binary MessagePack frame.
    pub async fn send_msgpack(&mut self, value: Value) {
        let bytes = rmp_serde::to_vec_named(&value).expect("msgpack encode");
        self.stream
            .send(WsMessage::Binary(bytes))
            .await
            .expect("ws send");
    }

    /// The next binary frame decoded from MessagePack; `None` when the
    /// connection closed or went quiet. A text frame here is a failure.
    pub async fn next_msgpack(&mut self) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + FRAME_WAIT;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??
                .ok()?;
            match msg {
                WsMessage::Binary(b) => {
                    return Some(rmp_serde::from_slice(&b).expect("a MessagePack map"))
                }
                WsMessage::Text(t) => panic!("a msgpack connection got a text frame: {t}"),
                WsMessage::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Skips MessagePack frames until one of `kind` arrives.
    pub async fn expect_msgpack(&mut self, kind: &str) -> Value {
        loop {
            let f = self.next_msgpack().await.unwrap_or_else(|| {
                panic!("expected a {kind} frame, the connection ended or went quiet")
            });
            if f["type"] == kind {
                return f;
            }
        }
    }

    /// Proves the connection still works: a `send` is acked and comes back
    /// as a message (both are consumed, so the next frame is fresh).
    pub async fn assert_usable(&mut self, room: &str, client_id: &str) {
        self.send(room, client_id, "still here").await;
        let (mut acked, mut delivered) = (false, false);
        while !(acked && delivered) {
            let f = self
                .next()
                .await
                .expect("the connection stays open and answers");
            assert_ne!(f["type"], "error", "{f}");
            match f["type"].as_str() {
                Some("ack") => acked = f["client_id"] == client_id,
                Some("message") => delivered |= f["message"]["client_id"] == client_id,
                _ => {}
            }
        }
    }
}

/// A WebSocket client with no library behind it: it answers nothing on its
/// own (no automatic pongs), so tests can play a silent or broken peer and
/// see every frame the server sends, pings included.
pub struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// One frame as it came off the wire.
#[derive(Debug)]
pub struct RawFrame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The code of a close frame (1005 when it carries none).
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 0x8).then(|| match self.payload.as_slice() {
            [a, b, ..] => u16::from_be_bytes([*a, *b]),
            _ => 1005,
        })
    }
}

impl RawWs {
    /// Upgrades with a Bearer token; panics unless the server answers 101.
    pub async fn connect(server: &TestServer, token: &str) -> RawWs {
        RawWs::connect_from(server, token, "127.0.0.1", None).await
    }

    /// Sends one masked frame.
    pub async fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        use tokio::io::AsyncWriteExt;
        let mask = [0x37u8, 0xfa, 0x21, 0x3d];
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&out).await.expect("write frame");
    }

    pub async fn send_text(&mut self, value: Value) {
        self.send_frame(true, 0x1, value.to_string().as_bytes())
            .await;
    }

    /// The next frame within `wait`; `None` on timeout or end of stream.
    pub async fn next_frame(&mut self, wait: Duration) -> Option<RawFrame> {
        use tokio::io::AsyncReadExt;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(frame) = self.parse_frame() {
                return Some(frame);
            }
            let mut chunk = [0u8; 8192];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next text frame parsed as JSON, skipping control frames.
    pub async fn next_json(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let f = self.next_frame(wait).await?;
            match f.opcode {
                0x1 => return serde_json::from_slice(&f.payload).ok(),
                0x8 => return None,
                _ => continue,
            }
        }
    }

    /// Reads until a close frame; its code, or `None` if none came within
    /// `wait`.
    pub async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let f = self.next_frame(left).await?;
            if let Some(code) = f.close_code() {
                return Some(code);
            }
        }
    }

    fn parse_frame(&mut self) -> Option<RawFrame> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        assert_eq!(b[1] & 0x80, 0, "server frames are never masked");
        let (len, start) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => (
                u64::from_be_bytes(b[2..10].try_into().expect("8 bytes")) as usize,
                10,
            ),
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        if b.len() < start + len {
            return None;
        }
        let frame = RawFrame {
            fin: b[0] & 0x80 != 0,
            opcode: b[0] & 0x0f,
            payload: b[start..start + len].to_vec(),
        };
        self.buf.drain(..start + len);
        Some(frame)
    }
}

// ---- Helpers for the reliability suites (crash, chaos, hostile, abuse) ----

/// Opens a TCP connection to the server from a chosen loopback address
/// (127.0.0.2, 127.0.0.3, ...: distinct client IPs on one machine), with an
/// optional small receive buffer to play a client that reads slowly.
pub async fn tcp_from(
    source_ip: &str,
    server_addr: &str,
    recv_buffer: Option<u32>,
) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    let source: std::net::IpAddr = source_ip.parse().expect("a loopback IPv4 address");
    socket.bind(std::net::SocketAddr::new(source, 0))?;
    let target: std::net::SocketAddr = server_addr.parse().expect("the server's address");
    socket.connect(target).await
}

impl TestServer {
    /// An HTTP client whose requests come from `source_ip` (a loopback
    /// address), so per-IP limits see a different client.
    pub fn http_from(&self, source_ip: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .local_address(Some(source_ip.parse().expect("an IP address")))
            .build()
            .expect("http client")
    }

    /// The server process's id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the server process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl RawWs {
    /// Upgrades like [`RawWs::connect`], from `source_ip`, with an optional
    /// small receive buffer (a reader that cannot keep up).
    pub async fn connect_from(
        server: &TestServer,
        token: &str,
        source_ip: &str,
        recv_buffer: Option<u32>,
    ) -> RawWs {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tcp_from(source_ip, &server.addr, recv_buffer)
            .await
            .expect("connect");
        let request = format!(
            "GET /api/v1/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Authorization: Bearer {token}\r\n\r\n",
            server.addr
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = tokio::time::timeout(FRAME_WAIT, stream.read(&mut chunk))
                .await
                .expect("handshake answer in time")
                .expect("read");
            assert!(n > 0, "the server closed during the handshake");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        RawWs {
            stream,
            buf: buf[end..].to_vec(),
        }
    }

    /// Writes bytes as they are: hand-made frames, broken or not.
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(bytes).await
    }

    /// Reads until the server closes the TCP connection; true if it did
    /// within `wait`. Frames read on the way are discarded; returns the
    /// close code seen, if any, as well.
    pub async fn wait_for_eof(&mut self, wait: Duration) -> (bool, Option<u16>) {
        use tokio::io::AsyncReadExt;
        let deadline = tokio::time::Instant::now() + wait;
        let mut code = None;
        loop {
            while let Some(f) = self.parse_frame() {
                if let Some(c) = f.close_code() {
                    code = Some(c);
                }
            }
            let mut chunk = [0u8; 65536];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return (false, code),
                Ok(Ok(0)) | Ok(Err(_)) => return (true, code),
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

impl TestServer {
    /// Sends `signal` (e.g. "TERM") to the server without waiting for it.
    pub fn signal(&self, signal: &str) {
        let pid = self.pid().expect("server running");
        unsafe_free_kill(pid, signal);
    }

    /// Waits, at most `within`, for the server process to exit; its status.
    pub async fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + within;
        loop {
            let child = self.child.as_mut().expect("server started");
            if let Some(status) = child.try_wait().expect("wait for server") {
                self.child = None;
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not exit within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One value of a scrape, which must have it.
pub fn metric(m: &std::collections::HashMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("no metric {key}; have {:?}", m.keys().collect::<Vec<_>>()))
}
