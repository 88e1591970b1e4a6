//! Segmented downloads (`-s N`): one file fetched as N ranges over N connections at once,
//! each written at its offset into the preallocated `.part` file (positional writes), each
//! resumed on its own after a fault.
//!
//! Bytes land out of order, so the `.part` file's length says nothing about what it holds: its
//! record ([`super::record`]) lists the ranges written, updated (after a sync) at most every
//! [`RECORD_EVERY`] while bytes flow and whenever the network goes quiet, so a killed process
//! leaves a `.part` whose record claims no byte that is not there. If a segmented download
//! does not complete (a final error, Ctrl-C), the `.part` is cut back to the bytes known good
//! from its start, so that a later `-c` resumes from there.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::try_join_all;
use reqwest::header::{self, HeaderValue};
use reqwest::{Client, Response, StatusCode};

use bytes::Bytes;

use super::headers::content_range_of;
use super::output::{FileFor, Preallocated};
use super::pump::{Drain, End, Pump};
use crate::error::FetchError;
use crate::http::HttpSettings;
use crate::model::Target;

/// Bytes a segment gathers before one positional write.
const SEGMENT_BUFFER: usize = 256 * 1024;
/// While bytes flow, the record is brought up to date (a sync and a rename) at most this
/// often: what a killed process can cost a later `-c` of a busy download.
pub(crate) const RECORD_EVERY: Duration = Duration::from_secs(1);

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
    file: &'a FileFor<'a>,
    segments: Vec<Segment>,
    complete: bool,
}

/// The ranges of `segments` on disk, one per segment (an empty one too: a later `-c` finds
/// each segment's start in them).
fn written(segments: &[Segment]) -> Vec<(u64, u64)> {
    segments
        .iter()
        .map(|segment| (segment.start, segment.position()))
        .collect()
}

/// The segments a record of `ranges` describes in a file of `total` bytes: each from its
/// start to the next one's (the last to the end), with what was written; `None` when the
/// ranges do not describe segments of that file (unordered, overlapping, out of bounds).
pub(crate) fn from_record(ranges: &[(u64, u64)], total: u64) -> Option<Vec<(u64, u64, u64)>> {
    let mut layout = Vec::with_capacity(ranges.len());
    for (k, &(start, written_to)) in ranges.iter().enumerate() {
        let end = ranges.get(k + 1).map_or(total, |next| next.0);
        if start >= end || written_to < start || written_to > end {
            return None;
        }
        layout.push((start, end, written_to - start));
    }
    (layout.first().is_some_and(|first| first.0 == 0)).then_some(layout)
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
            // Best effort: if even this fails, the record still proves no more than is there.
            let _ = self.part.keep_first(self.file, self.good_prefix());
        }
    }
}

/// One download's exchanges with its server: the run's rules, throttle and progress (the
/// pump), the client, the URL, and the file.
pub(super) struct Transfer<'a> {
    pub(super) pump: Pump<'a>,
    pub(super) client: &'a Client,
    /// What each further segment builds its own client from: its own connection, since over
    /// HTTP/2 one client would carry every segment on one connection, which a per-connection
    /// rate limit (a CDN's, a mirror's) caps as a whole.
    pub(super) http: &'a HttpSettings,
    pub(super) target: &'a Target,
    /// The file in the output directory (its `.part` and record).
    pub(super) file: FileFor<'a>,
}

/// What every segment of one download shares.
struct Shared<'a> {
    transfer: &'a Transfer<'a>,
    part: &'a Preallocated,
    segments: &'a [Segment],
    validator: Option<HeaderValue>,
    received: AtomicU64,
    retries: AtomicU32,
    /// When the record was last brought up to date.
    recorded: Mutex<Instant>,
}

impl Shared<'_> {
    /// Brings the record up to date with the ranges on disk: now if `now`, else if it is
    /// [`RECORD_EVERY`] old.
    fn record(&self, now: bool) -> Result<(), FetchError> {
        let mut recorded = crate::sync::lock(&self.recorded);
        if !now && recorded.elapsed() < RECORD_EVERY {
            return Ok(());
        }
        self.part
            .record(&self.transfer.file, written(self.segments))?;
        *recorded = Instant::now();
        Ok(())
    }
}

/// What a segmented download fetched, for its [`crate::model::Outcome`].
pub(crate) struct Fetched {
    pub(crate) received: u64,
    pub(crate) retries: u32,
}

/// Downloads `part` (all its length) as `count` segments. `first` is the response to
/// `Range: bytes=0-`, which serves the first segment.
pub(super) async fn download(
    transfer: &Transfer<'_>,
    first: Response,
    part: &Preallocated,
    count: u64,
) -> (Result<(), FetchError>, Fetched) {
    let total = part.len;
    let layout = (0..count)
        .map(|k| (total * k / count, total * (k + 1) / count, 0))
        .collect();
    let validator = super::headers::validator(first.headers());
    run(transfer, Some(first), part, layout, validator).await
}

/// Resumes a segmented download from its record: each segment where it stopped (`layout`:
/// start, end, bytes written), with `If-Range` carrying `validator`, so that a changed file
/// fails with [`FetchError::Changed`] instead of mixing.
pub(super) async fn resume(
    transfer: &Transfer<'_>,
    part: &Preallocated,
    layout: Vec<(u64, u64, u64)>,
    validator: HeaderValue,
) -> (Result<(), FetchError>, Fetched) {
    run(transfer, None, part, layout, Some(validator)).await
}

/// Downloads the segments of `layout` into `part`; `first` (when given) serves the first.
async fn run(
    transfer: &Transfer<'_>,
    first: Option<Response>,
    part: &Preallocated,
    layout: Vec<(u64, u64, u64)>,
    validator: Option<HeaderValue>,
) -> (Result<(), FetchError>, Fetched) {
    let total = part.len;
    let mut layout = Layout {
        part,
        file: &transfer.file,
        segments: layout
            .into_iter()
            .map(|(start, end, written)| Segment {
                start,
                end,
                written: AtomicU64::new(written),
            })
            .collect(),
        complete: false,
    };
    let shared = Shared {
        transfer,
        part,
        segments: &layout.segments,
        validator,
        received: AtomicU64::new(0),
        retries: AtomicU32::new(0),
        recorded: Mutex::new(Instant::now()),
    };
    let tracker = transfer.pump.tracker;
    tracker.set_length(Some(total));
    let already: u64 = layout
        .segments
        .iter()
        .map(|s| s.written.load(Ordering::Relaxed))
        .sum();
    tracker.set_position(already);
    let mut first = first;
    let result = try_join_all(
        layout
            .segments
            .iter()
            .map(|segment| fetch_segment(&shared, segment, first.take())),
    )
    .await
    .map(|_| ());
    let fetched = Fetched {
        received: shared.received.load(Ordering::Relaxed),
        retries: shared.retries.load(Ordering::Relaxed),
    };
    drop(shared);
    layout.complete = result.is_ok();
    (result, fetched)
}

/// Fetches one segment, retrying (and resuming) it alone on transient faults.
async fn fetch_segment(
    shared: &Shared<'_>,
    segment: &Segment,
    mut response: Option<Response>,
) -> Result<(), FetchError> {
    let mut retries = 0;
    let pump = &shared.transfer.pump;
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
        if response.is_none() && segment.position() >= segment.end {
            // Complete already (a resumed download).
            return Ok(());
        }
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
            || !pump
                .policy
                .wait_to_retry(&err, &mut retries, pump.tracker)
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
    let ask = |request: reqwest::RequestBuilder| {
        let request = request.header(header::RANGE, format!("bytes={from}-{}", segment.end - 1));
        match &shared.validator {
            Some(validator) => request.header(header::IF_RANGE, validator.clone()),
            None => request,
        }
    };
    let transfer = shared.transfer;
    let pump = &transfer.pump;
    let response = pump
        .policy
        .send(client, &transfer.target.url, ask, pump.tracker)
        .await?;
    let status = response.status();
    if status != StatusCode::PARTIAL_CONTENT {
        return Err(match status.is_success() {
            // The whole file again: it changed, or ranges are no longer served.
            true => FetchError::Changed,
            false => super::headers::http_error(&response),
        });
    }
    let asked = format!("bytes {from}-{}", segment.end - 1);
    match content_range_of(response.headers()) {
        Some(range) if range.first == from && range.consistent_with(response.content_length()) => {
            stream(shared, segment, response).await
        }
        Some(range) => Err(FetchError::BadRange(format!(
            "asked for {asked}, the server sent {range}{}",
            response
                .content_length()
                .map_or(String::new(), |len| format!(" in {len} bytes"))
        ))),
        None => Err(FetchError::BadRange(format!(
            "asked for {asked}, the server answered 206 without a usable Content-Range"
        ))),
    }
}

/// A segment's way into the file, as the pump feeds it: gathered, then written at its offset.
struct Positional<'s, 'a> {
    shared: &'s Shared<'a>,
    segment: &'s Segment,
    buffer: Vec<u8>,
}

impl Positional<'_, '_> {
    /// Writes what is gathered at the segment's position, then brings the record up to date
    /// (`now`, else when due).
    fn flush(&mut self, now: bool) -> Result<(), FetchError> {
        let (part, segment) = (self.shared.part, self.segment);
        crate::platform::write_all_at(&part.file, &self.buffer, segment.position())
            .map_err(|source| self.shared.transfer.file.write_error(source))?;
        segment
            .written
            .fetch_add(self.buffer.len() as u64, Ordering::Relaxed);
        let changed = !self.buffer.is_empty();
        self.buffer.clear();
        if changed || now {
            self.shared.record(now)?;
        }
        Ok(())
    }
}

impl Drain for Positional<'_, '_> {
    fn room(&self) -> u64 {
        self.segment.end - self.segment.position() - self.buffer.len() as u64
    }

    async fn take(&mut self, chunk: Bytes) -> Result<(), FetchError> {
        self.buffer.extend_from_slice(&chunk);
        self.shared
            .received
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        if self.buffer.len() >= SEGMENT_BUFFER {
            self.flush(false)?;
        }
        Ok(())
    }

    async fn write_out(&mut self, quiet: bool) -> Result<(), FetchError> {
        self.flush(quiet)
    }
}

/// Writes `response`'s body at the segment's position until the segment is full.
async fn stream(
    shared: &Shared<'_>,
    segment: &Segment,
    mut response: Response,
) -> Result<(), FetchError> {
    let (first, end) = (segment.position(), segment.end);
    let mut drain = Positional {
        shared,
        segment,
        buffer: Vec::with_capacity(SEGMENT_BUFFER),
    };
    let ended = shared.transfer.pump.run(&mut response, &mut drain).await?;
    // What arrived is kept (and recorded now when the segment stops short): the retry asks
    // for the rest.
    drain.flush(!matches!(ended, End::Full))?;
    // The segment's own count, for a message about it (not its offsets in the file).
    let short = |cause: Option<String>| FetchError::ShortBody {
        got: segment.position() - first,
        expected: end - first,
        cause: Some(format!(
            "of the range from byte {first} to {}{}",
            end - 1,
            cause.map_or(String::new(), |c| format!(": {c}"))
        )),
    };
    match ended {
        End::Full => Ok(()),
        End::Ended => Err(short(None)),
        End::Broken(err) => Err(match FetchError::from_body_error(err, 0, 0) {
            FetchError::ShortBody { cause, .. } => short(cause),
            other => other,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_gives_back_its_segments_or_nothing() {
        assert_eq!(
            from_record(&[(0, 10), (20, 20), (30, 35)], 40),
            Some(vec![(0, 20, 10), (20, 30, 0), (30, 40, 5)])
        );
        // Unordered, overlapping, past the end, not from 0: not segments of that file.
        assert_eq!(from_record(&[(20, 25), (0, 10)], 40), None);
        assert_eq!(from_record(&[(0, 25), (20, 30)], 40), None);
        assert_eq!(from_record(&[(0, 50)], 40), None);
        assert_eq!(from_record(&[(5, 10)], 40), None);
        assert_eq!(from_record(&[], 40), None);
    }

    #[test]
    fn the_good_prefix_stops_at_the_first_gap() {
        let part = Preallocated {
            file: tempfile::tempfile().unwrap(),
            len: 30,
            validator: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let output = super::super::output::OutputDir::prepare(dir.path()).unwrap();
        let file = output.file_for("unused");
        let layout = Layout {
            part: &part,
            file: &file,
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
