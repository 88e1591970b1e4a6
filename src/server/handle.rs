//! A running server: started on its own thread and tokio runtime, its listener bound, and
//! stopped by its handle.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::routes::{file_url, router, workload_urls};
use super::state::{AppState, ServerConfig, ServerStats};
use super::tls::{self, Certificate};

/// How long shutdown waits for in-flight responses before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Pending-connection queue length of the listening socket.
const LISTEN_BACKLOG: u32 = 1024;

/// A running server. Dropping it shuts the server down like [`shutdown`](Self::shutdown).
pub struct ServerHandle {
    addr: SocketAddr,
    state: Arc<AppState>,
    /// With `--tls`: the certificate clients must trust.
    certificate: Option<Certificate>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// Binds and starts serving on a dedicated background thread running its
    /// own tokio runtime (multi-thread, 2 workers). Returns once the socket
    /// is bound (so the port is known) and, with TLS, the certificate written.
    pub fn start(cfg: ServerConfig) -> anyhow::Result<ServerHandle> {
        let (certificate, acceptor) = match cfg.tls {
            true => {
                let (certificate, acceptor) =
                    tls::self_signed(cfg.cert_out.as_deref(), cfg.http1_only)?;
                (Some(certificate), Some(acceptor))
            }
            false => (None, None),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fetchbench-server")
            .enable_all()
            .build()
            .context("failed to create the server's tokio runtime")?;
        let listener = {
            let _context = runtime.enter();
            bind_listener(cfg.bind).with_context(|| format!("failed to bind {}", cfg.bind))?
        };
        let addr = listener
            .local_addr()
            .with_context(|| format!("failed to read the local address bound for {}", cfg.bind))?;
        let state = Arc::new(AppState::new(cfg, addr));
        let app = router(Arc::clone(&state));
        let (stop, stopped) = watch::channel(false);
        let served = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name(format!("fetchbench-server-{addr}"))
            .spawn(move || run_server(runtime, listener, app, served, acceptor, stopped))
            .context("failed to spawn the server thread")?;
        Ok(ServerHandle {
            addr,
            state,
            certificate,
            stop,
            thread: Some(thread),
        })
    }

    /// With TLS: the file holding the server's certificate (PEM), for a client's `--cacert`.
    pub(crate) fn cert_path(&self) -> Option<&Path> {
        self.certificate.as_ref().map(|c| c.path.as_path())
    }

    /// The bound address (with the actual port if port 0 was requested).
    #[cfg(test)]
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT` (`https://` with TLS), using a loopback address if bound to an
    /// unspecified one (`0.0.0.0`, `::`).
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.state.scheme, self.state.authority)
    }

    /// URL of synthetic file `name` of `size` bytes.
    pub fn file_url(&self, name: &str, size: u64) -> String {
        file_url(&self.base_url(), name, size, "")
    }

    /// The configured workload: `files` URLs of `size` bytes, the same as `GET /list`.
    pub(crate) fn workload_urls(&self) -> Vec<String> {
        let cfg = &self.state.config;
        workload_urls(&self.base_url(), cfg.files, cfg.size, "")
    }

    /// Connections, handshakes, requests and file body bytes served so far.
    pub(crate) fn stats(&self) -> ServerStats {
        self.state.counters.snapshot()
    }

    /// Starts [`ServerStats::peak_streams`] over from zero, so that the next snapshot's peak is
    /// that of the interval (the other counters only grow: take differences with
    /// [`ServerStats::since`]).
    pub(crate) fn reset_peak(&self) {
        self.state.counters.peak_streams.store(0, Ordering::Relaxed);
    }

    /// Stops accepting connections, lets in-flight responses finish for up
    /// to one second, then stops the runtime and joins its thread.
    pub(crate) fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        // The receiver lives as long as the server thread; a send error only
        // means the thread has already exited.
        let _ = self.stop.send(true);
        if thread.join().is_err() {
            eprintln!("fetchbench server on {}: server thread panicked", self.addr);
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Binds with `SO_REUSEADDR` so a restarted server can reuse its port while
/// old connections linger in `TIME_WAIT`. Needs a runtime context.
fn bind_listener(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Body of the server thread: serves until `stopped` turns true, then drains
/// gracefully for at most [`SHUTDOWN_GRACE`].
fn run_server(
    runtime: tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    app: Router,
    state: Arc<AppState>,
    tls: Option<TlsAcceptor>,
    stopped: watch::Receiver<bool>,
) {
    runtime.block_on(super::conn::serve(
        listener,
        app,
        state,
        tls,
        wait_for_stop(stopped),
        SHUTDOWN_GRACE,
    ));
    // Connections still open after the grace period are dropped here.
    runtime.shutdown_timeout(Duration::from_millis(100));
}

/// Resolves once the stop flag is set or its sender is gone.
async fn wait_for_stop(mut stopped: watch::Receiver<bool>) {
    // An error means the handle was dropped, which also means stop.
    let _ = stopped.wait_for(|&stop| stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::testing::{get, start};
    use std::net::TcpStream;
    use std::time::Instant;

    #[test]
    fn bind_error_names_the_address() {
        let first = start(ServerConfig::default());
        let err = ServerHandle::start(ServerConfig {
            bind: first.addr(),
            ..ServerConfig::default()
        })
        .err()
        .expect("second bind on the same port fails");
        assert!(
            format!("{err:#}").contains(&first.addr().to_string()),
            "{err:#}"
        );
    }

    #[test]
    fn shutdown_stops_listening() {
        let server = start(ServerConfig::default());
        let addr = server.addr();
        assert_eq!(get(addr, "/files/a?size=1").status, 200);
        // An idle keep-alive connection must not hold up shutdown.
        let _idle = TcpStream::connect(addr).expect("connect");
        let started = Instant::now();
        server.shutdown();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(TcpStream::connect(addr).is_err());
    }
}
