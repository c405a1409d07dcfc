//! SEV-SNP collateral held in service: VCEKs fetched by chip and TCB, the
//! ARK-signed VCEK/VLEK CRLs, and a bounded cache of verified chains.
//!
//! A CRL is held per product, signer (VCEK or VLEK) and ARK (AMD's pinned
//! one, or the ARK of a reference entry's explicit test root), and applies
//! to every chain that ends in that ARK: the intermediate (ASK/ASVK) and
//! the leaf are looked up by serial at every verification.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::crypto::CryptoProvider;
use crate::der::{self, tag};
use crate::hex;
use crate::time::UnixTime;
use crate::x509::{Certificate, Crl, X509Error, pem};

use super::super::collateral::{CollateralRequest, HwId, SnpSigner};
use super::super::snp::{
    self, AttestationReport, CertRole, Certs, Product, SigningKey, SnpClaims, SnpError,
    SnpReferenceValues, TcbVersion, TrustRoots, TrustedRoot, VerifiedChain,
};
use super::super::{EvidenceError, SnpEvidence, chain_key, join};
use super::HeldCollateral;
use super::freshness::{CrlVersion, Marks, StreamKey};

/// How many verified chains are kept (oldest dropped first).
pub const CHAIN_CAPACITY: usize = 64;
/// How many fetched VCEKs are kept (oldest dropped first).
pub const VCEK_CAPACITY: usize = 256;
/// How many refusals of offered CRLs are remembered (oldest dropped
/// first).
pub const REFUSAL_CAPACITY: usize = 16;

const OID_PRODUCT_NAME: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 2];

#[derive(Clone, Debug)]
struct HeldCrl {
    product: Product,
    signer: SnpSigner,
    /// The ARK (DER) that signed it.
    ark: Vec<u8>,
    /// The CRL as offered (DER).
    der: Vec<u8>,
    this_update: UnixTime,
    next_update: UnixTime,
    /// Revoked serials (big-endian magnitudes), sorted.
    revoked: Vec<Vec<u8>>,
}

#[derive(Clone, Debug)]
struct HeldVcek {
    product: Product,
    /// The ARK (DER) its chain was verified to.
    ark: Vec<u8>,
    hw_id: HwId,
    tcb: u64,
    der: Vec<u8>,
    not_after: UnixTime,
}

#[derive(Clone, Debug)]
struct CachedChain {
    chain: VerifiedChain,
    intermediate_serial: Vec<u8>,
    leaf_serial: Vec<u8>,
}

/// Why an offered CRL was refused, by the SHA-256 of its bytes: when
/// evidence carrying that CRL is verified without one held, the refusal
/// ("older than the newest seen", "not signed by the ARK") is the error.
#[derive(Clone, Debug)]
struct Refusal {
    digest: [u8; 32],
    which: CollateralRequest,
    error: EvidenceError,
}

/// The SEV-SNP part of a [`ServiceVerifier`](super::ServiceVerifier).
#[derive(Clone, Debug, Default)]
pub struct SnpHeld {
    crls: Vec<HeldCrl>,
    vceks: VecDeque<HeldVcek>,
    chains: VecDeque<([u8; 32], CachedChain)>,
    refusals: VecDeque<Refusal>,
}

fn roots_of(entry: Option<&SnpReferenceValues>) -> TrustRoots<'_> {
    TrustedRoot::roots_or_genuine(entry.and_then(|e| e.insecure_trusted_root.as_ref()))
}

/// The ARK (DER) an entry trusts for `product`, without the pin check
/// (for lookups; authentication goes through [`TrustRoots::get`]).
fn ark_der(root: Option<&TrustedRoot>, product: Product) -> Option<&[u8]> {
    match root {
        Some(root) => Some(&root.ark),
        None => snp::GENUINE
            .iter()
            .find(|p| p.product == product && p.role == CertRole::Ark)
            .map(|p| p.der),
    }
}

/// The distinct roots the entries name; AMD's alone when there are none.
fn distinct_roots(entries: &[SnpReferenceValues]) -> Vec<Option<&TrustedRoot>> {
    let mut roots: Vec<Option<&TrustedRoot>> = Vec::new();
    for entry in entries {
        let root = entry.insecure_trusted_root.as_ref();
        if !roots.contains(&root) {
            roots.push(root);
        }
    }
    if roots.is_empty() {
        roots.push(None);
    }
    roots
}

fn stream(signer: SnpSigner, ark: &[u8], provider: &dyn CryptoProvider) -> StreamKey {
    let label = match signer {
        SnpSigner::Vcek => "SEV-SNP VCEK CRL",
        SnpSigner::Vlek => "SEV-SNP VLEK CRL",
    };
    (label, provider.sha256(&[ark]))
}

/// The product a leaf's productName names, if it parses.
fn leaf_product(leaf: &[u8]) -> Option<Product> {
    let der_bytes = pem::der_or_pem(leaf, "CERTIFICATE").ok()?;
    let cert = Certificate::from_der(&der_bytes).ok()?;
    let ext = cert.extension(OID_PRODUCT_NAME).ok()??;
    let tlv = der::single(ext.value, tag::IA5_STRING).ok()?;
    Product::from_product_name(der::string(&tlv).ok()?)
}

/// Products a chip id can belong to when nothing else names the product:
/// Turin's ids are 8 bytes (the rest zero), Milan's and Genoa's 64.
fn shape_candidates(chip_id: &[u8; 64]) -> Vec<Product> {
    if chip_id
        .get(8..)
        .is_some_and(|rest| rest.iter().all(|b| *b == 0))
    {
        alloc::vec![Product::Turin]
    } else {
        alloc::vec![Product::Milan, Product::Genoa]
    }
}

/// A held VCEK of one of `candidates` for the chip and TCB, verified to
/// the ARK `root` trusts.
fn find_vcek<'v>(
    vceks: &'v VecDeque<HeldVcek>,
    root: Option<&TrustedRoot>,
    candidates: &[Product],
    chip_id: &[u8; 64],
    tcb: u64,
) -> Option<&'v HeldVcek> {
    vceks.iter().find(|v| {
        candidates.contains(&v.product)
            && v.hw_id.0 == *chip_id
            && v.tcb == tcb
            && ark_der(root, v.product) == Some(v.ark.as_slice())
    })
}

/// Caches a chain that just verified, with the serials revocation is
/// checked by (the intermediate's from the roots). `None` when the roots
/// lack the intermediate (cannot happen for a chain that verified).
fn cache_chain(
    chains: &mut VecDeque<([u8; 32], CachedChain)>,
    key: [u8; 32],
    chain: VerifiedChain,
    root: Option<&TrustedRoot>,
    provider: &dyn CryptoProvider,
) -> Option<()> {
    if chains.iter().any(|(k, _)| *k == key) {
        return Some(());
    }
    let roots = TrustedRoot::roots_or_genuine(root);
    let role = CertRole::intermediate(chain.signing_key());
    let inter = roots.get(chain.product(), role, provider).ok()?;
    let intermediate_serial = Certificate::from_der(inter).ok()?.serial().to_vec();
    if chains.len() >= CHAIN_CAPACITY {
        chains.pop_front();
    }
    chains.push_back((
        key,
        CachedChain {
            leaf_serial: serial_bytes(chain.leaf_serial()),
            intermediate_serial,
            chain,
        },
    ));
    Some(())
}

/// The ARK (DER) of the first root the entries name (AMD's when none)
/// that signed `crl` for `product`.
fn crl_signer<'e>(
    which: &CollateralRequest,
    product: Product,
    crl: &Crl<'_>,
    entries: &'e [SnpReferenceValues],
    provider: &dyn CryptoProvider,
) -> Result<&'e [u8], EvidenceError> {
    let mut last = None;
    for root in distinct_roots(entries) {
        let roots = TrustedRoot::roots_or_genuine(root);
        let ark_der = roots
            .get(product, CertRole::Ark, provider)
            .map_err(|err| refused(which, err))?;
        let ark = Certificate::from_der(ark_der).map_err(|error| {
            refused(
                which,
                SnpError::Certificate {
                    role: CertRole::Ark,
                    error,
                },
            )
        })?;
        match crl.verify_issued_by(&ark, provider) {
            Ok(()) => return Ok(ark_der),
            Err(err) => last = Some(err),
        }
    }
    Err(refused(
        which,
        alloc::format!(
            "not signed by the {product} ARK: {}",
            last.unwrap_or(X509Error::BadSignature)
        ),
    ))
}

/// Checks that `der` is the VCEK or VLEK CRL of `product` signed by the
/// ARK of a root `entries` name (AMD's when none): the signature check of
/// [`ServiceVerifier::offer`](super::ServiceVerifier::offer), without the
/// window and the marks.
pub fn check_crl_issuer(
    product: Product,
    signer: SnpSigner,
    der: &[u8],
    entries: &[SnpReferenceValues],
    provider: &dyn CryptoProvider,
) -> Result<(), EvidenceError> {
    let which = CollateralRequest::SnpCrl { product, signer };
    let crl = Crl::from_der(der).map_err(|err| refused(&which, SnpError::Crl(err)))?;
    crl_signer(&which, product, &crl, entries, provider).map(|_| ())
}

fn refused(which: &CollateralRequest, reason: impl ToString) -> EvidenceError {
    EvidenceError::CollateralRefused {
        which: Box::new(which.clone()),
        reason: reason.to_string(),
    }
}

fn serial_bytes(hex_serial: &str) -> Vec<u8> {
    hex::decode(hex_serial).unwrap_or_default()
}

impl SnpHeld {
    fn crl(&self, product: Product, signer: SnpSigner, ark: &[u8]) -> Option<&HeldCrl> {
        self.crls
            .iter()
            .find(|c| c.product == product && c.signer == signer && c.ark == ark)
    }

    fn vcek(
        &self,
        root: Option<&TrustedRoot>,
        candidates: &[Product],
        chip_id: &[u8; 64],
        tcb: u64,
    ) -> Option<&HeldVcek> {
        find_vcek(&self.vceks, root, candidates, chip_id, tcb)
    }

    /// See [`ServiceVerifier::needs`](super::ServiceVerifier::needs).
    pub fn needs(
        &self,
        evidence: &SnpEvidence,
        entries: &[SnpReferenceValues],
        at: UnixTime,
        margin: i64,
        out: &mut Vec<CollateralRequest>,
    ) {
        let Ok(report) = AttestationReport::parse(&evidence.report) else {
            return;
        };
        let signer = SnpSigner::from(report.flags.signing_key);
        let named = evidence.vcek.as_deref().and_then(leaf_product);
        for entry in entries {
            let Ok(resolved) =
                snp::resolve_product(entry.product_name, report.product_from_cpuid())
            else {
                continue;
            };
            if resolved.is_some() && named.is_some() && resolved != named {
                // The entry is for another product than the leaf: it cannot
                // match, and needs nothing.
                continue;
            }
            let mut product = resolved.or(named);
            if evidence.vcek.is_none() {
                if signer != SnpSigner::Vcek || report.flags.mask_chip_key {
                    // A VLEK, or a VCEK without a chip id: not fetchable.
                    continue;
                }
                let candidates =
                    product.map_or_else(|| shape_candidates(report.chip_id), |p| alloc::vec![p]);
                let root = entry.insecure_trusted_root.as_ref();
                match self.vcek(root, &candidates, report.chip_id, report.reported_tcb) {
                    Some(held) if held.not_after.0.saturating_sub(margin) >= at.0 => {
                        product = Some(held.product);
                    }
                    held => {
                        product = held.map(|h| h.product).or(product);
                        out.extend(candidates.into_iter().map(|p| CollateralRequest::SnpVcek {
                            product: p,
                            hw_id: HwId(*report.chip_id),
                            tcb: report.reported_tcb,
                        }));
                    }
                }
            }
            let Some(product) = product else { continue };
            let Some(ark) = ark_der(entry.insecure_trusted_root.as_ref(), product) else {
                continue;
            };
            let fresh = self.crl(product, signer, ark).is_some_and(|crl| {
                crl.this_update <= at && crl.next_update.0.saturating_sub(margin) >= at.0
            });
            if !fresh {
                out.push(CollateralRequest::SnpCrl { product, signer });
            }
        }
    }

    /// See [`ServiceVerifier::offer`](super::ServiceVerifier::offer).
    pub fn offer(
        &mut self,
        request: &CollateralRequest,
        bytes: &[u8],
        entries: &[SnpReferenceValues],
        at: UnixTime,
        provider: &dyn CryptoProvider,
        marks: &mut Marks,
    ) -> Result<(), EvidenceError> {
        match request {
            CollateralRequest::SnpCrl { product, signer } => {
                let result = self.offer_crl(
                    request, *product, *signer, bytes, entries, at, provider, marks,
                );
                self.remember(request, bytes, &result, provider);
                result
            }
            CollateralRequest::SnpVcek {
                product,
                hw_id,
                tcb,
            } => self.offer_vcek(request, *product, hw_id, *tcb, bytes, entries, at, provider),
            CollateralRequest::SnpChain { product, signer } => {
                offer_chain(request, *product, *signer, bytes, entries, provider)
            }
            CollateralRequest::TdxCollateral { .. } => {
                Err(refused(request, "not SEV-SNP collateral"))
            }
        }
    }

    /// Remembers why the CRL `bytes` offered for `which` was refused (and
    /// forgets it once the same bytes are kept).
    fn remember(
        &mut self,
        which: &CollateralRequest,
        bytes: &[u8],
        result: &Result<(), EvidenceError>,
        provider: &dyn CryptoProvider,
    ) {
        let digest = provider.sha256(&[bytes]);
        self.refusals
            .retain(|r| !(r.digest == digest && r.which == *which));
        if let Err(error) = result {
            if self.refusals.len() >= REFUSAL_CAPACITY {
                self.refusals.pop_front();
            }
            self.refusals.push_back(Refusal {
                digest,
                which: which.clone(),
                error: error.clone(),
            });
        }
    }

    /// Why no CRL is held for `which`: the refusal of the CRL the evidence
    /// carries when it was offered and refused, else `MissingCrl`.
    fn missing_crl(
        &self,
        which: &CollateralRequest,
        carried: Option<&[u8]>,
        provider: &dyn CryptoProvider,
    ) -> EvidenceError {
        let refusal = carried.and_then(|bytes| {
            let digest = provider.sha256(&[bytes]);
            self.refusals
                .iter()
                .find(|r| r.digest == digest && r.which == *which)
        });
        match refusal {
            Some(refusal) => refusal.error.clone(),
            None => EvidenceError::MissingCrl {
                which: Box::new(which.clone()),
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn offer_crl(
        &mut self,
        which: &CollateralRequest,
        product: Product,
        signer: SnpSigner,
        bytes: &[u8],
        entries: &[SnpReferenceValues],
        at: UnixTime,
        provider: &dyn CryptoProvider,
        marks: &mut Marks,
    ) -> Result<(), EvidenceError> {
        let crl = Crl::from_der(bytes).map_err(|err| refused(which, SnpError::Crl(err)))?;
        let ark = crl_signer(which, product, &crl, entries, provider)?;
        let next_update = crl
            .next_update()
            .ok_or_else(|| refused(which, SnpError::Crl(X509Error::MissingNextUpdate)))?;
        if !at.within(crl.this_update(), next_update) {
            return Err(EvidenceError::StaleCrl {
                which: Box::new(which.clone()),
                this_update: crl.this_update(),
                next_update,
                at,
            });
        }
        let key = stream(signer, ark, provider);
        let version = CrlVersion::of(&crl);
        marks
            .check_crl(&key, &version)
            .map_err(|below| EvidenceError::OlderThanSeen {
                which: Box::new(which.clone()),
                newest_seen: below.newest_seen.into(),
                offered: below.offered.into(),
            })?;
        let mut revoked: Vec<Vec<u8>> = crl.revoked_serials().map(<[u8]>::to_vec).collect();
        revoked.sort_unstable();
        let held = HeldCrl {
            product,
            signer,
            ark: ark.to_vec(),
            der: bytes.to_vec(),
            this_update: crl.this_update(),
            next_update,
            revoked,
        };
        marks.record_crl(key, version);
        self.crls
            .retain(|c| !(c.product == product && c.signer == signer && c.ark == ark));
        self.crls.push(held);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn offer_vcek(
        &mut self,
        which: &CollateralRequest,
        product: Product,
        hw_id: &HwId,
        tcb: u64,
        bytes: &[u8],
        entries: &[SnpReferenceValues],
        at: UnixTime,
        provider: &dyn CryptoProvider,
    ) -> Result<(), EvidenceError> {
        let der_bytes = pem::der_or_pem(bytes, "CERTIFICATE").map_err(|error| {
            refused(
                which,
                SnpError::Certificate {
                    role: CertRole::Vcek,
                    error,
                },
            )
        })?;
        let mut last = None;
        let mut found = None;
        for root in distinct_roots(entries) {
            let roots = TrustedRoot::roots_or_genuine(root);
            match VerifiedChain::verify(
                &Certs { leaf: &der_bytes },
                Some(product),
                &roots,
                None,
                at,
                provider,
            ) {
                Ok(chain) => {
                    found = Some((root, chain));
                    break;
                }
                Err(err) => last = Some(err),
            }
        }
        let Some((root, chain)) = found else {
            return Err(refused(
                which,
                last.map_or_else(
                    || String::from("no root to check it against"),
                    |e| e.to_string(),
                ),
            ));
        };
        let expected_tcb = TcbVersion::decode(tcb, product).map_err(|e| {
            refused(
                which,
                SnpError::TcbReserved {
                    field: "REPORTED_TCB",
                    raw: tcb,
                    product: e.product,
                },
            )
        })?;
        if chain.signing_key() != SigningKey::Vcek
            || chain.hw_id() != hw_id.for_product(product)
            || chain.tcb() != expected_tcb
        {
            return Err(refused(
                which,
                alloc::format!(
                    "it is the {} of chip {} at TCB {:#018x}",
                    CertRole::leaf(chain.signing_key()),
                    hex::encode(chain.hw_id()),
                    chain.tcb().encode(product)
                ),
            ));
        }
        let ark = ark_der(root, product)
            .ok_or_else(|| {
                refused(
                    which,
                    SnpError::MissingRoot {
                        role: CertRole::Ark,
                        product,
                    },
                )
            })?
            .to_vec();
        let key = chain_key(provider, &der_bytes, root, Some(product));
        let not_after = chain.validity().1;
        cache_chain(&mut self.chains, key, chain, root, provider);
        self.vceks.retain(|v| {
            !(v.product == product && v.hw_id == *hw_id && v.tcb == tcb && v.ark == ark)
        });
        if self.vceks.len() >= VCEK_CAPACITY {
            self.vceks.pop_front();
        }
        self.vceks.push_back(HeldVcek {
            product,
            ark,
            hw_id: *hw_id,
            tcb,
            der: der_bytes,
            not_after,
        });
        Ok(())
    }

    /// See [`ServiceVerifier::verify`](super::ServiceVerifier::verify).
    pub fn verify(
        &mut self,
        evidence: &SnpEvidence,
        entries: &[SnpReferenceValues],
        at: UnixTime,
        provider: &dyn CryptoProvider,
    ) -> Result<SnpClaims, EvidenceError> {
        if entries.is_empty() {
            return Err(EvidenceError::NoReferenceValues { kind: "SEV-SNP" });
        }
        let mut reasons = Vec::new();
        for entry in entries {
            let claims = match self.verify_entry(evidence, entry, at, provider) {
                Ok(claims) => claims,
                Err(err) => {
                    if entries.len() == 1 {
                        return Err(err);
                    }
                    reasons.push(match err {
                        EvidenceError::Snp(err) => err.to_string(),
                        other => other.to_string(),
                    });
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

    /// Authenticates the report for one entry: leaf, chain (cached), CRL
    /// held, report signature and bindings.
    fn verify_entry(
        &mut self,
        evidence: &SnpEvidence,
        entry: &SnpReferenceValues,
        at: UnixTime,
        provider: &dyn CryptoProvider,
    ) -> Result<SnpClaims, EvidenceError> {
        let snp_err = EvidenceError::Snp;
        let parsed = match AttestationReport::parse(&evidence.report) {
            Ok(parsed) => parsed,
            // As offline: a missing leaf is named before the report.
            Err(_) if evidence.vcek.is_none() => return Err(EvidenceError::MissingVcek),
            Err(err) => return Err(snp_err(SnpError::from(err))),
        };
        let mut product = snp::resolve_product(entry.product_name, parsed.product_from_cpuid())
            .map_err(snp_err)?;
        let leaf: &[u8] = match evidence.vcek.as_deref() {
            Some(leaf) => leaf,
            None => {
                if parsed.flags.signing_key != SigningKey::Vcek || parsed.flags.mask_chip_key {
                    return Err(EvidenceError::MissingVcek);
                }
                let candidates =
                    product.map_or_else(|| shape_candidates(parsed.chip_id), |p| alloc::vec![p]);
                let root = entry.insecure_trusted_root.as_ref();
                let found = find_vcek(
                    &self.vceks,
                    root,
                    &candidates,
                    parsed.chip_id,
                    parsed.reported_tcb,
                );
                let Some(held) = found else {
                    return Err(EvidenceError::MissingCollateralFor {
                        which: Box::new(CollateralRequest::SnpVcek {
                            product: candidates.first().copied().unwrap_or(Product::Milan),
                            hw_id: HwId(*parsed.chip_id),
                            tcb: parsed.reported_tcb,
                        }),
                    });
                };
                product = Some(held.product);
                &held.der
            }
        };
        let root = entry.insecure_trusted_root.as_ref();
        let key = chain_key(provider, leaf, root, product);
        if !self.chains.iter().any(|(k, _)| *k == key) {
            let chain = VerifiedChain::verify(
                &Certs { leaf },
                product,
                &roots_of(Some(entry)),
                None,
                at,
                provider,
            )
            .map_err(snp_err)?;
            cache_chain(&mut self.chains, key, chain, root, provider).ok_or(snp_err(
                SnpError::MissingRoot {
                    role: CertRole::Ask,
                    product: product.unwrap_or(Product::Milan),
                },
            ))?;
        }
        let cached = self
            .chains
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, cached)| cached)
            .ok_or(snp_err(SnpError::MissingRoot {
                role: CertRole::Ask,
                product: product.unwrap_or(Product::Milan),
            }))?;
        let chain = &cached.chain;
        // Revocation: the CRL of the chain's product and signer, signed by
        // the ARK the chain ends in, held and current.
        let signer = SnpSigner::from(chain.signing_key());
        let which = CollateralRequest::SnpCrl {
            product: chain.product(),
            signer,
        };
        let ark = ark_der(root, chain.product()).ok_or(snp_err(SnpError::MissingRoot {
            role: CertRole::Ark,
            product: chain.product(),
        }))?;
        let crl = self
            .crl(chain.product(), signer, ark)
            .ok_or_else(|| self.missing_crl(&which, evidence.crl.as_deref(), provider))?;
        if !at.within(crl.this_update, crl.next_update) {
            return Err(EvidenceError::StaleCrl {
                which: Box::new(which),
                this_update: crl.this_update,
                next_update: crl.next_update,
                at,
            });
        }
        let listed = |serial: &[u8]| {
            crl.revoked
                .binary_search_by(|s| s.as_slice().cmp(serial))
                .is_ok()
        };
        let key_kind = chain.signing_key();
        for (serial, role) in [
            (
                &cached.intermediate_serial,
                CertRole::intermediate(key_kind),
            ),
            (&cached.leaf_serial, CertRole::leaf(key_kind)),
        ] {
            if listed(serial) {
                return Err(snp_err(SnpError::Revoked {
                    role,
                    serial: hex::encode(serial),
                }));
            }
        }
        let verified = chain
            .verify_report(&parsed, at, provider)
            .map_err(snp_err)?;
        Ok(SnpClaims::from(&verified))
    }

    /// The CRLs and VCEKs held.
    pub fn held(&self) -> Vec<HeldCollateral> {
        let crls = self.crls.iter().map(|c| HeldCollateral {
            which: CollateralRequest::SnpCrl {
                product: c.product,
                signer: c.signer,
            },
            issued: Some(c.this_update),
            next_update: c.next_update,
        });
        let vceks = self.vceks.iter().map(|v| HeldCollateral {
            which: CollateralRequest::SnpVcek {
                product: v.product,
                hw_id: v.hw_id,
                tcb: v.tcb,
            },
            issued: None,
            next_update: v.not_after,
        });
        crls.chain(vceks).collect()
    }

    /// The bytes held for `request` (a CRL's DER, a VCEK's DER), for a
    /// coordinator to send with its own evidence.
    pub fn bytes(&self, request: &CollateralRequest) -> Option<&[u8]> {
        match request {
            CollateralRequest::SnpCrl { product, signer } => self
                .crls
                .iter()
                .find(|c| c.product == *product && c.signer == *signer)
                .map(|c| c.der.as_slice()),
            CollateralRequest::SnpVcek {
                product,
                hw_id,
                tcb,
            } => self
                .vceks
                .iter()
                .find(|v| v.product == *product && v.hw_id == *hw_id && v.tcb == *tcb)
                .map(|v| v.der.as_slice()),
            CollateralRequest::SnpChain { .. } | CollateralRequest::TdxCollateral { .. } => None,
        }
    }

    /// How many CRLs and VCEKs are held.
    pub fn held_count(&self) -> usize {
        self.crls.len() + self.vceks.len()
    }

    /// How many chains are cached.
    pub fn chains_cached(&self) -> usize {
        self.chains.len()
    }
}

/// A certificate chain offered for `product`: accepted (and ignored) when
/// every certificate in it is the trusted ARK or intermediate of some
/// entry's roots; intermediates always come from the roots.
fn offer_chain(
    which: &CollateralRequest,
    product: Product,
    signer: SnpSigner,
    bytes: &[u8],
    entries: &[SnpReferenceValues],
    provider: &dyn CryptoProvider,
) -> Result<(), EvidenceError> {
    let text = core::str::from_utf8(bytes).map_err(|_| refused(which, "not PEM text"))?;
    let certs = pem::decode_all(text, "CERTIFICATE").map_err(|err| refused(which, err))?;
    if certs.is_empty() {
        return Err(refused(which, "no certificate"));
    }
    let role = match signer {
        SnpSigner::Vcek => CertRole::Ask,
        SnpSigner::Vlek => CertRole::Asvk,
    };
    for cert in &certs {
        let known = distinct_roots(entries).into_iter().any(|root| {
            let roots = TrustedRoot::roots_or_genuine(root);
            [CertRole::Ark, role].into_iter().any(|r| {
                roots
                    .get(product, r, provider)
                    .is_ok_and(|d| d == cert.as_slice())
            })
        });
        if !known {
            return Err(refused(
                which,
                alloc::format!("a certificate in it is not the trusted {product} ARK or {role}"),
            ));
        }
    }
    Ok(())
}
