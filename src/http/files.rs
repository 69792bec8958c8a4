//! Uploading and downloading attached files. Downloads stream from disk
//! with headers that keep a file from ever running as part of hearth's
//! pages: `nosniff`, a sandboxing CSP, and `attachment` for anything but
//! a picture hearth itself recognised (never HTML or SVG).

use std::io::SeekFrom;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::json;
use tokio::io::{AsyncSeekExt, Take};

use super::api::{percent_decode, Handled};
use super::request::{empty_response, error_response, json_response, Ctx};
use crate::actions::files;
use crate::error::ApiError;
use crate::protocol::FileView;
use crate::storage::records::FileRecord;

/// `POST /api/v1/rooms/{id}/uploads?name=FILE`: the body is the file.
/// A refusal says `Connection: close`: the body was not read to its end,
/// so the connection cannot carry another request.
pub async fn upload(ctx: Ctx, room_id: &str) -> Handled {
    receive(ctx, room_id).await.or_else(|e| {
        let mut resp = error_response(&e);
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        Ok(resp)
    })
}

async fn receive(mut ctx: Ctx, room_id: &str) -> Handled {
    let me = ctx.identity()?;
    let name = ctx
        .query("name")
        .and_then(|n| percent_decode(&n.replace('+', " ")));
    let headers = &ctx.parts.headers;
    let claimed = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let upload = files::begin(
        &ctx.state,
        &me,
        room_id,
        name.as_deref(),
        claimed.as_deref(),
        declared,
    )?;
    let body = ctx.take_body()?;
    let idle = ctx.state.config.http.body_read_timeout;
    let record = files::receive(&ctx.state, upload, body, idle).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"file": FileView::of(&record.file)}),
    ))
}

/// `GET /api/v1/files/{id}`: the file's bytes (a range of them, asked so).
pub async fn download(ctx: Ctx, id: &str) -> Handled {
    let me = ctx.identity()?;
    let record = files::readable(&ctx.state, me.user, id)?;
    let path = ctx.state.store.blob_path(&record.file.hash);
    let etag = format!("\"{}\"", record.file.hash);
    serve(&ctx, &record, path, etag, false).await
}

/// `GET /api/v1/files/{id}/thumb`: a picture's thumbnail, a PNG.
pub async fn thumb(ctx: Ctx, id: &str) -> Handled {
    let me = ctx.identity()?;
    let record = files::readable(&ctx.state, me.user, id)?;
    if !record.file.thumb {
        return Err(ApiError::FileNotFound);
    }
    let path = ctx.state.store.thumb_path(&record.file.hash);
    let etag = format!("\"{}-thumb\"", record.file.hash);
    serve(&ctx, &record, path, etag, true).await
}

/// Pictures shown in place; anything else is downloaded.
const INLINE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

async fn serve(
    ctx: &Ctx,
    record: &FileRecord,
    path: std::path::PathBuf,
    etag: String,
    thumb: bool,
) -> Handled {
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(file = %record.file.id, error = %e, "A stored file is missing; run verify.");
            return Err(ApiError::FileNotFound);
        }
    };
    let size = file
        .metadata()
        .await
        .map_err(|e| ApiError::Storage(crate::storage::StorageError::Files(e)))?
        .len();
    let mime = if thumb {
        "image/png"
    } else {
        record.file.mime.as_str()
    };
    let inline = thumb || INLINE_TYPES.contains(&mime);
    let unchanged = ctx
        .parts
        .headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*");
    let range = if unchanged {
        None
    } else {
        ctx.parts
            .headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(|r| byte_range(r, size))
            .transpose()?
            .flatten()
    };
    let mut resp = if unchanged {
        empty_response(StatusCode::NOT_MODIFIED)
    } else {
        let (start, len) = range.unwrap_or((0, size));
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(|e| ApiError::Storage(crate::storage::StorageError::Files(e)))?;
        let body = FileBody {
            file: tokio::io::AsyncReadExt::take(file, len),
            buf: BytesMut::new(),
            left: len,
        };
        let mut resp = Response::new(body.boxed_unsync());
        let h = resp.headers_mut();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        if range.is_some() {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            let last = (start + len).saturating_sub(1);
            resp.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {start}-{last}/{size}"))?,
            );
        }
        resp
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, header_value(mime)?);
    h.insert(header::ETAG, header_value(&etag)?);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Access is checked on every request (leaving a room ends it), so a
    // cache must ask again; the ETag makes that cheap.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'; img-src 'self'; media-src 'self'"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        header_value(&disposition(inline, &record.file.name))?,
    );
    Ok(resp)
}

/// `Content-Disposition` naming the file safely: an ASCII fallback with
/// anything unsafe replaced, and the exact name in RFC 5987 encoding.
fn disposition(inline: bool, name: &str) -> String {
    let kind = if inline { "inline" } else { "attachment" };
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

fn header_value(text: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(text).map_err(|_| ApiError::Internal)
}

/// The one range of `bytes=…` within `size`, as (start, length): `None`
/// for a header this does not serve ranges for (several ranges, another
/// unit: the whole file is sent), `range_not_satisfiable` for a range
/// past the end.
fn byte_range(header: &str, size: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((from, to)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let parse = |s: &str| s.trim().parse::<u64>().ok();
    let (start, end) = match (from.trim().is_empty(), to.trim().is_empty()) {
        // The last N bytes.
        (true, false) => {
            let Some(n) = parse(to) else { return Ok(None) };
            if n == 0 || size == 0 {
                return Err(ApiError::RangeNotSatisfiable);
            }
            (size.saturating_sub(n), size - 1)
        }
        (false, true) => {
            let Some(s) = parse(from) else {
                return Ok(None);
            };
            (s, size.saturating_sub(1))
        }
        (false, false) => {
            let (Some(s), Some(e)) = (parse(from), parse(to)) else {
                return Ok(None);
            };
            if e < s {
                return Ok(None);
            }
            (s, e.min(size.saturating_sub(1)))
        }
        (true, true) => return Ok(None),
    };
    if start >= size {
        return Err(ApiError::RangeNotSatisfiable);
    }
    Ok(Some((start, end - start + 1)))
}

/// A stored file streamed from disk, 64 KiB at a time.
struct FileBody {
    file: Take<tokio::fs::File>,
    buf: BytesMut,
    left: u64,
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        if this.left == 0 {
            return Poll::Ready(None);
        }
        if this.buf.capacity() < 64 * 1024 {
            this.buf.reserve(64 * 1024);
        }
        let read = ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut this.file),
            cx,
            &mut this.buf
        ));
        Poll::Ready(match read {
            // Shorter than it was: the file changed under us.
            Ok(0) => Some(Err(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => {
                this.left = this.left.saturating_sub(n as u64);
                Some(Ok(Frame::data(this.buf.split().freeze())))
            }
            Err(e) => Some(Err(e)),
        })
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(byte_range("bytes=0-9", 100).unwrap(), Some((0, 10)));
        assert_eq!(byte_range("bytes=90-", 100).unwrap(), Some((90, 10)));
        assert_eq!(byte_range("bytes=-5", 100).unwrap(), Some((95, 5)));
        assert_eq!(byte_range("bytes=50-500", 100).unwrap(), Some((50, 50)));
        assert_eq!(byte_range("bytes=0-1,5-6", 100).unwrap(), None);
        assert_eq!(byte_range("items=0-1", 100).unwrap(), None);
        assert!(byte_range("bytes=100-", 100).is_err());
        assert!(byte_range("bytes=-0", 100).is_err());
    }

    #[test]
    fn file_names_are_quoted_safely() {
        assert_eq!(
            disposition(false, "a \"b\"\r\n.html"),
            "attachment; filename=\"a _b___.html\"; filename*=UTF-8''a%20%22b%22%0D%0A.html"
        );
        assert_eq!(
            disposition(true, "café.png"),
            "inline; filename=\"caf_.png\"; filename*=UTF-8''caf%C3%A9.png"
        );
    }
}
