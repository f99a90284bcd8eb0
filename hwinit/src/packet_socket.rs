//! A Linux `AF_PACKET` socket bound to one interface, for sending whole
//! Ethernet frames the control thread builds (VRRP's gratuitous ARPs on a
//! port's TAP interface, which the workers then put on the wire).
//!
//! Layer: hwinit, the only crate with `unsafe`: `std` has no packet
//! sockets and the safe wrappers (`socket2`, `nix`) cannot build a
//! `sockaddr_ll` without `unsafe` either. Control side only, never per
//! packet on a worker.
//!
//! Source: packet(7) — `socket(AF_PACKET, SOCK_RAW, htons(proto))`,
//! `bind` to a `sockaddr_ll` naming the interface index, then `send` of a
//! frame that starts with the Ethernet header.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// EtherType ARP (0x0806), the protocol the socket is opened for: it
/// receives nothing else (and is never read).
const ETH_P_ARP: u16 = 0x0806;

/// A packet socket bound to one interface, send-only.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
}

impl PacketSocket {
    /// Opens a packet socket on the interface `ifname` (at most 15 bytes).
    ///
    /// # Errors
    /// `NotFound` when no interface has that name (or the name holds a NUL);
    /// the OS error of `socket`/`bind` otherwise (`EPERM` without
    /// `CAP_NET_RAW`).
    pub fn open(ifname: &str) -> io::Result<PacketSocket> {
        let name = CString::new(ifname)
            .map_err(|_| io::Error::new(io::ErrorKind::NotFound, "interface name holds a NUL"))?;
        // SAFETY: `name` is a valid NUL-terminated string that outlives the
        // call; if_nametoindex only reads it.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no interface named {ifname:?}"),
            ));
        }
        let proto = i32::from(ETH_P_ARP.to_be());
        // SAFETY: plain socket(2) call with constant arguments; it touches
        // no memory of ours.
        let raw =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor returned by socket(2) above,
        // owned by nobody else; OwnedFd closes it once.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let ifindex = i32::try_from(ifindex).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "interface index too large")
        })?;
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ARP.to_be();
        sll.sll_ifindex = ifindex;
        // SAFETY: `sll` is a valid sockaddr_ll living across the call and
        // the length passed is its exact size; bind(2) only reads it.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::addr_of!(sll).cast::<libc::sockaddr>(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PacketSocket { fd, ifindex })
    }

    /// The interface index the socket is bound to.
    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }

    /// Sends one Ethernet frame (header included, no FCS; 14..=1514 bytes
    /// on a standard MTU) on the interface.
    ///
    /// # Errors
    /// The OS error of send(2) (`ENETDOWN` when the interface is down,
    /// `EMSGSIZE` above its MTU).
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: `frame` is a valid readable slice for its whole length
        // during the call; send(2) only reads it.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast::<libc::c_void>(),
                frame.len(),
                0,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_unknown_interface_is_not_found() {
        let e = PacketSocket::open("fc-no-such-if0").expect_err("no such interface");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e = PacketSocket::open("a\0b").expect_err("NUL in name");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn test_sends_on_loopback_when_permitted() {
        // Root (as `make test` runs) may open packet sockets; elsewhere the
        // refusal must be EPERM, not a panic.
        match PacketSocket::open("lo") {
            Ok(s) => {
                assert!(s.ifindex() > 0);
                let mut frame = [0u8; 42];
                frame[12] = 0x08;
                frame[13] = 0x06;
                s.send(&frame).expect("a 42-byte frame on lo");
            }
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM)),
        }
    }
}
