//! The one allocator setting the coordinator needs: large blocks go
//! straight to the kernel and back.
//!
//! glibc's malloc serves a block of at least `M_MMAP_THRESHOLD` bytes
//! with its own `mmap` and unmaps it when freed, but by default the
//! threshold is dynamic: each freed mmapped block raises it to that
//! block's size (up to 32 MiB). After the first 16 MiB request body the
//! coordinator's large buffers would come from the heap arenas instead,
//! where small allocations (TLS buffers of hundreds of connections) fill
//! the holes they leave, so every new large buffer needs fresh memory and
//! the resident set grows far beyond what is live: measured, 251 MiB
//! under the exhaustion attack of `tests/tests/suite/attack_exhaustion.rs`
//! while the body budget held at most 64 MiB. Fixing the threshold turns
//! the dynamic adjustment off.
#![allow(unsafe_code)]

/// Blocks of at least this many bytes are mapped on their own and
/// returned to the kernel when freed. Above every frame buffer the
/// coordinator keeps per connection (64 KiB) and the TLS buffers.
pub const MMAP_THRESHOLD: usize = 256 * 1024;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD`] (see the module
/// docs); does nothing with another C library. Call it once, at start.
pub fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let threshold = libc::c_int::try_from(MMAP_THRESHOLD).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only changes malloc's tuning parameters, under
        // malloc's own lock; M_MMAP_THRESHOLD accepts any value up to
        // HEAP_MAX_SIZE / 2 (32 MiB on 64-bit), and 256 KiB is below it.
        // It takes no pointers.
        let accepted = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, threshold) };
        if accepted != 1 {
            tracing::warn!("glibc refused M_MMAP_THRESHOLD; large buffers may stay resident");
        }
    }
}
