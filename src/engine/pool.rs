//! `pool`: `-j` OS worker threads that take URLs from a shared queue until it is empty (the
//! analogue of Python's ThreadPoolExecutor). Each worker keeps its own runtime and client, so
//! its connections are reused from one download to the next.

use super::{Work, claiming_workers, fetch_in_turn};
use crate::fetch::Outcome;

pub fn run(work: &Work) -> Vec<Outcome> {
    claiming_workers(work, "pool", |claim| fetch_in_turn(work, claim))
}
