//! The raw HTTP ceiling: the least an HTTP server on this machine must do
//! to answer the same requests. A bare hyper HTTP/1.1 server on one thread
//! reads each request (its body too) and answers with the bytes hearth
//! answered for the same kind of request in the same run: no routing, no
//! sessions, no storage. `hearth / ceiling` then says how much of the
//! platform's request throughput hearth keeps, as the fan-out is judged.

use std::convert::Infallible;
use std::path::PathBuf;

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[derive(Debug, Args)]
pub struct HttpCeilingArgs {
    /// The status of every answer.
    #[arg(long)]
    pub status: u16,
    /// The body of every answer (JSON).
    #[arg(long)]
    pub body: PathBuf,
}

pub fn run(args: HttpCeilingArgs) -> anyhow::Result<()> {
    super::target::raise_fd_limit()?;
    let status = StatusCode::from_u16(args.status).context("--status is not an HTTP status")?;
    let body = Bytes::from(
        std::fs::read(&args.body)
            .with_context(|| format!("cannot read {}", args.body.display()))?,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        println!("listening on http://{}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let body = body.clone();
                    async move {
                        // Read the request to its end, as a server must.
                        let _ = req.into_body().collect().await;
                        let mut resp = Response::new(Full::new(body));
                        *resp.status_mut() = status;
                        resp.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static("application/json"),
                        );
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
