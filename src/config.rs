//! From command-line arguments to a checked [`Config`]: every URL parsed, the output directory
//! usable, the display decided. Nothing past this module sees clap types, and nothing is
//! downloaded until all of it holds.

use std::fmt;
use std::io::{self, BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use reqwest::Url;

use crate::auth::{Auth, Netrc};
use crate::cli::{ColorChoice, DownloadArgs};
use crate::engine::Mode;
use crate::fetch::{Policy, Sha256Digest, Target, parse_hex};
use crate::http::{HttpOptions, HttpSettings, HttpVersion};
use crate::naming::{PART_SUFFIX, sanitize};
use crate::progress::Display;
use crate::throttle::Throttle;

/// A validated download run.
#[derive(Debug)]
pub struct Config {
    pub targets: Vec<Target>,
    pub output_dir: PathBuf,
    /// Whether the output directory already held `.part` files.
    pub parts_on_disk: bool,
    pub mode: Mode,
    /// Width of `pool` and `async` (`-j`).
    pub jobs: usize,
    pub http: HttpSettings,
    pub policy: Policy,
    pub throttle: Throttle,
    pub json: bool,
    /// Whether the human summary is printed on stderr.
    pub summary: bool,
    /// Colors on stderr.
    pub color: bool,
    pub display: Display,
}

impl Config {
    /// Checks `args`; reads `-i -` from `stdin`.
    pub fn from_args(args: &DownloadArgs, stdin: impl BufRead) -> Result<Config> {
        let targets = read_targets(&args.urls, args.input.as_deref(), stdin)?;
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
            auth: Auth {
                user: args.user.clone(),
                netrc: read_netrc(args)?,
            },
            ranges: !args.compressed,
        };
        let parts_on_disk = prepare_output_dir(&args.output)?;
        let display = if args.quiet {
            Display::Silent
        } else if io::stderr().is_terminal() {
            Display::Bars
        } else {
            Display::Lines
        };
        Ok(Config {
            targets,
            output_dir: args.output.clone(),
            parts_on_disk,
            mode: args.mode,
            jobs: args.jobs,
            http,
            policy,
            throttle: Throttle::new(args.limit_rate, args.max_per_host, args.wait),
            json: args.json,
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
    let Some(path) = Netrc::default_path() else {
        bail!("--netrc: no home directory to find .netrc in (use --netrc-file FILE)");
    };
    match path.try_exists() {
        Ok(false) => Ok(None),
        _ => Netrc::read(&path).map(Some),
    }
}

/// Where a URL came from, for error messages.
#[derive(Debug, Clone)]
enum Origin {
    Argument(usize),
    Line { file: String, line: usize },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Argument(n) => write!(f, "argument {n}"),
            Origin::Line { file, line } => write!(f, "{file}:{line}"),
        }
    }
}

/// URLs from the command line, then from `--input`, in order; all parsed before any starts.
pub(crate) fn read_targets(
    urls: &[String],
    input: Option<&Path>,
    stdin: impl BufRead,
) -> Result<Vec<Target>> {
    let mut raw: Vec<(Origin, String)> = urls
        .iter()
        .enumerate()
        .map(|(i, url)| (Origin::Argument(i + 1), url.clone()))
        .collect();
    let from_args = raw.len();
    if let Some(input) = input {
        raw.extend(read_url_list(input, stdin)?);
    }
    if raw.is_empty() {
        bail!(
            "no URLs given\n\nUsage: fetchbench [OPTIONS] [URL]...  (or -i FILE, - for stdin)\n\
             Try 'fetchbench --help' for more, or 'fetchbench bench' for a demo on a built-in server."
        );
    }
    let mut targets = Vec::with_capacity(raw.len());
    let mut problems = Vec::new();
    for (n, (origin, text)) in raw.into_iter().enumerate() {
        let parsed = if n < from_args {
            parse_url(&text).map(|url| Entry {
                url,
                sha256: None,
                name: None,
            })
        } else {
            parse_list_line(&text)
        };
        match parsed {
            Ok(Entry { url, sha256, name }) => targets.push(Target {
                index: targets.len(),
                url,
                name,
                sha256,
            }),
            Err(why) => problems.push(format!("  {origin}: {text:?}: {why}")),
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} invalid URL{}:\n{}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            problems.join("\n")
        );
    }
    Ok(targets)
}

/// One URL per line; blank lines and `#` comments are skipped.
fn read_url_list(input: &Path, stdin: impl BufRead) -> Result<Vec<(Origin, String)>> {
    let (file, reader): (String, Box<dyn BufRead>) = if input == Path::new("-") {
        ("stdin".to_owned(), Box::new(stdin))
    } else {
        let f = std::fs::File::open(input)
            .with_context(|| format!("cannot open URL list {}", input.display()))?;
        (input.display().to_string(), Box::new(BufReader::new(f)))
    };
    let mut urls = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {file} at line {}", i + 1))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let origin = Origin::Line {
            file: file.clone(),
            line: i + 1,
        };
        urls.push((origin, line.to_owned()));
    }
    Ok(urls)
}

/// One line of a URL list.
struct Entry {
    url: Url,
    sha256: Option<Sha256Digest>,
    name: Option<String>,
}

/// `URL [sha256=HEX] [out=NAME]`, or `URL [sha256=HEX]<TAB>NAME` (a name with spaces).
fn parse_list_line(line: &str) -> Result<Entry, String> {
    let (head, tab_name) = match line.split_once('\t') {
        Some((head, name)) => (head, Some(name.trim())),
        None => (line, None),
    };
    let mut words = head.split_whitespace();
    let url = parse_url(words.next().unwrap_or(""))?;
    let mut entry = Entry {
        url,
        sha256: None,
        name: tab_name.map(str::to_owned),
    };
    for word in words {
        match word.split_once('=') {
            Some(("sha256", hex)) => {
                let digest = parse_hex(hex);
                entry.sha256 =
                    Some(digest.ok_or(format!("sha256={hex} is not 64 hexadecimal digits"))?);
            }
            Some(("out", name)) if entry.name.is_none() => entry.name = Some(name.to_owned()),
            _ => {
                return Err(format!(
                    "unexpected {word:?} after the URL (expected sha256=HEX or out=NAME)"
                ));
            }
        }
    }
    match entry.name.as_deref() {
        Some("") => Err("empty file name".to_owned()),
        // The same rules as names from URLs: one plain name inside the output directory.
        Some(name) => {
            entry.name = Some(sanitize(name));
            Ok(entry)
        }
        None => Ok(entry),
    }
}

fn parse_url(text: &str) -> Result<Url, String> {
    if text.split_whitespace().nth(1).is_some() {
        return Err("expected one URL, found spaces (encode them as %20)".to_owned());
    }
    let url = Url::parse(text).map_err(|e| e.to_string())?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!(
            "unsupported scheme {other:?} (only http and https)"
        )),
    }
}

/// Creates the output directory and proves it writable, so that a bad `-o` fails before any
/// download starts. Returns whether it holds `.part` files (left by an earlier run).
fn prepare_output_dir(dir: &Path) -> Result<bool> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output directory {}", dir.display()))?;
    let probe = dir.join(format!(".fetchbench-probe-{}", std::process::id()));
    std::fs::File::create(&probe)
        .with_context(|| format!("cannot write in output directory {}", dir.display()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(args: &[&str], list: &str) -> Result<Vec<Target>> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        read_targets(&args, Some(Path::new("-")), list.as_bytes())
    }

    #[test]
    fn arguments_then_list_in_order_skipping_blanks_and_comments() {
        let got = targets(
            &["http://a/1"],
            "# comment\n\nhttp://a/2\n  https://a/3  \n",
        )
        .unwrap();
        let urls: Vec<_> = got.iter().map(|t| t.url.as_str()).collect();
        assert_eq!(urls, ["http://a/1", "http://a/2", "https://a/3"]);
        assert_eq!(got[2].index, 2);
    }

    #[test]
    fn every_bad_url_is_listed_with_its_line() {
        let err = targets(&["nope"], "http://ok/\nftp://x/y\n\nhttp://\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("3 invalid URLs:"), "{err}");
        assert!(err.contains("argument 1: \"nope\""), "{err}");
        assert!(
            err.contains("stdin:2: \"ftp://x/y\": unsupported scheme \"ftp\""),
            "{err}"
        );
        assert!(err.contains("stdin:4: \"http://\""), "{err}");
    }

    #[test]
    fn list_lines_may_carry_a_sha256() {
        let hex = "00ff".repeat(16);
        let got = targets(&[], &format!("http://a/x sha256={hex}\nhttp://a/y\n")).unwrap();
        assert_eq!(
            got[0].sha256,
            Some([0x00, 0xff].repeat(16).try_into().unwrap())
        );
        assert_eq!(got[1].sha256, None);
        let err = targets(&[], "http://a/x sha256=abc\nhttp://a/y md5=1\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("stdin:1: ") && err.contains("not 64 hexadecimal digits"),
            "{err}"
        );
        assert!(
            err.contains("stdin:2: ") && err.contains("unexpected \"md5=1\""),
            "{err}"
        );
    }

    #[test]
    fn list_lines_may_name_their_files() {
        let got = targets(
            &[],
            "http://a/x out=one.bin\nhttp://a/y\tmy file.txt\nhttp://a/z out=../../evil\n",
        )
        .unwrap();
        let names: Vec<_> = got.iter().map(|t| t.name.as_deref()).collect();
        assert_eq!(names, [Some("one.bin"), Some("my file.txt"), Some("evil")]);
        let err = targets(&[], "http://a/x out=\n").unwrap_err().to_string();
        assert!(
            err.contains("stdin:1: ") && err.contains("empty file name"),
            "{err}"
        );
    }

    #[test]
    fn no_urls_is_an_error_with_a_hint() {
        let err = targets(&[], "# only a comment\n").unwrap_err().to_string();
        assert!(err.contains("no URLs given"), "{err}");
        assert!(err.contains("--help"), "{err}");
    }
}
