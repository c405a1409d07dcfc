//! `accord-demo`: what shows and measures accord with the INSECURE
//! simulated TEE, kept out of the user's `accord` binary (which links no
//! simulated chip driver of its own, no host shim and no Kubernetes
//! client):
//!
//! - `accord-demo demo` ([`demo`]): a whole deployment in one process, or
//!   with `--replicas N` as N replica processes ([`demo_replicas`]), each
//!   `accord-demo demo-replica` ([`replica`]: an agent and its host shim);
//! - `accord-demo bench` ([`bench`], [`bench_exhaust`]): load and cost
//!   measurements of a coordinator, for `cargo xtask bench-*` and the
//!   exhaustion test.
//!
//! It reuses the user's commands (keys, manifest generate, set, verify,
//! get-manifests) from the `accord_cli` library.

pub mod bench;
pub mod bench_exhaust;
pub mod demo;
pub mod demo_replicas;
pub mod replica;
