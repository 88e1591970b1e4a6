//! What a run comes to: its [`Summary`] (the [`Tally`] the printer added up, and how the run
//! went), the exit code, and the human summary on stderr (tables of the failures and the
//! slowest downloads, then a total line). The JSON summary is in [`json`], table layout in
//! [`table`].

pub(crate) mod json;
pub(crate) mod table;

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use console::style;

use self::table::Align::{Left, Right};
use self::table::{Narrow, fit_table};
use crate::cancel::EXIT_INTERRUPTED;
use crate::fetch::naming::name_from_url;
use crate::model::{Counts, Mode, Outcome, Shard, Status, hex};
use crate::progress::{paint, wrap};
use crate::results::Tally;
use crate::units::{human_bytes, human_duration};
use crate::width::{Jobs, WidthReport};

/// `--table`: which rows the tables show (the printer keeps them).
pub(crate) use crate::results::TableRows;

/// Exit code when at least one download failed.
pub(crate) const EXIT_FAILED: u8 = 1;
/// Exit code for a usage or setup error (bad URL, unusable output directory).
pub const EXIT_USAGE: u8 = 2;

/// The result of one run.
#[derive(Debug)]
pub(crate) struct Summary {
    pub(crate) mode: Mode,
    /// The width the run ran at (`-j`, and under `auto` how wide it went).
    pub(crate) width: WidthReport,
    /// `--shard K/N`, if the run took one shard of its input.
    pub(crate) shard: Option<Shard>,
    /// What the downloads came to, counted as they ended.
    pub(crate) tally: Tally,
    /// From before the first download started until every worker was joined.
    pub(crate) elapsed: Duration,
    /// Stopped by Ctrl-C.
    pub(crate) interrupted: bool,
    /// URLs read but never started (the run was interrupted): those the workers were about to
    /// take, and those left in the input queue.
    pub(crate) not_started: usize,
}

impl Summary {
    pub(crate) fn counts(&self) -> Counts {
        self.tally.counts
    }

    /// Body bytes received by all downloads.
    pub(crate) fn bytes(&self) -> u64 {
        self.tally.bytes
    }

    /// Aggregate throughput in bytes per second.
    pub(crate) fn throughput(&self) -> f64 {
        rate(self.bytes(), self.elapsed)
    }

    /// 0 if every download succeeded (or was skipped by `--no-clobber`), 1 if any failed,
    /// 130 if the run was interrupted.
    pub(crate) fn exit_code(&self) -> ExitCode {
        if self.interrupted {
            ExitCode::from(EXIT_INTERRUPTED)
        } else if self.tally.counts.failed > 0 {
            ExitCode::from(EXIT_FAILED)
        } else {
            ExitCode::SUCCESS
        }
    }

    /// `interrupted: 12 done, 3 in flight kept as .part, 85 not started`: what Ctrl-C left.
    pub(crate) fn interrupted_line(&self) -> String {
        let counts = self.counts();
        let in_flight = counts.interrupted;
        format!(
            "interrupted: {} done, {in_flight} in flight kept as .part, {} not started",
            self.tally.files - in_flight,
            self.not_started
        )
    }

    /// How the run was scheduled: `seq`, `threads`, `pool, 8 jobs`,
    /// `async, auto (up to 128 at once)`.
    pub(crate) fn schedule(&self) -> String {
        match self.width.jobs {
            Jobs::Auto if self.mode.uses_jobs() => {
                format!("{}, auto (up to {} at once)", self.mode, self.width.peak)
            }
            Jobs::Auto => self.mode.name().to_owned(),
            Jobs::Fixed(n) => self.mode.label(n),
        }
    }

    /// `pool, 8 jobs: 19 ok, 1 failed, 4.75 MiB in 1.23s (3.86 MiB/s)` (`pool, 8 jobs, shard
    /// 2/4: ...` with `--shard`); after Ctrl-C, `INTERRUPTED: pool, 8 jobs: 12 ok, 0 failed,
    /// 3 interrupted, ...` (the interrupted ones are not called failed).
    pub(crate) fn total_line(&self) -> String {
        let counts = self.counts();
        let shard = match self.shard {
            Some(shard) => format!(", shard {shard}"),
            None => String::new(),
        };
        // Stopped by the run's Ctrl-C: not failures. (A download interrupted on its own, its
        // worker sent a SIGINT alone, failed: it counts as such, and in the exit code.)
        let stopped = match self.interrupted {
            true => counts.interrupted,
            false => 0,
        };
        let interrupted = match stopped {
            0 => String::new(),
            n => format!(", {n} interrupted"),
        };
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
            "{}{}{shard}: {} ok, {} failed{interrupted}{skipped}{retries}, {} in {} ({}/s)",
            if self.interrupted {
                style("INTERRUPTED: ")
                    .for_stderr()
                    .yellow()
                    .bold()
                    .to_string()
            } else {
                String::new()
            },
            self.schedule(),
            counts.ok,
            counts.failed - stopped,
            human_bytes(self.bytes()),
            human_duration(self.elapsed),
            human_bytes(self.throughput() as u64),
        )
    }
}

fn rate(bytes: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { bytes as f64 / secs } else { 0.0 }
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

/// The human summary: the failures and the few slowest downloads (or, with `--table full`,
/// every download) as tables, then the total line. Tables fit in `width` columns when given
/// (see [`fit_table`]).
pub(crate) fn write_summary(
    summary: &Summary,
    width: Option<usize>,
    out: &mut impl Write,
) -> io::Result<()> {
    let tables = Tables {
        digests: summary.tally.digests,
        width,
    };
    tables.write(&summary.tally, out)?;
    // Broken between words, not by the terminal, when too long for it.
    let fit = |line: String| match width {
        Some(width) => wrap(&line, width.saturating_sub(1)),
        None => line,
    };
    if summary.interrupted {
        writeln!(out, "{}", fit(summary.interrupted_line()))?;
    }
    writeln!(out, "{}", fit(summary.total_line()))?;
    out.flush()
}

/// How the summary's tables are laid out: with a digest column only if some download has a
/// digest, in `width` columns when given.
struct Tables {
    digests: bool,
    width: Option<usize>,
}

impl Tables {
    /// Every download's table (`--table full`), or those of the failures and the slowest.
    fn write(&self, tally: &Tally, out: &mut impl Write) -> io::Result<()> {
        if let Some(all) = &tally.all {
            return write!(out, "{}", self.render("", "note", all).trim_start());
        }
        let title = match (tally.counts.interrupted, tally.counts.failed) {
            (0, _) => "failed:",
            (stopped, all) if stopped == all => "interrupted:",
            _ => "failed or interrupted:",
        };
        write!(out, "{}", self.render(title, "error", &tally.failures))?;
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
        write!(out, "{}", self.render(slowest, "", &tally.slowest))
    }

    /// `outcomes` as a table under `title`; nothing when there are none. The last column,
    /// headed `last`, holds the errors (or notes) when any row has one, and is left out else.
    fn render(&self, title: &str, last: &str, outcomes: &[Outcome]) -> String {
        let mut header = vec![
            "file", "status", "bytes", "time", "rate", "retries", "sha256", "error",
        ];
        let mut align = vec![Left, Left, Right, Right, Right, Right, Left, Left];
        let mut rows: Vec<Vec<String>> = outcomes.iter().map(table_row).collect();
        if !self.digests {
            header.remove(6);
            align.remove(6);
            rows.iter_mut().for_each(|row| drop(row.remove(6)));
        }
        if rows
            .iter()
            .all(|row| row.last().is_some_and(String::is_empty))
        {
            header.pop();
            align.pop();
            rows.iter_mut().for_each(|row| drop(row.pop()));
        } else if let Some(heading) = header.last_mut() {
            *heading = last;
        }
        match rows.is_empty() {
            true => String::new(),
            false => format!(
                "{title}\n{}",
                fit_table(&header, rows, &align, self.width, &NARROWING)
            ),
        }
    }
}

/// The file a row is about: the saved (or kept) file's name; for a failure, the name its
/// `.part` has, or the name its URL gives; the text itself for a list line that is no URL.
fn file_of(outcome: &Outcome) -> String {
    let name = |path: &Path| {
        path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        )
    };
    if let Some(path) = outcome.path() {
        return name(path);
    }
    if let Some(part) = &outcome.partial {
        let part = name(part);
        return part
            .strip_suffix(".part")
            .map_or(part.clone(), str::to_owned);
    }
    match reqwest::Url::parse(&outcome.url) {
        Ok(url) => name_from_url(&url),
        Err(_) => outcome.url.clone(),
    }
}

fn table_row(outcome: &Outcome) -> Vec<String> {
    let file = file_of(outcome);
    // The `.part` by its name: the directory is -o's.
    let kept = |part: &Path| {
        let name = part.file_name().map_or(part.as_os_str(), |n| n);
        format!("kept {} for -c", name.to_string_lossy())
    };
    let detail = match &outcome.status {
        Status::Failed(_) if outcome.is_interrupted() => {
            outcome.partial.as_deref().map_or_else(String::new, kept)
        }
        Status::Failed(err) => crate::secret::text(&match &outcome.partial {
            Some(part) => format!("{err}; {}", kept(part)),
            None => err.to_string(),
        }),
        Status::Skipped { why, .. } => why.reason().to_owned(),
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
    use console::measure_text_width;

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
