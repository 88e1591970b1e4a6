//! `procs` and `spawn`: downloads in worker processes (see [`crate::procs`]). `-j` worker
//! threads take URLs from the input, as in `pool`; each hands its URLs to its own child
//! process, one after another: the same child for the whole run (`procs`), or a new child per
//! download (`spawn`).

use super::work::{Work, claiming_workers};
use crate::procs::{self, Crew, Lifetime};

pub(crate) fn run(work: &Work, lifetime: Lifetime) {
    let downloader = &work.downloader;
    let workers = downloader.width().current();
    let crew = Crew::new(
        &procs::setup(downloader, work.downloader.http(), workers),
        lifetime,
    );
    crew.relaying(downloader.cancel(), || {
        claiming_workers(work, "procs", || {
            let mut worker = crew.worker();
            while let Some(claim) = work.next() {
                let outcome = worker.fetch(downloader, &claim.target);
                claim.report(outcome);
            }
        });
    });
}
