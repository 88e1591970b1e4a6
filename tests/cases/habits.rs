//! What users of curl, wget and xh expect: `-o` and `-O`, a URL without a scheme, a refused
//! connection that fails fast, help that fits the terminal.

use std::time::{Duration, Instant};

use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use tempfile::tempdir;

use crate::server::{TestServer, body};
use crate::util::{OutDir, fetchbench, listing, read};

#[test]
fn o_naming_an_existing_file_is_a_usage_error() {
    let dir = tempdir().unwrap();
    let file = dir.path().join("file.bin");
    std::fs::write(&file, b"mine").unwrap();
    fetchbench()
        .arg("-o")
        .arg(&file)
        .arg("http://127.0.0.1:9/x")
        .assert()
        .code(2)
        .stderr(contains("is a file, not a directory").and(contains("-O FILE")));
    assert_eq!(std::fs::read(&file).unwrap(), b"mine");
}

#[test]
fn o_dash_is_refused_and_creates_nothing() {
    let dir = tempdir().unwrap();
    for flag in ["-o", "-O"] {
        fetchbench()
            .current_dir(dir.path())
            .args([flag, "-", "http://127.0.0.1:9/x"])
            .assert()
            .code(2)
            .stderr(contains("stdout is not supported"));
    }
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

#[test]
fn o_that_looks_like_a_file_name_says_it_made_a_directory() {
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    let target = dir.path().join("file.bin");
    fetchbench()
        .arg("-o")
        .arg(&target)
        .arg(server.url("/files/a.bin?size=10"))
        .assert()
        .code(0)
        .stderr(contains("created directory").and(contains("use -O FILE")));
    assert!(target.join("a.bin").is_file());
}

/// `-O FILE` is curl's `-o` and wget's `-O`: the one URL is saved as FILE, in FILE's
/// directory; `-P` is wget's name for `-o`.
#[test]
fn capital_o_names_the_file_and_p_is_the_directory() {
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    let named = dir.path().join("sub").join("latest.iso");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let out = fetchbench()
        .arg("-O")
        .arg(&named)
        .arg(server.url("/files/a.bin?size=1000"))
        .assert()
        .code(0);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert_eq!(stdout.trim_end(), named.display().to_string());
    assert!(read(&dir.path().join("sub"), "latest.iso") == body("a.bin", 1000));
    fetchbench()
        .arg("-O")
        .arg(&named)
        .args([server.url("/files/a.bin"), server.url("/files/b.bin")])
        .assert()
        .code(2)
        .stderr(contains("exactly one URL"));
    fetchbench()
        .arg("-P")
        .arg(dir.path())
        .arg(server.url("/files/p.bin?size=10"))
        .assert()
        .code(0);
    assert!(read(dir.path(), "p.bin") == body("p.bin", 10));
}

/// `127.0.0.1:PORT/files/a.bin`, as an argument and in a list, means http://.
#[test]
fn a_url_without_a_scheme_is_http() {
    let server = TestServer::http();
    let bare = server.url("/files/bare.bin?size=100");
    let bare = bare.strip_prefix("http://").unwrap().to_owned();
    let listed = server.url("/files/listed.bin?size=200");
    let listed = listed.strip_prefix("http://").unwrap().to_owned();
    let dir = OutDir::new();
    let list = dir.root().join("urls.txt");
    std::fs::write(&list, format!("{listed}\n")).unwrap();
    dir.fetch().arg(&bare).list_file(&list).code(0);
    assert!(dir.served("bare.bin", 100));
    assert!(dir.served("listed.bin", 200));
    // Another scheme is still refused.
    fetchbench()
        .args(["ftp://127.0.0.1/x"])
        .assert()
        .code(2)
        .stderr(contains("unsupported scheme"));
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn a_refused_connection_fails_fast_unless_retry_connrefused() {
    let url = format!("http://127.0.0.1:{}/x.bin", closed_port());
    let dir = OutDir::new();
    let started = Instant::now();
    let out = dir.fetch().arg(&url).code(1);
    let took = started.elapsed();
    let stderr = out.stderr();
    // Three retries would wait 0.5 + 1 + 2 s.
    assert!(took < Duration::from_millis(1500), "{took:?}: {stderr}");
    assert!(!stderr.contains("retry"), "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
    let out = dir
        .fetch()
        .args([
            "--retry-connrefused",
            "--retries",
            "2",
            "--retry-delay",
            "10ms",
        ])
        .arg(&url)
        .code(1);
    let stderr = out.stderr();
    assert!(stderr.contains("retry 2/2"), "{stderr}");
}

#[test]
fn help_fits_80_columns_and_h_is_short() {
    let long = fetchbench()
        .env("COLUMNS", "80")
        .arg("--help")
        .assert()
        .code(0);
    let long = String::from_utf8_lossy(&long.get_output().stdout).into_owned();
    let wide: Vec<&str> = long.lines().filter(|l| l.chars().count() > 80).collect();
    assert!(wide.is_empty(), "{wide:#?}");
    assert!(
        long.contains("Exit status:"),
        "--help keeps the long after-help"
    );
    let short = fetchbench().env("COLUMNS", "80").arg("-h").assert().code(0);
    let short = String::from_utf8_lossy(&short.get_output().stdout).into_owned();
    assert!(
        short.lines().count() <= 60,
        "{} lines:\n{short}",
        short.lines().count()
    );
    assert!(short.lines().all(|l| l.chars().count() <= 80), "{short}");
    assert!(!short.contains("Exit status:"), "{short}");
    // COLUMNS is the width: narrower, the lines are broken to fit.
    let narrow = fetchbench()
        .env("COLUMNS", "60")
        .arg("--help")
        .assert()
        .code(0);
    let narrow = String::from_utf8_lossy(&narrow.get_output().stdout).into_owned();
    assert!(narrow.lines().all(|l| l.chars().count() <= 60), "{narrow}");
    for sub in ["bench", "serve"] {
        fetchbench()
            .args([sub, "--version"])
            .assert()
            .code(0)
            .stdout(contains(env!("CARGO_PKG_VERSION")));
        let help = fetchbench()
            .env("COLUMNS", "80")
            .args([sub, "--help"])
            .assert()
            .code(0);
        let help = String::from_utf8_lossy(&help.get_output().stdout).into_owned();
        assert!(
            help.lines().all(|l| l.chars().count() <= 80),
            "{sub}: {help}"
        );
    }
}

/// `fetchbench man [bench|serve]`: every page has its sections; where `man` is installed,
/// each renders at 80 columns without a warning or a line too wide.
#[test]
fn man_pages_have_their_sections_and_render_cleanly() {
    let man_here = std::process::Command::new("man")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    for (page, sections) in [
        (
            "fetchbench",
            &[
                "SYNOPSIS",
                "OPTIONS",
                "COMMANDS",
                "EXIT STATUS",
                "ENVIRONMENT",
            ][..],
        ),
        ("bench", &["SYNOPSIS", "OPTIONS", "EXIT STATUS", "SEE ALSO"]),
        ("serve", &["SYNOPSIS", "OPTIONS", "EXIT STATUS", "SEE ALSO"]),
    ] {
        let out = fetchbench().args(["man", page]).assert().code(0);
        let roff = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        for section in sections {
            assert!(
                roff.contains(&format!(".SH \"{section}\"")),
                "{page}: {section}"
            );
        }
        if !man_here {
            continue;
        }
        let dir = tempdir().unwrap();
        let file = dir.path().join(format!("{page}.1"));
        std::fs::write(&file, &roff).unwrap();
        let shown = std::process::Command::new("man")
            .env("MANWIDTH", "80")
            .args(["--warnings", "-l"])
            .arg(&file)
            .output()
            .unwrap();
        let warnings = String::from_utf8_lossy(&shown.stderr);
        assert!(
            shown.status.success() && warnings.trim().is_empty(),
            "{page}: {warnings}"
        );
        let text = String::from_utf8_lossy(&shown.stdout);
        assert!(text.contains("EXIT STATUS"), "{page}: {text}");
        let wide: Vec<&str> = text.lines().filter(|l| l.chars().count() > 80).collect();
        assert!(wide.is_empty(), "{page}: {wide:#?}");
    }
}
