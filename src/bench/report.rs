//! The benchmark's report: statistics per mode, ratios, a bar chart, and the exports.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::{Run, Source, Workload};
use crate::engine::Mode;
use crate::report::{Align, format_table};
use crate::units::{human_bytes, human_duration};

/// Width of the longest bar in the chart, in characters.
const CHART_WIDTH: usize = 40;

/// The runs of every mode, summarised.
#[derive(Debug)]
pub struct Report {
    workload: String,
    settings: String,
    files: usize,
    jobs: usize,
    /// Whether the workload's theoretical best is known (the built-in server's).
    has_ideal: bool,
    rows: Vec<Row>,
}

#[derive(Debug)]
struct Row {
    mode: Mode,
    /// The least time this mode's concurrency allows on the workload, when known.
    ideal: Option<Duration>,
    runs: Vec<Run>,
    /// Over the runs that succeeded; `None` when none did.
    stats: Option<Stats>,
}

/// Wall time statistics, in seconds.
#[derive(Debug, Clone, Copy)]
struct Stats {
    mean: f64,
    stddev: f64,
    min: f64,
    max: f64,
    /// Mean user + system CPU time.
    cpu: f64,
    /// Bytes of one run.
    bytes: u64,
}

impl Stats {
    fn of(runs: &[Run]) -> Option<Stats> {
        let ok: Vec<&Run> = runs.iter().filter(|r| r.ok()).collect();
        let times: Vec<f64> = ok.iter().map(|r| r.elapsed.as_secs_f64()).collect();
        let n = times.len() as f64;
        let mean = times.iter().sum::<f64>() / n;
        let variance = match times.len() {
            0 => return None,
            1 => 0.0,
            _ => times.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / (n - 1.0),
        };
        Some(Stats {
            mean,
            stddev: variance.sqrt(),
            min: times.iter().copied().fold(f64::INFINITY, f64::min),
            max: times.iter().copied().fold(0.0, f64::max),
            cpu: ok.iter().map(|r| r.cpu.as_secs_f64()).sum::<f64>() / n,
            bytes: ok[0].bytes,
        })
    }
}

fn secs(s: f64) -> String {
    human_duration(Duration::from_secs_f64(s))
}

impl Report {
    pub fn new(
        workload: &Workload,
        jobs: usize,
        warmup: usize,
        runs: impl IntoIterator<Item = (Mode, Vec<Run>)>,
    ) -> Report {
        let files = workload.targets.len();
        let rows: Vec<Row> = runs
            .into_iter()
            .map(|(mode, runs)| Row {
                mode,
                ideal: workload.source.ideal(mode.concurrency(files, jobs)),
                stats: Stats::of(&runs),
                runs,
            })
            .collect();
        let described = match workload.source {
            Source::BuiltIn {
                size,
                latency,
                rate,
                ..
            } => format!(
                "{files} files × {} from the built-in server (latency {}, rate {})",
                human_bytes(size),
                human_duration(latency),
                rate.map_or("unlimited".to_owned(), |r| format!("{}/s", human_bytes(r))),
            ),
            Source::Urls => format!("{files} URLs"),
        };
        let runs_per_mode = rows.first().map_or(0, |r| r.runs.len());
        Report {
            workload: described,
            settings: format!(
                "{jobs} jobs (pool, async, procs, spawn), {runs_per_mode} runs per mode after {warmup} warmup, \
                 modes interleaved"
            ),
            files,
            jobs,
            has_ideal: rows.iter().any(|row| row.ideal.is_some()),
            rows,
        }
    }

    /// Whether every run of every mode succeeded and verified.
    pub fn all_ok(&self) -> bool {
        self.rows.iter().all(|r| r.runs.iter().all(Run::ok))
    }

    fn fastest(&self) -> Option<f64> {
        self.rows
            .iter()
            .filter_map(|r| r.stats.map(|s| s.mean))
            .min_by(f64::total_cmp)
    }

    fn seq(&self) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.mode == Mode::Seq)
            .and_then(|r| r.stats.map(|s| s.mean))
    }

    /// The cells of one row: mean ± σ, min, max, files/s, throughput, ratios, efficiency.
    fn cells(&self, row: &Row) -> Vec<String> {
        let failed = row.runs.iter().filter(|r| !r.ok()).count();
        let mut cells = vec![row.mode.to_string()];
        match row.stats {
            None => cells.push(format!("all {} runs failed", row.runs.len())),
            Some(s) => {
                cells.extend([
                    format!("{} ± {}", secs(s.mean), secs(s.stddev)),
                    secs(s.min),
                    secs(s.max),
                    secs(s.cpu),
                    format!("{:.1}", self.files as f64 / s.mean),
                    format!("{}/s", human_bytes((s.bytes as f64 / s.mean) as u64)),
                    self.fastest()
                        .map_or(String::new(), |f| format!("{:.2}×", s.mean / f)),
                    self.seq()
                        .map_or(String::new(), |q| format!("{:.2}×", q / s.mean)),
                    row.ideal.map_or("-".to_owned(), human_duration),
                    row.ideal.map_or("-".to_owned(), |i| {
                        format!("{:.0}%", 100.0 * i.as_secs_f64() / s.mean)
                    }),
                    row.runs
                        .iter()
                        .map(|r| r.io_threads)
                        .max()
                        .unwrap_or(0)
                        .to_string(),
                ]);
            }
        }
        if failed > 0 {
            cells.push(format!("{failed} of {} runs FAILED", row.runs.len()));
        }
        cells
    }

    const HEADER: [&'static str; 13] = [
        "mode",
        "mean ± σ",
        "min",
        "max",
        "CPU",
        "files/s",
        "throughput",
        "× fastest",
        "speedup vs seq",
        "best",
        "efficiency",
        "I/O threads",
        "",
    ];

    /// The terminal report: context, the table, a bar chart, the ideal time.
    pub fn text(&self) -> String {
        let mut text = format!(
            "Workload: {}\nSettings: {}\n\n",
            self.workload, self.settings
        );
        let rows: Vec<Vec<String>> = self.rows.iter().map(|r| self.cells(r)).collect();
        let mut align = [Align::Right; 13];
        align[0] = Align::Left;
        align[12] = Align::Left;
        text.push_str(&format_table(&Self::HEADER, &rows, &align));
        text.push('\n');
        text.push_str(&self.chart());
        text.push('\n');
        if self.has_ideal {
            let _ = writeln!(
                text,
                "best: the theoretical least time at the mode's concurrency (seq 1, threads one \
                 per file, pool, async, procs and spawn {}):\n  ceil(files / concurrency) × (latency + size / \
                 rate); efficiency = best / mean.",
                self.jobs
            );
        }
        let _ = writeln!(
            text,
            "CPU: mean user + system time of the downloads, worker processes included (so \
             spawn's shows what starting a process per download costs, next to procs' pool of \
             -j). × fastest: mean / fastest mean (1.00× is the winner). I/O threads: distinct OS \
             threads that ran downloads (procs, spawn: the parent's threads that drove them)."
        );
        text
    }

    /// Horizontal bars proportional to each mode's mean time.
    fn chart(&self) -> String {
        let longest = self
            .rows
            .iter()
            .filter_map(|r| r.stats.map(|s| s.mean))
            .fold(0.0, f64::max);
        let mut chart = String::new();
        for row in &self.rows {
            let Some(s) = row.stats else {
                let _ = writeln!(chart, "{:<8} (failed)", row.mode.name());
                continue;
            };
            let cells = ((s.mean / longest) * CHART_WIDTH as f64 * 8.0).round() as usize;
            let _ = writeln!(
                chart,
                "{:<8} {}{} {}",
                row.mode.name(),
                bar(cells),
                " ".repeat(CHART_WIDTH - cells.div_ceil(8)),
                secs(s.mean)
            );
        }
        chart
    }

    /// The table as GitHub Markdown.
    pub fn markdown(&self) -> String {
        let mut md = format!(
            "Workload: {}  \nSettings: {}\n\n",
            self.workload, self.settings
        );
        let header = &Self::HEADER[..12];
        let _ = writeln!(md, "| {} |", header.join(" | "));
        let _ = writeln!(md, "|:---|{}", "---:|".repeat(header.len() - 1));
        for row in &self.rows {
            let mut cells = self.cells(row);
            cells.resize(header.len(), String::new());
            let _ = writeln!(md, "| {} |", cells.join(" | "));
        }
        md
    }

    /// Every statistic and every run's raw time, for scripts.
    pub fn json(&self) -> anyhow::Result<String> {
        let export = Export {
            workload: &self.workload,
            files: self.files,
            jobs: self.jobs,
            modes: self
                .rows
                .iter()
                .map(|row| ModeExport {
                    mode: row.mode,
                    ideal_ms: row.ideal.map(|d| d.as_secs_f64() * 1e3),
                    mean_ms: row.stats.map(|s| s.mean * 1e3),
                    stddev_ms: row.stats.map(|s| s.stddev * 1e3),
                    min_ms: row.stats.map(|s| s.min * 1e3),
                    max_ms: row.stats.map(|s| s.max * 1e3),
                    cpu_ms: row.stats.map(|s| s.cpu * 1e3),
                    files_per_sec: row.stats.map(|s| self.files as f64 / s.mean),
                    bytes_per_sec: row.stats.map(|s| s.bytes as f64 / s.mean),
                    relative_to_fastest: row.stats.zip(self.fastest()).map(|(s, f)| s.mean / f),
                    speedup_vs_seq: row.stats.zip(self.seq()).map(|(s, q)| q / s.mean),
                    efficiency: row
                        .stats
                        .zip(row.ideal)
                        .map(|(s, i)| i.as_secs_f64() / s.mean),
                    runs: row
                        .runs
                        .iter()
                        .map(|r| RunExport {
                            elapsed_ms: r.elapsed.as_secs_f64() * 1e3,
                            cpu_ms: r.cpu.as_secs_f64() * 1e3,
                            ok: r.ok(),
                            bytes: r.bytes,
                            io_threads: r.io_threads,
                            problems: &r.problems,
                        })
                        .collect(),
                })
                .collect(),
        };
        Ok(serde_json::to_string_pretty(&export)? + "\n")
    }
}

/// A bar `eighths` eighths of a character long, drawn with Unicode block elements.
fn bar(eighths: usize) -> String {
    const PARTIAL: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    let mut bar = "█".repeat(eighths / 8);
    bar.push_str(PARTIAL[eighths % 8]);
    bar
}

#[derive(Serialize)]
struct Export<'a> {
    workload: &'a str,
    files: usize,
    jobs: usize,
    modes: Vec<ModeExport<'a>>,
}

#[derive(Serialize)]
struct ModeExport<'a> {
    mode: Mode,
    ideal_ms: Option<f64>,
    mean_ms: Option<f64>,
    stddev_ms: Option<f64>,
    min_ms: Option<f64>,
    max_ms: Option<f64>,
    cpu_ms: Option<f64>,
    files_per_sec: Option<f64>,
    bytes_per_sec: Option<f64>,
    relative_to_fastest: Option<f64>,
    speedup_vs_seq: Option<f64>,
    efficiency: Option<f64>,
    runs: Vec<RunExport<'a>>,
}

#[derive(Serialize)]
struct RunExport<'a> {
    elapsed_ms: f64,
    cpu_ms: f64,
    ok: bool,
    bytes: u64,
    io_threads: usize,
    problems: &'a [String],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ms: u64, ok: bool) -> Run {
        Run {
            elapsed: Duration::from_millis(ms),
            bytes: 1000,
            problems: if ok {
                vec![]
            } else {
                vec!["x: HTTP 500".into()]
            },
            io_threads: 1,
            cpu: Duration::from_millis(ms / 2),
        }
    }

    #[test]
    fn stats_ignore_failed_runs() {
        let s = Stats::of(&[run(100, true), run(5, false), run(300, true)]).unwrap();
        assert!((s.mean - 0.2).abs() < 1e-9);
        assert!((s.min - 0.1).abs() < 1e-9 && (s.max - 0.3).abs() < 1e-9);
        assert!((s.stddev - 0.141_421_356).abs() < 1e-6);
        assert!(Stats::of(&[run(5, false)]).is_none());
    }

    #[test]
    fn bars_are_proportional() {
        assert_eq!(bar(16), "██");
        assert_eq!(bar(12), "█▌");
        assert_eq!(bar(0), "");
    }

    #[test]
    fn ideal_time_counts_rounds_of_jobs() {
        let source = Source::BuiltIn {
            files: 50,
            size: 1_000_000,
            latency: Duration::from_millis(200),
            rate: Some(10_000_000),
        };
        // ceil(50 / 8) = 7 rounds of 200 ms + 100 ms.
        assert_eq!(source.ideal(8), Some(Duration::from_millis(2100)));
        assert_eq!(Source::Urls.ideal(8), None);
    }
}
