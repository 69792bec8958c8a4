//! What can go wrong in the index, for the operator's log.

use crate::storage::StorageError;

/// Why the index could not do something.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search index directory: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the search index's commit payload could not be written")]
    Payload,
    #[error("the search indexer has stopped")]
    Stopped,
    #[error("search is turned off on this server (storage.search_index = false)")]
    Off,
}
