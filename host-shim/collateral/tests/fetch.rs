//! The fetcher against the loopback vendor (`test_vendor`): the chains and
//! the VLEK CRL path the CLI does not use, the body cap, error statuses,
//! and the offline and no-cache cases. Real AMD certificates and CRLs from
//! `../shared/testdata` (or `$ACCORD_TESTDATA`; `ACCORD_REQUIRE_VECTORS=1`
//! makes their absence a failure).

use std::path::PathBuf;

use accord_collateral::test_vendor::{Vendor, VendorServer};
use accord_collateral::{
    Cache, Endpoints, FetchCounts, Fetcher, HttpClient, HttpConfig, HttpError, Item, KeyKind,
    Source,
};
use accord_core::evidence::snp::Product;
use accord_core::time::UnixTime;

fn testdata() -> Option<PathBuf> {
    accord_core::internal::testdata_dir()
}

fn at(text: &str) -> UnixTime {
    UnixTime::parse_rfc3339(text).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn fetcher(server: &VendorServer, cache: Option<Cache>, config: HttpConfig) -> Fetcher {
    Fetcher::new(
        Some(HttpClient::new(config).unwrap()),
        Endpoints::new(&server.base_url(), &server.base_url()),
        cache,
    )
}

#[test]
fn chains_and_vlek_crls_come_from_their_kds_paths_and_are_cached() {
    let Some(t) = testdata() else { return };
    let chain = [
        std::fs::read(t.join("snp/genoa-ask.pem")).unwrap(),
        std::fs::read(t.join("snp/genoa-ark.pem")).unwrap(),
    ]
    .concat();
    let crl = std::fs::read(t.join("snp/genoa-vcek-crl-2026-08-19.der")).unwrap();
    let mut vendor = Vendor::default();
    vendor.set_cert_chain("vcek", "Genoa", &chain);
    // No VLEK CRL was published as bytes; any ARK-signed CRL shows the path.
    vendor.set_crl("vlek", "Genoa", &crl);
    let server = VendorServer::start(vendor).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fetcher = fetcher(&server, Some(Cache::new(dir.path())), HttpConfig::default());
    let rt = runtime();
    let now = at("2026-09-01T00:00:00Z");
    let item = Item::CertChain {
        key: KeyKind::Vcek,
        product: Product::Genoa,
    };
    let fetched = rt.block_on(fetcher.fetch(&item, now)).unwrap();
    assert_eq!(fetched.source, Source::Vendor);
    assert_eq!(fetched.body, chain);
    assert!(!fetched.validity.reissued);
    let again = rt.block_on(fetcher.fetch(&item, now)).unwrap();
    assert_eq!(again.source, Source::Cache);
    assert!(dir.path().join("kds/chain/vcek/Genoa.pem").is_file());

    let vlek_crl = Item::Crl {
        key: KeyKind::Vlek,
        product: Product::Genoa,
    };
    let fetched = rt.block_on(fetcher.fetch(&vlek_crl, now)).unwrap();
    assert_eq!(fetched.body, crl);
    assert_eq!(fetched.validity.not_after, at("2026-10-04T00:00:00Z"));
    assert_eq!(
        server.requests(),
        ["/vcek/v1/Genoa/cert_chain", "/vlek/v1/Genoa/crl"]
    );

    // The VCEK CRL is not served here: a 404, named.
    let missing = Item::Crl {
        key: KeyKind::Vcek,
        product: Product::Genoa,
    };
    let err = rt.block_on(fetcher.fetch(&missing, now)).unwrap_err();
    assert_eq!(
        err.0,
        format!("KDS {}/vcek/v1/Genoa/crl answered 404", server.base_url())
    );
    // One cache hit, two vendor fetches, one failure.
    assert_eq!(
        fetcher.stats().snapshot(),
        FetchCounts {
            cache_hits: 1,
            vendor_ok: 2,
            vendor_failed_cache_served: 0,
            failed: 1,
        }
    );
}

#[test]
fn bodies_over_the_cap_are_refused() {
    let mut vendor = Vendor::default();
    vendor.set_root_crl(&vec![0x30; 4096]);
    let server = VendorServer::start(vendor).unwrap();
    let client = HttpClient::new(HttpConfig {
        max_body: 1024,
        ..HttpConfig::default()
    })
    .unwrap();
    let url = format!("{}/sgx/certification/v4/rootcacrl", server.base_url());
    let err = runtime().block_on(client.get(&url)).unwrap_err();
    assert!(matches!(err, HttpError::TooLarge(1024)), "{err}");
    let client = HttpClient::new(HttpConfig::default()).unwrap();
    let ok = runtime().block_on(client.get(&url)).unwrap();
    assert_eq!((ok.status, ok.body.len()), (200, 4096));
}

#[test]
fn offline_without_a_cache_names_what_is_needed() {
    let fetcher = Fetcher::new(None, Endpoints::default(), None);
    let err = runtime()
        .block_on(fetcher.fetch(&Item::QeIdentity, at("2026-01-01T00:00:00Z")))
        .unwrap_err();
    assert_eq!(err.0, "offline and no cache: the TD QE identity is needed");
    let dir = tempfile::tempdir().unwrap();
    let fetcher = Fetcher::new(None, Endpoints::default(), Some(Cache::new(dir.path())));
    let err = runtime()
        .block_on(fetcher.fetch(&Item::RootCaCrl, at("2026-01-01T00:00:00Z")))
        .unwrap_err();
    assert!(
        err.0
            .starts_with("offline: the Intel SGX Root CA CRL is not in the cache")
            && err.0.contains("pcs/rootcacrl.der"),
        "{err}"
    );
}

#[test]
fn non_http_urls_and_https_proxies_are_refused() {
    let client = HttpClient::new(HttpConfig::default()).unwrap();
    let err = runtime().block_on(client.get("ftp://x/y")).unwrap_err();
    assert!(matches!(err, HttpError::BadUrl(_)), "{err}");
    let client = HttpClient::new(HttpConfig {
        proxy: Some("https://proxy.example:3128".parse().unwrap()),
        ..HttpConfig::default()
    })
    .unwrap();
    let err = runtime()
        .block_on(client.get("http://127.0.0.1:1/x"))
        .unwrap_err();
    assert!(matches!(err, HttpError::Proxy(_)), "{err}");
}
