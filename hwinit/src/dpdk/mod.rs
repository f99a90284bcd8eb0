//! The DPDK 22.11 binding: EAL, mempools, ethdev ports, lcores and mbufs.
//!
//! Layer: hardware init (control path) plus the mbuf-backed [`PortQueue`]
//! implementation (packet path). Call order at startup:
//! [`Eal::init`] → [`Eal::create_mempool`] → ([`Eal::set_mac`]) →
//! [`Eal::setup_port`] → [`Eal::queue`] per worker → [`Eal::launch`] per
//! worker lcore; [`Eal::init_capture`] and [`Eal::register_telemetry`] for
//! DPDK's `dpdk-dumpcap` and `dpdk-telemetry.py`. At shutdown: [`Eal::wait_lcore`] → [`Eal::stop_port`] →
//! [`Eal::close_port`] → drop every handle → [`Eal::cleanup`].
//!
//! Guarantees:
//! - Per packet there is no C call: the data pointer and length are read
//!   from the bindgen `rte_mbuf` (`buf_addr + data_off`, `data_len`). C is
//!   called once per burst (rx, tx, bulk free) through `shim/shim.c`,
//!   because `rte_eth_rx_burst` and friends are static inline.
//! - One owner per RX/TX queue: [`Eal::queue`] refuses to hand out a second
//!   handle for a queue whose handle is alive, and [`Eal::setup_port`]
//!   refuses to reconfigure a port whose queue handles are alive.
//! - [`Eal::cleanup`] frees DPDK memory only when no [`Mempool`],
//!   [`DpdkQueue`] or [`Mbuf`] can still point into it.
//!
//! Refuses: multi-segment frames (only the first segment is exposed, see
//! [`Mbuf`]), offloads the device does not report, a second EAL init.
//!
//! [`PortQueue`]: crate::PortQueue

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CStr;
use std::sync::{Mutex, MutexGuard};

mod capture;
mod eal;
pub mod hugepages;
mod mbuf;
mod mempool;
mod port;
mod queue;
mod stats;
pub(crate) mod sys;
mod telemetry;

pub use capture::CaptureStatus;
pub use eal::{Eal, LCORE_PANICKED};
pub use mbuf::Mbuf;
pub use mempool::Mempool;
pub use port::{LinkStatus, PortInfo, PortSetup};
pub use queue::{DpdkQueue, BURST_MAX};
pub use stats::PortStats;
pub use telemetry::{TelCommand, TelValue, TelemetryProvider};

/// Control-path state shared by every `Eal` method, behind one lock.
///
/// DPDK's ethdev control functions are not thread-safe, and the checks that
/// keep the safe API sound (queue ownership, live handles at cleanup) must
/// not race with the calls they guard; one process-wide mutex does both.
/// Never taken on the packet path.
#[derive(Debug)]
pub(crate) struct Control {
    /// Live `DpdkQueue` handles as (port id, queue id).
    claimed: BTreeSet<(u16, u16)>,
    /// Live `Mempool` handles.
    n_pool_handles: usize,
    /// Every mempool ever created (pointers as usize), for the in-use check
    /// at cleanup. DPDK pools are never freed before `rte_eal_cleanup`.
    pools: Vec<usize>,
    /// MACs set with `Eal::set_mac` on ports whose driver cannot change its
    /// address (`net_pcap`, `net_ring`): port id → MAC, reported instead of
    /// the driver's.
    soft_macs: BTreeMap<u16, [u8; 6]>,
}

static CONTROL: Mutex<Control> = Mutex::new(Control {
    claimed: BTreeSet::new(),
    n_pool_handles: 0,
    pools: Vec::new(),
    soft_macs: BTreeMap::new(),
});

/// Takes the control lock, ignoring poisoning: the state is a set of plain
/// counters that a panicking holder cannot leave half-updated in a way that
/// matters more than refusing every later call would.
fn control() -> MutexGuard<'static, Control> {
    CONTROL.lock().unwrap_or_else(|e| e.into_inner())
}

/// `rte_strerror(errnum)` as an owned string; `errnum` is positive
/// (an errno or an `RTE_*` error).
fn strerror(errnum: i32) -> String {
    // SAFETY: rte_strerror accepts any int and returns a pointer to a static
    // or thread-local NUL-terminated string that stays valid until the next
    // call on this thread; it is copied out immediately.
    unsafe {
        let p = sys::rte_strerror(errnum);
        if p.is_null() {
            return format!("error {errnum}");
        }
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// The calling thread's `rte_errno`.
fn rte_errno() -> i32 {
    // SAFETY: reads the calling thread's per-lcore errno variable; no
    // preconditions.
    unsafe { sys::fulcrum_errno() }
}
