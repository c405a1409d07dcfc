//! The `/dev/sev-guest` ioctls, typed so that safe code cannot misuse them.
//!
//! The `#[repr(C)]` structs mirror the kernel's user API for the sev-guest
//! driver (Linux `sev-guest.h`), which reads, for the two requests used:
//!
//! ```text
//! struct snp_report_req { __u8 user_data[64]; __u32 vmpl; __u8 rsvd[28]; };
//! struct snp_report_resp { __u8 data[4000]; };
//! struct snp_guest_request_ioctl {
//!     __u8 msg_version; __u64 req_data; __u64 resp_data;
//!     union { __u64 exitinfo2; struct { __u32 fw_error; __u32 vmm_error; }; };
//! };
//! struct snp_ext_report_req {
//!     struct snp_report_req data; __u64 certs_address; __u32 certs_len;
//! };
//! #define SNP_GET_REPORT     _IOWR('S', 0x0, struct snp_guest_request_ioctl)
//! #define SNP_GET_EXT_REPORT _IOWR('S', 0x2, struct snp_guest_request_ioctl)
//! #define SNP_GUEST_VMM_ERR_INVALID_LEN 1
//! #define SNP_GUEST_VMM_ERR_BUSY        2
//! ```
//!
//! Their sizes and field offsets are checked at compile time. Each request structure names its own opcode
//! ([`GuestRequest::OPCODE`], sealed: only the two report requests
//! implement it), so an opcode cannot be paired with the wrong request;
//! the addresses the kernel follows are taken from borrows held for the
//! whole call ([`guest_request`]), and the certificate buffer of an
//! extended request is borrowed by the request that names it
//! ([`ExtReportReq`]), so no address can dangle or point at a buffer of
//! another size. The one `unsafe` call and the one `unsafe impl` are here.
//!
//! Why not the `sev` crate (virtee/sev 8.0.0, which has these ioctls in
//! `firmware::guest::Firmware`): see ARCHITECTURE.md, "`unsafe` code".
#![allow(unsafe_code)]

use std::fs::File;
use std::marker::PhantomData;
use std::mem::{offset_of, size_of};

use rustix::ioctl::{Ioctl, IoctlOutput, Opcode, opcode};

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

impl SnpReportReq {
    /// The request for `report_data` at `vmpl`.
    pub fn new(report_data: &[u8; 64], vmpl: u32) -> Self {
        Self {
            user_data: *report_data,
            vmpl,
            rsvd: [0; 28],
        }
    }
}

/// `struct snp_report_resp`: the firmware's MSG_REPORT_RSP, unparsed.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnpReportResp {
    /// STATUS (u32), REPORT_SIZE (u32), 24 reserved bytes, the report.
    pub data: [u8; 4000],
}

impl Default for SnpReportResp {
    fn default() -> Self {
        Self { data: [0; 4000] }
    }
}

/// `struct snp_guest_request_ioctl`: the ioctl argument. Private: only
/// [`guest_request`] builds one, from borrows.
#[repr(C)]
#[derive(Debug)]
struct SnpGuestRequestIoctl {
    /// Message version; must be non-zero (1).
    msg_version: u8,
    /// Address of the request structure.
    req_data: u64,
    /// Address of the response structure.
    resp_data: u64,
    /// bits 63:32 VMM error, bits 31:0 firmware error.
    exitinfo2: u64,
}

/// `struct snp_ext_report_req`, the extended request, as the kernel reads it.
#[repr(C)]
#[derive(Debug)]
struct RawExtReportReq {
    data: SnpReportReq,
    certs_address: u64,
    certs_len: u32,
}

/// Size of the certificate buffer: the kernel's SEV_FW_BLOB_MAX_SIZE (16 KiB,
/// four pages), the most it accepts.
pub const CERTS_BUFFER_LEN: usize = 0x4000;

/// The buffer the kernel copies the certificate table into.
#[derive(Debug)]
pub struct CertBuffer(Box<[u8; CERTS_BUFFER_LEN]>);

impl CertBuffer {
    /// A zeroed buffer of [`CERTS_BUFFER_LEN`] bytes.
    pub fn new() -> Self {
        Self(Box::new([0; CERTS_BUFFER_LEN]))
    }

    /// Its contents.
    pub fn bytes(&self) -> &[u8] {
        &self.0[..]
    }
}

impl Default for CertBuffer {
    fn default() -> Self {
        Self::new()
    }
}

/// `struct snp_ext_report_req` naming `certs`, which it borrows mutably for
/// as long as it lives: the kernel writes there during the call.
#[repr(transparent)]
#[derive(Debug)]
pub struct ExtReportReq<'certs> {
    raw: RawExtReportReq,
    certs: PhantomData<&'certs mut CertBuffer>,
}

impl<'certs> ExtReportReq<'certs> {
    /// The extended request for `data`, the table going into `certs`.
    pub fn new(data: SnpReportReq, certs: &'certs mut CertBuffer) -> Self {
        Self {
            raw: RawExtReportReq {
                data,
                certs_address: certs.0.as_mut_ptr() as u64,
                // CERTS_BUFFER_LEN is 16 KiB: it fits.
                certs_len: CERTS_BUFFER_LEN as u32,
            },
            certs: PhantomData,
        }
    }

    /// `certs_len`: after a failure with [`VMM_ERR_INVALID_LEN`], the length
    /// the host needs.
    pub fn certs_len(&self) -> u32 {
        self.raw.certs_len
    }
}

const _: () = assert!(size_of::<SnpReportReq>() == 96);
const _: () = assert!(offset_of!(SnpReportReq, vmpl) == 64);
const _: () = assert!(offset_of!(SnpReportReq, rsvd) == 68);
const _: () = assert!(size_of::<SnpReportResp>() == 4000);
const _: () = assert!(size_of::<SnpGuestRequestIoctl>() == 32);
const _: () = assert!(offset_of!(SnpGuestRequestIoctl, req_data) == 8);
const _: () = assert!(offset_of!(SnpGuestRequestIoctl, resp_data) == 16);
const _: () = assert!(offset_of!(SnpGuestRequestIoctl, exitinfo2) == 24);
const _: () = assert!(size_of::<RawExtReportReq>() == 112);
const _: () = assert!(offset_of!(RawExtReportReq, certs_address) == 96);
const _: () = assert!(offset_of!(RawExtReportReq, certs_len) == 104);
const _: () = assert!(size_of::<ExtReportReq<'static>>() == 112);
const _: () = assert!(CERTS_BUFFER_LEN <= u32::MAX as usize);

/// `SNP_GUEST_REQ_IOC_TYPE`.
const IOC_TYPE: u8 = b'S';

/// `SNP_GET_REPORT`: `_IOWR('S', 0x0, struct snp_guest_request_ioctl)`.
pub const SNP_GET_REPORT: Opcode = opcode::read_write::<SnpGuestRequestIoctl>(IOC_TYPE, 0x0);
/// `SNP_GET_EXT_REPORT`: `_IOWR('S', 0x2, struct snp_guest_request_ioctl)`.
pub const SNP_GET_EXT_REPORT: Opcode = opcode::read_write::<SnpGuestRequestIoctl>(IOC_TYPE, 0x2);

/// VMM error: the certificate buffer is too small.
pub const VMM_ERR_INVALID_LEN: u32 = 1;
/// VMM error: the host is busy.
pub const VMM_ERR_BUSY: u32 = 2;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::SnpReportReq {}
    impl Sealed for super::ExtReportReq<'_> {}
}

/// A request structure of the guest driver and the opcode that reads it.
/// Sealed: implemented only for [`SnpReportReq`] (`SNP_GET_REPORT`) and
/// [`ExtReportReq`] (`SNP_GET_EXT_REPORT`), whose responses are both
/// [`SnpReportResp`].
pub trait GuestRequest: sealed::Sealed {
    /// The opcode whose kernel handler reads this structure.
    const OPCODE: Opcode;
}

impl GuestRequest for SnpReportReq {
    const OPCODE: Opcode = SNP_GET_REPORT;
}

impl GuestRequest for ExtReportReq<'_> {
    const OPCODE: Opcode = SNP_GET_EXT_REPORT;
}

/// One call: the argument, and the request and response its addresses
/// were taken from, borrowed for as long as the call value lives.
struct Call<'a, R> {
    argument: &'a mut SnpGuestRequestIoctl,
    borrows: PhantomData<(&'a mut R, &'a mut SnpReportResp)>,
}

// SAFETY: `R::OPCODE` is the opcode (`SNP_GET_REPORT` / `SNP_GET_EXT_REPORT`)
// whose handler in the kernel's sev-guest driver reads a
// `snp_guest_request_ioctl` (the layout checked above) and follows its
// `req_data` to an `R` (`snp_report_req` / `snp_ext_report_req`, checked
// above; the sealed trait admits no other), its `resp_data` to a
// `snp_report_resp`, and, for the extended request, `certs_address` to
// `certs_len` bytes. `Call` is only built by `guest_request`, which takes
// these addresses from live `&mut` borrows held for the call; an
// `ExtReportReq` borrows its certificate buffer, whose length it names.
// The handler writes into the argument (`exitinfo2`), the response and
// that buffer, so the call mutates (`IS_MUTATING`), and it returns no
// output through the pointer.
unsafe impl<R: GuestRequest> Ioctl for Call<'_, R> {
    type Output = ();
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        R::OPCODE
    }

    fn as_ptr(&mut self) -> *mut std::ffi::c_void {
        std::ptr::from_mut(self.argument).cast()
    }

    unsafe fn output_from_ptr(
        _: IoctlOutput,
        _: *mut std::ffi::c_void,
    ) -> rustix::io::Result<Self::Output> {
        Ok(())
    }
}

/// A failed guest request: the errno and `exitinfo2`.
#[derive(Debug)]
pub struct RequestError {
    /// What the ioctl returned.
    pub errno: std::io::Error,
    /// bits 63:32 VMM error, bits 31:0 firmware error.
    pub exitinfo2: u64,
}

impl RequestError {
    /// The VMM error (bits 63:32 of `exitinfo2`).
    pub fn vmm_error(&self) -> u32 {
        (self.exitinfo2 >> 32) as u32
    }
}

/// Issues `R`'s guest request on `device` (an open `/dev/sev-guest`) with
/// `request` and `response`.
pub fn guest_request<R: GuestRequest>(
    device: &File,
    request: &mut R,
    response: &mut SnpReportResp,
) -> Result<(), RequestError> {
    let mut argument = SnpGuestRequestIoctl {
        msg_version: 1,
        req_data: std::ptr::from_mut(request) as u64,
        resp_data: std::ptr::from_mut(response) as u64,
        exitinfo2: 0,
    };
    let call = Call::<R> {
        argument: &mut argument,
        borrows: PhantomData,
    };
    // SAFETY: `call` pairs `R`'s own opcode with an argument whose addresses
    // come from `request` and `response`, borrowed mutably until this
    // function returns (see the `Ioctl` impl). The one thing the types
    // cannot carry is that `device` is a sev-guest device: the caller opens
    // the configured device path (`SevGuest`). The other users of ioctl
    // type 'S' (cdrom, the ALSA sequencer) encode other directions or
    // sizes, so these full numbers are not theirs and they refuse them
    // (ENOTTY, as the test on /dev/null shows for a device without ioctls).
    let result = unsafe { rustix::ioctl::ioctl(device, call) };
    result.map_err(|errno| RequestError {
        errno: errno.into(),
        exitinfo2: argument.exitinfo2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcodes_match_the_kernel_uapi() {
        // `_IOWR('S', nr, struct snp_guest_request_ioctl)` (module docs):
        // direction 3 (read|write) in bits 31:30, size 32 in 29:16, 'S'
        // (0x53) in 15:8, nr in 7:0.
        assert_eq!(SNP_GET_REPORT, 0xc020_5300);
        assert_eq!(SNP_GET_EXT_REPORT, 0xc020_5302);
        assert_eq!(<SnpReportReq as GuestRequest>::OPCODE, SNP_GET_REPORT);
        assert_eq!(
            <ExtReportReq<'_> as GuestRequest>::OPCODE,
            SNP_GET_EXT_REPORT
        );
    }

    #[test]
    fn builds_requests() {
        let request = SnpReportReq::new(&[7; 64], 2);
        assert_eq!(request.user_data, [7; 64]);
        assert_eq!(request.vmpl, 2);
        assert_eq!(request.rsvd, [0; 28]);
        let mut certs = CertBuffer::new();
        let address = certs.0.as_ptr() as u64;
        let ext = ExtReportReq::new(request, &mut certs);
        assert_eq!(ext.raw.data, request);
        assert_eq!(ext.raw.certs_address, address);
        assert_eq!(ext.certs_len(), 0x4000);
    }

    #[test]
    fn a_device_that_is_not_sev_guest_refuses_the_request() {
        // /dev/null has no ioctls: the kernel answers ENOTTY, the argument
        // untouched.
        let device = File::open("/dev/null").unwrap();
        let mut request = SnpReportReq::new(&[1; 64], 0);
        let mut response = SnpReportResp::default();
        let err = guest_request(&device, &mut request, &mut response).unwrap_err();
        assert_eq!(err.errno.raw_os_error(), Some(libc::ENOTTY));
        assert_eq!(err.exitinfo2, 0);
        assert_eq!(response, SnpReportResp::default());
    }

    #[test]
    fn splits_exitinfo2() {
        let err = RequestError {
            errno: std::io::Error::from_raw_os_error(libc::EIO),
            exitinfo2: (u64::from(VMM_ERR_INVALID_LEN) << 32) | 0x16,
        };
        assert_eq!(err.vmm_error(), VMM_ERR_INVALID_LEN);
    }
}
