//! Connections: accepted, put behind the emulated path, TLS, then HTTP/1.1 or HTTP/2 (by ALPN
//! over TLS, by the client's preface over TCP), counted, and stopped gracefully.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use rustls::HandshakeKind;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::link::Link;
use super::state::AppState;

/// How long to wait before accepting again after an error such as too many open files.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What one connection shares with the requests it carries: how many are in progress on it.
#[derive(Debug, Default)]
pub(super) struct ConnStreams {
    pub(super) active: AtomicU64,
}

/// Accepts and serves connections until `stop` resolves, then lets them finish gracefully for
/// at most `grace` (idle HTTP/1.1 connections are closed, HTTP/2 ones get GOAWAY).
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    state: Arc<AppState>,
    tls: Option<TlsAcceptor>,
    stop: impl Future<Output = ()>,
    grace: Duration,
) {
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http2()
        .max_concurrent_streams(state.config.max_streams);
    let http = Arc::new(if state.config.http1_only {
        http.http1_only()
    } else {
        http
    });
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let tcp = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) if is_connection_error(&e) => continue,
                Err(_) => {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let connection = Connection {
            app: app.clone(),
            state: Arc::clone(&state),
            http: Arc::clone(&http),
            watcher: graceful.watcher(),
        };
        tokio::spawn(connection.serve(tcp, tls.clone()));
    }
    drop(listener);
    let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
}

/// Errors of one connection that `accept` reports; the next accept is fine.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// What serving one accepted connection needs.
struct Connection {
    app: Router,
    state: Arc<AppState>,
    http: Arc<auto::Builder<TokioExecutor>>,
    watcher: Watcher,
}

impl Connection {
    async fn serve(self, tcp: TcpStream, tls: Option<TlsAcceptor>) {
        let accepted = Instant::now();
        let counters = &self.state.counters;
        counters.connections.fetch_add(1, Ordering::Relaxed);
        // As nginx: small writes (a response head, a TLS record) go out at once.
        let _ = tcp.set_nodelay(true);
        let network = self.state.config.network;
        if network.is_direct() {
            self.secure(tcp, tls).await;
        } else {
            self.secure(Link::new(tcp, network, accepted), tls).await;
        }
    }

    async fn secure<I>(self, io: I, tls: Option<TlsAcceptor>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Some(acceptor) = tls else {
            return self.http(io).await;
        };
        // A failed handshake (a client that does not trust the certificate) ends the
        // connection; the client reports it.
        let Ok(stream) = acceptor.accept(io).await else {
            return;
        };
        let counters = &self.state.counters;
        let counter = match stream.get_ref().1.handshake_kind() {
            Some(HandshakeKind::Resumed) => &counters.tls_resumed,
            _ => &counters.tls_full,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.http(stream).await;
    }

    async fn http<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let streams = Arc::new(ConnStreams::default());
        let app = self.app;
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(Arc::clone(&streams));
            let mut app = app.clone();
            tower_service::Service::call(&mut app, request.map(Body::new))
        });
        let connection = self.http.serve_connection(TokioIo::new(io), service);
        // A connection's end (the client closing it, a reset) is the client's business.
        let _ = self.watcher.watch(connection).await;
    }
}
