//! Secrets stay secret: a URL's password never shows in any output (stderr lines, tables,
//! JSON, errors, `file:line` messages), and `-H` headers go only to their own origin unless
//! `--location-trusted`.

use crate::server::TestServer;
use crate::util::{MODES, OutDir, fetchbench};

const PASSWORD: &str = "pa55w0rdXYZ";

#[test]
fn a_url_password_is_in_no_output_of_any_kind() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let with_secret = |path: &str| {
        server
            .url(path)
            .replacen("http://", &format!("http://alice:{PASSWORD}@"), 1)
    };
    let list = format!(
        "{}\n{}\n{} sha256=nothex\nftp://bob:{PASSWORD}@host/x\n",
        with_secret("/files/ok.bin?size=100"),
        with_secret("/status/404"),
        with_secret("/files/bad.bin"),
    );
    for mode in ["pool", "procs"] {
        for format in [&["--json"][..], &["--table", "full"][..]] {
            let run = dir
                .fetch()
                .args(["--mode", mode, "--retries", "0"])
                .args(format)
                .list(list.clone())
                .code(1);
            let out = &run.output;
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            for text in [&stdout, &stderr] {
                assert!(!text.contains(PASSWORD), "{mode} {format:?}: {text}");
            }
            // Shown, with the password hidden.
            assert!(stderr.contains("alice:***@"), "{mode}: {stderr}");
            assert!(stderr.contains("stdin:3:"), "{mode}: {stderr}");
            assert!(stderr.contains("bob:***@"), "{mode}: {stderr}");
            if format == ["--json"] {
                assert!(stdout.contains("\"url\":\"http://alice:***@"), "{stdout}");
            }
        }
    }
    assert!(dir.served("ok.bin", 100));

    // -u and a proxy's password: in no failure either.
    let run = dir
        .fetch()
        .args(["--retries", "0", "--json", "--table", "full", "-u"])
        .arg(format!("alice:{PASSWORD}"))
        .arg("--proxy")
        .arg(format!("http://p:{PASSWORD}@127.0.0.1:1"))
        .arg(server.url("/files/x"))
        .code(1);
    let out = &run.output;
    for text in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(text);
        assert!(!text.contains(PASSWORD), "{text}");
    }

    // A bad URL argument is a usage error that names it, without its password.
    let run = fetchbench()
        .arg(format!("ftp://carol:{PASSWORD}@host/x"))
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&run.get_output().stderr).into_owned();
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    assert!(stderr.contains("carol:***@"), "{stderr}");
}

/// The `X-Api-Key` header of each request `server` received, by path.
fn api_keys(server: &TestServer) -> Vec<(String, Option<String>)> {
    let mut keys: Vec<_> = server
        .seen()
        .iter()
        .map(|seen| {
            let path = seen.uri.split('?').next().unwrap_or_default().to_owned();
            let key = seen
                .headers
                .get("x-api-key")
                .map(|v| v.to_str().unwrap().to_owned());
            (path, key)
        })
        .collect();
    keys.sort();
    keys
}

#[test]
fn custom_headers_go_only_to_their_origin_unless_location_trusted() {
    let key = || Some("k3y".to_owned());
    for mode in MODES {
        for trusted in [false, true] {
            let a = TestServer::http();
            let b = TestServer::http();
            let dir = OutDir::new();
            let elsewhere = b.url("/files/moved?size=20");
            let mut run = dir.fetch();
            run.args(["--mode", mode, "-H", "X-Api-Key: k3y"])
                .arg(a.url(&format!("/to?url={elsewhere}")))
                .arg(a.url("/redirect/0"));
            if trusted {
                run.arg("--location-trusted");
            }
            run.code(0);
            assert_eq!(
                api_keys(&a),
                [
                    // Within the origin they stay.
                    ("/files/landed.bin".to_owned(), key()),
                    ("/redirect/0".to_owned(), key()),
                    ("/to".to_owned(), key()),
                ],
                "{mode}"
            );
            let moved = if trusted { key() } else { None };
            assert_eq!(
                api_keys(&b),
                [("/files/moved".to_owned(), moved)],
                "{mode} trusted={trusted}"
            );
            assert!(dir.served("moved", 20), "{mode}");
        }
    }
}
