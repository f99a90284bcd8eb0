//! UDP header: a zero-copy view with in-place port rewrites.
//!
//! Layer: dataplane wire, L4. The worker reads ports through this view and
//! NAT/FullNAT rewrite them, fixing the checksum incrementally. UDP's
//! checksum is optional over IPv4: a stored 0 means "none" and stays 0
//! through rewrites, and a computed 0 is sent as 0xffff (RFC 768).
//!
//! Guarantees: once [`UdpPacket::check_len`] has passed, no getter panics,
//! whatever the bytes; the length field is at least 8 and inside the
//! buffer. Getters return host order.
//!
//! Refuses (with [`Error`]): buffers shorter than 8 bytes and a length
//! field under 8 or past the buffer. Bytes after the length field (IP
//! padding) are ignored by `payload` and by the checksum.

use super::checksum;
use super::ipv4::PROTO_UDP;
use super::{Error, Result};

/// Length in bytes of the UDP header.
pub const UDP_HEADER_LEN: usize = 8;

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
    pub const PAYLOAD: usize = 8;
}

/// A read/write view of a UDP datagram held in `T`.
///
/// ```text
///  0      7 8     15 16    23 24    31
/// +--------+--------+--------+--------+
/// |     Source      |   Destination   |
/// |      Port       |      Port       |
/// +--------+--------+--------+--------+
/// |                 |                 |
/// |     Length      |    Checksum     |
/// +--------+--------+--------+--------+
/// |
/// |          data octets ...
/// +---------------- ...
/// ```
///
/// Source: RFC 768.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps `buffer` without any check. Fixed-field getters and all setters
    /// panic if the buffer is shorter than 8 bytes; use
    /// [`Self::new_checked`] on untrusted input.
    pub const fn new_unchecked(buffer: T) -> UdpPacket<T> {
        UdpPacket { buffer }
    }

    /// Wraps `buffer` and runs [`Self::check_len`].
    ///
    /// # Errors
    /// As [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<UdpPacket<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the length field against the buffer so that no getter can
    /// panic.
    ///
    /// # Errors
    /// - [`Error::Truncated`] if the buffer is shorter than 8 bytes;
    /// - [`Error::BadTotalLen`] if the length field is under 8 (it counts
    ///   the header, RFC 768) or longer than the buffer.
    pub fn check_len(&self) -> Result<()> {
        let buf_len = self.buffer.as_ref().len();
        if buf_len < UDP_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = usize::from(self.len());
        if len < UDP_HEADER_LEN || len > buf_len {
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

    /// Source port, host order.
    pub fn src_port(&self) -> u16 {
        self.u16_at(field::SRC_PORT)
    }

    /// Destination port, host order.
    pub fn dst_port(&self) -> u16 {
        self.u16_at(field::DST_PORT)
    }

    /// Length field: header + data in bytes, host order.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        self.u16_at(field::LENGTH)
    }

    /// Checksum as stored, host order; 0 means the sender computed none.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// Data bytes `8..len`. Never panics: clamped to the buffer, empty if
    /// the length field is below 8.
    pub fn payload(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        let (start, end) = payload_range(buf.len(), self.len());
        &buf[start..end]
    }

    /// True if the checksum is absent (0) or correct over the pseudo header
    /// (`src`, `dst` host order, protocol 17, the length field) and the
    /// first `len` bytes.
    ///
    /// Source: RFC 768 ("An all zero transmitted checksum value means that
    /// the transmitter generated no checksum").
    pub fn verify_checksum(&self, src: u32, dst: u32) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        checksum::fold(datagram_sum(self.buffer.as_ref(), self.len(), src, dst)) == 0xffff
    }
}

/// `8..len`, clamped so that `start <= end <= buf_len`.
fn payload_range(buf_len: usize, len: u16) -> (usize, usize) {
    let end = usize::from(len).min(buf_len);
    let start = field::PAYLOAD.min(end);
    (start, end)
}

/// Pseudo header + the first `len` bytes (clamped to the buffer),
/// unfolded.
fn datagram_sum(buf: &[u8], len: u16, src: u32, dst: u32) -> u32 {
    let end = usize::from(len).min(buf.len());
    let pseudo = checksum::pseudo_header_v4(src, dst, PROTO_UDP, len);
    checksum::add(pseudo, checksum::sum(&buf[..end]))
}

/// RFC 768: a computed checksum of 0 is transmitted as all ones, because 0
/// on the wire means "no checksum".
fn wire_checksum(csum: u16) -> u16 {
    if csum == 0 {
        0xffff
    } else {
        csum
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    fn set_u16_at(&mut self, r: core::ops::Range<usize>, v: u16) {
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

    /// Sets the length field (bytes, header included, host order).
    pub fn set_len(&mut self, len: u16) {
        self.set_u16_at(field::LENGTH, len);
    }

    /// Stores a checksum (host order); 0 means "none".
    pub fn set_checksum(&mut self, csum: u16) {
        self.set_u16_at(field::CHECKSUM, csum);
    }

    /// Mutable access to the data bytes `8..len` (clamped like
    /// [`Self::payload`]).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = payload_range(self.buffer.as_ref().len(), self.len());
        &mut self.buffer.as_mut()[start..end]
    }

    /// Computes the checksum from scratch over the pseudo header (`src`,
    /// `dst` host order) and the first `len` bytes and stores it; a
    /// computed 0 is stored as 0xffff (RFC 768).
    pub fn fill_checksum(&mut self, src: u32, dst: u32) {
        self.set_checksum(0);
        let csum = !checksum::fold(datagram_sum(self.buffer.as_ref(), self.len(), src, dst));
        self.set_checksum(wire_checksum(csum));
    }

    /// Applies an RFC 1624 update unless the datagram carries no checksum,
    /// which must stay "none" rather than become a wrong value.
    fn update_checksum(&mut self, update: impl FnOnce(u16) -> u16) {
        let csum = self.checksum();
        if csum != 0 {
            self.set_checksum(wire_checksum(update(csum)));
        }
    }

    /// Sets the source port and updates the checksum incrementally (RFC 1624
    /// eqn. 3); a checksum of 0 ("none") is left at 0. Returns the old port.
    pub fn rewrite_src_port(&mut self, port: u16) -> u16 {
        let old = self.src_port();
        self.set_src_port(port);
        self.update_checksum(|c| checksum::update_u16(c, old, port));
        old
    }

    /// Sets the destination port and updates the checksum incrementally
    /// (RFC 1624 eqn. 3); a checksum of 0 ("none") is left at 0. Returns the
    /// old port.
    pub fn rewrite_dst_port(&mut self, port: u16) -> u16 {
        let old = self.dst_port();
        self.set_dst_port(port);
        self.update_checksum(|c| checksum::update_u16(c, old, port));
        old
    }

    /// Updates the checksum for a pseudo-header address that the IP layer
    /// changed from `old` to `new` (host order); a checksum of 0 ("none")
    /// is left at 0.
    ///
    /// Source: RFC 1624 eqn. 3, RFC 768 pseudo header, RFC 3022 §4.2.
    pub fn adjust_checksum_for_addr(&mut self, old: u32, new: u32) {
        self.update_checksum(|c| checksum::update_u32(c, old, new));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: u32 = 0x0a00_0002; // 10.0.0.2
    const DST: u32 = 0x0a00_0035; // 10.0.0.53

    /// A DNS query for example.com A from 10.0.0.2:33333 to 10.0.0.53:53,
    /// length 37, checksum 0x9995 as generated by scapy.
    const DNS: [u8; 37] = [
        0x82, 0x35, 0x00, 0x35, 0x00, 0x25, 0x99, 0x95, // UDP header
        0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x65, 0x78,
        0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01,
    ];

    #[test]
    fn test_parse() {
        let packet = UdpPacket::new_checked(&DNS[..]).unwrap();
        assert_eq!(packet.src_port(), 33333);
        assert_eq!(packet.dst_port(), 53);
        assert_eq!(packet.len(), 37);
        assert_eq!(packet.checksum(), 0x9995);
        assert_eq!(packet.payload(), &DNS[8..]);
        assert!(packet.verify_checksum(SRC, DST));
        assert!(!packet.verify_checksum(SRC, DST + 1));
    }

    #[test]
    fn test_parse_padding_excluded() {
        let mut buf = [0xeeu8; 46];
        buf[..37].copy_from_slice(&DNS);
        let packet = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.payload(), &DNS[8..]);
        assert!(packet.verify_checksum(SRC, DST));
    }

    #[test]
    fn test_emit() {
        let mut buf = [0u8; 37];
        let mut packet = UdpPacket::new_unchecked(&mut buf[..]);
        packet.set_src_port(33333);
        packet.set_dst_port(53);
        packet.set_len(37);
        packet.payload_mut().copy_from_slice(&DNS[8..]);
        packet.fill_checksum(SRC, DST);
        assert_eq!(buf, DNS);
    }

    #[test]
    fn test_no_checksum() {
        let mut buf = DNS;
        buf[6] = 0;
        buf[7] = 0;
        let mut packet = UdpPacket::new_checked(&mut buf[..]).unwrap();
        assert!(packet.verify_checksum(1, 2)); // anything goes
        packet.rewrite_dst_port(5353);
        packet.rewrite_src_port(1);
        packet.adjust_checksum_for_addr(DST, 0x0a00_0099);
        assert_eq!(packet.checksum(), 0);
        assert_eq!(&buf[..8], &[0x00, 0x01, 0x14, 0xe9, 0x00, 0x25, 0x00, 0x00]);
    }

    #[test]
    fn test_fill_checksum_zero_sent_as_ffff() {
        // Choose the last payload word so the computed checksum is 0: put
        // the complement of the remaining sum there.
        let mut buf = [0u8; 10];
        let mut packet = UdpPacket::new_unchecked(&mut buf[..]);
        packet.set_src_port(1);
        packet.set_dst_port(2);
        packet.set_len(10);
        let rest = checksum::add(
            checksum::pseudo_header_v4(SRC, DST, PROTO_UDP, 10),
            checksum::sum(&[0, 1, 0, 2, 0, 10]),
        );
        let filler = !checksum::fold(rest);
        packet.payload_mut().copy_from_slice(&filler.to_be_bytes());
        packet.fill_checksum(SRC, DST);
        assert_eq!(packet.checksum(), 0xffff);
        assert!(packet.verify_checksum(SRC, DST));
    }

    #[test]
    fn test_rewrite_zero_sent_as_ffff() {
        // Same datagram as above but built with dst port 3; rewriting the
        // port to 2 makes the true checksum 0, which the incremental path
        // must also store as 0xffff, never as "no checksum".
        let mut buf = [0u8; 10];
        let rest = checksum::add(
            checksum::pseudo_header_v4(SRC, DST, PROTO_UDP, 10),
            checksum::sum(&[0, 1, 0, 2, 0, 10]),
        );
        buf[..6].copy_from_slice(&[0, 1, 0, 3, 0, 10]);
        buf[8..].copy_from_slice(&(!checksum::fold(rest)).to_be_bytes());
        let mut packet = UdpPacket::new_checked(&mut buf[..]).unwrap();
        packet.fill_checksum(SRC, DST);
        assert_eq!(packet.checksum(), 0xfffe);
        assert_eq!(packet.rewrite_dst_port(2), 3);
        assert_eq!(packet.checksum(), 0xffff);
        assert!(packet.verify_checksum(SRC, DST));
    }

    #[test]
    fn test_rewrite_nat() {
        let mut buf = DNS;
        let rip = 0xac10_0035;
        let mut packet = UdpPacket::new_checked(&mut buf[..]).unwrap();
        packet.adjust_checksum_for_addr(DST, rip);
        assert_eq!(packet.rewrite_dst_port(5353), 53);
        assert!(packet.verify_checksum(SRC, rip));
        let incremental = packet.checksum();
        packet.fill_checksum(SRC, rip);
        assert_eq!(packet.checksum(), incremental);
    }

    #[test]
    fn test_parse_truncated() {
        assert_eq!(
            UdpPacket::new_checked(&DNS[..7]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn test_parse_bad_len() {
        // Length beyond the buffer.
        assert_eq!(
            UdpPacket::new_checked(&DNS[..36]).unwrap_err(),
            Error::BadTotalLen
        );
        // Length below the header.
        let mut buf = DNS;
        buf[4] = 0;
        buf[5] = 7;
        assert_eq!(
            UdpPacket::new_checked(&buf[..]).unwrap_err(),
            Error::BadTotalLen
        );
        buf[5] = 8;
        assert!(UdpPacket::new_checked(&buf[..])
            .unwrap()
            .payload()
            .is_empty());
    }

    proptest! {
        #[test]
        fn prop_checked_getters_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut data = data;
            // Keep the length field plausible half the time.
            if data.len() >= 8 && data[0] & 1 == 0 {
                let n = data.len() as u16 - u16::from(data[1] % 4);
                data[4..6].copy_from_slice(&n.to_be_bytes());
            }
            if let Ok(packet) = UdpPacket::new_checked(&data[..]) {
                let _ = (packet.src_port(), packet.dst_port(), packet.checksum());
                let _ = packet.verify_checksum(1, 2);
                prop_assert_eq!(packet.payload().len(), usize::from(packet.len()) - UDP_HEADER_LEN);
            }
        }

        #[test]
        fn prop_fill_then_verify(
            data in proptest::collection::vec(any::<u8>(), 8..120),
            src in any::<u32>(),
            dst in any::<u32>(),
        ) {
            let mut data = data;
            let n = data.len() as u16;
            data[4..6].copy_from_slice(&n.to_be_bytes());
            let mut packet = UdpPacket::new_checked(&mut data[..]).unwrap();
            packet.fill_checksum(src, dst);
            prop_assert_ne!(packet.checksum(), 0);
            prop_assert!(packet.verify_checksum(src, dst));
        }
    }
}
