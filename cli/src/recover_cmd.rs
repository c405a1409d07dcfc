//! `accord recover`: one seed-share owner's part of user recovery.
//!
//! ```text
//! accord recover -c HOST:PORT --seedshare-key F [--seed-shares seed-shares.json]
//!                [--force] [--no-trust-state] [-m manifest.json] [--workspace DIR]
//!                [--json] [--timeout SECS] [--insecure-simulation]
//! ```
//!
//! A coordinator that restarts without a ready peer to recover from comes
//! up in Recovery: it holds the history but not the seed. The seed was
//! split k-of-n among the manifest's seed-share owners, and every owner
//! holds the seed-share document (`seed-shares.json`: the salt, the
//! Feldman commitments and one share per owner, each HPKE-sealed to its
//! owner's X25519 key). When k distinct owners have run `accord recover`,
//! the coordinator rebuilds the seed, checks it against the signed
//! history, and serves again (same root CA, new mesh CA).
//!
//! The host controls what the replica read from the store, so the owner
//! checks it before giving anything away:
//!
//! 1. Loads the X25519 key (`accord keys new --seedshare-owner`) and the
//!    workspace's trust state (`verify/last-tree-head.json`, written by
//!    `accord verify` and `accord set`); without one it refuses unless
//!    `--no-trust-state`.
//! 2. Attests the coordinator against the coordinator policy of the
//!    manifest (`-m`, default `manifest.json` in the workspace). A
//!    manifest that trusts the INSECURE simulated SEV-SNP root
//!    (`InsecureTrustedRoot`) is refused before connecting (exit 1, naming
//!    the file and the entry's JSON path) unless `--insecure-simulation`,
//!    which accepts it with a warning on stderr ([`crate::net`]).
//! 3. Asks `GetRecoveryState` what the replica would recover to and checks
//!    ([`check_target`]): the stored tree head must be signed by the
//!    deployment's history key of the trust state (else FORGED) and
//!    extend the verified head (else ROLLBACK or FORK); its seed-share
//!    record must be the one in the owner's seed-share document
//!    (`--seed-shares`, else `seed-shares.json` or, after a re-share,
//!    `verify/seed-shares.json`); the replica's manifest must name this
//!    key as a seed-share owner with the document's threshold.
//! 4. Opens its own share from that document locally ([`open_own_share`]:
//!    HPKE decryption, then the Feldman check), so a wrong key or a damaged
//!    document is reported before anything is sent.
//! 5. Seals the share in HPKE Auth mode from the owner's key to the
//!    session's recovery key, bound to this attested session, the checked
//!    transition and seed-share record, and `--force`
//!    (`seedshare::submission`), sends `Recover` and prints the progress:
//!    `share accepted (have/need)` or `recovered: generation N` (a JSON
//!    object with `--json`: `status`, `have`, `need`, `generation`).
//!
//! Exit status as in [`crate::net`].

use std::path::PathBuf;
use std::process::ExitCode;

use accord_core::coordinator::store::SeedShareRecord;
use accord_core::crypto::default_provider;
use accord_core::hex;
use accord_core::history::objects::{ObjectHash, Transition};
use accord_core::history::tree_head::{SignedTreeHead, TreeHead, check_newer};
use accord_core::manifest::{Manifest, SeedshareKey};
use accord_core::protocol::{
    ErrorCode, GetRecoveryState, GetRecoveryStateReply, RECOVERY_EXPORTER_LABEL, Recover,
    RecoverReply, RecoveryState, ReplicaState, ShareAccepted,
};
use accord_core::seedshare::submission::{SubmissionBinding, seal_submission};
use accord_core::seedshare::{self, SeedShareDocument, SeedShareError, Share};
use accord_guest::coordinator::OsRandom;
use clap::Args;
use serde::Serialize;

use crate::keys::{PrivateKey, X25519Secret, load_private_key};
use crate::net::{self, CoordinatorOptions, Failure};
use crate::set_payload::seed_share_document_load;
use crate::workspace::TrustState;

/// Arguments of `accord recover`: the shared coordinator connection
/// options (listed after the recovery options) and the recovery options.
#[derive(Clone, Debug, Args)]
#[command(
    mut_arg("manifest", |a| a.display_order(100)),
    mut_arg("workspace", |a| a.display_order(101).help(
        "The workspace directory (where manifest.json and seed-shares.json are looked for)"
    )),
    mut_arg("json", |a| a.display_order(102)),
    mut_arg("timeout", |a| a.display_order(103)),
    mut_arg("insecure_simulation", |a| a.display_order(104)),
)]
pub struct RecoverArgs {
    /// `-c`, `-m`, `--workspace`, `--json`, `--timeout`,
    /// `--insecure-simulation`.
    #[command(flatten)]
    pub options: CoordinatorOptions,

    /// This seed-share owner's X25519 key (PEM PKCS#8, from `accord keys
    /// new --seedshare-owner`).
    #[arg(long, value_name = "FILE")]
    pub seedshare_key: PathBuf,

    /// The seed-share document `accord set` wrote on the first set.
    /// Default: seed-shares.json in the workspace.
    #[arg(long, value_name = "FILE")]
    pub seed_shares: Option<PathBuf>,

    /// Recover even though the coordinator sees ready peers. Only if you
    /// know no peer is ready: user recovery rotates the mesh CA, and
    /// workloads certified by a ready peer's mesh CA would be split from
    /// the recovered ones.
    #[arg(long)]
    pub force: bool,

    /// Recover without a trust state (verify/last-tree-head.json from an
    /// earlier `accord verify` or `accord set` in this workspace). The
    /// replica's history is then not checked against a history you
    /// verified: a host that rolled the store back to an older generation
    /// is not detected (the seed-share record is still checked against
    /// your seed-shares.json).
    #[arg(long)]
    pub no_trust_state: bool,
}

/// The long help of `accord recover`.
pub const LONG_ABOUT: &str = "\
Recover a restarted coordinator with this owner's seed share.

A coordinator that restarts with no ready peer comes up in recovery: it \
keeps its history but has lost the seed its keys derive from. The first \
`accord set` split that seed k-of-n among the manifest's seed-share owners \
(SeedshareOwnerPubKeys, SeedshareThreshold) and wrote seed-shares.json, \
which holds every owner's share sealed to their key.

Each seed-share owner runs `accord recover` once, with their own \
--seedshare-key and that document. First the attested coordinator says \
what it would recover to; `accord recover` refuses unless that history is \
signed by the deployment's history key and extends the one this workspace \
verified (`accord verify` or `accord set` wrote verify/last-tree-head.json), \
and its seed-share record is the one of your document. Then the share is \
decrypted and checked locally, sealed from your key to this session and \
bound to the checked history, and sent. The coordinator answers `share \
accepted (have/need)` until k different owners have sent theirs, then \
`recovered: generation N`. Sending the same share twice does not count \
twice. The recovered coordinator keeps its root CA and history and gets a \
new mesh CA; run `accord verify` afterwards.

After a re-share (`accord set --reshare`), `accord verify` writes the new \
sealed shares to verify/seed-shares.json, which this command also looks \
at. Shares of an older sharing still rebuild the seed offline, but the \
coordinator refuses them.

A manifest whose reference values trust the INSECURE simulated SEV-SNP \
root (InsecureTrustedRoot) is refused before anything is sent: evidence \
verified against it proves nothing about hardware. --insecure-simulation \
accepts it, for testing only, with a warning.";

/// What the coordinator made of the share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoverStatus {
    /// Taken; more owners must send theirs.
    ShareAccepted,
    /// The threshold was reached: the coordinator is Ready again.
    Recovered,
}

/// The outcome of `accord recover` (its `--json` object).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecoverOutcome {
    /// `share_accepted` or `recovered`.
    pub status: RecoverStatus,
    /// Distinct owners' shares the coordinator holds (once recovered: the
    /// threshold, which was reached).
    pub have: u32,
    /// The threshold.
    pub need: u8,
    /// The recovered generation (`None` until recovered).
    pub generation: Option<u64>,
}

/// Runs `accord recover`.
pub fn run(args: &RecoverArgs) -> ExitCode {
    let outcome = net::runtime()
        .map_err(Failure::from)
        .and_then(|rt| rt.block_on(recover(args)));
    net::finish(outcome.map(|outcome| print(&outcome, args.options.json)))
}

fn print(outcome: &RecoverOutcome, json: bool) {
    print!("{}", render(outcome, json));
}

/// What `accord recover` prints: the JSON object, or the progress line
/// (`share accepted (have/need)` / `recovered: generation N`) and what
/// comes next.
pub fn render(outcome: &RecoverOutcome, json: bool) -> String {
    if json {
        let mut text = serde_json::to_string_pretty(outcome).unwrap_or_default();
        text.push('\n');
        return text;
    }
    match outcome.generation {
        Some(generation) => format!(
            "recovered: generation {generation}\n\
             the coordinator serves again with its root CA and a new mesh CA: run `accord verify`\n"
        ),
        None => {
            let missing = u32::from(outcome.need).saturating_sub(outcome.have);
            format!(
                "share accepted ({}/{})\n\
                 {missing} more seed-share owner(s) must run `accord recover` with their own key\n",
                outcome.have, outcome.need
            )
        }
    }
}

/// This key's share from `document`, opened and checked: its 0-based
/// owner position and the share. Errors say whether the key is not an
/// owner (naming its public key and the document's owners) or the
/// sealed share does not open or check out (a damaged document).
pub fn open_own_share(
    document: &SeedShareDocument,
    key: &X25519Secret,
) -> Result<(usize, Share), Failure> {
    let public = key.public_key();
    let position = document
        .shares
        .iter()
        .position(|sealed| sealed.owner.0 == public)
        .ok_or_else(|| {
            let owners: Vec<String> = document
                .shares
                .iter()
                .map(|s| hex::encode(&s.owner.0))
                .collect();
            Failure::Refused(format!(
                "this key (X25519 public key {}) is not a seed-share owner in the document: \
                 it names {} owner(s): {}; use the --seedshare-key whose public key is listed \
                 (`accord keys public`), or the seed-shares.json of this deployment",
                hex::encode(&public),
                owners.len(),
                owners.join(", ")
            ))
        })?;
    let sealed = document
        .shares
        .get(position)
        .ok_or_else(|| Failure::Usage(anyhow::anyhow!("seed-share owner out of range")))?;
    let expected_index = u8::try_from(position + 1).ok();
    if expected_index != Some(sealed.index) {
        return Err(Failure::Refused(format!(
            "the document is damaged: owner {} (position {position}) holds share index {}, \
             expected {}; get an intact copy of seed-shares.json",
            position + 1,
            sealed.index,
            position + 1
        )));
    }
    let share = seedshare::open(
        sealed,
        &document.commitments,
        key.as_bytes(),
        default_provider(),
    )
    .map_err(|e| {
        let why = match e {
            SeedShareError::Open => format!(
                "the share sealed to this key (owner {}, share {}) does not decrypt: \
                     wrong key, or the document is damaged (its ciphertext, encapsulated key, \
                     index or commitments were changed)",
                position + 1,
                sealed.index
            ),
            SeedShareError::BadShare { index } => format!(
                "share {index} decrypts but does not match the document's commitments: \
                     the document is damaged"
            ),
            other => format!(
                "the share of owner {} cannot be used: {other}; the document is damaged",
                position + 1
            ),
        };
        Failure::Refused(format!(
            "{why}; nothing was sent to the coordinator (get an intact seed-shares.json)"
        ))
    })?;
    // `open` already ran the Feldman check; checked again here so this
    // command never relies on that detail of the API.
    seedshare::verify_share(&document.commitments, &share).map_err(|e| {
        Failure::Refused(format!(
            "share {} does not match the document's commitments ({e}): the document is damaged",
            share.index
        ))
    })?;
    Ok((position, share))
}

/// Advice for a refusal of `Recover`, before the general advice.
fn recover_advice(code: ErrorCode) -> Option<&'static str> {
    match code {
        ErrorCode::PermissionDenied => Some(
            "the coordinator sees ready peers and will recover from them, or refused this key or the stored sharing; retry with --force only if you know no peer is ready (user recovery rotates the mesh CA, splitting workloads certified by a peer's mesh CA from the recovered ones)",
        ),
        ErrorCode::AlreadyRecovered => {
            Some("the coordinator is already Ready: nothing to do; run `accord verify`")
        }
        ErrorCode::InvalidArgument => Some(
            "the coordinator refused this share: check that seed-shares.json belongs to the deployment this coordinator runs",
        ),
        ErrorCode::ManifestConflict => {
            Some("the replica's history changed since it was checked: run `accord recover` again")
        }
        _ => None,
    }
}

/// A seed-share document and where it came from.
pub struct Candidate {
    /// The file.
    pub path: PathBuf,
    /// Its content.
    pub document: SeedShareDocument,
}

/// What the owner checked and agreed to recover to.
#[derive(Debug)]
pub struct CheckedTarget {
    /// The latest transition.
    pub latest_transition: [u8; 32],
    /// The seed-share record's address.
    pub seedshares: [u8; 32],
    /// The generation.
    pub generation: u64,
    /// Which candidate document matches the record.
    pub document: usize,
}

/// Checks what the replica would recover to (see the [module docs](self)):
/// the record the stored head names, the latest transition and its
/// manifest, the history key and consistency against `trust`, and which
/// of `candidates` holds that very record. Every refusal names what did
/// not match.
pub fn check_target(
    reply: &RecoveryState,
    trust: Option<&TrustState>,
    candidates: &[Candidate],
) -> Result<CheckedTarget, String> {
    let provider = default_provider();
    let signed = SignedTreeHead::decode(&reply.signed_tree_head)
        .map_err(|e| format!("the replica's signed tree head is malformed: {e}"))?;
    let head = signed.head;
    let record_address = provider.sha256(&[&reply.seedshare_record]);
    if record_address != head.seedshares {
        return Err(format!(
            "the replica's seed-share record has SHA-256 {}, but its tree head names {}",
            hex::encode(&record_address),
            hex::encode(&head.seedshares)
        ));
    }
    let transition = Transition {
        manifest: ObjectHash(reply.transition_manifest),
        previous: reply.transition_previous.map(ObjectHash),
    };
    if transition.hash(provider).0 != reply.latest_transition
        || provider.sha256(&[&reply.manifest]) != reply.transition_manifest
    {
        return Err(
            "the replica's latest transition does not commit to the manifest it sent".into(),
        );
    }
    if let Some(trust) = trust {
        let key = ed25519_dalek::VerifyingKey::from_bytes(&trust.history_public_key)
            .map_err(|_| "the trust state's history key is not a valid Ed25519 key".to_string())?;
        signed.verify(&key).map_err(|_| {
            format!(
                "FORGED: the history this replica would recover to (generation {}, transition {}) is not signed by this deployment's history key {}: the store was tampered with; do not send your share",
                head.generation,
                hex::encode(&reply.latest_transition),
                hex::encode(&trust.history_public_key)
            )
        })?;
        let seen = TreeHead {
            size: trust.size,
            root: trust.root,
            generation: trust.generation,
            seedshares: trust.seedshares,
        };
        if head.size < seen.size || head.generation < seen.generation {
            return Err(format!(
                "ROLLBACK: the replica would recover to generation {} (size {}), older than generation {} (size {}) this workspace verified: the host restarted it on an old store; do not send your share",
                head.generation, head.size, seen.generation, seen.size
            ));
        }
        let proof = reply.consistency_proof.as_deref().unwrap_or_default();
        let consistent = if head.size == seen.size {
            head.root == seen.root && reply.latest_transition == trust.latest_transition
        } else {
            check_newer(provider, &seen, &head, proof).is_ok()
        };
        if !consistent {
            return Err(format!(
                "FORK: the replica's history (size {}) does not extend the size-{} history this workspace verified; do not send your share",
                head.size, seen.size
            ));
        }
    }
    let document = candidates
        .iter()
        .position(|c| {
            SeedShareRecord::from_document(&c.document)
                .address(provider)
                .0
                == head.seedshares
        })
        .ok_or_else(|| {
            let tried: Vec<String> = candidates
                .iter()
                .map(|c| {
                    format!(
                        "{} (record {})",
                        c.path.display(),
                        SeedShareRecord::from_document(&c.document).address(provider)
                    )
                })
                .collect();
            format!(
                "the replica would recover with seed-share record {}, which is none of {}: either the deployment was re-shared (run `accord verify` against a ready replica to fetch the new shares, or pass --seed-shares) or the store was tampered with; do not send your share",
                hex::encode(&head.seedshares),
                if tried.is_empty() {
                    "your seed-share documents (none found)".to_string()
                } else {
                    tried.join(", ")
                }
            )
        })?;
    let manifest = Manifest::from_json(&reply.manifest)
        .map_err(|e| format!("the replica's manifest does not parse: {e}"))?;
    let doc = manifest.doc();
    let owners: Vec<[u8; 32]> = doc.seedshare_keys().iter().map(|k| k.0).collect();
    let document_owners: Vec<[u8; 32]> = candidates
        .get(document)
        .map(|c| c.document.shares.iter().map(|s| s.owner.0).collect())
        .unwrap_or_default();
    if owners != document_owners {
        return Err(format!(
            "the replica's manifest names {} seed-share owner(s) that are not those of the matching document ({})",
            owners.len(),
            document_owners.len()
        ));
    }
    Ok(CheckedTarget {
        latest_transition: reply.latest_transition,
        seedshares: head.seedshares,
        generation: head.generation,
        document,
    })
}

/// The seed-share documents to look in: `--seed-shares`, else the
/// workspace's `seed-shares.json` and `verify/seed-shares.json` (those
/// that exist).
fn candidates(args: &RecoverArgs) -> Result<Vec<Candidate>, Failure> {
    let workspace = args.options.workspace();
    let paths = match &args.seed_shares {
        Some(path) => vec![path.clone()],
        None => vec![
            workspace.seed_shares(),
            workspace
                .verify_dir()
                .join(crate::workspace::SEED_SHARES_FILE),
        ],
    };
    let mut out = Vec::new();
    for path in paths {
        if args.seed_shares.is_none() && !path.is_file() {
            continue;
        }
        let document = seed_share_document_load(&path)?;
        out.push(Candidate { path, document });
    }
    if out.is_empty() {
        return Err(Failure::Usage(anyhow::anyhow!(
            "no seed-share document: neither {} nor {} exists; pass --seed-shares FILE",
            workspace.seed_shares().display(),
            workspace
                .verify_dir()
                .join(crate::workspace::SEED_SHARES_FILE)
                .display()
        )));
    }
    Ok(out)
}

/// [`open_own_share`] on `candidate`, a refusal naming its file.
fn open_candidate(candidate: &Candidate, key: &X25519Secret) -> Result<(usize, Share), Failure> {
    open_own_share(&candidate.document, key).map_err(|failure| match failure {
        Failure::Refused(why) => Failure::Refused(format!("{}: {why}", candidate.path.display())),
        usage => usage,
    })
}

/// Sends this owner's share (see the [module docs](self)).
pub async fn recover(args: &RecoverArgs) -> Result<RecoverOutcome, Failure> {
    let key = match load_private_key(&args.seedshare_key)? {
        PrivateKey::X25519(secret) => secret,
        other => {
            return Err(Failure::Usage(anyhow::anyhow!(
                "{} is a {} key (a workload owner's); --seedshare-key needs a seed-share owner key (X25519, `accord keys new --seedshare-owner`)",
                args.seedshare_key.display(),
                other.kind()
            )));
        }
    };
    // The manifest the coordinator is attested against, checked for the
    // simulated root before anything else is read or sent.
    let (_, manifest) = args.options.checked_manifest()?;
    let workspace = args.options.workspace();
    let trust = workspace.load_trust_state()?;
    if trust.is_none() && !args.no_trust_state {
        return Err(Failure::Refused(format!(
            "no trust state ({}): without the history you verified, a replica rolled back to an older generation cannot be told apart; run `accord recover` in the workspace where `accord verify` or `accord set` ran, or pass --no-trust-state to recover anyway",
            workspace.trust_state().display()
        )));
    }
    let candidates = candidates(args)?;
    // An explicit document is opened before anything is asked: a wrong key
    // or a damaged document is reported with nothing sent.
    let opened_early = match candidates.first() {
        Some(candidate) if args.seed_shares.is_some() => Some(open_candidate(candidate, &key)?),
        _ => None,
    };
    eprintln!("attesting the coordinator at {}", args.options.coordinator);
    let mut client = args.options.connect_to(&manifest).await?;
    let response = net::call(
        &mut client,
        GetRecoveryState {
            consistency_from: trust.as_ref().map(|t| t.size),
        },
    )
    .await?;
    let reply = match response {
        GetRecoveryStateReply::RecoveryState(state) => state,
        GetRecoveryStateReply::Error(reply) => {
            return Err(net::refusal_with_advice(
                &reply,
                recover_advice(reply.code).or_else(|| net::advice(reply.code, false)),
            ));
        }
    };
    if reply.state == ReplicaState::Ready {
        return Err(Failure::Refused(
            "the coordinator is already Ready (already_recovered): nothing to do; run `accord verify`".into(),
        ));
    }
    let checked = check_target(&reply, trust.as_ref(), &candidates).map_err(Failure::Refused)?;
    let candidate = candidates
        .get(checked.document)
        .ok_or_else(|| Failure::Usage(anyhow::anyhow!("internal: no matching document")))?;
    // With --seed-shares there is one candidate, opened above.
    let (position, share) = match opened_early {
        Some(opened) => opened,
        None => open_candidate(candidate, &key)?,
    };
    eprintln!(
        "checked: the replica would recover to generation {} (transition {}){}; its seed-share record {} is the one of {}",
        checked.generation,
        hex::encode(&checked.latest_transition),
        if trust.is_some() {
            ", signed by this deployment's history key and extending the history this workspace verified"
        } else {
            " (NOT checked against a trust state: --no-trust-state)"
        },
        hex::encode(&checked.seedshares),
        candidate.path.display()
    );
    let need = candidate.document.commitments.threshold;
    eprintln!(
        "opened share {} of {} (threshold {need}) for owner {}; {} of {} held by the replica so far",
        share.index,
        candidate.document.shares.len(),
        position + 1,
        reply.have,
        reply.need
    );
    let binding = SubmissionBinding {
        session: client
            .exporter(RECOVERY_EXPORTER_LABEL)
            .map_err(Failure::Usage)?,
        latest_transition: checked.latest_transition,
        seedshares: checked.seedshares,
        force: args.force,
    };
    let sealed = seal_submission(
        &share,
        key.as_bytes(),
        &SeedshareKey(reply.recovery_key),
        &binding,
        &OsRandom,
    )
    .map_err(|e| Failure::Usage(anyhow::anyhow!("sealing the share: {e}")))?;
    let response = net::call(
        &mut client,
        Recover {
            owner: sealed.owner.0,
            encapsulated_key: sealed.encapsulated_key,
            ciphertext: sealed.ciphertext,
            latest_transition: checked.latest_transition,
            seedshares: checked.seedshares,
            force: args.force,
        },
    )
    .await?;
    match response {
        RecoverReply::Recovery(ShareAccepted {
            recovered: Some(generation),
            ..
        }) => Ok(RecoverOutcome {
            status: RecoverStatus::Recovered,
            have: u32::from(need),
            need,
            generation: Some(generation),
        }),
        RecoverReply::Recovery(ShareAccepted {
            have,
            need,
            recovered: None,
        }) => Ok(RecoverOutcome {
            status: RecoverStatus::ShareAccepted,
            have,
            need,
            generation: None,
        }),
        RecoverReply::Error(reply) => Err(net::refusal_with_advice(
            &reply,
            recover_advice(reply.code).or_else(|| net::advice(reply.code, false)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use accord_core::protocol::ErrorReply;

    use super::*;

    fn refusal(code: ErrorCode, message: &str) -> String {
        let reply = ErrorReply {
            code,
            message: message.into(),
        };
        net::refusal_with_advice(
            &reply,
            recover_advice(code).or_else(|| net::advice(code, false)),
        )
        .to_string()
    }

    #[test]
    fn refusals_of_a_share_say_what_to_do() {
        let peers = refusal(
            ErrorCode::PermissionDenied,
            "rejecting user recovery because 2 ready peers are available",
        );
        assert!(peers.contains("permission_denied"), "{peers}");
        assert!(peers.contains("2 ready peers"), "{peers}");
        assert!(
            peers.contains("retry with --force only if you know no peer is ready"),
            "{peers}"
        );
        assert!(peers.contains("rotates the mesh CA"), "{peers}");
        assert!(
            !peers.contains("--workload-owner-key"),
            "not the update advice: {peers}"
        );
        let done = refusal(
            ErrorCode::AlreadyRecovered,
            "coordinator is already recovered",
        );
        assert!(done.contains("already_recovered"), "{done}");
        assert!(done.contains("nothing to do"), "{done}");
        let none = refusal(ErrorCode::NoManifest, "no state to recover from");
        assert!(none.contains("run `accord set` first"), "{none}");
        let bad = refusal(ErrorCode::InvalidArgument, "share 2 does not match");
        assert!(bad.contains("seed-shares.json belongs to"), "{bad}");
    }

    #[test]
    fn progress_lines() {
        let accepted = RecoverOutcome {
            status: RecoverStatus::ShareAccepted,
            have: 1,
            need: 3,
            generation: None,
        };
        assert_eq!(
            render(&accepted, false),
            "share accepted (1/3)\n2 more seed-share owner(s) must run `accord recover` with their own key\n"
        );
        let recovered = RecoverOutcome {
            status: RecoverStatus::Recovered,
            have: 3,
            need: 3,
            generation: Some(4),
        };
        assert!(render(&recovered, false).starts_with("recovered: generation 4\n"));
        let json: serde_json::Value = serde_json::from_str(&render(&recovered, true)).unwrap();
        assert_eq!(json["status"], "recovered");
        assert_eq!(json["generation"], 4);
    }

    #[test]
    fn the_json_object_has_the_documented_fields() {
        let accepted = RecoverOutcome {
            status: RecoverStatus::ShareAccepted,
            have: 1,
            need: 3,
            generation: None,
        };
        assert_eq!(
            serde_json::to_value(&accepted).unwrap(),
            serde_json::json!({"status": "share_accepted", "have": 1, "need": 3, "generation": null})
        );
    }
}
