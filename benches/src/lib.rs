//! Shared fixtures for fulcrum's benches: a two-port NAT snapshot and
//! generated traffic (established flows, 64-byte frames).
//!
//! Layer: test support, never linked into the daemon. Frames are built with
//! `etherparse` (an independent builder), so the bench input is well-formed
//! by a second implementation's standard.

use dataplane::snapshot::*;
use etherparse::PacketBuilder;
use hashbrown::HashMap;

pub mod pktgen;

/// MAC of the director's one port.
pub const OUT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// MAC of the clients' gateway 10.0.0.254 (a permanent neighbour of
/// [`nat_snapshot`]).
pub const GATEWAY_MAC: [u8; 6] = [0x02, 0xfe, 0, 0, 0, 0xfe];
/// VIP 10.0.0.100, host order.
pub const VIP: u32 = 0x0a00_0064;

/// A one-armed director (LVS's classic "one NIC" setup): port 0 holds both
/// 10.0.0.1/24 (clients' side) and 10.1.0.1/16 (real servers). VIP
/// 10.0.0.100:80/TCP, rr over `n_reals` real servers 10.1.0.11.. on port 80,
/// with permanent neighbours for the real servers and the clients' gateway
/// 10.0.0.254. One arm keeps in-memory replay buffers recycling on one queue.
pub fn nat_snapshot(n_reals: u32, method: Method) -> Snapshot {
    let mut local = HashMap::new();
    local.insert(
        0x0a00_0001,
        LocalAddr {
            kind: LocalKind::Dip,
            arp_ports: 1,
        },
    );
    local.insert(
        0x0a01_0001,
        LocalAddr {
            kind: LocalKind::Dip,
            arp_ports: 1,
        },
    );
    local.insert(
        VIP,
        LocalAddr {
            kind: LocalKind::Vip,
            arp_ports: 1,
        },
    );
    let key = ServiceKey {
        vip: VIP,
        vport: 80,
        proto: Proto::Tcp,
    };
    let mut service_index = HashMap::new();
    service_index.insert(key, 0);
    let mut reals = vec![RealServer {
        ip: 0,
        port: 0,
        weight: 0,
        method,
        tun: Default::default(),
        service: 0,
        available: true,
    }];
    let mut static_neighbours = vec![(0u8, 0x0a00_00fe, GATEWAY_MAC)];
    for i in 0..n_reals {
        let ip = 0x0a01_000b + i;
        reals.push(RealServer {
            ip,
            port: 80,
            weight: 1,
            method,
            tun: Default::default(),
            service: 0,
            available: true,
        });
        static_neighbours.push((0, ip, [0x02, 0xaa, 0, 0, (i >> 8) as u8, i as u8]));
    }
    Snapshot {
        generation: 1,
        ports: vec![PortConf {
            name: "lan".into(),
            mac: OUT_MAC,
            addrs: vec![
                (
                    0x0a00_0001,
                    Prefix {
                        addr: 0x0a00_0000,
                        len: 24,
                    },
                ),
                (
                    0x0a01_0001,
                    Prefix {
                        addr: 0x0a01_0000,
                        len: 16,
                    },
                ),
            ],
            ..PortConf::default()
        }],
        routes: vec![
            Route {
                dst: Prefix {
                    addr: 0x0a00_0000,
                    len: 24,
                },
                port: 0,
                via: None,
            },
            Route {
                dst: Prefix {
                    addr: 0x0a01_0000,
                    len: 16,
                },
                port: 0,
                via: None,
            },
            Route {
                dst: Prefix { addr: 0, len: 0 },
                port: 0,
                via: Some(0x0a00_00fe),
            },
        ],
        static_neighbours,
        local,
        services: vec![Service {
            key,
            scheduler: sched::SchedKind::Rr,
            sched_flags: Default::default(),
            sched_params: Default::default(),
            mh_table: None,
            reals: (1..=n_reals).collect(),
            persistence: None,
            local_addresses: Vec::new(),
            client_address: Default::default(),
        }],
        service_index,
        reals,
        timeouts: Timeouts::default(),
        expire_nodest_conn: false,
        lport_range: Default::default(),
    }
}

/// Client address and port of flow `i`: clients 172.16.0.0/12 behind the
/// gateway, 60000 ports each.
pub fn client(i: u32) -> ([u8; 4], u16) {
    let host = 0xac10_0000 + i / 60_000;
    (host.to_be_bytes(), 1024 + (i % 60_000) as u16)
}

/// A client → VIP TCP frame of flow `i`: a SYN, or an ACK padded to a
/// 60-byte frame (64 bytes on the wire with the FCS).
pub fn client_frame(i: u32, syn: bool) -> Vec<u8> {
    let (cip, cport) = client(i);
    let b = PacketBuilder::ethernet2(GATEWAY_MAC, OUT_MAC)
        .ipv4(cip, VIP.to_be_bytes(), 64)
        .tcp(cport, 80, 1, 65535);
    let b = if syn { b.syn() } else { b.ack(1) };
    let mut v = Vec::new();
    b.write(&mut v, &[]).expect("etherparse writes to a Vec");
    v.resize(60, 0);
    v
}
