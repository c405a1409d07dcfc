//! What can be fetched ([`Item`]): its URL under AMD's KDS or Intel's PCS
//! v4 scheme, the cache key that says what it covers, and the validity
//! window read with core's parsers (certificate notBefore/notAfter, CRL
//! thisUpdate/nextUpdate, TCB info and QE identity issueDate/nextUpdate).
//!
//! URL shapes (AMD publication 57230, "Versioned Chip Endorsement Key (VCEK)
//! Certificate and KDS Interface Specification"; Intel "Provisioning
//! Certification Service API" v4):
//!
//! | item | path under the base URL |
//! |---|---|
//! | VCEK | `/vcek/v1/{product}/{hwID}?blSPL=&teeSPL=&snpSPL=&ucodeSPL=` (Turin: `fmcSPL=` first, hwID 8 bytes) |
//! | ASK+ARK / ASVK+ARK | `/vcek/v1/{product}/cert_chain`, `/vlek/v1/{product}/cert_chain` |
//! | VCEK / VLEK CRL | `/vcek/v1/{product}/crl`, `/vlek/v1/{product}/crl` |
//! | TDX TCB info | `/tdx/certification/v4/tcb?fmspc=` (chain: `TCB-Info-Issuer-Chain`) |
//! | TD QE identity | `/tdx/certification/v4/qe/identity` (chain: `SGX-Enclave-Identity-Issuer-Chain`) |
//! | PCK CRL | `/sgx/certification/v4/pckcrl?ca=platform\|processor&encoding=der` (chain: `SGX-PCK-CRL-Issuer-Chain`) |
//! | Root CA CRL | Intel: `https://certificates.trustedservices.intel.com/IntelSGXRootCA.der` (the root's CRL distribution point); a PCCS: `/sgx/certification/v4/rootcacrl` |

use std::fmt;

use accord_core::evidence::snp::{Product, TcbVersion};
use accord_core::evidence::tdx::{QeIdentity, TcbInfo};
use accord_core::hex;
use accord_core::time::UnixTime;
use accord_core::x509::{Certificate, Crl, pem};

/// AMD's KDS.
pub const DEFAULT_KDS_URL: &str = "https://kdsintf.amd.com";
/// Intel's PCS.
pub const DEFAULT_PCS_URL: &str = "https://api.trustedservices.intel.com";
/// Where Intel publishes the SGX Root CA CRL (the root certificate's CRL
/// distribution point); used when the PCS base is Intel's own.
pub const INTEL_ROOT_CA_CRL_URL: &str =
    "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";

/// The services' base URLs (no trailing `/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// AMD KDS (or a mirror serving the same paths).
    pub kds: String,
    /// Intel PCS, or a PCCS serving the same v4 paths.
    pub pcs: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self::new(DEFAULT_KDS_URL, DEFAULT_PCS_URL)
    }
}

impl Endpoints {
    /// Endpoints with these bases (a trailing `/` is dropped).
    pub fn new(kds: &str, pcs: &str) -> Self {
        Self {
            kds: kds.trim_end_matches('/').to_owned(),
            pcs: pcs.trim_end_matches('/').to_owned(),
        }
    }
}

/// Which AMD key family: the VCEK (per chip) or the VLEK (per cloud
/// provider).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// Versioned Chip Endorsement Key, under the ASK.
    Vcek,
    /// Versioned Loaded Endorsement Key, under the ASVK.
    Vlek,
}

impl KeyKind {
    /// The KDS path segment and cache name: `vcek` or `vlek`.
    pub const fn segment(self) -> &'static str {
        match self {
            KeyKind::Vcek => "vcek",
            KeyKind::Vlek => "vlek",
        }
    }

    const fn upper(self) -> &'static str {
        match self {
            KeyKind::Vcek => "VCEK",
            KeyKind::Vlek => "VLEK",
        }
    }
}

/// Which Intel PCK CA issued the PCK certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PckCa {
    /// Intel SGX PCK Platform CA (multi-package platforms; all TDX hosts
    /// seen so far).
    Platform,
    /// Intel SGX PCK Processor CA.
    Processor,
}

impl PckCa {
    /// The `ca=` value.
    pub const fn name(self) -> &'static str {
        match self {
            PckCa::Platform => "platform",
            PckCa::Processor => "processor",
        }
    }

    /// The CA that issued a PCK certificate, by its issuer common name.
    pub fn from_issuer_common_name(name: &str) -> Option<Self> {
        if name.contains("Processor") {
            Some(PckCa::Processor)
        } else if name.contains("Platform") {
            Some(PckCa::Platform)
        } else {
            None
        }
    }
}

/// One piece of collateral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// The VCEK of a chip at a reported TCB.
    Vcek {
        /// The CPU generation.
        product: Product,
        /// The report's hardware id (`AttestationReport::hw_id`: 64 bytes,
        /// Turin 8).
        hw_id: Vec<u8>,
        /// The report's REPORTED_TCB, decoded for `product`.
        tcb: TcbVersion,
    },
    /// The intermediate and root (ASK+ARK or ASVK+ARK), PEM.
    CertChain {
        /// VCEK chain or VLEK chain.
        key: KeyKind,
        /// The CPU generation.
        product: Product,
    },
    /// The CRL the product's ARK issues for its VCEK or VLEK chain.
    Crl {
        /// VCEK CRL or VLEK CRL.
        key: KeyKind,
        /// The CPU generation.
        product: Product,
    },
    /// The TDX TCB info of an FMSPC (the PCS response body).
    TcbInfo {
        /// The platform's FMSPC (from the PCK certificate).
        fmspc: [u8; 6],
    },
    /// The TD QE identity (the PCS response body).
    QeIdentity,
    /// The PCK CRL of one PCK CA (DER).
    PckCrl {
        /// The CA.
        ca: PckCa,
    },
    /// The Intel SGX Root CA CRL (DER).
    RootCaCrl,
}

/// When an item may be used, from its own dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// notBefore, thisUpdate or issueDate.
    pub not_before: UnixTime,
    /// notAfter or nextUpdate.
    pub not_after: UnixTime,
    /// Whether the vendor reissues it before `not_after` (CRLs, TCB info, QE
    /// identity), so that the cache refreshes it ahead of time.
    pub reissued: bool,
}

impl Validity {
    /// Whether `at` is inside the window (`not_after` excluded).
    pub fn contains(&self, at: UnixTime) -> bool {
        self.not_before <= at && at < self.not_after
    }

    /// Whether the cache should try the vendor for a newer copy at `at`:
    /// a reissued document with less than a quarter of its window, or 24 h,
    /// left (whichever is more).
    pub fn needs_refresh(&self, at: UnixTime) -> bool {
        if !self.reissued {
            return false;
        }
        let window = self.not_after.0.saturating_sub(self.not_before.0);
        let margin = (window / 4).max(24 * 3600);
        self.not_after.0.saturating_sub(at.0) < margin
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Vcek {
                product,
                hw_id,
                tcb,
            } => {
                let hw = hex::encode(hw_id);
                let short = hw.get(..16).unwrap_or(&hw);
                write!(f, "the VCEK of {product} chip {short}… at TCB {tcb}")
            }
            Item::CertChain { key, product } => {
                write!(f, "the {} certificate chain for {product}", key.upper())
            }
            Item::Crl { key, product } => write!(f, "the {} CRL for {product}", key.upper()),
            Item::TcbInfo { fmspc } => {
                write!(f, "the TDX TCB info for FMSPC {}", hex::encode(fmspc))
            }
            Item::QeIdentity => f.write_str("the TD QE identity"),
            Item::PckCrl { ca } => write!(f, "the PCK {} CA CRL", ca.name()),
            Item::RootCaCrl => f.write_str("the Intel SGX Root CA CRL"),
        }
    }
}

impl Item {
    /// The service it comes from, for messages: `KDS` or `PCS`.
    pub fn vendor(&self) -> &'static str {
        match self {
            Item::Vcek { .. } | Item::CertChain { .. } | Item::Crl { .. } => "KDS",
            _ => "PCS",
        }
    }

    /// Its URL under `endpoints`.
    pub fn url(&self, endpoints: &Endpoints) -> String {
        let kds = &endpoints.kds;
        let pcs = &endpoints.pcs;
        match self {
            Item::Vcek {
                product,
                hw_id,
                tcb,
            } => {
                let fmc = match (product.has_fmc(), tcb.fmc) {
                    (true, fmc) => format!("fmcSPL={}&", fmc.unwrap_or(0)),
                    (false, _) => String::new(),
                };
                format!(
                    "{kds}/vcek/v1/{product}/{}?{fmc}blSPL={}&teeSPL={}&snpSPL={}&ucodeSPL={}",
                    hex::encode(hw_id),
                    tcb.bootloader,
                    tcb.tee,
                    tcb.snp,
                    tcb.microcode
                )
            }
            Item::CertChain { key, product } => {
                format!("{kds}/{}/v1/{product}/cert_chain", key.segment())
            }
            Item::Crl { key, product } => format!("{kds}/{}/v1/{product}/crl", key.segment()),
            Item::TcbInfo { fmspc } => {
                format!(
                    "{pcs}/tdx/certification/v4/tcb?fmspc={}",
                    hex::encode(fmspc)
                )
            }
            Item::QeIdentity => format!("{pcs}/tdx/certification/v4/qe/identity"),
            Item::PckCrl { ca } => format!(
                "{pcs}/sgx/certification/v4/pckcrl?ca={}&encoding=der",
                ca.name()
            ),
            Item::RootCaCrl if pcs == DEFAULT_PCS_URL => INTEL_ROOT_CA_CRL_URL.to_owned(),
            Item::RootCaCrl => format!("{pcs}/sgx/certification/v4/rootcacrl"),
        }
    }

    /// The cache path (relative, `/`-separated) of what it covers.
    pub fn cache_key(&self) -> String {
        match self {
            Item::Vcek {
                product,
                hw_id,
                tcb,
            } => format!(
                "kds/vcek/{product}/{}/{:016x}.der",
                hex::encode(hw_id),
                tcb.encode(*product)
            ),
            Item::CertChain { key, product } => {
                format!("kds/chain/{}/{product}.pem", key.segment())
            }
            Item::Crl { key, product } => format!("kds/crl/{}/{product}.der", key.segment()),
            Item::TcbInfo { fmspc } => format!("pcs/tdx/{}/tcbinfo.json", hex::encode(fmspc)),
            Item::QeIdentity => "pcs/tdx/qe-identity.json".to_owned(),
            Item::PckCrl { ca } => format!("pcs/pckcrl/{}.der", ca.name()),
            Item::RootCaCrl => "pcs/rootcacrl.der".to_owned(),
        }
    }

    /// The response headers that carry the signer's chain (URL-encoded
    /// PEM), if the item comes with one: the PCS v4 name first, then the
    /// older one.
    pub fn issuer_chain_headers(&self) -> &'static [&'static str] {
        match self {
            Item::TcbInfo { .. } => &["TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"],
            Item::QeIdentity => &["SGX-Enclave-Identity-Issuer-Chain"],
            Item::PckCrl { .. } => &["SGX-PCK-CRL-Issuer-Chain"],
            _ => &[],
        }
    }

    /// The body in the form the cache keeps and core takes: DER for
    /// certificates and CRLs (a PCCS may answer PEM or hex), the verbatim
    /// text otherwise. Structure only: no signature is checked here.
    pub fn normalize(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            Item::Vcek { .. } => pem::der_or_pem(body, "CERTIFICATE")
                .map_err(|err| format!("not a certificate ({err})")),
            Item::Crl { .. } | Item::PckCrl { .. } | Item::RootCaCrl => crl_der(body),
            Item::CertChain { .. } | Item::TcbInfo { .. } | Item::QeIdentity => Ok(body.to_vec()),
        }
    }

    /// The validity window of a normalized body, read with core's parsers;
    /// an error if the body does not parse.
    pub fn validity(&self, body: &[u8]) -> Result<Validity, String> {
        match self {
            Item::Vcek { .. } => {
                let cert = Certificate::from_der(body)
                    .map_err(|err| format!("not a certificate ({err})"))?;
                Ok(Validity {
                    not_before: cert.not_before(),
                    not_after: cert.not_after(),
                    reissued: false,
                })
            }
            Item::CertChain { .. } => {
                let text = std::str::from_utf8(body).map_err(|_| "not a PEM chain".to_owned())?;
                let ders = pem::decode_all(text, "CERTIFICATE")
                    .map_err(|err| format!("not a PEM chain ({err})"))?;
                if ders.len() != 2 {
                    return Err(format!("{} certificates, expected 2", ders.len()));
                }
                let mut window = Validity {
                    not_before: UnixTime(i64::MIN),
                    not_after: UnixTime(i64::MAX),
                    reissued: false,
                };
                for der in &ders {
                    let cert = Certificate::from_der(der)
                        .map_err(|err| format!("not a certificate ({err})"))?;
                    window.not_before = window.not_before.max(cert.not_before());
                    window.not_after = window.not_after.min(cert.not_after());
                }
                Ok(window)
            }
            Item::Crl { .. } | Item::PckCrl { .. } | Item::RootCaCrl => {
                let crl = Crl::from_der(body).map_err(|err| format!("not a CRL ({err})"))?;
                let next = crl
                    .next_update()
                    .ok_or_else(|| "a CRL without nextUpdate".to_owned())?;
                Ok(Validity {
                    not_before: crl.this_update(),
                    not_after: next,
                    reissued: true,
                })
            }
            Item::TcbInfo { .. } => {
                let signed = signed_member(body, "tcbInfo")?;
                let info =
                    TcbInfo::parse(&signed).map_err(|err| format!("not a TDX TCB info ({err})"))?;
                Ok(Validity {
                    not_before: info.issue_date,
                    not_after: info.next_update,
                    reissued: true,
                })
            }
            Item::QeIdentity => {
                let signed = signed_member(body, "enclaveIdentity")?;
                let identity = QeIdentity::parse(&signed)
                    .map_err(|err| format!("not a TD QE identity ({err})"))?;
                Ok(Validity {
                    not_before: identity.issue_date,
                    not_after: identity.next_update,
                    reissued: true,
                })
            }
        }
    }
}

/// The `key` member of a PCS response envelope, as JSON text (for reading
/// its dates only: the signed bytes are cut out by core's
/// `Collateral::from_pcs_parts`).
fn signed_member(body: &[u8], key: &str) -> Result<String, String> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| format!("not a PCS `{key}` response (not JSON)"))?;
    value
        .get(key)
        .map(ToString::to_string)
        .ok_or_else(|| format!("not a PCS `{key}` response"))
}

/// DER from a CRL answered as DER, PEM or hex text (PCCS versions differ).
fn crl_der(body: &[u8]) -> Result<Vec<u8>, String> {
    if body.first() == Some(&0x30) {
        return Ok(body.to_vec());
    }
    let text = std::str::from_utf8(body).map_err(|_| "not a DER, PEM or hex CRL".to_owned())?;
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        return pem::der_or_pem(text.as_bytes(), "X509 CRL")
            .map_err(|err| format!("not a CRL ({err})"));
    }
    hex::decode(text).map_err(|_| "not a DER, PEM or hex CRL".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcb(fmc: Option<u8>) -> TcbVersion {
        TcbVersion {
            fmc,
            bootloader: 2,
            tee: 0,
            snp: 5,
            microcode: 68,
        }
    }

    #[test]
    fn kds_urls_follow_the_published_scheme() {
        let ep = Endpoints::new("https://kds.example/", "https://pcs.example");
        let milan = Item::Vcek {
            product: Product::Milan,
            hw_id: vec![0xab; 64],
            tcb: tcb(None),
        };
        assert_eq!(
            milan.url(&ep),
            format!(
                "https://kds.example/vcek/v1/Milan/{}?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68",
                "ab".repeat(64)
            )
        );
        let turin = Item::Vcek {
            product: Product::Turin,
            hw_id: vec![0x01; 8],
            tcb: tcb(Some(1)),
        };
        assert_eq!(
            turin.url(&ep),
            "https://kds.example/vcek/v1/Turin/0101010101010101?fmcSPL=1&blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68"
        );
        let crl = Item::Crl {
            key: KeyKind::Vlek,
            product: Product::Genoa,
        };
        assert_eq!(crl.url(&ep), "https://kds.example/vlek/v1/Genoa/crl");
        let chain = Item::CertChain {
            key: KeyKind::Vcek,
            product: Product::Milan,
        };
        assert_eq!(
            chain.url(&ep),
            "https://kds.example/vcek/v1/Milan/cert_chain"
        );
    }

    #[test]
    fn pcs_urls_follow_the_v4_api() {
        let ep = Endpoints::new("https://kds.example", "https://pccs.example:8081");
        assert_eq!(
            Item::TcbInfo {
                fmspc: [0x90, 0xc0, 0x6f, 0, 0, 0]
            }
            .url(&ep),
            "https://pccs.example:8081/tdx/certification/v4/tcb?fmspc=90c06f000000"
        );
        assert_eq!(
            Item::QeIdentity.url(&ep),
            "https://pccs.example:8081/tdx/certification/v4/qe/identity"
        );
        assert_eq!(
            Item::PckCrl {
                ca: PckCa::Processor
            }
            .url(&ep),
            "https://pccs.example:8081/sgx/certification/v4/pckcrl?ca=processor&encoding=der"
        );
        assert_eq!(
            Item::RootCaCrl.url(&ep),
            "https://pccs.example:8081/sgx/certification/v4/rootcacrl"
        );
        assert_eq!(
            Item::RootCaCrl.url(&Endpoints::default()),
            INTEL_ROOT_CA_CRL_URL
        );
    }

    #[test]
    fn refresh_margin_is_a_quarter_of_the_window_or_a_day() {
        let thirty_days = Validity {
            not_before: UnixTime(0),
            not_after: UnixTime(30 * 86_400),
            reissued: true,
        };
        assert!(!thirty_days.needs_refresh(UnixTime(22 * 86_400)));
        assert!(thirty_days.needs_refresh(UnixTime(23 * 86_400)));
        let two_days = Validity {
            not_after: UnixTime(2 * 86_400),
            ..thirty_days
        };
        assert!(!two_days.needs_refresh(UnixTime(86_399)));
        assert!(two_days.needs_refresh(UnixTime(86_401)));
        let cert = Validity {
            reissued: false,
            ..thirty_days
        };
        assert!(!cert.needs_refresh(UnixTime(30 * 86_400 - 1)));
        assert!(thirty_days.contains(UnixTime(0)));
        assert!(!thirty_days.contains(UnixTime(30 * 86_400)));
    }

    #[test]
    fn crl_bodies_are_accepted_as_der_pem_or_hex() {
        assert_eq!(crl_der(&[0x30, 1, 2]).unwrap(), vec![0x30, 1, 2]);
        assert_eq!(crl_der(b"300102\n").unwrap(), vec![0x30, 1, 2]);
        assert!(crl_der(b"<html>").is_err());
    }
}
