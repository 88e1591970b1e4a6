//! A real HTTP/1.1 server (plain or TLS) on 127.0.0.1:0, on its own thread and runtime, with
//! routes for every behaviour the tests need and counters of connections and requests.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use futures_util::{StreamExt, stream};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::pem::PemObject};

/// The bytes served for `name`: deterministic, different for every name and offset.
pub fn body(name: &str, size: usize) -> Vec<u8> {
    let mut state = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    (0..size)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

pub const CERT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cert.pem");
const KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/key.pem");

#[derive(Default)]
struct Counters {
    connections: AtomicUsize,
    requests: AtomicUsize,
}

pub struct TestServer {
    addr: SocketAddr,
    scheme: &'static str,
    counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn http() -> Self {
        Self::start(None)
    }

    pub fn https() -> Self {
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(CERT)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(KEY).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        Self::start(Some(TlsAcceptor::from(Arc::new(config))))
    }

    fn start(tls: Option<TlsAcceptor>) -> Self {
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = oneshot::channel();
        let (bound, addr) = std::sync::mpsc::channel();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let app = routes(Arc::clone(&counters));
        let conns = Arc::clone(&counters);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                bound.send(listener.local_addr().unwrap()).unwrap();
                accept_loop(listener, app, tls, conns, stopped).await;
            });
        });
        TestServer {
            addr: addr.recv().unwrap(),
            scheme,
            counters,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.counters.connections.load(Ordering::SeqCst)
    }

    /// HTTP requests answered so far.
    pub fn requests(&self) -> usize {
        self.counters.requests.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    counters: Arc<Counters>,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        let (tcp, _) = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
        };
        counters.connections.fetch_add(1, Ordering::SeqCst);
        let service = TowerToHyperService::new(app.clone());
        let tls = tls.clone();
        tokio::spawn(async move {
            let http = hyper::server::conn::http1::Builder::new();
            match tls {
                Some(tls) => {
                    if let Ok(stream) = tls.accept(tcp).await {
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
                None => {
                    let _ = http.serve_connection(TokioIo::new(tcp), service).await;
                }
            }
        });
    }
}

type Params = Query<HashMap<String, String>>;

fn size(params: &Params) -> usize {
    params
        .get("size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000)
}

fn routes(counters: Arc<Counters>) -> Router {
    Router::new()
        .route("/files/{name}", get(file))
        .route(
            "/dir/{dir}/{name}",
            get(
                |Path((_, name)): Path<(String, String)>, q: Params| async move {
                    file(Path(name), q).await
                },
            ),
        )
        .route("/status/{code}", get(status))
        .route("/redirect/{n}", get(redirect))
        .route("/loop", get(|| async { Redirect::temporary("/loop") }))
        .route("/truncated/{name}", get(truncated))
        .route("/chunked/{name}", get(chunked))
        .route("/slow/{name}", get(slow))
        .fallback(|request: Request| async move { body(request.uri().path(), 100) })
        .layer(middleware::from_fn_with_state(counters, count))
}

async fn count(State(counters): State<Arc<Counters>>, request: Request, next: Next) -> Response {
    counters.requests.fetch_add(1, Ordering::SeqCst);
    next.run(request).await
}

async fn file(Path(name): Path<String>, params: Params) -> Vec<u8> {
    body(&name, size(&params))
}

async fn status(Path(code): Path<u16>) -> StatusCode {
    StatusCode::from_u16(code).unwrap()
}

async fn redirect(Path(n): Path<u32>) -> Redirect {
    match n {
        0 => Redirect::temporary("/files/landed.bin?size=1234"),
        n => Redirect::temporary(&format!("/redirect/{}", n - 1)),
    }
}

/// Announces `size` bytes, sends half, then breaks the connection.
async fn truncated(Path(name): Path<String>, params: Params) -> Response {
    let size = size(&params);
    let mut half = body(&name, size);
    half.truncate(size / 2);
    let half = stream::iter([Ok(Bytes::from(half))]);
    // A pause, so that the head and the first half reach the client before the cut.
    let cut = stream::once(async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Err(std::io::Error::other("connection cut by the test server"))
    });
    (
        [(header::CONTENT_LENGTH, size.to_string())],
        Body::from_stream(half.chain(cut)),
    )
        .into_response()
}

/// The body without a Content-Length (chunked encoding).
async fn chunked(Path(name): Path<String>, params: Params) -> Response {
    let data = body(&name, size(&params));
    let chunks: Vec<Result<Bytes, Infallible>> = data
        .chunks(4096)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Body::from_stream(stream::iter(chunks)).into_response()
}

/// Waits `ms` milliseconds before answering.
async fn slow(Path(name): Path<String>, params: Params) -> Vec<u8> {
    let ms = params.get("ms").and_then(|s| s.parse().ok()).unwrap_or(200);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    body(&name, size(&params))
}
