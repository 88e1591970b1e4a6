//! The six ways to schedule the same downloads. Each engine exposes `run(&Work)` and calls the
//! same [`Downloader::fetch`] with clients built from the same [`HttpSettings`]; they differ only
//! in how downloads are spread over threads, tasks and processes.

mod pool;
mod procs;
mod seq;
mod tasks;
mod threads;
mod work;

use std::time::{Duration, Instant};

use crate::model::Mode;
use crate::procs::Lifetime;

pub use work::{Claim, Work};

/// Runs every download of `work` in `mode`, each outcome reported as it ends. Returns the
/// elapsed time: from before the first start until every worker has been joined.
pub fn run(mode: Mode, work: &Work) -> Duration {
    let started = Instant::now();
    match mode {
        Mode::Seq => seq::run(work),
        Mode::Threads => threads::run(work),
        Mode::Pool => pool::run(work),
        Mode::Async => tasks::run(work),
        Mode::Procs => procs::run(work, Lifetime::Pool),
        Mode::Spawn => procs::run(work, Lifetime::OneDownload),
    }
    let elapsed = started.elapsed();
    work.downloader.progress().finish();
    elapsed
}
