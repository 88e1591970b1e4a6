//! `procs` and `spawn`: downloads in worker processes (see [`crate::procs`]). `-j` worker
//! threads claim URLs from a shared queue, as in `pool`; each hands its URLs to its own child
//! process, one after another: the same child for the whole run (`procs`), or a new child per
//! download (`spawn`).

use super::{Work, claiming_workers};
use crate::fetch::Outcome;
use crate::procs::{self, Crew, Lifetime};

pub fn run(work: &Work, lifetime: Lifetime) -> Vec<Outcome> {
    let downloader = &work.downloader;
    let crew = Crew::new(&procs::setup(downloader, &work.http, work.jobs), lifetime);
    crew.relaying(&downloader.cancel, || {
        claiming_workers(work, "procs", |claim| {
            let mut worker = crew.worker();
            let mut outcomes = Vec::new();
            while let Some(target) = claim() {
                let planned = downloader.names.planned(target.index);
                outcomes.push(worker.fetch(downloader, target, &planned));
            }
            outcomes
        })
    })
}
