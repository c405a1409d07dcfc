//! accord-guest: the agent that runs inside the confidential VM.
//!
//! - [`tee`]: ways to obtain hardware evidence (configfs-tsm, `/dev/sev-guest`,
//!   TDX through configfs-tsm, and, only with the `insecure-simulation`
//!   feature, the INSECURE simulated SNP chip).
//! - [`atls`]: session-bound attested TLS (TLS 1.3 with ephemeral
//!   certificates, then an evidence exchange bound to the session).
//!
//! - [`coordinator`]: the coordinator service (driver, user and mesh API
//!   servers).
//! - [`client`]: clients of the user and mesh APIs.
//! - [`initializer`]: the workload initializer.
//! - [`init`]: PID 1 of the guest image (`accord-guest init`).
//! - [`wire`]: protocol frames on async streams.

pub mod atls;
pub mod client;
pub mod coordinator;
pub mod init;
pub mod initializer;
pub mod shim_client;
pub mod tee;
pub mod wire;
