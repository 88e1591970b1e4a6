//! `fetchbench bench` and `fetchbench serve`, run as a user would.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::tempdir;

use crate::server::TestServer;
use crate::util::{OutDir, fetchbench, send_signal};

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
    let validator = jsonschema::validator_for(&hyperfine_schema()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&export)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "not hyperfine's shape: {errors:?}\n{export:#}"
    );
    assert_eq!(export["files"], 6);
    assert_eq!(export["jobs"], 3);
    let results = export["results"].as_array().unwrap();
    let commands: Vec<&str> = results
        .iter()
        .map(|m| m["command"].as_str().unwrap())
        .collect();
    assert_eq!(
        commands,
        ["fetchbench --mode seq", "fetchbench --mode async -j 3"]
    );
    let names: Vec<&str> = results
        .iter()
        .map(|m| m["mode"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["seq", "async"]);
    // seq: six rounds of one; async: two rounds of three; 20 ms each.
    assert_eq!(results[0]["ideal"], 0.12);
    assert_eq!(results[1]["ideal"], 0.04);
    for result in results {
        let times: Vec<f64> = result["times"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_f64().unwrap())
            .collect();
        assert_eq!(
            times.len(),
            2,
            "warmup runs must not be exported as timed runs"
        );
        // Seconds, not milliseconds: six files 20 ms apart in seq, two rounds of three in async.
        for &time in &times {
            assert!((0.04..30.0).contains(&time), "{result}");
        }
        let stat = |key: &str| result[key].as_f64().unwrap();
        let (lo, hi) = (times[0].min(times[1]), times[0].max(times[1]));
        assert_eq!((stat("min"), stat("max")), (lo, hi), "{result}");
        assert!((stat("mean") - (lo + hi) / 2.0).abs() < 1e-9, "{result}");
        assert!((stat("median") - (lo + hi) / 2.0).abs() < 1e-9, "{result}");
        // The measurement itself is unit-tested (bench::cpu); here, the shape.
        assert!(stat("user") >= 0.0 && stat("system") >= 0.0, "{result}");
        let runs = result["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 2);
        for run in runs {
            assert_eq!(run["ok"], true);
            assert_eq!(run["bytes"], 6 * 10 * 1024);
            assert!(run["time"].as_f64().unwrap() >= 0.04, "{run}");
            assert!(run["user"].as_f64().unwrap() >= 0.0, "{run}");
        }
        for key in ["stddev", "files_per_sec", "efficiency"] {
            assert!(result[key].is_number(), "{key} missing in {result}");
        }
        assert!(result["io_threads"].as_u64().unwrap() >= 1, "{result}");
    }
    // One download after the other cannot beat three at a time on a latency-bound workload.
    assert!(results[0]["mean"].as_f64() > results[1]["mean"].as_f64());
    assert_eq!(results[0]["speedup_vs_seq"], 1.0);

    let md = std::fs::read_to_string(&markdown).unwrap();
    assert!(
        md.contains(
            "| Command | Mean [ms] | Min [ms] | Max [ms] | Relative |\n|:---|---:|---:|---:|---:|\n"
        ),
        "{md}"
    );
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| `fetchbench --mode"))
        .collect();
    assert_eq!(rows.len(), 2, "{md}");
    assert!(rows[0].starts_with("| `fetchbench --mode seq` | "), "{md}");
    // async is the faster: its ratio is 1.00; seq's is larger, with an error.
    assert!(rows[1].ends_with(" | 1.00 |"), "{md}");
    assert!(
        rows[0].contains(" ± ") && !rows[0].ends_with(" | 1.00 |"),
        "{md}"
    );
    // The full table follows.
    assert!(md.contains("| mode | mean ± σ | median |"), "{md}");
    assert_eq!(
        md.lines()
            .filter(|l| l.starts_with("| seq") || l.starts_with("| async"))
            .count(),
        2
    );
}

/// What hyperfine's `--export-json` holds and its plotting scripts read (extra fields allowed).
fn hyperfine_schema() -> Value {
    let seconds = serde_json::json!({"type": "number", "minimum": 0});
    serde_json::json!({
        "type": "object",
        "required": ["results"],
        "properties": {
            "results": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["command", "mean", "stddev", "median", "user", "system",
                                 "min", "max", "times"],
                    "properties": {
                        "command": {"type": "string"},
                        "mean": seconds, "stddev": seconds, "median": seconds,
                        "user": seconds, "system": seconds, "min": seconds, "max": seconds,
                        "times": {"type": "array", "items": seconds},
                        "exit_codes": {"type": "array", "items": {"type": "integer"}}
                    }
                }
            }
        }
    })
}

#[test]
fn the_hyperfine_schema_rejects_the_old_shape() {
    let validator = jsonschema::validator_for(&hyperfine_schema()).unwrap();
    let old = serde_json::json!({"modes": [{"mode": "seq", "mean_ms": 120.0}]});
    assert!(!validator.is_valid(&old));
    let no_median = serde_json::json!({"results": [{
        "command": "fetchbench --mode seq", "mean": 0.1, "stddev": 0.0, "user": 0.0,
        "system": 0.0, "min": 0.1, "max": 0.1, "times": [0.1]
    }]});
    assert!(!validator.is_valid(&no_median));
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
    assert!(stdout.contains("its 1 run failed"), "{stdout}");
    assert!(stdout.contains("Workload: 2 URLs\n"), "{stdout}");
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

    let dir = OutDir::new();
    let started = Instant::now();
    let out = dir
        .fetch()
        .arg("-q")
        .arg(format!("{base}/files/a.bin?size=4KiB&latency=300ms"))
        .code(0);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let path = String::from_utf8(out.output.stdout.clone()).unwrap();
    let path = std::path::Path::new(path.trim());
    fetchbench::verify_file(path, "a.bin", 4096).unwrap();

    // Ctrl-C stops it cleanly.
    send_signal(server.id(), "INT");
    assert_eq!(server.wait().unwrap().code(), Some(0));
}

#[test]
fn the_bench_report_fits_80_columns() {
    let out = fetchbench()
        .env("COLUMNS", "80")
        .args(["bench", "--runs", "1", "--warmup", "0"])
        .args(["--files", "4", "--size", "1KiB", "--latency", "10ms"])
        .assert()
        .code(0);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    for line in stdout.lines() {
        let width = console::measure_text_width(line);
        assert!(width < 80, "{width} columns: {line}\n{stdout}");
    }
    assert!(
        stdout.contains("× fastest") && stdout.contains("median"),
        "{stdout}"
    );
    // Notes are broken between words, not inside them: joined again, they read whole.
    let joined = stdout.replace("\n    ", " ");
    assert!(
        joined.contains("I/O threads: distinct OS threads that ran downloads"),
        "{stdout}"
    );
    let wide = fetchbench()
        .env("COLUMNS", "200")
        .args(["bench", "--runs", "1", "--warmup", "0"])
        .args(["--files", "4", "--size", "1KiB", "--latency", "10ms"])
        .assert()
        .code(0);
    assert!(String::from_utf8_lossy(&wide.get_output().stdout).contains("speedup vs seq"));
}
