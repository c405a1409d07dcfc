//! Hardware evidence: AMD SEV-SNP attestation reports and Intel TDX quotes.
//!
//! Each format follows extract → expect → compare: parse and authenticate the
//! evidence into claims, build the expectations from reference values, then
//! compare them field by field with one error per mismatch.

pub mod snp;
pub mod tdx;
