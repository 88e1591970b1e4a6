//! `fetchbench bench` and `fetchbench serve`, run as a user would.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::tempdir;

use crate::server::TestServer;
use crate::util::{fetchbench, send_signal};

#[test]
fn bench_exports_every_run_of_every_mode() {
    let dir = tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let markdown = dir.path().join("bench.md");
    let out = fetchbench()
        .args([
            "bench",
            "--modes",
            "seq,async",
            "--runs",
            "2",
            "--warmup",
            "1",
        ])
        .args([
            "--files",
            "6",
            "--size",
            "10KiB",
            "--latency",
            "20ms",
            "-j",
            "3",
        ])
        .arg("--export-json")
        .arg(&json)
        .arg("--export-markdown")
        .arg(&markdown)
        .assert()
        .code(0);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        stdout.contains("6 files × 10.00 KiB from the built-in server"),
        "{stdout}"
    );
    assert!(
        stdout.contains("best: the theoretical least time"),
        "{stdout}"
    );

    let export: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(export["files"], 6);
    assert_eq!(export["jobs"], 3);
    let modes = export["modes"].as_array().unwrap();
    let names: Vec<&str> = modes.iter().map(|m| m["mode"].as_str().unwrap()).collect();
    assert_eq!(names, ["seq", "async"]);
    // seq: six rounds of one; async: two rounds of three; 20 ms each.
    assert_eq!(modes[0]["ideal_ms"], 120.0);
    assert_eq!(modes[1]["ideal_ms"], 40.0);
    for mode in modes {
        let runs = mode["runs"].as_array().unwrap();
        assert_eq!(
            runs.len(),
            2,
            "warmup runs must not be exported as timed runs"
        );
        for run in runs {
            assert_eq!(run["ok"], true);
            // The measurement itself is unit-tested (bench::cpu); here, the shape.
            assert!(run["cpu_ms"].as_f64().unwrap() >= 0.0, "{run}");
            assert_eq!(run["bytes"], 6 * 10 * 1024);
            // Six files 20 ms apart in seq, two rounds of three in async: a lower bound holds.
            assert!(run["elapsed_ms"].as_f64().unwrap() >= 40.0, "{run}");
        }
        for key in [
            "mean_ms",
            "stddev_ms",
            "min_ms",
            "max_ms",
            "files_per_sec",
            "efficiency",
        ] {
            assert!(mode[key].is_number(), "{key} missing in {mode}");
        }
    }
    // One download after the other cannot beat three at a time on a latency-bound workload.
    assert!(modes[0]["mean_ms"].as_f64() > modes[1]["mean_ms"].as_f64());
    assert_eq!(modes[0]["speedup_vs_seq"], 1.0);
    let md = std::fs::read_to_string(&markdown).unwrap();
    assert!(md.contains("| mode | mean ± σ |"), "{md}");
    assert_eq!(
        md.lines()
            .filter(|l| l.starts_with("| seq") || l.starts_with("| async"))
            .count(),
        2
    );
}

#[test]
fn bench_reports_failed_runs_as_failures() {
    let server = TestServer::http();
    let out = fetchbench()
        .args(["bench", "--modes", "pool", "--runs", "1", "--warmup", "0"])
        .arg(server.url("/files/fine?size=100"))
        .arg(server.url("/status/503"))
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(stdout.contains("all 1 runs failed"), "{stdout}");
    // Only the modes that ran, and "1 run", not "1 runs".
    assert!(
        stdout.contains("Settings: 8 jobs (pool), 1 run per mode after 0 warmup runs\n"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("HTTP 503 Service Unavailable"), "{stderr}");
}

#[test]
fn serve_prints_its_url_and_serves_a_workload() {
    let mut server = Command::new(env!("CARGO_BIN_EXE_fetchbench"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--files",
            "3",
            "--size",
            "1KiB",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base = first.trim().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    let dir = tempdir().unwrap();
    let started = Instant::now();
    let out = fetchbench()
        .args(["-q", "-o"])
        .arg(dir.path())
        .arg(format!("{base}/files/a.bin?size=4KiB&latency=300ms"))
        .assert()
        .code(0);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let path = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let path = std::path::Path::new(path.trim());
    fetchbench::server::verify_file(path, "a.bin", 4096).unwrap();

    // Ctrl-C stops it cleanly.
    send_signal(server.id(), "INT");
    assert_eq!(server.wait().unwrap().code(), Some(0));
}
