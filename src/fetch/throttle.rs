//! Politeness: a rate cap for the whole run (`--limit-rate`), a cap on connections to one host
//! (`--max-per-host`), a pause between two starts (`--wait`). Shared by every thread and
//! runtime of a run (tokio's semaphore and timers work on any runtime).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Url;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::sync::lock;

/// The politeness rules of a run; [`Throttle::default`] imposes none.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    rate: Option<RateCap>,
    per_host: Option<HostSlots>,
    wait: Option<Pause>,
}

/// A token bucket: bytes are paid for at the rate, and time left idle earns credit only up to
/// [`MAX_BURST`] (otherwise a pause, such as `--wait`, would let the next file arrive
/// unthrottled).
#[derive(Debug)]
struct RateCap {
    bytes_per_sec: f64,
    /// When the bytes spent so far are paid for: in the past when there is credit.
    paid_until: Mutex<Instant>,
}

/// The most idle time a rate cap turns into credit: at most this long's worth of bytes may
/// arrive at once.
const MAX_BURST: Duration = Duration::from_millis(250);

#[derive(Debug)]
struct HostSlots {
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

#[derive(Debug)]
struct Pause {
    between: Duration,
    /// When the next download may start.
    next: Mutex<Option<Instant>>,
}

/// A download's place under `--max-per-host`, held until it ends.
pub(crate) type HostSlot = Option<OwnedSemaphorePermit>;

impl Throttle {
    pub(crate) fn new(
        limit_rate: Option<u64>,
        max_per_host: Option<usize>,
        wait: Option<Duration>,
    ) -> Self {
        Throttle {
            rate: limit_rate.filter(|&r| r > 0).map(|rate| RateCap {
                bytes_per_sec: rate as f64,
                paid_until: Mutex::new(Instant::now()),
            }),
            per_host: max_per_host.map(|per_host| HostSlots {
                per_host,
                hosts: Mutex::default(),
            }),
            wait: wait.filter(|w| !w.is_zero()).map(|between| Pause {
                between,
                next: Mutex::default(),
            }),
        }
    }

    /// Waits for `url`'s turn to start: a free slot for its host, then the pause since the
    /// previous start.
    pub(crate) async fn admit(&self, url: &Url) -> HostSlot {
        let slot = match &self.per_host {
            Some(slots) => Some(slots.acquire(url).await),
            None => None,
        };
        if let Some(pause) = &self.wait {
            let start = {
                // Each start books the next one.
                let mut next = lock(&pause.next);
                let start = next.map_or_else(Instant::now, |n| n.max(Instant::now()));
                *next = Some(start + pause.between);
                start
            };
            tokio::time::sleep_until(start).await;
        }
        slot.flatten()
    }

    /// An even share of the run's rate for one of `ways` separate processes.
    pub(crate) fn rate_share(&self, ways: usize) -> Option<u64> {
        self.rate
            .as_ref()
            .map(|cap| (cap.bytes_per_sec / ways.max(1) as f64).max(1.0) as u64)
    }

    /// Waits until `n` more bytes fit under the run's rate.
    pub(crate) async fn spend(&self, n: u64) {
        if let Some(cap) = &self.rate {
            let due = {
                let mut paid = lock(&cap.paid_until);
                let now = Instant::now();
                let credit_from = now.checked_sub(MAX_BURST).unwrap_or(now);
                let from = (*paid).max(credit_from);
                *paid = from + Duration::from_secs_f64(n as f64 / cap.bytes_per_sec);
                *paid
            };
            tokio::time::sleep_until(due).await;
        }
    }
}

impl HostSlots {
    async fn acquire(&self, url: &Url) -> Option<OwnedSemaphorePermit> {
        let host = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        );
        let semaphore = {
            let mut hosts = lock(&self.hosts);
            let semaphore = hosts
                .entry(host)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)));
            Arc::clone(semaphore)
        };
        // The semaphore is never closed, so acquiring only waits.
        semaphore.acquire_owned().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_rate_cap_spaces_bytes_out() {
        let throttle = Throttle::new(Some(1000), None, None);
        let start = Instant::now();
        throttle.spend(500).await;
        throttle.spend(1500).await;
        assert!(start.elapsed() >= Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn starts_are_spaced_by_the_wait() {
        let throttle = Throttle::new(None, None, Some(Duration::from_millis(200)));
        let url = Url::parse("http://h/").unwrap();
        let start = Instant::now();
        for _ in 0..3 {
            throttle.admit(&url).await;
        }
        assert!(start.elapsed() >= Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_earns_only_a_bounded_burst() {
        let throttle = Throttle::new(Some(1000), None, None);
        throttle.spend(1000).await;
        // A long pause, then 1000 bytes more: only MAX_BURST's worth comes free.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let start = Instant::now();
        throttle.spend(1000).await;
        let took = start.elapsed();
        assert!(took >= Duration::from_secs(1) - MAX_BURST, "{took:?}");
    }

    #[tokio::test]
    async fn each_host_has_its_own_slots() {
        let throttle = Throttle::new(None, Some(1), None);
        let a = Url::parse("http://a/").unwrap();
        let b = Url::parse("http://b/").unwrap();
        let held = throttle.admit(&a).await;
        assert!(held.is_some());
        // Another host is not blocked by a's slot.
        assert!(throttle.admit(&b).await.is_some());
    }
}
