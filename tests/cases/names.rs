//! File names: collisions get distinct names, traversal stays inside, clobbering is explicit.

use tempfile::tempdir;

use crate::server::{TestServer, body};
use crate::util::{MODES, fetchbench, listing, read};

#[test]
fn same_names_get_counters_in_input_order_in_every_mode() {
    let server = TestServer::http();
    for mode in MODES {
        let dir = tempdir().unwrap();
        fetchbench()
            .args(["--mode", mode, "-o"])
            .arg(dir.path())
            .arg(server.url("/dir/a/x.png?size=100"))
            .arg(server.url("/dir/b/x.png?size=200"))
            .arg(server.url("/dir/c/x.png?size=300"))
            .assert()
            .code(0);
        assert_eq!(
            listing(dir.path()),
            ["x-1.png", "x-2.png", "x.png"],
            "{mode}"
        );
        // The server's body depends on the name only, so sizes tell the files apart.
        assert_eq!(read(dir.path(), "x.png").len(), 100, "{mode}");
        assert_eq!(read(dir.path(), "x-1.png").len(), 200, "{mode}");
        assert_eq!(read(dir.path(), "x-2.png").len(), 300, "{mode}");
    }
}

#[test]
fn traversal_attempts_stay_inside_the_output_directory() {
    let server = TestServer::http();
    let root = tempdir().unwrap();
    let dir = root.path().join("out");
    fetchbench()
        .arg("-o")
        .arg(&dir)
        .arg(server.url("/x/..%2F..%2Fevil"))
        .arg(server.url("/x/..%5C..%5Cevil2"))
        .arg(server.url("/x/%2E%2E"))
        .arg(server.url("/"))
        .assert()
        .code(0);
    assert_eq!(listing(root.path()), ["out"]);
    assert_eq!(
        listing(&dir),
        ["evil", "evil2", "index-1.html", "index.html"]
    );
    assert!(read(&dir, "evil") == body("/x/..%2F..%2Fevil", 100));
}

#[test]
fn no_clobber_keeps_existing_files_and_says_so() {
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    std::fs::write(dir.path().join("keep.bin"), b"mine").unwrap();
    fetchbench()
        .args(["--no-clobber", "-o"])
        .arg(dir.path())
        .arg(server.url("/files/keep.bin?size=50"))
        .arg(server.url("/files/new.bin?size=50"))
        .assert()
        .code(0)
        .stderr(predicates::str::contains("already exists (--no-clobber)"));
    assert_eq!(read(dir.path(), "keep.bin"), b"mine");
    assert!(read(dir.path(), "new.bin") == body("new.bin", 50));
}

#[test]
fn without_no_clobber_a_complete_download_replaces_the_file() {
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    std::fs::write(dir.path().join("r.bin"), b"old").unwrap();
    fetchbench()
        .arg("-o")
        .arg(dir.path())
        .arg(server.url("/files/r.bin?size=50"))
        .assert()
        .code(0);
    assert!(read(dir.path(), "r.bin") == body("r.bin", 50));
}

#[test]
fn names_made_distinct_within_the_run_are_not_reported_as_renamed() {
    let server = TestServer::http();
    for mode in MODES {
        let dir = tempdir().unwrap();
        // One at a time: `x.png` is on disk by the time the second URL's response names it.
        let out = fetchbench()
            .args(["--mode", mode, "-j", "1", "-o"])
            .arg(dir.path())
            .arg(server.url("/dir/a/x.png?size=100"))
            .arg(server.url("/dir/b/x.png?size=200"))
            .assert()
            .code(0);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(!stderr.contains("renamed"), "{mode}: {stderr}");
        assert_eq!(listing(dir.path()), ["x-1.png", "x.png"], "{mode}");
    }
}
