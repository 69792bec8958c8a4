//! MessagePack decoding with the limits untrusted bytes need, for the wire
//! (client frames) and for stored records alike.

use serde::Deserialize;

/// Deepest MessagePack nesting accepted. Our objects nest two levels; the
/// decoder's default (1024) lets a 1 KB frame of nested maps overflow the
/// stack and abort the process.
const MSGPACK_MAX_DEPTH: usize = 16;

/// Decodes MessagePack with a nesting limit, for anything not written by us.
pub fn msgpack_from_slice<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
) -> Result<T, rmp_serde::decode::Error> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MSGPACK_MAX_DEPTH);
    T::deserialize(&mut de)
}
