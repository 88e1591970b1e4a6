//! The one body pump: a response's body, chunk by chunk, into a [`Drain`] (a whole body's
//! file, or one segment's range of it), with the waits every body has: the speed floor and
//! the read timeout ([`Policy::next_chunk`]), the rate limit, the progress shown, and the
//! write-outs that keep what arrived for `-c` should the process be killed (when the network
//! goes quiet, and at least every [`WRITE_OUT_EVERY`] while it is busy).

use std::time::Instant;

use bytes::Bytes;
use reqwest::Response;

use super::policy::{IDLE_FLUSH_AFTER, Policy, SpeedMeter, WRITE_OUT_EVERY};
use super::throttle::Throttle;
use crate::error::FetchError;
use crate::progress::Tracker;

/// Where a body's bytes go.
pub(super) trait Drain {
    /// How many more bytes it takes: a segment takes only its share of a body that runs on
    /// to the file's end; a whole body takes all there is.
    fn room(&self) -> u64;

    /// Takes `chunk` (no longer than [`Drain::room`]).
    async fn take(&mut self, chunk: Bytes) -> Result<(), FetchError>;

    /// Puts what it holds on disk, with what proves it there (the `.part`'s record): the
    /// network went `quiet`, or the last write-out is [`WRITE_OUT_EVERY`] old.
    async fn write_out(&mut self, quiet: bool) -> Result<(), FetchError>;
}

/// How a pumped body ended.
pub(super) enum End {
    /// The body ended (all of it, or short: the drain's owner tells).
    Ended,
    /// The drain has no more room (the body goes on: another's bytes).
    Full,
    /// Reading the body failed.
    Broken(reqwest::Error),
}

/// The run's rules a body is read under, and where its progress shows.
pub(super) struct Pump<'a> {
    pub(super) policy: &'a Policy,
    pub(super) throttle: &'a Throttle,
    pub(super) tracker: &'a Tracker,
}

impl Pump<'_> {
    /// Reads `response`'s body into `drain` until it ends or the drain is full. `Err` when a
    /// rule stopped it (too slow, stalled) or the drain failed; what it took is kept.
    pub(super) async fn run(
        &self,
        response: &mut Response,
        drain: &mut impl Drain,
    ) -> Result<End, FetchError> {
        let mut meter = SpeedMeter::new(self.policy);
        let mut written_out = Instant::now();
        loop {
            let room = drain.room();
            if room == 0 {
                return Ok(End::Full);
            }
            let waiting = self.policy.next_chunk(response, &mut meter);
            let next = match tokio::time::timeout(IDLE_FLUSH_AFTER, waiting).await {
                Ok(next) => next,
                Err(_) => {
                    // The network went quiet: what arrived goes to disk now, so that a
                    // process killed while waiting keeps it for -c.
                    drain.write_out(true).await?;
                    written_out = Instant::now();
                    self.policy.next_chunk(response, &mut meter).await
                }
            };
            let mut chunk = match next? {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return Ok(End::Ended),
                Err(err) => return Ok(End::Broken(err)),
            };
            if chunk.len() as u64 > room {
                chunk.truncate(usize::try_from(room).unwrap_or(usize::MAX));
            }
            let len = chunk.len() as u64;
            self.throttle.spend(len).await;
            drain.take(chunk).await?;
            self.tracker.advance(len);
            if written_out.elapsed() >= WRITE_OUT_EVERY {
                // A slow but steady body never goes quiet: written out on time as well.
                drain.write_out(false).await?;
                written_out = Instant::now();
            }
        }
    }
}
