//! Every API in every state, over the wire: a coordinator runs in this
//! process (`accord_guest::coordinator::spawn`) on loopback with the
//! INSECURE simulated chip, and the real clients (`UserClient`,
//! `MeshClient`) talk attested TLS and the wire protocol to it. The table
//! is contrast-notes §1.4 with accord's typed errors (`DESIGN.md` §4):
//!
//! | API | Uninitialized | Recovery | Ready |
//! |---|---|---|---|
//! | SetManifest | ok | needs_recovery | ok with an owner signature |
//! | GetManifests | no_manifest | needs_recovery | ok |
//! | Recover | no_manifest | ok (the share is taken) | already_recovered |
//! | NewMeshCert (mesh API) | refused: not ready | refused: not ready | ok |

use std::path::PathBuf;
use std::sync::Arc;

use accord_core::coordinator::{next_transition, update_message};
use accord_core::crypto::default_provider;
use accord_core::hex;
use accord_core::protocol::{ErrorCode, MeshResponse, OwnerSignature, UserRequest, UserResponse};
use accord_core::seedshare::{self, SeedShareDocument};
use accord_guest::atls::{Clock, Identity, PeerPolicy};
use accord_guest::client::{MeshClient, UserClient};
use accord_guest::coordinator::{InProcess, spawn};
use accord_guest::tee::simulated::{SimulatedConfig, SimulatedSnp};
use accord_guest::tee::{self, TeeOptions, TeeProvider};
use ed25519_dalek::Signer;

const COORD_POLICY: &[u8] = b"coordinator policy (initdata)";
const WEB_POLICY: &[u8] = b"web policy (initdata)";
const SEEDSHARE_SECRET: [u8; 32] = [0x31; 32];

fn sha256(bytes: &[u8]) -> [u8; 32] {
    default_provider().sha256(&[bytes])
}

fn owner() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[5; 32])
}

fn owner_spki() -> Vec<u8> {
    let mut spki = hex::decode("302a300506032b6570032100").unwrap();
    spki.extend_from_slice(owner().verifying_key().as_bytes());
    spki
}

struct Deployment {
    dir: PathBuf,
    chip: SimulatedSnp,
}

impl Deployment {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("accord-api-states-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let chip = SimulatedSnp::open(&dir.join("chip"), &config(COORD_POLICY)).unwrap();
        Self { dir, chip }
    }

    fn tee(&self, policy: &[u8]) -> Arc<dyn TeeProvider> {
        let options = TeeOptions {
            simulated_state: self.dir.join("chip"),
            simulated: config(policy),
            ..TeeOptions::default()
        };
        Arc::from(tee::open("insecure-simulated", &options).unwrap())
    }

    async fn start(&self) -> InProcess {
        spawn(
            self.tee(COORD_POLICY),
            &self.dir,
            "127.0.0.1:0",
            "127.0.0.1:0",
        )
        .await
        .unwrap()
    }

    fn manifest(&self, variant: u32) -> Vec<u8> {
        let mut snp = self.chip.reference_values();
        snp.host_data = None;
        let seedshare = seedshare::owner_public_key(&SEEDSHARE_SECRET);
        serde_json::to_vec_pretty(&serde_json::json!({
            "Policies": {
                hex::encode(&sha256(COORD_POLICY)): {"SANs": ["coordinator"], "Role": "coordinator"},
                hex::encode(&sha256(WEB_POLICY)): {"SANs": [format!("web-{variant}")], "WorkloadSecretID": "web"},
            },
            "ReferenceValues": {"snp": [snp]},
            "WorkloadOwnerPubKeys": [hex::encode(&owner_spki())],
            "SeedshareOwnerPubKeys": [format!("302a300506032b656e032100{}", hex::encode(&seedshare.0))],
        }))
        .unwrap()
    }

    fn user_policy(&self) -> PeerPolicy {
        PeerPolicy {
            reference: accord_core::evidence::ReferenceValues {
                snp: vec![self.chip.reference_values()],
                tdx: Vec::new(),
            },
            expected_policy_hashes: Some(vec![sha256(COORD_POLICY)]),
            at: Clock::System,
        }
    }
}

fn config(policy: &[u8]) -> SimulatedConfig {
    SimulatedConfig {
        host_data: sha256(policy),
        ..SimulatedConfig::default()
    }
}

async fn call(
    coordinator: &InProcess,
    deployment: &Deployment,
    request: UserRequest,
) -> UserResponse {
    let mut client =
        UserClient::connect(&coordinator.user_addr.to_string(), deployment.user_policy())
            .await
            .unwrap();
    client.call(request).await.unwrap()
}

/// `"ok"` or the error code's name, for the table.
fn outcome(response: &UserResponse) -> String {
    match response {
        UserResponse::Error(e) => format!("{:?}", e.code),
        _ => "ok".into(),
    }
}

fn set_request(manifest: Vec<u8>, latest: Option<[u8; 32]>) -> UserRequest {
    let signatures = match latest {
        None => Vec::new(),
        Some(latest) => {
            let (_, next) = next_transition(
                default_provider(),
                &manifest,
                Some(accord_core::history::objects::ObjectHash(latest)),
            );
            vec![OwnerSignature {
                public_key: owner_spki(),
                signature: owner().sign(&update_message(&next)).to_bytes().to_vec(),
            }]
        }
    };
    UserRequest::SetManifest {
        manifest,
        policies: vec![COORD_POLICY.to_vec(), WEB_POLICY.to_vec()],
        expected_previous_transition: None,
        signatures,
    }
}

fn get() -> UserRequest {
    UserRequest::GetManifests {
        consistency_from: None,
        inclusion_of: Vec::new(),
    }
}

fn recover(document: &SeedShareDocument) -> UserRequest {
    let share = seedshare::open(
        &document.shares[0],
        &document.commitments,
        &SEEDSHARE_SECRET,
        default_provider(),
    )
    .unwrap();
    UserRequest::Recover {
        share: share.to_bytes().to_vec(),
        force: false,
    }
}

/// `"ok"` or why the mesh API refused a workload running `WEB_POLICY`.
async fn mesh(coordinator: &InProcess, deployment: &Deployment) -> String {
    let identity = Identity::ephemeral().unwrap();
    let connected = MeshClient::connect(
        &coordinator.mesh_addr.to_string(),
        deployment.tee(WEB_POLICY),
        identity,
    )
    .await;
    match connected {
        Err(e) if format!("{e:#}").contains("not ready") => "not ready".into(),
        Err(e) => format!("connect failed: {e:#}"),
        Ok(mut client) => match client.new_mesh_cert().await.unwrap() {
            MeshResponse::MeshCert { cert_chain, .. } if cert_chain.len() == 2 => "ok".into(),
            other => format!("{other:?}"),
        },
    }
}

async fn latest(coordinator: &InProcess, deployment: &Deployment) -> [u8; 32] {
    match call(coordinator, deployment, get()).await {
        UserResponse::Manifests {
            latest_transition, ..
        } => latest_transition,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_in_every_state_over_the_wire() {
    let d = Deployment::new("table");
    let mut table: Vec<(&str, &str, String)> = Vec::new();

    // Uninitialized.
    let c = d.start().await;
    table.push((
        "Uninitialized",
        "GetManifests",
        outcome(&call(&c, &d, get()).await),
    ));
    let dummy = UserRequest::Recover {
        share: vec![1; seedshare::SHARE_LEN],
        force: false,
    };
    table.push((
        "Uninitialized",
        "Recover",
        outcome(&call(&c, &d, dummy).await),
    ));
    table.push(("Uninitialized", "NewMeshCert", mesh(&c, &d).await));
    let set = call(&c, &d, set_request(d.manifest(0), None)).await;
    table.push(("Uninitialized", "SetManifest", outcome(&set)));
    let UserResponse::ManifestSet {
        seed_share_document: Some(document),
        ..
    } = set
    else {
        panic!("{set:?}")
    };

    // Ready.
    table.push(("Ready", "GetManifests", outcome(&call(&c, &d, get()).await)));
    table.push((
        "Ready",
        "Recover",
        outcome(&call(&c, &d, recover(&document)).await),
    ));
    table.push(("Ready", "NewMeshCert", mesh(&c, &d).await));
    let latest_transition = latest(&c, &d).await;
    let update = call(&c, &d, set_request(d.manifest(1), Some(latest_transition))).await;
    table.push(("Ready", "SetManifest", outcome(&update)));
    c.stop().await.unwrap();

    // Recovery: a restart on the same store.
    let c = d.start().await;
    table.push((
        "Recovery",
        "GetManifests",
        outcome(&call(&c, &d, get()).await),
    ));
    table.push((
        "Recovery",
        "SetManifest",
        outcome(&call(&c, &d, set_request(d.manifest(2), None)).await),
    ));
    table.push(("Recovery", "NewMeshCert", mesh(&c, &d).await));
    let recovered = call(&c, &d, recover(&document)).await;
    table.push(("Recovery", "Recover", outcome(&recovered)));
    assert!(
        matches!(
            recovered,
            UserResponse::Recovery {
                recovered: Some(2),
                ..
            }
        ),
        "threshold 1: the one share recovers generation 2: {recovered:?}"
    );
    // And it serves again, under a new mesh CA but the same root key.
    table.push(("Recovery → Ready", "NewMeshCert", mesh(&c, &d).await));
    c.stop().await.unwrap();

    let expected = [
        (
            "Uninitialized",
            "GetManifests",
            format!("{:?}", ErrorCode::NoManifest),
        ),
        (
            "Uninitialized",
            "Recover",
            format!("{:?}", ErrorCode::NoManifest),
        ),
        ("Uninitialized", "NewMeshCert", "not ready".into()),
        ("Uninitialized", "SetManifest", "ok".into()),
        ("Ready", "GetManifests", "ok".into()),
        (
            "Ready",
            "Recover",
            format!("{:?}", ErrorCode::AlreadyRecovered),
        ),
        ("Ready", "NewMeshCert", "ok".into()),
        ("Ready", "SetManifest", "ok".into()),
        (
            "Recovery",
            "GetManifests",
            format!("{:?}", ErrorCode::NeedsRecovery),
        ),
        (
            "Recovery",
            "SetManifest",
            format!("{:?}", ErrorCode::NeedsRecovery),
        ),
        ("Recovery", "NewMeshCert", "not ready".into()),
        ("Recovery", "Recover", "ok".into()),
        ("Recovery → Ready", "NewMeshCert", "ok".into()),
    ];
    for ((state, api, got), (s, a, want)) in table.iter().zip(expected.iter()) {
        assert_eq!((*state, *api), (*s, *a));
        assert_eq!(got, want, "{api} in {state}");
    }
    assert_eq!(table.len(), expected.len());
    let _ = std::fs::remove_dir_all(&d.dir);
}
