//! TDX collateral held in service: one verified collateral set per FMSPC
//! and PCK CA, chosen by the verifier rather than the attester.
//!
//! Collateral is authenticated once, when offered or first attached
//! ([`VerifiedCollateral::verify`]: Intel's signatures on the TCB info,
//! QE identity and both CRLs, chained to the pinned root), and each quote
//! is then checked against it with [`tdx::verify_with_reference`], which
//! re-checks the collateral's window at the quote's instant and applies
//! the PCK CRL and root CA CRL to the quote's PCK chain.

use alloc::boxed::Box;
use alloc::string::ToString;
use alloc::vec::Vec;

use crate::crypto::CryptoProvider;
use crate::time::UnixTime;
use crate::x509::{Certificate, Crl, pem};

use super::super::collateral::{CollateralRequest, TdxCa};
use super::super::tdx::{
    self, Collateral, Quote, TdxClaims, TdxError, TdxReferenceValues, VerifiedCollateral,
    pck::PckExtension,
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
    /// Platforms remembered with `verified` (their PCK chains checked once).
    platforms: usize,
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

    /// Whether it is at least as new as every mark.
    fn check(&self, marks: &Marks) -> Result<(), Below> {
        marks.check_tcb_info(self.fmspc, self.tcb_evaluation)?;
        marks.check_qe_identity(self.qe_evaluation)?;
        marks.check_crl(&self.pck_crl.0, &self.pck_crl.1)?;
        marks.check_crl(&self.root_crl.0, &self.root_crl.1)
    }

    fn record(&self, marks: &mut Marks) {
        marks.record_tdx(self.fmspc, self.tcb_evaluation, self.qe_evaluation);
        marks.record_crl(self.pck_crl.0, self.pck_crl.1.clone());
        marks.record_crl(self.root_crl.0, self.root_crl.1.clone());
    }
}

/// Checks a quote against each entry with `collateral`, as offline
/// verification does: the first entry that accepts it wins; with one
/// entry its error is returned as is.
fn verify_entries(
    collateral: &VerifiedCollateral,
    evidence: &TdxEvidence,
    entries: &[TdxReferenceValues],
    at: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<TdxClaims, EvidenceError> {
    let mut reasons = Vec::new();
    for entry in entries {
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
    /// SHA-256 of attached collateral that authenticated but was older
    /// than a mark (most recent last): marks only rise, so it stays too
    /// old and is not authenticated again.
    passed_over: alloc::collections::VecDeque<([u8; 32], EvidenceError)>,
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

fn crl_stream(
    label: &'static str,
    der: &[u8],
    provider: &dyn CryptoProvider,
) -> Result<(StreamKey, CrlVersion), TdxError> {
    let role = if label == "TDX PCK CRL" {
        tdx::error::CrlRole::Pck
    } else {
        tdx::error::CrlRole::RootCa
    };
    let crl = Crl::from_der(der).map_err(|error| TdxError::Crl { role, error })?;
    Ok((
        (label, provider.sha256(&[crl.issuer_raw()])),
        CrlVersion::of(&crl),
    ))
}

/// Parses and authenticates collateral JSON at `at`.
fn authenticate(
    bytes: &[u8],
    at: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<Authenticated, TdxError> {
    let collateral = Collateral::from_json(bytes)?;
    let verified = VerifiedCollateral::verify(&collateral, at, provider)?;
    // The PCK CRL issuer is the first certificate of its chain, which
    // `VerifiedCollateral::verify` authenticated.
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
        pck_crl: crl_stream("TDX PCK CRL", &collateral.pck_crl, provider)?,
        root_crl: crl_stream("TDX root CA CRL", &collateral.root_ca_crl, provider)?,
        platforms: 0,
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
    fn get(&self, fmspc: [u8; 6], ca: TdxCa) -> Option<&Authenticated> {
        self.held.iter().find(|h| h.fmspc == fmspc && h.ca == ca)
    }

    fn keep(&mut self, authenticated: Authenticated, marks: &mut Marks) {
        authenticated.record(marks);
        self.held
            .retain(|h| !(h.fmspc == authenticated.fmspc && h.ca == authenticated.ca));
        self.held.push(authenticated);
    }

    /// See [`ServiceVerifier::needs`](super::ServiceVerifier::needs).
    pub fn needs(
        &self,
        evidence: &TdxEvidence,
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
        let fresh = self.get(fmspc, ca).is_some_and(|held| {
            let (not_before, not_after) = held.verified.validity();
            not_before <= at && not_after.0.saturating_sub(margin) >= at.0
        });
        if !fresh {
            out.push(CollateralRequest::TdxCollateral { fmspc, ca });
        }
    }

    /// See [`ServiceVerifier::offer`](super::ServiceVerifier::offer).
    pub fn offer(
        &mut self,
        fmspc: [u8; 6],
        ca: TdxCa,
        bytes: &[u8],
        at: UnixTime,
        provider: &dyn CryptoProvider,
        marks: &mut Marks,
    ) -> Result<(), EvidenceError> {
        let which = CollateralRequest::TdxCollateral { fmspc, ca };
        let authenticated =
            authenticate(bytes, at, provider).map_err(|err| EvidenceError::CollateralRefused {
                which: Box::new(which.clone()),
                reason: err.to_string(),
            })?;
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

    /// Chooses the collateral for a quote of platform (`fmspc`, `ca`):
    /// the attached one if it authenticates, is for that platform and is
    /// at least as new as the newest seen (it is then kept); else the held
    /// one. With none held, attached collateral for another platform is
    /// used once, unkept, so the verdict names the mismatch as offline
    /// verification does.
    fn choose(
        &mut self,
        evidence: &TdxEvidence,
        fmspc: [u8; 6],
        ca: TdxCa,
        at: UnixTime,
        provider: &dyn CryptoProvider,
        marks: &mut Marks,
    ) -> Result<Choice, EvidenceError> {
        let which = CollateralRequest::TdxCollateral { fmspc, ca };
        let held = self.get(fmspc, ca).is_some();
        let mut refusal = None;
        if let Some(bytes) = evidence.collateral.as_deref() {
            let source = provider.sha256(&[bytes]);
            let same_as_held = self.get(fmspc, ca).is_some_and(|h| h.source == source);
            if let Some((_, err)) = self.passed_over.iter().find(|(s, _)| *s == source) {
                self.attached_older += 1;
                refusal = Some(err.clone());
            } else if !same_as_held {
                match authenticate(bytes, at, provider) {
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
                            self.passed_over.push_back((source, err.clone()));
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
        let once;
        let (chosen, held) = match self.choose(evidence, fmspc, ca, at, provider, marks)? {
            Choice::Held => (
                self.get(fmspc, ca)
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
        let result = verify_entries(&chosen.verified, evidence, entries, at, provider);
        if result.is_ok() && held {
            self.remember(fmspc, ca, &evidence.quote, at, provider);
        }
        result
    }

    /// Remembers the quote's platform with the held collateral so that its
    /// PCK chain is not verified again (at most [`PLATFORM_CAPACITY`]).
    fn remember(
        &mut self,
        fmspc: [u8; 6],
        ca: TdxCa,
        quote: &[u8],
        at: UnixTime,
        provider: &dyn CryptoProvider,
    ) {
        let Some(held) = self
            .held
            .iter_mut()
            .find(|h| h.fmspc == fmspc && h.ca == ca)
        else {
            return;
        };
        if held.platforms < PLATFORM_CAPACITY
            && held.verified.remember_platform(quote, at, provider).is_ok()
        {
            held.platforms += 1;
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
    /// with its own evidence.
    pub fn bytes(&self, fmspc: [u8; 6], ca: TdxCa) -> Option<&[u8]> {
        self.get(fmspc, ca).map(|h| h.bytes.as_slice())
    }

    /// How many collateral sets are held.
    pub fn held_count(&self) -> usize {
        self.held.len()
    }
}
