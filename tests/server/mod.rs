//! A real HTTP/1.1 server (plain or TLS) on 127.0.0.1:0, on its own thread and runtime, with
//! routes for every behaviour the tests need and counters of connections and requests.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
use hyper_util::rt::{TokioExecutor, TokioIo};
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
/// Made with the one-liner everyone uses (`openssl req -x509 -newkey rsa:2048 -nodes -subj
/// /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost -days 36500`), which marks
/// the certificate a CA (CA:TRUE); and one like it for another name only.
pub const ONELINER_CERT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/oneliner-cert.pem"
);
pub const ONELINER_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/oneliner-key.pem"
);
pub const OTHER_CERT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/other-cert.pem");
pub const OTHER_KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/other-key.pem");

#[derive(Default)]
struct Counters {
    connections: AtomicUsize,
    requests: AtomicUsize,
    /// Body bytes handed to connections by `/fault`.
    body_bytes: AtomicU64,
    /// `Range` and `If-Range` headers of `/fault` requests, in order ("-" when absent).
    ranges: Mutex<Vec<(String, String)>>,
    /// Requests per path, for "fail F times, then succeed".
    hits: Mutex<HashMap<String, usize>>,
    /// Every request as received: its URI (absolute through a proxy), version, headers, and
    /// when it arrived.
    seen: Mutex<Vec<Seen>>,
    /// Requests being answered now, and the most ever at once.
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    /// Requests `/busy` turned away with 503.
    refused: AtomicUsize,
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub uri: String,
    pub version: axum::http::Version,
    pub headers: header::HeaderMap,
    pub at: std::time::Instant,
}

impl Counters {
    /// Counts a request to `path`; returns how many came before it.
    fn hit(&self, path: &str) -> usize {
        let mut hits = self.hits.lock().unwrap();
        let count = hits.entry(path.to_owned()).or_default();
        *count += 1;
        *count - 1
    }
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
        Self::https_with(CERT, KEY)
    }

    /// HTTPS with the certificate and key in these PEM files.
    pub fn https_with(cert: &str, key: &str) -> Self {
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
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
                // A deep backlog: `threads` mode connects thousands at once.
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
                let listener = socket.listen(4096).unwrap();
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

    /// Requests to `path` (without the query) so far.
    pub fn hits(&self, path: &str) -> usize {
        self.counters
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Body bytes `/fault` has sent.
    pub fn body_bytes(&self) -> u64 {
        self.counters.body_bytes.load(Ordering::SeqCst)
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.counters.seen.lock().unwrap().clone()
    }

    /// The most requests ever answered at once.
    pub fn most_in_flight(&self) -> usize {
        self.counters.most_in_flight.load(Ordering::SeqCst)
    }

    /// The `Range` and `If-Range` headers `/fault` received ("-" when absent).
    /// Requests `/busy` turned away.
    pub fn refused(&self) -> usize {
        self.counters.refused.load(Ordering::SeqCst)
    }

    pub fn ranges(&self) -> Vec<(String, String)> {
        self.counters.ranges.lock().unwrap().clone()
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
            // HTTP/1.1, or HTTP/2 (ALPN over TLS, prior knowledge over TCP).
            let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
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

fn routes(counters: Arc<Counters>) -> Router<()> {
    Router::new()
        .route("/fault/{name}", get(fault))
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
        .route("/encoded/{name}", get(encoded))
        .route("/truncated/{name}", get(truncated))
        .route("/chunked/{name}", get(chunked))
        .route("/slow/{name}", get(slow))
        .route("/to", get(to))
        .route("/bighead", get(big_head))
        .route("/drip/{name}", get(drip))
        .route("/busy/{name}", get(busy))
        .route("/cookie/{name}", get(set_cookie))
        .route("/dated/{name}", get(dated))
        .fallback(|request: Request| async move { body(request.uri().path(), 100) })
        .layer(middleware::from_fn_with_state(Arc::clone(&counters), count))
        .with_state(counters)
}

async fn count(State(counters): State<Arc<Counters>>, request: Request, next: Next) -> Response {
    counters.requests.fetch_add(1, Ordering::SeqCst);
    counters.hit(request.uri().path());
    counters.seen.lock().unwrap().push(Seen {
        uri: request.uri().to_string(),
        version: request.version(),
        headers: request.headers().clone(),
        at: std::time::Instant::now(),
    });
    let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    counters.most_in_flight.fetch_max(now, Ordering::SeqCst);
    let response = next.run(request).await;
    counters.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

fn param<T: std::str::FromStr>(params: &Params, key: &str) -> Option<T> {
    params.get(key).and_then(|v| v.parse().ok())
}

/// A file with injected faults, chosen by query parameters:
/// - `size=N`: the file is `body(name, N)`; single `Range: bytes=a-` requests get 206 unless
///   `no_range=1`; `If-Range` must match the ETag;
/// - `fail=STATUS&fail_times=F&retry_after=S`: the first F requests get STATUS (Retry-After S);
/// - `drop_after=K&drop_times=T`: the first T responses break the connection once byte K of
///   the file has been sent (T defaults to 1; `always` for every response);
/// - `short=K`: the body ends cleanly after K bytes despite its Content-Length;
/// - `stall_after=K`: after K bytes, nothing more, ever;
/// - `etag_change=1`: the ETag changes with every request (the file "changed");
/// - `v=V`: version V of the file: `body("{name}@{V}", N)`, ETag `"{name}-{V}"` (a file
///   changed between two runs);
/// - `rate=B`: at most B body bytes per second (per response), in chunks of `chunk=N` bytes
///   (default 16 KiB);
/// - `range_short=K&range_short_times=T`: the first T answers to a range request send only
///   K bytes, with a Content-Range and Content-Length that say so (a 206 short of the end);
/// - `range_from_zero=1`: a range request gets the whole file as a 206 (`bytes 0-…`);
/// - `lie_total=T`: a range's Content-Range claims a file of T bytes (the body is the real one);
/// - `cd=VALUE`: a Content-Disposition header.
async fn fault(
    State(counters): State<Arc<Counters>>,
    Path(name): Path<String>,
    params: Params,
    headers: header::HeaderMap,
) -> Response {
    let path = format!("/fault/{name}");
    let seen = counters
        .hits
        .lock()
        .unwrap()
        .get(&path)
        .copied()
        .unwrap_or(1)
        - 1;
    let text = |h| {
        headers
            .get(h)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    counters
        .ranges
        .lock()
        .unwrap()
        .push((text(header::RANGE), text(header::IF_RANGE)));

    if let Some(status) = param::<u16>(&params, "fail") {
        if seen < param(&params, "fail_times").unwrap_or(1) {
            let retry_after = param::<u64>(&params, "retry_after")
                .unwrap_or(0)
                .to_string();
            let status = StatusCode::from_u16(status).unwrap();
            return (status, [(header::RETRY_AFTER, retry_after)]).into_response();
        }
    }
    let size = size(&params);
    let version = params.get("v");
    let data = match version {
        Some(v) => body(&format!("{name}@{v}"), size),
        None => body(&name, size),
    };
    let etag = match (param::<u8>(&params, "etag_change"), version) {
        (Some(1), _) => format!("\"{name}-v{seen}\""),
        (_, Some(v)) => format!("\"{name}-{v}\""),
        _ => format!("\"{name}-stable\""),
    };
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .is_none_or(|v| v.as_bytes() == etag.as_bytes());
    // `bytes=a-` or `bytes=a-b`.
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| {
            let last = if b.is_empty() {
                size.saturating_sub(1)
            } else {
                b.parse().ok()?
            };
            Some((a.parse::<usize>().ok()?, last))
        })
        .filter(|_| if_range_ok && params.get("no_range").is_none());
    let range = match range {
        Some(_) if params.get("range_from_zero").is_some() => Some((0, size - 1)),
        range => range,
    };
    let range_start = range.map(|(a, _)| a);
    let mut range_end = range.map_or(size, |(_, last)| (last + 1).min(size));
    if let (Some(start), Some(k)) = (range_start, param::<usize>(&params, "range_short")) {
        if seen < param(&params, "range_short_times").unwrap_or(1) {
            range_end = range_end.min(start + k);
        }
    }
    if range_start.is_some_and(|start| start >= size) {
        let range = format!("bytes */{size}");
        return (
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(header::CONTENT_RANGE, range)],
        )
            .into_response();
    }
    let start = range_start.unwrap_or(0);

    let drops = match params.get("drop_times").map(String::as_str) {
        Some("always") => usize::MAX,
        Some(n) => n.parse().unwrap(),
        None => 1,
    };
    let drop_at = param::<usize>(&params, "drop_after").filter(|_| seen < drops);
    enum End {
        Whole,
        Break,
        Clean,
        Stall,
    }
    let (end_at, end) = if let Some(k) = param::<usize>(&params, "stall_after") {
        (k, End::Stall)
    } else if let Some(k) = param::<usize>(&params, "short") {
        (k, End::Clean)
    } else if let Some(k) = drop_at {
        (k, End::Break)
    } else {
        (range_end, End::Whole)
    };
    let end_at = end_at.clamp(start, range_end);
    let chunk = param::<usize>(&params, "chunk").unwrap_or(16 * 1024);
    let sent: Vec<Result<Bytes, std::io::Error>> = data[start..end_at]
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let counted = Arc::clone(&counters);
    let pause = param::<u64>(&params, "rate")
        .map(|rate| Duration::from_secs_f64(chunk as f64 / rate as f64));
    let sent = stream::iter(sent).then(move |chunk| async move {
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
        chunk
    });
    let sent = sent.inspect(move |chunk| {
        if let Ok(chunk) = chunk {
            counted
                .body_bytes
                .fetch_add(chunk.len() as u64, Ordering::SeqCst);
        }
    });
    let tail: stream::BoxStream<'static, Result<Bytes, std::io::Error>> = match end {
        End::Whole => stream::empty().boxed(),
        // After a pause, so that the head and the bytes reach the client before the end.
        End::Clean => stream::once(tokio::time::sleep(Duration::from_millis(50)))
            .filter_map(|()| async { None })
            .boxed(),
        End::Break => stream::once(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(std::io::Error::other("connection cut by the test server"))
        })
        .boxed(),
        End::Stall => stream::pending().boxed(),
    };
    let mut response = Body::from_stream(sent.chain(tail)).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, (range_end - start).into());
    h.insert(header::ETAG, etag.parse().unwrap());
    h.insert(header::ACCEPT_RANGES, "bytes".parse().unwrap());
    if let Some(cd) = params.get("cd") {
        h.insert(header::CONTENT_DISPOSITION, cd.parse().unwrap());
    }
    if range_start.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let range = match param::<u64>(&params, "lie_total") {
            Some(total) => format!("bytes {start}-{}/{total}", total - 1),
            None => format!("bytes {start}-{}/{size}", range_end - 1),
        };
        response
            .headers_mut()
            .insert(header::CONTENT_RANGE, range.parse().unwrap());
    }
    response
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

/// `/to?url=URL`: a redirect to any URL (another server: another origin).
/// A compressible body (`size` bytes of a 100-byte pattern), encoded with `coding` (`gzip`,
/// `br` or `zstd`; default `gzip`) and the encoded length as Content-Length when the request
/// accepts that coding (or always with `force=1`), as is otherwise.
async fn encoded(Path(name): Path<String>, params: Params, headers: header::HeaderMap) -> Response {
    let data = compressible(&name, size(&params));
    let coding = params
        .get("coding")
        .map_or("gzip", String::as_str)
        .to_owned();
    let accepts = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|c| c.trim() == coding));
    if !accepts && params.get("force").is_none() {
        return data.into_response();
    }
    let encoded = match coding.as_str() {
        "gzip" => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            std::io::Write::write_all(&mut encoder, &data).unwrap();
            encoder.finish().unwrap()
        }
        "br" => {
            let mut out = Vec::new();
            let mut encoder = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            std::io::Write::write_all(&mut encoder, &data).unwrap();
            drop(encoder);
            out
        }
        "zstd" => zstd::bulk::compress(&data, 3).unwrap(),
        other => panic!("unknown coding {other}"),
    };
    (
        [
            (header::CONTENT_ENCODING, coding),
            (header::CONTENT_LENGTH, encoded.len().to_string()),
        ],
        encoded,
    )
        .into_response()
}

/// What `/encoded/{name}` serves decoded.
pub fn compressible(name: &str, size: usize) -> Vec<u8> {
    body(name, 100).into_iter().cycle().take(size).collect()
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

/// A server with room for `max` requests at once (default 8): past that, 503 with
/// `Retry-After: 1`; otherwise the file after `ms` milliseconds (default 50).
async fn busy(
    State(counters): State<Arc<Counters>>,
    Path(name): Path<String>,
    params: Params,
) -> Response {
    let max = param(&params, "max").unwrap_or(8);
    if counters.in_flight.load(Ordering::SeqCst) > max {
        counters.refused.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
        )
            .into_response();
    }
    let ms = param(&params, "ms").unwrap_or(50);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    body(&name, size(&params)).into_response()
}

/// Waits `ms` milliseconds before answering.
async fn slow(Path(name): Path<String>, params: Params) -> Vec<u8> {
    let ms = params.get("ms").and_then(|s| s.parse().ok()).unwrap_or(200);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    body(&name, size(&params))
}

/// Redirects to `url` (any URL, another host's or another scheme's).
async fn to(params: Params) -> Response {
    let url = params.get("url").cloned().unwrap_or_default();
    (StatusCode::FOUND, [(header::LOCATION, url)]).into_response()
}

/// `/cookie/NAME?set=COOKIE&set=...`: `body(NAME, size)` with a Set-Cookie header per `set`
/// (e.g. `set=sid%3Dabc%3B%20Path%3D%2F`).
async fn set_cookie(Path(name): Path<String>, request: Request) -> Response {
    let query = request.uri().query().unwrap_or_default().to_owned();
    let mut size = 1000;
    let mut response = Response::new(Body::empty());
    let url = reqwest::Url::parse(&format!("http://x/?{query}")).unwrap();
    for (key, value) in url.query_pairs() {
        match &*key {
            "set" => {
                response
                    .headers_mut()
                    .append(header::SET_COOKIE, value.parse().unwrap());
            }
            "size" => size = value.parse().unwrap(),
            _ => {}
        }
    }
    *response.body_mut() = Body::from(body(&name, size));
    response
}

/// `/dated/NAME?lm=SECS&size=N`: `body(NAME, N)` with `Last-Modified` at SECS after the
/// epoch; 304 Not Modified to an `If-Modified-Since` at or after it.
async fn dated(Path(name): Path<String>, params: Params, headers: header::HeaderMap) -> Response {
    let secs: u64 = param(&params, "lm").unwrap();
    let modified = std::time::UNIX_EPOCH + Duration::from_secs(secs);
    let since = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| httpdate::parse_http_date(v.to_str().ok()?).ok());
    if since.is_some_and(|since| since >= modified) {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let date = httpdate::fmt_http_date(modified);
    ([(header::LAST_MODIFIED, date)], body(&name, size(&params))).into_response()
}

/// A response whose head (a 1 MiB header) is larger than any client accepts.
async fn big_head() -> Response {
    let mut response = body("bighead", 10).into_response();
    response
        .headers_mut()
        .insert("x-big", "a".repeat(1 << 20).parse().unwrap());
    response
}

/// `size` bytes (announced), one every `ms` milliseconds (default 100).
async fn drip(Path(name): Path<String>, params: Params) -> Response {
    let data = body(&name, size(&params));
    let ms = params.get("ms").and_then(|s| s.parse().ok()).unwrap_or(100);
    let len = data.len();
    let bytes = stream::iter(data).then(move |b| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok::<_, Infallible>(Bytes::from(vec![b]))
    });
    (
        [(header::CONTENT_LENGTH, len.to_string())],
        Body::from_stream(bytes),
    )
        .into_response()
}
