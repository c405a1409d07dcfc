//! accord's trusted core.
//!
//! Everything the coordinator decides lives here, as pure functions and
//! sans-IO state machines: parsing and verifying hardware evidence (AMD
//! SEV-SNP reports, Intel TDX quotes), X.509 certificate and CRL checks, the
//! verifiable manifest history ([`history`]), key derivation from the seed
//! ([`kdf`]), the manifest and its validation ([`manifest`]), the seed's
//! k-of-n split into sealed, publicly checkable shares ([`seedshare`]), the
//! mesh CA ([`ca`]), the coordinator state machine ([`coordinator`]) and the
//! wire protocol it speaks ([`protocol`]).
//!
//! # Invariants
//!
//! - **No I/O, no clock, no global randomness.** Time enters as
//!   [`time::UnixTime`], crypto as a [`crypto::CryptoProvider`], randomness as
//!   a [`crypto::SecureRandom`]. Every verification is reproducible at a
//!   fixed instant.
//! - **No `unsafe`.** `forbid(unsafe_code)`.
//! - **Parsers fail closed.** Every parser reads through [`codec::Reader`] or
//!   [`der`], is bounds-checked, rejects trailing bytes and unknown versions,
//!   and never panics on input.
//!
//! # Features
//!
//! | feature | what it adds |
//! |---|---|
//! | (none) | `no_std` + `alloc`; the pure-Rust provider [`crypto::rustcrypto::PROVIDER`] |
//! | `std` (default) | `std::error::Error` impls |
//! | `aws-lc-rs` | the fast provider `crypto::awslc::PROVIDER` (implies `std`) |
#![no_std]
#![forbid(unsafe_code)]
#![warn(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    clippy::alloc_instead_of_core
)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod ca;
pub mod codec;
pub mod coordinator;
pub mod crypto;
pub mod der;
pub mod evidence;
pub mod hex;
pub mod history;
pub mod kdf;
pub mod manifest;
pub mod measure;
pub mod pins;
pub mod protocol;
pub mod seedshare;
pub mod time;
pub mod x509;

#[doc(hidden)]
pub mod internal;
