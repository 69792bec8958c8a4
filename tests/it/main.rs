//! Integration tests: each starts the real server and drives it over real
//! sockets. One test binary, one module per area.

// Not every helper is used by every module set; the harness is a toolbox.
#[allow(dead_code)]
mod harness;

mod abuse;
mod accounts;
mod admin;
mod admin_api;
mod api;
mod architecture;
mod autobahn;
mod avatars;
mod bench_crash;
mod bench_smoke;
mod bots;
mod browser;
mod callbacks;
mod chaos;
mod conversations;
mod crash;
mod error_codes;
mod export;
mod files;
mod history_json;
mod history_window;
mod hostile_http;
mod hostile_ws;
mod lifecycle;
mod messaging;
mod moderation;
mod observability;
mod parity;
mod private_rooms;
mod push;
mod reads;
mod search;
mod storage;
mod tls;
mod web_app;
mod websocket;
