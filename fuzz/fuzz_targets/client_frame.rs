//! Client frames come straight off the network: any bytes, as JSON (text
//! frames) or MessagePack (binary frames), must decode or fail, never panic
//! or overflow the stack.
#![no_main]

use hearth::protocol::{ClientFrame, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ClientFrame::decode(Format::Json, data);
    let _ = ClientFrame::decode(Format::Msgpack, data);
});
