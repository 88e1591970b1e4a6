//! Issue 12: hostile servers, output directories that already hold files (links, FIFOs, files
//! of the user's), closed or full output streams, signals, and hard limits. Each test drives
//! the real binary against servers on 127.0.0.1.

use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::tempdir;

use crate::server::{TestServer, body};
use crate::util::{OutDir, fetchbench, json_lines, listing, read, send_signal, wait_until_sent};

const MIB: usize = 1 << 20;

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A file outside the output directory that a link in it points to.
fn victim(outside: &Path) -> std::path::PathBuf {
    let victim = outside.join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    victim
}

#[test]
fn a_symlink_at_the_part_name_is_never_written_through() {
    let server = TestServer::http();
    // (label, URL path, extra arguments, file name)
    let cases: [(&str, String, &[&str], &str); 5] = [
        ("small", "/files/s.bin?size=3000".into(), &[], "s.bin"),
        (
            "multi-read",
            format!("/fault/m.bin?size={MIB}"),
            &[],
            "m.bin",
        ),
        ("chunked", "/chunked/c.bin?size=300000".into(), &[], "c.bin"),
        (
            "segments",
            format!("/fault/g.bin?size={}", 3 * MIB),
            &["-s", "2"],
            "g.bin",
        ),
        (
            "continue",
            format!("/fault/r.bin?size={MIB}"),
            &["-c"],
            "r.bin",
        ),
    ];
    for (label, path, extra, name) in cases {
        let dir = OutDir::new();
        let outside = tempdir().unwrap();
        let victim = victim(outside.path());
        symlink(&victim, dir.path().join(format!("{name}.part"))).unwrap();
        let out = dir
            .fetch()
            .args(extra)
            .arg(server.url(&path))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{label}: {}", stderr_of(&out));
        assert_eq!(
            std::fs::read(&victim).unwrap(),
            b"precious",
            "{label}: written through the link"
        );
        let saved = dir.path().join(name);
        assert!(
            saved.symlink_metadata().unwrap().file_type().is_file(),
            "{label}: {name} is not a regular file"
        );
        let size = std::fs::metadata(&saved).unwrap().len() as usize;
        let source = path.split('/').nth(2).unwrap().split('?').next().unwrap();
        assert!(dir.read(name) == body(source, size) && size > 0, "{label}");
    }
}

#[test]
fn a_hard_link_at_the_part_name_is_not_resumed_into() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let outside = tempdir().unwrap();
    let victim = victim(outside.path());
    // Same filesystem for a hard link: both in the system's temporary directory.
    if std::fs::hard_link(&victim, dir.file("h.bin.part")).is_err() {
        return;
    }
    dir.fetch()
        .arg("-c")
        .arg(server.url("/fault/h.bin?size=300000"))
        .code(0);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(dir.served("h.bin", 300_000));
    // Not resumed from the linked file's 8 bytes: the whole body was asked for.
    assert_eq!(server.ranges(), [("-".to_owned(), "-".to_owned())]);
}

#[test]
fn the_write_probe_never_follows_a_link() {
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    let outside = tempdir().unwrap();
    let victim = victim(outside.path());
    // The probe is named after the process: start it, reading its list from stdin so that it
    // waits, plant the link, then give it the list.
    let mut child = Command::new(env!("CARGO_BIN_EXE_fetchbench"))
        .args(["-q", "-i", "-", "-o"])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let probe = dir.path().join(format!(".fetchbench-probe-{}", child.id()));
    symlink(&victim, &probe).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}", server.url("/files/p.bin?size=100")).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    // The link is someone else's: left alone.
    assert!(probe.symlink_metadata().unwrap().file_type().is_symlink());
    assert!(read(dir.path(), "p.bin") == body("p.bin", 100));
}

#[test]
fn a_fifo_at_the_part_name_neither_blocks_nor_is_written() {
    let server = TestServer::http();
    for extra in [&[][..], &["-c"][..]] {
        let dir = OutDir::new();
        let fifo = dir.file("f.bin.part");
        let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        let started = Instant::now();
        dir.fetch()
            .args(extra)
            .args(["--stall-timeout", "5s"])
            .arg(server.url(&format!("/fault/f.bin?size={MIB}")))
            .timeout(Duration::from_secs(30))
            .code(0);
        assert!(started.elapsed() < Duration::from_secs(10), "{extra:?}");
        assert!(dir.served("f.bin", MIB), "{extra:?}");
        assert_eq!(dir.listing(), ["f.bin"], "{extra:?}");
    }
}

#[test]
fn no_referer_is_sent_across_hosts_unless_asked() {
    let first = TestServer::http();
    let second = TestServer::http();
    let target = second.url("/files/t.bin?size=100&token=secret");
    let hop = first.url(&format!("/to?url={}", urlencode(&target)));
    let dir = OutDir::new();
    dir.fetch().arg(&hop).code(0);
    let seen = second.seen();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].headers.get("referer").is_none(),
        "{:?}",
        seen[0].headers
    );

    dir.fetch()
        .args(["-e", "http://example.com/page"])
        .arg(&hop)
        .code(0);
    let seen = second.seen();
    assert_eq!(seen[1].headers["referer"], "http://example.com/page");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_server_chosen_name_never_replaces_a_file_that_was_there() {
    let server = TestServer::http();
    for mode in ["pool", "procs"] {
        let dir = OutDir::new();
        dir.write("notes.txt", b"mine");
        dir.write("landed.bin", b"mine too");
        dir.write("u.bin", b"replace me");
        let cd = urlencode("attachment; filename=\"notes.txt\"");
        let out = dir
            .fetch()
            .args(["--content-disposition", "--mode", mode])
            .arg(server.url(&format!("/fault/cd.bin?size=100&cd={cd}")))
            .arg(server.url("/redirect/0"))
            .arg(server.url("/files/u.bin?size=10"))
            .output()
            .unwrap();
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(0), "{mode}: {stderr}");
        assert_eq!(dir.read("notes.txt"), b"mine", "{mode}");
        assert_eq!(dir.read("landed.bin"), b"mine too", "{mode}");
        assert!(dir.read("notes-1.txt") == body("cd.bin", 100), "{mode}");
        assert!(
            dir.read("landed-1.bin") == body("landed.bin", 1234),
            "{mode}"
        );
        // A name from the user's own URL replaces, as before.
        assert!(dir.served("u.bin", 10), "{mode}");
        assert!(
            stderr.contains("notes.txt is already in") && stderr.contains("saved as notes-1.txt"),
            "{mode}: {stderr}"
        );
        assert!(stderr.contains("saved as landed-1.bin"), "{mode}: {stderr}");
    }
}

#[test]
fn continue_resumes_the_part_of_the_name_the_response_gives() {
    let server = TestServer::http();
    let size = 300_000;
    let cd = urlencode("attachment; filename=\"report.pdf\"");
    let by_disposition = server.url(&format!("/fault/dl?size={size}&cd={cd}"));
    let by_redirect = server.url(&format!(
        "/to?url={}",
        urlencode(&format!("/fault/moved.bin?size={size}"))
    ));
    for (url, name, source) in [
        (by_disposition, "report.pdf", "dl"),
        (by_redirect, "moved.bin", "moved.bin"),
    ] {
        let dir = OutDir::new();
        std::fs::write(
            dir.path().join(format!("{name}.part")),
            &body(source, size)[..120_000],
        )
        .unwrap();
        dir.fetch()
            .args(["-c", "--content-disposition"])
            .arg(&url)
            .code(0);
        assert!(dir.read(name) == body(source, size), "{name}");
        assert_eq!(dir.listing(), [name]);
        assert_eq!(
            server.ranges().last().unwrap().0,
            "bytes=120000-",
            "{name}: {:?}",
            server.ranges()
        );
    }
}

#[test]
fn a_closed_or_full_stderr_never_panics_and_the_paths_still_print() {
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    let url = server.url("/files/e.bin?size=100");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fetchbench"))
        .arg("-o")
        .arg(dir.path())
        .arg(&url)
        .stderr(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("e.bin"));

    // `2>&-`: no stderr at all.
    let out = Command::new("sh")
        .args(["-c", "exec 2>&-; exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_fetchbench"))
        .arg("-o")
        .arg(dir.path())
        .arg(&url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("e.bin"));
}

#[test]
fn a_full_stdout_exits_1_and_says_so_with_the_files_saved() {
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fetchbench"))
        .args(["-q", "-o"])
        .arg(dir.path())
        .arg(server.url("/files/o.bin?size=100"))
        .stdout(full)
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write the results"), "{stderr}");
    assert!(read(dir.path(), "o.bin") == body("o.bin", 100));
}

#[test]
fn sigterm_exits_143_and_keeps_the_part() {
    for mode in ["pool", "procs"] {
        let server = TestServer::http();
        let dir = tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_fetchbench"))
            .args(["--mode", mode, "-o"])
            .arg(dir.path())
            .arg(server.url("/fault/t.bin?size=400000&stall_after=100000"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until_sent(&server, 100_000);
        std::thread::sleep(Duration::from_millis(100));
        send_signal(child.id(), "TERM");
        let out = child.wait_with_output().unwrap();
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(143), "{mode}: {stderr}");
        assert!(stderr.contains("INTERRUPTED"), "{mode}: {stderr}");
        assert_eq!(
            listing(dir.path()),
            ["t.bin.part", "t.bin.part.fbstate"],
            "{mode}"
        );
        assert_eq!(
            read(dir.path(), "t.bin.part"),
            body("t.bin", 400_000)[..100_000],
            "{mode}"
        );
    }
}

#[test]
fn a_user_agent_with_cr_or_lf_is_a_usage_error() {
    let server = TestServer::http();
    let dir = OutDir::new();
    dir.fetch()
        .args(["-A", "bot\r\nX-Evil: 1"])
        .arg(server.url("/files/a.bin"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("invalid User-Agent"));
    assert_eq!(server.requests(), 0);
}

#[test]
fn zero_timeouts_are_refused() {
    for flag in ["--stall-timeout", "--connect-timeout", "--max-time"] {
        fetchbench()
            .args([flag, "0s", "http://127.0.0.1:9/x"])
            .assert()
            .code(2)
            .stderr(predicates::str::contains("must be longer than 0"));
    }
}

#[test]
fn slow_headers_are_a_header_timeout_not_a_stall() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let out = dir
        .fetch()
        .args(["--stall-timeout", "300ms", "--retries", "0"])
        .arg(server.url("/slow/h.bin?ms=3000"))
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("(header timeout)"), "{stderr}");
    assert!(!stderr.contains("stall timeout"), "{stderr}");
}

#[test]
fn permanent_errors_are_not_retried() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let out = dir
        .fetch()
        .args([
            "--retries",
            "3",
            "--retry-delay",
            "10ms",
            "--json",
            "--keep-order",
        ])
        .arg(server.url("/bighead"))
        .arg(server.url("/to?url=ftp%3A%2F%2F127.0.0.1%2Fx"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let lines = json_lines(&out.stdout);
    assert_eq!(server.hits("/bighead"), 1);
    assert_eq!(server.hits("/to"), 1);
    let head = lines[0]["error"].as_str().unwrap();
    assert!(head.contains("too large"), "{head}");
    let redirect = lines[1]["error"].as_str().unwrap();
    assert!(
        redirect.contains("redirect refused") && redirect.contains("ftp://"),
        "{redirect}"
    );
    assert_eq!(
        (lines[0]["retries"].clone(), lines[1]["retries"].clone()),
        (0.into(), 0.into())
    );
}

#[test]
fn invisible_characters_never_reach_a_file_name() {
    let server = TestServer::http();
    let dir = OutDir::new();
    dir.fetch()
        // "invoice" RLO "fdp.exe" (reads as invoiceexe.pdf), and a line separator.
        .arg(server.url("/files/invoice%E2%80%AEfdp.exe?size=10"))
        .arg(server.url("/files/two%E2%80%A8lines%E2%81%A6.txt?size=10"))
        .code(0);
    assert_eq!(dir.listing(), ["invoicefdp.exe", "twolines.txt"]);
}

#[test]
fn max_filesize_refuses_an_announced_size_and_cuts_a_growing_body() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let out = dir
        .fetch()
        .args(["--max-filesize", "100KB", "--json", "--keep-order"])
        .arg(server.url("/fault/big.bin?size=500000"))
        .arg(server.url("/chunked/grow.bin?size=500000"))
        .arg(server.url("/files/ok.bin?size=1000"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let lines = json_lines(&out.stdout);
    for line in &lines[..2] {
        let error = line["error"].as_str().unwrap();
        assert!(error.contains("--max-filesize"), "{error}");
        assert_eq!(line["retries"], 0);
    }
    assert_eq!(dir.listing(), ["ok.bin"]);
}

#[test]
fn max_time_bounds_a_download_across_its_attempts() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let started = Instant::now();
    let out = dir
        .fetch()
        .args(["--max-time", "1500ms", "--stall-timeout", "400ms"])
        .args(["--retries", "100", "--retry-delay", "10ms"])
        .arg(server.url("/fault/mt.bin?size=100000&stall_after=1000"))
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--max-time"), "{stderr}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // What arrived is kept for -c.
    assert_eq!(dir.listing(), ["mt.bin.part", "mt.bin.part.fbstate"]);
}

#[test]
fn a_drip_below_the_speed_limit_is_abandoned() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let started = Instant::now();
    let out = dir
        .fetch()
        .args([
            "--speed-limit",
            "1KiB/s",
            "--speed-time",
            "1s",
            "--retries",
            "0",
        ])
        .arg(server.url("/drip/d.bin?size=1000&ms=100"))
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("(--speed-limit)"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn limit_rate_gives_no_unthrottled_burst_after_a_wait() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let started = Instant::now();
    dir.fetch()
        .args(["--limit-rate", "1MiB/s", "--wait", "2500ms", "-j", "1"])
        .arg(server.url(&format!("/files/w1.bin?size={MIB}")))
        .arg(server.url(&format!("/files/w2.bin?size={MIB}")))
        .code(0);
    // The second file starts at 2.5 s and, at 1 MiB/s with at most 250 ms of credit, takes
    // at least 0.75 s more (without the bound it arrived at once).
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(3100), "{took:?}");
}

#[test]
fn no_clobber_skips_without_asking_the_server() {
    let server = TestServer::http();
    let dir = OutDir::new();
    dir.write("k.bin", b"mine");
    dir.write("named.bin", b"mine too");
    let list = format!("{} out=named.bin\n", server.url("/files/other?size=10"));
    dir.fetch()
        .arg("--no-clobber")
        .arg(server.url("/files/k.bin?size=10"))
        .list(list)
        .assert()
        .code(0)
        .stderr(predicates::str::contains("already exists (--no-clobber)"));
    assert_eq!(server.requests(), 0);
    assert_eq!(dir.read("k.bin"), b"mine");
    assert_eq!(dir.read("named.bin"), b"mine too");
}

#[test]
fn with_no_clobber_a_server_chosen_name_that_is_taken_is_skipped() {
    let server = TestServer::http();
    let dir = OutDir::new();
    dir.write("notes.txt", b"mine");
    let cd = urlencode("attachment; filename=\"notes.txt\"");
    dir.fetch()
        .args(["--no-clobber", "--content-disposition"])
        .arg(server.url(&format!("/fault/cd.bin?size=100&cd={cd}")))
        .assert()
        .code(0)
        .stderr(predicates::str::contains("already exists (--no-clobber)"));
    assert_eq!(dir.listing(), ["notes.txt"]);
    assert_eq!(dir.read("notes.txt"), b"mine");
}

#[test]
fn no_clobber_never_skips_a_url_for_a_file_this_run_saved() {
    let server = TestServer::http();
    let dir = OutDir::new();
    dir.fetch()
        .args(["--no-clobber", "--content-disposition", "--mode", "seq"])
        .arg(server.url("/files/dup.bin?size=10"))
        .arg(server.url("/dir/x/dup.bin?size=20"))
        .code(0);
    assert_eq!(dir.listing(), ["dup-1.bin", "dup.bin"]);
    assert!(dir.read("dup-1.bin") == body("dup.bin", 20));
}

#[test]
fn a_link_at_the_final_name_is_replaced_never_followed() {
    let server = TestServer::http();
    for size in [100, 300_000] {
        let dir = OutDir::new();
        let outside = tempdir().unwrap();
        let victim = victim(outside.path());
        let name = format!("l{size}.bin");
        symlink(&victim, dir.path().join(&name)).unwrap();
        dir.fetch()
            .arg(server.url(&format!("/fault/{name}?size={size}")))
            .code(0);
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious", "{size}");
        let saved = dir.path().join(&name);
        assert!(saved.symlink_metadata().unwrap().file_type().is_file());
        assert!(dir.served(&name, size), "{size}");
    }
}
