//! `evidence::verify`: typed evidence against a manifest's reference values.

use accord_core::evidence::{
    self, Claims, Evidence, EvidenceError, ReferenceValues, SnpEvidence, TdxEvidence,
};
use accord_core::x509::pem;

use crate::common::{at, providers};
use crate::vector;

fn der(pem_text: &[u8]) -> Vec<u8> {
    pem::der_or_pem(pem_text, "CERTIFICATE").unwrap()
}

#[test]
fn snp_evidence_is_checked_against_any_matching_entry() {
    let report = vector!("snp/genoa-report-2.bin");
    let vcek = der(&vector!("snp/genoa-vcek-2.pem"));
    let measurement = "f57dc09a507c6ecd82369bffb600f0003792f4d99bc26e985ec0c266fc34faf3706faf814c9e61065768a6ff917c89ae";
    let wrong = "00".repeat(48);
    let reference: ReferenceValues = serde_json::from_str(&format!(
        r#"{{"snp":[{{"TrustedMeasurement":"{wrong}"}},{{"ProductName":"Genoa","TrustedMeasurement":"{measurement}"}}]}}"#
    ))
    .unwrap();
    let evidence = Evidence::Snp(SnpEvidence {
        report: report.clone(),
        vcek: Some(vcek.clone()),
        ..Default::default()
    });
    for provider in providers() {
        let claims =
            evidence::verify(&evidence, &reference, at("2026-03-01T00:00:00Z"), *provider).unwrap();
        assert!(matches!(claims, Claims::Snp(_)));
        assert_eq!(claims.policy_hash(), Some([0; 32]));
        assert_eq!(claims.report_data(), evidence.report_data().unwrap());
    }
    // Only the wrong entry: refused, naming the measurement.
    let only_wrong: ReferenceValues = serde_json::from_str(&format!(
        r#"{{"snp":[{{"TrustedMeasurement":"{wrong}"}}]}}"#
    ))
    .unwrap();
    let err = evidence::verify(
        &evidence,
        &only_wrong,
        at("2026-03-01T00:00:00Z"),
        providers()[0],
    )
    .unwrap_err();
    assert!(err.to_string().contains(measurement), "{err}");
    // A custom root that is not the chip's: refused.
    let genoa_ark = der(&vector!("snp/milan-ark.pem"));
    let genoa_ask = der(&vector!("snp/milan-ask.pem"));
    let custom: ReferenceValues = serde_json::from_str(&format!(
        r#"{{"snp":[{{"InsecureTrustedRoot":{{"ARK":"{}","ASK":"{}"}}}}]}}"#,
        accord_core::hex::encode(&genoa_ark),
        accord_core::hex::encode(&genoa_ask)
    ))
    .unwrap();
    assert!(matches!(
        evidence::verify(
            &evidence,
            &custom,
            at("2026-03-01T00:00:00Z"),
            providers()[0]
        ),
        Err(EvidenceError::Snp(_))
    ));
    // No VCEK, no SNP entries.
    let bare = Evidence::Snp(SnpEvidence {
        report,
        ..Default::default()
    });
    assert_eq!(
        evidence::verify(
            &bare,
            &reference,
            at("2026-03-01T00:00:00Z"),
            providers()[0]
        ),
        Err(EvidenceError::MissingVcek)
    );
    assert_eq!(
        evidence::verify(
            &evidence,
            &ReferenceValues::default(),
            at("2026-03-01T00:00:00Z"),
            providers()[0]
        ),
        Err(EvidenceError::NoReferenceValues { kind: "SEV-SNP" })
    );
}

#[test]
fn tdx_evidence_carries_its_collateral() {
    let quote = vector!("tdx/tdx-quote-v4-2.bin");
    let collateral = vector!("tdx/tdx-collateral-2.json");
    let evidence = Evidence::Tdx(TdxEvidence {
        quote,
        collateral: Some(collateral),
    });
    let reference: ReferenceValues = serde_json::from_str(r#"{"tdx":[{}]}"#).unwrap();
    for provider in providers() {
        let claims =
            evidence::verify(&evidence, &reference, at("2025-09-15T00:00:00Z"), *provider).unwrap();
        // MRCONFIGID of set 2 is not "hash ‖ 16 zero bytes".
        assert_eq!(claims.policy_hash(), None);
        assert_eq!(claims.report_data(), evidence.report_data().unwrap());
    }
    // Round trip through postcard, the wire format of attested TLS.
    let bytes = postcard::to_allocvec(&evidence).unwrap();
    assert_eq!(postcard::from_bytes::<Evidence>(&bytes).unwrap(), evidence);
}

#[test]
fn a_real_quote_is_refused_under_an_insecure_root_and_each_entry_uses_its_own() {
    let quote = vector!("tdx/tdx-quote-v4-2.bin");
    let collateral = vector!("tdx/tdx-collateral-2.json");
    let evidence = Evidence::Tdx(TdxEvidence {
        quote,
        collateral: Some(collateral),
    });
    // Any root but Intel's stands in for a simulated one (here AMD's
    // Milan ARK, a well-formed self-signed certificate).
    let other_root = accord_core::hex::encode(evidence::snp::GENUINE[0].der);
    let insecure = format!(r#"{{"InsecureTrustedRoot":{{"RootCA":"{other_root}"}}}}"#);
    let at = at("2025-09-15T00:00:00Z");
    for provider in providers() {
        // Only the insecure entry: refused (the collateral does not chain
        // to the named root), with the collateral's error.
        let only: ReferenceValues =
            serde_json::from_str(&format!(r#"{{"tdx":[{insecure}]}}"#)).unwrap();
        let err = evidence::verify(&evidence, &only, at, *provider).unwrap_err();
        assert!(matches!(err, EvidenceError::Tdx(_)), "{err}");
        // Beside a genuine entry (as evidence::verify sees it; a manifest
        // would not mix them): the genuine entry accepts, the insecure one
        // does not, whichever comes first.
        for entries in [
            format!(r#"{{"tdx":[{insecure},{{}}]}}"#),
            format!(r#"{{"tdx":[{{}},{insecure}]}}"#),
        ] {
            let both: ReferenceValues = serde_json::from_str(&entries).unwrap();
            evidence::verify(&evidence, &both, at, *provider).unwrap();
        }
        let two_insecure: ReferenceValues =
            serde_json::from_str(&format!(r#"{{"tdx":[{insecure},{insecure}]}}"#)).unwrap();
        let err = evidence::verify(&evidence, &two_insecure, at, *provider).unwrap_err();
        assert!(matches!(err, EvidenceError::Tdx(_)), "{err}");
    }
}

/// A `ChainStore` that counts its hits and stores what it is given.
#[derive(Default)]
struct CountingStore {
    chains: std::sync::Mutex<Vec<([u8; 32], evidence::snp::VerifiedChain)>>,
    hits: std::sync::atomic::AtomicUsize,
}

impl evidence::ChainStore for CountingStore {
    fn get(&self, key: &[u8; 32]) -> Option<evidence::snp::VerifiedChain> {
        let found = self
            .chains
            .lock()
            .unwrap()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, c)| c.clone());
        if found.is_some() {
            self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        found
    }
    fn put(&self, key: [u8; 32], chain: evidence::snp::VerifiedChain) {
        self.chains.lock().unwrap().push((key, chain));
    }
}

#[test]
fn cached_chains_give_the_same_answers() {
    use std::sync::atomic::Ordering;

    let report = vector!("snp/genoa-report-2.bin");
    let vcek = der(&vector!("snp/genoa-vcek-2.pem"));
    let reference: ReferenceValues =
        serde_json::from_str(r#"{"snp":[{"ProductName":"Genoa"}]}"#).unwrap();
    let evidence = Evidence::Snp(SnpEvidence {
        report: report.clone(),
        vcek: Some(vcek.clone()),
        ..Default::default()
    });
    let store = CountingStore::default();
    let when = at("2026-03-01T00:00:00Z");
    for provider in providers() {
        let plain = evidence::verify(&evidence, &reference, when, *provider).unwrap();
        let first =
            evidence::verify_with_chains(&evidence, &reference, when, *provider, &store).unwrap();
        let second =
            evidence::verify_with_chains(&evidence, &reference, when, *provider, &store).unwrap();
        assert_eq!(plain, first);
        assert_eq!(plain, second);
    }
    assert_eq!(
        store.chains.lock().unwrap().len(),
        1,
        "one chain, verified once"
    );
    // Every call but the first reused it.
    assert_eq!(
        store.hits.load(Ordering::Relaxed),
        2 * providers().len() - 1
    );

    // The cached chain's windows are still checked at each use: long after
    // the VCEK expired, the cached path refuses like the plain one.
    let late = at("2040-01-01T00:00:00Z");
    let plain = evidence::verify(&evidence, &reference, late, providers()[0]).unwrap_err();
    let cached = evidence::verify_with_chains(&evidence, &reference, late, providers()[0], &store)
        .unwrap_err();
    // Both name the window that was left.
    assert!(
        plain.to_string().contains("2032-01-24T02:21:48Z"),
        "{plain}"
    );
    assert!(
        cached.to_string().contains("2032-01-24T02:21:48Z"),
        "{cached}"
    );
    assert!(matches!(cached, EvidenceError::Snp(_)), "{cached}");

    // A tampered report under the cached chain is refused.
    let mut bad = report.clone();
    bad[0x50] ^= 1;
    let tampered = Evidence::Snp(SnpEvidence {
        report: bad,
        vcek: Some(vcek.clone()),
        ..Default::default()
    });
    assert!(
        evidence::verify_with_chains(&tampered, &reference, when, providers()[0], &store).is_err()
    );

    // Another product or root is another key: no reuse across them.
    let k_genoa = evidence::chain_key(
        providers()[0],
        &vcek,
        None,
        Some(evidence::snp::Product::Genoa),
    );
    let k_milan = evidence::chain_key(
        providers()[0],
        &vcek,
        None,
        Some(evidence::snp::Product::Milan),
    );
    let root = evidence::snp::TrustedRoot {
        ark: vec![1],
        ask: vec![2],
        asvk: None,
    };
    let k_custom = evidence::chain_key(
        providers()[0],
        &vcek,
        Some(&root),
        Some(evidence::snp::Product::Genoa),
    );
    assert_ne!(k_genoa, k_milan);
    assert_ne!(k_genoa, k_custom);
}
