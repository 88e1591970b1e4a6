//! `procs`: each download in a child process of its own (fetchbench itself, see
//! [`crate::child`]), at most `-j` alive at once. A child that crashes fails only its download.
//!
//! `-j` worker threads claim URLs from a shared queue, as in `pool`; each starts a child for
//! its URL, relays the child's progress to this process's display, answers its name claims
//! from the run's registry and waits for it. Children run in their own process group, so that
//! a terminal's Ctrl-C reaches this process only, which then passes it on exactly once.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{Work, claiming_workers};
use crate::child::{CHILD_COMMAND, ChildJob, ChildOutcome, Report};
use crate::fetch::{FetchError, Outcome, Sha256Digest, Status, Target, parse_hex};
use crate::naming::PART_SUFFIX;
use crate::progress::{PipeEvent, Tracker};

pub fn run(work: &Work) {
    let live = LiveChildren::default();
    let finished = AtomicBool::new(false);
    thread::scope(|scope| {
        scope.spawn(|| live.interrupt_on_cancel(work, &finished));
        claiming_workers(work, "procs", || {
            // For the throttle's waits (host slots, pauses between starts).
            let timer = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build();
            while let Some(claim) = work.next() {
                match &timer {
                    Ok(timer) => {
                        let outcome = fetch_in_child(work, &claim.target, &live, timer);
                        claim.report(outcome);
                    }
                    Err(err) => {
                        claim.fail(FetchError::Setup(format!("cannot start a timer: {err}")))
                    }
                }
            }
        });
        finished.store(true, Ordering::SeqCst);
    });
}

/// The process ids of the children alive now, to pass Ctrl-C on to.
#[derive(Default)]
struct LiveChildren(Mutex<HashSet<u32>>);

impl LiveChildren {
    fn pids(&self) -> std::sync::MutexGuard<'_, HashSet<u32>> {
        // A set of numbers cannot be left half-changed, so a poisoned lock is safe to use.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the run is cancelled (then interrupts every live child) or finished.
    fn interrupt_on_cancel(&self, work: &Work, finished: &AtomicBool) {
        while !finished.load(Ordering::SeqCst) {
            if work.downloader.cancel.is_triggered() {
                for &pid in self.pids().iter() {
                    interrupt(pid);
                }
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Sends SIGINT to a child.
fn interrupt(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is one of our children
    // that has not been reaped yet (it is removed from the set before `wait` reaps it).
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
}

/// Runs `target`'s download in a child process and turns what it reports into an outcome.
fn fetch_in_child(
    work: &Work,
    target: &Target,
    live: &LiveChildren,
    timer: &tokio::runtime::Runtime,
) -> Outcome {
    let downloader = &work.downloader;
    if downloader.cancel.is_triggered() {
        return downloader.failed_early(target, FetchError::NotStarted);
    }
    let started = Instant::now();
    // Host slots and pauses between starts are kept here; a child gets a share of the rate.
    let _slot = timer.block_on(downloader.throttle.admit(&target.url));
    let planned = target.planned.clone();
    let tracker = downloader.progress.start(&planned);
    let mut session = Session::default();
    let status = match spawn(work, target, &planned) {
        Err(err) => Status::Failed(FetchError::Setup(format!("{err:#}"))),
        Ok(mut child) => {
            live.pids().insert(child.id());
            let talked = converse(work, target, &mut child, &tracker, &mut session);
            // Reaped only after leaving the set, so a SIGINT never reaches a recycled pid.
            live.pids().remove(&child.id());
            let exit = child.wait();
            match (session.done.take(), exit) {
                (Some(done), _) => rebuild(&done, &mut session),
                (None, Ok(exit)) => Status::Failed(FetchError::Crashed(died(exit, talked))),
                (None, Err(err)) => Status::Failed(FetchError::Crashed(format!(
                    "cannot wait for the child process: {err}"
                ))),
            }
        }
    };
    if matches!(status, Status::Failed(FetchError::Crashed(_))) {
        session.partial = session.name.as_ref().and_then(|name| {
            let part = downloader.output_dir.join(format!("{name}{PART_SUFFIX}"));
            match crate::sink::part_len(&part) {
                Some(0) => {
                    // Killed before its first byte landed: nothing to resume.
                    let _ = std::fs::remove_file(&part);
                    None
                }
                len => len.map(|_| part),
            }
        });
    }
    let outcome = Outcome {
        index: target.index,
        url: target.url.to_string(),
        status,
        http_status: session.http_status,
        bytes: session.received,
        elapsed: started.elapsed(),
        retries: session.retries,
        sha256: session.sha256,
        partial: session.partial,
        thread: thread::current().id(),
    };
    tracker.finish(&outcome);
    outcome
}

/// What the parent learns from one child.
#[derive(Default)]
struct Session {
    name: Option<String>,
    received: u64,
    done: Option<ChildOutcome>,
    http_status: Option<u16>,
    retries: u32,
    sha256: Option<Sha256Digest>,
    partial: Option<std::path::PathBuf>,
}

fn spawn(work: &Work, target: &Target, planned: &str) -> Result<Child> {
    let exe = std::env::current_exe().context("cannot find fetchbench's own executable")?;
    let mut child = Command::new(exe)
        .arg(CHILD_COMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .context("cannot start a child process")?;
    let job = ChildJob {
        index: target.index,
        url: target.url.to_string(),
        sha256: target.sha256,
        planned: planned.to_owned(),
        output_dir: work.downloader.output_dir.clone(),
        parts_on_disk: work.downloader.parts_on_disk,
        policy: work.downloader.policy.clone(),
        name: target.name.clone(),
        http: work.http.options().clone(),
        limit_rate: work.downloader.throttle.rate_share(work.jobs),
    };
    let line = serde_json::to_string(&job).context("cannot encode the child's job")?;
    if let Some(stdin) = child.stdin.as_mut() {
        // A child that cannot read its job dies without a result, which is reported.
        let _ = writeln!(stdin, "{line}").and_then(|()| stdin.flush());
    }
    Ok(child)
}

/// Relays the child's reports until its stdout closes.
fn converse(
    work: &Work,
    target: &Target,
    child: &mut Child,
    tracker: &Tracker,
    session: &mut Session,
) -> Result<()> {
    let stdout = child.stdout.take().context("the child has no stdout")?;
    let mut stdin: Option<ChildStdin> = child.stdin.take();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("cannot read the child's report")?;
        let Ok(report) = serde_json::from_str::<Report>(&line) else {
            continue;
        };
        match report {
            Report::Progress(PipeEvent::Length(length)) => tracker.set_length(Some(length)),
            Report::Progress(PipeEvent::Position { position, received }) => {
                session.received = received;
                tracker.sync(position, received);
            }
            Report::Progress(PipeEvent::Retry(note)) => tracker.show_retry(note),
            Report::Claim { claim } => {
                let name = work.downloader.names.claim(target, claim.clone());
                work.downloader.say_if_renamed(&target.url, &claim, &name);
                session.name = Some(name.clone());
                if let Some(stdin) = stdin.as_mut() {
                    writeln!(stdin, "{name}")
                        .and_then(|()| stdin.flush())
                        .context("cannot answer the child")?;
                }
            }
            Report::Done { done } => {
                session.done = Some(done);
                // Closing stdin lets the child exit.
                stdin = None;
            }
        }
    }
    drop(stdin);
    Ok(())
}

/// The status a child's report describes.
fn rebuild(done: &ChildOutcome, session: &mut Session) -> Status {
    session.received = done.bytes;
    session.http_status = done.http_status;
    session.retries = done.retries;
    session.sha256 = done.sha256.as_deref().and_then(parse_hex);
    session.partial = done.partial.clone();
    let path = done.path.clone().unwrap_or_default();
    match done.status.as_str() {
        "ok" => Status::Saved { path },
        "skipped" => Status::Skipped { path },
        "interrupted" => Status::Failed(FetchError::Interrupted),
        _ => Status::Failed(FetchError::Child(
            done.error.clone().unwrap_or_else(|| "failed".to_owned()),
        )),
    }
}

/// "child process killed by signal 9 (SIGKILL) ...", "... exited with status 3 ...", and
/// why its reports stopped when that is known.
fn died(exit: ExitStatus, talked: Result<()>) -> String {
    let death = match (exit.code(), exit.signal()) {
        (_, Some(signal)) => format!(
            "child process killed by signal {signal} ({}) before reporting a result",
            signal_name(signal)
        ),
        (Some(code), None) => {
            format!("child process exited with status {code} without reporting a result")
        }
        (None, None) => "child process ended without reporting a result".to_owned(),
    };
    match talked {
        Ok(()) => death,
        Err(err) => format!("{death} ({err:#})"),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGHUP => "SIGHUP",
        libc::SIGPIPE => "SIGPIPE",
        _ => "unknown signal",
    }
}
