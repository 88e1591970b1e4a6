//! A `procs` mode child: one download in its own process (`fetchbench __child`, hidden),
//! speaking to its parent over pipes.
//!
//! The protocol is JSON lines. The parent writes a [`ChildJob`] as the first line of the
//! child's stdin, then answers each name claim with a line holding the name. The child writes
//! [`Report`]s on its stdout: progress events, name claims, and finally its outcome. The
//! parent's registry decides every name, so children never collide; when the parent goes away
//! (its end of stdin closes), the child cancels its download as on Ctrl-C.

use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;
use crate::fetch::{Downloader, Outcome, Policy, Sha256Digest, Status, Target, hex};
use crate::http::{HttpOptions, HttpSettings};
use crate::naming::Names;
use crate::progress::{Display, PipeEvent, Progress};
use crate::throttle::Throttle;

/// The hidden subcommand that runs a child.
pub const CHILD_COMMAND: &str = "__child";

/// Everything a child needs for its download.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChildJob {
    pub index: usize,
    pub url: String,
    pub sha256: Option<Sha256Digest>,
    /// The name the parent reserved for this URL.
    pub planned: String,
    /// The name the input gave, if any (then `planned` is it, made distinct).
    pub name: Option<String>,
    pub output_dir: PathBuf,
    /// Whether the output directory held `.part` files when the run began.
    pub parts_on_disk: bool,
    pub policy: Policy,
    pub http: HttpOptions,
    /// This child's share of `--limit-rate`.
    pub limit_rate: Option<u64>,
}

/// One line a child writes on its stdout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Report {
    Progress(PipeEvent),
    /// Asks the parent for a file name.
    Claim {
        claim: String,
    },
    /// The download's outcome; the last line.
    Done {
        done: ChildOutcome,
    },
}

/// A child's outcome, as the parent rebuilds it.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChildOutcome {
    /// `ok`, `skipped`, `failed` or `interrupted`.
    pub status: String,
    pub path: Option<PathBuf>,
    pub error: Option<String>,
    pub http_status: Option<u16>,
    pub bytes: u64,
    pub retries: u32,
    pub sha256: Option<String>,
    pub partial: Option<PathBuf>,
}

impl From<&Outcome> for ChildOutcome {
    fn from(outcome: &Outcome) -> Self {
        let (status, error) = match &outcome.status {
            Status::Saved { .. } => ("ok", None),
            Status::Skipped { .. } => ("skipped", None),
            Status::Failed(_) if outcome.is_interrupted() => ("interrupted", None),
            Status::Failed(err) => ("failed", Some(err.to_string())),
        };
        ChildOutcome {
            status: status.to_owned(),
            path: outcome.path().map(PathBuf::from),
            error,
            http_status: outcome.http_status,
            bytes: outcome.bytes,
            retries: outcome.retries,
            sha256: outcome.sha256.as_ref().map(hex),
            partial: outcome.partial.clone(),
        }
    }
}

/// Writes one report line for the parent.
fn report(line: &Report) -> Result<()> {
    let text = serde_json::to_string(line).context("cannot encode a report")?;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .context("cannot report to the parent")
}

/// Names from the parent's registry: a claim goes out on stdout, its answer comes back on
/// stdin (read by the stdin thread).
struct ParentNames {
    answers: Mutex<Receiver<String>>,
}

impl Names for ParentNames {
    fn claim(&self, _target: &Target, wanted: String) -> String {
        let asked = report(&Report::Claim {
            claim: wanted.clone(),
        });
        let answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        match asked.map(|()| answers.recv()) {
            Ok(Ok(name)) => name,
            // The parent is gone; the stdin thread has cancelled the download, and whatever
            // name is used now will not be reported to anyone.
            _ => wanted,
        }
    }
}

/// Runs a child: reads its job, downloads, reports. Exits 0 once the outcome is reported.
pub fn run() -> Result<ExitCode> {
    let mut stdin = BufReader::new(io::stdin());
    let mut first = String::new();
    stdin
        .read_line(&mut first)
        .context("cannot read the job from the parent")?;
    if first.trim().is_empty() {
        bail!("{CHILD_COMMAND} is internal to --mode procs: it expects a job on stdin");
    }
    let job: ChildJob = serde_json::from_str(&first).context("cannot parse the job")?;

    let cancel = Cancel::default();
    cancel.on_signals(None)?;
    let answers = forward_answers(stdin, cancel.clone())?;
    let http = HttpSettings::new(job.http)?;
    let downloader = Downloader {
        output_dir: job.output_dir,
        names: Arc::new(ParentNames {
            answers: Mutex::new(answers),
        }),
        policy: job.policy,
        throttle: Throttle::new(job.limit_rate, None, None),
        progress: Progress::new(Display::Pipe),
        cancel,
        parts_on_disk: job.parts_on_disk,
    };
    let target = Target {
        index: job.index,
        name: job.name,
        url: Url::parse(&job.url).with_context(|| format!("bad URL in the job: {}", job.url))?,
        sha256: job.sha256,
        planned: job.planned,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a tokio runtime")?;
    let outcome = runtime.block_on(async {
        match http.client() {
            Ok(client) => downloader.fetch(&client, &target).await,
            Err(err) => {
                let why = crate::fetch::FetchError::Setup(format!("{err:#}"));
                downloader.failed_early(&target, why)
            }
        }
    });
    report(&Report::Done {
        done: ChildOutcome::from(&outcome),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Reads the parent's answers on a thread of its own; when the parent closes stdin (it is
/// gone), cancels the download.
fn forward_answers(stdin: BufReader<io::Stdin>, cancel: Cancel) -> Result<Receiver<String>> {
    let (answer, answers) = mpsc::channel();
    std::thread::Builder::new()
        .name("parent".to_owned())
        .spawn(move || {
            for line in stdin.lines() {
                let Ok(line) = line else { break };
                if answer.send(line).is_err() {
                    return;
                }
            }
            cancel.trigger();
        })
        .context("cannot start the thread that listens to the parent")?;
    Ok(answers)
}
