//! The WebSocket gateway: after `http` has done the upgrade, one reader
//! per connection ([`connection`]) and one writer ([`writer`]).
//!
//! fastwebsockets does the handshake (in `http::upgrade`). Reading and
//! writing frames are our own: fastwebsockets writes each frame with its own syscall where fan-out
//! needs many frames per write, and its reader accepts frames a server must
//! refuse (see [`reader`]).

mod connection;
#[cfg(debug_assertions)]
pub mod echo;
mod message;
pub mod reader;
mod socket;
mod writer;

pub use connection::run;

pub use socket::Socket;
