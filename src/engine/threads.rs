//! `threads`: one OS thread per URL, all started, then all joined. Each thread drives its own
//! runtime and client, so there is no connection reuse between downloads: that cost is part of
//! what this model shows.
//!
//! Each thread holds a few file descriptors (its runtime's epoll and waker, its socket, its
//! file), so the number alive at once is capped by the descriptor limit; past the cap a new
//! thread starts when another ends, and the run says so.

use std::sync::{Condvar, Mutex};
use std::thread;

use super::{Work, fetch_in_turn};
use crate::fetch::{FetchError, Outcome};

/// Descriptors one download thread may hold at once.
const FDS_PER_THREAD: u64 = 6;
/// Descriptors kept for everything else (stdio, the signal thread, the output directory).
const FDS_RESERVED: u64 = 64;
/// Threads alive at once, whatever the descriptor limit.
const MAX_LIVE_THREADS: usize = 4096;

pub fn run(work: &Work) -> Vec<Outcome> {
    let cap = live_thread_cap();
    if work.targets.len() > cap {
        work.downloader.progress.println(&format!(
            "threads: {} URLs, at most {cap} threads alive at once (file descriptor and thread \
             limits); the others start as threads end",
            work.targets.len()
        ));
    }
    let live = Gate::new(cap);
    thread::scope(|scope| {
        let mut outcomes = Vec::with_capacity(work.targets.len());
        let mut handles = Vec::with_capacity(work.targets.len());
        for target in work.targets.iter() {
            let pass = live.enter();
            if work.downloader.cancel.is_triggered() {
                outcomes.push(work.downloader.failed_early(target, FetchError::NotStarted));
                continue;
            }
            let mut once = Some(target);
            let spawned = thread::Builder::new()
                .name(format!("fetch-{}", target.index))
                .spawn_scoped(scope, move || {
                    let _pass = pass;
                    fetch_in_turn(work, || once.take())
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(err) => {
                    let why = FetchError::Setup(format!("cannot start a thread: {err}"));
                    outcomes.push(work.downloader.failed_early(target, why));
                }
            }
        }
        // A thread that panicked leaves its target without an outcome; `engine::run` reports it.
        outcomes.extend(handles.into_iter().filter_map(|h| h.join().ok()).flatten());
        outcomes
    })
}

/// How many download threads may be alive at once under this process's limits.
fn live_thread_cap() -> usize {
    let fds = rlimit::Resource::NOFILE
        .get_soft()
        .unwrap_or(1024)
        .saturating_sub(FDS_RESERVED)
        / FDS_PER_THREAD;
    let tasks = rlimit::Resource::NPROC
        .get_soft()
        .unwrap_or(u64::MAX)
        .saturating_sub(FDS_RESERVED);
    usize::try_from(fds.min(tasks))
        .unwrap_or(MAX_LIVE_THREADS)
        .clamp(1, MAX_LIVE_THREADS)
}

/// A counting gate: at most `cap` [`Pass`]es out at once.
struct Gate {
    free: Mutex<usize>,
    freed: Condvar,
}

impl Gate {
    fn new(cap: usize) -> Self {
        Gate {
            free: Mutex::new(cap),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free place. The count is only ever changed whole, so a poisoned lock (a
    /// panicking holder) is safe to use.
    fn enter(&self) -> Pass<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Pass { gate: self }
    }
}

/// A place taken in a [`Gate`], given back when dropped (even by a panicking thread).
struct Pass<'a> {
    gate: &'a Gate,
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        *self.gate.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.gate.freed.notify_one();
    }
}
