//! What a running server shares between its handle and its handlers: the configuration, the
//! address it advertises and the traffic counters.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use super::link::Network;

/// HTTP/2 streams a client may open at once on one connection unless `--max-streams` says
/// (nginx's `http2_max_concurrent_streams`).
pub(crate) const DEFAULT_MAX_STREAMS: u32 = 128;

/// Server-wide settings; per-request query parameters override `latency`,
/// `rate` and `size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Delay before each file response's head is sent.
    pub latency: Duration,
    /// Per-response bandwidth cap in bytes/s; `None` or `Some(0)` = unlimited.
    pub rate: Option<u64>,
    /// Number of files in the workload (`/list`,
    /// [`ServerHandle::workload_urls`](super::ServerHandle::workload_urls)).
    pub files: usize,
    /// Default file size in bytes.
    pub size: u64,
    /// The path every connection crosses (round trip, link rate).
    pub network: Network,
    /// Serve HTTPS with a self-signed certificate made at start.
    pub tls: bool,
    /// Where to write that certificate (PEM); a temporary directory when `None`.
    pub cert_out: Option<PathBuf>,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`.
    pub max_streams: u32,
    /// HTTP/1.1 only: no h2 by ALPN, no h2c.
    pub http1_only: bool,
    /// At most this many responses in progress server-wide; more get 503 with `Retry-After`.
    pub max_active: Option<usize>,
}

impl Default for ServerConfig {
    /// `127.0.0.1:0`, no latency, no rate limit, 32 files of 256 KiB, plain HTTP straight on
    /// the socket, 128 HTTP/2 streams per connection, no limit on responses in progress.
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            latency: Duration::ZERO,
            rate: None,
            files: 32,
            size: 256 * 1024,
            network: Network::default(),
            tls: false,
            cert_out: None,
            max_streams: DEFAULT_MAX_STREAMS,
            http1_only: false,
            max_active: None,
        }
    }
}

/// Traffic counters of a running server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ServerStats {
    /// HTTP requests received on any route (including `/list`, HEAD and 404s).
    pub(crate) requests: u64,
    /// File body bytes handed to connections (file data only: `/list`
    /// listings and error messages are not counted).
    pub(crate) body_bytes: u64,
    /// TCP connections accepted.
    pub(crate) connections: u64,
    /// TLS handshakes completed in full (a new session).
    pub(crate) tls_full: u64,
    /// TLS handshakes that resumed an earlier session.
    pub(crate) tls_resumed: u64,
    /// Requests over HTTP/1.x.
    pub(crate) requests_h1: u64,
    /// Requests over HTTP/2 (streams).
    pub(crate) requests_h2: u64,
    /// Requests refused with 503 by `--max-active`.
    pub(crate) refused: u64,
    /// The most requests in progress at once on one connection (HTTP/2 streams; 1 over
    /// HTTP/1.1), since the start or the last [`reset_peak`](super::ServerHandle::reset_peak).
    pub(crate) peak_streams: u64,
}

impl ServerStats {
    /// What happened between `earlier` and this snapshot: every counter's difference, and this
    /// snapshot's peak (reset the peak at `earlier` to make it the interval's).
    pub(crate) fn since(&self, earlier: &ServerStats) -> ServerStats {
        ServerStats {
            requests: self.requests - earlier.requests,
            body_bytes: self.body_bytes - earlier.body_bytes,
            connections: self.connections - earlier.connections,
            tls_full: self.tls_full - earlier.tls_full,
            tls_resumed: self.tls_resumed - earlier.tls_resumed,
            requests_h1: self.requests_h1 - earlier.requests_h1,
            requests_h2: self.requests_h2 - earlier.requests_h2,
            refused: self.refused - earlier.refused,
            peak_streams: self.peak_streams,
        }
    }

    /// TLS handshakes, full and resumed.
    pub(crate) fn tls_handshakes(&self) -> u64 {
        self.tls_full + self.tls_resumed
    }
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) requests: AtomicU64,
    pub(super) body_bytes: AtomicU64,
    pub(super) connections: AtomicU64,
    pub(super) tls_full: AtomicU64,
    pub(super) tls_resumed: AtomicU64,
    pub(super) requests_h1: AtomicU64,
    pub(super) requests_h2: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) peak_streams: AtomicU64,
    /// Responses in progress server-wide (head not sent, or body not finished).
    pub(super) active: AtomicUsize,
}

impl Counters {
    pub(super) fn snapshot(&self) -> ServerStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ServerStats {
            requests: load(&self.requests),
            body_bytes: load(&self.body_bytes),
            connections: load(&self.connections),
            tls_full: load(&self.tls_full),
            tls_resumed: load(&self.tls_resumed),
            requests_h1: load(&self.requests_h1),
            requests_h2: load(&self.requests_h2),
            refused: load(&self.refused),
            peak_streams: load(&self.peak_streams),
        }
    }
}

/// State shared by all request handlers and the handle.
pub(super) struct AppState {
    pub(super) config: ServerConfig,
    /// `host:port` clients can connect to (loopback for wildcard binds).
    pub(super) authority: String,
    /// `http` or `https`.
    pub(super) scheme: &'static str,
    pub(super) counters: Counters,
}

impl AppState {
    pub(super) fn new(config: ServerConfig, bound: SocketAddr) -> Self {
        let scheme = if config.tls { "https" } else { "http" };
        let connectable = match bound.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::from((Ipv4Addr::LOCALHOST, bound.port()))
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::from((Ipv6Addr::LOCALHOST, bound.port()))
            }
            _ => bound,
        };
        Self {
            config,
            authority: connectable.to_string(),
            scheme,
            counters: Counters::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::testing::{get, request, start};

    #[test]
    fn stats_count_requests_and_file_bytes() {
        let server = start(ServerConfig::default());
        let addr = server.addr();
        assert_eq!(server.stats(), ServerStats::default());
        get(addr, "/files/a?size=1000");
        request(addr, "GET", "/files/a?size=1000", &[("Range", "bytes=-10")]);
        get(addr, "/files/a?size=65537");
        get(addr, "/list");
        get(addr, "/missing");
        assert_eq!(
            server.stats(),
            ServerStats {
                requests: 5,
                body_bytes: 1000 + 10 + 65_537,
                connections: 5,
                requests_h1: 5,
                peak_streams: 1,
                ..ServerStats::default()
            }
        );
    }

    #[test]
    fn wildcard_bind_advertises_loopback() {
        let server = start(ServerConfig {
            bind: "0.0.0.0:0".parse().expect("addr"),
            ..ServerConfig::default()
        });
        assert_eq!(
            server.base_url(),
            format!("http://127.0.0.1:{}", server.addr().port())
        );
    }
}
