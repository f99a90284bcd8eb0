//! The exception path's kernel side: one TAP interface per port (DPDK
//! `net_tap`), holding the port's MAC and DIPs, so the director's own
//! kernel talks over the DPDK ports (health checks, ssh, BGP).
//!
//! Layer: control, daemon startup and shutdown only (feature `daemon`).
//! Order, called from `daemon::run`: [`precheck`] and [`eal_args`] before
//! `Eal::init` (the TAP vdevs are probed by EAL, which creates the kernel
//! interfaces, still down); [`KernelPorts::setup`] after the data ports
//! (their MACs are known then); [`KernelPorts::queues`] per worker;
//! [`KernelPorts::close`] with the data ports at shutdown, which removes
//! the interfaces (a TAP interface without `persist` lives as long as its
//! file descriptors, so even a killed daemon leaves none behind).
//!
//! Each TAP port gets one RX and one TX queue per worker from the workers'
//! pool; its MAC is set to the data port's (`rte_eth_dev_default_mac_addr_set`,
//! which `net_tap` applies to the kernel interface), IPv6 is turned off on
//! it before it comes up (no router solicitations or DAD to leak), DPDK's
//! start brings it up, then iproute2 adds the DIPs (`ip addr add`) and the
//! static routes whose gateway is on that port (`ip route replace`).
//!
//! Every failure is one [`KernelError`] line naming the remedy.

use std::path::Path;
use std::process::Command;

use hwinit::dpdk::{DpdkQueue, Eal, Mempool, PortSetup};
use tracing::info;

use crate::config::Config;

/// The character device `net_tap` opens for every queue.
pub const TUN_DEV: &str = "/dev/net/tun";
/// Most queues a `net_tap` port has in DPDK 22.11 (`RTE_PMD_TAP_MAX_QUEUES`,
/// set to 16 by its meson build): at most this many workers with the path on.
pub const MAX_TAP_QUEUES: usize = 16;
/// RX descriptors per TAP queue. `net_tap` allocates this many mbufs per
/// RX queue up front (its scatter chain) although, without scattered RX,
/// each read fills only the first: a small ring keeps the pool for the
/// data ports.
pub const TAP_RX_DESC: u16 = 64;
/// TX descriptors per TAP queue (`net_tap` writes each frame at once; the
/// count only sizes its bookkeeping).
pub const TAP_TX_DESC: u16 = 64;

/// A failure of the exception path's setup: one line, problem and remedy.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// `/dev/net/tun` cannot be opened.
    #[error("exception path: cannot open {TUN_DEV} ({reason}): load the tun module (`modprobe tun`) or set `exception_path: (enabled: false)`")]
    NoTun {
        /// The OS error.
        reason: String,
    },
    /// A kernel interface of that name exists already.
    #[error("exception path: kernel interface {iface} of port {port:?} already exists: pick another `kernel_iface` for the port, or remove the stale one (`ip link del {iface}`)")]
    IfaceExists {
        /// The interface name.
        iface: String,
        /// The port's name.
        port: String,
    },
    /// More workers than `net_tap` has queues.
    #[error("exception path: net_tap has at most {MAX_TAP_QUEUES} queues but {workers} workers need one each: use at most {MAX_TAP_QUEUES} workers or set `exception_path: (enabled: false)`")]
    TooManyWorkers {
        /// Configured workers.
        workers: usize,
    },
    /// The TAP port EAL should have created is missing or could not be set
    /// up.
    #[error("exception path: kernel interface {iface} of port {port:?}: {source}")]
    Tap {
        /// The interface name.
        iface: String,
        /// The port's name.
        port: String,
        /// What DPDK said.
        #[source]
        source: hwinit::HwError,
    },
    /// A command configuring the kernel side failed.
    #[error("exception path: `{cmd}` failed: {reason}: check that iproute2 is installed and the daemon runs as root (CAP_NET_ADMIN), or set `exception_path: (enabled: false)`")]
    Command {
        /// The command line.
        cmd: String,
        /// Its stderr, or why it did not run.
        reason: String,
    },
    /// Writing a sysctl failed.
    #[error("exception path: cannot write {path} ({reason}): run the daemon as root or set `exception_path: (enabled: false)`")]
    Sysctl {
        /// The /proc/sys file.
        path: String,
        /// The OS error.
        reason: String,
    },
}

/// The DPDK device name of port `i`'s TAP vdev: `net_tap_fc<i>` (a vdev's
/// name must start with its driver's, `net_tap`).
pub fn tap_device(i: usize) -> String {
    format!("net_tap_fc{i}")
}

/// `cfg.eal_args` plus, with the exception path on, one
/// `--vdev=net_tap_fc<i>,iface=<kernel_iface>` per port (devargs of DPDK
/// 22.11's `net_tap`: `iface`, `mac`, `remote`, `persist`; only `iface` is
/// used, the MAC is set after probing). The config itself is not changed.
pub fn eal_args(cfg: &Config) -> Vec<String> {
    let mut args = cfg.eal_args.clone();
    if cfg.exception_path.enabled {
        for (i, p) in cfg.ports.iter().enumerate() {
            args.push(format!(
                "--vdev={},iface={}",
                tap_device(i),
                p.kernel_iface()
            ));
        }
    }
    args
}

/// What can be checked before EAL creates the interfaces: `/dev/net/tun`
/// opens, no configured interface name exists yet (`net_tap` would attach
/// to an existing TAP device of that name instead of failing), and the
/// worker count fits `net_tap`'s queues. Nothing to check with the path
/// off.
///
/// # Errors
/// [`KernelError::NoTun`], [`KernelError::IfaceExists`],
/// [`KernelError::TooManyWorkers`].
pub fn precheck(cfg: &Config) -> Result<(), KernelError> {
    if !cfg.exception_path.enabled {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(TUN_DEV)
        .map_err(|e| KernelError::NoTun {
            reason: e.to_string(),
        })?;
    if cfg.workers.len() > MAX_TAP_QUEUES {
        return Err(KernelError::TooManyWorkers {
            workers: cfg.workers.len(),
        });
    }
    for p in &cfg.ports {
        let iface = p.kernel_iface();
        if Path::new("/sys/class/net").join(&iface).exists() {
            return Err(KernelError::IfaceExists {
                iface,
                port: p.name.clone(),
            });
        }
    }
    Ok(())
}

/// The TAP ports of a running daemon, in config port order.
#[derive(Debug, Default)]
pub struct KernelPorts {
    /// DPDK port id of each port's TAP device.
    ids: Vec<u16>,
}

impl KernelPorts {
    /// Sets up every port's kernel interface (see the module doc): with
    /// `macs[i]` the data port's MAC, `n_workers` queue pairs from `pool`.
    /// Returns no ports with the path off. Logs one line per interface.
    ///
    /// # Errors
    /// [`KernelError::Tap`] (the device is missing or DPDK refused it),
    /// [`KernelError::Sysctl`], [`KernelError::Command`].
    pub fn setup(
        eal: &Eal,
        cfg: &Config,
        macs: &[[u8; 6]],
        n_workers: u16,
        pool: &Mempool,
    ) -> Result<KernelPorts, KernelError> {
        let mut ids = Vec::new();
        if !cfg.exception_path.enabled {
            return Ok(KernelPorts { ids });
        }
        for (i, (p, &mac)) in cfg.ports.iter().zip(macs).enumerate() {
            let iface = p.kernel_iface();
            let tap = |source| KernelError::Tap {
                iface: iface.clone(),
                port: p.name.clone(),
                source,
            };
            let id = eal.port_by_name(&tap_device(i)).map_err(tap)?;
            disable_ipv6(&iface)?;
            eal.set_mac(id, mac).map_err(tap)?;
            let setup = PortSetup {
                n_rxq: n_workers,
                n_txq: n_workers,
                rx_desc: TAP_RX_DESC,
                tx_desc: TAP_TX_DESC,
                promiscuous: false,
                rss: false,
                mtu: None,
            };
            eal.setup_port(id, &setup, pool).map_err(tap)?;
            ids.push(id);
            for a in &p.addrs {
                ip(&["addr", "add", &a.to_string(), "dev", &iface])?;
            }
            let mut n_routes = 0;
            for r in &cfg.routes {
                let via = r.via.0;
                if cfg.connected_port(via) == Some(i) {
                    let (dst, via) = (r.dst.to_string(), via.to_string());
                    ip(&["route", "replace", &dst, "via", &via, "dev", &iface])?;
                    n_routes += 1;
                }
            }
            let addrs: Vec<String> = p.addrs.iter().map(|a| a.to_string()).collect();
            info!(port = %p.name, iface = %iface, device = %tap_device(i), addrs = %addrs.join(","), routes = n_routes, "kernel interface up (exception path)");
        }
        Ok(KernelPorts { ids })
    }

    /// Worker `worker`'s queue on every TAP port, in port order; empty with
    /// the path off.
    pub fn queues(&self, eal: &Eal, worker: u16, pool: &Mempool) -> Vec<DpdkQueue> {
        self.ids
            .iter()
            .map(|&id| eal.queue(id, worker, pool))
            .collect()
    }

    /// Whether the path is on (there are TAP ports).
    pub fn enabled(&self) -> bool {
        !self.ids.is_empty()
    }

    /// Stops and closes every TAP port, which removes its kernel interface.
    /// After the workers have stopped (shutdown path: failures are logged by
    /// hwinit).
    pub fn close(&self, eal: &Eal) {
        for &id in &self.ids {
            eal.stop_port(id);
            eal.close_port(id);
        }
    }
}

/// `net.ipv6.conf.<iface>.disable_ipv6 = 1`, if the kernel has IPv6.
fn disable_ipv6(iface: &str) -> Result<(), KernelError> {
    let path = format!("/proc/sys/net/ipv6/conf/{iface}/disable_ipv6");
    if !Path::new("/proc/sys/net/ipv6").exists() {
        return Ok(());
    }
    std::fs::write(&path, "1").map_err(|e| KernelError::Sysctl {
        path,
        reason: e.to_string(),
    })
}

/// Runs `ip ARGS...`; its stderr becomes the error.
fn ip(args: &[&str]) -> Result<(), KernelError> {
    let cmd = format!("ip {}", args.join(" "));
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| KernelError::Command {
            cmd: cmd.clone(),
            reason: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(KernelError::Command {
            cmd,
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    const SRC: &str = r#"(eal_args: ["-l", "0-1"], workers: [1], ports: [
        (name: "outside", device: "d0", addrs: ["10.0.0.1/24"]),
        (name: "inside", device: "d1", addrs: ["10.1.0.1/24"], kernel_iface: "tapin"),
    ])"#;

    #[test]
    fn test_eal_args_add_one_tap_per_port_without_touching_the_config() {
        let cfg = parse(SRC, "t.ron").expect("valid");
        assert_eq!(
            eal_args(&cfg),
            [
                "-l",
                "0-1",
                "--vdev=net_tap_fc0,iface=fc-outside",
                "--vdev=net_tap_fc1,iface=tapin"
            ]
        );
        assert_eq!(cfg.eal_args, ["-l", "0-1"]);
        let off = parse(
            &SRC.replace(
                "workers: [1],",
                "workers: [1], exception_path: (enabled: false),",
            ),
            "t.ron",
        )
        .expect("valid");
        assert_eq!(eal_args(&off), ["-l", "0-1"]);
        assert!(precheck(&off).is_ok(), "nothing to check with the path off");
    }

    #[test]
    fn test_precheck_refuses_an_existing_interface_and_too_many_workers() {
        // `lo` exists in every network namespace.
        let cfg = parse(&SRC.replace("\"tapin\"", "\"lo\""), "t.ron").expect("valid");
        if Path::new(TUN_DEV).exists() {
            let e = precheck(&cfg).expect_err("lo exists").to_string();
            assert!(
                e.contains("kernel interface lo of port \"inside\" already exists: pick another `kernel_iface`"),
                "{e}"
            );
            let many: Vec<String> = (1..=17).map(|l| l.to_string()).collect();
            let cfg = parse(
                &SRC.replace("workers: [1]", &format!("workers: [{}]", many.join(","))),
                "t.ron",
            )
            .expect("valid");
            let e = precheck(&cfg).expect_err("17 workers").to_string();
            assert!(e.contains("at most 16 queues but 17 workers"), "{e}");
        }
        let e = KernelError::NoTun {
            reason: "No such file or directory (os error 2)".into(),
        };
        assert!(e.to_string().contains(
            "load the tun module (`modprobe tun`) or set `exception_path: (enabled: false)`"
        ));
    }
}
