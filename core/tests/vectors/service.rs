//! `evidence::ServiceVerifier`, the in-service verifier: real reports and
//! quotes with real AMD CRLs and Intel PCS collateral get the verdicts of
//! offline `evidence::verify`, and revocation, staleness and rollback are
//! refused by name (real data where it exists, the generated PKI of
//! `snp_pki.rs` otherwise). Every offer the host could tamper with leaves
//! the held state unchanged.

use accord_core::evidence::collateral::{HwId, SnpSigner, TdxCa};
use accord_core::evidence::snp::{CertRole, Product, SnpError};
use accord_core::evidence::{
    self, CollateralRequest, Evidence, EvidenceError, ReferenceValues, ServiceVerifier,
    SnpEvidence, TdxEvidence,
};
use accord_core::internal::vectors::{SNP_CRLS, SNP_VCEK, snp_product_of};
use accord_core::time::UnixTime;
use accord_core::x509::pem;

use crate::common::{at, providers, try_read};
use crate::snp_pki::{
    self, ASK_SERIAL, PKI_HW_ID, Pki, VCEK_SERIAL, crl_numbered, crl_with_extensions,
    delta_crl_indicator, pki,
};
use crate::tdx::{SETS, load};
use crate::vector;

/// A real CRL, the product it is for, the instant where it is current,
/// and the report/VCEK vectors of that product whose VCEK is valid then
/// (`internal::vectors`, README 1.4).
struct CrlCase {
    crl: &'static str,
    product: Product,
    at: &'static str,
    vectors: Vec<(&'static str, &'static str)>,
}

fn crl_cases() -> Vec<CrlCase> {
    let valid_at = |vcek: &str, when: UnixTime| {
        let Some(bytes) = try_read(vcek) else {
            return false;
        };
        let der = pem::der_or_pem(&bytes, "CERTIFICATE").unwrap();
        let cert = accord_core::x509::Certificate::from_der(&der).unwrap();
        cert.not_before() <= when && when <= cert.not_after()
    };
    SNP_CRLS
        .iter()
        .map(|&(name, crl, instant)| CrlCase {
            crl,
            product: Product::ALL
                .into_iter()
                .find(|p| p.to_string() == name)
                .unwrap(),
            at: instant,
            vectors: SNP_VCEK
                .iter()
                .copied()
                .filter(|(report, vcek)| {
                    snp_product_of(report) == Some(name) && valid_at(vcek, at(instant))
                })
                .collect(),
        })
        .collect()
}

fn refs(json: &str) -> ReferenceValues {
    serde_json::from_str(json).unwrap()
}

fn snp_evidence(report: Vec<u8>, vcek: Option<Vec<u8>>) -> Evidence {
    Evidence::Snp(SnpEvidence {
        report,
        vcek,
        ..Default::default()
    })
}

fn vcek_crl(product: Product) -> CollateralRequest {
    CollateralRequest::SnpCrl {
        product,
        signer: SnpSigner::Vcek,
    }
}

#[test]
fn real_snp_vectors_with_their_real_crl_get_the_offline_verdicts() {
    // One entry (the default policy refuses milan-report-1's DEBUG the same
    // way on both paths) and two entries (the multi-entry path).
    let references = [
        refs(r#"{"snp":[{}]}"#),
        refs(r#"{"snp":[{"ProductName":"Turin"},{"GuestPolicy":{"SMT":true,"Debug":true}}]}"#),
    ];
    let mut checked = 0;
    for case in crl_cases() {
        let crl = vector!(case.crl);
        let when = at(case.at);
        for provider in providers() {
            for reference in &references {
                let mut service = ServiceVerifier::new();
                service
                    .offer(&vcek_crl(case.product), &crl, reference, when, *provider)
                    .unwrap_or_else(|e| panic!("{}: {e}", case.crl));
                for (report, cert) in &case.vectors {
                    let evidence = snp_evidence(vector!(report), Some(vector!(cert)));
                    let offline = evidence::verify(&evidence, reference, when, *provider);
                    // Twice: the second goes through the cached chain.
                    for _ in 0..2 {
                        let service_verdict = service.verify(&evidence, reference, when, *provider);
                        assert_eq!(
                            service_verdict, offline,
                            "{report} with {}: {service_verdict:?} / {offline:?}",
                            case.crl
                        );
                    }
                    assert!(
                        service.needs(&evidence, reference, when).is_empty(),
                        "{report}"
                    );
                    checked += 1;
                }
                assert_eq!(service.counters().refused_revoked, 0);
            }
        }
    }
    // Every vector was checked and most are accepted: the test compares
    // verdicts, not just errors.
    assert_eq!(checked, 25 * 2 * providers().len());
}

#[test]
fn without_a_crl_snp_evidence_is_refused_naming_the_crl() {
    let evidence = snp_evidence(
        vector!("snp/milan-report-2.bin"),
        Some(vector!("snp/milan-vcek-2.der")),
    );
    let reference = refs(r#"{"snp":[{}]}"#);
    let when = at("2026-03-01T00:00:00Z");
    let mut service = ServiceVerifier::new();
    assert!(evidence::verify(&evidence, &reference, when, providers()[0]).is_ok());
    let err = service
        .verify(&evidence, &reference, when, providers()[0])
        .unwrap_err();
    assert_eq!(
        err,
        EvidenceError::MissingCrl {
            which: Box::new(vcek_crl(Product::Milan))
        }
    );
    assert!(err.to_string().contains("the VCEK CRL of Milan"), "{err}");
    assert_eq!(
        service.needs(&evidence, &reference, when),
        vec![vcek_crl(Product::Milan)]
    );
    assert_eq!(service.counters().refused_missing, 1);

    // A VLEK report names the VLEK CRL (none is published in the test
    // data, so VLEK evidence is refused in service until one is fetched).
    let vlek = snp_evidence(
        vector!("snp/milan-vlek-report-1.bin"),
        Some(vector!("snp/milan-vlek-1.der")),
    );
    let vmpl1 = refs(r#"{"snp":[{"VMPL":1}]}"#);
    let vlek_at = at("2025-06-01T00:00:00Z");
    assert!(evidence::verify(&vlek, &vmpl1, vlek_at, providers()[0]).is_ok());
    let err = service
        .verify(&vlek, &vmpl1, vlek_at, providers()[0])
        .unwrap_err();
    assert_eq!(
        err,
        EvidenceError::MissingCrl {
            which: Box::new(CollateralRequest::SnpCrl {
                product: Product::Milan,
                signer: SnpSigner::Vlek
            })
        }
    );
    assert!(err.to_string().contains("the VLEK CRL of Milan"), "{err}");
}

#[test]
fn a_stale_crl_is_refused_at_offer_and_at_use() {
    let crl = vector!("snp/milan-vcek-crl-2025-05-06.der");
    let evidence = snp_evidence(
        vector!("snp/milan-report-2.bin"),
        Some(vector!("snp/milan-vcek-2.der")),
    );
    let reference = refs(r#"{"snp":[{}]}"#);
    let late = at("2026-07-01T00:00:00Z");
    let p = providers()[0];
    // Offered when already stale: refused, nothing kept.
    let mut service = ServiceVerifier::new();
    let err = service
        .offer(&vcek_crl(Product::Milan), &crl, &reference, late, p)
        .unwrap_err();
    assert!(
        matches!(&err, EvidenceError::StaleCrl { which, next_update, .. }
            if **which == vcek_crl(Product::Milan) && *next_update == at("2026-05-12T00:00:00Z")),
        "{err}"
    );
    assert!(err.to_string().contains("stale"), "{err}");
    assert_eq!(service.held_count(), 0);
    // Offered while current, used after its nextUpdate: refused at use.
    service
        .offer(
            &vcek_crl(Product::Milan),
            &crl,
            &reference,
            at("2026-03-01T00:00:00Z"),
            p,
        )
        .unwrap();
    assert_eq!(service.held_count(), 1);
    assert!(
        service
            .verify(&evidence, &reference, at("2026-03-01T00:00:00Z"), p)
            .is_ok()
    );
    let err = service.verify(&evidence, &reference, late, p).unwrap_err();
    assert!(
        matches!(&err, EvidenceError::StaleCrl { which, at: when, .. }
            if **which == vcek_crl(Product::Milan) && *when == late),
        "{err}"
    );
    assert_eq!(service.counters().refused_stale, 2);
    // `needs` asks for a fresh one, and one day before nextUpdate already.
    assert_eq!(
        service.needs(&evidence, &reference, late),
        vec![vcek_crl(Product::Milan)]
    );
    assert_eq!(
        service.needs(&evidence, &reference, at("2026-05-11T12:00:00Z")),
        vec![vcek_crl(Product::Milan)]
    );
    assert!(
        service
            .needs(&evidence, &reference, at("2026-05-10T00:00:00Z"))
            .is_empty()
    );
    // The oldest collateral in use is that CRL, while it is usable.
    let oldest = service.oldest_in_use(at("2026-05-10T00:00:00Z")).unwrap();
    assert_eq!(oldest.which, vcek_crl(Product::Milan));
    assert_eq!(oldest.issued, Some(at("2025-05-06T12:39:06Z")));
    assert_eq!(oldest.next_update, at("2026-05-12T00:00:00Z"));
    assert_eq!(service.oldest_in_use(late), None);
}

#[test]
fn another_products_crl_and_tampered_crls_are_refused_at_offer() {
    let p = providers()[0];
    let reference = refs(r#"{"snp":[{}]}"#);
    let when = at("2026-09-01T00:00:00Z");
    let genoa = vector!("snp/genoa-vcek-crl-2026-08-19.der");
    let milan = vector!("snp/milan-vcek-crl-2026-08-19.der");
    let mut service = ServiceVerifier::new();
    let err = service
        .offer(&vcek_crl(Product::Milan), &genoa, &reference, when, p)
        .unwrap_err();
    assert!(
        matches!(&err, EvidenceError::CollateralRefused { which, .. } if **which == vcek_crl(Product::Milan)),
        "{err}"
    );
    assert!(err.to_string().contains("Milan ARK"), "{err}");
    assert_eq!(service.held_count(), 0);
    // Every flipped byte of the signed part, the signature or the
    // structure is refused and keeps nothing.
    service
        .offer(&vcek_crl(Product::Milan), &milan, &reference, when, p)
        .unwrap();
    let before = service.held();
    for i in (0..milan.len()).step_by(7) {
        let mut bad = milan.clone();
        bad[i] ^= 0x01;
        let result = service.offer(&vcek_crl(Product::Milan), &bad, &reference, when, p);
        assert!(result.is_err(), "byte {i} flipped was accepted");
        assert_eq!(service.held(), before, "byte {i}");
    }
    assert!(service.counters().offers_refused > 100);
    assert_eq!(service.counters().offers_kept, 1);
}

#[test]
fn a_vcek_not_carried_is_fetched_by_chip_and_tcb_and_checked() {
    let p = providers()[0];
    let report = vector!("snp/genoa-report-2.bin");
    let vcek = vector!("snp/genoa-vcek-2.pem");
    let crl = vector!("snp/genoa-vcek-crl-2026-08-19.der");
    let reference = refs(r#"{"snp":[{"ProductName":"Genoa"}]}"#);
    let when = at("2026-09-01T00:00:00Z");
    let bare = snp_evidence(report.clone(), None);
    let with_vcek = snp_evidence(report.clone(), Some(vcek.clone()));
    let parsed = evidence::snp::AttestationReport::parse(&report).unwrap();
    let request = CollateralRequest::SnpVcek {
        product: Product::Genoa,
        hw_id: HwId(*parsed.chip_id),
        tcb: parsed.reported_tcb,
    };
    let mut service = ServiceVerifier::new();
    assert_eq!(
        service.needs(&bare, &reference, when),
        vec![request.clone(), vcek_crl(Product::Genoa)]
    );
    assert_eq!(
        service.verify(&bare, &reference, when, p),
        Err(EvidenceError::MissingCollateralFor {
            which: Box::new(request.clone())
        })
    );
    // Another chip's VCEK offered for this one: refused.
    let other = vector!("snp-more/genoa-oak-vcek.der");
    let err = service
        .offer(&request, &other, &reference, when, p)
        .unwrap_err();
    assert!(
        matches!(&err, EvidenceError::CollateralRefused { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("it is the VCEK of chip"), "{err}");
    // A VCEK under another product's roots: refused.
    let milan_request = CollateralRequest::SnpVcek {
        product: Product::Milan,
        hw_id: HwId(*parsed.chip_id),
        tcb: parsed.reported_tcb,
    };
    assert!(
        service
            .offer(&milan_request, &vcek, &reference, when, p)
            .is_err()
    );
    assert_eq!(service.held_count(), 0);
    service.offer(&request, &vcek, &reference, when, p).unwrap();
    assert_eq!(
        service.needs(&bare, &reference, when),
        vec![vcek_crl(Product::Genoa)]
    );
    service
        .offer(&vcek_crl(Product::Genoa), &crl, &reference, when, p)
        .unwrap();
    assert!(service.needs(&bare, &reference, when).is_empty());
    let offline = evidence::verify(&with_vcek, &reference, when, p).unwrap();
    assert_eq!(service.verify(&bare, &reference, when, p), Ok(offline));
    assert_eq!(service.held_count(), 2);
    // What is held can be sent on: the VCEK's DER and the CRL as fetched.
    assert_eq!(
        service.held_bytes(&request),
        Some(pem::der_or_pem(&vcek, "CERTIFICATE").unwrap().as_slice())
    );
    assert_eq!(
        service.held_bytes(&vcek_crl(Product::Genoa)),
        Some(crl.as_slice())
    );
    assert_eq!(service.held_bytes(&vcek_crl(Product::Milan)), None);
}

// ---------------------------------------------------------------------
// Generated PKI: revocation and CRL rollback.

fn pki_reference(pki: &Pki) -> ReferenceValues {
    refs(&format!(
        r#"{{"snp":[{{"InsecureTrustedRoot":{{"ARK":"{}","ASK":"{}"}}}}]}}"#,
        accord_core::hex::encode(&pki.ark),
        accord_core::hex::encode(&pki.ask)
    ))
}

fn pki_crl(pki: &Pki, revoked: &[u64], number: u64, this_update: &str) -> Vec<u8> {
    crl_numbered(
        "ARK-Milan",
        this_update,
        "2026-04-01T00:00:00Z",
        revoked,
        Some(number),
        &pki.ark_key,
    )
}

/// Offers a CRL for `request` and checks that `evidence` is then refused
/// naming the revoked certificate by role and serial.
struct Revocation<'a> {
    request: CollateralRequest,
    evidence: &'a Evidence,
    reference: &'a ReferenceValues,
    when: UnixTime,
    provider: &'a dyn accord_core::crypto::CryptoProvider,
}

impl Revocation<'_> {
    fn refuses(&self, service: &mut ServiceVerifier, crl: &[u8], role: CertRole, serial: &str) {
        service
            .offer(&self.request, crl, self.reference, self.when, self.provider)
            .unwrap();
        let err = service
            .verify(self.evidence, self.reference, self.when, self.provider)
            .unwrap_err();
        assert_eq!(
            err,
            EvidenceError::Snp(SnpError::Revoked {
                role,
                serial: serial.into()
            })
        );
        assert!(
            err.to_string()
                .contains(&format!("{role} certificate (serial {serial}) is revoked")),
            "{err}"
        );
    }
}

#[test]
fn a_crl_revoking_the_ask_or_the_vcek_refuses_by_name() {
    let pki = pki();
    let reference = pki_reference(&pki);
    let when = at(snp_pki::AT);
    let evidence = snp_evidence(pki.report.clone(), Some(pki.vcek.clone()));
    for provider in providers() {
        let mut service = ServiceVerifier::new();
        service
            .offer(
                &vcek_crl(Product::Milan),
                &pki_crl(&pki, &[5], 1, "2026-02-01T00:00:00Z"),
                &reference,
                when,
                *provider,
            )
            .unwrap();
        service
            .verify(&evidence, &reference, when, *provider)
            .unwrap();
        // A newer CRL lists the ASK: the same chain, cached, is refused;
        // and one listing the VCEK.
        let check = Revocation {
            request: vcek_crl(Product::Milan),
            evidence: &evidence,
            reference: &reference,
            when,
            provider: *provider,
        };
        check.refuses(
            &mut service,
            &pki_crl(&pki, &[5, ASK_SERIAL], 2, "2026-02-02T00:00:00Z"),
            CertRole::Ask,
            "010001",
        );
        check.refuses(
            &mut service,
            &pki_crl(&pki, &[VCEK_SERIAL], 3, "2026-02-03T00:00:00Z"),
            CertRole::Vcek,
            "77",
        );
        assert_eq!(service.counters().refused_revoked, 2);
        // The generated CRL is not AMD's: under genuine roots it is refused.
        let genuine = reference_default();
        assert!(
            service
                .offer(
                    &vcek_crl(Product::Milan),
                    &pki_crl(&pki, &[], 9, "2026-02-04T00:00:00Z"),
                    &genuine,
                    when,
                    *provider
                )
                .is_err()
        );
    }
}

fn vlek_crl(product: Product) -> CollateralRequest {
    CollateralRequest::SnpCrl {
        product,
        signer: SnpSigner::Vlek,
    }
}

/// A VLEK-signed report in service: the VLEK must come with the evidence
/// (it is not fetchable by chip), its CRL is the VLEK CRL (the ARK's list
/// of ASVK-issued certificates, fetched at `/vlek/v1/`), and a VLEK or
/// ASVK that CRL lists is refused by role and serial.
#[test]
fn a_vlek_report_is_checked_against_the_vlek_crl() {
    let pki = pki();
    let vlek = snp_pki::vlek_pki(&pki);
    let hex = accord_core::hex::encode;
    let reference = refs(&format!(
        r#"{{"snp":[{{"InsecureTrustedRoot":{{"ARK":"{}","ASK":"{}","ASVK":"{}"}}}}]}}"#,
        hex(&pki.ark),
        hex(&pki.ask),
        hex(&vlek.asvk)
    ));
    // `ASVK` is optional and written back only when named.
    let root = reference.snp[0].insecure_trusted_root.as_ref().unwrap();
    assert_eq!(root.asvk.as_deref(), Some(vlek.asvk.as_slice()));
    let written = serde_json::to_value(&reference).unwrap();
    assert_eq!(
        written["snp"][0]["InsecureTrustedRoot"]["ASVK"],
        hex(&vlek.asvk)
    );
    let without = serde_json::to_value(pki_reference(&pki)).unwrap();
    assert!(
        without["snp"][0]["InsecureTrustedRoot"]
            .get("ASVK")
            .is_none()
    );
    let when = at(snp_pki::AT);
    let evidence = snp_evidence(vlek.report.clone(), Some(vlek.vlek.clone()));
    let crl = |revoked: &[u64], number: u64, day: &str| {
        pki_crl(&pki, revoked, number, &format!("2026-02-{day}T00:00:00Z"))
    };
    for provider in providers() {
        let offline = evidence::verify(&evidence, &reference, when, *provider);
        let Ok(evidence::Claims::Snp(claims)) = &offline else {
            panic!("{offline:?}");
        };
        assert_eq!(
            claims.signing_key,
            evidence::snp::SigningKey::Vlek,
            "{claims:?}"
        );
        let mut service = ServiceVerifier::new();
        // Only the VLEK CRL is needed: the VLEK came with the evidence.
        assert_eq!(
            service.needs(&evidence, &reference, when),
            vec![vlek_crl(Product::Milan)]
        );
        // The VCEK CRL does not stand in for it: refused, naming it.
        service
            .offer(
                &vcek_crl(Product::Milan),
                &crl(&[], 1, "01"),
                &reference,
                when,
                *provider,
            )
            .unwrap();
        let err = service
            .verify(&evidence, &reference, when, *provider)
            .unwrap_err();
        assert_eq!(
            err,
            EvidenceError::MissingCrl {
                which: Box::new(vlek_crl(Product::Milan))
            }
        );
        assert!(err.to_string().contains("the VLEK CRL of Milan"), "{err}");
        // Held: the offline verdict.
        let first = crl(&[5], 1, "01");
        service
            .offer(
                &vlek_crl(Product::Milan),
                &first,
                &reference,
                when,
                *provider,
            )
            .unwrap();
        assert!(service.needs(&evidence, &reference, when).is_empty());
        assert_eq!(
            service.verify(&evidence, &reference, when, *provider),
            offline
        );
        assert_eq!(
            service.held_bytes(&vlek_crl(Product::Milan)),
            Some(first.as_slice())
        );
        // A newer VLEK CRL lists the VLEK, then one lists the ASVK: each is
        // refused by role and serial, through the cached chain.
        let check = Revocation {
            request: vlek_crl(Product::Milan),
            evidence: &evidence,
            reference: &reference,
            when,
            provider: *provider,
        };
        check.refuses(
            &mut service,
            &crl(&[snp_pki::VLEK_SERIAL], 2, "02"),
            CertRole::Vlek,
            "78",
        );
        check.refuses(
            &mut service,
            &crl(&[snp_pki::ASVK_SERIAL], 3, "03"),
            CertRole::Asvk,
            "010002",
        );
        assert_eq!(service.counters().refused_revoked, 2);
        // Revoking the VLEK touches no VCEK: the VCEK report still passes.
        let vcek_evidence = snp_evidence(pki.report.clone(), Some(pki.vcek.clone()));
        assert!(
            service
                .verify(&vcek_evidence, &reference, when, *provider)
                .is_ok()
        );
        // The same root without its ASVK: a VLEK is refused.
        let no_asvk = pki_reference(&pki);
        assert!(matches!(
            evidence::verify(&evidence, &no_asvk, when, *provider),
            Err(EvidenceError::Snp(SnpError::MissingRoot {
                role: CertRole::Asvk,
                ..
            }))
        ));
    }
}

#[test]
fn crl_numbers_are_read_and_critical_extensions_refused() {
    // The real AMD CRLs carry the numbers the README lists.
    for (path, number) in [
        ("snp/milan-vcek-crl-2025-05-06.der", 6u8),
        ("snp/genoa-vcek-crl-2024-10-23.der", 4),
        ("snp/milan-vcek-crl-2026-08-19.der", 11),
        ("snp/genoa-vcek-crl-2026-08-19.der", 10),
        ("snp/turin-vcek-crl-2026-08-19.der", 7),
    ] {
        let der = vector!(path);
        let crl = accord_core::x509::Crl::from_der(&der).unwrap();
        assert_eq!(crl.crl_number(), Some(&[number][..]), "{path}");
    }
    // A delta CRL (critical deltaCRLIndicator) is not a complete list: it
    // is refused, at parse and at offer.
    let pki = pki();
    let delta = crl_with_extensions(
        "ARK-Milan",
        "2026-02-01T00:00:00Z",
        "2026-04-01T00:00:00Z",
        &[],
        &[delta_crl_indicator(1)],
        &pki.ark_key,
    );
    assert_eq!(
        accord_core::x509::Crl::from_der(&delta).err(),
        Some(accord_core::x509::X509Error::UnknownCriticalExtension)
    );
    let mut service = ServiceVerifier::new();
    let err = service
        .offer(
            &vcek_crl(Product::Milan),
            &delta,
            &pki_reference(&pki),
            at(snp_pki::AT),
            providers()[0],
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("unknown critical extension"),
        "{err}"
    );
    assert_eq!(service.held_count(), 0);
}

fn reference_default() -> ReferenceValues {
    refs(r#"{"snp":[{}]}"#)
}

#[test]
fn a_crl_older_than_the_newest_seen_is_refused_and_changes_nothing() {
    let pki = pki();
    let reference = pki_reference(&pki);
    let when = at(snp_pki::AT);
    let p = providers()[0];
    let evidence = snp_evidence(pki.report.clone(), Some(pki.vcek.clone()));
    let mut service = ServiceVerifier::new();
    // Number 7 lists the VCEK; number 6, older, does not. A host replaying
    // number 6 to hide the revocation is refused.
    service
        .offer(
            &vcek_crl(Product::Milan),
            &pki_crl(&pki, &[VCEK_SERIAL], 7, "2026-02-01T00:00:00Z"),
            &reference,
            when,
            p,
        )
        .unwrap();
    let held = service.held();
    let err = service
        .offer(
            &vcek_crl(Product::Milan),
            &pki_crl(&pki, &[], 6, "2026-02-10T00:00:00Z"),
            &reference,
            when,
            p,
        )
        .unwrap_err();
    assert!(
        matches!(&err, EvidenceError::OlderThanSeen { which, newest_seen, offered }
            if **which == vcek_crl(Product::Milan)
                && newest_seen.contains("CRL number 7")
                && offered.contains("CRL number 6")),
        "{err}"
    );
    assert_eq!(service.held(), held);
    assert_eq!(service.counters().refused_older, 1);
    assert!(matches!(
        service.verify(&evidence, &reference, when, p),
        Err(EvidenceError::Snp(SnpError::Revoked {
            role: CertRole::Vcek,
            ..
        }))
    ));
    // The same number re-issued later is accepted (as new as seen).
    service
        .offer(
            &vcek_crl(Product::Milan),
            &pki_crl(&pki, &[VCEK_SERIAL], 7, "2026-02-05T00:00:00Z"),
            &reference,
            when,
            p,
        )
        .unwrap();
    // A CRL signed by the ASK instead of the ARK: refused, nothing changes.
    let by_ask = crl_numbered(
        "ARK-Milan",
        "2026-02-20T00:00:00Z",
        "2026-04-01T00:00:00Z",
        &[],
        Some(8),
        &pki.ask_key,
    );
    let held = service.held();
    assert!(matches!(
        service.offer(&vcek_crl(Product::Milan), &by_ask, &reference, when, p),
        Err(EvidenceError::CollateralRefused { .. })
    ));
    assert_eq!(service.held(), held);
}

#[test]
fn the_generated_chip_goes_through_the_fetch_path() {
    let pki = pki();
    let reference = pki_reference(&pki);
    let when = at(snp_pki::AT);
    let p = providers()[0];
    let bare = snp_evidence(pki.report.clone(), None);
    let parsed = evidence::snp::AttestationReport::parse(&pki.report).unwrap();
    let request = CollateralRequest::SnpVcek {
        product: Product::Milan,
        hw_id: HwId(PKI_HW_ID),
        tcb: parsed.reported_tcb,
    };
    let mut service = ServiceVerifier::new();
    assert_eq!(
        service.needs(&bare, &reference, when),
        vec![request.clone(), vcek_crl(Product::Milan)]
    );
    for request in service.needs(&bare, &reference, when) {
        let bytes = match &request {
            CollateralRequest::SnpVcek { .. } => pki.vcek.clone(),
            _ => pki_crl(&pki, &[], 1, "2026-02-01T00:00:00Z"),
        };
        service
            .offer(&request, &bytes, &reference, when, p)
            .unwrap();
    }
    assert!(service.needs(&bare, &reference, when).is_empty());
    let claims = service.verify(&bare, &reference, when, p).unwrap();
    assert_eq!(claims.report_data(), [0; 64]);
    assert_eq!(service.chains_cached(), 1);
}

// ---------------------------------------------------------------------
// TDX.

/// The `tdx-more` vectors: name and instant.
const TDX_MORE: &[(&str, &str)] = &[
    ("tdx-v4-teep-neardirect", "2026-04-24T02:10:37Z"),
    ("tdx-v4-teep-nearcloud-gateway", "2026-04-24T02:06:14Z"),
    ("tdx-v4-teep-chutes", "2026-06-29T02:07:25Z"),
    ("tdx-v4-teep-redpill-phala", "2026-06-10T01:49:17Z"),
    ("tdx-v4-teep-tinfoil", "2026-06-29T02:08:05Z"),
    ("tdx-v5-automata-alibaba", "2026-04-24T02:10:37Z"),
    ("tdx-v4-zkdcap", "2025-02-01T00:00:00Z"),
    ("tdx-v4-oak", "2025-11-01T00:00:00Z"),
];

fn text(path: &str) -> Option<String> {
    try_read(path).map(|b| String::from_utf8(b).unwrap())
}

/// Collateral JSON of a `tdx-more` vector, built from its raw PCS parts.
fn pcs_collateral(name: &str) -> Option<Vec<u8>> {
    let dir = "tdx-more";
    let signing = text(&format!("{dir}/{name}-tcb-issuer-chain.pem"))?;
    let collateral = evidence::tdx::Collateral::from_pcs_parts(
        &text(&format!("{dir}/{name}-pcs-tcbinfo.json"))?,
        &signing,
        &text(&format!("{dir}/{name}-pcs-qeidentity.json"))?,
        &signing,
        &try_read(&format!("{dir}/{name}-pcs-pckcrl.der"))?,
        &text(&format!("{dir}/{name}-pckcrl-issuer-chain.pem"))?,
        &try_read(&format!("{dir}/{name}-pcs-rootcrl.der"))?,
    )
    .unwrap();
    Some(collateral.to_json().into_bytes())
}

/// What `needs` lists for a TDX quote: its collateral, or nothing when
/// the quote does not parse (Set 6's unsigned trailer).
fn tdx_request(
    evidence: &Evidence,
    service: &ServiceVerifier,
    when: UnixTime,
) -> Option<CollateralRequest> {
    let needs = service.needs(evidence, &refs(r#"{"tdx":[{}]}"#), when);
    assert!(needs.len() <= 1, "{needs:?}");
    needs.into_iter().next()
}

/// Every real quote, its collateral offered (PCS parts or JSON) and not
/// attached, gets the offline verdict of the quote with the collateral
/// attached; attached instead of offered, too.
#[test]
fn real_tdx_vectors_get_the_offline_verdicts_through_offered_collateral() {
    let reference = refs(r#"{"tdx":[{}]}"#);
    let mut cases: Vec<(String, Vec<u8>, Vec<u8>, UnixTime)> = Vec::new();
    for set in SETS {
        let Some((quote, collateral)) = load(set) else {
            return;
        };
        cases.push((
            format!("set {}", set.name),
            quote,
            collateral.to_json().into_bytes(),
            at(set.at),
        ));
    }
    for (name, instant) in TDX_MORE {
        let quote = vector!(&format!("tdx-more/{name}-quote.bin"));
        let Some(collateral) = pcs_collateral(name) else {
            return;
        };
        cases.push((name.to_string(), quote, collateral, at(instant)));
    }
    let mut accepted = 0;
    let mut unparsed = 0;
    for (name, quote, collateral, when) in &cases {
        for provider in providers() {
            let attached = Evidence::Tdx(TdxEvidence {
                quote: quote.clone(),
                collateral: Some(collateral.clone()),
            });
            let bare = Evidence::Tdx(TdxEvidence {
                quote: quote.clone(),
                collateral: None,
            });
            let offline = evidence::verify(&attached, &reference, *when, *provider);
            // Offered.
            let mut service = ServiceVerifier::new();
            let Some(request) = tdx_request(&bare, &service, *when) else {
                // The quote does not parse: refused alike, for that reason.
                assert!(matches!(
                    offline,
                    Err(EvidenceError::Tdx(evidence::tdx::TdxError::Quote(_)))
                ));
                assert_eq!(service.verify(&bare, &reference, *when, *provider), offline);
                unparsed += 1;
                continue;
            };
            assert!(
                matches!(
                    request,
                    CollateralRequest::TdxCollateral {
                        ca: TdxCa::Platform,
                        ..
                    }
                ),
                "{name}: {request}"
            );
            service
                .offer(&request, collateral, &reference, *when, *provider)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(service.needs(&bare, &reference, *when).is_empty(), "{name}");
            assert_eq!(
                service.verify(&bare, &reference, *when, *provider),
                offline,
                "{name} offered"
            );
            // Attached (and then held: the same bytes again are recognised).
            let mut service = ServiceVerifier::new();
            for _ in 0..2 {
                assert_eq!(
                    service.verify(&attached, &reference, *when, *provider),
                    offline,
                    "{name} attached"
                );
            }
            assert_eq!(service.held_count(), 1, "{name}");
            if offline.is_ok() {
                accepted += 1;
            }
        }
    }
    // Sets 1, 2, 3, 3b and six of the eight tdx-more quotes are UpToDate
    // and not debug.
    assert_eq!(accepted, 9 * providers().len());
    assert_eq!(unparsed, providers().len());
}

#[test]
fn missing_tdx_collateral_is_named_and_min_tcb_evaluation_is_enforced() {
    let p = providers()[0];
    let quote = vector!("tdx-more/tdx-v4-teep-neardirect-quote.bin");
    let Some(collateral) = pcs_collateral("tdx-v4-teep-neardirect") else {
        return;
    };
    let when = at("2026-04-24T02:10:37Z");
    let bare = Evidence::Tdx(TdxEvidence {
        quote,
        collateral: None,
    });
    let mut service = ServiceVerifier::new();
    let request = CollateralRequest::TdxCollateral {
        fmspc: [0x90, 0xc0, 0x6f, 0, 0, 0],
        ca: TdxCa::Platform,
    };
    let any = refs(r#"{"tdx":[{}]}"#);
    let err = service.verify(&bare, &any, when, p).unwrap_err();
    assert_eq!(
        err,
        EvidenceError::MissingCollateralFor {
            which: Box::new(request.clone())
        }
    );
    assert!(
        err.to_string()
            .contains("TDX collateral for FMSPC 90c06f000000 (platform CA)"),
        "{err}"
    );
    service.offer(&request, &collateral, &any, when, p).unwrap();
    assert_eq!(
        service.newest_tcb_evaluation([0x90, 0xc0, 0x6f, 0, 0, 0]),
        Some(18)
    );
    assert_eq!(service.held_bytes(&request), Some(collateral.as_slice()));
    // The collateral has tcbEvaluationDataNumber 18.
    let min18 = refs(r#"{"tdx":[{"MinTCBEvaluationDataNumber":18}]}"#);
    let min19 = refs(r#"{"tdx":[{"MinTCBEvaluationDataNumber":19}]}"#);
    assert!(service.verify(&bare, &min18, when, p).is_ok());
    let err = service.verify(&bare, &min19, when, p).unwrap_err();
    assert!(
        err.to_string()
            .contains("MinTCBEvaluationDataNumber: expected at least 19, collateral has 18"),
        "{err}"
    );
    // Past its window the held collateral is refused by name, and needed.
    let late = at("2026-06-01T00:00:00Z");
    let err = service.verify(&bare, &any, late, p).unwrap_err();
    assert!(
        matches!(&err, EvidenceError::StaleCollateral { which, .. } if **which == request),
        "{err}"
    );
    assert!(
        err.to_string().starts_with(
            "TDX collateral for FMSPC 90c06f000000 (platform CA), as held, is stale: valid "
        ),
        "{err}"
    );
    assert_eq!(service.needs(&bare, &any, late), vec![request.clone()]);
    // Offered for another FMSPC: refused.
    let other = CollateralRequest::TdxCollateral {
        fmspc: [0xb0, 0xc0, 0x6f, 0, 0, 0],
        ca: TdxCa::Platform,
    };
    let err = service
        .offer(&other, &collateral, &any, when, p)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("it is TDX collateral for FMSPC 90c06f000000"),
        "{err}"
    );
}

/// Real collateral for FMSPC 90c06f000000: redpill-phala (PCK CRL of
/// 2026-06-10, valid to 2026-07-10) and chutes (PCK CRL of 2026-06-29),
/// both current at 2026-06-29T03:00Z, both tcbEvaluationDataNumber 19, and
/// neardirect (tcbEvaluationDataNumber 18, April 2026).
#[test]
fn attached_tdx_collateral_is_used_only_if_at_least_as_new() {
    let p = providers()[0];
    let any = refs(r#"{"tdx":[{}]}"#);
    let quote = vector!("tdx-more/tdx-v4-teep-tinfoil-quote.bin");
    let (Some(phala), Some(chutes), Some(near)) = (
        pcs_collateral("tdx-v4-teep-redpill-phala"),
        pcs_collateral("tdx-v4-teep-chutes"),
        pcs_collateral("tdx-v4-teep-neardirect"),
    ) else {
        return;
    };
    let when = at("2026-06-29T03:00:00Z");
    let request = CollateralRequest::TdxCollateral {
        fmspc: [0x90, 0xc0, 0x6f, 0, 0, 0],
        ca: TdxCa::Platform,
    };
    let with = |collateral: &[u8]| {
        Evidence::Tdx(TdxEvidence {
            quote: quote.clone(),
            collateral: Some(collateral.to_vec()),
        })
    };
    let pck_crl_of = |service: &ServiceVerifier| {
        service
            .held()
            .into_iter()
            .find(|h| h.which == request)
            .map(|h| h.next_update)
    };

    // Held: chutes. Attached: phala, whose PCK CRL is older. The held one
    // is used, and stays held.
    let mut service = ServiceVerifier::new();
    service.offer(&request, &chutes, &any, when, p).unwrap();
    let held = pck_crl_of(&service);
    for passed_over in 1..=2 {
        // The second time it is recognised without being verified again.
        assert!(service.verify(&with(&phala), &any, when, p).is_ok());
        assert_eq!(pck_crl_of(&service), held);
        assert_eq!(service.counters().refused_older, passed_over);
    }
    // Offered, the older one is refused.
    let err = service.offer(&request, &phala, &any, when, p).unwrap_err();
    assert!(
        matches!(&err, EvidenceError::OlderThanSeen { which, newest_seen, offered }
            if **which == request
                && newest_seen.contains("2026-06-29T00:55:06Z")
                && offered.contains("2026-06-10T01:24:13Z")),
        "{err}"
    );
    assert_eq!(pck_crl_of(&service), held);

    // Held: phala. Attached: chutes, newer. It is used and kept.
    let mut service = ServiceVerifier::new();
    service.offer(&request, &phala, &any, when, p).unwrap();
    assert_eq!(pck_crl_of(&service), Some(at("2026-07-10T00:36:28Z")));
    assert!(service.verify(&with(&chutes), &any, when, p).is_ok());
    assert_eq!(pck_crl_of(&service), Some(at("2026-07-29T00:55:06Z")));
    // Now phala attached is older than the newest seen: the held chutes is
    // used.
    assert!(service.verify(&with(&phala), &any, when, p).is_ok());
    assert_eq!(pck_crl_of(&service), Some(at("2026-07-29T00:55:06Z")));

    // tcbEvaluationDataNumber: after 19 was seen, 18 is refused when
    // offered (at an instant where it would otherwise be current) ...
    let near_at = at("2026-04-24T02:10:37Z");
    let err = service
        .offer(&request, &near, &any, near_at, p)
        .unwrap_err();
    assert!(
        matches!(&err, EvidenceError::OlderThanSeen { newest_seen, offered, .. }
            if newest_seen.contains("tcbEvaluationDataNumber 19")
                && offered.contains("tcbEvaluationDataNumber 18")),
        "{err}"
    );
    // ... and when attached, the held collateral (not yet valid then) is
    // the only candidate: refused as stale, not judged by the older one.
    let near_quote = vector!("tdx-more/tdx-v4-teep-neardirect-quote.bin");
    let attached = Evidence::Tdx(TdxEvidence {
        quote: near_quote,
        collateral: Some(near.clone()),
    });
    assert!(evidence::verify(&attached, &any, near_at, p).is_ok());
    let err = service.verify(&attached, &any, near_at, p).unwrap_err();
    assert!(
        matches!(&err, EvidenceError::StaleCollateral { which, .. } if **which == request),
        "{err}"
    );
    assert!(
        err.to_string().contains("as held, is not yet valid"),
        "{err}"
    );
    assert!(service.counters().refused_older >= 2);
    // With nothing held and no mark, the same attachment is used.
    let mut fresh = ServiceVerifier::new();
    assert!(fresh.verify(&attached, &any, near_at, p).is_ok());
}

#[test]
fn tampered_tdx_collateral_is_refused_and_changes_nothing() {
    let p = providers()[0];
    let any = refs(r#"{"tdx":[{}]}"#);
    let Some(collateral) = pcs_collateral("tdx-v4-teep-chutes") else {
        return;
    };
    let when = at("2026-06-29T02:07:25Z");
    let request = CollateralRequest::TdxCollateral {
        fmspc: [0x90, 0xc0, 0x6f, 0, 0, 0],
        ca: TdxCa::Platform,
    };
    let mut service = ServiceVerifier::new();
    let parsed = evidence::tdx::Collateral::from_json(&collateral).unwrap();
    // The TCB info with one digit changed, the PCK CRL with one bit flipped.
    let mut tcb = parsed.clone();
    tcb.tcb_info = tcb.tcb_info.replacen(
        "\"tcbEvaluationDataNumber\":19",
        "\"tcbEvaluationDataNumber\":20",
        1,
    );
    assert_ne!(tcb.tcb_info, parsed.tcb_info);
    let mut crl = parsed.clone();
    let middle = crl.pck_crl.len() / 2;
    crl.pck_crl[middle] ^= 1;
    for bad in [
        tcb.to_json().into_bytes(),
        crl.to_json().into_bytes(),
        b"{}".to_vec(),
    ] {
        let err = service.offer(&request, &bad, &any, when, p).unwrap_err();
        assert!(
            matches!(err, EvidenceError::CollateralRefused { .. }),
            "{err}"
        );
        assert_eq!(service.held_count(), 0);
        assert_eq!(service.newest_tcb_evaluation(request_fmspc(&request)), None);
    }
    service.offer(&request, &collateral, &any, when, p).unwrap();
    assert_eq!(
        service.newest_tcb_evaluation(request_fmspc(&request)),
        Some(19)
    );
    // A tampered attachment is ignored in favour of the held collateral.
    let quote = vector!("tdx-more/tdx-v4-teep-chutes-quote.bin");
    let evidence = Evidence::Tdx(TdxEvidence {
        quote,
        collateral: Some(tcb.to_json().into_bytes()),
    });
    assert!(service.verify(&evidence, &any, when, p).is_ok());
    assert_eq!(
        service.newest_tcb_evaluation(request_fmspc(&request)),
        Some(19)
    );
}

fn request_fmspc(request: &CollateralRequest) -> [u8; 6] {
    match request {
        CollateralRequest::TdxCollateral { fmspc, .. } => *fmspc,
        _ => unreachable!(),
    }
}

#[path = "tdx_pki.rs"]
mod tdx_pki;

/// FMSPC of the generated TDX platforms: that of `tdx-v4-teep-chutes`,
/// so that Intel's and a generated root's collateral cover the same one.
const SIM_FMSPC: [u8; 6] = [0x90, 0xc0, 0x6f, 0, 0, 0];

fn tdx_evidence(quote: Vec<u8>, collateral: Option<Vec<u8>>) -> Evidence {
    Evidence::Tdx(TdxEvidence { quote, collateral })
}

fn sim_request() -> CollateralRequest {
    CollateralRequest::TdxCollateral {
        fmspc: SIM_FMSPC,
        ca: TdxCa::Platform,
    }
}

/// A quote and collateral under a generated root verify in service when
/// the entry names that root (offered or attached), as offline; an entry
/// naming none (Intel's root) or another root refuses them by name, and
/// collateral held under one root never judges a quote for another.
#[test]
fn a_tdx_quote_under_an_explicit_root_verifies_only_for_an_entry_naming_it() {
    let when = UnixTime(tdx_pki::ISSUED.0 + 86_400);
    let platform = tdx_pki::Platform::new(1, SIM_FMSPC);
    let other = tdx_pki::Platform::new(2, SIM_FMSPC);
    let quote = platform.quote(&[0x42; 64]);
    let collateral = platform.collateral(tdx_pki::ISSUED, 17);
    let root = evidence::tdx::TrustedRoot {
        root_ca: platform.root.clone(),
    };
    let named = refs(&format!(r#"{{"tdx":[{}]}}"#, platform.entry()));
    let genuine = refs(r#"{"tdx":[{}]}"#);
    let another = refs(&format!(r#"{{"tdx":[{}]}}"#, other.entry()));
    let bare = tdx_evidence(quote.clone(), None);
    let attached = tdx_evidence(quote.clone(), Some(collateral.clone()));
    for p in providers() {
        let p = *p;
        // Offline, for comparison.
        let offline = evidence::verify(&attached, &named, when, p).unwrap();
        assert!(evidence::verify(&attached, &genuine, when, p).is_err());

        // Named root, offered: fetched, kept under it, then verified.
        let mut service = ServiceVerifier::new();
        assert_eq!(service.needs(&bare, &named, when), vec![sim_request()]);
        service
            .offer(&sim_request(), &collateral, &named, when, p)
            .unwrap();
        assert!(service.needs(&bare, &named, when).is_empty());
        assert_eq!(service.verify(&bare, &named, when, p).unwrap(), offline);
        assert_eq!(
            service.newest_tcb_evaluation_under(SIM_FMSPC, Some(&root)),
            Some(17)
        );
        assert_eq!(service.newest_tcb_evaluation(SIM_FMSPC), None);
        assert_eq!(
            service.held_bytes(&sim_request()),
            Some(collateral.as_slice())
        );
        // The held collateral does not serve an entry naming no root or
        // another root: nothing is held under theirs.
        for reference in [&genuine, &another] {
            assert_eq!(service.needs(&bare, reference, when), vec![sim_request()]);
            let err = service.verify(&bare, reference, when, p).unwrap_err();
            assert_eq!(
                err,
                EvidenceError::MissingCollateralFor {
                    which: Box::new(sim_request())
                },
                "{err}"
            );
            // Offered under it, it does not authenticate.
            let err = service
                .offer(&sim_request(), &collateral, reference, when, p)
                .unwrap_err();
            assert!(
                matches!(err, EvidenceError::CollateralRefused { .. }),
                "{err}"
            );
            // Attached, it is refused with the reason it does not chain.
            let err = service.verify(&attached, reference, when, p).unwrap_err();
            assert!(matches!(err, EvidenceError::Tdx(_)), "{err}");
        }
        assert_eq!(service.held_count(), 1);

        // Named root, attached: authenticated under it and kept.
        let mut service = ServiceVerifier::new();
        assert_eq!(service.verify(&attached, &named, when, p).unwrap(), offline);
        assert_eq!(service.held_count(), 1);
        assert!(service.needs(&bare, &named, when).is_empty());
    }
}

/// A platform whose PCK certificate the PCK Processor CA issued (not the
/// Platform CA): its collateral is requested, held and used as the
/// Processor CA's (`ca=processor`), apart from the Platform CA's; its PCK
/// CRL is the Processor CA's, and a PCK it lists is refused.
#[test]
fn a_processor_ca_platform_uses_the_processor_ca_pck_crl() {
    let when = UnixTime(tdx_pki::ISSUED.0 + 86_400);
    let platform = tdx_pki::Platform::with_ca(4, SIM_FMSPC, TdxCa::Processor);
    let named = refs(&format!(r#"{{"tdx":[{}]}}"#, platform.entry()));
    let processor = CollateralRequest::TdxCollateral {
        fmspc: SIM_FMSPC,
        ca: TdxCa::Processor,
    };
    let bare = tdx_evidence(platform.quote(&[0x24; 64]), None);
    let collateral = platform.collateral(tdx_pki::ISSUED, 17);
    // The same root and FMSPC under the Platform CA: its PCK CRL is not
    // the Processor CA's.
    let platform_ca = tdx_pki::Platform::new(4, SIM_FMSPC);
    let platform_collateral = platform_ca.collateral(tdx_pki::ISSUED, 17);
    for p in providers() {
        let p = *p;
        let offline = evidence::verify(
            &tdx_evidence(platform.quote(&[0x24; 64]), Some(collateral.clone())),
            &named,
            when,
            p,
        )
        .unwrap();
        let mut service = ServiceVerifier::new();
        assert_eq!(service.needs(&bare, &named, when), vec![processor.clone()]);
        // The Platform CA's collateral offered for the Processor CA: refused.
        let err = service
            .offer(&processor, &platform_collateral, &named, when, p)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("it is TDX collateral for FMSPC 90c06f000000 (platform CA)"),
            "{err}"
        );
        service
            .offer(&processor, &collateral, &named, when, p)
            .unwrap();
        assert!(service.needs(&bare, &named, when).is_empty());
        assert_eq!(service.verify(&bare, &named, when, p).unwrap(), offline);
        assert_eq!(service.held_bytes(&processor), Some(collateral.as_slice()));
        assert_eq!(service.held_bytes(&sim_request()), None);
        // A newer issue whose Processor CA CRL lists the PCK: refused.
        let revoking = platform.collateral_revoking(
            UnixTime(tdx_pki::ISSUED.0 + 3_600),
            17,
            &[platform.pck_serial()],
        );
        service
            .offer(&processor, &revoking, &named, when, p)
            .unwrap();
        let err = service.verify(&bare, &named, when, p).unwrap_err();
        assert!(
            matches!(
                &err,
                EvidenceError::Tdx(evidence::tdx::TdxError::Revoked(_))
            ),
            "{err}"
        );
        assert_eq!(service.counters().refused_revoked, 1);
    }
}

/// Each root has its own freshness marks and held collateral for the same
/// FMSPC: a generated root's high `tcbEvaluationDataNumber` does not
/// refuse Intel's collateral, nor another generated root's; with entries
/// under several roots, each quote is judged under its own, and the real
/// quote keeps its offline verdict.
#[test]
fn tdx_roots_have_their_own_marks_and_collateral() {
    let p = providers()[0];
    let sim_when = UnixTime(tdx_pki::ISSUED.0 + 86_400);
    let a = tdx_pki::Platform::new(1, SIM_FMSPC);
    let b = tdx_pki::Platform::new(2, SIM_FMSPC);
    let both = refs(&format!(r#"{{"tdx":[{},{}]}}"#, a.entry(), b.entry()));
    let root_of = |platform: &tdx_pki::Platform| evidence::tdx::TrustedRoot {
        root_ca: platform.root.clone(),
    };
    let mut service = ServiceVerifier::new();
    service
        .offer(
            &sim_request(),
            &a.collateral(tdx_pki::ISSUED, 900),
            &both,
            sim_when,
            p,
        )
        .unwrap();
    // B's lower number is not below A's mark.
    let quote_b = tdx_evidence(b.quote(&[1; 64]), None);
    assert_eq!(
        service.needs(&quote_b, &both, sim_when),
        vec![sim_request()]
    );
    service
        .offer(
            &sim_request(),
            &b.collateral(tdx_pki::ISSUED, 17),
            &both,
            sim_when,
            p,
        )
        .unwrap();
    assert_eq!(
        service.newest_tcb_evaluation_under(SIM_FMSPC, Some(&root_of(&a))),
        Some(900)
    );
    assert_eq!(
        service.newest_tcb_evaluation_under(SIM_FMSPC, Some(&root_of(&b))),
        Some(17)
    );
    // But under A's own root, older than its mark is refused.
    let err = service
        .offer(
            &sim_request(),
            &a.collateral(tdx_pki::ISSUED, 17),
            &both,
            sim_when,
            p,
        )
        .unwrap_err();
    assert!(matches!(err, EvidenceError::OlderThanSeen { .. }), "{err}");
    let quote_a = tdx_evidence(a.quote(&[2; 64]), None);
    for quote in [&quote_a, &quote_b] {
        assert!(service.needs(quote, &both, sim_when).is_empty());
        service.verify(quote, &both, sim_when, p).unwrap();
    }
    assert_eq!(service.held_count(), 2);
    // A quote under a third root: refused under each root, named.
    let c = tdx_pki::Platform::new(3, SIM_FMSPC);
    let quote_c = tdx_evidence(c.quote(&[3; 64]), None);
    match service.verify(&quote_c, &both, sim_when, p).unwrap_err() {
        EvidenceError::NoEntryMatched(reasons) => {
            assert_eq!(reasons.len(), 2, "{reasons:?}");
            assert!(
                reasons
                    .iter()
                    .all(|r| r.starts_with("under the entry's InsecureTrustedRoot")),
                "{reasons:?}"
            );
        }
        err => panic!("{err}"),
    }

    // Intel's collateral for the same FMSPC, beside the generated roots'.
    let Some(real) = pcs_collateral("tdx-v4-teep-chutes") else {
        return;
    };
    let real_quote = vector!("tdx-more/tdx-v4-teep-chutes-quote.bin");
    let real_when = at("2026-06-29T02:07:25Z");
    let mixed = refs(&format!(r#"{{"tdx":[{},{{}}]}}"#, a.entry()));
    let offline = evidence::verify(
        &tdx_evidence(real_quote.clone(), Some(real.clone())),
        &refs(r#"{"tdx":[{}]}"#),
        real_when,
        p,
    )
    .unwrap();
    service
        .offer(&sim_request(), &real, &mixed, real_when, p)
        .unwrap();
    assert_eq!(service.newest_tcb_evaluation(SIM_FMSPC), Some(19));
    let real_bare = tdx_evidence(real_quote, None);
    assert!(service.needs(&real_bare, &mixed, real_when).is_empty());
    assert_eq!(
        service.verify(&real_bare, &mixed, real_when, p).unwrap(),
        offline
    );
    // The real quote is refused by an entry naming only a generated root.
    let only_a = refs(&format!(r#"{{"tdx":[{}]}}"#, a.entry()));
    assert!(service.verify(&real_bare, &only_a, real_when, p).is_err());
}

#[test]
fn a_carried_crl_that_was_refused_is_named_by_its_refusal() {
    let pki = pki();
    let reference = pki_reference(&pki);
    let when = at(snp_pki::AT);
    let p = providers()[0];
    let carrying = |crl: &[u8]| {
        Evidence::Snp(SnpEvidence {
            report: pki.report.clone(),
            vcek: Some(pki.vcek.clone()),
            crl: Some(crl.to_vec()),
            ..Default::default()
        })
    };
    // Signed by the ASK instead of the ARK: offered (as a peer's carried
    // CRL is) and refused, then named by that refusal at verification.
    let by_ask = crl_numbered(
        "ARK-Milan",
        "2026-02-20T00:00:00Z",
        "2026-04-01T00:00:00Z",
        &[],
        Some(8),
        &pki.ask_key,
    );
    let mut service = ServiceVerifier::new();
    let refusal = service
        .offer(&vcek_crl(Product::Milan), &by_ask, &reference, when, p)
        .unwrap_err();
    let err = service
        .verify(&carrying(&by_ask), &reference, when, p)
        .unwrap_err();
    assert_eq!(err, refusal);
    assert!(
        err.to_string().contains("not signed by the Milan ARK"),
        "{err}"
    );
    // Evidence carrying another CRL that was never offered, or none: the
    // CRL is missing, by name.
    let other = pki_crl(&pki, &[], 1, "2026-02-01T00:00:00Z");
    for evidence in [
        carrying(&other),
        snp_evidence(pki.report.clone(), Some(pki.vcek.clone())),
    ] {
        let err = service.verify(&evidence, &reference, when, p).unwrap_err();
        assert!(matches!(err, EvidenceError::MissingCrl { .. }), "{err}");
    }
    // Once a CRL is held, it decides, whatever was refused.
    service
        .offer(&vcek_crl(Product::Milan), &other, &reference, when, p)
        .unwrap();
    service
        .verify(&carrying(&by_ask), &reference, when, p)
        .unwrap();
}
