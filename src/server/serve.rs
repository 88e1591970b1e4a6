//! The `fetchbench serve` subcommand: its flags, the server run until Ctrl-C or SIGTERM, and
//! the startup hint.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::handle::ServerHandle;
use super::link::Network;
use super::state::{DEFAULT_MAX_STREAMS, ServerConfig, ServerStats};
use crate::units;

/// `serve --help`'s closing text: the routes and their query parameters, faults included.
const SERVE_AFTER_HELP: &str = "\
Routes:
  GET|HEAD /files/NAME?size=N   a deterministic file (Range, If-Range, ETag, Last-Modified)
  GET /list?files=N&size=S      N file URLs, one per line
  latency=DUR, rate=RATE        per-request overrides of --latency and --rate

Faults on /files/NAME, to rehearse retries and resumes:
  status=CODE     answer CODE (400-599) instead of the file (retry_after=S adds Retry-After)
  cut=K           cut the connection after K bytes of the body (of each response: a resumed
                  request gets K more)
  stall=DUR       pause DUR halfway through the body, then go on
  fail=N          the faults above only for the first N requests of this URL, then the file
                  whole (fail=N alone: N times 503). Requests are counted per URL (path and
                  query) for the server's lifetime, from any client.
Example: curl -s 'http://127.0.0.1:8000/list?files=100' | sed 's/$/\\&fail=2/' | fetchbench -i -";

/// Serve deterministic synthetic files over HTTP for testing and benchmarking.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = SERVE_AFTER_HELP)]
pub(crate) struct ServeArgs {
    /// Address to listen on; port 0 picks a free port
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    pub(crate) bind: SocketAddr,

    /// Delay before each file response is sent, e.g. 50ms (per request: ?latency=)
    #[arg(long, value_name = "DUR", default_value = "0", value_parser = units::parse_duration)]
    pub(crate) latency: Duration,

    /// Bandwidth cap per response, e.g. 10MiB/s; unlimited if absent or 0 (per request: ?rate=)
    #[arg(long, value_name = "RATE", value_parser = units::parse_rate)]
    pub(crate) rate: Option<u64>,

    /// Number of files listed at /list
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub(crate) files: usize,

    /// Default file size, e.g. 256KiB, 1.5MB (per request: ?size=)
    #[arg(long, value_name = "SIZE", default_value = "256KiB", value_parser = units::parse_size)]
    pub(crate) size: u64,

    /// Emulate a network path with this round-trip time, e.g. 50ms: each direction of every
    /// connection is delayed by half of it, and its handshake costs a round trip (so a first
    /// request costs two, TLS one more)
    #[arg(long, value_name = "DUR", default_value = "0", value_parser = units::parse_duration, help_heading = "Network")]
    pub(crate) rtt: Duration,

    /// Bandwidth cap per connection, server to client, paced smoothly, e.g. 32MiB/s (shared
    /// by the HTTP/2 streams of a connection; --rate caps each response)
    #[arg(long, value_name = "RATE", value_parser = units::parse_rate, help_heading = "Network")]
    pub(crate) link_rate: Option<u64>,

    /// Serve HTTPS with a self-signed certificate for localhost and 127.0.0.1 made at start
    /// (HTTP/2 and HTTP/1.1 offered by ALPN); its path is printed for clients' --cacert
    #[arg(long, help_heading = "Network")]
    pub(crate) tls: bool,

    /// With --tls: write the certificate (PEM) to PATH (default: a temporary directory,
    /// removed when the server stops)
    #[arg(long, value_name = "PATH", requires = "tls", help_heading = "Network")]
    pub(crate) cert_out: Option<PathBuf>,

    /// HTTP/2 streams a client may open at once on one connection
    /// (SETTINGS_MAX_CONCURRENT_STREAMS)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_STREAMS, help_heading = "Network")]
    pub(crate) max_streams: u32,

    /// Speak HTTP/1.1 only: no h2 offered by ALPN, no h2c (a server as many mirrors are)
    #[arg(long, help_heading = "Network")]
    pub(crate) http1_only: bool,

    /// At most N responses in progress at once, server-wide; a request beyond that gets 503
    /// with Retry-After: 1 (push-back, as a loaded server gives)
    #[arg(long, value_name = "N", help_heading = "Network")]
    pub(crate) max_active: Option<usize>,
}

impl ServeArgs {
    /// The server configuration these flags describe.
    pub(crate) fn config(&self) -> ServerConfig {
        ServerConfig {
            bind: self.bind,
            latency: self.latency,
            rate: self.rate,
            files: self.files,
            size: self.size,
            network: Network {
                rtt: self.rtt,
                link_rate: self.link_rate,
            },
            tls: self.tls,
            cert_out: self.cert_out.clone(),
            max_streams: self.max_streams,
            http1_only: self.http1_only,
            max_active: self.max_active,
        }
    }
}

/// Runs `fetchbench serve`: starts the server, prints its base URL as the
/// first line on stdout, a hint on stderr, and serves until SIGINT (Ctrl-C)
/// or SIGTERM, then shuts down cleanly.
pub(crate) fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let signal_runtime = crate::platform::current_thread_runtime()?;
    // Installed before the URL is announced, so whoever reads it may stop us at once.
    let mut signals = {
        let _context = signal_runtime.enter();
        crate::platform::StopSignals::install()?
    };
    let server = ServerHandle::start(args.config())?;
    let base = server.base_url();
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{base}")
        .and_then(|()| stdout.flush())
        .context("failed to write the server URL to stdout")?;
    drop(stdout);
    eprintln!("{}", startup_hint(&base, args, server.cert_path()));
    signal_runtime.block_on(signals.recv());
    let stats = server.stats();
    server.shutdown();
    eprintln!("{}", shutdown_summary(&stats, args.tls));
    Ok(())
}

fn startup_hint(base: &str, args: &ServeArgs, cert: Option<&std::path::Path>) -> String {
    let per_second = |rate: Option<u64>| match rate {
        Some(rate) if rate > 0 => format!("{}/s", units::human_bytes(rate)),
        _ => "unlimited".to_string(),
    };
    let mut network = format!(
        "rtt {}, link rate {}",
        units::human_duration(args.rtt),
        per_second(args.link_rate)
    );
    if let Some(max) = args.max_active {
        network.push_str(&format!(", at most {max} responses at once"));
    }
    let mut hint = format!(
        "fetchbench serve: {files} files of {size} (latency {latency}, rate {rate}; {network}); \
         Ctrl-C to stop\n  \
         workload: {base}/list\n",
        files = args.files,
        size = units::human_bytes(args.size),
        latency = units::human_duration(args.latency),
        rate = per_second(args.rate),
    );
    match cert {
        Some(cert) => {
            let cert = cert.display();
            hint.push_str(&format!(
                "  certificate: {cert} (self-signed; HTTP/2 or HTTP/1.1 by ALPN)\n  \
                 example:  curl -s --cacert {cert} {base}/list | fetchbench -i - -o downloads \
                 --cacert {cert}"
            ));
        }
        None => hint.push_str(&format!(
            "  example:  curl -s {base}/list | fetchbench -i - -o downloads\n  \
             HTTP/2 without TLS (prior knowledge): fetchbench --http2, curl --http2-prior-knowledge"
        )),
    }
    hint
}

/// What `serve` says when it stops: what it served, over which protocols and connections.
fn shutdown_summary(stats: &ServerStats, tls: bool) -> String {
    let mut summary = format!(
        "fetchbench serve: stopped after {} ({} HTTP/1.1, {} HTTP/2) and {} of file data over \
         {}",
        counted(stats.requests, "request"),
        stats.requests_h1,
        stats.requests_h2,
        units::human_bytes(stats.body_bytes),
        counted(stats.connections, "connection"),
    );
    if tls {
        summary.push_str(&format!(
            ", {} ({} resumed)",
            counted(stats.tls_handshakes(), "TLS handshake"),
            stats.tls_resumed
        ));
    }
    summary.push_str(&format!(
        "; at most {} at once on one connection",
        counted(stats.peak_streams, "request")
    ));
    if stats.refused > 0 {
        summary.push_str(&format!("; {} refused with 503", stats.refused));
    }
    summary
}

/// `1 request`, `2 requests`.
fn counted(n: u64, what: &str) -> String {
    match n {
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn serve_args_defaults_and_units() {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let defaults = Cli::try_parse_from(["serve"])
            .expect("defaults parse")
            .serve
            .config();
        let expected_defaults = ServerConfig {
            bind: "127.0.0.1:8000".parse().expect("addr"),
            ..ServerConfig::default()
        };
        assert_eq!(defaults, expected_defaults);
        let args = [
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--latency",
            "250ms",
            "--rate",
            "10MiB/s",
            "--files",
            "4",
            "--size",
            "1.5MB",
        ];
        let cfg = Cli::try_parse_from(args)
            .expect("flags parse")
            .serve
            .config();
        assert_eq!(cfg.latency, Duration::from_millis(250));
        assert_eq!(cfg.rate, Some(10 << 20));
        assert_eq!((cfg.files, cfg.size), (4, 1_500_000));
        let err = Cli::try_parse_from(["serve", "--size", "huge"])
            .err()
            .expect("bad size rejected");
        assert!(err.to_string().contains("invalid size \"huge\""), "{err}");
    }
}
