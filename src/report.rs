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
    /// In input order.
    pub outcomes: Vec<Outcome>,
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

impl Summary {
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for outcome in &self.outcomes {
            counts.retries += outcome.retries;
            match outcome.status {
                Status::Saved { .. } => counts.ok += 1,
                Status::Skipped { .. } => counts.skipped += 1,
                Status::Failed(_) => counts.failed += 1,
            }
        }
        counts
    }

    /// Body bytes received by all downloads.
    pub fn bytes(&self) -> u64 {
        self.outcomes.iter().map(|o| o.bytes).sum()
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
        } else if self.outcomes.iter().any(Outcome::is_failure) {
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

/// The path of each saved file, one per line, in input order.
pub fn write_paths(summary: &Summary, out: &mut impl Write) -> io::Result<()> {
    for outcome in &summary.outcomes {
        if let Status::Saved { path } = &outcome.status {
            writeln!(out, "{}", path.display())?;
        }
    }
    out.flush()
}

/// One JSON object per download, then a summary object; the shape is `schema.json`.
pub fn write_json(summary: &Summary, out: &mut impl Write) -> io::Result<()> {
    for outcome in &summary.outcomes {
        serde_json::to_writer(&mut *out, &DownloadRecord::from(outcome))?;
        out.write_all(b"\n")?;
    }
    serde_json::to_writer(&mut *out, &SummaryRecord::from(summary))?;
    out.write_all(b"\n")?;
    out.flush()
}

#[derive(Serialize)]
struct DownloadRecord<'a> {
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
            url: outcome.url.as_str(),
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
            files: summary.outcomes.len(),
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

/// The human summary: a table (file, status, bytes, time, rate, and the error of a failure)
/// and the total line.
pub fn write_table(summary: &Summary, out: &mut impl Write) -> io::Result<()> {
    let mut header = vec!["file", "status", "bytes", "time", "rate", "retries", ""];
    let mut align = vec![Left, Left, Right, Right, Right, Right, Left];
    let digests = summary.outcomes.iter().any(|o| o.sha256.is_some());
    if digests {
        header.insert(6, "sha256");
        align.insert(6, Left);
    }
    let rows: Vec<Vec<String>> = summary
        .outcomes
        .iter()
        .map(|outcome| {
            let mut row = table_row(outcome);
            if digests {
                row.insert(6, outcome.sha256.as_ref().map_or(String::new(), hex));
            }
            row
        })
        .collect();
    write!(out, "{}", format_table(&header, &rows, &align))?;
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
        None => outcome.url.to_string(),
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
        detail,
    ]
}
