//! What every mode works with: the run's [`Work`] (input, downloader, results), built from a
//! [`Plan`] in one place for a download and a benchmark's run alike, a download claimed from
//! it ([`Claim`], reported exactly once), and the worker loops the thread-based modes share.

use std::sync::Arc;
use std::thread;

use reqwest::Client;
use tokio::runtime::Runtime;

use crate::cancel::Cancel;
use crate::error::FetchError;
use crate::fetch::naming::NameRegistry;
use crate::fetch::output::OutputDir;
use crate::fetch::policy::Policy;
use crate::fetch::throttle::Throttle;
use crate::fetch::{Downloader, Reach};
use crate::http::HttpSettings;
use crate::input::{Input, Item, Source};
use crate::model::{Breadth, Mode, Outcome, Target};
use crate::progress::Progress;
use crate::results::Results;
use crate::width::{Jobs, Slot};

/// What a run's [`Work`] is made of: what to download, how, and where it all goes.
pub(crate) struct Plan {
    pub(crate) mode: Mode,
    /// `-j`, which [`super::width`] makes the run's width of.
    pub(crate) jobs: Jobs,
    pub(crate) input: Input,
    pub(crate) output: OutputDir,
    pub(crate) policy: Policy,
    pub(crate) throttle: Throttle,
    pub(crate) http: HttpSettings,
    pub(crate) progress: Progress,
    pub(crate) cancel: Cancel,
    pub(crate) results: Results,
}

/// The downloads of one run and what they share. Cheap to clone (tasks need owned handles).
#[derive(Clone)]
pub(crate) struct Work {
    /// The URLs, read as the run goes.
    pub(crate) source: Arc<Source>,
    pub(crate) downloader: Arc<Downloader>,
    /// Where each outcome goes as its download ends.
    pub(crate) results: Results,
}

impl Work {
    /// Starts reading the plan's input and sets up its downloader, at the width its mode makes
    /// of `-j` (a notice about that width is shown on the run's progress, and so is the width
    /// as it changes).
    pub(crate) fn start(plan: Plan) -> anyhow::Result<Work> {
        let Plan {
            mode,
            jobs,
            input,
            output,
            policy,
            throttle,
            http,
            progress,
            cancel,
            results,
        } = plan;
        let names = Arc::new(match policy.no_clobber {
            // A name taken on disk is then skipped, not renamed.
            true => NameRegistry::default(),
            false => NameRegistry::default().keeping_existing(&output, policy.resume),
        });
        let segments = policy.segments.most();
        let (width, notice) = super::width(mode, jobs, segments, progress.received());
        if let Some(notice) = notice {
            progress.println(&notice);
        }
        if mode.breadth() != Breadth::One {
            let shown = progress.clone();
            width.watch(Box::new(move |n| shown.show_width(n)));
        }
        let source = Source::start(input, Arc::clone(&names), progress.clone(), cancel.clone())?;
        let reach = Reach {
            http,
            width: Arc::new(width),
        };
        let downloader = Downloader::new(output, names, policy, throttle, progress, cancel, reach);
        Ok(Work {
            source: Arc::new(source),
            downloader: Arc::new(downloader),
            results,
        })
    }

    /// The next download to run, waiting for a place under the width and then for its line;
    /// `None` when the input has ended or the run was cancelled. Lines that are not downloads
    /// are reported on the way.
    pub(crate) fn next(&self) -> Option<Claim> {
        let mut slot = self.downloader.width().enter();
        loop {
            let Some(item) = self.source.next() else {
                self.downloader.width().close();
                return None;
            };
            match item {
                Item::Target(target) => {
                    slot.take();
                    let width = self.downloader.width();
                    if let Some(version) = self.downloader.http().foreseen_version(&target.url) {
                        width.responded(version);
                    }
                    return Some(Claim {
                        target,
                        downloader: Arc::clone(&self.downloader),
                        results: Arc::clone(&self.results),
                        reported: false,
                        slot: Some(slot),
                    });
                }
                Item::Bad { index, text, why } => {
                    // The line may hold a URL with its password: never shown.
                    let text = crate::secret::text(&text);
                    let why = FetchError::BadInput(crate::secret::text(&why));
                    let outcome = self.downloader.rejected(index, text.clone(), &text, why);
                    (self.results)(outcome);
                }
            }
        }
    }

    /// The most downloads that can run at once: the width's most, or fewer when fewer URLs are
    /// known to come.
    pub(super) fn most_at_once(&self) -> usize {
        self.downloader.width().most().clamp(1, self.known())
    }

    /// How many workers to start with: the width, or fewer when fewer URLs are known to come.
    fn first_workers(&self) -> usize {
        self.downloader.width().current().clamp(1, self.known())
    }

    /// How many URLs are known to come (the arguments, before a list is read).
    fn known(&self) -> usize {
        self.source.len_hint().unwrap_or(usize::MAX).max(1)
    }
}

/// A download taken from the input, whose outcome must be reported exactly once. One dropped
/// unreported (its worker panicked) reports a failure, so that no URL silently goes missing.
pub(crate) struct Claim {
    pub(crate) target: Target,
    downloader: Arc<Downloader>,
    results: Results,
    reported: bool,
    /// Its place under the run's width, given back when it is reported.
    slot: Option<Slot>,
}

impl Claim {
    pub(crate) fn report(mut self, outcome: Outcome) {
        self.reported = true;
        if let Some(slot) = self.slot.take() {
            slot.end();
        }
        (self.results)(outcome);
    }

    /// Reports that this download could not start, and why.
    pub(crate) fn fail(self, why: FetchError) {
        let outcome = self.downloader.failed_early(&self.target, why);
        self.report(outcome);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.reported {
            let why = FetchError::Setup("its worker stopped unexpectedly".to_owned());
            (self.results)(self.downloader.failed_early(&self.target, why));
        }
    }
}

/// A current-thread runtime with its own client: how `seq`, `threads` and `pool` give each OS
/// thread its own network I/O (a shared blocking client would funnel it all through one hidden
/// runtime thread).
pub(super) fn thread_runtime(http: &HttpSettings) -> anyhow::Result<(Runtime, Client)> {
    let runtime = crate::platform::current_thread_runtime()?;
    // The client must be built inside its runtime: its connections are spawned there.
    let client = runtime.block_on(async { http.client() })?;
    Ok((runtime, client))
}

/// Runs OS worker threads (named `{name}-N`), each running `worker` until the input is used
/// up: as many as the width, and more as it grows under `-j auto` (a worker beyond a width that
/// shrank waits for a place). `pool`, `procs` and `spawn` are built on it.
pub(super) fn claiming_workers(work: &Work, name: &str, worker: impl Fn() + Sync) {
    let width = work.downloader.width();
    thread::scope(|scope| {
        let mut started = 0;
        let mut wanted = work.first_workers();
        loop {
            let before = started;
            while started < wanted {
                let spawned = thread::Builder::new()
                    .name(format!("{name}-{started}"))
                    .spawn_scoped(scope, &worker);
                if spawned.is_err() {
                    break;
                }
                started += 1;
            }
            let stuck = started < wanted && started == before;
            if stuck || !width.climbs() || started >= work.known() {
                break;
            }
            match width.wait_wider(started) {
                Some(now) => wanted = now.min(work.known()),
                None => break,
            }
        }
        if started == 0 {
            // Not even one worker could start: nothing will take the input.
            while let Some(claim) = work.next() {
                claim.fail(FetchError::Setup(
                    "cannot start any worker thread".to_owned(),
                ));
            }
        }
        // A worker that panicked has reported its download through its `Claim`; the scope
        // joins the others.
    });
}

/// Fetches the downloads `next` hands out, one after another, on this thread.
pub(super) fn fetch_in_turn(work: &Work, mut next: impl FnMut() -> Option<Claim>) {
    match thread_runtime(work.downloader.http()) {
        Ok((runtime, client)) => {
            // The wait for the next line happens outside the runtime; connections stay open.
            while let Some(claim) = next() {
                let outcome = runtime.block_on(work.downloader.fetch(&client, &claim.target));
                claim.report(outcome);
            }
        }
        Err(err) => {
            while let Some(claim) = next() {
                claim.fail(FetchError::Setup(format!("{err:#}")));
            }
        }
    }
}
