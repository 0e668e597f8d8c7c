//! HTTP surface of the points mall and the `pointsmall` server's library half (the
//! binary in `main.rs` adds the CLI).

pub mod app;
pub mod demo;
pub mod error;
pub mod extract;
pub mod idempotent;
pub mod input;
pub mod openapi;
pub mod pagination;
pub mod routes;
pub mod security_headers;
pub mod server;
pub mod state;
