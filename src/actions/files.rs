//! Files attached to messages: upload (streamed to disk while hashed, cut
//! off at the size or quota limit), attach (checked here and again by the
//! committer), read (for the uploader and the members of any room a
//! message holding it is in), and the sweep that frees uploads no message
//! holds.
//!
//! An upload is two steps, because its body is large: [`begin`] checks
//! membership, name, limits and quota before a byte is read; [`receive`]
//! streams the body into a temporary file, then keeps it (see
//! [`crate::storage::files`] for the layout and crash safety).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::member_room;
use crate::auth::limits::InFlightGuard;
use crate::auth::Identity;
use crate::error::ApiError;
use crate::ids::{ContentHash, FileId, Millis, RoomId, UserId};
use crate::images;
use crate::rooms::Room;
use crate::state::AppState;
use crate::storage::records::{FileRecord, FileRef};

/// Most files one message carries.
pub const MAX_FILES: usize = 10;

/// Longest file name kept, in characters.
const NAME_MAX: usize = 255;

/// An upload that may go ahead: checked, its place taken.
pub struct Upload {
    user: UserId,
    room: RoomId,
    name: String,
    claimed_type: Option<String>,
    /// Bytes it may have: the size limit, or what is left of the quota.
    allowed: u64,
    /// Whether passing `allowed` is the quota's doing (else the size's).
    by_quota: bool,
    quota_mb: u64,
    _place: InFlightGuard<UserId>,
}

/// Admits one upload of `name` into `room_id` by `me`: a member, within
/// the upload rate and the uploads in progress (`rate_limited`), with
/// quota left (`quota_exceeded`), and a declared length within the limits.
pub fn begin(
    state: &AppState,
    me: &Identity,
    room_id: &str,
    name: Option<&str>,
    claimed_type: Option<&str>,
    declared_len: Option<u64>,
) -> Result<Upload, ApiError> {
    let room = member_room(state, room_id, me.user)?;
    let name = file_name(name)?;
    let place = state.limits.uploading.enter(&me.user)?;
    state.limits.upload.check(&me.user)?;
    let c = &state.config.files;
    let quota_mb = c.upload_quota_bytes / (1024 * 1024);
    let left = c
        .upload_quota_bytes
        .saturating_sub(state.store.files_used(me.user)?);
    if left == 0 {
        return Err(ApiError::QuotaExceeded(quota_mb));
    }
    let by_quota = left < c.max_upload_bytes;
    let allowed = left.min(c.max_upload_bytes);
    if let Some(len) = declared_len {
        if len > c.max_upload_bytes {
            return Err(ApiError::PayloadTooLarge(c.max_upload_bytes as usize));
        }
        if len > allowed {
            return Err(ApiError::QuotaExceeded(quota_mb));
        }
    }
    Ok(Upload {
        user: me.user,
        room: room.record.id,
        name,
        claimed_type: claimed_type.map(str::to_string),
        allowed,
        by_quota,
        quota_mb,
        _place: place,
    })
}

/// Receives the upload's bytes from `body` into a temporary file, hashing
/// them as they come and stopping the moment they pass the limit; `idle`
/// is how long the body may stall. Then previews a picture, strips a
/// JPEG's metadata, keeps the bytes (once per content) and writes the
/// file's records. Nothing of a failed upload is kept.
pub async fn receive<B>(
    state: &AppState,
    upload: Upload,
    body: B,
    idle: Duration,
) -> Result<FileRecord, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let (temp, file) = state.store.upload_temp()?;
    let mut temp = TempFile(Some(temp));
    let received = stream_to(tokio::fs::File::from_std(file), body, &upload, idle).await?;
    let Received {
        mut hash,
        mut size,
        head,
    } = received;
    let picture = images::picture_type(&head);
    let mut preview = images::Preview::default();
    if let Some(kind) = picture {
        // Pictures are read into memory, a few at a time server-wide.
        let _slot = state.images.hold().await?;
        let path = temp.path().clone();
        let bytes = Bytes::from(
            tokio::fs::read(&path)
                .await
                .map_err(|e| ApiError::Storage(crate::storage::StorageError::Files(e)))?,
        );
        let bytes = if kind == "image/jpeg" {
            match strip(state, bytes.clone()).await? {
                Some((stripped, stripped_hash, path)) => {
                    let old = temp.replace(path);
                    let _ = tokio::fs::remove_file(old).await;
                    hash = stripped_hash;
                    size = stripped.len() as u64;
                    stripped
                }
                None => bytes,
            }
        } else {
            bytes
        };
        preview = state.images.preview(bytes).await;
    }
    let mime = match picture {
        Some(kind) => kind.to_string(),
        None => stored_type(upload.claimed_type.as_deref()),
    };
    let record = FileRecord {
        file: FileRef {
            id: FileId::generate(),
            name: upload.name,
            mime,
            size,
            hash,
            width: preview.width,
            height: preview.height,
            thumb: preview.png.is_some(),
        },
        uploader: upload.user,
        room: upload.room,
        created_at: Millis::now(),
    };
    let store = state.store.clone();
    let path = temp.take();
    let kept = record.clone();
    tokio::task::spawn_blocking(move || store.add_file(&path, preview.png.as_deref(), &kept))
        .await
        .map_err(|_| ApiError::Internal)??;
    state.store.flush_async().await?;
    tracing::info!(file = %record.file.id, size = record.file.size, "File uploaded.");
    Ok(record)
}

/// What was received of an upload.
struct Received {
    hash: ContentHash,
    size: u64,
    /// Its first bytes, to tell its format.
    head: Vec<u8>,
}

/// Copies `body` into `file`, hashing, within the upload's allowance;
/// fsyncs it at the end.
async fn stream_to<B>(
    mut file: tokio::fs::File,
    mut body: B,
    upload: &Upload,
    idle: Duration,
) -> Result<Received, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut head = Vec::with_capacity(64);
    let io = |e: std::io::Error| ApiError::Storage(crate::storage::StorageError::Files(e));
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(ApiError::RequestTimeout),
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                return Err(ApiError::InvalidRequest(
                    "The request body could not be read.".into(),
                ))
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        size += chunk.len() as u64;
        if size > upload.allowed {
            return Err(if upload.by_quota {
                ApiError::QuotaExceeded(upload.quota_mb)
            } else {
                ApiError::PayloadTooLarge(upload.allowed as usize)
            });
        }
        if head.len() < 64 {
            let take = (64 - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(io)?;
    }
    if size == 0 {
        return Err(ApiError::InvalidRequest(
            "The file is empty: send its bytes as the request body.".into(),
        ));
    }
    file.sync_all().await.map_err(io)?;
    Ok(Received {
        hash: ContentHash(hasher.finalize().into()),
        size,
        head,
    })
}

/// A JPEG without its metadata, written to a new temporary file (fsynced):
/// its bytes, their hash and the path. `None` when there was nothing to
/// strip.
async fn strip(
    state: &AppState,
    jpeg: Bytes,
) -> Result<Option<(Bytes, ContentHash, PathBuf)>, ApiError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        let Some(stripped) = images::strip_jpeg_metadata(jpeg) else {
            return Ok(None);
        };
        let hash = ContentHash(Sha256::digest(&stripped).into());
        let (path, mut file) = store.upload_temp()?;
        use std::io::Write;
        file.write_all(&stripped)
            .and_then(|()| file.sync_all())
            .map_err(|e| {
                let _ = std::fs::remove_file(&path);
                crate::storage::StorageError::Files(e)
            })?;
        Ok(Some((stripped, hash, path)))
    })
    .await
    .map_err(|_| ApiError::Internal)?
}

/// A temporary file, removed when dropped unless taken.
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn path(&self) -> &PathBuf {
        self.0
            .as_ref()
            .expect("a temp file is only read before it is taken")
    }

    fn replace(&mut self, path: PathBuf) -> PathBuf {
        self.0.replace(path).unwrap_or_default()
    }

    fn take(&mut self) -> PathBuf {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A file name as given (decoded from the query): its last path component, 1 to 255 characters
/// without control characters (`invalid_request` otherwise).
fn file_name(name: Option<&str>) -> Result<String, ApiError> {
    let bad = || {
        ApiError::InvalidRequest(
            "Name the file with ?name=FILE (1 to 255 characters, no control characters).".into(),
        )
    };
    let name = name.ok_or_else(bad)?;
    let name = name.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    let n = name.chars().count();
    if n == 0 || n > NAME_MAX || name.chars().any(char::is_control) || name == "." || name == ".." {
        return Err(bad());
    }
    Ok(name.to_string())
}

/// The media type a file that is not a previewed picture is stored with:
/// what the upload said, if it is a plain `type/subtype`, else
/// `application/octet-stream`. A claim to be a picture hearth would show
/// that its bytes do not bear out is not kept.
fn stored_type(claimed: Option<&str>) -> String {
    let claimed = claimed
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let plain = claimed
        .split_once('/')
        .is_some_and(|(t, sub)| token(t) && token(sub));
    let shown_inline = ["image/png", "image/jpeg", "image/gif", "image/webp"];
    if plain && !shown_inline.contains(&claimed.as_str()) {
        claimed
    } else {
        "application/octet-stream".into()
    }
}

/// The files a new message in `room` by `author` attaches: each an upload
/// of the author's to this room that still exists (`invalid_file`), at
/// most [`MAX_FILES`] (`too_many_files`), each once.
pub fn attachable(
    state: &AppState,
    room: &Room,
    author: UserId,
    ids: &[String],
) -> Result<Vec<FileRef>, ApiError> {
    if ids.len() > MAX_FILES {
        return Err(ApiError::TooManyFiles(MAX_FILES));
    }
    let mut out: Vec<FileRef> = Vec::with_capacity(ids.len());
    for id in ids {
        let id: FileId = id.parse().map_err(|_| ApiError::InvalidFile)?;
        if out.iter().any(|f| f.id == id) {
            continue;
        }
        match state.store.file(id)? {
            Some(r) if r.uploader == author && r.room == room.record.id => out.push(r.file),
            _ => return Err(ApiError::InvalidFile),
        }
    }
    Ok(out)
}

/// A file for `reader` to download: its record, if they uploaded it or
/// are in a room where a message holds it; `file_not_found` otherwise,
/// exactly as for a file that does not exist.
pub fn readable(state: &AppState, reader: UserId, id: &str) -> Result<FileRecord, ApiError> {
    let id: FileId = id.parse().map_err(|_| ApiError::FileNotFound)?;
    let record = state.store.file(id)?.ok_or(ApiError::FileNotFound)?;
    if record.uploader == reader {
        return Ok(record);
    }
    let log = state.store.log()?;
    for (room, seq) in log.file_holders(id)? {
        if let Some(r) = state.rooms.get(room) {
            if r.is_member(reader) && seq <= r.head() {
                return Ok(record);
            }
        }
    }
    Err(ApiError::FileNotFound)
}

/// Frees, now and then, uploads no message holds that are older than
/// `files.orphan_upload_secs`, and blobs no file uses.
pub async fn sweep(state: std::sync::Arc<AppState>) {
    let age = state.config.files.orphan_upload_age;
    let every = (age / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let before = Millis(Millis::now().0.saturating_sub(age.as_millis() as u64));
        if let Err(e) = state.committer.sweep_files(before).await {
            tracing::debug!(error = %e, "File sweep skipped.");
            return;
        }
    }
}
