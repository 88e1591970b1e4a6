//! `-j auto`: the width climbs where the server allows it, backs off where it refuses, stays
//! within the descriptor limit; HTTP/2 downloads use large flow-control windows.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tempfile::tempdir;

use crate::server::{CERT, TestServer, body};
use crate::util::{OutDir, listing};

/// A list of `n` URLs of `server` made by `path(i)`, written into `dir`.
fn url_list(
    dir: &std::path::Path,
    server: &TestServer,
    n: usize,
    path: impl Fn(usize) -> String,
) -> String {
    let list = dir.join("urls.txt");
    let mut file = std::fs::File::create(&list).unwrap();
    for i in 0..n {
        writeln!(file, "{}", server.url(&path(i))).unwrap();
    }
    list.to_string_lossy().into_owned()
}

#[test]
fn auto_is_the_default_and_climbs_well_above_8_over_http1() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let list = url_list(dir.root(), &server, 300, |i| {
        format!("/slow/f{i}.bin?ms=100&size=200")
    });
    let done = dir.fetch().args(["-q", "--json"]).list_file(&list).code(0);
    assert_eq!(dir.listing().len(), 300);
    assert_eq!(dir.read("f7.bin"), body("f7.bin", 200));
    let summary = done.summary();
    assert_eq!(summary["mode"], "async");
    assert_eq!(summary["width"]["setting"], "auto");
    let peak = summary["width"]["peak"].as_u64().unwrap();
    assert!(peak > 16, "the width stayed at {peak}");
    assert!(peak <= 64, "HTTP/1.1 is capped at 64 connections: {peak}");
    let most = server.most_in_flight();
    assert!((17..=64).contains(&most), "the server saw {most} at once");
}

#[test]
fn auto_over_http2_runs_streams_on_one_connection_past_the_http1_cap() {
    let server = TestServer::https();
    let dir = OutDir::new();
    let list = url_list(dir.root(), &server, 400, |i| {
        format!("/slow/f{i}.bin?ms=100&size=200")
    });
    dir.fetch()
        .args(["-q", "--json", "--cacert", CERT])
        .list_file(&list)
        .code(0);
    assert_eq!(dir.listing().len(), 400);
    let most = server.most_in_flight();
    assert!(
        most > 64,
        "over HTTP/2 the width passes the HTTP/1.1 cap: {most}"
    );
    // The first download goes alone until its connection tells the protocol; the others then
    // share that connection.
    assert_eq!(server.connections(), 1);
    assert!(
        server
            .seen()
            .iter()
            .all(|s| s.version == axum::http::Version::HTTP_2),
        "every request over HTTP/2"
    );
}

#[test]
fn auto_backs_off_when_the_server_refuses() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let list = url_list(dir.root(), &server, 120, |i| {
        format!("/busy/f{i}.bin?max=6&ms=60&size=100")
    });
    let done = dir
        .fetch()
        .args(["-q", "--json", "--retries", "10"])
        .list_file(&list)
        .code(0);
    assert_eq!(dir.listing().len(), 120);
    let summary = done.summary();
    let last = summary["width"]["last"].as_u64().unwrap();
    assert!(
        last <= 8,
        "the width ends near the server's room of 6, not at {last}"
    );
    let refused = server.refused();
    assert!(refused > 0, "the climb found the server's limit");
    assert!(
        refused < 40,
        "{refused} of 120 requests refused: the width did not back off"
    );
}

#[test]
fn a_fixed_width_is_exact() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let list = url_list(dir.root(), &server, 40, |i| {
        format!("/slow/f{i}.bin?ms=100&size=10")
    });
    for mode in ["pool", "async"] {
        let done = dir
            .fetch()
            .args(["-q", "--json", "--mode", mode, "-j", "5"])
            .list_file(&list)
            .code(0);
        let summary = done.summary();
        assert_eq!(summary["jobs"], 5);
        assert_eq!(summary["width"]["setting"], "5");
    }
    assert_eq!(server.most_in_flight(), 5);
}

#[test]
fn the_descriptor_limit_is_never_a_downloads_failure() {
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    let out = dir.path().join("out");
    let list = url_list(dir.path(), &server, 600, |i| {
        format!("/slow/f{i}.bin?ms=50&size=10")
    });
    // A soft and hard limit of 256 descriptors, which -j 100000 would exhaust at once.
    let done = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 256 && exec {} --mode async -j 100000 --json -i {list} -o {}",
            env!("CARGO_BIN_EXE_fetchbench"),
            out.display()
        ))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert_eq!(listing(&out).len(), 600);
    assert!(
        stderr.contains("at most") && stderr.contains("-j 100000"),
        "the cap is said once: {stderr}"
    );
    assert_eq!(stderr.matches("-j 100000").count(), 1);
}

#[test]
fn http2_downloads_use_large_windows_and_memory_stays_bounded() {
    // A reader held to 100 KiB/s, a 96 MiB body over HTTP/2. The server may send what the
    // stream's window allows ahead of the reads: with the 64 KiB default it would stall near
    // that; the large windows let it run past 100 ms x 1 Gbit/s (12.5 MB). But the client
    // stops reading frames once 16 MiB it received are unread (vendor/h2), so the rest waits in
    // the socket buffers: the server cannot push the whole body into the client's memory,
    // however large the windows (256 MiB) are.
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fetchbench"))
        .args(["-q", "--http2", "--limit-rate", "100KiB/s", "-o"])
        .arg(dir.path())
        .arg(server.url("/fault/big.bin?size=100663296"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.body_bytes() < 12_500_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let ahead = server.body_bytes();
    // Time enough for loopback to carry the whole body, were the client reading it.
    std::thread::sleep(Duration::from_secs(1));
    let later = server.body_bytes();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        ahead >= 12_500_000,
        "the server could send only {ahead} bytes ahead"
    );
    assert!(
        later < 48 << 20,
        "the server sent {later} bytes ahead of a reader that took ~100 KiB of them"
    );
}
