//! The INSECURE simulated SEV-SNP chip against the core's real verifier:
//! reports v3 (Genoa) and v5 (Turin) verify with every crypto provider
//! against the simulated root, and only against it; persistence reloads the
//! same chip and names corrupted files. Its ARK-signed CRL has AMD's shape,
//! is enforced by the core's revocation check and verifies with `openssl
//! crl -CAfile`.
//!
//! RSA-4096 key generation is slow, so each product's chip is created once
//! in `target/tmp/` and reused by every test and every later test run.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use accord_core::crypto::all_providers;
use accord_core::evidence::snp::{
    self, CertRole, Certs, Product, SnpError, TcbVersion, TrustRoots,
};
use accord_core::evidence::{self, Claims, Evidence, EvidenceError, ReferenceValues};
use accord_core::time::UnixTime;
use accord_core::x509::Certificate;
use accord_guest::tee::TeeProvider;
use accord_guest::tee::simulated::{self, CrlSpec, SimulatedConfig, SimulatedError, SimulatedSnp};

const MEASUREMENT: [u8; 48] = [0x11; 48];
const HOST_DATA: [u8; 32] = [0x22; 32];
const REPORT_DATA: [u8; 64] = [0x33; 64];

fn now() -> UnixTime {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    UnixTime(i64::try_from(secs).unwrap())
}

fn config(product: Product) -> SimulatedConfig {
    SimulatedConfig {
        product,
        measurement: MEASUREMENT,
        host_data: HOST_DATA,
        ..SimulatedConfig::default()
    }
}

fn shared_dir(product: Product) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("accord-simulated-chip-{product}"))
}

/// The shared chip of `product` (created on the first run, loaded after).
fn chip(product: Product) -> &'static SimulatedSnp {
    static GENOA: OnceLock<SimulatedSnp> = OnceLock::new();
    static TURIN: OnceLock<SimulatedSnp> = OnceLock::new();
    let cell = match product {
        Product::Turin => &TURIN,
        _ => &GENOA,
    };
    cell.get_or_init(|| SimulatedSnp::open(&shared_dir(product), &config(product)).unwrap())
}

fn snp_parts(evidence: &Evidence) -> &evidence::SnpEvidence {
    match evidence {
        Evidence::Snp(snp) => snp,
        Evidence::Tdx(_) => panic!("not SNP"),
    }
}

/// A fresh directory under `target/tmp/`.
fn scratch_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "accord-simulated-{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn copy_chip(from: &Path, name: &str) -> PathBuf {
    let dir = scratch_dir(name);
    for file in simulated::FILES {
        std::fs::copy(from.join(file), dir.join(file)).unwrap();
    }
    dir
}

#[test]
fn reports_verify_against_the_simulated_root_with_every_provider() {
    for (product, version, cpuid) in [
        (Product::Genoa, 3, (0x19, 0x11)),
        (Product::Turin, 5, (0x1a, 0x02)),
    ] {
        let chip = chip(product);
        assert_eq!(chip.name(), "insecure-simulated");
        assert!(chip.is_insecure());
        let evidence = chip.evidence(&REPORT_DATA).unwrap();
        let snp_evidence = snp_parts(&evidence);
        assert_eq!(snp_evidence.report.len(), snp::REPORT_LEN);
        let root = chip.trusted_root();
        assert_eq!(snp_evidence.ark.as_deref(), Some(root.ark.as_slice()));
        assert_eq!(snp_evidence.ask.as_deref(), Some(root.ask.as_slice()));
        let vcek = snp_evidence.vcek.as_deref().unwrap();
        let reference = ReferenceValues {
            snp: vec![chip.reference_values()],
            tdx: vec![],
        };
        for provider in all_providers() {
            let claims = snp::verify(
                &snp_evidence.report,
                &Certs { leaf: vcek },
                None,
                &TrustRoots::custom(&root.ark, &root.ask),
                None,
                now(),
                *provider,
            )
            .unwrap();
            assert!(!claims.genuine_roots);
            assert_eq!(claims.product, product);
            assert_eq!(claims.product_name, product.name());
            assert_eq!(claims.version, version);
            let c = claims.cpuid.unwrap();
            assert_eq!((c.family, c.model), cpuid);
            assert_eq!(claims.measurement.0, MEASUREMENT);
            assert_eq!(claims.host_data.0, HOST_DATA);
            assert_eq!(claims.report_data.0, REPORT_DATA);
            assert_eq!(claims.chip_id.0, chip.chip_id());
            assert_eq!(claims.policy.raw, 0x30000);
            assert_eq!(claims.report_id_ma.0, [0xff; 32]);
            assert_eq!(claims.platform_info.raw, simulated::PLATFORM_INFO);
            for tcb in [
                &claims.reported_tcb,
                &claims.current_tcb,
                &claims.committed_tcb,
                &claims.launch_tcb,
            ] {
                assert_eq!(tcb.parts, chip.tcb());
            }
            assert_eq!(chip.tcb(), simulated::default_tcb(product));
            assert_eq!(
                claims.launch_mit_vector.is_some(),
                product == Product::Turin
            );
            if product == Product::Turin {
                assert!(chip.chip_id()[8..].iter().all(|b| *b == 0));
                assert!(chip.chip_id()[..8].iter().any(|b| *b != 0));
            }

            let Claims::Snp(checked) =
                evidence::verify(&evidence, &reference, now(), *provider).unwrap()
            else {
                panic!("not SNP claims");
            };
            assert_eq!(*checked, claims);
            assert_eq!(checked.report_data.0, REPORT_DATA);
        }
    }
}

#[test]
fn certificate_names_say_insecure_simulation() {
    for product in [Product::Genoa, Product::Turin] {
        let chip = chip(product);
        let root = chip.trusted_root();
        let ark = Certificate::from_der(&root.ark).unwrap();
        let ask = Certificate::from_der(&root.ask).unwrap();
        let vcek = Certificate::from_der(chip.vcek_der()).unwrap();
        assert_eq!(
            ark.subject_common_name(),
            Some(format!("ARK-{product}-INSECURE-SIMULATION").as_str())
        );
        assert_eq!(
            ask.subject_common_name(),
            Some(format!("SEV-{product}-INSECURE-SIMULATION").as_str())
        );
        assert_eq!(vcek.subject_common_name(), Some("SEV-VCEK"));
        for cert in [&ark, &ask, &vcek] {
            let subject = String::from_utf8_lossy(cert.subject_raw()).into_owned();
            assert!(subject.contains("accord INSECURE SIMULATION"), "{subject}");
        }
        // RSA-4096 ARK and ASK.
        for cert in [&ark, &ask] {
            match cert.public_key() {
                accord_core::x509::PublicKey::Rsa(key) => {
                    let bits = key.modulus.iter().skip_while(|b| **b == 0).count() * 8;
                    assert_eq!(bits, 4096);
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

#[test]
fn genuine_roots_reject_simulated_reports() {
    for product in [Product::Genoa, Product::Turin] {
        let chip = chip(product);
        let evidence = chip.evidence(&REPORT_DATA).unwrap();
        let snp_evidence = snp_parts(&evidence);
        let vcek = snp_evidence.vcek.as_deref().unwrap();
        for provider in all_providers() {
            let err = snp::verify(
                &snp_evidence.report,
                &Certs { leaf: vcek },
                None,
                &TrustRoots::genuine(),
                None,
                now(),
                *provider,
            )
            .unwrap_err();
            assert!(
                matches!(
                    err,
                    SnpError::ChainSignature {
                        role: CertRole::Vcek,
                        issuer: CertRole::Ask,
                        ..
                    }
                ),
                "{err}"
            );
            // Reference values that do not name the simulated root mean the
            // genuine roots: refused.
            let mut values = chip.reference_values();
            values.insecure_trusted_root = None;
            let reference = ReferenceValues {
                snp: vec![values],
                tdx: vec![],
            };
            let err = evidence::verify(&evidence, &reference, now(), *provider).unwrap_err();
            assert!(matches!(err, EvidenceError::Snp(_)), "{err}");
        }
    }
}

#[test]
fn another_simulated_root_is_refused() {
    let genoa = chip(Product::Genoa);
    let turin = chip(Product::Turin);
    let evidence = genoa.evidence(&REPORT_DATA).unwrap();
    let mut values = genoa.reference_values();
    values.insecure_trusted_root = Some(turin.trusted_root());
    let reference = ReferenceValues {
        snp: vec![values],
        tdx: vec![],
    };
    for provider in all_providers() {
        let err = evidence::verify(&evidence, &reference, now(), *provider).unwrap_err();
        assert!(
            matches!(err, EvidenceError::Snp(SnpError::ChainSignature { .. })),
            "{err}"
        );
    }
    // No SNP reference values at all.
    let err = evidence::verify(
        &evidence,
        &ReferenceValues::default(),
        now(),
        all_providers()[0],
    )
    .unwrap_err();
    assert!(matches!(err, EvidenceError::NoReferenceValues { .. }));
}

#[test]
fn reference_values_catch_other_measurements() {
    let chip = chip(Product::Genoa);
    let other = chip
        .reconfigured(&SimulatedConfig {
            measurement: [0x99; 48],
            ..config(Product::Genoa)
        })
        .unwrap();
    let evidence = other.evidence(&REPORT_DATA).unwrap();
    let reference = ReferenceValues {
        snp: vec![chip.reference_values()],
        tdx: vec![],
    };
    let err = evidence::verify(&evidence, &reference, now(), all_providers()[0]).unwrap_err();
    assert!(err.to_string().contains("easurement"), "{err}");
    // Its own reference values accept it.
    let reference = ReferenceValues {
        snp: vec![other.reference_values()],
        tdx: vec![],
    };
    evidence::verify(&evidence, &reference, now(), all_providers()[0]).unwrap();
}

#[test]
fn flipped_bytes_are_rejected() {
    for product in [Product::Genoa, Product::Turin] {
        let chip = chip(product);
        let root = chip.trusted_root();
        let report = chip.report(&REPORT_DATA);
        let roots = TrustRoots::custom(&root.ark, &root.ask);
        // A byte of REPORT_DATA, of MEASUREMENT, of the signature's R and S.
        for offset in [0x50, 0x90, 0xc0, 0x2a0, 0x2e8 + 47] {
            let mut bad = report;
            bad[offset] ^= 0x01;
            for provider in all_providers() {
                let err = snp::verify(
                    &bad,
                    &Certs {
                        leaf: chip.vcek_der(),
                    },
                    None,
                    &roots,
                    None,
                    now(),
                    *provider,
                )
                .unwrap_err();
                assert!(
                    matches!(err, SnpError::ReportSignature { .. }),
                    "offset {offset:#x}: {err}"
                );
            }
        }
        // A reserved byte is refused before the signature is looked at.
        for offset in [0x4c, 0x18b, 0x1eb, 0x208, 0x2a0 + 48, 0x318, 0x400] {
            let mut bad = report;
            bad[offset] = 1;
            let result = snp::verify(
                &bad,
                &Certs {
                    leaf: chip.vcek_der(),
                },
                None,
                &roots,
                None,
                now(),
                all_providers()[0],
            );
            assert!(
                matches!(result, Err(SnpError::Report(_))),
                "offset {offset:#x}: {result:?}"
            );
        }
    }
}

#[test]
fn a_configured_tcb_gets_a_matching_vcek() {
    let chip = chip(Product::Turin);
    let tcb = TcbVersion {
        fmc: Some(2),
        bootloader: 3,
        tee: 4,
        snp: 5,
        microcode: 90,
    };
    let updated = chip
        .reconfigured(&SimulatedConfig {
            tcb: Some(tcb),
            ..config(Product::Turin)
        })
        .unwrap();
    assert_eq!(updated.chip_id(), chip.chip_id());
    assert_ne!(updated.vcek_der(), chip.vcek_der());
    let evidence = updated.evidence(&REPORT_DATA).unwrap();
    let reference = ReferenceValues {
        snp: vec![updated.reference_values()],
        tdx: vec![],
    };
    for provider in all_providers() {
        let Claims::Snp(claims) =
            evidence::verify(&evidence, &reference, now(), *provider).unwrap()
        else {
            panic!("not SNP");
        };
        assert_eq!(claims.reported_tcb.parts, tcb);
        assert_eq!(claims.launch_tcb.parts, tcb);
    }
    // The old VCEK does not match the new TCB.
    let root = chip.trusted_root();
    let err = snp::verify(
        &updated.report(&REPORT_DATA),
        &Certs {
            leaf: chip.vcek_der(),
        },
        None,
        &TrustRoots::custom(&root.ark, &root.ask),
        None,
        now(),
        all_providers()[0],
    )
    .unwrap_err();
    assert!(matches!(err, SnpError::TcbMismatch { .. }), "{err}");
}

#[test]
fn bad_configurations_are_refused() {
    let chip = chip(Product::Genoa);
    for (config, needle) in [
        (
            SimulatedConfig {
                policy: 0x10000,
                ..SimulatedConfig::default()
            },
            "bit 17",
        ),
        (
            SimulatedConfig {
                vmpl: 4,
                ..SimulatedConfig::default()
            },
            "VMPL",
        ),
        (
            SimulatedConfig {
                tcb: Some(TcbVersion {
                    fmc: Some(1),
                    ..simulated::default_tcb(Product::Genoa)
                }),
                ..SimulatedConfig::default()
            },
            "FMC",
        ),
    ] {
        let err = chip.reconfigured(&config).unwrap_err();
        assert!(matches!(err, SimulatedError::Config(_)), "{err}");
        assert!(err.to_string().contains(needle), "{err}");
        assert!(err.to_string().contains("INSECURE SIMULATION"), "{err}");
    }
}

#[test]
fn a_persisted_chip_reloads_identically() {
    let dir = shared_dir(Product::Genoa);
    let first = chip(Product::Genoa);
    let again = SimulatedSnp::open(&dir, &config(Product::Genoa)).unwrap();
    assert_eq!(again.chip_id(), first.chip_id());
    assert_eq!(again.vcek_der(), first.vcek_der());
    assert_eq!(again.trusted_root(), first.trusted_root());
    assert_eq!(again.tcb(), first.tcb());
    // Through the provider constructor too.
    let provider = simulated::open(&dir, &config(Product::Genoa)).unwrap();
    assert_eq!(provider.name(), "insecure-simulated");
    let Evidence::Snp(evidence) = provider.evidence(&REPORT_DATA).unwrap() else {
        panic!("not SNP");
    };
    assert_eq!(evidence.vcek.as_deref(), Some(first.vcek_der()));
    // Files are private.
    use std::os::unix::fs::PermissionsExt;
    for file in simulated::FILES {
        let mode = std::fs::metadata(dir.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    // A Genoa chip cannot be opened as a Turin chip.
    let err = SimulatedSnp::open(&dir, &config(Product::Turin)).unwrap_err();
    assert!(
        matches!(err, SimulatedError::ProductMismatch { .. }),
        "{err}"
    );
}

#[test]
fn corrupted_state_is_reported_by_file() {
    let source = shared_dir(Product::Genoa);
    let _ = chip(Product::Genoa);
    let open = |dir: &Path| SimulatedSnp::open(dir, &config(Product::Genoa)).unwrap_err();

    // Garbage in a key file.
    let dir = copy_chip(&source, "garbage");
    std::fs::write(dir.join("vcek.key"), b"not a key").unwrap();
    let err = open(&dir);
    assert!(matches!(err, SimulatedError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("vcek.key"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();

    // A valid key that belongs to another certificate.
    let dir = copy_chip(&source, "swapped");
    std::fs::copy(dir.join("ark.key"), dir.join("ask.key")).unwrap();
    let err = open(&dir);
    assert!(err.to_string().contains("ask.key"), "{err}");
    assert!(err.to_string().contains("does not belong"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();

    // A certificate from another chip.
    let _ = chip(Product::Turin);
    let dir = copy_chip(&source, "foreign");
    std::fs::copy(
        shared_dir(Product::Turin).join("vcek.pem"),
        dir.join("vcek.pem"),
    )
    .unwrap();
    let err = open(&dir);
    assert!(err.to_string().contains("vcek"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();

    // A damaged certificate.
    let dir = copy_chip(&source, "badcert");
    std::fs::write(
        dir.join("ark.pem"),
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let err = open(&dir);
    assert!(err.to_string().contains("ark.pem"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();

    // A missing file.
    let dir = copy_chip(&source, "missing");
    std::fs::remove_file(dir.join("ask.pem")).unwrap();
    let err = open(&dir);
    assert!(err.to_string().contains("missing ask.pem"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_new_chip_is_created_once_even_by_concurrent_openers() {
    let dir = scratch_dir("fresh").join("chip");
    let config = config(Product::Turin);
    let chips: Vec<SimulatedSnp> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| SimulatedSnp::open(&dir, &config).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(chips[0].chip_id(), chips[1].chip_id());
    assert_eq!(chips[0].vcek_der(), chips[1].vcek_der());
    assert_ne!(chips[0].chip_id(), chip(Product::Turin).chip_id());
    let reloaded = SimulatedSnp::open(&dir, &config).unwrap();
    assert_eq!(reloaded.trusted_root(), chips[0].trusted_root());
    // Only the six files, no temporary leftovers beside or inside.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = simulated::FILES.iter().map(|f| f.to_string()).collect();
    expected.sort();
    assert_eq!(names, expected);
    let parent = dir.parent().unwrap();
    assert_eq!(std::fs::read_dir(parent).unwrap().count(), 1);
    let evidence = reloaded.evidence(&REPORT_DATA).unwrap();
    let reference = ReferenceValues {
        snp: vec![reloaded.reference_values()],
        tdx: vec![],
    };
    evidence::verify(&evidence, &reference, now(), all_providers()[0]).unwrap();
    std::fs::remove_dir_all(parent).unwrap();
}

#[test]
fn an_ephemeral_chip_verifies_and_persists_nothing() {
    let chip = SimulatedSnp::ephemeral(&config(Product::Genoa)).unwrap();
    assert!(chip.state_dir().is_none());
    assert_ne!(chip.chip_id(), self::chip(Product::Genoa).chip_id());
    let evidence = chip.evidence(&REPORT_DATA).unwrap();
    let reference = ReferenceValues {
        snp: vec![chip.reference_values()],
        tdx: vec![],
    };
    for provider in all_providers() {
        let claims = evidence::verify(&evidence, &reference, now(), *provider).unwrap();
        assert_eq!(claims.report_data(), REPORT_DATA);
        assert_eq!(claims.policy_hash(), Some(HOST_DATA));
    }
}

const DAY: i64 = 86_400;

fn crl_spec(number: u64, revoked: &[Vec<u8>]) -> CrlSpec {
    let at = now();
    CrlSpec {
        number,
        this_update: UnixTime(at.0 - DAY),
        next_update: UnixTime(at.0 + 7 * DAY),
        revoked: revoked
            .iter()
            .map(|s| (s.clone(), UnixTime(at.0 - 2 * DAY)))
            .collect(),
    }
}

#[test]
fn reissued_vceks_have_serials_of_their_own_and_the_same_in_every_issue() {
    let chip = chip(Product::Genoa);
    let tcb = TcbVersion {
        snp: 30,
        ..chip.tcb()
    };
    let first = chip.issue_vcek(tcb).unwrap();
    let second = chip.issue_vcek(tcb).unwrap();
    let serial = |der: &[u8]| Certificate::from_der(der).unwrap().serial().to_vec();
    assert_eq!(serial(&first), serial(&second));
    assert_ne!(serial(&first), chip.vcek_serial());
    assert_ne!(serial(&first), chip.ask_serial());
    let other = chip
        .issue_vcek(TcbVersion {
            snp: 31,
            ..chip.tcb()
        })
        .unwrap();
    assert_ne!(serial(&first), serial(&other));
    // The chip's own TCB: the persisted VCEK.
    assert_eq!(chip.issue_vcek(chip.tcb()).unwrap(), chip.vcek_der());
    // The reconfigured chip signs under the VCEK the KDS would issue.
    let updated = chip
        .reconfigured(&SimulatedConfig {
            tcb: Some(tcb),
            ..config(Product::Genoa)
        })
        .unwrap();
    assert_eq!(updated.vcek_serial(), serial(&first));
    assert!(
        chip.issue_vcek(TcbVersion {
            fmc: Some(1),
            ..tcb
        })
        .is_err()
    );
}

#[test]
fn the_ark_signed_crl_has_amds_shape_and_is_enforced() {
    let chip = chip(Product::Genoa);
    let root = chip.trusted_root();
    let roots = TrustRoots::custom(&root.ark, &root.ask);
    let ark = Certificate::from_der(&root.ark).unwrap();
    let provider = all_providers()[0];
    let report = chip.report(&REPORT_DATA);
    let verify = |crl: &[u8]| {
        snp::verify(
            &report,
            &Certs {
                leaf: chip.vcek_der(),
            },
            None,
            &roots,
            Some(crl),
            now(),
            provider,
        )
    };

    let clean = chip.issue_crl(&crl_spec(3, &[])).unwrap();
    let parsed = accord_core::x509::Crl::from_der(&clean).unwrap();
    parsed.verify_issued_by(&ark, provider).unwrap();
    assert_eq!(parsed.revoked_serials().count(), 0);
    verify(&clean).unwrap();
    // AMD's shape: v2, PSS parameters of 0x34 bytes (no trailerField),
    // authorityKeyIdentifier then cRLNumber, both non-critical.
    let dump = openssl(&["crl", "-inform", "DER", "-noout", "-text"], &clean, None);
    assert!(dump.contains("Version 2"), "{dump}");
    assert!(dump.contains("X509v3 Authority Key Identifier"), "{dump}");
    let number = dump
        .lines()
        .skip_while(|line| !line.contains("X509v3 CRL Number"))
        .nth(1)
        .map(str::trim);
    assert_eq!(number, Some("3"), "{dump}");
    assert!(!dump.contains("critical"), "{dump}");
    assert!(
        clean.windows(4).any(|w| w == [0x30, 0x34, 0xa0, 0x0f]),
        "RSASSA-PSS parameters of 0x34 bytes, without trailerField, as AMD's"
    );

    for (what, serial) in [("ASK", chip.ask_serial()), ("VCEK", chip.vcek_serial())] {
        let crl = chip
            .issue_crl(&crl_spec(4, std::slice::from_ref(&serial)))
            .unwrap();
        let parsed = accord_core::x509::Crl::from_der(&crl).unwrap();
        assert!(parsed.is_revoked(&serial));
        let err = verify(&crl).unwrap_err();
        let expected = if what == "ASK" {
            CertRole::Ask
        } else {
            CertRole::Vcek
        };
        assert!(
            matches!(&err, SnpError::Revoked { role, .. } if *role == expected),
            "{what}: {err}"
        );
        // openssl agrees that the ARK signed it.
        let ark_pem = accord_core::der::write::pem("CERTIFICATE", &root.ark);
        let out = openssl(&["crl", "-inform", "DER", "-noout"], &crl, Some(&ark_pem));
        assert!(out.contains("verify OK"), "{what}: {out}");
    }
    // Another chip's ARK did not sign it.
    let other = self::chip(Product::Turin).trusted_root();
    let other_ark = Certificate::from_der(&other.ark).unwrap();
    assert!(parsed.verify_issued_by(&other_ark, provider).is_err());
    // A stale CRL is refused.
    let stale = chip
        .issue_crl(&CrlSpec {
            next_update: UnixTime(now().0 - 1),
            this_update: UnixTime(now().0 - 2 * DAY),
            ..crl_spec(5, &[])
        })
        .unwrap();
    assert!(matches!(verify(&stale).unwrap_err(), SnpError::Crl(_)));
}

/// Runs `openssl` with `input` (DER) as `-in`, and `ca_pem` as `-CAfile`;
/// its stdout and stderr.
fn openssl(words: &[&str], input: &[u8], ca_pem: Option<&str>) -> String {
    let dir = scratch_dir("openssl");
    std::fs::write(dir.join("in.der"), input).unwrap();
    let mut command = std::process::Command::new("openssl");
    command.args(words).arg("-in").arg(dir.join("in.der"));
    if let Some(pem) = ca_pem {
        std::fs::write(dir.join("ca.pem"), pem).unwrap();
        command.arg("-CAfile").arg(dir.join("ca.pem"));
    }
    let out = command.output().expect("running openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openssl {words:?}: {text}");
    text
}
