//! Results out, as each download ends: its path (or JSON line) is written on stdout and
//! flushed at once, and counted in the run's [`Tally`]; nothing else of it is kept.
//!
//! The worker that finished a download writes its result itself, under a lock: no thread to
//! wake. It flushes unless another worker is already waiting for the lock (that one, or the
//! last of a burst, flushes): one system call per result when results are rare, so a pipeline
//! sees each one at once, and one per burst when they pour in. With `--keep-order`, results
//! wait in a reorder buffer until every earlier one has been written, so only what is out of
//! order is held.

mod record;
mod tally;

pub(crate) use record::millis;
pub(crate) use tally::{TableRows, Tally};

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use crate::model::{Outcome, Status};
use crate::sync::lock;
use record::DownloadRecord;

/// Where an engine sends each outcome, once, as its download ends.
pub(crate) type Results = Arc<dyn Fn(Outcome) + Send + Sync>;

/// What the printer writes on stdout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Printing {
    /// JSON lines instead of paths.
    pub(crate) json: bool,
    /// In input order instead of as downloads end.
    pub(crate) keep_order: bool,
    /// Which rows the end-of-run table keeps.
    pub(crate) rows: TableRows,
}

/// The results of a run: written as they come, counted for the summary.
pub(crate) struct Printer {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Workers holding or waiting for the lock: the last one of a burst flushes.
    queued: AtomicUsize,
}

/// A worker that panicked while writing leaves at worst a line half-written here; the counts
/// and the buffer stay usable.
struct State {
    printing: Printing,
    tally: Tally,
    out: Lines,
    /// `--keep-order`: results that came before an earlier one, by input index.
    waiting: BTreeMap<usize, Vec<u8>>,
    next_index: usize,
}

impl Printer {
    /// A printer writing on `out`, and the handle engines send outcomes to.
    pub(crate) fn start(
        printing: Printing,
        out: impl Write + Send + 'static,
    ) -> (Results, Printer) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                printing,
                tally: Tally::new(printing.rows),
                out: Lines {
                    out: io::BufWriter::with_capacity(64 * 1024, Box::new(out)),
                    closed: false,
                    failed: None,
                },
                waiting: BTreeMap::new(),
                next_index: 0,
            }),
            queued: AtomicUsize::new(0),
        });
        let handle = Arc::clone(&shared);
        let results: Results = Arc::new(move |outcome| {
            handle.queued.fetch_add(1, Ordering::SeqCst);
            let mut state = lock(&handle.state);
            let last = handle.queued.fetch_sub(1, Ordering::SeqCst) == 1;
            state.add(outcome, last);
        });
        (results, Printer { shared })
    }

    /// Every result written (`--keep-order` ones held behind a gap included): the run's tally.
    /// An error is a failed write on stdout (a reader that went away is not one).
    pub(crate) fn finish(self) -> Result<Tally> {
        let mut state = lock(&self.shared.state);
        let held = std::mem::take(&mut state.waiting);
        // Lines never started (Ctrl-C) leave gaps: what waits behind them comes out in order.
        for record in held.into_values() {
            state.out.write(&record);
        }
        state.out.flush();
        if let Some(err) = state.out.failed.take() {
            return Err(err).context("cannot write the results to stdout");
        }
        let rows = state.printing.rows;
        Ok(std::mem::replace(&mut state.tally, Tally::new(rows)))
    }
}

impl State {
    fn add(&mut self, outcome: Outcome, flush: bool) {
        let record = record(&outcome, self.printing.json);
        let index = outcome.index;
        self.tally.add(outcome);
        if self.printing.keep_order {
            self.waiting.insert(index, record);
            while let Some(record) = self.waiting.remove(&self.next_index) {
                self.out.write(&record);
                self.next_index += 1;
            }
        } else {
            self.out.write(&record);
        }
        if flush {
            self.out.flush();
        }
    }
}

/// What stdout gets for one outcome: its path (if saved), or its JSON line; nothing for a
/// download that never started (it is counted in the summary).
fn record(outcome: &Outcome, json: bool) -> Vec<u8> {
    let mut line = Vec::new();
    if outcome.never_started() {
        return line;
    }
    if json {
        // Plain data into a vector: serializing cannot fail.
        if serde_json::to_writer(&mut line, &DownloadRecord::from(outcome)).is_ok() {
            line.push(b'\n');
        }
    } else if let Status::Saved { path } = &outcome.status {
        line.extend_from_slice(path.as_os_str().as_encoded_bytes());
        line.push(b'\n');
    }
    line
}

/// stdout, where a reader that went away (`| head`) only means nothing more is written, and
/// another error is kept for the end (the downloads go on).
struct Lines {
    out: io::BufWriter<Box<dyn Write + Send>>,
    closed: bool,
    failed: Option<io::Error>,
}

impl Lines {
    fn write(&mut self, bytes: &[u8]) {
        if !self.closed {
            let written = self.out.write_all(bytes);
            self.check(written);
        }
    }

    fn flush(&mut self) {
        if !self.closed {
            let flushed = self.out.flush();
            self.check(flushed);
        }
    }

    fn check(&mut self, result: io::Result<()>) {
        if let Err(err) = result {
            self.closed = true;
            if err.kind() != io::ErrorKind::BrokenPipe {
                self.failed.get_or_insert(err);
            }
        }
    }
}
