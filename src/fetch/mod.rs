//! One download, from request to a file under its final name: every mode calls
//! [`Downloader::fetch`] (`procs` and `spawn` in their worker processes, whose parent frames
//! each download with [`Downloader::frame`] too); only the scheduling around it differs.
//!
//! [`Downloader`] is what a run's downloads share; a [`download::Download`] owns one
//! download's life: attempts under one [`policy::Policy`], transient faults retried with
//! backoff, a retry resuming the `.part` file with a `Range` request where the server allows
//! it. The steps, a file each:
//! - [`download`]: the attempts: a request planned from what is on disk, its answer, the name;
//! - [`body`] and [`segments`]: the body saved in order, or as ranges at once;
//! - [`pump`]: the one loop that reads a body (timeouts, rate, progress, write-outs);
//! - [`output`]: the output directory and a download's file in it (`.part`, record, rename);
//! - [`sink`]: how bytes reach that file (inline, or a writer thread);
//! - [`naming`]: which name a download gets; [`headers`]: what responses say;
//! - [`policy`]: retries, timeouts and one HTTP exchange; [`throttle`]: rate and host slots;
//! - [`trace`]: `-v`, the request and response heads.

mod body;
mod download;
pub(crate) mod headers;
pub(crate) mod naming;
pub(crate) mod output;
pub(crate) mod policy;
mod pump;
pub(crate) mod record;
pub(crate) mod segments;
pub(crate) mod sink;
pub(crate) mod throttle;
pub(crate) mod trace;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Client;

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

/// How a download ended, as the frame around it needs to know: its status, its facts, and
/// the name of the file it was writing (for a `.part` left behind).
pub(crate) struct Ended {
    pub(crate) result: Result<Status, FetchError>,
    pub(crate) facts: Facts,
    pub(crate) name: Option<String>,
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
        self.frame(target, async |tracker| {
            let mut download = download::Download::new(self, client, target, tracker);
            let result = tokio::select! {
                result = async {
                    match self.policy.max_time {
                        Some(limit) => tokio::time::timeout(limit, download.run())
                            .await
                            .unwrap_or(Err(FetchError::MaxTime(limit))),
                        None => download.run().await,
                    }
                } => result,
                () = self.cancel.triggered() => Err(FetchError::Interrupted),
            };
            let name = download.name().map(str::to_owned);
            Ended {
                result,
                facts: download.into_facts(),
                name,
            }
        })
        .await
    }

    /// The frame around one download, wherever it runs (here, or in a worker process): not
    /// started once the run is cancelled; else admitted by the throttle (host slots, pauses
    /// between starts), shown, run by `body`, and concluded, with the `.part` a failure left
    /// named in its outcome.
    pub(crate) async fn frame(
        &self,
        target: &Target,
        body: impl AsyncFnOnce(&Tracker) -> Ended,
    ) -> Outcome {
        if self.cancel.is_triggered() {
            return self.failed_early(target, FetchError::NotStarted);
        }
        let started = Instant::now();
        let tracker = self.progress.start(&target.planned);
        let admitted = tokio::select! {
            slot = self.throttle.admit(&target.url) => Some(slot),
            () = self.cancel.triggered() => None,
        };
        // The body sees a cancel itself: what it learned until then is its outcome's.
        let ended = match admitted {
            Some(_slot) => body(&tracker).await,
            None => Ended {
                result: Err(FetchError::Interrupted),
                facts: Facts::default(),
                name: None,
            },
        };
        let Ended {
            result,
            mut facts,
            name,
        } = ended;
        let leaves_part =
            |err: &FetchError| !err.spoils_part() && !matches!(err, FetchError::Busy { .. });
        if matches!(&result, Err(err) if leaves_part(err)) {
            if let Some(name) = name {
                facts.partial = self.output.file_for(&name).leftover();
            }
        }
        let status = result.unwrap_or_else(Status::Failed);
        self.conclude(target, tracker, status, started.elapsed(), facts)
    }

    /// The outcome of `target`'s download, also shown as ended by its `tracker`.
    fn conclude(
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
}
