//! Scheduler state through `Core::sync` and `Core::process`: what survives a
//! new snapshot, that an `mh` table published in the snapshot is used as is
//! (never rebuilt on a worker), and that a service with no usable real
//! server drops new flows under `no_real_server` whatever its scheduler.

use std::sync::Arc;

use dataplane::pipeline::{Core, Verdict};
use dataplane::snapshot::*;
use dataplane::stats::DropReason;
use etherparse::PacketBuilder;
use sched::{
    AnyScheduler, Dest, FlowInfo, Maglev, MhTable, SchedFlags, SchedKind, SchedParams, Scheduler,
};

mod common;
use common::*;

/// A TCP SYN from `cip:sport` to the VIP's port 80, as the client sends it.
fn syn(cip: [u8; 4], sport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, OUT_MAC)
        .ipv4(cip, VIP, 64)
        .tcp(sport, 80, 1000, 65535)
        .syn()
        .write(&mut v, b"")
        .unwrap();
    v
}

/// Sends a SYN and returns the RIP it was forwarded to (the rewritten
/// destination address), or the verdict when it was not forwarded.
fn pick(c: &mut Core, s: &Snapshot, cip: [u8; 4], sport: u16) -> Result<[u8; 4], Verdict> {
    let mut f = syn(cip, sport);
    match c.process(s, &mut f, 0, 0, false) {
        Verdict::Tx(_) => Ok(f[30..34].try_into().unwrap()),
        v => Err(v),
    }
}

/// The TCP service (index 0 in the fixture) with scheduler `kind`.
fn with_sched(mut s: Snapshot, kind: SchedKind) -> Snapshot {
    s.services[0].scheduler = kind;
    s
}

/// The fixture's services in the other order (UDP first), with
/// `service_index` and each real server's owner following: the same
/// services under other indices.
fn swap_services(mut s: Snapshot) -> Snapshot {
    s.services.swap(0, 1);
    for (i, svc) in s.services.iter().enumerate() {
        s.service_index.insert(svc.key, i as u16);
        for &id in &svc.reals {
            s.reals[id as usize].service = i as u16;
        }
    }
    s
}

fn core(s: &Snapshot) -> Core {
    let mut c = Core::new(0, 1, 1024);
    assert!(c.sync(s));
    c
}

fn tcp_index(s: &Snapshot) -> u16 {
    s.service(ip(VIP), 80, Proto::Tcp).unwrap()
}

#[test]
fn test_rr_continues_across_unrelated_snapshot() {
    let s1 = snapshot(Method::Nat, true);
    let mut c = core(&s1);
    assert_eq!(pick(&mut c, &s1, CIP, 40000), Ok(RIP1));
    // Generation 2: the UDP service's weights and a TCP weight change, and
    // the services swap indices. The TCP service is matched by its key, so
    // its rotation goes on where it was.
    let mut s2 = swap_services(snapshot(Method::Nat, true));
    s2.generation = 2;
    s2.reals[1].weight = 5;
    s2.reals[3].weight = 7;
    assert_ne!(tcp_index(&s2), tcp_index(&s1));
    assert!(c.sync(&s2));
    assert_eq!(pick(&mut c, &s2, CIP, 40001), Ok(RIP2));
    assert_eq!(pick(&mut c, &s2, CIP, 40002), Ok(RIP1));
    // The same generation again changes nothing.
    assert!(!c.sync(&s2));
    assert_eq!(pick(&mut c, &s2, CIP, 40003), Ok(RIP2));
}

#[test]
fn test_rr_resets_when_real_server_list_changes() {
    let s1 = snapshot(Method::Nat, true);
    let mut c = core(&s1);
    assert_eq!(pick(&mut c, &s1, CIP, 40000), Ok(RIP1));
    // Generation 2: RS2 listens on another port; the list (RIP, port) is
    // not the same, so the state is fresh and rr starts over at index 0.
    let mut s2 = snapshot(Method::Nat, true);
    s2.generation = 2;
    s2.reals[2].port = 8081;
    assert!(c.sync(&s2));
    assert_eq!(pick(&mut c, &s2, CIP, 40001), Ok(RIP1));
    // A scheduler change resets too (wrr's sequence also starts at RS1).
    let mut s3 = with_sched(snapshot(Method::Nat, true), SchedKind::Wrr);
    s3.generation = 3;
    assert!(c.sync(&s3));
    assert_eq!(
        c.scheduler(tcp_index(&s3)).map(AnyScheduler::kind),
        Some(SchedKind::Wrr)
    );
    assert_eq!(pick(&mut c, &s3, CIP, 40002), Ok(RIP1));
}

#[test]
fn test_lblc_keeps_destination_mapping_across_snapshot() {
    // lblc remembers VIP → RS1 after the first pick. RS1 then has one
    // (inactive, SYN_RECV) connection, so a fresh lblc would pick RS2 by
    // wlc; a kept one still sends the VIP to RS1.
    let s1 = with_sched(snapshot(Method::Nat, true), SchedKind::Lblc);
    let mut c = core(&s1);
    assert_eq!(pick(&mut c, &s1, CIP, 40000), Ok(RIP1));
    let mut s2 = swap_services(with_sched(snapshot(Method::Nat, true), SchedKind::Lblc));
    s2.generation = 2;
    s2.reals[3].weight = 4;
    assert!(c.sync(&s2));
    assert_eq!(pick(&mut c, &s2, CIP, 40001), Ok(RIP1));
    assert_eq!(pick(&mut c, &s2, [10, 0, 0, 3], 40002), Ok(RIP1));
    // A changed real-server list empties the table: wlc now prefers RS2
    // (RS1 holds 3 connections).
    let mut s3 = with_sched(snapshot(Method::Nat, true), SchedKind::Lblc);
    s3.generation = 3;
    s3.reals[2].port = 8081;
    assert!(c.sync(&s3));
    assert_eq!(pick(&mut c, &s3, CIP, 40003), Ok(RIP2));
}

/// The fixture with the TCP service on `mh` (M = 251, seed 7) and its table
/// built as control does: from the service's real servers in order,
/// identities `RealServer::sched_id`.
fn mh_snapshot(generation: u64, weights: [u32; 2]) -> Snapshot {
    let mut s = with_sched(snapshot(Method::Nat, true), SchedKind::Mh);
    s.generation = generation;
    s.reals[1].weight = weights[0];
    s.reals[2].weight = weights[1];
    let params = SchedParams {
        mh_table_len: 251,
        mh_seed: 7,
        ..SchedParams::default()
    };
    let dests = mh_dests(&s);
    let svc = &mut s.services[0];
    svc.sched_params = params;
    svc.mh_table = Some(Arc::new(MhTable::for_dests(&dests, 251, 7)));
    s
}

fn mh_dests(s: &Snapshot) -> Vec<Dest> {
    s.services[0]
        .reals
        .iter()
        .map(|&id| {
            let r = &s.reals[id as usize];
            Dest {
                weight: r.weight,
                id: r.sched_id(),
                ..Dest::default()
            }
        })
        .collect()
}

fn maglev(c: &Core) -> &Maglev {
    match c.scheduler(0) {
        Some(AnyScheduler::Mh(m)) => m,
        other => panic!("service 0 is not mh: {other:?}"),
    }
}

#[test]
fn test_mh_uses_snapshot_table_never_rebuilds() {
    let s1 = mh_snapshot(1, [1, 3]);
    let shared = s1.services[0].mh_table.clone().unwrap();
    let mut c = core(&s1);
    // An independent Maglev that builds its own table from the same dests.
    let mut own = Maglev::new(251, 7, false, false);
    let dests = mh_dests(&s1);
    let rips = [RIP1, RIP2];
    let mut seen = [0u32; 2];
    for i in 0..200u32 {
        let cip = [172, 16, (i >> 8) as u8, i as u8];
        let want = own
            .pick(
                &dests,
                &FlowInfo {
                    src_ip: u32::from_be_bytes(cip),
                    src_port: 40000,
                    dst_ip: ip(VIP),
                    dst_port: 80,
                },
            )
            .unwrap();
        assert_eq!(pick(&mut c, &s1, cip, 40000), Ok(rips[want]));
        seen[want] += 1;
    }
    // Weighted 1:3 over 200 clients: both used, RS2 more.
    assert!(seen[0] > 20 && seen[1] > seen[0], "{seen:?}");
    assert_eq!(maglev(&c).rebuilds(), 0);
    assert!(Arc::ptr_eq(maglev(&c).shared_table().unwrap(), &shared));

    // A new snapshot with new weights brings a new table: adopted, not
    // rebuilt, even though the real-server list is unchanged.
    let s2 = mh_snapshot(2, [2, 0]);
    let shared2 = s2.services[0].mh_table.clone().unwrap();
    assert!(c.sync(&s2));
    for i in 0..50u32 {
        assert_eq!(pick(&mut c, &s2, [172, 17, 0, i as u8], 40000), Ok(RIP1));
    }
    assert_eq!(maglev(&c).rebuilds(), 0);
    assert!(Arc::ptr_eq(maglev(&c).shared_table().unwrap(), &shared2));
}

#[test]
fn test_every_scheduler_drops_no_real_server() {
    let flags = SchedFlags {
        sh_fallback: true,
        mh_fallback: true,
        ..SchedFlags::default()
    };
    for &kind in SchedKind::ALL {
        for empty in [false, true] {
            let mut s = with_sched(snapshot(Method::Nat, true), kind);
            s.services[0].sched_flags = flags;
            if empty {
                s.services[0].reals.clear();
            } else {
                s.reals[1].weight = 0;
                s.reals[2].weight = 0;
            }
            if kind == SchedKind::Mh {
                let dests = mh_dests(&s);
                s.services[0].mh_table = Some(Arc::new(MhTable::for_dests(
                    &dests,
                    sched::MH_TABLE_LEN_DEFAULT,
                    sched::MH_SEED_DEFAULT,
                )));
            }
            let mut c = core(&s);
            for p in 0..5u16 {
                assert_eq!(
                    pick(&mut c, &s, CIP, 40000 + p),
                    Err(Verdict::Drop(DropReason::NoRealServer)),
                    "{kind:?} empty={empty}"
                );
            }
            assert_eq!(
                c.stats.drops[DropReason::NoRealServer as usize],
                5,
                "{kind:?}"
            );
            // Nothing was created, and no real server (index 0 least of
            // all) was charged a connection.
            assert!(c.conns.is_empty(), "{kind:?}");
            assert!(c.reals.iter().all(|r| r.conns == 0), "{kind:?}");
        }
    }
}
