//! The benchmark's report: the statistics of [`super::stats`] rendered for the terminal (a
//! table, a bar chart, notes) and exported as hyperfine exports (Markdown, JSON).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::stats::{Ratios, Row, Stats, ok_times};
use super::workload::{Run, Workload};
use crate::model::{Breadth, Mode};
use crate::progress::wrap;
use crate::report::table::{Align, Narrow, fit_table};
use crate::server::ServerStats;
use crate::units::{human_bytes, human_duration};

/// Width of the longest bar in the chart, in characters.
const CHART_WIDTH: usize = 40;

/// The runs of every mode, summarised.
#[derive(Debug)]
pub(crate) struct BenchReport {
    workload: String,
    settings: String,
    files: usize,
    jobs: usize,
    warmup: usize,
    /// Whether CPU time was measured (not on every platform).
    cpu_measured: bool,
    /// Whether the workload's theoretical best is known (the built-in server's).
    has_ideal: bool,
    /// Whether the server's side of the runs was seen (the built-in server).
    has_server: bool,
    /// Whether the built-in server spoke TLS.
    tls: bool,
    rows: Vec<Row>,
}

fn secs(s: f64) -> String {
    human_duration(Duration::from_secs_f64(s))
}

impl BenchReport {
    pub(crate) fn new(
        workload: &Workload,
        jobs: usize,
        warmup: usize,
        runs: impl IntoIterator<Item = (Mode, Vec<Run>)>,
    ) -> BenchReport {
        let rows: Vec<Row> = runs
            .into_iter()
            .map(|(mode, runs)| Row::of(mode, runs, workload, jobs))
            .collect();
        let runs_per_mode = rows.first().map_or(0, |r| r.runs.len());
        let modes: Vec<Mode> = rows.iter().map(|r| r.mode).collect();
        BenchReport {
            workload: workload.describe(),
            settings: settings(&modes, jobs, runs_per_mode, warmup),
            files: workload.entries.len(),
            jobs,
            warmup,
            cpu_measured: rows
                .iter()
                .flat_map(|r| &r.runs)
                .all(|run| run.cpu.is_some()),
            has_ideal: rows.iter().any(|row| row.ideal.is_some()),
            has_server: rows.iter().any(|row| row.server.is_some()),
            tls: workload.source.tls(),
            rows,
        }
    }

    /// Whether every run of every mode succeeded and verified.
    pub(crate) fn all_ok(&self) -> bool {
        self.rows.iter().all(|r| r.runs.iter().all(Run::ok))
    }

    /// How `row` compares with the other modes.
    fn ratios(&self, row: &Row) -> Ratios {
        Ratios::of(row, &self.rows, self.files)
    }

    /// The cells of one row: mean ± σ, min, max, files/s, throughput, ratios, efficiency.
    fn cells(&self, row: &Row) -> Vec<String> {
        let mut cells = vec![row.mode.to_string()];
        match row.stats {
            None => cells.push(all_failed(row.runs.len())),
            Some(s) => {
                let ratios = self.ratios(row);
                let times =
                    |ratio: Option<f64>| ratio.map_or(String::new(), |r| format!("{r:.2}×"));
                cells.extend([
                    format!("{} ± {}", secs(s.mean), secs(s.stddev)),
                    secs(s.median),
                    row.width.to_string(),
                    secs(s.min),
                    secs(s.max),
                    s.cpu().map_or("n/a".to_owned(), secs),
                    ratios
                        .files_per_sec
                        .map_or(String::new(), |f| format!("{f:.1}")),
                    ratios
                        .bytes_per_sec
                        .map_or(String::new(), |b| format!("{}/s", human_bytes(b as u64))),
                    times(ratios.relative_to_fastest),
                    times(ratios.speedup_vs_seq),
                    row.ideal.map_or("-".to_owned(), human_duration),
                    ratios
                        .efficiency
                        .map_or("-".to_owned(), |e| format!("{:.0}%", 100.0 * e)),
                    row.io_threads().to_string(),
                ]);
                cells.extend(server_cells(row));
                cells = self.visible(cells);
            }
        }
        let failed = row.failed();
        if failed > 0 {
            cells.push(format!("{failed} of {} runs FAILED", row.runs.len()));
        }
        cells
    }

    const HEADER: [&'static str; 18] = [
        "mode",
        "mean ± σ",
        "median",
        "width",
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
        "conns",
        "TLS",
        "req/conn",
        "",
    ];

    /// How the table is narrowed to fit a terminal: the derived columns go first.
    const NARROWING: [Narrow; 12] = [
        Narrow::Drop("speedup vs seq"),
        Narrow::Drop("best"),
        Narrow::Drop("min"),
        Narrow::Drop("max"),
        Narrow::Drop("throughput"),
        Narrow::Drop("I/O threads"),
        Narrow::Drop("req/conn"),
        Narrow::Drop("efficiency"),
        Narrow::Drop("TLS"),
        Narrow::Drop("files/s"),
        Narrow::Drop("conns"),
        Narrow::Elide(12),
    ];

    /// Whether column `name` is shown: the server's columns only when it was seen (TLS only
    /// when it spoke TLS).
    fn shows(&self, name: &str) -> bool {
        match name {
            "conns" | "req/conn" => self.has_server,
            "TLS" => self.has_server && self.tls,
            _ => true,
        }
    }

    /// The shown columns' names.
    fn header(&self) -> Vec<&'static str> {
        Self::HEADER
            .into_iter()
            .filter(|name| self.shows(name))
            .collect()
    }

    /// The cells of a full row, without those of the columns not shown.
    fn visible(&self, cells: Vec<String>) -> Vec<String> {
        cells
            .into_iter()
            .zip(Self::HEADER)
            .filter(|(_, name)| self.shows(name))
            .map(|(cell, _)| cell)
            .collect()
    }

    /// The terminal report: context, the table, a bar chart, the notes; in `width` columns
    /// when given (columns dropped as [`BenchReport::NARROWING`] says, notes wrapped at
    /// spaces).
    pub(crate) fn text(&self, width: Option<usize>) -> String {
        let fit = |line: String| match width {
            Some(width) => wrap(&line, width.saturating_sub(1)),
            None => line,
        };
        let mut text = format!(
            "{}\n{}\n\n",
            fit(format!("Workload: {}", self.workload)),
            fit(format!("Settings: {}", self.settings))
        );
        text.push_str(&self.table(width));
        text.push('\n');
        text.push_str(&self.chart());
        text.push('\n');
        for note in self.notes() {
            let _ = writeln!(text, "{}", fit(note));
        }
        text
    }

    /// The table, narrowed to `width` columns when given.
    fn table(&self, width: Option<usize>) -> String {
        let rows: Vec<Vec<String>> = self.rows.iter().map(|r| self.cells(r)).collect();
        let header = self.header();
        let mut align = vec![Align::Right; header.len()];
        align[0] = Align::Left;
        align[header.len() - 1] = Align::Left;
        let narrowing: Vec<Narrow> = Self::NARROWING
            .into_iter()
            .filter(|step| !matches!(step, Narrow::Drop(name) if !self.shows(name)))
            .collect();
        fit_table(&header, rows, &align, width, &narrowing)
    }

    /// What the columns mean, one note each: width, best (when known), the server's columns
    /// (when seen), CPU and the rest.
    fn notes(&self) -> Vec<String> {
        let mut notes = vec![self.width_note()];
        if self.has_ideal {
            let handshakes = if self.tls {
                "2 handshake round trips (TCP, TLS) + "
            } else {
                "1 handshake round trip + "
            };
            notes.push(format!(
                "best: the theoretical least time at the mode's concurrency (its width): \
                 {handshakes}ceil(files / width) × (rtt + latency + size / rate), rate \
                 being the lower of --rate and --link-rate; efficiency = best / mean."
            ));
        }
        if self.has_server {
            notes.push(format!(
                "conns: TCP connections the server accepted per run{}; req/conn: requests \
                 (HTTP/2: streams) per connection, and over which protocol.",
                if self.tls {
                    "; TLS: handshakes per run (resumed: an earlier session's)"
                } else {
                    ""
                }
            ));
        }
        notes.push(self.cpu_note());
        notes
    }

    /// What the CPU, × fastest and I/O threads columns mean.
    fn cpu_note(&self) -> String {
        let cpu = if self.cpu_measured {
            "CPU: mean user + system time of the downloads (apart in --export-json), worker \
             processes included (so spawn's shows what starting a process per download costs, \
             next to procs' pool of -j)."
        } else {
            "CPU: n/a, not measured on this platform (null in --export-json)."
        };
        let in_processes: Vec<&str> = Mode::all()
            .iter()
            .filter(|mode| mode.in_processes())
            .map(|mode| mode.name())
            .collect();
        format!(
            "{cpu} × fastest: mean / fastest mean (1.00× is the winner). I/O threads: \
             distinct OS threads that ran downloads ({}: the parent's threads that drove \
             them).",
            in_processes.join(", ")
        )
    }

    /// What the width column means, and plainly when the modes' widths differ.
    fn width_note(&self) -> String {
        let mut widths: Vec<usize> = self.rows.iter().map(|row| row.width).collect();
        widths.sort_unstable();
        widths.dedup();
        let fixed: Vec<String> = Mode::all()
            .iter()
            .filter(|mode| !mode.uses_jobs())
            .map(|mode| format!("{mode} {}", mode.breadth().says()))
            .collect();
        let explained = format!(
            "width: downloads in flight at once ({}, the others {}).",
            fixed.join(", "),
            Breadth::Jobs.says()
        );
        if widths.len() < 2 {
            return explained;
        }
        let each: Vec<String> = self
            .rows
            .iter()
            .map(|row| format!("{} {}", row.mode, row.width))
            .collect();
        format!(
            "{explained} The widths differ ({}): the times compare scheduling at different \
             widths, not like with like; -j {} gives {} the width of {}.",
            each.join(", "),
            self.files,
            Mode::list(Mode::uses_jobs, |mode| mode.to_string()),
            Mode::list(
                |mode| mode.breadth() == Breadth::Every,
                |mode| mode.to_string()
            ),
        )
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

    /// The command line that runs `mode` as this benchmark did, hyperfine's `command`.
    fn command(&self, mode: Mode) -> String {
        match mode.uses_jobs() {
            true => format!("fetchbench --mode {mode} -j {}", self.jobs),
            false => format!("fetchbench --mode {mode}"),
        }
    }

    /// Markdown shaped like hyperfine's `--export-markdown` (Command, Mean, Min, Max, Relative
    /// in ms), then every column of the terminal table.
    pub(crate) fn markdown(&self) -> String {
        let mut md = format!(
            "Workload: {}  \nSettings: {}\n\n",
            self.workload, self.settings
        );
        md.push_str("| Command | Mean [ms] | Min [ms] | Max [ms] | Relative |\n");
        md.push_str("|:---|---:|---:|---:|---:|\n");
        let fastest = self
            .rows
            .iter()
            .filter_map(|r| r.stats)
            .min_by(|a, b| a.mean.total_cmp(&b.mean));
        for row in &self.rows {
            let command = format!("`{}`", self.command(row.mode));
            let Some(s) = row.stats else {
                let failed = all_failed(row.runs.len());
                let _ = writeln!(md, "| {command} | {failed} | | | |");
                continue;
            };
            let ms = |x: f64| format!("{:.1}", x * 1e3);
            let relative = match fastest {
                Some(f) if f.mean == s.mean => "1.00".to_owned(),
                Some(f) => {
                    // As hyperfine: the ratio's error from both relative errors.
                    let ratio = s.mean / f.mean;
                    let error =
                        ratio * ((s.stddev / s.mean).powi(2) + (f.stddev / f.mean).powi(2)).sqrt();
                    format!("{ratio:.2} ± {error:.2}")
                }
                None => String::new(),
            };
            let _ = writeln!(
                md,
                "| {command} | {} ± {} | {} | {} | {relative} |",
                ms(s.mean),
                ms(s.stddev),
                ms(s.min),
                ms(s.max)
            );
        }
        md.push_str("\nEvery statistic:\n\n");
        let header = self.header();
        let header = &header[..header.len() - 1];
        let _ = writeln!(md, "| {} |", header.join(" | "));
        let _ = writeln!(md, "|:---|{}", "---:|".repeat(header.len() - 1));
        for row in &self.rows {
            let mut cells = self.cells(row);
            cells.resize(header.len(), String::new());
            let _ = writeln!(md, "| {} |", cells.join(" | "));
        }
        md
    }

    /// hyperfine's `--export-json` shape (`results[]` with `command`, `mean`, `stddev`,
    /// `median`, `user`, `system`, `min`, `max`, `times`, in seconds), plus fetchbench's own
    /// fields: every statistic and every run.
    pub(crate) fn json(&self) -> anyhow::Result<String> {
        let export = Export {
            results: self.rows.iter().map(|row| self.result(row)).collect(),
            workload: &self.workload,
            settings: &self.settings,
            files: self.files,
            jobs: self.jobs,
            warmup: self.warmup,
            cpu_measured: self.cpu_measured,
        };
        Ok(serde_json::to_string_pretty(&export)? + "\n")
    }

    /// One mode's entry of the JSON export.
    fn result<'a>(&self, row: &'a Row) -> ResultExport<'a> {
        let stat = |f: fn(&Stats) -> f64| row.stats.as_ref().map(f);
        let times = ok_times(&row.runs);
        let ratios = self.ratios(row);
        let server = row.server;
        ResultExport {
            command: self.command(row.mode),
            mean: stat(|s| s.mean),
            stddev: stat(|s| s.stddev),
            median: stat(|s| s.median),
            user: row.stats.and_then(|s| s.user),
            system: row.stats.and_then(|s| s.system),
            min: stat(|s| s.min),
            max: stat(|s| s.max),
            exit_codes: vec![0; times.len()],
            times,
            mode: row.mode,
            ideal: row.ideal.map(|d| d.as_secs_f64()),
            files_per_sec: ratios.files_per_sec,
            bytes_per_sec: ratios.bytes_per_sec,
            relative_to_fastest: ratios.relative_to_fastest,
            speedup_vs_seq: ratios.speedup_vs_seq,
            efficiency: ratios.efficiency,
            io_threads: row.io_threads(),
            width: row.width,
            connections: server.map(|n| n.connections),
            tls_handshakes: server.map(|n| n.tls_handshakes()),
            tls_resumed: server.map(|n| n.tls_resumed),
            requests: server.map(|n| n.requests),
            requests_h2: server.map(|n| n.requests_h2),
            streams_per_connection: server.and_then(|n| n.per_connection()),
            peak_streams: server.map(|n| n.peak_streams),
            runs: row.runs.iter().map(RunExport::from).collect(),
        }
    }
}

/// The server's cells of a row: connections, TLS handshakes, requests per connection; `-`
/// where the server was not seen.
fn server_cells(row: &Row) -> [String; 3] {
    let server = row.server;
    let or_dash = |cell: Option<String>| cell.unwrap_or_else(|| "-".to_owned());
    [
        or_dash(server.map(|n| format!("{:.0}", n.connections))),
        or_dash(server.map(|n| match n.tls_resumed {
            0.0 => format!("{:.0}", n.tls_handshakes()),
            resumed => format!("{:.0} ({resumed:.0} resumed)", n.tls_handshakes()),
        })),
        or_dash(server.and_then(|n| {
            let per_connection = n.per_connection()?;
            Some(format!("{per_connection:.1} {}", n.protocol()))
        })),
    ]
}

/// What a mode whose every run failed shows instead of statistics.
fn all_failed(runs: usize) -> String {
    match runs {
        1 => "its 1 run failed".to_owned(),
        n => format!("all {n} runs failed"),
    }
}

/// The Settings line: `-j` (only for the modes run that use it), runs and warmup, pluralized.
fn settings(modes: &[Mode], jobs: usize, runs: usize, warmup: usize) -> String {
    let plural = |n: usize, word: &str| match n {
        1 => format!("1 {word}"),
        n => format!("{n} {word}s"),
    };
    let with_jobs: Vec<&str> = modes
        .iter()
        .filter(|m| m.uses_jobs())
        .map(|m| m.name())
        .collect();
    let jobs = match with_jobs.as_slice() {
        [] => String::new(),
        names => format!("{} ({}), ", plural(jobs, "job"), names.join(", ")),
    };
    let interleaved = if modes.len() > 1 {
        ", modes interleaved"
    } else {
        ""
    };
    format!(
        "{jobs}{} per mode after {}{interleaved}",
        plural(runs, "run"),
        plural(warmup, "warmup run")
    )
}

/// A bar `eighths` eighths of a character long, drawn with Unicode block elements.
fn bar(eighths: usize) -> String {
    const PARTIAL: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    let mut bar = "█".repeat(eighths / 8);
    bar.push_str(PARTIAL[eighths % 8]);
    bar
}

/// The JSON export. Times are in seconds.
#[derive(Serialize)]
struct Export<'a> {
    results: Vec<ResultExport<'a>>,
    workload: &'a str,
    settings: &'a str,
    files: usize,
    jobs: usize,
    warmup: usize,
    /// Whether `user` and `system` were measured (Unix); `null` otherwise.
    cpu_measured: bool,
}

/// One mode, as hyperfine exports one command, then fetchbench's own fields.
#[derive(Serialize)]
struct ResultExport<'a> {
    command: String,
    /// Statistics over the runs that succeeded; `null` when none did.
    mean: Option<f64>,
    stddev: Option<f64>,
    median: Option<f64>,
    /// Mean user and system CPU time; `null` where not measured.
    user: Option<f64>,
    system: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    /// The wall time of each run that succeeded (a failed run is not timed; see `runs`).
    times: Vec<f64>,
    exit_codes: Vec<i32>,
    mode: Mode,
    /// The theoretical least time at this mode's concurrency (built-in server only).
    ideal: Option<f64>,
    files_per_sec: Option<f64>,
    bytes_per_sec: Option<f64>,
    relative_to_fastest: Option<f64>,
    speedup_vs_seq: Option<f64>,
    efficiency: Option<f64>,
    /// The most distinct OS threads that did I/O in one run.
    io_threads: usize,
    /// Downloads in flight at once (as the mode's breadth says: 1, every download, or `jobs`).
    width: usize,
    /// What the built-in server saw, as means per successful run (`null` for the user's URLs):
    /// TCP connections accepted, TLS handshakes (and of those, resumed), requests (and of those,
    /// HTTP/2 streams), requests per connection, and the most in progress on one connection.
    connections: Option<f64>,
    tls_handshakes: Option<f64>,
    tls_resumed: Option<f64>,
    requests: Option<f64>,
    requests_h2: Option<f64>,
    streams_per_connection: Option<f64>,
    peak_streams: Option<u64>,
    runs: Vec<RunExport<'a>>,
}

/// What the built-in server saw during one run.
#[derive(Serialize)]
struct ServerExport {
    connections: u64,
    tls_full: u64,
    tls_resumed: u64,
    requests_h1: u64,
    requests_h2: u64,
    refused: u64,
    peak_streams: u64,
}

impl From<ServerStats> for ServerExport {
    fn from(s: ServerStats) -> Self {
        ServerExport {
            connections: s.connections,
            tls_full: s.tls_full,
            tls_resumed: s.tls_resumed,
            requests_h1: s.requests_h1,
            requests_h2: s.requests_h2,
            refused: s.refused,
            peak_streams: s.peak_streams,
        }
    }
}

/// One timed run, failed or not.
#[derive(Serialize)]
struct RunExport<'a> {
    time: f64,
    user: Option<f64>,
    system: Option<f64>,
    ok: bool,
    bytes: u64,
    io_threads: usize,
    /// The built-in server's counters over this run; `null` for the user's URLs.
    server: Option<ServerExport>,
    problems: &'a [String],
}

impl<'a> From<&'a Run> for RunExport<'a> {
    fn from(r: &'a Run) -> Self {
        RunExport {
            time: r.elapsed.as_secs_f64(),
            user: r.cpu.map(|c| c.user.as_secs_f64()),
            system: r.cpu.map(|c| c.system.as_secs_f64()),
            ok: r.ok(),
            bytes: r.bytes,
            io_threads: r.io_threads,
            server: r.server.map(ServerExport::from),
            problems: &r.problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_only_the_modes_run_and_pluralize() {
        assert_eq!(
            settings(&[Mode::Seq, Mode::Pool, Mode::Procs], 8, 1, 0),
            "8 jobs (pool, procs), 1 run per mode after 0 warmup runs, modes interleaved"
        );
        assert_eq!(
            settings(&[Mode::Seq, Mode::Threads], 1, 5, 1),
            "5 runs per mode after 1 warmup run, modes interleaved"
        );
        assert_eq!(
            settings(&[Mode::Async], 1, 2, 1),
            "1 job (async), 2 runs per mode after 1 warmup run"
        );
        assert_eq!(
            settings(&[Mode::Pool, Mode::Spawn], 4, 1, 0),
            "4 jobs (pool, spawn), 1 run per mode after 0 warmup runs, modes interleaved"
        );
    }

    #[test]
    fn bars_are_proportional() {
        assert_eq!(bar(16), "██");
        assert_eq!(bar(12), "█▌");
        assert_eq!(bar(0), "");
    }
}
