//! `accord set`: sets or updates the coordinator's manifest.
//!
//! ```text
//! accord set -c HOST:PORT [-m manifest.json] [--workload-owner-key F]
//!            [--signature F]… [--atomic] [--reshare] [--workspace DIR] [--json]
//!            [--timeout SECS] [--insecure-simulation]
//! ```
//!
//! 1. Loads the manifest's exact bytes and every policy it names from
//!    `DIR/policies` ([`load_set_request`]).
//! 2. Attests the coordinator. An update is served by the coordinator
//!    running the CURRENT manifest, so the policy comes from the newest
//!    manifest this workspace knows (the last one `accord verify` wrote to
//!    `verify/manifests/`, or the copy of the last manifest set from here,
//!    `DIR/last-set-manifest.json`), else from the new manifest.
//!    Before connecting, if that current manifest or the manifest to set
//!    trusts the INSECURE simulated SEV-SNP root (`InsecureTrustedRoot`),
//!    the set is refused (exit 1, naming the file and the entry's JSON
//!    path) unless `--insecure-simulation`, which accepts it with a
//!    warning on stderr ([`crate::net`]).
//! 3. Asks `GetManifests` for the latest transition (none: a first set).
//! 4. For an update, signs the transition it creates with
//!    `--workload-owner-key`, and/or sends the `--signature` files of
//!    `accord sign` (whose `next_transition` must be that transition).
//!    `--atomic` makes the update conditional on the latest transition
//!    this workspace saw (`expected_previous_transition`: the transition
//!    of the last `accord verify` or `accord set` here, else the one
//!    `GetManifests` just returned), so an update someone else made in
//!    between is refused (`manifest_conflict`).
//!    The signatures cover the update intent: the deployment (the history
//!    public key the coordinator reports, which must be the one of this
//!    workspace's trust state if there is one), the next transition and
//!    `--reshare`.
//! 5. On success writes `DIR/seed-shares.json` (0600, first set or `--reshare`),
//!    `DIR/coordinator-root-ca.pem`, `DIR/mesh-ca.pem`,
//!    `DIR/last-set-manifest.json` and `DIR/last-set.json`, then verifies
//!    the history the coordinator now serves as `accord verify` does and
//!    writes `DIR/verify/` with the trust state, and prints the
//!    generation and transition (a JSON object with `--json`).
//!
//! Exit status as in [`crate::net`].

use std::path::PathBuf;
use std::process::ExitCode;

use accord_core::der::write::pem;
use accord_core::hex;
use accord_core::manifest::Manifest;
use accord_core::protocol::{
    ErrorCode, GetManifests, GetManifestsReply, ManifestSet, Manifests, SetManifest,
    SetManifestReply,
};
use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::keys::load_private_key;
use crate::net::{self, CoordinatorOptions, Failure};
use crate::set_payload::{
    load_set_request, next_transition_of, seed_share_document_save, sign_intent,
};
use crate::sign::SignatureFile;
use crate::verify_logic::{
    check_history, manifests_from_reply, manifests_request, write_verify_dir,
};
use crate::workspace::{Workspace, write_atomic};
use accord_core::coordinator::UpdateIntent;

/// The copy of the last manifest set from this workspace.
pub const LAST_SET_MANIFEST: &str = "last-set-manifest.json";
/// What the last set from this workspace returned.
pub const LAST_SET_FILE: &str = "last-set.json";
/// The coordinator's root CA, as the last set returned it.
pub const ROOT_CA_FILE: &str = "coordinator-root-ca.pem";
/// The mesh CA, as the last set returned it.
pub const MESH_CA_FILE: &str = "mesh-ca.pem";

/// Arguments of `accord set`: the shared coordinator connection options
/// (with `accord set`'s own help for `--manifest` and `--workspace`, and
/// `--workspace`, `--json`, `--timeout` listed last, as they always were,
/// then `--insecure-simulation`) and the signing options.
#[derive(Clone, Debug, Args)]
#[command(
    mut_arg("manifest", |a| a.help("The manifest to set. Default: manifest.json in the workspace")),
    mut_arg("workspace", |a| a.help("The workspace directory").display_order(100)),
    mut_arg("json", |a| a.display_order(101)),
    mut_arg("timeout", |a| a.display_order(102)),
    mut_arg("insecure_simulation", |a| a.display_order(103)),
)]
pub struct SetArgs {
    /// `-c`, `-m`, `--workspace`, `--json`, `--timeout`,
    /// `--insecure-simulation`.
    #[command(flatten)]
    pub options: CoordinatorOptions,

    /// Sign the update with this workload owner key (Ed25519 or P-384).
    #[arg(long, value_name = "FILE")]
    pub workload_owner_key: Option<PathBuf>,

    /// A signature file from `accord sign` (may repeat).
    #[arg(long, value_name = "FILE")]
    pub signature: Vec<PathBuf>,

    /// Only update if the coordinator's latest transition is still the one
    /// seen (someone else's update in between is refused).
    #[arg(long)]
    pub atomic: bool,

    /// Split the seed anew among the manifest's SeedshareOwnerPubKeys with
    /// its SeedshareThreshold (needed when either changes; the owners'
    /// signatures must cover it: `accord sign --prepare --reshare`). The
    /// new seed-share document replaces seed-shares.json (other owners
    /// fetch it with `accord verify`). The coordinator refuses the old
    /// shares from then on, but they still rebuild the seed offline: the
    /// seed does not change.
    #[arg(long)]
    pub reshare: bool,
}

/// What a successful set did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SetOutcome {
    /// The new generation.
    pub generation: u64,
    /// The new latest transition (hex).
    pub transition: String,
    /// SHA-256 of the manifest (hex).
    pub manifest_sha256: String,
    /// Whether this was the first manifest.
    pub first: bool,
    /// Where the seed-share document was written (first set only).
    pub seed_shares: Option<PathBuf>,
    /// Where the root CA was written.
    pub root_ca: PathBuf,
    /// Where the mesh CA was written.
    pub mesh_ca: PathBuf,
}

/// `DIR/last-set.json`.
#[derive(Serialize, Deserialize)]
struct LastSet {
    generation: u64,
    transition: String,
    manifest_sha256: String,
}

/// Runs `accord set`.
pub fn run(args: &SetArgs) -> ExitCode {
    let outcome = net::runtime()
        .map_err(Failure::from)
        .and_then(|rt| rt.block_on(set(args)));
    net::finish(outcome.map(|outcome| print(&outcome, args.options.json)))
}

fn print(outcome: &SetOutcome, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(outcome).unwrap_or_default()
        );
        return;
    }
    println!(
        "manifest set: generation {}, transition {}",
        outcome.generation, outcome.transition
    );
    if let Some(path) = &outcome.seed_shares {
        println!(
            "seed shares written to {} (give each seed-share owner the file; they need it for `accord recover`)",
            path.display()
        );
    }
    println!(
        "wrote {} and {}",
        outcome.root_ca.display(),
        outcome.mesh_ca.display()
    );
}

/// What this workspace last saw the coordinator run: the last verified
/// history or the last manifest set from here, whichever is newer.
struct Known {
    /// The manifest's bytes.
    manifest: Vec<u8>,
    /// Where they came from.
    path: PathBuf,
    /// The latest transition then.
    transition: [u8; 32],
}

fn known_current(workspace: &Workspace) -> anyhow::Result<Option<Known>> {
    // (generation, manifest path, transition)
    let mut best: Option<(u64, PathBuf, [u8; 32])> = None;
    if let Some(trust) = workspace.load_trust_state()? {
        let dir = workspace.verify_dir().join("manifests");
        let newest = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let n: u64 = name
                    .strip_prefix("manifest-")?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()?;
                Some((n, e.path()))
            })
            .max_by_key(|(n, _)| *n);
        if let Some((_, path)) = newest {
            best = Some((trust.generation, path, trust.latest_transition));
        }
    }
    let last_set = workspace.dir().join(LAST_SET_FILE);
    let last_manifest = workspace.dir().join(LAST_SET_MANIFEST);
    if let Ok(bytes) = std::fs::read(&last_set)
        && let Ok(last) = serde_json::from_slice::<LastSet>(&bytes)
        && let Ok(transition) = hex::decode_array::<32>(&last.transition)
        && last_manifest.is_file()
        && best.as_ref().is_none_or(|(g, _, _)| last.generation > *g)
    {
        best = Some((last.generation, last_manifest, transition));
    }
    match best {
        None => Ok(None),
        Some((_, path, transition)) => {
            let manifest =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            Ok(Some(Known {
                manifest,
                path,
                transition,
            }))
        }
    }
}

/// Sets the manifest (see the [module docs](self)).
pub async fn set(args: &SetArgs) -> Result<SetOutcome, Failure> {
    let workspace = args.options.workspace();
    let manifest_path = args.options.manifest_path()?;
    let (manifest, policies) = load_set_request(&manifest_path, &workspace.policies_dir())?;
    let new_manifest = Manifest::from_json(&manifest)
        .map_err(|e| Failure::Refused(format!("{}: {e}", manifest_path.display())))?;

    // The coordinator to talk to runs the current manifest.
    let known = known_current(&workspace)?;
    let current_manifest = match &known {
        Some(known) => Some(
            Manifest::from_json(&known.manifest)
                .map_err(|e| Failure::Usage(anyhow::anyhow!("{}: {e}", known.path.display())))?,
        ),
        None => None,
    };
    // Both the manifest attested against and the one to set must not
    // trust the INSECURE simulated root unless --insecure-simulation.
    let mut trusted = vec![(manifest_path.display().to_string(), &new_manifest)];
    if let (Some(known), Some(current)) = (&known, &current_manifest) {
        trusted.insert(
            0,
            (
                format!(
                    "{} (this workspace's current manifest, which the coordinator is attested against)",
                    known.path.display()
                ),
                current,
            ),
        );
    }
    args.options.check_simulation(&trusted)?;
    let (policy, policy_source) = match (&known, &current_manifest) {
        (Some(known), Some(current)) => (net::coordinator_policy(current), known.path.clone()),
        _ => (
            net::coordinator_policy(&new_manifest),
            manifest_path.clone(),
        ),
    };
    eprintln!(
        "attesting the coordinator at {} against the coordinator policy of {}",
        args.options.coordinator,
        policy_source.display()
    );
    let mut client = args.options.connect_with_policy(&policy).await?;

    let trust = workspace.load_trust_state()?;
    let current = match net::call(
        &mut client,
        GetManifests {
            consistency_from: None,
            inclusion_of: Vec::new(),
        },
    )
    .await?
    {
        GetManifestsReply::Manifests(Manifests {
            latest_transition,
            history_public_key,
            ..
        }) => Some((latest_transition, history_public_key)),
        GetManifestsReply::Error(reply) if reply.code == ErrorCode::NoManifest => None,
        GetManifestsReply::Error(reply) => return Err(net::refusal(&reply, false)),
    };
    let latest = current.map(|(latest, _)| latest);
    let update = latest.is_some();

    let mut signatures = Vec::new();
    if let Some((latest, deployment)) = current {
        // The deployment is the one this workspace verified, if it did:
        // an owner never signs for another deployment by mistake.
        if let Some(trust) = &trust
            && trust.history_public_key != deployment
        {
            return Err(Failure::Refused(format!(
                "the coordinator at {} serves deployment {} (its history key), but this workspace verified deployment {}: refusing to sign an update for another deployment",
                args.options.coordinator,
                hex::encode(&deployment),
                hex::encode(&trust.history_public_key)
            )));
        }
        let intent = UpdateIntent {
            deployment,
            next_transition: next_transition_of(&manifest, Some(latest)),
            reshare: args.reshare,
        };
        if let Some(path) = &args.workload_owner_key {
            let key = load_private_key(path)?;
            signatures.push(
                sign_intent(&key, &intent)
                    .map_err(|e| Failure::Refused(format!("{}: {e:#}", path.display())))?,
            );
        }
        for path in &args.signature {
            let (signature, signed) = SignatureFile::load(path)?
                .decode()
                .with_context(|| path.display().to_string())?;
            if signed != intent {
                return Err(Failure::Refused(format!(
                    "{} authorizes transition {} of deployment {} (re-share: {}), but this update is transition {} of deployment {} (re-share: {}) \
                     (the manifest, the coordinator's latest transition {}, the deployment or --reshare changed): \
                     run `accord sign --prepare` again",
                    path.display(),
                    signed.next_transition,
                    hex::encode(&signed.deployment),
                    signed.reshare,
                    intent.next_transition,
                    hex::encode(&intent.deployment),
                    intent.reshare,
                    hex::encode(&latest)
                )));
            }
            signatures.push(signature);
        }
        if signatures.is_empty() {
            eprintln!(
                "note: this is an update and no --workload-owner-key or --signature was given"
            );
        }
    }
    // --atomic: the update must build on what this workspace last saw
    // (verified or set), else on what the coordinator just said.
    let expected_previous_transition = args.atomic.then(|| {
        known
            .as_ref()
            .map(|k| k.transition)
            .or(latest)
            .unwrap_or([0; 32])
    });

    let response = net::call(
        &mut client,
        SetManifest {
            manifest: manifest.clone(),
            policies,
            expected_previous_transition,
            signatures,
            reshare: args.reshare,
        },
    )
    .await?;
    let (transition, generation, root_ca, mesh_ca, document) = match response {
        SetManifestReply::ManifestSet(ManifestSet {
            transition,
            generation,
            root_ca,
            mesh_ca,
            seed_share_document,
        }) => (
            transition,
            generation,
            root_ca,
            mesh_ca,
            seed_share_document,
        ),
        SetManifestReply::Error(reply) => return Err(net::refusal(&reply, update)),
    };
    let outcome = save(
        &workspace,
        !update,
        &manifest,
        generation,
        &transition,
        (&root_ca, &mesh_ca),
        document.as_ref(),
    )
    .map_err(Failure::Usage)?;
    // What was set is verified as `accord verify` would (signed head,
    // chain, seed-share record, consistency with this workspace's trust
    // state), and the trust state moves forward: `accord recover` and
    // `accord sign --prepare` rely on it.
    let reply = net::call(&mut client, manifests_request(trust.as_ref())).await?;
    let reply = manifests_from_reply(reply).map_err(Failure::Usage)?;
    let verified = check_history(&manifest, &reply, trust.as_ref()).map_err(|e| {
        Failure::Refused(format!(
            "the manifest was set, but the history the coordinator serves now does not verify: {e}"
        ))
    })?;
    write_verify_dir(&workspace.verify_dir(), &reply, &verified).map_err(Failure::Usage)?;
    Ok(outcome)
}

fn save(
    workspace: &Workspace,
    first: bool,
    manifest: &[u8],
    generation: u64,
    transition: &[u8; 32],
    (root_ca, mesh_ca): (&[u8], &[u8]),
    document: Option<&accord_core::seedshare::SeedShareDocument>,
) -> anyhow::Result<SetOutcome> {
    let dir = workspace.dir();
    let seed_shares = match document {
        Some(document) => {
            let path = workspace.seed_shares();
            seed_share_document_save(&path, document)?;
            Some(path)
        }
        None => None,
    };
    let root_path = dir.join(ROOT_CA_FILE);
    let mesh_path = dir.join(MESH_CA_FILE);
    write_atomic(&root_path, pem("CERTIFICATE", root_ca).as_bytes())?;
    write_atomic(&mesh_path, pem("CERTIFICATE", mesh_ca).as_bytes())?;
    let manifest_sha256 = hex::encode(&accord_core::crypto::default_provider().sha256(&[manifest]));
    write_atomic(&dir.join(LAST_SET_MANIFEST), manifest)?;
    let last = LastSet {
        generation,
        transition: hex::encode(transition),
        manifest_sha256: manifest_sha256.clone(),
    };
    let mut json = serde_json::to_string_pretty(&last)?;
    json.push('\n');
    write_atomic(&dir.join(LAST_SET_FILE), json.as_bytes())?;
    Ok(SetOutcome {
        generation,
        transition: hex::encode(transition),
        manifest_sha256,
        first,
        seed_shares,
        root_ca: root_path,
        mesh_ca: mesh_path,
    })
}
