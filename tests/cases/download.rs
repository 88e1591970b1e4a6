//! Every mode saves exactly the bytes served (reported in input order with --keep-order),
//! reusing connections.

use tempfile::tempdir;

use crate::server::{TestServer, body};
use crate::util::{MODES, fetchbench, listing, read};

/// Sizes around the buffer and chunk boundaries, an empty body and a 3 MiB one.
const SIZES: [usize; 6] = [0, 1, 4095, 65_537, 262_145, 3 << 20];

#[test]
fn every_mode_saves_the_exact_bytes_in_input_order() {
    let server = TestServer::http();
    for mode in MODES {
        let dir = tempdir().unwrap();
        let urls: Vec<String> = SIZES
            .iter()
            .enumerate()
            .map(|(i, size)| server.url(&format!("/files/f{i}.bin?size={size}")))
            .collect();
        let out = fetchbench()
            .args(["--keep-order", "--mode", mode, "-j", "3", "-o"])
            .arg(dir.path())
            .args(&urls)
            .assert()
            .code(0);
        let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        let expected: Vec<String> = (0..SIZES.len())
            .map(|i| dir.path().join(format!("f{i}.bin")).display().to_string())
            .collect();
        assert_eq!(stdout.lines().collect::<Vec<_>>(), expected, "mode {mode}");
        for (i, size) in SIZES.iter().enumerate() {
            let name = format!("f{i}.bin");
            assert!(
                read(dir.path(), &name) == body(&name, *size),
                "{mode}: {name} differs"
            );
        }
        assert_eq!(
            listing(dir.path()).len(),
            SIZES.len(),
            "{mode}: stray files"
        );
    }
}

#[test]
fn a_body_without_content_length_is_saved_whole() {
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    fetchbench()
        .arg("-o")
        .arg(dir.path())
        .arg(server.url("/chunked/c.bin?size=100000"))
        .assert()
        .code(0);
    assert!(read(dir.path(), "c.bin") == body("c.bin", 100_000));
}

#[test]
fn pool_and_async_reuse_connections() {
    for mode in ["pool", "async", "seq"] {
        let server = TestServer::http();
        let dir = tempdir().unwrap();
        let urls: Vec<String> = (0..60)
            .map(|i| server.url(&format!("/files/k{i}?size=2000")))
            .collect();
        fetchbench()
            .args(["--mode", mode, "-j", "4", "-o"])
            .arg(dir.path())
            .args(&urls)
            .assert()
            .code(0);
        assert_eq!(server.requests(), 60);
        // One connection per worker; hyper may open one more when a request starts in the
        // instant before the previous one's connection is back in the pool.
        let limit = if mode == "seq" { 1 } else { 8 };
        assert!(
            server.connections() <= limit,
            "{mode}: {} connections for 60 requests",
            server.connections()
        );
    }
}

#[test]
fn existing_files_are_replaced_whole_and_stale_parts_are_consumed() {
    let server = TestServer::http();
    for mode in MODES {
        let dir = tempdir().unwrap();
        // Older copies of two files (one small, one that takes many reads), and the `.part`
        // an interrupted run left of another.
        std::fs::write(
            dir.path().join("old.bin"),
            b"older contents, longer than new",
        )
        .unwrap();
        std::fs::write(dir.path().join("big.bin"), b"older contents").unwrap();
        std::fs::write(dir.path().join("left.bin.part"), b"a stale beginning").unwrap();
        fetchbench()
            .args(["--mode", mode, "-q", "-o"])
            .arg(dir.path())
            .arg(server.url("/files/old.bin?size=10"))
            .arg(server.url("/files/big.bin?size=3000000"))
            .arg(server.url("/files/left.bin?size=3000"))
            .arg(server.url("/files/new.bin?size=20000"))
            .assert()
            .code(0);
        assert_eq!(
            listing(dir.path()),
            ["big.bin", "left.bin", "new.bin", "old.bin"],
            "{mode}"
        );
        assert!(read(dir.path(), "old.bin") == body("old.bin", 10), "{mode}");
        assert!(
            read(dir.path(), "big.bin") == body("big.bin", 3_000_000),
            "{mode}"
        );
        assert!(
            read(dir.path(), "left.bin") == body("left.bin", 3000),
            "{mode}"
        );
        assert!(
            read(dir.path(), "new.bin") == body("new.bin", 20000),
            "{mode}"
        );
    }
}
