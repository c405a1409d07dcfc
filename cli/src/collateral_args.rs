//! The collateral options `accord evidence verify` and the network
//! commands (`accord set`, `verify`, `get-manifests`, `recover`) share
//! ([`CollateralArgs`], flattened into both), and the fetcher they build.
//!
//! The two differ in one thing: `accord evidence verify --offline` needs
//! `--cache` (it has nothing else), while a network command offline uses
//! the collateral the coordinator's evidence carries, plus `--cache` if
//! given. Each command adjusts the help of `--cache` and `--offline` (and
//! `evidence verify` adds `requires = cache`) where it flattens these.
//!
//! Nothing fetched is trusted: the verifier authenticates it under the
//! pinned roots (or the explicit INSECURE roots reference values name).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use accord_collateral::{Cache, Endpoints, Fetcher, HttpClient, HttpConfig};
use accord_core::x509::pem;
use anyhow::{Context, anyhow};
use clap::Args;

/// Where and how collateral is fetched.
#[derive(Clone, Debug, Args)]
pub struct CollateralArgs {
    /// Base URL of AMD's KDS (or a mirror with the same paths).
    #[arg(long, value_name = "URL", default_value = accord_collateral::DEFAULT_KDS_URL)]
    pub kds_url: String,

    /// Base URL of Intel's PCS, or of a PCCS (same v4 paths).
    #[arg(long, value_name = "URL", default_value = accord_collateral::DEFAULT_PCS_URL)]
    pub pcs_url: String,

    /// HTTP proxy for the fetches (http://HOST:PORT; CONNECT for https).
    #[arg(long, value_name = "URL")]
    pub collateral_proxy: Option<String>,

    /// Extra TLS roots for the fetches (PEM bundle or DER), e.g. a PCCS's
    /// own certificate authority; Mozilla's roots are trusted anyway.
    #[arg(long, value_name = "CERTS.pem")]
    pub collateral_ca: Option<PathBuf>,

    /// Seconds a fetch may take in all (connecting: at most 10).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_FETCH_TIMEOUT_SECS)]
    pub fetch_timeout: u64,

    /// Cache directory for fetched collateral.
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,

    /// Fetch nothing: missing collateral comes from --cache only.
    #[arg(long)]
    pub offline: bool,
}

/// `--fetch-timeout`'s default.
pub const DEFAULT_FETCH_TIMEOUT_SECS: u64 = 30;

impl Default for CollateralArgs {
    /// The command line's defaults: online, AMD's KDS and Intel's PCS, no
    /// proxy, no cache given.
    fn default() -> Self {
        Self {
            kds_url: accord_collateral::DEFAULT_KDS_URL.to_owned(),
            pcs_url: accord_collateral::DEFAULT_PCS_URL.to_owned(),
            collateral_proxy: None,
            collateral_ca: None,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT_SECS,
            cache: None,
            offline: false,
        }
    }
}

impl CollateralArgs {
    /// Fetching nothing (`--offline`).
    pub fn offline() -> Self {
        Self {
            offline: true,
            ..Self::default()
        }
    }

    /// Online, with one base URL for both the KDS and the PCS paths (the
    /// simulated vendor, a local mirror).
    pub fn from_vendor(url: &str) -> Self {
        Self {
            kds_url: url.to_owned(),
            pcs_url: url.to_owned(),
            ..Self::default()
        }
    }

    /// The HTTP client (`None` with `--offline`).
    fn http(&self) -> anyhow::Result<Option<HttpClient>> {
        if self.offline {
            return Ok(None);
        }
        let proxy = self
            .collateral_proxy
            .as_deref()
            .map(|url| {
                url.parse()
                    .map_err(|_| anyhow!("--collateral-proxy {url}: not a URL"))
            })
            .transpose()?;
        let extra_roots = match &self.collateral_ca {
            Some(path) => {
                let bytes = crate::input::read(path)?;
                if bytes.first() == Some(&0x30) {
                    vec![bytes]
                } else {
                    let text = std::str::from_utf8(&bytes)
                        .with_context(|| format!("{}: neither DER nor PEM", path.display()))?;
                    pem::decode_all(text, "CERTIFICATE")
                        .map_err(|err| anyhow!("{}: no PEM certificate ({err})", path.display()))?
                }
            }
            None => Vec::new(),
        };
        let total = Duration::from_secs(self.fetch_timeout.max(1));
        let config = HttpConfig {
            connect_timeout: total.min(Duration::from_secs(10)),
            total_timeout: total,
            proxy,
            extra_roots,
            ..HttpConfig::default()
        };
        Ok(Some(
            HttpClient::new(config).context("setting up TLS for the fetches")?,
        ))
    }

    /// A fetcher at these endpoints, caching in `cache` (`None`: no cache),
    /// asking the vendors unless `--offline`.
    pub fn fetcher(&self, cache: Option<PathBuf>) -> anyhow::Result<Fetcher> {
        let endpoints = Endpoints::new(&self.kds_url, &self.pcs_url);
        Ok(Fetcher::new(self.http()?, endpoints, cache.map(Cache::new)))
    }

    /// [`Self::fetcher`] over `--cache`, reporting each fetch on stderr
    /// (`accord evidence verify`).
    pub fn reporting_fetcher(&self) -> anyhow::Result<Fetcher> {
        Ok(self
            .fetcher(self.cache.clone())?
            .with_progress(Arc::new(|message| eprintln!("{message}"))))
    }
}
