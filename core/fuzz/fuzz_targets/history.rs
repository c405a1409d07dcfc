//! Fuzzes the history decoders and the Merkle proof verifiers.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| accord_core::internal::fuzz_history(data));
