//! `--tls`: a self-signed certificate made at start, written where clients can read it, and the
//! rustls configuration that serves it (HTTP/2 and HTTP/1.1 offered by ALPN).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// The names the certificate is valid for: the loopback addresses the server can be reached at.
const NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The server's certificate, as clients need it.
#[derive(Debug)]
pub(super) struct Certificate {
    pub(super) path: PathBuf,
    /// The temporary directory holding `path` when no `--cert-out` was given; removed when the
    /// server stops.
    _dir: Option<tempfile::TempDir>,
}

/// Makes a fresh key and a self-signed end-entity certificate for [`NAMES`], writes the
/// certificate (PEM) to `out` or into a new temporary directory, and returns it with the
/// acceptor that serves it.
pub(super) fn self_signed(
    out: Option<&Path>,
    http1_only: bool,
) -> anyhow::Result<(Certificate, TlsAcceptor)> {
    let names: Vec<String> = NAMES.iter().map(|name| (*name).to_owned()).collect();
    let made = rcgen::generate_simple_self_signed(names)
        .context("failed to make the server's self-signed certificate")?;
    let pem = made.cert.pem();
    let (dir, path) = match out {
        Some(path) => (None, path.to_owned()),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("fetchbench-serve-")
                .tempdir()
                .context("failed to create a temporary directory for the server's certificate")?;
            let path = dir.path().join("cert.pem");
            (Some(dir), path)
        }
    };
    std::fs::write(&path, &pem).with_context(|| {
        format!(
            "failed to write the server's certificate to {}",
            path.display()
        )
    })?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder
                .with_no_client_auth()
                .with_single_cert(vec![made.cert.der().clone()], key)
        })
        .context("failed to configure TLS with the server's certificate")?;
    config.alpn_protocols = match http1_only {
        true => vec![b"http/1.1".to_vec()],
        false => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    let certificate = Certificate { path, _dir: dir };
    Ok((certificate, TlsAcceptor::from(Arc::new(config))))
}
