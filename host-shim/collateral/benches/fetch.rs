//! Collateral fetch times against the loopback vendor (`test_vendor`, the
//! KDS and PCS v4 URL shapes and headers) serving the real vendor data of
//! `../shared/testdata` (or `$ACCORD_TESTDATA`), through [`Fetcher`]:
//!
//! - `collateral_fetch/snp_cold`: the VCEK and the VCEK CRL for Genoa
//!   report 1 with an empty cache: two HTTP requests, the validity read
//!   from each answer, two cache writes;
//! - `collateral_fetch/snp_no_cache`: the same two requests with no cache
//!   at all: the HTTP part of `snp_cold` (the rest is the durable cache
//!   write: a temporary file fsynced, renamed, its directory fsynced);
//! - `collateral_fetch/snp_warm`: the same items from a cache that holds
//!   them (valid, not due for refresh): no request;
//! - `collateral_fetch/tdx_cold` and `tdx_warm`: TDX set 1's collateral
//!   (TCB info by FMSPC, QE identity, PCK CRL with its issuer chain, root
//!   CA CRL: four requests) assembled into core's `Collateral`, and
//!   `tdx_no_cache` likewise.
//!
//! Only the fetch is timed: the empty cache directory and the fetcher are
//! made before each cold iteration and dropped after it. Nothing here is
//! verified (the fetcher makes no trust decision); verification is timed
//! by `core/benches/verify.rs`. Run:
//! `cargo bench -j 1 -p accord-collateral --bench fetch`.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use accord_collateral::test_vendor::{Vendor, VendorServer};
use accord_collateral::{
    Cache, Endpoints, Fetcher, HttpClient, HttpConfig, Source, crl_item, fetch_tdx_collateral,
    pck_target, vcek_item,
};
use accord_core::evidence::snp::{AttestationReport, Product};
use accord_core::evidence::tdx::Collateral;
use accord_core::time::UnixTime;
use accord_core::x509::pem;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn testdata(relative: &str) -> Vec<u8> {
    let dir = std::env::var_os("ACCORD_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata")
        });
    let path = dir.join(relative);
    std::fs::read(&path).unwrap_or_else(|err| panic!("benchmarks need {} ({err})", path.display()))
}

fn at(text: &str) -> UnixTime {
    UnixTime::parse_rfc3339(text).unwrap()
}

/// A vendor serving Genoa VCEK 1 and its CRL, and TDX set 1's collateral
/// split back into its PCS answers.
fn vendor() -> Vendor {
    let mut vendor = Vendor::default();
    let vcek = pem::der_or_pem(&testdata("snp/genoa-vcek-1.pem"), "CERTIFICATE").unwrap();
    vendor.add_vcek(&vcek).unwrap();
    vendor.set_crl(
        "vcek",
        "Genoa",
        &testdata("snp/genoa-vcek-crl-2026-08-19.der"),
    );
    let c = Collateral::from_json(&testdata("tdx/tdx-collateral-1.json")).unwrap();
    vendor.set_tdx_collateral(&c).unwrap();
    vendor
}

fn fetcher(http: &HttpClient, server: &VendorServer, cache: Option<&Path>) -> Fetcher {
    Fetcher::new(
        Some(http.clone()),
        Endpoints::new(&server.base_url(), &server.base_url()),
        cache.map(Cache::new),
    )
}

fn fetch(c: &mut Criterion) {
    let server = VendorServer::start(vendor()).unwrap();
    let http = HttpClient::new(HttpConfig::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let report_bytes = testdata("snp/genoa-report-1.bin");
    let report = AttestationReport::parse(&report_bytes).unwrap();
    let items = [
        vcek_item(&report, Product::Genoa).unwrap(),
        crl_item(&report, Product::Genoa),
    ];
    let snp_at = at("2026-09-01T00:00:00Z");
    let snp = |fetcher: &Fetcher| {
        rt.block_on(async {
            let mut sources = Vec::with_capacity(items.len());
            for item in &items {
                sources.push(fetcher.fetch(item, snp_at).await.unwrap().source);
            }
            sources
        })
    };

    let quote = testdata("tdx/tdx-quote-v4-1.bin");
    let (fmspc, ca) = pck_target(&quote).unwrap();
    let tdx_at = at("2025-07-01T00:00:00Z");
    let tdx = |fetcher: &Fetcher| {
        rt.block_on(fetch_tdx_collateral(fetcher, fmspc, ca, tdx_at))
            .unwrap()
            .parts
            .iter()
            .map(|part| part.source)
            .collect::<Vec<_>>()
    };

    // Each path serves what it claims before it is timed.
    let dir = tempfile::tempdir().unwrap();
    let warm = fetcher(&http, &server, Some(dir.path()));
    let no_cache = fetcher(&http, &server, None);
    assert_eq!(snp(&no_cache), [Source::Vendor; 2]);
    assert_eq!(tdx(&no_cache), [Source::Vendor; 4]);
    assert_eq!(snp(&warm), [Source::Vendor; 2]);
    assert_eq!(snp(&warm), [Source::Cache; 2]);
    assert_eq!(tdx(&warm), [Source::Vendor; 4]);
    assert_eq!(tdx(&warm), [Source::Cache; 4]);

    let mut group = c.benchmark_group("collateral_fetch");
    let empty = || {
        let dir = tempfile::tempdir().unwrap();
        let fetcher = fetcher(&http, &server, Some(dir.path()));
        (dir, fetcher)
    };
    group.bench_function("snp_cold", |b| {
        b.iter_batched(
            empty,
            |(dir, fetcher)| {
                black_box(snp(&fetcher));
                (dir, fetcher)
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("snp_no_cache", |b| b.iter(|| black_box(snp(&no_cache))));
    group.bench_function("snp_warm", |b| b.iter(|| black_box(snp(&warm))));
    group.bench_function("tdx_cold", |b| {
        b.iter_batched(
            empty,
            |(dir, fetcher)| {
                black_box(tdx(&fetcher));
                (dir, fetcher)
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("tdx_no_cache", |b| b.iter(|| black_box(tdx(&no_cache))));
    group.bench_function("tdx_warm", |b| b.iter(|| black_box(tdx(&warm))));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = fetch
}
criterion_main!(benches);
