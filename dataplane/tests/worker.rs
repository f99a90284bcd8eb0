//! The worker loop over in-memory queues: two workers, two ports each, with
//! frames landing on the worker that does not own their flow (as RSS does to
//! NAT replies). Checks the redirect over the rings, neighbour sharing, TX
//! coalescing, bulk frees and the published counters.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use dataplane::pipeline::Core;
use dataplane::snapshot::*;
use dataplane::stats::{DropReason, SharedStats};
use dataplane::worker::{LoopConf, Mesh, Worker};
use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use hwinit::mem::{MemBuf, MemQueue};

mod common;
use common::*;

/// The shared two-port director, with only the client's MAC known: the
/// workers must resolve the real servers themselves.
fn snapshot() -> Snapshot {
    let mut s = common::snapshot(Method::Nat, false);
    s.generation = 7;
    s.static_neighbours = vec![(0, ip(CIP), CLIENT_MAC)];
    s
}

fn tcp(
    smac: [u8; 6],
    dmac: [u8; 6],
    s: [u8; 4],
    d: [u8; 4],
    sp: u16,
    dp: u16,
    syn: bool,
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(smac, dmac)
        .ipv4(s, d, 64)
        .tcp(sp, dp, 1, 1000);
    let b = if syn { b.syn() } else { b.syn().ack(2) };
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v
}

fn arp_reply(smac: [u8; 6], sip: [u8; 4], dmac: [u8; 6], dip: [u8; 4]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&dmac);
    v.extend_from_slice(&smac);
    v.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
    v.extend_from_slice(&smac);
    v.extend_from_slice(&sip);
    v.extend_from_slice(&dmac);
    v.extend_from_slice(&dip);
    v.resize(60, 0);
    v
}

type W = Worker<MemQueue>;

fn workers() -> (W, W, Arc<SharedStats>, Arc<SharedStats>) {
    workers_for(snapshot())
}

fn workers_for(s: Snapshot) -> (W, W, Arc<SharedStats>, Arc<SharedStats>) {
    let snap = Arc::new(ArcSwap::from_pointee(s));
    let mesh: Arc<Mesh<MemBuf>> = Mesh::new(2);
    let conf = LoopConf {
        burst: 32,
        idle_sleep: Duration::ZERO,
    };
    let s0 = Arc::new(SharedStats::new(2));
    let s1 = Arc::new(SharedStats::new(2));
    let mk = |id: u16, st: &Arc<SharedStats>| {
        Worker::new(
            Core::new(id, 2, 1024),
            vec![MemQueue::new(OUT_MAC), MemQueue::new(IN_MAC)],
            Arc::clone(&snap),
            Arc::clone(&mesh),
            Arc::clone(st),
            conf,
        )
    };
    (mk(0, &s0), mk(1, &s1), s0, s1)
}

#[test]
fn test_two_workers_redirect_and_neighbour_sharing() {
    let (mut w0, mut w1, s0, s1) = workers();
    // A client port owned by worker 1.
    let cport = (40000..41000)
        .find(|&p| dataplane::owner::owner(u32::from_be_bytes(CIP), p, 2) == 1)
        .unwrap();

    // The SYN lands on worker 0 (as RSS may put it); the real server's MAC is
    // unknown, so worker 1 must ARP for it.
    w0.queues[0].inject(&tcp(CLIENT_MAC, OUT_MAC, CIP, VIP, cport, 80, true));
    assert_eq!(w0.poll_once(0), 1);
    assert_eq!(w0.core.stats.redirects_out, 1);
    // Worker 0 resolves the real servers ahead of use, once per snapshot.
    let primed = w0.queues[1].take_tx();
    assert_eq!(primed.len(), 2, "one ARP request per real server address");
    assert_eq!(&primed[0][38..42], &RIP1);
    assert_eq!(&primed[1][38..42], &RIP2);
    assert_eq!(&primed[0][0..6], &[0xff; 6]);
    // ... and the outside gateway of the default route.
    let gw = w0.queues[0].take_tx();
    assert_eq!(gw.len(), 1, "one ARP request for the outside gateway");
    assert_eq!(&gw[0][38..42], &[10, 0, 0, 254]);
    w1.poll_once(0);
    assert_eq!(w1.core.stats.redirects_in, 1);
    assert_eq!(w1.core.stats.drops[DropReason::NeighUnresolved as usize], 1);
    let arp = w1.queues[1].take_tx();
    assert_eq!(arp.len(), 1, "one ARP request for the real server");
    assert_eq!(&arp[0][38..42], &RIP1);
    assert_eq!(w1.core.stats.arp_requests, 1);

    // The ARP reply lands on worker 0; it learns it and tells worker 1.
    w0.queues[1].inject(&arp_reply(RS1_MAC, RIP1, IN_MAC, [10, 1, 0, 1]));
    w0.poll_once(5);
    w1.poll_once(5);
    assert!(w1.core.neigh.knows(1, u32::from_be_bytes(RIP1)));

    // The client's retransmitted SYN goes through worker 1 to the real server.
    w0.queues[0].inject(&tcp(CLIENT_MAC, OUT_MAC, CIP, VIP, cport, 80, true));
    w0.poll_once(1000);
    w1.poll_once(1000);
    let out = w1.queues[1].take_tx();
    assert_eq!(out.len(), 1);
    let p = SlicedPacket::from_ethernet(&out[0]).unwrap();
    assert_eq!(&out[0][0..6], &RS1_MAC);
    match (p.net, p.transport) {
        (Some(etherparse::NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(t))) => {
            assert_eq!(ip.header().destination(), RIP1);
            assert_eq!(t.destination_port(), 8080);
        }
        other => panic!("not IPv4/TCP: {other:?}"),
    }

    // The NAT reply lands on worker 0 too; worker 1 owns and rewrites it.
    w0.queues[1].inject(&tcp(RS1_MAC, IN_MAC, RIP1, CIP, 8080, cport, false));
    w0.poll_once(1001);
    w1.poll_once(1001);
    let back = w1.queues[0].take_tx();
    assert_eq!(back.len(), 1);
    assert_eq!(&back[0][26..30], &VIP, "source rewritten to the VIP");
    assert_eq!(&back[0][0..6], &CLIENT_MAC);
    assert!(
        w0.queues[0].tx.is_empty() && w0.queues[1].tx.is_empty(),
        "worker 0 sends nothing"
    );

    // Counters published on the tick are what the control thread reads.
    w0.publish();
    w1.publish();
    let (a, b) = (s0.load(), s1.load());
    assert_eq!(a.rx_pkts, 4);
    assert_eq!(
        a.arp_requests, 3,
        "the priming requests only (2 real servers, 1 gateway)"
    );
    assert_eq!(a.redirects_out, 3);
    assert_eq!(b.redirects_in, 3);
    assert_eq!(b.conns_created, 1);
    assert_eq!(b.tx_pkts, 3, "ARP request, SYN, SYN-ACK");
    assert_eq!(s1.load_real(1).conns, 1);
    assert_eq!(s1.load_real(1).out_pkts, 1);
    // Dropped frames were freed in bulk, none leaked.
    assert_eq!(
        w1.queues[0].n_freed, 1,
        "the first SYN, dropped for the unresolved neighbour"
    );
}

/// The director with every neighbour known and the TCP service persistent
/// (per client address, 300 s).
fn persistent() -> Snapshot {
    let mut s = common::snapshot(Method::Nat, true);
    s.generation = 9;
    s.services[0].persistence = Some(Persistence {
        timeout_ms: 300_000,
        mask: u32::MAX,
    });
    s
}

/// A port of client `cip`, from 1024 on, owned by worker `w` of 2.
fn owned_port(cip: [u8; 4], w: u16) -> u16 {
    (1024..u16::MAX)
        .find(|&p| dataplane::owner::owner(u32::from_be_bytes(cip), p, 2) == w)
        .unwrap()
}

/// Injects, on worker `w`'s outside port, a client SYN from `cip` whose
/// port belongs to worker `owner`.
fn client_syn(w: &mut W, cip: [u8; 4], owner: u16) {
    let p = owned_port(cip, owner);
    w.queues[0].inject(&tcp(CLIENT_MAC, OUT_MAC, cip, VIP, p, 80, true));
}

/// Destination addresses of the frames a worker sent towards the real
/// servers since the last call.
fn sent_to(w: &mut W) -> Vec<[u8; 4]> {
    w.queues[1]
        .take_tx()
        .iter()
        .map(|f| [f[30], f[31], f[32], f[33]])
        .collect()
}

#[test]
fn test_template_replicated_between_workers() {
    let (mut w0, mut w1, _, s1) = workers_for(persistent());
    // Worker 1 schedules another client first, so its rr would now pick
    // RIP2 for a client it has no template for.
    client_syn(&mut w1, [10, 0, 0, 9], 1);
    w1.poll_once(0);
    assert_eq!(sent_to(&mut w1), vec![RIP1]);
    // The client's first connection is owned by worker 0: rr picks RIP1 and
    // the template goes to worker 1 over the ring.
    client_syn(&mut w0, CIP, 0);
    w0.poll_once(1);
    assert_eq!(sent_to(&mut w0), vec![RIP1]);
    // Its second connection is owned by worker 1: the template decides.
    client_syn(&mut w1, CIP, 1);
    w1.poll_once(2);
    assert_eq!(sent_to(&mut w1), vec![RIP1]);
    // A SYN RSS put on the wrong worker is redirected after the template
    // that the same round created, so the owner already has it.
    let fresh = [10, 0, 0, 7];
    client_syn(&mut w0, fresh, 0);
    client_syn(&mut w0, fresh, 1);
    w0.poll_once(3);
    let first = sent_to(&mut w0);
    assert_eq!(first.len(), 1);
    w1.poll_once(3);
    assert_eq!(sent_to(&mut w1), first, "same real server on both workers");
    w1.publish();
    assert_eq!(s1.load().persist_templates, 3);
    assert_eq!(s1.load().persist_table_full, 0);
    assert_eq!(w0.core.stats.persist_templates, 3);
}

#[test]
fn test_two_workers_converge_after_a_conflict() {
    let (mut w0, mut w1, _, _) = workers_for(persistent());
    // 39 other clients on worker 0, then the client: its template is the
    // 40th fact in the ring to worker 1, beyond the 32 (the burst) that
    // worker 1 drains per round.
    for i in 0..39u8 {
        client_syn(&mut w0, [10, 0, 0, 10 + i], 0);
    }
    client_syn(&mut w0, CIP, 0);
    // Two rounds: a round takes at most one burst (32) from the port.
    w0.poll_once(10);
    w0.poll_once(10);
    let out = sent_to(&mut w0);
    assert_eq!(out.len(), 40);
    assert_eq!(out[39], RIP2, "rr's 40th pick");
    // Meanwhile the client's next connection reaches worker 1, which has
    // not seen the template yet: its own rr picks RIP1 (the documented
    // window of one ring round).
    client_syn(&mut w1, CIP, 1);
    w1.poll_once(10);
    assert_eq!(sent_to(&mut w1), vec![RIP1]);
    // A few rounds of exchange: worker 0's template (same ms, smaller
    // worker id) wins on both.
    for t in 11..15 {
        w0.poll_once(t);
        w1.poll_once(t);
    }
    let key = dataplane::persist::TemplateKey {
        vip: u32::from_be_bytes(VIP),
        cnet: u32::from_be_bytes(CIP),
        vport: 80,
        proto: 6,
    };
    for (w, name) in [(&mut w0, "worker 0"), (&mut w1, "worker 1")] {
        let t = w.core.persist.lookup(&key, 20).copied().expect(name);
        assert_eq!(
            (t.rip, t.creator, t.created_ms),
            (u32::from_be_bytes(RIP2), 0, 10),
            "{name}"
        );
        assert_eq!(w.core.stats.persist_templates, 40, "{name}");
    }
    // New connections of the client now agree, on either worker (ports
    // other than the ones used above: a new connection, not the old one).
    for (wid, w) in [(0u16, &mut w0), (1, &mut w1)] {
        let p = (2000..u16::MAX)
            .find(|&p| dataplane::owner::owner(u32::from_be_bytes(CIP), p, 2) == wid)
            .unwrap();
        w.queues[0].inject(&tcp(CLIENT_MAC, OUT_MAC, CIP, VIP, p, 80, true));
        w.poll_once(30);
        assert_eq!(sent_to(w), vec![RIP2], "worker {wid}");
    }
}

/// The exception path on one worker over in-memory queues: TCP to a DIP
/// goes, byte-identical, to the arrival port's kernel queue; exactly
/// `burst` frames pass at once and the rest are `exception_rate_limited`;
/// the bucket refills at `rate_pps` from the worker's clock; what the
/// kernel writes on its queue leaves on the matching port unchanged.
#[test]
fn test_exception_path_rate_limit_and_kernel_tx() {
    let snap = Arc::new(ArcSwap::from_pointee(snapshot()));
    let conf = LoopConf {
        burst: 32,
        idle_sleep: Duration::ZERO,
    };
    let stats = Arc::new(SharedStats::new(2));
    let mut w = Worker::new(
        Core::new(0, 1, 1024),
        vec![MemQueue::new(OUT_MAC), MemQueue::new(IN_MAC)],
        snap,
        Mesh::new(1),
        Arc::clone(&stats),
        conf,
    )
    .with_kernel(
        vec![MemQueue::new(OUT_MAC), MemQueue::new(IN_MAC)],
        1000,
        10,
    );
    // A first round adopts the snapshot and primes the neighbours (ARP
    // requests on both ports), which this test does not look at.
    w.poll_once(0);
    for q in &mut w.queues {
        q.take_tx();
    }
    let to_dip = |sport: u16| tcp(CLIENT_MAC, OUT_MAC, CIP, DIP_OUT, sport, 22, true);

    // 25 SYNs to the DIP at 0 ms: the 10 of the burst pass, in order.
    let sent: Vec<Vec<u8>> = (0..25).map(|i| to_dip(50000 + i)).collect();
    for f in &sent {
        w.queues[0].inject(f);
    }
    assert_eq!(w.poll_once(0), 25);
    let got = w.kernel[0].take_tx();
    assert_eq!(
        got,
        sent[..10].to_vec(),
        "the first `burst` frames, unchanged"
    );
    assert!(
        w.kernel[1].take_tx().is_empty(),
        "the arrival port's kernel only"
    );
    assert!(w.queues.iter_mut().all(|q| q.take_tx().is_empty()));
    let limited = |w: &W| w.core.stats.drops[DropReason::ExceptionRateLimited as usize];
    assert_eq!(w.core.stats.exception_to_kernel, 10);
    assert_eq!(limited(&w), 15);

    // 7 ms later at 1000 pps: 7 tokens, so 7 of the next 25 pass.
    for i in 0..25 {
        w.queues[0].inject(&to_dip(51000 + i));
    }
    w.poll_once(7);
    assert_eq!(w.kernel[0].take_tx().len(), 7);
    assert_eq!(w.core.stats.exception_to_kernel, 17);
    assert_eq!(limited(&w), 33);
    // A long pause refills only up to the burst.
    for i in 0..25 {
        w.queues[0].inject(&to_dip(52000 + i));
    }
    w.poll_once(60_000);
    assert_eq!(w.kernel[0].take_tx().len(), 10);

    // The kernel's own frames (its ARP request and a SYN to a real server)
    // leave on the matching port, byte-identical, counted once.
    let from_kernel = vec![
        {
            let mut f = vec![0xff; 6];
            f.extend_from_slice(&IN_MAC);
            f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
            f.extend_from_slice(&IN_MAC);
            f.extend_from_slice(&[10, 1, 0, 1]);
            f.extend_from_slice(&[0; 6]);
            f.extend_from_slice(&RIP1);
            f.resize(60, 0);
            f
        },
        tcp(IN_MAC, RS1_MAC, [10, 1, 0, 1], RIP1, 33000, 80, true),
    ];
    for f in &from_kernel {
        w.kernel[1].inject(f);
    }
    let tx_before = w.core.stats.tx_pkts;
    // The last round was busy: the kernel queues are polled within
    // KERNEL_POLL_EVERY rounds.
    let handled: usize = (0..dataplane::worker::KERNEL_POLL_EVERY)
        .map(|_| w.poll_once(60_001))
        .sum();
    assert_eq!(handled, 2);
    assert_eq!(w.queues[1].take_tx(), from_kernel);
    assert!(w.queues[0].take_tx().is_empty());
    assert_eq!(w.core.stats.exception_from_kernel, 2);
    assert_eq!(w.core.stats.tx_pkts, tx_before + 2);
    assert_eq!(w.core.stats.rx_pkts, 75, "kernel frames are not port RX");
    w.publish();
    assert_eq!(stats.load().exception_to_kernel, 27);
}

/// Without the exception path (no `with_kernel`), TCP to a DIP is still
/// `dip_unserved` and nothing is sent.
#[test]
fn test_exception_path_off_keeps_dip_unserved() {
    let (mut w0, _w1, _s0, _s1) = workers();
    w0.poll_once(0);
    for q in &mut w0.queues {
        q.take_tx();
    }
    w0.queues[0].inject(&tcp(CLIENT_MAC, OUT_MAC, CIP, DIP_OUT, 50000, 22, true));
    w0.poll_once(1);
    assert!(w0.queues.iter_mut().all(|q| q.take_tx().is_empty()));
    assert_eq!(w0.core.stats.drops[DropReason::DipUnserved as usize], 1);
    assert_eq!(w0.core.stats.exception_to_kernel, 0);
}
