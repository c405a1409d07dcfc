//! `accord manifest generate` / `accord manifest validate` and
//! `accord policy annotate`.
//!
//! Exit status 0 on success; 1 when the input is refused (a bad init-data
//! annotation, conflicting policies, an invalid manifest); 2 when the
//! command line or a file is unusable.

// The doc comments below are clap's --help text, with <placeholders>.
#![allow(rustdoc::invalid_html_tags)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use accord_core::hex;
use accord_core::manifest::{
    Manifest, ManifestDoc, OwnerKey, PolicyEntry, ROLE_COORDINATOR, SeedshareKey,
};
use anyhow::Context;
use clap::{Args, Subcommand};
use sha2::{Digest, Sha256};

use crate::annotations;
use crate::initdata;
use crate::input;
use crate::k8s_yaml::{self, ReadError, Resource};
use crate::keys::{self, KeyRole};

const GENERATE_HINT: &str = "did you run `accord manifest generate`?";

/// Subcommands of `accord manifest`.
#[derive(Debug, Subcommand)]
pub enum ManifestCommand {
    /// Build manifest.json from Kubernetes resources with init-data.
    ///
    /// Reads every YAML document of the given files (a directory stands for
    /// every *.yaml / *.yml in it, sorted). Each pod template (Pod,
    /// Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) that
    /// carries the Kata init-data annotation
    ///   io.katacontainers.config.hypervisor.cc_init_data
    /// (base64 of the gzip of a TOML document; see `accord policy annotate`)
    /// becomes one policy, keyed by the SHA-256 of the decompressed TOML.
    /// Resources without it are listed as skipped.
    ///
    /// Per policy, from the pod template's annotations (else the resource's
    /// own):
    ///   accord.dev/sans                comma-separated SANs; default
    ///                                  <name>, <name>.<ns>, <name>.<ns>.svc,
    ///                                  <name>.<ns>.svc.cluster.local
    ///                                  (<ns>: the namespace, default "default")
    ///   accord.dev/workload-secret-id  default <apiVersion>/<kind>/<ns>/<name>,
    ///                                  e.g. apps/v1/Deployment/default/web
    ///   accord.dev/pod-role            "coordinator" or empty (default);
    ///                                  the old accord.dev/role is read too,
    ///                                  with a deprecation note
    ///
    /// Contrast's contrast.edgeless.systems/<name> annotations are read as
    /// aliases of accord.dev/<name>.
    ///
    /// Writes the manifest (pretty JSON, stable key order) and each policy's
    /// TOML as <hash>.toml into the policies directory, then prints one
    /// line per policy: hash, role, SANs. Nothing is written unless the
    /// manifest validates; every error is listed with its JSON path.
    #[command(verbatim_doc_comment)]
    Generate(GenerateArgs),

    /// Check a manifest: parse it and apply every validation rule.
    ///
    /// Lists every violation with its JSON path (e.g.
    /// `ReferenceValues.snp[0].MinimumTCB: required`); exit 1 if any.
    #[command(verbatim_doc_comment)]
    Validate {
        /// The manifest.
        #[arg(default_value = "manifest.json")]
        manifest: PathBuf,
    },
}

/// Arguments of `accord manifest generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Kubernetes YAML files (multi-document) or directories of them.
    #[arg(required = true, value_name = "RESOURCES")]
    pub resources: Vec<PathBuf>,

    /// Trusted hardware: a JSON object {"snp": [...], "tdx": [...]} in the
    /// manifest's ReferenceValues format.
    #[arg(long, value_name = "FILE")]
    pub reference_values: PathBuf,

    /// Where to write the manifest.
    #[arg(short, long, value_name = "FILE", default_value = "manifest.json")]
    pub out: PathBuf,

    /// A workload owner's key (may repeat): a private key file from
    /// `accord keys new --workload-owner`, or a .pub file holding the hex
    /// SubjectPublicKeyInfo. Without any, the manifest can never be updated.
    #[arg(long, value_name = "FILE")]
    pub workload_owner_key: Vec<PathBuf>,

    /// A seed-share owner's key (may repeat): a private key file from
    /// `accord keys new --seedshare-owner`, or a .pub file holding the hex
    /// SubjectPublicKeyInfo.
    #[arg(long, value_name = "FILE")]
    pub seedshare_owner_key: Vec<PathBuf>,

    /// How many seed-share owners are needed to recover (k of n).
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub seedshare_threshold: u32,

    /// Where to write the policies (<hash>.toml). Default: `policies`
    /// beside the manifest.
    #[arg(long, value_name = "DIR")]
    pub policies_dir: Option<PathBuf>,
}

/// Subcommands of `accord policy`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the init-data annotation value for a TOML document.
    ///
    /// The value (base64 of the gzip of the file's bytes) goes into a pod
    /// template's annotation
    ///   io.katacontainers.config.hypervisor.cc_init_data
    /// and the policy hash is the SHA-256 of the file, printed on stderr.
    #[command(verbatim_doc_comment)]
    Annotate {
        /// The init-data TOML document.
        file: PathBuf,
    },
}

/// Why a command ended: refused input (exit 1; a summary line, then
/// details) or unusable input (exit 2). `accord generate` ends the same
/// way.
pub(crate) enum Failure {
    Invalid(Vec<String>),
    Usage(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        Self::Usage(err)
    }
}

/// `Ok` when `errors` is empty, else the one `Invalid` failure listing
/// them under "N problem(s) in the resources (nothing written):" (for
/// `accord manifest generate` and `accord generate`).
pub(crate) fn resource_problems(mut errors: Vec<String>) -> Result<(), Failure> {
    if errors.is_empty() {
        return Ok(());
    }
    errors.insert(
        0,
        format!(
            "{} problem(s) in the resources (nothing written):",
            errors.len()
        ),
    );
    Err(Failure::Invalid(errors))
}

fn invalid(message: impl Into<String>) -> Failure {
    Failure::Invalid(vec![message.into()])
}

/// Prints the failure (if any) and returns the exit status.
pub(crate) fn finish(outcome: Result<(), Failure>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Invalid(lines)) => {
            // The first line is the summary, the others its details.
            let mut lines = lines.iter();
            eprintln!("INVALID: {}", lines.next().map_or("", String::as_str));
            for line in lines {
                eprintln!("  {line}");
            }
            ExitCode::from(1)
        }
        Err(Failure::Usage(err)) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs an `accord manifest` subcommand.
pub fn run(command: ManifestCommand) -> ExitCode {
    finish(match command {
        ManifestCommand::Generate(args) => generate(&args),
        ManifestCommand::Validate { manifest } => validate(&manifest),
    })
}

/// `accord manifest generate` as a library call (the demo): the same
/// checks and files; a refusal is an error listing every problem.
pub fn generate_manifest(args: &GenerateArgs) -> anyhow::Result<()> {
    match generate(args) {
        Ok(()) => Ok(()),
        Err(Failure::Usage(err)) => Err(err),
        Err(Failure::Invalid(lines)) => Err(anyhow::anyhow!("{}", lines.join("\n  "))),
    }
}

/// Runs an `accord policy` subcommand.
pub fn run_policy(command: PolicyCommand) -> ExitCode {
    let PolicyCommand::Annotate { file } = command;
    finish(annotate(&file))
}

fn annotate(file: &Path) -> Result<(), Failure> {
    let bytes = input::read(file)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| invalid(format!("{}: not UTF-8 text", file.display())))?;
    initdata::check_toml(text).map_err(|e| invalid(format!("{}: {e}", file.display())))?;
    eprintln!(
        "policy hash (SHA-256 of {}): {}",
        file.display(),
        hex::encode(&initdata::policy_hash(&bytes))
    );
    println!("{}", initdata::initdata_annotation(text));
    Ok(())
}

/// A policy found in the resources, and the first resource that had it.
struct Found {
    entry: PolicyEntry,
    toml: Vec<u8>,
    origin: String,
}

/// Annotation `name` (see [`annotations`]) of the pod template, else of
/// the resource itself.
fn annotation<'a>(r: &'a Resource, name: &str) -> Option<&'a str> {
    let origin = r.location();
    r.pod_annotations
        .as_ref()
        .and_then(|a| annotations::lookup(a, name, &origin))
        .or_else(|| annotations::lookup(&r.annotations, name, &origin))
}

/// The policy entry a resource's annotations (and the defaults) give.
pub(crate) fn policy_entry(r: &Resource) -> Result<PolicyEntry, String> {
    let sans = match annotation(r, annotations::SANS) {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        None => {
            let (n, ns) = (&r.name, &r.namespace);
            vec![
                n.clone(),
                format!("{n}.{ns}"),
                format!("{n}.{ns}.svc"),
                format!("{n}.{ns}.svc.cluster.local"),
            ]
        }
    };
    let workload_secret_id = match annotation(r, annotations::WORKLOAD_SECRET_ID) {
        Some(id) => id.trim().to_string(),
        None => format!("{}/{}/{}/{}", r.api_version, r.kind, r.namespace, r.name),
    };
    let role = annotation(r, annotations::POD_ROLE)
        .unwrap_or("")
        .trim()
        .to_string();
    if !role.is_empty() && role != ROLE_COORDINATOR {
        return Err(format!(
            "{}: annotation {} is {role:?} (expected \"coordinator\" or empty)",
            r.location(),
            annotations::key(annotations::POD_ROLE)
        ));
    }
    Ok(PolicyEntry {
        sans,
        workload_secret_id,
        role,
    })
}

/// Reads the resources and collects their policies (hex hash → policy).
fn collect_policies(args: &GenerateArgs) -> Result<BTreeMap<String, Found>, Failure> {
    let files = k8s_yaml::expand_paths(&args.resources)?;
    let mut policies: BTreeMap<String, Found> = BTreeMap::new();
    let mut errors = Vec::new();
    for file in &files {
        let resources = match k8s_yaml::read_file(file) {
            Ok(r) => r,
            Err(ReadError::Io(e)) => return Err(Failure::Usage(e)),
            Err(ReadError::Invalid(e)) => {
                errors.push(e);
                continue;
            }
        };
        for r in &resources {
            if r.pod_annotations.is_none() {
                eprintln!(
                    "skipped {}: {} has no pod template: not a workload",
                    r.location(),
                    r.kind
                );
                continue;
            }
            if r.kind != "Pod" && r.annotations.contains_key(initdata::ANNOTATION) {
                errors.push(format!(
                    "{}: the init-data annotation is on the {}'s own metadata; Kata reads it from \
                     the pod template (spec.template.metadata.annotations{})",
                    r.location(),
                    r.kind,
                    if r.kind == "CronJob" {
                        ", under spec.jobTemplate"
                    } else {
                        ""
                    }
                ));
                continue;
            }
            let init_data = r
                .pod_annotations
                .as_ref()
                .and_then(|a| a.get(initdata::ANNOTATION));
            let Some(value) = init_data else {
                eprintln!(
                    "skipped {}: no init-data annotation: not a confidential workload",
                    r.location()
                );
                continue;
            };
            let toml = match initdata::decode_annotation(value) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(format!("{}: {e}", r.location()));
                    continue;
                }
            };
            let entry = match policy_entry(r) {
                Ok(e) => e,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let hash = hex::encode(&initdata::policy_hash(&toml));
            match policies.get(&hash) {
                Some(first) if first.entry != entry => errors.push(format!(
                    "{}: same policy hash {hash} as {} but different SANs, workload secret id or role \
                     ({} vs {}); give the two workloads distinct init-data or the same annotations",
                    r.location(),
                    first.origin,
                    describe(&entry),
                    describe(&first.entry),
                )),
                Some(_) => {}
                None => {
                    policies.insert(
                        hash,
                        Found {
                            entry,
                            toml,
                            origin: r.location(),
                        },
                    );
                }
            }
        }
    }
    resource_problems(errors)?;
    if policies.is_empty() {
        return Err(invalid(format!(
            "no resource has init-data: did you add the init-data annotation (`{}`)?",
            initdata::ANNOTATION
        )));
    }
    Ok(policies)
}

fn describe(entry: &PolicyEntry) -> String {
    format!(
        "SANs [{}], secret id {:?}, role {:?}",
        entry.sans.join(", "),
        entry.workload_secret_id,
        entry.role
    )
}

/// An owner key argument: a private key file, or a `.pub` file holding the
/// hex SPKI (or a PEM `PUBLIC KEY`). Returns the hex SPKI.
pub(crate) fn owner_key_hex(path: &Path, role: KeyRole) -> anyhow::Result<String> {
    let hex_spki = if path.extension().is_some_and(|e| e == "pub") {
        let bytes = input::read(path)?;
        let text =
            std::str::from_utf8(&bytes).with_context(|| format!("{}: not text", path.display()))?;
        if text.contains("-----BEGIN PUBLIC KEY-----") {
            let der = accord_core::x509::pem::der_or_pem(&bytes, "PUBLIC KEY")
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            hex::encode(&der)
        } else {
            text.trim().to_ascii_lowercase()
        }
    } else {
        let key = keys::load_private_key(path)?;
        if key.role() != role {
            anyhow::bail!(
                "{}: a {} key is not a {} key",
                path.display(),
                key.kind(),
                match role {
                    KeyRole::WorkloadOwner => "workload-owner (Ed25519 or P-384)",
                    KeyRole::SeedshareOwner => "seed-share owner (X25519)",
                }
            );
        }
        key.public_hex()
    };
    let checked = match role {
        KeyRole::WorkloadOwner => OwnerKey::from_hex(&hex_spki).map(drop),
        KeyRole::SeedshareOwner => SeedshareKey::from_hex(&hex_spki).map(drop),
    };
    checked.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(hex_spki)
}

/// Parses the reference-values file as the manifest's `ReferenceValues`,
/// so errors name the same JSON paths (and duplicate keys are refused).
fn reference_values(path: &Path) -> Result<accord_core::evidence::ReferenceValues, Failure> {
    let raw = input::read(path)?;
    let mut wrapped = b"{\"ReferenceValues\":".to_vec();
    wrapped.extend_from_slice(&raw);
    wrapped.extend_from_slice(b"\n}");
    match Manifest::from_json(&wrapped) {
        Ok(m) => Ok(m.doc().reference_values.clone()),
        Err(e) => Err(invalid(format!(
            "{}: invalid reference values: {e}",
            path.display()
        ))),
    }
}

fn generate(args: &GenerateArgs) -> Result<(), Failure> {
    let reference_values = reference_values(&args.reference_values)?;
    let workload_owner_pub_keys = args
        .workload_owner_key
        .iter()
        .map(|p| owner_key_hex(p, KeyRole::WorkloadOwner))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let seedshare_owner_pub_keys = args
        .seedshare_owner_key
        .iter()
        .map(|p| owner_key_hex(p, KeyRole::SeedshareOwner))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let found = collect_policies(args)?;
    if workload_owner_pub_keys.is_empty() {
        eprintln!("warning: no --workload-owner-key: once set, this manifest can never be updated");
    }
    if seedshare_owner_pub_keys.is_empty() {
        eprintln!(
            "warning: no --seedshare-owner-key: the coordinator's state cannot be recovered after a restart"
        );
    }

    let doc = ManifestDoc {
        policies: found
            .iter()
            .map(|(hash, f)| (hash.clone(), f.entry.clone()))
            .collect(),
        reference_values,
        workload_owner_pub_keys,
        seedshare_owner_pub_keys,
        seedshare_threshold: args.seedshare_threshold,
    };
    let mut json = serde_json::to_string_pretty(&doc).context("serializing the manifest")?;
    json.push('\n');
    let manifest = Manifest::from_json(json.as_bytes())
        .map_err(|e| invalid(format!("generated manifest does not parse back: {e}")))?;
    manifest.validate().map_err(|errors| {
        let mut lines = vec!["the manifest would not validate (nothing written):".to_string()];
        lines.extend(errors.iter().map(ToString::to_string));
        Failure::Invalid(lines)
    })?;

    let policies_dir = args
        .policies_dir
        .clone()
        .unwrap_or_else(|| args.out.parent().unwrap_or(Path::new("")).join("policies"));
    std::fs::create_dir_all(&policies_dir)
        .with_context(|| format!("cannot create {}", policies_dir.display()))?;
    for (hash, f) in &found {
        let path = policies_dir.join(format!("{hash}.toml"));
        std::fs::write(&path, &f.toml)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    crate::workspace::write_atomic(&args.out, json.as_bytes())?;

    println!(
        "wrote {} ({} policies; policies in {})",
        args.out.display(),
        found.len(),
        policies_dir.display()
    );
    for (hash, f) in &found {
        let role = if f.entry.is_coordinator() {
            "coordinator"
        } else {
            "workload"
        };
        println!("{hash}  {role:<11}  {}", f.entry.sans.join(","));
    }
    Ok(())
}

fn validate(path: &Path) -> Result<(), Failure> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::Usage(anyhow::anyhow!(
                "{} does not exist: {GENERATE_HINT}",
                path.display()
            )));
        }
        Err(e) => {
            return Err(Failure::Usage(
                anyhow::Error::new(e).context(format!("cannot read {}", path.display())),
            ));
        }
    };
    let manifest =
        Manifest::from_json(&bytes).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    manifest.validate().map_err(|errors| {
        let mut lines = vec![format!("{}:", path.display())];
        lines.extend(errors.iter().map(ToString::to_string));
        Failure::Invalid(lines)
    })?;
    let doc = manifest.doc();
    let coordinators = doc.policies.values().filter(|p| p.is_coordinator()).count();
    println!(
        "VALID: {} (sha256 {}): {} policies ({coordinators} coordinator), {} snp / {} tdx reference entries, \
         {} workload owners, {} seed-share owners (threshold {})",
        path.display(),
        hex::encode(&Sha256::digest(&bytes)),
        doc.policies.len(),
        doc.reference_values.snp.len(),
        doc.reference_values.tdx.len(),
        doc.workload_owner_pub_keys.len(),
        doc.seedshare_owner_pub_keys.len(),
        doc.seedshare_threshold,
    );
    Ok(())
}
