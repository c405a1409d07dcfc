//! Golden byte vectors (the same as in `docs/protocol.md`), round trips,
//! and refusal of truncated, oversized and trailing-byte frames.

use alloc::vec;
use alloc::vec::Vec;

use serde::Serialize;

use super::*;
use crate::hex;
use crate::seedshare::SeedShareDocument;

/// (name, frame hex, message) — `docs/protocol.md` lists the same frames.
fn golden() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    vec![
        (
            "Hello{versions:[2], api:User}",
            "00000003010200",
            encode(
                &Hello {
                    versions: vec![2],
                    api: Api::User,
                },
                MAX_USER_FRAME,
            )
            .unwrap(),
        ),
        (
            "HelloReply::Accepted{version:2}",
            "000000020002",
            encode(&HelloReply::Accepted { version: 2 }, MAX_USER_FRAME).unwrap(),
        ),
        (
            "UserRequest::GetRecoveryState(GetRecoveryState{consistency_from:Some(1)})",
            "00000003030101",
            encode(
                &UserRequest::from(GetRecoveryState {
                    consistency_from: Some(1),
                }),
                MAX_USER_FRAME,
            )
            .unwrap(),
        ),
        (
            "MeshRequest::NewMeshCert",
            "0000000100",
            encode(&MeshRequest::NewMeshCert, MAX_MESH_FRAME).unwrap(),
        ),
        (
            "MeshRequest::PeerRecover",
            "0000000101",
            encode(&MeshRequest::PeerRecover, MAX_MESH_FRAME).unwrap(),
        ),
        (
            "NewMeshCertReply::MeshCert{cert_chain:[[30]], mesh_ca:[01], root_ca:[02], workload_secret:None, deployment:{[], [], 3}}",
            "0000000c000101300101010200000003",
            encode(&NewMeshCertReply::MeshCert(small_cert()), MAX_MESH_FRAME).unwrap(),
        ),
        (
            "NewMeshCertReply::Error{NeedsRecovery, \"x\"}",
            "0000000401010178",
            encode(
                &NewMeshCertReply::Error(ErrorReply {
                    code: ErrorCode::NeedsRecovery,
                    message: "x".into(),
                }),
                MAX_MESH_FRAME,
            )
            .unwrap(),
        ),
        (
            "PeerRecoverReply::Error{NeedsRecovery, \"x\"}",
            "0000000401010178",
            encode(
                &PeerRecoverReply::Error(ErrorReply {
                    code: ErrorCode::NeedsRecovery,
                    message: "x".into(),
                }),
                MAX_MESH_FRAME,
            )
            .unwrap(),
        ),
        (
            "UserRequest::GetManifests(GetManifests{consistency_from:Some(3), inclusion_of:[0,2]})",
            "00000006010103020002",
            encode(
                &UserRequest::from(GetManifests {
                    consistency_from: Some(3),
                    inclusion_of: vec![0, 2],
                }),
                MAX_USER_FRAME,
            )
            .unwrap(),
        ),
        (
            "UserRequest::SetManifest(SetManifest{manifest:{}, policies:[p], None, [], false})",
            "0000000a00027b7d010170000000",
            encode(&UserRequest::from(small_set()), MAX_USER_FRAME).unwrap(),
        ),
        (
            "UserRequest::Recover(Recover{[1;32], [2;32], [03], [4;32], [5;32], true})",
            "0000008402010101010101010101010101010101010101010101010101010101010101010102\
             0202020202020202020202020202020202020202020202020202020202020201030404040404\
             0404040404040404040404040404040404040404040404040404040505050505050505050505\
             05050505050505050505050505050505050505050501",
            encode(&UserRequest::from(small_recover()), MAX_USER_FRAME).unwrap(),
        ),
        (
            "SetManifestReply::ManifestSet(ManifestSet{[1;32], 2, [03], [04], None})",
            "0000002700010101010101010101010101010101010101010101010101010101010101010102\
             0103010400",
            encode(
                &SetManifestReply::ManifestSet(small_manifest_set()),
                MAX_USER_FRAME,
            )
            .unwrap(),
        ),
        (
            "GetManifestsReply::Manifests(Manifests{[{}], [], [01], [02], [3;32], [04], [5;32], None, [], [06]})",
            "000000500101027b7d0001010102030303030303030303030303030303030303030303030303\
             0303030303030303010405050505050505050505050505050505050505050505050505050505\
             0505050500000106",
            encode(
                &GetManifestsReply::Manifests(small_manifests()),
                MAX_USER_FRAME,
            )
            .unwrap(),
        ),
        (
            "RecoverReply::Recovery(ShareAccepted{have:1, need:2, recovered:Some(3)})",
            "000000050201020103",
            encode(&RecoverReply::Recovery(small_accepted()), MAX_USER_FRAME).unwrap(),
        ),
        (
            "GetRecoveryStateReply::RecoveryState(RecoveryState{Ready, [1;32], [2;32], None, [03], [04], {}, None, 1, 2, 3, [5;32]})",
            "0000006e04020101010101010101010101010101010101010101010101010101010101010101\
             0202020202020202020202020202020202020202020202020202020202020202000103010402\
             7b7d000102030505050505050505050505050505050505050505050505050505050505050505",
            encode(
                &GetRecoveryStateReply::RecoveryState(small_recovery_state()),
                MAX_USER_FRAME,
            )
            .unwrap(),
        ),
        (
            "SetManifestReply::Error{NeedsRecovery, \"x\"}",
            "0000000403010178",
            encode(&SetManifestReply::Error(needs_recovery()), MAX_USER_FRAME).unwrap(),
        ),
        (
            "GetManifestsReply::Error{NeedsRecovery, \"x\"}",
            "0000000403010178",
            encode(&GetManifestsReply::Error(needs_recovery()), MAX_USER_FRAME).unwrap(),
        ),
        (
            "RecoverReply::Error{NeedsRecovery, \"x\"}",
            "0000000403010178",
            encode(&RecoverReply::Error(needs_recovery()), MAX_USER_FRAME).unwrap(),
        ),
        (
            "GetRecoveryStateReply::Error{NeedsRecovery, \"x\"}",
            "0000000403010178",
            encode(
                &GetRecoveryStateReply::Error(needs_recovery()),
                MAX_USER_FRAME,
            )
            .unwrap(),
        ),
        (
            "UserError::Error{NeedsRecovery, \"x\"}",
            "0000000403010178",
            encode(&UserError::Error(needs_recovery()), MAX_USER_FRAME).unwrap(),
        ),
        (
            "Hello{versions:[3], api:Shim}",
            "00000003010302",
            encode(
                &Hello {
                    versions: vec![shim::SHIM_VERSION],
                    api: Api::Shim,
                },
                1024,
            )
            .unwrap(),
        ),
        (
            "ShimRequest::ReportStatus(AgentStatus::default())",
            "0000001304000000000000000000000000000000000000",
            encode(
                &shim::ShimRequest::ReportStatus(shim::AgentStatus::default()),
                shim::MAX_SHIM_FRAME,
            )
            .unwrap(),
        ),
        (
            "ShimRequest::Collateral(SnpCrl{product:Genoa, signer:Vcek})",
            "0000000405020100",
            encode(
                &shim::ShimRequest::Collateral(
                    crate::evidence::collateral::CollateralRequest::SnpCrl {
                        product: crate::evidence::snp::Product::Genoa,
                        signer: crate::evidence::collateral::SnpSigner::Vcek,
                    },
                ),
                shim::MAX_SHIM_FRAME,
            )
            .unwrap(),
        ),
        (
            "ShimResponse::Collateral{bytes:[30], source:Cache, age_secs:3}",
            "000000050701300103",
            encode(
                &shim::ShimResponse::Collateral {
                    bytes: vec![0x30],
                    source: shim::CollateralSource::Cache,
                    age_secs: 3,
                },
                shim::MAX_SHIM_FRAME,
            )
            .unwrap(),
        ),
    ]
}

fn needs_recovery() -> ErrorReply {
    ErrorReply {
        code: ErrorCode::NeedsRecovery,
        message: "x".into(),
    }
}

fn small_set() -> SetManifest {
    SetManifest {
        manifest: b"{}".to_vec(),
        policies: vec![b"p".to_vec()],
        expected_previous_transition: None,
        signatures: vec![],
        reshare: false,
    }
}

fn small_recover() -> Recover {
    Recover {
        owner: [1; 32],
        encapsulated_key: [2; 32],
        ciphertext: vec![3],
        latest_transition: [4; 32],
        seedshares: [5; 32],
        force: true,
    }
}

fn small_manifest_set() -> ManifestSet {
    ManifestSet {
        transition: [1; 32],
        generation: 2,
        root_ca: vec![3],
        mesh_ca: vec![4],
        seed_share_document: None,
    }
}

fn small_manifests() -> Manifests {
    Manifests {
        manifests: vec![b"{}".to_vec()],
        policies: vec![],
        root_ca: vec![1],
        mesh_ca: vec![2],
        latest_transition: [3; 32],
        signed_tree_head: vec![4],
        history_public_key: [5; 32],
        consistency_proof: None,
        inclusion_proofs: vec![],
        seedshare_record: vec![6],
    }
}

fn small_accepted() -> ShareAccepted {
    ShareAccepted {
        have: 1,
        need: 2,
        recovered: Some(3),
    }
}

fn small_recovery_state() -> RecoveryState {
    RecoveryState {
        state: ReplicaState::Ready,
        latest_transition: [1; 32],
        transition_manifest: [2; 32],
        transition_previous: None,
        signed_tree_head: vec![3],
        seedshare_record: vec![4],
        manifest: b"{}".to_vec(),
        consistency_proof: None,
        have: 1,
        need: 2,
        ready_peers: 3,
        recovery_key: [5; 32],
    }
}

fn small_cert() -> MeshCert {
    MeshCert {
        cert_chain: vec![vec![0x30]],
        mesh_ca: vec![1],
        root_ca: vec![2],
        workload_secret: None,
        deployment: DeploymentStatement {
            sharings: vec![],
            workload_owners: vec![],
            generation: 3,
        },
    }
}

fn secrets() -> PeerSecrets {
    PeerSecrets {
        seed: zeroize::Zeroizing::new(vec![1; 64]),
        salt: [2; 32],
        mesh_key: zeroize::Zeroizing::new(vec![3; 48]),
        latest_transition: [4; 32],
    }
}

/// The mesh API's replies keep the variant indices of the one reply enum
/// they replace (`0` MeshCert, `1` Error, `2` PeerSecrets): the bytes on
/// the wire are those of protocol version 2.
#[test]
fn peer_secrets_keep_their_wire_index() {
    let frame = encode(&PeerRecoverReply::PeerSecrets(secrets()), MAX_MESH_FRAME).unwrap();
    // Index 2, seed (64 bytes), salt (32), mesh key (48), transition (32).
    let expected = alloc::format!(
        "000000b3 02 40{} {} 30{} {}",
        "01".repeat(64),
        "02".repeat(32),
        "03".repeat(48),
        "04".repeat(32)
    )
    .replace(' ', "");
    assert_eq!(hex::encode(&frame), expected);
}

/// A client decodes the reply to its own request: a variant that answers
/// the other request is refused, not passed on.
#[test]
fn a_reply_to_the_other_request_does_not_decode() {
    let cert = encode(&NewMeshCertReply::MeshCert(small_cert()), MAX_MESH_FRAME).unwrap();
    let secrets = encode(&PeerRecoverReply::PeerSecrets(secrets()), MAX_MESH_FRAME).unwrap();
    assert!(decode::<NewMeshCertReply>(&cert[4..]).is_ok());
    assert!(decode::<PeerRecoverReply>(&secrets[4..]).is_ok());
    assert!(decode::<PeerRecoverReply>(&cert[4..]).is_err());
    assert!(decode::<NewMeshCertReply>(&secrets[4..]).is_err());
    // Unknown indices are refused too.
    assert!(decode::<NewMeshCertReply>(&[3]).is_err());
    assert!(decode::<PeerRecoverReply>(&[0]).is_err());
}

#[test]
fn golden_frames() {
    for (name, expected, frame) in golden() {
        assert_eq!(hex::encode(&frame), expected, "{name}");
    }
}

/// The user API's messages as protocol version 2 first defined them: one
/// request enum and one reply enum of struct variants. Only for checking
/// that the request structs and the reply types of their own encode the
/// same bytes.
mod v2 {
    use alloc::vec::Vec;

    use serde::Serialize;

    use super::{ErrorReply, OwnerSignature, ReplicaState, SeedShareDocument};

    #[derive(Serialize)]
    pub enum UserRequest {
        SetManifest {
            manifest: Vec<u8>,
            policies: Vec<Vec<u8>>,
            expected_previous_transition: Option<[u8; 32]>,
            signatures: Vec<OwnerSignature>,
            reshare: bool,
        },
        GetManifests {
            consistency_from: Option<u64>,
            inclusion_of: Vec<u64>,
        },
        Recover {
            owner: [u8; 32],
            encapsulated_key: [u8; 32],
            ciphertext: Vec<u8>,
            latest_transition: [u8; 32],
            seedshares: [u8; 32],
            force: bool,
        },
        GetRecoveryState {
            consistency_from: Option<u64>,
        },
    }

    #[derive(Serialize)]
    pub enum UserResponse {
        ManifestSet {
            transition: [u8; 32],
            generation: u64,
            root_ca: Vec<u8>,
            mesh_ca: Vec<u8>,
            seed_share_document: Option<SeedShareDocument>,
        },
        Manifests {
            manifests: Vec<Vec<u8>>,
            policies: Vec<Vec<u8>>,
            root_ca: Vec<u8>,
            mesh_ca: Vec<u8>,
            latest_transition: [u8; 32],
            signed_tree_head: Vec<u8>,
            history_public_key: [u8; 32],
            consistency_proof: Option<Vec<[u8; 32]>>,
            inclusion_proofs: Vec<(u64, Vec<[u8; 32]>)>,
            seedshare_record: Vec<u8>,
        },
        Recovery {
            have: u32,
            need: u8,
            recovered: Option<u64>,
        },
        Error(ErrorReply),
        RecoveryState {
            state: ReplicaState,
            latest_transition: [u8; 32],
            transition_manifest: [u8; 32],
            transition_previous: Option<[u8; 32]>,
            signed_tree_head: Vec<u8>,
            seedshare_record: Vec<u8>,
            manifest: Vec<u8>,
            consistency_proof: Option<Vec<[u8; 32]>>,
            have: u32,
            need: u8,
            ready_peers: u32,
            recovery_key: [u8; 32],
        },
    }
}

fn v2_bytes<T: Serialize>(message: &T) -> Vec<u8> {
    postcard::to_allocvec(message).unwrap()
}

fn body<M: Message>(message: &M) -> Vec<u8> {
    encode(message, MAX_USER_FRAME).unwrap()[4..].to_vec()
}

/// Every user request and every variant of every user reply encodes as
/// the one request enum and the one reply enum of protocol version 2 did
/// (fields full, so every field's bytes are compared).
#[test]
fn user_messages_keep_the_bytes_of_version_2() {
    let signature = OwnerSignature {
        public_key: vec![0x30, 0x2a],
        signature: vec![9; 64],
    };
    let set = SetManifest {
        manifest: b"{}".to_vec(),
        policies: vec![vec![1], vec![2, 3]],
        expected_previous_transition: Some([7; 32]),
        signatures: vec![signature.clone()],
        reshare: true,
    };
    assert_eq!(
        body(&UserRequest::from(set.clone())),
        v2_bytes(&v2::UserRequest::SetManifest {
            manifest: set.manifest,
            policies: set.policies,
            expected_previous_transition: set.expected_previous_transition,
            signatures: vec![signature],
            reshare: true,
        })
    );
    assert_eq!(
        body(&UserRequest::from(GetManifests {
            consistency_from: Some(300),
            inclusion_of: vec![1, 200],
        })),
        v2_bytes(&v2::UserRequest::GetManifests {
            consistency_from: Some(300),
            inclusion_of: vec![1, 200],
        })
    );
    let r = small_recover();
    assert_eq!(
        body(&UserRequest::from(r.clone())),
        v2_bytes(&v2::UserRequest::Recover {
            owner: r.owner,
            encapsulated_key: r.encapsulated_key,
            ciphertext: r.ciphertext,
            latest_transition: r.latest_transition,
            seedshares: r.seedshares,
            force: r.force,
        })
    );
    assert_eq!(
        body(&UserRequest::from(GetRecoveryState {
            consistency_from: None
        })),
        v2_bytes(&v2::UserRequest::GetRecoveryState {
            consistency_from: None
        })
    );

    let set = ManifestSet {
        transition: [1; 32],
        generation: 300,
        root_ca: vec![0x30, 1],
        mesh_ca: vec![0x30, 2],
        seed_share_document: None,
    };
    assert_eq!(
        body(&SetManifestReply::ManifestSet(set.clone())),
        v2_bytes(&v2::UserResponse::ManifestSet {
            transition: set.transition,
            generation: set.generation,
            root_ca: set.root_ca,
            mesh_ca: set.mesh_ca,
            seed_share_document: None,
        })
    );
    let m = Manifests {
        manifests: vec![b"{}".to_vec(), b"{ }".to_vec()],
        policies: vec![b"p".to_vec()],
        root_ca: vec![0x30, 1],
        mesh_ca: vec![0x30, 2],
        latest_transition: [3; 32],
        signed_tree_head: vec![4; 132],
        history_public_key: [5; 32],
        consistency_proof: Some(vec![[6; 32]]),
        inclusion_proofs: vec![(0, vec![[7; 32], [8; 32]])],
        seedshare_record: vec![9; 33],
    };
    assert_eq!(
        body(&GetManifestsReply::Manifests(m.clone())),
        v2_bytes(&v2::UserResponse::Manifests {
            manifests: m.manifests,
            policies: m.policies,
            root_ca: m.root_ca,
            mesh_ca: m.mesh_ca,
            latest_transition: m.latest_transition,
            signed_tree_head: m.signed_tree_head,
            history_public_key: m.history_public_key,
            consistency_proof: m.consistency_proof,
            inclusion_proofs: m.inclusion_proofs,
            seedshare_record: m.seedshare_record,
        })
    );
    let accepted = ShareAccepted {
        have: 200,
        need: 3,
        recovered: Some(1000),
    };
    assert_eq!(
        body(&RecoverReply::Recovery(accepted.clone())),
        v2_bytes(&v2::UserResponse::Recovery {
            have: accepted.have,
            need: accepted.need,
            recovered: accepted.recovered,
        })
    );
    let st = RecoveryState {
        transition_previous: Some([9; 32]),
        consistency_proof: Some(vec![[8; 32], [7; 32]]),
        signed_tree_head: vec![6; 164],
        ..small_recovery_state()
    };
    assert_eq!(
        body(&GetRecoveryStateReply::RecoveryState(st.clone())),
        v2_bytes(&v2::UserResponse::RecoveryState {
            state: st.state,
            latest_transition: st.latest_transition,
            transition_manifest: st.transition_manifest,
            transition_previous: st.transition_previous,
            signed_tree_head: st.signed_tree_head,
            seedshare_record: st.seedshare_record,
            manifest: st.manifest,
            consistency_proof: st.consistency_proof,
            have: st.have,
            need: st.need,
            ready_peers: st.ready_peers,
            recovery_key: st.recovery_key,
        })
    );
    let error = ErrorReply {
        code: ErrorCode::ManifestConflict,
        message: "the latest transition moved".into(),
    };
    let old = v2_bytes(&v2::UserResponse::Error(error.clone()));
    assert_eq!(body(&SetManifestReply::Error(error.clone())), old);
    assert_eq!(body(&GetManifestsReply::Error(error.clone())), old);
    assert_eq!(body(&RecoverReply::Error(error.clone())), old);
    assert_eq!(body(&GetRecoveryStateReply::Error(error.clone())), old);
    assert_eq!(body(&UserError::Error(error)), old);
}

/// A user client decodes the reply to its own request: the success of
/// another request's reply is refused, not passed on; the `Error` of any
/// (and a [`UserError`]) decodes as the `Error` of each.
#[test]
fn a_user_reply_to_another_request_does_not_decode() {
    let successes = [
        (
            "ManifestSet",
            body(&SetManifestReply::ManifestSet(small_manifest_set())),
        ),
        (
            "Manifests",
            body(&GetManifestsReply::Manifests(small_manifests())),
        ),
        ("Recovery", body(&RecoverReply::Recovery(small_accepted()))),
        (
            "RecoveryState",
            body(&GetRecoveryStateReply::RecoveryState(small_recovery_state())),
        ),
    ];
    fn decodes_as(bytes: &[u8]) -> [Option<&'static str>; 4] {
        [
            decode::<SetManifestReply>(bytes).ok().map(|r| r.variant()),
            decode::<GetManifestsReply>(bytes).ok().map(|r| r.variant()),
            decode::<RecoverReply>(bytes).ok().map(|r| r.variant()),
            decode::<GetRecoveryStateReply>(bytes)
                .ok()
                .map(|r| r.variant()),
        ]
    }
    for (i, (name, bytes)) in successes.iter().enumerate() {
        let mut expected = [None; 4];
        expected[i] = Some(*name);
        assert_eq!(decodes_as(bytes), expected, "{name}");
    }
    let error = body(&UserError::Error(needs_recovery()));
    assert_eq!(decodes_as(&error), [Some("Error"); 4]);
    assert_eq!(
        decode::<RecoverReply>(&error).unwrap().error(),
        Some(&needs_recovery())
    );
    assert_eq!(
        decode::<UserError>(&body(&GetManifestsReply::Error(needs_recovery()))).unwrap(),
        UserError::Error(needs_recovery())
    );
    // A success is not a `UserError`; unknown indices are refused.
    for (name, bytes) in &successes {
        assert!(decode::<UserError>(bytes).is_err(), "{name}");
    }
    assert_eq!(decodes_as(&[5]), [None; 4]);
}

fn round_trip<M: Message + PartialEq + core::fmt::Debug>(message: M, max: usize) {
    let frame = encode(&message, max).unwrap();
    let (prefix, body) = frame.split_at(4);
    let len = frame_len(prefix.try_into().unwrap(), max).unwrap();
    assert_eq!(len, body.len());
    assert_eq!(decode::<M>(body).unwrap(), message);
    // Every truncation is refused, never a panic.
    for cut in 0..body.len() {
        assert!(
            decode::<M>(&body[..cut]).is_err(),
            "{} cut at {cut}",
            M::NAME
        );
    }
    // A trailing byte is refused.
    let mut longer = body.to_vec();
    longer.push(0);
    assert!(matches!(
        decode::<M>(&longer),
        Err(ProtocolError::TrailingBytes { count: 1, .. })
    ));
}

#[test]
fn round_trips_and_truncations() {
    round_trip(
        UserRequest::from(SetManifest {
            manifest: b"{\"Policies\":{}}".to_vec(),
            policies: vec![vec![1, 2, 3], vec![]],
            expected_previous_transition: Some([7; 32]),
            signatures: vec![OwnerSignature {
                public_key: vec![0x30, 0x2a],
                signature: vec![9; 64],
            }],
            reshare: false,
        }),
        MAX_USER_FRAME,
    );
    round_trip(
        UserRequest::from(Recover {
            owner: [1; 32],
            encapsulated_key: [2; 32],
            ciphertext: vec![3; 145],
            latest_transition: [4; 32],
            seedshares: [5; 32],
            force: true,
        }),
        MAX_USER_FRAME,
    );
    round_trip(
        UserRequest::from(GetRecoveryState {
            consistency_from: Some(2),
        }),
        MAX_USER_FRAME,
    );
    round_trip(
        GetRecoveryStateReply::RecoveryState(RecoveryState {
            state: ReplicaState::Recovery,
            latest_transition: [1; 32],
            transition_manifest: [2; 32],
            transition_previous: Some([3; 32]),
            signed_tree_head: vec![4; 164],
            seedshare_record: vec![5; 40],
            manifest: b"{}".to_vec(),
            consistency_proof: Some(vec![[6; 32]]),
            have: 1,
            need: 2,
            ready_peers: 0,
            recovery_key: [7; 32],
        }),
        MAX_USER_FRAME,
    );
    round_trip(
        GetManifestsReply::Manifests(Manifests {
            manifests: vec![b"{}".to_vec()],
            policies: vec![b"p".to_vec()],
            root_ca: vec![0x30, 1],
            mesh_ca: vec![0x30, 2],
            latest_transition: [3; 32],
            signed_tree_head: vec![4; 164],
            history_public_key: [5; 32],
            consistency_proof: Some(vec![[6; 32]]),
            inclusion_proofs: vec![(0, vec![[7; 32], [8; 32]])],
            seedshare_record: vec![9; 33],
        }),
        MAX_USER_FRAME,
    );
    round_trip(
        RecoverReply::Recovery(ShareAccepted {
            have: 1,
            need: 2,
            recovered: None,
        }),
        MAX_USER_FRAME,
    );
    round_trip(
        SetManifestReply::ManifestSet(small_manifest_set()),
        MAX_USER_FRAME,
    );
    round_trip(SetManifestReply::Error(needs_recovery()), MAX_USER_FRAME);
    round_trip(GetManifestsReply::Error(needs_recovery()), MAX_USER_FRAME);
    round_trip(RecoverReply::Error(needs_recovery()), MAX_USER_FRAME);
    round_trip(
        GetRecoveryStateReply::Error(needs_recovery()),
        MAX_USER_FRAME,
    );
    round_trip(UserError::Error(needs_recovery()), MAX_USER_FRAME);
    round_trip(
        NewMeshCertReply::MeshCert(MeshCert {
            cert_chain: vec![vec![0x30; 300], vec![0x30; 400]],
            mesh_ca: vec![1; 10],
            root_ca: vec![2; 10],
            workload_secret: Some(zeroize::Zeroizing::new(vec![3; 64])),
            deployment: DeploymentStatement {
                sharings: vec![Sharing {
                    threshold: 2,
                    owners: vec![[4; 32], [5; 32]],
                }],
                workload_owners: vec!["302a".into()],
                generation: 3,
            },
        }),
        MAX_MESH_FRAME,
    );
    round_trip(
        HelloReply::Refused {
            reason: "no".into(),
        },
        MAX_MESH_FRAME,
    );
    round_trip(MeshRequest::PeerRecover, MAX_MESH_FRAME);
    round_trip(PeerRecoverReply::PeerSecrets(secrets()), MAX_MESH_FRAME);
}

#[test]
fn shim_messages_round_trip() {
    use shim::*;
    round_trip(
        ShimRequest::Apply {
            puts: vec![("manifests/ab".into(), vec![1, 2])],
            latest_old: None,
            latest_new: vec![3; 196],
        },
        MAX_SHIM_FRAME,
    );
    round_trip(
        ShimRequest::WatchLatest {
            known: Some(vec![1]),
            timeout_ms: 30_000,
        },
        MAX_SHIM_FRAME,
    );
    round_trip(
        ShimRequest::ReportStatus(AgentStatus {
            state: Some(AgentState::Ready),
            listening: true,
            generation: 2,
            requests: vec![RequestStats {
                api: "mesh".into(),
                method: "NewMeshCert".into(),
                outcome: "ok".into(),
                count: 3,
                sum_micros: 4000,
                buckets: vec![0, 0, 1, 3, 3, 3, 3, 3, 3, 3, 3],
            }],
            attestation_failures: vec![("evidence".into(), 1)],
            peer_recovery_attempts: 1,
            peer_recovery_successes: 1,
            resident_bytes: 9 << 20,
            forged_histories: 2,
            store_reads: 5,
            latest_read: Some([7; 32]),
            refused_connections: vec![RefusalStats {
                api: "user".into(),
                reason: "per_source_limit".into(),
                count: 4,
            }],
            refused_frames: vec![RefusalStats {
                api: "user".into(),
                reason: "busy".into(),
                count: 2,
            }],
            body_bytes_in_flight: 16 << 20,
            collateral_refusals: vec![("revoked".into(), 1)],
            collateral_offers: vec![("kept".into(), 2)],
            oldest_collateral_age_secs: Some(86_400),
            collateral_held: 3,
        }),
        MAX_SHIM_FRAME,
    );
    round_trip(
        ShimRequest::Collateral(
            crate::evidence::collateral::CollateralRequest::TdxCollateral {
                fmspc: [1, 2, 3, 4, 5, 6],
                ca: crate::evidence::collateral::TdxCa::Platform,
            },
        ),
        MAX_SHIM_FRAME,
    );
    round_trip(
        ShimResponse::Collateral {
            bytes: vec![1, 2, 3],
            source: CollateralSource::Vendor,
            age_secs: 60,
        },
        MAX_SHIM_FRAME,
    );
    round_trip(
        ShimResponse::Peers {
            version: 7,
            peers: vec![Peer {
                name: "coordinator-1".into(),
                mesh_api: "10.0.0.2:7777".into(),
            }],
        },
        MAX_SHIM_FRAME,
    );
    round_trip(ShimResponse::Conflict, MAX_SHIM_FRAME);
}

#[test]
fn oversized_frames_are_refused_before_reading() {
    assert!(frame_len((MAX_MESH_FRAME as u32).to_be_bytes(), MAX_MESH_FRAME).is_ok());
    assert_eq!(
        frame_len((MAX_MESH_FRAME as u32 + 1).to_be_bytes(), MAX_MESH_FRAME),
        Err(ProtocolError::TooLarge {
            len: MAX_MESH_FRAME + 1,
            max: MAX_MESH_FRAME
        })
    );
    assert!(frame_len([0xff; 4], MAX_USER_FRAME).is_err());
    // Encoding refuses to send an oversized frame too.
    let big = NewMeshCertReply::MeshCert(MeshCert {
        cert_chain: vec![vec![0; MAX_MESH_FRAME]],
        mesh_ca: vec![],
        root_ca: vec![],
        workload_secret: None,
        deployment: DeploymentStatement::default(),
    });
    assert!(matches!(
        encode(&big, MAX_MESH_FRAME),
        Err(ProtocolError::TooLarge { .. })
    ));
}

#[test]
fn garbage_is_refused_without_panicking() {
    // A huge announced vector length inside a small frame.
    let body = [0x00, 0xff, 0xff, 0xff, 0xff, 0x0f];
    assert!(decode::<UserRequest>(&body).is_err());
    // Unknown variant.
    assert!(decode::<UserRequest>(&[9]).is_err());
    assert!(decode::<MeshRequest>(&[2]).is_err());
    assert!(decode::<shim::ShimRequest>(&[5]).is_err());
    // Every two-byte body decodes or fails cleanly.
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            let _ = decode::<SetManifestReply>(&[a, b]);
            let _ = decode::<GetManifestsReply>(&[a, b]);
            let _ = decode::<RecoverReply>(&[a, b]);
            let _ = decode::<GetRecoveryStateReply>(&[a, b]);
            let _ = decode::<UserError>(&[a, b]);
            let _ = decode::<NewMeshCertReply>(&[a, b]);
            let _ = decode::<PeerRecoverReply>(&[a, b]);
            let _ = decode::<Hello>(&[a, b]);
        }
    }
}

#[test]
fn version_negotiation() {
    let hello = |versions: Vec<u16>, api| Hello { versions, api };
    assert_eq!(
        negotiate(&hello(vec![1, 2, 3], Api::User), Api::User),
        HelloReply::Accepted { version: 2 }
    );
    // Version 1 (unauthenticated recovery, tree heads without the
    // seed-share record) is not spoken any more.
    assert!(matches!(
        negotiate(&hello(vec![1], Api::User), Api::User),
        HelloReply::Refused { reason } if reason.contains("no common protocol version")
    ));
    assert!(matches!(
        negotiate(&hello(vec![2], Api::Mesh), Api::User),
        HelloReply::Refused { reason } if reason.contains("Mesh")
    ));
    assert!(matches!(
        negotiate(&hello(vec![2; 17], Api::User), Api::User),
        HelloReply::Refused { .. }
    ));
    // The shim channel has its own version: an agent of an earlier
    // release (shim channel 2, a shorter AgentStatus) is refused by
    // version, as is a shim of an earlier release by the agent's hello.
    assert_eq!(
        negotiate(&hello(vec![shim::SHIM_VERSION], Api::Shim), Api::Shim),
        HelloReply::Accepted {
            version: shim::SHIM_VERSION
        }
    );
    assert!(matches!(
        negotiate(&hello(vec![2], Api::Shim), Api::Shim),
        HelloReply::Refused { reason }
            if reason.contains("no common shim-channel version: the agent speaks [2], this shim speaks 3")
    ));
    assert!(matches!(
        negotiate(&hello(vec![shim::SHIM_VERSION], Api::User), Api::User),
        HelloReply::Refused { .. }
    ));
}
