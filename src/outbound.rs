//! Outgoing HTTP: one POST, for bots' callbacks (to a URL the operator
//! allowed) and Web Push (to a browser's push service). Small on purpose: a fresh connection per request (deliveries
//! to one bot go one at a time), HTTP/1.1, `https` checked against the
//! system's CA roots, no redirects followed (a redirect could point
//! anywhere, past the allowlist), a hard deadline, and a bounded answer.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The most of an answer that is read (a bot's reply fits easily).
pub const ANSWER_MAX: usize = 64 * 1024;

/// An answer to a POST.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Bytes,
}

/// Whether `url` is an http(s) URL under one of the `allowed` prefixes
/// (see `webhook_allow`: each ends at a `/` or a port's `:`).
pub fn allowed(url: &str, allowed: &[String]) -> bool {
    let Ok(uri) = url.parse::<Uri>() else {
        return false;
    };
    let (Some(scheme), Some(auth)) = (uri.scheme_str(), uri.authority()) else {
        return false;
    };
    if !matches!(scheme, "http" | "https") || auth.as_str().contains('@') {
        return false;
    }
    // Compare in the same form the prefixes were written in: scheme and
    // host lower-case, the rest as given.
    let normal = format!(
        "{scheme}://{}{}",
        auth.as_str().to_ascii_lowercase(),
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    allowed.iter().any(|p| normal.starts_with(p.as_str()))
}

/// POSTs `body` (JSON) with `headers` to `url`, within `deadline` for the
/// whole exchange. An error is a sentence saying what failed.
pub async fn post(
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    deadline: Duration,
) -> Result<Answer, String> {
    post_as(url, "application/json", headers, body, deadline).await
}

/// [`post`] with a body of another `content_type`.
pub async fn post_as(
    url: &str,
    content_type: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    deadline: Duration,
) -> Result<Answer, String> {
    let exchange = exchange(url, content_type, headers, body);
    match tokio::time::timeout(deadline, exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} s", deadline.as_secs())),
    }
}

async fn exchange(
    url: &str,
    content_type: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Result<Answer, String> {
    let uri: Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let host = uri.host().ok_or("the URL has no host")?.to_string();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let authority = uri
        .authority()
        .map(|a| a.to_string())
        .unwrap_or(host.clone());
    let mut req = Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .header(
            hyper::header::USER_AGENT,
            concat!("hearth/", env!("CARGO_PKG_VERSION")),
        );
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let resp = if https {
        let name = rustls_pki_types::ServerName::try_from(host.clone())
            .map_err(|_| format!("{host} is not a valid TLS server name"))?;
        let tls = tokio_rustls::TlsConnector::from(client_config()?)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host} failed: {e}"))?;
        send(TokioIo::new(tls), req).await?
    } else {
        send(TokioIo::new(tcp), req).await?
    };
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = Limited::new(resp.into_body(), ANSWER_MAX)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Ok(Answer {
        status,
        content_type,
        body,
    })
}

async fn send<T>(
    io: TokioIo<T>,
    req: Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
        .send_request(req)
        .await
        .map_err(|e| format!("the request failed: {e}"))
}

/// TLS settings for callbacks: the system's CA roots, loaded once.
fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(
                    "no CA certificates found on this system (install ca-certificates)".into(),
                );
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_urls_under_an_allowed_prefix_pass() {
        let allow = vec![
            "https://ci.example.com/hooks/".to_string(),
            "http://127.0.0.1:".to_string(),
        ];
        for ok in [
            "https://ci.example.com/hooks/a",
            "https://CI.example.com/hooks/a?x=1",
            "http://127.0.0.1:9000/x",
        ] {
            assert!(allowed(ok, &allow), "{ok}");
        }
        for bad in [
            "https://ci.example.com/other",
            "https://ci.example.com.evil.net/hooks/",
            "http://ci.example.com/hooks/a",
            "https://user@ci.example.com/hooks/a",
            "http://127.0.0.1/x",
            "http://127.0.0.10:80/x",
            "ftp://127.0.0.1:21/",
            "not a url",
        ] {
            assert!(!allowed(bad, &allow), "{bad}");
        }
        assert!(!allowed("https://ci.example.com/hooks/a", &[]));
    }
}
