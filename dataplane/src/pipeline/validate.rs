//! Stage `validate`: what a well-formed packet may carry.
//!
//! Layer: dataplane pipeline, after `parse`. `parse` proved the headers are
//! there; this stage decides whether the director should touch the packet
//! at all, as a router does before forwarding (RFC 1812 §5.3.7, RFC 1122
//! §3.2.1.3, and what Linux's `ip_route_input` calls martians). Each
//! refusal is its own [`DropReason`].
//!
//! Split in two by cost:
//! - [`ipv4`] runs on every IPv4 packet: header checksum, IPv4 options,
//!   malformed fragments (`frag::check`), unicast IPv4 in an L2 broadcast, the fixed martian source
//!   ranges, TCP/UDP port 0, and the L4 checksum on ports configured with
//!   `verify_checksums: All`. All of it reads only the packet and the
//!   port's configuration.
//! - [`source`] and [`l4_checksum`] run where state would be created or the
//!   director itself answers: on a connection-table miss and on traffic to
//!   a director address. They need the snapshot (the director's own
//!   addresses, connected subnets' broadcast addresses) or the whole
//!   payload. An established connection needs neither again: its source was
//!   checked when it was created, and a packet with a different source
//!   cannot match its keys.
//!
//! Refuses nothing silently: every `Err` names its reason; the caller
//! counts it.

use crate::snapshot::{ChecksumCheck, PortConf, Snapshot};
use crate::stats::DropReason;
use crate::wire::{check_options, checksum, Ipv4Packet, OptionsCheck, TcpPacket, UdpPacket};

use super::parse::{Parsed, L4};

/// Whether `ip` (host order) may never be a source on the wire, whatever
/// the configuration: 0.0.0.0/8 ("this network", RFC 1122 §3.2.1.3 (a)),
/// 127.0.0.0/8 (loopback, (g)), 224.0.0.0/4 (multicast, RFC 1112 §4),
/// 240.0.0.0/4 (reserved, RFC 1112 §4, with the limited broadcast
/// 255.255.255.255 of RFC 919).
#[inline]
pub fn is_martian_source(ip: u32) -> bool {
    let a = ip >> 24;
    a == 0 || a == 127 || a >= 224
}

/// Whether `ip` (host order) is a multicast or the limited broadcast
/// address: destinations an L2 broadcast/multicast frame may carry.
#[inline]
fn is_group_destination(ip: u32) -> bool {
    ip >> 28 == 0xe || ip == u32::MAX
}

/// Checks every IPv4 packet from `port` needs, in this order.
///
/// # Errors
/// `ipv4_bad_checksum`, `ipv4_bad_options`, `ipv4_source_route`,
/// `frag_bad`, `ipv4_l2_broadcast`, `ipv4_martian_source`,
/// `l4_port_zero`, then with `verify_checksums: All` what [`l4_checksum`]
/// returns.
#[inline]
pub fn ipv4(frame: &[u8], p: &Parsed, port: &PortConf) -> Result<(), DropReason> {
    let ip = Ipv4Packet::new_unchecked(
        frame
            .get(usize::from(p.l3)..usize::from(p.ip_end))
            .unwrap_or(&[]),
    );
    if !ip.verify_checksum() {
        return Err(DropReason::Ipv4BadChecksum);
    }
    if p.has_options {
        match check_options(ip.options()) {
            OptionsCheck::Ok => {}
            OptionsCheck::Malformed => return Err(DropReason::Ipv4BadOptions),
            OptionsCheck::SourceRoute => return Err(DropReason::Ipv4SourceRoute),
        }
    }
    if p.fragment {
        // Fragments of balanced flows are forwarded without reassembly by
        // the `frag` stage; malformed ones stop here.
        super::frag::check(&ip, p)?;
    }
    let (src, dst) = (p.key.src_ip, p.key.dst_ip);
    if p.l2_multicast && !is_group_destination(dst) && !port.is_subnet_broadcast(dst) {
        return Err(DropReason::Ipv4L2Broadcast);
    }
    if is_martian_source(src) {
        return Err(DropReason::Ipv4MartianSource);
    }
    if p.has_ports() {
        if p.key.src_port == 0 || p.key.dst_port == 0 {
            return Err(DropReason::L4PortZero);
        }
        if port.verify_checksums == ChecksumCheck::All {
            l4_checksum(frame, p)?;
        }
    }
    Ok(())
}

/// Checks a source address against the configuration, for a packet that
/// arrived on port `in_port`: none of the director's own addresses (VIPs,
/// DIPs) and no connected subnet's broadcast address may send to it (RFC
/// 1812 §5.3.7), and the source must be reachable back through the port
/// it came in on: strict reverse-path forwarding (RFC 3704 §2.2; Linux
/// `rp_filter = 1`). The last rule is what refuses a real server's address
/// arriving from the client side: a connection from it would make the real
/// servers talk to each other through the director.
///
/// # Errors
/// `ipv4_martian_source`, `ipv4_rpf_fail`.
#[inline]
pub fn source(p: &Parsed, snap: &Snapshot, in_port: u8) -> Result<(), DropReason> {
    let src = p.key.src_ip;
    if snap.local.contains_key(&src) || snap.ports.iter().any(|port| port.is_subnet_broadcast(src))
    {
        return Err(DropReason::Ipv4MartianSource);
    }
    match snap.route(src) {
        Some((port, _)) if port == in_port => Ok(()),
        _ => Err(DropReason::Ipv4RpfFail),
    }
}

/// Verifies the TCP or UDP checksum of `p` over the pseudo header and the
/// whole segment (RFC 9293 §3.1, RFC 768; a UDP checksum of 0 means none
/// was sent). Anything other than TCP or UDP passes, and so does a first
/// fragment: its checksum covers the whole datagram.
///
/// A checksum field that holds just the folded pseudo-header sum (or its
/// complement) is what a sender leaves when it offloads the checksum to a
/// NIC that never computed it, as a veth with `tx` offload on does for
/// af_packet/af_xdp readers: that is `l4_checksum_partial`, so the operator
/// is told the remedy (`ethtool -K <peer> tx off`) instead of seeing only
/// bad checksums.
///
/// # Errors
/// `tcp_bad_checksum`, `udp_bad_checksum`, `l4_checksum_partial`.
pub fn l4_checksum(frame: &[u8], p: &Parsed) -> Result<(), DropReason> {
    if p.fragment {
        // The checksum covers the whole datagram, which no fragment holds.
        return Ok(());
    }
    let seg = frame
        .get(usize::from(p.l4)..usize::from(p.ip_end))
        .unwrap_or(&[]);
    let (src, dst) = (p.key.src_ip, p.key.dst_ip);
    let (ok, field, bad) = match p.kind {
        L4::Tcp => {
            let t = TcpPacket::new_unchecked(seg);
            (
                t.verify_checksum(src, dst),
                t.checksum(),
                DropReason::TcpBadChecksum,
            )
        }
        L4::Udp => {
            let u = UdpPacket::new_unchecked(seg);
            (
                u.verify_checksum(src, dst),
                u.checksum(),
                DropReason::UdpBadChecksum,
            )
        }
        _ => return Ok(()),
    };
    if ok {
        return Ok(());
    }
    let pseudo = checksum::fold(checksum::pseudo_header_v4(
        src,
        dst,
        p.key.proto,
        seg.len() as u16,
    ));
    if field == pseudo || field == !pseudo {
        return Err(DropReason::L4ChecksumPartial);
    }
    Err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::ConnTable;
    use crate::pipeline::parse::parse;
    use crate::snapshot::Prefix;
    use etherparse::PacketBuilder;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const PEER: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn port() -> PortConf {
        PortConf {
            mac: MAC,
            addrs: vec![(
                0x0a00_0001,
                Prefix {
                    addr: 0x0a00_0000,
                    len: 24,
                },
            )],
            ..PortConf::default()
        }
    }

    fn syn(src: [u8; 4], sport: u16) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(PEER, MAC)
            .ipv4(src, [10, 0, 0, 100], 64)
            .tcp(sport, 80, 1, 100)
            .syn()
            .write(&mut f, b"abc")
            .unwrap();
        f
    }

    fn check(f: &[u8], pc: &PortConf) -> Result<(), DropReason> {
        let t = ConnTable::new(4);
        let p = parse(f, pc, &t)?;
        ipv4(f, &p, pc)?;
        l4_checksum(f, &p)
    }

    #[test]
    fn test_martian_sources() {
        for src in [
            [0, 1, 2, 3],
            [127, 0, 0, 1],
            [224, 0, 0, 5],
            [240, 1, 1, 1],
            [255, 255, 255, 255],
        ] {
            assert_eq!(
                check(&syn(src, 1000), &port()),
                Err(DropReason::Ipv4MartianSource),
                "{src:?}"
            );
        }
        assert_eq!(check(&syn([10, 0, 0, 2], 1000), &port()), Ok(()));
        assert_eq!(
            check(&syn([10, 0, 0, 2], 0), &port()),
            Err(DropReason::L4PortZero)
        );
        assert!(port().is_subnet_broadcast(0x0a00_00ff));
        assert!(!port().is_subnet_broadcast(0x0a00_00fe));
    }

    #[test]
    fn test_bad_and_partial_checksum() {
        let f = syn([10, 0, 0, 2], 1000);
        let mut g = f.clone();
        let last = g.len() - 1;
        g[last] ^= 0x55;
        assert_eq!(check(&g, &port()), Err(DropReason::TcpBadChecksum));
        // What an offloading sender leaves: the folded pseudo-header sum.
        let mut g = f.clone();
        let pseudo = checksum::fold(checksum::pseudo_header_v4(0x0a00_0002, 0x0a00_0064, 6, 23));
        g[14 + 20 + 16..14 + 20 + 18].copy_from_slice(&pseudo.to_be_bytes());
        assert_eq!(check(&g, &port()), Err(DropReason::L4ChecksumPartial));
    }

    #[test]
    fn test_unicast_in_l2_broadcast() {
        let mut f = syn([10, 0, 0, 2], 1000);
        f[..6].fill(0xff);
        assert_eq!(check(&f, &port()), Err(DropReason::Ipv4L2Broadcast));
    }
}
