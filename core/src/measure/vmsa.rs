//! The initial VMSA page of a vCPU, as QEMU/KVM hands it to
//! `SNP_LAUNCH_UPDATE` (page type VMSA).
//!
//! The page is the SEV-ES save area (AMD APM vol. 2, table B-4; Linux
//! `struct sev_es_save_area`) holding the x86 reset state with KVM's
//! adjustments (EFER.SVME, CR4.MCE), zero elsewhere. Only two inputs vary:
//! the reset address (the BSP starts at `0xffff_fff0`, the APs at the
//! address from OVMF's SEV-ES reset block: CS base = its upper 16 bits, RIP
//! = its lower 16 bits) and the vCPU signature (CPUID `Fn0000_0001_EAX`,
//! which the reset state puts in RDX). SEV_FEATURES holds the guest
//! features.

use super::PAGE_SIZE;

/// Where the BSP starts.
pub const BSP_EIP: u32 = 0xffff_fff0;

// Offsets in the save area.
const ES: usize = 0x00;
const CS: usize = 0x10;
const SS: usize = 0x20;
const DS: usize = 0x30;
const FS: usize = 0x40;
const GS: usize = 0x50;
const GDTR: usize = 0x60;
const LDTR: usize = 0x70;
const IDTR: usize = 0x80;
const TR: usize = 0x90;
const EFER: usize = 0xd0;
const CR4: usize = 0x148;
const CR0: usize = 0x158;
const DR7: usize = 0x160;
const DR6: usize = 0x168;
const RFLAGS: usize = 0x170;
const RIP: usize = 0x178;
const G_PAT: usize = 0x268;
const RDX: usize = 0x310;
const SEV_FEATURES: usize = 0x3b0;
const XCR0: usize = 0x3e8;
const MXCSR: usize = 0x408;
const X87_FCW: usize = 0x410;

/// The initial VMSA page of a vCPU starting at `eip`.
pub fn page(eip: u32, vcpu_signature: u32, guest_features: u64) -> [u8; PAGE_SIZE] {
    let mut page = [0u8; PAGE_SIZE];
    let p = &mut page;
    segment(p, ES, 0, 0x93, 0xffff, 0);
    segment(p, CS, 0xf000, 0x9b, 0xffff, u64::from(eip & 0xffff_0000));
    segment(p, SS, 0, 0x93, 0xffff, 0);
    segment(p, DS, 0, 0x93, 0xffff, 0);
    segment(p, FS, 0, 0x93, 0xffff, 0);
    segment(p, GS, 0, 0x93, 0xffff, 0);
    segment(p, GDTR, 0, 0, 0xffff, 0);
    segment(p, LDTR, 0, 0x82, 0xffff, 0);
    segment(p, IDTR, 0, 0, 0xffff, 0);
    segment(p, TR, 0, 0x8b, 0xffff, 0);
    put(p, EFER, &0x1000u64.to_le_bytes()); // SVME, set by KVM
    put(p, CR4, &0x40u64.to_le_bytes()); // MCE, set by KVM
    put(p, CR0, &0x10u64.to_le_bytes());
    put(p, DR7, &0x400u64.to_le_bytes());
    put(p, DR6, &0xffff_0ff0u64.to_le_bytes());
    put(p, RFLAGS, &0x2u64.to_le_bytes());
    put(p, RIP, &u64::from(eip & 0xffff).to_le_bytes());
    put(p, G_PAT, &0x0007_0406_0007_0406u64.to_le_bytes()); // APM vol. 2, A.3
    put(p, RDX, &u64::from(vcpu_signature).to_le_bytes());
    put(p, SEV_FEATURES, &guest_features.to_le_bytes());
    put(p, XCR0, &0x1u64.to_le_bytes());
    put(p, MXCSR, &0x1f80u32.to_le_bytes());
    put(p, X87_FCW, &0x37fu16.to_le_bytes());
    page
}

/// Writes `bytes` at `offset` (offsets are constants inside the page).
fn put(page: &mut [u8; PAGE_SIZE], offset: usize, bytes: &[u8]) {
    if let Some(dst) = page.get_mut(offset..offset + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

/// Writes a 16-byte segment register (`struct vmcb_seg`).
fn segment(
    page: &mut [u8; PAGE_SIZE],
    offset: usize,
    selector: u16,
    attrib: u16,
    limit: u32,
    base: u64,
) {
    put(page, offset, &selector.to_le_bytes());
    put(page, offset + 2, &attrib.to_le_bytes());
    put(page, offset + 4, &limit.to_le_bytes());
    put(page, offset + 8, &base.to_le_bytes());
}
