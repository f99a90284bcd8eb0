//! One fixture row per drop reason and per forwarding direction, in the
//! style of Katran's packet tests: each row names its setup (snapshot,
//! method, workers, pre-state), the input frame and arrival port, the
//! expected verdict, the expected output bytes for a `Tx`, and the
//! counters that must change. Everything else must not change: the row
//! runner compares every `WorkerStats` counter, every drop reason, the
//! per-real-server counters, the connection table's size and the queues a
//! worker drains, before and after.
//!
//! Frames are built with `etherparse` (ARP bodies by hand, as etherparse
//! 0.14 has no ARP builder), never with fulcrum's wire code, so a byte-exact
//! match also proves the rewrites' incremental checksums (RFC 1624).
//!
//! Four reasons only arise in the worker loop (`redirect_ring_full`,
//! `tx_full`, `tx_port_invalid`, `bad_worker`); their rows run through
//! `dataplane::worker::Worker` over in-memory queues. `test_every_reason_has_a_row`
//! fails naming any `DropReason` without a row, so a new reason needs one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use dataplane::conn::{FlowKey, TcpState};
use dataplane::frame::Frame;
use dataplane::neigh::NeighTable;
use dataplane::owner::owner;
use dataplane::snapshot::*;
use dataplane::stats::{DropReason, SharedStats, WorkerStats};
use dataplane::worker::{LoopConf, Mesh, Worker, RING_LEN};
use dataplane::{Core, Verdict};
use etherparse::{
    EtherType, Ethernet2Header, IpHeaders, IpNumber, Ipv4Header, Ipv4Options, PacketBuilder,
    SingleVlanHeader, TcpHeader, VlanId, VlanPcp,
};
use hwinit::mem::{MemBuf, MemQueue};
use hwinit::PortQueue;

mod common;
use common::*;

// ---- frames -------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        syn: bool,
        ack: bool,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
    Icmp {
        ty: u8,
        code: u8,
    },
    /// Another IP protocol number with the payload as its body.
    Raw(u8),
}

/// An Ethernet (optionally 802.1Q-tagged) IPv4 frame, described by field.
#[derive(Clone, Debug)]
struct Pkt {
    smac: [u8; 6],
    dmac: [u8; 6],
    vlan: Option<u16>,
    sip: [u8; 4],
    dip: [u8; 4],
    ttl: u8,
    l4: L4,
    options: Vec<u8>,
    more_frags: bool,
    payload: Vec<u8>,
}

impl Pkt {
    /// Client → VIP TCP from `sport` to `dport`, TTL 64, on the outside port.
    fn tcp(sport: u16, dport: u16, syn: bool, ack: bool) -> Pkt {
        Pkt {
            smac: CLIENT_MAC,
            dmac: OUT_MAC,
            vlan: None,
            sip: CIP,
            dip: VIP,
            ttl: 64,
            l4: L4::Tcp {
                sport,
                dport,
                syn,
                ack,
            },
            options: Vec::new(),
            more_frags: false,
            payload: Vec::new(),
        }
    }

    /// The client's SYN from port 40000 to VIP:80.
    fn syn() -> Pkt {
        Pkt::tcp(40000, 80, true, false)
    }

    /// Real server 1's SYN-ACK from 8080 to `cip`:40000, on the inside port.
    fn synack_to(cip: [u8; 4]) -> Pkt {
        Pkt {
            smac: RS1_MAC,
            dmac: IN_MAC,
            sip: RIP1,
            dip: cip,
            ..Pkt::tcp(8080, 40000, true, true)
        }
    }

    fn with(self, l4: L4) -> Pkt {
        Pkt { l4, ..self }
    }

    fn bytes(&self) -> Vec<u8> {
        let proto = match self.l4 {
            L4::Tcp { .. } => IpNumber::TCP,
            L4::Udp { .. } => IpNumber::UDP,
            L4::Icmp { .. } => IpNumber::ICMP,
            L4::Raw(p) => IpNumber(p),
        };
        let mut h = Ipv4Header::new(0, self.ttl, proto, self.sip, self.dip).unwrap();
        h.options = Ipv4Options::try_from(&self.options[..]).unwrap();
        h.more_fragments = self.more_frags;
        let b = PacketBuilder::ip(IpHeaders::Ipv4(h, Default::default()));
        let mut ip = Vec::new();
        match self.l4 {
            L4::Tcp {
                sport,
                dport,
                syn,
                ack,
            } => {
                let mut t = TcpHeader::new(sport, dport, 1000, 65535);
                t.syn = syn;
                t.ack = ack;
                t.acknowledgment_number = u32::from(ack);
                b.tcp_header(t).write(&mut ip, &self.payload)
            }
            L4::Udp { sport, dport } => b.udp(sport, dport).write(&mut ip, &self.payload),
            L4::Icmp { ty, code } => b
                .icmpv4_raw(ty, code, [0, 7, 0, 1])
                .write(&mut ip, &self.payload),
            L4::Raw(p) => b.write(&mut ip, IpNumber(p), &self.payload),
        }
        .unwrap();
        let mut f = ether(self.smac, self.dmac, self.vlan, EtherType::IPV4);
        f.extend_from_slice(&ip);
        f
    }
}

/// An Ethernet header, with one 802.1Q tag when `vlan` is set.
fn ether(smac: [u8; 6], dmac: [u8; 6], vlan: Option<u16>, ty: EtherType) -> Vec<u8> {
    let mut f = Ethernet2Header {
        source: smac,
        destination: dmac,
        ether_type: if vlan.is_some() {
            EtherType::VLAN_TAGGED_FRAME
        } else {
            ty
        },
    }
    .to_bytes()
    .to_vec();
    if let Some(v) = vlan {
        f.extend_from_slice(
            &SingleVlanHeader {
                pcp: VlanPcp::ZERO,
                drop_eligible_indicator: false,
                vlan_id: VlanId::try_new(v).unwrap(),
                ether_type: ty,
            }
            .to_bytes(),
        );
    }
    f
}

/// An Ethernet/IPv4 ARP packet (RFC 826) with operation `op`, padded to a
/// minimum frame: `smac` sends it to `dmac`, the body names `sha`/`spa`
/// and `tha`/`tpa`.
#[allow(clippy::too_many_arguments)]
fn arp(
    smac: [u8; 6],
    dmac: [u8; 6],
    op: u16,
    sha: [u8; 6],
    spa: [u8; 4],
    tha: [u8; 6],
    tpa: [u8; 4],
) -> Vec<u8> {
    let mut f = ether(smac, dmac, None, EtherType::ARP);
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa);
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa);
    f.resize(60, 0);
    f
}

/// A client's ARP request for `tpa` on the outside port.
fn arp_request(spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    arp(CLIENT_MAC, [0xff; 6], 1, CLIENT_MAC, spa, [0; 6], tpa)
}

/// `f` with `edit` applied.
fn edited(mut f: Vec<u8>, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    edit(&mut f);
    f
}

/// VRRP's group MAC (RFC 5798 §7.3: 01-00-5E-00-00-12 for 224.0.0.18).
const VRRP_MAC: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];

/// RFC 1071 sum over `b` (odd length padded), folded and complemented:
/// written here apart from fulcrum's wire code.
fn ones_sum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// A VRRPv2 advert (RFC 3768 §5.1): version 2 type 1, `vrid`, `prio`,
/// the addresses, auth type 1 (PASS) with `auth` as its 8 bytes, interval
/// `int_s` seconds; checksum over the message (§5.3.8).
fn vrrp_v2(vrid: u8, prio: u8, addrs: &[[u8; 4]], int_s: u8, auth: &[u8; 8]) -> Vec<u8> {
    let mut m = vec![0x21, vrid, prio, addrs.len() as u8, 1, int_s, 0, 0];
    for a in addrs {
        m.extend_from_slice(a);
    }
    m.extend_from_slice(auth);
    vrrp_fix_v2(m)
}

/// `m` with its v2 checksum recomputed.
fn vrrp_fix_v2(mut m: Vec<u8>) -> Vec<u8> {
    m[6] = 0;
    m[7] = 0;
    let c = ones_sum(&m);
    m[6..8].copy_from_slice(&c.to_be_bytes());
    m
}

/// A VRRPv3 advert (RFC 5798 §5.1) from `src` to `dst`: version 3 type 1,
/// max advert interval `int_cs` centiseconds; checksum with the IPv4
/// pseudo-header (§5.2.8).
fn vrrp_v3(
    vrid: u8,
    prio: u8,
    addrs: &[[u8; 4]],
    int_cs: u16,
    src: [u8; 4],
    dst: [u8; 4],
) -> Vec<u8> {
    let mut m = vec![0x31, vrid, prio, addrs.len() as u8];
    m.extend_from_slice(&(int_cs & 0x0fff).to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    for a in addrs {
        m.extend_from_slice(a);
    }
    let mut ph = Vec::new();
    ph.extend_from_slice(&src);
    ph.extend_from_slice(&dst);
    ph.extend_from_slice(&[0, 112]);
    ph.extend_from_slice(&(m.len() as u16).to_be_bytes());
    ph.extend_from_slice(&m);
    let c = ones_sum(&ph);
    m[6..8].copy_from_slice(&c.to_be_bytes());
    m
}

/// RFC 1071 sum of the IPv4 pseudo header of the segment in `f` (no VLAN,
/// IHL 5), folded but not complemented: what a checksum-offloading sender
/// leaves in the field.
fn pseudo_sum(f: &[u8]) -> u16 {
    let seg_len = f.len() - 34;
    let mut s: u32 = 0;
    for c in f[26..34].chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    s += u32::from(f[23]) + seg_len as u32;
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Byte offsets in an untagged IPv4 frame without options.
const IP: usize = 14;
const TCP_CSUM: usize = 14 + 20 + 16;
const UDP_CSUM: usize = 14 + 20 + 6;

// ---- rows ---------------------------------------------------------------

type W = Worker<TestQueue>;

/// How a row is run.
#[derive(Clone, Copy)]
enum Via {
    /// `Core::process` on one core.
    Core,
    /// `Worker::poll_once` on `mesh` workers with `queues` ports each; TX
    /// on port `refuse_tx` takes nothing; `pre` runs on the workers (and
    /// the row's frame) after a first round synced them.
    Worker {
        mesh: usize,
        queues: usize,
        refuse_tx: Option<usize>,
        pre: fn(&mut [W], &[u8]),
    },
}

#[derive(Clone, Copy)]
struct Setup {
    method: Method,
    /// Permanent neighbours for the client and both real servers.
    neighbours: bool,
    /// `n_workers` of every core, and which one receives the frame.
    workers: u16,
    worker: u16,
    max_conns: u32,
    /// The frame comes over a ring from another worker.
    redirected: bool,
    snap: fn(&mut Snapshot),
    /// Tailroom behind the frame in its buffer (`Via::Core` only): what a
    /// method that grows the frame (VS/TUN's outer header, FullNAT's PROXY
    /// header or TOA) or an ICMP error longer than its packet may use. 0 is
    /// the fixed frame of `Core::process`.
    room: usize,
    /// Pre-state on the core after `sync` (not used by `Via::Worker`).
    pre: fn(&mut Core, &Snapshot),
    via: Via,
}

fn base() -> Setup {
    Setup {
        method: Method::Nat,
        neighbours: true,
        workers: 1,
        worker: 0,
        max_conns: 1024,
        redirected: false,
        snap: |_| {},
        room: 0,
        pre: |_, _| {},
        via: Via::Core,
    }
}

struct Case {
    name: &'static str,
    setup: Setup,
    frame: Vec<u8>,
    in_port: u8,
    expect: Verdict,
    /// The frame after processing, for `Tx` and `Redirect`.
    out: Option<Vec<u8>>,
    /// Counters (names of [`counters`]) that go up by one (`"-name"`: down
    /// by one), besides the receive counters, the transmit counters of a
    /// worker row and the drop reason of a `Drop` row, which the runner
    /// adds itself.
    bumps: &'static [&'static str],
}

fn row(name: &'static str, frame: Vec<u8>, in_port: u8, expect: Verdict) -> Case {
    Case {
        name,
        setup: base(),
        frame,
        in_port,
        expect,
        out: None,
        bumps: &[],
    }
}

fn dropped(name: &'static str, frame: Vec<u8>, in_port: u8, r: DropReason) -> Case {
    row(name, frame, in_port, Verdict::Drop(r))
}

impl Case {
    fn setup(self, setup: Setup) -> Case {
        Case { setup, ..self }
    }
    fn out(self, out: Vec<u8>) -> Case {
        Case {
            out: Some(out),
            ..self
        }
    }
    fn bumps(self, bumps: &'static [&'static str]) -> Case {
        Case { bumps, ..self }
    }
}

/// A new connection of real server 1 that is not yet established.
const NEW_CONN_RS1: &[&str] = &[
    "conns_created",
    "conns",
    "real1.conns",
    "real1.inactive_conns",
];

/// [`NEW_CONN_RS1`] and the packet counted on real server 1.
const NEW_CONN_RS1_PKT: &[&str] = &[
    "conns_created",
    "conns",
    "real1.conns",
    "real1.inactive_conns",
    "real1.in_pkts",
];

/// Pre-state: the client's SYN to VIP:80 from port 40000 was forwarded.
fn pre_client_syn(c: &mut Core, s: &Snapshot) {
    let v = c.process(s, &mut Pkt::syn().bytes(), 0, 0, false);
    assert!(matches!(v, Verdict::Tx(_)), "pre-state SYN: {v:?}");
}

/// Pre-state: the client's SYN to VIP:80 from port 40000 was tunnelled
/// (its buffer had room for the outer header).
fn pre_tun_syn(c: &mut Core, s: &Snapshot) {
    let mut buf = Pkt::syn().bytes();
    let len = buf.len();
    buf.resize(len + 64, 0);
    let v = c.process_frame(s, &mut Frame::new(&mut buf, len), 0, 0, false);
    assert!(matches!(v, Verdict::Tx(_)), "pre-state SYN: {v:?}");
}

/// The client's SYN (to real server 1), then its connection forced into
/// `state`, with activeconns/inactconns moved as the state machine would.
fn pre_conn_in_state(c: &mut Core, s: &Snapshot, state: TcpState) {
    pre_client_syn(c, s);
    let key = FlowKey {
        src_ip: ip(CIP),
        dst_ip: ip(VIP),
        src_port: 40000,
        dst_port: 80,
        proto: 6,
    };
    let (id, _) = c.conns.lookup(&key).expect("the SYN's connection");
    let old = c.conns.get(id).expect("live connection");
    c.conns.set_state(id, state);
    let real = &mut c.reals[old.real as usize];
    if old.state.is_active() {
        real.active_conns -= 1;
    } else {
        real.inactive_conns -= 1;
    }
    if state.is_active() {
        real.active_conns += 1;
    } else {
        real.inactive_conns += 1;
    }
}

/// FullNAT to both real servers, 128 bytes of tailroom (an mbuf has more)
/// for the PROXY header and TOA.
fn fullnat() -> Setup {
    Setup {
        method: Method::FullNat,
        room: 128,
        ..base()
    }
}

/// The first lport a one-worker director books on [`LIP`].
const LPORT: u16 = 1024;

/// Real server 1's reply from 8080 to LIP:[`LPORT`], on the inside port.
fn fullnat_reply(l4: L4) -> Pkt {
    Pkt {
        smac: RS1_MAC,
        dmac: IN_MAC,
        sip: RIP1,
        dip: LIP,
        ..Pkt::syn().with(l4)
    }
}

/// FullNAT rows: TCP and UDP both ways, the LIP's ARP, and its drops.
fn fullnat_cases() -> Vec<Case> {
    use DropReason as R;
    let syn = Pkt::syn();
    let udp_in = L4::Udp {
        sport: 5000,
        dport: 53,
    };
    vec![
        row("fullnat_in_syn", syn.bytes(), 0, Verdict::Tx(1))
            .setup(fullnat())
            .out(
                Pkt {
                    smac: IN_MAC,
                    dmac: RS1_MAC,
                    sip: LIP,
                    dip: RIP1,
                    ttl: 63,
                    ..Pkt::tcp(LPORT, 8080, true, false)
                }
                .bytes(),
            )
            .bumps(&[
                "conns_created",
                "conns",
                "real1.conns",
                "real1.inactive_conns",
                "real1.in_pkts",
            ]),
        row(
            "fullnat_out_synack",
            fullnat_reply(L4::Tcp {
                sport: 8080,
                dport: LPORT,
                syn: true,
                ack: true,
            })
            .bytes(),
            1,
            Verdict::Tx(0),
        )
        .setup(Setup {
            pre: pre_client_syn,
            ..fullnat()
        })
        .out(synack_to_client().bytes())
        .bumps(&["real1.out_pkts"]),
        row(
            "fullnat_in_udp",
            syn.clone().with(udp_in).bytes(),
            0,
            Verdict::Tx(1),
        )
        .setup(fullnat())
        .out(
            Pkt {
                smac: IN_MAC,
                dmac: RS1_MAC,
                sip: LIP,
                dip: RIP1,
                ttl: 63,
                ..syn.clone().with(L4::Udp {
                    sport: LPORT,
                    dport: 5353,
                })
            }
            .bytes(),
        )
        .bumps(&[
            "conns_created",
            "conns",
            "real3.conns",
            "real3.inactive_conns",
            "real3.in_pkts",
        ]),
        row(
            "fullnat_out_udp",
            Pkt {
                sip: RIP1,
                ..fullnat_reply(L4::Udp {
                    sport: 5353,
                    dport: LPORT,
                })
            }
            .bytes(),
            1,
            Verdict::Tx(0),
        )
        .setup(Setup {
            pre: pre_client_udp,
            ..fullnat()
        })
        .out(
            Pkt {
                smac: OUT_MAC,
                dmac: CLIENT_MAC,
                sip: VIP,
                dip: CIP,
                ttl: 63,
                ..syn.clone().with(L4::Udp {
                    sport: 53,
                    dport: 5000,
                })
            }
            .bytes(),
        )
        .bumps(&["real3.out_pkts"]),
        row(
            "arp_reply_for_lip",
            arp(RS1_MAC, [0xff; 6], 1, RS1_MAC, RIP1, [0; 6], LIP),
            1,
            Verdict::Tx(1),
        )
        .setup(fullnat())
        .out(arp(IN_MAC, RS1_MAC, 2, IN_MAC, LIP, RS1_MAC, RIP1))
        .bumps(&["arp_replies"]),
        // A reply to LIP:lport that no connection booked.
        dropped(
            "fullnat_reply_no_conn",
            fullnat_reply(L4::Tcp {
                sport: 8080,
                dport: LPORT,
                syn: true,
                ack: true,
            })
            .bytes(),
            1,
            R::ReplyNoConn,
        )
        .setup(fullnat()),
        // One lport in the range, booked by another client port's SYN.
        dropped("fullnat_no_lport", syn.bytes(), 0, R::FullnatNoLport).setup(Setup {
            snap: |s| {
                s.lport_range = LportRange {
                    lo: LPORT,
                    hi: LPORT,
                }
            },
            pre: |c, s| {
                let v = c.process(
                    s,
                    &mut Pkt::tcp(40001, 80, true, false).bytes(),
                    0,
                    0,
                    false,
                );
                assert!(matches!(v, Verdict::Tx(_)), "pre-state SYN: {v:?}");
            },
            ..fullnat()
        }),
        // PROXY v2: the first data segment (seq = the SYN's 1000 + 1) in a
        // buffer with no tailroom for the 28-byte header. The state moved
        // (the segment was the connection's), only the rewrite failed.
        dropped(
            "fullnat_proxy_no_room",
            Pkt {
                payload: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
                ..Pkt::tcp(40000, 80, false, true)
            }
            .bytes()
            .into_iter()
            .enumerate()
            .map(|(i, b)| if i == 14 + 20 + 7 { b + 1 } else { b })
            .collect(),
            0,
            R::FullnatProxyNoRoom,
        )
        .setup(Setup {
            snap: |s| {
                for svc in &mut s.services {
                    svc.client_address = ClientAddress::ProxyV2;
                }
            },
            pre: pre_client_syn,
            room: 0,
            ..fullnat()
        })
        .bumps(&["real1.active_conns", "-real1.inactive_conns"]),
    ]
}

/// A client port of `CIP` that worker `w` of `n` owns.
fn port_owned_by(w: u16, n: u16) -> u16 {
    (40000..u16::MAX)
        .find(|&p| owner(ip(CIP), p, n) == w)
        .unwrap()
}

/// A VS/TUN setup: every real server tunnelled (IPIP unless `snap` says
/// otherwise), 64 bytes of tailroom.
fn tun_base() -> Setup {
    Setup {
        method: Method::Tun,
        room: 64,
        ..base()
    }
}

/// Real servers 1 (TCP) and 3 (UDP) speak GUE on UDP port 6080.
fn gue_reals(s: &mut Snapshot) {
    for id in [1, 3] {
        s.reals[id].tun = TunConf {
            kind: TunType::Gue,
            port: 6080,
            src: 0,
        };
    }
}

/// The GUE source port fulcrum derives from the client's flow (a policy
/// input here; the bytes around it are built independently).
fn gue_sport(pkt: &Pkt) -> u16 {
    let (sport, dport, proto) = match pkt.l4 {
        L4::Tcp { sport, dport, .. } => (sport, dport, 6),
        L4::Udp { sport, dport } => (sport, dport, 17),
        _ => (0, 0, 0),
    };
    dataplane::xmit::tun::gue_src_port(&FlowKey {
        src_ip: ip(pkt.sip),
        dst_ip: ip(pkt.dip),
        src_port: sport,
        dst_port: dport,
        proto,
    })
}

/// `inner` (an IPv4 datagram) tunnelled from `src` to real server 1 by
/// etherparse: outer IPv4 with TTL `ttl`, DF, identification `ident`,
/// protocol 4 (IPIP, RFC 2003), or with `gue = Some((sport, dport))` UDP
/// with checksum 0 and the GUE header `00 04 00 00` (variant 0, IPv4).
fn tunnelled(inner: &[u8], src: [u8; 4], ttl: u8, ident: u16, gue: Option<(u16, u16)>) -> Vec<u8> {
    let proto = if gue.is_some() {
        IpNumber::UDP
    } else {
        IpNumber::IPV4
    };
    let mut h = Ipv4Header::new(0, ttl, proto, src, RIP1).unwrap();
    h.identification = ident;
    let b = PacketBuilder::ethernet2(IN_MAC, RS1_MAC).ip(IpHeaders::Ipv4(h, Default::default()));
    let mut f = Vec::new();
    match gue {
        Some((sport, dport)) => {
            let mut payload = vec![0, 4, 0, 0];
            payload.extend_from_slice(inner);
            b.udp(sport, dport).write(&mut f, &payload).unwrap();
            f[UDP_CSUM..UDP_CSUM + 2].copy_from_slice(&[0, 0]);
        }
        None => b.write(&mut f, IpNumber::IPV4, inner).unwrap(),
    }
    f
}

/// `pkt`'s IPv4 datagram with the TTL one lower, as the tunnel carries it.
fn inner_of(pkt: &Pkt) -> Vec<u8> {
    Pkt {
        ttl: pkt.ttl - 1,
        ..pkt.clone()
    }
    .bytes()[IP..]
        .to_vec()
}

fn cases() -> Vec<Case> {
    use DropReason as R;
    let syn = Pkt::syn();
    let mut v = vec![
        // ---- forwarding, one row per direction ----
        row("nat_in_syn", syn.bytes(), 0, Verdict::Tx(1))
            .out(
                Pkt {
                    smac: IN_MAC,
                    dmac: RS1_MAC,
                    dip: RIP1,
                    ttl: 63,
                    ..Pkt::tcp(40000, 8080, true, false)
                }
                .bytes(),
            )
            .bumps(&[
                "conns_created",
                "conns",
                "real1.conns",
                "real1.inactive_conns",
                "real1.in_pkts",
            ]),
        row(
            "nat_out_synack",
            Pkt::synack_to(CIP).bytes(),
            1,
            Verdict::Tx(0),
        )
        .setup(Setup {
            pre: pre_client_syn,
            ..base()
        })
        .out(synack_to_client().bytes())
        .bumps(&["real1.out_pkts"]),
        row(
            "nat_in_udp",
            syn.clone()
                .with(L4::Udp {
                    sport: 5000,
                    dport: 53,
                })
                .bytes(),
            0,
            Verdict::Tx(1),
        )
        .out(
            Pkt {
                smac: IN_MAC,
                dmac: RS1_MAC,
                dip: RIP1,
                ttl: 63,
                ..syn.clone().with(L4::Udp {
                    sport: 5000,
                    dport: 5353,
                })
            }
            .bytes(),
        )
        .bumps(&[
            "conns_created",
            "conns",
            "real3.conns",
            // IPVS counts UDP connections as inactive.
            "real3.inactive_conns",
            "real3.in_pkts",
        ]),
        row("dr_in_syn", syn.bytes(), 0, Verdict::Tx(1))
            .setup(Setup {
                method: Method::Dr,
                ..base()
            })
            .out(
                Pkt {
                    smac: IN_MAC,
                    dmac: RS1_MAC,
                    ..syn.clone()
                }
                .bytes(),
            )
            .bumps(&[
                "conns_created",
                "conns",
                "real1.conns",
                "real1.inactive_conns",
                "real1.in_pkts",
            ]),
        // DR UDP: only the MACs change; the real server answers the client
        // directly.
        row(
            "dr_in_udp",
            syn.clone()
                .with(L4::Udp {
                    sport: 5000,
                    dport: 53,
                })
                .bytes(),
            0,
            Verdict::Tx(1),
        )
        .setup(Setup {
            method: Method::Dr,
            ..base()
        })
        .out(
            Pkt {
                smac: IN_MAC,
                dmac: RS1_MAC,
                ..syn.clone().with(L4::Udp {
                    sport: 5000,
                    dport: 53,
                })
            }
            .bytes(),
        )
        .bumps(&[
            "conns_created",
            "conns",
            "real3.conns",
            "real3.inactive_conns",
            "real3.in_pkts",
        ]),
        row("tun_ipip_in_syn", syn.bytes(), 0, Verdict::Tx(1))
            .setup(tun_base())
            .out(tunnelled(&inner_of(&syn), [10, 1, 0, 1], 63, 0, None))
            .bumps(&[
                "conns_created",
                "conns",
                "real1.conns",
                "real1.inactive_conns",
                "real1.in_pkts",
            ]),
        row(
            "tun_ipip_in_udp",
            syn.clone()
                .with(L4::Udp {
                    sport: 5000,
                    dport: 53,
                })
                .bytes(),
            0,
            Verdict::Tx(1),
        )
        .setup(tun_base())
        .out(tunnelled(
            &inner_of(&syn.clone().with(L4::Udp {
                sport: 5000,
                dport: 53,
            })),
            [10, 1, 0, 1],
            63,
            0,
            None,
        ))
        .bumps(&[
            "conns_created",
            "conns",
            "real3.conns",
            "real3.inactive_conns",
            "real3.in_pkts",
        ]),
        // The service's `tun_src` replaces the egress DIP as outer source.
        row("tun_ipip_tun_src", syn.bytes(), 0, Verdict::Tx(1))
            .setup(Setup {
                snap: |s| s.reals[1].tun.src = ip(VIP),
                ..tun_base()
            })
            .out(tunnelled(&inner_of(&syn), VIP, 63, 0, None))
            .bumps(NEW_CONN_RS1_PKT),
        // An established flow's second packet: the identification moves on.
        row(
            "tun_ipip_in_ack",
            Pkt::tcp(40000, 80, false, true).bytes(),
            0,
            Verdict::Tx(1),
        )
        .setup(Setup {
            pre: pre_tun_syn,
            ..tun_base()
        })
        .out(tunnelled(
            &inner_of(&Pkt::tcp(40000, 80, false, true)),
            [10, 1, 0, 1],
            63,
            1,
            None,
        ))
        .bumps(&[
            "real1.in_pkts",
            "real1.active_conns",
            "-real1.inactive_conns",
        ]),
        row("tun_gue_in_syn", syn.bytes(), 0, Verdict::Tx(1))
            .setup(Setup {
                snap: gue_reals,
                ..tun_base()
            })
            .out(tunnelled(
                &inner_of(&syn),
                [10, 1, 0, 1],
                63,
                0,
                Some((gue_sport(&syn), 6080)),
            ))
            .bumps(NEW_CONN_RS1_PKT),
        row(
            "tun_gue_in_udp",
            syn.clone()
                .with(L4::Udp {
                    sport: 5000,
                    dport: 53,
                })
                .bytes(),
            0,
            Verdict::Tx(1),
        )
        .setup(Setup {
            snap: gue_reals,
            ..tun_base()
        })
        .out({
            let udp = syn.clone().with(L4::Udp {
                sport: 5000,
                dport: 53,
            });
            tunnelled(
                &inner_of(&udp),
                [10, 1, 0, 1],
                63,
                0,
                Some((gue_sport(&udp), 6080)),
            )
        })
        .bumps(&[
            "conns_created",
            "conns",
            "real3.conns",
            "real3.inactive_conns",
            "real3.in_pkts",
        ]),
        row(
            "arp_reply_for_vip",
            arp_request(CIP, VIP),
            0,
            Verdict::Tx(0),
        )
        .out(arp(OUT_MAC, CLIENT_MAC, 2, OUT_MAC, VIP, CLIENT_MAC, CIP))
        .bumps(&["arp_replies"]),
        row(
            "arp_reply_learnt",
            arp(RS1_MAC, IN_MAC, 2, RS1_MAC, RIP1, IN_MAC, [10, 1, 0, 1]),
            1,
            Verdict::Consumed,
        )
        .setup(Setup {
            neighbours: false,
            pre: |c, s| {
                // The SYN found RS1 unresolved and queued a request.
                let v = c.process(s, &mut Pkt::syn().bytes(), 0, 0, false);
                assert_eq!(v, Verdict::Drop(DropReason::NeighUnresolved));
                c.arp_out.clear();
            },
            ..base()
        })
        .bumps(&["neigh_out", "neigh_version", "arp_learned"]),
        row(
            "icmp_echo_reply_vip",
            Pkt {
                payload: b"ping".to_vec(),
                ..syn.clone().with(L4::Icmp { ty: 8, code: 0 })
            }
            .bytes(),
            0,
            Verdict::Tx(0),
        )
        .out(
            Pkt {
                smac: OUT_MAC,
                dmac: CLIENT_MAC,
                sip: VIP,
                dip: CIP,
                payload: b"ping".to_vec(),
                ..syn.clone().with(L4::Icmp { ty: 0, code: 0 })
            }
            .bytes(),
        )
        .bumps(&["icmp_echo_replies"]),
    ];
    // Redirect: worker 0 of 2 gets a flow worker 1 owns; the frame moves
    // untouched. Its owner then forwards it without counting it as received.
    let p1 = port_owned_by(1, 2);
    let redirect = Pkt::tcp(p1, 80, true, false).bytes();
    v.push(
        row(
            "redirect_to_owner",
            redirect.clone(),
            0,
            Verdict::Redirect(1),
        )
        .setup(Setup {
            workers: 2,
            worker: 0,
            ..base()
        })
        .out(redirect.clone())
        .bumps(&["redirects_out"]),
    );
    v.push(
        row("redirected_in_owner_forwards", redirect, 0, Verdict::Tx(1))
            .setup(Setup {
                workers: 2,
                worker: 1,
                redirected: true,
                ..base()
            })
            .out(
                Pkt {
                    smac: IN_MAC,
                    dmac: RS1_MAC,
                    dip: RIP1,
                    ttl: 63,
                    ..Pkt::tcp(p1, 8080, true, false)
                }
                .bytes(),
            )
            .bumps(&[
                "conns_created",
                "conns",
                "real1.conns",
                "real1.inactive_conns",
                "real1.in_pkts",
            ]),
    );
    // VLAN: a tagged SYN on a port configured for its VLAN is forwarded;
    // the rewrite leaves the tag as it came.
    v.push(
        row(
            "vlan_tagged_syn_accepted",
            Pkt {
                vlan: Some(10),
                ..syn.clone()
            }
            .bytes(),
            0,
            Verdict::Tx(1),
        )
        .setup(Setup {
            snap: |s| s.ports[0].vlans = vec![10],
            ..base()
        })
        .out(
            Pkt {
                smac: IN_MAC,
                dmac: RS1_MAC,
                vlan: Some(10),
                dip: RIP1,
                ttl: 63,
                ..Pkt::tcp(40000, 8080, true, false)
            }
            .bytes(),
        )
        .bumps(&[
            "conns_created",
            "conns",
            "real1.conns",
            "real1.inactive_conns",
            "real1.in_pkts",
        ]),
    );

    // ---- parse ----
    v.push(dropped(
        "eth_truncated",
        syn.bytes()[..10].to_vec(),
        0,
        R::EthTruncated,
    ));
    v.push(dropped(
        "eth_truncated_vlan_tag",
        ether(CLIENT_MAC, OUT_MAC, None, EtherType::VLAN_TAGGED_FRAME)[..14]
            .iter()
            .chain(&[0x00])
            .copied()
            .collect(),
        0,
        R::EthTruncated,
    ));
    let mut v6 = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, OUT_MAC)
        .ipv6([0xfe; 16], [0xfd; 16], 64)
        .udp(5000, 53)
        .write(&mut v6, b"q")
        .unwrap();
    v.push(dropped("eth_unsupported_ipv6", v6, 0, R::EthUnsupported));
    v.push(dropped(
        "eth_not_for_us",
        Pkt {
            dmac: [0x02, 0, 0, 0, 0, 0x99],
            ..syn.clone()
        }
        .bytes(),
        0,
        R::EthNotForUs,
    ));
    v.push(dropped(
        "eth_src_multicast",
        Pkt {
            smac: [0x01, 0, 0x5e, 0, 0, 1],
            ..syn.clone()
        }
        .bytes(),
        0,
        R::EthSrcInvalid,
    ));
    v.push(dropped(
        "vlan_not_configured",
        Pkt {
            vlan: Some(10),
            ..syn.clone()
        }
        .bytes(),
        0,
        R::VlanNotConfigured,
    ));
    v.push(dropped(
        "ipv4_malformed_version",
        edited(syn.bytes(), |f| f[IP] = 0x65),
        0,
        R::Ipv4Malformed,
    ));
    v.push(dropped(
        "ipv4_bad_length",
        edited(syn.bytes(), |f| {
            f[IP + 2..IP + 4].copy_from_slice(&2000u16.to_be_bytes())
        }),
        0,
        R::Ipv4BadLength,
    ));
    v.push(dropped(
        "tcp_malformed_cut_header",
        syn.clone().with(L4::Raw(6)).with_payload(&[0; 10]).bytes(),
        0,
        R::TcpMalformed,
    ));
    v.push(dropped(
        "udp_malformed_length",
        edited(
            syn.clone()
                .with(L4::Udp {
                    sport: 5000,
                    dport: 53,
                })
                .with_payload(b"q")
                .bytes(),
            |f| f[IP + 24..IP + 26].copy_from_slice(&4u16.to_be_bytes()),
        ),
        0,
        R::UdpMalformed,
    ));
    // ---- ARP ----
    v.push(dropped(
        "arp_malformed_hlen",
        edited(arp_request(CIP, VIP), |f| f[18] = 8),
        0,
        R::ArpMalformed,
    ));
    v.push(dropped(
        "arp_not_for_us",
        arp_request(CIP, [10, 0, 0, 77]),
        0,
        R::ArpNotForUs,
    ));
    v.push(dropped(
        "arp_wrong_subnet_rip_from_outside",
        arp_request(RIP1, VIP),
        0,
        R::ArpWrongSubnet,
    ));
    v.push(dropped(
        "arp_bad_sender_mac",
        arp(
            CLIENT_MAC,
            [0xff; 6],
            1,
            [0x01, 0, 0x5e, 0, 0, 1],
            CIP,
            [0; 6],
            VIP,
        ),
        0,
        R::ArpBadSenderMac,
    ));
    v.push(dropped(
        "arp_ignored_unsolicited_reply",
        arp(
            [0x02, 0xbb, 0, 0, 0, 0x32],
            [0xff; 6],
            2,
            [0x02, 0xbb, 0, 0, 0, 0x32],
            [10, 0, 0, 50],
            [0; 6],
            [10, 0, 0, 60],
        ),
        0,
        R::ArpIgnored,
    ));
    // ---- validate ----
    v.push(dropped(
        "ipv4_bad_checksum",
        edited(syn.bytes(), |f| f[IP + 10] ^= 0xff),
        0,
        R::Ipv4BadChecksum,
    ));
    v.push(dropped(
        "ipv4_bad_options",
        Pkt {
            options: vec![0x07, 1, 0, 0],
            ..syn.clone()
        }
        .bytes(),
        0,
        R::Ipv4BadOptions,
    ));
    v.push(dropped(
        "ipv4_source_route",
        Pkt {
            options: vec![0x83, 7, 4, 10, 1, 0, 11, 0],
            ..syn.clone()
        }
        .bytes(),
        0,
        R::Ipv4SourceRoute,
    ));
    v.push(dropped(
        "ipv4_fragment",
        // A UDP fragment to the DIP: the director does not reassemble.
        Pkt {
            dip: DIP_OUT,
            more_frags: true,
            payload: vec![0; 8],
            ..udp_in()
        }
        .bytes(),
        0,
        R::Ipv4Fragment,
    ));
    v.extend(fragment_rows());
    v.push(dropped(
        "ipv4_l2_broadcast",
        Pkt {
            dmac: [0xff; 6],
            ..syn.clone()
        }
        .bytes(),
        0,
        R::Ipv4L2Broadcast,
    ));
    v.push(dropped(
        "ipv4_martian_source_loopback",
        Pkt {
            sip: [127, 0, 0, 1],
            ..syn.clone()
        }
        .bytes(),
        0,
        R::Ipv4MartianSource,
    ));
    // A real server's address from the client side: the route back to it
    // is the inside port (strict reverse path, RFC 3704 §2.2).
    v.push(dropped(
        "ipv4_rpf_fail_rip_from_outside",
        Pkt {
            sip: RIP1,
            ..syn.clone()
        }
        .bytes(),
        0,
        R::Ipv4RpfFail,
    ));
    // No route back at all (no default route): the reply could never be sent.
    v.push(
        dropped(
            "ipv4_rpf_fail_no_route_back",
            Pkt {
                sip: [192, 0, 2, 5],
                ..syn.clone()
            }
            .bytes(),
            0,
            R::Ipv4RpfFail,
        )
        .setup(Setup {
            snap: |s| s.routes.retain(|r| r.dst.len > 0),
            ..base()
        }),
    );
    v.push(dropped(
        "ipv4_martian_source_own_dip",
        Pkt {
            sip: DIP_OUT,
            ..syn.clone()
        }
        .bytes(),
        0,
        R::Ipv4MartianSource,
    ));
    v.push(dropped(
        "l4_port_zero",
        Pkt::tcp(0, 80, true, false).bytes(),
        0,
        R::L4PortZero,
    ));
    v.push(dropped(
        "tcp_bad_checksum",
        edited(syn.bytes(), |f| f[TCP_CSUM] ^= 0x5a),
        0,
        R::TcpBadChecksum,
    ));
    v.push(dropped(
        "udp_bad_checksum",
        edited(
            syn.clone()
                .with(L4::Udp {
                    sport: 5000,
                    dport: 53,
                })
                .with_payload(b"q")
                .bytes(),
            |f| f[UDP_CSUM] ^= 0x5a,
        ),
        0,
        R::UdpBadChecksum,
    ));
    v.push(
        dropped(
            "l4_checksum_partial",
            edited(syn.bytes(), |f| {
                let p = pseudo_sum(f);
                f[TCP_CSUM..TCP_CSUM + 2].copy_from_slice(&p.to_be_bytes());
            }),
            0,
            R::L4ChecksumPartial,
        )
        .bumps(&["partial_csum_ports"]),
    );
    // ---- local ----
    v.push(dropped(
        "icmp_malformed_short",
        syn.clone()
            .with(L4::Raw(1))
            .with_payload(&[8, 0, 0xf7, 0xff])
            .bytes(),
        0,
        R::IcmpMalformed,
    ));
    v.push(dropped(
        "icmp_bad_checksum_to_dip",
        edited(
            Pkt {
                dip: DIP_OUT,
                ..syn.clone().with(L4::Icmp { ty: 8, code: 0 })
            }
            .bytes(),
            |f| f[IP + 22] ^= 0x5a,
        ),
        0,
        R::IcmpBadChecksum,
    ));
    v.push(dropped(
        "icmp_unsupported_timestamp",
        syn.clone().with(L4::Icmp { ty: 13, code: 0 }).bytes(),
        0,
        R::IcmpUnsupported,
    ));
    v.push(dropped(
        "proto_unsupported_gre",
        syn.clone().with(L4::Raw(47)).with_payload(&[0; 4]).bytes(),
        0,
        R::ProtoUnsupported,
    ));
    v.push(dropped(
        "dip_unserved_ssh",
        Pkt {
            dip: DIP_OUT,
            ..Pkt::tcp(40000, 22, true, false)
        }
        .bytes(),
        0,
        R::DipUnserved,
    ));
    // ---- local: the exception path to the kernel ----
    // With it on, what the dataplane does not serve for a DIP goes to the
    // kernel unchanged; echo requests and everything to a VIP stay here.
    let kernel_on = Setup {
        pre: |c, _| c.enable_kernel(1000, 10, 0),
        ..base()
    };
    let ssh = Pkt {
        dip: DIP_OUT,
        ..Pkt::tcp(40000, 22, true, false)
    }
    .bytes();
    v.push(
        row("kernel_tcp_syn_to_dip", ssh.clone(), 0, Verdict::Kernel(0))
            .setup(kernel_on)
            .out(ssh.clone()),
    );
    let dns = Pkt {
        dip: DIP_OUT,
        ..syn.clone().with(L4::Udp {
            sport: 5000,
            dport: 53,
        })
    }
    .with_payload(b"query")
    .bytes();
    v.push(
        row("kernel_udp_to_dip", dns.clone(), 0, Verdict::Kernel(0))
            .setup(kernel_on)
            .out(dns),
    );
    let echo_reply = Pkt {
        dip: DIP_OUT,
        payload: b"pong".to_vec(),
        ..syn.clone().with(L4::Icmp { ty: 0, code: 0 })
    }
    .bytes();
    v.push(
        row(
            "kernel_icmp_echo_reply_to_dip",
            echo_reply.clone(),
            0,
            Verdict::Kernel(0),
        )
        .setup(kernel_on)
        .out(echo_reply),
    );
    // Port unreachable quoting the kernel's own UDP probe: its UDP check
    // needs it.
    let unreach = Pkt {
        dip: DIP_OUT,
        payload: vec![0x45; 28],
        ..syn.clone().with(L4::Icmp { ty: 3, code: 3 })
    }
    .bytes();
    v.push(
        row(
            "kernel_icmp_port_unreachable_to_dip",
            unreach.clone(),
            0,
            Verdict::Kernel(0),
        )
        .setup(kernel_on)
        .out(unreach),
    );
    v.push(
        row(
            "kernel_on_icmp_echo_request_answered",
            Pkt {
                dip: DIP_OUT,
                payload: b"ping".to_vec(),
                ..syn.clone().with(L4::Icmp { ty: 8, code: 0 })
            }
            .bytes(),
            0,
            Verdict::Tx(0),
        )
        .setup(kernel_on)
        .out(
            Pkt {
                smac: OUT_MAC,
                dmac: CLIENT_MAC,
                sip: DIP_OUT,
                dip: CIP,
                payload: b"ping".to_vec(),
                ..syn.clone().with(L4::Icmp { ty: 0, code: 0 })
            }
            .bytes(),
        )
        .bumps(&["icmp_echo_replies"]),
    );
    v.push(
        row(
            "kernel_on_vip_syn_forwarded",
            syn.bytes(),
            0,
            Verdict::Tx(1),
        )
        .setup(kernel_on)
        .bumps(&[
            "conns_created",
            "conns",
            "real1.conns",
            "real1.inactive_conns",
            "real1.in_pkts",
        ]),
    );
    v.push(
        dropped(
            "kernel_on_icmp_timestamp_to_vip",
            syn.clone().with(L4::Icmp { ty: 13, code: 0 }).bytes(),
            0,
            R::IcmpUnsupported,
        )
        .setup(kernel_on),
    );
    v.push(
        dropped(
            "kernel_on_tcp_to_dip_spoofed_from_vip",
            Pkt {
                sip: VIP,
                ..Pkt {
                    dip: DIP_OUT,
                    ..Pkt::tcp(40000, 22, true, false)
                }
            }
            .bytes(),
            0,
            R::Ipv4MartianSource,
        )
        .setup(kernel_on),
    );
    // The kernel's own ARP for a real server: the reply is learnt by the
    // dataplane, then handed over unchanged.
    let arp_reply = arp(RS1_MAC, IN_MAC, 2, RS1_MAC, RIP1, IN_MAC, [10, 1, 0, 1]);
    v.push(
        row(
            "kernel_arp_reply_for_dip",
            arp_reply.clone(),
            1,
            Verdict::Kernel(1),
        )
        .setup(Setup {
            neighbours: false,
            pre: |c, s| {
                let v = c.process(s, &mut Pkt::syn().bytes(), 0, 0, false);
                assert_eq!(v, Verdict::Drop(DropReason::NeighUnresolved));
                c.arp_out.clear();
                c.enable_kernel(1000, 10, 0);
            },
            ..base()
        })
        .out(arp_reply)
        .bumps(&["neigh_out", "neigh_version", "arp_learned"]),
    );
    v.push(
        dropped(
            "exception_rate_limited_ssh",
            ssh,
            0,
            R::ExceptionRateLimited,
        )
        .setup(Setup {
            // A one-packet bucket refilled at 1 pps: the first SYN takes
            // the token at 0 ms; 1 ms later the next finds none.
            pre: |c, s| {
                c.enable_kernel(1, 1, 0);
                let mut f = Pkt {
                    dip: DIP_OUT,
                    ..Pkt::tcp(40001, 22, true, false)
                }
                .bytes();
                assert_eq!(c.process(s, &mut f, 0, 0, false), Verdict::Kernel(0));
            },
            ..base()
        }),
    );
    // ---- classify ----
    v.push(dropped(
        "not_for_us_icmp_elsewhere",
        Pkt {
            dip: [10, 0, 0, 77],
            ..syn.clone().with(L4::Icmp { ty: 8, code: 0 })
        }
        .bytes(),
        0,
        R::NotForUs,
    ));
    v.push(dropped(
        "not_for_us_tcp_not_from_a_real",
        Pkt {
            dip: [10, 0, 0, 77],
            ..syn.clone()
        }
        .bytes(),
        0,
        R::NotForUs,
    ));
    // ---- VRRP: adverts to the kernel, a backup's VIPs ----
    let kernel_on = Setup {
        pre: |c, _| c.enable_kernel(1000, 10, 0),
        ..base()
    };
    let standby = || Setup {
        snap: |s| {
            if let Some(l) = s.local.get_mut(&u32::from_be_bytes(VIP)) {
                l.kind = LocalKind::Standby;
            }
        },
        ..base()
    };
    v.push(
        dropped(
            "vrrp_backup_syn_to_standby_vip",
            syn.bytes(),
            0,
            R::VrrpBackup,
        )
        .setup(standby()),
    );
    v.push(
        dropped(
            "arp_vrrp_backup_request_for_standby_vip",
            arp_request(CIP, VIP),
            0,
            R::ArpVrrpBackup,
        )
        .setup(standby()),
    );
    let floating = Setup {
        snap: |s| {
            s.local.insert(
                u32::from_be_bytes([10, 0, 0, 50]),
                LocalAddr {
                    kind: LocalKind::Floating,
                    arp_ports: 1,
                },
            );
        },
        ..base()
    };
    v.push(
        row(
            "arp_floating_address_answered",
            arp_request(CIP, [10, 0, 0, 50]),
            0,
            Verdict::Tx(0),
        )
        .setup(floating)
        .out(arp(
            OUT_MAC,
            CLIENT_MAC,
            2,
            OUT_MAC,
            [10, 0, 0, 50],
            CLIENT_MAC,
            CIP,
        ))
        .bumps(&["arp_replies"]),
    );
    let good = vrrp_v2(51, 100, &[VIP], 1, b"secret\0\0");
    let advert = |ttl: u8, dip: [u8; 4], dmac: [u8; 6], msg: &[u8]| {
        Pkt {
            dmac,
            dip,
            ttl,
            ..syn.clone().with(L4::Raw(112))
        }
        .with_payload(msg)
        .bytes()
    };
    let to_group = advert(255, [224, 0, 0, 18], VRRP_MAC, &good);
    v.push(
        row(
            "kernel_vrrp_v2_advert",
            to_group.clone(),
            0,
            Verdict::Kernel(0),
        )
        .setup(kernel_on)
        .out(to_group)
        .bumps(&["vrrp_to_kernel"]),
    );
    let v3 = vrrp_v3(51, 200, &[VIP, [10, 0, 0, 101]], 100, CIP, [224, 0, 0, 18]);
    let v3_frame = advert(255, [224, 0, 0, 18], VRRP_MAC, &v3);
    let kernel_on = Setup {
        pre: |c, _| c.enable_kernel(1000, 10, 0),
        ..base()
    };
    v.push(
        row(
            "kernel_vrrp_v3_advert",
            v3_frame.clone(),
            0,
            Verdict::Kernel(0),
        )
        .setup(kernel_on)
        .out(v3_frame)
        .bumps(&["vrrp_to_kernel"]),
    );
    v.push(dropped(
        "vrrp_bad_ttl_254",
        advert(254, [224, 0, 0, 18], VRRP_MAC, &good),
        0,
        R::VrrpBadTtl,
    ));
    v.push(dropped(
        "vrrp_truncated_6_bytes",
        advert(255, [224, 0, 0, 18], VRRP_MAC, &good[..6]),
        0,
        R::VrrpTruncated,
    ));
    v.push(dropped(
        "vrrp_bad_version_4",
        advert(
            255,
            [224, 0, 0, 18],
            VRRP_MAC,
            &vrrp_fix_v2(edited(good.clone(), |m| m[0] = 0x41)),
        ),
        0,
        R::VrrpBadVersion,
    ));
    v.push(dropped(
        "vrrp_bad_checksum",
        advert(
            255,
            [224, 0, 0, 18],
            VRRP_MAC,
            &edited(good.clone(), |m| m[6] ^= 0xff),
        ),
        0,
        R::VrrpBadChecksum,
    ));
    v.push(dropped(
        "vrrp_bad_fields_count_0",
        advert(
            255,
            [224, 0, 0, 18],
            VRRP_MAC,
            &vrrp_v2(51, 100, &[], 1, &[0; 8]),
        ),
        0,
        R::VrrpBadFields,
    ));
    v.push(dropped(
        "vrrp_not_for_us_unicast_elsewhere",
        advert(255, [10, 0, 0, 77], OUT_MAC, &good),
        0,
        R::VrrpNotForUs,
    ));
    // ---- conn ----
    v.push(dropped(
        "tcp_no_conn_ack",
        Pkt::tcp(40000, 80, false, true).bytes(),
        0,
        R::TcpNoConn,
    ));
    v.push(dropped(
        "no_service_port_81",
        Pkt::tcp(40000, 81, true, false).bytes(),
        0,
        R::NoService,
    ));
    v.push(
        dropped(
            "no_real_server_all_weights_0",
            syn.bytes(),
            0,
            R::NoRealServer,
        )
        .setup(Setup {
            snap: |s| s.reals.iter_mut().for_each(|r| r.weight = 0),
            ..base()
        }),
    );
    // VS/TUN drops. No room: the connection exists, the packet does not
    // leave (TCP's retransmission meets the same buffer size, so this is a
    // configuration error: mbufs need 32 bytes of tailroom).
    v.push(
        dropped("tun_no_room", syn.bytes(), 0, R::TunNoRoom)
            .setup(Setup {
                room: 0,
                ..tun_base()
            })
            .bumps(NEW_CONN_RS1),
    );
    // The client's "fragmentation needed" of a packet that does not fit
    // the tunnel, carrying `mtu`; the connection exists.
    let tun_frag_needed = |name, payload: usize, snap: fn(&mut Snapshot), mtu: u16| {
        let big = Pkt {
            payload: vec![0x61; payload],
            ..Pkt::syn()
        };
        let [hi, lo] = mtu.to_be_bytes();
        row(name, big.bytes(), 0, Verdict::Tx(0))
            .setup(Setup { snap, ..tun_base() })
            .out(generated(
                &big.bytes(),
                OUT_MAC,
                CLIENT_MAC,
                DIP_OUT,
                3,
                4,
                [0, 0, hi, lo],
            ))
            .bumps(&[
                "icmp_frag_needed_sent",
                "conns_created",
                "conns",
                "real1.conns",
                "real1.inactive_conns",
            ])
    };
    // 1481 + 20 bytes of outer header > 1500 with DF: the tunnel's MTU is
    // 1500 - 20 = 1480 (RFC 2003 §5.1), sent from the arrival port's DIP.
    v.push(tun_frag_needed(
        "tun_ipip_frag_needed",
        1481 - 40,
        |_| {},
        1480,
    ));
    // GUE's 32 bytes: 1469 + 32 > 1500, the tunnel's MTU is 1468.
    v.push(tun_frag_needed(
        "tun_gue_frag_needed",
        1469 - 40,
        gue_reals,
        1468,
    ));
    // 1480 bytes fit IPIP exactly; the same packet does not fit GUE.
    let fits = Pkt {
        payload: vec![0x61; 1480 - 40],
        ..syn.clone()
    };
    v.push(
        row("tun_ipip_at_mtu", fits.bytes(), 0, Verdict::Tx(1))
            .setup(tun_base())
            .out(tunnelled(&inner_of(&fits), [10, 1, 0, 1], 63, 0, None))
            .bumps(NEW_CONN_RS1_PKT),
    );
    // GUE's 32 bytes leave 1468 inside the tunnel.
    v.push(
        row("icmp_frag_needed_gue_in", fits.bytes(), 0, Verdict::Tx(0))
            .setup(Setup {
                snap: gue_reals,
                ..tun_base()
            })
            .out(generated(
                &fits.bytes(),
                OUT_MAC,
                CLIENT_MAC,
                DIP_OUT,
                3,
                4,
                [0, 0, 0x05, 0xbc],
            ))
            .bumps(&[
                "icmp_frag_needed_sent",
                "conns_created",
                "conns",
                "real1.conns",
                "real1.inactive_conns",
            ]),
    );
    // The same size without DF: IPVS would fragment the outer packet.
    let no_df = edited(fits.bytes(), |f| {
        f[IP + 6] &= !0x40;
        f[IP + 10..IP + 12].copy_from_slice(&[0, 0]);
        let c = ones_sum(&f[IP..IP + 20]);
        f[IP + 10..IP + 12].copy_from_slice(&c.to_be_bytes());
    });
    v.push(
        dropped(
            "tun_needs_fragmentation",
            no_df,
            0,
            R::TunNeedsFragmentation,
        )
        .setup(Setup {
            snap: gue_reals,
            ..tun_base()
        })
        .bumps(NEW_CONN_RS1),
    );
    // TUN routes: a TTL-1 SYN gets time exceeded (82 bytes, in the 64
    // bytes of tailroom) and no connection, as NAT.
    let ttl_1 = Pkt {
        ttl: 1,
        ..syn.clone()
    };
    v.push(
        row(
            "icmp_time_exceeded_tun_in",
            ttl_1.bytes(),
            0,
            Verdict::Tx(0),
        )
        .setup(tun_base())
        .out(generated(
            &ttl_1.bytes(),
            OUT_MAC,
            CLIENT_MAC,
            DIP_OUT,
            11,
            0,
            [0; 4],
        ))
        .bumps(&["icmp_time_exceeded_sent"]),
    );
    // A TTL-1 SYN's time exceeded (82 bytes) does not fit the 54-byte
    // frame of `Core::process`: no room to grow.
    v.push(dropped(
        "icmp_error_no_room_ttl_1",
        Pkt {
            ttl: 1,
            ..syn.clone()
        }
        .bytes(),
        0,
        R::IcmpErrorNoRoom,
    ));
    v.push(
        dropped(
            "conn_table_full",
            Pkt::tcp(40001, 80, true, false).bytes(),
            0,
            R::ConnTableFull,
        )
        .setup(Setup {
            max_conns: 1,
            pre: pre_client_syn,
            ..base()
        }),
    );
    v.push(
        row(
            "expire_nodest_conn_syn_rescheduled",
            Pkt::syn().bytes(),
            0,
            Verdict::Tx(1),
        )
        .setup(Setup {
            // The client reuses its tuple for a new SYN after real server 1
            // went down: the old connection is expired and the SYN is
            // scheduled afresh (IPVS conn_reuse_mode), here to real server 2.
            snap: |s| {
                s.expire_nodest_conn = true;
                s.reals[1].available = false;
            },
            pre: pre_client_syn,
            ..base()
        })
        .bumps(&[
            "conns_expired_nodest",
            "-real1.inactive_conns",
            "conns_created",
            "real2.conns",
            "real2.inactive_conns",
            "real2.in_pkts",
        ]),
    );
    for (name, state) in [
        ("syn_reuses_close_conn_rescheduled", TcpState::Close),
        ("syn_reuses_time_wait_conn_rescheduled", TcpState::TimeWait),
    ] {
        // IPVS conn_reuse_mode: a new SYN on the tuple of a closed
        // connection expires it and is scheduled afresh (rr: real server 2),
        // even with expire_nodest_conn off.
        let pre: fn(&mut Core, &Snapshot) = match state {
            TcpState::Close => |c, s| pre_conn_in_state(c, s, TcpState::Close),
            _ => |c, s| pre_conn_in_state(c, s, TcpState::TimeWait),
        };
        v.push(
            row(name, Pkt::syn().bytes(), 0, Verdict::Tx(1))
                .setup(Setup { pre, ..base() })
                .bumps(&[
                    "conns_reused",
                    "-real1.inactive_conns",
                    "conns_created",
                    "real2.conns",
                    "real2.inactive_conns",
                    "real2.in_pkts",
                ]),
        );
    }
    v.push(
        // A SYN on the tuple of a live connection (a retransmission, or a
        // port reused while the old connection is still open) stays with
        // its real server.
        row(
            "syn_on_established_conn_not_rescheduled",
            Pkt::syn().bytes(),
            0,
            Verdict::Tx(1),
        )
        .setup(Setup {
            pre: |c, s| pre_conn_in_state(c, s, TcpState::Established),
            ..base()
        })
        .bumps(&["real1.in_pkts"]),
    );
    v.push(
        dropped(
            "conn_dest_unavailable",
            Pkt::tcp(40000, 80, false, true).bytes(),
            0,
            R::ConnDestUnavailable,
        )
        .setup(Setup {
            // expire_nodest_conn and a real server that failed its checks:
            // the client's next segment expires the connection.
            snap: |s| {
                s.expire_nodest_conn = true;
                s.reals.iter_mut().for_each(|r| r.available = false);
            },
            pre: pre_client_syn,
            ..base()
        })
        .bumps(&["conns_expired_nodest", "-conns", "-real1.inactive_conns"]),
    );
    v.push(
        dropped(
            "conn_key_collision",
            Pkt::tcp(40000, 81, true, false).bytes(),
            0,
            R::ConnKeyCollision,
        )
        .setup(Setup {
            // VIP:81 also balances to RIP1:8080: the client's second
            // connection would have the first one's reply tuple.
            snap: |s| {
                let key = ServiceKey {
                    vip: ip(VIP),
                    vport: 81,
                    proto: Proto::Tcp,
                };
                s.reals.push(RealServer {
                    service: 2,
                    available: true,
                    ..s.reals[1]
                });
                let mut svc = s.services[0].clone();
                svc.key = key;
                svc.reals = vec![s.reals.len() as u32 - 1];
                s.services.push(svc);
                s.service_index.insert(key, 2);
            },
            pre: pre_client_syn,
            ..base()
        }),
    );
    v.push(dropped(
        "reply_no_conn",
        Pkt::synack_to(CIP).bytes(),
        1,
        R::ReplyNoConn,
    ));
    v.extend(fullnat_cases());
    // ---- route ----
    // A client with no route back is refused before any state exists
    // (ipv4_rpf_fail); no_route is what remains: a real server the routes
    // do not cover. The connection exists by then (IPVS binds the
    // destination before xmit fails too).
    v.push(
        dropped("no_route_to_real_server", syn.bytes(), 0, R::NoRoute)
            .setup(Setup {
                snap: |s| s.routes.retain(|r| r.port == 0 && r.dst.len > 0),
                ..base()
            })
            .bumps(&[
                "conns_created",
                "conns",
                "real1.conns",
                "real1.inactive_conns",
            ]),
    );
    v.push(
        dropped("neigh_unresolved", syn.bytes(), 0, R::NeighUnresolved)
            .setup(Setup {
                neighbours: false,
                ..base()
            })
            .bumps(&[
                "conns_created",
                "conns",
                "real1.conns",
                "real1.inactive_conns",
                "arp_out",
            ]),
    );
    v.push(
        dropped("neigh_table_full", syn.bytes(), 0, R::NeighTableFull)
            .setup(Setup {
                neighbours: false,
                pre: |c, _| {
                    // One slot, held by a permanent entry.
                    c.neigh = NeighTable::new(1);
                    let _ = c.neigh.set_permanent(0, ip(CIP), CLIENT_MAC);
                    assert_eq!(c.neigh.len(), 1);
                },
                ..base()
            })
            .bumps(NEW_CONN_RS1),
    );
    v.push(dropped("bad_port", syn.bytes(), 5, R::BadPort));

    // ---- the worker loop ----
    let worker = |mesh, queues, refuse_tx, pre| Via::Worker {
        mesh,
        queues,
        refuse_tx,
        pre,
    };
    v.push(
        dropped("tx_full", syn.bytes(), 0, R::TxFull)
            .setup(Setup {
                via: worker(1, 2, Some(1), |_, _| {}),
                ..base()
            })
            .bumps(&[
                "conns_created",
                "conns",
                "real1.conns",
                "real1.inactive_conns",
                "real1.in_pkts",
            ]),
    );
    v.push(
        dropped(
            "redirect_ring_full",
            redirect_frame(1, 2),
            0,
            R::RedirectRingFull,
        )
        .setup(Setup {
            workers: 2,
            via: worker(2, 2, None, |ws, f| {
                // Worker 1 never polls: RING_LEN frames fill its ring.
                for _ in 0..RING_LEN {
                    ws[0].queues[0].inner.inject(f);
                }
                while ws[0].poll_once(1) > 0 {}
                assert_eq!(ws[0].core.stats.redirects_out, RING_LEN as u64);
            }),
            ..base()
        })
        .bumps(&["redirects_out"]),
    );
    v.push(
        dropped("bad_worker", redirect_frame(2, 3), 0, R::BadWorker)
            .setup(Setup {
                // The cores think there are 3 workers; the mesh has 2.
                workers: 3,
                via: worker(2, 2, None, |_, _| {}),
                ..base()
            })
            .bumps(&["redirects_out"]),
    );
    v.push(
        dropped("tx_port_invalid", syn.bytes(), 0, R::TxPortInvalid)
            .setup(Setup {
                snap: third_port,
                via: worker(1, 2, None, |_, _| {}),
                ..base()
            })
            .bumps(&[
                "conns_created",
                "conns",
                "real5.conns",
                "real5.inactive_conns",
                "real5.in_pkts",
            ]),
    );
    icmp_rows(&mut v);
    v
}

// ---- ICMP errors: relayed and generated ---------------------------------

/// The IPv4 bytes (no Ethernet header) of `p`.
fn ipv4_of(p: &Pkt) -> Vec<u8> {
    p.bytes()[14..].to_vec()
}

/// An ICMP error frame `smac → dmac`, `sip → dip`, TTL `ttl`, of
/// `ty`/`code` with bytes 4..8 `rest`, quoting `quote`, built by etherparse.
#[allow(clippy::too_many_arguments)]
fn icmp_error(
    smac: [u8; 6],
    dmac: [u8; 6],
    sip: [u8; 4],
    dip: [u8; 4],
    ttl: u8,
    ty: u8,
    code: u8,
    rest: [u8; 4],
    quote: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(smac, dmac)
        .ipv4(sip, dip, ttl)
        .icmpv4_raw(ty, code, rest)
        .write(&mut f, quote)
        .unwrap();
    f
}

/// The error fulcrum generates about the frame `orig` (arrived from
/// `peer_mac` at `port_mac`, the port's DIP `dip`): TOS 0xc0, DF, id 0,
/// TTL 64, quoting the original datagram up to 576 bytes in all. Built
/// with etherparse, independently of `icmp_error::emit`.
fn generated(
    orig: &[u8],
    port_mac: [u8; 6],
    peer_mac: [u8; 6],
    dip: [u8; 4],
    ty: u8,
    code: u8,
    rest: [u8; 4],
) -> Vec<u8> {
    let src: [u8; 4] = orig[26..30].try_into().unwrap();
    let total = u16::from_be_bytes([orig[16], orig[17]]) as usize;
    let quote = &orig[14..14 + total.min(548)];
    let mut h = Ipv4Header::new(0, 64, IpNumber::ICMP, dip, src).unwrap();
    h.dscp = etherparse::Ipv4Dscp::try_new(0x30).unwrap();
    h.dont_fragment = true;
    h.identification = 0;
    let mut f = Vec::new();
    PacketBuilder::ethernet2(port_mac, peer_mac)
        .ip(IpHeaders::Ipv4(h, Default::default()))
        .icmpv4_raw(ty, code, rest)
        .write(&mut f, quote)
        .unwrap();
    f
}

/// `f` with DF cleared and its IPv4 header checksum recomputed.
fn without_df(f: Vec<u8>) -> Vec<u8> {
    edited(f, |f| {
        f[IP + 6] &= !0x40;
        f[IP + 10] = 0;
        f[IP + 11] = 0;
        let c = ones_sum(&f[IP..IP + 20]);
        f[IP + 10..IP + 12].copy_from_slice(&c.to_be_bytes());
    })
}

/// Snapshot edit: the inside port's MTU is 1000 bytes.
fn inside_mtu_1000(s: &mut Snapshot) {
    s.ports[1].mtu = 1000;
}

/// Snapshot edit: the outside port's MTU is 1000 bytes.
fn outside_mtu_1000(s: &mut Snapshot) {
    s.ports[0].mtu = 1000;
}

/// Pre-state: the client's UDP datagram 5000 → VIP:53 was forwarded (to
/// real server 1's 5353, real id 3).
fn pre_client_udp(c: &mut Core, s: &Snapshot) {
    let f = Pkt::syn()
        .with(L4::Udp {
            sport: 5000,
            dport: 53,
        })
        .with_payload(b"question")
        .bytes();
    let v = c.process(s, &mut f.clone(), 0, 0, false);
    assert!(matches!(v, Verdict::Tx(_)), "pre-state UDP: {v:?}");
}

/// The router on the client segment (the outside gateway).
const ROUTER: [u8; 4] = [10, 0, 0, 254];
const ROUTER_MAC: [u8; 6] = [0x02, 0xee, 0, 0, 0, 0xfe];

/// What the director sent the client for the connection CIP:40000 ->
/// VIP:80 (NAT to RIP1:8080, or FullNAT from LIP:LPORT): its SYN-ACK, from
/// VIP:80.
fn synack_to_client() -> Pkt {
    Pkt {
        smac: OUT_MAC,
        dmac: CLIENT_MAC,
        sip: VIP,
        dip: CIP,
        ttl: 63,
        ..Pkt::tcp(80, 40000, true, true)
    }
}

/// A port unreachable about the client's SYN as the client gets it, from
/// VIP:80 (relayed from a NAT or a FullNAT real server alike).
fn unreachable_to_client() -> Vec<u8> {
    icmp_error(
        OUT_MAC,
        CLIENT_MAC,
        VIP,
        CIP,
        63,
        3,
        3,
        [0; 4],
        &ipv4_of(&Pkt {
            ttl: 63,
            ..Pkt::syn()
        }),
    )
}

fn icmp_rows(v: &mut Vec<Case>) {
    use DropReason as R;
    let to_client = synack_to_client();
    // The same packet as real server 1 sent it, before NAT.
    let from_rs1 = Pkt {
        sip: RIP1,
        dip: CIP,
        ttl: 64,
        ..Pkt::tcp(8080, 40000, true, true)
    };
    // The client's SYN as the director forwarded it to real server 1.
    let to_rs1 = Pkt {
        dip: RIP1,
        ttl: 63,
        ..Pkt::tcp(40000, 8080, true, false)
    };
    let nat_conn = Setup {
        pre: pre_client_syn,
        ..base()
    };
    let dr_conn = Setup {
        method: Method::Dr,
        pre: pre_client_syn,
        ..base()
    };
    let unreach = |smac, sip, ttl, quote: &[u8]| {
        icmp_error(smac, OUT_MAC, sip, VIP, ttl, 3, 3, [0; 4], quote)
    };

    // ---- relayed, client side -> real server (IPVS ip_vs_in_icmp) ----
    v.push(
        row(
            "icmp_relay_nat_in_port_unreachable",
            unreach(CLIENT_MAC, CIP, 64, &ipv4_of(&to_client)),
            0,
            Verdict::Tx(1),
        )
        .setup(nat_conn)
        .out(icmp_error(
            IN_MAC,
            RS1_MAC,
            CIP,
            RIP1,
            63,
            3,
            3,
            [0; 4],
            &ipv4_of(&Pkt {
                ttl: 63,
                ..from_rs1.clone()
            }),
        ))
        .bumps(&["icmp_errors_in"]),
    );
    // A router on the client's path (not the client) asks for a smaller
    // MTU, quoting RFC 792's minimum: the match is by the quote.
    v.push(
        row(
            "icmp_relay_nat_in_frag_needed_from_router",
            icmp_error(
                ROUTER_MAC,
                OUT_MAC,
                ROUTER,
                VIP,
                64,
                3,
                4,
                [0, 0, 0x05, 0x00],
                &ipv4_of(&to_client)[..28],
            ),
            0,
            Verdict::Tx(1),
        )
        .setup(nat_conn)
        .out(icmp_error(
            IN_MAC,
            RS1_MAC,
            ROUTER,
            RIP1,
            63,
            3,
            4,
            [0, 0, 0x05, 0x00],
            &ipv4_of(&Pkt {
                ttl: 63,
                ..from_rs1.clone()
            })[..28],
        ))
        .bumps(&["icmp_errors_in"]),
    );
    v.push(
        row(
            "icmp_relay_dr_in",
            unreach(CLIENT_MAC, CIP, 64, &ipv4_of(&to_client)),
            0,
            Verdict::Tx(1),
        )
        .setup(dr_conn)
        .out(edited(
            unreach(CLIENT_MAC, CIP, 64, &ipv4_of(&to_client)),
            |f| {
                f[0..6].copy_from_slice(&RS1_MAC);
                f[6..12].copy_from_slice(&IN_MAC);
            },
        ))
        .bumps(&["icmp_errors_in"]),
    );
    // VS/TUN: the error goes through the flow's tunnel (the real server
    // may be on no link of the director's), its TTL one lower inside; the
    // outer identification is 1 (the SYN of the pre-state took 0); GUE's
    // source port is the flow's (the client's SYN's).
    let tun_conn = |snap: fn(&mut Snapshot)| Setup {
        pre: pre_tun_syn,
        snap,
        ..tun_base()
    };
    let err_in = unreach(CLIENT_MAC, CIP, 64, &ipv4_of(&to_client));
    let err_inner = unreach(CLIENT_MAC, CIP, 63, &ipv4_of(&to_client))[IP..].to_vec();
    v.push(
        row("icmp_relay_tun_ipip_in", err_in.clone(), 0, Verdict::Tx(1))
            .setup(tun_conn(|_| {}))
            .out(tunnelled(&err_inner, [10, 1, 0, 1], 63, 1, None))
            .bumps(&["icmp_errors_in"]),
    );
    v.push(
        row("icmp_relay_tun_gue_in", err_in, 0, Verdict::Tx(1))
            .setup(tun_conn(gue_reals))
            .out(tunnelled(
                &err_inner,
                [10, 1, 0, 1],
                63,
                1,
                Some((gue_sport(&Pkt::syn()), 6080)),
            ))
            .bumps(&["icmp_errors_in"]),
    );
    // The error would not fit the tunnel (88 bytes with the outer header,
    // the inside port's MTU 80; the pre-state's SYN fit): it is dropped,
    // since no error is sent about an error (RFC 1812 §4.3.2.7).
    let err_in = unreach(CLIENT_MAC, CIP, 64, &ipv4_of(&to_client));
    v.push(
        dropped(
            "icmp_relay_tun_mtu_exceeded",
            err_in.clone(),
            0,
            R::MtuExceeded,
        )
        .setup(tun_conn(|s| s.ports[1].mtu = 80))
        .out(err_in),
    );
    // ---- relayed, real server side -> client (IPVS ip_vs_out_icmp) ----
    v.push(
        row(
            "icmp_relay_nat_out_port_unreachable",
            icmp_error(
                RS1_MAC,
                IN_MAC,
                RIP1,
                CIP,
                64,
                3,
                3,
                [0; 4],
                &ipv4_of(&to_rs1),
            ),
            1,
            Verdict::Tx(0),
        )
        .setup(nat_conn)
        .out(unreachable_to_client())
        .bumps(&["icmp_errors_out"]),
    );
    let udp_to_rs1 = Pkt {
        dip: RIP1,
        ttl: 63,
        ..Pkt::syn().with(L4::Udp {
            sport: 5000,
            dport: 5353,
        })
    }
    .with_payload(b"question");
    v.push(
        row(
            "icmp_relay_nat_out_udp_time_exceeded_from_router",
            icmp_error(
                RS1_MAC,
                IN_MAC,
                [10, 1, 0, 254],
                CIP,
                64,
                11,
                0,
                [0; 4],
                &ipv4_of(&udp_to_rs1)[..28],
            ),
            1,
            Verdict::Tx(0),
        )
        .setup(Setup {
            pre: pre_client_udp,
            ..base()
        })
        .out(icmp_error(
            OUT_MAC,
            CLIENT_MAC,
            VIP,
            CIP,
            63,
            11,
            0,
            [0; 4],
            &ipv4_of(&Pkt {
                ttl: 63,
                ..Pkt::syn()
                    .with(L4::Udp {
                        sport: 5000,
                        dport: 53,
                    })
                    .with_payload(b"question")
            })[..28],
        ))
        .bumps(&["icmp_errors_out"]),
    );
    // ---- relay refusals ----
    v.push(dropped(
        "icmp_error_no_conn",
        unreach(CLIENT_MAC, CIP, 64, &ipv4_of(&to_client)),
        0,
        R::IcmpErrorNoConn,
    ));
    v.push(dropped(
        "icmp_quote_truncated",
        unreach(CLIENT_MAC, CIP, 64, &ipv4_of(&to_client)[..24]),
        0,
        R::IcmpQuoteTruncated,
    ));
    v.push(dropped(
        "icmp_quote_malformed",
        unreach(
            CLIENT_MAC,
            CIP,
            64,
            &edited(ipv4_of(&to_client), |q| q[0] = 0x65),
        ),
        0,
        R::IcmpQuoteMalformed,
    ));
    v.push(
        dropped(
            "icmp_error_about_error",
            unreach(
                CLIENT_MAC,
                CIP,
                64,
                &ipv4_of(&Pkt {
                    payload: ipv4_of(&to_rs1)[..28].to_vec(),
                    ..to_client.clone().with(L4::Icmp { ty: 3, code: 3 })
                }),
            ),
            0,
            R::IcmpErrorAboutError,
        )
        .setup(nat_conn),
    );
    v.push(
        dropped(
            "icmp_quote_mismatch",
            unreach(
                CLIENT_MAC,
                CIP,
                64,
                &ipv4_of(&Pkt {
                    sip: [10, 0, 0, 99],
                    ..to_client.clone()
                }),
            ),
            0,
            R::IcmpQuoteMismatch,
        )
        .setup(nat_conn),
    );
    v.push(
        dropped(
            "ttl_exceeded_icmp_relay_nat",
            unreach(CLIENT_MAC, CIP, 1, &ipv4_of(&to_client)),
            0,
            R::TtlExceeded,
        )
        .setup(nat_conn),
    );
    // ---- generated: time exceeded, fragmentation needed ----
    let big_syn = Pkt {
        ttl: 1,
        ..Pkt::syn()
    }
    .with_payload(&[0x5a; 700]);
    v.push(
        row(
            "icmp_time_exceeded_nat_in",
            big_syn.bytes(),
            0,
            Verdict::Tx(0),
        )
        .out(generated(
            &big_syn.bytes(),
            OUT_MAC,
            CLIENT_MAC,
            DIP_OUT,
            11,
            0,
            [0; 4],
        ))
        .bumps(&["icmp_time_exceeded_sent"]),
    );
    v.push(
        dropped("icmp_rate_limited", big_syn.bytes(), 0, R::IcmpRateLimited).setup(Setup {
            pre: |c, _| c.set_icmp_rate_limit(1000, 0, 0),
            ..base()
        }),
    );
    let big = Pkt::syn().with_payload(&[0xa5; 1000]);
    v.push(
        row("icmp_frag_needed_nat_in", big.bytes(), 0, Verdict::Tx(0))
            .setup(Setup {
                snap: inside_mtu_1000,
                ..base()
            })
            .out(generated(
                &big.bytes(),
                OUT_MAC,
                CLIENT_MAC,
                DIP_OUT,
                3,
                4,
                [0, 0, 0x03, 0xe8],
            ))
            .bumps(&[
                "icmp_frag_needed_sent",
                "conns_created",
                "conns",
                "real1.conns",
                "real1.inactive_conns",
            ]),
    );
    v.push(
        row("icmp_frag_needed_dr_in", big.bytes(), 0, Verdict::Tx(0))
            .setup(Setup {
                method: Method::Dr,
                snap: inside_mtu_1000,
                ..base()
            })
            .out(generated(
                &big.bytes(),
                OUT_MAC,
                CLIENT_MAC,
                DIP_OUT,
                3,
                4,
                [0, 0, 0x03, 0xe8],
            ))
            .bumps(&[
                "icmp_frag_needed_sent",
                "conns_created",
                "conns",
                "real1.conns",
                "real1.inactive_conns",
            ]),
    );
    let big_reply = Pkt::synack_to(CIP).with_payload(&[0x3c; 1000]);
    v.push(
        row(
            "icmp_frag_needed_nat_out",
            big_reply.bytes(),
            1,
            Verdict::Tx(1),
        )
        .setup(Setup {
            snap: outside_mtu_1000,
            pre: pre_client_syn,
            ..base()
        })
        .out(generated(
            &big_reply.bytes(),
            IN_MAC,
            RS1_MAC,
            [10, 1, 0, 1],
            3,
            4,
            [0, 0, 0x03, 0xe8],
        ))
        .bumps(&["icmp_frag_needed_sent"]),
    );
    v.push(
        dropped(
            "mtu_exceeded_nat_in",
            without_df(big.bytes()),
            0,
            R::MtuExceeded,
        )
        .setup(Setup {
            snap: inside_mtu_1000,
            ..base()
        })
        .bumps(&[
            "conns_created",
            "conns",
            "real1.conns",
            "real1.inactive_conns",
        ]),
    );
    fullnat_icmp_rows(v);
}

/// `quote` (an IPv4 header and at least 8 bytes of TCP) with its TCP
/// sequence number set to `seq` (no TCP checksum is quoted in 28 bytes).
fn with_quoted_seq(mut quote: Vec<u8>, seq: u32) -> Vec<u8> {
    quote[24..28].copy_from_slice(&seq.to_be_bytes());
    quote
}

/// Snapshot edit: every service carries the client address as PROXY v2.
fn proxy_v2(s: &mut Snapshot) {
    for svc in &mut s.services {
        svc.client_address = ClientAddress::ProxyV2;
    }
}

/// ICMP errors about FullNAT flows: relayed with both ends rewritten (the
/// real server knows only LIP:lport, the client only VIP:vport), the
/// PROXY v2 sequence shift undone in a quote, and the egress MTU counting
/// the PROXY header.
fn fullnat_icmp_rows(v: &mut Vec<Case>) {
    let to_client = synack_to_client();
    // The client's SYN as the director forwarded it to real server 1.
    let to_rs1 = Pkt {
        smac: IN_MAC,
        dmac: RS1_MAC,
        sip: LIP,
        dip: RIP1,
        ttl: 63,
        ..Pkt::tcp(LPORT, 8080, true, false)
    };
    let conn = Setup {
        pre: pre_client_syn,
        ..fullnat()
    };
    // Client side -> real server: from the LIP (the real server may have
    // no route to the client), quoting the real server's own SYN-ACK.
    v.push(
        row(
            "icmp_relay_fullnat_in_port_unreachable",
            icmp_error(
                CLIENT_MAC,
                OUT_MAC,
                CIP,
                VIP,
                64,
                3,
                3,
                [0; 4],
                &ipv4_of(&to_client),
            ),
            0,
            Verdict::Tx(1),
        )
        .setup(conn)
        .out(icmp_error(
            IN_MAC,
            RS1_MAC,
            LIP,
            RIP1,
            63,
            3,
            3,
            [0; 4],
            &ipv4_of(&Pkt {
                sip: RIP1,
                dip: LIP,
                ttl: 63,
                ..Pkt::tcp(8080, LPORT, true, true)
            }),
        ))
        .bumps(&["icmp_errors_in"]),
    );
    // Real server side (to the LIP) -> client: from the VIP, quoting the
    // client's own SYN.
    v.push(
        row(
            "icmp_relay_fullnat_out_port_unreachable",
            icmp_error(
                RS1_MAC,
                IN_MAC,
                RIP1,
                LIP,
                64,
                3,
                3,
                [0; 4],
                &ipv4_of(&to_rs1),
            ),
            1,
            Verdict::Tx(0),
        )
        .setup(conn)
        .out(unreachable_to_client())
        .bumps(&["icmp_errors_out"]),
    );
    // PROXY v2: a router between the director and real server 1 quotes the
    // client's second data segment, whose sequence number the director
    // moved by the header's 28 bytes (isn1 1001, 18 bytes first sent:
    // 1019 + 28); the client gets its own 1019 back.
    v.push(
        row(
            "icmp_relay_fullnat_out_proxy_v2_seq",
            icmp_error(
                RS1_MAC,
                IN_MAC,
                [10, 1, 0, 254],
                LIP,
                64,
                11,
                0,
                [0; 4],
                &with_quoted_seq(
                    ipv4_of(&Pkt {
                        sip: LIP,
                        dip: RIP1,
                        ttl: 63,
                        ..Pkt::tcp(LPORT, 8080, false, true)
                    })[..28]
                        .to_vec(),
                    1019 + 28,
                ),
            ),
            1,
            Verdict::Tx(0),
        )
        .setup(Setup {
            snap: proxy_v2,
            ..conn
        })
        .out(icmp_error(
            OUT_MAC,
            CLIENT_MAC,
            VIP,
            CIP,
            63,
            11,
            0,
            [0; 4],
            &with_quoted_seq(
                ipv4_of(&Pkt {
                    ttl: 63,
                    ..Pkt::tcp(40000, 80, false, true)
                })[..28]
                    .to_vec(),
                1019,
            ),
        ))
        .bumps(&["icmp_errors_out"]),
    );
    // The egress MTU counts the PROXY header: the client's first data
    // segment (seq 1001, 1000 bytes, DF) fits the inside port's 1000 bytes
    // but not with 28 more, so it learns 972.
    let first = edited(
        Pkt {
            payload: vec![0x47; 1000 - 40],
            ..Pkt::tcp(40000, 80, false, true)
        }
        .bytes(),
        |f| f[IP + 20 + 7] += 1,
    );
    v.push(
        row(
            "icmp_frag_needed_fullnat_proxy_v2",
            first.clone(),
            0,
            Verdict::Tx(0),
        )
        .setup(Setup {
            snap: |s| {
                inside_mtu_1000(s);
                proxy_v2(s);
            },
            ..conn
        })
        .out(generated(
            &first,
            OUT_MAC,
            CLIENT_MAC,
            DIP_OUT,
            3,
            4,
            [0, 0, 0x03, 0xcc],
        ))
        .bumps(&[
            "icmp_frag_needed_sent",
            "real1.active_conns",
            "-real1.inactive_conns",
        ]),
    );
}

impl Pkt {
    fn with_payload(self, payload: &[u8]) -> Pkt {
        Pkt {
            payload: payload.to_vec(),
            ..self
        }
    }
}

// ---- fragments ----------------------------------------------------------

/// The client's UDP datagram to VIP:53 from port 5000, 40 bytes of data.
fn udp_in() -> Pkt {
    Pkt {
        payload: (0..40).collect(),
        ..Pkt::syn().with(L4::Udp {
            sport: 5000,
            dport: 53,
        })
    }
}

/// `udp_in` as fulcrum sends it to real server 1 (RIP1:5353, TTL 63).
fn udp_in_out() -> Pkt {
    Pkt {
        smac: IN_MAC,
        dmac: RS1_MAC,
        dip: RIP1,
        ttl: 63,
        ..udp_in().with(L4::Udp {
            sport: 5000,
            dport: 5353,
        })
    }
}

/// Real server 1's UDP reply (RIP1:5353 → CIP:5000, 40 bytes).
fn udp_reply() -> Pkt {
    Pkt {
        smac: RS1_MAC,
        dmac: IN_MAC,
        sip: RIP1,
        dip: CIP,
        ..udp_in().with(L4::Udp {
            sport: 5353,
            dport: 5000,
        })
    }
}

/// `udp_reply` as fulcrum sends it to the client (from VIP:53, TTL 63).
fn udp_reply_out() -> Pkt {
    Pkt {
        smac: OUT_MAC,
        dmac: CLIENT_MAC,
        sip: VIP,
        dip: CIP,
        ttl: 63,
        ..udp_in().with(L4::Udp {
            sport: 53,
            dport: 5000,
        })
    }
}

/// The untagged frame `whole` split as an IPv4 router would (RFC 791
/// §3.2) into fragments of identification `id`: the first carries `first`
/// bytes of the IP payload (a multiple of 8), the second the rest. Built
/// with etherparse's header and checksum, never fulcrum's.
fn split(whole: &[u8], id: u16, first: usize) -> [Vec<u8>; 2] {
    let (h, _) = Ipv4Header::from_slice(&whole[IP..]).unwrap();
    let data = &whole[IP + h.header_len()..IP + usize::from(h.total_len)];
    let mk = |off: usize, part: &[u8], mf: bool| {
        let mut g = h.clone();
        g.identification = id;
        g.more_fragments = mf;
        g.fragment_offset = etherparse::IpFragOffset::try_new((off / 8) as u16).unwrap();
        g.set_payload_len(part.len()).unwrap();
        g.header_checksum = g.calc_header_checksum();
        let mut f = whole[..IP].to_vec();
        g.write(&mut f).unwrap();
        f.extend_from_slice(part);
        f
    };
    [
        mk(0, &data[..first], true),
        mk(first, &data[first..], false),
    ]
}

/// Fragments of `udp_in` with identification `id`: 16 bytes, then 32.
fn udp_in_frags(id: u16) -> [Vec<u8>; 2] {
    split(&udp_in().bytes(), id, 16)
}

/// Pre-state: the first fragment of `udp_in` (id 7) was forwarded.
fn pre_first_frag(c: &mut Core, s: &Snapshot) {
    let v = c.process(s, &mut udp_in_frags(7)[0].clone(), 0, 0, false);
    assert_eq!(v, Verdict::Tx(1), "pre-state first fragment");
}

/// Pre-state: `pre_first_frag`, then the first fragment of the real
/// server's reply (id 9) was forwarded.
fn pre_reply_first_frag(c: &mut Core, s: &Snapshot) {
    pre_first_frag(c, s);
    let v = c.process(
        s,
        &mut split(&udp_reply().bytes(), 9, 16)[0].clone(),
        1,
        0,
        false,
    );
    assert_eq!(v, Verdict::Tx(0), "pre-state reply first fragment");
}

/// Pre-state: 8000 first fragments of `udp_in` (ids 10000..18000), more
/// than the fragment table's 4096 slots, so every probe window is full.
fn pre_frag_table_full(c: &mut Core, s: &Snapshot) {
    for id in 10_000..18_000u16 {
        let _ = c.process(s, &mut udp_in_frags(id)[0].clone(), 0, 0, false);
    }
}

fn fragment_rows() -> Vec<Case> {
    use DropReason as R;
    let first = udp_in_frags(7);
    let out = split(&udp_in_out().bytes(), 7, 16);
    let reply = split(&udp_reply().bytes(), 9, 16);
    let reply_out = split(&udp_reply_out().bytes(), 9, 16);
    let home_of_7 = dataplane::frag::home(
        &dataplane::frag::FragKey {
            src: ip(CIP),
            dst: ip(VIP),
            id: 7,
            proto: 17,
        },
        2,
    );
    vec![
        row(
            "nat_in_udp_first_fragment",
            first[0].clone(),
            0,
            Verdict::Tx(1),
        )
        .out(out[0].clone())
        .bumps(&[
            "conns_created",
            "conns",
            "real3.conns",
            "real3.inactive_conns",
            "real3.in_pkts",
            "frags_first",
        ]),
        row(
            "nat_in_udp_later_fragment",
            first[1].clone(),
            0,
            Verdict::Tx(1),
        )
        .setup(Setup {
            pre: pre_first_frag,
            ..base()
        })
        .out(out[1].clone())
        .bumps(&["frags_forwarded"]),
        row(
            "nat_out_udp_first_fragment",
            reply[0].clone(),
            1,
            Verdict::Tx(0),
        )
        .setup(Setup {
            pre: pre_first_frag,
            ..base()
        })
        .out(reply_out[0].clone())
        .bumps(&["real3.out_pkts", "frags_first"]),
        row(
            "nat_out_udp_later_fragment",
            reply[1].clone(),
            1,
            Verdict::Tx(0),
        )
        .setup(Setup {
            pre: pre_reply_first_frag,
            ..base()
        })
        .out(reply_out[1].clone())
        .bumps(&["frags_forwarded"]),
        row(
            "fragment_to_its_home_worker",
            first[1].clone(),
            0,
            Verdict::Redirect(home_of_7),
        )
        .setup(Setup {
            workers: 2,
            worker: 1 - home_of_7,
            ..base()
        })
        .out(first[1].clone())
        .bumps(&["redirects_out"]),
        dropped("frag_no_first", first[1].clone(), 0, R::FragNoFirst),
        dropped(
            "frag_bad",
            // MF set with 12 bytes: only the last fragment may be ragged.
            split(&udp_in().bytes(), 7, 12)[0].clone(),
            0,
            R::FragBad,
        ),
        dropped(
            "frag_table_full",
            udp_in_frags(20_000)[0].clone(),
            0,
            R::FragTableFull,
        )
        .setup(Setup {
            pre: pre_frag_table_full,
            ..base()
        }),
        // A tunnelled flow's first fragment: the connection is made, the
        // fragment is refused before its rewrite.
        dropped("frag_encap_unsupported", first[0].clone(), 0, R::FragEncap)
            .setup(tun_base())
            .bumps(&[
                "conns_created",
                "conns",
                "real3.conns",
                "real3.inactive_conns",
            ]),
    ]
}

/// The client's SYN from a port worker `w` of `n` owns.
fn redirect_frame(w: u16, n: u16) -> Vec<u8> {
    Pkt::tcp(port_owned_by(w, n), 80, true, false).bytes()
}

/// A third port (10.2.0.1/24) that holds the TCP service's only real
/// server 10.2.0.11:8080 (real id 5), for a worker with queues on two
/// ports only.
fn third_port(s: &mut Snapshot) {
    s.ports.push(PortConf {
        name: "third".into(),
        mac: [0x02, 0, 0, 0, 0x02, 0x01],
        addrs: vec![(
            0x0a02_0001,
            Prefix {
                addr: 0x0a02_0000,
                len: 24,
            },
        )],
        ..PortConf::default()
    });
    // Routes are longest prefix first (`Snapshot::route` takes the first
    // match): a /24 goes before the default route.
    s.routes.insert(
        0,
        Route {
            dst: Prefix {
                addr: 0x0a02_0000,
                len: 24,
            },
            port: 2,
            via: None,
        },
    );
    s.reals.push(RealServer {
        ip: 0x0a02_000b,
        ..s.reals[1]
    });
    s.static_neighbours
        .push((2, 0x0a02_000b, [0x02, 0xaa, 0, 0, 0, 0x0d]));
    s.services[0].reals = vec![5];
}

// ---- the runner -----------------------------------------------------------

/// Every counter a row may change, by name: `WorkerStats`' fields, each
/// drop reason, `realN.*` per real server, the connection table's size
/// (`conns`), what the worker loop drains (`arp_out`, `neigh_out`,
/// `template_out`), the neighbour table's version and the ports with a
/// partial checksum.
fn counters(c: &Core) -> BTreeMap<String, u64> {
    let s = &c.stats;
    // Every worker counter, by the one list that declares them.
    let mut m: BTreeMap<String, u64> = WorkerStats::COUNTER_NAMES
        .iter()
        .map(|k| k.to_string())
        .zip(s.counter_values())
        .collect();
    m.extend(
        [
            ("conns", c.conns.len() as u64),
            ("arp_out", c.arp_out.len() as u64),
            ("neigh_out", c.neigh_out.len() as u64),
            ("template_out", c.template_out.len() as u64),
            ("neigh_version", c.neigh.version()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v)),
    );
    for r in DropReason::ALL {
        m.insert(r.name().to_string(), s.drops[*r as usize]);
    }
    for (i, r) in c.reals.iter().enumerate().skip(1) {
        for (k, v) in [
            ("conns", r.conns),
            ("in_pkts", r.in_pkts),
            ("out_pkts", r.out_pkts),
            ("active_conns", r.active_conns),
            ("inactive_conns", r.inactive_conns),
        ] {
            m.insert(format!("real{i}.{k}"), v);
        }
    }
    m
}

fn build_snapshot(setup: &Setup) -> Snapshot {
    let mut s = snapshot(setup.method, setup.neighbours);
    (setup.snap)(&mut s);
    s
}

/// What a row must leave in the counters: `before` with the receive
/// counters, the drop and `bumps` added.
fn expected(
    case: &Case,
    before: &BTreeMap<String, u64>,
    extra: &[(&str, u64)],
) -> BTreeMap<String, u64> {
    let mut want = before.clone();
    let mut add = |k: &str, n: u64| {
        *want
            .get_mut(k)
            .unwrap_or_else(|| panic!("{}: no counter {k}", case.name)) += n;
    };
    if !case.setup.redirected {
        add("rx_pkts", 1);
        add("rx_bytes", case.frame.len() as u64);
    }
    if let Verdict::Drop(r) = case.expect {
        add(r.name(), 1);
    }
    for (k, n) in extra {
        add(k, *n);
    }
    for b in case.bumps.iter().filter(|b| !b.starts_with('-')) {
        add(b, 1);
    }
    // "-name": the counter goes down by one (a connection removed).
    for k in case.bumps.iter().filter_map(|b| b.strip_prefix('-')) {
        let v = want
            .get_mut(k)
            .unwrap_or_else(|| panic!("{}: no counter {k}", case.name));
        *v = v
            .checked_sub(1)
            .unwrap_or_else(|| panic!("{}: {k} below 0", case.name));
    }
    want
}

/// Fails naming every counter whose value is not the expected one.
fn same_counters(case: &Case, got: &BTreeMap<String, u64>, want: &BTreeMap<String, u64>) {
    let diff: Vec<String> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: {:?}, want {v}", got.get(k)))
        .collect();
    assert!(diff.is_empty(), "{}: counters {diff:?}", case.name);
}

fn run_core(case: &Case) {
    let snap = build_snapshot(&case.setup);
    let st = &case.setup;
    let mut core = Core::new(st.worker, st.workers, st.max_conns);
    core.sync(&snap);
    (st.pre)(&mut core, &snap);
    let before = counters(&core);
    // The frame in a buffer with `room` bytes of tailroom (0: as
    // `Core::process`), whose final length is kept: an ICMP error may be
    // shorter than the packet it replaces, a tunnelled packet longer.
    let mut buf = case.frame.clone();
    buf.resize(case.frame.len() + st.room, 0x5a);
    let mut frame = Frame::new(&mut buf, case.frame.len());
    let v = core.process_frame(&snap, &mut frame, case.in_port, 1, st.redirected);
    // The frame's final length is kept: a method may grow it, an ICMP
    // error may be shorter than the packet it replaces.
    let len = frame.len();
    buf.truncate(len);
    let f = buf;
    assert_eq!(v, case.expect, "{}: verdict", case.name);
    if let Some(out) = &case.out {
        assert_eq!(&f, out, "{}: output bytes", case.name);
    }
    same_counters(case, &counters(&core), &expected(case, &before, &[]));
}

/// A `MemQueue` whose TX can be made to take nothing, as a NIC with a full
/// descriptor ring.
struct TestQueue {
    inner: MemQueue,
    refuse_tx: bool,
}

impl PortQueue for TestQueue {
    type Buf = MemBuf;
    fn rx_burst(&mut self, out: &mut Vec<MemBuf>, max: usize) -> usize {
        self.inner.rx_burst(out, max)
    }
    fn tx_burst(&mut self, pkts: &mut Vec<MemBuf>) -> usize {
        if self.refuse_tx {
            return 0;
        }
        self.inner.tx_burst(pkts)
    }
    fn alloc(&mut self) -> Option<MemBuf> {
        self.inner.alloc()
    }
    fn free_bulk(&mut self, pkts: &mut Vec<MemBuf>) {
        self.inner.free_bulk(pkts)
    }
    fn mac(&self) -> [u8; 6] {
        self.inner.mac()
    }
}

fn run_worker(
    case: &Case,
    mesh_n: usize,
    queues: usize,
    refuse_tx: Option<usize>,
    pre: fn(&mut [W], &[u8]),
) {
    let st = &case.setup;
    let snap = build_snapshot(st);
    let macs: Vec<[u8; 6]> = snap.ports.iter().map(|p| p.mac).collect();
    let shared = Arc::new(ArcSwap::from_pointee(snap));
    let mesh: Arc<Mesh<MemBuf>> = Mesh::new(mesh_n);
    let conf = LoopConf {
        burst: 64,
        idle_sleep: Duration::ZERO,
    };
    let mut ws: Vec<W> = (0..mesh_n as u16)
        .map(|id| {
            let qs = (0..queues)
                .map(|p| TestQueue {
                    inner: MemQueue::new(macs[p]),
                    refuse_tx: refuse_tx == Some(p),
                })
                .collect();
            Worker::new(
                Core::new(id, st.workers, st.max_conns),
                qs,
                Arc::clone(&shared),
                Arc::clone(&mesh),
                Arc::new(SharedStats::new(mesh_n)),
                conf,
            )
        })
        .collect();
    // A first round syncs the snapshot (and primes nothing: every
    // neighbour is permanent).
    for w in &mut ws {
        w.poll_once(0);
    }
    pre(&mut ws, &case.frame);
    let me = usize::from(st.worker);
    for q in &mut ws[me].queues {
        q.inner.take_tx();
    }
    let before = counters(&ws[me].core);
    ws[me].queues[usize::from(case.in_port)]
        .inner
        .inject(&case.frame);
    assert_eq!(ws[me].poll_once(2), 1, "{}: one frame handled", case.name);
    let sent: Vec<(usize, Vec<u8>)> = ws[me]
        .queues
        .iter_mut()
        .enumerate()
        .flat_map(|(p, q)| q.inner.take_tx().into_iter().map(move |f| (p, f)))
        .collect();
    let mut extra = Vec::new();
    match case.expect {
        Verdict::Tx(p) => {
            assert_eq!(sent.len(), 1, "{}: one frame sent", case.name);
            assert_eq!(sent[0].0, usize::from(p), "{}: output port", case.name);
            if let Some(out) = &case.out {
                assert_eq!(&sent[0].1, out, "{}: output bytes", case.name);
            }
            extra = vec![("tx_pkts", 1), ("tx_bytes", sent[0].1.len() as u64)];
        }
        _ => assert!(sent.is_empty(), "{}: nothing sent: {sent:?}", case.name),
    }
    // The one poll_once round handled a frame.
    extra.push(("polls_busy", 1));
    same_counters(
        case,
        &counters(&ws[me].core),
        &expected(case, &before, &extra),
    );
    // The worker freed whatever it did not send.
    let freed: u64 = ws[me].queues.iter().map(|q| q.inner.n_freed).sum();
    assert!(freed >= 1, "{}: the dropped frame was freed", case.name);
}

fn run(case: &Case) {
    match case.setup.via {
        Via::Core => run_core(case),
        Via::Worker {
            mesh,
            queues,
            refuse_tx,
            pre,
        } => run_worker(case, mesh, queues, refuse_tx, pre),
    }
}

#[test]
fn test_fixture_table() {
    let cases = cases();
    let mut names = std::collections::HashSet::new();
    for c in &cases {
        assert!(names.insert(c.name), "two rows named {}", c.name);
        run(c);
    }
}

/// DR and TUN replies bypass the director, so their connections follow
/// IPVS's INPUT-ONLY table (`IP_VS_CONN_F_NOOUTPUT`, set for every method
/// but masquerading), where the client's FIN in ESTABLISHED means FIN_WAIT;
/// NAT and FullNAT see the replies, and the same FIN is CLOSE_WAIT.
#[test]
fn test_input_only_states_for_dr_and_tun() {
    let cases = [
        (base(), TcpState::CloseWait),
        (fullnat(), TcpState::CloseWait),
        (
            Setup {
                method: Method::Dr,
                ..base()
            },
            TcpState::FinWait,
        ),
        (tun_base(), TcpState::FinWait),
    ];
    for (setup, want) in cases {
        let snap = build_snapshot(&setup);
        let mut core = Core::new(0, 1, 1024);
        core.sync(&snap);
        let segment = |fin: bool| {
            let mut f = Vec::new();
            let b = PacketBuilder::ethernet2(CLIENT_MAC, OUT_MAC)
                .ipv4(CIP, VIP, 64)
                .tcp(40000, 80, 1001, 65535)
                .ack(1);
            if fin { b.fin() } else { b }.write(&mut f, &[]).unwrap();
            f
        };
        for f in [Pkt::syn().bytes(), segment(false), segment(true)] {
            let mut buf = f.clone();
            buf.resize(f.len() + 128, 0);
            let mut frame = Frame::new(&mut buf, f.len());
            let v = core.process_frame(&snap, &mut frame, 0, 1, false);
            assert_eq!(v, Verdict::Tx(1), "{:?}", setup.method);
        }
        let key = FlowKey {
            src_ip: ip(CIP),
            dst_ip: ip(VIP),
            src_port: 40000,
            dst_port: 80,
            proto: 6,
        };
        let (id, _) = core.conns.lookup(&key).expect("the connection");
        assert_eq!(
            core.conns.get(id).map(|c| c.state),
            Some(want),
            "{:?}",
            setup.method
        );
    }
}

/// Adding a `DropReason` without a fixture row fails here, naming it.
#[test]
fn test_every_reason_has_a_row() {
    let cases = cases();
    let missing: Vec<&str> = DropReason::ALL
        .iter()
        .filter(|r| !cases.iter().any(|c| c.expect == Verdict::Drop(**r)))
        .map(|r| r.name())
        .collect();
    assert!(
        missing.is_empty(),
        "drop reasons without a fixture row in tests/fixtures.rs: {missing:?}"
    );
    // `--nocapture` shows which rows cover which reason.
    for c in &cases {
        if let Verdict::Drop(r) = c.expect {
            println!("{:<22} {}", r.name(), c.name);
        }
    }
    // And every forwarding direction has one.
    for name in [
        "nat_in_syn",
        "nat_out_synack",
        "fullnat_in_syn",
        "fullnat_out_synack",
        "fullnat_in_udp",
        "fullnat_out_udp",
        "dr_in_syn",
        "dr_in_udp",
        "tun_ipip_in_syn",
        "tun_ipip_in_udp",
        "tun_gue_in_syn",
        "tun_gue_in_udp",
        "icmp_relay_tun_ipip_in",
        "icmp_relay_tun_gue_in",
        "arp_reply_for_vip",
        "icmp_echo_reply_vip",
        "redirect_to_owner",
    ] {
        assert!(cases.iter().any(|c| c.name == name), "no row {name}");
    }
}
