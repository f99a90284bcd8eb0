//! NAT ("masquerading", ipvsadm `-m`), as IPVS's `ip_vs_nat_xmit` and the
//! reply path `handle_response`.
//!
//! Inbound: destination VIP:vport becomes RIP:rport. Outbound (the real
//! server's reply, which must route through the director): source RIP:rport
//! becomes VIP:vport. Both decrement the TTL: the director routes. Changing
//! an address changes the IPv4 header checksum and the L4 checksum (whose
//! pseudo-header covers the addresses); changing a port changes the L4
//! checksum only. A UDP checksum of 0 means "none" (RFC 768) and stays 0.

use crate::wire::{Ipv4Packet, TcpPacket, UdpPacket, PROTO_TCP, PROTO_UDP};

/// Which address/port pair of the packet is rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// The source address and port.
    Src,
    /// The destination address and port.
    Dst,
}

/// Rewrites one side's address and port with the wire views' incremental
/// updates: the IPv4 header checksum for the address, the TCP/UDP checksum
/// for the port and for the pseudo-header address (UDP "no checksum" stays
/// 0). Other protocols only get the address rewritten.
pub(crate) fn rewrite(ip: &mut [u8], side: Side, new_addr: u32, new_port: u16) {
    let mut p = Ipv4Packet::new_unchecked(ip);
    let old_addr = match side {
        Side::Src => p.rewrite_src_addr(new_addr),
        Side::Dst => p.rewrite_dst_addr(new_addr),
    };
    let proto = p.protocol();
    let l4 = p.payload_mut();
    match proto {
        PROTO_TCP if l4.len() >= crate::wire::TCP_MIN_HEADER_LEN => {
            let mut t = TcpPacket::new_unchecked(l4);
            match side {
                Side::Src => t.rewrite_src_port(new_port),
                Side::Dst => t.rewrite_dst_port(new_port),
            };
            t.adjust_checksum_for_addr(old_addr, new_addr);
        }
        PROTO_UDP if l4.len() >= crate::wire::UDP_HEADER_LEN => {
            let mut u = UdpPacket::new_unchecked(l4);
            match side {
                Side::Src => u.rewrite_src_port(new_port),
                Side::Dst => u.rewrite_dst_port(new_port),
            };
            u.adjust_checksum_for_addr(old_addr, new_addr);
        }
        _ => {}
    }
}

/// Inbound NAT: sets the destination to `rip:rport` (host order) and fixes the
/// IPv4 and TCP/UDP checksums.
///
/// `ip` runs from the IPv4 header's first byte to the end of the frame; its
/// IPv4 and L4 headers passed `check_len`. TTL handling is separate
/// ([`super::decrement_ttl`]).
#[inline]
pub fn rewrite_inbound(ip: &mut [u8], rip: u32, rport: u16) {
    rewrite(ip, Side::Dst, rip, rport);
}

/// Outbound NAT (reply from the real server): sets the source to
/// `vip:vport` (host order) and fixes the checksums.
///
/// Same contract as [`rewrite_inbound`].
#[inline]
pub fn rewrite_outbound(ip: &mut [u8], vip: u32, vport: u16) {
    rewrite(ip, Side::Src, vip, vport);
}
