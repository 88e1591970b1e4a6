//! The benchmark's statistics: per mode, over its runs, the wall times (mean, σ, median, min,
//! max), the CPU time, what the server saw, and the ratios that compare the modes. The report
//! ([`super::report`]) only renders them.

use std::time::Duration;

use super::cpu::CpuTime;
use super::workload::{Run, Workload};
use crate::model::Mode;
use crate::server::ServerStats;

/// One mode's runs, summarised.
#[derive(Debug)]
pub(super) struct Row {
    pub(super) mode: Mode,
    /// Downloads in flight at once in this mode.
    pub(super) width: usize,
    /// The least time this mode's concurrency allows on the workload, when known.
    pub(super) ideal: Option<Duration>,
    pub(super) runs: Vec<Run>,
    /// Over the runs that succeeded; `None` when none did.
    pub(super) stats: Option<Stats>,
    /// What the server saw, over the runs that succeeded; `None` when not seen.
    pub(super) server: Option<ServerSide>,
}

impl Row {
    /// The runs of `mode` on `workload` at `-j jobs`.
    pub(super) fn of(mode: Mode, runs: Vec<Run>, workload: &Workload, jobs: usize) -> Row {
        let width = mode.concurrency(workload.entries.len(), jobs);
        Row {
            mode,
            width,
            ideal: workload.source.ideal(width),
            stats: Stats::of(&runs),
            server: ServerSide::of(&runs),
            runs,
        }
    }

    /// The most distinct OS threads that did I/O in one run.
    pub(super) fn io_threads(&self) -> usize {
        self.runs.iter().map(|r| r.io_threads).max().unwrap_or(0)
    }

    /// How many runs failed.
    pub(super) fn failed(&self) -> usize {
        self.runs.iter().filter(|r| !r.ok()).count()
    }
}

/// What the built-in server saw of a mode's successful runs: means per run, and the peak.
#[derive(Debug, Clone, Copy)]
pub(super) struct ServerSide {
    pub(super) connections: f64,
    pub(super) tls_full: f64,
    pub(super) tls_resumed: f64,
    pub(super) requests: f64,
    pub(super) requests_h2: f64,
    /// The most requests in progress on one connection in any run.
    pub(super) peak_streams: u64,
}

impl ServerSide {
    fn of(runs: &[Run]) -> Option<ServerSide> {
        let seen: Vec<&ServerStats> = runs
            .iter()
            .filter(|r| r.ok())
            .map(|r| r.server.as_ref())
            .collect::<Option<_>>()?;
        if seen.is_empty() {
            return None;
        }
        let mean = |count: fn(&ServerStats) -> u64| {
            seen.iter().map(|s| count(s) as f64).sum::<f64>() / seen.len() as f64
        };
        Some(ServerSide {
            connections: mean(|s| s.connections),
            tls_full: mean(|s| s.tls_full),
            tls_resumed: mean(|s| s.tls_resumed),
            requests: mean(|s| s.requests),
            requests_h2: mean(|s| s.requests_h2),
            peak_streams: seen.iter().map(|s| s.peak_streams).max().unwrap_or(0),
        })
    }

    /// Requests (HTTP/2: streams) per connection opened.
    pub(super) fn per_connection(&self) -> Option<f64> {
        (self.connections > 0.0).then(|| self.requests / self.connections)
    }

    /// `h2`, `h1` or `h1+h2`: the protocols the requests came over.
    pub(super) fn protocol(&self) -> &'static str {
        match self.requests_h2 {
            0.0 => "h1",
            h2 if h2 == self.requests => "h2",
            _ => "h1+h2",
        }
    }

    pub(super) fn tls_handshakes(&self) -> f64 {
        self.tls_full + self.tls_resumed
    }
}

/// Wall time statistics over the runs that succeeded, in seconds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stats {
    pub(super) mean: f64,
    pub(super) stddev: f64,
    pub(super) median: f64,
    pub(super) min: f64,
    pub(super) max: f64,
    /// Mean user and system CPU time; `None` where not measured.
    pub(super) user: Option<f64>,
    pub(super) system: Option<f64>,
    /// Bytes of one run.
    pub(super) bytes: u64,
}

impl Stats {
    pub(super) fn of(runs: &[Run]) -> Option<Stats> {
        let ok: Vec<&Run> = runs.iter().filter(|r| r.ok()).collect();
        let times = ok_times(runs);
        let n = times.len() as f64;
        let mean = times.iter().sum::<f64>() / n;
        let variance = match times.len() {
            0 => return None,
            1 => 0.0,
            _ => times.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / (n - 1.0),
        };
        let cpu: Option<Vec<CpuTime>> = ok.iter().map(|r| r.cpu).collect();
        let cpu_mean = |part: fn(&CpuTime) -> Duration| {
            cpu.as_ref()
                .map(|cpu| cpu.iter().map(|c| part(c).as_secs_f64()).sum::<f64>() / n)
        };
        Some(Stats {
            mean,
            stddev: variance.sqrt(),
            median: median(&times),
            min: times.iter().copied().fold(f64::INFINITY, f64::min),
            max: times.iter().copied().fold(0.0, f64::max),
            user: cpu_mean(|c| c.user),
            system: cpu_mean(|c| c.system),
            bytes: ok[0].bytes,
        })
    }

    /// Mean user + system CPU time, when measured.
    pub(super) fn cpu(&self) -> Option<f64> {
        self.user.zip(self.system).map(|(u, s)| u + s)
    }
}

/// How a mode compares: its rates, and its mean against the fastest mode's, `seq`'s and the
/// theoretical best. `None` where a side is unknown (no successful run, no `seq`, no ideal).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Ratios {
    pub(super) files_per_sec: Option<f64>,
    pub(super) bytes_per_sec: Option<f64>,
    /// Mean / fastest mean (1.0 for the winner).
    pub(super) relative_to_fastest: Option<f64>,
    /// `seq`'s mean / this mean.
    pub(super) speedup_vs_seq: Option<f64>,
    /// Best / mean.
    pub(super) efficiency: Option<f64>,
}

impl Ratios {
    /// How `row` compares with the other `rows` (itself among them), for `files` downloads.
    pub(super) fn of(row: &Row, rows: &[Row], files: usize) -> Ratios {
        let Some(s) = row.stats else {
            return Ratios::default();
        };
        Ratios {
            files_per_sec: Some(files as f64 / s.mean),
            bytes_per_sec: Some(s.bytes as f64 / s.mean),
            relative_to_fastest: fastest(rows).map(|f| s.mean / f),
            speedup_vs_seq: seq(rows).map(|q| q / s.mean),
            efficiency: row.ideal.map(|i| i.as_secs_f64() / s.mean),
        }
    }
}

/// The fastest mode's mean time.
fn fastest(rows: &[Row]) -> Option<f64> {
    rows.iter()
        .filter_map(|r| r.stats.map(|s| s.mean))
        .min_by(f64::total_cmp)
}

/// `seq`'s mean time, when it was run: the baseline of the speedups.
fn seq(rows: &[Row]) -> Option<f64> {
    rows.iter()
        .find(|r| r.mode == Mode::Seq)
        .and_then(|r| r.stats.map(|s| s.mean))
}

/// The wall times of the runs that succeeded, in seconds, in run order.
pub(super) fn ok_times(runs: &[Run]) -> Vec<f64> {
    runs.iter()
        .filter(|r| r.ok())
        .map(|r| r.elapsed.as_secs_f64())
        .collect()
}

/// The middle value (the mean of the two middle ones for an even count); 0 for none.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
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
            cpu: Some(CpuTime {
                user: Duration::from_millis(ms / 2),
                system: Duration::from_millis(ms / 4),
            }),
            server: None,
        }
    }

    #[test]
    fn stats_ignore_failed_runs() {
        let s = Stats::of(&[run(100, true), run(5, false), run(300, true)]).unwrap();
        assert!((s.mean - 0.2).abs() < 1e-9);
        assert!((s.min - 0.1).abs() < 1e-9 && (s.max - 0.3).abs() < 1e-9);
        assert!((s.stddev - 0.141_421_356).abs() < 1e-6);
        assert!((s.median - 0.2).abs() < 1e-9);
        assert!((s.user.unwrap() - 0.1).abs() < 1e-9);
        assert!((s.system.unwrap() - 0.05).abs() < 1e-9);
        assert!(Stats::of(&[run(5, false)]).is_none());
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
