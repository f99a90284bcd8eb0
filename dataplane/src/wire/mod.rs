//! Wire formats: zero-copy views over packet bytes, and the Internet
//! checksum.
//!
//! Layer: the bottom of the dataplane. Every other dataplane module reads
//! and rewrites packets only through these views. Each view wraps any
//! `T: AsRef<[u8]>` (an mbuf's data, a slice of it, a test array) without
//! copying; `new_checked` validates lengths once, after which no getter
//! panics on any bytes, so the per-packet path can feed it untrusted input.
//! Setters need `T: AsMut<[u8]>` and write in place. Multi-byte fields are
//! big-endian on the wire and host order in the API; IPv4 addresses are
//! `u32` in host order (`10.0.0.1` is `0x0a00_0001`), MACs `[u8; 6]` in wire
//! order.
//!
//! Guarantees: no `unsafe`, no allocation, no locks, no logging, and no
//! panics in any getter once `check_len` has passed. Rewrites keep
//! checksums valid with RFC 1624 incremental updates (`rewrite_*`,
//! `adjust_checksum_for_addr`).
//!
//! Refuses: anything the views cannot represent safely (short buffers,
//! impossible lengths), reported as [`Error`]. Policy (fragments, options,
//! unknown EtherTypes, bad checksums) is left to the caller, which counts
//! each drop under its own reason.
//!
//! Layout follows smoltcp's `wire` module: one file per header, field
//! offsets in a private `mod field`, getters in the `AsRef` impl and setters
//! in the `AsMut` impl.
//!
//! Name clashes between headers are avoided with prefixes (`ARP_LEN`,
//! `TCP_MIN_HEADER_LEN`, `UDP_HEADER_LEN`, `ICMP_HEADER_LEN`); the two
//! `HEADER_LEN`s are `ethernet::HEADER_LEN` (the one glob-re-exported here
//! as [`HEADER_LEN`], also [`ETHERNET_HEADER_LEN`]) and `vlan::HEADER_LEN`
//! (re-exported as [`VLAN_HEADER_LEN`] only, so the glob stays
//! unambiguous).
#![forbid(unsafe_code)]

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod gue;
pub mod icmp;
pub mod icmp_quote;
pub mod ipv4;
pub mod tcp;
pub mod udp;
pub mod vlan;
pub mod vrrp;

pub use arp::*;
pub use ethernet::*;
pub use gue::*;
pub use icmp::*;
pub use ipv4::*;
pub use tcp::*;
pub use udp::*;
pub use vlan::VlanHeader;

/// Length of the Ethernet II header in bytes (14), see
/// [`ethernet::HEADER_LEN`].
pub use ethernet::HEADER_LEN as ETHERNET_HEADER_LEN;
/// Length of an 802.1Q tag's TCI + inner EtherType in bytes (4), see
/// [`vlan::HEADER_LEN`].
pub use vlan::HEADER_LEN as VLAN_HEADER_LEN;

/// Why a view refused a buffer.
///
/// Each variant maps to one drop counter in the worker (`DropReason`), so
/// they name what is wrong, not where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer ends before the fixed header, or before the header length
    /// the packet itself declares (IHL, TCP data offset).
    #[error("buffer too short for the header")]
    Truncated,
    /// The IP version nibble is not the one this view parses (4).
    #[error("wrong IP version")]
    BadVersion,
    /// A header length field is below the protocol minimum (IPv4 IHL < 5,
    /// TCP data offset < 5).
    #[error("header length field below the protocol minimum")]
    BadHeaderLen,
    /// A total-length field (IPv4 total length, UDP length) is shorter than
    /// the header or longer than the buffer.
    #[error("length field inconsistent with header or buffer")]
    BadTotalLen,
    /// Well-formed but outside what fulcrum handles (e.g. ARP for a
    /// hardware type other than Ethernet).
    #[error("unsupported protocol variant")]
    Unsupported,
}

/// Result of the wire views.
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
    use proptest::prelude::*;

    #[test]
    fn test_reexports() {
        assert_eq!(HEADER_LEN, 14);
        assert_eq!(ETHERNET_HEADER_LEN, 14);
        assert_eq!(VLAN_HEADER_LEN, 4);
        assert_eq!(ARP_LEN, 28);
        assert_eq!(MIN_HEADER_LEN, 20);
        assert_eq!(
            (ETHERTYPE_IPV4, ETHERTYPE_ARP, ETHERTYPE_VLAN),
            (0x0800, 0x0806, 0x8100)
        );
        assert_eq!((ETHERTYPE_QINQ, ETHERTYPE_IPV6), (0x88a8, 0x86dd));
        assert_eq!((PROTO_ICMP, PROTO_TCP, PROTO_UDP), (1, 6, 17));
        assert_eq!(
            (FLAG_FIN, FLAG_SYN, FLAG_RST, FLAG_PSH, FLAG_ACK, FLAG_URG),
            (1, 2, 4, 8, 16, 32)
        );
        assert_eq!((OP_REQUEST, OP_REPLY), (1, 2));
        assert_eq!(
            (
                TYPE_ECHO_REPLY,
                TYPE_DEST_UNREACHABLE,
                TYPE_ECHO_REQUEST,
                TYPE_TIME_EXCEEDED
            ),
            (0, 3, 8, 11)
        );
    }

    #[test]
    fn test_error_display() {
        assert_eq!(
            Error::Truncated.to_string(),
            "buffer too short for the header"
        );
        assert_eq!(
            Error::BadTotalLen.to_string(),
            "length field inconsistent with header or buffer"
        );
    }

    /// Walks a frame the way the worker does: Ethernet, up to two VLAN
    /// tags, then ARP or IPv4 and its L4 header. Calls every getter of each
    /// view that accepts its bytes. Returns how many layers were accepted.
    fn walk(frame: &[u8]) -> usize {
        let mut layers = 0;
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return layers;
        };
        layers += 1;
        let _ = (eth.dst_addr(), eth.src_addr());
        let mut ethertype = eth.ethertype();
        let mut rest = eth.payload();
        for _ in 0..2 {
            if ethertype != ETHERTYPE_VLAN && ethertype != ETHERTYPE_QINQ {
                break;
            }
            let Ok(tag) = VlanHeader::new_checked(rest) else {
                return layers;
            };
            layers += 1;
            let _ = (tag.pcp(), tag.dei(), tag.vid());
            ethertype = tag.ethertype();
            // `payload()` borrows the view; re-slice the outer buffer to keep
            // its lifetime (check_len guaranteed the 4 bytes).
            rest = &tag.into_inner()[VLAN_HEADER_LEN..];
        }
        match ethertype {
            ETHERTYPE_ARP => {
                if let Ok(arp) = ArpPacket::new_checked(rest) {
                    layers += 1;
                    let _ = (
                        arp.operation(),
                        arp.sender_hardware_addr(),
                        arp.target_protocol_addr(),
                    );
                    let _ = ArpRepr::parse(&arp);
                }
            }
            ETHERTYPE_IPV4 => {
                let Ok(ip) = Ipv4Packet::new_checked(rest) else {
                    return layers;
                };
                layers += 1;
                let _ = (
                    ip.verify_checksum(),
                    ip.options(),
                    ip.is_fragment(),
                    ip.ttl(),
                );
                let (src, dst) = (ip.src_addr(), ip.dst_addr());
                let l4 = ip.payload();
                match ip.protocol() {
                    PROTO_TCP => {
                        if let Ok(tcp) = TcpPacket::new_checked(l4) {
                            layers += 1;
                            let _ = (tcp.src_port(), tcp.dst_port(), tcp.flags(), tcp.options());
                            let _ = (tcp.payload(), tcp.verify_checksum(src, dst));
                        }
                    }
                    PROTO_UDP => {
                        if let Ok(udp) = UdpPacket::new_checked(l4) {
                            layers += 1;
                            let _ = (udp.src_port(), udp.dst_port(), udp.payload());
                            let _ = udp.verify_checksum(src, dst);
                        }
                    }
                    PROTO_ICMP => {
                        if let Ok(icmp) = Icmpv4Packet::new_checked(l4) {
                            layers += 1;
                            let _ = (
                                icmp.msg_type(),
                                icmp.rest_of_header(),
                                icmp.verify_checksum(),
                            );
                            if let Ok(inner) = Ipv4Packet::new_checked(icmp.data()) {
                                let _ = (inner.src_addr(), inner.payload());
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        layers
    }

    /// A frame prefix that steers random bytes into deep layers.
    fn frame_strategy() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::sample::select(vec![ETHERTYPE_IPV4, ETHERTYPE_ARP, ETHERTYPE_VLAN, 0x1234]),
            prop::sample::select(vec![PROTO_TCP, PROTO_UDP, PROTO_ICMP, 99]),
            0u8..16,
            proptest::collection::vec(any::<u8>(), 0..120),
        )
            .prop_map(|(ethertype, proto, ihl, tail)| {
                let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
                frame.extend_from_slice(&ethertype.to_be_bytes());
                if ethertype == ETHERTYPE_VLAN {
                    frame.extend_from_slice(&[0x00, 0x0a, 0x08, 0x00]);
                }
                let ip_start = frame.len();
                frame.extend_from_slice(&tail);
                if frame.len() >= ip_start + 20 {
                    let total = (frame.len() - ip_start) as u16;
                    frame[ip_start] = 0x40 | ihl;
                    frame[ip_start + 2..ip_start + 4].copy_from_slice(&total.to_be_bytes());
                    frame[ip_start + 9] = proto;
                }
                frame
            })
    }

    #[test]
    fn test_walk_layers() {
        let frame = build_tcp(0x0a00_0001, 0x0a00_0002, 1234, 80, b"x");
        assert_eq!(walk(&frame), 3);
        assert_eq!(walk(&frame[..13]), 0);
        assert_eq!(walk(&frame[..20]), 1);
    }

    fn build_tcp(src: u32, dst: u32, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let builder =
            PacketBuilder::ethernet2([0x52, 0x54, 0, 0x12, 0x34, 0x56], [2, 0, 0, 0, 0, 1])
                .ipv4(src.to_be_bytes(), dst.to_be_bytes(), 64)
                .tcp(sport, dport, 0x0102_0304, 29200)
                .syn();
        let mut out = Vec::with_capacity(builder.size(payload.len()));
        builder.write(&mut out, payload).unwrap();
        out
    }

    fn build_udp(src: u32, dst: u32, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let builder =
            PacketBuilder::ethernet2([0x52, 0x54, 0, 0x12, 0x34, 0x56], [2, 0, 0, 0, 0, 1])
                .ipv4(src.to_be_bytes(), dst.to_be_bytes(), 64)
                .udp(sport, dport);
        let mut out = Vec::with_capacity(builder.size(payload.len()));
        builder.write(&mut out, payload).unwrap();
        out
    }

    /// NAT-style rewrite with incremental checksums only: addresses first
    /// (IP header checksum + L4 pseudo-header part), then ports.
    fn rewrite_in_place(
        frame: &mut [u8],
        new_src: u32,
        new_dst: u32,
        new_sport: u16,
        new_dport: u16,
    ) {
        let mut eth = EthernetFrame::new_checked(frame).unwrap();
        let mut ip = Ipv4Packet::new_checked(eth.payload_mut()).unwrap();
        let old_src = ip.rewrite_src_addr(new_src);
        let old_dst = ip.rewrite_dst_addr(new_dst);
        let proto = ip.protocol();
        match proto {
            PROTO_TCP => {
                let mut tcp = TcpPacket::new_checked(ip.payload_mut()).unwrap();
                tcp.adjust_checksum_for_addr(old_src, new_src);
                tcp.adjust_checksum_for_addr(old_dst, new_dst);
                tcp.rewrite_src_port(new_sport);
                tcp.rewrite_dst_port(new_dport);
            }
            PROTO_UDP => {
                let mut udp = UdpPacket::new_checked(ip.payload_mut()).unwrap();
                udp.adjust_checksum_for_addr(old_src, new_src);
                udp.adjust_checksum_for_addr(old_dst, new_dst);
                udp.rewrite_src_port(new_sport);
                udp.rewrite_dst_port(new_dport);
            }
            _ => unreachable!("test builds TCP and UDP only"),
        }
    }

    /// What an independent parser says: (stored IP csum, recomputed IP
    /// csum, stored L4 csum, recomputed L4 csum, src, dst, sport, dport).
    fn etherparse_view(frame: &[u8]) -> (u16, u16, u16, u16, [u8; 4], [u8; 4], u16, u16) {
        let sliced = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(NetSlice::Ipv4(ip)) = sliced.net else {
            panic!("not IPv4")
        };
        let hdr = ip.header();
        let (src, dst) = (hdr.source(), hdr.destination());
        let ip_stored = hdr.header_checksum();
        let ip_full = hdr.to_header().calc_header_checksum();
        match sliced.transport {
            Some(TransportSlice::Tcp(tcp)) => {
                let full = tcp.calc_checksum_ipv4(src, dst).unwrap();
                (
                    ip_stored,
                    ip_full,
                    tcp.checksum(),
                    full,
                    src,
                    dst,
                    tcp.source_port(),
                    tcp.destination_port(),
                )
            }
            Some(TransportSlice::Udp(udp)) => {
                let full = udp
                    .to_header()
                    .calc_checksum_ipv4_raw(src, dst, udp.payload())
                    .unwrap();
                (
                    ip_stored,
                    ip_full,
                    udp.checksum(),
                    full,
                    src,
                    dst,
                    udp.source_port(),
                    udp.destination_port(),
                )
            }
            _ => panic!("not TCP/UDP"),
        }
    }

    #[test]
    fn test_incremental_rewrite_tcp_etherparse() {
        let mut frame = build_tcp(
            0xc0a8_010a,
            0x0a00_0064,
            54321,
            80,
            b"GET / HTTP/1.0\r\n\r\n",
        );
        rewrite_in_place(&mut frame, 0x0a00_0001, 0xac10_0005, 40000, 8080);
        let (ip_stored, ip_full, l4_stored, l4_full, src, dst, sport, dport) =
            etherparse_view(&frame);
        assert_eq!(ip_stored, ip_full);
        assert_eq!(l4_stored, l4_full);
        assert_eq!(
            (src, dst, sport, dport),
            ([10, 0, 0, 1], [172, 16, 0, 5], 40000, 8080)
        );
    }

    proptest! {
        #[test]
        fn prop_nested_walk_never_panics(frame in frame_strategy()) {
            let layers = walk(&frame);
            prop_assert!(layers <= 4);
            prop_assert!(layers >= 1, "a 14-byte prefix is always a valid Ethernet header");
        }

        #[test]
        fn prop_random_bytes_walk_never_panics(frame in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = walk(&frame);
        }

        #[test]
        fn prop_incremental_tcp_matches_etherparse(
            src in any::<u32>(), dst in any::<u32>(), sport in any::<u16>(), dport in any::<u16>(),
            new_src in any::<u32>(), new_dst in any::<u32>(),
            new_sport in any::<u16>(), new_dport in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut frame = build_tcp(src, dst, sport, dport, &payload);
            let before = frame.clone();
            rewrite_in_place(&mut frame, new_src, new_dst, new_sport, new_dport);
            let (ip_stored, ip_full, l4_stored, l4_full, s, d, sp, dp) = etherparse_view(&frame);
            prop_assert_eq!(ip_stored, ip_full);
            prop_assert_eq!(l4_stored, l4_full);
            prop_assert_eq!((s, d, sp, dp), (new_src.to_be_bytes(), new_dst.to_be_bytes(), new_sport, new_dport));
            // Our own full recompute agrees bit for bit, and nothing outside
            // the rewritten fields moved.
            let mut recomputed = frame.clone();
            {
                let mut ip = Ipv4Packet::new_checked(&mut recomputed[14..]).unwrap();
                ip.fill_checksum();
                TcpPacket::new_checked(ip.payload_mut()).unwrap().fill_checksum(new_src, new_dst);
            }
            prop_assert_eq!(&recomputed, &frame);
            prop_assert_eq!(&frame[..14 + 10], &before[..14 + 10]);
            prop_assert_eq!(&frame[14 + 24..14 + 36], &before[14 + 24..14 + 36]);
            prop_assert_eq!(&frame[14 + 38..], &before[14 + 38..]);
        }

        #[test]
        fn prop_incremental_udp_matches_etherparse(
            src in any::<u32>(), dst in any::<u32>(), sport in any::<u16>(), dport in any::<u16>(),
            new_src in any::<u32>(), new_dst in any::<u32>(),
            new_sport in any::<u16>(), new_dport in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut frame = build_udp(src, dst, sport, dport, &payload);
            rewrite_in_place(&mut frame, new_src, new_dst, new_sport, new_dport);
            let (ip_stored, ip_full, l4_stored, l4_full, s, d, sp, dp) = etherparse_view(&frame);
            prop_assert_eq!(ip_stored, ip_full);
            prop_assert_eq!(l4_stored, l4_full);
            prop_assert_ne!(l4_stored, 0);
            prop_assert_eq!((s, d, sp, dp), (new_src.to_be_bytes(), new_dst.to_be_bytes(), new_sport, new_dport));
            let mut recomputed = frame.clone();
            {
                let mut ip = Ipv4Packet::new_checked(&mut recomputed[14..]).unwrap();
                ip.fill_checksum();
                UdpPacket::new_checked(ip.payload_mut()).unwrap().fill_checksum(new_src, new_dst);
            }
            prop_assert_eq!(&recomputed, &frame);
        }

        #[test]
        fn prop_incremental_ttl_matches_etherparse(ttl in any::<u8>(), dst in any::<u32>()) {
            let mut frame = build_udp(0x0a00_0002, dst, 1000, 53, b"q");
            let mut ip = Ipv4Packet::new_checked(&mut frame[14..]).unwrap();
            ip.rewrite_ttl(ttl);
            let (ip_stored, ip_full, ..) = etherparse_view(&frame);
            prop_assert_eq!(ip_stored, ip_full);
            prop_assert_eq!(frame[14 + 8], ttl);
        }
    }
}
