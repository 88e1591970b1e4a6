//! Live speed and ETA from the last few seconds, not from the whole download: indicatif's own
//! estimate moves slowly and showed about half the real speed on a steady connection.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use indicatif::style::ProgressTracker;
use indicatif::{HumanBytes, HumanDuration, ProgressState};

/// How far back the speed looks.
const WINDOW: Duration = Duration::from_secs(3);

/// Positions seen over the last [`WINDOW`] (plus one older sample, the window's start).
#[derive(Debug, Clone, Default)]
pub(crate) struct RateWindow {
    samples: VecDeque<(Instant, u64)>,
}

impl RateWindow {
    /// The bar was at `pos` bytes at `now`.
    pub(crate) fn record(&mut self, now: Instant, pos: u64) {
        if self.samples.back().is_some_and(|&(_, last)| pos < last) {
            // Moved back (a retry starting over): the old samples say nothing about now.
            self.samples.clear();
        }
        self.samples.push_back((now, pos));
        while self
            .samples
            .get(1)
            .is_some_and(|&(at, _)| now.duration_since(at) >= WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// Bytes per second over the window, once there is a window.
    pub(crate) fn per_sec(&self) -> Option<f64> {
        let (&(first_at, first), &(last_at, last)) = (self.samples.front()?, self.samples.back()?);
        let secs = last_at.duration_since(first_at).as_secs_f64();
        (secs >= 0.2).then(|| (last - first) as f64 / secs)
    }

    /// Time left for `remaining` bytes at the window's speed.
    pub(crate) fn eta(&self, remaining: u64) -> Option<Duration> {
        let rate = self.per_sec()?;
        (rate > 0.0).then(|| Duration::from_secs_f64(remaining as f64 / rate))
    }
}

/// Which number a [`WindowKey`] shows.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shows {
    Rate,
    Eta,
}

/// A template key (`{rate}`, `{eta}`) backed by a [`RateWindow`] of its own bar.
#[derive(Debug, Clone)]
pub(crate) struct WindowKey {
    shows: Shows,
    window: RateWindow,
}

impl WindowKey {
    pub(crate) fn new(shows: Shows) -> Self {
        WindowKey {
            shows,
            window: RateWindow::default(),
        }
    }
}

impl ProgressTracker for WindowKey {
    fn clone_box(&self) -> Box<dyn ProgressTracker> {
        Box::new(self.clone())
    }

    fn tick(&mut self, state: &ProgressState, now: Instant) {
        self.window.record(now, state.pos());
    }

    fn reset(&mut self, _: &ProgressState, _: Instant) {
        self.window = RateWindow::default();
    }

    fn write(&self, state: &ProgressState, w: &mut dyn std::fmt::Write) {
        let _ = match self.shows {
            Shows::Rate => match self.window.per_sec() {
                Some(rate) => write!(w, "{}/s", HumanBytes(rate as u64)),
                None => write!(w, "-"),
            },
            Shows::Eta => {
                let remaining = state.len().map(|len| len.saturating_sub(state.pos()));
                match remaining.and_then(|r| self.window.eta(r)) {
                    Some(eta) => write!(w, "{:#}", HumanDuration(eta)),
                    None => write!(w, "-"),
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A steady 2 MiB/s after a slow start: the window shows 2 MiB/s, not the average.
    #[test]
    fn the_rate_is_the_last_seconds_not_the_whole_download() {
        let start = Instant::now();
        let mut window = RateWindow::default();
        let mut pos = 0;
        for tick in 0..=200u64 {
            // 100 ms ticks: 10 s at 100 KiB/s, then 10 s at 2 MiB/s.
            pos += if tick <= 100 { 10 << 10 } else { 200 << 10 };
            window.record(start + Duration::from_millis(100 * tick), pos);
        }
        let rate = window.per_sec().unwrap();
        let real = 2_048_000.0;
        assert!((rate - real).abs() / real < 0.10, "{rate} vs {real}");
        let eta = window.eta(4_096_000).unwrap().as_secs_f64();
        assert!((eta - 2.0).abs() < 0.2, "{eta}");
    }

    #[test]
    fn no_rate_before_there_is_a_window_and_a_restart_forgets() {
        let start = Instant::now();
        let mut window = RateWindow::default();
        window.record(start, 0);
        assert_eq!(window.per_sec(), None);
        window.record(start + Duration::from_secs(1), 1000);
        assert_eq!(window.per_sec(), Some(1000.0));
        window.record(start + Duration::from_secs(2), 10);
        assert_eq!(window.per_sec(), None);
    }
}
