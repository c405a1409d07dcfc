//! Hardware evidence: AMD SEV-SNP attestation reports and Intel TDX quotes.
//!
//! Each format follows extract → expect → compare: parse and authenticate the
//! evidence into claims, build the expectations from reference values, then
//! compare them field by field with one error per mismatch.
//!
//! [`Evidence`] is what a TEE hands out and what travels over the wire (it
//! is serde-serializable, for postcard frames); [`verify`] checks it against
//! a manifest's [`ReferenceValues`] at an instant and returns its [`Claims`].
//!
//! In service, [`ServiceVerifier`] (`service/`) verifies with collateral it
//! holds and judges itself: revocation enforced, freshness decided by the
//! verifier; [`CollateralRequest`] (`collateral.rs`) names what it needs
//! fetched.

pub mod collateral;
mod service;
pub mod snp;
pub mod tdx;

pub use collateral::CollateralRequest;
pub use service::{
    Counters, HeldCollateral, MarksError, ServiceVerifier, VendorCrl, check_crl_issuer,
};

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

use crate::crypto::CryptoProvider;
use crate::time::UnixTime;

/// Evidence from one TEE, with whatever certificates or collateral the
/// platform hands out beside it. Nothing here is trusted: [`verify`] checks
/// it against pinned roots (or roots the reference values name explicitly).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Evidence {
    /// An AMD SEV-SNP attestation report.
    Snp(SnpEvidence),
    /// An Intel TDX quote.
    Tdx(TdxEvidence),
}

/// An SEV-SNP report and the certificates the platform handed out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnpEvidence {
    /// The 1184-byte attestation report.
    pub report: Vec<u8>,
    /// The VCEK or VLEK (DER), from the extended report or a cache.
    pub vcek: Option<Vec<u8>>,
    /// The ASK / ASVK (DER), if the platform handed it out. Informational:
    /// verification takes intermediates from the trust roots.
    pub ask: Option<Vec<u8>>,
    /// The ARK (DER), if the platform handed it out. Informational.
    pub ark: Option<Vec<u8>>,
    /// The ARK-signed VCEK or VLEK CRL (DER) the attester attaches (a
    /// coordinator sends the one it holds). Authenticated by the ARK's
    /// signature, not by whoever attached it; in service it is used only
    /// if it is at least as new as the CRL the verifier holds.
    #[serde(default)]
    pub crl: Option<Vec<u8>>,
}

/// A TDX quote and, optionally, the collateral the platform attached.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdxEvidence {
    /// The quote (v4 or v5).
    pub quote: Vec<u8>,
    /// Collateral JSON (the format of [`tdx::Collateral::from_json`]); it is
    /// authenticated by Intel's signatures, not by whoever attached it.
    pub collateral: Option<Vec<u8>>,
}

impl Evidence {
    /// The 64 bytes of report data the evidence carries (parsed, not yet
    /// authenticated).
    pub fn report_data(&self) -> Result<[u8; 64], EvidenceError> {
        match self {
            Self::Snp(snp) => {
                let report = snp::AttestationReport::parse(&snp.report)
                    .map_err(|err| EvidenceError::Snp(snp::SnpError::from(err)))?;
                Ok(*report.report_data)
            }
            Self::Tdx(tdx) => {
                let quote = tdx::Quote::parse(&tdx.quote)
                    .map_err(|err| EvidenceError::Tdx(tdx::TdxError::from(err)))?;
                Ok(*quote.body.report_data)
            }
        }
    }

    /// `"SEV-SNP"` or `"TDX"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Snp(_) => "SEV-SNP",
            Self::Tdx(_) => "TDX",
        }
    }
}

/// The reference values of a manifest: every entry describes one acceptable
/// platform configuration; evidence is accepted if it satisfies any entry of
/// its kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceValues {
    /// SEV-SNP entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snp: Vec<snp::SnpReferenceValues>,
    /// TDX entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tdx: Vec<tdx::TdxReferenceValues>,
}

/// The authenticated contents of a piece of evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind")]
pub enum Claims {
    /// SEV-SNP claims.
    #[serde(rename = "SEV-SNP")]
    Snp(Box<snp::SnpClaims>),
    /// TDX claims.
    #[serde(rename = "TDX")]
    Tdx(Box<tdx::TdxClaims>),
}

impl Claims {
    /// The 64 bytes of report data, authenticated.
    pub fn report_data(&self) -> [u8; 64] {
        match self {
            Self::Snp(claims) => claims.report_data.0,
            Self::Tdx(claims) => {
                crate::hex::decode_array(&claims.body.report_data).unwrap_or([0; 64])
            }
        }
    }

    /// The policy hash the hardware was launched with: SNP HOST_DATA, or
    /// the first 32 bytes of TDX MRCONFIGID (whose other 16 must be zero;
    /// otherwise `None`).
    pub fn policy_hash(&self) -> Option<[u8; 32]> {
        match self {
            Self::Snp(claims) => Some(claims.host_data.0),
            Self::Tdx(claims) => {
                let config_id: [u8; 48] =
                    crate::hex::decode_array(&claims.body.mr_config_id).ok()?;
                let (hash, rest) = config_id.split_at(32);
                if rest.iter().any(|b| *b != 0) {
                    return None;
                }
                hash.try_into().ok()
            }
        }
    }
}

/// Why evidence was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EvidenceError {
    /// The reference values have no entry for this kind of evidence.
    NoReferenceValues {
        /// `"SEV-SNP"` or `"TDX"`.
        kind: &'static str,
    },
    /// SEV-SNP evidence without its VCEK/VLEK (offline; in service a VCEK
    /// not carried is fetched, see [`ServiceVerifier::needs`]).
    MissingVcek,
    /// TDX evidence without collateral (offline; in service the verifier's
    /// own collateral is used, see [`ServiceVerifier`]).
    MissingCollateral,
    /// The evidence failed authentication or parsing.
    Snp(snp::SnpError),
    /// The evidence failed authentication or parsing.
    Tdx(tdx::TdxError),
    /// The evidence is authentic but no reference entry accepts it; one
    /// reason per entry, in order.
    NoEntryMatched(Vec<String>),
    /// In service ([`ServiceVerifier`]): no CRL is held for `which`, so
    /// revocation cannot be checked and the evidence is refused.
    MissingCrl {
        /// The CRL that must be fetched.
        which: Box<CollateralRequest>,
    },
    /// In service: the CRL held for `which` is not current at `at`.
    StaleCrl {
        /// The CRL.
        which: Box<CollateralRequest>,
        /// Its thisUpdate.
        this_update: crate::time::UnixTime,
        /// Its nextUpdate.
        next_update: crate::time::UnixTime,
        /// The instant checked.
        at: crate::time::UnixTime,
    },
    /// In service: the evidence does not carry `which` and the verifier
    /// holds none (a VCEK, or TDX collateral).
    MissingCollateralFor {
        /// What must be fetched.
        which: Box<CollateralRequest>,
    },
    /// In service: the collateral held for `which` is outside its window
    /// at `at`.
    StaleCollateral {
        /// The collateral.
        which: Box<CollateralRequest>,
        /// Start of the window where all of it is valid.
        not_before: crate::time::UnixTime,
        /// End of that window.
        not_after: crate::time::UnixTime,
        /// The instant checked.
        at: crate::time::UnixTime,
    },
    /// In service: collateral older than the newest the verifier has seen
    /// for `which` (a rollback to hide a revocation or a TCB recovery).
    OlderThanSeen {
        /// The collateral.
        which: Box<CollateralRequest>,
        /// The newest seen.
        newest_seen: Box<str>,
        /// What was offered or attached.
        offered: Box<str>,
    },
    /// In service: bytes offered for `which` did not authenticate or are
    /// not what was requested; nothing was kept.
    CollateralRefused {
        /// What the bytes were offered as.
        which: Box<CollateralRequest>,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for EvidenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoReferenceValues { kind } => {
                write!(f, "the reference values have no {kind} entry")
            }
            Self::MissingVcek => f.write_str("SEV-SNP evidence carries no VCEK/VLEK"),
            Self::MissingCollateral => f.write_str("TDX evidence carries no collateral"),
            Self::Snp(err) => write!(f, "SEV-SNP: {err}"),
            Self::Tdx(err) => write!(f, "TDX: {err}"),
            Self::NoEntryMatched(reasons) if reasons.len() == 1 => {
                write!(f, "{}", reasons.first().map_or("", String::as_str))
            }
            Self::NoEntryMatched(reasons) => {
                f.write_str("no reference entry matched")?;
                for (index, reason) in reasons.iter().enumerate() {
                    write!(f, "; entry {index}: {reason}")?;
                }
                Ok(())
            }
            Self::MissingCrl { which } => write!(
                f,
                "{which} is not held: revocation cannot be checked, so the evidence is refused"
            ),
            Self::StaleCrl {
                which,
                this_update,
                next_update,
                at,
            } => {
                let state = if at < this_update {
                    "not yet valid"
                } else {
                    "stale"
                };
                write!(
                    f,
                    "{which} is {state}: valid {this_update} .. {next_update}, checked at {at}"
                )
            }
            Self::MissingCollateralFor { which } => {
                write!(f, "the evidence carries no {which} and none is held")
            }
            Self::StaleCollateral {
                which,
                not_before,
                not_after,
                at,
            } => {
                let state = if at < not_before {
                    "not yet valid"
                } else {
                    "stale"
                };
                write!(
                    f,
                    "{which}, as held, is {state}: valid {not_before} .. {not_after}, checked at {at}"
                )
            }
            Self::OlderThanSeen {
                which,
                newest_seen,
                offered,
            } => write!(
                f,
                "{which}: {offered} is older than the newest seen ({newest_seen})"
            ),
            Self::CollateralRefused { which, reason } => {
                write!(f, "bytes offered as {which} refused: {reason}")
            }
        }
    }
}

impl core::error::Error for EvidenceError {}

/// The numbers of the set bits of a 64-bit field, ascending, comma
/// separated (`"26, 63"`), for errors that name the bits they refuse.
pub(crate) struct BitList(pub(crate) u64);

impl fmt::Display for BitList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for bit in (0..64u32).filter(|bit| self.0 >> bit & 1 == 1) {
            if !first {
                f.write_str(", ")?;
            }
            write!(f, "{bit}")?;
            first = false;
        }
        Ok(())
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    let mut out = String::new();
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push_str("; ");
        }
        out.push_str(&item.to_string());
    }
    out
}

/// Authenticates `evidence` at `at` and accepts it if any reference entry
/// of its kind does. SEV-SNP entries verify against AMD's genuine roots
/// unless they name an `InsecureTrustedRoot`; TDX evidence is verified with
/// full DCAP against the collateral it carries, under the Intel SGX Root CA
/// unless the entry names an `InsecureTrustedRoot`.
pub fn verify(
    evidence: &Evidence,
    reference: &ReferenceValues,
    at: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<Claims, EvidenceError> {
    verify_with_chains(evidence, reference, at, provider, &NoChainStore)
}

/// Where verified SEV-SNP certificate chains are kept between
/// verifications (a server sees the same few VCEKs on every connection).
///
/// Keys are [`chain_key`]s: SHA-256 over the leaf certificate, the trust
/// roots and the product, so a chain is reused only for exactly the
/// certificates and roots it was verified with. A stored
/// [`snp::VerifiedChain`] still has its validity windows re-checked at
/// every use. Implementations choose their own bound and locking.
pub trait ChainStore {
    /// The chain stored under `key`, if any.
    fn get(&self, key: &[u8; 32]) -> Option<snp::VerifiedChain>;
    /// Stores a chain that just verified.
    fn put(&self, key: [u8; 32], chain: snp::VerifiedChain);
}

/// A [`ChainStore`] that keeps nothing: every verification checks the
/// whole chain.
pub struct NoChainStore;

impl ChainStore for NoChainStore {
    fn get(&self, _: &[u8; 32]) -> Option<snp::VerifiedChain> {
        None
    }
    fn put(&self, _: [u8; 32], _: snp::VerifiedChain) {}
}

/// The key of a verified chain: SHA-256 of a label, the product, the trust
/// roots (AMD's, or the explicit ARK, ASK and ASVK) and the leaf.
pub fn chain_key(
    provider: &dyn CryptoProvider,
    leaf: &[u8],
    root: Option<&snp::TrustedRoot>,
    product: Option<snp::Product>,
) -> [u8; 32] {
    let product: &[u8] = match product {
        None => b"any",
        Some(snp::Product::Milan) => b"Milan",
        Some(snp::Product::Genoa) => b"Genoa",
        Some(snp::Product::Turin) => b"Turin",
    };
    let len = |bytes: &[u8]| (bytes.len() as u64).to_be_bytes();
    match root {
        None => provider.sha256(&[
            b"accord snp chain v1 genuine\0",
            &len(product),
            product,
            &len(leaf),
            leaf,
        ]),
        Some(root) => {
            // An ASVK is hashed only when named, so that keys of roots
            // without one are as before.
            let asvk_len;
            let asvk_parts: [&[u8]; 2] = match root.asvk.as_deref() {
                Some(asvk) => {
                    asvk_len = len(asvk);
                    [&asvk_len, asvk]
                }
                None => [&[], &[]],
            };
            provider.sha256(&[
                b"accord snp chain v1 custom\0",
                &len(product),
                product,
                &len(&root.ark),
                &root.ark,
                &len(&root.ask),
                &root.ask,
                asvk_parts[0],
                asvk_parts[1],
                &len(leaf),
                leaf,
            ])
        }
    }
}

/// [`verify`], reusing SEV-SNP chains verified earlier from `chains` and
/// storing the ones it verifies. The result is the same as [`verify`]'s.
pub fn verify_with_chains(
    evidence: &Evidence,
    reference: &ReferenceValues,
    at: UnixTime,
    provider: &dyn CryptoProvider,
    chains: &dyn ChainStore,
) -> Result<Claims, EvidenceError> {
    match evidence {
        Evidence::Snp(snp_evidence) => {
            verify_snp(snp_evidence, &reference.snp, at, provider, chains)
                .map(|c| Claims::Snp(Box::new(c)))
        }
        Evidence::Tdx(tdx_evidence) => {
            verify_tdx(tdx_evidence, &reference.tdx, at, provider).map(|c| Claims::Tdx(Box::new(c)))
        }
    }
}

fn verify_snp(
    evidence: &SnpEvidence,
    entries: &[snp::SnpReferenceValues],
    at: UnixTime,
    provider: &dyn CryptoProvider,
    chains: &dyn ChainStore,
) -> Result<snp::SnpClaims, EvidenceError> {
    if entries.is_empty() {
        return Err(EvidenceError::NoReferenceValues { kind: "SEV-SNP" });
    }
    let leaf = evidence.vcek.as_deref().ok_or(EvidenceError::MissingVcek)?;
    let mut reasons = Vec::new();
    for entry in entries {
        let roots = snp::TrustedRoot::roots_or_genuine(entry.insecure_trusted_root.as_ref());
        let claims = match verify_snp_report(evidence, leaf, entry, &roots, at, provider, chains) {
            Ok(claims) => claims,
            Err(err) => {
                // With a single entry the authentication error itself is
                // the most useful answer.
                if entries.len() == 1 {
                    return Err(EvidenceError::Snp(err));
                }
                reasons.push(err.to_string());
                continue;
            }
        };
        match entry.check(&claims) {
            Ok(()) => return Ok(claims),
            Err(mismatches) => reasons.push(join(&mismatches)),
        }
    }
    Err(EvidenceError::NoEntryMatched(reasons))
}

/// Authenticates one SNP report for one reference entry (its product and
/// roots), through `chains`. Same checks and errors as [`snp::verify`].
fn verify_snp_report(
    evidence: &SnpEvidence,
    leaf: &[u8],
    entry: &snp::SnpReferenceValues,
    roots: &snp::TrustRoots<'_>,
    at: UnixTime,
    provider: &dyn CryptoProvider,
    chains: &dyn ChainStore,
) -> Result<snp::SnpClaims, snp::SnpError> {
    let parsed = snp::AttestationReport::parse(&evidence.report)?;
    let product = snp::resolve_product(entry.product_name, parsed.product_from_cpuid())?;
    let key = chain_key(
        provider,
        leaf,
        entry.insecure_trusted_root.as_ref(),
        product,
    );
    let chain = match chains.get(&key) {
        Some(chain) => chain,
        None => {
            let chain = snp::VerifiedChain::verify(
                &snp::Certs { leaf },
                product,
                roots,
                None,
                at,
                provider,
            )?;
            chains.put(key, chain.clone());
            chain
        }
    };
    let verified = chain.verify_report(&parsed, at, provider)?;
    Ok(snp::SnpClaims::from(&verified))
}

fn verify_tdx(
    evidence: &TdxEvidence,
    entries: &[tdx::TdxReferenceValues],
    at: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<tdx::TdxClaims, EvidenceError> {
    if entries.is_empty() {
        return Err(EvidenceError::NoReferenceValues { kind: "TDX" });
    }
    let collateral_json = evidence
        .collateral
        .as_deref()
        .ok_or(EvidenceError::MissingCollateral)?;
    let collateral = tdx::Collateral::from_json(collateral_json)
        .map_err(|err| EvidenceError::Tdx(tdx::TdxError::from(err)))?;
    // The collateral is verified once per root the entries name (Intel's,
    // or an entry's InsecureTrustedRoot), for each entry under its own.
    let mut under_root: Vec<(
        Option<&tdx::TrustedRoot>,
        Result<tdx::VerifiedCollateral, tdx::TdxError>,
    )> = Vec::new();
    // With one root for all entries, a collateral failure is the answer.
    let first_root = entries
        .first()
        .and_then(|e| e.insecure_trusted_root.as_ref());
    let one_root = entries
        .iter()
        .all(|e| e.insecure_trusted_root.as_ref() == first_root);
    let mut reasons = Vec::new();
    for entry in entries {
        let root = entry.insecure_trusted_root.as_ref();
        if !under_root.iter().any(|(r, _)| *r == root) {
            let verified =
                tdx::VerifiedCollateral::verify_with_root(&collateral, root, at, provider);
            under_root.push((root, verified));
        }
        let verified_collateral = match under_root.iter().find(|(r, _)| *r == root) {
            Some((_, Ok(verified))) => verified,
            Some((_, Err(err))) if one_root => return Err(EvidenceError::Tdx(err.clone())),
            Some((_, Err(err))) => {
                reasons.push(err.to_string());
                continue;
            }
            None => continue,
        };
        let expected = match entry.expect() {
            Ok(expected) => expected,
            Err(err) => {
                reasons.push(err.to_string());
                continue;
            }
        };
        match tdx::verify_with_reference(
            verified_collateral,
            &evidence.quote,
            at,
            provider,
            &expected,
        ) {
            Ok(verified) => return Ok(verified.to_claims()),
            Err(err) if entries.len() == 1 => return Err(EvidenceError::Tdx(err)),
            Err(err) => reasons.push(err.to_string()),
        }
    }
    Err(EvidenceError::NoEntryMatched(reasons))
}
