//! The embedded deterministic test and benchmark server (`fetchbench serve`).
//!
//! An HTTP/1.1 and HTTP/2 server (axum and hyper on tokio), optionally over TLS and behind an
//! emulated network path, that serves synthetic files of any size.
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
//! A [`Network`] in [`ServerConfig`] puts every connection behind a path: `rtt` delays each
//! direction by half of it and a connection's first bytes by its TCP handshake's round trip
//! (a first request costs two round trips, as on a real path; TLS and HTTP/2 handshakes cost
//! their real ones), and `link_rate` paces the server-to-client direction of each connection
//! (so HTTP/2 streams share it). The delay line holds at most what is in flight (16 MiB per
//! connection, less with a link rate); with neither set, sockets are served as accepted.
//!
//! # Protocols and push-back
//!
//! HTTP/1.1 with keep-alive, and HTTP/2: by ALPN with `tls` (a self-signed certificate for
//! `localhost`, `127.0.0.1` and `::1` made at start, see [`ServerHandle::cert_path`]), by the
//! client's preface (prior knowledge, h2c) without. `max_streams` is the HTTP/2
//! `SETTINGS_MAX_CONCURRENT_STREAMS` (128 by default, as nginx). With `max_active`, a request
//! that finds that many responses in progress server-wide gets `503` with `Retry-After: 1`.
//! [`ServerStats`] counts connections, TLS handshakes (full and resumed), requests by protocol,
//! refusals and the most requests in progress on one connection.
//!
//! # Layout
//!
//! - `content`: the synthetic bytes ([`fill`], [`verify_file`]).
//! - `state`: [`ServerConfig`], [`ServerStats`] and what the handlers share.
//! - `handle`: [`ServerHandle`], the server's thread, runtime and listener.
//! - `conn`: accepting and serving connections (path, TLS, HTTP/1.1 or HTTP/2, shutdown).
//! - `link`: the emulated path ([`Network`]): the delay line and the paced link.
//! - `tls`: the self-signed certificate and the TLS configuration.
//! - `routes`: the router, query parameters, `/list`, counting and `max_active`.
//! - `faults`: fault injection by query parameter, and its per-URL counts.
//! - `files`: file responses, body streaming and `Range`.
//! - `serve`: the `fetchbench serve` subcommand ([`ServeArgs`], [`serve()`]).

mod conn;
mod content;
mod faults;
mod files;
mod handle;
mod link;
mod routes;
mod serve;
mod state;
#[cfg(test)]
mod testing;
mod tls;

pub use content::verify_file;
pub use handle::ServerHandle;
pub(crate) use link::Network;
pub(crate) use serve::{ServeArgs, serve};
pub use state::ServerConfig;
pub(crate) use state::{DEFAULT_MAX_STREAMS, ServerStats};
