//! The INSECURE simulated vendor through the real fetch client
//! (`accord_collateral`) and the real verifier (`accord_core`): the
//! simulated SEV-SNP chip's VCEK (for any TCB) and ARK-signed CRL, the
//! simulated TDX platform's PCS collateral, revocation by re-issued CRLs,
//! rollback to an older issue, and a vendor that fails.
//!
//! The chips are created once in `target/tmp/` and reused (RSA-4096 key
//! generation is slow).

use std::path::PathBuf;

use accord_collateral::{
    Fetcher, HttpClient, HttpConfig, Item, KeyKind, crl_item, fetch_tdx_collateral, pck_target,
    vcek_item,
};
use accord_core::crypto::default_provider;
use accord_core::evidence::snp::{
    self, AttestationReport, CertRole, Certs, Product, SnpError, TcbVersion, TrustRoots,
};
use accord_core::evidence::tdx::{self, TdxError, VerifiedCollateral};
use accord_core::time::UnixTime;
use accord_core::x509::Crl;
use accord_guest::tee::simulated::{SimulatedConfig, SimulatedSnp};
use accord_guest::tee::simulated_tdx::SimulatedTdx;
use accord_simulated_vendor::{Behavior, SimulatedVendor};

fn now() -> UnixTime {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    UnixTime(i64::try_from(secs).unwrap())
}

fn state(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("accord-simulated-vendor-{name}"))
}

fn fetcher(vendor: &SimulatedVendor) -> Fetcher {
    fetcher_with_timeout(vendor, std::time::Duration::from_secs(5))
}

fn fetcher_with_timeout(vendor: &SimulatedVendor, timeout: std::time::Duration) -> Fetcher {
    let http = HttpClient::new(HttpConfig {
        connect_timeout: timeout,
        total_timeout: timeout,
        ..HttpConfig::default()
    })
    .unwrap();
    Fetcher::new(Some(http), vendor.endpoints(), None)
}

fn genoa() -> SimulatedSnp {
    SimulatedSnp::open(
        &state("genoa"),
        &SimulatedConfig {
            product: Product::Genoa,
            ..SimulatedConfig::default()
        },
    )
    .unwrap()
}

/// Fetches the VCEK and CRL for `chip`'s report and verifies it.
async fn verify_snp(fetcher: &Fetcher, chip: &SimulatedSnp) -> Result<(), SnpError> {
    let report = chip.report(&[9; 64]);
    let parsed = AttestationReport::parse(&report).unwrap();
    let at = now();
    let vcek = fetcher
        .fetch(&vcek_item(&parsed, Product::Genoa).unwrap(), at)
        .await
        .unwrap();
    let crl = fetcher
        .fetch(&crl_item(&parsed, Product::Genoa), at)
        .await
        .unwrap();
    let root = chip.trusted_root();
    snp::verify(
        &report,
        &Certs { leaf: &vcek.body },
        None,
        &TrustRoots::custom(&root.ark, &root.ask),
        Some(&crl.body),
        at,
        default_provider(),
    )
    .map(|_| ())
}

#[tokio::test]
async fn snp_vceks_for_any_tcb_and_the_ark_signed_crl_verify_and_revocations_apply() {
    let chip = genoa();
    let vendor =
        SimulatedVendor::start_with_state_dirs(&[(&state("genoa"), Product::Genoa)], None).unwrap();
    let fetcher = fetcher(&vendor);
    verify_snp(&fetcher, &chip).await.unwrap();
    assert_eq!(vendor.count("/vcek/v1/Genoa/crl"), 1);
    assert_eq!(vendor.snp_crl_number(Product::Genoa), Some(1));

    // After a firmware update: a VCEK for the new TCB, issued on demand.
    let updated = chip
        .reconfigured(&SimulatedConfig {
            product: Product::Genoa,
            tcb: Some(TcbVersion {
                snp: chip.tcb().snp + 1,
                ..chip.tcb()
            }),
            ..SimulatedConfig::default()
        })
        .unwrap();
    verify_snp(&fetcher, &updated).await.unwrap();

    // Revoking the updated VCEK refuses it by name, not the old one.
    assert_eq!(
        vendor
            .revoke_snp(Product::Genoa, &updated.vcek_serial())
            .unwrap(),
        2
    );
    let err = verify_snp(&fetcher, &updated).await.unwrap_err();
    assert!(
        matches!(
            &err,
            SnpError::Revoked {
                role: CertRole::Vcek,
                ..
            }
        ),
        "{err}"
    );
    verify_snp(&fetcher, &chip).await.unwrap();
    // Revoking the ASK refuses every report of the chip.
    assert_eq!(
        vendor
            .revoke_snp(Product::Genoa, &chip.ask_serial())
            .unwrap(),
        3
    );
    let err = verify_snp(&fetcher, &chip).await.unwrap_err();
    assert!(
        matches!(
            &err,
            SnpError::Revoked {
                role: CertRole::Ask,
                ..
            }
        ),
        "{err}"
    );
    let crl = vendor.snp_crl(Product::Genoa).unwrap();
    let parsed = Crl::from_der(&crl).unwrap();
    assert!(parsed.is_revoked(&chip.ask_serial()) && parsed.is_revoked(&updated.vcek_serial()));

    // A rollback: the previous CRL, older and lower numbered.
    assert_eq!(vendor.serve_older_snp_crl(Product::Genoa).unwrap(), 2);
    let older = fetcher
        .fetch(
            &Item::Crl {
                key: KeyKind::Vcek,
                product: Product::Genoa,
            },
            now(),
        )
        .await
        .unwrap();
    let older = Crl::from_der(&older.body).unwrap();
    assert!(older.this_update() < parsed.this_update());
    assert!(!older.is_revoked(&chip.ask_serial()));

    // The chain, in KDS's shape; no VLEK CRL (the simulated chip has no VLEK).
    let chain = fetcher
        .fetch(
            &Item::CertChain {
                key: KeyKind::Vcek,
                product: Product::Genoa,
            },
            now(),
        )
        .await
        .unwrap();
    assert_eq!(chain.body, chip.cert_chain_pem().as_bytes());
    let vlek = Item::Crl {
        key: KeyKind::Vlek,
        product: Product::Genoa,
    };
    let err = fetcher.fetch(&vlek, now()).await.unwrap_err();
    assert!(err.0.contains("404"), "{err}");
}

#[tokio::test]
async fn tdx_collateral_verifies_under_the_simulated_root_and_a_revoked_pck_is_refused() {
    let dir = state("tdx");
    let platform = SimulatedTdx::open(&dir, &SimulatedConfig::default()).unwrap();
    let vendor = SimulatedVendor::start_with_state_dirs(&[], Some(&dir)).unwrap();
    let fetcher = fetcher(&vendor);
    let quote = platform.quote(&[5; 64]);
    let verify = |collateral| {
        let at = now();
        let verified = VerifiedCollateral::verify_with_root(
            &collateral,
            Some(&platform.trusted_root()),
            at,
            default_provider(),
        )?;
        tdx::verify_with_collateral(&verified, &quote, at, default_provider()).map(|_| ())
    };
    let (fmspc, ca) = pck_target(&quote).unwrap();
    assert_eq!(fmspc, platform.fmspc());
    let fetched = fetch_tdx_collateral(&fetcher, fmspc, ca, now())
        .await
        .unwrap();
    verify(fetched.collateral).unwrap();
    for path in [
        "/tdx/certification/v4/tcb",
        "/tdx/certification/v4/qe/identity",
        "/sgx/certification/v4/pckcrl",
        "/sgx/certification/v4/rootcacrl",
    ] {
        assert_eq!(vendor.count(path), 1, "{path}");
    }
    // The genuine Intel root does not accept it.
    assert!(
        VerifiedCollateral::verify(
            &fetched_again(&fetcher, &quote).await,
            now(),
            default_provider()
        )
        .is_err()
    );

    let first = vendor.tdx_responses().unwrap();
    let number = vendor.revoke_pck(&platform.pck_serial()).unwrap();
    let revoked = fetched_again(&fetcher, &quote).await;
    let err = verify(revoked).unwrap_err();
    assert!(matches!(err, TdxError::Revoked(_)), "{err}");
    let crl = vendor.tdx_responses().unwrap().pck_crl;
    assert!(
        Crl::from_der(&crl)
            .unwrap()
            .is_revoked(&platform.pck_serial())
    );

    // A rollback serves the previous issue again.
    assert_eq!(vendor.serve_older_tdx_collateral().unwrap(), number - 1);
    assert_eq!(vendor.tdx_responses().unwrap(), first);
    verify(fetched_again(&fetcher, &quote).await).unwrap();
}

async fn fetched_again(fetcher: &Fetcher, quote: &[u8]) -> tdx::Collateral {
    let (fmspc, ca) = pck_target(quote).unwrap();
    fetch_tdx_collateral(fetcher, fmspc, ca, now())
        .await
        .unwrap()
        .collateral
}

#[tokio::test]
async fn a_failing_vendor_fails_the_fetch() {
    // Down, 5xx, garbage and slow (the fetch policy around it, with a
    // cache, is accord-collateral's and the CLI's to test).
    let mut vendor =
        SimulatedVendor::start_with_state_dirs(&[(&state("genoa"), Product::Genoa)], None).unwrap();
    let fetcher = fetcher(&vendor);
    let crl = Item::Crl {
        key: KeyKind::Vcek,
        product: Product::Genoa,
    };
    fetcher.fetch(&crl, now()).await.unwrap();
    vendor.set_behavior(Behavior::Status(503));
    let err = fetcher.fetch(&crl, now()).await.unwrap_err();
    assert!(err.0.contains("503"), "{err}");
    vendor.set_behavior(Behavior::Garbage);
    let err = fetcher.fetch(&crl, now()).await.unwrap_err();
    assert!(err.0.contains("garbage"), "{err}");
    // Slow: later than the client waits.
    vendor.set_behavior(Behavior::Delay(std::time::Duration::from_secs(60)));
    let impatient = fetcher_with_timeout(&vendor, std::time::Duration::from_millis(200));
    let err = impatient.fetch(&crl, now()).await.unwrap_err();
    assert!(err.0.contains("no complete answer"), "{err}");
    vendor.set_behavior(Behavior::Serve);
    fetcher.fetch(&crl, now()).await.unwrap();
    assert_eq!(vendor.count("/vcek/v1/Genoa/crl"), 5);
    vendor.stop();
    let err = fetcher.fetch(&crl, now()).await.unwrap_err();
    assert!(err.0.contains("connect"), "{err}");
}
