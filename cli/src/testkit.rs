//! Test support: a real coordinator state machine driven in-process (it is
//! sans-IO) over an in-memory store, with a deterministic RNG, so the
//! client-side checks run against genuine histories, tree heads and
//! proofs.

use std::cell::Cell;
use std::collections::BTreeMap;

use accord_core::coordinator::store::{self, StoreSnapshot};
use accord_core::coordinator::{
    Coordinator, Env, GetManifests, Input, ManifestSet, Output, Request, Response, SetManifest,
    StoreError, WriteBatch,
};
use accord_core::crypto::{CryptoError, SecureRandom, default_provider};
use accord_core::hex;
use accord_core::protocol::get_manifests_reply;
use accord_core::time::UnixTime;
use serde_json::json;

use crate::keys::PrivateKey;
use crate::set_payload::sign_update;
use crate::verify_logic::manifests_from_reply;
use accord_core::protocol::Manifests;

pub const COORD_POLICY: &[u8] = b"coordinator policy (initdata)";
pub const WEB_POLICY: &[u8] = b"web policy (initdata)";
pub const DB_POLICY: &[u8] = b"db policy (initdata)";

const NOW: UnixTime = UnixTime(1_790_000_000);

/// A deterministic RNG: SHA-256 of a counter.
struct TestRng(Cell<u64>);

impl SecureRandom for TestRng {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        for chunk in dest.chunks_mut(32) {
            let n = self.0.get();
            self.0.set(n + 1);
            let block = default_provider().sha256(&[b"cli test rng", &n.to_be_bytes()]);
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
}

/// The deployment's people: two workload owners and one seed-share owner.
pub struct People {
    pub owner: ed25519_dalek::SigningKey,
    pub p384_owner: p384::SecretKey,
    pub seedshare_secret: [u8; 32],
}

pub fn ed25519_spki(key: &ed25519_dalek::SigningKey) -> Vec<u8> {
    let mut out = hex::decode("302a300506032b6570032100").unwrap();
    out.extend_from_slice(key.verifying_key().as_bytes());
    out
}

pub fn policies() -> Vec<Vec<u8>> {
    vec![
        COORD_POLICY.to_vec(),
        WEB_POLICY.to_vec(),
        DB_POLICY.to_vec(),
    ]
}

fn policy_hex(policy: &[u8]) -> String {
    hex::encode(&default_provider().sha256(&[policy]))
}

impl People {
    pub fn new() -> Self {
        Self {
            owner: ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
            p384_owner: p384::SecretKey::from_slice(&[7; 48]).unwrap(),
            seedshare_secret: [0x31; 32],
        }
    }

    pub fn owner_key(&self) -> PrivateKey {
        PrivateKey::Ed25519(self.owner.clone())
    }

    pub fn p384_key(&self) -> PrivateKey {
        PrivateKey::P384(self.p384_owner.clone())
    }

    /// A valid manifest; `variant` changes the web SANs so each differs.
    pub fn manifest(&self, variant: u32) -> Vec<u8> {
        let seedshare = accord_core::seedshare::owner_public_key(&self.seedshare_secret);
        let doc = json!({
            "Policies": {
                policy_hex(COORD_POLICY): {"SANs": ["coordinator"], "Role": "coordinator"},
                policy_hex(WEB_POLICY): {"SANs": [format!("web-{variant}")], "WorkloadSecretID": "web"},
                policy_hex(DB_POLICY): {"SANs": ["db"]}
            },
            "ReferenceValues": {"snp": [{
                "ProductName": "Milan",
                "TrustedMeasurement": "05c5".repeat(24),
                "MinimumTCB": {"BootloaderVersion": 3, "TEEVersion": 0, "SNPVersion": 23, "MicrocodeVersion": 213}
            }]},
            "WorkloadOwnerPubKeys": [
                self.owner_key().public_hex(),
                self.p384_key().public_hex(),
            ],
            "SeedshareOwnerPubKeys": [format!("302a300506032b656e032100{}", hex::encode(&seedshare.0))],
            "SeedshareThreshold": 1
        });
        serde_json::to_vec_pretty(&doc).unwrap()
    }
}

/// A coordinator and its in-memory store.
pub struct Harness {
    pub store: BTreeMap<String, Vec<u8>>,
    machine: Coordinator<'static>,
    next_id: u64,
}

impl Harness {
    /// A fresh coordinator; the same `seed` gives the same secrets (so the
    /// same history key).
    pub fn new(seed: u64) -> Self {
        let rng: &'static TestRng = Box::leak(Box::new(TestRng(Cell::new(seed << 32))));
        let env = Env {
            provider: default_provider(),
            rng,
        };
        let (machine, _) = Coordinator::new(env, NOW, Ok(StoreSnapshot::default()));
        Self {
            store: BTreeMap::new(),
            machine,
            next_id: 1,
        }
    }

    fn apply(&mut self, batch: WriteBatch) -> Result<(), StoreError> {
        if self.store.get(store::LATEST_KEY) != batch.latest_old.as_ref() {
            return Err(StoreError::Conflict);
        }
        self.store.extend(batch.puts);
        self.store
            .insert(store::LATEST_KEY.into(), batch.latest_new);
        Ok(())
    }

    fn call(&mut self, request: Request) -> Result<Response, accord_core::coordinator::ApiError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut queue = vec![Input::Request { id, request }];
        let mut reply = None;
        while let Some(input) = queue.pop() {
            for output in self.machine.handle(input) {
                match output {
                    Output::Reply { id: got, result } => {
                        assert_eq!(got, id);
                        reply = Some(result);
                    }
                    Output::Write(batch) => queue.push(Input::WriteDone {
                        batch: batch.id,
                        result: self.apply(batch),
                    }),
                    Output::LoadSnapshot => queue.push(Input::Snapshot(Ok(StoreSnapshot {
                        objects: self.store.clone(),
                    }))),
                    Output::StateChanged(_)
                    | Output::Warning(_)
                    | Output::Forged(_)
                    | Output::StartPeerRecovery(_)
                    | Output::PeerRecoveryEnded { .. } => {}
                }
            }
        }
        reply.expect("one reply")
    }

    fn set(&mut self, request: SetManifest) -> ManifestSet {
        match self.call(Request::SetManifest(request)) {
            Ok(Response::ManifestSet(set)) => set,
            other => panic!("SetManifest: {other:?}"),
        }
    }

    /// Sets the first manifest.
    pub fn set_first(&mut self, manifest: Vec<u8>) -> ManifestSet {
        self.set(SetManifest {
            manifest,
            policies: policies(),
            ..SetManifest::default()
        })
    }

    /// The latest transition (from the store).
    pub fn latest(&self) -> [u8; 32] {
        store::LatestRecord::decode(&self.store[store::LATEST_KEY])
            .unwrap()
            .transition
            .0
    }

    /// An update signed with the CLI's own [`sign_update`].
    pub fn update(&mut self, manifest: Vec<u8>, key: &PrivateKey) -> ManifestSet {
        let deployment = self.machine.history_public_key().expect("ready");
        let signature =
            sign_update(key, &manifest, Some(self.latest()), deployment, false).unwrap();
        self.set(SetManifest {
            manifest,
            policies: policies(),
            expected_previous_transition: Some(self.latest()),
            signatures: vec![accord_core::coordinator::OwnerSignature {
                public_key: signature.public_key,
                signature: signature.signature,
            }],
            reshare: false,
        })
    }

    /// `GetManifests`, through the wire conversion.
    pub fn reply(&mut self, consistency_from: Option<u64>) -> Manifests {
        self.reply_with(consistency_from, vec![])
    }

    /// `GetManifests` with inclusion proofs.
    pub fn reply_with(
        &mut self,
        consistency_from: Option<u64>,
        inclusion_of: Vec<u64>,
    ) -> Manifests {
        let result = self.call(Request::GetManifests(GetManifests {
            consistency_from,
            inclusion_of,
        }));
        manifests_from_reply(get_manifests_reply(result)).unwrap()
    }
}
