//! A frame being processed, in a buffer that may have room after it.
//!
//! Layer: dataplane, shared by the pipeline stages and the forwarding
//! methods. Most stages rewrite a frame in place and never change its
//! length; a few must: a tunnel prepends an outer header (VS/TUN), FullNAT
//! inserts a PROXY protocol header, an ICMP error replaces the frame with a
//! shorter one. [`Frame`] gives those the buffer's whole room, and the
//! caller applies the final length to the packet buffer
//! ([`hwinit::PacketBuf::set_data_len`]) once the verdict is known.
//!
//! Guarantees: never panics; every length change is checked against the
//! room and refused (returns `false`, nothing changed) when it does not fit.

/// The frame in hand: `len` bytes at the start of `room`, and
/// `room.len() - len` bytes of tailroom behind them.
#[derive(Debug)]
pub struct Frame<'a> {
    room: &'a mut [u8],
    len: usize,
}

impl<'a> Frame<'a> {
    /// A frame of `len` bytes at the start of `room` (clamped to the room).
    #[inline]
    pub fn new(room: &'a mut [u8], len: usize) -> Self {
        let len = len.min(room.len());
        Frame { room, len }
    }

    /// A frame that fills `bytes` and cannot grow.
    #[inline]
    pub fn fixed(bytes: &'a mut [u8]) -> Self {
        let len = bytes.len();
        Frame { room: bytes, len }
    }

    /// The frame's length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the frame has no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most bytes the frame may grow to.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.room.len()
    }

    /// The frame's bytes, `len()` long.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &self.room[..self.len]
    }

    /// The frame's bytes, mutable, `len()` long.
    #[inline]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.room[..self.len]
    }

    /// Sets the length to `len` bytes. Growing exposes whatever the buffer
    /// held there; the caller writes it.
    ///
    /// # Errors
    /// `false`, nothing changed, when `len > capacity()`.
    #[inline]
    pub fn set_len(&mut self, len: usize) -> bool {
        if len > self.room.len() {
            return false;
        }
        self.len = len;
        true
    }

    /// Opens a gap of `n` bytes at byte `at`: the bytes from `at` to the end
    /// move `n` bytes back and the frame grows by `n`. The gap keeps its old
    /// bytes; the caller writes it (an outer header, a PROXY header).
    ///
    /// # Errors
    /// `false`, nothing changed, when `at > len()` or the grown frame would
    /// not fit the room.
    #[inline]
    pub fn insert_gap(&mut self, at: usize, n: usize) -> bool {
        let Some(new_len) = self.len.checked_add(n) else {
            return false;
        };
        if at > self.len || new_len > self.room.len() {
            return false;
        }
        self.room.copy_within(at..self.len, at + n);
        self.len = new_len;
        true
    }

    /// Removes `n` bytes at byte `at`: the bytes after them move `n` bytes
    /// forward and the frame shrinks by `n` (a decapsulation).
    ///
    /// # Errors
    /// `false`, nothing changed, when `at + n > len()`.
    #[inline]
    pub fn remove(&mut self, at: usize, n: usize) -> bool {
        match at.checked_add(n) {
            Some(end) if end <= self.len => {
                self.room.copy_within(end..self.len, at);
                self.len -= n;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_gap_and_remove_move_the_tail() {
        let mut buf = [0u8; 8];
        buf[..4].copy_from_slice(&[1, 2, 3, 4]);
        let mut f = Frame::new(&mut buf, 4);
        assert!(f.insert_gap(1, 2));
        assert_eq!(f.len(), 6);
        assert_eq!(&f.bytes()[3..], &[2, 3, 4]);
        assert!(!f.insert_gap(0, 3), "6 + 3 > 8");
        assert_eq!(f.len(), 6);
        assert!(f.remove(1, 2));
        assert_eq!(f.bytes(), &[1, 2, 3, 4]);
        assert!(!f.remove(3, 2));
        assert!(!f.insert_gap(5, 1), "gap past the end");
        assert!(f.set_len(8));
        assert!(!f.set_len(9));
    }

    #[test]
    fn test_fixed_cannot_grow() {
        let mut buf = [9u8; 3];
        let mut f = Frame::fixed(&mut buf);
        assert_eq!(f.capacity(), 3);
        assert!(!f.insert_gap(0, 1));
        assert!(f.set_len(2));
        assert_eq!(f.bytes(), &[9, 9]);
    }
}
