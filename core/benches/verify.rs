//! Verification benchmarks on the real vectors, beside the peer libraries
//! doing the same work (virtee/sev, Phala dcap-qvl) and beside a bare P-384
//! ECDSA verification (the floor). Run: `cargo bench -p accord-core --bench verify`,
//! then `cargo xtask bench-table` prints the ratios recorded in BENCHMARKS.md.

use std::hint::black_box;
use std::path::PathBuf;

use accord_core::crypto::{CryptoProvider, EcCurve, all_providers};
use accord_core::evidence::snp::{self, AttestationReport, Certs, TrustRoots, VerifiedChain};
use accord_core::evidence::tdx::{
    self, Collateral, TdxPolicy, VerifiedCollateral, verify_with_collateral,
};
use accord_core::time::UnixTime;
use accord_core::x509::{self, PublicKey, pem};
use criterion::{Criterion, criterion_group, criterion_main};

fn testdata(relative: &str) -> Vec<u8> {
    let dir = std::env::var_os("ACCORD_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"));
    let path = dir.join(relative);
    std::fs::read(&path).unwrap_or_else(|err| panic!("benchmarks need {} ({err})", path.display()))
}

fn pem_der(bytes: &[u8]) -> Vec<u8> {
    pem::der_or_pem(bytes, "CERTIFICATE").unwrap()
}

fn at(text: &str) -> UnixTime {
    UnixTime::parse_rfc3339(text).unwrap()
}

/// One bare P-384 ECDSA verification of an SNP report's signature (SHA-384
/// over the 672 signed bytes plus the verify), in each library.
fn floor(c: &mut Criterion) {
    let report_bytes = testdata("snp/genoa-report-1.bin");
    let vcek_der = pem_der(&testdata("snp/genoa-vcek-1.pem"));
    let vcek = x509::Certificate::from_der(&vcek_der).unwrap();
    let PublicKey::Ec { point, .. } = *vcek.public_key() else {
        panic!("VCEK is not EC")
    };
    let report = AttestationReport::parse(&report_bytes).unwrap();
    let signed = report.signed_bytes();
    let signature = report.signature_fixed_be();

    let mut group = c.benchmark_group("p384_verify_floor");
    group.bench_function("aws-lc-rs", |b| {
        let key = aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED,
            point,
        );
        b.iter(|| {
            key.verify(black_box(signed), black_box(&signature))
                .unwrap()
        })
    });
    group.bench_function("ring", |b| {
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P384_SHA384_FIXED,
            point,
        );
        b.iter(|| {
            key.verify(black_box(signed), black_box(&signature))
                .unwrap()
        })
    });
    group.bench_function("rustcrypto", |b| {
        use p384::ecdsa::signature::Verifier;
        let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
        let sig = p384::ecdsa::Signature::from_slice(&signature).unwrap();
        b.iter(|| key.verify(black_box(signed), black_box(&sig)).unwrap())
    });
    group.finish();
}

fn snp(c: &mut Criterion) {
    let report = testdata("snp/genoa-report-1.bin");
    let vcek_pem = testdata("snp/genoa-vcek-1.pem");
    let vcek_der = pem_der(&vcek_pem);
    let ark_der = pem_der(&testdata("snp/genoa-ark.pem"));
    let ask_der = pem_der(&testdata("snp/genoa-ask.pem"));
    let instant = at("2026-03-01T00:00:00Z");

    let mut cold = c.benchmark_group("snp_cold_chain");
    for provider in all_providers() {
        cold.bench_function(format!("accord/{}", provider.name()), |b| {
            b.iter(|| {
                snp::verify(
                    &report,
                    &Certs { leaf: &vcek_der },
                    None,
                    &TrustRoots::genuine(),
                    None,
                    instant,
                    *provider,
                )
                .unwrap()
            })
        });
    }
    cold.bench_function("sev", |b| {
        use sev::certs::snp::{Certificate, Chain, Verifiable, ca};
        use sev::parser::ByteParser;
        b.iter(|| {
            let parsed = sev::firmware::guest::AttestationReport::from_bytes(&report).unwrap();
            let chain = Chain {
                ca: ca::Chain {
                    ark: Certificate::from_der(&ark_der).unwrap(),
                    ask: Certificate::from_der(&ask_der).unwrap(),
                },
                vek: Certificate::from_der(&vcek_der).unwrap(),
            };
            (&chain, &parsed).verify().unwrap();
        })
    });
    cold.finish();

    let mut cached = c.benchmark_group("snp_cached_chain");
    for provider in all_providers() {
        let chain = VerifiedChain::verify(
            &Certs { leaf: &vcek_der },
            None,
            &TrustRoots::genuine(),
            None,
            instant,
            *provider,
        )
        .unwrap();
        cached.bench_function(format!("accord/{}", provider.name()), |b| {
            b.iter(|| {
                snp::verify_with_chain(&chain, black_box(&report), instant, *provider)
                    .unwrap()
                    .reported_tcb
            })
        });
    }
    cached.bench_function("sev", |b| {
        use sev::certs::snp::{Certificate, Verifiable};
        use sev::parser::ByteParser;
        // sev's equivalent of a cached chain: the VCEK parsed once; each
        // report is parsed and its signature checked.
        let vek = Certificate::from_der(&vcek_der).unwrap();
        b.iter(|| {
            let parsed =
                sev::firmware::guest::AttestationReport::from_bytes(black_box(&report)).unwrap();
            (&vek, &parsed).verify().unwrap();
        })
    });
    cached.finish();
}

fn tdx(c: &mut Criterion) {
    let quote = testdata("tdx/tdx-quote-v4-1.bin");
    let collateral_json = testdata("tdx/tdx-collateral-1.json");
    let collateral = Collateral::from_json(&collateral_json).unwrap();
    let dcap_collateral: dcap_qvl::QuoteCollateralV3 =
        serde_json::from_slice(&collateral_json).unwrap();
    let instant = at("2025-07-01T00:00:00Z");
    let now_secs = u64::try_from(instant.0).unwrap();

    let mut cold = c.benchmark_group("tdx_cold_collateral");
    for provider in all_providers() {
        cold.bench_function(format!("accord/{}", provider.name()), |b| {
            b.iter(|| {
                tdx::verify_with_policy(
                    &quote,
                    &collateral,
                    instant,
                    *provider,
                    &TdxPolicy::default(),
                )
                .unwrap()
            })
        });
    }
    cold.bench_function("dcap-qvl/ring", |b| {
        let verifier = dcap_qvl::verify::QuoteVerifier::new_prod()
            .with_config::<dcap_qvl::configs::RingConfig>();
        b.iter(|| {
            verifier
                .verify(black_box(&quote), &dcap_collateral, now_secs)
                .unwrap()
        })
    });
    cold.bench_function("dcap-qvl/rustcrypto", |b| {
        let verifier = dcap_qvl::verify::QuoteVerifier::new_prod()
            .with_config::<dcap_qvl::configs::RustCryptoConfig>();
        b.iter(|| {
            verifier
                .verify(black_box(&quote), &dcap_collateral, now_secs)
                .unwrap()
        })
    });
    cold.finish();

    let mut cached = c.benchmark_group("tdx_cached_collateral");
    for provider in all_providers() {
        let verified = VerifiedCollateral::verify(&collateral, instant, *provider).unwrap();
        cached.bench_function(format!("accord/{}", provider.name()), |b| {
            b.iter(|| {
                verify_with_collateral(&verified, black_box(&quote), instant, *provider)
                    .unwrap()
                    .tcb
                    .status
            })
        });
    }
    for provider in all_providers() {
        let mut verified = VerifiedCollateral::verify(&collateral, instant, *provider).unwrap();
        verified
            .remember_platform(&quote, instant, *provider)
            .unwrap();
        cached.bench_function(format!("accord/{}/known-platform", provider.name()), |b| {
            b.iter(|| {
                verify_with_collateral(&verified, black_box(&quote), instant, *provider)
                    .unwrap()
                    .tcb
                    .status
            })
        });
    }
    cached.finish();
}

/// The in-service verifier with a warm cache (`evidence::ServiceVerifier`:
/// chain cached and CRL held; TDX collateral held and the platform
/// remembered), next to the cached benchmarks above: the difference is
/// what service adds per attestation (the revocation lookup, the chain-key
/// hash, the FMSPC read from the PCK certificate, claims and reference
/// values).
fn service_warm(c: &mut Criterion) {
    use accord_core::evidence::{
        CollateralRequest, Evidence, ReferenceValues, ServiceVerifier, SnpEvidence, TdxEvidence,
    };
    let mut group = c.benchmark_group("service_warm");
    let snp_at = at("2026-09-01T00:00:00Z");
    let snp_evidence = Evidence::Snp(SnpEvidence {
        report: testdata("snp/genoa-report-1.bin"),
        vcek: Some(pem_der(&testdata("snp/genoa-vcek-1.pem"))),
        ..Default::default()
    });
    let snp_reference: ReferenceValues = serde_json::from_str(r#"{"snp":[{}]}"#).unwrap();
    let crl = testdata("snp/genoa-vcek-crl-2026-08-19.der");
    let tdx_at = at("2025-07-01T00:00:00Z");
    let quote = testdata("tdx/tdx-quote-v4-1.bin");
    let collateral = testdata("tdx/tdx-collateral-1.json");
    let tdx_reference: ReferenceValues = serde_json::from_str(r#"{"tdx":[{}]}"#).unwrap();
    for provider in all_providers() {
        let mut service = ServiceVerifier::new();
        for request in service.needs(&snp_evidence, &snp_reference, snp_at) {
            service
                .offer(&request, &crl, &snp_reference, snp_at, *provider)
                .unwrap();
        }
        service
            .verify(&snp_evidence, &snp_reference, snp_at, *provider)
            .unwrap();
        group.bench_function(format!("snp/{}", provider.name()), |b| {
            b.iter(|| {
                service
                    .verify(black_box(&snp_evidence), &snp_reference, snp_at, *provider)
                    .unwrap()
            })
        });

        let bare = Evidence::Tdx(TdxEvidence {
            quote: quote.clone(),
            collateral: None,
        });
        let attached = Evidence::Tdx(TdxEvidence {
            quote: quote.clone(),
            collateral: Some(collateral.clone()),
        });
        let mut service = ServiceVerifier::new();
        let request: CollateralRequest =
            service.needs(&bare, &tdx_reference, tdx_at).pop().unwrap();
        service
            .offer(&request, &collateral, &tdx_reference, tdx_at, *provider)
            .unwrap();
        service
            .verify(&bare, &tdx_reference, tdx_at, *provider)
            .unwrap();
        group.bench_function(format!("tdx/{}", provider.name()), |b| {
            b.iter(|| {
                service
                    .verify(black_box(&bare), &tdx_reference, tdx_at, *provider)
                    .unwrap()
            })
        });
        group.bench_function(format!("tdx-attached/{}", provider.name()), |b| {
            b.iter(|| {
                service
                    .verify(black_box(&attached), &tdx_reference, tdx_at, *provider)
                    .unwrap()
            })
        });
    }
    group.finish();
}

/// The primitive behind the cached TDX path, for reference: one P-256 verify.
fn p256_floor(c: &mut Criterion) {
    let provider: &dyn CryptoProvider = all_providers()[all_providers().len() - 1];
    let quote = testdata("tdx/tdx-quote-v4-1.bin");
    let parsed = tdx::Quote::parse(&quote).unwrap();
    let mut key = [0u8; 65];
    key[0] = 4;
    key[1..].copy_from_slice(parsed.attestation_key);
    let signed = parsed.signed;
    let signature = *parsed.signature;
    c.bench_function(&format!("p256_verify_floor/{}", provider.name()), |b| {
        b.iter(|| {
            provider
                .verify_ecdsa(EcCurve::P256, &key, black_box(signed), &signature)
                .unwrap()
        })
    });
    c.bench_function("p256_verify_floor/ring", |b| {
        let ring_key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            &key[..],
        );
        b.iter(|| ring_key.verify(black_box(signed), &signature).unwrap())
    });
    c.bench_function("p256_verify_floor/aws-lc-rs-parsed", |b| {
        let parsed = aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
            &key[..],
        )
        .parse()
        .unwrap();
        b.iter(|| parsed.verify_sig(black_box(signed), &signature).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = floor, snp, tdx, service_warm, p256_floor
}
criterion_main!(benches);
