//! `fetchbench bench`: the same downloads in every mode, several runs each, interleaved,
//! verified, then compared the way hyperfine compares commands.

mod cpu;
mod report;
mod stats;
mod workload;

use std::collections::HashSet;
use std::io::{self, IsTerminal};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Url;

use crate::cancel::Cancel;
use crate::cli::BenchArgs;
use crate::engine::{self, Work};
use crate::fetch::naming::NameRegistry;
use crate::fetch::output::OutputDir;
use crate::fetch::policy::Policy;
use crate::fetch::throttle::Throttle;
use crate::fetch::{Downloader, Reach};
use crate::http::{HttpOptions, HttpSettings, HttpVersion};
use crate::input::{Input, Source as InputSource};
use crate::model::Mode;
use crate::model::{Outcome, Status};
use crate::progress::Progress;
use crate::report::EXIT_FAILED;
use crate::server::{self, Network, ServerConfig, ServerHandle};
use crate::sync::lock;
use crate::width::Jobs;

pub(crate) use report::BenchReport;
pub(crate) use workload::{FileSource, Run, Workload};

/// Runs `fetchbench bench`.
pub(crate) fn run(args: &BenchArgs) -> Result<ExitCode> {
    let (workload, server) = workload(args)?;
    // The built-in server's own certificate is trusted like one given with --cacert.
    let own_cert = server
        .as_ref()
        .and_then(|s| s.cert_path())
        .map(Path::to_owned);
    let http = HttpSettings::new(HttpOptions {
        cacert_files: args.cacert.iter().cloned().chain(own_cert).collect(),
        version: match (args.http1_1, args.http2) {
            (true, _) => HttpVersion::Http1,
            (_, true) => HttpVersion::Http2,
            _ => HttpVersion::Auto,
        },
        ..HttpOptions::default()
    })?;
    let modes = args.modes.clone();
    let rounds = args.warmup + args.runs;
    let progress = bench_progress(rounds * modes.len());
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); modes.len()];
    // Interleaved (seq, threads, pool, async, seq, ...) so that drift hits every mode alike.
    for round in 0..rounds {
        for (slot, &mode) in modes.iter().enumerate() {
            let label = match round.checked_sub(args.warmup) {
                None => format!("{mode}: warmup {}/{}", round + 1, args.warmup),
                Some(k) => format!("{mode}: run {}/{}", k + 1, args.runs),
            };
            progress.set_message(label.clone());
            let run = one_run(
                mode,
                &workload,
                server.as_ref(),
                args.jobs,
                &http,
                args.keep,
                args.print_sha256,
                round * modes.len() + slot,
            )?;
            if progress.is_hidden() || !run.ok() {
                progress.suspend(|| eprintln!("{label}: {}", run_line(&run)));
            }
            progress.inc(1);
            if round >= args.warmup {
                runs[slot].push(run);
            }
        }
    }
    progress.finish_and_clear();

    let report = BenchReport::new(
        &workload,
        args.jobs,
        args.warmup,
        modes.into_iter().zip(runs),
    );
    print!("{}", report.text(crate::progress::stdout_width()));
    if let Some(path) = &args.export_json {
        write_export(path, &report.json()?)?;
    }
    if let Some(path) = &args.export_markdown {
        write_export(path, &report.markdown())?;
    }
    Ok(if report.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// The user's URLs, or the built-in server (kept alive by the returned handle) and its files.
fn workload(args: &BenchArgs) -> Result<(Workload, Option<ServerHandle>)> {
    if !args.urls.is_empty() || args.input.is_some() {
        if args.fault.is_some() {
            anyhow::bail!("--fault is for the built-in server's workload, not for URLs given");
        }
        let stdin = Box::new(io::stdin());
        let entries = Input::open(&args.urls, args.input.as_deref(), stdin)?.into_entries()?;
        let workload = Workload {
            entries,
            source: FileSource::Urls,
            fault: None,
        };
        return Ok((workload, None));
    }
    let server = ServerHandle::start(ServerConfig {
        latency: args.latency,
        rate: args.rate,
        files: args.files,
        size: args.size,
        network: Network {
            rtt: args.rtt,
            link_rate: args.link_rate,
        },
        tls: args.tls,
        max_streams: args.max_streams,
        ..ServerConfig::default()
    })?;
    let urls: Vec<String> = match &args.fault {
        // Each run adds its own `run=` (see `one_run`), so that `fail=N` counts afresh.
        Some(fault) => (server.workload_urls().into_iter())
            .map(|url| format!("{url}&{fault}"))
            .collect(),
        None => server.workload_urls(),
    };
    let entries = Input::open(&urls, None, Box::new(io::empty()))?.into_entries()?;
    let workload = Workload {
        entries,
        source: FileSource::BuiltIn {
            files: args.files,
            size: args.size,
            latency: args.latency,
            rate: args.rate,
            rtt: args.rtt,
            link_rate: args.link_rate,
            tls: args.tls,
        },
        fault: args.fault.clone(),
    };
    Ok((workload, Some(server)))
}

/// One run (number `run` of the bench) of `mode` into a fresh directory, verified, then
/// removed (unless `keep`); with the built-in `server`, what it saw during the run.
#[allow(clippy::too_many_arguments)]
fn one_run(
    mode: Mode,
    workload: &Workload,
    server: Option<&ServerHandle>,
    jobs: usize,
    http: &HttpSettings,
    keep: bool,
    sha256: bool,
    run: usize,
) -> Result<Run> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("fetchbench-{mode}-"))
        .tempdir()
        .context("cannot create a temporary directory for a benchmark run")?;
    let cancel = Cancel::default();
    let progress = Progress::silent();
    let names = Arc::new(NameRegistry::default());
    let mut entries = workload.entries.clone();
    if workload.fault.is_some() {
        // URLs of this run only: the server counts `fail=N` per URL.
        for entry in &mut entries {
            let query = format!("{}&run={run}", entry.url.query().unwrap_or_default());
            entry.url.set_query(Some(&query));
        }
    }
    let input = Input::from_entries(entries);
    let outcomes = Arc::new(Mutex::new(Vec::with_capacity(workload.entries.len())));
    let kept = Arc::clone(&outcomes);
    // A fixed width in every mode, so that the comparison is like for like.
    let (width, _) = engine::width(mode, Jobs::Fixed(jobs), 1, progress.received());
    let work = Work {
        source: Arc::new(InputSource::start(
            input,
            Arc::clone(&names),
            progress.clone(),
            cancel.clone(),
        )?),
        downloader: Arc::new(Downloader::new(
            OutputDir::prepare(dir.path())?,
            names,
            // A fault must show as a failed run, not hide in a retry's time; unless faults are
            // what is measured (`--fault`): then the default retries, as a download has.
            Policy {
                retries: if workload.fault.is_some() {
                    Policy::default().retries
                } else {
                    0
                },
                sha256,
                ..Policy::default()
            },
            Throttle::default(),
            progress,
            cancel,
            Reach {
                http: http.clone(),
                width: Arc::new(width),
            },
        )),
        results: Arc::new(move |outcome| lock(&kept).push(outcome)),
    };
    let server_before = server.map(|server| {
        server.reset_peak();
        server.stats()
    });
    let cpu_before = cpu::client_cpu_time();
    let elapsed = engine::run(mode, &work);
    let cpu = cpu::client_cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.since(before));
    let server = server
        .zip(server_before)
        .map(|(server, before)| server.stats().since(&before));
    drop(work);
    let outcomes = std::mem::take(&mut *lock(&outcomes));
    let run = Run {
        cpu,
        elapsed,
        bytes: outcomes.iter().map(|o| o.bytes).sum(),
        problems: verify(&outcomes, &workload.source),
        io_threads: outcomes
            .iter()
            .map(|o| o.thread)
            .collect::<HashSet<_>>()
            .len(),
        server,
    };
    if keep {
        let kept = dir.keep();
        eprintln!("kept {mode} run in {}", kept.display());
    }
    Ok(run)
}

/// Every download must have succeeded and its file must hold exactly what was served.
fn verify(outcomes: &[Outcome], source: &FileSource) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|outcome| {
            let check = match &outcome.status {
                Status::Saved { path } => match source {
                    FileSource::BuiltIn { size, .. } => {
                        let name = Url::parse(&outcome.url)
                            .map(|url| crate::fetch::naming::name_from_url(&url))
                            .unwrap_or_default();
                        server::verify_file(path, &name, *size)
                    }
                    FileSource::Urls => check_length(path, outcome.bytes),
                },
                Status::Skipped { .. } => Err(anyhow::anyhow!("skipped")),
                Status::Failed(err) => Err(anyhow::anyhow!("{err}")),
            };
            check.err().map(|err| format!("{}: {err:#}", outcome.url))
        })
        .collect()
}

fn check_length(path: &Path, expected: u64) -> Result<()> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    anyhow::ensure!(
        len == expected,
        "{} holds {len} bytes, {expected} were received",
        path.display()
    );
    Ok(())
}

fn run_line(run: &Run) -> String {
    match run.problems.first() {
        None => crate::units::human_duration(run.elapsed),
        Some(first) => format!("FAILED ({} problems, first: {first})", run.problems.len()),
    }
}

/// One bar on a terminal (which mode, run k of n); plain lines per run otherwise.
fn bench_progress(total: usize) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn write_export(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}
