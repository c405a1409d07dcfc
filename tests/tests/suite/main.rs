//! accord's integration tests, one binary (one link, one process to share
//! the test chips): the whole
//! flow through the CLI, every API in every state over the wire, user and
//! peer recovery, a hostile shim, crash consistency, replicas on the
//! Kubernetes backend (against the in-test API server), high
//! availability with replica processes killed and restarted, a hostile
//! network client starving a replica's probes, a host that writes the
//! store to take the secrets (both backends), fake coordinators and
//! other deployments' coordinators refused by the workload initializer,
//! resource exhaustion through the user API, and collateral fetched
//! through the shim from the simulated vendor, revocation enforced.
//!
//! `support` holds the helpers: a raw deployment on the INSECURE
//! simulated chip with wire-level calls and shim channels, replica
//! processes (`support::process`), and a CLI-level deployment prepared by
//! the demo's helpers (`support::cli`).

mod support;

mod api_states;
mod attack_exhaustion;
mod attack_initializer;
mod attack_probes;
mod attack_store;
mod collateral;
mod collateral_vectors;
mod crash_consistency;
mod flow;
mod ha;
mod hostile_shim;
mod kube_replicas;
mod mixed_tee;
mod peer_recovery;
mod recovery;
mod workspace_marks;
