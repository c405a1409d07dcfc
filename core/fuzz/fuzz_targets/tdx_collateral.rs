//! Fuzzes the TDX collateral parser (JSON document, TCB info, QE identity).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| accord_core::internal::fuzz_tdx_collateral(data));
