//! HTTPS against a self-signed certificate.

use crate::server::{CERT, ONELINER_CERT, ONELINER_KEY, OTHER_CERT, OTHER_KEY, TestServer};
use crate::util::{OutDir, fetchbench};

#[test]
fn https_works_with_cacert_in_every_mode() {
    let server = TestServer::https();
    for mode in crate::util::MODES {
        let dir = OutDir::new();
        dir.fetch()
            .args(["--mode", mode, "--cacert", CERT])
            .arg(server.url("/files/secure.bin?size=70000"))
            .code(0);
        assert!(dir.served("secure.bin", 70_000), "{mode}");
    }
}

#[test]
fn https_refuses_an_untrusted_certificate() {
    let server = TestServer::https();
    let dir = OutDir::new();
    let out = dir
        .fetch()
        .arg(server.url("/files/secure.bin?size=10"))
        .code(1);
    let stderr = out.stderr();
    assert!(
        stderr.contains(
            "TLS: the server's certificate is not signed by a trusted authority (self-signed? \
             use --cacert FILE with it)"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("Other("), "no Debug text: {stderr}");
    assert!(
        !stderr.contains("retry"),
        "a certificate error is not transient: {stderr}"
    );
    assert_eq!(server.requests(), 0);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_missing_cacert_file_is_a_usage_error() {
    fetchbench()
        .args(["--cacert", "/nonexistent/ca.pem", "https://127.0.0.1:9/x"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "cannot read CA certificate /nonexistent/ca.pem",
        ));
}

#[test]
fn the_one_liner_self_signed_certificate_is_trusted_with_cacert() {
    let server = TestServer::https_with(ONELINER_CERT, ONELINER_KEY);
    for mode in ["pool", "procs"] {
        let dir = OutDir::new();
        dir.fetch()
            .args(["--mode", mode, "--cacert", ONELINER_CERT])
            .arg(server.url("/files/own.bin?size=5000"))
            .code(0);
        assert!(dir.served("own.bin", 5000), "{mode}");
    }
    // Without it: refused, in words.
    let dir = OutDir::new();
    let out = dir
        .fetch()
        .arg(server.url("/files/own.bin?size=5000"))
        .code(1);
    let stderr = out.stderr();
    assert!(stderr.contains("use --cacert"), "{stderr}");
    assert!(!stderr.contains("CaUsedAsEndEntity"), "{stderr}");
}

#[test]
fn a_trusted_certificate_for_another_name_is_still_refused() {
    let server = TestServer::https_with(OTHER_CERT, OTHER_KEY);
    let dir = OutDir::new();
    let out = dir
        .fetch()
        .args(["--cacert", OTHER_CERT])
        .arg(server.url("/files/own.bin?size=5000"))
        .code(1);
    let stderr = out.stderr();
    assert!(
        stderr.contains("TLS: the server's certificate is for another name than the URL's host"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
