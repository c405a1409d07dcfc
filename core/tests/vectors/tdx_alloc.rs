//! Verifying a quote against cached [`VerifiedCollateral`] makes no heap
//! allocation: a counting global allocator (per thread, so parallel tests do
//! not interfere) observes the cached path.
//!
//! Allocations made inside C code (aws-lc's own `malloc`) are outside Rust's
//! global allocator and not seen here.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use accord_core::evidence::tdx::{VerifiedCollateral, verify_with_collateral};

use crate::common::{at, providers};
use crate::tdx::{SETS, load};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn cached_verification_does_not_allocate() {
    for set in SETS.iter().filter(|s| s.accept) {
        let Some((quote, coll)) = load(set) else {
            return;
        };
        for provider in providers() {
            let t = at(set.at);
            let vc = VerifiedCollateral::verify(&coll, t, *provider).unwrap();
            let before = allocations();
            let verified = verify_with_collateral(&vc, &quote, t, *provider).unwrap();
            let status = verified.tcb.status;
            let advisories = verified.tcb.advisory_ids().count();
            let after = allocations();
            assert_eq!(
                after - before,
                0,
                "set {} with {}: {status} {advisories}",
                set.name,
                provider.name()
            );
            // The counter works: building the owned claims does allocate.
            let _claims = verified.to_claims();
            assert!(allocations() > after);
        }
    }
}
