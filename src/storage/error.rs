//! What can go wrong in storage, for every caller above it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    #[error("record {tree}/{key} cannot be decoded: {message}")]
    Corrupt {
        tree: &'static str,
        key: String,
        message: String,
    },
    #[error("the data directory {path} was written by a newer hearth (schema {found}, this binary knows up to {known}); run the newer version or restore a backup")]
    NewerSchema {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error("cannot open the data directory {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("cannot sync the database to disk: {0}")]
    Sync(std::io::Error),
    #[error("cannot write or read a stored file: {0}")]
    Files(std::io::Error),
    #[error("the database is being reopened after a storage failure")]
    Unavailable,
    /// A read of a room's log up to its durable head came back without
    /// every seq asked for (the log holds each seq from 1 to the head),
    /// even when read again.
    #[error("room {room}'s log read back incomplete for seqs {from}..={to}")]
    Incomplete { room: String, from: u64, to: u64 },
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
