//! HTTP surface of the points mall and the `pointsmall` command line (`cli`; the
//! binary in `main.rs` only parses and runs it).

pub mod app;
pub mod cli;
pub mod doc;
pub mod error;
pub mod extract;
pub mod idempotent;
pub mod input;
pub mod limits;
pub mod openapi;
pub mod pagination;
pub mod routes;
pub mod security_headers;
pub mod server;
pub mod state;
