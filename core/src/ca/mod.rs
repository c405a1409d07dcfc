//! The coordinator's certificate authority.
//!
//! # Certificates
//!
//! [`Ca::new`] makes three CA certificates, all ECDSA P-384 with
//! ecdsa-with-SHA384, valid from `now − 1 h` for 3652 days (about ten
//! years), with basicConstraints (critical), keyUsage keyCertSign | cRLSign
//! | digitalSignature (critical), subjectKeyIdentifier and
//! authorityKeyIdentifier:
//!
//! | certificate | subject | key | signed by | basicConstraints |
//! |---|---|---|---|---|
//! | root | O=accord, CN=accord root CA | [`RootCaKey`] | itself | CA:true |
//! | intermediate | O=accord, CN=accord mesh CA | [`MeshCaKey`] | root key (issuer = root subject) | CA:true, pathLen 0 |
//! | mesh CA | O=accord, CN=accord mesh CA | [`MeshCaKey`] | itself | CA:true, pathLen 0 |
//!
//! The intermediate and the mesh CA have the same subject and key, so a
//! workload certificate ([`Ca::issue`]; issuer = that subject, AKI = the
//! mesh key's id) chains both to the mesh CA alone and, through the
//! intermediate, to the root. The root key is derived from the seed and
//! stays the same across manifest generations; the mesh key is fresh per
//! generation, so trusting the mesh CA means trusting only the current
//! generation, while trusting the root means trusting every generation.
//!
//! Key identifiers are the first 20 bytes of SHA-256 over the
//! subjectPublicKey bits (RFC 7093 §2, method 1). Serial numbers are 16
//! random bytes with the top bit cleared (positive), never zero.
//!
//! Workload certificates: subject CN = the first DNS SAN (else the first
//! SAN, else the workload secret id, as the manifest's subject rule), validity
//! `now − 1 h` for 365 days but never past the CA certificates' end
//! (issuing after it fails with [`CaError::CaExpired`]), keyUsage digitalSignature (critical),
//! basicConstraints CA:false (critical), extKeyUsage serverAuth +
//! clientAuth, subjectAltName (every SAN, classified by [`classify_san`]),
//! SKI, AKI = the mesh CA's SKI, and the claim extensions below. The
//! workload key must be ECDSA P-256 or P-384 (a valid point).
//!
//! Times are UTCTime up to 2049 and GeneralizedTime from 2050 (RFC 5280
//! §4.1.2.5). Signatures are deterministic (RFC 6979).
//!
//! # Claim extensions
//!
//! All non-critical, under the arc `1.3.9901` that Edgeless Systems'
//! Contrast (the reference system) uses for the same purpose, so its users
//! find it familiar. Numbers are DER INTEGER, flags BOOLEAN, byte
//! strings OCTET STRING (the TDX claims' hex strings decoded). Only the
//! claims accord has are included; the other numbers are not used.
//!
//! | OID | claim | type |
//! |---|---|---|
//! | 1.3.9901.3.1 | workload secret id (UTF-8 bytes; only if the workload has one) | OCTET STRING |
//! | 1.3.9901.2.1.1 | SNP VERSION | INTEGER |
//! | 1.3.9901.2.1.2 | SNP GUEST_SVN | INTEGER |
//! | 1.3.9901.2.1.3 | SNP POLICY.ABI_MAJOR | INTEGER |
//! | 1.3.9901.2.1.4 | SNP POLICY.ABI_MINOR | INTEGER |
//! | 1.3.9901.2.1.5 | SNP POLICY.DEBUG | BOOLEAN |
//! | 1.3.9901.2.1.6 | SNP POLICY.MIGRATE_MA | BOOLEAN |
//! | 1.3.9901.2.1.7 | SNP POLICY.SMT | BOOLEAN |
//! | 1.3.9901.2.1.8 | SNP POLICY.SINGLE_SOCKET | BOOLEAN |
//! | 1.3.9901.2.1.9 | SNP FAMILY_ID | OCTET STRING |
//! | 1.3.9901.2.1.10 | SNP IMAGE_ID | OCTET STRING |
//! | 1.3.9901.2.1.11 | SNP VMPL | INTEGER |
//! | 1.3.9901.2.1.12–15 | SNP CURRENT_TCB bootloader, SNP, TEE, microcode | INTEGER |
//! | 1.3.9901.2.1.16 | SNP PLATFORM_INFO.SMT_EN | BOOLEAN |
//! | 1.3.9901.2.1.17 | SNP PLATFORM_INFO.TSME_EN | BOOLEAN |
//! | 1.3.9901.2.1.18 | SNP AUTHOR_KEY_EN | BOOLEAN |
//! | 1.3.9901.2.1.19 | SNP MASK_CHIP_KEY | BOOLEAN |
//! | 1.3.9901.2.1.20 | SNP SIGNING_KEY (0 = VCEK, 1 = VLEK) | INTEGER |
//! | 1.3.9901.2.1.21 | SNP REPORT_DATA | OCTET STRING |
//! | 1.3.9901.2.1.22 | SNP MEASUREMENT | OCTET STRING |
//! | 1.3.9901.2.1.23 | SNP HOST_DATA | OCTET STRING |
//! | 1.3.9901.2.1.24 | SNP ID_KEY_DIGEST | OCTET STRING |
//! | 1.3.9901.2.1.25 | SNP AUTHOR_KEY_DIGEST | OCTET STRING |
//! | 1.3.9901.2.1.26 | SNP REPORT_ID | OCTET STRING |
//! | 1.3.9901.2.1.27 | SNP REPORT_ID_MA | OCTET STRING |
//! | 1.3.9901.2.1.28–31 | SNP REPORTED_TCB bootloader, SNP, TEE, microcode | INTEGER |
//! | 1.3.9901.2.1.32 | SNP CHIP_ID | OCTET STRING |
//! | 1.3.9901.2.1.33–36 | SNP COMMITTED_TCB bootloader, SNP, TEE, microcode | INTEGER |
//! | 1.3.9901.2.1.37–39 | SNP CURRENT_BUILD, CURRENT_MINOR, CURRENT_MAJOR | INTEGER |
//! | 1.3.9901.2.1.40–42 | SNP COMMITTED_BUILD, COMMITTED_MINOR, COMMITTED_MAJOR | INTEGER |
//! | 1.3.9901.2.1.43–46 | SNP LAUNCH_TCB bootloader, SNP, TEE, microcode | INTEGER |
//! | 1.3.9901.2.2.1 | TDX header version | INTEGER |
//! | 1.3.9901.2.2.2 | TDX attestation key type | INTEGER |
//! | 1.3.9901.2.2.3 | TDX TEE type | INTEGER |
//! | 1.3.9901.2.2.6 | TDX QE vendor id | OCTET STRING |
//! | 1.3.9901.2.2.7 | TDX header user data | OCTET STRING |
//! | 1.3.9901.2.2.8 | TDX TEE_TCB_SVN | OCTET STRING |
//! | 1.3.9901.2.2.9 | TDX MRSEAM | OCTET STRING |
//! | 1.3.9901.2.2.10 | TDX MRSIGNERSEAM | OCTET STRING |
//! | 1.3.9901.2.2.11 | TDX SEAMATTRIBUTES | OCTET STRING |
//! | 1.3.9901.2.2.12 | TDX TDATTRIBUTES | OCTET STRING |
//! | 1.3.9901.2.2.13 | TDX XFAM | OCTET STRING |
//! | 1.3.9901.2.2.14 | TDX MRTD | OCTET STRING |
//! | 1.3.9901.2.2.15 | TDX MRCONFIGID | OCTET STRING |
//! | 1.3.9901.2.2.16 | TDX MROWNER | OCTET STRING |
//! | 1.3.9901.2.2.17 | TDX MROWNERCONFIG | OCTET STRING |
//! | 1.3.9901.2.2.18–21 | TDX RTMR0–3 | OCTET STRING |
//! | 1.3.9901.2.2.22 | TDX REPORTDATA | OCTET STRING |
//! | 1.3.9901.2.2.29 | TDX QE CPUSVN | OCTET STRING |
//! | 1.3.9901.2.2.30 | TDX QE MISCSELECT | INTEGER |
//! | 1.3.9901.2.2.32 | TDX QE ATTRIBUTES | OCTET STRING |
//! | 1.3.9901.2.2.33 | TDX QE MRENCLAVE | OCTET STRING |
//! | 1.3.9901.2.2.35 | TDX QE MRSIGNER | OCTET STRING |
//! | 1.3.9901.2.2.37 | TDX QE ISVPRODID | INTEGER |
//! | 1.3.9901.2.2.38 | TDX QE ISVSVN | INTEGER |
//!
//! Not included: the SNP claims without a number in that arc (product,
//! CPUID, signature algorithm, mitigation vectors, the Turin FMC SPL, the
//! other policy and platform-info bits, the VCEK/VLEK serial) and the TDX
//! claims without one (TD report 1.5 fields, PCK certificate fields, TCB
//! statuses and collateral dates).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;

use p384::ecdsa::signature::Signer;
use sha2::{Digest, Sha256};

use crate::crypto::{CryptoError, EcCurve, SecureRandom};
use crate::der::write::{
    bits, boolean, explicit, implicit, octets, oid, seq, set, small_uint, time, tlv, uint, utf8,
};
use crate::der::{self, DerReader, tag};
use crate::evidence::Claims;
use crate::kdf::{KdfError, MeshCaKey, P384_POINT_LEN, RootCaKey};
use crate::time::UnixTime;
use crate::x509::{self, PublicKey, X509Error};

mod extensions;
mod san;

pub use extensions::{SNP_ARC, TDX_ARC, WORKLOAD_SECRET_ID};
pub use san::{MAX_DNS_LABEL_LEN, MAX_DNS_NAME_LEN, MAX_URI_LEN, SubjectAltName, classify_san};

/// Subject CN of the root certificate.
pub const ROOT_COMMON_NAME: &str = "accord root CA";
/// Subject CN of the intermediate and mesh CA certificates.
pub const MESH_COMMON_NAME: &str = "accord mesh CA";
/// Subject O of the CA certificates.
pub const ORGANISATION: &str = "accord";
/// How far back every certificate's notBefore lies (one hour, for clock skew).
pub const BACKDATE_SECONDS: i64 = 3600;
/// Validity of CA certificates after `now`: 3652 days (ten years).
pub const CA_VALIDITY_SECONDS: i64 = 3652 * 86_400;
/// Validity of workload certificates after `now`: 365 days.
pub const WORKLOAD_VALIDITY_SECONDS: i64 = 365 * 86_400;

/// Length of a serial number.
const SERIAL_LEN: usize = 16;
/// Length of a key identifier.
const KEY_ID_LEN: usize = 20;

mod oids {
    pub const ORGANISATION: &[u64] = &[2, 5, 4, 10];
    pub const SUBJECT_KEY_ID: &[u64] = &[2, 5, 29, 14];
    pub const SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];
    pub const AUTHORITY_KEY_ID: &[u64] = &[2, 5, 29, 35];
    pub const EXT_KEY_USAGE: &[u64] = &[2, 5, 29, 37];
    pub const SERVER_AUTH: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 1];
    pub const CLIENT_AUTH: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 2];
}

/// Why the CA could not make a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaError {
    /// Randomness for a serial number could not be drawn.
    Random(CryptoError),
    /// A CA key is unusable.
    Key(KdfError),
    /// The workload's public key is not a DER SubjectPublicKeyInfo, or its
    /// point is not on its curve.
    MalformedPublicKey,
    /// The workload's public key is well formed but not ECDSA P-256 or
    /// P-384.
    UnsupportedPublicKey,
    /// None of the SANs is a DNS name, so there is no subject common name.
    NoSubject,
    /// A SAN is neither an IP address, a URI nor a valid DNS name.
    BadSan {
        /// The SAN as given.
        san: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The workload secret id is empty.
    EmptyWorkloadSecretId,
    /// A claim could not be encoded (a TDX hex field that is not hex).
    BadClaims {
        /// The claim's field.
        field: &'static str,
    },
    /// A validity bound falls outside years 0–9999.
    TimeOutOfRange,
    /// The CA certificates have expired at the instant of issuance.
    CaExpired {
        /// The end of the CA certificates' validity.
        not_after: UnixTime,
    },
}

impl fmt::Display for CaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Random(e) => write!(f, "could not draw a serial number: {e}"),
            Self::Key(e) => write!(f, "unusable CA key: {e}"),
            Self::MalformedPublicKey => {
                f.write_str("workload public key is not a valid SubjectPublicKeyInfo")
            }
            Self::UnsupportedPublicKey => {
                f.write_str("workload public key is not ECDSA P-256 or P-384")
            }
            Self::NoSubject => {
                f.write_str("no SAN and no workload secret id to use as the certificate subject")
            }
            Self::BadSan { san, reason } => {
                write!(f, "bad subject alternative name {san:?}: {reason}")
            }
            Self::EmptyWorkloadSecretId => f.write_str("empty workload secret id"),
            Self::BadClaims { field } => write!(f, "claim {field} cannot be encoded"),
            Self::TimeOutOfRange => f.write_str("certificate validity outside years 0-9999"),
            Self::CaExpired { not_after } => write!(f, "the CA expired at {not_after}"),
        }
    }
}

impl core::error::Error for CaError {}

impl From<KdfError> for CaError {
    fn from(e: KdfError) -> Self {
        Self::Key(e)
    }
}

/// What a workload certificate is issued for.
#[derive(Clone, Copy, Debug)]
pub struct WorkloadCertRequest<'a> {
    /// The SubjectPublicKeyInfo DER of the workload's key: ECDSA P-256 or
    /// P-384 only.
    pub public_key_spki: &'a [u8],
    /// The SANs from the manifest policy; the first DNS name is also the
    /// subject CN.
    pub sans: &'a [String],
    /// The workload secret id, copied into extension `1.3.9901.3.1`.
    pub workload_secret_id: Option<&'a str>,
    /// The workload's attestation claims, copied into extensions.
    pub claims: Option<&'a Claims>,
}

/// The certificate authority of one manifest generation: the root key's
/// public half, the mesh key, and the three CA certificates.
#[derive(Clone)]
pub struct Ca {
    root_public: [u8; P384_POINT_LEN],
    mesh_key: MeshCaKey,
    /// The mesh key ready to sign (built once: deriving the public point
    /// costs as much as a signature). Zeroized on drop by `ecdsa`.
    mesh_signer: p384::ecdsa::SigningKey,
    mesh_subject: Vec<u8>,
    mesh_key_id: [u8; KEY_ID_LEN],
    not_after: UnixTime,
    root_cert: Vec<u8>,
    intermediate_cert: Vec<u8>,
    mesh_ca_cert: Vec<u8>,
}

/// A Name: O = `organisation` (if any), CN = `common_name`, each in its
/// own RDN.
fn name(organisation: Option<&str>, common_name: &str) -> Vec<u8> {
    let attribute = |arcs: &[u64], value: &str| {
        let inner = seq(&[&oid(arcs), &utf8(value)]);
        set(&[&inner])
    };
    let cn = attribute(x509::oid::COMMON_NAME, common_name);
    match organisation {
        Some(o) => seq(&[&attribute(oids::ORGANISATION, o), &cn]),
        None => seq(&[&cn]),
    }
}

/// The key identifier of a subjectPublicKey (RFC 7093 §2 method 1).
fn key_id(public_key_bits: &[u8]) -> [u8; KEY_ID_LEN] {
    let digest = Sha256::digest(public_key_bits);
    let mut id = [0u8; KEY_ID_LEN];
    for (slot, byte) in id.iter_mut().zip(digest.iter()) {
        *slot = *byte;
    }
    id
}

fn p384_spki(point: &[u8]) -> Vec<u8> {
    seq(&[
        &seq(&[&oid(x509::oid::EC_PUBLIC_KEY), &oid(x509::oid::P384)]),
        &bits(point),
    ])
}

fn ecdsa_sha384() -> Vec<u8> {
    seq(&[&oid(x509::oid::ECDSA_SHA384)])
}

fn serial(rng: &dyn SecureRandom) -> Result<Vec<u8>, CaError> {
    let mut bytes = [0u8; SERIAL_LEN];
    rng.fill(&mut bytes).map_err(CaError::Random)?;
    if let Some(first) = bytes.first_mut() {
        *first &= 0x7f;
    }
    if bytes.iter().all(|b| *b == 0)
        && let Some(last) = bytes.last_mut()
    {
        *last = 1;
    }
    Ok(uint(&bytes))
}

/// A validity bound `now + offset`, refused outside years 0–9999.
fn bound(now: UnixTime, offset: i64) -> Result<Vec<u8>, CaError> {
    let at = now.0.checked_add(offset).ok_or(CaError::TimeOutOfRange)?;
    let year = UnixTime(at).to_civil().0;
    if !(0..=9999).contains(&year) {
        return Err(CaError::TimeOutOfRange);
    }
    Ok(time(UnixTime(at)))
}

fn validity(now: UnixTime, lifetime: i64) -> Result<Vec<u8>, CaError> {
    Ok(seq(&[
        &bound(now, -BACKDATE_SECONDS)?,
        &bound(now, lifetime)?,
    ]))
}

/// `now + offset` as an instant (checked as [`bound`] checks it).
fn end(now: UnixTime, offset: i64) -> Result<UnixTime, CaError> {
    bound(now, offset)?;
    now.0
        .checked_add(offset)
        .map(UnixTime)
        .ok_or(CaError::TimeOutOfRange)
}

/// One Extension: `SEQUENCE { extnID, critical (only if TRUE), extnValue }`.
fn extension(arcs: &[u64], critical: bool, value: &[u8]) -> Vec<u8> {
    if critical {
        seq(&[&oid(arcs), &boolean(true), &octets(value)])
    } else {
        seq(&[&oid(arcs), &octets(value)])
    }
}

/// A keyUsage BIT STRING from the first byte of named bits (bit 0 is the
/// byte's top bit), with DER's trailing-zero rule applied.
fn key_usage(first_byte: u8) -> Vec<u8> {
    let unused = u8::try_from(first_byte.trailing_zeros().min(7)).unwrap_or(0);
    tlv(tag::BIT_STRING, &[unused, first_byte])
}

/// keyUsage digitalSignature (bit 0).
const KU_DIGITAL_SIGNATURE: u8 = 0x80;
/// keyUsage keyCertSign (bit 5).
const KU_KEY_CERT_SIGN: u8 = 0x04;
/// keyUsage cRLSign (bit 6).
const KU_CRL_SIGN: u8 = 0x02;

fn authority_key_id(id: &[u8]) -> Vec<u8> {
    seq(&[&implicit(0, id)])
}

/// The extensions every CA certificate has.
fn ca_extensions(path_len_zero: bool, subject_id: &[u8], authority_id: &[u8]) -> Vec<u8> {
    let constraints = if path_len_zero {
        seq(&[&boolean(true), &small_uint(0)])
    } else {
        seq(&[&boolean(true)])
    };
    let usage = key_usage(KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    seq(&[
        &extension(x509::oid::BASIC_CONSTRAINTS, true, &constraints),
        &extension(x509::oid::KEY_USAGE, true, &usage),
        &extension(oids::SUBJECT_KEY_ID, false, &octets(subject_id)),
        &extension(
            oids::AUTHORITY_KEY_ID,
            false,
            &authority_key_id(authority_id),
        ),
    ])
}

/// The parts of a tbsCertificate that vary.
struct Tbs<'a> {
    serial: Vec<u8>,
    issuer: &'a [u8],
    validity: Vec<u8>,
    subject: &'a [u8],
    spki: &'a [u8],
    extensions: Vec<u8>,
}

/// Builds the tbsCertificate and signs it with `key` (ECDSA P-384,
/// SHA-384, RFC 6979).
fn sign(tbs: &Tbs<'_>, key: &p384::ecdsa::SigningKey) -> Vec<u8> {
    let algorithm = ecdsa_sha384();
    let tbs = seq(&[
        &explicit(0, &small_uint(2)),
        &tbs.serial,
        &algorithm,
        tbs.issuer,
        &tbs.validity,
        tbs.subject,
        tbs.spki,
        &explicit(3, &tbs.extensions),
    ]);
    let signature: p384::ecdsa::Signature = key.sign(&tbs);
    let (r, s) = signature.split_bytes();
    let value = seq(&[&uint(&r), &uint(&s)]);
    seq(&[&tbs, &algorithm, &bits(&value)])
}

/// The workload key's subjectPublicKey bits, once the SPKI is checked to be
/// a P-256 or P-384 key with a valid point.
fn check_workload_key(spki: &[u8]) -> Result<&[u8], CaError> {
    let outer = der::single(spki, tag::SEQUENCE).map_err(|_| CaError::MalformedPublicKey)?;
    let key = PublicKey::from_spki(outer.contents).map_err(|e| match e {
        X509Error::UnsupportedAlgorithm => CaError::UnsupportedPublicKey,
        _ => CaError::MalformedPublicKey,
    })?;
    let PublicKey::Ec { curve, point } = key else {
        return Err(CaError::UnsupportedPublicKey);
    };
    let valid = match curve {
        EcCurve::P256 => p256::PublicKey::from_sec1_bytes(point).is_ok(),
        EcCurve::P384 => p384::PublicKey::from_sec1_bytes(point).is_ok(),
    };
    if !valid {
        return Err(CaError::MalformedPublicKey);
    }
    Ok(point)
}

fn general_name(san: &SubjectAltName) -> Vec<u8> {
    match san {
        SubjectAltName::Dns(name) => implicit(2, name.as_bytes()),
        SubjectAltName::Uri(uri) => implicit(6, uri.as_bytes()),
        SubjectAltName::Ip(IpAddr::V4(ip)) => implicit(7, &ip.octets()),
        SubjectAltName::Ip(IpAddr::V6(ip)) => implicit(7, &ip.octets()),
    }
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("mesh_key", &self.mesh_key)
            .field("mesh_signer", &"<redacted>")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// Makes the root, intermediate and mesh CA certificates (see the
    /// module docs) at `now`.
    pub fn new(
        root_key: &RootCaKey,
        mesh_key: MeshCaKey,
        now: UnixTime,
        rng: &dyn SecureRandom,
    ) -> Result<Ca, CaError> {
        let root_signer = root_key.signing_key()?;
        let mesh_signer = mesh_key.signing_key()?;
        let root_subject = name(Some(ORGANISATION), ROOT_COMMON_NAME);
        let mesh_subject = name(Some(ORGANISATION), MESH_COMMON_NAME);
        let root_id = key_id(root_key.public_key_sec1());
        let mesh_key_id = key_id(mesh_key.public_key_sec1());
        let root_spki = p384_spki(root_key.public_key_sec1());
        let mesh_spki = p384_spki(mesh_key.public_key_sec1());
        let validity = validity(now, CA_VALIDITY_SECONDS)?;

        let root_cert = sign(
            &Tbs {
                serial: serial(rng)?,
                issuer: &root_subject,
                validity: validity.clone(),
                subject: &root_subject,
                spki: &root_spki,
                extensions: ca_extensions(false, &root_id, &root_id),
            },
            &root_signer,
        );
        let intermediate_cert = sign(
            &Tbs {
                serial: serial(rng)?,
                issuer: &root_subject,
                validity: validity.clone(),
                subject: &mesh_subject,
                spki: &mesh_spki,
                extensions: ca_extensions(true, &mesh_key_id, &root_id),
            },
            &root_signer,
        );
        let mesh_ca_cert = sign(
            &Tbs {
                serial: serial(rng)?,
                issuer: &mesh_subject,
                validity,
                subject: &mesh_subject,
                spki: &mesh_spki,
                extensions: ca_extensions(true, &mesh_key_id, &mesh_key_id),
            },
            &mesh_signer,
        );
        Ok(Ca {
            root_public: *root_key.public_key_sec1(),
            mesh_key,
            mesh_signer,
            mesh_subject,
            mesh_key_id,
            not_after: end(now, CA_VALIDITY_SECONDS)?,
            root_cert,
            intermediate_cert,
            mesh_ca_cert,
        })
    }

    /// The root certificate (DER).
    pub fn root_cert(&self) -> &[u8] {
        &self.root_cert
    }

    /// The intermediate certificate: the mesh key, signed by the root (DER).
    pub fn intermediate_cert(&self) -> &[u8] {
        &self.intermediate_cert
    }

    /// The self-signed mesh CA certificate (DER).
    pub fn mesh_ca_cert(&self) -> &[u8] {
        &self.mesh_ca_cert
    }

    /// The mesh CA key (secret; for peer recovery).
    pub fn mesh_key(&self) -> &MeshCaKey {
        &self.mesh_key
    }

    /// The root CA's public key, uncompressed SEC1.
    pub fn root_public_key_sec1(&self) -> &[u8; P384_POINT_LEN] {
        &self.root_public
    }

    /// Issues a workload certificate (DER) for `request` at `now`, signed by
    /// the mesh key. See the module docs for its contents.
    pub fn issue(
        &self,
        request: &WorkloadCertRequest<'_>,
        now: UnixTime,
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, CaError> {
        if now > self.not_after {
            return Err(CaError::CaExpired {
                not_after: self.not_after,
            });
        }
        let point = check_workload_key(request.public_key_spki)?;
        let sans = request
            .sans
            .iter()
            .map(|s| classify_san(s))
            .collect::<Result<Vec<_>, _>>()?;
        // The subject: the first DNS name, else the first SAN of any kind,
        // else the workload secret id (the manifest's rule for a subject).
        let common_name = sans
            .iter()
            .find_map(|s| match s {
                SubjectAltName::Dns(name) => Some(name.as_str()),
                _ => None,
            })
            .or_else(|| request.sans.first().map(String::as_str))
            .or(request.workload_secret_id.filter(|id| !id.is_empty()))
            .ok_or(CaError::NoSubject)?;
        let subject = name(None, common_name);
        let general_names: Vec<Vec<u8>> = sans.iter().map(general_name).collect();
        let general_names: Vec<&[u8]> = general_names.iter().map(Vec::as_slice).collect();

        let mut extensions = alloc::vec![
            extension(x509::oid::BASIC_CONSTRAINTS, true, &seq(&[])),
            extension(x509::oid::KEY_USAGE, true, &key_usage(KU_DIGITAL_SIGNATURE)),
            extension(
                oids::EXT_KEY_USAGE,
                false,
                &seq(&[&oid(oids::SERVER_AUTH), &oid(oids::CLIENT_AUTH)]),
            ),
            extension(oids::SUBJECT_ALT_NAME, false, &seq(&general_names)),
            extension(oids::SUBJECT_KEY_ID, false, &octets(&key_id(point))),
            extension(
                oids::AUTHORITY_KEY_ID,
                false,
                &authority_key_id(&self.mesh_key_id),
            ),
        ];
        if let Some(id) = request.workload_secret_id {
            if id.is_empty() {
                return Err(CaError::EmptyWorkloadSecretId);
            }
            extensions.push(extension(
                &WORKLOAD_SECRET_ID,
                false,
                &octets(id.as_bytes()),
            ));
        }
        if let Some(claims) = request.claims {
            for claim in extensions::claim_extensions(claims)? {
                extensions.push(extension(&claim.arc, false, &claim.value));
            }
        }
        let extensions: Vec<&[u8]> = extensions.iter().map(Vec::as_slice).collect();

        // A workload certificate never outlives its CA.
        let wanted_end = end(now, WORKLOAD_VALIDITY_SECONDS)?;
        let lifetime = wanted_end.min(self.not_after).0.saturating_sub(now.0);
        let signer = &self.mesh_signer;
        Ok(sign(
            &Tbs {
                serial: serial(rng)?,
                issuer: &self.mesh_subject,
                validity: validity(now, lifetime)?,
                subject: &subject,
                spki: request.public_key_spki,
                extensions: seq(&extensions),
            },
            signer,
        ))
    }
}

/// Reads back the value of a claim or workload-secret-id extension of a
/// certificate this CA issued: `Ok(None)` if the certificate does not have
/// it. The value is the DER of an INTEGER, BOOLEAN or OCTET STRING.
pub fn extension_value<'a>(
    cert_der: &'a [u8],
    arcs: &[u64],
) -> Result<Option<der::Tlv<'a>>, X509Error> {
    let cert = x509::Certificate::from_der(cert_der)?;
    let Some(ext) = cert.extension(arcs)? else {
        return Ok(None);
    };
    let mut reader = DerReader::new(ext.value);
    let value = reader.read()?;
    reader.finish()?;
    Ok(Some(value))
}

#[cfg(test)]
mod tests;
