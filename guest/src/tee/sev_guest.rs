//! AMD SEV-SNP through the `/dev/sev-guest` character device: the
//! `SNP_GET_EXT_REPORT` ioctl (report plus certificate table), falling back
//! to `SNP_GET_REPORT` (report only) on kernels without the extended request.
//!
//! The ioctls themselves, typed, are in [`ioctl`]; this module reads the
//! firmware's response envelope (MSG_REPORT_RSP) and hands the report to
//! core's parser, which must find the report data asked for.

pub mod ioctl;

use std::fs::File;
use std::io::ErrorKind;
use std::path::PathBuf;

use accord_core::evidence::snp::{AttestationReport, REPORT_LEN};
use accord_core::evidence::{Evidence, SnpEvidence};

use self::ioctl::{
    CertBuffer, ExtReportReq, SnpReportReq, SnpReportResp, VMM_ERR_BUSY, VMM_ERR_INVALID_LEN,
    guest_request,
};
use super::{TeeError, TeeProvider, cert_table};

/// Offset of the report in MSG_REPORT_RSP.
const RESP_REPORT_OFFSET: usize = 0x20;

/// The name of an SEV firmware status code (`SEV_RET_*` of the kernel's
/// `psp-sev.h` / the SNP firmware ABI).
pub fn firmware_status_name(code: u32) -> &'static str {
    match code {
        0x00 => "SUCCESS",
        0x01 => "INVALID_PLATFORM_STATE",
        0x02 => "INVALID_GUEST_STATE",
        0x03 => "INVALID_CONFIG",
        0x04 => "INVALID_LENGTH",
        0x05 => "ALREADY_OWNED",
        0x06 => "INVALID_CERTIFICATE",
        0x07 => "POLICY_FAILURE",
        0x08 => "INACTIVE",
        0x09 => "INVALID_ADDRESS",
        0x0a => "BAD_SIGNATURE",
        0x0b => "BAD_MEASUREMENT",
        0x0c => "ASID_OWNED",
        0x0d => "INVALID_ASID",
        0x0e => "WBINVD_REQUIRED",
        0x0f => "DFFLUSH_REQUIRED",
        0x10 => "INVALID_GUEST",
        0x11 => "INVALID_COMMAND",
        0x12 => "ACTIVE",
        0x13 => "HWERROR_PLATFORM",
        0x14 => "HWERROR_UNSAFE",
        0x15 => "UNSUPPORTED",
        0x16 => "INVALID_PARAM",
        0x17 => "RESOURCE_LIMIT",
        0x18 => "SECURE_DATA_INVALID",
        0x27 => "INVALID_KEY",
        _ => "unknown status",
    }
}

/// Describes a non-zero `exitinfo2` (VMM and firmware error).
pub fn describe_exitinfo2(exitinfo2: u64) -> String {
    let fw = (exitinfo2 & 0xffff_ffff) as u32;
    let vmm = (exitinfo2 >> 32) as u32;
    let vmm_text = match vmm {
        0 => None,
        VMM_ERR_INVALID_LEN => Some("certificate buffer too small (INVALID_LEN)".to_string()),
        VMM_ERR_BUSY => Some("host busy, try again (BUSY)".to_string()),
        0x8000_0000 | u32::MAX => Some("generic host error".to_string()),
        other => Some(format!("host error {other:#x}")),
    };
    let fw_text =
        (fw != 0).then(|| format!("firmware error {fw:#x} ({})", firmware_status_name(fw)));
    match (vmm_text, fw_text) {
        (Some(v), Some(f)) => format!("{v}; {f}"),
        (Some(v), None) => v,
        (None, Some(f)) => f,
        (None, None) => "no error code".to_string(),
    }
}

/// Extracts the report from MSG_REPORT_RSP: STATUS must be 0 and
/// REPORT_SIZE exactly 1184 (and inside the response).
pub fn parse_report_response(response: &[u8]) -> Result<Vec<u8>, TeeError> {
    let word = |at: usize| {
        response
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let (Some(status), Some(size)) = (word(0), word(4)) else {
        return Err(TeeError::Protocol(format!(
            "SNP report response of {} bytes is too short",
            response.len()
        )));
    };
    if status != 0 {
        return Err(TeeError::Protocol(format!(
            "SNP firmware refused the report request: status {status:#x} ({})",
            firmware_status_name(status)
        )));
    }
    let size = size as usize;
    if size != REPORT_LEN {
        return Err(TeeError::Protocol(format!(
            "SNP report response claims a {size}-byte report; an SEV-SNP report is {REPORT_LEN}"
        )));
    }
    response
        .get(RESP_REPORT_OFFSET..RESP_REPORT_OFFSET + size)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| {
            TeeError::Protocol(format!(
                "SNP report response of {} bytes cannot hold a {size}-byte report",
                response.len()
            ))
        })
}

/// Evidence through `/dev/sev-guest`.
#[derive(Clone, Debug)]
pub struct SevGuest {
    device: PathBuf,
    vmpl: u32,
}

impl SevGuest {
    /// The device at `device`, reports requested at VMPL 0.
    pub fn new(device: impl Into<PathBuf>) -> Self {
        Self {
            device: device.into(),
            vmpl: 0,
        }
    }

    /// Requests reports at `vmpl`.
    pub fn with_vmpl(mut self, vmpl: u32) -> Self {
        self.vmpl = vmpl;
        self
    }

    fn open(&self) -> Result<File, TeeError> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.device)
            .map_err(|source| {
                if source.kind() == ErrorKind::NotFound {
                    TeeError::Unavailable {
                        provider: "sev-guest",
                        reason: format!("device missing: {}", self.device.display()),
                    }
                } else {
                    TeeError::Io {
                        action: format!("opening {}", self.device.display()),
                        source,
                    }
                }
            })
    }
}

impl TeeProvider for SevGuest {
    fn name(&self) -> &'static str {
        "sev-guest"
    }

    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence, TeeError> {
        let file = self.open()?;
        let device = self.device.display();
        let mut response = SnpReportResp::default();
        let mut certs = CertBuffer::new();
        let mut ext = ExtReportReq::new(SnpReportReq::new(report_data, self.vmpl), &mut certs);
        let extended = match guest_request(&file, &mut ext, &mut response) {
            Ok(()) => true,
            Err(err)
                if err.exitinfo2 == 0
                    && matches!(
                        err.errno.raw_os_error(),
                        Some(libc::ENOTTY | libc::EINVAL | libc::EOPNOTSUPP)
                    ) =>
            {
                // No extended request on this kernel: the report alone.
                let mut request = SnpReportReq::new(report_data, self.vmpl);
                response = SnpReportResp::default();
                guest_request(&file, &mut request, &mut response).map_err(|err| {
                    TeeError::Protocol(format!(
                        "SNP_GET_REPORT on {device} failed: {} ({})",
                        err.errno,
                        describe_exitinfo2(err.exitinfo2)
                    ))
                })?;
                false
            }
            Err(err) => {
                let needed = if err.vmm_error() == VMM_ERR_INVALID_LEN {
                    format!(
                        ", the host needs {} bytes for certificates",
                        ext.certs_len()
                    )
                } else {
                    String::new()
                };
                return Err(TeeError::Protocol(format!(
                    "SNP_GET_EXT_REPORT on {device} failed: {} ({}{needed})",
                    err.errno,
                    describe_exitinfo2(err.exitinfo2)
                )));
            }
        };
        let report = parse_report_response(&response.data)?;
        check_report_data(&report, report_data, &format!("the report from {device}"))?;
        let certs = if extended {
            cert_table::parse(certs.bytes(), &format!("SNP_GET_EXT_REPORT on {device}"))?
        } else {
            cert_table::SnpCertificates::default()
        };
        let vcek = certs.leaf().cloned();
        Ok(Evidence::Snp(SnpEvidence {
            report,
            vcek,
            ask: certs.ask,
            ark: certs.ark,
            crl: None,
        }))
    }
}

/// Checks, with core's parser, that `report` is an SEV-SNP report carrying
/// `wanted` as its REPORT_DATA; `what` names the report in errors.
pub fn check_report_data(report: &[u8], wanted: &[u8; 64], what: &str) -> Result<(), TeeError> {
    let parsed = AttestationReport::parse(report)
        .map_err(|err| TeeError::Protocol(format!("{what} is not an SEV-SNP report: {err}")))?;
    if parsed.report_data == wanted {
        Ok(())
    } else {
        Err(TeeError::Protocol(format!(
            "{what}: the report data inside is not the report data written (another writer?)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u32, size: u32) -> Vec<u8> {
        let mut data = vec![0u8; 4000];
        data[0..4].copy_from_slice(&status.to_le_bytes());
        data[4..8].copy_from_slice(&size.to_le_bytes());
        data[0x20..0x20 + 1184].fill(0x5a);
        data
    }

    #[test]
    fn parses_responses() {
        let report = parse_report_response(&response(0, 1184)).unwrap();
        assert_eq!(report, vec![0x5a; 1184]);
        let err = parse_report_response(&response(0x16, 0))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("0x16") && err.contains("INVALID_PARAM"),
            "{err}"
        );
        let err = parse_report_response(&response(0x27, 0))
            .unwrap_err()
            .to_string();
        assert!(err.contains("INVALID_KEY"), "{err}");
        let err = parse_report_response(&response(0, 100))
            .unwrap_err()
            .to_string();
        assert!(err.contains("100-byte"), "{err}");
        assert!(parse_report_response(&response(0, 1184)[..1000]).is_err());
        assert!(parse_report_response(&[0; 7]).is_err());
    }

    #[test]
    fn the_report_data_is_read_by_core() {
        let mut report = vec![0u8; 1184];
        report[0..4].copy_from_slice(&2u32.to_le_bytes());
        report[0x08..0x10].copy_from_slice(&(1u64 << 17).to_le_bytes());
        report[0x34..0x38].copy_from_slice(&1u32.to_le_bytes());
        report[0x50..0x90].fill(0x42);
        check_report_data(&report, &[0x42; 64], "r").unwrap();
        let err = check_report_data(&report, &[0x43; 64], "r")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not the report data written"), "{err}");
        // Core refuses what is not a report (here: policy bit 17 clear).
        report[0x08..0x10].fill(0);
        let err = check_report_data(&report, &[0x42; 64], "r")
            .unwrap_err()
            .to_string();
        assert!(err.contains("r is not an SEV-SNP report"), "{err}");
    }

    #[test]
    fn describes_error_codes() {
        assert_eq!(
            describe_exitinfo2(1 << 32),
            "certificate buffer too small (INVALID_LEN)"
        );
        assert!(describe_exitinfo2(2 << 32).contains("BUSY"));
        assert!(describe_exitinfo2(u64::from(u32::MAX) << 32).contains("generic"));
        assert_eq!(
            describe_exitinfo2(0x16),
            "firmware error 0x16 (INVALID_PARAM)"
        );
        assert!(describe_exitinfo2(0x99).contains("unknown status"));
    }

    #[test]
    fn missing_device_is_unavailable() {
        let provider = SevGuest::new("/nonexistent/sev-guest");
        let err = provider.evidence(&[0; 64]).unwrap_err();
        assert!(matches!(
            err,
            TeeError::Unavailable {
                provider: "sev-guest",
                ..
            }
        ));
        assert!(
            err.to_string()
                .contains("device missing: /nonexistent/sev-guest")
        );
    }
}
