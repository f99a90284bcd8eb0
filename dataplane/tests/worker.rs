//! The worker loop over in-memory queues: two workers, two ports each, with
//! frames landing on the worker that does not own their flow (as RSS does to
//! NAT replies). Checks the redirect over the rings, neighbour sharing, TX
//! coalescing, bulk frees and the published counters.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use dataplane::process::Core;
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
    let snap = Arc::new(ArcSwap::from_pointee(snapshot()));
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
    assert!(w1.core.neigh.knows(u32::from_be_bytes(RIP1)));

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
    assert_eq!(a.arp_requests, 2, "the priming requests only");
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
