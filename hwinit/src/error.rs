//! Errors of the hardware-init layer.
//!
//! Layer: startup and control path only (the per-packet path has no error
//! type: a burst call returns a count). Guarantees: every variant renders as
//! ONE line that names the device or lcore involved and, where the fix is
//! known, the remedy, because these are what an operator sees when the
//! daemon refuses to start. Refuses: nothing; it only describes.

use thiserror::Error;

/// Everything that can go wrong while bringing up DPDK: EAL, mempools, ports
/// and lcores.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HwError {
    /// Hugepage memory was wanted (no `--no-huge` among the EAL args) but
    /// `/proc/meminfo` reports no free hugepages or no hugetlbfs is mounted.
    /// Checked before `rte_eal_init`, whose own failure text is much less
    /// helpful here.
    #[error(
        "no free hugepages: run 'make hugepages' (echo 512 > /proc/sys/vm/nr_hugepages; \
         mount -t hugetlbfs none /dev/hugepages) or add \"--no-huge\", \"-m\", \"512\" to eal_args"
    )]
    NoHugepages,

    /// `--huge-dir` names a directory that is not a mounted hugetlbfs; EAL
    /// would fail to map pages from it with a bare "Permission denied".
    #[error(
        "--huge-dir {dir} is not a mounted hugetlbfs: run 'mount -t hugetlbfs none {dir}', \
         or drop --huge-dir from eal_args, or use \"--no-huge\""
    )]
    HugeDirNotHugetlbfs {
        /// The directory given to `--huge-dir`.
        dir: String,
    },

    /// `Eal::init` was called a second time in this process. DPDK's EAL can
    /// only be initialised once per process (also after `Eal::cleanup`).
    #[error("DPDK EAL is already initialised in this process (EAL can be initialised only once)")]
    EalAlreadyInitialised,

    /// An EAL argument contains a NUL byte and cannot be passed to C.
    #[error("EAL argument {arg:?} contains a NUL byte")]
    BadEalArg {
        /// The offending argument, as given.
        arg: String,
    },

    /// `rte_eal_init` failed; `reason` is `rte_strerror(rte_errno)`.
    #[error("DPDK EAL init failed: {reason} (rte_errno {errno}); eal_args: {args:?}")]
    EalInit {
        /// `rte_strerror(rte_errno)`.
        reason: String,
        /// `rte_errno` after the failed call.
        errno: i32,
        /// The EAL arguments that were passed (without argv\[0\]).
        args: Vec<String>,
    },

    /// No probed ethdev has this device name
    /// (`rte_eth_dev_get_port_by_name` failed).
    #[error(
        "DPDK port '{name}' not found; probed ports: {probed:?}; \
         add --vdev={name},... or -a <PCI> to eal_args"
    )]
    PortNotFound {
        /// The device name that was asked for, e.g. `net_pcap0` or
        /// `0000:03:00.0`.
        name: String,
        /// Names of every probed port, in port-id order.
        probed: Vec<String>,
    },

    /// A port id does not name a probed port.
    #[error("DPDK port id {port_id} does not exist (probed ports: {probed:?})")]
    BadPortId {
        /// The port id asked for.
        port_id: u16,
        /// Names of every probed port, in port-id order.
        probed: Vec<String>,
    },

    /// The device has fewer queues than the daemon needs (one RX and one TX
    /// queue per worker on every port).
    #[error(
        "port '{device}' supports at most {max} {dir} queues but {requested} were requested \
         (one per worker): use fewer workers"
    )]
    TooFewQueues {
        /// Device name.
        device: String,
        /// `"rx"` or `"tx"`.
        dir: &'static str,
        /// Queues requested.
        requested: u16,
        /// `max_rx_queues` / `max_tx_queues` from `rte_eth_dev_info_get`.
        max: u16,
    },

    /// The requested MTU cannot be used on this device with single-segment
    /// mbufs.
    #[error("port '{device}': MTU {mtu} bytes not usable: {reason}")]
    BadMtu {
        /// Device name.
        device: String,
        /// The MTU asked for, in bytes (L3, without Ethernet header).
        mtu: u16,
        /// Why (device limits, or mbuf data room).
        reason: String,
    },

    /// A port call was refused while queue handles (`DpdkQueue`) of the port
    /// are still alive: reconfiguring under a worker would hand it queue ids
    /// that no longer exist.
    #[error(
        "port '{device}': {what} refused while {n_queues} DpdkQueue handle(s) of it are alive"
    )]
    PortBusy {
        /// Device name.
        device: String,
        /// The refused operation.
        what: &'static str,
        /// How many queue handles are alive.
        n_queues: usize,
    },

    /// A DPDK ethdev call failed during port setup; `reason` is
    /// `rte_strerror(-ret)`.
    #[error("port '{device}': {step} failed: {reason} ({ret})")]
    PortSetup {
        /// Device name.
        device: String,
        /// The DPDK call, e.g. `rte_eth_dev_configure`.
        step: &'static str,
        /// `rte_strerror(-ret)`.
        reason: String,
        /// The negative return value of the call.
        ret: i32,
    },

    /// `rte_pktmbuf_pool_create` failed.
    #[error("mempool '{name}' ({n_mbufs} mbufs, socket {socket}): {reason}")]
    Mempool {
        /// Pool name as given.
        name: String,
        /// Mbufs requested.
        n_mbufs: u32,
        /// NUMA socket requested (-1 = any).
        socket: i32,
        /// `rte_strerror(rte_errno)` or the argument problem.
        reason: String,
    },

    /// Registering a telemetry command failed (`Eal::register_telemetry`).
    #[error("telemetry command '{cmd}': {reason}")]
    Telemetry {
        /// The command name, e.g. `/fulcrum/workers`.
        cmd: String,
        /// Why (DPDK refused the name or help, or a provider was already
        /// set).
        reason: String,
    },

    /// `Eal::launch` could not start the closure on the lcore.
    #[error("cannot launch on lcore {lcore}: {reason}")]
    Launch {
        /// The lcore id asked for.
        lcore: u32,
        /// Why (not enabled, is the main lcore, busy).
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_port_not_found_text() {
        let e = HwError::PortNotFound {
            name: "net_pcap1".into(),
            probed: vec!["net_pcap0".into(), "net_tap0".into()],
        };
        assert_eq!(
            e.to_string(),
            "DPDK port 'net_pcap1' not found; probed ports: [\"net_pcap0\", \"net_tap0\"]; \
             add --vdev=net_pcap1,... or -a <PCI> to eal_args"
        );
    }

    #[test]
    fn test_eal_init_text() {
        let e = HwError::EalInit {
            reason: "Cannot allocate memory".into(),
            errno: 12,
            args: vec!["-m".into(), "64".into()],
        };
        assert_eq!(
            e.to_string(),
            "DPDK EAL init failed: Cannot allocate memory (rte_errno 12); eal_args: [\"-m\", \"64\"]"
        );
    }

    #[test]
    fn test_too_few_queues_text() {
        let e = HwError::TooFewQueues {
            device: "0000:03:00.0".into(),
            dir: "tx",
            requested: 8,
            max: 4,
        };
        assert_eq!(
            e.to_string(),
            "port '0000:03:00.0' supports at most 4 tx queues but 8 were requested (one per worker): \
             use fewer workers"
        );
    }

    #[test]
    fn test_every_variant_is_one_line() {
        let all = [
            HwError::NoHugepages,
            HwError::HugeDirNotHugetlbfs {
                dir: "/tmp/x".into(),
            },
            HwError::EalAlreadyInitialised,
            HwError::BadEalArg { arg: "a\0b".into() },
            HwError::BadPortId {
                port_id: 3,
                probed: vec![],
            },
            HwError::BadMtu {
                device: "d".into(),
                mtu: 9000,
                reason: "r".into(),
            },
            HwError::PortBusy {
                device: "d".into(),
                what: "setup_port",
                n_queues: 1,
            },
            HwError::PortSetup {
                device: "d".into(),
                step: "s",
                reason: "r".into(),
                ret: -22,
            },
            HwError::Mempool {
                name: "p".into(),
                n_mbufs: 1,
                socket: -1,
                reason: "r".into(),
            },
            HwError::Launch {
                lcore: 1,
                reason: "r".into(),
            },
        ];
        for e in all {
            let t = e.to_string();
            assert!(!t.contains('\n') && !t.is_empty(), "{t:?}");
        }
    }
}
