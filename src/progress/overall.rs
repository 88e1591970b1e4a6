//! The overall line: files done, bytes, the run's rate over the last seconds, its ETA, and a bar
//! in whatever room is left, laid out to fit (a part that does not fit is left out, least
//! useful first).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use console::measure_text_width;
use indicatif::style::ProgressTracker;
use indicatif::{HumanBytes, HumanDuration, ProgressState};

use super::rate::RateWindow;

/// What every download adds to the overall line, shared by the trackers and the line's key.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    /// Bytes received by all downloads.
    pub(crate) bytes: AtomicU64,
    /// Downloads running without a bar (`+N more`).
    pub(crate) hidden: AtomicUsize,
    /// The run's width (`64 at once`; 0: not shown).
    pub(crate) width: AtomicUsize,
    /// Bytes still to come for the running downloads whose size is known.
    sized_left: AtomicI64,
    /// Running downloads whose size is known.
    sized_running: AtomicUsize,
    /// The sizes announced so far, and how many: their mean stands for a size not yet known.
    sizes_sum: AtomicU64,
    sizes_count: AtomicU64,
}

impl Totals {
    /// A download at `position` learned its size: `length` (`before` when it knew one already,
    /// else `u64::MAX`).
    pub(crate) fn sized(&self, before: u64, length: u64, position: u64) {
        if before == u64::MAX {
            self.sized_running.fetch_add(1, Ordering::Relaxed);
            self.sizes_count.fetch_add(1, Ordering::Relaxed);
            self.sizes_sum.fetch_add(length, Ordering::Relaxed);
            self.add_left(length as i64 - position as i64);
        } else {
            self.add_left(length as i64 - before as i64);
        }
    }

    /// A sized download moved from `before` to `after` bytes.
    pub(crate) fn moved(&self, before: u64, after: u64) {
        self.add_left(before as i64 - after as i64);
    }

    /// A sized download of `length` ended at `position`.
    pub(crate) fn ended(&self, length: u64, position: u64) {
        self.sized_running.fetch_sub(1, Ordering::Relaxed);
        self.add_left(position as i64 - length as i64);
    }

    fn add_left(&self, delta: i64) {
        self.sized_left.fetch_add(delta, Ordering::Relaxed);
    }

    /// Bytes still to come, for `waiting` downloads not started or without a size yet: what
    /// the sized ones lack, and the mean size for each of the others. `None` before any size
    /// is known.
    fn left(&self, waiting: u64) -> Option<u64> {
        let count = self.sizes_count.load(Ordering::Relaxed);
        let mean = self.sizes_sum.load(Ordering::Relaxed).checked_div(count)?;
        let sized = self.sized_left.load(Ordering::Relaxed).max(0) as u64;
        Some(sized.saturating_add(mean.saturating_mul(waiting)))
    }
}

/// The `{totals}` key of the overall line, fitted to `room` columns.
#[derive(Debug, Clone)]
pub(crate) struct OverallKey {
    totals: Arc<Totals>,
    room: usize,
    window: RateWindow,
}

impl OverallKey {
    pub(crate) fn new(totals: Arc<Totals>, room: usize) -> Self {
        OverallKey {
            totals,
            room,
            window: RateWindow::default(),
        }
    }

    /// The line for `done` of `files` downloads (`None` while the list is read), `elapsed` in.
    pub(crate) fn line(&self, done: u64, files: Option<u64>, elapsed: Duration) -> String {
        let totals = &self.totals;
        let rate = self.window.per_sec();
        let eta = files.zip(rate).and_then(|(files, rate)| {
            let running = totals.sized_running.load(Ordering::Relaxed) as u64;
            let waiting = files.saturating_sub(done).saturating_sub(running);
            let left = totals.left(waiting)?;
            (rate > 0.0).then(|| Duration::from_secs_f64(left as f64 / rate))
        });
        let counted = match files {
            Some(files) => format!("{done}/{files} files"),
            None => format!("{done} files"),
        };
        let bytes = HumanBytes(totals.bytes.load(Ordering::Relaxed)).to_string();
        let rate = rate.map(|r| format!("{}/s", HumanBytes(r as u64)));
        let eta = eta.map(|eta| format!("ETA {:#}", HumanDuration(eta)));
        let elapsed = format!("{:#}", HumanDuration(elapsed));
        let reading = files.is_none().then(|| "(reading the list)".to_owned());
        let hidden = match totals.hidden.load(Ordering::Relaxed) {
            0 => None,
            n => Some(format!("+{n} more")),
        };
        let at_once = match totals.width.load(Ordering::Relaxed) {
            0 => None,
            n => Some(format!("{n} at once")),
        };
        // Least useful first: what goes when the room is short.
        let mut optional = [reading, at_once, Some(elapsed), eta, rate];
        loop {
            let [reading, at_once, elapsed, eta, rate] = &optional;
            let mut parts = vec![counted.clone(), bytes.clone()];
            parts.extend(
                rate.iter()
                    .chain(eta)
                    .chain(elapsed)
                    .chain(at_once)
                    .cloned(),
            );
            let mut text = parts.join(", ");
            for extra in [reading, &hidden].into_iter().flatten() {
                text.push(' ');
                text.push_str(extra);
            }
            let width = measure_text_width(&text);
            let dropped = optional.iter().all(Option::is_none);
            if width <= self.room || dropped {
                // The bar takes what is left: at most 40 columns, none when under 10.
                let bar = self.room.saturating_sub(width + 3).min(40);
                return match (files, bar >= 10) {
                    (Some(files), true) => format!("[{}] {text}", bar_of(done, files, bar)),
                    _ => text,
                };
            }
            if let Some(part) = optional.iter_mut().find(|p| p.is_some()) {
                *part = None;
            }
        }
    }
}

/// `=====>    `: `done` of `total` in `width` columns.
fn bar_of(done: u64, total: u64, width: usize) -> String {
    let filled = match total {
        0 => width,
        _ => (done.min(total) as f64 / total as f64 * width as f64) as usize,
    };
    let head = usize::from(filled < width);
    format!(
        "{}{}{}",
        "=".repeat(filled),
        ">".repeat(head),
        " ".repeat(width - filled - head)
    )
}

impl ProgressTracker for OverallKey {
    fn clone_box(&self) -> Box<dyn ProgressTracker> {
        Box::new(self.clone())
    }

    fn tick(&mut self, _: &ProgressState, now: Instant) {
        self.window
            .record(now, self.totals.bytes.load(Ordering::Relaxed));
    }

    fn reset(&mut self, _: &ProgressState, _: Instant) {
        self.window = RateWindow::default();
    }

    fn write(&self, state: &ProgressState, w: &mut dyn std::fmt::Write) {
        let _ = w.write_str(&self.line(state.pos(), state.len(), state.elapsed()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 4 of 10 files of 1 MiB done, one half way, at 1 MiB/s: about 5.5 s left, and at 80
    /// columns everything fits with a bar.
    #[test]
    fn the_overall_line_shows_rate_and_eta_and_fits() {
        let totals = Arc::new(Totals::default());
        let mib = 1 << 20;
        for _ in 0..4 {
            totals.sized(u64::MAX, mib, 0);
            totals.moved(0, mib);
            totals.ended(mib, mib);
        }
        totals.sized(u64::MAX, mib, 0);
        totals.moved(0, mib / 2);
        let mut key = OverallKey::new(Arc::clone(&totals), 73);
        let start = Instant::now();
        for tick in 0..=10u64 {
            totals.bytes.store(tick * mib / 10, Ordering::Relaxed);
            let state_less = start + Duration::from_millis(100 * tick);
            key.window
                .record(state_less, totals.bytes.load(Ordering::Relaxed));
        }
        let line = key.line(4, Some(10), Duration::from_secs(5));
        assert!(
            line.contains("4/10 files") && line.contains("1.00 MiB/s"),
            "{line}"
        );
        assert!(line.contains("ETA 5s") || line.contains("ETA 6s"), "{line}");
        assert!(line.starts_with("[====") && line.contains(">"), "{line}");
        assert!(measure_text_width(&line) <= 73, "{line}");
        // In 30 columns, the least useful parts go first, the counts stay.
        let narrow = OverallKey { room: 30, ..key };
        let line = narrow.line(4, Some(10), Duration::from_secs(5));
        assert!(line.starts_with("4/10 files, 1.00 MiB"), "{line}");
        assert!(!line.contains('['), "{line}");
    }

    #[test]
    fn no_eta_before_any_size_is_known_and_none_while_the_list_is_read() {
        let totals = Arc::new(Totals::default());
        let key = OverallKey::new(Arc::clone(&totals), 73);
        let line = key.line(0, Some(3), Duration::from_secs(1));
        assert!(!line.contains("ETA"), "{line}");
        let line = key.line(2, None, Duration::from_secs(1));
        assert!(
            line.contains("2 files") && line.contains("reading the list"),
            "{line}"
        );
    }
}
