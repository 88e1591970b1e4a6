//! The embedded deterministic test and benchmark server (`fetchbench serve`).
//!
//! An HTTP/1.1 server (axum on tokio) that serves synthetic files of any size.
//! A file's bytes are a pure function of its name and the byte offset (see
//! [`fill`]), so any client can check a download without a reference copy
//! ([`verify_file`]), and the server never holds a whole file in memory.
//!
//! # Routes
//!
//! - `GET|HEAD /files/{name}?size=N` — file `name` of `N` bytes (units allowed,
//!   e.g. `size=1.5MiB`; default: the server's `size`). Supports single
//!   `Range` requests (206 / 416), `If-Range`, `ETag` and `Last-Modified`.
//! - `GET /list?files=N&size=S` — `N` file URLs (`file-0001.bin`, …), one per
//!   line. `latency` and `rate` given here are copied into every URL.
//! - anything else — 404.
//!
//! # Simulated network conditions
//!
//! `latency` (a delay before a file response's head is sent) and `rate` (a
//! per-response bandwidth cap in bytes/s; 0 means unlimited) are set
//! server-wide by [`ServerConfig`] and can be overridden per request with the
//! query parameters `latency=250ms` and `rate=1MiB/s` on `/files/…`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{AppendHeaders, IntoResponse, Response};
use axum::routing::get;
use futures_util::Stream;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::units;

/// Largest body chunk handed to the connection (and allocated) at a time.
const CHUNK_SIZE: u64 = 64 * 1024;
/// Buffer size used by [`verify_file`].
const VERIFY_BUFFER: usize = 256 * 1024;
/// `Last-Modified` of every synthetic file: the content never changes.
const LAST_MODIFIED: &str = "Thu, 01 Jan 2026 00:00:00 GMT";
/// Upper bound for `/list?files=`, so a typo cannot make a gigabyte listing.
const MAX_LIST_FILES: usize = 100_000;
/// How long shutdown waits for in-flight responses before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Pending-connection queue length of the listening socket.
const LISTEN_BACKLOG: u32 = 1024;
/// Characters escaped in a file name placed in a URL path segment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

// ---------------------------------------------------------------------------
// Synthetic content
// ---------------------------------------------------------------------------

/// Writes the bytes of synthetic file `name` starting at byte `offset` into
/// `buf` (`buf.len()` bytes; files are conceptually infinite, the `size` only
/// truncates them).
///
/// The content is defined as follows, so other clients can reimplement it:
///
/// 1. `seed` = 64-bit FNV-1a of the UTF-8 bytes of `name`: start with
///    `h = 0xcbf29ce484222325`; for each byte `b`: `h = (h ^ b) * 0x100000001b3`
///    (wrapping).
/// 2. The file is a sequence of 8-byte blocks; block `k` (bytes `8k..8k+8`) is
///    `splitmix64(seed ^ k)` in little-endian byte order, where (all
///    arithmetic wrapping on `u64`):
///    ```text
///    z = x + 0x9e3779b97f4a7c15
///    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
///    z = (z ^ (z >> 27)) * 0x94d049bb133111eb
///    splitmix64(x) = z ^ (z >> 31)
///    ```
/// 3. Byte `i` of the file is byte `i % 8` of block `i / 8`.
///
/// Different names give unrelated content and every offset has its own
/// block, so swapped files and shifted ranges are detected.
pub fn fill(name: &str, offset: u64, buf: &mut [u8]) {
    fill_seeded(name_seed(name), offset, buf);
}

/// Checks that the file at `path` holds exactly the `size` bytes of synthetic
/// file `name`, reading it in bounded memory.
///
/// Errors name the path and, for content errors, the first differing offset.
pub fn verify_file(path: &Path, name: &str, size: u64) -> anyhow::Result<()> {
    let shown = path.display();
    let mut file = File::open(path).with_context(|| format!("failed to open {shown}"))?;
    let seed = name_seed(name);
    let mut actual = vec![0u8; VERIFY_BUFFER];
    let mut expected = vec![0u8; VERIFY_BUFFER];
    let mut offset = 0u64;
    loop {
        let n =
            read_some(&mut file, &mut actual).with_context(|| format!("failed to read {shown}"))?;
        if n == 0 {
            break;
        }
        let wanted = usize::try_from(size - offset).map_or(n, |left| left.min(n));
        fill_seeded(seed, offset, &mut expected[..wanted]);
        if let Some(i) = first_difference(&actual[..wanted], &expected[..wanted]) {
            bail!(
                "{shown}: byte at offset {} is 0x{:02x}, expected 0x{:02x} (content of {name:?})",
                offset + i as u64,
                actual[i],
                expected[i]
            );
        }
        if wanted < n {
            bail!("{shown}: longer than the expected {size} bytes");
        }
        offset += n as u64;
    }
    if offset < size {
        bail!("{shown}: only {offset} bytes, expected {size}");
    }
    Ok(())
}

/// 64-bit FNV-1a hash of the name: the seed of its content.
fn name_seed(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn block_bytes(seed: u64, block: u64) -> [u8; 8] {
    splitmix64(seed ^ block).to_le_bytes()
}

/// [`fill`] for an already hashed name: a partial leading block, whole
/// blocks, then a partial trailing block.
fn fill_seeded(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut block = offset / 8;
    let skip = (offset % 8) as usize;
    let head_len = if skip == 0 {
        0
    } else {
        (8 - skip).min(buf.len())
    };
    let (head, rest) = buf.split_at_mut(head_len);
    if !head.is_empty() {
        head.copy_from_slice(&block_bytes(seed, block)[skip..skip + head_len]);
        block += 1;
    }
    let mut whole = rest.chunks_exact_mut(8);
    for chunk in &mut whole {
        chunk.copy_from_slice(&block_bytes(seed, block));
        block += 1;
    }
    let tail = whole.into_remainder();
    let tail_len = tail.len();
    tail.copy_from_slice(&block_bytes(seed, block)[..tail_len]);
}

/// One `read`, retried on `Interrupted`.
fn read_some(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

// ---------------------------------------------------------------------------
// Configuration, handle and statistics
// ---------------------------------------------------------------------------

/// Server-wide settings; per-request query parameters override `latency`,
/// `rate` and `size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Delay before each file response's head is sent.
    pub latency: Duration,
    /// Per-response bandwidth cap in bytes/s; `None` or `Some(0)` = unlimited.
    pub rate: Option<u64>,
    /// Number of files in the workload (`/list`, [`ServerHandle::workload_urls`]).
    pub files: usize,
    /// Default file size in bytes.
    pub size: u64,
}

impl Default for ServerConfig {
    /// `127.0.0.1:0`, no latency, no rate limit, 32 files of 256 KiB.
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            latency: Duration::ZERO,
            rate: None,
            files: 32,
            size: 256 * 1024,
        }
    }
}

/// Traffic counters of a running server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// HTTP requests received on any route (including `/list`, HEAD and 404s).
    pub requests: u64,
    /// File body bytes handed to connections (file data only: `/list`
    /// listings and error messages are not counted).
    pub body_bytes: u64,
}

/// A running server. Dropping it shuts the server down like [`shutdown`](Self::shutdown).
pub struct ServerHandle {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl ServerHandle {
    /// Binds and starts serving on a dedicated background thread running its
    /// own tokio runtime (multi-thread, 2 workers). Returns once the socket
    /// is bound (so the port is known).
    pub fn start(cfg: ServerConfig) -> anyhow::Result<ServerHandle> {
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
        let thread = std::thread::Builder::new()
            .name(format!("fetchbench-server-{addr}"))
            .spawn(move || run_server(runtime, listener, app, stopped))
            .context("failed to spawn the server thread")?;
        Ok(ServerHandle {
            addr,
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address (with the actual port if port 0 was requested).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`, using a loopback address if bound to an
    /// unspecified one (`0.0.0.0`, `::`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.state.authority)
    }

    /// URL of synthetic file `name` of `size` bytes.
    pub fn file_url(&self, name: &str, size: u64) -> String {
        file_url(&self.base_url(), name, size, "")
    }

    /// The configured workload: `files` URLs of `size` bytes, the same as `GET /list`.
    pub fn workload_urls(&self) -> Vec<String> {
        let cfg = &self.state.config;
        workload_urls(&self.base_url(), cfg.files, cfg.size, "")
    }

    /// Requests and file body bytes served so far.
    pub fn stats(&self) -> ServerStats {
        self.state.counters.snapshot()
    }

    /// Stops accepting connections, lets in-flight responses finish for up
    /// to one second, then stops the runtime and joins its thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        // The receiver lives as long as the server thread; a send error only
        // means the thread has already exited.
        let _ = self.stop.send(true);
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("fetchbench server on {}: {e}", self.addr),
            Err(_) => eprintln!("fetchbench server on {}: server thread panicked", self.addr),
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
    stopped: watch::Receiver<bool>,
) -> io::Result<()> {
    let result = runtime.block_on(async move {
        let graceful =
            axum::serve(listener, app).with_graceful_shutdown(wait_for_stop(stopped.clone()));
        let deadline = async {
            wait_for_stop(stopped).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            result = graceful => result,
            () = deadline => Ok(()),
        }
    });
    // Connections still open after the grace period are dropped here.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

/// Resolves once the stop flag is set or its sender is gone.
async fn wait_for_stop(mut stopped: watch::Receiver<bool>) {
    // An error means the handle was dropped, which also means stop.
    let _ = stopped.wait_for(|&stop| stop).await;
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    body_bytes: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ServerStats {
        ServerStats {
            requests: self.requests.load(Ordering::Relaxed),
            body_bytes: self.body_bytes.load(Ordering::Relaxed),
        }
    }
}

/// State shared by all request handlers and the handle.
struct AppState {
    config: ServerConfig,
    /// `host:port` clients can connect to (loopback for wildcard binds).
    authority: String,
    counters: Counters,
}

impl AppState {
    fn new(config: ServerConfig, bound: SocketAddr) -> Self {
        let connectable = match bound.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::from((Ipv4Addr::LOCALHOST, bound.port()))
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::from((Ipv6Addr::LOCALHOST, bound.port()))
            }
            _ => bound,
        };
        Self {
            config,
            authority: connectable.to_string(),
            counters: Counters::default(),
        }
    }
}

// ---------------------------------------------------------------------------
// Routing and handlers
// ---------------------------------------------------------------------------

type Shared = State<Arc<AppState>>;
type HandlerResult = Result<Response, (StatusCode, String)>;

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/files/{name}", get(file_handler))
        .route("/list", get(list_handler))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            count_request,
        ))
        .with_state(state)
}

async fn count_request(State(state): Shared, request: Request, next: Next) -> Response {
    state.counters.requests.fetch_add(1, Ordering::Relaxed);
    next.run(request).await
}

async fn not_found(request: Request) -> (StatusCode, String) {
    (
        StatusCode::NOT_FOUND,
        format!("not found: {}\n", request.uri().path()),
    )
}

/// Query parameters of `/files/{name}`.
#[derive(Debug, Default, Deserialize)]
struct FileQuery {
    size: Option<String>,
    latency: Option<String>,
    rate: Option<String>,
}

/// Query parameters of `/list`.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    files: Option<String>,
    #[serde(flatten)]
    file: FileQuery,
}

/// Per-request overrides of the server-wide conditions.
#[derive(Debug, Default, Clone, Copy)]
struct Overrides {
    latency: Option<Duration>,
    /// `Some(0)` explicitly lifts a server-wide rate limit.
    rate: Option<u64>,
}

impl FileQuery {
    fn size(&self, default: u64) -> Result<u64, String> {
        self.size.as_deref().map_or(Ok(default), units::parse_size)
    }

    fn overrides(&self) -> Result<Overrides, String> {
        Ok(Overrides {
            latency: self
                .latency
                .as_deref()
                .map(units::parse_duration)
                .transpose()?,
            rate: self.rate.as_deref().map(units::parse_rate).transpose()?,
        })
    }
}

impl Overrides {
    /// Latency and rate (0 = unlimited, normalised to `None`) for a response.
    fn resolve(self, cfg: &ServerConfig) -> (Duration, Option<u64>) {
        let latency = self.latency.unwrap_or(cfg.latency);
        let rate = self.rate.or(cfg.rate).filter(|&rate| rate > 0);
        (latency, rate)
    }

    /// `&latency=…&rate=…` for the overrides that are set, in exact units.
    fn query_suffix(self) -> String {
        let latency = self
            .latency
            .map(|d| format!("&latency={}", duration_param(d)));
        let rate = self.rate.map(|r| format!("&rate={r}"));
        latency.into_iter().chain(rate).collect()
    }
}

/// A duration in the coarsest unit that represents it exactly.
fn duration_param(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos % 1_000_000 == 0 {
        format!("{}ms", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!("{}us", nanos / 1_000)
    } else {
        format!("{nanos}ns")
    }
}

fn bad_request(message: String) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, format!("{message}\n"))
}

async fn file_handler(
    State(state): Shared,
    UrlPath(name): UrlPath<String>,
    Query(query): Query<FileQuery>,
    headers: HeaderMap,
) -> HandlerResult {
    let size = query.size(state.config.size).map_err(bad_request)?;
    let (latency, rate) = query
        .overrides()
        .map_err(bad_request)?
        .resolve(&state.config);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let file = FileMeta::new(&name, size);
    let range = match header_str(&headers, header::RANGE) {
        Some(spec) if file.if_range_matches(header_str(&headers, header::IF_RANGE)) => {
            parse_range(spec, size)
        }
        _ => RangeRequest::Full,
    };
    Ok(match range {
        RangeRequest::Full => file.response(StatusCode::OK, 0..size, rate, state),
        RangeRequest::Partial(range) => {
            file.response(StatusCode::PARTIAL_CONTENT, range, rate, state)
        }
        RangeRequest::Unsatisfiable => file.unsatisfiable(),
    })
}

async fn list_handler(
    State(state): Shared,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> HandlerResult {
    let files =
        parse_file_count(query.files.as_deref(), state.config.files).map_err(bad_request)?;
    let size = query.file.size(state.config.size).map_err(bad_request)?;
    let suffix = query.file.overrides().map_err(bad_request)?.query_suffix();
    let authority = header_str(&headers, header::HOST)
        .filter(|host| is_plausible_authority(host))
        .unwrap_or(&state.authority);
    let mut body = workload_urls(&format!("http://{authority}"), files, size, &suffix).join("\n");
    body.push('\n');
    Ok(body.into_response())
}

fn parse_file_count(value: Option<&str>, default: usize) -> Result<usize, String> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.parse::<usize>() {
        Ok(n) if n <= MAX_LIST_FILES => Ok(n),
        Ok(_) => Err(format!("invalid files {value:?}: at most {MAX_LIST_FILES}")),
        Err(_) => Err(format!("invalid files {value:?}: expected a whole number")),
    }
}

fn header_str(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Whether a `Host` header looks like `host[:port]` and is safe to echo into URLs.
fn is_plausible_authority(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
}

/// `file-0001.bin`, … : names of the workload files, numbered from 1.
fn workload_file_name(index: usize) -> String {
    format!("file-{index:04}.bin")
}

fn workload_urls(base: &str, files: usize, size: u64, suffix: &str) -> Vec<String> {
    (1..=files)
        .map(|i| file_url(base, &workload_file_name(i), size, suffix))
        .collect()
}

fn file_url(base: &str, name: &str, size: u64, suffix: &str) -> String {
    let name = utf8_percent_encode(name, PATH_SEGMENT);
    format!("{base}/files/{name}?size={size}{suffix}")
}

// ---------------------------------------------------------------------------
// File responses
// ---------------------------------------------------------------------------

/// Identity and validators of one synthetic file.
struct FileMeta {
    seed: u64,
    size: u64,
    etag: String,
}

impl FileMeta {
    fn new(name: &str, size: u64) -> Self {
        let seed = name_seed(name);
        Self {
            seed,
            size,
            etag: format!("\"{seed:016x}-{size}\""),
        }
    }

    /// `If-Range` holds when absent or equal to our ETag or `Last-Modified`.
    fn if_range_matches(&self, if_range: Option<&str>) -> bool {
        if_range.is_none_or(|v| v.trim() == self.etag || v.trim() == LAST_MODIFIED)
    }

    fn validators(&self) -> Vec<(HeaderName, String)> {
        vec![
            (header::ACCEPT_RANGES, "bytes".to_string()),
            (header::ETAG, self.etag.clone()),
            (header::LAST_MODIFIED, LAST_MODIFIED.to_string()),
        ]
    }

    /// A 200 or 206 response streaming `range` of the file.
    fn response(
        &self,
        status: StatusCode,
        range: Range<u64>,
        rate: Option<u64>,
        state: Arc<AppState>,
    ) -> Response {
        let mut headers = self.validators();
        headers.push((header::CONTENT_TYPE, "application/octet-stream".to_string()));
        headers.push((
            header::CONTENT_LENGTH,
            (range.end - range.start).to_string(),
        ));
        if status == StatusCode::PARTIAL_CONTENT {
            let content_range = format!("bytes {}-{}/{}", range.start, range.end - 1, self.size);
            headers.push((header::CONTENT_RANGE, content_range));
        }
        let body = Body::from_stream(body_stream(self.seed, range, rate, state));
        (status, AppendHeaders(headers), body).into_response()
    }

    fn unsatisfiable(&self) -> Response {
        let mut headers = self.validators();
        headers.push((header::CONTENT_RANGE, format!("bytes */{}", self.size)));
        let message = format!("range not satisfiable: the file has {} bytes\n", self.size);
        (
            StatusCode::RANGE_NOT_SATISFIABLE,
            AppendHeaders(headers),
            message,
        )
            .into_response()
    }
}

/// The bytes of `range` in chunks of at most [`CHUNK_SIZE`], generated on
/// demand. With a `rate`, chunks are at most `rate / 20` bytes and each is
/// held back until the bytes sent so far fit in `rate × elapsed`.
fn body_stream(
    seed: u64,
    range: Range<u64>,
    rate: Option<u64>,
    state: Arc<AppState>,
) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    let chunk_size = rate.map_or(CHUNK_SIZE, |rate| (rate / 20).clamp(1, CHUNK_SIZE));
    let started = Instant::now();
    let Range { start, end } = range;
    futures_util::stream::unfold(start, move |pos| {
        let state = Arc::clone(&state);
        async move {
            if pos >= end {
                return None;
            }
            let len = chunk_size.min(end - pos);
            if let Some(rate) = rate {
                tokio::time::sleep_until(started + transfer_time(pos + len - start, rate)).await;
            }
            let mut chunk = vec![0u8; len as usize];
            fill_seeded(seed, pos, &mut chunk);
            state.counters.body_bytes.fetch_add(len, Ordering::Relaxed);
            Some((Ok(Bytes::from(chunk)), pos + len))
        }
    })
}

/// Time needed to send `bytes` at `rate` bytes/s (`rate > 0`).
fn transfer_time(bytes: u64, rate: u64) -> Duration {
    let nanos = u128::from(bytes % rate) * 1_000_000_000 / u128::from(rate);
    Duration::new(bytes / rate, nanos as u32)
}

/// Outcome of a `Range` header against a file of known size.
#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// No usable range (malformed, multi-range, other unit): send everything.
    Full,
    /// A satisfiable single range, as a half-open byte range.
    Partial(Range<u64>),
    /// A well-formed range that selects no byte of the file.
    Unsatisfiable,
}

/// Interprets a `Range` header value (`bytes=a-b`, `bytes=a-`, `bytes=-n`)
/// per RFC 9110 §14; only single ranges are honoured.
fn parse_range(spec: &str, size: u64) -> RangeRequest {
    let spec = spec.trim();
    let Some(ranges) = spec
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
        .map(|_| &spec[6..])
    else {
        return RangeRequest::Full;
    };
    let Some((first, last)) = ranges.split_once('-') else {
        return RangeRequest::Full;
    };
    if ranges.contains(',') {
        return RangeRequest::Full;
    }
    match (parse_position(first.trim()), parse_position(last.trim())) {
        (None, Some(suffix)) if first.trim().is_empty() => suffix_range(suffix, size),
        (Some(first), None) if last.trim().is_empty() => bounded_range(first, u64::MAX, size),
        (Some(first), Some(last)) if first <= last => bounded_range(first, last, size),
        _ => RangeRequest::Full,
    }
}

/// A byte position: ASCII digits only; values beyond `u64` saturate.
fn parse_position(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().unwrap_or(u64::MAX))
}

fn suffix_range(suffix: u64, size: u64) -> RangeRequest {
    if suffix == 0 || size == 0 {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial(size - suffix.min(size)..size)
}

fn bounded_range(first: u64, last: u64, size: u64) -> RangeRequest {
    if first >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial(first..last.saturating_add(1).min(size))
}

// ---------------------------------------------------------------------------
// `fetchbench serve`
// ---------------------------------------------------------------------------

/// Serve deterministic synthetic files over HTTP for testing and benchmarking.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,

    /// Delay before each file response is sent, e.g. 50ms (per request: ?latency=)
    #[arg(long, value_name = "DUR", default_value = "0", value_parser = units::parse_duration)]
    pub latency: Duration,

    /// Bandwidth cap per response, e.g. 10MiB/s; unlimited if absent or 0 (per request: ?rate=)
    #[arg(long, value_name = "RATE", value_parser = units::parse_rate)]
    pub rate: Option<u64>,

    /// Number of files listed at /list
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub files: usize,

    /// Default file size, e.g. 256KiB, 1.5MB (per request: ?size=)
    #[arg(long, value_name = "SIZE", default_value = "256KiB", value_parser = units::parse_size)]
    pub size: u64,
}

impl ServeArgs {
    /// The server configuration these flags describe.
    pub fn config(&self) -> ServerConfig {
        ServerConfig {
            bind: self.bind,
            latency: self.latency,
            rate: self.rate,
            files: self.files,
            size: self.size,
        }
    }
}

/// Runs `fetchbench serve`: starts the server, prints its base URL as the
/// first line on stdout, a hint on stderr, and serves until SIGINT (Ctrl-C)
/// or SIGTERM, then shuts down cleanly.
pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let signal_runtime = crate::platform::current_thread_runtime()?;
    // Installed before the URL is announced, so whoever reads it may stop us at once.
    let mut signals = {
        let _context = signal_runtime.enter();
        crate::platform::StopSignals::install()?
    };
    let server = ServerHandle::start(args.config())?;
    let base = server.base_url();
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{base}")
        .and_then(|()| stdout.flush())
        .context("failed to write the server URL to stdout")?;
    drop(stdout);
    eprintln!("{}", startup_hint(&base, args));
    signal_runtime.block_on(signals.recv());
    let stats = server.stats();
    server.shutdown();
    eprintln!(
        "fetchbench serve: stopped after {} requests and {} of file data",
        stats.requests,
        units::human_bytes(stats.body_bytes)
    );
    Ok(())
}

fn startup_hint(base: &str, args: &ServeArgs) -> String {
    let rate = match args.rate {
        Some(rate) if rate > 0 => format!("{}/s", units::human_bytes(rate)),
        _ => "unlimited".to_string(),
    };
    format!(
        "fetchbench serve: {files} files of {size} (latency {latency}, rate {rate}); Ctrl-C to stop\n  \
         workload: {base}/list\n  \
         example:  curl -s {base}/list | fetchbench -i - -o downloads",
        files = args.files,
        size = units::human_bytes(args.size),
        latency = units::human_duration(args.latency),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::net::TcpStream;
    use std::time::Instant as StdInstant;

    /// A parsed HTTP/1.1 response read until the server closed the connection.
    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        fn content_length(&self) -> u64 {
            self.header("content-length")
                .expect("Content-Length header")
                .parse()
                .expect("numeric Content-Length")
        }
    }

    fn request(addr: SocketAddr, method: &str, target: &str, extra: &[(&str, &str)]) -> Reply {
        let mut stream = TcpStream::connect(addr).expect("connect to test server");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("set timeout");
        let mut head =
            format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).expect("send request");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read response");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of response head");
        let head = std::str::from_utf8(&raw[..split]).expect("UTF-8 response head");
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .expect("status line");
        let headers = lines
            .map(|l| l.split_once(':').expect("header line"))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Reply {
            status: status.parse().expect("status code"),
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }

    fn get(addr: SocketAddr, target: &str) -> Reply {
        request(addr, "GET", target, &[])
    }

    fn expected(name: &str, range: Range<u64>) -> Vec<u8> {
        let mut buf = vec![0u8; (range.end - range.start) as usize];
        fill(name, range.start, &mut buf);
        buf
    }

    fn start(cfg: ServerConfig) -> ServerHandle {
        ServerHandle::start(cfg).expect("start test server")
    }

    #[test]
    fn fill_matches_independent_reference_values() {
        // Computed with a separate Python implementation of the documented formula.
        assert_eq!(name_seed("file-0001.bin"), 0xa89e_0a07_1de0_0a92);
        assert_eq!(name_seed(""), 0xcbf2_9ce4_8422_2325);
        let mut buf = [0u8; 16];
        fill("file-0001.bin", 0, &mut buf);
        assert_eq!(
            buf,
            *b"\x8f\x31\x64\x3a\xa8\x20\xb2\x50\xcb\xc4\xc5\xf2\x44\xf7\x13\xee"
        );
        let mut buf = [0u8; 11];
        fill("file-0001.bin", 5, &mut buf);
        assert_eq!(buf, *b"\x20\xb2\x50\xcb\xc4\xc5\xf2\x44\xf7\x13\xee");
        let mut buf = [0u8; 10];
        fill("a", 1_000_003, &mut buf);
        assert_eq!(buf, *b"\x3b\xf9\x82\xc1\xb0\x33\x6e\x24\xce\x65");
    }

    #[test]
    fn fill_at_unaligned_offsets_equals_slice_of_larger_fill() {
        let whole = expected("x.bin", 0..200);
        for offset in 0..20u64 {
            for len in 0..40usize {
                let mut part = vec![0u8; len];
                fill("x.bin", offset, &mut part);
                let at = offset as usize;
                assert_eq!(part, whole[at..at + len], "offset {offset}, len {len}");
            }
        }
    }

    #[test]
    fn fill_depends_on_name_and_offset() {
        let a = expected("a.bin", 0..64);
        assert_ne!(a, expected("b.bin", 0..64));
        assert_ne!(a, expected("a.bin", 1..65));
        assert_ne!(a, expected("a.bin", 8..72));
        // Not trivially periodic over a few blocks.
        assert_ne!(a[..8], a[8..16]);
    }

    #[test]
    fn fill_handles_offsets_near_u64_max() {
        let offset = u64::MAX - 20;
        let whole = expected("big", offset..u64::MAX);
        let mut part = [0u8; 7];
        fill("big", offset + 3, &mut part);
        assert_eq!(part, whole[3..10]);
    }

    #[test]
    fn verify_file_accepts_exact_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        for size in [0u64, 1, 7, 300_000] {
            let path = dir.path().join(format!("ok-{size}"));
            std::fs::write(&path, expected("f.bin", 0..size)).expect("write");
            verify_file(&path, "f.bin", size).expect("valid file");
        }
    }

    #[test]
    fn verify_file_reports_first_bad_offset_and_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("corrupt.bin");
        let mut data = expected("f.bin", 0..300_000);
        data[270_001] ^= 0x40;
        data[290_000] ^= 0x01;
        std::fs::write(&path, &data).expect("write");
        let err = format!("{:#}", verify_file(&path, "f.bin", 300_000).unwrap_err());
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("offset 270001"), "{err}");
    }

    #[test]
    fn verify_file_rejects_wrong_name_and_wrong_length() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.bin");
        std::fs::write(&path, expected("f.bin", 0..1000)).expect("write");
        let err = format!("{:#}", verify_file(&path, "g.bin", 1000).unwrap_err());
        assert!(err.contains("offset 0"), "{err}");
        let err = format!("{:#}", verify_file(&path, "f.bin", 1001).unwrap_err());
        assert!(err.contains("only 1000 bytes, expected 1001"), "{err}");
        let err = format!("{:#}", verify_file(&path, "f.bin", 999).unwrap_err());
        assert!(err.contains("longer than the expected 999 bytes"), "{err}");
        let missing = dir.path().join("missing");
        let err = format!("{:#}", verify_file(&missing, "f.bin", 1).unwrap_err());
        assert!(
            err.contains("failed to open") && err.contains("missing"),
            "{err}"
        );
    }

    #[test]
    fn parse_range_forms() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=0-9", 100), Partial(0..10));
        assert_eq!(parse_range("bytes=90-200", 100), Partial(90..100));
        assert_eq!(parse_range("bytes=99-99", 100), Partial(99..100));
        assert_eq!(parse_range("bytes=10-", 100), Partial(10..100));
        assert_eq!(parse_range("bytes=-30", 100), Partial(70..100));
        assert_eq!(parse_range("bytes=-300", 100), Partial(0..100));
        assert_eq!(parse_range("BYTES= 5 - 6 ", 100), Partial(5..7));
        assert_eq!(
            parse_range("bytes=0-99999999999999999999999", 100),
            Partial(0..100)
        );
    }

    #[test]
    fn parse_range_unsatisfiable() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=100-200", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=-5", 0), Unsatisfiable);
        assert_eq!(
            parse_range("bytes=99999999999999999999999-", 100),
            Unsatisfiable
        );
    }

    #[test]
    fn parse_range_ignores_malformed_and_multi_ranges() {
        for spec in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=5",
            "bytes=5-3",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=-5-",
            "bytes=1-2-3",
        ] {
            assert_eq!(parse_range(spec, 100), RangeRequest::Full, "{spec:?}");
        }
    }

    #[test]
    fn serves_exact_bytes_and_headers() {
        let server = start(ServerConfig::default());
        for size in [0u64, 1, 7, 65_537] {
            let reply = get(server.addr(), &format!("/files/data.bin?size={size}"));
            assert_eq!(reply.status, 200);
            assert_eq!(reply.content_length(), size);
            assert_eq!(reply.body, expected("data.bin", 0..size), "size {size}");
            assert_eq!(
                reply.header("content-type"),
                Some("application/octet-stream")
            );
            assert_eq!(reply.header("accept-ranges"), Some("bytes"));
            assert_eq!(reply.header("last-modified"), Some(LAST_MODIFIED));
            let etag = format!("\"{:016x}-{size}\"", name_seed("data.bin"));
            assert_eq!(reply.header("etag"), Some(etag.as_str()));
        }
    }

    #[test]
    fn size_defaults_to_config_and_accepts_units() {
        let server = start(ServerConfig {
            size: 1000,
            ..ServerConfig::default()
        });
        let reply = get(server.addr(), "/files/d.bin");
        assert_eq!(reply.body, expected("d.bin", 0..1000));
        let reply = get(server.addr(), "/files/d.bin?size=1.5KiB");
        assert_eq!(reply.body, expected("d.bin", 0..1536));
        let reply = get(server.addr(), "/files/d.bin?size=lots");
        assert_eq!(reply.status, 400);
        assert!(String::from_utf8_lossy(&reply.body).contains("invalid size \"lots\""));
    }

    #[test]
    fn large_file_is_streamed_in_full() {
        let server = start(ServerConfig::default());
        let size = 5 * CHUNK_SIZE + 3;
        let reply = get(server.addr(), &format!("/files/big.bin?size={size}"));
        assert_eq!(reply.body.len() as u64, size);
        assert!(reply.body == expected("big.bin", 0..size));
    }

    #[test]
    fn range_requests_return_exact_slices() {
        let server = start(ServerConfig::default());
        let name = "r.bin";
        let size = 100_000u64;
        let target = format!("/files/{name}?size={size}");
        for (spec, range) in [
            ("bytes=10-19", 10..20),
            ("bytes=65530-", 65_530..size),
            ("bytes=-7", size - 7..size),
        ] {
            let reply = request(server.addr(), "GET", &target, &[("Range", spec)]);
            assert_eq!(reply.status, 206, "{spec}");
            let content_range = format!("bytes {}-{}/{size}", range.start, range.end - 1);
            assert_eq!(reply.header("content-range"), Some(content_range.as_str()));
            assert_eq!(reply.content_length(), range.end - range.start);
            assert_eq!(reply.body, expected(name, range), "{spec}");
        }
    }

    #[test]
    fn unsatisfiable_range_is_416() {
        let server = start(ServerConfig::default());
        let reply = request(
            server.addr(),
            "GET",
            "/files/r.bin?size=100",
            &[("Range", "bytes=100-")],
        );
        assert_eq!(reply.status, 416);
        assert_eq!(reply.header("content-range"), Some("bytes */100"));
    }

    #[test]
    fn multi_range_and_stale_if_range_get_full_content() {
        let server = start(ServerConfig::default());
        let addr = server.addr();
        let target = "/files/r.bin?size=100";
        let full = expected("r.bin", 0..100);
        let reply = request(addr, "GET", target, &[("Range", "bytes=0-1,5-6")]);
        assert_eq!((reply.status, &reply.body), (200, &full));
        let stale = [
            ("Range", "bytes=0-1"),
            ("If-Range", "\"0000000000000000-100\""),
        ];
        let reply = request(addr, "GET", target, &stale);
        assert_eq!((reply.status, &reply.body), (200, &full));
        let etag = FileMeta::new("r.bin", 100).etag;
        let reply = request(
            addr,
            "GET",
            target,
            &[("Range", "bytes=0-1"), ("If-Range", &etag)],
        );
        assert_eq!((reply.status, reply.body), (206, full[..2].to_vec()));
    }

    #[test]
    fn head_has_headers_but_no_body() {
        let server = start(ServerConfig::default());
        let reply = request(server.addr(), "HEAD", "/files/h.bin?size=123456", &[]);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.content_length(), 123_456);
        assert!(reply.header("etag").is_some());
        assert!(reply.body.is_empty());
        let reply = request(
            server.addr(),
            "HEAD",
            "/files/h.bin?size=1000",
            &[("Range", "bytes=-10")],
        );
        assert_eq!(reply.status, 206);
        assert_eq!(reply.content_length(), 10);
        assert!(reply.body.is_empty());
        assert_eq!(
            server.stats(),
            ServerStats {
                requests: 2,
                body_bytes: 0
            }
        );
    }

    #[test]
    fn latency_parameter_delays_response() {
        let server = start(ServerConfig::default());
        let started = StdInstant::now();
        let reply = get(server.addr(), "/files/l.bin?size=10&latency=200ms");
        assert_eq!(reply.status, 200);
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn server_wide_latency_applies_by_default() {
        let server = start(ServerConfig {
            latency: Duration::from_millis(150),
            ..ServerConfig::default()
        });
        let started = StdInstant::now();
        assert_eq!(get(server.addr(), "/files/l.bin?size=10").status, 200);
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn rate_parameter_paces_the_body() {
        let server = start(ServerConfig::default());
        let started = StdInstant::now();
        let reply = get(server.addr(), "/files/slow.bin?size=200KB&rate=1MB/s");
        let elapsed = started.elapsed();
        assert_eq!(reply.body, expected("slow.bin", 0..200_000));
        assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
    }

    #[test]
    fn server_wide_rate_applies_by_default() {
        let server = start(ServerConfig {
            rate: Some(500_000),
            ..ServerConfig::default()
        });
        let started = StdInstant::now();
        let reply = get(server.addr(), "/files/slow.bin?size=100000");
        assert_eq!(reply.body.len(), 100_000);
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn transfer_time_is_exact() {
        assert_eq!(transfer_time(0, 7), Duration::ZERO);
        assert_eq!(
            transfer_time(1_500_000, 1_000_000),
            Duration::from_millis(1500)
        );
        assert_eq!(transfer_time(1, 3), Duration::from_nanos(333_333_333));
        assert_eq!(transfer_time(u64::MAX, 1), Duration::from_secs(u64::MAX));
    }

    #[test]
    fn list_returns_workload_urls() {
        let server = start(ServerConfig {
            files: 3,
            size: 4096,
            ..ServerConfig::default()
        });
        let base = server.base_url();
        let reply = get(server.addr(), "/list");
        assert_eq!(reply.status, 200);
        let text = String::from_utf8(reply.body).expect("UTF-8 list");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [1, 2, 3].map(|i| format!("{base}/files/file-000{i}.bin?size=4096"))
        );
        assert_eq!(server.workload_urls(), lines);
    }

    #[test]
    fn list_parameters_and_passthrough() {
        let server = start(ServerConfig::default());
        let reply = get(
            server.addr(),
            "/list?files=12&size=1KiB&latency=250ms&rate=10MiB/s",
        );
        let text = String::from_utf8(reply.body).expect("UTF-8 list");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 12);
        let base = server.base_url();
        assert_eq!(
            lines[11],
            format!("{base}/files/file-0012.bin?size=1024&latency=250ms&rate=10485760")
        );
        // A listed URL is served as described.
        let path = lines[0].strip_prefix(&base).expect("URL on this server");
        let started = StdInstant::now();
        assert_eq!(
            get(server.addr(), path).body,
            expected("file-0001.bin", 0..1024)
        );
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert_eq!(get(server.addr(), "/list?files=0").body, b"\n");
        assert_eq!(get(server.addr(), "/list?files=many").status, 400);
        assert_eq!(get(server.addr(), "/list?files=100001").status, 400);
        assert_eq!(get(server.addr(), "/list?latency=soon").status, 400);
    }

    #[test]
    fn file_names_are_zero_padded_and_escaped() {
        assert_eq!(workload_file_name(7), "file-0007.bin");
        assert_eq!(workload_file_name(12345), "file-12345.bin");
        assert_eq!(
            file_url("http://h:1", "a b/c.bin", 5, ""),
            "http://h:1/files/a%20b%2Fc.bin?size=5"
        );
        let server = start(ServerConfig::default());
        let url = server.file_url("odd name.bin", 10);
        let path = url
            .strip_prefix(&server.base_url())
            .expect("URL on this server");
        assert_eq!(
            get(server.addr(), path).body,
            expected("odd name.bin", 0..10)
        );
    }

    #[test]
    fn duration_params_are_exact() {
        assert_eq!(duration_param(Duration::ZERO), "0ms");
        assert_eq!(duration_param(Duration::from_millis(1500)), "1500ms");
        assert_eq!(duration_param(Duration::from_micros(1500)), "1500us");
        assert_eq!(duration_param(Duration::from_nanos(1500)), "1500ns");
    }

    #[test]
    fn unknown_path_is_404() {
        let server = start(ServerConfig::default());
        let reply = get(server.addr(), "/nope");
        assert_eq!(reply.status, 404);
        assert!(String::from_utf8_lossy(&reply.body).contains("/nope"));
        assert_eq!(get(server.addr(), "/files/").status, 404);
    }

    #[test]
    fn stats_count_requests_and_file_bytes() {
        let server = start(ServerConfig::default());
        let addr = server.addr();
        assert_eq!(server.stats(), ServerStats::default());
        get(addr, "/files/a?size=1000");
        request(addr, "GET", "/files/a?size=1000", &[("Range", "bytes=-10")]);
        get(addr, "/files/a?size=65537");
        get(addr, "/list");
        get(addr, "/missing");
        assert_eq!(
            server.stats(),
            ServerStats {
                requests: 5,
                body_bytes: 1000 + 10 + 65_537
            }
        );
    }

    #[test]
    fn wildcard_bind_advertises_loopback() {
        let server = start(ServerConfig {
            bind: "0.0.0.0:0".parse().expect("addr"),
            ..ServerConfig::default()
        });
        assert_eq!(
            server.base_url(),
            format!("http://127.0.0.1:{}", server.addr().port())
        );
    }

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
        let started = StdInstant::now();
        server.shutdown();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(TcpStream::connect(addr).is_err());
    }

    #[test]
    fn serve_args_defaults_and_units() {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let defaults = Cli::try_parse_from(["serve"])
            .expect("defaults parse")
            .serve
            .config();
        let expected_defaults = ServerConfig {
            bind: "127.0.0.1:8000".parse().expect("addr"),
            ..ServerConfig::default()
        };
        assert_eq!(defaults, expected_defaults);
        let args = [
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--latency",
            "250ms",
            "--rate",
            "10MiB/s",
            "--files",
            "4",
            "--size",
            "1.5MB",
        ];
        let cfg = Cli::try_parse_from(args)
            .expect("flags parse")
            .serve
            .config();
        assert_eq!(cfg.latency, Duration::from_millis(250));
        assert_eq!(cfg.rate, Some(10 << 20));
        assert_eq!((cfg.files, cfg.size), (4, 1_500_000));
        let err = Cli::try_parse_from(["serve", "--size", "huge"])
            .err()
            .expect("bad size rejected");
        assert!(err.to_string().contains("invalid size \"huge\""), "{err}");
    }
}
