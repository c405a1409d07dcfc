//! The OVMF firmware image as QEMU loads it for an SEV-SNP guest: the
//! GUIDed footer table in the reset-vector area and the SEV metadata
//! sections it points to.
//!
//! Layout (edk2 `OvmfPkg/ResetVector`): the image ends at 4 GiB. 32 bytes
//! before its end sits the footer entry (`u16` size, footer GUID), whose
//! size covers the whole table. Entries are read backwards from the footer,
//! each laid out as `data, u16 size, GUID` with `size` counting all three.
//! The SEV metadata entry holds a `u32` offset from the end of the image to
//! the `ASEV` header (`signature, u32 size, u32 version = 1, u32 count`)
//! followed by `count` 12-byte section descriptors (`u32 gpa, u32 size, u32
//! type`). Everything is checked against the image's bounds; anything odd
//! (an entry overrunning the table, leftover bytes, a duplicate GUID, a
//! header size that does not match its item count, an unknown section type)
//! is refused.

use alloc::vec::Vec;

use super::{Guid, MeasureError, PAGE_SIZE};

/// The GUID of the footer entry that closes the table.
pub const FOOTER_GUID: Guid = Guid::new(
    0x96b5_82de,
    0x1fb2,
    0x45f7,
    [0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d],
);
/// The table entry holding the SEV hash table's GPA (`u32`) and size.
pub const SEV_HASH_TABLE_RV_GUID: Guid = Guid::new(
    0x7255_371f,
    0x3a3b,
    0x4b04,
    [0x92, 0x7b, 0x1d, 0xa6, 0xef, 0xa8, 0xd4, 0x54],
);
/// The table entry holding the APs' SEV-ES reset address (`u32`).
pub const SEV_ES_RESET_BLOCK_GUID: Guid = Guid::new(
    0x00f7_71de,
    0x1a7e,
    0x4fcb,
    [0x89, 0x0e, 0x68, 0xc7, 0x7e, 0x2f, 0xb4, 0x4e],
);
/// The table entry holding the SEV metadata's offset from the image's end.
pub const SEV_METADATA_GUID: Guid = Guid::new(
    0xdc88_6566,
    0x984a,
    0x4798,
    [0xa7, 0x5e, 0x55, 0x85, 0xa7, 0xbf, 0x67, 0xcc],
);

/// Bytes between the footer entry and the end of the image.
const FOOTER_GAP: usize = 32;
/// `u16` size + GUID.
const ENTRY_HEADER: usize = 18;
/// `ASEV`, size, version, count.
const METADATA_HEADER: usize = 16;
/// gpa, size, type.
const SECTION_DESC: usize = 12;
/// The image ends at 4 GiB.
const FOUR_GIB: u64 = 1 << 32;

/// What an SEV metadata section asks the launch to do with its pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectionKind {
    /// 1, `SNP_SEC_MEMORY`: pre-validated zero pages.
    SnpSecMemory,
    /// 2, `SNP_SECRETS`: the secrets page (one page).
    SnpSecrets,
    /// 3, `CPUID`: the CPUID page (one page).
    Cpuid,
    /// 4, `SVSM_CAA`: zero pages.
    SvsmCaa,
    /// 0x10, `SNP_KERNEL_HASHES`: the page holding the kernel hashes table.
    SnpKernelHashes,
}

impl SectionKind {
    fn from_u32(kind: u32) -> Option<Self> {
        match kind {
            1 => Some(Self::SnpSecMemory),
            2 => Some(Self::SnpSecrets),
            3 => Some(Self::Cpuid),
            4 => Some(Self::SvsmCaa),
            0x10 => Some(Self::SnpKernelHashes),
            _ => None,
        }
    }
}

/// One SEV metadata section descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section {
    /// Guest-physical address of the first page.
    pub gpa: u32,
    /// Length in bytes (a multiple of 4096).
    pub size: u32,
    /// What the section is.
    pub kind: SectionKind,
}

/// A parsed OVMF image (borrowed).
#[derive(Clone, Debug)]
pub struct Ovmf<'a> {
    data: &'a [u8],
    table: Vec<(Guid, &'a [u8])>,
    sections: Vec<Section>,
}

impl<'a> Ovmf<'a> {
    /// Parses the footer table and the SEV metadata of `data`.
    pub fn parse(data: &'a [u8]) -> Result<Self, MeasureError> {
        let len = data.len();
        if len == 0
            || !len.is_multiple_of(PAGE_SIZE)
            || !u64::try_from(len).is_ok_and(|l| l <= FOUR_GIB)
        {
            return Err(MeasureError::OvmfSize { len });
        }
        let table = parse_footer_table(data)?;
        let mut ovmf = Ovmf {
            data,
            table,
            sections: Vec::new(),
        };
        ovmf.sections = ovmf.parse_metadata()?;
        Ok(ovmf)
    }

    /// The image's bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The guest-physical address of the image's first byte (4 GiB minus
    /// its length).
    pub fn gpa(&self) -> u64 {
        // `parse` checked 0 < len <= 4 GiB.
        FOUR_GIB.saturating_sub(u64::try_from(self.data.len()).unwrap_or(FOUR_GIB))
    }

    /// The SEV metadata sections, in image order.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The data of the footer-table entry `guid`, if there is one.
    pub fn table_entry(&self, guid: &Guid) -> Option<&'a [u8]> {
        self.table
            .iter()
            .find(|(g, _)| g == guid)
            .map(|(_, data)| *data)
    }

    /// The first `u32` of the footer-table entry `guid`.
    fn table_u32(&self, guid: &Guid) -> Result<u32, MeasureError> {
        let entry = self
            .table_entry(guid)
            .ok_or(MeasureError::MissingTableEntry { guid: *guid })?;
        let bytes = entry
            .first_chunk::<4>()
            .ok_or(MeasureError::TableEntryTooShort {
                guid: *guid,
                len: entry.len(),
            })?;
        Ok(u32::from_le_bytes(*bytes))
    }

    /// The APs' reset address from the SEV-ES reset block.
    pub fn sev_es_reset_eip(&self) -> Result<u32, MeasureError> {
        self.table_u32(&SEV_ES_RESET_BLOCK_GUID)
    }

    /// The guest-physical address of the SEV hash table.
    pub fn sev_hashes_table_gpa(&self) -> Result<u32, MeasureError> {
        self.table_u32(&SEV_HASH_TABLE_RV_GUID)
    }

    fn parse_metadata(&self) -> Result<Vec<Section>, MeasureError> {
        let offset_from_end = match self.table_u32(&SEV_METADATA_GUID) {
            Ok(offset) => offset,
            Err(MeasureError::MissingTableEntry { .. }) => {
                return Err(MeasureError::NoSevMetadata);
            }
            Err(other) => return Err(other),
        };
        let bad_offset = MeasureError::MetadataOffset {
            offset_from_end,
            len: self.data.len(),
        };
        let start = usize::try_from(offset_from_end)
            .ok()
            .and_then(|offset| self.data.len().checked_sub(offset))
            .ok_or(bad_offset.clone())?;
        let header = start
            .checked_add(METADATA_HEADER)
            .and_then(|end| self.data.get(start..end))
            .ok_or(bad_offset)?;
        let word = |at: usize| -> u32 {
            header
                .get(at..at + 4)
                .and_then(|b| b.first_chunk::<4>())
                .map_or(0, |b| u32::from_le_bytes(*b))
        };
        if header.get(..4) != Some(b"ASEV".as_slice()) {
            return Err(MeasureError::MetadataSignature);
        }
        let size = word(4);
        let version = word(8);
        let count = word(12);
        if version != 1 {
            return Err(MeasureError::MetadataVersion(version));
        }
        let expected = u64::from(count) * SECTION_DESC as u64 + METADATA_HEADER as u64;
        if u64::from(size) != expected {
            return Err(MeasureError::MetadataSize { size, count });
        }
        let items = usize::try_from(size)
            .ok()
            .and_then(|size| start.checked_add(size))
            .and_then(|end| self.data.get(start..end))
            .and_then(|all| all.get(METADATA_HEADER..))
            .ok_or(MeasureError::MetadataTruncated { size })?;
        let mut sections = Vec::new();
        for (index, desc) in items.chunks_exact(SECTION_DESC).enumerate() {
            let field = |at: usize| -> u32 {
                desc.get(at..at + 4)
                    .and_then(|b| b.first_chunk::<4>())
                    .map_or(0, |b| u32::from_le_bytes(*b))
            };
            let (gpa, size, raw_kind) = (field(0), field(4), field(8));
            let kind = SectionKind::from_u32(raw_kind).ok_or(MeasureError::UnknownSectionType {
                index,
                kind: raw_kind,
            })?;
            let page = PAGE_SIZE as u32;
            if !gpa.is_multiple_of(page) || !size.is_multiple_of(page) {
                return Err(MeasureError::SectionNotAligned { index, gpa, size });
            }
            sections.push(Section { gpa, size, kind });
        }
        Ok(sections)
    }
}

/// Reads the GUIDed table that ends 32 bytes before the end of the image.
fn parse_footer_table(data: &[u8]) -> Result<Vec<(Guid, &[u8])>, MeasureError> {
    let footer_start = data
        .len()
        .checked_sub(FOOTER_GAP + ENTRY_HEADER)
        .ok_or(MeasureError::NoFooterTable)?;
    let (before_footer, footer) = data
        .split_at_checked(footer_start)
        .ok_or(MeasureError::NoFooterTable)?;
    let (size, guid) = entry_header(footer).ok_or(MeasureError::NoFooterTable)?;
    if guid != FOOTER_GUID {
        return Err(MeasureError::NoFooterTable);
    }
    let table_len = usize::from(size)
        .checked_sub(ENTRY_HEADER)
        .ok_or(MeasureError::FooterTableSize { size })?;
    let mut rest = before_footer
        .len()
        .checked_sub(table_len)
        .and_then(|start| before_footer.get(start..))
        .ok_or(MeasureError::FooterTableSize { size })?;
    let mut table: Vec<(Guid, &[u8])> = Vec::new();
    while !rest.is_empty() {
        let header_at = rest
            .len()
            .checked_sub(ENTRY_HEADER)
            .ok_or(MeasureError::TableEntryTruncated { left: rest.len() })?;
        let (size, guid) = rest
            .get(header_at..)
            .and_then(entry_header)
            .ok_or(MeasureError::TableEntryTruncated { left: rest.len() })?;
        let entry_len = usize::from(size);
        if entry_len < ENTRY_HEADER || entry_len > rest.len() {
            return Err(MeasureError::TableEntrySize {
                guid,
                size,
                left: rest.len(),
            });
        }
        let (before, entry) = rest
            .split_at_checked(rest.len() - entry_len)
            .ok_or(MeasureError::TableEntryTruncated { left: rest.len() })?;
        let body = entry
            .get(..entry_len - ENTRY_HEADER)
            .ok_or(MeasureError::TableEntryTruncated { left: rest.len() })?;
        if table.iter().any(|(g, _)| *g == guid) {
            return Err(MeasureError::DuplicateTableEntry { guid });
        }
        table.push((guid, body));
        rest = before;
    }
    Ok(table)
}

/// `u16` size and GUID from the first 18 bytes of `bytes`.
fn entry_header(bytes: &[u8]) -> Option<(u16, Guid)> {
    let (size, rest) = bytes.split_first_chunk::<2>()?;
    let guid = rest.first_chunk::<16>()?;
    Some((u16::from_le_bytes(*size), Guid(*guid)))
}
