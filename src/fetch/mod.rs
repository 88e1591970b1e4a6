//! One download, from request to a file under its final name: every mode calls
//! [`Downloader::fetch`] (`procs` and `spawn` in their worker processes); only the scheduling
//! around it differs.
//!
//! A download is attempts under one [`policy::Policy`]: transient faults are retried with
//! backoff, and a retry resumes the `.part` file with a `Range` request where the server allows
//! it. The steps, a file each:
//! - [`attempt`]: one request and its response, streamed (or split, [`segments`]) to disk;
//! - [`output`]: the output directory and a download's file in it (`.part`, link, rename);
//! - [`sink`]: how bytes reach that file (inline, or a writer thread);
//! - [`naming`]: which name a download gets; [`headers`]: what responses say;
//! - [`policy`]: retries, timeouts and one HTTP exchange; [`throttle`]: rate and host slots;
//! - [`trace`]: `-v`, the request and response heads.

mod attempt;
pub(crate) mod headers;
pub(crate) mod naming;
pub(crate) mod output;
pub(crate) mod policy;
pub(crate) mod record;
pub(crate) mod segments;
pub(crate) mod sink;
pub(crate) mod throttle;
pub(crate) mod trace;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Client;
use reqwest::header::HeaderValue;

use self::naming::Names;
use self::output::OutputDir;
use self::policy::Policy;
use self::throttle::Throttle;
use crate::cancel::Cancel;
use crate::error::FetchError;
use crate::http::HttpSettings;
use crate::model::{Facts, Outcome, Status, Target};
use crate::progress::{Progress, Tracker};
use crate::width::Width;

/// What every download of a run shares: where files go, their names, the rules, the display.
pub(crate) struct Downloader {
    /// Where files land (`-o`).
    output: OutputDir,
    /// The run's names, for a name that only a response tells.
    names: Arc<dyn Names>,
    /// Retries, timeouts, resume, limits: the rules of every attempt.
    policy: Policy,
    /// `--limit-rate`, `--max-per-host`, `--wait`.
    throttle: Throttle,
    /// Each download's bar or line.
    progress: Progress,
    /// Ctrl-C and SIGTERM: a download in hand stops, and keeps its `.part`.
    cancel: Cancel,
    /// How downloads reach their servers.
    reach: Reach,
}

/// How a run's downloads reach their servers: the client settings (each worker builds its
/// client from them, and a segment its own connection), and how many run at once (told what
/// responses and push-backs show, for `-j auto`).
pub(crate) struct Reach {
    pub(crate) http: HttpSettings,
    pub(crate) width: Arc<Width>,
}

/// One download's attempts: what they run with, and what they have learned so far.
struct Attempts<'a> {
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

impl Downloader {
    pub(crate) fn new(
        output: OutputDir,
        names: Arc<dyn Names>,
        policy: Policy,
        throttle: Throttle,
        progress: Progress,
        cancel: Cancel,
        reach: Reach,
    ) -> Downloader {
        Downloader {
            output,
            names,
            policy,
            throttle,
            progress,
            cancel,
            reach,
        }
    }

    pub(crate) fn output(&self) -> &OutputDir {
        &self.output
    }

    pub(crate) fn policy(&self) -> &Policy {
        &self.policy
    }

    pub(crate) fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    pub(crate) fn progress(&self) -> &Progress {
        &self.progress
    }

    pub(crate) fn cancel(&self) -> &Cancel {
        &self.cancel
    }

    pub(crate) fn width(&self) -> &Arc<Width> {
        &self.reach.width
    }

    pub(crate) fn http(&self) -> &HttpSettings {
        &self.reach.http
    }

    /// Downloads `target` with `client`. Never fails: a failure is in the [`Outcome`].
    pub(crate) async fn fetch(&self, client: &Client, target: &Target) -> Outcome {
        if self.cancel.is_triggered() {
            return self.failed_early(target, FetchError::NotStarted);
        }
        let started = Instant::now();
        let tracker = self.progress.start(&target.planned);
        let mut attempts = Attempts {
            client,
            target,
            tracker: &tracker,
            name: None,
            validator: None,
            facts: Facts::default(),
            again: false,
            checked_complete: false,
        };
        let result = tokio::select! {
            result = async {
                let _slot = self.throttle.admit(&target.url).await;
                let download = self.download(&mut attempts);
                match self.policy.max_time {
                    Some(limit) => tokio::time::timeout(limit, download)
                        .await
                        .unwrap_or(Err(FetchError::MaxTime(limit))),
                    None => download.await,
                }
            } => result,
            () = self.cancel.triggered() => Err(FetchError::Interrupted),
        };
        let mut facts = attempts.facts;
        if matches!(&result, Err(err) if !err.spoils_part() && !matches!(err, FetchError::Busy { .. }))
        {
            facts.partial = attempts
                .name
                .as_deref()
                .and_then(|name| self.output.leftover_part(name));
        }
        let status = result.unwrap_or_else(Status::Failed);
        self.conclude(target, tracker, status, started.elapsed(), facts)
    }

    /// The outcome of `target`'s download, also shown as ended by its `tracker`.
    pub(crate) fn conclude(
        &self,
        target: &Target,
        tracker: Tracker,
        status: Status,
        elapsed: Duration,
        facts: Facts,
    ) -> Outcome {
        let url = crate::secret::url(&target.url);
        let outcome = Outcome::new(target.index, url, status, elapsed, facts);
        tracker.finish(&outcome);
        outcome
    }

    /// The outcome of a download that failed before it could start.
    pub(crate) fn failed_early(&self, target: &Target, why: FetchError) -> Outcome {
        self.rejected(
            target.index,
            crate::secret::url(&target.url),
            &target.planned,
            why,
        )
    }

    /// The outcome of input number `index` (`url` as given, shown as `label`) that never
    /// became a download; it is shown like any other.
    pub(crate) fn rejected(
        &self,
        index: usize,
        url: String,
        label: &str,
        why: FetchError,
    ) -> Outcome {
        let tracker = self.progress.start(label);
        let status = Status::Failed(why);
        let outcome = Outcome::new(index, url, status, Duration::ZERO, Facts::default());
        tracker.finish(&outcome);
        outcome
    }

    /// The name `target` gets when its response asks for `wanted` (a redirect's, or
    /// Content-Disposition's); says so when a file already in the output directory keeps
    /// `wanted`.
    pub(crate) fn claim(&self, target: &Target, wanted: String) -> String {
        if naming::is_reserved_for(target, &wanted) {
            // The URL's own name, reserved when its line was read (made distinct from the other
            // URLs' then, which is no rename to speak of).
            return target.planned.clone();
        }
        let name = self.names.claim(target, wanted.clone());
        if name != wanted && self.output.holds(&wanted) {
            self.progress.println(&format!(
                "renamed {}: {wanted} is already in {}, so it is saved as {name}",
                crate::secret::url(&target.url),
                self.output.path().display()
            ));
        }
        name
    }

    /// Attempts until success, a final error, or the retries are spent.
    async fn download(&self, attempts: &mut Attempts<'_>) -> Result<Status, FetchError> {
        loop {
            let err = match self.attempt(attempts).await {
                Ok(status) => return Ok(status),
                Err(_) if std::mem::take(&mut attempts.again) => continue,
                Err(err) => err,
            };
            // Refused for load: the retry waits for a place under the (narrowed) width.
            let aside = err.is_push_back().then(|| {
                let aside = self.reach.width.stand_aside();
                self.reach.width.pushed_back();
                aside
            });
            if err.spoils_part() {
                if let Some(name) = &attempts.name {
                    self.output.discard_part(name);
                }
            }
            if !self
                .policy
                .wait_to_retry(&err, &mut attempts.facts.retries, attempts.tracker)
                .await
            {
                return Err(err);
            }
            if let Some(aside) = aside {
                aside.rejoin().await;
            }
        }
    }
}
