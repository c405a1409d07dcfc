//! Fuzzes the wire protocol: frame length checks and every message decoder.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| accord_core::internal::fuzz_protocol(data));
