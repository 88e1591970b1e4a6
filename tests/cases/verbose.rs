//! `-v`: request and response heads on stderr, as curl -v shows them, credentials hidden.

use crate::server::TestServer;
use crate::util::OutDir;

/// The `> ` and `< ` lines of a verbose run's stderr, lowercased.
fn head_lines(stderr: &[u8], prefix: &str) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|line| line.starts_with(prefix))
        .map(str::to_lowercase)
        .collect()
}

#[test]
fn verbose_shows_every_header_the_server_got_with_credentials_hidden() {
    for mode in ["pool", "procs"] {
        let server = TestServer::http();
        let dir = OutDir::new();
        let url = server
            .url("/files/v.bin?size=1234")
            .replace("http://", "http://alice:pa55word@");
        let out = dir
            .fetch()
            .args([
                "-v",
                "-q",
                "--compressed",
                "-H",
                "X-Test: yes",
                "--mode",
                mode,
            ])
            .args(["-H", "Proxy-Authorization: Basic c2VjcmV0"])
            .arg(&url)
            .code(0);
        let stderr = out.output.stderr.clone();
        let text = String::from_utf8_lossy(&stderr);
        assert!(
            !text.contains("pa55word") && !text.contains("c2VjcmV0"),
            "{text}"
        );
        assert!(
            text.contains("* http://alice:***@127.0.0.1:"),
            "{mode}: {text}"
        );
        let sent = head_lines(&stderr, "> ");
        assert_eq!(
            sent[0], "> get /files/v.bin?size=1234 http/1.1",
            "{mode}: {text}"
        );
        let seen = &server.seen()[0];
        for (name, value) in &seen.headers {
            let secret = matches!(name.as_str(), "authorization" | "proxy-authorization");
            let line = match secret {
                true => format!("> {name}: ***"),
                false => format!("> {name}: {}", value.to_str().unwrap()).to_lowercase(),
            };
            assert!(sent.contains(&line), "{mode}: {line:?} not in {sent:?}");
        }
        assert_eq!(sent.len(), seen.headers.len() + 1, "{mode}: {sent:?}");
        let got = head_lines(&stderr, "< ");
        assert_eq!(got[0], "< http/1.1 200 ok", "{mode}: {text}");
        assert!(
            got.contains(&"< content-length: 1234".to_owned()),
            "{got:?}"
        );
    }
}

#[test]
fn verbose_says_where_a_redirect_went_and_without_v_nothing_is_shown() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let out = dir.fetch().arg("-v").arg(server.url("/redirect/1")).code(0);
    let text = out.stderr();
    let landed = server.url("/files/landed.bin?size=1234");
    assert!(
        text.contains(&format!("* redirected to {landed}\n< HTTP/1.1 200 OK")),
        "{text}"
    );
    let out = dir.fetch().arg(server.url("/redirect/1")).code(0);
    let text = out.stderr();
    assert!(
        !text.contains("> GET") && !text.contains("< HTTP"),
        "{text}"
    );
}
