//! EAL lifetime and lcores: `rte_eal_init`, lcore queries, remote launch,
//! `rte_eal_cleanup`.
//!
//! Layer: startup/shutdown control path. Guarantees: EAL is initialised at
//! most once per process; the argv EAL keeps pointers into lives for the
//! whole process; a closure launched on an lcore runs exactly once or is
//! dropped on the caller's thread if the launch fails; cleanup never frees
//! memory a live handle points into. Refuses: launching on the main lcore or
//! on an lcore not enabled by `-l`/`-c`.

use std::ffi::{c_char, c_int, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{control, hugepages, rte_errno, strerror, sys};
use crate::HwError;

/// Set while an `Eal` exists or has existed: EAL initialises once per
/// process (`rte_eal_init` itself returns `EALREADY` on a second call, and a
/// cleaned-up EAL cannot be re-initialised either).
static EAL_TAKEN: AtomicBool = AtomicBool::new(false);

/// argv\[0\] handed to EAL; it appears in DPDK's log lines and
/// `/proc/<pid>/cmdline`-style diagnostics only.
const ARGV0: &str = "fulcrum";

/// What [`Eal::wait_lcore`] returns for a closure that panicked: the panic
/// is caught on the lcore (unwinding into C is undefined behaviour) and
/// reported here; the panic message went through the panic hook.
pub const LCORE_PANICKED: i32 = i32::MIN;

/// The initialised DPDK Environment Abstraction Layer: proof that
/// `rte_eal_init` succeeded, and the handle for every control-path DPDK call.
///
/// At most one exists per process. The methods that configure ports are
/// serialised by a process-wide lock (DPDK's control API is not thread-safe),
/// so sharing `&Eal` between threads is fine.
#[derive(Debug)]
pub struct Eal {
    main_lcore: u32,
}

/// A launched closure, boxed twice so that a thin pointer crosses C.
type LcoreJob = Box<dyn FnOnce() -> i32 + Send + 'static>;

impl Eal {
    /// Initialises EAL with `args` (argv\[0\] is added here), e.g.
    /// `["-l","0-1","--no-huge","-m","512","--no-pci",
    /// "--vdev=net_pcap0,rx_pcap=a.pcap,tx_pcap=b.pcap","--file-prefix=x"]`.
    ///
    /// `rte_eal_init` pins the calling thread to the main lcore's CPU, and
    /// threads spawned afterwards from it inherit that affinity: spawn
    /// control threads before, or re-pin them. It also probes the devices
    /// (`-a`, `--vdev`), so ports exist when this returns. It takes about
    /// 120–200 ms. The argument strings are leaked on purpose: EAL keeps
    /// pointers into argv (device args, file prefix) for the process
    /// lifetime.
    ///
    /// # Errors
    /// - [`HwError::EalAlreadyInitialised`] on a second call in the process
    ///   (also after [`Eal::cleanup`]);
    /// - [`HwError::BadEalArg`] if an argument contains a NUL byte;
    /// - [`HwError::NoHugepages`] if `--no-huge` is absent and
    ///   `/proc/meminfo` shows no free hugepage or no hugetlbfs is mounted
    ///   (checked before calling EAL);
    /// - [`HwError::EalInit`] with `rte_strerror(rte_errno)` if
    ///   `rte_eal_init` fails.
    pub fn init(args: &[String]) -> Result<Eal, HwError> {
        if EAL_TAKEN.swap(true, Ordering::AcqRel) {
            return Err(HwError::EalAlreadyInitialised);
        }
        match Self::init_inner(args) {
            Ok(eal) => Ok(eal),
            Err(e) => {
                // Nothing of EAL is up: let a corrected retry reach
                // rte_eal_init, which reports EALREADY itself if it got far
                // enough to refuse.
                EAL_TAKEN.store(false, Ordering::Release);
                Err(e)
            }
        }
    }

    fn init_inner(args: &[String]) -> Result<Eal, HwError> {
        let mut c_args = Vec::with_capacity(args.len() + 1);
        c_args.push(CString::new(ARGV0).expect("argv0 has no NUL"));
        for a in args {
            c_args
                .push(CString::new(a.as_str()).map_err(|_| HwError::BadEalArg { arg: a.clone() })?);
        }
        hugepages::check_now(args)?;
        let argc = c_int::try_from(c_args.len()).map_err(|_| HwError::BadEalArg {
            arg: format!("{} arguments", c_args.len()),
        })?;
        // Leaked on purpose (see the doc comment): EAL may keep and permute
        // these pointers. C convention: argv[argc] is NULL.
        let mut argv: Vec<*mut c_char> = c_args.into_iter().map(CString::into_raw).collect();
        argv.push(ptr::null_mut());
        let argv: &'static mut [*mut c_char] = Box::leak(argv.into_boxed_slice());

        // SAFETY: argc counts the non-NULL entries of argv; every entry is a
        // leaked, NUL-terminated CString valid (and never freed) for the
        // process lifetime, as EAL requires; EAL_TAKEN guarantees this is the
        // only call in flight.
        let ret = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            let errno = rte_errno();
            return Err(HwError::EalInit {
                reason: strerror(errno),
                errno,
                args: args.to_vec(),
            });
        }
        // SAFETY: EAL is initialised; rte_get_main_lcore only reads its
        // configuration.
        let main_lcore = unsafe { sys::rte_get_main_lcore() };
        Ok(Eal { main_lcore })
    }

    /// The main lcore id: the lcore of the thread that called [`Eal::init`]
    /// (first of `-l` unless `--main-lcore` says otherwise).
    pub fn main_lcore(&self) -> u32 {
        self.main_lcore
    }

    /// Whether `lcore` was enabled by `-l`/`-c` (`rte_lcore_is_enabled`).
    /// Ids at or above `RTE_MAX_LCORE` (128) are never enabled.
    pub fn lcore_enabled(&self, lcore: u32) -> bool {
        if lcore >= sys::RTE_MAX_LCORE {
            return false;
        }
        // SAFETY: EAL is initialised and lcore < RTE_MAX_LCORE (the function
        // indexes a RTE_MAX_LCORE-long table without checking).
        unsafe { sys::rte_lcore_is_enabled(lcore) != 0 }
    }

    /// The NUMA socket of `lcore` (`rte_lcore_to_socket_id`).
    ///
    /// Returns `u32::MAX` for ids at or above `RTE_MAX_LCORE`; `u32::MAX as
    /// i32` is `SOCKET_ID_ANY` (-1), so the value can be passed straight to
    /// [`Eal::create_mempool`].
    pub fn lcore_socket(&self, lcore: u32) -> u32 {
        if lcore >= sys::RTE_MAX_LCORE {
            return u32::MAX;
        }
        // SAFETY: EAL is initialised and lcore < RTE_MAX_LCORE (unchecked
        // table index in DPDK).
        unsafe { sys::rte_lcore_to_socket_id(lcore) }
    }

    /// Runs `f` on worker lcore `lcore` (`rte_eal_remote_launch`); its
    /// return value is collected by [`Eal::wait_lcore`]. Startup only: the
    /// closure is boxed.
    ///
    /// The lcore's thread is pinned by EAL; `f` is a worker's whole life
    /// (the run-to-completion loop). A panic in `f` is caught there and
    /// reported as [`LCORE_PANICKED`].
    ///
    /// # Errors
    /// [`HwError::Launch`] if `lcore` is not enabled, is the main lcore (it
    /// is the caller's own thread), or is still running an earlier closure
    /// (`-EBUSY`). `f` is dropped on the calling thread in that case.
    pub fn launch<F: FnOnce() -> i32 + Send + 'static>(
        &self,
        lcore: u32,
        f: F,
    ) -> Result<(), HwError> {
        if !self.lcore_enabled(lcore) {
            return Err(HwError::Launch {
                lcore,
                reason: "lcore not enabled in eal_args (-l/-c)".into(),
            });
        }
        if lcore == self.main_lcore {
            return Err(HwError::Launch {
                lcore,
                reason: "it is the main lcore (the caller's own thread)".into(),
            });
        }
        // DPDK documents remote launch as main-lcore-only because it is not
        // safe against a concurrent launch on the same worker; `&Eal` may be
        // shared, so launches are serialised here instead.
        let job: Box<LcoreJob> = Box::new(Box::new(f));
        let arg = Box::into_raw(job).cast::<c_void>();
        let ret = {
            let _ctl = control();
            // SAFETY: lcore is an enabled worker lcore; `arg` is a valid
            // Box<LcoreJob> pointer that the trampoline takes back exactly
            // once, and only if this call returns 0.
            unsafe { sys::rte_eal_remote_launch(Some(lcore_trampoline), arg, lcore) }
        };
        if ret != 0 {
            // Dropped after the control lock is released: the closure may
            // own DpdkQueue handles, whose Drop takes that lock.
            // SAFETY: the launch failed, so the trampoline will never run and
            // this is the only owner of the box created above.
            drop(unsafe { Box::from_raw(arg.cast::<LcoreJob>()) });
            return Err(HwError::Launch {
                lcore,
                reason: strerror(-ret),
            });
        }
        Ok(())
    }

    /// Waits for the closure launched on `lcore` to return and gives its
    /// return value (`rte_eal_wait_lcore`); [`LCORE_PANICKED`] if it
    /// panicked.
    ///
    /// If nothing is running there (DPDK's WAIT state) it returns at once
    /// with the last closure's value, 0 if none ever ran. Returns 0 for the
    /// main lcore and for disabled or out-of-range ids. Blocks the calling
    /// thread while a closure runs (call it from a control thread, never a
    /// worker).
    pub fn wait_lcore(&self, lcore: u32) -> i32 {
        if !self.lcore_enabled(lcore) || lcore == self.main_lcore {
            return 0;
        }
        // SAFETY: lcore is an enabled worker lcore id < RTE_MAX_LCORE.
        unsafe { sys::rte_eal_wait_lcore(lcore) }
    }

    /// Shuts EAL down (`rte_eal_cleanup`), releasing hugepage memory and
    /// EAL's files so the next start is clean.
    ///
    /// First waits for every worker lcore's closure to return
    /// (`rte_eal_mp_wait_lcore`). Then frees DPDK memory only if nothing can
    /// still point into it: no [`super::Mempool`] or [`super::DpdkQueue`]
    /// handle alive and no mbuf of any pool in use (stop and close ports
    /// first so the drivers return their mbufs). Otherwise it logs a warning
    /// and skips `rte_eal_cleanup`, leaving the memory to process exit,
    /// because freeing it under a live handle would be a use-after-free.
    /// EAL cannot be initialised again in this process either way.
    ///
    /// Returns whether `rte_eal_cleanup` ran (and succeeded); callers that
    /// are about to exit may ignore it.
    pub fn cleanup(self) -> bool {
        // SAFETY: EAL is initialised; waiting for the worker lcores has no
        // preconditions and must precede freeing the memory they use.
        unsafe { sys::rte_eal_mp_wait_lcore() };
        let ctl = control();
        let mut n_in_use: u64 = 0;
        for &p in &ctl.pools {
            // SAFETY: `p` came from a successful rte_pktmbuf_pool_create and
            // pools are never freed before rte_eal_cleanup, which has not
            // run (self is the only Eal and is consumed only here).
            n_in_use +=
                u64::from(unsafe { sys::rte_mempool_in_use_count(p as *const sys::rte_mempool) });
        }
        if !ctl.claimed.is_empty() || ctl.n_pool_handles != 0 || n_in_use != 0 {
            tracing::warn!(
                n_queue_handles = ctl.claimed.len(),
                n_pool_handles = ctl.n_pool_handles,
                n_mbufs_in_use = n_in_use,
                "skipping rte_eal_cleanup: DPDK memory is still referenced (drop queues, pools and \
                 mbufs, and stop/close ports first); the OS reclaims it at exit"
            );
            return false;
        }
        // The capture server's memzone lives in EAL memory: release it
        // first (the ports are closed, so no capture callback can run).
        super::capture::uninit_capture();
        // SAFETY: no handle into DPDK memory is alive (checked above under
        // the control lock, which also keeps new ones from being made), the
        // lcores are idle, and `self` is consumed so no Eal method can run
        // afterwards.
        let ret = unsafe { sys::rte_eal_cleanup() };
        if ret != 0 {
            tracing::warn!(ret, reason = %strerror(-ret), "rte_eal_cleanup failed");
        }
        ret == 0
    }
}

/// Entry point EAL calls on the worker lcore: takes back the boxed closure,
/// runs it, and keeps a panic from unwinding into C.
extern "C" fn lcore_trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the pointer Box::into_raw produced in Eal::launch for
    // a launch that succeeded; EAL passes it to exactly one call of this
    // function, so this takes sole ownership back.
    let job = unsafe { Box::from_raw(arg.cast::<LcoreJob>()) };
    catch_unwind(AssertUnwindSafe(move || (*job)())).unwrap_or(LCORE_PANICKED)
}
