//! `accord-mesh-echo`: a workload that talks mutual TLS with the files
//! accord's initializer writes, and nothing else.
//!
//! The initializer (`accord-guest initializer --out DIR`) leaves the
//! workload's identity and the mesh's trust in `DIR/tls-config/`:
//! `certChain.pem` (leaf, then intermediate), `key.pem` (PKCS#8) and
//! `mesh-ca.pem`. This crate reads them ([`files`]), builds the TLS 1.3
//! configurations of the mesh ([`config`]: the server demands a client
//! certificate chaining to the mesh CA, the client verifies the server's
//! chain and name against the same CA) and runs the one-line exchange
//! ([`exchange`]): the client sends a line, the server answers with one
//! line saying it got it over mutual TLS and how many certificates the
//! client presented.
//!
//! The demo's web and db (`accord-demo demo`, `mesh_exchange`) use this
//! library; the binary (`accord-mesh-echo serve|call`) is the workload of
//! the end-to-end container test, in the TEST image set of `cargo xtask
//! oci --insecure-simulation` (`accord-test-mesh-echo`).
//!
//! Blocking std I/O: every socket has read and write timeouts
//! ([`exchange::IO_TIMEOUT`]), so a silent peer cannot hold a side
//! forever.
//!
//! What authenticates what: the files are the initializer's, in the
//! pod's shared volume, and are trusted as the program itself is (keeping
//! that volume out of the host's reach is the confidential pod's job, not
//! this program's). Every peer on the network is the host's to choose,
//! so it is trusted only by its certificate: the server refuses a client
//! without one or with one of another CA, the client refuses a server of
//! another CA or for another name (`tests/exchange.rs`).

pub mod config;
pub mod exchange;
pub mod files;

pub use config::{client_config, server_config};
pub use exchange::{Served, answer, call, connect, serve_one};
pub use files::{Identity, identity, roots};
/// The TLS library, for callers that build their own configuration.
pub use rustls;
