//! The embedded deterministic test and benchmark server (`fetchbench serve`).
//!
//! An HTTP/1.1 server (axum on tokio) that serves synthetic files of any size.
//! A file's bytes are a pure function of its name and the byte offset (see
//! [`fill`]), so any client can check a download without a reference copy
//! ([`verify_file`]), and the server never holds a whole file in memory.
//!
//! # Routes
//!
//! - `GET|HEAD /files/{name}?size=N` — file `name` of `N` bytes (units allowed,
//!   e.g. `size=1.5MiB`; default: the server's `size`). Supports single
//!   `Range` requests (206 / 416), `If-Range`, `ETag` and `Last-Modified`.
//! - `GET /list?files=N&size=S` — `N` file URLs (`file-0001.bin`, …), one per
//!   line. `latency` and `rate` given here are copied into every URL.
//! - anything else — 404.
//!
//! # Faults
//!
//! `/files/…` also takes `status=CODE`, `fail=N`, `cut=K`, `stall=DUR` and
//! `retry_after=S`, to rehearse a client's retries and resumes (see `faults`).
//!
//! # Simulated network conditions
//!
//! `latency` (a delay before a file response's head is sent) and `rate` (a
//! per-response bandwidth cap in bytes/s; 0 means unlimited) are set
//! server-wide by [`ServerConfig`] and can be overridden per request with the
//! query parameters `latency=250ms` and `rate=1MiB/s` on `/files/…`.
//!
//! # Layout
//!
//! - `content`: the synthetic bytes ([`fill`], [`verify_file`]).
//! - `state`: [`ServerConfig`], [`ServerStats`] and what the handlers share.
//! - `handle`: [`ServerHandle`], the server's thread, runtime and listener.
//! - `routes`: the router, query parameters and `/list`.
//! - `faults`: fault injection by query parameter, and its per-URL counts.
//! - `files`: file responses, body streaming and `Range`.
//! - `serve`: the `fetchbench serve` subcommand ([`ServeArgs`], [`serve()`]).

mod content;
mod faults;
mod files;
mod handle;
mod routes;
mod serve;
mod state;
#[cfg(test)]
mod testing;

pub use content::{fill, verify_file};
pub use handle::ServerHandle;
pub use serve::{ServeArgs, serve};
pub use state::{ServerConfig, ServerStats};
