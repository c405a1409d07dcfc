//! `accord-guest`: the agent binary.
//!
//! - `report`: asks the TEE for evidence and prints or stores it.
//! - `coordinator`: runs the coordinator (user API, mesh API) over a state
//!   directory.
//! - `init`: PID 1 of the guest image (runs the coordinator).
//! - `initializer`: gets a mesh certificate for the workload from the
//!   coordinator its flags pin (code and deployment) and writes it where
//!   the workload expects it.
//!
//! Exit codes: 0 success, 1 failure (one line on stderr), 2 usage error.
//!
//! The INSECURE simulated chip (`--tee insecure-simulated` and its flags)
//! and the INSECURE simulated TDX (`--tee insecure-simulated-tdx`, the same
//! flags: `--measurement` is MRTD, `--host-data`/`--policy` the policy hash
//! in MRCONFIGID, `--tdx-quote-version` 4 or 5) exist only in builds with
//! the `insecure-simulation` feature (tests, the demo, the QEMU test
//! image); elsewhere every subcommand refuses them first, naming the
//! feature, with exit code 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use accord_core::evidence::snp::AttestationReport;
use accord_core::evidence::{Evidence, ReferenceValues, SnpEvidence, TdxEvidence};
use accord_core::hex;
use accord_core::manifest::{Manifest, OwnerKey, SeedshareKey};
use accord_core::pins::{self, CoordinatorPins, DeploymentPins, PinsError};
use accord_guest::initializer::InitializerConfig;
use accord_guest::tee::{self, PROVIDER_NAMES, TeeOptions, TeeProvider};
use anyhow::{Context, bail};
#[cfg(feature = "insecure-simulation")]
use clap::ValueEnum;
use clap::{Args, Parser, Subcommand};

/// The environment variable that sets the INSECURE simulated chip's
/// HOST_DATA (as `--host-data`): set by whoever launches the container,
/// as a hypervisor sets HOST_DATA at launch (the end-to-end container test,
/// `cargo xtask container-test`).
#[cfg(feature = "insecure-simulation")]
const HOST_DATA_ENV: &str = "ACCORD_INSECURE_SIMULATED_HOST_DATA";

/// The banner printed whenever evidence comes from the simulated chip.
const INSECURE_BANNER: &str =
    "INSECURE SIMULATION: this evidence proves nothing about real hardware";

/// accord's agent inside the confidential VM.
#[derive(Parser, Debug)]
#[command(name = "accord-guest", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Ask the TEE for evidence over REPORT_DATA and print it or store it.
    ///
    /// The provider is detected (configfs-tsm, then /dev/sev-guest) unless
    /// --tee names one. With --out DIR the evidence is written as
    /// DIR/report.bin (SEV-SNP) or DIR/quote.bin (TDX), plus vcek.pem,
    /// ask.pem and ark.pem when the platform handed them out, so that
    /// `accord evidence verify --snp DIR/report.bin` can check it.
    ///
    /// The insecure simulated chip is used only with
    /// `--tee insecure-simulated` (in builds with the `insecure-simulation`
    /// feature); its evidence proves nothing.
    Report(ReportArgs),

    /// Run the coordinator: the user API and the mesh API over the store
    /// in STATE/store, or over the host shim's store with --shim (the
    /// simulated chip, if used, keeps its state in STATE/chip).
    ///
    /// Prints `accord-guest coordinator: user API on ADDR, mesh API on
    /// ADDR, store STATE/store` (or `store shim ADDR`) once listening. Stops on SIGTERM or Ctrl-C.
    Coordinator(CoordinatorArgs),

    /// Attest to the coordinator's mesh API, check that the coordinator is
    /// the pinned one, and write the workload's certificate, key, CA
    /// certificates and workload secret under --out.
    ///
    /// The host routes the connection, so the coordinator is checked
    /// against what the workload trusts (its measured init-data carries
    /// it): its evidence against --coordinator-reference-values and
    /// --coordinator-policy, then its deployment: every sharing of its seed
    /// must use only --seedshare-owner keys and need at least
    /// --seedshare-threshold of them, its workload owners must be among
    /// --workload-owner (if given), its root CA must be --root-ca-sha256
    /// (if given), and the certificate must be for our key and chain to
    /// that root. --trust-manifest FILE takes all but the root CA from a
    /// manifest. Without seed-share owners or a root CA pin it refuses to
    /// start.
    ///
    /// Nothing is written unless every check passed. Each attempt prints
    /// one line: `attempt N failed: ...` (network, not ready: retried with
    /// backoff, 1 s doubling to 10 s) or `attempt N refused the
    /// coordinator at ADDR: check NAME: ...` (not the pinned coordinator
    /// or deployment: retried every 10 s, since the host may route the
    /// next connection elsewhere), until a certificate comes or
    /// --max-attempts are used up.
    Initializer(InitializerArgs),

    /// Print the reference values (manifest `ReferenceValues` JSON) that
    /// accept the INSECURE simulated chip in --state: its measurement,
    /// TCB and policy, with its own root trusted explicitly. HOST_DATA is
    /// left out: each workload's policy hash is pinned by the manifest's
    /// Policies instead. Only with `--tee insecure-simulated` (an `snp`
    /// entry) or `--tee insecure-simulated-tdx` (a `tdx` entry), in builds
    /// with the `insecure-simulation` feature.
    ReferenceValues(ReferenceValuesArgs),

    /// PID 1 of the guest image: mount, load modules, bring up eth0, then
    /// run the coordinator with the settings of the kernel command line
    /// (`accord.tee=`, `accord.shim=`, ...; see ARCHITECTURE.md, "The
    /// guest image"); powers the machine off when it ends. Refuses to run
    /// unless it is PID 1.
    Init,
}

#[derive(Args, Debug)]
struct ReferenceValuesArgs {
    /// Must be `insecure-simulated` or `insecure-simulated-tdx`: real
    /// hardware's reference values come from its vendor and the image
    /// build, not from this machine.
    #[arg(long, value_name = "NAME")]
    tee: String,

    #[cfg(feature = "insecure-simulation")]
    #[command(flatten)]
    simulated: SimulatedArgs,
}

#[derive(Args, Debug)]
struct CoordinatorArgs {
    /// TEE provider to use instead of detection.
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(PROVIDER_NAMES))]
    tee: Option<String>,

    /// State directory: `store/` (unless --shim) and (simulated chip)
    /// `chip/`. With --shim and without it, the simulated chip is in
    /// /var/lib/accord/insecure-simulated-chip.
    #[arg(long, value_name = "DIR", required_unless_present = "shim")]
    state: Option<PathBuf>,

    /// The host shim (`accord-shim`) at HOST:PORT keeps the history, lists
    /// the peers for peer recovery, and serves probes and metrics from
    /// this coordinator's reports. It is untrusted: everything it returns
    /// is checked.
    #[arg(long, value_name = "HOST:PORT")]
    shim: Option<String>,

    /// Address of the user API.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:1313")]
    user_api: String,

    /// Address of the mesh API.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:7777")]
    mesh_api: String,

    #[cfg(feature = "insecure-simulation")]
    #[command(flatten)]
    chip: ChipArgs,
}

#[derive(Args, Debug)]
struct InitializerArgs {
    /// The coordinator's mesh API.
    #[arg(long, value_name = "HOST:PORT")]
    coordinator: String,

    /// Where to write `tls-config/` and `secrets/`.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    /// Give up after N failed attempts (default: never).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: Option<u32>,

    /// Give the written directories and files to user UID (the workload's
    /// user, when it is not root: the key and secret are 0400). Needs
    /// CAP_CHOWN.
    #[arg(long, value_name = "UID")]
    owner: Option<u32>,

    /// TEE provider to use instead of detection.
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(PROVIDER_NAMES))]
    tee: Option<String>,

    #[command(flatten)]
    trust: TrustArgs,

    #[cfg(feature = "insecure-simulation")]
    #[command(flatten)]
    simulated: SimulatedArgs,
}

/// The heading of the initializer's trust flags.
const TRUST: &str = "What the workload trusts (its measured init-data carries these)";

/// What the workload trusts of its coordinator.
#[derive(Args, Debug)]
struct TrustArgs {
    /// Take the coordinator policy hashes (the policies with role
    /// coordinator), reference values, seed-share owners and threshold and
    /// workload owners from this manifest (after a re-share, pin every
    /// sharing's owners with the explicit flags instead).
    #[arg(long, value_name = "FILE", help_heading = TRUST, conflicts_with_all = [
        "coordinator_policy", "coordinator_reference_values", "seedshare_owner",
        "seedshare_threshold", "workload_owner",
    ])]
    trust_manifest: Option<PathBuf>,

    /// A coordinator policy hash (SNP HOST_DATA / TDX MRCONFIGID, 32 bytes
    /// hex) the coordinator's evidence may carry; repeatable.
    #[arg(long, value_name = "HEX", value_parser = parse_hex::<32>, help_heading = TRUST)]
    coordinator_policy: Vec<[u8; 32]>,

    /// The coordinator's reference values: a manifest's `ReferenceValues`
    /// JSON object, in FILE or given inline (a value starting with `{`, as
    /// `accord generate` writes it into the measured arguments).
    #[arg(long, value_name = "FILE|JSON", help_heading = TRUST)]
    coordinator_reference_values: Option<PathBuf>,

    /// A seed-share owner of the deployment: X25519 key, raw (32 bytes hex)
    /// or as in the manifest (SubjectPublicKeyInfo hex); repeatable. Every
    /// sharing of the coordinator's seed must use only these.
    #[arg(long, value_name = "HEX", value_parser = parse_seedshare_owner, requires = "seedshare_threshold", help_heading = TRUST)]
    seedshare_owner: Vec<SeedshareKey>,

    /// How many seed-share owners every sharing must need at least.
    #[arg(long, value_name = "N", requires = "seedshare_owner", value_parser = clap::value_parser!(u32).range(1..), help_heading = TRUST)]
    seedshare_threshold: Option<u32>,

    /// A workload owner (SubjectPublicKeyInfo hex, Ed25519 or P-384);
    /// repeatable. If given, the coordinator's current workload owners
    /// (who may re-share the seed) must be among these.
    #[arg(long, value_name = "HEX", value_parser = parse_owner_key, help_heading = TRUST)]
    workload_owner: Vec<OwnerKey>,

    /// SHA-256 of the deployment's root CA certificate's
    /// SubjectPublicKeyInfo (the root key is derived from the seed, so it
    /// names the deployment); alone or with the flags above.
    #[arg(long, value_name = "HEX", value_parser = parse_hex::<32>, help_heading = TRUST)]
    root_ca_sha256: Option<[u8; 32]>,
}

impl TrustArgs {
    /// The pins, checked (fail closed); a usage error names the flags to
    /// pass.
    fn pins(&self) -> Result<CoordinatorPins, String> {
        let mut pins = match &self.trust_manifest {
            Some(path) => {
                let bytes =
                    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
                let manifest = Manifest::from_json(&bytes)
                    .map_err(|e| format!("{}: not a manifest: {e}", path.display()))?;
                manifest.validate().map_err(|errors| {
                    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                    format!("{}: invalid manifest: {}", path.display(), text.join("; "))
                })?;
                CoordinatorPins::from_manifest(manifest.doc())
            }
            None => {
                let reference = match &self.coordinator_reference_values {
                    Some(path) => {
                        let bytes = match path.to_str() {
                            Some(inline) if inline.trim_start().starts_with('{') => {
                                inline.as_bytes().to_vec()
                            }
                            _ => std::fs::read(path)
                                .map_err(|e| format!("reading {}: {e}", path.display()))?,
                        };
                        pins::parse_reference_values(&bytes).map_err(|e| {
                            format!("{}: invalid reference values: {e}", path.display())
                        })?
                    }
                    None => ReferenceValues::default(),
                };
                CoordinatorPins {
                    policy_hashes: self.coordinator_policy.clone(),
                    reference,
                    deployment: DeploymentPins {
                        seedshare_owners: self.seedshare_owner.clone(),
                        seedshare_threshold: self.seedshare_threshold.unwrap_or(0),
                        workload_owners: (!self.workload_owner.is_empty())
                            .then(|| self.workload_owner.clone()),
                        root_ca_spki_sha256: None,
                    },
                }
            }
        };
        pins.deployment.root_ca_spki_sha256 = self.root_ca_sha256;
        pins.check().map_err(|err| {
            let hint = match (&err, &self.trust_manifest) {
                (PinsError::NoCoordinatorPolicy, None) => {
                    "pass --coordinator-policy HEX (the coordinator's HOST_DATA / MRCONFIGID) or --trust-manifest FILE"
                }
                (PinsError::NoReferenceValues, None) => {
                    "pass --coordinator-reference-values FILE or --trust-manifest FILE"
                }
                (PinsError::NoDeploymentPin, None) => {
                    "pass --seedshare-owner HEX (repeatable) with --seedshare-threshold N, and/or --root-ca-sha256 HEX, or --trust-manifest FILE"
                }
                (PinsError::NoDeploymentPin, Some(_)) => {
                    "the manifest names no seed-share owners: pin its root CA with --root-ca-sha256 HEX"
                }
                (PinsError::ThresholdZero | PinsError::ThresholdAboveOwners { .. }, None) => {
                    "pass --seedshare-threshold N from 1 to the number of --seedshare-owner keys"
                }
                _ => "fix the manifest passed to --trust-manifest",
            };
            format!("refusing to start: {err}; {hint}")
        })?;
        Ok(pins)
    }
}

fn parse_seedshare_owner(text: &str) -> Result<SeedshareKey, String> {
    pins::parse_seedshare_owner(text)
}

fn parse_owner_key(text: &str) -> Result<OwnerKey, String> {
    OwnerKey::from_hex(text.trim())
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// Report data as hex: 1 to 64 bytes, zero-padded on the right to 64.
    #[arg(long, value_name = "HEX", value_parser = parse_report_data)]
    report_data: [u8; 64],

    /// TEE provider to use instead of detection.
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(PROVIDER_NAMES))]
    tee: Option<String>,

    /// Write the evidence into DIR (created if missing; files replaced
    /// atomically) instead of printing it.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Print JSON (hex-encoded blobs) instead of a readable summary.
    #[arg(long, conflicts_with = "out")]
    json: bool,

    /// configfs-tsm report root.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/sys/kernel/config/tsm/report"
    )]
    configfs_root: PathBuf,

    /// SEV guest device.
    #[arg(long, value_name = "PATH", default_value = "/dev/sev-guest")]
    sev_guest_device: PathBuf,

    #[cfg(feature = "insecure-simulation")]
    #[command(flatten)]
    simulated: SimulatedArgs,
}

/// Options of the INSECURE simulated chip (only with --tee insecure-simulated).
#[cfg(feature = "insecure-simulation")]
#[derive(Args, Debug)]
struct SimulatedArgs {
    /// Where the simulated chip keeps its keys and certificates
    /// [default: /var/lib/accord/insecure-simulated-chip].
    #[arg(long, value_name = "DIR", help_heading = "Simulated chip (INSECURE)")]
    state: Option<PathBuf>,

    #[command(flatten)]
    chip: ChipArgs,
}

/// What the INSECURE simulated chip reports (only with --tee
/// insecure-simulated). `--host-data` or `--policy` stand in for what the
/// hypervisor sets at launch.
#[cfg(feature = "insecure-simulation")]
#[derive(Args, Debug)]
struct ChipArgs {
    /// MEASUREMENT to report (48 bytes hex).
    #[arg(long, value_name = "HEX48", value_parser = parse_hex::<48>, help_heading = "Simulated chip (INSECURE)")]
    measurement: Option<[u8; 48]>,

    /// HOST_DATA to report (32 bytes hex). In containers, whoever starts
    /// the pod stands in for the hypervisor and sets the environment
    /// variable (the pod's policy hash; the pod's YAML cannot carry it).
    #[arg(long, value_name = "HEX32", value_parser = parse_hex::<32>, env = HOST_DATA_ENV, conflicts_with = "policy", help_heading = "Simulated chip (INSECURE)")]
    host_data: Option<[u8; 32]>,

    /// Report HOST_DATA = SHA-256 of this policy file.
    #[arg(long, value_name = "FILE", help_heading = "Simulated chip (INSECURE)")]
    policy: Option<PathBuf>,

    /// Which AMD generation to imitate.
    #[arg(long, value_enum, help_heading = "Simulated chip (INSECURE)")]
    product: Option<ProductArg>,

    /// The simulated TDX's quote version: 4 (TD report 1.0, the default)
    /// or 5 (TD report 1.5).
    #[arg(long, value_name = "4|5", value_parser = clap::value_parser!(u16).range(4..=5), help_heading = "Simulated chip (INSECURE)")]
    tdx_quote_version: Option<u16>,
}

#[cfg(feature = "insecure-simulation")]
impl SimulatedArgs {
    fn any(&self) -> bool {
        self.state.is_some() || self.chip.any()
    }

    /// `options` with the chip's state directory (if given) and the chip
    /// flags applied.
    fn configure(&self, mut options: TeeOptions) -> anyhow::Result<TeeOptions> {
        if let Some(state) = &self.state {
            options.simulated_state.clone_from(state);
        }
        self.chip.apply(&mut options)?;
        Ok(options)
    }
}

#[cfg(feature = "insecure-simulation")]
impl ChipArgs {
    fn any(&self) -> bool {
        self.measurement.is_some()
            || self.host_data.is_some()
            || self.policy.is_some()
            || self.product.is_some()
            || self.tdx_quote_version.is_some()
    }

    /// Applies the flags to the simulated chip's configuration.
    fn apply(&self, options: &mut TeeOptions) -> anyhow::Result<()> {
        if let Some(measurement) = self.measurement {
            options.simulated.measurement = measurement;
        }
        if let Some(host_data) = self.host_data {
            options.simulated.host_data = host_data;
        }
        if let Some(policy) = &self.policy {
            let bytes = std::fs::read(policy)
                .with_context(|| format!("reading policy file {}", policy.display()))?;
            options.simulated.host_data = accord_core::crypto::default_provider().sha256(&[&bytes]);
        }
        if let Some(version) = self.tdx_quote_version {
            options.simulated.tdx_quote_version = version;
        }
        if let Some(product) = self.product {
            options.simulated.product = match product {
                ProductArg::Genoa => accord_core::evidence::snp::Product::Genoa,
                ProductArg::Turin => accord_core::evidence::snp::Product::Turin,
            };
        }
        Ok(())
    }
}

#[cfg(feature = "insecure-simulation")]
impl ChipArgs {
    /// The usage error of a flag that the simulated TEE `tee` does not
    /// read: `--product` is the SEV-SNP chip's, `--tdx-quote-version` the
    /// TDX platform's.
    fn misfit(&self, tee: Option<&str>) -> Option<String> {
        match tee {
            Some(tee::INSECURE_SIMULATED_TDX) if self.product.is_some() => Some(format!(
                "error: --product applies only to --tee {}",
                tee::INSECURE_SIMULATED
            )),
            Some(tee::INSECURE_SIMULATED) if self.tdx_quote_version.is_some() => Some(format!(
                "error: --tdx-quote-version applies only to --tee {}",
                tee::INSECURE_SIMULATED_TDX
            )),
            _ => None,
        }
    }
}

#[cfg(feature = "insecure-simulation")]
const SIMULATED_ONLY: &str = "error: --state (of the chip), --measurement, --host-data, --policy, --product and --tdx-quote-version apply only to --tee insecure-simulated or insecure-simulated-tdx";

/// Opens the TEE named by `tee` (or detects one), printing the INSECURE
/// banner for the simulated chip.
fn open_tee(tee: Option<&str>, options: &TeeOptions) -> anyhow::Result<Box<dyn TeeProvider>> {
    let provider: Box<dyn TeeProvider> = match tee {
        Some(name) => tee::open(name, options)?,
        None => tee::detect(options)?,
    };
    if let Some(banner) = banner(provider.as_ref()) {
        eprintln!("{banner}");
    }
    Ok(provider)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn coordinator(args: CoordinatorArgs) -> anyhow::Result<ExitCode> {
    tee::check_built(args.tee.as_deref())?;
    #[cfg(feature = "insecure-simulation")]
    if args.chip.any() && !args.tee.as_deref().is_some_and(tee::is_simulated) {
        eprintln!("{SIMULATED_ONLY}");
        return Ok(ExitCode::from(2));
    }
    #[cfg(feature = "insecure-simulation")]
    if let Some(message) = args.chip.misfit(args.tee.as_deref()) {
        eprintln!("{message}");
        return Ok(ExitCode::from(2));
    }
    // Without --state (so with --shim), the simulated chip is in its
    // default directory (TeeOptions), as the initializer's.
    if let Some(state) = &args.state {
        std::fs::create_dir_all(state).with_context(|| format!("creating {}", state.display()))?;
    }
    let options = TeeOptions::default();
    #[cfg(feature = "insecure-simulation")]
    let options = {
        let mut options = options;
        if let Some(state) = &args.state {
            options.simulated_state = state.join("chip");
        }
        args.chip.apply(&mut options)?;
        options
    };
    let provider: Arc<dyn TeeProvider> = open_tee(args.tee.as_deref(), &options)?.into();
    let store = match (args.shim, args.state) {
        (Some(addr), _) => accord_guest::coordinator::StoreLocation::Shim(addr),
        (None, Some(state)) => accord_guest::coordinator::StoreLocation::Dir(state),
        (None, None) => unreachable_args()?,
    };
    runtime()?.block_on(accord_guest::coordinator::run(
        provider,
        store,
        &args.user_api,
        &args.mesh_api,
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// clap enforces `--state` unless `--shim`; this is only a safety net.
fn unreachable_args<T>() -> anyhow::Result<T> {
    anyhow::bail!("either --state or --shim is required")
}

fn initializer(args: InitializerArgs) -> anyhow::Result<ExitCode> {
    tee::check_built(args.tee.as_deref())?;
    #[cfg(feature = "insecure-simulation")]
    if args.simulated.any() && !args.tee.as_deref().is_some_and(tee::is_simulated) {
        eprintln!("{SIMULATED_ONLY}");
        return Ok(ExitCode::from(2));
    }
    #[cfg(feature = "insecure-simulation")]
    if let Some(message) = args.simulated.chip.misfit(args.tee.as_deref()) {
        eprintln!("{message}");
        return Ok(ExitCode::from(2));
    }
    let pins = match args.trust.pins() {
        Ok(pins) => pins,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    let options = TeeOptions::default();
    #[cfg(feature = "insecure-simulation")]
    let options = args.simulated.configure(options)?;
    let provider: Arc<dyn TeeProvider> = open_tee(args.tee.as_deref(), &options)?.into();
    let config = InitializerConfig {
        coordinator: args.coordinator,
        out: args.out,
        max_attempts: args.max_attempts,
        pins,
        owner: args.owner,
    };
    runtime()?.block_on(accord_guest::initializer::run(provider, &config))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "insecure-simulation")]
#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProductArg {
    /// EPYC 9004 (report version 3).
    Genoa,
    /// EPYC 9005 (report version 5).
    Turin,
}

fn parse_report_data(text: &str) -> Result<[u8; 64], String> {
    let bytes = hex::decode(text.trim()).map_err(|err| err.to_string())?;
    if bytes.is_empty() {
        return Err("report data must be 1 to 64 bytes, got none".to_string());
    }
    if bytes.len() > 64 {
        return Err(format!(
            "report data must be at most 64 bytes, got {}",
            bytes.len()
        ));
    }
    let mut out = [0u8; 64];
    out.get_mut(..bytes.len())
        .ok_or("report data too long")?
        .copy_from_slice(&bytes);
    Ok(out)
}

fn parse_hex<const N: usize>(text: &str) -> Result<[u8; N], String> {
    hex::decode_array(text.trim()).map_err(|err| err.to_string())
}

fn main() -> ExitCode {
    // The image's /init is this binary, started by the kernel without
    // arguments: run as `accord-guest init`.
    let mut args = std::env::args_os();
    let argv0 = args.next().map(PathBuf::from);
    if args.next().is_none() && argv0.as_deref().and_then(Path::file_name) == Some("init".as_ref())
    {
        accord_guest::init::run();
    }
    let cli = Cli::parse();
    if let Err(err) = accord_log::init(accord_log::LevelFilter::INFO) {
        eprintln!("error: {err}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Report(args) => report(args),
        Command::Coordinator(args) => coordinator(args),
        Command::Initializer(args) => initializer(args),
        Command::ReferenceValues(args) => reference_values(&args),
        Command::Init => accord_guest::init::run(),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn reference_values(args: &ReferenceValuesArgs) -> anyhow::Result<ExitCode> {
    if !tee::is_simulated(&args.tee) {
        eprintln!(
            "error: reference values are printed only for --tee insecure-simulated or insecure-simulated-tdx (real hardware's come from the vendor and the image build)"
        );
        return Ok(ExitCode::from(2));
    }
    #[cfg(not(feature = "insecure-simulation"))]
    {
        Err(tee::TeeError::SimulationNotBuilt.into())
    }
    #[cfg(feature = "insecure-simulation")]
    simulated_reference_values(args)
}

/// `reference-values --tee insecure-simulated` (an `snp` entry) or
/// `--tee insecure-simulated-tdx` (a `tdx` entry).
#[cfg(feature = "insecure-simulation")]
fn simulated_reference_values(args: &ReferenceValuesArgs) -> anyhow::Result<ExitCode> {
    if let Some(message) = args.simulated.chip.misfit(Some(&args.tee)) {
        eprintln!("{message}");
        return Ok(ExitCode::from(2));
    }
    let options = args.simulated.configure(TeeOptions::default())?;
    eprintln!("{INSECURE_BANNER}");
    if args.tee == tee::INSECURE_SIMULATED_TDX {
        let platform =
            tee::simulated_tdx::SimulatedTdx::open(&options.simulated_state, &options.simulated)
                .with_context(|| {
                    format!(
                        "opening the simulated TDX platform in {}",
                        options.simulated_state.display()
                    )
                })?;
        let mut tdx = platform.reference_values();
        tdx.policy_hash = None;
        let reference = accord_core::evidence::ReferenceValues {
            snp: Vec::new(),
            tdx: vec![tdx],
        };
        println!("{}", serde_json::to_string_pretty(&reference)?);
        return Ok(ExitCode::SUCCESS);
    }
    let chip = tee::simulated::SimulatedSnp::open(&options.simulated_state, &options.simulated)
        .with_context(|| {
            format!(
                "opening the simulated chip in {}",
                options.simulated_state.display()
            )
        })?;
    let mut snp = chip.reference_values();
    snp.host_data = None;
    let reference = accord_core::evidence::ReferenceValues {
        snp: vec![snp],
        tdx: Vec::new(),
    };
    println!("{}", serde_json::to_string_pretty(&reference)?);
    Ok(ExitCode::SUCCESS)
}

fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    tee::check_built(args.tee.as_deref())?;
    #[cfg(feature = "insecure-simulation")]
    if args.simulated.any() && !args.tee.as_deref().is_some_and(tee::is_simulated) {
        eprintln!(
            "error: --state, --measurement, --host-data, --policy, --product and --tdx-quote-version apply only to --tee insecure-simulated or insecure-simulated-tdx"
        );
        return Ok(ExitCode::from(2));
    }
    #[cfg(feature = "insecure-simulation")]
    if let Some(message) = args.simulated.chip.misfit(args.tee.as_deref()) {
        eprintln!("{message}");
        return Ok(ExitCode::from(2));
    }
    let mut options = TeeOptions::default();
    options.configfs_root.clone_from(&args.configfs_root);
    options.sev_guest_device.clone_from(&args.sev_guest_device);
    #[cfg(feature = "insecure-simulation")]
    let options = args.simulated.configure(options)?;
    let provider = open_tee(args.tee.as_deref(), &options)?;
    let evidence = provider
        .evidence(&args.report_data)
        .with_context(|| format!("getting evidence from {}", provider.name()))?;

    if let Some(dir) = &args.out {
        for name in write_evidence(dir, &evidence)? {
            println!("{}", dir.join(name).display());
        }
    } else if args.json {
        let json = evidence_json(provider.as_ref(), &evidence);
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print!("{}", summary(provider.as_ref(), &evidence));
    }
    Ok(ExitCode::SUCCESS)
}

/// The banner to print on stderr before using `provider`, if any.
fn banner(provider: &dyn TeeProvider) -> Option<&'static str> {
    provider.is_insecure().then_some(INSECURE_BANNER)
}

fn opt_hex(bytes: Option<&Vec<u8>>) -> serde_json::Value {
    bytes.map_or(serde_json::Value::Null, |b| hex::encode(b).into())
}

fn evidence_json(provider: &dyn TeeProvider, evidence: &Evidence) -> serde_json::Value {
    let mut json = serde_json::json!({
        "provider": provider.name(),
        "insecure": provider.is_insecure(),
        "kind": evidence.kind(),
    });
    match evidence {
        Evidence::Snp(snp) => {
            json["report"] = hex::encode(&snp.report).into();
            json["vcek"] = opt_hex(snp.vcek.as_ref());
            json["ask"] = opt_hex(snp.ask.as_ref());
            json["ark"] = opt_hex(snp.ark.as_ref());
        }
        Evidence::Tdx(tdx) => {
            json["quote"] = hex::encode(&tdx.quote).into();
            json["collateral"] = tdx
                .collateral
                .as_ref()
                .map_or(serde_json::Value::Null, |c| {
                    String::from_utf8_lossy(c).into_owned().into()
                });
        }
    }
    json
}

fn summary(provider: &dyn TeeProvider, evidence: &Evidence) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "provider:    {}", provider.name());
    let _ = writeln!(out, "kind:        {}", evidence.kind());
    match evidence {
        Evidence::Snp(snp) => snp_summary(&mut out, snp),
        Evidence::Tdx(tdx) => tdx_summary(&mut out, tdx),
    }
    out
}

fn snp_summary(out: &mut String, snp: &SnpEvidence) {
    use std::fmt::Write as _;
    match AttestationReport::parse(&snp.report) {
        Ok(report) => {
            let _ = writeln!(out, "version:     {}", report.version);
            let _ = writeln!(out, "vmpl:        {}", report.vmpl);
            let _ = writeln!(out, "policy:      {:#x}", report.policy.0);
            let _ = writeln!(out, "measurement: {}", hex::encode(report.measurement));
            let _ = writeln!(out, "host_data:   {}", hex::encode(report.host_data));
            let _ = writeln!(out, "report_data: {}", hex::encode(report.report_data));
            let _ = writeln!(out, "chip_id:     {}", hex::encode(report.chip_id));
            let _ = writeln!(out, "reported_tcb: {:#018x}", report.reported_tcb);
        }
        Err(err) => {
            let _ = writeln!(out, "(the report does not parse: {err})");
        }
    }
    let present = |c: &Option<Vec<u8>>| if c.is_some() { "present" } else { "absent" };
    let _ = writeln!(out, "vcek/vlek:   {}", present(&snp.vcek));
    let _ = writeln!(out, "ask:         {}", present(&snp.ask));
    let _ = writeln!(out, "ark:         {}", present(&snp.ark));
    let _ = writeln!(out, "report ({} bytes):", snp.report.len());
    hex_lines(out, &snp.report);
}

fn tdx_summary(out: &mut String, tdx: &TdxEvidence) {
    use std::fmt::Write as _;
    match tee::tdx::quote_report_data(&tdx.quote) {
        Ok(report_data) => {
            let _ = writeln!(out, "report_data: {}", hex::encode(report_data));
        }
        Err(err) => {
            let _ = writeln!(out, "(the quote does not parse: {err})");
        }
    }
    let collateral = if tdx.collateral.is_some() {
        "present"
    } else {
        "absent"
    };
    let _ = writeln!(out, "collateral:  {collateral}");
    let _ = writeln!(out, "quote ({} bytes):", tdx.quote.len());
    hex_lines(out, &tdx.quote);
}

fn hex_lines(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.chunks(32) {
        out.push_str("  ");
        out.push_str(&hex::encode(chunk));
        out.push('\n');
    }
}

/// PEM of one DER certificate, 64 columns.
fn pem(der: &[u8]) -> String {
    accord_core::der::write::pem("CERTIFICATE", der)
}

/// Writes `bytes` to `dir/name` atomically ([`accord_fs_store::write_atomic`],
/// mode 0644).
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let target = dir.join(name);
    if let Err(err) = accord_fs_store::write_atomic(&target, bytes, 0o644) {
        bail!("writing {}: {err}", target.display());
    }
    Ok(())
}

/// Writes the evidence files into `dir`; returns their names.
fn write_evidence(dir: &Path, evidence: &Evidence) -> anyhow::Result<Vec<&'static str>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = Vec::new();
    match evidence {
        Evidence::Snp(snp) => {
            write_atomic(dir, "report.bin", &snp.report)?;
            files.push("report.bin");
            for (name, cert) in [
                ("vcek.pem", &snp.vcek),
                ("ask.pem", &snp.ask),
                ("ark.pem", &snp.ark),
            ] {
                if let Some(der) = cert {
                    write_atomic(dir, name, pem(der).as_bytes())?;
                    files.push(name);
                }
            }
        }
        Evidence::Tdx(tdx) => {
            write_atomic(dir, "quote.bin", &tdx.quote)?;
            files.push("quote.bin");
            if let Some(collateral) = &tdx.collateral {
                write_atomic(dir, "collateral.json", collateral)?;
                files.push("collateral.json");
            }
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_data_is_zero_padded_and_bounded() {
        let data = parse_report_data("0102").unwrap();
        assert_eq!(&data[..3], &[1, 2, 0]);
        assert_eq!(parse_report_data(&"ab".repeat(64)).unwrap(), [0xab; 64]);
        assert!(parse_report_data("").unwrap_err().contains("1 to 64"));
        assert!(
            parse_report_data(&"ab".repeat(65))
                .unwrap_err()
                .contains("at most 64")
        );
        assert!(parse_report_data("xyz").is_err());
    }

    #[test]
    fn pem_wraps_at_64_columns() {
        let text = pem(&[0x30; 100]);
        let der = accord_core::x509::pem::der_or_pem(text.as_bytes(), "CERTIFICATE").unwrap();
        assert_eq!(der, vec![0x30; 100]);
        assert!(text.lines().all(|l| l.len() <= 64));
    }

    struct Fake(bool);

    impl TeeProvider for Fake {
        fn name(&self) -> &'static str {
            "fake"
        }
        fn is_insecure(&self) -> bool {
            self.0
        }
        fn evidence(&self, _: &[u8; 64]) -> Result<Evidence, tee::TeeError> {
            Err(tee::TeeError::NothingDetected)
        }
    }

    #[test]
    fn insecure_providers_get_the_banner() {
        assert_eq!(
            banner(&Fake(true)),
            Some("INSECURE SIMULATION: this evidence proves nothing about real hardware")
        );
        assert_eq!(banner(&Fake(false)), None);
        assert_eq!(
            evidence_json(&Fake(true), &Evidence::Tdx(TdxEvidence::default()))["insecure"],
            true
        );
    }

    /// The initializer's trust flags after `--coordinator x --out y`.
    fn trust(flags: &[&str]) -> Result<CoordinatorPins, String> {
        let mut argv = vec!["accord-guest", "initializer", "--coordinator", "x:1"];
        argv.extend_from_slice(&["--out", "/nonexistent", "--max-attempts", "1"]);
        argv.extend_from_slice(flags);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        let Command::Initializer(args) = cli.command else {
            unreachable!()
        };
        args.trust.pins()
    }

    /// A file in a fresh temporary directory.
    fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("accord-guest-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    const REFERENCE: &str = r#"{"snp":[{"ProductName":"Genoa","TrustedMeasurement":"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000","MinimumTCB":{"BootloaderVersion":0,"TEEVersion":0,"SNPVersion":0,"MicrocodeVersion":0}}]}"#;

    #[test]
    fn the_initializer_refuses_to_start_unpinned() {
        let policy = "11".repeat(32);
        let owner = "22".repeat(32);
        let reference = temp_file("reference.json", REFERENCE.as_bytes());
        let reference = reference.to_str().unwrap();
        let code = [
            "--coordinator-policy",
            &policy,
            "--coordinator-reference-values",
            reference,
        ];

        let err = trust(&[]).unwrap_err();
        assert!(err.contains("--coordinator-policy HEX"), "{err}");
        let err = trust(&["--coordinator-policy", &policy]).unwrap_err();
        assert!(err.contains("--coordinator-reference-values FILE"), "{err}");
        let err = trust(&code).unwrap_err();
        for flag in [
            "--seedshare-owner",
            "--seedshare-threshold",
            "--root-ca-sha256",
        ] {
            assert!(err.contains(flag), "{err}");
        }
        assert!(err.starts_with("refusing to start"), "{err}");

        // Owners need a threshold, and one they can reach.
        let with_owner = [&code[..], &["--seedshare-owner", &owner]].concat();
        assert!(
            trust(&with_owner)
                .unwrap_err()
                .contains("--seedshare-threshold")
        );
        let too_high = [&with_owner[..], &["--seedshare-threshold", "2"]].concat();
        let err = trust(&too_high).unwrap_err();
        assert!(err.contains("threshold 2 exceeds the 1 pinned"), "{err}");

        let pins = trust(&[&with_owner[..], &["--seedshare-threshold", "1"]].concat()).unwrap();
        assert_eq!(pins.policy_hashes, vec![[0x11; 32]]);
        assert_eq!(
            pins.deployment.seedshare_owners,
            vec![SeedshareKey([0x22; 32])]
        );
        assert_eq!(pins.deployment.workload_owners, None);

        // The root CA alone pins the deployment.
        let root_pin = "33".repeat(32);
        let root = [&code[..], &["--root-ca-sha256", &root_pin]].concat();
        let pins = trust(&root).unwrap();
        assert_eq!(pins.deployment.root_ca_spki_sha256, Some([0x33; 32]));
        assert!(pins.deployment.seedshare_owners.is_empty());

        // Bad reference values are named by their JSON path.
        let bad = temp_file("bad.json", br#"{"snp":[{"ProductName":"Genoa"}]}"#);
        let err = trust(&[
            "--coordinator-policy",
            &policy,
            "--coordinator-reference-values",
            bad.to_str().unwrap(),
            "--root-ca-sha256",
            &"33".repeat(32),
        ])
        .unwrap_err();
        assert!(
            err.contains("ReferenceValues.snp[0].TrustedMeasurement"),
            "{err}"
        );
    }

    #[test]
    fn reference_values_may_be_given_inline() {
        // As `accord generate` writes them into the measured arguments.
        let policy = "11".repeat(32);
        let root_pin = "33".repeat(32);
        let pins = trust(&[
            "--coordinator-policy",
            &policy,
            "--coordinator-reference-values",
            REFERENCE,
            "--root-ca-sha256",
            &root_pin,
        ])
        .unwrap();
        assert_eq!(pins.reference.snp.len(), 1);
        let err = trust(&[
            "--coordinator-policy",
            &policy,
            "--coordinator-reference-values",
            r#"{"snp":[{"ProductName":"Genoa"}]}"#,
            "--root-ca-sha256",
            &root_pin,
        ])
        .unwrap_err();
        assert!(
            err.contains("ReferenceValues.snp[0].TrustedMeasurement"),
            "{err}"
        );
    }

    #[test]
    fn a_manifest_is_trusted_whole() {
        let coordinator = "11".repeat(32);
        let manifest = format!(
            r#"{{"Policies":{{"{coordinator}":{{"SANs":["coordinator"],"Role":"coordinator"}}}},"ReferenceValues":{REFERENCE},"SeedshareOwnerPubKeys":["302a300506032b656e032100{}"],"SeedshareThreshold":1}}"#,
            "22".repeat(32)
        );
        let path = temp_file("manifest.json", manifest.as_bytes());
        let path = path.to_str().unwrap();
        let pins = trust(&["--trust-manifest", path]).unwrap();
        assert_eq!(pins.policy_hashes, vec![[0x11; 32]]);
        assert_eq!(
            pins.deployment.seedshare_owners,
            vec![SeedshareKey([0x22; 32])]
        );
        assert_eq!(pins.deployment.workload_owners, Some(Vec::new()));
        // It takes all but the root CA; the explicit flags conflict.
        let err = trust(&[
            "--trust-manifest",
            path,
            "--seedshare-owner",
            &"44".repeat(32),
        ])
        .unwrap_err();
        assert!(err.contains("cannot be used with"), "{err}");
        let pins = trust(&[
            "--trust-manifest",
            path,
            "--root-ca-sha256",
            &"33".repeat(32),
        ])
        .unwrap();
        assert_eq!(pins.deployment.root_ca_spki_sha256, Some([0x33; 32]));

        // A manifest without seed-share owners needs the root CA pinned.
        let unshared = format!(
            r#"{{"Policies":{{"{coordinator}":{{"SANs":["coordinator"],"Role":"coordinator"}}}},"ReferenceValues":{REFERENCE}}}"#
        );
        let path = temp_file("unshared.json", unshared.as_bytes());
        let path = path.to_str().unwrap();
        let err = trust(&["--trust-manifest", path]).unwrap_err();
        assert!(
            err.contains("pin its root CA with --root-ca-sha256"),
            "{err}"
        );
        assert!(
            trust(&[
                "--trust-manifest",
                path,
                "--root-ca-sha256",
                &"33".repeat(32)
            ])
            .is_ok()
        );
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
