//! `async`: tasks on a tokio multi-thread runtime, at most `-j` in flight. (The module is not
//! called `async`, which is a keyword; the mode's name on the command line is.)

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::Work;
use crate::fetch::{FetchError, Outcome};

pub fn run(work: &Work) -> Vec<Outcome> {
    // One runtime thread per core, but no more than downloads can run at once: a lone download
    // gains nothing from a second thread, only wake-ups between the two.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let in_flight = work.jobs.min(work.targets.len()).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.min(in_flight))
        .enable_all()
        .build()
        .context("cannot start the tokio runtime");
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => return fail_all(work, &format!("{err:#}")),
    };
    runtime.block_on(async {
        let client = match work.http.client() {
            Ok(client) => client,
            Err(err) => return fail_all(work, &format!("{err:#}")),
        };
        let slots = Arc::new(Semaphore::new(work.jobs.max(1)));
        let mut tasks = JoinSet::new();
        for index in 0..work.targets.len() {
            // Never closed, so acquiring only waits for a free slot.
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let (work, client) = (work.clone(), client.clone());
            tasks.spawn(async move {
                let outcome = work.downloader.fetch(&client, &work.targets[index]).await;
                drop(slot);
                outcome
            });
        }
        let mut outcomes = Vec::with_capacity(work.targets.len());
        // A task that panicked leaves its target without an outcome; `engine::run` reports it.
        while let Some(joined) = tasks.join_next().await {
            outcomes.extend(joined.ok());
        }
        outcomes
    })
}

fn fail_all(work: &Work, why: &str) -> Vec<Outcome> {
    work.targets
        .iter()
        .map(|target| {
            let err = FetchError::Setup(why.to_owned());
            work.downloader.failed_early(target, err)
        })
        .collect()
}
