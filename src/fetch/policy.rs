//! The rules every download of a run follows ([`Policy`]: retries, timeouts, limits, what is
//! checked), and the steps of one HTTP exchange under them: a request with its credentials,
//! the response head within the timeout, each body chunk within the stall timeout and the
//! minimum speed, and the wait before a retry. Whole downloads ([`crate::fetch`]) and their
//! segments ([`crate::fetch::segments`]) both go through these.

use std::future::Future;
use std::time::Duration;

use reqwest::{Client, RequestBuilder, Response, Url};

use super::trace::Verbose;
use crate::auth::Auth;
use crate::error::FetchError;
use crate::progress::Tracker;
use serde::{Deserialize, Serialize};

/// The longest wait between two attempts, from backoff or from a server's Retry-After.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// A body that receives nothing for this long has what it buffered written out (a busy body
/// keeps writing in large blocks).
pub(crate) const IDLE_FLUSH_AFTER: Duration = Duration::from_millis(50);
/// A body that keeps receiving has what it buffered written out at least this often, so a
/// slow, steady body (never quiet for [`IDLE_FLUSH_AFTER`]) is on disk too.
pub(crate) const WRITE_OUT_EVERY: Duration = Duration::from_millis(250);

/// How downloads behave when things go wrong, and what they check.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Policy {
    /// Attempts after the first, on transient faults only.
    pub(crate) retries: u32,
    /// Whether a refused connection is retried too (`--retry-connrefused`).
    pub(crate) retry_connrefused: bool,
    /// The first backoff; each retry doubles it (with jitter).
    pub(crate) retry_delay: Duration,
    /// How long a download may go without receiving a byte.
    pub(crate) stall_timeout: Duration,
    /// Resume `.part` files left by an earlier run (`-c`).
    pub(crate) resume: bool,
    /// Name files as the server's Content-Disposition suggests.
    pub(crate) content_disposition: bool,
    /// Compute every file's SHA-256 (`--print-sha256`).
    pub(crate) sha256: bool,
    /// Keep existing files (`--no-clobber`).
    pub(crate) no_clobber: bool,
    /// Ranges to split each file into (`-s`).
    pub(crate) segments: Segments,
    /// Files larger than this are refused, or cut and failed (`--max-filesize`).
    pub(crate) max_filesize: Option<u64>,
    /// The longest one download may take, all attempts together (`--max-time`).
    pub(crate) max_time: Option<Duration>,
    /// A body slower than this many bytes per second over `speed_time` is abandoned
    /// (`--speed-limit`).
    pub(crate) speed_limit: Option<u64>,
    /// The window `speed_limit` is measured over (`--speed-time`).
    pub(crate) speed_time: Duration,
    /// Credentials for the hosts of the URLs given (`-u`, `--netrc`).
    pub(crate) auth: Auth,
    /// Whether `Range` requests may be sent (resume, segments). Not with `--compressed`: the
    /// ranges of an encoded body are not the file's.
    pub(crate) ranges: bool,
    /// `-v`: each request and response head on stderr.
    #[serde(default)]
    pub(crate) verbose: Option<Verbose>,
    /// The saved file's mtime is the server's Last-Modified (off: `--no-use-server-timestamps`).
    pub(crate) server_timestamps: bool,
    /// `-N`: a file already there is asked for with If-Modified-Since its mtime, and kept on
    /// 304 Not Modified.
    pub(crate) timestamping: bool,
    /// `-H` headers (checked), sent to the origin of the URL given only.
    #[serde(default)]
    pub(crate) headers: Vec<(String, String)>,
    /// `--location-trusted`: the `-H` headers follow redirects to other origins too.
    #[serde(default)]
    pub(crate) location_trusted: bool,
    /// `--max-redirs`, for the redirects [`Policy::send`] follows itself.
    #[serde(default = "default_max_redirects")]
    pub(crate) max_redirects: usize,
}

fn default_max_redirects() -> usize {
    crate::http::MAX_REDIRECTS
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            retries: 3,
            retry_connrefused: false,
            retry_delay: Duration::from_millis(500),
            stall_timeout: Duration::from_secs(30),
            resume: false,
            content_disposition: false,
            sha256: false,
            no_clobber: false,
            segments: Segments::default(),
            max_filesize: None,
            max_time: None,
            speed_limit: None,
            speed_time: DEFAULT_SPEED_TIME,
            auth: Auth::default(),
            ranges: true,
            verbose: None,
            server_timestamps: true,
            timestamping: false,
            headers: Vec::new(),
            location_trusted: false,
            max_redirects: crate::http::MAX_REDIRECTS,
        }
    }
}

/// `--speed-time` when only `--speed-limit` is given (curl's default).
pub(crate) const DEFAULT_SPEED_TIME: Duration = Duration::from_secs(30);

impl Policy {
    /// After a failed attempt: `false` if `err` is final or the retries are spent; otherwise
    /// counts the retry in `retries`, shows it, waits the backoff, and returns `true`.
    pub(crate) async fn wait_to_retry(
        &self,
        err: &FetchError,
        retries: &mut u32,
        tracker: &Tracker,
    ) -> bool {
        let refused = err.is_connection_refused() && !self.retry_connrefused;
        if !err.is_transient() || refused || *retries >= self.retries {
            return false;
        }
        *retries += 1;
        let wait = backoff(self.retry_delay, *retries, err);
        tracker.retrying(*retries, self.retries, err, wait);
        tokio::time::sleep(wait).await;
        true
    }

    /// Fails with [`FetchError::HeaderTimeout`] if the response head takes longer than the
    /// stall timeout.
    pub(crate) async fn or_header_timeout<T>(
        &self,
        send: impl Future<Output = T>,
    ) -> Result<T, FetchError> {
        let limit = self.stall_timeout;
        tokio::time::timeout(limit, send)
            .await
            .map_err(|_| FetchError::HeaderTimeout(limit))
    }

    /// The next chunk of `response`'s body, within the stall timeout, and (with
    /// `--speed-limit`) failing when `meter` finds the body too slow.
    pub(crate) async fn next_chunk(
        &self,
        response: &mut Response,
        meter: &mut SpeedMeter,
    ) -> Result<reqwest::Result<Option<bytes::Bytes>>, FetchError> {
        let chunk = self.or_stall(response.chunk());
        tokio::pin!(chunk);
        loop {
            let Some(deadline) = meter.deadline() else {
                return chunk.await;
            };
            tokio::select! {
                got = &mut chunk => {
                    if let Ok(Ok(Some(bytes))) = &got {
                        meter.bytes += bytes.len() as u64;
                    }
                    return got;
                }
                () = tokio::time::sleep_until(deadline) => meter.check()?,
            }
        }
    }

    /// Sends `request` (for `asked`, the URL given) and waits for its response head within
    /// the header timeout; with `-v`, shows both heads on `tracker`.
    async fn exchange(
        &self,
        asked: &Url,
        request: RequestBuilder,
        tracker: &Tracker,
    ) -> Result<Response, FetchError> {
        let Some(verbose) = &self.verbose else {
            return self
                .or_header_timeout(request.send())
                .await?
                .map_err(FetchError::from_reqwest);
        };
        let (client, request) = request.build_split();
        let request = request.map_err(FetchError::from_reqwest)?;
        let sent = request.url().clone();
        tracker.trace(&verbose.request_head(asked, &request));
        let response = self
            .or_header_timeout(client.execute(request))
            .await?
            .map_err(FetchError::from_reqwest)?;
        tracker.trace(&verbose.response_head(&sent, &response));
        Ok(response)
    }

    /// A GET of `url`, a URL given, with its `-H` headers and its credentials (`-u`,
    /// `--netrc`) if it has any.
    pub(crate) fn request(&self, client: &Client, url: &Url) -> reqwest::RequestBuilder {
        let mut request = client.get(url.clone());
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        match self.auth.for_url(url) {
            Some(credentials) => request.basic_auth(credentials.user, credentials.password),
            None => request,
        }
    }

    /// Sends the GET of `url` (a URL given) that `with` completes (a `Range`, say), within
    /// the header timeout (with `-v`, each head shown on `tracker`). A redirect to another
    /// origin that the client hands back (`-H` headers given, no `--location-trusted`) is
    /// followed here, by requests without those headers and without credentials, as curl does.
    pub(crate) async fn send(
        &self,
        client: &Client,
        url: &Url,
        with: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
        tracker: &Tracker,
    ) -> Result<Response, FetchError> {
        let send = |request: reqwest::RequestBuilder| self.exchange(url, with(request), tracker);
        let mut response = send(self.request(client, url)).await?;
        let mut followed = 0;
        while response.status().is_redirection() && !self.headers.is_empty() {
            let Some(next) = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|location| location.to_str().ok())
                .and_then(|location| response.url().join(location).ok())
            else {
                break;
            };
            followed += 1;
            if followed > self.max_redirects {
                return Err(FetchError::TooManyRedirects {
                    max: Some(self.max_redirects),
                });
            }
            response = send(client.get(next)).await?;
        }
        Ok(response)
    }

    /// Fails with [`FetchError::Stalled`] if `work` takes longer than the stall timeout.
    pub(crate) async fn or_stall<T>(&self, work: impl Future<Output = T>) -> Result<T, FetchError> {
        let limit = self.stall_timeout;
        tokio::time::timeout(limit, work)
            .await
            .map_err(|_| FetchError::Stalled(limit))
    }
}

/// `--speed-limit`: bytes received in the current window of `--speed-time`.
pub(crate) struct SpeedMeter {
    limit: Option<u64>,
    window: Duration,
    started: tokio::time::Instant,
    bytes: u64,
}

impl SpeedMeter {
    pub(crate) fn new(policy: &Policy) -> Self {
        SpeedMeter {
            limit: policy.speed_limit.filter(|&limit| limit > 0),
            window: policy.speed_time,
            started: tokio::time::Instant::now(),
            bytes: 0,
        }
    }

    /// When the current window ends, if there is a limit.
    fn deadline(&self) -> Option<tokio::time::Instant> {
        self.limit.map(|_| self.started + self.window)
    }

    /// At a window's end: fails when the window's bytes fell short of the limit, else
    /// starts the next window (like curl's --speed-limit/--speed-time).
    fn check(&mut self) -> Result<(), FetchError> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let elapsed = self.started.elapsed();
        if elapsed < self.window {
            return Ok(());
        }
        if (self.bytes as f64) < limit as f64 * elapsed.as_secs_f64() {
            return Err(FetchError::TooSlow {
                limit,
                window: self.window,
            });
        }
        self.started = tokio::time::Instant::now();
        self.bytes = 0;
        Ok(())
    }
}

/// Exponential backoff with jitter: `delay × 2^(n-1)`, scaled by a random factor in
/// [0.5, 1.5), capped; never shorter than a server's Retry-After (itself capped).
fn backoff(delay: Duration, retry: u32, err: &FetchError) -> Duration {
    let exponential = delay.saturating_mul(1 << retry.saturating_sub(1).min(16));
    let jittered = exponential
        .mul_f64(0.5 + fastrand::f64())
        .min(MAX_RETRY_WAIT);
    match err {
        FetchError::Http {
            retry_after: Some(after),
            ..
        } => jittered.max((*after).min(MAX_RETRY_WAIT)),
        _ => jittered,
    }
}

/// Smallest segment: below this, another connection costs more than it gives.
const MIN_SEGMENT_SIZE: u64 = 1 << 20;
/// Segment size `auto` aims for.
const AUTO_SEGMENT_SIZE: u64 = 8 << 20;
/// Most segments `auto` makes.
const AUTO_MAX_SEGMENTS: u64 = 8;
/// How many ranges to split a file into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Segments {
    Fixed(u64),
    /// From the size: one segment per 8 MiB, at most 8.
    Auto,
}

impl Default for Segments {
    fn default() -> Self {
        Segments::Fixed(1)
    }
}

impl Segments {
    /// Parses `N` (at least 1) or `auto`.
    pub(crate) fn parse(s: &str) -> Result<Segments, String> {
        match s {
            "auto" => Ok(Segments::Auto),
            n => match n.parse::<u64>() {
                Ok(0) | Err(_) => Err(format!("{s:?}: expected a number of at least 1, or auto")),
                Ok(n) => Ok(Segments::Fixed(n)),
            },
        }
    }

    /// Whether a download should ask for ranges at all.
    pub(crate) fn wanted(self) -> bool {
        self != Segments::Fixed(1)
    }

    /// The most segments one file can get.
    pub(crate) fn most(self) -> usize {
        let n = match self {
            Segments::Fixed(n) => n,
            Segments::Auto => AUTO_MAX_SEGMENTS,
        };
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// How many segments a file of `size` bytes gets: none under 1 MiB.
    pub(crate) fn count(self, size: u64) -> u64 {
        let n = match self {
            Segments::Fixed(n) => n,
            Segments::Auto => (size / AUTO_SEGMENT_SIZE).min(AUTO_MAX_SEGMENTS),
        };
        n.min(size / MIN_SEGMENT_SIZE).max(1)
    }
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_honours_retry_after() {
        let base = Duration::from_millis(100);
        let err = FetchError::Network("x".into());
        for retry in 1..=4 {
            let wait = backoff(base, retry, &err);
            let nominal = base * (1 << (retry - 1));
            assert!(
                wait >= nominal / 2 && wait < nominal * 3 / 2,
                "{retry}: {wait:?}"
            );
        }
        assert!(backoff(Duration::from_secs(10), 30, &err) <= MAX_RETRY_WAIT);
        let later = FetchError::Http {
            status: StatusCode::SERVICE_UNAVAILABLE,
            retry_after: Some(Duration::from_secs(2)),
        };
        assert!(backoff(base, 1, &later) >= Duration::from_secs(2));
        let too_late = FetchError::Http {
            status: StatusCode::SERVICE_UNAVAILABLE,
            retry_after: Some(Duration::from_secs(3600)),
        };
        assert_eq!(backoff(base, 1, &too_late), MAX_RETRY_WAIT);
    }

    #[test]
    fn segment_counts() {
        assert_eq!(Segments::Fixed(8).count(1 << 30), 8);
        assert_eq!(
            Segments::Fixed(8).count(3 << 20),
            3,
            "never a segment under 1 MiB"
        );
        assert_eq!(Segments::Fixed(8).count(1000), 1);
        assert_eq!(Segments::Auto.count(4 << 20), 1);
        assert_eq!(Segments::Auto.count(24 << 20), 3);
        assert_eq!(Segments::Auto.count(1 << 30), 8);
        assert_eq!(Segments::parse("auto"), Ok(Segments::Auto));
        assert_eq!(Segments::parse("4"), Ok(Segments::Fixed(4)));
        assert!(Segments::parse("0").is_err());
        assert!(!Segments::Fixed(1).wanted() && Segments::Auto.wanted());
    }
}
