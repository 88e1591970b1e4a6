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
//! - [`policy`]: retries, timeouts and one HTTP exchange; [`throttle`]: rate and host slots.

mod attempt;
pub mod headers;
pub mod naming;
pub mod output;
pub mod policy;
pub mod segments;
pub mod sink;
pub mod throttle;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Client;

use self::attempt::Attempts;
use self::naming::Names;
use self::output::OutputDir;
use self::policy::Policy;
use self::throttle::Throttle;
use crate::cancel::Cancel;
use crate::error::FetchError;
use crate::model::{Facts, Outcome, Status, Target};
use crate::progress::{Progress, Tracker};

/// What every download of a run shares: where files go, their names, the rules, the display.
pub struct Downloader {
    output: OutputDir,
    names: Arc<dyn Names>,
    policy: Policy,
    throttle: Throttle,
    progress: Progress,
    cancel: Cancel,
}

impl Downloader {
    pub fn new(
        output: OutputDir,
        names: Arc<dyn Names>,
        policy: Policy,
        throttle: Throttle,
        progress: Progress,
        cancel: Cancel,
    ) -> Downloader {
        Downloader {
            output,
            names,
            policy,
            throttle,
            progress,
            cancel,
        }
    }

    pub fn output(&self) -> &OutputDir {
        &self.output
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    pub fn cancel(&self) -> &Cancel {
        &self.cancel
    }

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
        let mut facts = attempts.facts;
        if matches!(&result, Err(err) if !err.spoils_part()) {
            facts.partial = attempts
                .name
                .as_deref()
                .and_then(|name| self.output.leftover_part(name));
        }
        let status = result.unwrap_or_else(Status::Failed);
        self.conclude(target, tracker, status, started.elapsed(), facts)
    }

    /// The outcome of `target`'s download, also shown as ended by its `tracker`.
    pub fn conclude(
        &self,
        target: &Target,
        tracker: Tracker,
        status: Status,
        elapsed: Duration,
        facts: Facts,
    ) -> Outcome {
        let outcome = Outcome::new(target.index, target.url.to_string(), status, elapsed, facts);
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
        let status = Status::Failed(why);
        let outcome = Outcome::new(index, url, status, Duration::ZERO, Facts::default());
        tracker.finish(&outcome);
        outcome
    }

    /// The name `target` gets when its response asks for `wanted` (a redirect's, or
    /// Content-Disposition's); says so when a file already in the output directory keeps
    /// `wanted`.
    pub fn claim(&self, target: &Target, wanted: String) -> String {
        if naming::is_reserved_for(target, &wanted) {
            // The URL's own name, reserved when its line was read (made distinct from the other
            // URLs' then, which is no rename to speak of).
            return target.planned.clone();
        }
        let name = self.names.claim(target, wanted.clone());
        if name != wanted && self.output.holds(&wanted) {
            self.progress.println(&format!(
                "renamed {}: {wanted} is already in {}, so it is saved as {name}",
                target.url,
                self.output.path().display()
            ));
        }
        name
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
                    self.output.discard_part(name);
                }
            }
            if !self
                .policy
                .wait_to_retry(&err, &mut attempts.facts.retries, tracker)
                .await
            {
                return Err(err);
            }
        }
    }
}
