//! ICMPv4 message header: a zero-copy view.
//!
//! Layer: dataplane wire, beside TCP/UDP. The director answers echo
//! requests to its own addresses and, like IPVS, relays ICMP errors
//! (destination unreachable, time exceeded) to the connection they refer
//! to: the error's [`Icmpv4Packet::data`] holds the offending IP header and
//! at least 8 bytes of its payload, which the caller views with
//! `Ipv4Packet` and rewrites before fixing this checksum.
//!
//! Guarantees: once [`Icmpv4Packet::check_len`] has passed, no getter
//! panics, whatever the bytes. Getters return host order.
//!
//! Refuses: buffers shorter than the 8-byte header. Types and codes are not
//! validated; the caller decides which ones it handles. The view spans the
//! whole message: the caller slices the buffer to the IPv4 payload, since
//! the checksum covers exactly the message.

use super::checksum;
use super::{Error, Result};

/// Echo reply (RFC 792).
pub const TYPE_ECHO_REPLY: u8 = 0;
/// Destination unreachable (RFC 792).
pub const TYPE_DEST_UNREACHABLE: u8 = 3;
/// Echo request (RFC 792).
pub const TYPE_ECHO_REQUEST: u8 = 8;
/// Time exceeded (RFC 792).
pub const TYPE_TIME_EXCEEDED: u8 = 11;
/// Destination unreachable code: port unreachable (RFC 792).
pub const CODE_PORT_UNREACHABLE: u8 = 3;
/// Destination unreachable code: fragmentation needed and DF set; the
/// next-hop MTU is in the low 16 bits of the rest of header (RFC 1191 §4).
pub const CODE_FRAG_NEEDED: u8 = 4;
/// Length in bytes of the ICMP header: type, code, checksum, rest of
/// header.
pub const ICMP_HEADER_LEN: usize = 8;

mod field {
    use core::ops::Range;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    pub const DATA: usize = 8;
}

/// A read/write view of an ICMPv4 message held in `T`.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     Type      |     Code      |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Rest of header (echo: Identifier | Sequence Number;         |
/// |   errors: unused / next-hop MTU / pointer)                    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Data (echo: payload; errors: Internet Header + 64 bits of   |
/// |   Original Data Datagram) ...                                 |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// Source: RFC 792 ("Message Formats").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps `buffer` without any check. Getters and setters panic if it is
    /// shorter than [`ICMP_HEADER_LEN`]; use [`Self::new_checked`] on
    /// untrusted input.
    pub const fn new_unchecked(buffer: T) -> Icmpv4Packet<T> {
        Icmpv4Packet { buffer }
    }

    /// Wraps `buffer` and runs [`Self::check_len`].
    ///
    /// # Errors
    /// [`Error::Truncated`] if the buffer is shorter than 8 bytes.
    pub fn new_checked(buffer: T) -> Result<Icmpv4Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the 8-byte header is present, so that no getter can
    /// panic.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the buffer is shorter than 8 bytes.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < ICMP_HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u16_at(&self, r: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[r];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Message type (see `TYPE_*`).
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code (meaning depends on the type).
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum as stored, host order.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// Echo identifier, host order (meaningful for echo request/reply).
    pub fn echo_ident(&self) -> u16 {
        self.u16_at(field::ECHO_IDENT)
    }

    /// Echo sequence number, host order (meaningful for echo
    /// request/reply).
    pub fn echo_seq_no(&self) -> u16 {
        self.u16_at(field::ECHO_SEQNO)
    }

    /// Bytes 4..8 as one host-order word, whatever the type (unused for
    /// port unreachable; next-hop MTU in the low 16 bits for frag needed).
    pub fn rest_of_header(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::REST];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Everything after the 8-byte header: the echo payload, or for an
    /// error the original IP header plus at least 8 bytes of its data.
    /// Never panics: empty if the buffer is shorter.
    pub fn data(&self) -> &[u8] {
        self.buffer.as_ref().get(field::DATA..).unwrap_or(&[])
    }

    /// True if the checksum over the whole buffer (header and data) is
    /// correct (RFC 792: "the 16-bit one's complement of the one's
    /// complement sum of the ICMP message").
    pub fn verify_checksum(&self) -> bool {
        checksum::verifies(self.buffer.as_ref())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    fn set_u16_at(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the message type.
    pub fn set_msg_type(&mut self, value: u8) {
        self.buffer.as_mut()[field::TYPE] = value;
    }

    /// Sets the message code.
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Stores a checksum (host order).
    pub fn set_checksum(&mut self, csum: u16) {
        self.set_u16_at(field::CHECKSUM, csum);
    }

    /// Sets the echo identifier (host order).
    pub fn set_echo_ident(&mut self, ident: u16) {
        self.set_u16_at(field::ECHO_IDENT, ident);
    }

    /// Sets the echo sequence number (host order).
    pub fn set_echo_seq_no(&mut self, seq_no: u16) {
        self.set_u16_at(field::ECHO_SEQNO, seq_no);
    }

    /// Sets bytes 4..8 from a host-order word.
    pub fn set_rest_of_header(&mut self, value: u32) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&value.to_be_bytes());
    }

    /// Mutable access to everything after the 8-byte header (empty if the
    /// buffer is shorter).
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(field::DATA..)
            .unwrap_or(&mut [])
    }

    /// Computes the checksum over the whole buffer from scratch (RFC 1071)
    /// and stores it. After rewriting a few words of an embedded header,
    /// `checksum::update_u16`/`update_u32` on [`Self::checksum`] is cheaper.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let csum = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(csum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::{Ipv4Packet, PROTO_UDP};
    use proptest::prelude::*;

    /// Echo request id 0x1234 seq 1 with 16 bytes "abcdefghijklmnop",
    /// checksum 0xa27f as generated by scapy.
    const ECHO: [u8; 24] = [
        0x08, 0x00, 0xa2, 0x7f, 0x12, 0x34, 0x00, 0x01, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67,
        0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70,
    ];

    #[test]
    fn test_parse() {
        let packet = Icmpv4Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!(packet.msg_type(), TYPE_ECHO_REQUEST);
        assert_eq!(packet.msg_code(), 0);
        assert_eq!(packet.checksum(), 0xa27f);
        assert_eq!(packet.echo_ident(), 0x1234);
        assert_eq!(packet.echo_seq_no(), 1);
        assert_eq!(packet.rest_of_header(), 0x1234_0001);
        assert_eq!(packet.data(), b"abcdefghijklmnop");
        assert!(packet.verify_checksum());
    }

    #[test]
    fn test_emit_echo_reply() {
        // Answering a ping: type 8 -> 0, checksum recomputed; the result
        // is the request with the type byte and checksum changed.
        let mut buf = ECHO;
        let mut packet = Icmpv4Packet::new_checked(&mut buf[..]).unwrap();
        packet.set_msg_type(TYPE_ECHO_REPLY);
        packet.fill_checksum();
        assert!(packet.verify_checksum());
        // 0x0800 less in the sum means 0x0800 more in the checksum.
        assert_eq!(packet.checksum(), 0xaa7f);
        let incremental = checksum::update_u16(0xa27f, 0x0800, 0x0000);
        assert_eq!(incremental, 0xaa7f);
        assert_eq!(&buf[..4], &[0x00, 0x00, 0xaa, 0x7f]);
    }

    #[test]
    fn test_emit() {
        let mut buf = [0u8; 24];
        let mut packet = Icmpv4Packet::new_unchecked(&mut buf[..]);
        packet.set_msg_type(TYPE_ECHO_REQUEST);
        packet.set_msg_code(0);
        packet.set_echo_ident(0x1234);
        packet.set_echo_seq_no(1);
        packet.data_mut().copy_from_slice(b"abcdefghijklmnop");
        packet.fill_checksum();
        assert_eq!(buf, ECHO);
        let mut packet = Icmpv4Packet::new_unchecked(&mut buf[..]);
        packet.set_rest_of_header(0x0000_05dc);
        assert_eq!((packet.echo_ident(), packet.echo_seq_no()), (0, 1500));
    }

    #[test]
    fn test_parse_dest_unreachable() {
        // Port unreachable quoting a UDP datagram 10.0.0.1:1234 -> 10.0.0.2:53.
        let mut buf = [0u8; 36];
        buf[0] = TYPE_DEST_UNREACHABLE;
        buf[1] = CODE_PORT_UNREACHABLE;
        buf[8..28].copy_from_slice(&[
            0x45, 0x00, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00, 0x0a, 0x00,
            0x00, 0x01, 0x0a, 0x00, 0x00, 0x02,
        ]);
        buf[28..36].copy_from_slice(&[0x04, 0xd2, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00]);
        let mut packet = Icmpv4Packet::new_checked(&mut buf[..]).unwrap();
        packet.fill_checksum();
        assert!(packet.verify_checksum());
        assert_eq!(packet.msg_type(), TYPE_DEST_UNREACHABLE);
        assert_eq!(packet.msg_code(), CODE_PORT_UNREACHABLE);
        assert_eq!(packet.rest_of_header(), 0);
        let inner = Ipv4Packet::new_checked(packet.data()).unwrap();
        assert_eq!(inner.protocol(), PROTO_UDP);
        assert_eq!(inner.src_addr(), 0x0a00_0001);
        assert_eq!(
            inner.payload(),
            &[0x04, 0xd2, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00]
        );
    }

    #[test]
    fn test_parse_truncated() {
        assert_eq!(
            Icmpv4Packet::new_checked(&ECHO[..7]).unwrap_err(),
            Error::Truncated
        );
        let header_only = Icmpv4Packet::new_checked(&ECHO[..8]).unwrap();
        assert!(header_only.data().is_empty());
    }

    #[test]
    fn test_bad_checksum() {
        let mut buf = ECHO;
        buf[23] ^= 0x01;
        assert!(!Icmpv4Packet::new_checked(&buf[..])
            .unwrap()
            .verify_checksum());
    }

    proptest! {
        #[test]
        fn prop_checked_getters_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(packet) = Icmpv4Packet::new_checked(&data[..]) {
                let _ = (packet.msg_type(), packet.msg_code(), packet.checksum());
                let _ = (packet.echo_ident(), packet.echo_seq_no(), packet.rest_of_header());
                let _ = packet.verify_checksum();
                prop_assert_eq!(packet.data().len(), data.len() - ICMP_HEADER_LEN);
            } else {
                prop_assert!(data.len() < ICMP_HEADER_LEN);
            }
        }

        #[test]
        fn prop_fill_then_verify(data in proptest::collection::vec(any::<u8>(), 8..80)) {
            let mut data = data;
            let mut packet = Icmpv4Packet::new_checked(&mut data[..]).unwrap();
            packet.fill_checksum();
            prop_assert!(packet.verify_checksum());
        }
    }
}
