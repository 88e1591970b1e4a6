//! `fetchbench bench`: the same downloads in every mode, several runs each, interleaved,
//! verified, then compared the way hyperfine compares commands.

mod cpu;
mod report;
mod stats;
mod workload;

use std::collections::HashSet;
use std::io;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use reqwest::Url;

use crate::cancel::Cancel;
use crate::cli::BenchArgs;
use crate::engine::{self, Plan, Work};
use crate::fetch::output::OutputDir;
use crate::fetch::policy::Policy;
use crate::fetch::throttle::Throttle;
use crate::http::{HttpOptions, HttpSettings, HttpVersion};
use crate::input::Input;
use crate::model::Mode;
use crate::model::{Outcome, Status};
use crate::progress::{Progress, Steps};
use crate::report::EXIT_FAILED;
use crate::server::{self, Network, ServerConfig, ServerHandle};
use crate::sync::lock;
use crate::width::Jobs;

pub(crate) use report::BenchReport;
pub(crate) use workload::{FileSource, Run, Workload};

/// Runs `fetchbench bench`.
pub(crate) fn run(args: &BenchArgs) -> Result<ExitCode> {
    let (workload, server) = workload(args)?;
    let http = http_settings(args, server.as_ref())?;
    let rig = Rig {
        workload: &workload,
        server: server.as_ref(),
        jobs: args.jobs,
        http: &http,
        keep: args.keep,
        sha256: args.print_sha256,
    };
    let runs = interleaved(args, &rig)?;
    let report = BenchReport::new(
        &workload,
        args.jobs,
        args.warmup,
        args.modes.clone().into_iter().zip(runs),
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

/// The client settings of every run. The built-in server's own certificate is trusted like
/// one given with --cacert.
fn http_settings(args: &BenchArgs, server: Option<&ServerHandle>) -> Result<HttpSettings> {
    let own_cert = server.and_then(|s| s.cert_path()).map(Path::to_owned);
    HttpSettings::new(HttpOptions {
        cacert_files: args.cacert.iter().cloned().chain(own_cert).collect(),
        version: match (args.http1_1, args.http2) {
            (true, _) => HttpVersion::Http1,
            (_, true) => HttpVersion::Http2,
            _ => HttpVersion::Auto,
        },
        ..HttpOptions::default()
    })
}

/// Every mode's runs after the warmups, in the order of `--modes`. Interleaved (each mode's
/// first run, then each mode's second, ...) so that drift hits every mode alike.
fn interleaved(args: &BenchArgs, rig: &Rig) -> Result<Vec<Vec<Run>>> {
    let modes = &args.modes;
    let rounds = args.warmup + args.runs;
    let steps = Steps::new(rounds * modes.len());
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); modes.len()];
    for round in 0..rounds {
        for (slot, &mode) in modes.iter().enumerate() {
            let label = match round.checked_sub(args.warmup) {
                None => format!("{mode}: warmup {}/{}", round + 1, args.warmup),
                Some(k) => format!("{mode}: run {}/{}", k + 1, args.runs),
            };
            steps.begin(&label);
            let run = rig.one_run(mode, round * modes.len() + slot)?;
            steps.ended(&format!("{label}: {}", run_line(&run)), !run.ok());
            if round >= args.warmup {
                runs[slot].push(run);
            }
        }
    }
    steps.finish();
    Ok(runs)
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

/// What every run of a bench shares.
struct Rig<'a> {
    workload: &'a Workload,
    /// The built-in server, when it serves the workload.
    server: Option<&'a ServerHandle>,
    /// The width of every mode (`-j`).
    jobs: usize,
    http: &'a HttpSettings,
    /// Each run's directory is kept (`--keep`).
    keep: bool,
    /// Each run hashes its files (`--print-sha256`).
    sha256: bool,
}

impl Rig<'_> {
    /// One run (number `run` of the bench) of `mode` into a fresh directory, verified, then
    /// removed (unless `keep`).
    fn one_run(&self, mode: Mode, run: usize) -> Result<Run> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("fetchbench-{mode}-"))
            .tempdir()
            .context("cannot create a temporary directory for a benchmark run")?;
        let outcomes = Arc::new(Mutex::new(Vec::with_capacity(self.workload.entries.len())));
        let kept = Arc::clone(&outcomes);
        let work = Work::start(Plan {
            mode,
            // A fixed width in every mode, so that the comparison is like for like.
            jobs: Jobs::Fixed(self.jobs),
            input: self.input(run),
            output: OutputDir::prepare(dir.path())?,
            policy: self.policy(),
            throttle: Throttle::default(),
            http: self.http.clone(),
            progress: Progress::silent(),
            cancel: Cancel::default(),
            results: Arc::new(move |outcome| lock(&kept).push(outcome)),
        })?;
        let run = self.measure(mode, work, &outcomes);
        if self.keep {
            let kept = dir.keep();
            eprintln!("kept {mode} run in {}", kept.display());
        }
        Ok(run)
    }

    /// The workload's URLs for run number `run`. With `--fault`, URLs of this run only: the
    /// server counts `fail=N` per URL.
    fn input(&self, run: usize) -> Input {
        let mut entries = self.workload.entries.clone();
        if self.workload.fault.is_some() {
            for entry in &mut entries {
                let query = format!("{}&run={run}", entry.url.query().unwrap_or_default());
                entry.url.set_query(Some(&query));
            }
        }
        Input::from_entries(entries)
    }

    /// A fault must show as a failed run, not hide in a retry's time; unless faults are what
    /// is measured (`--fault`): then the default retries, as a download has.
    fn policy(&self) -> Policy {
        Policy {
            retries: if self.workload.fault.is_some() {
                Policy::default().retries
            } else {
                0
            },
            sha256: self.sha256,
            ..Policy::default()
        }
    }

    /// Runs `work` in `mode`, timed, with the CPU time this process spent and, with the
    /// built-in server, what it saw meanwhile; then checks the `outcomes` it sent.
    fn measure(&self, mode: Mode, work: Work, outcomes: &Mutex<Vec<Outcome>>) -> Run {
        let server_before = self.server.map(|server| {
            server.reset_peak();
            server.stats()
        });
        let cpu_before = cpu::client_cpu_time();
        let elapsed = engine::run(mode, &work);
        let cpu = cpu::client_cpu_time()
            .zip(cpu_before)
            .map(|(after, before)| after.since(before));
        let server = (self.server)
            .zip(server_before)
            .map(|(server, before)| server.stats().since(&before));
        drop(work);
        let outcomes = std::mem::take(&mut *lock(outcomes));
        Run {
            cpu,
            elapsed,
            bytes: outcomes.iter().map(|o| o.bytes).sum(),
            problems: verify(&outcomes, &self.workload.source),
            io_threads: outcomes
                .iter()
                .map(|o| o.thread)
                .collect::<HashSet<_>>()
                .len(),
            server,
        }
    }
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

fn write_export(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}
