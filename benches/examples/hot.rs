use arc_swap::ArcSwap;
use dataplane::pipeline::Core;
use dataplane::snapshot::Method;
use dataplane::stats::SharedStats;
use dataplane::worker::{LoopConf, Mesh, Worker};
use fulcrum_benches::{client_frame, nat_snapshot, OUT_MAC};
use hwinit::mem::MemQueue;
use std::sync::Arc;
use std::time::Duration;

fn main() {
    let method = if std::env::args().nth(1).as_deref() == Some("dr") {
        Method::Dr
    } else {
        Method::Nat
    };
    let rounds: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20000);
    let snap = nat_snapshot(3, method);
    let mut core = Core::new(0, 1, 1 << 20);
    core.sync(&snap);
    for i in 0..1000 {
        let mut syn = client_frame(i, true);
        core.process(&snap, &mut syn, 0, 0, false);
    }
    let acks: Vec<_> = (0..1000).map(|i| client_frame(i, false)).collect();
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
    let t = std::time::Instant::now();
    let mut n = 0;
    for _ in 0..rounds {
        n += w.poll_once(1);
    }
    let el = t.elapsed();
    eprintln!(
        "{n} pkts in {:?}: {:.1} ns/pkt; tx {}",
        el,
        el.as_nanos() as f64 / n as f64,
        w.core.stats.tx_pkts
    );
}
