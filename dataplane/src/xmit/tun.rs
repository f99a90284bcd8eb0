//! IP tunnelling (ipvsadm `-i`, VS/TUN), as IPVS's `ip_vs_tunnel_xmit`.
//!
//! The client's IPv4 packet is carried to the real server unchanged but for
//! its TTL, inside an outer header from the director (the service's
//! `tun_src`, else the egress port's DIP) to the RIP:
//!
//! - IPIP (RFC 2003 §3.1): a 20-byte outer IPv4 header, protocol 4;
//! - GUE (IPVS `--tun-type gue`): an outer IPv4 header, a UDP header to the
//!   real server's `tun_port` and the 4-byte GUE variant-0 header
//!   (`wire::gue`) naming protocol 4, 32 bytes in all.
//!
//! As IPVS does (`ip_vs_prepare_tunneled_skb`, and `decrement_ttl` on the
//! route lookup since Linux 4.2): the inner TTL is decremented (the
//! director routes the packet into the tunnel) and its header checksum
//! fixed; the outer header copies the inner TOS byte, the inner DF bit and
//! the (decremented) inner TTL. The outer UDP source port of GUE varies per
//! flow (a fixed hash of the client's 5-tuple, [`gue_src_port`]: the same on
//! every worker and every director) so that the real server's NIC can
//! spread flows over its queues by RSS, as IPVS's `udp_flow_src_port`. The
//! UDP checksum is 0 ("none", RFC 768): IPVS's default (`--tun-nocsum`),
//! and the inner TCP/UDP checksum already covers the payload end to end, so
//! a sum over the whole packet would cost a pass over every byte for
//! nothing the receiver needs.
//!
//! The real server holds the VIP, decapsulates and answers the client
//! directly: like DR, a TUN connection has no outbound key.
//!
//! The egress MTU is the pipeline's, checked for every method before the
//! rewrite with what the method adds ([`overhead`] here, RFC 2003 §5.1:
//! the tunnel's MTU is the path's less the outer header): an encapsulated
//! packet above it gets ICMP "fragmentation needed" with the MTU left
//! inside the tunnel when DF is set, else it is dropped as
//! `tun_needs_fragmentation` (IPVS would fragment the outer packet;
//! fulcrum does not fragment).
//!
//! Refuses (a named drop, nothing written): a frame whose buffer cannot
//! grow by the overhead (`tun_no_room`).

use crate::conn::FlowKey;
use crate::frame::Frame;
use crate::snapshot::{TunConf, TunType};
use crate::stats::DropReason;
use crate::wire::{
    GuePacket, Ipv4Packet, UdpPacket, GUE_HEADER_LEN, MIN_HEADER_LEN as IPV4_HEADER_LEN,
    PROTO_IPIP, PROTO_UDP, UDP_HEADER_LEN,
};

/// Bytes an IPIP encapsulation adds: the outer IPv4 header.
pub const IPIP_OVERHEAD: usize = IPV4_HEADER_LEN;
/// Bytes a GUE encapsulation adds: outer IPv4, UDP and GUE headers.
pub const GUE_OVERHEAD: usize = IPV4_HEADER_LEN + UDP_HEADER_LEN + GUE_HEADER_LEN;
/// First port of the range GUE's outer source port is drawn from (RFC 6335
/// §6's dynamic ports, 49152..=65535).
pub const GUE_SRC_PORT_MIN: u16 = 49152;

/// The outer header's per-packet inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outer {
    /// The real server's tunnel parameters.
    pub conf: TunConf,
    /// Outer source address (resolved: `conf.src`, else the egress DIP),
    /// host order.
    pub src: u32,
    /// Outer destination address: the RIP, host order.
    pub dst: u32,
    /// Outer IPv4 identification.
    pub ident: u16,
    /// GUE's outer UDP source port, host order ([`gue_src_port`]).
    pub sport: u16,
}

/// Bytes `kind` adds in front of the inner packet.
#[inline]
pub fn overhead(kind: TunType) -> usize {
    match kind {
        TunType::Ipip => IPIP_OVERHEAD,
        TunType::Gue => GUE_OVERHEAD,
    }
}

/// GUE's outer UDP source port for the client's flow `key` (as it
/// arrived: CIP:cport → VIP:vport): one port of 49152..=65535, the same for
/// every packet of the flow. Multiplicative (Fibonacci) hashing of the
/// 5-tuple, top 14 bits: fixed, so every worker and every director agree.
#[inline]
pub fn gue_src_port(key: &FlowKey) -> u16 {
    let a = (u64::from(key.src_ip) << 32) | u64::from(key.dst_ip);
    let b = (u64::from(key.src_port) << 24) | (u64::from(key.dst_port) << 8) | u64::from(key.proto);
    let h = (a ^ b.wrapping_mul(0xff51_afd7_ed55_8ccd)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    GUE_SRC_PORT_MIN | (h >> 50) as u16
}

/// Encapsulates the IPv4 datagram at `frame[l3..ip_end]` (its header
/// already checked with `check_len`, TTL > 1, and with [`overhead`] bytes
/// more within the egress MTU: the caller's check) for `outer`: checks the
/// room, decrements the inner TTL, drops any Ethernet padding after
/// `ip_end`, opens the outer header's gap at `l3` and writes it. The
/// Ethernet header (`frame[..l3]`) is the caller's.
///
/// # Errors
/// `tun_no_room` when the frame cannot grow by [`overhead`] bytes,
/// `ipv4_malformed` if `l3..ip_end` is not a 20-byte-or-longer range of the
/// frame or the outer datagram would exceed 65535 bytes (the pipeline never
/// passes either). The frame is unchanged on error.
pub fn encapsulate(
    frame: &mut Frame<'_>,
    l3: usize,
    ip_end: usize,
    outer: &Outer,
) -> Result<(), DropReason> {
    let oh = overhead(outer.conf.kind);
    let (df, inner_len) = match frame.bytes().get(l3..ip_end) {
        Some(ip) if ip.len() >= IPV4_HEADER_LEN => {
            (Ipv4Packet::new_unchecked(ip).dont_frag(), ip.len())
        }
        _ => return Err(DropReason::Ipv4Malformed),
    };
    let Ok(outer_len) = u16::try_from(inner_len + oh) else {
        return Err(DropReason::Ipv4Malformed);
    };
    if ip_end + oh > frame.capacity() {
        return Err(DropReason::TunNoRoom);
    }
    super::decrement_ttl(&mut frame.bytes_mut()[l3..ip_end]);
    let (tos, ttl) = {
        let inner = Ipv4Packet::new_unchecked(&frame.bytes()[l3..ip_end]);
        (inner.dscp_ecn(), inner.ttl())
    };
    // Both checked above: ip_end <= len, ip_end + oh <= capacity.
    if !frame.set_len(ip_end) || !frame.insert_gap(l3, oh) {
        return Err(DropReason::TunNoRoom);
    }
    let hdr = &mut frame.bytes_mut()[l3..l3 + oh];
    let proto = match outer.conf.kind {
        TunType::Ipip => PROTO_IPIP,
        TunType::Gue => PROTO_UDP,
    };
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut hdr[..IPV4_HEADER_LEN]);
        ip.set_version(4);
        ip.set_header_len(IPV4_HEADER_LEN);
        ip.set_dscp_ecn(tos);
        ip.set_total_len(outer_len);
        ip.set_ident(outer.ident);
        ip.set_flags_and_frag(df, false, 0);
        ip.set_ttl(ttl);
        ip.set_protocol(proto);
        ip.set_src_addr(outer.src);
        ip.set_dst_addr(outer.dst);
        ip.fill_checksum();
    }
    if outer.conf.kind == TunType::Gue {
        let udp_len = outer_len - IPV4_HEADER_LEN as u16;
        let (udp, gue) = hdr[IPV4_HEADER_LEN..].split_at_mut(UDP_HEADER_LEN);
        let mut u = UdpPacket::new_unchecked(udp);
        u.set_src_port(outer.sport);
        u.set_dst_port(outer.conf.port);
        u.set_len(udp_len);
        u.set_checksum(0);
        GuePacket::new_unchecked(gue).emit_data(PROTO_IPIP);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;

    /// A 40-byte IPv4/TCP datagram with DF, TTL 64, TOS 0x10, after a
    /// 14-byte Ethernet header, padded to 60 bytes, in a 128-byte buffer.
    fn frame_bytes() -> [u8; 128] {
        let mut b = [0u8; 128];
        b[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut b[14..54];
        ip[0] = 0x45;
        ip[1] = 0x10;
        ip[2..4].copy_from_slice(&40u16.to_be_bytes());
        ip[6] = 0x40;
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[192, 0, 2, 7]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 100]);
        let c = checksum::checksum(&ip[..20]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        b[54..60].copy_from_slice(&[0xee; 6]);
        b
    }

    fn outer(kind: TunType) -> Outer {
        Outer {
            conf: TunConf {
                kind,
                port: if kind == TunType::Gue { 6080 } else { 0 },
                src: 0,
            },
            src: 0x0a01_0001,
            dst: 0x0a01_000b,
            ident: 0x1234,
            sport: 50123,
        }
    }

    #[test]
    fn test_ipip_emit() {
        let mut b = frame_bytes();
        let mut f = Frame::new(&mut b, 60);
        encapsulate(&mut f, 14, 54, &outer(TunType::Ipip)).unwrap();
        assert_eq!(f.len(), 14 + 20 + 40, "padding dropped, 20 bytes added");
        let o = Ipv4Packet::new_checked(&f.bytes()[14..]).unwrap();
        assert_eq!(
            (
                o.total_len(),
                o.protocol(),
                o.ttl(),
                o.dscp_ecn(),
                o.dont_frag()
            ),
            (60, 4, 63, 0x10, true)
        );
        assert_eq!(
            (o.src_addr(), o.dst_addr(), o.ident()),
            (0x0a01_0001, 0x0a01_000b, 0x1234)
        );
        assert!(o.verify_checksum());
        let inner = Ipv4Packet::new_checked(o.payload()).unwrap();
        assert_eq!(inner.ttl(), 63);
        assert!(inner.verify_checksum());
        assert_eq!(inner.dst_addr(), 0x0a00_0064, "inner addresses untouched");
    }

    #[test]
    fn test_gue_emit() {
        let mut b = frame_bytes();
        let mut f = Frame::new(&mut b, 60);
        encapsulate(&mut f, 14, 54, &outer(TunType::Gue)).unwrap();
        assert_eq!(f.len(), 14 + 32 + 40);
        let o = Ipv4Packet::new_checked(&f.bytes()[14..]).unwrap();
        assert_eq!((o.total_len(), o.protocol()), (72, 17));
        assert!(o.verify_checksum());
        let u = UdpPacket::new_checked(o.payload()).unwrap();
        assert_eq!((u.dst_port(), u.len(), u.checksum()), (6080, 52, 0));
        assert_eq!(u.src_port(), 50123);
        assert_eq!(&u.payload()[..4], &[0, 4, 0, 0]);
        assert_eq!(u.payload()[4], 0x45);
    }

    #[test]
    fn test_no_room_leaves_frame() {
        let mut b = frame_bytes();
        let mut f = Frame::new(&mut b[..70], 60);
        assert_eq!(
            encapsulate(&mut f, 14, 54, &outer(TunType::Ipip)),
            Err(DropReason::TunNoRoom)
        );
        assert_eq!(f.len(), 60);
        assert_eq!(f.bytes(), &frame_bytes()[..60], "TTL not touched");
    }

    #[test]
    fn test_gue_src_port_spreads() {
        let key = |cport: u16| FlowKey {
            src_ip: 0x0a00_0002,
            dst_ip: 0x0a00_0064,
            src_port: cport,
            dst_port: 80,
            proto: 6,
        };
        let ports: std::collections::HashSet<u16> =
            (40000..41000).map(|p| gue_src_port(&key(p))).collect();
        // 1000 flows into 16384 ports: a uniform hash collides ~30 times.
        assert!(ports.len() > 940, "{} distinct", ports.len());
        assert_eq!(gue_src_port(&key(40000)), gue_src_port(&key(40000)));
        assert!(ports.iter().all(|&p| p >= GUE_SRC_PORT_MIN));
    }
}
