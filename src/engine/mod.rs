//! The six ways to schedule the same downloads. Each engine exposes `run(&Work)` and calls the
//! same [`Downloader::fetch`] with clients built from the same [`HttpSettings`]; they differ only
//! in how downloads are spread over threads, tasks and processes.

mod pool;
mod procs;
mod seq;
mod tasks;
mod threads;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Instant;

use anyhow::Context;
use reqwest::Client;
use tokio::runtime::Runtime;

use crate::fetch::{Downloader, FetchError, Outcome, Target};
use crate::http::HttpSettings;
use crate::procs::Lifetime;
use crate::report::Summary;

/// An execution model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One download after the other, on the calling thread.
    Seq,
    /// One OS thread per URL, all started, then all joined.
    Threads,
    /// `-j` OS worker threads taking URLs from a shared queue.
    Pool,
    /// Tasks on a tokio multi-thread runtime, at most `-j` in flight.
    Async,
    /// `-j` worker processes, each taking downloads one after another (a process pool).
    Procs,
    /// A new child process per download, at most `-j` alive at once.
    Spawn,
}

impl Mode {
    /// How many downloads this mode runs at once, for `files` downloads at width `jobs`.
    pub fn concurrency(self, files: usize, jobs: usize) -> usize {
        match self {
            Mode::Seq => 1,
            Mode::Threads => files,
            Mode::Pool | Mode::Async | Mode::Procs | Mode::Spawn => jobs,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Seq => "seq",
            Mode::Threads => "threads",
            Mode::Pool => "pool",
            Mode::Async => "async",
            Mode::Procs => "procs",
            Mode::Spawn => "spawn",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The downloads of one run and what they share. Cheap to clone (tasks need owned handles).
#[derive(Clone)]
pub struct Work {
    pub targets: Arc<[Target]>,
    /// Width of `pool`, `async`, `procs` and `spawn`.
    pub jobs: usize,
    pub http: HttpSettings,
    pub downloader: Arc<Downloader>,
}

/// Runs every download of `work` in `mode`. The elapsed time runs from before the first start
/// until every worker has been joined; outcomes come back in input order.
pub fn run(mode: Mode, work: &Work) -> Summary {
    let started = Instant::now();
    let outcomes = match mode {
        Mode::Seq => seq::run(work),
        Mode::Threads => threads::run(work),
        Mode::Pool => pool::run(work),
        Mode::Async => tasks::run(work),
        Mode::Procs => procs::run(work, Lifetime::Pool),
        Mode::Spawn => procs::run(work, Lifetime::OneDownload),
    };
    let elapsed = started.elapsed();
    work.downloader.progress.finish();
    Summary {
        mode,
        jobs: work.jobs,
        outcomes: in_input_order(outcomes, work),
        elapsed,
        interrupted: work.downloader.cancel.is_triggered(),
    }
}

/// Sorts outcomes by input index; a target left without one (its worker died) gets a failure,
/// so that no download is ever silently missing from a report.
fn in_input_order(outcomes: Vec<Outcome>, work: &Work) -> Vec<Outcome> {
    let mut slots: Vec<Option<Outcome>> = (0..work.targets.len()).map(|_| None).collect();
    for outcome in outcomes {
        let index = outcome.index;
        slots[index] = Some(outcome);
    }
    slots
        .into_iter()
        .zip(work.targets.iter())
        .map(|(slot, target)| {
            slot.unwrap_or_else(|| {
                let why = FetchError::Setup("its worker stopped unexpectedly".to_owned());
                work.downloader.failed_early(target, why)
            })
        })
        .collect()
}

/// A current-thread runtime with its own client: how `seq`, `threads` and `pool` give each OS
/// thread its own network I/O (a shared blocking client would funnel it all through one hidden
/// runtime thread).
fn thread_runtime(http: &HttpSettings) -> anyhow::Result<(Runtime, Client)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a tokio runtime")?;
    // The client must be built inside its runtime: its connections are spawned there.
    let client = runtime.block_on(async { http.client() })?;
    Ok((runtime, client))
}

/// Runs `-j` OS worker threads (named `{name}-N`) that claim targets from a shared queue until
/// it is empty; each runs `worker` with the claim function. `pool`, `procs` and `spawn` are
/// built on it.
fn claiming_workers<'a>(
    work: &'a Work,
    name: &str,
    worker: impl Fn(&(dyn Fn() -> Option<&'a Target> + Sync)) -> Vec<Outcome> + Sync,
) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let claim = || work.targets.get(next.fetch_add(1, Ordering::Relaxed));
    let workers = work.jobs.clamp(1, work.targets.len().max(1));
    thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .filter_map(|n| {
                thread::Builder::new()
                    .name(format!("{name}-{n}"))
                    .spawn_scoped(scope, || worker(&claim))
                    .ok()
            })
            .collect();
        let mut outcomes = Vec::with_capacity(work.targets.len());
        if handles.is_empty() {
            // Not even one worker could start: nothing will claim the queue.
            while let Some(target) = claim() {
                let why = FetchError::Setup("cannot start any worker thread".to_owned());
                outcomes.push(work.downloader.failed_early(target, why));
            }
        }
        // A worker that panicked leaves its targets without outcomes; `run` reports them.
        outcomes.extend(handles.into_iter().filter_map(|h| h.join().ok()).flatten());
        outcomes
    })
}

/// Fetches the targets `next` hands out, one after another, on this thread.
fn fetch_in_turn<'a>(work: &Work, mut next: impl FnMut() -> Option<&'a Target>) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    match thread_runtime(&work.http) {
        Ok((runtime, client)) => runtime.block_on(async {
            while let Some(target) = next() {
                outcomes.push(work.downloader.fetch(&client, target).await);
            }
        }),
        Err(err) => {
            while let Some(target) = next() {
                let why = FetchError::Setup(format!("{err:#}"));
                outcomes.push(work.downloader.failed_early(target, why));
            }
        }
    }
    outcomes
}
