//! The shim's collateral service: answers the agent's
//! [`ShimRequest::Collateral`](accord_core::protocol::shim::ShimRequest)
//! with vendor bytes fetched by an [`accord_collateral::Fetcher`] (AMD's
//! KDS, Intel's PCS v4 or a PCCS, an HTTP proxy, the on-disk cache).
//!
//! **No trust decision is made here.** A [`CollateralRequest`] is mapped to
//! the fetcher's items by [`Fetcher::fetch_request`] (the one mapping the
//! CLI and the demo use too: the VCEK by product, hwID and TCB; the
//! ASK/ARK chain; the VCEK or VLEK CRL; the four PCS parts of TDX
//! collateral, assembled into core's collateral JSON), and the bytes go to the agent,
//! whose `ServiceVerifier::offer` authenticates them under its pinned
//! roots. A lying vendor, proxy or cache (or this shim) can deny service,
//! never make evidence pass.
//!
//! Each answer is counted by kind and outcome for `/metrics`
//! ([`CollateralStats`]); the fetcher counts cache hits and vendor
//! fetches itself.

use std::sync::Mutex;
use std::time::Duration;

use accord_collateral::{Fetched, Fetcher, Source};
use accord_core::evidence::collateral::CollateralRequest;
use accord_core::protocol::shim::{CollateralSource, ShimResponse};
use accord_core::time::UnixTime;

/// Counters of the collateral answers, by kind and outcome.
#[derive(Debug, Default)]
pub struct CollateralStats {
    counts: Mutex<Vec<((&'static str, &'static str), u64)>>,
}

impl CollateralStats {
    fn count(&self, kind: &'static str, outcome: &'static str) {
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        match counts.iter_mut().find(|(key, _)| *key == (kind, outcome)) {
            Some((_, n)) => *n += 1,
            None => counts.push(((kind, outcome), 1)),
        }
    }

    /// (kind, outcome, count), sorted: kind `snp_vcek`, `snp_chain`,
    /// `snp_crl`, `tdx_collateral`; outcome `vendor`, `cache`,
    /// `cache_vendor_failed`, `failed`.
    pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out: Vec<_> = self
            .counts
            .lock()
            .map(|counts| counts.iter().map(|((k, o), n)| (*k, *o, *n)).collect())
            .unwrap_or_default();
        out.sort_unstable();
        out
    }
}

/// The fetcher and its counters.
#[derive(Debug)]
pub struct CollateralService {
    fetcher: Fetcher,
    stats: CollateralStats,
}

fn kind_of(request: &CollateralRequest) -> &'static str {
    match request {
        CollateralRequest::SnpVcek { .. } => "snp_vcek",
        CollateralRequest::SnpChain { .. } => "snp_chain",
        CollateralRequest::SnpCrl { .. } => "snp_crl",
        CollateralRequest::TdxCollateral { .. } => "tdx_collateral",
    }
}

fn source_of(parts: &[&Fetched]) -> (CollateralSource, u64, &'static str) {
    let from_vendor = parts.iter().any(|f| f.source == Source::Vendor);
    let vendor_failed = parts.iter().any(|f| f.source == Source::CacheVendorFailed);
    let age = parts
        .iter()
        .map(|f| f.age)
        .max()
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let (source, outcome) = if vendor_failed {
        (CollateralSource::Cache, "cache_vendor_failed")
    } else if from_vendor {
        (CollateralSource::Vendor, "vendor")
    } else {
        (CollateralSource::Cache, "cache")
    };
    (source, age, outcome)
}

impl CollateralService {
    /// A service fetching with `fetcher`.
    pub fn new(fetcher: Fetcher) -> Self {
        Self {
            fetcher,
            stats: CollateralStats::default(),
        }
    }

    /// The fetcher (its counters: cache hits, vendor fetches).
    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// The answers given, by kind and outcome.
    pub fn stats(&self) -> &CollateralStats {
        &self.stats
    }

    /// Fetches what `request` names for use at `at`: `Collateral` or
    /// `Failed` naming the item and why.
    pub async fn answer(&self, request: &CollateralRequest, at: UnixTime) -> ShimResponse {
        let kind = kind_of(request);
        let result = self.obtain(request, at).await;
        match result {
            Ok((bytes, source, age_secs, outcome)) => {
                self.stats.count(kind, outcome);
                ShimResponse::Collateral {
                    bytes,
                    source,
                    age_secs,
                }
            }
            Err(reason) => {
                self.stats.count(kind, "failed");
                tracing::warn!("collateral: {request}: {reason}");
                ShimResponse::Failed {
                    reason: format!("{request}: {reason}"),
                }
            }
        }
    }

    async fn obtain(
        &self,
        request: &CollateralRequest,
        at: UnixTime,
    ) -> Result<(Vec<u8>, CollateralSource, u64, &'static str), String> {
        let answer = self
            .fetcher
            .fetch_request(request, at)
            .await
            .map_err(|err| err.to_string())?;
        let parts: Vec<&Fetched> = answer.parts.iter().collect();
        let (source, age, outcome) = source_of(&parts);
        Ok((answer.bytes, source, age, outcome))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accord_core::evidence::collateral::SnpSigner;
    use accord_core::evidence::snp::Product;

    #[tokio::test]
    async fn an_unreachable_vendor_is_a_failure_naming_the_item() {
        // Offline and no cache: nothing can be served.
        let service = CollateralService::new(Fetcher::new(
            None,
            accord_collateral::Endpoints::default(),
            None,
        ));
        let request = CollateralRequest::SnpCrl {
            product: Product::Milan,
            signer: SnpSigner::Vcek,
        };
        match service.answer(&request, UnixTime(1_700_000_000)).await {
            ShimResponse::Failed { reason } => {
                assert!(reason.contains("the VCEK CRL of Milan"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(service.stats().snapshot(), vec![("snp_crl", "failed", 1)]);
    }
}
