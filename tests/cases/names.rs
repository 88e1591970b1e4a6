//! File names: collisions get distinct names, traversal stays inside, clobbering is explicit.

use crate::server::{TestServer, body};
use crate::util::{MODES, OutDir, listing};

#[test]
fn same_names_get_counters_in_input_order_in_every_mode() {
    let server = TestServer::http();
    for mode in MODES {
        let dir = OutDir::new();
        dir.fetch()
            .args(["--mode", mode])
            .arg(server.url("/dir/a/x.png?size=100"))
            .arg(server.url("/dir/b/x.png?size=200"))
            .arg(server.url("/dir/c/x.png?size=300"))
            .code(0);
        assert_eq!(dir.listing(), ["x-1.png", "x-2.png", "x.png"], "{mode}");
        // The server's body depends on the name only, so sizes tell the files apart.
        assert_eq!(dir.read("x.png").len(), 100, "{mode}");
        assert_eq!(dir.read("x-1.png").len(), 200, "{mode}");
        assert_eq!(dir.read("x-2.png").len(), 300, "{mode}");
    }
}

#[test]
fn traversal_attempts_stay_inside_the_output_directory() {
    let server = TestServer::http();
    let dir = OutDir::new();
    dir.fetch()
        .arg(server.url("/x/..%2F..%2Fevil"))
        .arg(server.url("/x/..%5C..%5Cevil2"))
        .arg(server.url("/x/%2E%2E"))
        .arg(server.url("/"))
        .code(0);
    assert_eq!(listing(dir.root()), ["out"]);
    assert_eq!(
        dir.listing(),
        ["evil", "evil2", "index-1.html", "index.html"]
    );
    assert!(dir.read("evil") == body("/x/..%2F..%2Fevil", 100));
}

#[test]
fn no_clobber_keeps_existing_files_and_says_so() {
    let server = TestServer::http();
    let dir = OutDir::new();
    dir.write("keep.bin", b"mine");
    dir.fetch()
        .arg("--no-clobber")
        .arg(server.url("/files/keep.bin?size=50"))
        .arg(server.url("/files/new.bin?size=50"))
        .assert()
        .code(0)
        .stderr(predicates::str::contains("already exists (--no-clobber)"));
    assert_eq!(dir.read("keep.bin"), b"mine");
    assert!(dir.served("new.bin", 50));
}

#[test]
fn without_no_clobber_a_complete_download_replaces_the_file() {
    let server = TestServer::http();
    let dir = OutDir::new();
    dir.write("r.bin", b"old");
    dir.fetch().arg(server.url("/files/r.bin?size=50")).code(0);
    assert!(dir.served("r.bin", 50));
}

#[test]
fn names_made_distinct_within_the_run_are_not_reported_as_renamed() {
    let server = TestServer::http();
    for mode in MODES {
        let dir = OutDir::new();
        // One at a time: `x.png` is on disk by the time the second URL's response names it.
        let out = dir
            .fetch()
            .args(["--mode", mode, "-j", "1"])
            .arg(server.url("/dir/a/x.png?size=100"))
            .arg(server.url("/dir/b/x.png?size=200"))
            .code(0);
        let stderr = out.stderr();
        assert!(!stderr.contains("renamed"), "{mode}: {stderr}");
        assert_eq!(dir.listing(), ["x-1.png", "x.png"], "{mode}");
    }
}
