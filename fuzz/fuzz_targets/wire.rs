//! Fuzz the dataplane wire views with arbitrary bytes.
//!
//! Three passes over each input:
//! 1. every view's `new_checked` on the raw bytes, then every getter of a
//!    view that accepted them (the contract: after `check_len`, no getter
//!    panics), with the length invariants each view promises;
//! 2. the worker's nesting: Ethernet → up to two VLAN tags → ARP or IPv4 →
//!    TCP / UDP / ICMP → the IPv4 header quoted inside an ICMP error;
//! 3. in-place rewrites on a copy: if a header's checksum verified before an
//!    incremental `rewrite_*` / `adjust_checksum_for_addr`, it must still
//!    verify after (RFC 1624 keeps the ones'-complement sum).
//!
//! Any panic or failed assertion is a defect in `dataplane::wire`.
#![no_main]

use dataplane::wire::icmp_quote::{IcmpQuote, QuoteSide};
use dataplane::wire::{
    checksum, ArpPacket, ArpRepr, EthernetFrame, GuePacket, Icmpv4Packet, Ipv4Packet, TcpPacket,
    UdpPacket, VlanHeader, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_QINQ, ETHERTYPE_VLAN,
    GUE_HEADER_LEN, PROTO_ICMP, PROTO_TCP, PROTO_UDP,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    each_view_alone(data);
    nested(data);
    rewrites(data);
});

/// Reads a big-endian u32 from `data` at `at`, or 0 past the end, so the
/// harness itself never panics on short inputs.
fn u32_at(data: &[u8], at: usize) -> u32 {
    match data.get(at..at + 4) {
        Some(b) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        None => 0,
    }
}

fn each_view_alone(data: &[u8]) {
    let s = checksum::sum(data);
    let _ = checksum::checksum(data);
    let folded = checksum::fold(s);
    assert!(folded != 0 || data.iter().all(|&b| b == 0));
    let c = checksum::update_u32(folded, u32_at(data, 0), u32_at(data, 4));
    let _ = checksum::update_u16(c, folded, !folded);
    let _ = checksum::pseudo_header_v4(u32_at(data, 0), u32_at(data, 4), 6, data.len() as u16);

    if let Ok(eth) = EthernetFrame::new_checked(data) {
        let _ = (eth.dst_addr(), eth.src_addr(), eth.ethertype());
        assert_eq!(
            eth.payload().len(),
            data.len() - dataplane::wire::ethernet::HEADER_LEN
        );
    }
    if let Ok(tag) = VlanHeader::new_checked(data) {
        let _ = (tag.dei(), tag.ethertype());
        assert!(tag.pcp() <= 7 && tag.vid() <= 0x0fff);
        assert_eq!(
            tag.payload().len(),
            data.len() - dataplane::wire::vlan::HEADER_LEN
        );
    }
    if let Ok(arp) = ArpPacket::new_checked(data) {
        arp_getters(&arp);
    }
    if let Ok(ip) = Ipv4Packet::new_checked(data) {
        ipv4_getters(&ip);
    }
    if let Ok(tcp) = TcpPacket::new_checked(data) {
        tcp_getters(&tcp, u32_at(data, 0), u32_at(data, 4));
    }
    if let Ok(udp) = UdpPacket::new_checked(data) {
        udp_getters(&udp, u32_at(data, 0), u32_at(data, 4));
    }
    if let Ok(icmp) = Icmpv4Packet::new_checked(data) {
        icmp_getters(&icmp);
    }
    if let Ok(gue) = GuePacket::new_checked(data) {
        let _ = (gue.version(), gue.control(), gue.proto_ctype(), gue.flags());
        assert!(gue.header_len() >= GUE_HEADER_LEN && gue.header_len() <= data.len());
    }
    icmp_quote(data);
}

/// The ICMP error view (`icmp_quote`): every getter of an accepted
/// message, then both inner rewrites and the TCP sequence rewrite on a
/// copy, which must keep a verifying ICMP checksum verifying (RFC 1624).
fn icmp_quote(data: &[u8]) {
    let mut copy = data.to_vec();
    let Ok(mut q) = IcmpQuote::new_checked(&mut copy[..]) else {
        return;
    };
    let _ = (q.msg_type(), q.msg_code(), q.checksum(), q.next_hop_mtu());
    let _ = (q.inner_protocol(), q.inner_src_addr(), q.inner_dst_addr());
    let _ = (
        q.inner_frag_offset(),
        q.inner_src_port(),
        q.inner_dst_port(),
    );
    let _ = (q.inner_tcp_seq(), q.inner_l4_first_byte());
    assert!(q.inner_l4_offset() + 8 <= q.len());
    let ok = q.verify_checksum();
    q.rewrite_inner(QuoteSide::Src, u32_at(data, 0), 80);
    q.rewrite_inner(QuoteSide::Dst, u32_at(data, 4), 8080);
    q.set_inner_tcp_seq(u32_at(data, 8));
    if ok {
        assert!(
            q.verify_checksum(),
            "an inner rewrite keeps the ICMP checksum"
        );
    }
}

fn arp_getters(arp: &ArpPacket<&[u8]>) {
    let _ = (
        arp.hardware_type(),
        arp.protocol_type(),
        arp.hardware_len(),
        arp.protocol_len(),
    );
    let _ = (
        arp.operation(),
        arp.sender_hardware_addr(),
        arp.sender_protocol_addr(),
    );
    let _ = (arp.target_hardware_addr(), arp.target_protocol_addr());
    if let Ok(repr) = ArpRepr::parse(arp) {
        // parse ∘ emit = id on every accepted packet.
        let mut out = [0u8; dataplane::wire::ARP_LEN];
        repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
        let again =
            ArpRepr::parse(&ArpPacket::new_unchecked(&out[..])).expect("emitted ARP parses");
        assert_eq!(again, repr);
    }
}

fn ipv4_getters(ip: &Ipv4Packet<&[u8]>) {
    let _ = (
        ip.dscp_ecn(),
        ip.ident(),
        ip.dont_frag(),
        ip.more_frags(),
        ip.frag_offset(),
    );
    let _ = (ip.is_fragment(), ip.ttl(), ip.protocol(), ip.checksum());
    let _ = (ip.src_addr(), ip.dst_addr(), ip.verify_checksum());
    assert_eq!(ip.version(), 4);
    let header_len = ip.header_len();
    assert!((20..=60).contains(&header_len));
    assert_eq!(ip.options().len(), header_len - 20);
    assert_eq!(ip.payload().len(), usize::from(ip.total_len()) - header_len);
}

fn tcp_getters(tcp: &TcpPacket<&[u8]>, src: u32, dst: u32) {
    let _ = (
        tcp.src_port(),
        tcp.dst_port(),
        tcp.seq_number(),
        tcp.ack_number(),
    );
    let _ = (
        tcp.flags(),
        tcp.fin(),
        tcp.syn(),
        tcp.rst(),
        tcp.psh(),
        tcp.ack(),
        tcp.urg(),
    );
    let _ = (
        tcp.window_len(),
        tcp.checksum(),
        tcp.urgent_at(),
        tcp.verify_checksum(src, dst),
    );
    let header_len = tcp.header_len();
    assert!((20..=60).contains(&header_len));
    assert_eq!(tcp.options().len(), header_len - 20);
    assert_eq!(tcp.payload().len(), tcp.into_inner().len() - header_len);
}

fn udp_getters(udp: &UdpPacket<&[u8]>, src: u32, dst: u32) {
    let _ = (
        udp.src_port(),
        udp.dst_port(),
        udp.checksum(),
        udp.verify_checksum(src, dst),
    );
    assert_eq!(udp.payload().len(), usize::from(udp.len()) - 8);
}

fn icmp_getters(icmp: &Icmpv4Packet<&[u8]>) {
    let _ = (
        icmp.msg_type(),
        icmp.msg_code(),
        icmp.checksum(),
        icmp.echo_ident(),
    );
    let _ = (
        icmp.echo_seq_no(),
        icmp.rest_of_header(),
        icmp.verify_checksum(),
    );
    assert_eq!(icmp.data().len(), icmp.into_inner().len() - 8);
}

fn nested(frame: &[u8]) {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return;
    };
    let mut ethertype = eth.ethertype();
    let mut rest = eth.payload();
    for _ in 0..2 {
        if ethertype != ETHERTYPE_VLAN && ethertype != ETHERTYPE_QINQ {
            break;
        }
        let Ok(tag) = VlanHeader::new_checked(rest) else {
            return;
        };
        ethertype = tag.ethertype();
        rest = &tag.into_inner()[dataplane::wire::vlan::HEADER_LEN..];
    }
    match ethertype {
        ETHERTYPE_ARP => {
            if let Ok(arp) = ArpPacket::new_checked(rest) {
                arp_getters(&arp);
            }
        }
        ETHERTYPE_IPV4 => ipv4_and_l4(rest, true),
        _ => {}
    }
}

/// Parses IPv4 and its L4 header; `outer` is false for the datagram quoted
/// inside an ICMP error, whose L4 part is usually cut to 8 bytes.
fn ipv4_and_l4(bytes: &[u8], outer: bool) {
    let Ok(ip) = Ipv4Packet::new_checked(bytes) else {
        return;
    };
    ipv4_getters(&ip);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let l4 = ip.payload();
    match ip.protocol() {
        PROTO_TCP => {
            if let Ok(tcp) = TcpPacket::new_checked(l4) {
                tcp_getters(&tcp, src, dst);
            }
        }
        PROTO_UDP => {
            if let Ok(udp) = UdpPacket::new_checked(l4) {
                udp_getters(&udp, src, dst);
            }
        }
        PROTO_ICMP => {
            if let Ok(icmp) = Icmpv4Packet::new_checked(l4) {
                icmp_getters(&icmp);
                if outer {
                    ipv4_and_l4(icmp.data(), false);
                }
            }
        }
        _ => {}
    }
}

fn rewrites(data: &[u8]) {
    // Layout of the input for this pass: 12 bytes of new values (src, dst,
    // ports), one mode byte, then an IPv4 datagram.
    if data.len() < 13 {
        return;
    }
    let (knobs, packet) = data.split_at(13);
    let new_src = u32_at(knobs, 0);
    let new_dst = u32_at(knobs, 4);
    let new_sport = u16::from_be_bytes([knobs[8], knobs[9]]);
    let new_dport = u16::from_be_bytes([knobs[10], knobs[11]]);
    let ttl = knobs[8];
    // Odd mode byte: start from correct checksums, so that the "still valid
    // after the rewrite" assertions run on half the inputs instead of only
    // on the rare random input whose checksums happen to verify.
    let refill = knobs[12] & 1 == 1;

    let mut buf = packet.to_vec();
    let Ok(mut ip) = Ipv4Packet::new_checked(&mut buf[..]) else {
        return;
    };
    if refill {
        ip.fill_checksum();
        let (src, dst, proto) = (ip.src_addr(), ip.dst_addr(), ip.protocol());
        match proto {
            PROTO_TCP => {
                if let Ok(mut tcp) = TcpPacket::new_checked(ip.payload_mut()) {
                    tcp.fill_checksum(src, dst);
                }
            }
            PROTO_UDP => {
                if let Ok(mut udp) = UdpPacket::new_checked(ip.payload_mut()) {
                    udp.fill_checksum(src, dst);
                }
            }
            _ => {}
        }
        assert!(
            ip.verify_checksum(),
            "fill_checksum must produce a valid header"
        );
    }
    let ip_ok = ip.verify_checksum();
    let old_src = ip.rewrite_src_addr(new_src);
    let old_dst = ip.rewrite_dst_addr(new_dst);
    ip.rewrite_ttl(ttl);
    assert_eq!(
        (ip.src_addr(), ip.dst_addr(), ip.ttl()),
        (new_src, new_dst, ttl)
    );
    if ip_ok {
        assert!(
            ip.verify_checksum(),
            "incremental IPv4 header update broke a valid checksum"
        );
    }
    let proto = ip.protocol();
    let l4 = ip.payload_mut();
    match proto {
        PROTO_TCP => {
            let Ok(mut tcp) = TcpPacket::new_checked(l4) else {
                return;
            };
            let ok = tcp.verify_checksum(old_src, old_dst);
            tcp.adjust_checksum_for_addr(old_src, new_src);
            tcp.adjust_checksum_for_addr(old_dst, new_dst);
            tcp.rewrite_src_port(new_sport);
            tcp.rewrite_dst_port(new_dport);
            if ok {
                assert!(
                    tcp.verify_checksum(new_src, new_dst),
                    "incremental TCP update broke a valid checksum"
                );
            }
        }
        PROTO_UDP => {
            let Ok(mut udp) = UdpPacket::new_checked(l4) else {
                return;
            };
            let had_checksum = udp.checksum() != 0;
            let ok = udp.verify_checksum(old_src, old_dst);
            udp.adjust_checksum_for_addr(old_src, new_src);
            udp.adjust_checksum_for_addr(old_dst, new_dst);
            udp.rewrite_src_port(new_sport);
            udp.rewrite_dst_port(new_dport);
            // "No checksum" stays "no checksum"; a real one never becomes 0.
            assert_eq!(udp.checksum() != 0, had_checksum);
            if ok {
                assert!(
                    udp.verify_checksum(new_src, new_dst),
                    "incremental UDP update broke a valid checksum"
                );
            }
        }
        _ => {}
    }
}
