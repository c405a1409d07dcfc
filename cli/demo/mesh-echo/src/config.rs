//! The mesh's TLS 1.3 configurations, with the aws-lc-rs provider.
//!
//! - Server: presents the workload's chain and requires a client
//!   certificate that chains to the mesh CA (no anonymous client).
//! - Client: presents the workload's chain and verifies the server's
//!   chain against the mesh CA and its name (the `--server-name`).
//!
//! Nothing else is trusted: no system roots, no other CA.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::files::{self, Identity};

/// The provider of every configuration here (the workspace's).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The server configuration from the initializer's files in `dir`.
pub fn server_config(dir: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    server_config_from(files::identity(dir)?, files::roots(dir)?)
        .with_context(|| format!("the TLS server configuration from {}", dir.display()))
}

/// The client configuration from the initializer's files in `dir`.
pub fn client_config(dir: &Path) -> anyhow::Result<Arc<ClientConfig>> {
    client_config_from(files::identity(dir)?, files::roots(dir)?)
        .with_context(|| format!("the TLS client configuration from {}", dir.display()))
}

/// A TLS 1.3 server presenting `identity` that requires a client
/// certificate chaining to `roots`.
pub fn server_config_from(
    identity: Identity,
    roots: Arc<RootCertStore>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&provider))
        .build()
        .context("the client certificate verifier")?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain, identity.key)
        .context("the workload's certificate and key do not go together")?;
    Ok(Arc::new(config))
}

/// A TLS 1.3 client presenting `identity` that trusts only `roots`.
pub fn client_config_from(
    identity: Identity,
    roots: Arc<RootCertStore>,
) -> anyhow::Result<Arc<ClientConfig>> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_client_auth_cert(identity.chain, identity.key)
        .context("the workload's certificate and key do not go together")?;
    Ok(Arc::new(config))
}
