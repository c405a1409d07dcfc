//! TDX collateral held in service: one verified collateral set per FMSPC,
//! PCK CA and root, chosen by the verifier rather than the attester.
//!
//! Collateral is authenticated once, when offered or first attached
//! ([`VerifiedCollateral::verify_with_root`]: the signatures on the TCB
//! info, QE identity and both CRLs, chained to the pinned Intel root, or
//! to the INSECURE explicit root a reference entry names), and each quote
//! is then checked against it with [`tdx::verify_with_reference`], which
//! re-checks the collateral's window at the quote's instant, applies the
//! PCK CRL and root CA CRL to the quote's PCK chain and requires that
//! chain to end at the collateral's root.
//!
//! Roots, as in offline verification: an offer is kept under the first
//! root the TDX entries name (Intel's when an entry names none) that
//! authenticates it, and each entry judges a quote only with collateral
//! held (or attached and authenticated) under its own root. An entry with
//! a simulated root thus never accepts a quote judged by Intel's
//! collateral, nor a genuine entry one judged by simulated collateral.
//! The freshness marks are per root as well (`freshness.rs`).

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::crypto::CryptoProvider;
use crate::time::UnixTime;
use crate::x509::{Certificate, Crl, pem};

use super::super::collateral::{CollateralRequest, TdxCa};
use super::super::tdx::{
    self, Collateral, Quote, TdxClaims, TdxError, TdxReferenceValues, TrustedRoot,
    VerifiedCollateral, pck::PckExtension, roots::INTEL_SGX_ROOT_CA_DER,
};
use super::super::{EvidenceError, TdxEvidence};
use super::HeldCollateral;
use super::freshness::{Below, CrlVersion, Marks, StreamKey};

/// A collateral set that authenticated, with what freshness is judged by.
#[derive(Clone, Debug)]
struct Authenticated {
    fmspc: [u8; 6],
    ca: TdxCa,
    /// SHA-256 of the bytes it came from (to recognise it when attached
    /// again).
    source: [u8; 32],
    /// The bytes (collateral JSON).
    bytes: Vec<u8>,
    verified: VerifiedCollateral,
    tcb_evaluation: u32,
    qe_evaluation: u32,
    pck_crl: (StreamKey, CrlVersion),
    root_crl: (StreamKey, CrlVersion),
}

/// How many platforms (PCK chains) each held collateral set remembers.
const PLATFORM_CAPACITY: usize = 64;

impl Authenticated {
    fn which(&self) -> CollateralRequest {
        CollateralRequest::TdxCollateral {
            fmspc: self.fmspc,
            ca: self.ca,
        }
    }

    /// Whether it is for platform (`fmspc`, `ca`) under `root` (DER).
    fn is(&self, fmspc: [u8; 6], ca: TdxCa, root: &[u8]) -> bool {
        self.fmspc == fmspc && self.ca == ca && self.verified.root() == root
    }

    /// Whether it is at least as new as every mark of its root.
    fn check(&self, marks: &Marks) -> Result<(), Below> {
        let root = self.verified.root();
        marks.check_tcb_info(root, self.fmspc, self.tcb_evaluation)?;
        marks.check_qe_identity(root, self.qe_evaluation)?;
        marks.check_crl(&self.pck_crl.0, &self.pck_crl.1)?;
        marks.check_crl(&self.root_crl.0, &self.root_crl.1)
    }

    fn record(&self, marks: &mut Marks) {
        marks.record_tdx(
            self.verified.root(),
            self.fmspc,
            self.tcb_evaluation,
            self.qe_evaluation,
        );
        marks.record_crl(self.pck_crl.0, self.pck_crl.1.clone());
        marks.record_crl(self.root_crl.0, self.root_crl.1.clone());
    }
}

/// The DER of the root an entry names: Intel's pinned root when `None`.
fn root_der(root: Option<&TrustedRoot>) -> &[u8] {
    root.map_or(INTEL_SGX_ROOT_CA_DER, |root| root.root_ca.as_slice())
}

/// The distinct roots the entries name, in order (by DER: an explicit
/// root that is Intel's is Intel's); Intel's alone when there are none.
fn distinct_roots(entries: &[TdxReferenceValues]) -> Vec<Option<&TrustedRoot>> {
    let mut roots: Vec<Option<&TrustedRoot>> = Vec::new();
    for entry in entries {
        let root = entry.insecure_trusted_root.as_ref();
        if !roots.iter().any(|r| root_der(*r) == root_der(root)) {
            roots.push(root);
        }
    }
    if roots.is_empty() {
        roots.push(None);
    }
    roots
}

/// See [`check_crl_issuer`](super::check_crl_issuer): signed under the
/// first root the entries name (Intel's when none), or why not under each.
pub fn check_crl_issuer(
    role: tdx::error::CrlRole,
    der: &[u8],
    issuer_chain: Option<&str>,
    entries: &[TdxReferenceValues],
    provider: &dyn CryptoProvider,
) -> Result<(), String> {
    let roots = distinct_roots(entries);
    let mut reasons = Vec::new();
    for root in &roots {
        match tdx::verify::check_crl_issuer(role, der, issuer_chain, *root, provider) {
            Ok(()) => return Ok(()),
            Err(err) if roots.len() == 1 => reasons.push(err.to_string()),
            Err(err) => reasons.push(alloc::format!("under {}: {err}", root_name(*root))),
        }
    }
    Err(reasons.join("; "))
}

/// How a root is named in errors.
fn root_name(root: Option<&TrustedRoot>) -> &'static str {
    match root {
        None => "Intel's SGX Root CA",
        Some(_) => "the entry's InsecureTrustedRoot",
    }
}

/// Whether the PEM chain a quote carries contains `root` (DER): a hint,
/// not authentication, to pick among several roots the collateral a
/// quote needs (the quote is verified against it afterwards).
fn chain_contains(quote: &Quote<'_>, root: &[u8]) -> bool {
    let Ok(mut rest) = core::str::from_utf8(quote.pck_chain_pem) else {
        return false;
    };
    let mut buffer = [0u8; tdx::verify::MAX_PCK_CERT_LEN];
    while rest.contains("-----BEGIN ") {
        match pem::decode_first(rest, "CERTIFICATE", &mut buffer) {
            Ok((der, consumed)) => {
                if der == root {
                    return true;
                }
                rest = rest.get(consumed..).unwrap_or("");
            }
            Err(_) => return false,
        }
    }
    false
}

/// The roots (of the entries) to judge `quote` under: with several, those its
/// PCK chain carries (a quote verifies only under the root its chain ends
/// at), or all when it carries none of them (so that the verdict names
/// each failure).
fn roots_for<'e>(
    quote: &Quote<'_>,
    roots: Vec<Option<&'e TrustedRoot>>,
) -> Vec<Option<&'e TrustedRoot>> {
    if roots.len() == 1 {
        return roots;
    }
    let carried: Vec<Option<&TrustedRoot>> = roots
        .iter()
        .copied()
        .filter(|root| chain_contains(quote, root_der(*root)))
        .collect();
    if carried.is_empty() { roots } else { carried }
}

/// Checks a quote against each entry naming `root` with `collateral`
/// (authenticated under that root), as offline verification does: the
/// first entry that accepts it wins; with one entry its error is
/// returned as is.
fn verify_entries(
    collateral: &VerifiedCollateral,
    evidence: &TdxEvidence,
    entries: &[TdxReferenceValues],
    root: &[u8],
    at: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<TdxClaims, EvidenceError> {
    let mut reasons = Vec::new();
    let entries: Vec<&TdxReferenceValues> = entries
        .iter()
        .filter(|e| root_der(e.insecure_trusted_root.as_ref()) == root)
        .collect();
    for entry in &entries {
        let expected = match entry.expect() {
            Ok(expected) => expected,
            Err(err) => {
                reasons.push(err.to_string());
                continue;
            }
        };
        match tdx::verify_with_reference(collateral, &evidence.quote, at, provider, &expected) {
            Ok(verified) => return Ok(verified.to_claims()),
            Err(err) if entries.len() == 1 => return Err(EvidenceError::Tdx(err)),
            Err(err) => reasons.push(err.to_string()),
        }
    }
    Err(EvidenceError::NoEntryMatched(reasons))
}

/// Which collateral a quote is checked against.
enum Choice {
    /// The one held for its platform.
    Held,
    /// Attached collateral for another platform, used once and not kept.
    Once(alloc::boxed::Box<Authenticated>),
}

/// The TDX part of a [`ServiceVerifier`](super::ServiceVerifier).
#[derive(Clone, Debug, Default)]
pub struct TdxHeld {
    held: Vec<Authenticated>,
    /// Attached collateral passed over for being older than the newest
    /// seen.
    pub attached_older: u64,
    /// SHA-256 of attached collateral that authenticated under a root
    /// (DER) but was older than a mark of that root (most recent last):
    /// marks only rise, so it stays too old and is not authenticated
    /// again.
    passed_over: alloc::collections::VecDeque<([u8; 32], Vec<u8>, EvidenceError)>,
}

/// How many passed-over attachments are remembered.
const PASSED_OVER_CAPACITY: usize = 16;

/// The FMSPC and PCK CA of the platform that produced a quote, from the
/// PCK certificate it carries (not yet authenticated: it only selects
/// collateral, and the quote is then verified against it).
fn platform(quote: &Quote<'_>) -> Result<([u8; 6], TdxCa), TdxError> {
    let pck_err = |error| TdxError::Certificate {
        role: tdx::error::CertRole::PckLeaf,
        error,
    };
    let text = core::str::from_utf8(quote.pck_chain_pem)
        .map_err(|_| pck_err(crate::x509::X509Error::Pem))?;
    // The leaf is the first block; decoded on the stack.
    let mut buffer = [0u8; tdx::verify::MAX_PCK_CERT_LEN];
    let (leaf, _) = pem::decode_first(text, "CERTIFICATE", &mut buffer).map_err(pck_err)?;
    let cert = Certificate::from_der(leaf).map_err(pck_err)?;
    let extension = PckExtension::from_certificate(&cert)?;
    let ca = cert
        .issuer_common_name()
        .and_then(TdxCa::from_common_name)
        .ok_or(TdxError::UnexpectedSubject(tdx::error::CertRole::PckCa))?;
    Ok((extension.fmspc, ca))
}

/// The stream of a CRL under `root` (DER): its label and a hash of the
/// root and its issuer, so that each root's CRLs have their own marks.
fn crl_stream(
    label: &'static str,
    der: &[u8],
    root: &[u8],
    provider: &dyn CryptoProvider,
) -> Result<(StreamKey, CrlVersion), TdxError> {
    let role = if label == "TDX PCK CRL" {
        tdx::error::CrlRole::Pck
    } else {
        tdx::error::CrlRole::RootCa
    };
    let crl = Crl::from_der(der).map_err(|error| TdxError::Crl { role, error })?;
    let root_len = u64::try_from(root.len()).unwrap_or(u64::MAX).to_be_bytes();
    Ok((
        (label, provider.sha256(&[&root_len, root, crl.issuer_raw()])),
        CrlVersion::of(&crl),
    ))
}

/// Parses and authenticates collateral JSON at `at` under `root`.
fn authenticate(
    bytes: &[u8],
    root: Option<&TrustedRoot>,
    at: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<Authenticated, TdxError> {
    let collateral = Collateral::from_json(bytes)?;
    let verified = VerifiedCollateral::verify_with_root(&collateral, root, at, provider)?;
    let root = verified.root();
    // The PCK CRL issuer is the first certificate of its chain, which
    // `VerifiedCollateral::verify_with_root` authenticated.
    let issuer_err = TdxError::UnexpectedSubject(tdx::error::CertRole::PckCrlIssuer);
    let chain = pem::decode_all(&collateral.pck_crl_issuer_chain, "CERTIFICATE")
        .map_err(|_| issuer_err.clone())?;
    let issuer = chain.first().ok_or(issuer_err.clone())?;
    let ca = Certificate::from_der(issuer)
        .ok()
        .and_then(|cert| cert.subject_common_name().and_then(TdxCa::from_common_name))
        .ok_or(issuer_err)?;
    Ok(Authenticated {
        fmspc: verified.tcb_info().fmspc,
        ca,
        source: provider.sha256(&[bytes]),
        bytes: bytes.to_vec(),
        tcb_evaluation: verified.tcb_info().tcb_evaluation_data_number,
        qe_evaluation: verified.qe_identity().tcb_evaluation_data_number,
        pck_crl: crl_stream("TDX PCK CRL", &collateral.pck_crl, root, provider)?,
        root_crl: crl_stream("TDX root CA CRL", &collateral.root_ca_crl, root, provider)?,
        verified,
    })
}

fn older(which: CollateralRequest, below: Below) -> EvidenceError {
    EvidenceError::OlderThanSeen {
        which: Box::new(which),
        newest_seen: below.newest_seen.into(),
        offered: below.offered.into(),
    }
}

impl TdxHeld {
    fn get(&self, fmspc: [u8; 6], ca: TdxCa, root: &[u8]) -> Option<&Authenticated> {
        self.held.iter().find(|h| h.is(fmspc, ca, root))
    }

    fn keep(&mut self, authenticated: Authenticated, marks: &mut Marks) {
        authenticated.record(marks);
        let (fmspc, ca) = (authenticated.fmspc, authenticated.ca);
        self.held
            .retain(|h| !h.is(fmspc, ca, authenticated.verified.root()));
        self.held.push(authenticated);
    }

    /// See [`ServiceVerifier::needs`](super::ServiceVerifier::needs):
    /// collateral for the quote's platform is needed when it is not held
    /// fresh under every root (of the entries) the quote's chain carries,
    /// or, when it carries none of them, under every root of the entries.
    pub fn needs(
        &self,
        evidence: &TdxEvidence,
        entries: &[TdxReferenceValues],
        at: UnixTime,
        margin: i64,
        out: &mut Vec<CollateralRequest>,
    ) {
        let Ok(quote) = Quote::parse(&evidence.quote) else {
            return;
        };
        let Ok((fmspc, ca)) = platform(&quote) else {
            return;
        };
        let roots = roots_for(&quote, distinct_roots(entries));
        let fresh = roots.iter().all(|root| {
            self.get(fmspc, ca, root_der(*root)).is_some_and(|held| {
                let (not_before, not_after) = held.verified.validity();
                not_before <= at && not_after.0.saturating_sub(margin) >= at.0
            })
        });
        if !fresh {
            out.push(CollateralRequest::TdxCollateral { fmspc, ca });
        }
    }

    /// See [`ServiceVerifier::offer`](super::ServiceVerifier::offer): kept
    /// under the first root of `entries` that authenticates it.
    #[allow(clippy::too_many_arguments)]
    pub fn offer(
        &mut self,
        fmspc: [u8; 6],
        ca: TdxCa,
        bytes: &[u8],
        entries: &[TdxReferenceValues],
        at: UnixTime,
        provider: &dyn CryptoProvider,
        marks: &mut Marks,
    ) -> Result<(), EvidenceError> {
        let which = CollateralRequest::TdxCollateral { fmspc, ca };
        let roots = distinct_roots(entries);
        let mut reasons = Vec::new();
        let mut found = None;
        for root in &roots {
            match authenticate(bytes, *root, at, provider) {
                Ok(authenticated) => {
                    found = Some(authenticated);
                    break;
                }
                Err(err) if roots.len() == 1 => reasons.push(err.to_string()),
                Err(err) => reasons.push(alloc::format!("under {}: {err}", root_name(*root))),
            }
        }
        let Some(authenticated) = found else {
            return Err(EvidenceError::CollateralRefused {
                which: Box::new(which),
                reason: reasons.join("; "),
            });
        };
        if authenticated.fmspc != fmspc || authenticated.ca != ca {
            return Err(EvidenceError::CollateralRefused {
                reason: alloc::format!("it is {}", authenticated.which()),
                which: Box::new(which),
            });
        }
        authenticated.check(marks).map_err(|b| older(which, b))?;
        self.keep(authenticated, marks);
        Ok(())
    }

    /// Chooses the collateral under `root` for a quote of platform
    /// (`fmspc`, `ca`): the attached one if it authenticates under `root`,
    /// is for that platform and is at least as new as the newest seen
    /// under `root` (it is then kept); else the one held under `root`.
    /// With none held, attached collateral for another platform is used
    /// once, unkept, so the verdict names the mismatch as offline
    /// verification does.
    #[allow(clippy::too_many_arguments)]
    fn choose(
        &mut self,
        evidence: &TdxEvidence,
        fmspc: [u8; 6],
        ca: TdxCa,
        root: Option<&TrustedRoot>,
        at: UnixTime,
        provider: &dyn CryptoProvider,
        marks: &mut Marks,
    ) -> Result<Choice, EvidenceError> {
        let which = CollateralRequest::TdxCollateral { fmspc, ca };
        let der = root_der(root);
        let held = self.get(fmspc, ca, der).is_some();
        let mut refusal = None;
        if let Some(bytes) = evidence.collateral.as_deref() {
            let source = provider.sha256(&[bytes]);
            let same_as_held = self.get(fmspc, ca, der).is_some_and(|h| h.source == source);
            if let Some((_, _, err)) = self
                .passed_over
                .iter()
                .find(|(s, r, _)| *s == source && r.as_slice() == der)
            {
                self.attached_older += 1;
                refusal = Some(err.clone());
            } else if !same_as_held {
                match authenticate(bytes, root, at, provider) {
                    Ok(attached) if (attached.fmspc, attached.ca) != (fmspc, ca) => {
                        if !held {
                            return Ok(Choice::Once(alloc::boxed::Box::new(attached)));
                        }
                    }
                    Ok(attached) => match attached.check(marks) {
                        Ok(()) => {
                            self.keep(attached, marks);
                            return Ok(Choice::Held);
                        }
                        Err(below) => {
                            self.attached_older += 1;
                            if self.passed_over.len() >= PASSED_OVER_CAPACITY {
                                self.passed_over.pop_front();
                            }
                            let err = older(which.clone(), below);
                            self.passed_over
                                .push_back((source, der.to_vec(), err.clone()));
                            refusal = Some(err);
                        }
                    },
                    Err(err) => refusal = Some(EvidenceError::Tdx(err)),
                }
            }
        }
        if held {
            return Ok(Choice::Held);
        }
        Err(refusal.unwrap_or(EvidenceError::MissingCollateralFor {
            which: Box::new(which),
        }))
    }

    /// See [`ServiceVerifier::verify`](super::ServiceVerifier::verify).
    /// Each root the entries name (with several, those the quote's chain
    /// carries) is tried in turn, with the collateral chosen under it and
    /// only the entries naming it; with one root its verdict is the
    /// answer, with several the reasons of each are listed (as offline
    /// verification does).
    pub fn verify(
        &mut self,
        evidence: &TdxEvidence,
        entries: &[TdxReferenceValues],
        at: UnixTime,
        provider: &dyn CryptoProvider,
        marks: &mut Marks,
    ) -> Result<TdxClaims, EvidenceError> {
        if entries.is_empty() {
            return Err(EvidenceError::NoReferenceValues { kind: "TDX" });
        }
        let quote = Quote::parse(&evidence.quote).map_err(|e| EvidenceError::Tdx(e.into()))?;
        let (fmspc, ca) = platform(&quote).map_err(EvidenceError::Tdx)?;
        let roots = distinct_roots(entries);
        let one_root = roots.len() == 1;
        let mut reasons = Vec::new();
        for root in roots_for(&quote, roots) {
            match self.verify_under(evidence, entries, root, fmspc, ca, at, provider, marks) {
                Ok(claims) => return Ok(claims),
                Err(err) if one_root => return Err(err),
                Err(EvidenceError::NoEntryMatched(more)) => reasons.extend(more),
                Err(err) => reasons.push(alloc::format!("under {}: {err}", root_name(root))),
            }
        }
        Err(EvidenceError::NoEntryMatched(reasons))
    }

    /// [`verify`](Self::verify) with the entries naming `root`.
    #[allow(clippy::too_many_arguments)]
    fn verify_under(
        &mut self,
        evidence: &TdxEvidence,
        entries: &[TdxReferenceValues],
        root: Option<&TrustedRoot>,
        fmspc: [u8; 6],
        ca: TdxCa,
        at: UnixTime,
        provider: &dyn CryptoProvider,
        marks: &mut Marks,
    ) -> Result<TdxClaims, EvidenceError> {
        let der = root_der(root);
        let once;
        let (chosen, held) = match self.choose(evidence, fmspc, ca, root, at, provider, marks)? {
            Choice::Held => (
                self.get(fmspc, ca, der)
                    .ok_or(EvidenceError::MissingCollateralFor {
                        which: Box::new(CollateralRequest::TdxCollateral { fmspc, ca }),
                    })?,
                true,
            ),
            Choice::Once(attached) => {
                once = attached;
                (&*once, false)
            }
        };
        let (not_before, not_after) = chosen.verified.validity();
        if !at.within(not_before, not_after) {
            return Err(EvidenceError::StaleCollateral {
                which: Box::new(chosen.which()),
                not_before,
                not_after,
                at,
            });
        }
        let result = verify_entries(&chosen.verified, evidence, entries, der, at, provider);
        if result.is_ok() && held {
            self.remember(fmspc, ca, der, &evidence.quote, at, provider);
        }
        result
    }

    /// Remembers the quote's platform with the collateral held under
    /// `root` (DER) so that its PCK chain is not verified again (at most
    /// [`PLATFORM_CAPACITY`]).
    fn remember(
        &mut self,
        fmspc: [u8; 6],
        ca: TdxCa,
        root: &[u8],
        quote: &[u8],
        at: UnixTime,
        provider: &dyn CryptoProvider,
    ) {
        let Some(held) = self.held.iter_mut().find(|h| h.is(fmspc, ca, root)) else {
            return;
        };
        // A platform already remembered is skipped (remembering it again
        // would verify its chain again); the capacity counts platforms.
        if held.verified.platforms_known() < PLATFORM_CAPACITY
            && !held.verified.knows_platform(quote, provider)
        {
            let _ = held.verified.remember_platform(quote, at, provider);
        }
    }

    /// The collateral sets held.
    pub fn held(&self) -> Vec<HeldCollateral> {
        self.held
            .iter()
            .map(|h| HeldCollateral {
                which: h.which(),
                issued: Some(h.verified.tcb_info().issue_date),
                next_update: h.verified.validity().1,
            })
            .collect()
    }

    /// The collateral JSON held for a platform, for a coordinator to send
    /// with its own evidence: the set kept most recently, under whichever
    /// root (a coordinator's own platform chains to one root).
    pub fn bytes(&self, fmspc: [u8; 6], ca: TdxCa) -> Option<&[u8]> {
        self.held
            .iter()
            .rev()
            .find(|h| h.fmspc == fmspc && h.ca == ca)
            .map(|h| h.bytes.as_slice())
    }

    /// How many collateral sets are held.
    pub fn held_count(&self) -> usize {
        self.held.len()
    }
}
