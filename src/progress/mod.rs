//! Live progress on stderr: indicatif bars on a terminal, one plain line per finished download
//! otherwise, only the failures with `-q`, nothing with `-qq`. The policy is decided once
//! ([`Drawing`]); downloads only call [`Progress::start`] and the [`Tracker`] it returns.
//! Results for stdout go through [`Progress::stdout`], so that on a terminal they never land
//! on a bar. A benchmark counts its runs on [`Steps`].

mod layout;
mod overall;
mod rate;

pub(crate) use layout::{elide_middle, stderr_width, stdout_width, wrap};

use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use console::Style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::FetchError;
use crate::model::{Outcome, Status};
use crate::units::{human_bytes, human_duration};
use layout::Layout;
use overall::{OverallKey, Totals};
use rate::{Shows, WindowKey};

/// How progress is shown, decided once from the terminal and the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drawing {
    /// Live bars (stderr is a terminal).
    Bars,
    /// One line per finished download (stderr is a file or a pipe: no escape codes in logs).
    Lines,
    /// One line per failed download, nothing else (`-q`, as curl's `-sS` and wget's `-nv`).
    Failures,
    /// Nothing (`-qq`, or a benchmark's inner runs).
    Silent,
    /// Nothing drawn: every event goes to a [`Relay`] (a `procs` or `spawn` worker's parent
    /// draws it).
    Relayed,
}

impl Drawing {
    /// How a download run shows progress: by `-q` (given `quiet` times) and `-s`, and whether
    /// stderr is a terminal.
    pub(crate) fn choose(quiet: u8, silent: bool) -> Drawing {
        if silent || quiet >= 2 {
            Drawing::Silent
        } else if quiet == 1 {
            Drawing::Failures
        } else if io::stderr().is_terminal() {
            Drawing::Bars
        } else {
            Drawing::Lines
        }
    }
}

/// How often a relayed download reports its position.
const RELAY_EVERY: Duration = Duration::from_millis(100);

/// Bars beyond this many are counted but not drawn (`threads` mode may run thousands at once).
const MAX_VISIBLE_BARS: usize = 16;

/// Where a display that draws nothing sends what downloads tell it ([`Drawing::Relayed`]), for
/// someone else to draw: a worker process plugs in its pipe to the parent. A relay that is
/// gone learns nothing more, so none of these can fail.
pub(crate) trait Relay: Send + Sync {
    /// The body's size, when known.
    fn length(&self, length: u64);
    /// Bytes in the file so far, and bytes received for this download so far.
    fn position(&self, position: u64, received: u64);
    /// A retry is coming (which, and why).
    fn retry(&self, note: String);
    /// `-v`: lines about a request or response, for stderr.
    fn trace(&self, lines: &str);
}

/// The progress display of one run; cheap to clone and safe to share between threads.
#[derive(Clone)]
pub(crate) struct Progress {
    inner: Arc<Inner>,
}

struct Inner {
    display: Drawing,
    /// Where [`Drawing::Relayed`] sends its events.
    relay: Option<Arc<dyn Relay>>,
    multi: MultiProgress,
    overall: ProgressBar,
    /// What the overall line adds up: bytes, sizes, downloads without a bar.
    totals: Arc<Totals>,
    /// Downloads running now, with a bar or without.
    running: AtomicUsize,
    /// Parsed once, cloned for each bar.
    styles: Styles,
}

struct Styles {
    layout: Layout,
    bar: ProgressStyle,
    spinner: ProgressStyle,
}

impl Progress {
    /// A display for downloads whose number is known once [`Progress::set_total`] says it.
    pub(crate) fn new(display: Drawing) -> Self {
        match display {
            Drawing::Bars => {
                Progress::drawn_on(display, ProgressDrawTarget::stderr(), stderr_width(), None)
            }
            Drawing::Lines | Drawing::Failures | Drawing::Silent | Drawing::Relayed => {
                Progress::drawn_on(display, ProgressDrawTarget::hidden(), None, None)
            }
        }
    }

    /// A display that draws nothing and sends every event to `relay`.
    pub(crate) fn relayed(relay: Arc<dyn Relay>) -> Self {
        Progress::drawn_on(
            Drawing::Relayed,
            ProgressDrawTarget::hidden(),
            None,
            Some(relay),
        )
    }

    /// A display drawn on `target`, laid out for `width` columns, relaying to `relay` if any.
    fn drawn_on(
        display: Drawing,
        target: ProgressDrawTarget,
        width: Option<usize>,
        relay: Option<Arc<dyn Relay>>,
    ) -> Self {
        let multi = MultiProgress::with_draw_target(target);
        let totals = Arc::new(Totals::default());
        let layout = Layout::for_width(width);
        let overall = multi.add(ProgressBar::no_length());
        overall.set_style(overall_style(
            &layout.overall_streaming,
            &totals,
            layout.overall_room(false),
        ));
        overall.set_prefix("total");
        if display == Drawing::Bars {
            // Redrawn on its own: its byte count changes without the bar itself moving.
            overall.enable_steady_tick(Duration::from_millis(200));
        }
        Progress {
            inner: Arc::new(Inner {
                display,
                relay,
                multi,
                overall,
                totals,
                running: AtomicUsize::new(0),
                styles: Styles {
                    bar: bar_style(&layout.bar),
                    spinner: spinner_style(&layout.spinner),
                    layout,
                },
            }),
        }
    }

    /// The count of bytes received by every download so far (what `-j auto` measures by).
    pub(crate) fn received(&self) -> crate::width::Received {
        let totals = Arc::clone(&self.inner.totals);
        Arc::new(move || totals.bytes.load(Ordering::Relaxed))
    }

    /// A display that shows nothing.
    pub(crate) fn silent() -> Self {
        Progress::new(Drawing::Silent)
    }

    /// The input has ended: there are `files` downloads in all, and the overall line becomes a
    /// bar.
    pub(crate) fn set_total(&self, files: usize) {
        let overall = &self.inner.overall;
        overall.set_length(files as u64);
        if self.inner.display == Drawing::Bars {
            let layout = &self.inner.styles.layout;
            overall.set_style(overall_style(
                &layout.overall,
                &self.inner.totals,
                layout.overall_room(true),
            ));
        }
    }

    /// Whether this display shows no progress (nothing at all, or only the failures).
    pub(crate) fn is_silent(&self) -> bool {
        matches!(self.inner.display, Drawing::Silent | Drawing::Failures)
    }

    /// Where results for stdout are written. When the bars are drawn on a terminal and stdout
    /// is a terminal too (as a rule the same one), each batch of lines goes through the bars:
    /// they are cleared, the lines written, and the bars drawn again below them, so that a path
    /// or a JSON line never lands on a bar and no bar is left behind. Otherwise, stdout itself.
    pub(crate) fn stdout(&self) -> Box<dyn Write + Send> {
        if self.inner.display == Drawing::Bars && io::stdout().is_terminal() {
            Box::new(AboveBars {
                multi: self.inner.multi.clone(),
                pending: Vec::new(),
            })
        } else {
            Box::new(io::stdout())
        }
    }

    /// Starts tracking one download, labelled `label`.
    pub(crate) fn start(&self, label: &str) -> Tracker {
        let inner = &self.inner;
        let shown = inner.display == Drawing::Bars
            && inner.running.fetch_add(1, Ordering::Relaxed) < MAX_VISIBLE_BARS;
        let bar = shown.then(|| {
            let bar = inner
                .multi
                .insert_before(&inner.overall, ProgressBar::no_length());
            bar.set_style(inner.styles.spinner.clone());
            bar.set_message(elide_middle(label, inner.styles.layout.name));
            bar
        });
        self.show_hidden();
        Tracker {
            progress: self.clone(),
            bar,
            label: label.to_owned(),
            position: AtomicU64::new(0),
            length: AtomicU64::new(UNKNOWN),
            started: Instant::now(),
            reported_at: AtomicU64::new(0),
            received: AtomicU64::new(0),
        }
    }

    /// Shows the run's width (how many downloads may run at once) on the overall line.
    pub(crate) fn show_width(&self, width: usize) {
        self.inner.totals.width.store(width, Ordering::Relaxed);
    }

    /// `+N more` on the overall line while downloads run without a bar.
    fn show_hidden(&self) {
        let inner = &self.inner;
        if inner.display != Drawing::Bars {
            return;
        }
        let hidden = inner
            .running
            .load(Ordering::Relaxed)
            .saturating_sub(MAX_VISIBLE_BARS);
        if inner.totals.hidden.swap(hidden, Ordering::Relaxed) != hidden {
            // Not in the template (`{totals}` shows the count); setting it redraws the line now.
            inner.overall.set_message(hidden.to_string());
        }
    }

    /// Removes the bars once every download is done.
    pub(crate) fn finish(&self) {
        self.inner.overall.finish_and_clear();
        // Clearing can only fail if stderr is gone, and then there is nothing to clear.
        let _ = self.inner.multi.clear();
    }

    /// The run was interrupted: the bars go away for good (downloads still stopping would
    /// only redraw them), and `notice` says what happens now. `typed`: by a Ctrl-C at the
    /// terminal, as a SIGINT is taken to be.
    pub(crate) fn interrupted(&self, notice: &str, typed: bool) {
        let inner = &self.inner;
        if inner.display == Drawing::Bars {
            if typed && crate::platform::echoes_ctrl_c() {
                // The terminal echoed `^C` where the bars left the cursor, at the end of their
                // last line: on a line of its own below them. Clearing from there would leave
                // the top bar on the screen; from one line up, every bar goes (also when they
                // were redrawn, one line lower, after the echo).
                let _ = io::stderr().lock().write_all(b"\r\x1b[2K\x1b[1A");
            }
            let _ = inner.multi.clear();
            inner.multi.set_draw_target(ProgressDrawTarget::hidden());
            write_line(notice);
        } else {
            self.println(notice);
        }
    }

    /// `-v`: prints `lines` on stderr above the bars (or plainly), also when quiet (as curl
    /// `-sv`). Above bars, a line longer than the terminal is cut into lines of its width (a
    /// line the terminal wraps would confuse the redraw), every character kept.
    pub(crate) fn trace(&self, lines: &str) {
        match self.inner.display {
            Drawing::Bars => {
                let width = self.inner.styles.layout.width.max(1);
                let _ = self.inner.multi.println(layout::cut_to_width(lines, width));
            }
            Drawing::Lines | Drawing::Failures | Drawing::Silent => write_line(lines),
            Drawing::Relayed => {
                if let Some(relay) = &self.inner.relay {
                    relay.trace(lines);
                }
            }
        }
    }

    /// Prints a line on stderr above the bars (or plainly when there are none); nothing when
    /// silent.
    pub(crate) fn println(&self, line: &str) {
        match self.inner.display {
            Drawing::Bars => {
                // Wrapped, not left to the terminal: a wrapped line would confuse the redraw.
                let width = self.inner.styles.layout.width;
                let _ = self.inner.multi.println(layout::wrap(line, width));
            }
            Drawing::Lines => write_line(line),
            Drawing::Failures | Drawing::Silent | Drawing::Relayed => {}
        }
    }
}

/// stdout under the bars' redraw ([`Progress::stdout`]): lines wait for a flush, then are
/// written while the bars are off the screen.
struct AboveBars {
    multi: MultiProgress,
    pending: Vec<u8>,
}

impl Write for AboveBars {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Whole lines only: a line cut in two would have a bar drawn into its middle.
        let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') else {
            return Ok(());
        };
        let lines: Vec<u8> = self.pending.drain(..=end).collect();
        self.multi.suspend(|| {
            let mut out = io::stdout().lock();
            out.write_all(&lines).and_then(|()| out.flush())
        })
    }
}

impl Drop for AboveBars {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.pending.push(b'\n');
            // Nobody is left to tell: the printer flushed and checked its writes before.
            let _ = self.flush();
        }
    }
}

/// Writes `line` on stderr in one system call (`eprintln!` makes two: the text, then the
/// newline). A stderr that is gone has no reader to tell.
fn write_line(line: &str) {
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Steps counted on one bar (a benchmark's runs: which mode, run k of n) where a download's
/// bars would be drawn; plain lines per step otherwise.
pub(crate) struct Steps {
    bar: ProgressBar,
}

impl Steps {
    /// `total` steps to come.
    pub(crate) fn new(total: usize) -> Steps {
        if Drawing::choose(0, false) != Drawing::Bars {
            return Steps {
                bar: ProgressBar::hidden(),
            };
        }
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(100));
        Steps { bar }
    }

    /// The step starting now, labelled `label`.
    pub(crate) fn begin(&self, label: &str) {
        self.bar.set_message(label.to_owned());
    }

    /// The step ended; `line` says how, on a line of its own when there is no bar or when it
    /// is `notable` (a failure).
    pub(crate) fn ended(&self, line: &str, notable: bool) {
        if self.bar.is_hidden() || notable {
            self.bar.suspend(|| write_line(line));
        }
        self.bar.inc(1);
    }

    /// Removes the bar once every step is done.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The progress of one download.
pub(crate) struct Tracker {
    progress: Progress,
    /// Its bar, when it has one on screen.
    bar: Option<ProgressBar>,
    label: String,
    /// Bytes in the file so far.
    position: AtomicU64,
    /// The body's size, once known ([`UNKNOWN`] before).
    length: AtomicU64,
    started: Instant,
    /// Milliseconds after `started` of the last relayed position.
    reported_at: AtomicU64,
    /// Bytes received: relayed ones, or as last synced from a relay ([`Tracker::sync`]).
    received: AtomicU64,
}

impl Tracker {
    /// The display's relay, when it has one ([`Progress::relayed`]).
    fn relay(&self) -> Option<&dyn Relay> {
        self.progress.inner.relay.as_deref()
    }

    /// The body's size, once the response head says it (a spinner stays when it doesn't).
    pub(crate) fn set_length(&self, length: Option<u64>) {
        if let Some(length) = length {
            if let Some(relay) = self.relay() {
                relay.length(length);
            }
            let before = self.length.swap(length, Ordering::Relaxed);
            let position = self.position.load(Ordering::Relaxed);
            self.progress.inner.totals.sized(before, length, position);
        }
        if let (Some(length), Some(bar)) = (length, &self.bar) {
            bar.set_length(length);
            bar.set_style(self.progress.inner.styles.bar.clone());
        }
    }

    /// A resumed download starts at `position` bytes.
    pub(crate) fn set_position(&self, position: u64) {
        let before = self.position.swap(position, Ordering::Relaxed);
        if self.length.load(Ordering::Relaxed) != UNKNOWN {
            let totals = &self.progress.inner.totals;
            totals.moved(before, position);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(position);
        }
    }

    /// Another attempt starts after `wait`, because of `err`.
    pub(crate) fn retrying(&self, retry: u32, retries: u32, err: &FetchError, wait: Duration) {
        let note = crate::secret::text(&format!(
            "retry {retry}/{retries} in {} after {err}",
            human_duration(wait)
        ));
        self.show_retry(note);
    }

    /// `-v`: lines about this download's requests (see [`Progress::trace`]).
    pub(crate) fn trace(&self, lines: &str) {
        self.progress.trace(lines);
    }

    /// Shows that a retry is coming (`note` says which and why).
    pub(crate) fn show_retry(&self, note: String) {
        match self.progress.inner.display {
            Drawing::Bars => {
                if let Some(bar) = &self.bar {
                    let width = self.progress.inner.styles.layout.name;
                    bar.set_message(elide_middle(&format!("{} ({note})", self.label), width));
                }
            }
            Drawing::Lines => write_line(&format!("retry   {}: {note}", self.label)),
            Drawing::Relayed => {
                if let Some(relay) = self.relay() {
                    relay.retry(note);
                }
            }
            Drawing::Failures | Drawing::Silent => {}
        }
    }

    /// Mirrors a relayed position (a child's): its file holds `position` bytes, `received` of
    /// them fetched in this run.
    pub(crate) fn sync(&self, position: u64, received: u64) {
        self.set_position(position);
        let before = self.received.swap(received, Ordering::Relaxed);
        let all = &self.progress.inner.totals.bytes;
        all.fetch_add(received.saturating_sub(before), Ordering::Relaxed);
    }

    /// The position goes to the relay at most every [`RELAY_EVERY`].
    fn relay_position(&self, relay: &dyn Relay) {
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.reported_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= RELAY_EVERY.as_millis() as u64 {
            self.reported_at.store(now, Ordering::Relaxed);
            relay.position(
                self.position.load(Ordering::Relaxed),
                self.received.load(Ordering::Relaxed),
            );
        }
    }

    /// `n` more bytes arrived.
    pub(crate) fn advance(&self, n: u64) {
        let before = self.position.fetch_add(n, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
        let totals = &self.progress.inner.totals;
        totals.bytes.fetch_add(n, Ordering::Relaxed);
        if self.length.load(Ordering::Relaxed) != UNKNOWN {
            totals.moved(before, before + n);
        }
        if let Some(relay) = self.relay() {
            self.received.fetch_add(n, Ordering::Relaxed);
            self.relay_position(relay);
        }
    }

    /// The download ended: removes its bar and reports it.
    pub(crate) fn finish(self, outcome: &Outcome) {
        let inner = &self.progress.inner;
        let length = self.length.load(Ordering::Relaxed);
        if length != UNKNOWN {
            inner
                .totals
                .ended(length, self.position.load(Ordering::Relaxed));
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            inner.multi.remove(bar);
        }
        if inner.display == Drawing::Bars {
            inner.running.fetch_sub(1, Ordering::Relaxed);
            self.progress.show_hidden();
        }
        inner.overall.inc(1);
        match (inner.display, &outcome.status) {
            (Drawing::Bars, Status::Saved { .. }) | (Drawing::Silent | Drawing::Relayed, _) => {}
            // Counted in the summary's "not started".
            _ if outcome.never_started() => {}
            // On a terminal, the end's "interrupted: ..." line says it for all of them; with
            // -q, the interruption is the user's own doing.
            (Drawing::Bars | Drawing::Failures, _) if outcome.is_interrupted() => {}
            (Drawing::Failures, Status::Failed(err)) => {
                write_line(&format!("fetchbench: {}: {err}", outcome.url));
            }
            (Drawing::Failures, _) => {}
            _ => self.progress.println(&outcome_line(outcome)),
        }
    }
}

/// How a status shows on stderr (plain when colors are off).
pub(crate) fn paint(outcome: &Outcome) -> Style {
    let style = Style::new().for_stderr();
    match outcome.status {
        Status::Saved { .. } => style.green(),
        Status::Skipped { .. } => style.dim(),
        Status::Failed(_) if outcome.is_interrupted() => style.yellow(),
        Status::Failed(_) => style.red().bold(),
    }
}

/// One human line about a finished download.
fn outcome_line(outcome: &Outcome) -> String {
    let retries = match outcome.retries {
        0 => String::new(),
        1 => ", 1 retry".to_owned(),
        n => format!(", {n} retries"),
    };
    let kept = outcome.partial.as_ref().map_or(String::new(), |p| {
        format!(" (partial kept: {}; resume with -c)", p.display())
    });
    let word = |w: &str| paint(outcome).apply_to(w.to_owned()).to_string();
    match &outcome.status {
        Status::Saved { path } => format!(
            "{}   {} ({} in {}{retries})",
            word("saved"),
            path.display(),
            human_bytes(outcome.bytes),
            human_duration(outcome.elapsed)
        ),
        Status::Skipped { path, why } => {
            format!("{} {}: {}", word("skipped"), path.display(), why.reason())
        }
        Status::Failed(err) if outcome.is_interrupted() => {
            format!("{} {}: {err}{kept}", word("INTERRUPTED"), outcome.url)
        }
        Status::Failed(err) => {
            let err = crate::secret::text(&err.to_string());
            format!("{}  {}: {err}{kept}{retries}", word("FAILED"), outcome.url)
        }
    }
}

fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
        .with_key("rate", WindowKey::new(Shows::Rate))
        .with_key("eta", WindowKey::new(Shows::Eta))
}

fn spinner_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key("rate", WindowKey::new(Shows::Rate))
}

/// The overall line: its `{totals}` key lays out the counts, rate, ETA and bar in `room`
/// columns.
fn overall_style(template: &str, totals: &Arc<Totals>, room: usize) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("totals", OverallKey::new(Arc::clone(totals), room))
}

/// A tracker's length before the response head says it.
const UNKNOWN: u64 = u64::MAX;

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use indicatif::TermLike;

    use super::*;
    use crate::server::{ServerConfig, ServerHandle};

    /// A terminal of `width` columns that keeps every line drawn on it.
    #[derive(Debug, Clone)]
    struct Screen {
        width: u16,
        lines: Arc<Mutex<Vec<(Instant, String)>>>,
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            self.width
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            let mut lines = self.lines.lock().unwrap();
            lines.extend(s.lines().map(|l| (Instant::now(), l.to_owned())));
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The speed shown in a drawn bar line (`2.00 MiB/s`), in bytes per second.
    fn shown_rate(line: &str) -> Option<f64> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words
            .iter()
            .position(|w| w.ends_with("iB/s") || *w == "B/s")?;
        let number: f64 = words.get(at.checked_sub(1)?)?.parse().ok()?;
        let unit = match words[at] {
            "B/s" => 1.0,
            "KiB/s" => 1024.0,
            "MiB/s" => 1024.0 * 1024.0,
            "GiB/s" => 1024.0 * 1024.0 * 1024.0,
            _ => return None,
        };
        Some(number * unit)
    }

    /// With more downloads running than bars are drawn, the overall line says how many more.
    #[test]
    fn downloads_without_a_bar_show_as_more_on_the_overall_line() {
        let screen = Screen {
            width: 80,
            lines: Arc::default(),
        };
        let progress = Progress::drawn_on(
            Drawing::Bars,
            ProgressDrawTarget::term_like(Box::new(screen.clone())),
            Some(80),
            None,
        );
        let trackers: Vec<Tracker> = (0..MAX_VISIBLE_BARS + 4)
            .map(|i| progress.start(&format!("file-{i}.bin")))
            .collect();
        progress.inner.overall.tick();
        let drawn = |text: &str| {
            let lines = screen.lines.lock().unwrap();
            lines.iter().any(|(_, line)| line.contains(text))
        };
        assert!(drawn("+4 more"), "{:?}", screen.lines.lock().unwrap());
        assert!(drawn("file-15.bin") && !drawn("file-16.bin"));
        drop(trackers);
    }

    /// A real download from the built-in server capped at 2 MiB/s, drawn with the 80-column
    /// layout on a recording terminal: after the first seconds, the speed on the bar is the
    /// real one within 10%, and no line is wider than the terminal.
    #[test]
    fn the_bar_shows_the_real_speed_of_a_rate_limited_download_in_80_columns() {
        let rate = 2 * 1024 * 1024;
        let size = 6 * 1024 * 1024;
        let server = ServerHandle::start(ServerConfig {
            rate: Some(rate),
            size,
            ..ServerConfig::default()
        })
        .unwrap();
        let screen = Screen {
            width: 80,
            lines: Arc::default(),
        };
        let layout = Layout::for_width(Some(80));
        let bar = ProgressBar::with_draw_target(
            Some(size),
            ProgressDrawTarget::term_like(Box::new(screen.clone())),
        );
        bar.set_style(bar_style(&layout.bar));
        bar.set_message("rate-limited.bin");
        let url = format!("{}/files/rate-limited.bin", server.base_url());
        let started = Instant::now();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let http = crate::http::HttpSettings::new(crate::http::HttpOptions::default());
            let client = http.unwrap().client().unwrap();
            let mut response = client.get(&url).send().await.unwrap();
            while let Some(chunk) = response.chunk().await.unwrap() {
                bar.inc(chunk.len() as u64);
            }
        });
        bar.finish();
        let lines = screen.lines.lock().unwrap();
        for (_, line) in lines.iter() {
            let width = console::measure_text_width(line);
            assert!(width < 80, "{width} columns: {line:?}");
        }
        let settled: Vec<f64> = lines
            .iter()
            .filter(|(at, _)| at.duration_since(started) > Duration::from_millis(1500))
            .filter_map(|(_, line)| shown_rate(line))
            .collect();
        assert!(settled.len() >= 3, "too few frames: {lines:?}");
        for shown in settled {
            let error = (shown - rate as f64).abs() / rate as f64;
            assert!(error < 0.10, "shown {shown:.0} B/s, real {rate} B/s");
        }
    }
}
