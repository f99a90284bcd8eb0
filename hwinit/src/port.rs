//! The packet I/O contract between the dataplane and whatever moves frames.
//!
//! Layer: I/O abstraction. A [`PortQueue`] is one worker's view of one port:
//! its own RX queue and its own TX queue. The dataplane is generic over it, so
//! the same worker loop runs on DPDK mbufs ([`crate::dpdk`]) and on the pure-Rust
//! in-memory queues in [`crate::mem`] (tests, benches, pktgen loopback).
//!
//! Guarantees: no method allocates on the heap once the caller's vectors have
//! their capacity; every buffer handed out is either returned to the caller,
//! transmitted, or freed by [`PortQueue::free_bulk`]. Refuses: nothing here
//! parses packets.

/// One packet buffer owned by the dataplane.
///
/// The bytes are the whole Ethernet frame, starting at the destination MAC,
/// without FCS. Dropping a buffer frees it (one call per packet), so the hot
/// path collects unwanted buffers and calls [`PortQueue::free_bulk`] instead.
pub trait PacketBuf: Send {
    /// The frame bytes, `data_len()` long.
    fn data(&self) -> &[u8];
    /// The frame bytes, mutable, `data_len()` long.
    fn data_mut(&mut self) -> &mut [u8];
    /// Sets the frame length in bytes.
    ///
    /// # Errors
    /// Returns `false` and changes nothing if `len` exceeds the buffer's room.
    fn set_data_len(&mut self, len: usize) -> bool;
    /// The frame's bytes followed by the buffer's tailroom: the most the
    /// frame may grow to with [`PacketBuf::set_data_len`]. The first
    /// `data_len()` bytes are [`PacketBuf::data_mut`]'s. The default has no
    /// tailroom.
    fn room_mut(&mut self) -> &mut [u8] {
        self.data_mut()
    }
    /// The NIC's RSS hash of this packet, if the driver supplied one.
    fn rss_hash(&self) -> Option<u32>;
}

/// One worker's RX queue and TX queue on one port.
pub trait PortQueue: Send {
    /// The buffer type this queue hands out and accepts.
    type Buf: PacketBuf;

    /// Receives up to `max` frames, appending them to `out`.
    ///
    /// Returns how many were appended. Never blocks.
    fn rx_burst(&mut self, out: &mut Vec<Self::Buf>, max: usize) -> usize;

    /// Transmits frames from the front of `pkts`.
    ///
    /// Sent frames are removed from `pkts` (the driver now owns them); what the
    /// queue could not take stays in `pkts`, in order, for the caller to retry
    /// or free. Returns how many were sent.
    fn tx_burst(&mut self, pkts: &mut Vec<Self::Buf>) -> usize;

    /// Allocates an empty buffer (data length 0) from this queue's pool.
    ///
    /// Returns `None` when the pool is exhausted. Slow path only (ARP requests).
    fn alloc(&mut self) -> Option<Self::Buf>;

    /// Appends `n` empty buffers (data length 0) from this queue's pool to
    /// `out`, all or none.
    ///
    /// Returns `false` and appends nothing when the pool has fewer than `n`
    /// free buffers. The default calls [`PortQueue::alloc`] `n` times;
    /// queues with a bulk call (DPDK: one `rte_pktmbuf_alloc_bulk` per call)
    /// override it, so a packet generator's TX path makes one pool call per
    /// burst and no heap allocation when `out` has capacity.
    fn alloc_bulk(&mut self, out: &mut Vec<Self::Buf>, n: usize) -> bool {
        let start = out.len();
        for _ in 0..n {
            match self.alloc() {
                Some(b) => out.push(b),
                None => {
                    // Rare path: drop (free) what this call appended,
                    // one by one, without allocating.
                    out.truncate(start);
                    return false;
                }
            }
        }
        true
    }

    /// Frees every buffer in `pkts` in one call and leaves `pkts` empty.
    fn free_bulk(&mut self, pkts: &mut Vec<Self::Buf>);

    /// The port's MAC address, 6 bytes in wire order.
    fn mac(&self) -> [u8; 6];
}
