//! What a run's downloads came to ([`Tally`]), added up by the printer as each one ends; the
//! report renders it.

use crate::model::{Counts, Outcome, Status};

/// Which rows the end-of-run table shows (`--table`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum TableRows {
    /// The failures and the few slowest downloads: a size that does not grow with the list.
    #[default]
    Short,
    /// Every download, in the order they ended (kept in memory until the end).
    Full,
}

/// Failures kept for the short table; the others are counted.
const FAILURE_ROWS: usize = 20;
/// Slowest downloads kept for the short table.
const SLOWEST_ROWS: usize = 5;

/// What the downloads of a run came to, added up one outcome at a time: counts and totals,
/// plus the few outcomes the summary's tables show (all of them only with `--table full`).
#[derive(Debug)]
pub(crate) struct Tally {
    pub(crate) counts: Counts,
    /// Outcomes, of every kind.
    pub(crate) files: usize,
    /// Body bytes received by all downloads.
    pub(crate) bytes: u64,
    /// The first failures, and how many more there were.
    pub(crate) failures: Vec<Outcome>,
    pub(crate) more_failures: usize,
    /// The slowest saved downloads, slowest first.
    pub(crate) slowest: Vec<Outcome>,
    /// Every download that started, in the order they ended, with `--table full`.
    pub(crate) all: Option<Vec<Outcome>>,
    /// Whether any download has a digest (the tables leave the column out otherwise).
    pub(crate) digests: bool,
}

impl Tally {
    pub(crate) fn new(rows: TableRows) -> Self {
        Tally {
            counts: Counts::default(),
            files: 0,
            bytes: 0,
            failures: Vec::new(),
            more_failures: 0,
            slowest: Vec::new(),
            all: (rows == TableRows::Full).then(Vec::new),
            digests: false,
        }
    }

    /// Counts one outcome, and keeps it if the tables will show it. A download that never
    /// started (Ctrl-C) is only counted.
    pub(crate) fn add(&mut self, outcome: Outcome) {
        if outcome.never_started() {
            self.counts.not_started += 1;
            return;
        }
        self.files += 1;
        self.counts.interrupted += usize::from(outcome.is_interrupted());
        self.bytes += outcome.bytes;
        self.counts.retries += outcome.retries;
        self.digests |= outcome.sha256.is_some();
        match outcome.status {
            Status::Saved { .. } => self.counts.ok += 1,
            Status::Skipped { .. } => self.counts.skipped += 1,
            Status::Failed(_) => self.counts.failed += 1,
        }
        if let Some(all) = &mut self.all {
            all.push(outcome);
        } else if outcome.is_failure() {
            if self.failures.len() < FAILURE_ROWS {
                self.failures.push(outcome);
            } else {
                self.more_failures += 1;
            }
        } else if matches!(outcome.status, Status::Saved { .. }) {
            self.keep_if_slow(outcome);
        }
    }

    /// Keeps a saved download among the slowest, if it is one of them.
    fn keep_if_slow(&mut self, outcome: Outcome) {
        let elapsed = outcome.elapsed;
        let slower = self.slowest.len() < SLOWEST_ROWS
            || self.slowest.last().is_some_and(|o| elapsed > o.elapsed);
        if slower {
            let at = self.slowest.partition_point(|o| o.elapsed >= elapsed);
            self.slowest.insert(at, outcome);
            self.slowest.truncate(SLOWEST_ROWS);
        }
    }
}
