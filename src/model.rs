//! What a run is made of: the URLs to fetch ([`Target`]), how each download ended
//! ([`Outcome`], [`Status`]), and the execution models ([`Mode`]). Plain data, shared by every
//! layer above.

use std::path::{Path, PathBuf};
use std::thread::ThreadId;
use std::time::Duration;

use reqwest::Url;

use crate::error::FetchError;

/// A SHA-256 digest.
pub(crate) type Sha256Digest = [u8; 32];

/// One URL to fetch; `index` is its place in the input, which results are reported in.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) index: usize,
    pub(crate) url: Url,
    /// The file name the input gave for this URL (`URL<TAB>name`, `URL out=name`), made safe.
    pub(crate) name: Option<String>,
    /// The digest the file must have (`URL sha256=HEX` in an input file).
    pub(crate) sha256: Option<Sha256Digest>,
    /// The name reserved for it when its line was read (its label until a response names it).
    pub(crate) planned: String,
}

/// How a download ended.
#[derive(Debug)]
pub(crate) enum Status {
    Saved {
        path: PathBuf,
    },
    /// The file was already there, and left untouched: `--no-clobber`, or `-c` and it is
    /// complete.
    Skipped {
        path: PathBuf,
        why: Skip,
    },
    Failed(FetchError),
}

/// Why a download was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Skip {
    /// `--no-clobber`: a file of that name was there.
    Exists,
    /// `-c`: the file there is complete (the server's size is its size).
    Complete,
    /// `-N`: the server's copy is no newer than the file there (304 Not Modified).
    NotModified,
}

impl Skip {
    /// What the end table and the plain lines say.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Skip::Exists => "already exists (--no-clobber)",
            Skip::Complete => "already complete (-c)",
            Skip::NotModified => "not modified on the server (-N)",
        }
    }
}

/// The result of one download, reported in input order.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) index: usize,
    /// The URL as given (a malformed list line's text, for one that is not a URL).
    pub(crate) url: String,
    pub(crate) status: Status,
    /// The final response's status code, when one arrived.
    pub(crate) http_status: Option<u16>,
    /// Body bytes received in this run (a resumed download counts only what it fetched).
    pub(crate) bytes: u64,
    pub(crate) elapsed: Duration,
    /// Attempts after the first.
    pub(crate) retries: u32,
    /// The file's SHA-256, when it was computed (`--print-sha256`, or a checksum to verify).
    pub(crate) sha256: Option<Sha256Digest>,
    /// A `.part` file left for `-c` to resume, when the download did not complete.
    pub(crate) partial: Option<PathBuf>,
    /// The OS thread that finished the download: shows how a mode spreads its I/O.
    pub(crate) thread: ThreadId,
}

/// What a download learned of itself, whoever ran it: the parts of its [`Outcome`] beyond how
/// it ended (see there).
#[derive(Debug, Default)]
pub(crate) struct Facts {
    pub(crate) http_status: Option<u16>,
    pub(crate) bytes: u64,
    pub(crate) retries: u32,
    pub(crate) sha256: Option<Sha256Digest>,
    pub(crate) partial: Option<PathBuf>,
}

impl Outcome {
    /// How input number `index` (`url`) ended, after `elapsed`, on this thread.
    pub(crate) fn new(
        index: usize,
        url: String,
        status: Status,
        elapsed: Duration,
        facts: Facts,
    ) -> Self {
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

    pub(crate) fn is_failure(&self) -> bool {
        matches!(self.status, Status::Failed(_))
    }

    /// Taken from the input but never started, because the run was cancelled.
    pub(crate) fn never_started(&self) -> bool {
        matches!(self.status, Status::Failed(FetchError::NotStarted))
    }

    pub(crate) fn is_interrupted(&self) -> bool {
        matches!(&self.status, Status::Failed(err) if err.is_interruption())
    }

    /// `ok`, `skipped`, `interrupted` or `failed`: the status in JSON and in tables.
    pub(crate) fn status_word(&self) -> &'static str {
        match self.status {
            Status::Saved { .. } => "ok",
            Status::Skipped { .. } => "skipped",
            Status::Failed(_) if self.is_interrupted() => "interrupted",
            Status::Failed(_) => "failed",
        }
    }

    /// Where the file is (saved, or already there), if anywhere.
    pub(crate) fn path(&self) -> Option<&Path> {
        match &self.status {
            Status::Saved { path } | Status::Skipped { path, .. } => Some(path),
            Status::Failed(_) => None,
        }
    }
}

/// How many downloads ended which way.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) ok: usize,
    pub(crate) failed: usize,
    pub(crate) skipped: usize,
    /// Downloads stopped by Ctrl-C while running (counted in `failed` too).
    pub(crate) interrupted: usize,
    /// Downloads taken but never started because of Ctrl-C (not counted elsewhere).
    pub(crate) not_started: usize,
    /// Attempts after the first, over all downloads.
    pub(crate) retries: u32,
}

/// Hex digits of a digest.
pub(crate) fn hex(digest: &Sha256Digest) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A digest from its 64 hex digits.
pub(crate) fn parse_hex(hex: &str) -> Option<Sha256Digest> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(digest)
}

/// An execution model. Each answers for itself what the rest of the program asks of a mode
/// (its name, its width, what carries its downloads), so that besides this file only the
/// engine's dispatch ([`crate::engine::run`]) lists the modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    /// One download after the other, on the calling thread.
    Seq,
    /// A thread per download, started as its line arrives, joined as it ends; as many at once
    /// as the descriptor and thread limits allow.
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

/// How many downloads a mode runs at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Breadth {
    /// One at a time.
    One,
    /// Every download at once (within the process's limits).
    Every,
    /// As many as `-j` says.
    Jobs,
}

impl Breadth {
    /// The width, as the notes and the help say it: `1`, `every download at once`, `-j`.
    pub(crate) fn says(self) -> &'static str {
        match self {
            Breadth::One => "1",
            Breadth::Every => "every download at once",
            Breadth::Jobs => "-j",
        }
    }
}

/// What carries a mode's downloads in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Carrier {
    /// The calling thread.
    Caller,
    /// An OS thread of this process each.
    Threads,
    /// Tasks on an async runtime, many to a thread.
    Tasks,
    /// A worker process each, driven by a thread of the parent.
    Processes,
}

impl Mode {
    /// Every mode, in the order `bench` runs and reports them.
    pub(crate) fn all() -> &'static [Mode] {
        <Mode as clap::ValueEnum>::value_variants()
    }

    /// The modes that `keep` keeps, each as `show` says it, in a sentence's list: `pool, async
    /// and procs`.
    pub(crate) fn list(keep: impl Fn(Mode) -> bool, show: impl Fn(Mode) -> String) -> String {
        let shown: Vec<String> = Mode::all()
            .iter()
            .filter(|&&mode| keep(mode))
            .map(|&mode| show(mode))
            .collect();
        match shown.as_slice() {
            [] => String::new(),
            [one] => one.clone(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        }
    }

    /// How many downloads this mode runs at once.
    pub(crate) fn breadth(self) -> Breadth {
        match self {
            Mode::Seq => Breadth::One,
            Mode::Threads => Breadth::Every,
            Mode::Pool | Mode::Async | Mode::Procs | Mode::Spawn => Breadth::Jobs,
        }
    }

    /// What carries this mode's downloads.
    pub(crate) fn carrier(self) -> Carrier {
        match self {
            Mode::Seq => Carrier::Caller,
            Mode::Threads | Mode::Pool => Carrier::Threads,
            Mode::Async => Carrier::Tasks,
            Mode::Procs | Mode::Spawn => Carrier::Processes,
        }
    }

    /// Whether this mode's downloads run in worker processes (whose CPU time and cookies are
    /// theirs until they report them).
    pub(crate) fn in_processes(self) -> bool {
        self.carrier() == Carrier::Processes
    }

    /// How many downloads this mode runs at once, for `files` downloads at width `jobs`.
    pub(crate) fn concurrency(self, files: usize, jobs: usize) -> usize {
        match self.breadth() {
            Breadth::One => 1,
            Breadth::Every => files,
            Breadth::Jobs => jobs,
        }
    }

    /// Whether `-j` sets this mode's width (`seq` runs one download at a time, `threads` one
    /// thread per URL, whatever `-j` says).
    pub(crate) fn uses_jobs(self) -> bool {
        self.breadth() == Breadth::Jobs
    }

    /// The mode as a total line or a settings line names it, with its width `jobs` as shown
    /// (`8`, or whatever a width says of itself) where `-j` sets it: `pool, 8 jobs`, `seq`,
    /// `threads`.
    pub(crate) fn label(self, jobs: impl std::fmt::Display) -> String {
        match self.uses_jobs() {
            true => match jobs.to_string().as_str() {
                "1" => format!("{self}, 1 job"),
                jobs => format!("{self}, {jobs} jobs"),
            },
            false => self.name().to_owned(),
        }
    }

    /// The mode's name: what `--mode` takes, and what the JSON and the tables say.
    pub(crate) fn name(self) -> &'static str {
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

/// `--shard K/N`: this run takes the URLs whose hash falls in part `index` of `count`
/// (0-based: `0/4` to `3/4`, as `JOB_COMPLETION_INDEX` and Slurm's `--array=0-3` count).
///
/// By a hash of the URL, not by line number: a URL stays in its shard when lines are
/// inserted, removed or reordered, so a re-run with `-c` over an edited list finds each
/// `.part` where that shard left it, and a URL given twice lands twice in one shard (where its
/// names are kept apart). The split is balanced only statistically (see the test below),
/// which is what lists long enough to shard need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Shard {
    pub(crate) index: u64,
    pub(crate) count: u64,
}

impl Shard {
    /// Parses `K/N` with `0 <= K < N`.
    pub(crate) fn parse(text: &str) -> Result<Shard, String> {
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not of the form K/N (e.g. 0/4)"))?;
        let number = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| format!("{s:?} in {text:?} is not a whole number"))
        };
        let (index, count) = (number(k)?, number(n)?);
        if count == 0 {
            return Err(format!("{text:?}: N must be at least 1"));
        }
        if index >= count {
            return Err(format!(
                "{text:?}: shards are numbered from 0, so K goes from 0 to {} (0/{count} .. {}/{count})",
                count - 1,
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// Whether the URL (or list line) `key` belongs to this shard: FNV-1a 64 of its bytes,
    /// mixed by splitmix64's finaliser, mapped onto `0..count` by multiply-high (so that every
    /// bit of the hash counts, not only the low ones).
    pub(crate) fn holds(&self, key: &str) -> bool {
        shard_of(key, self.count) == self.index
    }
}

/// The shard of `count` that `key` falls in (see [`Shard::holds`]).
pub fn shard_of(key: &str, count: u64) -> u64 {
    let mut h = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    ((u128::from(h) * u128::from(count)) >> 64) as u64
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_numbered_from_zero_and_checked() {
        assert_eq!(Shard::parse("0/4"), Ok(Shard { index: 0, count: 4 }));
        assert_eq!(Shard::parse("3/4"), Ok(Shard { index: 3, count: 4 }));
        let err = Shard::parse("4/4").unwrap_err();
        assert!(
            err.contains("numbered from 0") && err.contains("3/4"),
            "{err}"
        );
        assert!(Shard::parse("0/0").unwrap_err().contains("at least 1"));
        assert!(Shard::parse("1").unwrap_err().contains("K/N"));
        assert!(Shard::parse("a/2").unwrap_err().contains("whole number"));
        assert!(Shard::parse("-1/2").is_err());
    }

    #[test]
    fn every_url_is_in_exactly_one_shard_and_shards_are_balanced() {
        let count = 8;
        let mut sizes = [0usize; 8];
        for i in 0..80_000 {
            let url = format!("https://example.com/images/{i}.jpg");
            let holders: Vec<u64> = (0..count)
                .filter(|&k| Shard { index: k, count }.holds(&url))
                .collect();
            assert_eq!(holders.len(), 1, "{url}: {holders:?}");
            sizes[holders[0] as usize] += 1;
        }
        for size in sizes {
            // 10,000 expected; the binomial σ is ~94.
            assert!((9_600..10_400).contains(&size), "{sizes:?}");
        }
    }

    #[test]
    fn the_split_is_pinned() {
        // Users may compute it elsewhere (README): a change would move URLs between shards
        // of a half-done run.
        let shards: Vec<u64> = ["http://a/1", "http://a/2", "http://a/3", "http://a/4"]
            .iter()
            .map(|url| shard_of(url, 4))
            .collect();
        assert_eq!(shards, [2, 1, 3, 2]);
    }

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

    #[test]
    fn a_mode_has_one_name_for_clap_serde_and_the_schema() {
        use clap::ValueEnum;
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../schema.json")).unwrap();
        let listed = &schema["$defs"]["summary"]["properties"]["mode"]["enum"];
        let names: Vec<&str> = Mode::all().iter().map(|m| m.name()).collect();
        assert_eq!(
            *listed,
            serde_json::json!(names),
            "schema.json lists other modes"
        );
        // And says which modes `jobs` is for.
        let jobs = schema["$defs"]["summary"]["properties"]["jobs"]["description"]
            .as_str()
            .unwrap();
        let with: Vec<&str> = Mode::all()
            .iter()
            .filter(|m| m.uses_jobs())
            .map(|m| m.name())
            .collect();
        let without = Mode::list(|m| !m.uses_jobs(), |m| m.to_string());
        assert!(
            jobs.contains(&format!("({})", with.join(", ")))
                && jobs.ends_with(&format!("null for {without}")),
            "{jobs}"
        );
        for &mode in Mode::all() {
            let clap = mode.to_possible_value().unwrap();
            assert_eq!(clap.get_name(), mode.name());
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.name());
        }
    }

    #[test]
    fn modes_are_listed_from_their_answers() {
        let quoted = |m: Mode| format!("`{m}`");
        assert_eq!(
            Mode::list(Mode::uses_jobs, quoted),
            "`pool`, `async`, `procs` and `spawn`"
        );
        assert_eq!(
            Mode::list(Mode::in_processes, |m| m.to_string()),
            "procs and spawn"
        );
        assert_eq!(
            Mode::list(
                |m| !m.uses_jobs(),
                |m| format!("{m} {}", m.breadth().says())
            ),
            "seq 1 and threads every download at once"
        );
        assert_eq!(Mode::list(|_| false, quoted), "");
    }
}
