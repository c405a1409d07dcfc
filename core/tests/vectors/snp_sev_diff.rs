//! Differential test against virtee/sev 8 (`crypto_nossl` backend): for
//! every SNP vector, sev's parsed fields equal ours, and sev's chain+report
//! verification agrees with ours, on the genuine inputs, on swapped leaf
//! certificates and on single-byte mutations. (sev checks no validity
//! periods, so ours runs at each vector's documented instant.)

use accord_core::evidence::snp::{self, Certs, SnpClaims, TrustRoots, VerifiedChain};
use accord_core::x509::pem;
use sev::certs::snp::{Certificate, Chain, Verifiable, ca};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;

use crate::common::{at, providers};
use crate::snp::{CASES, Case};
use crate::vector;

/// The last provider listed (aws-lc-rs when compiled in): this test compares
/// verdicts, not providers.
fn fastest() -> &'static dyn accord_core::crypto::CryptoProvider {
    *providers().last().unwrap()
}

fn der(bytes: &[u8]) -> Vec<u8> {
    pem::der_or_pem(bytes, "CERTIFICATE").unwrap()
}

/// The (ARK, intermediate) DER for a case, from the test data.
fn anchors(case: &Case) -> Option<(Vec<u8>, Vec<u8>)> {
    let product = case
        .report
        .trim_start_matches("snp/")
        .split('-')
        .next()
        .unwrap();
    let ark = crate::common::try_read(&format!("snp/{product}-ark.pem"))?;
    let inter = if case.flags == 4 {
        let bundle = crate::common::try_read(&format!("snp/{product}-asvk-ark.pem"))?;
        pem::decode_all(std::str::from_utf8(&bundle).unwrap(), "CERTIFICATE")
            .unwrap()
            .remove(0)
    } else {
        der(&crate::common::try_read(&format!("snp/{product}-ask.pem"))?)
    };
    Some((der(&ark), inter))
}

fn sev_verifies(ark: &[u8], inter: &[u8], leaf: &[u8], report: &[u8]) -> bool {
    let Ok(parsed) = AttestationReport::from_bytes(report) else {
        return false;
    };
    let chain = Chain {
        ca: ca::Chain {
            ark: Certificate::from_der(ark).unwrap(),
            ask: Certificate::from_der(inter).unwrap(),
        },
        vek: Certificate::from_der(leaf).unwrap(),
    };
    (&chain, &parsed).verify().is_ok()
}

/// sev's report-signature check alone (the chain was checked once).
fn sev_report_verifies(leaf: &Certificate, report: &[u8]) -> bool {
    let Ok(parsed) = AttestationReport::from_bytes(report) else {
        return false;
    };
    (leaf, &parsed).verify().is_ok()
}

fn ours(case: &Case, report: &[u8], leaf: &[u8]) -> Result<SnpClaims, snp::SnpError> {
    snp::verify(
        report,
        &Certs { leaf },
        None,
        &TrustRoots::genuine(),
        None,
        at(case.instant),
        fastest(),
    )
}

#[test]
fn sev_parses_the_same_fields() {
    for case in CASES {
        let report = vector!(case.report);
        let leaf = der(&vector!(case.cert));
        let theirs = AttestationReport::from_bytes(&report).unwrap();
        let c = ours(case, &report, &leaf).unwrap();
        let name = case.report;
        assert_eq!(theirs.version, c.version, "{name}");
        assert_eq!(theirs.guest_svn, c.guest_svn, "{name}");
        assert_eq!(u64::from(theirs.policy), c.policy.raw, "{name}");
        assert_eq!(theirs.family_id, c.family_id.0, "{name}");
        assert_eq!(theirs.image_id, c.image_id.0, "{name}");
        assert_eq!(theirs.vmpl, c.vmpl, "{name}");
        assert_eq!(theirs.sig_algo, c.signature_algo, "{name}");
        assert_eq!(u64::from(theirs.plat_info), c.platform_info.raw, "{name}");
        assert_eq!(theirs.report_data, c.report_data.0, "{name}");
        assert_eq!(theirs.measurement, c.measurement.0, "{name}");
        assert_eq!(theirs.host_data, c.host_data.0, "{name}");
        assert_eq!(theirs.id_key_digest, c.id_key_digest.0, "{name}");
        assert_eq!(theirs.author_key_digest, c.author_key_digest.0, "{name}");
        assert_eq!(theirs.report_id, c.report_id.0, "{name}");
        assert_eq!(theirs.report_id_ma, c.report_id_ma.0, "{name}");
        assert_eq!(theirs.chip_id, c.chip_id.0, "{name}");
        for (t, o) in [
            (theirs.reported_tcb, c.reported_tcb.parts),
            (theirs.current_tcb, c.current_tcb.parts),
            (theirs.committed_tcb, c.committed_tcb.parts),
            (theirs.launch_tcb, c.launch_tcb.parts),
        ] {
            assert_eq!(
                (t.fmc, t.bootloader, t.tee, t.snp, t.microcode),
                (o.fmc, o.bootloader, o.tee, o.snp, o.microcode),
                "{name}"
            );
        }
        assert_eq!(
            (theirs.cpuid_fam_id, theirs.cpuid_mod_id, theirs.cpuid_step),
            (
                c.cpuid.map(|x| x.family),
                c.cpuid.map(|x| x.model),
                c.cpuid.map(|x| x.stepping)
            ),
            "{name}"
        );
        assert_eq!(
            (
                theirs.current.major,
                theirs.current.minor,
                theirs.current.build
            ),
            (
                c.current_version.major,
                c.current_version.minor,
                c.current_version.build
            ),
            "{name}"
        );
        assert_eq!(
            (
                theirs.committed.major,
                theirs.committed.minor,
                theirs.committed.build
            ),
            (
                c.committed_version.major,
                c.committed_version.minor,
                c.committed_version.build
            ),
            "{name}"
        );
        assert_eq!(theirs.launch_mit_vector, c.launch_mit_vector, "{name}");
        assert_eq!(theirs.current_mit_vector, c.current_mit_vector, "{name}");
    }
}

#[test]
fn sev_agrees_on_verification() {
    for case in CASES {
        let report = vector!(case.report);
        let leaf = der(&vector!(case.cert));
        let Some((ark, inter)) = anchors(case) else {
            return;
        };
        assert!(
            sev_verifies(&ark, &inter, &leaf, &report),
            "{}",
            case.report
        );
        assert!(ours(case, &report, &leaf).is_ok(), "{}", case.report);

        // Every other leaf (with its own anchors): both refuse.
        for other in CASES.iter().filter(|o| o.cert != case.cert) {
            let other_leaf = der(&vector!(other.cert));
            let Some((o_ark, o_inter)) = anchors(other) else {
                return;
            };
            let theirs = sev_verifies(&o_ark, &o_inter, &other_leaf, &report);
            let mine = ours(case, &report, &other_leaf).is_ok();
            assert_eq!(theirs, mine, "{} with {}", case.report, other.cert);
            assert!(!mine);
        }

        // Mutations across the signed region (every 3rd byte keeps this
        // fast; the full sweep is in snp.rs): we refuse all of them. sev
        // verifies the signature over its *re-encoding* of the parsed
        // report, which writes zeros where the input had reserved bytes
        // (including the reserved bytes inside TCB_VERSION fields), so it
        // accepts reports whose reserved bytes were changed. Where the two
        // disagree, that must be the reason.
        let mut mutated = report.clone();
        let mut sev_accepts_mutation = 0;
        let sev_leaf = Certificate::from_der(&leaf).unwrap();
        let chain = VerifiedChain::verify(
            &Certs { leaf: &leaf },
            None,
            &TrustRoots::genuine(),
            None,
            at(case.instant),
            fastest(),
        )
        .unwrap();
        for offset in (0..snp::SIGNED_LEN).step_by(3) {
            mutated[offset] ^= 0x20;
            let theirs = sev_report_verifies(&sev_leaf, &mutated);
            let mine =
                snp::verify_with_chain(&chain, &mutated, at(case.instant), fastest()).is_ok();
            assert!(!mine, "{} offset {offset:#x}", case.report);
            if theirs {
                let reencoded = AttestationReport::from_bytes(&mutated)
                    .unwrap()
                    .to_bytes()
                    .unwrap();
                assert_ne!(
                    &reencoded[..],
                    &mutated[..],
                    "{} offset {offset:#x}",
                    case.report
                );
                assert_eq!(&reencoded[..snp::SIGNED_LEN], &report[..snp::SIGNED_LEN]);
                sev_accepts_mutation += 1;
            }
            mutated[offset] ^= 0x20;
        }
        eprintln!(
            "{}: sev accepted {sev_accepts_mutation} reserved-byte mutations that accord refuses",
            case.report
        );
    }
}
