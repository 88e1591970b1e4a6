//! CPU time (user and system, apart) spent by the downloads of a run: this process and its
//! reaped children (`procs` and `spawn` workers), minus the built-in server's threads, which share the process.
//!
//! Measured where the platform tells ([`crate::platform::process_cpu_time`]: `getrusage` on
//! Unix); elsewhere [`client_cpu_time`] gives `None`, shown as "n/a" and exported as `null`.

use std::time::Duration;

use crate::platform;

/// User and system CPU time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CpuTime {
    pub(crate) user: Duration,
    pub(crate) system: Duration,
}

impl CpuTime {
    /// What was spent since `before`.
    pub(crate) fn since(self, before: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(before.user),
            system: self.system.saturating_sub(before.system),
        }
    }
}

impl std::ops::Add for CpuTime {
    type Output = CpuTime;

    fn add(self, other: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user + other.user,
            system: self.system + other.system,
        }
    }
}

/// The thread name prefix of the built-in server (`comm` is cut to 15 bytes).
const SERVER_THREADS: &str = "fetchbench-serv";

/// CPU time so far of this process and its reaped children, without the server's threads;
/// `None` where it cannot be measured.
pub(crate) fn client_cpu_time() -> Option<CpuTime> {
    let (user, system) = platform::process_cpu_time()?;
    let (server_user, server_system) = platform::threads_cpu_time(SERVER_THREADS);
    Some(CpuTime {
        user: user.saturating_sub(server_user),
        system: system.saturating_sub(server_system),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Instant;

    /// Runs `work` until `done` says the CPU time spent since the start is enough, or 10 s of
    /// wall time pass (the machine may be busy with other work); returns what was spent.
    fn spend(mut work: impl FnMut(), done: impl Fn(CpuTime) -> bool) -> CpuTime {
        let before = client_cpu_time().unwrap();
        let start = Instant::now();
        loop {
            work();
            let spent = client_cpu_time().unwrap().since(before);
            if done(spent) || start.elapsed() > Duration::from_secs(10) {
                return spent;
            }
        }
    }

    #[test]
    fn busy_work_shows_as_user_time() {
        let mut x = 0u64;
        let spent = spend(
            || {
                for _ in 0..100_000 {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                }
                std::hint::black_box(x);
            },
            |spent| spent.user >= Duration::from_millis(100),
        );
        assert!(spent.user >= Duration::from_millis(100), "{spent:?}");
    }

    #[test]
    fn system_calls_show_as_system_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        // Work done in the kernel: file writes and stats.
        let spent = spend(
            || {
                std::fs::write(&path, [0u8; 4096]).unwrap();
                std::fs::metadata(&path).unwrap();
            },
            |spent| spent.system >= Duration::from_millis(20),
        );
        assert!(spent.system >= Duration::from_millis(20), "{spent:?}");
    }
}
