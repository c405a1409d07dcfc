//! `accord recover`: one seed-share owner's part of user recovery.
//!
//! ```text
//! accord recover -c HOST:PORT --seedshare-key F [--seed-shares seed-shares.json]
//!                [--force] [-m manifest.json] [--workspace DIR] [--json] [--timeout SECS]
//! ```
//!
//! A coordinator that restarts without a ready peer to recover from comes
//! up in Recovery: it holds the history but not the seed. The seed was
//! split k-of-n among the manifest's seed-share owners on the first set,
//! and `accord set` wrote the seed-share document (`seed-shares.json`:
//! the salt, the Feldman commitments and one share per owner, each
//! HPKE-sealed to its owner's X25519 key). Each owner runs `accord
//! recover` once with their own key; when k distinct owners have done so,
//! the coordinator rebuilds the seed, checks it against the signed
//! history, and serves again (same root CA, new mesh CA).
//!
//! 1. Loads the X25519 key (`accord keys new --seedshare-owner`) and the
//!    document, finds the share sealed to this key's public key and opens
//!    it locally ([`open_own_share`]: HPKE decryption, then the Feldman
//!    check against the document's commitments), so a wrong key or a
//!    damaged document is reported before anything is sent.
//! 2. Attests the coordinator against the coordinator policy of the
//!    manifest (`-m`, default `manifest.json` in the workspace), as
//!    `accord verify` does.
//! 3. Sends `Recover { share, force }` and prints the progress:
//!    `share accepted (have/need)` or `recovered: generation N` (a JSON
//!    object with `--json`: `status`, `have`, `need`, `generation`).
//!
//! Exit status as in [`crate::net`].

use std::path::PathBuf;
use std::process::ExitCode;

use accord_core::crypto::default_provider;
use accord_core::hex;
use accord_core::protocol::{ErrorCode, UserRequest, UserResponse};
use accord_core::seedshare::{self, SeedShareDocument, SeedShareError, Share};
use clap::Args;
use serde::Serialize;

use crate::keys::{PrivateKey, X25519Secret, load_private_key};
use crate::net::{self, CoordinatorOptions, Failure};
use crate::set_payload::seed_share_document_load;

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
)]
pub struct RecoverArgs {
    /// `-c`, `-m`, `--workspace`, `--json`, `--timeout`.
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
--seedshare-key and that document. The share is decrypted and checked \
against the document's commitments locally, then sent to the attested \
coordinator, which answers `share accepted (have/need)` until k different \
owners have sent theirs, then `recovered: generation N`. Sending the same \
share twice does not count twice. The recovered coordinator keeps its root \
CA and history and gets a new mesh CA; run `accord verify` afterwards.";

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
            "the coordinator sees ready peers and will recover from them; retry with --force only if you know no peer is ready (user recovery rotates the mesh CA, splitting workloads certified by a peer's mesh CA from the recovered ones)",
        ),
        ErrorCode::AlreadyRecovered => {
            Some("the coordinator is already Ready: nothing to do; run `accord verify`")
        }
        ErrorCode::InvalidArgument => Some(
            "the coordinator refused this share: check that seed-shares.json belongs to the deployment this coordinator runs",
        ),
        _ => None,
    }
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
    let document_path = match &args.seed_shares {
        Some(path) => path.clone(),
        None => args.options.workspace().seed_shares(),
    };
    let document = seed_share_document_load(&document_path)?;
    let (position, share) = open_own_share(&document, &key).map_err(|failure| match failure {
        Failure::Refused(why) => Failure::Refused(format!("{}: {why}", document_path.display())),
        usage => usage,
    })?;
    let need = document.commitments.threshold;
    eprintln!(
        "opened share {} of {} (threshold {need}) for owner {} from {}",
        share.index,
        document.shares.len(),
        position + 1,
        document_path.display()
    );
    eprintln!("attesting the coordinator at {}", args.options.coordinator);
    let (_, _, mut client) = args.options.connect_attested().await?;
    let response = net::call(
        &mut client,
        UserRequest::Recover {
            share: share.to_bytes().to_vec(),
            force: args.force,
        },
    )
    .await?;
    match response {
        UserResponse::Recovery {
            recovered: Some(generation),
            ..
        } => Ok(RecoverOutcome {
            status: RecoverStatus::Recovered,
            have: u32::from(need),
            need,
            generation: Some(generation),
        }),
        UserResponse::Recovery {
            have,
            need,
            recovered: None,
        } => Ok(RecoverOutcome {
            status: RecoverStatus::ShareAccepted,
            have,
            need,
            generation: None,
        }),
        UserResponse::Error(reply) => Err(net::refusal_with_advice(
            &reply,
            recover_advice(reply.code).or_else(|| net::advice(reply.code, false)),
        )),
        other => Err(Failure::Usage(anyhow::anyhow!(
            "the coordinator answered Recover with {}",
            net::reply_name(&other)
        ))),
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
