//! `pool`: `-j` OS worker threads that take URLs from a shared queue until it is empty (the
//! analogue of Python's ThreadPoolExecutor). Each worker keeps its own runtime and client, so
//! its connections are reused from one download to the next.

use super::work::{Work, claiming_workers, fetch_in_turn};

pub(crate) fn run(work: &Work) {
    claiming_workers(work, "pool", || fetch_in_turn(work, || work.next()));
}
