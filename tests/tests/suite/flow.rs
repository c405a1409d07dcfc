//! The whole flow through the CLI's library entry points, with a
//! coordinator in this process (INSECURE simulated chip): keys and a
//! manifest for two workloads (`web`, `db`) generated from Kubernetes
//! YAML, `accord set` (refused without `--insecure-simulation`, since the
//! manifest trusts the simulated chip), each workload's initializer, the
//! files it writes, `web` and `db` over mutual TLS with their mesh
//! certificates, `accord verify` by a third party who holds only the
//! manifest (refused without the flag as well), an unsigned update
//! refused and a signed one set, `verify` again (the tree head moves
//! forward) and `accord get-manifests` (two manifests).

use crate::support::cli::{
    Running, assert_simulation_refused, cert, certs, issued_by, mode, sha256_file, spki,
    trust_state,
};
use accord_cli::net::Failure;
use accord_cli::set_cmd::SetArgs;
use accord_cli::set_payload::seed_share_document_load;
use accord_cli::verify_cmd;
use accord_cli::verify_cmd::VerifyArgs;
use accord_core::crypto::default_provider;
use accord_core::manifest::Manifest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_manifest_set_initializers_mtls_verify_update_history() {
    let run = Running::start("flow", accord_demo::demo::Deployment::prepare).await;
    let dir = run.dir.clone();

    // Keys (0600) and a manifest naming both workloads and the coordinator.
    let owner_key = run.deployment.owner_key();
    assert_eq!(mode(&owner_key), 0o600);
    for key in run.deployment.seedshare_keys() {
        assert_eq!(mode(&key), 0o600, "{}", key.display());
    }
    let first_manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    let manifest = Manifest::from_json(&first_manifest).unwrap();
    let doc = manifest.doc();
    assert_eq!(doc.policies.len(), 3, "coordinator, web, db");
    assert_eq!(doc.coordinator_policy_hashes().len(), 1);
    assert_eq!(doc.seedshare_owner_pub_keys.len(), 2);

    // The manifest trusts the INSECURE simulated chip: without
    // --insecure-simulation, `accord set` refuses it before connecting.
    let strict = SetArgs {
        options: run.options_without_simulation(&dir),
        ..run.set_args(None)
    };
    assert_simulation_refused(
        accord_cli::set_cmd::set(&strict).await,
        &dir.join("manifest.json"),
    );
    assert!(!dir.join("seed-shares.json").exists(), "nothing was set");

    // accord set: the first manifest.
    let set = run.set(None).await;
    assert_eq!(set.generation, 1);
    assert!(set.first);
    let shares_path = set
        .seed_shares
        .clone()
        .expect("first set writes seed shares");
    assert_eq!(mode(&shares_path), 0o600);
    let document = seed_share_document_load(&shares_path).unwrap();
    assert_eq!(document.shares.len(), 2);
    assert_eq!(document.commitments.threshold, 1);
    let root_ca = cert(&set.root_ca);
    let mesh_ca = cert(&set.mesh_ca);
    assert!(
        issued_by(&mesh_ca, &mesh_ca),
        "the mesh CA is self-signed (a root for this generation's workloads)"
    );
    assert!(issued_by(&root_ca, &root_ca), "the root is self-signed");
    assert_ne!(spki(&mesh_ca), spki(&root_ca));

    // The initializers of web and db.
    let mesh = run.mesh();
    let mut secrets = Vec::new();
    let mut outs = Vec::new();
    for name in ["web", "db"] {
        let out = run.deployment.initialize(name, &mesh).await.unwrap();
        let tls = out.join("tls-config");
        assert_eq!(cert(&tls.join("mesh-ca.pem")), mesh_ca, "{name}");
        assert_eq!(
            cert(&tls.join("coordinator-root-ca.pem")),
            root_ca,
            "{name}"
        );
        let chain = certs(&tls.join("certChain.pem"));
        assert_eq!(chain.len(), 2, "{name}: leaf and intermediate");
        assert!(
            issued_by(&chain[0], &mesh_ca),
            "{name}: the leaf is issued by the mesh CA"
        );
        assert!(
            issued_by(&chain[1], &root_ca),
            "{name}: the intermediate is issued by the root"
        );
        assert_eq!(
            spki(&chain[1]),
            spki(&mesh_ca),
            "{name}: the intermediate has the mesh CA's key"
        );
        let key = tls.join("key.pem");
        assert_eq!(mode(&key), 0o400, "{name}: key.pem");
        let key_pem = std::fs::read_to_string(&key).unwrap();
        assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{name}");
        let secret_path = out.join("secrets/workload-secret-seed");
        assert_eq!(mode(&secret_path), 0o400, "{name}: the secret");
        let secret = std::fs::read_to_string(&secret_path).unwrap();
        assert_eq!(
            accord_core::hex::decode(secret.trim()).unwrap().len(),
            64,
            "{name}: a 64-byte workload secret, hex"
        );
        secrets.push(secret);
        outs.push(out);
    }
    assert_ne!(secrets[0], secrets[1], "web and db get different secrets");

    // web and db over mutual TLS, each checking the other against the
    // mesh CA (db's certificate must name "db").
    let (db_got, web_got) = accord_demo::demo::mesh_exchange(&outs[0], &outs[1])
        .await
        .unwrap();
    assert_eq!(db_got, "web here: SELECT greeting FROM hello;");
    assert!(
        web_got.starts_with("db here:") && web_got.contains("you presented 2 certificate(s)"),
        "{web_got}"
    );

    // A third party with nothing but the manifest verifies.
    let third = run.dir.parent().unwrap().join("third-party");
    std::fs::create_dir_all(&third).unwrap();
    std::fs::copy(dir.join("manifest.json"), third.join("manifest.json")).unwrap();
    let strict = VerifyArgs {
        options: run.options_without_simulation(&third),
    };
    assert_simulation_refused(
        verify_cmd::verify(&strict).await,
        &third.join("manifest.json"),
    );
    assert_simulation_refused(
        verify_cmd::get_manifests(&strict).await,
        &third.join("manifest.json"),
    );
    assert!(!third.join("verify").exists(), "nothing was verified");
    let verified = verify_cmd::verify(&run.verify_args(&third)).await.unwrap();
    assert_eq!(verified.summary.generation, 1);
    assert_eq!(verified.summary.previous_size, None, "first use");
    assert_eq!(
        verified.summary.history[0].manifest_sha256,
        sha256_file(&dir.join("manifest.json"))
    );
    let head_1 = trust_state(&third);
    assert_eq!((head_1.size, head_1.generation), (1, 1));
    assert_eq!(
        std::fs::read(third.join("verify/manifests/manifest-0.json")).unwrap(),
        first_manifest
    );

    // An update (a new SAN for web): refused unsigned, set when signed.
    run.deployment
        .write_resources(Some("web.example.com"))
        .unwrap();
    run.deployment.generate_manifest().unwrap();
    let second_manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    assert_ne!(second_manifest, first_manifest);
    match accord_cli::set_cmd::set(&run.set_args(None)).await {
        Err(Failure::Refused(why)) => assert!(why.contains("permission_denied"), "{why}"),
        Err(other) => panic!("an unsigned update failed otherwise: {other}"),
        Ok(outcome) => panic!("an unsigned update was set: {outcome:?}"),
    }
    let update = run.set(Some(owner_key)).await;
    assert_eq!(update.generation, 2);
    assert!(!update.first);
    assert_eq!(
        update.seed_shares, None,
        "seed shares only on the first set"
    );

    // The third party verifies the new manifest: the tree head moves
    // forward by a consistency proof, under the same history key.
    std::fs::copy(dir.join("manifest.json"), third.join("manifest.json")).unwrap();
    let again = verify_cmd::verify(&run.verify_args(&third)).await.unwrap();
    assert_eq!(again.summary.generation, 2);
    assert_eq!(again.summary.previous_size, Some(1));
    let head_2 = trust_state(&third);
    assert_eq!((head_2.size, head_2.generation), (2, 2));
    assert_ne!(head_2.root, head_1.root);
    assert_eq!(head_2.history_public_key, head_1.history_public_key);
    assert_eq!(head_2.latest_transition.to_vec(), {
        accord_core::hex::decode(&update.transition).unwrap()
    });

    // get-manifests: both manifests, in order.
    let history = verify_cmd::get_manifests(&run.verify_args(&third))
        .await
        .unwrap();
    let provider = default_provider();
    assert_eq!(history.len(), 2);
    assert_eq!(
        history[0].manifest_sha256,
        provider.sha256(&[&first_manifest])
    );
    assert_eq!(
        history[1].manifest_sha256,
        provider.sha256(&[&second_manifest])
    );
    assert_eq!(
        trust_state(&third),
        head_2,
        "get-manifests leaves the trust state"
    );

    run.stop().await;
}
