//! accord-guest: the agent that runs inside the confidential VM.
//!
//! Not built yet: the TEE providers, attested TLS and the coordinator
//! services arrive with later issues (see the issue tracker). Today this
//! crate only exists so that the workspace has its final shape.
