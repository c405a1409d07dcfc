//! The INSECURE simulated TDX (`--tee insecure-simulated-tdx`).
//!
//! A software TDX platform with its own PKI in the shape of Intel's (a
//! simulated root CA, a PCK Platform CA, a PCK certificate with the SGX
//! extension, a TCB Signing certificate, all P-256) and a quoting enclave
//! whose attestation key signs v4 or v5 DCAP quotes
//! ([`SimulatedConfig::tdx_quote_version`], default 4). The TD report
//! carries the requested REPORTDATA, MRTD = the configured measurement and
//! MRCONFIGID = the policy hash (the configured host data) ‖ 16 zero bytes,
//! which is where `Claims::policy_hash` reads a TDX workload's policy, as
//! the simulated SEV-SNP chip puts it in HOST_DATA.
//!
//! It also issues the platform's collateral (TCB info with its
//! `tcbEvaluationDataNumber`, QE identity, PCK CRL, root CA CRL) under the
//! simulated root, in the response shapes of Intel's PCS
//! ([`SimulatedTdx::pcs_responses`]), and attaches it to every quote
//! (`TdxEvidence::collateral`).
//!
//! It proves nothing: the core verifies its quotes with the same code as
//! real ones, but only when a reference entry names its root explicitly
//! (`InsecureTrustedRoot`, [`SimulatedTdx::trusted_root`]). It exists only
//! in builds with the `insecure-simulation` feature, is never detected,
//! and says INSECURE SIMULATION in its root's name and whenever it opens.
//!
//! The certificates, CRLs, PCS documents and quotes are built by core's
//! `accord_core::internal::tdx_sim` (shared with core's tests); `store`
//! persists the keys and certificates, as the simulated SEV-SNP chip's.

mod store;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use accord_core::evidence::tdx::reference::HexBytes;
use accord_core::evidence::tdx::{TdxReferenceValues, TrustedRoot};
use accord_core::evidence::{Evidence, TdxEvidence};
use accord_core::time::UnixTime;

use super::simulated::{SimulatedConfig, SimulatedError};
use super::{TeeError, TeeProvider};

use accord_core::internal::tdx_sim::{self as sim, TdFields};
pub use accord_core::internal::tdx_sim::{Issue, PcsResponses};
pub use store::FILES;

/// The provider's name.
pub const NAME: &str = super::INSECURE_SIMULATED_TDX;

/// A simulated TDX platform, ready to sign quotes.
pub struct SimulatedTdx {
    state: store::PlatformState,
    fields: TdFields,
    state_dir: Option<PathBuf>,
    /// The collateral attached to quotes, as JSON, and when it was issued
    /// (reissued when the issue day changes).
    collateral: Mutex<Option<(UnixTime, Vec<u8>)>>,
}

impl fmt::Debug for SimulatedTdx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatedTdx (INSECURE SIMULATION)")
            .field("fmspc", &hex(&self.state.ids.fmspc))
            .field("quote_version", &self.fields.version)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> UnixTime {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    UnixTime(i64::try_from(secs).unwrap_or(i64::MAX))
}

fn fields(config: &SimulatedConfig) -> Result<TdFields, SimulatedError> {
    if !matches!(config.tdx_quote_version, 4 | 5) {
        return Err(SimulatedError::Config(format!(
            "TDX quote version {} is not 4 or 5",
            config.tdx_quote_version
        )));
    }
    let mut mr_config_id = [0u8; 48];
    mr_config_id[..32].copy_from_slice(&config.host_data);
    Ok(TdFields {
        version: config.tdx_quote_version,
        mr_td: config.measurement,
        mr_config_id,
    })
}

impl SimulatedTdx {
    /// Opens the platform persisted in `state_dir`, creating (and
    /// persisting) a new one on first use. Says INSECURE SIMULATION on
    /// stderr. `config` gives MRTD (`measurement`), the policy hash
    /// (`host_data`) and the quote version; its SEV-SNP fields are unused.
    pub fn open(state_dir: &Path, config: &SimulatedConfig) -> Result<Self, SimulatedError> {
        let fields = fields(config)?;
        let (state, verb) = match store::load(state_dir)? {
            Some(state) => (state, "loaded"),
            None => (store::save_new(state_dir, store::generate()?)?, "created"),
        };
        let platform = Self {
            state,
            fields,
            state_dir: Some(state_dir.to_path_buf()),
            collateral: Mutex::new(None),
        };
        platform.banner(verb);
        Ok(platform)
    }

    /// A platform that lives only in memory (nothing is persisted).
    pub fn ephemeral(config: &SimulatedConfig) -> Result<Self, SimulatedError> {
        let platform = Self {
            state: store::generate()?,
            fields: fields(config)?,
            state_dir: None,
            collateral: Mutex::new(None),
        };
        platform.banner("created (in memory)");
        Ok(platform)
    }

    /// The same platform with another configuration (measurement, policy
    /// hash, quote version), without loading its keys again.
    pub fn reconfigured(&self, config: &SimulatedConfig) -> Result<Self, SimulatedError> {
        let state = match &self.state_dir {
            Some(dir) => store::load(dir)?.ok_or_else(|| SimulatedError::Corrupt {
                path: dir.clone(),
                problem: "the simulated TDX platform disappeared".to_string(),
            })?,
            None => {
                return Err(SimulatedError::Config(
                    "an in-memory simulated TDX platform cannot be reconfigured".to_string(),
                ));
            }
        };
        Ok(Self {
            state,
            fields: fields(config)?,
            state_dir: self.state_dir.clone(),
            collateral: Mutex::new(None),
        })
    }

    fn banner(&self, verb: &str) {
        let where_ = self
            .state_dir
            .as_ref()
            .map_or_else(String::new, |d| format!(" in {}", d.display()));
        eprintln!(
            "accord: INSECURE SIMULATION: simulated TDX platform (FMSPC {}, quote v{}) {verb}{where_}; its evidence proves nothing about hardware",
            hex(&self.state.ids.fmspc),
            self.fields.version,
        );
    }

    /// The quote version produced (4 or 5).
    pub fn quote_version(&self) -> u16 {
        self.fields.version
    }

    /// The FMSPC the PCK certificate and the TCB info name.
    pub fn fmspc(&self) -> [u8; 6] {
        self.state.ids.fmspc
    }

    /// The simulated root CA certificate (DER).
    pub fn root_ca_der(&self) -> &[u8] {
        &self.state.root
    }

    /// The serial number of the PCK certificate (big-endian), for CRLs
    /// that revoke it.
    pub fn pck_serial(&self) -> Vec<u8> {
        accord_core::x509::Certificate::from_der(&self.state.pck)
            .map(|cert| cert.serial().to_vec())
            .unwrap_or_default()
    }

    /// The simulated root, for reference values that trust this platform
    /// explicitly.
    pub fn trusted_root(&self) -> TrustedRoot {
        TrustedRoot {
            root_ca: self.state.root.clone(),
        }
    }

    /// Reference values that accept exactly this platform's quotes as
    /// configured: MRTD, MRSEAM, RTMRs, XFAM, MRSIGNERSEAM, MRCONFIGID
    /// (as `PolicyHash`), the TCB evaluation data number, and the simulated
    /// root as `InsecureTrustedRoot`.
    pub fn reference_values(&self) -> TdxReferenceValues {
        let mut policy_hash = [0u8; 32];
        policy_hash.copy_from_slice(&self.fields.mr_config_id[..32]);
        TdxReferenceValues {
            platform: Some("INSECURE SIMULATION".to_string()),
            min_tcb_evaluation_data_number: Some(sim::TCB_EVALUATION_DATA_NUMBER),
            mr_td: Some(HexBytes(self.fields.mr_td)),
            mr_seam: Some(HexBytes(sim::MR_SEAM)),
            rtmrs: Some(sim::RTMRS.map(HexBytes)),
            xfam: Some(HexBytes(sim::XFAM)),
            mr_signer_seam: Some(HexBytes([0; 48])),
            policy_hash: Some(HexBytes(policy_hash)),
            insecure_trusted_root: Some(self.trusted_root()),
            ..TdxReferenceValues::default()
        }
    }

    /// The platform's collateral as a PCS would serve it at `at`, with
    /// `revoked_pcks` (certificate serials) on the PCK CRL.
    pub fn pcs_responses(&self, at: UnixTime, revoked_pcks: &[Vec<u8>]) -> PcsResponses {
        self.state.pcs_responses(&Issue::of_day(at, revoked_pcks))
    }

    /// The platform's collateral as a PCS would serve it for `issue` (its
    /// dates, CRL number and revoked PCK certificates).
    pub fn pcs_responses_as(&self, issue: &Issue) -> PcsResponses {
        self.state.pcs_responses(issue)
    }

    /// The collateral JSON attached to quotes at `at` (cached per issue
    /// day).
    fn collateral_json(&self, at: UnixTime) -> Result<Vec<u8>, TeeError> {
        let issued = sim::issue_instant(at);
        let mut cached = self
            .collateral
            .lock()
            .map_err(|_| TeeError::Protocol("simulated TDX collateral lock poisoned".into()))?;
        if let Some((when, json)) = cached.as_ref()
            && *when == issued
        {
            return Ok(json.clone());
        }
        let json = self
            .pcs_responses(at, &[])
            .collateral()
            .map_err(|err| {
                TeeError::Protocol(format!(
                    "INSECURE SIMULATION: simulated TDX collateral does not parse: {err}"
                ))
            })?
            .to_json()
            .into_bytes();
        *cached = Some((issued, json.clone()));
        Ok(json)
    }

    /// The signed quote for `report_data`.
    pub fn quote(&self, report_data: &[u8; 64]) -> Vec<u8> {
        self.state.quote(&self.fields, report_data)
    }
}

impl TeeProvider for SimulatedTdx {
    fn name(&self) -> &'static str {
        NAME
    }

    fn is_insecure(&self) -> bool {
        true
    }

    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence, TeeError> {
        Ok(Evidence::Tdx(TdxEvidence {
            quote: self.quote(report_data),
            collateral: Some(self.collateral_json(now())?),
        }))
    }
}

/// Opens (creating on first use) the simulated TDX platform whose state
/// lives in `state_dir`.
pub fn open(state_dir: &Path, config: &SimulatedConfig) -> Result<Box<dyn TeeProvider>, TeeError> {
    Ok(Box::new(SimulatedTdx::open(state_dir, config)?))
}

#[cfg(test)]
mod tests;
