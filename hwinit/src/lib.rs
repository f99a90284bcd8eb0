//! hwinit: the one crate of fulcrum that calls C.
//!
//! Layer: hardware init and packet I/O. It holds
//! - the [`PortQueue`]/[`PacketBuf`] contract the dataplane is generic over
//!   ([`port`]),
//! - a pure-Rust in-memory implementation of it ([`mem`]), and
//! - with the `dpdk` feature (default), the DPDK 22.11 binding ([`dpdk`]):
//!   EAL init, mempools, port setup with RSS/offloads checked against the
//!   device's capabilities, lcore launch, and the mbuf-backed `PortQueue`.
//!
//! Guarantees: every `unsafe` block of the project lives here and carries a
//! `// SAFETY:` comment; the safe API cannot cause use-after-free of DPDK
//! memory (see `dpdk::Eal::cleanup`) nor two owners of one RX/TX queue.
//! Refuses: packet parsing, configuration files, anything per-packet that
//! would allocate, lock or log.
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod error;
pub mod mem;
pub mod packet_socket;
pub mod port;
pub mod thp;

pub use error::HwError;
pub use port::{PacketBuf, PortQueue};

/// The time stamp counter's frequency in Hz, as measured by EAL at init
/// (`rte_get_tsc_hz`).
///
/// Returns 0 before [`dpdk::Eal::init`] has succeeded. Used to turn
/// [`tsc_now`] differences into time (drain timers, slow ticks).
#[cfg(feature = "dpdk")]
pub fn tsc_hz() -> u64 {
    // SAFETY: rte_get_tsc_hz only reads a global set during EAL init (0
    // before); it has no preconditions.
    unsafe { dpdk::sys::rte_get_tsc_hz() }
}

/// The CPU's time stamp counter, in TSC ticks (`rdtsc`, like DPDK's
/// `rte_rdtsc`).
///
/// Not serialising: the read may be reordered with nearby loads, which is
/// fine for burst-level timers. On non-x86_64 targets this falls back to a
/// monotonic nanosecond clock (so the unit is then ns).
#[inline(always)]
pub fn tsc_now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc is available on every x86_64 CPU and only reads the
        // time stamp counter; it touches no memory.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        use std::sync::OnceLock;
        use std::time::Instant;
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Asks the CPU to start loading the cache line that holds `r` (x86
/// `prefetcht0`, like DPDK's `rte_prefetch0`). A hint: it never faults,
/// never changes program results, and costs one instruction; the packet
/// path uses it to overlap the memory loads of a whole RX burst. No-op on
/// targets other than x86_64.
#[inline(always)]
pub fn prefetch_read<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: prefetcht0 is part of SSE, which every x86_64 CPU has; it
        // is a hint that performs no architectural memory access and cannot
        // fault, and `r` is a valid reference anyway.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                (r as *const T).cast::<i8>(),
            )
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = r;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_tsc_now_advances() {
        let a = tsc_now();
        let mut x = 0u64;
        for i in 0..10_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        let b = tsc_now();
        assert!(b > a, "tsc did not advance: {a} -> {b}");
    }
}
