//! HTTP client settings, shared by every mode so that a comparison is about scheduling alone.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result};
use reqwest::{Client, redirect};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// How many redirects a download follows before it fails.
pub const MAX_REDIRECTS: usize = 10;

/// Everything a [`Client`] is built from. Each thread (or runtime) builds its own client from
/// the same settings: a reqwest client's connections belong to the runtime that opened them.
/// The TLS configuration (root certificates loaded from the system) is built once and shared,
/// so that a thousand threads do not read the system's certificates a thousand times.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Extra trusted roots (`--cacert`), and the files they came from (for `procs` children).
    extra_roots: Vec<CertificateDer<'static>>,
    cacert_files: Vec<PathBuf>,
    pub connect_timeout: Duration,
    tls: Arc<OnceLock<ClientConfig>>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            extra_roots: Vec::new(),
            cacert_files: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            tls: Arc::default(),
        }
    }
}

impl HttpSettings {
    /// Reads the PEM certificates of `--cacert`.
    pub fn add_cacert(&mut self, path: &Path) -> Result<()> {
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
        self.extra_roots.extend(certs);
        self.cacert_files.push(path.to_owned());
        self.tls = Arc::default();
        Ok(())
    }

    /// The `--cacert` files these settings were read from.
    pub fn cacert_files(&self) -> &[PathBuf] {
        &self.cacert_files
    }

    /// A client with these settings; keeps connections alive for reuse.
    pub fn client(&self) -> Result<Client> {
        let tls = self.tls.get_or_init(|| tls_config(&self.extra_roots));
        Client::builder()
            .tls_backend_preconfigured(tls.clone())
            .user_agent(concat!("fetchbench/", env!("CARGO_PKG_VERSION")))
            .redirect(redirect::Policy::limited(MAX_REDIRECTS))
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .context("cannot set up the HTTP client")
    }
}

/// rustls with ring (quick to build), the system's roots plus `extra_roots`, HTTP/1.1.
fn tls_config(extra_roots: &[CertificateDer<'static>]) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> =
        match rustls_platform_verifier::Verifier::new_with_extra_roots(
            extra_roots.iter().cloned(),
            Arc::clone(&provider),
        ) {
            Ok(verifier) => Arc::new(verifier),
            // No usable roots (a machine without CA certificates): HTTP still works, and each
            // HTTPS download fails with this reason.
            Err(err) => Arc::new(Untrusted {
                why: format!("no trusted certificates: {err}"),
                provider: Arc::clone(&provider),
            }),
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
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// A verifier that trusts nothing, saying why.
#[derive(Debug)]
struct Untrusted {
    why: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Untrusted {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Err(rustls::Error::General(self.why.clone()))
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(self.why.clone()))
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(self.why.clone()))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
