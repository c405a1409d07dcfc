//! Products (CPU generations) and the `TCB_VERSION` structure.
//!
//! `TCB_VERSION` is a 64-bit little-endian value whose byte layout depends on
//! the CPU generation (SEV-SNP Firmware ABI Specification, publication 56860,
//! "TCB_VERSION Structure", Table 3; the Turin layout comes from the
//! revisions that add Turin, 1.57 and later):
//!
//! | byte | Milan / Genoa | Turin |
//! |---|---|---|
//! | 0 | BOOT_LOADER | FMC |
//! | 1 | TEE | BOOT_LOADER |
//! | 2 | reserved | TEE |
//! | 3 | reserved | SNP |
//! | 4..=5 | reserved | reserved |
//! | 6 | SNP | reserved |
//! | 7 | MICROCODE | MICROCODE |
//!
//! A version-2 report does not say which generation produced it, so the
//! layout is chosen by the caller's [`Product`] (or, for version 3 and later,
//! by [`Product::from_cpuid`]).

use core::fmt;

use serde::{Deserialize, Serialize};

/// An AMD EPYC generation with SEV-SNP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Product {
    /// EPYC 7003 (Zen 3, family 19h models 00h-0Fh).
    Milan,
    /// EPYC 9004 (Zen 4, family 19h models 10h-1Fh).
    Genoa,
    /// EPYC 9005 (Zen 5, family 1Ah).
    Turin,
}

impl Product {
    /// Every product, in release order.
    pub const ALL: [Product; 3] = [Product::Milan, Product::Genoa, Product::Turin];

    /// The product from the CPUID family and model the report carries
    /// (version 3 and later): Milan = family 19h models 00h-0Fh, Genoa =
    /// family 19h models 10h-1Fh, Turin = family 1Ah. Anything else is
    /// unknown.
    pub const fn from_cpuid(family: u8, model: u8) -> Option<Product> {
        match (family, model) {
            (0x19, 0x00..=0x0f) => Some(Product::Milan),
            (0x19, 0x10..=0x1f) => Some(Product::Genoa),
            (0x1a, _) => Some(Product::Turin),
            _ => None,
        }
    }

    /// The product named by a VCEK/VLEK `productName` extension. AMD writes
    /// the product, optionally followed by `-` and a stepping (`Milan-B0`).
    pub fn from_product_name(name: &str) -> Option<Product> {
        let base = name.split('-').next().unwrap_or(name);
        Product::ALL.into_iter().find(|p| p.name() == base)
    }

    /// The name AMD uses (`Milan`, `Genoa`, `Turin`).
    pub const fn name(self) -> &'static str {
        match self {
            Product::Milan => "Milan",
            Product::Genoa => "Genoa",
            Product::Turin => "Turin",
        }
    }

    /// Number of leading CHIP_ID bytes that form the hardware id in the
    /// VCEK's `hwID` extension: 64, except Turin's 8.
    pub const fn hw_id_len(self) -> usize {
        match self {
            Product::Milan | Product::Genoa => 64,
            Product::Turin => 8,
        }
    }

    /// Whether the TCB carries an FMC component (Turin and later).
    pub const fn has_fmc(self) -> bool {
        matches!(self, Product::Turin)
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A decoded `TCB_VERSION`: the security patch level of each firmware
/// component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct TcbVersion {
    /// The FMC (first mutable code) SPL; `None` before Turin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
    /// The PSP bootloader SPL.
    pub bootloader: u8,
    /// The PSP OS (TEE) SPL.
    pub tee: u8,
    /// The SNP firmware SPL.
    pub snp: u8,
    /// The lowest microcode patch level of all cores.
    pub microcode: u8,
}

/// A `TCB_VERSION` whose reserved bytes are not zero for its product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcbReservedNonZero {
    /// The raw value.
    pub raw: u64,
    /// The product whose layout was applied.
    pub product: Product,
}

impl TcbVersion {
    /// Decodes a raw little-endian `TCB_VERSION` with `product`'s layout,
    /// refusing non-zero reserved bytes.
    pub fn decode(raw: u64, product: Product) -> Result<Self, TcbReservedNonZero> {
        let b = raw.to_le_bytes();
        let (tcb, reserved) = match product {
            Product::Milan | Product::Genoa => (
                TcbVersion {
                    fmc: None,
                    bootloader: b[0],
                    tee: b[1],
                    snp: b[6],
                    microcode: b[7],
                },
                [b[2], b[3], b[4], b[5]],
            ),
            Product::Turin => (
                TcbVersion {
                    fmc: Some(b[0]),
                    bootloader: b[1],
                    tee: b[2],
                    snp: b[3],
                    microcode: b[7],
                },
                [b[4], b[5], b[6], 0],
            ),
        };
        if reserved == [0; 4] {
            Ok(tcb)
        } else {
            Err(TcbReservedNonZero { raw, product })
        }
    }

    /// Encodes back to the raw value with `product`'s layout (a missing FMC
    /// is encoded as 0).
    pub fn encode(self, product: Product) -> u64 {
        let mut b = [0u8; 8];
        match product {
            Product::Milan | Product::Genoa => {
                b[0] = self.bootloader;
                b[1] = self.tee;
                b[6] = self.snp;
                b[7] = self.microcode;
            }
            Product::Turin => {
                b[0] = self.fmc.unwrap_or(0);
                b[1] = self.bootloader;
                b[2] = self.tee;
                b[3] = self.snp;
                b[7] = self.microcode;
            }
        }
        u64::from_le_bytes(b)
    }

    /// The components as `(name, value)` pairs, in a fixed order, skipping
    /// the FMC when absent.
    pub fn components(&self) -> impl Iterator<Item = (TcbComponent, u8)> + '_ {
        [
            self.fmc.map(|v| (TcbComponent::Fmc, v)),
            Some((TcbComponent::Bootloader, self.bootloader)),
            Some((TcbComponent::Tee, self.tee)),
            Some((TcbComponent::Snp, self.snp)),
            Some((TcbComponent::Microcode, self.microcode)),
        ]
        .into_iter()
        .flatten()
    }
}

impl fmt::Display for TcbVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(fmc) = self.fmc {
            write!(f, "fmc={fmc} ")?;
        }
        write!(
            f,
            "bootloader={} tee={} snp={} microcode={}",
            self.bootloader, self.tee, self.snp, self.microcode
        )
    }
}

/// One component of a TCB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcbComponent {
    /// First mutable code (Turin).
    Fmc,
    /// PSP bootloader.
    Bootloader,
    /// PSP OS.
    Tee,
    /// SNP firmware.
    Snp,
    /// CPU microcode.
    Microcode,
}

impl TcbComponent {
    /// The component's name as used in error messages.
    pub const fn name(self) -> &'static str {
        match self {
            TcbComponent::Fmc => "fmc",
            TcbComponent::Bootloader => "bootloader",
            TcbComponent::Tee => "tee",
            TcbComponent::Snp => "snp",
            TcbComponent::Microcode => "microcode",
        }
    }
}

impl fmt::Display for TcbComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_both_layouts() {
        let milan = TcbVersion::decode(0x4405_0000_0000_0002, Product::Milan).unwrap();
        assert_eq!(
            milan,
            TcbVersion {
                fmc: None,
                bootloader: 2,
                tee: 0,
                snp: 5,
                microcode: 68
            }
        );
        assert_eq!(milan.encode(Product::Milan), 0x4405_0000_0000_0002);
        let turin = TcbVersion::decode(0x5100_0000_0401_0101, Product::Turin).unwrap();
        assert_eq!(
            turin,
            TcbVersion {
                fmc: Some(1),
                bootloader: 1,
                tee: 1,
                snp: 4,
                microcode: 81
            }
        );
        assert_eq!(turin.encode(Product::Turin), 0x5100_0000_0401_0101);
        // Turin bytes read with the Milan layout land in reserved bytes.
        assert!(TcbVersion::decode(0x5100_0000_0401_0101, Product::Milan).is_err());
        assert!(TcbVersion::decode(0x4405_0000_0000_0002, Product::Turin).is_err());
    }

    #[test]
    fn products() {
        assert_eq!(Product::from_cpuid(0x19, 0x01), Some(Product::Milan));
        assert_eq!(Product::from_cpuid(0x19, 0x11), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(0x1a, 0x02), Some(Product::Turin));
        assert_eq!(Product::from_cpuid(0x19, 0x20), None);
        assert_eq!(Product::from_cpuid(0, 0), None);
        assert_eq!(Product::from_product_name("Milan-B0"), Some(Product::Milan));
        assert_eq!(Product::from_product_name("Genoa"), Some(Product::Genoa));
        assert_eq!(Product::from_product_name("Turin"), Some(Product::Turin));
        assert_eq!(Product::from_product_name("Milano"), None);
        assert_eq!(Product::from_product_name(""), None);
    }
}
