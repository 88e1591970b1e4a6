//! `async`: tasks on a tokio multi-thread runtime, at most `-j` in flight. (The module is not
//! called `async`, which is a keyword; the mode's name on the command line is.)
//!
//! The calling thread, outside the runtime, takes a free slot, then waits for the next line
//! and spawns its task; the runtime's threads only run downloads.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::work::Work;
use crate::error::FetchError;

pub fn run(work: &Work) {
    // One runtime thread per core, but no more than downloads can run at once: a lone download
    // gains nothing from a second thread, only wake-ups between the two.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.min(work.width()))
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
        .and_then(|runtime| {
            let client = runtime.block_on(async { work.http.client() })?;
            Ok((runtime, client))
        });
    let (runtime, client) = match runtime {
        Ok(started) => started,
        Err(err) => {
            while let Some(claim) = work.next() {
                claim.fail(FetchError::Setup(format!("{err:#}")));
            }
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(work.jobs.max(1)));
    let mut tasks = JoinSet::new();
    loop {
        // Never closed, so acquiring only waits for a free slot.
        let Ok(slot) = runtime.block_on(Arc::clone(&slots).acquire_owned()) else {
            break;
        };
        let Some(claim) = work.next() else { break };
        let (work, client) = (work.clone(), client.clone());
        tasks.spawn_on(
            async move {
                let outcome = work.downloader.fetch(&client, &claim.target).await;
                claim.report(outcome);
                drop(slot);
            },
            runtime.handle(),
        );
        // Ended tasks are joined as the list goes, so that they do not pile up.
        while tasks.try_join_next().is_some() {}
    }
    // A task that panicked has reported its download through its `Claim`.
    runtime.block_on(async { while tasks.join_next().await.is_some() {} });
}
