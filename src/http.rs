//! HTTP client settings, shared by every mode so that a comparison is about scheduling alone.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use reqwest::{Certificate, Client, redirect};

/// How many redirects a download follows before it fails.
pub const MAX_REDIRECTS: usize = 10;

/// Everything a [`Client`] is built from. Each thread (or runtime) builds its own client from
/// the same settings: a reqwest client's connections belong to the runtime that opened them.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Extra trusted roots (`--cacert`).
    pub extra_roots: Vec<Certificate>,
    pub connect_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            extra_roots: Vec::new(),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl HttpSettings {
    /// Reads the PEM certificates of `--cacert`.
    pub fn add_cacert(&mut self, path: &Path) -> Result<()> {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read CA certificate {}", path.display()))?;
        let certs = Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{} holds no valid PEM certificate", path.display()))?;
        anyhow::ensure!(
            !certs.is_empty(),
            "{} holds no PEM certificate",
            path.display()
        );
        self.extra_roots.extend(certs);
        Ok(())
    }

    /// A client with these settings; keeps connections alive for reuse.
    pub fn client(&self) -> Result<Client> {
        install_crypto_provider();
        let mut builder = Client::builder()
            .user_agent(concat!("fetchbench/", env!("CARGO_PKG_VERSION")))
            .redirect(redirect::Policy::limited(MAX_REDIRECTS))
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true);
        if !self.extra_roots.is_empty() {
            builder = builder.tls_certs_merge(self.extra_roots.iter().cloned());
        }
        builder.build().context("cannot set up the HTTP client")
    }
}

/// rustls needs one process-wide crypto provider; we ship ring (quick to build).
fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
