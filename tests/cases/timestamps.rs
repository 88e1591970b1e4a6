//! The saved file's mtime is the server's Last-Modified (wget's default, curl -R), and `-N`
//! asks with If-Modified-Since and keeps the file on 304, as wget -N.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::server::{TestServer, body};
use crate::util::OutDir;

/// 2021-01-01T00:00:00Z and a day later.
const OLD: u64 = 1_609_459_200;
const NEWER: u64 = OLD + 86_400;

fn mtime(path: &std::path::Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn a_saved_file_takes_the_server_last_modified_unless_told_not_to() {
    let server = TestServer::http();
    let dir = OutDir::new();
    for mode in ["pool", "procs"] {
        dir.fetch()
            .args(["-q", "--mode", mode])
            .arg(server.url(&format!("/dated/{mode}.bin?lm={OLD}&size=3000")))
            .code(0);
        let path = dir.path().join(format!("{mode}.bin"));
        assert_eq!(
            mtime(&path),
            UNIX_EPOCH + Duration::from_secs(OLD),
            "{mode}"
        );
    }
    dir.fetch()
        .args(["-q", "--no-use-server-timestamps"])
        .arg(server.url(&format!("/dated/now.bin?lm={OLD}")))
        .code(0);
    let age = SystemTime::now().duration_since(mtime(&dir.file("now.bin")));
    assert!(
        age.clone().unwrap_or_default() < Duration::from_secs(60),
        "{age:?}"
    );
}

#[test]
fn timestamping_keeps_an_unchanged_file_on_304_and_fetches_a_newer_one() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let path = dir.file("t.bin");
    let run = |lm: u64, mode: &str| {
        let out = dir
            .fetch()
            .args(["-N", "--json", "--mode", mode])
            .arg(server.url(&format!("/dated/t.bin?lm={lm}&size=2000")))
            .code(0);
        out.json()
    };
    // No file yet: a plain GET.
    let lines = run(OLD, "pool");
    assert_eq!(lines[0]["status"], "ok");
    assert!(server.seen()[0].headers.get("if-modified-since").is_none());
    // Unchanged: asked with its mtime, 304, kept and counted as skipped (in a worker too).
    std::fs::write(&path, b"local edit, same mtime").unwrap();
    let stamp = std::fs::File::options().write(true).open(&path).unwrap();
    stamp
        .set_modified(UNIX_EPOCH + Duration::from_secs(OLD))
        .unwrap();
    for mode in ["pool", "procs"] {
        let lines = run(OLD, mode);
        assert_eq!(lines[0]["status"], "skipped", "{mode}");
        assert_eq!(lines[0]["http_status"], 304, "{mode}");
        assert_eq!(lines[1]["skipped"], 1, "{mode}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"local edit, same mtime",
            "{mode}"
        );
    }
    let asked = server.seen()[1].headers["if-modified-since"].clone();
    assert_eq!(asked, "Fri, 01 Jan 2021 00:00:00 GMT");
    // Newer on the server: fetched again, with the new date.
    let lines = run(NEWER, "pool");
    assert_eq!(lines[0]["status"], "ok");
    assert_eq!(std::fs::read(&path).unwrap(), body("t.bin", 2000));
    assert_eq!(mtime(&path), UNIX_EPOCH + Duration::from_secs(NEWER));
}
