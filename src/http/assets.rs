//! The web UI, embedded from `static/` at build time and served with
//! content types, ETags, gzip and the security headers every page needs.
//!
//! The service worker (`/sw.js`, served from the root so its scope is the
//! whole app) is the one file not served as stored: its placeholder is
//! replaced by the list of files that make up the app's shell and a version
//! made from their hashes, so a binary with a different UI has a different
//! worker, which the browser installs, replacing the old shell's cache.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;

use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use rust_embed::RustEmbed;

use super::request::{error_response, full, Body};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Static;

/// Gzipped bodies, made on first request and kept (the set is fixed).
fn gzip_cache() -> &'static Mutex<HashMap<String, Option<Bytes>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Bytes>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

pub fn serve<B>(req: &Request<B>, state: &Arc<AppState>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return error_response(&ApiError::MethodNotAllowed);
    }
    let path = req.uri().path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let Some(mut file) = Static::get(path) else {
        return error_response(&ApiError::NotFound);
    };
    let mut hash = file.metadata.sha256_hash();
    if path == SERVICE_WORKER {
        let (body, worker_hash) = service_worker();
        file.data = Cow::Borrowed(body.as_slice());
        hash = *worker_hash;
    }
    let etag = format!("\"{}\"", crate::storage::hex(&hash[..16]));
    let mut resp = if req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        let mut r = Response::new(full(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mime = file.metadata.mimetype().to_string();
        let accepts_gzip = req
            .headers()
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("gzip"));
        let gz = (accepts_gzip && compressible(&mime))
            .then(|| gzipped(path, &file.data))
            .flatten();
        let mut r = match &gz {
            Some(body) => Response::new(full(body.clone())),
            None => Response::new(full(Bytes::copy_from_slice(&file.data))),
        };
        if gz.is_some() {
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        if let Ok(v) = HeaderValue::from_str(&mime) {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        r
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    // Revalidate every time: cheap with the ETag, and a new binary's UI is
    // picked up at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    security_headers(h, req, state);
    resp
}

/// The service worker's file, served from the root.
const SERVICE_WORKER: &str = "sw.js";
/// What `sw.js` holds in place of its shell list until it is served.
const SHELL_PLACEHOLDER: &str = "\"__HEARTH_SHELL__\"";

/// The shell's version: a hash of every embedded file's path and content.
fn shell_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        use sha2::{Digest, Sha256};
        let mut paths: Vec<_> = Static::iter().collect();
        paths.sort();
        let mut hasher = Sha256::new();
        for path in paths {
            if let Some(file) = Static::get(&path) {
                hasher.update(path.as_bytes());
                hasher.update([0]);
                hasher.update(file.metadata.sha256_hash());
            }
        }
        crate::storage::hex(&hasher.finalize()[..8])
    })
}

/// `sw.js` with the shell's files and version filled in, and its hash.
fn service_worker() -> &'static (Vec<u8>, [u8; 32]) {
    static WORKER: OnceLock<(Vec<u8>, [u8; 32])> = OnceLock::new();
    WORKER.get_or_init(|| {
        use sha2::{Digest, Sha256};
        let mut files: Vec<String> = Static::iter()
            .filter(|path| path != SERVICE_WORKER)
            .map(|path| match path.as_ref() {
                "index.html" => "/".to_string(),
                other => format!("/{other}"),
            })
            .collect();
        files.sort();
        let shell = serde_json::json!({ "version": shell_version(), "files": files });
        let source = Static::get(SERVICE_WORKER)
            .map(|file| String::from_utf8_lossy(&file.data).into_owned())
            .unwrap_or_default();
        let body = source
            .replacen(SHELL_PLACEHOLDER, &shell.to_string(), 1)
            .into_bytes();
        let hash: [u8; 32] = Sha256::digest(&body).into();
        (body, hash)
    })
}

fn security_headers<B>(h: &mut hyper::HeaderMap, req: &Request<B>, state: &AppState) {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".:-[]".contains(c))
        })
        .unwrap_or("localhost");
    let ws = if state.tls { "wss" } else { "ws" };
    let csp = format!(
        "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
         form-action 'self'; img-src 'self' data:; connect-src 'self' {ws}://{host}; \
         worker-src 'self'; manifest-src 'self'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if state.tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
}

fn compressible(mime: &str) -> bool {
    mime.starts_with("text/")
        || mime.contains("javascript")
        || mime.contains("json")
        || mime.contains("svg")
}

fn gzipped(path: &str, data: &[u8]) -> Option<Bytes> {
    let mut cache = gzip_cache().lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(path.to_string())
        .or_insert_with(|| {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            enc.write_all(data).ok()?;
            let out = enc.finish().ok()?;
            // Not worth it when it does not shrink.
            (out.len() < data.len()).then(|| Bytes::from(out))
        })
        .clone()
}
