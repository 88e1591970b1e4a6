//! What a run reports: paths or JSON lines on stdout (for scripts), a table and a total line on
//! stderr (for people).

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use console::{Style, measure_text_width, style};
use serde::Serialize;

use crate::cancel::EXIT_INTERRUPTED;
use crate::engine::Mode;
use crate::fetch::{Outcome, Status, hex};
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
}

/// How many downloads ended which way.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub ok: usize,
    pub failed: usize,
    pub skipped: usize,
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

    /// Counts one outcome, and keeps its row if the report will show it.
    pub fn add(&mut self, outcome: &Outcome) {
        self.files += 1;
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
            status: status_word(outcome),
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

/// How a status shows on stderr (plain when colors are off).
pub fn paint(outcome: &Outcome) -> Style {
    let style = Style::new().for_stderr();
    match outcome.status {
        Status::Saved { .. } => style.green(),
        Status::Skipped { .. } => style.dim(),
        Status::Failed(_) if outcome.is_interrupted() => style.yellow(),
        Status::Failed(_) => style.red().bold(),
    }
}

fn status_word(outcome: &Outcome) -> &'static str {
    match outcome.status {
        Status::Saved { .. } => "ok",
        Status::Skipped { .. } => "skipped",
        Status::Failed(_) if outcome.is_interrupted() => "interrupted",
        Status::Failed(_) => "failed",
    }
}

/// The human summary: the failures and the few slowest downloads (or, with `--table full`,
/// every download) as tables, then the total line.
pub fn write_table(summary: &Summary, out: &mut impl Write) -> io::Result<()> {
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
            false => format!("{title}\n{}", format_table(&header, &rows, &align)),
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

/// Lays out `rows` under `header` in padded columns, one line each, trailing spaces trimmed.
/// Cells may be styled: widths count only what shows.
pub fn format_table(header: &[&str], rows: &[Vec<String>], align: &[Align]) -> String {
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| measure_text_width(h)).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(measure_text_width(cell));
        }
    }
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
        paint(outcome).apply_to(status_word(outcome)).to_string(),
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
