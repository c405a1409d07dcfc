//! Golden byte vectors (the same as in `docs/protocol.md`), round trips,
//! and refusal of truncated, oversized and trailing-byte frames.

use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::hex;

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
            "UserRequest::GetRecoveryState{consistency_from:Some(1)}",
            "00000003030101",
            encode(
                &UserRequest::GetRecoveryState {
                    consistency_from: Some(1),
                },
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
            "UserRequest::GetManifests{consistency_from:Some(3), inclusion_of:[0,2]}",
            "00000006010103020002",
            encode(
                &UserRequest::GetManifests {
                    consistency_from: Some(3),
                    inclusion_of: vec![0, 2],
                },
                MAX_USER_FRAME,
            )
            .unwrap(),
        ),
        (
            "UserResponse::Error{NeedsRecovery, \"x\"}",
            "0000000403010178",
            encode(
                &UserResponse::Error(ErrorReply {
                    code: ErrorCode::NeedsRecovery,
                    message: "x".into(),
                }),
                MAX_USER_FRAME,
            )
            .unwrap(),
        ),
    ]
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
    let set = encode(
        &UserRequest::SetManifest {
            manifest: b"{}".to_vec(),
            policies: vec![b"p".to_vec()],
            expected_previous_transition: None,
            signatures: vec![],
            reshare: false,
        },
        MAX_USER_FRAME,
    )
    .unwrap();
    assert_eq!(hex::encode(&set), "0000000a00027b7d010170000000");
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
        UserRequest::SetManifest {
            manifest: b"{\"Policies\":{}}".to_vec(),
            policies: vec![vec![1, 2, 3], vec![]],
            expected_previous_transition: Some([7; 32]),
            signatures: vec![OwnerSignature {
                public_key: vec![0x30, 0x2a],
                signature: vec![9; 64],
            }],
            reshare: false,
        },
        MAX_USER_FRAME,
    );
    round_trip(
        UserRequest::Recover {
            owner: [1; 32],
            encapsulated_key: [2; 32],
            ciphertext: vec![3; 145],
            latest_transition: [4; 32],
            seedshares: [5; 32],
            force: true,
        },
        MAX_USER_FRAME,
    );
    round_trip(
        UserRequest::GetRecoveryState {
            consistency_from: Some(2),
        },
        MAX_USER_FRAME,
    );
    round_trip(
        UserResponse::RecoveryState {
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
        },
        MAX_USER_FRAME,
    );
    round_trip(
        UserResponse::Manifests {
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
        },
        MAX_USER_FRAME,
    );
    round_trip(
        UserResponse::Recovery {
            have: 1,
            need: 2,
            recovered: None,
        },
        MAX_USER_FRAME,
    );
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
        }),
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
            let _ = decode::<UserResponse>(&[a, b]);
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
}
