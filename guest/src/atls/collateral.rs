//! Verification in service: the process-wide
//! [`ServiceVerifier`](accord_core::evidence::ServiceVerifier) and the
//! collateral path that feeds it.
//!
//! Every attested-TLS verification in this process goes through one
//! verifier ([`VERIFIER`], behind a mutex). It keeps the verified SEV-SNP
//! chains, the CRLs, VCEKs and TDX collateral it has authenticated, and
//! the newest CRL number and `tcbEvaluationDataNumber` it has seen: the
//! verifier, not the attester, decides how fresh collateral must be.
//!
//! Before a verification ([`prepare`]):
//! 1. the verifier lists what it [`needs`](ServiceVerifier::needs) (a VCEK
//!    not carried, a CRL or TDX collateral not held or near its
//!    nextUpdate), and each item is fetched through the
//!    [`CollateralSource`] (the shim, for a coordinator; a fetcher in
//!    tests and the demo) and [`offer`](ServiceVerifier::offer)ed, and
//!    again for what that reveals (the CRL of a version 2 report's
//!    product, known once its VCEK is held);
//! 2. what is still needed is taken from what the evidence carries (the
//!    CRL an attester attaches, [`SnpEvidence::crl`]); TDX collateral the
//!    evidence carries is judged by the verifier itself at
//!    [`verify`](ServiceVerifier::verify).
//!
//! An offer is kept only if the vendor's signature authenticates it under
//! the pinned roots (or the explicit test root a reference entry names)
//! and it is not older than what was seen: the source and the attester
//! can deny service, never make evidence pass. A source that fails leaves
//! the verifier to use what it holds, or to refuse by name
//! (`MissingCrl`, `StaleCrl`, `MissingCollateralFor`, …).
//!
//! [`refresh_own`] fetches (through the same source) what this process's
//! own evidence lacks, and [`attach_own`] puts the collateral the verifier
//! holds for it (its VCEK, CRL, TDX collateral) into that evidence, so
//! that peers, initializers and the CLI can verify it without reaching AMD
//! or Intel.

use std::future::Future;
use std::pin::Pin;
use std::sync::{LazyLock, Mutex, MutexGuard};

use accord_core::crypto::CryptoProvider;
use accord_core::evidence::collateral::{CollateralRequest, HwId, SnpSigner, TdxCa};
use accord_core::evidence::snp::AttestationReport;
use accord_core::evidence::tdx::Quote;
use accord_core::evidence::tdx::pck::PckExtension;
use accord_core::evidence::{Evidence, ReferenceValues, ServiceVerifier};
use accord_core::time::UnixTime;
use accord_core::x509::{Certificate, pem};

/// A boxed future of a fetch.
pub type Fetch<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + 'a>>;

/// Where vendor collateral comes from (untrusted: everything is
/// authenticated by the verifier).
pub trait CollateralSource: Send + Sync {
    /// The bytes for `request` as
    /// [`ServiceVerifier::offer`](ServiceVerifier::offer) takes them, or
    /// why they could not be had.
    fn fetch<'a>(&'a self, request: &'a CollateralRequest) -> Fetch<'a>;
}

/// The verifier every attested-TLS verification in this process shares.
pub static VERIFIER: LazyLock<Mutex<ServiceVerifier>> =
    LazyLock::new(|| Mutex::new(ServiceVerifier::new()));

/// The process-wide verifier, locked (a poisoned lock is taken over: the
/// verifier's state is only ever changed whole).
pub fn verifier() -> MutexGuard<'static, ServiceVerifier> {
    VERIFIER.lock().unwrap_or_else(|p| p.into_inner())
}

/// Fetches what the verifier needs for `evidence` through `source` and
/// offers it, then offers what the evidence carries for what is still
/// needed (see the module documentation). Failures are left for
/// verification to name (a carried CRL the verifier refused is named by
/// its refusal).
pub async fn prepare(
    evidence: &Evidence,
    reference: &ReferenceValues,
    at: UnixTime,
    source: Option<&dyn CollateralSource>,
    provider: &dyn CryptoProvider,
) {
    prepare_with(&VERIFIER, evidence, reference, at, source, provider).await;
}

/// [`prepare`] for another verifier than the process-wide one.
pub async fn prepare_with(
    verifier: &Mutex<ServiceVerifier>,
    evidence: &Evidence,
    reference: &ReferenceValues,
    at: UnixTime,
    source: Option<&dyn CollateralSource>,
    provider: &dyn CryptoProvider,
) {
    let verifier = || verifier.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(source) = source {
        fetch_needs(
            verifier,
            evidence,
            reference,
            at,
            source,
            provider,
            |request, err| {
                tracing::warn!("collateral: {request}: {err}");
            },
        )
        .await;
    }
    let Evidence::Snp(snp) = evidence else {
        return;
    };
    let Some(crl) = snp.crl.as_ref() else {
        return;
    };
    let mut verifier = verifier();
    for request in verifier.needs(evidence, reference, at) {
        if matches!(request, CollateralRequest::SnpCrl { .. }) {
            // Refused when it does not authenticate or is older than the
            // newest seen: the held one (if any) then decides, and with
            // none held the verifier names this refusal.
            let _ = verifier.offer(&request, crl, reference, at, provider);
        }
    }
}

/// How many rounds of [`ServiceVerifier::needs`] one preparation asks:
/// what a held item reveals is needed in the next (a VCEK fetched for a
/// version 2 report names its product, and so the CRL to fetch).
const NEEDS_ROUNDS: usize = 3;

/// Fetches through `source` and offers what the verifier needs, again for
/// what that reveals (at most [`NEEDS_ROUNDS`] rounds, each request asked
/// once); `log` gets each failure.
async fn fetch_needs<'v>(
    verifier: impl Fn() -> MutexGuard<'v, ServiceVerifier>,
    evidence: &Evidence,
    reference: &ReferenceValues,
    at: UnixTime,
    source: &dyn CollateralSource,
    provider: &dyn CryptoProvider,
    log: impl Fn(&CollateralRequest, String),
) {
    let mut asked: Vec<CollateralRequest> = Vec::new();
    for _ in 0..NEEDS_ROUNDS {
        let needs: Vec<CollateralRequest> = verifier()
            .needs(evidence, reference, at)
            .into_iter()
            .filter(|request| !asked.contains(request))
            .collect();
        if needs.is_empty() {
            return;
        }
        for request in needs {
            match source.fetch(&request).await {
                Ok(bytes) => {
                    if let Err(err) = verifier().offer(&request, &bytes, reference, at, provider) {
                        log(&request, format!("refused: {err}"));
                    }
                }
                Err(reason) => log(&request, reason),
            }
            asked.push(request);
        }
    }
}

/// Gets, through `source`, the collateral this process's own `evidence`
/// lacks (the CRL, the VCEK when the host has no certificate table, TDX
/// collateral), judged under the genuine vendor roots, then attaches what
/// is held ([`attach_own`]). Evidence whose platform attached its
/// collateral (the simulated chips) fetches nothing.
pub async fn refresh_own(evidence: &mut Evidence, source: Option<&dyn CollateralSource>) {
    refresh_own_with(&VERIFIER, evidence, source, super::system_now()).await;
}

/// [`refresh_own`] with another verifier, at `at`.
pub async fn refresh_own_with(
    verifier: &Mutex<ServiceVerifier>,
    evidence: &mut Evidence,
    source: Option<&dyn CollateralSource>,
    at: UnixTime,
) {
    let verifier = || verifier.lock().unwrap_or_else(|p| p.into_inner());
    let lacking = match &*evidence {
        Evidence::Snp(snp) => snp.crl.is_none() || snp.vcek.is_none(),
        Evidence::Tdx(tdx) => tdx.collateral.is_none(),
    };
    if lacking && let Some(source) = source {
        let genuine = ReferenceValues {
            snp: vec![Default::default()],
            tdx: vec![Default::default()],
        };
        let provider = accord_core::crypto::default_provider();
        fetch_needs(
            verifier,
            evidence,
            &genuine,
            at,
            source,
            provider,
            |request, err| {
                tracing::debug!("own collateral: {request}: {err}");
            },
        )
        .await;
    }
    attach_own_with(&verifier(), evidence);
}

/// Attaches the collateral the process-wide verifier holds for this
/// process's own `evidence` when the platform attached none: the SEV-SNP
/// CRL of its product and signing key, or the TDX collateral of its
/// FMSPC. (A verifier that holds newer collateral uses its own.)
pub fn attach_own(evidence: &mut Evidence) {
    attach_own_with(&verifier(), evidence);
}

/// [`attach_own`] from `verifier`.
pub fn attach_own_with(verifier: &ServiceVerifier, evidence: &mut Evidence) {
    match evidence {
        Evidence::Snp(snp) => {
            if snp.crl.is_some() {
                // The platform's own (the simulated chip's, signed by its
                // ARK, with its VCEK): a held CRL of the same product may
                // be another root's.
                return;
            }
            let Ok(report) = AttestationReport::parse(&snp.report) else {
                return;
            };
            let Some(product) = report.product_from_cpuid() else {
                return;
            };
            if snp.vcek.is_none() {
                let request = CollateralRequest::SnpVcek {
                    product,
                    hw_id: HwId(*report.chip_id),
                    tcb: report.reported_tcb,
                };
                snp.vcek = verifier.held_bytes(&request).map(<[u8]>::to_vec);
            }
            let request = CollateralRequest::SnpCrl {
                product,
                signer: SnpSigner::from(report.flags.signing_key),
            };
            if let Some(held) = verifier.held_bytes(&request) {
                snp.crl = Some(held.to_vec());
            }
        }
        Evidence::Tdx(tdx) => {
            if tdx.collateral.is_some() {
                return;
            }
            let Some((fmspc, ca)) = tdx_platform(&tdx.quote) else {
                return;
            };
            let request = CollateralRequest::TdxCollateral { fmspc, ca };
            if let Some(held) = verifier.held_bytes(&request) {
                tdx.collateral = Some(held.to_vec());
            }
        }
    }
}

/// The FMSPC and PCK CA of a quote's PCK certificate.
pub fn tdx_platform(quote: &[u8]) -> Option<([u8; 6], TdxCa)> {
    let quote = Quote::parse(quote).ok()?;
    let text = std::str::from_utf8(quote.pck_chain_pem).ok()?;
    let chain = pem::decode_all(text, "CERTIFICATE").ok()?;
    let leaf = Certificate::from_der(chain.first()?).ok()?;
    let extension = PckExtension::from_certificate(&leaf).ok()?;
    let ca = TdxCa::from_common_name(leaf.issuer_common_name()?)?;
    Some((extension.fmspc, ca))
}
