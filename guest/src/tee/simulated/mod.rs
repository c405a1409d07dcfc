//! The INSECURE simulated SEV-SNP chip (placeholder: not built yet; the
//! provider reports itself unavailable).

use std::path::Path;

use accord_core::evidence::snp::Product;

use super::{TeeError, TeeProvider};

/// What the simulated chip puts into its reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimulatedConfig {
    /// Which generation to imitate: Genoa produces report v3, Turin v5.
    pub product: Product,
    /// MEASUREMENT.
    pub measurement: [u8; 48],
    /// HOST_DATA (the policy hash the hypervisor would set at launch).
    pub host_data: [u8; 32],
    /// Guest POLICY (bit 17 must be set).
    pub policy: u64,
    /// VMPL the report is requested at.
    pub vmpl: u32,
}

impl Default for SimulatedConfig {
    fn default() -> Self {
        Self {
            product: Product::Genoa,
            measurement: [0; 48],
            host_data: [0; 32],
            policy: 0x30000,
            vmpl: 0,
        }
    }
}

/// Opens (creating on first use) the simulated chip whose state lives in
/// `state_dir`.
pub fn open(state_dir: &Path, config: &SimulatedConfig) -> Result<Box<dyn TeeProvider>, TeeError> {
    let _ = (state_dir, config);
    Err(TeeError::Unavailable {
        provider: "insecure-simulated",
        reason: "not built yet".to_string(),
    })
}
