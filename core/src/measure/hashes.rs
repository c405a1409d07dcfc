//! The SEV hashes table QEMU writes into the guest for direct boot
//! (`-kernel`/`-initrd`/`-append`), which OVMF checks the loaded files
//! against and the launch measures as an ordinary page.
//!
//! Layout (QEMU `target/i386/sev.c`, all little-endian, packed): the header
//! GUID `9438d606-…`, a `u16` length of the table without padding (168),
//! then three entries, each GUID + `u16` length (50) + SHA-256: the command
//! line (its bytes plus a terminating NUL; a lone NUL when empty), the
//! initrd (of no bytes when there is none) and the kernel. The table is
//! zero-padded to a multiple of 16 bytes (176).

use sha2::{Digest, Sha256};

use super::Guid;

/// The table's header GUID.
pub const HEADER_GUID: Guid = Guid::new(
    0x9438_d606,
    0x4f22,
    0x4cc9,
    [0xb4, 0x79, 0xa7, 0x93, 0xd4, 0x11, 0xfd, 0x21],
);
/// The kernel entry's GUID.
pub const KERNEL_GUID: Guid = Guid::new(
    0x4de7_9437,
    0xabd2,
    0x427f,
    [0xb8, 0x35, 0xd5, 0xb1, 0x72, 0xd2, 0x04, 0x5b],
);
/// The initrd entry's GUID.
pub const INITRD_GUID: Guid = Guid::new(
    0x44ba_f731,
    0x3a2f,
    0x4bd7,
    [0x9a, 0xf1, 0x41, 0xe2, 0x91, 0x69, 0x78, 0x1d],
);
/// The command line entry's GUID.
pub const CMDLINE_GUID: Guid = Guid::new(
    0x97d0_2dd8,
    0xbd20,
    0x4c94,
    [0xaa, 0x78, 0xe7, 0x71, 0x4d, 0x36, 0xab, 0x2a],
);

/// GUID + `u16` length + SHA-256.
const ENTRY_LEN: usize = 16 + 2 + 32;
/// Header GUID + `u16` length + three entries (168).
const UNPADDED_LEN: usize = 16 + 2 + 3 * ENTRY_LEN;
/// The table as placed in the page, padded to 16 bytes.
pub const TABLE_LEN: usize = UNPADDED_LEN.next_multiple_of(16);

/// SHA-256 of the kernel, the initrd and the command line, as QEMU puts
/// them in the hashes table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelHashes {
    /// SHA-256 of the kernel image.
    pub kernel: [u8; 32],
    /// SHA-256 of the initrd (of no bytes when there is none).
    pub initrd: [u8; 32],
    /// SHA-256 of the command line and its NUL terminator.
    pub cmdline: [u8; 32],
}

impl KernelHashes {
    /// Hashes the contents as QEMU does: `initrd` empty when absent, the
    /// command line's UTF-8 bytes followed by one NUL (`None` and `""` both
    /// give a lone NUL).
    pub fn new(kernel: &[u8], initrd: Option<&[u8]>, append: Option<&str>) -> Self {
        let mut cmdline = Sha256::new();
        cmdline.update(append.unwrap_or("").as_bytes());
        cmdline.update([0u8]);
        Self {
            kernel: Sha256::digest(kernel).into(),
            initrd: Sha256::digest(initrd.unwrap_or(&[])).into(),
            cmdline: cmdline.finalize().into(),
        }
    }

    /// The padded table, byte for byte as QEMU writes it.
    pub fn table(&self) -> [u8; TABLE_LEN] {
        let mut out = [0u8; TABLE_LEN];
        let mut at = 0usize;
        let mut push = |bytes: &[u8]| {
            if let Some(dst) = out.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
            at += bytes.len();
        };
        push(&HEADER_GUID.0);
        push(&(UNPADDED_LEN as u16).to_le_bytes());
        for (guid, hash) in [
            (CMDLINE_GUID, &self.cmdline),
            (INITRD_GUID, &self.initrd),
            (KERNEL_GUID, &self.kernel),
        ] {
            push(&guid.0);
            push(&(ENTRY_LEN as u16).to_le_bytes());
            push(hash);
        }
        out
    }
}
