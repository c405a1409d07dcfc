//! Fuzzes manifest JSON parsing (duplicate-key refusal included) and
//! validation.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| accord_core::internal::fuzz_manifest(data));
