//! `accord generate`: from plain Kubernetes YAML to attestable Kata pods.
//!
//! For every pod template whose `runtimeClassName` is `accord-cc` (or
//! Contrast's `contrast-cc`) — or that an earlier run already rewrote
//! (the target runtime class and the init-data annotation) — it rewrites
//! the runtime class, injects the initializer ([`pod`]), generates the
//! Kata agent policy ([`policy`]) from the pod spec and the image facts
//! ([`images`]), wraps it with accord's keys into init-data
//! ([`initdata_doc`]), sets the annotation, and writes the manifest
//! ([`manifest_out`]) and, beside it, each policy's init-data
//! (`policies/<hash>.toml`, which `accord set` sends). `--example DIR`
//! writes the example deployment instead ([`example`]). The coordinator's pods (`accord.dev/pod-role:
//! coordinator`) come first and get no initializer: their policy hashes
//! are what the workloads' initializers pin.
//!
//! Nothing is written unless every workload went through; exit 1 lists
//! every refused resource, exit 2 is an unusable command line or file.

// The doc comments below are clap's --help text, with <placeholders>.
#![allow(rustdoc::invalid_html_tags)]

pub mod coordinator;
pub mod example;
pub mod images;
pub mod images_json;
pub mod initdata_doc;
pub mod insecure_simulation;
pub mod manifest_out;
pub mod pod;
pub mod policy;
pub mod yaml_docs;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use accord_core::hex;
use accord_core::manifest::{ManifestDoc, PolicyEntry, ROLE_COORDINATOR};
use anyhow::Context;
use clap::{Args, ValueEnum};
use serde_yaml_ng::Value;

use crate::annotations;
use crate::initdata;
use crate::k8s_yaml::{self, Resource};
use crate::manifest_cmd::Failure;
use images::{ImageSource, pinned_digest};

/// The runtime classes that mark a pod template for `accord generate`.
pub const MARKER_RUNTIME_CLASSES: &[&str] = &["accord-cc", "contrast-cc"];

/// The mesh API port of the coordinator.
const MESH_PORT: u16 = 7777;

/// The platform: which Kata runtime class the pods run under by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Platform {
    /// AMD SEV-SNP on bare metal, Kata's QEMU (runtime class kata-qemu-snp).
    QemuSnp,
    /// Intel TDX on bare metal, Kata's QEMU (runtime class kata-qemu-tdx).
    QemuTdx,
}

impl Platform {
    /// The runtime class installed for this platform.
    pub fn default_runtime_class(self) -> &'static str {
        match self {
            Self::QemuSnp => "kata-qemu-snp",
            Self::QemuTdx => "kata-qemu-tdx",
        }
    }
}

/// Arguments of `accord generate`.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct GenerateArgs {
    /// Kubernetes YAML files (multi-document) or directories of them
    /// (every *.yaml / *.yml inside, sorted). None needed with
    /// --coordinator.
    #[arg(required_unless_present_any = ["example", "coordinator"], value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Write the example deployment (plain YAML for a coordinator, web and
    /// db, and the image facts of their synthetic images) into DIR, which
    /// must not have those files yet, and do nothing else.
    #[arg(long, value_name = "DIR", conflicts_with = "paths")]
    pub example: Option<PathBuf>,

    /// The platform: sets the default runtime class.
    #[arg(long, value_enum, value_name = "P", default_value = "qemu-snp")]
    pub platform: Platform,

    /// Trusted hardware: a JSON object {"snp": [...], "tdx": [...]} in the
    /// manifest's ReferenceValues format. Replaces the manifest's; without
    /// it the manifest's are kept (a new manifest needs it).
    #[arg(long, value_name = "F")]
    pub reference_values: Option<PathBuf>,

    /// The manifest to write or update (its reference values, owner keys
    /// and threshold are kept; its Policies become those generated now).
    #[arg(short, long, value_name = "FILE", default_value = "manifest.json")]
    pub manifest: PathBuf,

    /// Write the rewritten YAML files into DIR (same file names) instead
    /// of rewriting them in place.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,

    /// The runtime class to write (default: kata-qemu-snp for qemu-snp,
    /// kata-qemu-tdx for qemu-tdx).
    #[arg(long, value_name = "NAME")]
    pub runtime_class: Option<String>,

    /// The initializer's image, pinned by digest (an accord-guest image:
    /// it runs `accord-guest initializer`). Default: the accord-agent
    /// image of --images. Required unless every pod skips the
    /// initializer.
    #[arg(long, value_name = "REF@sha256:…")]
    pub initializer_image: Option<String>,

    /// Inject no initializer into any pod (the annotation
    /// accord.dev/skip-initializer: "true" does so for one pod).
    #[arg(long)]
    pub skip_initializer: bool,

    /// Add a workload owner's key (may repeat): a private key file from
    /// `accord keys new --workload-owner`, or a .pub file (hex
    /// SubjectPublicKeyInfo or PEM).
    #[arg(long, value_name = "FILE")]
    pub add_workload_owner_key: Vec<PathBuf>,

    /// Add a seed-share owner's key (may repeat): a private key file from
    /// `accord keys new --seedshare-owner`, or a .pub file.
    #[arg(long, value_name = "FILE")]
    pub add_seedshare_owner_key: Vec<PathBuf>,

    /// How many seed-share owners are needed to recover (k of n); default:
    /// the manifest's, else 1.
    #[arg(long, value_name = "K")]
    pub seedshare_threshold: Option<u32>,

    /// Remove every workload owner key: once set, the manifest can never
    /// be updated.
    #[arg(long)]
    pub disable_updates: bool,

    /// Take image facts from this JSON file (image reference → {"Source",
    /// "Digest", "Entrypoint", "Cmd", "Env", "User", "WorkingDir",
    /// "Volumes", "Layers"}; "Source" says where the facts come from) and
    /// never ask a registry.
    #[arg(long, value_name = "FILE")]
    pub image_facts: Option<PathBuf>,

    /// Resolve images referenced without a digest to their current digest
    /// and write `REF@sha256:…` into the YAML (without it, such images
    /// are refused).
    #[arg(long)]
    pub pin_images: bool,

    /// The on-disk cache of image facts fetched from registries (default:
    /// $XDG_CACHE_HOME/accord/images, else ~/.cache/accord/images).
    #[arg(long, value_name = "DIR")]
    pub image_cache: Option<PathBuf>,

    /// A registry (HOST:PORT) to speak plain HTTP to, e.g. a local one
    /// (may repeat). The image digests still authenticate what it serves.
    #[arg(long, value_name = "HOST:PORT")]
    pub insecure_registry: Vec<String>,

    /// Also write the coordinator's resources, coordinator.yaml (its
    /// StatefulSet, the coordinator and coordinator-ready Services, RBAC
    /// and NetworkPolicy), into -o DIR (else the current directory), and
    /// generate its pods' policy like any workload's: its hash is printed
    /// and goes into the manifest, where `accord set` and `verify` pin it.
    /// Needs --images. Without PATHs and without reference values it
    /// writes no manifest.
    #[arg(long, requires = "images")]
    pub coordinator: bool,

    /// accord's own images, pinned by digest, as `cargo xtask oci` writes
    /// them: {"images": [{"name": "accord-agent", "reference":
    /// "REF@sha256:…", "digest": "sha256:…", "insecure_simulation": false,
    /// "entrypoint": […], "cmd": […], "env": […], "user": "…",
    /// "working_dir": "…"}, {"name": "accord-shim", …}]} (other fields
    /// and names are ignored). accord-agent runs the coordinator and is the
    /// default --initializer-image; accord-shim runs the shim. Their image
    /// facts are the entries' (an entry without them is refused): no
    /// registry is asked for them. An entry marked insecure_simulation is
    /// an INSECURE test image: refused as the agent.
    #[arg(long, value_name = "FILE")]
    pub images: Option<PathBuf>,

    /// INSECURE, for tests only: an INSECURE TEST DEPLOYMENT of the test
    /// images (`cargo xtask oci --insecure-simulation`), never for a
    /// cluster. The agent is the accord-agent-insecure-simulation of
    /// --images (it must be marked "insecure_simulation": true); the
    /// coordinator runs `--tee insecure-simulated` and so do the
    /// initializers; the simulated chip's state is the node's directory
    /// /var/lib/accord/insecure-simulated-chip, a hostPath volume
    /// insecure-simulated-chip mounted read-only at that path in the
    /// coordinator's container and in every initializer (the pods'
    /// policies allow that mount). coordinator.yaml says so in its first
    /// line. The simulated chip's evidence proves nothing. Without this
    /// flag, an image marked insecure_simulation is refused as the agent
    /// or the initializer.
    #[arg(long)]
    pub insecure_simulation: bool,
}

/// `accord generate`'s long help.
pub const LONG_ABOUT: &str = "\
Rewrite plain Kubernetes YAML into attestable Kata pods, with generated \
agent policies, and write the manifest.

Reads Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and CronJob \
objects (and the ConfigMaps and Secrets they reference) from the PATHs. \
Every pod template with runtimeClassName accord-cc (or contrast-cc) is \
rewritten in place (or into -o DIR):
  - runtimeClassName becomes --runtime-class (default per --platform);
  - the initializer is injected as the first init container
    (--initializer-image, pinned by digest), talking to
    coordinator-ready.<namespace>:7777 and pinning the coordinator's policy
    hashes, the reference values and the seed-share owners and threshold;
    it runs as root, without capabilities, not privileged (the runtime must
    expose configfs-tsm to containers: host-shim/deploy/README.md), and
    gives its files to the user the first container runs as (--owner UID,
    with CAP_CHOWN only; runAsUser, else the image's numeric User);
    its files (tls-config/, secrets/) land in the emptyDir volume
    accord-shared, mounted in every container at /accord (pod annotation
    accord.dev/mount-path overrides); --skip-initializer or the annotation
    accord.dev/skip-initializer: \"true\" leaves it out;
  - the pod's Kata agent policy is generated and wrapped, with accord's
    keys (the workload's identity), into init-data, set as the annotation
    io.katacontainers.config.hypervisor.cc_init_data.
The coordinator's pods (annotation accord.dev/pod-role: coordinator) get \
a policy and no initializer. Every image must be pinned by digest \
(--pin-images resolves tags); image facts come from the registry (cached) \
or from --image-facts FILE.

The manifest (-m) gets one policy per pod template: hash → SANs, \
WorkloadSecretID, Role, from the annotations accord.dev/sans, \
accord.dev/workload-secret-id and accord.dev/pod-role (contrast.edgeless.systems/* \
names are read as aliases); each policy's init-data goes to \
policies/<hash>.toml beside it, which accord set sends with the manifest. \
Prints one line per workload: hash, role, SANs. Running it again on its own output changes nothing.

--insecure-simulation writes an INSECURE TEST DEPLOYMENT for tests in \
containers: the test images of `cargo xtask oci --insecure-simulation` \
with the simulated chip (--tee insecure-simulated), whose state is the \
node's /var/lib/accord/insecure-simulated-chip, mounted read-only into the \
coordinator and the initializers. Its evidence proves nothing: never deploy it.

`accord generate --example DIR` writes an example to start from: a \
coordinator, web and db under accord-cc, and image-facts.json for their \
synthetic images (README.md, \"A deployment by hand\", runs it).";

/// Runs `accord generate`: exit 0, 1 (refused input, every problem
/// listed) or 2 (unusable command line or file).
pub fn run(args: &GenerateArgs) -> ExitCode {
    crate::manifest_cmd::finish(match &args.example {
        Some(dir) => example::run(dir),
        None => generate(args),
    })
}

/// `accord generate` as a library call (the demo): the same checks and
/// files; a refusal is an error listing every problem.
pub fn generate_files(args: &GenerateArgs) -> anyhow::Result<()> {
    match generate(args) {
        Ok(()) => Ok(()),
        Err(Failure::Usage(err)) => Err(err),
        Err(Failure::Invalid(lines)) => Err(anyhow::anyhow!("{}", lines.join("\n  "))),
    }
}

/// One input file.
struct InputFile {
    path: PathBuf,
    original: String,
    chunks: Vec<yaml_docs::Chunk>,
}

/// A pod template to generate a policy for.
struct Workload {
    file: usize,
    chunk: usize,
    resource: Resource,
    entry: PolicyEntry,
    coordinator: bool,
    initializer: bool,
    mount_path: String,
}

/// A generated policy, for the manifest and the summary.
struct Generated {
    hash: String,
    /// The init-data TOML (`policies/<hash>.toml`, which `accord set`
    /// sends with the manifest).
    toml: String,
    entry: PolicyEntry,
    origin: String,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut node = v;
    for step in path {
        node = node.get(*step)?;
    }
    node.as_str()
}

fn resource_of(
    path: &Path,
    index: usize,
    value: &Value,
    pod_annotations: BTreeMap<String, String>,
) -> Resource {
    let annotations = value
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| serde_yaml_ng::from_value(a.clone()).ok())
        .unwrap_or_default();
    Resource {
        file: path.to_path_buf(),
        doc_index: index,
        api_version: str_at(value, &["apiVersion"]).unwrap_or_default().into(),
        kind: str_at(value, &["kind"]).unwrap_or_default().into(),
        name: str_at(value, &["metadata", "name"])
            .unwrap_or_default()
            .into(),
        namespace: str_at(value, &["metadata", "namespace"])
            .filter(|n| !n.is_empty())
            .unwrap_or("default")
            .into(),
        annotations,
        pod_annotations: Some(pod_annotations),
    }
}

/// An annotation of the pod template, else of the object (see
/// [`annotations::lookup`]).
fn annotation<'a>(r: &'a Resource, name: &str) -> Option<&'a str> {
    let origin = r.location();
    r.pod_annotations
        .as_ref()
        .and_then(|a| annotations::lookup(a, name, &origin))
        .or_else(|| annotations::lookup(&r.annotations, name, &origin))
}

fn yaml_to_json(v: &Value) -> Result<serde_json::Value, String> {
    serde_json::to_value(v).map_err(|e| format!("not representable as JSON: {e}"))
}

fn generate(args: &GenerateArgs) -> Result<(), Failure> {
    let runtime_class = args
        .runtime_class
        .clone()
        .unwrap_or_else(|| args.platform.default_runtime_class().to_string());
    if let Some(image) = &args.initializer_image
        && pinned_digest(image).is_none()
    {
        return Err(Failure::Usage(anyhow::anyhow!(
            "--initializer-image {image}: must be pinned by digest (REF@sha256:<64 hex>)"
        )));
    }
    let own_images = match &args.images {
        Some(file) => Some(images_json::Images::read(file)?),
        None => None,
    };
    if args.coordinator && own_images.is_none() {
        return Err(Failure::Usage(anyhow::anyhow!(
            "--coordinator needs --images FILE (accord's images pinned by digest)"
        )));
    }
    if args.insecure_simulation {
        eprintln!("{}", insecure_simulation::WARNING);
    }
    let images_file = args.images.as_deref().unwrap_or(Path::new("images.json"));
    // The agent image of --images: the production one, or with
    // --insecure-simulation the test set's (each refused if marked
    // otherwise).
    let agent_image = match &own_images {
        Some(own) => own
            .agent(args.insecure_simulation, images_file)?
            .map(String::from),
        None => None,
    };
    // The initializer is the agent image unless named.
    let initializer_image = args.initializer_image.clone().or(agent_image.clone());
    if let (Some(image), Some(own), false) =
        (&initializer_image, &own_images, args.insecure_simulation)
        && let Some(name) = own.insecure_simulation_name(image)
    {
        return Err(Failure::Usage(anyhow::anyhow!(
            "--initializer-image {image} is {name} of {}, an INSECURE test image (marked \
             insecure_simulation): deployed only with --insecure-simulation",
            images_file.display()
        )));
    }
    // The coordinator alone may go without reference values: then no
    // manifest is written, only its policy hash printed.
    let coordinator_only = args.coordinator && args.paths.is_empty();
    let doc = manifest_out::prepare(args, !coordinator_only)?;
    let write_manifest =
        !doc.reference_values.snp.is_empty() || !doc.reference_values.tdx.is_empty();
    let coordinator_file = args.coordinator.then(|| {
        args.output
            .clone()
            .unwrap_or_else(|| PathBuf::from("."))
            .join(coordinator::FILE_NAME)
    });

    // Read every file.
    let mut files = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let inputs = if args.paths.is_empty() {
        Vec::new()
    } else {
        k8s_yaml::expand_paths(&args.paths)?
    };
    for path in inputs {
        if let Some(target) = &coordinator_file {
            if same_file(&path, target) {
                eprintln!("skipped {}: --coordinator writes it anew", path.display());
                continue;
            }
            let written_to = match (&args.output, path.file_name()) {
                (Some(dir), Some(name)) => dir.join(name),
                _ => path.clone(),
            };
            if same_file(&written_to, target) {
                errors.push(format!(
                    "{}: would be written to {}, where --coordinator writes the coordinator's \
                     resources: rename it, or leave it out",
                    path.display(),
                    target.display()
                ));
                continue;
            }
        }
        let original = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        match yaml_docs::split(&original) {
            Ok(chunks) => files.push(InputFile {
                path,
                original,
                chunks,
            }),
            Err((index, e)) => errors.push(format!(
                "{}, document {index}: not YAML: {e}",
                path.display()
            )),
        }
    }

    // The coordinator's resources: one more input, generated.
    if let (Some(path), Some(own)) = (&coordinator_file, &own_images) {
        let agent = agent_image.as_deref().with_context(|| {
            format!(
                "{}: lists no image named {:?}",
                images_file.display(),
                if args.insecure_simulation {
                    images_json::AGENT_INSECURE_SIMULATION
                } else {
                    images_json::AGENT
                }
            )
        })?;
        let mut text = coordinator::resources(agent, own.require(images_json::SHIM, images_file)?);
        if args.insecure_simulation {
            text.insert_str(0, insecure_simulation::BANNER);
        }
        let chunks = yaml_docs::split(&text)
            .map_err(|(i, e)| anyhow::anyhow!("internal: coordinator.yaml, document {i}: {e}"))?;
        files.push(InputFile {
            original: std::fs::read_to_string(path).unwrap_or_default(),
            path: path.clone(),
            chunks,
        });
    }

    // ConfigMaps and Secrets, and the pod templates to handle.
    let mut config_maps = Vec::new();
    let mut secrets = Vec::new();
    let mut workloads = Vec::new();
    for (fi, file) in files.iter().enumerate() {
        for (ci, chunk) in file.chunks.iter().enumerate() {
            let value = &chunk.value;
            if value.is_null() {
                continue;
            }
            let kind = str_at(value, &["kind"]).unwrap_or_default();
            let here = || {
                format!(
                    "{}, document {ci}, {kind} {}",
                    file.path.display(),
                    str_at(value, &["metadata", "name"]).unwrap_or("")
                )
            };
            match kind {
                "ConfigMap" | "Secret" => {
                    match yaml_to_json(value) {
                        Ok(j) if kind == "ConfigMap" => config_maps.push(j),
                        Ok(j) => secrets.push(j),
                        Err(e) => errors.push(format!("{}: {e}", here())),
                    }
                    continue;
                }
                _ => {}
            }
            let Some(template) = pod::template(value, kind) else {
                continue;
            };
            let pod_annotations = match pod::annotations(template) {
                Ok(a) => a,
                Err(e) => {
                    errors.push(format!("{}: {e}", here()));
                    continue;
                }
            };
            let resource = resource_of(&file.path, ci, value, pod_annotations);
            if resource.name.is_empty() {
                errors.push(format!(
                    "{}: metadata.name is required",
                    resource.location()
                ));
                continue;
            }
            let class = pod::runtime_class(template);
            let marked = class.is_some_and(|c| MARKER_RUNTIME_CLASSES.contains(&c));
            let rerun = class == Some(runtime_class.as_str())
                && resource
                    .pod_annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(initdata::ANNOTATION));
            if !marked && !rerun {
                eprintln!(
                    "skipped {}: runtime class {} is not accord-cc: left alone",
                    resource.location(),
                    class.map_or_else(|| "(none)".to_string(), |c| format!("{c:?}"))
                );
                continue;
            }
            let entry = match crate::manifest_cmd::policy_entry(&resource) {
                Ok(e) => e,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let coordinator = entry.role == ROLE_COORDINATOR;
            let skip = annotation(&resource, annotations::SKIP_INITIALIZER)
                .is_some_and(|v| v.trim() == "true");
            let mount_path = annotation(&resource, annotations::MOUNT_PATH)
                .unwrap_or(pod::DEFAULT_MOUNT_PATH)
                .trim()
                .to_string();
            if !mount_path.starts_with('/') {
                errors.push(format!(
                    "{}: annotation {} is {mount_path:?}: must be an absolute path",
                    resource.location(),
                    annotations::key(annotations::MOUNT_PATH)
                ));
                continue;
            }
            workloads.push(Workload {
                file: fi,
                chunk: ci,
                resource,
                entry,
                coordinator,
                initializer: !coordinator && !skip && !args.skip_initializer,
                mount_path,
            });
        }
    }
    if args.coordinator {
        let generated = files.len().saturating_sub(1);
        for w in workloads
            .iter()
            .filter(|w| w.coordinator && w.file != generated)
        {
            errors.push(format!(
                "{}: a coordinator (accord.dev/pod-role: coordinator) besides the one \
                 --coordinator writes: leave it out, or drop --coordinator",
                w.resource.location()
            ));
        }
    }
    if workloads.is_empty() && errors.is_empty() {
        return Err(Failure::Invalid(vec![format!(
            "no pod template has runtimeClassName accord-cc (or contrast-cc): nothing to generate"
        )]));
    }
    if workloads.iter().any(|w| w.initializer) && initializer_image.is_none() {
        errors.push(
            "an initializer is to be injected but --initializer-image is not given: pass \
             --initializer-image REF@sha256:…, --images with an accord-agent image (or \
             --skip-initializer)"
                .to_string(),
        );
    }

    // Image facts.
    let source = match &args.image_facts {
        Some(file) => ImageSource::offline(file)?,
        None => ImageSource::registry(
            args.image_cache
                .clone()
                .unwrap_or_else(images::default_cache_dir),
            args.insecure_registry.clone(),
        )?,
    };
    // accord's own images: their facts are images.json's, no registry asked.
    let source = source.with_known(own_images.map(|i| i.facts()).unwrap_or_default());

    // Coordinators first: their hashes go into the initializers.
    workloads.sort_by_key(|w| !w.coordinator);
    let mut generated: Vec<Generated> = Vec::new();
    let mut coordinator_hashes: BTreeSet<String> = BTreeSet::new();
    let mut pins_reported = false;
    for w in &workloads {
        if w.initializer && !pins_reported {
            pins_reported = true;
            if coordinator_hashes.is_empty() {
                coordinator_hashes = doc
                    .policies
                    .iter()
                    .filter(|(_, p)| p.is_coordinator())
                    .map(|(h, _)| h.clone())
                    .collect();
                if coordinator_hashes.is_empty() {
                    errors.push(
                        "no coordinator policy to pin in the initializers: include the \
                         coordinator's YAML (annotation accord.dev/pod-role: coordinator) or \
                         use a manifest (-m) that has one"
                            .into(),
                    );
                } else {
                    eprintln!(
                        "note: no coordinator among the inputs: the initializers pin the \
                         coordinator policies of {}",
                        args.manifest.display()
                    );
                }
            }
            if doc.seedshare_owner_pub_keys.is_empty() {
                eprintln!(
                    "warning: no seed-share owner keys: the initializers will refuse to start \
                     (they pin the deployment by its seed-share owners); add \
                     --add-seedshare-owner-key"
                );
            }
        }
        match generate_one(
            args,
            &runtime_class,
            &source,
            &doc,
            &coordinator_hashes,
            initializer_image.as_deref(),
            w,
            &mut files,
            &config_maps,
            &secrets,
        ) {
            Ok((hash, toml)) => {
                if w.coordinator {
                    coordinator_hashes.insert(hash.clone());
                }
                generated.push(Generated {
                    hash,
                    toml,
                    entry: w.entry.clone(),
                    origin: w.resource.location(),
                });
            }
            Err(mut e) => errors.append(&mut e),
        }
    }

    // The manifest.
    let mut policies: BTreeMap<String, PolicyEntry> = BTreeMap::new();
    let mut origins: BTreeMap<String, String> = BTreeMap::new();
    for g in &generated {
        if let Some(first) = policies.get(&g.hash) {
            if *first != g.entry {
                errors.push(format!(
                    "{}: same policy hash {} as {} but a different manifest entry",
                    g.origin, g.hash, origins[&g.hash]
                ));
            }
            continue;
        }
        policies.insert(g.hash.clone(), g.entry.clone());
        origins.insert(g.hash.clone(), g.origin.clone());
    }
    crate::manifest_cmd::resource_problems(errors)?;
    let doc = ManifestDoc { policies, ..doc };
    let json = if write_manifest {
        Some(manifest_out::check(&doc).map_err(Failure::Invalid)?)
    } else {
        None
    };

    // Write: the YAML first, then the manifest.
    for file in &files {
        let text = yaml_docs::join(&file.chunks)
            .with_context(|| format!("serializing {}", file.path.display()))?;
        let target = match &args.output {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                dir.join(file.path.file_name().context("an input has no file name")?)
            }
            None if text == file.original => continue,
            None => file.path.clone(),
        };
        crate::workspace::write_atomic(&target, text.as_bytes())?;
    }
    if let Some(json) = json {
        // The policies beside the manifest, where `accord set` reads them.
        let policies_dir = args
            .manifest
            .parent()
            .unwrap_or(Path::new(""))
            .join("policies");
        std::fs::create_dir_all(&policies_dir)
            .with_context(|| format!("cannot create {}", policies_dir.display()))?;
        for g in &generated {
            let path = policies_dir.join(format!("{}.toml", g.hash));
            if std::fs::read(&path).ok().as_deref() != Some(g.toml.as_bytes()) {
                crate::workspace::write_atomic(&path, g.toml.as_bytes())?;
            }
        }
        crate::workspace::write_atomic(&args.manifest, json.as_bytes())?;
        eprintln!(
            "wrote {} ({} policies; policies in {})",
            args.manifest.display(),
            doc.policies.len(),
            policies_dir.display()
        );
    } else {
        eprintln!(
            "no manifest written (no reference values): the coordinator's policy hash is \
             below; generate with your workloads and --reference-values to put it in one"
        );
    }
    for g in &generated {
        let role = if g.entry.is_coordinator() {
            "coordinator"
        } else {
            "workload"
        };
        println!("{}  {role:<11}  {}", g.hash, g.entry.sans.join(","));
    }
    Ok(())
}

/// Whether `input` is the file `target` (either may not exist yet: then
/// by their absolute paths).
fn same_file(input: &Path, target: &Path) -> bool {
    let canonical = |p: &Path| {
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        let dir = std::fs::canonicalize(dir)
            .or_else(|_| std::path::absolute(dir))
            .ok()?;
        Some(dir.join(p.file_name()?))
    };
    canonical(input).is_some_and(|a| Some(a) == canonical(target))
}

/// The initializer's arguments: where the coordinator is and what it must
/// be (all measured: the pod's policy pins them).
fn initializer_args(
    namespace: &str,
    doc: &ManifestDoc,
    coordinator_hashes: &BTreeSet<String>,
) -> Result<Vec<String>, String> {
    let mut args = vec![
        "initializer".to_string(),
        "--coordinator".into(),
        format!("coordinator-ready.{namespace}:{MESH_PORT}"),
        "--out".into(),
        pod::DEFAULT_MOUNT_PATH.into(),
    ];
    for h in coordinator_hashes {
        args.push("--coordinator-policy".into());
        args.push(h.clone());
    }
    args.push("--coordinator-reference-values".into());
    args.push(
        serde_json::to_string(&doc.reference_values)
            .map_err(|e| format!("serializing the reference values: {e}"))?,
    );
    if !doc.seedshare_owner_pub_keys.is_empty() {
        for k in &doc.seedshare_owner_pub_keys {
            args.push("--seedshare-owner".into());
            args.push(k.clone());
        }
        args.push("--seedshare-threshold".into());
        args.push(doc.seedshare_threshold.to_string());
    }
    for k in &doc.workload_owner_pub_keys {
        args.push("--workload-owner".into());
        args.push(k.clone());
    }
    Ok(args)
}

/// Rewrites one pod template and generates its policy; returns the hash
/// and the init-data TOML.
#[allow(clippy::too_many_arguments)]
fn generate_one(
    args: &GenerateArgs,
    runtime_class: &str,
    source: &ImageSource,
    doc: &ManifestDoc,
    coordinator_hashes: &BTreeSet<String>,
    initializer_image: Option<&str>,
    w: &Workload,
    files: &mut [InputFile],
    config_maps: &[serde_json::Value],
    secrets: &[serde_json::Value],
) -> Result<(String, String), Vec<String>> {
    let location = w.resource.location();
    let at = |e: String| vec![format!("{location}: {e}")];
    let chunk = files
        .get_mut(w.file)
        .and_then(|f| f.chunks.get_mut(w.chunk))
        .ok_or_else(|| at("internal: lost the document".into()))?;
    let mut value = chunk.value.clone();
    let kind = w.resource.kind.clone();
    let template =
        pod::template_mut(&mut value, &kind).ok_or_else(|| at("no pod template".into()))?;
    pod::set_runtime_class(template, runtime_class).map_err(at)?;
    pod::strip_injected(template);
    if args.insecure_simulation && w.coordinator {
        insecure_simulation::rewrite_coordinator(template).map_err(at)?;
    }

    // Images: pinned by digest (or pinned now).
    let mut errors = Vec::new();
    for (name, image) in pod::containers(template) {
        if image.is_empty() {
            errors.push(format!("{location}, container {name}: no image"));
            continue;
        }
        if pinned_digest(&image).is_some() {
            continue;
        }
        if !args.pin_images {
            errors.push(format!(
                "{location}, container {name}: image {image} is not pinned by digest \
                 (write {image}@sha256:…, or pass --pin-images to resolve it)"
            ));
            continue;
        }
        match source.resolve_digest(&image) {
            Ok(digest) => {
                let pinned = format!("{image}@{digest}");
                eprintln!("pinned {location}, container {name}: {pinned}");
                pod::set_image(template, &name, &pinned);
            }
            Err(e) => errors.push(format!("{location}, container {name}: {e:#}")),
        }
    }
    // Every ConfigMap the pod needs must be among the inputs: the policy
    // pins what the containers get from it.
    for (name, at) in pod::required_config_maps(template) {
        let present = config_maps.iter().any(|cm| {
            cm.pointer("/metadata/name")
                .and_then(serde_json::Value::as_str)
                == Some(&name)
                && cm
                    .pointer("/metadata/namespace")
                    .and_then(serde_json::Value::as_str)
                    .filter(|n| !n.is_empty())
                    .unwrap_or("default")
                    == w.resource.namespace
        });
        if !present {
            errors.push(format!(
                "{location}, {at}: ConfigMap {}/{name} is not among the inputs (add its YAML, \
                 or mark the reference optional: true)",
                w.resource.namespace
            ));
        }
    }
    if w.initializer {
        let image = initializer_image.unwrap_or_default();
        let mut init_args =
            initializer_args(&w.resource.namespace, doc, coordinator_hashes).map_err(at)?;
        // Whom to give the files to: asks the images' facts, so only once
        // every image is pinned (else those errors are the ones to show).
        let owner = if errors.is_empty() {
            pod::workload_owner(template, |image| {
                source
                    .facts(image)
                    .map(|f| f.user.clone())
                    .map_err(|e| format!("{e:#}"))
            })
            .map_err(|e| vec![format!("{location}, {e}")])?
        } else {
            None
        };
        if let Some(uid) = owner {
            init_args.extend(["--owner".to_string(), uid.to_string()]);
        }
        if args.insecure_simulation {
            init_args.extend(insecure_simulation::initializer_args());
        }
        pod::inject_initializer(template, image, &init_args, &w.mount_path).map_err(at)?;
        if args.insecure_simulation {
            insecure_simulation::rewrite_initializer_pod(template).map_err(at)?;
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut images = BTreeMap::new();
    for (name, image) in pod::containers(template) {
        match source.facts(&image) {
            Ok(f) => {
                images.insert(image, f.config());
            }
            Err(e) => errors.push(format!("{location}, container {name}: {e:#}")),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    // The policy's input: the object without its own init-data.
    let mut input_value = value.clone();
    if let Some(t) = pod::template_mut(&mut input_value, &kind) {
        pod::remove_annotation(t, initdata::ANNOTATION);
    }
    let resource_json = yaml_to_json(&input_value).map_err(at)?;
    let input = policy::PodInput {
        resource: &resource_json,
        config_maps,
        secrets,
        images: &images,
    };
    let mut settings = policy::Settings::default();
    if args.insecure_simulation {
        // The simulated chip's state, shared read-only from the node.
        settings.insecure_host_paths = vec![insecure_simulation::CHIP_DIR.to_string()];
    }
    let rego =
        policy::generate_policy(&input, &settings).map_err(|e| at(format!("policy: {e}")))?;
    warn_long_policy_lines(&location, &rego);
    let identity = initdata_doc::Identity {
        api_version: &w.resource.api_version,
        kind: &w.resource.kind,
        namespace: &w.resource.namespace,
        name: &w.resource.name,
        entry: &w.entry,
    };
    let toml = initdata_doc::document(&identity, &rego).map_err(at)?;
    let hash = hex::encode(&initdata::policy_hash(toml.as_bytes()));
    let template =
        pod::template_mut(&mut value, &kind).ok_or_else(|| at("no pod template".into()))?;
    pod::set_annotation(
        template,
        initdata::ANNOTATION,
        &initdata::initdata_annotation(&toml),
    )
    .map_err(at)?;
    if value != chunk.value {
        chunk.value = value;
        chunk.changed = true;
    }
    Ok((hash, toml))
}

/// The longest policy line a kata-agent is sure to parse: regorus 0.9.1
/// refuses longer ones outright, and later releases (0.14 included) by
/// default (`PolicyLengthConfig`); the kata-agent's own pinned regorus
/// may raise the limit, but the agent a pod lands on may be older.
pub const KATA_AGENT_POLICY_COLUMNS: usize = 1024;

/// Warns (one stderr line naming the pod and the line) when the generated
/// policy has a line longer than [`KATA_AGENT_POLICY_COLUMNS`], e.g. from
/// an environment value of over a thousand characters: such a pod may
/// fail to start. A warning, not a refusal: the policy itself is right.
fn warn_long_policy_lines(location: &str, rego: &str) {
    if let Some((number, line)) = rego
        .lines()
        .enumerate()
        .find(|(_, line)| line.chars().count() > KATA_AGENT_POLICY_COLUMNS)
    {
        let start: String = line.trim_start().chars().take(40).collect();
        eprintln!(
            "warning: {location}: line {} of its policy has {} characters (starting `{start}`); \
             kata-agents whose regorus limits lines to {KATA_AGENT_POLICY_COLUMNS} will refuse \
             the policy and the pod will not start",
            number + 1,
            line.chars().count(),
        );
    }
}
