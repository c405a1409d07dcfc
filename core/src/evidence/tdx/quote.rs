//! The DCAP quote format for TDX: version 4 and version 5 quotes, parsed into
//! borrowed views without allocating.
//!
//! Layout (Intel TDX DCAP Quoting Library API, "Quote Format", v4 and v5):
//!
//! ```text
//! header[48]                              (version, att_key_type, tee_type, …)
//! v4: td_report_body[584]
//! v5: body_type u16, body_size u32, body[body_size]
//!     (type 2 = TD report 1.0, 584 B; type 3 = TD report 1.5, 648 B)
//! signature_data_len u32
//! signature_data:
//!   signature[64]            ECDSA P-256 r‖s by the attestation key over all
//!                            bytes before signature_data_len
//!   attestation_key[64]      raw X‖Y
//!   certification data: u16 type = 6, u32 size, then
//!     qe_report[384]          SGX report body of the quoting enclave
//!     qe_report_signature[64] by the PCK key over qe_report
//!     u16 auth_data_len, auth_data
//!     inner certification data: u16 type = 5, u32 size, PEM PCK chain
//! ```
//!
//! # Trailing bytes
//!
//! Bytes after the signature data are covered by no signature. Two published
//! quotes carry 70 bytes of zero padding there (the quote buffer was larger
//! than the quote), and one carries 39 bytes of ASCII appended for a test.
//! **Decision:** all-zero padding is accepted (its length is recorded in
//! [`Quote::padding_len`]); any non-zero byte after the signature data makes
//! the quote malformed ([`QuoteError::TrailingBytes`]). Unauthenticated data
//! is never silently carried along. Inside the signature data every length
//! must be consumed exactly, except that NUL bytes at the end of the PEM
//! chain (which real quotes have) are stripped.

use crate::codec::{CodecError, Reader};

use super::error::QuoteError;

/// Length of the quote header.
pub const HEADER_LEN: usize = 48;
/// Length of a TD report 1.0 body (TDX 1.0).
pub const TD_REPORT10_LEN: usize = 584;
/// Length of a TD report 1.5 body (TDX 1.5: 1.0 body + TEE_TCB_SVN2 + MRSERVICETD).
pub const TD_REPORT15_LEN: usize = 648;
/// Length of an SGX report body (the QE report).
pub const QE_REPORT_LEN: usize = 384;
/// `att_key_type` for ECDSA-256-with-P-256.
pub const ATT_KEY_TYPE_ECDSA_P256: u16 = 2;
/// `tee_type` of TDX.
pub const TEE_TYPE_TDX: u32 = 0x81;
/// The QE vendor id of Intel's quoting enclave.
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];
/// Certification data type: QE report certification data.
pub const CERT_DATA_QE_REPORT: u16 = 6;
/// Certification data type: PCK certificate chain (PEM).
pub const CERT_DATA_PCK_CHAIN: u16 = 5;

/// The 48-byte quote header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuoteHeader<'a> {
    /// Quote version, 4 or 5.
    pub version: u16,
    /// Attestation key type, always 2 (ECDSA P-256) here.
    pub att_key_type: u16,
    /// TEE type, always 0x81 (TDX) here.
    pub tee_type: u32,
    /// Four reserved bytes (QE SVN and PCE SVN in SGX v3 quotes); not checked.
    pub reserved: &'a [u8; 4],
    /// Vendor of the quoting enclave.
    pub qe_vendor_id: &'a [u8; 16],
    /// Custom data chosen by the QE (the first 16 bytes are the QE's key id).
    pub user_data: &'a [u8; 20],
}

/// Which TD report body the quote carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum TdReportVersion {
    /// TD report 1.0 (584 bytes): v4 quotes and v5 body type 2.
    V1_0,
    /// TD report 1.5 (648 bytes): v5 body type 3.
    V1_5,
}

/// The TD report body (TDX module ABI, `TDREPORT_STRUCT` / quote body).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdReport<'a> {
    /// Body version.
    pub version: TdReportVersion,
    /// TEE_TCB_SVN (offset 0): byte 0 is the module ISVSVN, byte 1 the module major version.
    pub tee_tcb_svn: &'a [u8; 16],
    /// MRSEAM (offset 16): hash of the TDX module.
    pub mr_seam: &'a [u8; 48],
    /// MRSIGNERSEAM (offset 64): signer of the TDX module (zero for Intel's).
    pub mr_signer_seam: &'a [u8; 48],
    /// SEAMATTRIBUTES (offset 112).
    pub seam_attributes: &'a [u8; 8],
    /// TDATTRIBUTES (offset 120); bit 0 is DEBUG.
    pub td_attributes: &'a [u8; 8],
    /// XFAM (offset 128).
    pub xfam: &'a [u8; 8],
    /// MRTD (offset 136): the initial TD measurement.
    pub mr_td: &'a [u8; 48],
    /// MRCONFIGID (offset 184).
    pub mr_config_id: &'a [u8; 48],
    /// MROWNER (offset 232).
    pub mr_owner: &'a [u8; 48],
    /// MROWNERCONFIG (offset 280).
    pub mr_owner_config: &'a [u8; 48],
    /// RTMR0..RTMR3 (offsets 328, 376, 424, 472).
    pub rtmrs: [&'a [u8; 48]; 4],
    /// REPORTDATA (offset 520).
    pub report_data: &'a [u8; 64],
    /// TEE_TCB_SVN2 (offset 584, TD report 1.5 only).
    pub tee_tcb_svn2: Option<&'a [u8; 16]>,
    /// MRSERVICETD (offset 600, TD report 1.5 only).
    pub mr_service_td: Option<&'a [u8; 48]>,
}

impl TdReport<'_> {
    /// Whether TDATTRIBUTES bit 0 (DEBUG) is set.
    pub fn debug(&self) -> bool {
        self.td_attributes[0] & 1 != 0
    }

    /// Whether a TD report 1.5 names service TDs (non-zero MRSERVICETD).
    pub fn has_service_td(&self) -> bool {
        self.mr_service_td
            .is_some_and(|m| m.iter().any(|b| *b != 0))
    }
}

/// The quoting enclave's SGX report body (384 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QeReport<'a> {
    /// The whole 384-byte report, as signed by the PCK key.
    pub raw: &'a [u8; QE_REPORT_LEN],
    /// CPUSVN (offset 0).
    pub cpu_svn: &'a [u8; 16],
    /// MISCSELECT (offset 16).
    pub misc_select: u32,
    /// ATTRIBUTES (offset 48).
    pub attributes: &'a [u8; 16],
    /// MRENCLAVE (offset 64).
    pub mr_enclave: &'a [u8; 32],
    /// MRSIGNER (offset 128).
    pub mr_signer: &'a [u8; 32],
    /// ISVPRODID (offset 256).
    pub isv_prod_id: u16,
    /// ISVSVN (offset 258).
    pub isv_svn: u16,
    /// REPORTDATA (offset 320).
    pub report_data: &'a [u8; 64],
}

/// A parsed TDX quote: borrowed views into the input bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote<'a> {
    /// The header.
    pub header: QuoteHeader<'a>,
    /// The TD report body.
    pub body: TdReport<'a>,
    /// The bytes the attestation key signs: everything before the
    /// signature-data length.
    pub signed: &'a [u8],
    /// ECDSA P-256 `r ‖ s` by the attestation key over [`Quote::signed`].
    pub signature: &'a [u8; 64],
    /// The attestation public key, raw `X ‖ Y`.
    pub attestation_key: &'a [u8; 64],
    /// The QE report.
    pub qe_report: QeReport<'a>,
    /// ECDSA P-256 `r ‖ s` by the PCK key over the QE report.
    pub qe_report_signature: &'a [u8; 64],
    /// QE authentication data (hashed into the QE report data).
    pub auth_data: &'a [u8],
    /// The PEM PCK certificate chain (leaf, PCK CA, root), trailing NULs removed.
    pub pck_chain_pem: &'a [u8],
    /// Number of zero bytes after the signature data (see the module docs).
    pub padding_len: usize,
}

fn codec(e: CodecError) -> QuoteError {
    QuoteError::Codec(e)
}

fn parse_header<'a>(r: &mut Reader<'a>) -> Result<QuoteHeader<'a>, QuoteError> {
    let version = r.u16_le().map_err(codec)?;
    if version != 4 && version != 5 {
        return Err(QuoteError::UnsupportedVersion(version));
    }
    let att_key_type = r.u16_le().map_err(codec)?;
    if att_key_type != ATT_KEY_TYPE_ECDSA_P256 {
        return Err(QuoteError::UnsupportedAttestationKeyType(att_key_type));
    }
    let tee_type = r.u32_le().map_err(codec)?;
    if tee_type != TEE_TYPE_TDX {
        return Err(QuoteError::UnsupportedTeeType(tee_type));
    }
    let reserved = r.take_array::<4>().map_err(codec)?;
    let qe_vendor_id = r.take_array::<16>().map_err(codec)?;
    if *qe_vendor_id != INTEL_QE_VENDOR_ID {
        return Err(QuoteError::UnknownQeVendor(*qe_vendor_id));
    }
    let user_data = r.take_array::<20>().map_err(codec)?;
    Ok(QuoteHeader {
        version,
        att_key_type,
        tee_type,
        reserved,
        qe_vendor_id,
        user_data,
    })
}

fn parse_body<'a>(body: &'a [u8], version: TdReportVersion) -> Result<TdReport<'a>, QuoteError> {
    let mut r = Reader::new(body);
    let tee_tcb_svn = r.take_array().map_err(codec)?;
    let mr_seam = r.take_array().map_err(codec)?;
    let mr_signer_seam = r.take_array().map_err(codec)?;
    let seam_attributes = r.take_array().map_err(codec)?;
    let td_attributes = r.take_array().map_err(codec)?;
    let xfam = r.take_array().map_err(codec)?;
    let mr_td = r.take_array().map_err(codec)?;
    let mr_config_id = r.take_array().map_err(codec)?;
    let mr_owner = r.take_array().map_err(codec)?;
    let mr_owner_config = r.take_array().map_err(codec)?;
    let rtmrs = [
        r.take_array().map_err(codec)?,
        r.take_array().map_err(codec)?,
        r.take_array().map_err(codec)?,
        r.take_array().map_err(codec)?,
    ];
    let report_data = r.take_array().map_err(codec)?;
    let (tee_tcb_svn2, mr_service_td) = match version {
        TdReportVersion::V1_0 => (None, None),
        TdReportVersion::V1_5 => (
            Some(r.take_array().map_err(codec)?),
            Some(r.take_array().map_err(codec)?),
        ),
    };
    r.finish().map_err(codec)?;
    Ok(TdReport {
        version,
        tee_tcb_svn,
        mr_seam,
        mr_signer_seam,
        seam_attributes,
        td_attributes,
        xfam,
        mr_td,
        mr_config_id,
        mr_owner,
        mr_owner_config,
        rtmrs,
        report_data,
        tee_tcb_svn2,
        mr_service_td,
    })
}

/// Parses a 384-byte SGX report body.
pub fn parse_qe_report(raw: &[u8; QE_REPORT_LEN]) -> Result<QeReport<'_>, QuoteError> {
    let mut r = Reader::new(raw);
    let cpu_svn = r.take_array().map_err(codec)?;
    let misc_select = r.u32_le().map_err(codec)?;
    r.take(28).map_err(codec)?;
    let attributes = r.take_array().map_err(codec)?;
    let mr_enclave = r.take_array().map_err(codec)?;
    r.take(32).map_err(codec)?;
    let mr_signer = r.take_array().map_err(codec)?;
    r.take(96).map_err(codec)?;
    let isv_prod_id = r.u16_le().map_err(codec)?;
    let isv_svn = r.u16_le().map_err(codec)?;
    r.take(60).map_err(codec)?;
    let report_data = r.take_array().map_err(codec)?;
    r.finish().map_err(codec)?;
    Ok(QeReport {
        raw,
        cpu_svn,
        misc_select,
        attributes,
        mr_enclave,
        mr_signer,
        isv_prod_id,
        isv_svn,
        report_data,
    })
}

fn len_u32(value: u32) -> usize {
    // `usize` is at least 32 bits on every target accord supports.
    usize::try_from(value).unwrap_or(usize::MAX)
}

impl<'a> Quote<'a> {
    /// Parses a TDX quote (v4 or v5). Checks structure only; no signature is
    /// verified here.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, QuoteError> {
        let mut r = Reader::new(bytes);
        let header = parse_header(&mut r)?;
        let (body_bytes, body_version) = if header.version == 4 {
            (
                r.take(TD_REPORT10_LEN).map_err(codec)?,
                TdReportVersion::V1_0,
            )
        } else {
            let body_type = r.u16_le().map_err(codec)?;
            let body_size = len_u32(r.u32_le().map_err(codec)?);
            let (version, expected) = match body_type {
                2 => (TdReportVersion::V1_0, TD_REPORT10_LEN),
                3 => (TdReportVersion::V1_5, TD_REPORT15_LEN),
                other => return Err(QuoteError::UnsupportedBodyType(other)),
            };
            if body_size != expected {
                return Err(QuoteError::BodySize {
                    body_type,
                    expected,
                    actual: body_size,
                });
            }
            (r.take(body_size).map_err(codec)?, version)
        };
        let signed_len = r.offset();
        let signed = bytes
            .get(..signed_len)
            .ok_or(QuoteError::Codec(CodecError::Truncated {
                offset: 0,
                needed: signed_len,
            }))?;
        let body = parse_body(body_bytes, body_version)?;

        let sig_data_len = len_u32(r.u32_le().map_err(codec)?);
        let mut sig = r.sub(sig_data_len).map_err(codec)?;
        let padding_start = r.offset();
        let padding = r.rest();
        if let Some(i) = padding.iter().position(|b| *b != 0) {
            return Err(QuoteError::TrailingBytes {
                offset: padding_start + i,
                count: padding.len(),
            });
        }

        let signature = sig.take_array().map_err(codec)?;
        let attestation_key = sig.take_array().map_err(codec)?;
        let cert_type = sig.u16_le().map_err(codec)?;
        if cert_type != CERT_DATA_QE_REPORT {
            return Err(QuoteError::CertificationDataType {
                expected: CERT_DATA_QE_REPORT,
                actual: cert_type,
            });
        }
        let cert_size = len_u32(sig.u32_le().map_err(codec)?);
        let mut cert = sig.sub(cert_size).map_err(codec)?;
        sig.finish().map_err(codec)?;

        let qe_report_raw: &'a [u8; QE_REPORT_LEN] = cert.take_array().map_err(codec)?;
        let qe_report = parse_qe_report(qe_report_raw)?;
        let qe_report_signature = cert.take_array().map_err(codec)?;
        let auth_len = usize::from(cert.u16_le().map_err(codec)?);
        let auth_data = cert.take(auth_len).map_err(codec)?;
        let inner_type = cert.u16_le().map_err(codec)?;
        if inner_type != CERT_DATA_PCK_CHAIN {
            return Err(QuoteError::CertificationDataType {
                expected: CERT_DATA_PCK_CHAIN,
                actual: inner_type,
            });
        }
        let inner_size = len_u32(cert.u32_le().map_err(codec)?);
        let mut pem = cert.take(inner_size).map_err(codec)?;
        cert.finish().map_err(codec)?;
        while let [rest @ .., 0] = pem {
            pem = rest;
        }

        Ok(Quote {
            header,
            body,
            signed,
            signature,
            attestation_key,
            qe_report,
            qe_report_signature,
            auth_data,
            pck_chain_pem: pem,
            padding_len: padding.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// The shared synthetic quote, its body a byte pattern.
    pub(crate) fn synthetic(version: u16, body_type: u16, padding: &[u8]) -> Vec<u8> {
        crate::internal::synthetic_tdx_quote(version, body_type, None, padding)
    }

    #[test]
    fn parses_synthetic_v4_and_v5() {
        let q4 = synthetic(4, 2, &[]);
        let p = Quote::parse(&q4).unwrap();
        assert_eq!(p.signed.len(), 632);
        assert_eq!(p.body.version, TdReportVersion::V1_0);
        assert_eq!(p.body.mr_td[0], 136);
        assert_eq!(p.qe_report.isv_svn, 0x0101);
        assert!(p.pck_chain_pem.ends_with(b"-----\n"));
        let q5 = synthetic(5, 3, &[0; 70]);
        let p = Quote::parse(&q5).unwrap();
        assert_eq!(p.signed.len(), 702);
        assert_eq!(p.padding_len, 70);
        assert!(p.body.tee_tcb_svn2.is_some());
        let q5 = synthetic(5, 2, &[]);
        assert_eq!(
            Quote::parse(&q5).unwrap().body.version,
            TdReportVersion::V1_0
        );
    }

    #[test]
    fn rejects_malformed() {
        assert!(matches!(
            Quote::parse(&synthetic(3, 2, &[])),
            Err(QuoteError::UnsupportedVersion(3))
        ));
        assert!(matches!(
            Quote::parse(&synthetic(5, 1, &[])),
            Err(QuoteError::UnsupportedBodyType(1))
        ));
        assert!(matches!(
            Quote::parse(&synthetic(4, 2, b"x")),
            Err(QuoteError::TrailingBytes { .. })
        ));
        let mut q = synthetic(4, 2, &[]);
        q[2] = 3;
        assert!(matches!(
            Quote::parse(&q),
            Err(QuoteError::UnsupportedAttestationKeyType(3))
        ));
        let mut q = synthetic(4, 2, &[]);
        q[4] = 0;
        assert!(matches!(
            Quote::parse(&q),
            Err(QuoteError::UnsupportedTeeType(0))
        ));
        let mut q = synthetic(4, 2, &[]);
        q[12] ^= 1;
        assert!(matches!(
            Quote::parse(&q),
            Err(QuoteError::UnknownQeVendor(_))
        ));
        let mut q = synthetic(5, 3, &[]);
        q[50] = 0;
        q[51] = 2;
        assert!(matches!(Quote::parse(&q), Err(QuoteError::BodySize { .. })));
        // Every truncation is an error, never a panic.
        let q = synthetic(5, 3, &[]);
        for n in 0..q.len() {
            assert!(Quote::parse(&q[..n]).is_err(), "prefix {n}");
        }
    }
}
