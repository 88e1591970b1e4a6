//! HTTP client settings, shared by every mode so that a comparison is about scheduling alone.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use anyhow::{Context, Result};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, NoProxy, Proxy, redirect};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// How many redirects a download follows before it fails, unless `--max-redirs` says.
pub const MAX_REDIRECTS: usize = 10;

/// The error of a redirect past `--max-redirs`, found in reqwest's error chain.
#[derive(Debug)]
pub struct TooManyRedirects {
    pub max: usize,
}

impl std::fmt::Display for TooManyRedirects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "too many redirects (more than {})", self.max)
    }
}

impl std::error::Error for TooManyRedirects {}

/// Follows at most `max` redirects (0: none; the first fails). Like reqwest's
/// `Policy::limited`, with the limit in the error. reqwest drops `Authorization` on a redirect
/// to another origin whatever the policy.
fn redirect_policy(max: usize) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        // The first of `previous` is the URL asked for, not a redirect.
        if attempt.previous().len() > max {
            attempt.error(TooManyRedirects { max })
        } else {
            attempt.follow()
        }
    })
}

/// Which HTTP version to speak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpVersion {
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
pub struct HttpOptions {
    /// Extra request headers, `(name, value)`.
    pub headers: Vec<(String, String)>,
    pub user_agent: String,
    /// `--proxy`: every request goes through it.
    pub proxy: Option<String>,
    /// `--noproxy`: hosts reached directly, overriding `NO_PROXY`.
    pub noproxy: Option<String>,
    /// `--insecure`: certificates are not checked.
    pub insecure: bool,
    pub version: HttpVersion,
    pub connect_timeout: Duration,
    /// `--cacert` files: extra trusted roots.
    pub cacert_files: Vec<PathBuf>,
    /// `-e/--referer`: the Referer to send; none otherwise (not even on redirects).
    #[serde(default)]
    pub referer: Option<String>,
    /// `--compressed`: ask for gzip, brotli or zstd and decode what comes (never otherwise).
    pub compressed: bool,
    /// `--max-redirs`: redirects followed before a download fails.
    pub max_redirects: usize,
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
        }
    }
}

/// Everything a [`Client`] is built from, checked. Each thread (or runtime) builds its own
/// client from the same settings: a reqwest client's connections belong to the runtime that
/// opened them. The TLS configuration (root certificates loaded from the system) is built once
/// and shared, so that a thousand threads do not read the system's certificates a thousand
/// times.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    options: HttpOptions,
    headers: HeaderMap,
    proxies: Vec<Proxy>,
    extra_roots: Vec<CertificateDer<'static>>,
    tls: Arc<OnceLock<ClientConfig>>,
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
        }
    }
}

impl HttpSettings {
    /// Checks `options`: headers, proxy URLs, and the certificates of `--cacert`.
    pub fn new(options: HttpOptions) -> Result<Self> {
        let mut headers = HeaderMap::new();
        for (name, value) in &options.headers {
            let bad = || format!("invalid header {name:?}: {value:?}");
            let name = HeaderName::from_bytes(name.as_bytes()).with_context(bad)?;
            let value = HeaderValue::from_str(value).with_context(bad)?;
            headers.append(name, value);
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
        Ok(HttpSettings {
            options,
            headers,
            proxies,
            extra_roots,
            tls: Arc::default(),
        })
    }

    pub fn options(&self) -> &HttpOptions {
        &self.options
    }

    /// A client with these settings; keeps connections alive for reuse.
    pub fn client(&self) -> Result<Client> {
        let options = &self.options;
        let tls = self
            .tls
            .get_or_init(|| tls_config(&self.extra_roots, options.insecure, options.version));
        // Without `--compressed`, no Accept-Encoding is sent and nothing is decoded.
        let mut builder = crate::platform::decoders(Client::builder(), options.compressed)
            .tls_backend_preconfigured(tls.clone())
            .user_agent(options.user_agent.as_str())
            .default_headers(self.headers.clone())
            .redirect(redirect_policy(options.max_redirects))
            // reqwest would send the previous URL, query included, to the next host; curl,
            // wget2 and aria2c send none.
            .referer(false)
            .connect_timeout(options.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true);
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
    let bad = |url: &str| format!("invalid proxy URL {url:?}");
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
        self.verifier().verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
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
