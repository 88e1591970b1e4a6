//! One download's JSON line (`--json`), written as it ends (the shape is `schema.json`).

use std::time::Duration;

use serde::Serialize;

use crate::model::{Outcome, Status, hex};

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
                // Whatever quoted a URL, never its password.
                Status::Failed(err) => Some(crate::secret::text(&err.to_string())),
                _ => None,
            },
        }
    }
}

/// A duration in milliseconds, to the microsecond.
pub(crate) fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
