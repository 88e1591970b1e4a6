//! File responses: a synthetic file's validators and headers, its body generated chunk by
//! chunk at the requested rate, and the `Range` header.

use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Response};
use futures_util::Stream;
use tokio::time::Instant;

use super::content::{fill_seeded, name_seed};
use super::faults::Faults;
use super::state::AppState;

/// Largest body chunk handed to the connection (and allocated) at a time.
const CHUNK_SIZE: u64 = 64 * 1024;
/// How long a `cut=` response waits after its last byte before it breaks the connection.
const CUT_DELAY: Duration = Duration::from_millis(20);
/// `Last-Modified` of every synthetic file: the content never changes.
const LAST_MODIFIED: &str = "Thu, 01 Jan 2026 00:00:00 GMT";

/// Identity and validators of one synthetic file.
pub(super) struct FileMeta {
    seed: u64,
    size: u64,
    etag: String,
}

impl FileMeta {
    pub(super) fn new(name: &str, size: u64) -> Self {
        let seed = name_seed(name);
        Self {
            seed,
            size,
            etag: format!("\"{seed:016x}-{size}\""),
        }
    }

    /// `If-Range` holds when absent or equal to our ETag or `Last-Modified`.
    pub(super) fn if_range_matches(&self, if_range: Option<&str>) -> bool {
        if_range.is_none_or(|v| v.trim() == self.etag || v.trim() == LAST_MODIFIED)
    }

    fn validators(&self) -> Vec<(HeaderName, String)> {
        vec![
            (header::ACCEPT_RANGES, "bytes".to_string()),
            (header::ETAG, self.etag.clone()),
            (header::LAST_MODIFIED, LAST_MODIFIED.to_string()),
        ]
    }

    /// A 200 or 206 response streaming `range` of the file.
    pub(super) fn response(
        &self,
        status: StatusCode,
        range: Range<u64>,
        rate: Option<u64>,
        state: Arc<AppState>,
        faults: Faults,
    ) -> Response {
        let mut headers = self.validators();
        headers.push((header::CONTENT_TYPE, "application/octet-stream".to_string()));
        headers.push((
            header::CONTENT_LENGTH,
            (range.end - range.start).to_string(),
        ));
        if status == StatusCode::PARTIAL_CONTENT {
            let content_range = format!("bytes {}-{}/{}", range.start, range.end - 1, self.size);
            headers.push((header::CONTENT_RANGE, content_range));
        }
        let body = Body::from_stream(body_stream(self.seed, range, rate, state, faults));
        (status, AppendHeaders(headers), body).into_response()
    }

    pub(super) fn unsatisfiable(&self) -> Response {
        let mut headers = self.validators();
        headers.push((header::CONTENT_RANGE, format!("bytes */{}", self.size)));
        let message = format!("range not satisfiable: the file has {} bytes\n", self.size);
        (
            StatusCode::RANGE_NOT_SATISFIABLE,
            AppendHeaders(headers),
            message,
        )
            .into_response()
    }
}

/// The bytes of `range` in chunks of at most [`CHUNK_SIZE`], generated on
/// demand. With a `rate`, chunks are at most `rate / 20` bytes and each is
/// held back until the bytes sent so far fit in `rate × elapsed`. `faults` may cut the
/// connection after `cut` bytes (an error ends the stream, and hyper drops the connection)
/// or pause `stall` at half the range.
fn body_stream(
    seed: u64,
    range: Range<u64>,
    rate: Option<u64>,
    state: Arc<AppState>,
    faults: Faults,
) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    let chunk_size = rate.map_or(CHUNK_SIZE, |rate| (rate / 20).clamp(1, CHUNK_SIZE));
    let started = Instant::now();
    let Range { start, end } = range;
    let cut_at = faults.cut.map(|cut| start.saturating_add(cut).min(end));
    let stall = faults.stall.map(|pause| (start + (end - start) / 2, pause));
    // The state: the next position and the stall still to come; `None` once cut.
    futures_util::stream::unfold(Some((start, stall)), move |next| {
        let state = Arc::clone(&state);
        async move {
            let (pos, mut stall) = next?;
            if pos >= end {
                return None;
            }
            if cut_at.is_some_and(|cut| pos >= cut) {
                // After a moment, so that the bytes before the cut leave before it: an error
                // at once could make hyper drop what it still buffers.
                tokio::time::sleep(CUT_DELAY).await;
                return Some((Err(io::Error::other("connection cut (cut= fault)")), None));
            }
            if stall.is_some_and(|(at, _)| pos >= at) {
                if let Some((_, pause)) = stall.take() {
                    tokio::time::sleep(pause).await;
                }
            }
            let mut len = chunk_size.min(end - pos);
            for limit in [cut_at, stall.map(|(at, _)| at)].into_iter().flatten() {
                if limit > pos {
                    len = len.min(limit - pos);
                }
            }
            if let Some(rate) = rate {
                tokio::time::sleep_until(started + transfer_time(pos + len - start, rate)).await;
            }
            let mut chunk = vec![0u8; len as usize];
            fill_seeded(seed, pos, &mut chunk);
            state.counters.body_bytes.fetch_add(len, Ordering::Relaxed);
            Some((Ok(Bytes::from(chunk)), Some((pos + len, stall))))
        }
    })
}

/// Time needed to send `bytes` at `rate` bytes/s (`rate > 0`).
fn transfer_time(bytes: u64, rate: u64) -> Duration {
    let nanos = u128::from(bytes % rate) * 1_000_000_000 / u128::from(rate);
    Duration::new(bytes / rate, nanos as u32)
}

/// Outcome of a `Range` header against a file of known size.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum RangeRequest {
    /// No usable range (malformed, multi-range, other unit): send everything.
    Full,
    /// A satisfiable single range, as a half-open byte range.
    Partial(Range<u64>),
    /// A well-formed range that selects no byte of the file.
    Unsatisfiable,
}

/// Interprets a `Range` header value (`bytes=a-b`, `bytes=a-`, `bytes=-n`)
/// per RFC 9110 §14; only single ranges are honoured.
pub(super) fn parse_range(spec: &str, size: u64) -> RangeRequest {
    let spec = spec.trim();
    let Some(ranges) = spec
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
        .map(|_| &spec[6..])
    else {
        return RangeRequest::Full;
    };
    let Some((first, last)) = ranges.split_once('-') else {
        return RangeRequest::Full;
    };
    if ranges.contains(',') {
        return RangeRequest::Full;
    }
    match (parse_position(first.trim()), parse_position(last.trim())) {
        (None, Some(suffix)) if first.trim().is_empty() => suffix_range(suffix, size),
        (Some(first), None) if last.trim().is_empty() => bounded_range(first, u64::MAX, size),
        (Some(first), Some(last)) if first <= last => bounded_range(first, last, size),
        _ => RangeRequest::Full,
    }
}

/// A byte position: ASCII digits only; values beyond `u64` saturate.
fn parse_position(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().unwrap_or(u64::MAX))
}

fn suffix_range(suffix: u64, size: u64) -> RangeRequest {
    if suffix == 0 || size == 0 {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial(size - suffix.min(size)..size)
}

fn bounded_range(first: u64, last: u64, size: u64) -> RangeRequest {
    if first >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial(first..last.saturating_add(1).min(size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::ServerConfig;
    use crate::server::testing::{expected, get, request, start};

    #[test]
    fn parse_range_forms() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=0-9", 100), Partial(0..10));
        assert_eq!(parse_range("bytes=90-200", 100), Partial(90..100));
        assert_eq!(parse_range("bytes=99-99", 100), Partial(99..100));
        assert_eq!(parse_range("bytes=10-", 100), Partial(10..100));
        assert_eq!(parse_range("bytes=-30", 100), Partial(70..100));
        assert_eq!(parse_range("bytes=-300", 100), Partial(0..100));
        assert_eq!(parse_range("BYTES= 5 - 6 ", 100), Partial(5..7));
        assert_eq!(
            parse_range("bytes=0-99999999999999999999999", 100),
            Partial(0..100)
        );
    }

    #[test]
    fn parse_range_unsatisfiable() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=100-200", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=-5", 0), Unsatisfiable);
        assert_eq!(
            parse_range("bytes=99999999999999999999999-", 100),
            Unsatisfiable
        );
    }

    #[test]
    fn parse_range_ignores_malformed_and_multi_ranges() {
        for spec in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=5",
            "bytes=5-3",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=-5-",
            "bytes=1-2-3",
        ] {
            assert_eq!(parse_range(spec, 100), RangeRequest::Full, "{spec:?}");
        }
    }

    #[test]
    fn serves_exact_bytes_and_headers() {
        let server = start(ServerConfig::default());
        for size in [0u64, 1, 7, 65_537] {
            let reply = get(server.addr(), &format!("/files/data.bin?size={size}"));
            assert_eq!(reply.status, 200);
            assert_eq!(reply.content_length(), size);
            assert_eq!(reply.body, expected("data.bin", 0..size), "size {size}");
            assert_eq!(
                reply.header("content-type"),
                Some("application/octet-stream")
            );
            assert_eq!(reply.header("accept-ranges"), Some("bytes"));
            assert_eq!(reply.header("last-modified"), Some(LAST_MODIFIED));
            let etag = format!("\"{:016x}-{size}\"", name_seed("data.bin"));
            assert_eq!(reply.header("etag"), Some(etag.as_str()));
        }
    }

    #[test]
    fn large_file_is_streamed_in_full() {
        let server = start(ServerConfig::default());
        let size = 5 * CHUNK_SIZE + 3;
        let reply = get(server.addr(), &format!("/files/big.bin?size={size}"));
        assert_eq!(reply.body.len() as u64, size);
        assert!(reply.body == expected("big.bin", 0..size));
    }

    #[test]
    fn range_requests_return_exact_slices() {
        let server = start(ServerConfig::default());
        let name = "r.bin";
        let size = 100_000u64;
        let target = format!("/files/{name}?size={size}");
        for (spec, range) in [
            ("bytes=10-19", 10..20),
            ("bytes=65530-", 65_530..size),
            ("bytes=-7", size - 7..size),
        ] {
            let reply = request(server.addr(), "GET", &target, &[("Range", spec)]);
            assert_eq!(reply.status, 206, "{spec}");
            let content_range = format!("bytes {}-{}/{size}", range.start, range.end - 1);
            assert_eq!(reply.header("content-range"), Some(content_range.as_str()));
            assert_eq!(reply.content_length(), range.end - range.start);
            assert_eq!(reply.body, expected(name, range), "{spec}");
        }
    }

    #[test]
    fn unsatisfiable_range_is_416() {
        let server = start(ServerConfig::default());
        let addr = server.addr();
        let reply = request(
            addr,
            "GET",
            "/files/r.bin?size=100",
            &[("Range", "bytes=100-")],
        );
        assert_eq!(reply.status, 416);
        assert_eq!(reply.header("content-range"), Some("bytes */100"));
    }

    #[test]
    fn multi_range_and_stale_if_range_get_full_content() {
        let server = start(ServerConfig::default());
        let addr = server.addr();
        let target = "/files/r.bin?size=100";
        let full = expected("r.bin", 0..100);
        let reply = request(addr, "GET", target, &[("Range", "bytes=0-1,5-6")]);
        assert_eq!((reply.status, &reply.body), (200, &full));
        let stale = [
            ("Range", "bytes=0-1"),
            ("If-Range", "\"0000000000000000-100\""),
        ];
        let reply = request(addr, "GET", target, &stale);
        assert_eq!((reply.status, &reply.body), (200, &full));
        let etag = FileMeta::new("r.bin", 100).etag;
        let reply = request(
            addr,
            "GET",
            target,
            &[("Range", "bytes=0-1"), ("If-Range", &etag)],
        );
        assert_eq!((reply.status, reply.body), (206, full[..2].to_vec()));
    }

    #[test]
    fn head_has_headers_but_no_body() {
        let server = start(ServerConfig::default());
        let reply = request(server.addr(), "HEAD", "/files/h.bin?size=123456", &[]);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.content_length(), 123_456);
        assert!(reply.header("etag").is_some());
        assert!(reply.body.is_empty());
        let reply = request(
            server.addr(),
            "HEAD",
            "/files/h.bin?size=1000",
            &[("Range", "bytes=-10")],
        );
        assert_eq!(reply.status, 206);
        assert_eq!(reply.content_length(), 10);
        assert!(reply.body.is_empty());
        let stats = server.stats();
        assert_eq!((stats.requests, stats.body_bytes), (2, 0));
    }

    #[test]
    fn transfer_time_is_exact() {
        assert_eq!(transfer_time(0, 7), Duration::ZERO);
        assert_eq!(
            transfer_time(1_500_000, 1_000_000),
            Duration::from_millis(1500)
        );
        assert_eq!(transfer_time(1, 3), Duration::from_nanos(333_333_333));
        assert_eq!(transfer_time(u64::MAX, 1), Duration::from_secs(u64::MAX));
    }
}
