//! What every mode works with: the run's [`Work`] (input, downloader, results), a download
//! claimed from it ([`Claim`], reported exactly once), and the worker loops the thread-based
//! modes share.

use std::sync::Arc;
use std::thread;

use reqwest::Client;
use tokio::runtime::Runtime;

use crate::error::FetchError;
use crate::fetch::Downloader;
use crate::http::HttpSettings;
use crate::input::{Item, Source};
use crate::model::{Outcome, Target};
use crate::results::Results;

/// The downloads of one run and what they share. Cheap to clone (tasks need owned handles).
#[derive(Clone)]
pub struct Work {
    /// The URLs, read as the run goes.
    pub source: Arc<Source>,
    /// Width of `pool`, `async`, `procs` and `spawn`.
    pub jobs: usize,
    pub http: HttpSettings,
    pub downloader: Arc<Downloader>,
    /// Where each outcome goes as its download ends.
    pub results: Results,
}

impl Work {
    /// The next download to run, waiting for its line; `None` when the input has ended or the
    /// run was cancelled. Lines that are not downloads are reported on the way.
    pub fn next(&self) -> Option<Claim> {
        loop {
            match self.source.next()? {
                Item::Target(target) => {
                    return Some(Claim {
                        target,
                        downloader: Arc::clone(&self.downloader),
                        results: Arc::clone(&self.results),
                        reported: false,
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

    /// How many downloads can run at once in a mode of width `jobs`: fewer when fewer URLs are
    /// known to come.
    pub(super) fn width(&self) -> usize {
        let known = self.source.len_hint().unwrap_or(usize::MAX);
        self.jobs.clamp(1, known.max(1))
    }
}

/// A download taken from the input, whose outcome must be reported exactly once. One dropped
/// unreported (its worker panicked) reports a failure, so that no URL silently goes missing.
pub struct Claim {
    pub target: Target,
    downloader: Arc<Downloader>,
    results: Results,
    reported: bool,
}

impl Claim {
    pub fn report(mut self, outcome: Outcome) {
        self.reported = true;
        (self.results)(outcome);
    }

    /// Reports that this download could not start, and why.
    pub fn fail(self, why: FetchError) {
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

/// Runs `-j` OS worker threads (named `{name}-N`), each running `worker` until the input is
/// used up. `pool`, `procs` and `spawn` are built
/// on it.
pub(super) fn claiming_workers(work: &Work, name: &str, worker: impl Fn() + Sync) {
    thread::scope(|scope| {
        let started = (0..work.width())
            .filter(|n| {
                thread::Builder::new()
                    .name(format!("{name}-{n}"))
                    .spawn_scoped(scope, &worker)
                    .is_ok()
            })
            .count();
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
    match thread_runtime(&work.http) {
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
