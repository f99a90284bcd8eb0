//! fulcrum's own commands in DPDK's telemetry, next to DPDK's
//! (`dpdk-telemetry.py -f <file-prefix>`, then `/` lists them):
//! `/fulcrum/version`, `/fulcrum/workers` and `/fulcrum/services`; and the
//! ports' device counters the main loop reads for `Status.ports`
//! ([`read_ports`]).
//!
//! Layer: control, slow path. The answers are rendered from a [`Status`]
//! the daemon's main loop publishes once a second ([`PublishedStatus`]);
//! DPDK runs [`FulcrumTelemetry::answer`] on its telemetry thread, which
//! only loads that `Arc` (lock-free, `arc-swap`): it never touches a
//! worker, a lock the control thread holds, or DPDK's ethdev API. So the
//! numbers are up to one second old, like `fulcrumctl`'s after a refresh.
//! Guarantees: every answer fits DPDK 22.11's limits (256 entries per dict,
//! one level of nesting, the 16 KiB output buffer): `/fulcrum/workers`
//! lists each worker's counters and its non-zero drops (`,<id>` asks for one
//! worker with every drop reason, zeros included), `/fulcrum/services` the
//! totals and the first [`MAX_SERVICES_LISTED`] services. Refuses: unknown
//! commands and bad parameters (DPDK prints `null`).

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use hwinit::dpdk::{Eal, TelCommand, TelValue, TelemetryProvider};

use crate::admin::{PortStatus, ServiceStatus, Status, WorkerStatus};

/// The status the telemetry callbacks read: `None` until the main loop
/// first publishes (about one second after start).
pub type PublishedStatus = Arc<ArcSwapOption<Status>>;

/// Services listed one by one in `/fulcrum/services` (the totals cover all
/// of them): 64 entries of about 200 bytes stay well inside DPDK's 16 KiB
/// answer.
pub const MAX_SERVICES_LISTED: usize = 64;

/// The commands fulcrum registers, with the help `/help,<cmd>` shows.
pub const COMMANDS: [TelCommand; 3] = [
    TelCommand {
        name: "/fulcrum/version",
        help: "fulcrum's version and uptime. Takes no parameters.",
    },
    TelCommand {
        name: "/fulcrum/workers",
        help: "Per-worker counters and non-zero drops. Parameter: a worker id for one worker with \
               every drop reason.",
    },
    TelCommand {
        name: "/fulcrum/services",
        help: "Virtual services: totals, then per service its counters and connections. Takes no \
               parameters.",
    },
];

/// The [`TelemetryProvider`] the daemon registers: answers [`COMMANDS`]
/// from the last published status.
#[derive(Debug, Clone, Default)]
pub struct FulcrumTelemetry {
    published: PublishedStatus,
}

impl FulcrumTelemetry {
    /// A provider reading `published`.
    pub fn new(published: PublishedStatus) -> Self {
        FulcrumTelemetry { published }
    }
}

impl TelemetryProvider for FulcrumTelemetry {
    fn answer(&self, cmd: &str, params: &str) -> Option<Vec<(String, TelValue)>> {
        answer(self.published.load().as_deref(), cmd, params)
    }
}

/// Reads every data port's device counters for `Status.ports`:
/// `rte_eth_stats_get` and the PMD's xstats, one [`PortStatus`] per entry
/// of `ports` (config name, device name, DPDK port id), in that order.
/// Called by the daemon's main loop once a second, never by a worker (the
/// calls take hwinit's control lock and allocate). A port whose driver
/// fails keeps its name with zero counters, and the failure is logged at
/// debug level (it would repeat every second).
pub fn read_ports(eal: &Eal, ports: &[(String, String, u16)]) -> Vec<PortStatus> {
    ports
        .iter()
        .map(|(name, device, id)| {
            let mut p = PortStatus {
                name: name.clone(),
                device: device.clone(),
                ..PortStatus::default()
            };
            match eal.port_stats(*id) {
                Ok(s) => {
                    p.imissed = s.imissed;
                    p.rx_nombuf = s.rx_nombuf;
                    p.ierrors = s.ierrors;
                    p.oerrors = s.oerrors;
                }
                Err(e) => tracing::debug!(port = %name, "port stats: {e}"),
            }
            match eal.port_xstats(*id) {
                Ok(x) => p.xstats = x,
                Err(e) => tracing::debug!(port = %name, "port xstats: {e}"),
            }
            p
        })
        .collect()
}

/// The answer to `cmd` with `params` from `status` (`None` before the first
/// publish): the entries of the top-level dict, or `None` for an unknown
/// command, a parameter where none is taken, a worker id that does not
/// parse or does not exist, or workers/services asked before the first
/// publish.
pub fn answer(status: Option<&Status>, cmd: &str, params: &str) -> Option<Vec<(String, TelValue)>> {
    let params = params.trim();
    match cmd {
        "/fulcrum/version" if params.is_empty() => {
            let mut out = vec![(
                "version".to_string(),
                TelValue::Str(env!("CARGO_PKG_VERSION").to_string()),
            )];
            if let Some(st) = status {
                out.push(("uptime_s".into(), TelValue::U64(st.uptime_s)));
            }
            Some(out)
        }
        "/fulcrum/workers" => {
            let st = status?;
            if params.is_empty() {
                return Some(
                    st.workers
                        .iter()
                        .map(|w| (w.id.to_string(), TelValue::Dict(worker_entries(w, false))))
                        .collect(),
                );
            }
            let id: u32 = params.parse().ok()?;
            st.workers
                .iter()
                .find(|w| w.id == id)
                .map(|w| worker_entries(w, true))
        }
        "/fulcrum/services" if params.is_empty() => Some(services(status?)),
        _ => None,
    }
}

/// One worker: its lcore, every counter by name, `drops_total`, and
/// `drop_<reason>` for each non-zero reason (every reason with `all_drops`).
fn worker_entries(w: &WorkerStatus, all_drops: bool) -> Vec<(String, TelValue)> {
    let mut out = vec![("lcore".to_string(), TelValue::U64(u64::from(w.lcore)))];
    out.extend(
        w.counters
            .iter()
            .map(|(k, &v)| (k.clone(), TelValue::U64(v))),
    );
    let total = w.drops.values().fold(0u64, |a, &b| a.saturating_add(b));
    out.push(("drops_total".into(), TelValue::U64(total)));
    out.extend(
        w.drops
            .iter()
            .filter(|(_, &v)| all_drops || v != 0)
            .map(|(k, &v)| (format!("drop_{k}"), TelValue::U64(v))),
    );
    out
}

/// Totals over every service, then one dict per service (the first
/// [`MAX_SERVICES_LISTED`]) named `PROTO:VIP:PORT` as ipvsadm prints the
/// address (`TCP:10.0.0.100:80`).
fn services(st: &Status) -> Vec<(String, TelValue)> {
    let sum =
        |f: fn(&ServiceStatus) -> u64| st.services.iter().fold(0u64, |a, s| a.saturating_add(f(s)));
    let mut out = vec![
        (
            "n_services".to_string(),
            TelValue::U64(st.services.len() as u64),
        ),
        (
            "n_real_servers".to_string(),
            TelValue::U64(sum(|s| s.reals.len() as u64)),
        ),
        ("conns".into(), TelValue::U64(sum(|s| s.conns))),
        ("activeconns".into(), TelValue::U64(sum(|s| s.active_conns))),
        (
            "inactconns".into(),
            TelValue::U64(sum(|s| s.inactive_conns)),
        ),
        ("in_pkts".into(), TelValue::U64(sum(|s| s.in_pkts))),
        ("out_pkts".into(), TelValue::U64(sum(|s| s.out_pkts))),
        ("in_bytes".into(), TelValue::U64(sum(|s| s.in_bytes))),
        ("out_bytes".into(), TelValue::U64(sum(|s| s.out_bytes))),
    ];
    for s in st.services.iter().take(MAX_SERVICES_LISTED) {
        let entries = vec![
            ("scheduler".to_string(), TelValue::Str(s.scheduler.clone())),
            ("forwarding".into(), TelValue::Str(s.forwarding.clone())),
            ("real_servers".into(), TelValue::U64(s.reals.len() as u64)),
            ("conns".into(), TelValue::U64(s.conns)),
            ("activeconns".into(), TelValue::U64(s.active_conns)),
            ("inactconns".into(), TelValue::U64(s.inactive_conns)),
            ("in_pkts".into(), TelValue::U64(s.in_pkts)),
            ("out_pkts".into(), TelValue::U64(s.out_pkts)),
            ("in_bytes".into(), TelValue::U64(s.in_bytes)),
            ("out_bytes".into(), TelValue::U64(s.out_bytes)),
        ];
        out.push((
            format!("{}:{}:{}", s.proto, s.vip, s.vport),
            TelValue::Dict(entries),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::build_status;
    use dataplane::snapshot::Snapshot;
    use dataplane::stats::{DropReason, SharedStats, WorkerStats};

    fn status() -> Status {
        let stats: Vec<Arc<SharedStats>> = (0..2).map(|_| Arc::new(SharedStats::new(1))).collect();
        let mut st = build_status(&Snapshot::default(), &stats, &[1, 2], 7, 100);
        st.workers[1].counters.insert("rx_pkts".into(), 123);
        *st.workers[1].drops.get_mut("no_service").expect("reason") = 4;
        st
    }

    fn get<'a>(entries: &'a [(String, TelValue)], name: &str) -> Option<&'a TelValue> {
        entries.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    #[test]
    fn test_workers() {
        let st = status();
        let all = answer(Some(&st), "/fulcrum/workers", "").expect("answer");
        assert_eq!(all.len(), 2);
        let Some(TelValue::Dict(w1)) = get(&all, "1") else {
            panic!("worker 1: {all:?}")
        };
        assert_eq!(get(w1, "lcore"), Some(&TelValue::U64(2)));
        assert_eq!(get(w1, "rx_pkts"), Some(&TelValue::U64(123)));
        assert_eq!(get(w1, "drops_total"), Some(&TelValue::U64(4)));
        assert_eq!(get(w1, "drop_no_service"), Some(&TelValue::U64(4)));
        assert_eq!(get(w1, "drop_no_route"), None, "zero drops left out");
        // Inside DPDK's 256 entries per dict, even with every reason.
        let one = answer(Some(&st), "/fulcrum/workers", " 1 ").expect("worker 1");
        assert_eq!(
            one.len(),
            1 + WorkerStats::COUNTER_NAMES.len() + 1 + DropReason::COUNT
        );
        assert!(one.len() <= 256);
        assert_eq!(get(&one, "drop_no_route"), Some(&TelValue::U64(0)));
        assert_eq!(answer(Some(&st), "/fulcrum/workers", "2"), None);
        assert_eq!(answer(Some(&st), "/fulcrum/workers", "x"), None);
        assert_eq!(answer(None, "/fulcrum/workers", ""), None);
    }

    #[test]
    fn test_version_and_unknown() {
        let v = answer(None, "/fulcrum/version", "").expect("version");
        assert_eq!(
            v,
            vec![(
                "version".to_string(),
                TelValue::Str(env!("CARGO_PKG_VERSION").into())
            )]
        );
        let st = status();
        let v = answer(Some(&st), "/fulcrum/version", "").expect("version");
        assert_eq!(get(&v, "uptime_s"), Some(&TelValue::U64(7)));
        assert_eq!(answer(Some(&st), "/fulcrum/version", "x"), None);
        assert_eq!(answer(Some(&st), "/fulcrum/nope", ""), None);
        for c in COMMANDS {
            assert!(c.name.len() < 56 && c.help.len() < 128, "{c:?}");
            assert!(c
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'/'));
        }
    }

    #[test]
    fn test_services() {
        let mut st = status();
        st.services.push(ServiceStatus {
            proto: "TCP".into(),
            vip: "10.0.0.100".into(),
            vport: 80,
            scheduler: "rr".into(),
            forwarding: "nat".into(),
            conns: 10,
            in_pkts: 50,
            out_pkts: 40,
            in_bytes: 5000,
            out_bytes: 4000,
            active_conns: 2,
            inactive_conns: 3,
            reals: vec![],
            persistence_timeout_s: None,
            persistence_netmask: None,
            sched_flags: vec![],
            rate: None,
        });
        let mut udp = st.services[0].clone();
        udp.proto = "UDP".into();
        udp.vport = 53;
        st.services.push(udp);
        let out = answer(Some(&st), "/fulcrum/services", "").expect("services");
        assert_eq!(get(&out, "n_services"), Some(&TelValue::U64(2)));
        assert_eq!(get(&out, "conns"), Some(&TelValue::U64(20)));
        assert_eq!(get(&out, "activeconns"), Some(&TelValue::U64(4)));
        assert_eq!(get(&out, "out_bytes"), Some(&TelValue::U64(8000)));
        let Some(TelValue::Dict(s)) = get(&out, "UDP:10.0.0.100:53") else {
            panic!("{out:?}")
        };
        assert_eq!(get(s, "scheduler"), Some(&TelValue::Str("rr".into())));
        assert_eq!(get(s, "inactconns"), Some(&TelValue::U64(3)));

        let many = st.services[0].clone();
        st.services = vec![many; MAX_SERVICES_LISTED + 10];
        let out = answer(Some(&st), "/fulcrum/services", "").expect("services");
        assert_eq!(out.len(), 9 + MAX_SERVICES_LISTED);
        assert_eq!(
            get(&out, "n_services"),
            Some(&TelValue::U64(MAX_SERVICES_LISTED as u64 + 10))
        );
    }
}
