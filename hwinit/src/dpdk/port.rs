//! Ethernet ports: lookup by device name, setup (queues, RSS, offloads, MTU,
//! promiscuous mode) checked against the device's capabilities, MAC, link
//! status, stop and close.
//!
//! Layer: startup/shutdown control path. Guarantees: nothing is requested
//! from a device that `rte_eth_dev_info_get` does not report; everything
//! that was asked for but could not be granted is returned in
//! [`PortInfo::downgraded`] and logged with `tracing::warn!`, except a queue
//! shortfall, which is an error because the daemon needs one RX and one TX
//! queue per worker. Refuses: reconfiguring or re-addressing a port while
//! [`super::DpdkQueue`] handles of it are alive; MTUs whose frames do not
//! fit one mbuf (no scattered RX).

use std::ffi::{c_char, CStr, CString};

use super::{control, strerror, sys, Control, Eal, Mempool};
use crate::HwError;

/// Bytes a frame adds to the MTU in the worst case fulcrum accepts:
/// Ethernet header 14 + one 802.1Q tag 4 + FCS 4 (some drivers DMA it even
/// when stripping).
const FRAME_OVERHEAD_BYTES: u32 = 14 + 4 + 4;

/// How to set up one port. Field units: queue counts, descriptors per
/// queue, MTU in bytes (L3 payload of an Ethernet frame, RFC 894).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSetup {
    /// RX queues, one per worker; at least 1.
    pub n_rxq: u16,
    /// TX queues, one per worker; at least 1.
    pub n_txq: u16,
    /// RX descriptors per queue; adjusted to the device's limits
    /// (`rte_eth_dev_adjust_nb_rx_tx_desc`), 0 = driver default.
    pub rx_desc: u16,
    /// TX descriptors per queue; adjusted like `rx_desc`.
    pub tx_desc: u16,
    /// Accept frames for any destination MAC. Ignored with a note if the
    /// driver cannot.
    pub promiscuous: bool,
    /// Spread flows over the RX queues by RSS (IPv4/IPv6 addresses and
    /// TCP/UDP ports). Only enabled with more than one RX queue and if the
    /// device reports RSS hash types; otherwise a note is recorded and
    /// every flow lands on queue 0 (the dataplane's software redirect still
    /// delivers it to its owner).
    pub rss: bool,
    /// MTU in bytes; `None` keeps the driver's default (1500 for most).
    pub mtu: Option<u16>,
}

impl Default for PortSetup {
    /// One RX and one TX queue, 1024 descriptors each, RSS wanted, not
    /// promiscuous, driver MTU.
    fn default() -> Self {
        PortSetup {
            n_rxq: 1,
            n_txq: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            promiscuous: false,
            rss: true,
            mtu: None,
        }
    }
}

/// What [`Eal::setup_port`] set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// DPDK port id.
    pub port_id: u16,
    /// The port's MAC address after any [`Eal::set_mac`], 6 bytes in wire
    /// order.
    pub mac: [u8; 6],
    /// The PMD's name, e.g. `net_ring`, `net_pcap`, `net_ixgbe`.
    pub driver: String,
    /// RX queues configured.
    pub n_rxq: u16,
    /// TX queues configured.
    pub n_txq: u16,
    /// RX descriptors per queue after adjustment to the device's limits.
    pub rx_desc: u16,
    /// TX descriptors per queue after adjustment to the device's limits.
    pub tx_desc: u16,
    /// Whether RSS (`RTE_ETH_MQ_RX_RSS`) is on.
    pub rss_enabled: bool,
    /// Human-readable notes, one per feature that was requested but is not
    /// supported by the device (RSS, RSS hash types, RSS hash delivery,
    /// promiscuous mode, a MAC kept in software) or was adjusted
    /// (descriptor counts).
    pub downgraded: Vec<String>,
}

/// A port's link state (`rte_eth_link_get_nowait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStatus {
    /// Link is up.
    pub up: bool,
    /// Negotiated speed in Mbit/s; 0 when down or unknown.
    pub speed_mbps: u32,
}

impl Eal {
    /// The port id of device `device` (`rte_eth_dev_get_port_by_name`), e.g.
    /// `net_pcap0`, `net_af_packet0`, `0000:03:00.0`.
    ///
    /// # Errors
    /// [`HwError::PortNotFound`], listing the names of every probed port and
    /// how to add one.
    pub fn port_by_name(&self, device: &str) -> Result<u16, HwError> {
        let not_found = || HwError::PortNotFound {
            name: device.to_string(),
            probed: self.ports().into_iter().map(|(_, n)| n).collect(),
        };
        let c_name = CString::new(device).map_err(|_| not_found())?;
        let mut port_id: u16 = 0;
        // SAFETY: c_name is a valid C string; port_id is a valid out pointer.
        let ret = unsafe { sys::rte_eth_dev_get_port_by_name(c_name.as_ptr(), &mut port_id) };
        if ret != 0 {
            return Err(not_found());
        }
        Ok(port_id)
    }

    /// Every probed port as (port id, device name), in port-id order.
    pub fn ports(&self) -> Vec<(u16, String)> {
        let mut out = Vec::new();
        // SAFETY: rte_eth_find_next accepts any id and returns the next
        // valid one at or after it, or RTE_MAX_ETHPORTS.
        let mut p = unsafe { sys::rte_eth_find_next(0) };
        while u32::from(p) < sys::RTE_MAX_ETHPORTS {
            out.push((p, self.port_name(p)));
            // SAFETY: as above.
            p = unsafe { sys::rte_eth_find_next(p + 1) };
        }
        out
    }

    /// Sets the port's MAC address (`rte_eth_dev_default_mac_addr_set`).
    ///
    /// Call before [`Eal::setup_port`] (whose [`PortInfo::mac`] then shows
    /// it) and before [`Eal::queue`] (handles cache the MAC). Used to pin
    /// the MAC of PMDs that make one up, such as `net_pcap`.
    ///
    /// Software-only drivers that cannot change their address (`net_pcap`,
    /// `net_ring` return `-ENOTSUP`) do not filter by MAC either, so the
    /// address is then kept in software: [`PortInfo::mac`] and
    /// [`crate::PortQueue::mac`] report it, frames fulcrum builds carry it,
    /// a warning is logged and a note is added to [`PortInfo::downgraded`].
    ///
    /// # Errors
    /// [`HwError::BadPortId`]; [`HwError::PortBusy`] if queue handles of the
    /// port are alive; [`HwError::PortSetup`] if the driver refuses for any
    /// other reason (e.g. `-EINVAL`: not a unicast address).
    pub fn set_mac(&self, port_id: u16, mac: [u8; 6]) -> Result<(), HwError> {
        let mut ctl = control();
        self.check_port(port_id)?;
        let device = self.port_name(port_id);
        let n_queues = ctl
            .claimed
            .range((port_id, 0)..=(port_id, u16::MAX))
            .count();
        if n_queues != 0 {
            return Err(HwError::PortBusy {
                device,
                what: "set_mac",
                n_queues,
            });
        }
        let mut addr = sys::rte_ether_addr { addr_bytes: mac };
        // SAFETY: port_id is valid; addr is a valid rte_ether_addr that DPDK
        // only reads.
        let ret = unsafe { sys::rte_eth_dev_default_mac_addr_set(port_id, &mut addr) };
        if ret == -libc::ENOTSUP && mac[0] & 1 == 0 && mac != [0; 6] {
            tracing::warn!(
                port = %device,
                mac = %fmt_mac(mac),
                "driver cannot change its MAC: the MAC is kept in software (frames fulcrum builds \
                 use it; the driver receives without filtering by MAC)"
            );
            ctl.soft_macs.insert(port_id, mac);
            return Ok(());
        }
        if ret < 0 {
            return Err(port_err(&device, "rte_eth_dev_default_mac_addr_set", ret));
        }
        ctl.soft_macs.remove(&port_id);
        Ok(())
    }

    /// Configures and starts `port_id`: `cfg.n_rxq` RX and `cfg.n_txq` TX
    /// queues whose RX mbufs come from `pool`, on the port's NUMA socket.
    ///
    /// Steps, each checked against `rte_eth_dev_info_get`: queue counts
    /// (error if the device has fewer); RSS over IP/TCP/UDP hash types the
    /// device reports, only with more than one RX queue; the
    /// `RSS_HASH` RX offload if RSS is on and the device reports it (no
    /// other offload is requested, so none can be refused); MTU within the
    /// device's range and one mbuf; `rte_eth_dev_configure`;
    /// `rte_eth_dev_adjust_nb_rx_tx_desc`; RX/TX queue setup; start;
    /// promiscuous mode. What could not be granted goes to
    /// [`PortInfo::downgraded`] and to `tracing::warn!`.
    ///
    /// # Errors
    /// [`HwError::BadPortId`]; [`HwError::PortBusy`] while queue handles of
    /// the port are alive; [`HwError::TooFewQueues`] naming the device and
    /// its maximum; [`HwError::BadMtu`]; [`HwError::PortSetup`] naming the
    /// failed DPDK call and `rte_strerror` (e.g. the port is already
    /// started: stop it first).
    pub fn setup_port(
        &self,
        port_id: u16,
        cfg: &PortSetup,
        pool: &Mempool,
    ) -> Result<PortInfo, HwError> {
        let ctl = control();
        self.check_port(port_id)?;
        let device = self.port_name(port_id);
        let n_queues = ctl
            .claimed
            .range((port_id, 0)..=(port_id, u16::MAX))
            .count();
        if n_queues != 0 {
            return Err(HwError::PortBusy {
                device,
                what: "setup_port",
                n_queues,
            });
        }
        if cfg.n_rxq == 0 || cfg.n_txq == 0 {
            return Err(HwError::PortSetup {
                device,
                step: "PortSetup check",
                reason: "n_rxq and n_txq must be at least 1".into(),
                ret: -libc::EINVAL,
            });
        }
        let info = self.dev_info(port_id)?;
        for (dir, requested, max) in [
            ("rx", cfg.n_rxq, info.max_rx_queues),
            ("tx", cfg.n_txq, info.max_tx_queues),
        ] {
            if requested > max {
                return Err(HwError::TooFewQueues {
                    device,
                    dir,
                    requested,
                    max,
                });
            }
        }
        let driver = cstr_lossy(info.driver_name);
        let mut downgraded = Vec::new();
        let mut conf = sys::rte_eth_conf::default();

        let rss_enabled = plan_rss(cfg, &info, &driver, &mut conf, &mut downgraded);

        if let Some(mtu) = cfg.mtu {
            check_mtu(&device, mtu, &info, pool)?;
            conf.rxmode.mtu = u32::from(mtu);
        }

        // SAFETY: port_id is valid; conf is a fully initialised rte_eth_conf
        // that DPDK copies; queue counts are within the device's maxima.
        let ret = unsafe { sys::rte_eth_dev_configure(port_id, cfg.n_rxq, cfg.n_txq, &conf) };
        if ret < 0 {
            return Err(port_err(&device, "rte_eth_dev_configure", ret));
        }

        let (mut rx_desc, mut tx_desc) = (cfg.rx_desc, cfg.tx_desc);
        // SAFETY: port_id is valid and configured; both are valid in/out
        // pointers.
        let ret =
            unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &mut rx_desc, &mut tx_desc) };
        if ret < 0 {
            return Err(port_err(&device, "rte_eth_dev_adjust_nb_rx_tx_desc", ret));
        }
        for (dir, asked, got) in [("RX", cfg.rx_desc, rx_desc), ("TX", cfg.tx_desc, tx_desc)] {
            if asked != 0 && asked != got {
                downgraded.push(format!(
                    "{dir} descriptors per queue adjusted from {asked} to {got} (device limits)"
                ));
            }
        }

        // SAFETY: port_id is valid.
        let socket = unsafe { sys::rte_eth_dev_socket_id(port_id) };
        // SOCKET_ID_ANY (-1) when unknown, which queue setup accepts.
        let socket = u32::try_from(socket).unwrap_or(u32::MAX);
        for q in 0..cfg.n_rxq {
            // SAFETY: port configured with n_rxq queues and q < n_rxq; a NULL
            // rxconf selects the device defaults; `pool` is a live pktmbuf
            // pool that outlives the port (pools are never freed before
            // rte_eal_cleanup, which needs the ports closed).
            let ret = unsafe {
                sys::rte_eth_rx_queue_setup(
                    port_id,
                    q,
                    rx_desc,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            if ret < 0 {
                return Err(port_err(&device, "rte_eth_rx_queue_setup", ret));
            }
        }
        for q in 0..cfg.n_txq {
            // SAFETY: port configured with n_txq queues and q < n_txq; a NULL
            // txconf selects the device defaults.
            let ret = unsafe {
                sys::rte_eth_tx_queue_setup(port_id, q, tx_desc, socket, std::ptr::null())
            };
            if ret < 0 {
                return Err(port_err(&device, "rte_eth_tx_queue_setup", ret));
            }
        }

        // SAFETY: port configured and every queue set up.
        let ret = unsafe { sys::rte_eth_dev_start(port_id) };
        if ret < 0 {
            return Err(port_err(&device, "rte_eth_dev_start", ret));
        }

        if cfg.promiscuous {
            // SAFETY: port_id is valid and started.
            let ret = unsafe { sys::rte_eth_promiscuous_enable(port_id) };
            if ret == -libc::ENOTSUP {
                downgraded.push(format!(
                    "promiscuous mode not supported by {driver}: only frames to the port's MAC, \
                     broadcast and multicast are received"
                ));
            } else if ret < 0 {
                return Err(port_err(&device, "rte_eth_promiscuous_enable", ret));
            }
        }

        let mac = self
            .read_mac(&ctl, port_id)
            .map_err(|ret| port_err(&device, "rte_eth_macaddr_get", ret))?;
        if ctl.soft_macs.contains_key(&port_id) {
            downgraded.push(format!(
                "{driver} cannot change its MAC: {} is set in software only",
                fmt_mac(mac)
            ));
        }
        for note in &downgraded {
            tracing::warn!(port = %device, driver = %driver, "{note}");
        }
        Ok(PortInfo {
            port_id,
            mac,
            driver,
            n_rxq: cfg.n_rxq,
            n_txq: cfg.n_txq,
            rx_desc,
            tx_desc,
            rss_enabled,
            downgraded,
        })
    }

    /// The port's link state without waiting for negotiation
    /// (`rte_eth_link_get_nowait`); down with speed 0 if the port is
    /// invalid or the driver cannot tell.
    pub fn link_status(&self, port_id: u16) -> LinkStatus {
        let _ctl = control();
        let mut link = sys::rte_eth_link::default();
        // SAFETY: DPDK validates port_id (-ENODEV) and writes only into the
        // valid `link` out pointer.
        let ret = unsafe { sys::rte_eth_link_get_nowait(port_id, &mut link) };
        if ret < 0 || link.link_status() == 0 {
            return LinkStatus::default();
        }
        let speed_mbps = if link.link_speed == sys::FULCRUM_ETH_SPEED_NUM_UNKNOWN {
            0
        } else {
            link.link_speed
        };
        LinkStatus {
            up: true,
            speed_mbps,
        }
    }

    /// Stops the port (`rte_eth_dev_stop`): RX/TX stop and bursts on its
    /// queues return 0 from then on. Failures are logged, not returned:
    /// this runs on the shutdown path, where nothing better can be done.
    pub fn stop_port(&self, port_id: u16) {
        let _ctl = control();
        // SAFETY: DPDK validates port_id; stopping is allowed in any state.
        let ret = unsafe { sys::rte_eth_dev_stop(port_id) };
        if ret < 0 {
            tracing::warn!(port_id, ret, reason = %strerror(-ret), "rte_eth_dev_stop failed");
        }
    }

    /// Closes the port (`rte_eth_dev_close`), releasing its queues and the
    /// mbufs they held; the port id is invalid afterwards. Stop it first.
    /// Failures are logged, not returned (shutdown path).
    pub fn close_port(&self, port_id: u16) {
        let mut ctl = control();
        ctl.soft_macs.remove(&port_id);
        // SAFETY: DPDK validates port_id; closing a stopped port releases
        // its queues. Live DpdkQueue handles of it then hit DPDK's dummy
        // burst functions, which return 0.
        let ret = unsafe { sys::rte_eth_dev_close(port_id) };
        if ret < 0 {
            tracing::warn!(port_id, ret, reason = %strerror(-ret), "rte_eth_dev_close failed");
        }
    }

    /// The device name of `port_id`, or `port<N>` if DPDK has none.
    pub(crate) fn port_name(&self, port_id: u16) -> String {
        let mut buf = [0 as c_char; sys::RTE_ETH_NAME_MAX_LEN as usize];
        // SAFETY: buf is RTE_ETH_NAME_MAX_LEN bytes, the size DPDK writes at
        // most (NUL included); DPDK validates port_id.
        let ret = unsafe { sys::rte_eth_dev_get_name_by_port(port_id, buf.as_mut_ptr()) };
        if ret != 0 {
            return format!("port{port_id}");
        }
        cstr_lossy(buf.as_ptr())
    }

    /// `rte_eth_dev_info_get` for `port_id`.
    pub(crate) fn dev_info(&self, port_id: u16) -> Result<sys::rte_eth_dev_info, HwError> {
        self.check_port(port_id)?;
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: port_id is valid; info is a valid out pointer that DPDK
        // fills completely.
        let ret = unsafe { sys::rte_eth_dev_info_get(port_id, &mut info) };
        if ret < 0 {
            return Err(port_err(
                &self.port_name(port_id),
                "rte_eth_dev_info_get",
                ret,
            ));
        }
        Ok(info)
    }

    /// The port's MAC: the software one from [`Eal::set_mac`] if the
    /// driver could not take it, else the driver's (`rte_eth_macaddr_get`);
    /// the error is the negative DPDK return value.
    pub(crate) fn read_mac(&self, ctl: &Control, port_id: u16) -> Result<[u8; 6], i32> {
        if let Some(&mac) = ctl.soft_macs.get(&port_id) {
            return Ok(mac);
        }
        let mut addr = sys::rte_ether_addr { addr_bytes: [0; 6] };
        // SAFETY: DPDK validates port_id and writes 6 bytes into addr.
        let ret = unsafe { sys::rte_eth_macaddr_get(port_id, &mut addr) };
        if ret < 0 {
            return Err(ret);
        }
        Ok(addr.addr_bytes)
    }

    /// [`HwError::BadPortId`] unless `port_id` is a probed port.
    pub(crate) fn check_port(&self, port_id: u16) -> Result<(), HwError> {
        // SAFETY: rte_eth_dev_is_valid_port accepts any id.
        if unsafe { sys::rte_eth_dev_is_valid_port(port_id) } == 0 {
            return Err(HwError::BadPortId {
                port_id,
                probed: self.ports().into_iter().map(|(_, n)| n).collect(),
            });
        }
        Ok(())
    }
}

/// Decides RSS for `cfg` on a device described by `info`, writes it into
/// `conf`, records notes for what was wanted but not granted, and returns
/// whether RSS is on.
fn plan_rss(
    cfg: &PortSetup,
    info: &sys::rte_eth_dev_info,
    driver: &str,
    conf: &mut sys::rte_eth_conf,
    downgraded: &mut Vec<String>,
) -> bool {
    if !cfg.rss {
        return false;
    }
    if cfg.n_rxq < 2 {
        downgraded.push("RSS not enabled: only one RX queue".to_string());
        return false;
    }
    let wanted = sys::FULCRUM_ETH_RSS_IP | sys::FULCRUM_ETH_RSS_TCP | sys::FULCRUM_ETH_RSS_UDP;
    let hf = wanted & info.flow_type_rss_offloads;
    if hf == 0 {
        downgraded.push(format!(
            "RSS not supported by {driver} (no RSS hash types reported): every flow arrives on RX \
             queue 0 and is redirected to its owner worker in software"
        ));
        return false;
    }
    if hf != wanted {
        downgraded.push(format!(
            "RSS hash types reduced to 0x{hf:x} of wanted 0x{wanted:x} (IP|TCP|UDP) by {driver}"
        ));
    }
    conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_key = std::ptr::null_mut();
    conf.rx_adv_conf.rss_conf.rss_hf = hf;
    if info.rx_offload_capa & sys::FULCRUM_ETH_RX_OFFLOAD_RSS_HASH != 0 {
        conf.rxmode.offloads |= sys::FULCRUM_ETH_RX_OFFLOAD_RSS_HASH;
    } else {
        downgraded.push(format!(
            "{driver} does not report the RSS_HASH RX offload: mbufs may carry no RSS hash, the \
             dataplane hashes in software"
        ));
    }
    true
}

/// Checks `mtu` against the device's range and against one mbuf of `pool`
/// (fulcrum never enables scattered RX).
fn check_mtu(
    device: &str,
    mtu: u16,
    info: &sys::rte_eth_dev_info,
    pool: &Mempool,
) -> Result<(), HwError> {
    let bad = |reason: String| HwError::BadMtu {
        device: device.to_string(),
        mtu,
        reason,
    };
    if mtu < info.min_mtu || mtu > info.max_mtu {
        return Err(bad(format!(
            "device accepts {}..={} bytes",
            info.min_mtu, info.max_mtu
        )));
    }
    let frame = u32::from(mtu) + FRAME_OVERHEAD_BYTES;
    if frame > u32::from(pool.data_room_bytes()) {
        return Err(bad(format!(
            "frames of up to {frame} bytes do not fit one {}-byte mbuf and fulcrum does not use \
             scattered RX",
            pool.data_room_bytes()
        )));
    }
    Ok(())
}

/// [`HwError::PortSetup`] for DPDK call `step` that returned `ret` (< 0).
pub(crate) fn port_err(device: &str, step: &'static str, ret: i32) -> HwError {
    HwError::PortSetup {
        device: device.to_string(),
        step,
        reason: strerror(-ret),
        ret,
    }
}

/// `aa:bb:cc:dd:ee:ff` for logs and notes.
fn fmt_mac(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Copies a C string DPDK owns; empty for NULL.
pub(crate) fn cstr_lossy(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: callers pass NUL-terminated strings owned by DPDK (driver
    // names are static) or by a local buffer DPDK filled and terminated.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}
