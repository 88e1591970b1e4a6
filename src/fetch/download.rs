//! One download's life: [`Download::run`] makes attempts under the run's [`Policy`] until
//! one succeeds, an error is final or the retries are spent. An attempt plans its request
//! from what is on disk (a `.part` to resume, a file to check with `-c` or `-N`), asks, reads
//! what the answer says, settles the file's name, and saves the body: streamed in order
//! ([`super::body`]) or split into segments ([`super::segments`]), then landed under its name.
//!
//! [`Policy`]: super::policy::Policy

use std::path::PathBuf;
use std::time::SystemTime;

use reqwest::header::{self, HeaderValue};
use reqwest::{Client, Response, StatusCode};
use sha2::{Digest, Sha256};

use super::Downloader;
use super::headers::{ContentRange, content_range_of, http_error, last_modified, validator};
use super::naming;
use super::output::{FileFor, Resume};
use super::policy::Policy;
use super::pump::Pump;
use super::segments::{self, Transfer};
use crate::error::FetchError;
use crate::model::{Facts, Sha256Digest, Skip, Status, Target, hex};
use crate::progress::Tracker;

/// What an attempt ends with when it ends early: a status, or an error.
type Settled = Result<Status, FetchError>;

/// One download: what it runs with, and what its attempts have learned so far.
pub(super) struct Download<'a> {
    /// The run's shared context: output directory, names, rules, throttle, display.
    shared: &'a Downloader,
    client: &'a Client,
    target: &'a Target,
    tracker: &'a Tracker,
    /// Fixed by the first response, so that retries write the same file.
    name: Option<String>,
    /// ETag or Last-Modified of the body in the `.part` file, for `If-Range`.
    validator: Option<HeaderValue>,
    facts: Facts,
    /// Set when an attempt ends only to start the download again at once under the name its
    /// response gave (`-c`): not a fault, not counted as a retry.
    again: bool,
    /// Whether `-c` has asked already whether the file there is complete.
    checked_complete: bool,
}

/// What an attempt asks for, decided from what is on disk before the request.
struct Plan {
    /// The name was known before asking (the input's, or the URL's), on a first attempt.
    known: bool,
    /// The name whose `.part` the request resumes.
    resumable: Option<String>,
    /// What that `.part` holds, as its record proves it.
    resume: Resume,
    /// `-c` over a complete file of this length: asks whether the server has more.
    complete_check: Option<u64>,
    /// `-N`: the time of the file already there; asks only for a newer one.
    since: Option<SystemTime>,
}

/// What the response's body is of the file, and how it is saved.
pub(super) struct Extent {
    /// Its first byte's offset in the file.
    pub(super) start: u64,
    /// The file's size, when known.
    pub(super) size: Option<u64>,
    /// A 206's range (complete only when it reaches the file's end).
    pub(super) range: Option<ContentRange>,
    /// Segments to split it into (1: streamed in order).
    segments: u64,
    /// The server's Last-Modified, to give the file (`--server-timestamps`).
    modified: Option<SystemTime>,
}

impl<'a> Download<'a> {
    pub(super) fn new(
        shared: &'a Downloader,
        client: &'a Client,
        target: &'a Target,
        tracker: &'a Tracker,
    ) -> Self {
        Download {
            shared,
            client,
            target,
            tracker,
            name: None,
            validator: None,
            facts: Facts::default(),
            again: false,
            checked_complete: false,
        }
    }

    /// The file's name once a response settled it.
    pub(super) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// What the attempts learned, for the [`crate::model::Outcome`].
    pub(super) fn into_facts(self) -> Facts {
        self.facts
    }

    /// Attempts until success, a final error, or the retries are spent.
    pub(super) async fn run(&mut self) -> Result<Status, FetchError> {
        let (policy, width) = (&self.shared.policy, &self.shared.reach.width);
        loop {
            let err = match self.attempt().await {
                Ok(status) => return Ok(status),
                Err(_) if std::mem::take(&mut self.again) => continue,
                Err(err) => err,
            };
            // Refused for load: the retry waits for a place under the (narrowed) width.
            let aside = err.is_push_back().then(|| {
                let aside = width.stand_aside();
                width.pushed_back();
                aside
            });
            if err.spoils_part() {
                if let Some(name) = &self.name {
                    self.file(name).discard();
                }
            }
            if !policy
                .wait_to_retry(&err, &mut self.facts.retries, self.tracker)
                .await
            {
                return Err(err);
            }
            if let Some(aside) = aside {
                aside.rejoin().await;
            }
        }
    }

    /// `name`'s file in the output directory.
    fn file(&self, name: &'a str) -> FileFor<'a> {
        self.shared.output.file_for(name)
    }

    /// The rules and waits a body is read under.
    pub(super) fn pump(&self) -> Pump<'a> {
        Pump {
            policy: &self.shared.policy,
            throttle: &self.shared.throttle,
            tracker: self.tracker,
        }
    }

    /// What the segments of this download into `name` run with.
    fn transfer(&self, name: &'a str) -> Transfer<'a> {
        Transfer {
            pump: self.pump(),
            client: self.client,
            http: self.shared.http(),
            target: self.target,
            file: self.file(name),
        }
    }

    /// One request: resumes the `.part` file where there is one to resume.
    async fn attempt(&mut self) -> Settled {
        let policy = &self.shared.policy;
        let planned = self.file(&self.target.planned);
        let mut plan = self.plan();
        if plan.known && policy.no_clobber && planned.exists() {
            // A file already there is kept without a request, as wget's --no-clobber does.
            return Ok(Status::Skipped {
                path: planned.path(),
                why: Skip::Exists,
            });
        }
        if let Some(name) = plan
            .resumable
            .clone()
            .filter(|_| policy.ranges && policy.segments.wanted())
        {
            if let Some(done) = self.resume_segments(&name, &plan.resume).await {
                return done;
            }
        }
        let response = self.ask(&plan).await?;
        if let Some(done) = self.answered(&plan, &response) {
            return done;
        }
        let name = match self.name_of(&mut plan, &response) {
            Ok(name) => name,
            Err(settled) => return settled,
        };
        let extent = self.extent(&plan, &response, &name)?;
        let modified = extent.modified;
        let path = self.save(response, &plan, &name, extent).await?;
        if let Some(modified) = modified {
            // Best effort, as wget: the bytes are saved whatever the filesystem allows.
            let _ = self.file(&name).set_modified(modified);
        }
        Ok(Status::Saved { path })
    }

    /// What the next request asks for, from what is on disk; keeps the `.part`'s validator.
    fn plan(&mut self) -> Plan {
        let (policy, target) = (&self.shared.policy, self.target);
        let known = self.name.is_none() && (target.name.is_some() || !policy.content_disposition);
        // A retry resumes its own `.part`; a first attempt only with `-c`.
        let resumable = match &self.name {
            Some(name) => Some(name.clone()),
            None if policy.resume => Some(target.planned.clone()),
            None => None,
        };
        // Without ranges (`--compressed`), the whole body every time: a `.part` left by an
        // earlier attempt is replaced, as when a server ignores a range. Only what the
        // `.part`'s record proves (a regular file of our own: a link or a FIFO counts as
        // absent).
        let resume = match &resumable {
            Some(name) if policy.ranges => self.file(name).resume_point(),
            _ => Resume::default(),
        };
        if let Some(record) = &resume.record {
            // The version the `.part` holds, as its record says (none: no If-Range).
            self.validator = record
                .validator
                .as_deref()
                .and_then(|stored| HeaderValue::from_str(stored).ok());
        }
        let planned = self.file(&target.planned);
        let fresh = resume.offset == 0;
        // `-c` over a complete file: asked for the bytes after its end, a server that has no
        // more says so (416, Content-Range `*/SIZE`), as wget -c asks.
        let complete_check = (known && policy.resume && policy.ranges && fresh)
            .then(|| planned.len())
            .flatten()
            .filter(|&len| len > 0 && !self.checked_complete)
            .filter(|_| !planned.has_any_part());
        // -N: a file already there (under the name known before asking) is fetched only if
        // the server's copy is newer.
        let since = (policy.timestamping && fresh && known && complete_check.is_none())
            .then(|| planned.modified())
            .flatten();
        Plan {
            known,
            resumable,
            resume,
            complete_check,
            since,
        }
    }

    /// Sends the request `plan` describes; tells the width what answered.
    async fn ask(&mut self, plan: &Plan) -> Result<Response, FetchError> {
        let policy = &self.shared.policy;
        let offset = plan.resume.offset;
        let stored = self.validator.clone();
        let ask = |request: reqwest::RequestBuilder| {
            let request = match plan.since {
                Some(since) => {
                    request.header(header::IF_MODIFIED_SINCE, httpdate::fmt_http_date(since))
                }
                None => request,
            };
            if let Some(len) = plan.complete_check {
                request.header(header::RANGE, format!("bytes={len}-"))
            } else if policy.ranges && offset > 0 {
                let request = request.header(header::RANGE, format!("bytes={offset}-"));
                match &stored {
                    Some(validator) => request.header(header::IF_RANGE, validator.clone()),
                    None => request,
                }
            } else if policy.ranges && policy.segments.wanted() {
                // A 206 answer says the server serves ranges, and gives the size to split.
                request.header(header::RANGE, "bytes=0-")
            } else {
                request
            }
        };
        let response = policy
            .send(self.client, &self.target.url, ask, self.tracker)
            .await?;
        self.facts.http_status = Some(response.status().as_u16());
        self.shared.reach.width.responded(response.version());
        Ok(response)
    }

    /// `Some` when the response's status settles the attempt before any body: not modified,
    /// the answer to `-c`'s question, a refused range, an HTTP error.
    fn answered(&mut self, plan: &Plan, response: &Response) -> Option<Settled> {
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED && plan.since.is_some() {
            return Some(Ok(Status::Skipped {
                path: self.file(&self.target.planned).path(),
                why: Skip::NotModified,
            }));
        }
        if let Some(len) = plan.complete_check {
            if let Some(done) = self.after_complete_check(response, len) {
                return Some(done);
            }
        }
        if status == StatusCode::RANGE_NOT_SATISFIABLE && plan.resume.offset > 0 {
            return Some(self.after_refused_range(response, plan));
        }
        (!status.is_success()).then(|| Err(http_error(response)))
    }

    /// The file's name: the one a first response settles (and keeps for the retries).
    /// `Err` when that settles the attempt: a file kept (`--no-clobber`), or `-c` starting
    /// again on another name's `.part`.
    fn name_of(&mut self, plan: &mut Plan, response: &Response) -> Result<String, Settled> {
        if let Some(name) = &self.name {
            return Ok(name.clone());
        }
        let policy = &self.shared.policy;
        let name = self.shared.name_for(self.target, response);
        self.name = Some(name.clone());
        let file = self.file(&name);
        if policy.no_clobber && file.exists() {
            return Err(Ok(Status::Skipped {
                path: file.path(),
                why: Skip::Exists,
            }));
        }
        if policy.resume && plan.resumable.as_deref() != Some(&*name) {
            // The response names another file than the one this request resumed (a
            // redirect, Content-Disposition): `-c` resumes that file's `.part`.
            if file.resume_point().offset != plan.resume.offset {
                self.again = true;
                return Err(Err(FetchError::BadResume(format!(
                    "resuming {name} instead"
                ))));
            }
            plan.resumable = Some(name.clone());
        }
        Ok(name)
    }

    /// Where the body starts in the file, the file's size, and how to save it; checks the
    /// size against `--max-filesize` and keeps a whole body's validator.
    fn extent(
        &mut self,
        plan: &Plan,
        response: &Response,
        name: &str,
    ) -> Result<Extent, FetchError> {
        let policy = &self.shared.policy;
        let offset = plan.resume.offset;
        let len = response.content_length();
        let range = match response.status() {
            StatusCode::PARTIAL_CONTENT => {
                Some(self.checked_range(response, name, offset, &plan.resume)?)
            }
            _ => None,
        };
        let resumes_it = offset == 0 || plan.resumable.as_deref() == Some(name);
        let (start, total) = match range {
            // A whole body: no range asked, the server ignored it, or the file changed.
            None => (0, len),
            Some(range) if range.first == offset && resumes_it => (offset, range.total),
            // The file from its start, as a 200 would send it.
            Some(range) => (0, range.total),
        };
        let size = total.or_else(|| len.map(|len| start + len));
        if let (Some(limit), Some(size)) = (policy.max_filesize, size) {
            if size > limit {
                return Err(FetchError::TooLarge { limit });
            }
        }
        if start == 0 {
            self.validator = validator(response.headers());
        }
        // Split only a response that runs from the start to the end of the file.
        let segments = match (range, total) {
            (Some(range), Some(total)) if start == 0 && range.end() == Some(total) => {
                policy.segments.count(total)
            }
            _ => 1,
        };
        let modified = policy
            .server_timestamps
            .then(|| last_modified(response.headers()))
            .flatten();
        Ok(Extent {
            start,
            size,
            range,
            segments,
            modified,
        })
    }

    /// Saves the body into `name`'s file as `extent` says, and lands it under its name.
    async fn save(
        &mut self,
        response: Response,
        plan: &Plan,
        name: &str,
        extent: Extent,
    ) -> Result<PathBuf, FetchError> {
        let file = self.file(name);
        if extent.segments == 1 {
            if extent.start == 0 && plan.resume.offset > 0 {
                // The server sent the whole body to a resume request: the `.part` is of no use.
                file.discard();
            }
            let written = self.stream(response, &file, &extent).await?;
            return file.land(written);
        }
        let total = extent.size.unwrap_or_default();
        let stored = self.validator.as_ref().and_then(validator_text);
        let part = file.preallocate(total, stored)?;
        let (result, fetched) =
            segments::download(&self.transfer(name), response, &part, extent.segments).await;
        self.facts.bytes += fetched.received;
        self.facts.retries += fetched.retries;
        result?;
        self.check_part(&file, total)?;
        file.land_held(&part.file)
    }

    /// With `-s`, a preallocated `.part` whose record lists its segments (a segmented
    /// download stopped, or killed): each segment resumed where the record says it stopped,
    /// with `If-Range`. `None` when the record does not allow that (no validator, not a
    /// segmented one, a `.part` of another size): the download resumes in order instead.
    async fn resume_segments(&mut self, name: &str, resume: &Resume) -> Option<Settled> {
        let record = resume.record.as_ref().filter(|_| !resume.complete)?;
        let (ranges, total) = (record.ranges.as_deref()?, record.total?);
        let stored = record.validator.clone()?;
        let validator = HeaderValue::from_str(&stored).ok()?;
        let layout = segments::from_record(ranges, total)?;
        let file = self.file(name);
        if file.part_len() != Some(total) {
            return None;
        }
        self.name = Some(name.to_owned());
        Some(
            async {
                let part = file.reopen_preallocated(total, stored)?;
                let (result, fetched) =
                    segments::resume(&self.transfer(name), &part, layout, validator).await;
                self.facts.bytes += fetched.received;
                self.facts.retries += fetched.retries;
                result?;
                self.facts.http_status = Some(StatusCode::PARTIAL_CONTENT.as_u16());
                self.check_part(&file, total)?;
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
            self.file(name).discard();
            return Err(FetchError::BadRange(format!(
                "asked for the bytes from {offset} on, the server sent {range}; starting over"
            )));
        }
        let recorded = resume.record.as_ref().and_then(|record| record.total);
        if range.first == offset && offset > 0 && recorded.is_some() && range.total != recorded {
            // Without a validator to send, the size is the only sign of another version.
            self.file(name).discard();
            return Err(FetchError::Changed);
        }
        Ok(range)
    }

    /// The answer to `-c`'s question whether the file of `len` bytes already there is
    /// complete: `Some` when it settles the attempt (skipped, or asked again without the
    /// question), `None` to take the response as a whole body.
    fn after_complete_check(&mut self, response: &Response, len: u64) -> Option<Settled> {
        let target = self.target;
        let status = response.status();
        let range = content_range_of(response.headers());
        // The answer is about the file there only if no redirect named another one.
        let same_file = target.name.is_some()
            || naming::is_reserved_for(target, &naming::name_from_url(response.url()));
        if status == StatusCode::RANGE_NOT_SATISFIABLE
            && same_file
            && range.is_some_and(|r| r.last.is_none() && r.total == Some(len))
        {
            self.name = Some(target.planned.clone());
            return Some(Ok(Status::Skipped {
                path: self.file(&target.planned).path(),
                why: Skip::Complete,
            }));
        }
        if status == StatusCode::OK {
            // A server without ranges: its whole body replaces the file.
            return None;
        }
        // A larger file now (206), or a 416 of another size: fetched afresh, without the
        // question.
        self.checked_complete = true;
        self.again = true;
        Some(Err(FetchError::BadResume(
            "the file there is not the server's".to_owned(),
        )))
    }

    /// 416 to a resume request: the `.part` may already be whole (a run stopped before its
    /// rename), but only when its record proves every byte of the size the server gives;
    /// otherwise it is of no use and the download starts over.
    fn after_refused_range(&mut self, response: &Response, plan: &Plan) -> Settled {
        let Some(name) = plan.resumable.as_deref() else {
            return Err(FetchError::BadRange("416 Range Not Satisfiable".to_owned()));
        };
        let file = self.file(name);
        let (resume, offset) = (&plan.resume, plan.resume.offset);
        let total = content_range_of(response.headers()).and_then(|range| range.total);
        if !(resume.complete && total == Some(offset)) {
            file.discard();
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
        self.name = Some(name.to_owned());
        let held = file.hold()?;
        self.check_part(&file, offset)?;
        let path = file.land_held(&held)?;
        Ok(Status::Saved { path })
    }

    /// A hasher over the first `len` bytes of `file`'s `.part`, if this download needs a
    /// digest.
    pub(super) fn digest_part(
        &self,
        file: &FileFor<'_>,
        len: u64,
    ) -> Result<Option<Sha256>, FetchError> {
        if !(self.shared.policy.sha256 || self.target.sha256.is_some()) {
            return Ok(None);
        }
        file.digest(len).map(Some)
    }

    /// The digest of the `.part`'s `len` bytes, checked and kept (when this download needs
    /// one).
    fn check_part(&mut self, file: &FileFor<'_>, len: u64) -> Result<(), FetchError> {
        let hasher = self.digest_part(file, len)?;
        self.check_digest(hasher)
    }

    /// Keeps the digest of `hasher` (when there is one), or fails when it differs from the
    /// one the input expects.
    pub(super) fn check_digest(&mut self, hasher: Option<Sha256>) -> Result<(), FetchError> {
        let Some(hasher) = hasher else {
            return Ok(());
        };
        let actual: Sha256Digest = hasher.finalize().into();
        match self.target.sha256 {
            Some(expected) if expected != actual => Err(FetchError::Checksum {
                expected: hex(&expected),
                actual: hex(&actual),
            }),
            _ => {
                self.facts.sha256 = Some(actual);
                Ok(())
            }
        }
    }

    /// Counts `len` bytes received.
    pub(super) fn received(&mut self, len: u64) {
        self.facts.bytes += len;
    }

    /// The validator of the body being saved, as text for its record.
    pub(super) fn stored_validator(&self) -> Option<String> {
        self.validator.as_ref().and_then(validator_text)
    }

    pub(super) fn policy(&self) -> &'a Policy {
        &self.shared.policy
    }

    pub(super) fn tracker(&self) -> &Tracker {
        self.tracker
    }
}

/// A validator as text, to keep in a record.
fn validator_text(value: &HeaderValue) -> Option<String> {
    value.to_str().ok().map(str::to_owned)
}
