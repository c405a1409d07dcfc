//! The real vectors in service through the fetch path: a loopback KDS/PCS
//! (`accord_collateral::test_vendor`) serves the real vendor data of
//! `../shared/testdata` (the VCEKs, the real AMD CRLs, the TDX PCS
//! collateral); the shim's `CollateralService` fetches what a
//! `ServiceVerifier` needs (through `accord_guest::atls::collateral::
//! prepare_with`, as the agent's attested TLS does), for evidence that
//! carries no collateral (no VCEK, no CRL, no TDX collateral); and every
//! report and quote gets the verdict of offline `evidence::verify` with the
//! same vendor data given as files, at its documented instant (README 1.4).
//! The VLEK-signed reports are the exception: the test data has no VLEK
//! CRL, so in service they are refused naming it (no silent pass).
//!
//! Missing vectors skip with a `SKIPPED:` line; `ACCORD_REQUIRE_VECTORS=1`
//! makes them a failure.
//!
//! The shim is called at the vector's instant (`CollateralService::answer`
//! takes it), not over its channel, which uses the clock: the real
//! collateral is long past its nextUpdate today.

use std::path::Path;
use std::sync::Mutex;

use accord_collateral::test_vendor::{Vendor, VendorServer};
use accord_collateral::{Endpoints, Fetcher, HttpClient, HttpConfig};
use accord_core::evidence::EvidenceError;
use accord_core::evidence::collateral::{CollateralRequest, SnpSigner};
use accord_core::evidence::snp::Product;
use accord_core::evidence::{
    self, Evidence, ReferenceValues, ServiceVerifier, SnpEvidence, TdxEvidence,
};
use accord_core::internal::vectors::{SNP_CRLS, SNP_VCEK, SNP_VLEK, TDX, snp_product_of};
use accord_core::protocol::shim::ShimResponse;
use accord_core::time::UnixTime;
use accord_core::x509::{Certificate, pem};
use accord_guest::atls::collateral::{CollateralSource, Fetch, prepare_with};
use accord_shim::collateral::CollateralService;

/// The shim's collateral service, answering for use at a fixed instant.
struct ShimAt {
    service: CollateralService,
    at: UnixTime,
}

impl CollateralSource for ShimAt {
    fn fetch<'a>(&'a self, request: &'a CollateralRequest) -> Fetch<'a> {
        Box::pin(async move {
            match self.service.answer(request, self.at).await {
                ShimResponse::Collateral { bytes, .. } => Ok(bytes),
                ShimResponse::Failed { reason } => Err(reason),
                other => Err(format!("unexpected {other:?}")),
            }
        })
    }
}

fn shim(server: &VendorServer, at: UnixTime) -> ShimAt {
    let url = server.base_url();
    ShimAt {
        service: CollateralService::new(Fetcher::new(
            Some(HttpClient::new(HttpConfig::default()).unwrap()),
            Endpoints::new(&url, &url),
            None,
        )),
        at,
    }
}

fn read(t: &Path, relative: &str) -> Vec<u8> {
    std::fs::read(t.join(relative)).unwrap_or_else(|err| panic!("{relative}: {err}"))
}

fn at(rfc3339: &str) -> UnixTime {
    UnixTime::parse_rfc3339(rfc3339).unwrap()
}

fn reference(json: &str) -> ReferenceValues {
    serde_json::from_str(json).unwrap()
}

fn vcek_valid_at(vcek: &[u8], at: UnixTime) -> bool {
    let der = pem::der_or_pem(vcek, "CERTIFICATE").unwrap();
    let cert = Certificate::from_der(&der).unwrap();
    cert.not_before() <= at && at <= cert.not_after()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_snp_vectors_get_the_offline_verdict_through_the_shims_fetch_path() {
    let Some(t) = accord_core::internal::testdata_dir() else {
        return;
    };
    let provider = accord_core::crypto::default_provider();
    // The default entry (version 2 reports name no product: the verifier
    // finds it by the chip id's shape and the VCEK the vendor serves), and
    // a second entry allowing debug (milan-report-1 is a debug guest).
    let references = [
        reference(r#"{"snp":[{}]}"#),
        reference(r#"{"snp":[{"ProductName":"Turin"},{"GuestPolicy":{"SMT":true,"Debug":true}}]}"#),
    ];
    let (mut checked, mut accepted, mut outside) = (0, 0, 0);
    for (product, crl, instant) in SNP_CRLS {
        let when = at(instant);
        let mut vendor = Vendor::default();
        for (_, vcek) in SNP_VCEK {
            vendor
                .add_vcek(&pem::der_or_pem(&read(&t, vcek), "CERTIFICATE").unwrap())
                .unwrap();
        }
        vendor.set_crl("vcek", product, &read(&t, crl));
        let server = VendorServer::start(vendor).unwrap();
        let source = shim(&server, when);
        for reference in &references {
            let verifier = Mutex::new(ServiceVerifier::new());
            for (report, vcek) in SNP_VCEK
                .iter()
                .filter(|(r, _)| snp_product_of(r) == Some(*product))
            {
                let bare = Evidence::Snp(SnpEvidence {
                    report: read(&t, report),
                    ..Default::default()
                });
                let with_files = Evidence::Snp(SnpEvidence {
                    report: read(&t, report),
                    vcek: Some(read(&t, vcek)),
                    ..Default::default()
                });
                let offline = evidence::verify(&with_files, reference, when, provider);
                prepare_with(&verifier, &bare, reference, when, Some(&source), provider).await;
                let mut service = verifier.lock().unwrap();
                // Everything came through the fetch path (with two
                // entries, the Turin one still lacks a Turin VCEK for a
                // chip of another product, which no vendor serves).
                if reference.snp.len() == 1 && vcek_valid_at(&read(&t, vcek), when) {
                    assert_eq!(
                        service.needs(&bare, reference, when),
                        Vec::new(),
                        "{report} with {crl}"
                    );
                }
                let in_service = service.verify(&bare, reference, when, provider);
                if vcek_valid_at(&read(&t, vcek), when) {
                    assert_eq!(in_service, offline, "{report} with {crl} at {instant}");
                    checked += 1;
                    accepted += usize::from(offline.is_ok());
                } else {
                    // A VCEK outside its window is not served (the vendor
                    // would not be asked for it either): both refuse.
                    assert!(
                        offline.is_err() && in_service.is_err(),
                        "{report} at {instant}: {offline:?} / {in_service:?}"
                    );
                    outside += 1;
                }
            }
        }
        let requests = server.requests();
        assert!(
            requests.iter().any(|r| r.ends_with("/crl"))
                && requests.iter().any(|r| r.contains("SPL=")),
            "{requests:?}"
        );
    }
    // 28 report/CRL pairs (three Genoa VCEKs are not valid yet at the
    // older Genoa CRL's instant) under two references, most accepted: the
    // test compares verdicts, not two identical refusals.
    assert_eq!((checked, outside), (50, 6));
    assert!(accepted >= 40, "only {accepted} accepted");
}

/// The real VLEK-signed reports: the VLEK comes with the evidence (it is
/// not fetchable by chip), and the test data has no VLEK CRL, so the
/// vendor has none to serve: in service they are refused naming the VLEK
/// CRL, where offline (which checks no revocation) accepts them. This is
/// the one difference from the offline verdicts, and it is the verifier's
/// rule (no silent pass without a CRL), not the fetch path's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_vlek_reports_are_refused_in_service_without_a_vlek_crl() {
    let Some(t) = accord_core::internal::testdata_dir() else {
        return;
    };
    let provider = accord_core::crypto::default_provider();
    let reference = reference(r#"{"snp":[{},{"VMPL":1}]}"#);
    for (report, vlek, instant) in SNP_VLEK {
        let when = at(instant);
        let server = VendorServer::start(Vendor::default()).unwrap();
        let source = shim(&server, when);
        let evidence = Evidence::Snp(SnpEvidence {
            report: read(&t, report),
            vcek: Some(read(&t, vlek)),
            ..Default::default()
        });
        let offline = evidence::verify(&evidence, &reference, when, provider);
        assert!(offline.is_ok(), "{report}: {offline:?}");
        let verifier = Mutex::new(ServiceVerifier::new());
        prepare_with(
            &verifier,
            &evidence,
            &reference,
            when,
            Some(&source),
            provider,
        )
        .await;
        assert_eq!(
            server.requests(),
            vec!["/vlek/v1/Milan/crl".to_owned()],
            "{report}"
        );
        let refused = verifier
            .lock()
            .unwrap()
            .verify(&evidence, &reference, when, provider)
            .unwrap_err();
        // One reason per entry (two entries), each naming the CRL.
        let EvidenceError::NoEntryMatched(reasons) = &refused else {
            panic!("{report}: {refused:?}")
        };
        let missing = EvidenceError::MissingCrl {
            which: Box::new(CollateralRequest::SnpCrl {
                product: Product::Milan,
                signer: SnpSigner::Vlek,
            }),
        };
        assert_eq!(reasons, &vec![missing.to_string(); 2], "{report}");
        assert!(
            refused
                .to_string()
                .contains("the VLEK CRL of Milan is not held"),
            "{refused}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_tdx_vectors_get_the_offline_verdict_through_the_shims_fetch_path() {
    let Some(t) = accord_core::internal::testdata_dir() else {
        return;
    };
    let provider = accord_core::crypto::default_provider();
    let reference = reference(r#"{"tdx":[{}]}"#);
    let (mut accepted, mut fetched) = (0, 0);
    for case in TDX {
        let when = at(case.at);
        let collateral = case.collateral.collateral().unwrap();
        let mut vendor = Vendor::default();
        vendor.set_tdx_collateral(&collateral).unwrap();
        let server = VendorServer::start(vendor).unwrap();
        let source = shim(&server, when);
        let quote = read(&t, case.quote);
        let bare = Evidence::Tdx(TdxEvidence {
            quote: quote.clone(),
            collateral: None,
        });
        let with_files = Evidence::Tdx(TdxEvidence {
            quote,
            collateral: Some(collateral.to_json().into_bytes()),
        });
        let offline = evidence::verify(&with_files, &reference, when, provider);
        let verifier = Mutex::new(ServiceVerifier::new());
        prepare_with(&verifier, &bare, &reference, when, Some(&source), provider).await;
        let mut service = verifier.lock().unwrap();
        assert_eq!(
            service.needs(&bare, &reference, when),
            Vec::new(),
            "{}",
            case.quote
        );
        assert_eq!(
            service.verify(&bare, &reference, when, provider),
            offline,
            "{} at {}",
            case.quote,
            case.at
        );
        accepted += usize::from(offline.is_ok());
        // The four PCS parts were fetched (set 6's quote does not parse:
        // nothing is needed, and it is refused alike).
        if !server.requests().is_empty() {
            assert_eq!(server.requests().len(), 4, "{}", case.quote);
            fetched += 1;
        }
    }
    // Sets 1, 2, 3, 3b and six of the eight tdx-more quotes are UpToDate
    // and not debug; every quote but set 6's needed its collateral fetched.
    assert_eq!((accepted, fetched), (9, TDX.len() - 1));
}
