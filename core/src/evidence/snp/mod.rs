//! AMD SEV-SNP evidence: attestation reports, the AMD certificate chain, and
//! reference values.
//!
//! Verification follows extract → expect → compare:
//!
//! 1. **Extract.** [`verify`] parses the 1184-byte report
//!    ([`AttestationReport`], `report.rs`), verifies the leaf certificate
//!    chain ([`VerifiedChain`], `chain.rs`: VCEK ← ASK ← ARK or VLEK ← ASVK ←
//!    ARK against the embedded AMD roots of `roots.rs`, at a given instant,
//!    optionally against an AMD CRL, `revocation.rs`), checks the report's
//!    ECDSA P-384 signature and binds it to the certificate (REPORTED_TCB =
//!    the certificate's SPLs, CHIP_ID = hwID, signing key = certificate
//!    kind), and returns [`SnpClaims`].
//! 2. **Expect.** [`SnpReferenceValues`] (`reference.rs`) holds the
//!    manifest's reference values; [`DefaultPolicy`] is the fallback
//!    (authenticity only, no debug guests).
//! 3. **Compare.** [`SnpReferenceValues::check`] returns every
//!    [`SnpMismatch`].
//!
//! For repeated reports from the same chip and TCB, verify the chain once
//! with [`VerifiedChain::verify`] and then call [`verify_with_chain`], which
//! allocates nothing until claims are built.
//!
//! Spec: AMD SEV-SNP Firmware ABI Specification (publication 56860); the
//! VCEK/VLEK certificate formats: AMD "Versioned Chip Endorsement Key (VCEK)
//! Certificate and KDS Interface Specification" (publication 57230) and its
//! VLEK counterpart.

mod chain;
mod claims;
mod error;
mod policy;
mod reference;
mod report;
mod revocation;
mod roots;
mod tcb;

pub use chain::{Certs, VerifiedChain, VerifiedReport};
pub use claims::{CpuidClaim, HexBytes, SnpClaims, TcbClaim};
pub use error::{CertRole, ReportError, SnpError};
pub use policy::{
    GuestPolicy, GuestPolicyBits, PlatformInfo, PlatformInfoBits, ReportFlags, SigningKey,
};
pub use reference::{
    DefaultPolicy, MinimumTcb, ReferencePolicy, RequiredPlatformInfo, SnpMismatch,
    SnpReferenceValues, TcbField, TrustedRoot,
};
pub use report::{AttestationReport, Cpuid, FirmwareVersion, REPORT_LEN, SIGNED_LEN};
pub use roots::{GENUINE, PinnedCert, TrustRoots};
pub use tcb::{Product, TcbComponent, TcbReservedNonZero, TcbVersion};

use crate::crypto::CryptoProvider;
use crate::time::UnixTime;

/// Authenticates a report end to end and extracts its claims.
///
/// - `report`: the 1184-byte report.
/// - `certs`: the VCEK or VLEK (DER or PEM).
/// - `product`: the CPU generation if the caller knows it; otherwise it is
///   taken from the report's CPUID (version 3+) or the leaf's productName.
///   All sources that exist must agree.
/// - `roots`: [`TrustRoots::genuine`] unless a test root is passed
///   explicitly.
/// - `crl`: an AMD CRL (DER) for the product, if revocation is to be checked.
/// - `at`: the instant at which every certificate (and the CRL) must be valid.
///
/// No reference values are applied; use [`SnpReferenceValues::check`] or
/// [`DefaultPolicy::check`] on the result.
pub fn verify(
    report: &[u8],
    certs: &Certs<'_>,
    product: Option<Product>,
    roots: &TrustRoots<'_>,
    crl: Option<&[u8]>,
    at: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<SnpClaims, SnpError> {
    let parsed = AttestationReport::parse(report)?;
    let product = resolve_product(product, parsed.product_from_cpuid())?;
    let chain = VerifiedChain::verify(certs, product, roots, crl, at, provider)?;
    let verified = chain.verify_report(&parsed, at, provider)?;
    Ok(SnpClaims::from(&verified))
}

/// The product to verify a report as: the one given (which the report's
/// CPUID, if it names one, must agree with), else the CPUID's.
pub fn resolve_product(
    given: Option<Product>,
    from_cpuid: Option<Product>,
) -> Result<Option<Product>, SnpError> {
    match (given, from_cpuid) {
        (Some(given), Some(found)) if given != found => Err(SnpError::ProductMismatch {
            expected: given,
            found,
            source: "report CPUID",
        }),
        (Some(given), _) => Ok(Some(given)),
        (None, found) => Ok(found),
    }
}

/// Authenticates a report with a chain verified earlier. Allocates nothing;
/// build [`SnpClaims`] from the result when needed.
pub fn verify_with_chain<'a>(
    chain: &'a VerifiedChain,
    report: &'a [u8],
    at: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<VerifiedReport<'a>, SnpError> {
    let parsed = AttestationReport::parse(report)?;
    chain.verify_report(&parsed, at, provider)
}

/// Fuzzing hook: parses arbitrary bytes as a report and decodes every TCB
/// with every product layout. Must never panic.
#[doc(hidden)]
pub fn fuzz_parse_report(data: &[u8]) {
    if let Ok(report) = AttestationReport::parse(data) {
        let _ = report.signature_fixed_be();
        let _ = report.product_from_cpuid();
        for product in Product::ALL {
            let _ = report.hw_id(product);
            for raw in [
                report.current_tcb,
                report.reported_tcb,
                report.committed_tcb,
                report.launch_tcb,
            ] {
                let _ = TcbVersion::decode(raw, product).map(|t| t.encode(product));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz hook never panics on arbitrary lengths and contents
    /// (xorshift-generated inputs, some shaped like reports).
    #[test]
    fn fuzz_hook_survives_random_input() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..2000 {
            let len = if round % 2 == 0 {
                REPORT_LEN
            } else {
                usize::try_from(next() % 1300).unwrap()
            };
            let mut data: alloc::vec::Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
            if len == REPORT_LEN {
                // Make the header plausible so parsing gets deep.
                data[0..4].copy_from_slice(&[2u32, 3, 5][round % 3].to_le_bytes());
                data[8..16].copy_from_slice(&(0x30000u64 | (next() & 0xffff)).to_le_bytes());
                data[0x34..0x38].copy_from_slice(&1u32.to_le_bytes());
                data[0x48..0x50].fill(0);
                data[0x188..0x2a0]
                    .iter_mut()
                    .skip(3)
                    .for_each(|b| *b &= (round % 5 == 0) as u8);
            }
            fuzz_parse_report(&data);
        }
    }
}
