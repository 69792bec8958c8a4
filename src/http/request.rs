//! What every handler needs from a request: a bounded body, the
//! caller's identity, an Origin check, and responses in the API's shape.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth::Identity;
use crate::error::ApiError;
use crate::state::AppState;

/// A response body: most are whole in memory ([`full`]); a stored file
/// streams from disk.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A body of bytes already in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The cookie that carries a browser's session token.
pub const SESSION_COOKIE: &str = "hearth_session";

/// A request being handled, with the state it may use.
pub struct Ctx {
    /// The request head; the body is taken separately, at most once.
    pub parts: hyper::http::request::Parts,
    body: Option<Incoming>,
    pub peer: SocketAddr,
    pub state: Arc<AppState>,
}

/// How the caller proved who they are; cookie callers get Origin checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    Bearer,
    Cookie,
}

impl Ctx {
    pub fn new(req: Request<Incoming>, peer: SocketAddr, state: Arc<AppState>) -> Ctx {
        let (parts, body) = req.into_parts();
        Ctx {
            parts,
            body: Some(body),
            peer,
            state,
        }
    }

    pub fn method(&self) -> &Method {
        &self.parts.method
    }

    pub fn ip(&self) -> IpAddr {
        self.peer.ip()
    }

    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.parts.uri.query()?;
        q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == key).then(|| v.to_string())
        })
    }

    /// Reads and parses the JSON body, within the size and time limits.
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<T, ApiError> {
        parse_json(&self.body_bytes().await?)
    }

    /// The JSON body, or the default when there is none at all.
    pub async fn json_or_default<T: DeserializeOwned + Default>(&mut self) -> Result<T, ApiError> {
        let bytes = self.body_bytes().await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        parse_json(&bytes)
    }

    async fn body_bytes(&mut self) -> Result<Bytes, ApiError> {
        self.body_within(self.state.config.http.max_body_bytes)
            .await
    }

    /// The raw body, at most `limit` bytes (`payload_too_large` past it,
    /// from `Content-Length` before anything is read, or as soon as the
    /// bytes read pass it) and within the body-read timeout.
    pub async fn body_within(&mut self, limit: usize) -> Result<Bytes, ApiError> {
        if let Some(len) = self
            .parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len > limit as u64 {
                return Err(ApiError::PayloadTooLarge(limit));
            }
        }
        let Some(body) = self.body.take() else {
            return Err(ApiError::InvalidRequest(
                "The request body was already read.".into(),
            ));
        };
        let collect = Limited::new(body, limit).collect();
        match tokio::time::timeout(self.state.config.http.body_read_timeout, collect).await {
            Err(_) => Err(ApiError::RequestTimeout),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                Err(ApiError::PayloadTooLarge(limit))
            }
            Ok(Err(_)) => Err(ApiError::InvalidRequest(
                "The request body could not be read.".into(),
            )),
            Ok(Ok(c)) => Ok(c.to_bytes()),
        }
    }

    /// The body itself, to stream (at most once).
    pub fn take_body(&mut self) -> Result<Incoming, ApiError> {
        self.body
            .take()
            .ok_or_else(|| ApiError::InvalidRequest("The request body was already read.".into()))
    }

    /// The token and where it came from: `Authorization: Bearer`, else the cookie.
    pub fn credentials(&self) -> Option<(String, CredentialSource)> {
        let headers = &self.parts.headers;
        if let Some(v) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        {
            let token = v
                .strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))?;
            return Some((token.trim().to_string(), CredentialSource::Bearer));
        }
        for v in headers.get_all(header::COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            for part in v.split(';') {
                if let Some((k, val)) = part.trim().split_once('=') {
                    if k == SESSION_COOKIE && !val.is_empty() {
                        return Some((val.to_string(), CredentialSource::Cookie));
                    }
                }
            }
        }
        None
    }

    /// The caller's identity; cookie callers making a state-changing request
    /// (or a WebSocket upgrade) must come from an allowed Origin.
    pub fn identity(&self) -> Result<Identity, ApiError> {
        let (token, source) = self.credentials().ok_or(ApiError::Unauthenticated)?;
        let identity = self
            .state
            .sessions
            .authenticate(&token, &self.state.directory)?
            .ok_or(ApiError::Unauthenticated)?;
        let changes_state = matches!(
            *self.method(),
            Method::POST | Method::DELETE | Method::PUT | Method::PATCH
        );
        let is_upgrade = self.parts.headers.contains_key(header::UPGRADE);
        if source == CredentialSource::Cookie && (changes_state || is_upgrade) {
            self.check_origin()?;
        }
        Ok(identity)
    }

    /// A request with no Origin (not a browser) passes; a browser's must be
    /// this server's own origin or one listed in `allowed_origins`.
    pub fn check_origin(&self) -> Result<(), ApiError> {
        let Some(origin) = self.parts.headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let origin = origin
            .to_str()
            .map_err(|_| ApiError::BadOrigin)?
            .to_ascii_lowercase();
        let host = self
            .parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_ascii_lowercase);
        let scheme = if self.state.tls { "https" } else { "http" };
        let own = host.map(|h| format!("{scheme}://{h}"));
        if own.as_deref() == Some(origin.as_str())
            || self.state.config.allowed_origins.contains(&origin)
        {
            Ok(())
        } else {
            Err(ApiError::BadOrigin)
        }
    }
}

/// A request body as `T`: `invalid_json` if it is not JSON at all,
/// `invalid_request` if a field is missing or of the wrong type.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        if e.is_data() {
            ApiError::InvalidRequest(format!(
                "The request body is missing something or has a wrong type: {e}."
            ))
        } else {
            ApiError::InvalidJson(e.to_string())
        }
    })
}

/// A JSON response with `status`.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Body> {
    let body =
        serde_json::to_vec(value).expect("API responses are plain data and always serialize");
    json_bytes_response(status, body)
}

/// A response with `status` of JSON already encoded.
pub fn json_bytes_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub fn empty_response(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = status;
    resp
}

/// The one place an [`ApiError`] becomes an HTTP response.
pub fn error_response(e: &ApiError) -> Response<Body> {
    e.log_if_ours();
    let mut resp = json_response(status(e), &e.to_json());
    if let Some(secs) = e.retry_after() {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    // The body was not read to its end: the connection cannot carry another
    // request, and saying so keeps a client from reusing it (and failing).
    if matches!(
        e,
        ApiError::PayloadTooLarge(_) | ApiError::QuotaExceeded(_) | ApiError::RequestTimeout
    ) {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    // 405 carries no Allow header: routes differ in methods and clients
    // read the code.
    resp
}

/// The HTTP status of each error.
pub fn status(e: &ApiError) -> StatusCode {
    use ApiError::*;
    match e {
        InvalidUsername | InvalidEmail | InvalidPassword | InvalidRoomName | InvalidTopic
        | InvalidBody | InvalidClientId | InvalidRequest(_) | InvalidJson(_) | InvalidFrame(_)
        | UnknownType(_) | HelloFirst | AlreadyGreeted | InvalidEmoji | InvalidReply
        | InvalidDirect | InvalidProfile | InvalidCallback | InvalidImage(_) | InvalidQuery(_)
        | InvalidCursor | InvalidFile | TooManyFiles(_) | InvalidPushEndpoint | InvalidPushKeys => {
            StatusCode::BAD_REQUEST
        }
        InvalidCredentials | Unauthenticated => StatusCode::UNAUTHORIZED,
        BadOrigin | AccountDisabled | RegistrationClosed | InvalidInvite | InvalidResetLink
        | NotAnAdmin | NotAMember | NotTheAuthor | Forbidden | Banned => StatusCode::FORBIDDEN,
        RoomNotFound | UserNotFound | SessionNotFound | MessageNotFound | AvatarNotFound
        | HookNotFound | FileNotFound | NotFound => StatusCode::NOT_FOUND,
        MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        UsernameTaken
        | EmailTaken
        | RoomNameTaken
        | MessageDeleted
        | TooManyReactions
        | TooManyHooks
        | DirectRoom
        | TooManyPushSubscriptions => StatusCode::CONFLICT,
        PayloadTooLarge(_) | QuotaExceeded(_) | PushSubscriptionTooLarge => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Busy | ShuttingDown | StorageFailed | Storage(_) | SearchDisabled => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `Set-Cookie` for a new session (or, with `None`, one that clears it).
pub fn session_cookie(token: Option<&str>, secure: bool, max_age_secs: u64) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let value = match token {
        Some(t) => format!(
            "{SESSION_COOKIE}={t}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age_secs}{secure}"
        ),
        None => format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&value).expect("tokens are base64url, always a valid header value")
}
