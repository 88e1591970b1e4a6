//! The built-in server as a rehearsal tool: its fault parameters (`status`, `fail`, `cut`,
//! `stall`) drive fetchbench's retries and resumes as a real server's faults would, and
//! `bench --fault` measures them.

use fetchbench::{ServerConfig, ServerHandle, verify_file};
use tempfile::tempdir;

use crate::util::{OutDir, fetchbench, json_lines};

fn server() -> ServerHandle {
    ServerHandle::start(ServerConfig::default()).unwrap()
}

/// Runs fetchbench with `args` on `url`, fast retries, JSON out; returns (exit, download line).
fn fetch(url: &str, args: &[&str], dir: &OutDir) -> (i32, serde_json::Value) {
    let out = dir
        .fetch()
        .args(["--json", "-q", "--retry-delay", "10ms"])
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    let lines = json_lines(&out.stdout);
    (out.status.code().unwrap(), lines[0].clone())
}

#[test]
fn fail_n_costs_n_retries_then_the_file_is_whole() {
    let server = server();
    let dir = OutDir::new();
    let url = format!("{}&fail=2", server.file_url("f.bin", 5000));
    let (code, line) = fetch(&url, &[], &dir);
    assert_eq!(
        (code, line["status"].as_str(), line["retries"].as_u64()),
        (0, Some("ok"), Some(2))
    );
    verify_file(&dir.file("f.bin"), "f.bin", 5000).unwrap();
    // Counted per URL for the server's lifetime: the same URL is healthy now.
    let (_, line) = fetch(&url, &[], &dir);
    assert_eq!(line["retries"], 0);
}

#[test]
fn a_cut_is_resumed_where_it_broke_and_a_status_is_final_or_not_as_its_code_says() {
    let server = server();
    let dir = OutDir::new();
    let url = format!("{}&cut=100KiB", server.file_url("c.bin", 300 * 1024));
    let (code, line) = fetch(&url, &["--mode", "procs"], &dir);
    assert_eq!(code, 0, "{line}");
    // Three attempts of 100 KiB each, every one resuming the last: nothing fetched twice.
    assert_eq!(line["retries"], 2);
    assert_eq!(line["bytes"], 300 * 1024);
    verify_file(&dir.file("c.bin"), "c.bin", 300 * 1024).unwrap();

    let url = format!("{}&status=404", server.file_url("gone.bin", 10));
    let (code, line) = fetch(&url, &[], &dir);
    assert_eq!((code, line["retries"].as_u64()), (1, Some(0)));
    assert_eq!(line["error"], "HTTP 404 Not Found");
    let url = format!("{}&status=503", server.file_url("busy.bin", 10));
    let (code, line) = fetch(&url, &["--retries", "2"], &dir);
    assert_eq!((code, line["retries"].as_u64()), (1, Some(2)));
}

#[test]
fn a_stall_longer_than_the_stall_timeout_is_retried() {
    let server = server();
    let dir = OutDir::new();
    let url = format!("{}&stall=5s&fail=1", server.file_url("s.bin", 200_000));
    let started = std::time::Instant::now();
    let (code, line) = fetch(&url, &["--stall-timeout", "300ms", "-c"], &dir);
    assert_eq!((code, line["retries"].as_u64()), (0, Some(1)), "{line}");
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    verify_file(&dir.file("s.bin"), "s.bin", 200_000).unwrap();
}

#[test]
fn bench_with_faults_retries_them_and_every_run_is_faulty_afresh() {
    let dir = tempdir().unwrap();
    let export = dir.path().join("bench.json");
    fetchbench()
        .args([
            "bench",
            "--files",
            "3",
            "--size",
            "4KiB",
            "--latency",
            "0ms",
            "--runs",
            "1",
        ])
        .args([
            "--warmup",
            "0",
            "--modes",
            "seq,async",
            "--fault",
            "fail=1",
            "--export-json",
        ])
        .arg(&export)
        .assert()
        .code(0);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&export).unwrap()).unwrap();
    assert!(
        report["workload"]
            .as_str()
            .unwrap()
            .contains("faults fail=1, retried"),
        "{report}"
    );
    for result in report["results"].as_array().unwrap() {
        // Each run waits one backoff (500 ms, jittered to at least 250 ms) for its retries.
        for time in result["times"].as_array().unwrap() {
            assert!(time.as_f64().unwrap() >= 0.25, "{result}");
        }
    }
    fetchbench()
        .args(["bench", "--fault", "fail=x y"])
        .assert()
        .code(2);
}
