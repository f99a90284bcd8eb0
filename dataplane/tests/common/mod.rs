//! Shared fixtures of the dataplane integration tests: a two-port director
//! (outside 10.0.0.1/24, inside 10.1.0.1/24) with a TCP and a UDP virtual
//! service on VIP 10.0.0.100, two real servers each.
#![allow(dead_code)]

use dataplane::snapshot::*;
use hashbrown::HashMap;

pub const OUT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const IN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
pub const CLIENT_MAC: [u8; 6] = [0x02, 0xcc, 0, 0, 0, 0x02];
pub const RS1_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0x0b];
pub const RS2_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0x0c];

pub const CIP: [u8; 4] = [10, 0, 0, 2];
pub const VIP: [u8; 4] = [10, 0, 0, 100];
pub const DIP_OUT: [u8; 4] = [10, 0, 0, 1];
pub const RIP1: [u8; 4] = [10, 1, 0, 11];
pub const RIP2: [u8; 4] = [10, 1, 0, 12];
/// The FullNAT local address of FullNAT snapshots (inside subnet).
pub const LIP: [u8; 4] = [10, 1, 0, 100];

pub fn ip(a: [u8; 4]) -> u32 {
    u32::from_be_bytes(a)
}

/// Two ports (outside 10.0.0.1/24, inside 10.1.0.1/24), one TCP and one UDP
/// service on the VIP with two real servers each, rr; real server port 8080
/// for NAT and FullNAT (to exercise the port rewrite), 80 for DR and TUN. A
/// FullNAT snapshot's services have the local address [`LIP`], answered on
/// the inside port, and no client address method.
pub fn snapshot(method: Method, neighbours: bool) -> Snapshot {
    // Only NAT and FullNAT rewrite the port: DR and TUN keep the vport.
    let rport = if matches!(method, Method::Nat | Method::FullNat) {
        8080
    } else {
        80
    };
    let lips = if method == Method::FullNat {
        vec![ip(LIP)]
    } else {
        vec![]
    };
    let ports = vec![
        PortConf {
            name: "outside".into(),
            mac: OUT_MAC,
            addrs: vec![(
                ip(DIP_OUT),
                Prefix {
                    addr: 0x0a00_0000,
                    len: 24,
                },
            )],
            ..PortConf::default()
        },
        PortConf {
            name: "inside".into(),
            mac: IN_MAC,
            addrs: vec![(
                0x0a01_0001,
                Prefix {
                    addr: 0x0a01_0000,
                    len: 24,
                },
            )],
            ..PortConf::default()
        },
    ];
    let routes = vec![
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
                len: 24,
            },
            port: 1,
            via: None,
        },
        // The outside gateway: clients beyond the client segment route
        // back through the outside port (what the reverse-path check asks).
        Route {
            dst: Prefix { addr: 0, len: 0 },
            port: 0,
            via: Some(0x0a00_00fe),
        },
    ];
    let mut local = HashMap::new();
    local.insert(
        ip(DIP_OUT),
        LocalAddr {
            kind: LocalKind::Dip,
            arp_ports: 1,
        },
    );
    local.insert(
        0x0a01_0001,
        LocalAddr {
            kind: LocalKind::Dip,
            arp_ports: 2,
        },
    );
    local.insert(
        ip(VIP),
        LocalAddr {
            kind: LocalKind::Vip,
            arp_ports: 1,
        },
    );
    if method == Method::FullNat {
        local.insert(
            ip(LIP),
            LocalAddr {
                kind: LocalKind::Lip,
                arp_ports: 2,
            },
        );
    }
    let tcp = ServiceKey {
        vip: ip(VIP),
        vport: 80,
        proto: Proto::Tcp,
    };
    let udp = ServiceKey {
        vip: ip(VIP),
        vport: 53,
        proto: Proto::Udp,
    };
    let mut service_index = HashMap::new();
    service_index.insert(tcp, 0);
    service_index.insert(udp, 1);
    let real = |ipa: [u8; 4], port, service| RealServer {
        ip: ip(ipa),
        port,
        weight: 1,
        method,
        tun: Default::default(),
        service,
        available: true,
    };
    let reals = vec![
        RealServer {
            ip: 0,
            port: 0,
            weight: 0,
            method,
            tun: Default::default(),
            service: 0,
            available: true,
        },
        real(RIP1, rport, 0),
        real(RIP2, rport, 0),
        real(RIP1, 5353, 1),
        real(RIP2, 5353, 1),
    ];
    let static_neighbours = if neighbours {
        vec![
            (0, ip(CIP), CLIENT_MAC),
            (1, ip(RIP1), RS1_MAC),
            (1, ip(RIP2), RS2_MAC),
        ]
    } else {
        vec![]
    };
    Snapshot {
        generation: 1,
        ports,
        routes,
        static_neighbours,
        local,
        services: vec![
            Service {
                key: tcp,
                scheduler: sched::SchedKind::Rr,
                sched_flags: Default::default(),
                sched_params: Default::default(),
                mh_table: None,
                reals: vec![1, 2],
                persistence: None,
                local_addresses: lips.clone(),
                client_address: ClientAddress::None,
            },
            Service {
                key: udp,
                scheduler: sched::SchedKind::Rr,
                sched_flags: Default::default(),
                sched_params: Default::default(),
                mh_table: None,
                reals: vec![3, 4],
                persistence: None,
                local_addresses: lips,
                client_address: ClientAddress::None,
            },
        ],
        service_index,
        reals,
        timeouts: Timeouts::default(),
        expire_nodest_conn: false,
        lport_range: LportRange::default(),
    }
}

pub mod framegen;
