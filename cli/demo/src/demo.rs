//! `accord-demo demo`: a whole deployment in this process, with the INSECURE
//! simulated SEV-SNP chip standing in for the hardware, or with `--tee
//! insecure-simulated-tdx` the INSECURE simulated TDX (coordinator and
//! workloads on TDX: quotes with their collateral attached, verified under
//! the simulated root that the reference values name).
//!
//! In a workspace (a temporary directory, or `--workspace DIR`, which is
//! kept and must be empty or missing) it:
//!
//! 1. starts the INSECURE simulated vendor (`accord-simulated-vendor`: AMD
//!    KDS and Intel PCS URL shapes on 127.0.0.1, serving the simulated
//!    chip's VCEKs and ARK-signed CRL or the simulated TDX's collateral;
//!    its URLs are printed) and a coordinator on 127.0.0.1 ephemeral ports
//!    (its chip and store under `DIR/coordinator/`), deployed first as a
//!    user would: the example's plain `DIR/resources/coordinator.yaml`
//!    (`accord generate --example`'s) goes through `accord generate`
//!    (offline, with the example's `DIR/image-facts.json`, whose images
//!    are synthetic and say so; reference values trusting the simulated
//!    TEE, `DIR/reference-values.json`), and the coordinator is launched
//!    with the hash of the init-data written into that YAML as its host
//!    data (on TDX, MRCONFIGID); its verifier fetches
//!    the collateral it needs from that vendor; every `accord` command of
//!    the demo fetches from it too (`--kds-url`/`--pcs-url`), and records
//!    what it saw in `DIR/collateral/` (the freshness marks, the cache);
//! 2. makes a workload owner key and two seed-share owner keys
//!    (`DIR/keys/`);
//! 3. writes the example's plain Kubernetes YAML for `web` (a
//!    Deployment) and `db` (a StatefulSet) under runtime class
//!    `accord-cc` (`DIR/resources/`) and the reference values, then runs
//!    `accord generate` over `DIR/resources` with the owner keys: each pod
//!    gets its generated Kata agent policy in its init-data annotation,
//!    `web` and `db` the initializer, and `DIR/manifest.json` (and
//!    `DIR/policies/`) their policy hashes; each workload is launched with
//!    the hash of its generated init-data (read back from its YAML);
//! 4. sets the manifest (`accord set`);
//! 5. runs the initializers of `web` and `db`, each launched with its own
//!    policy hash as host data and pinning the coordinator and the
//!    deployment as the manifest names them (`--trust-manifest`), writing
//!    `DIR/workloads/NAME/tls-config/` and `secrets/`;
//! 6. has `web` and `db` talk over mutual TLS with those certificates,
//!    each verifying the other against the mesh CA;
//! 7. verifies the deployment as a third party (`accord verify` in the
//!    auditor's own workspace `DIR/auditor/`, holding only the expected
//!    manifest: it trusts the history key on first use); the owner's
//!    `DIR/verify/` is written by `accord set`, which verifies what it set;
//! 8. shows that an unsigned update is refused, then sets an update (a
//!    new SAN for `web`, `accord.dev/sans` in its YAML, so a new policy
//!    hash through `accord generate`) signed by the workload owner, and
//!    verifies again:
//!    the trust state moves forward with a consistency proof;
//! 9. prints the history (`accord get-manifests`);
//! 10. prints a report, one line per step.
//!
//! With `--replicas N` (N > 1), the coordinator runs as N replica
//! processes sharing one store, and the demo goes on to show peer
//! recovery ([`crate::demo_replicas`]).
//!
//! Exit status 0 only if every step worked; 1 if one failed; 2 if the
//! workspace is unusable.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accord_core::evidence::ReferenceValues;
use accord_core::manifest::Manifest;
use accord_core::pins::CoordinatorPins;
use accord_guest::coordinator::InProcess;
use accord_guest::initializer::InitializerConfig;
use accord_guest::tee::TeeProvider;
use accord_guest::tee::simulated::{SimulatedConfig, SimulatedSnp};
use accord_guest::tee::simulated_tdx::SimulatedTdx;
use accord_guest::tee::{INSECURE_SIMULATED, INSECURE_SIMULATED_TDX};
use accord_simulated_vendor::SimulatedVendor;
use anyhow::{Context, bail};
use clap::{Args, Parser};

use crate::demo_replicas::{Attesting, Replicas, served};
use accord_cli::collateral_args::CollateralArgs;
use accord_cli::collateral_source::FetcherSource;
use accord_cli::generate::{self, example};
use accord_cli::keys::{KeyRole, PrivateKey, write_private_key};
use accord_cli::net::{self, CoordinatorOptions, Failure};
use accord_cli::set_cmd::{self, SetArgs};
use accord_cli::verify_cmd::{self, VerifyArgs};
use accord_cli::{initdata, k8s_yaml};

/// The banner of the simulated chip.
pub const INSECURE_BANNER: &str =
    "INSECURE SIMULATION: this evidence proves nothing about real hardware";

/// How long the demo's clients wait for the coordinator.
const TIMEOUT_SECS: u64 = 30;

/// Arguments of `accord-demo demo`.
#[derive(Clone, Debug, Args)]
pub struct DemoArgs {
    /// Keep everything in DIR (must be empty or missing) instead of a
    /// temporary directory.
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,

    /// Run N coordinator replicas, each a process with its own shim over
    /// one filesystem store (DIR/store), and show peer recovery: one is
    /// killed and restarted mid-way and must come back Ready from its
    /// peers on the same tree head and mesh CA while the others keep
    /// issuing certificates.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=9))]
    pub replicas: u16,

    /// The INSECURE simulated TEE the coordinator and the workloads run
    /// on: the SEV-SNP chip or the TDX platform (not with --replicas).
    #[arg(long, value_name = "NAME", default_value = INSECURE_SIMULATED, value_parser = [INSECURE_SIMULATED, INSECURE_SIMULATED_TDX])]
    pub tee: String,
}

/// The simulated TEE of a demo deployment.
enum Chip {
    /// The INSECURE simulated SEV-SNP chip.
    Snp(SimulatedSnp),
    /// The INSECURE simulated TDX.
    Tdx(SimulatedTdx),
}

/// The demo's pods, as the example's YAML names them (`DIR/resources/NAME.yaml`):
/// the coordinator first.
const WORKLOADS: [&str; 3] = ["coordinator", "web", "db"];

/// The demo's deployment files and its simulated chip.
pub struct Deployment {
    dir: PathBuf,
    chip: Chip,
    /// Seed-share owners (keys written by [`Self::write_keys`]).
    seedshare_owners: usize,
    /// `SeedshareThreshold` of the generated manifest.
    seedshare_threshold: u32,
}

/// `accord generate`'s command line, parsed by clap as the `accord`
/// binary parses it.
#[derive(clap::Parser)]
#[command(name = "accord generate")]
struct GenerateCommand {
    #[command(flatten)]
    args: generate::GenerateArgs,
}

/// Runs `accord generate ARGS` (the binary's code path, as a library
/// call), printing the command line first.
fn accord_generate(args: &[OsString]) -> anyhow::Result<()> {
    let line: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    println!("$ accord generate {}", line.join(" "));
    let parsed = GenerateCommand::try_parse_from(
        std::iter::once(OsString::from("accord generate")).chain(args.iter().cloned()),
    )
    .map_err(|e| anyhow::anyhow!("accord generate {}: {e}", line.join(" ")))?;
    generate::generate_files(&parsed.args)
}

/// The SHA-256 of the init-data in the pod template of `path` (written
/// there by `accord generate`): the host data (SNP) or MRCONFIGID (TDX)
/// that pod is launched with.
fn generated_policy_hash(path: &Path) -> anyhow::Result<[u8; 32]> {
    let resources = k8s_yaml::read_file(path).map_err(|e| match e {
        k8s_yaml::ReadError::Io(e) => e,
        k8s_yaml::ReadError::Invalid(why) => anyhow::anyhow!("{why}"),
    })?;
    let value = resources
        .iter()
        .find_map(|r| r.pod_annotations.as_ref()?.get(initdata::ANNOTATION))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{}: no pod template with the {} annotation (has accord generate run on it?)",
                path.display(),
                initdata::ANNOTATION
            )
        })?;
    let toml = initdata::decode_annotation(value)
        .map_err(|e| anyhow::anyhow!("{}: {}: {e}", path.display(), initdata::ANNOTATION))?;
    Ok(initdata::policy_hash(&toml))
}

impl Deployment {
    /// Opens (creating on first use) the simulated chip in
    /// `DIR/coordinator/chip`; see [`Self::open_on`].
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        Self::open_on(dir, INSECURE_SIMULATED)
    }

    /// Opens (creating on first use) the simulated TEE `tee`
    /// (`insecure-simulated`: the chip in `DIR/coordinator/chip`;
    /// `insecure-simulated-tdx`: the platform in `DIR/coordinator/tdx`).
    ///
    /// On first use it also deploys the coordinator's YAML as a user
    /// would, before any workload: the example's plain
    /// `DIR/resources/coordinator.yaml` goes through `accord generate`
    /// (with the example's `DIR/image-facts.json` and reference values
    /// trusting this TEE, `DIR/reference-values.json`), which writes its
    /// init-data annotation and starts `DIR/manifest.json` with the
    /// coordinator's policy. The coordinator is launched with that
    /// init-data's hash ([`Self::tee`]).
    pub fn open_on(dir: &Path, tee: &str) -> anyhow::Result<Self> {
        // The host data each launch reports is set by `tee()`, from the
        // generated YAML; the chip itself holds only keys.
        let config = SimulatedConfig::default();
        let chip = match tee {
            INSECURE_SIMULATED => Chip::Snp(
                SimulatedSnp::open(&dir.join("coordinator/chip"), &config)
                    .map_err(|e| anyhow::anyhow!("the simulated chip: {e}"))?,
            ),
            INSECURE_SIMULATED_TDX => Chip::Tdx(
                SimulatedTdx::open(&dir.join("coordinator/tdx"), &config)
                    .map_err(|e| anyhow::anyhow!("the simulated TDX: {e}"))?,
            ),
            other => bail!(
                "the demo runs on {INSECURE_SIMULATED} or {INSECURE_SIMULATED_TDX}, not {other}"
            ),
        };
        let deployment = Self {
            dir: dir.to_path_buf(),
            chip,
            seedshare_owners: 2,
            seedshare_threshold: 1,
        };
        if !deployment.resource("coordinator").exists() {
            deployment.generate_coordinator()?;
        }
        Ok(deployment)
    }

    /// `DIR/resources/NAME.yaml`.
    fn resource(&self, name: &str) -> PathBuf {
        self.dir.join("resources").join(format!("{name}.yaml"))
    }

    /// Writes the example's plain `DIR/resources/NAME.yaml`; `web` gets
    /// the annotation `accord.dev/sans` with its default SANs and
    /// `extra_web_san`, if given.
    fn write_plain(&self, name: &str, extra_web_san: Option<&str>) -> anyhow::Result<()> {
        let file = format!("{name}.yaml");
        let mut yaml = example::file(&file)
            .with_context(|| format!("the example has no {file}"))?
            .to_string();
        if let Some(san) = extra_web_san.filter(|_| name == "web") {
            let mut value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml)?;
            let sans =
                format!("web,web.default,web.default.svc,web.default.svc.cluster.local,{san}");
            let metadata = value
                .get_mut("spec")
                .and_then(|s| s.get_mut("template"))
                .and_then(|t| t.get_mut("metadata"))
                .and_then(serde_yaml_ng::Value::as_mapping_mut)
                .context("the example's web.yaml has no spec.template.metadata")?;
            let annotations = metadata
                .entry("annotations".into())
                .or_insert_with(|| serde_yaml_ng::Mapping::new().into());
            annotations
                .as_mapping_mut()
                .context("web.yaml: spec.template.metadata.annotations is not a mapping")?
                .insert("accord.dev/sans".into(), sans.into());
            yaml = serde_yaml_ng::to_string(&value)?;
        }
        let path = self.resource(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))
    }

    /// `DIR/image-facts.json`: the example's (its images are synthetic,
    /// as each entry's `Source` says).
    fn image_facts(&self) -> PathBuf {
        self.dir.join(example::IMAGE_FACTS)
    }

    /// `DIR/reference-values.json`.
    fn reference_values(&self) -> PathBuf {
        self.dir.join("reference-values.json")
    }

    /// Writes `DIR/image-facts.json` and `DIR/reference-values.json`
    /// (trusting this deployment's simulated TEE, without host data: each
    /// workload's is its policy hash, which the manifest's Policies pin).
    fn write_inputs(&self) -> anyhow::Result<()> {
        let facts = example::file(example::IMAGE_FACTS).context("the example has no facts")?;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        std::fs::write(self.image_facts(), facts)
            .with_context(|| format!("writing {}", self.image_facts().display()))?;
        let reference = match &self.chip {
            Chip::Snp(chip) => {
                let mut snp = chip.reference_values();
                snp.host_data = None;
                ReferenceValues {
                    snp: vec![snp],
                    tdx: Vec::new(),
                }
            }
            Chip::Tdx(platform) => {
                let mut tdx = platform.reference_values();
                tdx.policy_hash = None;
                ReferenceValues {
                    snp: Vec::new(),
                    tdx: vec![tdx],
                }
            }
        };
        let path = self.reference_values();
        let mut json = serde_json::to_string_pretty(&reference)?;
        json.push('\n');
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// The coordinator deployed first: its plain YAML through `accord
    /// generate`, which starts `DIR/manifest.json` (reference values and
    /// the coordinator's policy; the owner keys come with the workloads,
    /// [`Self::generate_manifest`]).
    fn generate_coordinator(&self) -> anyhow::Result<()> {
        self.write_inputs()?;
        self.write_plain("coordinator", None)?;
        let mut args = self.generate_inputs();
        // No owner key before step 2: this says so (instead of warning);
        // the workloads' run adds them.
        args.push("--disable-updates".into());
        args.push(self.resource("coordinator").into());
        accord_generate(&args)
    }

    /// What every `accord generate` run of the demo starts with: offline
    /// image facts, the reference values and `DIR/manifest.json`.
    fn generate_inputs(&self) -> Vec<OsString> {
        vec![
            "--image-facts".into(),
            self.image_facts().into(),
            "--reference-values".into(),
            self.reference_values().into(),
            "-m".into(),
            self.dir.join("manifest.json").into(),
        ]
    }

    /// The host data (SNP) or MRCONFIGID (TDX) pod `name` is launched
    /// with: the SHA-256 of the init-data `accord generate` wrote into
    /// `DIR/resources/NAME.yaml`.
    pub fn policy_hash(&self, name: &str) -> anyhow::Result<[u8; 32]> {
        generated_policy_hash(&self.resource(name))
    }

    /// The coordinator's policy hash (the host data its TEE reports).
    pub fn coordinator_policy_hash(&self) -> anyhow::Result<[u8; 32]> {
        self.policy_hash("coordinator")
    }

    /// The same deployment with `owners` seed-share owners, `threshold` of
    /// whom recover it (the demo: 2 owners, threshold 1).
    #[must_use]
    pub fn with_seedshare_owners(mut self, owners: usize, threshold: u32) -> Self {
        self.seedshare_owners = owners;
        self.seedshare_threshold = threshold;
        self
    }

    /// The workspace directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The chip as launched with `name`'s generated policy (its hash as
    /// host data, or on TDX as MRCONFIGID; [`Self::policy_hash`]).
    pub fn tee(&self, name: &str) -> anyhow::Result<Arc<dyn TeeProvider>> {
        let config = SimulatedConfig {
            host_data: self.policy_hash(name)?,
            ..SimulatedConfig::default()
        };
        Ok(match &self.chip {
            Chip::Snp(chip) => Arc::new(
                chip.reconfigured(&config)
                    .map_err(|e| anyhow::anyhow!("the simulated chip: {e}"))?,
            ),
            Chip::Tdx(platform) => Arc::new(
                platform
                    .reconfigured(&config)
                    .map_err(|e| anyhow::anyhow!("the simulated TDX: {e}"))?,
            ),
        })
    }

    /// Reference values trusting this deployment's INSECURE simulated
    /// chip or TDX platform (its explicit root).
    pub fn chip_reference_values(&self) -> ReferenceValues {
        match &self.chip {
            Chip::Snp(chip) => ReferenceValues {
                snp: vec![chip.reference_values()],
                ..ReferenceValues::default()
            },
            Chip::Tdx(platform) => ReferenceValues {
                tdx: vec![platform.reference_values()],
                ..ReferenceValues::default()
            },
        }
    }

    /// Starts the INSECURE simulated vendor (AMD KDS and Intel PCS on
    /// 127.0.0.1) serving this deployment's simulated TEE's collateral:
    /// the chip's VCEKs and ARK-signed CRL, or the TDX platform's PCS
    /// collateral. It runs until dropped.
    pub fn start_vendor(&self) -> anyhow::Result<SimulatedVendor> {
        let vendor = SimulatedVendor::start()?;
        match &self.chip {
            Chip::Snp(chip) => {
                vendor.add_snp_state_dir(&self.dir.join("coordinator/chip"), chip.product())?
            }
            Chip::Tdx(_) => vendor.add_tdx_state_dir(&self.dir.join("coordinator/tdx"))?,
        }
        Ok(vendor)
    }

    /// "SEV-SNP" or "TDX".
    pub fn kind(&self) -> &'static str {
        match &self.chip {
            Chip::Snp(_) => "SEV-SNP",
            Chip::Tdx(_) => "TDX",
        }
    }

    /// The workload owner's key file.
    pub fn owner_key(&self) -> PathBuf {
        self.dir.join("keys/workload-owner.pem")
    }

    /// The seed-share owners' key files, in manifest order
    /// (`DIR/keys/seedshare-owner-N.pem`, N from 1).
    pub fn seedshare_keys(&self) -> Vec<PathBuf> {
        (1..=self.seedshare_owners)
            .map(|n| self.dir.join(format!("keys/seedshare-owner-{n}.pem")))
            .collect()
    }

    /// Makes the workload owner key and the seed-share owner keys (two
    /// unless [`Self::with_seedshare_owners`] says otherwise) in
    /// `DIR/keys/` (as `accord keys new` does).
    pub fn write_keys(&self) -> anyhow::Result<Vec<PathBuf>> {
        let keys = self.dir.join("keys");
        std::fs::create_dir_all(&keys).with_context(|| format!("creating {}", keys.display()))?;
        let owner = PrivateKey::generate(KeyRole::WorkloadOwner, false)?;
        write_private_key(&self.owner_key(), &owner, false)?;
        let mut written = vec![self.owner_key()];
        for path in self.seedshare_keys() {
            let key = PrivateKey::generate(KeyRole::SeedshareOwner, false)?;
            write_private_key(&path, &key, false)?;
            written.push(path);
        }
        Ok(written)
    }

    /// Writes the workloads' plain Kubernetes YAML, the example's
    /// (`DIR/resources/web.yaml`, a Deployment, and `db.yaml`, a
    /// StatefulSet; `web` gets `extra_web_san` too, if given, through
    /// `accord.dev/sans`), its image facts and `DIR/reference-values.json`.
    /// The coordinator's YAML is the one deployed at [`Self::open_on`].
    pub fn write_resources(&self, extra_web_san: Option<&str>) -> anyhow::Result<()> {
        self.write_inputs()?;
        for name in WORKLOADS.iter().filter(|n| **n != "coordinator") {
            self.write_plain(name, extra_web_san)?;
        }
        Ok(())
    }

    /// Runs `accord generate` over `DIR/resources` (offline, with
    /// `DIR/image-facts.json`; the owner keys; the example's initializer
    /// image): every pod gets its generated policy in its init-data
    /// annotation, `web` and `db` the initializer, and `DIR/manifest.json`
    /// their policies. The manifest must still pin the coordinator that
    /// runs.
    pub fn generate_manifest(&self) -> anyhow::Result<()> {
        let launched = self.coordinator_policy_hash()?;
        let mut args = self.generate_inputs();
        args.extend([
            "--initializer-image".into(),
            example::INITIALIZER_IMAGE.into(),
            "--add-workload-owner-key".into(),
            self.owner_key().into(),
        ]);
        for key in self.seedshare_keys() {
            args.push("--add-seedshare-owner-key".into());
            args.push(key.into());
        }
        args.push("--seedshare-threshold".into());
        args.push(self.seedshare_threshold.to_string().into());
        args.push(self.dir.join("resources").into());
        accord_generate(&args)?;
        let pinned = self.pins()?.policy_hashes;
        if pinned != [launched] || self.coordinator_policy_hash()? != launched {
            bail!(
                "the manifest pins coordinator policies {:?}, not the running coordinator's {}",
                pinned
                    .iter()
                    .map(|h| accord_core::hex::encode(h))
                    .collect::<Vec<_>>(),
                accord_core::hex::encode(&launched)
            );
        }
        Ok(())
    }

    /// Keys, resources, reference values and the manifest.
    pub fn prepare(dir: &Path) -> anyhow::Result<Self> {
        Self::open(dir)?.prepared()
    }

    /// Writes this deployment's keys, resources, reference values and
    /// manifest.
    pub fn prepared(self) -> anyhow::Result<Self> {
        self.write_keys()?;
        self.write_resources(None)?;
        self.generate_manifest()?;
        Ok(self)
    }

    /// Starts a coordinator in this process on 127.0.0.1 ephemeral ports
    /// (state in `DIR/coordinator/`). Its verifier fetches no collateral:
    /// the simulated TEEs' evidence carries its own.
    pub async fn start_coordinator(&self) -> anyhow::Result<InProcess> {
        accord_guest::coordinator::spawn(
            self.tee("coordinator")?,
            &self.dir.join("coordinator"),
            "127.0.0.1:0",
            "127.0.0.1:0",
        )
        .await
    }

    /// [`Self::start_coordinator`], its verifier fetching the collateral
    /// it needs (the workloads' CRLs and TDX collateral) from the
    /// simulated vendor at `vendor_url` (KDS and PCS paths), through the
    /// fetch path the shim uses ([`FetcherSource`]), without a cache.
    /// The fetched CRLs are checked under this deployment's simulated root
    /// ([`Self::chip_reference_values`]).
    pub async fn start_coordinator_fetching(&self, vendor_url: &str) -> anyhow::Result<InProcess> {
        let fetcher = CollateralArgs::from_vendor(vendor_url)
            .fetcher(None)?
            .trusting(self.chip_reference_values());
        accord_guest::coordinator::spawn_with_collateral(
            self.tee("coordinator")?,
            &self.dir.join("coordinator"),
            "127.0.0.1:0",
            "127.0.0.1:0",
            Arc::new(FetcherSource::new(fetcher)),
        )
        .await
    }

    /// What the workloads' init-data pins of the coordinator: what
    /// `DIR/manifest.json` says (`accord-guest initializer
    /// --trust-manifest`): its coordinator policy and reference values, its
    /// seed-share owners and threshold, its workload owners.
    pub fn pins(&self) -> anyhow::Result<CoordinatorPins> {
        let path = self.dir.join("manifest.json");
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let manifest = Manifest::from_json(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: not a manifest: {e}", path.display()))?;
        Ok(CoordinatorPins::from_manifest(manifest.doc()))
    }

    /// Runs the initializer of workload `name` (launched with its policy,
    /// pinning [`Self::pins`]) against the mesh API, writing
    /// `DIR/workloads/NAME/`.
    pub async fn initialize(&self, name: &str, mesh: &str) -> anyhow::Result<PathBuf> {
        let out = self.dir.join("workloads").join(name);
        let config = InitializerConfig {
            coordinator: mesh.to_string(),
            out: out.clone(),
            max_attempts: Some(3),
            pins: self.pins()?,
            owner: None,
        };
        accord_guest::initializer::run(self.tee(name)?, &config).await?;
        Ok(out)
    }
}

/// `web` (client) and `db` (server) exchange one line each over mutual
/// TLS, each verifying the other's chain against its own copy of the mesh
/// CA: [`accord_mesh_echo`], the workload of the container test, on
/// loopback. Returns what each side received.
pub async fn mesh_exchange(web: &Path, db: &Path) -> anyhow::Result<(String, String)> {
    let server = accord_mesh_echo::server_config(db)?;
    let client = accord_mesh_echo::client_config(web)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // Both sides are blocking (std sockets with read and write timeouts);
    // the accept is async, so the overall timeout covers a web that never
    // connects.
    let exchange = async {
        let web_side = tokio::task::spawn_blocking(move || {
            let tcp = std::net::TcpStream::connect(addr)?;
            accord_mesh_echo::call(&client, tcp, "db", "web here: SELECT greeting FROM hello;")
                .context("web")
        });
        let (tcp, _) = listener.accept().await?;
        let tcp = tcp.into_std()?;
        tcp.set_nonblocking(false)?;
        let db_side = tokio::task::spawn_blocking(move || {
            accord_mesh_echo::serve_one(&server, tcp, "db").context("db")
        });
        let web_got = web_side.await.context("the web task")??;
        let db_got = db_side.await.context("the db task")??;
        anyhow::Ok((db_got.line, web_got))
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .map_err(|_| anyhow::anyhow!("the mutual TLS exchange timed out"))?
}

/// One step of the report.
struct Step {
    ok: bool,
    title: String,
    took: Duration,
    detail: String,
}

#[derive(Default)]
struct Report {
    steps: Vec<Step>,
    current: Option<(String, Instant)>,
}

impl Report {
    fn begin(&mut self, title: &str) {
        println!("\n=== {}. {title}", self.steps.len() + 1);
        self.current = Some((title.to_string(), Instant::now()));
    }

    /// Records the step's outcome; `Some` if it worked.
    fn end<T>(&mut self, result: Result<T, String>) -> Option<T> {
        let (title, start) = self
            .current
            .take()
            .unwrap_or_else(|| (String::from("?"), Instant::now()));
        let took = start.elapsed();
        match result {
            Ok(value) => {
                self.steps.push(Step {
                    ok: true,
                    title,
                    took,
                    detail: String::new(),
                });
                Some(value)
            }
            Err(why) => {
                eprintln!("step failed: {why}");
                self.steps.push(Step {
                    ok: false,
                    title,
                    took,
                    detail: why.lines().next().unwrap_or_default().to_string(),
                });
                None
            }
        }
    }

    fn all_ok(&self) -> bool {
        self.steps.iter().all(|s| s.ok)
    }

    fn print(&self, total: Duration) {
        println!("\n=== report");
        for (n, step) in self.steps.iter().enumerate() {
            let mark = if step.ok { "✔" } else { "✘" };
            let mut line = format!(
                "{mark} {:>2}. {:<68} {:>7.2}s",
                n + 1,
                step.title,
                step.took.as_secs_f64()
            );
            if !step.detail.is_empty() {
                line.push_str("  ");
                line.push_str(&step.detail);
            }
            println!("{line}");
        }
        println!(
            "{} in {:.1}s",
            if self.all_ok() {
                "every step worked"
            } else {
                "the demo FAILED"
            },
            total.as_secs_f64()
        );
    }
}

fn any_err(err: anyhow::Error) -> String {
    format!("{err:#}")
}

fn failure(failure: Failure) -> String {
    failure.to_string()
}

/// Runs `accord-demo demo`.
pub fn run(args: &DemoArgs) -> ExitCode {
    let (dir, _temp) = match workspace(args) {
        Ok(found) => found,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match net::runtime() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::from(2);
        }
    };
    if args.replicas > 1 && args.tee != INSECURE_SIMULATED {
        eprintln!("error: --replicas runs on {INSECURE_SIMULATED} only");
        return ExitCode::from(2);
    }
    let ok = runtime.block_on(demo(
        &dir,
        args.workspace.is_some(),
        usize::from(args.replicas),
        &args.tee,
    ));
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The workspace: `--workspace DIR` (empty or missing), else a temporary
/// directory (removed when the second value is dropped).
fn workspace(args: &DemoArgs) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match &args.workspace {
        Some(dir) => {
            if dir.exists()
                && std::fs::read_dir(dir)
                    .with_context(|| format!("reading {}", dir.display()))?
                    .next()
                    .is_some()
            {
                bail!(
                    "{} is not empty: the demo needs a fresh workspace (its coordinator state would otherwise need recovery)",
                    dir.display()
                );
            }
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            Ok((dir.clone(), None))
        }
        None => {
            let temp = tempfile::Builder::new().prefix("accord-demo-").tempdir()?;
            Ok((temp.path().to_path_buf(), Some(temp)))
        }
    }
}

fn set_args(dir: &Path, coordinator: &str, vendor: &str, key: Option<PathBuf>) -> SetArgs {
    SetArgs {
        options: coordinator_options(dir, coordinator, vendor),
        workload_owner_key: key,
        signature: Vec::new(),
        atomic: true,
        reshare: false,
    }
}

/// `accord verify` as the third party: in its own workspace
/// (`DIR/auditor/`), against a copy of the manifest it expects.
fn verify_args(dir: &Path, coordinator: &str, vendor: &str) -> anyhow::Result<VerifyArgs> {
    let auditor = dir.join("auditor");
    std::fs::create_dir_all(&auditor).with_context(|| format!("creating {}", auditor.display()))?;
    std::fs::copy(dir.join("manifest.json"), auditor.join("manifest.json"))
        .with_context(|| format!("copying the manifest to {}", auditor.display()))?;
    Ok(VerifyArgs {
        options: coordinator_options(&auditor, coordinator, vendor),
    })
}

/// The demo's manifest trusts its simulated chip: `--insecure-simulation`;
/// the collateral comes from the simulated vendor at `vendor` (`--kds-url`
/// and `--pcs-url`), never from AMD or Intel.
fn coordinator_options(dir: &Path, coordinator: &str, vendor: &str) -> CoordinatorOptions {
    CoordinatorOptions {
        timeout: TIMEOUT_SECS,
        ..CoordinatorOptions::new(coordinator)
            .in_workspace(dir)
            .accepting_insecure_simulation()
            .fetching_from(vendor)
    }
}

/// Runs the steps; whether all worked.
async fn demo(dir: &Path, kept: bool, replicas: usize, tee: &str) -> bool {
    let started = Instant::now();
    println!("{INSECURE_BANNER}");
    println!("accord demo: workspace {}", dir.display());
    let mut report = Report::default();
    if replicas > 1 {
        // The replica processes are killed when this is dropped.
        let _replicas = steps_replicated(dir, replicas, &mut report).await;
    } else {
        let coordinator = steps(dir, tee, &mut report).await;
        if let Some(coordinator) = coordinator
            && let Err(err) = coordinator.stop().await
        {
            eprintln!("stopping the coordinator: {err:#}");
        }
    }
    report.print(started.elapsed());
    if kept {
        println!(
            "files: {d}/manifest.json, {d}/policies/, {d}/keys/, {d}/resources/, {d}/image-facts.json, \
             {d}/reference-values.json, {d}/seed-shares.json, \
             {d}/coordinator-root-ca.pem, {d}/mesh-ca.pem, {d}/workloads/{{web,db}}/tls-config/, \
             {d}/workloads/{{web,db}}/secrets/, {d}/verify/, {d}/collateral/, {d}/auditor/verify/{}",
            if replicas > 1 {
                format!(", {d}/store/, {d}/replica-N.log", d = dir.display())
            } else {
                String::new()
            },
            d = dir.display()
        );
    }
    println!("{INSECURE_BANNER}");
    report.all_ok()
}

fn print_vendor(vendor: &SimulatedVendor) {
    println!(
        "simulated vendor (INSECURE SIMULATION): KDS {}, PCS {}",
        vendor.kds_url(),
        vendor.pcs_url()
    );
}

/// The steps up to the first failure; the coordinator, once started, is
/// returned for stopping.
async fn steps(dir: &Path, tee: &str, report: &mut Report) -> Option<InProcess> {
    let kind = if tee == INSECURE_SIMULATED_TDX {
        "TDX"
    } else {
        "SEV-SNP"
    };
    report.begin(&format!(
        "start the coordinator (INSECURE simulated {kind})"
    ));
    let started = async {
        let deployment = Deployment::open_on(dir, tee)?;
        let vendor = deployment.start_vendor()?;
        print_vendor(&vendor);
        let coordinator = deployment.start_coordinator_fetching(&vendor.url()).await?;
        println!(
            "coordinator: user API on {}, mesh API on {}",
            coordinator.user_addr, coordinator.mesh_addr
        );
        anyhow::Ok((deployment, vendor, coordinator))
    }
    .await
    .map_err(any_err);
    // The simulated vendor serves until the steps are over.
    let (deployment, vendor, coordinator) = report.end(started)?;
    let user = coordinator.user_addr.to_string();
    let mesh = coordinator.mesh_addr.to_string();
    run_steps(&deployment, &user, &mesh, &vendor.url(), report).await;
    Some(coordinator)
}

/// The steps on `n` replica processes; the replicas, once started, are
/// returned (dropping them kills them).
async fn steps_replicated(dir: &Path, n: usize, report: &mut Report) -> Option<Replicas> {
    report.begin(&format!(
        "start {n} coordinator replicas, each with its shim (one store)"
    ));
    let started = async {
        let deployment = Deployment::open(dir)?;
        let vendor = deployment.start_vendor()?;
        print_vendor(&vendor);
        let replicas = Replicas::start(&deployment, n, Some(&vendor.url()))?;
        for i in 0..n {
            replicas.wait_listening(i).await?;
            println!(
                "replica {i}: user API on {}, mesh API on {}",
                replicas.user(i),
                replicas.mesh(i)
            );
        }
        anyhow::Ok((deployment, vendor, replicas))
    }
    .await;
    // The simulated vendor serves until the steps are over.
    let (deployment, vendor, mut replicas) = report.end(started.map_err(any_err))?;
    let vendor = vendor.url();
    run_steps(
        &deployment,
        &replicas.user(0),
        &replicas.mesh(0),
        &vendor,
        report,
    )
    .await;
    if report.all_ok() {
        high_availability(&deployment, &mut replicas, &vendor, report).await;
    }
    Some(replicas)
}

/// Peer recovery shown: the others recovered from replica 0; replica 1 is
/// killed while a workload keeps attesting at the rest, restarted, and
/// must come back on the same history and mesh CA.
async fn high_availability(
    deployment: &Deployment,
    replicas: &mut Replicas,
    vendor: &str,
    report: &mut Report,
) {
    let dir = deployment.dir();
    let n = replicas.len();

    report.begin("every replica recovered from its peers: same history, same mesh CA");
    let same = async {
        // A replica learns of an update through the store (the shim polls
        // it) and then recovers from a peer: until then it may still serve
        // the previous generation, Ready. Wait for all to agree.
        let started = Instant::now();
        let mut views = loop {
            for i in 0..n {
                replicas.wait_ready(i).await?;
            }
            let mut views = Vec::new();
            for i in 0..n {
                views.push(served(dir, &replicas.user(i), vendor).await?);
            }
            if views.windows(2).all(|w| w[0] == w[1]) {
                break views;
            }
            if started.elapsed() > Duration::from_secs(TIMEOUT_SECS) {
                bail!("the replicas serve different histories or mesh CAs: {views:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        println!(
            "{n} replicas at transition {} ({} manifests), one mesh CA",
            accord_core::hex::encode(&views[0].latest),
            views[0].manifests
        );
        anyhow::Ok(views.swap_remove(0))
    }
    .await;
    let Some(before) = report.end(same.map_err(any_err)) else {
        return;
    };

    report.begin("SIGKILL replica 1 while a workload keeps attesting at the others");
    let others: Vec<String> = (0..n)
        .filter(|&i| i != 1)
        .map(|i| replicas.mesh(i))
        .collect();
    let killed = async {
        let attesting = Attesting::start(deployment, others)?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before_kill = attesting.issued();
        replicas.kill(1);
        tokio::time::sleep(Duration::from_millis(500)).await;
        if replicas.is_ready(1).await {
            bail!("replica 1 still looks ready after SIGKILL");
        }
        println!(
            "replica 1 killed; its readiness probe fails; {} certificates issued so far",
            attesting.issued().max(before_kill)
        );
        anyhow::Ok(attesting)
    }
    .await;
    let Some(attesting) = report.end(killed.map_err(any_err)) else {
        return;
    };

    report.begin("restart replica 1: Ready again from its peers");
    let restarted = replicas.restart(1).await.map(|took| {
        println!(
            "replica 1 was Ready {} ms after its restart (peer recovery over mutual attested TLS)",
            took.as_millis()
        );
    });
    if report.end(restarted.map_err(any_err)).is_none() {
        return;
    }

    report.begin("same tree head and mesh CA everywhere; certificates kept coming");
    let converged = async {
        let issued = attesting.finish().await?;
        for i in 0..n {
            let view = served(dir, &replicas.user(i), vendor).await?;
            if view != before {
                bail!("replica {i} serves {view:?}, not {before:?}");
            }
        }
        if issued == 0 {
            bail!("no certificate was issued while replica 1 was down");
        }
        println!("{issued} certificates issued by the other replicas meanwhile, none refused for more than 10 s");
        anyhow::Ok(())
    }
    .await;
    report.end(converged.map_err(any_err));
}

async fn run_steps(
    deployment: &Deployment,
    user: &str,
    mesh: &str,
    vendor: &str,
    report: &mut Report,
) {
    let dir = deployment.dir();

    report.begin("generate keys: a workload owner, two seed-share owners");
    let keys = deployment.write_keys().map(|written| {
        for path in written {
            println!("wrote {} (0600)", path.display());
        }
    });
    if report.end(keys.map_err(any_err)).is_none() {
        return;
    }

    report.begin("write Kubernetes YAML + reference values, generate the manifest");
    let generated = deployment
        .write_resources(None)
        .and_then(|()| deployment.generate_manifest());
    if report.end(generated.map_err(any_err)).is_none() {
        return;
    }

    report.begin("accord set: the first manifest");
    let set = set_cmd::set(&set_args(dir, user, vendor, None)).await;
    let Some(set) = report.end(set.map_err(failure)) else {
        return;
    };
    println!(
        "manifest set: generation {}, transition {}; seed shares in {}",
        set.generation,
        set.transition,
        set.seed_shares
            .as_ref()
            .map_or_else(|| "(none)".into(), |p| p.display().to_string())
    );

    report.begin("initializers of web and db get their mesh certificates");
    let initialized = async {
        let web = deployment.initialize("web", mesh).await?;
        let db = deployment.initialize("db", mesh).await?;
        for out in [&web, &db] {
            let secret = out.join("secrets/workload-secret-seed");
            println!(
                "{}: tls-config/{{certChain,key,mesh-ca,coordinator-root-ca}}.pem{}",
                out.display(),
                if secret.is_file() {
                    ", secrets/workload-secret-seed"
                } else {
                    ""
                }
            );
        }
        anyhow::Ok((web, db))
    }
    .await;
    let Some((web, db)) = report.end(initialized.map_err(any_err)) else {
        return;
    };

    report.begin("web and db talk over mutual TLS (mesh CA on both sides)");
    let exchanged = mesh_exchange(&web, &db).await.map(|(db_got, web_got)| {
        println!("web → db: {db_got}");
        println!("db → web: {web_got}");
        println!("(db verified web's chain and web verified db's, server name \"db\", against mesh-ca.pem)");
    });
    if report.end(exchanged.map_err(any_err)).is_none() {
        return;
    }

    report.begin("accord verify as a third party (trusts the history key)");
    let verified = match verify_args(dir, user, vendor) {
        Ok(args) => verify_cmd::verify(&args).await,
        Err(err) => Err(Failure::Usage(err)),
    };
    let Some(first) = report.end(verified.map_err(failure)) else {
        return;
    };
    println!("{}", first.summary);

    report.begin("an UNSIGNED update is refused");
    let unsigned = async {
        deployment.write_resources(Some("web.example.com"))?;
        deployment.generate_manifest()?;
        match set_cmd::set(&set_args(dir, user, vendor, None)).await {
            Ok(outcome) => bail!(
                "an unsigned update was accepted (generation {})",
                outcome.generation
            ),
            Err(Failure::Refused(why)) => {
                println!("refused as expected: {why}");
                Ok(())
            }
            Err(other) => bail!("{other}"),
        }
    }
    .await;
    if report.end(unsigned.map_err(any_err)).is_none() {
        return;
    }

    report.begin("a signed update (new SAN web.example.com) is set");
    let signed = set_cmd::set(&set_args(dir, user, vendor, Some(deployment.owner_key()))).await;
    let Some(signed) = report.end(signed.map_err(failure)) else {
        return;
    };
    println!(
        "manifest set: generation {}, transition {}",
        signed.generation, signed.transition
    );

    report.begin("accord verify again: the trust state moves forward");
    let again = async {
        let args = verify_args(dir, user, vendor).map_err(any_err)?;
        let outcome = verify_cmd::verify(&args).await.map_err(failure)?;
        println!("{}", outcome.summary);
        if outcome.summary.previous_size != Some(first.summary.generation)
            || outcome.summary.generation <= first.summary.generation
        {
            return Err(format!(
                "the trust state did not move forward from generation {}",
                first.summary.generation
            ));
        }
        Ok(())
    }
    .await;
    if report.end(again).is_none() {
        return;
    }

    report.begin("accord get-manifests: the history");
    let history = match verify_args(dir, user, vendor) {
        Ok(args) => verify_cmd::get_manifests(&args).await,
        Err(err) => Err(Failure::Usage(err)),
    };
    if let Some(history) = report.end(history.map_err(failure)) {
        verify_cmd::print_history(&history, false);
    }
}
