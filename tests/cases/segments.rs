//! `-s N`: one file as N ranges at once, each resumed alone; the `.part` never lies.

use std::time::Duration;

use crate::server::{TestServer, body};
use crate::util::{MODES, OutDir};

const MIB: usize = 1 << 20;

#[test]
fn segments_fetch_ranges_and_write_them_in_place_in_every_mode() {
    for mode in MODES {
        let server = TestServer::http();
        let dir = OutDir::new();
        dir.fetch()
            .args(["--mode", mode, "-s", "4"])
            .arg(server.url(&format!("/fault/seg.bin?size={}", 4 * MIB + 3)))
            .code(0);
        assert!(dir.served("seg.bin", 4 * MIB + 3), "{mode}");
        assert_eq!(dir.listing(), ["seg.bin"]);
        let mut ranges: Vec<String> = server.ranges().into_iter().map(|(r, _)| r).collect();
        ranges.sort();
        // Boundaries at k × 4194307 / 4, rounded down.
        let expected = [
            "bytes=0-",
            "bytes=1048576-2097152",
            "bytes=2097153-3145729",
            "bytes=3145730-4194306",
        ];
        assert_eq!(ranges, expected, "{mode}");
    }
}

#[test]
fn a_cut_segment_resumes_alone() {
    let server = TestServer::http();
    let dir = OutDir::new();
    dir.fetch()
        .args(["-s", "4", "--retry-delay", "10ms", "--json"])
        .arg(server.url(&format!(
            "/fault/cut.bin?size={}&drop_after=500000",
            4 * MIB
        )))
        .code(0);
    assert!(dir.served("cut.bin", 4 * MIB));
    let ranges: Vec<String> = server.ranges().into_iter().map(|(r, _)| r).collect();
    assert_eq!(ranges.len(), 5, "{ranges:?}");
    // The first segment's retry asks for the rest of that segment only, with If-Range.
    let retry = &server.ranges()[4];
    assert!(
        retry.0.starts_with("bytes=") && retry.0.ends_with("-1048575"),
        "{retry:?}"
    );
    assert_eq!(retry.1, "\"cut.bin-stable\"");
}

#[test]
fn a_failed_segmented_download_keeps_only_its_good_prefix_for_continue() {
    let server = TestServer::http();
    let dir = OutDir::new();
    // The last of four segments stalls at once; the first three complete. (The stall timeout
    // also bounds the wait for each response head, now reported apart as a header timeout: 2 s
    // leaves a loaded machine time to answer the segments' requests.)
    dir.fetch()
        .args(["-s", "4", "--retries", "0", "--stall-timeout", "2s"])
        .arg(server.url(&format!(
            "/fault/p.bin?size={}&stall_after={}",
            4 * MIB,
            3 * MIB
        )))
        .timeout(Duration::from_secs(20))
        .assert()
        .code(1)
        .stderr(predicates::str::contains("stall timeout"));
    assert_eq!(dir.listing(), ["p.bin.part", "p.bin.part.fbstate"]);
    let part = dir.read("p.bin.part");
    assert_eq!(
        part.len(),
        3 * MIB,
        "the part must hold exactly the good prefix"
    );
    assert!(part == body("p.bin", 4 * MIB)[..3 * MIB]);

    dir.fetch()
        .arg("-c")
        .arg(server.url(&format!("/fault/p.bin?size={}", 4 * MIB)))
        .code(0);
    assert!(dir.served("p.bin", 4 * MIB));
    assert_eq!(
        server.ranges().last().unwrap().0,
        format!("bytes={}-", 3 * MIB)
    );
}

#[test]
fn small_files_and_servers_without_ranges_are_fetched_whole() {
    let server = TestServer::http();
    let dir = OutDir::new();
    dir.fetch()
        .args(["-s", "8"])
        .arg(server.url("/fault/small.bin?size=5000"))
        .arg(server.url(&format!("/fault/norange.bin?size={}&no_range=1", 3 * MIB)))
        .code(0);
    assert!(dir.served("small.bin", 5000));
    assert!(dir.served("norange.bin", 3 * MIB));
    assert_eq!(server.ranges().len(), 2, "one request each");
}

#[test]
fn over_http2_each_segment_has_a_connection_of_its_own() {
    // One client would carry every segment as a stream of one HTTP/2 connection, which a
    // per-connection rate limit caps as a whole: segments must not share it.
    let server = TestServer::https();
    let dir = OutDir::new();
    dir.fetch()
        .args(["--cacert", crate::server::CERT, "-s", "4"])
        .arg(server.url(&format!("/fault/h2seg.bin?size={}", 4 * MIB)))
        .code(0);
    assert!(dir.served("h2seg.bin", 4 * MIB));
    assert_eq!(server.ranges().len(), 4);
    assert!(
        server
            .seen()
            .iter()
            .all(|s| s.version == axum::http::Version::HTTP_2),
        "HTTP/2 by ALPN"
    );
    assert_eq!(server.connections(), 4, "a connection per segment");
}
