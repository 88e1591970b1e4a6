//! `seq`: one download after the other, on the calling thread.

use super::{Work, fetch_in_turn};
use crate::fetch::Outcome;

pub fn run(work: &Work) -> Vec<Outcome> {
    let mut targets = work.targets.iter();
    fetch_in_turn(work, || targets.next())
}
