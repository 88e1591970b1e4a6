//! The built-in server's network (`serve --rtt --link-rate --tls --max-active`, HTTP/2 by ALPN
//! and by prior knowledge), and `bench` over it, run as a user would.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::tempdir;

use crate::util::{OutDir, fetchbench, send_signal};

/// A `fetchbench serve` process: its base URL, its certificate with `--tls`, and what it says
/// when stopped.
struct Served {
    child: Child,
    base: String,
    cert: Option<PathBuf>,
    stderr: BufReader<ChildStderr>,
}

impl Served {
    fn start(flags: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fetchbench"))
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut base = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut base)
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut cert = None;
        // The hint ends with the example line.
        loop {
            let mut line = String::new();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "no startup hint");
            if let Some(rest) = line.trim().strip_prefix("certificate: ") {
                let path = rest.split(' ').next().unwrap();
                cert = Some(PathBuf::from(path));
            }
            if line.trim_start().starts_with("example:") {
                break;
            }
        }
        Served {
            child,
            base: base.trim().to_owned(),
            cert,
            stderr,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server with Ctrl-C and returns the rest of its stderr (the summary).
    fn stop(mut self) -> String {
        send_signal(self.child.id(), "INT");
        let mut rest = String::new();
        while self.stderr.read_line(&mut rest).unwrap() > 0 {}
        assert_eq!(self.child.wait().unwrap().code(), Some(0));
        rest
    }
}

impl Drop for Served {
    /// A test that failed before `stop` leaves no server behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn tls_serves_files_that_fetchbench_downloads_exactly_with_the_printed_certificate() {
    let served = Served::start(&["--tls", "--rtt", "20ms"]);
    assert!(
        served.base.starts_with("https://127.0.0.1:"),
        "{}",
        served.base
    );
    let cert = served
        .cert
        .clone()
        .expect("the certificate's path is printed");
    let pem = std::fs::read_to_string(&cert).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");

    let dir = OutDir::new();
    dir.fetch()
        .arg("-q")
        .arg("--cacert")
        .arg(&cert)
        .arg(served.url("/files/a.bin?size=300KiB"))
        .code(0);
    fetchbench::verify_file(&dir.file("a.bin"), "a.bin", 300 * 1024).unwrap();
    // Without the certificate, the server is not trusted.
    let untrusted = dir
        .fetch()
        .args(["--retries", "0"])
        .arg(served.url("/files/b.bin?size=1KiB"))
        .code(1);
    let stderr = untrusted.stderr();
    assert!(
        stderr.contains("not signed by a trusted authority") && stderr.contains("--cacert"),
        "{stderr}"
    );

    let summary = served.stop();
    // HTTP/2 was negotiated by ALPN; the untrusting client's handshake never completed.
    assert!(summary.contains("(0 HTTP/1.1, 1 HTTP/2)"), "{summary}");
    assert!(summary.contains("1 TLS handshake (0 resumed)"), "{summary}");
    assert!(
        !cert.exists(),
        "the temporary certificate outlived the server"
    );
}

#[test]
fn h2c_with_prior_knowledge_and_http1_by_default_over_plain_tcp() {
    let served = Served::start(&["--rtt", "20ms", "--max-streams", "16"]);
    assert!(
        served.base.starts_with("http://127.0.0.1:"),
        "{}",
        served.base
    );
    let dir = OutDir::new();
    for (flags, name) in [(&["--http2"][..], "h2.bin"), (&[][..], "h1.bin")] {
        dir.fetch()
            .arg("-q")
            .args(flags)
            .arg(served.url(&format!("/files/{name}?size=64KiB")))
            .code(0);
        fetchbench::verify_file(&dir.path().join(name), name, 64 * 1024).unwrap();
    }
    let summary = served.stop();
    assert!(summary.contains("(1 HTTP/1.1, 1 HTTP/2)"), "{summary}");
    assert!(summary.contains("over 2 connections"), "{summary}");
}

#[test]
fn max_streams_caps_the_streams_in_progress_on_a_connection() {
    let urls = |served: &Served| -> Vec<String> {
        (1..=6)
            // Long enough for all six to be in progress at once, even on a loaded machine.
            .map(|i| served.url(&format!("/files/f{i}?size=10&latency=400ms")))
            .collect()
    };
    for (max_streams, at_once) in [("2", "at most 2 requests at once"), ("128", "at most 6")] {
        let served = Served::start(&["--max-streams", max_streams]);
        let dir = OutDir::new();
        dir.fetch()
            .args(["-q", "--http2", "--mode", "async", "-j", "6"])
            .args(urls(&served))
            .code(0);
        let summary = served.stop();
        assert!(summary.contains("over 1 connection;"), "{summary}");
        assert!(summary.contains(at_once), "{summary}");
    }
}

#[test]
fn a_fresh_connection_costs_two_round_trips() {
    let served = Served::start(&["--rtt", "150ms"]);
    let dir = OutDir::new();
    let started = Instant::now();
    dir.fetch()
        .arg("-q")
        .arg(served.url("/files/a.bin?size=10"))
        .code(0);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    served.stop();
}

#[test]
fn the_link_rate_caps_a_connection() {
    let served = Served::start(&["--link-rate", "1MB/s"]);
    let dir = OutDir::new();
    let started = Instant::now();
    dir.fetch()
        .arg("-q")
        .arg(served.url("/files/slow.bin?size=400000"))
        .code(0);
    let elapsed = started.elapsed();
    // 400 kB at 1 MB/s.
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    fetchbench::verify_file(&dir.file("slow.bin"), "slow.bin", 400_000).unwrap();
    served.stop();
}

#[test]
fn max_active_refuses_what_is_beyond_it_with_503() {
    let served = Served::start(&["--max-active", "1"]);
    let dir = OutDir::new();
    let out = dir
        .fetch()
        .args(["--mode", "async", "-j", "2", "--retries", "0"])
        .arg(served.url("/files/a.bin?size=10&latency=500ms"))
        .arg(served.url("/files/b.bin?size=10&latency=500ms"))
        .code(1);
    let stderr = out.stderr();
    assert!(stderr.contains("HTTP 503"), "{stderr}");
    assert!(stderr.contains("1 ok, 1 failed"), "{stderr}");
    let summary = served.stop();
    assert!(summary.contains("1 refused with 503"), "{summary}");
}

#[test]
fn bench_over_rtt_and_tls_counts_connections_and_handshakes_per_mode() {
    let dir = tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = fetchbench()
        .env("COLUMNS", "200")
        .args(["bench", "--modes", "seq,threads,async"])
        .args(["--runs", "1", "--warmup", "0", "-j", "3"])
        .args(["--files", "6", "--size", "2KiB", "--latency", "0ms"])
        .args(["--rtt", "40ms", "--tls"])
        .arg("--export-json")
        .arg(&json)
        .assert()
        .code(0);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(stdout.contains("rtt 40ms, HTTPS"), "{stdout}");
    assert!(
        stdout.contains("conns") && stdout.contains("TLS"),
        "{stdout}"
    );
    assert!(stdout.contains("The widths differ"), "{stdout}");

    let export: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let results = export["results"].as_array().unwrap();
    let by_mode = |mode: &str| {
        results
            .iter()
            .find(|r| r["mode"] == mode)
            .unwrap_or_else(|| panic!("no {mode} in {export:#}"))
    };
    let (seq, threads, r#async) = (by_mode("seq"), by_mode("threads"), by_mode("async"));
    // seq keeps one connection alive; threads opens one per download, each with its handshake.
    assert_eq!(seq["width"], 1);
    assert_eq!(seq["connections"], 1.0, "{seq}");
    assert_eq!(seq["tls_handshakes"], 1.0, "{seq}");
    assert_eq!(seq["streams_per_connection"], 6.0, "{seq}");
    assert_eq!(threads["width"], 6);
    assert_eq!(threads["connections"], 6.0, "{threads}");
    assert_eq!(threads["tls_handshakes"], 6.0, "{threads}");
    // async speaks HTTP/2 (ALPN), every task on the one connection its first download opened.
    assert_eq!(r#async["width"], 3);
    assert_eq!(r#async["requests_h2"], 6.0, "{async}");
    assert_eq!(r#async["connections"], 1.0, "{async}");
    // The bound: two handshake round trips, then ceil(6 / width) request round trips.
    assert!((seq["ideal"].as_f64().unwrap() - 0.08 - 6.0 * 0.04).abs() < 1e-9);
    assert!((threads["ideal"].as_f64().unwrap() - 0.08 - 0.04).abs() < 1e-9);
    assert!((r#async["ideal"].as_f64().unwrap() - 0.08 - 2.0 * 0.04).abs() < 1e-9);
    for result in results {
        assert_eq!(result["requests"], 6.0, "{result}");
        // Nothing is faster than its bound.
        assert!(
            result["mean"].as_f64() >= result["ideal"].as_f64(),
            "{result}"
        );
        let run = &result["runs"][0]["server"];
        assert_eq!(run["refused"], 0, "{result}");
    }
}

#[test]
fn bench_speaks_http1_or_h2c_when_told() {
    for (flag, h2) in [("--http1.1", 0.0), ("--http2", 4.0)] {
        let dir = tempdir().unwrap();
        let json = dir.path().join("bench.json");
        fetchbench()
            .args([
                "bench", "--modes", "async", "--runs", "1", "--warmup", "0", flag,
            ])
            .args([
                "--files",
                "4",
                "--size",
                "1KiB",
                "--latency",
                "0ms",
                "--rtt",
                "20ms",
            ])
            .arg("--export-json")
            .arg(&json)
            .assert()
            .code(0);
        let export: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        let result = &export["results"][0];
        assert_eq!(result["requests"], 4.0, "{result}");
        assert_eq!(result["requests_h2"], h2, "{flag}: {result}");
    }
}

/// `n` URLs of `served`'s `/files/`, as a list file in `dir`.
fn list_of(served: &Served, dir: &std::path::Path, n: usize, query: &str) -> PathBuf {
    let list = dir.join("urls.txt");
    let urls: Vec<String> = (0..n)
        .map(|i| served.url(&format!("/files/f{i}.bin?{query}")))
        .collect();
    std::fs::write(&list, urls.join("\n")).unwrap();
    list
}

#[test]
fn auto_climbs_well_above_8_over_a_50ms_tls_path_on_one_connection() {
    let served = Served::start(&["--rtt", "50ms", "--tls"]);
    let dir = OutDir::new();
    let list = list_of(&served, dir.root(), 600, "size=512");
    let cert = served.cert.clone().unwrap();
    let done = dir
        .fetch()
        .args(["-q", "--json", "--cacert"])
        .arg(&cert)
        .list_file(&list)
        .code(0);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 600);
    fetchbench::verify_file(&dir.file("f599.bin"), "f599.bin", 512).unwrap();
    let summary = done.summary();
    let peak = summary["width"]["peak"].as_u64().unwrap();
    assert!(
        peak >= 64,
        "-j auto stayed at {peak} over a path that allows 128 streams"
    );
    let served = served.stop();
    assert!(
        served.contains("1 connection"),
        "the probe's connection carries all: {served}"
    );
    assert!(served.contains("(0 HTTP/1.1, 600 HTTP/2)"), "{served}");
}

#[test]
fn auto_backs_off_where_the_built_in_server_refuses() {
    let served = Served::start(&["--rtt", "20ms", "--tls", "--max-active", "6"]);
    let dir = OutDir::new();
    let list = list_of(&served, dir.root(), 300, "size=512&latency=40ms");
    let cert = served.cert.clone().unwrap();
    let done = dir
        .fetch()
        .args(["-q", "--json", "--retries", "10", "--cacert"])
        .arg(&cert)
        .list_file(&list)
        .code(0);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 300);
    let summary = done.summary();
    let last = summary["width"]["last"].as_u64().unwrap();
    assert!(
        last <= 12,
        "the width ends near the server's room of 6, not at {last}"
    );
    let retries = summary["retries"].as_u64().unwrap();
    assert!(retries > 0, "the climb met the server's limit");
    // The first round after the probe (128 streams) meets the limit; after it, each refused
    // download waits for a place under the narrowed width before it asks again.
    assert!(
        retries < 250,
        "{retries} refusals for 300 files: the width did not back off"
    );
}
