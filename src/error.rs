//! Why a download failed, as data: [`FetchError`], what makes it transient or final, and a
//! readable account of reqwest's and rustls's errors.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;

use crate::http::TooManyRedirects;
use crate::units::{human_bytes, human_duration};

/// Why a download failed. Stored in its [`crate::model::Outcome`]: a failure is data, not a
/// panic.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("HTTP {status}")]
    Http {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    /// `max`: the limit passed (`--max-redirs`), when the error says.
    #[error("too many redirects{}", redirect_limit(*.max))]
    TooManyRedirects { max: Option<usize> },
    #[error("{0}")]
    Network(String),
    /// No connection could be made (unreachable, timed out): the server may be overloaded.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// Nothing listens at the address (a wrong port, a server down): retried only with
    /// `--retry-connrefused`, as curl and wget.
    #[error("{0}")]
    ConnectionRefused(String),
    /// An HTTP/2 server refused a stream (`REFUSED_STREAM`): too many at once.
    #[error("the server refused the request stream (HTTP/2 REFUSED_STREAM)")]
    StreamRefused,
    /// A TLS handshake failure (an untrusted certificate, say): retrying will not help.
    #[error("TLS: {0}")]
    Tls(String),
    #[error("no data for {} (stall timeout)", human_duration(*.0))]
    Stalled(Duration),
    /// The response head did not arrive in time (slow headers are not a stall of the body).
    #[error("no response head within {} (header timeout)", human_duration(*.0))]
    HeaderTimeout(Duration),
    /// A fault no retry can mend: a response head too large, a redirect to an unsupported
    /// URL scheme.
    #[error("{0}")]
    Refused(String),
    #[error("file larger than --max-filesize ({})", human_bytes(*.limit))]
    TooLarge { limit: u64 },
    #[error("took longer than --max-time ({})", human_duration(*.0))]
    MaxTime(Duration),
    #[error("slower than {}/s for {} (--speed-limit)", human_bytes(*.limit), human_duration(*.window))]
    TooSlow { limit: u64, window: Duration },
    #[error("body ended after {got} of {expected} bytes{}", cause_suffix(.cause))]
    ShortBody {
        got: u64,
        expected: u64,
        cause: Option<String>,
    },
    #[error("body longer than its Content-Length of {expected} bytes")]
    LongBody { expected: u64 },
    #[error("server answered the resume request with {0}; starting over")]
    BadResume(String),
    #[error("the file changed on the server (or it stopped serving ranges); starting over")]
    Changed,
    #[error("cannot write {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    /// Another run (or process) holds the `.part`: it is left alone, and this download with it.
    #[error("{} is being downloaded by another run into the same directory; left alone", .path.display())]
    Busy { path: PathBuf },
    /// A response whose range does not hold together, or is not the one asked for.
    #[error("{0}")]
    BadRange(String),
    #[error("SHA-256 mismatch: expected {expected}, got {actual}")]
    Checksum { expected: String, actual: String },
    /// The download could not even start (no runtime, no thread).
    #[error("{0}")]
    Setup(String),
    /// A worker process's own account of its failure (`procs`, `spawn`).
    #[error("{0}")]
    Child(String),
    /// A worker process that died without a result (`procs`, `spawn`).
    #[error("{0}")]
    Crashed(String),
    #[error("interrupted")]
    Interrupted,
    #[error("not started (interrupted)")]
    NotStarted,
    /// A line of the URL list that is not a download (`urls.txt:3: unsupported scheme`).
    #[error("{0}")]
    BadInput(String),
}

fn redirect_limit(max: Option<usize>) -> String {
    match max {
        Some(0) => " (--max-redirs 0 follows none)".to_owned(),
        Some(n) => format!(" (more than {n})"),
        None => String::new(),
    }
}

fn cause_suffix(cause: &Option<String>) -> String {
    cause
        .as_ref()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default()
}

impl FetchError {
    /// An error while reading a body that should have run to byte `expected` and reached `got`.
    pub(crate) fn from_body_error(err: reqwest::Error, got: u64, expected: u64) -> Self {
        if err.is_body() || err.is_decode() {
            FetchError::ShortBody {
                got,
                expected,
                cause: Some(root_cause(&err)),
            }
        } else {
            FetchError::from_reqwest(err)
        }
    }

    /// A failed write to `path` (a `.part` another run holds is [`FetchError::Busy`]).
    pub(crate) fn write(path: PathBuf, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::ResourceBusy {
            FetchError::Busy { path }
        } else {
            FetchError::Write { path, source }
        }
    }

    /// A readable account of a reqwest error, without the URL (the caller names it).
    pub(crate) fn from_reqwest(err: reqwest::Error) -> Self {
        if err.is_redirect() {
            let max = find_source::<TooManyRedirects>(&err).map(|e| e.max);
            return FetchError::TooManyRedirects { max };
        }
        // A builder error (the only URL not checked up front is a redirect's target: another
        // scheme, say), wherever the redirect machinery wrapped it.
        let builder =
            std::iter::successors(Some(&err as &(dyn std::error::Error + 'static)), |e| {
                e.source()
            })
            .filter_map(|e| e.downcast_ref::<reqwest::Error>())
            .find(|e| e.is_builder());
        if let Some(builder) = builder {
            return FetchError::Refused(match builder.url() {
                Some(url) => format!(
                    "redirect refused: {} ({})",
                    root_cause(builder),
                    crate::secret::url(url)
                ),
                None => error_chain(builder),
            });
        }
        if find_source::<hyper::Error>(&err).is_some_and(hyper::Error::is_parse_too_large) {
            return FetchError::Refused(format!("response head too large: {}", root_cause(&err)));
        }
        if err.is_timeout() {
            return FetchError::Network("timed out".to_owned());
        }
        if let Some(tls) = find_source::<rustls::Error>(&err) {
            return FetchError::Tls(crate::tls::describe(tls));
        }
        if find_source::<h2::Error>(&err).and_then(h2::Error::reason)
            == Some(h2::Reason::REFUSED_STREAM)
        {
            return FetchError::StreamRefused;
        }
        if err.is_connect() {
            let refused = find_source::<io::Error>(&err)
                .is_some_and(|e| e.kind() == io::ErrorKind::ConnectionRefused);
            return match refused {
                true => {
                    FetchError::ConnectionRefused(format!("cannot connect: {}", root_cause(&err)))
                }
                false => FetchError::Connect(root_cause(&err)),
            };
        }
        FetchError::Network(crate::secret::text(&error_chain(&err.without_url())))
    }

    /// Whether another attempt may succeed: network faults, timeouts, cut bodies, and the
    /// statuses that say "later" (408, 429, 5xx). Other 4xx, redirect loops, local write
    /// errors and checksum mismatches are final.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            FetchError::Http { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::REQUEST_TIMEOUT
                    || *status == StatusCode::TOO_MANY_REQUESTS
            }
            FetchError::Network(_)
            | FetchError::Connect(_)
            | FetchError::StreamRefused
            | FetchError::ConnectionRefused(_)
            | FetchError::Stalled(_)
            | FetchError::HeaderTimeout(_)
            | FetchError::TooSlow { .. }
            | FetchError::ShortBody { .. }
            | FetchError::BadResume(_)
            | FetchError::BadRange(_)
            | FetchError::Changed => true,
            FetchError::TooManyRedirects { .. }
            | FetchError::Refused(_)
            | FetchError::TooLarge { .. }
            | FetchError::MaxTime(_)
            | FetchError::Tls(_)
            | FetchError::LongBody { .. }
            | FetchError::Write { .. }
            | FetchError::Read { .. }
            | FetchError::Busy { .. }
            | FetchError::Checksum { .. }
            | FetchError::Setup(_)
            | FetchError::Child(_)
            | FetchError::Crashed(_)
            | FetchError::Interrupted
            | FetchError::NotStarted
            | FetchError::BadInput(_) => false,
        }
    }

    /// Whether the server said "too much at once": 429 or 503, a refused stream, a refused
    /// connection. `-j auto` narrows on it.
    pub(crate) fn is_push_back(&self) -> bool {
        match self {
            FetchError::Http { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::SERVICE_UNAVAILABLE
            }
            FetchError::Connect(_)
            | FetchError::ConnectionRefused(_)
            | FetchError::StreamRefused => true,
            _ => false,
        }
    }

    /// Whether the `.part` file must go: its bytes are wrong, or could not be written.
    pub(crate) fn spoils_part(&self) -> bool {
        matches!(
            self,
            FetchError::LongBody { .. }
                | FetchError::Write { .. }
                | FetchError::Checksum { .. }
                | FetchError::TooLarge { .. }
        )
    }

    /// A refused connection: transient, but retried only when asked (`--retry-connrefused`).
    pub(crate) fn is_connection_refused(&self) -> bool {
        matches!(self, FetchError::ConnectionRefused(_))
    }

    pub(crate) fn is_interruption(&self) -> bool {
        matches!(self, FetchError::Interrupted | FetchError::NotStarted)
    }
}

/// The first error of type `T` in `err`'s source chain, looking inside `io::Error`s too (their
/// `source()` skips the error they wrap).
fn find_source<'a, T: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = match e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner),
            None => e.source(),
        };
    }
    None
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// `outer: inner: innermost`, skipping repeats.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn what_is_retried() {
        let status = |code| FetchError::Http {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: None,
        };
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(status(code).is_transient(), "{code}");
        }
        for code in [400, 401, 403, 404, 410] {
            assert!(!status(code).is_transient(), "{code}");
        }
        assert!(FetchError::Stalled(Duration::from_secs(1)).is_transient());
        assert!(!FetchError::TooManyRedirects { max: Some(10) }.is_transient());
        assert_eq!(
            FetchError::TooManyRedirects { max: Some(0) }.to_string(),
            "too many redirects (--max-redirs 0 follows none)"
        );
        let disk_full = FetchError::Write {
            path: "x".into(),
            source: io::Error::other("full"),
        };
        assert!(!disk_full.is_transient());
    }
}
