//! Results out, as each download ends: its path (or JSON line) is written on stdout and
//! flushed at once, and counted in the run's [`Tally`]; nothing else of it is kept.
//!
//! Workers hand outcomes to one printer thread through a bounded queue. The printer writes
//! into a buffer and flushes whenever the queue is momentarily empty: one system call per
//! result when results are rare (a pipeline sees each one at once), one per buffer when they
//! pour in. With `--keep-order`, results wait in a reorder buffer until every earlier one has
//! been written, so only what is out of order is held.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::thread::JoinHandle;

use anyhow::{Context, Result};

use crate::fetch::{Outcome, Status};
use crate::report::{DownloadRecord, TableRows, Tally};

/// Where an engine sends each outcome, once, as its download ends.
pub type Results = Arc<dyn Fn(Outcome) + Send + Sync>;

/// Outcomes waiting for the printer; enough to ride out a slow terminal, not a buffer.
const QUEUE: usize = 256;

/// What the printer writes on stdout.
#[derive(Debug, Clone, Copy)]
pub struct Printing {
    /// JSON lines instead of paths.
    pub json: bool,
    /// In input order instead of as downloads end.
    pub keep_order: bool,
    /// Which rows the end-of-run table keeps.
    pub rows: TableRows,
}

/// The printer thread of a run; [`Printer::finish`] waits for it once every [`Results`]
/// handle is gone.
pub struct Printer {
    thread: JoinHandle<Result<Tally>>,
}

impl Printer {
    /// Starts the printer, writing on `out`; returns it with the handle engines send to.
    pub fn start(
        printing: Printing,
        out: impl Write + Send + 'static,
    ) -> Result<(Results, Printer)> {
        let (send, outcomes) = mpsc::sync_channel::<Outcome>(QUEUE);
        let thread = std::thread::Builder::new()
            .name("results".to_owned())
            .spawn(move || print(&outcomes, printing, out))
            .context("cannot start the thread that prints results")?;
        // A printer that is gone (its output failed for good) drops what comes after.
        let results: Results = Arc::new(move |outcome| {
            let _ = send.send(outcome);
        });
        Ok((results, Printer { thread }))
    }

    /// Every result written: the run's tally. An error is a failed write on stdout (a reader
    /// that went away is not one).
    pub fn finish(self) -> Result<Tally> {
        match self.thread.join() {
            Ok(tally) => tally,
            Err(_) => anyhow::bail!("the thread that prints results panicked"),
        }
    }
}

fn print(outcomes: &Receiver<Outcome>, printing: Printing, out: impl Write) -> Result<Tally> {
    let mut tally = Tally::new(printing.rows);
    let mut out = Lines {
        out: io::BufWriter::with_capacity(64 * 1024, out),
        closed: false,
    };
    let mut waiting = BTreeMap::<usize, Vec<u8>>::new();
    let mut next_index = 0;
    loop {
        let outcome = match outcomes.try_recv() {
            Ok(outcome) => outcome,
            Err(TryRecvError::Empty) => {
                out.flush()?;
                match outcomes.recv() {
                    Ok(outcome) => outcome,
                    Err(_) => break,
                }
            }
            Err(TryRecvError::Disconnected) => break,
        };
        tally.add(&outcome);
        let record = record(&outcome, printing.json)?;
        if !printing.keep_order {
            out.write(&record)?;
            continue;
        }
        waiting.insert(outcome.index, record);
        while let Some(record) = waiting.remove(&next_index) {
            out.write(&record)?;
            next_index += 1;
        }
    }
    // Lines never started (Ctrl-C) leave gaps: what waits behind them still comes out, in order.
    for record in waiting.into_values() {
        out.write(&record)?;
    }
    out.flush()?;
    Ok(tally)
}

/// What stdout gets for one outcome: its path (if saved), or its JSON line.
fn record(outcome: &Outcome, json: bool) -> Result<Vec<u8>> {
    let mut line = Vec::new();
    if outcome.never_started() {
        // Counted in the summary; no line of its own.
    } else if json {
        serde_json::to_writer(&mut line, &DownloadRecord::from(outcome))
            .context("cannot encode a result as JSON")?;
        line.push(b'\n');
    } else if let Status::Saved { path } = &outcome.status {
        line.extend_from_slice(path.as_os_str().as_encoded_bytes());
        line.push(b'\n');
    }
    Ok(line)
}

/// stdout, where a reader that went away (`| head`) only means nothing more is written.
struct Lines<W: Write> {
    out: io::BufWriter<W>,
    closed: bool,
}

impl<W: Write> Lines<W> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        let written = self.out.write_all(bytes);
        self.check(written)
    }

    fn flush(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        let flushed = self.out.flush();
        self.check(flushed)
    }

    fn check(&mut self, result: io::Result<()>) -> Result<()> {
        match result {
            Err(err) if err.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other.context("cannot write the results to stdout"),
        }
    }
}
