//! One download: request, stream the body to `<name>.part`, check it, rename it into place.
//! Transient faults are retried with backoff, and a retry resumes the `.part` file with a
//! `Range` request where the server allows it.
//!
//! Every mode calls [`Downloader::fetch`]; only the scheduling around it differs.

pub mod headers;
pub mod naming;
pub mod policy;
pub mod segments;
pub mod sink;
pub mod throttle;

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use reqwest::header::{self, HeaderValue};
use reqwest::{Client, Response, StatusCode, Url};
use sha2::{Digest, Sha256};

use self::headers::{content_range, validator};
use self::naming::{Names, PART_SUFFIX};
use self::policy::{IDLE_FLUSH_AFTER, Policy, SpeedMeter};
use self::segments::Transfer;
use self::sink::Sink;
use self::throttle::Throttle;
use crate::cancel::Cancel;
use crate::error::FetchError;
use crate::model::{Outcome, Sha256Digest, Status, Target, hex};
use crate::progress::{Progress, Tracker};

/// What every download of a run shares: where files go, their names, the rules, the display.
pub struct Downloader {
    pub output_dir: PathBuf,
    pub names: Arc<dyn Names>,
    pub policy: Policy,
    pub throttle: Throttle,
    pub progress: Progress,
    pub cancel: Cancel,
    /// Whether the output directory held `.part` files when the run began (a fresh download
    /// then looks for its own, to write over it).
    pub parts_on_disk: bool,
}

/// What a download has learned so far, kept across its attempts.
#[derive(Default)]
struct Attempts {
    /// Fixed by the first response, so that retries write the same file.
    name: Option<String>,
    /// ETag or Last-Modified of the body in the `.part` file, for `If-Range`.
    validator: Option<HeaderValue>,
    http_status: Option<u16>,
    bytes: u64,
    retries: u32,
    sha256: Option<Sha256Digest>,
    /// Set when an attempt ends only to start the download again at once under the name its
    /// response gave (`-c`): not a fault, not counted as a retry.
    again: bool,
}

impl Downloader {
    /// Downloads `target` with `client`. Never fails: a failure is in the [`Outcome`].
    pub async fn fetch(&self, client: &Client, target: &Target) -> Outcome {
        if self.cancel.is_triggered() {
            return self.failed_early(target, FetchError::NotStarted);
        }
        let started = Instant::now();
        let tracker = self.progress.start(&target.planned);
        let mut attempts = Attempts::default();
        let result = tokio::select! {
            result = async {
                let _slot = self.throttle.admit(&target.url).await;
                let download = self.download(client, target, &tracker, &mut attempts);
                match self.policy.max_time {
                    Some(limit) => tokio::time::timeout(limit, download)
                        .await
                        .unwrap_or(Err(FetchError::MaxTime(limit))),
                    None => download.await,
                }
            } => result,
            () = self.cancel.triggered() => Err(FetchError::Interrupted),
        };
        let partial = match &result {
            Err(err) if !err.spoils_part() => self.leftover_part(&attempts),
            _ => None,
        };
        let outcome = Outcome {
            index: target.index,
            url: target.url.to_string(),
            status: result.unwrap_or_else(Status::Failed),
            http_status: attempts.http_status,
            bytes: attempts.bytes,
            elapsed: started.elapsed(),
            retries: attempts.retries,
            sha256: attempts.sha256,
            partial,
            thread: thread::current().id(),
        };
        tracker.finish(&outcome);
        outcome
    }

    /// The outcome of a download that failed before it could start.
    pub fn failed_early(&self, target: &Target, why: FetchError) -> Outcome {
        self.rejected(target.index, target.url.to_string(), &target.planned, why)
    }

    /// The outcome of input number `index` (`url` as given, shown as `label`) that never
    /// became a download; it is shown like any other.
    pub fn rejected(&self, index: usize, url: String, label: &str, why: FetchError) -> Outcome {
        let tracker = self.progress.start(label);
        let outcome = Outcome {
            index,
            url,
            status: Status::Failed(why),
            http_status: None,
            bytes: 0,
            elapsed: Duration::ZERO,
            retries: 0,
            sha256: None,
            partial: None,
            thread: thread::current().id(),
        };
        tracker.finish(&outcome);
        outcome
    }

    fn part_path(&self, name: &str) -> PathBuf {
        self.output_dir.join(format!("{name}{PART_SUFFIX}"))
    }

    /// The `.part` file a failed download leaves for `-c`, if it holds any bytes.
    fn leftover_part(&self, attempts: &Attempts) -> Option<PathBuf> {
        let part = self.part_path(attempts.name.as_deref()?);
        let len = sink::part_len(&part)?;
        if len == 0 {
            let _ = std::fs::remove_file(&part);
            return None;
        }
        Some(part)
    }

    /// Attempts until success, a final error, or the retries are spent.
    async fn download(
        &self,
        client: &Client,
        target: &Target,
        tracker: &Tracker,
        attempts: &mut Attempts,
    ) -> Result<Status, FetchError> {
        loop {
            let err = match self.attempt(client, target, tracker, attempts).await {
                Ok(status) => return Ok(status),
                Err(_) if std::mem::take(&mut attempts.again) => continue,
                Err(err) => err,
            };
            if err.spoils_part() {
                if let Some(name) = &attempts.name {
                    let _ = std::fs::remove_file(self.part_path(name));
                }
            }
            if !self
                .policy
                .wait_to_retry(&err, &mut attempts.retries, tracker)
                .await
            {
                return Err(err);
            }
        }
    }

    /// One request: resumes the `.part` file where there is one to resume.
    async fn attempt(
        &self,
        client: &Client,
        target: &Target,
        tracker: &Tracker,
        attempts: &mut Attempts,
    ) -> Result<Status, FetchError> {
        // A retry resumes its own `.part`; a first attempt only with `-c`.
        if attempts.name.is_none()
            && self.policy.no_clobber
            && (target.name.is_some() || !self.policy.content_disposition)
        {
            // The name is known before asking (the input's, or the URL's): a file already
            // there is kept without a request, as wget's --no-clobber does.
            let path = self.output_dir.join(&target.planned);
            if path.symlink_metadata().is_ok() {
                return Ok(Status::Skipped { path });
            }
        }
        let mut resumable = match &attempts.name {
            Some(name) => Some(name.clone()),
            None if self.policy.resume => Some(target.planned.clone()),
            None => None,
        };
        // Only a regular file of our own is resumed: a link or a FIFO counts as absent.
        let offset = resumable
            .as_ref()
            .and_then(|name| sink::part_len(&self.part_path(name)))
            .unwrap_or(0);

        let mut request = self.policy.request(client, &target.url);
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
        let response = self
            .policy
            .or_header_timeout(request.send())
            .await?
            .map_err(FetchError::from_reqwest)?;
        let status = response.status();
        attempts.http_status = Some(status.as_u16());

        if status == StatusCode::RANGE_NOT_SATISFIABLE && offset > 0 {
            return self.after_refused_range(target, &response, resumable, offset, attempts);
        }
        if !status.is_success() {
            return Err(FetchError::from_status(&response));
        }

        let name = match &attempts.name {
            Some(name) => name.clone(),
            None => {
                let name = self.name_for(target, &response);
                attempts.name = Some(name.clone());
                let path = self.output_dir.join(&name);
                if self.policy.no_clobber && path.symlink_metadata().is_ok() {
                    return Ok(Status::Skipped { path });
                }
                if self.policy.resume && resumable.as_deref() != Some(&*name) {
                    // The response names another file than the one this request resumed
                    // (a redirect, Content-Disposition): `-c` resumes that file's `.part`.
                    let own = sink::part_len(&self.part_path(&name)).unwrap_or(0);
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
                let _ = std::fs::remove_file(self.part_path(&name));
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
        let path = self.output_dir.join(&name);
        let part = self.part_path(&name);
        let segments = match (range, total) {
            (Some(_), Some(total)) if start == 0 => self.policy.segments.count(total),
            _ => 1,
        };
        let landed = if segments > 1 {
            let total = total.unwrap_or_default();
            let transfer = Transfer {
                policy: &self.policy,
                throttle: &self.throttle,
                client,
                target,
                tracker,
            };
            let (result, fetched) =
                segments::download(&transfer, response, total, segments, &part).await;
            attempts.bytes += fetched.received;
            attempts.retries += fetched.retries;
            result?;
            attempts.sha256 = self
                .digest_part(target, &part, total)?
                .map(|hasher| check_digest(target, hasher))
                .transpose()?;
            sink::rename(&part, &path)
        } else {
            if start == 0 && offset > 0 {
                // The server sent the whole body to a resume request: the `.part` is of no use.
                let _ = std::fs::remove_file(&part);
            }
            let written = self
                .stream_to_part(target, response, &part, start, tracker, attempts)
                .await?;
            written.land(&part, &path)
        };
        landed.map_err(|source| FetchError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(Status::Saved { path })
    }

    /// 416 to a resume request: the `.part` may already be whole (a run stopped before its
    /// rename); otherwise it is of no use and the download starts over.
    fn after_refused_range(
        &self,
        target: &Target,
        response: &Response,
        resumable: Option<String>,
        offset: u64,
        attempts: &mut Attempts,
    ) -> Result<Status, FetchError> {
        let Some(name) = resumable else {
            return Err(FetchError::BadResume("416".to_owned()));
        };
        let part = self.part_path(&name);
        let total = content_range(response.headers()).map(|(_, total)| total);
        if total != Some(Some(offset)) {
            let _ = std::fs::remove_file(&part);
            return Err(FetchError::BadResume(
                "416 Range Not Satisfiable".to_owned(),
            ));
        }
        attempts.name = Some(name.clone());
        let digest = self
            .digest_part(target, &part, offset)?
            .map(|hasher| check_digest(target, hasher))
            .transpose()?;
        attempts.sha256 = digest;
        let path = self.output_dir.join(&name);
        sink::rename(&part, &path).map_err(|source| FetchError::Write {
            path: path.clone(),
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
        if naming::is_reserved_for(target, &wanted) {
            // The URL's own name, reserved when its line was read (made distinct from the other
            // URLs' then, which is no rename to speak of).
            return target.planned.clone();
        }
        let name = self.names.claim(target, wanted.clone());
        self.say_if_renamed(&target.url, &wanted, &name);
        name
    }

    /// Says so when a name the server chose was taken by a file already in the output
    /// directory, which keeps it (the download gets `name` instead).
    pub fn say_if_renamed(&self, url: &Url, wanted: &str, name: &str) {
        if name != wanted && self.output_dir.join(wanted).symlink_metadata().is_ok() {
            self.progress.println(&format!(
                "renamed {url}: {wanted} is already in {}, so it is saved as {name}",
                self.output_dir.display()
            ));
        }
    }

    /// A hasher over the first `len` bytes of `part`, if this download needs a digest.
    fn digest_part(
        &self,
        target: &Target,
        part: &Path,
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
            path: part.to_owned(),
            source,
        };
        let file = sink::open_no_follow(part, File::options().read(true)).map_err(read_error)?;
        io::copy(&mut file.take(len), &mut hasher).map_err(read_error)?;
        Ok(Some(hasher))
    }

    /// Streams the body into `part` from byte `start`, then checks its length (and digest,
    /// kept in `attempts`). Returns the file, complete, to land under its final name.
    async fn stream_to_part(
        &self,
        target: &Target,
        mut response: Response,
        part: &Path,
        start: u64,
        tracker: &Tracker,
        attempts: &mut Attempts,
    ) -> Result<sink::Part, FetchError> {
        // The length of the body as read: a body that reqwest decodes (`--compressed` and a
        // Content-Encoding it knows) has none, so the Content-Length of the encoded bytes is
        // never compared with the decoded ones; an unencoded body is still checked.
        let expected = response.content_length().map(|len| start + len);
        tracker.set_length(expected);
        tracker.set_position(start);
        let write_error = |source| FetchError::Write {
            path: part.to_owned(),
            source,
        };
        let mut hasher = self.digest_part(target, part, start)?;
        let body_len = expected.map(|e| e - start);
        // A `.part` left by an earlier run is written over (and so consumed), not left behind.
        let fresh = start == 0 && !(self.parts_on_disk && part.symlink_metadata().is_ok());
        let file = if fresh {
            sink::Part::fresh(&self.output_dir, part, body_len)
        } else {
            sink::Part::resume(part, start)
        };
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
            attempts.bytes += len;
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
                attempts.sha256 = hasher.map(|h| check_digest(target, h)).transpose()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::headers::{retry_after, retry_after_at};
    use reqwest::header::HeaderMap;
    use std::time::SystemTime;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    #[test]
    fn content_ranges_parse() {
        let h = |v| headers(&[(header::CONTENT_RANGE, v)]);
        assert_eq!(
            content_range(&h("bytes 100-199/1000")),
            Some((100, Some(1000)))
        );
        assert_eq!(content_range(&h("bytes 5-9/*")), Some((5, None)));
        assert_eq!(content_range(&h("bytes */1000")), Some((0, Some(1000))));
        assert_eq!(content_range(&h("items 1-2/3")), None);
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
