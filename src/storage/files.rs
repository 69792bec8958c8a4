//! Uploaded files: their records in sled, their bytes as blobs on disk,
//! named by their SHA-256 so identical bytes are stored once.
//!
//! | tree            | key                                | value                       |
//! |-----------------|------------------------------------|-----------------------------|
//! | `fileid_file`   | file id (16)                       | [`FileRecord`]              |
//! | `hash_fileid`   | content hash (32) ‖ file id (16)   | empty: the blob's users     |
//! | `userid_fileid` | uploader (16) ‖ file id (16)       | size (u64 BE), for quotas   |
//!
//! Which messages hold a file is in the room log (tag 0x04, see
//! [`super::log`]), written in the same batch as the message.
//!
//! On disk, under the data directory:
//!
//! ```text
//! files/ab/ab12…(64 hex digits)         a blob: the bytes as served
//! files/thumbs/ab/ab12….png             its thumbnail, for pictures
//! files/tmp/                            uploads being received
//! ```
//!
//! A blob or thumbnail is written to `files/tmp/`, fsynced, then renamed
//! into place (and the directory fsynced); the records are written only
//! after. A crash leaves at most an unreferenced file in `tmp/` (cleared
//! at start) or a blob without records (removed by the sweep), never a
//! record naming a half-written blob.

use std::io::Write;
use std::path::{Path, PathBuf};

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::error::{Result, StorageError};
use super::records::{self, FileRecord};
use super::store::Store;
use crate::ids::{ContentHash, FileId, UserId};
use crate::locks::lock;

impl Store {
    /// `DATA/files`.
    pub fn files_dir(&self) -> PathBuf {
        self.dir().join("files")
    }

    /// Where the blob with `hash` lives.
    pub fn blob_path(&self, hash: &ContentHash) -> PathBuf {
        let hex = hash.to_string();
        self.files_dir().join(&hex[..2]).join(hex)
    }

    /// Where the thumbnail of the blob with `hash` lives.
    pub fn thumb_path(&self, hash: &ContentHash) -> PathBuf {
        let hex = hash.to_string();
        self.files_dir()
            .join("thumbs")
            .join(&hex[..2])
            .join(format!("{hex}.png"))
    }

    /// A new file in `files/tmp/` to receive an upload.
    pub fn upload_temp(&self) -> Result<(PathBuf, std::fs::File)> {
        let dir = self.files_dir().join("tmp");
        std::fs::create_dir_all(&dir).map_err(StorageError::Files)?;
        let path = dir.join(FileId::generate().to_string());
        let file = std::fs::File::create_new(&path).map_err(StorageError::Files)?;
        Ok((path, file))
    }

    /// Removes what uploads left in `files/tmp/` (at start: none is in
    /// progress, and none of it is referred to).
    pub fn clear_upload_temps(&self) -> Result<usize> {
        let dir = self.files_dir().join("tmp");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(0);
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            if std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Keeps an upload: its bytes (at `temp`, already fsynced) become the
    /// blob of `record.file.hash` unless that blob exists already (then
    /// `temp` is removed), its thumbnail is written beside, and only then
    /// are its records written. The caller flushes.
    pub fn add_file(&self, temp: &Path, thumb: Option<&[u8]>, record: &FileRecord) -> Result<()> {
        let hash = &record.file.hash;
        let blob = self.blob_path(hash);
        let _held = lock(self.blob_lock());
        if blob.exists() {
            std::fs::remove_file(temp).map_err(StorageError::Files)?;
        } else {
            place(temp, &blob).map_err(StorageError::Files)?;
        }
        if let Some(png) = thumb {
            let path = self.thumb_path(hash);
            if !path.exists() {
                let (tmp, mut file) = self.upload_temp()?;
                file.write_all(png)
                    .and_then(|()| file.sync_all())
                    .and_then(|()| place(&tmp, &path))
                    .map_err(|e| {
                        let _ = std::fs::remove_file(&tmp);
                        StorageError::Files(e)
                    })?;
            }
        }
        let i = self.inner()?;
        let id = record.file.id.to_bytes();
        let value = records::encode(record);
        let res = (&i.fileid_file, &i.hash_fileid, &i.userid_fileid).transaction(
            |(files, users_of_blob, by_user)| {
                files.insert(&id, value.as_slice())?;
                users_of_blob.insert(blob_user_key(hash, record.file.id).as_slice(), &[])?;
                by_user.insert(
                    user_file_key(record.uploader, record.file.id).as_slice(),
                    &record.file.size.to_be_bytes(),
                )?;
                Ok::<_, ConflictableTransactionError<()>>(())
            },
        );
        res.map_err(super::store::tx_error)
    }

    /// A file's record.
    pub fn file(&self, id: FileId) -> Result<Option<FileRecord>> {
        self.inner()?
            .fileid_file
            .get(id.to_bytes())?
            .map(|v| records::decode("fileid_file", &id.to_string(), &v))
            .transpose()
    }

    /// Bytes of every file `user` has uploaded and not had freed.
    pub fn files_used(&self, user: UserId) -> Result<u64> {
        let mut total = 0u64;
        for kv in self.inner()?.userid_fileid.scan_prefix(user.to_bytes()) {
            let (_, v) = kv?;
            let mut b = [0u8; 8];
            let n = v.len().min(8);
            b[8 - n..].copy_from_slice(&v[..n]);
            total = total.saturating_add(u64::from_be_bytes(b));
        }
        Ok(total)
    }

    /// Removes a file's records, then its blob and thumbnail if no other
    /// file has the same bytes. Returns the record removed.
    pub fn remove_file(&self, id: FileId) -> Result<Option<FileRecord>> {
        let _held = lock(self.blob_lock());
        let Some(record) = self.file(id)? else {
            return Ok(None);
        };
        let i = self.inner()?;
        let hash = record.file.hash;
        let res = (&i.fileid_file, &i.hash_fileid, &i.userid_fileid).transaction(
            |(files, users_of_blob, by_user)| {
                files.remove(&id.to_bytes())?;
                users_of_blob.remove(blob_user_key(&hash, id).as_slice())?;
                by_user.remove(user_file_key(record.uploader, id).as_slice())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            },
        );
        res.map_err(|e: TransactionError<()>| super::store::tx_error(e))?;
        // The records are gone for good before the bytes are.
        i.flush()?;
        if i.hash_fileid.scan_prefix(hash.0).next().is_none() {
            // Missing already (a damaged store) is as good as removed.
            let _ = std::fs::remove_file(self.blob_path(&hash));
            let _ = std::fs::remove_file(self.thumb_path(&hash));
        }
        Ok(Some(record))
    }

    /// Every file record.
    pub fn all_files(&self) -> impl Iterator<Item = Result<FileRecord>> {
        self.scan(|i| &i.fileid_file)
            .map(|kv| kv.and_then(|(k, v)| records::decode("fileid_file", &super::hex(&k), &v)))
    }

    /// Whether any file record uses the blob with `hash`.
    pub fn blob_in_use(&self, hash: &ContentHash) -> Result<bool> {
        Ok(self
            .inner()?
            .hash_fileid
            .scan_prefix(hash.0)
            .next()
            .transpose()?
            .is_some())
    }

    /// Every blob on disk, with its path (for the sweep and verify).
    pub fn blobs_on_disk(&self) -> Vec<(ContentHash, PathBuf)> {
        let mut out = Vec::new();
        let Ok(dirs) = std::fs::read_dir(self.files_dir()) else {
            return out;
        };
        for dir in dirs.flatten() {
            let name = dir.file_name();
            if name.len() != 2 {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(dir.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                if let Some(hash) = entry.file_name().to_str().and_then(parse_hash) {
                    out.push((hash, entry.path()));
                }
            }
        }
        out
    }

    /// Removes a blob that no record uses (left by a crash between placing
    /// it and writing its records), under the same lock as uploads.
    pub fn remove_unused_blob(&self, hash: &ContentHash) -> Result<bool> {
        let _held = lock(self.blob_lock());
        if self.blob_in_use(hash)? {
            return Ok(false);
        }
        let removed = std::fs::remove_file(self.blob_path(hash)).is_ok();
        let _ = std::fs::remove_file(self.thumb_path(hash));
        Ok(removed)
    }
}

/// 64 hex digits as a hash.
pub fn parse_hash(text: &str) -> Option<ContentHash> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(ContentHash(out))
}

/// Renames `from` to `to` (creating its directory) and fsyncs the
/// directory, so the new name survives a power cut.
fn place(from: &Path, to: &Path) -> std::io::Result<()> {
    let dir = to.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    std::fs::rename(from, to)?;
    std::fs::File::open(dir)?.sync_all()
}

fn blob_user_key(hash: &ContentHash, id: FileId) -> [u8; 48] {
    let mut k = [0u8; 48];
    k[..32].copy_from_slice(&hash.0);
    k[32..].copy_from_slice(&id.to_bytes());
    k
}

fn user_file_key(user: UserId, id: FileId) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(&user.to_bytes());
    k[16..].copy_from_slice(&id.to_bytes());
    k
}
