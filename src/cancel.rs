//! Ctrl-C: the first one cancels the run (no new downloads start, those in flight stop and keep
//! their `.part` files), a second one exits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use tokio::sync::watch;

/// Exit status of a run stopped by Ctrl-C (128 + SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;

/// A cancellation flag shared by every thread, runtime and task of a run.
#[derive(Clone)]
pub struct Cancel {
    inner: Arc<Inner>,
}

struct Inner {
    flag: AtomicBool,
    wake: watch::Sender<bool>,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel {
            inner: Arc::new(Inner {
                flag: AtomicBool::new(false),
                wake: watch::Sender::new(false),
            }),
        }
    }
}

impl Cancel {
    /// Cancels the run; idempotent.
    pub fn trigger(&self) {
        self.inner.flag.store(true, Ordering::SeqCst);
        self.inner.wake.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    /// Completes once the run is cancelled; works on any runtime.
    pub async fn triggered(&self) {
        let mut woken = self.inner.wake.subscribe();
        // The sender lives as long as `self`, so waiting can only end by a trigger.
        let _ = woken.wait_for(|cancelled| *cancelled).await;
    }

    /// Cancels on the first SIGINT or SIGTERM; exits with 130 on the second. The handlers are
    /// in place when this returns.
    pub fn on_signals(&self, announce: bool) -> Result<()> {
        let (ready, installed) = std::sync::mpsc::channel();
        let cancel = self.clone();
        std::thread::Builder::new()
            .name("signals".to_owned())
            .spawn(move || watch_signals(cancel, announce, ready))
            .context("cannot start the signal-handling thread")?;
        installed
            .recv()
            .context("the signal-handling thread stopped")?
    }
}

fn watch_signals(cancel: Cancel, announce: bool, ready: std::sync::mpsc::Sender<Result<()>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("cannot start the signal-handling runtime");
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    runtime.block_on(async {
        let handlers = signal(SignalKind::interrupt())
            .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
            .context("cannot install the Ctrl-C handler");
        let (mut interrupt, mut terminate) = match handlers {
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
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            if !first {
                std::process::exit(EXIT_INTERRUPTED.into());
            }
            if announce {
                eprintln!("\ninterrupted: stopping downloads (partial files kept; Ctrl-C again to quit now)");
            }
            cancel.trigger();
        }
    });
}
