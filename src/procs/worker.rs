//! The parent's side of a worker process: [`Worker::fetch`] hands one download to its child
//! (starting one first if it has none), relays the child's progress to this process's display,
//! answers the names it asks for from the run's registry, and turns its report into an [`Outcome`].
//! A child that dies fails only the download it held; the next download starts a new one.
//!
//! [`Crew`] holds what the workers of a run share: the setup every child is started with, and
//! the pipes through which a cancelled run (Ctrl-C, SIGTERM) is passed on to every child.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::protocol::{self, CHILD_COMMAND, Done, DoneStatus, Job, Message, Order, Setup};
use crate::cancel::Cancel;
use crate::cookies::CookieJar;
use crate::error::FetchError;
use crate::fetch::{Downloader, Ended};
use crate::model::{Facts, Outcome, Status, Target, parse_hex};
use crate::progress::Tracker;
use crate::sync::lock;

/// How long a worker's child process lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifetime {
    /// It takes download after download until the run ends (`procs`).
    Pool,
    /// It does one download, then exits (`spawn`).
    OneDownload,
}

/// A child's stdin, shared with the [`Crew`] (to pass a cancel on); `None` once closed.
type Pipe = Arc<Mutex<Option<ChildStdin>>>;

/// Writes one line on a child's stdin, in one call.
fn send(pipe: &Pipe, line: &[u8]) -> io::Result<()> {
    match lock(pipe).as_mut() {
        Some(stdin) => stdin.write_all(line).and_then(|()| stdin.flush()),
        None => Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "its stdin is closed",
        )),
    }
}

/// The workers of one run: how to start their children, and the children alive now.
pub(crate) struct Crew {
    /// The executable and the setup line every child starts with, or why there are none.
    start: Result<(PathBuf, Vec<u8>), String>,
    lifetime: Lifetime,
    live: Mutex<Live>,
    /// The parent's cookie jar: the cookies servers set in a child go there.
    cookies: Option<Arc<CookieJar>>,
}

#[derive(Default)]
struct Live {
    /// Once set, every child alive or to come is told to stop its download.
    cancelled: bool,
    pipes: HashMap<u32, Pipe>,
}

impl Crew {
    pub(crate) fn new(setup: &Setup, lifetime: Lifetime) -> Self {
        let exe = std::env::current_exe()
            .map_err(|err| format!("cannot find fetchbench's own executable: {err}"));
        let line = protocol::line(&Order::Setup(Box::new(setup.clone())))
            .map_err(|err| format!("cannot encode the workers' setup: {err}"));
        Crew {
            start: exe.and_then(|exe| Ok((exe, line?))),
            lifetime,
            live: Mutex::default(),
            cookies: setup.cookies.clone(),
        }
    }

    /// A worker with no child yet (it starts one for its first download).
    pub(crate) fn worker(&self) -> Worker<'_> {
        let timer = crate::platform::current_thread_runtime().map_err(|err| format!("{err:#}"));
        Worker {
            timer,
            process: Process {
                crew: self,
                child: None,
            },
        }
    }

    /// Runs `run` while passing a cancellation of `cancel` on to every child.
    pub(crate) fn relaying<R>(&self, cancel: &Cancel, run: impl FnOnce() -> R) -> R {
        let (finished, done) = mpsc::channel::<()>();
        thread::scope(|scope| {
            scope.spawn(move || {
                while let Err(RecvTimeoutError::Timeout) =
                    done.recv_timeout(Duration::from_millis(20))
                {
                    if cancel.is_triggered() {
                        self.cancel_all();
                        return;
                    }
                }
            });
            let result = run();
            drop(finished);
            result
        })
    }

    fn cancel_all(&self) {
        let mut live = lock(&self.live);
        live.cancelled = true;
        if let Ok(line) = protocol::line(&Order::Cancel) {
            for pipe in live.pipes.values() {
                // A child whose pipe is broken is dying anyway; its worker reports it.
                let _ = send(pipe, &line);
            }
        }
    }

    /// Counts a new child in; tells it at once if the run is already cancelled.
    fn enlist(&self, pid: u32, pipe: &Pipe) {
        let mut live = lock(&self.live);
        if live.cancelled {
            if let Ok(line) = protocol::line(&Order::Cancel) {
                let _ = send(pipe, &line);
            }
        }
        live.pipes.insert(pid, Arc::clone(pipe));
    }

    fn discharge(&self, pid: u32) {
        lock(&self.live).pipes.remove(&pid);
    }
}

/// One worker: a child process, started when needed, and the parent's side of its pipes.
pub(crate) struct Worker<'a> {
    /// For the throttle's waits (host slots, pauses between starts), kept in the parent.
    timer: Result<tokio::runtime::Runtime, String>,
    process: Process<'a>,
}

/// A worker's child process (when it has one), of its crew.
struct Process<'a> {
    crew: &'a Crew,
    child: Option<Running>,
}

struct Running {
    process: Child,
    stdin: Pipe,
    stdout: BufReader<ChildStdout>,
}

/// How a child's conversation broke off.
enum Broken {
    /// Its stdout closed: it exited, or was killed.
    Closed,
    /// Its pipes failed otherwise.
    Failed(String),
}

/// What the parent learns of one download from its child.
#[derive(Default)]
struct Held {
    /// Whether the child said anything at all about this download.
    heard: bool,
    /// The name it asked for, as granted.
    name: Option<String>,
    facts: Facts,
}

impl Worker<'_> {
    /// Downloads `target` (labelled with the name reserved for it) in this worker's child,
    /// in the frame every download has ([`Downloader::frame`]). Never fails: a failure, a
    /// crash included, is in the [`Outcome`].
    pub(crate) fn fetch(&mut self, downloader: &Downloader, target: &Target) -> Outcome {
        let timer = match &self.timer {
            Ok(timer) => timer,
            Err(why) => return downloader.failed_early(target, FetchError::Setup(why.clone())),
        };
        let process = &mut self.process;
        // Host slots and pauses between starts are kept here; a child has a share of the rate.
        timer.block_on(downloader.frame(target, async |tracker| {
            let mut held = Held::default();
            let status = process.hand_over(downloader, target, tracker, &mut held);
            // What a dead child had written stays for -c: under the name it asked for, if it
            // asked, else the planned one (its URL's, or the input's). Otherwise the child
            // said what it left.
            let crashed = matches!(status, Status::Failed(FetchError::Crashed(_)));
            let name = crashed.then(|| held.name.unwrap_or_else(|| target.planned.clone()));
            let result = match status {
                Status::Failed(err) => Err(err),
                status => Ok(status),
            };
            Ended {
                result,
                facts: held.facts,
                name,
            }
        }))
    }
}

impl Process<'_> {
    /// Gives the job to the child and follows it to its end.
    fn hand_over(
        &mut self,
        downloader: &Downloader,
        target: &Target,
        tracker: &Tracker,
        held: &mut Held,
    ) -> Status {
        let job = match job_line(target) {
            Ok(job) => job,
            Err(err) => return Status::Failed(FetchError::Setup(format!("cannot encode: {err}"))),
        };
        // A child that died while idle (found so by the job's write, or quitting without a
        // word) did not hold this download: it is replaced once, and the job given again.
        let mut replaced = false;
        loop {
            let child = match self.running() {
                Ok(child) => child,
                Err(why) => return Status::Failed(FetchError::Setup(why)),
            };
            if let Err(err) = send(&child.stdin, &job) {
                let exit = self.bury(true);
                if !replaced {
                    replaced = true;
                    continue;
                }
                return crashed(exit, Some(format!("cannot hand it the download: {err}")));
            }
            let broken = match converse(child, downloader, target, tracker, held) {
                Ok(done) => {
                    if let Some(jar) = &self.crew.cookies {
                        jar.store_received(&done.cookies);
                    }
                    if self.crew.lifetime == Lifetime::OneDownload {
                        self.retire();
                    }
                    return rebuild(done, held);
                }
                Err(broken) => broken,
            };
            let (exit, why) = match broken {
                Broken::Closed => (self.bury(false), None),
                Broken::Failed(why) => (self.bury(true), Some(why)),
            };
            // A child quits without a word only when interrupted before it took the job.
            let quit = exit.as_ref().is_ok_and(ExitStatus::success) && !held.heard;
            if quit && downloader.cancel().is_triggered() {
                return Status::Failed(FetchError::NotStarted);
            }
            if quit && !replaced {
                replaced = true;
                continue;
            }
            return crashed(exit, why);
        }
    }

    /// This worker's child, started (and told the run's setup) if it has none.
    fn running(&mut self) -> Result<&mut Running, String> {
        if self.child.is_none() {
            self.child = Some(self.start()?);
        }
        self.child
            .as_mut()
            .ok_or_else(|| "no child process".to_owned())
    }

    fn start(&self) -> Result<Running, String> {
        let (exe, setup) = self.crew.start.as_ref().map_err(Clone::clone)?;
        let mut command = Command::new(exe);
        command
            .arg(CHILD_COMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut process = crate::platform::own_process_group(&mut command)
            .spawn()
            .map_err(|err| format!("cannot start a child process: {err}"))?;
        let (Some(stdin), Some(stdout)) = (process.stdin.take(), process.stdout.take()) else {
            let _ = process.kill();
            let _ = process.wait();
            return Err("cannot talk to the child process".to_owned());
        };
        let running = Running {
            process,
            stdin: Arc::new(Mutex::new(Some(stdin))),
            stdout: BufReader::new(stdout),
        };
        // The setup goes first, before a cancel can. A child that cannot read it fails at its
        // job's write, or ends unheard.
        let _ = send(&running.stdin, setup);
        self.crew.enlist(running.process.id(), &running.stdin);
        Ok(running)
    }

    /// Ends the child (killed first when `kill`, else it is ending anyway) and reaps it.
    fn bury(&mut self, kill: bool) -> io::Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            return Err(io::Error::other("no child process"));
        };
        self.crew.discharge(child.process.id());
        lock(&child.stdin).take();
        if kill {
            // Fails only if it is already dead, which is what is wanted.
            let _ = child.process.kill();
        }
        child.process.wait()
    }

    /// Lets the child go: its stdin closes, it finishes, it is reaped.
    fn retire(&mut self) {
        let _ = self.bury(false);
    }
}

impl Drop for Process<'_> {
    fn drop(&mut self) {
        self.retire();
    }
}

/// The order that hands `target`'s download to a child.
fn job_line(target: &Target) -> io::Result<Vec<u8>> {
    protocol::line(&Order::Fetch(Job {
        index: target.index,
        url: target.url.to_string(),
        sha256: target.sha256,
        planned: target.planned.clone(),
        name: target.name.clone(),
    }))
}

/// Relays the child's reports about its download until it reports the outcome.
fn converse(
    child: &mut Running,
    downloader: &Downloader,
    target: &Target,
    tracker: &Tracker,
    held: &mut Held,
) -> Result<Done, Broken> {
    let mut line = String::new();
    loop {
        line.clear();
        match child.stdout.read_line(&mut line) {
            Ok(0) => return Err(Broken::Closed),
            Ok(_) => held.heard = true,
            Err(err) => return Err(Broken::Failed(format!("cannot read its report: {err}"))),
        }
        let Ok(report) = serde_json::from_str::<Message>(&line) else {
            continue;
        };
        match report {
            Message::Length(length) => tracker.set_length(Some(length)),
            Message::Position { position, received } => {
                held.facts.bytes = received;
                tracker.sync(position, received);
            }
            Message::Retry(note) => tracker.show_retry(note),
            Message::Trace(lines) => tracker.trace(&lines),
            Message::AskName(wanted) => {
                let name = downloader.name_asked(target, wanted);
                held.name = Some(name.clone());
                protocol::line(&Order::Name(name))
                    .and_then(|answer| send(&child.stdin, &answer))
                    .map_err(|err| Broken::Failed(format!("cannot answer it: {err}")))?;
            }
            Message::Done(done) => return Ok(done),
        }
    }
}

/// The status a child's report describes.
fn rebuild(done: Done, held: &mut Held) -> Status {
    held.facts = Facts {
        http_status: done.http_status,
        bytes: done.bytes,
        retries: done.retries,
        sha256: done.sha256.as_deref().and_then(parse_hex),
        partial: done.partial,
    };
    match done.status {
        DoneStatus::Saved { path } => Status::Saved { path },
        DoneStatus::Skipped { path, why } => Status::Skipped { path, why },
        DoneStatus::Interrupted => Status::Failed(FetchError::Interrupted),
        DoneStatus::Failed { error } => Status::Failed(FetchError::Child(error)),
    }
}

/// "child process killed by signal 9 (SIGKILL) before reporting a result", and why its
/// reports stopped when that is known.
fn crashed(exit: io::Result<ExitStatus>, why: Option<String>) -> Status {
    let death = match exit {
        Ok(exit) => format!(
            "child process {} before reporting a result",
            crate::platform::describe_exit(exit)
        ),
        Err(err) => format!("child process lost before reporting a result ({err})"),
    };
    let text = match why {
        Some(why) => format!("{death} ({why})"),
        None => death,
    };
    Status::Failed(FetchError::Crashed(text))
}
