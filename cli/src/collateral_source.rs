//! A [`CollateralSource`] over an `accord-collateral` [`Fetcher`]: what the
//! verifier asks for (`ServiceVerifier::needs`) is fetched from the
//! vendors (or a mirror, a proxy, the cache) through the one mapping the
//! shim uses too ([`Fetcher::fetch_request`]).
//!
//! Used by the network commands for the coordinator's evidence, and by the
//! demo's in-process coordinator (pointed at the simulated vendor). The
//! bytes are untrusted: the verifier authenticates them, and when a fetch
//! fails it uses what the evidence carries or refuses by name. With a
//! `fallback` note, a failed fetch (or a cache served because the vendor
//! failed) is said on stderr in one line.

use accord_collateral::{Fetcher, Source, human};
use accord_core::evidence::CollateralRequest;
use accord_guest::atls::collateral::Fetch;
use accord_guest::atls::{CollateralSource, system_now};

/// Fetches collateral for the verifier through a [`Fetcher`].
#[derive(Debug)]
pub struct FetcherSource {
    fetcher: Fetcher,
    fallback: Option<String>,
}

impl FetcherSource {
    /// A source fetching through `fetcher`, silently (failures are logged
    /// by the verifier's caller).
    pub fn new(fetcher: Fetcher) -> Self {
        Self {
            fetcher,
            fallback: None,
        }
    }

    /// Says on stderr when a fetch fails, ending with `fallback` (what is
    /// used instead, e.g. "using the collateral the coordinator's evidence
    /// carries"), and when the cache is served because the vendor failed.
    #[must_use]
    pub fn announcing(mut self, fallback: impl Into<String>) -> Self {
        self.fallback = Some(fallback.into());
        self
    }

    /// The fetcher (its counters).
    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }
}

impl CollateralSource for FetcherSource {
    fn fetch<'a>(&'a self, request: &'a CollateralRequest) -> Fetch<'a> {
        Box::pin(async move {
            match self.fetcher.fetch_request(request, system_now()).await {
                Ok(answer) => {
                    if self.fallback.is_some() && answer.source() == Source::CacheVendorFailed {
                        let why = answer
                            .parts
                            .iter()
                            .find_map(|part| part.vendor_error.clone())
                            .unwrap_or_default();
                        eprintln!(
                            "collateral: {why}; using the cached {request} fetched {} ago",
                            human(answer.age())
                        );
                    }
                    Ok(answer.bytes)
                }
                Err(err) => {
                    if let Some(fallback) = &self.fallback {
                        eprintln!("collateral: cannot fetch {request}: {err}; {fallback}");
                    }
                    Err(err.to_string())
                }
            }
        })
    }
}
