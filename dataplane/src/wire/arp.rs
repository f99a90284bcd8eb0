//! ARP for Ethernet/IPv4: a zero-copy view and an owned representation.
//!
//! Layer: dataplane wire. The director answers ARP for its VIPs and local
//! addresses, resolves real servers' MACs and sends gratuitous ARP on VRRP
//! takeover; all of that is slow path, so it goes through [`ArpRepr`]. The
//! view exists so the worker can classify a frame without copying it.
//!
//! Guarantees: once [`ArpPacket::check_len`] has passed (28 bytes), no
//! getter panics. The getters read the fixed Ethernet/IPv4 layout
//! (hardware length 6, protocol length 4); [`ArpRepr::parse`] is what checks
//! that the packet really has that layout.
//!
//! Refuses: every other hardware type, protocol type or address length
//! (token ring, InfiniBand's 20-byte addresses, ...): [`ArpRepr::parse`]
//! returns [`Error::Unsupported`], because the director only speaks ARP on
//! Ethernet for IPv4.

use super::{Error, Result};

/// Length of an Ethernet/IPv4 ARP packet in bytes (8 fixed + 2×6 + 2×4).
pub const ARP_LEN: usize = 28;
/// `ar$op` of a request (RFC 826).
pub const OP_REQUEST: u16 = 1;
/// `ar$op` of a reply (RFC 826).
pub const OP_REPLY: u16 = 2;
/// `ar$hrd` for Ethernet (10Mb) (IANA ARP hardware types).
pub const HARDWARE_ETHERNET: u16 = 1;

mod field {
    use core::ops::Range;

    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// A read/write view of an Ethernet/IPv4 ARP packet.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |       Hardware type (1)       |     Protocol type (0x0800)    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  HW len (6)   | Proto len (4) |          Operation            |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                Sender hardware address (SHA)                  |
/// +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                               | Sender protocol address (SPA) |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  SPA (cont.)                  | Target hardware address (THA) |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
/// |                                                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                Target protocol address (TPA)                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// Source: RFC 826 ("Packet format").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps `buffer` without any check; getters and setters panic if it is
    /// shorter than [`ARP_LEN`]. Use [`Self::new_checked`] on untrusted
    /// input.
    pub const fn new_unchecked(buffer: T) -> ArpPacket<T> {
        ArpPacket { buffer }
    }

    /// Wraps `buffer` and runs [`Self::check_len`].
    ///
    /// # Errors
    /// [`Error::Truncated`] if the buffer is shorter than [`ARP_LEN`].
    pub fn new_checked(buffer: T) -> Result<ArpPacket<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the 28 bytes of an Ethernet/IPv4 ARP
    /// packet. Bytes beyond 28 (Ethernet padding) are ignored.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the buffer is shorter than [`ARP_LEN`].
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < ARP_LEN {
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

    fn u32_at(&self, r: core::ops::Range<usize>) -> u32 {
        let b = &self.buffer.as_ref()[r];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    fn mac_at(&self, r: core::ops::Range<usize>) -> [u8; 6] {
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&self.buffer.as_ref()[r]);
        mac
    }

    /// `ar$hrd`, host order (1 = Ethernet).
    pub fn hardware_type(&self) -> u16 {
        self.u16_at(field::HTYPE)
    }

    /// `ar$pro`, host order; an EtherType (0x0800 = IPv4).
    pub fn protocol_type(&self) -> u16 {
        self.u16_at(field::PTYPE)
    }

    /// `ar$hln`, hardware address length in bytes (6 for Ethernet).
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// `ar$pln`, protocol address length in bytes (4 for IPv4).
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// `ar$op`, host order ([`OP_REQUEST`] or [`OP_REPLY`]; other values
    /// are returned as is).
    pub fn operation(&self) -> u16 {
        self.u16_at(field::OPER)
    }

    /// `ar$sha`, sender MAC, wire order.
    pub fn sender_hardware_addr(&self) -> [u8; 6] {
        self.mac_at(field::SHA)
    }

    /// `ar$spa`, sender IPv4 address, host order.
    pub fn sender_protocol_addr(&self) -> u32 {
        self.u32_at(field::SPA)
    }

    /// `ar$tha`, target MAC, wire order (all zero in a request).
    pub fn target_hardware_addr(&self) -> [u8; 6] {
        self.mac_at(field::THA)
    }

    /// `ar$tpa`, target IPv4 address, host order.
    pub fn target_protocol_addr(&self) -> u32 {
        self.u32_at(field::TPA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    fn set_u16_at(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    fn set_u32_at(&mut self, r: core::ops::Range<usize>, v: u32) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets `ar$hrd` from a host-order value.
    pub fn set_hardware_type(&mut self, value: u16) {
        self.set_u16_at(field::HTYPE, value);
    }

    /// Sets `ar$pro` from a host-order value.
    pub fn set_protocol_type(&mut self, value: u16) {
        self.set_u16_at(field::PTYPE, value);
    }

    /// Sets `ar$hln` (bytes).
    pub fn set_hardware_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value;
    }

    /// Sets `ar$pln` (bytes).
    pub fn set_protocol_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value;
    }

    /// Sets `ar$op` from a host-order value.
    pub fn set_operation(&mut self, value: u16) {
        self.set_u16_at(field::OPER, value);
    }

    /// Sets `ar$sha` (wire order).
    pub fn set_sender_hardware_addr(&mut self, addr: [u8; 6]) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&addr);
    }

    /// Sets `ar$spa` from a host-order IPv4 address.
    pub fn set_sender_protocol_addr(&mut self, addr: u32) {
        self.set_u32_at(field::SPA, addr);
    }

    /// Sets `ar$tha` (wire order).
    pub fn set_target_hardware_addr(&mut self, addr: [u8; 6]) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&addr);
    }

    /// Sets `ar$tpa` from a host-order IPv4 address.
    pub fn set_target_protocol_addr(&mut self, addr: u32) {
        self.set_u32_at(field::TPA, addr);
    }
}

/// An Ethernet/IPv4 ARP message, owned. Used on the slow path: answering
/// requests for a VIP, resolving a real server, gratuitous ARP on VRRP
/// takeover (keepalived `vrrp_garp_*` sends a request with SPA == TPA).
///
/// MACs are wire order, IPv4 addresses host order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// `ar$op`: [`OP_REQUEST`] or [`OP_REPLY`] (other values are kept).
    pub operation: u16,
    /// `ar$sha`.
    pub sender_mac: [u8; 6],
    /// `ar$spa`, host order.
    pub sender_ip: u32,
    /// `ar$tha` (zero in a request).
    pub target_mac: [u8; 6],
    /// `ar$tpa`, host order.
    pub target_ip: u32,
}

impl ArpRepr {
    /// Reads an ARP packet that has passed `check_len`.
    ///
    /// # Errors
    /// [`Error::Unsupported`] unless hardware type is 1 (Ethernet), protocol
    /// type 0x0800 (IPv4), hardware length 6 and protocol length 4, the
    /// only combination RFC 826's Ethernet/IP instance defines and the only
    /// one this view's fixed offsets can read.
    ///
    /// # Panics
    /// If the packet is shorter than [`ARP_LEN`] (only possible with
    /// `new_unchecked`).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &ArpPacket<&T>) -> Result<ArpRepr> {
        if packet.hardware_type() != HARDWARE_ETHERNET
            || packet.protocol_type() != super::ethernet::ETHERTYPE_IPV4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(Error::Unsupported);
        }
        Ok(ArpRepr {
            operation: packet.operation(),
            sender_mac: packet.sender_hardware_addr(),
            sender_ip: packet.sender_protocol_addr(),
            target_mac: packet.target_hardware_addr(),
            target_ip: packet.target_protocol_addr(),
        })
    }

    /// Length of the emitted packet in bytes: always [`ARP_LEN`].
    pub const fn buffer_len(&self) -> usize {
        ARP_LEN
    }

    /// Writes all 28 bytes (Ethernet/IPv4 header fields included) into
    /// `packet`. Bytes beyond 28 are left untouched.
    ///
    /// # Panics
    /// If the buffer is shorter than [`ARP_LEN`] (only possible with
    /// `new_unchecked`).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, packet: &mut ArpPacket<&mut T>) {
        packet.set_hardware_type(HARDWARE_ETHERNET);
        packet.set_protocol_type(super::ethernet::ETHERTYPE_IPV4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_sender_hardware_addr(self.sender_mac);
        packet.set_sender_protocol_addr(self.sender_ip);
        packet.set_target_hardware_addr(self.target_mac);
        packet.set_target_protocol_addr(self.target_ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Who has 10.0.0.1? Tell 10.0.0.2 (from 00:11:22:33:44:55), as
    /// captured after the 14-byte Ethernet header.
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype, ptype, lens, op
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x0a, 0x00, 0x00, 0x02, // SHA, SPA
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x01, // THA, TPA
    ];

    fn request_repr() -> ArpRepr {
        ArpRepr {
            operation: OP_REQUEST,
            sender_mac: [0x00, 0x11, 0x22, 0x33, 0x44, 0x55],
            sender_ip: 0x0a00_0002,
            target_mac: [0; 6],
            target_ip: 0x0a00_0001,
        }
    }

    #[test]
    fn test_parse() {
        let packet = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(packet.hardware_type(), 1);
        assert_eq!(packet.protocol_type(), 0x0800);
        assert_eq!(packet.hardware_len(), 6);
        assert_eq!(packet.protocol_len(), 4);
        assert_eq!(packet.operation(), OP_REQUEST);
        assert_eq!(
            packet.sender_hardware_addr(),
            [0x00, 0x11, 0x22, 0x33, 0x44, 0x55]
        );
        assert_eq!(packet.sender_protocol_addr(), 0x0a00_0002);
        assert_eq!(packet.target_hardware_addr(), [0; 6]);
        assert_eq!(packet.target_protocol_addr(), 0x0a00_0001);
        assert_eq!(ArpRepr::parse(&packet).unwrap(), request_repr());
    }

    #[test]
    fn test_parse_padded() {
        // 18 bytes of Ethernet padding after the ARP body are ignored.
        let mut buf = [0u8; 46];
        buf[..28].copy_from_slice(&REQUEST);
        let packet = ArpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(ArpRepr::parse(&packet).unwrap(), request_repr());
    }

    #[test]
    fn test_emit() {
        let mut buf = [0xeeu8; 28];
        request_repr().emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        assert_eq!(buf, REQUEST);
    }

    #[test]
    fn test_emit_reply() {
        let reply = ArpRepr {
            operation: OP_REPLY,
            sender_mac: [0x02, 0, 0, 0, 0, 0x0a],
            sender_ip: 0x0a00_0001,
            target_mac: [0x00, 0x11, 0x22, 0x33, 0x44, 0x55],
            target_ip: 0x0a00_0002,
        };
        let mut buf = [0u8; 30];
        reply.emit(&mut ArpPacket::new_checked(&mut buf[..]).unwrap());
        assert_eq!(&buf[6..8], &[0x00, 0x02]);
        assert_eq!(&buf[8..14], &[0x02, 0, 0, 0, 0, 0x0a]);
        assert_eq!(&buf[14..18], &[10, 0, 0, 1]);
        assert_eq!(&buf[28..], &[0, 0]);
        let packet = ArpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(ArpRepr::parse(&packet).unwrap(), reply);
    }

    #[test]
    fn test_setters() {
        let mut buf = [0u8; 28];
        let mut packet = ArpPacket::new_checked(&mut buf[..]).unwrap();
        packet.set_hardware_type(6);
        packet.set_protocol_type(0x86dd);
        packet.set_hardware_len(8);
        packet.set_protocol_len(16);
        packet.set_operation(3);
        assert_eq!(packet.hardware_type(), 6);
        assert_eq!(packet.protocol_type(), 0x86dd);
        assert_eq!(packet.hardware_len(), 8);
        assert_eq!(packet.protocol_len(), 16);
        assert_eq!(packet.operation(), 3);
        assert_eq!(&buf[..8], &[0, 6, 0x86, 0xdd, 8, 16, 0, 3]);
    }

    #[test]
    fn test_parse_truncated() {
        assert_eq!(
            ArpPacket::new_checked(&REQUEST[..27]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn test_parse_unsupported() {
        for (at, value) in [(1usize, 6u8), (2, 0x86), (4, 8), (5, 16)] {
            let mut buf = REQUEST;
            buf[at] = value;
            let packet = ArpPacket::new_checked(&buf[..]).unwrap();
            assert_eq!(
                ArpRepr::parse(&packet).unwrap_err(),
                Error::Unsupported,
                "byte {at}"
            );
        }
    }

    proptest! {
        #[test]
        fn prop_parse_emit_identity(
            operation in any::<u16>(),
            sender_mac in any::<[u8; 6]>(),
            sender_ip in any::<u32>(),
            target_mac in any::<[u8; 6]>(),
            target_ip in any::<u32>(),
        ) {
            let repr = ArpRepr { operation, sender_mac, sender_ip, target_mac, target_ip };
            let mut buf = [0u8; ARP_LEN];
            repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
            let packet = ArpPacket::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(ArpRepr::parse(&packet).unwrap(), repr);
        }

        #[test]
        fn prop_emit_parse_identity(body in any::<[u8; 20]>()) {
            // Any supported packet: the 8-byte prefix fixed, the rest free.
            let mut buf = [0u8; ARP_LEN];
            buf[..6].copy_from_slice(&REQUEST[..6]);
            buf[6..8].copy_from_slice(&body[..2]);
            buf[8..].copy_from_slice(&body);
            let repr = ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()).unwrap();
            let mut out = [0u8; ARP_LEN];
            repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
            prop_assert_eq!(out, buf);
        }

        #[test]
        fn prop_checked_getters_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(packet) = ArpPacket::new_checked(&data[..]) {
                let _ = (packet.hardware_type(), packet.protocol_type(), packet.hardware_len());
                let _ = (packet.protocol_len(), packet.operation(), packet.sender_hardware_addr());
                let _ = (packet.sender_protocol_addr(), packet.target_hardware_addr());
                let _ = packet.target_protocol_addr();
                let _ = ArpRepr::parse(&packet);
            } else {
                prop_assert!(data.len() < ARP_LEN);
            }
        }
    }
}
