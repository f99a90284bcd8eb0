//! [`DpdkQueue`]: one worker's RX queue and TX queue on one DPDK port, the
//! mbuf-backed [`PortQueue`].
//!
//! Layer: packet path. Guarantees: one C call per burst of up to
//! [`BURST_MAX`] frames (rx, tx, bulk free) through a stack array, no heap
//! allocation when the caller's vectors have capacity, no lock, no logging;
//! at most one live handle per (port, queue), so a queue is never polled by
//! two threads (DPDK queues are single-threaded). Refuses: handing out a
//! queue the port was not set up with.

use std::ptr::{self, NonNull};

use super::{control, sys, Eal, Mbuf, Mempool};
use crate::PortQueue;

/// The most frames one burst call moves, and the length of the on-stack
/// pointer array: 64 × 8 bytes stays within a few cache lines, and DPDK
/// examples use 32.
pub const BURST_MAX: usize = 64;

/// One worker's handle on RX queue `queue_id` and TX queue `queue_id` of
/// port `port_id`, allocating from one mempool.
///
/// Made by [`Eal::queue`]; `Send` so it can move into the closure given to
/// [`Eal::launch`]. Dropping it releases the queue for a later
/// [`Eal::queue`] or port reconfiguration.
#[derive(Debug)]
pub struct DpdkQueue {
    port_id: u16,
    queue_id: u16,
    pool: NonNull<sys::rte_mempool>,
    mac: [u8; 6],
}

// SAFETY: the handle is the only one for its (port, queue) (enforced by the
// control state's claim set), so moving it to another thread moves the sole
// right to poll the queue; the mempool is thread-safe.
unsafe impl Send for DpdkQueue {}

impl DpdkQueue {
    /// The port id this handle polls.
    pub fn port_id(&self) -> u16 {
        self.port_id
    }

    /// The RX/TX queue id this handle polls.
    pub fn queue_id(&self) -> u16 {
        self.queue_id
    }
}

impl Drop for DpdkQueue {
    fn drop(&mut self) {
        control().claimed.remove(&(self.port_id, self.queue_id));
    }
}

impl PortQueue for DpdkQueue {
    type Buf = Mbuf;

    /// Receives up to `min(max, BURST_MAX)` frames with one
    /// `rte_eth_rx_burst` call and appends them to `out`.
    #[inline]
    fn rx_burst(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        let want = max.min(BURST_MAX);
        if want == 0 {
            return 0;
        }
        let mut raw = [ptr::null_mut::<sys::rte_mbuf>(); BURST_MAX];
        // SAFETY: this handle is the sole poller of (port, queue) and the
        // queue exists (checked by Eal::queue; a stopped or closed port has
        // DPDK's dummy burst functions); `raw` has room for `want` <= 64
        // pointers.
        let n = unsafe {
            sys::fulcrum_rx_burst(self.port_id, self.queue_id, raw.as_mut_ptr(), want as u16)
        };
        let n = usize::from(n).min(want);
        let mut n_pushed = 0;
        for &p in &raw[..n] {
            if let Some(p) = NonNull::new(p) {
                // SAFETY: the driver hands over ownership of each received
                // mbuf: valid, refcount 1, direct, from the queue's pool.
                out.push(unsafe { Mbuf::from_raw(p) });
                n_pushed += 1;
            }
        }
        n_pushed
    }

    /// Sends frames from the front of `pkts`, 64 per `rte_eth_tx_burst`
    /// call, until the driver takes fewer than offered; sent frames are
    /// removed from `pkts` (the driver owns them now), the rest stay in
    /// order.
    #[inline]
    fn tx_burst(&mut self, pkts: &mut Vec<Mbuf>) -> usize {
        let total = pkts.len();
        let mut sent = 0;
        let mut raw = [ptr::null_mut::<sys::rte_mbuf>(); BURST_MAX];
        while sent < total {
            let chunk = (total - sent).min(BURST_MAX);
            for (slot, m) in raw.iter_mut().zip(&pkts[sent..sent + chunk]) {
                *slot = m.as_ptr();
            }
            // SAFETY: sole poller of the TX queue (see rx_burst); the first
            // `chunk` entries of `raw` are valid mbufs we own; the driver
            // takes ownership of the first `n` it returns and leaves the
            // rest to us.
            let n = unsafe {
                sys::fulcrum_tx_burst(self.port_id, self.queue_id, raw.as_mut_ptr(), chunk as u16)
            };
            let n = usize::from(n).min(chunk);
            sent += n;
            if n < chunk {
                break;
            }
        }
        // The driver owns the first `sent` mbufs: forget their owners
        // without freeing; drain shifts the unsent rest to the front.
        pkts.drain(..sent).for_each(std::mem::forget);
        sent
    }

    /// One `rte_mempool`-backed `rte_pktmbuf_alloc`; `None` when the pool
    /// is exhausted. The mbuf is reset: data length 0, headroom 128 bytes.
    fn alloc(&mut self) -> Option<Mbuf> {
        // SAFETY: `pool` is a live pktmbuf pool (pools outlive queue
        // handles, see Eal::cleanup).
        let p = unsafe { sys::fulcrum_pktmbuf_alloc(self.pool.as_ptr()) };
        // SAFETY: a freshly allocated mbuf is valid, refcount 1, direct and
        // owned by nobody else.
        NonNull::new(p).map(|p| unsafe { Mbuf::from_raw(p) })
    }

    /// Appends `n` reset mbufs to `out` with one `rte_pktmbuf_alloc_bulk`
    /// call per 64, all or none: `false` (nothing appended) when the pool
    /// has too few free mbufs.
    fn alloc_bulk(&mut self, out: &mut Vec<Mbuf>, n: usize) -> bool {
        let start = out.len();
        let mut raw = [ptr::null_mut::<sys::rte_mbuf>(); BURST_MAX];
        let mut left = n;
        while left > 0 {
            let chunk = left.min(BURST_MAX);
            // SAFETY: `pool` is a live pktmbuf pool (pools outlive queue
            // handles, see Eal::cleanup); `raw` has room for `chunk` <= 64
            // pointers, which DPDK fills all-or-nothing.
            let rc = unsafe {
                sys::fulcrum_pktmbuf_alloc_bulk(self.pool.as_ptr(), raw.as_mut_ptr(), chunk as u32)
            };
            if rc != 0 {
                // Rare path: drop (free) the earlier chunks of this call.
                out.truncate(start);
                return false;
            }
            for &p in &raw[..chunk] {
                // SAFETY: on success every one of the `chunk` pointers is a
                // freshly allocated mbuf: valid, reset, refcount 1, direct,
                // owned by nobody else.
                out.push(unsafe { Mbuf::from_raw(NonNull::new_unchecked(p)) });
            }
            left -= chunk;
        }
        true
    }

    /// Frees every mbuf in `pkts` with one `rte_pktmbuf_free_bulk` call per
    /// 64 and leaves `pkts` empty.
    #[inline]
    fn free_bulk(&mut self, pkts: &mut Vec<Mbuf>) {
        let mut raw = [ptr::null_mut::<sys::rte_mbuf>(); BURST_MAX];
        for chunk in pkts.chunks(BURST_MAX) {
            for (slot, m) in raw.iter_mut().zip(chunk) {
                *slot = m.as_ptr();
            }
            // SAFETY: the first chunk.len() entries are distinct mbufs we
            // own; after this call they are freed and their owners are
            // discarded below without running Drop.
            unsafe { sys::rte_pktmbuf_free_bulk(raw.as_mut_ptr(), chunk.len() as u32) };
        }
        // SAFETY: every element was freed above; setting the length to 0
        // discards the owners without dropping them (Mbuf owns nothing
        // else), so nothing is freed twice.
        unsafe { pkts.set_len(0) };
    }

    /// The port's MAC address as read when the handle was made, 6 bytes in
    /// wire order.
    #[inline(always)]
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
}

impl Eal {
    /// The worker's handle for RX queue `queue_id` and TX queue `queue_id`
    /// of `port_id`, allocating from `pool`.
    ///
    /// The port must have been set up with [`Eal::setup_port`] with more
    /// than `queue_id` RX and TX queues. The MAC is read now: call
    /// [`Eal::set_mac`] before.
    ///
    /// # Panics
    /// Panics (startup only, a programming error of the caller) if
    /// `port_id` is not a probed port, the port has no RX or TX queue
    /// `queue_id`, or a handle for this (port, queue) is still alive, since
    /// two pollers of one DPDK queue corrupt it.
    pub fn queue(&self, port_id: u16, queue_id: u16, pool: &Mempool) -> DpdkQueue {
        let mut ctl = control();
        let name = self.port_name(port_id);
        let info = self
            .dev_info(port_id)
            .unwrap_or_else(|e| panic!("Eal::queue: port {port_id}: {e}"));
        assert!(
            queue_id < info.nb_rx_queues && queue_id < info.nb_tx_queues,
            "Eal::queue: port '{name}' has {} rx / {} tx queues configured, no queue {queue_id}: \
             call setup_port with n_rxq/n_txq > {queue_id}",
            info.nb_rx_queues,
            info.nb_tx_queues
        );
        assert!(
            ctl.claimed.insert((port_id, queue_id)),
            "Eal::queue: port '{name}' queue {queue_id} already has a live DpdkQueue"
        );
        let mac = self.read_mac(&ctl, port_id).unwrap_or([0; 6]);
        DpdkQueue {
            port_id,
            queue_id,
            pool: NonNull::new(pool.as_ptr()).expect("Mempool holds a non-null pool"),
            mac,
        }
    }
}
