//! ICMP errors the director itself sends: time exceeded and fragmentation
//! needed, as a router would.
//!
//! Layer: dataplane pipeline, slow path of `conn` and `xmit`. Two events
//! turn a forwarded packet into an ICMP error sent back to its sender:
//! - a NAT packet whose TTL would reach 0 (NAT routes, RFC 1812 §5.3.1):
//!   ICMP time exceeded, type 11 code 0 ([`IcmpErrorParts::time_exceeded`]);
//! - a NAT or DR packet with DF set whose IPv4 length exceeds the egress
//!   port's `mtu`: ICMP destination unreachable, type 3 code 4
//!   "fragmentation needed", with the egress MTU as the next-hop MTU
//!   (RFC 1191 §4, [`IcmpErrorParts::frag_needed`]). Without DF the packet
//!   is dropped as `mtu_exceeded`: fulcrum does not fragment.
//!
//! The error replaces the frame in its own buffer: the original IPv4
//! datagram stays where it is and becomes the quote, an IPv4 and an ICMP
//! header (28 bytes) are opened in front of it ([`Frame::insert_gap`]),
//! and the quote is cut so the error is at most 576 bytes (RFC 1812
//! §4.3.2.3: "as much of the original datagram as possible without the
//! length of the ICMP datagram exceeding 576 bytes"). The error is sent
//! from the first DIP of the arrival port, TTL 64, TOS 0xc0 (Linux's
//! `IPTOS_PREC_INTERNETCONTROL`), DF set (a datagram of at most 576 bytes
//! never needs fragmenting; RFC 6864 §4.1 lets an atomic datagram carry
//! identification 0), back out of the arrival port to the previous hop:
//! the Ethernet addresses are swapped, an 802.1Q tag is kept.
//!
//! Rate limited per worker (RFC 1812 §4.3.2.8) by a [`TokenBucket`]
//! (`icmp_rate_limit`, default 1000 per second, burst 50): above it the
//! packet is dropped as `icmp_rate_limited`. A buffer without room for the
//! error (the error is longer than a short packet) is `icmp_error_no_room`.
//!
//! Other forwarding methods reuse [`IcmpErrorParts::frag_needed`]: a
//! tunnel that would exceed the egress MTU once encapsulated calls it with
//! the MTU left for the inner packet (the port's MTU less the outer
//! header), so the client's path-MTU discovery shrinks its packets by the
//! encapsulation's size.
//!
//! Never sent: errors about ICMP errors, fragments, or broadcast and
//! martian sources (RFC 1812 §4.3.2.7): the stages before this one drop
//! those, and only TCP/UDP of balanced flows reach it.

use crate::frame::Frame;
use crate::snapshot::PortConf;
use crate::stats::{DropReason, WorkerStats};
use crate::wire::{
    self, checksum, ipv4::MIN_HEADER_LEN, Icmpv4Packet, Ipv4Packet, ICMP_HEADER_LEN, PROTO_ICMP,
};
use crate::xmit;

use super::local::TokenBucket;
use super::parse::Parsed;
use super::{Ctx, Verdict};

/// The longest ICMP error fulcrum sends, IPv4 header included, bytes
/// (RFC 1812 §4.3.2.3).
pub const MAX_ERROR_LEN: usize = 576;
/// The IPv4 and ICMP headers put in front of the quote, bytes.
pub const ERROR_HEADERS_LEN: usize = MIN_HEADER_LEN + ICMP_HEADER_LEN;
/// TTL of the errors fulcrum sends (Linux's default `ip_default_ttl`).
pub const ERROR_TTL: u8 = 64;
/// TOS byte of the errors: precedence "internetwork control", as Linux's
/// `icmp_send` uses.
pub const ERROR_TOS: u8 = 0xc0;
/// ICMP time exceeded code 0: TTL exceeded in transit (RFC 792).
pub const CODE_TTL_EXCEEDED: u8 = 0;
/// Default `icmp_rate_limit.rate_pps`: errors per second per worker.
pub const DEFAULT_RATE_PPS: u32 = 1000;
/// Default `icmp_rate_limit.burst`: errors a worker may send at once.
pub const DEFAULT_BURST: u32 = 50;

/// Whether the IPv4 packet of `p` in `frame` has DF ("don't fragment",
/// RFC 791 §3.1) set; `false` when the header is not there.
#[inline]
pub fn dont_fragment(frame: &[u8], p: &Parsed) -> bool {
    frame
        .get(usize::from(p.l3) + 6)
        .is_some_and(|b| b & 0x40 != 0)
}

/// The parts of a worker that sending an ICMP error borrows.
pub struct IcmpErrorParts<'a> {
    /// The worker's ICMP error rate limit.
    pub bucket: &'a mut TokenBucket,
    /// Counters (`icmp_time_exceeded_sent`, `icmp_frag_needed_sent`).
    pub stats: &'a mut WorkerStats,
}

impl IcmpErrorParts<'_> {
    /// Replaces the frame (a TCP/UDP packet `p` that arrived on
    /// `ctx.in_port` with TTL ≤ 1 and would be routed by NAT) with an ICMP
    /// time exceeded, type 11 code 0, to its sender (RFC 1812 §5.3.1 and
    /// §4.3.2.3, RFC 792).
    ///
    /// Returns `Tx(ctx.in_port)` with the error in `frame`.
    ///
    /// # Errors
    /// `icmp_error_no_room`, `icmp_rate_limited`; the frame is unchanged.
    pub fn time_exceeded(
        &mut self,
        ctx: &Ctx<'_>,
        frame: &mut Frame<'_>,
        p: &Parsed,
    ) -> Result<Verdict, DropReason> {
        let v = self.send(
            ctx,
            frame,
            p,
            wire::TYPE_TIME_EXCEEDED,
            CODE_TTL_EXCEEDED,
            0,
        )?;
        self.stats.icmp_time_exceeded_sent += 1;
        Ok(v)
    }

    /// Replaces the frame (packet `p`, arrived on `ctx.in_port`, with DF
    /// set, too long for an egress MTU of `mtu` bytes) with an ICMP
    /// "fragmentation needed and DF set", type 3 code 4, whose next-hop MTU
    /// field (bytes 6..8, big-endian) is `mtu` (RFC 1191 §4), to its
    /// sender. `mtu` is the largest IPv4 datagram the sender should send:
    /// the port's MTU for NAT and DR, less the outer header for a tunnel.
    ///
    /// Returns `Tx(ctx.in_port)` with the error in `frame`.
    ///
    /// # Errors
    /// `icmp_error_no_room`, `icmp_rate_limited`; the frame is unchanged.
    pub fn frag_needed(
        &mut self,
        ctx: &Ctx<'_>,
        frame: &mut Frame<'_>,
        p: &Parsed,
        mtu: u16,
    ) -> Result<Verdict, DropReason> {
        let v = self.send(
            ctx,
            frame,
            p,
            wire::TYPE_DEST_UNREACHABLE,
            wire::CODE_FRAG_NEEDED,
            u32::from(mtu),
        )?;
        self.stats.icmp_frag_needed_sent += 1;
        Ok(v)
    }

    fn send(
        &mut self,
        ctx: &Ctx<'_>,
        frame: &mut Frame<'_>,
        p: &Parsed,
        ty: u8,
        code: u8,
        rest: u32,
    ) -> Result<Verdict, DropReason> {
        // Room first: a refused error must not cost a token.
        if error_len(p, frame.capacity()).is_none() {
            return Err(DropReason::IcmpErrorNoRoom);
        }
        let dip = ctx
            .port
            .addrs
            .first()
            .map(|a| a.0)
            .ok_or(DropReason::IcmpErrorNoRoom)?;
        if !self.bucket.take(ctx.now_ms) {
            return Err(DropReason::IcmpRateLimited);
        }
        emit(frame, p, ctx.port, dip, ty, code, rest)?;
        Ok(Verdict::Tx(ctx.in_port))
    }
}

/// The frame length of the error about `p`, if it fits `capacity` bytes.
fn error_len(p: &Parsed, capacity: usize) -> Option<usize> {
    let quote = p.ip_len().min(MAX_ERROR_LEN - ERROR_HEADERS_LEN);
    let len = usize::from(p.l3) + ERROR_HEADERS_LEN + quote;
    (len <= capacity).then_some(len)
}

/// Turns `frame`, holding the IPv4 packet `p`, into an ICMP error of
/// `ty`/`code` with bytes 4..8 `rest` (host order), from `dip` (host order)
/// to the packet's source, quoting the packet's first bytes up to 576
/// bytes in all, with the Ethernet addresses swapped (`port`'s MAC as the
/// source). Checksums are computed in full (RFC 1071): this is a new
/// packet.
///
/// # Errors
/// `icmp_error_no_room` when the frame's buffer cannot hold the error;
/// the frame is then unchanged.
pub fn emit(
    frame: &mut Frame<'_>,
    p: &Parsed,
    port: &PortConf,
    dip: u32,
    ty: u8,
    code: u8,
    rest: u32,
) -> Result<(), DropReason> {
    let l3 = usize::from(p.l3);
    let len = error_len(p, frame.capacity()).ok_or(DropReason::IcmpErrorNoRoom)?;
    let quote = len - l3 - ERROR_HEADERS_LEN;
    let peer: [u8; 6] = frame
        .bytes()
        .get(6..12)
        .and_then(|m| m.try_into().ok())
        .ok_or(DropReason::IcmpErrorNoRoom)?;
    // Cut the padding and whatever does not fit in the quote, then open
    // the headers' room in front of the datagram.
    if l3 + quote > frame.len()
        || !frame.set_len(l3 + quote)
        || !frame.insert_gap(l3, ERROR_HEADERS_LEN)
    {
        return Err(DropReason::IcmpErrorNoRoom);
    }
    let b = frame.bytes_mut();
    xmit::set_macs(b, port.mac, peer);
    let total = (ERROR_HEADERS_LEN + quote) as u16;
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut b[l3..l3 + MIN_HEADER_LEN]);
        ip.set_version(4);
        ip.set_header_len(MIN_HEADER_LEN);
        ip.set_dscp_ecn(ERROR_TOS);
        ip.set_total_len(total);
        ip.set_ident(0);
        ip.set_flags_and_frag(true, false, 0);
        ip.set_ttl(ERROR_TTL);
        ip.set_protocol(PROTO_ICMP);
        ip.set_src_addr(dip);
        ip.set_dst_addr(p.key.src_ip);
        ip.fill_checksum();
    }
    let mut icmp = Icmpv4Packet::new_unchecked(&mut b[l3 + MIN_HEADER_LEN..]);
    icmp.set_msg_type(ty);
    icmp.set_msg_code(code);
    icmp.set_rest_of_header(rest);
    icmp.set_checksum(0);
    let c = checksum::checksum(&b[l3 + MIN_HEADER_LEN..]);
    Icmpv4Packet::new_unchecked(&mut b[l3 + MIN_HEADER_LEN..]).set_checksum(c);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::ConnTable;
    use crate::pipeline::parse;
    use crate::snapshot::Prefix;

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

    fn udp(payload_len: usize) -> Vec<u8> {
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2(PEER, MAC)
            .ipv4([10, 0, 0, 2], [10, 0, 0, 100], 1)
            .udp(5000, 53)
            .write(&mut f, &vec![0x5a; payload_len])
            .unwrap();
        f
    }

    #[test]
    fn test_emit_quotes_up_to_576_bytes() {
        let orig = udp(1000);
        let p = parse::parse(&orig, &port(), &ConnTable::new(16)).unwrap();
        let mut buf = orig.clone();
        let mut f = Frame::new(&mut buf, orig.len());
        emit(&mut f, &p, &port(), 0x0a00_0001, 11, 0, 0).unwrap();
        assert_eq!(f.len(), 14 + 576);
        let b = f.bytes();
        assert_eq!(&b[0..6], &PEER);
        assert_eq!(&b[6..12], &MAC);
        let ip = Ipv4Packet::new_checked(&b[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.total_len(), ip.ttl(), ip.protocol()), (576, 64, 1));
        assert_eq!((ip.src_addr(), ip.dst_addr()), (0x0a00_0001, 0x0a00_0002));
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        assert_eq!(icmp.data(), &orig[14..14 + 548]);
    }

    #[test]
    fn test_emit_refuses_without_room() {
        let orig = udp(4);
        let p = parse::parse(&orig, &port(), &ConnTable::new(16)).unwrap();
        let mut buf = orig.clone();
        let mut f = Frame::fixed(&mut buf);
        assert_eq!(
            emit(&mut f, &p, &port(), 1, 11, 0, 0),
            Err(DropReason::IcmpErrorNoRoom)
        );
        assert_eq!(f.bytes(), &orig[..], "unchanged");
    }
}
