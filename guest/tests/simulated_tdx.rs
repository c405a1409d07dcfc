//! The INSECURE simulated TDX against the core's real verifier, through
//! the provider interface (`tee::open("insecure-simulated-tdx")`) and the
//! `reference-values` command: v4 and v5 quotes with their attached
//! collateral verify with `evidence::verify` and every crypto provider
//! under the explicitly trusted simulated root, and only under it; a real
//! Intel quote is refused under a simulated root.

use std::process::Command;

use accord_core::crypto::all_providers;
use accord_core::evidence::tdx::{
    Collateral, TdxError, VerifiedCollateral, verify_with_collateral,
};
use accord_core::evidence::{self, Claims, Evidence, EvidenceError, ReferenceValues};
use accord_core::time::UnixTime;
use accord_guest::atls::system_now;
use accord_guest::tee::simulated_tdx::SimulatedTdx;
use accord_guest::tee::{self, TeeOptions};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("accord-sim-tdx-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn options(state: &std::path::Path, version: u16, policy_hash: [u8; 32]) -> TeeOptions {
    let mut options = TeeOptions {
        simulated_state: state.to_path_buf(),
        ..TeeOptions::default()
    };
    options.simulated.measurement = [0x44; 48];
    options.simulated.host_data = policy_hash;
    options.simulated.tdx_quote_version = version;
    options
}

/// Reads `testdata/tdx/<name>` (`$ACCORD_TESTDATA`, else
/// `../shared/testdata`): a loudly reported skip when missing, a failure
/// with `ACCORD_REQUIRE_VECTORS=1`.
fn vector(name: &str) -> Option<Vec<u8>> {
    accord_core::internal::testdata_file(&format!("tdx/{name}"))
}

#[test]
fn v4_and_v5_quotes_verify_under_the_printed_reference_values() {
    let state = temp_dir("printed");
    let output = Command::new(env!("CARGO_BIN_EXE_accord-guest"))
        .args(["reference-values", "--tee", "insecure-simulated-tdx"])
        .args(["--measurement", &"44".repeat(48), "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("INSECURE SIMULATION"));
    let reference: ReferenceValues = serde_json::from_slice(&output.stdout).unwrap();
    assert!(reference.snp.is_empty());
    assert_eq!(reference.tdx.len(), 1);
    let entry = &reference.tdx[0];
    assert!(
        entry.policy_hash.is_none(),
        "the policy is left to Policies"
    );
    assert!(entry.insecure_trusted_root.is_some());
    assert_eq!(entry.min_tcb_evaluation_data_number, Some(17));

    for version in [4u16, 5] {
        let provider =
            tee::open("insecure-simulated-tdx", &options(&state, version, [9; 32])).unwrap();
        assert!(provider.is_insecure());
        let evidence = provider.evidence(&[0x61; 64]).unwrap();
        let Evidence::Tdx(tdx) = &evidence else {
            panic!("not TDX evidence");
        };
        assert!(
            tdx.collateral.is_some(),
            "collateral travels with the quote"
        );
        for crypto in all_providers() {
            let claims = evidence::verify(&evidence, &reference, system_now(), *crypto).unwrap();
            let Claims::Tdx(quote) = &claims else {
                panic!("not TDX claims");
            };
            assert_eq!(quote.header.version, version);
            assert_eq!(claims.report_data(), [0x61; 64]);
            assert_eq!(claims.policy_hash(), Some([9; 32]));
        }
        // Without the explicit root, Intel's is required: refused.
        let mut genuine = reference.clone();
        genuine.tdx[0].insecure_trusted_root = None;
        let err = evidence::verify(
            &evidence,
            &genuine,
            system_now(),
            accord_core::crypto::default_provider(),
        )
        .unwrap_err();
        assert!(
            matches!(err, EvidenceError::Tdx(TdxError::Crl { .. })),
            "{err}"
        );
    }

    // Another simulated platform's quotes do not verify under this root.
    let other = tee::open(
        "insecure-simulated-tdx",
        &options(&temp_dir("other"), 4, [9; 32]),
    )
    .unwrap();
    let evidence = other.evidence(&[0x61; 64]).unwrap();
    assert!(
        evidence::verify(
            &evidence,
            &reference,
            system_now(),
            accord_core::crypto::default_provider()
        )
        .is_err()
    );
}

#[test]
fn a_real_quote_is_refused_under_a_simulated_root() {
    let (Some(quote), Some(json)) = (
        vector("tdx-quote-v4-1.bin"),
        vector("tdx-collateral-1.json"),
    ) else {
        return;
    };
    let platform = SimulatedTdx::ephemeral(&Default::default()).unwrap();
    let root = platform.trusted_root();
    let collateral = Collateral::from_json(&json).unwrap();
    let at = UnixTime::parse_rfc3339("2025-07-01T00:00:00Z").unwrap();
    for crypto in all_providers() {
        // Genuine: the real quote verifies under Intel's root.
        let genuine = VerifiedCollateral::verify_with_root(&collateral, None, at, *crypto).unwrap();
        verify_with_collateral(&genuine, &quote, at, *crypto).unwrap();
        // Intel's collateral under the simulated root: refused.
        assert!(
            VerifiedCollateral::verify_with_root(&collateral, Some(&root), at, *crypto).is_err()
        );
        // The real quote against the simulated platform's collateral (which
        // verifies under the simulated root): its PCK chain ends in Intel's
        // root, not the trusted one.
        let now = system_now();
        let simulated = platform.pcs_responses(now, &[]).collateral().unwrap();
        let simulated =
            VerifiedCollateral::verify_with_root(&simulated, Some(&root), now, *crypto).unwrap();
        assert_eq!(
            verify_with_collateral(&simulated, &quote, now, *crypto).unwrap_err(),
            TdxError::UntrustedRoot
        );
    }
    // And through evidence::verify, with an entry naming the simulated
    // root: refused, whatever else the entry says.
    let evidence = Evidence::Tdx(accord_core::evidence::TdxEvidence {
        quote,
        collateral: Some(json),
    });
    let reference = ReferenceValues {
        snp: Vec::new(),
        tdx: vec![accord_core::evidence::tdx::TdxReferenceValues {
            insecure_trusted_root: Some(root),
            ..Default::default()
        }],
    };
    let err = evidence::verify(
        &evidence,
        &reference,
        at,
        accord_core::crypto::default_provider(),
    )
    .unwrap_err();
    assert!(matches!(err, EvidenceError::Tdx(_)), "{err}");
}
