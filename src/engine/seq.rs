//! `seq`: one download after the other, on the calling thread.

use super::work::{Work, fetch_in_turn};

pub(crate) fn run(work: &Work) {
    fetch_in_turn(work, || work.next());
}
