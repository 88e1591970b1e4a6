//! `threads`: one OS thread per URL, started as its line arrives, all joined at the end. Each thread drives its own
//! runtime and client, so there is no connection reuse between downloads: that cost is part of
//! what this model shows.
//!
//! Each thread holds a few file descriptors (its runtime's epoll and waker, its socket, its
//! file), so the number alive at once is capped by the descriptor limit; past the cap a new
//! thread starts when another ends, and the run says so.

use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use super::work::{Work, fetch_in_turn};
use crate::error::FetchError;
use crate::sync::lock;

/// Descriptors one download thread may hold at once.
const FDS_PER_THREAD: u64 = 6;
/// Descriptors kept for everything else (stdio, the signal thread, the output directory).
const FDS_RESERVED: u64 = 64;
/// Threads alive at once, whatever the descriptor limit.
const MAX_LIVE_THREADS: usize = 4096;

pub fn run(work: &Work) {
    let cap = live_thread_cap();
    let live = Gate::new(cap);
    let mut said = false;
    thread::scope(|scope| {
        let mut handles = Vec::new();
        // A thread per line, started as lines arrive; at the cap, the next waits for a place.
        loop {
            let pass = live.enter();
            let Some(claim) = work.next() else { break };
            if !said && claim.target.index >= cap {
                said = true;
                work.downloader.progress().println(&format!(
                    "threads: at most {cap} threads alive at once (file descriptor and thread \
                     limits); the others start as threads end"
                ));
            }
            let name = format!("fetch-{}", claim.target.index);
            // Taken by the thread; taken back here if the thread cannot start.
            let slot = Arc::new(Mutex::new(Some(claim)));
            let handed = Arc::clone(&slot);
            let spawned = thread::Builder::new()
                .name(name)
                .spawn_scoped(scope, move || {
                    let _pass = pass;
                    let mut once = lock(&handed).take();
                    fetch_in_turn(work, || once.take());
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(err) => {
                    let claim = lock(&slot).take();
                    if let Some(claim) = claim {
                        claim.fail(FetchError::Setup(format!("cannot start a thread: {err}")));
                    }
                }
            }
            // Joined as they end, so that a long list does not pile up handles.
            if handles.len() > 2 * cap {
                let (ended, running) = handles.into_iter().partition(|h| h.is_finished());
                handles = running;
                join(ended);
            }
        }
        // A thread that panicked has reported its download through its `Claim`.
        join(handles);
    });
}

/// Joins threads; a panicked one has already reported its download.
fn join(handles: Vec<thread::ScopedJoinHandle<'_, ()>>) {
    for handle in handles {
        let _ = handle.join();
    }
}

/// How many download threads may be alive at once under this process's limits.
fn live_thread_cap() -> usize {
    let (fds, tasks) = crate::platform::descriptor_and_task_limits();
    let fds = fds.unwrap_or(1024).saturating_sub(FDS_RESERVED) / FDS_PER_THREAD;
    let tasks = tasks.unwrap_or(u64::MAX).saturating_sub(FDS_RESERVED);
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

    /// Waits for a free place.
    fn enter(&self) -> Pass<'_> {
        let mut free = lock(&self.free);
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
        *lock(&self.gate.free) += 1;
        self.gate.freed.notify_one();
    }
}
