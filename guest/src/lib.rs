//! accord-guest: the agent that runs inside the confidential VM.
//!
//! - [`tee`]: ways to obtain hardware evidence (configfs-tsm, `/dev/sev-guest`,
//!   TDX through configfs-tsm, and the INSECURE simulated SNP chip).
//!
//! The coordinator services arrive with later issues.

pub mod tee;
