//! fetchbench downloads many files at once and shows, measured, what each concurrency model
//! (sequential, thread per download, worker pool, async tasks) buys you.
//!
//! `main` parses a [`Cli`] and calls [`run`]; tests and benches call the same function.

pub mod bench;
pub mod cancel;
pub mod cli;
pub mod config;
pub mod engine;
pub mod fetch;
pub mod http;
pub mod naming;
pub mod procs;
pub mod progress;
pub mod report;
pub mod segments;
pub mod server;
pub mod sink;
pub mod throttle;
pub mod units;

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
use naming::NameRegistry;
use progress::Progress;

/// Runs one command. `Err` is a usage or setup error (exit 2); download failures are reported
/// and give exit 1.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Some(Command::Bench(args)) => bench::run(&args),
        Some(Command::Serve(args)) => server::serve(&args).map(|()| ExitCode::SUCCESS),
        Some(Command::Child) => procs::child::run(),
        Some(Command::Completions { shell }) => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "fetchbench", &mut io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Man) => {
            clap_mangen::Man::new(Cli::command())
                .render(&mut io::stdout())
                .context("cannot write the man page")?;
            Ok(ExitCode::SUCCESS)
        }
        None => download(&cli.download),
    }
}

fn download(args: &DownloadArgs) -> Result<ExitCode> {
    let config = Config::from_args(args, io::stdin().lock())?;
    console::set_colors_enabled_stderr(config.color);
    // Thousands of downloads at once need descriptors; the soft limit is often 1024. Raising it
    // to the hard limit needs no privilege; where even that fails, `threads` caps itself.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let cancel = Cancel::default();
    cancel.on_signals(config.summary)?;
    let work = Work {
        downloader: Arc::new(Downloader {
            output_dir: config.output_dir.clone(),
            names: Box::new(NameRegistry::new(&config.targets)),
            policy: config.policy,
            throttle: config.throttle,
            progress: Progress::new(config.display, config.targets.len()),
            cancel,
            parts_on_disk: config.parts_on_disk,
        }),
        targets: config.targets.into(),
        jobs: config.jobs,
        http: config.http,
    };
    let summary = engine::run(config.mode, &work);
    if config.summary {
        let mut stderr = io::BufWriter::with_capacity(64 * 1024, io::stderr().lock());
        report::write_table(&summary, &mut stderr)?;
        if work.http.options().insecure {
            let warning = "WARNING: --insecure: TLS certificates were NOT checked; anyone on the \
                           path could have sent these files";
            writeln!(
                stderr,
                "{}",
                console::style(warning).for_stderr().red().bold()
            )?;
        }
        stderr.flush()?;
    }
    // One write per buffer, not per line: thousands of paths are thousands of syscalls.
    let mut stdout = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let printed = if config.json {
        report::write_json(&summary, &mut stdout)
    } else {
        report::write_paths(&summary, &mut stdout)
    };
    match printed {
        // `fetchbench ... | head`: the reader has all it wants; that is not an error.
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    Ok(summary.exit_code())
}
