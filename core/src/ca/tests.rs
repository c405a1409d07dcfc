//! Unit tests of the CA: the certificates parse with accord's own X.509
//! parser and their signatures verify; SAN classification; claim and
//! workload-secret-id extensions read back; refused keys and requests.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::Cell;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use elliptic_curve::sec1::ToSec1Point;

use super::*;
use crate::crypto::{CryptoError, all_providers};
use crate::der::write;
use crate::evidence::snp::{
    FirmwareVersion, GuestPolicy, HexBytes, PlatformInfo, Product, SigningKey, SnpClaims, TcbClaim,
    TcbVersion,
};
use crate::kdf::{Salt, SecretSeed, SeedEngine};
use crate::x509::Certificate;

/// A counter-based byte source (not random; enough to exercise the API).
struct Counter(Cell<u8>);

impl SecureRandom for Counter {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        for b in dest {
            let v = self.0.get();
            *b = v;
            self.0.set(v.wrapping_add(13));
        }
        Ok(())
    }
}

struct Zeros;

impl SecureRandom for Zeros {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        dest.fill(0);
        Ok(())
    }
}

struct Broken;

impl SecureRandom for Broken {
    fn fill(&self, _: &mut [u8]) -> Result<(), CryptoError> {
        Err(CryptoError::RandomFailed)
    }
}

/// 2026-03-01T00:00:00Z
const NOW: UnixTime = UnixTime(1_772_323_200);

fn root_key(byte: u8) -> RootCaKey {
    SeedEngine::new(
        SecretSeed::from_bytes([byte; 64]),
        Salt::from_bytes([2; 32]),
        crate::crypto::default_provider(),
    )
    .root_ca_key()
    .unwrap()
}

fn mesh_key(byte: u8) -> MeshCaKey {
    MeshCaKey::from_scalar_bytes([byte; 48]).unwrap()
}

fn ca() -> Ca {
    Ca::new(&root_key(1), mesh_key(3), NOW, &Counter(Cell::new(1))).unwrap()
}

fn ec_spki(curve: &[u64], point: &[u8]) -> Vec<u8> {
    write::seq(&[
        &write::seq(&[
            &write::oid(crate::x509::oid::EC_PUBLIC_KEY),
            &write::oid(curve),
        ]),
        &write::bits(point),
    ])
}

fn p256_spki() -> Vec<u8> {
    let secret = p256::SecretKey::from_bytes(&[7u8; 32].into()).unwrap();
    let point = secret.public_key().as_affine().to_sec1_point(false);
    ec_spki(crate::x509::oid::P256, point.as_bytes())
}

fn p384_spki() -> Vec<u8> {
    ec_spki(crate::x509::oid::P384, mesh_key(9).public_key_sec1())
}

fn sans(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn issue(ca: &Ca, spki: &[u8], sans: &[String]) -> Result<Vec<u8>, CaError> {
    ca.issue(
        &WorkloadCertRequest {
            public_key_spki: spki,
            sans,
            workload_secret_id: None,
            claims: None,
        },
        NOW,
        &Counter(Cell::new(5)),
    )
}

#[test]
fn certificates_parse_and_chain_with_our_parser() {
    let ca = ca();
    let names = sans(&["web.default.svc.cluster.local", "10.0.0.1"]);
    let leaf_der = issue(&ca, &p256_spki(), &names).unwrap();
    let root = Certificate::from_der(ca.root_cert()).unwrap();
    let intermediate = Certificate::from_der(ca.intermediate_cert()).unwrap();
    let mesh = Certificate::from_der(ca.mesh_ca_cert()).unwrap();
    let leaf = Certificate::from_der(&leaf_der).unwrap();

    assert_eq!(root.subject_common_name(), Some(ROOT_COMMON_NAME));
    assert_eq!(intermediate.subject_common_name(), Some(MESH_COMMON_NAME));
    assert_eq!(intermediate.issuer_common_name(), Some(ROOT_COMMON_NAME));
    assert_eq!(mesh.subject_raw(), intermediate.subject_raw());
    assert_eq!(mesh.issuer_raw(), mesh.subject_raw());
    assert_eq!(
        leaf.subject_common_name(),
        Some("web.default.svc.cluster.local")
    );
    assert_eq!(leaf.issuer_raw(), mesh.subject_raw());
    assert_eq!(root.basic_constraints_ca(), Ok(Some(true)));
    assert_eq!(mesh.basic_constraints_ca(), Ok(Some(true)));
    assert_eq!(leaf.basic_constraints_ca(), Ok(Some(false)));
    for cert in [&root, &intermediate, &mesh, &leaf] {
        cert.check_critical_extensions(&[]).unwrap();
        cert.check_validity(NOW).unwrap();
        assert_eq!(cert.not_before(), UnixTime(NOW.0 - 3600));
        assert_eq!(cert.serial().len(), 16);
        assert!(cert.serial()[0] & 0x80 == 0);
    }
    assert_eq!(root.not_after(), UnixTime(NOW.0 + CA_VALIDITY_SECONDS));
    assert_eq!(
        leaf.not_after(),
        UnixTime(NOW.0 + WORKLOAD_VALIDITY_SECONDS)
    );

    for provider in all_providers() {
        root.verify_issued_by(&root, *provider).unwrap();
        intermediate.verify_issued_by(&root, *provider).unwrap();
        mesh.verify_issued_by(&mesh, *provider).unwrap();
        leaf.verify_issued_by(&mesh, *provider).unwrap();
        leaf.verify_issued_by(&intermediate, *provider).unwrap();
        // The root did not sign the leaf, nor the mesh key the root.
        assert_eq!(
            leaf.verify_signature(root.public_key(), *provider),
            Err(X509Error::BadSignature)
        );
        assert_eq!(
            root.verify_signature(mesh.public_key(), *provider),
            Err(X509Error::BadSignature)
        );
    }
    assert_eq!(
        root.public_key(),
        &PublicKey::Ec {
            curve: EcCurve::P384,
            point: ca.root_public_key_sec1()
        }
    );
    assert_eq!(
        mesh.public_key(),
        &PublicKey::Ec {
            curve: EcCurve::P384,
            point: ca.mesh_key().public_key_sec1()
        }
    );
}

#[test]
fn p384_workload_keys_are_accepted() {
    let ca = ca();
    let leaf = issue(&ca, &p384_spki(), &sans(&["a.example"])).unwrap();
    let leaf = Certificate::from_der(&leaf).unwrap();
    let mesh = Certificate::from_der(ca.mesh_ca_cert()).unwrap();
    leaf.verify_issued_by(&mesh, crate::crypto::default_provider())
        .unwrap();
}

#[test]
fn other_keys_are_refused() {
    let ca = ca();
    let names = sans(&["a.example"]);
    // Ed25519 (RFC 8410).
    let ed25519 = write::seq(&[
        &write::seq(&[&write::oid(&[1, 3, 101, 112])]),
        &write::bits(&[0x11; 32]),
    ]);
    assert_eq!(
        issue(&ca, &ed25519, &names),
        Err(CaError::UnsupportedPublicKey)
    );
    // secp256k1.
    let k1 = ec_spki(&[1, 3, 132, 0, 10], &[4; 65]);
    assert_eq!(issue(&ca, &k1, &names), Err(CaError::UnsupportedPublicKey));
    // RSA.
    let rsa_key = write::seq(&[&write::uint(&[0xc5; 256]), &write::small_uint(65537)]);
    let rsa = write::seq(&[
        &write::seq(&[
            &write::oid(crate::x509::oid::RSA_ENCRYPTION),
            &write::null(),
        ]),
        &write::bits(&rsa_key),
    ]);
    assert_eq!(issue(&ca, &rsa, &names), Err(CaError::UnsupportedPublicKey));
    // Garbage, trailing bytes, a P-256 point off the curve, a compressed point.
    assert_eq!(
        issue(&ca, b"not a key", &names),
        Err(CaError::MalformedPublicKey)
    );
    let mut trailing = p256_spki();
    trailing.push(0);
    assert_eq!(
        issue(&ca, &trailing, &names),
        Err(CaError::MalformedPublicKey)
    );
    let mut off_curve = [4u8; 65];
    off_curve[64] = 5;
    assert_eq!(
        issue(&ca, &ec_spki(crate::x509::oid::P256, &off_curve), &names),
        Err(CaError::MalformedPublicKey)
    );
    assert_eq!(
        issue(&ca, &ec_spki(crate::x509::oid::P256, &[2; 33]), &names),
        Err(CaError::MalformedPublicKey)
    );
    assert!(
        CaError::UnsupportedPublicKey
            .to_string()
            .contains("P-256 or P-384")
    );
}

#[test]
fn requests_without_dns_name_or_with_bad_sans_are_refused() {
    let ca = ca();
    let spki = p256_spki();
    assert_eq!(issue(&ca, &spki, &[]), Err(CaError::NoSubject));
    // Without a DNS name the first SAN is the subject.
    let leaf = issue(&ca, &spki, &sans(&["10.0.0.1", "spiffe://td/x"])).unwrap();
    let cert = crate::x509::Certificate::from_der(&leaf).unwrap();
    assert_eq!(cert.subject_common_name(), Some("10.0.0.1"));
    assert!(matches!(
        issue(&ca, &spki, &sans(&["ok.example", "not ok"])),
        Err(CaError::BadSan { san, .. }) if san == "not ok"
    ));
    // The subject is the first DNS name even after IPs and URIs.
    let leaf = issue(
        &ca,
        &spki,
        &sans(&["::1", "second.example", "third.example"]),
    )
    .unwrap();
    assert_eq!(
        Certificate::from_der(&leaf).unwrap().subject_common_name(),
        Some("second.example")
    );
    let request = WorkloadCertRequest {
        public_key_spki: &spki,
        sans: &sans(&["a.example"]),
        workload_secret_id: Some(""),
        claims: None,
    };
    assert_eq!(
        ca.issue(&request, NOW, &Counter(Cell::new(0))),
        Err(CaError::EmptyWorkloadSecretId)
    );
    assert_eq!(
        ca.issue(
            &WorkloadCertRequest {
                workload_secret_id: None,
                ..request
            },
            NOW,
            &Broken
        ),
        Err(CaError::Random(CryptoError::RandomFailed))
    );
}

#[test]
fn classifies_sans() {
    let dns = |s: &str| Ok(SubjectAltName::Dns(s.to_string()));
    assert_eq!(
        classify_san("web.default.svc.cluster.local"),
        dns("web.default.svc.cluster.local")
    );
    assert_eq!(classify_san("localhost"), dns("localhost"));
    assert_eq!(classify_san("Web.Example"), dns("web.example"));
    assert_eq!(
        classify_san("*.svc.cluster.local"),
        dns("*.svc.cluster.local")
    );
    assert_eq!(classify_san("a-1.b2"), dns("a-1.b2"));
    assert_eq!(
        classify_san("192.168.0.1"),
        Ok(SubjectAltName::Ip(IpAddr::V4(Ipv4Addr::new(
            192, 168, 0, 1
        ))))
    );
    assert_eq!(
        classify_san("::1"),
        Ok(SubjectAltName::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)))
    );
    assert_eq!(
        classify_san("fd00::1"),
        Ok(SubjectAltName::Ip(IpAddr::V6(Ipv6Addr::new(
            0xfd00, 0, 0, 0, 0, 0, 0, 1
        ))))
    );
    for uri in [
        "spiffe://cluster.local/ns/default/sa/web",
        "https://example.com/path?q=1",
        "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
    ] {
        assert_eq!(classify_san(uri), Ok(SubjectAltName::Uri(uri.to_string())));
    }
    let long_label = "a".repeat(64);
    let long_name = ["abcdefghi"; 26].join(".");
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("a b", "character other than"),
        (" a.example", "character other than"),
        ("*.", "wildcard without a domain"),
        ("*", "wildcard other than"),
        ("a..b", "empty DNS label"),
        (".a", "empty DNS label"),
        ("a.example.", "trailing dot"),
        (&long_label, "longer than 63"),
        (&long_name, "longer than 253"),
        ("-a.example", "starting or ending with '-'"),
        ("a.*.example", "wildcard other than"),
        ("foo*.example", "character other than"),
        ("under_score.example", "character other than"),
        ("ünicode.example", "character other than"),
        ("1.2.3.4:80", "neither an IP address nor a URI"),
        ("https:", "neither an IP address nor a URI"),
        ("https://", "nothing after the scheme"),
        ("1ttp://x", "neither an IP address nor a URI"),
        ("spiffe://td/with space", "spaces, control or non-ASCII"),
        ("fd00::g", "neither an IP address nor a URI"),
    ];
    for (san, reason) in cases {
        match classify_san(san) {
            Err(CaError::BadSan { san: s, reason: r }) => {
                assert_eq!(&s, san);
                assert!(r.contains(reason), "{san:?}: {r:?} lacks {reason:?}");
            }
            other => panic!("{san:?} gave {other:?}"),
        }
    }
    // 63-character labels and 253-character names are fine.
    let max_label = "b".repeat(63);
    assert!(classify_san(&max_label).is_ok());
    let max_name = format!("{}.{}", ["abcdefghi"; 24].join("."), "a".repeat(13));
    assert_eq!(max_name.len(), 253);
    assert!(classify_san(&max_name).is_ok());
}

#[test]
fn san_extension_holds_every_classified_name() {
    let ca = ca();
    let names = sans(&[
        "a.example",
        "*.svc.cluster.local",
        "10.1.2.3",
        "fd00::1",
        "spiffe://td/w",
    ]);
    let leaf_der = issue(&ca, &p256_spki(), &names).unwrap();
    let leaf = Certificate::from_der(&leaf_der).unwrap();
    let san = leaf.extension(oids::SUBJECT_ALT_NAME).unwrap().unwrap();
    assert!(!san.critical);
    let mut names = DerReader::new(der::single(san.value, tag::SEQUENCE).unwrap().contents);
    let mut seen = Vec::new();
    while !names.is_empty() {
        let name = names.read().unwrap();
        seen.push((name.tag, name.contents.to_vec()));
    }
    let mut fd00 = [0u8; 16];
    fd00[0] = 0xfd;
    fd00[15] = 1;
    assert_eq!(
        seen,
        [
            (0x82, b"a.example".to_vec()),
            (0x82, b"*.svc.cluster.local".to_vec()),
            (0x87, alloc::vec![10, 1, 2, 3]),
            (0x87, fd00.to_vec()),
            (0x86, b"spiffe://td/w".to_vec()),
        ]
    );
}

fn tcb(byte: u8) -> TcbClaim {
    TcbClaim {
        raw: u64::from(byte),
        parts: TcbVersion {
            fmc: None,
            bootloader: byte,
            tee: byte + 1,
            snp: byte + 2,
            microcode: byte + 3,
        },
    }
}

fn snp_claims() -> SnpClaims {
    SnpClaims {
        product: Product::Genoa,
        product_name: "Genoa".to_string(),
        signing_key: SigningKey::Vlek,
        csp_id: None,
        genuine_roots: false,
        leaf_serial: "01".to_string(),
        version: 3,
        guest_svn: 7,
        policy: GuestPolicy((1 << 16) | (1 << 17)).into(),
        family_id: HexBytes([0x0f; 16]),
        image_id: HexBytes([0x1f; 16]),
        vmpl: 2,
        signature_algo: 1,
        platform_info: PlatformInfo(1).into(),
        author_key_en: false,
        mask_chip_key: true,
        report_data: HexBytes([0x21; 64]),
        measurement: HexBytes([0x22; 48]),
        host_data: HexBytes([0x23; 32]),
        id_key_digest: HexBytes([0x24; 48]),
        author_key_digest: HexBytes([0x25; 48]),
        report_id: HexBytes([0x26; 32]),
        report_id_ma: HexBytes([0x27; 32]),
        current_tcb: tcb(10),
        reported_tcb: tcb(20),
        committed_tcb: tcb(30),
        launch_tcb: tcb(40),
        cpuid: None,
        chip_id: HexBytes([0x32; 64]),
        current_version: FirmwareVersion {
            major: 1,
            minor: 55,
            build: 21,
        },
        committed_version: FirmwareVersion {
            major: 1,
            minor: 54,
            build: 3,
        },
        launch_mit_vector: None,
        current_mit_vector: None,
    }
}

fn snp_oid(n: u64) -> [u64; 6] {
    [1, 3, 9901, 2, 1, n]
}

#[test]
fn snp_claims_and_secret_id_are_copied_into_extensions() {
    let ca = ca();
    let claims = Claims::Snp(Box::new(snp_claims()));
    let spki = p256_spki();
    let names = sans(&["a.example"]);
    let leaf = ca
        .issue(
            &WorkloadCertRequest {
                public_key_spki: &spki,
                sans: &names,
                workload_secret_id: Some("db-password"),
                claims: Some(&claims),
            },
            NOW,
            &Counter(Cell::new(0)),
        )
        .unwrap();
    let octets_of = |arcs: &[u64]| {
        let value = extension_value(&leaf, arcs).unwrap().unwrap();
        assert_eq!(value.tag, tag::OCTET_STRING, "{arcs:?}");
        value.contents.to_vec()
    };
    let int_of = |arcs: &[u64]| {
        let value = extension_value(&leaf, arcs).unwrap().unwrap();
        assert_eq!(value.tag, tag::INTEGER, "{arcs:?}");
        der::uint_u64(value.contents).unwrap()
    };
    let bool_of = |arcs: &[u64]| {
        let value = extension_value(&leaf, arcs).unwrap().unwrap();
        assert_eq!(value.tag, tag::BOOLEAN, "{arcs:?}");
        der::boolean(value.contents).unwrap()
    };
    assert_eq!(octets_of(&WORKLOAD_SECRET_ID), b"db-password");
    assert_eq!(octets_of(&snp_oid(21)), [0x21; 64]);
    assert_eq!(octets_of(&snp_oid(22)), [0x22; 48]);
    assert_eq!(octets_of(&snp_oid(23)), [0x23; 32]);
    assert_eq!(octets_of(&snp_oid(32)), [0x32; 64]);
    assert_eq!(int_of(&snp_oid(11)), 2);
    assert_eq!(int_of(&snp_oid(1)), 3);
    assert_eq!(int_of(&snp_oid(2)), 7);
    assert_eq!(int_of(&snp_oid(20)), 1);
    // CURRENT_TCB: bootloader, SNP, TEE, microcode.
    assert_eq!(int_of(&snp_oid(12)), 10);
    assert_eq!(int_of(&snp_oid(13)), 12);
    assert_eq!(int_of(&snp_oid(14)), 11);
    assert_eq!(int_of(&snp_oid(15)), 13);
    assert_eq!(int_of(&snp_oid(46)), 43);
    assert_eq!(int_of(&snp_oid(37)), 21);
    assert_eq!(int_of(&snp_oid(39)), 1);
    assert!(bool_of(&snp_oid(7)));
    assert!(!bool_of(&snp_oid(5)));
    assert!(bool_of(&snp_oid(16)));
    assert!(bool_of(&snp_oid(19)));
    assert!(extension_value(&leaf, &snp_oid(47)).unwrap().is_none());

    // Every claim extension is non-critical, under the SNP arc, once.
    let cert = Certificate::from_der(&leaf).unwrap();
    let claim_count = cert
        .extensions()
        .map(Result::unwrap)
        .filter(|e| (1..=46).any(|n| der::oid_is(e.oid, &snp_oid(n))))
        .inspect(|e| assert!(!e.critical))
        .count();
    assert_eq!(claim_count, 46);

    // Without an id or claims, neither appears.
    let plain = issue(&ca, &spki, &names).unwrap();
    assert!(
        extension_value(&plain, &WORKLOAD_SECRET_ID)
            .unwrap()
            .is_none()
    );
    assert!(extension_value(&plain, &snp_oid(22)).unwrap().is_none());
}

#[test]
fn serials_are_positive_and_nonzero_even_from_zero_randomness() {
    let ca = Ca::new(&root_key(1), mesh_key(3), NOW, &Zeros).unwrap();
    for der_bytes in [ca.root_cert(), ca.intermediate_cert(), ca.mesh_ca_cert()] {
        let cert = Certificate::from_der(der_bytes).unwrap();
        assert_eq!(cert.serial(), [1]);
    }
    let leaf = ca
        .issue(
            &WorkloadCertRequest {
                public_key_spki: &p256_spki(),
                sans: &sans(&["a.example"]),
                workload_secret_id: None,
                claims: None,
            },
            NOW,
            &Counter(Cell::new(0x80)),
        )
        .unwrap();
    let serial = Certificate::from_der(&leaf).unwrap().serial().to_vec();
    // The top bit of 0x80 was cleared; the zero byte is then not encoded.
    assert_eq!(serial.len(), 15);
    assert_eq!(serial[0], 0x8d);
}

#[test]
fn generalized_time_from_2050() {
    // 2045: the CA certificates end in 2055 (GeneralizedTime), the leaf in
    // 2046 (UTCTime).
    let now = UnixTime::from_civil(2045, 6, 1, 0, 0, 0).unwrap();
    let ca = Ca::new(&root_key(1), mesh_key(3), now, &Counter(Cell::new(0))).unwrap();
    let root = Certificate::from_der(ca.root_cert()).unwrap();
    assert_eq!(root.not_after(), UnixTime(now.0 + CA_VALIDITY_SECONDS));
    let contains =
        |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).any(|w| w == needle);
    assert!(contains(ca.root_cert(), b"\x18\x0f2055"));
    assert!(contains(ca.root_cert(), b"\x17\x0d450531"));
    assert_eq!(
        Ca::new(&root_key(1), mesh_key(3), UnixTime(i64::MAX - 10), &Zeros).err(),
        Some(CaError::TimeOutOfRange)
    );
    assert_eq!(
        Ca::new(
            &root_key(1),
            mesh_key(3),
            UnixTime::from_civil(9995, 1, 1, 0, 0, 0).unwrap(),
            &Zeros
        )
        .err(),
        Some(CaError::TimeOutOfRange)
    );
}

#[test]
fn intermediate_and_mesh_ca_share_key_and_subject_across_generations_only_per_key() {
    let old = ca();
    let new = Ca::new(&root_key(1), mesh_key(4), NOW, &Counter(Cell::new(9))).unwrap();
    assert_eq!(old.root_public_key_sec1(), new.root_public_key_sec1());
    let old_leaf = issue(&old, &p256_spki(), &sans(&["a.example"])).unwrap();
    let old_leaf = Certificate::from_der(&old_leaf).unwrap();
    let new_mesh = Certificate::from_der(new.mesh_ca_cert()).unwrap();
    let old_intermediate = Certificate::from_der(old.intermediate_cert()).unwrap();
    let new_root = Certificate::from_der(new.root_cert()).unwrap();
    let provider = crate::crypto::default_provider();
    assert_eq!(
        old_leaf.verify_issued_by(&new_mesh, provider),
        Err(X509Error::BadSignature)
    );
    old_leaf
        .verify_issued_by(&old_intermediate, provider)
        .unwrap();
    old_intermediate
        .verify_issued_by(&new_root, provider)
        .unwrap();
}

#[test]
fn extension_table_in_docs_matches_module_docs() {
    let doc = include_str!("../../../docs/certificate-extensions.md");
    let module = include_str!("mod.rs");
    let rows: Vec<&str> = module
        .lines()
        .filter_map(|l| l.strip_prefix("//! | 1.3.9901"))
        .collect();
    assert_eq!(rows.len(), 55);
    for row in rows {
        assert!(
            doc.contains(&format!("| 1.3.9901{row}")),
            "docs/certificate-extensions.md lacks the row {row:?}"
        );
    }
}

fn tdx_claims() -> crate::evidence::tdx::TdxClaims {
    use crate::evidence::tdx::claims::{BodyClaims, HeaderClaims, PckClaims, QeClaims};
    use crate::evidence::tdx::pck::SgxType;
    use crate::evidence::tdx::quote::TdReportVersion;
    use crate::evidence::tdx::{TcbStatus, TdxClaims};
    let hex_of = |byte: u8, len: usize| crate::hex::encode(&alloc::vec![byte; len]);
    TdxClaims {
        header: HeaderClaims {
            version: 4,
            att_key_type: 2,
            tee_type: 0x81,
            qe_vendor_id: hex_of(0x06, 16),
            user_data: hex_of(0x07, 20),
        },
        body: BodyClaims {
            report_version: TdReportVersion::V1_0,
            tee_tcb_svn: hex_of(0x08, 16),
            mr_seam: hex_of(0x09, 48),
            mr_signer_seam: hex_of(0x0a, 48),
            seam_attributes: hex_of(0x0b, 8),
            td_attributes: hex_of(0x0c, 8),
            xfam: hex_of(0x0d, 8),
            mr_td: hex_of(0x0e, 48),
            mr_config_id: hex_of(0x0f, 48),
            mr_owner: hex_of(0x10, 48),
            mr_owner_config: hex_of(0x11, 48),
            rtmrs: [
                hex_of(0x12, 48),
                hex_of(0x13, 48),
                hex_of(0x14, 48),
                hex_of(0x15, 48),
            ],
            report_data: hex_of(0x16, 64),
            tee_tcb_svn2: None,
            mr_service_td: None,
        },
        qe_report: QeClaims {
            cpu_svn: hex_of(0x1d, 16),
            misc_select: 30,
            attributes: hex_of(0x20, 16),
            mr_enclave: hex_of(0x21, 32),
            mr_signer: hex_of(0x23, 32),
            isv_prod_id: 37,
            isv_svn: 38,
        },
        pck: PckClaims {
            serial: "01".to_string(),
            fmspc: "00906ed50000".to_string(),
            pce_id: "0000".to_string(),
            pce_svn: 13,
            cpu_svn: hex_of(0, 16),
            sgx_tcb_components: [0; 16],
            ppid: hex_of(0, 16),
            sgx_type: SgxType::Standard,
            piid: None,
            configuration: None,
        },
        tcb_status: TcbStatus::UpToDate,
        platform_tcb_status: TcbStatus::UpToDate,
        tdx_module_tcb_status: None,
        qe_tcb_status: TcbStatus::UpToDate,
        advisory_ids: Vec::new(),
        tcb_evaluation_data_number: 17,
        platform_tcb_date: "2025-01-01T00:00:00Z".to_string(),
        collateral_valid_from: "2026-01-01T00:00:00Z".to_string(),
        collateral_valid_until: "2026-12-01T00:00:00Z".to_string(),
    }
}

#[test]
fn tdx_claims_are_decoded_from_hex_into_extensions() {
    let ca = ca();
    let spki = p256_spki();
    let names = sans(&["a.example"]);
    let mut claims = tdx_claims();
    let request = |claims: &Claims| {
        ca.issue(
            &WorkloadCertRequest {
                public_key_spki: &spki,
                sans: &names,
                workload_secret_id: None,
                claims: Some(claims),
            },
            NOW,
            &Counter(Cell::new(0)),
        )
    };
    let leaf = request(&Claims::Tdx(Box::new(claims.clone()))).unwrap();
    let tdx_oid = |n: u64| [1, 3, 9901, 2, 2, n];
    let value = |n: u64| extension_value(&leaf, &tdx_oid(n)).unwrap().unwrap();
    assert_eq!(value(14).tag, tag::OCTET_STRING);
    assert_eq!(value(14).contents, [0x0e; 48]);
    assert_eq!(value(21).contents, [0x15; 48]);
    assert_eq!(value(22).contents, [0x16; 64]);
    assert_eq!(value(7).contents, [0x07; 20]);
    assert_eq!(value(35).contents, [0x23; 32]);
    assert_eq!(der::uint_u64(value(3).contents), Ok(0x81));
    assert_eq!(der::uint_u64(value(38).contents), Ok(38));
    for absent in [4, 5, 23, 31, 34, 36, 39] {
        assert!(extension_value(&leaf, &tdx_oid(absent)).unwrap().is_none());
    }
    assert!(extension_value(&leaf, &snp_oid(22)).unwrap().is_none());

    claims.body.mr_td = "zz".to_string();
    assert_eq!(
        request(&Claims::Tdx(Box::new(claims))),
        Err(CaError::BadClaims {
            field: "body.mr_td"
        })
    );
}

#[test]
fn workload_certificates_end_no_later_than_the_ca() {
    let ca = ca();
    let ca_end = Certificate::from_der(ca.mesh_ca_cert())
        .unwrap()
        .not_after();
    let late = UnixTime(ca_end.0 - 100 * 86_400);
    let leaf = ca
        .issue(
            &WorkloadCertRequest {
                public_key_spki: &p256_spki(),
                sans: &sans(&["a.example"]),
                workload_secret_id: None,
                claims: None,
            },
            late,
            &Counter(Cell::new(0)),
        )
        .unwrap();
    assert_eq!(Certificate::from_der(&leaf).unwrap().not_after(), ca_end);
    let after = ca.issue(
        &WorkloadCertRequest {
            public_key_spki: &p256_spki(),
            sans: &sans(&["a.example"]),
            workload_secret_id: None,
            claims: None,
        },
        UnixTime(ca_end.0 + 1),
        &Counter(Cell::new(0)),
    );
    assert_eq!(after, Err(CaError::CaExpired { not_after: ca_end }));
}
