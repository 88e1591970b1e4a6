//! `pool`: `-j` OS worker threads that take URLs from a shared queue until it is empty (the
//! analogue of Python's ThreadPoolExecutor). Each worker keeps its own runtime and client, so
//! its connections are reused from one download to the next.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use super::{Work, fetch_in_turn};
use crate::fetch::{FetchError, Outcome};

pub fn run(work: &Work) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let claim = || work.targets.get(next.fetch_add(1, Ordering::Relaxed));
    let workers = work.jobs.clamp(1, work.targets.len().max(1));
    thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .filter_map(|n| {
                thread::Builder::new()
                    .name(format!("pool-{n}"))
                    .spawn_scoped(scope, || fetch_in_turn(work, claim))
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
        // A worker that panicked leaves its targets without outcomes; `engine::run` reports them.
        outcomes.extend(handles.into_iter().filter_map(|h| h.join().ok()).flatten());
        outcomes
    })
}
