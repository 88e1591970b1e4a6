//! A worker process (`fetchbench __child`, hidden): downloads the jobs its parent hands it, one
//! after another, with one HTTP client whose connections stay open from one job to the next.
//!
//! A thread reads the parent's [`Order`]s from stdin; jobs go to the download loop, name
//! answers to the download that asked, and a cancel (or stdin closing: the parent is gone)
//! interrupts the download in hand, as Ctrl-C does.

use std::io::{self, BufRead, BufReader};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use reqwest::{Client, Url};
use tokio::runtime::Runtime;

use super::protocol::{self, CHILD_COMMAND, Done, Job, Message, Order, Setup};
use crate::cancel::Cancel;
use crate::cookies::CookieJar;
use crate::error::FetchError;
use crate::fetch::naming::Names;
use crate::fetch::throttle::Throttle;
use crate::fetch::{Downloader, Reach};
use crate::http::HttpSettings;
use crate::model::Target;
use crate::progress::{Progress, Relay};
use crate::sync::lock;
use crate::width::Width;

/// Names from the parent's registry: a name asked for goes out on stdout, its answer comes back on
/// stdin (read by the listening thread).
struct ParentNames {
    answers: Mutex<Receiver<String>>,
}

impl Names for ParentNames {
    fn grant(&self, _target: &Target, wanted: String) -> String {
        let asked = protocol::report(&Message::AskName(wanted.clone()));
        let answers = lock(&self.answers);
        match asked.map(|()| answers.recv()) {
            Ok(Ok(name)) => name,
            // The parent is gone; the listening thread has cancelled the download, and
            // whatever name is used now will not be reported to anyone.
            _ => wanted,
        }
    }
}

/// Runs a worker until its parent closes stdin. Exits 0 then.
pub(crate) fn run() -> Result<ExitCode> {
    let mut orders = BufReader::new(io::stdin()).lines();
    let setup = read_setup(&mut orders)?;
    let cancel = Cancel::default();
    cancel.on_signals(None)?;
    let (jobs, answers) = listen(orders, cancel.clone())?;
    let child = Child::new(*setup, answers, cancel)?;
    for job in jobs {
        if child.cancel.is_triggered() {
            // Interrupted (by the parent, or by a signal of its own): the job goes back to the
            // parent unstarted, as this worker quits without a word about it.
            break;
        }
        let done = child.fetch(job);
        protocol::report(&Message::Done(done)).context("cannot report to the parent")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The parent's first line: the run's [`Setup`].
fn read_setup(orders: &mut impl Iterator<Item = io::Result<String>>) -> Result<Box<Setup>> {
    let first = orders
        .next()
        .transpose()
        .context("cannot read the setup from the parent")?
        .unwrap_or_default();
    let Ok(Order::Setup(setup)) = serde_json::from_str::<Order>(&first) else {
        bail!(
            "{CHILD_COMMAND} is internal to --mode procs and spawn: it expects its setup on stdin"
        );
    };
    Ok(setup)
}

/// The progress a worker relays to its parent, as [`Message`]s on stdout.
struct ToParent;

impl Relay for ToParent {
    // A parent that is gone learns nothing more: its listening thread cancels the download.
    fn length(&self, length: u64) {
        let _ = protocol::report(&Message::Length(length));
    }

    fn position(&self, position: u64, received: u64) {
        let _ = protocol::report(&Message::Position { position, received });
    }

    fn retry(&self, note: String) {
        let _ = protocol::report(&Message::Retry(note));
    }

    fn trace(&self, lines: &str) {
        let _ = protocol::report(&Message::Trace(lines.to_owned()));
    }
}

/// What a worker downloads with: one downloader, and one client in one runtime, kept from one
/// job to the next.
struct Child {
    downloader: Downloader,
    runtime: Runtime,
    /// The client, or why there is none (then every job fails with that).
    client: Result<Client>,
    /// What servers set, for the parent's jar.
    jar: Option<Arc<CookieJar>>,
    cancel: Cancel,
}

impl Child {
    /// The worker of `setup`, asking the parent for names (the answers come on `answers`).
    fn new(setup: Setup, answers: Receiver<String>, cancel: Cancel) -> Result<Child> {
        let Setup {
            output,
            mut policy,
            http,
            limit_rate,
            progress,
            cookies: _,
        } = setup;
        let progress = match progress {
            true => Progress::relayed(Arc::new(ToParent)),
            false => Progress::silent(),
        };
        let names = Arc::new(ParentNames {
            answers: Mutex::new(answers),
        });
        let throttle = Throttle::new(limit_rate, None, None);
        // The jar loads --load-cookies itself, and records what servers set for the parent.
        let settings = HttpSettings::new(http);
        let jar = settings.as_ref().ok().and_then(|s| s.cookies().cloned());
        if let Some(jar) = &jar {
            jar.record();
        }
        if let Some(verbose) = &mut policy.verbose {
            verbose.cookies = jar.clone();
        }
        let runtime = crate::platform::current_thread_runtime()?;
        // Built once, inside its runtime: its connections are kept from one job to the next.
        let client = runtime.block_on(async {
            settings
                .as_ref()
                .map_err(|e| anyhow::anyhow!("{e:#}"))?
                .client()
        });
        let downloader = Downloader::new(
            output,
            names,
            policy,
            throttle,
            progress,
            cancel.clone(),
            Reach {
                http: settings.unwrap_or_default(),
                // The parent keeps the width: a worker runs one download at a time.
                width: Arc::new(Width::fixed(1)),
            },
        );
        Ok(Child {
            downloader,
            runtime,
            client,
            jar,
            cancel,
        })
    }

    /// Downloads `job`: what to tell the parent of it.
    fn fetch(&self, job: Job) -> Done {
        let downloader = &self.downloader;
        let (target, bad) = target(job);
        let outcome = match (bad, &self.client) {
            (None, Ok(client)) => self.runtime.block_on(downloader.fetch(client, &target)),
            (Some(why), _) => downloader.failed_early(&target, FetchError::Setup(why)),
            (None, Err(err)) => {
                downloader.failed_early(&target, FetchError::Setup(format!("{err:#}")))
            }
        };
        let mut done = Done::from(&outcome);
        done.cookies = (self.jar.as_ref())
            .map(|jar| jar.take_received())
            .unwrap_or_default();
        done
    }
}

/// The job's target, and what makes it impossible to fetch (a URL that does not parse: then
/// the target has a stand-in URL).
fn target(job: Job) -> (Target, Option<String>) {
    let (url, bad) = match Url::parse(&job.url) {
        Ok(url) => (url, None),
        Err(err) => {
            let stand_in = Url::parse("http://invalid.invalid/").expect("a valid URL");
            (
                stand_in,
                Some(format!(
                    "bad URL in the job: {}: {err}",
                    crate::secret::text(&job.url)
                )),
            )
        }
    };
    let target = Target {
        index: job.index,
        name: job.name,
        url,
        sha256: job.sha256,
        planned: job.planned,
    };
    (target, bad)
}

/// Reads the parent's orders on a thread of its own: jobs and name answers go to their
/// channels; a cancel, or stdin closing (the parent is gone), cancels the download in hand.
fn listen(
    orders: impl Iterator<Item = io::Result<String>> + Send + 'static,
    cancel: Cancel,
) -> Result<(Receiver<Job>, Receiver<String>)> {
    let (job, jobs) = mpsc::channel();
    let (answer, answers) = mpsc::channel();
    std::thread::Builder::new()
        .name("parent".to_owned())
        .spawn(move || forward(orders, &job, &answer, &cancel))
        .context("cannot start the thread that listens to the parent")?;
    Ok((jobs, answers))
}

fn forward(
    orders: impl Iterator<Item = io::Result<String>>,
    job: &Sender<Job>,
    answer: &Sender<String>,
    cancel: &Cancel,
) {
    for line in orders {
        let Ok(line) = line else { break };
        match serde_json::from_str::<Order>(&line) {
            Ok(Order::Fetch(next)) => {
                let _ = job.send(next);
            }
            Ok(Order::Name(name)) => {
                let _ = answer.send(name);
            }
            Ok(Order::Cancel) => cancel.trigger(),
            Ok(Order::Setup(_)) | Err(_) => {}
        }
    }
    cancel.trigger();
}
