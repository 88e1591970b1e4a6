//! Locks that outlive a panic elsewhere.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, also after a thread panicked while holding it. Every lock in fetchbench
/// guards a value that is changed in one step (an instant, a count, a set or queue entry, an
/// `Option` taken, a pipe, `()`), so a panic cannot leave it half-changed; the panic itself is
/// reported where it happened (a download's `Claim` reports its URL as failed), and the run
/// goes on.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
