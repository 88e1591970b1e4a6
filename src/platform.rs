//! What differs between operating systems, in one place: stop signals, positioned writes and
//! the limits on threads. Unix has them all; elsewhere (Windows) each has a plain stand-in.
//! Other platform code that predates this module still sits behind `cfg` where it is used
//! (`sink`: `O_NOFOLLOW` and unnamed files; `procs::os`; `bench::cpu`).

use std::fs::File;
use std::io;

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
