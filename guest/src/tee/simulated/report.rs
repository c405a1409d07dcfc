//! Building and signing the simulated `ATTESTATION_REPORT`, byte for byte
//! in the layout `accord_core::evidence::snp::AttestationReport` parses:
//! version 3 for Genoa (CPUID family 19h model 11h), version 5 for Turin
//! (family 1Ah model 02h), every reserved byte zero, SIGNATURE_ALGO 1, and
//! an ECDSA P-384 signature over `[0, 2A0h)` with R and S as 72-byte
//! little-endian fields.

use accord_core::evidence::snp::{Product, REPORT_LEN, SIGNED_LEN, TcbVersion};
use p384::ecdsa::signature::Signer;

/// PLATFORM_INFO of the simulated chip: SMT enabled, ECC memory, alias
/// check complete.
pub const PLATFORM_INFO: u64 = 0b10_0101;

/// Everything a report says apart from REPORT_DATA.
#[derive(Clone, Debug)]
pub struct ReportFields {
    /// The product (decides version, CPUID and TCB layout).
    pub product: Product,
    /// POLICY.
    pub policy: u64,
    /// VMPL.
    pub vmpl: u32,
    /// MEASUREMENT.
    pub measurement: [u8; 48],
    /// HOST_DATA.
    pub host_data: [u8; 32],
    /// REPORT_ID (random per simulated launch).
    pub report_id: [u8; 32],
    /// The TCB: reported = current = committed = launch.
    pub tcb: TcbVersion,
    /// CHIP_ID.
    pub chip_id: [u8; 64],
}

/// The report version a product's firmware produces here.
pub const fn version(product: Product) -> u32 {
    match product {
        Product::Turin => 5,
        Product::Milan | Product::Genoa => 3,
    }
}

/// CPUID family, model, stepping of the simulated CPU.
pub const fn cpuid(product: Product) -> [u8; 3] {
    match product {
        Product::Milan => [0x19, 0x01, 0x01],
        Product::Genoa => [0x19, 0x11, 0x01],
        Product::Turin => [0x1a, 0x02, 0x00],
    }
}

/// Firmware build, minor, major (the report's byte order).
const fn firmware(product: Product) -> [u8; 3] {
    match product {
        Product::Milan => [21, 55, 1],
        Product::Genoa => [37, 55, 1],
        Product::Turin => [3, 58, 1],
    }
}

fn put(report: &mut [u8; REPORT_LEN], offset: usize, bytes: &[u8]) {
    if let Some(dst) = report.get_mut(offset..offset + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

/// The signed report for `fields` and `report_data`.
pub fn build(
    fields: &ReportFields,
    report_data: &[u8; 64],
    key: &p384::ecdsa::SigningKey,
) -> [u8; REPORT_LEN] {
    let mut report = [0u8; REPORT_LEN];
    let product = fields.product;
    let tcb = fields.tcb.encode(product).to_le_bytes();
    put(&mut report, 0x000, &version(product).to_le_bytes());
    // GUEST_SVN 0, FAMILY_ID/IMAGE_ID zero (no ID block).
    put(&mut report, 0x008, &fields.policy.to_le_bytes());
    put(&mut report, 0x030, &fields.vmpl.to_le_bytes());
    put(&mut report, 0x034, &1u32.to_le_bytes());
    put(&mut report, 0x038, &tcb);
    put(&mut report, 0x040, &PLATFORM_INFO.to_le_bytes());
    // Flags 0: VCEK-signed, chip key not masked, no author key.
    put(&mut report, 0x050, report_data);
    put(&mut report, 0x090, &fields.measurement);
    put(&mut report, 0x0c0, &fields.host_data);
    // ID_KEY_DIGEST / AUTHOR_KEY_DIGEST zero (no ID block).
    put(&mut report, 0x140, &fields.report_id);
    // No migration agent: REPORT_ID_MA is all ones, as on real hardware.
    put(&mut report, 0x160, &[0xff; 32]);
    put(&mut report, 0x180, &tcb);
    put(&mut report, 0x188, &cpuid(product));
    put(&mut report, 0x1a0, &fields.chip_id);
    put(&mut report, 0x1e0, &tcb);
    put(&mut report, 0x1e8, &firmware(product));
    put(&mut report, 0x1ec, &firmware(product));
    put(&mut report, 0x1f0, &tcb);
    // Version 5: LAUNCH_MIT_VECTOR and CURRENT_MIT_VECTOR stay 0.
    let (signed, _) = report.split_at(SIGNED_LEN);
    let signature: p384::ecdsa::Signature = key.sign(signed);
    let (r, s) = signature.split_bytes();
    for (offset, scalar) in [(0x2a0, r), (0x2e8, s)] {
        let mut little = [0u8; 48];
        for (dst, src) in little.iter_mut().zip(scalar.iter().rev()) {
            *dst = *src;
        }
        put(&mut report, offset, &little);
    }
    report
}
