//! Integration tests: each starts the real server and drives it over real
//! sockets. One test binary, one module per area.

mod harness;

mod accounts;
mod messaging;
