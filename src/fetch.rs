//! One download: request, stream the body to `<name>.part`, check it, rename it into place.
//!
//! Every mode calls [`Downloader::fetch`]; only the scheduling around it differs.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode, Url};

use crate::http::MAX_REDIRECTS;
use crate::naming::{NameRegistry, PART_SUFFIX};
use crate::progress::{Progress, Tracker};
use crate::units::{human_bytes, human_duration};

/// Bytes buffered between the socket and the file: few, large writes, bounded memory.
const WRITE_BUFFER: usize = 256 * 1024;

/// One URL to fetch; `index` is its place in the input, which results are reported in.
#[derive(Debug, Clone)]
pub struct Target {
    pub index: usize,
    pub url: Url,
}

/// Why a download failed. Stored in its [`Outcome`]: a failure is data, not a panic.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("HTTP {0}")]
    Status(StatusCode),
    #[error("too many redirects (more than {MAX_REDIRECTS})")]
    TooManyRedirects,
    #[error("{0}")]
    Network(String),
    #[error("body ended after {got} of {expected} bytes{}", cause_suffix(.cause))]
    ShortBody {
        got: u64,
        expected: u64,
        cause: Option<String>,
    },
    #[error("body longer than its Content-Length of {expected} bytes")]
    LongBody { expected: u64 },
    #[error("cannot write {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
    /// The download could not even start (no runtime, no thread).
    #[error("{0}")]
    Setup(String),
}

fn cause_suffix(cause: &Option<String>) -> String {
    cause
        .as_ref()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default()
}

impl FetchError {
    /// A readable account of a reqwest error, without the URL (the caller names it).
    fn from_reqwest(err: reqwest::Error) -> Self {
        if err.is_redirect() {
            return FetchError::TooManyRedirects;
        }
        if err.is_timeout() {
            return FetchError::Network("timed out".to_owned());
        }
        let root = root_cause(&err);
        if err.is_connect() {
            return FetchError::Network(format!("cannot connect: {root}"));
        }
        FetchError::Network(error_chain(&err.without_url()))
    }
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

/// How a download ended.
#[derive(Debug)]
pub enum Status {
    Saved {
        path: PathBuf,
    },
    /// `--no-clobber` and the file was already there; it was left untouched.
    Skipped {
        path: PathBuf,
    },
    Failed(FetchError),
}

/// The result of one download, reported in input order.
#[derive(Debug)]
pub struct Outcome {
    pub index: usize,
    pub url: Url,
    pub status: Status,
    /// The final response's status code, when one arrived.
    pub http_status: Option<u16>,
    /// Body bytes received.
    pub bytes: u64,
    pub elapsed: Duration,
    /// The OS thread that finished the download: shows how a mode spreads its I/O.
    pub thread: ThreadId,
}

impl Outcome {
    pub fn is_failure(&self) -> bool {
        matches!(self.status, Status::Failed(_))
    }

    /// Where the file is (saved, or already there), if anywhere.
    pub fn path(&self) -> Option<&Path> {
        match &self.status {
            Status::Saved { path } | Status::Skipped { path } => Some(path),
            Status::Failed(_) => None,
        }
    }

    /// One human line about this download.
    pub fn line(&self) -> String {
        match &self.status {
            Status::Saved { path } => format!(
                "saved   {} ({} in {})",
                path.display(),
                human_bytes(self.bytes),
                human_duration(self.elapsed)
            ),
            Status::Skipped { path } => {
                format!("skipped {}: already exists (--no-clobber)", path.display())
            }
            Status::Failed(err) => format!("FAILED  {}: {err}", self.url),
        }
    }
}

/// What every download of a run shares: where files go, their names, the display.
pub struct Downloader {
    pub output_dir: PathBuf,
    pub names: NameRegistry,
    pub no_clobber: bool,
    pub progress: Progress,
}

/// What a download learned before it ended, kept whether it succeeds or not.
#[derive(Default)]
struct Received {
    http_status: Option<u16>,
    bytes: u64,
}

impl Downloader {
    /// Downloads `target` with `client`. Never fails: a failure is in the [`Outcome`].
    pub async fn fetch(&self, client: &Client, target: &Target) -> Outcome {
        let started = Instant::now();
        let tracker = self.progress.start(self.names.planned(target.index));
        let mut received = Received::default();
        let status = self
            .download(client, target, &tracker, &mut received)
            .await
            .unwrap_or_else(Status::Failed);
        let outcome = Outcome {
            index: target.index,
            url: target.url.clone(),
            status,
            http_status: received.http_status,
            bytes: received.bytes,
            elapsed: started.elapsed(),
            thread: thread::current().id(),
        };
        tracker.finish(&outcome);
        outcome
    }

    /// The outcome of a download that failed before it could start.
    pub fn failed_early(&self, target: &Target, why: FetchError) -> Outcome {
        let tracker = self.progress.start(self.names.planned(target.index));
        let outcome = Outcome {
            index: target.index,
            url: target.url.clone(),
            status: Status::Failed(why),
            http_status: None,
            bytes: 0,
            elapsed: Duration::ZERO,
            thread: thread::current().id(),
        };
        tracker.finish(&outcome);
        outcome
    }

    async fn download(
        &self,
        client: &Client,
        target: &Target,
        tracker: &Tracker,
        received: &mut Received,
    ) -> Result<Status, FetchError> {
        let response = client
            .get(target.url.clone())
            .send()
            .await
            .map_err(FetchError::from_reqwest)?;
        received.http_status = Some(response.status().as_u16());
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status()));
        }
        let name = self.names.for_response(target.index, response.url());
        let path = self.output_dir.join(&name);
        if self.no_clobber && path.symlink_metadata().is_ok() {
            return Ok(Status::Skipped { path });
        }
        let part = self.output_dir.join(format!("{name}{PART_SUFFIX}"));
        let result = stream_to_file(response, &part, tracker, received).await;
        let result = result.and_then(|()| {
            std::fs::rename(&part, &path).map_err(|source| FetchError::Write {
                path: path.clone(),
                source,
            })
        });
        if result.is_err() {
            // Best effort: the error being reported matters more than a failed clean-up.
            let _ = std::fs::remove_file(&part);
        }
        result.map(|()| Status::Saved { path })
    }
}

/// Streams the body into `part` and checks its length against Content-Length.
async fn stream_to_file(
    mut response: reqwest::Response,
    part: &Path,
    tracker: &Tracker,
    received: &mut Received,
) -> Result<(), FetchError> {
    let expected = response.content_length();
    tracker.set_length(expected);
    let write_error = |source| FetchError::Write {
        path: part.to_owned(),
        source,
    };
    let file = File::create(part).map_err(write_error)?;
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(err) => {
                return Err(match expected {
                    Some(expected) if err.is_body() || err.is_decode() => FetchError::ShortBody {
                        got: received.bytes,
                        expected,
                        cause: Some(root_cause(&err)),
                    },
                    _ => FetchError::from_reqwest(err),
                });
            }
        };
        out.write_all(&chunk).map_err(write_error)?;
        received.bytes += chunk.len() as u64;
        tracker.advance(chunk.len() as u64);
    }
    out.flush().map_err(write_error)?;
    match expected {
        Some(expected) if received.bytes < expected => Err(FetchError::ShortBody {
            got: received.bytes,
            expected,
            cause: None,
        }),
        Some(expected) if received.bytes > expected => Err(FetchError::LongBody { expected }),
        _ => Ok(()),
    }
}
