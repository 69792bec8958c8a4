//! HTTPS and WSS end to end with a self-signed certificate made by
//! `hearth cert self-signed`: HTTP/2 by ALPN, Secure cookies and HSTS, a
//! WebSocket over TLS, the handshake timeout, and reload on SIGHUP.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{unsafe_free_kill, TestServer};

/// Makes `cert.pem` and `key.pem` for localhost in `dir` with the CLI.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["cert", "self-signed", "--host", "localhost", "--out"])
        .arg(dir)
        .output()
        .expect("run hearth cert");
    assert!(out.status.success(), "{out:?}");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

async fn tls_server(cert: &Path, key: &Path, extra: &[(&str, &str)]) -> TestServer {
    let mut env = vec![
        ("HEARTH_CERT", cert.to_str().expect("utf-8 path")),
        ("HEARTH_KEY", key.to_str().expect("utf-8 path")),
    ];
    env.extend_from_slice(extra);
    TestServer::spawn_with(&env).await
}

/// An HTTPS client that trusts only `cert` and sends "localhost" to the server.
fn https_client(cert: &Path, addr: &str) -> reqwest::Client {
    let pem = std::fs::read(cert).expect("read cert");
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
        .resolve("localhost", addr.parse().expect("addr"))
        .timeout(Duration::from_secs(20))
        .build()
        .expect("https client")
}

fn https(s: &TestServer, path: &str) -> String {
    let port = s.addr.rsplit(':').next().expect("port");
    format!("https://localhost:{port}{path}")
}

type Wss = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// A WebSocket over TLS (HTTP/1.1 by ALPN), trusting only `cert`.
async fn wss(s: &TestServer, cert: &Path, token: &str) -> Result<Wss, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).expect("cert") {
        roots.add(c.expect("cert")).expect("add root");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("tls versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(&s.addr)
        .await
        .map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let url = https(s, "/api/v1/ws").replacen("https", "wss", 1);
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (ws, _) = tokio_tungstenite::client_async(req, tls)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

async fn send(ws: &mut Wss, value: Value) {
    ws.send(Message::Text(value.to_string()))
        .await
        .expect("send");
}

/// The next frame of `kind`, skipping others.
async fn expect(ws: &mut Wss, kind: &str) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} frame in time"))
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).expect("json");
            if v["type"] == kind {
                return v;
            }
        }
    }
}

/// Creates a room over HTTPS, says hello over WSS and sends the room's
/// first message, checking its ack names seq 1; returns the socket.
async fn room_and_first_send(
    client: &reqwest::Client,
    s: &TestServer,
    cert: &Path,
    token: &str,
    name: &str,
    body: &str,
) -> Wss {
    let resp = client
        .post(https(s, "/api/v1/rooms"))
        .bearer_auth(token)
        .json(&json!({"name": name}))
        .send()
        .await
        .expect("room");
    let room = resp.json::<Value>().await.expect("json")["room"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let mut ws = wss(s, cert, token).await.expect("wss connects");
    send(&mut ws, json!({"type": "hello"})).await;
    expect(&mut ws, "ready").await;
    send(
        &mut ws,
        json!({"type": "send", "room": room, "client_id": "first", "body": body}),
    )
    .await;
    assert_eq!(expect(&mut ws, "ack").await["seq"], 1);
    ws
}

#[tokio::test]
async fn https_and_wss_with_a_self_signed_certificate() {
    let certs = tempfile::tempdir().expect("temp dir");
    let (cert, key) = self_signed(certs.path());
    let s = tls_server(&cert, &key, &[]).await;
    let client = https_client(&cert, &s.addr);

    let resp = client
        .get(https(&s, "/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), reqwest::Version::HTTP_2, "ALPN picks h2");

    let page = client.get(https(&s, "/")).send().await.expect("index");
    assert!(
        page.headers().contains_key("strict-transport-security"),
        "{:?}",
        page.headers()
    );

    let signup =
        json!({"username": "alice", "email": "alice@example.com", "password": "password-alice"});
    let resp = client
        .post(https(&s, "/api/v1/signup"))
        .json(&signup)
        .send()
        .await
        .expect("signup");
    assert_eq!(resp.status(), 201);
    let resp = client
        .post(https(&s, "/api/v1/login"))
        .json(&json!({"login": "alice", "password": "password-alice"}))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), 200);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let token = resp.json::<Value>().await.expect("json")["token"]
        .as_str()
        .expect("token")
        .to_string();
    let mut ws = room_and_first_send(&client, &s, &cert, &token, "secure", "over tls").await;
    assert_eq!(
        expect(&mut ws, "message").await["message"]["body"],
        "over tls"
    );

    // Plain HTTP on the TLS port gets nowhere.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", s.addr))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || plain.expect("resp").status() != 200);

    // The health check speaks TLS too.
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("healthcheck")
        .env("HEARTH_LISTEN", &s.addr)
        .env("HEARTH_CERT", &cert)
        .env("HEARTH_KEY", &key)
        .output()
        .expect("run healthcheck");
    assert!(out.status.success(), "{out:?}");
}

/// The first bytes a real TLS client sends: a whole ClientHello record.
fn client_hello() -> Vec<u8> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("tls versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("name");
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).expect("client hello");
    assert_eq!(hello[0], 0x16, "a handshake record");
    hello
}

/// Opens a TCP connection to the TLS listener, writes `bytes` and then
/// nothing more; returns how long the server took to close it, or `None`
/// if it was still open after `wait`.
async fn stall(addr: &str, bytes: Vec<u8>, wait: Duration) -> Option<Duration> {
    use tokio::io::AsyncWriteExt;
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    tcp.write_all(&bytes).await.expect("write");
    let mut buf = [0u8; 4096];
    // Whatever the server sends (its ServerHello and certificate, for the
    // whole ClientHello) is read and dropped; only the end counts.
    loop {
        match tokio::time::timeout_at((started + wait).into(), tcp.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn stalled_handshakes_are_dropped_at_the_timeout_while_others_are_served() {
    let certs = tempfile::tempdir().expect("temp dir");
    let (cert, key) = self_signed(certs.path());
    // The timeout comes from the config file's `tls.handshake_timeout_secs`.
    let timeout = Duration::from_secs(2);
    let file = certs.path().join("hearth.toml");
    std::fs::write(
        &file,
        format!(
            "[tls]\ncert = {:?}\nkey = {:?}\nhandshake_timeout_secs = {}\n",
            cert.to_str().expect("utf-8 path"),
            key.to_str().expect("utf-8 path"),
            timeout.as_secs()
        ),
    )
    .expect("write config");
    let s = TestServer::spawn_with(&[("HEARTH_CONFIG", file.to_str().expect("utf-8 path"))]).await;
    let hello = client_hello();

    // Three ways to stall, four connections each: say nothing, send the
    // first 40 bytes of a ClientHello (a record header promising more),
    // or send a whole ClientHello and never answer the server's flight.
    let wait = timeout + Duration::from_secs(5);
    let mut stalled = tokio::task::JoinSet::new();
    for (kind, bytes) in [
        ("silent", Vec::new()),
        ("partial ClientHello", hello[..40].to_vec()),
        ("whole ClientHello, no Finished", hello.clone()),
    ] {
        for _ in 0..4 {
            let (addr, bytes) = (s.addr.clone(), bytes.clone());
            stalled.spawn(async move { (kind, stall(&addr, bytes, wait).await) });
        }
    }
    // Give the stalled connections time to be accepted first.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Meanwhile a normal client is served over HTTPS and WSS.
    let served = Instant::now();
    let client = https_client(&cert, &s.addr);
    let resp = client
        .get(https(&s, "/healthz"))
        .send()
        .await
        .expect("healthz over TLS while handshakes stall");
    assert_eq!(resp.status(), 200);
    let healthz_took = served.elapsed();
    let signup = json!({"username": "ann", "email": "ann@example.com", "password": "password-ann"});
    let resp = client
        .post(https(&s, "/api/v1/signup"))
        .json(&signup)
        .send()
        .await
        .expect("signup");
    assert_eq!(resp.status(), 201);
    let resp = client
        .post(https(&s, "/api/v1/login"))
        .json(&json!({"login": "ann", "password": "password-ann"}))
        .send()
        .await
        .expect("login");
    let token = resp.json::<Value>().await.expect("json")["token"]
        .as_str()
        .expect("token")
        .to_string();
    let mut ws = room_and_first_send(&client, &s, &cert, &token, "busy", "still served").await;
    let served_took = served.elapsed();
    println!("served while handshakes stall: healthz {healthz_took:?}, all {served_took:?}");
    assert!(
        healthz_took < timeout,
        "a normal TLS client waited {healthz_took:?}, as long as the stalled ones"
    );

    let mut closed = Vec::new();
    while let Some(joined) = stalled.join_next().await {
        let (kind, took) = joined.expect("stalled client task");
        let took =
            took.unwrap_or_else(|| panic!("a {kind} connection was still open after {wait:?}"));
        assert!(
            took >= timeout - Duration::from_millis(100),
            "a {kind} connection was closed after {took:?}, before the {timeout:?} timeout"
        );
        assert!(
            took < timeout + Duration::from_secs(2),
            "a {kind} connection was closed only after {took:?} (timeout {timeout:?})"
        );
        closed.push((kind, took));
    }
    println!("stalled handshakes closed after: {closed:?}");

    // The socket opened meanwhile outlives the timeout: it is past its handshake.
    send(&mut ws, json!({"type": "ping"})).await;
    expect(&mut ws, "pong").await;
}

#[tokio::test]
async fn sighup_reloads_the_certificate_without_dropping_connections() {
    let first = tempfile::tempdir().expect("temp dir");
    let second = tempfile::tempdir().expect("temp dir");
    let (cert, key) = self_signed(first.path());
    let (new_cert, new_key) = self_signed(second.path());
    let s = tls_server(&cert, &key, &[]).await;
    let alice = {
        let client = https_client(&cert, &s.addr);
        let body = json!({"username": "alice", "email": "alice@example.com", "password": "password-alice"});
        client
            .post(https(&s, "/api/v1/signup"))
            .json(&body)
            .send()
            .await
            .expect("signup");
        let resp = client
            .post(https(&s, "/api/v1/login"))
            .json(&json!({"login": "alice", "password": "password-alice"}))
            .send()
            .await
            .expect("login");
        resp.json::<Value>().await.expect("json")["token"]
            .as_str()
            .expect("token")
            .to_string()
    };
    let mut old = wss(&s, &cert, &alice).await.expect("wss");
    send(&mut old, json!({"type": "hello"})).await;
    expect(&mut old, "ready").await;

    let original = first.path().join("original.pem");
    std::fs::copy(&cert, &original).expect("keep the first cert");
    std::fs::copy(&new_cert, &cert).expect("replace cert");
    std::fs::copy(&new_key, &key).expect("replace key");
    unsafe_free_kill(s.pid().expect("running"), "HUP");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if wss(&s, &new_cert, &alice).await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        wss(&s, &original, &alice).await.is_err(),
        "new connections no longer get the first certificate"
    );

    // The connection made before the reload still works.
    send(&mut old, json!({"type": "ping"})).await;
    expect(&mut old, "pong").await;
}
