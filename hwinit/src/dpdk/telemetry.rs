//! Application commands in DPDK's telemetry (`rte_telemetry_register_cmd`),
//! so that `dpdk-telemetry.py` lists and shows them next to DPDK's own
//! (`/ethdev/stats`, `/eal/params`, ...).
//!
//! Layer: control path. DPDK runs the callbacks on its own telemetry thread
//! (a plain pthread EAL starts at init that serves
//! `/var/run/dpdk/<file-prefix>/dpdk_telemetry.v2`), in C. One Rust
//! trampoline is registered for every command; it asks the one
//! [`TelemetryProvider`] set with [`Eal::register_telemetry`] (a global set
//! once: DPDK's callback carries no user pointer) and writes the answer with
//! `rte_tel_data_start_dict` / `rte_tel_data_add_dict_u64` /
//! `rte_tel_data_add_dict_string` / `rte_tel_data_add_dict_container`.
//!
//! Guarantees: a panic in the provider is caught in the trampoline (it
//! must not unwind into C) and answered as an error (DPDK prints `null`);
//! the provider is `Send + Sync` because it runs on DPDK's thread, and it
//! should only read data the control side already published (it must not
//! block: DPDK serves one client per thread, but a slow answer stalls that
//! client). Refuses: command names DPDK refuses (they must start with `/`,
//! use only letters, digits, `_` and `/`, and be under 56 bytes), a second
//! provider.
//!
//! Shapes DPDK imposes (22.11 `rte_telemetry.h`): at most
//! `RTE_TEL_MAX_DICT_ENTRIES` (256) entries per dict (the rest are dropped),
//! names and strings under `RTE_TEL_MAX_STRING_LEN` (128) bytes, one level of
//! nesting (a dict of dicts of scalars), and the whole JSON answer within
//! DPDK's 16 KiB output buffer (DPDK truncates beyond).

use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use super::sys;
use crate::HwError;

/// One value of a telemetry answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TelValue {
    /// An unsigned counter (`rte_tel_data_add_dict_u64`).
    U64(u64),
    /// A string (`rte_tel_data_add_dict_string`).
    Str(String),
    /// A nested dict (`rte_tel_data_add_dict_container`); its own entries
    /// must be scalars: a dict nested inside it is skipped, because DPDK
    /// 22.11 renders one level of nesting only.
    Dict(Vec<(String, TelValue)>),
}

/// What answers fulcrum's telemetry commands. Called on DPDK's telemetry
/// thread.
pub trait TelemetryProvider: Send + Sync + 'static {
    /// The answer to `cmd` (one of the names registered) with `params`
    /// (the text after the first `,` of the request, empty if none), as the
    /// entries of the top-level dict; `None` makes DPDK print `null` for it
    /// (an unknown command or bad parameters).
    fn answer(&self, cmd: &str, params: &str) -> Option<Vec<(String, TelValue)>>;
}

/// One command to register: its name (e.g. `/fulcrum/workers`) and the
/// help text `dpdk-telemetry.py` shows for `/help,<cmd>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelCommand {
    /// Command name: starts with `/`; letters, digits, `_` and `/`; under
    /// 56 bytes.
    pub name: &'static str,
    /// Help text, under 128 bytes.
    pub help: &'static str,
}

/// The provider every registered command's trampoline asks. Set once:
/// DPDK's `telemetry_cb` has no user-data argument, so the trampoline can
/// only find its provider through a global, and a `OnceLock` makes the
/// read on DPDK's thread race-free without a lock.
static PROVIDER: OnceLock<Box<dyn TelemetryProvider>> = OnceLock::new();

impl super::Eal {
    /// Sets `provider` as the answerer of `commands` and registers each
    /// command with `rte_telemetry_register_cmd`. Telemetry is served by
    /// EAL's telemetry thread from init on (unless `--no-telemetry`), so the
    /// commands are listed by `dpdk-telemetry.py`'s `/` at once.
    ///
    /// # Errors
    /// [`HwError::Telemetry`] if a provider was already set (nothing is
    /// registered then), or naming the first command DPDK refused
    /// (`-EINVAL`: bad name or help; `-ENOMEM`); commands before it stay
    /// registered.
    pub fn register_telemetry(
        &self,
        provider: Box<dyn TelemetryProvider>,
        commands: &[TelCommand],
    ) -> Result<(), HwError> {
        let err = |cmd: &str, reason: String| HwError::Telemetry {
            cmd: cmd.to_string(),
            reason,
        };
        if PROVIDER.set(provider).is_err() {
            return Err(err(
                commands.first().map_or("", |c| c.name),
                "a telemetry provider is already set in this process".into(),
            ));
        }
        for c in commands {
            let name = CString::new(c.name).map_err(|_| err(c.name, "NUL in name".into()))?;
            let help = CString::new(c.help).map_err(|_| err(c.name, "NUL in help".into()))?;
            // SAFETY: both are valid C strings that DPDK copies
            // (strlcpy into its callback table) before returning; the
            // trampoline is a valid `telemetry_cb` for the process
            // lifetime.
            let ret = unsafe {
                sys::rte_telemetry_register_cmd(name.as_ptr(), Some(trampoline), help.as_ptr())
            };
            if ret < 0 {
                return Err(err(
                    c.name,
                    format!(
                        "rte_telemetry_register_cmd refused it ({}): names start with '/', use \
                         letters, digits, '_' and '/', under 56 bytes; help under 128",
                        super::strerror(-ret)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The `telemetry_cb` DPDK calls on its telemetry thread for every
/// registered command.
unsafe extern "C" fn trampoline(
    cmd: *const c_char,
    params: *const c_char,
    d: *mut sys::rte_tel_data,
) -> c_int {
    let text = |p: *const c_char| {
        if p.is_null() {
            String::new()
        } else {
            // SAFETY: DPDK passes NUL-terminated strings from its request
            // buffer that live for the duration of the call.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    if d.is_null() {
        return -1;
    }
    let (cmd, params) = (text(cmd), text(params));
    let answer = catch_unwind(AssertUnwindSafe(|| {
        PROVIDER.get().and_then(|p| p.answer(&cmd, &params))
    }));
    let Ok(Some(entries)) = answer else {
        return -1;
    };
    // SAFETY: `d` is the non-NULL rte_tel_data DPDK owns for this call.
    unsafe { write_dict(d, &entries, true) };
    0
}

/// Starts `d` as a dict and adds `entries`; nested dicts only if `nest`.
/// Entries DPDK refuses (full dict, names too long) are dropped, as DPDK
/// itself drops them.
///
/// # Safety
/// `d` must point to a valid `rte_tel_data` that nothing else uses during
/// the call.
unsafe fn write_dict(d: *mut sys::rte_tel_data, entries: &[(String, TelValue)], nest: bool) {
    // SAFETY: `d` is valid (the caller's contract).
    unsafe { sys::rte_tel_data_start_dict(d) };
    for (name, v) in entries.iter().take(sys::RTE_TEL_MAX_DICT_ENTRIES as usize) {
        let Ok(name) = CString::new(name.as_str()) else {
            continue;
        };
        match v {
            // SAFETY: `d` is a started dict; `name` is a valid C string
            // DPDK copies.
            TelValue::U64(x) => unsafe {
                sys::rte_tel_data_add_dict_u64(d, name.as_ptr(), *x);
            },
            TelValue::Str(s) => {
                let Ok(s) = CString::new(s.as_str()) else {
                    continue;
                };
                // SAFETY: as above; DPDK copies `s` too.
                unsafe { sys::rte_tel_data_add_dict_string(d, name.as_ptr(), s.as_ptr()) };
            }
            TelValue::Dict(inner) if nest => {
                // SAFETY: allocates a fresh rte_tel_data (NULL on failure).
                let c = unsafe { sys::rte_tel_data_alloc() };
                if c.is_null() {
                    continue;
                }
                // SAFETY: `c` is the valid container just allocated, used
                // only here.
                unsafe { write_dict(c, inner, false) };
                // SAFETY: `d` is a started dict and `c` a dict; keep = 0
                // hands `c` to DPDK, which frees it with `d`, on success.
                let ret = unsafe { sys::rte_tel_data_add_dict_container(d, name.as_ptr(), c, 0) };
                if ret != 0 {
                    // SAFETY: refused, so `c` is still ours to free.
                    unsafe { sys::rte_tel_data_free(c) };
                }
            }
            TelValue::Dict(_) => {}
        }
    }
}
