//! IEEE 802.1Q VLAN tag: a zero-copy view of the 4 bytes that follow an
//! outer EtherType of 0x8100 (C-tag) or 0x88a8 (S-tag, 802.1ad).
//!
//! Layer: dataplane wire, between Ethernet and L3. The view covers the Tag
//! Control Information (TCI) and the encapsulated EtherType; the TPID itself
//! is the EtherType of the enclosing [`EthernetFrame`](super::EthernetFrame)
//! (or of the outer tag, for QinQ).
//!
//! Guarantees: once [`VlanHeader::check_len`] has passed, no getter panics.
//! Values are returned in host order.
//!
//! Refuses: nothing beyond a short buffer. Whether VID 0 (priority tag) or
//! 4095 (reserved) is acceptable is the caller's policy.

use super::{Error, Result};

/// Length of the tag as seen by this view: TCI (2) + inner EtherType (2).
pub const HEADER_LEN: usize = 4;

mod field {
    use core::ops::Range;

    pub const TCI: Range<usize> = 0..2;
    pub const ETHERTYPE: Range<usize> = 2..4;
    pub const PAYLOAD: usize = 4;
}

/// A read/write view of an 802.1Q tag's TCI and inner EtherType.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | PCP |D|         VID           |      Inner EtherType          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                          Payload ...
/// ```
/// PCP = priority code point (3 bits), D = drop eligible indicator (DEI,
/// formerly CFI), VID = VLAN identifier (12 bits).
///
/// Source: IEEE 802.1Q-2018 §9.6 (VLAN tag format).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanHeader<T> {
    /// Wraps `buffer` without any check; getters and setters panic if it is
    /// shorter than [`HEADER_LEN`]. Use [`Self::new_checked`] on untrusted
    /// input.
    pub const fn new_unchecked(buffer: T) -> VlanHeader<T> {
        VlanHeader { buffer }
    }

    /// Wraps `buffer` and runs [`Self::check_len`].
    ///
    /// # Errors
    /// [`Error::Truncated`] if the buffer is shorter than [`HEADER_LEN`].
    pub fn new_checked(buffer: T) -> Result<VlanHeader<T>> {
        let tag = Self::new_unchecked(buffer);
        tag.check_len()?;
        Ok(tag)
    }

    /// Checks that the buffer holds the 4-byte tag.
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

    fn tci(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::TCI];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Priority code point, 0..=7 (IEEE 802.1Q §6.9.3).
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// Drop eligible indicator bit.
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// VLAN identifier, 0..=4095, host order.
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// EtherType of the encapsulated payload, host order (may itself be
    /// 0x8100 for QinQ).
    pub fn ethertype(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::ETHERTYPE];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Everything after the 4 tag bytes. Never panics on a buffer that
    /// passed `check_len`.
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(field::PAYLOAD..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanHeader<T> {
    fn set_tci(&mut self, tci: u16) {
        self.buffer.as_mut()[field::TCI].copy_from_slice(&tci.to_be_bytes());
    }

    /// Sets the priority code point; only the low 3 bits of `pcp` are used.
    pub fn set_pcp(&mut self, pcp: u8) {
        let tci = (self.tci() & 0x1fff) | (u16::from(pcp & 0x7) << 13);
        self.set_tci(tci);
    }

    /// Sets or clears the drop eligible indicator.
    pub fn set_dei(&mut self, dei: bool) {
        let tci = (self.tci() & !0x1000) | if dei { 0x1000 } else { 0 };
        self.set_tci(tci);
    }

    /// Sets the VLAN identifier; only the low 12 bits of `vid` are used.
    pub fn set_vid(&mut self, vid: u16) {
        let tci = (self.tci() & 0xf000) | (vid & 0x0fff);
        self.set_tci(tci);
    }

    /// Sets the inner EtherType from a host-order value.
    pub fn set_ethertype(&mut self, ethertype: u16) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&ethertype.to_be_bytes());
    }

    /// Mutable access to everything after the tag (empty if the buffer is
    /// shorter).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(field::PAYLOAD..)
            .unwrap_or(&mut [])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::{self, EthernetFrame, ETHERTYPE_IPV4, ETHERTYPE_VLAN};

    /// Tagged frame start: VLAN 100, PCP 5, DEI 0, carrying IPv4.
    const FRAME: [u8; 22] = [
        0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, // MACs
        0x81, 0x00, // TPID
        0xa0, 0x64, // PCP 5, DEI 0, VID 100
        0x08, 0x00, // inner EtherType IPv4
        0x45, 0x00, 0x00, 0x14,
    ];

    #[test]
    fn test_parse() {
        let eth = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(eth.ethertype(), ETHERTYPE_VLAN);
        let tag = VlanHeader::new_checked(eth.payload()).unwrap();
        assert_eq!(tag.pcp(), 5);
        assert!(!tag.dei());
        assert_eq!(tag.vid(), 100);
        assert_eq!(tag.ethertype(), ETHERTYPE_IPV4);
        assert_eq!(tag.payload(), &[0x45, 0x00, 0x00, 0x14]);
        assert_eq!(FRAME.len(), ethernet::HEADER_LEN + HEADER_LEN + 4);
    }

    #[test]
    fn test_emit() {
        let mut buf = [0u8; 6];
        let mut tag = VlanHeader::new_checked(&mut buf[..]).unwrap();
        tag.set_vid(0xfff);
        tag.set_pcp(7);
        tag.set_dei(true);
        tag.set_ethertype(ETHERTYPE_IPV4);
        assert_eq!((tag.pcp(), tag.dei(), tag.vid()), (7, true, 0xfff));
        tag.set_dei(false);
        tag.set_vid(0x123);
        tag.set_pcp(1);
        tag.payload_mut().copy_from_slice(&[0xaa, 0xbb]);
        assert_eq!((tag.pcp(), tag.dei(), tag.vid()), (1, false, 0x123));
        assert_eq!(buf, [0x21, 0x23, 0x08, 0x00, 0xaa, 0xbb]);
    }

    #[test]
    fn test_set_masks_out_of_range() {
        let mut buf = [0u8; 4];
        let mut tag = VlanHeader::new_unchecked(&mut buf[..]);
        tag.set_vid(0xf064); // high nibble must not leak into PCP/DEI
        tag.set_pcp(0xff);
        assert_eq!((tag.pcp(), tag.dei(), tag.vid()), (7, false, 0x064));
    }

    #[test]
    fn test_parse_truncated() {
        assert_eq!(
            VlanHeader::new_checked(&[0xa0, 0x64, 0x08][..]).unwrap_err(),
            Error::Truncated
        );
    }

    proptest::proptest! {
        #[test]
        fn prop_checked_getters_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12)) {
            if let Ok(tag) = VlanHeader::new_checked(&data[..]) {
                proptest::prop_assert!(tag.pcp() <= 7);
                proptest::prop_assert!(tag.vid() <= 0xfff);
                let _ = (tag.dei(), tag.ethertype());
                proptest::prop_assert_eq!(tag.payload().len(), data.len() - HEADER_LEN);
            } else {
                proptest::prop_assert!(data.len() < HEADER_LEN);
            }
        }
    }
}
