//! The Intel SGX extension of PCK certificates (OID 1.2.840.113741.1.13.1),
//! per Intel's "SGX PCK Certificate and Certificate Revocation List Profile
//! Specification": PPID, TCB (16 SGX components, PCESVN, CPUSVN), PCE-ID,
//! FMSPC, SGX type, and for Platform-CA-issued certificates the platform
//! instance id and configuration (dynamic platform, cached keys, SMT).
//!
//! Parsed from the extension value without allocating.

use crate::der::{self, DerReader, tag};
use crate::x509::Certificate;

use super::error::TdxError;

/// OID of the SGX extension.
pub const SGX_EXTENSION: &[u64] = &[1, 2, 840, 113_741, 1, 13, 1];

/// The SGX type of the platform (PCK extension 1.2.840.113741.1.13.1.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum SgxType {
    /// 0: Standard.
    Standard,
    /// 1: Scalable.
    Scalable,
    /// 2: Scalable with integrity.
    ScalableWithIntegrity,
}

/// Platform configuration flags (PCK extension …13.1.7, Platform CA only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlatformConfiguration {
    /// Whether the platform can be extended with more packages.
    pub dynamic_platform: Option<bool>,
    /// Whether platform root keys are cached by Intel.
    pub cached_keys: Option<bool>,
    /// Whether SMT (hyper-threading) is enabled.
    pub smt_enabled: Option<bool>,
}

/// The decoded SGX extension of a PCK certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PckExtension {
    /// PPID (16 bytes).
    pub ppid: [u8; 16],
    /// The 16 SGX TCB component SVNs.
    pub sgx_components: [u8; 16],
    /// PCESVN.
    pub pce_svn: u16,
    /// CPUSVN.
    pub cpu_svn: [u8; 16],
    /// PCE-ID.
    pub pce_id: [u8; 2],
    /// FMSPC.
    pub fmspc: [u8; 6],
    /// SGX type.
    pub sgx_type: SgxType,
    /// Platform instance id (Platform CA certificates only).
    pub platform_instance_id: Option<[u8; 16]>,
    /// Platform configuration (Platform CA certificates only).
    pub configuration: Option<PlatformConfiguration>,
}

fn err(field: &'static str) -> TdxError {
    TdxError::PckExtension { field }
}

/// DER contents of the SGX extension OID 1.2.840.113741.1.13.1; member
/// OIDs append small arcs to it, one byte each.
const SGX_OID_PREFIX: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01];

/// Whether `oid` (DER contents) is 1.2.840.113741.1.13.1 followed by `tail`
/// (arcs below 128, as all SGX extension members are).
fn arc_is(oid: &[u8], tail: &[u8]) -> bool {
    oid.len() == SGX_OID_PREFIX.len() + tail.len()
        && oid.starts_with(&SGX_OID_PREFIX)
        && oid.ends_with(tail)
}

fn octets<const N: usize>(contents: &[u8], field: &'static str) -> Result<[u8; N], TdxError> {
    let value = der::single(contents, tag::OCTET_STRING).map_err(|_| err(field))?;
    value.contents.try_into().map_err(|_| err(field))
}

fn small_uint(tlv_contents: &[u8], field: &'static str) -> Result<u64, TdxError> {
    let value = der::single(tlv_contents, tag::INTEGER).map_err(|_| err(field))?;
    der::uint_u64(value.contents).map_err(|_| err(field))
}

fn parse_tcb(value: &[u8], out: &mut PckExtension) -> Result<(), TdxError> {
    const F: &str = "TCB";
    let mut r = DerReader::new(value);
    let mut seen = 0u32;
    while !r.is_empty() {
        let entry = r.expect(tag::SEQUENCE).map_err(|_| err(F))?;
        let mut e = DerReader::new(entry);
        let oid = e.expect(tag::OID).map_err(|_| err(F))?;
        let rest = e.read().map_err(|_| err(F))?;
        e.finish().map_err(|_| err(F))?;
        let mut matched = false;
        for (arc, slot) in (1u8..).zip(out.sgx_components.iter_mut()) {
            if arc_is(oid, &[2, arc]) {
                *slot =
                    u8::try_from(small_uint(rest.raw, "TCB component SVN")?).map_err(|_| err(F))?;
                seen |= 1 << (arc - 1);
                matched = true;
            }
        }
        if arc_is(oid, &[2, 17]) {
            out.pce_svn =
                u16::try_from(small_uint(rest.raw, "PCESVN")?).map_err(|_| err("PCESVN"))?;
            seen |= 1 << 16;
        } else if arc_is(oid, &[2, 18]) {
            out.cpu_svn = octets(rest.raw, "CPUSVN")?;
            seen |= 1 << 17;
        } else if !matched {
            return Err(err(F));
        }
    }
    if seen != (1 << 18) - 1 {
        return Err(err(F));
    }
    Ok(())
}

fn boolean(raw: &[u8], field: &'static str) -> Result<bool, TdxError> {
    let value = der::single(raw, tag::BOOLEAN).map_err(|_| err(field))?;
    der::boolean(value.contents).map_err(|_| err(field))
}

fn parse_configuration(value: &[u8]) -> Result<PlatformConfiguration, TdxError> {
    const F: &str = "Configuration";
    let mut config = PlatformConfiguration::default();
    let mut r = DerReader::new(value);
    while !r.is_empty() {
        let entry = r.expect(tag::SEQUENCE).map_err(|_| err(F))?;
        let mut e = DerReader::new(entry);
        let oid = e.expect(tag::OID).map_err(|_| err(F))?;
        let rest = e.read().map_err(|_| err(F))?;
        e.finish().map_err(|_| err(F))?;
        let slot = if arc_is(oid, &[7, 1]) {
            &mut config.dynamic_platform
        } else if arc_is(oid, &[7, 2]) {
            &mut config.cached_keys
        } else if arc_is(oid, &[7, 3]) {
            &mut config.smt_enabled
        } else {
            return Err(err(F));
        };
        if slot.replace(boolean(rest.raw, F)?).is_some() {
            return Err(err(F));
        }
    }
    Ok(config)
}

impl PckExtension {
    /// Decodes the SGX extension of a PCK certificate.
    pub fn from_certificate(cert: &Certificate<'_>) -> Result<Self, TdxError> {
        let ext = cert
            .extension(SGX_EXTENSION)
            .map_err(|_| err("SGX extension"))?
            .ok_or(err("SGX extension"))?;
        Self::parse(ext.value)
    }

    /// Decodes the SGX extension value (a DER `SEQUENCE OF SEQUENCE {OID, value}`).
    pub fn parse(value: &[u8]) -> Result<Self, TdxError> {
        let outer = der::single(value, tag::SEQUENCE).map_err(|_| err("SGX extension"))?;
        let mut out = PckExtension {
            ppid: [0; 16],
            sgx_components: [0; 16],
            pce_svn: 0,
            cpu_svn: [0; 16],
            pce_id: [0; 2],
            fmspc: [0; 6],
            sgx_type: SgxType::Standard,
            platform_instance_id: None,
            configuration: None,
        };
        let mut seen = 0u8;
        let mut r = DerReader::new(outer.contents);
        while !r.is_empty() {
            let entry = r.expect(tag::SEQUENCE).map_err(|_| err("SGX extension"))?;
            let mut e = DerReader::new(entry);
            let oid = e.expect(tag::OID).map_err(|_| err("SGX extension"))?;
            let value = e.read().map_err(|_| err("SGX extension"))?;
            e.finish().map_err(|_| err("SGX extension"))?;
            let bit = if arc_is(oid, &[1]) {
                out.ppid = octets(value.raw, "PPID")?;
                1
            } else if arc_is(oid, &[2]) {
                if value.tag != tag::SEQUENCE {
                    return Err(err("TCB"));
                }
                parse_tcb(value.contents, &mut out)?;
                2
            } else if arc_is(oid, &[3]) {
                out.pce_id = octets(value.raw, "PCE-ID")?;
                4
            } else if arc_is(oid, &[4]) {
                out.fmspc = octets(value.raw, "FMSPC")?;
                8
            } else if arc_is(oid, &[5]) {
                if value.tag != tag::ENUMERATED {
                    return Err(err("SGX type"));
                }
                out.sgx_type = match der::uint_u64(value.contents).map_err(|_| err("SGX type"))? {
                    0 => SgxType::Standard,
                    1 => SgxType::Scalable,
                    2 => SgxType::ScalableWithIntegrity,
                    _ => return Err(err("SGX type")),
                };
                16
            } else if arc_is(oid, &[6]) {
                out.platform_instance_id = Some(octets(value.raw, "PlatformInstanceID")?);
                32
            } else if arc_is(oid, &[7]) {
                if value.tag != tag::SEQUENCE {
                    return Err(err("Configuration"));
                }
                out.configuration = Some(parse_configuration(value.contents)?);
                64
            } else {
                // Unknown members are tolerated, as Intel may add some.
                0
            };
            if seen & bit != 0 {
                return Err(err("duplicate SGX extension member"));
            }
            seen |= bit;
        }
        const REQUIRED: u8 = 1 | 2 | 4 | 8 | 16;
        if seen & REQUIRED != REQUIRED {
            return Err(err("required SGX extension member"));
        }
        Ok(out)
    }
}
