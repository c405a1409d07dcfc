//! Allocation-light verification: counts heap allocations (through the Rust
//! global allocator) on the hot paths, with a cached verified chain (SEV-SNP)
//! and cached verified collateral (TDX). The target is zero; the counts are
//! also recorded in BENCHMARKS.md.
//!
//! Allocations made inside aws-lc's C code use `malloc` directly and are
//! not seen here; with the RustCrypto provider everything is Rust.

#[path = "vectors/common.rs"]
#[allow(dead_code)]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use accord_core::evidence::snp::{self, Certs, TrustRoots, VerifiedChain};
use accord_core::evidence::tdx::{Collateral, VerifiedCollateral, verify_with_collateral};

use crate::common::{at, providers, try_read};

/// Counts allocations per thread, so tests running in parallel do not see
/// each other's.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let value = f();
    let after = ALLOCATIONS.with(Cell::get);
    (value, after - before)
}

#[test]
fn snp_verification_with_a_cached_chain_does_not_allocate() {
    let (Some(report), Some(vcek)) = (
        try_read("snp/genoa-report-1.bin"),
        try_read("snp/genoa-vcek-1.pem"),
    ) else {
        return;
    };
    let instant = at("2026-03-01T00:00:00Z");
    for provider in providers() {
        let (chain, cold) = allocations_during(|| {
            VerifiedChain::verify(
                &Certs { leaf: &vcek },
                None,
                &TrustRoots::genuine(),
                None,
                instant,
                *provider,
            )
            .unwrap()
        });
        let (verified, hot) = allocations_during(|| {
            snp::verify_with_chain(&chain, &report, instant, *provider).is_ok()
        });
        assert!(verified, "{}", provider.name());
        println!(
            "SNP {}: chain verification {cold} allocations, report with cached chain {hot}",
            provider.name()
        );
        assert_eq!(
            hot,
            0,
            "{}: report verification with a cached chain allocated",
            provider.name()
        );
    }
}

#[test]
fn tdx_verification_with_cached_collateral_does_not_allocate() {
    let (Some(quote), Some(collateral)) = (
        try_read("tdx/tdx-quote-v4-1.bin"),
        try_read("tdx/tdx-collateral-1.json"),
    ) else {
        return;
    };
    let instant = at("2025-07-01T00:00:00Z");
    let collateral = Collateral::from_json(&collateral).unwrap();
    for provider in providers() {
        let (verified_collateral, cold) = allocations_during(|| {
            VerifiedCollateral::verify(&collateral, instant, *provider).unwrap()
        });
        let (verified, hot) = allocations_during(|| {
            verify_with_collateral(&verified_collateral, &quote, instant, *provider).is_ok()
        });
        assert!(verified, "{}", provider.name());
        println!(
            "TDX {}: collateral verification {cold} allocations, quote with cached collateral {hot}",
            provider.name()
        );
        assert_eq!(
            hot,
            0,
            "{}: quote verification with cached collateral allocated",
            provider.name()
        );
        let mut with_platform = verified_collateral.clone();
        with_platform
            .remember_platform(&quote, instant, *provider)
            .unwrap();
        let (verified, hot) = allocations_during(|| {
            verify_with_collateral(&with_platform, &quote, instant, *provider).is_ok()
        });
        assert!(verified, "{}", provider.name());
        println!(
            "TDX {}: quote with cached collateral and remembered platform {hot}",
            provider.name()
        );
        assert_eq!(
            hot,
            0,
            "{}: verification with a remembered platform allocated",
            provider.name()
        );
    }
}
