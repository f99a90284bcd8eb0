//! Runtime edits against a worker's `Core`: a connection made before
//! services and real servers are added and removed around its own keeps
//! counting on its real server, because `compile` keeps real-server ids.

use std::sync::Arc;

use arc_swap::ArcSwap;
use control::admin::build_status;
use control::compile::compile;
use control::config::parse;
use control::edit::Editor;
use dataplane::pipeline::{Core, Verdict};
use dataplane::snapshot::{Snapshot, NO_SERVICE};
use dataplane::stats::{RealStats, SharedStats};
use etherparse::PacketBuilder;
use serde_json::json;

const OUT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const IN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
const CLIENT_MAC: [u8; 6] = [0x02, 0xcc, 0, 0, 0, 0x02];
const CIP: [u8; 4] = [10, 0, 0, 2];
const VIP: [u8; 4] = [10, 0, 0, 100];

/// Service X (10.0.0.101:80, one real server) before service A
/// (10.0.0.100:80, two NAT real servers on port 8080); every neighbour
/// static so nothing waits for ARP.
const CFG: &str = r#"(
    eal_args: ["-l", "0-1"],
    workers: [1],
    ports: [
        (name: "outside", device: "net_null0", addrs: ["10.0.0.1/24"]),
        (name: "inside", device: "net_null1", addrs: ["10.1.0.1/24"]),
    ],
    neighbours: [
        (ip: "10.0.0.2", mac: "02:cc:00:00:00:02"),
        (ip: "10.1.0.11", mac: "02:aa:00:00:00:0b"),
        (ip: "10.1.0.12", mac: "02:aa:00:00:00:0c"),
        (ip: "10.1.0.31", mac: "02:aa:00:00:00:1f"),
        (ip: "10.1.0.32", mac: "02:aa:00:00:00:20"),
        (ip: "10.1.0.41", mac: "02:aa:00:00:00:29"),
    ],
    services: [
        (vip: "10.0.0.101:80", proto: "tcp", scheduler: "rr", forwarding: "nat",
         real_servers: [(addr: "10.1.0.31:80")]),
        (vip: "10.0.0.100:80", proto: "tcp", scheduler: "rr", forwarding: "nat",
         real_servers: [(addr: "10.1.0.11:8080"), (addr: "10.1.0.12:8080")]),
    ],
)"#;

/// A TCP segment; `flags` "S" = SYN, "SA" = SYN+ACK, "A" = ACK.
fn tcp(macs: ([u8; 6], [u8; 6]), src: ([u8; 4], u16), dst: ([u8; 4], u16), flags: &str) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(macs.0, macs.1)
        .ipv4(src.0, dst.0, 64)
        .tcp(src.1, dst.1, 1000, 64240);
    let b = match flags {
        "S" => b.syn(),
        "SA" => b.syn().ack(1001),
        _ => b.ack(1001),
    };
    let mut v = Vec::new();
    b.write(&mut v, &[]).expect("build frame");
    v
}

fn dst_ip(frame: &[u8]) -> [u8; 4] {
    [frame[30], frame[31], frame[32], frame[33]]
}

/// The id `snap` gives the real server `rip:rport` of the service on
/// `vip_last_octet`, port 80.
fn id_of(snap: &Snapshot, vip_last_octet: u8, rip: [u8; 4], rport: u16) -> u32 {
    let svc = snap
        .service(
            u32::from_be_bytes([10, 0, 0, vip_last_octet]),
            80,
            dataplane::snapshot::Proto::Tcp,
        )
        .expect("service");
    *snap.services[usize::from(svc)]
        .reals
        .iter()
        .find(|&&id| {
            let r = &snap.reals[id as usize];
            r.ip == u32::from_be_bytes(rip) && r.port == rport
        })
        .expect("real server")
}

#[test]
fn test_connection_keeps_its_real_server_across_edits() {
    let cfg = parse(CFG, "edit.ron").expect("valid");
    let macs = vec![OUT_MAC, IN_MAC];
    let first = compile(&cfg, &macs, 1, None, &[]);
    let stats = Arc::new(SharedStats::new(first.reals.len()));
    let swap = Arc::new(ArcSwap::from_pointee(first));
    let editor = Editor::new(
        cfg.clone(),
        macs.clone(),
        Arc::clone(&swap),
        vec![Arc::clone(&stats)],
    );

    let mut core = Core::new(0, 1, 1024);
    let snap = swap.load_full();
    assert!(core.sync(&snap));

    // A client connects to service A before any edit.
    let mut syn = tcp((CLIENT_MAC, OUT_MAC), (CIP, 40000), (VIP, 80), "S");
    assert_eq!(core.process(&snap, &mut syn, 0, 0, false), Verdict::Tx(1));
    let rip = dst_ip(&syn);
    let id = id_of(&snap, 100, rip, 8080);
    assert_eq!(core.reals[id as usize].conns, 1);
    assert_eq!(core.reals[id as usize].inactive_conns, 1);

    // Edits around it: a real server added to the service before it, that
    // service deleted, a new service added. Renumbering from 1 would have
    // moved A's ids at every step.
    let edits = [
        json!({"cmd": "add_real", "vip": "10.0.0.101:80", "proto": "tcp",
               "real": {"addr": "10.1.0.32:80", "forwarding": "nat"}}),
        json!({"cmd": "delete_service", "vip": "10.0.0.101:80", "proto": "tcp"}),
        json!({"cmd": "add_service", "service": {"vip": "10.0.0.102:80", "proto": "tcp",
               "scheduler": "wlc", "forwarding": "nat",
               "real_servers": [{"addr": "10.1.0.41:80"}]}}),
    ];
    for (i, e) in edits.iter().enumerate() {
        assert_eq!(editor.handle(e).expect("applied"), 2 + i as u64);
        assert!(core.sync(&swap.load()));
    }
    let snap = swap.load_full();
    assert_eq!(snap.generation, 4);
    assert_eq!(snap.services.len(), 2);
    assert_eq!(
        id_of(&snap, 100, rip, 8080),
        id,
        "the same id after the edits"
    );
    assert_eq!(snap.reals[id as usize].ip, u32::from_be_bytes(rip));
    // X's real servers are retired, never reused; the new one is fresh.
    for gone in [1usize, 4] {
        assert_eq!(snap.reals[gone].service, NO_SERVICE);
        assert_eq!(snap.reals[gone].weight, 0);
    }
    assert_eq!(snap.services[1].reals, vec![5]);
    // A compile from scratch would have given A's real servers other ids:
    // the connection's counters would land on someone else.
    let fresh = compile(&editor.config(), &macs, 9, None, &[]);
    assert_ne!(id_of(&fresh, 100, rip, 8080), id);

    // The connection goes on: the real server answers, the client ACKs.
    let rs_mac = [0x02, 0xaa, 0, 0, 0, rip[3]];
    let mut synack = tcp((rs_mac, IN_MAC), (rip, 8080), (CIP, 40000), "SA");
    assert_eq!(
        core.process(&snap, &mut synack, 1, 10, false),
        Verdict::Tx(0)
    );
    let mut ack = tcp((CLIENT_MAC, OUT_MAC), (CIP, 40000), (VIP, 80), "A");
    assert_eq!(core.process(&snap, &mut ack, 0, 20, false), Verdict::Tx(1));
    assert_eq!(dst_ip(&ack), rip, "still the same real server");

    let r = core.reals[id as usize];
    assert_eq!((r.conns, r.in_pkts, r.out_pkts), (1, 2, 1));
    assert_eq!((r.active_conns, r.inactive_conns), (1, 0));
    for (other, s) in core.reals.iter().enumerate() {
        if other != id as usize {
            assert_eq!(*s, RealStats::default(), "id {other} untouched");
        }
    }

    // And the status shows it on that real server.
    stats.publish(&core.stats, &core.reals);
    let st = build_status(&snap, &[Arc::clone(&stats)], &[1], 0, 1024);
    let a = st
        .services
        .iter()
        .find(|s| s.vip == "10.0.0.100")
        .expect("service A");
    let rip_s = std::net::Ipv4Addr::from(rip).to_string();
    for real in &a.reals {
        let mine = real.ip == rip_s;
        assert_eq!(real.conns, u64::from(mine), "{}", real.ip);
        assert_eq!(real.active_conns, u64::from(mine), "{}", real.ip);
        assert_eq!(real.in_pkts, if mine { 2 } else { 0 }, "{}", real.ip);
    }
    let y = st
        .services
        .iter()
        .find(|s| s.vip == "10.0.0.102")
        .expect("service Y");
    assert_eq!((y.reals.len(), y.conns), (1, 0));
}

/// Deleting the last service of a VIP with a live connection: the VIP stays
/// local (ARP, the connection's packets keep flowing, a new SYN finds no
/// service) until the connection is gone from every worker's counters; then
/// `sweep_drains` publishes a snapshot without it. A VIP deleted with no
/// connection is gone at once.
#[test]
fn test_deleted_vip_drains_while_connections_live() {
    use dataplane::snapshot::LocalKind;
    use dataplane::stats::DropReason;
    let cfg = parse(CFG, "edit.ron").expect("valid");
    let macs = vec![OUT_MAC, IN_MAC];
    let first = compile(&cfg, &macs, 1, None, &[]);
    let stats = Arc::new(SharedStats::new(first.reals.len()));
    let swap = Arc::new(ArcSwap::from_pointee(first));
    let editor = Editor::new(cfg, macs, Arc::clone(&swap), vec![Arc::clone(&stats)]);
    let vip = u32::from_be_bytes(VIP);
    let x_vip = u32::from_be_bytes([10, 0, 0, 101]);

    let mut core = Core::new(0, 1, 1024);
    let snap = swap.load_full();
    assert!(core.sync(&snap));
    let mut syn = tcp((CLIENT_MAC, OUT_MAC), (CIP, 40000), (VIP, 80), "S");
    assert_eq!(core.process(&snap, &mut syn, 0, 0, false), Verdict::Tx(1));
    let rip = dst_ip(&syn);
    stats.publish(&core.stats, &core.reals);

    // X has no connection: deleted at once. A has one: it drains.
    for vip_s in ["10.0.0.101:80", "10.0.0.100:80"] {
        editor
            .handle(&json!({"cmd": "delete_service", "vip": vip_s, "proto": "tcp"}))
            .expect("deleted");
    }
    let snap = swap.load_full();
    assert!(snap.services.is_empty());
    assert!(
        !snap.local.contains_key(&x_vip),
        "no connection: gone at once"
    );
    assert_eq!(snap.local.get(&vip).map(|l| l.kind), Some(LocalKind::Vip));
    assert_eq!(editor.draining().len(), 1);
    assert!(editor.sweep_drains().is_empty(), "still has its connection");
    assert_eq!(swap.load().generation, snap.generation, "nothing published");

    // The live connection keeps flowing; a new one finds no service.
    assert!(core.sync(&snap));
    let rs_mac = [0x02, 0xaa, 0, 0, 0, rip[3]];
    let mut synack = tcp((rs_mac, IN_MAC), (rip, 8080), (CIP, 40000), "SA");
    assert_eq!(
        core.process(&snap, &mut synack, 1, 10, false),
        Verdict::Tx(0)
    );
    let mut ack = tcp((CLIENT_MAC, OUT_MAC), (CIP, 40000), (VIP, 80), "A");
    assert_eq!(core.process(&snap, &mut ack, 0, 20, false), Verdict::Tx(1));
    let mut new = tcp((CLIENT_MAC, OUT_MAC), (CIP, 40001), (VIP, 80), "S");
    assert_eq!(
        core.process(&snap, &mut new, 0, 30, false),
        Verdict::Drop(DropReason::NoService)
    );

    // The connection expires on the worker; the next sweep ends the drain.
    core.tick(&snap, 10_000_000, 4096);
    assert_eq!(core.conns.len(), 0);
    stats.publish(&core.stats, &core.reals);
    assert_eq!(editor.sweep_drains(), vec![vip]);
    let after = swap.load_full();
    assert_eq!(after.generation, snap.generation + 1);
    assert!(
        !after.local.contains_key(&vip),
        "no longer answering for it"
    );
    assert!(editor.draining().is_empty());
    assert!(editor.sweep_drains().is_empty());
}
