//! Packet mbuf pools (`rte_pktmbuf_pool_create`).
//!
//! Layer: startup control path. Guarantees: a [`Mempool`] handle always
//! points to a live pool (pools are never freed before `rte_eal_cleanup`,
//! which refuses to run while a handle exists); every pool has the default
//! data room (2048 bytes after 128 bytes of headroom), so one mbuf holds one
//! standard Ethernet frame. Refuses: names DPDK cannot take (too long, NUL),
//! zero-sized pools.

use std::ffi::CString;
use std::ptr::NonNull;

use super::{control, rte_errno, strerror, sys, Eal};
use crate::HwError;

/// Per-lcore cache size of every pool, in mbufs: the most DPDK recommends
/// for burst workloads, so a worker's alloc/free rarely touches the shared
/// ring.
const CACHE_MBUFS: u32 = 256;

/// A DPDK packet mbuf pool.
///
/// The pool itself is never freed (DPDK pools live until `rte_eal_cleanup`);
/// dropping the handle only tells [`Eal::cleanup`] that one fewer handle
/// points into DPDK memory. Queues made with it keep their own pointer.
#[derive(Debug)]
pub struct Mempool {
    raw: NonNull<sys::rte_mempool>,
    /// Bytes of frame data one mbuf holds (data room minus headroom).
    data_room_bytes: u16,
}

// SAFETY: an rte_mempool is designed for concurrent use from every lcore and
// non-EAL thread (its ring is multi-producer/multi-consumer, caches are per
// lcore); the handle only carries its address.
unsafe impl Send for Mempool {}
// SAFETY: see Send; the methods only read counters through thread-safe
// DPDK calls.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Mbufs currently free in the pool, including those sitting in
    /// per-lcore caches (`rte_mempool_avail_count`).
    pub fn available(&self) -> u32 {
        // SAFETY: `raw` is a live pool (see the type's guarantee).
        unsafe { sys::rte_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Mbufs currently taken from the pool: held by the dataplane, by a
    /// driver's RX/TX rings or by a ring between ports
    /// (`rte_mempool_in_use_count` = size − available).
    pub fn in_use(&self) -> u32 {
        // SAFETY: `raw` is a live pool (see the type's guarantee).
        unsafe { sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }

    /// Bytes of frame data one mbuf of this pool holds (2048).
    pub fn data_room_bytes(&self) -> u16 {
        self.data_room_bytes
    }

    /// The raw pool pointer, for queues and port setup in this crate.
    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.raw.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        let mut ctl = control();
        ctl.n_pool_handles = ctl.n_pool_handles.saturating_sub(1);
    }
}

impl Eal {
    /// Creates a pool of `n_mbufs` packet mbufs on NUMA socket `socket`
    /// (-1 = `SOCKET_ID_ANY`) with `rte_pktmbuf_pool_create`: per-lcore
    /// cache of 256 mbufs (less for small pools: DPDK requires
    /// 1.5 × cache ≤ n), no private area, default data room (2048 bytes
    /// after 128 bytes of headroom).
    ///
    /// Size it for every RX descriptor of every queue using it, plus the
    /// bursts in flight, plus the caches (256 per lcore); powers of two
    /// minus one fit the backing ring best.
    ///
    /// # Errors
    /// [`HwError::Mempool`] if `name` contains NUL, `n_mbufs` is 0, or DPDK
    /// refuses (name longer than 25 bytes or already used, not enough
    /// memory: `-m` or hugepages too small), with `rte_strerror(rte_errno)`.
    pub fn create_mempool(
        &self,
        name: &str,
        n_mbufs: u32,
        socket: i32,
    ) -> Result<Mempool, HwError> {
        let err = |reason: String| HwError::Mempool {
            name: name.to_string(),
            n_mbufs,
            socket,
            reason,
        };
        if n_mbufs == 0 {
            return Err(err("a pool needs at least one mbuf".into()));
        }
        let c_name = CString::new(name).map_err(|_| err("name contains a NUL byte".into()))?;
        let cache = CACHE_MBUFS.min(n_mbufs * 2 / 3);
        let data_room = sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16;
        // Hold the control lock across creation so a concurrent cleanup
        // cannot run between the pool's birth and its registration.
        let mut ctl = control();
        // SAFETY: EAL is initialised (self exists); the name is a valid C
        // string that DPDK copies; the numeric arguments are plain values
        // that DPDK validates.
        let raw = unsafe {
            sys::rte_pktmbuf_pool_create(c_name.as_ptr(), n_mbufs, cache, 0, data_room, socket)
        };
        let raw = NonNull::new(raw).ok_or_else(|| {
            let errno = rte_errno();
            err(format!("{} (rte_errno {errno})", strerror(errno)))
        })?;
        ctl.pools.push(raw.as_ptr() as usize);
        ctl.n_pool_handles += 1;
        Ok(Mempool {
            raw,
            data_room_bytes: data_room - sys::RTE_PKTMBUF_HEADROOM as u16,
        })
    }
}
