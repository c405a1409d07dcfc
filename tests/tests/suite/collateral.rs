//! Attestation in service goes through the collateral path: the
//! coordinator's verifier asks its shim for what it needs, the shim
//! fetches it from the INSECURE simulated KDS/PCS (`accord-simulated-vendor`),
//! and only what the vendor's (simulated) root signed is used.
//!
//! - a TDX workload whose evidence carries no collateral gets a mesh
//!   certificate, the collateral coming through the shim from the
//!   simulated PCS;
//! - with the vendor answering a tampered CRL, or down, and no CRL held or
//!   carried, a SEV-SNP workload is refused naming the missing CRL;
//! - a workload on a simulated chip whose VCEK the simulated KDS's CRL
//!   revokes is refused by name, although its evidence carries an older
//!   CRL that does not revoke it; and a vendor (or shim) then serving the
//!   older CRL cannot undo it.
//!
//! The workload chip has a root of its own (not the process chip's), so
//! that revoking it touches no other test sharing the process-wide
//! verifier.

use std::sync::Arc;

use accord_collateral::test_vendor::Behavior;
use accord_collateral::{Endpoints, Fetcher, HttpClient, HttpConfig};
use accord_core::evidence::ReferenceValues;
use accord_core::hex;
use accord_core::protocol::SetManifest;
use accord_guest::tee::TeeProvider;
use accord_guest::tee::bare::Bare;
use accord_guest::tee::simulated::SimulatedSnp;
use accord_guest::tee::simulated_tdx::SimulatedTdx;
use accord_shim::collateral::CollateralService;
use accord_simulated_vendor::SimulatedVendor;

use crate::support::{
    COORD_POLICY, Deployment, SEEDSHARE_SECRET, WEB_POLICY, call, config, mesh_cert, outcome,
    owner_spki, sha256,
};

const TDX_POLICY: &[u8] = b"tdx workload policy (initdata)";
const REVOKED_POLICY: &[u8] = b"workload on the revoked chip (initdata)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collateral_comes_through_the_shim_and_revocation_is_enforced() {
    let d = Deployment::new("collateral");
    let vendor = SimulatedVendor::start().unwrap();
    let chip = Arc::new(
        SimulatedSnp::open(&d.dir.join("workload-chip"), &config(REVOKED_POLICY)).unwrap(),
    );
    vendor.add_snp_chip(Arc::clone(&chip)).unwrap();
    let platform = Arc::new(SimulatedTdx::open(&d.dir.join("tdx"), &config(TDX_POLICY)).unwrap());
    vendor.add_tdx_platform(Arc::clone(&platform)).unwrap();

    // The shim, fetching from the simulated vendor (no cache: the vendor
    // down means nothing to serve), its CRLs checked under the roots the
    // manifest names.
    let trust = ReferenceValues {
        snp: vec![d.chip.reference_values(), chip.reference_values()],
        tdx: vec![platform.reference_values()],
    };
    let service = Arc::new(CollateralService::new(
        Fetcher::new(
            Some(HttpClient::new(HttpConfig::default()).unwrap()),
            Endpoints::new(&vendor.kds_url(), &vendor.pcs_url()),
            None,
        )
        .trusting(trust),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shim_addr = listener.local_addr().unwrap().to_string();
    let board = Arc::new(accord_shim::status::StatusBoard::default());
    let shim = Arc::new(accord_shim::channel::Shim {
        store: Arc::new(accord_shim::mem_store::MemStore::default()),
        discovery: accord_shim::discovery::ManualPeers::default(),
        board,
        collateral: Some(Arc::clone(&service)),
    });
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(accord_shim::channel::serve(listener, shim, shutdown));

    let mut coordinator_entry = d.chip.reference_values();
    coordinator_entry.host_data = None;
    let mut chip_entry = chip.reference_values();
    chip_entry.host_data = None;
    let mut tdx_entry = platform.reference_values();
    tdx_entry.policy_hash = None;
    let seedshare_key = format!(
        "302a300506032b656e032100{}",
        hex::encode(&accord_core::seedshare::owner_public_key(&SEEDSHARE_SECRET).0)
    );
    let manifest = serde_json::to_vec_pretty(&serde_json::json!({
        "Policies": {
            hex::encode(&sha256(COORD_POLICY)): {"SANs": ["coordinator"], "Role": "coordinator"},
            hex::encode(&sha256(WEB_POLICY)): {"SANs": ["web"], "WorkloadSecretID": "web"},
            hex::encode(&sha256(REVOKED_POLICY)): {"SANs": ["on-revoked-chip"], "WorkloadSecretID": "r"},
            hex::encode(&sha256(TDX_POLICY)): {"SANs": ["worker-on-tdx"], "WorkloadSecretID": "worker"},
        },
        "ReferenceValues": {"snp": [coordinator_entry, chip_entry], "tdx": [tdx_entry]},
        "WorkloadOwnerPubKeys": [hex::encode(&owner_spki())],
        "SeedshareOwnerPubKeys": [seedshare_key],
        "SeedshareThreshold": 1,
    }))
    .unwrap();
    let coordinator = d.start_with_shim(&shim_addr).await;
    let reply = call(
        &coordinator,
        &d,
        SetManifest {
            manifest,
            policies: vec![
                COORD_POLICY.to_vec(),
                WEB_POLICY.to_vec(),
                REVOKED_POLICY.to_vec(),
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
    let on_chip: Arc<dyn TeeProvider> = chip.clone();

    // The vendor (or the shim) answers a tampered CRL, then is down, and
    // the evidence carries no CRL: refused, naming the CRL.
    for behavior in [Behavior::Tamper, Behavior::Status(503)] {
        vendor.set_behavior(behavior);
        let refused = mesh_cert(&mesh, &d, Arc::new(Bare(Arc::clone(&on_chip)))).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.contains("CRL of") && e.contains("is not held")),
            "{behavior:?}: {refused:?}"
        );
    }
    vendor.set_behavior(Behavior::Serve);

    // The simulated KDS revokes the chip's VCEK.
    vendor
        .revoke_snp(chip.product(), &chip.vcek_serial())
        .unwrap();

    // A TDX workload whose quote comes without collateral: the coordinator
    // gets it through the shim from the simulated PCS.
    let tdx: Arc<dyn TeeProvider> = platform.clone();
    assert_eq!(
        mesh_cert(&mesh, &d, Arc::new(Bare(tdx))).await,
        Ok("worker-on-tdx".to_string())
    );
    let answers = service.stats().snapshot();
    assert!(
        answers
            .iter()
            .any(|(kind, outcome, n)| *kind == "tdx_collateral" && *outcome == "vendor" && *n > 0),
        "{answers:?}"
    );

    // The revoked chip's workload, although its evidence carries the
    // chip's own (older, non-revoking) CRL: refused by name.
    let refused = mesh_cert(&mesh, &d, Arc::clone(&on_chip)).await;
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("is revoked")),
        "{refused:?}"
    );
    // A vendor (or shim) serving the older CRL again cannot undo it.
    vendor.serve_older_snp_crl(chip.product()).unwrap();
    let refused = mesh_cert(&mesh, &d, on_chip).await;
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("is revoked")),
        "{refused:?}"
    );

    // A workload on the coordinator's chip (not revoked) still gets one.
    assert_eq!(
        mesh_cert(&mesh, &d, d.tee(WEB_POLICY)).await,
        Ok("web".to_string())
    );
    coordinator.stop().await.unwrap();
}
