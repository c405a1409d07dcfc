//! The simulated TDX against core's verifier: v4 and v5 quotes verify
//! under the explicit root (and only under it), with the attached
//! collateral, and carry what they were asked to.

use accord_core::crypto::default_provider;
use accord_core::evidence::tdx::error::CrlRole;
use accord_core::evidence::tdx::{TdxError, VerifiedCollateral};
use accord_core::evidence::{self, Claims, Evidence, EvidenceError, ReferenceValues};
use accord_core::x509::X509Error;

use super::*;

fn config(version: u16) -> SimulatedConfig {
    SimulatedConfig {
        measurement: [0x42; 48],
        host_data: [0x17; 32],
        tdx_quote_version: version,
        ..SimulatedConfig::default()
    }
}

/// How collateral under another root is refused: its root CA CRL is not
/// issued by the root the entry trusts (the first thing checked).
const FOREIGN_ROOT: TdxError = TdxError::Crl {
    role: CrlRole::RootCa,
    error: X509Error::IssuerMismatch,
};

fn reference(platform: &SimulatedTdx) -> ReferenceValues {
    ReferenceValues {
        snp: Vec::new(),
        tdx: vec![platform.reference_values()],
    }
}

#[test]
fn v4_and_v5_quotes_verify_under_the_explicit_root_only() {
    let dir = std::env::temp_dir().join(format!("accord-sim-tdx-unit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for version in [4, 5] {
        let platform = SimulatedTdx::open(&dir, &config(version)).unwrap();
        let evidence = platform.evidence(&[0xab; 64]).unwrap();
        let provider = default_provider();
        let claims = evidence::verify(&evidence, &reference(&platform), now(), provider).unwrap();
        let Claims::Tdx(tdx) = &claims else {
            panic!("not TDX claims: {claims:?}");
        };
        assert_eq!(tdx.header.version, version);
        assert_eq!(claims.report_data(), [0xab; 64]);
        assert_eq!(claims.policy_hash(), Some([0x17; 32]));

        // The same entry without the simulated root: Intel's root is
        // required, and the collateral does not chain to it.
        let mut genuine = reference(&platform);
        genuine.tdx[0].insecure_trusted_root = None;
        assert_eq!(
            evidence::verify(&evidence, &genuine, now(), provider),
            Err(EvidenceError::Tdx(FOREIGN_ROOT))
        );
        // Under another simulated platform's root: refused too.
        let other = SimulatedTdx::ephemeral(&config(version)).unwrap();
        let mut foreign = reference(&platform);
        foreign.tdx[0].insecure_trusted_root = Some(other.trusted_root());
        // (Same name as this platform's root, another key.)
        assert_eq!(
            evidence::verify(&evidence, &foreign, now(), provider),
            Err(EvidenceError::Tdx(TdxError::Crl {
                role: CrlRole::RootCa,
                error: X509Error::BadSignature,
            }))
        );
        // Collateral of that other platform (under its root, which the
        // entry names) with this platform's quote: the quote's PCK chain
        // ends in another root.
        let Evidence::Tdx(mut mixed) = evidence.clone() else {
            panic!("not TDX evidence");
        };
        let Evidence::Tdx(theirs) = other.evidence(&[0xab; 64]).unwrap() else {
            panic!("not TDX evidence");
        };
        mixed.collateral = theirs.collateral;
        assert_eq!(
            evidence::verify(&Evidence::Tdx(mixed), &foreign, now(), provider),
            Err(EvidenceError::Tdx(TdxError::UntrustedRoot))
        );
        // Another policy hash: refused by the entry.
        let mut wrong = reference(&platform);
        wrong.tdx[0].policy_hash = Some(HexBytes([0x18; 32]));
        assert!(evidence::verify(&evidence, &wrong, now(), provider).is_err());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_platform_persists_and_its_collateral_has_the_pcs_shapes() {
    let dir = std::env::temp_dir().join(format!("accord-sim-tdx-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let first = SimulatedTdx::open(&dir, &config(4)).unwrap();
    let again = SimulatedTdx::open(&dir, &config(5)).unwrap();
    assert_eq!(first.root_ca_der(), again.root_ca_der());
    assert_eq!(first.fmspc(), again.fmspc());
    for file in FILES {
        assert!(dir.join(file).is_file(), "{file}");
    }
    let at = now();
    let pcs = first.pcs_responses(at, &[]);
    assert!(
        pcs.tcb_info.starts_with("{\"tcbInfo\":{"),
        "{}",
        pcs.tcb_info
    );
    assert!(pcs.qe_identity.starts_with("{\"enclaveIdentity\":{"));
    assert!(pcs.issued <= at && at <= pcs.next_update);
    let collateral = pcs.collateral().unwrap();
    let verified = VerifiedCollateral::verify_with_root(
        &collateral,
        Some(&first.trusted_root()),
        at,
        default_provider(),
    )
    .unwrap();
    assert_eq!(verified.tcb_info().fmspc, first.fmspc());
    assert_eq!(
        verified.tcb_info().tcb_evaluation_data_number,
        accord_core::internal::tdx_sim::TCB_EVALUATION_DATA_NUMBER
    );
    // Under Intel's pinned root the simulated collateral is refused.
    assert_eq!(
        VerifiedCollateral::verify(&collateral, at, default_provider()).unwrap_err(),
        FOREIGN_ROOT
    );
    // A PCK CRL that revokes the platform's PCK certificate: its quotes are
    // refused by name.
    let revoked = first
        .pcs_responses(at, &[first.pck_serial()])
        .collateral()
        .unwrap();
    let Evidence::Tdx(mut tdx) = first.evidence(&[1; 64]).unwrap() else {
        panic!("not TDX evidence");
    };
    tdx.collateral = Some(revoked.to_json().into_bytes());
    let err = evidence::verify(
        &Evidence::Tdx(tdx),
        &reference(&first),
        at,
        default_provider(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
