//! Hidden entry points for the fuzz targets. Not a stable API.
//!
//! Each function feeds arbitrary bytes to one parser and ignores the result:
//! the fuzzer looks for panics, overflows and hangs.

/// Parses `data` as a SEV-SNP attestation report.
pub fn fuzz_snp_report(data: &[u8]) {
    crate::evidence::snp::fuzz_parse_report(data);
}

/// Parses `data` as a TDX quote.
pub fn fuzz_tdx_quote(data: &[u8]) {
    crate::evidence::tdx::fuzz_parse_quote(data);
}

/// Parses `data` as a TDX collateral document.
pub fn fuzz_tdx_collateral(data: &[u8]) {
    crate::evidence::tdx::fuzz_parse_collateral(data);
}

/// Parses `data` as history objects and signed tree heads, and checks
/// Merkle proofs built from it: the first byte picks the target; for proofs
/// the next 16 bytes are two big-endian sizes (index and size, or old and new
/// size), then 32-byte hashes (leaf or old root, root or new root, proof).
pub fn fuzz_history(data: &[u8]) {
    use crate::crypto::rustcrypto::PROVIDER;
    use crate::history::{merkle, objects::Transition, tree_head};

    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (sizes, hashes) = rest.split_at_checked(16).unwrap_or((&[], rest));
    let (a, b) = sizes.split_at_checked(8).unwrap_or((&[], &[]));
    let a = <[u8; 8]>::try_from(a).map_or(0, u64::from_be_bytes);
    let b = <[u8; 8]>::try_from(b).map_or(0, u64::from_be_bytes);
    let nodes: alloc::vec::Vec<merkle::Hash> = hashes
        .chunks_exact(32)
        .filter_map(|chunk| <[u8; 32]>::try_from(chunk).ok())
        .collect();
    let (first, second, proof) = match nodes.as_slice() {
        [first, second, proof @ ..] => (*first, *second, proof),
        _ => ([0; 32], [0; 32], &[][..]),
    };
    match selector % 4 {
        0 => {
            let _ = Transition::decode(rest);
        }
        1 => {
            let _ = tree_head::SignedTreeHead::decode(rest);
            let _ = tree_head::TreeHead::decode(rest);
        }
        2 => {
            let _ = merkle::verify_inclusion(&PROVIDER, &first, a, b, proof, &second);
        }
        _ => {
            let _ = merkle::verify_consistency(&PROVIDER, a, b, &first, &second, proof);
        }
    }
}

/// Parses `data` as manifest JSON; if it parses, validates it and reads
/// every derived view (keys, coordinator policies, reference values).
pub fn fuzz_manifest(data: &[u8]) {
    use crate::coordinator::store;
    use crate::manifest::Manifest;

    let Ok(manifest) = Manifest::from_json(data) else {
        return;
    };
    let _ = manifest.validate();
    let doc = manifest.doc();
    let _ = doc.owner_keys();
    let _ = doc.seedshare_keys();
    let _ = doc.coordinator_policy_hashes();
    let _ = store::manifest_policy_hashes(&manifest);
    let _ = serde_json::to_vec(doc);
}

/// Decodes `data` as a frame of the wire protocol: the first byte picks
/// the API limit, the next four are the length prefix, the rest the body,
/// decoded as every message type (and re-encoded when it decodes).
pub fn fuzz_protocol(data: &[u8]) {
    use crate::protocol::{self, Message};

    fn each<M: Message>(body: &[u8], max: usize) {
        if let Ok(message) = protocol::decode::<M>(body) {
            let _ = protocol::encode(&message, max);
        }
    }
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let max = if selector & 1 == 0 {
        protocol::MAX_USER_FRAME
    } else {
        protocol::MAX_MESH_FRAME
    };
    let Some((prefix, body)) = rest.split_first_chunk::<4>() else {
        return;
    };
    if protocol::frame_len(*prefix, max).is_err() {
        return;
    }
    each::<protocol::Hello>(body, max);
    each::<protocol::HelloReply>(body, max);
    each::<protocol::UserRequest>(body, max);
    each::<protocol::UserResponse>(body, max);
    each::<protocol::MeshRequest>(body, max);
    each::<protocol::NewMeshCertReply>(body, max);
    each::<protocol::PeerRecoverReply>(body, max);
    each::<protocol::shim::ShimRequest>(body, max);
    each::<protocol::shim::ShimResponse>(body, max);
}
