//! TLS: rustls with the ring provider, the certificate and key loaded from
//! PEM files, reloadable on SIGHUP without dropping a connection (each
//! connection keeps the config it was accepted with), and self-signed
//! certificates for local use.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;

use crate::config::TlsConfig;

/// ALPN protocols offered, preferred first. WebSockets use HTTP/1.1: a
/// browser that got h2 opens a separate HTTP/1.1 connection for them,
/// since we do not announce extended CONNECT (RFC 8441).
pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("{0} holds no certificate (expected a PEM \"BEGIN CERTIFICATE\" block)")]
    NoCertificate(PathBuf),
    #[error("{0} holds no private key (expected a PEM \"BEGIN PRIVATE KEY\" block)")]
    NoKey(PathBuf),
    #[error("the certificate and key do not work together")]
    Rustls(#[from] rustls::Error),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot make a certificate")]
    Generate(#[from] rcgen::Error),
}

/// Accepts TLS connections with the current certificate.
pub struct Acceptor {
    files: TlsConfig,
    current: RwLock<Arc<ServerConfig>>,
    handshake_timeout: Duration,
}

impl Acceptor {
    /// Loads the certificate and key; fails with the file and the reason.
    pub fn new(files: TlsConfig, handshake_timeout: Duration) -> Result<Acceptor, TlsError> {
        let config = load(&files)?;
        Ok(Acceptor {
            files,
            current: RwLock::new(config),
            handshake_timeout,
        })
    }

    /// Reads the files again; on failure the old certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = load(&self.files)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }

    /// Completes the handshake within the timeout; `None` if it failed.
    /// Returns the stream and whether the client chose HTTP/2.
    pub async fn accept<S>(&self, stream: S) -> Option<(TlsStream<S>, bool)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let config = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        match tokio::time::timeout(self.handshake_timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => {
                let h2 = tls.get_ref().1.alpn_protocol() == Some(ALPN_H2);
                Some((tls, h2))
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed.");
                None
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out.");
                None
            }
        }
    }
}

/// Reloads the certificate on every SIGHUP until shutdown.
pub async fn reload_on_sighup(
    acceptor: Arc<Acceptor>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("Cannot listen for SIGHUP; certificate reload needs a restart.");
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = hup.recv() => {}
        }
        match acceptor.reload() {
            Ok(()) => {
                tracing::info!(cert = %acceptor.files.cert.display(), "TLS certificate reloaded.")
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS certificate reload failed; keeping the old one.")
            }
        }
    }
}

fn load(files: &TlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Read {
            path: files.cert.clone(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(files.cert.clone()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|source| match source {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoKey(files.key.clone()),
        source => TlsError::Read {
            path: files.key.clone(),
            source,
        },
    })?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
    Ok(Arc::new(config))
}

/// Writes `cert.pem` and `key.pem` (mode 0600) for `hosts` into `dir`, a
/// self-signed certificate for local use and tests; returns their paths.
pub fn self_signed(hosts: Vec<String>, dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let certified = rcgen::generate_simple_self_signed(hosts)?;
    let write = |name: &str, text: String, mode: u32| {
        let path = dir.join(name);
        std::fs::create_dir_all(dir)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(&path)
            })
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|source| TlsError::Write {
                path: path.clone(),
                source,
            })?;
        Ok::<_, TlsError>(path)
    };
    let cert = write("cert.pem", certified.cert.pem(), 0o644)?;
    let key = write("key.pem", certified.key_pair.serialize_pem(), 0o600)?;
    Ok((cert, key))
}
