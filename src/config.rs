//! From command-line arguments to a checked [`Config`]: every URL parsed, the output directory
//! usable, the display decided. Nothing past this module sees clap types, and nothing is
//! downloaded until all of it holds (the lines of a URL list are checked as they are read).

use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::auth::{Auth, Netrc};
use crate::cli::{ColorChoice, DownloadArgs};
use crate::fetch::output::OutputDir;
use crate::fetch::policy::Policy;
use crate::fetch::throttle::Throttle;
use crate::fetch::trace::Verbose;
use crate::http::{ACCEPT_ENCODING, HttpOptions, HttpSettings, HttpVersion, IpVersion};
use crate::input::Input;
use crate::model::{Mode, Shard};
use crate::progress::Drawing;
use crate::results::Printing;

/// A validated download run.
pub(crate) struct Config {
    /// The URLs: arguments checked, the list opened, read as the run goes.
    pub(crate) input: Input,
    pub(crate) output: OutputDir,
    pub(crate) mode: Mode,
    /// `--shard K/N`, shown in the summary.
    pub(crate) shard: Option<Shard>,
    /// Width of `pool`, `async`, `procs` and `spawn` (`-j`).
    pub(crate) jobs: crate::width::Jobs,
    pub(crate) http: HttpSettings,
    pub(crate) policy: Policy,
    pub(crate) throttle: Throttle,
    /// What stdout gets, and in which order.
    pub(crate) printing: Printing,
    /// Whether the human summary is printed on stderr.
    pub(crate) summary: bool,
    /// Colors on stderr.
    pub(crate) color: bool,
    pub(crate) display: Drawing,
}

impl Config {
    /// Checks `args`; `-i -` will read `stdin`.
    pub(crate) fn from_args(args: &DownloadArgs, stdin: Box<dyn Read + Send>) -> Result<Config> {
        if args.compressed && !crate::platform::COMPRESSED {
            bail!(
                "--compressed: this fetchbench was built without its decoders (build it with the \
                 `compressed` feature, which is on by default)"
            );
        }
        let (dir, file) = output_place(args)?;
        let mut input = Input::open(&args.urls, args.input.as_deref(), stdin)?.sharded(args.shard);
        if let Some(file) = &file {
            input = input.naming_the_only_url(file)?;
        }
        let http = HttpSettings::new(http_options(args))?;
        let auth = Auth {
            user: args.user.clone(),
            netrc: read_netrc(args)?,
        };
        // `-v` shows what `http` sends.
        let policy = args.policy(auth, args.verbose.then(|| verbose(&http)));
        let created = !dir.exists();
        let output = OutputDir::prepare(&dir)?;
        if created && file.is_none() && dir.extension().is_some() && args.quiet == 0 && !args.silent
        {
            // `-o file.bin` from a curl user: say what happened, and what they may have meant.
            let _ = writeln!(
                io::stderr().lock(),
                "fetchbench: created directory {} to save in (-o names a directory; to name the \
                 file of one URL, use -O FILE)",
                dir.display()
            );
        }
        Ok(Config {
            input,
            output,
            mode: args.mode,
            shard: args.shard,
            jobs: args.jobs,
            http,
            policy,
            throttle: Throttle::new(args.limit_rate, args.max_per_host, args.wait),
            printing: Printing {
                json: args.json,
                keep_order: args.keep_order,
                rows: args.table,
            },
            summary: args.quiet == 0 && !args.silent,
            color: color(args.color),
            display: Drawing::choose(args.quiet, args.silent),
        })
    }
}

/// The client settings the flags ask for.
fn http_options(args: &DownloadArgs) -> HttpOptions {
    HttpOptions {
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
        load_cookies: args.load_cookies.clone(),
        save_cookies: args.save_cookies.clone(),
        resolve: args.resolve.clone(),
        ip_version: match (args.ipv4, args.ipv6) {
            (true, _) => Some(IpVersion::V4),
            (_, true) => Some(IpVersion::V6),
            _ => None,
        },
        location_trusted: args.location_trusted,
    }
}

/// Whether stderr gets colors.
fn color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        // https://no-color.org: set and not empty means no color.
        ColorChoice::Auto => {
            io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// What `-v` shows of the headers every request gets: those reqwest adds (User-Agent, Accept,
/// Accept-Encoding with `--compressed`), then `-H` and `-e`.
fn verbose(http: &HttpSettings) -> Verbose {
    let options = http.options();
    let mut defaults = vec![
        ("User-Agent".to_owned(), options.user_agent.clone()),
        ("Accept".to_owned(), "*/*".to_owned()),
    ];
    if options.compressed {
        defaults.push(("Accept-Encoding".to_owned(), ACCEPT_ENCODING.to_owned()));
    }
    defaults.extend(options.headers.iter().cloned());
    if let Some(referer) = &options.referer {
        defaults.push(("Referer".to_owned(), referer.clone()));
    }
    Verbose {
        defaults,
        http2: options.version == HttpVersion::Http2,
        cookies: http.cookies().cloned(),
    }
}

/// Where files go: `-o DIR`, or `-O FILE`'s directory and file name. `-` (stdout) is refused
/// for both, and `-o` naming something that is not a directory too.
fn output_place(args: &DownloadArgs) -> Result<(PathBuf, Option<String>)> {
    if let Some(document) = &args.output_document {
        if document == Path::new("-") {
            bail!(
                "-O -: writing a download to stdout is not supported (files are written whole or not at all); give a file name"
            );
        }
        let Some(name) = document.file_name() else {
            bail!("-O {}: not a file name", document.display());
        };
        let dir = match document.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        return Ok((dir, Some(name.to_string_lossy().into_owned())));
    }
    let dir = &args.output;
    if dir == Path::new("-") {
        bail!(
            "-o -: -o names a directory, and writing downloads to stdout is not supported (the paths of saved files go there)"
        );
    }
    if dir.exists() && !dir.is_dir() {
        bail!(
            "-o {}: is a file, not a directory (-o names the directory to save in; -O FILE names the file of one URL)",
            dir.display()
        );
    }
    Ok((dir.clone(), None))
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
