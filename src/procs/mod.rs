//! Downloads in worker processes: fetchbench itself, started as `fetchbench __child`, driven
//! by the parent over its pipes.
//!
//! - [`protocol`]: the typed JSON lines the parent and a worker exchange.
//! - [`worker`]: the parent's side of one worker process ([`Worker::fetch`]), and the
//!   [`Crew`] of a run's workers (their setup, and Ctrl-C passed on to every one).
//! - [`child`]: the worker process itself.
//!
//! `--mode procs` keeps `-j` workers for the whole run, each taking download after download
//! ([`Lifetime::Pool`], like `multiprocessing.Pool`); `--mode spawn` starts a child per
//! download ([`Lifetime::OneDownload`], like `Process` start/join). The parent keeps the name
//! registry, host slots, pauses and progress; a child gets its share of `--limit-rate`. A child
//! that dies fails only the download it held, and is replaced.

pub(crate) mod child;
pub(crate) mod protocol;
pub(crate) mod worker;

pub(crate) use protocol::{CHILD_COMMAND, Setup};
pub(crate) use worker::{Crew, Lifetime};

use crate::fetch::Downloader;
use crate::http::HttpSettings;

/// The setup of a run's workers, `jobs` of them at once.
pub(crate) fn setup(downloader: &Downloader, http: &HttpSettings, jobs: usize) -> Setup {
    Setup {
        output: downloader.output().clone(),
        policy: downloader.policy().clone(),
        http: http.options().clone(),
        limit_rate: downloader.throttle().rate_share(jobs),
        progress: !downloader.progress().is_silent(),
        cookies: http.cookies().cloned(),
    }
}
