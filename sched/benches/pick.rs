//! Criterion benches for `sched`: the cost of one `pick()` (one new
//! connection) for every scheduler at 4, 64 and 1024 real servers, and of
//! building a Maglev table (M = 65537, 1000 servers; the Maglev paper,
//! NSDI'16 §3.4, reports 1.8 ms).
//!
//! Inputs are generated, deterministic: weights 1..=8, activeconns and
//! inactconns spread so the least-connection scans do real comparisons, and
//! a stream of client/destination addresses from a fixed xorshift so that
//! hashing schedulers touch different buckets. Tables are built before
//! measuring (the first pick), so the numbers are steady-state picks.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use sched::{build_table, AnyScheduler, Dest, FlowInfo, SchedKind, Scheduler};

fn dests(n: usize) -> Vec<Dest> {
    (0..n)
        .map(|i| Dest {
            weight: 1 + (i as u32 * 7) % 8,
            active_conns: (i as u32 * 13) % 50,
            inactive_conns: (i as u32 * 29) % 200,
            id: (0x0a00_0000 + i as u64) << 16 | 80,
        })
        .collect()
}

fn flows(n: usize) -> Vec<FlowInfo> {
    let mut x = 0x1234_5678_9abc_def1u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            FlowInfo {
                src_ip: x as u32,
                src_port: (x >> 32) as u16,
                // A few hundred destinations so lblc/lblcr mostly hit.
                dst_ip: 0xc0a8_0000 | ((x >> 48) as u32 % 512),
                dst_port: 80,
            }
        })
        .collect()
}

fn bench_pick(c: &mut Criterion) {
    let fl = flows(4096);
    for &n in &[4usize, 64, 1024] {
        let ds = dests(n);
        let mut g = c.benchmark_group(format!("pick/{n}"));
        for &kind in SchedKind::ALL {
            let mut s = AnyScheduler::new(kind);
            // Warm: builds dh/sh/mh tables and lblc/lblcr entries.
            for f in &fl {
                s.pick(&ds, f);
            }
            let mut k = 0usize;
            g.bench_function(BenchmarkId::from_parameter(kind.name()), |b| {
                b.iter(|| {
                    k = (k + 1) & 4095;
                    black_box(s.pick(black_box(&ds), &fl[k]))
                })
            });
        }
        g.finish();
    }
}

fn bench_mh_build(c: &mut Criterion) {
    let servers: Vec<(u64, u32)> = dests(1000).iter().map(|d| (d.id, 1)).collect();
    c.bench_function("mh_build/65537x1000", |b| {
        b.iter(|| {
            black_box(build_table(
                black_box(&servers),
                65537,
                sched::MH_SEED_DEFAULT,
            ))
        })
    });
}

criterion_group!(benches, bench_pick, bench_mh_build);
criterion_main!(benches);
