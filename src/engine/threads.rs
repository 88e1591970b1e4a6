//! `threads`: one OS thread per URL, started as its line arrives, joined once it has ended
//! (the last ones when the list is done). Each thread drives its own
//! runtime and client, so there is no connection reuse between downloads: that cost is part of
//! what this model shows.
//!
//! Each thread holds a few file descriptors (its runtime's epoll and waker, its socket, its
//! file), so the number alive at once is capped by the descriptor limit; past the cap a new
//! thread starts when another ends, and the run says so.

use std::sync::{Arc, Mutex};
use std::thread;

use super::work::{Work, fetch_in_turn};
use crate::error::FetchError;
use crate::sync::lock;

pub(crate) fn run(work: &Work) {
    // The run's width is this mode's cap on live threads (see `super::width`).
    let cap = work.downloader.width().current();
    let mut said = false;
    thread::scope(|scope| {
        let mut handles = Vec::new();
        // A thread per line, started as lines arrive; at the cap, the next waits for a place.
        while let Some(claim) = work.next() {
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
