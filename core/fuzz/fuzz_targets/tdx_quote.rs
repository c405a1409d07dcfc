//! Fuzzes the TDX quote parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| accord_core::internal::fuzz_tdx_quote(data));
