//! Tests of the pins: every refusal of the statement check and of the
//! chain check by name, each from a good fixture with one thing changed;
//! the fail-closed configuration check; the parsers of the flags.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use alloc::{format, vec};
use core::cell::Cell;

use elliptic_curve::sec1::ToSec1Point;

use super::*;
use crate::ca::{Ca, WorkloadCertRequest};
use crate::crypto::{CryptoError, SecureRandom, all_providers, default_provider};
use crate::der::write;
use crate::evidence::snp::SnpReferenceValues;
use crate::kdf::{MeshCaKey, Salt, SecretSeed, SeedEngine};
use crate::protocol::Sharing;
use crate::time::UnixTime;

/// 2026-03-01T00:00:00Z
const NOW: UnixTime = UnixTime(1_772_323_200);

/// A counter-based byte source (not random; enough for certificates).
struct Counter(Cell<u8>);

impl SecureRandom for Counter {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        for b in dest {
            let v = self.0.get();
            *b = v;
            self.0.set(v.wrapping_add(13));
        }
        Ok(())
    }
}

const A: [u8; 32] = [0xa1; 32];
const B: [u8; 32] = [0xb2; 32];
const C: [u8; 32] = [0xc3; 32];
const D: [u8; 32] = [0xd4; 32];

fn ed25519_spki(seed: u8) -> String {
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key();
    format!("302a300506032b6570032100{}", hex::encode(key.as_bytes()))
}

fn owner(seed: u8) -> OwnerKey {
    OwnerKey::from_hex(&ed25519_spki(seed)).unwrap()
}

/// Pinned: A, B, C with threshold 2, workload owner 1.
fn pins() -> DeploymentPins {
    DeploymentPins {
        seedshare_owners: vec![SeedshareKey(A), SeedshareKey(B), SeedshareKey(C)],
        seedshare_threshold: 2,
        workload_owners: Some(vec![owner(1)]),
        root_ca_spki_sha256: None,
    }
}

/// What the pinned deployment's coordinator states: one 2-of-3 sharing,
/// workload owner 1.
fn statement() -> DeploymentStatement {
    DeploymentStatement {
        sharings: vec![Sharing {
            threshold: 2,
            owners: vec![A, B, C],
        }],
        workload_owners: vec![ed25519_spki(1)],
        generation: 3,
    }
}

/// A change to the statement fixture (or the pins).
type StatementChange = Box<dyn FnOnce(&mut DeploymentPins, &mut DeploymentStatement)>;

/// A change to the reply fixture (or the pins).
type ReplyChange = Box<dyn FnOnce(&mut DeploymentPins, &mut Reply)>;

/// The statement check on the fixture changed by `change`.
fn check(
    change: impl FnOnce(&mut DeploymentPins, &mut DeploymentStatement),
) -> Result<(), Refusal> {
    let (mut pins, mut statement) = (pins(), statement());
    change(&mut pins, &mut statement);
    check_statement(&pins, &statement)
}

#[test]
fn the_pinned_deployment_passes() {
    assert_eq!(check(|_, _| {}), Ok(()));
    // A re-share among pinned owners with a higher threshold, in any
    // order, keeps every sharing acceptable.
    assert_eq!(
        check(|_, s| s.sharings.push(Sharing {
            threshold: 3,
            owners: vec![C, A, B],
        })),
        Ok(())
    );
    // A sharing among a subset of the pinned owners.
    assert_eq!(check(|_, s| s.sharings[0].owners = vec![B, C]), Ok(()));
    // Keys are compared parsed: the same key in upper case hex is the same.
    assert_eq!(
        check(|_, s| s.workload_owners = vec![ed25519_spki(1).to_ascii_uppercase()]),
        Ok(())
    );
    // No workload owner stated: nobody can sign a re-share.
    assert_eq!(check(|_, s| s.workload_owners.clear()), Ok(()));
}

#[test]
fn every_statement_refusal_by_name() {
    let cases: Vec<(&str, StatementChange, Refusal)> = vec![
        (
            "no-sharing",
            Box::new(|_, s| s.sharings.clear()),
            Refusal::NoSharing { pinned_owners: 3 },
        ),
        (
            "seedshare-owner",
            Box::new(|_, s| s.sharings[0].owners = vec![A, D]),
            Refusal::SharingOwnerNotPinned {
                sharing: 0,
                owner: D,
                pinned_owners: 3,
            },
        ),
        (
            "seedshare-owner",
            // The host's own key in an earlier generation, re-shared to
            // the pinned owners since: the old sharing still counts.
            Box::new(|_, s| {
                s.sharings.insert(
                    0,
                    Sharing {
                        threshold: 1,
                        owners: vec![D],
                    },
                );
            }),
            Refusal::SharingOwnerNotPinned {
                sharing: 0,
                owner: D,
                pinned_owners: 3,
            },
        ),
        (
            "seedshare-owner",
            Box::new(|_, s| s.sharings[0].owners = vec![A, B, A]),
            Refusal::SharingOwnerRepeated {
                sharing: 0,
                owner: A,
            },
        ),
        (
            "seedshare-threshold",
            Box::new(|_, s| {
                s.sharings.push(Sharing {
                    threshold: 1,
                    owners: vec![A, B, C],
                });
            }),
            Refusal::SharingThresholdTooLow {
                sharing: 1,
                threshold: 1,
                pinned: 2,
            },
        ),
        (
            "workload-owner",
            Box::new(|_, s| s.workload_owners.push(ed25519_spki(2))),
            Refusal::WorkloadOwnerNotPinned {
                owner: ed25519_spki(2),
                pinned_owners: 1,
            },
        ),
        (
            "workload-owner",
            Box::new(|_, s| s.workload_owners = vec!["zz".into()]),
            Refusal::WorkloadOwnerUnreadable {
                owner: "zz".into(),
                reason: OwnerKey::from_hex("zz").unwrap_err(),
            },
        ),
    ];
    for (name, change, expected) in cases {
        let got = check(change).unwrap_err();
        assert_eq!(got, expected);
        assert_eq!(got.check(), name);
        let text = got.to_string();
        assert!(text.starts_with(&format!("check {name}: ")), "{text}");
    }
}

#[test]
fn the_statement_check_is_limited_to_what_is_pinned() {
    // Without pinned workload owners, any workload owner passes.
    assert_eq!(
        check(|p, s| {
            p.workload_owners = None;
            s.workload_owners.push(ed25519_spki(2));
        }),
        Ok(())
    );
    // Only the root CA pinned: the sharings are the deployment's own
    // business (the root names the seed), and the chain check compares
    // the root.
    assert_eq!(
        check(|p, s| {
            p.seedshare_owners.clear();
            p.root_ca_spki_sha256 = Some([1; 32]);
            s.sharings = vec![Sharing {
                threshold: 1,
                owners: vec![D],
            }];
        }),
        Ok(())
    );
}

#[test]
fn the_texts_name_expected_and_got() {
    let text = check(|_, s| s.sharings[0].owners = vec![D])
        .unwrap_err()
        .to_string();
    assert!(text.contains(&hex::encode(&D)), "{text}");
    assert!(text.contains("3 pinned owner(s)"), "{text}");
    let text = check(|_, s| s.sharings[0].threshold = 1)
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("needs 1 owner(s), expected at least the pinned 2"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------
// The chain

fn p256_spki(byte: u8) -> Vec<u8> {
    let secret = p256::SecretKey::from_bytes(&[byte; 32].into()).unwrap();
    let point = secret.public_key().as_affine().to_sec1_point(false);
    write::seq(&[
        &write::seq(&[
            &write::oid(crate::x509::oid::EC_PUBLIC_KEY),
            &write::oid(crate::x509::oid::P256),
        ]),
        &write::bits(point.as_bytes()),
    ])
}

/// A CA whose root comes from seed byte `seed` and whose mesh key from
/// `mesh`.
fn ca(seed: u8, mesh: u8) -> Ca {
    let root = SeedEngine::new(
        SecretSeed::from_bytes([seed; 64]),
        Salt::from_bytes([2; 32]),
        default_provider(),
    )
    .root_ca_key()
    .unwrap();
    let mesh = MeshCaKey::from_scalar_bytes([mesh; 48]).unwrap();
    Ca::new(&root, mesh, NOW, &Counter(Cell::new(1))).unwrap()
}

fn leaf(ca: &Ca, spki: &[u8]) -> Vec<u8> {
    ca.issue(
        &WorkloadCertRequest {
            public_key_spki: spki,
            sans: &["web".to_string()],
            workload_secret_id: Some("web"),
            claims: None,
        },
        NOW,
        &Counter(Cell::new(5)),
    )
    .unwrap()
}

/// A reply as the coordinator would send it.
struct Reply {
    own_spki: Vec<u8>,
    chain: Vec<Vec<u8>>,
    mesh_ca: Vec<u8>,
    root_ca: Vec<u8>,
}

fn reply() -> Reply {
    let ca = ca(1, 3);
    let own_spki = p256_spki(7);
    Reply {
        chain: vec![leaf(&ca, &own_spki), ca.intermediate_cert().to_vec()],
        mesh_ca: ca.mesh_ca_cert().to_vec(),
        root_ca: ca.root_cert().to_vec(),
        own_spki,
    }
}

fn root_digest(reply: &Reply) -> [u8; 32] {
    let root = Certificate::from_der(&reply.root_ca).unwrap();
    default_provider().sha256(&[root.spki_der()])
}

/// The chain check on the fixture changed by `change` (root CA pinned to
/// the fixture's), with every provider; the result of the last.
fn check_reply(change: impl FnOnce(&mut DeploymentPins, &mut Reply)) -> Result<(), Refusal> {
    let mut r = reply();
    let mut pins = pins();
    pins.root_ca_spki_sha256 = Some(root_digest(&r));
    change(&mut pins, &mut r);
    let mut last = Ok(());
    for provider in all_providers() {
        last = check_chain(
            *provider,
            &pins,
            &r.own_spki,
            &r.chain,
            &r.mesh_ca,
            &r.root_ca,
        );
    }
    last
}

/// Where `part` (a slice borrowed from `whole`) starts in `whole`.
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

#[test]
fn an_honest_chain_passes() {
    assert_eq!(check_reply(|_, _| {}), Ok(()));
    assert_eq!(check_reply(|p, _| p.root_ca_spki_sha256 = None), Ok(()));
    let r = reply();
    assert_eq!(
        check_mesh_cert(
            default_provider(),
            &pins(),
            &r.own_spki,
            &r.chain,
            &r.mesh_ca,
            &r.root_ca,
            &statement()
        ),
        Ok(())
    );
}

#[test]
fn every_chain_refusal_by_name() {
    let other = ca(9, 8);
    let other_root = other.root_cert().to_vec();
    let other_intermediate = other.intermediate_cert().to_vec();
    let other_mesh = other.mesh_ca_cert().to_vec();
    let cases: Vec<(&str, ReplyChange)> = vec![
        ("chain-shape", Box::new(|_, r| drop(r.chain.pop()))),
        (
            "chain-shape",
            Box::new(|_, r| {
                let extra = r.root_ca.clone();
                r.chain.push(extra);
            }),
        ),
        ("certificate", Box::new(|_, r| r.chain[0] = vec![0x30, 0])),
        ("certificate", Box::new(|_, r| r.root_ca.truncate(10))),
        ("leaf-key", Box::new(|_, r| r.own_spki = p256_spki(8))),
        (
            // A leaf for our key from another CA.
            "leaf-issuer",
            Box::new(move |_, r| r.chain[0] = leaf(&ca(9, 8), &r.own_spki)),
        ),
        (
            // Another deployment's mesh CA.
            "mesh-ca",
            Box::new(move |_, r| r.mesh_ca = other_mesh),
        ),
        (
            // The mesh CA with the intermediate's key under another name.
            "mesh-ca",
            Box::new(|_, r| {
                let cert = Certificate::from_der(&r.mesh_ca).unwrap();
                let subject = cert.subject_raw();
                let last = offset_in(&r.mesh_ca, subject) + subject.len() - 1;
                r.mesh_ca[last] = if r.mesh_ca[last] == b'x' { b'y' } else { b'x' };
            }),
        ),
        (
            // Our intermediate, another deployment's root.
            "intermediate-issuer",
            Box::new(move |p, r| {
                r.root_ca = other_root;
                p.root_ca_spki_sha256 = None;
            }),
        ),
        (
            // Another deployment's intermediate and mesh CA, and a leaf
            // of its: only the root is ours.
            "intermediate-issuer",
            Box::new(move |_, r| {
                let other = ca(9, 8);
                r.chain = vec![leaf(&other, &r.own_spki), other_intermediate];
                r.mesh_ca = other.mesh_ca_cert().to_vec();
            }),
        ),
        (
            // The root's key and name, its signature over other bytes.
            "root-self-signed",
            Box::new(|_, r| {
                let cert = Certificate::from_der(&r.root_ca).unwrap();
                let serial = cert.serial();
                let last = offset_in(&r.root_ca, serial) + serial.len() - 1;
                r.root_ca[last] ^= 1;
            }),
        ),
        (
            "root-ca-pin",
            Box::new(|p, _| p.root_ca_spki_sha256 = Some([0x42; 32])),
        ),
    ];
    for (name, change) in cases {
        let got = check_reply(change).unwrap_err();
        assert_eq!(got.check(), name, "{got}");
    }
}

#[test]
fn chain_refusals_name_expected_and_got() {
    let r = reply();
    let got = check_reply(|p, _| p.root_ca_spki_sha256 = Some([0x42; 32])).unwrap_err();
    assert_eq!(
        got,
        Refusal::RootCaPin {
            expected: [0x42; 32],
            got: root_digest(&r),
        }
    );
    let text = got.to_string();
    assert!(text.contains(&"42".repeat(32)), "{text}");
    assert!(text.contains(&hex::encode(&root_digest(&r))), "{text}");

    let got = check_reply(|_, r| r.own_spki = p256_spki(8)).unwrap_err();
    assert_eq!(
        got,
        Refusal::LeafKeyNotOurs {
            expected: default_provider().sha256(&[&p256_spki(8)]),
            got: default_provider().sha256(&[&r.own_spki]),
        }
    );
    assert_eq!(
        check_reply(|_, r| drop(r.chain.pop())),
        Err(Refusal::ChainShape { got: 1 })
    );
}

/// The statement is checked before the chain: a reply from a deployment
/// the workload does not pin is refused for that, whatever its chain.
#[test]
fn the_statement_comes_first() {
    let r = reply();
    let mut statement = statement();
    statement.sharings[0].owners = vec![D];
    let got = check_mesh_cert(
        default_provider(),
        &pins(),
        &r.own_spki,
        &[],
        &r.mesh_ca,
        &r.root_ca,
        &statement,
    )
    .unwrap_err();
    assert_eq!(got.check(), "seedshare-owner");
}

// ---------------------------------------------------------------------------
// Configuration and parsing

fn snp_reference() -> SnpReferenceValues {
    let json = serde_json::json!({
        "ProductName": "Genoa",
        "TrustedMeasurement": "00".repeat(48),
        "MinimumTCB": {"BootloaderVersion": 0, "TEEVersion": 0, "SNPVersion": 0, "MicrocodeVersion": 0},
    });
    serde_json::from_value(json).unwrap()
}

fn coordinator_pins() -> CoordinatorPins {
    CoordinatorPins {
        policy_hashes: vec![[7; 32]],
        reference: ReferenceValues {
            snp: vec![snp_reference()],
            tdx: Vec::new(),
        },
        deployment: pins(),
    }
}

#[test]
fn nothing_pinned_fails_closed() {
    let check = |change: fn(&mut CoordinatorPins)| {
        let mut pins = coordinator_pins();
        change(&mut pins);
        pins.check()
    };
    assert_eq!(check(|_| {}), Ok(()));
    assert_eq!(
        check(|p| p.policy_hashes.clear()),
        Err(PinsError::NoCoordinatorPolicy)
    );
    assert_eq!(
        check(|p| p.reference = ReferenceValues::default()),
        Err(PinsError::NoReferenceValues)
    );
    assert_eq!(
        check(|p| p.deployment.seedshare_owners.clear()),
        Err(PinsError::NoDeploymentPin)
    );
    assert_eq!(
        check(|p| {
            p.deployment.seedshare_owners.clear();
            p.deployment.root_ca_spki_sha256 = Some([1; 32]);
        }),
        Ok(())
    );
    assert_eq!(
        check(|p| p.deployment.seedshare_threshold = 0),
        Err(PinsError::ThresholdZero)
    );
    assert_eq!(
        check(|p| p.deployment.seedshare_threshold = 4),
        Err(PinsError::ThresholdAboveOwners {
            threshold: 4,
            owners: 3
        })
    );
    // Owners are counted once.
    assert_eq!(
        check(|p| {
            p.deployment.seedshare_owners = vec![SeedshareKey(A), SeedshareKey(A)];
        }),
        Err(PinsError::ThresholdAboveOwners {
            threshold: 2,
            owners: 1
        })
    );
}

#[test]
fn seedshare_owners_parse_raw_or_as_spki() {
    let raw = hex::encode(&A);
    let spki = format!("302a300506032b656e032100{raw}");
    assert_eq!(parse_seedshare_owner(&raw), Ok(SeedshareKey(A)));
    assert_eq!(parse_seedshare_owner(&spki), Ok(SeedshareKey(A)));
    assert_eq!(
        parse_seedshare_owner(&spki.to_ascii_uppercase()),
        Ok(SeedshareKey(A))
    );
    assert!(
        parse_seedshare_owner(&"00".repeat(32))
            .unwrap_err()
            .contains("all zeros")
    );
    assert!(parse_seedshare_owner(&ed25519_spki(1)).is_err());
    assert!(parse_seedshare_owner("xyz").is_err());
}

#[test]
fn reference_values_parse_as_in_a_manifest() {
    let good = serde_json::to_vec(&ReferenceValues {
        snp: vec![snp_reference()],
        tdx: Vec::new(),
    })
    .unwrap();
    assert_eq!(
        parse_reference_values(&good).unwrap().snp,
        vec![snp_reference()]
    );
    let err = parse_reference_values(br#"{"snp":[{"ProductName":"Genoa"}]}"#).unwrap_err();
    assert!(
        err.contains("ReferenceValues.snp[0].TrustedMeasurement"),
        "{err}"
    );
    let err = parse_reference_values(br#"{"snp":[],"snp":[]}"#).unwrap_err();
    assert!(err.contains("duplicate"), "{err}");
    let err = parse_reference_values(b"{}").unwrap_err();
    assert!(err.contains("no snp or tdx entry"), "{err}");
    assert!(parse_reference_values(b"{\"snp\":[]} trailing").is_err());
}

#[test]
fn a_manifest_pins_its_deployment() {
    let coordinator = hex::encode(&[7; 32]);
    let manifest = serde_json::json!({
        "Policies": {coordinator: {"SANs": ["coordinator"], "Role": "coordinator"}},
        "ReferenceValues": {"snp": [snp_reference()]},
        "WorkloadOwnerPubKeys": [ed25519_spki(1)],
        "SeedshareOwnerPubKeys": [format!("302a300506032b656e032100{}", hex::encode(&A))],
        "SeedshareThreshold": 1,
    });
    let manifest = Manifest::from_json(&serde_json::to_vec(&manifest).unwrap()).unwrap();
    let pins = CoordinatorPins::from_manifest(manifest.doc());
    assert_eq!(pins.policy_hashes, vec![[7; 32]]);
    assert_eq!(pins.reference.snp, vec![snp_reference()]);
    assert_eq!(
        pins.deployment,
        DeploymentPins {
            seedshare_owners: vec![SeedshareKey(A)],
            seedshare_threshold: 1,
            workload_owners: Some(vec![owner(1)]),
            root_ca_spki_sha256: None,
        }
    );
    assert_eq!(pins.check(), Ok(()));
}
