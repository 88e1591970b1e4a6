//! The `fetchbench serve` subcommand: its flags, the server run until Ctrl-C or SIGTERM, and
//! the startup hint.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

use super::handle::ServerHandle;
use super::state::ServerConfig;
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
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,

    /// Delay before each file response is sent, e.g. 50ms (per request: ?latency=)
    #[arg(long, value_name = "DUR", default_value = "0", value_parser = units::parse_duration)]
    pub latency: Duration,

    /// Bandwidth cap per response, e.g. 10MiB/s; unlimited if absent or 0 (per request: ?rate=)
    #[arg(long, value_name = "RATE", value_parser = units::parse_rate)]
    pub rate: Option<u64>,

    /// Number of files listed at /list
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub files: usize,

    /// Default file size, e.g. 256KiB, 1.5MB (per request: ?size=)
    #[arg(long, value_name = "SIZE", default_value = "256KiB", value_parser = units::parse_size)]
    pub size: u64,
}

impl ServeArgs {
    /// The server configuration these flags describe.
    pub fn config(&self) -> ServerConfig {
        ServerConfig {
            bind: self.bind,
            latency: self.latency,
            rate: self.rate,
            files: self.files,
            size: self.size,
        }
    }
}

/// Runs `fetchbench serve`: starts the server, prints its base URL as the
/// first line on stdout, a hint on stderr, and serves until SIGINT (Ctrl-C)
/// or SIGTERM, then shuts down cleanly.
pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
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
    eprintln!("{}", startup_hint(&base, args));
    signal_runtime.block_on(signals.recv());
    let stats = server.stats();
    server.shutdown();
    eprintln!(
        "fetchbench serve: stopped after {} requests and {} of file data",
        stats.requests,
        units::human_bytes(stats.body_bytes)
    );
    Ok(())
}

fn startup_hint(base: &str, args: &ServeArgs) -> String {
    let rate = match args.rate {
        Some(rate) if rate > 0 => format!("{}/s", units::human_bytes(rate)),
        _ => "unlimited".to_string(),
    };
    format!(
        "fetchbench serve: {files} files of {size} (latency {latency}, rate {rate}); Ctrl-C to stop\n  \
         workload: {base}/list\n  \
         example:  curl -s {base}/list | fetchbench -i - -o downloads",
        files = args.files,
        size = units::human_bytes(args.size),
        latency = units::human_duration(args.latency),
    )
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
