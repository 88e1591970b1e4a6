//! What a benchmark measures: the workload (its URLs, and where they come from) and one timed
//! run of it in one mode.

use std::time::Duration;

use super::cpu::CpuTime;
use crate::input::Entry;
use crate::server::ServerStats;
use crate::units::{human_bytes, human_duration};

/// What is downloaded in every run, and how a run's files are checked.
pub(crate) struct Workload {
    pub(crate) entries: Vec<Entry>,
    pub(crate) source: FileSource,
    /// `--fault`: the faults the built-in server injects (downloads then retry them).
    pub(crate) fault: Option<String>,
}

impl Workload {
    /// The Workload line: how many files, from where, over what path.
    pub(crate) fn describe(&self) -> String {
        let files = self.entries.len();
        let per_second = |rate: Option<u64>| match rate {
            Some(rate) if rate > 0 => format!("{}/s", human_bytes(rate)),
            _ => "unlimited".to_owned(),
        };
        match self.source {
            FileSource::BuiltIn {
                size,
                latency,
                rate,
                rtt,
                link_rate,
                tls,
                ..
            } => {
                let mut path = String::new();
                if !rtt.is_zero() {
                    path.push_str(&format!(", rtt {}", human_duration(rtt)));
                }
                if link_rate.is_some_and(|r| r > 0) {
                    path.push_str(&format!(", link rate {}", per_second(link_rate)));
                }
                if tls {
                    path.push_str(", HTTPS");
                }
                if let Some(fault) = &self.fault {
                    path.push_str(&format!(", faults {fault}, retried"));
                }
                format!(
                    "{files} files × {} from the built-in server (latency {}, rate {}{path})",
                    human_bytes(size),
                    human_duration(latency),
                    per_second(rate),
                )
            }
            FileSource::Urls if files == 1 => "1 URL".to_owned(),
            FileSource::Urls => format!("{files} URLs"),
        }
    }
}

/// Where the workload comes from.
pub(crate) enum FileSource {
    /// The built-in server: every file's content is known, so every byte is checked.
    BuiltIn {
        files: usize,
        size: u64,
        latency: Duration,
        rate: Option<u64>,
        /// The emulated path: round trip and per-connection link rate.
        rtt: Duration,
        link_rate: Option<u64>,
        tls: bool,
    },
    /// URLs given by the user: files are checked against the length received.
    Urls,
}

impl FileSource {
    /// Whether the built-in server speaks TLS (false for the user's URLs: not ours to say).
    pub(crate) fn tls(&self) -> bool {
        matches!(self, FileSource::BuiltIn { tls: true, .. })
    }

    /// The least time the workload can take at a width of `jobs` downloads in flight: the
    /// handshakes' round trips once (TCP, and TLS 1.3 with `tls`), then each round of `jobs`
    /// downloads costs a round trip, the latency and a file at the per-connection rate (the
    /// lower of `rate` and `link_rate`; as if each download in flight had its own connection).
    /// Known only for the built-in server; it ignores the client's own costs.
    pub(crate) fn ideal(&self, jobs: usize) -> Option<Duration> {
        let FileSource::BuiltIn {
            files,
            size,
            latency,
            rate,
            rtt,
            link_rate,
            tls,
        } = *self
        else {
            return None;
        };
        let rounds = files.div_ceil(jobs.max(1)) as u32;
        let slowest = [rate, link_rate]
            .into_iter()
            .flatten()
            .filter(|&rate| rate > 0)
            .min();
        let transfer = slowest.map_or(Duration::ZERO, |rate| {
            Duration::from_secs_f64(size as f64 / rate as f64)
        });
        let handshakes = rtt * (1 + u32::from(tls));
        // With neither latency, a rate nor a round trip, the model has nothing to say.
        Some(handshakes + (rtt + latency + transfer) * rounds).filter(|ideal| !ideal.is_zero())
    }
}

/// One timed run of one mode.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) elapsed: Duration,
    pub(crate) bytes: u64,
    /// Downloads that failed or whose file did not verify; a run with any is not timed.
    pub(crate) problems: Vec<String>,
    /// Distinct OS threads that did the downloads' I/O.
    pub(crate) io_threads: usize,
    /// User and system CPU time of the downloads (the built-in server's excluded); `None`
    /// where it is not measured (not Unix).
    pub(crate) cpu: Option<CpuTime>,
    /// What the built-in server saw during the run (connections, handshakes, requests);
    /// `None` for the user's URLs.
    pub(crate) server: Option<ServerStats>,
}

impl Run {
    pub(crate) fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ideal_time_counts_rounds_of_jobs() {
        let source = FileSource::BuiltIn {
            files: 50,
            size: 1_000_000,
            latency: Duration::from_millis(200),
            rate: Some(10_000_000),
            rtt: Duration::ZERO,
            link_rate: None,
            tls: false,
        };
        // ceil(50 / 8) = 7 rounds of 200 ms + 100 ms.
        assert_eq!(source.ideal(8), Some(Duration::from_millis(2100)));
        assert_eq!(FileSource::Urls.ideal(8), None);
        let wan = FileSource::BuiltIn {
            files: 1000,
            size: 4096,
            latency: Duration::ZERO,
            rate: None,
            rtt: Duration::from_millis(50),
            link_rate: Some(4096 * 100),
            tls: true,
        };
        // Two handshake round trips, then ceil(1000 / 128) = 8 rounds of 50 ms + 10 ms.
        assert_eq!(wan.ideal(128), Some(Duration::from_millis(100 + 8 * 60)));
    }
}
