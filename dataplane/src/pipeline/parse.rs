//! Stage `parse`: one pass over a frame's headers into a [`Parsed`] record.
//!
//! Layer: dataplane pipeline, first stage. Reads the Ethernet header, an
//! optional 802.1Q/802.1ad tag, and either ARP or IPv4 with its TCP/UDP/ICMP
//! header, checking every length with the wire views' `check_len` before a
//! field is read. What it finds (offsets, the 5-tuple, TCP flags, TTL, the
//! flow hash) is all the later stages need: prefetch, validation, the owner
//! check and the connection lookup read the record, never the frame's
//! headers again.
//!
//! Guarantees: never panics on any byte pattern; never writes the frame.
//! Refuses, each with one [`DropReason`]: truncated frames, frames to
//! another MAC, frames from a multicast/broadcast/zero MAC, tagged frames
//! for a VLAN the port does not carry, EtherTypes other than ARP and IPv4,
//! IPv4 headers that are cut short or whose total length does not fit, and
//! TCP/UDP headers cut short. Policy on what a well-formed packet may carry
//! (checksums, options, fragments, martians) is the `validate` stage's.

use crate::conn::{ConnTable, FlowKey};
use crate::snapshot::{PortConf, Proto};
use crate::stats::DropReason;
use crate::wire::{
    self, EthernetFrame, Ipv4Packet, TcpPacket, UdpPacket, VlanHeader, ETHERTYPE_ARP,
    ETHERTYPE_IPV4, ETHERTYPE_QINQ, ETHERTYPE_VLAN, PROTO_ICMP, PROTO_TCP, PROTO_UDP,
};

/// The address family of a parsed L3 header. Only IPv4 today; IPv6 adds a
/// variant and a `FlowKey6` tuple next to [`Parsed::key`], so the stages
/// that match on the family gain an arm instead of being rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// IPv4 (RFC 791).
    V4,
}

/// What the frame carries, as far as `parse` read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    /// An ARP packet (RFC 826) at [`Parsed::l3`]; nothing else is set.
    Arp,
    /// TCP with a complete header at [`Parsed::l4`].
    Tcp,
    /// UDP with a complete header at [`Parsed::l4`].
    Udp,
    /// ICMP at [`Parsed::l4`] (its length is checked by the `local` stage).
    Icmp,
    /// Another IP protocol, or a non-first fragment (which has no L4
    /// header: ports and flags are 0). A first fragment of TCP/UDP is
    /// `Tcp`/`Udp` with its ports read, and `fragment` set.
    Other,
}

/// One frame's headers as the pipeline needs them. 48 bytes, `Copy`, kept
/// for a whole burst so every stage after `parse` works from it.
///
/// Offsets are bytes from the start of the frame; addresses and ports in
/// [`Parsed::key`] are host order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The 5-tuple as it stands in the packet, source → destination. Ports
    /// are 0 unless [`Parsed::l4`] is TCP or UDP; all zero for ARP.
    pub key: FlowKey,
    /// Connection-table hash of `key` ([`ConnTable::hash`]); 0 unless TCP
    /// or UDP. Used for prefetching and for the lookup itself.
    pub hash: u64,
    /// Offset of the L3 header (14, or 18 after one VLAN tag).
    pub l3: u16,
    /// Offset of the L4 header (`l3` + IPv4 header length); `l3` for ARP.
    pub l4: u16,
    /// End of the IPv4 datagram (`l3` + total length); Ethernet padding
    /// after it is not part of the packet. `l3` for ARP.
    pub ip_end: u16,
    /// What follows the L3 header.
    pub kind: L4,
    /// Address family of the L3 header (meaningless for ARP).
    pub family: Family,
    /// IPv4 TTL.
    pub ttl: u8,
    /// TCP flags byte (RFC 9293 §3.1); 0 for anything else.
    pub tcp_flags: u8,
    /// The Ethernet destination was broadcast or multicast (I/G bit set).
    pub l2_multicast: bool,
    /// MF set or a non-zero fragment offset.
    pub fragment: bool,
    /// The IPv4 header is longer than 20 bytes: it carries options.
    pub has_options: bool,
}

impl Parsed {
    /// A record that reads as nothing: ARP-kind with zero offsets. Used to
    /// fill the per-burst array before `parse` writes it.
    pub const EMPTY: Parsed = Parsed {
        key: FlowKey {
            src_ip: 0,
            dst_ip: 0,
            src_port: 0,
            dst_port: 0,
            proto: 0,
        },
        hash: 0,
        l3: 0,
        l4: 0,
        ip_end: 0,
        kind: L4::Other,
        family: Family::V4,
        ttl: 0,
        tcp_flags: 0,
        l2_multicast: false,
        fragment: false,
        has_options: false,
    };

    /// Whether the packet is TCP or UDP with its ports read: the only
    /// packets that can belong to a connection.
    #[inline]
    pub fn has_ports(&self) -> bool {
        matches!(self.kind, L4::Tcp | L4::Udp)
    }

    /// The balanced protocol of a TCP or UDP packet (what virtual services
    /// are keyed by); `None` for anything else.
    #[inline]
    pub fn proto(&self) -> Option<Proto> {
        match self.kind {
            L4::Tcp => Some(Proto::Tcp),
            L4::Udp => Some(Proto::Udp),
            _ => None,
        }
    }

    /// Total IPv4 length in bytes (`ip_end - l3`).
    #[inline]
    pub fn ip_len(&self) -> usize {
        usize::from(self.ip_end - self.l3)
    }
}

/// Whether a MAC (wire order) has the I/G bit set: multicast or broadcast.
#[inline]
pub fn is_multicast_mac(mac: &[u8; 6]) -> bool {
    mac[0] & 1 != 0
}

/// Parses `frame` (a whole Ethernet frame without FCS) as it arrived on a
/// port configured as `port`; `conns` supplies the flow hash.
///
/// # Errors
/// One [`DropReason`] per refusal, checked in this order: `eth_truncated`,
/// `eth_not_for_us` (destination neither the port's MAC, broadcast nor
/// VRRP's group MAC 01:00:5e:00:00:12), `eth_src_invalid`, `vlan_not_configured`,
/// `eth_unsupported`, `ipv4_bad_length`, `ipv4_malformed`, and for an
/// unfragmented packet `tcp_malformed` / `udp_malformed`, for a first
/// fragment `frag_bad` (too short for its TCP/UDP header; its ports are
/// read, its UDP length field is not checked: it counts the datagram).
/// Broadcast frames pass, with [`Parsed::l2_multicast`] set, so that ARP
/// works and the `validate` stage can name unicast IPv4 inside them.
#[inline]
pub fn parse(frame: &[u8], port: &PortConf, conns: &ConnTable) -> Result<Parsed, DropReason> {
    let mut p = Parsed::EMPTY;
    parse_into(frame, port, conns, &mut p)?;
    Ok(p)
}

/// [`parse`] writing into `p` in place, field by field: the burst loop
/// keeps one `Parsed` per frame in an array, and building the record
/// elsewhere then copying it in costs a store-forwarding stall per frame
/// (measured: about 15% of the whole per-packet time). On `Err`, `p` holds
/// whatever was read so far and must not be used.
///
/// # Errors
/// As [`parse`].
#[inline]
pub fn parse_into(
    frame: &[u8],
    port: &PortConf,
    conns: &ConnTable,
    p: &mut Parsed,
) -> Result<(), DropReason> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| DropReason::EthTruncated)?;
    let dst = eth.dst_addr();
    let l2_multicast = is_multicast_mac(&dst);
    if dst != port.mac && dst != wire::BROADCAST && dst != wire::vrrp::MCAST_MAC {
        return Err(DropReason::EthNotForUs);
    }
    let src = eth.src_addr();
    if is_multicast_mac(&src) || src == [0; 6] {
        return Err(DropReason::EthSrcInvalid);
    }
    let mut ethertype = eth.ethertype();
    let mut l3 = wire::ethernet::HEADER_LEN;
    if ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ {
        let tag = VlanHeader::new_checked(eth.payload()).map_err(|_| DropReason::EthTruncated)?;
        // One tag at most, and only a configured VLAN; 802.1ad outer tags
        // are never configured.
        if ethertype == ETHERTYPE_QINQ || !port.vlans.contains(&tag.vid()) {
            return Err(DropReason::VlanNotConfigured);
        }
        ethertype = tag.ethertype();
        l3 += wire::vlan::HEADER_LEN;
    }
    p.l3 = l3 as u16;
    p.l4 = l3 as u16;
    p.ip_end = l3 as u16;
    p.kind = L4::Arp;
    p.l2_multicast = l2_multicast;
    match ethertype {
        ETHERTYPE_ARP => {
            p.key = Parsed::EMPTY.key;
            p.hash = 0;
            p.tcp_flags = 0;
            Ok(())
        }
        ETHERTYPE_IPV4 => {
            ipv4(frame, p)?;
            p.hash = if p.has_ports() { conns.hash(&p.key) } else { 0 };
            Ok(())
        }
        _ => Err(DropReason::EthUnsupported),
    }
}

/// Fills the IPv4 and L4 part of `p` from the header at `p.l3`.
#[inline]
fn ipv4(frame: &[u8], p: &mut Parsed) -> Result<(), DropReason> {
    let l3 = usize::from(p.l3);
    let buf = frame.get(l3..).ok_or(DropReason::Ipv4Malformed)?;
    let ip = match Ipv4Packet::new_checked(buf) {
        Ok(ip) => ip,
        Err(wire::Error::BadTotalLen) => return Err(DropReason::Ipv4BadLength),
        Err(_) => return Err(DropReason::Ipv4Malformed),
    };
    let hl = ip.header_len();
    let total = usize::from(ip.total_len());
    // check_len guarantees hl <= total <= buf.len(), and a frame fits in
    // u16 offsets because total_len is a u16 and l3 <= 18.
    p.l4 = (l3 + hl) as u16;
    p.ip_end = (l3 + total).min(usize::from(u16::MAX)) as u16;
    p.ttl = ip.ttl();
    p.fragment = ip.more_frags() || ip.frag_offset() != 0;
    p.has_options = hl > wire::ipv4::MIN_HEADER_LEN;
    p.key.src_ip = ip.src_addr();
    p.key.dst_ip = ip.dst_addr();
    p.key.proto = ip.protocol();
    p.kind = L4::Other;
    p.key.src_port = 0;
    p.key.dst_port = 0;
    p.tcp_flags = 0;
    if p.fragment && ip.frag_offset() != 0 {
        // A later fragment: no L4 header to read.
        return Ok(());
    }
    let l4 = frame
        .get(usize::from(p.l4)..usize::from(p.ip_end))
        .ok_or(DropReason::Ipv4BadLength)?;
    // A first fragment holds the L4 header but not the whole segment: a
    // header it cannot hold is `frag_bad` (RFC 1858 §3.1), and UDP's length
    // field counts the whole datagram, not the fragment.
    let (tcp_bad, udp_bad) = match p.fragment {
        true => (DropReason::FragBad, DropReason::FragBad),
        false => (DropReason::TcpMalformed, DropReason::UdpMalformed),
    };
    match p.key.proto {
        PROTO_TCP => {
            let t = TcpPacket::new_checked(l4).map_err(|_| tcp_bad)?;
            p.key.src_port = t.src_port();
            p.key.dst_port = t.dst_port();
            p.tcp_flags = t.flags();
            p.kind = L4::Tcp;
        }
        PROTO_UDP if p.fragment => {
            if l4.len() < wire::UDP_HEADER_LEN {
                return Err(udp_bad);
            }
            let u = UdpPacket::new_unchecked(l4);
            p.key.src_port = u.src_port();
            p.key.dst_port = u.dst_port();
            p.kind = L4::Udp;
        }
        PROTO_UDP => {
            let u = UdpPacket::new_checked(l4).map_err(|_| udp_bad)?;
            p.key.src_port = u.src_port();
            p.key.dst_port = u.dst_port();
            p.kind = L4::Udp;
        }
        PROTO_ICMP => p.kind = L4::Icmp,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const PEER: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn port() -> PortConf {
        PortConf {
            mac: MAC,
            ..PortConf::default()
        }
    }

    fn syn() -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(PEER, MAC)
            .ipv4([10, 0, 0, 2], [10, 0, 0, 100], 64)
            .tcp(40000, 80, 1, 100)
            .syn()
            .write(&mut f, b"abc")
            .unwrap();
        f
    }

    #[test]
    fn test_parse_tcp() {
        let t = ConnTable::new(16);
        let f = syn();
        let p = parse(&f, &port(), &t).unwrap();
        assert_eq!(p.kind, L4::Tcp);
        assert_eq!((p.l3, p.l4, p.ip_end), (14, 34, 14 + 20 + 20 + 3));
        assert_eq!(p.key.src_ip, 0x0a00_0002);
        assert_eq!(p.key.dst_ip, 0x0a00_0064);
        assert_eq!(
            (p.key.src_port, p.key.dst_port, p.key.proto),
            (40000, 80, 6)
        );
        assert_eq!(p.tcp_flags, wire::tcp::FLAG_SYN);
        assert_eq!(p.ttl, 64);
        assert_eq!(p.hash, t.hash(&p.key));
        assert!(!p.fragment && !p.has_options && !p.l2_multicast);
    }

    #[test]
    fn test_parse_refusals() {
        let t = ConnTable::new(16);
        let f = syn();
        assert_eq!(parse(&f[..10], &port(), &t), Err(DropReason::EthTruncated));
        let mut g = f.clone();
        g[0] = 4;
        assert_eq!(parse(&g, &port(), &t), Err(DropReason::EthNotForUs));
        let mut g = f.clone();
        g[6] |= 1;
        assert_eq!(parse(&g, &port(), &t), Err(DropReason::EthSrcInvalid));
        let mut g = f.clone();
        g[6..12].fill(0);
        assert_eq!(parse(&g, &port(), &t), Err(DropReason::EthSrcInvalid));
        let mut g = f.clone();
        g[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert_eq!(parse(&g, &port(), &t), Err(DropReason::EthUnsupported));
        // TCP header cut: total length says 20 + 10.
        let mut g = f.clone();
        g[16..18].copy_from_slice(&30u16.to_be_bytes());
        assert_eq!(parse(&g, &port(), &t), Err(DropReason::TcpMalformed));
        let mut g = f.clone();
        g[16..18].copy_from_slice(&2000u16.to_be_bytes());
        assert_eq!(parse(&g, &port(), &t), Err(DropReason::Ipv4BadLength));
    }

    #[test]
    fn test_parse_vlan_only_when_configured() {
        let t = ConnTable::new(16);
        let f = syn();
        let mut g = f[..12].to_vec();
        g.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
        g.extend_from_slice(&f[12..]);
        assert_eq!(parse(&g, &port(), &t), Err(DropReason::VlanNotConfigured));
        let mut pc = port();
        pc.vlans = vec![10];
        let p = parse(&g, &pc, &t).unwrap();
        assert_eq!((p.l3, p.kind), (18, L4::Tcp));
        g[12] = 0x88;
        g[13] = 0xa8;
        assert_eq!(parse(&g, &pc, &t), Err(DropReason::VlanNotConfigured));
    }
}
