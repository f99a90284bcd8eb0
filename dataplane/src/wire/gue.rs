//! GUE (Generic UDP Encapsulation) header: a zero-copy view.
//!
//! Layer: dataplane wire, the header VS/TUN's GUE mode puts between the
//! outer UDP header and the inner IPv4 packet (IPVS `--tun-type gue`,
//! draft-ietf-intarea-gue-09 §3.1, variant 0). fulcrum only builds it (the
//! director never decapsulates); the view also reads one back for tests
//! and for tools.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |0x0|C|   Hlen  |  Proto/ctype  |             Flags             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Extension fields (Hlen words)                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Version 0 (the top two bits), C = 0 for a data message whose
//! Proto/ctype is the IP protocol number of the payload (4 = IPv4), Hlen
//! = the extension words after the first (0 without options).
//!
//! Guarantees: once [`GuePacket::check_len`] has passed, no getter panics.
//! Refuses (with [`Error::Truncated`]): buffers shorter than 4 bytes or
//! than the header length `4 + 4 × Hlen` declares.
#![forbid(unsafe_code)]

use super::{Error, Result};

/// Length in bytes of the GUE base header (no extension fields).
pub const GUE_HEADER_LEN: usize = 4;

mod field {
    use core::ops::Range;

    pub const VER_C_HLEN: usize = 0;
    pub const PROTO_CTYPE: usize = 1;
    pub const FLAGS: Range<usize> = 2..4;
}

/// A GUE header over a byte buffer that starts at its first byte.
#[derive(Debug, Clone)]
pub struct GuePacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> GuePacket<T> {
    /// Wraps `buffer` without checking its length.
    pub const fn new_unchecked(buffer: T) -> GuePacket<T> {
        GuePacket { buffer }
    }

    /// Wraps `buffer` and runs [`Self::check_len`].
    ///
    /// # Errors
    /// As [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<GuePacket<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds the base header and the extension
    /// words its Hlen declares.
    ///
    /// # Errors
    /// [`Error::Truncated`] when it does not.
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        if buf.len() < GUE_HEADER_LEN || buf.len() < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The version, the top two bits (0 for the header fulcrum builds; 1 is
    /// the header-less "direct IP" variant).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_C_HLEN] >> 6
    }

    /// The C bit: a control message (true) or data (false).
    pub fn control(&self) -> bool {
        self.buffer.as_ref()[field::VER_C_HLEN] & 0x20 != 0
    }

    /// The header's length in bytes, `4 + 4 × Hlen`.
    pub fn header_len(&self) -> usize {
        GUE_HEADER_LEN + 4 * usize::from(self.buffer.as_ref()[field::VER_C_HLEN] & 0x1f)
    }

    /// Proto/ctype: the payload's IP protocol number (data messages).
    pub fn proto_ctype(&self) -> u8 {
        self.buffer.as_ref()[field::PROTO_CTYPE]
    }

    /// The flags field, host order.
    pub fn flags(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::FLAGS];
        u16::from_be_bytes([b[0], b[1]])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> GuePacket<T> {
    /// Writes a version-0 data header without extensions or flags whose
    /// payload is IP protocol `proto` (4 bytes; the buffer must hold them).
    pub fn emit_data(&mut self, proto: u8) {
        let b = self.buffer.as_mut();
        b[field::VER_C_HLEN] = 0;
        b[field::PROTO_CTYPE] = proto;
        b[field::FLAGS].copy_from_slice(&[0, 0]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_emit_parse() {
        let mut b = [0xffu8; 4];
        GuePacket::new_unchecked(&mut b[..]).emit_data(4);
        assert_eq!(b, [0, 4, 0, 0]);
        let p = GuePacket::new_checked(&b[..]).unwrap();
        assert_eq!(
            (
                p.version(),
                p.control(),
                p.header_len(),
                p.proto_ctype(),
                p.flags()
            ),
            (0, false, 4, 4, 0)
        );
    }

    #[test]
    fn test_parse_truncated() {
        assert_eq!(
            GuePacket::new_checked(&[0u8, 4, 0][..]).err(),
            Some(Error::Truncated)
        );
        // Hlen 1 declares 8 bytes.
        assert_eq!(
            GuePacket::new_checked(&[0x01u8, 4, 0, 0][..]).err(),
            Some(Error::Truncated)
        );
        let p = GuePacket::new_checked(&[0xe1u8, 0, 0x80, 1, 0, 0, 0, 0][..]).unwrap();
        assert_eq!(
            (p.version(), p.control(), p.header_len(), p.flags()),
            (3, true, 8, 0x8001)
        );
    }
}
