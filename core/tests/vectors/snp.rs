//! SEV-SNP vectors: every real report verifies with exactly the fields the
//! test-data README lists, and mutations, swapped certificates, wrong roots,
//! wrong instants and reference-value mismatches are refused with named
//! errors.

use accord_core::crypto::CryptoProvider;
use accord_core::evidence::snp::{
    self, AttestationReport, CertRole, Certs, DefaultPolicy, HexBytes, MinimumTcb, Product,
    ReferencePolicy, ReportError, RequiredPlatformInfo, SigningKey, SnpClaims, SnpError,
    SnpMismatch, SnpReferenceValues, TcbComponent, TcbField, TrustRoots, VerifiedChain,
};
use accord_core::hex;
use accord_core::time::UnixTime;
use accord_core::x509::{X509Error, pem};

use crate::common::{at, providers};
use crate::vector;

/// One real report with the fields the README documents for it.
pub struct Case {
    pub report: &'static str,
    pub cert: &'static str,
    pub instant: &'static str,
    pub product: Product,
    pub product_name: &'static str,
    pub version: u32,
    pub guest_svn: u32,
    pub policy: u64,
    pub vmpl: u32,
    pub platform_info: u64,
    pub flags: u32,
    pub measurement: &'static str,
    pub report_data: &'static str,
    pub host_data: &'static str,
    pub id_key_digest: &'static str,
    pub family_id: &'static str,
    pub image_id: &'static str,
    pub report_id: &'static str,
    pub chip_id_prefix: &'static str,
    /// (fmc, bootloader, tee, snp, microcode) of REPORTED_TCB.
    pub reported_parts: (Option<u8>, u8, u8, u8, u8),
    /// Raw reported, current, committed, launch TCB.
    pub tcbs: [u64; 4],
    pub cpuid: Option<(u8, u8, u8)>,
    /// Current firmware (build, minor, major).
    pub fw: (u8, u8, u8),
}

const VCEK_AT: &str = "2026-03-01T00:00:00Z";
const VLEK_AT: &str = "2025-06-01T00:00:00Z";
const Z32: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const Z48: &str = "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";
const Z64: &str = "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";
const ID0: &str = "00000000000000000000000000000000";
const FAM1: &str = "01000000000000000000000000000000";
const IMG2: &str = "02000000000000000000000000000000";

pub const CASES: &[Case] = &[
    Case {
        report: "snp/milan-report-1.bin",
        cert: "snp/milan-vcek-1.der",
        instant: VCEK_AT,
        product: Product::Milan,
        product_name: "Milan-B0",
        version: 2,
        guest_svn: 0,
        policy: 0xb0000,
        vmpl: 0,
        platform_info: 0x1,
        flags: 0,
        measurement: "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01",
        report_data: "01020304050000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        host_data: Z32,
        id_key_digest: Z48,
        family_id: ID0,
        image_id: ID0,
        report_id: "8edc638e1857c555d21f6b11bda3c8b1b5a09dba4852b4c8ee7aa2f16f22cc0a",
        chip_id_prefix: "3ac3fe21e13fb0990eb28a802e3fb6a2",
        reported_parts: (None, 2, 0, 5, 68),
        tcbs: [0x4405000000000002; 4],
        cpuid: None,
        fw: (3, 49, 1),
    },
    Case {
        report: "snp/milan-report-2.bin",
        cert: "snp/milan-vcek-2.der",
        instant: VCEK_AT,
        product: Product::Milan,
        product_name: "Milan-B0",
        version: 2,
        guest_svn: 0,
        policy: 0x30000,
        vmpl: 0,
        platform_info: 0x1,
        flags: 0,
        measurement: "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f",
        report_data: "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd",
        host_data: Z32,
        id_key_digest: Z48,
        family_id: ID0,
        image_id: ID0,
        report_id: "92b3b47d59f0a2a10a74c5678868a80238cf593c01a82f3cffb878e904c28d5b",
        chip_id_prefix: "d49554ec717f4e5b0fe6b143bcf0405b",
        reported_parts: (None, 3, 0, 8, 115),
        tcbs: [0x7308000000000003; 4],
        cpuid: None,
        fw: (4, 52, 1),
    },
    Case {
        report: "snp/milan-report-3.bin",
        cert: "snp/milan-vcek-3.der",
        instant: VCEK_AT,
        product: Product::Milan,
        product_name: "Milan-B0",
        version: 2,
        guest_svn: 4,
        policy: 0x3001f,
        vmpl: 0,
        platform_info: 0x1,
        flags: 0,
        measurement: "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c",
        report_data: "ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e20000000000000000000000000000000000000000000000000000000000000000",
        host_data: Z32,
        id_key_digest: "0356215882a825279a85b300b0b742931d113bf7e32dde2e50ffde7ec743ca491ecdd7f336dc28a6e0b2bb57af7a44a3",
        family_id: FAM1,
        image_id: IMG2,
        report_id: "385eba81216de4776548fcb86f8ead03c1ebc92b6207f3210d9ccebb89c99005",
        chip_id_prefix: "c38427a30d4c7af9d96f7a15b9726982",
        reported_parts: (None, 3, 0, 8, 115),
        tcbs: [
            0x7308000000000003,
            0xce08000000000003,
            0x7308000000000003,
            0x7308000000000003,
        ],
        cpuid: None,
        fw: (4, 52, 1),
    },
    Case {
        report: "snp/milan-report-4.bin",
        cert: "snp/milan-vcek-4.pem",
        instant: VCEK_AT,
        product: Product::Milan,
        product_name: "Milan-B0",
        version: 3,
        guest_svn: 2,
        policy: 0x3001f,
        vmpl: 0,
        platform_info: 0x25,
        flags: 0,
        measurement: "5feee30d6d7e1a29f403d70a4198237ddfb13051a2d6976439487c609388ed7f98189887920ab2fa0096903a0c23fca1",
        report_data: Z64,
        host_data: "4f4448c67f3c8dfc8de8a5e37125d807dadcc41f06cf23f615dbd52eec777d10",
        id_key_digest: "0ad79ceb0b648b0e6a90d8aa9f6ea24c33a968b6632085353145e8b19a4741a2dab9ba342e13be4fc0d225e889cc1a58",
        family_id: FAM1,
        image_id: IMG2,
        report_id: "5e01036273418d910bdca3f5cb9c7d849e88e2141483eb6cc9afd794ffbbbcbc",
        chip_id_prefix: "4ffb5cb4fd594f3fee6528fc3fb10370",
        reported_parts: (None, 4, 0, 24, 219),
        tcbs: [0xdb18000000000004; 4],
        cpuid: Some((25, 1, 1)),
        fw: (29, 55, 1),
    },
    Case {
        report: "snp/genoa-report-1.bin",
        cert: "snp/genoa-vcek-1.pem",
        instant: VCEK_AT,
        product: Product::Genoa,
        product_name: "Genoa",
        version: 3,
        guest_svn: 2,
        policy: 0x3001f,
        vmpl: 0,
        platform_info: 0x27,
        flags: 0,
        measurement: "5feee30d6d7e1a29f403d70a4198237ddfb13051a2d6976439487c609388ed7f98189887920ab2fa0096903a0c23fca1",
        report_data: Z64,
        host_data: "4f4448c67f3c8dfc8de8a5e37125d807dadcc41f06cf23f615dbd52eec777d10",
        id_key_digest: "0ad79ceb0b648b0e6a90d8aa9f6ea24c33a968b6632085353145e8b19a4741a2dab9ba342e13be4fc0d225e889cc1a58",
        family_id: FAM1,
        image_id: IMG2,
        report_id: "c840e4fc01bec5121388abbf2e850c5b1d482adab7a4b06c4d93028c56599429",
        chip_id_prefix: "b1e24a27bbc3a4d58090d8b89851dce3",
        reported_parts: (None, 10, 0, 23, 84),
        tcbs: [0x541700000000000a; 4],
        cpuid: Some((25, 17, 1)),
        fw: (40, 55, 1),
    },
    Case {
        report: "snp/genoa-report-2.bin",
        cert: "snp/genoa-vcek-2.pem",
        instant: VCEK_AT,
        product: Product::Genoa,
        product_name: "Genoa",
        version: 3,
        guest_svn: 65547,
        policy: 0x3001f,
        vmpl: 0,
        platform_info: 0x24,
        flags: 0,
        measurement: "f57dc09a507c6ecd82369bffb600f0003792f4d99bc26e985ec0c266fc34faf3706faf814c9e61065768a6ff917c89ae",
        report_data: "b581f12e29a2d7d64e5e0b738d563879a78b51c644d0fa0cce02b48699f6bf5f0000000000000000000000000000000000000000000000000000000000000000",
        host_data: Z32,
        id_key_digest: "942fd93ebde6ea7a96efadeafc60f1c6b3d10e703b1dafd7555b92f7f3d32d0e006767648cba5b102af3d65756af4177",
        family_id: "01232000000000000000000000000000",
        image_id: IMG2,
        report_id: "8c678f0cba548b25bc8ed1f723231570447886c74b1fa1f7eb23699755cb4801",
        chip_id_prefix: "0506ffba875e939c2729d20c74eb72b4",
        reported_parts: (None, 10, 0, 23, 84),
        tcbs: [0x541700000000000a; 4],
        cpuid: Some((25, 17, 1)),
        fw: (40, 55, 1),
    },
    Case {
        report: "snp/turin-report-1.bin",
        cert: "snp/turin-vcek-1.pem",
        instant: VCEK_AT,
        product: Product::Turin,
        product_name: "Turin",
        version: 5,
        guest_svn: 2,
        policy: 0x3001f,
        vmpl: 0,
        platform_info: 0x65,
        flags: 0,
        measurement: "6d6c354511d6f7c6d7504668903dc5bdc066a048b651840d8d03fb85299ebfa142fccf1d1b0baca496841bdf243619d4",
        report_data: Z64,
        host_data: "b3452a0ed30f1010bd32740dd1610bc63296ceb0f882f2cac3a3152d651fe7e4",
        id_key_digest: "4068e9ae4b315aa4b33938ce0ed01a3d5d8e80eb98eab479a0558cd7de9d4d40d6d80d328d90732688a42b13a0cd6405",
        family_id: FAM1,
        image_id: IMG2,
        report_id: "d2f0b13e226f7c8aee44f2fd22cac739438124864fec3e3a2249901a2f4bc9a6",
        chip_id_prefix: "59790fb1c39f35c10000000000000000",
        reported_parts: (Some(1), 1, 1, 4, 81),
        tcbs: [0x5100000004010101; 4],
        cpuid: Some((26, 2, 1)),
        fw: (65, 55, 1),
    },
    Case {
        report: "snp/milan-vlek-report-1.bin",
        cert: "snp/milan-vlek-1.der",
        instant: VLEK_AT,
        product: Product::Milan,
        product_name: "Milan",
        version: 3,
        guest_svn: 0,
        policy: 0x30000,
        vmpl: 1,
        platform_info: 0x27,
        flags: 0x4,
        measurement: "8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df2a570d7bf0",
        report_data: "819770b7e6ea6df8dd8fd4dd146b073c0bf4f3ce5b0977ecac486e3a05ed1bd54e2a7ac1f5d1ca02e7d7d5ef9f73b8574fd9359e3a480d741a4478e8a7bc27ca",
        host_data: Z32,
        id_key_digest: Z48,
        family_id: ID0,
        image_id: ID0,
        report_id: "62e04fba700afd93b3a0cc0649b633ee36587fa8a8c2eb5d9b7cd7bc5f4bb057",
        chip_id_prefix: "00000000000000000000000000000000",
        reported_parts: (None, 4, 0, 24, 217),
        tcbs: [
            0xd918000000000004,
            0xdc18000000000004,
            0xdb18000000000004,
            0xdb18000000000004,
        ],
        cpuid: Some((25, 1, 1)),
        fw: (29, 55, 1),
    },
];

/// Reads a case's report and leaf certificate, or skips the test.
macro_rules! load {
    ($case:expr) => {
        (vector!($case.report), vector!($case.cert))
    };
}

fn verify_case(
    case: &Case,
    report: &[u8],
    cert: &[u8],
    product: Option<Product>,
    instant: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<SnpClaims, SnpError> {
    snp::verify(
        report,
        &Certs { leaf: cert },
        product,
        &TrustRoots::genuine(),
        None,
        instant,
        provider,
    )
    .inspect(|c| assert_eq!(c.product, case.product))
}

fn check_fields(case: &Case, c: &SnpClaims) {
    let name = case.report;
    assert_eq!(c.product, case.product, "{name}");
    assert_eq!(c.product_name, case.product_name, "{name}");
    assert_eq!(c.version, case.version, "{name}");
    assert_eq!(c.guest_svn, case.guest_svn, "{name}");
    assert_eq!(c.policy.raw, case.policy, "{name}");
    assert_eq!(c.policy.debug, case.policy & (1 << 19) != 0, "{name}");
    assert!(c.policy.smt, "{name}");
    assert!(!c.policy.migrate_ma && !c.policy.single_socket, "{name}");
    assert_eq!(c.policy.abi_major, 0, "{name}");
    assert_eq!(c.policy.abi_minor, (case.policy & 0xff) as u8, "{name}");
    assert_eq!(c.vmpl, case.vmpl, "{name}");
    assert_eq!(c.signature_algo, 1, "{name}");
    assert_eq!(c.platform_info.raw, case.platform_info, "{name}");
    assert_eq!(
        c.signing_key,
        if case.flags == 4 {
            SigningKey::Vlek
        } else {
            SigningKey::Vcek
        },
        "{name}"
    );
    assert!(!c.author_key_en && !c.mask_chip_key, "{name}");
    assert_eq!(c.measurement.to_string(), case.measurement, "{name}");
    assert_eq!(c.report_data.to_string(), case.report_data, "{name}");
    assert_eq!(c.host_data.to_string(), case.host_data, "{name}");
    assert_eq!(c.id_key_digest.to_string(), case.id_key_digest, "{name}");
    assert_eq!(c.family_id.to_string(), case.family_id, "{name}");
    assert_eq!(c.image_id.to_string(), case.image_id, "{name}");
    assert_eq!(c.report_id.to_string(), case.report_id, "{name}");
    assert!(
        c.chip_id.to_string().starts_with(case.chip_id_prefix),
        "{name}"
    );
    let (fmc, bl, tee, snp_v, ucode) = case.reported_parts;
    let parts = c.reported_tcb.parts;
    assert_eq!(
        (
            parts.fmc,
            parts.bootloader,
            parts.tee,
            parts.snp,
            parts.microcode
        ),
        (fmc, bl, tee, snp_v, ucode),
        "{name}"
    );
    assert_eq!(
        [
            c.reported_tcb.raw,
            c.current_tcb.raw,
            c.committed_tcb.raw,
            c.launch_tcb.raw
        ],
        case.tcbs,
        "{name}"
    );
    assert_eq!(
        c.cpuid.map(|x| (x.family, x.model, x.stepping)),
        case.cpuid,
        "{name}"
    );
    let fw = c.current_version;
    assert_eq!((fw.build, fw.minor, fw.major), case.fw, "{name}");
    assert!(c.genuine_roots, "{name}");
    if case.version >= 5 {
        assert!(
            c.launch_mit_vector.is_some() && c.current_mit_vector.is_some(),
            "{name}"
        );
    } else {
        assert!(
            c.launch_mit_vector.is_none() && c.current_mit_vector.is_none(),
            "{name}"
        );
    }
}

#[test]
fn every_real_report_verifies_with_documented_fields() {
    for case in CASES {
        let (report, cert) = load!(case);
        for provider in providers() {
            let instant = at(case.instant);
            // With the product given, and without (CPUID or productName).
            for product in [Some(case.product), None] {
                let claims = verify_case(case, &report, &cert, product, instant, *provider)
                    .unwrap_or_else(|e| panic!("{} with {}: {e}", case.report, provider.name()));
                check_fields(case, &claims);
                let json = serde_json::to_value(&claims).unwrap();
                assert_eq!(json["measurement"], case.measurement);
                assert_eq!(json["product"], format!("{:?}", case.product));
            }
        }
    }
}

#[test]
fn vlek_report_exposes_csp_id_and_expires_with_its_vlek() {
    let case = CASES.iter().find(|c| c.flags == 4).unwrap();
    let (report, cert) = load!(case);
    for provider in providers() {
        let claims = verify_case(case, &report, &cert, None, at(VLEK_AT), *provider).unwrap();
        assert_eq!(
            claims.csp_id.as_deref(),
            Some("CN=cc-us-east-2.amazonaws.com")
        );
        assert_eq!(claims.signing_key, SigningKey::Vlek);
        let err = verify_case(case, &report, &cert, None, at(VCEK_AT), *provider).unwrap_err();
        assert!(
            matches!(
                err,
                SnpError::CertificateNotValidAt {
                    role: CertRole::Vlek,
                    ..
                }
            ),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains("VLEK") && text.contains("expired"), "{text}");
    }
}

#[test]
fn vcek_claims_have_no_csp_id() {
    let case = &CASES[0];
    let (report, cert) = load!(case);
    let claims = verify_case(case, &report, &cert, None, at(VCEK_AT), providers()[0]).unwrap();
    assert_eq!(claims.csp_id, None);
}

#[test]
fn flipping_any_signed_byte_is_rejected() {
    for case in CASES {
        let (report, cert) = load!(case);
        for provider in providers() {
            let chain = VerifiedChain::verify(
                &Certs { leaf: &cert },
                Some(case.product),
                &TrustRoots::genuine(),
                None,
                at(case.instant),
                *provider,
            )
            .unwrap();
            let mut mutated = report.clone();
            for offset in 0..snp::SIGNED_LEN {
                // One bit per byte per provider, a different bit per byte.
                let bit = 1u8 << (offset % 8);
                {
                    mutated[offset] ^= bit;
                    let result =
                        snp::verify_with_chain(&chain, &mutated, at(case.instant), *provider);
                    assert!(
                        matches!(
                            result,
                            Err(SnpError::Report(_)
                                | SnpError::ReportSignature { .. }
                                | SnpError::SigningKeyMismatch { .. }
                                | SnpError::ProductMismatch { .. }
                                | SnpError::UnknownCpuid { .. })
                        ),
                        "{} offset {offset:#x} bit {bit:#x}: {result:?}",
                        case.report
                    );
                    mutated[offset] ^= bit;
                }
            }
            snp::verify_with_chain(&chain, &mutated, at(case.instant), *provider).unwrap();
        }
    }
}

#[test]
fn flipping_signature_or_reserved_bytes_is_rejected() {
    for case in CASES {
        let (report, cert) = load!(case);
        let provider = providers()[0];
        let chain = VerifiedChain::verify(
            &Certs { leaf: &cert },
            Some(case.product),
            &TrustRoots::genuine(),
            None,
            at(case.instant),
            provider,
        )
        .unwrap();
        let mut mutated = report.clone();
        for offset in snp::SIGNED_LEN..snp::REPORT_LEN {
            mutated[offset] ^= 0x01;
            assert!(
                snp::verify_with_chain(&chain, &mutated, at(case.instant), provider).is_err(),
                "{offset:#x}"
            );
            mutated[offset] ^= 0x01;
        }
    }
}

#[test]
fn swapped_leaf_certificates_are_rejected() {
    for (i, case) in CASES.iter().enumerate() {
        let (report, _) = load!(case);
        for (j, other) in CASES.iter().enumerate() {
            if i == j {
                continue;
            }
            let cert = vector!(other.cert);
            let instant = at(case.instant);
            let err = snp::verify(
                &report,
                &Certs { leaf: &cert },
                None,
                &TrustRoots::genuine(),
                None,
                instant,
                providers()[0],
            )
            .unwrap_err();
            // Depending on the pair: wrong key, wrong kind, wrong product,
            // expired VLEK, or a TCB mismatch; never accepted.
            assert!(
                matches!(
                    err,
                    SnpError::ReportSignature { .. }
                        | SnpError::SigningKeyMismatch { .. }
                        | SnpError::ProductMismatch { .. }
                        | SnpError::CertificateNotValidAt { .. }
                        | SnpError::TcbReserved { .. }
                ),
                "{} with {}: {err}",
                case.report,
                other.cert
            );
        }
    }
}

#[test]
fn wrong_product_roots_are_rejected() {
    let genoa = &CASES[4];
    let (report, cert) = load!(genoa);
    for provider in providers() {
        // Claimed Milan, but CPUID says Genoa.
        let err = verify_case(
            genoa,
            &report,
            &cert,
            Some(Product::Milan),
            at(VCEK_AT),
            *provider,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                SnpError::ProductMismatch {
                    expected: Product::Milan,
                    found: Product::Genoa,
                    ..
                }
            ),
            "{err}"
        );
        // The Genoa VCEK under Milan roots (custom roots so the productName
        // cannot steer the choice): RSA-PSS fails.
        let milan_ark = pem_der(&vector!("snp/milan-ark.pem"));
        let milan_ask = pem_der(&vector!("snp/milan-ask.pem"));
        let roots = TrustRoots::custom(&milan_ark, &milan_ask);
        let err = snp::verify(
            &report,
            &Certs { leaf: &cert },
            None,
            &roots,
            None,
            at(VCEK_AT),
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
    }
    // A v2 Milan report claimed to be Genoa: the VCEK says Milan-B0.
    let milan = &CASES[1];
    let (report, cert) = load!(milan);
    let err = verify_case(
        milan,
        &report,
        &cert,
        Some(Product::Genoa),
        at(VCEK_AT),
        providers()[0],
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            SnpError::ProductMismatch {
                expected: Product::Genoa,
                found: Product::Milan,
                ..
            }
        ),
        "{err}"
    );
}

fn pem_der(bytes: &[u8]) -> Vec<u8> {
    pem::der_or_pem(bytes, "CERTIFICATE").unwrap()
}

#[test]
fn instants_outside_validity_are_rejected() {
    for case in CASES {
        let (report, cert) = load!(case);
        for instant in ["2019-01-01T00:00:00Z", "2049-01-01T00:00:00Z"] {
            let err =
                verify_case(case, &report, &cert, None, at(instant), providers()[0]).unwrap_err();
            assert!(
                matches!(err, SnpError::CertificateNotValidAt { .. }),
                "{} at {instant}: {err}",
                case.report
            );
        }
        // A cached chain is refused outside its window too.
        let chain = VerifiedChain::verify(
            &Certs { leaf: &cert },
            None,
            &TrustRoots::genuine(),
            None,
            at(case.instant),
            providers()[0],
        )
        .unwrap();
        let err =
            snp::verify_with_chain(&chain, &report, at("2049-01-01T00:00:00Z"), providers()[0])
                .unwrap_err();
        assert!(matches!(err, SnpError::ChainNotValidAt { .. }), "{err}");
    }
}

#[test]
fn vlek_under_ask_and_vcek_report_with_vlek_are_rejected() {
    let vlek_case = CASES.iter().find(|c| c.flags == 4).unwrap();
    let (vlek_report, vlek) = load!(vlek_case);
    let ark = pem_der(&vector!("snp/milan-ark.pem"));
    let ask = pem_der(&vector!("snp/milan-ask.pem"));
    for provider in providers() {
        // The ASK in the ASVK's place.
        let roots = TrustRoots::custom_with_asvk(&ark, &ask, &ask);
        let err = snp::verify(
            &vlek_report,
            &Certs { leaf: &vlek },
            None,
            &roots,
            None,
            at(VLEK_AT),
            *provider,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                SnpError::ChainSignature {
                    role: CertRole::Vlek,
                    issuer: CertRole::Asvk,
                    ..
                }
            ),
            "{err}"
        );
        // Custom roots without an ASVK refuse VLEKs.
        let roots = TrustRoots::custom(&ark, &ask);
        let err = snp::verify(
            &vlek_report,
            &Certs { leaf: &vlek },
            None,
            &roots,
            None,
            at(VLEK_AT),
            *provider,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                SnpError::MissingRoot {
                    role: CertRole::Asvk,
                    ..
                }
            ),
            "{err}"
        );
        // A VCEK-signed Milan report with the VLEK, at an instant where both
        // chains are valid.
        let vcek_case = &CASES[1];
        let report = vector!(vcek_case.report);
        let err = snp::verify(
            &report,
            &Certs { leaf: &vlek },
            None,
            &TrustRoots::genuine(),
            None,
            at(VLEK_AT),
            *provider,
        )
        .unwrap_err();
        assert_eq!(
            err,
            SnpError::SigningKeyMismatch {
                report: SigningKey::Vcek,
                certificate: CertRole::Vlek
            }
        );
        // The VLEK report with a Milan VCEK.
        let vcek = vector!(vcek_case.cert);
        let err = snp::verify(
            &vlek_report,
            &Certs { leaf: &vcek },
            None,
            &TrustRoots::genuine(),
            None,
            at(VLEK_AT),
            *provider,
        )
        .unwrap_err();
        assert_eq!(
            err,
            SnpError::SigningKeyMismatch {
                report: SigningKey::Vlek,
                certificate: CertRole::Vcek
            }
        );
    }
}

/// Reads r and s big-endian instead of little-endian: every report fails.
#[test]
fn big_endian_signature_reading_fails() {
    for case in CASES {
        let (report, cert) = load!(case);
        let chain = VerifiedChain::verify(
            &Certs { leaf: &cert },
            None,
            &TrustRoots::genuine(),
            None,
            at(case.instant),
            providers()[0],
        )
        .unwrap();
        let parsed = AttestationReport::parse(&report).unwrap();
        let mut wrong = [0u8; 96];
        wrong[..48].copy_from_slice(&parsed.signature_r[..48]);
        wrong[48..].copy_from_slice(&parsed.signature_s[..48]);
        for provider in providers() {
            assert!(
                provider
                    .verify_ecdsa(
                        accord_core::crypto::EcCurve::P384,
                        chain.public_key(),
                        parsed.signed_bytes(),
                        &wrong
                    )
                    .is_err()
            );
            provider
                .verify_ecdsa(
                    accord_core::crypto::EcCurve::P384,
                    chain.public_key(),
                    parsed.signed_bytes(),
                    &parsed.signature_fixed_be(),
                )
                .unwrap();
        }
    }
}

#[test]
fn parser_refuses_bad_lengths_and_versions() {
    let report = vector!(CASES[0].report);
    assert_eq!(
        AttestationReport::parse(&report[..1183]).unwrap_err(),
        ReportError::WrongLength { actual: 1183 }
    );
    let mut v4 = report.clone();
    v4[0] = 4;
    assert_eq!(
        AttestationReport::parse(&v4).unwrap_err(),
        ReportError::UnsupportedVersion(4)
    );
    snp::fuzz_parse_report(&report);
    snp::fuzz_parse_report(&report[..100]);
}

fn claims_of(case: &Case) -> Option<SnpClaims> {
    let report = common_read(case.report)?;
    let cert = common_read(case.cert)?;
    Some(verify_case(case, &report, &cert, None, at(case.instant), providers()[0]).unwrap())
}

fn common_read(path: &str) -> Option<Vec<u8>> {
    crate::common::try_read(path)
}

/// Reference values that match `c` exactly, with every field set.
fn matching_reference(c: &SnpClaims) -> SnpReferenceValues {
    let tcb = |t: accord_core::evidence::snp::TcbVersion| MinimumTcb {
        bootloader: t.bootloader,
        tee: t.tee,
        snp: t.snp,
        microcode: t.microcode,
        fmc: t.fmc,
    };
    SnpReferenceValues {
        platform: Some("Metal-QEMU-SNP".into()),
        product_name: Some(c.product),
        trusted_measurement: Some(c.measurement),
        minimum_tcb: Some(tcb(c.reported_tcb.parts)),
        minimum_committed_tcb: Some(tcb(c.committed_tcb.parts)),
        minimum_launch_tcb: Some(tcb(c.launch_tcb.parts)),
        guest_policy: Some(ReferencePolicy {
            abi_minor: c.policy.abi_minor,
            abi_major: c.policy.abi_major,
            smt: c.policy.smt,
            migrate_ma: c.policy.migrate_ma,
            debug: c.policy.debug,
            single_socket: c.policy.single_socket,
            ..ReferencePolicy::default()
        }),
        platform_info: Some(RequiredPlatformInfo {
            smt_enabled: c.platform_info.smt_enabled,
            ecc_enabled: c.platform_info.ecc_enabled,
            ..RequiredPlatformInfo::default()
        }),
        allowed_chip_ids: vec![HexBytes([0xaa; 64]), c.chip_id],
        minimum_mitigation_vector: c
            .launch_mit_vector
            .map(|v| v & c.current_mit_vector.unwrap_or(0)),
        host_data: Some(c.host_data),
        report_data: Some(c.report_data),
        vmpl: Some(u8::try_from(c.vmpl).unwrap()),
        trusted_id_key_digests: vec![c.id_key_digest],
        trusted_author_key_digests: vec![],
        minimum_guest_svn: Some(c.guest_svn),
        insecure_trusted_root: None,
    }
}

#[test]
fn matching_reference_values_pass_and_round_trip_as_json() {
    for case in CASES {
        let Some(c) = claims_of(case) else { return };
        let reference = matching_reference(&c);
        reference
            .check(&c)
            .unwrap_or_else(|e| panic!("{}: {e:?}", case.report));
        let json = serde_json::to_string(&reference).unwrap();
        assert_eq!(SnpReferenceValues::from_json(&json).unwrap(), reference);
    }
}

#[test]
fn reference_json_uses_contrast_field_names() {
    let json = r#"{
        "ProductName": "Milan",
        "TrustedMeasurement": "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f",
        "MinimumTCB": {"BootloaderVersion": 3, "TEEVersion": 0, "SNPVersion": 8, "MicrocodeVersion": 115},
        "GuestPolicy": {"ABIMinor": 0, "ABIMajor": 0, "SMT": true, "MigrateMA": false, "Debug": false, "SingleSocket": false},
        "PlatformInfo": {"SMTEnabled": true},
        "VMPL": 0
    }"#;
    let reference = SnpReferenceValues::from_json(json).unwrap();
    let Some(c) = claims_of(&CASES[1]) else {
        return;
    };
    reference.check(&c).unwrap();
    // A misspelt field is refused, not ignored.
    assert!(SnpReferenceValues::from_json(r#"{"MinimumTcb": {}}"#).is_err());
    assert!(SnpReferenceValues::from_json(r#"{"TrustedMeasurement": "00"}"#).is_err());
    assert!(SnpReferenceValues::from_json(r#"{"MinimumTCB": {"BootloaderVersion": 256, "TEEVersion": 0, "SNPVersion": 0, "MicrocodeVersion": 0}}"#).is_err());
}

type MutationCase<'a> = (
    &'static str,
    Box<dyn Fn(&mut SnpReferenceValues) + 'a>,
    Box<dyn Fn(&SnpMismatch) -> bool>,
);

/// Each reference field mismatched on its own gives its own named error.
#[test]
fn each_reference_mismatch_is_named() {
    // milan-report-3 has an ID block; turin-report-1 has mitigation vectors.
    for case in [&CASES[2], &CASES[6]] {
        let Some(c) = claims_of(case) else { return };
        let good = matching_reference(&c);
        let one_byte = |b: &mut [u8]| b[0] ^= 1;
        let cases: Vec<MutationCase<'_>> = vec![
            (
                "product",
                Box::new(|r| {
                    r.product_name = Some(if c.product == Product::Genoa {
                        Product::Milan
                    } else {
                        Product::Genoa
                    })
                }),
                Box::new(|m| matches!(m, SnpMismatch::ProductName { .. })),
            ),
            (
                "measurement",
                Box::new(move |r| one_byte(&mut r.trusted_measurement.as_mut().unwrap().0)),
                Box::new(|m| matches!(m, SnpMismatch::Measurement { .. })),
            ),
            (
                "host_data",
                Box::new(move |r| one_byte(&mut r.host_data.as_mut().unwrap().0)),
                Box::new(|m| matches!(m, SnpMismatch::HostData { .. })),
            ),
            (
                "report_data",
                Box::new(move |r| one_byte(&mut r.report_data.as_mut().unwrap().0)),
                Box::new(|m| matches!(m, SnpMismatch::ReportData { .. })),
            ),
            (
                "vmpl",
                Box::new(|r| r.vmpl = Some(3)),
                Box::new(|m| matches!(m, SnpMismatch::Vmpl { expected: 3, .. })),
            ),
            (
                "guest_svn",
                Box::new(|r| r.minimum_guest_svn = Some(r.minimum_guest_svn.unwrap() + 1)),
                Box::new(|m| matches!(m, SnpMismatch::GuestSvn { .. })),
            ),
            (
                "reported tcb",
                Box::new(|r| {
                    r.minimum_tcb.as_mut().unwrap().microcode += 1;
                }),
                Box::new(|m| {
                    matches!(
                        m,
                        SnpMismatch::Tcb {
                            field: TcbField::Reported,
                            component: TcbComponent::Microcode,
                            ..
                        }
                    )
                }),
            ),
            (
                "committed tcb",
                Box::new(|r| r.minimum_committed_tcb.as_mut().unwrap().snp += 1),
                Box::new(|m| {
                    matches!(
                        m,
                        SnpMismatch::Tcb {
                            field: TcbField::Committed,
                            component: TcbComponent::Snp,
                            ..
                        }
                    )
                }),
            ),
            (
                "launch tcb",
                Box::new(|r| r.minimum_launch_tcb.as_mut().unwrap().bootloader += 1),
                Box::new(|m| {
                    matches!(
                        m,
                        SnpMismatch::Tcb {
                            field: TcbField::Launch,
                            component: TcbComponent::Bootloader,
                            ..
                        }
                    )
                }),
            ),
            (
                "abi",
                Box::new(|r| r.guest_policy.as_mut().unwrap().abi_major = 1),
                Box::new(|m| matches!(m, SnpMismatch::PolicyAbi { .. })),
            ),
            (
                "smt",
                Box::new(|r| r.guest_policy.as_mut().unwrap().smt = false),
                Box::new(|m| {
                    matches!(
                        m,
                        SnpMismatch::PolicySmt {
                            expected: false,
                            actual: true
                        }
                    )
                }),
            ),
            (
                "single socket",
                Box::new(|r| r.guest_policy.as_mut().unwrap().single_socket = true),
                Box::new(|m| matches!(m, SnpMismatch::PolicySingleSocket { .. })),
            ),
            (
                "aes-256-xts",
                Box::new(|r| r.guest_policy.as_mut().unwrap().mem_aes_256_xts = true),
                Box::new(|m| {
                    matches!(
                        m,
                        SnpMismatch::PolicyFlag {
                            name: "MemAES256XTS",
                            ..
                        }
                    )
                }),
            ),
            (
                "platform info",
                Box::new(|r| r.platform_info.as_mut().unwrap().tsme_enabled = true),
                Box::new(|m| {
                    matches!(
                        m,
                        SnpMismatch::PlatformInfo {
                            name: "TSMEEnabled"
                        }
                    )
                }),
            ),
            (
                "chip id",
                Box::new(|r| r.allowed_chip_ids = vec![HexBytes([0xbb; 64])]),
                Box::new(|m| matches!(m, SnpMismatch::ChipIdNotAllowed { .. })),
            ),
            (
                "id key",
                Box::new(|r| r.trusted_id_key_digests = vec![HexBytes([0xcc; 48])]),
                Box::new(|m| matches!(m, SnpMismatch::IdKeyDigestNotTrusted { .. })),
            ),
            (
                "author key",
                Box::new(|r| r.trusted_author_key_digests = vec![HexBytes([0xdd; 48])]),
                Box::new(|m| matches!(m, SnpMismatch::AuthorKeyDigestNotTrusted { .. })),
            ),
            (
                "mitigation vector",
                Box::new(|r| r.minimum_mitigation_vector = Some(1 << 63)),
                Box::new(|m| {
                    matches!(
                        m,
                        SnpMismatch::MitigationVector {
                            field: "launch_mit_vector",
                            ..
                        }
                    )
                }),
            ),
        ];
        for (what, mutate, expected) in cases {
            let mut reference = good.clone();
            mutate(&mut reference);
            let mismatches = reference.check(&c).expect_err(what);
            assert!(
                expected(&mismatches[0]),
                "{}: {what}: {mismatches:?}",
                case.report
            );
            let text = mismatches[0].to_string();
            assert!(text.contains("expected"), "{text}");
        }
    }
}

#[test]
fn mismatch_messages_name_field_expected_and_actual() {
    let Some(c) = claims_of(&CASES[0]) else {
        return;
    };
    let Some(other) = claims_of(&CASES[1]) else {
        return;
    };
    let reference = SnpReferenceValues {
        trusted_measurement: Some(other.measurement),
        ..Default::default()
    };
    let errs = reference.check(&c).unwrap_err();
    assert_eq!(
        errs[0].to_string(),
        format!(
            "measurement: expected {}, got {}",
            other.measurement, c.measurement
        )
    );
    assert!(
        errs[0]
            .to_string()
            .starts_with("measurement: expected 7a1e")
    );
}

#[test]
fn debug_guest_refused_by_default_policy() {
    let Some(c) = claims_of(&CASES[0]) else {
        return;
    };
    assert!(c.policy.debug);
    let errs = DefaultPolicy::default().check(&c).unwrap_err();
    assert_eq!(
        errs,
        vec![SnpMismatch::PolicyDebug {
            expected: false,
            actual: true
        }]
    );
    DefaultPolicy { allow_debug: true }.check(&c).unwrap();
    // Reference values without a GuestPolicy also refuse debug guests.
    assert!(SnpReferenceValues::default().check(&c).is_err());
    for case in &CASES[1..] {
        let Some(c) = claims_of(case) else { return };
        DefaultPolicy::default().check(&c).unwrap();
    }
}

#[test]
fn vmpl1_vlek_report_rejected_when_reference_wants_vmpl0() {
    let case = CASES.iter().find(|c| c.flags == 4).unwrap();
    let Some(c) = claims_of(case) else { return };
    let reference = SnpReferenceValues {
        vmpl: Some(0),
        ..Default::default()
    };
    assert_eq!(
        reference.check(&c).unwrap_err(),
        vec![SnpMismatch::Vmpl {
            expected: 0,
            actual: 1
        }]
    );
}

#[test]
fn cached_chain_matches_one_shot_verification() {
    for case in CASES {
        let (report, cert) = load!(case);
        for provider in providers() {
            let chain = VerifiedChain::verify(
                &Certs { leaf: &cert },
                None,
                &TrustRoots::genuine(),
                None,
                at(case.instant),
                *provider,
            )
            .unwrap();
            assert_eq!(chain.product(), case.product);
            if case.flags == 0 {
                assert_eq!(
                    hex::encode(chain.hw_id()),
                    hex::encode(
                        AttestationReport::parse(&report)
                            .unwrap()
                            .hw_id(case.product)
                    )
                );
            }
            let verified =
                snp::verify_with_chain(&chain, &report, at(case.instant), *provider).unwrap();
            let one_shot =
                verify_case(case, &report, &cert, None, at(case.instant), *provider).unwrap();
            assert_eq!(SnpClaims::from(&verified), one_shot);
        }
    }
}

#[test]
fn malformed_leaf_is_rejected() {
    let case = &CASES[0];
    let (report, mut cert) = load!(case);
    cert.truncate(100);
    let err = verify_case(case, &report, &cert, None, at(VCEK_AT), providers()[0]).unwrap_err();
    assert!(
        matches!(
            err,
            SnpError::Certificate {
                error: X509Error::Der(_),
                ..
            }
        ),
        "{err}"
    );
}
