//! A fixture [`Status`] with every part filled (two workers, two virtual
//! services, health checkers, a port, a refused reload, rates), for the
//! collector, page and server tests.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use dataplane::stats::{DropReason, WorkerStats};

use crate::admin::{
    PortStatus, RateStatus, RealStatus, ReloadStatus, ServiceStatus, Status, WorkerStatus,
};
use crate::health::report::{CheckerReport, HealthReport, RealReport, ServiceReport};

fn worker(id: u32, base: u64) -> WorkerStatus {
    let mut counters: BTreeMap<String, u64> = WorkerStats::COUNTER_NAMES
        .iter()
        .map(|n| (n.to_string(), 0))
        .collect();
    for (n, v) in [
        ("rx_pkts", base + 1),
        ("rx_bytes", base + 2),
        ("tx_pkts", base + 3),
        ("tx_bytes", base + 4),
        ("conns_created", base + 100),
        ("conns_expired", 60),
        ("conns_expired_nodest", 5),
        ("redirects_out", base + 7),
        ("redirects_in", base + 8),
        ("polls_busy", base + 9),
        ("polls_empty", base + 10),
        ("exception_to_kernel", base + 11),
        ("exception_from_kernel", base + 12),
    ] {
        counters.insert(n.to_string(), v);
    }
    let mut drops: BTreeMap<String, u64> = DropReason::ALL
        .iter()
        .map(|r| (r.name().to_string(), 0))
        .collect();
    drops.insert("no_route".into(), base + 13);
    WorkerStatus {
        id,
        lcore: id + 1,
        counters,
        drops,
    }
}

fn real(ip: &str, port: u16, weight: u32, k: u64) -> RealStatus {
    RealStatus {
        ip: ip.into(),
        port,
        forwarding: "Masq".into(),
        weight,
        active_conns: k,
        inactive_conns: k + 1,
        conns: k + 2,
        in_pkts: k + 3,
        out_pkts: k + 4,
        in_bytes: k + 5,
        out_bytes: k + 6,
        rate: Some(RateStatus {
            cps: k + 7,
            inpps: k + 8,
            outpps: k + 9,
            inbps: k + 10,
            outbps: k + 11,
        }),
    }
}

/// The fixture. Values are distinct so a test can tell fields apart:
/// worker 0 counters start at 1000, worker 1's at 2000; real server
/// 10.1.0.11:80 counters at 10, 10.1.0.12:80 at 20, 10.1.0.21:53 at 30.
pub fn fixture() -> Status {
    let web = ServiceStatus {
        proto: "TCP".into(),
        vip: "10.0.0.100".into(),
        vport: 80,
        scheduler: "wlc".into(),
        forwarding: "nat".into(),
        conns: 34,
        in_pkts: 36,
        out_pkts: 38,
        in_bytes: 40,
        out_bytes: 42,
        active_conns: 30,
        inactive_conns: 32,
        reals: vec![real("10.1.0.11", 80, 1, 10), real("10.1.0.12", 80, 0, 20)],
        persistence_timeout_s: Some(300),
        persistence_netmask: Some("255.255.255.0".into()),
        sched_flags: vec![],
        rate: Some(RateStatus {
            cps: 5,
            inpps: 6,
            outpps: 7,
            inbps: 8,
            outbps: 9,
        }),
    };
    let mut dns_real = real("10.1.0.21", 53, 3, 30);
    dns_real.rate = None;
    let dns = ServiceStatus {
        proto: "UDP".into(),
        vip: "10.0.0.101".into(),
        vport: 53,
        scheduler: "sh".into(),
        forwarding: "nat".into(),
        conns: 32,
        in_pkts: 33,
        out_pkts: 34,
        in_bytes: 35,
        out_bytes: 36,
        active_conns: 30,
        inactive_conns: 31,
        reals: vec![dns_real],
        persistence_timeout_s: None,
        persistence_netmask: None,
        sched_flags: vec!["sh-port".into()],
        rate: None,
    };
    let checker = |kind: &str, target: &str, state: &str, latency_us, result: &str| CheckerReport {
        kind: kind.into(),
        target: target.into(),
        state: state.into(),
        last_result: Some(result.into()),
        latency_us,
        last_check_ms: Some(1_700_000_000_000),
        last_transition_ms: None,
        checks: 17,
        failures: 4,
    };
    let health = HealthReport {
        reals: vec![
            RealReport {
                service: "TCP 10.0.0.100:80".into(),
                address: "10.1.0.11:80".into(),
                state: "up".into(),
                weight: 1,
                inhibit: false,
                transitions: 2,
                last_transition_ms: Some(1_700_000_000_000),
                last_reason: Some("HTTP_GET 10.1.0.11:80: success".into()),
                checkers: vec![
                    checker("HTTP_GET", "10.1.0.11:80", "up", Some(4_500), "ok"),
                    checker("TCP_CHECK", "10.1.0.11:80", "up", Some(250), "ok"),
                ],
            },
            RealReport {
                service: "TCP 10.0.0.100:80".into(),
                address: "10.1.0.12:80".into(),
                state: "down".into(),
                weight: 0,
                inhibit: true,
                transitions: 3,
                last_transition_ms: Some(1_700_000_001_000),
                last_reason: Some("HTTP_GET: status 500 <b>&\"oops\"</b>".into()),
                checkers: vec![checker(
                    "HTTP_GET",
                    "10.1.0.12:80",
                    "down",
                    None,
                    "status 500 <script>alert(1)</script>",
                )],
            },
        ],
        services: vec![ServiceReport {
            service: "TCP 10.0.0.100:80".into(),
            quorum: 1,
            hysteresis: 0,
            live_weight: 1,
            quorum_ok: true,
            sorry_server: None,
            sorry_active: false,
        }],
        publishes: 6,
        last_publish_us: 57,
    };
    Status {
        version: "0.1.0".into(),
        uptime_s: 3725,
        conn_table_size: 10_000,
        workers: vec![worker(0, 1000), worker(1, 2000)],
        services: vec![web, dns],
        health,
        ports: vec![PortStatus {
            name: "outside<&>".into(),
            device: "net_af_packet0".into(),
            imissed: 71,
            rx_nombuf: 72,
            ierrors: 73,
            oerrors: 74,
            xstats: vec![("rx_good_packets".into(), 75)],
        }],
        reload: Some(ReloadStatus {
            at_unix_s: 1_700_000_100,
            ok: false,
            generation: None,
            error: "fulcrum.ron:3:7: expected <ident> & \"x\"".into(),
            count: 4,
        }),
    }
}

/// The fixture without services, ports, reload or health: what a daemon
/// with an empty config shows before anything happened.
pub fn bare_fixture() -> Status {
    Status {
        services: Vec::new(),
        ports: Vec::new(),
        reload: None,
        health: HealthReport::default(),
        ..fixture()
    }
}
