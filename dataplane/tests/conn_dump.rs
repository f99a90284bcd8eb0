//! The connection listing over a running worker (in-memory queues): the
//! control side asks for slices on the worker's dump channel while the
//! worker loop runs on its own thread, and every connection the test opened
//! comes back exactly once, with its state and addresses.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use dataplane::conn::{DumpChannel, DumpError, TcpState};
use dataplane::pipeline::Core;
use dataplane::snapshot::*;
use dataplane::stats::SharedStats;
use dataplane::worker::{LoopConf, Mesh, Worker};
use etherparse::PacketBuilder;
use hwinit::mem::{MemBuf, MemQueue};

mod common;
use common::*;

/// A TCP segment; `flags`: (syn, ack, fin).
fn seg(
    (smac, dmac): ([u8; 6], [u8; 6]),
    (s, d): ([u8; 4], [u8; 4]),
    (sp, dp): (u16, u16),
    (syn, ack): (bool, bool),
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(smac, dmac)
        .ipv4(s, d, 64)
        .tcp(sp, dp, 1, 1000);
    let b = match (syn, ack) {
        (true, false) => b.syn(),
        (true, true) => b.syn().ack(2),
        _ => b.ack(2),
    };
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v
}

#[test]
fn test_worker_lists_every_connection_once_across_slices() {
    const N: u16 = 60;
    let snap = Arc::new(ArcSwap::from_pointee(common::snapshot(Method::Nat, true)));
    let mesh: Arc<Mesh<MemBuf>> = Mesh::new(1);
    let stats = Arc::new(SharedStats::new(3));
    let conf = LoopConf {
        burst: 32,
        idle_sleep: Duration::from_micros(100),
    };
    let channel = DumpChannel::new();
    let mut w = Worker::new(
        Core::new(0, 1, 1024),
        vec![MemQueue::new(OUT_MAC), MemQueue::new(IN_MAC)],
        Arc::clone(&snap),
        mesh,
        Arc::clone(&stats),
        conf,
    )
    .with_conn_dump(Arc::clone(&channel));

    // N client SYNs (SYN_RECV); the even ones complete the handshake
    // through the director (real server SYN-ACK, client ACK: ESTABLISHED).
    let client = (CLIENT_MAC, OUT_MAC);
    for i in 0..N {
        w.queues[0].inject(&seg(client, (CIP, VIP), (30000 + i, 80), (true, false)));
    }
    // 32 frames per burst: a few rounds.
    let mut forwarded = Vec::new();
    for _ in 0..4 {
        w.poll_once(1);
        forwarded.extend(w.queues[1].take_tx());
    }
    assert_eq!(forwarded.len(), usize::from(N), "every SYN forwarded");
    // Which real server each client port got, from the forwarded SYNs.
    let mut rip_of: HashMap<u16, [u8; 4]> = HashMap::new();
    for f in &forwarded {
        let sport = u16::from_be_bytes([f[34], f[35]]);
        rip_of.insert(sport, [f[30], f[31], f[32], f[33]]);
    }
    for i in (0..N).step_by(2) {
        let p = 30000 + i;
        let rip = rip_of[&p];
        let mac = if rip == RIP1 { RS1_MAC } else { RS2_MAC };
        w.queues[1].inject(&seg((mac, IN_MAC), (rip, CIP), (8080, p), (true, true)));
        w.queues[0].inject(&seg(client, (CIP, VIP), (p, 80), (false, true)));
    }
    for t in 2..8 {
        w.poll_once(t);
    }

    // The worker loop on its own thread; the listing from this one.
    let stop = Arc::new(AtomicBool::new(false));
    let handle = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            w.run(&stop);
            w
        })
    };
    // 7 records per slice: at least 9 slices for 60 connections.
    let got = channel.collect(7, Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    let w = handle.join().expect("worker thread");
    let got = got.expect("the worker answered every slice");
    assert_eq!(got.len(), usize::from(N), "each connection once");
    let mut seen = HashMap::new();
    for r in &got {
        assert!(seen.insert(r.cport, *r).is_none(), "port {} twice", r.cport);
        assert_eq!((r.cip, r.vip, r.vport, r.proto), (ip(CIP), ip(VIP), 80, 6));
        assert_eq!(r.rport, 8080);
        assert_eq!(r.rip, ip(rip_of[&r.cport]));
        let i = r.cport - 30000;
        let want = if i % 2 == 0 {
            TcpState::Established
        } else {
            TcpState::SynRecv
        };
        assert_eq!(r.state, want, "port {}", r.cport);
        // ESTABLISHED has 900 s, SYN_RECV 60 s (IPVS defaults); the timers
        // were armed a few ms before the listing.
        let full = if want == TcpState::Established {
            900_000
        } else {
            60_000
        };
        // (rounded up to the wheel's 64 ms tick).
        assert!(
            r.expire_ms <= full + 64 && r.expire_ms + 5_000 > full,
            "{r:?}"
        );
    }
    assert_eq!(w.core.conns.len(), usize::from(N));

    // With the worker stopped, a listing fails within its deadline.
    let d = Duration::from_millis(50);
    assert_eq!(channel.collect(7, d), Err(DumpError::Timeout(d)));
}
