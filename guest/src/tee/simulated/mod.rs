//! The INSECURE simulated SEV-SNP chip (`--tee insecure-simulated`).
//!
//! A software "chip" with its own ARK → ASK → VCEK chain (RSA-4096
//! RSASSA-PSS ARK and ASK, a P-384 VCEK with AMD's VCEK extensions) that
//! produces byte-exact attestation reports (version 3 for Genoa, version 5
//! for Turin) with a configurable measurement, host data, policy, VMPL and
//! TCB. It lets everything run without hardware, and proves nothing: the
//! core verifies its reports with the same code as real ones, but only
//! against its own root, and only when reference values name that root
//! explicitly ([`SimulatedSnp::trusted_root`]). Its certificate names say
//! INSECURE SIMULATION, and so does every line it prints.
//!
//! The chip is persisted in a state directory (see `store.rs`), so a
//! restart loads the same chip (same keys, certificates and CHIP_ID).
//! Generating a chip takes two RSA-4096 key generations: seconds in an
//! optimised build.
//!
//! The chip also plays AMD's part for its own PKI: it issues its VCEK for
//! any TCB ([`SimulatedSnp::issue_vcek`]; a reissued VCEK's serial is
//! derived from the chip and the TCB, so each is revocable on its own) and
//! a CRL signed by its ARK in the shape of AMD's
//! ([`SimulatedSnp::issue_crl`]), which the INSECURE simulated vendor
//! (`accord-simulated-vendor`) serves in AMD's KDS URL shapes. The chip has
//! no VLEK: there is no simulated ASVK nor VLEK CRL.
//!
//! Modules: `pki` (certificate and CRL building, with `accord_core::der::write`),
//! `report` (report layout and signing), `store` (persistence).

mod pki;
mod report;
pub(crate) mod store;

use std::fmt;
use std::path::{Path, PathBuf};

use accord_core::evidence::snp::{
    GuestPolicy, HexBytes, MinimumTcb, Product, ReferencePolicy, SnpReferenceValues, TcbVersion,
    TrustedRoot,
};
use accord_core::evidence::{Evidence, SnpEvidence};
use accord_core::time::UnixTime;

use super::{TeeError, TeeProvider};

pub use pki::{CrlSpec, ORGANISATION, ark_common_name, ask_common_name};
pub use report::PLATFORM_INFO;
pub use store::FILES;

/// The provider's name.
pub const NAME: &str = super::INSECURE_SIMULATED;

/// What the simulated chip puts into its reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimulatedConfig {
    /// Which generation to imitate: Genoa produces report v3, Turin v5. A
    /// chip is created for one product; opening its state directory with
    /// another product is an error.
    pub product: Product,
    /// MEASUREMENT.
    pub measurement: [u8; 48],
    /// HOST_DATA (the policy hash the hypervisor would set at launch).
    pub host_data: [u8; 32],
    /// Guest POLICY (bit 17 must be set).
    pub policy: u64,
    /// VMPL the report is requested at (0..=3).
    pub vmpl: u32,
    /// The TCB to report (reported = current = committed = launch). `None`
    /// keeps the TCB the chip was created with ([`default_tcb`] for a new
    /// chip). A different TCB gets a freshly issued VCEK certificate (same
    /// key), as after a firmware update; it is not persisted.
    pub tcb: Option<TcbVersion>,
    /// The INSECURE simulated TDX only (`super::simulated_tdx`): the quote
    /// version it produces, 4 (TD report 1.0, the default) or 5 (TD report
    /// 1.5). There, `measurement` is MRTD and `host_data` the policy hash
    /// in MRCONFIGID; the other fields are SEV-SNP's.
    pub tdx_quote_version: u16,
}

impl Default for SimulatedConfig {
    fn default() -> Self {
        Self {
            product: Product::Genoa,
            measurement: [0; 48],
            host_data: [0; 32],
            policy: 0x30000,
            vmpl: 0,
            tcb: None,
            tdx_quote_version: 4,
        }
    }
}

/// The TCB a new simulated chip of `product` is created with (plausible
/// values of the generation; FMC only for Turin).
pub const fn default_tcb(product: Product) -> TcbVersion {
    match product {
        Product::Milan => TcbVersion {
            fmc: None,
            bootloader: 4,
            tee: 0,
            snp: 24,
            microcode: 219,
        },
        Product::Genoa => TcbVersion {
            fmc: None,
            bootloader: 10,
            tee: 0,
            snp: 23,
            microcode: 84,
        },
        Product::Turin => TcbVersion {
            fmc: Some(1),
            bootloader: 1,
            tee: 1,
            snp: 4,
            microcode: 81,
        },
    }
}

/// Why the simulated chip could not be created, loaded or used.
#[derive(Debug)]
#[non_exhaustive]
pub enum SimulatedError {
    /// The configuration cannot be simulated.
    Config(String),
    /// A persisted file (or the directory as a whole) is unusable.
    Corrupt {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The state directory holds a chip of another product.
    ProductMismatch {
        /// The state directory.
        path: PathBuf,
        /// The persisted chip's product.
        persisted: Product,
        /// The configured product.
        requested: Product,
    },
    /// Reading or writing the state failed.
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Key generation, signing or randomness failed.
    Crypto(String),
}

impl fmt::Display for SimulatedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("INSECURE SIMULATION chip: ")?;
        match self {
            Self::Config(problem) => write!(f, "configuration: {problem}"),
            Self::Corrupt { path, problem } => write!(f, "{}: {problem}", path.display()),
            Self::ProductMismatch {
                path,
                persisted,
                requested,
            } => write!(
                f,
                "{}: holds a {persisted} chip, but {requested} was requested (use another state directory)",
                path.display()
            ),
            Self::Io {
                action,
                path,
                source,
            } => write!(f, "{action} {}: {source}", path.display()),
            Self::Crypto(problem) => f.write_str(problem),
        }
    }
}

impl std::error::Error for SimulatedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<SimulatedError> for TeeError {
    fn from(err: SimulatedError) -> Self {
        match err {
            SimulatedError::Io {
                action,
                path,
                source,
            } => TeeError::Io {
                action: format!("INSECURE SIMULATION chip: {action} {}", path.display()),
                source,
            },
            other => TeeError::Unavailable {
                provider: NAME,
                reason: other.to_string(),
            },
        }
    }
}

/// A simulated SEV-SNP chip, ready to sign reports.
pub struct SimulatedSnp {
    state: store::ChipState,
    config: SimulatedConfig,
    tcb: TcbVersion,
    vcek: Vec<u8>,
    report_id: [u8; 32],
    state_dir: Option<PathBuf>,
    /// The CRL the chip attaches to its evidence, and its nextUpdate.
    attached_crl: std::sync::Mutex<Option<(Vec<u8>, UnixTime)>>,
}

/// The cRLNumber of the CRL a simulated chip attaches to its evidence:
/// below the simulated vendor's (which starts at 1), so that a verifier
/// that has fetched the vendor's CRL refuses the attached one as older.
pub const ATTACHED_CRL_NUMBER: u64 = 0;

/// How long the attached CRL is valid (it is re-issued a week before).
const ATTACHED_CRL_DAYS: i64 = 30;

impl fmt::Debug for SimulatedSnp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatedSnp (INSECURE SIMULATION)")
            .field("product", &self.state.product)
            .field("chip_id", &hex(&self.state.chip_id))
            .field("tcb", &self.tcb)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

fn serial_of(der: &[u8]) -> Vec<u8> {
    accord_core::x509::Certificate::from_der(der)
        .map(|cert| cert.serial().to_vec())
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn check_config(config: &SimulatedConfig) -> Result<(), SimulatedError> {
    if config.policy & GuestPolicy::RESERVED_MBO == 0 {
        return Err(SimulatedError::Config(format!(
            "guest policy {:#x} has bit 17 clear (the firmware requires it)",
            config.policy
        )));
    }
    if config.vmpl > 3 {
        return Err(SimulatedError::Config(format!(
            "VMPL {} is not 0..=3",
            config.vmpl
        )));
    }
    if let Some(tcb) = config.tcb
        && tcb.fmc.is_some() != config.product.has_fmc()
    {
        return Err(SimulatedError::Config(format!(
            "a {} TCB {} an FMC version",
            config.product,
            if config.product.has_fmc() {
                "needs"
            } else {
                "has no"
            }
        )));
    }
    Ok(())
}

impl SimulatedSnp {
    /// Opens the chip persisted in `state_dir`, creating (and persisting) a
    /// new one on first use. Says INSECURE SIMULATION on stderr.
    pub fn open(state_dir: &Path, config: &SimulatedConfig) -> Result<Self, SimulatedError> {
        check_config(config)?;
        let (state, verb) = match store::load(state_dir)? {
            Some(state) => (state, "loaded"),
            None => {
                let tcb = config.tcb.unwrap_or(default_tcb(config.product));
                let fresh = store::generate(config.product, tcb)?;
                (store::save_new(state_dir, fresh)?, "created")
            }
        };
        if state.product != config.product {
            return Err(SimulatedError::ProductMismatch {
                path: state_dir.to_path_buf(),
                persisted: state.product,
                requested: config.product,
            });
        }
        let chip = Self::from_state(state, config, Some(state_dir.to_path_buf()))?;
        chip.banner(verb);
        Ok(chip)
    }

    /// Generates a chip that lives only in memory (nothing is persisted).
    /// Slow: two RSA-4096 key generations.
    pub fn ephemeral(config: &SimulatedConfig) -> Result<Self, SimulatedError> {
        check_config(config)?;
        let tcb = config.tcb.unwrap_or(default_tcb(config.product));
        let state = store::generate(config.product, tcb)?;
        let chip = Self::from_state(state, config, None)?;
        chip.banner("created (in memory)");
        Ok(chip)
    }

    /// The same chip with another configuration (same product): another
    /// measurement, host data, policy, VMPL or TCB, without loading or
    /// generating keys again. A fresh REPORT_ID, as for a new launch.
    pub fn reconfigured(&self, config: &SimulatedConfig) -> Result<Self, SimulatedError> {
        check_config(config)?;
        if config.product != self.state.product {
            return Err(SimulatedError::ProductMismatch {
                path: self.state_dir.clone().unwrap_or_default(),
                persisted: self.state.product,
                requested: config.product,
            });
        }
        let state = store::ChipState {
            ark_key: self.state.ark_key.clone(),
            ask_key: self.state.ask_key.clone(),
            vcek_key: self.state.vcek_key.clone(),
            ark: self.state.ark.clone(),
            ask: self.state.ask.clone(),
            vcek: self.state.vcek.clone(),
            product: self.state.product,
            tcb: self.state.tcb,
            chip_id: self.state.chip_id,
        };
        Self::from_state(state, config, self.state_dir.clone())
    }

    fn from_state(
        state: store::ChipState,
        config: &SimulatedConfig,
        state_dir: Option<PathBuf>,
    ) -> Result<Self, SimulatedError> {
        let tcb = config.tcb.unwrap_or(state.tcb);
        let vcek = if tcb == state.tcb {
            state.vcek.clone()
        } else {
            store::reissue_vcek(&state, tcb)?
        };
        let mut report_id = [0u8; 32];
        getrandom::fill(&mut report_id)
            .map_err(|err| SimulatedError::Crypto(format!("getrandom: {err}")))?;
        Ok(Self {
            state,
            config: config.clone(),
            tcb,
            vcek,
            report_id,
            state_dir,
            attached_crl: std::sync::Mutex::new(None),
        })
    }

    /// The ARK-signed CRL the chip attaches to its evidence (number
    /// [`ATTACHED_CRL_NUMBER`], revoking nothing, issued a day ago and
    /// valid 30 days), issued on first use and again a week before its
    /// nextUpdate. So that standalone agents and initializers, which
    /// reach no vendor, still pass the revocation check rather than skip
    /// it.
    pub fn attached_crl(&self) -> Result<Vec<u8>, SimulatedError> {
        const DAY: i64 = 86_400;
        let now = UnixTime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        );
        let mut held = self.attached_crl.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((crl, next_update)) = held.as_ref()
            && now.0 < next_update.0 - 7 * DAY
        {
            return Ok(crl.clone());
        }
        let spec = CrlSpec {
            number: ATTACHED_CRL_NUMBER,
            this_update: UnixTime(now.0 - DAY),
            next_update: UnixTime(now.0 - DAY + ATTACHED_CRL_DAYS * DAY),
            revoked: Vec::new(),
        };
        let crl = self.issue_crl(&spec)?;
        *held = Some((crl.clone(), spec.next_update));
        Ok(crl)
    }

    fn banner(&self, verb: &str) {
        let where_ = self
            .state_dir
            .as_ref()
            .map_or_else(String::new, |d| format!(" in {}", d.display()));
        eprintln!(
            "accord: INSECURE SIMULATION: simulated SEV-SNP chip ({}, chip id {}…) {verb}{where_}; its evidence proves nothing about hardware",
            self.state.product,
            hex(self.state.chip_id.get(..8).unwrap_or(&[])),
        );
    }

    /// The product this chip imitates.
    pub fn product(&self) -> Product {
        self.state.product
    }

    /// CHIP_ID (Turin: 8 bytes, then zeros).
    pub fn chip_id(&self) -> [u8; 64] {
        self.state.chip_id
    }

    /// The TCB the reports carry.
    pub fn tcb(&self) -> TcbVersion {
        self.tcb
    }

    /// The configuration the reports follow.
    pub fn config(&self) -> &SimulatedConfig {
        &self.config
    }

    /// The VCEK certificate (DER) matching the reported TCB.
    pub fn vcek_der(&self) -> &[u8] {
        &self.vcek
    }

    /// Where the chip is persisted (`None` for an ephemeral chip).
    pub fn state_dir(&self) -> Option<&Path> {
        self.state_dir.as_deref()
    }

    /// The simulated ARK and ASK (DER), for reference values that trust
    /// this chip explicitly.
    pub fn trusted_root(&self) -> TrustedRoot {
        TrustedRoot {
            ark: self.state.ark.clone(),
            ask: self.state.ask.clone(),
            asvk: None,
        }
    }

    /// The simulated ARK certificate (DER).
    pub fn ark_der(&self) -> &[u8] {
        &self.state.ark
    }

    /// The simulated ASK certificate (DER).
    pub fn ask_der(&self) -> &[u8] {
        &self.state.ask
    }

    /// The ASK then the ARK, PEM: what AMD's KDS answers at
    /// `/vcek/v1/<product>/cert_chain`.
    pub fn cert_chain_pem(&self) -> String {
        let pem = accord_core::der::write::pem;
        format!(
            "{}{}",
            pem("CERTIFICATE", &self.state.ask),
            pem("CERTIFICATE", &self.state.ark)
        )
    }

    /// The ASK's serial number (big-endian), for a CRL that revokes it.
    pub fn ask_serial(&self) -> Vec<u8> {
        serial_of(&self.state.ask)
    }

    /// The serial number of the VCEK the reports are signed under (the one
    /// for the reported TCB), for a CRL that revokes it.
    pub fn vcek_serial(&self) -> Vec<u8> {
        serial_of(&self.vcek)
    }

    /// The chip's VCEK certificate (DER) for `tcb`, as AMD's KDS issues it:
    /// the persisted one for the TCB the chip was created with, else one
    /// issued now for `tcb` under the serial derived from chip and TCB.
    pub fn issue_vcek(&self, tcb: TcbVersion) -> Result<Vec<u8>, SimulatedError> {
        if tcb.fmc.is_some() != self.state.product.has_fmc() {
            return Err(SimulatedError::Config(format!(
                "a {} TCB {} an FMC version",
                self.state.product,
                if self.state.product.has_fmc() {
                    "needs"
                } else {
                    "has no"
                }
            )));
        }
        if tcb == self.state.tcb {
            return Ok(self.state.vcek.clone());
        }
        store::reissue_vcek(&self.state, tcb)
    }

    /// A CRL signed by the chip's ARK (RSASSA-PSS SHA-384, as AMD signs
    /// its `/vcek/v1/<product>/crl`), saying what `spec` says.
    pub fn issue_crl(&self, spec: &CrlSpec) -> Result<Vec<u8>, SimulatedError> {
        pki::issue_crl(self.state.product, &self.state.ark_key, spec)
            .map_err(SimulatedError::Crypto)
    }

    /// Reference values that accept exactly this chip's reports as
    /// configured: product, measurement, host data, VMPL, guest policy,
    /// minimum TCB, chip id, and the simulated root as
    /// `InsecureTrustedRoot`.
    pub fn reference_values(&self) -> SnpReferenceValues {
        let policy = GuestPolicy(self.config.policy);
        let tcb = MinimumTcb {
            bootloader: self.tcb.bootloader,
            tee: self.tcb.tee,
            snp: self.tcb.snp,
            microcode: self.tcb.microcode,
            fmc: self.tcb.fmc,
        };
        SnpReferenceValues {
            platform: Some("INSECURE SIMULATION".to_string()),
            product_name: Some(self.state.product),
            trusted_measurement: Some(HexBytes(self.config.measurement)),
            minimum_tcb: Some(tcb),
            guest_policy: Some(ReferencePolicy {
                abi_minor: policy.abi_minor(),
                abi_major: policy.abi_major(),
                smt: policy.smt(),
                migrate_ma: policy.migrate_ma(),
                debug: policy.debug(),
                single_socket: policy.single_socket(),
                cxl_allowed: policy.cxl_allowed(),
                mem_aes_256_xts: policy.mem_aes_256_xts(),
                rapl_dis: policy.rapl_dis(),
                ciphertext_hiding_dram: policy.ciphertext_hiding_dram(),
                page_swap_disable: policy.page_swap_disable(),
            }),
            allowed_chip_ids: vec![HexBytes(self.state.chip_id)],
            host_data: Some(HexBytes(self.config.host_data)),
            vmpl: u8::try_from(self.config.vmpl).ok(),
            insecure_trusted_root: Some(self.trusted_root()),
            ..SnpReferenceValues::default()
        }
    }

    /// The signed 1184-byte report for `report_data`.
    pub fn report(&self, report_data: &[u8; 64]) -> [u8; accord_core::evidence::snp::REPORT_LEN] {
        let fields = report::ReportFields {
            product: self.state.product,
            policy: self.config.policy,
            vmpl: self.config.vmpl,
            measurement: self.config.measurement,
            host_data: self.config.host_data,
            report_id: self.report_id,
            tcb: self.tcb,
            chip_id: self.state.chip_id,
        };
        report::build(&fields, report_data, &self.state.vcek_key)
    }
}

impl TeeProvider for SimulatedSnp {
    fn name(&self) -> &'static str {
        NAME
    }

    fn is_insecure(&self) -> bool {
        true
    }

    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence, TeeError> {
        Ok(Evidence::Snp(SnpEvidence {
            report: self.report(report_data).to_vec(),
            vcek: Some(self.vcek.clone()),
            ask: Some(self.state.ask.clone()),
            ark: Some(self.state.ark.clone()),
            crl: Some(self.attached_crl().map_err(TeeError::from)?),
        }))
    }
}

/// Opens (creating on first use) the simulated chip whose state lives in
/// `state_dir`.
pub fn open(state_dir: &Path, config: &SimulatedConfig) -> Result<Box<dyn TeeProvider>, TeeError> {
    Ok(Box::new(SimulatedSnp::open(state_dir, config)?))
}
