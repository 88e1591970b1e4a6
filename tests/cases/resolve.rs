//! `--resolve HOST:PORT:ADDR` (curl's) and `-4`/`-6`. Only names given to `--resolve` are
//! used, so no test asks DNS anything.

use crate::server::{TestServer, body};
use crate::util::{OutDir, fetchbench};

#[test]
fn resolve_sends_a_name_to_the_address_given_in_every_kind_of_mode() {
    let server = TestServer::http();
    let port = server.url("").rsplit(':').next().unwrap().to_owned();
    let dir = OutDir::new();
    for mode in ["pool", "procs"] {
        dir.fetch()
            .args(["-q", "-4", "--mode", mode, "--resolve"])
            .arg(format!("fetchbench.test:{port}:127.0.0.1"))
            .arg(format!(
                "http://fetchbench.test:{port}/files/{mode}.bin?size=3000"
            ))
            .code(0);
        assert_eq!(
            dir.read(&format!("{mode}.bin")),
            body(&format!("{mode}.bin"), 3000)
        );
    }
    for seen in server.seen() {
        assert_eq!(
            seen.headers["host"],
            format!("fetchbench.test:{port}").as_str()
        );
    }
}

#[test]
fn ipv6_only_never_connects_to_an_ipv4_address() {
    let server = TestServer::http();
    let port = server.url("").rsplit(':').next().unwrap().to_owned();
    let dir = OutDir::new();
    let out = dir
        .fetch()
        .args(["-6", "--retries", "0", "--resolve"])
        .arg(format!("fetchbench.test:{port}:127.0.0.1"))
        .arg(format!("http://fetchbench.test:{port}/files/v6.bin"))
        .code(1);
    let stderr = out.stderr();
    assert!(stderr.contains("v6.bin"), "{stderr}");
    assert_eq!(server.connections(), 0, "{stderr}");
}

#[test]
fn a_bad_resolve_is_a_usage_error() {
    fetchbench()
        .args(["--resolve", "example.com:443", "http://127.0.0.1:9/"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("HOST:PORT:ADDR"));
    fetchbench()
        .args(["-4", "-6", "http://127.0.0.1:9/"])
        .assert()
        .code(2);
}
