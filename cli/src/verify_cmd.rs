//! `accord verify` and `accord get-manifests`.
//!
//! ```text
//! accord verify -c HOST:PORT [-m manifest.json] [--workspace DIR] [--json]
//!               [--timeout SECS] [--insecure-simulation]
//! accord get-manifests -c HOST:PORT [-m manifest.json] [--json]
//!                      [--timeout SECS] [--insecure-simulation]
//! ```
//!
//! Both attest the coordinator against the coordinator policy of
//! manifest.json (its reference values and coordinator policy hashes).
//! A manifest.json that trusts the INSECURE simulated SEV-SNP root
//! (`InsecureTrustedRoot`) is refused before connecting (exit 1, naming
//! the file and the entry's JSON path) unless `--insecure-simulation`,
//! which accepts it with a warning on stderr ([`crate::net`]).
//! `verify` then asks `GetManifests` with a consistency proof from the
//! workspace's trust state, checks the history ([`check_history`]: it must
//! end in manifest.json and extend what was verified before), writes
//! `DIR/verify/` ([`write_verify_dir`]) and moves the trust state forward.
//! A rollback or a fork is refused (exit 1). `get-manifests` prints the
//! history (generation, manifest hash, transition) after checking that it
//! is self-consistent, without touching the trust state.
//!
//! Exit status as in [`crate::net`].

use std::path::PathBuf;
use std::process::ExitCode;

use accord_core::hex;
use accord_core::protocol::{GetManifests, GetManifestsReply, Manifests};
use clap::Args;
use serde::Serialize;

use crate::net::{self, CoordinatorOptions, Failure};
use crate::verify_logic::{
    HistoryEntry, Summary, check_history, manifests_from_reply, manifests_request, write_verify_dir,
};

/// Arguments of `accord verify` and `accord get-manifests`: the shared
/// coordinator connection options.
#[derive(Clone, Debug, Args)]
pub struct VerifyArgs {
    /// `-c`, `-m`, `--workspace`, `--json`, `--timeout`,
    /// `--insecure-simulation`.
    #[command(flatten)]
    pub options: CoordinatorOptions,
}

#[derive(Serialize)]
struct EntryJson {
    generation: u64,
    manifest_sha256: String,
    transition: String,
}

fn entries_json(history: &[HistoryEntry]) -> Vec<EntryJson> {
    history
        .iter()
        .enumerate()
        .map(|(i, e)| EntryJson {
            generation: i as u64 + 1,
            manifest_sha256: hex::encode(&e.manifest_sha256),
            transition: hex::encode(&e.transition),
        })
        .collect()
}

/// What `accord verify` accepted.
#[derive(Clone, Debug)]
pub struct VerifyOutcome {
    /// What was verified.
    pub summary: Summary,
    /// Where it was written.
    pub verify_dir: PathBuf,
}

/// Runs `accord verify`.
pub fn run_verify(args: &VerifyArgs) -> ExitCode {
    let outcome = net::runtime()
        .map_err(Failure::from)
        .and_then(|rt| rt.block_on(verify(args)));
    net::finish(outcome.map(|o| print_verified(&o, args.options.json)))
}

/// Runs `accord get-manifests`.
pub fn run_get_manifests(args: &VerifyArgs) -> ExitCode {
    let outcome = net::runtime()
        .map_err(Failure::from)
        .and_then(|rt| rt.block_on(get_manifests(args)));
    net::finish(outcome.map(|history| print_history(&history, args.options.json)))
}

fn print_verified(outcome: &VerifyOutcome, json: bool) {
    let summary = &outcome.summary;
    if json {
        let value = serde_json::json!({
            "verified": true,
            "generation": summary.generation,
            "current_manifest_sha256": summary.history.last().map(|e| hex::encode(&e.manifest_sha256)),
            "policies": summary.policies,
            "previous_size": summary.previous_size,
            "history": entries_json(&summary.history),
            "verify_dir": outcome.verify_dir,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return;
    }
    println!("{summary}");
    println!(
        "wrote {} (manifests, policies, root-ca.pem, mesh-ca.pem, history.json, last-tree-head.json)",
        outcome.verify_dir.display()
    );
}

/// Prints a history, one generation a line.
pub fn print_history(history: &[HistoryEntry], json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&entries_json(history)).unwrap_or_default()
        );
        return;
    }
    for entry in entries_json(history) {
        println!(
            "generation {}  manifest sha256 {}  transition {}",
            entry.generation, entry.manifest_sha256, entry.transition
        );
    }
}

/// Connects, attested against manifest.json's coordinator policy, and
/// asks `request`. Returns manifest.json's bytes and the reply.
async fn fetch(args: &VerifyArgs, request: GetManifests) -> Result<(Vec<u8>, Manifests), Failure> {
    let (bytes, _, mut client) = args.options.connect_attested().await?;
    let response = net::call(&mut client, request).await?;
    if let GetManifestsReply::Error(reply) = &response {
        return Err(net::refusal(reply, false));
    }
    let reply = manifests_from_reply(response)?;
    Ok((bytes, reply))
}

/// Verifies the coordinator's history (see the [module docs](self)).
pub async fn verify(args: &VerifyArgs) -> Result<VerifyOutcome, Failure> {
    let workspace = args.options.workspace();
    let trust = workspace.load_trust_state()?;
    let (expected, reply) = fetch(args, manifests_request(trust.as_ref())).await?;
    let verified = check_history(&expected, &reply, trust.as_ref())
        .map_err(|e| Failure::Refused(format!("verification FAILED: {e}")))?;
    let dir = workspace.verify_dir();
    write_verify_dir(&dir, &reply, &verified)?;
    Ok(VerifyOutcome {
        summary: verified.summary().clone(),
        verify_dir: dir,
    })
}

/// Fetches the history and checks that it is self-consistent (signed,
/// chained, ending in the coordinator's current manifest); the trust
/// state is neither read nor written.
pub async fn get_manifests(args: &VerifyArgs) -> Result<Vec<HistoryEntry>, Failure> {
    let (_, reply) = fetch(
        args,
        GetManifests {
            consistency_from: None,
            inclusion_of: Vec::new(),
        },
    )
    .await?;
    let current = reply
        .manifests
        .last()
        .cloned()
        .ok_or_else(|| Failure::Refused("the coordinator returned no manifests".into()))?;
    let verified = check_history(&current, &reply, None)
        .map_err(|e| Failure::Refused(format!("the history does not check out: {e}")))?;
    Ok(verified.summary().history.clone())
}
