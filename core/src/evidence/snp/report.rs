//! The `ATTESTATION_REPORT` structure, parsed as a borrowed view.
//!
//! Byte layout per the SEV-SNP Firmware ABI Specification (AMD publication
//! 56860), "ATTESTATION_REPORT Structure" (Table 23 in rev. 1.57/1.58,
//! Table 21 or 22 in older revisions), with the signature in the spec's ECDSA
//! P-384 signature format (`R`, `S` as 72-byte little-endian integers, then
//! reserved bytes). Report versions accepted: 2 (Milan/Genoa
//! firmware before CPUID fields), 3 (adds CPUID_FAM_ID/MOD_ID/STEP at
//! 188h..18Ah) and 5 (Turin-era firmware; adds LAUNCH_MIT_VECTOR and
//! CURRENT_MIT_VECTOR at 1F8h/200h).
//!
//! | offset | size | field |
//! |---|---|---|
//! | 000h | 4 | VERSION |
//! | 004h | 4 | GUEST_SVN |
//! | 008h | 8 | POLICY |
//! | 010h | 16 | FAMILY_ID |
//! | 020h | 16 | IMAGE_ID |
//! | 030h | 4 | VMPL |
//! | 034h | 4 | SIGNATURE_ALGO (1 = ECDSA P-384 with SHA-384) |
//! | 038h | 8 | CURRENT_TCB |
//! | 040h | 8 | PLATFORM_INFO |
//! | 048h | 4 | flags: AUTHOR_KEY_EN, MASK_CHIP_KEY, SIGNING_KEY |
//! | 04Ch | 4 | reserved |
//! | 050h | 64 | REPORT_DATA |
//! | 090h | 48 | MEASUREMENT |
//! | 0C0h | 32 | HOST_DATA |
//! | 0E0h | 48 | ID_KEY_DIGEST |
//! | 110h | 48 | AUTHOR_KEY_DIGEST |
//! | 140h | 32 | REPORT_ID |
//! | 160h | 32 | REPORT_ID_MA |
//! | 180h | 8 | REPORTED_TCB |
//! | 188h | 1+1+1 | CPUID_FAM_ID, CPUID_MOD_ID, CPUID_STEP (v3+; reserved in v2) |
//! | 18Bh | 21 | reserved |
//! | 1A0h | 64 | CHIP_ID |
//! | 1E0h | 8 | COMMITTED_TCB |
//! | 1E8h | 1+1+1 | CURRENT_BUILD, CURRENT_MINOR, CURRENT_MAJOR |
//! | 1EBh | 1 | reserved |
//! | 1ECh | 1+1+1 | COMMITTED_BUILD, COMMITTED_MINOR, COMMITTED_MAJOR |
//! | 1EFh | 1 | reserved |
//! | 1F0h | 8 | LAUNCH_TCB |
//! | 1F8h | 8 | LAUNCH_MIT_VECTOR (v5; reserved before) |
//! | 200h | 8 | CURRENT_MIT_VECTOR (v5; reserved before) |
//! | 208h | 152 | reserved |
//! | 2A0h | 72 | SIGNATURE.R (little-endian; only the low 48 bytes may be non-zero) |
//! | 2E8h | 72 | SIGNATURE.S (little-endian; likewise) |
//! | 330h | 368 | reserved |
//!
//! Every reserved range is checked to be zero. The signature covers
//! `[000h, 2A0h)`.

use crate::codec::{CodecError, Reader};

use super::error::ReportError;
use super::policy::{GuestPolicy, PlatformInfo, ReportFlags, SigningKey};
use super::tcb::Product;

/// Size of a report in bytes.
pub const REPORT_LEN: usize = 0x4A0;
/// Length of the signed prefix.
pub const SIGNED_LEN: usize = 0x2A0;
/// The only signature algorithm defined: ECDSA P-384 with SHA-384.
pub const SIGNATURE_ALGO_ECDSA_P384_SHA384: u32 = 1;

/// CPUID_FAM_ID / CPUID_MOD_ID / CPUID_STEP (report version 3 and later).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cpuid {
    /// Combined extended family and family.
    pub family: u8,
    /// Combined extended model and model.
    pub model: u8,
    /// Stepping.
    pub stepping: u8,
}

/// A firmware version as build, minor, major (the report's byte order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct FirmwareVersion {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Build number.
    pub build: u8,
}

/// A parsed, not yet authenticated, attestation report. Every field borrows
/// from (or is copied out of) the input; nothing is allocated.
#[derive(Clone, Copy, Debug)]
pub struct AttestationReport<'a> {
    raw: &'a [u8; REPORT_LEN],
    /// VERSION: 2, 3 or 5.
    pub version: u32,
    /// GUEST_SVN.
    pub guest_svn: u32,
    /// POLICY.
    pub policy: GuestPolicy,
    /// FAMILY_ID from the ID block.
    pub family_id: &'a [u8; 16],
    /// IMAGE_ID from the ID block.
    pub image_id: &'a [u8; 16],
    /// VMPL the report was requested from.
    pub vmpl: u32,
    /// SIGNATURE_ALGO (always 1 after parsing).
    pub signature_algo: u32,
    /// CURRENT_TCB, raw.
    pub current_tcb: u64,
    /// PLATFORM_INFO.
    pub platform_info: PlatformInfo,
    /// The flags word at 48h.
    pub flags: ReportFlags,
    /// REPORT_DATA supplied by the guest.
    pub report_data: &'a [u8; 64],
    /// MEASUREMENT (launch digest).
    pub measurement: &'a [u8; 48],
    /// HOST_DATA supplied by the host at launch.
    pub host_data: &'a [u8; 32],
    /// ID_KEY_DIGEST (SHA-384 of the ID public key).
    pub id_key_digest: &'a [u8; 48],
    /// AUTHOR_KEY_DIGEST (SHA-384 of the author public key).
    pub author_key_digest: &'a [u8; 48],
    /// REPORT_ID.
    pub report_id: &'a [u8; 32],
    /// REPORT_ID_MA (migration agent).
    pub report_id_ma: &'a [u8; 32],
    /// REPORTED_TCB, raw: the TCB the signing key was derived for.
    pub reported_tcb: u64,
    /// CPUID fields (version 3 and later).
    pub cpuid: Option<Cpuid>,
    /// CHIP_ID (zero when MASK_CHIP_ID or for VLEK-signed reports may be zero).
    pub chip_id: &'a [u8; 64],
    /// COMMITTED_TCB, raw.
    pub committed_tcb: u64,
    /// CURRENT_BUILD/MINOR/MAJOR.
    pub current_version: FirmwareVersion,
    /// COMMITTED_BUILD/MINOR/MAJOR.
    pub committed_version: FirmwareVersion,
    /// LAUNCH_TCB, raw.
    pub launch_tcb: u64,
    /// LAUNCH_MIT_VECTOR (version 5).
    pub launch_mit_vector: Option<u64>,
    /// CURRENT_MIT_VECTOR (version 5).
    pub current_mit_vector: Option<u64>,
    /// SIGNATURE.R, 72 bytes little-endian.
    pub signature_r: &'a [u8; 72],
    /// SIGNATURE.S, 72 bytes little-endian.
    pub signature_s: &'a [u8; 72],
}

fn at(offset: usize) -> impl Fn(CodecError) -> ReportError {
    move |err| match err {
        CodecError::NonZero { offset } => ReportError::ReservedNonZero { offset },
        _ => ReportError::Truncated { offset },
    }
}

fn version_triple(r: &mut Reader<'_>) -> Result<FirmwareVersion, CodecError> {
    let build = r.u8()?;
    let minor = r.u8()?;
    let major = r.u8()?;
    Ok(FirmwareVersion {
        major,
        minor,
        build,
    })
}

impl<'a> AttestationReport<'a> {
    /// Parses a report. Refuses a length other than 1184 bytes, a version
    /// other than 2, 3 or 5, a signature algorithm other than 1, a policy
    /// with bit 17 clear, a signing key other than VCEK/VLEK, and any
    /// non-zero reserved byte (including the upper 24 bytes of R and S).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ReportError> {
        let raw: &'a [u8; REPORT_LEN] = bytes.try_into().map_err(|_| ReportError::WrongLength {
            actual: bytes.len(),
        })?;
        let mut r = Reader::new(raw);
        let e = |o| at(o);
        let version = r.u32_le().map_err(e(0x00))?;
        if !matches!(version, 2 | 3 | 5) {
            return Err(ReportError::UnsupportedVersion(version));
        }
        let guest_svn = r.u32_le().map_err(e(0x04))?;
        let policy = GuestPolicy(r.u64_le().map_err(e(0x08))?);
        if policy.0 & GuestPolicy::RESERVED_MBO == 0 {
            return Err(ReportError::PolicyBit17Clear { policy: policy.0 });
        }
        let family_id = r.take_array().map_err(e(0x10))?;
        let image_id = r.take_array().map_err(e(0x20))?;
        let vmpl = r.u32_le().map_err(e(0x30))?;
        let signature_algo = r.u32_le().map_err(e(0x34))?;
        if signature_algo != SIGNATURE_ALGO_ECDSA_P384_SHA384 {
            return Err(ReportError::UnsupportedSignatureAlgo(signature_algo));
        }
        let current_tcb = r.u64_le().map_err(e(0x38))?;
        let platform_info = PlatformInfo(r.u64_le().map_err(e(0x40))?);
        let flags_raw = r.u32_le().map_err(e(0x48))?;
        let flags = parse_flags(flags_raw)?;
        r.skip_zero(4).map_err(e(0x4c))?;
        let report_data = r.take_array().map_err(e(0x50))?;
        let measurement = r.take_array().map_err(e(0x90))?;
        let host_data = r.take_array().map_err(e(0xc0))?;
        let id_key_digest = r.take_array().map_err(e(0xe0))?;
        let author_key_digest = r.take_array().map_err(e(0x110))?;
        let report_id = r.take_array().map_err(e(0x140))?;
        let report_id_ma = r.take_array().map_err(e(0x160))?;
        let reported_tcb = r.u64_le().map_err(e(0x180))?;
        let cpuid = if version >= 3 {
            let family = r.u8().map_err(e(0x188))?;
            let model = r.u8().map_err(e(0x189))?;
            let stepping = r.u8().map_err(e(0x18a))?;
            r.skip_zero(21).map_err(e(0x18b))?;
            Some(Cpuid {
                family,
                model,
                stepping,
            })
        } else {
            r.skip_zero(24).map_err(e(0x188))?;
            None
        };
        let chip_id = r.take_array().map_err(e(0x1a0))?;
        let committed_tcb = r.u64_le().map_err(e(0x1e0))?;
        let current_version = version_triple(&mut r).map_err(e(0x1e8))?;
        r.skip_zero(1).map_err(e(0x1eb))?;
        let committed_version = version_triple(&mut r).map_err(e(0x1ec))?;
        r.skip_zero(1).map_err(e(0x1ef))?;
        let launch_tcb = r.u64_le().map_err(e(0x1f0))?;
        let (launch_mit_vector, current_mit_vector) = if version >= 5 {
            let launch = r.u64_le().map_err(e(0x1f8))?;
            let current = r.u64_le().map_err(e(0x200))?;
            r.skip_zero(152).map_err(e(0x208))?;
            (Some(launch), Some(current))
        } else {
            r.skip_zero(168).map_err(e(0x1f8))?;
            (None, None)
        };
        let signature_r = r.take_array::<72>().map_err(e(0x2a0))?;
        let signature_s = r.take_array::<72>().map_err(e(0x2e8))?;
        r.skip_zero(368).map_err(e(0x330))?;
        r.finish().map_err(e(REPORT_LEN))?;
        for (field_offset, scalar) in [(0x2a0, signature_r), (0x2e8, signature_s)] {
            if let Some(i) = scalar.iter().skip(48).position(|b| *b != 0) {
                return Err(ReportError::ReservedNonZero {
                    offset: field_offset + 48 + i,
                });
            }
        }
        Ok(Self {
            raw,
            version,
            guest_svn,
            policy,
            family_id,
            image_id,
            vmpl,
            signature_algo,
            current_tcb,
            platform_info,
            flags,
            report_data,
            measurement,
            host_data,
            id_key_digest,
            author_key_digest,
            report_id,
            report_id_ma,
            reported_tcb,
            cpuid,
            chip_id,
            committed_tcb,
            current_version,
            committed_version,
            launch_tcb,
            launch_mit_vector,
            current_mit_vector,
            signature_r,
            signature_s,
        })
    }

    /// The whole report.
    pub fn raw(&self) -> &'a [u8; REPORT_LEN] {
        self.raw
    }

    /// The signed bytes `[0, 2A0h)`.
    pub fn signed_bytes(&self) -> &'a [u8] {
        let (signed, _) = self.raw.split_at(SIGNED_LEN);
        signed
    }

    /// The signature as fixed-size big-endian `r ‖ s` (96 bytes), as the
    /// crypto provider takes it. The parser has checked that the upper 24
    /// bytes of each little-endian field are zero.
    pub fn signature_fixed_be(&self) -> [u8; 96] {
        let mut out = [0u8; 96];
        let (r_out, s_out) = out.split_at_mut(48);
        for (dst, src) in r_out.iter_mut().rev().zip(self.signature_r.iter()) {
            *dst = *src;
        }
        for (dst, src) in s_out.iter_mut().rev().zip(self.signature_s.iter()) {
            *dst = *src;
        }
        out
    }

    /// The product the report's CPUID fields name (version 3 and later);
    /// `None` for version 2 or an unknown family/model.
    pub fn product_from_cpuid(&self) -> Option<Product> {
        self.cpuid
            .and_then(|c| Product::from_cpuid(c.family, c.model))
    }

    /// The hardware id a VCEK for `product` carries in its `hwID`
    /// extension: CHIP_ID, truncated to 8 bytes for Turin.
    pub fn hw_id(&self, product: Product) -> &'a [u8] {
        let (id, _) = self.chip_id.split_at(product.hw_id_len().min(64));
        id
    }
}

fn parse_flags(raw: u32) -> Result<ReportFlags, ReportError> {
    if raw >> 5 != 0 {
        return Err(ReportError::ReservedFlags { flags: raw });
    }
    let signing_key = match (raw >> 2) & 0x7 {
        0 => SigningKey::Vcek,
        1 => SigningKey::Vlek,
        other => return Err(ReportError::UnknownSigningKey(other as u8)),
    };
    Ok(ReportFlags {
        raw,
        author_key_en: raw & 1 == 1,
        mask_chip_key: raw >> 1 & 1 == 1,
        signing_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal(version: u32) -> [u8; REPORT_LEN] {
        let mut b = [0u8; REPORT_LEN];
        b[0..4].copy_from_slice(&version.to_le_bytes());
        b[8..16].copy_from_slice(&0x30000u64.to_le_bytes());
        b[0x34..0x38].copy_from_slice(&1u32.to_le_bytes());
        b
    }

    #[test]
    fn parses_minimal_and_refuses_bad_headers() {
        for v in [2, 3, 5] {
            let b = minimal(v);
            let r = AttestationReport::parse(&b).unwrap();
            assert_eq!(r.version, v);
            assert_eq!(r.cpuid.is_some(), v >= 3);
            assert_eq!(r.launch_mit_vector.is_some(), v >= 5);
        }
        for v in [0, 1, 4, 6, u32::MAX] {
            assert_eq!(
                AttestationReport::parse(&minimal(v)).unwrap_err(),
                ReportError::UnsupportedVersion(v)
            );
        }
        let b = minimal(2);
        assert_eq!(
            AttestationReport::parse(&b[..1183]).unwrap_err(),
            ReportError::WrongLength { actual: 1183 }
        );
        let mut long = [0u8; REPORT_LEN + 1];
        long[..REPORT_LEN].copy_from_slice(&b);
        assert_eq!(
            AttestationReport::parse(&long).unwrap_err(),
            ReportError::WrongLength { actual: 1185 }
        );

        let mut b = minimal(2);
        b[0x34] = 2;
        assert_eq!(
            AttestationReport::parse(&b).unwrap_err(),
            ReportError::UnsupportedSignatureAlgo(2)
        );
        let mut b = minimal(2);
        b[0x0a] = 0;
        assert_eq!(
            AttestationReport::parse(&b).unwrap_err(),
            ReportError::PolicyBit17Clear { policy: 0 }
        );
        let mut b = minimal(2);
        b[0x48] = 2 << 2;
        assert_eq!(
            AttestationReport::parse(&b).unwrap_err(),
            ReportError::UnknownSigningKey(2)
        );
        b[0x48] = 1 << 5;
        assert_eq!(
            AttestationReport::parse(&b).unwrap_err(),
            ReportError::ReservedFlags { flags: 32 }
        );
        b[0x48] = 1 << 2;
        assert_eq!(
            AttestationReport::parse(&b).unwrap().flags.signing_key,
            SigningKey::Vlek
        );
    }

    #[test]
    fn refuses_every_reserved_byte() {
        let ranges_v2: &[(usize, usize)] = &[
            (0x4c, 0x50),
            (0x188, 0x1a0),
            (0x1eb, 0x1ec),
            (0x1ef, 0x1f0),
            (0x1f8, 0x2a0),
            (0x2d0, 0x2e8),
            (0x318, REPORT_LEN),
        ];
        for v in [2u32, 3, 5] {
            for &(start, end) in ranges_v2 {
                for offset in start..end {
                    let in_v3_cpuid = (0x188..0x18b).contains(&offset);
                    let in_v5_mit = (0x1f8..0x208).contains(&offset);
                    if (v >= 3 && in_v3_cpuid) || (v >= 5 && in_v5_mit) {
                        continue;
                    }
                    let mut b = minimal(v);
                    b[offset] = 0x80;
                    assert_eq!(
                        AttestationReport::parse(&b).unwrap_err(),
                        ReportError::ReservedNonZero { offset },
                        "version {v} offset {offset:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn signature_is_converted_to_big_endian() {
        let mut b = minimal(3);
        b[0x2a0] = 1; // r least significant byte
        b[0x2a0 + 47] = 2; // r most significant allowed byte
        b[0x2e8] = 3;
        let r = AttestationReport::parse(&b).unwrap();
        let sig = r.signature_fixed_be();
        assert_eq!(sig[47], 1);
        assert_eq!(sig[0], 2);
        assert_eq!(sig[95], 3);
    }
}
