//! AMD's trust anchors, embedded, and caller-supplied test roots.
//!
//! The genuine ARK (AMD Root Key), ASK (AMD SEV Key, signs VCEKs) and ASVK
//! (AMD SEV VLEK Key, signs VLEKs) of each product are compiled in as DER
//! (`roots/<product>-{ark,ask,asvk}.der`, converted from the PEMs AMD's Key
//! Distribution Service publishes at
//! `https://kdsintf.amd.com/vcek/v1/<product>/cert_chain` and `.../vlek/v1/...`).
//! Each is pinned by the SHA-256 of its DER; [`TrustRoots::genuine`] checks
//! the pin every time it hands out a root, and the tests check that each ARK
//! is self-signed and each ASK/ASVK is signed by its ARK.
//!
//! [`TrustRoots::custom`] replaces the genuine anchors with the caller's (for
//! the simulated TEE); it is used only when passed explicitly.

use crate::crypto::CryptoProvider;

use super::error::{CertRole, SnpError};
use super::policy::SigningKey;
use super::tcb::Product;

/// An embedded certificate with its pinned fingerprint.
#[derive(Clone, Copy, Debug)]
pub struct PinnedCert {
    /// Which certificate.
    pub role: CertRole,
    /// Which product.
    pub product: Product,
    /// The DER.
    pub der: &'static [u8],
    /// SHA-256 of `der`, lowercase hex.
    pub sha256: &'static str,
}

macro_rules! pinned {
    ($role:ident, $product:ident, $file:literal, $hex:literal) => {
        PinnedCert {
            role: CertRole::$role,
            product: Product::$product,
            der: include_bytes!(concat!("roots/", $file)),
            sha256: $hex,
        }
    };
}

/// Every embedded AMD certificate, with its pin.
pub const GENUINE: [PinnedCert; 9] = [
    pinned!(
        Ark,
        Milan,
        "milan-ark.der",
        "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd"
    ),
    pinned!(
        Ask,
        Milan,
        "milan-ask.der",
        "67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b"
    ),
    pinned!(
        Asvk,
        Milan,
        "milan-asvk.der",
        "c5e081f59b7efab1fe2f8b505e159704e72f29cab7ef7cf628a05a42439082f5"
    ),
    pinned!(
        Ark,
        Genoa,
        "genoa-ark.der",
        "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1"
    ),
    pinned!(
        Ask,
        Genoa,
        "genoa-ask.der",
        "5464738c1546aed5f2cecf1dc98c5c960a92e8913238a61711bc90ec6e828521"
    ),
    pinned!(
        Asvk,
        Genoa,
        "genoa-asvk.der",
        "197e610743a917d6b9bb982a5a9226ccc0a15b611be0619e626aca9151457372"
    ),
    pinned!(
        Ark,
        Turin,
        "turin-ark.der",
        "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a"
    ),
    pinned!(
        Ask,
        Turin,
        "turin-ask.der",
        "5b77ef5fe7a7a004fd9032668fba9d0fda22f88c4442069a479636a6ae3b3185"
    ),
    pinned!(
        Asvk,
        Turin,
        "turin-asvk.der",
        "104e10a8bd060a3c20a434261a57d0588fd65a88915b4f65b08bdecaf8df1a3c"
    ),
];

/// The trust anchors a chain is verified against.
#[derive(Clone, Copy, Debug)]
pub enum TrustRoots<'r> {
    /// AMD's genuine, embedded ARK/ASK/ASVK, chosen by product.
    Genuine,
    /// Caller-supplied anchors (the simulated TEE). They replace the genuine
    /// ones for every product; the ARK must be self-signed.
    Custom {
        /// The root (DER).
        ark: &'r [u8],
        /// The VCEK intermediate (DER).
        ask: &'r [u8],
        /// The VLEK intermediate (DER), if VLEKs are to be accepted.
        asvk: Option<&'r [u8]>,
    },
}

impl<'r> TrustRoots<'r> {
    /// AMD's genuine roots.
    pub const fn genuine() -> Self {
        TrustRoots::Genuine
    }

    /// Caller-supplied ARK and ASK (DER); VLEKs are refused.
    pub const fn custom(ark_der: &'r [u8], ask_der: &'r [u8]) -> Self {
        TrustRoots::Custom {
            ark: ark_der,
            ask: ask_der,
            asvk: None,
        }
    }

    /// Caller-supplied ARK, ASK and ASVK (DER).
    pub const fn custom_with_asvk(
        ark_der: &'r [u8],
        ask_der: &'r [u8],
        asvk_der: &'r [u8],
    ) -> Self {
        TrustRoots::Custom {
            ark: ark_der,
            ask: ask_der,
            asvk: Some(asvk_der),
        }
    }

    /// Whether these are AMD's genuine roots.
    pub const fn is_genuine(&self) -> bool {
        matches!(self, TrustRoots::Genuine)
    }

    /// The DER of the certificate with `role` for `product`. Genuine roots
    /// are checked against their pins.
    pub fn get(
        &self,
        product: Product,
        role: CertRole,
        provider: &dyn CryptoProvider,
    ) -> Result<&'r [u8], SnpError> {
        match self {
            TrustRoots::Genuine => {
                let pinned = GENUINE
                    .iter()
                    .find(|p| p.product == product && p.role == role)
                    .ok_or(SnpError::MissingRoot { role, product })?;
                if crate::hex::decode_array::<32>(pinned.sha256).ok()
                    != Some(provider.sha256(&[pinned.der]))
                {
                    return Err(SnpError::RootPin { role, product });
                }
                Ok(pinned.der)
            }
            TrustRoots::Custom { ark, ask, asvk } => match role {
                CertRole::Ark => Ok(ark),
                CertRole::Ask => Ok(ask),
                CertRole::Asvk => asvk.ok_or(SnpError::MissingRoot { role, product }),
                CertRole::Vcek | CertRole::Vlek => Err(SnpError::MissingRoot { role, product }),
            },
        }
    }

    /// The ARK and the intermediate that issues `key`.
    pub fn anchors(
        &self,
        product: Product,
        key: SigningKey,
        provider: &dyn CryptoProvider,
    ) -> Result<(&'r [u8], &'r [u8]), SnpError> {
        Ok((
            self.get(product, CertRole::Ark, provider)?,
            self.get(product, CertRole::intermediate(key), provider)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::all_providers;
    use crate::x509::Certificate;

    #[test]
    fn pins_match_and_roots_chain() {
        for provider in all_providers() {
            for pinned in &GENUINE {
                assert_eq!(
                    crate::hex::encode(&provider.sha256(&[pinned.der])),
                    pinned.sha256,
                    "{:?} {:?}",
                    pinned.product,
                    pinned.role
                );
            }
            for product in Product::ALL {
                let ark_der = TrustRoots::genuine()
                    .get(product, CertRole::Ark, *provider)
                    .unwrap();
                let ark = Certificate::from_der(ark_der).unwrap();
                assert_eq!(
                    ark.subject_common_name(),
                    Some(alloc::format!("ARK-{product}").as_str())
                );
                ark.verify_issued_by(&ark, *provider).unwrap();
                for (role, cn) in [
                    (CertRole::Ask, alloc::format!("SEV-{product}")),
                    (CertRole::Asvk, alloc::format!("SEV-VLEK-{product}")),
                ] {
                    let der = TrustRoots::genuine().get(product, role, *provider).unwrap();
                    let cert = Certificate::from_der(der).unwrap();
                    assert_eq!(cert.subject_common_name(), Some(cn.as_str()));
                    cert.verify_issued_by(&ark, *provider).unwrap();
                    // Not signed by another product's ARK.
                    for other in Product::ALL.into_iter().filter(|p| *p != product) {
                        let other_ark = Certificate::from_der(
                            TrustRoots::genuine()
                                .get(other, CertRole::Ark, *provider)
                                .unwrap(),
                        )
                        .unwrap();
                        assert!(cert.verify_issued_by(&other_ark, *provider).is_err());
                    }
                }
            }
        }
    }

    #[test]
    fn custom_roots_replace_genuine() {
        let p = all_providers()[0];
        let roots = TrustRoots::custom(b"ark", b"ask");
        assert!(!roots.is_genuine());
        assert_eq!(roots.get(Product::Milan, CertRole::Ark, p).unwrap(), b"ark");
        assert_eq!(
            roots.anchors(Product::Turin, SigningKey::Vcek, p).unwrap(),
            (&b"ark"[..], &b"ask"[..])
        );
        assert!(matches!(
            roots.anchors(Product::Turin, SigningKey::Vlek, p),
            Err(SnpError::MissingRoot { .. })
        ));
    }
}
