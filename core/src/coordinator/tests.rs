//! State-machine tests: every API in every state (the table of the module
//! docs), updates and their authorization, storage failures, stale
//! detection, tampering and user recovery. The store is an in-memory map
//! that executes the machine's write batches with real compare-and-swap.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use alloc::{format, vec};
use core::cell::Cell;

use ed25519_dalek::Signer;
use serde_json::json;

use super::*;
use crate::crypto::rustcrypto::PROVIDER;
use crate::crypto::{CryptoError, CryptoProvider, SecureRandom};
use crate::evidence::Claims;
use crate::evidence::snp::{
    FirmwareVersion, GuestPolicyBits, HexBytes, PlatformInfoBits, Product,
    SigningKey as SnpSigningKey, SnpClaims, TcbClaim, TcbVersion,
};
use crate::hex;
use crate::history::merkle;
use crate::history::objects::{ObjectHash, ObjectKind};
use crate::seedshare::{self, Share};
use crate::time::UnixTime;
use elliptic_curve::sec1::ToSec1Point;

pub(super) const NOW: UnixTime = UnixTime(1_790_000_000);

/// A deterministic, non-repeating test RNG: SHA-256 of a counter.
pub(super) struct TestRng(Cell<u64>);

impl SecureRandom for TestRng {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        for chunk in dest.chunks_mut(32) {
            let n = self.0.get();
            self.0.set(n + 1);
            let block = PROVIDER.sha256(&[b"test rng", &n.to_be_bytes()]);
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
}

pub(super) fn env(seed: u64) -> Env<'static> {
    Env {
        provider: &PROVIDER,
        rng: Box::leak(Box::new(TestRng(Cell::new(seed << 32)))),
    }
}

pub(super) const COORD_POLICY: &[u8] = b"coordinator policy (initdata)";
pub(super) const WEB_POLICY: &[u8] = b"web policy (initdata)";
pub(super) const DB_POLICY: &[u8] = b"db policy (initdata)";

/// Keys of the people around a deployment.
pub(super) struct People {
    pub owner: ed25519_dalek::SigningKey,
    pub p384_owner: p384::ecdsa::SigningKey,
    pub stranger: ed25519_dalek::SigningKey,
    pub seedshare_secrets: Vec<[u8; 32]>,
}

impl People {
    pub fn new() -> Self {
        Self {
            owner: ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
            p384_owner: p384::ecdsa::SigningKey::from_slice(&[7; 48]).unwrap(),
            stranger: ed25519_dalek::SigningKey::from_bytes(&[2; 32]),
            seedshare_secrets: vec![[0x31; 32], [0x32; 32], [0x33; 32]],
        }
    }

    pub fn owner_spki(&self) -> Vec<u8> {
        ed25519_spki(&self.owner)
    }

    pub fn seedshare_key(&self, i: usize) -> crate::manifest::SeedshareKey {
        seedshare::owner_public_key(&self.seedshare_secrets[i])
    }

    /// A manifest; `variant` changes the web SANs so each is distinct.
    pub fn manifest(&self, variant: u32, threshold: u32) -> Vec<u8> {
        self.manifest_with(variant, threshold, true, 3)
    }

    pub fn manifest_with(
        &self,
        variant: u32,
        threshold: u32,
        owners: bool,
        shares: usize,
    ) -> Vec<u8> {
        let p384_point = self
            .p384_owner
            .verifying_key()
            .as_affine()
            .to_sec1_point(false);
        let owner_keys = if owners {
            vec![
                hex::encode(&self.owner_spki()),
                format!(
                    "3076301006072a8648ce3d020106052b81040022036200{}",
                    hex::encode(p384_point.as_bytes())
                ),
            ]
        } else {
            vec![]
        };
        let seedshare_keys: Vec<String> = (0..shares)
            .map(|i| {
                format!(
                    "302a300506032b656e032100{}",
                    hex::encode(&self.seedshare_key(i).0)
                )
            })
            .collect();
        let doc = json!({
            "Policies": {
                hex::encode(&PROVIDER.sha256(&[COORD_POLICY])): {"SANs": ["coordinator", "coordinator.default.svc"], "Role": "coordinator"},
                hex::encode(&PROVIDER.sha256(&[WEB_POLICY])): {"SANs": [format!("web-{variant}"), "10.0.0.1"], "WorkloadSecretID": "apps/v1/Deployment/default/web"},
                hex::encode(&PROVIDER.sha256(&[DB_POLICY])): {"SANs": ["db"]}
            },
            "ReferenceValues": {"snp": [{
                "ProductName": "Milan",
                "TrustedMeasurement": "05c5".repeat(24),
                "MinimumTCB": {"BootloaderVersion": 3, "TEEVersion": 0, "SNPVersion": 23, "MicrocodeVersion": 213}
            }]},
            "WorkloadOwnerPubKeys": owner_keys,
            "SeedshareOwnerPubKeys": seedshare_keys,
            "SeedshareThreshold": threshold
        });
        serde_json::to_vec_pretty(&doc).unwrap()
    }
}

pub(super) fn ed25519_spki(key: &ed25519_dalek::SigningKey) -> Vec<u8> {
    let mut out = hex::decode("302a300506032b6570032100").unwrap();
    out.extend_from_slice(key.verifying_key().as_bytes());
    out
}

pub(super) fn policies() -> Vec<Vec<u8>> {
    vec![
        COORD_POLICY.to_vec(),
        WEB_POLICY.to_vec(),
        DB_POLICY.to_vec(),
    ]
}

pub(super) fn first_set(manifest: Vec<u8>) -> Request {
    Request::SetManifest(SetManifest {
        manifest,
        policies: policies(),
        ..SetManifest::default()
    })
}

/// An update of `deployment` signed by `key` over the transition it
/// creates on `latest` (with or without re-share).
pub(super) fn sign_update(
    deployment: [u8; 32],
    manifest: Vec<u8>,
    latest: ObjectHash,
    key: &ed25519_dalek::SigningKey,
    reshare: bool,
) -> Request {
    let (_, next) = next_transition(&PROVIDER, &manifest, Some(latest));
    let intent = UpdateIntent {
        deployment,
        next_transition: next,
        reshare,
    };
    let signature = key.sign(&intent.message()).to_bytes().to_vec();
    Request::SetManifest(SetManifest {
        manifest,
        policies: policies(),
        expected_previous_transition: None,
        signatures: vec![OwnerSignature {
            public_key: ed25519_spki(key),
            signature,
        }],
        reshare,
    })
}

/// SNP claims whose HOST_DATA is `policy`'s hash.
pub(super) fn claims_for(policy: &[u8]) -> Claims {
    let tcb = TcbClaim {
        raw: 0,
        parts: TcbVersion {
            fmc: None,
            bootloader: 3,
            tee: 0,
            snp: 23,
            microcode: 213,
        },
    };
    Claims::Snp(Box::new(SnpClaims {
        product: Product::Milan,
        product_name: "Milan-B0".into(),
        signing_key: SnpSigningKey::Vcek,
        csp_id: None,
        genuine_roots: false,
        leaf_serial: "00".into(),
        version: 3,
        guest_svn: 0,
        policy: GuestPolicyBits {
            raw: 0x30000,
            abi_minor: 0,
            abi_major: 0,
            smt: true,
            migrate_ma: false,
            debug: false,
            single_socket: false,
            cxl_allowed: false,
            mem_aes_256_xts: false,
            rapl_dis: false,
            ciphertext_hiding_dram: false,
            page_swap_disable: false,
        },
        family_id: HexBytes([0; 16]),
        image_id: HexBytes([0; 16]),
        vmpl: 0,
        signature_algo: 1,
        platform_info: PlatformInfoBits {
            raw: 1,
            smt_enabled: true,
            tsme_enabled: false,
            ecc_enabled: false,
            rapl_disabled: false,
            ciphertext_hiding_dram_enabled: false,
            alias_check_complete: false,
            tio_enabled: false,
        },
        author_key_en: false,
        mask_chip_key: false,
        report_data: HexBytes([0x42; 64]),
        measurement: HexBytes([0x05; 48]),
        host_data: HexBytes(PROVIDER.sha256(&[policy])),
        id_key_digest: HexBytes([0; 48]),
        author_key_digest: HexBytes([0; 48]),
        report_id: HexBytes([0; 32]),
        report_id_ma: HexBytes([0xff; 32]),
        current_tcb: tcb,
        reported_tcb: tcb,
        committed_tcb: tcb,
        launch_tcb: tcb,
        cpuid: None,
        chip_id: HexBytes([0xab; 64]),
        current_version: FirmwareVersion {
            major: 1,
            minor: 55,
            build: 21,
        },
        committed_version: FirmwareVersion {
            major: 1,
            minor: 55,
            build: 21,
        },
        launch_mit_vector: None,
        current_mit_vector: None,
    }))
}

/// A workload's P-256 public key (SubjectPublicKeyInfo DER).
pub(super) fn workload_spki(byte: u8) -> Vec<u8> {
    let key = p256::SecretKey::from_slice(&[byte; 32]).unwrap();
    let point = key.public_key().as_affine().to_sec1_point(false);
    let mut out = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
    out.extend_from_slice(point.as_bytes());
    out
}

pub(super) fn mesh_request(generation: u64, policy: &[u8]) -> Request {
    Request::NewMeshCert(NewMeshCert {
        generation,
        claims: claims_for(policy),
        public_key_spki: workload_spki(9),
    })
}

/// The in-memory store and the machine, with the driver's loop.
pub(super) struct Harness {
    pub store: BTreeMap<String, Vec<u8>>,
    pub machine: Coordinator<'static>,
    /// The next write batch fails with this instead of being applied.
    pub fail_next_write: Option<StoreError>,
    pub warnings: Vec<String>,
    /// What the machine refused as forged ([`Output::Forged`]).
    pub forged: Vec<String>,
    /// The peer-recovery attempts asked for ([`Output::StartPeerRecovery`]).
    pub peer_attempts: Vec<PeerAttempt>,
    /// How peer-recovery attempts ended ([`Output::PeerRecoveryEnded`]).
    pub peer_ended: Vec<bool>,
    next_id: u64,
    env_seed: u64,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_store(BTreeMap::new(), 1)
    }

    pub fn with_store(store: BTreeMap<String, Vec<u8>>, env_seed: u64) -> Self {
        let snapshot = StoreSnapshot {
            objects: store.clone(),
        };
        let (machine, _) = Coordinator::new(env(env_seed), NOW, Ok(snapshot));
        Self {
            store,
            machine,
            fail_next_write: None,
            warnings: Vec::new(),
            forged: Vec::new(),
            peer_attempts: Vec::new(),
            peer_ended: Vec::new(),
            next_id: 1,
            env_seed,
        }
    }

    /// A new machine on the same store (a restart: secrets are gone).
    pub fn restart(&mut self) {
        self.env_seed += 1;
        let snapshot = StoreSnapshot {
            objects: self.store.clone(),
        };
        let (machine, _) = Coordinator::new(env(self.env_seed), NOW, Ok(snapshot));
        self.machine = machine;
    }

    /// Feeds an input and runs the driver until nothing is left; returns
    /// the replies.
    pub fn feed(&mut self, input: Input) -> Vec<(RequestId, Result<Response, ApiError>)> {
        let mut replies = Vec::new();
        let mut queue = vec![input];
        while let Some(input) = queue.pop() {
            for output in self.machine.handle(input) {
                match output {
                    Output::Reply { id, result } => replies.push((id, result)),
                    Output::Write(batch) => queue.push(Input::WriteDone {
                        batch: batch.id,
                        result: self.apply(batch),
                    }),
                    Output::LoadSnapshot => queue.push(Input::Snapshot(Ok(StoreSnapshot {
                        objects: self.store.clone(),
                    }))),
                    Output::StateChanged(_) => {}
                    Output::Warning(w) => self.warnings.push(w),
                    Output::Forged(w) => {
                        self.warnings.push(w.clone());
                        self.forged.push(w);
                    }
                    Output::StartPeerRecovery(attempt) => self.peer_attempts.push(attempt),
                    Output::PeerRecoveryEnded { recovered } => self.peer_ended.push(recovered),
                }
            }
        }
        replies
    }

    fn apply(&mut self, batch: WriteBatch) -> Result<(), StoreError> {
        if let Some(error) = self.fail_next_write.take() {
            return Err(error);
        }
        if self.store.get(store::LATEST_KEY) != batch.latest_old.as_ref() {
            return Err(StoreError::Conflict);
        }
        for (key, value) in batch.puts {
            self.store.insert(key, value);
        }
        self.store
            .insert(store::LATEST_KEY.into(), batch.latest_new);
        Ok(())
    }

    pub fn call(&mut self, request: Request) -> Result<Response, ApiError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut replies = self.feed(Input::Request { id, request });
        assert_eq!(replies.len(), 1, "one reply per request");
        let (reply_id, result) = replies.remove(0);
        assert_eq!(reply_id, id);
        result
    }

    pub fn latest(&self) -> ObjectHash {
        let bytes = &self.store[store::LATEST_KEY];
        store::LatestRecord::decode(bytes).unwrap().transition
    }

    /// An update signed by `key` for this replica's deployment (its
    /// history key; zeros unless Ready), on top of `latest`.
    pub fn signed_update(
        &self,
        manifest: Vec<u8>,
        latest: ObjectHash,
        key: &ed25519_dalek::SigningKey,
    ) -> Request {
        let deployment = self.machine.history_public_key().unwrap_or([0; 32]);
        sign_update(deployment, manifest, latest, key, false)
    }

    /// The same, re-sharing the seed to the new manifest's owners.
    pub fn signed_reshare(
        &self,
        manifest: Vec<u8>,
        latest: ObjectHash,
        key: &ed25519_dalek::SigningKey,
    ) -> Request {
        let deployment = self.machine.history_public_key().unwrap_or([0; 32]);
        sign_update(deployment, manifest, latest, key, true)
    }

    /// Owner `i`'s share from `document`, bound to what this replica would
    /// recover to (an honest owner's CLI binds to what `GetRecoveryState`
    /// says, after checking it).
    pub fn recover_request(
        &self,
        people: &People,
        document: &seedshare::SeedShareDocument,
        i: usize,
    ) -> Request {
        Request::Recover(Recover {
            owner: people.seedshare_key(i),
            share: share_of(people, document, i),
            target: self.target(),
            force: false,
        })
    }

    /// The latest transition the Ready replica serves (not the store's).
    pub fn latest_served(&self) -> ObjectHash {
        match &self.machine.phase {
            Phase::Ready(ready) => ready.loaded.latest.transition,
            _ => panic!("not ready"),
        }
    }

    /// The latest record the Ready replica serves, as stored.
    pub fn machine_latest_bytes(&self) -> Vec<u8> {
        match &self.machine.phase {
            Phase::Ready(ready) => ready.loaded.latest_bytes.clone(),
            _ => panic!("not ready"),
        }
    }

    /// What this replica would recover to (zeros when there is nothing).
    pub fn target(&self) -> RecoveryTarget {
        self.machine.recovery_target().unwrap_or(RecoveryTarget {
            latest_transition: ObjectHash([0; 32]),
            seedshares: ObjectHash([0; 32]),
        })
    }

    pub fn manifests(&mut self) -> Manifests {
        match self.call(Request::GetManifests(GetManifests::default())) {
            Ok(Response::Manifests(m)) => m,
            other => panic!("GetManifests: {other:?}"),
        }
    }
}

/// The public key of a certificate (DER), as bytes for comparison.
pub(super) fn key_of(cert: &[u8]) -> String {
    let cert = crate::x509::Certificate::from_der(cert).unwrap();
    format!("{:?}", cert.public_key())
}

pub(super) fn set_ok(result: Result<Response, ApiError>) -> ManifestSet {
    match result {
        Ok(Response::ManifestSet(set)) => set,
        other => panic!("expected ManifestSet, got {other:?}"),
    }
}

pub(super) fn code(result: &Result<Response, ApiError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

/// The decrypted share of seed-share owner `i` from a document.
pub(super) fn share_of(
    people: &People,
    document: &seedshare::SeedShareDocument,
    i: usize,
) -> Share {
    let sealed = &document.shares[i];
    seedshare::open(
        sealed,
        &document.commitments,
        &people.seedshare_secrets[i],
        &PROVIDER,
    )
    .unwrap()
}

/// A Ready harness with the first manifest (threshold `k`) set; returns the
/// seed-share document.
pub(super) fn ready(people: &People, k: u32) -> (Harness, seedshare::SeedShareDocument) {
    let mut h = Harness::new();
    let set = set_ok(h.call(first_set(people.manifest(0, k))));
    assert_eq!(h.machine.state(), StateName::Ready);
    (h, set.seed_share_document.expect("seed-share document"))
}

// ---------------------------------------------------------------------------

#[test]
fn every_api_in_every_state() {
    let people = People::new();
    // (state, API, expected code)
    let table: &[(StateName, &str, &str)] = &[
        (StateName::Uninitialized, "SetManifest", "ok"),
        (StateName::Uninitialized, "GetManifests", "no_manifest"),
        (StateName::Uninitialized, "Recover", "no_manifest"),
        (StateName::Uninitialized, "NewMeshCert", "no_manifest"),
        (StateName::Uninitialized, "PeerRecover", "no_manifest"),
        (StateName::Recovery, "SetManifest", "needs_recovery"),
        (StateName::Recovery, "GetManifests", "needs_recovery"),
        (StateName::Recovery, "Recover", "ok"),
        (StateName::Recovery, "NewMeshCert", "needs_recovery"),
        (StateName::Recovery, "PeerRecover", "needs_recovery"),
        (StateName::Ready, "SetManifest", "ok"),
        (StateName::Ready, "GetManifests", "ok"),
        (StateName::Ready, "Recover", "already_recovered"),
        (StateName::Ready, "NewMeshCert", "ok"),
        (StateName::Ready, "PeerRecover", "ok"),
    ];
    for &(state, api, expected) in table {
        let (mut h, document) = ready(&people, 1);
        match state {
            StateName::Uninitialized => h = Harness::new(),
            StateName::Recovery => h.restart(),
            StateName::Ready => {}
        }
        assert_eq!(h.machine.state(), state);
        let generation = h.machine.generation();
        let request = match api {
            "SetManifest" if state == StateName::Ready => {
                h.signed_update(people.manifest(1, 1), h.latest(), &people.owner)
            }
            "SetManifest" => first_set(people.manifest(0, 1)),
            "GetManifests" => Request::GetManifests(GetManifests::default()),
            "Recover" => h.recover_request(&people, &document, 0),
            "NewMeshCert" => mesh_request(generation, WEB_POLICY),
            "PeerRecover" => Request::PeerRecover(PeerRecover {
                generation,
                claims: claims_for(COORD_POLICY),
            }),
            _ => unreachable!(),
        };
        let result = h.call(request);
        assert_eq!(code(&result), expected, "{api} in {state}: {result:?}");
    }
}

#[test]
fn first_manifest_persists_everything_and_serves() {
    let people = People::new();
    let (mut h, document) = ready(&people, 2);
    assert_eq!(h.machine.generation(), 1);
    assert_eq!(document.shares.len(), 3);
    assert_eq!(document.commitments.threshold, 2);
    // manifest, three policies, transition, seed-share record, latest
    assert_eq!(h.store.len(), 7, "{:?}", h.store.keys().collect::<Vec<_>>());
    let manifest = people.manifest(0, 2);
    let key = store::object_key(ObjectKind::Manifest, &ObjectHash::of(&PROVIDER, &manifest));
    assert_eq!(h.store[&key], manifest, "stored byte for byte");

    let m = h.manifests();
    assert_eq!(m.manifests, vec![manifest]);
    assert_eq!(m.policies.len(), 3);
    assert_eq!(m.signed_tree_head.head.size, 1);
    let key = ed25519_dalek::VerifyingKey::from_bytes(&m.history_public_key).unwrap();
    m.signed_tree_head.verify(&key).unwrap();
}

#[test]
fn mesh_certificates_and_workload_secrets() {
    let people = People::new();
    let (mut h, _) = ready(&people, 1);
    let cert = match h.call(mesh_request(1, WEB_POLICY)) {
        Ok(Response::MeshCert(cert)) => cert,
        other => panic!("{other:?}"),
    };
    assert_eq!(cert.cert_chain.len(), 2);
    let secret = cert.workload_secret.expect("web has a workload secret id");
    // The db policy has no workload secret id.
    match h.call(mesh_request(1, DB_POLICY)) {
        Ok(Response::MeshCert(cert)) => assert!(cert.workload_secret.is_none()),
        other => panic!("{other:?}"),
    }
    // Unknown policy hash.
    let refused = h.call(mesh_request(1, b"some other policy"));
    assert_eq!(code(&refused), "permission_denied", "{refused:?}");
    assert!(format!("{}", refused.unwrap_err()).contains("not in the manifest"));
    // Evidence verified against another generation.
    assert_eq!(
        code(&h.call(mesh_request(7, WEB_POLICY))),
        "manifest_conflict"
    );
    // A bad workload key.
    let mut bad = NewMeshCert {
        generation: 1,
        claims: claims_for(WEB_POLICY),
        public_key_spki: vec![0x30, 0x00],
    };
    assert_eq!(
        code(&h.call(Request::NewMeshCert(bad.clone()))),
        "invalid_argument"
    );
    bad.public_key_spki = workload_spki(3);
    // Same workload secret on every issuance.
    match h.call(Request::NewMeshCert(bad)) {
        Ok(Response::MeshCert(cert)) => {
            assert_eq!(cert.workload_secret.unwrap().as_bytes(), secret.as_bytes());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn updates_need_an_owner_signature_over_the_next_transition() {
    let people = People::new();
    let (mut h, _) = ready(&people, 1);
    let root_before = h.manifests().root_ca;
    let mesh_before = h.manifests().mesh_ca;
    let latest = h.latest();
    let next = people.manifest(1, 1);

    // Unsigned.
    let unsigned = Request::SetManifest(SetManifest {
        manifest: next.clone(),
        policies: policies(),
        ..SetManifest::default()
    });
    assert_eq!(code(&h.call(unsigned)), "permission_denied");
    // Signed by a stranger.
    assert_eq!(
        code(&h.call(h.signed_update(next.clone(), latest, &people.stranger))),
        "invalid_signature"
    );
    // Signed by the owner, but over another manifest.
    let Request::SetManifest(mut forged) =
        h.signed_update(people.manifest(2, 1), latest, &people.owner)
    else {
        unreachable!()
    };
    forged.manifest = next.clone();
    assert_eq!(
        code(&h.call(Request::SetManifest(forged))),
        "invalid_signature"
    );
    // A garbled signature.
    let Request::SetManifest(mut garbled) = h.signed_update(next.clone(), latest, &people.owner)
    else {
        unreachable!()
    };
    garbled.signatures[0].signature[3] ^= 1;
    assert_eq!(
        code(&h.call(Request::SetManifest(garbled))),
        "invalid_signature"
    );
    assert_eq!(
        h.machine.generation(),
        1,
        "nothing refused changed the state"
    );

    // The owner's signature works, and rotates the mesh CA but not the root.
    let good = h.signed_update(next.clone(), latest, &people.owner);
    let Request::SetManifest(replay) = &good else {
        unreachable!()
    };
    let replay = replay.clone();
    let set = set_ok(h.call(good));
    assert_eq!(set.generation, 2);
    assert!(
        set.seed_share_document.is_none(),
        "only the first set returns shares"
    );
    assert_eq!(key_of(&set.root_ca), key_of(&root_before), "same root key");
    assert_ne!(
        key_of(&set.mesh_ca),
        key_of(&mesh_before),
        "new mesh CA key"
    );
    // Replaying the same signed update is refused: the signature covers the
    // transition from the old latest.
    assert_eq!(
        code(&h.call(Request::SetManifest(replay))),
        "invalid_signature"
    );
    assert_eq!(h.machine.generation(), 2);
}

#[test]
fn p384_owner_signatures() {
    let people = People::new();
    let (mut h, _) = ready(&people, 1);
    let manifest = people.manifest(1, 1);
    let (_, next) = next_transition(&PROVIDER, &manifest, Some(h.latest()));
    let intent = UpdateIntent {
        deployment: h.machine.history_public_key().unwrap(),
        next_transition: next,
        reshare: false,
    };
    let signature: p384::ecdsa::Signature = people.p384_owner.sign(&intent.message());
    let point = people
        .p384_owner
        .verifying_key()
        .as_affine()
        .to_sec1_point(false);
    let mut spki = hex::decode("3076301006072a8648ce3d020106052b81040022036200").unwrap();
    spki.extend_from_slice(point.as_bytes());
    let request = Request::SetManifest(SetManifest {
        manifest,
        policies: policies(),
        expected_previous_transition: Some(h.latest().0),
        signatures: vec![OwnerSignature {
            public_key: spki,
            signature: signature.to_bytes().to_vec(),
        }],
        reshare: false,
    });
    assert_eq!(set_ok(h.call(request)).generation, 2);
}

#[test]
fn compare_and_swap_on_the_expected_previous_transition() {
    let people = People::new();
    let (mut h, _) = ready(&people, 1);
    let Request::SetManifest(mut set) =
        h.signed_update(people.manifest(1, 1), h.latest(), &people.owner)
    else {
        unreachable!()
    };
    set.expected_previous_transition = Some([9; 32]);
    let result = h.call(Request::SetManifest(set.clone()));
    assert_eq!(code(&result), "manifest_conflict", "{result:?}");
    set.expected_previous_transition = Some(h.latest().0);
    assert_eq!(set_ok(h.call(Request::SetManifest(set))).generation, 2);
    // The first manifest accepts only an empty expectation.
    let mut fresh = Harness::new();
    let Request::SetManifest(mut first) = first_set(people.manifest(0, 1)) else {
        unreachable!()
    };
    first.expected_previous_transition = Some([1; 32]);
    assert_eq!(
        code(&fresh.call(Request::SetManifest(first))),
        "manifest_conflict"
    );
}

#[test]
fn immutable_deployments_and_fixed_seedshare_owners() {
    let people = People::new();
    let mut h = Harness::new();
    set_ok(h.call(first_set(people.manifest_with(0, 1, false, 3))));
    let result = h.call(h.signed_update(
        people.manifest_with(1, 1, false, 3),
        h.latest(),
        &people.owner,
    ));
    assert_eq!(code(&result), "permission_denied");
    assert!(format!("{}", result.unwrap_err()).contains("immutable"));

    let (mut h, _) = ready(&people, 1);
    let fewer = people.manifest_with(1, 1, true, 2);
    assert_eq!(
        code(&h.call(h.signed_update(fewer, h.latest(), &people.owner))),
        "permission_denied"
    );
    let other_k = people.manifest(1, 2);
    let refused = h.call(h.signed_update(other_k, h.latest(), &people.owner));
    assert_eq!(code(&refused), "permission_denied");
    assert!(format!("{}", refused.unwrap_err()).contains("--reshare"));
}

#[test]
fn an_explicit_reshare_hands_the_seed_to_new_owners() {
    let people = People::new();
    let (mut h, old_document) = ready(&people, 1);
    let root_before = key_of(&h.manifests().root_ca);
    // Two of the three owners remain, and both are now needed.
    // The owner's signature must cover the re-share: the same update
    // signed without it cannot be submitted with `reshare` set.
    let mut flipped = h.signed_update(
        people.manifest_with(1, 2, true, 2),
        h.latest(),
        &people.owner,
    );
    if let Request::SetManifest(set) = &mut flipped {
        set.reshare = true;
    }
    let result = h.call(flipped);
    assert_eq!(code(&result), "invalid_signature", "{result:?}");
    assert!(format!("{}", result.unwrap_err()).contains("with re-share"));
    let update = h.signed_reshare(
        people.manifest_with(1, 2, true, 2),
        h.latest(),
        &people.owner,
    );
    let set = set_ok(h.call(update));
    let document = set.seed_share_document.expect("a new seed-share document");
    assert_eq!(document.shares.len(), 2);
    assert_eq!(document.commitments.threshold, 2);
    assert_eq!(
        key_of(&set.root_ca),
        root_before,
        "same seed, same root key"
    );

    // After a restart, old shares no longer recover; the new ones do.
    h.restart();
    let old = h.call(h.recover_request(&people, &old_document, 0));
    assert_eq!(code(&old), "invalid_argument", "{old:?}");
    assert!(matches!(
        h.call(h.recover_request(&people, &document, 0)),
        Ok(Response::Recovery(RecoveryProgress::ShareAccepted {
            have: 1,
            need: 2
        }))
    ));
    assert!(matches!(
        h.call(h.recover_request(&people, &document, 1)),
        Ok(Response::Recovery(RecoveryProgress::Recovered {
            generation: 2
        }))
    ));
    assert_eq!(key_of(&h.manifests().root_ca), root_before);

    // Re-sharing to nobody is allowed (recovery then needs a peer).
    let none = h.signed_reshare(
        people.manifest_with(2, 1, true, 0),
        h.latest(),
        &people.owner,
    );
    assert!(set_ok(h.call(none)).seed_share_document.is_none());
}

#[test]
fn invalid_manifests_and_missing_policies() {
    let people = People::new();
    let mut h = Harness::new();
    let result = h.call(first_set(b"{\"Policies\":{}}".to_vec()));
    assert_eq!(code(&result), "invalid_argument");
    assert!(format!("{}", result.unwrap_err()).contains("ReferenceValues"));
    let missing = Request::SetManifest(SetManifest {
        manifest: people.manifest(0, 1),
        policies: vec![COORD_POLICY.to_vec()],
        ..SetManifest::default()
    });
    let result = h.call(missing);
    assert!(format!("{}", result.unwrap_err()).contains("no policy provided for hash"));
    let mut extra = policies();
    extra.push(b"unreferenced".to_vec());
    let result = h.call(Request::SetManifest(SetManifest {
        manifest: people.manifest(0, 1),
        policies: extra,
        ..SetManifest::default()
    }));
    assert_eq!(code(&result), "invalid_argument");
    assert_eq!(h.machine.state(), StateName::Uninitialized);
    assert!(h.store.is_empty());
}

#[test]
fn one_update_at_a_time_and_storage_failures() {
    let people = People::new();
    let (mut h, _) = ready(&people, 1);
    let latest = h.latest();
    // Hold the first write: feed the request without running the driver.
    let request = h.signed_update(people.manifest(1, 1), latest, &people.owner);
    let first = h.machine.handle(Input::Request { id: 100, request });
    let Some(Output::Write(batch)) = first.into_iter().next() else {
        panic!("expected a write")
    };
    let request = h.signed_update(people.manifest(2, 1), latest, &people.owner);
    let second = h.machine.handle(Input::Request { id: 101, request });
    assert!(matches!(
        &second[..],
        [Output::Reply {
            id: 101,
            result: Err(ApiError::ManifestConflict(_))
        }]
    ));
    // Reads are served from the committed state meanwhile.
    assert_eq!(h.manifests().manifests.len(), 1);
    // The write fails: Internal, nothing changes.
    let done = h.machine.handle(Input::WriteDone {
        batch: batch.id,
        result: Err(StoreError::Failed("disk full".into())),
    });
    assert!(matches!(
        &done[..],
        [Output::Reply {
            id: 100,
            result: Err(ApiError::Internal(_))
        }]
    ));
    assert_eq!(h.machine.generation(), 1);
    assert_eq!(h.machine.state(), StateName::Ready);

    // The host claims a lost compare-and-swap but the store holds nothing
    // newer: conflict, and the replica keeps its secrets and serves on.
    h.fail_next_write = Some(StoreError::Conflict);
    let result = h.call(h.signed_update(people.manifest(1, 1), latest, &people.owner));
    assert_eq!(code(&result), "manifest_conflict");
    assert_eq!(h.machine.state(), StateName::Ready);
    assert_eq!(h.machine.generation(), 1);

    // A genuine lost compare-and-swap: another replica with the same
    // secrets moved the history on. The reload shows a newer history signed
    // with this deployment's key: now the replica is stale.
    let mut other = Harness::with_store(h.store.clone(), 40);
    other.machine.phase = Phase::Ready(Box::new(clone_ready(&h)));
    set_ok(other.call(other.signed_update(people.manifest(3, 1), latest, &people.owner)));
    let mine = h.signed_update(people.manifest(1, 1), latest, &people.owner);
    h.store = other.store.clone();
    let result = h.call(mine);
    assert_eq!(code(&result), "manifest_conflict");
    assert_eq!(h.machine.state(), StateName::Recovery);
}

/// A copy of `h`'s Ready state (the same secrets, as a peer would get).
fn clone_ready(h: &Harness) -> Ready<'static> {
    let Phase::Ready(ready) = &h.machine.phase else {
        panic!("not ready")
    };
    Ready::new(
        SeedEngine::new(
            ready.engine.seed().clone(),
            ready.engine.salt().clone(),
            &PROVIDER,
        ),
        ready.history_key.clone(),
        ready.ca.clone(),
        ready.loaded.clone(),
    )
}

#[test]
fn a_replica_that_sees_a_newer_history_becomes_stale() {
    let people = People::new();
    let (mut a, _) = ready(&people, 1);
    // Replica B: same store, recovered with the seed share.
    let mut b = Harness::with_store(a.store.clone(), 50);
    assert_eq!(b.machine.state(), StateName::Recovery);
    // A moves on.
    set_ok(a.call(a.signed_update(people.manifest(1, 1), a.latest(), &people.owner)));
    // B learns of it through the watch.
    b.store = a.store.clone();
    let latest = a.store[store::LATEST_KEY].clone();
    b.feed(Input::LatestChanged(latest.clone()));
    assert_eq!(b.machine.state(), StateName::Recovery);
    // A itself ignores its own record.
    assert!(a.machine.handle(Input::LatestChanged(latest)).is_empty());
}

#[test]
fn stale_ready_replica_and_rollback_and_fork() {
    let people = People::new();
    let (mut a, document) = ready(&people, 1);
    let old_store = a.store.clone();
    // B recovers on the same store and is Ready at generation 1.
    let mut b = Harness::with_store(a.store.clone(), 60);
    b.call(b.recover_request(&people, &document, 0)).unwrap();
    assert_eq!(b.machine.state(), StateName::Ready);
    // A updates; B's store view catches up through a snapshot: B is stale.
    set_ok(a.call(a.signed_update(people.manifest(1, 1), a.latest(), &people.owner)));
    b.store = a.store.clone();
    b.feed(Input::Snapshot(Ok(StoreSnapshot {
        objects: a.store.clone(),
    })));
    assert_eq!(b.machine.state(), StateName::Recovery);
    // B recovers at generation 2.
    b.call(b.recover_request(&people, &document, 0)).unwrap();
    assert_eq!(b.machine.generation(), 2);
    // The host rolls the store back to generation 1: B ignores it.
    b.feed(Input::Snapshot(Ok(StoreSnapshot {
        objects: old_store.clone(),
    })));
    assert_eq!(b.machine.state(), StateName::Ready);
    assert_eq!(b.machine.generation(), 2);
    assert!(
        b.warnings.iter().any(|w| w.contains("behind")),
        "{:?}",
        b.warnings
    );

    // A fork: another update on the old store.
    let mut fork = Harness::with_store(old_store, 70);
    fork.call(fork.recover_request(&people, &document, 0))
        .unwrap();
    set_ok(fork.call(fork.signed_update(people.manifest(5, 1), fork.latest(), &people.owner)));
    b.feed(Input::Snapshot(Ok(StoreSnapshot {
        objects: fork.store.clone(),
    })));
    assert_eq!(b.machine.state(), StateName::Ready);
    assert!(
        b.warnings.iter().any(|w| w.contains("FORK")),
        "{:?}",
        b.warnings
    );

    // A recovering replica that has seen generation 2 refuses to recover
    // onto the rolled-back store.
    b.store = fork.store.clone();
    b.machine.phase = Phase::Recovery(Box::new(recovery::Recovering::new(Err("test".into()))));
    b.feed(Input::Snapshot(Ok(StoreSnapshot {
        objects: fork.store.clone(),
    })));
    let result = b.call(b.recover_request(&people, &document, 0));
    assert_eq!(code(&result), "permission_denied", "{result:?}");
    assert!(format!("{}", result.unwrap_err()).contains("forks"));
}

#[test]
fn tampered_store_objects_are_detected() {
    let people = People::new();
    let (h, document) = ready(&people, 1);
    for key in h.store.keys() {
        let mut store = h.store.clone();
        let value = store.get_mut(key).unwrap();
        let middle = value.len() / 2;
        value[middle] ^= 0x01;
        let mut t = Harness::with_store(store, 80);
        assert_eq!(t.machine.state(), StateName::Recovery, "{key}");
        let result = t.call(t.recover_request(&people, &document, 0));
        assert_ne!(code(&result), "ok", "tampered {key} accepted");
        assert_eq!(t.machine.state(), StateName::Recovery, "{key}");
    }
    // A missing object.
    for key in h.store.keys().filter(|k| k.as_str() != store::LATEST_KEY) {
        let mut store = h.store.clone();
        store.remove(key);
        let mut t = Harness::with_store(store, 81);
        let result = t.call(t.recover_request(&people, &document, 0));
        assert_eq!(code(&result), "internal", "{key}: {result:?}");
        assert!(format!("{}", result.unwrap_err()).contains("has no"));
    }
}

#[test]
fn user_recovery_with_threshold_shares() {
    let people = People::new();
    let (mut h, document) = ready(&people, 2);
    let root = h.manifests().root_ca;
    let mesh = h.manifests().mesh_ca;
    let secret = match h.call(mesh_request(1, WEB_POLICY)) {
        Ok(Response::MeshCert(c)) => c.workload_secret.unwrap(),
        other => panic!("{other:?}"),
    };
    h.restart();
    assert_eq!(h.machine.state(), StateName::Recovery);

    // A key that is not a seed-share owner (the transport authenticated
    // it: it holds that key, but the manifest does not name it).
    let stranger = Request::Recover(Recover {
        owner: seedshare::owner_public_key(&[0x77; 32]),
        share: share_of(&people, &document, 0),
        target: h.target(),
        force: false,
    });
    let result = h.call(stranger);
    assert_eq!(code(&result), "permission_denied");
    assert!(format!("{}", result.unwrap_err()).contains("not a seed-share owner"));
    // Owner 1 submitting owner 0's share.
    let swapped = Request::Recover(Recover {
        owner: people.seedshare_key(1),
        share: share_of(&people, &document, 0),
        target: h.target(),
        force: false,
    });
    let result = h.call(swapped);
    assert_eq!(code(&result), "invalid_argument");
    assert!(format!("{}", result.unwrap_err()).contains("seed-share owner 1"));
    // A share bound to another history (what the owner was shown is not
    // what the replica would recover to).
    let Request::Recover(mut elsewhere) = h.recover_request(&people, &document, 0) else {
        unreachable!()
    };
    elsewhere.target.latest_transition = ObjectHash([5; 32]);
    let result = h.call(Request::Recover(elsewhere));
    assert_eq!(code(&result), "manifest_conflict", "{result:?}");
    assert!(format!("{}", result.unwrap_err()).contains("bound to transition"));
    // Ready peers exist: refused unless forced.
    h.feed(Input::ReadyPeers(2));
    let result = h.call(h.recover_request(&people, &document, 0));
    assert_eq!(code(&result), "permission_denied");
    h.feed(Input::ReadyPeers(0));

    // One share from its owner: accepted, not enough.
    match h.call(h.recover_request(&people, &document, 2)) {
        Ok(Response::Recovery(RecoveryProgress::ShareAccepted { have: 1, need: 2 })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(h.machine.state(), StateName::Recovery);
    // The same owner again does not count twice.
    match h.call(h.recover_request(&people, &document, 2)) {
        Ok(Response::Recovery(RecoveryProgress::ShareAccepted { have: 1, need: 2 })) => {}
        other => panic!("{other:?}"),
    }
    match h.call(h.recover_request(&people, &document, 0)) {
        Ok(Response::Recovery(RecoveryProgress::Recovered { generation: 1 })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(h.machine.state(), StateName::Ready);
    let after = h.manifests();
    assert_eq!(
        key_of(&after.root_ca),
        key_of(&root),
        "the root CA key is derived from the seed"
    );
    assert_ne!(
        key_of(&after.mesh_ca),
        key_of(&mesh),
        "user recovery rotates the mesh CA key"
    );
    match h.call(mesh_request(1, WEB_POLICY)) {
        Ok(Response::MeshCert(c)) => {
            assert_eq!(c.workload_secret.unwrap().as_bytes(), secret.as_bytes());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn proofs_on_request() {
    let people = People::new();
    let (mut h, _) = ready(&people, 1);
    let first = h.manifests().signed_tree_head.head;
    for v in 1..5 {
        set_ok(h.call(h.signed_update(people.manifest(v, 1), h.latest(), &people.owner)));
    }
    let m = match h.call(Request::GetManifests(GetManifests {
        consistency_from: Some(first.size),
        inclusion_of: vec![0, 3],
    })) {
        Ok(Response::Manifests(m)) => m,
        other => panic!("{other:?}"),
    };
    let head = m.signed_tree_head.head;
    assert_eq!(head.size, 5);
    crate::history::tree_head::check_newer(
        &PROVIDER,
        &first,
        &head,
        m.consistency_proof.as_deref().unwrap(),
    )
    .unwrap();
    // Inclusion of transition 3, rebuilt from the manifests as a client does.
    let hashes: Vec<ObjectHash> = m
        .manifests
        .iter()
        .map(|b| ObjectHash::of(&PROVIDER, b))
        .collect();
    let history = crate::history::History::from_manifests(&PROVIDER, &hashes);
    assert_eq!(
        history.tree_head(&PROVIDER, &ObjectHash(head.seedshares)),
        head
    );
    let leaf = history.log().leaf_hashes()[3];
    let (index, proof) = &m.inclusion_proofs[1];
    assert_eq!(*index, 3);
    merkle::verify_inclusion(&PROVIDER, &leaf, 3, head.size, proof, &head.root).unwrap();
    // Out of range.
    let bad = h.call(Request::GetManifests(GetManifests {
        consistency_from: Some(9),
        inclusion_of: vec![],
    }));
    assert_eq!(code(&bad), "invalid_argument");
}

#[test]
fn ticks_reload_the_store_while_waiting() {
    let people = People::new();
    let mut a = Harness::new();
    let mut b = Harness::new();
    set_ok(a.call(first_set(people.manifest(0, 1))));
    b.store = a.store.clone();
    // Within the interval: nothing.
    b.feed(Input::Tick(UnixTime(NOW.0 + 1)));
    assert_eq!(b.machine.state(), StateName::Uninitialized);
    b.feed(Input::Tick(UnixTime(NOW.0 + RELOAD_INTERVAL_SECS)));
    assert_eq!(
        b.machine.state(),
        StateName::Recovery,
        "learned of A's history"
    );
    // An unreadable store is not an empty one.
    let (c, _) = Coordinator::new(env(5), NOW, Err(StoreError::Failed("timeout".into())));
    assert_eq!(c.state(), StateName::Recovery);
}
