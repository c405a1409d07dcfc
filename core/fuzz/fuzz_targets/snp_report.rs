//! Fuzzes the SEV-SNP attestation report parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| accord_core::internal::fuzz_snp_report(data));
