//! `threads`: one OS thread per URL, all started, then all joined. Each thread drives its own
//! runtime and client, so there is no connection reuse between downloads: that cost is part of
//! what this model shows.

use std::thread;

use super::{Work, fetch_in_turn};
use crate::fetch::{FetchError, Outcome};

pub fn run(work: &Work) -> Vec<Outcome> {
    thread::scope(|scope| {
        let mut outcomes = Vec::with_capacity(work.targets.len());
        let mut handles = Vec::with_capacity(work.targets.len());
        for target in work.targets.iter() {
            let mut once = Some(target);
            let spawned = thread::Builder::new()
                .name(format!("fetch-{}", target.index))
                .spawn_scoped(scope, move || fetch_in_turn(work, || once.take()));
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
