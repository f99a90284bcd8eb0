//! Validated [`Config`] → immutable [`Snapshot`] the workers read.
//!
//! Layer: control, second stage (`RON → Config → validate() → compile()`).
//!
//! Guarantees: infallible on a config that passed
//! [`crate::config::validate()`]; the result has ports in config order, routes
//! sorted longest prefix first, real-server ids starting at 1 that stay the
//! same across recompiles (see [`compile`]'s `prev`), and every address the
//! director must answer ARP for in `local`. The output depends only on its
//! inputs (no clock, no I/O), so two compiles of one config are equal.
//!
//! Refuses: nothing at run time; feeding it an unvalidated config may produce
//! a snapshot the workers cannot use (e.g. a static route whose gateway is on
//! no port falls back to port 0).
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use dataplane::snapshot::{
    LocalAddr, LocalKind, LportRange, Method, Persistence, PortConf, Prefix, RealServer, Route,
    Service, ServiceKey, Snapshot, Timeouts, TunConf, NO_SERVICE,
};
use hashbrown::{HashMap, HashSet};
use sched::{Dest, MhTable, SchedKind, SchedParams};

use crate::config::{Config, Ipv4Net, ServiceConfig, TimeoutsConfig};

fn prefix(n: Ipv4Net) -> Prefix {
    Prefix {
        addr: u32::from(n.addr),
        len: n.len,
    }
}

/// The port-set mask with one bit per port, `n_ports` in 0..=64.
fn all_ports_mask(n_ports: usize) -> u64 {
    match n_ports {
        0 => 0,
        n if n >= 64 => u64::MAX,
        n => (1u64 << n) - 1,
    }
}

/// Converts second-granularity config timeouts to the snapshot's
/// milliseconds.
pub fn timeouts_ms(t: &TimeoutsConfig) -> Timeouts {
    Timeouts {
        tcp_established_ms: t.tcp_established.as_ms(),
        tcp_syn_sent_ms: t.tcp_syn_sent.as_ms(),
        tcp_syn_recv_ms: t.tcp_syn_recv.as_ms(),
        tcp_fin_wait_ms: t.tcp_fin_wait.as_ms(),
        tcp_time_wait_ms: t.tcp_time_wait.as_ms(),
        tcp_close_ms: t.tcp_close.as_ms(),
        tcp_close_wait_ms: t.tcp_close_wait.as_ms(),
        tcp_last_ack_ms: t.tcp_last_ack.as_ms(),
        tcp_listen_ms: t.tcp_listen.as_ms(),
        tcp_synack_ms: t.tcp_synack.as_ms(),
        udp_ms: t.udp.as_ms(),
    }
}

/// A service's persistence in snapshot units: the timeout in ms and the
/// netmask in host order (`255.255.255.255` when not given, as ipvsadm's
/// `-M` default).
pub fn persistence(s: &ServiceConfig) -> Option<Persistence> {
    s.persistence_timeout.map(|t| Persistence {
        timeout_ms: t.as_ms(),
        mask: s.persistence_netmask.map_or(u32::MAX, |m| m.bits()),
    })
}

/// The Maglev table of an `mh` service whose real servers are `ids` (dense
/// ids into `reals`, scheduler order), built here on the control thread so
/// that no worker has to: identities [`RealServer::sched_id`] and weights
/// exactly as the workers pass them to the scheduler, `params.mh_table_len`
/// slots, `params.mh_seed`. `None` for any other scheduler.
pub fn mh_table(
    kind: SchedKind,
    params: &SchedParams,
    reals: &[RealServer],
    ids: &[u32],
) -> Option<Arc<MhTable>> {
    if kind != SchedKind::Mh {
        return None;
    }
    // The same `Dest` list a worker builds in `Core::new_conn` (minus the
    // connection counts, which `mh` does not read).
    let dests: Vec<Dest> = ids
        .iter()
        .map(|&id| {
            reals.get(id as usize).map_or(Dest::default(), |r| Dest {
                weight: r.weight,
                id: r.sched_id(),
                ..Dest::default()
            })
        })
        .collect();
    Some(Arc::new(MhTable::for_dests(
        &dests,
        params.mh_table_len,
        params.mh_seed,
    )))
}

/// Compiles a validated config into the snapshot published to the workers.
///
/// - `ports`: config order; `port_macs[i]` (wire order) is the MAC of
///   `cfg.ports[i]` as the NIC reports it after any pinning.
/// - `routes`: one connected route per distinct port subnet (`via: None`),
///   then the static routes (output port = the port whose connected subnet
///   holds `via`, longest match), stably sorted by descending prefix length
///   so the first match is the longest (as the kernel FIB answers).
/// - `static_neighbours`: `(port, ip, mac)` with the port found by subnet.
/// - `local`: every DIP as [`LocalKind::Dip`] with only its own port's bit
///   set; every VIP as [`LocalKind::Vip`] with the bits of all ports whose
///   connected subnets contain it, or of every port when none does (a VIP
///   routed to the director by an upstream router may arrive anywhere).
///   A `vrrp_instance`'s `virtual_ipaddress` that is not a VIP is a
///   [`LocalKind::Floating`] address answered on the instance's interface;
///   with [`compile`] (no [`VrrpView`]) every VRRP address is
///   [`LocalKind::Standby`], as on a director whose instances are not master.
///   Every FullNAT `local_addresses` entry is a [`LocalKind::Lip`] answered
///   on the port whose connected subnet holds it.
/// - `services` in config order with `service_index`; `reals` from id 1
///   (id 0 is a weight-0 placeholder because 0 means "no real server" in
///   connection entries), each with its owning service index and its method
///   (the per-real-server override, else the service's default), each
///   service's [`persistence`], its scheduler flags and parameters, and
///   for an `mh` service its prebuilt, shared Maglev table ([`mh_table`]).
/// - Real-server ids: without `prev` (the first compile of a run) they are
///   dense in config order. With `prev` (the snapshot being replaced), a
///   real server that `prev` served under the same (service key, RIP, rport)
///   keeps its id, a new one gets the next id after all of `prev`'s, and one
///   that is gone stays as a retired entry (weight 0,
///   `service` = [`NO_SERVICE`], in no service's list, RIP, rport and method
///   kept). Ids are therefore never reused within a run, so the dense id a
///   connection stores (`Conn::real`, which indexes the per-real-server
///   counters and activeconns/inactconns) keeps naming its real server when a
///   service or real server is added or removed before it. A real server
///   removed and added again gets a fresh id; connections from before the
///   removal keep counting on the retired one until they expire (IPVS would
///   revive the destination from its trash instead).
/// - `timeouts` in milliseconds.
/// - Every VIP of `draining` that no service of `cfg` has any more stays a
///   local address (kind VIP, announced on the ports it was): its last
///   service was deleted while connections to it live, and IPVS lets those
///   run until they expire. New connections to it find no service.
///
/// # Panics
/// If `port_macs.len() != cfg.ports.len()` (a caller bug: the daemon reads
/// one MAC per configured port).
pub fn compile(
    cfg: &Config,
    port_macs: &[[u8; 6]],
    generation: u64,
    prev: Option<&Snapshot>,
    draining: &[DrainingVip],
) -> Snapshot {
    compile_with_health(
        cfg,
        port_macs,
        generation,
        prev,
        draining,
        &HealthView::default(),
        &VrrpView::default(),
    )
}

/// What the health checkers say, applied by [`compile_with_health`] on top
/// of the config: which real servers failed, their dynamic weights, and
/// which services lost quorum. The default view (nothing down, no dynamic
/// weight, quorum everywhere) is the config as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthView {
    /// Real servers whose checkers are not all up, by (service, RIP, rport).
    pub down: HashSet<RealKey>,
    /// Weights set by `misc_dynamic` / FILE_CHECK `dynamic`, replacing the
    /// configured weight while the server is up.
    pub weights: HashMap<RealKey, u32>,
    /// Services below quorum (keepalived `quorum - hysteresis`): their
    /// `sorry_server`, if any, is in rotation.
    pub sorry: HashSet<ServiceKey>,
}

/// Which VRRP addresses this director holds now: those of its instances in
/// MASTER. [`compile_with_health`] gives every other `virtual_ipaddress`
/// the kind [`LocalKind::Standby`] (no ARP answer, every packet dropped as
/// `vrrp_backup`), so the default view — nothing held — is how a director
/// starts (RFC 5798 §6.4.1: an instance starts in Initialize, then Backup
/// unless it owns the addresses). Addresses outside every instance are
/// always held.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VrrpView {
    /// Held addresses (host order).
    pub held: BTreeSet<u32>,
}

/// [`compile`] with the health checkers' view applied, as keepalived drives
/// IPVS:
/// - a real server in `health.down` is `available: false`; with
///   `inhibit_on_failure` it stays in its service's list at weight 0
///   (quiesced: its connections go on, no new ones), otherwise it leaves
///   the list (the scheduler no longer sees it). Either way it keeps its
///   id, so its counters and connections carry on when it returns;
/// - an up real server with an entry in `health.weights` gets that weight;
/// - a service in `health.sorry` has its `sorry_server` in the list at
///   weight 1; outside it, the sorry server is listed at weight 0 with
///   `sorry_server_inhibit` and absent otherwise (it keeps its id too);
/// - everything else as [`compile`].
pub fn compile_with_health(
    cfg: &Config,
    port_macs: &[[u8; 6]],
    generation: u64,
    prev: Option<&Snapshot>,
    draining: &[DrainingVip],
    health: &HealthView,
    vrrp: &VrrpView,
) -> Snapshot {
    assert_eq!(
        port_macs.len(),
        cfg.ports.len(),
        "compile: one MAC per configured port"
    );
    let port_of = |ip: Ipv4Addr| -> u8 { cfg.connected_port(ip).map_or(0, |p| p as u8) };

    let ports: Vec<PortConf> = cfg
        .ports
        .iter()
        .zip(port_macs)
        .map(|(p, &mac)| PortConf {
            name: p.name.clone(),
            mac,
            addrs: p
                .addrs
                .iter()
                .map(|a| (u32::from(a.addr), prefix(a.network())))
                .collect(),
            verify_checksums: p.verify_checksums.0,
            mtu: p.mtu,
            ..PortConf::default()
        })
        .collect();

    let mut routes: Vec<Route> = Vec::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        for a in &p.addrs {
            let r = Route {
                dst: prefix(a.network()),
                port: i as u8,
                via: None,
            };
            // Two DIPs on one subnet give one connected route, not two.
            if !routes.contains(&r) {
                routes.push(r);
            }
        }
    }
    for r in &cfg.routes {
        routes.push(Route {
            dst: prefix(r.dst),
            port: port_of(r.via.0),
            via: Some(u32::from(r.via.0)),
        });
    }
    // `sort_by_key` is stable: equal lengths keep connected-then-static, config
    // order.
    routes.sort_by_key(|r| std::cmp::Reverse(r.dst.len));

    let static_neighbours = cfg
        .neighbours
        .iter()
        .map(|n| (port_of(n.ip.0), u32::from(n.ip.0), n.mac.0))
        .collect();

    let mut local: HashMap<u32, LocalAddr> = HashMap::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        for a in &p.addrs {
            local.insert(
                u32::from(a.addr),
                LocalAddr {
                    kind: LocalKind::Dip,
                    arp_ports: 1u64 << i,
                },
            );
        }
    }
    for s in &cfg.services {
        let vip = s.vip.ip();
        let mut mask = 0u64;
        for (i, p) in cfg.ports.iter().enumerate() {
            if p.addrs.iter().any(|a| a.contains(vip)) {
                mask |= 1u64 << i;
            }
        }
        if mask == 0 {
            mask = all_ports_mask(cfg.ports.len());
        }
        local.insert(
            u32::from(vip),
            LocalAddr {
                kind: LocalKind::Vip,
                arp_ports: mask,
            },
        );
    }

    // FullNAT local addresses: answered for ARP on the port whose subnet
    // holds them (where the real servers' replies come from), and TCP/UDP
    // to them classifies as a reply.
    for s in &cfg.services {
        for a in &s.local_addresses {
            let Some(port) = cfg.connected_port(a.0) else {
                continue;
            };
            local.entry(u32::from(a.0)).or_insert(LocalAddr {
                kind: LocalKind::Lip,
                arp_ports: 1u64 << port,
            });
        }
    }
    for d in draining {
        local.entry(d.vip).or_insert(LocalAddr {
            kind: LocalKind::Vip,
            arp_ports: d.arp_ports,
        });
    }
    for inst in &cfg.vrrp_instance {
        let port = cfg
            .ports
            .iter()
            .position(|p| p.name == inst.interface)
            .unwrap_or(0);
        for a in &inst.virtual_ipaddress {
            let ip = u32::from(a.0);
            let held = vrrp.held.contains(&ip);
            let e = local.entry(ip).or_insert(LocalAddr {
                kind: LocalKind::Floating,
                arp_ports: 1u64 << port,
            });
            if !held {
                e.kind = LocalKind::Standby;
            }
        }
    }

    let mut services = Vec::with_capacity(cfg.services.len());
    let mut service_index = HashMap::new();
    let (mut reals, mut known) = retired_reals(prev);
    for (si, s) in cfg.services.iter().enumerate() {
        let key = ServiceKey {
            vip: u32::from(s.vip.ip()),
            vport: s.vip.port(),
            proto: s.proto.0,
        };
        let mut ids = Vec::with_capacity(s.real_servers.len() + 1);
        // `validate` refuses a real server twice in one service (the sorry
        // server included), so each previous id is taken at most once.
        let mut place = |entry: RealServer| match known.remove(&(key, entry.ip, entry.port)) {
            Some(id) => {
                reals[id as usize] = entry;
                id
            }
            None => {
                reals.push(entry);
                (reals.len() - 1) as u32
            }
        };
        for r in &s.real_servers {
            let (ip, port) = (u32::from(r.addr.ip()), r.addr.port());
            let down = health.down.contains(&(key, ip, port));
            let weight = health
                .weights
                .get(&(key, ip, port))
                .copied()
                .unwrap_or(r.weight.0);
            let id = place(RealServer {
                ip,
                port,
                weight: if down { 0 } else { weight },
                method: r.method(s),
                tun: r.tun(s),
                service: si as u16,
                available: !down,
            });
            if !down || r.inhibit(s) {
                ids.push(id);
            }
        }
        if let Some(sorry) = s.sorry_server {
            let active = health.sorry.contains(&key);
            let method = s.sorry_server_forwarding.map_or(s.forwarding.0, |f| f.0);
            let id = place(RealServer {
                ip: u32::from(sorry.ip()),
                port: sorry.port(),
                weight: u32::from(active),
                method,
                // A tunnelled sorry server uses IPIP from `tun_src`.
                tun: match method {
                    Method::Tun => TunConf {
                        src: s.tun_src.map_or(0, |a| u32::from(a.0)),
                        ..TunConf::default()
                    },
                    _ => TunConf::default(),
                },
                service: si as u16,
                available: active,
            });
            if active || s.sorry_server_inhibit {
                ids.push(id);
            }
        }
        service_index.insert(key, si as u16);
        let sched_params = s.sched_params();
        let mh_table = mh_table(s.scheduler.0, &sched_params, &reals, &ids);
        services.push(Service {
            key,
            scheduler: s.scheduler.0,
            sched_flags: s.sched_flags(),
            sched_params,
            mh_table,
            reals: ids,
            persistence: persistence(s),
            local_addresses: s.local_addresses.iter().map(|a| u32::from(a.0)).collect(),
            client_address: s.client_address.0,
        });
    }

    Snapshot {
        generation,
        ports,
        routes,
        static_neighbours,
        local,
        services,
        service_index,
        reals,
        timeouts: timeouts_ms(&cfg.timeouts),
        expire_nodest_conn: cfg.expire_nodest_conn,
        lport_range: LportRange {
            lo: cfg.fullnat_lport_min,
            hi: cfg.fullnat_lport_max,
        },
    }
}

/// A VIP whose last virtual service was deleted while it still had
/// connections: the director keeps answering for it (ARP, forwarding of the
/// live connections) until they are gone, as IPVS lets a deleted service's
/// connections run to their expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrainingVip {
    /// The VIP, host order.
    pub vip: u32,
    /// The ports it was announced on (bit = port index), as before.
    pub arp_ports: u64,
    /// The real-server ids its services had: their activeconns plus
    /// inactconns, over all workers, say whether it still drains.
    pub reals: Vec<u32>,
}

/// A real server's identity across recompiles: service key, RIP, rport.
pub type RealKey = (ServiceKey, u32, u16);

/// The starting real-server table for [`compile`]: `prev`'s entries, all
/// retired (weight 0, [`NO_SERVICE`], unavailable), and the ids of the ones
/// `prev` had in a service (listed or out of rotation by health), by
/// identity; without `prev`, just the id-0 placeholder.
fn retired_reals(prev: Option<&Snapshot>) -> (Vec<RealServer>, HashMap<RealKey, u32>) {
    let placeholder = RealServer {
        ip: 0,
        port: 0,
        weight: 0,
        method: Method::Nat,
        tun: TunConf::default(),
        service: 0,
        available: false,
    };
    let mut known = HashMap::new();
    let Some(p) = prev.filter(|p| !p.reals.is_empty()) else {
        return (vec![placeholder], known);
    };
    for (id, r) in p.reals.iter().enumerate().skip(1) {
        if let Some(svc) = p.services.get(usize::from(r.service)) {
            known.insert((svc.key, r.ip, r.port), id as u32);
        }
    }
    let mut reals = p.reals.clone();
    for r in reals.iter_mut().skip(1) {
        r.weight = 0;
        r.service = NO_SERVICE;
        r.available = false;
    }
    (reals, known)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use dataplane::snapshot::Proto;

    const CFG: &str = r#"(
        eal_args: ["-l", "0-1"],
        workers: [1],
        ports: [
            (name: "outside", device: "net_af_packet0", addrs: ["10.0.0.1/24"]),
            (name: "inside", device: "net_af_packet1", addrs: ["10.1.0.1/24", "10.1.0.2/24", "192.168.7.1/30"]),
        ],
        routes: [
            (dst: "0.0.0.0/0", via: "10.0.0.254"),
            (dst: "10.2.0.0/16", via: "10.1.0.254"),
            (dst: "10.3.0.0/24", via: "10.1.0.253"),
        ],
        neighbours: [ (ip: "10.1.0.11", mac: "02:00:0a:01:00:0b") ],
        timeouts: (tcp_established: 1000, udp: 7),
        services: [
            (vip: "10.0.0.100:80", proto: "tcp", scheduler: "rr", forwarding: "nat",
             real_servers: [
                (addr: "10.1.0.11:8080", weight: 3),
                (addr: "10.2.0.12:8080"),
             ]),
            (vip: "198.51.100.7:443", proto: "udp", scheduler: "wrr", forwarding: "dr",
             real_servers: [
                (addr: "10.1.0.21:443", weight: 0),
                (addr: "10.2.0.22:8443", forwarding: "masq"),
             ]),
        ],
    )"#;

    fn snap() -> Snapshot {
        let cfg = parse(CFG, "t.ron").expect("valid");
        compile(
            &cfg,
            &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]],
            7,
            None,
            &[],
        )
    }

    fn p(a: [u8; 4], len: u8) -> Prefix {
        Prefix {
            addr: u32::from(Ipv4Addr::from(a)),
            len,
        }
    }

    #[test]
    fn test_compile_ports() {
        let s = snap();
        assert_eq!(s.generation, 7);
        assert_eq!(s.ports.len(), 2);
        assert_eq!(s.ports[0].name, "outside");
        assert_eq!(s.ports[1].mac, [2, 0, 0, 0, 0, 2]);
        assert_eq!(
            s.ports[1].addrs,
            vec![
                (0x0a01_0001, p([10, 1, 0, 0], 24)),
                (0x0a01_0002, p([10, 1, 0, 0], 24)),
                (0xc0a8_0701, p([192, 168, 7, 0], 30)),
            ]
        );
    }

    #[test]
    fn test_compile_routes_order() {
        let s = snap();
        let got: Vec<(Prefix, u8, Option<u32>)> =
            s.routes.iter().map(|r| (r.dst, r.port, r.via)).collect();
        assert_eq!(
            got,
            vec![
                (p([192, 168, 7, 0], 30), 1, None),
                // Connected /24s in port order, then the static /24 (stable).
                (p([10, 0, 0, 0], 24), 0, None),
                (p([10, 1, 0, 0], 24), 1, None),
                (p([10, 3, 0, 0], 24), 1, Some(0x0a01_00fd)),
                (p([10, 2, 0, 0], 16), 1, Some(0x0a01_00fe)),
                (p([0, 0, 0, 0], 0), 0, Some(0x0a00_00fe)),
            ]
        );
        assert_eq!(s.route(0x0a02_0505), Some((1, 0x0a01_00fe)));
        assert_eq!(s.route(0x0808_0808), Some((0, 0x0a00_00fe)));
        assert_eq!(s.route(0x0a01_000b), Some((1, 0x0a01_000b)));
    }

    #[test]
    fn test_compile_neighbours_and_timeouts() {
        let s = snap();
        assert_eq!(
            s.static_neighbours,
            vec![(1, 0x0a01_000b, [2, 0, 0x0a, 1, 0, 0x0b])]
        );
        assert_eq!(s.timeouts.tcp_established_ms, 1_000_000);
        assert_eq!(s.timeouts.udp_ms, 7_000);
        // Untouched fields keep the IPVS defaults.
        assert_eq!(s.timeouts.tcp_fin_wait_ms, 120_000);
        assert_eq!(s.timeouts.tcp_syn_recv_ms, 60_000);
    }

    #[test]
    fn test_compile_dense_ids_start_at_1() {
        let s = snap();
        assert_eq!(s.reals.len(), 5);
        assert_eq!(s.reals[0].weight, 0);
        assert_eq!(s.services[0].reals, vec![1, 2]);
        assert_eq!(s.services[1].reals, vec![3, 4]);
        let r1 = &s.reals[1];
        assert_eq!(
            (r1.ip, r1.port, r1.weight, r1.service),
            (0x0a01_000b, 8080, 3, 0)
        );
        // Default weight is 1; weight 0 is kept (quiesced).
        assert_eq!(s.reals[2].weight, 1);
        assert_eq!(s.reals[3].weight, 0);
        assert_eq!(s.reals[4].service, 1);
        assert_eq!(s.services[0].scheduler, SchedKind::Rr);
        assert_eq!(s.services[1].scheduler, SchedKind::Wrr);
        assert_eq!(s.service(0x0a00_0064, 80, Proto::Tcp), Some(0));
        assert_eq!(s.service(0xc633_6407, 443, Proto::Udp), Some(1));
        assert_eq!(s.service(0xc633_6407, 443, Proto::Tcp), None);
    }

    #[test]
    fn test_compile_forwarding_override() {
        let s = snap();
        assert_eq!(s.reals[1].method, Method::Nat);
        assert_eq!(s.reals[2].method, Method::Nat);
        // Service default DR ...
        assert_eq!(s.reals[3].method, Method::Dr);
        // ... overridden per real server with "masq".
        assert_eq!(s.reals[4].method, Method::Nat);
    }

    #[test]
    fn test_compile_local_arp_ports() {
        let s = snap();
        assert_eq!(
            s.local.get(&0x0a00_0001),
            Some(&LocalAddr {
                kind: LocalKind::Dip,
                arp_ports: 0b01
            })
        );
        assert_eq!(
            s.local.get(&0x0a01_0002),
            Some(&LocalAddr {
                kind: LocalKind::Dip,
                arp_ports: 0b10
            })
        );
        // VIP on the outside subnet: ARP on port 0 only.
        assert_eq!(
            s.local.get(&0x0a00_0064),
            Some(&LocalAddr {
                kind: LocalKind::Vip,
                arp_ports: 0b01
            })
        );
        // VIP on no connected subnet: ARP on every port.
        assert_eq!(
            s.local.get(&0xc633_6407),
            Some(&LocalAddr {
                kind: LocalKind::Vip,
                arp_ports: 0b11
            })
        );
        assert_eq!(s.local.len(), 6);
    }

    /// `CFG` with a service inserted before the others, `10.2.0.12:8080`
    /// removed from the first one and a real server added to the last one.
    fn edited() -> Config {
        let src = CFG
            .replace(
                "services: [",
                r#"services: [
            (vip: "10.0.0.101:53", proto: "udp", scheduler: "sh", forwarding: "nat",
             real_servers: [(addr: "10.1.0.31:53")]),"#,
            )
            .replace("(addr: \"10.2.0.12:8080\"),", "")
            .replace(
                "(addr: \"10.2.0.22:8443\", forwarding: \"masq\"),",
                "(addr: \"10.2.0.22:8443\", forwarding: \"masq\"), (addr: \"10.1.0.23:443\", weight: 5),",
            );
        parse(&src, "t2.ron").expect("valid")
    }

    #[test]
    fn test_compile_keeps_real_ids_across_edits() {
        let prev = snap();
        let macs = [[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]];
        let s = compile(&edited(), &macs, 8, Some(&prev), &[]);
        assert_eq!(s.services.len(), 3);
        // The inserted service's real server gets the first new id ...
        assert_eq!(s.services[0].reals, vec![5]);
        assert_eq!((s.reals[5].ip, s.reals[5].service), (0x0a01_001f, 0));
        // ... the old ones keep theirs although their services moved ...
        assert_eq!(s.services[1].reals, vec![1]);
        assert_eq!((s.reals[1].ip, s.reals[1].port), (0x0a01_000b, 8080));
        assert_eq!((s.reals[1].weight, s.reals[1].service), (3, 1));
        assert_eq!(s.services[2].reals, vec![3, 4, 6]);
        assert_eq!((s.reals[4].ip, s.reals[4].service), (0x0a02_0016, 2));
        assert_eq!(s.reals[4].method, Method::Nat);
        assert_eq!((s.reals[6].ip, s.reals[6].weight), (0x0a01_0017, 5));
        // ... and the removed one is retired in place, never reused.
        let r2 = &s.reals[2];
        assert_eq!((r2.ip, r2.port), (0x0a02_000c, 8080));
        assert_eq!((r2.weight, r2.service), (0, NO_SERVICE));
        assert_eq!(s.reals.len(), 7);
        assert_eq!(s.service(0x0a00_0064, 80, Proto::Tcp), Some(1));

        // Removing everything keeps every id retired; adding back gets new ids.
        let mut empty = edited();
        empty.services.clear();
        let e = compile(&empty, &macs, 9, Some(&s), &[]);
        assert_eq!(e.reals.len(), 7);
        assert!(e.reals[1..]
            .iter()
            .all(|r| r.weight == 0 && r.service == NO_SERVICE));
        let back = compile(&edited(), &macs, 10, Some(&e), &[]);
        assert_eq!(back.services[0].reals, vec![7]);
        assert_eq!(back.services[1].reals, vec![8]);
        assert_eq!(back.reals.len(), 7 + 5);
        // Without a previous snapshot, ids are dense again.
        let fresh = compile(&edited(), &macs, 1, None, &[]);
        assert_eq!(fresh.services[0].reals, vec![1]);
        assert_eq!(fresh.reals.len(), 6);
    }

    #[test]
    fn test_compile_sched_settings_and_mh_table() {
        let src = CFG.replacen(
            "scheduler: \"rr\", forwarding: \"nat\",",
            "scheduler: \"mh\", forwarding: \"nat\", sched_flags: [\"flag-2\"], table_size: 307, hash_seed: 9,",
            1,
        );
        let cfg = parse(&src, "t.ron").expect("valid");
        let macs = [[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]];
        let s = compile(&cfg, &macs, 1, None, &[]);
        let mh = &s.services[0];
        assert_eq!(mh.scheduler, SchedKind::Mh);
        assert!(mh.sched_flags.mh_port && !mh.sched_flags.mh_fallback);
        assert_eq!(
            (mh.sched_params.mh_table_len, mh.sched_params.mh_seed),
            (307, 9)
        );
        // Built from RIP<<16|port and the weights, in config order, exactly
        // as an independent build_table call gives it.
        let list = [
            ((0x0a01_000bu64 << 16) | 8080, 3),
            ((0x0a02_000cu64 << 16) | 8080, 1),
        ];
        let t = mh.mh_table.as_ref().expect("mh service carries its table");
        assert_eq!(t.slots(), &sched::build_table(&list, 307, 9)[..]);
        assert_eq!(t.built_for(), &list[..]);
        assert_eq!(t.seed(), 9);
        // Identities are the ones the workers pass (RealServer::sched_id).
        let ids: Vec<u64> = mh
            .reals
            .iter()
            .map(|&r| s.reals[r as usize].sched_id())
            .collect();
        assert_eq!(ids, [list[0].0, list[1].0]);
        // Other schedulers carry no table, and the defaults.
        assert!(s.services[1].mh_table.is_none());
        assert_eq!(s.services[1].sched_params, sched::SchedParams::default());
        // Two directors compiling the same config build identical tables.
        let again = compile(&cfg, &macs, 2, None, &[]);
        let t2 = again.services[0].mh_table.as_ref().unwrap();
        assert!(!Arc::ptr_eq(t, t2));
        assert_eq!(**t, **t2);
    }

    #[test]
    fn test_all_ports_mask() {
        assert_eq!(all_ports_mask(0), 0);
        assert_eq!(all_ports_mask(1), 1);
        assert_eq!(all_ports_mask(3), 0b111);
        assert_eq!(all_ports_mask(64), u64::MAX);
    }

    #[test]
    #[should_panic(expected = "one MAC per configured port")]
    fn test_compile_mac_count_mismatch() {
        let cfg = parse(CFG, "t.ron").expect("valid");
        let _ = compile(&cfg, &[[2, 0, 0, 0, 0, 1]], 1, None, &[]);
    }
}
