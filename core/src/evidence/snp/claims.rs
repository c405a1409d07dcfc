//! The claims extracted from an authenticated report (the "extract" step),
//! in a form that serializes to JSON for the CLI: byte fields as lowercase
//! hex, TCBs as named parts, the policy and platform info as named bits.

use alloc::string::String;
use core::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::hex::{self, Hex};

use super::chain::VerifiedReport;
use super::policy::{GuestPolicy, GuestPolicyBits, PlatformInfo, PlatformInfoBits, SigningKey};
use super::report::{Cpuid, FirmwareVersion};
use super::tcb::{Product, TcbVersion};

/// A fixed-size byte string that (de)serializes as hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HexBytes<const N: usize>(pub [u8; N]);

impl<const N: usize> fmt::Debug for HexBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Hex(&self.0), f)
    }
}

impl<const N: usize> fmt::Display for HexBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Hex(&self.0), f)
    }
}

impl<const N: usize> Serialize for HexBytes<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&Hex(&self.0))
    }
}

impl<'de, const N: usize> Deserialize<'de> for HexBytes<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<const N: usize>;
        impl<const N: usize> Visitor<'_> for V<N> {
            type Value = HexBytes<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{N} bytes as {} hex digits", 2 * N)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                hex::decode_array::<N>(text)
                    .map(HexBytes)
                    .map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V::<N>)
    }
}

/// A TCB as its raw value and named parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TcbClaim {
    /// The raw little-endian `TCB_VERSION` as 16 hex digits (`0x…`).
    #[serde(serialize_with = "ser_u64_hex")]
    pub raw: u64,
    /// The decoded components.
    pub parts: TcbVersion,
}

fn ser_u64_hex<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:#018x}"))
}

/// CPUID fields of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CpuidClaim {
    /// Family.
    pub family: u8,
    /// Model.
    pub model: u8,
    /// Stepping.
    pub stepping: u8,
}

impl From<Cpuid> for CpuidClaim {
    fn from(c: Cpuid) -> Self {
        Self {
            family: c.family,
            model: c.model,
            stepping: c.stepping,
        }
    }
}

/// Everything an authenticated SEV-SNP report says, plus what the chain
/// adds (product, signing key, csp_id, roots).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SnpClaims {
    /// The CPU generation.
    pub product: Product,
    /// The leaf's productName (`Milan-B0`).
    pub product_name: String,
    /// VCEK or VLEK.
    pub signing_key: SigningKey,
    /// The VLEK's cloud-provider id.
    pub csp_id: Option<String>,
    /// Whether the chain ends in AMD's genuine roots (false: custom roots,
    /// e.g. the insecure simulated TEE).
    pub genuine_roots: bool,
    /// The leaf certificate's serial, hex.
    pub leaf_serial: String,
    /// VERSION.
    pub version: u32,
    /// GUEST_SVN.
    pub guest_svn: u32,
    /// POLICY.
    pub policy: GuestPolicyBits,
    /// FAMILY_ID.
    pub family_id: HexBytes<16>,
    /// IMAGE_ID.
    pub image_id: HexBytes<16>,
    /// VMPL.
    pub vmpl: u32,
    /// SIGNATURE_ALGO.
    pub signature_algo: u32,
    /// PLATFORM_INFO.
    pub platform_info: PlatformInfoBits,
    /// AUTHOR_KEY_EN.
    pub author_key_en: bool,
    /// MASK_CHIP_KEY.
    pub mask_chip_key: bool,
    /// REPORT_DATA.
    pub report_data: HexBytes<64>,
    /// MEASUREMENT.
    pub measurement: HexBytes<48>,
    /// HOST_DATA.
    pub host_data: HexBytes<32>,
    /// ID_KEY_DIGEST.
    pub id_key_digest: HexBytes<48>,
    /// AUTHOR_KEY_DIGEST.
    pub author_key_digest: HexBytes<48>,
    /// REPORT_ID.
    pub report_id: HexBytes<32>,
    /// REPORT_ID_MA.
    pub report_id_ma: HexBytes<32>,
    /// CURRENT_TCB.
    pub current_tcb: TcbClaim,
    /// REPORTED_TCB.
    pub reported_tcb: TcbClaim,
    /// COMMITTED_TCB.
    pub committed_tcb: TcbClaim,
    /// LAUNCH_TCB.
    pub launch_tcb: TcbClaim,
    /// CPUID (v3+).
    pub cpuid: Option<CpuidClaim>,
    /// CHIP_ID.
    pub chip_id: HexBytes<64>,
    /// CURRENT_MAJOR/MINOR/BUILD.
    pub current_version: FirmwareVersion,
    /// COMMITTED_MAJOR/MINOR/BUILD.
    pub committed_version: FirmwareVersion,
    /// LAUNCH_MIT_VECTOR (v5).
    pub launch_mit_vector: Option<u64>,
    /// CURRENT_MIT_VECTOR (v5).
    pub current_mit_vector: Option<u64>,
}

impl SnpClaims {
    /// The raw guest policy.
    pub fn guest_policy(&self) -> GuestPolicy {
        GuestPolicy(self.policy.raw)
    }
    /// The raw platform info.
    pub fn platform(&self) -> PlatformInfo {
        PlatformInfo(self.platform_info.raw)
    }
}

impl From<&VerifiedReport<'_>> for SnpClaims {
    fn from(v: &VerifiedReport<'_>) -> Self {
        let r = &v.report;
        let tcb = |raw: u64, parts: TcbVersion| TcbClaim { raw, parts };
        SnpClaims {
            product: v.chain.product(),
            product_name: String::from(v.chain.product_name()),
            signing_key: r.flags.signing_key,
            csp_id: v.chain.csp_id().map(String::from),
            genuine_roots: v.chain.genuine_roots(),
            leaf_serial: String::from(v.chain.leaf_serial()),
            version: r.version,
            guest_svn: r.guest_svn,
            policy: r.policy.into(),
            family_id: HexBytes(*r.family_id),
            image_id: HexBytes(*r.image_id),
            vmpl: r.vmpl,
            signature_algo: r.signature_algo,
            platform_info: r.platform_info.into(),
            author_key_en: r.flags.author_key_en,
            mask_chip_key: r.flags.mask_chip_key,
            report_data: HexBytes(*r.report_data),
            measurement: HexBytes(*r.measurement),
            host_data: HexBytes(*r.host_data),
            id_key_digest: HexBytes(*r.id_key_digest),
            author_key_digest: HexBytes(*r.author_key_digest),
            report_id: HexBytes(*r.report_id),
            report_id_ma: HexBytes(*r.report_id_ma),
            current_tcb: tcb(r.current_tcb, v.current_tcb),
            reported_tcb: tcb(r.reported_tcb, v.reported_tcb),
            committed_tcb: tcb(r.committed_tcb, v.committed_tcb),
            launch_tcb: tcb(r.launch_tcb, v.launch_tcb),
            cpuid: r.cpuid.map(CpuidClaim::from),
            chip_id: HexBytes(*r.chip_id),
            current_version: r.current_version,
            committed_version: r.committed_version,
            launch_mit_vector: r.launch_mit_vector,
            current_mit_vector: r.current_mit_vector,
        }
    }
}
