//! The `accord` command-line tool as a library: the subcommands the binary
//! dispatches to, and the pieces later commands and the demo reuse (owner
//! key files in [`keys`], init-data annotations in [`initdata`]), and the
//! offline halves of `accord set` / `accord verify`: the workspace layout
//! and trust state ([`workspace`]), the set payload and owner signatures
//! ([`set_payload`], [`sign`]) and history verification
//! ([`verify_logic`]); the network commands `accord set` ([`set_cmd`]),
//! `accord verify` and `accord get-manifests` ([`verify_cmd`]) and
//! `accord recover` ([`recover_cmd`]) over [`net`]; `accord generate`
//! ([`generate`]), which turns plain Kubernetes YAML into attestable Kata
//! pods with generated agent policies, with the annotation vocabulary in
//! [`annotations`]. The demo, its
//! replica processes and the load benchmarks are not here: they are the
//! `accord-demo` crate (`cli/demo/`), which reuses these commands.

pub mod annotations;
pub mod collateral_args;
pub mod collateral_source;
pub mod evidence;
pub mod evidence_fetch;
pub mod freshness;
pub mod generate;
pub mod initdata;
pub mod input;
pub mod k8s_yaml;
pub mod keys;
pub mod manifest_cmd;
pub mod net;
pub mod recover_cmd;
pub mod set_cmd;
pub mod set_payload;
pub mod sign;
#[cfg(test)]
mod testkit;
pub mod verify_cmd;
pub mod verify_logic;
pub mod workspace;
