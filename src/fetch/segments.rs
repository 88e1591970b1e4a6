//! Segmented downloads (`-s N`): one file fetched as N ranges over N connections at once,
//! each written at its offset into the preallocated `.part` file (positional writes), each
//! resumed on its own after a fault.
//!
//! Bytes land out of order, so the `.part` file's length says nothing about what it holds. If a
//! segmented download does not complete (a final error, Ctrl-C), the `.part` is cut back to
//! the bytes known good from its start, so that a later `-c` resumes from there safely.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use futures_util::future::try_join_all;
use reqwest::header::{self, HeaderValue};
use reqwest::{Client, Response, StatusCode};

use super::headers::content_range;
use super::output::Preallocated;
use super::policy::{IDLE_FLUSH_AFTER, Policy, SpeedMeter};
use super::throttle::Throttle;
use crate::error::FetchError;
use crate::http::HttpSettings;
use crate::model::Target;
use crate::progress::Tracker;

/// Bytes a segment gathers before one positional write.
const SEGMENT_BUFFER: usize = 256 * 1024;

/// One range of the file: `[start, end)`, and how much of it is on disk.
struct Segment {
    start: u64,
    end: u64,
    written: AtomicU64,
}

impl Segment {
    fn position(&self) -> u64 {
        self.start + self.written.load(Ordering::Relaxed)
    }
}

/// The file's ranges; on drop without [`Layout::complete`], cuts the `.part` back to its good
/// prefix (this also runs when the download is cancelled and its future dropped).
struct Layout<'a> {
    part: &'a Preallocated,
    segments: Vec<Segment>,
    complete: bool,
}

impl Layout<'_> {
    /// The bytes from the file's start that are all on disk.
    fn good_prefix(&self) -> u64 {
        let mut prefix = 0;
        for segment in &self.segments {
            prefix = segment.position();
            if prefix < segment.end {
                break;
            }
        }
        prefix
    }
}

impl Drop for Layout<'_> {
    fn drop(&mut self) {
        if !self.complete {
            // Best effort: if even this fails, -c will find the length wrong and start over.
            let _ = self.part.keep_first(self.good_prefix());
        }
    }
}

/// One download's exchanges with its server: the run's rules and throttle, the client, the
/// URL, and where its progress shows.
pub struct Transfer<'a> {
    pub policy: &'a Policy,
    pub throttle: &'a Throttle,
    pub client: &'a Client,
    /// What each further segment builds its own client from: its own connection, since over
    /// HTTP/2 one client would carry every segment on one connection, which a per-connection
    /// rate limit (a CDN's, a mirror's) caps as a whole.
    pub http: &'a HttpSettings,
    pub target: &'a Target,
    pub tracker: &'a Tracker,
}

/// What every segment of one download shares.
struct Shared<'a> {
    transfer: &'a Transfer<'a>,
    part: &'a Preallocated,
    validator: Option<HeaderValue>,
    received: AtomicU64,
    retries: AtomicU32,
}

/// What a segmented download fetched, for its [`crate::model::Outcome`].
pub struct Fetched {
    pub received: u64,
    pub retries: u32,
}

/// Downloads `part` (all its length) as `count` segments. `first` is the response to
/// `Range: bytes=0-`, which serves the first segment.
pub async fn download(
    transfer: &Transfer<'_>,
    first: Response,
    part: Preallocated,
    count: u64,
) -> (Result<(), FetchError>, Fetched) {
    let total = part.len;
    let mut layout = Layout {
        part: &part,
        segments: (0..count)
            .map(|k| Segment {
                start: total * k / count,
                end: total * (k + 1) / count,
                written: AtomicU64::new(0),
            })
            .collect(),
        complete: false,
    };
    let shared = Shared {
        transfer,
        part: &part,
        validator: super::headers::validator(first.headers()),
        received: AtomicU64::new(0),
        retries: AtomicU32::new(0),
    };
    transfer.tracker.set_length(Some(total));
    let mut first = Some(first);
    let result = try_join_all(
        layout
            .segments
            .iter()
            .map(|segment| fetch_segment(&shared, segment, first.take())),
    )
    .await
    .map(|_| ());
    layout.complete = result.is_ok();
    let fetched = Fetched {
        received: shared.received.load(Ordering::Relaxed),
        retries: shared.retries.load(Ordering::Relaxed),
    };
    (result, fetched)
}

/// Fetches one segment, retrying (and resuming) it alone on transient faults.
async fn fetch_segment(
    shared: &Shared<'_>,
    segment: &Segment,
    mut response: Option<Response>,
) -> Result<(), FetchError> {
    let mut retries = 0;
    // The first segment goes on the connection of the first response; each other on its own.
    let own = match response {
        Some(_) => None,
        None => Some(
            shared
                .transfer
                .http
                .client()
                .map_err(|err| FetchError::Setup(format!("{err:#}")))?,
        ),
    };
    let client = own.as_ref().unwrap_or(shared.transfer.client);
    loop {
        let result = match response.take() {
            Some(response) => stream(shared, segment, response).await,
            None => request_and_stream(shared, segment, client).await,
        };
        let err = match result {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        // A changed file is not this segment's to retry: the whole download starts over.
        let changed = matches!(err, FetchError::Changed);
        if changed
            || !shared
                .transfer
                .policy
                .wait_to_retry(&err, &mut retries, shared.transfer.tracker)
                .await
        {
            return Err(err);
        }
        shared.retries.fetch_add(1, Ordering::Relaxed);
    }
}

/// Asks `client` for the rest of `segment` and streams it.
async fn request_and_stream(
    shared: &Shared<'_>,
    segment: &Segment,
    client: &Client,
) -> Result<(), FetchError> {
    let from = segment.position();
    let mut request = shared
        .transfer
        .policy
        .request(client, &shared.transfer.target.url)
        .header(header::RANGE, format!("bytes={from}-{}", segment.end - 1));
    if let Some(validator) = &shared.validator {
        request = request.header(header::IF_RANGE, validator.clone());
    }
    let transfer = &shared.transfer;
    let response = transfer
        .policy
        .send(&transfer.target.url, request, transfer.tracker)
        .await?;
    let status = response.status();
    if status != StatusCode::PARTIAL_CONTENT {
        return Err(match status.is_success() {
            // The whole file again: it changed, or ranges are no longer served.
            true => FetchError::Changed,
            false => super::headers::http_error(&response),
        });
    }
    match content_range(response.headers()) {
        Some((first, _)) if first == from => stream(shared, segment, response).await,
        range => Err(FetchError::BadResume(format!(
            "an unexpected range {range:?}"
        ))),
    }
}

/// Writes `response`'s body at the segment's position until the segment is full.
async fn stream(
    shared: &Shared<'_>,
    segment: &Segment,
    mut response: Response,
) -> Result<(), FetchError> {
    let write_error = |source| FetchError::Write {
        path: shared.part.path.clone(),
        source,
    };
    let mut buffer = Vec::with_capacity(SEGMENT_BUFFER);
    let mut meter = SpeedMeter::new(shared.transfer.policy);
    let flush = |buffer: &mut Vec<u8>| -> Result<(), FetchError> {
        crate::platform::write_all_at(&shared.part.file, buffer, segment.position())
            .map_err(write_error)?;
        segment
            .written
            .fetch_add(buffer.len() as u64, Ordering::Relaxed);
        buffer.clear();
        Ok(())
    };
    while segment.position() + (buffer.len() as u64) < segment.end {
        let waiting = shared.transfer.policy.next_chunk(&mut response, &mut meter);
        let chunk = match tokio::time::timeout(IDLE_FLUSH_AFTER, waiting).await {
            Ok(chunk) => chunk?,
            Err(_) => {
                // The network went quiet: what arrived goes to disk now.
                flush(&mut buffer)?;
                shared
                    .transfer
                    .policy
                    .next_chunk(&mut response, &mut meter)
                    .await?
            }
        };
        let chunk = match chunk {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                flush(&mut buffer)?;
                return Err(FetchError::ShortBody {
                    got: segment.position(),
                    expected: segment.end,
                    cause: None,
                });
            }
            Err(err) => {
                // Keep what arrived: the retry asks for the rest.
                flush(&mut buffer)?;
                return Err(FetchError::from_body_error(
                    err,
                    segment.position(),
                    segment.end,
                ));
            }
        };
        // The first segment's response runs to the end of the file; take only its share.
        let room = segment.end - segment.position() - buffer.len() as u64;
        let take = chunk.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        shared.transfer.throttle.spend(take as u64).await;
        buffer.extend_from_slice(&chunk[..take]);
        shared.received.fetch_add(take as u64, Ordering::Relaxed);
        shared.transfer.tracker.advance(take as u64);
        if buffer.len() >= SEGMENT_BUFFER {
            flush(&mut buffer)?;
        }
    }
    flush(&mut buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_good_prefix_stops_at_the_first_gap() {
        let part = Preallocated {
            file: tempfile::tempfile().unwrap(),
            path: "unused".into(),
            len: 30,
        };
        let layout = Layout {
            part: &part,
            segments: [(0, 10, 10), (10, 20, 4), (20, 30, 10)]
                .into_iter()
                .map(|(start, end, written)| Segment {
                    start,
                    end,
                    written: AtomicU64::new(written),
                })
                .collect(),
            complete: true,
        };
        assert_eq!(layout.good_prefix(), 14);
    }
}
