//! fetchbench downloads many files at once and shows, measured, what each concurrency model
//! (sequential, thread per download, worker pool, async tasks) buys you.
//!
//! `main` parses a [`Cli`] and calls [`run`]; tests and benches call the same function.

mod auth;
mod bench;
mod cancel;
mod cli;
mod config;
mod cookies;
mod engine;
mod error;
mod fetch;
mod http;
mod input;
mod man;
mod model;
mod platform;
mod procs;
mod progress;
mod report;
mod results;
mod secret;
mod server;
mod sync;
mod tls;
mod units;
mod width;

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::CommandFactory;

use cancel::Cancel;

pub use cli::Cli;
use cli::{Command, DownloadArgs};
use config::Config;
use engine::{Plan, Work};
pub use model::shard_of;
use model::{Mode, Shard};
pub use platform::COMPRESSED;
use progress::Progress;
pub use report::EXIT_USAGE;
use report::Summary;
use results::{Printer, Tally};
pub use server::{ServerConfig, ServerHandle, verify_file};
use width::WidthReport;

/// Runs one command. `Err` is a usage or setup error (exit 2); download failures are reported
/// and give exit 1.
pub fn run(cli: Cli) -> Result<ExitCode> {
    platform::keep_freed_memory();
    match cli.command {
        Some(Command::Bench(args)) => bench::run(&args),
        Some(Command::Serve(args)) => server::serve(&args).map(|()| ExitCode::SUCCESS),
        Some(Command::Child) => procs::child::run(),
        Some(Command::Completions { shell }) => {
            // Into memory first: clap_complete panics on a write error (a closed pipe).
            let mut script = Vec::new();
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "fetchbench", &mut script);
            print_all(&script).context("cannot write the completion script")?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Man { page }) => {
            let page = man::render(&Cli::command(), page);
            print_all(page.as_bytes()).context("cannot write the man page")?;
            Ok(ExitCode::SUCCESS)
        }
        None => download(&cli.download),
    }
}

/// Writes `bytes` to stdout. A reader that has gone (`fetchbench man | head -1`) has all it
/// wants: that is not an error.
fn print_all(bytes: &[u8]) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// A download run: the arguments checked, the downloads run in their mode, then the summaries
/// and the exit code.
fn download(args: &DownloadArgs) -> Result<ExitCode> {
    let stdin = Box::new(io::stdin());
    let config = Config::from_args(args, stdin)?;
    console::set_colors_enabled_stderr(config.color);
    // Thousands of downloads at once need descriptors; the soft limit is often 1024. Raising it
    // to the hard limit needs no privilege; where even that fails, `threads` caps itself.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let cancel = Cancel::default();
    let progress = Progress::new(config.display);
    let shown = progress.clone();
    cancel.on_signals(config.summary.then(|| {
        Box::new(move |line: &str, typed| shown.interrupted(line, typed)) as cancel::Notice
    }))?;
    let (results, printer) = Printer::start(config.printing, progress.stdout());
    let work = Work::start(Plan {
        mode: config.mode,
        jobs: config.jobs,
        input: config.input,
        output: config.output,
        policy: config.policy,
        throttle: config.throttle,
        http: config.http,
        progress,
        cancel: cancel.clone(),
        results,
    })?;
    let elapsed = engine::run(config.mode, &work);
    let ended = Ended {
        mode: config.mode,
        width: work.downloader.width().report(),
        shard: config.shard,
        elapsed,
        human: config.summary,
        json: config.printing.json,
        insecure: work.downloader.http().options().insecure,
        // Even after Ctrl-C: what servers set so far is worth keeping.
        cookies_saved: work.downloader.http().save_cookies(),
        unread: work.source.remaining(),
        elsewhere: work.source.other_shards(),
        cancel,
    };
    // The printer ends once every handle to it is gone.
    drop(work);
    match printer.finish() {
        Ok(tally) => ended.conclude(tally),
        Err(err) => {
            // The files are saved, so not 2 ("nothing was downloaded"): 1, as for a failure.
            let _ = writeln!(io::stderr().lock(), "fetchbench: error: {err:#}");
            let code = ended.cancel.signal_exit().unwrap_or(report::EXIT_FAILED);
            Ok(ExitCode::from(code))
        }
    }
}

/// What a download run has to report once its downloads are done, beside its [`Tally`].
struct Ended {
    mode: Mode,
    width: WidthReport,
    shard: Option<Shard>,
    elapsed: Duration,
    /// Whether the human summary goes on stderr.
    human: bool,
    /// Whether the JSON summary goes on stdout (`--json`).
    json: bool,
    /// `--insecure`: the human summary ends with a warning.
    insecure: bool,
    /// Whether `--save-cookies` (if given) could write its file.
    cookies_saved: Result<()>,
    /// URLs left unread in the input (Ctrl-C).
    unread: usize,
    /// With `--shard`, the URLs that belong to other shards.
    elsewhere: usize,
    cancel: Cancel,
}

impl Ended {
    /// Reports the run (the summaries, an error saving cookies) and gives its exit code.
    fn conclude(self, tally: Tally) -> Result<ExitCode> {
        let interrupted = self.cancel.is_triggered();
        // With --shard, a list whose URLs all belong to other shards is no error: this shard is
        // done.
        if tally.files == 0 && tally.counts.not_started == 0 && self.elsewhere == 0 && !interrupted
        {
            anyhow::bail!("no URLs given: the URL list held none");
        }
        if let Err(err) = &self.cookies_saved {
            let _ = writeln!(io::stderr().lock(), "fetchbench: error: {err:#}");
        }
        let summary = Summary {
            mode: self.mode,
            width: self.width,
            shard: self.shard,
            elapsed: self.elapsed,
            interrupted,
            not_started: tally.counts.not_started + self.unread,
            tally,
        };
        if self.human {
            write_human_summary(&summary, self.insecure);
        }
        // Not a let chain: the crate builds with Rust 1.85 (rust-version).
        if self.json {
            if let Some(code) = print_json_summary(&summary, &self.cancel) {
                return Ok(code);
            }
        }
        if let Some(code) = self.cancel.signal_exit().filter(|_| summary.interrupted) {
            return Ok(ExitCode::from(code));
        }
        if self.cookies_saved.is_err() {
            // The files are saved; the cookies are not: a failure, not a usage error.
            return Ok(ExitCode::from(report::EXIT_FAILED));
        }
        Ok(summary.exit_code())
    }
}

/// The human summary on stderr, and the `--insecure` warning. For people only: a stderr that
/// is closed or full loses them, not the run.
fn write_human_summary(summary: &Summary, insecure: bool) {
    let mut stderr = io::BufWriter::with_capacity(64 * 1024, io::stderr().lock());
    let width = progress::stderr_width();
    let _ = report::write_summary(summary, width, &mut stderr);
    if insecure {
        let warning = "WARNING: --insecure: TLS certificates were NOT checked; anyone on the \
                       path could have sent these files";
        let _ = writeln!(
            stderr,
            "{}",
            console::style(warning).for_stderr().red().bold()
        );
    }
    let _ = stderr.flush();
}

/// The JSON summary on stdout; the exit code when writing it failed (and no signal stopped the
/// run).
fn print_json_summary(summary: &Summary, cancel: &Cancel) -> Option<ExitCode> {
    match report::json::write_json_summary(summary, &mut io::stdout().lock()) {
        // `fetchbench ... | head`: the reader has all it wants; that is not an error.
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => None,
        Err(err) if cancel.signal_exit().is_none() => {
            let _ = writeln!(
                io::stderr().lock(),
                "fetchbench: error: cannot write the results to stdout: {err}"
            );
            Some(ExitCode::from(report::EXIT_FAILED))
        }
        _ => None,
    }
}
