//! Full DCAP verification of a TDX quote at an instant, in two stages:
//!
//! 1. [`VerifiedCollateral::verify`] checks the collateral once: Root CA CRL
//!    and PCK CRL (signatures, windows), the PCK CRL issuer and the TCB
//!    signing certificates (chain to the pinned root, validity, not revoked),
//!    the TCB info and QE identity signatures and windows. It keeps the
//!    parsed documents and the intersection of all windows.
//! 2. [`verify_with_collateral`] checks one quote against that: the PCK
//!    chain in the quote (decoded into stack buffers), the QE report and
//!    attestation-key signatures, the QE report binding, the PCK extension
//!    against the TCB info, the QE and TDX module identities, and the TCB
//!    levels. This stage performs **no heap allocation**.
//!
//! The PCK CA in the quote must be the issuer of the collateral's PCK CRL
//! (same certificate, or same subject and key); otherwise the CRL would not
//! cover the PCK certificate and the quote is rejected.
//!
//! The root is the pinned Intel SGX Root CA, unless the caller names
//! another with [`VerifiedCollateral::verify_with_root`] (the INSECURE
//! simulated TDX, whose reference entries carry an `InsecureTrustedRoot`).
//! The collateral then remembers that root, and the quote's PCK chain must
//! end in exactly it: a quote under one root never verifies under another.

use alloc::vec::Vec;

use crate::crypto::{CryptoProvider, EcCurve};
use crate::time::UnixTime;
use crate::x509::{Certificate, Crl, PublicKey, X509Error, pem};

use super::collateral::{Collateral, QeIdentity, TcbInfo};
use super::error::{
    CertRole, CollateralError, CrlRole, Dated, IdentityField, SignatureRole, TdxError,
};
use super::pck::PckExtension;
use super::quote::Quote;
use super::reference::TrustedRoot;
use super::roots::INTEL_SGX_ROOT_CA_DER;
use super::tcb::masked_eq;
use super::tcb::{self, PlatformTcb, TcbEvaluation, TcbStatus};

/// Size of each stack buffer a PEM certificate of the quote is decoded into.
/// Intel's PCK certificates are about 1.2 KiB.
pub const MAX_PCK_CERT_LEN: usize = 4096;

/// Which TCB statuses a verifier accepts. `Revoked` is never accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcbStatusSet(u8);

impl TcbStatusSet {
    /// Only `UpToDate` (the default).
    pub const UP_TO_DATE: Self = Self(1);

    const fn bit(status: TcbStatus) -> u8 {
        match status {
            TcbStatus::UpToDate => 1,
            TcbStatus::SWHardeningNeeded => 2,
            TcbStatus::ConfigurationNeeded => 4,
            TcbStatus::ConfigurationAndSWHardeningNeeded => 8,
            TcbStatus::OutOfDate => 16,
            TcbStatus::OutOfDateConfigurationNeeded => 32,
            TcbStatus::Revoked => 0,
        }
    }

    /// The set of the given statuses (`Revoked` is ignored).
    pub fn of(statuses: &[TcbStatus]) -> Self {
        Self(statuses.iter().fold(0, |acc, s| acc | Self::bit(*s)))
    }

    /// Whether `status` is in the set.
    pub const fn contains(self, status: TcbStatus) -> bool {
        self.0 & Self::bit(status) != 0
    }
}

impl Default for TcbStatusSet {
    fn default() -> Self {
        Self::UP_TO_DATE
    }
}

/// The verifier's policy beyond authenticity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdxPolicy {
    /// Accepted final TCB statuses (default: `UpToDate` only).
    pub accepted_tcb_statuses: TcbStatusSet,
    /// Whether TDs with TDATTRIBUTES.DEBUG are accepted (default: no).
    pub allow_debug: bool,
    /// Whether a TD report 1.5 with a non-zero MRSERVICETD (a TD bound to
    /// service TDs, e.g. a migration TD) is accepted (default: no, as in
    /// dcap-qvl).
    pub allow_service_td: bool,
}

impl Default for TdxPolicy {
    fn default() -> Self {
        Self {
            accepted_tcb_statuses: TcbStatusSet::UP_TO_DATE,
            allow_debug: false,
            allow_service_td: false,
        }
    }
}

impl TdxPolicy {
    /// Accept any status but `Revoked` and debug TDs: authenticity and TCB
    /// evaluation only. For tests and inspection tools.
    pub const fn authenticity_only() -> Self {
        Self {
            accepted_tcb_statuses: TcbStatusSet(0x3f),
            allow_debug: true,
            allow_service_td: true,
        }
    }

    /// Applies the policy to a verified quote.
    pub fn check(&self, verified: &VerifiedQuote<'_, '_>) -> Result<(), TdxError> {
        let status = verified.tcb.status;
        if status == TcbStatus::Revoked || !self.accepted_tcb_statuses.contains(status) {
            return Err(TdxError::TcbStatus(status));
        }
        if verified.quote.body.debug() && !self.allow_debug {
            return Err(TdxError::DebugTd);
        }
        if verified.quote.body.has_service_td() && !self.allow_service_td {
            return Err(TdxError::ServiceTd);
        }
        Ok(())
    }
}

/// Collateral whose signatures, chains, revocation lists and windows were
/// checked at an instant, ready to verify many quotes quickly.
#[derive(Clone, Debug)]
pub struct VerifiedCollateral {
    tcb_info: TcbInfo,
    qe_identity: QeIdentity,
    /// Serials revoked by the PCK CRL, sorted for binary search.
    pck_revoked: Vec<Vec<u8>>,
    /// Serials revoked by the Root CA CRL, sorted.
    root_revoked: Vec<Vec<u8>>,
    /// The PCK CRL issuer: DER, subject name and SubjectPublicKeyInfo.
    pck_crl_issuer: Vec<u8>,
    pck_crl_issuer_subject: Vec<u8>,
    pck_crl_issuer_spki: Vec<u8>,
    /// The PCK CRL issuer's P-256 key, `04 ‖ X ‖ Y`.
    pck_crl_issuer_point: Vec<u8>,
    /// The root everything was checked against (DER): the pinned Intel
    /// SGX Root CA, or an explicitly trusted INSECURE simulated root.
    root: Vec<u8>,
    /// Base64 (no line breaks) of the PCK CRL issuer and of the root: a
    /// quote whose PEM bodies spell exactly these needs no decoding.
    pck_crl_issuer_b64: Vec<u8>,
    root_b64: Vec<u8>,
    not_before: UnixTime,
    not_after: UnixTime,
    /// Platforms whose PCK chains were verified against this collateral
    /// ([`VerifiedCollateral::remember_platform`]).
    known_platforms: Vec<KnownPlatform>,
}

fn base64(der: &[u8]) -> Vec<u8> {
    use base64ct::{Base64, Encoding};
    let mut out = alloc::vec![0u8; Base64::encoded_len(der)];
    let len = Base64::encode(der, &mut out).map_or(0, |e| e.len());
    out.truncate(len);
    out
}

/// The next `CERTIFICATE` PEM block of `text` (only whitespace may precede
/// it): its base64 body and the number of bytes up to the end of the block.
fn pem_block(text: &str) -> Option<(&str, usize)> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let begin = text.find(BEGIN)?;
    if !text.get(..begin)?.trim().is_empty() {
        return None;
    }
    let start = begin + BEGIN.len();
    let end = text.get(start..)?.find(END)? + start;
    Some((text.get(start..end)?, end + END.len()))
}

/// Whether the PEM body, without whitespace, is exactly `b64`.
fn body_is(body: &str, b64: &[u8]) -> bool {
    let mut chars = body.bytes().filter(|c| !c.is_ascii_whitespace());
    let mut expected = b64.iter();
    loop {
        match (chars.next(), expected.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == *b => {}
            _ => return false,
        }
    }
}

fn sorted_serials(crl: &Crl<'_>) -> Vec<Vec<u8>> {
    let mut serials: Vec<Vec<u8>> = crl.revoked_serials().map(<[u8]>::to_vec).collect();
    serials.sort_unstable();
    serials
}

fn revoked(list: &[Vec<u8>], serial: &[u8]) -> bool {
    list.binary_search_by(|s| s.as_slice().cmp(serial)).is_ok()
}

/// Tracks the intersection of validity windows, checking `at` against each.
struct Window {
    at: UnixTime,
    not_before: UnixTime,
    not_after: UnixTime,
}

impl Window {
    fn add(
        &mut self,
        item: Dated,
        not_before: UnixTime,
        not_after: UnixTime,
    ) -> Result<(), TdxError> {
        if !self.at.within(not_before, not_after) {
            return Err(TdxError::OutsideValidity {
                item,
                not_before,
                not_after,
                at: self.at,
            });
        }
        self.not_before = self.not_before.max(not_before);
        self.not_after = self.not_after.min(not_after);
        Ok(())
    }
}

fn cert_err(role: CertRole) -> impl Fn(X509Error) -> TdxError {
    move |error| TdxError::Certificate { role, error }
}

fn crl_err(role: CrlRole) -> impl Fn(X509Error) -> TdxError {
    move |error| TdxError::Crl { role, error }
}

fn p256_point<'a>(cert: &Certificate<'a>, role: CertRole) -> Result<&'a [u8], TdxError> {
    match cert.public_key() {
        PublicKey::Ec {
            curve: EcCurve::P256,
            point,
        } => Ok(point),
        _ => Err(TdxError::KeyType(role)),
    }
}

/// Parses a collateral chain `[cert, root]`, checks that the root is the
/// trusted one (`root_der`) and that `cert` was issued by it, is valid and
/// not revoked.
#[allow(clippy::too_many_arguments)]
fn check_signer<'a>(
    ders: &'a [Vec<u8>],
    role: CertRole,
    chain: &'static str,
    root_der: &[u8],
    root: &Certificate<'_>,
    root_crl: &Crl<'_>,
    window: &mut Window,
    provider: &dyn CryptoProvider,
) -> Result<Certificate<'a>, TdxError> {
    let [leaf, chain_root] = ders else {
        return Err(CollateralError::Chain { chain }.into());
    };
    if chain_root.as_slice() != root_der {
        return Err(TdxError::UntrustedRoot);
    }
    let cert = Certificate::from_der(leaf).map_err(cert_err(role))?;
    check_subject(&cert, role)?;
    cert.verify_issued_by(root, provider)
        .map_err(cert_err(role))?;
    window.add(
        Dated::Certificate(role),
        cert.not_before(),
        cert.not_after(),
    )?;
    if root_crl.is_revoked(cert.serial()) {
        return Err(TdxError::Revoked(role));
    }
    Ok(cert)
}

/// Checks that a certificate's subject CN fits its role, as Intel's QVL does.
fn check_subject(cert: &Certificate<'_>, role: CertRole) -> Result<(), TdxError> {
    let allowed: &[&str] = match role {
        CertRole::Root => &["Intel SGX Root CA"],
        CertRole::PckLeaf => &["Intel SGX PCK Certificate"],
        CertRole::PckCa | CertRole::PckCrlIssuer => {
            &["Intel SGX PCK Platform CA", "Intel SGX PCK Processor CA"]
        }
        CertRole::TcbInfoSigner | CertRole::QeIdentitySigner => &["Intel SGX TCB Signing"],
    };
    match cert.subject_common_name() {
        Some(cn) if allowed.contains(&cn) => Ok(()),
        _ => Err(TdxError::UnexpectedSubject(role)),
    }
}

fn pem_chain(text: &str, chain: &'static str) -> Result<Vec<Vec<u8>>, TdxError> {
    pem::decode_all(text, "CERTIFICATE").map_err(|_| CollateralError::Chain { chain }.into())
}

fn crl_window(crl: &Crl<'_>, role: CrlRole, window: &mut Window) -> Result<(), TdxError> {
    let next = crl.next_update().ok_or(TdxError::Crl {
        role,
        error: X509Error::MissingNextUpdate,
    })?;
    window.add(Dated::Crl(role), crl.this_update(), next)
}

/// The Root CA CRL, checked to be signed by `root`.
fn root_ca_crl<'a>(
    der: &'a [u8],
    root: &Certificate<'_>,
    provider: &dyn CryptoProvider,
) -> Result<Crl<'a>, TdxError> {
    let crl = Crl::from_der(der).map_err(crl_err(CrlRole::RootCa))?;
    crl.verify_issued_by(root, provider)
        .map_err(crl_err(CrlRole::RootCa))?;
    Ok(crl)
}

/// The PCK CRL, checked to be signed by `pck_ca`, which must be a CA (the
/// per-quote fast path relies on it).
fn pck_crl<'a>(
    der: &'a [u8],
    pck_ca: &Certificate<'_>,
    provider: &dyn CryptoProvider,
) -> Result<Crl<'a>, TdxError> {
    if pck_ca
        .basic_constraints_ca()
        .map_err(cert_err(CertRole::PckCrlIssuer))?
        != Some(true)
    {
        return Err(TdxError::Certificate {
            role: CertRole::PckCrlIssuer,
            error: X509Error::IssuerNotCa,
        });
    }
    let crl = Crl::from_der(der).map_err(crl_err(CrlRole::Pck))?;
    crl.verify_issued_by(pck_ca, provider)
        .map_err(crl_err(CrlRole::Pck))?;
    Ok(crl)
}

/// Checks that a CRL as Intel's PCS serves it is signed by the issuer
/// [`VerifiedCollateral::verify_with_root`] trusts for it under `root`
/// (Intel's pinned SGX Root CA when `None`), without its window: the Root
/// CA CRL by the root; the PCK CRL by the PCK CA of `issuer_chain` (the
/// `SGX-PCK-CRL-Issuer-Chain` PEM, PCK CA then root), which must be issued
/// by the root. Used to keep a CRL that does not verify out of a cache.
pub fn check_crl_issuer(
    role: CrlRole,
    der: &[u8],
    issuer_chain: Option<&str>,
    root: Option<&TrustedRoot>,
    provider: &dyn CryptoProvider,
) -> Result<(), TdxError> {
    let root_der = root.map_or(INTEL_SGX_ROOT_CA_DER, |root| root.root_ca.as_slice());
    let root_cert = Certificate::from_der(root_der).map_err(cert_err(CertRole::Root))?;
    match role {
        CrlRole::RootCa => root_ca_crl(der, &root_cert, provider).map(|_| ()),
        CrlRole::Pck => {
            const CHAIN: &str = "pck_crl_issuer_chain";
            let chain = pem_chain(issuer_chain.unwrap_or(""), CHAIN)?;
            let [pck_ca, chain_root] = chain.as_slice() else {
                return Err(CollateralError::Chain { chain: CHAIN }.into());
            };
            if chain_root.as_slice() != root_der {
                return Err(TdxError::UntrustedRoot);
            }
            let pck_ca = Certificate::from_der(pck_ca).map_err(cert_err(CertRole::PckCrlIssuer))?;
            check_subject(&pck_ca, CertRole::PckCrlIssuer)?;
            pck_ca
                .verify_issued_by(&root_cert, provider)
                .map_err(cert_err(CertRole::PckCrlIssuer))?;
            pck_crl(der, &pck_ca, provider).map(|_| ())
        }
    }
}

impl VerifiedCollateral {
    /// Verifies `collateral` at `at` against the pinned Intel SGX Root CA.
    pub fn verify(
        collateral: &Collateral,
        at: UnixTime,
        provider: &dyn CryptoProvider,
    ) -> Result<Self, TdxError> {
        Self::verify_under(collateral, INTEL_SGX_ROOT_CA_DER, at, provider)
    }

    /// Verifies `collateral` at `at` against `root`: the pinned Intel SGX
    /// Root CA when `None`, otherwise the named INSECURE root instead (a
    /// reference entry's `InsecureTrustedRoot`, for the simulated TDX).
    /// Quotes checked against the result must chain to the same root.
    pub fn verify_with_root(
        collateral: &Collateral,
        root: Option<&TrustedRoot>,
        at: UnixTime,
        provider: &dyn CryptoProvider,
    ) -> Result<Self, TdxError> {
        match root {
            None => Self::verify(collateral, at, provider),
            Some(root) => Self::verify_under(collateral, &root.root_ca, at, provider),
        }
    }

    fn verify_under(
        collateral: &Collateral,
        root_der: &[u8],
        at: UnixTime,
        provider: &dyn CryptoProvider,
    ) -> Result<Self, TdxError> {
        let mut window = Window {
            at,
            not_before: UnixTime(i64::MIN),
            not_after: UnixTime(i64::MAX),
        };
        let root = Certificate::from_der(root_der).map_err(cert_err(CertRole::Root))?;
        window.add(
            Dated::Certificate(CertRole::Root),
            root.not_before(),
            root.not_after(),
        )?;

        let root_crl = root_ca_crl(&collateral.root_ca_crl, &root, provider)?;
        crl_window(&root_crl, CrlRole::RootCa, &mut window)?;

        let pck_chain = pem_chain(&collateral.pck_crl_issuer_chain, "pck_crl_issuer_chain")?;
        let pck_ca = check_signer(
            &pck_chain,
            CertRole::PckCrlIssuer,
            "pck_crl_issuer_chain",
            root_der,
            &root,
            &root_crl,
            &mut window,
            provider,
        )?;
        let pck_crl = pck_crl(&collateral.pck_crl, &pck_ca, provider)?;
        crl_window(&pck_crl, CrlRole::Pck, &mut window)?;

        let tcb_chain = pem_chain(&collateral.tcb_info_issuer_chain, "tcb_info_issuer_chain")?;
        let tcb_signer = check_signer(
            &tcb_chain,
            CertRole::TcbInfoSigner,
            "tcb_info_issuer_chain",
            root_der,
            &root,
            &root_crl,
            &mut window,
            provider,
        )?;
        verify_signed_json(
            &tcb_signer,
            CertRole::TcbInfoSigner,
            &collateral.tcb_info,
            &collateral.tcb_info_signature,
            SignatureRole::TcbInfo,
            provider,
        )?;
        let tcb_info = TcbInfo::parse(&collateral.tcb_info)?;
        window.add(Dated::TcbInfo, tcb_info.issue_date, tcb_info.next_update)?;

        let qe_chain = pem_chain(
            &collateral.qe_identity_issuer_chain,
            "qe_identity_issuer_chain",
        )?;
        let qe_signer = check_signer(
            &qe_chain,
            CertRole::QeIdentitySigner,
            "qe_identity_issuer_chain",
            root_der,
            &root,
            &root_crl,
            &mut window,
            provider,
        )?;
        verify_signed_json(
            &qe_signer,
            CertRole::QeIdentitySigner,
            &collateral.qe_identity,
            &collateral.qe_identity_signature,
            SignatureRole::QeIdentity,
            provider,
        )?;
        let qe_identity = QeIdentity::parse(&collateral.qe_identity)?;
        window.add(
            Dated::QeIdentity,
            qe_identity.issue_date,
            qe_identity.next_update,
        )?;

        Ok(Self {
            tcb_info,
            qe_identity,
            pck_revoked: sorted_serials(&pck_crl),
            root_revoked: sorted_serials(&root_crl),
            pck_crl_issuer: pck_ca.der().to_vec(),
            pck_crl_issuer_subject: pck_ca.subject_raw().to_vec(),
            pck_crl_issuer_spki: pck_ca.spki_der().to_vec(),
            pck_crl_issuer_point: p256_point(&pck_ca, CertRole::PckCrlIssuer)?.to_vec(),
            pck_crl_issuer_b64: base64(pck_ca.der()),
            root: root_der.to_vec(),
            root_b64: base64(root_der),
            not_before: window.not_before,
            not_after: window.not_after,
            known_platforms: Vec::new(),
        })
    }

    /// Verifies the PCK certificate chain that `quote_bytes` carries, at
    /// `at`, against this collateral, and remembers the platform: later
    /// quotes carrying the byte-identical chain skip the chain check (one
    /// PEM decode, one certificate parse and one P-256 verification per
    /// quote), but still have the chain's validity checked at their instant.
    ///
    /// Sound because the chain's signatures and its revocation status under
    /// this collateral's CRLs do not change; only time does. In Intel's
    /// terms the PCK certificate chain is platform collateral, fetched once
    /// per platform.
    pub fn remember_platform(
        &mut self,
        quote_bytes: &[u8],
        at: UnixTime,
        provider: &dyn CryptoProvider,
    ) -> Result<(), TdxError> {
        let quote = Quote::parse(quote_bytes)?;
        let platform = verify_pck_chain(self, &quote, at, provider)?;
        let text =
            core::str::from_utf8(quote.pck_chain_pem).map_err(|_| TdxError::Certificate {
                role: CertRole::PckLeaf,
                error: X509Error::Pem,
            })?;
        let chain = pem::decode_all(text, "CERTIFICATE").map_err(cert_err(CertRole::PckLeaf))?;
        let mut not_before = UnixTime(i64::MIN);
        let mut not_after = UnixTime(i64::MAX);
        for der in &chain {
            let cert = Certificate::from_der(der).map_err(cert_err(CertRole::PckLeaf))?;
            not_before = not_before.max(cert.not_before());
            not_after = not_after.min(cert.not_after());
        }
        let chain_digest = provider.sha256(&[quote.pck_chain_pem]);
        if self.known_platform(quote.pck_chain_pem, provider).is_none() {
            self.known_platforms.push(KnownPlatform {
                chain_digest,
                platform,
                not_before,
                not_after,
            });
        }
        Ok(())
    }

    /// Whether the PCK chain `quote_bytes` carries is remembered
    /// ([`Self::remember_platform`]); `false` for bytes that do not parse.
    pub fn knows_platform(&self, quote_bytes: &[u8], provider: &dyn CryptoProvider) -> bool {
        Quote::parse(quote_bytes)
            .is_ok_and(|quote| self.known_platform(quote.pck_chain_pem, provider).is_some())
    }

    /// How many platforms are remembered.
    pub fn platforms_known(&self) -> usize {
        self.known_platforms.len()
    }

    /// The remembered platform whose chain is exactly `pck_chain_pem`.
    fn known_platform(
        &self,
        pck_chain_pem: &[u8],
        provider: &dyn CryptoProvider,
    ) -> Option<&KnownPlatform> {
        if self.known_platforms.is_empty() {
            return None;
        }
        let digest = provider.sha256(&[pck_chain_pem]);
        self.known_platforms
            .iter()
            .find(|known| known.chain_digest == digest)
    }

    /// The verified TCB info.
    pub fn tcb_info(&self) -> &TcbInfo {
        &self.tcb_info
    }

    /// The verified QE identity.
    pub fn qe_identity(&self) -> &QeIdentity {
        &self.qe_identity
    }

    /// The root the collateral was verified against (DER): the pinned
    /// Intel SGX Root CA unless an INSECURE root was named.
    pub fn root(&self) -> &[u8] {
        &self.root
    }

    /// The window in which every part of the collateral is valid.
    pub fn validity(&self) -> (UnixTime, UnixTime) {
        (self.not_before, self.not_after)
    }
}

/// A quote that passed DCAP verification, borrowing the quote bytes (`'q`)
/// and the verified collateral (`'c`).
#[derive(Clone, Copy, Debug)]
pub struct VerifiedQuote<'q, 'c> {
    /// The parsed quote.
    pub quote: Quote<'q>,
    /// The PCK certificate's SGX extension.
    pub pck: PckExtension,
    /// Serial number of the PCK certificate (big-endian, up to 20 bytes).
    pub pck_serial: PckSerial,
    /// The TCB evaluation.
    pub tcb: TcbEvaluation<'c>,
    /// The collateral it was verified against.
    pub collateral: &'c VerifiedCollateral,
}

/// A certificate serial number, stored inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PckSerial {
    bytes: [u8; 20],
    len: usize,
}

impl PckSerial {
    /// The big-endian serial number.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

/// Decodes the next `CERTIFICATE` block of `text` into `buf` and parses it.
/// The base64 body is compacted into a stack buffer and decoded in one call
/// (strict, canonical base64 as `x509::pem` accepts).
fn decode_cert<'b>(
    text: &mut &str,
    buf: &'b mut [u8; MAX_PCK_CERT_LEN],
    role: CertRole,
) -> Result<Certificate<'b>, TdxError> {
    use base64ct::{Base64, Encoding};
    let pem_err = TdxError::Certificate {
        role,
        error: X509Error::Pem,
    };
    let (body, consumed) = pem_block(text).ok_or(pem_err.clone())?;
    let mut compact = [0u8; MAX_PCK_CERT_LEN * 4 / 3 + 4];
    let mut len = 0usize;
    for c in body.bytes().filter(|c| !c.is_ascii_whitespace()) {
        *compact.get_mut(len).ok_or(TdxError::Certificate {
            role,
            error: X509Error::BufferTooSmall,
        })? = c;
        len += 1;
    }
    let b64 = compact.get(..len).ok_or(pem_err.clone())?;
    let der = Base64::decode(b64, buf).map_err(|_| pem_err)?;
    *text = text.get(consumed..).unwrap_or("");
    Certificate::from_der(der).map_err(cert_err(role))
}

/// The general path for the PCK CA and root of a quote: decode them, check
/// that the root is the collateral's and the CA is (a re-issue of) the PCK CRL
/// issuer, valid and not revoked, and that it issued the leaf.
fn verify_ca_slow(
    collateral: &VerifiedCollateral,
    text: &str,
    leaf: &Certificate<'_>,
    at: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<(), TdxError> {
    let mut text = text;
    let mut ca_buf = [0u8; MAX_PCK_CERT_LEN];
    let mut root_buf = [0u8; MAX_PCK_CERT_LEN];
    let ca = decode_cert(&mut text, &mut ca_buf, CertRole::PckCa)?;
    let (root, consumed) =
        pem::decode_first(text, "CERTIFICATE", &mut root_buf).map_err(cert_err(CertRole::Root))?;
    if !text.get(consumed..).unwrap_or("").trim().is_empty() {
        return Err(TdxError::Certificate {
            role: CertRole::Root,
            error: X509Error::Pem,
        });
    }
    if root != collateral.root.as_slice() {
        return Err(TdxError::UntrustedRoot);
    }
    if ca.der() != collateral.pck_crl_issuer.as_slice() {
        // A re-issued CA certificate with the same name and key is still
        // covered by the CRL; anything else is not. It must chain to the root.
        if ca.subject_raw() != collateral.pck_crl_issuer_subject.as_slice()
            || ca.spki_der() != collateral.pck_crl_issuer_spki.as_slice()
        {
            return Err(TdxError::PckCrlIssuerMismatch);
        }
        let root = Certificate::from_der(root).map_err(cert_err(CertRole::Root))?;
        ca.verify_issued_by(&root, provider)
            .map_err(cert_err(CertRole::PckCa))?;
    }
    if !at.within(ca.not_before(), ca.not_after()) {
        return Err(TdxError::OutsideValidity {
            item: Dated::Certificate(CertRole::PckCa),
            not_before: ca.not_before(),
            not_after: ca.not_after(),
            at,
        });
    }
    if revoked(&collateral.root_revoked, ca.serial()) {
        return Err(TdxError::Revoked(CertRole::PckCa));
    }
    leaf.verify_issued_by(&ca, provider)
        .map_err(cert_err(CertRole::PckLeaf))
}

/// Verifies the signature of a signed collateral document (the exact JSON
/// text) by its signer's P-256 key.
fn verify_signed_json(
    signer: &Certificate<'_>,
    signer_role: CertRole,
    text: &str,
    signature: &[u8],
    document: SignatureRole,
    provider: &dyn CryptoProvider,
) -> Result<(), TdxError> {
    provider
        .verify_ecdsa(
            EcCurve::P256,
            p256_point(signer, signer_role)?,
            text.as_bytes(),
            signature,
        )
        .map_err(|_| TdxError::Signature(document))
}

/// What a verified PCK chain tells about the platform.
#[derive(Clone, Copy, Debug)]
struct Platform {
    /// The PCK leaf's P-256 key, `04 ‖ X ‖ Y`.
    leaf_point: [u8; 65],
    /// The PCK leaf's SGX extension.
    pck: PckExtension,
    /// The PCK leaf's serial number.
    serial: PckSerial,
}

/// A platform whose PCK chain was verified against this collateral, keyed by
/// the digest of the exact PEM bytes the quotes carry.
#[derive(Clone, Debug)]
struct KnownPlatform {
    chain_digest: [u8; 32],
    platform: Platform,
    /// Intersection of the leaf's and the PCK CA's validity.
    not_before: UnixTime,
    not_after: UnixTime,
}

/// Verifies the PCK chain a quote carries against the collateral at `at`:
/// the leaf is a PCK certificate, valid, issued by a valid, unrevoked PCK CA
/// that is the collateral's PCK CRL issuer (or a re-issue of it) and chains
/// to the collateral's root, and the leaf is not revoked. Allocates nothing.
fn verify_pck_chain(
    collateral: &VerifiedCollateral,
    quote: &Quote<'_>,
    at: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<Platform, TdxError> {
    let mut text =
        core::str::from_utf8(quote.pck_chain_pem).map_err(|_| TdxError::Certificate {
            role: CertRole::PckLeaf,
            error: X509Error::Pem,
        })?;
    let mut leaf_buf = [0u8; MAX_PCK_CERT_LEN];
    let leaf = decode_cert(&mut text, &mut leaf_buf, CertRole::PckLeaf)?;
    check_subject(&leaf, CertRole::PckLeaf)?;
    if !at.within(leaf.not_before(), leaf.not_after()) {
        return Err(TdxError::OutsideValidity {
            item: Dated::Certificate(CertRole::PckLeaf),
            not_before: leaf.not_before(),
            not_after: leaf.not_after(),
            at,
        });
    }
    // Fast path: the PCK CA and root are byte-identical to the collateral's
    // PCK CRL issuer (verified, not revoked, valid throughout the collateral
    // window) and its root; their base64 is compared, not decoded.
    let fast = match pem_block(text) {
        Some((ca_body, ca_len)) if body_is(ca_body, &collateral.pck_crl_issuer_b64) => {
            let rest = text.get(ca_len..).unwrap_or("");
            match pem_block(rest) {
                Some((root_body, root_len)) if body_is(root_body, &collateral.root_b64) => {
                    text = rest.get(root_len..).unwrap_or("");
                    true
                }
                _ => false,
            }
        }
        _ => false,
    };
    if fast {
        if !text.trim().is_empty() {
            return Err(TdxError::Certificate {
                role: CertRole::Root,
                error: X509Error::Pem,
            });
        }
        if leaf.issuer_raw() != collateral.pck_crl_issuer_subject.as_slice() {
            return Err(TdxError::Certificate {
                role: CertRole::PckLeaf,
                error: X509Error::IssuerMismatch,
            });
        }
        let key = PublicKey::Ec {
            curve: EcCurve::P256,
            point: &collateral.pck_crl_issuer_point,
        };
        leaf.verify_signature(&key, provider)
            .map_err(cert_err(CertRole::PckLeaf))?;
    } else {
        verify_ca_slow(collateral, text, &leaf, at, provider)?;
    }
    if revoked(&collateral.pck_revoked, leaf.serial()) {
        return Err(TdxError::Revoked(CertRole::PckLeaf));
    }

    let mut serial = PckSerial {
        bytes: [0; 20],
        len: 0,
    };
    let leaf_serial = leaf.serial();
    serial
        .bytes
        .get_mut(..leaf_serial.len())
        .ok_or(TdxError::Certificate {
            role: CertRole::PckLeaf,
            error: X509Error::Der(crate::der::DerError::BadInteger),
        })?
        .copy_from_slice(leaf_serial);
    serial.len = leaf_serial.len();
    let mut leaf_point = [0u8; 65];
    let point = p256_point(&leaf, CertRole::PckLeaf)?;
    leaf_point
        .get_mut(..point.len())
        .ok_or(TdxError::Certificate {
            role: CertRole::PckLeaf,
            error: X509Error::BadPublicKey,
        })?
        .copy_from_slice(point);
    Ok(Platform {
        leaf_point,
        pck: PckExtension::from_certificate(&leaf)?,
        serial,
    })
}

/// Verifies one quote against verified collateral at `at`. Authenticity and
/// TCB evaluation only: apply a [`TdxPolicy`] (or reference values) to the
/// result. Allocates nothing.
pub fn verify_with_collateral<'q, 'c>(
    collateral: &'c VerifiedCollateral,
    quote_bytes: &'q [u8],
    at: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<VerifiedQuote<'q, 'c>, TdxError> {
    if !at.within(collateral.not_before, collateral.not_after) {
        return Err(TdxError::OutsideValidity {
            item: Dated::Collateral,
            not_before: collateral.not_before,
            not_after: collateral.not_after,
            at,
        });
    }
    let quote = Quote::parse(quote_bytes)?;

    // Attestation-key signature over header and body.
    let mut att_key = [0u8; 65];
    att_key[0] = 4;
    if let Some(tail) = att_key.get_mut(1..) {
        tail.copy_from_slice(quote.attestation_key);
    }
    provider
        .verify_ecdsa(EcCurve::P256, &att_key, quote.signed, quote.signature)
        .map_err(|_| TdxError::Signature(SignatureRole::QuoteBody))?;

    // PCK chain: a platform remembered with this collateral, or the full
    // chain check (leaf, PCK CA, root; decoded into stack buffers).
    let platform = match collateral.known_platform(quote.pck_chain_pem, provider) {
        Some(known) => {
            if !at.within(known.not_before, known.not_after) {
                return Err(TdxError::OutsideValidity {
                    item: Dated::Certificate(CertRole::PckLeaf),
                    not_before: known.not_before,
                    not_after: known.not_after,
                    at,
                });
            }
            known.platform
        }
        None => verify_pck_chain(collateral, &quote, at, provider)?,
    };

    // QE report: signed by the PCK key, binds the attestation key.
    provider
        .verify_ecdsa(
            EcCurve::P256,
            &platform.leaf_point,
            quote.qe_report.raw,
            quote.qe_report_signature,
        )
        .map_err(|_| TdxError::Signature(SignatureRole::QeReport))?;
    let binding = provider.sha256(&[quote.attestation_key, quote.auth_data]);
    let (bound, zeros) = quote.qe_report.report_data.split_at(32);
    if bound != binding || zeros.iter().any(|b| *b != 0) {
        return Err(TdxError::QeReportData);
    }

    // PCK extension against the TCB info.
    let pck = platform.pck;
    let tcb_info = &collateral.tcb_info;
    if pck.fmspc != tcb_info.fmspc {
        return Err(TdxError::FmspcMismatch {
            expected: tcb_info.fmspc,
            actual: pck.fmspc,
        });
    }
    if pck.pce_id != tcb_info.pce_id {
        return Err(TdxError::PceIdMismatch {
            expected: tcb_info.pce_id,
            actual: pck.pce_id,
        });
    }

    // QE identity.
    let qe_id = &collateral.qe_identity;
    let qe = &quote.qe_report;
    if *qe.mr_signer != qe_id.mr_signer {
        return Err(TdxError::Identity(IdentityField::QeMrSigner));
    }
    if qe.isv_prod_id != qe_id.isv_prod_id {
        return Err(TdxError::Identity(IdentityField::QeIsvProdId));
    }
    if qe.misc_select & qe_id.misc_select_mask != qe_id.misc_select & qe_id.misc_select_mask {
        return Err(TdxError::Identity(IdentityField::QeMiscSelect));
    }
    if !masked_eq(qe.attributes, &qe_id.attributes, &qe_id.attributes_mask) {
        return Err(TdxError::Identity(IdentityField::QeAttributes));
    }

    let platform_tcb = PlatformTcb {
        sgx_components: pck.sgx_components,
        pce_svn: pck.pce_svn,
    };
    let tcb = tcb::evaluate(tcb_info, qe_id, &platform_tcb, &quote.body, qe.isv_svn)?;
    let pck_serial = platform.serial;

    Ok(VerifiedQuote {
        quote,
        pck,
        pck_serial,
        tcb,
        collateral,
    })
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::crypto::all_providers;

    /// Reads `testdata/tdx/<name>` (`$ACCORD_TESTDATA`, else
    /// `../shared/testdata`). A missing vector is a loudly reported skip,
    /// or a failure when `ACCORD_REQUIRE_VECTORS=1`.
    fn vector(name: &str) -> Option<Vec<u8>> {
        let dir = std::env::var("ACCORD_TESTDATA").unwrap_or_else(|_| {
            std::format!("{}/../../shared/testdata", env!("CARGO_MANIFEST_DIR"))
        });
        let path = std::format!("{dir}/tdx/{name}");
        match std::fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(err) => {
                assert!(
                    std::env::var("ACCORD_REQUIRE_VECTORS").as_deref() != Ok("1"),
                    "ACCORD_REQUIRE_VECTORS=1 but test vector {path} is unreadable: {err}"
                );
                std::eprintln!(
                    "SKIPPED: test vector {path} unavailable ({err}); set ACCORD_TESTDATA"
                );
                None
            }
        }
    }

    #[test]
    fn revoked_serials_are_found_and_rejected() {
        let (Some(quote), Some(json)) = (
            vector("tdx-quote-v4-1.bin"),
            vector("tdx-collateral-1.json"),
        ) else {
            return;
        };
        let collateral = Collateral::from_json(&json).unwrap();
        let at = UnixTime::parse_rfc3339("2025-07-01T00:00:00Z").unwrap();
        for provider in all_providers() {
            let mut vc = VerifiedCollateral::verify(&collateral, at, *provider).unwrap();
            assert_eq!(vc.pck_revoked.len(), 44);
            assert!(vc.pck_revoked.windows(2).all(|w| w[0] < w[1]));
            let first = vc.pck_revoked[0].clone();
            assert!(revoked(&vc.pck_revoked, &first));
            let serial = verify_with_collateral(&vc, &quote, at, *provider)
                .unwrap()
                .pck_serial;
            vc.pck_revoked.push(serial.as_bytes().to_vec());
            vc.pck_revoked.sort_unstable();
            assert_eq!(
                verify_with_collateral(&vc, &quote, at, *provider).unwrap_err(),
                TdxError::Revoked(CertRole::PckLeaf)
            );
        }
    }

    #[test]
    fn identity_and_policy_checks_name_what_failed() {
        let (Some(quote), Some(json)) = (
            vector("tdx-quote-v4-1.bin"),
            vector("tdx-collateral-1.json"),
        ) else {
            return;
        };
        let collateral = Collateral::from_json(&json).unwrap();
        let at = UnixTime::parse_rfc3339("2025-07-01T00:00:00Z").unwrap();
        let provider = all_providers()[0];
        let good = VerifiedCollateral::verify(&collateral, at, provider).unwrap();
        let check = |edit: &dyn Fn(&mut VerifiedCollateral)| {
            let mut vc = good.clone();
            edit(&mut vc);
            verify_with_collateral(&vc, &quote, at, provider).map(|v| v.tcb.status)
        };
        assert_eq!(check(&|_| {}), Ok(TcbStatus::UpToDate));
        assert_eq!(
            check(&|vc| vc.qe_identity.mr_signer[0] ^= 1),
            Err(TdxError::Identity(IdentityField::QeMrSigner))
        );
        assert_eq!(
            check(&|vc| vc.qe_identity.isv_prod_id = 1),
            Err(TdxError::Identity(IdentityField::QeIsvProdId))
        );
        assert_eq!(
            check(&|vc| vc.qe_identity.misc_select = 1),
            Err(TdxError::Identity(IdentityField::QeMiscSelect))
        );
        // Outside the mask a difference does not matter.
        assert_eq!(
            check(&|vc| {
                vc.qe_identity.misc_select = 1;
                vc.qe_identity.misc_select_mask = 0xffff_fffe;
            }),
            Ok(TcbStatus::UpToDate)
        );
        assert_eq!(
            check(&|vc| vc.qe_identity.attributes[0] ^= 1),
            Err(TdxError::Identity(IdentityField::QeAttributes))
        );
        assert!(matches!(
            check(&|vc| vc.tcb_info.fmspc[0] ^= 1),
            Err(TdxError::FmspcMismatch { .. })
        ));
        assert!(matches!(
            check(&|vc| vc.tcb_info.pce_id[0] ^= 1),
            Err(TdxError::PceIdMismatch { .. })
        ));
        assert_eq!(
            check(&|vc| vc.tcb_info.tdx_module.mr_signer[0] ^= 1),
            Err(TdxError::Identity(IdentityField::MrSignerSeam))
        );
        assert_eq!(
            check(&|vc| vc.tcb_info.tdx_module.attributes[0] ^= 1),
            Err(TdxError::Identity(IdentityField::SeamAttributes))
        );
        assert_eq!(
            check(&|vc| vc.tcb_info.tdx_module_identities.clear()),
            Err(TdxError::TdxModuleIdentityMissing { version: 1 })
        );
        assert_eq!(
            check(&|vc| vc.tcb_info.tcb_levels[0].status = TcbStatus::OutOfDate),
            Ok(TcbStatus::OutOfDate)
        );
        assert_eq!(
            check(&|vc| vc.qe_identity.tcb_levels[0].status = TcbStatus::Revoked),
            Ok(TcbStatus::Revoked)
        );

        // Policy: default accepts UpToDate only, never Revoked.
        let mut vc = good.clone();
        vc.tcb_info.tcb_levels[0].status = TcbStatus::SWHardeningNeeded;
        let verified = verify_with_collateral(&vc, &quote, at, provider).unwrap();
        assert_eq!(
            TdxPolicy::default().check(&verified),
            Err(TdxError::TcbStatus(TcbStatus::SWHardeningNeeded))
        );
        let lenient = TdxPolicy {
            accepted_tcb_statuses: TcbStatusSet::of(&[
                TcbStatus::UpToDate,
                TcbStatus::SWHardeningNeeded,
            ]),
            ..TdxPolicy::default()
        };
        assert_eq!(lenient.check(&verified), Ok(()));
        vc.tcb_info.tcb_levels[0].status = TcbStatus::Revoked;
        let verified = verify_with_collateral(&vc, &quote, at, provider).unwrap();
        assert_eq!(
            TdxPolicy::authenticity_only().check(&verified),
            Err(TdxError::TcbStatus(TcbStatus::Revoked))
        );
    }

    #[test]
    fn service_td_binding_is_refused_by_default() {
        let (Some(quote), Some(json)) = (
            vector("tdx-quote-v5-1.bin"),
            vector("tdx-collateral-3.json"),
        ) else {
            return;
        };
        let collateral = Collateral::from_json(&json).unwrap();
        let at = UnixTime::parse_rfc3339("2026-03-01T00:00:00Z").unwrap();
        let provider = all_providers()[0];
        let vc = VerifiedCollateral::verify(&collateral, at, provider).unwrap();
        let verified = verify_with_collateral(&vc, &quote, at, provider).unwrap();
        assert!(!verified.quote.body.has_service_td());
        assert_eq!(TdxPolicy::default().check(&verified), Ok(()));
        // The same claims with a service TD bound.
        let service = [1u8; 48];
        let mut bound = verified;
        bound.quote.body.mr_service_td = Some(&service);
        assert_eq!(TdxPolicy::default().check(&bound), Err(TdxError::ServiceTd));
        let allow = TdxPolicy {
            allow_service_td: true,
            ..TdxPolicy::default()
        };
        assert_eq!(allow.check(&bound), Ok(()));
        let expected = crate::evidence::tdx::TdxReferenceValues::default()
            .expect()
            .unwrap();
        assert_eq!(
            expected.compare(&bound),
            Err(crate::evidence::tdx::ReferenceError::ServiceTd)
        );
    }
}
