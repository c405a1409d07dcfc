//! The AMD SEV-SNP launch digest: the 48-byte MEASUREMENT of a guest that
//! QEMU launches with OVMF, computed ahead of time from the inputs, for a
//! manifest's `ReferenceValues.snp[].TrustedMeasurement`.
//!
//! The firmware folds every page QEMU adds with `SNP_LAUNCH_UPDATE` into the
//! digest: `LD = SHA-384(PAGE_INFO)`, where `PAGE_INFO` (SNP firmware ABI,
//! "Layout of the PAGE_INFO structure", 0x70 bytes) is the previous digest
//! (48 bytes, initially zero), the page's contents digest (SHA-384 of the
//! page, or zeros for zero/secrets/CPUID pages), `u16` 0x70, the page type,
//! `IS_IMI` = 0, the VMPL 3/2/1 permissions (zero), a reserved byte and the
//! `u64` GPA. QEMU's order, which [`snp_launch_digest`] replays:
//!
//! 1. the OVMF image as normal pages (type 1) at `4 GiB - len`;
//! 2. each SEV metadata section ([`ovmf`]) in image order: `SNP_SEC_MEMORY`
//!    and `SVSM_CAA` as zero pages (3), `SNP_SECRETS` as a secrets page (5,
//!    its first page only), `CPUID` as a CPUID page (6, first page only),
//!    `SNP_KERNEL_HASHES` as one normal page holding the [`hashes`] table at
//!    the offset of the `SEV_HASH_TABLE_RV` GPA within its page for direct
//!    boot, else as zero pages;
//! 3. one VMSA page (type 2, GPA `0xffff_ffff_f000`) per vCPU ([`vmsa`]): the
//!    BSP's first, then the APs'.
//!
//! This follows the reference implementation, the `sev-snp-measure` Python
//! package (`snp` mode, VMM type QEMU); `cargo xtask measure` drives it and
//! its test compares the two. Everything here is pure: the caller reads the
//! files.

pub mod hashes;
pub mod ovmf;
pub mod vmsa;

#[cfg(test)]
mod tests;

use core::fmt;

use sha2::{Digest, Sha384};

pub use hashes::KernelHashes;
pub use ovmf::{Ovmf, Section, SectionKind};

/// Pages are 4 KiB.
pub const PAGE_SIZE: usize = 4096;

/// The GPA the firmware records for VMSA pages (`-1` with the page-offset
/// bits and the bits above 51 cleared).
const VMSA_GPA: u64 = 0xffff_ffff_f000;

/// The digest size (SHA-384).
pub const DIGEST_LEN: usize = 48;

/// The default guest features (SEV_FEATURES): `SNPActive` only, as QEMU
/// sets without further options.
pub const DEFAULT_GUEST_FEATURES: u64 = 0x1;

/// A GUID in its little-endian (EFI, "mixed-endian") byte layout.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The GUID `a-b-c-d` (as written in text) in its byte layout.
    pub const fn new(a: u32, b: u16, c: u16, d: [u8; 8]) -> Self {
        let [a0, a1, a2, a3] = a.to_le_bytes();
        let [b0, b1] = b.to_le_bytes();
        let [c0, c1] = c.to_le_bytes();
        let [d0, d1, d2, d3, d4, d5, d6, d7] = d;
        Self([
            a0, a1, a2, a3, b0, b1, c0, c1, d0, d1, d2, d3, d4, d5, d6, d7,
        ])
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a0, a1, a2, a3, b0, b1, c0, c1, d @ ..] = self.0;
        let [d0, d1, e @ ..] = d;
        let a = u32::from_le_bytes([a0, a1, a2, a3]);
        let b = u16::from_le_bytes([b0, b1]);
        let c = u16::from_le_bytes([c0, c1]);
        write!(f, "{a:08x}-{b:04x}-{c:04x}-{d0:02x}{d1:02x}-")?;
        e.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A QEMU vCPU model: its CPUID family, model and stepping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuType {
    /// QEMU's name for it (`-cpu NAME`).
    pub name: &'static str,
    /// CPU family.
    pub family: u32,
    /// CPU model.
    pub model: u32,
    /// Stepping.
    pub stepping: u32,
}

/// QEMU's AMD EPYC models (`builtin_x86_defs`).
pub const VCPU_TYPES: &[VcpuType] = &[
    vcpu("EPYC", 23, 1, 2),
    vcpu("EPYC-v1", 23, 1, 2),
    vcpu("EPYC-v2", 23, 1, 2),
    vcpu("EPYC-IBPB", 23, 1, 2),
    vcpu("EPYC-v3", 23, 1, 2),
    vcpu("EPYC-v4", 23, 1, 2),
    vcpu("EPYC-Rome", 23, 49, 0),
    vcpu("EPYC-Rome-v1", 23, 49, 0),
    vcpu("EPYC-Rome-v2", 23, 49, 0),
    vcpu("EPYC-Rome-v3", 23, 49, 0),
    vcpu("EPYC-Milan", 25, 1, 1),
    vcpu("EPYC-Milan-v1", 25, 1, 1),
    vcpu("EPYC-Milan-v2", 25, 1, 1),
    vcpu("EPYC-Genoa", 25, 17, 0),
    vcpu("EPYC-Genoa-v1", 25, 17, 0),
    vcpu("EPYC-Turin", 26, 0, 0),
];

const fn vcpu(name: &'static str, family: u32, model: u32, stepping: u32) -> VcpuType {
    VcpuType {
        name,
        family,
        model,
        stepping,
    }
}

impl VcpuType {
    /// Looks a model up by QEMU's name (exact, case-sensitive).
    pub fn by_name(name: &str) -> Result<Self, MeasureError> {
        VCPU_TYPES
            .iter()
            .find(|t| t.name == name)
            .copied()
            .ok_or(MeasureError::UnknownVcpuType)
    }

    /// The CPUID `Fn0000_0001_EAX` signature (AMD CPUID specification
    /// 25481): extended family in bits 27:20 (family - 0xf when the family
    /// exceeds 0xf, the base family then being 0xf), extended model in
    /// 19:16, base family in 11:8, base model in 7:4, stepping in 3:0.
    pub fn signature(&self) -> u32 {
        let (base_family, ext_family) = if self.family > 0xf {
            (0xf, (self.family - 0xf) & 0xff)
        } else {
            (self.family, 0)
        };
        (ext_family << 20)
            | (((self.model >> 4) & 0xf) << 16)
            | (base_family << 8)
            | ((self.model & 0xf) << 4)
            | (self.stepping & 0xf)
    }
}

/// What the launch consists of.
#[derive(Clone, Copy, Debug)]
pub struct SnpLaunch<'a, 'o> {
    /// The firmware.
    pub ovmf: &'a Ovmf<'o>,
    /// Number of vCPUs (at least one).
    pub vcpus: u32,
    /// The CPUID signature the vCPUs report ([`VcpuType::signature`]).
    pub vcpu_signature: u32,
    /// SEV_FEATURES of every VMSA ([`DEFAULT_GUEST_FEATURES`] for QEMU's
    /// default).
    pub guest_features: u64,
    /// The kernel hashes for direct boot, or `None`.
    pub kernel_hashes: Option<&'a KernelHashes>,
}

/// The running launch digest.
struct Digest48([u8; DIGEST_LEN]);

/// `SNP_LAUNCH_UPDATE` page types.
#[derive(Clone, Copy)]
#[repr(u8)]
enum PageType {
    Normal = 1,
    Vmsa = 2,
    Zero = 3,
    Secrets = 5,
    Cpuid = 6,
}

impl Digest48 {
    fn update(&mut self, page_type: PageType, gpa: u64, contents: &[u8; DIGEST_LEN]) {
        let mut hasher = Sha384::new();
        hasher.update(self.0);
        hasher.update(contents);
        hasher.update(0x70u16.to_le_bytes());
        // page type, IS_IMI, VMPL3/2/1 permissions, reserved
        hasher.update([page_type as u8, 0, 0, 0, 0, 0]);
        hasher.update(gpa.to_le_bytes());
        self.0 = hasher.finalize().into();
    }

    fn normal_pages(&mut self, gpa: u64, data: &[u8]) {
        let mut page_gpa = gpa;
        for page in data.chunks(PAGE_SIZE) {
            let contents: [u8; DIGEST_LEN] = Sha384::digest(page).into();
            self.update(PageType::Normal, page_gpa, &contents);
            page_gpa += PAGE_SIZE as u64;
        }
    }

    fn empty_pages(&mut self, page_type: PageType, gpa: u32, size: u32) {
        let pages = size / PAGE_SIZE as u32;
        for page in 0..u64::from(pages) {
            self.update(
                page_type,
                u64::from(gpa) + page * PAGE_SIZE as u64,
                &[0; DIGEST_LEN],
            );
        }
    }
}

/// Computes the launch digest (MEASUREMENT) of `launch`.
pub fn snp_launch_digest(launch: &SnpLaunch<'_, '_>) -> Result<[u8; DIGEST_LEN], MeasureError> {
    let ovmf = launch.ovmf;
    if launch.vcpus == 0 {
        return Err(MeasureError::NoVcpus);
    }
    let ap_eip = ovmf.sev_es_reset_eip()?;
    if launch.vcpus > 1 && ap_eip == 0 {
        return Err(MeasureError::ApResetAddressZero);
    }
    if launch.kernel_hashes.is_some()
        && !ovmf
            .sections()
            .iter()
            .any(|s| s.kind == SectionKind::SnpKernelHashes)
    {
        return Err(MeasureError::NoKernelHashesSection);
    }

    let mut ld = Digest48([0; DIGEST_LEN]);
    ld.normal_pages(ovmf.gpa(), ovmf.data());
    for section in ovmf.sections() {
        match section.kind {
            SectionKind::SnpSecMemory | SectionKind::SvsmCaa => {
                ld.empty_pages(PageType::Zero, section.gpa, section.size);
            }
            SectionKind::SnpSecrets => {
                ld.update(PageType::Secrets, u64::from(section.gpa), &[0; DIGEST_LEN]);
            }
            SectionKind::Cpuid => {
                ld.update(PageType::Cpuid, u64::from(section.gpa), &[0; DIGEST_LEN]);
            }
            SectionKind::SnpKernelHashes => match launch.kernel_hashes {
                None => ld.empty_pages(PageType::Zero, section.gpa, section.size),
                Some(hashes) => {
                    if section.size as usize != PAGE_SIZE {
                        return Err(MeasureError::KernelHashesSectionSize { size: section.size });
                    }
                    let table_gpa = ovmf.sev_hashes_table_gpa()?;
                    let page = hashes_page(hashes, table_gpa)?;
                    ld.normal_pages(u64::from(section.gpa), &page);
                }
            },
        }
    }
    let bsp = vmsa::page(vmsa::BSP_EIP, launch.vcpu_signature, launch.guest_features);
    let ap = vmsa::page(ap_eip, launch.vcpu_signature, launch.guest_features);
    for index in 0..launch.vcpus {
        let page = if index == 0 { &bsp } else { &ap };
        let contents: [u8; DIGEST_LEN] = Sha384::digest(page).into();
        ld.update(PageType::Vmsa, VMSA_GPA, &contents);
    }
    Ok(ld.0)
}

/// The page holding the hashes table at the offset of `table_gpa` within
/// its page.
pub fn hashes_page(hashes: &KernelHashes, table_gpa: u32) -> Result<[u8; PAGE_SIZE], MeasureError> {
    let offset = table_gpa as usize % PAGE_SIZE;
    let mut page = [0u8; PAGE_SIZE];
    let table = hashes.table();
    let dst = page
        .get_mut(offset..offset + table.len())
        .ok_or(MeasureError::HashesTableCrossesPage { table_gpa })?;
    dst.copy_from_slice(&table);
    Ok(page)
}

/// Why a launch digest could not be computed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MeasureError {
    /// The image is empty, larger than 4 GiB or not a whole number of pages.
    OvmfSize {
        /// Its length.
        len: usize,
    },
    /// No footer GUID 32 bytes before the end of the image.
    NoFooterTable,
    /// The footer's size is below 18 or reaches past the image's start.
    FooterTableSize {
        /// The footer entry's size.
        size: u16,
    },
    /// The table has bytes left that do not form an entry.
    TableEntryTruncated {
        /// Bytes left.
        left: usize,
    },
    /// An entry's size is below 18 or larger than what is left of the table.
    TableEntrySize {
        /// The entry.
        guid: Guid,
        /// Its size.
        size: u16,
        /// Table bytes left, the entry included.
        left: usize,
    },
    /// Two entries with the same GUID.
    DuplicateTableEntry {
        /// The GUID.
        guid: Guid,
    },
    /// A table entry that is needed is absent.
    MissingTableEntry {
        /// The GUID.
        guid: Guid,
    },
    /// A table entry is shorter than its 4-byte value.
    TableEntryTooShort {
        /// The GUID.
        guid: Guid,
        /// Its data length.
        len: usize,
    },
    /// The table has no SEV metadata entry.
    NoSevMetadata,
    /// The SEV metadata offset points outside the image.
    MetadataOffset {
        /// The offset from the end of the image.
        offset_from_end: u32,
        /// The image's length.
        len: usize,
    },
    /// The SEV metadata header does not start with `ASEV`.
    MetadataSignature,
    /// The SEV metadata version is not 1.
    MetadataVersion(u32),
    /// The SEV metadata size is not 16 + 12 × its item count.
    MetadataSize {
        /// The header's size.
        size: u32,
        /// The header's item count.
        count: u32,
    },
    /// The SEV metadata runs past the end of the image.
    MetadataTruncated {
        /// The header's size.
        size: u32,
    },
    /// A metadata section of a type this code does not know.
    UnknownSectionType {
        /// Its index.
        index: usize,
        /// Its type.
        kind: u32,
    },
    /// A metadata section's GPA or size is not page-aligned.
    SectionNotAligned {
        /// Its index.
        index: usize,
        /// Its GPA.
        gpa: u32,
        /// Its size.
        size: u32,
    },
    /// Zero vCPUs.
    NoVcpus,
    /// The vCPU type is not one of [`VCPU_TYPES`].
    UnknownVcpuType,
    /// More than one vCPU but the SEV-ES reset block gives address 0.
    ApResetAddressZero,
    /// Direct boot, but the image has no `SNP_KERNEL_HASHES` section.
    NoKernelHashesSection,
    /// The `SNP_KERNEL_HASHES` section is not one page.
    KernelHashesSectionSize {
        /// Its size.
        size: u32,
    },
    /// The hashes table at this GPA would cross into the next page.
    HashesTableCrossesPage {
        /// The table's GPA.
        table_gpa: u32,
    },
}

impl fmt::Display for MeasureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OvmfSize { len } => write!(
                f,
                "OVMF image is {len} bytes: it must be a non-empty whole number of 4096-byte pages, at most 4 GiB"
            ),
            Self::NoFooterTable => write!(
                f,
                "OVMF image has no GUIDed footer table (no footer GUID {} 32 bytes before its end)",
                ovmf::FOOTER_GUID
            ),
            Self::FooterTableSize { size } => write!(
                f,
                "OVMF footer table size {size} is below 18 or reaches past the start of the image"
            ),
            Self::TableEntryTruncated { left } => write!(
                f,
                "OVMF footer table has {left} bytes left that do not form an entry"
            ),
            Self::TableEntrySize { guid, size, left } => write!(
                f,
                "OVMF footer table entry {guid} has size {size}, outside 18..={left}"
            ),
            Self::DuplicateTableEntry { guid } => {
                write!(f, "OVMF footer table has entry {guid} twice")
            }
            Self::MissingTableEntry { guid } => {
                let what = if *guid == ovmf::SEV_ES_RESET_BLOCK_GUID {
                    "SEV-ES reset block"
                } else if *guid == ovmf::SEV_HASH_TABLE_RV_GUID {
                    "SEV hash table address"
                } else {
                    "entry"
                };
                write!(f, "OVMF footer table has no {what} ({guid})")
            }
            Self::TableEntryTooShort { guid, len } => write!(
                f,
                "OVMF footer table entry {guid} has {len} data bytes, fewer than 4"
            ),
            Self::NoSevMetadata => write!(
                f,
                "OVMF image has no SEV metadata section (no footer table entry {}): not an SEV-capable build",
                ovmf::SEV_METADATA_GUID
            ),
            Self::MetadataOffset {
                offset_from_end,
                len,
            } => write!(
                f,
                "OVMF SEV metadata offset {offset_from_end:#x} from the end lies outside the {len}-byte image"
            ),
            Self::MetadataSignature => {
                write!(f, "OVMF SEV metadata does not start with signature ASEV")
            }
            Self::MetadataVersion(v) => {
                write!(
                    f,
                    "OVMF SEV metadata version {v} is not supported (expected 1)"
                )
            }
            Self::MetadataSize { size, count } => write!(
                f,
                "OVMF SEV metadata size {size} does not match its {count} sections (16 + 12 each)"
            ),
            Self::MetadataTruncated { size } => write!(
                f,
                "OVMF SEV metadata of {size} bytes runs past the end of the image"
            ),
            Self::UnknownSectionType { index, kind } => write!(
                f,
                "OVMF SEV metadata section {index} has unknown type {kind:#x}"
            ),
            Self::SectionNotAligned { index, gpa, size } => write!(
                f,
                "OVMF SEV metadata section {index} (gpa {gpa:#x}, size {size:#x}) is not page-aligned"
            ),
            Self::NoVcpus => write!(f, "the number of vCPUs must be at least 1"),
            Self::UnknownVcpuType => {
                write!(f, "unknown vCPU type (known: ")?;
                for (i, t) in VCPU_TYPES.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{}", t.name)?;
                }
                write!(f, ")")
            }
            Self::ApResetAddressZero => write!(
                f,
                "OVMF SEV-ES reset block gives AP reset address 0: more than one vCPU cannot start"
            ),
            Self::NoKernelHashesSection => write!(
                f,
                "a kernel was given but the OVMF SEV metadata has no SNP_KERNEL_HASHES section (build OVMF with the AmdSev package for direct boot)"
            ),
            Self::KernelHashesSectionSize { size } => write!(
                f,
                "OVMF SNP_KERNEL_HASHES section is {size:#x} bytes, not one page"
            ),
            Self::HashesTableCrossesPage { table_gpa } => write!(
                f,
                "OVMF SEV hash table at {table_gpa:#x} would cross a page boundary"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl core::error::Error for MeasureError {}
