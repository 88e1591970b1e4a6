//! From command-line arguments to a checked [`Config`]: every URL parsed, the output directory
//! usable, the display decided. Nothing past this module sees clap types, and nothing is
//! downloaded until all of it holds (the lines of a URL list are checked as they are read).

use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::auth::{Auth, Netrc};
use crate::cli::{ColorChoice, DownloadArgs};
use crate::fetch::naming::PART_SUFFIX;
use crate::fetch::policy::Policy;
use crate::fetch::throttle::Throttle;
use crate::http::{HttpOptions, HttpSettings, HttpVersion};
use crate::input::Input;
use crate::model::Mode;
use crate::progress::Drawing;
use crate::results::Printing;

/// A validated download run.
pub struct Config {
    /// The URLs: arguments checked, the list opened, read as the run goes.
    pub input: Input,
    pub output_dir: PathBuf,
    /// Whether the output directory already held `.part` files.
    pub parts_on_disk: bool,
    pub mode: Mode,
    /// Width of `pool`, `async`, `procs` and `spawn` (`-j`).
    pub jobs: usize,
    pub http: HttpSettings,
    pub policy: Policy,
    pub throttle: Throttle,
    /// What stdout gets, and in which order.
    pub printing: Printing,
    /// Whether the human summary is printed on stderr.
    pub summary: bool,
    /// Colors on stderr.
    pub color: bool,
    pub display: Drawing,
}

impl Config {
    /// Checks `args`; `-i -` will read `stdin`.
    pub fn from_args(args: &DownloadArgs, stdin: Box<dyn Read + Send>) -> Result<Config> {
        let input = Input::open(&args.urls, args.input.as_deref(), stdin)?;
        let http = HttpSettings::new(HttpOptions {
            headers: args.headers.clone(),
            user_agent: args
                .user_agent
                .clone()
                .unwrap_or_else(|| HttpOptions::default().user_agent),
            proxy: args.proxy.clone(),
            noproxy: args.noproxy.clone(),
            insecure: args.insecure,
            version: match (args.http1_1, args.http2) {
                (true, _) => HttpVersion::Http1,
                (_, true) => HttpVersion::Http2,
                _ => HttpVersion::Auto,
            },
            connect_timeout: args.connect_timeout,
            cacert_files: args.cacert.clone(),
            referer: args.referer.clone(),
            compressed: args.compressed,
            max_redirects: args.max_redirs,
        })?;
        let policy = Policy {
            retries: args.retries,
            retry_delay: args.retry_delay,
            stall_timeout: args.stall_timeout,
            resume: args.resume,
            content_disposition: args.content_disposition,
            sha256: args.print_sha256,
            no_clobber: args.no_clobber,
            segments: args.segments,
            max_filesize: args.max_filesize,
            max_time: args.max_time,
            speed_limit: args.speed_limit,
            speed_time: args.speed_time,
            auth: Auth {
                user: args.user.clone(),
                netrc: read_netrc(args)?,
            },
            ranges: !args.compressed,
        };
        let parts_on_disk = prepare_output_dir(&args.output)?;
        let display = if args.quiet {
            Drawing::Silent
        } else if io::stderr().is_terminal() {
            Drawing::Bars
        } else {
            Drawing::Lines
        };
        Ok(Config {
            input,
            output_dir: args.output.clone(),
            parts_on_disk,
            mode: args.mode,
            jobs: args.jobs,
            http,
            policy,
            throttle: Throttle::new(args.limit_rate, args.max_per_host, args.wait),
            printing: Printing {
                json: args.json,
                keep_order: args.keep_order,
                rows: args.table,
            },
            summary: !args.quiet,
            color: match args.color {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                // https://no-color.org: set and not empty means no color.
                ColorChoice::Auto => {
                    io::stderr().is_terminal()
                        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                }
            },
            display,
        })
    }
}

/// The netrc file of `--netrc-file` (which must be readable), or `~/.netrc` with `--netrc`
/// (none if there is no such file, as curl).
fn read_netrc(args: &DownloadArgs) -> Result<Option<Netrc>> {
    if let Some(path) = &args.netrc_file {
        return Netrc::read(path).map(Some);
    }
    if !args.netrc {
        return Ok(None);
    }
    let Some(path) = crate::platform::default_netrc() else {
        bail!("--netrc: no home directory to find .netrc in (use --netrc-file FILE)");
    };
    match path.try_exists() {
        Ok(false) => Ok(None),
        _ => Netrc::read(&path).map(Some),
    }
}

/// Creates the output directory and proves it writable, so that a bad `-o` fails before any
/// download starts. Returns whether it holds `.part` files (left by an earlier run).
fn prepare_output_dir(dir: &Path) -> Result<bool> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output directory {}", dir.display()))?;
    // Created exclusively, never through a link; a name that is taken (by anything) is left
    // alone and the next one tried.
    let pid = std::process::id();
    let mut attempt = 0;
    let probe = loop {
        let probe = dir.join(match attempt {
            0 => format!(".fetchbench-probe-{pid}"),
            n => format!(".fetchbench-probe-{pid}-{n}"),
        });
        let mut options = std::fs::File::options();
        options.write(true).create_new(true);
        match crate::fetch::sink::open_no_follow(&probe, &mut options) {
            Ok(_) => break probe,
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => {
                attempt += 1;
            }
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("cannot write in output directory {}", dir.display())
                });
            }
        }
    };
    std::fs::remove_file(&probe)
        .with_context(|| format!("cannot remove {} after a write test", probe.display()))?;
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list output directory {}", dir.display()))?;
    Ok(entries.flatten().any(|entry| {
        entry
            .file_name()
            .as_encoded_bytes()
            .ends_with(PART_SUFFIX.as_bytes())
    }))
}
