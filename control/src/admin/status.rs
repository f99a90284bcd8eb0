//! The status the admin socket serves: what `{"cmd":"status"}` returns,
//! and how it is built from the published snapshot and the workers' shared
//! counters.
//!
//! Layer: control, slow path. Guarantees: the JSON shape is stable for
//! `fulcrumctl` (fields added later carry `#[serde(default)]`, so a newer
//! client reads an older daemon's status); names are ipvsadm's (`TCP`,
//! `Masq`, `sh-port`) so the client prints them as they come.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use dataplane::snapshot::{Method, Snapshot};
use dataplane::stats::{DropReason, RealStats, SharedStats, WorkerStats};
use serde::{Deserialize, Serialize};

use crate::health::report::HealthReport;

/// What `{"cmd":"status"}` returns: the whole director at a glance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// fulcrum's version (the crate version, e.g. `"0.1.0"`).
    pub version: String,
    /// Seconds since the daemon started.
    pub uptime_s: u64,
    /// Connection-table capacity of each worker (config `conn_table_size`).
    pub conn_table_size: u64,
    /// One entry per worker, in worker id order.
    pub workers: Vec<WorkerStatus>,
    /// One entry per virtual service, in config order.
    pub services: Vec<ServiceStatus>,
    /// The health checkers' view (`fulcrumctl --health`); empty from a
    /// daemon without checkers, and absent from an older daemon.
    #[serde(default)]
    pub health: HealthReport,
    /// One entry per DPDK port, in config order: its device counters as
    /// the control thread last read them (`rte_eth_stats_get` and
    /// `rte_eth_xstats_get`, refreshed once a second, never by a worker).
    /// Empty from a daemon that does not read them.
    #[serde(default)]
    pub ports: Vec<PortStatus>,
    /// The last configuration reload (SIGHUP or `fulcrumctl --reload`),
    /// `None` until the first one.
    #[serde(default)]
    pub reload: Option<ReloadStatus>,
}

/// One DPDK port's device counters (`rte_eth_stats` and the PMD's xstats).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStatus {
    /// The port's config name (`ports[i].name`).
    pub name: String,
    /// The port's DPDK device name (`ports[i].device`).
    pub device: String,
    /// `rte_eth_stats.imissed`: packets the NIC dropped because no RX
    /// descriptor was free (the workers did not keep up).
    pub imissed: u64,
    /// `rte_eth_stats.rx_nombuf`: RX mbuf allocation failures.
    pub rx_nombuf: u64,
    /// `rte_eth_stats.ierrors`: erroneous received packets.
    pub ierrors: u64,
    /// `rte_eth_stats.oerrors`: failed transmissions.
    pub oerrors: u64,
    /// Every xstat the PMD reports, by its DPDK name (`rx_good_packets`,
    /// ...), in the PMD's order.
    pub xstats: Vec<(String, u64)>,
}

/// The result of the last configuration reload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadStatus {
    /// When it happened, Unix time in seconds.
    pub at_unix_s: u64,
    /// `true` when the file validated and its difference was applied.
    pub ok: bool,
    /// The snapshot generation published by a successful reload (the
    /// running one when the file was unchanged); `None` on failure.
    pub generation: Option<u64>,
    /// On failure the one-line error (`file:line:col: message`), else empty.
    pub error: String,
    /// Reloads attempted since start, successful or not.
    pub count: u64,
}

/// The rate estimate of a virtual service or a real server, as IPVS's
/// estimator computes it (`ip_vs_est.c`: a 2-second sample, smoothed), in
/// the units `ipvsadm -L --rate` prints: per second, bytes for the BPS
/// columns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateStatus {
    /// New connections per second (ipvsadm `CPS`).
    pub cps: u64,
    /// Packets per second client → real server (`InPPS`).
    pub inpps: u64,
    /// Packets per second real server → client (`OutPPS`).
    pub outpps: u64,
    /// Bytes per second client → real server (`InBPS`).
    pub inbps: u64,
    /// Bytes per second real server → client (`OutBPS`).
    pub outbps: u64,
}

/// One worker's counters, as last published by the worker on its slow tick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// Worker id (0-based, dense).
    pub id: u32,
    /// EAL lcore the worker runs on.
    pub lcore: u32,
    /// The worker's counters by name ([`WorkerStats::COUNTER_NAMES`]:
    /// `rx_pkts`, `tx_bytes`, `conns_created`, ...), flattened into the
    /// worker's JSON object. A daemon lists every counter it has, zeros
    /// included; one that an older daemon lacks is absent here and reads as
    /// 0 through [`WorkerStatus::counter`].
    #[serde(flatten)]
    pub counters: BTreeMap<String, u64>,
    /// Drops by [`DropReason::name`]; every reason present, zeros included.
    pub drops: BTreeMap<String, u64>,
}

impl WorkerStatus {
    /// The counter named `name`, 0 when the daemon did not report it.
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// One virtual service with its totals (the sums over its real servers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// `"TCP"` or `"UDP"`, as ipvsadm prints it.
    pub proto: String,
    /// VIP, dotted quad.
    pub vip: String,
    /// Virtual port, 0 = all ports.
    pub vport: u16,
    /// ipvsadm scheduler name.
    pub scheduler: String,
    /// `"nat"` or `"dr"`: the method of the service's first real server (the
    /// snapshot keeps methods per real server only), `"nat"` when it has none.
    pub forwarding: String,
    /// Connections scheduled.
    pub conns: u64,
    /// Packets client → real servers.
    pub in_pkts: u64,
    /// Packets real servers → clients (NAT only).
    pub out_pkts: u64,
    /// Bytes client → real servers (IP length).
    pub in_bytes: u64,
    /// Bytes real servers → clients (IP length).
    pub out_bytes: u64,
    /// ESTABLISHED connections (IPVS activeconns).
    pub active_conns: u64,
    /// Connections in other states (IPVS inactconns).
    pub inactive_conns: u64,
    /// Real servers, in config (scheduler) order.
    pub reals: Vec<RealStatus>,
    /// Persistence timeout in seconds (ipvsadm `-p`), `None` when the
    /// service is not persistent.
    #[serde(default)]
    pub persistence_timeout_s: Option<u32>,
    /// Persistence netmask, dotted quad (ipvsadm `-M`); present only with
    /// a timeout.
    #[serde(default)]
    pub persistence_netmask: Option<String>,
    /// Scheduler flags by their scheduler-specific names (ipvsadm `-b`),
    /// e.g. `["sh-port"]`; empty when none is set.
    #[serde(default)]
    pub sched_flags: Vec<String>,
    /// The service's rate estimate (`ipvsadm -L --rate`); `None` from a
    /// daemon without an estimator.
    #[serde(default)]
    pub rate: Option<RateStatus>,
}

/// One real server with its counters summed over all workers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealStatus {
    /// RIP, dotted quad.
    pub ip: String,
    /// Real server port.
    pub port: u16,
    /// `"Masq"` or `"Route"`, as ipvsadm's `fwd_name()` prints it.
    pub forwarding: String,
    /// IPVS weight.
    pub weight: u32,
    /// ESTABLISHED connections (IPVS activeconns).
    pub active_conns: u64,
    /// Connections in other states (IPVS inactconns).
    pub inactive_conns: u64,
    /// Connections scheduled.
    pub conns: u64,
    /// Packets client → real server.
    pub in_pkts: u64,
    /// Packets real server → client (NAT only).
    pub out_pkts: u64,
    /// Bytes client → real server.
    pub in_bytes: u64,
    /// Bytes real server → client.
    pub out_bytes: u64,
    /// The real server's rate estimate (`ipvsadm -L --rate`); `None` from a
    /// daemon without an estimator.
    #[serde(default)]
    pub rate: Option<RateStatus>,
}

/// Builds the status from the published snapshot and the workers' shared
/// counters.
///
/// `stats[i]` and `lcores[i]` belong to worker `i`; a worker without an
/// lcore entry is reported on lcore `u32::MAX`. Each real server's counters
/// are the sum over all workers of `SharedStats::load_real(id)`; a service's
/// totals are the sums over its real servers (as `ipvsadm --stats` shows
/// them), so counters of a real server removed by a reload disappear from the
/// totals (IPVS keeps them in the service; fulcrum keeps no history).
pub fn build_status(
    snap: &Snapshot,
    stats: &[Arc<SharedStats>],
    lcores: &[u32],
    uptime_s: u64,
    conn_table_size: u64,
) -> Status {
    let workers = stats
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let w = s.load();
            let drops = DropReason::ALL
                .iter()
                .map(|&r| (r.name().to_string(), w.drops[r as usize]))
                .collect();
            WorkerStatus {
                id: i as u32,
                lcore: lcores.get(i).copied().unwrap_or(u32::MAX),
                counters: WorkerStats::COUNTER_NAMES
                    .iter()
                    .zip(w.counter_values())
                    .map(|(&n, v)| (n.to_string(), v))
                    .collect(),
                drops,
            }
        })
        .collect();

    let services = snap
        .services
        .iter()
        .map(|svc| {
            let reals: Vec<RealStatus> = svc
                .reals
                .iter()
                .filter_map(|&id| snap.reals.get(id as usize).map(|r| (id, r)))
                .map(|(id, r)| {
                    let mut sum = RealStats::default();
                    for s in stats {
                        let x = s.load_real(id as usize);
                        sum.conns += x.conns;
                        sum.in_pkts += x.in_pkts;
                        sum.out_pkts += x.out_pkts;
                        sum.in_bytes += x.in_bytes;
                        sum.out_bytes += x.out_bytes;
                        sum.active_conns += x.active_conns;
                        sum.inactive_conns += x.inactive_conns;
                    }
                    RealStatus {
                        ip: Ipv4Addr::from(r.ip).to_string(),
                        port: r.port,
                        forwarding: r.method.to_string(),
                        weight: r.weight,
                        active_conns: sum.active_conns,
                        inactive_conns: sum.inactive_conns,
                        conns: sum.conns,
                        in_pkts: sum.in_pkts,
                        out_pkts: sum.out_pkts,
                        in_bytes: sum.in_bytes,
                        out_bytes: sum.out_bytes,
                        rate: None,
                    }
                })
                .collect();
            let forwarding = svc
                .reals
                .first()
                .and_then(|&id| snap.reals.get(id as usize))
                .map_or(Method::Nat, |r| r.method);
            let total = |f: fn(&RealStatus) -> u64| reals.iter().map(f).sum::<u64>();
            ServiceStatus {
                proto: svc.key.proto.to_string(),
                vip: Ipv4Addr::from(svc.key.vip).to_string(),
                vport: svc.key.vport,
                scheduler: svc.scheduler.name().to_string(),
                forwarding: forwarding.config_name().to_string(),
                conns: total(|r| r.conns),
                in_pkts: total(|r| r.in_pkts),
                out_pkts: total(|r| r.out_pkts),
                in_bytes: total(|r| r.in_bytes),
                out_bytes: total(|r| r.out_bytes),
                active_conns: total(|r| r.active_conns),
                inactive_conns: total(|r| r.inactive_conns),
                reals,
                persistence_timeout_s: svc.persistence.map(|p| p.timeout_ms / 1000),
                persistence_netmask: svc.persistence.map(|p| Ipv4Addr::from(p.mask).to_string()),
                sched_flags: svc.sched_flags.iter().map(|f| f.to_string()).collect(),
                rate: None,
            }
        })
        .collect();

    Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_s,
        conn_table_size,
        workers,
        services,
        health: HealthReport::default(),
        ports: Vec::new(),
        reload: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::snapshot::{Proto, RealServer, Service, ServiceKey};
    use sched::SchedKind;

    fn snap() -> Snapshot {
        Snapshot {
            reals: vec![
                RealServer {
                    ip: 0,
                    port: 0,
                    weight: 0,
                    method: Method::Nat,
                    tun: Default::default(),
                    service: 0,
                    available: true,
                },
                RealServer {
                    ip: 0x0a01_000b,
                    port: 80,
                    weight: 2,
                    method: Method::Dr,
                    tun: Default::default(),
                    service: 0,
                    available: true,
                },
                RealServer {
                    ip: 0x0a01_000c,
                    port: 80,
                    weight: 1,
                    method: Method::Nat,
                    tun: Default::default(),
                    service: 0,
                    available: true,
                },
            ],
            services: vec![Service {
                key: ServiceKey {
                    vip: 0x0a00_0064,
                    vport: 80,
                    proto: Proto::Tcp,
                },
                scheduler: SchedKind::Wrr,
                sched_flags: Default::default(),
                sched_params: Default::default(),
                mh_table: None,
                reals: vec![1, 2],
                persistence: None,
                local_addresses: Vec::new(),
                client_address: Default::default(),
            }],
            ..Default::default()
        }
    }

    /// A service's persistence and flags reach the status in ipvsadm terms.
    #[test]
    fn test_build_status_persistence_and_flags() {
        let mut sn = snap();
        sn.services[0].persistence = Some(dataplane::snapshot::Persistence {
            timeout_ms: 300_000,
            mask: 0xffff_ff00,
        });
        sn.services[0].sched_flags.sh_port = true;
        let st = build_status(&sn, &[], &[], 0, 1000);
        let s = &st.services[0];
        assert_eq!(s.persistence_timeout_s, Some(300));
        assert_eq!(s.persistence_netmask.as_deref(), Some("255.255.255.0"));
        assert_eq!(s.sched_flags, vec!["sh-port".to_string()]);
    }

    #[test]
    fn test_build_status_sums_workers() {
        let a = Arc::new(SharedStats::new(3));
        let b = Arc::new(SharedStats::new(3));
        let mut w = WorkerStats {
            rx_pkts: 10,
            icmp_echo_replies: 4,
            ..Default::default()
        };
        w.drop(DropReason::NoRoute);
        let r1 = RealStats {
            conns: 3,
            in_pkts: 30,
            in_bytes: 3000,
            active_conns: 1,
            ..Default::default()
        };
        let r2 = RealStats {
            conns: 1,
            out_pkts: 5,
            out_bytes: 500,
            inactive_conns: 2,
            ..Default::default()
        };
        a.publish(&w, &[RealStats::default(), r1, r2]);
        b.publish(
            &WorkerStats::default(),
            &[RealStats::default(), r1, RealStats::default()],
        );
        let st = build_status(&snap(), &[a, b], &[1, 3], 42, 1000);
        assert_eq!(st.version, env!("CARGO_PKG_VERSION"));
        assert_eq!((st.uptime_s, st.conn_table_size), (42, 1000));
        assert_eq!(st.workers.len(), 2);
        assert_eq!((st.workers[0].id, st.workers[0].lcore), (0, 1));
        assert_eq!((st.workers[1].id, st.workers[1].lcore), (1, 3));
        assert_eq!(st.workers[0].counter("rx_pkts"), 10);
        assert_eq!(st.workers[0].counter("icmp_echo_replies"), 4);
        assert_eq!(
            st.workers[0].counters.len(),
            WorkerStats::COUNTER_NAMES.len()
        );
        assert_eq!(st.workers[0].drops.len(), DropReason::COUNT);
        assert_eq!(st.workers[0].drops["no_route"], 1);
        assert_eq!(st.workers[1].drops["no_route"], 0);
        let s = &st.services[0];
        assert_eq!(
            (s.proto.as_str(), s.vip.as_str(), s.vport),
            ("TCP", "10.0.0.100", 80)
        );
        assert_eq!(s.scheduler, "wrr");
        assert_eq!(s.forwarding, "dr");
        assert_eq!((s.persistence_timeout_s, s.sched_flags.len()), (None, 0));
        assert_eq!(s.reals[0].ip, "10.1.0.11");
        assert_eq!(s.reals[0].forwarding, "Route");
        assert_eq!(s.reals[1].forwarding, "Masq");
        assert_eq!(s.reals[0].weight, 2);
        assert_eq!(
            (s.reals[0].conns, s.reals[0].in_pkts, s.reals[0].in_bytes),
            (6, 60, 6000)
        );
        assert_eq!(s.reals[0].active_conns, 2);
        assert_eq!(
            (
                s.reals[1].conns,
                s.reals[1].out_pkts,
                s.reals[1].inactive_conns
            ),
            (1, 5, 2)
        );
        assert_eq!((s.conns, s.in_pkts, s.out_pkts), (7, 60, 5));
        assert_eq!((s.in_bytes, s.out_bytes), (6000, 500));
        assert_eq!((s.active_conns, s.inactive_conns), (2, 2));
    }

    /// Every counter `worker_counters!` declares reaches the worker's JSON
    /// object at its top level, under its name, with its value: a new
    /// counter needs no line here.
    #[test]
    fn test_status_json_has_every_counter() {
        let shared = Arc::new(SharedStats::new(1));
        let mut w = WorkerStats::default();
        let vals: [u64; dataplane::stats::N_WORKER_COUNTERS] =
            std::array::from_fn(|i| 7 + i as u64);
        w.set_counter_values(vals);
        shared.publish(&w, &[]);
        let st = build_status(&Snapshot::default(), &[shared], &[2], 0, 1);
        let v = serde_json::to_value(&st).expect("encodes");
        let obj = v["workers"][0].as_object().expect("worker object");
        for (name, want) in WorkerStats::COUNTER_NAMES.iter().zip(vals) {
            assert_eq!(obj[*name], want, "{name}");
        }
        // id, lcore and drops besides the counters: nothing else.
        assert_eq!(obj.len(), 3 + WorkerStats::COUNTER_NAMES.len());
        let back: Status = serde_json::from_value(v).expect("decodes");
        assert_eq!(back, st);
    }

    /// A daemon from before a counter existed omits it: it reads as 0.
    #[test]
    fn test_worker_status_missing_counter_reads_zero() {
        let w: WorkerStatus =
            serde_json::from_str(r#"{"id":0,"lcore":1,"rx_pkts":5,"drops":{}}"#).expect("decodes");
        assert_eq!(w.counter("rx_pkts"), 5);
        assert_eq!(w.counter("persist_table_full"), 0);
        assert_eq!(w.counters.len(), 1);
    }
}
