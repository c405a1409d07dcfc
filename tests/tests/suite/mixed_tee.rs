//! One manifest with both `snp` and `tdx` reference values (each trusting
//! its INSECURE simulated root explicitly): the coordinator runs on the
//! simulated SEV-SNP chip, and workloads on both TEEs get a mesh
//! certificate (the TDX one with its quote and the collateral it carries,
//! verified under the simulated root the `tdx` entry names). A TDX
//! workload launched with a policy the manifest does not name (MRCONFIGID),
//! or on another simulated TDX platform (another root), does not.

use std::path::Path;
use std::sync::Arc;

use accord_core::hex;
use accord_core::manifest::Manifest;
use accord_core::protocol::SetManifest;
use accord_guest::tee::simulated_tdx::SimulatedTdx;
use accord_guest::tee::{self, TeeOptions, TeeProvider};

use crate::support::{
    COORD_POLICY, Deployment, SEEDSHARE_SECRET, WEB_POLICY, call, config, mesh_cert, outcome,
    owner_spki, sha256,
};

const TDX_POLICY: &[u8] = b"tdx workload policy (initdata)";

/// The simulated TDX in `state`, launched with `policy`.
fn tdx(state: &Path, policy: &[u8]) -> Arc<dyn TeeProvider> {
    let options = TeeOptions {
        simulated_state: state.to_path_buf(),
        simulated: config(policy),
        ..TeeOptions::default()
    };
    Arc::from(tee::open(tee::INSECURE_SIMULATED_TDX, &options).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snp_coordinator_certifies_snp_and_tdx_workloads() {
    let d = Deployment::new("mixed-tee");
    let tdx_state = d.dir.join("tdx");
    let platform = SimulatedTdx::open(&tdx_state, &config(TDX_POLICY)).unwrap();

    let mut snp = d.chip.reference_values();
    snp.host_data = None;
    let mut tdx_entry = platform.reference_values();
    tdx_entry.policy_hash = None;
    let seedshare_key = format!(
        "302a300506032b656e032100{}",
        hex::encode(&accord_core::seedshare::owner_public_key(&SEEDSHARE_SECRET).0)
    );
    let manifest = serde_json::to_vec_pretty(&serde_json::json!({
        "Policies": {
            hex::encode(&sha256(COORD_POLICY)): {"SANs": ["coordinator"], "Role": "coordinator"},
            hex::encode(&sha256(WEB_POLICY)): {"SANs": ["web-on-snp"], "WorkloadSecretID": "web"},
            hex::encode(&sha256(TDX_POLICY)): {"SANs": ["worker-on-tdx"], "WorkloadSecretID": "worker"},
        },
        "ReferenceValues": {"snp": [snp], "tdx": [tdx_entry]},
        "WorkloadOwnerPubKeys": [hex::encode(&owner_spki())],
        "SeedshareOwnerPubKeys": [seedshare_key],
        "SeedshareThreshold": 1,
    }))
    .unwrap();
    let parsed = Manifest::from_json(&manifest).unwrap();
    parsed.validate().unwrap();
    assert!(
        parsed.doc().reference_values.tdx[0]
            .insecure_trusted_root
            .is_some()
    );

    let coordinator = d.start().await;
    let reply = call(
        &coordinator,
        &d,
        SetManifest {
            manifest,
            policies: vec![
                COORD_POLICY.to_vec(),
                WEB_POLICY.to_vec(),
                TDX_POLICY.to_vec(),
            ],
            expected_previous_transition: None,
            signatures: Vec::new(),
            reshare: false,
        },
    )
    .await;
    assert_eq!(outcome(&reply), "ok", "{reply:?}");
    let mesh = coordinator.mesh_addr.to_string();

    // A workload on the simulated SEV-SNP chip and one on the simulated
    // TDX each get the certificate of their policy.
    assert_eq!(
        mesh_cert(&mesh, &d, d.tee(WEB_POLICY)).await,
        Ok("web-on-snp".to_string())
    );
    assert_eq!(
        mesh_cert(&mesh, &d, tdx(&tdx_state, TDX_POLICY)).await,
        Ok("worker-on-tdx".to_string())
    );
    // The TDX quotes of both versions verify.
    let mut v5 = config(TDX_POLICY);
    v5.tdx_quote_version = 5;
    let v5: Arc<dyn TeeProvider> = Arc::new(SimulatedTdx::open(&tdx_state, &v5).unwrap());
    assert_eq!(
        mesh_cert(&mesh, &d, Arc::clone(&v5)).await,
        Ok("worker-on-tdx".to_string())
    );

    // A TDX workload with a policy hash the manifest does not name: none.
    let refused = mesh_cert(&mesh, &d, tdx(&tdx_state, b"some other policy")).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("is not in the manifest's Policies")),
        "{refused:?}"
    );
    // A TDX workload on another simulated platform (a root the manifest
    // does not name): none.
    let refused = mesh_cert(&mesh, &d, tdx(&d.dir.join("other-tdx"), TDX_POLICY)).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("peer evidence refused: TDX")),
        "{refused:?}"
    );

    coordinator.stop().await.unwrap();
}
