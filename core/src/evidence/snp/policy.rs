//! Bit fields of the report: `GUEST_POLICY`, `PLATFORM_INFO` and the key
//! flags word at offset 48h.
//!
//! Layouts follow the SEV-SNP Firmware ABI Specification (publication 56860,
//! rev. 1.57/1.58): the "Guest Policy Structure" table (numbered Table 7, 9
//! or 10 depending on the revision), and the `PLATFORM_INFO` and flags rows
//! of the "ATTESTATION_REPORT Structure" table (Table 23 in rev. 1.57/1.58;
//! Table 21 or 22 in older revisions).

use core::fmt;

use serde::Serialize;

/// `GUEST_POLICY`: what the guest owner allowed at launch.
///
/// | bits | field |
/// |---|---|
/// | 7:0 | ABI_MINOR (minimum firmware ABI minor) |
/// | 15:8 | ABI_MAJOR (minimum firmware ABI major) |
/// | 16 | SMT allowed |
/// | 17 | reserved, must be one |
/// | 18 | MIGRATE_MA allowed |
/// | 19 | DEBUG allowed |
/// | 20 | SINGLE_SOCKET required |
/// | 21 | CXL_ALLOW |
/// | 22 | MEM_AES_256_XTS required |
/// | 23 | RAPL_DIS required |
/// | 24 | CIPHERTEXT_HIDING (DRAM) required |
/// | 25 | PAGE_SWAP_DISABLE |
/// | 63:26 | reserved, must be zero |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GuestPolicy(pub u64);

impl GuestPolicy {
    /// Bit 17, which the firmware requires to be one.
    pub const RESERVED_MBO: u64 = 1 << 17;
    /// Bits accord knows (0..=25).
    pub const KNOWN: u64 = (1 << 26) - 1;

    const fn bit(self, n: u32) -> bool {
        self.0 >> n & 1 == 1
    }

    /// Minimum ABI minor version.
    pub const fn abi_minor(self) -> u8 {
        (self.0 & 0xff) as u8
    }
    /// Minimum ABI major version.
    pub const fn abi_major(self) -> u8 {
        (self.0 >> 8 & 0xff) as u8
    }
    /// Host SMT allowed.
    pub const fn smt(self) -> bool {
        self.bit(16)
    }
    /// Association with a migration agent allowed.
    pub const fn migrate_ma(self) -> bool {
        self.bit(18)
    }
    /// Debugging (host access to guest memory) allowed.
    pub const fn debug(self) -> bool {
        self.bit(19)
    }
    /// Activation restricted to one socket.
    pub const fn single_socket(self) -> bool {
        self.bit(20)
    }
    /// CXL may be populated with devices or memory.
    pub const fn cxl_allowed(self) -> bool {
        self.bit(21)
    }
    /// AES-256-XTS memory encryption required.
    pub const fn mem_aes_256_xts(self) -> bool {
        self.bit(22)
    }
    /// RAPL must be disabled.
    pub const fn rapl_dis(self) -> bool {
        self.bit(23)
    }
    /// DRAM ciphertext hiding must be enabled.
    pub const fn ciphertext_hiding_dram(self) -> bool {
        self.bit(24)
    }
    /// Guest page move/swap commands disabled.
    pub const fn page_swap_disable(self) -> bool {
        self.bit(25)
    }
    /// Set bits above bit 25 (reserved in the spec revision accord follows).
    pub const fn unknown_bits(self) -> u64 {
        self.0 & !Self::KNOWN
    }
}

/// `GUEST_POLICY` with every field named, for claims output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub struct GuestPolicyBits {
    /// The raw value.
    pub raw: u64,
    pub abi_minor: u8,
    pub abi_major: u8,
    pub smt: bool,
    pub migrate_ma: bool,
    pub debug: bool,
    pub single_socket: bool,
    pub cxl_allowed: bool,
    pub mem_aes_256_xts: bool,
    pub rapl_dis: bool,
    pub ciphertext_hiding_dram: bool,
    pub page_swap_disable: bool,
}

impl From<GuestPolicy> for GuestPolicyBits {
    fn from(p: GuestPolicy) -> Self {
        Self {
            raw: p.0,
            abi_minor: p.abi_minor(),
            abi_major: p.abi_major(),
            smt: p.smt(),
            migrate_ma: p.migrate_ma(),
            debug: p.debug(),
            single_socket: p.single_socket(),
            cxl_allowed: p.cxl_allowed(),
            mem_aes_256_xts: p.mem_aes_256_xts(),
            rapl_dis: p.rapl_dis(),
            ciphertext_hiding_dram: p.ciphertext_hiding_dram(),
            page_swap_disable: p.page_swap_disable(),
        }
    }
}

/// `PLATFORM_INFO`: the platform's configuration when the report was made.
///
/// | bit | field |
/// |---|---|
/// | 0 | SMT_EN |
/// | 1 | TSME_EN |
/// | 2 | ECC_EN |
/// | 3 | RAPL_DIS |
/// | 4 | CIPHERTEXT_HIDING_DRAM_EN |
/// | 5 | ALIAS_CHECK_COMPLETE (v3+) |
/// | 7 | SEV_TIO_EN (v5) |
///
/// Other bits are not interpreted: real Turin reports set bit 6, which the
/// revision accord follows lists as reserved, so the parser does not refuse
/// unknown platform bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PlatformInfo(pub u64);

impl PlatformInfo {
    const fn bit(self, n: u32) -> bool {
        self.0 >> n & 1 == 1
    }
    /// SMT is enabled on the host.
    pub const fn smt_enabled(self) -> bool {
        self.bit(0)
    }
    /// Transparent SME is enabled.
    pub const fn tsme_enabled(self) -> bool {
        self.bit(1)
    }
    /// The platform uses ECC memory.
    pub const fn ecc_enabled(self) -> bool {
        self.bit(2)
    }
    /// RAPL is disabled.
    pub const fn rapl_disabled(self) -> bool {
        self.bit(3)
    }
    /// DRAM ciphertext hiding is enabled.
    pub const fn ciphertext_hiding_dram_enabled(self) -> bool {
        self.bit(4)
    }
    /// Memory alias check completed since the last reset.
    pub const fn alias_check_complete(self) -> bool {
        self.bit(5)
    }
    /// SEV-TIO is enabled.
    pub const fn tio_enabled(self) -> bool {
        self.bit(7)
    }
}

/// `PLATFORM_INFO` with every field named, for claims output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub struct PlatformInfoBits {
    /// The raw value.
    pub raw: u64,
    pub smt_enabled: bool,
    pub tsme_enabled: bool,
    pub ecc_enabled: bool,
    pub rapl_disabled: bool,
    pub ciphertext_hiding_dram_enabled: bool,
    pub alias_check_complete: bool,
    pub tio_enabled: bool,
}

impl From<PlatformInfo> for PlatformInfoBits {
    fn from(p: PlatformInfo) -> Self {
        Self {
            raw: p.0,
            smt_enabled: p.smt_enabled(),
            tsme_enabled: p.tsme_enabled(),
            ecc_enabled: p.ecc_enabled(),
            rapl_disabled: p.rapl_disabled(),
            ciphertext_hiding_dram_enabled: p.ciphertext_hiding_dram_enabled(),
            alias_check_complete: p.alias_check_complete(),
            tio_enabled: p.tio_enabled(),
        }
    }
}

/// Which key signed the report (flags bits 4:2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum SigningKey {
    /// The Versioned Chip Endorsement Key (per chip and TCB), issued under
    /// the ASK.
    #[serde(rename = "VCEK")]
    Vcek,
    /// The Versioned Loaded Endorsement Key (per cloud provider and TCB),
    /// issued under the ASVK.
    #[serde(rename = "VLEK")]
    Vlek,
}

impl fmt::Display for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SigningKey::Vcek => "VCEK",
            SigningKey::Vlek => "VLEK",
        })
    }
}

/// The flags word at offset 48h.
///
/// | bits | field |
/// |---|---|
/// | 0 | AUTHOR_KEY_EN |
/// | 1 | MASK_CHIP_KEY |
/// | 4:2 | SIGNING_KEY (0 = VCEK, 1 = VLEK, 7 = none) |
/// | 31:5 | reserved, must be zero |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReportFlags {
    /// The raw value.
    pub raw: u32,
    /// AUTHOR_KEY_DIGEST holds the digest of an author key.
    pub author_key_en: bool,
    /// The firmware's MASK_CHIP_KEY was set: CHIP_ID is zero.
    pub mask_chip_key: bool,
    /// The key that signed the report.
    pub signing_key: SigningKey,
}
