//! The VRRP thread's sockets: one raw IPv4 socket (protocol 112) per
//! instance on its port's kernel (TAP) interface, and one packet socket
//! per port for gratuitous ARPs.
//!
//! Layer: control, daemon side. Why the kernel's sockets and not a worker
//! ring: the adverts are a few packets a second, the dataplane already
//! hands the kernel what is addressed to the director (the exception path),
//! and the kernel then does the multicast membership, the IP header and
//! the neighbour resolution for unicast peers. The dataplane checks each
//! advert with the wire view before it gets here (`local::vrrp`), and this
//! side checks it again ([`dataplane::wire::vrrp::parse_ip`]) because the
//! kernel interface also carries what the kernel itself sends.
//!
//! Source: RFC 5798 §5.1.1 (TTL 255, destination 224.0.0.18), keepalived's
//! `vrrp_open_sockpool` (a raw socket per interface and family, bound to
//! the device, `IP_MULTICAST_TTL` 255, loop off).
#![forbid(unsafe_code)]

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, BorrowedFd};

use dataplane::wire::vrrp::{MCAST_ADDR, PROTO_VRRP, TTL};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};

/// One instance's advert sockets: `recv` is bound to the interface only
/// (a raw socket bound to an address would get nothing sent to
/// 224.0.0.18), `send` also to the source address, so the kernel writes
/// it into every advert's IP header.
pub struct AdvertSocket {
    recv: Socket,
    send: Socket,
    /// Our source address, host order (the pseudo-header's for v3).
    pub src: u32,
}

/// A raw protocol-112 socket bound to the device `iface`, TTL and
/// multicast TTL 255, multicast loop off, non-blocking.
fn raw_on(iface: &str) -> io::Result<Socket> {
    let sock = Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(Protocol::from(i32::from(PROTO_VRRP))),
    )
    .map_err(step("raw socket for IP protocol 112"))?;
    sock.bind_device(Some(iface.as_bytes()))
        .map_err(step("SO_BINDTODEVICE"))?;
    sock.set_ttl(u32::from(TTL)).map_err(step("IP_TTL"))?;
    sock.set_multicast_ttl_v4(u32::from(TTL))
        .map_err(step("IP_MULTICAST_TTL"))?;
    sock.set_multicast_loop_v4(false)
        .map_err(step("IP_MULTICAST_LOOP"))?;
    sock.set_nonblocking(true).map_err(step("O_NONBLOCK"))?;
    Ok(sock)
}

/// Names the step an OS error came from.
fn step(what: &'static str) -> impl Fn(io::Error) -> io::Error {
    move |e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"))
}

impl AdvertSocket {
    /// Opens the pair on `iface`: the receive socket joined to 224.0.0.18
    /// on it unless `unicast`, the send socket bound to `src`.
    ///
    /// # Errors
    /// The OS error of each step, with the step named (`EPERM` without
    /// `CAP_NET_RAW`; `EADDRNOTAVAIL` when `src` is not on the interface).
    pub fn open(iface: &str, src: Ipv4Addr, unicast: bool) -> io::Result<AdvertSocket> {
        let recv = raw_on(iface)?;
        let send = raw_on(iface)?;
        send.bind(&SocketAddrV4::new(src, 0).into())
            .map_err(step("bind to the source address"))?;
        // The send socket is never read: keep what it queues small.
        send.set_recv_buffer_size(1).map_err(step("SO_RCVBUF"))?;
        if !unicast {
            send.set_multicast_if_v4(&src)
                .map_err(step("IP_MULTICAST_IF"))?;
            let idx = nix::net::if_::if_nametoindex(iface)
                .map_err(|e| io::Error::from_raw_os_error(e as i32))
                .map_err(step("interface index"))?;
            recv.join_multicast_v4_n(
                &Ipv4Addr::from(MCAST_ADDR),
                &InterfaceIndexOrAddress::Index(idx),
            )
            .map_err(step("IP_ADD_MEMBERSHIP 224.0.0.18"))?;
        }
        Ok(AdvertSocket {
            recv,
            send,
            src: u32::from(src),
        })
    }

    /// Sends one VRRP message (the IP payload; the kernel adds the header
    /// with TTL 255 and protocol 112) to `dst` (host order).
    ///
    /// # Errors
    /// The OS error of sendto(2).
    pub fn send(&self, msg: &[u8], dst: u32) -> io::Result<()> {
        let to = SocketAddrV4::new(Ipv4Addr::from(dst), 0);
        self.send.send_to(msg, &to.into()).map(|_| ())
    }

    /// Reads one packet (IPv4 header first, as raw sockets deliver it)
    /// into `buf`; `Ok(None)` when nothing is waiting.
    ///
    /// # Errors
    /// The OS error of read(2) other than `EWOULDBLOCK`/`EINTR`.
    pub fn recv<'a>(&self, buf: &'a mut [u8]) -> io::Result<Option<&'a [u8]>> {
        match (&self.recv).read(buf) {
            Ok(n) => Ok(Some(&buf[..n])),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The descriptor, for poll(2).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.recv.as_fd()
    }
}

/// A gratuitous ARP for `ip` (host order) from `mac` (wire order): a
/// broadcast ARP request whose sender and target protocol addresses are
/// both `ip` and whose target MAC is zero (RFC 5227 §3's announcement, what
/// keepalived's `send_gratuitous_arp` sends), padded to 60 bytes.
pub fn garp_frame(mac: [u8; 6], ip: u32) -> [u8; 60] {
    let mut buf = [0u8; 60];
    let req = dataplane::pipeline::ArpRequest {
        port: 0,
        sender_ip: ip,
        target_ip: ip,
    };
    dataplane::pipeline::emit_arp_request(&mut buf, mac, &req);
    buf
}

/// The multicast destination of adverts, host order.
pub const GROUP: u32 = MCAST_ADDR;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_garp_frame_is_an_announcement() {
        let mac = [0x02, 0, 0, 0, 0, 0x11];
        let f = garp_frame(mac, 0x0a00_0064);
        // RFC 826 layout after the Ethernet header, written out by hand.
        let mut want = [0u8; 60];
        want[..6].copy_from_slice(&[0xff; 6]);
        want[6..12].copy_from_slice(&mac);
        want[12..14].copy_from_slice(&[0x08, 0x06]);
        want[14..22].copy_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
        want[22..28].copy_from_slice(&mac);
        want[28..32].copy_from_slice(&[10, 0, 0, 100]);
        want[38..42].copy_from_slice(&[10, 0, 0, 100]);
        assert_eq!(f, want);
    }
}
