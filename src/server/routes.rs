//! Routing: `/files/{name}` and `/list` with their query parameters and per-request overrides,
//! 404s, request counting, and the workload's URLs.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, Uri, Version, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body::{Frame, SizeHint};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::conn::ConnStreams;
use super::faults::{FaultCounts, FaultQuery};
use super::files::{FileMeta, RangeRequest, parse_range};
use super::state::{AppState, ServerConfig};
use crate::units;

/// Upper bound for `/list?files=`, so a typo cannot make a gigabyte listing.
const MAX_LIST_FILES: usize = 100_000;
/// Characters escaped in a file name placed in a URL path segment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

type Shared = State<Arc<AppState>>;
type HandlerResult = Result<Response, (StatusCode, String)>;

pub(super) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/files/{name}", get(file_handler))
        .route("/list", get(list_handler))
        .fallback(not_found)
        .layer(Extension(Arc::new(FaultCounts::default())))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            count_request,
        ))
        .with_state(state)
}

/// Counts every request (by protocol), refuses those beyond `--max-active` with 503, and keeps
/// each response counted as in progress until its body ends.
async fn count_request(State(state): Shared, request: Request, next: Next) -> Response {
    let counters = &state.counters;
    counters.requests.fetch_add(1, Ordering::Relaxed);
    let by_version = match request.version() {
        Version::HTTP_2 => &counters.requests_h2,
        _ => &counters.requests_h1,
    };
    by_version.fetch_add(1, Ordering::Relaxed);
    let connection = request.extensions().get::<Arc<ConnStreams>>().cloned();
    let in_progress = InProgress::enter(Arc::clone(&state), connection);
    if let Some(max) = state.config.max_active
        && in_progress.active > max
    {
        counters.refused.fetch_add(1, Ordering::Relaxed);
        return busy(max);
    }
    next.run(request)
        .await
        .map(|body| Body::new(CountedBody { body, in_progress }))
}

/// The push-back of `--max-active`: 503 with `Retry-After: 1`, as a loaded server would.
fn busy(max: usize) -> Response {
    let message = format!("busy: {max} responses in progress (--max-active {max}); retry later\n");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        message,
    )
        .into_response()
}

/// One response in progress, counted server-wide and on its connection until dropped.
struct InProgress {
    state: Arc<AppState>,
    connection: Option<Arc<ConnStreams>>,
    /// Responses in progress server-wide, this one included, when it began.
    active: usize,
}

impl InProgress {
    fn enter(state: Arc<AppState>, connection: Option<Arc<ConnStreams>>) -> InProgress {
        let counters = &state.counters;
        let active = counters.active.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(connection) = &connection {
            let on_connection = connection.active.fetch_add(1, Ordering::Relaxed) + 1;
            counters
                .peak_streams
                .fetch_max(on_connection, Ordering::Relaxed);
        }
        InProgress {
            state,
            connection,
            active,
        }
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.state.counters.active.fetch_sub(1, Ordering::Relaxed);
        if let Some(connection) = &self.connection {
            connection.active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A response body that keeps its response counted as in progress until it ends (or is
/// dropped, when the client goes away).
struct CountedBody {
    body: Body,
    in_progress: InProgress,
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let _ = &this.in_progress;
        Pin::new(&mut this.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
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
    /// `status`, `fail`, `cut`, `stall`, `retry_after` (see [`super::faults`]).
    #[serde(flatten)]
    faults: FaultQuery,
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
    Extension(counts): Extension<Arc<FaultCounts>>,
    uri: Uri,
    UrlPath(name): UrlPath<String>,
    Query(query): Query<FileQuery>,
    headers: HeaderMap,
) -> HandlerResult {
    let size = query.size(state.config.size).map_err(bad_request)?;
    let (latency, rate) = query
        .overrides()
        .map_err(bad_request)?
        .resolve(&state.config);
    let url = uri.path_and_query().map_or("", |pq| pq.as_str());
    let faults = query.faults.faults(url, &counts).map_err(bad_request)?;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(status) = faults.status {
        let retry_after = faults
            .retry_after
            .map(|s| (header::RETRY_AFTER, s.to_string()));
        let message = format!("fault injected: {status}\n");
        return Ok((status, axum::response::AppendHeaders(retry_after), message).into_response());
    }
    let file = FileMeta::new(&name, size);
    let range = match header_str(&headers, header::RANGE) {
        Some(spec) if file.if_range_matches(header_str(&headers, header::IF_RANGE)) => {
            parse_range(spec, size)
        }
        _ => RangeRequest::Full,
    };
    Ok(match range {
        RangeRequest::Full => file.response(StatusCode::OK, 0..size, rate, state, faults),
        RangeRequest::Partial(range) => {
            file.response(StatusCode::PARTIAL_CONTENT, range, rate, state, faults)
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
    let base = format!("{}://{authority}", state.scheme);
    let mut body = workload_urls(&base, files, size, &suffix).join("\n");
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

pub(super) fn workload_urls(base: &str, files: usize, size: u64, suffix: &str) -> Vec<String> {
    (1..=files)
        .map(|i| file_url(base, &workload_file_name(i), size, suffix))
        .collect()
}

pub(super) fn file_url(base: &str, name: &str, size: u64, suffix: &str) -> String {
    let name = utf8_percent_encode(name, PATH_SEGMENT);
    format!("{base}/files/{name}?size={size}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::testing::{expected, get, start};
    use std::time::Instant;

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
    fn latency_parameter_delays_response() {
        let server = start(ServerConfig::default());
        let started = Instant::now();
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
        let started = Instant::now();
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
        let started = Instant::now();
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
        let started = Instant::now();
        let reply = get(server.addr(), "/files/slow.bin?size=100000");
        assert_eq!(reply.body.len(), 100_000);
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "{:?}",
            started.elapsed()
        );
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
        let started = Instant::now();
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
    fn requests_beyond_max_active_get_503_with_retry_after() {
        let server = start(ServerConfig {
            max_active: Some(1),
            ..ServerConfig::default()
        });
        let addr = server.addr();
        let slow = std::thread::spawn(move || get(addr, "/files/slow.bin?size=10&latency=600ms"));
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.stats().requests == 0 {
            assert!(Instant::now() < deadline, "the slow request never arrived");
            std::thread::sleep(Duration::from_millis(5));
        }
        let refused = get(addr, "/files/fast.bin?size=10");
        assert_eq!(refused.status, 503);
        assert_eq!(refused.header("retry-after"), Some("1"));
        assert_eq!(slow.join().expect("slow request").status, 200);
        // Its response has ended: there is room again.
        assert_eq!(get(addr, "/files/fast.bin?size=10").status, 200);
        assert_eq!(server.stats().refused, 1);
    }

    #[test]
    fn unknown_path_is_404() {
        let server = start(ServerConfig::default());
        let reply = get(server.addr(), "/nope");
        assert_eq!(reply.status, 404);
        assert!(String::from_utf8_lossy(&reply.body).contains("/nope"));
        assert_eq!(get(server.addr(), "/files/").status, 404);
    }
}
