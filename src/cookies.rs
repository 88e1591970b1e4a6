//! Cookies: `--load-cookies FILE` and `--save-cookies FILE` in the Netscape cookie-jar format
//! (what curl `-b`/`-c`, wget and aria2c read and write), and the one jar every client of a
//! run shares ([`CookieJar`], reqwest's `CookieStore` over the `cookie_store` crate, which
//! decides by domain, path, secure and expiry which cookies a request gets).
//!
//! A line of the format is seven TAB-separated fields: domain, whether subdomains match
//! (`TRUE`/`FALSE`), path, secure (`TRUE`/`FALSE`), expiry (Unix seconds; 0 for a session
//! cookie), name, value. `#HttpOnly_` before the domain marks an HttpOnly cookie; other lines
//! starting with `#` and blank lines are comments.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use cookie_store::{CookieDomain, CookieExpiration, RawCookie};
use reqwest::Url;
use reqwest::header::HeaderValue;

use crate::sync::lock;

/// The cookies of a run, shared by every client (and so by every worker thread).
pub(crate) struct CookieJar {
    store: RwLock<cookie_store::CookieStore>,
    /// In a worker process: the Set-Cookie headers received since the last
    /// [`CookieJar::take_received`], once [`CookieJar::record`] is called, as (URL, value), for the parent's jar.
    received: Mutex<Option<Vec<(String, String)>>>,
}

impl fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the values: they are credentials.
        f.write_str("CookieJar")
    }
}

const HTTP_ONLY: &str = "#HttpOnly_";

impl CookieJar {
    /// An empty jar.
    pub(crate) fn new() -> Self {
        CookieJar {
            store: RwLock::new(cookie_store::CookieStore::new()),
            received: Mutex::new(None),
        }
    }

    /// The jar in the file at `path` (a usage error when unreadable or malformed).
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read cookie file {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses a Netscape cookie file; `label` names it in errors (`cookies.txt:3: ...`).
    /// Expired cookies are dropped, as curl drops them.
    pub(crate) fn parse(text: &str, label: &str) -> Result<Self> {
        let jar = CookieJar::new();
        let now = unix_now();
        {
            let mut store = jar.store.write().unwrap_or_else(|e| e.into_inner());
            for (n, line) in text.lines().enumerate() {
                let fail = |why: &str| anyhow::anyhow!("{label}:{}: {why}", n + 1);
                let Some((cookie, url)) = cookie_of_line(line, now).map_err(|why| fail(&why))?
                else {
                    continue;
                };
                store
                    .insert_raw(&cookie, &url)
                    .map_err(|err| fail(&format!("not a usable cookie: {err}")))?;
            }
        }
        Ok(jar)
    }

    /// Records the Set-Cookie headers received from now on, for [`CookieJar::take_received`], once [`CookieJar::record`] is called
    /// (a worker process reports them to the parent).
    pub(crate) fn record(&self) {
        lock(&self.received).get_or_insert_with(Vec::new);
    }

    /// The Set-Cookie headers received since the last call, as (URL, value).
    pub(crate) fn take_received(&self) -> Vec<(String, String)> {
        lock(&self.received)
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Stores Set-Cookie headers a worker process received, as (URL, value).
    pub(crate) fn store_received(&self, received: &[(String, String)]) {
        let mut store = self.store.write().unwrap_or_else(|e| e.into_inner());
        for (url, value) in received {
            if let Ok(url) = Url::parse(url) {
                let _ = store.parse(value, &url);
            }
        }
    }

    /// The jar's unexpired cookies (session cookies too, with expiry 0, as curl writes them)
    /// in the Netscape format.
    pub(crate) fn to_netscape(&self) -> String {
        let store = self.store.read().unwrap_or_else(|e| e.into_inner());
        let mut text = String::from(
            "# Netscape HTTP Cookie File\n# Written by fetchbench (the format of curl -c, wget, aria2c).\n\n",
        );
        let mut lines: Vec<String> = store
            .iter_unexpired()
            .filter_map(|cookie| {
                let (domain, subdomains) = match &cookie.domain {
                    CookieDomain::HostOnly(host) => (host.clone(), "FALSE"),
                    CookieDomain::Suffix(suffix) => (format!(".{suffix}"), "TRUE"),
                    CookieDomain::NotPresent | CookieDomain::Empty => return None,
                };
                let expires = match &cookie.expires {
                    CookieExpiration::AtUtc(at) => at.unix_timestamp(),
                    CookieExpiration::SessionEnd => 0,
                };
                let flag = |on: bool| if on { "TRUE" } else { "FALSE" };
                Some(format!(
                    "{}{domain}\t{subdomains}\t{}\t{}\t{expires}\t{}\t{}\n",
                    if cookie.http_only().unwrap_or(false) {
                        HTTP_ONLY
                    } else {
                        ""
                    },
                    &*cookie.path,
                    flag(cookie.secure().unwrap_or(false)),
                    cookie.name(),
                    cookie.value(),
                ))
            })
            .collect();
        lines.sort();
        text.extend(lines);
        text
    }

    /// Writes the jar to `path` atomically: a temporary file in the same directory, renamed
    /// over it once complete (readable by its owner only: cookies are credentials).
    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        let fail = || format!("cannot save cookies to {}", path.display());
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut file = tempfile::NamedTempFile::new_in(dir).with_context(fail)?;
        file.write_all(self.to_netscape().as_bytes())
            .and_then(|()| file.as_file().sync_all())
            .with_context(fail)?;
        file.persist(path)
            .map_err(|err| err.error)
            .with_context(fail)?;
        Ok(())
    }
}

impl Default for CookieJar {
    fn default() -> Self {
        CookieJar::new()
    }
}

impl reqwest::cookie::CookieStore for CookieJar {
    fn set_cookies(&self, headers: &mut dyn Iterator<Item = &HeaderValue>, url: &Url) {
        let values: Vec<String> = headers
            .filter_map(|value| value.to_str().ok().map(str::to_owned))
            .collect();
        if values.is_empty() {
            return;
        }
        let mut store = self.store.write().unwrap_or_else(|e| e.into_inner());
        for value in &values {
            // A cookie the rules refuse (another domain, a bad attribute) is dropped.
            let _ = store.parse(value, url);
        }
        drop(store);
        if let Some(received) = lock(&self.received).as_mut() {
            received.extend(values.into_iter().map(|value| (url.to_string(), value)));
        }
    }

    fn cookies(&self, url: &Url) -> Option<HeaderValue> {
        let store = self.store.read().unwrap_or_else(|e| e.into_inner());
        let mut cookies = store.matches(url);
        // Longer paths first (RFC 6265, 5.4), as browsers and curl order them.
        cookies.sort_by_key(|cookie| std::cmp::Reverse(cookie.path.len()));
        let header = cookies
            .iter()
            .map(|cookie| format!("{}={}", cookie.name(), cookie.value()))
            .collect::<Vec<_>>()
            .join("; ");
        if header.is_empty() {
            return None;
        }
        HeaderValue::from_str(&header).ok()
    }
}

/// The cookie on one line of a cookie file, and the URL it was set for; `None` for a comment,
/// a blank line or an expired cookie; what is wrong with the line otherwise.
fn cookie_of_line(line: &str, now: i64) -> Result<Option<(RawCookie<'static>, Url)>, String> {
    let line = line.trim_end_matches('\r');
    let (http_only, line) = match line.strip_prefix(HTTP_ONLY) {
        Some(rest) => (true, rest),
        None if line.trim().is_empty() || line.starts_with('#') => return Ok(None),
        None => (false, line),
    };
    let fields: Vec<&str> = line.split('\t').collect();
    // A cookie with an empty value may lose its last TAB.
    let [domain, subdomains, path, secure, expires, name, value] = match fields[..] {
        [a, b, c, d, e, f] => [a, b, c, d, e, f, ""],
        [a, b, c, d, e, f, g] => [a, b, c, d, e, f, g],
        _ => {
            return Err(
                "expected 7 TAB-separated fields (domain, subdomains, path, secure, \
                        expiry, name, value)"
                    .to_owned(),
            );
        }
    };
    let (subdomains, secure) = (flag(subdomains, "subdomains")?, flag(secure, "secure")?);
    let expires: i64 = expires
        .parse()
        .map_err(|_| format!("bad expiry {expires:?}"))?;
    if expires != 0 && expires <= now {
        return Ok(None);
    }
    let host = domain.trim_start_matches('.');
    if host.is_empty() || name.is_empty() {
        return Err("empty domain or name".to_owned());
    }
    let scheme = if secure { "https" } else { "http" };
    let url = Url::parse(&format!("{scheme}://{host}{path}"))
        .map_err(|err| format!("bad domain or path: {err}"))?;
    let mut cookie = RawCookie::new(name.to_owned(), value.to_owned());
    cookie.set_path(path.to_owned());
    cookie.set_secure(secure);
    cookie.set_http_only(http_only);
    if subdomains {
        cookie.set_domain(host.to_owned());
    }
    if expires != 0 {
        cookie.set_max_age(cookie::time::Duration::seconds(expires - now));
    }
    Ok(Some((cookie, url)))
}

/// A `TRUE`/`FALSE` field of a cookie file; `what` names it in the error.
fn flag(text: &str, what: &str) -> Result<bool, String> {
    match text {
        "TRUE" => Ok(true),
        "FALSE" => Ok(false),
        _ => Err(format!("{what} must be TRUE or FALSE, not {text:?}")),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::cookie::CookieStore;

    fn sent(jar: &CookieJar, url: &str) -> String {
        jar.cookies(&Url::parse(url).unwrap())
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    #[test]
    fn cookies_go_only_where_domain_path_and_secure_say() {
        let far = unix_now() + 3600;
        let text = format!(
            "# Netscape HTTP Cookie File\n\
             .example.com\tTRUE\t/\tFALSE\t{far}\twide\t1\n\
             host.example.com\tFALSE\t/docs\tFALSE\t0\tdocs\t2\n\
             #HttpOnly_example.com\tFALSE\t/\tTRUE\t{far}\tsecret\t3\n\
             example.com\tFALSE\t/\tFALSE\t1000\told\t4\n\
             example.com\tFALSE\t/\tFALSE\t0\tempty\t\n"
        );
        let jar = CookieJar::parse(&text, "jar").unwrap();
        assert_eq!(sent(&jar, "http://a.example.com/x"), "wide=1");
        assert_eq!(
            sent(&jar, "http://host.example.com/docs/a"),
            "docs=2; wide=1"
        );
        assert_eq!(sent(&jar, "http://host.example.com/other"), "wide=1");
        assert_eq!(sent(&jar, "http://sub.host.example.com/docs"), "wide=1");
        let plain = sent(&jar, "http://example.com/");
        assert!(
            !plain.contains("secret") && !plain.contains("old"),
            "{plain}"
        );
        assert!(sent(&jar, "https://example.com/").contains("secret=3"));
        assert_eq!(sent(&jar, "http://example.org/"), "");
        let saved = jar.to_netscape();
        assert!(
            saved.contains(&format!(
                "#HttpOnly_example.com\tFALSE\t/\tTRUE\t{far}\tsecret\t3\n"
            )),
            "{saved}"
        );
        assert!(
            saved.contains(&format!(".example.com\tTRUE\t/\tFALSE\t{far}\twide\t1\n")),
            "{saved}"
        );
        assert!(
            saved.contains("host.example.com\tFALSE\t/docs\tFALSE\t0\tdocs\t2\n"),
            "{saved}"
        );
        assert!(!saved.contains("old"), "{saved}");
        let again = CookieJar::parse(&saved, "saved").unwrap();
        assert_eq!(again.to_netscape(), saved);
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_it() {
        let err = CookieJar::parse("\nexample.com\tMAYBE\t/\tFALSE\t0\ta\tb\n", "c.txt")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("c.txt:2: subdomains must be TRUE or FALSE"),
            "{err}"
        );
        let err = CookieJar::parse("just words\n", "c.txt")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("c.txt:1: expected 7"), "{err}");
    }
}
