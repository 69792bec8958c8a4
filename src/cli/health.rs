//! `hearth healthcheck`: asks the server's `/healthz` and exits 0 or 1, for
//! container health checks in an image without curl.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::instance::InstanceArgs;
use crate::config::{Config, Overrides};

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    #[command(flatten)]
    instance: InstanceArgs,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

/// Checks `metrics_listen` when set (plain HTTP), else `listen` (HTTPS when
/// TLS is configured); an unspecified address (0.0.0.0) means this host.
pub fn check(args: HealthcheckArgs) -> anyhow::Result<()> {
    let config = Config::load(&Overrides {
        config_file: args.instance.config,
        data: args.instance.data,
        ..Overrides::default()
    })?;
    let (addr, tls) = match config.metrics_listen {
        Some(a) => (a, false),
        None => (config.listen, config.tls.is_some()),
    };
    let addr = local(addr);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let status = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(args.timeout), get_healthz(addr, tls)).await
    });
    match status {
        Err(_) => bail!("{addr} did not answer within {} s", args.timeout),
        Ok(Err(e)) => Err(e.context(format!("cannot reach {addr}"))),
        Ok(Ok(200)) => {
            println!("ok");
            Ok(())
        }
        Ok(Ok(code)) => bail!("/healthz answered {code}"),
    }
}

fn local(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

async fn get_healthz(addr: SocketAddr, tls: bool) -> anyhow::Result<u16> {
    let tcp = TcpStream::connect(addr).await?;
    if !tls {
        return request(tcp, addr).await;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AnyCertificate))
    .with_no_client_auth();
    let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    request(stream, addr).await
}

async fn request<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    addr: SocketAddr,
) -> anyhow::Result<u16> {
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await?;
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        let read = stream.read(&mut head[n..]).await?;
        if read == 0 {
            break;
        }
        n += read;
    }
    let line = String::from_utf8_lossy(&head[..n]);
    let code = line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|c| c.parse().ok());
    code.with_context(|| format!("not an HTTP answer: {line:?}"))
}

/// Accepts any certificate. The health check connects to this host's own
/// server and sends nothing secret: it asks whether the server is alive,
/// not whether it is who it claims to be (which a self-signed or
/// name-bound certificate could not prove for "127.0.0.1" anyway).
#[derive(Debug)]
struct AnyCertificate;

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
