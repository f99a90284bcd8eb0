//! `fulcrum-scrapebench`: the cost of one metrics scrape and one status
//! page of a large director, for `benches/scrape.sh`.
//!
//! Layer: benchmark tooling, never linked into the daemon. Builds what the
//! daemon's status function reads for SERVICES virtual services × REALS
//! real servers each: a `Snapshot`, WORKERS workers' `SharedStats` with
//! non-zero published counters for every real server, and a health report
//! with one checker per real server. Then it times three steps of a
//! request, RUNS times each, with `Instant`:
//!
//! - `status`: `control::admin::build_status` and the health report copy
//!   (the daemon's `StatusFn`);
//! - `scrape`: `control::metrics::collector::encode`, which calls the
//!   status function, fills the `StatusCollector`'s families and encodes
//!   them in the text format (what `GET /metrics` returns);
//! - `page`: rendering the status page (what `GET /` returns).
//!
//! It prints a Markdown table (median and worst wall time per step, the
//! CPU time per run from `/proc/thread-self/stat`, in ms, and the body
//! sizes) plus `scrape_median_ms=`, `scrape_cpu_ms=` and `target_ms=50`
//! lines. Exit status 1 when the median scrape is 50 ms or more.
//!
//! Usage: `fulcrum-scrapebench [SERVICES [REALS [WORKERS [RUNS]]]]`
//! (defaults 1000 10 2 15).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use control::admin::{build_status, Status, StatusFn};
use control::health::report::{CheckerReport, HealthReport, RealReport};
use control::metrics::{collector, page};
use dataplane::snapshot::{Method, Proto, RealServer, Service, ServiceKey, Snapshot};
use dataplane::stats::{RealStats, SharedStats, WorkerStats};
use sched::SchedKind;

const TARGET_MS: f64 = 50.0;

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .map(|a| {
            a.parse().unwrap_or_else(|_| {
                eprintln!("fulcrum-scrapebench: argument {i} {a:?}: expected a count");
                std::process::exit(2)
            })
        })
        .unwrap_or(default)
}

/// The snapshot: service `s` is TCP 10.100.s/256.s%256:80, its real
/// servers 10.(1 + s/256).(s%256).(1 + r):80; real ids are dense from 1.
fn snapshot(services: usize, reals: usize) -> Snapshot {
    let mut snap = Snapshot {
        reals: vec![RealServer {
            ip: 0,
            port: 0,
            weight: 0,
            method: Method::Nat,
            tun: Default::default(),
            service: 0,
            available: false,
        }],
        ..Default::default()
    };
    for s in 0..services {
        let (hi, lo) = ((s / 256) as u32, (s % 256) as u32);
        let mut ids = Vec::with_capacity(reals);
        for r in 0..reals {
            ids.push(snap.reals.len() as u32);
            snap.reals.push(RealServer {
                ip: (10 << 24) | ((1 + hi) << 16) | (lo << 8) | (1 + r as u32),
                port: 80,
                weight: 1 + r as u32 % 3,
                method: Method::Nat,
                tun: Default::default(),
                service: s as u16,
                available: true,
            });
        }
        snap.services.push(Service {
            key: ServiceKey {
                vip: (10 << 24) | (100 << 16) | (hi << 8) | lo,
                vport: 80,
                proto: Proto::Tcp,
            },
            scheduler: SchedKind::Wlc,
            sched_flags: Default::default(),
            sched_params: Default::default(),
            mh_table: None,
            reals: ids,
            persistence: None,
            local_addresses: Vec::new(),
            client_address: Default::default(),
        });
    }
    snap
}

/// One checker per real server, as the supervisor reports them.
fn health(st: &Status) -> HealthReport {
    let mut rep = HealthReport::default();
    for svc in &st.services {
        let service = format!("{} {}:{}", svc.proto, svc.vip, svc.vport);
        for r in &svc.reals {
            let address = format!("{}:{}", r.ip, r.port);
            rep.reals.push(RealReport {
                service: service.clone(),
                address: address.clone(),
                state: "up".into(),
                weight: r.weight,
                transitions: 1,
                checkers: vec![CheckerReport {
                    kind: "TCP_CHECK".into(),
                    target: address,
                    state: "up".into(),
                    last_result: Some("ok".into()),
                    latency_us: Some(120),
                    checks: 1000,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
    }
    rep
}

/// This thread's CPU time (user + system) so far, in ms, from
/// `/proc/thread-self/stat` (clock ticks of 10 ms; summed over a loop of
/// runs it gives the CPU per run independently of what else the machine
/// runs, which the wall times are not).
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    f.iter().sum::<u64>() as f64 * 10.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median_max(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() - 1])
}

fn main() {
    let (services, reals, workers, runs) = (arg(1, 1000), arg(2, 10), arg(3, 2), arg(4, 15).max(1));
    let snap = Arc::new(snapshot(services, reals));
    let n_ids = snap.reals.len();
    let stats: Vec<Arc<SharedStats>> = (0..workers)
        .map(|w| {
            let s = Arc::new(SharedStats::new(n_ids));
            let per_real: Vec<RealStats> = (0..n_ids as u64)
                .map(|i| RealStats {
                    conns: 1000 + i + w as u64,
                    in_pkts: 10_000 + i,
                    out_pkts: 9_000 + i,
                    in_bytes: 1_000_000 + i,
                    out_bytes: 9_000_000 + i,
                    active_conns: i % 50,
                    inactive_conns: i % 7,
                })
                .collect();
            let ws = WorkerStats {
                rx_pkts: 123_456_789,
                tx_pkts: 123_456_000,
                ..Default::default()
            };
            s.publish(&ws, &per_real);
            s
        })
        .collect();
    let lcores: Vec<u32> = (1..=workers as u32).collect();
    let report = health(&build_status(&snap, &stats, &lcores, 1, 1 << 20));
    let status: StatusFn = {
        let (snap, stats, lcores) = (Arc::clone(&snap), stats.clone(), lcores.clone());
        Arc::new(move || {
            let mut st = build_status(&snap, &stats, &lcores, 1, 1 << 20);
            st.health = report.clone();
            st
        })
    };
    let status_collector =
        collector::StatusCollector::new(Arc::clone(&status)).unwrap_or_else(|e| {
            eprintln!("fulcrum-scrapebench: collector: {e}");
            std::process::exit(1)
        });

    let mut status_ms = Vec::new();
    let t_cpu = cpu_ms();
    for _ in 0..runs {
        let t = Instant::now();
        let st = status();
        status_ms.push(ms(t.elapsed()));
        drop(st);
    }
    let status_cpu = (cpu_ms() - t_cpu) / runs as f64;
    // Whole scrapes: `encode` calls the status function itself, as the
    // endpoint does.
    let (mut scrape_ms, mut metrics_len, mut samples) = (Vec::new(), 0, 0);
    let t_cpu = cpu_ms();
    for _ in 0..runs {
        let t = Instant::now();
        let body = collector::encode(&status_collector).unwrap_or_else(|e| {
            eprintln!("fulcrum-scrapebench: encode: {e}");
            std::process::exit(1)
        });
        scrape_ms.push(ms(t.elapsed()));
        metrics_len = body.len();
        samples = body
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty() && l[0] != b'#')
            .count();
    }
    let scrape_cpu = (cpu_ms() - t_cpu) / runs as f64;
    let st = status();
    let (mut page_ms, mut page_len) = (Vec::new(), 0);
    let t_cpu = cpu_ms();
    for _ in 0..runs {
        let t = Instant::now();
        let html = page::render(&st, SystemTime::now());
        page_ms.push(ms(t.elapsed()));
        page_len = html.len();
    }
    let page_cpu = (cpu_ms() - t_cpu) / runs as f64;
    let (s_med, s_max) = median_max(&mut status_ms);
    let (p_med, p_max) = median_max(&mut page_ms);
    let (sc_med, sc_max) = median_max(&mut scrape_ms);
    println!(
        "{services} virtual services × {reals} real servers, {workers} workers, one checker per real server; {runs} runs."
    );
    println!();
    println!("| step | median ms | worst ms | CPU ms | output |");
    println!("|---|---:|---:|---:|---|");
    println!(
        "| status (`build_status` over snapshot and shared counters, health report copied) | {s_med:.2} | {s_max:.2} | {status_cpu:.1} | {} real servers |",
        services * reals
    );
    println!(
        "| **scrape** (`GET /metrics`: status + `StatusCollector` + `TextEncoder`) | **{sc_med:.2}** | {sc_max:.2} | {scrape_cpu:.1} | {samples} samples, {metrics_len} bytes; target < {TARGET_MS} ms |"
    );
    println!(
        "| status page render (`GET /` minus the status) | {p_med:.2} | {p_max:.2} | {page_cpu:.1} | {page_len} bytes |"
    );
    println!();
    println!("scrape_median_ms={sc_med:.2}");
    println!("scrape_cpu_ms={scrape_cpu:.1}");
    println!("target_ms={TARGET_MS}");
    if sc_med >= TARGET_MS {
        eprintln!("fulcrum-scrapebench: median scrape {sc_med:.2} ms is not under {TARGET_MS} ms");
        std::process::exit(1);
    }
}
