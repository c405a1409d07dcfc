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
    Fetcher, HttpClient, HttpConfig, Item, KeyKind, PckCa, crl_item, fetch_tdx_collateral,
    pck_target, vcek_item,
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
    let fetcher = fetcher(&vendor).trusting(accord_core::evidence::ReferenceValues {
        tdx: vec![platform.reference_values()],
        ..Default::default()
    });
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

    // Its CRLs are signed under the simulated root: a fetcher trusting
    // Intel's pinned root refuses them.
    let err = fetch_tdx_collateral(
        &self::fetcher(&vendor),
        platform.fmspc(),
        PckCa::Platform,
        now(),
    )
    .await
    .unwrap_err();
    assert!(
        err.0.contains("PCK platform CA CRL that does not verify"),
        "{err}"
    );
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

/// A CRL that is not signed by the ARK the verifier trusts is neither
/// served nor cached by `fetch_request` (the shim's and the CLI's path);
/// the error names the CRL and why. A good one is cached, and stays cached
/// (and served) when the vendor later answers a bad one.
#[tokio::test]
async fn a_crl_not_signed_by_the_trusted_ark_is_not_cached() {
    use accord_collateral::test_vendor::{Vendor, VendorServer};
    use accord_collateral::{Cache, Endpoints, Source};
    use accord_core::evidence::ReferenceValues;
    use accord_core::evidence::collateral::{CollateralRequest, SnpSigner};
    use accord_guest::tee::simulated::CrlSpec;

    let trusted = genoa();
    let other = SimulatedSnp::open(
        &state("genoa-other-root"),
        &SimulatedConfig {
            product: Product::Genoa,
            ..SimulatedConfig::default()
        },
    )
    .unwrap();
    assert_ne!(trusted.ark_der(), other.ark_der());
    let day = 86_400;
    let this_update = UnixTime(now().0 - day);
    let spec = CrlSpec {
        number: 1,
        this_update,
        next_update: UnixTime(this_update.0 + 8 * day),
        revoked: Vec::new(),
    };
    let good = trusted.issue_crl(&spec).unwrap();
    let forged = other.issue_crl(&spec).unwrap();

    let mut vendor = Vendor::default();
    vendor.set_crl("vcek", "Genoa", &forged);
    let server = VendorServer::start(vendor).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    let fetcher = Fetcher::new(
        Some(HttpClient::new(HttpConfig::default()).unwrap()),
        Endpoints::new(&server.base_url(), &server.base_url()),
        Some(cache.clone()),
    )
    .trusting(ReferenceValues {
        snp: vec![trusted.reference_values()],
        ..ReferenceValues::default()
    });
    let request = CollateralRequest::SnpCrl {
        product: Product::Genoa,
        signer: SnpSigner::Vcek,
    };
    let key = Item::Crl {
        key: KeyKind::Vcek,
        product: Product::Genoa,
    }
    .cache_key();
    let at = now();

    let err = fetcher.fetch_request(&request, at).await.unwrap_err();
    assert!(
        err.0.contains("the VCEK CRL for Genoa")
            && err.0.contains("does not verify")
            && err.0.contains("not signed by the Genoa ARK"),
        "{err}"
    );
    assert!(
        cache.load(&key).unwrap().is_none(),
        "the forged CRL was cached"
    );

    server.update(|v| v.set_crl("vcek", "Genoa", &good));
    let answer = fetcher.fetch_request(&request, at).await.unwrap();
    assert_eq!(answer.source(), Source::Vendor);
    assert_eq!(answer.bytes, good);
    assert_eq!(cache.load(&key).unwrap().unwrap().body, good);

    // Near its nextUpdate the good one is due for refresh: the vendor's
    // forged answer is refused, the cached good one served and kept.
    server.update(|v| v.set_crl("vcek", "Genoa", &forged));
    let late = UnixTime(spec.next_update.0 - 3_600);
    let answer = fetcher.fetch_request(&request, late).await.unwrap();
    assert_eq!(answer.source(), Source::CacheVendorFailed);
    assert_eq!(answer.bytes, good);
    let why = answer.parts[0].vendor_error.clone().unwrap();
    assert!(why.contains("not signed by the Genoa ARK"), "{why}");
    assert_eq!(cache.load(&key).unwrap().unwrap().body, good);

    // A fetcher trusting only AMD's pinned roots (the default) refuses the
    // simulated chip's CRL too.
    let pinned = Fetcher::new(
        Some(HttpClient::new(HttpConfig::default()).unwrap()),
        Endpoints::new(&server.base_url(), &server.base_url()),
        None,
    );
    server.update(|v| v.set_crl("vcek", "Genoa", &good));
    let err = pinned.fetch_request(&request, at).await.unwrap_err();
    assert!(err.0.contains("not signed by the Genoa ARK"), "{err}");
}
