//! One mapping from core's [`CollateralRequest`] (what the in-service
//! verifier says it needs) to the fetcher's items, shared by the shim's
//! collateral service, the CLI's network commands and the demo:
//!
//! | request | fetched | answered |
//! |---|---|---|
//! | `SnpVcek` | [`Item::Vcek`] by product, hwID (the product's length) and the decoded REPORTED_TCB | the certificate's DER |
//! | `SnpChain` | [`Item::CertChain`] | the PEM chain |
//! | `SnpCrl` | [`Item::Crl`] | the CRL's DER |
//! | `TdxCollateral` | TCB info, QE identity, PCK CRL and root CA CRL ([`fetch_tdx_collateral`]) | core's collateral JSON |
//!
//! The answer's bytes are what `ServiceVerifier::offer` takes. Nothing is
//! trusted here: the verifier authenticates them under its roots.

use std::time::Duration;

use accord_core::crypto::default_provider;
use accord_core::evidence::collateral::{CollateralRequest, SnpSigner, TdxCa};
use accord_core::evidence::snp::TcbVersion;
use accord_core::evidence::tdx::error::CrlRole;
use accord_core::evidence::{ReferenceValues, VendorCrl, check_crl_issuer};
use accord_core::time::UnixTime;

use crate::evidence::fetch_tdx_collateral;
use crate::fetch::{FetchError, Fetched, Fetcher, Source};
use crate::item::{Item, KeyKind, PckCa};

/// The fetcher's answer to a [`CollateralRequest`].
#[derive(Clone, Debug)]
pub struct RequestAnswer {
    /// The bytes `ServiceVerifier::offer` takes for the request.
    pub bytes: Vec<u8>,
    /// The items they were made of (one, or TDX's four parts), with where
    /// each came from.
    pub parts: Vec<Fetched>,
}

impl RequestAnswer {
    /// Where the answer came from as a whole: [`Source::CacheVendorFailed`]
    /// if any part was served from the cache because the vendor failed,
    /// else [`Source::Vendor`] if any part was fetched, else
    /// [`Source::Cache`].
    pub fn source(&self) -> Source {
        let any = |source| self.parts.iter().any(|part| part.source == source);
        if any(Source::CacheVendorFailed) {
            Source::CacheVendorFailed
        } else if any(Source::Vendor) {
            Source::Vendor
        } else {
            Source::Cache
        }
    }

    /// The age of its oldest part.
    pub fn age(&self) -> Duration {
        self.parts
            .iter()
            .map(|part| part.age)
            .max()
            .unwrap_or(Duration::ZERO)
    }
}

/// The fetcher's key family for an SEV-SNP signer.
pub fn key_kind(signer: SnpSigner) -> KeyKind {
    match signer {
        SnpSigner::Vcek => KeyKind::Vcek,
        SnpSigner::Vlek => KeyKind::Vlek,
    }
}

/// The fetcher's PCK CA for a TDX one.
pub fn pck_ca(ca: TdxCa) -> PckCa {
    match ca {
        TdxCa::Platform => PckCa::Platform,
        TdxCa::Processor => PckCa::Processor,
    }
}

/// The one item of an AMD request; `None` for TDX collateral, fetched in
/// four parts. A REPORTED_TCB that does not decode for the product is an
/// error.
pub fn snp_item(request: &CollateralRequest) -> Result<Option<Item>, String> {
    Ok(Some(match request {
        CollateralRequest::SnpVcek {
            product,
            hw_id,
            tcb,
        } => Item::Vcek {
            product: *product,
            hw_id: hw_id.for_product(*product).to_vec(),
            tcb: TcbVersion::decode(*tcb, *product)
                .map_err(|_| format!("REPORTED_TCB {tcb:#018x} does not decode for {product}"))?,
        },
        CollateralRequest::SnpChain { product, signer } => Item::CertChain {
            key: key_kind(*signer),
            product: *product,
        },
        CollateralRequest::SnpCrl { product, signer } => Item::Crl {
            key: key_kind(*signer),
            product: *product,
        },
        CollateralRequest::TdxCollateral { .. } => return Ok(None),
    }))
}

impl Fetcher {
    /// Obtains what `request` names for use at `at` (see the module
    /// documentation), through the cache.
    pub async fn fetch_request(
        &self,
        request: &CollateralRequest,
        at: UnixTime,
    ) -> Result<RequestAnswer, FetchError> {
        if let CollateralRequest::TdxCollateral { fmspc, ca } = request {
            let fetched = fetch_tdx_collateral(self, *fmspc, pck_ca(*ca), at).await?;
            return Ok(RequestAnswer {
                bytes: fetched.collateral.to_json().into_bytes(),
                parts: fetched.parts,
            });
        }
        let item = snp_item(request)
            .map_err(|reason| FetchError(format!("{request}: {reason}")))?
            .ok_or_else(|| FetchError(format!("{request}: not an AMD item")))?;
        let fetched = self.fetch_authenticated(&item, at).await?;
        Ok(RequestAnswer {
            bytes: fetched.body.clone(),
            parts: vec![fetched],
        })
    }
}

/// The check a fetched `item` must pass to be served or cached: a CRL
/// must be signed by the issuer the verifier trusts for it under the roots
/// `trust` names (core's [`check_crl_issuer`], the signature check of
/// `ServiceVerifier::offer`); anything else is left to the verifier.
fn crl_check<'a>(
    item: &Item,
    trust: &'a ReferenceValues,
) -> impl Fn(&[u8], Option<&str>) -> Result<(), String> + Sync + 'a {
    let item = item.clone();
    move |body: &[u8], issuer_chain: Option<&str>| {
        let crl = match item {
            Item::Crl { key, product } => VendorCrl::Snp {
                product,
                signer: match key {
                    KeyKind::Vcek => SnpSigner::Vcek,
                    KeyKind::Vlek => SnpSigner::Vlek,
                },
            },
            Item::PckCrl { .. } => VendorCrl::Tdx {
                role: CrlRole::Pck,
                issuer_chain,
            },
            Item::RootCaCrl => VendorCrl::Tdx {
                role: CrlRole::RootCa,
                issuer_chain,
            },
            _ => return Ok(()),
        };
        check_crl_issuer(crl, body, trust, default_provider())
    }
}

impl Fetcher {
    /// Obtains `item` for use at `at`, serving and caching a CRL only if it
    /// is signed by the issuer the verifier trusts for it (see
    /// [`Fetcher::trusting`]); used for every item of
    /// [`fetch_request`](Self::fetch_request) and of
    /// [`fetch_tdx_collateral`].
    pub async fn fetch_authenticated(
        &self,
        item: &Item,
        at: UnixTime,
    ) -> Result<Fetched, FetchError> {
        self.fetch_checked(item, at, &crl_check(item, self.trust()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::Endpoints;
    use accord_core::evidence::collateral::HwId;
    use accord_core::evidence::snp::Product;

    #[test]
    fn requests_map_to_the_kds_items() {
        let vcek = CollateralRequest::SnpVcek {
            product: Product::Turin,
            hw_id: HwId([7; 64]),
            tcb: 0,
        };
        match snp_item(&vcek).unwrap().unwrap() {
            Item::Vcek { product, hw_id, .. } => {
                assert_eq!(product, Product::Turin);
                assert_eq!(hw_id, vec![7; 8], "Turin's hwID is 8 bytes");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            snp_item(&CollateralRequest::SnpCrl {
                product: Product::Genoa,
                signer: SnpSigner::Vlek
            })
            .unwrap(),
            Some(Item::Crl {
                key: KeyKind::Vlek,
                product: Product::Genoa
            })
        );
        assert_eq!(
            snp_item(&CollateralRequest::SnpChain {
                product: Product::Milan,
                signer: SnpSigner::Vcek
            })
            .unwrap(),
            Some(Item::CertChain {
                key: KeyKind::Vcek,
                product: Product::Milan
            })
        );
        assert_eq!(
            snp_item(&CollateralRequest::TdxCollateral {
                fmspc: [0; 6],
                ca: TdxCa::Platform
            })
            .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn an_offline_fetcher_without_cache_names_the_item() {
        let fetcher = Fetcher::new(None, Endpoints::default(), None);
        let request = CollateralRequest::SnpCrl {
            product: Product::Milan,
            signer: SnpSigner::Vcek,
        };
        let err = fetcher
            .fetch_request(&request, UnixTime(1_700_000_000))
            .await
            .unwrap_err();
        assert!(err.0.contains("the VCEK CRL for Milan"), "{err}");
    }
}
