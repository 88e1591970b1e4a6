//! What a run reports: paths or JSON lines on stdout (for scripts), a table and a total line on
//! stderr (for people).

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use console::{measure_text_width, style};
use serde::Serialize;

use crate::cancel::EXIT_INTERRUPTED;
use crate::model::Mode;
use crate::model::{Outcome, Status, hex};
use crate::progress::{elide_middle, paint};
use crate::units::{human_bytes, human_duration};

/// Exit code when at least one download failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code for a usage or setup error (bad URL, unusable output directory).
pub const EXIT_USAGE: u8 = 2;

/// The result of one run.
#[derive(Debug)]
pub struct Summary {
    pub mode: Mode,
    pub jobs: usize,
    /// What the downloads came to, counted as they ended.
    pub tally: Tally,
    /// From before the first download started until every worker was joined.
    pub elapsed: Duration,
    /// Stopped by Ctrl-C.
    pub interrupted: bool,
    /// URLs read but never started (the run was interrupted): those the workers were about to
    /// take, and those left in the input queue.
    pub not_started: usize,
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

/// Which rows the end-of-run table shows (`--table`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TableRows {
    /// The failures and the few slowest downloads: a size that does not grow with the list.
    #[default]
    Short,
    /// Every download, in the order they ended (kept in memory until the end).
    Full,
}

/// Failures listed in the short table; the others are counted.
const FAILURE_ROWS: usize = 20;
/// Slowest downloads listed in the short table.
const SLOWEST_ROWS: usize = 5;

/// What the downloads of a run came to, added up one outcome at a time: counts and totals,
/// plus the few table rows the report shows (all of them only with `--table full`).
#[derive(Debug)]
pub struct Tally {
    pub counts: Counts,
    /// Outcomes, of every kind.
    pub files: usize,
    /// Body bytes received by all downloads.
    pub bytes: u64,
    /// The first failures' rows, and how many more there were.
    failures: Vec<Vec<String>>,
    more_failures: usize,
    /// The slowest saved downloads' rows, slowest first.
    slowest: Vec<(Duration, Vec<String>)>,
    /// Every row, with `--table full`.
    all: Option<Vec<Vec<String>>>,
    /// Whether any row has a digest (the column is left out otherwise).
    digests: bool,
}

impl Tally {
    pub fn new(rows: TableRows) -> Self {
        Tally {
            counts: Counts::default(),
            files: 0,
            bytes: 0,
            failures: Vec::new(),
            more_failures: 0,
            slowest: Vec::new(),
            all: (rows == TableRows::Full).then(Vec::new),
            digests: false,
        }
    }

    /// Counts one outcome, and keeps its row if the report will show it. A download that never
    /// started (Ctrl-C) is only counted.
    pub fn add(&mut self, outcome: &Outcome) {
        if outcome.never_started() {
            self.counts.not_started += 1;
            return;
        }
        self.files += 1;
        self.counts.interrupted += usize::from(outcome.is_interrupted());
        self.bytes += outcome.bytes;
        self.counts.retries += outcome.retries;
        self.digests |= outcome.sha256.is_some();
        match outcome.status {
            Status::Saved { .. } => self.counts.ok += 1,
            Status::Skipped { .. } => self.counts.skipped += 1,
            Status::Failed(_) => self.counts.failed += 1,
        }
        if let Some(all) = &mut self.all {
            all.push(table_row(outcome));
            return;
        }
        if outcome.is_failure() {
            if self.failures.len() < FAILURE_ROWS {
                self.failures.push(table_row(outcome));
            } else {
                self.more_failures += 1;
            }
        } else if matches!(outcome.status, Status::Saved { .. }) {
            let slower = self.slowest.len() < SLOWEST_ROWS
                || self
                    .slowest
                    .last()
                    .is_some_and(|(e, _)| outcome.elapsed > *e);
            if slower {
                let at = self.slowest.partition_point(|(e, _)| *e >= outcome.elapsed);
                self.slowest
                    .insert(at, (outcome.elapsed, table_row(outcome)));
                self.slowest.truncate(SLOWEST_ROWS);
            }
        }
    }
}

impl Summary {
    pub fn counts(&self) -> Counts {
        self.tally.counts
    }

    /// Body bytes received by all downloads.
    pub fn bytes(&self) -> u64 {
        self.tally.bytes
    }

    /// Aggregate throughput in bytes per second.
    pub fn throughput(&self) -> f64 {
        rate(self.bytes(), self.elapsed)
    }

    /// 0 if every download succeeded (or was skipped by `--no-clobber`), 1 if any failed,
    /// 130 if the run was interrupted.
    pub fn exit_code(&self) -> ExitCode {
        if self.interrupted {
            ExitCode::from(EXIT_INTERRUPTED)
        } else if self.tally.counts.failed > 0 {
            ExitCode::from(EXIT_FAILED)
        } else {
            ExitCode::SUCCESS
        }
    }

    /// `interrupted: 12 done, 3 in flight kept as .part, 85 not started`: what Ctrl-C left.
    pub fn interrupted_line(&self) -> String {
        let counts = self.counts();
        let in_flight = counts.interrupted;
        format!(
            "interrupted: {} done, {in_flight} in flight kept as .part, {} not started",
            self.tally.files - in_flight,
            self.not_started
        )
    }

    /// `pool, 8 jobs: 19 ok, 1 failed, 4.75 MiB in 1.23s (3.86 MiB/s)`
    pub fn total_line(&self) -> String {
        let counts = self.counts();
        let skipped = match counts.skipped {
            0 => String::new(),
            n => format!(", {n} skipped"),
        };
        let retries = match counts.retries {
            0 => String::new(),
            1 => ", 1 retry".to_owned(),
            n => format!(", {n} retries"),
        };
        format!(
            "{}{}, {} jobs: {} ok, {} failed{skipped}{retries}, {} in {} ({}/s)",
            if self.interrupted {
                style("INTERRUPTED: ")
                    .for_stderr()
                    .yellow()
                    .bold()
                    .to_string()
            } else {
                String::new()
            },
            self.mode,
            self.jobs,
            counts.ok,
            counts.failed,
            human_bytes(self.bytes()),
            human_duration(self.elapsed),
            human_bytes(self.throughput() as u64),
        )
    }
}

pub(crate) fn rate(bytes: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { bytes as f64 / secs } else { 0.0 }
}

/// The summary object that ends `--json` output; the shape is `schema.json`.
pub fn write_json_summary(summary: &Summary, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &SummaryRecord::from(summary))?;
    out.write_all(b"\n")?;
    out.flush()
}

/// One download's JSON line.
#[derive(Serialize)]
pub(crate) struct DownloadRecord<'a> {
    r#type: &'static str,
    index: usize,
    url: &'a str,
    path: Option<String>,
    status: &'static str,
    http_status: Option<u16>,
    bytes: u64,
    elapsed_ms: f64,
    retries: u32,
    sha256: Option<String>,
    partial: Option<String>,
    error: Option<String>,
}

impl<'a> From<&'a Outcome> for DownloadRecord<'a> {
    fn from(outcome: &'a Outcome) -> Self {
        DownloadRecord {
            r#type: "download",
            index: outcome.index,
            url: &outcome.url,
            path: outcome.path().map(|p| p.display().to_string()),
            status: outcome.status_word(),
            http_status: outcome.http_status,
            bytes: outcome.bytes,
            elapsed_ms: millis(outcome.elapsed),
            retries: outcome.retries,
            sha256: outcome.sha256.as_ref().map(hex),
            partial: outcome.partial.as_ref().map(|p| p.display().to_string()),
            error: match &outcome.status {
                Status::Failed(err) => Some(err.to_string()),
                _ => None,
            },
        }
    }
}

#[derive(Serialize)]
struct SummaryRecord {
    r#type: &'static str,
    mode: Mode,
    jobs: usize,
    files: usize,
    ok: usize,
    failed: usize,
    skipped: usize,
    retries: u32,
    interrupted: bool,
    not_started: usize,
    bytes: u64,
    elapsed_ms: f64,
    elapsed: Elapsed,
    throughput_bps: f64,
}

#[derive(Serialize)]
struct Elapsed {
    secs: u64,
    nanos: u32,
    human: String,
}

impl From<&Summary> for SummaryRecord {
    fn from(summary: &Summary) -> Self {
        let counts = summary.counts();
        SummaryRecord {
            r#type: "summary",
            mode: summary.mode,
            jobs: summary.jobs,
            files: summary.tally.files,
            ok: counts.ok,
            failed: counts.failed,
            skipped: counts.skipped,
            retries: counts.retries,
            interrupted: summary.interrupted,
            not_started: summary.not_started,
            bytes: summary.bytes(),
            elapsed_ms: millis(summary.elapsed),
            elapsed: Elapsed {
                secs: summary.elapsed.as_secs(),
                nanos: summary.elapsed.subsec_nanos(),
                human: human_duration(summary.elapsed),
            },
            throughput_bps: summary.throughput(),
        }
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The human summary: the failures and the few slowest downloads (or, with `--table full`,
/// every download) as tables, then the total line. Tables fit in `width` columns when given
/// (see [`fit_table`]).
pub fn write_table(
    summary: &Summary,
    width: Option<usize>,
    out: &mut impl Write,
) -> io::Result<()> {
    let tally = &summary.tally;
    let mut header = vec![
        "file", "status", "bytes", "time", "rate", "retries", "sha256", "",
    ];
    let mut align = vec![Left, Left, Right, Right, Right, Right, Left, Left];
    let digests = tally.digests;
    if !digests {
        header.remove(6);
        align.remove(6);
    }
    let table = |title: &str, rows: &mut dyn Iterator<Item = &Vec<String>>| {
        let rows: Vec<Vec<String>> = rows
            .map(|row| {
                let mut row = row.clone();
                if !digests {
                    row.remove(6);
                }
                row
            })
            .collect();
        match rows.is_empty() {
            true => String::new(),
            false => format!(
                "{title}\n{}",
                fit_table(&header, rows, &align, width, &NARROWING)
            ),
        }
    };
    if let Some(all) = &tally.all {
        write!(out, "{}", table("", &mut all.iter()).trim_start())?;
    } else {
        let failed = table("failed:", &mut tally.failures.iter());
        write!(out, "{failed}")?;
        if tally.more_failures > 0 {
            writeln!(
                out,
                "... and {} more failures (each is in the lines above, or use --json)",
                tally.more_failures
            )?;
        }
        let slowest = match tally.slowest.len() {
            1 => "saved:",
            _ => "slowest:",
        };
        write!(
            out,
            "{}",
            table(slowest, &mut tally.slowest.iter().map(|(_, row)| row))
        )?;
    }
    if summary.interrupted {
        writeln!(out, "{}", summary.interrupted_line())?;
    }
    writeln!(out, "{}", summary.total_line())?;
    out.flush()
}

/// How a table column is aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}
use Align::{Left, Right};

/// How a table too wide for the terminal is narrowed, step by step, until it fits: columns
/// dropped, or the first column (file names) and the last (errors) elided in the middle down
/// to a number of columns.
pub enum Narrow {
    Drop(&'static str),
    Elide(usize),
}

/// How the end-of-run tables are narrowed.
const NARROWING: [Narrow; 8] = [
    Narrow::Drop("retries"),
    Narrow::Drop("rate"),
    Narrow::Elide(24),
    Narrow::Drop("sha256"),
    Narrow::Drop("time"),
    Narrow::Drop("bytes"),
    Narrow::Elide(12),
    Narrow::Elide(4),
];

/// Lays out a table in at most `width` columns, narrowing it step by step as `narrowing` says.
/// Without a width, the table is as wide as its cells.
pub fn fit_table(
    header: &[&str],
    mut rows: Vec<Vec<String>>,
    align: &[Align],
    width: Option<usize>,
    narrowing: &[Narrow],
) -> String {
    let (mut header, mut align) = (header.to_vec(), align.to_vec());
    if let Some(width) = width {
        // Never the last column: some terminals wrap when it is written.
        let width = width.saturating_sub(1);
        for step in narrowing {
            let widths = column_widths(&header, &rows);
            let total = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
            if total <= width {
                break;
            }
            match step {
                Narrow::Drop(name) => {
                    if let Some(at) = header.iter().position(|h| h == name) {
                        header.remove(at);
                        align.remove(at);
                        rows.iter_mut().for_each(|row| drop(row.remove(at)));
                    }
                }
                Narrow::Elide(floor) => {
                    let last = widths.len() - 1;
                    let excess = total - width;
                    // The errors give first, then the names.
                    let last_gives = excess.min(widths[last].saturating_sub(*floor));
                    let first_gives = (excess - last_gives).min(widths[0].saturating_sub(*floor));
                    for row in &mut rows {
                        if last_gives > 0 && last > 0 {
                            row[last] = elide_middle(&row[last], widths[last] - last_gives);
                        }
                        if first_gives > 0 {
                            row[0] = elide_middle(&row[0], widths[0] - first_gives);
                        }
                    }
                }
            }
        }
    }
    format_table(&header, &rows, &align)
}

/// The width of each column: its widest cell or heading, counting only what shows.
fn column_widths(header: &[&str], rows: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = header.iter().map(|h| measure_text_width(h)).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(measure_text_width(cell));
        }
    }
    widths
}

/// Lays out `rows` under `header` in padded columns, one line each, trailing spaces trimmed.
/// Cells may be styled: widths count only what shows.
pub fn format_table(header: &[&str], rows: &[Vec<String>], align: &[Align]) -> String {
    let widths = column_widths(header, rows);
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut text = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for ((cell, width), align) in row.iter().zip(&widths).zip(align) {
            let pad = " ".repeat(width.saturating_sub(measure_text_width(cell)));
            match align {
                Left => line.push_str(&format!("{cell}{pad}  ")),
                Right => line.push_str(&format!("{pad}{cell}  ")),
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

fn table_row(outcome: &Outcome) -> Vec<String> {
    let file = match outcome.path() {
        Some(path) => path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        ),
        None => outcome.url.clone(),
    };
    let detail = match &outcome.status {
        Status::Failed(err) => match &outcome.partial {
            Some(part) => format!("{err} (partial kept: {})", part.display()),
            None => err.to_string(),
        },
        Status::Skipped { .. } => "already exists (--no-clobber)".to_owned(),
        Status::Saved { .. } => String::new(),
    };
    vec![
        file,
        paint(outcome).apply_to(outcome.status_word()).to_string(),
        human_bytes(outcome.bytes),
        human_duration(outcome.elapsed),
        format!(
            "{}/s",
            human_bytes(rate(outcome.bytes, outcome.elapsed) as u64)
        ),
        outcome.retries.to_string(),
        outcome.sha256.as_ref().map_or(String::new(), hex),
        detail,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, error: &str, width: Option<usize>) -> String {
        let header = ["file", "status", "bytes", "time", "rate", "retries", ""];
        let align = [Left, Left, Right, Right, Right, Right, Left];
        let row = [
            name,
            "failed",
            "1.00 MiB",
            "1.23s",
            "812.00 KiB/s",
            "3",
            error,
        ];
        let rows = vec![row.map(str::to_owned).to_vec()];
        fit_table(&header, rows, &align, width, &NARROWING)
    }

    #[test]
    fn a_table_fits_the_width_dropping_columns_in_order_then_eliding() {
        let name = "debian-12.5.0-amd64-netinst-with-firmware-and-more.iso";
        let error = "body ended after 1048576 of 2097152 bytes (connection reset by peer)";
        let wide = table(name, error, None);
        assert!(wide.contains(name) && wide.contains(error) && wide.contains("retries"));
        for width in [60, 80, 100, 120] {
            let fitted = table(name, error, Some(width));
            let widest = fitted.lines().map(measure_text_width).max().unwrap();
            assert!(widest < width, "{width}: {widest}\n{fitted}");
        }
        let at_120 = table(name, error, Some(120));
        assert!(
            !at_120.contains("retries") && at_120.contains("time"),
            "{at_120}"
        );
        let at_80 = table(name, error, Some(80));
        assert!(
            at_80.contains("debian-12") && at_80.contains('…'),
            "{at_80}"
        );
    }

    #[test]
    fn a_table_that_fits_is_left_whole() {
        let fitted = table("a.bin", "HTTP 404", Some(200));
        assert_eq!(fitted, table("a.bin", "HTTP 404", None));
    }
}
