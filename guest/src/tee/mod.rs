//! TEE providers: given 64 bytes of report data, return typed
//! [`Evidence`](accord_core::evidence::Evidence).
//!
//! Providers are registered once, in [`PROVIDERS`], in the order
//! [`detect`] tries them. The simulated chip is never detected: it must be
//! chosen by name (`--tee insecure-simulated`).

use std::fmt;
use std::path::PathBuf;

use accord_core::evidence::Evidence;

pub mod simulated;

/// A way to obtain evidence from the TEE this process runs in.
pub trait TeeProvider: Send + Sync {
    /// The provider's name, as `--tee` accepts it.
    fn name(&self) -> &'static str;

    /// Whether the evidence proves nothing about real hardware (the
    /// simulated chip). Callers must say INSECURE SIMULATION wherever they
    /// use such a provider.
    fn is_insecure(&self) -> bool {
        false
    }

    /// Evidence whose report data is `report_data`.
    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence, TeeError>;
}

/// Where the providers look, and how the simulated chip is configured.
#[derive(Clone, Debug)]
pub struct TeeOptions {
    /// The configfs-tsm report directory (`/sys/kernel/config/tsm/report`).
    pub configfs_root: PathBuf,
    /// The SEV guest device (`/dev/sev-guest`).
    pub sev_guest_device: PathBuf,
    /// Where the simulated chip keeps its persisted keys and certificates.
    pub simulated_state: PathBuf,
    /// What the simulated chip reports.
    pub simulated: simulated::SimulatedConfig,
}

impl Default for TeeOptions {
    fn default() -> Self {
        Self {
            configfs_root: PathBuf::from("/sys/kernel/config/tsm/report"),
            sev_guest_device: PathBuf::from("/dev/sev-guest"),
            simulated_state: PathBuf::from("/var/lib/accord/insecure-simulated-chip"),
            simulated: simulated::SimulatedConfig::default(),
        }
    }
}

/// Why evidence could not be obtained.
#[derive(Debug)]
#[non_exhaustive]
pub enum TeeError {
    /// This provider is not available on this machine.
    Unavailable {
        /// The provider.
        provider: &'static str,
        /// What is missing.
        reason: String,
    },
    /// No provider was found by detection.
    NothingDetected,
    /// `--tee` named no known provider.
    UnknownProvider(String),
    /// An I/O operation on the TEE interface failed.
    Io {
        /// What was being done.
        action: String,
        /// The error.
        source: std::io::Error,
    },
    /// The TEE answered with something unusable.
    Protocol(String),
}

impl fmt::Display for TeeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable { provider, reason } => {
                write!(f, "TEE provider {provider} unavailable: {reason}")
            }
            Self::NothingDetected => write!(
                f,
                "no TEE found (tried {}); choose one with --tee, or --tee insecure-simulated for the INSECURE simulation",
                DETECTION_ORDER.join(", ")
            ),
            Self::UnknownProvider(name) => {
                write!(
                    f,
                    "unknown TEE provider `{name}` (known: {})",
                    PROVIDER_NAMES.join(", ")
                )
            }
            Self::Io { action, source } => write!(f, "{action}: {source}"),
            Self::Protocol(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for TeeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Every provider name `--tee` accepts.
pub const PROVIDER_NAMES: &[&str] = &["configfs-tsm", "sev-guest", "tdx", "insecure-simulated"];

/// The providers [`detect`] tries, in order.
pub const DETECTION_ORDER: &[&str] = &["configfs-tsm", "sev-guest"];
