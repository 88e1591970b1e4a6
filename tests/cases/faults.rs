//! Faults from a misbehaving server: retries, resume, timeouts, integrity, hostile names, a
//! full disk, Ctrl-C. Each test checks the exit code, the files present and their bytes, that no
//! partial file holds a final name, and (for resume) what the server sent.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tempfile::tempdir;

use crate::server::{TestServer, body};
use crate::util::{MODES, OutDir, listing, send_signal, wait_until_sent};

const MIB: usize = 1 << 20;

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_dropped_connection_resumes_with_a_range_request() {
    for mode in MODES {
        let server = TestServer::http();
        let dir = OutDir::new();
        let out = dir
            .fetch()
            .args(["--mode", mode, "--retry-delay", "10ms", "--json"])
            .arg(server.url(&format!("/fault/big.bin?size={MIB}&drop_after=600000")))
            .code(0);
        assert!(dir.served("big.bin", MIB), "{mode}");
        assert_eq!(dir.listing(), ["big.bin"], "{mode}");
        let ranges = server.ranges();
        assert_eq!(ranges.len(), 2, "{mode}: {ranges:?}");
        let (range, if_range) = &ranges[1];
        let resumed_at: usize = range["bytes=".len()..range.len() - 1].parse().unwrap();
        assert!(resumed_at > 0 && resumed_at <= 600_000, "{mode}: {range}");
        assert_eq!(
            if_range, "\"big.bin-stable\"",
            "{mode}: If-Range carries the ETag"
        );
        // What was fetched again is what the first response sent but never arrived.
        let sent = server.body_bytes() as usize;
        assert!(
            sent < MIB + MIB / 5,
            "{mode}: the server sent {sent} bytes for {MIB}"
        );
        let lines = out.json();
        assert_eq!(lines[0]["retries"], 1, "{mode}");
    }
}

#[test]
fn a_server_that_ignores_range_gets_a_clean_restart() {
    let server = TestServer::http();
    let dir = OutDir::new();
    dir.fetch()
        .args(["--retry-delay", "10ms"])
        .arg(server.url("/fault/r.bin?size=300000&drop_after=200000&no_range=1"))
        .code(0);
    assert!(dir.served("r.bin", 300_000));
    assert_eq!(dir.listing(), ["r.bin"]);
}

#[test]
fn a_changed_validator_restarts_instead_of_mixing_versions() {
    let server = TestServer::http();
    let dir = OutDir::new();
    dir.fetch()
        .args(["--retry-delay", "10ms"])
        .arg(server.url("/fault/v.bin?size=300000&drop_after=200000&etag_change=1"))
        .code(0);
    let ranges = server.ranges();
    assert_eq!(
        ranges[1].1, "\"v.bin-v0\"",
        "the retry sent the first ETag: {ranges:?}"
    );
    assert!(dir.served("v.bin", 300_000));
}

#[test]
fn a_connection_dropped_every_time_fails_after_the_retries() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let out = dir
        .fetch()
        .args(["--retries", "2", "--retry-delay", "10ms"])
        .arg(server.url("/fault/d.bin?size=100000&drop_after=1000&drop_times=always&no_range=1"))
        .arg(server.url("/files/ok.bin?size=10"))
        .code(1);
    let stderr = out.stderr();
    assert!(stderr.contains("body ended after"), "{stderr}");
    assert!(stderr.contains("2 retries"), "{stderr}");
    assert_eq!(server.hits("/fault/d.bin"), 3);
    assert!(!dir.file("d.bin").exists());
    assert!(dir.served("ok.bin", 10));
}

#[test]
fn fewer_bytes_than_content_length_is_an_error_never_a_file() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let out = dir
        .fetch()
        .args(["--retries", "0"])
        .arg(server.url("/fault/s.bin?size=100000&short=70000"))
        .code(1);
    let stderr = out.stderr();
    assert!(stderr.contains("of 100000 bytes"), "{stderr}");
    assert!(!dir.file("s.bin").exists());
}

#[test]
fn retry_after_is_honoured_and_counted() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let started = Instant::now();
    let out = dir
        .fetch()
        .args(["--json", "--retry-delay", "10ms"])
        .arg(server.url("/fault/later.bin?size=1000&fail=503&fail_times=2&retry_after=1"))
        .code(0);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After: 1 was not honoured"
    );
    assert!(dir.served("later.bin", 1000));
    let lines = out.json();
    assert_eq!(lines[0]["retries"], 2);
    assert_eq!(lines[1]["retries"], 2);
    assert_eq!(server.hits("/fault/later.bin"), 3);
}

#[test]
fn statuses_that_say_later_are_retried_and_other_4xx_are_not() {
    let server = TestServer::http();
    let dir = OutDir::new();
    dir.fetch()
        .args(["--retries", "2", "--retry-delay", "10ms"])
        .arg(server.url("/status/404"))
        .arg(server.url("/status/403"))
        .arg(server.url("/status/500"))
        .arg(server.url("/status/429"))
        .arg(server.url("/status/408"))
        .code(1);
    assert_eq!(server.hits("/status/404"), 1);
    assert_eq!(server.hits("/status/403"), 1);
    assert_eq!(server.hits("/status/500"), 3);
    assert_eq!(server.hits("/status/429"), 3);
    assert_eq!(server.hits("/status/408"), 3);
}

#[test]
fn a_redirect_loop_is_not_retried() {
    let server = TestServer::http();
    let dir = OutDir::new();
    dir.fetch()
        .args(["--retry-delay", "10ms"])
        .arg(server.url("/loop"))
        .assert()
        .code(1)
        .stderr(predicates::str::contains("too many redirects"));
    assert_eq!(server.hits("/loop"), 11);
}

#[test]
fn a_stalled_download_times_out_instead_of_hanging() {
    for mode in MODES {
        let server = TestServer::http();
        let dir = OutDir::new();
        let started = Instant::now();
        let out = dir
            .fetch()
            .args(["--mode", mode, "--stall-timeout", "300ms", "--retries", "1"])
            .args(["--retry-delay", "10ms"])
            .arg(server.url("/fault/stuck.bin?size=100000&stall_after=20000"))
            .arg(server.url("/files/fine.bin?size=100"))
            .timeout(Duration::from_secs(20))
            .code(1);
        let stderr = out.stderr();
        assert!(
            stderr.contains("no data for 300ms (stall timeout)"),
            "{mode}: {stderr}"
        );
        assert!(started.elapsed() < Duration::from_secs(10), "{mode}");
        assert!(!dir.file("stuck.bin").exists(), "{mode}");
        // The retry resumed from what had arrived, and stalled again.
        assert_eq!(server.ranges()[1].0, "bytes=20000-", "{mode}");
        assert!(dir.served("fine.bin", 100), "{mode}");
    }
}

#[test]
fn checksums_from_the_list_are_verified_before_the_rename() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let good = sha256_hex(&body("good.bin", 5000));
    let wrong = sha256_hex(b"something else");
    let list = format!(
        "{} sha256={good}\n{} sha256={wrong}\n",
        server.url("/files/good.bin?size=5000"),
        server.url("/files/bad.bin?size=5000"),
    );
    let out = dir
        .fetch()
        .args(["--json", "--keep-order"])
        .list(list)
        .code(1);
    let lines = out.json();
    assert_eq!(lines[0]["sha256"], good.as_str());
    let error = lines[1]["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("SHA-256 mismatch: expected {wrong}, got ")),
        "{error}"
    );
    assert_eq!(dir.listing(), ["good.bin"]);
}

#[test]
fn print_sha256_reports_digests_even_of_resumed_files() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let out = dir
        .fetch()
        .args(["--print-sha256", "--json", "--retry-delay", "10ms"])
        .arg(server.url("/fault/h.bin?size=200000&drop_after=150000"))
        .code(0);
    let lines = out.json();
    assert_eq!(lines[0]["sha256"], sha256_hex(&body("h.bin", 200_000)));
    assert_eq!(lines[0]["retries"], 1);
}

#[test]
fn hostile_content_disposition_names_stay_inside() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let names = [
        "attachment; filename=\"../../evil\"",
        "attachment; filename=\"/etc/x\"",
        "attachment; filename=\"C:\\\\x\"",
        "attachment; filename=\"\"",
        "attachment; filename*=UTF-8''..%2F..%2Fup",
    ];
    let mut cmd = dir.fetch();
    cmd.arg("--content-disposition");
    for (i, cd) in names.iter().enumerate() {
        let cd: String = cd.bytes().map(|b| format!("%{b:02X}")).collect();
        cmd.arg(server.url(&format!("/fault/u{i}?size=10&cd={cd}")));
    }
    let long = format!("attachment; filename=\"{}.bin\"", "n".repeat(600));
    let long: String = long.bytes().map(|b| format!("%{b:02X}")).collect();
    cmd.arg(server.url(&format!("/fault/long?size=10&cd={long}")));
    let stderr = cmd.code(0).stderr();
    assert_eq!(listing(dir.root()), ["out"]);
    let (long, mut files): (Vec<String>, Vec<String>) = dir
        .listing()
        .into_iter()
        .partition(|name| name.starts_with("nnn"));
    files.sort();
    // "" gives no name, so the URL's is used.
    assert_eq!(files, ["evil", "u3", "up", "x", "x-1"], "{stderr}");
    assert!(
        long[0].ends_with(".bin") && long[0].len() <= 200,
        "{long:?}"
    );
    assert!(dir.read("evil") == body("u0", 10));
}

#[test]
fn a_write_error_fails_that_download_and_removes_its_part() {
    use std::os::unix::process::CommandExt;
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    // Files may not grow past 300 000 bytes: writing more fails (EFBIG), as writing to a full
    // disk does. (A link at `full.bin.part` to /dev/full no longer works: links there are
    // never written through.)
    let mut command = Command::new(env!("CARGO_BIN_EXE_fetchbench"));
    command
        .arg("-o")
        .arg(dir.path())
        .arg(server.url("/files/full.bin?size=500000"))
        .arg(server.url("/files/other.bin?size=100000"));
    // SAFETY: only async-signal-safe calls (signal, setrlimit) between fork and exec.
    unsafe {
        command.pre_exec(|| {
            // Ignored, SIGXFSZ lets the write fail with EFBIG instead of killing the process.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 300_000,
                rlim_max: 300_000,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("File too large"), "{stderr}");
    assert!(stderr.contains("full.bin.part"), "{stderr}");
    assert_eq!(
        server.hits("/files/full.bin"),
        1,
        "a write error is not retried"
    );
    assert_eq!(listing(dir.path()), ["other.bin"]);
}

/// Starts the real binary on a download that stalls half-way, waits until the `.part` holds
/// bytes, then sends SIGINT.
fn interrupt_mid_download(
    mode: &str,
    server: &TestServer,
    dir: &std::path::Path,
) -> (Option<i32>, Duration, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_fetchbench"))
        .args(["--mode", mode, "-o"])
        .arg(dir)
        .arg(server.url("/fault/slow.bin?size=400000&stall_after=100000"))
        .arg(server.url("/fault/never-started.bin?size=10"))
        .args(["-j", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_sent(server, 100_000);
    // Time for the bytes to cross loopback.
    std::thread::sleep(Duration::from_millis(100));
    let sent = Instant::now();
    send_signal(child.id(), "INT");
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        sent.elapsed(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn ctrl_c_keeps_the_part_and_continue_completes_it_with_a_range() {
    for mode in ["pool", "seq", "async", "threads", "procs", "spawn"] {
        let server = TestServer::http();
        let dir = OutDir::new();
        let (code, took, stderr) = interrupt_mid_download(mode, &server, dir.path());
        assert_eq!(code, Some(130), "{mode}: {stderr}");
        assert!(took < Duration::from_secs(1), "{mode}: exit took {took:?}");
        assert!(stderr.contains("INTERRUPTED"), "{mode}: {stderr}");
        assert!(stderr.contains("interrupted"), "{mode}: {stderr}");
        // `threads` starts every download at once, so the small one is done by then.
        let other: &[&str] = if mode == "threads" {
            &["never-started.bin"]
        } else {
            &[]
        };
        let mut expected = [other, &["slow.bin.part", "slow.bin.part.fbstate"]].concat();
        assert_eq!(dir.listing(), expected, "{mode}");
        assert_eq!(
            dir.read("slow.bin.part"),
            body("slow.bin", 400_000)[..100_000]
        );

        dir.fetch()
            .arg("-c")
            .arg(server.url("/fault/slow.bin?size=400000"))
            .code(0);
        assert!(dir.served("slow.bin", 400_000), "{mode}");
        expected.truncate(expected.len() - 2);
        expected.push("slow.bin");
        assert_eq!(dir.listing(), expected, "{mode}");
        assert_eq!(server.ranges().last().unwrap().0, "bytes=100000-", "{mode}");
    }
}

/// A record as fetchbench writes it beside `NAME.part`.
fn record(validator: Option<&str>, total: u64, ranges: Option<&[(u64, u64)]>) -> String {
    serde_json::json!({
        "format": "fetchbench-part-1",
        "validator": validator,
        "total": total,
        "ranges": ranges,
    })
    .to_string()
}

#[test]
fn continue_lands_a_whole_part_only_when_its_record_proves_it() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let (whole, proven) = (body("w.bin", 1000), body("r.bin", 1000));
    // Without a record, a `.part` as long as the file proves nothing (it could be a
    // preallocated one with holes): fetched again.
    dir.write("w.bin.part", &whole);
    // Its record says it was written in order and is of this version: landed as it is.
    dir.write("r.bin.part", &proven);
    dir.write(
        "r.bin.part.fbstate",
        record(Some("\"r.bin-stable\""), 1000, None),
    );
    dir.fetch()
        .args(["-c", "-j", "1"])
        .arg(server.url("/fault/w.bin?size=1000"))
        .arg(server.url("/fault/r.bin?size=1000"))
        .code(0);
    assert_eq!(
        server.ranges(),
        [
            ("bytes=1000-".to_owned(), "-".to_owned()),
            ("-".to_owned(), "-".to_owned()),
            ("bytes=1000-".to_owned(), "\"r.bin-stable\"".to_owned()),
        ]
    );
    assert_eq!(server.body_bytes(), 1000, "only w.bin again");
    assert_eq!(dir.listing(), ["r.bin", "w.bin"]);
    assert!(dir.read("w.bin") == whole);
    assert!(dir.read("r.bin") == proven);
}

#[test]
fn continue_resumes_a_preallocated_part_only_from_what_its_record_proves() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let size = 4000;
    let good = body("holes.bin", size);
    // What a killed `-s 4` run leaves: a preallocated `.part` with zeros where segments had
    // not written yet, and a record of the ranges that were.
    let mut part = vec![0u8; size];
    for (start, end) in [(0, 700), (1000, 1500), (3000, 3900)] {
        part[start..end].copy_from_slice(&good[start..end]);
    }
    dir.write("holes.bin.part", &part);
    dir.write(
        "holes.bin.part.fbstate",
        record(
            Some("\"holes.bin-stable\""),
            size as u64,
            Some(&[(0, 700), (1000, 1500), (3000, 3900)]),
        ),
    );
    dir.fetch()
        .arg("-c")
        .arg(server.url(&format!("/fault/holes.bin?size={size}")))
        .code(0);
    assert_eq!(
        server.ranges(),
        [("bytes=700-".to_owned(), "\"holes.bin-stable\"".to_owned())]
    );
    assert!(dir.read("holes.bin") == good);
    assert_eq!(dir.listing(), ["holes.bin"]);

    // With -s, each segment goes on where the record says it stopped (an empty one too).
    std::fs::remove_file(dir.file("holes.bin")).unwrap();
    dir.write("holes.bin.part", &part);
    let segments: &[(u64, u64)] = &[(0, 700), (1000, 1500), (2000, 2000), (3000, 3900)];
    dir.write(
        "holes.bin.part.fbstate",
        record(Some("\"holes.bin-stable\""), size as u64, Some(segments)),
    );
    let before = server.ranges().len();
    dir.fetch()
        .args(["-c", "-s", "4"])
        .arg(server.url(&format!("/fault/holes.bin?size={size}")))
        .code(0);
    let mut asked: Vec<(String, String)> = server.ranges()[before..].to_vec();
    asked.sort();
    let tag = "\"holes.bin-stable\"".to_owned();
    assert_eq!(
        asked,
        [
            "bytes=1500-1999",
            "bytes=2000-2999",
            "bytes=3900-3999",
            "bytes=700-999"
        ]
        .map(|r| (r.to_owned(), tag.clone()))
    );
    assert!(dir.read("holes.bin") == good);
    assert_eq!(dir.listing(), ["holes.bin"]);

    // A record that is not one proves nothing: started over, never trusted.
    std::fs::remove_file(dir.file("holes.bin")).unwrap();
    dir.write("holes.bin.part", &part);
    dir.write("holes.bin.part.fbstate", "{garbage");
    dir.fetch()
        .arg("-c")
        .arg(server.url(&format!("/fault/holes.bin?size={size}")))
        .code(0);
    assert_eq!(server.ranges().last().unwrap().0, "-");
    assert!(dir.read("holes.bin") == good);
    assert_eq!(dir.listing(), ["holes.bin"]);
}

#[test]
fn thousands_of_threads_do_not_run_out_of_descriptors() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let list: String = (0..3000)
        .map(|i| format!("{}\n", server.url(&format!("/files/t{i}?size=100"))))
        .collect();
    dir.fetch()
        .args(["--mode", "threads", "-q"])
        .list(list)
        .timeout(Duration::from_secs(120))
        .code(0);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3000);
    assert!(dir.served("t2999", 100));
}

#[test]
fn a_large_body_written_by_its_own_thread_resumes_exactly() {
    // Over 8 MiB, a writer thread does the disk writes; a cut and a resume must still line up.
    let size = 12 * MIB + 5;
    for mode in ["pool", "async"] {
        let server = TestServer::http();
        let dir = OutDir::new();
        let out = dir
            .fetch()
            .args([
                "--mode",
                mode,
                "--retry-delay",
                "10ms",
                "--print-sha256",
                "--json",
            ])
            .arg(server.url(&format!("/fault/large.bin?size={size}&drop_after=5000000")))
            .code(0);
        let expected = body("large.bin", size);
        assert!(dir.read("large.bin") == expected, "{mode}");
        let lines = out.json();
        assert_eq!(lines[0]["sha256"], sha256_hex(&expected), "{mode}");
        assert_eq!(server.ranges().len(), 2, "{mode}: one resume");
    }
}
