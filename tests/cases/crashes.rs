//! What a crash, a changed file or a lying server leaves, and what `-c` makes of it: every
//! file ends byte-exact or starts over, never with holes, from two versions, or short.

use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::tempdir;

use crate::server::{TestServer, body};
use crate::util::{OutDir, children_of, listing, read, send_signal, wait_until_sent};

const MIB: usize = 1 << 20;

/// Starts `args` + `url` into `dir`, SIGKILLs the process (or, with `child`, its worker
/// process) `settle` after the server has sent `kill_after` body bytes, and waits for the
/// parent.
fn kill_mid_download(
    server: &TestServer,
    dir: &std::path::Path,
    args: &[&str],
    url: &str,
    (kill_after, settle): (u64, Duration),
    child: bool,
) {
    let mut run = Command::new(env!("CARGO_BIN_EXE_fetchbench"))
        .args(args)
        .args(["-q", "--retries", "0", "-o"])
        .arg(dir)
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_sent(server, kill_after);
    std::thread::sleep(settle);
    let victim = if child {
        let children = children_of(run.id());
        assert_eq!(children.len(), 1, "{children:?}");
        children[0]
    } else {
        run.id()
    };
    send_signal(victim, "KILL");
    let _ = run.wait();
}

/// Whatever a SIGKILL of a segmented download leaves, `-c` turns into the exact file (and
/// never lands one early: a 416 to a preallocated `.part` with holes is no proof).
fn killed_then_continued(args: &[&str], child: bool) {
    let size = 4 * MIB;
    let expected = body("k.bin", size);
    // Four segments at 2 MiB/s each: about half a second in all, killed at several points.
    for kill_after in [300_000, 1_500_000, 3_000_000, 3_900_000] {
        let server = TestServer::http();
        let dir = OutDir::new();
        let url = server.url(&format!("/fault/k.bin?size={size}&rate=2000000"));
        kill_mid_download(
            &server,
            dir.path(),
            args,
            &url,
            (kill_after, Duration::ZERO),
            child,
        );
        assert!(
            !dir.file("k.bin").exists(),
            "{args:?} killed at {kill_after}: a final name before the end"
        );
        dir.fetch()
            .args(["-c", "-q", "-s", "4"])
            .arg(server.url(&format!("/fault/k.bin?size={size}")))
            .code(0);
        assert_eq!(dir.listing(), ["k.bin"], "{args:?} {kill_after}");
        assert!(
            dir.read("k.bin") == expected,
            "{args:?} killed at {kill_after}: the resumed file differs"
        );
    }
}

#[test]
fn a_segmented_download_killed_at_any_point_is_completed_byte_exact_by_continue() {
    killed_then_continued(&["-s", "4"], false);
}

#[test]
fn a_procs_worker_killed_mid_segmented_download_leaves_what_continue_completes() {
    killed_then_continued(&["-s", "4", "--mode", "procs", "-j", "1"], true);
}

#[test]
fn continue_after_the_file_changed_starts_over_instead_of_mixing_versions() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let size = 400_000;
    let url = |v: u32| {
        server.url(&format!(
            "/fault/c.bin?size={size}&v={v}&stall_after=100000"
        ))
    };
    // Killed during the pause, which has written out what arrived.
    let settle = Duration::from_millis(300);
    kill_mid_download(&server, dir.path(), &[], &url(1), (100_000, settle), false);
    let part = dir.file("c.bin.part");
    assert_eq!(
        std::fs::metadata(&part).map(|m| m.len()).ok(),
        Some(100_000)
    );

    // Version 2 is on the server now: If-Range with version 1's ETag gets the whole new file.
    dir.fetch()
        .args(["-c", "-q"])
        .arg(server.url(&format!("/fault/c.bin?size={size}&v=2")))
        .code(0);
    let (range, if_range) = server.ranges().last().cloned().unwrap();
    assert_eq!(
        (range.as_str(), if_range.as_str()),
        ("bytes=100000-", "\"c.bin-1\"")
    );
    assert!(dir.read("c.bin") == body("c.bin@2", size), "mixed versions");
    assert_eq!(dir.listing(), ["c.bin"]);
}

#[test]
fn a_206_short_of_its_total_is_never_a_complete_file() {
    let server = TestServer::http();
    let size = 1000;
    let expected = body("s.bin", size);
    for retries in ["0", "3"] {
        let dir = OutDir::new();
        dir.write("s.bin.part", &expected[..100]);
        // Asked for bytes 100-, the server sends 100-199 of 1000 (consistent, but short).
        let run = dir
            .fetch()
            .args(["-c", "--retry-delay", "10ms", "--retries", retries])
            .arg(server.url(&format!(
                "/fault/s.bin?size={size}&range_short=100&range_short_times=1000"
            )))
            .assert();
        if retries == "0" {
            let run = run.code(1);
            let stderr = String::from_utf8_lossy(&run.get_output().stderr).into_owned();
            assert!(
                stderr.contains("body ended after 200 of 1000 bytes"),
                "{stderr}"
            );
            assert!(!dir.file("s.bin").exists());
            assert_eq!(dir.read("s.bin.part"), &expected[..200]);
        } else {
            // Each retry resumes where the last 206 ended; four 100-byte answers are not
            // the whole file either.
            run.code(1);
            assert!(!dir.file("s.bin").exists());
        }
    }
    // A server that sends the rest when asked again completes the file exactly.
    let dir = OutDir::new();
    dir.write("s.bin.part", &expected[..100]);
    dir.fetch()
        .args(["-c", "--retry-delay", "10ms"])
        .arg(server.url(&format!("/fault/s.bin?size={size}&range_short=100")))
        .code(0);
    assert!(dir.read("s.bin") == expected);
}

#[test]
fn a_trickle_killed_mid_body_keeps_what_arrived_before_the_last_quarter_second() {
    // 200 KB/s never pauses for 50 ms, and the body began in an unnamed file.
    let server = TestServer::http();
    let dir = OutDir::new();
    let size = 400_000;
    let url = server.url(&format!("/fault/t.bin?size={size}&rate=200000&chunk=1000"));
    kill_mid_download(
        &server,
        dir.path(),
        &[],
        &url,
        (120_000, Duration::ZERO),
        false,
    );
    let kept = std::fs::metadata(dir.file("t.bin.part")).map_or(0, |m| m.len());
    // Sent by the kill: at least 120 KB; on disk: all but the last 250 ms (50 KB) and a
    // chunk in flight.
    assert!(kept >= 50_000, "only {kept} bytes kept");
    assert!(dir.read("t.bin.part") == body("t.bin", size)[..kept as usize]);
    dir.fetch()
        .args(["-c", "-q"])
        .arg(server.url(&format!("/fault/t.bin?size={size}")))
        .code(0);
    assert!(dir.served("t.bin", size));
}

#[test]
fn a_large_body_that_pauses_is_on_disk_whole_before_a_kill() {
    // Over 8 MiB a writer thread does the writes; a pause writes out its buffer too.
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    let (size, pause_at) = (12 * MIB, 9 * MIB);
    let mut run = Command::new(env!("CARGO_BIN_EXE_fetchbench"))
        .args(["-q", "-o"])
        .arg(dir.path())
        .arg(server.url(&format!("/fault/p.bin?size={size}&stall_after={pause_at}")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_sent(&server, pause_at as u64);
    let part = dir.path().join("p.bin.part");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::fs::metadata(&part).map_or(0, |m| m.len()) < pause_at as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "the bytes before the pause never reached the disk"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    send_signal(run.id(), "KILL");
    let _ = run.wait();
    assert!(read(dir.path(), "p.bin.part") == body("p.bin", size)[..pause_at]);
}

#[test]
fn a_second_run_into_the_same_directory_leaves_a_download_in_progress_alone() {
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    let size = 2 * MIB;
    let url = server.url(&format!("/fault/shared.bin?size={size}&rate=2000000"));
    let start = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_fetchbench"))
            .args(args)
            .args(["--retries", "0", "-o"])
            .arg(dir.path())
            .arg(&url)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // The final name is never seen holding anything but the whole file.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = {
        let (stop, path) = (stop.clone(), dir.path().join("shared.bin"));
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok(meta) = std::fs::metadata(&path) {
                    assert_eq!(meta.len(), size as u64, "a final name with partial bytes");
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let first = start(&[]);
    wait_until_sent(&server, 300_000);
    for second in [&[][..], &["-c"][..]] {
        let output = start(second).wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(1), "{second:?}: {stderr}");
        assert!(
            stderr.contains("being downloaded by another run into the same directory"),
            "{second:?}: {stderr}"
        );
        assert!(!stderr.contains("cannot write"), "{second:?}: {stderr}");
    }
    let output = first.wait_with_output().unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    watch.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(read(dir.path(), "shared.bin") == body("shared.bin", size));
    assert_eq!(listing(dir.path()), ["shared.bin"]);
}

#[test]
fn continue_over_complete_files_skips_them_without_downloading_again() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let urls: Vec<String> = ["a.bin", "b.bin"]
        .iter()
        .map(|name| server.url(&format!("/fault/{name}?size=300000")))
        .collect();
    dir.fetch().arg("-q").args(&urls).code(0);
    // b.bin was cut short since: it is not complete, and is fetched again whole.
    let b = dir.file("b.bin");
    std::fs::write(&b, &body("b.bin", 300_000)[..1000]).unwrap();
    let sent = server.body_bytes();
    let run = dir
        .fetch()
        .args(["-c", "--json", "-j", "1"])
        .args(&urls)
        .code(0);
    let stderr = run.stderr();
    assert!(
        stderr.contains(&format!(
            "skipped {}: already complete (-c)",
            dir.file("a.bin").display()
        )),
        "{stderr}"
    );
    let lines = run.json();
    assert_eq!(lines[0]["status"], "skipped", "{lines:?}");
    assert_eq!(lines[1]["status"], "ok", "{lines:?}");
    assert!(dir.served("a.bin", 300_000));
    assert!(dir.served("b.bin", 300_000));
    // a.bin: one question, no body; b.bin: the question, then the whole file.
    let asked: Vec<String> = server.ranges()[2..].iter().map(|r| r.0.clone()).collect();
    assert_eq!(asked, ["bytes=300000-", "bytes=1000-", "-"]);
    assert!(server.body_bytes() - sent >= 300_000);
}

#[test]
fn a_resume_answered_from_byte_zero_is_taken_as_the_whole_file() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let size = 5000;
    dir.write("z.bin.part", &body("z.bin", size)[..1000]);
    let run = dir
        .fetch()
        .args(["-c", "--retries", "0"])
        .arg(server.url(&format!("/fault/z.bin?size={size}&range_from_zero=1")))
        .code(0);
    let stderr = run.stderr();
    assert!(!stderr.contains("unexpected range"), "{stderr}");
    assert!(dir.served("z.bin", size));
    assert_eq!(dir.listing(), ["z.bin"]);
}

#[test]
fn a_content_range_that_lies_about_the_size_is_refused_in_words() {
    let server = TestServer::http();
    let dir = OutDir::new();
    // A 64 KiB body whose Content-Range claims a file of 1 TiB.
    let run = dir
        .fetch()
        .args(["-s", "4", "--retries", "0"])
        .arg(server.url("/fault/liar.bin?size=65536&lie_total=1099511627776"))
        .code(1);
    let stderr = run.stderr();
    assert!(
        stderr.contains(
            "the server's Content-Range (bytes 0-1099511627775 of 1099511627776) does not \
             hold together with its Content-Length of 65536 bytes"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("824633851904"), "{stderr}");
    assert_eq!(dir.listing(), Vec::<String>::new());
}

#[test]
fn a_record_that_is_a_link_is_never_followed_or_trusted() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let outside = tempdir().unwrap();
    let target = outside.path().join("precious");
    std::fs::write(&target, "keep me").unwrap();
    let size = 300_000;
    // A `.part` with a link where its record would be: not read, not written through.
    dir.write("l.bin.part", &body("l.bin", size)[..1000]);
    std::os::unix::fs::symlink(&target, dir.file("l.bin.part.fbstate")).unwrap();
    dir.fetch()
        .args(["-c", "-q"])
        .arg(server.url(&format!("/fault/l.bin?size={size}&stall_after=200000")))
        .args(["--retries", "0", "--stall-timeout", "1s"])
        .code(1);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    // Started over (the link proves nothing), and the record now beside it is a file.
    assert_eq!(server.ranges()[0].0, "-");
    let record = dir.file("l.bin.part.fbstate");
    assert!(record.symlink_metadata().unwrap().file_type().is_file());
    assert_eq!(dir.read("l.bin.part"), &body("l.bin", size)[..200_000]);
    dir.fetch()
        .args(["-c", "-q"])
        .arg(server.url(&format!("/fault/l.bin?size={size}")))
        .code(0);
    assert!(dir.served("l.bin", size));
    assert_eq!(server.ranges()[1].0, "bytes=200000-");
    assert_eq!(dir.listing(), ["l.bin"]);
}

#[test]
fn segments_resumed_after_the_file_changed_start_over_instead_of_mixing() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let size = 4000;
    let old = body("m.bin@1", size);
    let mut part = vec![0u8; size];
    part[..1000].copy_from_slice(&old[..1000]);
    part[2000..2500].copy_from_slice(&old[2000..2500]);
    dir.write("m.bin.part", &part);
    let record = serde_json::json!({
        "format": "fetchbench-part-1",
        "validator": "\"m.bin-1\"",
        "total": size,
        "ranges": [[0, 1000], [2000, 2500]],
    });
    dir.write("m.bin.part.fbstate", record.to_string());
    dir.fetch()
        .args(["-c", "-q", "-s", "4", "--retry-delay", "10ms"])
        .arg(server.url(&format!("/fault/m.bin?size={size}&v=2")))
        .code(0);
    assert!(dir.read("m.bin") == body("m.bin@2", size), "mixed versions");
    assert_eq!(dir.listing(), ["m.bin"]);
}
