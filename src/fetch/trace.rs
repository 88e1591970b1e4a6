//! `-v/--verbose`: each request and response head on stderr, as curl `-v` shows them (`> GET
//! /path HTTP/1.1`, `> Name: value`, `< HTTP/1.1 200 OK`, `< name: value`), credentials hidden.
//!
//! reqwest does not expose the bytes it writes, so the request shown is what fetchbench asks
//! for: the method and URL, the headers every request of the run gets ([`Verbose::defaults`]:
//! Host, User-Agent, Accept, -H, Referer, ...) and the request's own (Range, If-Range,
//! Authorization, Cookie). The response is the final one, after any redirects (a
//! `* redirected to URL` line says when there were some).

use std::sync::Arc;

use reqwest::cookie::CookieStore;
use reqwest::header::{self, HeaderMap, HeaderName};
use reqwest::{Request, Response, Url, Version};
use serde::{Deserialize, Serialize};

use crate::cookies::CookieJar;

/// What a verbose run shows besides each request's own headers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Verbose {
    /// The headers the client adds to every request, in the order they are shown.
    pub(crate) defaults: Vec<(String, String)>,
    /// The version asked for: `HTTP/2` with `--http2`, else `HTTP/1.1` (the `<` line shows
    /// the version spoken, which TLS may have made HTTP/2).
    pub(crate) http2: bool,
    /// The run's cookie jar, to tell whether a request carries a Cookie header.
    #[serde(skip)]
    pub(crate) cookies: Option<Arc<CookieJar>>,
}

/// Headers whose values are never shown.
const SECRET_HEADERS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
    header::SET_COOKIE,
];

/// A header line's value, or `***` for a credential.
fn shown(name: &str, value: &[u8]) -> String {
    if SECRET_HEADERS
        .iter()
        .any(|secret| name.eq_ignore_ascii_case(secret.as_str()))
    {
        return "***".to_owned();
    }
    String::from_utf8_lossy(value).into_owned()
}

/// `url` with its password (if any) as `***`.
pub(crate) fn redacted_url(url: &Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        // Only a URL that cannot have a password fails this, and this one has one.
        let _ = url.set_password(Some("***"));
    }
    url.to_string()
}

impl Verbose {
    /// The head of `request` for the URL `asked` (as given: reqwest has turned its
    /// user:password into an Authorization header), as lines: `* URL`, `> GET /path
    /// HTTP/1.1`, `> Host: ...`, then the run's headers and the request's own (a request
    /// header wins over a default of the same name, as reqwest merges them), and `cookie:
    /// ***` when the jar adds cookies.
    pub(crate) fn request_head(&self, asked: &Url, request: &Request) -> String {
        let cookie =
            (self.cookies.as_ref()).is_some_and(|jar| jar.cookies(request.url()).is_some());
        let url = request.url();
        let mut path = url.path().to_owned();
        if let Some(query) = url.query() {
            path.push('?');
            path.push_str(query);
        }
        let version = if self.http2 { "HTTP/2" } else { "HTTP/1.1" };
        let mut lines = vec![
            format!("* {}", redacted_url(asked)),
            format!("> {} {path} {version}", request.method()),
        ];
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        lines.push(format!("> Host: {host}"));
        let own = request.headers();
        for (name, value) in &self.defaults {
            if !own.contains_key(name.as_str()) {
                lines.push(format!("> {name}: {}", shown(name, value.as_bytes())));
            }
        }
        for (name, value) in own {
            lines.push(format!(
                "> {}: {}",
                name,
                shown(name.as_str(), value.as_bytes())
            ));
        }
        if cookie && !own.contains_key(header::COOKIE) {
            lines.push("> cookie: ***".to_owned());
        }
        lines.join("\n")
    }

    /// The head of `response` as lines: `* redirected to URL` when it is not `asked`'s (the
    /// request's URL),
    /// `< HTTP/1.1 200 OK`, `< name: value`.
    pub(crate) fn response_head(&self, asked: &Url, response: &Response) -> String {
        let mut lines = Vec::new();
        if response.url() != asked {
            lines.push(format!("* redirected to {}", redacted_url(response.url())));
        }
        let version = match response.version() {
            Version::HTTP_09 => "HTTP/0.9",
            Version::HTTP_10 => "HTTP/1.0",
            Version::HTTP_2 => "HTTP/2",
            Version::HTTP_3 => "HTTP/3",
            _ => "HTTP/1.1",
        };
        lines.push(format!("< {version} {}", response.status()));
        lines.extend(header_lines(response.headers()));
        lines.join("\n")
    }
}

fn header_lines(headers: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    headers
        .iter()
        .map(|(name, value)| format!("< {name}: {}", shown(name.as_str(), value.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_hidden_in_requests() {
        let verbose = Verbose {
            defaults: vec![
                ("User-Agent".into(), "fetchbench/0".into()),
                ("Authorization".into(), "Bearer s3cret".into()),
                ("X-Mine".into(), "1".into()),
            ],
            http2: false,
            cookies: None,
        };
        let asked = Url::parse("http://alice:pw@127.0.0.1:8000/a/b.bin?x=1").unwrap();
        // reqwest has moved the URL's user:password into an Authorization header.
        let url = Url::parse("http://127.0.0.1:8000/a/b.bin?x=1").unwrap();
        let mut request = Request::new(reqwest::Method::GET, url);
        request
            .headers_mut()
            .insert(header::RANGE, "bytes=5-".parse().unwrap());
        request
            .headers_mut()
            .insert(header::COOKIE, "id=s3cret".parse().unwrap());
        let head = verbose.request_head(&asked, &request);
        assert!(!head.contains("s3cret") && !head.contains("pw"), "{head}");
        assert_eq!(
            head,
            "* http://alice:***@127.0.0.1:8000/a/b.bin?x=1\n\
             > GET /a/b.bin?x=1 HTTP/1.1\n\
             > Host: 127.0.0.1:8000\n\
             > User-Agent: fetchbench/0\n\
             > Authorization: ***\n\
             > X-Mine: 1\n\
             > range: bytes=5-\n\
             > cookie: ***"
        );
    }
}
