//! One attempt of a download: a request (resuming the `.part` where there is one to resume),
//! its response checked, and the body streamed to disk (or split into segments), then given
//! its final name.

use std::io::{self, Read};

use reqwest::header;
use reqwest::{Response, StatusCode};
use sha2::{Digest, Sha256};

use super::headers::{content_range, http_error, last_modified, validator};
use super::naming;
use super::output::Part;
use super::policy::{IDLE_FLUSH_AFTER, SpeedMeter};
use super::segments::{self, Transfer};
use super::sink::Sink;
use super::{Attempts, Downloader};
use crate::error::FetchError;
use crate::model::{Sha256Digest, Status, Target, hex};

impl Downloader {
    /// One request: resumes the `.part` file where there is one to resume.
    pub(super) async fn attempt(&self, attempts: &mut Attempts<'_>) -> Result<Status, FetchError> {
        let (client, target, tracker) = (attempts.client, attempts.target, attempts.tracker);
        let output = &self.output;
        // A retry resumes its own `.part`; a first attempt only with `-c`.
        if attempts.name.is_none()
            && self.policy.no_clobber
            && (target.name.is_some() || !self.policy.content_disposition)
            && output.holds(&target.planned)
        {
            // The name is known before asking (the input's, or the URL's): a file already
            // there is kept without a request, as wget's --no-clobber does.
            let path = output.file(&target.planned);
            return Ok(Status::Skipped { path });
        }
        let mut resumable = match &attempts.name {
            Some(name) => Some(name.clone()),
            None if self.policy.resume => Some(target.planned.clone()),
            None => None,
        };
        // Only a regular file of our own is resumed: a link or a FIFO counts as absent.
        let offset = resumable
            .as_deref()
            .and_then(|name| output.part_len(name))
            .unwrap_or(0);

        let mut request = self.policy.request(client, &target.url);
        // -N: a file already there (under the name known before asking) is fetched only if
        // the server's copy is newer.
        let known_name = target.name.is_some() || !self.policy.content_disposition;
        let since = (self.policy.timestamping && offset == 0 && known_name)
            .then(|| output.modified(&target.planned))
            .flatten();
        if let Some(since) = since {
            request = request.header(header::IF_MODIFIED_SINCE, httpdate::fmt_http_date(since));
        }
        // Without ranges (`--compressed`), the whole body every time: a `.part` left by an
        // earlier attempt is replaced, as when a server ignores a range.
        let ranges = self.policy.ranges;
        if ranges && offset > 0 {
            request = request.header(header::RANGE, format!("bytes={offset}-"));
            if let Some(validator) = &attempts.validator {
                request = request.header(header::IF_RANGE, validator.clone());
            }
        } else if ranges && self.policy.segments.wanted() {
            // A 206 answer says the server serves ranges, and gives the size to split.
            request = request.header(header::RANGE, "bytes=0-");
        }
        let response = self.policy.send(&target.url, request, tracker).await?;
        let status = response.status();
        attempts.facts.http_status = Some(status.as_u16());
        self.width().responded(response.version());

        if status == StatusCode::NOT_MODIFIED && since.is_some() {
            let path = output.file(&target.planned);
            return Ok(Status::Skipped { path });
        }
        if status == StatusCode::RANGE_NOT_SATISFIABLE && offset > 0 {
            return self.after_refused_range(attempts, &response, resumable, offset);
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
                    return Ok(Status::Skipped { path });
                }
                if self.policy.resume && resumable.as_deref() != Some(&*name) {
                    // The response names another file than the one this request resumed
                    // (a redirect, Content-Disposition): `-c` resumes that file's `.part`.
                    let own = output.part_len(&name).unwrap_or(0);
                    if own != offset {
                        attempts.again = true;
                        return Err(FetchError::BadResume(format!("resuming {name} instead")));
                    }
                    resumable = Some(name.clone());
                }
                name
            }
        };
        let range =
            (status == StatusCode::PARTIAL_CONTENT).then(|| content_range(response.headers()));
        let (start, total) = match range {
            // A whole body: no range asked, the server ignored it, or the file changed.
            None => (0, response.content_length()),
            Some(Some((first, total)))
                if first == offset && (offset == 0 || resumable.as_deref() == Some(&*name)) =>
            {
                (offset, total)
            }
            Some(range) => {
                output.discard_part(&name);
                return Err(FetchError::BadResume(format!(
                    "an unexpected range {range:?}"
                )));
            }
        };
        let size = total.or_else(|| response.content_length().map(|len| start + len));
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
        let segments = match (range, total) {
            (Some(_), Some(total)) if start == 0 => self.policy.segments.count(total),
            _ => 1,
        };
        let write_error = |source| FetchError::Write {
            path: output.part(&name),
            source,
        };
        let landed = if segments > 1 {
            let total = total.unwrap_or_default();
            let part = output.preallocate(&name, total).map_err(write_error)?;
            let transfer = Transfer {
                policy: &self.policy,
                throttle: &self.throttle,
                client,
                http: self.http(),
                target,
                tracker,
            };
            let (result, fetched) = segments::download(&transfer, response, part, segments).await;
            attempts.facts.bytes += fetched.received;
            attempts.facts.retries += fetched.retries;
            result?;
            attempts.facts.sha256 = self
                .digest_part(target, &name, total)?
                .map(|hasher| check_digest(target, hasher))
                .transpose()?;
            output.land_part(&name)
        } else {
            if start == 0 && offset > 0 {
                // The server sent the whole body to a resume request: the `.part` is of no use.
                output.discard_part(&name);
            }
            let written = self.stream(attempts, response, &name, start).await?;
            output.land(&name, written)
        };
        let path = landed.map_err(|source| FetchError::Write {
            path: output.file(&name),
            source,
        })?;
        if let Some(modified) = modified {
            // Best effort, as wget: the bytes are saved whatever the filesystem allows.
            let _ = output.set_modified(&name, modified);
        }
        Ok(Status::Saved { path })
    }

    /// 416 to a resume request: the `.part` may already be whole (a run stopped before its
    /// rename); otherwise it is of no use and the download starts over.
    fn after_refused_range(
        &self,
        attempts: &mut Attempts<'_>,
        response: &Response,
        resumable: Option<String>,
        offset: u64,
    ) -> Result<Status, FetchError> {
        let target = attempts.target;
        let Some(name) = resumable else {
            return Err(FetchError::BadResume("416".to_owned()));
        };
        let total = content_range(response.headers()).map(|(_, total)| total);
        if total != Some(Some(offset)) {
            self.output.discard_part(&name);
            return Err(FetchError::BadResume(
                "416 Range Not Satisfiable".to_owned(),
            ));
        }
        attempts.name = Some(name.clone());
        attempts.facts.sha256 = self
            .digest_part(target, &name, offset)?
            .map(|hasher| check_digest(target, hasher))
            .transpose()?;
        let path = self
            .output
            .land_part(&name)
            .map_err(|source| FetchError::Write {
                path: self.output.file(&name),
                source,
            })?;
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
        let read_error = |source| FetchError::Write {
            path: self.output.part(name),
            source,
        };
        let file = self.output.read_part(name).map_err(read_error)?;
        io::copy(&mut file.take(len), &mut hasher).map_err(read_error)?;
        Ok(Some(hasher))
    }

    /// Streams the body into `name`'s file from byte `start`, then checks its length (and
    /// digest, kept in `attempts`). Returns the file, complete, to land under its final name.
    async fn stream(
        &self,
        attempts: &mut Attempts<'_>,
        mut response: Response,
        name: &str,
        start: u64,
    ) -> Result<Part, FetchError> {
        let (target, tracker) = (attempts.target, attempts.tracker);
        // The length of the body as read: a body that reqwest decodes (`--compressed` and a
        // Content-Encoding it knows) has none, so the Content-Length of the encoded bytes is
        // never compared with the decoded ones; an unencoded body is still checked.
        let expected = response.content_length().map(|len| start + len);
        tracker.set_length(expected);
        tracker.set_position(start);
        let write_error = |source| FetchError::Write {
            path: self.output.part(name),
            source,
        };
        let mut hasher = self.digest_part(target, name, start)?;
        let body_len = expected.map(|e| e - start);
        let file = self.output.open(name, start, body_len);
        let mut out = Sink::new(file.map_err(write_error)?, body_len).map_err(write_error)?;
        let mut written = start;
        let mut meter = SpeedMeter::new(&self.policy);
        loop {
            let waiting = self.policy.next_chunk(&mut response, &mut meter);
            let next = match tokio::time::timeout(IDLE_FLUSH_AFTER, waiting).await {
                Ok(next) => next,
                Err(_) => {
                    // The network went quiet: what arrived goes to disk now, so that a
                    // process killed while waiting keeps it for -c.
                    out.flush_buffer().map_err(write_error)?;
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
            attempts.facts.bytes += len;
            tracker.advance(len);
        }
        let file = out.finish().await.map_err(write_error)?;
        match expected {
            Some(expected) if written < expected => Err(FetchError::ShortBody {
                got: written,
                expected,
                cause: None,
            }),
            Some(expected) if written > expected => Err(FetchError::LongBody { expected }),
            _ => {
                attempts.facts.sha256 = hasher.map(|h| check_digest(target, h)).transpose()?;
                Ok(file)
            }
        }
    }
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
