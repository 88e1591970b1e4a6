//! Fault injection on `/files/NAME`, by query parameter, so that a pipeline's retries and
//! resumes can be rehearsed offline:
//!
//! - `status=CODE` (400-599): answer with that status instead of the file;
//! - `cut=K`: cut the connection after K bytes of the response's body (a resumed request makes
//!   K more bytes of progress each time);
//! - `stall=DUR`: stop sending for DUR halfway through the response's body, then go on;
//! - `fail=N`: the faults above hit only the first N requests of this URL, then it is served
//!   whole (with no other fault, `fail=N` means N times 503);
//! - `retry_after=S`: a `Retry-After: S` header on a `status` answer.
//!
//! Requests are counted per URL (path and query, without the `Range`), for the server's
//! lifetime, whoever sends them: a second run over the same URLs finds them healthy, and a
//! `bench` run adds its own `run=` parameter to count afresh.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::StatusCode;
use serde::Deserialize;

use crate::sync::lock;
use crate::units;

/// The fault parameters of a `/files` request, as given.
#[derive(Debug, Default, Deserialize)]
pub(super) struct FaultQuery {
    status: Option<String>,
    fail: Option<String>,
    cut: Option<String>,
    stall: Option<String>,
    retry_after: Option<String>,
}

/// What a request gets, once counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Faults {
    /// Answer with this status, not the file.
    pub(super) status: Option<StatusCode>,
    pub(super) retry_after: Option<u64>,
    /// Cut the connection after this many body bytes.
    pub(super) cut: Option<u64>,
    /// Pause this long halfway through the body.
    pub(super) stall: Option<Duration>,
}

/// How many requests each URL has had.
#[derive(Debug, Default)]
pub(super) struct FaultCounts {
    seen: Mutex<HashMap<String, u64>>,
}

impl FaultQuery {
    /// The faults for the request to `url` (path and query), counting it; `Err` says which
    /// parameter is malformed.
    pub(super) fn faults(&self, url: &str, counts: &FaultCounts) -> Result<Faults, String> {
        let number = |name: &str, value: &Option<String>| -> Result<Option<u64>, String> {
            value
                .as_deref()
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| format!("invalid {name} {v:?}: expected a whole number"))
                })
                .transpose()
        };
        let status = number("status", &self.status)?
            .map(|code| {
                u16::try_from(code)
                    .ok()
                    .filter(|code| (400..=599).contains(code))
                    .and_then(|code| StatusCode::from_u16(code).ok())
                    .ok_or(format!("invalid status {code}: expected 400 to 599"))
            })
            .transpose()?;
        let cut = self.cut.as_deref().map(units::parse_size).transpose()?;
        let stall = self
            .stall
            .as_deref()
            .map(units::parse_duration)
            .transpose()?;
        let fail = number("fail", &self.fail)?;
        let retry_after = number("retry_after", &self.retry_after)?;
        let any = status.is_some() || cut.is_some() || stall.is_some();
        if !any && fail.is_none() {
            return Ok(Faults::default());
        }
        let mut faults = Faults {
            status: match (status, any) {
                (None, false) => Some(StatusCode::SERVICE_UNAVAILABLE),
                (status, _) => status,
            },
            retry_after,
            cut,
            stall,
        };
        if let Some(fail) = fail {
            let mut seen = lock(&counts.seen);
            let count = seen.entry(url.to_owned()).or_default();
            *count += 1;
            if *count > fail {
                faults = Faults::default();
            }
        }
        Ok(faults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::ServerConfig;
    use crate::server::testing::{expected, get, request, start};

    fn query(pairs: &[(&str, &str)]) -> FaultQuery {
        let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        serde_urlencoded_like(&text.join("&"))
    }

    /// The query as axum's `Query` would give it.
    fn serde_urlencoded_like(text: &str) -> FaultQuery {
        let uri: axum::http::Uri = format!("/x?{text}").parse().unwrap();
        axum::extract::Query::<FaultQuery>::try_from_uri(&uri)
            .unwrap()
            .0
    }

    #[test]
    fn fail_counts_per_url_then_serves_whole() {
        let counts = FaultCounts::default();
        let q = query(&[("fail", "2")]);
        let unavailable = Some(StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(q.faults("/a", &counts).unwrap().status, unavailable);
        assert_eq!(q.faults("/b", &counts).unwrap().status, unavailable);
        assert_eq!(q.faults("/a", &counts).unwrap().status, unavailable);
        assert_eq!(q.faults("/a", &counts).unwrap(), Faults::default());
        let q = query(&[("status", "429"), ("retry_after", "1")]);
        for _ in 0..3 {
            let faults = q.faults("/c", &counts).unwrap();
            assert_eq!(faults.status, Some(StatusCode::TOO_MANY_REQUESTS));
            assert_eq!(faults.retry_after, Some(1));
        }
        let q = query(&[("cut", "1KiB"), ("fail", "1")]);
        assert_eq!(q.faults("/d", &counts).unwrap().cut, Some(1024));
        assert_eq!(q.faults("/d", &counts).unwrap(), Faults::default());
        assert!(query(&[("status", "200")]).faults("/e", &counts).is_err());
        assert!(query(&[("stall", "soon")]).faults("/e", &counts).is_err());
    }

    #[test]
    fn status_cut_and_stall_reach_the_wire() {
        let server = start(ServerConfig::default());
        let reply = get(
            server.addr(),
            "/files/s.bin?size=100&status=503&retry_after=2",
        );
        assert_eq!(reply.status, 503);
        assert_eq!(reply.header("retry-after"), Some("2"));
        let reply = get(server.addr(), "/files/c.bin?size=200000&cut=70000");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.content_length(), 200_000);
        assert_eq!(reply.body, expected("c.bin", 0..70_000));
        // Counted from the response's first byte: a resume gets K more.
        let reply = request(
            server.addr(),
            "GET",
            "/files/c.bin?size=200000&cut=70000",
            &[("Range", "bytes=100000-")],
        );
        assert_eq!(reply.status, 206);
        assert_eq!(reply.body, expected("c.bin", 100_000..170_000));
        let started = std::time::Instant::now();
        let reply = get(server.addr(), "/files/t.bin?size=5000&stall=300ms");
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(reply.body, expected("t.bin", 0..5000));
        assert_eq!(get(server.addr(), "/files/x.bin?cut=lots").status, 400);
    }
}
