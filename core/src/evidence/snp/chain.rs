//! The ARK → ASK → VCEK and ARK → ASVK → VLEK chains, verified once and
//! cached as a [`VerifiedChain`].
//!
//! Verifying a chain parses the leaf (DER or PEM), picks the anchors for its
//! product from the [`TrustRoots`], checks every signature (RSASSA-PSS
//! SHA-384 for AMD's certificates) and every validity window at the instant,
//! optionally the AMD CRL, and reads the AMD extensions (OID
//! `1.3.6.1.4.1.3704.1.x`) of the leaf:
//!
//! | arc | name | use |
//! |---|---|---|
//! | 2 | productName (IA5String, `Milan-B0`, `Genoa`, `Turin`) | must name the product |
//! | 3.1 | blSPL | must equal REPORTED_TCB bootloader |
//! | 3.2 | teeSPL | must equal REPORTED_TCB tee |
//! | 3.3 | snpSPL | must equal REPORTED_TCB snp |
//! | 3.8 | ucodeSPL | must equal REPORTED_TCB microcode |
//! | 3.9 | fmcSPL (Turin) | must equal REPORTED_TCB fmc |
//! | 4 | hwID (VCEK only; 64 bytes, Turin 8) | must equal CHIP_ID (prefix) |
//! | 5 | csp_id (VLEK only, IA5String) | exposed in the claims |
//!
//! A [`VerifiedChain`] owns everything later report checks need (the leaf's
//! P-384 point in a fixed array, the TCB and hwID values, the common
//! validity window), so [`VerifiedChain::verify_report`] performs no heap
//! allocation on success.

use alloc::string::String;
use alloc::vec::Vec;

use crate::crypto::{CryptoProvider, EcCurve};
use crate::der::{self, tag};
use crate::hex;
use crate::time::UnixTime;
use crate::x509::{Certificate, PublicKey, pem};

use super::error::{CertRole, SnpError};
use super::policy::SigningKey;
use super::report::AttestationReport;
use super::revocation;
use super::roots::TrustRoots;
use super::tcb::{Product, TcbComponent, TcbVersion};

// AMD's SEV extensions live under 1.3.6.1.4.1.3704.1.
const OID_PRODUCT_NAME: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 2];
const OID_BL_SPL: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 1];
const OID_TEE_SPL: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 2];
const OID_SNP_SPL: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 3];
const OID_UCODE_SPL: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 8];
const OID_FMC_SPL: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 9];
const OID_HW_ID: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 4];
const OID_CSP_ID: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 5];

/// The leaf certificate as the host hands it over.
#[derive(Clone, Copy, Debug)]
pub struct Certs<'c> {
    /// The VCEK or VLEK, DER or PEM. Intermediates and roots always come
    /// from the [`TrustRoots`], never from the evidence.
    pub leaf: &'c [u8],
}

/// A leaf chain that verified at some instant, reduced to what report
/// verification needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedChain {
    product: Product,
    key: SigningKey,
    point: [u8; 97],
    tcb: TcbVersion,
    hw_id: [u8; 64],
    hw_id_len: usize,
    product_name: String,
    csp_id: Option<String>,
    leaf_serial: String,
    genuine_roots: bool,
    not_before: UnixTime,
    not_after: UnixTime,
}

fn common_name_role(cert: &Certificate<'_>) -> Result<SigningKey, SnpError> {
    match cert.subject_common_name() {
        Some("SEV-VCEK") => Ok(SigningKey::Vcek),
        Some("SEV-VLEK") => Ok(SigningKey::Vlek),
        other => Err(SnpError::UnknownLeaf {
            common_name: other.map(String::from),
        }),
    }
}

fn extension_value<'a>(
    cert: &Certificate<'a>,
    role: CertRole,
    arcs: &[u64],
    name: &'static str,
) -> Result<&'a [u8], SnpError> {
    match cert.extension(arcs) {
        Ok(Some(ext)) => Ok(ext.value),
        Ok(None) => Err(SnpError::Extension {
            role,
            name,
            problem: "missing",
        }),
        Err(error) => Err(SnpError::Certificate { role, error }),
    }
}

fn spl(
    cert: &Certificate<'_>,
    role: CertRole,
    arcs: &[u64],
    name: &'static str,
) -> Result<u8, SnpError> {
    let value = extension_value(cert, role, arcs, name)?;
    let malformed = SnpError::Extension {
        role,
        name,
        problem: "malformed",
    };
    let tlv = der::single(value, tag::INTEGER).map_err(|_| malformed.clone())?;
    let n = der::uint_u64(tlv.contents).map_err(|_| malformed.clone())?;
    u8::try_from(n).map_err(|_| malformed)
}

fn ia5<'a>(
    cert: &Certificate<'a>,
    role: CertRole,
    arcs: &[u64],
    name: &'static str,
) -> Result<&'a str, SnpError> {
    let value = extension_value(cert, role, arcs, name)?;
    let malformed = SnpError::Extension {
        role,
        name,
        problem: "malformed",
    };
    let tlv = der::single(value, tag::IA5_STRING).map_err(|_| malformed.clone())?;
    der::string(&tlv).map_err(|_| malformed)
}

fn check_window(cert: &Certificate<'_>, role: CertRole, at: UnixTime) -> Result<(), SnpError> {
    if at.within(cert.not_before(), cert.not_after()) {
        Ok(())
    } else {
        Err(SnpError::CertificateNotValidAt {
            role,
            not_before: cert.not_before(),
            not_after: cert.not_after(),
            at,
        })
    }
}

fn parse(der: &[u8], role: CertRole) -> Result<Certificate<'_>, SnpError> {
    Certificate::from_der(der).map_err(|error| SnpError::Certificate { role, error })
}

fn issued_by(
    cert: &Certificate<'_>,
    role: CertRole,
    issuer: &Certificate<'_>,
    issuer_role: CertRole,
    provider: &dyn CryptoProvider,
) -> Result<(), SnpError> {
    cert.verify_issued_by(issuer, provider)
        .map_err(|error| SnpError::ChainSignature {
            role,
            issuer: issuer_role,
            error,
        })
}

impl VerifiedChain {
    /// Verifies `certs.leaf` ← intermediate ← ARK from `roots` at `at`,
    /// optionally against an AMD CRL (DER, signed by the ARK).
    ///
    /// The product is `product` when given, else the one the leaf's
    /// `productName` names; when both exist they must agree.
    pub fn verify(
        certs: &Certs<'_>,
        product: Option<Product>,
        roots: &TrustRoots<'_>,
        crl: Option<&[u8]>,
        at: UnixTime,
        provider: &dyn CryptoProvider,
    ) -> Result<Self, SnpError> {
        let leaf_der: Vec<u8> =
            pem::der_or_pem(certs.leaf, "CERTIFICATE").map_err(|error| SnpError::Certificate {
                role: CertRole::Vcek,
                error,
            })?;
        // The role is not known before the CN is read; report parse errors
        // as VCEK errors unless the bytes say otherwise.
        let leaf = parse(&leaf_der, CertRole::Vcek)?;
        let key = common_name_role(&leaf)?;
        let role = CertRole::leaf(key);

        let product_name = ia5(&leaf, role, OID_PRODUCT_NAME, "productName")?;
        let named = Product::from_product_name(product_name).ok_or_else(|| {
            SnpError::UnknownProductName {
                role,
                name: String::from(product_name),
            }
        })?;
        let product = match product {
            Some(expected) if expected != named => {
                return Err(SnpError::ProductMismatch {
                    expected,
                    found: named,
                    source: if key == SigningKey::Vcek {
                        "VCEK productName"
                    } else {
                        "VLEK productName"
                    },
                });
            }
            _ => named,
        };

        let (ark_der, inter_der) = roots.anchors(product, key, provider)?;
        let inter_role = CertRole::intermediate(key);
        let ark = parse(ark_der, CertRole::Ark)?;
        let inter = parse(inter_der, inter_role)?;
        issued_by(&ark, CertRole::Ark, &ark, CertRole::Ark, provider)?;
        issued_by(&inter, inter_role, &ark, CertRole::Ark, provider)?;
        issued_by(&leaf, role, &inter, inter_role, provider)?;
        check_window(&ark, CertRole::Ark, at)?;
        check_window(&inter, inter_role, at)?;
        check_window(&leaf, role, at)?;
        for (cert, cert_role) in [(&ark, CertRole::Ark), (&inter, inter_role), (&leaf, role)] {
            cert.check_critical_extensions(&[])
                .map_err(|error| SnpError::Certificate {
                    role: cert_role,
                    error,
                })?;
        }
        if let Some(crl) = crl {
            revocation::check(
                crl,
                &ark,
                &[(&inter, inter_role), (&leaf, role)],
                at,
                provider,
            )?;
        }

        let point: [u8; 97] = match leaf.public_key() {
            PublicKey::Ec {
                curve: EcCurve::P384,
                point,
            } => (*point)
                .try_into()
                .map_err(|_| SnpError::LeafKey { role })?,
            _ => return Err(SnpError::LeafKey { role }),
        };

        let tcb = TcbVersion {
            fmc: if product.has_fmc() {
                Some(spl(&leaf, role, OID_FMC_SPL, "fmcSPL")?)
            } else {
                None
            },
            bootloader: spl(&leaf, role, OID_BL_SPL, "blSPL")?,
            tee: spl(&leaf, role, OID_TEE_SPL, "teeSPL")?,
            snp: spl(&leaf, role, OID_SNP_SPL, "snpSPL")?,
            microcode: spl(&leaf, role, OID_UCODE_SPL, "ucodeSPL")?,
        };

        let mut hw_id = [0u8; 64];
        let mut hw_id_len = 0;
        let mut csp_id = None;
        match key {
            SigningKey::Vcek => {
                let value = extension_value(&leaf, role, OID_HW_ID, "hwID")?;
                let len = product.hw_id_len();
                let dst = hw_id.get_mut(..len).ok_or(SnpError::Extension {
                    role,
                    name: "hwID",
                    problem: "malformed",
                })?;
                if value.len() != len {
                    return Err(SnpError::Extension {
                        role,
                        name: "hwID",
                        problem: "malformed",
                    });
                }
                dst.copy_from_slice(value);
                hw_id_len = len;
            }
            SigningKey::Vlek => {
                csp_id = Some(String::from(ia5(&leaf, role, OID_CSP_ID, "csp_id")?));
            }
        }

        Ok(Self {
            product,
            key,
            point,
            tcb,
            hw_id,
            hw_id_len,
            product_name: String::from(product_name),
            csp_id,
            leaf_serial: hex::encode(leaf.serial()),
            genuine_roots: roots.is_genuine(),
            not_before: ark
                .not_before()
                .max(inter.not_before())
                .max(leaf.not_before()),
            not_after: ark.not_after().min(inter.not_after()).min(leaf.not_after()),
        })
    }

    /// The product of the chain.
    pub fn product(&self) -> Product {
        self.product
    }
    /// Whether the leaf is a VCEK or a VLEK.
    pub fn signing_key(&self) -> SigningKey {
        self.key
    }
    /// The leaf's P-384 public key (uncompressed SEC1).
    pub fn public_key(&self) -> &[u8; 97] {
        &self.point
    }
    /// The TCB the leaf was issued for.
    pub fn tcb(&self) -> TcbVersion {
        self.tcb
    }
    /// The VCEK's hwID (empty for a VLEK).
    pub fn hw_id(&self) -> &[u8] {
        self.hw_id.get(..self.hw_id_len).unwrap_or(&[])
    }
    /// The leaf's productName (`Milan-B0`).
    pub fn product_name(&self) -> &str {
        &self.product_name
    }
    /// The VLEK's csp_id (`CN=cc-us-east-2.amazonaws.com`); `None` for a VCEK.
    pub fn csp_id(&self) -> Option<&str> {
        self.csp_id.as_deref()
    }
    /// The leaf's serial number, hex.
    pub fn leaf_serial(&self) -> &str {
        &self.leaf_serial
    }
    /// Whether the chain ends in AMD's genuine roots (false for custom roots).
    pub fn genuine_roots(&self) -> bool {
        self.genuine_roots
    }
    /// The window in which every certificate of the chain is valid.
    pub fn validity(&self) -> (UnixTime, UnixTime) {
        (self.not_before, self.not_after)
    }

    /// Authenticates a parsed report with this chain at `at`: the chain is
    /// still valid, the report's SIGNING_KEY matches the leaf, its CPUID (if
    /// any) names the chain's product, the signature verifies, REPORTED_TCB
    /// equals the leaf's TCB, CHIP_ID matches a VCEK's hwID (unless
    /// MASK_CHIP_KEY hides it), and every TCB field decodes for the product.
    /// Allocates nothing on success.
    pub fn verify_report<'a>(
        &'a self,
        report: &AttestationReport<'a>,
        at: UnixTime,
        provider: &dyn CryptoProvider,
    ) -> Result<VerifiedReport<'a>, SnpError> {
        if !at.within(self.not_before, self.not_after) {
            return Err(SnpError::ChainNotValidAt {
                not_before: self.not_before,
                not_after: self.not_after,
                at,
            });
        }
        let role = CertRole::leaf(self.key);
        if report.flags.signing_key != self.key {
            return Err(SnpError::SigningKeyMismatch {
                report: report.flags.signing_key,
                certificate: role,
            });
        }
        if let Some(cpuid) = report.cpuid {
            match Product::from_cpuid(cpuid.family, cpuid.model) {
                Some(found) if found == self.product => {}
                Some(found) => {
                    return Err(SnpError::ProductMismatch {
                        expected: self.product,
                        found,
                        source: "report CPUID",
                    });
                }
                None => {
                    return Err(SnpError::UnknownCpuid {
                        family: cpuid.family,
                        model: cpuid.model,
                    });
                }
            }
        }
        let signature = report.signature_fixed_be();
        provider
            .verify_ecdsa(
                EcCurve::P384,
                &self.point,
                report.signed_bytes(),
                &signature,
            )
            .map_err(|_| SnpError::ReportSignature { key: role })?;

        let decode = |field: &'static str, raw: u64| {
            TcbVersion::decode(raw, self.product).map_err(|e| SnpError::TcbReserved {
                field,
                raw,
                product: e.product,
            })
        };
        let reported_tcb = decode("REPORTED_TCB", report.reported_tcb)?;
        for ((component, cert), (_, rep)) in self.tcb.components().zip(reported_tcb.components()) {
            if cert != rep {
                return Err(SnpError::TcbMismatch {
                    role,
                    component,
                    certificate: cert,
                    report: rep,
                });
            }
        }
        if self.tcb.fmc.is_some() != reported_tcb.fmc.is_some() {
            return Err(SnpError::TcbMismatch {
                role,
                component: TcbComponent::Fmc,
                certificate: self.tcb.fmc.unwrap_or(0),
                report: reported_tcb.fmc.unwrap_or(0),
            });
        }
        if self.key == SigningKey::Vcek && !report.flags.mask_chip_key {
            let (prefix, rest) = report.chip_id.split_at(self.hw_id_len.min(64));
            if prefix != self.hw_id() || rest.iter().any(|b| *b != 0) {
                return Err(SnpError::HwIdMismatch {
                    certificate: hex::encode(self.hw_id()),
                    report: hex::encode(report.chip_id),
                });
            }
        }
        Ok(VerifiedReport {
            report: *report,
            chain: self,
            reported_tcb,
            current_tcb: decode("CURRENT_TCB", report.current_tcb)?,
            committed_tcb: decode("COMMITTED_TCB", report.committed_tcb)?,
            launch_tcb: decode("LAUNCH_TCB", report.launch_tcb)?,
        })
    }
}

/// A report authenticated by a [`VerifiedChain`]: borrowed, with the TCBs
/// decoded for the chain's product.
#[derive(Clone, Copy, Debug)]
pub struct VerifiedReport<'a> {
    /// The report.
    pub report: AttestationReport<'a>,
    /// The chain that authenticated it.
    pub chain: &'a VerifiedChain,
    /// REPORTED_TCB, decoded.
    pub reported_tcb: TcbVersion,
    /// CURRENT_TCB, decoded.
    pub current_tcb: TcbVersion,
    /// COMMITTED_TCB, decoded.
    pub committed_tcb: TcbVersion,
    /// LAUNCH_TCB, decoded.
    pub launch_tcb: TcbVersion,
}
