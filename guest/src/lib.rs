//! accord-guest: the agent that runs inside the confidential VM.
//!
//! - [`tee`]: ways to obtain hardware evidence (configfs-tsm, `/dev/sev-guest`,
//!   TDX through configfs-tsm, and the INSECURE simulated SNP chip).
//! - [`atls`]: session-bound attested TLS (TLS 1.3 with ephemeral
//!   certificates, then an evidence exchange bound to the session).
//!
//! The coordinator services arrive with later issues.

pub mod atls;
pub mod tee;
