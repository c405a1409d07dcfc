//! TEE providers: given 64 bytes of report data, return typed
//! [`Evidence`](accord_core::evidence::Evidence).
//!
//! Providers are registered once, in [`PROVIDER_NAMES`], and
//! [`DETECTION_ORDER`] says in which order [`detect`] tries them. The
//! simulated TEEs are never detected: they must be chosen by name (`--tee
//! insecure-simulated` for the simulated SEV-SNP chip, `--tee
//! insecure-simulated-tdx` for the simulated TDX), and they exist only in
//! builds with the `insecure-simulation` feature (tests, the demo, the QEMU
//! test image). Elsewhere, the production agent above all, [`open`]
//! refuses their names with [`TeeError::SimulationNotBuilt`].

use std::fmt;
use std::path::PathBuf;

use accord_core::evidence::Evidence;

#[cfg(feature = "insecure-simulation")]
pub mod bare;
pub mod cert_table;
pub mod configfs_tsm;
pub mod sev_guest;
#[cfg(feature = "insecure-simulation")]
pub mod simulated;
#[cfg(feature = "insecure-simulation")]
pub mod simulated_tdx;
pub mod tdx;

pub use configfs_tsm::ConfigfsTsm;
pub use sev_guest::SevGuest;

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

/// The name of the INSECURE simulated chip, as `--tee` and `accord.tee=`
/// take it (known in every build, so that a build without the chip can
/// refuse it by name).
pub const INSECURE_SIMULATED: &str = "insecure-simulated";

/// The name of the INSECURE simulated TDX, as `--tee` takes it (known in
/// every build, like [`INSECURE_SIMULATED`]).
pub const INSECURE_SIMULATED_TDX: &str = "insecure-simulated-tdx";

/// Whether `name` is one of the simulated TEEs' names.
pub fn is_simulated(name: &str) -> bool {
    name == INSECURE_SIMULATED || name == INSECURE_SIMULATED_TDX
}

/// Whether this build has the simulated chip (feature
/// `insecure-simulation`).
pub const SIMULATION_BUILT: bool = cfg!(feature = "insecure-simulation");

/// Where the providers look, and how the simulated chip is configured.
#[derive(Clone, Debug)]
pub struct TeeOptions {
    /// The configfs-tsm report directory (`/sys/kernel/config/tsm/report`).
    pub configfs_root: PathBuf,
    /// The SEV guest device (`/dev/sev-guest`).
    pub sev_guest_device: PathBuf,
    /// Where the simulated chip (or the simulated TDX) keeps its persisted
    /// keys and certificates.
    #[cfg(feature = "insecure-simulation")]
    pub simulated_state: PathBuf,
    /// What the simulated chip reports.
    #[cfg(feature = "insecure-simulation")]
    pub simulated: simulated::SimulatedConfig,
}

impl Default for TeeOptions {
    fn default() -> Self {
        Self {
            configfs_root: PathBuf::from("/sys/kernel/config/tsm/report"),
            sev_guest_device: PathBuf::from("/dev/sev-guest"),
            #[cfg(feature = "insecure-simulation")]
            simulated_state: PathBuf::from("/var/lib/accord/insecure-simulated-chip"),
            #[cfg(feature = "insecure-simulation")]
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
    /// `--tee insecure-simulated` in a build without the simulated chip
    /// (no `insecure-simulation` feature: the production agent).
    SimulationNotBuilt,
    /// An I/O operation on the TEE interface failed.
    Io {
        /// What was being done.
        action: String,
        /// The error.
        source: std::io::Error,
    },
    /// The TEE answered with something unusable.
    Protocol(String),
    /// Another writer kept changing the configfs-tsm entry (its
    /// `generation` moved by more than our own writes) on every attempt.
    Conflict {
        /// The last entry tried.
        path: PathBuf,
        /// How many entries were tried.
        attempts: u32,
        /// What was seen.
        detail: String,
    },
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
            Self::SimulationNotBuilt => write!(
                f,
                "this accord-guest has no simulated chip: it was built without the \
                 `insecure-simulation` feature (as production agents are), so \
                 `{INSECURE_SIMULATED}` and `{INSECURE_SIMULATED_TDX}` are refused; the \
                 simulated TEEs are only for tests and the demo"
            ),
            Self::Io { action, source } => write!(f, "{action}: {source}"),
            Self::Protocol(reason) => f.write_str(reason),
            Self::Conflict {
                path,
                attempts,
                detail,
            } => write!(
                f,
                "configfs-tsm report entry {} was changed by a concurrent writer on each of {attempts} attempts ({detail})",
                path.display()
            ),
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

/// Every provider name `--tee` accepts (the simulated chip's too, also in
/// builds without it, which refuse it with a clear error).
pub const PROVIDER_NAMES: &[&str] = &[
    "configfs-tsm",
    "sev-guest",
    "tdx",
    INSECURE_SIMULATED,
    INSECURE_SIMULATED_TDX,
];

/// The providers [`detect`] tries, in order.
pub const DETECTION_ORDER: &[&str] = &["configfs-tsm", "sev-guest"];

/// Opens the provider `name` (one of [`PROVIDER_NAMES`]).
///
/// `configfs-tsm` takes whatever provider the kernel offers, `tdx` requires
/// the kernel's `tdx_guest`, `sev-guest` uses the ioctl device, and
/// `insecure-simulated` the software chip (in builds with the
/// `insecure-simulation` feature; [`TeeError::SimulationNotBuilt`]
/// otherwise). Availability is checked here where it is cheap (the root or
/// device exists); everything else is found out by the first request.
pub fn open(name: &str, options: &TeeOptions) -> Result<Box<dyn TeeProvider>, TeeError> {
    match name {
        "configfs-tsm" | "tdx" => {
            if !options.configfs_root.is_dir() {
                return Err(TeeError::Unavailable {
                    provider: if name == "tdx" { "tdx" } else { "configfs-tsm" },
                    reason: format!("{} is not a directory", options.configfs_root.display()),
                });
            }
            Ok(if name == "tdx" {
                Box::new(ConfigfsTsm::tdx(&options.configfs_root))
            } else {
                Box::new(ConfigfsTsm::new(&options.configfs_root))
            })
        }
        "sev-guest" => {
            if !options.sev_guest_device.exists() {
                return Err(TeeError::Unavailable {
                    provider: "sev-guest",
                    reason: format!("device missing: {}", options.sev_guest_device.display()),
                });
            }
            Ok(Box::new(SevGuest::new(&options.sev_guest_device)))
        }
        #[cfg(feature = "insecure-simulation")]
        INSECURE_SIMULATED => simulated::open(&options.simulated_state, &options.simulated),
        #[cfg(feature = "insecure-simulation")]
        INSECURE_SIMULATED_TDX => simulated_tdx::open(&options.simulated_state, &options.simulated),
        #[cfg(not(feature = "insecure-simulation"))]
        INSECURE_SIMULATED | INSECURE_SIMULATED_TDX => Err(TeeError::SimulationNotBuilt),
        other => Err(TeeError::UnknownProvider(other.to_string())),
    }
}

/// Fails with [`TeeError::SimulationNotBuilt`] when `name` is the
/// simulated chip and this build has none: for front ends that must refuse
/// before they do anything else (parse other flags, create directories).
pub fn check_built(name: Option<&str>) -> Result<(), TeeError> {
    if name.is_some_and(is_simulated) && !SIMULATION_BUILT {
        return Err(TeeError::SimulationNotBuilt);
    }
    Ok(())
}

/// Finds the TEE this process runs in, trying [`DETECTION_ORDER`]:
/// configfs-tsm when its root exists and a test entry reports a provider
/// accord supports, then `/dev/sev-guest` when the device exists. The
/// simulated chip is never detected.
pub fn detect(options: &TeeOptions) -> Result<Box<dyn TeeProvider>, TeeError> {
    if options.configfs_root.is_dir() {
        let provider = ConfigfsTsm::new(&options.configfs_root);
        if let Ok(name) = provider.probe()
            && matches!(
                name.as_str(),
                configfs_tsm::PROVIDER_SEV_GUEST | configfs_tsm::PROVIDER_TDX_GUEST
            )
        {
            return Ok(Box::new(provider));
        }
    }
    if options.sev_guest_device.exists() {
        return Ok(Box::new(SevGuest::new(&options.sev_guest_device)));
    }
    Err(TeeError::NothingDetected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nowhere() -> TeeOptions {
        TeeOptions {
            configfs_root: PathBuf::from("/nonexistent/tsm/report"),
            sev_guest_device: PathBuf::from("/nonexistent/sev-guest"),
            ..TeeOptions::default()
        }
    }

    #[test]
    fn unknown_names_are_refused() {
        let err = open("sgx", &nowhere()).err().unwrap();
        assert!(matches!(err, TeeError::UnknownProvider(ref n) if n == "sgx"));
        assert!(
            err.to_string().contains(
                "configfs-tsm, sev-guest, tdx, insecure-simulated, insecure-simulated-tdx"
            )
        );
    }

    #[test]
    fn every_name_is_known() {
        for name in PROVIDER_NAMES {
            let result = open(name, &nowhere());
            assert!(
                !matches!(result, Err(TeeError::UnknownProvider(_))),
                "{name}"
            );
        }
    }

    #[test]
    fn the_simulated_chip_is_refused_plainly_where_it_is_not_built() {
        let message = TeeError::SimulationNotBuilt.to_string();
        assert!(message.contains("no simulated chip"), "{message}");
        assert!(
            message.contains("`insecure-simulation` feature"),
            "{message}"
        );
        // This test is built with the chip (the crate's tests enable the
        // feature); the build without it is checked by `cargo xtask image`,
        // which runs the production agent with `--tee insecure-simulated`.
        assert_eq!(SIMULATION_BUILT, cfg!(feature = "insecure-simulation"));
        assert!(check_built(Some("sev-guest")).is_ok());
        assert!(check_built(None).is_ok());
        assert_eq!(
            check_built(Some(INSECURE_SIMULATED)).is_ok(),
            SIMULATION_BUILT
        );
        assert_eq!(
            check_built(Some(INSECURE_SIMULATED_TDX)).is_ok(),
            SIMULATION_BUILT
        );
    }

    #[test]
    fn nothing_is_detected_without_hardware() {
        assert!(matches!(detect(&nowhere()), Err(TeeError::NothingDetected)));
        let err = open("sev-guest", &nowhere()).err().unwrap().to_string();
        assert!(err.contains("device missing"), "{err}");
    }
}
