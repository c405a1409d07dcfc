//! accord-shim: the untrusted host side of a coordinator replica.
//!
//! The agent inside the TEE has no Kubernetes client, no filesystem of its
//! own and no HTTP server; the shim gives it those, over a local channel
//! ([`channel`], messages in `accord_core::protocol::shim`):
//!
//! - [`store`]: the history objects, on the filesystem ([`fs_store`]) or
//!   in Kubernetes ConfigMaps ([`kube_store`]), with compare-and-swap of
//!   the latest record and a watch on it;
//! - [`discovery`]: the ready peer replicas (a static list, or the pods of
//!   the coordinator StatefulSet);
//! - [`collateral`]: AMD's and Intel's collateral (VCEKs, CRLs, TDX
//!   collateral), fetched from the KDS, the PCS or a PCCS, through a proxy
//!   and an on-disk cache, for the agent's verifier to authenticate;
//! - [`status`] and [`http`]: the agent's reported state, served as the
//!   probes and Prometheus metrics on port 9102.
//!
//! **Untrusted by design** (ARCHITECTURE.md, "Trust boundary"): the agent re-hashes every
//! object, checks the signed tree head, and attests every peer. A shim can
//! deny service, never forge, roll back or fork a history, or learn a
//! secret.
#![forbid(unsafe_code)]

pub mod channel;
pub mod collateral;
pub mod discovery;
pub mod fs_store;
pub mod http;
pub mod kube_discovery;
pub mod kube_store;
pub mod labels;
pub mod mem_store;
pub mod status;
pub mod store;
#[cfg(feature = "test-apiserver")]
pub mod test_apiserver;

/// Port of the probes and metrics.
pub const PROBE_PORT: u16 = 9102;
