//! Per-packet cost of `Core::process` on established NAT flows, 64-byte
//! frames, and of a whole worker round over in-memory queues (the loop's own
//! overhead included). Results go to BENCHMARKS.md.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dataplane::pipeline::Core;
use dataplane::snapshot::Method;
use dataplane::stats::SharedStats;
use dataplane::worker::{LoopConf, Mesh, Worker};
use fulcrum_benches::{client_frame, nat_snapshot, OUT_MAC};
use hwinit::mem::MemQueue;

const FLOWS: u32 = 1000;

fn established(method: Method) -> (dataplane::Snapshot, Core, Vec<Vec<u8>>) {
    let snap = nat_snapshot(3, method);
    let mut core = Core::new(0, 1, 1 << 20);
    core.sync(&snap);
    for i in 0..FLOWS {
        let mut syn = client_frame(i, true);
        let v = core.process(&snap, &mut syn, 0, 0, false);
        assert_eq!(v, dataplane::Verdict::Tx(0), "flow {i} must be created");
    }
    let acks = (0..FLOWS).map(|i| client_frame(i, false)).collect();
    (snap, core, acks)
}

fn bench_process(c: &mut Criterion) {
    let mut g = c.benchmark_group("process");
    g.throughput(Throughput::Elements(u64::from(FLOWS)));
    for (name, method) in [
        ("nat_established_64B", Method::Nat),
        ("dr_established_64B", Method::Dr),
    ] {
        let (snap, mut core, acks) = established(method);
        let mut buf = [0u8; 60];
        g.bench_function(name, |b| {
            b.iter(|| {
                for f in &acks {
                    buf.copy_from_slice(f);
                    let v = core.process(&snap, &mut buf, 0, 1, false);
                    criterion::black_box(v);
                }
            })
        });
    }
    g.bench_function("nat_new_conn_syn_64B", |b| {
        let snap = nat_snapshot(3, Method::Nat);
        let syns: Vec<_> = (0..FLOWS).map(|i| client_frame(i, true)).collect();
        b.iter_batched(
            || {
                let mut core = Core::new(0, 1, 1 << 16);
                core.sync(&snap);
                core
            },
            |mut core| {
                let mut buf = [0u8; 60];
                for f in &syns {
                    buf.copy_from_slice(f);
                    criterion::black_box(core.process(&snap, &mut buf, 0, 1, false));
                }
                core
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn bench_worker_round(c: &mut Criterion) {
    let (snap, core, acks) = established(Method::Nat);
    let snap = Arc::new(ArcSwap::from_pointee(snap));
    let queues = vec![MemQueue::replay(OUT_MAC, &acks)];
    let mut w = Worker::new(
        core,
        queues,
        snap,
        Mesh::new(1),
        Arc::new(SharedStats::new(8)),
        LoopConf {
            burst: 32,
            idle_sleep: Duration::ZERO,
        },
    );
    let mut g = c.benchmark_group("worker");
    g.throughput(Throughput::Elements(32));
    g.bench_function("round_32x64B_nat_established", |b| {
        b.iter(|| w.poll_once(1))
    });
    g.finish();
}

criterion_group!(benches, bench_process, bench_worker_round);
criterion_main!(benches);
