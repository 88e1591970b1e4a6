//! What fetchbench reads from response headers (all sent by a server it does not trust, so
//! every parser here is total: a malformed value gives `None`).

use std::time::{Duration, SystemTime};

use reqwest::header::{self, HeaderMap, HeaderValue};

/// `Retry-After`: seconds, or an HTTP date (a date already past means no wait).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_at(headers, SystemTime::now())
}

pub fn retry_after_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    match value.parse() {
        Ok(seconds) => Some(Duration::from_secs(seconds)),
        Err(_) => {
            let date = httpdate::parse_http_date(value).ok()?;
            Some(date.duration_since(now).unwrap_or(Duration::ZERO))
        }
    }
}

/// The ETag (preferred) or Last-Modified of a response, for a later `If-Range`.
pub fn validator(headers: &HeaderMap) -> Option<HeaderValue> {
    // A weak ETag cannot be used with If-Range.
    let etag = headers
        .get(header::ETAG)
        .filter(|etag| !etag.as_bytes().starts_with(b"W/"));
    etag.or_else(|| headers.get(header::LAST_MODIFIED)).cloned()
}

/// `Content-Range: bytes first-last/total` → (first, total); `bytes */total` → (0, total).
pub fn content_range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let value = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let (range, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        n => Some(n.parse().ok()?),
    };
    let first = match range.trim() {
        "*" => 0,
        range => range.split_once('-')?.0.parse().ok()?,
    };
    Some((first, total))
}
