//! A failing URL fails alone, with a clear message and exit 1; nothing partial keeps its name.

use std::net::TcpListener;

use crate::server::{TestServer, body};
use crate::util::{MODES, OutDir};

/// A port with nothing listening on it.
fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/nothing-here.bin")
}

#[test]
fn failures_are_reported_and_the_others_still_land() {
    let server = TestServer::http();
    for mode in MODES {
        let dir = OutDir::new();
        let out = dir
            .fetch()
            .args(["--mode", mode, "--retries", "0"])
            .arg(server.url("/files/a.bin?size=5000"))
            .arg(server.url("/status/404"))
            .arg(refused_url())
            .arg(server.url("/status/500"))
            .arg(server.url("/files/b.bin?size=7000"))
            .code(1);
        let stderr = out.stderr();
        assert!(stderr.contains("HTTP 404 Not Found"), "{mode}: {stderr}");
        assert!(
            stderr.contains("HTTP 500 Internal Server Error"),
            "{mode}: {stderr}"
        );
        assert!(stderr.contains("cannot connect"), "{mode}: {stderr}");
        assert!(stderr.contains("/nothing-here.bin"), "{mode}: {stderr}");
        assert!(stderr.contains("2 ok, 3 failed"), "{mode}: {stderr}");
        assert_eq!(dir.listing(), ["a.bin", "b.bin"], "{mode}");
        assert!(dir.served("a.bin", 5000));
        assert!(dir.served("b.bin", 7000));
    }
}

#[test]
fn a_cut_body_never_takes_the_final_name_and_the_old_file_stays() {
    let server = TestServer::http();
    let dir = OutDir::new();
    dir.write("cut.bin", b"previous contents");
    let out = dir
        .fetch()
        .args(["--retries", "1", "--retry-delay", "10ms"])
        .arg(server.url("/truncated/cut.bin?size=100000"))
        .arg(server.url("/files/fine.bin?size=10"))
        .code(1);
    let stderr = out.stderr();
    assert!(
        stderr.contains("body ended after 50000 of 100000 bytes"),
        "{stderr}"
    );
    assert!(stderr.contains("partial kept"), "{stderr}");
    assert_eq!(
        dir.listing(),
        [
            "cut.bin",
            "cut.bin.part",
            "cut.bin.part.fbstate",
            "fine.bin"
        ]
    );
    assert_eq!(dir.read("cut.bin"), b"previous contents");
    // The route ignores Range, so the retry started over: the part holds the first half.
    assert!(dir.read("cut.bin.part") == body("cut.bin", 100_000)[..50_000]);
}

#[test]
fn redirect_chains_are_followed_and_loops_fail() {
    let server = TestServer::http();
    for mode in MODES {
        let dir = OutDir::new();
        let out = dir
            .fetch()
            .args(["--mode", mode])
            .arg(server.url("/redirect/5"))
            .arg(server.url("/loop"))
            .code(1);
        let stderr = out.stderr();
        assert!(stderr.contains("too many redirects"), "{mode}: {stderr}");
        assert_eq!(dir.listing(), ["landed.bin"], "{mode}");
        assert!(dir.served("landed.bin", 1234));
    }
}

#[test]
fn eleven_redirects_are_too_many_but_ten_are_fine() {
    let server = TestServer::http();
    let dir = OutDir::new();
    // /redirect/9 is ten redirects: 9 → … → 0 → the file.
    dir.fetch().arg(server.url("/redirect/9")).code(0);
    dir.fetch()
        .arg(server.url("/redirect/10"))
        .assert()
        .code(1)
        .stderr(predicates::str::contains("too many redirects"));
}
