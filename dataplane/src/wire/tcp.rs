//! TCP header: a zero-copy view with in-place port rewrites.
//!
//! Layer: dataplane wire, L4. The worker reads ports and flags through this
//! view to find or create a connection and to drive the IPVS-style TCP state
//! machine; NAT and FullNAT rewrite ports and fix the checksum
//! incrementally, including the pseudo-header part when the IP layer
//! changed an address.
//!
//! Guarantees: once [`TcpPacket::check_len`] has passed, no getter panics,
//! whatever the bytes. Getters return host order. The view spans exactly
//! one segment: the caller slices the buffer to the IPv4 payload, so the
//! segment length used by the checksum is the buffer length.
//!
//! Refuses (with [`Error`]): buffers shorter than 20 bytes, a data offset
//! under 5, a header longer than the buffer. Options are exposed as raw
//! bytes and not parsed here.

use super::checksum;
use super::ipv4::PROTO_TCP;
use super::{Error, Result};

/// FIN: no more data from sender (RFC 9293 §3.1).
pub const FLAG_FIN: u8 = 0x01;
/// SYN: synchronize sequence numbers.
pub const FLAG_SYN: u8 = 0x02;
/// RST: reset the connection.
pub const FLAG_RST: u8 = 0x04;
/// PSH: push function.
pub const FLAG_PSH: u8 = 0x08;
/// ACK: acknowledgment field is significant.
pub const FLAG_ACK: u8 = 0x10;
/// URG: urgent pointer field is significant.
pub const FLAG_URG: u8 = 0x20;
/// ECE: ECN-Echo (RFC 3168 §6.1).
pub const FLAG_ECE: u8 = 0x40;
/// CWR: congestion window reduced (RFC 3168 §6.1).
pub const FLAG_CWR: u8 = 0x80;
/// Length in bytes of a TCP header without options (data offset 5).
pub const TCP_MIN_HEADER_LEN: usize = 20;

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WIN_SIZE: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// A read/write view of a TCP segment held in `T` (header, options and
/// data, nothing after).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |          Source Port          |       Destination Port        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                        Sequence Number                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Acknowledgment Number                      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Data |       |C|E|U|A|P|R|S|F|                               |
/// | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
/// |       |       |R|E|G|K|H|T|N|N|                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |           Checksum            |         Urgent Pointer        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                           [Options]                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                             Data ...
/// ```
///
/// Source: RFC 9293 §3.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buffer` without any check. Fixed-field getters and all setters
    /// panic if the buffer is shorter than 20 bytes; use
    /// [`Self::new_checked`] on untrusted input.
    pub const fn new_unchecked(buffer: T) -> TcpPacket<T> {
        TcpPacket { buffer }
    }

    /// Wraps `buffer` and runs [`Self::check_len`].
    ///
    /// # Errors
    /// As [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<TcpPacket<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the header length against the buffer so that no getter can
    /// panic.
    ///
    /// # Errors
    /// - [`Error::Truncated`] if the buffer is shorter than 20 bytes;
    /// - [`Error::BadHeaderLen`] if the data offset is under 5 (RFC 9293
    ///   §3.1: the header is at least 5 32-bit words);
    /// - [`Error::Truncated`] if the header (data offset × 4 bytes) runs
    ///   past the buffer.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < TCP_MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len < TCP_MIN_HEADER_LEN {
            return Err(Error::BadHeaderLen);
        }
        if header_len > len {
            return Err(Error::Truncated);
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

    /// Source port, host order.
    pub fn src_port(&self) -> u16 {
        self.u16_at(field::SRC_PORT)
    }

    /// Destination port, host order.
    pub fn dst_port(&self) -> u16 {
        self.u16_at(field::DST_PORT)
    }

    /// Sequence number, host order.
    pub fn seq_number(&self) -> u32 {
        self.u32_at(field::SEQ_NUM)
    }

    /// Acknowledgment number, host order (meaningful only with ACK set).
    pub fn ack_number(&self) -> u32 {
        self.u32_at(field::ACK_NUM)
    }

    /// Header length in bytes (data offset × 4), 0..=60; 20 without
    /// options.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The eight flag bits CWR..FIN of byte 13 (see `FLAG_*`). The four
    /// reserved bits of byte 12 are not included.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// FIN flag.
    pub fn fin(&self) -> bool {
        self.flags() & FLAG_FIN != 0
    }

    /// SYN flag.
    pub fn syn(&self) -> bool {
        self.flags() & FLAG_SYN != 0
    }

    /// RST flag.
    pub fn rst(&self) -> bool {
        self.flags() & FLAG_RST != 0
    }

    /// PSH flag.
    pub fn psh(&self) -> bool {
        self.flags() & FLAG_PSH != 0
    }

    /// ACK flag.
    pub fn ack(&self) -> bool {
        self.flags() & FLAG_ACK != 0
    }

    /// URG flag.
    pub fn urg(&self) -> bool {
        self.flags() & FLAG_URG != 0
    }

    /// Window, host order, unscaled (as on the wire).
    pub fn window_len(&self) -> u16 {
        self.u16_at(field::WIN_SIZE)
    }

    /// Checksum as stored, host order.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// Urgent pointer, host order (offset from the sequence number).
    pub fn urgent_at(&self) -> u16 {
        self.u16_at(field::URGENT)
    }

    /// Option bytes between byte 20 and the header length (raw, unparsed).
    /// Never panics: clamped to the buffer.
    pub fn options(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        let end = self.header_len().min(buf.len());
        buf.get(TCP_MIN_HEADER_LEN..end).unwrap_or(&[])
    }

    /// The data after the header, to the end of the buffer. Never panics:
    /// empty if the header length exceeds the buffer.
    pub fn payload(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        buf.get(self.header_len()..).unwrap_or(&[])
    }

    /// True if the checksum over the pseudo header (`src`, `dst` in host
    /// order, protocol 6, length = buffer length) and the whole buffer is
    /// correct. The buffer must be exactly the segment (the IPv4 payload).
    ///
    /// Source: RFC 9293 §3.1 "Checksum".
    pub fn verify_checksum(&self, src: u32, dst: u32) -> bool {
        checksum::fold(segment_sum(self.buffer.as_ref(), src, dst)) == 0xffff
    }
}

/// Pseudo header + segment, unfolded. A segment longer than 65535 bytes
/// cannot come from an IPv4 datagram; its length is truncated to 16 bits
/// like the pseudo-header field would be.
fn segment_sum(segment: &[u8], src: u32, dst: u32) -> u32 {
    let pseudo = checksum::pseudo_header_v4(src, dst, PROTO_TCP, segment.len() as u16);
    checksum::add(pseudo, checksum::sum(segment))
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn set_u16_at(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    fn set_u32_at(&mut self, r: core::ops::Range<usize>, v: u32) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the source port (host order); the checksum is not touched, see
    /// [`Self::rewrite_src_port`].
    pub fn set_src_port(&mut self, port: u16) {
        self.set_u16_at(field::SRC_PORT, port);
    }

    /// Sets the destination port (host order); the checksum is not touched,
    /// see [`Self::rewrite_dst_port`].
    pub fn set_dst_port(&mut self, port: u16) {
        self.set_u16_at(field::DST_PORT, port);
    }

    /// Sets the sequence number (host order).
    pub fn set_seq_number(&mut self, seq: u32) {
        self.set_u32_at(field::SEQ_NUM, seq);
    }

    /// Sets the acknowledgment number (host order).
    pub fn set_ack_number(&mut self, ack: u32) {
        self.set_u32_at(field::ACK_NUM, ack);
    }

    /// Sets the header length from a value in bytes; the data offset stored
    /// is `(len / 4) & 0xf`, so pass a multiple of 4 in 20..=60. The
    /// reserved bits are preserved.
    pub fn set_header_len(&mut self, len: usize) {
        let off = ((len / 4) & 0x0f) as u8;
        let b = &mut self.buffer.as_mut()[field::DATA_OFF];
        *b = (*b & 0x0f) | (off << 4);
    }

    /// Sets all eight flag bits of byte 13 at once (see `FLAG_*`).
    pub fn set_flags(&mut self, flags: u8) {
        self.buffer.as_mut()[field::FLAGS] = flags;
    }

    /// Sets the window (host order, unscaled).
    pub fn set_window_len(&mut self, window: u16) {
        self.set_u16_at(field::WIN_SIZE, window);
    }

    /// Stores a checksum (host order).
    pub fn set_checksum(&mut self, csum: u16) {
        self.set_u16_at(field::CHECKSUM, csum);
    }

    /// Sets the urgent pointer (host order).
    pub fn set_urgent_at(&mut self, urgent: u16) {
        self.set_u16_at(field::URGENT, urgent);
    }

    /// Computes the checksum from scratch over the pseudo header (`src`,
    /// `dst` host order) and the whole buffer, and stores it. Use when
    /// building a segment; rewrites should use the incremental methods.
    ///
    /// Source: RFC 9293 §3.1 "Checksum", RFC 1071.
    pub fn fill_checksum(&mut self, src: u32, dst: u32) {
        self.set_checksum(0);
        let csum = !checksum::fold(segment_sum(self.buffer.as_ref(), src, dst));
        self.set_checksum(csum);
    }

    /// Sets the source port and updates the checksum incrementally
    /// (RFC 1624 eqn. 3). Returns the old port (host order).
    pub fn rewrite_src_port(&mut self, port: u16) -> u16 {
        let old = self.src_port();
        self.set_src_port(port);
        self.set_checksum(checksum::update_u16(self.checksum(), old, port));
        old
    }

    /// Sets the destination port and updates the checksum incrementally
    /// (RFC 1624 eqn. 3). Returns the old port (host order).
    pub fn rewrite_dst_port(&mut self, port: u16) -> u16 {
        let old = self.dst_port();
        self.set_dst_port(port);
        self.set_checksum(checksum::update_u16(self.checksum(), old, port));
        old
    }

    /// Updates the checksum for a pseudo-header address that the IP layer
    /// changed from `old` to `new` (host order), e.g. the value returned by
    /// `Ipv4Packet::rewrite_dst_addr`. The segment bytes are untouched.
    ///
    /// Source: RFC 1624 eqn. 3; the pseudo header is covered by the TCP
    /// checksum (RFC 9293 §3.1), so NAT must fix it (RFC 3022 §4.2).
    pub fn adjust_checksum_for_addr(&mut self, old: u32, new: u32) {
        self.set_checksum(checksum::update_u32(self.checksum(), old, new));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::Ipv4Packet;
    use proptest::prelude::*;

    const SRC: u32 = 0xc0a8_010a; // 192.168.1.10
    const DST: u32 = 0x0a00_0064; // 10.0.0.100

    /// The segment of a captured SYN 192.168.1.10:54321 -> 10.0.0.100:80:
    /// seq 0x12345678, window 64240, options MSS 1460, SACK-permitted,
    /// timestamps (123456, 0), NOP, window scale 7. Checksum 0x6189 as
    /// generated by scapy.
    const SYN: [u8; 40] = [
        0xd4, 0x31, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa,
        0xf0, 0x61, 0x89, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x01,
        0xe2, 0x40, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    #[test]
    fn test_parse() {
        let packet = TcpPacket::new_checked(&SYN[..]).unwrap();
        assert_eq!(packet.src_port(), 54321);
        assert_eq!(packet.dst_port(), 80);
        assert_eq!(packet.seq_number(), 0x1234_5678);
        assert_eq!(packet.ack_number(), 0);
        assert_eq!(packet.header_len(), 40);
        assert_eq!(packet.flags(), FLAG_SYN);
        assert!(packet.syn());
        assert!(!packet.ack() && !packet.fin() && !packet.rst() && !packet.psh() && !packet.urg());
        assert_eq!(packet.window_len(), 64240);
        assert_eq!(packet.checksum(), 0x6189);
        assert_eq!(packet.urgent_at(), 0);
        assert_eq!(packet.options(), &SYN[20..]);
        assert_eq!(&packet.options()[..4], &[0x02, 0x04, 0x05, 0xb4]); // MSS 1460
        assert!(packet.payload().is_empty());
        assert!(packet.verify_checksum(SRC, DST));
        assert!(!packet.verify_checksum(SRC, DST + 1));
    }

    #[test]
    fn test_parse_with_payload() {
        // PSH|ACK with 5 data bytes, no options.
        let mut buf = [0u8; 25];
        buf[..20].copy_from_slice(&[
            0x00, 0x50, 0xd4, 0x31, 0xab, 0xcd, 0x00, 0x01, 0x12, 0x34, 0x56, 0x79, 0x50, 0x18,
            0x01, 0xf5, 0x00, 0x00, 0x00, 0x00,
        ]);
        buf[20..].copy_from_slice(b"hello");
        let mut packet = TcpPacket::new_checked(&mut buf[..]).unwrap();
        packet.fill_checksum(DST, SRC);
        assert!(packet.verify_checksum(DST, SRC));
        assert_eq!(packet.flags(), FLAG_PSH | FLAG_ACK);
        assert!(packet.psh() && packet.ack());
        assert_eq!(packet.ack_number(), 0x1234_5679);
        assert_eq!(packet.payload(), b"hello");
        assert!(packet.options().is_empty());
    }

    #[test]
    fn test_emit() {
        let mut buf = [0u8; 40];
        let mut packet = TcpPacket::new_unchecked(&mut buf[..]);
        packet.set_src_port(54321);
        packet.set_dst_port(80);
        packet.set_seq_number(0x1234_5678);
        packet.set_ack_number(0);
        packet.set_header_len(40);
        packet.set_flags(FLAG_SYN);
        packet.set_window_len(64240);
        packet.set_urgent_at(0);
        buf[20..].copy_from_slice(&SYN[20..]);
        let mut packet = TcpPacket::new_checked(&mut buf[..]).unwrap();
        packet.fill_checksum(SRC, DST);
        assert_eq!(buf, SYN);
    }

    #[test]
    fn test_set_header_len_keeps_reserved() {
        let mut buf = SYN;
        buf[12] = 0xa5;
        let mut packet = TcpPacket::new_checked(&mut buf[..]).unwrap();
        packet.set_header_len(24);
        assert_eq!(packet.header_len(), 24);
        assert_eq!(buf[12], 0x65);
    }

    #[test]
    fn test_rewrite_nat() {
        // DNAT as the masq forwarding method does: VIP:80 -> RIP:8080, then
        // SNAT back on the reply path is the mirror image.
        let mut frame = [0u8; 60];
        frame[..20].copy_from_slice(&[
            0x45, 0x10, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x52, 0x50, 0xc0, 0xa8,
            0x01, 0x0a, 0x0a, 0x00, 0x00, 0x64,
        ]);
        frame[20..].copy_from_slice(&SYN);
        let rip = 0xac10_0005;
        let mut ip = Ipv4Packet::new_checked(&mut frame[..]).unwrap();
        let old = ip.rewrite_dst_addr(rip);
        let mut tcp = TcpPacket::new_checked(ip.payload_mut()).unwrap();
        tcp.adjust_checksum_for_addr(old, rip);
        assert_eq!(tcp.rewrite_dst_port(8080), 80);
        assert!(tcp.verify_checksum(SRC, rip));
        let incremental = tcp.checksum();
        tcp.fill_checksum(SRC, rip);
        assert_eq!(tcp.checksum(), incremental);
        assert_eq!(tcp.rewrite_src_port(1024), 54321);
        assert!(tcp.verify_checksum(SRC, rip));
        assert_eq!(&frame[20..24], &[0x04, 0x00, 0x1f, 0x90]);
    }

    #[test]
    fn test_parse_truncated() {
        assert_eq!(
            TcpPacket::new_checked(&SYN[..19]).unwrap_err(),
            Error::Truncated
        );
        // Data offset 10 (40 bytes) but only 39 present.
        assert_eq!(
            TcpPacket::new_checked(&SYN[..39]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn test_parse_bad_data_offset() {
        let mut buf = SYN;
        buf[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&buf[..]).unwrap_err(),
            Error::BadHeaderLen
        );
        buf[12] = 0x00;
        assert_eq!(
            TcpPacket::new_checked(&buf[..]).unwrap_err(),
            Error::BadHeaderLen
        );
    }

    proptest! {
        #[test]
        fn prop_checked_getters_never_panic(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(packet) = TcpPacket::new_checked(&data[..]) {
                let _ = (packet.src_port(), packet.dst_port(), packet.seq_number());
                let _ = (packet.ack_number(), packet.flags(), packet.fin(), packet.syn());
                let _ = (packet.rst(), packet.psh(), packet.ack(), packet.urg());
                let _ = (packet.window_len(), packet.checksum(), packet.urgent_at());
                let _ = packet.verify_checksum(1, 2);
                let hl = packet.header_len();
                prop_assert!(hl >= TCP_MIN_HEADER_LEN);
                prop_assert_eq!(packet.options().len(), hl - TCP_MIN_HEADER_LEN);
                prop_assert_eq!(packet.payload().len(), data.len() - hl);
            }
        }

        #[test]
        fn prop_fill_then_verify(
            data in proptest::collection::vec(any::<u8>(), 20..120),
            src in any::<u32>(),
            dst in any::<u32>(),
        ) {
            let mut data = data;
            data[12] = 0x50;
            let mut packet = TcpPacket::new_checked(&mut data[..]).unwrap();
            packet.fill_checksum(src, dst);
            prop_assert!(packet.verify_checksum(src, dst));
        }
    }
}
