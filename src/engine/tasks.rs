//! `async`: tasks on a tokio multi-thread runtime, as many in flight as the width allows.
//! (The module is not called `async`, which is a keyword; the mode's name on the command line
//! is.) All tasks share one client, so over HTTP/2 the downloads from one host share its
//! connection as streams.
//!
//! The calling thread, outside the runtime, waits for a place under the width and for the
//! next line, then spawns its task; the runtime's threads only run downloads.

use anyhow::Context;
use tokio::task::JoinSet;

use super::work::Work;
use crate::error::FetchError;

pub(crate) fn run(work: &Work) {
    // One runtime thread per core, but no more than downloads can run at once: a lone download
    // gains nothing from a second thread, only wake-ups between the two.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.min(work.most_at_once()))
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
        .and_then(|runtime| {
            let client = runtime.block_on(async { work.downloader.http().client() })?;
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
    let mut tasks = JoinSet::new();
    // Each claim holds its place under the width until its task reports it.
    while let Some(claim) = work.next() {
        let (work, client) = (work.clone(), client.clone());
        tasks.spawn_on(
            async move {
                let outcome = work.downloader.fetch(&client, &claim.target).await;
                claim.report(outcome);
            },
            runtime.handle(),
        );
        // Ended tasks are joined as the list goes, so that they do not pile up.
        while tasks.try_join_next().is_some() {}
    }
    // A task that panicked has reported its download through its `Claim`.
    runtime.block_on(async { while tasks.join_next().await.is_some() {} });
}
