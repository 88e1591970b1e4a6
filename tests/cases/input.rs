//! URL lists, and input checked before anything starts.

use tempfile::tempdir;

use crate::server::{TestServer, body};
use crate::util::{fetchbench, listing, read};

#[test]
fn urls_from_stdin_follow_the_arguments() {
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    let list = format!(
        "# a comment\n\n{}\n   {}   \n",
        server.url("/files/two?size=20"),
        server.url("/files/three?size=30")
    );
    let out = fetchbench()
        .args(["-i", "-", "-o"])
        .arg(dir.path())
        .arg(server.url("/files/one?size=10"))
        .write_stdin(list)
        .assert()
        .code(0);
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let names: Vec<_> = stdout
        .lines()
        .map(|l| l.rsplit('/').next().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["one", "two", "three"]);
    assert!(read(dir.path(), "three") == body("three", 30));
}

#[test]
fn bad_urls_are_all_listed_with_line_numbers_and_nothing_starts() {
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    let list_file = dir.path().join("urls.txt");
    let good = server.url("/files/ok?size=1");
    std::fs::write(
        &list_file,
        format!("{good}\nftp://example.test/x\n\nnot a url\n"),
    )
    .unwrap();
    let out = dir.path().join("out");
    fetchbench()
        .arg("-i")
        .arg(&list_file)
        .arg("-o")
        .arg(&out)
        .arg("mailto:someone@example.test")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("3 invalid URLs"))
        .stderr(predicates::str::contains(
            "argument 1: \"mailto:someone@example.test\"",
        ))
        .stderr(predicates::str::contains(
            "urls.txt:2: \"ftp://example.test/x\": unsupported scheme \"ftp\"",
        ))
        .stderr(predicates::str::contains("urls.txt:4: \"not a url\""));
    assert_eq!(server.requests(), 0, "a download started despite bad input");
}

#[test]
fn no_urls_is_a_usage_error() {
    fetchbench()
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no URLs given"))
        .stderr(predicates::str::contains("--help"));
}

#[test]
fn zero_jobs_is_refused() {
    fetchbench()
        .args(["-j", "0", "http://127.0.0.1:9/x"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("must be at least 1"));
}

#[test]
fn an_unusable_output_directory_fails_before_any_download() {
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    fetchbench()
        .arg("-o")
        .arg(blocker.join("sub"))
        .arg(server.url("/files/x?size=1"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("cannot create output directory"))
        .stderr(predicates::str::contains("a-file/sub"));
    assert_eq!(server.requests(), 0);
    assert_eq!(listing(dir.path()), ["a-file"]);
}

#[test]
fn help_shows_examples_and_exit_codes() {
    fetchbench()
        .arg("--help")
        .assert()
        .code(0)
        .stdout(predicates::str::contains("Examples:"))
        .stdout(predicates::str::contains("Exit status:"));
    fetchbench()
        .arg("--version")
        .assert()
        .code(0)
        .stdout(predicates::str::contains(env!("CARGO_PKG_VERSION")));
}
