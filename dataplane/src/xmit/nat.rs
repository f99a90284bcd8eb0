//! NAT ("masquerading", ipvsadm `-m`), as IPVS's `ip_vs_nat_xmit` and the
//! reply path `handle_response`.
//!
//! Inbound: destination VIP:vport becomes RIP:rport. Outbound (the real
//! server's reply, which must route through the director): source RIP:rport
//! becomes VIP:vport. Both decrement the TTL: the director routes. Changing
//! an address changes the IPv4 header checksum and the L4 checksum (whose
//! pseudo-header covers the addresses); changing a port changes the L4
//! checksum only. A UDP checksum of 0 means "none" (RFC 768) and stays 0.

use crate::wire::{checksum, Ipv4Packet, PROTO_TCP, PROTO_UDP};

/// Byte offset of the checksum inside a TCP header (RFC 9293 §3.1).
const TCP_CHECKSUM: usize = 16;
/// Byte offset of the checksum inside a UDP header (RFC 768).
const UDP_CHECKSUM: usize = 6;

/// Which address/port pair of the packet is rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Src,
    Dst,
}

fn rewrite(ip: &mut [u8], side: Side, new_addr: u32, new_port: u16) {
    let (hl, proto, old_addr) = {
        let p = Ipv4Packet::new_unchecked(&*ip);
        let a = match side {
            Side::Src => p.src_addr(),
            Side::Dst => p.dst_addr(),
        };
        (p.header_len(), p.protocol(), a)
    };
    {
        let mut p = Ipv4Packet::new_unchecked(&mut *ip);
        let c = checksum::update_u32(p.checksum(), old_addr, new_addr);
        match side {
            Side::Src => p.set_src_addr(new_addr),
            Side::Dst => p.set_dst_addr(new_addr),
        }
        p.set_checksum(c);
    }
    let csum_off = match proto {
        PROTO_TCP => TCP_CHECKSUM,
        PROTO_UDP => UDP_CHECKSUM,
        _ => return,
    };
    let port_off = match side {
        Side::Src => 0,
        Side::Dst => 2,
    };
    let Some(l4) = ip.get_mut(hl..) else { return };
    if l4.len() < csum_off + 2 {
        return;
    }
    let old_port = u16::from_be_bytes([l4[port_off], l4[port_off + 1]]);
    l4[port_off..port_off + 2].copy_from_slice(&new_port.to_be_bytes());
    let old_c = u16::from_be_bytes([l4[csum_off], l4[csum_off + 1]]);
    if proto == PROTO_UDP && old_c == 0 {
        return;
    }
    let mut c = checksum::update_u32(old_c, old_addr, new_addr);
    c = checksum::update_u16(c, old_port, new_port);
    if proto == PROTO_UDP && c == 0 {
        c = 0xffff;
    }
    l4[csum_off..csum_off + 2].copy_from_slice(&c.to_be_bytes());
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
