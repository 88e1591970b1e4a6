//! What differs between operating systems, in one place: stop signals, opening files without
//! following links, positioned writes, worker processes, limits on threads, where netrc
//! lives. Unix has them all; elsewhere (Windows) each has a plain stand-in. Two larger pieces
//! stay beside their only user, behind `cfg`: `sink`'s unnamed files (`O_TMPFILE`, Linux) and
//! `bench::cpu`'s `getrusage`.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};

use anyhow::{Context, Result};
use tokio::runtime::Runtime;

/// Which stop request arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Ctrl-C (SIGINT).
    Interrupt,
    /// SIGTERM (a service manager, `kill`); Unix only.
    Terminate,
}

/// Listeners for the requests to stop: SIGINT and SIGTERM on Unix, Ctrl-C elsewhere.
pub struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(not(unix))]
    ctrl_c: tokio::signal::windows::CtrlC,
}

impl StopSignals {
    /// Installs the handlers; needs a tokio runtime context with I/O enabled.
    pub fn install() -> Result<Self> {
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
    pub async fn recv(&mut self) -> Stop {
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
pub fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
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
pub fn descriptor_and_task_limits() -> (Option<u64>, Option<u64>) {
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

/// A tokio runtime on the calling thread, with I/O and timers: what each download thread, the
/// signal watcher and a worker process drive their I/O with.
pub fn current_thread_runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a tokio runtime")
}

/// Asks `options` not to follow a symlink at the last component (`O_NOFOLLOW`: it fails with
/// `ELOOP`) nor to wait on a FIFO without a reader (`O_NONBLOCK`: it fails with `ENXIO`).
/// Elsewhere a plain open; the caller checks what it opened either way.
pub fn no_follow_no_block(options: &mut OpenOptions) -> &mut OpenOptions {
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

/// Whether the file `meta` describes has other names too (hard links), where that is known.
pub fn has_other_links(meta: &std::fs::Metadata) -> bool {
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

/// The default netrc file: `~/.netrc` (`%USERPROFILE%\_netrc` on Windows, as curl).
pub fn default_netrc() -> Option<PathBuf> {
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
pub fn own_process_group(command: &mut Command) -> &mut Command {
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
pub fn describe_exit(exit: ExitStatus) -> String {
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
