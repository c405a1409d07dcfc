//! What a verification needs from a vendor: [`CollateralRequest`].
//!
//! A [`ServiceVerifier`](super::ServiceVerifier) lists requests in
//! [`needs`](super::ServiceVerifier::needs); the untrusted side (the host
//! shim, or the CLI's fetcher) turns each into a download from AMD's KDS
//! or Intel's PCS (or a PCCS, or a cache) and hands the bytes back through
//! [`offer`](super::ServiceVerifier::offer). A request only says *what*
//! is wanted; it carries no trust: whatever comes back is authenticated by
//! the vendor's signature before it is kept.
//!
//! The type is serde-serializable with a stable shape (externally tagged
//! enum, fixed-size fields), so it travels in postcard frames over the shim
//! channel and in JSON in logs. `hw_id` is bytes in binary formats and hex
//! in human-readable ones.

use core::fmt;

use serde::{Deserialize, Serialize};

use super::snp::{Product, SigningKey};

/// Which SEV-SNP signing key a chain or CRL is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SnpSigner {
    /// Versioned Chip Endorsement Key (issued by the ASK): KDS `/vcek/v1/`.
    Vcek,
    /// Versioned Loaded Endorsement Key (issued by the ASVK): KDS `/vlek/v1/`.
    Vlek,
}

impl From<SigningKey> for SnpSigner {
    fn from(key: SigningKey) -> Self {
        match key {
            SigningKey::Vcek => Self::Vcek,
            SigningKey::Vlek => Self::Vlek,
        }
    }
}

impl fmt::Display for SnpSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Vcek => "VCEK",
            Self::Vlek => "VLEK",
        })
    }
}

/// Which Intel PCK CA issued a platform's PCK certificate (the `ca`
/// parameter of the PCS `pckcrl` request).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TdxCa {
    /// Intel SGX PCK Platform CA (`ca=platform`, multi-package platforms).
    Platform,
    /// Intel SGX PCK Processor CA (`ca=processor`).
    Processor,
}

impl TdxCa {
    /// The CA of a certificate issuer's (or subject's) common name.
    pub fn from_common_name(cn: &str) -> Option<Self> {
        match cn {
            "Intel SGX PCK Platform CA" => Some(Self::Platform),
            "Intel SGX PCK Processor CA" => Some(Self::Processor),
            _ => None,
        }
    }

    /// The PCS query value: `platform` or `processor`.
    pub fn as_query(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::Processor => "processor",
        }
    }
}

/// A chip's hardware id as KDS takes it: 64 bytes (Turin uses the first
/// 8, the rest zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HwId(pub [u8; 64]);

impl HwId {
    /// The id as KDS's URL takes it: the product's length of it (64 bytes,
    /// 8 for Turin).
    pub fn for_product(&self, product: Product) -> &[u8] {
        self.0.get(..product.hw_id_len()).unwrap_or(&self.0)
    }
}

impl Serialize for HwId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&crate::hex::encode(&self.0))
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for HwId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = HwId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 64-byte hwID (bytes, or 128 hex digits)")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<HwId, E> {
                bytes
                    .try_into()
                    .map(HwId)
                    .map_err(|_| E::invalid_length(bytes.len(), &self))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<HwId, E> {
                crate::hex::decode_array(text)
                    .map(HwId)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(text), &self))
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(Visitor)
        } else {
            deserializer.deserialize_bytes(Visitor)
        }
    }
}

/// One piece of vendor collateral a verification needs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CollateralRequest {
    /// The VCEK of one chip at one TCB: KDS
    /// `/vcek/v1/{product}/{hwid}?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..`
    /// (and `fmcSPL` for Turin). Answer: the certificate, DER or PEM.
    /// (VLEKs are provisioned by the cloud provider, not fetchable by
    /// hwID, and must come with the evidence.)
    SnpVcek {
        /// The chip's product.
        product: Product,
        /// The report's CHIP_ID.
        hw_id: HwId,
        /// The report's REPORTED_TCB, raw (decode it with
        /// [`TcbVersion::decode`](super::snp::TcbVersion::decode) for the
        /// product to build the query).
        tcb: u64,
    },
    /// The ASK/ASVK and ARK: KDS `/{vcek|vlek}/v1/{product}/cert_chain`.
    /// Informational: accord verifies against its pinned roots.
    SnpChain {
        /// The product.
        product: Product,
        /// VCEK chain (ASK) or VLEK chain (ASVK).
        signer: SnpSigner,
    },
    /// The ARK-signed CRL: KDS `/{vcek|vlek}/v1/{product}/crl`. Answer: DER.
    SnpCrl {
        /// The product.
        product: Product,
        /// The VCEK CRL or the VLEK CRL.
        signer: SnpSigner,
    },
    /// The TDX collateral of one FMSPC: PCS v4 `/tdx/certification/v4/tcb?fmspc=`,
    /// `/tdx/certification/v4/qe/identity`, `/sgx/certification/v4/pckcrl?ca=`
    /// (with its `SGX-PCK-CRL-Issuer-Chain` header) and the root CA CRL.
    /// Answer: [`Collateral`](super::tdx::Collateral) JSON, e.g. built with
    /// [`Collateral::from_pcs_parts`](super::tdx::Collateral::from_pcs_parts).
    TdxCollateral {
        /// The platform's FMSPC (from its PCK certificate).
        fmspc: [u8; 6],
        /// The CA that issued the platform's PCK certificate.
        ca: TdxCa,
    },
}

impl fmt::Display for CollateralRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SnpVcek {
                product,
                hw_id,
                tcb,
            } => {
                let id = crate::hex::encode(hw_id.for_product(*product));
                let short = id.get(..16).unwrap_or(&id);
                write!(f, "the VCEK of {product} chip {short}… at TCB {tcb:#018x}")
            }
            Self::SnpChain { product, signer } => {
                let inter = match signer {
                    SnpSigner::Vcek => "ASK",
                    SnpSigner::Vlek => "ASVK",
                };
                write!(f, "the {inter} and ARK of {product}")
            }
            Self::SnpCrl { product, signer } => write!(f, "the {signer} CRL of {product}"),
            Self::TdxCollateral { fmspc, ca } => write!(
                f,
                "TDX collateral for FMSPC {} ({} CA)",
                crate::hex::encode(fmspc),
                ca.as_query()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn requests_name_what_they_want() {
        assert_eq!(
            CollateralRequest::SnpCrl {
                product: Product::Milan,
                signer: SnpSigner::Vcek
            }
            .to_string(),
            "the VCEK CRL of Milan"
        );
        assert_eq!(
            CollateralRequest::TdxCollateral {
                fmspc: [0x90, 0xc0, 0x6f, 0, 0, 0],
                ca: TdxCa::Platform
            }
            .to_string(),
            "TDX collateral for FMSPC 90c06f000000 (platform CA)"
        );
        assert_eq!(
            CollateralRequest::SnpChain {
                product: Product::Turin,
                signer: SnpSigner::Vlek
            }
            .to_string(),
            "the ASVK and ARK of Turin"
        );
        let vcek = CollateralRequest::SnpVcek {
            product: Product::Genoa,
            hw_id: HwId([0xab; 64]),
            tcb: 0x7308_0000_0000_0003,
        };
        assert_eq!(
            vcek.to_string(),
            "the VCEK of Genoa chip abababababababab… at TCB 0x7308000000000003"
        );
    }

    #[test]
    fn requests_round_trip_through_postcard_and_json() {
        let requests = [
            CollateralRequest::SnpVcek {
                product: Product::Turin,
                hw_id: HwId([7; 64]),
                tcb: 42,
            },
            CollateralRequest::SnpChain {
                product: Product::Milan,
                signer: SnpSigner::Vlek,
            },
            CollateralRequest::SnpCrl {
                product: Product::Genoa,
                signer: SnpSigner::Vcek,
            },
            CollateralRequest::TdxCollateral {
                fmspc: [1, 2, 3, 4, 5, 6],
                ca: TdxCa::Processor,
            },
        ];
        for request in requests {
            let bytes = postcard::to_allocvec(&request).unwrap();
            assert_eq!(
                postcard::from_bytes::<CollateralRequest>(&bytes).unwrap(),
                request
            );
            let json = serde_json::to_string(&request).unwrap();
            assert_eq!(
                serde_json::from_str::<CollateralRequest>(&json).unwrap(),
                request
            );
        }
        // A short hwID is refused.
        assert!(serde_json::from_str::<HwId>("\"abcd\"").is_err());
        assert!(postcard::from_bytes::<HwId>(&[2, 1, 2]).is_err());
    }
}
