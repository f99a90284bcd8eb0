//! Port device counters: `rte_eth_stats_get` (the generic counters every
//! PMD fills) and `rte_eth_xstats_get_names` + `rte_eth_xstats_get` (the
//! PMD's extended counters, by name).
//!
//! Layer: control path, read-only. The control thread calls these about once
//! a second; they take the control lock (ethdev's control API is not
//! thread-safe) and allocate, so a worker must never call them. Guarantees:
//! values are copied out as DPDK reports them (cumulative since the port
//! started or its counters were last reset, never reset here). Refuses:
//! invalid port ids ([`HwError::BadPortId`]).

use std::ffi::c_char;

use super::port::{cstr_lossy, port_err};
use super::{control, sys, Eal};
use crate::HwError;

/// A port's generic counters (`struct rte_eth_stats`), cumulative since the
/// port started. Units: packets, bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received successfully (`ipackets`).
    pub ipackets: u64,
    /// Packets transmitted successfully (`opackets`).
    pub opackets: u64,
    /// Bytes received successfully (`ibytes`).
    pub ibytes: u64,
    /// Bytes transmitted successfully (`obytes`).
    pub obytes: u64,
    /// Packets the device dropped because no RX descriptor was free: the
    /// workers did not poll fast enough (`imissed`).
    pub imissed: u64,
    /// Erroneous received packets (`ierrors`).
    pub ierrors: u64,
    /// Failed transmissions (`oerrors`).
    pub oerrors: u64,
    /// RX mbuf allocation failures (`rx_nombuf`): the mempool ran dry.
    pub rx_nombuf: u64,
}

impl Eal {
    /// The generic counters of `port_id` (`rte_eth_stats_get`).
    ///
    /// # Errors
    /// [`HwError::BadPortId`]; [`HwError::PortSetup`] with step
    /// `rte_eth_stats_get` if the driver fails.
    pub fn port_stats(&self, port_id: u16) -> Result<PortStats, HwError> {
        let _ctl = control();
        self.check_port(port_id)?;
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: port_id is valid; `s` is a valid out pointer DPDK fills.
        let ret = unsafe { sys::rte_eth_stats_get(port_id, &mut s) };
        if ret < 0 {
            return Err(port_err(&self.port_name(port_id), "rte_eth_stats_get", ret));
        }
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Every extended counter of `port_id` as (name, value), in the PMD's
    /// order (`rte_eth_xstats_get_names` + `rte_eth_xstats_get`), e.g.
    /// `("rx_good_packets", 12)`, `("rx_q0_bytes", 840)`. Names are
    /// DPDK's, at most `RTE_ETH_XSTATS_NAME_SIZE - 1` (63) bytes.
    ///
    /// # Errors
    /// [`HwError::BadPortId`]; [`HwError::PortSetup`] naming the failed
    /// call if the driver fails.
    pub fn port_xstats(&self, port_id: u16) -> Result<Vec<(String, u64)>, HwError> {
        let _ctl = control();
        self.check_port(port_id)?;
        // The count can change between calls only when queues are
        // reconfigured, which needs the control lock held here; still,
        // DPDK returns the needed size when the array is too small, so
        // retry a few times instead of trusting the first answer.
        for _ in 0..4 {
            // SAFETY: port_id is valid; a NULL array with size 0 asks for
            // the number of xstats.
            let n = unsafe { sys::rte_eth_xstats_get_names(port_id, std::ptr::null_mut(), 0) };
            if n < 0 {
                return Err(port_err(
                    &self.port_name(port_id),
                    "rte_eth_xstats_get_names",
                    n,
                ));
            }
            let n = n as usize;
            let mut names = vec![sys::rte_eth_xstat_name::default(); n];
            let mut values = vec![sys::rte_eth_xstat::default(); n];
            // SAFETY: `names` has room for n entries, the size passed.
            let got_names =
                unsafe { sys::rte_eth_xstats_get_names(port_id, names.as_mut_ptr(), n as u32) };
            // SAFETY: `values` has room for n entries, the size passed.
            let got_values =
                unsafe { sys::rte_eth_xstats_get(port_id, values.as_mut_ptr(), n as u32) };
            if got_names < 0 {
                return Err(port_err(
                    &self.port_name(port_id),
                    "rte_eth_xstats_get_names",
                    got_names,
                ));
            }
            if got_values < 0 {
                return Err(port_err(
                    &self.port_name(port_id),
                    "rte_eth_xstats_get",
                    got_values,
                ));
            }
            if got_names as usize > n || got_values as usize > n {
                continue;
            }
            let n = (got_names as usize).min(got_values as usize);
            return Ok(values[..n]
                .iter()
                .map(|v| {
                    // `id` indexes the names array (DPDK's contract); an
                    // out-of-range id would be a driver bug, shown as such.
                    let name = names
                        .get(v.id as usize)
                        .map_or_else(|| format!("xstat{}", v.id), |nm| xstat_name(&nm.name));
                    (name, v.value)
                })
                .collect());
        }
        Err(HwError::PortSetup {
            device: self.port_name(port_id),
            step: "rte_eth_xstats_get",
            reason: "the number of xstats kept changing".into(),
            ret: -libc::EAGAIN,
        })
    }
}

/// A NUL-terminated name from a fixed `char[64]` DPDK filled.
fn xstat_name(buf: &[c_char]) -> String {
    if buf.contains(&0) {
        cstr_lossy(buf.as_ptr())
    } else {
        // Not terminated: a driver bug; take the bytes as they are.
        String::from_utf8_lossy(&buf.iter().map(|&c| c as u8).collect::<Vec<u8>>()).into_owned()
    }
}
