//! accord's SNP verification beside virtee/sev built with ONE crypto
//! backend: OpenSSL (feature `openssl`, the default of this package) or
//! its pure-Rust `crypto_nossl` (feature `nossl`). sev cannot have both in
//! one build, so each backend is its own build of this benchmark, and each
//! run times accord (aws-lc-rs and RustCrypto providers) in the same
//! process on the same vectors: a ratio is always taken within one run.
//!
//! The operations are those of `core/benches/verify.rs` (`snp_cold_chain`,
//! `snp_cached_chain`): Genoa report 1 and its VCEK from
//! `../shared/testdata` (or `ACCORD_TESTDATA`).
//!
//! - `sev_<backend>_cold/*`: parse the report, verify VCEK ← ASK ← ARK, then
//!   the report signature;
//! - `sev_<backend>_cached/*`: the report signature against a chain
//!   verified earlier (sev: the VCEK parsed once, each report parsed and
//!   its signature verified).
//!
//! Run (from this directory): `cargo bench -j 1 --bench sev` (OpenSSL) and
//! `cargo bench -j 1 --no-default-features --features nossl --bench sev`;
//! `cargo xtask bench-table` (from the workspace root) prints the ratios.

use std::hint::black_box;
use std::path::PathBuf;

use accord_core::crypto::all_providers;
use accord_core::evidence::snp::{self, Certs, TrustRoots, VerifiedChain};
use accord_core::time::UnixTime;
use accord_core::x509::pem;
use criterion::{Criterion, criterion_group, criterion_main};
use sev::certs::snp::{Certificate, Chain, Verifiable, ca};
use sev::parser::ByteParser;

#[cfg(all(feature = "openssl", not(feature = "nossl")))]
const BACKEND: &str = "openssl";
#[cfg(all(feature = "nossl", not(feature = "openssl")))]
const BACKEND: &str = "nossl";

fn testdata(relative: &str) -> Vec<u8> {
    let dir = std::env::var_os("ACCORD_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata")
        });
    let path = dir.join(relative);
    std::fs::read(&path).unwrap_or_else(|err| panic!("benchmarks need {} ({err})", path.display()))
}

fn pem_der(bytes: &[u8]) -> Vec<u8> {
    pem::der_or_pem(bytes, "CERTIFICATE").unwrap()
}

fn snp(c: &mut Criterion) {
    let report = testdata("snp/genoa-report-1.bin");
    let vcek_der = pem_der(&testdata("snp/genoa-vcek-1.pem"));
    let ark_der = pem_der(&testdata("snp/genoa-ark.pem"));
    let ask_der = pem_der(&testdata("snp/genoa-ask.pem"));
    let instant = UnixTime::parse_rfc3339("2026-03-01T00:00:00Z").unwrap();

    // Both libraries accept the vector before anything is timed.
    let parsed = sev::firmware::guest::AttestationReport::from_bytes(&report).unwrap();
    let chain = Chain {
        ca: ca::Chain {
            ark: Certificate::from_der(&ark_der).unwrap(),
            ask: Certificate::from_der(&ask_der).unwrap(),
        },
        vek: Certificate::from_der(&vcek_der).unwrap(),
    };
    (&chain, &parsed).verify().unwrap();

    let mut cold = c.benchmark_group(format!("sev_{BACKEND}_cold"));
    cold.bench_function("sev", |b| {
        b.iter(|| {
            let parsed =
                sev::firmware::guest::AttestationReport::from_bytes(black_box(&report)).unwrap();
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
    for provider in all_providers() {
        cold.bench_function(format!("accord/{}", provider.name()), |b| {
            b.iter(|| {
                snp::verify(
                    black_box(&report),
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
    cold.finish();

    let mut cached = c.benchmark_group(format!("sev_{BACKEND}_cached"));
    cached.bench_function("sev", |b| {
        let vek = Certificate::from_der(&vcek_der).unwrap();
        b.iter(|| {
            let parsed =
                sev::firmware::guest::AttestationReport::from_bytes(black_box(&report)).unwrap();
            (&vek, &parsed).verify().unwrap();
        })
    });
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
    cached.finish();
}

criterion_group! {
    name = benches;
    // As core/benches/verify.rs.
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = snp
}
criterion_main!(benches);
