//! What fetchbench reads from response headers (all sent by a server it does not trust, so
//! every parser here is total: a malformed value gives `None`).

use std::time::{Duration, SystemTime};

use reqwest::Response;
use reqwest::header::{self, HeaderMap, HeaderValue};

use crate::error::FetchError;

/// The error for a response with a failure status, with the server's Retry-After.
pub(crate) fn http_error(response: &Response) -> FetchError {
    FetchError::Http {
        status: response.status(),
        retry_after: retry_after(response.headers()),
    }
}

/// `Retry-After`: seconds, or an HTTP date (a date already past means no wait).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_at(headers, SystemTime::now())
}

pub(crate) fn retry_after_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    match value.parse() {
        Ok(seconds) => Some(Duration::from_secs(seconds)),
        Err(_) => {
            let date = httpdate::parse_http_date(value).ok()?;
            Some(date.duration_since(now).unwrap_or(Duration::ZERO))
        }
    }
}

/// `Last-Modified`, as a time (the saved file's mtime).
pub(crate) fn last_modified(headers: &HeaderMap) -> Option<SystemTime> {
    let value = headers.get(header::LAST_MODIFIED)?.to_str().ok()?;
    httpdate::parse_http_date(value.trim()).ok()
}

/// The ETag (preferred) or Last-Modified of a response, for a later `If-Range`.
pub(crate) fn validator(headers: &HeaderMap) -> Option<HeaderValue> {
    // A weak ETag cannot be used with If-Range.
    let etag = headers
        .get(header::ETAG)
        .filter(|etag| !etag.as_bytes().starts_with(b"W/"));
    etag.or_else(|| headers.get(header::LAST_MODIFIED)).cloned()
}

/// A `Content-Range` as sent: `bytes first-last/total` (`total` may be `*`), or
/// `bytes */total` (a 416's: `last` is `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContentRange {
    pub(crate) first: u64,
    pub(crate) last: Option<u64>,
    pub(crate) total: Option<u64>,
}

impl ContentRange {
    /// The byte after the last one sent.
    pub(crate) fn end(&self) -> Option<u64> {
        self.last.and_then(|last| last.checked_add(1))
    }

    /// Whether it holds together: `first <= last < total`, and as many bytes as the
    /// Content-Length `len` says, when given.
    pub(crate) fn consistent_with(&self, len: Option<u64>) -> bool {
        let Some(last) = self.last else {
            return false;
        };
        last >= self.first
            && self.total.is_none_or(|total| last < total)
            && len.is_none_or(|len| Some(len) == (last - self.first).checked_add(1))
    }
}

impl std::fmt::Display for ContentRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total = self.total.map_or("*".to_owned(), |t| t.to_string());
        match self.last {
            Some(last) => write!(f, "bytes {}-{last} of {total}", self.first),
            None => write!(f, "no bytes of {total}"),
        }
    }
}

/// The response's `Content-Range`, when it has one that parses.
pub(crate) fn content_range_of(headers: &HeaderMap) -> Option<ContentRange> {
    let value = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let (range, total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        n => Some(n.parse().ok()?),
    };
    let (first, last) = match range.trim() {
        "*" => (0, None),
        range => {
            let (first, last) = range.split_once('-')?;
            (first.trim().parse().ok()?, Some(last.trim().parse().ok()?))
        }
    };
    Some(ContentRange { first, last, total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;
    use std::time::SystemTime;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    /// (first, total) of the response's `Content-Range`.
    fn content_range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
        content_range_of(headers).map(|range| (range.first, range.total))
    }

    #[test]
    fn content_ranges_parse() {
        let h = |v| content_range_of(&headers(&[(header::CONTENT_RANGE, v)]));
        let range = h("bytes 100-199/1000").unwrap();
        assert_eq!(
            (range.first, range.last, range.total),
            (100, Some(199), Some(1000))
        );
        let range = h("bytes 5-9/*").unwrap();
        assert_eq!((range.first, range.total), (5, None));
        let range = h("bytes */1000").unwrap();
        assert_eq!(
            (range.first, range.last, range.total),
            (0, None, Some(1000))
        );
        assert!(h("items 1-2/3").is_none());
    }

    #[test]
    fn whole_content_ranges_parse_and_are_checked() {
        let h = |v| content_range_of(&headers(&[(header::CONTENT_RANGE, v)])).unwrap();
        let range = h("bytes 0-65535/1099511627776");
        assert_eq!(range.end(), Some(65536));
        assert!(range.consistent_with(Some(65536)));
        assert!(!range.consistent_with(Some(1 << 40)));
        assert!(!h("bytes 10-5/100").consistent_with(None));
        assert!(!h("bytes 0-100/100").consistent_with(None));
        assert!(!h("bytes */100").consistent_with(None));
        assert_eq!(h("bytes 5-9/*").to_string(), "bytes 5-9 of *");
    }

    #[test]
    fn strong_etags_are_preferred_as_validators() {
        let both = headers(&[
            (header::ETAG, "\"v1\""),
            (header::LAST_MODIFIED, "Thu, 01 Jan 2026 00:00:00 GMT"),
        ]);
        assert_eq!(validator(&both).unwrap(), "\"v1\"");
        let weak = headers(&[
            (header::ETAG, "W/\"v1\""),
            (header::LAST_MODIFIED, "Thu, 01 Jan 2026 00:00:00 GMT"),
        ]);
        assert_eq!(validator(&weak).unwrap(), "Thu, 01 Jan 2026 00:00:00 GMT");
        assert!(validator(&HeaderMap::new()).is_none());
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(
            retry_after(&headers(&[(header::RETRY_AFTER, " 3 ")])),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&headers(&[(header::RETRY_AFTER, "soon")])),
            None
        );
    }

    #[test]
    fn retry_after_date() {
        let date = headers(&[(header::RETRY_AFTER, "Fri, 31 Dec 2027 23:59:59 GMT")]);
        let now = httpdate::parse_http_date("Fri, 31 Dec 2027 23:59:00 GMT").unwrap();
        assert_eq!(retry_after_at(&date, now), Some(Duration::from_secs(59)));
        let later = now + Duration::from_secs(3600);
        assert_eq!(retry_after_at(&date, later), Some(Duration::ZERO));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn header_value(text: &str) -> Option<HeaderMap> {
            let value = HeaderValue::from_str(text).ok()?;
            Some(
                [
                    (header::CONTENT_RANGE, value.clone()),
                    (header::RETRY_AFTER, value),
                ]
                .into_iter()
                .collect(),
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]

            #[test]
            fn content_range_and_retry_after_never_panic(
                text in prop_oneof![
                    "bytes [0-9*]{0,25}-[0-9]{0,25}/[0-9*]{0,25}",
                    "[ -~]{0,60}",
                ]
            ) {
                if let Some(headers) = header_value(&text) {
                    let _ = content_range(&headers);
                    let _ = retry_after_at(&headers, SystemTime::UNIX_EPOCH);
                    let _ = retry_after(&headers);
                }
            }

            #[test]
            fn content_range_round_trips(first in 0u64..u64::MAX / 2, len in 1u64..1 << 40, extra in 0u64..1 << 40) {
                let last = first + len - 1;
                let total = last + 1 + extra;
                let h = header_value(&format!("bytes {first}-{last}/{total}")).unwrap();
                prop_assert_eq!(content_range(&h), Some((first, Some(total))));
                let h = header_value(&format!("bytes {first}-{last}/*")).unwrap();
                prop_assert_eq!(content_range(&h), Some((first, None)));
            }

            #[test]
            fn retry_after_round_trips(seconds in 0u64..1 << 40, ahead in 0u64..100_000_000) {
                let h = header_value(&seconds.to_string()).unwrap();
                prop_assert_eq!(retry_after(&h), Some(Duration::from_secs(seconds)));
                let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
                let date = httpdate::fmt_http_date(now + Duration::from_secs(ahead));
                let h = header_value(&date).unwrap();
                prop_assert_eq!(retry_after_at(&h, now), Some(Duration::from_secs(ahead)));
            }
        }
    }
}
