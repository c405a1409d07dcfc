//! The in-service verifier: evidence checked against collateral the
//! verifier holds and judges itself, sans IO.
//!
//! [`ServiceVerifier`] is what a coordinator keeps for its lifetime. Each
//! attestation goes through three steps, of which only the middle one does
//! IO, outside this crate:
//!
//! 1. [`ServiceVerifier::needs`] lists the [`CollateralRequest`]s that must
//!    be fetched before [`verify`](ServiceVerifier::verify) can succeed: a
//!    VCEK the evidence does not carry, a CRL that is not held or is
//!    within the refresh margin of its nextUpdate, TDX collateral that is
//!    not held or near its end.
//! 2. The caller fetches them from the untrusted side (the host shim, a
//!    cache, a proxy) and hands the bytes to
//!    [`offer`](ServiceVerifier::offer). They are kept only once a vendor
//!    signature authenticates them under the pinned roots (or the explicit
//!    test root a reference entry names), and only if they are not older
//!    than what was seen before. The host can deny service; it cannot lie.
//! 3. [`verify`](ServiceVerifier::verify) gives the same verdicts as
//!    [`verify_with_chains`](super::verify_with_chains), plus:
//!    - **SEV-SNP revocation**: the VCEK or VLEK CRL of the chain's
//!      product, signed by its ARK, must be held and current at the
//!      instant; otherwise [`EvidenceError::MissingCrl`] or
//!      [`EvidenceError::StaleCrl`] names it. When none is held and the
//!      evidence carries a CRL that was offered and refused, the error is
//!      that refusal (older than the newest seen, stale, not signed by the
//!      ARK): the verifier remembers the last refusals by the CRL's digest.
//!      A listed intermediate or leaf is refused by role and serial
//!      ([`SnpError::Revoked`](super::snp::SnpError)).
//!    - **TDX freshness decided by the verifier**: collateral the attester
//!      attaches is used only if it authenticates and is at least as new
//!      as the newest seen (then it becomes the held one); otherwise the
//!      held collateral is used, and with none held (or a stale one) the
//!      evidence is refused by name. The PCK and root CA CRLs inside the
//!      collateral apply as in offline verification, and
//!      `MinTCBEvaluationDataNumber` is enforced by the reference entry.
//!
//! Every validity window is re-checked at use: a CRL or collateral that
//! was current when offered is refused once past its nextUpdate.
//!
//! What the verifier remembers (`freshness.rs`): the newest CRL per
//! stream (by cRLNumber, then thisUpdate) and the newest
//! `tcbEvaluationDataNumber` per FMSPC (and of the QE identity), each
//! TDX mark and held collateral set per root (Intel's, or an entry's
//! INSECURE explicit root), so that the roots stay independent. That
//! memory is per process: a restart forgets the high-water marks, and the
//! first collateral offered afterwards sets them again, unless the caller
//! keeps them: [`ServiceVerifier::export_marks`] writes them as bytes
//! (`persist.rs`, versioned and bounds-checked) and
//! [`ServiceVerifier::raise_marks`] raises a verifier's marks to them (the
//! CLI keeps them in its workspace).
//!
//! The verifier is plain data (`&mut self` to record, no interior
//! mutability); a server wraps it in a mutex. `snp.rs` and `tdx.rs` hold
//! each platform's collateral; `freshness.rs` the marks; `persist.rs`
//! their encoding.
//!
//! In a server, one attestation is (the fetch is async and best effort:
//! a vendor that is down leaves `verify` to use what is held, or to refuse
//! by name):
//!
//! ```text
//! let needs = verifier.lock().needs(&evidence, &reference, at);
//! for request in needs {
//!     if let Ok(bytes) = fetch(&request).await {          // untrusted side
//!         let _ = verifier.lock().offer(&request, &bytes, &reference, at, crypto);
//!     }
//! }
//! // then, on the blocking pool:
//! let claims = verifier.lock().verify(&evidence, &reference, at, crypto)?;
//! ```

mod freshness;
mod persist;
mod snp;
mod tdx;

pub use persist::MarksError;

use alloc::vec::Vec;

use crate::crypto::CryptoProvider;
use crate::time::UnixTime;

use super::collateral::CollateralRequest;
use super::{Claims, Evidence, EvidenceError, ReferenceValues};

/// A CRL as the vendor serves it, for [`check_crl_issuer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VendorCrl<'a> {
    /// AMD's VCEK or VLEK CRL of a product, signed by its ARK.
    Snp {
        /// The product.
        product: super::snp::Product,
        /// VCEK or VLEK.
        signer: super::collateral::SnpSigner,
    },
    /// Intel's PCK CRL (signed by the PCK CA of `issuer_chain`) or Root CA
    /// CRL (signed by the root).
    Tdx {
        /// Which.
        role: super::tdx::error::CrlRole,
        /// The `SGX-PCK-CRL-Issuer-Chain` PEM (PCK CA, then root).
        issuer_chain: Option<&'a str>,
    },
}

/// Checks that `der` is a CRL signed by the issuer a [`ServiceVerifier`]
/// trusts for it under the roots `reference` names (AMD's or Intel's
/// pinned roots, or the entries' `InsecureTrustedRoot`s), with the same
/// functions [`ServiceVerifier::offer`] uses, but not its window nor the
/// freshness marks. For a fetcher, so that a CRL that would be refused
/// anyway is never cached. The error says why.
pub fn check_crl_issuer(
    crl: VendorCrl<'_>,
    der: &[u8],
    reference: &ReferenceValues,
    provider: &dyn CryptoProvider,
) -> Result<(), alloc::string::String> {
    use alloc::string::ToString;
    match crl {
        VendorCrl::Snp { product, signer } => {
            snp::check_crl_issuer(product, signer, der, &reference.snp, provider).map_err(|err| {
                match err {
                    EvidenceError::CollateralRefused { reason, .. } => reason,
                    other => other.to_string(),
                }
            })
        }
        VendorCrl::Tdx { role, issuer_chain } => {
            tdx::check_crl_issuer(role, der, issuer_chain, &reference.tdx, provider)
        }
    }
}

/// How long before a nextUpdate collateral is listed as needing a refresh
/// by default: one day.
pub const DEFAULT_REFRESH_MARGIN_SECS: i64 = 24 * 60 * 60;

/// Counters of refusals, for metrics. Each counts verifications (or
/// offers) refused for that reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// A CRL or TDX collateral held was past its window.
    pub refused_stale: u64,
    /// A certificate was on a CRL (SNP chain, TDX PCK chain or signer).
    pub refused_revoked: u64,
    /// Collateral older than the newest seen: offers refused, and
    /// attached TDX collateral passed over (the held one is used instead).
    pub refused_older: u64,
    /// A CRL, VCEK or TDX collateral was neither carried nor held.
    pub refused_missing: u64,
    /// Offers kept.
    pub offers_kept: u64,
    /// Offers refused (did not authenticate, wrong item, stale or older).
    pub offers_refused: u64,
}

/// One piece of collateral held, for metrics and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldCollateral {
    /// What it is.
    pub which: CollateralRequest,
    /// When it was issued (CRL thisUpdate, TCB info issueDate); `None` for
    /// a VCEK.
    pub issued: Option<UnixTime>,
    /// When it must be replaced (CRL nextUpdate, end of the collateral's
    /// window, the VCEK's notAfter).
    pub next_update: UnixTime,
}

impl HeldCollateral {
    /// Seconds since it was issued, at `at` (0 when unknown or in the
    /// future).
    pub fn age_secs(&self, at: UnixTime) -> u64 {
        self.issued.map_or(0, |issued| {
            u64::try_from(at.0.saturating_sub(issued.0)).unwrap_or(0)
        })
    }
}

/// The in-service verifier (see the module documentation).
#[derive(Clone, Debug)]
pub struct ServiceVerifier {
    refresh_margin: i64,
    marks: freshness::Marks,
    snp: snp::SnpHeld,
    tdx: tdx::TdxHeld,
    counters: Counters,
}

impl Default for ServiceVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ServiceVerifier {
    /// A verifier holding nothing, with the default refresh margin.
    pub fn new() -> Self {
        Self {
            refresh_margin: DEFAULT_REFRESH_MARGIN_SECS,
            marks: freshness::Marks::default(),
            snp: snp::SnpHeld::default(),
            tdx: tdx::TdxHeld::default(),
            counters: Counters::default(),
        }
    }

    /// Lists collateral as needing a refresh `secs` before its nextUpdate.
    pub fn with_refresh_margin(mut self, secs: i64) -> Self {
        self.refresh_margin = secs.max(0);
        self
    }

    /// What must be fetched before [`verify`](Self::verify) of `evidence`
    /// can succeed at `at`, without duplicates. Empty when everything is
    /// held and not within the refresh margin. Evidence that does not
    /// parse needs nothing (verification will name what is wrong with it).
    pub fn needs(
        &self,
        evidence: &Evidence,
        reference: &ReferenceValues,
        at: UnixTime,
    ) -> Vec<CollateralRequest> {
        let mut out = Vec::new();
        match evidence {
            Evidence::Snp(snp) => {
                self.snp
                    .needs(snp, &reference.snp, at, self.refresh_margin, &mut out)
            }
            Evidence::Tdx(tdx) => {
                self.tdx
                    .needs(tdx, &reference.tdx, at, self.refresh_margin, &mut out)
            }
        }
        let mut unique: Vec<CollateralRequest> = Vec::with_capacity(out.len());
        for request in out {
            if !unique.contains(&request) {
                unique.push(request);
            }
        }
        unique
    }

    /// Takes vendor bytes for `request` from the untrusted side and keeps
    /// them if they authenticate at `at` under the roots `reference` names
    /// (AMD's or Intel's pinned roots, or an entry's explicit test root),
    /// are what was requested, are current, and are not older than the
    /// newest seen. On refusal nothing held changes.
    ///
    /// - `SnpVcek`: the certificate, DER or PEM.
    /// - `SnpCrl`: the CRL, DER.
    /// - `SnpChain`: accepted and ignored when it is exactly the pinned (or
    ///   explicit) ASK/ASVK and ARK; intermediates always come from the
    ///   roots.
    /// - `TdxCollateral`: [`Collateral`](super::tdx::Collateral) JSON,
    ///   kept under the first root the TDX entries name (Intel's for an
    ///   entry naming none) that authenticates it.
    pub fn offer(
        &mut self,
        request: &CollateralRequest,
        bytes: &[u8],
        reference: &ReferenceValues,
        at: UnixTime,
        provider: &dyn CryptoProvider,
    ) -> Result<(), EvidenceError> {
        let result = match request {
            CollateralRequest::SnpVcek { .. }
            | CollateralRequest::SnpChain { .. }
            | CollateralRequest::SnpCrl { .. } => self.snp.offer(
                request,
                bytes,
                &reference.snp,
                at,
                provider,
                &mut self.marks,
            ),
            CollateralRequest::TdxCollateral { fmspc, ca } => self.tdx.offer(
                *fmspc,
                *ca,
                bytes,
                &reference.tdx,
                at,
                provider,
                &mut self.marks,
            ),
        };
        match &result {
            Ok(()) => self.counters.offers_kept += 1,
            Err(err) => {
                self.counters.offers_refused += 1;
                self.count(err);
            }
        }
        result
    }

    /// Verifies `evidence` at `at` against `reference` with the collateral
    /// held (see the module documentation). Records attached TDX
    /// collateral that is newer, and chains it verified.
    pub fn verify(
        &mut self,
        evidence: &Evidence,
        reference: &ReferenceValues,
        at: UnixTime,
        provider: &dyn CryptoProvider,
    ) -> Result<Claims, EvidenceError> {
        let result = match evidence {
            Evidence::Snp(snp) => self
                .snp
                .verify(snp, &reference.snp, at, provider)
                .map(|claims| Claims::Snp(alloc::boxed::Box::new(claims))),
            Evidence::Tdx(tdx) => self
                .tdx
                .verify(tdx, &reference.tdx, at, provider, &mut self.marks)
                .map(|claims| Claims::Tdx(alloc::boxed::Box::new(claims))),
        };
        if let Err(err) = &result {
            self.count(err);
        }
        result
    }

    fn count(&mut self, err: &EvidenceError) {
        match err {
            EvidenceError::StaleCrl { .. } | EvidenceError::StaleCollateral { .. } => {
                self.counters.refused_stale += 1;
            }
            EvidenceError::OlderThanSeen { .. } => self.counters.refused_older += 1,
            EvidenceError::MissingCrl { .. }
            | EvidenceError::MissingCollateralFor { .. }
            | EvidenceError::MissingVcek
            | EvidenceError::MissingCollateral => self.counters.refused_missing += 1,
            EvidenceError::Snp(super::snp::SnpError::Revoked { .. })
            | EvidenceError::Tdx(super::tdx::TdxError::Revoked(_)) => {
                self.counters.refused_revoked += 1;
            }
            _ => {}
        }
    }

    /// The refusal counters.
    pub fn counters(&self) -> Counters {
        Counters {
            refused_older: self.counters.refused_older + self.tdx.attached_older,
            ..self.counters
        }
    }

    /// Everything held: CRLs, VCEKs and TDX collateral.
    pub fn held(&self) -> Vec<HeldCollateral> {
        let mut out = self.snp.held();
        out.extend(self.tdx.held());
        out
    }

    /// The authenticated vendor bytes held for `request`, as they were
    /// offered or attached (a CRL's or VCEK's DER, TDX collateral JSON),
    /// so a coordinator can send its own collateral with its evidence.
    /// `None` when nothing is held for it (and for `SnpChain`, which comes
    /// from the pinned roots).
    pub fn held_bytes(&self, request: &CollateralRequest) -> Option<&[u8]> {
        match request {
            CollateralRequest::TdxCollateral { fmspc, ca } => self.tdx.bytes(*fmspc, *ca),
            _ => self.snp.bytes(request),
        }
    }

    /// How many collateral items are held (CRLs, VCEKs, TDX collateral
    /// sets).
    pub fn held_count(&self) -> usize {
        self.snp.held_count() + self.tdx.held_count()
    }

    /// How many verified SEV-SNP chains are cached.
    pub fn chains_cached(&self) -> usize {
        self.snp.chains_cached()
    }

    /// The held CRL or TDX collateral issued longest ago (VCEKs are not
    /// dated collateral), for the "age of the oldest collateral in use"
    /// metric: among those still usable at `at` (not past their
    /// nextUpdate). `None` when nothing dated is usable.
    pub fn oldest_in_use(&self, at: UnixTime) -> Option<HeldCollateral> {
        self.held()
            .into_iter()
            .filter(|held| held.issued.is_some() && at <= held.next_update)
            .min_by_key(|held| held.issued)
    }

    /// The high-water marks (newest CRL per stream, newest
    /// `tcbEvaluationDataNumber` per root and FMSPC and of the QE identity
    /// per root) as bytes, for [`raise_marks`](Self::raise_marks) in a
    /// later run.
    pub fn export_marks(&self) -> Vec<u8> {
        persist::encode(&self.marks)
    }

    /// Raises the high-water marks to those [`export_marks`](Self::export_marks)
    /// wrote (a mark is never lowered): collateral older than what an
    /// earlier run saw is then refused. Bytes that are not marks of a
    /// known version, out of bounds, not canonical or with trailing bytes
    /// are refused and change nothing.
    pub fn raise_marks(&mut self, bytes: &[u8]) -> Result<(), MarksError> {
        let marks = persist::decode(bytes)?;
        self.marks.raise_to(&marks);
        Ok(())
    }

    /// [`raise_marks`](Self::raise_marks), by value.
    pub fn with_marks(mut self, bytes: &[u8]) -> Result<Self, MarksError> {
        self.raise_marks(bytes)?;
        Ok(self)
    }

    /// The newest `tcbEvaluationDataNumber` seen for `fmspc` under
    /// Intel's root.
    pub fn newest_tcb_evaluation(&self, fmspc: [u8; 6]) -> Option<u32> {
        self.newest_tcb_evaluation_under(fmspc, None)
    }

    /// The newest `tcbEvaluationDataNumber` seen for `fmspc` under `root`
    /// (an entry's `InsecureTrustedRoot`; Intel's when `None`). Each root
    /// has its own marks.
    pub fn newest_tcb_evaluation_under(
        &self,
        fmspc: [u8; 6],
        root: Option<&super::tdx::TrustedRoot>,
    ) -> Option<u32> {
        let der = root.map_or(super::tdx::roots::INTEL_SGX_ROOT_CA_DER, |r| {
            r.root_ca.as_slice()
        });
        self.marks.tcb_info(der, fmspc)
    }
}
