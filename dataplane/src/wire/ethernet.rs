//! Ethernet II frame header: a zero-copy view.
//!
//! Layer: dataplane wire, the outermost header of every frame a port hands
//! to the worker. The view reads and writes the 14-byte header in place.
//!
//! Guarantees: once [`EthernetFrame::check_len`] has passed, no getter
//! panics on any bytes. MAC addresses are `[u8; 6]` in wire order; the
//! EtherType is returned in host order.
//!
//! Refuses: nothing beyond a short buffer. IEEE 802.3 length-field frames
//! (EtherType < 0x0600) are not told apart from Ethernet II here; the caller
//! drops EtherTypes it does not handle. The 4-byte FCS is not part of the
//! buffer (NICs strip it), and the minimum-frame padding is left in the
//! payload: the IPv4 view trims it with its total length.

use super::{Error, Result};

/// EtherType of IPv4 (RFC 894).
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP (RFC 826).
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of an IEEE 802.1Q customer VLAN tag (C-tag).
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// EtherType of an IEEE 802.1ad service VLAN tag (S-tag, "QinQ").
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
/// EtherType of IPv6 (RFC 8200); recognised only so it can be dropped by
/// name.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// The all-ones broadcast MAC address, wire order.
pub const BROADCAST: [u8; 6] = [0xff; 6];
/// Length of the Ethernet II header in bytes: destination (6), source (6),
/// EtherType (2). No FCS.
pub const HEADER_LEN: usize = 14;

mod field {
    use core::ops::Range;

    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: usize = 14;
}

/// A read/write view of an Ethernet II frame held in `T`.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                  Destination MAC address                      |
/// +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                               |                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
/// |                    Source MAC address                         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |           EtherType           |  Payload (46..1500 bytes) ...
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// Source: RFC 894 (IP over Ethernet), IEEE 802.3 clause 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer` without any check. Getters and setters panic if the
    /// buffer is shorter than [`HEADER_LEN`]; use [`Self::new_checked`] on
    /// untrusted input.
    pub const fn new_unchecked(buffer: T) -> EthernetFrame<T> {
        EthernetFrame { buffer }
    }

    /// Wraps `buffer` and runs [`Self::check_len`].
    ///
    /// # Errors
    /// [`Error::Truncated`] if the buffer is shorter than [`HEADER_LEN`].
    pub fn new_checked(buffer: T) -> Result<EthernetFrame<T>> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks that the buffer holds a whole Ethernet header, so that no
    /// getter can panic.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the buffer is shorter than [`HEADER_LEN`].
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC address, wire order.
    pub fn dst_addr(&self) -> [u8; 6] {
        mac_at(self.buffer.as_ref(), field::DESTINATION.start)
    }

    /// Source MAC address, wire order.
    pub fn src_addr(&self) -> [u8; 6] {
        mac_at(self.buffer.as_ref(), field::SOURCE.start)
    }

    /// EtherType, host order (0x0800 for IPv4, see the `ETHERTYPE_*`
    /// consts). With a VLAN tag this is the tag's TPID (0x8100 / 0x88a8).
    pub fn ethertype(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::ETHERTYPE];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Everything after the 14-byte header: the L3 packet or VLAN tag,
    /// including any minimum-frame padding (up to 60 bytes without FCS).
    /// Never panics on a buffer that passed `check_len`.
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(field::PAYLOAD..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC address (wire order).
    pub fn set_dst_addr(&mut self, addr: [u8; 6]) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr);
    }

    /// Sets the source MAC address (wire order).
    pub fn set_src_addr(&mut self, addr: [u8; 6]) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr);
    }

    /// Sets the EtherType from a host-order value.
    pub fn set_ethertype(&mut self, ethertype: u16) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&ethertype.to_be_bytes());
    }

    /// Mutable access to everything after the 14-byte header (empty if the
    /// buffer is shorter).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(field::PAYLOAD..)
            .unwrap_or(&mut [])
    }
}

fn mac_at(buf: &[u8], at: usize) -> [u8; 6] {
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&buf[at..at + 6]);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ARP request as captured on a LAN: 00:11:22:33:44:55 asks
    /// broadcast who has 10.0.0.1; padded to the 60-byte minimum.
    const FRAME: [u8; 60] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, // src
        0x08, 0x06, // ARP
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, //
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x0a, 0x00, 0x00, 0x02, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x01, //
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // padding
    ];

    #[test]
    fn test_parse() {
        let frame = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(frame.dst_addr(), BROADCAST);
        assert_eq!(frame.src_addr(), [0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);
        assert_eq!(frame.ethertype(), ETHERTYPE_ARP);
        assert_eq!(frame.payload().len(), 46);
        assert_eq!(
            &frame.payload()[..8],
            &[0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01]
        );
    }

    #[test]
    fn test_emit() {
        let mut buf = [0u8; 18];
        let mut frame = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        frame.set_dst_addr([0x02, 0, 0, 0, 0, 0x01]);
        frame.set_src_addr([0x02, 0, 0, 0, 0, 0x02]);
        frame.set_ethertype(ETHERTYPE_IPV4);
        frame.payload_mut().copy_from_slice(&[0x45, 0, 0, 0x14]);
        assert_eq!(frame.dst_addr(), [0x02, 0, 0, 0, 0, 0x01]);
        assert_eq!(frame.ethertype(), ETHERTYPE_IPV4);
        assert_eq!(
            buf,
            [0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00, 0x45, 0, 0, 0x14]
        );
    }

    #[test]
    fn test_parse_truncated() {
        assert_eq!(
            EthernetFrame::new_checked(&FRAME[..13]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            EthernetFrame::new_checked(&[][..]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn test_parse_header_only() {
        let frame = EthernetFrame::new_checked(&FRAME[..14]).unwrap();
        assert!(frame.payload().is_empty());
        assert_eq!(frame.into_inner().len(), 14);
    }

    proptest::proptest! {
        #[test]
        fn prop_checked_getters_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            if let Ok(frame) = EthernetFrame::new_checked(&data[..]) {
                let _ = (frame.dst_addr(), frame.src_addr(), frame.ethertype());
                proptest::prop_assert_eq!(frame.payload().len(), data.len() - HEADER_LEN);
            } else {
                proptest::prop_assert!(data.len() < HEADER_LEN);
            }
        }
    }
}
