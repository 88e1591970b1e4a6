//! `--load-cookies` and `--save-cookies`: the Netscape cookie-jar format, cookies sent only
//! where domain and path say, and what servers set written back, in every kind of mode.

use tempfile::tempdir;

use crate::server::TestServer;
use crate::util::{OutDir, fetchbench};

/// The Cookie header of each request the server saw, in order ("-" for none).
fn cookies_seen(server: &TestServer) -> Vec<String> {
    server
        .seen()
        .iter()
        .map(|seen| match seen.headers.get("cookie") {
            Some(value) => value.to_str().unwrap().to_owned(),
            None => "-".to_owned(),
        })
        .collect()
}

#[test]
fn loaded_cookies_go_only_where_domain_path_and_secure_say() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let jar = dir.root().join("cookies.txt");
    std::fs::write(
        &jar,
        "# Netscape HTTP Cookie File\n\
         127.0.0.1\tFALSE\t/files\tFALSE\t0\tfiles\tyes\n\
         #HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t0\troot\tr00t\n\
         127.0.0.1\tFALSE\t/other\tFALSE\t0\tother\tno\n\
         .example.com\tTRUE\t/\tFALSE\t0\telsewhere\tno\n",
    )
    .unwrap();
    let out = dir
        .fetch()
        .args(["-j", "1", "-v", "--load-cookies"])
        .arg(&jar)
        .arg(server.url("/files/a.bin"))
        .arg(server.url("/dir/x/b.bin"))
        .code(0);
    let stderr = out.stderr();
    assert_eq!(stderr.matches("> cookie: ***\n").count(), 2, "{stderr}");
    assert!(!stderr.contains("r00t"), "{stderr}");
    // Longer paths first. (Secure cookies are covered by the unit tests: 127.0.0.1 is a
    // secure context, as in browsers, so it gets them over http too.)
    assert_eq!(cookies_seen(&server), ["files=yes; root=r00t", "root=r00t"]);
}

#[test]
fn cookies_servers_set_are_sent_later_in_the_run_and_saved_in_every_mode() {
    for mode in ["pool", "procs", "spawn"] {
        let server = TestServer::http();
        let dir = OutDir::new();
        let load = dir.root().join("in.txt");
        std::fs::write(&load, "127.0.0.1\tFALSE\t/\tFALSE\t0\tkept\t1\n").unwrap();
        let save = dir.root().join("out.txt");
        std::fs::write(&save, "an older file, replaced whole\n").unwrap();
        let set = "set=sid%3Dabc%3B%20Path%3D%2F&set=gone%3Dx%3B%20Max-Age%3D0";
        dir.fetch()
            .args(["-j", "1", "--mode", mode, "--load-cookies"])
            .arg(&load)
            .arg("--save-cookies")
            .arg(&save)
            .arg(server.url(&format!("/cookie/c.bin?{set}")))
            .arg(server.url("/files/after.bin"))
            .code(0);
        let seen = cookies_seen(&server);
        assert_eq!(seen[0], "kept=1", "{mode}");
        if mode != "spawn" {
            // One worker for both: it keeps what the server set (a spawn child is new).
            let mut sent: Vec<&str> = seen[1].split("; ").collect();
            sent.sort();
            assert_eq!(sent, ["kept=1", "sid=abc"], "{mode}");
        }
        let saved = std::fs::read_to_string(&save).unwrap();
        assert!(
            saved.starts_with("# Netscape HTTP Cookie File\n"),
            "{mode}: {saved}"
        );
        let lines: Vec<&str> = saved
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect();
        assert_eq!(
            lines,
            [
                "127.0.0.1\tFALSE\t/\tFALSE\t0\tkept\t1",
                "127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\tabc",
            ],
            "{mode}"
        );
    }
}

#[test]
fn a_malformed_cookie_file_is_a_usage_error_naming_its_line() {
    let dir = tempdir().unwrap();
    let jar = dir.path().join("bad.txt");
    std::fs::write(&jar, "# ok\n127.0.0.1\tFALSE\t/\tFALSE\tsoon\ta\tb\n").unwrap();
    fetchbench()
        .arg("--load-cookies")
        .arg(&jar)
        .arg("http://127.0.0.1:9/x")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("bad.txt:2: bad expiry \"soon\""));
}
