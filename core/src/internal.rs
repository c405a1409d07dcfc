//! Hidden entry points for the fuzz targets. Not a stable API.
//!
//! Each function feeds arbitrary bytes to one parser and ignores the result:
//! the fuzzer looks for panics, overflows and hangs.

/// Parses `data` as a SEV-SNP attestation report.
pub fn fuzz_snp_report(data: &[u8]) {
    crate::evidence::snp::fuzz_parse_report(data);
}

/// Parses `data` as a TDX quote.
pub fn fuzz_tdx_quote(data: &[u8]) {
    crate::evidence::tdx::fuzz_parse_quote(data);
}

/// Parses `data` as a TDX collateral document.
pub fn fuzz_tdx_collateral(data: &[u8]) {
    crate::evidence::tdx::fuzz_parse_collateral(data);
}
