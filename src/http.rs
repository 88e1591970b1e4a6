//! HTTP client settings, shared by every mode so that a comparison is about scheduling alone.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use anyhow::{Context, Result};

use crate::cookies::CookieJar;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, NoProxy, Proxy, redirect};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// How many redirects a download follows before it fails, unless `--max-redirs` says.
pub(crate) const MAX_REDIRECTS: usize = 10;

/// HTTP/2 flow-control window of one stream: a stream moves at most a window per round trip,
/// so the default 64 KiB caps a download at 1.3 MiB/s over a 50 ms path. The window is handed
/// back a third at a time (h2 announces what was read once it reaches half of what is left),
/// and what waits unread in the client's socket buffer counts against it too (Linux grows that
/// buffer up to `tcp_rmem`'s maximum, 32 MiB on this machine, when the client is busy), so the
/// window must cover more than the round trip. 256 MiB from nginx over a 50 ms path, 11
/// interleaved runs, medians: 0.56 s with 128 MiB, 0.51 s with 256 MiB, 0.48 s over HTTP/1.1
/// (64 MiB: 0.64 s against 0.51 s in another run; 32 MiB held it to 1.17 s). The window does
/// not bound memory: h2 (vendor/h2) reads no more frames while 16 MiB it received are unread,
/// and the socket buffers hold the rest, as for HTTP/1.1.
pub(crate) const H2_STREAM_WINDOW: u32 = 256 << 20;
/// HTTP/2 window of a whole connection, shared by its streams: as large as one stream's, so that
/// one download may use all of it.
pub(crate) const H2_CONNECTION_WINDOW: u32 = 256 << 20;
/// The largest HTTP/2 frame the server may send: 1 MiB frames instead of the 16 KiB default
/// cut the per-frame work of a fast stream 64-fold.
pub(crate) const H2_MAX_FRAME: u32 = 1 << 20;
/// What reqwest sends as Accept-Encoding with `--compressed` (shown by `-v`).
pub(crate) const ACCEPT_ENCODING: &str = "zstd,gzip,br";

/// The error of a redirect past `--max-redirs`, found in reqwest's error chain.
#[derive(Debug)]
pub(crate) struct TooManyRedirects {
    pub(crate) max: usize,
}

impl std::fmt::Display for TooManyRedirects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "too many redirects (more than {})", self.max)
    }
}

impl std::error::Error for TooManyRedirects {}

/// Follows at most `max` redirects (0: none; the first fails). Like reqwest's
/// `Policy::limited`, with the limit in the error. reqwest drops `Authorization` and cookies
/// on a redirect to another origin whatever the policy, but keeps every other header of the
/// request: with `stop_cross_origin` (`-H` headers given, no `--location-trusted`), a
/// redirect to another origin is not followed here but handed back, for
/// [`crate::fetch::policy::Policy::send`] to follow without those headers.
fn redirect_policy(max: usize, stop_cross_origin: bool) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        // The first of `previous` is the URL asked for, not a redirect.
        let leaves_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() != attempt.url().origin());
        if attempt.previous().len() > max {
            attempt.error(TooManyRedirects { max })
        } else if stop_cross_origin && leaves_origin {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

/// Which HTTP version to speak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum HttpVersion {
    /// HTTP/1.1, or HTTP/2 where TLS negotiates it.
    #[default]
    Auto,
    /// HTTP/1.1 only (`--http1.1`).
    Http1,
    /// HTTP/2 with prior knowledge, also over plain TCP (`--http2`).
    Http2,
}

/// The request options of a run, as given on the command line (and passed to `procs` and
/// `spawn` workers).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct HttpOptions {
    /// Extra request headers, `(name, value)`.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) user_agent: String,
    /// `--proxy`: every request goes through it.
    pub(crate) proxy: Option<String>,
    /// `--noproxy`: hosts reached directly, overriding `NO_PROXY`.
    pub(crate) noproxy: Option<String>,
    /// `--insecure`: certificates are not checked.
    pub(crate) insecure: bool,
    pub(crate) version: HttpVersion,
    pub(crate) connect_timeout: Duration,
    /// `--cacert` files: extra trusted roots.
    pub(crate) cacert_files: Vec<PathBuf>,
    /// `-e/--referer`: the Referer to send; none otherwise (not even on redirects).
    #[serde(default)]
    pub(crate) referer: Option<String>,
    /// `--compressed`: ask for gzip, brotli or zstd and decode what comes (never otherwise).
    pub(crate) compressed: bool,
    /// `--max-redirs`: redirects followed before a download fails.
    pub(crate) max_redirects: usize,
    /// `--load-cookies`: the Netscape cookie file the jar starts with.
    #[serde(default)]
    pub(crate) load_cookies: Option<PathBuf>,
    /// `--save-cookies`: where the jar is written at the end of the run.
    #[serde(default)]
    pub(crate) save_cookies: Option<PathBuf>,
    /// `--resolve`: addresses to use for these hosts instead of asking DNS.
    #[serde(default)]
    pub(crate) resolve: Vec<Resolve>,
    /// `-4`/`-6`: connect over this IP version only.
    #[serde(default)]
    pub(crate) ip_version: Option<IpVersion>,
    /// `--location-trusted`: `-H` headers follow a redirect to another origin too.
    #[serde(default)]
    pub(crate) location_trusted: bool,
}

/// Which IP version connections use (`-4`, `-6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum IpVersion {
    V4,
    V6,
}

/// `--resolve HOST:PORT:ADDR[,ADDR...]` (curl's syntax; an IPv6 address in brackets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Resolve {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) addrs: Vec<IpAddr>,
}

impl Resolve {
    pub(crate) fn parse(text: &str) -> Result<Resolve, String> {
        let form = || format!("{text:?} is not HOST:PORT:ADDR (e.g. example.com:443:127.0.0.1)");
        let (host, rest) = text.split_once(':').ok_or_else(form)?;
        let (port, addrs) = rest.split_once(':').ok_or_else(form)?;
        if host.is_empty() || host.starts_with(['+', '-', '*']) {
            return Err(format!(
                "{text:?}: HOST must be a host name (curl's +HOST, -HOST and * are not supported)"
            ));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("{text:?}: {port:?} is not a port (1-65535)"))?;
        let addrs = addrs
            .split(',')
            .map(|addr| {
                let bare = addr
                    .strip_prefix('[')
                    .and_then(|a| a.strip_suffix(']'))
                    .unwrap_or(addr);
                bare.parse::<IpAddr>()
                    .map_err(|_| format!("{text:?}: {addr:?} is not an IP address"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Resolve {
            host: host.to_ascii_lowercase(),
            port,
            addrs,
        })
    }
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            headers: Vec::new(),
            user_agent: concat!("fetchbench/", env!("CARGO_PKG_VERSION")).to_owned(),
            proxy: None,
            noproxy: None,
            insecure: false,
            version: HttpVersion::Auto,
            connect_timeout: Duration::from_secs(10),
            cacert_files: Vec::new(),
            referer: None,
            compressed: false,
            max_redirects: MAX_REDIRECTS,
            load_cookies: None,
            save_cookies: None,
            resolve: Vec::new(),
            ip_version: None,
            location_trusted: false,
        }
    }
}

/// Everything a [`Client`] is built from, checked. Each thread (or runtime) builds its own
/// client from the same settings: a reqwest client's connections belong to the runtime that
/// opened them. The TLS configuration (root certificates loaded from the system) is built once
/// and shared, so that a thousand threads do not read the system's certificates a thousand
/// times.
#[derive(Debug, Clone)]
pub(crate) struct HttpSettings {
    options: HttpOptions,
    headers: HeaderMap,
    proxies: Vec<Proxy>,
    extra_roots: Vec<CertificateDer<'static>>,
    tls: Arc<OnceLock<ClientConfig>>,
    /// The run's cookies (with `--load-cookies` or `--save-cookies`), shared by every client
    /// built from these settings.
    cookies: Option<Arc<CookieJar>>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        // The default options hold nothing that can fail a check.
        HttpSettings {
            options: HttpOptions::default(),
            headers: HeaderMap::new(),
            proxies: Vec::new(),
            extra_roots: Vec::new(),
            tls: Arc::default(),
            cookies: None,
        }
    }
}

impl HttpSettings {
    /// Checks `options`: headers, proxy URLs, and the certificates of `--cacert`.
    pub(crate) fn new(options: HttpOptions) -> Result<Self> {
        // `-H` headers are checked here, and sent by each request to its own origin
        // ([`crate::fetch::policy::Policy::request`]), not as the client's defaults.
        let mut headers = HeaderMap::new();
        for (name, value) in &options.headers {
            let bad = || format!("invalid header {name:?}: {value:?}");
            HeaderName::from_bytes(name.as_bytes()).with_context(bad)?;
            HeaderValue::from_str(value).with_context(bad)?;
        }
        // Checked here, so that a bad value is a usage error rather than a failure of every
        // download (a CR or LF would otherwise split the request's head).
        HeaderValue::from_str(&options.user_agent)
            .with_context(|| format!("invalid User-Agent {:?}", options.user_agent))?;
        if let Some(referer) = &options.referer {
            let value = HeaderValue::from_str(referer)
                .with_context(|| format!("invalid Referer {referer:?}"))?;
            headers.insert(reqwest::header::REFERER, value);
        }
        let mut extra_roots = Vec::new();
        for path in &options.cacert_files {
            extra_roots.extend(read_certificates(path)?);
        }
        let proxies = proxies(&options)?;
        let cookies = match (&options.load_cookies, &options.save_cookies) {
            (Some(path), _) => Some(Arc::new(CookieJar::load(path)?)),
            (None, Some(_)) => Some(Arc::new(CookieJar::new())),
            (None, None) => None,
        };
        Ok(HttpSettings {
            options,
            headers,
            proxies,
            extra_roots,
            tls: Arc::default(),
            cookies,
        })
    }

    /// The run's cookie jar, if it has one.
    pub(crate) fn cookies(&self) -> Option<&Arc<CookieJar>> {
        self.cookies.as_ref()
    }

    /// `--save-cookies`: writes the jar to its file (atomically).
    pub(crate) fn save_cookies(&self) -> Result<()> {
        match (&self.options.save_cookies, &self.cookies) {
            (Some(path), Some(jar)) => jar.save(path),
            _ => Ok(()),
        }
    }

    pub(crate) fn options(&self) -> &HttpOptions {
        &self.options
    }

    /// The protocol a request to `url` will speak, where it is known before any response:
    /// plain `http://` and `--http1.1` speak HTTP/1.1, `--http2` HTTP/2; `https://` is
    /// negotiated (ALPN) and only its first response tells.
    pub(crate) fn foreseen_version(&self, url: &reqwest::Url) -> Option<reqwest::Version> {
        match (self.options.version, url.scheme()) {
            (HttpVersion::Http2, _) => Some(reqwest::Version::HTTP_2),
            (HttpVersion::Http1, _) | (HttpVersion::Auto, "http") => {
                Some(reqwest::Version::HTTP_11)
            }
            (HttpVersion::Auto, _) => None,
        }
    }

    /// A client with these settings; keeps connections alive for reuse.
    pub(crate) fn client(&self) -> Result<Client> {
        let options = &self.options;
        let tls = self
            .tls
            .get_or_init(|| tls_config(&self.extra_roots, options.insecure, options.version));
        // Without `--compressed`, no Accept-Encoding is sent and nothing is decoded.
        let mut builder = crate::platform::decoders(Client::builder(), options.compressed)
            .tls_backend_preconfigured(tls.clone())
            .user_agent(options.user_agent.as_str())
            .default_headers(self.headers.clone())
            .redirect(redirect_policy(
                options.max_redirects,
                !options.headers.is_empty() && !options.location_trusted,
            ))
            // reqwest would send the previous URL, query included, to the next host; curl,
            // wget2 and aria2c send none.
            .referer(false)
            .connect_timeout(options.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .http2_initial_stream_window_size(H2_STREAM_WINDOW)
            .http2_initial_connection_window_size(H2_CONNECTION_WINDOW)
            .http2_max_frame_size(H2_MAX_FRAME)
            .tcp_nodelay(true);
        if let Some(jar) = &self.cookies {
            builder = builder.cookie_provider(Arc::clone(jar));
        }
        for resolve in &options.resolve {
            // reqwest resolves names without ports: the URL's port is used with these
            // addresses, whatever --resolve's PORT said.
            let addrs: Vec<SocketAddr> = resolve
                .addrs
                .iter()
                .map(|&ip| SocketAddr::new(ip, resolve.port))
                .collect();
            builder = builder.resolve_to_addrs(&resolve.host, &addrs);
        }
        // Bound to the unspecified address of one version, hyper connects only to addresses
        // of that version (the others are not tried).
        builder = match options.ip_version {
            Some(IpVersion::V4) => builder.local_address(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            Some(IpVersion::V6) => builder.local_address(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            None => builder,
        };
        if options.proxy.is_some() || options.noproxy.is_some() {
            builder = self
                .proxies
                .iter()
                .cloned()
                .fold(builder.no_proxy(), |b, p| b.proxy(p));
        }
        builder = match options.version {
            HttpVersion::Auto => builder,
            HttpVersion::Http1 => builder.http1_only(),
            HttpVersion::Http2 => builder.http2_prior_knowledge(),
        };
        builder.build().context("cannot set up the HTTP client")
    }
}

/// The PEM certificates in `path`.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("cannot read CA certificate {}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} holds an invalid PEM certificate", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{} holds no PEM certificate",
        path.display()
    );
    Ok(certs)
}

/// The explicit proxies: `--proxy` for everything, or, when only `--noproxy` is given, the
/// environment's `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` with `--noproxy` in place of
/// `NO_PROXY`. Without either flag, reqwest reads the environment itself.
fn proxies(options: &HttpOptions) -> Result<Vec<Proxy>> {
    let bypass = || match &options.noproxy {
        Some(list) => NoProxy::from_string(list),
        None => NoProxy::from_env(),
    };
    let bad = |url: &str| crate::secret::text(&format!("invalid proxy URL {url:?}"));
    if options.noproxy.as_deref().map(str::trim) == Some("*") {
        return Ok(Vec::new());
    }
    if let Some(url) = &options.proxy {
        return Ok(vec![
            Proxy::all(url)
                .with_context(|| bad(url))?
                .no_proxy(bypass()),
        ]);
    }
    let from_env = |names: [&str; 2]| names.iter().find_map(|name| std::env::var(name).ok());
    let mut proxies = Vec::new();
    for (names, scheme) in [
        (["http_proxy", "HTTP_PROXY"], "http"),
        (["https_proxy", "HTTPS_PROXY"], "https"),
        (["all_proxy", "ALL_PROXY"], "all"),
    ] {
        if let Some(url) = from_env(names).filter(|url| !url.is_empty()) {
            let proxy = match scheme {
                "http" => Proxy::http(&url),
                "https" => Proxy::https(&url),
                _ => Proxy::all(&url),
            };
            proxies.push(proxy.with_context(|| bad(&url))?.no_proxy(bypass()));
        }
    }
    Ok(proxies)
}

/// rustls with ring (quick to build), the system's roots plus `extra_roots` (or no checks at
/// all when `insecure`), offering the HTTP versions `version` allows.
fn tls_config(
    extra_roots: &[CertificateDer<'static>],
    insecure: bool,
    version: HttpVersion,
) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = if insecure {
        Arc::new(FixedVerdict {
            reject: None,
            provider: Arc::clone(&provider),
        })
    } else {
        Arc::new(SystemRoots {
            extra_roots: extra_roots.to_vec(),
            provider: Arc::clone(&provider),
            verifier: OnceLock::new(),
        })
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| {
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        })
        // ring supports every default protocol version, so this cannot fail.
        .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"));
    config.alpn_protocols = match version {
        HttpVersion::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        HttpVersion::Http1 => vec![b"http/1.1".to_vec()],
        HttpVersion::Http2 => vec![b"h2".to_vec()],
    };
    config
}

/// The system's roots plus `--cacert`, read at the first TLS handshake: reading the system's
/// certificates takes milliseconds, which a run over plain HTTP should not pay.
#[derive(Debug)]
struct SystemRoots {
    extra_roots: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<Arc<dyn ServerCertVerifier>>,
}

impl SystemRoots {
    fn verifier(&self) -> &dyn ServerCertVerifier {
        self.verifier
            .get_or_init(|| {
                match rustls_platform_verifier::Verifier::new_with_extra_roots(
                    self.extra_roots.iter().cloned(),
                    Arc::clone(&self.provider),
                ) {
                    Ok(verifier) => Arc::new(verifier),
                    // No usable roots (a machine without CA certificates): each HTTPS download
                    // fails with this reason.
                    Err(err) => Arc::new(FixedVerdict {
                        reject: Some(format!("no trusted certificates: {err}")),
                        provider: Arc::clone(&self.provider),
                    }),
                }
            })
            .as_ref()
    }
}

impl ServerCertVerifier for SystemRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.verifier().verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            // The server's own certificate, given with --cacert (see crate::tls).
            Err(_) if self.extra_roots.iter().any(|root| root == end_entity) => {
                crate::tls::check_own_certificate(end_entity, server_name, now)
                    .map(|()| ServerCertVerified::assertion())
            }
            verdict => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A verifier with a fixed answer about certificates: with `--insecure`, any is accepted
/// (handshake signatures are still checked, so the connection is encrypted, but to whoever
/// answers); on a machine without trusted roots, none is, saying why.
#[derive(Debug)]
struct FixedVerdict {
    /// Why every certificate is rejected; `None` accepts them all.
    reject: Option<String>,
    provider: Arc<CryptoProvider>,
}

impl FixedVerdict {
    fn check(&self) -> Result<(), rustls::Error> {
        match &self.reject {
            Some(why) => Err(rustls::Error::General(why.clone())),
            None => Ok(()),
        }
    }
}

impl ServerCertVerifier for FixedVerdict {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check().map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check()?;
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check()?;
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_takes_curls_syntax() {
        let r = Resolve::parse("Example.com:443:127.0.0.1,[::1]").unwrap();
        assert_eq!(r.host, "example.com");
        assert_eq!(r.port, 443);
        assert_eq!(
            r.addrs,
            [
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert!(
            Resolve::parse("example.com:443")
                .unwrap_err()
                .contains("HOST:PORT:ADDR")
        );
        assert!(
            Resolve::parse("example.com:0:1.2.3.4")
                .unwrap_err()
                .contains("not a port")
        );
        assert!(
            Resolve::parse("example.com:80:nowhere")
                .unwrap_err()
                .contains("not an IP")
        );
        assert!(
            Resolve::parse("*:80:1.2.3.4")
                .unwrap_err()
                .contains("not supported")
        );
    }
}
