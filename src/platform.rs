//! What differs between operating systems, in one place (no `cfg` outside this file): stop
//! signals, opening files without following links, unnamed files, positioned writes, worker
//! processes, limits on threads, CPU time, where netrc lives. Unix has them all (Linux adds
//! unnamed files and per-thread CPU time); elsewhere (Windows) each has a plain stand-in. The
//! one build option (the `compressed` feature) is decided here too.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::runtime::Runtime;

/// Which stop request arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Ctrl-C (SIGINT).
    Interrupt,
    /// SIGTERM (a service manager, `kill`); Unix only.
    #[cfg_attr(not(unix), allow(dead_code))]
    Terminate,
}

/// Listeners for the requests to stop: SIGINT and SIGTERM on Unix, Ctrl-C elsewhere.
pub(crate) struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(not(unix))]
    ctrl_c: tokio::signal::windows::CtrlC,
}

impl StopSignals {
    /// Installs the handlers; needs a tokio runtime context with I/O enabled.
    pub(crate) fn install() -> Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignals {
                interrupt: signal(SignalKind::interrupt())
                    .context("cannot install a SIGINT handler")?,
                terminate: signal(SignalKind::terminate())
                    .context("cannot install a SIGTERM handler")?,
            })
        }
        #[cfg(not(unix))]
        {
            let ctrl_c =
                tokio::signal::windows::ctrl_c().context("cannot install a Ctrl-C handler")?;
            Ok(StopSignals { ctrl_c })
        }
    }

    /// The next stop request.
    pub(crate) async fn recv(&mut self) -> Stop {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => Stop::Interrupt,
                _ = self.terminate.recv() => Stop::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            self.ctrl_c.recv().await;
            Stop::Interrupt
        }
    }
}

/// Writes all of `buf` at byte `offset` of `file`, without moving a shared cursor (segments
/// write one file from several tasks at once).
pub(crate) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.write_all_at(buf, offset)
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt;
        let (mut buf, mut offset) = (buf, offset);
        while !buf.is_empty() {
            match file.seek_write(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}

/// The soft limits on open descriptors and on tasks (threads) of this process, where the
/// platform has such limits; `None` for a limit it does not have or that cannot be read.
pub(crate) fn descriptor_and_task_limits() -> (Option<u64>, Option<u64>) {
    #[cfg(unix)]
    {
        (
            rlimit::Resource::NOFILE.get_soft().ok(),
            rlimit::Resource::NPROC.get_soft().ok(),
        )
    }
    #[cfg(not(unix))]
    {
        (None, None)
    }
}

/// Asks glibc's allocator to keep freed memory instead of giving it back to the system at
/// once. An HTTP/2 body comes as many small frames, each in a buffer of its own; with the
/// defaults the heap's top was trimmed and grown again frame after frame: 256 MiB over HTTP/2
/// (8 KiB frames) took about 27,600 page faults against 4,950 over HTTP/1.1. Pages stay
/// mapped only up to the run's peak, so the peak memory is unchanged. Elsewhere: nothing.
pub(crate) fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets two of the allocator's parameters (under its own lock).
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// A tokio runtime on the calling thread, with I/O and timers: what each download thread, the
/// signal watcher and a worker process drive their I/O with.
pub(crate) fn current_thread_runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a tokio runtime")
}

/// Asks `options` not to follow a symlink at the last component (`O_NOFOLLOW`: it fails with
/// `ELOOP`) nor to wait on a FIFO without a reader (`O_NONBLOCK`: it fails with `ENXIO`).
/// Elsewhere a plain open; the caller checks what it opened either way.
pub(crate) fn no_follow_no_block(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
    }
    #[cfg(not(unix))]
    {
        options
    }
}

/// A new file in `dir` without a name (Linux `O_TMPFILE`), to be named by [`link_unnamed`]
/// once it is worth one; `None` where that is not to be had (another system, a filesystem or
/// kernel without it): the caller writes a named file instead.
pub(crate) fn unnamed_file(dir: &Path) -> Option<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicBool, Ordering};

        // Cleared when the filesystem or the kernel refuses: the rest of the run then writes
        // named files without asking again.
        static USABLE: AtomicBool = AtomicBool::new(true);
        // Naming it later goes through /proc.
        static PROC: OnceLock<bool> = OnceLock::new();
        if !USABLE.load(Ordering::Relaxed)
            || !*PROC.get_or_init(|| Path::new("/proc/self/fd").is_dir())
        {
            return None;
        }
        // Readable too, to copy it out should linking be refused.
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .open(dir);
        match opened {
            Ok(file) => Some(file),
            Err(err) => {
                // "Not here" (filesystem, kernel), as opposed to a passing shortage.
                let unsupported = [libc::EOPNOTSUPP, libc::EISDIR, libc::EINVAL];
                if err
                    .raw_os_error()
                    .is_some_and(|code| unsupported.contains(&code))
                {
                    USABLE.store(false, Ordering::Relaxed);
                }
                None
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        None
    }
}

/// Gives a file from [`unnamed_file`] the name `path` (`linkat` through `/proc/self/fd`);
/// fails if `path` is taken, or where linking is refused (a sandbox, another filesystem).
pub(crate) fn link_unnamed(file: &File, path: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::io::AsRawFd;

        let source = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
        let target = CString::new(path.as_os_str().as_bytes())?;
        // SAFETY: both are NUL-terminated paths that outlive the call.
        let linked = unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                source.as_ptr(),
                libc::AT_FDCWD,
                target.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        };
        if linked == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, path);
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// Takes an exclusive advisory lock on `file` without waiting (`flock(LOCK_EX | LOCK_NB)` on
/// Unix: held until every descriptor of that open file is closed, so a killed process lets
/// go at once); `Ok(false)` when another open file holds it. Elsewhere (Windows) no lock is
/// taken and it always succeeds: two runs into one directory there are not kept apart.
pub(crate) fn try_lock(file: &File) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock on a descriptor this `File` owns for the duration of the call.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(false)
        } else {
            Err(err)
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(true)
    }
}

/// Whether two metadata describe one file (device and inode on Unix; elsewhere, where that
/// is not at hand, the same length and kind).
pub(crate) fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (a.dev(), a.ino()) == (b.dev(), b.ino())
    }
    #[cfg(not(unix))]
    {
        a.is_file() == b.is_file() && a.len() == b.len()
    }
}

/// Whether the file `meta` describes has other names too (hard links), where that is known.
pub(crate) fn has_other_links(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        meta.nlink() > 1
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

/// Whether the terminal on stderr echoes a typed Ctrl-C as `^C` (its `ECHO` and `ECHOCTL`
/// modes, the default): the echo moves the cursor a line down under the bars.
pub(crate) fn echoes_ctrl_c() -> bool {
    #[cfg(unix)]
    {
        // SAFETY: tcgetattr only fills in the struct it is given; a zeroed termios is valid.
        let mut modes: libc::termios = unsafe { std::mem::zeroed() };
        let got = unsafe { libc::tcgetattr(libc::STDERR_FILENO, &mut modes) } == 0;
        got && modes.c_lflag & libc::ECHO != 0 && modes.c_lflag & libc::ECHOCTL != 0
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// The default netrc file: `~/.netrc` (`%USERPROFILE%\_netrc` on Windows, as curl).
pub(crate) fn default_netrc() -> Option<PathBuf> {
    #[cfg(unix)]
    let (home, name) = (std::env::var_os("HOME"), ".netrc");
    #[cfg(not(unix))]
    let (home, name) = (std::env::var_os("USERPROFILE"), "_netrc");
    home.filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(name))
}

/// Starts the worker in a process group of its own, so that a terminal's Ctrl-C reaches the
/// parent only, which passes it on once, over the pipe (a second Ctrl-C then ends the parent
/// at once, and its workers with it, as their stdin closes).
pub(crate) fn own_process_group(command: &mut Command) -> &mut Command {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0)
    }
    #[cfg(not(unix))]
    {
        command
    }
}

/// "killed by signal 9 (SIGKILL)", "exited with status 3".
pub(crate) fn describe_exit(exit: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = exit.signal() {
            return format!("killed by signal {signal} ({})", signal_name(signal));
        }
    }
    match exit.code() {
        Some(code) => format!("exited with status {code}"),
        None => "ended".to_owned(),
    }
}

#[cfg(unix)]
fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGHUP => "SIGHUP",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGQUIT => "SIGQUIT",
        _ => "unknown signal",
    }
}

/// User and system CPU time so far of this process and its reaped children (`getrusage`);
/// `None` where that is not measured (not Unix).
pub(crate) fn process_cpu_time() -> Option<(Duration, Duration)> {
    #[cfg(unix)]
    {
        let rusage = |who| {
            let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
            // SAFETY: getrusage writes a whole `rusage` into the pointer it is given, which
            // points to memory of that size; `who` is one of the constants it accepts.
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
            Some((time(usage.ru_utime), time(usage.ru_stime)))
        };
        let (own, children) = (rusage(libc::RUSAGE_SELF)?, rusage(libc::RUSAGE_CHILDREN)?);
        Some((own.0 + children.0, own.1 + children.1))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// User and system CPU time of this process's threads whose name starts with `prefix`, from
/// `/proc/self/task/*/stat` (Linux; zero elsewhere).
pub(crate) fn threads_cpu_time(prefix: &str) -> (Duration, Duration) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysconf has no preconditions.
        let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return (Duration::ZERO, Duration::ZERO);
        };
        let (utime, stime) = tasks
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("stat")).ok())
            .filter_map(|stat| {
                // `pid (comm) state ...`: comm may hold spaces, so split at the last ')'.
                let (head, rest) = stat.rsplit_once(')')?;
                let comm = head.split_once('(')?.1;
                if !comm.starts_with(prefix) {
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
        (secs(utime), secs(stime))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = prefix;
        (Duration::ZERO, Duration::ZERO)
    }
}

/// Whether this build has `--compressed`'s decoders (the `compressed` cargo feature, on by
/// default).
pub const COMPRESSED: bool = cfg!(feature = "compressed");

/// `builder` asking for and decoding gzip, brotli and zstd when `on` (`--compressed`).
#[cfg(feature = "compressed")]
pub(crate) fn decoders(builder: reqwest::ClientBuilder, on: bool) -> reqwest::ClientBuilder {
    builder.gzip(on).brotli(on).zstd(on)
}

/// Built without the decoders: `--compressed` is refused before any client is built.
#[cfg(not(feature = "compressed"))]
pub(crate) fn decoders(builder: reqwest::ClientBuilder, _on: bool) -> reqwest::ClientBuilder {
    builder
}
