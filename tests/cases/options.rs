//! Everyday options: each changes what the server sees, or what is written.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use axum::http::Version;

use crate::server::{CERT, TestServer, body};
use crate::util::{MODES, OutDir, fetchbench};

/// An address where nothing listens: reachable only through a proxy.
fn closed_port_url(path: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}{path}")
}

#[test]
fn headers_and_user_agent_reach_the_server() {
    let server = TestServer::http();
    let dir = OutDir::new();
    dir.fetch()
        .args(["-H", "X-Token: abc 123", "-H", "X-Two:2", "-A", "agent/7"])
        .arg(server.url("/files/h?size=1"))
        .code(0);
    let headers = &server.seen()[0].headers;
    assert_eq!(headers["x-token"], "abc 123");
    assert_eq!(headers["x-two"], "2");
    assert_eq!(headers["user-agent"], "agent/7");
}

#[test]
fn a_bad_header_is_a_usage_error() {
    fetchbench()
        .args(["-H", "no colon here", "http://127.0.0.1:9/x"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("not of the form \"Name: value\""));
}

#[test]
fn the_proxy_receives_the_requests() {
    let proxy = TestServer::http();
    let dir = OutDir::new();
    let target = closed_port_url("/files/via.bin?size=300");
    dir.fetch()
        .args(["--proxy", &proxy.url("")])
        .arg(&target)
        .code(0);
    assert_eq!(
        proxy.seen()[0].uri,
        target,
        "the proxy got the absolute URI"
    );
    assert!(dir.served("via.bin", 300));
}

#[test]
fn proxy_variables_are_used_and_noproxy_overrides_no_proxy() {
    let proxy = TestServer::http();
    let target = closed_port_url("/files/env.bin?size=10");
    let run = |extra: &[&str], no_proxy: &str| {
        let dir = OutDir::new();
        let mut cmd = dir.fetch();
        cmd.env("HTTP_PROXY", proxy.url(""))
            .env("NO_PROXY", no_proxy)
            .env_remove("http_proxy")
            .env_remove("no_proxy")
            .args(["--retries", "0"])
            .args(extra)
            .arg(&target);
        cmd.output().unwrap().status.code()
    };
    assert_eq!(run(&[], ""), Some(0), "HTTP_PROXY is used");
    assert_eq!(proxy.requests(), 1);
    assert_eq!(
        run(&[], "127.0.0.1"),
        Some(1),
        "NO_PROXY bypasses it (and nothing listens)"
    );
    assert_eq!(proxy.requests(), 1);
    assert_eq!(run(&["--noproxy", "example.test"], "127.0.0.1"), Some(0));
    assert_eq!(proxy.requests(), 2, "--noproxy replaced NO_PROXY");
    assert_eq!(run(&["--noproxy", "*"], ""), Some(1));
    assert_eq!(proxy.requests(), 2, "--noproxy '*' bypasses every host");
}

#[test]
fn insecure_accepts_any_certificate_and_says_so() {
    let server = TestServer::https();
    let dir = OutDir::new();
    dir.fetch()
        .arg("--insecure")
        .arg(server.url("/files/i.bin?size=100"))
        .assert()
        .code(0)
        .stderr(predicates::str::contains(
            "--insecure: TLS certificates were NOT checked",
        ));
    assert!(dir.served("i.bin", 100));
}

#[test]
fn http_versions_can_be_chosen() {
    let plain = TestServer::http();
    let tls = TestServer::https();
    let dir = OutDir::new();
    let fetch = |args: &[&str], url: String| {
        dir.fetch()
            .args(["--cacert", CERT])
            .args(args)
            .arg(url)
            .code(0);
    };
    fetch(&["--http2"], plain.url("/files/a?size=10"));
    fetch(&[], plain.url("/files/b?size=10"));
    fetch(&[], tls.url("/files/c?size=10"));
    fetch(&["--http1.1"], tls.url("/files/d?size=10"));
    let versions: Vec<Version> = plain
        .seen()
        .iter()
        .chain(&tls.seen())
        .map(|s| s.version)
        .collect();
    assert_eq!(
        versions,
        [
            Version::HTTP_2,
            Version::HTTP_11,
            Version::HTTP_2,
            Version::HTTP_11
        ]
    );
}

#[test]
fn limit_rate_caps_the_whole_run() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let started = Instant::now();
    dir.fetch()
        .args(["--limit-rate", "200KB/s", "-j", "3"])
        .arg(server.url("/files/r1?size=100000"))
        .arg(server.url("/files/r2?size=100000"))
        .arg(server.url("/files/r3?size=100000"))
        .code(0);
    // 300 kB at 200 kB/s: 1.5 s at least (a lower bound; the machine may be slower).
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
    assert!(dir.served("r3", 100_000));
}

#[test]
fn max_per_host_caps_connections_to_a_host_in_every_mode() {
    for mode in MODES {
        let server = TestServer::http();
        let dir = OutDir::new();
        let urls: Vec<String> = (0..6)
            .map(|i| server.url(&format!("/slow/m{i}?size=10&ms=150")))
            .collect();
        dir.fetch()
            .args(["--mode", mode, "-j", "8", "--max-per-host", "2"])
            .args(&urls)
            .code(0);
        let expected = if mode == "seq" { 1 } else { 2 };
        assert_eq!(server.most_in_flight(), expected, "{mode}");
        assert_eq!(dir.listing().len(), 6);
    }
}

#[test]
fn wait_spaces_out_the_starts() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let urls: Vec<String> = (0..4)
        .map(|i| server.url(&format!("/files/w{i}?size=10")))
        .collect();
    dir.fetch()
        .args(["--wait", "200ms", "-j", "4"])
        .args(&urls)
        .code(0);
    let times: Vec<Instant> = server.seen().iter().map(|s| s.at).collect();
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(180), "starts {gap:?} apart");
    }
}

#[test]
fn the_url_list_may_name_each_file() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let list = format!(
        "{}\tfirst name.bin\n{} out=second.bin\n{} out=../../second.bin\n",
        server.url("/files/a?size=10"),
        server.url("/files/b?size=20"),
        server.url("/files/c?size=30"),
    );
    dir.fetch().list(list).code(0);
    assert_eq!(
        dir.listing(),
        ["first name.bin", "second-1.bin", "second.bin"]
    );
    assert!(dir.read("first name.bin") == body("a", 10));
    assert!(dir.read("second.bin") == body("b", 20));
    assert!(dir.read("second-1.bin") == body("c", 30));
}
