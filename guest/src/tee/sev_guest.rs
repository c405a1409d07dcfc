//! AMD SEV-SNP through the `/dev/sev-guest` character device: the
//! `SNP_GET_EXT_REPORT` ioctl (report plus certificate table), falling back
//! to `SNP_GET_REPORT` (report only) on kernels without the extended request.
//!
//! The `#[repr(C)]` structs mirror the kernel UAPI
//! `include/uapi/linux/sev-guest.h`; their sizes and field offsets are
//! checked at compile time. This is the only module of the workspace with
//! `unsafe` code (the `ioctl` call), each block with a SAFETY note.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::ErrorKind;
use std::mem::{offset_of, size_of};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use accord_core::evidence::{Evidence, SnpEvidence};

use super::{TeeError, TeeProvider, cert_table};

/// `struct snp_report_req`: the request of MSG_REPORT_REQ.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnpReportReq {
    /// REPORT_DATA to put into the report.
    pub user_data: [u8; 64],
    /// VMPL the report is requested for.
    pub vmpl: u32,
    /// Must be zero.
    pub rsvd: [u8; 28],
}

/// `struct snp_report_resp`: the firmware's MSG_REPORT_RSP, unparsed.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnpReportResp {
    /// STATUS (u32), REPORT_SIZE (u32), 24 reserved bytes, the report.
    pub data: [u8; 4000],
}

/// `struct snp_guest_request_ioctl`: the ioctl argument.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnpGuestRequestIoctl {
    /// Message version; must be non-zero (1).
    pub msg_version: u8,
    /// Address of the request structure.
    pub req_data: u64,
    /// Address of the response structure.
    pub resp_data: u64,
    /// bits 63:32 VMM error, bits 31:0 firmware error.
    pub exitinfo2: u64,
}

/// `struct snp_ext_report_req`: the extended request.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnpExtReportReq {
    /// The report request.
    pub data: SnpReportReq,
    /// Where the kernel copies the certificate table.
    pub certs_address: u64,
    /// Length of that buffer (a multiple of the page size); on
    /// `SNP_GUEST_VMM_ERR_INVALID_LEN` the kernel writes the length needed.
    pub certs_len: u32,
}

const _: () = assert!(size_of::<SnpReportReq>() == 96);
const _: () = assert!(offset_of!(SnpReportReq, vmpl) == 64);
const _: () = assert!(offset_of!(SnpReportReq, rsvd) == 68);
const _: () = assert!(size_of::<SnpReportResp>() == 4000);
const _: () = assert!(size_of::<SnpGuestRequestIoctl>() == 32);
const _: () = assert!(offset_of!(SnpGuestRequestIoctl, req_data) == 8);
const _: () = assert!(offset_of!(SnpGuestRequestIoctl, resp_data) == 16);
const _: () = assert!(offset_of!(SnpGuestRequestIoctl, exitinfo2) == 24);
const _: () = assert!(size_of::<SnpExtReportReq>() == 112);
const _: () = assert!(offset_of!(SnpExtReportReq, certs_address) == 96);
const _: () = assert!(offset_of!(SnpExtReportReq, certs_len) == 104);

/// `_IOWR(ty, nr, size)` with the asm-generic layout x86 uses: direction in
/// bits 31:30 (read|write = 3), size in 29:16, type in 15:8, number in 7:0.
pub const fn iowr(ty: u8, nr: u8, size: usize) -> u32 {
    const IOC_READ_WRITE: u32 = 3;
    (IOC_READ_WRITE << 30) | (((size as u32) & 0x3fff) << 16) | ((ty as u32) << 8) | nr as u32
}

/// `SNP_GET_REPORT`.
pub const SNP_GET_REPORT: u32 = iowr(b'S', 0x0, size_of::<SnpGuestRequestIoctl>());
/// `SNP_GET_EXT_REPORT`.
pub const SNP_GET_EXT_REPORT: u32 = iowr(b'S', 0x2, size_of::<SnpGuestRequestIoctl>());

/// VMM error: the certificate buffer is too small.
pub const VMM_ERR_INVALID_LEN: u32 = 1;
/// VMM error: the host is busy.
pub const VMM_ERR_BUSY: u32 = 2;

/// Size of the certificate buffer: the kernel's SEV_FW_BLOB_MAX_SIZE (16 KiB,
/// four pages), the most it accepts.
pub const CERTS_BUFFER_LEN: usize = 0x4000;

/// Offset of the report in MSG_REPORT_RSP.
const RESP_REPORT_OFFSET: usize = 0x20;

/// Builds the report request for `report_data` at `vmpl`.
pub fn report_request(report_data: &[u8; 64], vmpl: u32) -> SnpReportReq {
    SnpReportReq {
        user_data: *report_data,
        vmpl,
        rsvd: [0; 28],
    }
}

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
    if size != super::configfs_tsm::SNP_REPORT_LEN {
        return Err(TeeError::Protocol(format!(
            "SNP report response claims a {size}-byte report; an SEV-SNP report is {}",
            super::configfs_tsm::SNP_REPORT_LEN
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

/// A failed guest request: the errno and `exitinfo2`.
struct RequestError {
    errno: std::io::Error,
    exitinfo2: u64,
}

/// Issues one guest request ioctl with `request` and `response` as its
/// request and response structures.
fn guest_request<Req>(
    file: &File,
    number: u32,
    request: &mut Req,
    response: &mut SnpReportResp,
) -> Result<(), RequestError> {
    let mut argument = SnpGuestRequestIoctl {
        msg_version: 1,
        req_data: std::ptr::from_mut(request) as u64,
        resp_data: std::ptr::from_mut(response) as u64,
        exitinfo2: 0,
    };
    // SAFETY: `file` is an open descriptor; `argument` is a live, properly
    // laid out `snp_guest_request_ioctl` (checked above) whose request and
    // response addresses point at live structures of the sizes the kernel
    // reads and writes for `number` (`snp_report_req`/`snp_ext_report_req`,
    // `snp_report_resp`). Any certificate buffer named in an extended
    // request is owned by the caller and outlives this call. The kernel
    // writes only into `argument`, the response, and that buffer.
    let rc = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            number as libc::Ioctl,
            std::ptr::from_mut(&mut argument),
        )
    };
    if rc < 0 {
        Err(RequestError {
            errno: std::io::Error::last_os_error(),
            exitinfo2: argument.exitinfo2,
        })
    } else {
        Ok(())
    }
}

impl TeeProvider for SevGuest {
    fn name(&self) -> &'static str {
        "sev-guest"
    }

    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence, TeeError> {
        let file = self.open()?;
        let device = self.device.display();
        let mut response = SnpReportResp { data: [0; 4000] };
        let mut certs = vec![0u8; CERTS_BUFFER_LEN];
        let mut ext = SnpExtReportReq {
            data: report_request(report_data, self.vmpl),
            certs_address: certs.as_mut_ptr() as u64,
            certs_len: CERTS_BUFFER_LEN as u32,
        };
        let certs_table = match guest_request(&file, SNP_GET_EXT_REPORT, &mut ext, &mut response) {
            Ok(()) => Some(certs),
            Err(err)
                if err.exitinfo2 == 0
                    && matches!(
                        err.errno.raw_os_error(),
                        Some(libc::ENOTTY | libc::EINVAL | libc::EOPNOTSUPP)
                    ) =>
            {
                // No extended request on this kernel: the report alone.
                let mut request = report_request(report_data, self.vmpl);
                response = SnpReportResp { data: [0; 4000] };
                guest_request(&file, SNP_GET_REPORT, &mut request, &mut response).map_err(
                    |err| {
                        TeeError::Protocol(format!(
                            "SNP_GET_REPORT on {device} failed: {} ({})",
                            err.errno,
                            describe_exitinfo2(err.exitinfo2)
                        ))
                    },
                )?;
                None
            }
            Err(err) => {
                let needed = if (err.exitinfo2 >> 32) as u32 == VMM_ERR_INVALID_LEN {
                    format!(", the host needs {} bytes for certificates", ext.certs_len)
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
        let certs = match certs_table {
            Some(table) => cert_table::parse(&table, &format!("SNP_GET_EXT_REPORT on {device}"))?,
            None => cert_table::SnpCertificates::default(),
        };
        let vcek = certs.leaf().cloned();
        Ok(Evidence::Snp(SnpEvidence {
            report,
            vcek,
            ask: certs.ask,
            ark: certs.ark,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_kernel() {
        assert_eq!(SNP_GET_REPORT, 0xc020_5300);
        assert_eq!(iowr(b'S', 0x1, 32), 0xc020_5301);
        assert_eq!(SNP_GET_EXT_REPORT, 0xc020_5302);
    }

    #[test]
    fn builds_requests() {
        let request = report_request(&[7; 64], 2);
        assert_eq!(request.user_data, [7; 64]);
        assert_eq!(request.vmpl, 2);
        assert_eq!(request.rsvd, [0; 28]);
    }

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
