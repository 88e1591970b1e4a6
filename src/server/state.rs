//! What a running server shares between its handle and its handlers: the configuration, the
//! address it advertises and the traffic counters.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
}

impl Default for ServerConfig {
    /// `127.0.0.1:0`, no latency, no rate limit, 32 files of 256 KiB.
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            latency: Duration::ZERO,
            rate: None,
            files: 32,
            size: 256 * 1024,
        }
    }
}

/// Traffic counters of a running server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// HTTP requests received on any route (including `/list`, HEAD and 404s).
    pub requests: u64,
    /// File body bytes handed to connections (file data only: `/list`
    /// listings and error messages are not counted).
    pub body_bytes: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) requests: AtomicU64,
    pub(super) body_bytes: AtomicU64,
}

impl Counters {
    pub(super) fn snapshot(&self) -> ServerStats {
        ServerStats {
            requests: self.requests.load(Ordering::Relaxed),
            body_bytes: self.body_bytes.load(Ordering::Relaxed),
        }
    }
}

/// State shared by all request handlers and the handle.
pub(super) struct AppState {
    pub(super) config: ServerConfig,
    /// `host:port` clients can connect to (loopback for wildcard binds).
    pub(super) authority: String,
    pub(super) counters: Counters,
}

impl AppState {
    pub(super) fn new(config: ServerConfig, bound: SocketAddr) -> Self {
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
                body_bytes: 1000 + 10 + 65_537
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
