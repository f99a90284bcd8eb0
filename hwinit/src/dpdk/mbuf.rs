//! The owned DPDK packet buffer: [`Mbuf`], the [`PacketBuf`] of
//! [`super::DpdkQueue`].
//!
//! Layer: packet path. Guarantees: the frame bytes are read straight from
//! the bindgen `rte_mbuf` (`buf_addr + data_off`, `data_len` bytes) with no C
//! call; no accessor panics or reads outside the segment buffer, whatever a
//! driver left in the header; dropping frees the mbuf (whole chain).
//! Refuses: multi-segment frames. Only the first segment is exposed: the
//! pools' 2048-byte data room holds any standard frame and scattered RX is
//! never enabled, so a chain only appears if a driver builds one anyway;
//! [`PacketBuf::set_data_len`] then frees the tail to keep the mbuf
//! consistent for TX.

use std::ptr::NonNull;

use super::sys;
use crate::PacketBuf;

/// One DPDK mbuf owned by the dataplane; `Drop` frees it
/// (`rte_pktmbuf_free`).
///
/// The hot path does not drop `Mbuf`s one by one: it collects them and calls
/// `PortQueue::free_bulk` (one C call per 64).
#[derive(Debug)]
pub struct Mbuf {
    raw: NonNull<sys::rte_mbuf>,
}

// SAFETY: an Mbuf is the sole owner of its rte_mbuf (from_raw's contract);
// DPDK mbufs may be freed from any thread (the pool is multi-producer), so
// moving the owner between threads is sound.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `raw` must point to a valid, initialised packet mbuf from a
    /// `rte_pktmbuf` pool that nothing else owns or references: refcount 1,
    /// direct (not attached to another buffer), its pool alive, and no other
    /// `Mbuf` or driver holding it. The returned `Mbuf` frees it on drop.
    #[inline(always)]
    pub(crate) unsafe fn from_raw(raw: NonNull<sys::rte_mbuf>) -> Mbuf {
        Mbuf { raw }
    }

    /// The raw pointer, still owned by `self`.
    #[inline(always)]
    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mbuf {
        self.raw.as_ptr()
    }

    #[inline(always)]
    fn hdr(&self) -> &sys::rte_mbuf {
        // SAFETY: from_raw's contract: `raw` is a valid mbuf owned by self,
        // so a shared borrow tied to &self cannot alias a mutable one.
        unsafe { self.raw.as_ref() }
    }

    /// (offset of the frame in the buffer, usable length) in bytes, clamped
    /// so that offset + length never exceeds `buf_len` even if a driver left
    /// inconsistent fields.
    #[inline(always)]
    fn span(&self) -> (usize, usize) {
        let m = self.hdr();
        let off = usize::from(m.data_off);
        let room = usize::from(m.buf_len).saturating_sub(off);
        (off, usize::from(m.data_len).min(room))
    }

    /// The number of segments of the chain (`nb_segs`); only the first is
    /// exposed by [`PacketBuf::data`].
    pub fn n_segs(&self) -> u16 {
        self.hdr().nb_segs
    }

    /// The port the frame arrived on (`port`), as set by the RX driver.
    pub fn rx_port(&self) -> u16 {
        self.hdr().port
    }
}

impl PacketBuf for Mbuf {
    /// The first segment's bytes: `data_len` bytes from
    /// `buf_addr + data_off`.
    #[inline(always)]
    fn data(&self) -> &[u8] {
        let (off, len) = self.span();
        let base = self.hdr().buf_addr.cast::<u8>();
        if base.is_null() {
            return &[];
        }
        // SAFETY: buf_addr points to a buffer of buf_len bytes owned by this
        // mbuf, and span() keeps off + len <= buf_len; the borrow is tied to
        // &self and the mbuf is exclusively ours (refcount 1, direct).
        unsafe { std::slice::from_raw_parts(base.add(off), len) }
    }

    /// The first segment's bytes, mutable; see [`Mbuf::data`].
    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        let (off, len) = self.span();
        let base = self.hdr().buf_addr.cast::<u8>();
        if base.is_null() {
            return &mut [];
        }
        // SAFETY: as in data(); &mut self guarantees no other borrow of the
        // bytes, and no one else references the direct, refcount-1 mbuf.
        unsafe { std::slice::from_raw_parts_mut(base.add(off), len) }
    }

    /// The first segment's bytes and its tailroom: from `buf_addr +
    /// data_off` to the buffer's end (`buf_len - data_off` bytes). A chained
    /// mbuf has no room beyond its first segment's data (growing it would
    /// overwrite nothing of the chain, but the chain's tail would follow the
    /// grown bytes on TX).
    #[inline(always)]
    fn room_mut(&mut self) -> &mut [u8] {
        let (off, len, chained) = {
            let m = self.hdr();
            let off = usize::from(m.data_off);
            let room = usize::from(m.buf_len).saturating_sub(off);
            (off, room, !m.next.is_null())
        };
        if chained {
            return self.data_mut();
        }
        let base = self.hdr().buf_addr.cast::<u8>();
        if base.is_null() || len == 0 {
            return &mut [];
        }
        // SAFETY: buf_addr points to a buffer of buf_len bytes owned by this
        // mbuf and off + len == buf_len; &mut self guarantees no other borrow and
        // the direct, refcount-1 mbuf is referenced by no one else.
        unsafe { std::slice::from_raw_parts_mut(base.add(off), len) }
    }

    /// Sets `data_len` and `pkt_len` to `len` bytes.
    ///
    /// # Errors
    /// Returns `false` and changes nothing if `data_off + len > buf_len`
    /// (2048 bytes of room for a fresh mbuf of a fulcrum pool). Newly exposed
    /// bytes keep whatever the buffer held. On a multi-segment mbuf the
    /// segments after the first are freed, so the mbuf stays consistent for
    /// TX.
    #[inline]
    fn set_data_len(&mut self, len: usize) -> bool {
        let (off, room) = {
            let m = self.hdr();
            (usize::from(m.data_off), usize::from(m.buf_len))
        };
        if off + len > room {
            return false;
        }
        // SAFETY: the mbuf is exclusively ours (from_raw's contract), so
        // writing its header cannot race; the borrow ends in this block.
        let m = unsafe { self.raw.as_mut() };
        if !m.next.is_null() {
            // Rare path: a chained frame being resized is cut to its first
            // segment; the tail is freed and unlinked first.
            // SAFETY: `next` is the rest of this mbuf's chain, owned by us
            // through the head; it is unlinked right after so it is freed
            // exactly once.
            unsafe { sys::fulcrum_pktmbuf_free(m.next) };
            m.next = std::ptr::null_mut();
            m.nb_segs = 1;
        }
        // Both fit: len <= buf_len, a u16.
        m.data_len = len as u16;
        m.pkt_len = len as u32;
        true
    }

    /// The NIC's RSS hash (`hash.rss`), if `RTE_MBUF_F_RX_RSS_HASH` is set in
    /// `ol_flags`.
    #[inline(always)]
    fn rss_hash(&self) -> Option<u32> {
        let m = self.hdr();
        if m.ol_flags & u64::from(sys::RTE_MBUF_F_RX_RSS_HASH) == 0 {
            return None;
        }
        // SAFETY: every member of the `hash` union is plain integers, so
        // reading `rss` is defined for any bytes; the flag says the driver
        // wrote the RSS hash there.
        Some(unsafe { m.__bindgen_anon_2.hash.rss })
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: self owns the mbuf (from_raw's contract) and this is the
        // last use of the pointer.
        unsafe { sys::fulcrum_pktmbuf_free(self.raw.as_ptr()) }
    }
}
