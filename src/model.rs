//! What a run is made of: the URLs to fetch ([`Target`]), how each download ended
//! ([`Outcome`], [`Status`]), and the execution models ([`Mode`]). Plain data, shared by every
//! layer above.

use std::path::{Path, PathBuf};
use std::thread::ThreadId;
use std::time::Duration;

use reqwest::Url;

use crate::error::FetchError;

/// A SHA-256 digest.
pub type Sha256Digest = [u8; 32];

/// One URL to fetch; `index` is its place in the input, which results are reported in.
#[derive(Debug, Clone)]
pub struct Target {
    pub index: usize,
    pub url: Url,
    /// The file name the input gave for this URL (`URL<TAB>name`, `URL out=name`), made safe.
    pub name: Option<String>,
    /// The digest the file must have (`URL sha256=HEX` in an input file).
    pub sha256: Option<Sha256Digest>,
    /// The name reserved for it when its line was read (its label until a response names it).
    pub planned: String,
}

/// How a download ended.
#[derive(Debug)]
pub enum Status {
    Saved {
        path: PathBuf,
    },
    /// `--no-clobber` and the file was already there; it was left untouched.
    Skipped {
        path: PathBuf,
    },
    Failed(FetchError),
}

/// The result of one download, reported in input order.
#[derive(Debug)]
pub struct Outcome {
    pub index: usize,
    /// The URL as given (a malformed list line's text, for one that is not a URL).
    pub url: String,
    pub status: Status,
    /// The final response's status code, when one arrived.
    pub http_status: Option<u16>,
    /// Body bytes received in this run (a resumed download counts only what it fetched).
    pub bytes: u64,
    pub elapsed: Duration,
    /// Attempts after the first.
    pub retries: u32,
    /// The file's SHA-256, when it was computed (`--print-sha256`, or a checksum to verify).
    pub sha256: Option<Sha256Digest>,
    /// A `.part` file left for `-c` to resume, when the download did not complete.
    pub partial: Option<PathBuf>,
    /// The OS thread that finished the download: shows how a mode spreads its I/O.
    pub thread: ThreadId,
}

/// What a download learned of itself, whoever ran it: the parts of its [`Outcome`] beyond how
/// it ended (see there).
#[derive(Debug, Default)]
pub struct Facts {
    pub http_status: Option<u16>,
    pub bytes: u64,
    pub retries: u32,
    pub sha256: Option<Sha256Digest>,
    pub partial: Option<PathBuf>,
}

impl Outcome {
    /// How input number `index` (`url`) ended, after `elapsed`, on this thread.
    pub fn new(index: usize, url: String, status: Status, elapsed: Duration, facts: Facts) -> Self {
        let Facts {
            http_status,
            bytes,
            retries,
            sha256,
            partial,
        } = facts;
        Outcome {
            index,
            url,
            status,
            http_status,
            bytes,
            elapsed,
            retries,
            sha256,
            partial,
            thread: std::thread::current().id(),
        }
    }

    pub fn is_failure(&self) -> bool {
        matches!(self.status, Status::Failed(_))
    }

    /// Taken from the input but never started, because the run was cancelled.
    pub fn never_started(&self) -> bool {
        matches!(self.status, Status::Failed(FetchError::NotStarted))
    }

    pub fn is_interrupted(&self) -> bool {
        matches!(&self.status, Status::Failed(err) if err.is_interruption())
    }

    /// `ok`, `skipped`, `interrupted` or `failed`: the status in JSON and in tables.
    pub fn status_word(&self) -> &'static str {
        match self.status {
            Status::Saved { .. } => "ok",
            Status::Skipped { .. } => "skipped",
            Status::Failed(_) if self.is_interrupted() => "interrupted",
            Status::Failed(_) => "failed",
        }
    }

    /// Where the file is (saved, or already there), if anywhere.
    pub fn path(&self) -> Option<&Path> {
        match &self.status {
            Status::Saved { path } | Status::Skipped { path } => Some(path),
            Status::Failed(_) => None,
        }
    }
}

/// How many downloads ended which way.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub ok: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Downloads stopped by Ctrl-C while running (counted in `failed` too).
    pub interrupted: usize,
    /// Downloads taken but never started because of Ctrl-C (not counted elsewhere).
    pub not_started: usize,
    /// Attempts after the first, over all downloads.
    pub retries: u32,
}

/// Hex digits of a digest.
pub fn hex(digest: &Sha256Digest) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A digest from its 64 hex digits.
pub fn parse_hex(hex: &str) -> Option<Sha256Digest> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(digest)
}

/// An execution model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One download after the other, on the calling thread.
    Seq,
    /// One OS thread per URL, all started, then all joined.
    Threads,
    /// `-j` OS worker threads taking URLs from a shared queue.
    Pool,
    /// Tasks on a tokio multi-thread runtime, at most `-j` in flight.
    Async,
    /// `-j` worker processes, each taking downloads one after another (a process pool).
    Procs,
    /// A new child process per download, at most `-j` alive at once.
    Spawn,
}

impl Mode {
    /// How many downloads this mode runs at once, for `files` downloads at width `jobs`.
    pub fn concurrency(self, files: usize, jobs: usize) -> usize {
        match self {
            Mode::Seq => 1,
            Mode::Threads => files,
            Mode::Pool | Mode::Async | Mode::Procs | Mode::Spawn => jobs,
        }
    }

    /// Whether `-j` sets this mode's width (`seq` runs one download at a time, `threads` one
    /// thread per URL, whatever `-j` says).
    pub fn uses_jobs(self) -> bool {
        match self {
            Mode::Seq | Mode::Threads => false,
            Mode::Pool | Mode::Async | Mode::Procs | Mode::Spawn => true,
        }
    }

    /// The mode as a total line or a settings line names it, with its width `jobs` as shown
    /// (`8`, or whatever a width says of itself) where `-j` sets it: `pool, 8 jobs`, `seq`,
    /// `threads`.
    pub fn label(self, jobs: impl std::fmt::Display) -> String {
        match self.uses_jobs() {
            true => match jobs.to_string().as_str() {
                "1" => format!("{self}, 1 job"),
                jobs => format!("{self}, {jobs} jobs"),
            },
            false => self.name().to_owned(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Seq => "seq",
            Mode::Threads => "threads",
            Mode::Pool => "pool",
            Mode::Async => "async",
            Mode::Procs => "procs",
            Mode::Spawn => "spawn",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mode_names_its_width_only_where_jobs_sets_it() {
        assert_eq!(Mode::Seq.label(8), "seq");
        assert_eq!(Mode::Threads.label(8), "threads");
        assert_eq!(Mode::Pool.label(8), "pool, 8 jobs");
        assert_eq!(Mode::Async.label(1), "async, 1 job");
        assert_eq!(Mode::Spawn.label("auto (4)"), "spawn, auto (4) jobs");
        assert_eq!(Mode::Seq.concurrency(10, 8), 1);
        assert_eq!(Mode::Threads.concurrency(10, 8), 10);
    }
}
