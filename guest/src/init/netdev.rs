//! The network-interface ioctls init needs to bring up `lo` and `eth0`
//! (`SIOCGIFFLAGS`, `SIOCSIFFLAGS`, `SIOCSIFADDR`, `SIOCSIFNETMASK`),
//! typed so that safe code cannot misuse them.
//!
//! No crate offers these safely (rustix and nix stop at the raw ioctl; the
//! alternative is netlink, a much larger protocol). Every one of the four
//! takes a `struct ifreq`, here [`IfReq`]: plain bytes (the name, then the
//! 24-byte union as bytes), so it is built and read without `unsafe`. The
//! opcodes are the variants of a private enum, so no other opcode can be
//! paired with an `IfReq`. The one `unsafe` call and the one `unsafe impl`
//! are here.
#![allow(unsafe_code)]

use std::mem::size_of;
use std::os::fd::OwnedFd;

use rustix::ioctl::{Ioctl, IoctlOutput, Opcode};
use rustix::net::{AddressFamily, SocketFlags, SocketType};

/// `IFNAMSIZ`.
const IFNAMSIZ: usize = 16;
/// `IFF_UP`.
const IFF_UP: i16 = 0x1;
/// `IFF_RUNNING`.
const IFF_RUNNING: i16 = 0x40;
/// `AF_INET`.
const AF_INET: u16 = 2;

/// `struct ifreq` (Linux `if.h`): `char ifr_name[IFNAMSIZ]`, then a
/// 24-byte union (`short ifru_flags`, `struct sockaddr ifru_addr`, …),
/// here as bytes. An IPv4 `struct sockaddr_in` in it is `sa_family_t
/// sin_family` (host order), `__be16 sin_port`, `struct in_addr sin_addr`
/// (network order), 8 zero bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IfReq {
    name: [u8; IFNAMSIZ],
    data: [u8; 24],
}

const _: () = assert!(size_of::<IfReq>() == size_of::<libc::ifreq>());
const _: () = assert!(size_of::<IfReq>() == 40);

impl IfReq {
    /// A request for interface `name` (cut to 15 bytes, NUL-terminated),
    /// union zeroed.
    pub fn new(name: &str) -> Self {
        let mut req = Self {
            name: [0; IFNAMSIZ],
            data: [0; 24],
        };
        for (slot, byte) in req.name.iter_mut().zip(name.bytes().take(IFNAMSIZ - 1)) {
            *slot = byte;
        }
        req
    }

    /// `ifru_flags` (a `short`).
    pub fn flags(&self) -> i16 {
        i16::from_ne_bytes([self.data[0], self.data[1]])
    }

    /// Sets `ifru_flags`.
    pub fn set_flags(&mut self, flags: i16) {
        self.data[..2].copy_from_slice(&flags.to_ne_bytes());
    }

    /// Sets `ifru_addr` to the IPv4 `struct sockaddr_in` for `addr`, port 0.
    pub fn set_ipv4(&mut self, addr: [u8; 4]) {
        self.data = [0; 24];
        self.data[..2].copy_from_slice(&AF_INET.to_ne_bytes());
        // sin_port (2 bytes) stays 0; sin_addr is in network order, which
        // is the order of `addr`'s bytes; sin_zero stays 0.
        self.data[4..8].copy_from_slice(&addr);
    }
}

/// The interface requests used, each with its opcode (Linux `sockios.h`:
/// `SIOCGIFFLAGS` 0x8913, `SIOCSIFFLAGS` 0x8914, `SIOCSIFADDR` 0x8916,
/// `SIOCSIFNETMASK` 0x891c); every one takes a `struct ifreq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Request {
    /// `SIOCGIFFLAGS`: the kernel writes `ifru_flags`.
    GetFlags,
    /// `SIOCSIFFLAGS`: the kernel reads `ifru_flags`.
    SetFlags,
    /// `SIOCSIFADDR`: the kernel reads `ifru_addr`.
    SetAddr,
    /// `SIOCSIFNETMASK`: the kernel reads `ifru_netmask`.
    SetNetmask,
}

impl Request {
    const fn opcode(self) -> Opcode {
        match self {
            Self::GetFlags => 0x8913,
            Self::SetFlags => 0x8914,
            Self::SetAddr => 0x8916,
            Self::SetNetmask => 0x891c,
        }
    }
}

/// One call: a request and the `ifreq` it reads or writes, borrowed for as
/// long as the call value lives.
struct Call<'a> {
    request: Request,
    ifreq: &'a mut IfReq,
}

// SAFETY: every `Request` is a socket ioctl whose handler (the kernel's
// `dev_ioctl`) reads and, for SIOCGIFFLAGS, writes exactly one
// `struct ifreq` at the pointer (40 bytes on 64-bit targets, the size of
// `IfReq`, checked above against libc's `ifreq`); `as_ptr` points at the
// `IfReq` this call borrows mutably. The call may write it, so it mutates;
// no output comes back through the pointer.
unsafe impl Ioctl for Call<'_> {
    type Output = ();
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        self.request.opcode()
    }

    fn as_ptr(&mut self) -> *mut std::ffi::c_void {
        std::ptr::from_mut(self.ifreq).cast()
    }

    unsafe fn output_from_ptr(
        _: IoctlOutput,
        _: *mut std::ffi::c_void,
    ) -> rustix::io::Result<Self::Output> {
        Ok(())
    }
}

/// A datagram socket for the interface ioctls.
pub struct NetSocket(OwnedFd);

impl NetSocket {
    /// An `AF_INET` datagram socket.
    pub fn new() -> std::io::Result<Self> {
        let fd = rustix::net::socket_with(
            AddressFamily::INET,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            None,
        )?;
        Ok(Self(fd))
    }

    fn call(&self, request: Request, ifreq: &mut IfReq) -> std::io::Result<()> {
        // SAFETY: `Call` pairs each opcode with the `struct ifreq` it takes
        // (see the `Ioctl` impl); `ifreq` is borrowed for the whole call
        // and the descriptor is this socket's.
        unsafe { rustix::ioctl::ioctl(&self.0, Call { request, ifreq }) }?;
        Ok(())
    }

    /// Sets IFF_UP and IFF_RUNNING on interface `name`.
    pub fn up(&self, name: &str) -> std::io::Result<()> {
        let mut req = IfReq::new(name);
        self.call(Request::GetFlags, &mut req)?;
        req.set_flags(req.flags() | IFF_UP | IFF_RUNNING);
        self.call(Request::SetFlags, &mut req)
    }

    /// Sets the IPv4 address of interface `name`.
    pub fn set_addr(&self, name: &str, addr: [u8; 4]) -> std::io::Result<()> {
        let mut req = IfReq::new(name);
        req.set_ipv4(addr);
        self.call(Request::SetAddr, &mut req)
    }

    /// Sets the IPv4 netmask of interface `name`.
    pub fn set_netmask(&self, name: &str, netmask: [u8; 4]) -> std::io::Result<()> {
        let mut req = IfReq::new(name);
        req.set_ipv4(netmask);
        self.call(Request::SetNetmask, &mut req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcodes_and_constants_match_the_kernel_uapi() {
        // The kernel's values, as libc has them.
        for (request, uapi) in [
            (Request::GetFlags, libc::SIOCGIFFLAGS),
            (Request::SetFlags, libc::SIOCSIFFLAGS),
            (Request::SetAddr, libc::SIOCSIFADDR),
            (Request::SetNetmask, libc::SIOCSIFNETMASK),
        ] {
            assert_eq!(libc::c_ulong::from(request.opcode()), uapi, "{request:?}");
        }
        assert_eq!(IFNAMSIZ, libc::IFNAMSIZ);
        assert_eq!(i32::from(IFF_UP), libc::IFF_UP);
        assert_eq!(i32::from(IFF_RUNNING), libc::IFF_RUNNING);
        assert_eq!(i32::from(AF_INET), libc::AF_INET);
    }

    #[test]
    fn builds_requests_as_the_kernel_lays_them_out() {
        let mut req = IfReq::new("eth0-with-a-very-long-name");
        assert_eq!(&req.name[..15], b"eth0-with-a-ver");
        assert_eq!(req.name[15], 0);
        req.set_flags(0x1043);
        assert_eq!(req.flags(), 0x1043);
        req.set_ipv4([10, 0, 2, 15]);
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes([10, 0, 2, 15]),
            },
            sin_zero: [0; 8],
        };
        assert_eq!(req.data[..2], sin.sin_family.to_ne_bytes());
        assert_eq!(req.data[2..4], sin.sin_port.to_ne_bytes());
        assert_eq!(req.data[4..8], sin.sin_addr.s_addr.to_ne_bytes());
        assert_eq!(req.data[8..], [0; 16]);
    }

    #[test]
    fn reads_the_flags_of_the_loopback_interface() {
        // SIOCGIFFLAGS needs no privilege; every Linux network namespace
        // has `lo`.
        let socket = NetSocket::new().unwrap();
        let mut req = IfReq::new("lo");
        socket.call(Request::GetFlags, &mut req).unwrap();
        assert_eq!(req.flags() & 0x8, 0x8, "IFF_LOOPBACK");
        let mut missing = IfReq::new("no-such-if0");
        let err = socket.call(Request::GetFlags, &mut missing).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
    }
}
