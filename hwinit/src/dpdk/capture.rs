//! Packet capture by DPDK's own tools: `rte_pdump_init` so that
//! `dpdk-dumpcap` (a DPDK secondary process) can capture from the running
//! primary, and `rte_pdump_uninit` at shutdown.
//!
//! Layer: startup/shutdown control path. What `rte_pdump_init` does (DPDK
//! 22.11 `lib/pdump/rte_pdump.c`): it reserves a small memzone for capture
//! statistics and registers the `mp_pdump` multi-process action. Nothing is
//! installed on any queue until a `dpdk-dumpcap` asks: only then does the
//! primary add RX/TX callbacks (`rte_eth_add_first_rx_callback`,
//! `rte_eth_add_tx_callback`) to the captured port's queues, and removes them
//! when dumpcap stops. Without a capture, the only cost on the packet path is
//! the check `rte_eth_rx_burst`/`rte_eth_tx_burst` make anyway (one atomic
//! load of the queue's callback pointer per burst, compiled in because
//! Debian builds DPDK with `RTE_ETHDEV_RXTX_CALLBACKS`), with or without
//! this module. While a capture runs, every captured packet is copied into
//! dumpcap's mempool on the worker that receives or sends it: capture is a
//! debugging tool, not free.
//!
//! Guarantees: [`Eal::init_capture`] tells the truth about whether a
//! secondary process can attach (it is not enough that `rte_pdump_init`
//! returns 0, which it also does when multi-process is off). Refuses:
//! nothing; an unavailable capture is a status, not an error.

use std::ffi::CStr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{rte_errno, strerror, sys, Eal};

/// Set while `rte_pdump_init` has run and `rte_pdump_uninit` has not.
static PDUMP_ON: AtomicBool = AtomicBool::new(false);

/// Whether `dpdk-dumpcap` can capture from this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureStatus {
    /// `rte_pdump_init` ran, EAL's memory is in hugepage files and the
    /// multi-process socket exists: `dpdk-dumpcap --file-prefix=<prefix>`
    /// can attach.
    Available {
        /// EAL's runtime directory, `/var/run/dpdk/<file-prefix>` for root.
        runtime_dir: PathBuf,
    },
    /// A secondary process cannot attach; `reason` says why and what to
    /// change (one line).
    Unavailable {
        /// Why, e.g. `--no-huge: EAL memory is anonymous, a secondary
        /// process cannot map it`.
        reason: String,
    },
}

impl Eal {
    /// Initialises DPDK's packet-capture server (`rte_pdump_init`) and
    /// reports whether `dpdk-dumpcap` can use it.
    ///
    /// DPDK multi-process needs EAL's memory in shared hugepage files and
    /// the `mp_socket` in the runtime directory: with `--no-huge` (anonymous
    /// memory) or `--no-shconf` / `--in-memory` (no shared config, no
    /// socket) a secondary process cannot attach, and this returns
    /// [`CaptureStatus::Unavailable`] saying which. Calling it again after
    /// success re-reports without initialising twice. [`Eal::cleanup`]
    /// calls `rte_pdump_uninit` if this initialised it.
    pub fn init_capture(&self) -> CaptureStatus {
        let runtime_dir = runtime_dir();
        // SAFETY: EAL is initialised (an Eal exists); only reads its
        // configuration.
        if unsafe { sys::rte_eal_has_hugepages() } == 0 {
            return CaptureStatus::Unavailable {
                reason: "EAL runs with --no-huge: its memory is anonymous and a secondary process \
                         (dpdk-dumpcap) cannot map it; run 'make hugepages' and drop --no-huge"
                    .into(),
            };
        }
        if !runtime_dir.join("mp_socket").exists() {
            return CaptureStatus::Unavailable {
                reason: format!(
                    "no multi-process socket in {} (--no-shconf or --in-memory): dpdk-dumpcap \
                     cannot attach; drop those EAL args",
                    runtime_dir.display()
                ),
            };
        }
        if !PDUMP_ON.load(Ordering::Acquire) {
            // SAFETY: EAL is initialised; rte_pdump_init reserves a memzone
            // and registers an mp action, both safe from the main thread at
            // any time after init. PDUMP_ON makes it run at most once until
            // uninit.
            let ret = unsafe { sys::rte_pdump_init() };
            if ret < 0 {
                let errno = rte_errno();
                return CaptureStatus::Unavailable {
                    reason: format!("rte_pdump_init failed: {}", strerror(errno)),
                };
            }
            PDUMP_ON.store(true, Ordering::Release);
        }
        CaptureStatus::Available { runtime_dir }
    }
}

/// Undoes [`Eal::init_capture`] (`rte_pdump_uninit`) if it ran; called by
/// [`Eal::cleanup`] before `rte_eal_cleanup`, after the ports are closed (so
/// no capture callback can still run on a queue).
pub(crate) fn uninit_capture() {
    if PDUMP_ON.swap(false, Ordering::AcqRel) {
        // SAFETY: rte_pdump_init succeeded earlier and EAL memory is still
        // mapped (cleanup has not run yet); uninit unregisters the mp
        // action and frees the statistics memzone.
        let ret = unsafe { sys::rte_pdump_uninit() };
        if ret < 0 {
            tracing::warn!(ret, "rte_pdump_uninit failed");
        }
    }
}

/// EAL's runtime directory (`rte_eal_get_runtime_dir`).
fn runtime_dir() -> PathBuf {
    // SAFETY: returns a pointer to EAL's static, NUL-terminated path buffer,
    // set at init and never freed; it is copied out at once.
    let p = unsafe { sys::rte_eal_get_runtime_dir() };
    if p.is_null() {
        return PathBuf::new();
    }
    // SAFETY: non-NULL pointer to a NUL-terminated string (see above).
    PathBuf::from(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}
