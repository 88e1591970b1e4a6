//! The six ways to schedule the same downloads. Each engine exposes `run(&Work)` and calls the
//! same [`Downloader::fetch`] with clients built from the same [`HttpSettings`]; they differ only
//! in how downloads are spread over threads, tasks and processes. Every one takes its downloads
//! through the run's [`Width`] ([`width`] says what each mode makes of `-j`).

mod pool;
mod procs;
mod seq;
mod tasks;
mod threads;
mod work;

use std::time::{Duration, Instant};

use crate::model::{Breadth, Carrier, Mode};
use crate::procs::Lifetime;
use crate::width::{Caps, Jobs, MAX_H1, MAX_H2, Received, Width};

pub(crate) use work::{Plan, Work};

/// `procs` and `spawn` under `-j auto`: worker processes at once (each costs a start-up and
/// megabytes, and the parent does not see its responses to climb by).
pub(crate) const PROCS_AUTO: usize = 8;
/// Descriptors one worker thread or process may hold at once (a runtime's epoll and waker, a
/// socket, a file; a child's pipes), and one more per extra segment's socket and file.
const FDS_PER_WORKER: u64 = 6;
/// Descriptors one async download may hold at once: its socket, file, and what naming and
/// resume open beside it.
const FDS_PER_TASK: u64 = 4;
/// Descriptors kept for everything else (stdio, the signal thread, the output directory).
const FDS_RESERVED: u64 = 64;
/// Downloads at once, whatever the limits.
const MAX_AT_ONCE: usize = 4096;

/// The width `mode` runs at for `-j jobs` and `-s segments`, within what this process's
/// descriptor and thread limits allow; with the notice to show when `jobs` asks for more.
///
/// - `seq`: one at a time, whatever `-j` says.
/// - `threads`: a thread per download, as many alive as the limits allow (`-j` is not used).
/// - `pool`: `-j N` workers; `auto` grows and shrinks them, each with its own connection (so
///   the HTTP/1.1 cap holds over HTTP/2 too).
/// - `async`: `-j N` tasks in flight; `auto` climbs, over HTTP/2 as streams on a shared
///   connection up to [`MAX_H2`].
/// - `procs`, `spawn`: `-j N` worker processes; `auto` is [`PROCS_AUTO`].
pub(crate) fn width(
    mode: Mode,
    jobs: Jobs,
    segments: usize,
    received: Received,
) -> (Width, Option<String>) {
    let extra = 2 * segments.saturating_sub(1) as u64;
    let carrier = mode.carrier();
    let per_download = match carrier {
        Carrier::Tasks => FDS_PER_TASK + extra,
        Carrier::Caller | Carrier::Threads | Carrier::Processes => FDS_PER_WORKER + extra,
    };
    let (fds, tasks) = crate::platform::descriptor_and_task_limits();
    let by_fds = fds.unwrap_or(1024).saturating_sub(FDS_RESERVED) / per_download;
    let by_tasks = match carrier {
        Carrier::Caller | Carrier::Tasks => u64::MAX,
        Carrier::Threads | Carrier::Processes => {
            tasks.unwrap_or(u64::MAX).saturating_sub(FDS_RESERVED)
        }
    };
    let limit = usize::try_from(by_fds.min(by_tasks))
        .unwrap_or(MAX_AT_ONCE)
        .clamp(1, MAX_AT_ONCE);
    let caps = |h2| Caps {
        limit,
        h1: MAX_H1,
        h2,
    };
    let width = match (mode.breadth(), carrier, jobs) {
        (Breadth::One, ..) => Width::new(Jobs::Fixed(1), caps(MAX_H1), received),
        (Breadth::Every, ..) => Width::new(Jobs::Fixed(limit), caps(MAX_H1), received),
        (Breadth::Jobs, Carrier::Processes, Jobs::Auto) => {
            Width::new(Jobs::Fixed(PROCS_AUTO), caps(MAX_H1), received)
        }
        // One client for every task: over HTTP/2 they share its first connection.
        (Breadth::Jobs, Carrier::Tasks, _) => Width::new(jobs, caps(MAX_H2), received).probing(),
        // Threads, each with its own connection; or worker processes at a fixed -j (their
        // responses are theirs: nothing to probe or climb by here).
        (Breadth::Jobs, Carrier::Caller | Carrier::Threads | Carrier::Processes, _) => {
            Width::new(jobs, caps(MAX_H1), received)
        }
    };
    let notice = match jobs {
        Jobs::Fixed(n) if n > limit && mode.uses_jobs() => Some(format!(
            "{mode}: at most {limit} downloads at once (file descriptor and thread limits; \
             -j {n} asks for more)"
        )),
        _ => None,
    };
    (width.asked(jobs), notice)
}

/// Runs every download of `work` in `mode`, each outcome reported as it ends. Returns the
/// elapsed time: from before the first start until every worker has been joined.
pub(crate) fn run(mode: Mode, work: &Work) -> Duration {
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
