//! Intel TDX quotes, verified with full DCAP: the PCK chain to the pinned
//! Intel SGX Root CA, CRLs, TCB info and QE identity signed by the TCB
//! Signing certificate, QE report binding, and TCB-level evaluation.
//!
//! # Usage
//!
//! - One-shot: [`verify()`] (default policy) or [`verify_with_policy`] take the
//!   quote bytes, the raw [`Collateral`], an instant and a crypto provider and
//!   return [`TdxClaims`].
//! - Many quotes against the same collateral: check it once with
//!   [`VerifiedCollateral::verify`], then call [`verify_with_collateral`] per
//!   quote. That path allocates nothing and verifies three ECDSA signatures
//!   (attestation key, QE report, PCK leaf).
//! - Reference values: [`TdxReferenceValues`] → [`reference::Expected`] →
//!   `compare` against the [`VerifiedQuote`].
//!
//! # Roots
//!
//! Everything chains to the pinned Intel SGX Root CA ([`roots`]). The one
//! exception is a reference entry with an `InsecureTrustedRoot` (the
//! INSECURE simulated TDX): that entry's root replaces Intel's, for that
//! entry only ([`VerifiedCollateral::verify_with_root`]).
//!
//! # Default policy
//!
//! Authenticity, final TCB status `UpToDate`, TDATTRIBUTES.DEBUG off
//! (unless [`TdxPolicy::allow_debug`]) and no service-TD binding. `Revoked` is never accepted, and a
//! platform that matches no TCB level ("TCB level not supported") is always
//! rejected.
//!
//! # Decisions
//!
//! - **Trailing bytes** after the signature data: all-zero padding is
//!   accepted, anything else rejects the quote (see [`quote`]).
//! - **Validity windows are closed intervals**: certificates
//!   `notBefore..=notAfter`, CRLs `thisUpdate..=nextUpdate`, TCB info and QE
//!   identity `issueDate..=nextUpdate`. (dcap-qvl treats a CRL as expired at
//!   exactly `nextUpdate`; that one instant is the only difference found by
//!   the differential test.)
//! - **The TCB signing certificate is checked for validity, not only for its
//!   key**: it was re-issued with the same serial and key, and the old one
//!   must not vouch for 2025-era collateral.
//! - **Roles are checked by subject CN** (PCK Certificate, PCK Platform or
//!   Processor CA, TCB Signing), so no Intel-issued certificate can stand in
//!   for another role.
//! - **The PCK CA in the quote must be the issuer of the collateral's PCK
//!   CRL** (same certificate, or the same name and key): otherwise the CRL
//!   would say nothing about the PCK certificate.
//! - **Final TCB status** is the worst of platform, TDX module and QE levels
//!   ([`TcbStatus::worst`]); TEE_TCB_SVN2 of TDX 1.5 is not evaluated.
//! - **MRSERVICETD** of TD report 1.5 must be zero (no service-TD binding)
//!   unless [`TdxPolicy::allow_service_td`]; reference values always require
//!   zero for now.
//!
//! # Module map
//!
//! `quote` (format), `collateral` (inputs, TCB info, QE identity), `pck`
//! (PCK SGX extension), `tcb` (level evaluation), `roots` (pinned root),
//! `verify` (the checks), `reference` (reference values), `claims`
//! (serializable output), `error`.

pub mod claims;
pub mod collateral;
pub mod error;
pub mod pck;
pub mod quote;
pub mod reference;
pub mod roots;
pub mod tcb;
pub mod verify;

pub use claims::TdxClaims;
pub use collateral::{Collateral, QeIdentity, TcbInfo};
pub use error::{CollateralError, QuoteError, TdxError};
pub use quote::Quote;
pub use reference::{ReferenceError, TdAttribute, TdxReferenceValues, TrustedRoot};
pub use tcb::TcbStatus;
pub use verify::{
    TcbStatusSet, TdxPolicy, VerifiedCollateral, VerifiedQuote, verify_with_collateral,
};

use crate::crypto::CryptoProvider;
use crate::time::UnixTime;

/// Verifies a quote with full DCAP at `at` under the default policy.
pub fn verify(
    quote: &[u8],
    collateral: &Collateral,
    at: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<TdxClaims, TdxError> {
    verify_with_policy(quote, collateral, at, provider, &TdxPolicy::default())
}

/// Verifies a quote with full DCAP at `at` under `policy`.
pub fn verify_with_policy(
    quote: &[u8],
    collateral: &Collateral,
    at: UnixTime,
    provider: &dyn CryptoProvider,
    policy: &TdxPolicy,
) -> Result<TdxClaims, TdxError> {
    let verified_collateral = VerifiedCollateral::verify(collateral, at, provider)?;
    let verified = verify_with_collateral(&verified_collateral, quote, at, provider)?;
    policy.check(&verified)?;
    Ok(verified.to_claims())
}

/// Verifies a quote against cached collateral and compares it with
/// reference values (which carry their own TCB-status and debug policy).
pub fn verify_with_reference<'q, 'c>(
    collateral: &'c VerifiedCollateral,
    quote: &'q [u8],
    at: UnixTime,
    provider: &dyn CryptoProvider,
    expected: &reference::Expected,
) -> Result<VerifiedQuote<'q, 'c>, TdxError> {
    let verified = verify_with_collateral(collateral, quote, at, provider)?;
    expected.compare(&verified)?;
    Ok(verified)
}

/// Fuzz hook: parse arbitrary bytes as a quote. Never panics.
#[doc(hidden)]
pub fn fuzz_parse_quote(data: &[u8]) {
    if let Ok(q) = Quote::parse(data) {
        let _ = core::hint::black_box(q.body.debug());
    }
}

/// Fuzz hook: parse arbitrary bytes as collateral JSON, and its TCB info and
/// QE identity. Never panics.
#[doc(hidden)]
pub fn fuzz_parse_collateral(data: &[u8]) {
    if let Ok(c) = Collateral::from_json(data) {
        let _ = TcbInfo::parse(&c.tcb_info);
        let _ = QeIdentity::parse(&c.qe_identity);
    }
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = TcbInfo::parse(text);
        let _ = QeIdentity::parse(text);
        let _ = Collateral::from_pcs_parts(text, "", text, "", &[], "", &[]);
    }
}
