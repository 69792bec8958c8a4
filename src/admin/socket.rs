//! The admin socket: `DATA/admin.sock`, a Unix socket only its owner may
//! use (mode 0600, and the peer's uid is checked too). One connection
//! carries one request line and one reply line, both JSON:
//! `{"op":"user_list"}` → `{"ok":{"kind":"users",...}}` or `{"err":"..."}`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::{execute, Reply, Request};
use crate::state::AppState;

/// The socket's file name inside the data directory.
pub const FILE_NAME: &str = "admin.sock";

/// Longest request line accepted (requests are small; this bounds memory).
const MAX_REQUEST: u64 = 64 * 1024;

/// How long a client may take to send its request line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One reply line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Ok(Reply),
    Err(String),
}

pub fn path(data: &Path) -> PathBuf {
    data.join(FILE_NAME)
}

/// Binds the socket. Called with the store's lock held, so a socket file
/// left by a killed server is ours to replace.
pub fn bind(data: &Path) -> std::io::Result<UnixListener> {
    let path = path(data);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Answers admin requests until shutdown. The server removes the socket
/// file once it has stopped ([`remove`]).
pub async fn serve(listener: UnixListener, state: Arc<AppState>) {
    let owner = std::fs::metadata(path(&state.config.data))
        .map(|m| m.uid())
        .ok();
    loop {
        let stream = tokio::select! {
            _ = state.shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "Admin socket accept failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let peer = stream.peer_cred().map(|c| c.uid()).ok();
        if peer.is_none() || (peer != owner && peer != Some(0)) {
            tracing::warn!(uid = ?peer, "Admin connection refused: not the socket's owner.");
            continue;
        }
        let state = state.clone();
        state.tracker.clone().spawn(async move {
            if let Err(e) = answer(stream, &state).await {
                tracing::debug!(error = %e, "Admin connection ended early.");
            }
        });
    }
}

/// Removes the socket file of a server that has stopped.
pub fn remove(data: &Path) {
    let _ = std::fs::remove_file(path(data));
}

async fn answer(stream: UnixStream, state: &Arc<AppState>) -> std::io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(rd.take(MAX_REQUEST));
    tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let answer = match serde_json::from_str::<Request>(&line) {
        Err(e) => Answer::Err(format!("the request is not understood: {e}")),
        Ok(request) => {
            tracing::info!(op = op_name(&request), "Admin request.");
            match execute(state, request).await {
                Ok(reply) => Answer::Ok(reply),
                Err(e) => Answer::Err(chain(&e)),
            }
        }
    };
    let mut out = serde_json::to_vec(&answer).map_err(std::io::Error::other)?;
    out.push(b'\n');
    wr.write_all(&out).await?;
    wr.shutdown().await
}

/// An error and its causes, "outer: inner", as the CLI prints its own.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The operation's name, for the log (never its arguments: passwords).
fn op_name(request: &Request) -> String {
    serde_json::to_value(request)
        .ok()
        .and_then(|v| v.get("op").and_then(|o| o.as_str()).map(str::to_string))
        .unwrap_or_default()
}

/// Where a CLI request went.
pub enum Sent {
    /// A running server answered.
    Answered(Answer),
    /// No server listens on the socket (none, or a stale file).
    NoServer,
}

/// Sends one request to the server running on `data`, if any.
pub async fn send(data: &Path, request: &Request) -> std::io::Result<Sent> {
    let stream = match UnixStream::connect(path(data)).await {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(Sent::NoServer)
        }
        Err(e) => return Err(e),
    };
    let (rd, mut wr) = stream.into_split();
    let mut out = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    out.push(b'\n');
    wr.write_all(&out).await?;
    let mut line = String::new();
    BufReader::new(rd).read_line(&mut line).await?;
    if line.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the server closed the admin connection without answering (is this user the owner of the data directory?)",
        ));
    }
    serde_json::from_str(&line)
        .map(Sent::Answered)
        .map_err(std::io::Error::other)
}
