//! URLs in: the command line's, then a list's (`-i FILE`, `-i -`), read lazily.
//!
//! A reader thread parses one line at a time, reserves its file name in input order and hands
//! it to the engine through a small bounded queue: the first download starts as soon as its
//! line arrives, and a full queue stops the reading (backpressure on a pipe), so memory does
//! not grow with the list. A malformed line becomes a failed result naming its `file:line`;
//! the lines after it go on.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::Url;

use crate::cancel::Cancel;
use crate::fetch::naming::{NameRegistry, name_from_url, sanitize};
use crate::model::{Sha256Digest, Shard, Target, parse_hex};
use crate::progress::Progress;
use crate::sync::lock;

/// Lines parsed ahead of the downloads. Small: enough to keep workers fed, not a buffer.
const QUEUE: usize = 64;

/// Items handed over at once while more input is at hand: one wake-up per batch, not per line.
/// A line after which the input might make the reader wait goes at once, batch or not.
const BATCH: usize = 16;

/// How often a consumer waiting for a line checks for Ctrl-C.
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// One URL of the input, with what its line said about it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) url: Url,
    /// The digest the file must have (`URL sha256=HEX`).
    pub(crate) sha256: Option<Sha256Digest>,
    /// The file name the line gave (`URL out=NAME`, `URL<TAB>NAME`), made safe.
    pub(crate) name: Option<String>,
}

impl Entry {
    fn plain(url: Url) -> Self {
        Entry {
            url,
            sha256: None,
            name: None,
        }
    }
}

/// What a run reads: URLs from the command line (checked up front), then a list (read as the
/// downloads go).
pub(crate) struct Input {
    args: Vec<Entry>,
    list: Option<List>,
    /// `--shard K/N`: only the URLs of this shard are read on (the others are skipped).
    shard: Option<Shard>,
    /// URL arguments of other shards, dropped.
    args_elsewhere: usize,
}

struct List {
    /// `stdin` or the file's path, for messages.
    label: String,
    reader: BufReader<Box<dyn Read + Send>>,
}

impl Input {
    /// The URL arguments, all checked now (one bad argument is a usage error before any
    /// request), then the list at `input` (`-` for `stdin`), opened now and read later.
    pub(crate) fn open(
        urls: &[String],
        input: Option<&Path>,
        stdin: Box<dyn Read + Send>,
    ) -> Result<Input> {
        let mut args = Vec::with_capacity(urls.len());
        let mut problems = Vec::new();
        for (n, text) in urls.iter().enumerate() {
            match parse_url(text) {
                Ok(url) => args.push(Entry::plain(url)),
                Err(why) => problems.push(crate::secret::text(&format!(
                    "  argument {}: {:?}: {why}",
                    n + 1,
                    shorten(text)
                ))),
            }
        }
        if !problems.is_empty() {
            bail!(
                "{} invalid URL{} on the command line:\n{}",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                problems.join("\n")
            );
        }
        let list = match input {
            None => None,
            Some(path) if path == Path::new("-") => Some(List {
                label: "stdin".to_owned(),
                reader: BufReader::with_capacity(64 * 1024, stdin),
            }),
            Some(path) => {
                let file = std::fs::File::open(path)
                    .with_context(|| format!("cannot open URL list {}", path.display()))?;
                Some(List {
                    label: path.display().to_string(),
                    reader: BufReader::with_capacity(64 * 1024, Box::new(file)),
                })
            }
        };
        if args.is_empty() && list.is_none() {
            bail!(
                "no URLs given\n\nUsage: fetchbench [OPTIONS] [URL]...  (or -i FILE, - for stdin)\n\
                 Try 'fetchbench --help' for more, or 'fetchbench bench' for a demo on a built-in server."
            );
        }
        Ok(Input {
            args,
            list,
            shard: None,
            args_elsewhere: 0,
        })
    }

    /// Only the URLs (arguments and list lines) of `shard` are taken; the others are skipped
    /// as they are read, before they get an index or a name. A bad line belongs to the shard
    /// its text hashes to, so that every line is reported by exactly one shard.
    pub(crate) fn sharded(mut self, shard: Option<Shard>) -> Input {
        if let Some(shard) = shard {
            let given = self.args.len();
            self.args.retain(|entry| shard.holds(entry.url.as_str()));
            self.args_elsewhere = given - self.args.len();
        }
        self.shard = shard;
        self
    }

    /// `-O FILE`: the one URL argument is saved as `name` (made safe as a list's `out=NAME`).
    /// Any other input is a usage error.
    pub(crate) fn naming_the_only_url(mut self, name: &str) -> Result<Input> {
        match (self.args.as_mut_slice(), &self.list) {
            ([entry], None) => {
                entry.name = Some(sanitize(name));
                Ok(self)
            }
            _ => bail!("-O names the file of one URL: give exactly one URL (or use -o DIR)"),
        }
    }

    /// Input that is already in memory (a benchmark's workload, run after run).
    pub(crate) fn from_entries(entries: Vec<Entry>) -> Input {
        Input {
            args: entries,
            list: None,
            shard: None,
            args_elsewhere: 0,
        }
    }

    /// How many URLs there are, when that is known before reading (no list).
    pub(crate) fn len_hint(&self) -> Option<usize> {
        self.list.is_none().then_some(self.args.len())
    }

    /// Reads everything now; any bad line is an error. For `bench`, which repeats one list.
    pub(crate) fn into_entries(self) -> Result<Vec<Entry>> {
        let mut entries = self.args;
        let mut problems = Vec::new();
        let shard = self.shard;
        if let Some(list) = self.list {
            for (line, _) in lines(list) {
                match line {
                    Line::Entry(entry) if shard.is_some_and(|s| !s.holds(entry.url.as_str())) => {}
                    Line::Entry(entry) => entries.push(*entry),
                    Line::Bad { origin, text, why } => {
                        problems.push(crate::secret::text(&format!("  {origin}: {text:?}: {why}")));
                    }
                }
            }
        }
        if !problems.is_empty() {
            bail!("invalid URL list:\n{}", problems.join("\n"));
        }
        if entries.is_empty() {
            bail!("no URLs given");
        }
        Ok(entries)
    }
}

/// What the reader hands on: a download, or a line that could not be one.
#[derive(Debug)]
pub(crate) enum Item {
    Target(Target),
    Bad {
        index: usize,
        /// The line as it was (lossily decoded).
        text: String,
        /// `file:line: why`.
        why: String,
    },
}

/// The input being read, shared by the engine's workers; each [`Source::next`] takes the next
/// item in input order.
pub(crate) struct Source {
    items: Mutex<Queue>,
    cancel: Cancel,
    len_hint: Option<usize>,
    /// URLs (and bad lines) skipped as other shards' (`--shard`), so far.
    other_shards: Arc<AtomicUsize>,
}

/// Batches from the reader, and what is left of the last one taken.
struct Queue {
    batches: Receiver<Vec<Item>>,
    ready: VecDeque<Item>,
}

impl Source {
    /// Starts reading `input` on a thread of its own. Names are reserved in `names` as lines
    /// are read; when the input ends, `progress` learns the total.
    pub(crate) fn start(
        input: Input,
        names: Arc<NameRegistry>,
        progress: Progress,
        cancel: Cancel,
    ) -> Result<Source> {
        let len_hint = input.len_hint();
        let (send, batches) = mpsc::sync_channel(QUEUE / BATCH);
        let other_shards = Arc::new(AtomicUsize::new(input.args_elsewhere));
        let skipped = Arc::clone(&other_shards);
        std::thread::Builder::new()
            .name("input".to_owned())
            .spawn(move || read(input, &names, &progress, &send, &skipped))
            .context("cannot start the thread that reads the URL list")?;
        Ok(Source {
            items: Mutex::new(Queue {
                batches,
                ready: VecDeque::new(),
            }),
            cancel,
            len_hint,
            other_shards,
        })
    }

    /// How many URLs of the input were skipped as other shards' (`--shard`); once the input
    /// has ended, all of them.
    pub(crate) fn other_shards(&self) -> usize {
        self.other_shards.load(Ordering::Relaxed)
    }

    /// The next item, waiting for its line; `None` once the input has ended or the run was
    /// cancelled (the rest of the list is then not read).
    pub(crate) fn next(&self) -> Option<Item> {
        let mut items = lock(&self.items);
        loop {
            if self.cancel.is_triggered() {
                return None;
            }
            if let Some(item) = items.ready.pop_front() {
                return Some(item);
            }
            match items.batches.recv_timeout(CANCEL_POLL) {
                Ok(batch) => items.ready.extend(batch),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// How many items were read but never taken (the run was cancelled), without waiting
    /// for more.
    pub(crate) fn remaining(&self) -> usize {
        let items = lock(&self.items);
        items.ready.len()
            + items
                .batches
                .try_iter()
                .map(|batch| batch.len())
                .sum::<usize>()
    }

    /// How many URLs there are, when known before reading.
    pub(crate) fn len_hint(&self) -> Option<usize> {
        self.len_hint
    }
}

/// The reader thread: arguments, then list lines, each numbered and named in input order,
/// handed over in batches (see [`BATCH`]).
fn read(
    input: Input,
    names: &NameRegistry,
    progress: &Progress,
    send: &SyncSender<Vec<Item>>,
    other_shards: &AtomicUsize,
) {
    let mut batch = Batch::new(send);
    let mut index = 0;
    let shard = input.shard;
    let ours = |key: &str| shard.is_none_or(|shard| shard.holds(key));
    for entry in input.args {
        if !batch.add(Some(planned(index, entry, names)), false) {
            return;
        }
        index += 1;
    }
    if let Some(list) = input.list {
        for (line, more_at_hand) in lines(list) {
            let item = match line {
                // Another shard's line: skipped, but what waits goes on if reading may wait.
                Line::Entry(entry) if !ours(entry.url.as_str()) => None,
                Line::Bad { text, .. } if !ours(&text) => None,
                Line::Entry(entry) => Some(planned(index, *entry, names)),
                Line::Bad { origin, text, why } => Some(Item::Bad {
                    index,
                    text,
                    why: format!("{origin}: {why}"),
                }),
            };
            let taken = item.is_some();
            if !taken {
                other_shards.fetch_add(1, Ordering::Relaxed);
            }
            if !batch.add(item, !more_at_hand) {
                return;
            }
            index += usize::from(taken);
        }
    }
    if !batch.add(None, true) {
        return;
    }
    progress.set_total(index);
}

/// Input number `index` as a download, its file name reserved now (in input order).
fn planned(index: usize, entry: Entry, names: &NameRegistry) -> Item {
    let wanted = entry
        .name
        .clone()
        .unwrap_or_else(|| name_from_url(&entry.url));
    Item::Target(Target {
        index,
        planned: names.reserve(&wanted),
        url: entry.url,
        name: entry.name,
        sha256: entry.sha256,
    })
}

/// The items read but not yet handed over to the consumers.
struct Batch<'a> {
    items: Vec<Item>,
    send: &'a SyncSender<Vec<Item>>,
}

impl<'a> Batch<'a> {
    fn new(send: &'a SyncSender<Vec<Item>>) -> Self {
        Batch {
            items: Vec::with_capacity(BATCH),
            send,
        }
    }

    /// Adds an item (if any); hands the batch over when it is full, or when `now` (the input
    /// may make the reader wait before the next item). False once nobody takes items (Ctrl-C).
    fn add(&mut self, item: Option<Item>, now: bool) -> bool {
        self.items.extend(item);
        if self.items.is_empty() || (!now && self.items.len() < BATCH) {
            return true;
        }
        let full = std::mem::replace(&mut self.items, Vec::with_capacity(BATCH));
        self.send.send(full).is_ok()
    }
}

/// One line of a list, parsed.
enum Line {
    Entry(Box<Entry>),
    Bad {
        origin: Origin,
        text: String,
        why: String,
    },
}

/// Where a line came from, for messages: `urls.txt:12`.
struct Origin {
    label: Arc<str>,
    line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.label, self.line)
    }
}

/// The list's URL lines, lazily: blank lines and `#` comments skipped (whatever their bytes),
/// a leading UTF-8 BOM and CR line ends ignored. A read error ends the list with a bad line.
/// Each line comes with whether more input is already at hand (buffered), so that reading on
/// will not wait.
fn lines(list: List) -> impl Iterator<Item = (Line, bool)> {
    let label: Arc<str> = list.label.into();
    let mut reader = list.reader;
    let mut buf = Vec::new();
    let mut number = 0;
    let mut failed = false;
    std::iter::from_fn(move || {
        loop {
            if failed {
                return None;
            }
            buf.clear();
            number += 1;
            let origin = Origin {
                label: Arc::clone(&label),
                line: number,
            };
            let long = match read_line(&mut reader, &mut buf) {
                Ok(None) => return None,
                Ok(Some(len)) => (len > MAX_LINE).then_some(len),
                Err(err) => {
                    failed = true;
                    let bad = Line::Bad {
                        origin,
                        text: String::new(),
                        why: format!("cannot read the list: {err}"),
                    };
                    return Some((bad, false));
                }
            };
            if let Some(line) = parse_line(&buf, long, origin) {
                // A whole next line in the buffer: reading it will not wait for the producer.
                return Some((line, reader.buffer().contains(&b'\n')));
            }
        }
    })
}

/// One line of a list as read (without its line end; only its first [`MAX_LINE`] bytes when
/// it had `long` bytes), parsed; `None` for a blank line or a comment.
fn parse_line(bytes: &[u8], long: Option<usize>, origin: Origin) -> Option<Line> {
    let mut bytes = bytes;
    if origin.line == 1 {
        bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    }
    let bytes = bytes.trim_ascii();
    if bytes.is_empty() || bytes.starts_with(b"#") {
        return None;
    }
    if let Some(len) = long {
        // Only its first MAX_LINE bytes were kept: echoed shortened, and failed alone.
        return Some(Line::Bad {
            origin,
            text: shorten(&String::from_utf8_lossy(bytes)),
            why: format!(
                "line of {len} bytes, longer than the {} KiB a list line may have",
                MAX_LINE / 1024
            ),
        });
    }
    Some(match std::str::from_utf8(bytes) {
        Ok(text) => match parse_list_line(text) {
            Ok(entry) => Line::Entry(Box::new(entry)),
            Err(why) => Line::Bad {
                origin,
                text: shorten(text),
                why,
            },
        },
        Err(_) => Line::Bad {
            origin,
            text: shorten(&String::from_utf8_lossy(bytes)),
            why: "not UTF-8 text".to_owned(),
        },
    })
}

/// The longest line of a URL list (without its line end); a longer one fails alone, and only
/// this much of it is ever held in memory.
pub(crate) const MAX_LINE: usize = 64 * 1024;
/// How much of a bad line or argument is echoed in messages.
const ECHO: usize = 200;

/// Reads the next line into `buf` (its line end included), keeping at most [`MAX_LINE`] + 1
/// bytes of it and skipping the rest; `None` at the end of the input, else the line's whole
/// length without its line end.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
    let (mut len, mut any) = (0, false);
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if available.is_empty() {
            return Ok(any.then_some(len));
        }
        any = true;
        let end = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..end.map_or(available.len(), |i| i + 1)];
        let room = (MAX_LINE + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let taken = chunk.len();
        len += taken - usize::from(end.is_some());
        reader.consume(taken);
        if end.is_some() {
            return Ok(Some(len));
        }
    }
}

/// `text` cut to its first [`ECHO`] characters (then `…`).
pub(crate) fn shorten(text: &str) -> String {
    match text.char_indices().nth(ECHO) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// `URL [sha256=HEX] [out=NAME]`, or `URL [sha256=HEX]<TAB>NAME` (a name with spaces).
pub(crate) fn parse_list_line(line: &str) -> Result<Entry, String> {
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

/// The longest URL sent (hyper's limit on a request target).
const MAX_URL: usize = 65_534;
/// Whether `text` starts with a scheme (`https:`, `mailto:`), not a host and its port
/// (`localhost:8000`).
fn has_scheme(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let named = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let port = rest.split(['/', '?', '#']).next().unwrap_or("");
    named
        && (rest.starts_with("//") || port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
}

pub(crate) fn parse_url(text: &str) -> Result<Url, String> {
    if text.split_whitespace().nth(1).is_some() {
        return Err("expected one URL, found spaces (encode them as %20)".to_owned());
    }
    let url = match has_scheme(text) {
        true => Url::parse(text),
        // `example.com/a.iso`, `localhost:8000/a`: http, as curl, wget and xh assume.
        false => Url::parse(&format!("http://{text}")),
    }
    .map_err(|e| e.to_string())?;
    if url.as_str().len() > MAX_URL {
        return Err(format!(
            "a URL of {} bytes, longer than the {MAX_URL} an HTTP request can carry",
            url.as_str().len()
        ));
    }
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!(
            "unsupported scheme {other:?} (only http and https)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_with_bounded_memory() {
        let exact = "a".repeat(MAX_LINE);
        let over = "b".repeat(3 * MAX_LINE);
        let input = format!("{exact}\n{over}\nlast");
        let mut reader = BufReader::with_capacity(1000, input.as_bytes());
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut reader, &mut buf).unwrap(), Some(MAX_LINE));
        assert_eq!(buf.len(), MAX_LINE + 1);
        buf.clear();
        assert_eq!(
            read_line(&mut reader, &mut buf).unwrap(),
            Some(3 * MAX_LINE)
        );
        assert!(buf.len() <= MAX_LINE + 1, "kept {}", buf.len());
        buf.clear();
        assert_eq!(read_line(&mut reader, &mut buf).unwrap(), Some(4));
        assert_eq!(buf, b"last");
        buf.clear();
        assert_eq!(read_line(&mut reader, &mut buf).unwrap(), None);
        assert_eq!(shorten(&"é".repeat(300)).chars().count(), ECHO + 1);
    }

    /// Every item of `args` then `list` (read as stdin), through a real [`Source`].
    fn items(args: &[&str], list: &'static [u8]) -> Result<Vec<Item>> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let input = Input::open(&args, Some(Path::new("-")), Box::new(list))?;
        let source = Source::start(
            input,
            Arc::new(NameRegistry::default()),
            Progress::silent(),
            Cancel::default(),
        )?;
        Ok(std::iter::from_fn(|| source.next()).collect())
    }

    fn urls(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|item| match item {
                Item::Target(t) => format!("{} {}", t.index, t.url),
                Item::Bad { index, why, .. } => format!("{index} BAD {why}"),
            })
            .collect()
    }

    #[test]
    fn arguments_then_list_in_order_skipping_blanks_and_comments() {
        let got = items(
            &["http://a/1"],
            b"# comment\n\nhttp://a/2\n  https://a/3  \r\n",
        )
        .unwrap();
        assert_eq!(
            urls(&got),
            ["0 http://a/1", "1 http://a/2", "2 https://a/3"]
        );
    }

    #[test]
    fn a_url_without_a_scheme_is_http() {
        let url = |text| parse_url(text).map(|u| u.to_string());
        assert_eq!(
            url("example.com/a.iso").as_deref(),
            Ok("http://example.com/a.iso")
        );
        assert_eq!(
            url("localhost:8000/a").as_deref(),
            Ok("http://localhost:8000/a")
        );
        assert_eq!(
            url("https://example.com/").as_deref(),
            Ok("https://example.com/")
        );
        assert!(url("ftp://example.com/").is_err());
        assert!(url("mailto:someone@example.com").is_err());
        assert_eq!(
            url("127.0.0.1:8000/x").as_deref(),
            Ok("http://127.0.0.1:8000/x")
        );
    }

    #[test]
    fn a_bad_argument_is_a_usage_error_naming_it() {
        // (A bare `nope` is a host now: http://nope/, as curl takes it.)
        let err = items(&["http://ok/", "http://[nope"], b"")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("1 invalid URL on the command line"),
            "{err}"
        );
        assert!(err.contains("argument 2: \"http://[nope\""), "{err}");
    }

    #[test]
    fn bad_lines_are_items_with_their_line_and_the_rest_goes_on() {
        let got = items(&[], b"http://ok/\nftp://x/y\n\nhttp://\nhttp://ok/2\n").unwrap();
        assert_eq!(
            urls(&got),
            [
                "0 http://ok/",
                "1 BAD stdin:2: unsupported scheme \"ftp\" (only http and https)",
                "2 BAD stdin:4: empty host",
                "3 http://ok/2",
            ]
        );
    }

    #[test]
    fn a_bom_and_non_utf8_comments_are_not_errors() {
        let got = items(&[], b"\xef\xbb\xbfhttp://a/1\n# caf\xe9\nhttp://a/2\n").unwrap();
        assert_eq!(urls(&got), ["0 http://a/1", "1 http://a/2"]);
        let list: &'static [u8] = b"http://a/\xff\n";
        let input = Input::open(&[], Some(Path::new("-")), Box::new(list)).unwrap();
        let err = input.into_entries().unwrap_err().to_string();
        assert!(
            err.contains("stdin:1: ") && err.contains("not UTF-8"),
            "{err}"
        );
    }

    #[test]
    fn list_lines_may_carry_a_sha256() {
        let hex = "00ff".repeat(16);
        let line = format!("http://a/x sha256={hex}");
        let entry = parse_list_line(&line).unwrap();
        assert_eq!(
            entry.sha256,
            Some([0x00, 0xff].repeat(16).try_into().unwrap())
        );
        let err = parse_list_line("http://a/x sha256=abc").err().unwrap();
        assert!(err.contains("not 64 hexadecimal digits"), "{err}");
        let err = parse_list_line("http://a/y md5=1").err().unwrap();
        assert!(err.contains("unexpected \"md5=1\""), "{err}");
    }

    #[test]
    fn list_lines_may_name_their_files_and_names_are_reserved_in_order() {
        let got = items(
            &[],
            b"http://a/x out=one.bin\nhttp://a/y\tmy file.txt\nhttp://a/z out=../../evil\nhttp://b/one.bin\n",
        )
        .unwrap();
        let planned: Vec<_> = got
            .iter()
            .map(|item| match item {
                Item::Target(t) => t.planned.as_str(),
                Item::Bad { .. } => "BAD",
            })
            .collect();
        assert_eq!(planned, ["one.bin", "my file.txt", "evil", "one-1.bin"]);
        assert_eq!(
            parse_list_line("http://a/x out=").err().as_deref(),
            Some("empty file name")
        );
    }

    #[test]
    fn no_urls_is_an_error_with_a_hint() {
        let err = Input::open(&[], None, Box::new(std::io::empty()))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no URLs given"), "{err}");
        assert!(err.contains("--help"), "{err}");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]

            #[test]
            fn list_lines_never_panic_and_names_stay_plain(
                line in prop_oneof![
                    "(http|https|ftp)://[a-z0-9.:/%?=&]{0,30}[ \t](out=|sha256=)?[ -~\t\u{202E}\u{2028}é/\\\\.]{0,60}",
                    any::<String>(),
                ]
            ) {
                if let Ok(entry) = parse_list_line(&line) {
                    prop_assert!(matches!(entry.url.scheme(), "http" | "https"));
                    if let Some(name) = entry.name {
                        prop_assert!(!name.is_empty() && !name.starts_with('.'), "{name:?}");
                        prop_assert!(!name.contains(['/', '\\']), "{name:?}");
                        prop_assert!(!name.chars().any(|c| c.is_control()
                            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2028}' | '\u{2029}')), "{name:?}");
                    }
                }
            }

            #[test]
            fn url_sha256_and_name_round_trip(
                path in "[a-z0-9]{1,12}(/[a-z0-9]{1,12}){0,3}",
                digest in proptest::array::uniform32(any::<u8>()),
                name in "[a-zA-Z0-9][a-zA-Z0-9_-]{0,30}(\\.[a-z]{1,4})?",
                spaced in "[a-zA-Z0-9][a-zA-Z0-9 _-]{0,30}[a-zA-Z0-9]",
            ) {
                let url = format!("https://example.com/{path}");
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                let entry = parse_list_line(&format!("{url} sha256={hex} out={name}")).unwrap();
                prop_assert_eq!(entry.url.as_str(), url.as_str());
                prop_assert_eq!(entry.sha256, Some(digest));
                prop_assert_eq!(entry.name.as_deref(), Some(name.as_str()));
                let entry = parse_list_line(&format!("{url}\t{spaced}")).unwrap();
                prop_assert_eq!(entry.name.as_deref(), Some(spaced.as_str()));
            }
        }
    }
}
