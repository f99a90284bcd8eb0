//! FullNAT (DPVS `fullnat`, ipvsadm `--fullnat`), as DPVS's
//! `dp_vs_xmit_fnat` / `dp_vs_out_xmit_fnat` and `tcp_fnat_in_handler` /
//! `tcp_fnat_out_handler`.
//!
//! Inbound (client → real server): source CIP:cport becomes LIP:lport and
//! destination VIP:vport becomes RIP:rport. Outbound (the real server's
//! reply, to LIP:lport): source RIP:rport becomes VIP:vport and destination
//! LIP:lport becomes CIP:cport. Both decrement the TTL (the director
//! routes); checksums are updated incrementally (RFC 1624).
//!
//! The real server sees LIP:lport, so a TCP service may hand it the
//! client's address ([`ClientAddress`]):
//! - **TOA**: a TCP option, kind 254, length 8, holding the client port
//!   (2 bytes) then the client IPv4 address (4 bytes), network order — the
//!   layout DPVS's and Alibaba LVS's `toa` kernel modules read. It goes on
//!   the client's segments that start at its first data byte (the ACK that
//!   completes the handshake, which the Linux module reads when it creates
//!   the socket, as Alibaba LVS adds it there, and the first data segment
//!   with its retransmissions, which complete the handshake when that ACK
//!   is lost), first in the options. The real server's MSS is clamped by
//!   8 so that the grown segment still fits the path.
//! - **PROXY protocol v2** (haproxy `proxy-protocol.txt` §2.2): a 28-byte
//!   header (signature, `0x21` PROXY, `0x11` TCP over IPv4, length 12, CIP,
//!   VIP, cport, vport) in front of the client's first data byte. The
//!   header takes sequence space `isn1..isn1+28`, so every later client
//!   sequence number is shifted by +28 and every acknowledgment (and SACK
//!   edge) of the real server by −28; a retransmission of the first data
//!   segment carries the header again. The real server's MSS is clamped by
//!   28 in its SYN-ACK so a full-sized first segment plus the header fits
//!   the path MTU.
//!
//! Refuses: a segment whose buffer cannot grow for the PROXY header
//! (`fullnat_proxy_no_room`, dropped: the client retransmits it). A TOA
//! that does not fit the options area or the buffer is skipped and counted
//! (`fullnat_toa_no_space`), as DPVS does.

use crate::conn::Conn;
use crate::frame::Frame;
use crate::snapshot::ClientAddress;
use crate::stats::DropReason;
use crate::wire::checksum;
use crate::wire::tcp::{FLAG_ACK, FLAG_RST, FLAG_SYN};
use crate::wire::{Ipv4Packet, TcpPacket, PROTO_TCP};

use super::nat::{rewrite, Side};

/// Length of the PROXY v2 header for TCP over IPv4: 16 fixed bytes plus 12
/// of addresses and ports.
pub const PROXY_V2_LEN: usize = 28;
/// The PROXY v2 signature (proxy-protocol.txt §2.2).
pub const PROXY_V2_SIG: [u8; 12] = [
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
];
/// TOA option kind (DPVS / Alibaba LVS `TCPOPT_ADDR`).
pub const TOA_KIND: u8 = 254;
/// TOA option length in bytes: kind, length, port (2), IPv4 address (4).
pub const TOA_LEN: usize = 8;
/// The most bytes a TCP header may have (data offset 15, RFC 9293 §3.1).
const TCP_MAX_HEADER_LEN: usize = 60;

/// What the inbound rewrite did besides the addresses, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Addresses only.
    Plain,
    /// A PROXY v2 header went in front of the payload.
    Proxy,
    /// A TOA option was added.
    Toa,
    /// A TOA was due but did not fit (options full or no buffer room).
    ToaNoSpace,
}

/// The PROXY v2 header for client `cip:cport` → `vip:vport` (host order),
/// 28 bytes: signature, `0x21` (version 2, PROXY), `0x11` (AF_INET,
/// STREAM), length 12 (big endian), source address, destination address,
/// source port, destination port, all network order.
pub fn proxy_v2_header(cip: u32, cport: u16, vip: u32, vport: u16) -> [u8; PROXY_V2_LEN] {
    let mut h = [0u8; PROXY_V2_LEN];
    h[..12].copy_from_slice(&PROXY_V2_SIG);
    h[12] = 0x21;
    h[13] = 0x11;
    h[14..16].copy_from_slice(&12u16.to_be_bytes());
    h[16..20].copy_from_slice(&cip.to_be_bytes());
    h[20..24].copy_from_slice(&vip.to_be_bytes());
    h[24..26].copy_from_slice(&cport.to_be_bytes());
    h[26..28].copy_from_slice(&vport.to_be_bytes());
    h
}

/// The TOA option for client `cip:cport` (host order): kind 254, length 8,
/// port, address, network order.
pub fn toa_option(cip: u32, cport: u16) -> [u8; TOA_LEN] {
    let mut o = [0u8; TOA_LEN];
    o[0] = TOA_KIND;
    o[1] = TOA_LEN as u8;
    o[2..4].copy_from_slice(&cport.to_be_bytes());
    o[4..8].copy_from_slice(&cip.to_be_bytes());
    o
}

/// Whether sequence number `a` comes after `b` (RFC 9293 §3.4 modular
/// comparison).
#[inline]
fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// Maps an acknowledgment or SACK edge `v` of the real server's sequence
/// space for the client's data (shifted by the PROXY header at `isn1`) back
/// to the client's: −28 past the header, `isn1` inside it, unchanged before.
#[inline]
pub fn unshift(v: u32, isn1: u32) -> u32 {
    let d = v.wrapping_sub(isn1) as i32;
    if d >= PROXY_V2_LEN as i32 {
        v.wrapping_sub(PROXY_V2_LEN as u32)
    } else if d > 0 {
        isn1
    } else {
        v
    }
}

/// Rewrites bytes `at..at + new.len()` of TCP segment `seg` to `new` and
/// fixes its checksum incrementally, whatever the bytes' alignment (RFC
/// 1624 over the 16-bit words they touch). Out of range: nothing changes.
fn patch(seg: &mut [u8], at: usize, new: &[u8]) {
    let end = at + new.len();
    if end > seg.len() || seg.len() < 18 {
        return;
    }
    let (ws, we) = (at & !1, (end + 1) & !1);
    let we = we.min(seg.len());
    let old_sum = checksum::sum(&seg[ws..we]);
    seg[at..end].copy_from_slice(new);
    let new_sum = checksum::sum(&seg[ws..we]);
    let csum = u16::from_be_bytes([seg[16], seg[17]]);
    let s = checksum::add(
        checksum::add(u32::from(!csum), u32::from(!checksum::fold(old_sum))),
        u32::from(checksum::fold(new_sum)),
    );
    let c = !checksum::fold(s);
    seg[16..18].copy_from_slice(&c.to_be_bytes());
}

/// Calls `f(offset_in_segment, kind, len)` for every option of TCP
/// segment `seg` (header length `hlen`) until it returns `false`. Stops at
/// End of Option List or a malformed length; never reads past `hlen`.
fn for_each_option(seg: &[u8], hlen: usize, mut f: impl FnMut(usize, u8, usize) -> bool) {
    let end = hlen.min(seg.len());
    let mut i = 20;
    while i < end {
        let kind = seg[i];
        match kind {
            0 => return,
            1 => i += 1,
            _ => {
                let Some(&len) = seg.get(i + 1) else { return };
                let len = usize::from(len);
                if len < 2 || i + len > end {
                    return;
                }
                if !f(i, kind, len) {
                    return;
                }
                i += len;
            }
        }
    }
}

/// Lowers the MSS option (kind 2) of TCP segment `seg` by `by` bytes, not
/// below 536 (RFC 9293 §3.7.1's default). No MSS option: nothing changes.
pub fn clamp_mss(seg: &mut [u8], by: u16) {
    let hlen = TcpPacket::new_unchecked(&*seg).header_len();
    let mut at = None;
    for_each_option(seg, hlen, |i, kind, len| {
        if kind == 2 && len == 4 {
            at = Some(i + 2);
            return false;
        }
        true
    });
    if let Some(at) = at {
        let mss = u16::from_be_bytes([seg[at], seg[at + 1]]);
        let new = mss.saturating_sub(by).max(536).min(mss);
        patch(seg, at, &new.to_be_bytes());
    }
}

/// Maps the acknowledgment number and every SACK block edge (kind 5) of the
/// real server's segment `seg` back to the client's sequence space
/// ([`unshift`]), fixing the checksum.
pub fn unshift_acks(seg: &mut [u8], isn1: u32) {
    if seg.len() < 20 {
        return;
    }
    if seg[13] & FLAG_ACK != 0 {
        let ack = u32::from_be_bytes([seg[8], seg[9], seg[10], seg[11]]);
        patch(seg, 8, &unshift(ack, isn1).to_be_bytes());
    }
    let hlen = TcpPacket::new_unchecked(&*seg).header_len();
    // At most 4 SACK blocks fit 40 bytes of options (RFC 2018 §3).
    let mut sacks = [(0usize, 0usize); 4];
    let mut n = 0;
    for_each_option(seg, hlen, |i, kind, len| {
        if kind == 5 && n < sacks.len() {
            sacks[n] = (i + 2, (len - 2) / 8);
            n += 1;
        }
        true
    });
    for &(start, blocks) in &sacks[..n] {
        for b in 0..blocks * 2 {
            let at = start + b * 4;
            let Some(e) = seg.get(at..at + 4) else { break };
            let v = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            patch(seg, at, &unshift(v, isn1).to_be_bytes());
        }
    }
}

/// What the client-address method adds to the inbound segment at
/// `frame[l3..ip_end]` of `conn`: `(Some(offset), n)` to insert `n` bytes
/// at frame offset `offset`; `(None, TOA_LEN)` for a TOA that is due but
/// does not fit the options area; `(None, 0)` for nothing (not TCP, a SYN
/// or RST, not the segment at the client's first data byte).
fn plan(frame: &[u8], l3: usize, ip_end: usize, conn: &Conn) -> (Option<usize>, usize) {
    match tcp_view(frame, l3, ip_end) {
        Some((l4, hlen, seq, flags, payload)) if flags & (FLAG_SYN | FLAG_RST) == 0 => {
            match conn.client_address {
                ClientAddress::ProxyV2 if seq == conn.isn1 && payload > 0 => {
                    (Some(l4 + hlen), PROXY_V2_LEN)
                }
                ClientAddress::Toa if seq == conn.isn1 && flags & FLAG_ACK != 0 => {
                    if hlen + TOA_LEN <= TCP_MAX_HEADER_LEN {
                        // Right after the fixed header: a parser that stops
                        // at End of Option List still finds it.
                        (Some(l4 + 20), TOA_LEN)
                    } else {
                        (None, TOA_LEN)
                    }
                }
                _ => (None, 0),
            }
        }
        _ => (None, 0),
    }
}

/// The bytes [`rewrite_inbound`] will add to the inbound segment at
/// `frame[l3..ip_end]` of `conn`: [`PROXY_V2_LEN`] for a PROXY header,
/// [`TOA_LEN`] for a TOA that fits the options area and the buffer, else
/// 0. The pipeline adds it to the packet's length before the egress MTU
/// check, as a tunnel's outer header, so what leaves never exceeds the
/// port's MTU.
pub fn inbound_growth(frame: &Frame<'_>, l3: usize, ip_end: usize, conn: &Conn) -> usize {
    match plan(frame.bytes(), l3, ip_end, conn) {
        (Some(_), PROXY_V2_LEN) => PROXY_V2_LEN,
        (Some(_), n) if frame.len() + n <= frame.capacity() => n,
        _ => 0,
    }
}

/// Inbound FullNAT rewrite of the IPv4 packet at `frame[l3..ip_end]` of
/// connection `conn`: addresses and ports (LIP:lport → RIP:rport), then for
/// TCP the client address method; the TTL is decremented. The caller has
/// checked the IPv4 and L4 headers with `check_len` and the TTL (> 1).
///
/// # Errors
/// `fullnat_proxy_no_room` when a PROXY header is due and the frame cannot
/// grow by 28 bytes (nothing was rewritten).
pub fn rewrite_inbound(
    frame: &mut Frame<'_>,
    l3: usize,
    ip_end: usize,
    conn: &Conn,
) -> Result<Sent, DropReason> {
    // What the client-address method needs, decided before any rewrite so
    // that a refused segment leaves untouched.
    let (insert, grow) = plan(frame.bytes(), l3, ip_end, conn);
    let mut sent = Sent::Plain;
    if grow == TOA_LEN && (insert.is_none() || frame.len() + TOA_LEN > frame.capacity()) {
        sent = Sent::ToaNoSpace;
    }
    if grow == PROXY_V2_LEN && frame.len() + PROXY_V2_LEN > frame.capacity() {
        return Err(DropReason::FullnatProxyNoRoom);
    }
    {
        let Some(ip) = frame.bytes_mut().get_mut(l3..ip_end) else {
            return Ok(Sent::Plain);
        };
        super::decrement_ttl(ip);
        rewrite(ip, Side::Src, conn.lip, conn.lport);
        rewrite(ip, Side::Dst, conn.rip, conn.rport);
        if conn.client_address == ClientAddress::ProxyV2 && insert.is_none() {
            shift_seq(ip, conn.isn1);
        }
    }
    let Some(at) = insert.filter(|_| sent != Sent::ToaNoSpace) else {
        return Ok(sent);
    };
    let bytes: &[u8] = if grow == PROXY_V2_LEN {
        &proxy_v2_header(conn.cip, conn.cport, conn.vip, conn.vport)
    } else {
        &toa_option(conn.cip, conn.cport)
    };
    if !frame.insert_gap(at, grow) {
        // Checked above; stay total.
        return Ok(sent);
    }
    let Some(gap) = frame.bytes_mut().get_mut(at..at + grow) else {
        return Ok(sent);
    };
    gap.copy_from_slice(bytes);
    grown(frame.bytes_mut(), l3, ip_end + grow, bytes, grow == TOA_LEN);
    Ok(if grow == PROXY_V2_LEN {
        Sent::Proxy
    } else {
        Sent::Toa
    })
}

/// (L4 offset, TCP header length, seq, flags, payload length) of the TCP
/// segment of the IPv4 packet at `frame[l3..ip_end]`, or `None` when it is
/// not TCP or is cut short.
fn tcp_view(frame: &[u8], l3: usize, ip_end: usize) -> Option<(usize, usize, u32, u8, usize)> {
    let ip = Ipv4Packet::new_unchecked(frame.get(l3..ip_end)?);
    if ip.protocol() != PROTO_TCP {
        return None;
    }
    let ihl = ip.header_len();
    let seg = ip.payload();
    if seg.len() < 20 {
        return None;
    }
    let t = TcpPacket::new_unchecked(seg);
    let hlen = t.header_len();
    if hlen < 20 || hlen > seg.len() {
        return None;
    }
    Some((l3 + ihl, hlen, t.seq_number(), t.flags(), seg.len() - hlen))
}

/// Adds the PROXY header's 28 bytes to the sequence number of a client
/// segment past `isn1` (the header occupies `isn1..isn1 + 28` of the
/// server's sequence space).
fn shift_seq(ip: &mut [u8], isn1: u32) {
    let mut p = Ipv4Packet::new_unchecked(ip);
    if p.protocol() != PROTO_TCP {
        return;
    }
    let seg = p.payload_mut();
    if seg.len() < 20 || seg[13] & FLAG_SYN != 0 {
        return;
    }
    let seq = u32::from_be_bytes([seg[4], seg[5], seg[6], seg[7]]);
    if seq_after(seq, isn1) {
        patch(seg, 4, &seq.wrapping_add(PROXY_V2_LEN as u32).to_be_bytes());
    }
}

/// Fixes the IPv4 total length and checksum and the TCP checksum after
/// `ins` was inserted into the segment of the IPv4 packet now at
/// `frame[l3..ip_end]` at an even offset (so the words after it keep their
/// alignment): the segment sum gains `ins`'s sum and, in the pseudo
/// header, its length. With `toa`, the bytes went into the options and the
/// data offset grows by `ins.len() / 4`.
fn grown(frame: &mut [u8], l3: usize, ip_end: usize, ins: &[u8], toa: bool) {
    let Some(ip) = frame.get_mut(l3..ip_end) else {
        return;
    };
    let n = ins.len() as u16;
    let mut p = Ipv4Packet::new_unchecked(ip);
    let old_total = p.total_len();
    let new_total = old_total.wrapping_add(n);
    p.set_total_len(new_total);
    p.set_checksum(checksum::update_u16(p.checksum(), old_total, new_total));
    let seg = p.payload_mut();
    if seg.len() < 20 {
        return;
    }
    let csum = u16::from_be_bytes([seg[16], seg[17]]);
    let s = checksum::add(
        checksum::add(u32::from(!csum), checksum::sum(ins)),
        u32::from(n),
    );
    let c = !checksum::fold(s);
    seg[16..18].copy_from_slice(&c.to_be_bytes());
    if toa {
        let doff = seg[12] >> 4;
        let new = (doff + (n / 4) as u8) << 4 | (seg[12] & 0x0f);
        patch(seg, 12, &[new]);
    }
}

/// Outbound FullNAT rewrite of the IPv4 packet `ip` (the real server's
/// reply) of connection `conn`: RIP:rport → VIP:vport, LIP:lport →
/// CIP:cport; for TCP with a client address method, the SYN-ACK's MSS is
/// clamped by the bytes the director adds, and with PROXY v2 the
/// acknowledgment and SACK edges are shifted back by 28. The caller has
/// checked the headers and decremented the TTL.
pub fn rewrite_outbound(ip: &mut [u8], conn: &Conn) {
    rewrite(ip, Side::Src, conn.vip, conn.vport);
    rewrite(ip, Side::Dst, conn.cip, conn.cport);
    let by = match conn.client_address {
        ClientAddress::None => return,
        ClientAddress::Toa => TOA_LEN as u16,
        ClientAddress::ProxyV2 => PROXY_V2_LEN as u16,
    };
    let mut p = Ipv4Packet::new_unchecked(ip);
    if p.protocol() != PROTO_TCP {
        return;
    }
    let seg = p.payload_mut();
    if seg.len() < 20 {
        return;
    }
    if seg[13] & FLAG_SYN != 0 {
        clamp_mss(seg, by);
    }
    if conn.client_address == ClientAddress::ProxyV2 {
        unshift_acks(seg, conn.isn1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_unshift() {
        let isn1 = 1000;
        assert_eq!(unshift(999, isn1), 999);
        assert_eq!(unshift(1000, isn1), 1000);
        assert_eq!(unshift(1010, isn1), 1000);
        assert_eq!(unshift(1028, isn1), 1000);
        assert_eq!(unshift(1100, isn1), 1072);
        // Across the wrap.
        let isn1 = u32::MAX - 10;
        assert_eq!(unshift(30, isn1), 2);
    }

    #[test]
    fn test_inbound_growth() {
        use crate::conn::TcpState;
        use crate::snapshot::Method;
        // The client's segment at its first data byte (seq = isn1 = 1001),
        // ACK set, after a 14-byte Ethernet header.
        let segment = |payload: &[u8]| {
            let mut f = vec![0u8; 14];
            etherparse::PacketBuilder::ipv4([10, 0, 0, 2], [10, 0, 0, 100], 64)
                .tcp(40000, 80, 1001, 65535)
                .ack(1)
                .write(&mut f, payload)
                .unwrap();
            f
        };
        let conn = |ca| Conn {
            cip: 0x0a00_0002,
            cport: 40000,
            vip: 0x0a00_0064,
            vport: 80,
            rip: 0x0a01_000b,
            rport: 8080,
            proto: PROTO_TCP,
            method: Method::FullNat,
            real: 1,
            service: 0,
            state: TcpState::Established,
            lip: 0x0a01_0064,
            lport: 1024,
            client_address: ca,
            isn1: 1001,
        };
        let growth = |f: &[u8], room: usize, ca| {
            let mut buf = f.to_vec();
            buf.resize(f.len() + room, 0);
            let fr = Frame::new(&mut buf, f.len());
            inbound_growth(&fr, 14, f.len(), &conn(ca))
        };
        let (data, ack) = (segment(b"GET /"), segment(b""));
        assert_eq!(growth(&data, 64, ClientAddress::ProxyV2), PROXY_V2_LEN);
        // Due even without room: `rewrite_inbound` refuses it then.
        assert_eq!(growth(&data, 0, ClientAddress::ProxyV2), PROXY_V2_LEN);
        // No data, no header.
        assert_eq!(growth(&ack, 64, ClientAddress::ProxyV2), 0);
        assert_eq!(growth(&ack, 64, ClientAddress::Toa), TOA_LEN);
        // A TOA without room is skipped, so it adds nothing.
        assert_eq!(growth(&ack, 0, ClientAddress::Toa), 0);
        assert_eq!(growth(&data, 64, ClientAddress::None), 0);
        // Not at the first data byte.
        let mut later = data.clone();
        later[14 + 20 + 7] = 0xf0;
        assert_eq!(growth(&later, 64, ClientAddress::ProxyV2), 0);
    }

    #[test]
    fn test_proxy_header_layout() {
        let h = proxy_v2_header(0x0a00_0002, 40000, 0x0a00_0064, 80);
        assert_eq!(&h[..12], b"\r\n\r\n\0\r\nQUIT\n");
        assert_eq!(&h[12..16], &[0x21, 0x11, 0, 12]);
        assert_eq!(&h[16..24], &[10, 0, 0, 2, 10, 0, 0, 100]);
        assert_eq!(&h[24..28], &[0x9c, 0x40, 0, 80]);
        assert_eq!(
            toa_option(0x0a00_0002, 40000),
            [254, 8, 0x9c, 0x40, 10, 0, 0, 2]
        );
    }
}
