//! User recovery through `accord recover` (the CLI's library entry
//! point), with a coordinator in this process (INSECURE simulated chip):
//! a manifest with three seed-share owners and `SeedshareThreshold` 2 is
//! set, the coordinator restarts on its state directory and comes up in
//! Recovery, and the owners bring it back — with every local refusal
//! (the simulated chip's manifest without `--insecure-simulation`, wrong
//! key, a share moved to another owner, a tampered document) and
//! the coordinator's own answers (a repeated share does not count twice,
//! `already_recovered` once Ready) checked on the way. Afterwards the
//! history verifies from the same workspace (no rollback), the root key
//! is the one before, the mesh CA is new, and workloads get certificates
//! and talk mutual TLS again.

use std::path::{Path, PathBuf};

use crate::support::cli::{
    Running, assert_simulation_refused, cert, certs, issued_by, spki, trust_state,
};
use accord_cli::keys::{KeyRole, PrivateKey, write_private_key};
use accord_cli::net::Failure;
use accord_cli::recover_cmd::{self, RecoverArgs, RecoverOutcome, RecoverStatus};
use accord_cli::set_payload::{seed_share_document_load, seed_share_document_save};
use accord_cli::verify_cmd;
use accord_core::manifest::Manifest;
use accord_core::seedshare::SeedShareDocument;
use accord_demo::demo::Deployment;
use accord_guest::atls::Identity;
use accord_guest::client::MeshClient;

fn three_owners_two_needed(dir: &Path) -> anyhow::Result<Deployment> {
    Deployment::open(dir)?
        .with_seedshare_owners(3, 2)
        .prepared()
}

impl Running {
    fn recover_args(&self, key: &Path, document: Option<&Path>) -> RecoverArgs {
        RecoverArgs {
            options: self.options(&self.dir),
            seedshare_key: key.to_path_buf(),
            seed_shares: document.map(Path::to_path_buf),
            force: false,
            no_trust_state: false,
        }
    }

    async fn recover(
        &self,
        key: &Path,
        document: Option<&Path>,
    ) -> Result<RecoverOutcome, Failure> {
        recover_cmd::recover(&self.recover_args(key, document)).await
    }
}

#[track_caller]
fn refused(result: Result<RecoverOutcome, Failure>) -> String {
    match result {
        Err(Failure::Refused(why)) => why,
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(outcome) => panic!("expected a refusal, got {outcome:?}"),
    }
}

fn accepted(have: u32) -> RecoverOutcome {
    RecoverOutcome {
        status: RecoverStatus::ShareAccepted,
        have,
        need: 2,
        generation: None,
    }
}

/// Writes `document` to `dir/name` and returns the path.
fn save(dir: &Path, name: &str, document: &SeedShareDocument) -> PathBuf {
    let path = dir.join(name);
    seed_share_document_save(&path, document).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_owners_two_needed_recover_a_restarted_coordinator() {
    let mut run = Running::start("recovery", three_owners_two_needed).await;
    let dir = run.dir.clone();
    let scratch = dir.parent().unwrap().to_path_buf();
    let manifest = Manifest::from_json(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest.doc().seedshare_owner_pub_keys.len(), 3);
    assert_eq!(manifest.doc().seedshare_threshold, 2);
    let keys = run.deployment.seedshare_keys();
    assert_eq!(keys.len(), 3);

    // Set, verify, and one workload certified before the restart.
    let set = run.set(None).await;
    let document_path = set.seed_shares.clone().unwrap();
    let document = seed_share_document_load(&document_path).unwrap();
    assert_eq!(document.shares.len(), 3);
    assert_eq!(document.commitments.threshold, 2);
    let root_before = cert(&set.root_ca);
    let mesh_before = cert(&set.mesh_ca);
    let verified = verify_cmd::verify(&run.verify_args(&dir)).await.unwrap();
    assert_eq!(verified.summary.generation, 1);
    let head_before = trust_state(&dir);
    run.deployment.initialize("web", &run.mesh()).await.unwrap();

    // A Ready coordinator has nothing to recover.
    let why = refused(run.recover(&keys[0], None).await);
    assert!(why.contains("already_recovered"), "{why}");
    assert!(why.contains("nothing to do"), "{why}");

    // Restart over the same state: Recovery.
    run.restart().await;
    let why = match verify_cmd::get_manifests(&run.verify_args(&dir)).await {
        Err(Failure::Refused(why)) => why,
        other => panic!("GetManifests in Recovery: {other:?}"),
    };
    assert!(why.contains("needs_recovery"), "{why}");
    assert!(why.contains("run `accord recover`"), "{why}");
    let tee = run.deployment.tee("web").unwrap();
    let pins = run.deployment.pins().unwrap();
    let coordinator = accord_guest::initializer::coordinator_policy(&pins);
    match MeshClient::connect(
        &run.mesh(),
        coordinator,
        tee,
        Identity::ephemeral().unwrap(),
    )
    .await
    {
        Err(e) => {
            let e = format!("{e:#}");
            assert!(e.contains("not ready"), "{e}");
            assert!(e.contains("recovery"), "{e}");
        }
        Ok(_) => panic!("the mesh API served a workload in Recovery"),
    }

    // The manifest trusts the INSECURE simulated chip: without
    // --insecure-simulation the share is not sent.
    let strict = RecoverArgs {
        options: run.options_without_simulation(&dir),
        ..run.recover_args(&keys[0], None)
    };
    assert_simulation_refused(
        recover_cmd::recover(&strict).await,
        &dir.join("manifest.json"),
    );

    // Owner 1: accepted, 1 of 2; again: still 1 of 2.
    assert_eq!(run.recover(&keys[0], None).await.unwrap(), accepted(1));
    assert_eq!(run.recover(&keys[0], None).await.unwrap(), accepted(1));

    // Owner 2's sealed share, placed in owner 3's entry, with owner 3's
    // key: it does not decrypt, and nothing is sent.
    let mut moved = document.clone();
    moved.shares[2].encapsulated_key = document.shares[1].encapsulated_key;
    moved.shares[2].ciphertext = document.shares[1].ciphertext.clone();
    let moved = save(&scratch, "moved.json", &moved);
    let why = refused(run.recover(&keys[2], Some(&moved)).await);
    assert!(why.contains("does not decrypt"), "{why}");
    assert!(why.contains("owner 3"), "{why}");
    assert!(why.contains("nothing was sent"), "{why}");

    // A key that owns no share names itself and the document's owners.
    let stranger = scratch.join("stranger.pem");
    let stranger_key = PrivateKey::generate(KeyRole::SeedshareOwner, false).unwrap();
    write_private_key(&stranger, &stranger_key, false).unwrap();
    let why = refused(run.recover(&stranger, None).await);
    let stranger_public = match &stranger_key {
        PrivateKey::X25519(secret) => accord_core::hex::encode(&secret.public_key()),
        _ => unreachable!(),
    };
    assert!(why.contains("is not a seed-share owner"), "{why}");
    assert!(why.contains(&stranger_public), "{why}");
    assert!(why.contains("names 3 owner(s)"), "{why}");

    // A workload owner's key is not a seed-share key.
    match run.recover(&run.deployment.owner_key(), None).await {
        Err(Failure::Usage(e)) => {
            assert!(format!("{e:#}").contains("--seedshare-key needs a seed-share owner key"))
        }
        other => panic!("{other:?}"),
    }

    // Owner 3's share with flipped ciphertext bytes: refused as damaged.
    let mut tampered = document.clone();
    tampered.shares[2].ciphertext[10] ^= 0x55;
    tampered.shares[2].ciphertext[100] ^= 0x01;
    let tampered = save(&scratch, "tampered.json", &tampered);
    let why = refused(run.recover(&keys[2], Some(&tampered)).await);
    assert!(why.contains("does not decrypt"), "{why}");
    assert!(why.contains("document is damaged"), "{why}");

    // The refusals sent nothing: owner 2 completes the threshold.
    let recovered = run.recover(&keys[1], Some(&document_path)).await.unwrap();
    assert_eq!(
        recovered,
        RecoverOutcome {
            status: RecoverStatus::Recovered,
            have: 2,
            need: 2,
            generation: Some(1),
        }
    );
    assert_eq!(
        serde_json::to_value(&recovered).unwrap(),
        serde_json::json!({"status": "recovered", "have": 2, "need": 2, "generation": 1})
    );
    assert_eq!(
        serde_json::to_value(accepted(1)).unwrap(),
        serde_json::json!({"status": "share_accepted", "have": 1, "need": 2, "generation": null})
    );

    // Ready again: the same workspace verifies (same history, no
    // rollback), the root key is the one before, the mesh CA is new.
    let again = verify_cmd::verify(&run.verify_args(&dir)).await.unwrap();
    assert_eq!(again.summary.generation, 1);
    assert_eq!(again.summary.previous_size, Some(1));
    let head_after = trust_state(&dir);
    assert_eq!(head_after.size, head_before.size);
    assert_eq!(head_after.root, head_before.root);
    assert_eq!(
        head_after.history_public_key,
        head_before.history_public_key
    );
    let root_after = cert(&dir.join("verify/root-ca.pem"));
    let mesh_after = cert(&dir.join("verify/mesh-ca.pem"));
    assert_eq!(spki(&root_after), spki(&root_before), "same root key");
    assert_ne!(spki(&mesh_after), spki(&mesh_before), "a new mesh CA key");
    assert!(issued_by(&mesh_after, &mesh_after), "self-signed");

    // Workloads get certificates under the new mesh CA and talk again.
    let web = run.deployment.initialize("web", &run.mesh()).await.unwrap();
    let db = run.deployment.initialize("db", &run.mesh()).await.unwrap();
    let chain = certs(&web.join("tls-config/certChain.pem"));
    assert!(issued_by(&chain[0], &mesh_after));
    assert!(!issued_by(&chain[0], &mesh_before));
    assert!(
        issued_by(&chain[1], &root_before),
        "the root certificate from before the restart verifies the new intermediate"
    );
    assert_eq!(spki(&chain[1]), spki(&mesh_after));
    assert_eq!(cert(&db.join("tls-config/mesh-ca.pem")), mesh_after);
    let (db_got, _) = accord_demo::demo::mesh_exchange(&web, &db).await.unwrap();
    assert_eq!(db_got, "web here: SELECT greeting FROM hello;");

    // And a Ready coordinator answers already_recovered.
    let why = refused(run.recover(&keys[2], None).await);
    assert!(why.contains("already_recovered"), "{why}");

    run.stop().await;
}

/// `accord set --reshare`: the owner hands the seed to a new set of
/// seed-share owners (two of the three, one needed) in a signed update;
/// without `--reshare` the change is refused. After a restart the new
/// document recovers alone; the old one no longer does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reshare_hands_the_seed_to_new_owners() {
    let mut run = Running::start("reshare", three_owners_two_needed).await;
    let dir = run.dir.clone();
    run.set(None).await;
    let old = seed_share_document_load(&dir.join("seed-shares.json")).unwrap();
    let old_copy = save(&dir, "old-seed-shares.json", &old);
    let keys = run.deployment.seedshare_keys();

    // The new manifest: owners 1 and 2, threshold 1.
    accord_cli::manifest_cmd::generate_manifest(&accord_cli::manifest_cmd::GenerateArgs {
        resources: vec![dir.join("resources")],
        reference_values: dir.join("reference-values.json"),
        out: dir.join("manifest.json"),
        workload_owner_key: vec![run.deployment.owner_key()],
        seedshare_owner_key: keys[..2].to_vec(),
        seedshare_threshold: 1,
        policies_dir: None,
    })
    .unwrap();
    let owner = Some(run.deployment.owner_key());
    let without = accord_cli::set_cmd::set(&run.set_args(owner.clone())).await;
    match without {
        Err(Failure::Refused(why)) => assert!(why.contains("--reshare"), "{why}"),
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(outcome) => panic!("owners changed without --reshare: {outcome:?}"),
    }
    let mut args = run.set_args(owner);
    args.reshare = true;
    let outcome = accord_cli::set_cmd::set(&args)
        .await
        .unwrap_or_else(|e| panic!("set --reshare: {e}"));
    assert_eq!(outcome.generation, 2);
    let new = seed_share_document_load(&dir.join("seed-shares.json")).unwrap();
    assert_eq!(new.shares.len(), 2);
    assert_eq!(new.commitments.threshold, 1);
    assert_ne!(new.commitments, old.commitments);

    run.restart().await;
    // The old document's shares do not match the new commitments.
    let stale = run.recover(&keys[0], Some(&old_copy)).await;
    assert!(stale.is_err(), "an old share was taken: {stale:?}");
    // One owner of the new set recovers alone.
    let recovered = run.recover(&keys[1], None).await.unwrap();
    assert_eq!(recovered.status, RecoverStatus::Recovered);
    assert_eq!(recovered.generation, Some(2));
    run.stop().await;
}
