//! IPv4 header: a zero-copy view with in-place rewrites.
//!
//! Layer: dataplane wire, L3. The hot path reads the 5-tuple through this
//! view and rewrites addresses and TTL in place (NAT, FullNAT), keeping the
//! header checksum valid with RFC 1624 incremental updates.
//!
//! Guarantees: once [`Ipv4Packet::check_len`] has passed, no getter panics,
//! whatever the bytes: the header and the whole datagram (`total_len`) are
//! inside the buffer and the header is at least 20 bytes. Getters return
//! host order; addresses are `u32` in host order (`10.0.0.1` is
//! `0x0a00_0001`).
//!
//! Refuses (with [`Error`]): buffers shorter than 20 bytes, a version other
//! than 4, an IHL under 5, a header or total length that runs past the
//! buffer, a total length shorter than the header. It does not verify the
//! checksum, options or fragmentation: those are policy decisions of the
//! caller (fulcrum drops fragments and, for balanced traffic, options).

use super::checksum;
use super::{Error, Result};

/// IP protocol number of ICMP (IANA "Assigned Internet Protocol Numbers").
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// IP protocol number of IP-in-IP encapsulation (RFC 2003), used by the
/// tunnel forwarding method.
pub const PROTO_IPIP: u8 = 4;
/// Length in bytes of an IPv4 header without options (IHL 5).
pub const MIN_HEADER_LEN: usize = 20;
/// Length in bytes of the longest IPv4 header (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;

mod field {
    use core::ops::Range;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// Bit of the flags/fragment-offset word meaning "don't fragment".
const FLAG_DF: u16 = 0x4000;
/// Bit of the flags/fragment-offset word meaning "more fragments".
const FLAG_MF: u16 = 0x2000;
/// Mask of the 13-bit fragment offset.
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A read/write view of an IPv4 datagram held in `T`.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version|  IHL  |   DSCP    |ECN|          Total Length         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |         Identification        |0|D|M|      Fragment Offset    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Time to Live |    Protocol   |         Header Checksum       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       Source Address                          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Destination Address                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Options (IHL > 5)          |    Padding    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// Source: RFC 791 §3.1; DSCP/ECN split of the old TOS byte from RFC 2474
/// §3 and RFC 3168 §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without any check. Fixed-field getters and all setters
    /// panic if the buffer is shorter than 20 bytes; use
    /// [`Self::new_checked`] on untrusted input.
    pub const fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` and runs [`Self::check_len`].
    ///
    /// # Errors
    /// As [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the header's lengths against the buffer so that no getter can
    /// panic. The buffer may be longer than `total_len` (Ethernet padding
    /// of short frames); [`Self::payload`] excludes the excess.
    ///
    /// # Errors
    /// In this order:
    /// - [`Error::Truncated`] if the buffer is shorter than 20 bytes;
    /// - [`Error::BadVersion`] if the version is not 4;
    /// - [`Error::BadHeaderLen`] if IHL < 5 (RFC 791: "the minimum value for
    ///   a correct header is 5");
    /// - [`Error::Truncated`] if the header (IHL × 4 bytes) runs past the
    ///   buffer;
    /// - [`Error::BadTotalLen`] if the total length is shorter than the
    ///   header or longer than the buffer.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::BadVersion);
        }
        let header_len = self.header_len();
        if header_len < MIN_HEADER_LEN {
            return Err(Error::BadHeaderLen);
        }
        if header_len > len {
            return Err(Error::Truncated);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len || total_len > len {
            return Err(Error::BadTotalLen);
        }
        Ok(())
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u16_at(&self, r: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[r];
        u16::from_be_bytes([b[0], b[1]])
    }

    fn u32_at(&self, r: core::ops::Range<usize>) -> u32 {
        let b = &self.buffer.as_ref()[r];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Version field (high nibble of byte 0); 4 for a packet that passed
    /// `check_len`.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4), 0..=60; 20 without options.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The former TOS byte: DSCP in the high 6 bits, ECN in the low 2
    /// (RFC 2474 §3, RFC 3168 §5).
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Total length of the datagram (header + data) in bytes, host order.
    pub fn total_len(&self) -> u16 {
        self.u16_at(field::LENGTH)
    }

    /// Identification, host order.
    pub fn ident(&self) -> u16 {
        self.u16_at(field::IDENT)
    }

    /// Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.u16_at(field::FLG_OFF) & FLAG_DF != 0
    }

    /// More Fragments flag.
    pub fn more_frags(&self) -> bool {
        self.u16_at(field::FLG_OFF) & FLAG_MF != 0
    }

    /// Fragment offset in 8-byte units, exactly as on the wire (0..=8191);
    /// multiply by 8 for bytes.
    pub fn frag_offset(&self) -> u16 {
        self.u16_at(field::FLG_OFF) & FRAG_OFFSET_MASK
    }

    /// True if this datagram is a fragment: MF set or a non-zero offset
    /// (RFC 791 §3.2, "Fragmentation and Reassembly"). The director does not
    /// reassemble, because a non-first fragment has no ports to balance on.
    pub fn is_fragment(&self) -> bool {
        self.u16_at(field::FLG_OFF) & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }

    /// Time to live, in hops.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol number of the payload (see `PROTO_*`).
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum as stored, host order.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// Source address, host order.
    pub fn src_addr(&self) -> u32 {
        self.u32_at(field::SRC_ADDR)
    }

    /// Destination address, host order.
    pub fn dst_addr(&self) -> u32 {
        self.u32_at(field::DST_ADDR)
    }

    /// Options bytes (between byte 20 and the header length); empty
    /// without options. Never panics: clamped to the buffer.
    pub fn options(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        let end = self.header_len().min(buf.len());
        buf.get(MIN_HEADER_LEN..end).unwrap_or(&[])
    }

    /// True if the header checksum is correct: the ones'-complement sum of
    /// the whole header, checksum included, is 0xffff (RFC 1071 §1; RFC 791
    /// "Header Checksum").
    pub fn verify_checksum(&self) -> bool {
        let buf = self.buffer.as_ref();
        let header = &buf[..self.header_len().min(buf.len())];
        checksum::verifies(header)
    }

    /// The data after the header, up to `total_len`: Ethernet padding after
    /// the datagram is excluded. Never panics, even if setters made the
    /// lengths inconsistent after `check_len` (then the range is clamped to
    /// the buffer, possibly empty).
    pub fn payload(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        let (start, end) = payload_range(buf.len(), self.header_len(), self.total_len());
        &buf[start..end]
    }
}

/// What [`check_options`] found in an IPv4 options area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionsCheck {
    /// Every option is well formed and none routes by source.
    Ok,
    /// An option's length byte is missing, below 2, or runs past the
    /// header (RFC 791 §3.1 "Options": type-length-value after the two
    /// single-byte options).
    Malformed,
    /// Loose or strict source routing (types 131 and 137, RFC 791 §3.1),
    /// which Linux refuses by default (`accept_source_route = 0`) and
    /// RFC 1812 §5.2.4.1 lets a router refuse.
    SourceRoute,
}

/// IPv4 option type: End of Option List (RFC 791 §3.1), one byte.
pub const OPT_END: u8 = 0;
/// IPv4 option type: No Operation (RFC 791 §3.1), one byte.
pub const OPT_NOP: u8 = 1;
/// IPv4 option type: Loose Source and Record Route (RFC 791 §3.1).
pub const OPT_LSRR: u8 = 131;
/// IPv4 option type: Strict Source and Record Route (RFC 791 §3.1).
pub const OPT_SSRR: u8 = 137;

/// Walks the options area `opts` (the bytes between byte 20 and the header
/// length, as [`Ipv4Packet::options`] returns them) and says whether it is
/// well formed. Options other than source routes pass unchanged, whatever
/// their type: the director forwards them as a router would (RFC 1812
/// §5.2.4). Bytes after End of Option List are padding and are not read.
/// Never panics; reads each byte at most once (at most 40 bytes).
pub fn check_options(opts: &[u8]) -> OptionsCheck {
    let mut i = 0;
    while let Some(&kind) = opts.get(i) {
        match kind {
            OPT_END => return OptionsCheck::Ok,
            OPT_NOP => i += 1,
            _ => {
                let Some(&len) = opts.get(i + 1) else {
                    return OptionsCheck::Malformed;
                };
                let len = usize::from(len);
                if len < 2 || i + len > opts.len() {
                    return OptionsCheck::Malformed;
                }
                if kind == OPT_LSRR || kind == OPT_SSRR {
                    return OptionsCheck::SourceRoute;
                }
                i += len;
            }
        }
    }
    OptionsCheck::Ok
}

/// `header_len..total_len`, clamped so that `start <= end <= buf_len`.
fn payload_range(buf_len: usize, header_len: usize, total_len: u16) -> (usize, usize) {
    let end = usize::from(total_len).min(buf_len);
    let start = header_len.min(end);
    (start, end)
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn set_u16_at(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    fn set_u32_at(&mut self, r: core::ops::Range<usize>, v: u32) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the version nibble; only the low 4 bits of `version` are used.
    pub fn set_version(&mut self, version: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (version << 4);
    }

    /// Sets the header length from a value in bytes. The IHL stored is
    /// `(len / 4) & 0xf`, so pass a multiple of 4 in 20..=60.
    pub fn set_header_len(&mut self, len: usize) {
        let ihl = ((len / 4) & 0x0f) as u8;
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ihl;
    }

    /// Sets the former TOS byte (DSCP << 2 | ECN).
    pub fn set_dscp_ecn(&mut self, value: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = value;
    }

    /// Sets the total length (bytes, host order).
    pub fn set_total_len(&mut self, len: u16) {
        self.set_u16_at(field::LENGTH, len);
    }

    /// Sets the identification (host order).
    pub fn set_ident(&mut self, ident: u16) {
        self.set_u16_at(field::IDENT, ident);
    }

    /// Sets the DF and MF flags and the fragment offset (8-byte units, only
    /// the low 13 bits are used); the reserved bit is cleared, as RFC 791
    /// requires ("must be zero").
    pub fn set_flags_and_frag(&mut self, dont_frag: bool, more_frags: bool, frag_offset: u16) {
        let mut v = frag_offset & FRAG_OFFSET_MASK;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        self.set_u16_at(field::FLG_OFF, v);
    }

    /// Sets the TTL (hops). Does not touch the checksum; see
    /// [`Self::rewrite_ttl`].
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets the protocol number.
    pub fn set_protocol(&mut self, protocol: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol;
    }

    /// Stores a header checksum (host order).
    pub fn set_checksum(&mut self, csum: u16) {
        self.set_u16_at(field::CHECKSUM, csum);
    }

    /// Sets the source address (host order). Does not touch any checksum;
    /// see [`Self::rewrite_src_addr`].
    pub fn set_src_addr(&mut self, addr: u32) {
        self.set_u32_at(field::SRC_ADDR, addr);
    }

    /// Sets the destination address (host order). Does not touch any
    /// checksum; see [`Self::rewrite_dst_addr`].
    pub fn set_dst_addr(&mut self, addr: u32) {
        self.set_u32_at(field::DST_ADDR, addr);
    }

    /// Computes the header checksum from scratch over `header_len` bytes
    /// (RFC 1071) and stores it. Use when building a header; for rewrites
    /// the `rewrite_*` methods are cheaper. The header length is clamped to
    /// the buffer, so this does not panic on a buffer of 20 bytes or more.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = self.header_len();
        let buf = self.buffer.as_ref();
        let csum = checksum::checksum(&buf[..header_len.min(buf.len())]);
        self.set_checksum(csum);
    }

    /// Sets the source address and updates the header checksum
    /// incrementally (RFC 1624 eqn. 3). Returns the old address (host
    /// order) so the caller can fix the TCP/UDP pseudo-header checksum with
    /// `adjust_checksum_for_addr`.
    pub fn rewrite_src_addr(&mut self, addr: u32) -> u32 {
        let old = self.src_addr();
        self.set_src_addr(addr);
        self.set_checksum(checksum::update_u32(self.checksum(), old, addr));
        old
    }

    /// Sets the destination address and updates the header checksum
    /// incrementally (RFC 1624 eqn. 3). Returns the old address (host
    /// order), for the L4 pseudo-header update.
    pub fn rewrite_dst_addr(&mut self, addr: u32) -> u32 {
        let old = self.dst_addr();
        self.set_dst_addr(addr);
        self.set_checksum(checksum::update_u32(self.checksum(), old, addr));
        old
    }

    /// Sets the TTL and updates the header checksum incrementally; the TTL
    /// shares its 16-bit word with the protocol byte (RFC 1624 eqn. 3,
    /// RFC 1141 for the TTL-decrement case).
    pub fn rewrite_ttl(&mut self, ttl: u8) {
        let proto = self.protocol();
        let old = u16::from_be_bytes([self.ttl(), proto]);
        let new = u16::from_be_bytes([ttl, proto]);
        self.set_ttl(ttl);
        self.set_checksum(checksum::update_u16(self.checksum(), old, new));
    }

    /// Mutable access to the data after the header up to `total_len`
    /// (clamped like [`Self::payload`]).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = payload_range(
            self.buffer.as_ref().len(),
            self.header_len(),
            self.total_len(),
        );
        &mut self.buffer.as_mut()[start..end]
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn test_check_options() {
        assert_eq!(check_options(&[]), OptionsCheck::Ok);
        assert_eq!(
            check_options(&[OPT_NOP, OPT_NOP, OPT_NOP, OPT_END]),
            OptionsCheck::Ok
        );
        // Router Alert (148, length 4), then padding after End.
        assert_eq!(check_options(&[148, 4, 0, 0]), OptionsCheck::Ok);
        assert_eq!(
            check_options(&[OPT_END, 0xff, 0xff, 0xff]),
            OptionsCheck::Ok
        );
        // Length runs past the area, length below 2, length byte missing.
        assert_eq!(check_options(&[148, 8, 0, 0]), OptionsCheck::Malformed);
        assert_eq!(check_options(&[148, 1, 0, 0]), OptionsCheck::Malformed);
        assert_eq!(
            check_options(&[OPT_NOP, OPT_NOP, OPT_NOP, 148]),
            OptionsCheck::Malformed
        );
        // Loose and strict source routes, even when well formed.
        assert_eq!(
            check_options(&[OPT_LSRR, 7, 4, 10, 0, 0, 1, 0]),
            OptionsCheck::SourceRoute
        );
        assert_eq!(
            check_options(&[OPT_NOP, OPT_SSRR, 3, 4]),
            OptionsCheck::SourceRoute
        );
    }

    use super::*;
    use proptest::prelude::*;

    /// A TCP SYN 192.168.1.10:54321 -> 10.0.0.100:80, DSCP/ECN 0x10, id
    /// 0x1c46, DF, TTL 64, 40 bytes of TCP (20 + MSS, SACK-perm, TS, WS):
    /// IP header checksum 0x5250 as generated by scapy.
    const SYN: [u8; 60] = [
        0x45, 0x10, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x52, 0x50, 0xc0, 0xa8, 0x01,
        0x0a, 0x0a, 0x00, 0x00, 0x64, // IP
        0xd4, 0x31, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa,
        0xf0, 0x61, 0x89, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x01,
        0xe2, 0x40, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07, // TCP
    ];

    /// IGMPv2 report with a Router Alert option (IHL 6), TTL 1.
    const WITH_OPTIONS: [u8; 32] = [
        0x46, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0x01, 0x02, 0x3a, 0xbf, 0x0a, 0x00, 0x00,
        0x02, 0xe0, 0x00, 0x00, 0x16, 0x94, 0x04, 0x00, 0x00, 0x22, 0x00, 0xfa, 0x02, 0x00, 0x00,
        0x00, 0x01,
    ];

    #[test]
    fn test_parse() {
        let packet = Ipv4Packet::new_checked(&SYN[..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.dscp_ecn(), 0x10);
        assert_eq!(packet.total_len(), 60);
        assert_eq!(packet.ident(), 0x1c46);
        assert!(packet.dont_frag());
        assert!(!packet.more_frags());
        assert_eq!(packet.frag_offset(), 0);
        assert!(!packet.is_fragment());
        assert_eq!(packet.ttl(), 64);
        assert_eq!(packet.protocol(), PROTO_TCP);
        assert_eq!(packet.checksum(), 0x5250);
        assert_eq!(packet.src_addr(), 0xc0a8_010a);
        assert_eq!(packet.dst_addr(), 0x0a00_0064);
        assert!(packet.verify_checksum());
        assert!(packet.options().is_empty());
        assert_eq!(packet.payload(), &SYN[20..]);
    }

    #[test]
    fn test_parse_options() {
        let packet = Ipv4Packet::new_checked(&WITH_OPTIONS[..]).unwrap();
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(packet.ttl(), 1);
        assert_eq!(packet.protocol(), 2);
        assert_eq!(packet.dst_addr(), 0xe000_0016);
        assert!(packet.verify_checksum());
        assert_eq!(packet.payload(), &WITH_OPTIONS[24..]);
    }

    #[test]
    fn test_parse_padding_excluded() {
        // The 32-byte IGMP datagram padded to the 46-byte Ethernet
        // minimum: payload stops at total_len.
        let mut buf = [0u8; 46];
        buf[..32].copy_from_slice(&WITH_OPTIONS);
        buf[32..].fill(0xaa);
        let packet = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.payload(), &WITH_OPTIONS[24..]);
    }

    #[test]
    fn test_bad_checksum() {
        let mut buf = SYN;
        buf[11] ^= 0x01;
        assert!(!Ipv4Packet::new_checked(&buf[..]).unwrap().verify_checksum());
        // A flipped payload byte is not covered by the header checksum.
        let mut buf = SYN;
        buf[40] ^= 0xff;
        assert!(Ipv4Packet::new_checked(&buf[..]).unwrap().verify_checksum());
    }

    #[test]
    fn test_emit() {
        let mut buf = [0u8; 28];
        let mut packet = Ipv4Packet::new_unchecked(&mut buf[..]);
        packet.set_version(4);
        packet.set_header_len(20);
        packet.set_dscp_ecn(0x10);
        packet.set_total_len(28);
        packet.set_ident(0x1c46);
        packet.set_flags_and_frag(true, false, 0);
        packet.set_ttl(64);
        packet.set_protocol(PROTO_UDP);
        packet.set_src_addr(0xc0a8_010a);
        packet.set_dst_addr(0x0a00_0064);
        packet
            .payload_mut()
            .copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        packet.fill_checksum();
        assert!(packet.verify_checksum());
        let packet = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.src_addr(), 0xc0a8_010a);
        assert_eq!(packet.payload(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        // Same header bytes as the SYN apart from protocol, length and
        // checksum.
        assert_eq!(&buf[..2], &SYN[..2]);
        assert_eq!(&buf[4..9], &SYN[4..9]);
        assert_eq!(&buf[12..20], &SYN[12..20]);
        assert_eq!(&buf[2..4], &[0x00, 0x1c]);
        assert_eq!(buf[9], 17);
        assert_eq!(crate::wire::checksum::checksum(&buf[..20]), 0);
    }

    #[test]
    fn test_fill_checksum_matches_capture() {
        let mut buf = SYN;
        buf[10] = 0;
        buf[11] = 0;
        let mut packet = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        packet.fill_checksum();
        assert_eq!(packet.checksum(), 0x5250);
        let mut buf = WITH_OPTIONS;
        buf[10] = 0xde;
        buf[11] = 0xad;
        let mut packet = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        packet.fill_checksum();
        assert_eq!(packet.checksum(), 0x3abf);
    }

    #[test]
    fn test_fragment_fields() {
        let mut buf = SYN;
        let mut packet = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        packet.set_flags_and_frag(false, true, 185);
        assert!(!packet.dont_frag());
        assert!(packet.more_frags());
        assert_eq!(packet.frag_offset(), 185); // 1480 bytes
        assert!(packet.is_fragment());
        assert_eq!(&buf[6..8], &[0x20, 0xb9]);
        let mut packet = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        packet.set_flags_and_frag(false, false, 0xffff); // masked to 13 bits
        assert_eq!(packet.frag_offset(), 0x1fff);
        assert!(!packet.more_frags() && !packet.dont_frag());
        assert!(packet.is_fragment());
    }

    #[test]
    fn test_rewrite_addrs_and_ttl() {
        let mut buf = SYN;
        let mut packet = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        assert_eq!(packet.rewrite_dst_addr(0xac10_0005), 0x0a00_0064);
        assert_eq!(packet.rewrite_src_addr(0x0a00_0001), 0xc0a8_010a);
        packet.rewrite_ttl(63);
        assert!(packet.verify_checksum());
        let incremental = packet.checksum();
        packet.fill_checksum();
        assert_eq!(packet.checksum(), incremental);
        assert_eq!(packet.dst_addr(), 0xac10_0005);
        assert_eq!(&buf[12..20], &[10, 0, 0, 1, 172, 16, 0, 5]);
        assert_eq!(buf[8], 63);
    }

    #[test]
    fn test_parse_truncated() {
        assert_eq!(
            Ipv4Packet::new_checked(&SYN[..19]).unwrap_err(),
            Error::Truncated
        );
        // IHL 6 but only 20 bytes present.
        assert_eq!(
            Ipv4Packet::new_checked(&WITH_OPTIONS[..22]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn test_parse_bad_version() {
        let mut buf = SYN;
        buf[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).unwrap_err(),
            Error::BadVersion
        );
    }

    #[test]
    fn test_parse_bad_ihl() {
        let mut buf = SYN;
        buf[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).unwrap_err(),
            Error::BadHeaderLen
        );
        buf[0] = 0x40;
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).unwrap_err(),
            Error::BadHeaderLen
        );
    }

    #[test]
    fn test_parse_total_len_beyond_frame() {
        let mut buf = SYN;
        buf[3] = 61;
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).unwrap_err(),
            Error::BadTotalLen
        );
        // Also when the frame was cut short.
        assert_eq!(
            Ipv4Packet::new_checked(&SYN[..59]).unwrap_err(),
            Error::BadTotalLen
        );
    }

    #[test]
    fn test_parse_total_len_below_header() {
        let mut buf = WITH_OPTIONS;
        buf[2] = 0;
        buf[3] = 20; // header is 24
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).unwrap_err(),
            Error::BadTotalLen
        );
    }

    #[test]
    fn test_payload_clamped_after_bad_setters() {
        let mut buf = SYN;
        let mut packet = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        packet.set_total_len(9000);
        assert_eq!(packet.payload().len(), 40);
        packet.set_header_len(60);
        packet.set_total_len(30);
        assert!(packet.payload().is_empty());
        assert!(packet.payload_mut().is_empty());
        packet.fill_checksum();
    }

    proptest! {
        #[test]
        fn prop_checked_getters_never_panic(
            data in proptest::collection::vec(any::<u8>(), 0..96),
            plausible in any::<bool>(),
            ihl in 5u8..16,
            slack in 0usize..8,
        ) {
            // Half the cases get version 4, a valid IHL and a total length
            // at or a little below the buffer length, so that `check_len`
            // passes often enough to exercise the getters; the other half
            // stay random to exercise the refusals.
            let mut data = data;
            if plausible && data.len() >= MIN_HEADER_LEN {
                data[0] = 0x40 | ihl;
                let total = data.len().saturating_sub(slack) as u16;
                data[2..4].copy_from_slice(&total.to_be_bytes());
            }
            if let Ok(packet) = Ipv4Packet::new_checked(&data[..]) {
                let _ = (packet.version(), packet.dscp_ecn(), packet.ident());
                let _ = (packet.dont_frag(), packet.more_frags(), packet.frag_offset());
                let _ = (packet.is_fragment(), packet.ttl(), packet.protocol());
                let _ = (packet.checksum(), packet.src_addr(), packet.dst_addr());
                let _ = (packet.verify_checksum(), packet.options());
                let payload = packet.payload();
                prop_assert_eq!(
                    payload.len(),
                    usize::from(packet.total_len()) - packet.header_len()
                );
                prop_assert!(packet.header_len() >= MIN_HEADER_LEN);
            }
        }
    }
}
