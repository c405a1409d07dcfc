//! Unit tests: a synthetic OVMF image built here, the refusal of every
//! malformed variant, truncations and random mutations (never a panic).
//! The comparison with `sev-snp-measure` lives in `xtask/tests/measure.rs`.

use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::ovmf::{
    FOOTER_GUID, SEV_ES_RESET_BLOCK_GUID, SEV_HASH_TABLE_RV_GUID, SEV_METADATA_GUID,
};
use super::*;

/// A synthetic image description.
#[derive(Clone)]
struct Spec {
    len: usize,
    sections: Vec<(u32, u32, u32)>,
    reset_eip: Option<u32>,
    hash_table_gpa: Option<u32>,
    metadata_from_end: Option<u32>,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            len: 4 * PAGE_SIZE,
            sections: vec![
                (0x80_0000, 0x9000, 1),
                (0x80d_000, 0x1000, 2),
                (0x80e_000, 0x1000, 3),
                (0x80f_000, 0x1000, 0x10),
            ],
            reset_eip: Some(0x80_b004),
            hash_table_gpa: Some(0x80f_c00),
            metadata_from_end: Some(0x1000),
        }
    }
}

fn entry(out: &mut Vec<u8>, guid: Guid, data: &[u8]) {
    out.extend_from_slice(data);
    out.extend_from_slice(&u16::try_from(data.len() + 18).unwrap().to_le_bytes());
    out.extend_from_slice(&guid.0);
}

fn build(spec: &Spec) -> Vec<u8> {
    let mut image = vec![0xcc; spec.len];
    let mut table = Vec::new();
    if let Some(eip) = spec.reset_eip {
        entry(&mut table, SEV_ES_RESET_BLOCK_GUID, &eip.to_le_bytes());
    }
    if let Some(gpa) = spec.hash_table_gpa {
        let mut data = gpa.to_le_bytes().to_vec();
        data.extend_from_slice(&0x400u32.to_le_bytes());
        entry(&mut table, SEV_HASH_TABLE_RV_GUID, &data);
    }
    if let Some(offset) = spec.metadata_from_end {
        entry(&mut table, SEV_METADATA_GUID, &offset.to_le_bytes());
        // Offsets outside the image are written nowhere (the parser must
        // refuse them).
        let start = spec.len.saturating_sub(offset as usize);
        let mut meta = b"ASEV".to_vec();
        let count = u32::try_from(spec.sections.len()).unwrap();
        meta.extend_from_slice(&(16 + 12 * count).to_le_bytes());
        meta.extend_from_slice(&1u32.to_le_bytes());
        meta.extend_from_slice(&count.to_le_bytes());
        for (gpa, size, kind) in &spec.sections {
            for word in [gpa, size, kind] {
                meta.extend_from_slice(&word.to_le_bytes());
            }
        }
        let fits = meta.len().min(spec.len - start);
        image[start..start + fits].copy_from_slice(&meta[..fits]);
    }
    let footer_at = spec.len - 50;
    let table_at = footer_at - table.len();
    image[table_at..footer_at].copy_from_slice(&table);
    image[footer_at..footer_at + 2]
        .copy_from_slice(&u16::try_from(table.len() + 18).unwrap().to_le_bytes());
    image[footer_at + 2..footer_at + 18].copy_from_slice(&FOOTER_GUID.0);
    image
}

fn launch_digest(
    image: &[u8],
    vcpus: u32,
    hashes: Option<&KernelHashes>,
) -> Result<[u8; 48], MeasureError> {
    let ovmf = Ovmf::parse(image)?;
    snp_launch_digest(&SnpLaunch {
        ovmf: &ovmf,
        vcpus,
        vcpu_signature: VcpuType::by_name("EPYC-Milan")?.signature(),
        guest_features: DEFAULT_GUEST_FEATURES,
        kernel_hashes: hashes,
    })
}

#[test]
fn parses_the_synthetic_image() {
    let image = build(&Spec::default());
    let ovmf = Ovmf::parse(&image).unwrap();
    assert_eq!(ovmf.gpa(), 0x1_0000_0000 - 4 * 4096);
    assert_eq!(ovmf.sev_es_reset_eip().unwrap(), 0x80_b004);
    assert_eq!(ovmf.sev_hashes_table_gpa().unwrap(), 0x80f_c00);
    let kinds: Vec<SectionKind> = ovmf.sections().iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            SectionKind::SnpSecMemory,
            SectionKind::SnpSecrets,
            SectionKind::Cpuid,
            SectionKind::SnpKernelHashes
        ]
    );
}

#[test]
fn digest_depends_on_every_input() {
    let image = build(&Spec::default());
    let hashes = KernelHashes::new(b"kernel", Some(b"initrd"), Some("console=ttyS0"));
    let one = launch_digest(&image, 1, None).unwrap();
    let two = launch_digest(&image, 2, None).unwrap();
    let direct = launch_digest(&image, 1, Some(&hashes)).unwrap();
    assert_ne!(one, two);
    assert_ne!(one, direct);
    assert_eq!(one, launch_digest(&image, 1, None).unwrap());
    let other = KernelHashes::new(b"kernel", Some(b"initrd"), Some("console=ttyS1"));
    assert_ne!(direct, launch_digest(&image, 1, Some(&other)).unwrap());
}

#[test]
fn vcpu_signatures() {
    let sig = |name| VcpuType::by_name(name).unwrap().signature();
    assert_eq!(sig("EPYC-v4"), 0x0080_0f12);
    assert_eq!(sig("EPYC-Rome"), 0x0083_0f10);
    assert_eq!(sig("EPYC-Milan"), 0x00a0_0f11);
    assert_eq!(sig("EPYC-Genoa"), 0x00a1_0f10);
    assert_eq!(sig("EPYC-Turin"), 0x00b0_0f00);
    assert_eq!(
        VcpuType::by_name("epyc-milan"),
        Err(MeasureError::UnknownVcpuType)
    );
}

#[test]
fn hashes_table_layout() {
    let hashes = KernelHashes::new(b"", None, None);
    let table = hashes.table();
    assert_eq!(table.len(), 176);
    assert_eq!(table[..16], hashes::HEADER_GUID.0);
    assert_eq!(table[16..18], 168u16.to_le_bytes());
    assert_eq!(table[18..34], hashes::CMDLINE_GUID.0);
    assert_eq!(table[34..36], 50u16.to_le_bytes());
    // SHA-256 of a lone NUL.
    assert_eq!(
        crate::hex::encode(&table[36..68]),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    );
    assert_eq!(table[168..], [0; 8]);
    assert_eq!(KernelHashes::new(b"", None, Some("")), hashes);
    // Every GUID as published (edk2 / QEMU), so a typo cannot hide.
    for (guid, text) in [
        (hashes::HEADER_GUID, "9438d606-4f22-4cc9-b479-a793d411fd21"),
        (hashes::KERNEL_GUID, "4de79437-abd2-427f-b835-d5b172d2045b"),
        (hashes::INITRD_GUID, "44baf731-3a2f-4bd7-9af1-41e29169781d"),
        (hashes::CMDLINE_GUID, "97d02dd8-bd20-4c94-aa78-e7714d36ab2a"),
        (FOOTER_GUID, "96b582de-1fb2-45f7-baea-a366c55a082d"),
        (
            SEV_HASH_TABLE_RV_GUID,
            "7255371f-3a3b-4b04-927b-1da6efa8d454",
        ),
        (
            SEV_ES_RESET_BLOCK_GUID,
            "00f771de-1a7e-4fcb-890e-68c77e2fb44e",
        ),
        (SEV_METADATA_GUID, "dc886566-984a-4798-a75e-5585a7bf67cc"),
    ] {
        assert_eq!(alloc::format!("{guid}"), text);
    }
}

fn refused(spec: &Spec) -> MeasureError {
    launch_digest(&build(spec), 2, None).unwrap_err()
}

#[test]
fn malformed_images_are_refused_by_name() {
    // Footer GUID missing.
    let mut image = build(&Spec::default());
    let at = image.len() - 40;
    image[at] ^= 1;
    assert_eq!(
        Ovmf::parse(&image).unwrap_err(),
        MeasureError::NoFooterTable
    );
    // Not a whole number of pages, or empty.
    let image = build(&Spec::default());
    assert_eq!(
        Ovmf::parse(&image[1..]).unwrap_err(),
        MeasureError::OvmfSize {
            len: image.len() - 1
        }
    );
    assert_eq!(
        Ovmf::parse(&[]).unwrap_err(),
        MeasureError::OvmfSize { len: 0 }
    );
    // Footer size reaching past the start of the image.
    let mut image = build(&Spec::default());
    let at = image.len() - 50;
    image[at..at + 2].copy_from_slice(&0xffffu16.to_le_bytes());
    assert_eq!(
        Ovmf::parse(&image[image.len() - 4096..]).unwrap_err(),
        MeasureError::FooterTableSize { size: 0xffff }
    );
    // Footer size below its own header.
    image[at..at + 2].copy_from_slice(&17u16.to_le_bytes());
    assert_eq!(
        Ovmf::parse(&image).unwrap_err(),
        MeasureError::FooterTableSize { size: 17 }
    );
    // A footer size that leaves a partial entry.
    let mut image = build(&Spec::default());
    let size = u16::from_le_bytes([image[at], image[at + 1]]);
    image[at..at + 2].copy_from_slice(&(size + 5).to_le_bytes());
    assert!(matches!(
        Ovmf::parse(&image).unwrap_err(),
        MeasureError::TableEntryTruncated { .. } | MeasureError::TableEntrySize { .. }
    ));
    // An entry size running past the table (the last entry before the footer).
    let mut image = build(&Spec::default());
    image[at - 18..at - 16].copy_from_slice(&0x4000u16.to_le_bytes());
    assert!(matches!(
        Ovmf::parse(&image).unwrap_err(),
        MeasureError::TableEntrySize { size: 0x4000, .. }
    ));
    // No metadata.
    assert_eq!(
        refused(&Spec {
            metadata_from_end: None,
            ..Spec::default()
        }),
        MeasureError::NoSevMetadata
    );
    // Metadata offset past the start of the image, and one whose header
    // would run past the end.
    for offset in [0x10_0000, 8] {
        assert!(matches!(
            refused(&Spec {
                metadata_from_end: Some(offset),
                ..Spec::default()
            }),
            MeasureError::MetadataOffset { .. }
        ));
    }
    // Metadata items running past the end of the image.
    assert!(matches!(
        refused(&Spec {
            metadata_from_end: Some(0x20),
            ..Spec::default()
        }),
        MeasureError::MetadataTruncated { size: 64 }
    ));
    // Bad signature, version and size.
    let mut image = build(&Spec::default());
    let meta = image.len() - 0x1000;
    image[meta] = b'B';
    assert_eq!(
        Ovmf::parse(&image).unwrap_err(),
        MeasureError::MetadataSignature
    );
    let mut image = build(&Spec::default());
    image[meta + 8] = 2;
    assert_eq!(
        Ovmf::parse(&image).unwrap_err(),
        MeasureError::MetadataVersion(2)
    );
    let mut image = build(&Spec::default());
    image[meta + 4] += 1;
    assert!(matches!(
        Ovmf::parse(&image).unwrap_err(),
        MeasureError::MetadataSize { .. }
    ));
    let mut image = build(&Spec::default());
    image[meta + 12..meta + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        Ovmf::parse(&image).unwrap_err(),
        MeasureError::MetadataSize { .. }
    ));
    // Unknown and unaligned sections.
    let mut spec = Spec::default();
    spec.sections.push((0x90_0000, 0x1000, 7));
    assert_eq!(
        refused(&spec),
        MeasureError::UnknownSectionType { index: 4, kind: 7 }
    );
    let mut spec = Spec::default();
    spec.sections[0].1 = 0x1234;
    assert_eq!(
        refused(&spec),
        MeasureError::SectionNotAligned {
            index: 0,
            gpa: 0x80_0000,
            size: 0x1234
        }
    );
    // No reset block; AP reset address zero with two vCPUs.
    assert_eq!(
        refused(&Spec {
            reset_eip: None,
            ..Spec::default()
        }),
        MeasureError::MissingTableEntry {
            guid: SEV_ES_RESET_BLOCK_GUID
        }
    );
    let image = build(&Spec {
        reset_eip: Some(0),
        ..Spec::default()
    });
    assert_eq!(
        launch_digest(&image, 2, None).unwrap_err(),
        MeasureError::ApResetAddressZero
    );
    assert!(launch_digest(&image, 1, None).is_ok());
    assert_eq!(
        launch_digest(&image, 0, None).unwrap_err(),
        MeasureError::NoVcpus
    );
}

#[test]
fn direct_boot_needs_the_hashes_section_and_table() {
    let hashes = KernelHashes::new(b"k", None, None);
    let mut spec = Spec::default();
    spec.sections.pop();
    let image = build(&spec);
    assert!(launch_digest(&image, 1, None).is_ok());
    assert_eq!(
        launch_digest(&image, 1, Some(&hashes)).unwrap_err(),
        MeasureError::NoKernelHashesSection
    );
    let image = build(&Spec {
        hash_table_gpa: None,
        ..Spec::default()
    });
    assert!(launch_digest(&image, 1, None).is_ok());
    assert_eq!(
        launch_digest(&image, 1, Some(&hashes)).unwrap_err(),
        MeasureError::MissingTableEntry {
            guid: SEV_HASH_TABLE_RV_GUID
        }
    );
    let image = build(&Spec {
        hash_table_gpa: Some(0x80f_f80),
        ..Spec::default()
    });
    assert_eq!(
        launch_digest(&image, 1, Some(&hashes)).unwrap_err(),
        MeasureError::HashesTableCrossesPage {
            table_gpa: 0x80f_f80
        }
    );
    let mut spec = Spec::default();
    spec.sections[3].1 = 0x2000;
    assert_eq!(
        launch_digest(&build(&spec), 1, Some(&hashes)).unwrap_err(),
        MeasureError::KernelHashesSectionSize { size: 0x2000 }
    );
}

#[test]
fn every_truncation_is_refused() {
    let image = build(&Spec::default());
    for cut in 0..image.len() {
        assert!(Ovmf::parse(&image[..cut]).is_err(), "prefix of {cut} bytes");
        // Dropping whole pages from the front leaves a valid image (the
        // metadata is addressed from the end); anything else is refused.
        let suffix = Ovmf::parse(&image[cut + 1..]);
        let aligned = (cut + 1) % PAGE_SIZE == 0 && cut + 1 < image.len();
        assert_eq!(
            suffix.is_ok(),
            aligned,
            "suffix from {}: {suffix:?}",
            cut + 1
        );
    }
}

#[test]
fn errors_name_the_problem() {
    let text = alloc::format!("{}", MeasureError::NoSevMetadata);
    assert!(text.contains("no SEV metadata section"), "{text}");
    let text = alloc::format!("{}", MeasureError::UnknownVcpuType);
    assert!(text.contains("EPYC-Genoa"), "{text}");
}

proptest! {
    #[test]
    fn mutated_images_never_panic(
        edits in proptest::collection::vec((0usize..0x1100, any::<u8>()), 1..8),
        vcpus in 0u32..4,
    ) {
        let mut image = build(&Spec::default());
        let len = image.len();
        for (back, value) in edits {
            // Edits land in the metadata and the footer table.
            image[len - 1 - back] = value;
        }
        if let Ok(ovmf) = Ovmf::parse(&image) {
            let hashes = KernelHashes::new(b"k", None, None);
            let _ = snp_launch_digest(&SnpLaunch {
                ovmf: &ovmf,
                vcpus,
                vcpu_signature: 0,
                guest_features: 1,
                kernel_hashes: Some(&hashes),
            });
        }
    }

    #[test]
    fn arbitrary_pages_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..200), pages in 1usize..3) {
        let mut image = vec![0u8; pages * PAGE_SIZE];
        let start = image.len() - tail.len();
        image[start..].copy_from_slice(&tail);
        let _ = Ovmf::parse(&image);
    }
}
