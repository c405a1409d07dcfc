//! The CA's certificates checked by two independent verifiers: the `openssl`
//! binary (`openssl verify -x509_strict`, with the sslserver and sslclient
//! purposes) and rustls-webpki (`EndEntityCert::verify_for_usage`, name
//! checks). Both must accept a workload certificate through the root and
//! intermediate and through the mesh CA alone, and refuse a certificate of
//! an older mesh CA against the current mesh CA while accepting it through
//! the root. The `openssl` binary must be installed: its absence fails the
//! test.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use accord_core::ca::{Ca, WORKLOAD_SECRET_ID, WorkloadCertRequest};
use accord_core::crypto::{CryptoError, SecureRandom, default_provider};
use accord_core::der::write;
use accord_core::evidence::Claims;
use accord_core::kdf::{MeshCaKey, RootCaKey, Salt, SecretSeed, SeedEngine};
use accord_core::time::UnixTime;
use accord_core::x509::oid;
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor};
use webpki::{ALL_VERIFICATION_ALGS, EndEntityCert, KeyUsage, anchor_from_trusted_cert};

struct OsRandom;

impl SecureRandom for OsRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        getrandom::fill(dest).map_err(|_| CryptoError::RandomFailed)
    }
}

fn now() -> UnixTime {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    UnixTime(i64::try_from(secs).unwrap())
}

fn webpki_time(at: UnixTime) -> rustls_pki_types::UnixTime {
    rustls_pki_types::UnixTime::since_unix_epoch(Duration::from_secs(at.0 as u64))
}

fn root_key() -> RootCaKey {
    SeedEngine::new(
        SecretSeed::generate(&OsRandom).unwrap(),
        Salt::generate(&OsRandom).unwrap(),
        default_provider(),
    )
    .root_ca_key()
    .unwrap()
}

/// A workload key's SPKI: a fresh P-384 key (the mesh CA key type is just a
/// convenient P-384 key generator) or a fixed P-256 one.
fn p384_spki() -> Vec<u8> {
    let key = MeshCaKey::random(&OsRandom).unwrap();
    write::seq(&[
        &write::seq(&[&write::oid(oid::EC_PUBLIC_KEY), &write::oid(oid::P384)]),
        &write::bits(key.public_key_sec1()),
    ])
}

fn p256_spki() -> Vec<u8> {
    use p256::elliptic_curve::sec1::ToSec1Point;
    let secret = p256::SecretKey::from_bytes(&[9u8; 32].into()).unwrap();
    let point = secret.public_key().as_affine().to_sec1_point(false);
    write::seq(&[
        &write::seq(&[&write::oid(oid::EC_PUBLIC_KEY), &write::oid(oid::P256)]),
        &write::bits(point.as_bytes()),
    ])
}

const SANS: &[&str] = &[
    "web.default.svc.cluster.local",
    "*.svc.cluster.local",
    "10.0.0.7",
    "fd00::1",
    "spiffe://cluster.local/ns/default/sa/web",
];

fn issue(ca: &Ca, spki: &[u8], at: UnixTime, claims: Option<&Claims>) -> Vec<u8> {
    let sans: Vec<String> = SANS.iter().map(|s| s.to_string()).collect();
    ca.issue(
        &WorkloadCertRequest {
            public_key_spki: spki,
            sans: &sans,
            workload_secret_id: Some("db-password"),
            claims,
        },
        at,
        &OsRandom,
    )
    .unwrap()
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "accord-ca-openssl-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn write_pem(&self, name: &str, der: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, write::pem("CERTIFICATE", der)).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `openssl verify -x509_strict [args] leaf`; returns (success with
/// "OK", combined output).
fn openssl_verify(args: &[&Path], flags: &[&str], leaf: &Path) -> (bool, String) {
    let mut command = Command::new("openssl");
    command.arg("verify").arg("-x509_strict");
    command.args(flags);
    for pair in args.chunks(2) {
        command.arg(pair[0]).arg(pair[1]);
    }
    command.arg(leaf);
    let output = command
        .output()
        .expect("the `openssl` binary is required for this test (is it installed and on PATH?)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let ok = output.status.success() && text.trim_end().ends_with(": OK");
    (ok, text)
}

fn assert_openssl_accepts(ca_file: &Path, untrusted: Option<&Path>, leaf: &Path) {
    for purpose in [None, Some("sslserver"), Some("sslclient")] {
        let mut flags = Vec::new();
        if let Some(p) = purpose {
            flags.extend(["-purpose", p]);
        }
        let ca_flag = Path::new("-CAfile");
        let untrusted_flag = Path::new("-untrusted");
        let mut args: Vec<&Path> = vec![ca_flag, ca_file];
        if let Some(u) = untrusted {
            args.extend([untrusted_flag, u]);
        }
        let (ok, text) = openssl_verify(&args, &flags, leaf);
        assert!(ok, "openssl refused ({purpose:?}): {text}");
    }
}

#[test]
fn openssl_is_installed() {
    let output = Command::new("openssl")
        .arg("version")
        .output()
        .expect("the `openssl` binary is required for the CA tests");
    assert!(output.status.success());
}

#[test]
fn openssl_verifies_through_root_and_through_mesh_ca() {
    let at = now();
    let ca = Ca::new(
        &root_key(),
        MeshCaKey::random(&OsRandom).unwrap(),
        at,
        &OsRandom,
    )
    .unwrap();
    let dir = TempDir::new();
    let root = dir.write_pem("root.pem", ca.root_cert());
    let intermediate = dir.write_pem("intermediate.pem", ca.intermediate_cert());
    let mesh = dir.write_pem("mesh-ca.pem", ca.mesh_ca_cert());
    for (name, spki) in [
        ("leaf-p256.pem", p256_spki()),
        ("leaf-p384.pem", p384_spki()),
    ] {
        let leaf = dir.write_pem(name, &issue(&ca, &spki, at, None));
        assert_openssl_accepts(&root, Some(&intermediate), &leaf);
        assert_openssl_accepts(&mesh, None, &leaf);
        // The root alone is not enough: the intermediate is needed.
        let (ok, _) = openssl_verify(&[Path::new("-CAfile"), &root], &[], &leaf);
        assert!(!ok);
    }
    // The CA certificates themselves verify too.
    assert_openssl_accepts(&root, None, &intermediate);
    // openssl parses every certificate and shows the extensions.
    let output = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(dir.0.join("leaf-p256.pem"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(text.contains("DNS:web.default.svc.cluster.local"), "{text}");
    assert!(text.contains("DNS:*.svc.cluster.local"), "{text}");
    assert!(text.contains("IP Address:10.0.0.7"), "{text}");
    assert!(text.contains("IP Address:FD00:0:0:0:0:0:0:1"), "{text}");
    assert!(
        text.contains("URI:spiffe://cluster.local/ns/default/sa/web"),
        "{text}"
    );
    assert!(text.contains("TLS Web Server Authentication, TLS Web Client Authentication"));
    assert!(text.contains("1.3.9901.3.1"), "{text}");
    assert!(
        text.contains("Subject: CN = web.default.svc.cluster.local"),
        "{text}"
    );
}

#[test]
fn older_mesh_ca_certificates_fail_against_new_mesh_ca_but_pass_through_root() {
    let at = now();
    let root_key = root_key();
    let old = Ca::new(
        &root_key,
        MeshCaKey::random(&OsRandom).unwrap(),
        at,
        &OsRandom,
    )
    .unwrap();
    let new = Ca::new(
        &root_key,
        MeshCaKey::random(&OsRandom).unwrap(),
        at,
        &OsRandom,
    )
    .unwrap();
    let old_leaf_der = issue(&old, &p256_spki(), at, None);

    let dir = TempDir::new();
    let new_root = dir.write_pem("root.pem", new.root_cert());
    let new_mesh = dir.write_pem("mesh-ca.pem", new.mesh_ca_cert());
    let old_intermediate = dir.write_pem("old-intermediate.pem", old.intermediate_cert());
    let new_intermediate = dir.write_pem("new-intermediate.pem", new.intermediate_cert());
    let old_leaf = dir.write_pem("old-leaf.pem", &old_leaf_der);

    let (ok, text) = openssl_verify(&[Path::new("-CAfile"), &new_mesh], &[], &old_leaf);
    assert!(
        !ok,
        "openssl accepted an old leaf under the new mesh CA: {text}"
    );
    // The refusal must be about the issuer's key (openssl matches the AKI
    // against the SKI first, then checks the signature), nothing else.
    assert!(
        text.contains("unable to get local issuer certificate")
            || text.contains("certificate signature failure"),
        "{text}"
    );
    let (ok, text) = openssl_verify(
        &[
            Path::new("-CAfile"),
            &new_root,
            Path::new("-untrusted"),
            &new_intermediate,
        ],
        &[],
        &old_leaf,
    );
    assert!(
        !ok,
        "openssl accepted an old leaf under the new intermediate: {text}"
    );
    // The refusal must be about the issuer's key (openssl matches the AKI
    // against the SKI first, then checks the signature), nothing else.
    assert!(
        text.contains("unable to get local issuer certificate")
            || text.contains("certificate signature failure"),
        "{text}"
    );
    // The root is the same (derived from the seed), so the old intermediate
    // links the old leaf to it.
    assert_openssl_accepts(&new_root, Some(&old_intermediate), &old_leaf);

    let old_leaf_cert = CertificateDer::from(old_leaf_der.as_slice());
    let leaf = EndEntityCert::try_from(&old_leaf_cert).unwrap();
    let new_mesh_der = CertificateDer::from(new.mesh_ca_cert());
    let new_root_der = CertificateDer::from(new.root_cert());
    let time = webpki_time(at);
    for usage in [KeyUsage::server_auth(), KeyUsage::client_auth()] {
        let anchors = [anchor_from_trusted_cert(&new_mesh_der).unwrap()];
        assert!(
            leaf.verify_for_usage(
                ALL_VERIFICATION_ALGS,
                &anchors,
                &[],
                time,
                usage,
                None,
                None
            )
            .is_err()
        );
        let anchors = [anchor_from_trusted_cert(&new_root_der).unwrap()];
        let new_intermediates = [CertificateDer::from(new.intermediate_cert())];
        assert!(
            leaf.verify_for_usage(
                ALL_VERIFICATION_ALGS,
                &anchors,
                &new_intermediates,
                time,
                usage,
                None,
                None
            )
            .is_err()
        );
        let old_intermediates = [CertificateDer::from(old.intermediate_cert())];
        leaf.verify_for_usage(
            ALL_VERIFICATION_ALGS,
            &anchors,
            &old_intermediates,
            time,
            usage,
            None,
            None,
        )
        .unwrap();
    }
}

fn webpki_accepts(
    leaf_der: &[u8],
    anchors: &[TrustAnchor<'_>],
    intermediates: &[CertificateDer<'_>],
    at: UnixTime,
) {
    let leaf_cert = CertificateDer::from(leaf_der);
    let leaf = EndEntityCert::try_from(&leaf_cert).unwrap();
    for usage in [KeyUsage::server_auth(), KeyUsage::client_auth()] {
        leaf.verify_for_usage(
            ALL_VERIFICATION_ALGS,
            anchors,
            intermediates,
            webpki_time(at),
            usage,
            None,
            None,
        )
        .unwrap();
    }
}

#[test]
fn webpki_verifies_through_root_and_through_mesh_ca_and_checks_names() {
    let at = UnixTime(1_772_323_200);
    let ca = Ca::new(
        &root_key(),
        MeshCaKey::random(&OsRandom).unwrap(),
        at,
        &OsRandom,
    )
    .unwrap();
    let root_der = CertificateDer::from(ca.root_cert());
    let mesh_der = CertificateDer::from(ca.mesh_ca_cert());
    let root_anchor = [anchor_from_trusted_cert(&root_der).unwrap()];
    let mesh_anchor = [anchor_from_trusted_cert(&mesh_der).unwrap()];
    let intermediates = [CertificateDer::from(ca.intermediate_cert())];
    for spki in [p256_spki(), p384_spki()] {
        let leaf_der = issue(&ca, &spki, at, None);
        webpki_accepts(&leaf_der, &root_anchor, &intermediates, at);
        webpki_accepts(&leaf_der, &mesh_anchor, &[], at);
        // Valid from now − 1 h, for a year; not before, not after.
        webpki_accepts(&leaf_der, &mesh_anchor, &[], UnixTime(at.0 - 3599));
        let leaf_cert = CertificateDer::from(leaf_der.as_slice());
        let leaf = EndEntityCert::try_from(&leaf_cert).unwrap();
        for late_or_early in [UnixTime(at.0 - 3601), UnixTime(at.0 + 366 * 86_400)] {
            assert!(
                leaf.verify_for_usage(
                    ALL_VERIFICATION_ALGS,
                    &mesh_anchor,
                    &[],
                    webpki_time(late_or_early),
                    KeyUsage::server_auth(),
                    None,
                    None
                )
                .is_err()
            );
        }

        for name in ["web.default.svc.cluster.local", "other.svc.cluster.local"] {
            leaf.verify_is_valid_for_subject_name(&ServerName::try_from(name).unwrap())
                .unwrap();
        }
        for ip in ["10.0.0.7", "fd00::1"] {
            let ip: IpAddr = ip.parse().unwrap();
            leaf.verify_is_valid_for_subject_name(&ServerName::from(ip))
                .unwrap();
        }
        for wrong in ["evil.example", "a.b.svc.cluster.local"] {
            assert!(
                leaf.verify_is_valid_for_subject_name(&ServerName::try_from(wrong).unwrap())
                    .is_err()
            );
        }
        let wrong_ip: IpAddr = "10.0.0.8".parse().unwrap();
        assert!(
            leaf.verify_is_valid_for_subject_name(&ServerName::from(wrong_ip))
                .is_err()
        );
    }
}

#[test]
fn claim_extensions_survive_openssl_and_webpki() {
    // A workload certificate carrying SNP-shaped claims is still accepted by
    // both verifiers (the extensions are non-critical and well formed).
    use accord_core::evidence::snp::{
        FirmwareVersion, GuestPolicy, HexBytes, PlatformInfo, Product, SigningKey, SnpClaims,
        TcbClaim, TcbVersion,
    };
    let tcb = TcbClaim {
        raw: 0,
        parts: TcbVersion {
            fmc: None,
            bootloader: 9,
            tee: 0,
            snp: 23,
            microcode: 72,
        },
    };
    let version = FirmwareVersion {
        major: 1,
        minor: 55,
        build: 21,
    };
    let claims = Claims::Snp(Box::new(SnpClaims {
        product: Product::Genoa,
        product_name: "Genoa".into(),
        signing_key: SigningKey::Vcek,
        csp_id: None,
        genuine_roots: true,
        leaf_serial: "00".into(),
        version: 3,
        guest_svn: 1,
        policy: GuestPolicy(0x3_0000).into(),
        family_id: HexBytes([0; 16]),
        image_id: HexBytes([0; 16]),
        vmpl: 0,
        signature_algo: 1,
        platform_info: PlatformInfo(3).into(),
        author_key_en: false,
        mask_chip_key: false,
        report_data: HexBytes([0xaa; 64]),
        measurement: HexBytes([0xbb; 48]),
        host_data: HexBytes([0xcc; 32]),
        id_key_digest: HexBytes([0; 48]),
        author_key_digest: HexBytes([0; 48]),
        report_id: HexBytes([1; 32]),
        report_id_ma: HexBytes([0xff; 32]),
        current_tcb: tcb,
        reported_tcb: tcb,
        committed_tcb: tcb,
        launch_tcb: tcb,
        cpuid: None,
        chip_id: HexBytes([0x5a; 64]),
        current_version: version,
        committed_version: version,
        launch_mit_vector: None,
        current_mit_vector: None,
    }));
    let at = now();
    let ca = Ca::new(
        &root_key(),
        MeshCaKey::random(&OsRandom).unwrap(),
        at,
        &OsRandom,
    )
    .unwrap();
    let leaf_der = issue(&ca, &p256_spki(), at, Some(&claims));
    let dir = TempDir::new();
    let mesh = dir.write_pem("mesh-ca.pem", ca.mesh_ca_cert());
    let leaf = dir.write_pem("leaf.pem", &leaf_der);
    assert_openssl_accepts(&mesh, None, &leaf);
    let mesh_der = CertificateDer::from(ca.mesh_ca_cert());
    webpki_accepts(
        &leaf_der,
        &[anchor_from_trusted_cert(&mesh_der).unwrap()],
        &[],
        at,
    );

    let measurement = accord_core::ca::extension_value(&leaf_der, &[1, 3, 9901, 2, 1, 22])
        .unwrap()
        .unwrap();
    assert_eq!(measurement.contents, [0xbb; 48]);
    let id = accord_core::ca::extension_value(&leaf_der, &WORKLOAD_SECRET_ID)
        .unwrap()
        .unwrap();
    assert_eq!(id.contents, b"db-password");
}
