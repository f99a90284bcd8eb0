//! Frame emitters of `fulcrum-pktgen`: Ethernet II, IPv4, TCP, UDP and
//! ICMP headers written into a caller's buffer, with full RFC 1071
//! checksums.
//!
//! Layer: benchmark tooling, slow path (frames are built once, before
//! transmission). The checksum arithmetic is the dataplane's
//! (`dataplane::wire::checksum`); the tests check every frame with
//! `etherparse`, an independent parser. Guarantees: every emitted header is
//! well-formed (IPv4 IHL 5, DF set, ID 0, TTL 64; TCP data offset 5,
//! window 65535, no options) unless a caller damages it on purpose
//! (`gen`'s malformed packets). Refuses: nothing; callers size the frames.

use dataplane::wire::checksum::{add, checksum, fold, pseudo_header_v4, sum};

/// Ethernet II header length in bytes.
pub const ETH_LEN: usize = 14;
/// IPv4 header length without options, in bytes.
pub const IPV4_LEN: usize = 20;
/// TCP header length without options, in bytes.
pub const TCP_LEN: usize = 20;
/// UDP header length, in bytes.
pub const UDP_LEN: usize = 8;
/// ICMP header length (type, code, checksum, 4 bytes of rest), in bytes.
pub const ICMP_LEN: usize = 8;
/// Shortest frame a NIC sends without FCS (64 on the wire), in bytes.
pub const MIN_FRAME_LEN: usize = 60;

/// IPv4 protocol numbers (IANA).
pub const PROTO_ICMP: u8 = 1;
/// TCP.
pub const PROTO_TCP: u8 = 6;
/// UDP.
pub const PROTO_UDP: u8 = 17;

/// TCP flag bits (RFC 9293 §3.1).
pub const FIN: u8 = 0x01;
/// SYN.
pub const SYN: u8 = 0x02;
/// RST.
pub const RST: u8 = 0x04;
/// PSH.
pub const PSH: u8 = 0x08;
/// ACK.
pub const ACK: u8 = 0x10;

/// The addresses of one IPv4 packet: MACs in wire order, IPs host order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addrs {
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Source IPv4 address, host order.
    pub src: u32,
    /// Destination IPv4 address, host order.
    pub dst: u32,
}

/// Writes an Ethernet II header (type IPv4) and an IPv4 header at the start
/// of `buf`: total length `ip_total_len` bytes, protocol `proto`, TTL 64,
/// DF, ID 0, full header checksum (RFC 791 §3.1, RFC 1071).
///
/// # Panics
/// If `buf` is shorter than 34 bytes.
pub fn write_eth_ipv4(buf: &mut [u8], a: &Addrs, proto: u8, ip_total_len: u16) {
    buf[0..6].copy_from_slice(&a.dst_mac);
    buf[6..12].copy_from_slice(&a.src_mac);
    buf[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    write_ipv4(
        &mut buf[ETH_LEN..ETH_LEN + IPV4_LEN],
        a.src,
        a.dst,
        proto,
        ip_total_len,
        64,
    );
}

/// Writes a 20-byte IPv4 header (DF, ID 0, TTL `ttl`) with its checksum.
///
/// # Panics
/// If `h` is shorter than 20 bytes.
pub fn write_ipv4(h: &mut [u8], src: u32, dst: u32, proto: u8, total_len: u16, ttl: u8) {
    h[0] = 0x45;
    h[1] = 0;
    h[2..4].copy_from_slice(&total_len.to_be_bytes());
    h[4..6].copy_from_slice(&[0, 0]);
    h[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
    h[8] = ttl;
    h[9] = proto;
    h[10..12].copy_from_slice(&[0, 0]);
    h[12..16].copy_from_slice(&src.to_be_bytes());
    h[16..20].copy_from_slice(&dst.to_be_bytes());
    fill_ipv4_checksum(h);
}

/// Recomputes the checksum of the IPv4 header at the start of `h` over
/// `IHL × 4` bytes (at least 20, at most `h.len()`).
///
/// # Panics
/// If `h` is shorter than 20 bytes.
pub fn fill_ipv4_checksum(h: &mut [u8]) {
    let ihl = (usize::from(h[0] & 0x0f) * 4).clamp(IPV4_LEN, h.len());
    h[10..12].copy_from_slice(&[0, 0]);
    let c = checksum(&h[..ihl]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
}

/// The TCP or UDP checksum of segment `seg` (header + data, checksum field
/// zeroed by the caller) between `src` and `dst` (host order), with the
/// IPv4 pseudo header (RFC 9293 §3.1, RFC 768). A UDP result of 0 is sent
/// as 0xffff (RFC 768: 0 means "no checksum").
pub fn l4_checksum(seg: &[u8], src: u32, dst: u32, proto: u8) -> u16 {
    let s = add(
        pseudo_header_v4(src, dst, proto, seg.len() as u16),
        sum(seg),
    );
    let c = !fold(s);
    if proto == PROTO_UDP && c == 0 {
        0xffff
    } else {
        c
    }
}

/// One TCP segment to emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSeg {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful with [`ACK`]).
    pub ack: u32,
    /// Flag bits ([`SYN`], [`ACK`], ...).
    pub flags: u8,
}

/// Writes an Ethernet + IPv4 + TCP frame with `payload_len` zero bytes of
/// data into `out` (cleared first), padded with zeros to 60 bytes, and
/// fills both checksums. Returns the frame length in bytes.
pub fn tcp_frame(out: &mut Vec<u8>, a: &Addrs, t: &TcpSeg, payload_len: usize) -> usize {
    let ip_len = IPV4_LEN + TCP_LEN + payload_len;
    let len = (ETH_LEN + ip_len).max(MIN_FRAME_LEN);
    out.clear();
    out.resize(len, 0);
    write_eth_ipv4(out, a, PROTO_TCP, ip_len as u16);
    let seg = &mut out[ETH_LEN + IPV4_LEN..ETH_LEN + ip_len];
    seg[0..2].copy_from_slice(&t.sport.to_be_bytes());
    seg[2..4].copy_from_slice(&t.dport.to_be_bytes());
    seg[4..8].copy_from_slice(&t.seq.to_be_bytes());
    seg[8..12].copy_from_slice(&t.ack.to_be_bytes());
    seg[12] = 5 << 4;
    seg[13] = t.flags;
    seg[14..16].copy_from_slice(&65_535u16.to_be_bytes());
    let c = l4_checksum(seg, a.src, a.dst, PROTO_TCP);
    seg[16..18].copy_from_slice(&c.to_be_bytes());
    len
}

/// Writes an Ethernet + IPv4 + UDP frame (`sport` → `dport`) with
/// `payload_len` zero bytes of data into `out` (cleared first), padded to
/// 60 bytes, with both checksums. Returns the frame length in bytes.
pub fn udp_frame(
    out: &mut Vec<u8>,
    a: &Addrs,
    sport: u16,
    dport: u16,
    payload_len: usize,
) -> usize {
    let ip_len = IPV4_LEN + UDP_LEN + payload_len;
    let len = (ETH_LEN + ip_len).max(MIN_FRAME_LEN);
    out.clear();
    out.resize(len, 0);
    write_eth_ipv4(out, a, PROTO_UDP, ip_len as u16);
    let seg = &mut out[ETH_LEN + IPV4_LEN..ETH_LEN + ip_len];
    seg[0..2].copy_from_slice(&sport.to_be_bytes());
    seg[2..4].copy_from_slice(&dport.to_be_bytes());
    seg[4..6].copy_from_slice(&((UDP_LEN + payload_len) as u16).to_be_bytes());
    let c = l4_checksum(seg, a.src, a.dst, PROTO_UDP);
    seg[6..8].copy_from_slice(&c.to_be_bytes());
    len
}

/// Writes an Ethernet + IPv4 + ICMP frame into `out` (cleared first):
/// type `icmp_type`, code `code`, the 4 "rest of header" bytes `rest`, then
/// `body`, padded to 60 bytes, with the IPv4 and ICMP checksums (RFC 792).
/// Returns the frame length in bytes.
pub fn icmp_frame(
    out: &mut Vec<u8>,
    a: &Addrs,
    icmp_type: u8,
    code: u8,
    rest: [u8; 4],
    body: &[u8],
) -> usize {
    let ip_len = IPV4_LEN + ICMP_LEN + body.len();
    let len = (ETH_LEN + ip_len).max(MIN_FRAME_LEN);
    out.clear();
    out.resize(len, 0);
    write_eth_ipv4(out, a, PROTO_ICMP, ip_len as u16);
    let m = &mut out[ETH_LEN + IPV4_LEN..ETH_LEN + ip_len];
    m[0] = icmp_type;
    m[1] = code;
    m[4..8].copy_from_slice(&rest);
    m[8..].copy_from_slice(body);
    let c = checksum(m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    len
}

/// Addresses of the unit tests' frames: client 172.16.0.1 → VIP 10.0.0.100.
#[cfg(test)]
pub(crate) const TEST_ADDRS: Addrs = Addrs {
    dst_mac: [2, 0, 0, 0, 0, 1],
    src_mac: [2, 0xfe, 0, 0, 0, 0xfe],
    src: 0xac10_0001,
    dst: 0x0a00_0064,
};

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    const A: Addrs = TEST_ADDRS;

    #[test]
    fn test_emit_tcp_matches_etherparse() {
        let mut v = Vec::new();
        let t = TcpSeg {
            sport: 1024,
            dport: 80,
            seq: 1001,
            ack: 1,
            flags: ACK | PSH,
        };
        assert_eq!(tcp_frame(&mut v, &A, &t, 100), 154);
        let mut e = Vec::new();
        etherparse::PacketBuilder::ethernet2(A.src_mac, A.dst_mac)
            .ipv4(A.src.to_be_bytes(), A.dst.to_be_bytes(), 64)
            .tcp(1024, 80, 1001, 65_535)
            .ack(1)
            .psh()
            .write(&mut e, &[0u8; 100])
            .unwrap();
        assert_eq!(v, e, "same bytes as an independent builder");
    }

    #[test]
    fn test_emit_udp_icmp_checksums() {
        let mut v = Vec::new();
        udp_frame(&mut v, &A, 5000, 53, 3);
        assert_eq!(v.len(), 60, "padded to the minimum frame");
        let p = SlicedPacket::from_ethernet(&v).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!()
        };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        let Some(TransportSlice::Udp(u)) = &p.transport else {
            panic!()
        };
        let uh = u.to_header();
        assert_eq!(uh.checksum, uh.calc_checksum_ipv4(&h, u.payload()).unwrap());
        assert_eq!(u.payload(), &[0, 0, 0]);

        icmp_frame(&mut v, &A, 8, 0, [0, 7, 0, 1], &[9; 30]);
        let p = SlicedPacket::from_ethernet(&v).unwrap();
        let Some(TransportSlice::Icmpv4(i)) = &p.transport else {
            panic!()
        };
        assert_eq!(
            i.header().checksum,
            i.icmp_type().calc_checksum(i.payload())
        );
    }
}
