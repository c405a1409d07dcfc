//! The simulated chip's certificate chain: an RSA-4096 ARK (self-signed)
//! and ASK, and a P-384 VCEK carrying AMD's VCEK extensions, all signed
//! with RSASSA-PSS SHA-384 / MGF1-SHA-384 / salt 48 like AMD's.
//!
//! The ARK and ASK names say INSECURE SIMULATION (organisation `accord
//! INSECURE SIMULATION`, common names `ARK-<product>-INSECURE-SIMULATION`
//! and `SEV-<product>-INSECURE-SIMULATION`). The VCEK keeps the common name
//! `SEV-VCEK` and a genuine `productName` (`Genoa`, `Turin`), because the
//! verifier requires both; what makes it insecure is that its chain ends in
//! a root nobody trusts unless told to.
//!
//! [`issue_crl`] signs a CRL with the ARK in the shape of AMD's KDS CRLs: a
//! complete, direct v2 CRL, RSASSA-PSS SHA-384 (the parameters without
//! trailerField, as AMD's), with the extensions authorityKeyIdentifier and
//! cRLNumber, both non-critical, and entries without extensions.

use accord_core::evidence::snp::{Product, TcbVersion};
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rsa::traits::PublicKeyParts;

use accord_core::der::write::{
    bits, explicit, ia5, implicit, null, octets, oid, seq, small_uint, time, tlv, true_, uint,
    utc_time,
};
use accord_core::time::UnixTime;
use sha2::Digest as _;

/// Key size of the simulated ARK and ASK (AMD's are RSA-4096).
pub const RSA_BITS: usize = 4096;

/// Organisation of every simulated certificate.
pub use accord_core::internal::SIMULATION_ORGANISATION as ORGANISATION;
use accord_core::internal::simulation_name as name;

/// Validity of every simulated certificate (UTCTime digits).
const NOT_BEFORE: &str = "240101000000";
const NOT_AFTER: &str = "491231235959";

const AMD_ARC: [u64; 8] = [1, 3, 6, 1, 4, 1, 3704, 1];

/// The simulated ARK's common name for `product`.
pub fn ark_common_name(product: Product) -> String {
    format!("ARK-{product}-INSECURE-SIMULATION")
}

/// The simulated ASK's common name for `product`.
pub fn ask_common_name(product: Product) -> String {
    format!("SEV-{product}-INSECURE-SIMULATION")
}

fn sha384_alg() -> Vec<u8> {
    seq(&[&oid(&[2, 16, 840, 1, 101, 3, 4, 2, 2]), &null()])
}

/// AlgorithmIdentifier of RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48.
fn pss_alg() -> Vec<u8> {
    let params = seq(&[
        &explicit(0, &sha384_alg()),
        &explicit(
            1,
            &seq(&[&oid(&[1, 2, 840, 113549, 1, 1, 8]), &sha384_alg()]),
        ),
        &explicit(2, &small_uint(48)),
    ]);
    seq(&[&oid(&[1, 2, 840, 113549, 1, 1, 10]), &params])
}

/// SubjectPublicKeyInfo of an RSA key.
pub fn rsa_spki(key: &rsa::PrivateKey) -> Vec<u8> {
    let public = seq(&[&uint(&key.n().to_be_bytes()), &uint(&key.e().to_be_bytes())]);
    seq(&[
        &seq(&[&oid(&[1, 2, 840, 113549, 1, 1, 1]), &null()]),
        &bits(&public),
    ])
}

/// SubjectPublicKeyInfo of a P-384 key (uncompressed point).
pub fn ec_spki(key: &p384::ecdsa::SigningKey) -> Vec<u8> {
    let point = key.verifying_key().to_sec1_bytes();
    seq(&[
        &seq(&[&oid(&[1, 2, 840, 10045, 2, 1]), &oid(&[1, 3, 132, 0, 34])]),
        &bits(&point),
    ])
}

fn extension(arcs: &[u64], value: &[u8]) -> Vec<u8> {
    seq(&[&oid(arcs), &octets(value)])
}

/// Critical basicConstraints cA = TRUE.
fn ca_extension() -> Vec<u8> {
    seq(&[&oid(&[2, 5, 29, 19]), &true_(), &octets(&seq(&[&true_()]))])
}

fn amd_extension(tail: &[u64], value: &[u8]) -> Vec<u8> {
    extension(&[&AMD_ARC[..], tail].concat(), value)
}

/// Signs `tbs` with RSASSA-PSS SHA-384 (salt 48) and wraps it into a
/// Certificate (or a CertificateList: the outer shape is the same).
fn sign(tbs: Vec<u8>, key: &rsa::PrivateKey) -> Result<Vec<u8>, String> {
    let signer = rsa::pss::SigningKey::<sha2::Sha384>::new(key.clone());
    let signature = signer
        .try_sign_with_rng(&mut getrandom::SysRng, &tbs)
        .map_err(|err| format!("RSASSA-PSS signing failed: {err}"))?;
    Ok(seq(&[&tbs, &pss_alg(), &bits(&signature.to_vec())]))
}

fn tbs(serial: &[u8], issuer: &str, subject: &str, spki: &[u8], extensions: &[Vec<u8>]) -> Vec<u8> {
    let extensions = extensions.concat();
    seq(&[
        &explicit(0, &small_uint(2)),
        &uint(serial),
        &pss_alg(),
        &name(issuer),
        &seq(&[&utc_time(NOT_BEFORE), &utc_time(NOT_AFTER)]),
        &name(subject),
        spki,
        &explicit(3, &tlv(0x30, &extensions)),
    ])
}

/// The self-signed ARK.
pub fn issue_ark(
    product: Product,
    serial: &[u8],
    ark_key: &rsa::PrivateKey,
) -> Result<Vec<u8>, String> {
    let cn = ark_common_name(product);
    sign(
        tbs(serial, &cn, &cn, &rsa_spki(ark_key), &[ca_extension()]),
        ark_key,
    )
}

/// The ASK, signed by the ARK.
pub fn issue_ask(
    product: Product,
    serial: &[u8],
    ark_key: &rsa::PrivateKey,
    ask_key: &rsa::PrivateKey,
) -> Result<Vec<u8>, String> {
    sign(
        tbs(
            serial,
            &ark_common_name(product),
            &ask_common_name(product),
            &rsa_spki(ask_key),
            &[ca_extension()],
        ),
        ark_key,
    )
}

/// The VCEK for `tcb` and `hw_id` (64 bytes; Turin 8), signed by the ASK.
pub fn issue_vcek(
    product: Product,
    serial: &[u8],
    tcb: TcbVersion,
    hw_id: &[u8],
    ask_key: &rsa::PrivateKey,
    vcek_key: &p384::ecdsa::SigningKey,
) -> Result<Vec<u8>, String> {
    let mut extensions = vec![
        amd_extension(&[2], &ia5(product.name())),
        amd_extension(&[3, 1], &small_uint(tcb.bootloader.into())),
        amd_extension(&[3, 2], &small_uint(tcb.tee.into())),
        amd_extension(&[3, 3], &small_uint(tcb.snp.into())),
        amd_extension(&[3, 8], &small_uint(tcb.microcode.into())),
    ];
    if product.has_fmc() {
        extensions.push(amd_extension(
            &[3, 9],
            &small_uint(tcb.fmc.unwrap_or(0).into()),
        ));
    }
    extensions.push(amd_extension(&[4], hw_id));
    sign(
        tbs(
            serial,
            &ask_common_name(product),
            "SEV-VCEK",
            &ec_spki(vcek_key),
            &extensions,
        ),
        ask_key,
    )
}

/// What a simulated ARK-signed CRL says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlSpec {
    /// cRLNumber.
    pub number: u64,
    /// thisUpdate.
    pub this_update: UnixTime,
    /// nextUpdate.
    pub next_update: UnixTime,
    /// The revoked certificates' serial numbers (big-endian magnitudes,
    /// as `Certificate::serial` returns them), each with its revocation
    /// date.
    pub revoked: Vec<(Vec<u8>, UnixTime)>,
}

/// The key identifier of an RSA key: the leftmost 160 bits of the SHA-256
/// of its subjectPublicKey (RFC 7093 section 2, method 1).
pub fn rsa_key_id(key: &rsa::PrivateKey) -> [u8; 20] {
    let public = seq(&[&uint(&key.n().to_be_bytes()), &uint(&key.e().to_be_bytes())]);
    let digest = sha2::Sha256::digest(&public);
    let mut id = [0u8; 20];
    for (slot, byte) in id.iter_mut().zip(digest.iter()) {
        *slot = *byte;
    }
    id
}

/// A CRL for `product` signed by the ARK (`ark_key`), as AMD's KDS serves
/// at `/vcek/v1/<product>/crl`.
pub fn issue_crl(
    product: Product,
    ark_key: &rsa::PrivateKey,
    spec: &CrlSpec,
) -> Result<Vec<u8>, String> {
    let entries: Vec<Vec<u8>> = spec
        .revoked
        .iter()
        .map(|(serial, date)| seq(&[&uint(serial), &time(*date)]))
        .collect();
    let entry_refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
    let authority_key_id = extension(&[2, 5, 29, 35], &seq(&[&implicit(0, &rsa_key_id(ark_key))]));
    let crl_number = extension(&[2, 5, 29, 20], &small_uint(spec.number));
    let mut parts: Vec<Vec<u8>> = vec![
        small_uint(1),
        pss_alg(),
        name(&ark_common_name(product)),
        time(spec.this_update),
        time(spec.next_update),
    ];
    if !entries.is_empty() {
        parts.push(seq(&entry_refs));
    }
    parts.push(explicit(0, &seq(&[&authority_key_id, &crl_number])));
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    sign(seq(&refs), ark_key)
}
