//! What requests carry: credentials (`-u`, `--netrc`) only to the hosts given, never across a
//! redirect to another origin; `--compressed`; `--max-redirs`.

use axum::http::header;
use tempfile::tempdir;

use crate::server::{TestServer, compressible};
use crate::util::{MODES, OutDir, fetchbench};

/// `Basic base64("alice:s3cret")`.
const ALICE: &str = "Basic YWxpY2U6czNjcmV0";
/// `Basic base64("anon:guest")`.
const ANON: &str = "Basic YW5vbjpndWVzdA==";

/// The Authorization header of each request `server` received, by path.
fn authorizations(server: &TestServer) -> Vec<(String, Option<String>)> {
    server
        .seen()
        .iter()
        .map(|seen| {
            let path = seen.uri.split('?').next().unwrap_or_default().to_owned();
            let auth = seen
                .headers
                .get(header::AUTHORIZATION)
                .map(|v| v.to_str().unwrap().to_owned());
            (path, auth)
        })
        .collect()
}

fn sorted(mut v: Vec<(String, Option<String>)>) -> Vec<(String, Option<String>)> {
    v.sort();
    v
}

#[test]
fn user_goes_to_the_hosts_given_and_not_across_a_redirect_to_another() {
    for mode in MODES {
        let a = TestServer::http();
        let b = TestServer::http();
        let dir = OutDir::new();
        // Same host, another port: another origin.
        let elsewhere = b.url("/files/moved?size=20");
        dir.fetch()
            .args(["--mode", mode, "-u", "alice:s3cret"])
            .arg(a.url("/files/direct?size=10"))
            .arg(a.url(&format!("/to?url={elsewhere}")))
            .arg(a.url("/redirect/0"))
            .code(0);
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            sorted(authorizations(&a)),
            [
                ("/files/direct".to_owned(), some(ALICE)),
                // A redirect within the origin keeps them (as curl).
                ("/files/landed.bin".to_owned(), some(ALICE)),
                ("/redirect/0".to_owned(), some(ALICE)),
                ("/to".to_owned(), some(ALICE)),
            ],
            "{mode}"
        );
        assert_eq!(
            authorizations(&b),
            [("/files/moved".to_owned(), None)],
            "{mode}: credentials leaked across a redirect"
        );
        assert!(dir.served("moved", 20), "{mode}");
    }
}

#[test]
fn netrc_gives_credentials_to_the_matching_machine_only() {
    let a = TestServer::http();
    let b = TestServer::http();
    let home = tempdir().unwrap();
    // Both servers are on 127.0.0.1: `a` is reached by the name `localhost`, `b` by address.
    let a_url = |path: &str| a.url(path).replace("127.0.0.1", "localhost");
    let elsewhere = b.url("/files/moved?size=20");
    let urls = [
        a_url("/files/mine?size=10"),
        b.url("/files/theirs?size=10"),
        a_url(&format!("/to?url={elsewhere}")),
    ];
    let run = |netrc: &str, how: &[&str]| {
        std::fs::write(home.path().join(".netrc"), netrc).unwrap();
        let (before_a, before_b) = (a.requests(), b.requests());
        let dir = OutDir::new();
        dir.fetch()
            .env("HOME", home.path())
            .args(how)
            .args(&urls)
            .code(0);
        // This run's requests only.
        (
            sorted(authorizations(&a)[before_a..].to_vec()),
            sorted(authorizations(&b)[before_b..].to_vec()),
        )
    };
    let some = |s: &str| Some(s.to_owned());
    let netrc_file = home.path().join(".netrc");
    let netrc_file = netrc_file.to_str().unwrap();

    // Only `localhost` has an entry: `b` gets nothing, directly or by redirect.
    let (seen_a, seen_b) = run(
        "machine example.com login bob password x\nmachine localhost login alice password s3cret\n",
        &["--netrc"],
    );
    assert_eq!(
        seen_a,
        [
            ("/files/mine".to_owned(), some(ALICE)),
            ("/to".to_owned(), some(ALICE))
        ]
    );
    assert_eq!(
        seen_b,
        [
            ("/files/moved".to_owned(), None),
            ("/files/theirs".to_owned(), None)
        ]
    );

    // With a `default` entry, `b` asked directly gets it; reached by a redirect from `a`, it
    // still gets nothing (neither `a`'s credentials nor the default).
    let (seen_a, seen_b) = run(
        "machine localhost login alice password s3cret\ndefault login anon password guest\n",
        &["--netrc-file", netrc_file],
    );
    assert_eq!(
        seen_a,
        [
            ("/files/mine".to_owned(), some(ALICE)),
            ("/to".to_owned(), some(ALICE))
        ]
    );
    assert_eq!(
        seen_b,
        [
            ("/files/moved".to_owned(), None),
            ("/files/theirs".to_owned(), some(ANON))
        ]
    );

    // Without --netrc the file is not read.
    let (seen_a, seen_b) = run("default login anon password guest\n", &[]);
    assert!(seen_a.iter().all(|(_, auth)| auth.is_none()), "{seen_a:?}");
    assert!(seen_b.iter().all(|(_, auth)| auth.is_none()), "{seen_b:?}");
}

#[test]
fn a_missing_netrc_file_is_a_usage_error_naming_it() {
    fetchbench()
        .args(["--netrc-file", "/nonexistent/netrc", "http://127.0.0.1:9/x"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "cannot read netrc file /nonexistent/netrc",
        ));
    fetchbench()
        .args(["-u", "nocolon", "http://127.0.0.1:9/x"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("expected USER:PASS"));
}

/// Whether this build decodes (`--compressed`, the `compressed` feature). Without the feature,
/// `--compressed` must be a usage error that says so; the decoding tests then check that.
fn decoders_built_in() -> bool {
    if fetchbench::COMPRESSED {
        return true;
    }
    fetchbench()
        .args(["--compressed", "http://127.0.0.1:9/x"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("built without its decoders"));
    false
}

#[test]
fn compressed_saves_the_decoded_body_and_asks_for_no_ranges() {
    if !decoders_built_in() {
        return;
    }
    for mode in MODES {
        let server = TestServer::http();
        let dir = OutDir::new();
        // Encoded, the body is far shorter than decoded: a Content-Length check on the decoded
        // bytes would fail it. -s 4 would ask for a range without --compressed.
        dir.fetch()
            .args(["--mode", mode, "--compressed", "-s", "4"])
            .arg(server.url("/encoded/z.bin?size=3000000"))
            .code(0);
        assert!(
            dir.read("z.bin") == compressible("z.bin", 3_000_000),
            "{mode}: the file on disk is not the decoded body"
        );
        let seen = server.seen();
        assert_eq!(seen.len(), 1, "{mode}");
        let accept = seen[0].headers[header::ACCEPT_ENCODING].to_str().unwrap();
        for coding in ["gzip", "br", "zstd"] {
            assert!(accept.contains(coding), "{mode}: {accept}");
        }
        assert!(seen[0].headers.get(header::RANGE).is_none(), "{mode}");
    }
}

#[test]
fn compressed_decodes_brotli_and_zstd_too() {
    if !decoders_built_in() {
        return;
    }
    let server = TestServer::http();
    let dir = OutDir::new();
    dir.fetch()
        .arg("--compressed")
        .arg(server.url("/encoded/b.bin?size=200000&coding=br&force=1"))
        .arg(server.url("/encoded/z.bin?size=200000&coding=zstd&force=1"))
        .code(0);
    assert!(dir.read("b.bin") == compressible("b.bin", 200_000));
    assert!(dir.read("z.bin") == compressible("z.bin", 200_000));
}

#[test]
fn without_compressed_nothing_is_asked_for_or_decoded() {
    let server = TestServer::http();
    let dir = OutDir::new();
    dir.fetch()
        .arg(server.url("/encoded/plain.bin?size=5000"))
        .arg(server.url("/encoded/forced.gz?size=5000&force=1"))
        .code(0);
    for seen in server.seen() {
        assert!(
            seen.headers.get(header::ACCEPT_ENCODING).is_none(),
            "{seen:?}"
        );
    }
    assert!(dir.read("plain.bin") == compressible("plain.bin", 5000));
    // Sent gzip anyway: saved as sent (and checked against its Content-Length).
    let forced = dir.read("forced.gz");
    assert_eq!(&forced[..2], [0x1f, 0x8b], "not the gzip bytes");
    assert!(forced.len() < 5000);
}

#[test]
fn max_redirs_limits_the_redirects_followed() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let fetch = |max: &str, url: String| {
        let out = dir.fetch().args(["--max-redirs", max]).arg(url).assert();
        let code = out.get_output().status.code();
        (
            code,
            String::from_utf8_lossy(&out.get_output().stderr).into_owned(),
        )
    };
    // /redirect/2 is three redirects: 2 → 1 → 0 → the file.
    assert_eq!(fetch("3", server.url("/redirect/2")).0, Some(0));
    let (code, stderr) = fetch("2", server.url("/redirect/2"));
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("too many redirects (more than 2)"),
        "{stderr}"
    );
    let before = server.requests();
    let (code, stderr) = fetch("0", server.url("/redirect/0"));
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("too many redirects (--max-redirs 0 follows none)"),
        "{stderr}"
    );
    assert_eq!(server.requests() - before, 1, "a redirect was followed");
}
