//! A socket handed over by the upgrade.

/// An upgraded socket as the connection's reader and writer own it.
pub struct Socket<R, W> {
    pub read: R,
    pub write: W,
    /// What the client sent right after its upgrade request, read with
    /// it: the reader starts with these bytes.
    pub early: bytes::Bytes,
}
