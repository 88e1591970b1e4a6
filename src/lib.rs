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
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::CommandFactory;

use cancel::Cancel;

pub use cli::Cli;
use cli::{Command, DownloadArgs};
use config::Config;
use engine::Work;
use fetch::Downloader;
use fetch::naming::NameRegistry;
use input::Source;
pub use model::shard_of;
pub use platform::COMPRESSED;
use progress::Progress;
pub use report::EXIT_USAGE;
use report::Summary;
use results::Printer;
pub use server::{ServerConfig, ServerHandle, verify_file};

/// Runs one command. `Err` is a usage or setup error (exit 2); download failures are reported
/// and give exit 1.
pub fn run(cli: Cli) -> Result<ExitCode> {
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
    let names = Arc::new(match config.policy.no_clobber {
        // A name taken on disk is then skipped, not renamed.
        true => NameRegistry::default(),
        false => NameRegistry::default().keeping_existing(&config.output, config.policy.resume),
    });
    let (results, printer) = Printer::start(config.printing, progress.stdout());
    let segments = config.policy.segments.most();
    let (width, notice) = engine::width(config.mode, config.jobs, segments, progress.received());
    if let Some(notice) = notice {
        progress.println(&notice);
    }
    if config.mode != model::Mode::Seq {
        let shown = progress.clone();
        width.watch(Box::new(move |n| shown.show_width(n)));
    }
    let width = Arc::new(width);
    let work = Work {
        source: Arc::new(Source::start(
            config.input,
            Arc::clone(&names),
            progress.clone(),
            cancel.clone(),
        )?),
        downloader: Arc::new(Downloader::new(
            config.output,
            names,
            config.policy,
            config.throttle,
            progress,
            cancel.clone(),
            fetch::Reach {
                http: config.http,
                width: Arc::clone(&width),
            },
        )),
        results,
    };
    let elapsed = engine::run(config.mode, &work);
    let insecure = work.downloader.http().options().insecure;
    // Even after Ctrl-C: what servers set so far is worth keeping.
    let cookies_saved = work.downloader.http().save_cookies();
    let unread = work.source.remaining();
    // With --shard, a list whose URLs all belong to other shards is no error: this shard is done.
    let elsewhere = work.source.other_shards();
    // The printer ends once every handle to it is gone.
    drop(work);
    let printed = printer.finish();
    let tally = match printed {
        Ok(tally) => tally,
        Err(err) => {
            // The files are saved, so not 2 ("nothing was downloaded"): 1, as for a failure.
            let _ = writeln!(io::stderr().lock(), "fetchbench: error: {err:#}");
            let code = cancel.signal_exit().unwrap_or(report::EXIT_FAILED);
            return Ok(ExitCode::from(code));
        }
    };
    if tally.files == 0 && tally.counts.not_started == 0 && elsewhere == 0 && !cancel.is_triggered()
    {
        anyhow::bail!("no URLs given: the URL list held none");
    }
    if let Err(err) = &cookies_saved {
        let _ = writeln!(io::stderr().lock(), "fetchbench: error: {err:#}");
    }
    let summary = Summary {
        mode: config.mode,
        width: width.report(),
        shard: config.shard,
        elapsed,
        interrupted: cancel.is_triggered(),
        not_started: tally.counts.not_started + unread,
        tally,
    };
    if config.summary {
        // For people only: a stderr that is closed or full loses the table, not the run.
        let mut stderr = io::BufWriter::with_capacity(64 * 1024, io::stderr().lock());
        let width = progress::stderr_width();
        let _ = report::write_summary(&summary, width, &mut stderr);
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
    if config.printing.json {
        match report::json::write_json_summary(&summary, &mut io::stdout().lock()) {
            // `fetchbench ... | head`: the reader has all it wants; that is not an error.
            Err(err) if err.kind() == io::ErrorKind::BrokenPipe => {}
            Err(err) if cancel.signal_exit().is_none() => {
                let _ = writeln!(
                    io::stderr().lock(),
                    "fetchbench: error: cannot write the results to stdout: {err}"
                );
                return Ok(ExitCode::from(report::EXIT_FAILED));
            }
            _ => {}
        }
    }
    if let Some(code) = cancel.signal_exit().filter(|_| summary.interrupted) {
        return Ok(ExitCode::from(code));
    }
    if cookies_saved.is_err() {
        // The files are saved; the cookies are not: a failure, not a usage error.
        return Ok(ExitCode::from(report::EXIT_FAILED));
    }
    Ok(summary.exit_code())
}
