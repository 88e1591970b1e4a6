//! CPU time (user and system, apart) spent by the downloads of a run: this process and its
//! reaped children (`procs` and `spawn` workers), minus the built-in server's threads, which share the process.
//!
//! Measured with `getrusage` on Unix; elsewhere it is not measured ([`client_cpu_time`] gives
//! `None`, shown as "n/a" and exported as `null`).

use std::time::Duration;

/// User and system CPU time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTime {
    pub user: Duration,
    pub system: Duration,
}

impl CpuTime {
    pub fn total(self) -> Duration {
        self.user + self.system
    }

    /// What was spent since `before`.
    pub fn since(self, before: CpuTime) -> CpuTime {
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

/// CPU time so far of this process and its reaped children, without the server's threads;
/// `None` where it cannot be measured (not Unix).
#[cfg(unix)]
pub fn client_cpu_time() -> Option<CpuTime> {
    let own = unix::rusage(libc::RUSAGE_SELF)? + unix::rusage(libc::RUSAGE_CHILDREN)?;
    Some(own.since(unix::server_threads_cpu_time()))
}

/// CPU time is not measured on this platform.
#[cfg(not(unix))]
pub fn client_cpu_time() -> Option<CpuTime> {
    None
}

#[cfg(unix)]
mod unix {
    use std::time::Duration;

    use super::CpuTime;

    /// The thread name prefix of the built-in server (`comm` is cut to 15 bytes).
    const SERVER_THREADS: &str = "fetchbench-serv";

    pub(super) fn rusage(who: libc::c_int) -> Option<CpuTime> {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage writes a whole `rusage` into the pointer it is given, which points
        // to memory of that size; `who` is one of the constants it accepts.
        let usage = unsafe {
            if libc::getrusage(who, usage.as_mut_ptr()) != 0 {
                return None;
            }
            usage.assume_init()
        };
        let time = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec.max(0) as u64)
                + Duration::from_micros(t.tv_usec.max(0) as u64)
        };
        Some(CpuTime {
            user: time(usage.ru_utime),
            system: time(usage.ru_stime),
        })
    }

    /// User and system time of this process's threads named like the built-in server's, from
    /// `/proc/self/task/*/stat` (Linux; zero elsewhere).
    pub(super) fn server_threads_cpu_time() -> CpuTime {
        // SAFETY: sysconf has no preconditions.
        let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return CpuTime::default();
        };
        let (utime, stime) = tasks
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("stat")).ok())
            .filter_map(|stat| {
                // `pid (comm) state ...`: comm may hold spaces, so split at the last ')'.
                let (head, rest) = stat.rsplit_once(')')?;
                let comm = head.split_once('(')?.1;
                if !comm.starts_with(SERVER_THREADS) {
                    return None;
                }
                let fields: Vec<&str> = rest.split_whitespace().collect();
                // utime and stime are fields 14 and 15 of stat; `rest` starts at field 3.
                let utime: u64 = fields.get(11)?.parse().ok()?;
                let stime: u64 = fields.get(12)?.parse().ok()?;
                Some((utime, stime))
            })
            .fold((0, 0), |(u, s), (du, ds)| (u + du, s + ds));
        let secs = |ticks: u64| Duration::from_secs_f64(ticks as f64 / ticks_per_second);
        CpuTime {
            user: secs(utime),
            system: secs(stime),
        }
    }
}

#[cfg(all(test, unix))]
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
        assert!(spent.total() >= spent.user);
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
