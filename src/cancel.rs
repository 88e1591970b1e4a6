//! Ctrl-C and SIGTERM: the first one cancels the run (no new downloads start, those in flight
//! stop and keep their `.part` files), a second one exits at once. The exit status says which
//! signal it was, as shells report it: 130 for SIGINT, 143 for SIGTERM.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use anyhow::{Context, Result};
use tokio::sync::watch;

use crate::platform::{Stop, StopSignals};

/// Exit status of a run stopped by Ctrl-C (128 + SIGINT), as shells report it.
pub(crate) const EXIT_INTERRUPTED: u8 = 130;
/// Exit status of a run stopped by SIGTERM (128 + 15).
pub(crate) const EXIT_TERMINATED: u8 = 143;

/// A cancellation flag shared by every thread, runtime and task of a run.
#[derive(Clone)]
pub(crate) struct Cancel {
    inner: Arc<Inner>,
}

struct Inner {
    flag: AtomicBool,
    /// The exit status of the signal that cancelled the run (0: none).
    signal_exit: AtomicU8,
    wake: watch::Sender<bool>,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel {
            inner: Arc::new(Inner {
                flag: AtomicBool::new(false),
                signal_exit: AtomicU8::new(0),
                wake: watch::Sender::new(false),
            }),
        }
    }
}

impl Cancel {
    /// Cancels the run; idempotent.
    pub(crate) fn trigger(&self) {
        self.inner.flag.store(true, Ordering::SeqCst);
        self.inner.wake.send_replace(true);
    }

    pub(crate) fn is_triggered(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    /// The exit status the run's first signal calls for (130 for SIGINT, 143 for SIGTERM), if
    /// a signal cancelled it.
    pub(crate) fn signal_exit(&self) -> Option<u8> {
        match self.inner.signal_exit.load(Ordering::SeqCst) {
            0 => None,
            code => Some(code),
        }
    }

    /// Completes once the run is cancelled; works on any runtime.
    pub(crate) async fn triggered(&self) {
        let mut woken = self.inner.wake.subscribe();
        // The sender lives as long as `self`, so waiting can only end by a trigger.
        let _ = woken.wait_for(|cancelled| *cancelled).await;
    }

    /// Cancels on the first SIGINT or SIGTERM; exits at once on the second (130 after a
    /// SIGINT, 143 after a SIGTERM). The handlers are
    /// in place when this returns.
    ///
    /// `notice` shows what the first signal did (the run's progress display, which prints it
    /// above its bars so that it stays visible); `None` keeps quiet.
    pub(crate) fn on_signals(&self, notice: Option<Notice>) -> Result<()> {
        let (ready, installed) = std::sync::mpsc::channel();
        let cancel = self.clone();
        std::thread::Builder::new()
            .name("signals".to_owned())
            .spawn(move || watch_signals(cancel, notice, ready))
            .context("cannot start the signal-handling thread")?;
        installed
            .recv()
            .context("the signal-handling thread stopped")?
    }
}

/// Where the first signal's notice goes: its text, and whether the signal is SIGINT (as a
/// rule a Ctrl-C typed at the terminal, which the terminal may have echoed).
pub(crate) type Notice = Box<dyn Fn(&str, bool) + Send>;

fn watch_signals(
    cancel: Cancel,
    notice: Option<Notice>,
    ready: std::sync::mpsc::Sender<Result<()>>,
) {
    let runtime = crate::platform::current_thread_runtime();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    runtime.block_on(async {
        let mut signals = match StopSignals::install() {
            Ok(handlers) => {
                let _ = ready.send(Ok(()));
                handlers
            }
            Err(err) => {
                let _ = ready.send(Err(err));
                return;
            }
        };
        for first in [true, false] {
            let code = match signals.recv().await {
                Stop::Interrupt => EXIT_INTERRUPTED,
                Stop::Terminate => EXIT_TERMINATED,
            };
            if !first {
                std::process::exit(code.into());
            }
            if let Some(notice) = &notice {
                let line = match code {
                    EXIT_TERMINATED => "terminated: stopping downloads (partial files kept)",
                    _ => "interrupted: stopping downloads (partial files kept; Ctrl-C again to quit now)",
                };
                notice(line, code == EXIT_INTERRUPTED);
            }
            cancel.inner.signal_exit.store(code, Ordering::SeqCst);
            cancel.trigger();
        }
    });
}
