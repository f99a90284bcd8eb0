//! A view of an ICMPv4 error message and the packet it quotes.
//!
//! Layer: dataplane wire. An ICMP error (destination unreachable, time
//! exceeded, parameter problem) carries, after its 8-byte header, the IPv4
//! header of the datagram that caused it and at least the first 8 bytes of
//! that datagram's payload (RFC 792; RFC 1812 §4.3.2.3 lets a router quote
//! more, up to 576 bytes in all). For TCP and UDP those 8 bytes hold both
//! ports, which is what lets a director find the connection the error is
//! about: IPVS's `ip_vs_in_icmp` / `ip_vs_out_icmp` match the quoted tuple,
//! reversed, against their connection table.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     unused (type 3 code 4: 0 | Next-Hop MTU, RFC 1191 §4)      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      Internet Header + 64 bits of Original Data Datagram      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! [`IcmpQuote::new_checked`] checks that the quote holds a whole inner
//! IPv4 header (version 4, IHL ≥ 5) and 8 bytes after it; then no getter
//! or setter panics. The inner header's total length is the original
//! datagram's and is normally larger than the quote: it is never used to
//! slice. Setters keep three checksums right with RFC 1624 updates: the
//! inner IPv4 header's, the inner TCP/UDP checksum when the quote holds it
//! (UDP "no checksum" 0 stays 0), and the ICMP checksum over the whole
//! message.
#![forbid(unsafe_code)]

use super::checksum;
use super::icmp::{TYPE_DEST_UNREACHABLE, TYPE_TIME_EXCEEDED};
use super::ipv4::{MIN_HEADER_LEN, PROTO_TCP, PROTO_UDP};
use super::Error;

/// Parameter problem (RFC 792).
pub const TYPE_PARAMETER_PROBLEM: u8 = 12;
/// Bytes of the original datagram's payload an error must quote at least
/// (RFC 792 "64 bits of Data Datagram").
pub const MIN_QUOTED_PAYLOAD: usize = 8;
/// Shortest error message this view accepts: the ICMP header, a 20-byte
/// inner header and 8 payload bytes.
pub const MIN_QUOTE_LEN: usize = HEADER_LEN + MIN_HEADER_LEN + MIN_QUOTED_PAYLOAD;
/// The ICMP header before the quote, bytes.
pub const HEADER_LEN: usize = 8;

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const MTU: Range<usize> = 6..8;
    /// The inner IPv4 header starts here.
    pub const INNER: usize = 8;
    // Offsets inside the inner IPv4 header.
    pub const IN_VER_IHL: usize = 0;
    pub const IN_FLG_OFF: usize = 6;
    pub const IN_PROTOCOL: usize = 9;
    pub const IN_CHECKSUM: usize = 10;
    pub const IN_SRC: usize = 12;
    pub const IN_DST: usize = 16;
    // Offsets inside the inner L4 header.
    pub const L4_SRC_PORT: usize = 0;
    pub const L4_DST_PORT: usize = 2;
    pub const TCP_SEQ: usize = 4;
    pub const UDP_CHECKSUM: usize = 6;
    pub const TCP_CHECKSUM: usize = 16;
}

/// Whether ICMP `msg_type` is one of the errors a director relays for a
/// balanced flow: destination unreachable, time exceeded, parameter
/// problem (the types IPVS's `ip_vs_in_icmp` handles).
#[inline]
pub fn is_error_type(msg_type: u8) -> bool {
    matches!(
        msg_type,
        TYPE_DEST_UNREACHABLE | TYPE_TIME_EXCEEDED | TYPE_PARAMETER_PROBLEM
    )
}

/// Which end of the quoted datagram a rewrite changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuoteSide {
    /// The quoted datagram's source address and port.
    Src,
    /// The quoted datagram's destination address and port.
    Dst,
}

/// An ICMP error message from its type byte to the end of the IP datagram
/// that carries it. See the module doc for the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpQuote<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpQuote<T> {
    /// Wraps `buffer` and checks it.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the message is shorter than the ICMP
    /// header and a 20-byte inner header; [`Error::BadVersion`] /
    /// [`Error::BadHeaderLen`] when the inner header is not IPv4 or its
    /// IHL is below 5; [`Error::Truncated`] when the inner header (with
    /// its options) and 8 bytes after it do not fit.
    pub fn new_checked(buffer: T) -> Result<IcmpQuote<T>, Error> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN + MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let vi = b[field::INNER + field::IN_VER_IHL];
        if vi >> 4 != 4 {
            return Err(Error::BadVersion);
        }
        let ihl = usize::from(vi & 0x0f) * 4;
        if ihl < MIN_HEADER_LEN {
            return Err(Error::BadHeaderLen);
        }
        if b.len() < HEADER_LEN + ihl + MIN_QUOTED_PAYLOAD {
            return Err(Error::Truncated);
        }
        Ok(IcmpQuote { buffer })
    }

    fn u16_at(&self, at: usize) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// The message's length in bytes (ICMP header and quote).
    pub fn len(&self) -> usize {
        self.buffer.as_ref().len()
    }

    /// Always `false` for a checked view (kept for the `len` convention).
    pub fn is_empty(&self) -> bool {
        self.buffer.as_ref().is_empty()
    }

    /// The ICMP type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// The ICMP code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The ICMP checksum, host order.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM.start)
    }

    /// Bytes 6..8, host order: the next-hop MTU of a "fragmentation
    /// needed" (type 3 code 4, RFC 1191 §4); 0 from pre-RFC 1191 routers.
    pub fn next_hop_mtu(&self) -> u16 {
        self.u16_at(field::MTU.start)
    }

    /// Whether the ICMP checksum over the whole message verifies
    /// (RFC 792).
    pub fn verify_checksum(&self) -> bool {
        checksum::verifies(self.buffer.as_ref())
    }

    /// The inner header's length in bytes (IHL × 4, 20..=60).
    pub fn inner_header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::INNER] & 0x0f) * 4
    }

    /// The inner header's protocol number.
    pub fn inner_protocol(&self) -> u8 {
        self.buffer.as_ref()[field::INNER + field::IN_PROTOCOL]
    }

    /// The quoted datagram's source address, host order.
    pub fn inner_src_addr(&self) -> u32 {
        self.u32_at(field::INNER + field::IN_SRC)
    }

    /// The quoted datagram's destination address, host order.
    pub fn inner_dst_addr(&self) -> u32 {
        self.u32_at(field::INNER + field::IN_DST)
    }

    /// The quoted datagram's fragment offset, in 8-byte units; a non-zero
    /// offset means the quote carries no L4 header.
    pub fn inner_frag_offset(&self) -> u16 {
        self.u16_at(field::INNER + field::IN_FLG_OFF) & 0x1fff
    }

    /// Offset of the quoted L4 header in the message.
    pub fn inner_l4_offset(&self) -> usize {
        field::INNER + self.inner_header_len()
    }

    /// The quoted L4 header's first 16-bit word, host order: the TCP/UDP
    /// source port, or an inner ICMP message's type (high byte) and code.
    pub fn inner_src_port(&self) -> u16 {
        self.u16_at(self.inner_l4_offset() + field::L4_SRC_PORT)
    }

    /// The quoted TCP/UDP destination port, host order.
    pub fn inner_dst_port(&self) -> u16 {
        self.u16_at(self.inner_l4_offset() + field::L4_DST_PORT)
    }

    /// The quoted TCP sequence number, host order (bytes 4..8 of the
    /// quoted L4 header, inside the 8 bytes every quote holds); meaningful
    /// only when [`IcmpQuote::inner_protocol`] is TCP.
    pub fn inner_tcp_seq(&self) -> u32 {
        self.u32_at(self.inner_l4_offset() + field::TCP_SEQ)
    }

    /// The first byte of the quoted L4 header: an inner ICMP message's
    /// type.
    pub fn inner_l4_first_byte(&self) -> u8 {
        self.buffer.as_ref()[self.inner_l4_offset()]
    }

    /// The offset of the inner TCP/UDP checksum in the message, when the
    /// quote is long enough to hold it (UDP always, TCP only when 18 bytes
    /// of its header are quoted).
    fn inner_l4_checksum_at(&self) -> Option<usize> {
        let at = self.inner_l4_offset()
            + match self.inner_protocol() {
                PROTO_UDP => field::UDP_CHECKSUM,
                PROTO_TCP => field::TCP_CHECKSUM,
                _ => return None,
            };
        (at + 2 <= self.len()).then_some(at)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpQuote<T> {
    /// Stores `v` at even offset `at` and folds the change into the ICMP
    /// checksum (RFC 1624 eqn. 3). Every field this view rewrites sits on
    /// an even offset of the message, so a word of the message is a word
    /// of the ICMP checksum.
    fn put_u16(&mut self, at: usize, v: u16) {
        let old = self.u16_at(at);
        if old == v {
            return;
        }
        self.buffer.as_mut()[at..at + 2].copy_from_slice(&v.to_be_bytes());
        let c = checksum::update_u16(self.checksum(), old, v);
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }

    fn put_u32(&mut self, at: usize, v: u32) {
        self.put_u16(at, (v >> 16) as u16);
        self.put_u16(at + 2, v as u16);
    }

    /// Sets one end (`side`) of the quoted datagram to `addr:port` (host
    /// order), keeping the inner IPv4 header checksum, the inner TCP/UDP
    /// checksum (when quoted; a UDP checksum of 0 stays 0, a computed 0
    /// becomes 0xffff as RFC 768 asks) and the ICMP checksum right, each
    /// with RFC 1624 updates. For another inner protocol only the address
    /// (and the header checksum) changes.
    ///
    /// Source: IPVS `ip_vs_nat_icmp` (which rewrites the same fields and
    /// recomputes the ICMP checksum in full).
    pub fn rewrite_inner(&mut self, side: QuoteSide, addr: u32, port: u16) {
        let (addr_at, port_at) = match side {
            QuoteSide::Src => (field::IN_SRC, field::L4_SRC_PORT),
            QuoteSide::Dst => (field::IN_DST, field::L4_DST_PORT),
        };
        let addr_at = field::INNER + addr_at;
        let old_addr = self.u32_at(addr_at);
        let ip_csum_at = field::INNER + field::IN_CHECKSUM;
        let ip_csum = checksum::update_u32(self.u16_at(ip_csum_at), old_addr, addr);
        self.put_u32(addr_at, addr);
        self.put_u16(ip_csum_at, ip_csum);
        let proto = self.inner_protocol();
        if (proto != PROTO_TCP && proto != PROTO_UDP) || self.inner_frag_offset() != 0 {
            return;
        }
        let port_at = self.inner_l4_offset() + port_at;
        let old_port = self.u16_at(port_at);
        self.put_u16(port_at, port);
        if let Some(at) = self.inner_l4_checksum_at() {
            let c = self.u16_at(at);
            if proto == PROTO_UDP && c == 0 {
                return;
            }
            let c = checksum::update_u32(checksum::update_u16(c, old_port, port), old_addr, addr);
            let c = if proto == PROTO_UDP && c == 0 {
                0xffff
            } else {
                c
            };
            self.put_u16(at, c);
        }
    }

    /// Sets the quoted TCP sequence number to `seq` (host order), keeping
    /// the inner TCP checksum (when quoted) and the ICMP checksum right
    /// with RFC 1624 updates. Nothing changes unless the quote is TCP with
    /// fragment offset 0.
    ///
    /// Source: DPVS `__dp_vs_xmit_icmp4`, which moves the quoted sequence
    /// number of a FullNAT connection between the two sides' spaces.
    pub fn set_inner_tcp_seq(&mut self, seq: u32) {
        if self.inner_protocol() != PROTO_TCP || self.inner_frag_offset() != 0 {
            return;
        }
        let at = self.inner_l4_offset() + field::TCP_SEQ;
        let old = self.u32_at(at);
        self.put_u32(at, seq);
        if let Some(c_at) = self.inner_l4_checksum_at() {
            let c = checksum::update_u32(self.u16_at(c_at), old, seq);
            self.put_u16(c_at, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The ICMP message (no IPv4 header) of type `ty`, code `code`, sent
    /// from `src` to `dst`, quoting the first `n` bytes of the datagram
    /// `inner`; checksums by etherparse.
    fn error_quoting(
        ty: u8,
        code: u8,
        src: [u8; 4],
        dst: [u8; 4],
        inner: &[u8],
        n: usize,
    ) -> Vec<u8> {
        let mut m = Vec::new();
        etherparse::PacketBuilder::ipv4(src, dst, 64)
            .icmpv4_raw(ty, code, [0; 4])
            .write(&mut m, &inner[..n])
            .unwrap();
        m[20..].to_vec()
    }

    /// Port unreachable from 10.1.0.11 about UDP 10.0.0.2:5000 ->
    /// 10.1.0.11:5353 (8 payload bytes quoted), checksums by etherparse.
    fn udp_unreachable() -> Vec<u8> {
        let mut inner = Vec::new();
        etherparse::PacketBuilder::ipv4([10, 0, 0, 2], [10, 1, 0, 11], 63)
            .udp(5000, 5353)
            .write(&mut inner, b"question")
            .unwrap();
        error_quoting(3, 3, [10, 1, 0, 11], [10, 0, 0, 2], &inner, 28)
    }

    #[test]
    fn test_parse() {
        let m = udp_unreachable();
        let q = IcmpQuote::new_checked(&m[..]).unwrap();
        assert_eq!((q.msg_type(), q.msg_code()), (3, 3));
        assert!(q.verify_checksum());
        assert_eq!(q.inner_header_len(), 20);
        assert_eq!(q.inner_protocol(), PROTO_UDP);
        assert_eq!(q.inner_src_addr(), 0x0a00_0002);
        assert_eq!(q.inner_dst_addr(), 0x0a01_000b);
        assert_eq!((q.inner_src_port(), q.inner_dst_port()), (5000, 5353));
        assert_eq!(q.inner_frag_offset(), 0);
        assert_eq!(q.next_hop_mtu(), 0);
        assert!(is_error_type(q.msg_type()) && !is_error_type(8));
    }

    #[test]
    fn test_parse_refusals() {
        let m = udp_unreachable();
        assert_eq!(
            IcmpQuote::new_checked(&m[..27]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            IcmpQuote::new_checked(&m[..35]).unwrap_err(),
            Error::Truncated
        );
        let mut b = m.clone();
        b[8] = 0x65;
        assert_eq!(
            IcmpQuote::new_checked(&b[..]).unwrap_err(),
            Error::BadVersion
        );
        b[8] = 0x44;
        assert_eq!(
            IcmpQuote::new_checked(&b[..]).unwrap_err(),
            Error::BadHeaderLen
        );
        // IHL 6 (24 bytes): the 36-byte message no longer holds 8 more.
        b[8] = 0x46;
        assert_eq!(
            IcmpQuote::new_checked(&b[..]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn test_rewrite_matches_a_rebuild() {
        // Rewriting the quoted destination 10.1.0.11:5353 -> 10.0.0.100:53
        // gives the bytes etherparse builds for that datagram.
        let mut m = udp_unreachable();
        let mut q = IcmpQuote::new_checked(&mut m[..]).unwrap();
        q.rewrite_inner(QuoteSide::Dst, 0x0a00_0064, 53);
        let mut inner = Vec::new();
        etherparse::PacketBuilder::ipv4([10, 0, 0, 2], [10, 0, 0, 100], 63)
            .udp(5000, 53)
            .write(&mut inner, b"question")
            .unwrap();
        assert_eq!(
            m,
            error_quoting(3, 3, [10, 1, 0, 11], [10, 0, 0, 2], &inner, 28)
        );
    }

    #[test]
    fn test_rewrite_keeps_udp_no_checksum() {
        let mut m = udp_unreachable();
        m[8 + 20 + 6] = 0;
        m[8 + 20 + 7] = 0;
        m[2] = 0;
        m[3] = 0;
        let c = checksum::checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        let mut q = IcmpQuote::new_checked(&mut m[..]).unwrap();
        q.rewrite_inner(QuoteSide::Src, 0x0a00_0064, 80);
        assert!(q.verify_checksum());
        assert_eq!(&m[34..36], &[0, 0]);
        assert_eq!(&m[28..30], &80u16.to_be_bytes());
    }

    #[test]
    fn test_set_inner_tcp_seq_matches_a_rebuild() {
        // A time exceeded quoting 20 bytes of TCP (checksum included):
        // moving the quoted sequence number 1029 -> 1001 gives the bytes
        // etherparse builds for that segment.
        let quote = |seq: u32| {
            let mut inner = Vec::new();
            etherparse::PacketBuilder::ipv4([10, 2, 0, 1], [10, 1, 0, 11], 63)
                .tcp(1024, 8080, seq, 64240)
                .ack(7)
                .write(&mut inner, b"data")
                .unwrap();
            error_quoting(11, 0, [10, 1, 0, 254], [10, 2, 0, 1], &inner, 40)
        };
        let mut m = quote(1029);
        let mut q = IcmpQuote::new_checked(&mut m[..]).unwrap();
        assert_eq!(q.inner_tcp_seq(), 1029);
        q.set_inner_tcp_seq(1001);
        assert_eq!(q.inner_tcp_seq(), 1001);
        assert_eq!(m, quote(1001));
        // UDP has no sequence number: nothing changes.
        let mut u = udp_unreachable();
        let before = u.clone();
        IcmpQuote::new_checked(&mut u[..])
            .unwrap()
            .set_inner_tcp_seq(1);
        assert_eq!(u, before);
    }

    proptest! {
        #[test]
        fn prop_checked_never_panics(data in proptest::collection::vec(any::<u8>(), 0..100),
                                     addr: u32, port: u16, src: bool) {
            let mut data = data;
            if let Ok(q) = IcmpQuote::new_checked(&data[..]) {
                let _ = (q.msg_type(), q.msg_code(), q.checksum(), q.next_hop_mtu());
                let _ = (q.inner_protocol(), q.inner_src_addr(), q.inner_dst_addr());
                let _ = (q.inner_src_port(), q.inner_dst_port(), q.inner_l4_first_byte());
                let _ = (q.inner_frag_offset(), q.verify_checksum(), q.len(), q.inner_tcp_seq());
            }
            let checked_before = IcmpQuote::new_checked(&data[..]).map(|q| q.verify_checksum());
            if let Ok(mut q) = IcmpQuote::new_checked(&mut data[..]) {
                let side = if src { QuoteSide::Src } else { QuoteSide::Dst };
                q.rewrite_inner(side, addr, port);
                q.set_inner_tcp_seq(addr.rotate_left(7));
                // A message whose checksum held still holds one.
                if checked_before == Ok(true) {
                    prop_assert!(q.verify_checksum());
                }
            }
        }
    }
}
