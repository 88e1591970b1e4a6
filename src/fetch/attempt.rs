//! One attempt of a download: a request (resuming the `.part` where there is one to resume),
//! its response checked, and the body streamed to disk (or split into segments), then given
//! its final name.

use std::io;
use std::time::Instant;

use reqwest::header::{self, HeaderValue};
use reqwest::{Response, StatusCode};
use sha2::{Digest, Sha256};

use super::headers::{ContentRange, content_range_of, http_error, last_modified, validator};
use super::naming;
use super::output::{FileFor, Part, Resume};
use super::policy::{IDLE_FLUSH_AFTER, SpeedMeter, WRITE_OUT_EVERY};
use super::record::Record;
use super::segments::{self, Transfer};
use super::sink::Sink;
use super::{Attempts, Downloader};
use crate::error::FetchError;
use crate::model::{Sha256Digest, Skip, Status, Target, hex};

impl Downloader {
    /// What the segments of `attempts`' download into `name` run with.
    fn transfer<'a>(&'a self, attempts: &Attempts<'a>, name: &'a str) -> Transfer<'a> {
        Transfer {
            policy: &self.policy,
            throttle: &self.throttle,
            client: attempts.client,
            http: self.http(),
            target: attempts.target,
            tracker: attempts.tracker,
            output: &self.output,
            name,
        }
    }

    /// One request: resumes the `.part` file where there is one to resume.
    pub(super) async fn attempt(&self, attempts: &mut Attempts<'_>) -> Result<Status, FetchError> {
        let (client, target) = (attempts.client, attempts.target);
        let output = &self.output;
        // The name is known before asking (the input's, or the URL's) on a first attempt.
        let known =
            attempts.name.is_none() && (target.name.is_some() || !self.policy.content_disposition);
        if known && self.policy.no_clobber && output.holds(&target.planned) {
            // A file already there is kept without a request, as wget's --no-clobber does.
            let path = output.file(&target.planned);
            return Ok(Status::Skipped {
                path,
                why: Skip::Exists,
            });
        }
        // A retry resumes its own `.part`; a first attempt only with `-c`.
        let mut resumable = match &attempts.name {
            Some(name) => Some(name.clone()),
            None if self.policy.resume => Some(target.planned.clone()),
            None => None,
        };

        // Without ranges (`--compressed`), the whole body every time: a `.part` left by an
        // earlier attempt is replaced, as when a server ignores a range.
        let ranges = self.policy.ranges;
        // Only what the `.part`'s record proves (a regular file of our own: a link or a FIFO
        // counts as absent).
        let resume = match &resumable {
            Some(name) if ranges => output.resume_point(name),
            _ => Resume::default(),
        };
        let offset = resume.offset;
        if let Some(record) = &resume.record {
            // The version the `.part` holds, as its record says (none: no If-Range).
            attempts.validator = record
                .validator
                .as_deref()
                .and_then(|stored| HeaderValue::from_str(stored).ok());
        }
        if let Some(name) = resumable
            .as_deref()
            .filter(|_| ranges && self.policy.segments.wanted())
        {
            if let Some(done) = self.resume_segments(attempts, name, &resume).await {
                return done;
            }
        }
        // `-c` over a complete file: asked for the bytes after its end, a server that has no
        // more says so (416, Content-Range `*/SIZE`), as wget -c asks.
        let complete_check = (known && self.policy.resume && ranges && offset == 0)
            .then(|| output.file_len(&target.planned))
            .flatten()
            .filter(|&len| len > 0 && !attempts.checked_complete)
            .filter(|_| !output.holds_part(&target.planned));
        // -N: a file already there (under the name known before asking) is fetched only if
        // the server's copy is newer.
        let since = (self.policy.timestamping && offset == 0 && known && complete_check.is_none())
            .then(|| output.modified(&target.planned))
            .flatten();

        let stored = attempts.validator.clone();
        let segmented = self.policy.segments.wanted();
        let ask = |request: reqwest::RequestBuilder| {
            let request = match since {
                Some(since) => {
                    request.header(header::IF_MODIFIED_SINCE, httpdate::fmt_http_date(since))
                }
                None => request,
            };
            if let Some(len) = complete_check {
                request.header(header::RANGE, format!("bytes={len}-"))
            } else if ranges && offset > 0 {
                let request = request.header(header::RANGE, format!("bytes={offset}-"));
                match &stored {
                    Some(validator) => request.header(header::IF_RANGE, validator.clone()),
                    None => request,
                }
            } else if ranges && segmented {
                // A 206 answer says the server serves ranges, and gives the size to split.
                request.header(header::RANGE, "bytes=0-")
            } else {
                request
            }
        };
        let response = self
            .policy
            .send(client, &target.url, ask, attempts.tracker)
            .await?;
        let status = response.status();
        attempts.facts.http_status = Some(status.as_u16());
        self.width().responded(response.version());

        if status == StatusCode::NOT_MODIFIED && since.is_some() {
            let path = output.file(&target.planned);
            return Ok(Status::Skipped {
                path,
                why: Skip::NotModified,
            });
        }
        if let Some(len) = complete_check {
            if let Some(done) = self.after_complete_check(attempts, &response, len) {
                return done;
            }
        }
        if status == StatusCode::RANGE_NOT_SATISFIABLE && offset > 0 {
            return self.after_refused_range(attempts, &response, resumable, &resume);
        }
        if !status.is_success() {
            return Err(http_error(&response));
        }

        let name = match &attempts.name {
            Some(name) => name.clone(),
            None => {
                let name = self.name_for(target, &response);
                attempts.name = Some(name.clone());
                if self.policy.no_clobber && output.holds(&name) {
                    let path = output.file(&name);
                    return Ok(Status::Skipped {
                        path,
                        why: Skip::Exists,
                    });
                }
                if self.policy.resume && resumable.as_deref() != Some(&*name) {
                    // The response names another file than the one this request resumed
                    // (a redirect, Content-Disposition): `-c` resumes that file's `.part`.
                    let own = output.resume_point(&name).offset;
                    if own != offset {
                        attempts.again = true;
                        return Err(FetchError::BadResume(format!("resuming {name} instead")));
                    }
                    resumable = Some(name.clone());
                }
                name
            }
        };
        let len = response.content_length();
        let range = if status == StatusCode::PARTIAL_CONTENT {
            Some(self.checked_range(&response, &name, offset, &resume)?)
        } else {
            None
        };
        let (start, total) = match range {
            // A whole body: no range asked, the server ignored it, or the file changed.
            None => (0, len),
            Some(range)
                if range.first == offset
                    && (offset == 0 || resumable.as_deref() == Some(&*name)) =>
            {
                (offset, range.total)
            }
            // The file from its start, as a 200 would send it.
            Some(range) => (0, range.total),
        };
        let size = total.or_else(|| len.map(|len| start + len));
        if let (Some(limit), Some(size)) = (self.policy.max_filesize, size) {
            if size > limit {
                return Err(FetchError::TooLarge { limit });
            }
        }
        if start == 0 {
            attempts.validator = validator(response.headers());
        }
        let modified = self
            .policy
            .server_timestamps
            .then(|| last_modified(response.headers()))
            .flatten();
        // Split only a response that runs from the start to the end of the file.
        let segments = match (range, total) {
            (Some(range), Some(total)) if start == 0 && range.end() == Some(total) => {
                self.policy.segments.count(total)
            }
            _ => 1,
        };
        let file = output.file_for(&name);
        let path = if segments > 1 {
            let total = total.unwrap_or_default();
            let stored = attempts.validator.as_ref().and_then(validator_text);
            let part = file.preallocate(total, stored)?;
            let transfer = self.transfer(attempts, &name);
            let (result, fetched) = segments::download(&transfer, response, &part, segments).await;
            attempts.facts.bytes += fetched.received;
            attempts.facts.retries += fetched.retries;
            result?;
            attempts.facts.sha256 = self
                .digest_part(target, &name, total)?
                .map(|hasher| check_digest(target, hasher))
                .transpose()?;
            file.land_held(&part.file)?
        } else {
            if start == 0 && offset > 0 {
                // The server sent the whole body to a resume request: the `.part` is of no use.
                file.discard();
            }
            let body = Body {
                start,
                total: size,
                partial: range.is_some(),
            };
            let written = self.stream(attempts, response, &name, body).await?;
            file.land(written)?
        };
        if let Some(modified) = modified {
            // Best effort, as wget: the bytes are saved whatever the filesystem allows.
            let _ = output.set_modified(&name, modified);
        }
        Ok(Status::Saved { path })
    }

    /// With `-s`, a preallocated `.part` whose record lists its segments (a segmented
    /// download stopped, or killed): each segment resumed where the record says it stopped,
    /// with `If-Range`. `None` when the record does not allow that (no validator, not a
    /// segmented one, a `.part` of another size): the download resumes in order instead.
    async fn resume_segments(
        &self,
        attempts: &mut Attempts<'_>,
        name: &str,
        resume: &Resume,
    ) -> Option<Result<Status, FetchError>> {
        let record = resume.record.as_ref().filter(|_| !resume.complete)?;
        let (ranges, total) = (record.ranges.as_deref()?, record.total?);
        let stored = record.validator.clone()?;
        let validator = HeaderValue::from_str(&stored).ok()?;
        let layout = segments::from_record(ranges, total)?;
        if self.output.part_len(name) != Some(total) {
            return None;
        }
        attempts.name = Some(name.to_owned());
        let target = attempts.target;
        let file = self.output.file_for(name);
        Some(
            async {
                let part = file.reopen_preallocated(total, stored)?;
                let transfer = self.transfer(attempts, name);
                let (result, fetched) = segments::resume(&transfer, &part, layout, validator).await;
                attempts.facts.bytes += fetched.received;
                attempts.facts.retries += fetched.retries;
                result?;
                attempts.facts.http_status = Some(StatusCode::PARTIAL_CONTENT.as_u16());
                attempts.facts.sha256 = self
                    .digest_part(target, name, total)?
                    .map(|hasher| check_digest(target, hasher))
                    .transpose()?;
                let path = file.land_held(&part.file)?;
                Ok(Status::Saved { path })
            }
            .await,
        )
    }

    /// The Content-Range of a 206 answer, when it holds together and is of this file; else
    /// why not, with the `.part` gone when its bytes cannot be trusted any more.
    fn checked_range(
        &self,
        response: &Response,
        name: &str,
        offset: u64,
        resume: &Resume,
    ) -> Result<ContentRange, FetchError> {
        let len = response.content_length();
        let Some(range) = content_range_of(response.headers()) else {
            return Err(FetchError::BadRange(
                "a 206 answer without a usable Content-Range".to_owned(),
            ));
        };
        if !range.consistent_with(len) {
            return Err(FetchError::BadRange(format!(
                "the server's Content-Range ({range}) does not hold together{}",
                len.map_or(String::new(), |len| format!(
                    " with its Content-Length of {len} bytes"
                ))
            )));
        }
        if range.first != offset && range.first != 0 {
            self.output.discard_part(name);
            return Err(FetchError::BadRange(format!(
                "asked for the bytes from {offset} on, the server sent {range}; starting over"
            )));
        }
        let recorded = resume.record.as_ref().and_then(|record| record.total);
        if range.first == offset && offset > 0 && recorded.is_some() && range.total != recorded {
            // Without a validator to send, the size is the only sign of another version.
            self.output.discard_part(name);
            return Err(FetchError::Changed);
        }
        Ok(range)
    }

    /// The answer to `-c`'s question whether the file of `len` bytes already there is
    /// complete: `Some` when it settles the attempt (skipped, or asked again without the
    /// question), `None` to take the response as a whole body.
    fn after_complete_check(
        &self,
        attempts: &mut Attempts<'_>,
        response: &Response,
        len: u64,
    ) -> Option<Result<Status, FetchError>> {
        let target = attempts.target;
        let status = response.status();
        let range = content_range_of(response.headers());
        // The answer is about the file there only if no redirect named another one.
        let same_file = target.name.is_some()
            || naming::is_reserved_for(target, &naming::name_from_url(response.url()));
        if status == StatusCode::RANGE_NOT_SATISFIABLE
            && same_file
            && range.is_some_and(|r| r.last.is_none() && r.total == Some(len))
        {
            attempts.name = Some(target.planned.clone());
            return Some(Ok(Status::Skipped {
                path: self.output.file(&target.planned),
                why: Skip::Complete,
            }));
        }
        if status == StatusCode::OK {
            // A server without ranges: its whole body replaces the file.
            return None;
        }
        // A larger file now (206), or a 416 of another size: fetched afresh, without the
        // question.
        attempts.checked_complete = true;
        attempts.again = true;
        Some(Err(FetchError::BadResume(
            "the file there is not the server's".to_owned(),
        )))
    }

    /// 416 to a resume request: the `.part` may already be whole (a run stopped before its
    /// rename), but only when its record proves every byte of the size the server gives;
    /// otherwise it is of no use and the download starts over.
    fn after_refused_range(
        &self,
        attempts: &mut Attempts<'_>,
        response: &Response,
        resumable: Option<String>,
        resume: &Resume,
    ) -> Result<Status, FetchError> {
        let target = attempts.target;
        let Some(name) = resumable else {
            return Err(FetchError::BadRange("416 Range Not Satisfiable".to_owned()));
        };
        let total = content_range_of(response.headers()).and_then(|range| range.total);
        let offset = resume.offset;
        if !(resume.complete && total == Some(offset)) {
            self.output.discard_part(&name);
            let size = total.map_or("an unknown size".to_owned(), |t| format!("{t} bytes"));
            return Err(FetchError::BadRange(match &resume.record {
                Some(_) => format!(
                    "the server has no bytes from {offset} on (the file has {size}), and the \
                     .part is not complete; starting over"
                ),
                None => format!(
                    "the server has no bytes from {offset} on (the file has {size}), and \
                     without its record the .part cannot be proven complete; starting over"
                ),
            }));
        }
        attempts.name = Some(name.clone());
        let file = self.output.file_for(&name);
        let held = file.hold()?;
        attempts.facts.sha256 = self
            .digest_part(target, &name, offset)?
            .map(|hasher| check_digest(target, hasher))
            .transpose()?;
        let path = file.land_held(&held)?;
        Ok(Status::Saved { path })
    }

    /// The file name for `target`'s first response: the server's suggestion when asked and
    /// given, else the final URL's.
    fn name_for(&self, target: &Target, response: &Response) -> String {
        if target.name.is_some() {
            // The input named the file: that name was reserved when its line was read.
            return target.planned.clone();
        }
        let suggested = self
            .policy
            .content_disposition
            .then(|| response.headers().get(header::CONTENT_DISPOSITION))
            .flatten()
            .and_then(|value| value.to_str().ok())
            .and_then(naming::name_from_content_disposition);
        let wanted = suggested.unwrap_or_else(|| naming::name_from_url(response.url()));
        self.claim(target, wanted)
    }

    /// A hasher over the first `len` bytes of `name`'s `.part`, if this download needs a
    /// digest.
    fn digest_part(
        &self,
        target: &Target,
        name: &str,
        len: u64,
    ) -> Result<Option<Sha256>, FetchError> {
        if !(self.policy.sha256 || target.sha256.is_some()) {
            return Ok(None);
        }
        let mut hasher = Sha256::new();
        if len == 0 {
            return Ok(Some(hasher));
        }
        let file = self.output.file_for(name);
        let mut part = file.read(len)?;
        io::copy(&mut part, &mut hasher).map_err(|source| file.read_error(source))?;
        Ok(Some(hasher))
    }

    /// Streams the body into `name`'s file from byte `body.start`, then checks its length
    /// (and digest, kept in `attempts`). Returns the file, complete, to land under its final
    /// name.
    async fn stream(
        &self,
        attempts: &mut Attempts<'_>,
        mut response: Response,
        name: &str,
        body: Body,
    ) -> Result<Part, FetchError> {
        let (target, tracker, start) = (attempts.target, attempts.tracker, body.start);
        // The length of the body as read: a body that reqwest decodes (`--compressed` and a
        // Content-Encoding it knows) has none, so the Content-Length of the encoded bytes is
        // never compared with the decoded ones; an unencoded body is still checked.
        let expected = response.content_length().map(|len| start + len);
        tracker.set_length(body.total.or(expected));
        tracker.set_position(start);
        let file = self.output.file_for(name);
        let part_path = self.output.part(name);
        let write_error = |source| FetchError::write(part_path.clone(), source);
        let mut hasher = self.digest_part(target, name, start)?;
        let body_len = expected.map(|e| e - start);
        // What the `.part` holds, beside it: written when the body first goes to disk (a
        // pause, or every WRITE_OUT_EVERY), or when the download stops without landing, so a
        // crash leaves what `-c` needs to resume this version only; a body that lands at
        // once never writes one. Declared before the sink, so that it is dropped after it.
        let stored = attempts.validator.as_ref().and_then(validator_text);
        let mut pending = PendingRecord {
            file: &file,
            record: (stored.is_some() || body.total.is_some())
                .then(|| Record::in_order(stored, body.total)),
        };
        let mut out = Sink::new(file.open(start, body_len)?, body_len).map_err(write_error)?;
        let mut written = start;
        let mut meter = SpeedMeter::new(&self.policy);
        let mut written_out = Instant::now();
        loop {
            let waiting = self.policy.next_chunk(&mut response, &mut meter);
            let next = match tokio::time::timeout(IDLE_FLUSH_AFTER, waiting).await {
                Ok(next) => next,
                Err(_) => {
                    // The network went quiet: what arrived goes to disk now, so that a
                    // process killed while waiting keeps it for -c.
                    out.flush_buffer().await.map_err(write_error)?;
                    pending.save(&out)?;
                    written_out = Instant::now();
                    self.policy.next_chunk(&mut response, &mut meter).await
                }
            };
            let chunk = match next? {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(err) => {
                    // Keep what arrived: a retry resumes from it (dropped, an unnamed file
                    // becomes the `.part`).
                    out.finish().await.map_err(write_error)?;
                    return Err(match expected {
                        Some(expected) => FetchError::from_body_error(err, written, expected),
                        None => FetchError::from_reqwest(err),
                    });
                }
            };
            let len = chunk.len() as u64;
            self.throttle.spend(len).await;
            if let Some(hasher) = &mut hasher {
                hasher.update(&chunk);
            }
            let first_read = written == start;
            out.write(chunk).await.map_err(write_error)?;
            written += len;
            if let Some(limit) = self.policy.max_filesize {
                if written > limit {
                    // A body without a Content-Length (or longer than it said) is cut here.
                    drop(out.finish().await);
                    return Err(FetchError::TooLarge { limit });
                }
            }
            if first_read && expected.is_some_and(|expected| written < expected) {
                // More than one read: worth a name that a crash cannot take away.
                out.name_part().map_err(write_error)?;
            }
            if written_out.elapsed() >= WRITE_OUT_EVERY {
                // A slow but steady body never goes quiet: written out on time as well.
                out.flush_buffer().await.map_err(write_error)?;
                pending.save(&out)?;
                written_out = Instant::now();
            }
            attempts.facts.bytes += len;
            tracker.advance(len);
        }
        let done = out.finish().await.map_err(write_error)?;
        match expected {
            Some(expected) if written < expected => Err(FetchError::ShortBody {
                got: written,
                expected,
                cause: None,
            }),
            Some(expected) if written > expected => Err(FetchError::LongBody { expected }),
            // A 206 is complete only at the end of the file: the rest is another request's.
            _ if body.partial && body.total.is_some_and(|total| written < total) => {
                drop(done);
                Err(FetchError::ShortBody {
                    got: written,
                    expected: body.total.unwrap_or_default(),
                    cause: Some("the server's range ended before the file's end".to_owned()),
                })
            }
            _ => {
                attempts.facts.sha256 = hasher.map(|h| check_digest(target, h)).transpose()?;
                // Complete: it lands now, and needs no record.
                pending.record = None;
                Ok(done)
            }
        }
    }
}

/// The record of a body written in order, until it is on disk.
struct PendingRecord<'a> {
    file: &'a FileFor<'a>,
    /// `None` once written (or when there is nothing worth recording).
    record: Option<Record>,
}

impl PendingRecord<'_> {
    /// Writes the record if the body's file has its `.part` name.
    fn save(&mut self, out: &Sink) -> Result<(), FetchError> {
        if out.is_named() {
            if let Some(record) = self.record.take() {
                self.file.save_record(&record)?;
            }
        }
        Ok(())
    }
}

impl Drop for PendingRecord<'_> {
    fn drop(&mut self) {
        // Stopped before landing (a fault, a final error, Ctrl-C): the `.part` it leaves
        // gets its record. Nowhere to report a failure from here: without it, `-c` trusts
        // the `.part` as bytes in order, without If-Range.
        if let Some(record) = self.record.take() {
            if self.file.has_part() {
                let _ = self.file.save_record(&record);
            }
        }
    }
}

/// What a response's body is of the file.
struct Body {
    /// Its first byte's offset in the file.
    start: u64,
    /// The file's size, when known.
    total: Option<u64>,
    /// Whether it is a 206's range (complete only when it reaches `total`).
    partial: bool,
}

/// A validator as text, to keep in a record.
fn validator_text(value: &HeaderValue) -> Option<String> {
    value.to_str().ok().map(str::to_owned)
}

/// The digest, or a mismatch error when the target's expected digest differs.
fn check_digest(target: &Target, hasher: Sha256) -> Result<Sha256Digest, FetchError> {
    let actual: Sha256Digest = hasher.finalize().into();
    match target.sha256 {
        Some(expected) if expected != actual => Err(FetchError::Checksum {
            expected: hex(&expected),
            actual: hex(&actual),
        }),
        _ => Ok(actual),
    }
}
