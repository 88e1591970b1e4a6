//! URL lists, and input checked before anything starts.

use tempfile::tempdir;

use crate::server::{TestServer, body};
use crate::util::{MODES, OutDir, fetchbench, listing, read};

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
        .args(["--keep-order", "-i", "-", "-o"])
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
fn bad_url_arguments_are_a_usage_error_before_any_request() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let list_file = dir.root().join("urls.txt");
    std::fs::write(&list_file, format!("{}\n", server.url("/files/ok?size=1"))).unwrap();
    dir.fetch()
        .list_file(&list_file)
        .arg(server.url("/files/fine?size=1"))
        .arg("mailto:someone@example.test")
        .arg("not a url")
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "2 invalid URLs on the command line",
        ))
        .stderr(predicates::str::contains(
            "argument 2: \"mailto:someone@example.test\": unsupported scheme \"mailto\"",
        ))
        .stderr(predicates::str::contains("argument 3: \"not a url\""));
    assert_eq!(server.requests(), 0, "a download started despite bad input");
}

#[test]
fn bad_list_lines_fail_alone_with_their_line_and_the_others_are_saved() {
    let server = TestServer::http();
    let list = format!(
        "{}\nftp://example.test/x\n\nnot a url\n{}\n",
        server.url("/files/first?size=11"),
        server.url("/files/last?size=22")
    );
    for mode in MODES {
        let dir = OutDir::new();
        let list_file = dir.root().join("urls.txt");
        std::fs::write(&list_file, &list).unwrap();
        let run = dir
            .fetch()
            .args(["--json", "--mode", mode])
            .list_file(&list_file)
            .code(1);
        let stderr = run.stderr();
        assert!(
            stderr.contains("urls.txt:2: unsupported scheme \"ftp\""),
            "{mode}: {stderr}"
        );
        assert!(stderr.contains("urls.txt:4: "), "{mode}: {stderr}");
        assert!(stderr.contains("2 ok, 2 failed"), "{mode}: {stderr}");
        assert_eq!(dir.read("first"), body("first", 11), "{mode}");
        assert_eq!(dir.read("last"), body("last", 22), "{mode}");
        let stdout = run.stdout();
        let bad: Vec<&str> = stdout
            .lines()
            .filter(|line| line.contains("\"status\":\"failed\""))
            .collect();
        assert_eq!(bad.len(), 2, "{mode}: {stdout}");
        assert!(
            bad.iter()
                .any(|l| l.contains("\"url\":\"not a url\"") && l.contains("\"index\":2")),
            "{mode}: {stdout}"
        );
    }
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

#[test]
fn an_over_long_list_line_fails_alone_with_its_place_and_a_short_echo() {
    let server = crate::server::TestServer::http();
    let dir = OutDir::new();
    let long = format!("{}{}", server.url("/files/"), "x".repeat(10 << 20));
    let list = format!(
        "{}\n{long}\n{}\n",
        server.url("/files/a?size=10"),
        server.url("/files/b?size=20")
    );
    let run = dir.fetch().arg("--json").list(list).code(1);
    let out = &run.output;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // Echoed shortened, in both outputs: not 10 MiB of it.
    assert!(
        out.stdout.len() < 4000,
        "{} bytes of JSON",
        out.stdout.len()
    );
    assert!(stderr.len() < 4000, "{} bytes of stderr", stderr.len());
    let len = long.len();
    assert!(
        stderr.contains(&format!(
            "xxx…: stdin:2: line of {len} bytes, longer than the 64 KiB a list line may have"
        )),
        "{stderr}"
    );
    let lines = crate::util::json_lines(&out.stdout);
    let statuses: Vec<&str> = lines[..3]
        .iter()
        .map(|l| l["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "ok").count(),
        2,
        "{lines:?}"
    );
    assert!(dir.served("b", 20));
}
