//! The summary object that ends `--json` output, after the download lines of
//! [`crate::results`] (the shape is `schema.json`).

use std::io::{self, Write};

use serde::Serialize;

use super::Summary;
use crate::model::{Mode, Shard};
use crate::results::millis;
use crate::units::human_duration;
use crate::width::Jobs;

/// The summary object that ends `--json` output.
pub(crate) fn write_json_summary(summary: &Summary, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &SummaryRecord::from(summary))?;
    out.write_all(b"\n")?;
    out.flush()
}

#[derive(Serialize)]
struct SummaryRecord {
    r#type: &'static str,
    mode: Mode,
    /// `-j`, for the modes it sets the width of (under `auto`, the most at once); null for
    /// `seq` and `threads`.
    jobs: Option<usize>,
    width: WidthRecord,
    shard: Option<Shard>,
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

/// The `-j` setting and how wide the run went.
#[derive(Serialize)]
struct WidthRecord {
    /// `auto`, or the number given.
    setting: String,
    /// The most downloads that ran at once.
    peak: usize,
    /// The width at the end.
    last: usize,
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
            jobs: summary
                .mode
                .uses_jobs()
                .then_some(match summary.width.jobs {
                    Jobs::Fixed(n) => n,
                    Jobs::Auto => summary.width.peak,
                }),
            width: WidthRecord {
                setting: summary.width.jobs.to_string(),
                peak: summary.width.peak,
                last: summary.width.last,
            },
            shard: summary.shard,
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
