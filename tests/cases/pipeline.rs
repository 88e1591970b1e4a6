//! fetchbench as a pipeline stage: URLs are read as they arrive, results leave as downloads end.

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use tempfile::tempdir;

use crate::server::{TestServer, body};
use crate::util::{MODES, OutDir, read};

/// The lines of a child's stdout, as they come, on a thread of their own.
fn lines_of(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if send.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    lines
}

/// A result line, or a test failure naming what was awaited.
fn next_line(lines: &mpsc::Receiver<String>, what: &str) -> String {
    lines
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("no result on stdout for {what}"))
}

#[test]
fn a_slow_producer_sees_each_result_before_writing_the_next_url() {
    let server = TestServer::http();
    for mode in MODES {
        for json in [false, true] {
            let dir = tempdir().unwrap();
            let mut child = Command::new(env!("CARGO_BIN_EXE_fetchbench"))
                .args(["-q", "-i", "-", "--mode", mode, "-o"])
                .arg(dir.path())
                .args(json.then_some("--json"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let lines = lines_of(child.stdout.take().unwrap());
            let what = format!("{mode} (json: {json})");

            writeln!(stdin, "{}", server.url("/files/first.bin?size=1000")).unwrap();
            stdin.flush().unwrap();
            // The list is still open: the first result must come anyway.
            let first = next_line(&lines, &what);
            assert!(first.contains("first.bin"), "{what}: {first}");
            if json {
                let record: Value = serde_json::from_str(&first).unwrap();
                assert_eq!(record["status"], "ok", "{what}");
            }

            // A bad line in the middle of the stream fails alone.
            writeln!(stdin, "ftp://127.0.0.1/x").unwrap();
            writeln!(stdin, "{}", server.url("/files/second.bin?size=2000")).unwrap();
            drop(stdin);
            let rest: Vec<String> = lines.iter().collect();
            let status = child.wait().unwrap();
            assert_eq!(status.code(), Some(1), "{what}: {rest:?}");
            assert!(
                rest.iter().any(|l| l.contains("second.bin")),
                "{what}: {rest:?}"
            );
            if json {
                assert!(
                    rest.iter()
                        .any(|l| l.contains("stdin:2: ") && l.contains("\"failed\"")),
                    "{what}: {rest:?}"
                );
            }
            assert_eq!(
                read(dir.path(), "first.bin"),
                body("first.bin", 1000),
                "{what}"
            );
            assert_eq!(
                read(dir.path(), "second.bin"),
                body("second.bin", 2000),
                "{what}"
            );
        }
    }
}

#[test]
fn results_come_as_downloads_end_and_keep_order_restores_input_order() {
    let server = TestServer::http();
    let urls = [
        server.url("/slow/late.bin?size=10&ms=600"),
        server.url("/files/early1.bin?size=10"),
        server.url("/files/early2.bin?size=10"),
    ];
    let names = |keep_order: bool| {
        let dir = OutDir::new();
        let out = dir
            .fetch()
            .args(["-q", "--mode", "async"])
            .args(keep_order.then_some("--keep-order"))
            .args(&urls)
            .code(0);
        out.stdout()
            .lines()
            .map(|l| l.rsplit('/').next().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let as_they_end = names(false);
    assert_eq!(as_they_end.last().map(String::as_str), Some("late.bin"));
    assert_eq!(names(true), ["late.bin", "early1.bin", "early2.bin"]);
}

#[test]
fn the_summary_lists_failures_and_the_slowest_not_every_file() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let mut urls: Vec<String> = (0..30)
        .map(|i| server.url(&format!("/files/n{i}.bin?size=100")))
        .collect();
    urls.push(server.url("/status/404"));
    let run = |table: &[&str]| {
        let out = dir.fetch().args(table).args(&urls).code(1);
        let stderr = out.stderr();
        // Table rows start with the file name; the per-download lines with "saved".
        stderr
            .lines()
            .filter(|l| {
                l.split_whitespace()
                    .next()
                    .is_some_and(|w| w.ends_with(".bin"))
            })
            .count()
    };
    assert_eq!(run(&[]), 5, "the 5 slowest, not all 30");
    assert_eq!(run(&["--table", "full"]), 30);
}

#[test]
fn ctrl_c_says_what_was_done_in_flight_and_not_started_and_json_agrees() {
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fetchbench"));
    cmd.args(["--json", "-j", "1", "-o"])
        .arg(dir.path())
        .arg(server.url("/files/done.bin?size=10"))
        .arg(server.url("/fault/slow.bin?size=400000&stall_after=100000"));
    for i in 0..5 {
        cmd.arg(server.url(&format!("/files/later{i}.bin?size=10")));
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    crate::util::wait_until_sent(&server, 100_000);
    std::thread::sleep(Duration::from_millis(100));
    crate::util::send_signal(child.id(), "INT");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted: 1 done, 1 in flight kept as .part, 5 not started"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("later0"),
        "a row for a URL never started: {stderr}"
    );
    // Stopped, not failed: the plain line, the table and the total line say so.
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("INTERRUPTED http") && l.contains("slow.bin")),
        "{stderr}"
    );
    assert!(!stderr.contains("FAILED"), "{stderr}");
    assert!(
        stderr.contains("async, 1 job: 1 ok, 0 failed, 1 interrupted"),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("slow.bin ") && l.contains("interrupted")),
        "the row names the file: {stderr}"
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let statuses: Vec<&str> = lines[..lines.len() - 1]
        .iter()
        .map(|l| l["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ok", "interrupted"]);
    let summary = lines.last().unwrap();
    assert_eq!(summary["not_started"], 5);
    assert_eq!(summary["files"], 2);
    assert_eq!(summary["interrupted"], true);
}

#[test]
fn a_full_queue_holds_back_the_producer() {
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fetchbench"))
        .args(["-q", "-j", "1", "-i", "-", "-o"])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&written);
    let line = format!("{}\n", server.url("/slow/s.bin?size=1&ms=5000"));
    // 200,000 lines (about 10 MB) that would all be read at once by a batch reader.
    let producer = std::thread::spawn(move || {
        for _ in 0..200_000 {
            if stdin.write_all(line.as_bytes()).is_err() {
                return;
            }
            counter.fetch_add(line.len(), std::sync::atomic::Ordering::Relaxed);
        }
    });
    std::thread::sleep(Duration::from_millis(1500));
    let taken = written.load(std::sync::atomic::Ordering::Relaxed);
    child.kill().unwrap();
    child.wait().unwrap();
    producer.join().unwrap();
    // The pipe (64 KiB), the reader's buffer (64 KiB) and 64 queued lines: well under 1 MB.
    assert!(taken < 1 << 20, "{taken} bytes of the list were taken in");
    assert!(taken > 0);
}
