//! The pipe protocol between the parent and its worker processes: one JSON object per line.
//!
//! The parent writes [`Order`]s on a worker's stdin: [`Order::Setup`] first (what every
//! download of the run shares), then one [`Order::Fetch`] at a time, answering each name it asks
//! for that download with [`Order::Name`]; [`Order::Cancel`] passes on Ctrl-C. Closing stdin
//! tells the worker to quit. The worker writes [`Message`]s on its stdout: progress, names asked
//! for, and [`Message::Done`] once per download, after which it waits for the next job.

use std::io::{self, Write};
use std::path::PathBuf;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::cookies::CookieJar;

use crate::fetch::output::OutputDir;
use crate::fetch::policy::Policy;
use crate::http::HttpOptions;
use crate::model::{Outcome, Sha256Digest, Status, hex};

/// The hidden subcommand that runs a worker.
pub(crate) const CHILD_COMMAND: &str = "__child";

/// A line from the parent to a worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Order {
    /// The first line: what every download of the run shares.
    Setup(Box<Setup>),
    /// Download this, then report [`Message::Done`].
    Fetch(Job),
    /// The answer to the worker's last [`Message::AskName`].
    Name(String),
    /// The run was interrupted (Ctrl-C, SIGTERM): stop the download in hand.
    Cancel,
}

/// What every download of a worker shares.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Setup {
    pub(crate) output: OutputDir,
    pub(crate) policy: Policy,
    pub(crate) http: HttpOptions,
    /// This worker's share of `--limit-rate`.
    pub(crate) limit_rate: Option<u64>,
    /// Whether the parent shows progress; if not, the worker sends none (only names asked for
    /// and outcomes).
    pub(crate) progress: bool,
    /// The parent's cookie jar, which the cookies workers report go into (never sent: a
    /// worker loads `--load-cookies` itself).
    #[serde(skip)]
    pub(crate) cookies: Option<Arc<CookieJar>>,
}

/// One download.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Job {
    pub(crate) index: usize,
    pub(crate) url: String,
    pub(crate) sha256: Option<Sha256Digest>,
    /// The name the parent reserved for this URL: its label; its name if the input gave one;
    /// and else the name granted for the URL's own, which the worker then need not ask for
    /// (a name is only asked for when it is another: after a redirect, or from
    /// Content-Disposition).
    pub(crate) planned: String,
    /// The name the input gave, if any (then `planned` is it, made distinct).
    pub(crate) name: Option<String>,
}

/// A line from a worker to the parent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Message {
    /// The body's size, when known.
    Length(u64),
    /// Bytes in the file so far, and bytes received for this download so far.
    Position { position: u64, received: u64 },
    /// A retry is coming (which, and why).
    Retry(String),
    /// `-v` lines, for the parent's stderr.
    Trace(String),
    /// Asks for a file name other than the planned one; the parent answers with
    /// [`Order::Name`].
    AskName(String),
    /// The download's outcome; the worker then waits for its next job.
    Done(Done),
}

/// A download's outcome, as the parent rebuilds it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Done {
    pub(crate) status: DoneStatus,
    pub(crate) http_status: Option<u16>,
    pub(crate) bytes: u64,
    pub(crate) retries: u32,
    pub(crate) sha256: Option<String>,
    pub(crate) partial: Option<PathBuf>,
    /// The Set-Cookie headers the download received, as (URL, value), for the parent's jar
    /// (`--save-cookies`).
    #[serde(default)]
    pub(crate) cookies: Vec<(String, String)>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DoneStatus {
    Saved {
        path: PathBuf,
    },
    Skipped {
        path: PathBuf,
        why: crate::model::Skip,
    },
    Failed {
        error: String,
    },
    Interrupted,
}

impl From<&Outcome> for Done {
    fn from(outcome: &Outcome) -> Self {
        let status = match &outcome.status {
            Status::Saved { path } => DoneStatus::Saved { path: path.clone() },
            Status::Skipped { path, why } => DoneStatus::Skipped {
                path: path.clone(),
                why: *why,
            },
            Status::Failed(_) if outcome.is_interrupted() => DoneStatus::Interrupted,
            Status::Failed(err) => DoneStatus::Failed {
                error: err.to_string(),
            },
        };
        Done {
            status,
            http_status: outcome.http_status,
            bytes: outcome.bytes,
            retries: outcome.retries,
            sha256: outcome.sha256.as_ref().map(hex),
            partial: outcome.partial.clone(),
            cookies: Vec::new(),
        }
    }
}

/// One protocol line: the message and its newline, to be written in one call.
pub(crate) fn line<T: Serialize>(message: &T) -> io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(message).map_err(io::Error::other)?;
    line.push(b'\n');
    Ok(line)
}

/// Writes a report on this (worker) process's stdout for the parent.
pub(crate) fn report(message: &Message) -> io::Result<()> {
    let line = line(message)?;
    let mut stdout = io::stdout().lock();
    stdout.write_all(&line).and_then(|()| stdout.flush())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let report = Message::Position {
            position: 5,
            received: 3,
        };
        let text = String::from_utf8(line(&report).unwrap()).unwrap();
        assert_eq!(text, "{\"position\":{\"position\":5,\"received\":3}}\n");
        let order: Order = serde_json::from_str("\"cancel\"").unwrap();
        assert!(matches!(order, Order::Cancel));
        let order: Order = serde_json::from_str("{\"name\":\"a-1.bin\"}").unwrap();
        assert!(matches!(order, Order::Name(name) if name == "a-1.bin"));
    }
}
