//! The command line, as clap derive types. [`crate::config`] turns these into checked settings.

use std::path::PathBuf;

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::auth::{Auth, Credentials};
use crate::engine::PROCS_AUTO;
use crate::fetch::policy::{Policy, Segments};
use crate::fetch::trace::Verbose;
use crate::http::{MAX_REDIRECTS, Resolve};
use crate::man::Page;
use crate::model::{Mode, Shard};
use crate::procs::CHILD_COMMAND;
use crate::report::TableRows;
use crate::server::ServeArgs;
use crate::units;
use crate::width::{Jobs, MAX_H1, MAX_H2};

const AFTER_HELP: &str = "\
Examples:
  fetchbench https://example.com/a.iso https://example.com/b.iso -o downloads
  fetchbench -i urls.txt -o out --mode async -j 16
  grep -v '^#' urls.txt | fetchbench -i - -o out --json > results.jsonl
  fetchbench bench                     # compare the modes on the built-in server

Pipelines:
  producer | fetchbench -i - -o out -q | consumer
  URLs are read as they arrive (the first download starts with the first line) and each
  result is written as its download ends; --keep-order prints them in input order.

Output:
  stdout: the path of each saved file, one per line (with --json: one JSON object per
  download, then a summary object), as downloads end. stderr: progress and the human summary
  (the failures and the slowest downloads; --table full for every one).

Across machines:
  fetchbench --shard 0/4 -i urls.txt -o out-0 ... --shard 3/4 -i urls.txt -o out-3
  Every URL is in exactly one shard (by a hash of the URL: a URL keeps its shard when the
  list changes); shards count from 0, as $JOB_COMPLETION_INDEX and $SLURM_ARRAY_TASK_ID do.

URL lists (-i): one URL per line, optionally followed by `sha256=HEX` (the file must have that
SHA-256, checked before it gets its name) and `out=NAME` (or a TAB and a name with spaces);
see `--help` on -i. A line that is not a URL fails alone, with its file:line; the other
lines go on.

Ctrl-C (or SIGTERM) stops starting downloads, stops those running (keeping their .part files
for -c) and prints the summary; a second one quits at once.

A name the server chose (Content-Disposition, or the last segment after a redirect) never
replaces a file that was in the output directory: it gets a counter (notes-1.txt) and the run
says so. A name from your own URL or list replaces an older file (unless --no-clobber).

Exit status:
  0    every download succeeded
  1    at least one download (or URL list line) failed (the others still completed), or the
       results could not be written to stdout (the files are saved)
  2    usage or setup error (bad URL argument, unusable output directory, -o naming a
       file); nothing was downloaded
  130  interrupted by Ctrl-C (SIGINT)
  143  terminated by SIGTERM";

/// `-h`'s after-help: the pointer to the rest.
const SHORT_AFTER_HELP: &str = "\
Examples:
  fetchbench https://example.com/a.iso https://example.com/b.iso -o downloads
  fetchbench -i urls.txt -o out --mode async -j 16
  fetchbench bench                 # compare the modes on the built-in server

--help tells more: pipelines, URL list syntax, Ctrl-C, exit status.";

/// `-i`'s long help (`--help`): the syntax of a URL list line.
const INPUT_LONG_HELP: &str = "\
Read URLs from FILE, one per line (`-` for stdin). Blank lines and lines starting
with `#` are skipped. Each line is a URL, optionally followed by settings for it:

  URL sha256=HEX    the file must have this SHA-256 (64 hex digits), checked
                    before it gets its name; a mismatch fails that URL
  URL out=NAME      save as NAME (made safe: one plain name inside -o, kept
                    distinct from the other names)
  URL<TAB>NAME      the same, for a NAME with spaces (all after the TAB)

They combine: `URL sha256=HEX out=NAME`, or `URL sha256=HEX<TAB>NAME`.";

/// `-j`'s long help; which modes it is for, from the modes.
fn jobs_long_help() -> String {
    format!(
        "Downloads at once: N, or auto\n\n\
         For {}. `auto` finds the width from what the run measures: wider while files/s or \
         bytes/s rise, narrower when they fall or the server pushes back (429, 503, refused \
         streams and connections); at most {MAX_H1} connections over HTTP/1.1 and {MAX_H2} \
         streams over HTTP/2; {} run {PROCS_AUTO} processes. A number is exact (to compare \
         modes like for like). -j does not set the width of {}.",
        Mode::list(Mode::uses_jobs, |mode| mode.to_string()),
        Mode::list(Mode::in_processes, |mode| mode.to_string()),
        Mode::list(
            |mode| !mode.uses_jobs(),
            |mode| format!("`{mode}` ({})", mode.breadth().says())
        ),
    )
}

/// `--save-cookies`' long help; which modes have worker processes, from the modes.
fn save_cookies_long_help() -> String {
    format!(
        "Write the cookies (loaded and set by servers) to FILE at the end, in the same \
         format\n\n\
         Written atomically (a complete new file replaces the old one), session cookies \
         included with expiry 0 (as curl -c). In --mode {}, cookies a server sets reach the \
         file but not the other workers during the run.",
        Mode::list(Mode::in_processes, |mode| mode.to_string()),
    )
}

/// `bench -j`'s help: the modes it sets the width of.
fn bench_jobs_help() -> String {
    format!(
        "Downloads at once in {} modes",
        Mode::list(Mode::uses_jobs, |mode| format!("`{mode}`"))
    )
}

/// What the hidden worker command is for.
fn child_about() -> String {
    format!(
        "Internal to --mode {}: a worker process, driven by the parent over pipes.",
        Mode::list(Mode::in_processes, |mode| mode.to_string())
    )
}

/// Download many files at once, and measure what each concurrency model buys you.
#[derive(Parser, Debug)]
#[command(name = "fetchbench", version, after_help = SHORT_AFTER_HELP, after_long_help = AFTER_HELP)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
#[command(propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,

    #[command(flatten)]
    pub(crate) download: DownloadArgs,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Compare the modes side by side
    ///
    /// On the built-in server unless URLs are given.
    Bench(BenchArgs),
    /// Serve synthetic files on 127.0.0.1
    ///
    /// Deterministic files, with optional latency and bandwidth.
    Serve(ServeArgs),
    /// Print a shell completion script
    ///
    /// For bash, zsh, fish, powershell or elvish.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff)
    ///
    /// E.g. `fetchbench man > fetchbench.1`, `fetchbench man bench > fetchbench-bench.1`.
    Man {
        #[arg(value_enum, default_value_t = Page::Fetchbench)]
        page: Page,
    },
    // Internal to the modes with worker processes: a worker, driven by the parent over pipes.
    #[command(name = CHILD_COMMAND, hide = true, about = child_about())]
    Child,
}

/// Downloading: the default command.
#[derive(Args, Debug, Clone)]
pub(crate) struct DownloadArgs {
    /// URLs to download (http or https; `host/path` means http://host/path)
    #[arg(value_name = "URL")]
    pub(crate) urls: Vec<String>,

    /// Read URLs from FILE, one per line (`-`: stdin)
    #[arg(short, long, value_name = "FILE", long_help = INPUT_LONG_HELP)]
    pub(crate) input: Option<PathBuf>,

    /// Take only shard K of N (0-based) of the URLs
    ///
    /// Split by a hash of each URL.
    ///
    /// Every URL (argument or list line) is in exactly one of the N shards, whatever the order
    /// or the other lines of the list: run `--shard 0/4` to `--shard 3/4` on four machines (or
    /// from $JOB_COMPLETION_INDEX, $SLURM_ARRAY_TASK_ID) over the same list, each with its
    /// own -o, and each file is fetched once; a re-run with -c resumes only its shard's files.
    /// The list is still read as a stream (the other shards' lines are skipped).
    #[arg(long, value_name = "K/N", value_parser = Shard::parse)]
    pub(crate) shard: Option<Shard>,

    /// Directory to save files in
    ///
    /// Created if missing. Always a directory (as wget's -P and aria2c's -d): an existing file there is a usage
    /// error. To name the file of one URL, use -O NAME (curl's -o, wget's -O), or `URL
    /// out=NAME` in a list.
    #[arg(
        short,
        long,
        visible_short_alias = 'P',
        value_name = "DIR",
        default_value = ".",
        help_heading = "Output"
    )]
    pub(crate) output: PathBuf,

    /// Save the one URL given as FILE (curl's -o)
    ///
    /// FILE may have a directory (`-O out/latest.iso`), which then works as -o. It takes
    /// exactly one URL argument (no -i); `-` (stdout) is not supported: files are written
    /// whole or not at all.
    #[arg(
        short = 'O',
        long = "output-document",
        value_name = "FILE",
        conflicts_with_all = ["input", "output"],
        help_heading = "Output"
    )]
    pub(crate) output_document: Option<PathBuf>,

    /// Request and response heads on stderr (curl -v)
    ///
    /// Credentials show as ***.
    ///
    /// `> GET /path HTTP/1.1` and `> Name: value` for what is sent (the method, the URL and
    /// the headers fetchbench sets; reqwest does not expose the bytes on the wire), `<
    /// HTTP/1.1 200 OK` and `< name: value` for the final response (`* redirected to URL`
    /// after redirects). Authorization, Proxy-Authorization, Cookie and Set-Cookie values and a
    /// URL's password show as ***. Shown above the progress bars, and also with -q.
    #[arg(short, long, help_heading = "Output")]
    pub(crate) verbose: bool,

    /// Only failures on stderr; -qq: nothing
    ///
    /// -q is curl's -sS and wget's -nv: no progress and no summary, but each failure still
    /// gets one line on stderr (its URL and why), so a script's log says what went wrong; the
    /// exit status says it too. -qq (or --silent) prints nothing on stderr but usage errors,
    /// as curl's -s and wget's -q.
    #[arg(short, long, action = clap::ArgAction::Count, help_heading = "Output")]
    pub(crate) quiet: u8,

    /// The same as -qq: nothing on stderr but usage errors
    #[arg(long, hide_short_help = true, help_heading = "Output")]
    pub(crate) silent: bool,

    /// JSON lines on stdout (downloads, a summary)
    #[arg(long, help_heading = "Output")]
    pub(crate) json: bool,

    /// Results in input order, not as they end
    ///
    /// Paths or JSON lines; only results that arrive before an earlier one are held back.
    #[arg(long, help_heading = "Output")]
    pub(crate) keep_order: bool,

    /// The table at the end: `short` or `full`
    ///
    /// `short` lists the failures and the 5 slowest downloads, `full` every download (kept in
    /// memory until the end).
    #[arg(long, value_name = "ROWS", value_enum, default_value_t = TableRows::Short, hide_short_help = true, help_heading = "Output")]
    pub(crate) table: TableRows,

    /// Keep existing files: skip their URLs, and say so
    #[arg(long, help_heading = "Output")]
    pub(crate) no_clobber: bool,

    /// Skip unless the server's copy is newer (wget -N)
    ///
    /// Asks with If-Modified-Since the file's mtime; 304 Not Modified keeps it, reported as
    /// skipped.
    #[arg(short = 'N', long, help_heading = "Output")]
    pub(crate) timestamping: bool,

    /// Leave a saved file's mtime at the time of download, not the server's Last-Modified
    /// (which it is by default, as wget; curl -R)
    #[arg(long, hide_short_help = true, help_heading = "Output")]
    pub(crate) no_use_server_timestamps: bool,

    /// Name files as the server's Content-Disposition suggests
    ///
    /// The name is made safe like any other, and never replaces a file that was in the output
    /// directory before.
    #[arg(long, hide_short_help = true, help_heading = "Output")]
    pub(crate) content_disposition: bool,

    /// Colors on stderr
    ///
    /// `auto`: on a terminal, unless NO_COLOR is set.
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = ColorChoice::Auto, hide_short_help = true, help_heading = "Output")]
    pub(crate) color: ColorChoice,

    /// How downloads are scheduled
    #[arg(short, long, value_enum, default_value_t = Mode::Async, help_heading = "Concurrency")]
    pub(crate) mode: Mode,

    /// Downloads at once: N, or auto
    #[arg(short, long, value_name = "N|auto", default_value = "auto", value_parser = Jobs::parse, long_help = jobs_long_help(), help_heading = "Concurrency")]
    pub(crate) jobs: Jobs,

    /// Fetch each file as N ranges at once
    ///
    /// N ranges over N connections, when the server serves ranges and the file is large
    /// enough (segments of at least 1 MiB; `auto`: one per 8 MiB, at most 8).
    #[arg(short, long, value_name = "N|auto", default_value = "1", value_parser = Segments::parse, help_heading = "Concurrency")]
    pub(crate) segments: Segments,

    /// At most N connections to one host at once
    ///
    /// -j stays the overall cap.
    #[arg(long, value_name = "N", value_parser = parse_at_least_one, help_heading = "Concurrency", hide_short_help = true)]
    pub(crate) max_per_host: Option<usize>,

    /// Cap the whole run's download rate, e.g. 2MiB/s
    #[arg(long, value_name = "RATE", value_parser = units::parse_rate, help_heading = "Concurrency")]
    pub(crate) limit_rate: Option<u64>,

    /// Wait DUR between the starts of two downloads, e.g. 200ms
    #[arg(long, value_name = "DUR", value_parser = units::parse_duration, hide_short_help = true, help_heading = "Concurrency")]
    pub(crate) wait: Option<Duration>,

    /// Extra request header (repeatable)
    ///
    /// E.g. -H "X-Api-Key: x". Sent to the origin of each URL given (and its redirects within
    /// that origin); a redirect to another origin goes without them, unless
    /// --location-trusted.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header, help_heading = "Network")]
    pub(crate) headers: Vec<(String, String)>,

    /// Send -H headers on redirects to other origins too (as curl's --location-trusted)
    #[arg(long, help_heading = "Network", hide_short_help = true)]
    pub(crate) location_trusted: bool,

    /// User-Agent header
    #[arg(
        short = 'A',
        long,
        value_name = "TEXT",
        hide_short_help = true,
        help_heading = "Network"
    )]
    pub(crate) user_agent: Option<String>,

    /// Send `Referer: URL` (default: no Referer at all)
    ///
    /// Without it, no Referer is sent, not even on redirects.
    #[arg(
        short = 'e',
        long,
        value_name = "URL",
        hide_short_help = true,
        help_heading = "Network"
    )]
    pub(crate) referer: Option<String>,

    /// Send every request through this proxy
    ///
    /// Default: HTTP_PROXY, HTTPS_PROXY, ALL_PROXY (and NO_PROXY) from the environment.
    #[arg(long, value_name = "URL", help_heading = "Network")]
    pub(crate) proxy: Option<String>,

    /// Hosts to reach without the proxy (overrides NO_PROXY)
    ///
    /// Comma-separated; `*` for all.
    #[arg(
        long,
        value_name = "LIST",
        hide_short_help = true,
        help_heading = "Network"
    )]
    pub(crate) noproxy: Option<String>,

    /// Do not check TLS certificates (said loudly)
    ///
    /// The summary ends with a warning that the certificates were not checked.
    #[arg(short = 'k', long, help_heading = "Network")]
    pub(crate) insecure: bool,

    /// Speak HTTP/1.1 only
    #[arg(
        long = "http1.1",
        conflicts_with = "http2",
        hide_short_help = true,
        help_heading = "Network"
    )]
    pub(crate) http1_1: bool,

    /// Speak HTTP/2 with prior knowledge, also over plain http://
    #[arg(long, hide_short_help = true, help_heading = "Network")]
    pub(crate) http2: bool,

    /// Also trust the PEM certificate(s) in FILE
    ///
    /// E.g. a self-signed server's.
    #[arg(long, value_name = "FILE", help_heading = "Network")]
    pub(crate) cacert: Vec<PathBuf>,

    /// Connect to ADDR for HOST instead of asking DNS (curl's syntax; repeatable)
    ///
    /// `HOST:PORT:ADDR[,ADDR...]`, an IPv6 ADDR in brackets (`example.com:443:[::1]`). The
    /// Host header, TLS name and certificate check stay HOST's. reqwest resolves names without
    /// ports, so the addresses serve HOST at any port (the URL's port is used).
    #[arg(long, value_name = "HOST:PORT:ADDR", value_parser = Resolve::parse, help_heading = "Network", hide_short_help = true)]
    pub(crate) resolve: Vec<Resolve>,

    /// Connect over IPv4 only
    #[arg(
        short = '4',
        long = "ipv4",
        conflicts_with = "ipv6",
        help_heading = "Network",
        hide_short_help = true
    )]
    pub(crate) ipv4: bool,

    /// Connect over IPv6 only
    #[arg(
        short = '6',
        long = "ipv6",
        help_heading = "Network",
        hide_short_help = true
    )]
    pub(crate) ipv6: bool,

    /// Give up connecting after DUR
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = units::parse_positive_duration, hide_short_help = true, help_heading = "Network")]
    pub(crate) connect_timeout: Duration,

    // Credentials, compression, redirects: -u, --netrc, --netrc-file, --compressed, --max-redirs.
    /// Basic auth for the hosts of the URLs given
    ///
    /// E.g. -u alice:s3cret. Sent to the host of each URL given (and on redirects within its
    /// origin); a redirect to another host, port or scheme drops it. Wins over --netrc;
    /// credentials in a URL (https://user:pass@host/) win over both.
    #[arg(short = 'u', long = "user", value_name = "USER:PASS", value_parser = Credentials::parse, help_heading = "Network")]
    pub(crate) user: Option<Credentials>,

    /// Credentials per host from ~/.netrc
    ///
    /// Each URL given gets the entry of its host (`machine NAME login USER password PASS`,
    /// names compared without case), else the `default` entry; a host reached only by a
    /// redirect gets none. No ~/.netrc is no error.
    #[arg(long, help_heading = "Network")]
    pub(crate) netrc: bool,

    /// Like --netrc, from FILE
    #[arg(
        long,
        value_name = "FILE",
        hide_short_help = true,
        help_heading = "Network"
    )]
    pub(crate) netrc_file: Option<PathBuf>,

    /// Ask for gzip, br or zstd and save the body decoded
    ///
    /// Sends Accept-Encoding: zstd,gzip,br and decodes what comes; a decoded body is not
    /// checked against the Content-Length of its encoded bytes. No Range requests then (an
    /// encoded body's ranges are not the file's): -s has no effect, and a retry or -c starts
    /// the file over. Without this flag nothing is asked for or decoded. Needs the
    /// `compressed` cargo feature (on by default).
    #[arg(long, help_heading = "Network")]
    pub(crate) compressed: bool,

    /// Send cookies from FILE (the Netscape cookie-jar format of curl -b/-c, wget, aria2c)
    ///
    /// Each request gets the cookies whose domain, path and secure flag match its URL (also
    /// after redirects); cookies servers set are kept for the rest of the run. A line holds
    /// seven fields apart by TABs: domain, subdomains, path, secure, expiry, name, value
    /// (`#HttpOnly_` before the domain included); expired cookies are dropped.
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Network",
        hide_short_help = true
    )]
    pub(crate) load_cookies: Option<PathBuf>,

    /// Write the cookies (loaded and set by servers) to FILE at the end, in the same format
    #[arg(
        long,
        value_name = "FILE",
        long_help = save_cookies_long_help(),
        help_heading = "Network",
        hide_short_help = true
    )]
    pub(crate) save_cookies: Option<PathBuf>,

    /// Follow at most N redirects (0: none)
    ///
    /// With 0, a redirect fails the download.
    #[arg(long, value_name = "N", default_value_t = MAX_REDIRECTS, hide_short_help = true, help_heading = "Network")]
    pub(crate) max_redirs: usize,

    /// Retries per URL on transient faults
    ///
    /// Connection errors, timeouts, 408, 429, 5xx, bodies cut short. A refused connection
    /// only with --retry-connrefused.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 3,
        help_heading = "Reliability"
    )]
    pub(crate) retries: u32,

    /// Retry a refused connection too
    ///
    /// A connection refused (nothing listens: a wrong port, a server down) fails at once by
    /// default, as in curl and wget, which retry it only with this same flag.
    #[arg(long, hide_short_help = true, help_heading = "Reliability")]
    pub(crate) retry_connrefused: bool,

    /// First backoff between attempts; doubles each retry
    ///
    /// With jitter.
    #[arg(long, value_name = "DUR", default_value = "500ms", value_parser = units::parse_duration, hide_short_help = true, help_heading = "Reliability")]
    pub(crate) retry_delay: Duration,

    /// Fail (or retry) a download silent for DUR
    ///
    /// A download that receives no byte for DUR; also the longest wait for a response head (a
    /// header timeout).
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = units::parse_positive_duration, hide_short_help = true, help_heading = "Reliability")]
    pub(crate) stall_timeout: Duration,

    /// Give up on one download after DUR, retries included
    ///
    /// All its attempts together (default: no limit).
    #[arg(long, value_name = "DUR", value_parser = units::parse_positive_duration, help_heading = "Reliability")]
    pub(crate) max_time: Option<Duration>,

    /// Refuse a file larger than SIZE
    ///
    /// Before its body when the size is announced; cut and failed when it grows past it
    /// (default: no limit).
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size, hide_short_help = true, help_heading = "Reliability")]
    pub(crate) max_filesize: Option<u64>,

    /// Fail (or retry) a download slower than RATE
    ///
    /// Measured over --speed-time, e.g. 1KiB/s (default: no minimum).
    #[arg(short = 'Y', long, value_name = "RATE", value_parser = units::parse_rate, hide_short_help = true, help_heading = "Reliability")]
    pub(crate) speed_limit: Option<u64>,

    /// The window --speed-limit is measured over
    #[arg(short = 'y', long, value_name = "DUR", default_value = "30s", value_parser = units::parse_positive_duration, hide_short_help = true, help_heading = "Reliability")]
    pub(crate) speed_time: Duration,

    /// Resume `.part` files left by an earlier run
    ///
    /// Only what the `.part`'s record (`NAME.part.fbstate`) proves is kept, and `If-Range`
    /// makes a file changed on the server start over. A file already complete (the server has
    /// no bytes after its end) is skipped, as wget -c does.
    #[arg(short = 'c', long = "continue", help_heading = "Reliability")]
    pub(crate) resume: bool,

    /// Show each file's SHA-256 in the summary and JSON
    ///
    /// URL lists may also give `URL sha256=HEX` to verify.
    #[arg(long, help_heading = "Reliability", hide_short_help = true)]
    pub(crate) print_sha256: bool,
}

impl DownloadArgs {
    /// The rules of every download these flags ask for: a flag that changes what each
    /// download does is read here, beside its definition, and acts where its [`Policy`] field
    /// is used. `auth` and `verbose` are what [`crate::config`] made of `-u`, netrc and `-v`.
    pub(crate) fn policy(&self, auth: Auth, verbose: Option<Verbose>) -> Policy {
        Policy {
            retries: self.retries,
            retry_connrefused: self.retry_connrefused,
            retry_delay: self.retry_delay,
            stall_timeout: self.stall_timeout,
            resume: self.resume,
            content_disposition: self.content_disposition,
            sha256: self.print_sha256,
            no_clobber: self.no_clobber,
            segments: self.segments,
            max_filesize: self.max_filesize,
            max_time: self.max_time,
            speed_limit: self.speed_limit,
            speed_time: self.speed_time,
            auth,
            ranges: !self.compressed,
            verbose,
            server_timestamps: !self.no_use_server_timestamps,
            timestamping: self.timestamping,
            headers: self.headers.clone(),
            location_trusted: self.location_trusted,
            max_redirects: self.max_redirs,
        }
    }
}

/// When to use colors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// `Name: value` → (name, value).
fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("{s:?} is not of the form \"Name: value\"")),
    }
}

const BENCH_AFTER_HELP: &str = "\
Examples:
  fetchbench bench                                  # 32 × 256 KiB, 100 ms latency, built in
  fetchbench bench --latency 200ms --files 50 --modes seq,pool
  fetchbench bench -i urls.txt --runs 10 --export-markdown bench.md
  fetchbench bench --rtt 50ms --tls --latency 0ms   # over an emulated path, HTTPS and HTTP/2

Exit status: 0 if every run of every mode downloaded and verified every file, 1 otherwise,
2 on a usage or setup error.";

/// `fetchbench bench`: every mode, several runs each, on the same downloads.
#[derive(Args, Debug, Clone)]
#[command(after_help = BENCH_AFTER_HELP)]
pub(crate) struct BenchArgs {
    /// URLs to download in every run (default: the built-in server's workload)
    #[arg(value_name = "URL")]
    pub(crate) urls: Vec<String>,

    /// Read the URLs from FILE, one per line (`-` for stdin)
    #[arg(short, long, value_name = "FILE", long_help = INPUT_LONG_HELP)]
    pub(crate) input: Option<PathBuf>,

    /// Modes to compare, comma-separated
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Mode::all().to_vec())]
    pub(crate) modes: Vec<Mode>,

    // Downloads at once in the modes -j sets the width of.
    #[arg(short, long, value_name = "N", default_value_t = 8, value_parser = parse_at_least_one, help = bench_jobs_help())]
    pub(crate) jobs: usize,

    /// Timed runs per mode
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = parse_at_least_one)]
    pub(crate) runs: usize,

    /// Untimed runs per mode before the timed ones
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) warmup: usize,

    /// Write every statistic and every run's time as JSON to FILE
    #[arg(long, value_name = "FILE")]
    pub(crate) export_json: Option<PathBuf>,

    /// Write the results table as Markdown to FILE
    #[arg(long, value_name = "FILE")]
    pub(crate) export_markdown: Option<PathBuf>,

    /// Keep each run's download directory instead of removing it
    #[arg(long)]
    pub(crate) keep: bool,

    /// Hash every file (SHA-256) as it arrives: a CPU-bound stage, to see how each mode spreads
    /// it over cores (compare the CPU column with wall time)
    #[arg(long)]
    pub(crate) print_sha256: bool,

    /// Also trust the PEM certificate(s) in FILE
    #[arg(long, value_name = "FILE")]
    pub(crate) cacert: Vec<PathBuf>,

    /// Speak HTTP/1.1 only (default: HTTP/2 where TLS negotiates it)
    #[arg(long = "http1.1", conflicts_with = "http2")]
    pub(crate) http1_1: bool,

    /// Speak HTTP/2 with prior knowledge, also over plain http://
    #[arg(long)]
    pub(crate) http2: bool,

    /// Built-in workload: number of files
    #[arg(
        long,
        value_name = "N",
        default_value_t = 32,
        help_heading = "Built-in server"
    )]
    pub(crate) files: usize,

    /// Built-in workload: size of each file (e.g. 256KiB, 1.5MB)
    #[arg(long, value_name = "SIZE", default_value = "256KiB", value_parser = units::parse_size, help_heading = "Built-in server")]
    pub(crate) size: u64,

    /// Built-in workload: delay before each response head (e.g. 100ms, 1s)
    #[arg(long, value_name = "DUR", default_value = "100ms", value_parser = units::parse_duration, help_heading = "Built-in server")]
    pub(crate) latency: Duration,

    /// Built-in workload: faults to inject, as `fetchbench serve` takes them (e.g. fail=1,
    /// cut=64KiB, status=503&fail=2, stall=1s&fail=1); downloads then retry (3 times, 500 ms
    /// backoff), so the times show what retries cost in each mode
    #[arg(long, value_name = "QUERY", value_parser = parse_fault, help_heading = "Built-in server")]
    pub(crate) fault: Option<String>,

    /// Built-in workload: bandwidth per response (e.g. 10MiB/s; unlimited if absent)
    #[arg(long, value_name = "RATE", value_parser = units::parse_rate, help_heading = "Built-in server")]
    pub(crate) rate: Option<u64>,

    /// Built-in server: emulate a network path with this round trip (e.g. 50ms), handshakes
    /// included (see `fetchbench serve --help`)
    #[arg(long, value_name = "DUR", default_value = "0", value_parser = units::parse_duration, help_heading = "Built-in server")]
    pub(crate) rtt: Duration,

    /// Built-in server: bandwidth cap per connection, paced (e.g. 32MiB/s; shared by the
    /// HTTP/2 streams of a connection)
    #[arg(long, value_name = "RATE", value_parser = units::parse_rate, help_heading = "Built-in server")]
    pub(crate) link_rate: Option<u64>,

    /// Built-in server: HTTPS with a self-signed certificate, trusted by the bench itself
    /// (HTTP/2 by ALPN)
    #[arg(long, help_heading = "Built-in server")]
    pub(crate) tls: bool,

    /// Built-in server: HTTP/2 streams allowed at once per connection
    #[arg(long, value_name = "N", default_value_t = crate::server::DEFAULT_MAX_STREAMS, help_heading = "Built-in server")]
    pub(crate) max_streams: u32,
}

/// `--fault`: `key=value` pairs joined by `&`, keys among the server's fault parameters.
fn parse_fault(s: &str) -> Result<String, String> {
    const KEYS: [&str; 5] = ["status", "fail", "cut", "stall", "retry_after"];
    for pair in s.split('&') {
        match pair.split_once('=') {
            Some((key, value))
                if KEYS.contains(&key)
                    && !value.is_empty()
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.') => {}
            _ => {
                return Err(format!(
                    "{pair:?}: expected KEY=VALUE with KEY one of {} (joined by &)",
                    KEYS.join(", ")
                ));
            }
        }
    }
    Ok(s.to_owned())
}

fn parse_at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn zero_jobs_is_refused() {
        let err = Cli::try_parse_from(["fetchbench", "-j", "0", "http://a/"]).unwrap_err();
        assert!(err.to_string().contains("must be at least 1"), "{err}");
    }

    #[test]
    fn jobs_default_to_auto_and_take_a_number() {
        let cli = Cli::try_parse_from(["fetchbench", "http://a/"]).unwrap();
        assert_eq!(cli.download.jobs, Jobs::Auto);
        assert_eq!(cli.download.mode, Mode::Async);
        let cli = Cli::try_parse_from(["fetchbench", "-j", "16", "http://a/"]).unwrap();
        assert_eq!(cli.download.jobs, Jobs::Fixed(16));
    }

    #[test]
    fn async_is_a_mode_name() {
        let cli = Cli::try_parse_from(["fetchbench", "--mode", "async", "http://a/"]).unwrap();
        assert_eq!(cli.download.mode, Mode::Async);
    }
}
