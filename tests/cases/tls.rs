//! HTTPS against a self-signed certificate.

use tempfile::tempdir;

use crate::server::{CERT, TestServer, body};
use crate::util::{fetchbench, read};

#[test]
fn https_works_with_cacert_in_every_mode() {
    let server = TestServer::https();
    for mode in crate::util::MODES {
        let dir = tempdir().unwrap();
        fetchbench()
            .args(["--mode", mode, "--cacert", CERT, "-o"])
            .arg(dir.path())
            .arg(server.url("/files/secure.bin?size=70000"))
            .assert()
            .code(0);
        assert!(
            read(dir.path(), "secure.bin") == body("secure.bin", 70_000),
            "{mode}"
        );
    }
}

#[test]
fn https_refuses_an_untrusted_certificate() {
    let server = TestServer::https();
    let dir = tempdir().unwrap();
    let out = fetchbench()
        .arg("-o")
        .arg(dir.path())
        .arg(server.url("/files/secure.bin?size=10"))
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("TLS: invalid peer certificate"), "{stderr}");
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
