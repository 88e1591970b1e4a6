//! Every mode saves exactly the bytes served (reported in input order with --keep-order),
//! reusing connections.

use crate::server::TestServer;
use crate::util::{MODES, OutDir};

/// Sizes around the buffer and chunk boundaries, an empty body and a 3 MiB one.
const SIZES: [usize; 6] = [0, 1, 4095, 65_537, 262_145, 3 << 20];

#[test]
fn every_mode_saves_the_exact_bytes_in_input_order() {
    let server = TestServer::http();
    for mode in MODES {
        let dir = OutDir::new();
        let urls: Vec<String> = SIZES
            .iter()
            .enumerate()
            .map(|(i, size)| server.url(&format!("/files/f{i}.bin?size={size}")))
            .collect();
        let out = dir
            .fetch()
            .args(["--keep-order", "--mode", mode, "-j", "3"])
            .args(&urls)
            .code(0);
        let stdout = String::from_utf8(out.output.stdout.clone()).unwrap();
        let expected: Vec<String> = (0..SIZES.len())
            .map(|i| dir.path().join(format!("f{i}.bin")).display().to_string())
            .collect();
        assert_eq!(stdout.lines().collect::<Vec<_>>(), expected, "mode {mode}");
        for (i, size) in SIZES.iter().enumerate() {
            let name = format!("f{i}.bin");
            assert!(dir.served(&name, *size), "{mode}: {name} differs");
        }
        assert_eq!(dir.listing().len(), SIZES.len(), "{mode}: stray files");
    }
}

#[test]
fn a_body_without_content_length_is_saved_whole() {
    let server = TestServer::http();
    let dir = OutDir::new();
    dir.fetch()
        .arg(server.url("/chunked/c.bin?size=100000"))
        .code(0);
    assert!(dir.served("c.bin", 100_000));
}

#[test]
fn pool_and_async_reuse_connections() {
    for mode in ["pool", "async", "seq"] {
        let server = TestServer::http();
        let dir = OutDir::new();
        let urls: Vec<String> = (0..60)
            .map(|i| server.url(&format!("/files/k{i}?size=2000")))
            .collect();
        dir.fetch()
            .args(["--mode", mode, "-j", "4"])
            .args(&urls)
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
        let dir = OutDir::new();
        // Older copies of two files (one small, one that takes many reads), and the `.part`
        // an interrupted run left of another.
        dir.write("old.bin", b"older contents, longer than new");
        dir.write("big.bin", b"older contents");
        dir.write("left.bin.part", b"a stale beginning");
        dir.fetch()
            .args(["--mode", mode, "-q"])
            .arg(server.url("/files/old.bin?size=10"))
            .arg(server.url("/files/big.bin?size=3000000"))
            .arg(server.url("/files/left.bin?size=3000"))
            .arg(server.url("/files/new.bin?size=20000"))
            .code(0);
        assert_eq!(
            dir.listing(),
            ["big.bin", "left.bin", "new.bin", "old.bin"],
            "{mode}"
        );
        assert!(dir.served("old.bin", 10), "{mode}");
        assert!(dir.served("big.bin", 3_000_000), "{mode}");
        assert!(dir.served("left.bin", 3000), "{mode}");
        assert!(dir.served("new.bin", 20000), "{mode}");
    }
}
